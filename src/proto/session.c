/* SPDX-License-Identifier: MIT */
/*
 * The sans-I/O IMAP session (DESIGN.md sections 1 to 5): commands in,
 * bytes out; bytes in, events and command results out. No socket, no
 * clock, no system call: every behaviour is testable from a transcript.
 *
 * This file holds the public API: the session's lifecycle, its input
 * (handed to the reader, imapkit/reader.h), its output (filled by the
 * scheduler, session_sched.c), the event queue (filled by the dispatcher,
 * session_dispatch.c), commands, the connection state and capabilities.
 *
 * Connection states (RFC 9051 section 3), as the session tracks them:
 *
 *                 greeting OK              LOGIN / AUTHENTICATE OK
 *   GREETING ------------------> NOT_AUTHENTICATED -------------------+
 *     |   |                         |  (STARTTLS OK: capabilities     |
 *     |   | greeting PREAUTH        |   forgotten, reading paused     |
 *     |   +-------------------------|---until starttls_done) ----+    |
 *     |                             |                            v    v
 *     |                             |                     AUTHENTICATED
 *     |                             |        SELECT/EXAMINE OK |   ^  CLOSE/UNSELECT OK,
 *     |                             |                          v   |  SELECT/EXAMINE NO/BAD
 *     |                             |                        SELECTED
 *     | greeting BYE                | LOGOUT sent, BYE (untagged or tagged), from any state
 *     +-----------------------------+--------------------------------> LOGOUT
 *
 * Commands are checked at imk_session_command() against the state the
 * connection will have once everything queued before them has succeeded
 * (a FETCH may be queued behind a pending SELECT).
 *
 * The life of an op (imk_op):
 *
 *   imk_session_command()    imk_session_submit()    scheduler (session_sched.c)
 *         |                         |                     |
 *         v                         v                     v
 *     BUILDING --args, set--> QUEUED (FIFO) --------> SENDING ---all segments out---> SENT
 *         |                                      (waits for "+" at a          |
 *   imk_op_discard()                              synchronizing literal)      |
 *         v                                           |                       |
 *       freed             tagged NO/BAD instead of "+"|     tagged OK/NO/BAD/BYE
 *                         (later segments never sent) v                       v
 *                                                   DONE <--------------------+
 *           end of stream: status NONE, IMK_ECLOSED  ^  |
 *           and the BYE text (queued or in flight) --+  | IMK_SE_DONE returned by
 *                                                       v imk_session_next()
 *                                           freed at the next imk_session_next()
 *
 * Invariants:
 *   - every response is applied to the view before any command or event sees
 *     it; events come out in the order of the responses that caused them;
 *   - nothing the session keeps grows without a bound from the options:
 *     output (max_output), ops (max_ops), each op's result (max_result_size),
 *     the reader's buffers (imk_reader_options);
 *   - after a fatal error (IMK_ENOMEM, IMK_EPROTO) every call is harmless and
 *     imk_session_next() keeps returning the error.
 */
#include "proto/reader_int.h"
#include "proto/session_int.h"

#include "util/alloc.h"
#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MAX_OUTPUT ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_OPS ((size_t)10000)
#define DEFAULT_MAX_RESULT ((size_t)256 * 1024 * 1024)

static const char *const VERBS[IMK_CMD_COUNT_] = {
#define IMK_X_VERB(sfx, verb) verb,
    IMK_COMMAND_TABLE(IMK_X_VERB)
#undef IMK_X_VERB
};

IMK_API const char *imk_command_kind_verb(imk_command_kind kind)
{
    return (unsigned)kind < IMK_CMD_COUNT_ ? VERBS[kind] : "";
}

/* ---- small internals ---- */

void imk__session_fail(imk_session *s, int code, const char *fmt, ...)
{
    if (s->fatal != 0)
        return;
    s->fatal = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
}

void imk__session_list_remove(imk__op_list *l, imk_op *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->count--;
}

void imk__session_list_append(imk__op_list *l, imk_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->count++;
}

static imk__op_list *list_of(imk_session *s, imk_op *op)
{
    switch (op->state) {
    case IMK__OP_BUILDING:
        return &s->building;
    case IMK__OP_QUEUED:
        return &s->queue;
    case IMK__OP_SENDING:
    case IMK__OP_SENT:
        return &s->inflight;
    case IMK__OP_DONE:
        break;
    }
    return NULL;
}

static void op_free(imk_session *s, imk_op *op)
{
    imk_command_free(op->cmd);
    imk__result_free(op->result);
    imk__seqset_free(&op->set);
    imk__free(&s->alloc, op->mailbox);
    imk__free(&s->alloc, op);
}

static void free_list(imk_session *s, imk__op_list *l)
{
    while (l->head != NULL) {
        imk_op *op = l->head;
        imk__session_list_remove(l, op);
        op_free(s, op);
    }
}

imk_session_event *imk__session_push(imk_session *s, imk_session_event_type type)
{
    if (s->fatal != 0)
        return NULL;
    if (s->ev_len == s->ev_cap) {
        size_t cap = s->ev_cap == 0 ? 16 : s->ev_cap * 2, bytes;
        imk_session_event *ev = NULL;
        if (imk__mul_ok(cap, sizeof(*ev), &bytes))
            ev = imk__realloc(&s->alloc, s->events, bytes);
        if (ev == NULL) {
            imk__session_fail(s, IMK_ENOMEM, "out of memory for the event queue");
            return NULL;
        }
        s->events = ev;
        s->ev_cap = cap;
    }
    imk_session_event *ev = &s->events[s->ev_len++];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    return ev;
}

int imk__session_copy_str(imk_session *s, imk_str in, imk_str *out)
{
    out->data = NULL;
    out->len = 0;
    if (in.data == NULL)
        return 0;
    char *p = imk__arena_strndup(&s->ev_arena, in.data, in.len);
    if (p == NULL) {
        imk__session_fail(s, IMK_ENOMEM, "out of memory for an event");
        return IMK_ENOMEM;
    }
    out->data = p;
    out->len = in.len;
    return 0;
}

size_t imk__session_unconsumed(imk_session *s)
{
    size_t room = 0;
    imk_reader_buffer(s->reader, &room);
    return room < s->reader_cap ? s->reader_cap - room : 0;
}

void imk__session_complete(imk_session *s, imk_op *op)
{
    if (op == s->sending)
        s->sending = NULL;
    if (op == s->select_op)
        s->select_op = NULL;
    if (op == s->body_op)
        s->body_op = NULL;
    if (op == s->expunge_target)
        s->expunge_target = NULL;
    imk__op_list *l = list_of(s, op);
    if (l != NULL)
        imk__session_list_remove(l, op);
    if ((imk__session_cmd_flags(op->kind) & IMK__CF_STATE) && s->state_ops > 0)
        s->state_ops--;
    op->state = IMK__OP_DONE;
    op->stream_left = 0;
    op->wait_plus = 0;
    if (op->data_error != 0) {
        static const char lim[] = "the command's data exceeded max_result_size and was cut";
        static const char mem[] =
            "out of memory while keeping the command's data: it is incomplete";
        /* Keep the server's text when there is one: the status is its. */
        const imk_result *res = imk__result_get(op->result);
        imk_str text = res->text;
        if (res->status == IMK_STATUS_NONE || text.data == NULL) {
            const char *m = op->data_error == IMK_ELIMIT ? lim : mem;
            text = (imk_str){m, strlen(m)};
        }
        imk__result_set_error(op->result, op->data_error, text);
    }
    imk__session_list_append(&s->completing, op);
    imk_session_event *ev = imk__session_push(s, IMK_SE_DONE);
    if (ev != NULL) {
        const imk_result *res = imk__result_get(op->result);
        ev->op = op;
        ev->status = res->status;
        ev->code = res->code;
        ev->text = res->text;
    }
}

/* The stream ended: every op still outstanding fails (RFC 9051 7.1.5: after
 * BYE the server closes the connection), then IMK_SE_CLOSED. */
static void finish_eof(imk_session *s)
{
    imk_str bye = {s->bye_text.data, s->bye_text.len};
    if (bye.data == NULL)
        bye.data = "";
    static const char closed[] = "the connection closed before the command completed";
    imk__op_list *lists[2] = {&s->inflight, &s->queue};
    for (int i = 0; i < 2; i++) {
        while (lists[i]->head != NULL && s->fatal == 0) {
            imk_op *op = lists[i]->head;
            imk_str text = s->bye_seen ? bye : (imk_str){closed, sizeof(closed) - 1};
            /* LOGOUT after BYE: what it asked for happened (status NONE,
             * error 0); everything else was cut short. */
            int err = op->kind == IMK_CMD_LOGOUT && s->bye_seen ? 0 : IMK_ECLOSED;
            imk__result_set_error(op->result, err, text);
            imk__session_complete(s, op);
        }
    }
    s->state = IMK_STATE_LOGOUT;
    imk_session_event *ev = imk__session_push(s, IMK_SE_CLOSED);
    if (ev != NULL && s->bye_seen)
        ev->text = bye;
    s->closed = 1;
}

/* ---- capabilities and ENABLE ---- */

void imk__session_forget_caps(imk_session *s)
{
    imk__arena_reset(&s->caps_arena);
    s->caps.count = 0;
    s->caps.items = NULL;
    s->caps_known = 0;
    s->caps_gen++;
    s->cap_literal_plus = s->cap_literal_minus = s->cap_binary = 0;
}

void imk__session_set_caps(imk_session *s, const imk_strlist *caps)
{
    imk__session_forget_caps(s);
    if (imk__copy_strlist(&s->caps_arena, caps, &s->caps) < 0) {
        s->caps.count = 0;
        imk__session_fail(s, IMK_ENOMEM, "out of memory for the capability list");
        return;
    }
    s->caps_known = 1;
    for (size_t i = 0; i < s->caps.count; i++) {
        if (imk__str_ieq(s->caps.items[i], "LITERAL+"))
            s->cap_literal_plus = 1;
        else if (imk__str_ieq(s->caps.items[i], "LITERAL-"))
            s->cap_literal_minus = 1;
        else if (imk__str_ieq(s->caps.items[i], "BINARY"))
            s->cap_binary = 1;
    }
}

static int enabled_has(const imk_session *s, const char *ext)
{
    size_t pos = 0;
    while (pos < s->enabled.len) {
        const char *name = s->enabled.data + pos;
        size_t n = strlen(name);
        if (imk__str_ieq((imk_str){name, n}, ext))
            return 1;
        pos += n + 1;
    }
    return 0;
}

void imk__session_add_enabled(imk_session *s, const imk_strlist *names)
{
    for (size_t i = 0; i < names->count; i++) {
        imk_str n = names->items[i];
        if (n.data == NULL || memchr(n.data, '\0', n.len) != NULL)
            continue;
        if (imk__str_ieq(n, "CONDSTORE"))
            s->enabled_bits |= IMK__ENABLED_CONDSTORE;
        else if (imk__str_ieq(n, "QRESYNC"))
            s->enabled_bits |= IMK__ENABLED_QRESYNC | IMK__ENABLED_CONDSTORE;
        else if (imk__str_ieq(n, "IMAP4rev2"))
            s->enabled_bits |= IMK__ENABLED_IMAP4REV2;
        else if (imk__str_ieq(n, "UTF8=ACCEPT") || imk__str_ieq(n, "UTF8=ONLY")) {
            /* RFC 6855 section 3: mailbox names are UTF-8 from now on, both
             * ways. Commands created from now on encode them so. */
            s->enabled_bits |= IMK__ENABLED_UTF8;
            imk_reader_set_utf8(s->reader, 1);
        }
        char tmp[128];
        if (n.len >= sizeof(tmp))
            continue;
        memcpy(tmp, n.data, n.len);
        tmp[n.len] = '\0';
        if (enabled_has(s, tmp))
            continue;
        if (imk__buf_append(&s->enabled, n.data, n.len) < 0 ||
            imk__buf_append_byte(&s->enabled, '\0') < 0) {
            imk__session_fail(s, IMK_ENOMEM, "out of memory for the enabled extensions");
            return;
        }
    }
}

/* ---- lifecycle ---- */

int imk_session_new(const imk_session_options *opts, const imk_allocator *alloc, imk_session **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    if (opts != NULL && opts->version != IMK_SESSION_OPTIONS_VERSION)
        return IMK_EINVAL;
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    if (opts != NULL)
        o = *opts;
    o.version = IMK_SESSION_OPTIONS_VERSION;
    if (o.max_output == 0)
        o.max_output = DEFAULT_MAX_OUTPUT;
    if (o.max_ops == 0)
        o.max_ops = DEFAULT_MAX_OPS;
    if (o.max_result_size == 0)
        o.max_result_size = DEFAULT_MAX_RESULT;
    const char *prefix = o.tag_prefix != NULL ? o.tag_prefix : "A";
    size_t plen = strlen(prefix);
    if (plen == 0 || plen >= 16)
        return IMK_EINVAL;
    for (size_t i = 0; i < plen; i++) {
        /* tag = 1*<any ASTRING-CHAR except "+">; digits follow it */
        unsigned char c = (unsigned char)prefix[i];
        if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\+]", c) != NULL)
            return IMK_EINVAL;
    }

    imk_allocator a;
    imk__alloc_init(&a, alloc);
    imk_session *s = imk__malloc(&a, sizeof(*s));
    if (s == NULL)
        return IMK_ENOMEM;
    memset(s, 0, sizeof(*s));
    s->alloc = a;
    s->opts = o;
    memcpy(s->tag_prefix, prefix, plen + 1);
    s->opts.tag_prefix = s->tag_prefix;
    s->state = IMK_STATE_GREETING;
    imk__buf_init(&s->out, &s->alloc, 0);
    imk__buf_init(&s->enabled, &s->alloc, 0);
    imk__buf_init(&s->bye_text, &s->alloc, 0);
    imk__arena_init(&s->ev_arena, &s->alloc, 1024, 0);
    imk__arena_init(&s->caps_arena, &s->alloc, 1024, 0);

    const imk_reader_options *ro = o.reader.version != 0 ? &o.reader : NULL;
    int rc = imk_reader_new(ro, &s->alloc, &s->reader);
    if (rc == 0)
        rc = imk__view_new(&s->alloc, &s->view);
    if (rc < 0) {
        imk_session_free(s);
        return rc;
    }
    imk__view_observer obs = imk__session_observer_template;
    obs.user = s;
    imk__view_set_observer(s->view, &obs);
    if (o.reader.version != 0 && o.reader.utf8_mailboxes)
        s->enabled_bits |= IMK__ENABLED_UTF8;
    imk_reader_buffer(s->reader, &s->reader_cap);
    *out = s;
    return 0;
}

void imk_session_free(imk_session *s)
{
    if (s == NULL)
        return;
    free_list(s, &s->building);
    free_list(s, &s->queue);
    free_list(s, &s->inflight);
    free_list(s, &s->completing);
    free_list(s, &s->done);
    imk_reader_free(s->reader);
    imk__view_free(s->view);
    imk__buf_free(&s->out);
    imk__buf_free(&s->enabled);
    imk__buf_free(&s->bye_text);
    imk__arena_free(&s->ev_arena);
    imk__arena_free(&s->caps_arena);
    imk__free(&s->alloc, s->events);
    imk__free(&s->alloc, s->mailbox);
    imk_allocator a = s->alloc;
    imk__free(&a, s);
}

/* ---- input ---- */

size_t imk_session_feed(imk_session *s, const void *data, size_t len)
{
    if (s->fatal != 0 || s->eof || len == 0)
        return 0;
    size_t n = imk_reader_feed(s->reader, data, len);
    if (n > 0 && s->tls_pending)
        s->injected = 1;
    return n;
}

char *imk_session_buffer(imk_session *s, size_t *room_out)
{
    if (s->fatal != 0 || s->eof) {
        *room_out = 0;
        return NULL;
    }
    return imk_reader_buffer(s->reader, room_out);
}

int imk_session_commit(imk_session *s, size_t len)
{
    if (s->fatal != 0)
        return s->fatal;
    if (s->eof)
        return IMK_ESTATE;
    int rc = imk_reader_commit(s->reader, len);
    if (rc == 0 && len > 0 && s->tls_pending)
        s->injected = 1;
    return rc;
}

void imk_session_eof(imk_session *s)
{
    if (s->eof)
        return;
    s->eof = 1;
    imk_reader_eof(s->reader);
}

/* ---- output ---- */

size_t imk_session_output(imk_session *s, const char **data_out)
{
    if (s->fatal != 0) {
        *data_out = NULL;
        return 0;
    }
    imk__session_pump(s);
    *data_out = s->out.data;
    return s->out.len;
}

void imk_session_sent(imk_session *s, size_t n)
{
    if (n > s->out.len)
        n = s->out.len;
    imk__buf_consume(&s->out, n);
    if (s->fatal == 0)
        imk__session_pump(s);
}

size_t imk_session_stream_write(imk_session *s, const void *data, size_t len)
{
    imk_op *op = s->sending;
    if (s->fatal != 0 || op == NULL || op->wait_plus || op->stream_left == 0)
        return 0;
    size_t room = s->out.len < s->opts.max_output ? s->opts.max_output - s->out.len : 0;
    size_t n = len < room ? len : room;
    if (n > op->stream_left)
        n = (size_t)op->stream_left;
    if (n == 0)
        return 0;
    if (imk__buf_append(&s->out, data, n) < 0) {
        imk__session_fail(s, IMK_ENOMEM, "out of memory for the output buffer");
        return 0;
    }
    op->stream_left -= n;
    if (op->stream_left == 0)
        imk__session_pump(s);
    return n;
}

uint64_t imk_session_stream_pending(const imk_session *s)
{
    /* nothing is wanted while a synchronizing literal waits for "+": the
     * caller must not read its source before the server accepted it */
    return s->sending != NULL && !s->sending->wait_plus ? s->sending->stream_left : 0;
}

/* ---- events ---- */

int imk_session_next(imk_session *s, imk_session_event *ev)
{
    if (s->fatal != 0)
        return s->fatal;
    free_list(s, &s->done);
    for (;;) {
        if (s->ev_head < s->ev_len) {
            *ev = s->events[s->ev_head++];
            if (ev->type == IMK_SE_DONE) {
                /* delivered: valid until the next call, then freed */
                imk__session_list_remove(&s->completing, ev->op);
                imk__session_list_append(&s->done, ev->op);
            }
            return 1;
        }
        s->ev_head = s->ev_len = 0;
        imk__arena_reset(&s->ev_arena);
        if (s->tls_pending) {
            /* DESIGN.md section 8, CVE-2020-15953 class: bytes the server
             * sent after its STARTTLS OK but before the handshake would be
             * read as if they came over TLS. */
            size_t extra = imk__session_unconsumed(s);
            if (s->injected || extra > 0) {
                imk__session_fail(s, IMK_EPROTO,
                                  "the server sent data after its STARTTLS OK, before the TLS "
                                  "handshake: refusing it as response injection "
                                  "(CVE-2020-15953 class); the connection cannot be trusted");
                return s->fatal;
            }
            return 0;
        }
        if (s->compress_pending)
            return 0; /* the input after the OK is compressed: the transport's */
        if (s->closed)
            return 0;
        imk_event rev;
        int rc = imk_reader_next(s->reader, &rev);
        if (rc < 0) {
            imk__session_fail(s, rc, "%s", imk_reader_error(s->reader));
            return rc;
        }
        if (rc == 0) {
            if (!s->eof)
                return 0;
            finish_eof(s);
        } else {
            imk__session_dispatch(s, &rev);
            imk__session_pump(s);
        }
        if (s->fatal != 0)
            return s->fatal;
    }
}

const char *imk_session_error(const imk_session *s)
{
    return s->errmsg;
}

/* ---- commands ---- */

static size_t ops_outstanding(const imk_session *s)
{
    return s->building.count + s->queue.count + s->inflight.count;
}

int imk_session_command(imk_session *s, imk_command_kind kind, imk_op **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    if (s->fatal != 0) {
        return s->fatal;
    }
    if ((unsigned)kind >= IMK_CMD_COUNT_) {
        snprintf(s->errmsg, sizeof(s->errmsg), "unknown command kind %d", (int)kind);
        return IMK_EINVAL;
    }
    if (s->eof || s->closed) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s cannot be sent: the connection is closed; open a new one",
                 imk_command_kind_verb(kind));
        return IMK_ESTATE;
    }
    int rc = imk__session_check_state(s, kind, imk__session_projected_state(s));
    if (rc < 0)
        return rc;
    if (ops_outstanding(s) >= s->opts.max_ops) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%zu commands are already queued or in flight (max_ops): wait for some to "
                 "complete",
                 ops_outstanding(s));
        return IMK_ELIMIT;
    }
    imk_op *op = imk__malloc(&s->alloc, sizeof(*op));
    if (op == NULL)
        goto nomem;
    memset(op, 0, sizeof(*op));
    op->session = s;
    op->kind = kind;
    op->state = IMK__OP_BUILDING;
    imk__seqset_init(&op->set, &s->alloc);
    snprintf(op->tag, sizeof(op->tag), "%s%llu", s->tag_prefix,
             (unsigned long long)++s->tag_counter);
    imk_encoder_options eo = IMK_ENCODER_OPTIONS_INIT;
    eo.literal_plus = s->cap_literal_plus;
    eo.literal_minus = s->cap_literal_minus;
    eo.binary = s->cap_binary;
    eo.utf8_accept = (s->enabled_bits & IMK__ENABLED_UTF8) != 0;
    rc = imk_command_new(&eo, &s->alloc, &op->cmd);
    if (rc == 0)
        rc = imk__result_new(&s->alloc, s->opts.max_result_size, &op->result);
    if (rc == 0)
        rc = imk_command_begin(op->cmd, op->tag, imk_command_kind_verb(kind));
    if (rc < 0) {
        op_free(s, op);
        if (rc == IMK_ENOMEM)
            goto nomem;
        snprintf(s->errmsg, sizeof(s->errmsg), "cannot start %s: %s", imk_command_kind_verb(kind),
                 imk_error_message(rc));
        return rc;
    }
    imk__session_list_append(&s->building, op);
    *out = op;
    return 0;
nomem:
    snprintf(s->errmsg, sizeof(s->errmsg), "out of memory for a new %s command",
             imk_command_kind_verb(kind));
    return IMK_ENOMEM;
}

imk_command *imk_op_args(imk_op *op)
{
    return op->cmd;
}

int imk_op_set(imk_op *op, const char *set)
{
    if (op == NULL || set == NULL)
        return IMK_EINVAL;
    int rc = imk_command_seqset_text(op->cmd, set);
    if (rc < 0 || op->has_set || op->state != IMK__OP_BUILDING)
        return rc;
    /* The set this command is about (the first one given). Should it not
     * parse here, the command is treated as being about every message. */
    op->has_set = 1;
    if (imk__seqset_parse(&op->set, set, strlen(set), 0) < 0) {
        op->has_set = 0;
        op->set_any = 1;
        return 0;
    }
    if (op->set.is_saved)
        op->set_any = 1;
    for (size_t i = 0; i < op->set.count; i++)
        if (op->set.ranges[i].first == 0 || op->set.ranges[i].last == 0)
            op->set_any = 1;
    return 0;
}

int imk_op_mailbox(imk_op *op, const char *utf8, size_t len)
{
    if (op == NULL || (utf8 == NULL && len > 0))
        return IMK_EINVAL;
    int rc = imk_command_mailbox(op->cmd, utf8 != NULL ? utf8 : "", len);
    if (rc < 0 || op->mailbox != NULL)
        return rc;
    imk_session *s = op->session;
    op->mailbox = imk__malloc(&s->alloc, len + 1);
    if (op->mailbox == NULL)
        return IMK_ENOMEM;
    if (len > 0)
        memcpy(op->mailbox, utf8, len);
    op->mailbox[len] = '\0';
    return 0;
}

/* SEARCH/SORT with RETURN (RFC 4731 section 3, RFC 5267 section 3): the
 * first argument after the verb. */
static int uses_return(const imk_op *op)
{
    size_t len;
    const char *b = imk_command_bytes(op->cmd, &len);
    size_t skip = strlen(op->tag) + 1 + strlen(imk_command_kind_verb(op->kind)) + 1;
    if (len < skip + 7)
        return 0;
    return imk__str_ieq((imk_str){b + skip, 7}, "RETURN ");
}

int imk_session_submit(imk_session *s, imk_op *op)
{
    if (op == NULL || op->session != s || op->state != IMK__OP_BUILDING)
        return IMK_EINVAL;
    int rc = s->fatal;
    if (rc == 0 && (s->eof || s->closed)) {
        snprintf(s->errmsg, sizeof(s->errmsg), "%s cannot be sent: the connection is closed",
                 imk_command_kind_verb(op->kind));
        rc = IMK_ESTATE;
    }
    if (rc == 0) {
        rc = imk_command_finish(op->cmd);
        if (rc < 0)
            snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", imk_command_kind_verb(op->kind),
                     imk_command_error(op->cmd));
    }
    if (rc == 0)
        rc = imk__session_check_state(s, op->kind, imk__session_projected_state(s));
    if (rc < 0) {
        imk__session_list_remove(&s->building, op);
        op_free(s, op);
        return rc;
    }
    if (imk__session_cmd_flags(op->kind) & IMK__CF_SEARCH)
        op->esearch = uses_return(op);
    op->uses_seq = imk__session_uses_seq(op);
    imk__session_list_remove(&s->building, op);
    op->state = IMK__OP_QUEUED;
    imk__session_list_append(&s->queue, op);
    if (imk__session_cmd_flags(op->kind) & IMK__CF_STATE)
        s->state_ops++;
    imk__session_pump(s);
    return 0;
}

void imk_op_discard(imk_session *s, imk_op *op)
{
    if (op == NULL || op->session != s || op->state != IMK__OP_BUILDING)
        return;
    imk__session_list_remove(&s->building, op);
    op_free(s, op);
}

const char *imk_op_tag(const imk_op *op)
{
    return op->tag;
}

imk_command_kind imk_op_kind(const imk_op *op)
{
    return op->kind;
}

void imk_op_set_user(imk_op *op, void *user)
{
    op->user = user;
}

void *imk_op_user(const imk_op *op)
{
    return op->user;
}

const imk_result *imk_op_result(const imk_op *op)
{
    if (op == NULL || op->state != IMK__OP_DONE)
        return NULL;
    return imk__result_get(op->result);
}

/* ---- continuations: AUTHENTICATE and IDLE ---- */

static int out_room(const imk_session *s, size_t n)
{
    return s->out.len <= s->opts.max_output && n <= s->opts.max_output - s->out.len;
}

/* Queue one line the session sends outside a command (an AUTHENTICATE
 * answer, "*", "DONE") followed by CRLF; `what` names it in the error. */
static int queue_line(imk_session *s, const char *data, size_t len, const char *what)
{
    if (len > SIZE_MAX - 2 || !out_room(s, len + 2)) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s does not fit in the output (max_output): send the pending output first", what);
        return IMK_ELIMIT;
    }
    if ((len > 0 && imk__buf_append(&s->out, data, len) < 0) ||
        imk__buf_append(&s->out, "\r\n", 2) < 0) {
        imk__session_fail(s, IMK_ENOMEM, "out of memory for the output buffer");
        return IMK_ENOMEM;
    }
    return 0;
}

static int auth_check(imk_session *s, const imk_op *op)
{
    if (s->fatal != 0)
        return s->fatal;
    if (op == NULL || op->session != s || op->kind != IMK_CMD_AUTHENTICATE ||
        op->state != IMK__OP_SENT || !op->challenge_pending) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "no AUTHENTICATE challenge is waiting for an answer (wait for "
                 "IMK_SE_CONTINUATION)");
        return IMK_ESTATE;
    }
    return 0;
}

int imk_session_auth_respond(imk_session *s, imk_op *op, const char *data, size_t len)
{
    int rc = auth_check(s, op);
    if (rc < 0)
        return rc;
    if (data == NULL && len > 0)
        return IMK_EINVAL;
    /* DESIGN.md section 8: the answer is one line; CR, LF or NUL in it
     * would let it end early and smuggle a command. */
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\r' || data[i] == '\n' || data[i] == '\0') {
            snprintf(s->errmsg, sizeof(s->errmsg),
                     "an AUTHENTICATE response must be base64 on one line (found CR, LF or NUL)");
            return IMK_EINVAL;
        }
    }
    if ((rc = queue_line(s, data, len, "the AUTHENTICATE response")) < 0)
        return rc;
    op->challenge_pending = 0;
    return 0;
}

int imk_session_auth_cancel(imk_session *s, imk_op *op)
{
    int rc = auth_check(s, op);
    if (rc < 0)
        return rc;
    /* RFC 9051 6.2.2: "*" cancels; the server answers with a tagged BAD. */
    if ((rc = queue_line(s, "*", 1, "the AUTHENTICATE cancellation")) < 0)
        return rc;
    op->challenge_pending = 0;
    return 0;
}

int imk_session_idle_done(imk_session *s, imk_op *op)
{
    if (s->fatal != 0)
        return s->fatal;
    if (op == NULL || op->session != s || op->kind != IMK_CMD_IDLE ||
        (op->state != IMK__OP_QUEUED && op->state != IMK__OP_SENDING &&
         op->state != IMK__OP_SENT) ||
        op->done_sent || op->done_asked) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no IDLE command is running to be ended");
        return IMK_ESTATE;
    }
    if (!op->idling) {
        /* RFC 2177: DONE only after the server's "+"; sent when it comes. */
        op->done_asked = 1;
        return 0;
    }
    int rc = queue_line(s, "DONE", 4, "DONE");
    if (rc < 0)
        return rc;
    op->done_sent = 1;
    return 0;
}

int imk_op_stream_fetch(imk_op *op, int on)
{
    switch (op->kind) {
    case IMK_CMD_FETCH:
    case IMK_CMD_UID_FETCH:
    case IMK_CMD_STORE:
    case IMK_CMD_UID_STORE:
        op->stream_fetch = on != 0;
        return 0;
    default:
        return IMK_EINVAL;
    }
}

int imk_session_compress_done(imk_session *s, const char **rest, size_t *rest_len)
{
    const char *p = NULL;
    size_t n = 0;
    if (s->fatal != 0)
        return s->fatal;
    if (!s->compress_pending) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no COMPRESS is pending");
        return IMK_ESTATE;
    }
    /* The reader stopped at the end of the tagged OK (the session reads
     * nothing while compress_pending), so what it holds is exactly what
     * the server sent compressed. */
    imk__reader_take_unread(s->reader, &p, &n);
    s->compress_pending = 0;
    if (rest != NULL)
        *rest = p;
    if (rest_len != NULL)
        *rest_len = n;
    return 0;
}

int imk_session_starttls_done(imk_session *s)
{
    if (s->fatal != 0)
        return s->fatal;
    if (!s->tls_pending) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no STARTTLS handshake is pending");
        return IMK_ESTATE;
    }
    s->tls_pending = 0;
    imk__session_pump(s);
    return 0;
}

/* ---- state ---- */

imk_conn_state imk_session_state(const imk_session *s)
{
    return s->state;
}

int imk_session_has_capability(const imk_session *s, const char *cap)
{
    if (cap == NULL)
        return 0;
    for (size_t i = 0; i < s->caps.count; i++)
        if (imk__str_ieq(s->caps.items[i], cap))
            return 1;
    return 0;
}

int imk_session_is_enabled(const imk_session *s, const char *ext)
{
    if (ext == NULL)
        return 0;
    if (imk__str_ieq((imk_str){ext, strlen(ext)}, "CONDSTORE") &&
        (s->enabled_bits & IMK__ENABLED_QRESYNC))
        return 1; /* RFC 7162 section 3.2.3 */
    return enabled_has(s, ext);
}

const imk_view *imk_session_view(const imk_session *s)
{
    return s->view;
}

const char *imk_session_mailbox(const imk_session *s)
{
    return s->mailbox;
}

size_t imk_session_pending(const imk_session *s)
{
    return s->queue.count + s->inflight.count;
}

int imk_session_capabilities_known(const imk_session *s)
{
    return s->caps_known;
}
