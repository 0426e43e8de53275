/* SPDX-License-Identifier: MIT */
/*
 * test_it_failure.c - what the client does when the server fails under it,
 * against real servers: a Dovecot preauth tunnel and a Dovecot daemon (two
 * transports: a socketpair to a child process, and TCP).
 *
 *   killed     the server process serving the connection gets SIGKILL
 *              while the FETCH iterator is inside a body literal, while
 *              the client IDLEs, and while an APPEND literal is being
 *              uploaded: the call returns a negative error at once (the
 *              end of the stream is seen: never IMK_ETIMEDOUT), the message
 *              names the command and the server, imk_fetch_iter_end returns
 *              the same error, and the connection can be freed or
 *              reconnected with imk_conn_connect and used again;
 *   stopped    the server process gets SIGSTOP: the waiting call fails with
 *              IMK_ETIMEDOUT once io_timeout_ms (500 ms here) has passed
 *              without a byte, and imk_conn_free is clean (SIGCONT after);
 *   silent     a fake server that never greets, or greets and then never
 *              answers: IMK_ETIMEDOUT again, for connect, NOOP and IDLE;
 *   tunnel     a tunnel command that exits at once: imk_conn_connect fails
 *              with a message holding the exit status and the command's
 *              stderr text; one that answers NOOP and exits: the answer
 *              still counts (bytes sent before the end are never dropped),
 *              the next command fails.
 *
 * Every scenario also counts this process's descriptors before and after:
 * a failed connection that was freed leaves none behind.
 *
 * The server processes are found by a marker in their command line (the
 * tunnel's configuration path) or by the other end of the TCP connection
 * (lib_stress.c). Memory and descriptor hygiene is checked by the ASan run
 * of CI (check-asan runs every test).
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_stress.h"
#include "test.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The message fetched: larger than anything the kernel may hold in flight
 * (loopback TCP send + receive buffers reach ~10 MiB with the default
 * autotuning limits), so a kill or stop really lands inside the literal. */
#define BIG_SIZE ((size_t)64 << 20)
#define APPEND_SIZE ((uint64_t)64 << 20) /* the APPEND cut in the middle */
#define MAX_PIDS 16

/* IMK_STRESS_ONLY=<part of a test's name> runs only the matching tests. */
#define RUN_SOME(fn)                                                                               \
    do {                                                                                           \
        const char *only_ = getenv("IMK_STRESS_ONLY");                                             \
        if (only_ == NULL || strstr(#fn, only_) != NULL)                                           \
            IT_RUN(fn);                                                                            \
    } while (0)

static it_dovecot dv;
static char *tunnel_cmd;
static char tunnel_needle[1200]; /* the tunnel's config path: in its command line */
static char *big;                /* the message in both INBOXes */

/* ---- helpers --------------------------------------------------------- */

/* Case-insensitive strstr. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++) {
        size_t i = 0;
        while (i < n && hay[i] != '\0' &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

typedef enum transport { VIA_TUNNEL, VIA_DAEMON } transport;

static const char *transport_name(transport t)
{
    return t == VIA_TUNNEL ? "tunnel" : "daemon";
}

static imk_conn_options options_for(transport t, const char *label)
{
    imk_conn_options o;
    if (t == VIA_TUNNEL) {
        o = it_options_tunnel(tunnel_cmd, label);
    } else {
        /* Cleartext to 127.0.0.1: the TCP socket then belongs to the imap
         * process itself (with TLS, imap-login would proxy). */
        o = it_options(label);
        o.host = "127.0.0.1";
        o.port = dv.imap_port;
        o.security = IMK_SECURITY_NONE;
        o.allow_cleartext_password = 1;
    }
    /* Long enough that "it noticed the end of the stream" and "it waited
     * for the deadline" cannot be confused. */
    o.io_timeout_ms = 20000;
    return o;
}

/* Connected, logged in (the tunnel is preauthenticated), INBOX selected. */
static imk_conn *open_inbox(transport t, const imk_conn_options *o)
{
    imk_conn *c = t == VIA_TUNNEL ? it_connect(o) : it_connect_login(o, IT_USER, IT_PASSWORD);
    if (c == NULL)
        return NULL;
    const imk_result *r = NULL;
    int rc = imk_conn_select(c, "INBOX", NULL, &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK) {
        fprintf(stderr, "SELECT INBOX: %s %s\n", imk_error_name(rc), imk_conn_error(c));
        imk_conn_free(c);
        return NULL;
    }
    return c;
}

/* The processes that serve connection c. */
static size_t server_pids(imk_conn *c, transport t, pid_t *pids)
{
    size_t n = t == VIA_TUNNEL ? stress_pids_by_cmdline(tunnel_needle, pids, MAX_PIDS)
                               : stress_pids_by_tcp_peer(imk_conn_fd(c), pids, MAX_PIDS);
    if (n > MAX_PIDS)
        n = MAX_PIDS;
    if (n == 0)
        fprintf(stderr, "no server process found for the %s connection\n", transport_name(t));
    return n;
}

/* After a failure: imk_conn_connect again, SELECT, NOOP, and the message
 * can be fetched whole. */
static void check_reconnect(imk_conn *c, transport t)
{
    int rc = imk_conn_connect(c);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "reconnect: %s\n", imk_conn_error(c));
        return;
    }
    if (t == VIA_DAEMON) {
        imk_auth a = IMK_AUTH_INIT;
        a.user = IT_USER;
        a.password = IT_PASSWORD;
        CHECK_INT(imk_conn_login(c, &a), 0);
    }
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(c, "INBOX", NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    CHECK(imk_view_exists(imk_conn_view(c)) >= 1);
    r = NULL;
    CHECK_INT(imk_conn_noop(c, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    CHECK(it_fetch_equals(c, 1, NULL, big, BIG_SIZE));
    CHECK_INT(imk_conn_logout(c), 0);
}

/* The start of a scenario: this process's descriptors counted into *fds,
 * then options_for(t) (io_timeout_ms changed when not 0; into *o when o is
 * not NULL), connected, INBOX selected: the connection, or NULL (checked). */
static imk_conn *open_checked(transport t, int io_timeout_ms, int *fds, imk_conn_options *o)
{
    *fds = stress_count_fds();
    imk_conn_options opts = options_for(t, "A");
    if (io_timeout_ms != 0)
        opts.io_timeout_ms = io_timeout_ms;
    if (o != NULL)
        *o = opts;
    imk_conn *c = open_inbox(t, &opts);
    CHECK(c != NULL);
    return c;
}

/* UID FETCH 1 BODY.PEEK[] read up to the first body bytes, so that the
 * server is inside the literal: the iterator, or NULL with c freed. */
static imk_fetch_iter *fetch_into_body(imk_conn *c, uint64_t *got, int *in_body)
{
    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(c, 1, "1", "(UID BODY.PEEK[])", &it);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        imk_conn_free(c);
        return NULL;
    }
    imk_fetch_item item;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type == IMK_FI_BODY_BEGIN)
            *in_body = 1;
        if (item.type == IMK_FI_BODY_DATA) {
            *got += item.len;
            break;
        }
    }
    CHECK_INT(rc, 1);
    return it;
}

/* open_checked, then fetch_into_body: the connection, *it inside the
 * literal; or NULL (checked), nothing left open. */
static imk_conn *open_in_body(transport t, int io_timeout_ms, int *fds, imk_fetch_iter **it,
                              uint64_t *got, int *in_body)
{
    imk_conn *c = open_checked(t, io_timeout_ms, fds, NULL);
    if (c == NULL)
        return NULL;
    *it = fetch_into_body(c, got, in_body);
    return *it != NULL ? c : NULL;
}

/* Send sig to the processes serving c (into pids): how many there are. */
static size_t signal_server(imk_conn *c, transport t, int sig, pid_t *pids)
{
    size_t n = server_pids(c, t, pids);
    CHECK(n >= 1);
    CHECK_INT(stress_signal_pids(pids, n, sig), n);
    return n;
}

/* A call the server's death cut: an error at once (the end of the stream
 * was seen, not the deadline), with a message that names the command. */
static void check_cut(int rc, const char *msg, const char *command)
{
    CHECK(rc < 0);
    CHECK(rc != IMK_ETIMEDOUT);
    CHECK(msg[0] != '\0');
    CHECK(contains_ci(msg, command));
}

/* The end of a "stopped" scenario: free c, no descriptor left behind; the
 * server, running again, sees the closed connection and leaves (the
 * tunnel's child was killed and reaped by imk_conn_free). */
static void free_then_resume(imk_conn *c, int fds, const pid_t *pids, size_t n)
{
    imk_conn_free(c);
    CHECK_INT(stress_count_fds(), fds);
    stress_signal_pids(pids, n, SIGCONT);
    CHECK(stress_wait_gone(pids, n, 10000));
}

/* ---- killed mid-FETCH ------------------------------------------------ */

static void killed_mid_fetch(transport t, int reconnect)
{
    int fds, in_body = 0, ended = 0;
    uint64_t got = 0;
    imk_fetch_iter *it = NULL;
    imk_conn *c = open_in_body(t, 0, &fds, &it, &got, &in_body); /* into the literal first */
    if (c == NULL)
        return;
    CHECK(in_body);
    pid_t pids[MAX_PIDS];
    size_t n = signal_server(c, t, SIGKILL, pids);
    CHECK(stress_wait_gone(pids, n, 10000));
    int64_t t0 = stress_now_ms();

    /* What was buffered still arrives; then the end of the stream. */
    unsigned long steps = 0;
    imk_fetch_item item;
    int rc;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        steps++;
        if (item.type == IMK_FI_BODY_DATA)
            got += item.len;
        if (item.type == IMK_FI_BODY_END)
            ended = 1;
    }
    int64_t t1 = stress_now_ms();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", imk_conn_error(c));
    printf("failure: %s killed mid-FETCH after %llu of %zu body bytes: next() = %s after %lld ms "
           "and %lu more items: \"%s\"\n",
           transport_name(t), (unsigned long long)got, BIG_SIZE, imk_error_name(rc),
           (long long)(t1 - t0), steps, msg);
    check_cut(rc, msg, "FETCH");
    CHECK(imk_error_is_fatal(rc) || rc == IMK_ECLOSED);
    CHECK(!ended);
    CHECK(got < BIG_SIZE);
    if (t == VIA_DAEMON)
        CHECK(strstr(msg, "127.0.0.1") != NULL);
    const imk_result *r = NULL;
    int end = imk_fetch_iter_end(it, &r);
    CHECK_INT(end, rc);
    if (t == VIA_TUNNEL) {
        int st = 0;
        int exited = imk_conn_tunnel_status(c, &st);
        printf("failure: tunnel status after the kill: exited=%d %s %d\n", exited,
               exited && WIFSIGNALED(st) ? "signal" : "status",
               exited && WIFSIGNALED(st) ? WTERMSIG(st) : (exited ? WEXITSTATUS(st) : 0));
        if (exited == 1)
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    /* The connection is dead: calls fail, nothing crashes. */
    rc = imk_conn_noop(c, NULL);
    CHECK(rc < 0);
    if (reconnect)
        check_reconnect(c, t);
    imk_conn_free(c);
    CHECK_INT(stress_count_fds(), fds);
}

static void test_tunnel_killed_mid_fetch(void)
{
    killed_mid_fetch(VIA_TUNNEL, 1);
}

static void test_tunnel_killed_mid_fetch_then_free(void)
{
    killed_mid_fetch(VIA_TUNNEL, 0);
}

static void test_daemon_killed_mid_fetch(void)
{
    killed_mid_fetch(VIA_DAEMON, 1);
}

static void test_daemon_killed_mid_fetch_then_free(void)
{
    killed_mid_fetch(VIA_DAEMON, 0);
}

/* ---- killed mid-IDLE ------------------------------------------------- */

typedef struct kill_job {
    pid_t pids[MAX_PIDS];
    size_t n;
} kill_job;

static int kill_job_run(void *arg)
{
    kill_job *k = arg;
    return stress_signal_pids(k->pids, k->n, SIGKILL) == k->n ? 0 : 1;
}

static void killed_mid_idle(transport t)
{
    int fds;
    imk_conn *c = open_checked(t, 0, &fds, NULL);
    if (c == NULL)
        return;
    kill_job k;
    k.n = server_pids(c, t, k.pids);
    CHECK(k.n >= 1);
    if (k.n == 0) {
        imk_conn_free(c);
        return;
    }
    /* A child kills the server 300 ms into the IDLE. */
    int child = it_child_start(300, kill_job_run, &k);
    CHECK(child > 0);
    int64_t t0 = stress_now_ms();
    int rc = imk_conn_idle(c, 15000, 0);
    int64_t t1 = stress_now_ms();
    CHECK_INT(it_child_wait(child), 0);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", imk_conn_error(c));
    printf("failure: %s killed mid-IDLE: imk_conn_idle = %s after %lld ms (timeout 15000): "
           "\"%s\"\n",
           transport_name(t), imk_error_name(rc), (long long)(t1 - t0), msg);
    /* 0 would mean "the 15 s were up": the end of the stream went unseen. */
    check_cut(rc, msg, "IDLE");
    CHECK(stress_wait_gone(k.pids, k.n, 10000));
    check_reconnect(c, t);
    imk_conn_free(c);
    CHECK_INT(stress_count_fds(), fds);
}

static void test_tunnel_killed_mid_idle(void)
{
    killed_mid_idle(VIA_TUNNEL);
}

static void test_daemon_killed_mid_idle(void)
{
    killed_mid_idle(VIA_DAEMON);
}

/* ---- killed mid-APPEND ----------------------------------------------- */

typedef struct append_src {
    uint64_t given;
    uint64_t kill_at;
    pid_t pids[MAX_PIDS];
    size_t n;
    int killed;
    unsigned long calls_after_kill;
} append_src;

static long append_read(void *user, void *buf, size_t cap)
{
    append_src *s = user;
    if (!s->killed && s->given >= s->kill_at) {
        stress_signal_pids(s->pids, s->n, SIGKILL);
        stress_wait_gone(s->pids, s->n, 10000);
        s->killed = 1;
    } else if (s->killed) {
        s->calls_after_kill++;
    }
    uint64_t left = APPEND_SIZE - s->given;
    size_t n = cap < left ? cap : (size_t)left;
    /* Lines of text, CRLF: "Subject: x\r\n\r\n" then body lines. */
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        uint64_t at = s->given + i;
        p[i] = at % 64 == 62 ? '\r' : at % 64 == 63 ? '\n' : (char)('a' + at % 26);
    }
    if (s->given == 0 && n >= 16)
        memcpy(p, "Subject: big\r\n\r\n", 16);
    s->given += n;
    return (long)n;
}

static void killed_mid_append(transport t)
{
    int fds;
    imk_conn_options o;
    imk_conn *c = open_checked(t, 0, &fds, &o);
    if (c == NULL)
        return;
    uint32_t before = imk_view_exists(imk_conn_view(c));
    append_src s;
    memset(&s, 0, sizeof s);
    s.kill_at = 4u << 20;
    s.n = server_pids(c, t, s.pids);
    CHECK(s.n >= 1);
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.size = APPEND_SIZE;
    m.read = append_read;
    m.read_user = &s;
    const imk_result *r = NULL;
    int64_t t0 = stress_now_ms();
    int rc = imk_conn_append(c, "INBOX", &m, 1, &r);
    int64_t t1 = stress_now_ms();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", imk_conn_error(c));
    printf("failure: %s killed mid-APPEND after %llu of %llu bytes: imk_conn_append = %s after "
           "%lld ms, %lu reads after the kill: \"%s\"\n",
           transport_name(t), (unsigned long long)s.given, (unsigned long long)APPEND_SIZE,
           imk_error_name(rc), (long long)(t1 - t0), s.calls_after_kill, msg);
    CHECK(s.killed);
    check_cut(rc, msg, "APPEND");
    CHECK(s.given <= APPEND_SIZE);
    check_reconnect(c, t);
    /* The cut message was not stored. */
    imk_conn_free(c);
    c = open_inbox(t, &o);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_INT(imk_view_exists(imk_conn_view(c)), before);
        imk_conn_free(c);
    }
    CHECK_INT(stress_count_fds(), fds);
}

static void test_tunnel_killed_mid_append(void)
{
    killed_mid_append(VIA_TUNNEL);
}

static void test_daemon_killed_mid_append(void)
{
    killed_mid_append(VIA_DAEMON);
}

/* ---- stopped: the deadline ------------------------------------------- */

static void stopped_noop(transport t)
{
    int fds;
    imk_conn *c = open_checked(t, 500, &fds, NULL);
    if (c == NULL)
        return;
    pid_t pids[MAX_PIDS];
    size_t n = signal_server(c, t, SIGSTOP, pids);
    int64_t t0 = stress_now_ms();
    int rc = imk_conn_noop(c, NULL);
    int64_t t1 = stress_now_ms();
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", imk_conn_error(c));
    printf("failure: %s stopped: NOOP = %s after %lld ms (io_timeout_ms 500): \"%s\"\n",
           transport_name(t), imk_error_name(rc), (long long)(t1 - t0), msg);
    CHECK_INT(rc, IMK_ETIMEDOUT);
    CHECK(msg[0] != '\0');
    CHECK(contains_ci(msg, "NOOP"));
    free_then_resume(c, fds, pids, n);
}

static void test_tunnel_stopped_noop_times_out(void)
{
    stopped_noop(VIA_TUNNEL);
}

static void test_daemon_stopped_noop_times_out(void)
{
    stopped_noop(VIA_DAEMON);
}

/* Stopped inside a body literal: the iterator's wait has the deadline too. */
static void test_daemon_stopped_mid_fetch_times_out(void)
{
    int fds, in_body = 0;
    uint64_t got = 0;
    imk_fetch_iter *it = NULL;
    imk_conn *c = open_in_body(VIA_DAEMON, 500, &fds, &it, &got, &in_body);
    if (c == NULL)
        return;
    pid_t pids[MAX_PIDS];
    size_t n = signal_server(c, VIA_DAEMON, SIGSTOP, pids);
    int64_t t0 = stress_now_ms();
    imk_fetch_item item;
    int rc;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type == IMK_FI_BODY_DATA)
            got += item.len;
    }
    int64_t t1 = stress_now_ms();
    printf("failure: daemon stopped mid-FETCH after %llu bytes: next() = %s after %lld ms: "
           "\"%s\"\n",
           (unsigned long long)got, imk_error_name(rc), (long long)(t1 - t0), imk_conn_error(c));
    CHECK_INT(rc, IMK_ETIMEDOUT);
    CHECK(got < BIG_SIZE);
    CHECK_INT(imk_fetch_iter_end(it, NULL), IMK_ETIMEDOUT);
    free_then_resume(c, fds, pids, n);
}

/* ---- a fake server that does not speak ------------------------------- */

static imk_conn_options fake_options(const stress_fake *f, char *port, size_t cap)
{
    snprintf(port, cap, "%d", f->port);
    imk_conn_options o = it_options("F");
    o.host = "127.0.0.1";
    o.port = port;
    o.security = IMK_SECURITY_NONE;
    o.io_timeout_ms = 500;
    return o;
}

static void test_fake_never_greets(void)
{
    int fds = stress_count_fds();
    stress_fake f;
    CHECK_INT(stress_fake_start(NULL, &f), 0);
    char port[16];
    imk_conn_options o = fake_options(&f, port, sizeof port);
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c != NULL) {
        int64_t t0 = stress_now_ms();
        int rc = imk_conn_connect(c);
        int64_t t1 = stress_now_ms();
        printf("failure: no greeting: connect = %s after %lld ms: \"%s\"\n", imk_error_name(rc),
               (long long)(t1 - t0), imk_conn_error(c));
        CHECK_INT(rc, IMK_ETIMEDOUT);
        CHECK(strstr(imk_conn_error(c), "127.0.0.1") != NULL);
        CHECK(contains_ci(imk_conn_error(c), "greeting"));
        imk_conn_free(c);
    }
    stress_fake_stop(&f);
    CHECK_INT(stress_count_fds(), fds);
}

static void test_fake_silent_after_greeting(void)
{
    int fds = stress_count_fds();
    stress_fake f;
    CHECK_INT(stress_fake_start("* PREAUTH [CAPABILITY IMAP4rev1 IDLE LITERAL+] fake\r\n", &f), 0);
    char port[16];
    imk_conn_options o = fake_options(&f, port, sizeof port);
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c != NULL) {
        int64_t t0 = stress_now_ms();
        int rc = imk_conn_noop(c, NULL);
        int64_t t1 = stress_now_ms();
        printf("failure: silent server: NOOP = %s after %lld ms: \"%s\"\n", imk_error_name(rc),
               (long long)(t1 - t0), imk_conn_error(c));
        CHECK_INT(rc, IMK_ETIMEDOUT);
        CHECK(contains_ci(imk_conn_error(c), "NOOP"));

        /* Reconnect (the fake greets again), then IDLE: the "+" never
         * comes, which is waiting on the server, not idling. */
        rc = imk_conn_connect(c);
        CHECK_INT(rc, 0);
        if (rc == 0) {
            t0 = stress_now_ms();
            rc = imk_conn_idle(c, 5000, 0);
            t1 = stress_now_ms();
            printf("failure: silent server: IDLE = %s after %lld ms: \"%s\"\n", imk_error_name(rc),
                   (long long)(t1 - t0), imk_conn_error(c));
            CHECK_INT(rc, IMK_ETIMEDOUT);
        }
        imk_conn_free(c);
    }
    stress_fake_stop(&f);
    CHECK_INT(stress_count_fds(), fds);
}

/* ---- a tunnel that exits at once ------------------------------------- */

static void tunnel_fails(const char *cmd, int status, const char *text)
{
    int fds = stress_count_fds();
    imk_conn_options o = it_options_tunnel(cmd, "T");
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    int rc = imk_conn_connect(c);
    const char *msg = imk_conn_error(c);
    printf("failure: tunnel `%s`: connect = %s: \"%s\"\n", cmd, imk_error_name(rc), msg);
    CHECK(rc < 0);
    char want[32];
    snprintf(want, sizeof want, "%d", status);
    CHECK(strstr(msg, want) != NULL);
    CHECK(strstr(msg, text) != NULL);
    int st = 0;
    CHECK_INT(imk_conn_tunnel_status(c, &st), 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == status);
    imk_conn_free(c);
    CHECK_INT(stress_count_fds(), fds);
}

static void test_tunnel_exits_at_once(void)
{
    tunnel_fails("echo 'imapkit-test: no mail store here' >&2; exit 42", 42,
                 "imapkit-test: no mail store here");
}

static void test_tunnel_command_not_found(void)
{
    tunnel_fails("/nonexistent/imapkit-test-imapd --preauth", 127, "not found");
}

/* A tunnel server that answers NOOP and exits at once, its answer behind
 * more bytes than the socket buffers hold: the answer is still read (the
 * command succeeded), and only the next command sees the end. */
static void test_tunnel_answers_then_exits(void)
{
    int fds = stress_count_fds();
    const char *cmd = "printf '* PREAUTH [CAPABILITY IMAP4rev1] fake\\r\\n'; "
                      "IFS= read -r line; tag=${line%% *}; "
                      "seq 1 30000 | sed 's/^/* OK padding /; s/$/\\r/'; "
                      "printf '%s OK NOOP done\\r\\n' \"$tag\"; exit 0";
    imk_conn_options o = it_options_tunnel(cmd, "T");
    o.io_timeout_ms = 20000;
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const imk_result *r = NULL;
    int rc = imk_conn_noop(c, &r);
    printf("failure: tunnel answered then exited: NOOP = %s %s\n", imk_error_name(rc),
           rc == 0 && r != NULL ? it_describe(r) : imk_conn_error(c));
    CHECK_INT(rc, 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    rc = imk_conn_noop(c, NULL);
    printf("failure: then NOOP = %s: \"%s\"\n", imk_error_name(rc), imk_conn_error(c));
    CHECK(rc < 0);
    CHECK(rc != IMK_ETIMEDOUT);
    CHECK(strstr(imk_conn_error(c), "exited with status 0") != NULL);
    imk_conn_free(c);
    CHECK_INT(stress_count_fds(), fds);
}

/* ---- setup ----------------------------------------------------------- */

static int put_big(const char *maildir)
{
    char parent[1100];
    snprintf(parent, sizeof parent, "%s", maildir);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        *slash = '\0';
    uid_t uid;
    gid_t gid;
    if (stress_owner_of(parent, &uid, &gid) != 0 || stress_maildir_create(maildir, uid, gid) != 0)
        return -1;
    return stress_maildir_put(maildir, 1, "S", big, BIG_SIZE, uid, gid);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    it_init("test_it_failure", 600);

    big = it_big_message(BIG_SIZE, 7);
    if (big == NULL)
        return 1;
    char dir[1024];
    tunnel_cmd = it_tunnel("dovecot-tunnel", "tunnel", dir, sizeof dir);
    /* The server's command line holds the config path as servers.sh wrote
     * it into the command: '<dir>/dovecot-tunnel.conf'. */
    const char *conf = strstr(tunnel_cmd, "/dovecot-tunnel.conf");
    const char *from = conf;
    while (from != NULL && from > tunnel_cmd && from[-1] != '\'' && from[-1] != ' ')
        from--;
    if (conf == NULL) {
        fprintf(stderr, "no dovecot-tunnel.conf in the tunnel command: %s\n", tunnel_cmd);
        return 1;
    }
    snprintf(tunnel_needle, sizeof tunnel_needle, "%.*s", (int)(conf - from) + 20, from);
    char maildir[1100];
    snprintf(maildir, sizeof maildir, "%s/Maildir", dir);
    if (put_big(maildir) != 0) {
        fprintf(stderr, "cannot write the message into %s\n", maildir);
        return 1;
    }
    it_dovecot_start(&dv, 0);
    it_dovecot_maildir(&dv, IT_USER, maildir, sizeof maildir);
    if (put_big(maildir) != 0) {
        fprintf(stderr, "cannot write the message into %s\n", maildir);
        return 1;
    }

    RUN_SOME(test_tunnel_exits_at_once);
    RUN_SOME(test_tunnel_command_not_found);
    RUN_SOME(test_tunnel_answers_then_exits);
    RUN_SOME(test_fake_never_greets);
    RUN_SOME(test_fake_silent_after_greeting);
    RUN_SOME(test_tunnel_killed_mid_fetch);
    RUN_SOME(test_tunnel_killed_mid_fetch_then_free);
    RUN_SOME(test_daemon_killed_mid_fetch);
    RUN_SOME(test_daemon_killed_mid_fetch_then_free);
    RUN_SOME(test_tunnel_killed_mid_idle);
    RUN_SOME(test_daemon_killed_mid_idle);
    RUN_SOME(test_tunnel_killed_mid_append);
    RUN_SOME(test_daemon_killed_mid_append);
    RUN_SOME(test_tunnel_stopped_noop_times_out);
    RUN_SOME(test_daemon_stopped_noop_times_out);
    RUN_SOME(test_daemon_stopped_mid_fetch_times_out);

    it_dovecot_stop(&dv);
    free(tunnel_cmd);
    free(big);
    return test_finish();
}
