/* SPDX-License-Identifier: MIT */
/*
 * test_it_tls.c - connection security against a real Dovecot 2.3
 * (DESIGN.md section 8): cleartext with and without permission, STARTTLS
 * (and the capabilities read again after it), implicit TLS with every
 * password mechanism and the LOGIN command, refused passwords, every kind
 * of bad certificate, the insecure switch, STARTTLS that is not offered,
 * COMPRESS=DEFLATE, IPv6 and the event-loop connect.
 *
 * The servers (tests/integration/servers.sh dovecot-daemon --tls-variants):
 * one main instance (IMAP with STARTTLS + IMAPS, certificate for
 * localhost / 127.0.0.1 / ::1 from the test CA), one IMAPS instance per
 * bad certificate (wrong host, expired, unknown CA, self-signed), and one
 * without TLS at all. Dovecot treats a client whose address equals the
 * server's (127.0.0.1 -> 127.0.0.1) as secured and offers it AUTH=PLAIN
 * in cleartext; a client of 127.0.0.2 (it comes from 127.0.0.1) sees
 * LOGINDISABLED before STARTTLS, as a remote client would.
 *
 * What "nothing was sent" means here: the trace hook sees every byte the
 * client writes (before TLS and compression); a count taken before a call
 * that must refuse is compared with the count after it.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "test.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static it_dovecot d;

static const char *const password_mechs[] = {"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"};

static imk_conn_options plain_options(const char *label)
{
    imk_conn_options o = it_options(label);
    o.host = "127.0.0.1";
    o.port = d.imap_port;
    o.security = IMK_SECURITY_NONE;
    return o;
}

static int login_as(imk_conn *c, const char *mechs, const char *password)
{
    imk_auth a = IMK_AUTH_INIT;
    a.user = IT_USER;
    a.password = password;
    a.mechanisms = mechs;
    return imk_conn_login(c, &a);
}

/* Dovecot logs "Login: user=<alice>, method=X" once the login succeeded;
 * the log process writes it a moment later. */
static int wait_log_count(const char *needle, int at_least)
{
    int n = 0;
    for (int i = 0; i < 100; i++) {
        n = it_dovecot_log_count(&d, needle);
        if (n >= at_least)
            return n;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return n;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- cleartext ---- */

static void test_cleartext_allowed(void)
{
    static const char *const mechs[] = {"PLAIN", "LOGIN", "LOGIN-COMMAND"};
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        imk_conn_options o = plain_options("cleartext-allowed");
        o.allow_cleartext_password = 1;
        imk_conn *c = it_connect(&o);
        CHECK(c != NULL);
        if (c == NULL)
            return;
        CHECK_STR(imk_conn_transport(c), "cleartext");
        int rc = login_as(c, mechs[i], IT_PASSWORD);
        if (rc != 0)
            it_note("cleartext login with %s: %s: %s", mechs[i], imk_error_name(rc),
                    imk_conn_error(c));
        CHECK_INT(rc, 0);
        CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_AUTHENTICATED);
        /* Dovecot's post-login capabilities (not offered before login). */
        CHECK(imk_conn_has_capability(c, "ESEARCH"));
        const imk_result *r = NULL;
        CHECK_INT(imk_conn_noop(c, &r), 0);
        CHECK(r != NULL && r->status == IMK_STATUS_OK);
        CHECK_INT(imk_conn_logout(c), 0);
        imk_conn_free(c);
    }
}

static void test_cleartext_refused(void)
{
    static const char *const mechs[] = {"PLAIN", "LOGIN", "LOGIN-COMMAND"};
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        imk_conn_options o = plain_options("cleartext-refused");
        imk_conn *c = it_connect(&o);
        CHECK(c != NULL);
        if (c == NULL)
            return;
        /* The server offers AUTH=PLAIN and LOGIN here: only the client's
         * rule stands between the password and the wire. */
        CHECK(imk_conn_has_capability(c, "AUTH=PLAIN"));
        size_t before = it_trace_sent("cleartext-refused");
        int rc = login_as(c, mechs[i], IT_PASSWORD);
        CHECK_INT(rc, IMK_ESECURITY);
        CHECK_INT(it_trace_sent("cleartext-refused"), before);
        CHECK(imk_conn_error(c)[0] != '\0');
        if (rc == IMK_ESECURITY)
            it_note("refused as expected (%s): %s", mechs[i], imk_conn_error(c));
        /* The refusal is not fatal: the connection still works. */
        const imk_result *r = NULL;
        CHECK_INT(imk_conn_noop(c, &r), 0);
        CHECK(r != NULL && r->status == IMK_STATUS_OK);
        CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_NOT_AUTHENTICATED);
        imk_conn_free(c);
    }
    CHECK(!it_trace_sent_contains("cleartext-refused", 0, IT_PASSWORD));
}

/* Without permission for cleartext passwords, the automatic choice may
 * still use SCRAM (the password never crosses the wire), which Dovecot
 * offers here: the header's order puts SCRAM-SHA-256 first. */
static void test_cleartext_default_uses_scram(void)
{
    int before = it_dovecot_log_count(&d, "method=SCRAM-SHA-256");
    imk_conn_options o = plain_options("cleartext-scram");
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    size_t sent = it_trace_sent("cleartext-scram");
    int rc = login_as(c, NULL, IT_PASSWORD);
    if (rc != 0)
        it_note("default login in cleartext: %s: %s", imk_error_name(rc), imk_conn_error(c));
    CHECK_INT(rc, 0);
    CHECK(it_trace_sent_contains("cleartext-scram", sent, "AUTHENTICATE SCRAM-SHA-256"));
    CHECK(!it_trace_sent_contains("cleartext-scram", sent, "AUTHENTICATE PLAIN"));
    CHECK(!it_trace_sent_contains("cleartext-scram", 0, IT_PASSWORD));
    CHECK(wait_log_count("method=SCRAM-SHA-256", before + 1) == before + 1);
    imk_conn_logout(c);
    imk_conn_free(c);
}

/* ---- STARTTLS ---- */

static void test_starttls(void)
{
    imk_conn_options o = it_options("starttls");
    int remote_like = d.alt_host[0] != '\0';
    o.host = remote_like ? d.alt_host : "127.0.0.1";
    /* The certificate names localhost, 127.0.0.1 and ::1, not 127.0.0.2. */
    o.server_name = remote_like ? "localhost" : NULL;
    o.port = d.imap_port;
    o.security = IMK_SECURITY_STARTTLS;
    o.ca_file = d.ca_file;
    if (!remote_like)
        it_note("127.0.0.2 does not listen here: LOGINDISABLED before STARTTLS not checked");
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const char *t = imk_conn_transport(c);
    it_note("STARTTLS transport: %s", t);
    CHECK(starts_with(t, "TLSv1.3") || starts_with(t, "TLSv1.2"));
    CHECK(it_trace_sent_contains("starttls", 0, "STARTTLS"));
    if (remote_like) {
        /* Before TLS the server said LOGINDISABLED and offered no PLAIN. */
        CHECK(it_trace_received_contains("starttls", "LOGINDISABLED"));
        /* After TLS the client read the capabilities again. */
        CHECK(!imk_conn_has_capability(c, "LOGINDISABLED"));
    }
    CHECK(imk_conn_has_capability(c, "AUTH=PLAIN"));
    CHECK(!imk_conn_has_capability(c, "STARTTLS"));
    CHECK_INT(login_as(c, "PLAIN", IT_PASSWORD), 0);
    CHECK(!it_trace_sent_contains("starttls", 0, IT_PASSWORD));
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(c, "INBOX", NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    CHECK_INT(imk_conn_logout(c), 0);
    imk_conn_free(c);
}

static void test_starttls_not_offered(void)
{
    imk_conn_options o = it_options("no-starttls");
    o.host = "127.0.0.1";
    o.port = d.notls_port;
    o.security = IMK_SECURITY_STARTTLS;
    o.ca_file = d.ca_file;
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    int rc = imk_conn_connect(c);
    CHECK_INT(rc, IMK_ESECURITY);
    it_note("STARTTLS not offered: %s: %s", imk_error_name(rc), imk_conn_error(c));
    CHECK(strstr(imk_conn_error(c), "STARTTLS") != NULL);
    CHECK(!it_trace_sent_contains("no-starttls", 0, "LOGIN"));
    CHECK(!it_trace_sent_contains("no-starttls", 0, "AUTHENTICATE"));
    /* Nothing more can go over that connection. */
    const imk_result *r = NULL;
    CHECK(imk_conn_noop(c, &r) < 0);
    imk_conn_free(c);

    /* The same listener, in cleartext by choice: it works (so the refusal
     * above was the client's). */
    imk_conn_options p = it_options("no-starttls-plain");
    p.host = "127.0.0.1";
    p.port = d.notls_port;
    p.security = IMK_SECURITY_NONE;
    p.allow_cleartext_password = 1;
    c = it_connect_login(&p, IT_USER, IT_PASSWORD);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_STR(imk_conn_transport(c), "cleartext");
        imk_conn_logout(c);
        imk_conn_free(c);
    }
}

/* ---- implicit TLS ---- */

static void test_tls_mechanisms(void)
{
    for (size_t i = 0; i <= sizeof(password_mechs) / sizeof(password_mechs[0]) + 1; i++) {
        const char *mech = NULL;    /* as asked */
        const char *logged = NULL;  /* as Dovecot logs it */
        const char *on_wire = NULL; /* as the client sends it */
        if (i < 4) {
            mech = logged = password_mechs[i];
        } else if (i == 4) {
            mech = "LOGIN-COMMAND";
            logged = "PLAIN"; /* Dovecot runs the LOGIN command as PLAIN */
        } else {
            mech = NULL;
            logged = "SCRAM-SHA-256"; /* the best one offered */
        }
        char label[64], needle[96], wire[96];
        snprintf(label, sizeof(label), "tls-%s", mech != NULL ? mech : "default");
        snprintf(needle, sizeof(needle), "method=%s,", logged);
        if (mech == NULL || i < 4) {
            snprintf(wire, sizeof(wire), "AUTHENTICATE %s", logged);
            on_wire = wire;
        }
        int before = it_dovecot_log_count(&d, needle);
        imk_conn_options o = it_options_tls(&d, label);
        imk_conn *c = it_connect(&o);
        CHECK(c != NULL);
        if (c == NULL)
            continue;
        const char *t = imk_conn_transport(c);
        CHECK(starts_with(t, "TLSv1.3") || starts_with(t, "TLSv1.2"));
        int rc = login_as(c, mech, IT_PASSWORD);
        if (rc != 0)
            it_note("login with %s: %s: %s", label, imk_error_name(rc), imk_conn_error(c));
        CHECK_INT(rc, 0);
        if (on_wire != NULL)
            CHECK(it_trace_sent_contains(label, 0, on_wire));
        else {
            CHECK(!it_trace_sent_contains(label, 0, "AUTHENTICATE"));
            CHECK(it_trace_sent_contains(label, 0, " LOGIN "));
        }
        /* The trace redacts passwords and SASL exchanges (DESIGN.md 8). */
        CHECK(!it_trace_sent_contains(label, 0, IT_PASSWORD));
        CHECK(!it_trace_sent_contains(label, 0, "AGFsaWNlAHdvbmRlcmxhbmQ")); /* PLAIN */
        CHECK(!it_trace_sent_contains(label, 0, "d29uZGVybGFuZA"));          /* LOGIN */
        CHECK(wait_log_count(needle, before + 1) == before + 1);
        const imk_result *r = NULL;
        CHECK_INT(imk_conn_select(c, "INBOX", NULL, &r), 0);
        CHECK(r != NULL && r->status == IMK_STATUS_OK);
        CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_SELECTED);
        CHECK_INT(imk_conn_logout(c), 0);
        imk_conn_free(c);
    }
}

static void test_wrong_password(void)
{
    static const char *const mechs[] = {"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "LOGIN",
                                        "LOGIN-COMMAND"};
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        imk_conn_options o = it_options_tls(&d, "wrong-password");
        imk_conn *c = it_connect(&o);
        CHECK(c != NULL);
        if (c == NULL)
            return;
        int rc = login_as(c, mechs[i], "not-the-password");
        CHECK_INT(rc, IMK_EAUTH);
        it_note("wrong password (%s): %s", mechs[i], imk_conn_error(c));
        /* Dovecot's text: "[AUTHENTICATIONFAILED] Authentication failed." */
        CHECK(strstr(imk_conn_error(c), "Authentication failed") != NULL);
        CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_NOT_AUTHENTICATED);
        /* Not fatal: the right password then works on the same connection. */
        CHECK_INT(login_as(c, mechs[i], IT_PASSWORD), 0);
        CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_AUTHENTICATED);
        imk_conn_logout(c);
        imk_conn_free(c);
    }
    /* An unknown user is refused the same way. */
    imk_conn_options o = it_options_tls(&d, "wrong-user");
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c != NULL) {
        imk_auth a = IMK_AUTH_INIT;
        a.user = "mallory";
        a.password = IT_PASSWORD;
        CHECK_INT(imk_conn_login(c, &a), IMK_EAUTH);
        imk_conn_free(c);
    }
}

/* ---- certificates ---- */

/* Connect to `port` expecting a TLS failure whose message holds each of
 * the needles (NULL-terminated). Nothing at all may be sent. */
static void expect_tls_failure(const char *label, const char *port, const char *server_name,
                               const char *const *needles)
{
    imk_conn_options o = it_options_tls(&d, label);
    o.port = port;
    o.server_name = server_name;
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    int rc = imk_conn_connect(c);
    CHECK_INT(rc, IMK_ETLS);
    CHECK(imk_error_is_fatal(rc));
    const char *msg = imk_conn_error(c);
    it_note("%s: %s: %s", label, imk_error_name(rc), msg);
    for (size_t i = 0; needles != NULL && needles[i] != NULL; i++) {
        if (strstr(msg, needles[i]) == NULL) {
            it_note("%s: the message does not name \"%s\"", label, needles[i]);
            CHECK(strstr(msg, needles[i]) != NULL);
        }
    }
    CHECK_INT(it_trace_sent(label), 0);
    imk_conn_free(c);
}

static void test_bad_certificates(void)
{
    static const char *const wrong_host[] = {"127.0.0.1", "wrong.example", NULL};
    expect_tls_failure("cert-wrong-host", d.wronghost_port, NULL, wrong_host);
    static const char *const wrong_name[] = {"imap.example.net", "localhost", NULL};
    expect_tls_failure("cert-wrong-name", d.imaps_port, "imap.example.net", wrong_name);
    static const char *const expired[] = {"expired", NULL};
    expect_tls_failure("cert-expired", d.expired_port, NULL, expired);
    expect_tls_failure("cert-unknown-ca", d.unknownca_port, NULL, NULL);
    expect_tls_failure("cert-self-signed", d.selfsigned_port, NULL, NULL);
}

/* Connect with o and log in; then, with noop, a NOOP must be answered OK;
 * then LOGOUT. */
static void login_then_logout(const imk_conn_options *o, int noop)
{
    imk_conn *c = it_connect_login(o, IT_USER, IT_PASSWORD);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    if (noop) {
        const imk_result *r = NULL;
        CHECK_INT(imk_conn_noop(c, &r), 0);
        CHECK(r != NULL && r->status == IMK_STATUS_OK);
    }
    imk_conn_logout(c);
    imk_conn_free(c);
}

static void test_insecure_skip_verify(void)
{
    const char *ports[] = {d.wronghost_port, d.expired_port, d.unknownca_port, d.selfsigned_port};
    for (size_t i = 0; i < 4; i++) {
        imk_conn_options o = it_options_tls(&d, "insecure");
        o.port = ports[i];
        o.ca_file = NULL;
        o.tls_insecure_skip_verify = 1;
        login_then_logout(&o, 1);
    }
}

/* The name checked is "localhost" (a DNS name in the certificate), reached
 * over IPv4. */
static void test_tls_by_name(void)
{
    imk_conn_options o = it_options_tls(&d, "tls-localhost");
    o.host = "localhost";
    o.family = 4;
    login_then_logout(&o, 0);
}

static void test_ipv6(void)
{
    if (!d.ipv6) {
        it_note("::1 is not configured here: IPv6 case skipped");
        return;
    }
    imk_conn_options o = it_options_tls(&d, "tls-ipv6");
    o.host = "::1";
    login_then_logout(&o, 1);
    /* family = 6 forces IPv6 for a name; "localhost" may have no IPv6
     * address in /etc/hosts, so only the literal is required to work. */
}

static void test_connection_refused(void)
{
    imk_conn_options o = it_options("refused");
    o.host = "127.0.0.1";
    o.port = "1";
    o.security = IMK_SECURITY_NONE;
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    int rc = imk_conn_connect(c);
    CHECK_INT(rc, IMK_ENET);
    it_note("connection refused: %s", imk_conn_error(c));
    CHECK(strstr(imk_conn_error(c), "127.0.0.1") != NULL);
    imk_conn_free(c);
}

/* ---- COMPRESS=DEFLATE ---- */

static void test_compress(void)
{
    imk_conn_options o = it_options_tls(&d, "compress");
    o.compress = 1;
    imk_conn *c = it_connect_login(&o, IT_USER, IT_PASSWORD);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const char *t = imk_conn_transport(c);
    it_note("compressed transport: %s", t);
    CHECK(strstr(t, "COMPRESS=DEFLATE") != NULL);
    CHECK(starts_with(t, "TLSv1.3") || starts_with(t, "TLSv1.2"));
    CHECK(it_trace_sent_contains("compress", 0, "COMPRESS DEFLATE"));

    /* Data both ways through the compressed stream: a 300 KB message up,
     * then down again, compared byte for byte. */
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_create(c, "compressed", &r), 0);
    size_t big_len = 300 * 1000;
    char *big = it_big_message(big_len, 42);
    CHECK(big != NULL);
    if (big == NULL) {
        imk_conn_free(c);
        return;
    }
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = big;
    m.size = big_len;
    CHECK_INT(imk_conn_append(c, "compressed", &m, 1, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    uint32_t uid =
        r != NULL && r->has_appenduid && r->dest_uids.count > 0 ? r->dest_uids.ranges[0].first : 1;
    CHECK_INT(imk_conn_select(c, "compressed", NULL, &r), 0);
    CHECK_INT(imk_view_exists(imk_conn_view(c)), 1);
    CHECK(it_fetch_equals(c, uid, "BODY.PEEK[]", big, big_len));
    imk_message *msgs = NULL;
    size_t n = 0;
    CHECK_INT(imk_conn_fetch_messages(c, 1, "1:*", 0, &msgs, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(msgs[0].body_len, big_len);
        CHECK(msgs[0].body_len == big_len && memcmp(msgs[0].body, big, big_len) == 0);
        CHECK_INT(msgs[0].uid, uid);
    }
    imk_messages_free(c, msgs, n);
    CHECK_INT(imk_conn_delete(c, "compressed", &r), 0); /* selected: Dovecot allows it */
    free(big);
    CHECK_INT(imk_conn_logout(c), 0);
    imk_conn_free(c);
}

/* ---- the event-loop interface over TLS ---- */

typedef struct async_state {
    int connected, logged_in, noops, failed;
    int err;
} async_state;

static void on_connected(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    (void)res;
    async_state *s = user;
    s->connected = 1;
    if (err != 0) {
        s->failed = 1;
        s->err = err;
    }
}

static void on_logged_in(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    async_state *s = user;
    s->logged_in = 1;
    if (err != 0 || res == NULL || res->status != IMK_STATUS_OK) {
        s->failed = 1;
        s->err = err;
    }
}

static void on_noop(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    async_state *s = user;
    s->noops++;
    if (err != 0 || res == NULL || res->status != IMK_STATUS_OK) {
        s->failed = 1;
        s->err = err;
    }
}

static void test_async_tls(void)
{
    imk_conn_options o = it_options_tls(&d, "async");
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    async_state s;
    memset(&s, 0, sizeof(s));
    CHECK_INT(imk_conn_connect_async(c, on_connected, &s), 0);
    CHECK_INT(it_loop(c, &s.connected, 15000), 0);
    CHECK(s.connected && !s.failed);
    if (s.failed)
        it_note("async connect: %s: %s", imk_error_name(s.err), imk_conn_error(c));
    imk_auth a = IMK_AUTH_INIT;
    a.user = IT_USER;
    a.password = IT_PASSWORD;
    if (s.connected && !s.failed) {
        CHECK_INT(imk_conn_login_async(c, &a, on_logged_in, &s), 0);
        CHECK_INT(it_loop(c, &s.logged_in, 15000), 0);
        CHECK(s.logged_in && !s.failed);
        for (int i = 0; i < 3; i++)
            CHECK_INT(imk_conn_noop_async(c, on_noop, &s), 0);
        int three = 0;
        for (int64_t end = it_now_ms() + 15000; s.noops < 3 && it_now_ms() < end;) {
            int rc = it_loop(c, &three, 100);
            if (rc != 0 && rc != IMK_ETIMEDOUT) {
                CHECK_INT(rc, 0);
                break;
            }
        }
        CHECK_INT(s.noops, 3);
        CHECK(!s.failed);
    }
    imk_conn_free(c);
}

int main(void)
{
    it_init("test_it_tls", 110);
    it_dovecot_start(&d, 1);
    IT_RUN(test_cleartext_allowed);
    IT_RUN(test_cleartext_refused);
    IT_RUN(test_cleartext_default_uses_scram);
    IT_RUN(test_starttls);
    IT_RUN(test_starttls_not_offered);
    IT_RUN(test_tls_mechanisms);
    IT_RUN(test_wrong_password);
    IT_RUN(test_bad_certificates);
    IT_RUN(test_insecure_skip_verify);
    IT_RUN(test_tls_by_name);
    IT_RUN(test_ipv6);
    IT_RUN(test_connection_refused);
    IT_RUN(test_compress);
    IT_RUN(test_async_tls);
    it_dovecot_stop(&d);
    return test_finish();
}
