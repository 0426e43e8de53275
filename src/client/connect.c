/* SPDX-License-Identifier: MIT */
/*
 * Connecting: the steps from nothing to a connection that takes commands.
 *
 *   net connect (each address in turn, or the tunnel)
 *     |-- security=tls, not a tunnel --> TLS handshake (implicit TLS, RFC 8314)
 *     v
 *   greeting  -- BYE: IMK_ECLOSED (the server refused us)
 *     |       -- PREAUTH with security=starttls: IMK_ESECURITY (no STARTTLS
 *     |          is possible in the authenticated state, RFC 9051 6.2.1)
 *     v
 *   security=starttls (not a tunnel):
 *     capabilities known? else CAPABILITY
 *     STARTTLS offered?   else IMK_ESECURITY, nothing else is sent (fail
 *                          closed, DESIGN.md section 8)
 *     STARTTLS -> OK -> TLS handshake -> imk_session_starttls_done() (any
 *                 byte the server sent before the handshake is refused by the
 *                 session as injection) -> CAPABILITY again (RFC 9051 6.2.1:
 *                 what was learnt before TLS is forgotten)
 *   capabilities still unknown? CAPABILITY
 *     v
 *   ready: the connect task completes (callback, or the blocking call returns)
 *
 * imk_conn_connect() on a connection that failed or was logged out starts over
 * with a fresh session and transport: the view starts empty.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include <stdio.h>
#include <string.h>

static int need_starttls(const imk_conn *c)
{
    return c->opts.security == IMK_SECURITY_STARTTLS && c->opts.tunnel == NULL;
}

static void connect_finish(imk_conn *c, int err)
{
    if (!c->connect.active)
        return;
    c->connect.active = 0;
    c->connect.waiting_greet = 0;
    c->connect.finished = 1;
    c->connect.err = err;
    imk_done_fn done = c->connect.done;
    void *user = c->connect.user;
    c->connect.done = NULL;
    imk__conn_call_done(c, done, err, NULL, user);
}

void imk__connect_abort(imk_conn *c, int err)
{
    connect_finish(c, err < 0 ? err : IMK_ECLOSED);
}

static void next_step(imk_conn *c);

/* CAPABILITY during the connect: the session records the list. */
static void capability_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    (void)p;
    if (ev == NULL || ev->type != IMK_SE_DONE) {
        if (ev == NULL)
            imk__connect_abort(c, err);
        return;
    }
    if (err < 0)
        return; /* the connection closed: the close aborts the task */
    if (ev->status != IMK_STATUS_OK) {
        char text[300];
        imk__conn_result_text(imk_op_result(ev->op), text, sizeof(text));
        imk__conn_close(c, IMK_EPROTO, "%s answered CAPABILITY with %s: %s", c->peer,
                        imk_status_name(ev->status), text);
        return;
    }
    if (!imk_session_capabilities_known(c->s)) {
        imk__conn_close(c, IMK_EPROTO, "%s answered CAPABILITY without a capability list", c->peer);
        return;
    }
    next_step(c);
}

static void starttls_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    (void)p;
    if (ev == NULL) {
        imk__connect_abort(c, err);
        return;
    }
    if (ev->type != IMK_SE_DONE || err < 0)
        return;
    if (ev->status != IMK_STATUS_OK) {
        char text[300];
        imk__conn_result_text(imk_op_result(ev->op), text, sizeof(text));
        imk__conn_close(c, IMK_ESECURITY,
                        "%s refused STARTTLS (%s %s): refusing to continue in cleartext "
                        "(security=starttls)",
                        c->peer, imk_status_name(ev->status), text);
        return;
    }
    int rc = imk__net_tls_start(c->net);
    if (rc < 0) {
        imk__conn_close(c, rc, "%s", imk__net_error(c->net));
        return;
    }
    c->connect.starttls = 1;
    c->phase = IMK__PH_TLS;
    c->io_mark = imk__conn_now();
}

static void send_internal(imk_conn *c, imk_command_kind kind, imk__hook_fn hook)
{
    imk_op *op;
    int rc = imk__conn_begin_internal(c, kind, &op);
    if (rc == 0)
        rc = imk__conn_submit_hook(c, op, hook, NULL);
    if (rc < 0) {
        char msg[IMK__ERRBUF];
        snprintf(msg, sizeof(msg), "%s", imk_conn_error(c));
        imk__conn_close(c, rc, "%s: %s", c->peer, msg);
    }
}

static void next_step(imk_conn *c)
{
    if (!c->connect.active || c->phase != IMK__PH_OPEN)
        return;
    if (need_starttls(c) && !c->connect.starttls) {
        if (!imk_session_capabilities_known(c->s)) {
            send_internal(c, IMK_CMD_CAPABILITY, capability_hook);
            return;
        }
        if (!imk_session_has_capability(c->s, "STARTTLS")) {
            imk__conn_close(c, IMK_ESECURITY,
                            "%s does not offer STARTTLS: refusing to continue in cleartext "
                            "(security=starttls)",
                            c->peer);
            return;
        }
        send_internal(c, IMK_CMD_STARTTLS, starttls_hook);
        return;
    }
    if (!imk_session_capabilities_known(c->s)) {
        send_internal(c, IMK_CMD_CAPABILITY, capability_hook);
        return;
    }
    connect_finish(c, 0);
}

void imk__connect_greeting(imk_conn *c, const imk_session_event *ev)
{
    if (!c->connect.active)
        return;
    c->connect.waiting_greet = 0;
    if (ev->status == IMK_STATUS_BYE) {
        imk__conn_close(c, IMK_ECLOSED, "%s refused the connection: * BYE %.*s", c->peer,
                        (int)ev->text.len, ev->text.data != NULL ? ev->text.data : "");
        return;
    }
    if (ev->status == IMK_STATUS_PREAUTH && need_starttls(c)) {
        imk__conn_close(c, IMK_ESECURITY,
                        "%s greeted with PREAUTH on a cleartext connection, where STARTTLS is "
                        "impossible: refusing to continue in cleartext (security=starttls)",
                        c->peer);
        return;
    }
    next_step(c);
}

int imk__connect_io(imk_conn *c)
{
    int rc;
    int64_t now = imk__conn_now();
    if (c->phase == IMK__PH_CONNECTING) {
        rc = imk__net_connect_step(c->net, now);
        if (rc == IMK__NET_AGAIN)
            return rc;
        if (rc < 0)
            return imk__conn_close(c, rc, "%s", imk__net_error(c->net));
        c->io_mark = now;
        if (c->opts.tunnel == NULL && c->opts.security == IMK_SECURITY_TLS) {
            rc = imk__net_tls_start(c->net);
            if (rc < 0)
                return imk__conn_close(c, rc, "%s", imk__net_error(c->net));
            c->phase = IMK__PH_TLS;
            return 1;
        }
        c->phase = IMK__PH_OPEN;
        c->connect.waiting_greet = 1;
        imk__conn_update_transport(c);
        return 1;
    }
    if (c->phase != IMK__PH_TLS)
        return 1;
    rc = imk__net_tls_step(c->net);
    if (rc == IMK__NET_AGAIN)
        return rc;
    if (rc < 0)
        return imk__conn_close(c, rc, "%s", imk__net_error(c->net));
    c->io_mark = now;
    c->phase = IMK__PH_OPEN;
    imk__conn_update_transport(c);
    if (!c->connect.starttls) {
        c->connect.waiting_greet = 1;
        return 1;
    }
    rc = imk_session_starttls_done(c->s);
    if (rc < 0)
        return imk__conn_close(c, rc, "STARTTLS with %s: %s", c->peer, imk_session_error(c->s));
    /* RFC 9051 6.2.1: the capabilities were forgotten at the OK. */
    send_internal(c, IMK_CMD_CAPABILITY, capability_hook);
    return c->phase == IMK__PH_CLOSED ? c->dead : 1;
}

static void reset_for_connect(imk_conn *c)
{
    c->phase = IMK__PH_NONE;
    c->eof = 0;
    c->dead = 0;
    c->logout_sent = 0;
    c->eof_reported = 0;
    c->tunnel_exited = 0;
    c->tunnel_status = 0;
    c->tunnel_tail[0] = '\0';
    c->hold = 0;
    c->more_input = 0;
    c->out_total = 0;
    c->err[0] = '\0';
    c->transport[0] = '\0';
    memset(&c->redact, 0, sizeof(c->redact));
    c->redact.s_line_start = 1;
    memset(&c->connect, 0, sizeof(c->connect));
}

int imk_conn_connect_async(imk_conn *c, imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    if (c->freeing || c->free_pending)
        return imk__conn_fail(c, IMK_ESTATE, "the connection is being freed");
    if (c->iter != NULL)
        return imk__conn_fail(c, IMK_EBUSY,
                              "a FETCH iterator is open on this connection: end it with "
                              "imk_fetch_iter_end() first");
    if (c->connect.active)
        return imk__conn_fail(c, IMK_EBUSY, "a connect to %s is already running", c->peer);
    if (c->busy > 0 || c->in_cb > 0)
        /* the old session may still be in use up the stack */
        return imk__conn_fail(c, IMK_EBUSY,
                              "cannot connect from inside a callback of the same connection: "
                              "do it after imk_conn_process() returns");
    if ((c->phase == IMK__PH_OPEN && !c->eof && imk_session_state(c->s) != IMK_STATE_LOGOUT) ||
        c->phase == IMK__PH_CONNECTING || c->phase == IMK__PH_TLS)
        return imk__conn_fail(
            c, IMK_ESTATE,
            "already connected to %s: log out (imk_conn_logout) before connecting "
            "again",
            c->peer);
    if (c->phase == IMK__PH_OPEN)
        imk__conn_close(c, IMK_ECLOSED, "the connection to %s was closed to reconnect", c->peer);

    imk__net_options no;
    memset(&no, 0, sizeof(no));
    no.host = c->opts.host;
    no.port = c->opts.port != NULL                   ? c->opts.port
              : c->opts.security == IMK_SECURITY_TLS ? "993"
                                                     : "143";
    no.family = c->opts.family;
    no.connect_timeout_ms =
        c->opts.connect_timeout_ms > 0 ? c->opts.connect_timeout_ms : 24 * 3600 * 1000;
    no.no_keepalive = c->opts.no_keepalive;
    no.tunnel = c->opts.tunnel;
    no.server_name = c->opts.server_name;
    no.ca_file = c->opts.ca_file;
    no.ca_dir = c->opts.ca_dir;
    no.insecure_skip_verify = c->opts.tls_insecure_skip_verify;

    /* A fresh session: the old one's view, capabilities and state belong
     * to the old connection. */
    imk_session *s = NULL;
    int rc = imk_session_new(c->has_sess_opts ? &c->sess_opts : NULL, &c->alloc, &s);
    if (rc < 0)
        return imk__conn_fail(c, rc, "cannot create the IMAP session: %s", imk_error_message(rc));
    imk__net *net = NULL;
    rc = imk__net_new(&no, &c->alloc, &net);
    if (rc < 0) {
        imk_session_free(s);
        if (net != NULL) {
            imk__conn_fail(c, rc, "%s", imk__net_error(net));
            imk__net_free(net);
            return rc;
        }
        return imk__conn_fail(c, rc, "cannot set up the connection to %s: %s", c->peer,
                              imk_error_message(rc));
    }
    reset_for_connect(c);
    imk_session_free(c->s);
    c->s = s;
    c->net = net;
    c->phase = IMK__PH_CONNECTING;
    c->connect.active = 1;
    c->connect.done = done;
    c->connect.user = user;
    c->kick = 1;
    c->io_mark = imk__conn_now();
    return 0;
}

int imk_conn_connect(imk_conn *c)
{
    if (c == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0)
        return rc;
    rc = imk_conn_connect_async(c, NULL, NULL);
    if (rc < 0)
        return rc;
    int freed = 0;
    rc = imk__conn_wait(c, &c->connect.finished, 1, &freed);
    if (freed)
        return IMK_ECLOSED;
    if (!c->connect.finished)
        return rc < 0 ? rc : IMK_ECLOSED;
    return c->connect.err;
}
