/* SPDX-License-Identifier: MIT */
/*
 * The connection object: one IMAP connection driven by an application's
 * event loop (imk_conn_fd / events / timeout / process) or by the blocking
 * calls, which run the same machinery in a poll() loop of their own
 * (hiredis' "sync over async"; c-ares' fd + timeout + process interface).
 *
 * One round of imk_conn_process():
 *
 *   connecting?  net connect step / TLS step (connect.c)
 *   timers       IDLE refresh, NOOP polling, deferred task starts
 *   write        session output -> net (APPEND content read from its
 *                source 64 KiB at a time), net flush
 *   dispatch     imk_session_next() until it needs input: DONE completes a
 *                command (hook, blocking waiter or callback), the events of
 *                a command with a hook go to it, everything else to the
 *                application's event callback
 *   read         net -> the session's input buffer (zero copy), at most
 *                IMK__READ_BUDGET bytes per call; then dispatch again
 *
 * Invariants:
 *   - imk_session_next() is never called while `hold` is set: the event
 *     last returned (a body chunk in the input buffer, a FETCH record) or
 *     the result of the command a blocking call waited for stays valid until
 *     the next call on the connection. Nothing is read while holding either,
 *     since reading compacts the input buffer.
 *   - A callback may queue commands or free the connection; the free is
 *     deferred until the outermost library frame returns (`busy`), and no
 *     library code touches the object after that.
 *   - Every failure leaves one line in c->err naming the host, the step and
 *     the cause. Fatal failures (imk_error_is_fatal) close the connection:
 *     the net is freed and every pending command completes with the code.
 *   - Deadlines: while some command waits on the server (not an IDLE that
 *     the server accepted), no progress for io_timeout_ms closes the
 *     connection with IMK_ETIMEDOUT; a blocking call also has its call
 *     deadline.
 *   - Traces never show a password or a SASL exchange (DESIGN.md section 8):
 *     the client bytes of LOGIN's password and AUTHENTICATE's responses, and
 *     the server's AUTHENTICATE challenges, become "<redacted>".
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include "util/alloc.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char REDACTED[] = "<redacted>";

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

int64_t imk__conn_now(void)
{
    return imk__net_now_ms();
}

static char *dup_str(const imk_allocator *a, const char *s, int *failed)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *p = imk__malloc(a, n + 1);
    if (p == NULL) {
        *failed = 1;
        return NULL;
    }
    memcpy(p, s, n + 1);
    return p;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
verr(imk_conn *c, const char *fmt, va_list ap)
{
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
}

int imk__conn_fail(imk_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(c, fmt, ap);
    va_end(ap);
    return code;
}

char *imk__conn_errbuf(imk_conn *c)
{
    return c->errbuf;
}

const imk_allocator *imk__conn_alloc(const imk_conn *c)
{
    return &c->alloc;
}

imk__pend *imk__conn_pend(imk_op *op)
{
    return op != NULL ? (imk__pend *)imk_op_user(op) : NULL;
}

void imk__conn_describe(const imk__pend *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s (tag %s)", p->verb, p->tag);
}

void imk__conn_result_text(const imk_result *res, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    if (res == NULL)
        return;
    if (res->code != NULL && res->code->name.data != NULL) {
        int n;
        if (res->code->raw.data != NULL && res->code->raw.len > 0)
            n = snprintf(buf, len, "[%.*s %.*s] ", (int)res->code->name.len, res->code->name.data,
                         (int)res->code->raw.len, res->code->raw.data);
        else
            n = snprintf(buf, len, "[%.*s] ", (int)res->code->name.len, res->code->name.data);
        if (n > 0)
            off = (size_t)n < len ? (size_t)n : len - 1;
    }
    if (res->text.data != NULL && off < len)
        snprintf(buf + off, len - off, "%.*s", (int)res->text.len, res->text.data);
    /* A result text is one line from the server; keep control bytes out of
     * the message. */
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

void imk__conn_update_transport(imk_conn *c)
{
    const char *base;
    if (c->net == NULL)
        return;
    if (c->opts.tunnel != NULL)
        base = "tunnel";
    else if (imk__net_is_tls(c->net))
        base = imk__net_tls_description(c->net);
    else
        base = "cleartext";
    snprintf(c->transport, sizeof(c->transport), "%s%s", base,
             imk__net_is_compressed(c->net) ? " + COMPRESS=DEFLATE" : "");
}

/* ------------------------------------------------------------------ */
/* Callbacks with re-entrancy guards                                   */
/* ------------------------------------------------------------------ */

void imk__conn_call_done(imk_conn *c, imk_done_fn done, int err, const imk_result *res, void *user)
{
    if (done == NULL)
        return;
    c->in_cb++;
    done(c, err, res, user);
    c->in_cb--;
}

void imk__conn_emit(imk_conn *c, const imk_session_event *ev)
{
    if (c->on_event != NULL && !c->freeing) {
        c->in_cb++;
        c->on_event(c, ev, c->on_event_user);
        c->in_cb--;
    }
    if (!c->free_pending && !c->freeing)
        imk__idle_on_change(c, ev);
}

/* ------------------------------------------------------------------ */
/* Pending commands                                                    */
/* ------------------------------------------------------------------ */

static void pend_link(imk_conn *c, imk__pend *p)
{
    p->next = NULL;
    p->prev = c->pend_tail;
    if (c->pend_tail != NULL)
        c->pend_tail->next = p;
    else
        c->pend_head = p;
    c->pend_tail = p;
}

static void pend_unlink(imk_conn *c, imk__pend *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else if (c->pend_head == p)
        c->pend_head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else if (c->pend_tail == p)
        c->pend_tail = p->prev;
    p->prev = p->next = NULL;
}

static void pend_free(imk_conn *c, imk__pend *p)
{
    if (p == NULL)
        return;
    imk__free(&c->alloc, p->src);
    imk__free(&c->alloc, p);
}

/* Complete a pend that is no longer linked. ev: the DONE event (NULL on a
 * failure of the connection). */
static void pend_finish(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err,
                        const imk_result *res)
{
    if (p->hook != NULL) {
        p->hook(c, p, ev, err);
        pend_free(c, p);
        return;
    }
    if (p->waiter) {
        p->finished = 1;
        p->err = err;
        p->res = res;
        if (res != NULL)
            c->hold = 1; /* keep the result until the next call */
        return;          /* the waiter frees it */
    }
    imk__conn_call_done(c, p->done, err, res, p->user);
    pend_free(c, p);
}

/* Every pending command fails with `code`. */
static void fail_pends(imk_conn *c, int code)
{
    while (c->pend_head != NULL) {
        imk__pend *p = c->pend_head;
        pend_unlink(c, p);
        if (p->op != NULL)
            imk_op_set_user(p->op, NULL);
        p->op = NULL;
        if (c->freeing && p->waiter) {
            /* The blocking call never looks at it again. */
            pend_free(c, p);
            continue;
        }
        pend_finish(c, p, NULL, code, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* Options and lifecycle                                               */
/* ------------------------------------------------------------------ */

static int new_session(imk_conn *c)
{
    imk_session *s = NULL;
    int rc = imk_session_new(c->has_sess_opts ? &c->sess_opts : NULL, &c->alloc, &s);
    if (rc < 0)
        return rc;
    imk_session_free(c->s);
    c->s = s;
    return 0;
}

int imk_conn_new(const imk_conn_options *opts, const imk_allocator *alloc, imk_conn **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    imk_allocator a;
    imk__alloc_init(&a, alloc);
    imk_conn *c = imk__malloc(&a, sizeof(*c));
    if (c == NULL)
        return IMK_ENOMEM;
    memset(c, 0, sizeof(*c));
    c->alloc = a;
    c->phase = IMK__PH_NONE;
    c->peer = "(no host)";
    c->idle_refresh_ms = IMK__IDLE_REFRESH_MS;
    c->noop_interval_ms = IMK__NOOP_INTERVAL_MS;

    int rc = 0;
    if (opts == NULL) {
        rc = imk__conn_fail(c, IMK_EINVAL, "no connection options given");
    } else if (opts->version != IMK_CONN_OPTIONS_VERSION) {
        rc = imk__conn_fail(c, IMK_EINVAL,
                            "imk_conn_options.version is %u, this library knows version %d: "
                            "initialise the options with IMK_CONN_OPTIONS_INIT",
                            opts->version, IMK_CONN_OPTIONS_VERSION);
    } else if ((opts->host == NULL || opts->host[0] == '\0') &&
               (opts->tunnel == NULL || opts->tunnel[0] == '\0')) {
        rc = imk__conn_fail(c, IMK_EINVAL,
                            "no server given: set imk_conn_options.host (or .tunnel)");
    } else if (opts->family != 0 && opts->family != 4 && opts->family != 6) {
        rc = imk__conn_fail(c, IMK_EINVAL, "imk_conn_options.family is %d: use 0, 4 or 6",
                            opts->family);
    } else if ((unsigned)opts->security > (unsigned)IMK_SECURITY_NONE) {
        rc = imk__conn_fail(c, IMK_EINVAL, "imk_conn_options.security is %d: not a security mode",
                            (int)opts->security);
    } else if (opts->session != NULL && opts->session->version != IMK_SESSION_OPTIONS_VERSION) {
        rc = imk__conn_fail(c, IMK_EINVAL, "imk_conn_options.session->version is %u, expected %d",
                            opts->session->version, IMK_SESSION_OPTIONS_VERSION);
    }
    if (rc == 0) {
        int failed = 0;
        c->opts = *opts;
        c->host = dup_str(&a, opts->host != NULL && opts->host[0] ? opts->host : NULL, &failed);
        c->port = dup_str(&a, opts->port, &failed);
        c->tunnel =
            dup_str(&a, opts->tunnel != NULL && opts->tunnel[0] ? opts->tunnel : NULL, &failed);
        c->ca_file = dup_str(&a, opts->ca_file, &failed);
        c->ca_dir = dup_str(&a, opts->ca_dir, &failed);
        c->server_name = dup_str(&a, opts->server_name, &failed);
        if (opts->session != NULL) {
            c->sess_opts = *opts->session;
            c->has_sess_opts = 1;
            c->tag_prefix = dup_str(&a, opts->session->tag_prefix, &failed);
            c->sess_opts.tag_prefix = c->tag_prefix;
        }
        c->opts.host = c->host;
        c->opts.port = c->port;
        c->opts.tunnel = c->tunnel;
        c->opts.ca_file = c->ca_file;
        c->opts.ca_dir = c->ca_dir;
        c->opts.server_name = c->server_name;
        c->opts.session = NULL;
        if (c->opts.connect_timeout_ms == 0)
            c->opts.connect_timeout_ms = 30000;
        if (c->opts.io_timeout_ms == 0)
            c->opts.io_timeout_ms = 60000;
        if (c->opts.call_timeout_ms < 0)
            c->opts.call_timeout_ms = 0;
        if (failed) {
            imk_conn_free(c);
            return IMK_ENOMEM;
        }
        if (c->host != NULL) {
            c->peer = c->host;
        } else {
            /* messages name a tunnel by (the start of) its command */
            size_t n = strlen(c->tunnel);
            snprintf(c->peer_buf, sizeof(c->peer_buf), "tunnel \"%.*s%s\"", (int)(n > 60 ? 57 : n),
                     c->tunnel, n > 60 ? "..." : "");
            c->peer = c->peer_buf;
        }
    }
    /* The view must exist from the start (imk_conn_view never returns
     * NULL), so the session does too; connect makes a fresh one. After
     * rejected options a default session keeps the view valid. */
    if (rc == 0) {
        int src = new_session(c);
        if (src == IMK_ENOMEM) {
            imk_conn_free(c);
            return IMK_ENOMEM;
        }
        if (src < 0)
            rc = imk__conn_fail(c, src, "the session options are invalid (%s)",
                                imk_error_message(src));
    }
    if (c->s == NULL && imk_session_new(NULL, &c->alloc, &c->s) < 0) {
        imk_conn_free(c);
        return IMK_ENOMEM;
    }
    *out = c;
    return rc;
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Take the transport down, keeping a tunnel's exit status for
 * imk_conn_tunnel_status(). `clean`: the session ended normally (LOGOUT,
 * end of stream), so a tunnel server is exiting by itself and gets a
 * second to do so; otherwise (timeout, fatal error) it is terminated at
 * once, so the failing call keeps its deadline. */
static void drop_net(imk_conn *c, int clean)
{
    if (c->net == NULL)
        return;
    int status = 0;
    if (imk__net_close(c->net, clean ? 1000 : 0, &status) == 1) {
        c->tunnel_exited = 1;
        c->tunnel_status = status;
    }
    c->net = NULL;
}

static void free_scratch(imk_conn *c)
{
    while (c->scratch != NULL) {
        imk__scratch *next = c->scratch->next;
        imk__free(&c->alloc, c->scratch);
        c->scratch = next;
    }
}

static void really_free(imk_conn *c)
{
    c->freeing = 1;
    c->hold = 0;
    fail_pends(c, IMK_ECLOSED);
    imk__connect_abort(c, IMK_ECLOSED);
    imk__login_abort(c, IMK_ECLOSED);
    imk__idle_abort(c, IMK_ECLOSED);
    imk__fetch_abort(c, IMK_ECLOSED);
    imk__login_free(c);
    imk__idle_free(c);
    drop_net(c, 0);
    imk_session_free(c->s);
    const imk_allocator a = c->alloc;
    imk__free(&a, c->host);
    imk__free(&a, c->port);
    imk__free(&a, c->tunnel);
    imk__free(&a, c->ca_file);
    imk__free(&a, c->ca_dir);
    imk__free(&a, c->server_name);
    imk__free(&a, c->tag_prefix);
    imk__free(&a, c->stream_buf);
    free_scratch(c);
    wipe(&c->redact, sizeof(c->redact));
    imk__free(&a, c);
}

void imk_conn_free(imk_conn *c)
{
    if (c == NULL || c->freeing)
        return;
    if (c->busy > 0 || c->in_cb > 0) {
        c->free_pending = 1; /* completed when the outermost frame returns */
        return;
    }
    really_free(c);
}

/* Leave a library frame; 1 when the connection was freed meanwhile (the
 * caller must not touch it any more). */
static int leave(imk_conn *c)
{
    c->busy--;
    if (c->busy == 0 && c->in_cb == 0 && c->free_pending) {
        really_free(c);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

const char *imk_conn_error(const imk_conn *c)
{
    return c != NULL ? c->err : "";
}

imk_session *imk_conn_session(imk_conn *c)
{
    return c != NULL ? c->s : NULL;
}

const imk_view *imk_conn_view(const imk_conn *c)
{
    return c != NULL ? imk_session_view(c->s) : NULL;
}

int imk_conn_has_capability(const imk_conn *c, const char *cap)
{
    return c != NULL && c->s != NULL && imk_session_has_capability(c->s, cap);
}

const char *imk_conn_transport(const imk_conn *c)
{
    return c != NULL ? c->transport : "";
}

int imk_conn_tunnel_status(imk_conn *c, int *status)
{
    int st = 0;
    if (c == NULL)
        return 0;
    if (c->net != NULL && imk__net_tunnel_exited(c->net, &st) == 1) {
        c->tunnel_exited = 1;
        c->tunnel_status = st;
    }
    if (!c->tunnel_exited)
        return 0;
    if (status != NULL)
        *status = c->tunnel_status;
    return 1;
}

void imk_conn_on_event(imk_conn *c, imk_event_fn fn, void *user)
{
    if (c == NULL)
        return;
    c->on_event = fn;
    c->on_event_user = user;
}

void imk_conn_set_call_timeout(imk_conn *c, int ms)
{
    if (c == NULL)
        return;
    c->call_timeout = ms;
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */
/* ------------------------------------------------------------------ */

void *imk__conn_scratch(imk_conn *c, size_t size)
{
    size_t total;
    if (size > SIZE_MAX - sizeof(imk__scratch))
        return NULL;
    total = sizeof(imk__scratch) + size;
    imk__scratch *b = imk__malloc(&c->alloc, total);
    if (b == NULL)
        return NULL;
    b->next = c->scratch;
    c->scratch = b;
    return b->data;
}

static void release_hold(imk_conn *c)
{
    free_scratch(c); /* results built by the last call go with it */
    if (c->hold) {
        c->hold = 0;
        /* The application kept us from reading: the server was not late. */
        c->io_mark = imk__conn_now();
    }
}

static void abort_tasks(imk_conn *c, int code)
{
    imk__connect_abort(c, code);
    imk__login_abort(c, code);
    imk__idle_abort(c, code);
    imk__fetch_abort(c, code);
}

int imk__conn_close(imk_conn *c, int code, const char *fmt, ...)
{
    if (code != 0 && fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        verr(c, fmt, ap);
        va_end(ap);
    }
    if (c->phase == IMK__PH_CLOSED || c->phase == IMK__PH_NONE)
        return code;
    drop_net(c, code == 0);
    c->phase = IMK__PH_CLOSED;
    c->dead = code;
    c->eof = 0;
    c->hold = 0;
    c->more_input = 0;
    c->redact.s_auth = 0;
    c->carry_off = c->carry_len = 0;
    c->stream_blocked = 0;
    /* Callbacks may overwrite the message while they run: keep ours. */
    char msg[IMK__ERRBUF];
    memcpy(msg, c->err, sizeof(msg));
    fail_pends(c, code != 0 ? code : IMK_ECLOSED);
    abort_tasks(c, code != 0 ? code : IMK_ECLOSED);
    if (!c->freeing && !c->free_pending) {
        imk_session_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = IMK_SE_CLOSED;
        if (code != 0) {
            ev.text.data = msg;
            ev.text.len = strlen(msg);
        }
        imk__conn_emit(c, &ev);
    }
    memcpy(c->err, msg, sizeof(msg));
    return code;
}

/* ------------------------------------------------------------------ */
/* Beginning and submitting commands                                   */
/* ------------------------------------------------------------------ */

static int not_ready(imk_conn *c)
{
    if (c->freeing || c->free_pending)
        return imk__conn_fail(c, IMK_ESTATE, "the connection is being freed");
    switch (c->phase) {
    case IMK__PH_NONE:
        return imk__conn_fail(c, IMK_ESTATE, "not connected to %s: call imk_conn_connect() first",
                              c->peer);
    case IMK__PH_CONNECTING:
    case IMK__PH_TLS:
        return imk__conn_fail(c, IMK_ESTATE,
                              "the connection to %s is not ready yet: wait for imk_conn_connect()",
                              c->peer);
    case IMK__PH_CLOSED:
        if (c->dead != 0 && c->err[0] != '\0')
            return IMK_ESTATE; /* keep the message that says why it closed */
        return imk__conn_fail(
            c, IMK_ESTATE, "the connection to %s is closed: call imk_conn_connect() to reconnect",
            c->peer);
    case IMK__PH_OPEN:
        break;
    }
    if (c->eof)
        return imk__conn_fail(c, IMK_ESTATE,
                              "%s closed the connection: call imk_conn_connect() to reconnect",
                              c->peer);
    if (c->connect.active)
        return imk__conn_fail(c, IMK_ESTATE,
                              "the connection to %s is not ready yet: wait for imk_conn_connect()",
                              c->peer);
    return 0;
}

int imk__conn_begin_internal(imk_conn *c, imk_command_kind kind, imk_op **out)
{
    *out = NULL;
    if (c->phase != IMK__PH_OPEN || c->eof || c->freeing || c->free_pending)
        return imk__conn_fail(c, IMK_ESTATE, "%s cannot be sent: the connection to %s is closed",
                              imk_command_kind_verb(kind), c->peer);
    imk__pend *p = imk__malloc(&c->alloc, sizeof(*p));
    if (p == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for a %s command",
                              imk_command_kind_verb(kind));
    memset(p, 0, sizeof(*p));
    imk_op *op;
    int rc = imk_session_command(c->s, kind, &op);
    if (rc < 0) {
        imk__free(&c->alloc, p);
        return imk__conn_fail(c, rc, "%s", imk_session_error(c->s));
    }
    p->op = op;
    snprintf(p->tag, sizeof(p->tag), "%s", imk_op_tag(op));
    snprintf(p->verb, sizeof(p->verb), "%s", imk_command_kind_verb(kind));
    imk_op_set_user(op, p);
    *out = op;
    return 0;
}

int imk__conn_ready_check(imk_conn *c)
{
    if (c->iter != NULL)
        return imk__conn_fail(c, IMK_EBUSY,
                              "a FETCH iterator is open on this connection: end it with "
                              "imk_fetch_iter_end() first");
    int rc = not_ready(c);
    if (rc == 0)
        release_hold(c); /* a new call: the last result may go */
    return rc;
}

int imk__conn_begin(imk_conn *c, imk_command_kind kind, imk_op **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    int rc = imk__conn_ready_check(c);
    if (rc < 0)
        return rc;
    c->errbuf[0] = '\0';
    return imk__conn_begin_internal(c, kind, out);
}

int imk__conn_abandon(imk_conn *c, imk_op *op, int rc)
{
    if (op != NULL) {
        imk__pend *p = imk__conn_pend(op);
        imk_op_discard(c->s, op);
        pend_free(c, p);
    }
    if (c->errbuf[0] != '\0') {
        snprintf(c->err, sizeof(c->err), "%s", c->errbuf);
        c->errbuf[0] = '\0';
    } else {
        snprintf(c->err, sizeof(c->err), "%s", imk_error_message(rc));
    }
    return rc;
}

/* Any command waits on the server (for the I/O deadline)? */
static const imk__pend *waited_pend(const imk_conn *c)
{
    for (const imk__pend *p = c->pend_head; p != NULL; p = p->next)
        if (!p->idling)
            return p;
    return NULL;
}

static int submit_pend(imk_conn *c, imk__pend *p)
{
    int was_waiting = waited_pend(c) != NULL;
    int rc = imk_session_submit(c->s, p->op);
    if (rc < 0) {
        /* the session freed the op */
        p->op = NULL;
        imk__conn_fail(c, rc, "%s", imk_session_error(c->s));
        if (!p->waiter)
            pend_free(c, p);
        return rc;
    }
    p->submitted = 1;
    pend_link(c, p);
    if (!was_waiting)
        c->io_mark = imk__conn_now();
    return 0;
}

int imk__conn_submit(imk_conn *c, imk_op *op, imk_done_fn done, void *user)
{
    imk__pend *p = imk__conn_pend(op);
    if (p == NULL)
        return IMK_EINVAL;
    p->done = done;
    p->user = user;
    return submit_pend(c, p);
}

int imk__conn_submit_hook(imk_conn *c, imk_op *op, imk__hook_fn hook, void *ctx)
{
    imk__pend *p = imk__conn_pend(op);
    if (p == NULL)
        return IMK_EINVAL;
    p->hook = hook;
    p->ctx = ctx;
    return submit_pend(c, p);
}

int imk__conn_blocking_check(imk_conn *c, int iter_ok)
{
    if (c->in_cb > 0)
        return imk__conn_fail(c, IMK_EBUSY,
                              "a blocking call cannot run inside a callback of its own "
                              "connection: use the _async form");
    if (c->blocking > 0 || c->busy > 0)
        return imk__conn_fail(c, IMK_EBUSY, "another blocking call is running on this connection");
    if (c->iter != NULL && !iter_ok)
        return imk__conn_fail(c, IMK_EBUSY,
                              "a FETCH iterator is open on this connection: end it with "
                              "imk_fetch_iter_end() first");
    return 0;
}

int imk__conn_run(imk_conn *c, imk_op *op, const imk_result **res)
{
    if (res != NULL)
        *res = NULL;
    imk__pend *p = imk__conn_pend(op);
    if (p == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0) {
        imk_op_discard(c->s, op);
        pend_free(c, p);
        return rc;
    }
    p->waiter = 1;
    rc = submit_pend(c, p);
    if (rc < 0) {
        pend_free(c, p);
        return rc;
    }
    int freed = 0;
    rc = imk__conn_wait(c, &p->finished, 1, &freed);
    if (freed)
        return IMK_ECLOSED;
    if (!p->finished) {
        /* The connection closed without completing it (cannot happen:
         * closing fails every pend); be safe. */
        pend_unlink(c, p);
        if (p->op != NULL)
            imk_op_set_user(p->op, NULL);
        pend_free(c, p);
        return rc < 0 ? rc : IMK_ECLOSED;
    }
    rc = p->err;
    if (rc == 0 && res != NULL)
        *res = p->res;
    pend_free(c, p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* APPEND sources                                                      */
/* ------------------------------------------------------------------ */

int imk__conn_stream_sources(imk_conn *c, imk_op *op, const imk_append_msg *msgs, size_t n)
{
    imk__pend *p = imk__conn_pend(op);
    if (p == NULL || (msgs == NULL && n > 0))
        return IMK_EINVAL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (!imk__append_inline(&msgs[i]) && msgs[i].size > 0)
            count++;
    if (count == 0)
        return 0;
    size_t bytes;
    if (!imk__mul_ok(count, sizeof(*p->src), &bytes))
        return imk__conn_fail(c, IMK_ENOMEM, "too many APPEND messages");
    imk_append_msg *src = imk__realloc(&c->alloc, p->src, bytes);
    if (src == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for the APPEND sources");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!imk__append_inline(&msgs[i]) && msgs[i].size > 0)
            src[k++] = msgs[i];
    p->src = src;
    p->n_src = count;
    p->cur_src = 0;
    p->src_left = 0;
    return 0;
}

/* The streaming pend: the oldest with content still to send (the session
 * sends commands in submission order, one at a time). */
static imk__pend *streaming_pend(imk_conn *c)
{
    for (imk__pend *p = c->pend_head; p != NULL; p = p->next)
        if (p->cur_src < p->n_src)
            return p;
    return NULL;
}

/* A source failed: the literal was announced, so it cannot be cut short
 * without closing the connection. The command fails with `code`. */
static int stream_abort(imk_conn *c, imk__pend *p, int code, const char *why)
{
    char desc[80];
    imk__conn_describe(p, desc, sizeof(desc));
    pend_unlink(c, p);
    if (p->op != NULL)
        imk_op_set_user(p->op, NULL);
    p->op = NULL;
    imk__conn_close(c, IMK_ECLOSED,
                    "%s to %s aborted: %s; the connection was closed (an announced literal "
                    "cannot be cut short)",
                    desc, c->peer, why);
    char msg[IMK__ERRBUF];
    memcpy(msg, c->err, sizeof(msg));
    pend_finish(c, p, NULL, code, NULL);
    if (!c->freeing && !c->free_pending)
        memcpy(c->err, msg, sizeof(msg));
    return IMK_ECLOSED;
}

/* Feed the streamed literal the session waits for. Returns 1 when bytes
 * were taken, 0 when none could be, negative when the connection closed. */
static int stream_some(imk_conn *c)
{
    uint64_t pending = imk_session_stream_pending(c->s);
    if (pending == 0 || c->stream_blocked)
        return 0;
    imk__pend *p = streaming_pend(c);
    if (p == NULL)
        return imk__conn_close(c, IMK_EPROTO,
                               "internal error: a streamed literal for %s has no source", c->peer);
    const imk_append_msg *m = &p->src[p->cur_src];
    if (p->src_left == 0)
        p->src_left = m->size;
    const char *data;
    size_t got;
    if (c->carry_len > 0) {
        data = c->stream_buf + c->carry_off;
        got = c->carry_len;
    } else if (m->data != NULL) {
        uint64_t want64 = pending < p->src_left ? pending : p->src_left;
        got = want64 < IMK__STREAM_CHUNK ? (size_t)want64 : IMK__STREAM_CHUNK;
        data = (const char *)m->data + (m->size - p->src_left);
    } else {
        uint64_t want64 = pending < p->src_left ? pending : p->src_left;
        size_t want = want64 < IMK__STREAM_CHUNK ? (size_t)want64 : IMK__STREAM_CHUNK;
        if (c->stream_buf == NULL) {
            c->stream_buf = imk__malloc(&c->alloc, IMK__STREAM_CHUNK);
            if (c->stream_buf == NULL)
                return imk__conn_close(c, IMK_ENOMEM, "out of memory for the APPEND buffer");
        }
        if (m->read != NULL) {
            long r = m->read(m->read_user, c->stream_buf, want);
            if (r < 0) {
                char why[80];
                snprintf(why, sizeof(why), "the content callback returned %ld", r);
                return stream_abort(c, p, (int)r, why);
            }
            if (r == 0 || (size_t)r > want) {
                char why[120];
                snprintf(why, sizeof(why),
                         "the content callback returned %ld where 1..%zu bytes were asked for", r,
                         want);
                return stream_abort(c, p, IMK_EINVAL, why);
            }
            got = (size_t)r;
        } else {
            ssize_t r;
            do
                r = read(m->fd, c->stream_buf, want);
            while (r < 0 && errno == EINTR);
            if (r <= 0) {
                char why[160];
                if (r == 0)
                    snprintf(why, sizeof(why), "the file ended %llu bytes before the size given",
                             (unsigned long long)p->src_left);
                else
                    snprintf(why, sizeof(why), "reading the message file failed: %s",
                             strerror(errno));
                return stream_abort(c, p, IMK_EINVAL, why);
            }
            got = (size_t)r;
        }
        data = c->stream_buf;
        c->carry_off = 0;
        c->carry_len = got; /* until the session takes it */
    }
    size_t taken = imk_session_stream_write(c->s, data, got);
    if (c->carry_len > 0) {
        c->carry_off += taken;
        c->carry_len -= taken;
    }
    p->src_left -= taken;
    if (p->src_left == 0) {
        p->cur_src++;
        c->carry_off = c->carry_len = 0;
    }
    if (taken == 0) {
        /* The literal waits for the server's "+" (or the output is full):
         * nothing to write until the server says something. */
        c->stream_blocked = 1;
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Trace with redaction                                                */
/* ------------------------------------------------------------------ */

void imk__conn_redact_prefix(imk_conn *c, const char *prefix, size_t prefix_len, uint64_t secret)
{
    imk__redact *r = &c->redact;
    if (prefix_len > sizeof(r->prefix)) {
        /* the bytes right before the secret are what matter */
        prefix += prefix_len - sizeof(r->prefix);
        prefix_len = sizeof(r->prefix);
    }
    memcpy(r->prefix, prefix, prefix_len);
    r->prefix_len = prefix_len;
    r->matched = 0;
    r->secret = secret;
    r->armed = secret > 0 && prefix_len > 0;
}

void imk__conn_redact_next(imk_conn *c, uint64_t len)
{
    const char *d;
    size_t queued = imk_session_output(c->s, &d);
    c->redact.at = c->out_total + queued;
    c->redact.len = len;
}

void imk__conn_redact_server_auth(imk_conn *c, int on)
{
    c->redact.s_auth = on;
    c->redact.s_hiding = 0;
}

/* Is byte `i` of the chunk being traced secret? Advances the matcher. */
static int client_secret(imk__redact *r, uint64_t abs, unsigned char b)
{
    if (r->len > 0 && abs >= r->at && abs - r->at < r->len)
        return 1;
    if (!r->armed)
        return 0;
    if (r->matched == r->prefix_len) {
        if (--r->secret == 0)
            r->armed = 0;
        return 1;
    }
    if (b == (unsigned char)r->prefix[r->matched])
        r->matched++;
    else
        r->matched = b == (unsigned char)r->prefix[0] ? 1 : 0;
    return 0;
}

static void trace_client(imk_conn *c, const char *data, size_t len)
{
    imk__redact *r = &c->redact;
    size_t run = 0; /* start of the bytes not traced yet */
    for (size_t i = 0; i < len; i++) {
        if (!client_secret(r, c->out_total + i, (unsigned char)data[i])) {
            r->in_secret = 0;
            continue;
        }
        if (c->opts.trace != NULL) {
            if (i > run)
                c->opts.trace(c->opts.trace_user, 'C', data + run, i - run);
            if (!r->in_secret)
                c->opts.trace(c->opts.trace_user, 'C', REDACTED, sizeof(REDACTED) - 1);
        }
        r->in_secret = 1;
        run = i + 1;
    }
    if (c->opts.trace != NULL && len > run)
        c->opts.trace(c->opts.trace_user, 'C', data + run, len - run);
    if (r->len > 0 && c->out_total + len >= r->at + r->len)
        r->len = 0;
}

/* Server bytes: during an AUTHENTICATE the text of "+ " lines is hidden. */
static void trace_server(imk_conn *c, const char *data, size_t len)
{
    if (c->opts.trace == NULL)
        return;
    imk__redact *r = &c->redact;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        char b = data[i];
        if (r->s_hiding) {
            if (b == '\r' || b == '\n') {
                r->s_hiding = 0;
                start = i;
            }
            r->s_line_start = b == '\n';
            continue;
        }
        if (r->s_auth && r->s_line_start && b == '+') {
            size_t end = i + 1;
            if (end < len && data[end] == ' ')
                end++;
            c->opts.trace(c->opts.trace_user, 'S', data + start, end - start);
            c->opts.trace(c->opts.trace_user, 'S', REDACTED, sizeof(REDACTED) - 1);
            r->s_hiding = 1;
            r->s_line_start = 0;
            i = end - 1;
            start = len; /* nothing pending until the line ends */
            continue;
        }
        r->s_line_start = b == '\n';
    }
    if (!r->s_hiding && start < len)
        c->opts.trace(c->opts.trace_user, 'S', data + start, len - start);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* The transport failed: the message says what the client was doing. */
static int net_failed(imk_conn *c, int rc)
{
    const char *m = c->net != NULL ? imk__net_error(c->net) : "";
    char during[100] = "";
    if (c->pend_head != NULL) {
        char desc[80];
        imk__conn_describe(c->pend_head, desc, sizeof(desc));
        snprintf(during, sizeof(during), " (during %s)", desc);
    }
    if (m[0] == '\0')
        return imk__conn_close(c, rc, "connection to %s: %s%s", c->peer, imk_error_message(rc),
                               during);
    return imk__conn_close(c, rc, "%s%s", m, during);
}

/* Session output (and streamed APPEND content) into the net, then flush.
 * Returns 0 or the code the connection closed with. */
static int flush(imk_conn *c)
{
    if (c->net == NULL || c->phase != IMK__PH_OPEN)
        return 0;
    size_t unsent_before = imk__net_unsent(c->net);
    int progress = 0;
    while (imk__net_unsent(c->net) < IMK__NET_HIGH_WATER) {
        const char *data;
        size_t n = imk_session_output(c->s, &data);
        if (n > 0) {
            long w = imk__net_write(c->net, data, n);
            if (w < 0)
                return net_failed(c, (int)w);
            trace_client(c, data, n);
            c->out_total += n;
            imk_session_sent(c->s, n);
            progress = 1;
            continue;
        }
        int rc = stream_some(c);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
    }
    int rc = imk__net_flush(c->net);
    if (rc < 0 && rc != IMK__NET_AGAIN)
        return net_failed(c, rc);
    if (progress || imk__net_unsent(c->net) < unsent_before)
        c->io_mark = imk__conn_now();
    return 0;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static void op_done(imk_conn *c, const imk_session_event *ev)
{
    imk__pend *p = imk__conn_pend(ev->op);
    if (p == NULL)
        return; /* an op nobody waits for any more */
    pend_unlink(c, p);
    imk_op_set_user(ev->op, NULL);
    const imk_result *res = imk_op_result(ev->op);
    int err = 0;
    if (res != NULL && res->status == IMK_STATUS_NONE && res->error < 0)
        err = res->error;
    if (err < 0 && !c->logout_sent) {
        char desc[80];
        imk__conn_describe(p, desc, sizeof(desc));
        const char *tail = c->eof ? c->tunnel_tail : "";
        if (err == IMK_ECLOSED) {
            c->eof_reported = 1;
            imk__conn_fail(c, err, "%s closed the connection during %s: %.*s%s%s", c->peer, desc,
                           (int)res->text.len, res->text.data != NULL ? res->text.data : "",
                           tail[0] ? "; " : "", tail);
        } else
            imk__conn_fail(c, err, "%s on %s failed: %.*s", desc, c->peer, (int)res->text.len,
                           res->text.data != NULL ? res->text.data : "");
    }
    pend_finish(c, p, ev, err, err < 0 ? NULL : res);
}

static void compressing(imk_conn *c)
{
    const char *rest = NULL;
    size_t rest_len = 0;
    int rc = imk_session_compress_done(c->s, &rest, &rest_len);
    if (rc < 0) {
        imk__conn_close(c, rc, "COMPRESS with %s: %s", c->peer, imk_session_error(c->s));
        return;
    }
    if (c->net == NULL)
        return;
    rc = imk__net_compress_start(c->net, rest, rest_len);
    if (rc < 0) {
        net_failed(c, rc);
        return;
    }
    imk__conn_update_transport(c);
}

static void on_closed(imk_conn *c, const imk_session_event *ev)
{
    imk__conn_emit(c, ev);
    if (c->phase != IMK__PH_OPEN || c->free_pending)
        return;
    int code = c->logout_sent ? 0 : IMK_ECLOSED;
    if (code != 0 && !c->eof_reported) {
        const char *tail = c->tunnel_tail;
        if (ev->text.data != NULL && ev->text.len > 0)
            imk__conn_fail(c, code, "%s closed the connection (BYE %.*s)", c->peer,
                           (int)ev->text.len, ev->text.data);
        else if (c->opts.tunnel != NULL && tail[0] != '\0')
            imk__conn_fail(c, code, "%s closed the connection: %s", c->peer, tail);
        else
            imk__conn_fail(c, code, "%s closed the connection", c->peer);
    }
    drop_net(c, 1);
    c->phase = IMK__PH_CLOSED;
    c->dead = code;
    c->eof = 0;
    fail_pends(c, IMK_ECLOSED);
    abort_tasks(c, IMK_ECLOSED);
}

static void handle_event(imk_conn *c, const imk_session_event *ev)
{
    imk__pend *p;
    switch (ev->type) {
    case IMK_SE_GREETING:
        imk__connect_greeting(c, ev);
        return;
    case IMK_SE_DONE:
        op_done(c, ev);
        return;
    case IMK_SE_CLOSED:
        on_closed(c, ev);
        return;
    case IMK_SE_COMPRESSING:
        compressing(c);
        if (c->phase != IMK__PH_OPEN)
            return;
        p = imk__conn_pend(ev->op);
        if (p != NULL && p->hook != NULL)
            p->hook(c, p, ev, 0);
        return;
    case IMK_SE_CONTINUATION:
    case IMK_SE_IDLING:
    case IMK_SE_FETCH:
    case IMK_SE_BODY_BEGIN:
    case IMK_SE_BODY_CHUNK:
    case IMK_SE_BODY_END:
        p = imk__conn_pend(ev->op);
        if (p != NULL && p->hook != NULL) {
            p->hook(c, p, ev, 0);
            return;
        }
        /* A command sent with imk_command() that cannot be answered here:
         * end it rather than leave the connection stuck. */
        if (ev->type == IMK_SE_CONTINUATION && ev->op != NULL) {
            imk_session_auth_cancel(c->s, ev->op);
            return;
        }
        if (ev->type == IMK_SE_IDLING && ev->op != NULL) {
            imk_session_idle_done(c->s, ev->op);
            return;
        }
        break;
    default:
        break;
    }
    imk__conn_emit(c, ev);
}

/* The session's message for a failure, or the code's own. */
static const char *session_why(imk_conn *c, int rc)
{
    const char *m = imk_session_error(c->s);
    return m != NULL && m[0] != '\0' ? m : imk_error_message(rc);
}

/* Deliver events until the session needs input, something must be held,
 * or the connection closed. Returns 0 or the code it closed with. */
static int dispatch(imk_conn *c)
{
    while (!c->hold && !c->free_pending && (c->phase == IMK__PH_OPEN || c->phase == IMK__PH_TLS)) {
        imk_session_event ev;
        int rc = imk_session_next(c->s, &ev);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return imk__conn_close(c, rc, "%s: %s", c->peer, session_why(c, rc));
        handle_event(c, &ev);
    }
    return c->phase == IMK__PH_CLOSED ? c->dead : 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* The server closed its side: the session gets the end of the stream and
 * completes every command; the transport goes now. */
static void end_of_stream(imk_conn *c)
{
    c->tunnel_tail[0] = '\0';
    if (c->opts.tunnel != NULL && c->net != NULL) {
        const char *tail = imk__net_tunnel_stderr(c->net);
        snprintf(c->tunnel_tail, sizeof(c->tunnel_tail), "%s", tail != NULL ? tail : "");
        size_t n = strlen(c->tunnel_tail);
        while (n > 0 && (c->tunnel_tail[n - 1] == '\n' || c->tunnel_tail[n - 1] == '\r'))
            c->tunnel_tail[--n] = '\0';
        for (char *q = c->tunnel_tail; *q != '\0'; q++)
            if ((unsigned char)*q < 0x20)
                *q = ' ';
    }
    imk_session_eof(c->s);
    drop_net(c, 1);
    c->eof = 1;
}

/* One read into the session's input buffer. Returns the bytes read, 0 for
 * "would block", 1 after the end of the stream, or a negative code (the
 * connection closed). */
static long read_some(imk_conn *c, size_t budget)
{
    size_t room = 0;
    char *buf = imk_session_buffer(c->s, &room);
    if (buf == NULL)
        return 0;
    if (room == 0)
        return imk__conn_close(
            c, IMK_EPROTO, "%s: the input buffer is full but holds no complete response", c->peer);
    if (room > budget)
        room = budget;
    long n = imk__net_read(c->net, buf, room);
    if (n > 0) {
        c->new_input = 1; /* the "+" a literal waits for may be here */
        trace_server(c, buf, (size_t)n);
        int rc = imk_session_commit(c->s, (size_t)n);
        if (rc < 0)
            return imk__conn_close(c, rc, "%s: %s", c->peer, session_why(c, rc));
        c->io_mark = imk__conn_now();
        return n;
    }
    if (n == 0) {
        end_of_stream(c);
        return 1;
    }
    if (n == IMK__NET_AGAIN)
        return 0;
    return net_failed(c, (int)n);
}

/* ------------------------------------------------------------------ */
/* Deadlines                                                           */
/* ------------------------------------------------------------------ */

static int io_timeout(const imk_conn *c)
{
    return c->opts.io_timeout_ms > 0 ? c->opts.io_timeout_ms : 0;
}

/* What the client waits on the server for, or NULL. */
static const char *waiting_for(const imk_conn *c, char *buf, size_t len)
{
    if (c->phase == IMK__PH_TLS)
        return c->connect.starttls ? "the TLS handshake after STARTTLS" : "the TLS handshake";
    if (c->phase != IMK__PH_OPEN || c->net == NULL)
        return NULL;
    if (c->connect.active && c->connect.waiting_greet)
        return "the greeting";
    const imk__pend *p = waited_pend(c);
    if (p == NULL)
        return NULL;
    imk__conn_describe(p, buf, len);
    return buf;
}

static int64_t io_deadline(const imk_conn *c)
{
    char desc[80];
    if (io_timeout(c) == 0 || waiting_for(c, desc, sizeof(desc)) == NULL)
        return -1;
    return c->io_mark + io_timeout(c);
}

static void check_deadlines(imk_conn *c)
{
    int64_t now = imk__conn_now();
    int64_t d = io_deadline(c);
    if (d >= 0 && now >= d) {
        char desc[80];
        const char *what = waiting_for(c, desc, sizeof(desc));
        imk__conn_close(c, IMK_ETIMEDOUT, "no answer from %s for %d ms while waiting for %s",
                        c->peer, io_timeout(c), what != NULL ? what : "it");
    }
}

/* ------------------------------------------------------------------ */
/* The process loop                                                    */
/* ------------------------------------------------------------------ */

static int closed_code(const imk_conn *c)
{
    return c->phase == IMK__PH_CLOSED ? c->dead : 0;
}

int imk__conn_drive(imk_conn *c)
{
    size_t budget = IMK__READ_BUDGET;
    c->more_input = 0;
    c->kick = 0; /* set again below by whatever still has work */
    for (int round = 0; round < 1024; round++) {
        if (c->free_pending)
            return 0;
        if (c->phase == IMK__PH_CONNECTING || c->phase == IMK__PH_TLS) {
            int rc = imk__connect_io(c);
            if (rc == IMK__NET_AGAIN) {
                /* the STARTTLS completion may have left events to check */
                if (dispatch(c) < 0 || c->phase == IMK__PH_CLOSED)
                    return closed_code(c);
                check_deadlines(c);
                return closed_code(c);
            }
            if (rc < 0)
                return closed_code(c);
            continue;
        }
        if (c->phase != IMK__PH_OPEN)
            return closed_code(c);
        c->kick = 0;
        int64_t now = imk__conn_now();
        imk__idle_tick(c, now);
        imk__login_kick(c);
        if (c->phase != IMK__PH_OPEN || c->free_pending)
            continue;
        if (flush(c) < 0)
            continue;
        if (dispatch(c) < 0 || c->phase != IMK__PH_OPEN || c->free_pending)
            continue;
        if (c->new_input && !c->hold) {
            /* all input so far was handled: a "+" a streamed literal waited
             * for has been seen */
            c->new_input = 0;
            c->stream_blocked = 0;
        }
        if (flush(c) < 0) /* callbacks may have queued commands */
            continue;
        if (c->hold)
            return 0;
        if (c->net == NULL) {
            /* The stream ended and the session delivered everything; its
             * CLOSED event closes us. */
            if (c->eof && c->phase == IMK__PH_OPEN) {
                imk_session_event ev;
                memset(&ev, 0, sizeof(ev));
                ev.type = IMK_SE_CLOSED;
                on_closed(c, &ev);
            }
            continue;
        }
        if (c->kick)
            continue;
        if (budget == 0) {
            c->more_input = 1;
            return 0;
        }
        long n = read_some(c, budget);
        if (n < 0)
            return closed_code(c);
        if (n == 0) {
            check_deadlines(c);
            return closed_code(c);
        }
        budget -= (size_t)n < budget ? (size_t)n : budget;
    }
    c->more_input = 1;
    return closed_code(c);
}

int imk_conn_process(imk_conn *c, unsigned revents)
{
    (void)revents; /* every step is tried without blocking */
    if (c == NULL)
        return IMK_EINVAL;
    if (c->busy > 0 || c->in_cb > 0)
        return imk__conn_fail(c, IMK_EBUSY,
                              "imk_conn_process() cannot run inside a callback or a blocking "
                              "call of the same connection");
    release_hold(c);
    if (c->phase == IMK__PH_NONE)
        return 0;
    if (c->phase == IMK__PH_CLOSED)
        return c->dead;
    c->busy++;
    int rc = imk__conn_drive(c);
    if (leave(c))
        return 0; /* freed by a callback */
    return rc;
}

int imk_conn_fd(const imk_conn *c)
{
    if (c == NULL || c->net == NULL)
        return -1;
    if (c->phase == IMK__PH_CONNECTING || c->phase == IMK__PH_TLS || c->phase == IMK__PH_OPEN)
        return imk__net_fd(c->net);
    return -1;
}

unsigned imk_conn_events(const imk_conn *c)
{
    if (c == NULL || c->net == NULL)
        return 0;
    unsigned want = imk__net_want(c->net);
    unsigned ev = 0;
    if (want & IMK__NET_WANT_READ)
        ev |= IMK_WANT_READ;
    if (want & IMK__NET_WANT_WRITE)
        ev |= IMK_WANT_WRITE;
    switch (c->phase) {
    case IMK__PH_CONNECTING:
    case IMK__PH_TLS:
        return ev != 0 ? ev : IMK_WANT_READ;
    case IMK__PH_OPEN: {
        /* the server may speak at any time */
        unsigned out = IMK_WANT_READ;
        if (imk__net_unsent(c->net) > 0)
            out |= ev;
        const char *d;
        if (imk_session_output(c->s, &d) > 0 ||
            (imk_session_stream_pending(c->s) > 0 && !c->stream_blocked))
            out |= IMK_WANT_WRITE;
        return out;
    }
    default:
        return 0;
    }
}

int imk_conn_timeout(const imk_conn *c)
{
    if (c == NULL || c->phase == IMK__PH_NONE || c->phase == IMK__PH_CLOSED)
        return -1;
    if (c->hold || c->more_input || c->kick || c->net == NULL)
        return 0;
    int64_t now = imk__conn_now();
    int64_t best = -1;
#define IMK_CANDIDATE(t)                                                                           \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ >= 0 && (best < 0 || t_ < best))                                                    \
            best = t_;                                                                             \
    } while (0)
    if (c->phase == IMK__PH_CONNECTING)
        IMK_CANDIDATE(imk__net_deadline(c->net));
    IMK_CANDIDATE(io_deadline(c));
    if (c->call_deadline > 0)
        IMK_CANDIDATE(c->call_deadline);
    IMK_CANDIDATE(imk__idle_next_timer(c, now));
#undef IMK_CANDIDATE
    if (best < 0)
        return -1;
    if (best <= now)
        return 0;
    return best - now > INT_MAX ? INT_MAX : (int)(best - now);
}

/* ------------------------------------------------------------------ */
/* The blocking wait                                                   */
/* ------------------------------------------------------------------ */

int imk__conn_wait(imk_conn *c, const int *flag, int call_deadline, int *freed)
{
    *freed = 0;
    /* A new call: what the last one held (its result, an iterator's item)
     * may go now. */
    release_hold(c);
    c->busy++;
    c->blocking++;
    int saved_deadline = 0;
    int64_t saved = c->call_deadline;
    int ct = c->call_timeout != 0 ? c->call_timeout : c->opts.call_timeout_ms;
    if (call_deadline && ct > 0) {
        c->call_deadline = imk__conn_now() + ct;
        saved_deadline = 1;
    }
    int rc = 0;
    for (;;) {
        imk__conn_drive(c);
        if (c->free_pending || *flag)
            break;
        if (c->phase == IMK__PH_CLOSED || c->phase == IMK__PH_NONE) {
            rc = c->dead != 0 ? c->dead : IMK_ECLOSED;
            break;
        }
        int64_t now = imk__conn_now();
        if (c->call_deadline > 0 && now >= c->call_deadline) {
            char desc[80];
            const char *what = waiting_for(c, desc, sizeof(desc));
            imk__conn_close(c, IMK_ETIMEDOUT,
                            "%s did not complete %s within the call timeout of %d ms", c->peer,
                            what != NULL ? what : "the call", ct);
            continue;
        }
        int timeout = imk_conn_timeout(c);
        int fd = imk_conn_fd(c);
        if (fd < 0)
            continue; /* no transport (the stream ended): drive again */
        unsigned want = imk_conn_events(c);
        struct pollfd pfd;
        pfd.fd = fd;
        pfd.events = (short)(((want & IMK_WANT_READ) ? POLLIN : 0) |
                             ((want & IMK_WANT_WRITE) ? POLLOUT : 0));
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR && errno != EAGAIN) {
            imk__conn_close(c, IMK_ENET, "poll on the connection to %s: %s", c->peer,
                            strerror(errno));
            continue;
        }
    }
    c->blocking--;
    if (saved_deadline)
        c->call_deadline = saved;
    if (leave(c)) {
        *freed = 1;
        return IMK_ECLOSED;
    }
    return rc;
}
