/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the session: a fixed client script against arbitrary
 * server bytes. The first input byte chooses the feed step (1..32 bytes per
 * feed), the second a few switches; the rest is what "the server" sends.
 *
 * Script: LOGIN (with a literal password), SELECT INBOX, UID FETCH 1:*
 * (FLAGS BODY.PEEK[]), UID SEARCH RETURN (ALL), STATUS, IDLE; the client
 * answers a challenge by cancelling it, ends IDLE as soon as it is
 * accepted, calls imk_session_starttls_done() when a STARTTLS completed
 * (switch bit 0 adds STARTTLS first), and queues a NOOP after every
 * completed command (until max_ops). Output is drained as it appears.
 *
 * Invariants (abort() on violation):
 *   - imk__view_check() holds after every event;
 *   - every pointer an event carries is readable (ASan checks the reads);
 *   - after IMK_SE_CLOSED no other event comes, and every op that was
 *     submitted got exactly one DONE;
 *   - no leak (ASan/LSan) after imk_session_free().
 */
#include "imapkit/session.h"
#include "proto/view.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

static void touch(const char *p, size_t n)
{
    if (n != 0 && p != NULL)
        sink = (unsigned char)(sink ^ (unsigned char)p[0] ^ (unsigned char)p[n - 1]);
}

static void touch_str(imk_str s)
{
    touch(s.data, s.len);
}

static int submitted, completed;

static void submit(imk_session *s, imk_command_kind kind, const char *set, const char *mailbox,
                   const char *token)
{
    imk_op *op;
    if (imk_session_command(s, kind, &op) != 0)
        return;
    if (set != NULL)
        imk_op_set(op, set);
    if (mailbox != NULL)
        imk_op_mailbox(op, mailbox, strlen(mailbox));
    if (token != NULL)
        imk_command_token(imk_op_args(op), token);
    if (kind == IMK_CMD_LOGIN)
        imk_command_literal(imk_op_args(op), "pass word", 9, 0);
    if (imk_session_submit(s, op) == 0)
        submitted++;
}

static void drain_output(imk_session *s)
{
    const char *p;
    size_t n;
    int guard = 0;
    while ((n = imk_session_output(s, &p)) > 0 && guard++ < 100000) {
        touch(p, n);
        imk_session_sent(s, n);
    }
}

/* Returns 0 to go on, 1 when the session is finished or dead. */
static int drain_events(imk_session *s, int *closed)
{
    imk_session_event ev;
    int rc;
    while ((rc = imk_session_next(s, &ev)) == 1) {
        if (*closed)
            abort(); /* nothing after CLOSED */
        if (!imk__view_check(imk_session_view(s)))
            abort();
        touch_str(ev.text);
        switch (ev.type) {
        case IMK_SE_DONE: {
            const imk_result *r = imk_op_result(ev.op);
            if (r == NULL)
                abort();
            touch_str(r->text);
            for (size_t i = 0; i < r->fetch_count; i++)
                touch_str(r->fetches[i].flags.count ? r->fetches[i].flags.items[0]
                                                    : (imk_str){NULL, 0});
            completed++;
            if (imk_op_kind(ev.op) == IMK_CMD_STARTTLS && ev.status == IMK_STATUS_OK)
                imk_session_starttls_done(s);
            submit(s, IMK_CMD_NOOP, NULL, NULL, NULL);
            break;
        }
        case IMK_SE_CONTINUATION:
            imk_session_auth_cancel(s, ev.op);
            break;
        case IMK_SE_IDLING:
            imk_session_idle_done(s, ev.op);
            break;
        case IMK_SE_UNSOLICITED:
            touch_str(ev.response->raw);
            break;
        case IMK_SE_BODY_BEGIN:
            touch_str(ev.body->spec);
            break;
        case IMK_SE_BODY_CHUNK:
            touch_str(ev.data);
            break;
        case IMK_SE_FLAGS:
            for (size_t i = 0; i < ev.flags.count; i++)
                touch_str(ev.flags.items[i]);
            break;
        case IMK_SE_PROTOCOL_ERROR:
            if (ev.error != NULL)
                touch_str(ev.error->raw);
            break;
        case IMK_SE_CLOSED:
            *closed = 1;
            break;
        default:
            break;
        }
        drain_output(s);
    }
    drain_output(s);
    return rc < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] % 32 + 1;
    unsigned sw = data[1];
    data += 2;
    size -= 2;

    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.max_output = (sw & 2) ? 16 : 0;
    o.max_ops = 24;
    o.max_result_size = (sw & 4) ? 2048 : 65536;
    o.reader.version = IMK_READER_OPTIONS_VERSION;
    o.reader.input_buffer_size = 64;
    o.reader.max_line_length = 1024;
    o.reader.max_literal_size = 512;
    o.reader.max_response_size = 4096;
    o.reader.max_depth = 8;
    o.reader.max_list_items = 128;
    imk_session *s = NULL;
    if (imk_session_new(&o, NULL, &s) != 0)
        abort();
    submitted = completed = 0;
    if (sw & 1)
        submit(s, IMK_CMD_STARTTLS, NULL, NULL, NULL);
    submit(s, IMK_CMD_LOGIN, NULL, NULL, "user");
    submit(s, IMK_CMD_SELECT, NULL, "INBOX", NULL);
    submit(s, IMK_CMD_UID_FETCH, "1:*", NULL, "(FLAGS BODY.PEEK[])");
    submit(s, IMK_CMD_UID_SEARCH, NULL, NULL, "RETURN (ALL) UNSEEN");
    submit(s, IMK_CMD_STATUS, NULL, "Sent", "(MESSAGES)");
    submit(s, IMK_CMD_IDLE, NULL, NULL, NULL);
    drain_output(s);

    int closed = 0, dead = 0;
    size_t pos = 0;
    while (!dead && pos < size) {
        size_t want = size - pos < step ? size - pos : step;
        size_t n = imk_session_feed(s, data + pos, want);
        pos += n;
        dead = drain_events(s, &closed);
        if (n == 0 && !dead) {
            /* input refused: only legitimate once the session is dead or
             * waiting for a STARTTLS handshake that never comes */
            break;
        }
    }
    if (!dead) {
        imk_session_eof(s);
        dead = drain_events(s, &closed);
        if (!dead && !closed)
            abort(); /* EOF always ends in CLOSED unless the session died */
        if (!dead && completed != submitted)
            abort(); /* every submitted op got its DONE */
    }
    imk_session_free(s);
    return 0;
}
