/* SPDX-License-Identifier: MIT */
/*
 * net/net_int.h - the inside of the transport stack (net.h), shared by its
 * files:
 *
 *   net.c      the object, the error message, the top of read/write/flush,
 *              the send queue, the socket primitives
 *   tcp.c      resolve and connect, address after address
 *   tunnel.c   `/bin/sh -c CMD` on a socketpair, its stderr, its reaping
 *   tls.c      OpenSSL over the socket, certificate messages
 *   deflate.c  COMPRESS=DEFLATE (RFC 4978) over whatever is below
 *
 * The stack, top to bottom, and who counts what:
 *
 *     imk__net_read / imk__net_write          plain_in / plain_out
 *        |  deflate.c (when compressed)
 *     "lower": imk__net_lower_read/_write      (TLS or the socket)
 *        |  tls.c (when TLS) through a BIO that calls the socket primitives
 *     imk__net_sock_recv / imk__net_sock_send   wire_in / wire_out
 *        |
 *     fd: a TCP socket or our end of the tunnel's socketpair
 *
 * Invariants:
 *   - `out` holds bytes ready for the lower layer (plain before COMPRESS,
 *     deflated after), in order; `deflate_pending` counts plain bytes given
 *     to deflate since its last Z_SYNC_FLUSH (they are not on the wire yet).
 *   - once `failed` is set (a negative code) every call returns it and `err`
 *     keeps the message that explains it.
 *   - the descriptor, the stderr pipe and every OpenSSL/zlib object belong to
 *     the stack and are released by imk__net_free, whatever the state.
 */
#ifndef IMK_NET_NET_INT_H
#define IMK_NET_NET_INT_H

#include "net/net.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct ssl_st;
struct ssl_ctx_st;
struct bio_method_st;
struct z_stream_s;

#define IMK__NET_ERRLEN 1024
#define IMK__NET_STDERR_TAIL 4096
/* Compressed input read at once from the layer below the inflater. */
#define IMK__NET_ZIN_CAP 16384

enum imk__net_phase {
    IMK__NET_IDLE,       /* nothing started */
    IMK__NET_CONNECTING, /* resolving / connecting address after address */
    IMK__NET_CONNECTED,  /* a stream is up (TLS may still be handshaking) */
};

enum imk__net_tls_state {
    IMK__NET_TLS_NONE,
    IMK__NET_TLS_HANDSHAKE,
    IMK__NET_TLS_UP,
    IMK__NET_TLS_DEAD, /* a fatal TLS error: no SSL_shutdown any more */
};

struct imk__net {
    imk_allocator alloc;

    /* options, copied */
    char *host, *port, *tunnel, *server_name, *ca_file, *ca_dir, *client_cert, *client_key;
    int family, connect_timeout_ms, no_keepalive, insecure_skip_verify;

    enum imk__net_phase phase;
    int fd;
    int failed; /* 0, or the error code returned once: every call returns it again */
    int eof;    /* the stream below the top ended cleanly */
    char err[IMK__NET_ERRLEN];

    /* what the last IMK__NET_AGAIN needed, per side */
    unsigned want_connect, want_read, want_write;

    /* socket primitives: errno of the last failure, and whether recv saw EOF */
    int sys_errno;
    int sock_eof;

    /* tcp.c */
    struct sockaddr_storage *addrs; /* resolved, in getaddrinfo's order */
    size_t naddrs;
    size_t addr_next; /* index of the next address to try */
    int resolved;
    int64_t deadline; /* of the attempt in progress; -1 when none */
    int last_was_timeout;
    int attempts; /* addresses tried and failed */
    char attempt_log[IMK__NET_ERRLEN];
    char peer_addr[96]; /* "[::1]" / "127.0.0.1": the address being tried or connected */

    /* tunnel.c */
    pid_t pid;     /* the child, or -1 */
    int stderr_fd; /* read end of its stderr pipe, or -1 */
    int exited;    /* 1 once reaped */
    int status;    /* wait status once reaped, -1 when unknown (reaped by someone else) */
    size_t tail_len;
    char tail[IMK__NET_STDERR_TAIL + 1];

    /* tls.c */
    struct ssl_ctx_st *ssl_ctx;
    struct ssl_st *ssl;
    struct bio_method_st *bio_method;
    enum imk__net_tls_state tls;
    unsigned want_handshake;
    char tls_desc[96];
    /* the first certificate problem the verify callback saw */
    int v_err, v_depth;
    char v_subject[256], v_issuer[256], v_not_after[40], v_not_before[40], v_names[256];

    /* deflate.c */
    struct z_stream_s *zin, *zout;
    unsigned char *zbuf; /* compressed input: [zbuf_pos, zbuf_len) not yet inflated */
    size_t zbuf_cap, zbuf_pos, zbuf_len;
    int z_more; /* inflate may hold output without more input */
    int z_end;  /* the peer ended its deflate stream */
    size_t deflate_pending;

    /* send queue: [out_head, out_len) of out */
    unsigned char *out;
    size_t out_head, out_len, out_cap;

    uint64_t wire_in, wire_out, plain_in, plain_out;
};

/* ---- net.c ---- */

/* Record the error message (printf-style), mark the stack failed with
 * `code` and return it. */
int imk__net_fail(imk__net *n, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "imap.example.com port 993" or `tunnel "CMD"`, for messages. */
const char *imk__net_peer(const imk__net *n, char *buf, size_t size);
/* Copy of a C string through the allocator (NULL stays NULL). */
char *imk__net_strdup(const imk_allocator *a, const char *s);
/* Make a descriptor non-blocking and close-on-exec; 0 or -1 (errno). */
int imk__net_fd_setup(int fd);

/* The socket primitives: > 0 bytes, 0 end of stream (recv), IMK__NET_AGAIN,
 * or -1 with n->sys_errno set (no message written: the caller knows the
 * step). send never raises SIGPIPE. */
long imk__net_sock_recv(imk__net *n, void *buf, size_t cap);
long imk__net_sock_send(imk__net *n, const void *data, size_t len);

/* The layer below deflate: TLS when up, else the socket. Same returns as
 * imk__net_read (errors with their message written). */
long imk__net_lower_read(imk__net *n, void *buf, size_t cap);
long imk__net_lower_write(imk__net *n, const void *data, size_t len);

/* The send queue: make room for `extra` more bytes at its end. 0 or
 * IMK_ENOMEM. */
int imk__net_out_reserve(imk__net *n, size_t extra);

/* ---- tcp.c ---- */
int imk__net_tcp_step(imk__net *n, int64_t now_ms);
/* Use these addresses (AF_INET / AF_INET6, port included) instead of
 * resolving the host: for a caller that resolved asynchronously, and for
 * tests. Before the first connect_step only. 0, IMK_EINVAL or IMK_ENOMEM. */
int imk__net_use_addresses(imk__net *n, const struct sockaddr *const *addrs, size_t count);
void imk__net_tcp_free(imk__net *n);

/* ---- tunnel.c ---- */
int imk__net_tunnel_spawn(imk__net *n);
/* Read what the child wrote to stderr so far (non-blocking). */
void imk__net_tunnel_drain(imk__net *n);
/* "exited with status 3: oops", "killed by signal 9", "still running: ..."
 * or "" (not a tunnel). Reaps without blocking. */
const char *imk__net_tunnel_describe(imk__net *n, char *buf, size_t size);
/* The stream from the tunnel ended: give the child up to `wait_ms` to exit
 * (it usually has), then return 0 when it ended well (status 0 or still
 * running) or IMK_ENET with the message set when it failed. */
int imk__net_tunnel_eof(imk__net *n, int wait_ms);
/* imk__net_free's part: close, wait, SIGTERM, SIGKILL, reap. */
void imk__net_tunnel_free(imk__net *n, int grace_ms);

/* ---- tls.c ---- */
long imk__net_tls_read(imk__net *n, void *buf, size_t cap);
long imk__net_tls_write(imk__net *n, const void *data, size_t len);
/* Best-effort close_notify, then release every OpenSSL object. */
void imk__net_tls_free(imk__net *n);

/* ---- deflate.c ---- */
long imk__net_z_read(imk__net *n, void *buf, size_t cap);
/* Deflate into the send queue (no flush). 0 or an error. */
int imk__net_z_write(imk__net *n, const void *data, size_t len);
/* Z_SYNC_FLUSH into the send queue when anything is pending. 0 or error. */
int imk__net_z_sync(imk__net *n);
void imk__net_z_free(imk__net *n);

#endif
