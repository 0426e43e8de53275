/* SPDX-License-Identifier: MIT */
/*
 * net/net.c - the transport stack object (net.h): creation and release,
 * the one error message, the top of the read and write paths, the send
 * queue and the two socket primitives everything else goes through.
 *
 * Reading: imk__net_read -> inflate (deflate.c) or straight -> the lower
 * layer (TLS in tls.c, or the socket) -> recv. Nothing is read ahead at any
 * level but TLS's own record and zlib's window, so bytes the caller has not
 * asked for stay in the kernel: before STARTTLS the client layer sees every
 * byte the server sent (DESIGN.md section 8, no injected responses).
 *
 * Writing: imk__net_write puts the bytes (deflated when compressed) at the
 * end of one send queue and pushes what the lower layer accepts;
 * imk__net_flush ends the deflate block (Z_SYNC_FLUSH, RFC 4978 section 4)
 * and pushes the rest. The queue grows with what the caller gives: the
 * caller bounds it (it looks at imk__net_unsent()).
 *
 * want(): during connect, WRITE; during the TLS handshake, what OpenSSL
 * asked for; afterwards the union of the read side's need (READ, or WRITE
 * when SSL_read must send) and, while bytes are unsent, the write side's
 * (WRITE, or READ when SSL_write must receive). A poll() on that set never
 * misses an event the stack waits for.
 *
 * SIGPIPE: every write goes through send(MSG_NOSIGNAL) - TCP and the
 * tunnel's socketpair alike, and OpenSSL through our BIO - so a dead peer is
 * an EPIPE error, never a signal.
 */
#define _POSIX_C_SOURCE 200809L

#include "net/net_int.h"

#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t imk__net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *imk__net_strdup(const imk_allocator *a, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t len = strlen(s);
    char *p = imk__malloc(a, len + 1);
    if (p != NULL)
        memcpy(p, s, len + 1);
    return p;
}

int imk__net_fd_setup(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int imk__net_fail(imk__net *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(n->err, sizeof(n->err), fmt, ap);
    va_end(ap);
    /* A message cut at the buffer's end says so. */
    if (len >= (int)sizeof(n->err))
        memcpy(n->err + sizeof(n->err) - 4, "...", 4);
    if (code <= IMK_EFATAL_BELOW)
        n->failed = code;
    return code;
}

const char *imk__net_peer(const imk__net *n, char *buf, size_t size)
{
    if (n->tunnel != NULL)
        snprintf(buf, size, "tunnel \"%s\"", n->tunnel);
    else
        snprintf(buf, size, "%s port %s", n->host != NULL ? n->host : "?",
                 n->port != NULL ? n->port : "?");
    return buf;
}

int imk__net_new(const imk__net_options *o, const imk_allocator *alloc, imk__net **out)
{
    *out = NULL;
    if (o == NULL)
        return IMK_EINVAL;
    if (o->tunnel == NULL &&
        (o->host == NULL || o->host[0] == '\0' || o->port == NULL || o->port[0] == '\0'))
        return IMK_EINVAL;
    if (o->tunnel != NULL && o->tunnel[0] == '\0')
        return IMK_EINVAL;
    if (o->family != 0 && o->family != 4 && o->family != 6)
        return IMK_EINVAL;
    if (o->connect_timeout_ms < 0)
        return IMK_EINVAL;

    imk_allocator a;
    imk__alloc_init(&a, alloc);
    imk__net *n = imk__malloc(&a, sizeof(*n));
    if (n == NULL)
        return IMK_ENOMEM;
    memset(n, 0, sizeof(*n));
    n->alloc = a;
    n->fd = -1;
    n->pid = -1;
    n->stderr_fd = -1;
    n->deadline = -1;
    n->want_read = IMK__NET_WANT_READ;
    n->want_write = IMK__NET_WANT_WRITE;
    n->want_connect = IMK__NET_WANT_WRITE;
    n->family = o->family;
    n->connect_timeout_ms = o->connect_timeout_ms == 0 ? 30000 : o->connect_timeout_ms;
    n->no_keepalive = o->no_keepalive;
    n->insecure_skip_verify = o->insecure_skip_verify;

    /* Each copy: NULL in, NULL out; a non-NULL source that came back NULL
     * is an allocation failure. */
    struct {
        char **dst;
        const char *src;
    } copies[] = {
        {&n->host, o->tunnel == NULL ? o->host : NULL},
        {&n->port, o->tunnel == NULL ? o->port : NULL},
        {&n->tunnel, o->tunnel},
        {&n->server_name, o->server_name},
        {&n->ca_file, o->ca_file},
        {&n->ca_dir, o->ca_dir},
        {&n->client_cert, o->client_cert},
        {&n->client_key, o->client_key},
    };
    for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
        *copies[i].dst = imk__net_strdup(&a, copies[i].src);
        if (copies[i].src != NULL && *copies[i].dst == NULL) {
            imk__net_free(n);
            return IMK_ENOMEM;
        }
    }
    *out = n;
    return 0;
}

void imk__net_free(imk__net *n)
{
    imk__net_close(n, 1000, NULL);
}

int imk__net_close(imk__net *n, int grace_ms, int *status_out)
{
    if (n == NULL)
        return 0;
    int reaped = 0;
    /* close_notify needs the descriptor, so TLS goes first. */
    imk__net_tls_free(n);
    imk__net_z_free(n);
    imk__net_tcp_free(n);
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
    imk__net_tunnel_free(n, grace_ms);
    if (n->pid >= 0 && n->exited) {
        reaped = 1;
        if (status_out != NULL)
            *status_out = n->status;
    }
    const imk_allocator *a = &n->alloc;
    imk__free(a, n->out);
    char *strings[] = {n->host,    n->port,   n->tunnel,      n->server_name,
                       n->ca_file, n->ca_dir, n->client_cert, n->client_key};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        imk__free(a, strings[i]);
    imk_allocator copy = n->alloc;
    imk__free(&copy, n);
    return reaped;
}

int imk__net_connect_step(imk__net *n, int64_t now_ms)
{
    if (n->failed)
        return n->failed;
    if (n->phase == IMK__NET_CONNECTED)
        return 1;
    if (n->tunnel != NULL) {
        int rc = imk__net_tunnel_spawn(n);
        if (rc < 0)
            return rc;
        n->phase = IMK__NET_CONNECTED;
        return 1;
    }
    n->phase = IMK__NET_CONNECTING;
    int rc = imk__net_tcp_step(n, now_ms);
    if (rc == 1)
        n->phase = IMK__NET_CONNECTED;
    return rc;
}

int imk__net_fd(const imk__net *n)
{
    return n->fd;
}

unsigned imk__net_want(const imk__net *n)
{
    if (n->failed)
        return IMK__NET_WANT_READ;
    if (n->phase == IMK__NET_CONNECTING)
        return n->want_connect;
    if (n->phase != IMK__NET_CONNECTED)
        return IMK__NET_WANT_READ;
    if (n->tls == IMK__NET_TLS_HANDSHAKE)
        return n->want_handshake;
    unsigned w = n->want_read;
    if (imk__net_unsent(n) > 0)
        w |= n->want_write;
    return w;
}

int64_t imk__net_deadline(const imk__net *n)
{
    return n->phase == IMK__NET_CONNECTING ? n->deadline : -1;
}

const char *imk__net_error(const imk__net *n)
{
    return n->err;
}

void imk__net_counters(const imk__net *n, uint64_t *wire_in, uint64_t *wire_out, uint64_t *plain_in,
                       uint64_t *plain_out)
{
    if (wire_in != NULL)
        *wire_in = n->wire_in;
    if (wire_out != NULL)
        *wire_out = n->wire_out;
    if (plain_in != NULL)
        *plain_in = n->plain_in;
    if (plain_out != NULL)
        *plain_out = n->plain_out;
}

/* ---- socket primitives ---- */

long imk__net_sock_recv(imk__net *n, void *buf, size_t cap)
{
    for (;;) {
        ssize_t r = recv(n->fd, buf, cap, 0);
        if (r > 0) {
            n->wire_in += (uint64_t)r;
            return (long)r;
        }
        if (r == 0) {
            n->sock_eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return IMK__NET_AGAIN;
        n->sys_errno = errno;
        return -1;
    }
}

long imk__net_sock_send(imk__net *n, const void *data, size_t len)
{
    for (;;) {
        ssize_t r = send(n->fd, data, len, MSG_NOSIGNAL);
        if (r >= 0) {
            n->wire_out += (uint64_t)r;
            return r == 0 ? IMK__NET_AGAIN : (long)r;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return IMK__NET_AGAIN;
        n->sys_errno = errno;
        return -1;
    }
}

/* An error of the socket itself (no TLS): name the peer, the step and, for
 * a tunnel, what became of the child. */
static int sock_error(imk__net *n, const char *step)
{
    char peer[300], how[IMK__NET_ERRLEN / 2];
    const char *why = strerror(n->sys_errno);
    const char *prep = strcmp(step, "write") == 0 ? "to" : "from";
    how[0] = '\0';
    if (n->tunnel != NULL)
        imk__net_tunnel_describe(n, how, sizeof(how));
    return imk__net_fail(n, IMK_ENET, "%s %s %s: %s%s%s", step, prep,
                         imk__net_peer(n, peer, sizeof(peer)), why, how[0] ? "; " : "", how);
}

long imk__net_lower_read(imk__net *n, void *buf, size_t cap)
{
    if (n->tls != IMK__NET_TLS_NONE)
        return imk__net_tls_read(n, buf, cap);
    long r = imk__net_sock_recv(n, buf, cap);
    if (r == IMK__NET_AGAIN)
        n->want_read = IMK__NET_WANT_READ;
    else if (r < 0 && r != IMK__NET_AGAIN)
        return sock_error(n, "read");
    return r;
}

long imk__net_lower_write(imk__net *n, const void *data, size_t len)
{
    if (n->tls != IMK__NET_TLS_NONE)
        return imk__net_tls_write(n, data, len);
    long r = imk__net_sock_send(n, data, len);
    if (r == IMK__NET_AGAIN)
        n->want_write = IMK__NET_WANT_WRITE;
    else if (r < 0)
        return sock_error(n, "write");
    return r;
}

/* ---- the send queue ---- */

int imk__net_out_reserve(imk__net *n, size_t extra)
{
    if (n->out_head == n->out_len)
        n->out_head = n->out_len = 0;
    if (n->out_cap - n->out_len >= extra)
        return 0;
    /* Slide the unsent bytes to the front before growing. (OpenSSL may have
     * seen their old address: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER.) */
    if (n->out_head > 0) {
        memmove(n->out, n->out + n->out_head, n->out_len - n->out_head);
        n->out_len -= n->out_head;
        n->out_head = 0;
        if (n->out_cap - n->out_len >= extra)
            return 0;
    }
    if (extra > SIZE_MAX / 2 - n->out_len)
        return IMK_ENOMEM;
    size_t need = n->out_len + extra;
    size_t cap = n->out_cap < 4096 ? 4096 : n->out_cap;
    while (cap < need)
        cap *= 2;
    unsigned char *p = imk__realloc(&n->alloc, n->out, cap);
    if (p == NULL)
        return IMK_ENOMEM;
    n->out = p;
    n->out_cap = cap;
    return 0;
}

size_t imk__net_unsent(const imk__net *n)
{
    return n->out_len - n->out_head + n->deflate_pending;
}

/* Push the queue to the lower layer: 0 when empty, IMK__NET_AGAIN or an
 * error. */
static int push(imk__net *n)
{
    while (n->out_head < n->out_len) {
        long r = imk__net_lower_write(n, n->out + n->out_head, n->out_len - n->out_head);
        if (r < 0)
            return (int)r;
        n->out_head += (size_t)r;
    }
    n->out_head = n->out_len = 0;
    n->want_write = IMK__NET_WANT_WRITE;
    return 0;
}

/* Common entry checks of read/write/flush: 0 to go on, 1 when the TLS
 * handshake still runs (want is set), or an error. */
static int ready(imk__net *n)
{
    if (n->failed)
        return n->failed;
    if (n->phase != IMK__NET_CONNECTED) {
        snprintf(n->err, sizeof(n->err), "not connected");
        return IMK_EINVAL;
    }
    if (n->tunnel != NULL)
        imk__net_tunnel_drain(n);
    if (n->tls == IMK__NET_TLS_HANDSHAKE) {
        int rc = imk__net_tls_step(n);
        if (rc == IMK__NET_AGAIN)
            return 1;
        if (rc < 0)
            return rc;
    }
    return 0;
}

long imk__net_read(imk__net *n, void *buf, size_t cap)
{
    int rc = ready(n);
    if (rc == 1)
        return IMK__NET_AGAIN;
    if (rc < 0)
        return rc;
    if (cap == 0) {
        snprintf(n->err, sizeof(n->err), "read with no room");
        return IMK_EINVAL;
    }
    if (n->eof)
        return 0;
    long r = n->zin != NULL ? imk__net_z_read(n, buf, cap) : imk__net_lower_read(n, buf, cap);
    if (r > 0) {
        n->plain_in += (uint64_t)r;
        n->want_read = IMK__NET_WANT_READ;
        return r;
    }
    if (r == 0) {
        n->eof = 1;
        char peer[300];
        if (n->tunnel != NULL) {
            int trc = imk__net_tunnel_eof(n, 200);
            if (trc < 0)
                return trc;
        } else {
            snprintf(n->err, sizeof(n->err), "%s: the server closed the connection",
                     imk__net_peer(n, peer, sizeof(peer)));
        }
    }
    return r;
}

long imk__net_write(imk__net *n, const void *data, size_t len)
{
    if (n->failed)
        return n->failed;
    if (n->phase != IMK__NET_CONNECTED) {
        snprintf(n->err, sizeof(n->err), "not connected");
        return IMK_EINVAL;
    }
    if (len > (size_t)LONG_MAX)
        return IMK_EINVAL;
    if (len == 0)
        return 0;
    if (n->zout != NULL) {
        int rc = imk__net_z_write(n, data, len);
        if (rc < 0)
            return rc;
    } else {
        int rc = imk__net_out_reserve(n, len);
        if (rc < 0)
            return imk__net_fail(n, rc, "out of memory queueing %zu bytes", len);
        memcpy(n->out + n->out_len, data, len);
        n->out_len += len;
    }
    n->plain_out += len;
    /* The handshake (if it still runs) sends these once it is done. */
    int rc = ready(n);
    if (rc == 1)
        return (long)len;
    if (rc < 0)
        return rc;
    rc = push(n);
    if (rc < 0 && rc != IMK__NET_AGAIN)
        return rc;
    return (long)len;
}

int imk__net_flush(imk__net *n)
{
    int rc = ready(n);
    if (rc == 1)
        return IMK__NET_AGAIN;
    if (rc < 0)
        return rc;
    if (n->zout != NULL) {
        rc = imk__net_z_sync(n);
        if (rc < 0)
            return rc;
    }
    return push(n);
}
