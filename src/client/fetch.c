/* SPDX-License-Identifier: MIT */
/*
 * FETCH as a stream of items (go-imap v2's shape): body sections as
 * BEGIN / DATA... / END, and each FETCH response's other items as one
 * MESSAGE, in the order the server sent them. Memory does not grow with the
 * size or the number of messages (DESIGN.md section 6): the op asks the
 * session for IMK_SE_FETCH events instead of accumulated records
 * (imk_op_stream_fetch), and body data points into the session's input
 * buffer.
 *
 * The blocking iterator hands out one item at a time and processes the
 * connection only as far as needed for the next one: when an item is
 * produced the core "holds" (calls imk_session_next() no more and reads
 * nothing), so the item's data stays where it is until the next
 * imk_fetch_iter_next(). The async form calls on_item for each instead.
 *
 * An iterator is owned by the application until imk_fetch_iter_end(). If the
 * connection is freed first, the iterator is detached (it keeps its own
 * copy of the allocator) and ends with IMK_ECLOSED.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include "util/alloc.h"

#include <string.h>

struct imk_fetch_iter {
    imk_conn *c; /* NULL once the connection was freed */
    imk_allocator alloc;
    int async;
    imk_fetch_item_fn on_item;
    imk_done_fn done;
    void *user;
    int have_item; /* blocking: `item` waits to be handed out */
    int ready;     /* have_item or finished: the wait may end */
    imk_fetch_item item;
    int finished, err;
    const imk_result *res;
};

static void iter_free(imk_fetch_iter *it)
{
    imk_allocator a = it->alloc;
    imk__free(&a, it);
}

static void deliver(imk_conn *c, imk_fetch_iter *it, const imk_fetch_item *item)
{
    if (it->async) {
        if (it->on_item != NULL) {
            c->in_cb++;
            it->on_item(c, item, it->user);
            c->in_cb--;
        }
        return;
    }
    it->item = *item;
    it->have_item = 1;
    it->ready = 1;
    c->hold = 1; /* the item points into the session: keep it */
}

static void complete(imk_conn *c, imk_fetch_iter *it, int err, const imk_result *res)
{
    it->finished = 1;
    it->ready = 1;
    it->err = err;
    it->res = res;
    if (!it->async) {
        if (res != NULL)
            c->hold = 1; /* the result stays valid until the next call */
        return;
    }
    imk_done_fn done = it->done;
    void *user = it->user;
    iter_free(it);
    imk__conn_call_done(c, done, err, res, user);
}

static void fetch_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk_fetch_iter *it = p->ctx;
    imk_fetch_item item;
    memset(&item, 0, sizeof(item));
    if (ev == NULL) {
        complete(c, it, err < 0 ? err : IMK_ECLOSED, NULL);
        return;
    }
    switch (ev->type) {
    case IMK_SE_BODY_BEGIN:
        item.type = IMK_FI_BODY_BEGIN;
        item.body = ev->body;
        break;
    case IMK_SE_BODY_CHUNK:
        item.type = IMK_FI_BODY_DATA;
        item.body = ev->body;
        item.data = ev->data.data;
        item.len = ev->data.len;
        if (item.len == 0)
            return;
        break;
    case IMK_SE_BODY_END:
        item.type = IMK_FI_BODY_END;
        item.body = ev->body;
        break;
    case IMK_SE_FETCH:
        item.type = IMK_FI_MESSAGE;
        item.msg = ev->fetch;
        break;
    case IMK_SE_DONE:
        complete(c, it, err, err < 0 ? NULL : imk_op_result(ev->op));
        return;
    default:
        return;
    }
    deliver(c, it, &item);
}

void imk__fetch_abort(imk_conn *c, int err)
{
    /* Pending fetches complete through their pends; a blocking iterator
     * whose command is gone is detached when the connection goes away. */
    imk_fetch_iter *it = c->iter;
    if (it != NULL && c->freeing) {
        if (!it->finished) {
            it->finished = 1;
            it->err = err < 0 ? err : IMK_ECLOSED;
        }
        it->ready = 1;
        it->have_item = 0;
        it->res = NULL;
        it->c = NULL;
        c->iter = NULL;
    }
}

static int start(imk_conn *c, int uid, const char *set, const char *items, imk_fetch_iter *it)
{
    imk_op *op;
    int rc = imk__conn_begin(c, uid ? IMK_CMD_UID_FETCH : IMK_CMD_FETCH, &op);
    if (rc < 0)
        return rc;
    rc = imk__build_fetch(c->s, op, set, items, imk__conn_errbuf(c), IMK__ERRBUF);
    if (rc == 0)
        rc = imk_op_stream_fetch(op, 1);
    if (rc < 0)
        return imk__conn_abandon(c, op, rc);
    return imk__conn_submit_hook(c, op, fetch_hook, it);
}

static imk_fetch_iter *iter_new(imk_conn *c)
{
    imk_fetch_iter *it = imk__malloc(&c->alloc, sizeof(*it));
    if (it == NULL)
        return NULL;
    memset(it, 0, sizeof(*it));
    it->c = c;
    it->alloc = c->alloc;
    return it;
}

int imk_conn_fetch(imk_conn *c, int uid, const char *set, const char *items, imk_fetch_iter **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    if (c == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0)
        return rc;
    imk_fetch_iter *it = iter_new(c);
    if (it == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for a FETCH iterator");
    rc = start(c, uid, set, items, it);
    if (rc < 0) {
        iter_free(it);
        return rc;
    }
    c->iter = it;
    *out = it;
    return 0;
}

int imk_fetch_iter_next(imk_fetch_iter *it, imk_fetch_item *item)
{
    if (it == NULL || item == NULL)
        return IMK_EINVAL;
    memset(item, 0, sizeof(*item));
    imk_conn *c = it->c;
    it->have_item = 0;
    if (it->finished || c == NULL) {
        it->ready = 1;
        return it->err < 0 ? it->err : 0;
    }
    it->ready = 0;
    int rc = imk__conn_blocking_check(c, 1);
    if (rc < 0)
        return rc;
    /* The previous item is released: reading may go on. */
    if (c->hold) {
        c->hold = 0;
        c->io_mark = imk__conn_now();
    }
    int freed = 0;
    rc = imk__conn_wait(c, &it->ready, 1, &freed);
    if (freed) {
        /* freed from a callback: detached by imk__fetch_abort */
        return it->err < 0 ? it->err : IMK_ECLOSED;
    }
    if (it->have_item) {
        *item = it->item;
        return 1;
    }
    if (it->finished)
        return it->err < 0 ? it->err : 0;
    return rc < 0 ? rc : IMK_ECLOSED;
}

int imk_fetch_iter_end(imk_fetch_iter *it, const imk_result **res)
{
    if (res != NULL)
        *res = NULL;
    if (it == NULL)
        return IMK_EINVAL;
    imk_fetch_item item;
    int rc;
    /* Drain what is left: the command's bytes must be read anyway. */
    while (!it->finished && it->c != NULL) {
        rc = imk_fetch_iter_next(it, &item);
        if (rc < 0 && !it->finished)
            break; /* EBUSY from a callback: give up the iterator */
    }
    imk_conn *c = it->c;
    rc = it->finished ? it->err : IMK_EBUSY;
    if (rc == 0 && res != NULL)
        *res = it->res;
    if (c != NULL && c->iter == it)
        c->iter = NULL;
    if (!it->finished && c != NULL) {
        /* still running (ended from a callback): let it complete unseen */
        it->async = 1;
        it->on_item = NULL;
        it->done = NULL;
        return rc;
    }
    iter_free(it);
    return rc;
}

int imk_conn_fetch_async(imk_conn *c, int uid, const char *set, const char *items,
                         imk_fetch_item_fn on_item, imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    imk_fetch_iter *it = iter_new(c);
    if (it == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for a FETCH");
    it->async = 1;
    it->on_item = on_item;
    it->done = done;
    it->user = user;
    int rc = start(c, uid, set, items, it);
    if (rc < 0) {
        iter_free(it);
        return rc;
    }
    return 0;
}
