/* SPDX-License-Identifier: MIT */
/*
 * LOGOUT (RFC 9051 section 6.1.3): the server answers with BYE and then
 * the tagged OK, and closes. Once the OK (or the close) came, the
 * transport is taken down at once: nothing more will be said. A server
 * that just closes the connection has logged us out too (0). The
 * connection can then be connected again.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include "util/alloc.h"

#include <string.h>

typedef struct logout_ctx {
    imk_done_fn done;
    void *user;
} logout_ctx;

static void logout_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    logout_ctx ctx = *(logout_ctx *)p->ctx;
    imk__free(&c->alloc, p->ctx);
    p->ctx = NULL;
    if (ev != NULL && ev->type != IMK_SE_DONE)
        return;
    const imk_result *res = ev != NULL && err == 0 ? imk_op_result(ev->op) : NULL;
    if (err == IMK_ECLOSED)
        err = 0;
    if (c->phase == IMK__PH_OPEN)
        imk__conn_close(c, 0, NULL);
    imk__conn_call_done(c, ctx.done, err, res, ctx.user);
}

static int logout_begin(imk_conn *c, imk_op **op)
{
    *op = NULL;
    if (c->phase != IMK__PH_OPEN || c->eof)
        return 1; /* nothing to log out of */
    int rc = imk__conn_begin(c, IMK_CMD_LOGOUT, op);
    if (rc < 0)
        return rc;
    c->logout_sent = 1;
    return 0;
}

int imk_conn_logout(imk_conn *c)
{
    if (c == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0)
        return rc;
    imk_op *op;
    rc = logout_begin(c, &op);
    if (rc != 0) {
        if (rc == 1 || imk_session_state(c->s) == IMK_STATE_LOGOUT) {
            if (c->phase == IMK__PH_OPEN)
                imk__conn_close(c, 0, NULL);
            return 0;
        }
        return rc;
    }
    rc = imk__conn_run(c, op, NULL);
    if (rc == IMK_ECLOSED)
        rc = 0; /* the server closed: logged out all the same */
    if (c->phase == IMK__PH_OPEN)
        imk__conn_close(c, 0, NULL);
    return rc;
}

int imk_conn_logout_async(imk_conn *c, imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    imk_op *op;
    int rc = logout_begin(c, &op);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return imk__conn_fail(c, IMK_ESTATE, "not connected to %s", c->peer);
    logout_ctx *ctx = imk__malloc(&c->alloc, sizeof(*ctx));
    if (ctx == NULL) {
        c->logout_sent = 0;
        return imk__conn_abandon(c, op, IMK_ENOMEM);
    }
    ctx->done = done;
    ctx->user = user;
    rc = imk__conn_submit_hook(c, op, logout_hook, ctx);
    if (rc < 0) {
        c->logout_sent = 0;
        imk__free(&c->alloc, ctx);
    }
    return rc;
}
