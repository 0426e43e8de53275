/* SPDX-License-Identifier: MIT */
/*
 * net/tcp.c - resolve a host and connect to it, one address after another,
 * without blocking (except in getaddrinfo: the one blocking step, and an
 * address literal never blocks there).
 *
 *   step 1: getaddrinfo(host, port) (or the addresses the caller gave with
 *           imk__net_use_addresses), copied into one array. AI_ADDRCONFIG for names (no AAAA
 *           records tried on an IPv4-only host), AI_NUMERICHOST for
 *           literals. glibc's AI_ADDRCONFIG ignores loopback addresses, so a
 *           machine (or a network namespace) with only `lo` gets no address
 *           at all for "localhost": a name-not-found under AI_ADDRCONFIG is
 *           asked again without it.
 *   step 2: for each address: socket (non-blocking, close-on-exec),
 *           connect -> EINPROGRESS; deadline = now + connect_timeout_ms.
 *           The caller polls for WRITE (or waits until the deadline) and
 *           calls again; we look with poll(0) whether the attempt finished,
 *           SO_ERROR says how. A failure or the deadline moves on to the
 *           next address and is logged as "ADDR: reason".
 *   step 3: connected: TCP_NODELAY (IMAP is request/response: Nagle would
 *           hold a command back waiting for an ACK), SO_KEEPALIVE with
 *           60 s idle / 20 s interval / 3 probes (a dead server behind a NAT
 *           is noticed in 2 minutes, not 2 hours) unless no_keepalive.
 *
 * All addresses failed: IMK_ETIMEDOUT if the last one timed out, else
 * IMK_ENET; the message lists every address and its reason.
 *
 * _GNU_SOURCE: TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT and EAI_ADDRFAMILY /
 * EAI_NODATA are Linux/glibc extensions outside POSIX.
 */
#define _GNU_SOURCE

#include "net/net_int.h"

#include "util/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int is_address_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static socklen_t addr_len(const struct sockaddr_storage *sa)
{
    return sa->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                     : (socklen_t)sizeof(struct sockaddr_in);
}

/* "127.0.0.1" or "[::1]" */
static void format_addr(const struct sockaddr_storage *sa, char *buf, size_t size)
{
    char host[80];
    if (getnameinfo((const struct sockaddr *)sa, addr_len(sa), host, sizeof(host), NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(host, sizeof(host), "?");
    if (sa->ss_family == AF_INET6)
        snprintf(buf, size, "[%s]", host);
    else
        snprintf(buf, size, "%s", host);
}

int imk__net_use_addresses(imk__net *n, const struct sockaddr *const *addrs, size_t count)
{
    if (n->phase != IMK__NET_IDLE || n->resolved || count == 0 || n->tunnel != NULL)
        return IMK_EINVAL;
    size_t bytes;
    if (!imk__mul_ok(count, sizeof(*n->addrs), &bytes))
        return IMK_ENOMEM;
    struct sockaddr_storage *list = imk__malloc(&n->alloc, bytes);
    if (list == NULL)
        return IMK_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        memset(&list[i], 0, sizeof(list[i]));
        if (addrs[i]->sa_family == AF_INET) {
            memcpy(&list[i], addrs[i], sizeof(struct sockaddr_in));
        } else if (addrs[i]->sa_family == AF_INET6) {
            memcpy(&list[i], addrs[i], sizeof(struct sockaddr_in6));
        } else {
            imk__free(&n->alloc, list);
            return IMK_EINVAL;
        }
    }
    n->addrs = list;
    n->naddrs = count;
    n->addr_next = 0;
    n->resolved = 1;
    return 0;
}

static int resolve(imk__net *n)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_family = n->family == 4 ? AF_INET : n->family == 6 ? AF_INET6 : AF_UNSPEC;
    int literal = is_address_literal(n->host);
    hints.ai_flags = literal ? AI_NUMERICHOST : AI_ADDRCONFIG;
    int rc = getaddrinfo(n->host, n->port, &hints, &res);
    if (!literal && (rc == EAI_NONAME
#ifdef EAI_NODATA
                     || rc == EAI_NODATA
#endif
#ifdef EAI_ADDRFAMILY
                     || rc == EAI_ADDRFAMILY
#endif
                     )) {
        hints.ai_flags = 0;
        rc = getaddrinfo(n->host, n->port, &hints, &res);
    }
    if (rc != 0) {
        const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
        const char *fam = n->family == 4 ? " (IPv4 only)" : n->family == 6 ? " (IPv6 only)" : "";
        return imk__net_fail(n, IMK_ENET, "cannot resolve host \"%s\" port \"%s\"%s: %s", n->host,
                             n->port, fam, why);
    }
    size_t count = 0;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(struct sockaddr_storage))
            count++;
    size_t bytes;
    struct sockaddr_storage *list = NULL;
    if (count > 0 && imk__mul_ok(count, sizeof(*list), &bytes))
        list = imk__malloc(&n->alloc, bytes);
    if (list == NULL) {
        freeaddrinfo(res);
        if (count == 0)
            return imk__net_fail(n, IMK_ENET, "cannot resolve host \"%s\": no IP address", n->host);
        return imk__net_fail(n, IMK_ENOMEM, "out of memory resolving \"%s\"", n->host);
    }
    size_t i = 0;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(struct sockaddr_storage)) {
            memset(&list[i], 0, sizeof(list[i]));
            memcpy(&list[i], ai->ai_addr, ai->ai_addrlen);
            i++;
        }
    }
    freeaddrinfo(res);
    n->addrs = list;
    n->naddrs = count;
    n->addr_next = 0;
    n->resolved = 1;
    return 0;
}

/* Log the failure of the current address and close its socket. */
static void attempt_failed(imk__net *n, const char *why, int timeout)
{
    size_t used = strlen(n->attempt_log);
    if (used < sizeof(n->attempt_log) - 1)
        snprintf(n->attempt_log + used, sizeof(n->attempt_log) - used, "%s%s: %s",
                 n->attempts > 0 ? "; " : "", n->peer_addr, why);
    n->attempts++;
    n->last_was_timeout = timeout;
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    n->deadline = -1;
}
static void set_options(imk__net *n)
{
    /* Best effort: a socket without these still works. */
    int one = 1;
    setsockopt(n->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (n->no_keepalive)
        return;
    setsockopt(n->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
    int idle = 60, intvl = 20, cnt = 3;
    setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(n->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#endif
}

static int all_failed(imk__net *n)
{
    int code = n->last_was_timeout ? IMK_ETIMEDOUT : IMK_ENET;
    if (n->attempts == 1) {
        /* The log is "ADDR: reason" for the one address (still in peer_addr). */
        const char *why = n->attempt_log + strlen(n->peer_addr) + 2;
        /* "connect to 127.0.0.1 port 1: Connection refused": a literal host
         * is its address, no need to say it twice. */
        if (is_address_literal(n->host))
            return imk__net_fail(n, code, "connect to %s port %s: %s", n->host, n->port, why);
        /* "connect to imap.example.com port 993 (192.0.2.1): Connection refused" */
        return imk__net_fail(n, code, "connect to %s port %s (%s): %s", n->host, n->port,
                             n->peer_addr, why);
    }
    return imk__net_fail(n, code, "connect to %s port %s: %s", n->host, n->port, n->attempt_log);
}

int imk__net_tcp_step(imk__net *n, int64_t now_ms)
{
    if (!n->resolved) {
        int rc = resolve(n);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        if (n->fd >= 0) {
            /* An attempt is in progress: finished? */
            struct pollfd p = {.fd = n->fd, .events = POLLOUT, .revents = 0};
            int pr = poll(&p, 1, 0);
            if (pr > 0) {
                int soerr = 0;
                socklen_t len = sizeof(soerr);
                if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                    soerr = errno;
                if (soerr == 0) {
                    set_options(n);
                    n->deadline = -1;
                    return 1;
                }
                attempt_failed(n, strerror(soerr), 0);
                continue;
            }
            if (pr < 0 && errno != EINTR) {
                attempt_failed(n, strerror(errno), 0);
                continue;
            }
            if (now_ms >= n->deadline) {
                char why[64];
                snprintf(why, sizeof(why), "timed out after %d ms", n->connect_timeout_ms);
                attempt_failed(n, why, 1);
                continue;
            }
            n->want_connect = IMK__NET_WANT_WRITE;
            return IMK__NET_AGAIN;
        }
        if (n->addr_next >= n->naddrs)
            return all_failed(n);

        const struct sockaddr_storage *sa = &n->addrs[n->addr_next++];
        format_addr(sa, n->peer_addr, sizeof(n->peer_addr));
        n->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (n->fd < 0) {
            attempt_failed(n, strerror(errno), 0);
            continue;
        }
        /* EINTR: the attempt goes on in the background, as EINPROGRESS. */
        if (connect(n->fd, (const struct sockaddr *)sa, addr_len(sa)) < 0 && errno != EINPROGRESS &&
            errno != EINTR) {
            attempt_failed(n, strerror(errno), 0);
            continue;
        }
        /* In progress (or, on loopback, maybe done already: the poll above
         * sees that on the next turn of the loop). */
        n->deadline = now_ms + n->connect_timeout_ms;
    }
}

void imk__net_tcp_free(imk__net *n)
{
    imk__free(&n->alloc, n->addrs);
    n->addrs = NULL;
    n->naddrs = n->addr_next = 0;
}
