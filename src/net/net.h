/* SPDX-License-Identifier: MIT */
/*
 * net/net.h - the transport stack of one connection (DESIGN.md section 2,
 * layer "net"): a TCP socket (every address of a host name tried in turn,
 * with a connect deadline per address) or a tunnel (a command whose
 * stdin/stdout carry IMAP), optionally TLS over it (OpenSSL), optionally
 * COMPRESS=DEFLATE (RFC 4978, zlib) over that.
 *
 * The layer moves bytes and makes no protocol decision: when to start TLS
 * or compression is the client layer's call. Every function is
 * non-blocking: it does what it can and returns IMK__NET_AGAIN when it must
 * wait for the descriptor (imk__net_want() says for what) or for the
 * deadline (imk__net_deadline()). Times are milliseconds of a monotonic
 * clock, passed in by the caller (imk__net_now_ms()).
 *
 * Errors are negative IMK_E* codes (IMK_ENET, IMK_ETLS, IMK_ETIMEDOUT,
 * IMK_ENOMEM, IMK_EINVAL); imk__net_error() then holds one line that names
 * the host, the step and the cause, e.g.
 *   connect to imap.example.com port 993 (192.0.2.1): Connection refused
 *   TLS with 127.0.0.1 port 10993: certificate for "mail.example.com" does
 *     not match host "127.0.0.1"
 *   tunnel "/usr/lib/dovecot/imap": exited with status 89: Fatal: ...
 * Once an error was returned the stack is unusable except for
 * imk__net_error(), the tunnel status and imk__net_free().
 */
#ifndef IMK_NET_NET_H
#define IMK_NET_NET_H

#include "imapkit/common.h"

#include <stddef.h>
#include <stdint.h>

/* "wait and call again": what imk__net_want() names is needed. */
#define IMK__NET_AGAIN (-1000)

#define IMK__NET_WANT_READ 1u
#define IMK__NET_WANT_WRITE 2u

typedef struct imk__net_options {
    /* TCP: host name or address literal, port (number or service name). */
    const char *host;
    const char *port;
    int family;             /* 0: any; 4: IPv4 only; 6: IPv6 only */
    int connect_timeout_ms; /* per address tried; 0 = 30000 */
    int no_keepalive;       /* 0: SO_KEEPALIVE (+ TCP_KEEPIDLE 60 s) on */

    /* Tunnel: when non-NULL, `/bin/sh -c tunnel` is run instead of a TCP
     * connection; its stdin/stdout are one end of a socketpair (so the stack
     * has ONE descriptor for the event loop), its stderr is a pipe whose
     * last 4 KiB are kept for error messages. host/port are then ignored. */
    const char *tunnel;

    /* TLS (used by imk__net_tls_start) */
    const char *server_name;  /* name to verify and send as SNI; NULL = host */
    const char *ca_file;      /* PEM bundle; NULL with ca_dir NULL = system default paths */
    const char *ca_dir;       /* hashed directory (c_rehash) */
    int insecure_skip_verify; /* DANGEROUS: accept any certificate */
    const char *client_cert, *client_key; /* optional PEM files */
} imk__net_options;

typedef struct imk__net imk__net;

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
int64_t imk__net_now_ms(void);

/* Create the stack; nothing is connected yet. The options' strings are
 * copied. Returns 0, IMK_EINVAL (no host and no tunnel, bad family) or
 * IMK_ENOMEM. */
int imk__net_new(const imk__net_options *o, const imk_allocator *alloc, imk__net **out);

/* Close everything. For a tunnel: close the socket, wait up to 1 s for the
 * child to exit, then SIGTERM, then SIGKILL, and reap it (no zombie). NULL
 * is a no-op. */
void imk__net_free(imk__net *n);

/* imk__net_free with a choice of patience, reporting how a tunnel ended.
 * After closing our end, a tunnel child gets grace_ms to exit by itself,
 * then SIGTERM and as long again (at least 100 ms), then SIGKILL; it is
 * always reaped. grace_ms 0: SIGTERM at once (the server stopped answering
 * or the connection failed: the caller's deadline must hold). Returns 1
 * with the wait status in *status_out (if not NULL) when a tunnel child was
 * reaped, 0 otherwise. NULL is a no-op. */
int imk__net_close(imk__net *n, int grace_ms, int *status_out);

/* Drive the connection: resolve (getaddrinfo: the one blocking step; an
 * address literal never blocks), then non-blocking connect to each address
 * in turn until one succeeds; or spawn the tunnel. Returns 1 connected,
 * IMK__NET_AGAIN in progress, or an error (the message names every address
 * tried and why each failed; IMK_ETIMEDOUT when the last failure was the
 * deadline). */
int imk__net_connect_step(imk__net *n, int64_t now_ms);

/* The descriptor to poll (-1 before connect_step started one). */
int imk__net_fd(const imk__net *n);
/* What the last call that returned IMK__NET_AGAIN needs (READ/WRITE bits).
 * With nothing pending, READ. */
unsigned imk__net_want(const imk__net *n);
/* When connect_step must be called again even without I/O (the current
 * address's deadline), or -1. */
int64_t imk__net_deadline(const imk__net *n);

/* TLS over the connected stream: implicit TLS right after connect, or after
 * the STARTTLS OK. TLS 1.2 or newer, SNI (for a host name, not an address),
 * chain and host-name/IP verification unless insecure_skip_verify. Then call
 * imk__net_tls_step() until it returns 1. Verification failures are
 * IMK_ETLS with a message that says what was wrong: host mismatch (naming
 * both), expired (with the date), unknown CA (naming the issuer), self-signed. */
int imk__net_tls_start(imk__net *n);
int imk__net_tls_step(imk__net *n);
/* 1 once the handshake completed. */
int imk__net_is_tls(const imk__net *n);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */
const char *imk__net_tls_description(const imk__net *n);

/* COMPRESS=DEFLATE (RFC 4978: raw deflate, no zlib header, both
 * directions). `rest` are bytes already received after the server's OK:
 * they are compressed and are inflated first. Everything written from now
 * on is deflated; each imk__net_flush() ends with a Z_SYNC_FLUSH so the
 * server sees whole commands. Returns 0 or IMK_ENOMEM. */
int imk__net_compress_start(imk__net *n, const void *rest, size_t rest_len);
int imk__net_is_compressed(const imk__net *n);
/* Bytes in and out at the socket and at the top of the stack (for the
 * compression ratio). */
void imk__net_counters(const imk__net *n, uint64_t *wire_in, uint64_t *wire_out, uint64_t *plain_in,
                       uint64_t *plain_out);

/* Read decoded bytes. Returns a count > 0, 0 at end of stream (the peer
 * closed cleanly; for a tunnel, its stdout closed), IMK__NET_AGAIN, or an
 * error. Call until IMK__NET_AGAIN: TLS and inflate may hold decoded bytes
 * that no poll() would announce. */
long imk__net_read(imk__net *n, void *buf, size_t cap);

/* Queue bytes for sending. Accepts everything (bounded by the caller) and
 * tries to send; returns len, or an error. Bytes not yet on the wire stay
 * queued until imk__net_flush(). */
long imk__net_write(imk__net *n, const void *data, size_t len);
/* Send what is queued. 0 when everything is on the wire, IMK__NET_AGAIN
 * (want WRITE or, for TLS renegotiation, READ), or an error. */
int imk__net_flush(imk__net *n);
/* Bytes queued but not yet written to the descriptor. */
size_t imk__net_unsent(const imk__net *n);

/* The last error message ("" when none). */
const char *imk__net_error(const imk__net *n);

/* Tunnel: 1 if the child has exited (reaped by this call if needed, without
 * blocking), with its wait status in *status; 0 if still running or not a
 * tunnel. */
int imk__net_tunnel_exited(imk__net *n, int *status);
/* The tail of the tunnel's stderr (up to 4 KiB, NUL-terminated), "" if none. */
const char *imk__net_tunnel_stderr(imk__net *n);

#endif
