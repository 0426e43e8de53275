/* SPDX-License-Identifier: MIT */
/*
 * lib_it.c - helpers of the real-server tests (see lib_it.h for the rules).
 *
 * Process model: the test process starts servers through servers.sh
 * (fork + exec, its stdout captured), and remembers, in static storage
 * prepared before any server runs, the argv that stops each of them. The
 * exit handler, the signal handlers and the watchdog all use only that
 * storage and async-signal-safe calls (fork, execv, waitpid, write,
 * _exit), so a test that crashes, hangs or is interrupted still leaves no
 * daemon behind. Children made by it_child_start() are marked so that
 * their exit stops nothing.
 *
 * The trace: every connection made with it_options*() gets a label; the
 * library's trace hook appends the bytes to that label's rings (sent and
 * received, 1 MiB each) and a short, escaped line to a global ring that
 * is dumped when a test function fails.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Setup, skip, cleanup                                                */
/* ------------------------------------------------------------------ */

static char test_name[64] = "test_it";
static char scratch_root[1024];
static int is_child;
static unsigned scratch_serial;

#define MAX_DAEMONS 8
/* Prepared stop commands: argv storage that the signal path can use. */
static char stop_paths[MAX_DAEMONS][1024];
static char stop_script[1024];
static int stop_used[MAX_DAEMONS];

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* fork + execv + waitpid: async-signal-safe. */
static int spawn_wait(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return st;
}

static void stop_all_daemons(void)
{
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (!stop_used[i])
            continue;
        char *argv[] = {stop_script, (char *)"dovecot-stop", stop_paths[i], NULL};
        spawn_wait(argv);
        stop_used[i] = 0;
    }
}

static void remove_scratch(void)
{
    if (scratch_root[0] == '\0')
        return;
    const char *keep = getenv("IMK_IT_KEEP");
    if (keep != NULL && strcmp(keep, "1") == 0) {
        say("lib_it: IMK_IT_KEEP=1: keeping ");
        say(scratch_root);
        say("\n");
        return;
    }
    char *argv[] = {(char *)"/bin/rm", (char *)"-rf", scratch_root, NULL};
    spawn_wait(argv);
    scratch_root[0] = '\0';
}

static void cleanup_at_exit(void)
{
    if (is_child)
        return;
    stop_all_daemons();
    remove_scratch();
}

static void on_signal(int sig)
{
    if (!is_child) {
        say(sig == SIGALRM ? "\nlib_it: watchdog: the test hangs; stopping its servers\n"
                           : "\nlib_it: interrupted; stopping the servers\n");
        stop_all_daemons();
        remove_scratch();
    }
    if (sig == SIGALRM)
        _exit(1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int required(void)
{
    const char *r = getenv("IMK_IT_REQUIRED");
    return r != NULL && strcmp(r, "1") == 0;
}

void it_note(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", test_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void it_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: %s: ", test_name, required() ? "FAILED (IMK_IT_REQUIRED=1)" : "SKIPPED");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(required() ? 1 : 77);
}

/* Every directory above `path` lets others through (the unprivileged user
 * that servers.sh runs mail as must reach the scratch directory). */
static int traversable_by_others(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        struct stat st;
        if (stat(buf, &st) != 0)
            return 0;
        if (!(st.st_mode & S_IXOTH))
            return 0;
        char *slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf)
            return 1;
        *slash = '\0';
    }
}

static void make_scratch_root(void)
{
    const char *base = getenv("IMK_BUILD_DIR");
    char tmpl[1024];
    if (base == NULL || base[0] != '/' || (geteuid() == 0 && !traversable_by_others(base)))
        base = "/tmp";
    snprintf(tmpl, sizeof(tmpl), "%s/it-%s-XXXXXX", base, test_name);
    if (mkdtemp(tmpl) == NULL) {
        snprintf(tmpl, sizeof(tmpl), "/tmp/it-%s-XXXXXX", test_name);
        if (mkdtemp(tmpl) == NULL) {
            fprintf(stderr, "%s: mkdtemp: %s\n", test_name, strerror(errno));
            exit(1);
        }
    }
    chmod(tmpl, 0755);
    snprintf(scratch_root, sizeof(scratch_root), "%s", tmpl);
}

void it_init(const char *name, unsigned watchdog_s)
{
    snprintf(test_name, sizeof(test_name), "%s", name);
    const char *src = getenv("IMK_SOURCE_DIR");
    snprintf(stop_script, sizeof(stop_script), "%s/tests/integration/servers.sh",
             src != NULL && src[0] != '\0' ? src : ".");
    if (stop_script[0] != '/') {
        char cwd[512];
        if (getcwd(cwd, sizeof(cwd)) != NULL) {
            char abs[1024];
            int n = snprintf(abs, sizeof(abs), "%s/%s", cwd, stop_script);
            if (n > 0 && (size_t)n < sizeof(abs))
                memcpy(stop_script, abs, (size_t)n + 1);
        }
    }
    if (access(stop_script, X_OK) != 0) {
        fprintf(stderr, "%s: %s is missing or not executable\n", test_name, stop_script);
        exit(1);
    }
    make_scratch_root();
    atexit(cleanup_at_exit);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    if (watchdog_s > 0)
        alarm(watchdog_s);
}

void it_scratch(const char *sub, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%u-%s", scratch_root, ++scratch_serial, sub);
    if (mkdir(out, 0755) != 0) {
        fprintf(stderr, "%s: mkdir %s: %s\n", test_name, out, strerror(errno));
        exit(1);
    }
    chmod(out, 0755);
}

/* ------------------------------------------------------------------ */
/* servers.sh                                                          */
/* ------------------------------------------------------------------ */

/* Run servers.sh with args; stdout into out (NUL-terminated), stderr into
 * err. Returns the wait status, or -1. */
static int run_script(const char *const *args, char *out, size_t out_cap, char *err, size_t err_cap)
{
    int pout[2], perr[2];
    if (pipe(pout) != 0 || pipe(perr) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char *argv[8];
        size_t n = 0;
        argv[n++] = stop_script;
        for (size_t i = 0; args[i] != NULL && n < 7; i++)
            argv[n++] = (char *)args[i];
        argv[n] = NULL;
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        close(pout[0]);
        close(perr[0]);
        close(pout[1]);
        close(perr[1]);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pout[1]);
    close(perr[1]);
    size_t no = 0, ne = 0;
    int open_fds = 2;
    int fds[2] = {pout[0], perr[0]};
    while (open_fds > 0) {
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0)
                continue;
            /* Read whichever has data; both are small, so a blocking read on
             * one while the other fills up cannot deadlock in practice
             * (stderr output is a few lines). */
            char buf[4096];
            ssize_t r = read(fds[i], buf, sizeof(buf));
            if (r <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
                continue;
            }
            char *dst = i == 0 ? out : err;
            size_t *len = i == 0 ? &no : &ne;
            size_t cap = i == 0 ? out_cap : err_cap;
            size_t take = (size_t)r;
            if (*len + take >= cap)
                take = cap - 1 - *len;
            memcpy(dst + *len, buf, take);
            *len += take;
        }
    }
    out[no] = '\0';
    err[ne] = '\0';
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return st;
}

static void env_value(const char *env, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    const char *p = env;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t vlen = len - klen - 1;
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            return;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
}

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (int)n;
}

static void status_text(int st, char *buf, size_t cap)
{
    if (st < 0)
        snprintf(buf, cap, "could not run");
    else if (WIFEXITED(st))
        snprintf(buf, cap, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, cap, "signal %d", WTERMSIG(st));
    else
        snprintf(buf, cap, "status %d", st);
}

void it_dovecot_start(it_dovecot *d, int tls_variants)
{
    memset(d, 0, sizeof(*d));
    int slot = -1;
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (!stop_used[i]) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        fprintf(stderr, "%s: too many daemons\n", test_name);
        exit(1);
    }
    it_scratch("dovecot", d->dir, sizeof(d->dir));
    /* Registered before the start, so that a start that half worked is
     * stopped too. */
    snprintf(stop_paths[slot], sizeof(stop_paths[slot]), "%s", d->dir);
    stop_used[slot] = 1;
    const char *args[] = {"dovecot-daemon", d->dir, tls_variants ? "--tls-variants" : NULL, NULL};
    static char out[4096], err[16384];
    int st = run_script(args, out, sizeof(out), err, sizeof(err));
    if (st != 0) {
        char why[64];
        status_text(st, why, sizeof(why));
        int missing = WIFEXITED(st) && WEXITSTATUS(st) == 77;
        it_skip("cannot start Dovecot (servers.sh dovecot-daemon: %s)%s\n%s", why,
                missing ? " - not installed" : "", err);
    }
    char envpath[1100], env[4096];
    snprintf(envpath, sizeof(envpath), "%s/ports.env", d->dir);
    if (read_file(envpath, env, sizeof(env)) < 0)
        it_skip("servers.sh wrote no %s", envpath);
    env_value(env, "IMAP_PORT", d->imap_port, sizeof(d->imap_port));
    env_value(env, "IMAPS_PORT", d->imaps_port, sizeof(d->imaps_port));
    env_value(env, "WRONGHOST_PORT", d->wronghost_port, sizeof(d->wronghost_port));
    env_value(env, "EXPIRED_PORT", d->expired_port, sizeof(d->expired_port));
    env_value(env, "UNKNOWNCA_PORT", d->unknownca_port, sizeof(d->unknownca_port));
    env_value(env, "SELFSIGNED_PORT", d->selfsigned_port, sizeof(d->selfsigned_port));
    env_value(env, "NOTLS_PORT", d->notls_port, sizeof(d->notls_port));
    env_value(env, "ALT_HOST", d->alt_host, sizeof(d->alt_host));
    env_value(env, "PKI_DIR", d->pki_dir, sizeof(d->pki_dir));
    char v[16];
    env_value(env, "IPV6", v, sizeof(v));
    d->ipv6 = strcmp(v, "1") == 0;
    snprintf(d->ca_file, sizeof(d->ca_file), "%s/ca.pem", d->pki_dir);
    snprintf(d->log_file, sizeof(d->log_file), "%s/dovecot.log", d->dir);
    if (d->imap_port[0] == '\0' || d->imaps_port[0] == '\0')
        it_skip("servers.sh wrote no ports into %s", envpath);
    d->running = 1;
    it_note("Dovecot in %s: imap %s, imaps %s%s%s%s", d->dir, d->imap_port, d->imaps_port,
            d->ipv6 ? ", also on ::1" : "", d->alt_host[0] ? ", also on " : "", d->alt_host);
}

void it_dovecot_stop(it_dovecot *d)
{
    if (!d->running)
        return;
    for (int i = 0; i < MAX_DAEMONS; i++) {
        if (stop_used[i] && strcmp(stop_paths[i], d->dir) == 0) {
            const char *args[] = {"dovecot-stop", d->dir, NULL};
            static char out[1024], err[4096];
            int st = run_script(args, out, sizeof(out), err, sizeof(err));
            if (st != 0)
                fprintf(stderr, "%s: servers.sh dovecot-stop %s failed:\n%s", test_name, d->dir,
                        err);
            stop_used[i] = 0;
        }
    }
    d->running = 0;
}

int it_dovecot_log_count(const it_dovecot *d, const char *needle)
{
    FILE *f = fopen(d->log_file, "r");
    if (f == NULL)
        return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, needle) != NULL)
            n++;
    }
    fclose(f);
    return n;
}

void it_dovecot_maildir(const it_dovecot *d, const char *user, char *out, size_t cap)
{
    snprintf(out, cap, "%s/mail/%s/Maildir", d->dir, user);
}

char *it_tunnel(const char *kind, const char *sub, char *dir_out, size_t dir_cap)
{
    char dir[1024];
    it_scratch(sub, dir, sizeof(dir));
    const char *args[] = {kind, dir, NULL};
    static char out[8192], err[8192];
    int st = run_script(args, out, sizeof(out), err, sizeof(err));
    if (st != 0) {
        char why[64];
        status_text(st, why, sizeof(why));
        it_skip("cannot prepare %s (servers.sh: %s)\n%s", kind, why, err);
    }
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    if (n == 0)
        it_skip("servers.sh %s printed no command\n%s", kind, err);
    if (dir_out != NULL)
        snprintf(dir_out, dir_cap, "%s", dir);
    char *cmd = malloc(n + 1);
    if (cmd == NULL)
        exit(1);
    memcpy(cmd, out, n + 1);
    return cmd;
}

/* ------------------------------------------------------------------ */
/* The trace                                                           */
/* ------------------------------------------------------------------ */

#define RING_CAP (1u << 20)
#define MAX_LABELS 64
#define LOG_CAP (64u * 1024u)

typedef struct ring {
    char *buf;
    size_t total; /* bytes ever written */
} ring;

typedef struct trace_label {
    char name[48];
    ring sent, received;
} trace_label;

static trace_label labels[MAX_LABELS];
static size_t n_labels;
static char log_ring[LOG_CAP];
static size_t log_total;
static int trace_live = -1;

static void ring_put(ring *r, const char *data, size_t len)
{
    if (r->buf == NULL) {
        r->buf = malloc(RING_CAP);
        if (r->buf == NULL)
            return;
    }
    if (len > RING_CAP) {
        data += len - RING_CAP;
        r->total += len - RING_CAP;
        len = RING_CAP;
    }
    for (size_t done = 0; done < len;) {
        size_t at = r->total % RING_CAP;
        size_t take = RING_CAP - at;
        if (take > len - done)
            take = len - done;
        memcpy(r->buf + at, data + done, take);
        done += take;
        r->total += take;
    }
}

/* Copy the ring's bytes from absolute offset `from` on into a new buffer. */
static char *ring_copy(const ring *r, size_t from, size_t *len_out)
{
    size_t start = r->total > RING_CAP ? r->total - RING_CAP : 0;
    if (from < start)
        from = start;
    size_t len = r->total > from ? r->total - from : 0;
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = r->buf[(from + i) % RING_CAP];
    out[len] = '\0';
    *len_out = len;
    return out;
}

static int mem_contains(const char *hay, size_t hlen, const char *needle)
{
    size_t nlen = strlen(needle);
    if (nlen == 0)
        return 1;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
            return 1;
    }
    return 0;
}

static void log_put(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        log_ring[(log_total + i) % LOG_CAP] = s[i];
    log_total += len;
    if (trace_live == 1)
        fwrite(s, 1, len, stderr);
}

static void log_str(const char *s)
{
    log_put(s, strlen(s));
}

/* One escaped, shortened rendering of a chunk of traffic per line. */
static void trace_hook(void *user, char dir, const char *data, size_t len)
{
    trace_label *l = user;
    ring_put(dir == 'C' ? &l->sent : &l->received, data, len);
    char line[1024];
    static int64_t t0;
    if (t0 == 0)
        t0 = it_now_ms();
    int64_t t = it_now_ms() - t0;
    size_t n = (size_t)snprintf(line, sizeof(line), "%lld.%03lld [%s] %c: ", (long long)(t / 1000),
                                (long long)(t % 1000), l->name, dir);
    size_t shown = 0;
    for (size_t i = 0; i < len && n < 900; i++, shown++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\n') {
            line[n++] = '\\';
            line[n++] = 'n';
            if (i + 1 < len) {
                line[n++] = '\n';
                n += (size_t)snprintf(line + n, sizeof(line) - n,
                                      "%lld.%03lld [%s] %c: ", (long long)(t / 1000),
                                      (long long)(t % 1000), l->name, dir);
            }
        } else if (ch == '\r') {
            line[n++] = '\\';
            line[n++] = 'r';
        } else if (ch < 0x20 || ch >= 0x7f) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", ch);
        } else {
            line[n++] = (char)ch;
        }
    }
    if (shown < len)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "... (%zu bytes in all)", len);
    line[n++] = '\n';
    log_put(line, n);
}

static trace_label *label_get(const char *name)
{
    for (size_t i = 0; i < n_labels; i++) {
        if (strcmp(labels[i].name, name) == 0)
            return &labels[i];
    }
    if (n_labels == MAX_LABELS)
        return &labels[MAX_LABELS - 1];
    trace_label *l = &labels[n_labels++];
    snprintf(l->name, sizeof(l->name), "%s", name);
    return l;
}

size_t it_trace_sent(const char *label)
{
    return label_get(label)->sent.total;
}

int it_trace_sent_contains(const char *label, size_t from, const char *needle)
{
    size_t len;
    char *all = ring_copy(&label_get(label)->sent, from, &len);
    if (all == NULL)
        return 0;
    int found = mem_contains(all, len, needle);
    free(all);
    return found;
}

int it_trace_sent_count(const char *label, size_t from, const char *needle)
{
    size_t len;
    char *all = ring_copy(&label_get(label)->sent, from, &len);
    if (all == NULL)
        return 0;
    int n = 0;
    size_t nlen = strlen(needle);
    for (size_t i = 0; nlen > 0 && i + nlen <= len; i++) {
        if (memcmp(all + i, needle, nlen) == 0) {
            n++;
            i += nlen - 1;
        }
    }
    free(all);
    return n;
}

int it_trace_received_contains(const char *label, const char *needle)
{
    size_t len;
    char *all = ring_copy(&label_get(label)->received, 0, &len);
    if (all == NULL)
        return 0;
    int found = mem_contains(all, len, needle);
    free(all);
    return found;
}

void it_trace_dump(void)
{
    size_t start = log_total > LOG_CAP ? log_total - LOG_CAP : 0;
    size_t want = 24 * 1024;
    if (log_total - start > want)
        start = log_total - want;
    fprintf(stderr, "---- trace (last %zu bytes; IMK_IT_TRACE=1 shows all) ----\n",
            log_total - start);
    for (size_t i = start; i < log_total; i++)
        fputc(log_ring[i % LOG_CAP], stderr);
    fprintf(stderr, "---- end of trace ----\n");
}

static int64_t begun_ms;

void it_begin(const char *name)
{
    begun_ms = it_now_ms();
    char line[256];
    snprintf(line, sizeof(line), "==== %s\n", name);
    log_str(line);
}

void it_end(const char *name, int failures)
{
    fprintf(stderr, "%s %s (%lld ms)\n", failures == 0 ? "ok  " : "FAIL", name,
            (long long)(it_now_ms() - begun_ms));
    if (failures != 0 && trace_live != 1)
        it_trace_dump();
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

imk_conn_options it_options(const char *label)
{
    if (trace_live < 0) {
        const char *t = getenv("IMK_IT_TRACE");
        trace_live = t != NULL && strcmp(t, "1") == 0;
    }
    imk_conn_options o = IMK_CONN_OPTIONS_INIT;
    o.connect_timeout_ms = 10000;
    o.io_timeout_ms = 30000;
    o.trace = trace_hook;
    o.trace_user = label_get(label);
    return o;
}

imk_conn_options it_options_tls(const it_dovecot *d, const char *label)
{
    imk_conn_options o = it_options(label);
    o.host = "127.0.0.1";
    o.port = d->imaps_port;
    o.security = IMK_SECURITY_TLS;
    o.ca_file = d->ca_file;
    return o;
}

imk_conn_options it_options_tunnel(const char *command, const char *label)
{
    imk_conn_options o = it_options(label);
    o.tunnel = command;
    return o;
}

static const char *label_of(const imk_conn_options *o)
{
    const trace_label *l = o->trace_user;
    return l != NULL ? l->name : "?";
}

/* A connection step failed: say which, on which label, and why; free c. */
static imk_conn *connect_failed(imk_conn *c, const imk_conn_options *o, const char *call, int rc)
{
    fprintf(stderr, "%s: [%s] %s: %s: %s\n", test_name, label_of(o), call, imk_error_name(rc),
            c != NULL ? imk_conn_error(c) : "");
    imk_conn_free(c);
    return NULL;
}

imk_conn *it_connect(const imk_conn_options *o)
{
    imk_conn *c = NULL;
    int rc = imk_conn_new(o, NULL, &c);
    if (rc < 0)
        return connect_failed(c, o, "imk_conn_new", rc);
    rc = imk_conn_connect(c);
    if (rc < 0)
        return connect_failed(c, o, "imk_conn_connect", rc);
    return c;
}

imk_conn *it_connect_login(const imk_conn_options *o, const char *user, const char *password)
{
    imk_conn *c = it_connect(o);
    if (c == NULL)
        return NULL;
    imk_auth a = IMK_AUTH_INIT;
    a.user = user;
    a.password = password;
    int rc = imk_conn_login(c, &a);
    if (rc < 0)
        return connect_failed(c, o, "imk_conn_login", rc);
    return c;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static void append_text(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void append_text(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static void format_seqset(char *buf, size_t cap, imk_seqset set)
{
    buf[0] = '\0';
    for (size_t i = 0; i < set.count; i++) {
        const imk_range *r = &set.ranges[i];
        if (r->first == r->last)
            append_text(buf, cap, "%s%u", i ? "," : "", r->first);
        else
            append_text(buf, cap, "%s%u:%u", i ? "," : "", r->first, r->last);
    }
}

static void on_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    it_events *e = user;
    unsigned t = (unsigned)ev->type;
    if (t < 32)
        e->count[t]++;
    switch (ev->type) {
    case IMK_SE_EXISTS:
        e->last_exists = imk_view_exists(imk_conn_view(c));
        if (e->stop_idle_on_exists)
            imk_conn_idle_stop(c);
        break;
    case IMK_SE_VANISHED:
        e->vanished_earlier = ev->earlier;
        format_seqset(e->vanished_uids, sizeof(e->vanished_uids), ev->uids);
        for (size_t i = 0; i < ev->uids.count && e->vanished_count < 32; i++)
            e->vanished_ranges[e->vanished_count++] = ev->uids.ranges[i];
        break;
    case IMK_SE_UNSOLICITED:
        if (ev->response != NULL) {
            const imk_response *r = ev->response;
            append_text(e->unsolicited_names, sizeof(e->unsolicited_names), "%.*s ",
                        (int)r->name.len, r->name.data != NULL ? r->name.data : "");
            if (r->kind == IMK_KIND_STATUS)
                append_text(e->unsolicited_status, sizeof(e->unsolicited_status), "%.*s=%llu ",
                            (int)r->u.status.mailbox.len,
                            r->u.status.mailbox.data != NULL ? r->u.status.mailbox.data : "",
                            (unsigned long long)r->u.status.messages);
        }
        break;
    default:
        break;
    }
}

void it_events_attach(imk_conn *c, it_events *ev)
{
    it_events_clear(ev);
    imk_conn_on_event(c, on_event, ev);
}

int it_events_vanished_has(const it_events *ev, uint32_t uid)
{
    imk_seqset set = {ev->vanished_count, ev->vanished_ranges};
    return it_seqset_has(set, uid);
}

void it_events_clear(it_events *ev)
{
    int stop = ev->stop_idle_on_exists;
    memset(ev, 0, sizeof(*ev));
    ev->stop_idle_on_exists = stop;
}

/* ------------------------------------------------------------------ */
/* Mail                                                                */
/* ------------------------------------------------------------------ */

/* A thread (1 -> 2 -> 4), an encoded subject (3), a list mail (5). The Date
 * headers make SORT (REVERSE DATE) = 4 5 3 2 1 and THREAD REFERENCES =
 * (1 2 4)(3)(5). */
const it_message it_messages[] = {
    {"kickoff",
     "Return-Path: <alice@example.org>\r\n"
     "Date: Mon, 03 Jul 2023 09:12:44 +0200\r\n"
     "From: Alice Example <alice@example.org>\r\n"
     "To: Bob Builder <bob@example.com>\r\n"
     "Subject: Project kickoff\r\n"
     "Message-ID: <kickoff-1@example.org>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=us-ascii\r\n"
     "Content-Transfer-Encoding: 7bit\r\n"
     "\r\n"
     "Hi Bob,\r\n"
     "\r\n"
     "the kickoff meeting is on Thursday at 10:00 in room 4.\r\n"
     "Please bring the draft plan.\r\n"
     "\r\n"
     "Alice\r\n",
     "Project kickoff", "<kickoff-1@example.org>", "Mon, 03 Jul 2023 09:12:44 +0200"},
    {"reply",
     "Date: Mon, 03 Jul 2023 11:40:02 +0200\r\n"
     "From: Bob Builder <bob@example.com>\r\n"
     "To: Alice Example <alice@example.org>\r\n"
     "Cc: Carol Chen <carol@example.net>, dave@example.net\r\n"
     "Subject: Re: Project kickoff\r\n"
     "Message-ID: <reply-2@example.com>\r\n"
     "In-Reply-To: <kickoff-1@example.org>\r\n"
     "References: <kickoff-1@example.org>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: multipart/mixed; boundary=\"==mixed-2\"\r\n"
     "\r\n"
     "This is a multi-part message in MIME format.\r\n"
     "\r\n"
     "--==mixed-2\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: 7bit\r\n"
     "\r\n"
     "Thursday works. The draft plan is attached.\r\n"
     "\r\n"
     "Bob\r\n"
     "\r\n"
     "--==mixed-2\r\n"
     "Content-Type: application/pdf; name=\"draft-plan.pdf\"\r\n"
     "Content-Disposition: attachment; filename=\"draft-plan.pdf\"\r\n"
     "Content-Transfer-Encoding: base64\r\n"
     "\r\n"
     "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nL1BhZ2VzIDIgMCBSPj4K\r\n"
     "ZW5kb2JqCjIgMCBvYmoKPDwvVHlwZS9QYWdlcy9LaWRzWzMgMCBSXS9Db3VudCAxPj4KZW5kb2Jq\r\n"
     "\r\n"
     "--==mixed-2--\r\n",
     "Re: Project kickoff", "<reply-2@example.com>", "Mon, 03 Jul 2023 11:40:02 +0200"},
    {"gruesse",
     "Date: Tue, 04 Jul 2023 08:05:17 +0200\r\n"
     "From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>\r\n"
     "To: Alice Example <alice@example.org>\r\n"
     "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCTIFByb2pla3Q=?=\r\n"
     "Message-ID: <gruesse-3@example.de>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n"
     "\r\n"
     "Hallo Alice,\r\n"
     "\r\n"
     "viele Gr=C3=BC=C3=9Fe aus M=C3=BCnchen! Das Projekt l=C3=A4uft gut.\r\n"
     "\r\n"
     "J=C3=B6rg\r\n",
     "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCTIFByb2pla3Q=?=", "<gruesse-3@example.de>",
     "Tue, 04 Jul 2023 08:05:17 +0200"},
    {"room",
     "Date: Thu, 06 Jul 2023 10:01:00 +0200\r\n"
     "From: Alice Example <alice@example.org>\r\n"
     "To: Bob Builder <bob@example.com>\r\n"
     "Subject: Room changed\r\n"
     "Message-ID: <room-7@example.org>\r\n"
     "In-Reply-To: <reply-2@example.com>\r\n"
     "References: <kickoff-1@example.org> <reply-2@example.com>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=us-ascii\r\n"
     "\r\n"
     "The kickoff moves to room 7.\r\n",
     "Room changed", "<room-7@example.org>", "Thu, 06 Jul 2023 10:01:00 +0200"},
    {"nightly",
     "Date: Wed, 05 Jul 2023 07:00:00 -0400\r\n"
     "From: \"Build Robot\" <ci@builds.example.com>\r\n"
     "To: undisclosed-recipients:;\r\n"
     "Subject: [ci] nightly build #1729 passed\r\n"
     "Message-ID: <nightly-1729@builds.example.com>\r\n"
     "MIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=us-ascii\r\n"
     "\r\n"
     "Nightly build #1729 passed: 412 tests, 0 failures.\r\n",
     "[ci] nightly build #1729 passed", "<nightly-1729@builds.example.com>",
     "Wed, 05 Jul 2023 07:00:00 -0400"},
};
const size_t it_message_count = sizeof(it_messages) / sizeof(it_messages[0]);

/* The next printable character of it_big_message's text (xorshift32). */
static char big_message_char(uint32_t *x)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+=()";
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return alphabet[*x % (sizeof(alphabet) - 1)];
}

char *it_big_message(size_t size, unsigned seed)
{
    char header[256];
    int hn = snprintf(header, sizeof(header),
                      "From: Big Sender <big@example.org>\r\n"
                      "To: Alice Example <alice@example.org>\r\n"
                      "Subject: big message %u (%zu bytes)\r\n"
                      "Message-ID: <big-%u-%zu@example.org>\r\n"
                      "\r\n",
                      seed, size, seed, size);
    size_t hlen = (size_t)hn;
    if (size < hlen + 2)
        return NULL;
    char *m = malloc(size + 1);
    if (m == NULL)
        return NULL;
    memcpy(m, header, hlen);
    uint32_t x = seed * 2654435761u + 1u;
    size_t at = hlen;
    while (size - at > 80) {
        for (int i = 0; i < 76; i++)
            m[at++] = big_message_char(&x);
        m[at++] = '\r';
        m[at++] = '\n';
    }
    while (size - at > 2)
        m[at++] = big_message_char(&x);
    m[at++] = '\r';
    m[at++] = '\n';
    m[at] = '\0';
    return m;
}

char *it_binary_message(size_t *len_out)
{
    static const char header[] = "From: Alice Example <alice@example.org>\r\n"
                                 "To: Bob Builder <bob@example.com>\r\n"
                                 "Subject: binary content\r\n"
                                 "Message-ID: <binary-1@example.org>\r\n"
                                 "MIME-Version: 1.0\r\n"
                                 "Content-Type: application/octet-stream\r\n"
                                 "Content-Transfer-Encoding: binary\r\n"
                                 "\r\n";
    size_t hlen = sizeof(header) - 1;
    size_t len = hlen + 4 * 256 + 2;
    char *m = malloc(len);
    if (m == NULL)
        return NULL;
    memcpy(m, header, hlen);
    for (size_t i = 0; i < 4 * 256; i++)
        m[hlen + i] = (char)(unsigned char)((i * 7u + i / 256u) & 0xffu);
    m[len - 2] = '\r';
    m[len - 1] = '\n';
    *len_out = len;
    return m;
}

int it_maildir_put(const char *maildir, const char *data, size_t len, const char *flags)
{
    static unsigned serial;
    char tmp[1200], dst[1300];
    snprintf(tmp, sizeof(tmp), "%s/tmp/%lld.M%uP%d.imapkit-it", maildir, (long long)time(NULL),
             ++serial, (int)getpid());
    struct stat st;
    if (stat(maildir, &st) != 0) {
        fprintf(stderr, "%s: maildir %s: %s\n", test_name, maildir, strerror(errno));
        return 0;
    }
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", test_name, tmp, strerror(errno));
        return 0;
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (ok && geteuid() == 0 && chown(tmp, st.st_uid, st.st_gid) != 0)
        ok = 0;
    const char *base = strrchr(tmp, '/') + 1;
    if (flags != NULL)
        snprintf(dst, sizeof(dst), "%s/cur/%s:2,%s", maildir, base, flags);
    else
        snprintf(dst, sizeof(dst), "%s/new/%s", maildir, base);
    if (ok && rename(tmp, dst) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "%s: writing %s failed: %s\n", test_name, dst, strerror(errno));
    return ok;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static void show_difference(const char *what, const char *got, const char *want, size_t at)
{
    fprintf(stderr, "%s: %s: first difference at byte %zu:\n   got:      ", test_name, what, at);
    for (size_t i = 0; i < 24; i++)
        fprintf(stderr, "%02x ", (unsigned char)got[i]);
    fprintf(stderr, "\n   expected: ");
    for (size_t i = 0; i < 24; i++)
        fprintf(stderr, "%02x ", (unsigned char)want[i]);
    fputc('\n', stderr);
}

int it_fetch_equals(imk_conn *c, uint32_t uid, const char *section, const void *expect, size_t len)
{
    char set[16], items[128];
    snprintf(set, sizeof(set), "%u", uid);
    snprintf(items, sizeof(items), "(UID %s)", section != NULL ? section : "BODY.PEEK[]");
    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(c, 1, set, items, &it);
    if (rc < 0) {
        fprintf(stderr, "%s: UID FETCH %s %s: %s: %s\n", test_name, set, items, imk_error_name(rc),
                imk_conn_error(c));
        return 0;
    }
    const char *want = expect;
    size_t at = 0;
    int ok = 1, begun = 0, ended = 0, records = 0;
    imk_fetch_item item;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        switch (item.type) {
        case IMK_FI_BODY_BEGIN:
            begun++;
            at = 0;
            if (item.body->size != len) {
                fprintf(stderr, "%s: UID %u %s: the server announces %llu bytes, expected %zu\n",
                        test_name, uid, items, (unsigned long long)item.body->size, len);
                ok = 0;
            }
            break;
        case IMK_FI_BODY_DATA:
            if (at + item.len > len) {
                fprintf(stderr, "%s: UID %u: more body bytes than expected (%zu + %zu > %zu)\n",
                        test_name, uid, at, item.len, len);
                ok = 0;
            } else if (ok && memcmp(item.data, want + at, item.len) != 0) {
                size_t d = 0;
                while (item.data[d] == want[at + d])
                    d++;
                char got24[24] = {0}, want24[24] = {0};
                size_t n = item.len - d < 24 ? item.len - d : 24;
                memcpy(got24, item.data + d, n);
                n = len - at - d < 24 ? len - at - d : 24;
                memcpy(want24, want + at + d, n);
                show_difference("body", got24, want24, at + d);
                ok = 0;
            }
            at += item.len;
            break;
        case IMK_FI_BODY_END:
            ended++;
            break;
        case IMK_FI_MESSAGE:
            records++;
            if (item.msg == NULL || !(item.msg->present & IMK_FETCH_UID) || item.msg->uid != uid) {
                fprintf(stderr, "%s: UID FETCH %u: a record for UID %u\n", test_name, uid,
                        item.msg != NULL ? item.msg->uid : 0);
                ok = 0;
            }
            break;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "%s: imk_fetch_iter_next: %s: %s\n", test_name, imk_error_name(rc),
                imk_conn_error(c));
        ok = 0;
    }
    const imk_result *r = NULL;
    rc = imk_fetch_iter_end(it, &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK) {
        fprintf(stderr, "%s: UID FETCH %u ended with %s (%s)\n", test_name, uid, imk_error_name(rc),
                r != NULL ? it_describe(r) : imk_conn_error(c));
        ok = 0;
    }
    if (begun != 1 || ended != 1 || records != 1) {
        fprintf(stderr, "%s: UID FETCH %u: %d body begin, %d end, %d records (1 each expected)\n",
                test_name, uid, begun, ended, records);
        ok = 0;
    }
    if (ok && at != len) {
        fprintf(stderr, "%s: UID FETCH %u: %zu body bytes, expected %zu\n", test_name, uid, at,
                len);
        ok = 0;
    }
    return ok;
}

int it_str_eq(imk_str s, const char *c)
{
    size_t n = strlen(c);
    return s.data != NULL && s.len == n && memcmp(s.data, c, n) == 0;
}

int it_str_ieq(imk_str s, const char *c)
{
    size_t n = strlen(c);
    return s.data != NULL && s.len == n && strncasecmp(s.data, c, n) == 0;
}

const imk_list_entry *it_list_find(const imk_result *r, const char *utf8)
{
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < r->list_count; i++) {
        if (it_str_eq(r->lists[i].list.mailbox, utf8))
            return &r->lists[i];
    }
    return NULL;
}

int it_has_flag(imk_strlist flags, const char *flag)
{
    for (size_t i = 0; i < flags.count; i++) {
        if (it_str_ieq(flags.items[i], flag))
            return 1;
    }
    return 0;
}

int it_seqset_has(imk_seqset set, uint32_t n)
{
    for (size_t i = 0; i < set.count; i++) {
        uint32_t a = set.ranges[i].first, b = set.ranges[i].last;
        if (a > b && b != 0) {
            uint32_t t = a;
            a = b;
            b = t;
        }
        if (n >= a && (b == 0 || n <= b))
            return 1;
    }
    return 0;
}

size_t it_seqset_count(imk_seqset set)
{
    size_t n = 0;
    for (size_t i = 0; i < set.count; i++) {
        uint32_t a = set.ranges[i].first, b = set.ranges[i].last;
        n += a <= b ? (size_t)(b - a) + 1 : (size_t)(a - b) + 1;
    }
    return n;
}

const char *it_describe(const imk_result *r)
{
    static char buf[600];
    if (r == NULL)
        return "(no result)";
    const char *code = "";
    char codebuf[80] = "";
    if (r->code != NULL) {
        snprintf(codebuf, sizeof(codebuf), "[%.*s] ", (int)r->code->name.len,
                 r->code->name.data != NULL ? r->code->name.data : "");
        code = codebuf;
    }
    snprintf(buf, sizeof(buf), "%s%s%s %s%.*s", imk_status_name(r->status),
             r->error ? " error=" : "", r->error ? imk_error_name(r->error) : "", code,
             (int)(r->text.len > 400 ? 400 : r->text.len),
             r->text.data != NULL ? r->text.data : "");
    return buf;
}

int it_ok(const imk_result *r)
{
    return r != NULL && r->status == IMK_STATUS_OK;
}

uint32_t it_first_dest_uid(const imk_result *r)
{
    if (r == NULL || !r->has_appenduid || r->dest_uids.count == 0)
        return 0;
    return r->dest_uids.ranges[0].first;
}

uint32_t it_append_text(imk_conn *c, const char *mailbox, const char *text)
{
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = text;
    m.size = strlen(text);
    const imk_result *r = NULL;
    int rc = imk_conn_append(c, mailbox, &m, 1, &r);
    if (rc != 0 || !it_ok(r)) {
        it_note("APPEND to %s: %s %s", mailbox, imk_error_name(rc),
                rc < 0 ? imk_conn_error(c) : it_describe(r));
        return 0;
    }
    uint32_t uid = it_first_dest_uid(r);
    return uid != 0 ? uid : 1;
}

int it_ids_equal(const imk_result *r, const uint32_t *want, size_t n)
{
    uint32_t got[64];
    size_t count = r != NULL ? imk_result_ids(r, got, 64) : 0;
    int same = count == n;
    for (size_t i = 0; same && i < n; i++)
        same = got[i] == want[i];
    if (!same) {
        fprintf(stderr, "   ids: got");
        for (size_t i = 0; i < count && i < 64; i++)
            fprintf(stderr, " %u", got[i]);
        fprintf(stderr, ", expected");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %u", want[i]);
        fputc('\n', stderr);
    }
    return same;
}

int it_learn_uids(imk_conn *c)
{
    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(c, 0, "1:*", "(UID FLAGS)", &it);
    if (rc < 0) {
        fprintf(stderr, "%s: FETCH 1:* (UID FLAGS): %s: %s\n", test_name, imk_error_name(rc),
                imk_conn_error(c));
        return -1;
    }
    imk_fetch_item item;
    int n = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1)
        n += item.type == IMK_FI_MESSAGE;
    const imk_result *r = NULL;
    int end = imk_fetch_iter_end(it, &r);
    if (rc < 0 || end < 0 || !it_ok(r)) {
        fprintf(stderr, "%s: FETCH 1:* (UID FLAGS) ended with %s / %s (%s)\n", test_name,
                imk_error_name(rc), imk_error_name(end), it_describe(r));
        return -1;
    }
    return n;
}

int it_expunged_equal(const imk_result *r, const uint32_t *want, size_t n)
{
    size_t count = r != NULL ? r->expunged_count : 0;
    int same = count == n;
    for (size_t i = 0; same && i < n; i++)
        same = r->expunged_uids[i] == want[i];
    if (!same) {
        fprintf(stderr, "   expunged_uids: got %zu:", count);
        for (size_t i = 0; i < count && i < 64; i++)
            fprintf(stderr, " %u", r->expunged_uids[i]);
        fprintf(stderr, ", expected %zu:", n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %u", want[i]);
        fprintf(stderr, " (%s)\n", it_describe(r));
    }
    return same;
}

long it_minutes_utc(const imk_datetime *t)
{
    /* days_from_civil (H. Hinnant), exact for the proleptic Gregorian calendar */
    long y = t->year - (t->month <= 2);
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long mp = (t->month + 9) % 12;
    long doy = (153 * mp + 2) / 5 + t->day - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long days = era * 146097 + doe - 719468;
    return days * 1440 + t->hour * 60 + t->minute - t->zone_minutes;
}

imk_strlist it_view_flags(imk_conn *c, uint32_t uid)
{
    imk_strlist none = {0, NULL};
    uint32_t seq = imk_view_seq_of_uid(imk_conn_view(c), uid);
    imk_view_message m;
    if (seq == 0 || !imk_view_message_at(imk_conn_view(c), seq, &m) || !m.flags_known)
        return none;
    return m.flags;
}

void it_sleep_ms(long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long it_status_messages(imk_conn *c, const char *mailbox)
{
    const imk_result *r = NULL;
    int rc = imk_conn_status(c, mailbox, "MESSAGES", &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK || r->status_count < 1 ||
        !(r->statuses[0].present & IMK_STATUS_MESSAGES)) {
        fprintf(stderr, "%s: STATUS %s (MESSAGES): %s %s\n", test_name, mailbox, imk_error_name(rc),
                rc < 0 ? imk_conn_error(c) : it_describe(r));
        return -1;
    }
    return (long)r->statuses[0].messages;
}

/* ------------------------------------------------------------------ */
/* Children and time                                                   */
/* ------------------------------------------------------------------ */

int it_child_start(unsigned delay_ms, int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", test_name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        is_child = 1;
        alarm(60);
        struct timespec ts = {(time_t)(delay_ms / 1000), (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        int rc = fn(arg);
        fflush(NULL);
        _exit(rc == 0 ? 0 : 1);
    }
    return (int)pid;
}

int it_child_wait(int pid)
{
    if (pid <= 0)
        return -1;
    int st = 0;
    while (waitpid((pid_t)pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_loop(imk_conn *c, const int *flag, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    while (!*flag) {
        int64_t left = deadline - it_now_ms();
        if (left <= 0)
            return IMK_ETIMEDOUT;
        int fd = imk_conn_fd(c);
        unsigned want = imk_conn_events(c);
        int wait = imk_conn_timeout(c);
        if (wait < 0 || wait > left)
            wait = (int)left;
        unsigned revents = 0;
        if (fd >= 0 && want != 0) {
            struct pollfd p = {fd, 0, 0};
            if (want & IMK_WANT_READ)
                p.events |= POLLIN;
            if (want & IMK_WANT_WRITE)
                p.events |= POLLOUT;
            int n = poll(&p, 1, wait);
            if (n < 0 && errno != EINTR)
                return IMK_ENET;
            if (n > 0) {
                if (p.revents & (POLLIN | POLLHUP | POLLERR))
                    revents |= IMK_WANT_READ;
                if (p.revents & (POLLOUT | POLLERR))
                    revents |= IMK_WANT_WRITE;
            }
        } else if (!*flag) {
            struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        int rc = imk_conn_process(c, revents);
        if (rc < 0)
            return rc;
    }
    return 0;
}
