/* SPDX-License-Identifier: MIT */
/*
 * Waiting for the server to tell us something: IDLE (RFC 2177) when
 * offered, else a NOOP every 30 seconds (RFC 9051 section 6.1.2: NOOP is how
 * a client polls for updates).
 *
 *   IDLE --"+ idling"--> idling --(28 min, RFC 2177's 29-minute rule)--> DONE
 *     ^                    |                                           |
 *     +-----renew----------|------------------ OK ---------------------+
 *                          +-- stop / time up / change (stop_on_change) --> DONE --> OK: finished
 *
 * While the server has accepted the IDLE, the client is not waiting on it:
 * no I/O deadline runs (the server may stay silent for the whole IDLE).
 * Once DONE is sent, the tagged OK is awaited under the I/O deadline like
 * any answer. Unsolicited data reaches the event callback as it arrives;
 * with stop_on_change a change of the mailbox (EXISTS, EXPUNGE, VANISHED,
 * FLAGS) ends the wait.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include "util/alloc.h"

#include <stdio.h>
#include <string.h>

struct imk__idle {
    int use_idle;       /* IDLE offered; else NOOP polling */
    int stop_on_change; /* end at the first mailbox change */
    int stop;           /* imk_conn_idle_stop(), the change or the time is up */
    int blocking, finished, err;
    imk_done_fn done;
    void *user;
    int64_t end_at;     /* 0: until stopped */
    int64_t refresh_at; /* IDLE: renew then */
    int64_t noop_at;    /* NOOP polling: next NOOP then */
    imk__pend *pend;    /* the IDLE or NOOP in flight, or NULL */
    imk_op *op;
    int idling;    /* the server's "+" arrived */
    int done_sent; /* DONE asked for this IDLE */
};

static void idle_finish(imk_conn *c, imk__idle *I, int err)
{
    if (I->finished)
        return;
    I->finished = 1;
    I->err = err;
    if (I->blocking)
        return; /* imk_conn_idle reads it and frees */
    c->idle = NULL;
    imk_done_fn done = I->done;
    void *user = I->user;
    imk__free(&c->alloc, I);
    imk__conn_call_done(c, done, err, NULL, user);
}

void imk__idle_free(imk_conn *c)
{
    if (c->idle != NULL) {
        imk__free(&c->alloc, c->idle);
        c->idle = NULL;
    }
}

void imk__idle_abort(imk_conn *c, int err)
{
    if (c->idle != NULL && !c->idle->finished) {
        c->idle->pend = NULL;
        c->idle->op = NULL;
        idle_finish(c, c->idle, err < 0 ? err : IMK_ECLOSED);
    }
}

static void send_done(imk_conn *c, imk__idle *I)
{
    if (I->op == NULL || I->done_sent)
        return;
    if (imk_session_idle_done(c->s, I->op) < 0) {
        imk__conn_close(c, IMK_EPROTO, "ending IDLE with %s: %s", c->peer, imk_session_error(c->s));
        return;
    }
    I->done_sent = 1;
    if (I->pend != NULL)
        I->pend->idling = 0; /* from now on the tagged OK is awaited */
    c->io_mark = imk__conn_now();
    c->kick = 1;
}

static int time_up(const imk__idle *I, int64_t now)
{
    return I->end_at > 0 && now >= I->end_at;
}

static int start_idle(imk_conn *c, imk__idle *I);
static int start_noop(imk_conn *c, imk__idle *I);

static void idle_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__idle *I = p->ctx;
    if (ev == NULL) {
        I->pend = NULL;
        I->op = NULL;
        idle_finish(c, I, err < 0 ? err : IMK_ECLOSED);
        return;
    }
    if (ev->type == IMK_SE_IDLING) {
        I->idling = 1;
        p->idling = !I->done_sent;
        I->refresh_at = imk__conn_now() + c->idle_refresh_ms;
        return;
    }
    if (ev->type != IMK_SE_DONE)
        return;
    I->pend = NULL;
    I->op = NULL;
    int had_plus = I->idling;
    I->idling = 0;
    I->done_sent = 0;
    if (err < 0) {
        idle_finish(c, I, err);
        return;
    }
    if (ev->status != IMK_STATUS_OK) {
        /* refused at once, or ended with NO/BAD: renewing would only repeat it */
        char text[300];
        imk__conn_result_text(imk_op_result(ev->op), text, sizeof(text));
        imk__conn_fail(c, IMK_ENOTSUP, "%s %s IDLE: %s %s", c->peer, had_plus ? "ended" : "refused",
                       imk_status_name(ev->status), text);
        idle_finish(c, I, IMK_ENOTSUP);
        return;
    }
    if (I->stop || time_up(I, imk__conn_now())) {
        idle_finish(c, I, 0);
        return;
    }
    int rc = start_idle(c, I); /* renewed after 28 minutes */
    if (rc < 0)
        idle_finish(c, I, rc);
}

static void noop_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__idle *I = p->ctx;
    if (ev != NULL && ev->type != IMK_SE_DONE)
        return;
    I->pend = NULL;
    I->op = NULL;
    if (ev == NULL || err < 0) {
        idle_finish(c, I, err < 0 ? err : IMK_ECLOSED);
        return;
    }
    if (I->stop || time_up(I, imk__conn_now())) {
        idle_finish(c, I, 0);
        return;
    }
    I->noop_at = imk__conn_now() + c->noop_interval_ms;
}

static int start_cmd(imk_conn *c, imk__idle *I, imk_command_kind kind, imk__hook_fn hook)
{
    imk_op *op;
    int rc = imk__conn_begin_internal(c, kind, &op);
    if (rc < 0)
        return rc;
    imk__pend *p = imk__conn_pend(op);
    rc = imk__conn_submit_hook(c, op, hook, I);
    if (rc < 0)
        return rc;
    I->pend = p;
    I->op = op;
    I->idling = 0;
    I->done_sent = 0;
    return 0;
}

static int start_idle(imk_conn *c, imk__idle *I)
{
    return start_cmd(c, I, IMK_CMD_IDLE, idle_hook);
}

static int start_noop(imk_conn *c, imk__idle *I)
{
    return start_cmd(c, I, IMK_CMD_NOOP, noop_hook);
}

void imk__idle_tick(imk_conn *c, int64_t now)
{
    imk__idle *I = c->idle;
    if (I == NULL || I->finished)
        return;
    int end = I->stop || time_up(I, now);
    if (I->use_idle) {
        if (I->op != NULL && !I->done_sent && (end || (I->idling && now >= I->refresh_at)))
            send_done(c, I);
        return;
    }
    if (I->op != NULL)
        return; /* a NOOP is running */
    if (end) {
        idle_finish(c, I, 0);
        return;
    }
    if (now >= I->noop_at) {
        int rc = start_noop(c, I);
        if (rc < 0)
            idle_finish(c, I, rc);
    }
}

int64_t imk__idle_next_timer(const imk_conn *c, int64_t now)
{
    const imk__idle *I = c->idle;
    if (I == NULL || I->finished)
        return -1;
    int64_t t = -1;
    if (I->use_idle) {
        /* after DONE only the tagged OK is awaited (under the I/O deadline) */
        if (I->op == NULL || I->done_sent)
            return -1;
        if (I->stop)
            return now; /* DONE to send */
        if (I->idling)
            t = I->refresh_at;
    } else {
        if (I->op != NULL)
            return -1; /* a NOOP runs */
        if (I->stop)
            return now; /* finish */
        t = I->noop_at;
    }
    if (I->end_at > 0 && (t < 0 || I->end_at < t))
        t = I->end_at;
    return t;
}

void imk__idle_on_change(imk_conn *c, const imk_session_event *ev)
{
    imk__idle *I = c->idle;
    if (I == NULL || I->finished || !I->stop_on_change)
        return;
    switch (ev->type) {
    case IMK_SE_EXISTS:
    case IMK_SE_EXPUNGE:
    case IMK_SE_VANISHED:
    case IMK_SE_FLAGS:
        imk_conn_idle_stop(c);
        break;
    default:
        break;
    }
}

void imk_conn_idle_stop(imk_conn *c)
{
    if (c == NULL)
        return;
    imk__idle *I = c->idle;
    if (I == NULL || I->finished)
        return;
    I->stop = 1;
    c->kick = 1;
    if (I->use_idle && I->op != NULL && c->phase == IMK__PH_OPEN)
        send_done(c, I);
}

static int idle_start(imk_conn *c, int timeout_ms, int stop_on_change, int blocking,
                      imk_done_fn done, void *user)
{
    if (c->idle != NULL)
        return imk__conn_fail(c, IMK_EBUSY, "an IDLE is already running on this connection");
    int rc = imk__conn_ready_check(c);
    if (rc < 0)
        return rc;

    imk__idle *I = imk__malloc(&c->alloc, sizeof(*I));
    if (I == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for IDLE");
    memset(I, 0, sizeof(*I));
    int64_t now = imk__conn_now();
    I->use_idle = imk_session_has_capability(c->s, "IDLE");
    I->stop_on_change = stop_on_change;
    I->blocking = blocking;
    I->done = done;
    I->user = user;
    I->end_at = timeout_ms >= 0 ? now + timeout_ms : 0;
    if (timeout_ms == 0)
        I->end_at = now; /* one round: IDLE then DONE at once */
    I->noop_at = now;    /* the first NOOP at once */
    c->idle = I;
    if (I->use_idle) {
        rc = start_idle(c, I);
        if (rc < 0) {
            c->idle = NULL;
            imk__free(&c->alloc, I);
            return rc;
        }
    }
    c->kick = 1;
    return 0;
}

int imk_conn_idle(imk_conn *c, int timeout_ms, int stop_on_change)
{
    if (c == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0)
        return rc;
    rc = idle_start(c, timeout_ms, stop_on_change, 1, NULL, NULL);
    if (rc < 0)
        return rc;
    imk__idle *I = c->idle;
    int freed = 0;
    /* IDLE is not a wait on the server: no call deadline (client.h). */
    rc = imk__conn_wait(c, &I->finished, 0, &freed);
    if (freed)
        return IMK_ECLOSED;
    rc = I->finished ? I->err : (rc < 0 ? rc : IMK_ECLOSED);
    c->idle = NULL;
    imk__free(&c->alloc, I);
    return rc;
}

int imk_conn_idle_async(imk_conn *c, imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    return idle_start(c, -1, 0, 0, done, user);
}
