/* SPDX-License-Identifier: MIT */
/*
 * imapkit/adapter_libuv.h - runs an imk_conn on a libuv loop. Header only,
 * in the manner of hiredis's adapters: include it in the one program that
 * uses libuv and link that program with libuv; the library itself does
 * not depend on libuv.
 *
 *     imk_conn_connect_async(c, on_connected, app);   // queue work first
 *     imk_uv *a = imk_uv_attach(uv_default_loop(), c);
 *     uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *     ...
 *     // when done with c (also from inside one of c's callbacks):
 *     imk_uv_detach(a);      // first: stops polling while the fd is open
 *     imk_conn_free(c);
 *
 * What it does: a uv_poll_t watches imk_conn_fd() for imk_conn_events(), a
 * uv_timer_t wakes up after imk_conn_timeout(), and both call
 * imk_conn_process(). After every process, and before every loop iteration
 * blocks (a uv_prepare_t, which does not keep the loop alive by itself),
 * the poll and the timer are brought in line with what the connection
 * wants. So commands may be queued from anywhere (a callback of this or
 * another connection, another libuv handle): the next iteration polls for
 * them. The loop stays alive while the connection has a descriptor to
 * poll or a deadline.
 *
 * Invariants:
 *   - at most one active uv_poll_t per adapter, on the descriptor the
 *     connection has now. A descriptor that changed (reconnect), even under
 *     the same number, gets a new handle: the file's identity (st_dev,
 *     st_ino) is compared, as libuv cannot watch two files under one
 *     number and epoll forgets a file when it is closed;
 *   - imk_uv_detach() must come before imk_conn_free() (or in the same
 *     callback, since that free is deferred until process returns): the
 *     adapter never touches the connection after detach, and libuv stops
 *     polling while the descriptor is still open;
 *   - the adapter is freed by libuv's close callbacks, after detach, on a
 *     later loop iteration; detach is safe inside any callback.
 *
 * Every function here is static inline; nothing is exported. Errors:
 * imk_uv_attach returns NULL when out of memory. A descriptor libuv
 * refuses to poll (uv_poll_init failing) leaves the connection to its
 * timer, which imapkit arms for every deadline.
 */
#ifndef IMAPKIT_ADAPTER_LIBUV_H
#define IMAPKIT_ADAPTER_LIBUV_H

/* uv.h needs POSIX types (pthread_rwlock_t): in strict ISO C mode with no
 * feature macro chosen (-std=c99 alone), ask for POSIX here. Elsewhere the
 * program's own choice stands. */
#if defined(__STRICT_ANSI__) && !defined(__cplusplus) && !defined(_POSIX_C_SOURCE) &&              \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "imapkit/client.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct imk_uv {
    uv_loop_t *loop;
    imk_conn *conn;
    uv_poll_t *poll; /* on `fd`, or NULL; allocated, freed by its close callback */
    int fd;
    dev_t dev; /* identity of the file polled */
    ino_t ino;
    int poll_events; /* UV_READABLE | UV_WRITABLE asked of `poll` */
    uv_timer_t timer;
    uv_prepare_t prepare;
    int open_handles; /* the adapter is freed when the last one has closed */
    int detached;
} imk_uv;

static inline void imk__uv_sync(imk_uv *a);

static inline void imk__uv_closed(uv_handle_t *h)
{
    imk_uv *a = (imk_uv *)h->data;
    if (h->type == UV_POLL)
        free(h);
    if (--a->open_handles == 0)
        free(a);
}

static inline void imk__uv_drop_poll(imk_uv *a)
{
    if (a->poll != NULL)
        uv_close((uv_handle_t *)a->poll, imk__uv_closed); /* stops it now */
    a->poll = NULL;
    a->fd = -1;
    a->poll_events = 0;
}

static inline void imk__uv_process(imk_uv *a, unsigned revents)
{
    if (a->detached)
        return;
    imk_conn_process(a->conn, revents); /* errors reach the commands' callbacks */
    if (!a->detached)
        imk__uv_sync(a);
}

static inline void imk__uv_on_poll(uv_poll_t *h, int status, int events)
{
    imk_uv *a = (imk_uv *)h->data;
    unsigned revents = 0;
    if (h != a->poll)
        return; /* a stale event for a handle being closed */
    if (status < 0)
        revents = IMK_WANT_READ | IMK_WANT_WRITE; /* let process() find the error */
    if (events & (UV_READABLE | UV_DISCONNECT))
        revents |= IMK_WANT_READ;
    if (events & UV_WRITABLE)
        revents |= IMK_WANT_WRITE;
    imk__uv_process(a, revents);
}

static inline void imk__uv_on_timer(uv_timer_t *h)
{
    imk__uv_process((imk_uv *)h->data, 0);
}

static inline void imk__uv_on_prepare(uv_prepare_t *h)
{
    imk_uv *a = (imk_uv *)h->data;
    if (!a->detached)
        imk__uv_sync(a);
}

/* Make the poll handle and the timer match what the connection wants now. */
static inline void imk__uv_sync(imk_uv *a)
{
    struct stat st;
    st.st_dev = 0;
    st.st_ino = 0;
    int fd = imk_conn_fd(a->conn);
    if (fd >= 0 && fstat(fd, &st) != 0)
        fd = -1;
    if (a->poll != NULL && (fd != a->fd || st.st_dev != a->dev || st.st_ino != a->ino))
        imk__uv_drop_poll(a);
    if (fd >= 0 && a->poll == NULL) {
        uv_poll_t *p = (uv_poll_t *)malloc(sizeof *p);
        if (p != NULL && uv_poll_init(a->loop, p, fd) == 0) {
            p->data = a;
            a->open_handles++;
            a->poll = p;
            a->fd = fd;
            a->dev = st.st_dev;
            a->ino = st.st_ino;
        } else {
            free(p);
        }
    }
    if (a->poll != NULL) {
        unsigned want = imk_conn_events(a->conn);
        int events = ((want & IMK_WANT_READ) ? UV_READABLE : 0) |
                     ((want & IMK_WANT_WRITE) ? UV_WRITABLE : 0);
        if (events != a->poll_events) {
            if (events != 0)
                uv_poll_start(a->poll, events, imk__uv_on_poll);
            else
                uv_poll_stop(a->poll);
            a->poll_events = events;
        }
    }
    int ms = imk_conn_timeout(a->conn);
    if (ms >= 0)
        uv_timer_start(&a->timer, imk__uv_on_timer, (uint64_t)ms, 0);
    else
        uv_timer_stop(&a->timer);
}

/* Attach `c` to `loop` (the connection is not owned: free it yourself,
 * after imk_uv_detach). Returns the adapter, or NULL when out of memory. */
static inline imk_uv *imk_uv_attach(uv_loop_t *loop, imk_conn *c)
{
    imk_uv *a = (imk_uv *)calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->loop = loop;
    a->conn = c;
    a->fd = -1;
    uv_timer_init(loop, &a->timer); /* both always return 0 */
    uv_prepare_init(loop, &a->prepare);
    a->timer.data = a;
    a->prepare.data = a;
    a->open_handles = 2;
    uv_prepare_start(&a->prepare, imk__uv_on_prepare);
    uv_unref((uv_handle_t *)&a->prepare);
    imk__uv_sync(a);
    return a;
}

/* Bring the adapter in line with the connection at once (it also happens
 * by itself before the loop next blocks). */
static inline void imk_uv_update(imk_uv *a)
{
    if (a != NULL && !a->detached)
        imk__uv_sync(a);
}

/* Stop watching the connection; the adapter frees itself once libuv has
 * closed its handles. Safe inside callbacks. NULL is a no-op. */
static inline void imk_uv_detach(imk_uv *a)
{
    if (a == NULL || a->detached)
        return;
    a->detached = 1;
    imk__uv_drop_poll(a);
    uv_close((uv_handle_t *)&a->timer, imk__uv_closed);
    uv_close((uv_handle_t *)&a->prepare, imk__uv_closed);
}

#ifdef __cplusplus
}
#endif

#endif
