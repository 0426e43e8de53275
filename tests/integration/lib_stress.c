/* SPDX-License-Identifier: MIT */
/*
 * lib_stress.c - see lib_stress.h. Linux-specific where it reads /proc
 * (process command lines, socket owners, memory figures); everything else
 * is POSIX. No function exits the process or prints on success: the tests
 * decide what a failure means.
 *
 * Finding the server of one TCP connection: our socket's local address is
 * the server socket's remote one and vice versa; /proc/net/tcp prints both
 * as hex (the address as the kernel stores it, the port in host order) next
 * to the socket's inode, and /proc/<pid>/fd/<n> of its owner links to
 * "socket:[inode]".
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_stress.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- random ---------------------------------------------------------- */

void stress_rng_seed(stress_rng *r, uint64_t seed)
{
    /* splitmix64 of the seed: any seed, 0 included, gives a good state. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->state = z != 0 ? z : 0x2545F4914F6CDD1Dull;
}

uint64_t stress_rng_next(stress_rng *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

uint32_t stress_rng_below(stress_rng *r, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)((stress_rng_next(r) >> 32) % n);
}

uint64_t stress_seed(const char *name)
{
    const char *v = getenv(name);
    if (v != NULL && *v != '\0') {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 0);
        if (errno == 0 && *end == '\0')
            return (uint64_t)s;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000003u) ^ ((uint64_t)ts.tv_nsec << 7) ^ (uint64_t)getpid();
}

/* ---- time ------------------------------------------------------------ */

int64_t stress_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stress_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- memory and disk ------------------------------------------------- */

long stress_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    size_t flen = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

int stress_reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, "5", 1);
    close(fd);
    return n == 1 ? 0 : -1;
}

int stress_free_bytes(const char *path, uint64_t *out)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return -1;
    *out = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 0;
}

/* ---- files ----------------------------------------------------------- */

int stress_owner_of(const char *path, uid_t *uid, gid_t *gid)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    *uid = st.st_uid;
    *gid = st.st_gid;
    return 0;
}

static int give(const char *path, uid_t uid, gid_t gid)
{
    if (geteuid() != 0)
        return 0;
    return chown(path, uid, gid);
}

int stress_maildir_create(const char *dir, uid_t uid, gid_t gid)
{
    static const char *const subs[] = {"", "/cur", "/new", "/tmp"};
    char path[4096];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        int n = snprintf(path, sizeof path, "%s%s", dir, subs[i]);
        if (n < 0 || (size_t)n >= sizeof path)
            return -1;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        if (give(path, uid, gid) != 0)
            return -1;
    }
    return 0;
}

int stress_maildir_path(const char *dir, unsigned long serial, const char *info, size_t len,
                        char *buf, size_t cap)
{
    /* <time>.M<serial>P<pid>.imapkit: the time part orders the files (and
     * so the UIDs the server assigns) by serial. */
    int n = snprintf(buf, cap, "%s/cur/%lu.M%luP%ld.imapkit,S=%zu,W=%zu:2,%s", dir,
                     1700000000ul + serial, serial, (long)getpid(), len, len, info);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int stress_maildir_put(const char *dir, unsigned long serial, const char *info, const void *data,
                       size_t len, uid_t uid, gid_t gid)
{
    char path[4096];
    if (stress_maildir_path(dir, serial, info, len, path, sizeof path) != 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0)
        return -1;
    return give(path, uid, gid);
}

int stress_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int rc = 0;
    struct dirent *de;
    char sub[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int n = snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        if (n < 0 || (size_t)n >= sizeof sub || stress_rmtree(sub) != 0)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0)
        rc = -1;
    return rc;
}

/* ---- processes ------------------------------------------------------- */

/* Calls fn(pid, user) for every numeric entry of /proc except ourselves;
 * stops early when fn returns nonzero. */
static void each_pid(int (*fn)(pid_t pid, void *user), void *user)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end != '\0' || v <= 0 || (pid_t)v == self)
            continue;
        if (fn((pid_t)v, user) != 0)
            break;
    }
    closedir(d);
}

typedef struct pid_list {
    pid_t *out;
    size_t cap, n;
    const char *needle;
    char sock[64];
} pid_list;

static void pid_add(pid_list *l, pid_t pid)
{
    if (l->n < l->cap)
        l->out[l->n] = pid;
    l->n++;
}

static int match_cmdline(pid_t pid, void *user)
{
    pid_list *l = user;
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    if (strstr(buf, l->needle) != NULL)
        pid_add(l, pid);
    return 0;
}

size_t stress_pids_by_cmdline(const char *needle, pid_t *out, size_t cap)
{
    pid_list l = {out, cap, 0, needle, ""};
    each_pid(match_cmdline, &l);
    return l.n;
}

/* The kernel's /proc/net/tcp{,6} spelling of an address and port. */
static int proc_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uint32_t raw;
        memcpy(&raw, &a->sin_addr, 4);
        return snprintf(buf, cap, "%08X:%04X", raw, ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uint32_t w[4];
        memcpy(w, &a->sin6_addr, 16);
        return snprintf(buf, cap, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3],
                        ntohs(a->sin6_port));
    }
    return -1;
}

static int match_socket(pid_t pid, void *user)
{
    pid_list *l = user;
    char dir[64], link[384], target[128];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, l->sock) == 0) {
            pid_add(l, pid);
            break;
        }
    }
    closedir(d);
    return 0;
}

size_t stress_pids_by_tcp_peer(int fd, pid_t *out, size_t cap)
{
    struct sockaddr_storage mine, theirs;
    socklen_t ml = sizeof mine, tl = sizeof theirs;
    if (getsockname(fd, (struct sockaddr *)&mine, &ml) != 0 ||
        getpeername(fd, (struct sockaddr *)&theirs, &tl) != 0)
        return 0;
    char want_local[64], want_remote[64];
    /* The server socket: local = our peer, remote = us. */
    if (proc_addr(&theirs, want_local, sizeof want_local) < 0 ||
        proc_addr(&mine, want_remote, sizeof want_remote) < 0)
        return 0;
    FILE *f = fopen(mine.ss_family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp", "r");
    if (f == NULL)
        return 0;
    char line[512];
    unsigned long inode = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char local[64], remote[64];
        unsigned st;
        unsigned long ino;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st, &ino) !=
            4)
            continue;
        if (strcasecmp(local, want_local) == 0 && strcasecmp(remote, want_remote) == 0 &&
            ino != 0) {
            inode = ino;
            break;
        }
    }
    fclose(f);
    if (inode == 0)
        return 0;
    pid_list l = {out, cap, 0, NULL, ""};
    snprintf(l.sock, sizeof l.sock, "socket:[%lu]", inode);
    each_pid(match_socket, &l);
    return l.n;
}

size_t stress_signal_pids(const pid_t *pids, size_t n, int sig)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 1 && kill(pids[i], sig) == 0)
            done++;
    return done;
}

int stress_wait_gone(const pid_t *pids, size_t n, int timeout_ms)
{
    int64_t deadline = stress_now_ms() + timeout_ms;
    for (;;) {
        size_t alive = 0;
        for (size_t i = 0; i < n; i++) {
            if (pids[i] <= 1 || kill(pids[i], 0) != 0)
                continue;
            /* A zombie that is not ours (its parent reaps it) counts as
             * gone: it holds no descriptors any more. */
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/%ld/stat", (long)pids[i]);
            FILE *f = fopen(path, "r");
            if (f != NULL) {
                size_t r = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[r] = '\0';
                const char *rp = strrchr(buf, ')');
                if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
                    continue;
            }
            alive++;
        }
        if (alive == 0)
            return 1;
        if (stress_now_ms() >= deadline)
            return 0;
        stress_sleep_ms(10);
    }
}

int stress_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* ---- a fake server --------------------------------------------------- */

/* One connection: the greeting, then silence until the client closes. */
static void fake_session(int c, const char *greeting)
{
    if (greeting != NULL) {
        size_t len = strlen(greeting);
        if (send(c, greeting, len, MSG_NOSIGNAL) != (ssize_t)len)
            _exit(0);
    }
    char buf[4096];
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    _exit(0);
}

/* The fake server's process: a process group of its own (so that one
 * kill ends it and every connection's process), children reaped by the
 * kernel (SIGCHLD ignored). */
static void fake_serve(int lfd, const char *greeting)
{
    setpgid(0, 0);
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            fake_session(c, greeting);
        }
        close(c);
    }
}

int stress_fake_start(const char *greeting, stress_fake *out)
{
    out->pid = -1;
    out->port = 0;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 8) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        close(lfd);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(lfd);
        return -1;
    }
    if (pid == 0) {
        fake_serve(lfd, greeting);
        _exit(0);
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    close(lfd);
    out->pid = pid;
    out->port = ntohs(a.sin_port);
    return 0;
}

void stress_fake_stop(stress_fake *f)
{
    if (f->pid > 0) {
        if (kill(-f->pid, SIGKILL) != 0)
            kill(f->pid, SIGKILL);
        while (waitpid(f->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    f->pid = -1;
}

/* ---- flags ----------------------------------------------------------- */

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t stress_flags_canon(imk_strlist flags, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    /* Copy each flag lower-cased into one scratch area, sort pointers. */
    size_t total = 0;
    for (size_t i = 0; i < flags.count; i++)
        total += flags.items[i].len + 1;
    char *scratch = malloc(total + 1);
    char **v = malloc((flags.count + 1) * sizeof *v);
    if (scratch == NULL || v == NULL) {
        free(scratch);
        free(v);
        return 0;
    }
    size_t nv = 0, off = 0;
    for (size_t i = 0; i < flags.count; i++) {
        imk_str f = flags.items[i];
        if (f.len == 7 && strncasecmp(f.data, "\\Recent", 7) == 0)
            continue;
        v[nv++] = scratch + off;
        for (size_t k = 0; k < f.len; k++)
            scratch[off++] = (char)tolower((unsigned char)f.data[k]);
        scratch[off++] = '\0';
    }
    qsort(v, nv, sizeof *v, cmp_cstr);
    size_t len = 0;
    for (size_t i = 0; i < nv; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i > 0 ? " " : "", v[i]);
        if (n < 0)
            break;
        if ((size_t)n >= cap - len) {
            len = cap - 1;
            break;
        }
        len += (size_t)n;
    }
    free(scratch);
    free(v);
    return len;
}
