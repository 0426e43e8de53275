/* SPDX-License-Identifier: MIT */
/*
 * uv_fetch: one IMAP connection on a libuv loop, through the header-only
 * adapter include/imapkit/adapter_libuv.h. The connection downloads every
 * message of a mailbox, bodies streamed through a per-item callback (the
 * bytes are counted, never held whole), while a libuv timer of the
 * application prints progress: the loop is the application's, imapkit is
 * one of its handles.
 *
 *     connect_async -> login_async -> select_async
 *       -> fetch_async (UID RFC822.SIZE BODY.PEEK[]) -> logout_async
 *       -> imk_uv_detach + imk_conn_free in the last callback
 *
 * Usage:
 *   example_uv_fetch [--mailbox NAME] --tunnel CMD
 *   example_uv_fetch [--mailbox NAME] [--port P] [--plain] HOST USER
 *       (password in the IMK_PASSWORD environment variable; implicit TLS
 *       on 993 unless --plain, for a server on loopback)
 *
 * Prints "uv_fetch: fetched N messages, B body bytes" and exits 0 when
 * every step succeeded and the body bytes add up to the messages'
 * RFC822.SIZE; 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include "imapkit/adapter_libuv.h"
#include "imapkit/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    imk_conn *conn;
    imk_uv *uv;
    uv_timer_t progress;
    const char *mailbox;
    imk_auth auth;
    uint64_t messages, body_bytes, sizes;
    int ok;
} app;

/* The end, good or bad: detach first (the descriptor is still open), then
 * free (deferred by imapkit until this callback returns), then stop the
 * progress timer so that the loop runs out of handles and returns. */
static void finish(app *a, const char *failed_step, int err, const imk_result *res)
{
    if (failed_step != NULL) {
        if (err < 0)
            fprintf(stderr, "uv_fetch: %s failed: %s (%s)\n", failed_step, imk_conn_error(a->conn),
                    imk_error_name(err));
        else
            fprintf(stderr, "uv_fetch: %s refused: %.*s\n", failed_step, (int)res->text.len,
                    res->text.data != NULL ? res->text.data : "");
    }
    imk_uv_detach(a->uv);
    a->uv = NULL;
    imk_conn_free(a->conn);
    a->conn = NULL;
    uv_close((uv_handle_t *)&a->progress, NULL);
}

static int step_ok(app *a, const char *step, int err, const imk_result *res)
{
    if (err < 0 || (res != NULL && res->status != IMK_STATUS_OK)) {
        finish(a, step, err, res);
        return 0;
    }
    return 1;
}

static void on_logout(imk_conn *c, int err, const imk_result *res, void *user)
{
    app *a = user;
    (void)c;
    if (err < 0 && err != IMK_ECLOSED) { /* a server may close before its OK */
        finish(a, "LOGOUT", err, res);
        return;
    }
    a->ok = 1;
    finish(a, NULL, 0, NULL);
}

static void on_item(imk_conn *c, const imk_fetch_item *item, void *user)
{
    app *a = user;
    (void)c;
    switch (item->type) {
    case IMK_FI_BODY_DATA:
        a->body_bytes += item->len;
        break;
    case IMK_FI_MESSAGE:
        a->messages++;
        a->sizes += item->msg->rfc822_size;
        break;
    default:
        break;
    }
}

static void on_fetched(imk_conn *c, int err, const imk_result *res, void *user)
{
    app *a = user;
    if (!step_ok(a, "UID FETCH", err, res))
        return;
    printf("uv_fetch: fetched %" PRIu64 " messages, %" PRIu64 " body bytes\n", a->messages,
           a->body_bytes);
    int rc = imk_conn_logout_async(c, on_logout, a);
    if (rc < 0)
        finish(a, "LOGOUT", rc, NULL);
}

static void on_selected(imk_conn *c, int err, const imk_result *res, void *user)
{
    app *a = user;
    if (!step_ok(a, "SELECT", err, res))
        return;
    printf("uv_fetch: %s selected, %" PRIu32 " messages\n", a->mailbox,
           imk_view_exists(imk_conn_view(c)));
    int rc =
        imk_conn_fetch_async(c, 1, "1:*", "(UID RFC822.SIZE BODY.PEEK[])", on_item, on_fetched, a);
    if (rc < 0)
        finish(a, "UID FETCH", rc, NULL);
}

static void on_login(imk_conn *c, int err, const imk_result *res, void *user)
{
    app *a = user;
    if (!step_ok(a, "login", err, res))
        return;
    int rc = imk_conn_select_async(c, a->mailbox, NULL, on_selected, a);
    if (rc < 0)
        finish(a, "SELECT", rc, NULL);
}

static void on_connected(imk_conn *c, int err, const imk_result *res, void *user)
{
    app *a = user;
    if (!step_ok(a, "connect", err, res))
        return;
    printf("uv_fetch: connected over %s\n", imk_conn_transport(c));
    int rc = imk_conn_login_async(c, &a->auth, on_login, a); /* at once when PREAUTH */
    if (rc < 0)
        finish(a, "login", rc, NULL);
}

static void on_progress(uv_timer_t *t)
{
    app *a = t->data;
    fprintf(stderr, "uv_fetch: ... %" PRIu64 " messages, %" PRIu64 " bytes so far\n", a->messages,
            a->body_bytes);
}

static void usage(void)
{
    fprintf(stderr, "usage: example_uv_fetch [--mailbox NAME] --tunnel CMD\n"
                    "       example_uv_fetch [--mailbox NAME] [--port P] [--plain] HOST USER   "
                    "(password in $IMK_PASSWORD)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    a.mailbox = "INBOX";
    imk_conn_options o = IMK_CONN_OPTIONS_INIT;
    imk_auth auth = IMK_AUTH_INIT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mailbox") == 0 && i + 1 < argc) {
            a.mailbox = argv[++i];
        } else if (strcmp(argv[i], "--tunnel") == 0 && i + 1 < argc) {
            o.tunnel = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            o.port = argv[++i];
        } else if (strcmp(argv[i], "--plain") == 0) {
            o.security = IMK_SECURITY_NONE;
            o.allow_cleartext_password = 1;
        } else if (argv[i][0] != '-' && o.host == NULL) {
            o.host = argv[i];
        } else if (argv[i][0] != '-' && auth.user == NULL) {
            auth.user = argv[i];
        } else {
            usage();
        }
    }
    if (o.tunnel == NULL && (o.host == NULL || auth.user == NULL))
        usage();
    auth.password = getenv("IMK_PASSWORD");
    a.auth = auth;

    uv_loop_t *loop = uv_default_loop();
    int rc = imk_conn_new(&o, NULL, &a.conn);
    if (rc >= 0)
        rc = imk_conn_connect_async(a.conn, on_connected, &a);
    if (rc < 0) {
        fprintf(stderr, "uv_fetch: cannot start: %s (%s)\n",
                a.conn != NULL ? imk_conn_error(a.conn) : "", imk_error_name(rc));
        imk_conn_free(a.conn);
        return 1;
    }
    a.uv = imk_uv_attach(loop, a.conn);
    if (a.uv == NULL) {
        fprintf(stderr, "uv_fetch: out of memory\n");
        imk_conn_free(a.conn);
        return 1;
    }
    uv_timer_init(loop, &a.progress);
    a.progress.data = &a;
    uv_timer_start(&a.progress, on_progress, 1000, 1000);

    uv_run(loop, UV_RUN_DEFAULT); /* returns once every handle is closed */
    uv_loop_close(loop);

    if (a.ok && a.body_bytes != a.sizes) {
        fprintf(stderr,
                "uv_fetch: %" PRIu64 " body bytes, but RFC822.SIZE adds up to %" PRIu64 "\n",
                a.body_bytes, a.sizes);
        return 1;
    }
    return a.ok ? 0 : 1;
}
