/* SPDX-License-Identifier: MIT */
/*
 * client/conn_int.h - the connection object's private structure, shared by
 * the files of the connection core: conn.c (object, process loop, blocking
 * wait, deadlines, callbacks, trace), connect.c, auth.c, fetch.c, idle.c and
 * logout.c. The operations (ops.c and friends) never see it: they go through
 * client_int.h.
 *
 * Every command the core sends has a "pend" (pending command record): the
 * op's user pointer points to it from imk__conn_begin() until the op's DONE
 * event has been handled (or the connection failed). A pend completes in
 * exactly one of three ways:
 *
 *   hook    an internal state machine (connect, login, fetch, idle) gets
 *           every event of the op, and the completion (ev == NULL on failure);
 *   waiter  a blocking call waits for it: the result is recorded, the
 *           dispatch loop stops ("hold") so the result stays valid until the
 *           next call on the connection (the session frees an op's result at
 *           the next imk_session_next());
 *   done    an async command's callback runs.
 *
 * Phases of the transport:
 *
 *   NONE --connect--> CONNECTING --(TLS)--> TLS --> OPEN --EOF/fatal/logout--> CLOSED
 *                                           ^        |  (STARTTLS OK)            |
 *                                           +--------+                connect again
 *                                                                     (new net + session)
 */
#ifndef IMK_CLIENT_CONN_INT_H
#define IMK_CLIENT_CONN_INT_H

#include "client/client_int.h"
#include "net/net.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes read from the network per imk_conn_process() call before it
 * returns (so one busy connection cannot starve others in a shared loop). */
#define IMK__READ_BUDGET ((size_t)1024 * 1024)
/* The net layer's queue is filled up to this before more session output is
 * handed to it (APPEND streams are read from their source no faster). */
#define IMK__NET_HIGH_WATER ((size_t)256 * 1024)
/* Size of the buffer an APPEND source is read into. */
#define IMK__STREAM_CHUNK ((size_t)64 * 1024)
/* RFC 2177: re-issue IDLE at least every 29 minutes; we do at 28. */
#define IMK__IDLE_REFRESH_MS ((int64_t)28 * 60 * 1000)
/* Without IDLE: a NOOP every 30 s. */
#define IMK__NOOP_INTERVAL_MS ((int64_t)30 * 1000)

typedef enum imk__phase {
    IMK__PH_NONE,       /* never connected */
    IMK__PH_CONNECTING, /* imk__net_connect_step() until connected */
    IMK__PH_TLS,        /* imk__net_tls_step() until the handshake completes */
    IMK__PH_OPEN,       /* IMAP flows (c->net NULL: the stream ended, events drain) */
    IMK__PH_CLOSED      /* closed: fatal error, end of stream or logout */
} imk__phase;

typedef struct imk__pend imk__pend;

/* An internal state machine's view of its op: `ev` is every event of the op
 * (IMK_SE_DONE included); on a failure of the connection ev is NULL and err
 * the code. The pend is freed by the core after a DONE or a failure. */
typedef void (*imk__hook_fn)(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err);

struct imk__pend {
    imk__pend *prev, *next;
    imk_op *op;
    char tag[32];
    char verb[24];
    imk_done_fn done;
    void *user;
    imk__hook_fn hook;
    void *ctx;
    int submitted;
    /* waiter: a blocking call owns the pend and frees it */
    int waiter, finished, err;
    const imk_result *res;
    /* IDLE: the server's "+" arrived and DONE was not asked for yet: the
     * client is not waiting on the server (no I/O deadline). */
    int idling;
    /* APPEND content streamed from sources */
    imk_append_msg *src;
    size_t n_src, cur_src;
    uint64_t src_left; /* bytes of src[cur_src] still to send (0: not started) */
};

/* Redaction of the client's bytes in traces (DESIGN.md section 8): after the
 * byte pattern `prefix` (e.g. "A3 LOGIN user "), the next `secret` bytes
 * are replaced by "<redacted>"; or, by position, the bytes of the client
 * stream from `at` for `len`. */
typedef struct imk__redact {
    char prefix[256];
    size_t prefix_len, matched;
    uint64_t secret; /* bytes still to hide once the prefix matched */
    int armed;
    int in_secret;    /* the last client byte traced was secret */
    uint64_t at, len; /* a range of the client stream (len 0: none) */
    int s_auth;       /* an AUTHENTICATE runs: hide the server's "+" lines */
    int s_line_start, s_hiding;
} imk__redact;

typedef struct imk__connect_task {
    int active;
    int starttls;      /* STARTTLS negotiated: its handshake is running */
    int waiting_greet; /* the greeting has not arrived yet */
    imk_done_fn done;
    void *user;
    int finished, err; /* for the blocking form */
} imk__connect_task;

typedef struct imk__login imk__login; /* auth.c */
typedef struct imk__idle imk__idle;   /* idle.c */

/* Memory handed out by imk__conn_scratch(), freed at the next call. */
typedef struct imk__scratch {
    struct imk__scratch *next;
    max_align_t data[];
} imk__scratch;

struct imk_conn {
    imk_allocator alloc;
    imk__scratch *scratch;
    imk_conn_options opts; /* strings point to the copies below */
    char *host, *port, *tunnel, *ca_file, *ca_dir, *server_name, *tag_prefix;
    imk_session_options sess_opts;
    int has_sess_opts;
    const char *peer; /* host or tunnel command, for messages */
    char peer_buf[80];

    imk_session *s;
    imk__net *net;
    imk__phase phase;
    int eof;         /* the server closed: events drain, then CLOSED */
    int dead;        /* the code that closed the connection (0: logout) */
    int logout_sent; /* LOGOUT queued: the end of stream is expected */
    int tunnel_exited, tunnel_status;
    int eof_reported;      /* a command's failure already said the server closed */
    char tunnel_tail[256]; /* the tunnel's last stderr line(s), at the end of stream */

    char err[IMK__ERRBUF];
    char errbuf[IMK__ERRBUF]; /* the builders' messages */
    char transport[160];

    imk_event_fn on_event;
    void *on_event_user;

    imk__pend *pend_head, *pend_tail;

    /* re-entrancy and deferred free */
    int busy;     /* inside process() or a blocking wait */
    int in_cb;    /* inside an application callback */
    int blocking; /* a blocking call is running */
    int free_pending, freeing;
    int hold;       /* keep the current event / result: do not call next() */
    int more_input; /* stopped early (budget): process() again soon */
    int kick;       /* a task has work to start: process() again soon */

    /* deadlines (monotonic ms) */
    int64_t io_mark;       /* last progress: byte received, bytes sent, wait begun */
    int64_t call_deadline; /* of the running blocking call, or 0 */
    int call_timeout;      /* set_call_timeout: 0 = option, -1 none */
    uint64_t out_total;    /* client bytes handed to the net so far */

    /* APPEND streaming: bytes read from a source that the session did not
     * take yet (a synchronizing literal waits for "+") stay in stream_buf
     * [carry_off, carry_off + carry_len); `stream_blocked` until input
     * arrives (the "+" may be in it) */
    char *stream_buf;
    size_t carry_off, carry_len;
    int stream_blocked;
    int new_input; /* bytes were read since the last complete dispatch */

    imk__redact redact;
    imk__connect_task connect;
    imk__login *login;
    imk__idle *idle;
    /* IDLE renewal and NOOP polling intervals: IMK__IDLE_REFRESH_MS and
     * IMK__NOOP_INTERVAL_MS (fields so that tests can shorten them) */
    int64_t idle_refresh_ms, noop_interval_ms;
    imk_fetch_iter *iter;
};

/* ---- conn.c ---- */
int64_t imk__conn_now(void);
/* Begin an op without the "connected and ready" check (connect and login
 * use it while the connection is being set up). */
int imk__conn_begin_internal(imk_conn *c, imk_command_kind kind, imk_op **out);
/* The checks of imk__conn_begin without beginning anything: connected and
 * ready, no iterator open. */
int imk__conn_ready_check(imk_conn *c);
/* Submit an op begun with either begin, completed through `hook`. */
int imk__conn_submit_hook(imk_conn *c, imk_op *op, imk__hook_fn hook, void *ctx);
/* Close the connection for good: the net is freed, every pending command
 * completes with `code`; the message (printf-style) becomes the error. */
int imk__conn_close(imk_conn *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* A blocking call may start now: not from a callback, not inside another
 * blocking call, no iterator open (unless `iter_ok`). IMK_EBUSY otherwise. */
int imk__conn_blocking_check(imk_conn *c, int iter_ok);
/* Drive the connection (poll on its descriptor) until *flag is non-zero,
 * the connection closes or the call deadline passes. `call_deadline`: apply
 * call_timeout_ms. Returns 0, or the fatal code the connection closed with.
 * When the application freed the connection from a callback, returns
 * IMK_ECLOSED and the connection is gone: the caller must not touch it
 * (*freed is set). */
int imk__conn_wait(imk_conn *c, const int *flag, int call_deadline, int *freed);
/* One round of work without blocking (the body of imk_conn_process). */
int imk__conn_drive(imk_conn *c);
/* Call the application's callbacks with the re-entrancy guards. */
void imk__conn_call_done(imk_conn *c, imk_done_fn done, int err, const imk_result *res, void *user);
void imk__conn_emit(imk_conn *c, const imk_session_event *ev);
/* Describe an op for messages: "UID FETCH (tag A5)". */
void imk__conn_describe(const imk__pend *p, char *buf, size_t len);
/* Append the server's answer of a result ("[CODE ...] text") to buf. */
void imk__conn_result_text(const imk_result *res, char *buf, size_t len);
/* Trace redaction, armed before the op is submitted. */
void imk__conn_redact_prefix(imk_conn *c, const char *prefix, size_t prefix_len, uint64_t secret);
/* The next `len` client bytes after everything queued now are secret. */
void imk__conn_redact_next(imk_conn *c, uint64_t len);
void imk__conn_redact_server_auth(imk_conn *c, int on);
/* Refresh the transport description. */
void imk__conn_update_transport(imk_conn *c);
/* The pend of an op (NULL if none). */
imk__pend *imk__conn_pend(imk_op *op);

/* ---- connect.c ---- */
/* One step of the connect state machine while PH_CONNECTING / PH_TLS.
 * Returns IMK__NET_AGAIN to wait, 1 when the phase changed, or a fatal code
 * (the connection is then closed). */
int imk__connect_io(imk_conn *c);
/* The greeting event (PH_OPEN). */
void imk__connect_greeting(imk_conn *c, const imk_session_event *ev);
/* Fail the connect task (the connection closed under it). */
void imk__connect_abort(imk_conn *c, int err);

/* ---- auth.c ---- */
void imk__login_kick(imk_conn *c);
void imk__login_free(imk_conn *c);
void imk__login_abort(imk_conn *c, int err);

/* ---- idle.c ---- */
/* Timers: refresh, NOOP, end. Called from drive(). */
void imk__idle_tick(imk_conn *c, int64_t now);
/* Milliseconds until the next IDLE timer, or -1. */
int64_t imk__idle_next_timer(const imk_conn *c, int64_t now);
/* A mailbox change was delivered to the event callback. */
void imk__idle_on_change(imk_conn *c, const imk_session_event *ev);
void imk__idle_abort(imk_conn *c, int err);
void imk__idle_free(imk_conn *c);

/* ---- fetch.c ---- */
void imk__fetch_abort(imk_conn *c, int err);

#endif
