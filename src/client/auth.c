/* SPDX-License-Identifier: MIT */
/*
 * Logging in: SASL (RFC 4422) through AUTHENTICATE (RFC 9051 section
 * 6.2.2) with SASL-IR (RFC 4959) when offered, or the LOGIN command
 * (section 6.2.3); then the capabilities when the server did not send them
 * with its OK, then COMPRESS=DEFLATE (RFC 4978) when asked for and offered.
 *
 *   already authenticated (PREAUTH)? ----------------------------+
 *   choose: SASL mechanism (net/sasl.h) or the LOGIN command      |
 *     (never a password in cleartext unless allowed: IMK_ESECURITY |
 *      before anything is sent)                                    |
 *   AUTHENTICATE MECH [initial] <-> "+ challenge" / response ...   |
 *     or LOGIN user password                                       |
 *   OK (SCRAM: the server's proof verified, else the connection    |
 *       is closed) / NO: IMK_EAUTH with the server's words         |
 *     v                                                            v
 *   capabilities unknown? CAPABILITY  ->  COMPRESS DEFLATE?  ->  done
 *
 * Secrets: the credentials are copied for the time of the login and wiped
 * when it ends; the trace shows "<redacted>" for the password argument,
 * every AUTHENTICATE response and the server's challenges (DESIGN.md
 * section 8).
 */
#define _POSIX_C_SOURCE 200809L

#include "client/conn_int.h"

#include "net/sasl.h"
#include "util/alloc.h"
#include "util/str.h"

#include <stdio.h>
#include <string.h>

struct imk__login {
    imk_done_fn done;
    void *user;
    int blocking, finished, err;
    int deferred; /* finished without a command: complete at the next process */
    char *user_name, *password, *token, *authzid, *mechanisms;
    imk__sasl *sasl;
    char mech[40];
    char *initial; /* initial response to send at the first "+" (no SASL-IR) */
    int sasl_failed;
    char sasl_msg[300];
    int caps_asked, compress_asked;
    int starting; /* inside imk_conn_login_async: completions are deferred */
};

static void wipe_free(imk_conn *c, char *s)
{
    if (s == NULL)
        return;
    volatile char *v = s;
    while (*v != '\0')
        *v++ = '\0';
    imk__free(&c->alloc, s);
}

static void login_release(imk_conn *c, imk__login *L)
{
    wipe_free(c, L->user_name);
    wipe_free(c, L->password);
    wipe_free(c, L->token);
    wipe_free(c, L->authzid);
    wipe_free(c, L->mechanisms);
    wipe_free(c, L->initial);
    imk__sasl_free(L->sasl);
    imk__free(&c->alloc, L);
}

void imk__login_free(imk_conn *c)
{
    if (c->login != NULL) {
        login_release(c, c->login);
        c->login = NULL;
    }
}

/* The login ends: the credentials go, the caller learns the outcome. */
static void finish(imk_conn *c, imk__login *L, int err, const imk_result *res)
{
    if (L->finished)
        return;
    L->finished = 1;
    L->err = err;
    imk__conn_redact_server_auth(c, 0);
    imk__sasl_free(L->sasl);
    L->sasl = NULL;
    if (L->blocking)
        return; /* imk_conn_login reads the outcome and frees */
    c->login = NULL;
    imk_done_fn done = L->done;
    void *user = L->user;
    login_release(c, L);
    imk__conn_call_done(c, done, err, res, user);
}

void imk__login_abort(imk_conn *c, int err)
{
    if (c->login != NULL && !c->login->finished)
        finish(c, c->login, err < 0 ? err : IMK_ECLOSED, NULL);
}

void imk__login_kick(imk_conn *c)
{
    imk__login *L = c->login;
    if (L != NULL && L->deferred && !L->finished)
        finish(c, L, 0, NULL);
}

/* The user name as shown in messages: printable ASCII only. */
static void shown_user(const imk__login *L, char *buf, size_t len)
{
    snprintf(buf, len, "%s", L->user_name != NULL ? L->user_name : "");
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static int secure_transport(const imk_conn *c)
{
    return c->opts.tunnel != NULL || (c->net != NULL && imk__net_is_tls(c->net));
}

/* ---- after authentication: capabilities, then COMPRESS ---- */

static void post_auth(imk_conn *c, imk__login *L, const imk_result *res);

static int send_cmd(imk_conn *c, imk__login *L, imk_command_kind kind, const char *arg,
                    imk__hook_fn hook)
{
    imk_op *op;
    int rc = imk__conn_begin_internal(c, kind, &op);
    if (rc < 0)
        return rc;
    if (arg != NULL && (rc = imk_command_atom(imk_op_args(op), arg)) < 0) {
        imk_op_discard(c->s, op);
        imk__pend *p = imk__conn_pend(op);
        imk__free(&c->alloc, p);
        return imk__conn_fail(c, rc, "%s %s: %s", imk_command_kind_verb(kind), arg,
                              imk_error_message(rc));
    }
    return imk__conn_submit_hook(c, op, hook, L);
}

/* What the hooks of the login's follow-up commands share: a failure ends
 * the login; other events of the op are not theirs to handle (for COMPRESS,
 * IMK_SE_COMPRESSING: the core switches the transport). 1 when `ev` is the
 * op's DONE. */
static int hook_done(imk_conn *c, imk__login *L, const imk_session_event *ev, int err)
{
    if (ev == NULL || err < 0) {
        if (ev == NULL || ev->type == IMK_SE_DONE)
            finish(c, L, err < 0 ? err : IMK_ECLOSED, NULL);
        return 0;
    }
    return ev->type == IMK_SE_DONE;
}

static void compress_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__login *L = p->ctx;
    /* A refused COMPRESS leaves an uncompressed, working connection. */
    if (hook_done(c, L, ev, err))
        finish(c, L, 0, imk_op_result(ev->op));
}

static void capability_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__login *L = p->ctx;
    if (hook_done(c, L, ev, err))
        post_auth(c, L, imk_op_result(ev->op));
}

static void post_auth(imk_conn *c, imk__login *L, const imk_result *res)
{
    int rc;
    /* A refused CAPABILITY leaves the capabilities unknown: not worth
     * failing a login that succeeded. */
    if (!imk_session_capabilities_known(c->s) && !L->caps_asked) {
        L->caps_asked = 1;
        if ((rc = send_cmd(c, L, IMK_CMD_CAPABILITY, NULL, capability_hook)) < 0)
            finish(c, L, rc, NULL);
        return;
    }
    if (c->opts.compress && !L->compress_asked && c->net != NULL &&
        !imk__net_is_compressed(c->net) && imk_session_has_capability(c->s, "COMPRESS=DEFLATE")) {
        L->compress_asked = 1;
        if ((rc = send_cmd(c, L, IMK_CMD_COMPRESS, "DEFLATE", compress_hook)) < 0)
            finish(c, L, rc, NULL);
        return;
    }
    if (L->starting) {
        /* imk_conn_login_async() must not call its callback itself */
        L->deferred = 1;
        c->kick = 1;
        return;
    }
    finish(c, L, 0, res);
}

/* ---- AUTHENTICATE and LOGIN ---- */

static void refused(imk_conn *c, imk__login *L, const char *what, const imk_session_event *ev)
{
    char who[128], text[300];
    shown_user(L, who, sizeof(who));
    imk__conn_result_text(imk_op_result(ev->op), text, sizeof(text));
    const char *sasl = L->sasl != NULL ? imk__sasl_error(L->sasl) : "";
    imk__conn_fail(c, IMK_EAUTH, "%s as \"%s\" refused by %s: %s%s%s", what, who, c->peer, text,
                   sasl[0] != '\0' ? " (" : "", sasl[0] != '\0' ? sasl : "");
    if (sasl[0] != '\0') {
        size_t n = strlen(c->err);
        if (n + 1 < sizeof(c->err)) {
            c->err[n] = ')';
            c->err[n + 1] = '\0';
        }
    }
    finish(c, L, IMK_EAUTH, NULL);
}

static void authenticate_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__login *L = p->ctx;
    if (ev == NULL) {
        finish(c, L, err < 0 ? err : IMK_ECLOSED, NULL);
        return;
    }
    if (ev->type == IMK_SE_CONTINUATION) {
        const char *resp;
        char *initial = L->initial;
        int rc = 0;
        if (initial != NULL) {
            /* No SASL-IR: the empty challenge asks for the initial response. */
            resp = initial;
        } else if (L->sasl == NULL) {
            rc = IMK_EAUTH;
            resp = NULL;
        } else {
            rc = imk__sasl_step(L->sasl, ev->text.data != NULL ? ev->text.data : "", ev->text.len,
                                &resp);
        }
        if (rc < 0) {
            L->sasl_failed = rc;
            snprintf(L->sasl_msg, sizeof(L->sasl_msg), "%s",
                     L->sasl != NULL ? imk__sasl_error(L->sasl) : "no SASL exchange");
            imk_session_auth_cancel(c->s, ev->op);
            return;
        }
        size_t len = strlen(resp);
        imk__conn_redact_next(c, len);
        rc = imk_session_auth_respond(c->s, ev->op, resp, len);
        if (initial != NULL) {
            L->initial = NULL;
            wipe_free(c, initial);
        }
        if (rc < 0)
            imk__conn_close(c, rc, "AUTHENTICATE with %s: %s", c->peer, imk_session_error(c->s));
        return;
    }
    if (ev->type != IMK_SE_DONE)
        return;
    imk__conn_redact_server_auth(c, 0);
    if (err < 0) {
        finish(c, L, err, NULL);
        return;
    }
    char what[80];
    snprintf(what, sizeof(what), "AUTHENTICATE %s", L->mech);
    if (L->sasl_failed) {
        char who[128];
        shown_user(L, who, sizeof(who));
        imk__conn_fail(c, IMK_EAUTH, "%s as \"%s\" with %s failed: %s", what, who, c->peer,
                       L->sasl_msg);
        finish(c, L, IMK_EAUTH, NULL);
        return;
    }
    if (ev->status != IMK_STATUS_OK) {
        refused(c, L, what, ev);
        return;
    }
    if (imk__sasl_finish(L->sasl) < 0) {
        /* SCRAM: the server did not prove it knows the password; whoever
         * answered is not to be trusted with anything else. */
        imk__conn_close(c, IMK_EAUTH,
                        "%s: %s said the login succeeded without proving that it knows the "
                        "password (%s): the connection was closed",
                        what, c->peer, imk__sasl_error(L->sasl));
        return;
    }
    post_auth(c, L, imk_op_result(ev->op));
}

static void login_hook(imk_conn *c, imk__pend *p, const imk_session_event *ev, int err)
{
    imk__login *L = p->ctx;
    if (ev == NULL) {
        finish(c, L, err < 0 ? err : IMK_ECLOSED, NULL);
        return;
    }
    if (ev->type != IMK_SE_DONE)
        return;
    if (err < 0) {
        finish(c, L, err, NULL);
        return;
    }
    if (ev->status != IMK_STATUS_OK) {
        refused(c, L, "LOGIN", ev);
        return;
    }
    post_auth(c, L, imk_op_result(ev->op));
}

static int start_login_command(imk_conn *c, imk__login *L)
{
    imk_op *op;
    int rc = imk__conn_begin_internal(c, IMK_CMD_LOGIN, &op);
    if (rc < 0)
        return rc;
    imk_command *cmd = imk_op_args(op);
    size_t user_end = 0, total = 0;
    rc = imk_command_astring(cmd, L->user_name, strlen(L->user_name));
    if (rc == 0) {
        imk_command_bytes(cmd, &user_end);
        rc = imk_command_astring(cmd, L->password, strlen(L->password));
    }
    if (rc < 0) {
        char who[128];
        shown_user(L, who, sizeof(who));
        imk__pend *p = imk__conn_pend(op);
        imk_op_discard(c->s, op);
        imk__free(&c->alloc, p);
        return imk__conn_fail(c, rc,
                              "LOGIN as \"%s\": the user name or password cannot be sent (%s)", who,
                              imk_error_message(rc));
    }
    const char *bytes = imk_command_bytes(cmd, &total);
    /* "TAG LOGIN user " then the password argument, then CRLF */
    if (total > user_end + 1)
        imk__conn_redact_prefix(c, bytes, user_end + 1, total - user_end - 1);
    return imk__conn_submit_hook(c, op, login_hook, L);
}

static int start_authenticate(imk_conn *c, imk__login *L)
{
    const char *mech = imk__sasl_mech(L->sasl);
    snprintf(L->mech, sizeof(L->mech), "%s", mech);
    const char *initial = NULL;
    int has_initial = imk__sasl_initial(L->sasl, &initial);
    if (has_initial == IMK_ENOMEM)
        return imk__conn_fail(c, IMK_ENOMEM, "AUTHENTICATE %s: out of memory", L->mech);
    if (has_initial < 0)
        return imk__conn_fail(c, IMK_EAUTH, "AUTHENTICATE %s with %s: %s", L->mech, c->peer,
                              imk__sasl_error(L->sasl));
    int sasl_ir = has_initial == 1 && imk_session_has_capability(c->s, "SASL-IR");
    imk_op *op;
    int rc = imk__conn_begin_internal(c, IMK_CMD_AUTHENTICATE, &op);
    if (rc < 0)
        return rc;
    imk_command *cmd = imk_op_args(op);
    rc = imk_command_atom(cmd, L->mech);
    size_t prefix = 0;
    imk_command_bytes(cmd, &prefix);
    if (rc == 0 && sasl_ir)
        rc = imk_command_atom(cmd, initial);
    if (rc == 0 && has_initial == 1 && !sasl_ir) {
        size_t n = strlen(initial);
        L->initial = imk__malloc(&c->alloc, n + 1);
        if (L->initial == NULL)
            rc = IMK_ENOMEM;
        else
            memcpy(L->initial, initial, n + 1);
    }
    if (rc < 0) {
        imk__pend *p = imk__conn_pend(op);
        imk_op_discard(c->s, op);
        imk__free(&c->alloc, p);
        return imk__conn_fail(c, rc, "AUTHENTICATE %s: %s", L->mech, imk_error_message(rc));
    }
    if (sasl_ir) {
        const char *bytes = imk_command_bytes(cmd, NULL);
        imk__conn_redact_prefix(c, bytes, prefix + 1, strlen(initial));
    }
    imk__conn_redact_server_auth(c, 1);
    rc = imk__conn_submit_hook(c, op, authenticate_hook, L);
    if (rc < 0)
        imk__conn_redact_server_auth(c, 0);
    return rc;
}

/* ---- choosing how to log in ---- */

/* Mechanisms looked for in the capabilities (net/sasl.h implements the
 * first ones; the others only make the "nothing usable" message complete). */
static const char *const KNOWN_MECHS[] = {
    "SCRAM-SHA-256",      "SCRAM-SHA-1",      "PLAIN",    "LOGIN",      "OAUTHBEARER", "XOAUTH2",
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "CRAM-MD5", "DIGEST-MD5", "GSSAPI",      "NTLM",
    "EXTERNAL",           "ANONYMOUS",
};
#define N_KNOWN (sizeof(KNOWN_MECHS) / sizeof(KNOWN_MECHS[0]))

/* Position of a word in a space-separated list (case-insensitive), or -1. */
static int word_pos(const char *list, const char *word)
{
    if (list == NULL)
        return -1;
    int pos = 0;
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p != '\0' && *p != ' ')
            p++;
        if (p > w) {
            if (imk__str_ieq((imk_str){w, (size_t)(p - w)}, word))
                return pos;
            pos++;
        }
    }
    return -1;
}

static int word_count(const char *list)
{
    int n = 0;
    for (const char *p = list; p != NULL && *p != '\0';) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && *p != ' ')
            p++;
    }
    return n;
}

static int blank(const char *s)
{
    if (s == NULL)
        return 1;
    while (*s == ' ')
        s++;
    return *s == '\0';
}

/* Decide and send the first command. Returns 0 when sent, or the error
 * (message set, nothing sent). */
static int choose_and_start(imk_conn *c, imk__login *L)
{
    char who[128];
    shown_user(L, who, sizeof(who));
    int secure = secure_transport(c);
    const char *offered[N_KNOWN];
    size_t n_offered = 0;
    for (size_t i = 0; i < N_KNOWN; i++) {
        char cap[64];
        snprintf(cap, sizeof(cap), "AUTH=%s", KNOWN_MECHS[i]);
        if (imk_session_has_capability(c->s, cap))
            offered[n_offered++] = KNOWN_MECHS[i];
    }
    const char *prefer = blank(L->mechanisms) ? NULL : L->mechanisms;
    int login_pos = word_pos(prefer, "LOGIN-COMMAND");
    int login_cmd_ok = prefer == NULL || login_pos >= 0;
    int logindisabled = imk_session_has_capability(c->s, "LOGINDISABLED");
    int login_possible =
        login_cmd_ok && L->password != NULL && L->user_name != NULL && !logindisabled;

    imk__sasl_creds cr;
    memset(&cr, 0, sizeof(cr));
    cr.user = L->user_name;
    cr.password = L->password;
    cr.authzid = L->authzid;
    cr.oauth_token = L->token;
    cr.host = c->opts.host;
    cr.port = c->opts.port != NULL                   ? c->opts.port
              : c->opts.security == IMK_SECURITY_TLS ? "993"
                                                     : "143";
    imk__sasl *sasl = NULL;
    int rc = 0;
    /* "LOGIN-COMMAND" alone, or first: no SASL attempt before it. */
    int sasl_first = !(prefer != NULL && login_pos == 0);
    if (sasl_first) {
        rc = imk__sasl_new(&cr, offered, n_offered, prefer, secure,
                           c->opts.allow_cleartext_password, &c->alloc, &sasl);
        if (rc == 0 && prefer != NULL && login_pos >= 0 && login_possible &&
            word_pos(prefer, imk__sasl_mech(sasl)) > login_pos) {
            /* the caller ranks the LOGIN command above this mechanism */
            imk__sasl_free(sasl);
            sasl = NULL;
            rc = IMK_ENOTSUP;
        }
    } else {
        rc = IMK_ENOTSUP;
    }
    if (rc == 0) {
        L->sasl = sasl;
        return start_authenticate(c, L);
    }
    char sasl_msg[300];
    snprintf(sasl_msg, sizeof(sasl_msg), "%s", sasl != NULL ? imk__sasl_error(sasl) : "");
    imk__sasl_free(sasl);
    if (rc == IMK_ENOTSUP && login_possible) {
        char why[256];
        rc = imk__sasl_login_allowed(secure, c->opts.allow_cleartext_password, why, sizeof(why));
        if (rc < 0)
            return imk__conn_fail(c, rc, "LOGIN as \"%s\" to %s: %s", who, c->peer, why);
        return start_login_command(c, L);
    }
    if (rc == IMK_ENOTSUP && !sasl_first && word_count(prefer) > 1) {
        /* "LOGIN-COMMAND" first but impossible: the rest of the list */
        rc = imk__sasl_new(&cr, offered, n_offered, prefer, secure,
                           c->opts.allow_cleartext_password, &c->alloc, &sasl);
        if (rc == 0) {
            L->sasl = sasl;
            return start_authenticate(c, L);
        }
        snprintf(sasl_msg, sizeof(sasl_msg), "%s", sasl != NULL ? imk__sasl_error(sasl) : "");
        imk__sasl_free(sasl);
    }
    if (rc == IMK_ENOTSUP) {
        const char *extra = "";
        if (login_cmd_ok && logindisabled)
            extra = "; the LOGIN command is disabled (LOGINDISABLED)";
        else if (login_cmd_ok && L->password == NULL)
            extra = "; the LOGIN command needs a password";
        return imk__conn_fail(c, IMK_ENOTSUP, "login as \"%s\" to %s: %s%s", who, c->peer,
                              sasl_msg[0] != '\0' ? sasl_msg : "no usable mechanism", extra);
    }
    if (rc == IMK_ENOMEM)
        return imk__conn_fail(c, rc, "out of memory while preparing the login");
    return imk__conn_fail(c, rc, "login as \"%s\" to %s: %s", who, c->peer,
                          sasl_msg[0] != '\0' ? sasl_msg : imk_error_message(rc));
}

static int copy_cred(imk_conn *c, char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    size_t n = strlen(src);
    *dst = imk__malloc(&c->alloc, n + 1);
    if (*dst == NULL)
        return IMK_ENOMEM;
    memcpy(*dst, src, n + 1);
    return 0;
}

static int login_start(imk_conn *c, const imk_auth *auth, int blocking, imk_done_fn done,
                       void *user)
{
    if (auth == NULL)
        return imk__conn_fail(c, IMK_EINVAL, "no credentials given");
    if (c->login != NULL)
        return imk__conn_fail(c, IMK_EBUSY, "a login is already running on this connection");
    if (c->iter != NULL)
        return imk__conn_fail(c, IMK_EBUSY,
                              "a FETCH iterator is open on this connection: end it with "
                              "imk_fetch_iter_end() first");
    if (c->phase != IMK__PH_OPEN || c->eof || c->connect.active)
        return imk__conn_fail(c, IMK_ESTATE, "not connected to %s: call imk_conn_connect() first",
                              c->peer);
    imk_conn_state st = imk_session_state(c->s);
    if (st == IMK_STATE_LOGOUT)
        return imk__conn_fail(c, IMK_ESTATE, "the connection to %s is closing", c->peer);
    imk__login *L = imk__malloc(&c->alloc, sizeof(*L));
    if (L == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for the login");
    memset(L, 0, sizeof(*L));
    L->blocking = blocking;
    L->done = done;
    L->user = user;
    int rc = copy_cred(c, &L->user_name, auth->user);
    if (rc == 0)
        rc = copy_cred(c, &L->password, auth->password);
    if (rc == 0)
        rc = copy_cred(c, &L->token, auth->oauth_token);
    if (rc == 0)
        rc = copy_cred(c, &L->authzid, auth->authzid);
    if (rc == 0)
        rc = copy_cred(c, &L->mechanisms, auth->mechanisms);
    if (rc < 0) {
        login_release(c, L);
        return imk__conn_fail(c, rc, "out of memory for the login");
    }
    c->login = L;
    L->starting = 1;
    if (st == IMK_STATE_AUTHENTICATED || st == IMK_STATE_SELECTED) {
        post_auth(c, L, NULL); /* PREAUTH: nothing to authenticate */
    } else if (L->user_name == NULL || (L->password == NULL && L->token == NULL)) {
        rc = imk__conn_fail(c, IMK_EINVAL,
                            "login to %s: a user name and a password (or an OAuth token) are "
                            "needed",
                            c->peer);
    } else {
        rc = choose_and_start(c, L);
    }
    L->starting = 0;
    if (rc < 0 && !L->finished) {
        c->login = NULL;
        login_release(c, L);
        return rc;
    }
    return 0;
}

int imk_conn_login_async(imk_conn *c, const imk_auth *auth, imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    if (c->freeing || c->free_pending)
        return imk__conn_fail(c, IMK_ESTATE, "the connection is being freed");
    return login_start(c, auth, 0, done, user);
}

int imk_conn_login(imk_conn *c, const imk_auth *auth)
{
    if (c == NULL)
        return IMK_EINVAL;
    int rc = imk__conn_blocking_check(c, 0);
    if (rc < 0)
        return rc;
    rc = login_start(c, auth, 1, NULL, NULL);
    if (rc < 0)
        return rc;
    imk__login *L = c->login;
    if (L->deferred)
        finish(c, L, 0, NULL);
    int freed = 0;
    if (!L->finished) {
        rc = imk__conn_wait(c, &L->finished, 1, &freed);
        if (freed)
            return IMK_ECLOSED;
    }
    rc = L->finished ? L->err : (rc < 0 ? rc : IMK_ECLOSED);
    c->login = NULL;
    login_release(c, L);
    return rc;
}
