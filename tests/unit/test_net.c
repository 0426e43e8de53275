/* SPDX-License-Identifier: MIT */
/*
 * Tests of the transport stack (src/net: net.c, tcp.c, tls.c, tunnel.c,
 * deflate.c), all on loopback, socketpairs and pipes.
 *
 * Peers run in forked children (an echo server, an OpenSSL server, a zlib
 * peer), each with an alarm() so none can outlive a broken test; the
 * parent drives the stack through poll() exactly as an event loop would,
 * with a bound on every wait. Certificates come from tests/pki/make-pki.sh
 * in $IMK_BUILD_DIR/pki (or a temporary directory, removed at the end).
 *
 * Every test also checks that it left no descriptor open, and the tunnel
 * tests that no child is left unreaped.
 *
 * `test_net NAME` runs only the tests whose name contains NAME.
 */
#define _POSIX_C_SOURCE 200809L

#include "net/net.h"
#include "net/net_int.h"

#include "test.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *filter;
#define T(fn)                                                                                      \
    do {                                                                                           \
        if (filter == NULL || strstr(#fn, filter) != NULL) {                                       \
            int fds_before_ = count_open_fds();                                                    \
            RUN(fn);                                                                               \
            CHECK_INT(count_open_fds(), fds_before_);                                              \
        }                                                                                          \
    } while (0)

/* ---- small tools ---- */

/* Free a net at the end of a test's use of it; IMK_TEST_VERBOSE=1 shows
 * each error message a test looked at. */
static void net_done(imk__net *n)
{
    if (getenv("IMK_TEST_VERBOSE") != NULL)
        fprintf(stderr, "     message: %s\n", imk__net_error(n));
    imk__net_free(n);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int listen_on(int family, int backlog, char port[16])
{
    int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*s4);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
        close(fd);
        return -1;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    unsigned p = family == 6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(port, 16, "%u", p);
    return fd;
}

/* A port where nothing listens (bound, then closed). */
static void closed_port(int family, char port[16])
{
    int fd = listen_on(family, 1, port);
    close(fd);
}

static pid_t spawn(void (*fn)(int, const void *), int lfd, const void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        signal(SIGPIPE, SIG_IGN);
        fn(lfd, arg);
        _exit(0);
    }
    close(lfd);
    return pid;
}

/* Reap a peer child (killing it after 20 s); its exit status or -1. */
static int reap_peer(pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static void write_all_fd(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            _exit(5);
        }
        p += w;
        len -= (size_t)w;
    }
}

/* Deterministic, compressible but not trivial text. */
static void fill_text(unsigned char *buf, size_t len, uint32_t seed)
{
    static const char *words[] = {"IMAP ",  "FETCH ",   "BODY[] ",   "* 12 EXISTS\r\n",
                                  "UID ",   "mailbox ", "Subject: ", "hello ",
                                  "world ", "\r\n",     "From: ",    "quoted-printable ",
                                  "=3D ",   "base64 "};
    size_t i = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (i < len) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof(words) / sizeof(words[0]))];
        for (; *w && i < len; w++)
            buf[i++] = (unsigned char)*w;
        if (i < len && ((x >> 8) & 7) == 0)
            buf[i++] = (unsigned char)('a' + ((x >> 3) % 26));
    }
}

/* ---- driving the stack like an event loop ---- */

static short poll_events(unsigned want)
{
    short ev = 0;
    if (want & IMK__NET_WANT_READ)
        ev |= POLLIN;
    if (want & IMK__NET_WANT_WRITE)
        ev |= POLLOUT;
    return ev;
}

static void wait_net(imk__net *n, int ms)
{
    struct pollfd p = {imk__net_fd(n), poll_events(imk__net_want(n)), 0};
    poll(&p, 1, ms);
}

#define TIMED_OUT (-9999)
#define UNEXPECTED_EOF (-9998)

static int connect_net(imk__net *n, int limit_ms)
{
    int64_t end = imk__net_now_ms() + limit_ms;
    for (;;) {
        int64_t now = imk__net_now_ms();
        int rc = imk__net_connect_step(n, now);
        if (rc != IMK__NET_AGAIN)
            return rc;
        if (now > end)
            return TIMED_OUT;
        int64_t wait = end - now;
        int64_t dl = imk__net_deadline(n);
        if (dl >= 0 && dl - now < wait)
            wait = dl - now < 0 ? 0 : dl - now;
        struct pollfd p = {imk__net_fd(n), poll_events(imk__net_want(n)), 0};
        poll(&p, 1, (int)wait + 1);
    }
}

static int tls_net(imk__net *n)
{
    int rc = imk__net_tls_start(n);
    if (rc < 0)
        return rc;
    int64_t end = imk__net_now_ms() + 10000;
    for (;;) {
        rc = imk__net_tls_step(n);
        if (rc != IMK__NET_AGAIN)
            return rc;
        if (imk__net_now_ms() > end)
            return TIMED_OUT;
        wait_net(n, 100);
    }
}

/* Send `out` and receive `in_len` bytes into `in` at the same time (reads
 * of at most `chunk` bytes). 0, TIMED_OUT, UNEXPECTED_EOF or an error. */
static int exchange(imk__net *n, const void *out, size_t out_len, void *in, size_t in_len,
                    size_t chunk)
{
    size_t sent = 0, got = 0;
    int64_t end = imk__net_now_ms() + 60000;
    for (;;) {
        while (sent < out_len && imk__net_unsent(n) < 262144) {
            size_t c = out_len - sent < 65536 ? out_len - sent : 65536;
            long w = imk__net_write(n, (const char *)out + sent, c);
            if (w < 0)
                return (int)w;
            if ((size_t)w != c)
                return -7777;
            sent += c;
        }
        int f = imk__net_flush(n);
        if (f < 0 && f != IMK__NET_AGAIN)
            return f;
        while (got < in_len) {
            size_t c = in_len - got < chunk ? in_len - got : chunk;
            long r = imk__net_read(n, (char *)in + got, c);
            if (r > 0) {
                if ((size_t)r > c)
                    return -7778;
                got += (size_t)r;
                continue;
            }
            if (r == 0)
                return UNEXPECTED_EOF;
            if (r == IMK__NET_AGAIN)
                break;
            return (int)r;
        }
        if (sent == out_len && got == in_len && imk__net_unsent(n) == 0)
            return 0;
        if (imk__net_now_ms() > end)
            return TIMED_OUT;
        wait_net(n, 100);
    }
}

/* Read until end of stream or error; what came is in buf (up to cap). */
static long read_to_end(imk__net *n, char *buf, size_t cap, int *rc_out)
{
    size_t got = 0;
    int64_t end = imk__net_now_ms() + 10000;
    for (;;) {
        char tmp[4096];
        long r = imk__net_read(n, tmp, sizeof(tmp));
        if (r > 0) {
            size_t c = (size_t)r < cap - got ? (size_t)r : cap - got;
            memcpy(buf + got, tmp, c);
            got += c;
            continue;
        }
        if (r != IMK__NET_AGAIN || imk__net_now_ms() > end) {
            *rc_out = r == IMK__NET_AGAIN ? TIMED_OUT : (int)r;
            buf[got < cap ? got : cap - 1] = '\0';
            return (long)got;
        }
        wait_net(n, 100);
    }
}

static imk__net *new_tcp(const char *host, const char *port)
{
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.host = host;
    o.port = port;
    imk__net *n = NULL;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    return n;
}

static imk__net *new_tunnel(const char *cmd)
{
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.tunnel = cmd;
    imk__net *n = NULL;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    return n;
}

/* Run `cmd` as a tunnel until its output ends: the bytes in buf
 * (NUL-terminated), how the read ended in *rc; returns the net (for its
 * messages) and the byte count in *got if not NULL. */
static imk__net *tunnel_output(const char *cmd, char *buf, size_t cap, int *rc, long *got)
{
    imk__net *n = new_tunnel(cmd);
    CHECK_INT(connect_net(n, 1000), 1);
    long g = read_to_end(n, buf, cap, rc);
    if (got != NULL)
        *got = g;
    return n;
}

/* ---- peers ---- */

static void echo_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    char buf[65536];
    ssize_t r;
    while ((r = read(c, buf, sizeof(buf))) > 0)
        write_all_fd(c, buf, (size_t)r);
    _exit(0);
}

/* A TCP connection to a `peer` child on 127.0.0.1 (its pid in *pid, the
 * port in port[16]). */
static imk__net *connect_to_peer(void (*peer)(int, const void *), pid_t *pid, char *port)
{
    int lfd = listen_on(4, 8, port);
    *pid = spawn(peer, lfd, NULL);
    imk__net *n = new_tcp("127.0.0.1", port);
    CHECK_INT(connect_net(n, 10000), 1);
    return n;
}

/* ---- TCP ---- */

static void test_new_invalid(void)
{
    imk__net_options o;
    imk__net *n = (imk__net *)1;
    memset(&o, 0, sizeof(o));
    CHECK_INT(imk__net_new(&o, NULL, &n), IMK_EINVAL);
    CHECK(n == NULL);
    o.host = "localhost";
    CHECK_INT(imk__net_new(&o, NULL, &n), IMK_EINVAL); /* no port */
    o.port = "143";
    o.family = 5;
    CHECK_INT(imk__net_new(&o, NULL, &n), IMK_EINVAL);
    o.family = 4;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    CHECK_INT(imk__net_fd(n), -1);
    CHECK_STR(imk__net_error(n), "");
    char buf[4];
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), IMK_EINVAL); /* not connected */
    net_done(n);
    imk__net_free(NULL);
}

static void test_connect_localhost(void)
{
    char port[16];
    int lfd = listen_on(4, 8, port);
    CHECK(lfd >= 0);
    pid_t pid = spawn(echo_peer, lfd, NULL);
    imk__net *n = new_tcp("localhost", port);
    CHECK_INT(connect_net(n, 10000), 1);
    CHECK(imk__net_fd(n) >= 0);
    CHECK_INT(imk__net_deadline(n), -1);
    CHECK_INT(imk__net_want(n), IMK__NET_WANT_READ);
    CHECK_INT(imk__net_is_tls(n), 0);
    CHECK_STR(imk__net_tls_description(n), "");
    char in[64];
    CHECK_INT(exchange(n, "a1 NOOP\r\n", 9, in, 9, sizeof(in)), 0);
    CHECK_MEM(in, 9, "a1 NOOP\r\n", 9);
    uint64_t wi, wo, pi, po;
    imk__net_counters(n, &wi, &wo, &pi, &po);
    CHECK_INT(wi, 9);
    CHECK_INT(wo, 9);
    CHECK_INT(pi, 9);
    CHECK_INT(po, 9);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);
}

/* The first address refuses, the next one works: as "localhost" with ::1
 * and 127.0.0.1 when only 127.0.0.1 listens. The addresses are given
 * directly, since this machine's resolver may list only one of them. */
static void test_connect_next_address(void)
{
    char port[16], closed[16];
    int lfd = listen_on(4, 8, port);
    CHECK(lfd >= 0);
    closed_port(6, closed);
    pid_t pid = spawn(echo_peer, lfd, NULL);

    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    a6.sin6_port = htons((uint16_t)strtol(port, NULL, 10));
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a4.sin_port = htons((uint16_t)strtol(port, NULL, 10));
    const struct sockaddr *list[] = {(struct sockaddr *)&a6, (struct sockaddr *)&a4};

    imk__net *n = new_tcp("localhost", port);
    CHECK_INT(imk__net_use_addresses(n, list, 2), 0);
    CHECK_INT(connect_net(n, 10000), 1);
    CHECK_INT(n->attempts, 1); /* [::1] failed first */
    CHECK(strstr(n->attempt_log, "[::1]: Connection refused") != NULL);
    char in[8];
    CHECK_INT(exchange(n, "ping", 4, in, 4, sizeof(in)), 0);
    CHECK_MEM(in, 4, "ping", 4);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);

    /* Both refuse: every address is named with its reason. */
    char closed4[16];
    closed_port(4, closed4);
    a6.sin6_port = htons((uint16_t)strtol(closed4, NULL, 10));
    a4.sin_port = htons((uint16_t)strtol(closed4, NULL, 10));
    n = new_tcp("localhost", closed4);
    CHECK_INT(imk__net_use_addresses(n, list, 2), 0);
    CHECK_INT(connect_net(n, 10000), IMK_ENET);
    char want[200];
    snprintf(want, sizeof(want),
             "connect to localhost port %s: [::1]: Connection refused; 127.0.0.1: Connection "
             "refused",
             closed4);
    CHECK_STR(imk__net_error(n), want);
    net_done(n);
}

/* With the machine's resolver: "localhost" connects whatever it lists
 * first, and a refusal names every address. */
static void test_connect_refused(void)
{
    char port[16];
    closed_port(4, port);
    imk__net *n = new_tcp("127.0.0.1", port);
    CHECK_INT(connect_net(n, 10000), IMK_ENET);
    char want[128];
    snprintf(want, sizeof(want), "connect to 127.0.0.1 port %s: Connection refused", port);
    CHECK_STR(imk__net_error(n), want);
    /* unusable from now on: the same error again */
    CHECK_INT(imk__net_connect_step(n, imk__net_now_ms()), IMK_ENET);
    char buf[4];
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), IMK_ENET);
    CHECK_INT(imk__net_write(n, "x", 1), IMK_ENET);
    net_done(n);

    n = new_tcp("localhost", port);
    CHECK_INT(connect_net(n, 10000), IMK_ENET);
    CHECK(strstr(imk__net_error(n), "localhost") != NULL);
    CHECK(strstr(imk__net_error(n), port) != NULL);
    CHECK(strstr(imk__net_error(n), "refused") != NULL);
    net_done(n);

    closed_port(6, port);
    n = new_tcp("::1", port);
    CHECK_INT(connect_net(n, 10000), IMK_ENET);
    snprintf(want, sizeof(want), "connect to ::1 port %s: Connection refused", port);
    CHECK_STR(imk__net_error(n), want);
    net_done(n);
}

static void test_connect_ipv6(void)
{
    char port[16];
    int lfd = listen_on(6, 8, port);
    CHECK(lfd >= 0);
    pid_t pid = spawn(echo_peer, lfd, NULL);
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.host = "::1";
    o.port = port;
    o.family = 6;
    o.no_keepalive = 1;
    imk__net *n = NULL;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    CHECK_INT(connect_net(n, 10000), 1);
    char in[8];
    CHECK_INT(exchange(n, "v6", 2, in, 2, sizeof(in)), 0);
    CHECK_MEM(in, 2, "v6", 2);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);

    /* IPv4 only asked for an IPv6 literal: cannot resolve, said so. */
    o.family = 4;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    CHECK_INT(connect_net(n, 10000), IMK_ENET);
    CHECK(strstr(imk__net_error(n), "cannot resolve host \"::1\"") != NULL);
    CHECK(strstr(imk__net_error(n), "IPv4 only") != NULL);
    net_done(n);
}

static void test_resolve_failure(void)
{
    imk__net *n = new_tcp("no-such-host.invalid", "143");
    CHECK_INT(connect_net(n, 20000), IMK_ENET);
    CHECK(strstr(imk__net_error(n), "cannot resolve host \"no-such-host.invalid\"") != NULL);
    net_done(n);
}

/* A listener with backlog 0 that never accepts: once its queue is full,
 * new SYNs are dropped and connect() hangs until our deadline. */
static void test_connect_timeout(void)
{
    char port[16];
    int lfd = listen_on(4, 0, port);
    CHECK(lfd >= 0);
    int fillers[3];
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)strtol(port, NULL, 10));
    for (int i = 0; i < 3; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {0, 200000};
        setsockopt(fillers[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a)); /* may time out: fine */
    }
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = port;
    o.connect_timeout_ms = 300;
    imk__net *n = NULL;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    int64_t now = imk__net_now_ms();
    int rc = imk__net_connect_step(n, now);
    CHECK_INT(rc, IMK__NET_AGAIN);
    CHECK_INT(imk__net_want(n), IMK__NET_WANT_WRITE);
    CHECK_INT(imk__net_deadline(n), now + 300);
    CHECK_INT(connect_net(n, 10000), IMK_ETIMEDOUT);
    char want[128];
    snprintf(want, sizeof(want), "connect to 127.0.0.1 port %s: timed out after 300 ms", port);
    CHECK_STR(imk__net_error(n), want);
    CHECK_INT(imk__net_deadline(n), -1);
    net_done(n);
    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(lfd);
}

/* The peer goes away: a write fails with EPIPE/ECONNRESET as IMK_ENET (and
 * no SIGPIPE kills us: this test runs with SIGPIPE's default action). */
static void close_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    char one;
    if (read(c, &one, 1) != 1) /* the client is connected for sure */
        _exit(4);
    struct linger lg = {1, 0}; /* RST on close */
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c);
    _exit(0);
}

static void test_write_to_closed_peer(void)
{
    char port[16];
    pid_t pid;
    imk__net *n = connect_to_peer(close_peer, &pid, port);
    CHECK_INT(imk__net_write(n, "x", 1), 1);
    CHECK_INT(imk__net_flush(n), 0);
    CHECK_INT(reap_peer(pid), 0);
    char block[4096];
    memset(block, 'x', sizeof(block));
    int rc = 0;
    for (int i = 0; i < 1000 && rc >= 0; i++) {
        long w = imk__net_write(n, block, sizeof(block));
        rc = w < 0 ? (int)w : imk__net_flush(n);
        if (rc == IMK__NET_AGAIN)
            rc = 0;
        sleep_ms(1);
    }
    CHECK_INT(rc, IMK_ENET);
    char want[64];
    snprintf(want, sizeof(want), "write to 127.0.0.1 port %s: ", port);
    CHECK(strncmp(imk__net_error(n), want, strlen(want)) == 0);
    CHECK(strstr(imk__net_error(n), "Broken pipe") != NULL ||
          strstr(imk__net_error(n), "Connection reset") != NULL);
    net_done(n);
}

static void eof_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    write_all_fd(c, "* BYE\r\n", 7);
    close(c);
    _exit(0);
}

static void test_read_eof(void)
{
    char port[16];
    pid_t pid;
    imk__net *n = connect_to_peer(eof_peer, &pid, port);
    char buf[64];
    int rc = 1;
    long got = read_to_end(n, buf, sizeof(buf), &rc);
    CHECK_INT(rc, 0);
    CHECK_INT(got, 7);
    CHECK_MEM(buf, 7, "* BYE\r\n", 7);
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), 0); /* stays at the end */
    CHECK(strstr(imk__net_error(n), "closed the connection") != NULL);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);
}

/* ---- TLS ---- */

static char pki[512];
static char pki_tmp[64];

static const char *pki_file(const char *name)
{
    static char path[8][640];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 640, "%s/%s", pki, name);
    return p;
}

static int setup_pki(void)
{
    const char *build = getenv("IMK_BUILD_DIR");
    if (build != NULL && build[0] != '\0') {
        snprintf(pki, sizeof(pki), "%s/pki", build);
    } else {
        snprintf(pki_tmp, sizeof(pki_tmp), "/tmp/imk-test-pki-XXXXXX");
        if (mkdtemp(pki_tmp) == NULL)
            return -1;
        snprintf(pki, sizeof(pki), "%s", pki_tmp);
    }
    const char *src = getenv("IMK_SOURCE_DIR");
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "sh '%s/tests/pki/make-pki.sh' '%s'",
             src != NULL && src[0] != '\0' ? src : ".", pki);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct tls_server {
    const char *cert, *key;
    const char *extra_chain; /* a CA certificate sent after the leaf */
    int max_version;         /* 0 = default; TLS1_1_VERSION for the old server */
    const char *client_ca;   /* require a client certificate from this CA */
    int connections;         /* how many to serve (default 1) */
} tls_server;

static void tls_peer(int lfd, const void *arg)
{
    const tls_server *s = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (s->max_version != 0) {
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, s->max_version);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM) != 1)
        _exit(2);
    if (s->extra_chain != NULL) {
        FILE *f = fopen(s->extra_chain, "r");
        X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (x == NULL || SSL_CTX_add0_chain_cert(ctx, x) != 1)
            _exit(2);
    }
    if (s->client_ca != NULL) {
        SSL_CTX_load_verify_locations(ctx, s->client_ca, NULL);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    int count = s->connections > 0 ? s->connections : 1;
    int status = 0;
    for (int i = 0; i < count; i++) {
        int c = accept(lfd, NULL, NULL);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            char buf[16384];
            int r;
            while ((r = SSL_read(ssl, buf, sizeof(buf))) > 0)
                if (SSL_write(ssl, buf, r) <= 0)
                    break;
            SSL_shutdown(ssl);
        } else {
            status = 3;
        }
        SSL_free(ssl);
        close(c);
    }
    SSL_CTX_free(ctx);
    _exit(status);
}

static imk__net *tls_client(const char *host, const char *port, const char *ca_file)
{
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.host = host;
    o.port = port;
    o.ca_file = ca_file;
    imk__net *n = NULL;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    return n;
}

/* Start a server with `s`, connect to host:port, run the handshake. */
static int tls_try(const tls_server *s, const char *host, const imk__net_options *base,
                   imk__net **out, pid_t *pid_out)
{
    char port[16];
    int lfd = listen_on(strchr(host, ':') != NULL ? 6 : 4, 8, port);
    *pid_out = spawn(tls_peer, lfd, s);
    imk__net_options o = *base;
    o.host = host;
    o.port = port;
    CHECK_INT(imk__net_new(&o, NULL, out), 0);
    int rc = connect_net(*out, 10000);
    CHECK_INT(rc, 1);
    return tls_net(*out);
}

/* A server with the certificate and key `name`.pem / `name`.key. */
static tls_server tls_server_for(const char *name)
{
    char cert[64], key[64];
    snprintf(cert, sizeof(cert), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    tls_server s = {pki_file(cert), pki_file(key), NULL, 0, NULL, 0};
    return s;
}

/* Client options that trust the test CA. */
static imk__net_options ca_options(void)
{
    imk__net_options o;
    memset(&o, 0, sizeof(o));
    o.ca_file = pki_file("ca.pem");
    return o;
}

/* The handshake with `s` as `host` fails with IMK_ETLS, the message
 * holding `part`. */
static void tls_refused(const tls_server *s, const char *host, const imk__net_options *o,
                        const char *part)
{
    imk__net *n;
    pid_t pid;
    CHECK_INT(tls_try(s, host, o, &n, &pid), IMK_ETLS);
    CHECK(strstr(imk__net_error(n), part) != NULL);
    net_done(n);
    reap_peer(pid);
}

/* The handshake with `s` as `host` succeeds. */
static void tls_accepted(const tls_server *s, const char *host, const imk__net_options *o)
{
    imk__net *n;
    pid_t pid;
    CHECK_INT(tls_try(s, host, o, &n, &pid), 1);
    net_done(n);
    reap_peer(pid);
}

static void test_tls_good(void)
{
    tls_server s = tls_server_for("good");
    imk__net_options o = ca_options();
    const char *hosts[] = {"127.0.0.1", "localhost", "::1"};
    for (size_t i = 0; i < 3; i++) {
        imk__net *n;
        pid_t pid;
        CHECK_INT(tls_try(&s, hosts[i], &o, &n, &pid), 1);
        CHECK_INT(imk__net_is_tls(n), 1);
        const char *d = imk__net_tls_description(n);
        CHECK(strncmp(d, "TLSv1.2 ", 8) == 0 || strncmp(d, "TLSv1.3 ", 8) == 0);
        static unsigned char out[200000], in[200000];
        fill_text(out, sizeof(out), 7);
        CHECK_INT(exchange(n, out, sizeof(out), in, sizeof(in), 5000), 0);
        CHECK(memcmp(in, out, sizeof(in)) == 0);
        uint64_t wi, wo, pi, po;
        imk__net_counters(n, &wi, &wo, &pi, &po);
        CHECK_INT(pi, sizeof(in));
        CHECK_INT(po, sizeof(out));
        CHECK(wi > pi && wo > po); /* records cost bytes */
        net_done(n);
        CHECK_INT(reap_peer(pid), 0);
    }
}

static void test_tls_wrong_host(void)
{
    tls_server s = tls_server_for("wrong-host");
    imk__net_options o = ca_options();
    imk__net *n;
    pid_t pid;
    CHECK_INT(tls_try(&s, "127.0.0.1", &o, &n, &pid), IMK_ETLS);
    const char *e = imk__net_error(n);
    CHECK(strstr(e, "certificate for \"wrong.example\" does not match host \"127.0.0.1\"") != NULL);
    CHECK(strncmp(e, "TLS with 127.0.0.1 port ", 24) == 0);
    CHECK_INT(imk__net_is_tls(n), 0);
    char buf[4];
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), IMK_ETLS);
    net_done(n);
    reap_peer(pid);

    /* by name too */
    tls_refused(&s, "localhost", &o,
                "certificate for \"wrong.example\" does not match host \"localhost\"");

    /* server_name is what is verified */
    o.server_name = "wrong.example";
    tls_accepted(&s, "127.0.0.1", &o);
}

static void test_tls_expired(void)
{
    tls_server s = tls_server_for("expired");
    imk__net_options o = ca_options();
    tls_refused(&s, "127.0.0.1", &o, ": certificate expired on 2020-01-02 00:00:00 UTC");
}

static void test_tls_unknown_ca(void)
{
    tls_server s = tls_server_for("unknown-ca");
    imk__net_options o = ca_options();
    tls_refused(&s, "localhost", &o,
                "certificate issuer \"CN=imapkit test other CA\" is not trusted (unknown CA); "
                "give its CA with ca_file");

    /* the server sends its (untrusted) root along */
    s.extra_chain = pki_file("other-ca.pem");
    tls_refused(&s, "localhost", &o, "\"CN=imapkit test other CA\" is not trusted (unknown CA)");

    /* the system's CAs do not know our test CA either */
    s = tls_server_for("good");
    o.ca_file = NULL;
    tls_refused(&s, "localhost", &o, "\"CN=imapkit test CA\" is not trusted (unknown CA)");
}

static void test_tls_self_signed(void)
{
    tls_server s = tls_server_for("self-signed");
    imk__net_options o = ca_options();
    tls_refused(&s, "localhost", &o, "self-signed certificate \"CN=localhost\"");

    /* ... trusted when given as ca_file */
    o.ca_file = pki_file("self-signed.pem");
    tls_accepted(&s, "localhost", &o);
}

static void test_tls_skip_verify(void)
{
    const char *certs[] = {"wrong-host", "expired", "unknown-ca", "self-signed"};
    for (size_t i = 0; i < 4; i++) {
        tls_server s = tls_server_for(certs[i]);
        imk__net_options o;
        memset(&o, 0, sizeof(o));
        o.insecure_skip_verify = 1;
        imk__net *n;
        pid_t pid;
        CHECK_INT(tls_try(&s, "127.0.0.1", &o, &n, &pid), 1);
        char in[16];
        CHECK_INT(exchange(n, "insecure", 8, in, 8, sizeof(in)), 0);
        CHECK_MEM(in, 8, "insecure", 8);
        net_done(n);
        CHECK_INT(reap_peer(pid), 0);
    }
}

/* A server that speaks TLS 1.1 at most is refused. The same server is
 * first shown to work with a client that allows 1.1, so the refusal is
 * ours and not a broken server. */
static void test_tls_old_version(void)
{
    tls_server s = tls_server_for("good");
    s.max_version = TLS1_1_VERSION;
    s.connections = 2;
    char port[16];
    int lfd = listen_on(4, 8, port);
    pid_t pid = spawn(tls_peer, lfd, &s);

    /* the witness: a plain OpenSSL client allowing TLS 1.1 */
    int ok11 = 0;
    {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)strtol(port, NULL, 10));
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            if (SSL_connect(ssl) == 1 && strcmp(SSL_get_version(ssl), "TLSv1.1") == 0)
                ok11 = 1;
            SSL_shutdown(ssl);
            SSL_free(ssl);
        }
        close(fd);
        SSL_CTX_free(ctx);
        ERR_clear_error();
    }
    imk__net *n = tls_client("127.0.0.1", port, pki_file("ca.pem"));
    CHECK_INT(connect_net(n, 10000), 1);
    int rc = tls_net(n);
    if (!ok11) {
        fprintf(stderr, "SKIP test_tls_old_version: this OpenSSL cannot serve TLS 1.1 (%s)\n",
                imk__net_error(n));
    } else {
        CHECK_INT(rc, IMK_ETLS);
        CHECK(strstr(imk__net_error(n), "does not speak TLS 1.2 or newer") != NULL);
    }
    net_done(n);
    reap_peer(pid);
}

static void test_tls_client_cert(void)
{
    tls_server s = tls_server_for("good");
    s.client_ca = pki_file("ca.pem");
    imk__net_options o = ca_options();
    o.client_cert = pki_file("good.pem");
    o.client_key = pki_file("good.key");
    imk__net *n;
    pid_t pid;
    CHECK_INT(tls_try(&s, "localhost", &o, &n, &pid), 1);
    char in[16];
    CHECK_INT(exchange(n, "with-cert", 9, in, 9, sizeof(in)), 0);
    CHECK_MEM(in, 9, "with-cert", 9);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);

    /* without: the server refuses (during the handshake with TLS 1.2, at
     * the first read with TLS 1.3). Nothing is written: data the server
     * never reads would make its close a reset that can beat the alert. */
    o.client_cert = o.client_key = NULL;
    int rc = tls_try(&s, "localhost", &o, &n, &pid);
    if (rc == 1)
        rc = exchange(n, NULL, 0, in, 1, sizeof(in));
    CHECK_INT(rc, IMK_ETLS);
    CHECK(strstr(imk__net_error(n), "alert") != NULL);
    net_done(n);
    reap_peer(pid);

    /* a missing key file is named */
    o.client_cert = pki_file("good.pem");
    o.client_key = "/nonexistent/key.pem";
    char port[16];
    int lfd = listen_on(4, 8, port);
    n = NULL;
    o.host = "127.0.0.1";
    o.port = port;
    CHECK_INT(imk__net_new(&o, NULL, &n), 0);
    CHECK_INT(connect_net(n, 10000), 1);
    CHECK_INT(imk__net_tls_start(n), IMK_ETLS);
    CHECK(strstr(imk__net_error(n), "cannot load client key \"/nonexistent/key.pem\"") != NULL);
    net_done(n);
    close(lfd);
}

/* Plain text answers a TLS client: said plainly. */
static void plain_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    write_all_fd(c, "* OK IMAP4rev1 ready\r\n", 22);
    char buf[1024];
    while (read(c, buf, sizeof(buf)) > 0)
        ;
    _exit(0);
}

static void test_tls_not_tls(void)
{
    char port[16];
    int lfd = listen_on(4, 8, port);
    pid_t pid = spawn(plain_peer, lfd, NULL);
    imk__net *n = tls_client("127.0.0.1", port, pki_file("ca.pem"));
    CHECK_INT(connect_net(n, 10000), 1);
    CHECK_INT(tls_net(n), IMK_ETLS);
    CHECK(strstr(imk__net_error(n), "does not speak TLS here") != NULL);
    net_done(n);
    reap_peer(pid);
}

/* STARTTLS shape: plain bytes first, then TLS on the same connection; the
 * bytes queued before are refused to start TLS. */
static void test_tls_bad_calls(void)
{
    imk__net *n = tls_client("127.0.0.1", "1", NULL);
    CHECK_INT(imk__net_tls_start(n), IMK_EINVAL); /* not connected */
    CHECK_INT(imk__net_tls_step(n), IMK_EINVAL);
    net_done(n);

    n = new_tunnel("cat");
    CHECK_INT(connect_net(n, 1000), 1);
    CHECK_INT(imk__net_tls_start(n), IMK_EINVAL); /* nothing to verify against */
    CHECK(strstr(imk__net_error(n), "no server_name") != NULL);
    CHECK_INT(imk__net_compress_start(n, NULL, 0), 0);
    CHECK_INT(imk__net_tls_start(n), IMK_EINVAL); /* not under compression */
    CHECK_INT(imk__net_compress_start(n, NULL, 0), IMK_EINVAL);
    net_done(n);
}

/* ---- tunnel ---- */

static int zombie_or_alive(pid_t pid)
{
    /* After free the child must be reaped: waitpid says ECHILD and the
     * process is gone. */
    int st;
    errno = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    return !(r < 0 && errno == ECHILD) || kill(pid, 0) == 0;
}

static void test_tunnel_cat(void)
{
    imk__net *n = new_tunnel("cat");
    CHECK_INT(connect_net(n, 1000), 1);
    CHECK(imk__net_fd(n) >= 0);
    CHECK_INT(imk__net_deadline(n), -1);
    pid_t pid = n->pid;
    CHECK(pid > 0);
    static unsigned char out[300000], in[300000];
    fill_text(out, sizeof(out), 3);
    CHECK_INT(exchange(n, out, sizeof(out), in, sizeof(in), 7000), 0);
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    int st;
    CHECK_INT(imk__net_tunnel_exited(n, &st), 0);
    CHECK_STR(imk__net_tunnel_stderr(n), "");
    imk__net_free(n);
    CHECK(!zombie_or_alive(pid));
}

static void test_tunnel_exit_status(void)
{
    char buf[64];
    int rc = 0;
    imk__net *n = tunnel_output("echo oops >&2; exit 3", buf, sizeof(buf), &rc, NULL);
    CHECK_INT(rc, IMK_ENET);
    CHECK_STR(imk__net_error(n), "tunnel \"echo oops >&2; exit 3\": exited with status 3: oops");
    int st = 0;
    CHECK_INT(imk__net_tunnel_exited(n, &st), 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    CHECK_STR(imk__net_tunnel_stderr(n), "oops\n");
    net_done(n);

    /* exit 0 after some output: a clean end of stream */
    long got;
    n = tunnel_output("printf '* BYE\\r\\n'; echo bye >&2", buf, sizeof(buf), &rc, &got);
    CHECK_INT(rc, 0);
    CHECK_INT(got, 7);
    CHECK(strstr(imk__net_error(n), "closed its output") != NULL);
    net_done(n);

    /* killed by a signal */
    n = tunnel_output("kill -9 $$", buf, sizeof(buf), &rc, NULL);
    CHECK_INT(rc, IMK_ENET);
    CHECK(strstr(imk__net_error(n), "killed by signal 9") != NULL);
    net_done(n);
}

static void test_tunnel_not_found(void)
{
    char buf[64];
    int rc = 0;
    imk__net *n = tunnel_output("nonexistent-command-xyz --flag", buf, sizeof(buf), &rc, NULL);
    CHECK_INT(rc, IMK_ENET);
    const char *e = imk__net_error(n);
    const char *prefix = "tunnel \"nonexistent-command-xyz --flag\": exited with status 127 "
                         "(command not found): ";
    CHECK(strncmp(e, prefix, strlen(prefix)) == 0);
    CHECK(strstr(e, "nonexistent-command-xyz") != NULL && strstr(e, "not found") != NULL);
    net_done(n);
}

static void test_tunnel_write_dead(void)
{
    imk__net *n = new_tunnel("echo gone >&2; exit 7");
    CHECK_INT(connect_net(n, 1000), 1);
    for (int i = 0; i < 500 && !imk__net_tunnel_exited(n, NULL); i++)
        sleep_ms(10);
    char block[4096];
    memset(block, 'y', sizeof(block));
    int rc = 0;
    for (int i = 0; i < 100 && rc >= 0; i++) {
        long w = imk__net_write(n, block, sizeof(block));
        rc = w < 0 ? (int)w : imk__net_flush(n);
        if (rc == IMK__NET_AGAIN)
            rc = 0;
    }
    CHECK_INT(rc, IMK_ENET);
    CHECK(strstr(imk__net_error(n), "write to tunnel \"echo gone >&2; exit 7\": ") != NULL);
    CHECK(strstr(imk__net_error(n), "exited with status 7: gone") != NULL);
    net_done(n);
}

static void test_tunnel_stubborn_child(void)
{
    /* `exec`: the shell becomes sleep, which inherits the ignored SIGTERM;
     * only SIGKILL ends it. (Without exec, SIGKILL ends the shell and its
     * sleep would live on as an orphan that is not ours.) */
    imk__net *n = new_tunnel("trap '' TERM; exec sleep 100");
    CHECK_INT(connect_net(n, 1000), 1);
    pid_t pid = n->pid;
    sleep_ms(100); /* let the trap be set */
    int64_t t0 = imk__net_now_ms();
    net_done(n);
    int64_t took = imk__net_now_ms() - t0;
    CHECK(took >= 1900); /* waited for the exit, then for SIGTERM */
    CHECK(took < 10000);
    CHECK(!zombie_or_alive(pid));
}

static void test_tunnel_stderr_tail(void)
{
    char buf[64];
    int rc = 0;
    imk__net *n = tunnel_output("i=0; while [ $i -lt 2000 ]; do echo \"noise line $i\" >&2; "
                                "i=$((i+1)); done; echo 'Fatal: the last words' >&2; exit 89",
                                buf, sizeof(buf), &rc, NULL);
    CHECK_INT(rc, IMK_ENET);
    CHECK(strstr(imk__net_error(n), ": exited with status 89: Fatal: the last words") != NULL);
    const char *tail = imk__net_tunnel_stderr(n);
    CHECK_INT(strlen(tail), IMK__NET_STDERR_TAIL);
    CHECK(strstr(tail, "noise line 1999\nFatal: the last words\n") != NULL);
    net_done(n);
}

static void test_tunnel_no_inherited_fds(void)
{
    int leak[2];
    CHECK_INT(pipe(leak), 0); /* no close-on-exec on purpose */
    /* ls lists the shell's descriptors (its own are in /proc/self) */
    char buf[256];
    int rc = 0;
    imk__net *n = tunnel_output("ls /proc/$$/fd", buf, sizeof(buf), &rc, NULL);
    CHECK_INT(rc, 0);
    CHECK_STR(buf, "0\n1\n2\n");
    net_done(n);
    close(leak[0]);
    close(leak[1]);
}

/* The application may ignore SIGPIPE; the tunnel's command gets it back
 * at its default (bit 13 of SigIgn, counting from 1 as signal numbers do,
 * is SIGPIPE on Linux). */
static void test_tunnel_sigpipe_default(void)
{
    struct sigaction ign, old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    imk__net *n = new_tunnel("grep SigIgn /proc/self/status");
    sigaction(SIGPIPE, &old, NULL);
    CHECK_INT(connect_net(n, 1000), 1);
    char buf[256];
    int rc = 0;
    read_to_end(n, buf, sizeof(buf), &rc);
    CHECK_INT(rc, 0);
    CHECK(strncmp(buf, "SigIgn:", 7) == 0);
    unsigned long long mask = strtoull(buf + 7, NULL, 16);
    CHECK((mask & (1ull << (SIGPIPE - 1))) == 0);
    net_done(n);
}

/* ---- COMPRESS=DEFLATE ---- */

/* zlib raw deflate of `len` bytes with a sync flush, into a malloc'd
 * buffer. */
static unsigned char *deflate_raw(const void *data, size_t len, int flush, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, flush);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

#define GREETING_LEN 6000
#define BIG (10u * 1024u * 1024u)

/* The zlib peer: "A OK" in clear, then everything compressed. Reads the
 * client's BIG bytes, answers "CRC xxxxxxxx\r\n", then sends BIG bytes of
 * fill_text(seed 11). */
static void zlib_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    z_stream zi, zo;
    memset(&zi, 0, sizeof(zi));
    memset(&zo, 0, sizeof(zo));
    inflateInit2(&zi, -15);
    deflateInit2(&zo, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    static unsigned char greet[GREETING_LEN], zbuf[1 << 20], plain[1 << 16];
    fill_text(greet, sizeof(greet), 5);
    /* the line and the compressed greeting in one write */
    memcpy(zbuf, "A OK\r\n", 6);
    zo.next_in = greet;
    zo.avail_in = sizeof(greet);
    zo.next_out = zbuf + 6;
    zo.avail_out = sizeof(zbuf) - 6;
    deflate(&zo, Z_SYNC_FLUSH);
    write_all_fd(c, zbuf, sizeof(zbuf) - zo.avail_out);

    size_t got = 0;
    uLong crc = crc32(0, Z_NULL, 0);
    while (got < BIG) {
        ssize_t r = read(c, zbuf, sizeof(zbuf));
        if (r <= 0)
            _exit(6);
        zi.next_in = zbuf;
        zi.avail_in = (uInt)r;
        while (zi.avail_in > 0) {
            zi.next_out = plain;
            zi.avail_out = sizeof(plain);
            int zrc = inflate(&zi, Z_SYNC_FLUSH);
            if (zrc != Z_OK && zrc != Z_BUF_ERROR)
                _exit(7);
            size_t p = sizeof(plain) - zi.avail_out;
            crc = crc32(crc, plain, (uInt)p);
            got += p;
            if (p == 0 && zrc == Z_BUF_ERROR)
                break;
        }
    }
    char line[32];
    snprintf(line, sizeof(line), "CRC %08lx\r\n", (unsigned long)crc);
    unsigned char *big = malloc(BIG);
    fill_text(big, BIG, 11);
    const unsigned char *parts[2] = {(const unsigned char *)line, big};
    size_t lens[2] = {strlen(line), BIG};
    for (int i = 0; i < 2; i++) {
        zo.next_in = (Bytef *)(uintptr_t)parts[i];
        zo.avail_in = (uInt)lens[i];
        do {
            zo.next_out = zbuf;
            zo.avail_out = sizeof(zbuf);
            deflate(&zo, Z_SYNC_FLUSH);
            write_all_fd(c, zbuf, sizeof(zbuf) - zo.avail_out);
        } while (zo.avail_out == 0 || zo.avail_in > 0);
    }
    free(big);
    /* wait for the client to close */
    while (read(c, zbuf, sizeof(zbuf)) > 0)
        ;
    _exit(0);
}

static void test_deflate_peer(void)
{
    char port[16];
    pid_t pid;
    imk__net *n = connect_to_peer(zlib_peer, &pid, port);

    /* Read in clear until past the tagged OK, as the client layer would:
     * whatever came after its CRLF is already compressed. */
    static unsigned char raw[65536];
    size_t have = 0;
    int64_t end = imk__net_now_ms() + 10000;
    while (have <= 6 && imk__net_now_ms() < end) {
        long r = imk__net_read(n, raw + have, sizeof(raw) - have);
        if (r > 0)
            have += (size_t)r;
        else if (r == IMK__NET_AGAIN)
            wait_net(n, 100);
        else
            break;
    }
    CHECK(have > 6);
    CHECK_MEM(raw, 6, "A OK\r\n", 6);
    CHECK_INT(imk__net_compress_start(n, raw + 6, have - 6), 0);
    CHECK_INT(imk__net_is_compressed(n), 1);

    static unsigned char greet[GREETING_LEN], got[GREETING_LEN];
    fill_text(greet, sizeof(greet), 5);
    CHECK_INT(exchange(n, NULL, 0, got, sizeof(got), 1000), 0);
    CHECK(memcmp(got, greet, sizeof(got)) == 0);

    /* 10 MB up; the peer answers with their CRC, then 10 MB down */
    unsigned char *up = malloc(BIG), *down = malloc(BIG), *expect = malloc(BIG);
    fill_text(up, BIG, 9);
    fill_text(expect, BIG, 11);
    char line[15];
    CHECK_INT(exchange(n, up, BIG, line, 14, 14), 0);
    char want[32];
    snprintf(want, sizeof(want), "CRC %08lx\r\n",
             (unsigned long)crc32(crc32(0, Z_NULL, 0), up, BIG));
    CHECK_MEM(line, 14, want, 14);
    CHECK_INT(exchange(n, NULL, 0, down, BIG, 65536), 0);
    CHECK(memcmp(down, expect, BIG) == 0);
    uint64_t wi, wo, pi, po;
    imk__net_counters(n, &wi, &wo, &pi, &po);
    CHECK_INT(po, BIG);
    CHECK_INT(pi, 6 + GREETING_LEN + 14 + BIG);
    CHECK(wo < po / 2); /* text compresses */
    CHECK(wi < pi / 2);
    CHECK_INT(imk__net_unsent(n), 0);
    free(up);
    free(down);
    free(expect);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);
}

/* The inflater never holds more than the caller's buffer: 100 MB that
 * compress to ~100 KB come through 16 KiB reads with RSS flat. */
#define BOMB (100u * 1024u * 1024u)
static void bomb_peer(int lfd, const void *arg)
{
    (void)arg;
    int c = accept(lfd, NULL, NULL);
    z_stream zo;
    memset(&zo, 0, sizeof(zo));
    deflateInit2(&zo, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    static unsigned char zeros[1 << 20], out[1 << 16];
    memset(zeros, 'A', sizeof(zeros));
    for (unsigned i = 0; i < BOMB / sizeof(zeros); i++) {
        zo.next_in = zeros;
        zo.avail_in = sizeof(zeros);
        int flush = i + 1 == BOMB / sizeof(zeros) ? Z_FINISH : Z_NO_FLUSH;
        do {
            zo.next_out = out;
            zo.avail_out = sizeof(out);
            deflate(&zo, flush);
            write_all_fd(c, out, sizeof(out) - zo.avail_out);
        } while (zo.avail_out == 0);
    }
    close(c);
    _exit(0);
}

static void test_deflate_bounded(void)
{
    char port[16];
    pid_t pid;
    imk__net *n = connect_to_peer(bomb_peer, &pid, port);
    CHECK_INT(imk__net_compress_start(n, NULL, 0), 0);
    long rss0 = rss_kb(), rss_max = rss0;
    static unsigned char buf[16384];
    uint64_t total = 0, next_sample = 0;
    int bad = 0, rc = 1;
    int64_t end = imk__net_now_ms() + 120000;
    while (imk__net_now_ms() < end) {
        long r = imk__net_read(n, buf, sizeof(buf));
        if (r > 0) {
            if ((size_t)r > sizeof(buf) || buf[0] != 'A' || buf[r - 1] != 'A')
                bad++;
            total += (uint64_t)r;
            if (total >= next_sample) {
                long now = rss_kb();
                if (now > rss_max)
                    rss_max = now;
                next_sample += 1u << 20;
            }
            continue;
        }
        if (r == IMK__NET_AGAIN) {
            wait_net(n, 100);
            continue;
        }
        rc = (int)r;
        break;
    }
    CHECK_INT(rc, 0); /* the end of stream after Z_FINISH */
    CHECK_INT(total, BOMB);
    CHECK_INT(bad, 0);
    CHECK(rss0 > 0);
    CHECK(rss_max - rss0 < 4096); /* KiB: a few MB at most */
    uint64_t wi;
    imk__net_counters(n, &wi, NULL, NULL, NULL);
    CHECK(wi < BOMB / 100);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);
}

/* An echo peer returns our own deflate stream, which inflates to what we
 * wrote: deflate over a tunnel, and over TLS. */
static void deflate_echo_check(imk__net *n)
{
    CHECK_INT(imk__net_compress_start(n, NULL, 0), 0);
    static unsigned char out[500000], in[500000];
    fill_text(out, sizeof(out), 21);
    CHECK_INT(exchange(n, out, sizeof(out), in, sizeof(in), 3000), 0);
    CHECK(memcmp(in, out, sizeof(in)) == 0);
    /* tiny reads, a byte at a time */
    CHECK_INT(exchange(n, "a2 NOOP\r\n", 9, in, 9, 1), 0);
    CHECK_MEM(in, 9, "a2 NOOP\r\n", 9);
    /* a write without flush is not on the wire yet, and unsent() says so */
    CHECK_INT(imk__net_write(n, "a3", 2), 2);
    CHECK(imk__net_unsent(n) > 0);
    CHECK(imk__net_want(n) & IMK__NET_WANT_WRITE);
    CHECK_INT(exchange(n, " NOOP\r\n", 7, in, 9, 9), 0);
    CHECK_MEM(in, 9, "a3 NOOP\r\n", 9);
    CHECK_INT(imk__net_unsent(n), 0);
    uint64_t wi, wo, pi, po;
    imk__net_counters(n, &wi, &wo, &pi, &po);
    CHECK(wo < po / 2);
    CHECK_INT(pi, po);
}

static void test_deflate_tunnel(void)
{
    imk__net *n = new_tunnel("cat");
    CHECK_INT(connect_net(n, 1000), 1);
    deflate_echo_check(n);
    net_done(n);
}

static void test_deflate_tls(void)
{
    tls_server s = tls_server_for("good");
    imk__net_options o = ca_options();
    imk__net *n;
    pid_t pid;
    CHECK_INT(tls_try(&s, "localhost", &o, &n, &pid), 1);
    deflate_echo_check(n);
    net_done(n);
    CHECK_INT(reap_peer(pid), 0);
}

static void test_deflate_garbage(void)
{
    imk__net *n = new_tunnel("printf '\\377\\377\\377\\377'; cat >/dev/null");
    CHECK_INT(connect_net(n, 1000), 1);
    CHECK_INT(imk__net_compress_start(n, NULL, 0), 0);
    char buf[64];
    int rc = 0;
    read_to_end(n, buf, sizeof(buf), &rc);
    CHECK_INT(rc, IMK_ENET);
    CHECK(strstr(imk__net_error(n), "invalid compressed data") != NULL);
    net_done(n);

    /* data after the end of the peer's deflate stream */
    size_t zlen;
    unsigned char *z = deflate_raw("hello", 5, Z_FINISH, &zlen);
    unsigned char rest[64];
    memcpy(rest, z, zlen);
    memcpy(rest + zlen, "junk", 4);
    free(z);
    n = new_tunnel("cat >/dev/null");
    CHECK_INT(connect_net(n, 1000), 1);
    CHECK_INT(imk__net_compress_start(n, rest, zlen + 4), 0);
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), 5);
    CHECK_MEM(buf, 5, "hello", 5);
    CHECK_INT(imk__net_read(n, buf, sizeof(buf)), IMK_ENET);
    CHECK(strstr(imk__net_error(n), "after the end of the compressed stream") != NULL);
    net_done(n);
}

/* Every allocation may fail: ENOMEM comes back and nothing leaks. */
static void test_alloc_failures(void)
{
    int completed = 0;
    for (long fail_at = 1; fail_at < 200 && !completed; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        imk__net_options o;
        memset(&o, 0, sizeof(o));
        o.tunnel = "cat";
        o.server_name = "example.org";
        imk__net *n = NULL;
        int rc = imk__net_new(&o, &a, &n);
        if (rc == 0) {
            rc = connect_net(n, 1000);
            char in[16];
            if (rc == 1)
                rc = imk__net_compress_start(n, "", 0);
            if (rc == 0)
                rc = exchange(n, "hello", 5, in, 5, sizeof(in));
            if (rc == 0)
                completed = 1;
            else
                CHECK_INT(rc, IMK_ENOMEM);
            net_done(n);
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK(n == NULL);
        }
        CHECK_INT(fa.live, 0);
    }
    CHECK(completed);
}

int main(int argc, char **argv)
{
    filter = argc > 1 ? argv[1] : NULL;
    int fds0 = count_open_fds();
    T(test_new_invalid);
    T(test_connect_localhost);
    T(test_connect_next_address);
    T(test_connect_refused);
    T(test_connect_ipv6);
    T(test_resolve_failure);
    T(test_connect_timeout);
    T(test_write_to_closed_peer);
    T(test_read_eof);
    T(test_tunnel_cat);
    T(test_tunnel_exit_status);
    T(test_tunnel_not_found);
    T(test_tunnel_write_dead);
    T(test_tunnel_stubborn_child);
    T(test_tunnel_stderr_tail);
    T(test_tunnel_no_inherited_fds);
    T(test_tunnel_sigpipe_default);
    T(test_deflate_peer);
    T(test_deflate_bounded);
    T(test_deflate_tunnel);
    T(test_deflate_garbage);
    T(test_alloc_failures);
    if (filter == NULL || strstr("test_tls", filter) != NULL || strstr(filter, "tls") != NULL) {
        int ok = setup_pki();
        CHECK_INT(ok, 0);
        if (ok == 0) {
            T(test_tls_good);
            T(test_tls_wrong_host);
            T(test_tls_expired);
            T(test_tls_unknown_ca);
            T(test_tls_self_signed);
            T(test_tls_skip_verify);
            T(test_tls_old_version);
            T(test_tls_client_cert);
            T(test_tls_not_tls);
            T(test_tls_bad_calls);
            T(test_deflate_tls);
        }
        if (pki_tmp[0] != '\0') {
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_tmp);
            CHECK_INT(system(cmd), 0);
        }
    }
    CHECK_INT(count_open_fds(), fds0);
    return test_finish();
}
