/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/net/sasl.c. The server side of PLAIN, LOGIN, SCRAM-SHA-1
 * and SCRAM-SHA-256 is GNU SASL's own server, run in this process; base64
 * goes back and forth the way IMAP carries it (SASL-IR or an empty first
 * challenge, "+ " challenges, the SCRAM server-final as a last challenge
 * answered by an empty line, then the tagged OK = imk__sasl_finish).
 * OAUTHBEARER and XOAUTH2 are checked byte for byte. Also: the mechanism
 * choice and the cleartext rule, allocation failure at every allocation
 * with a leak count, and an allocator that looks inside every block freed
 * for the password or token (the secrets must be wiped first).
 */
#define _POSIX_C_SOURCE 200809L

#include "test.h"

#include "net/sasl.h"

#include <gsasl.h>

#define USER "alice"
#define PASSWORD "correct horse"
#define TOKEN "ya29.tok3n-SECRET"

/* ---- the in-process gsasl server ---- */

typedef struct server_conf {
    const char *user;
    const char *password;
    const char *seen_authzid; /* copied out after the exchange */
    char authzid[64];
} server_conf;

static Gsasl *srv_ctx;
static server_conf srv_conf;

static int server_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    (void)ctx;
    const char *authid = gsasl_property_fast(sctx, GSASL_AUTHID);
    const char *authzid = gsasl_property_fast(sctx, GSASL_AUTHZID);
    snprintf(srv_conf.authzid, sizeof(srv_conf.authzid), "%s", authzid ? authzid : "");
    switch (prop) {
    case GSASL_PASSWORD:
        if (authid == NULL || strcmp(authid, srv_conf.user) != 0)
            return GSASL_NO_CALLBACK;
        return gsasl_property_set(sctx, GSASL_PASSWORD, srv_conf.password);
    case GSASL_SCRAM_ITER:
        return gsasl_property_set(sctx, GSASL_SCRAM_ITER, "4096");
    case GSASL_SCRAM_SALT:
        return gsasl_property_set(sctx, GSASL_SCRAM_SALT, "c2FsdHlzYWx0c2FsdA==");
    default:
        return GSASL_NO_CALLBACK;
    }
}

static Gsasl_session *server_start(const char *mech)
{
    Gsasl_session *srv = NULL;
    int grc = gsasl_server_start(srv_ctx, mech, &srv);
    CHECK_INT(grc, GSASL_OK);
    return srv;
}

/* Run a server step on base64 text (NULL: nothing yet). */
static int server_step(Gsasl_session *srv, const char *b64, char **out)
{
    *out = NULL;
    return gsasl_step64(srv, b64, out);
}

/* ---- helpers ---- */

static imk__sasl_creds password_creds(void)
{
    imk__sasl_creds c = {USER, PASSWORD, NULL, NULL, NULL, NULL};
    return c;
}

static imk__sasl_creds token_creds(void)
{
    imk__sasl_creds c = {"alice@example.com", NULL, NULL, TOKEN, "imap.example.com", "993"};
    return c;
}

static const char *const ALL_MECHS[] = {"PLAIN",       "LOGIN",   "SCRAM-SHA-1", "SCRAM-SHA-256",
                                        "OAUTHBEARER", "XOAUTH2", "CRAM-MD5"};
#define N_ALL (sizeof(ALL_MECHS) / sizeof(ALL_MECHS[0]))

/* One mechanism offered, secure transport: the common case for exchanges. */
static imk__sasl *new_one(const imk__sasl_creds *c, const char *mech, const imk_allocator *a,
                          int *rc_out)
{
    const char *offered[] = {mech};
    imk__sasl *s = NULL;
    int rc = imk__sasl_new(c, offered, 1, NULL, 1, 0, a, &s);
    if (rc_out != NULL)
        *rc_out = rc;
    else
        CHECK_INT(rc, 0);
    return s;
}

static char *decode(const char *b64, size_t *len)
{
    char *raw = NULL;
    *len = 0;
    if (strcmp(b64, "=") == 0 || b64[0] == '\0')
        return calloc(1, 1);
    CHECK_INT(gsasl_base64_from(b64, strlen(b64), &raw, len), GSASL_OK);
    return raw;
}

static char *encode(const char *raw, size_t len)
{
    char *b64 = NULL;
    CHECK_INT(gsasl_base64_to(raw, len, &b64, NULL), GSASL_OK);
    return b64;
}

/*
 * The IMAP exchange against the gsasl server.
 *   client_rc: first negative code from imk__sasl_initial/step (0 if none);
 *   server_rc: the server's last gsasl code (GSASL_OK: tagged OK);
 *   finish_rc: imk__sasl_finish after the tagged OK (1 if not reached).
 */
typedef struct exch {
    int client_rc, server_rc, finish_rc;
    int rounds;
} exch;

static exch run_exchange(imk__sasl *c, const char *mech, int use_ir)
{
    exch r = {0, -1, 1, 0};
    Gsasl_session *srv = server_start(mech);
    if (srv == NULL)
        return r;
    char *to_server = NULL; /* NULL: the command had no initial response */
    const char *b64 = NULL;
    if (use_ir) {
        int rc = imk__sasl_initial(c, &b64);
        if (rc < 0) {
            r.client_rc = rc;
            gsasl_finish(srv);
            return r;
        }
        if (rc == 1)
            to_server = strdup(strcmp(b64, "=") == 0 ? "" : b64);
        else
            CHECK(b64 == NULL);
    }
    for (r.rounds = 0; r.rounds < 10; r.rounds++) {
        char *srv_out = NULL;
        r.server_rc = server_step(srv, to_server, &srv_out);
        free(to_server);
        to_server = NULL;
        if (r.server_rc == GSASL_NEEDS_MORE) {
            int rc = imk__sasl_step(c, srv_out, strlen(srv_out), &b64);
            free(srv_out);
            if (rc < 0) {
                r.client_rc = rc;
                CHECK(b64 == NULL);
                break;
            }
            to_server = strdup(b64);
            continue;
        }
        if (r.server_rc == GSASL_OK) {
            /* IMAP has no success data: the server sends it as a last
             * challenge ("+ v=..."), the client answers with an empty line. */
            if (srv_out != NULL && srv_out[0] != '\0') {
                int rc = imk__sasl_step(c, srv_out, strlen(srv_out), &b64);
                if (rc < 0)
                    r.client_rc = rc;
                else
                    CHECK_STR(b64, "");
            }
            free(srv_out);
            if (r.client_rc == 0)
                r.finish_rc = imk__sasl_finish(c);
            break;
        }
        free(srv_out); /* the server failed: tagged NO */
        break;
    }
    gsasl_finish(srv);
    return r;
}

/* The initial response of `s` decodes to `expect` (expect_len bytes), or
 * begins with it when `prefix`. */
static void check_initial(imk__sasl *s, const char *expect, size_t expect_len, int prefix)
{
    const char *b64 = NULL;
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    if (b64 == NULL)
        return;
    size_t n;
    char *raw = decode(b64, &n);
    if (prefix)
        CHECK(n > expect_len && memcmp(raw, expect, expect_len) == 0);
    else
        CHECK_MEM(raw, n, expect, expect_len);
    free(raw);
}

#define CHECK_INITIAL(s, lit) check_initial((s), (lit), sizeof(lit) - 1, 0)

/* The same for a new exchange of `mech` with `c`. */
static void initial_of(const imk__sasl_creds *c, const char *mech, const char *expect,
                       size_t expect_len, int prefix)
{
    imk__sasl *s = new_one(c, mech, NULL, NULL);
    check_initial(s, expect, expect_len, prefix);
    imk__sasl_free(s);
}

#define INITIAL_IS(c, mech, lit) initial_of((c), (mech), (lit), sizeof(lit) - 1, 0)
#define INITIAL_BEGINS(c, mech, lit) initial_of((c), (mech), (lit), sizeof(lit) - 1, 1)

/* ---- exchanges through gsasl ---- */

static void exchange_ok(const char *mech, int use_ir)
{
    imk__sasl_creds c = password_creds();
    imk__sasl *s = new_one(&c, mech, NULL, NULL);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_STR(imk__sasl_mech(s), mech);
    exch r = run_exchange(s, mech, use_ir);
    CHECK_INT(r.client_rc, 0);
    CHECK_INT(r.server_rc, GSASL_OK);
    CHECK_INT(r.finish_rc, 0);
    CHECK_STR(imk__sasl_error(s), "");
    imk__sasl_free(s);
}

static void exchange_wrong_password(const char *mech)
{
    imk__sasl_creds c = password_creds();
    c.password = "wrong horse";
    imk__sasl *s = new_one(&c, mech, NULL, NULL);
    if (s == NULL)
        return;
    exch r = run_exchange(s, mech, 1);
    CHECK_INT(r.client_rc, 0);
    CHECK_INT(r.server_rc, GSASL_AUTHENTICATION_ERROR);
    CHECK_INT(r.finish_rc, 1);
    imk__sasl_free(s);
}

static void test_exchanges_ok(void)
{
    const char *names[] = {"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"};
    for (size_t i = 0; i < 4; i++) {
        exchange_ok(names[i], 1);
        exchange_ok(names[i], 0);
    }
}

static void test_exchanges_wrong_password(void)
{
    exchange_wrong_password("PLAIN");
    exchange_wrong_password("LOGIN");
    exchange_wrong_password("SCRAM-SHA-1");
    exchange_wrong_password("SCRAM-SHA-256");
}

static void test_plain_bytes_and_authzid(void)
{
    imk__sasl_creds c = password_creds();
    INITIAL_IS(&c, "PLAIN", "\0alice\0correct horse");

    c.authzid = "admin";
    INITIAL_IS(&c, "PLAIN", "admin\0alice\0correct horse");

    /* The gsasl server sees the authzid. */
    imk__sasl *s = new_one(&c, "PLAIN", NULL, NULL);
    exch r = run_exchange(s, "PLAIN", 1);
    CHECK_INT(r.server_rc, GSASL_OK);
    CHECK_STR(srv_conf.authzid, "admin");
    imk__sasl_free(s);

    s = new_one(&c, "SCRAM-SHA-256", NULL, NULL);
    r = run_exchange(s, "SCRAM-SHA-256", 1);
    CHECK_INT(r.server_rc, GSASL_OK);
    CHECK_INT(r.finish_rc, 0);
    CHECK_STR(srv_conf.authzid, "admin");
    imk__sasl_free(s);
}

static void test_scram_client_first(void)
{
    /* No channel binding: gs2 flag "n" (RFC 5802 section 7), never "y"/"p". */
    imk__sasl_creds c = password_creds();
    INITIAL_BEGINS(&c, "SCRAM-SHA-1", "n,,n=alice,r=");

    c.authzid = "admin";
    INITIAL_BEGINS(&c, "SCRAM-SHA-256", "n,a=admin,n=alice,r=");
}

/* A SCRAM exchange with the password credentials, run up to the server's
 * final message: `final_b64` (malloc'ed) is what the server sends next. */
typedef struct scram_run {
    imk__sasl *s;
    Gsasl_session *srv;
    char *final_b64;
} scram_run;

static scram_run scram_until_server_final(const char *mech)
{
    imk__sasl_creds c = password_creds();
    scram_run x = {new_one(&c, mech, NULL, NULL), server_start(mech), NULL};
    const char *b64 = NULL;
    CHECK_INT(imk__sasl_initial(x.s, &b64), 1);
    char *challenge = NULL;
    CHECK_INT(server_step(x.srv, b64, &challenge), GSASL_NEEDS_MORE);
    CHECK_INT(imk__sasl_step(x.s, challenge, strlen(challenge), &b64), 0);
    free(challenge);
    CHECK_INT(server_step(x.srv, b64, &x.final_b64), GSASL_OK);
    return x;
}

static void scram_run_free(scram_run *x)
{
    free(x->final_b64);
    gsasl_finish(x->srv);
    imk__sasl_free(x->s);
}

static void test_scram_tampered_server_final(void)
{
    const char *names[] = {"SCRAM-SHA-1", "SCRAM-SHA-256"};
    for (size_t i = 0; i < 2; i++) {
        scram_run x = scram_until_server_final(names[i]);
        imk__sasl *s = x.s;
        size_t n;
        char *raw = decode(x.final_b64, &n);
        CHECK(n > 4 && memcmp(raw, "v=", 2) == 0);
        raw[4] = raw[4] == 'A' ? 'B' : 'A'; /* one signature character */
        char *tampered = encode(raw, n);
        const char *b64 = "x";
        CHECK_INT(imk__sasl_step(s, tampered, strlen(tampered), &b64), IMK_EAUTH);
        CHECK(b64 == NULL);
        CHECK(strstr(imk__sasl_error(s), "signature does not verify") != NULL);
        /* The server says OK anyway: finish refuses it. */
        CHECK_INT(imk__sasl_finish(s), IMK_EAUTH);
        /* And the exchange is over. */
        CHECK_INT(imk__sasl_step(s, x.final_b64, strlen(x.final_b64), &b64), IMK_ESTATE);
        free(raw);
        free(tampered);
        scram_run_free(&x);
    }
}

static void test_scram_finish_before_server_final(void)
{
    scram_run x = scram_until_server_final("SCRAM-SHA-256");
    /* The tagged OK arrives without the "+ v=..." line. */
    CHECK_INT(imk__sasl_finish(x.s), IMK_EAUTH);
    CHECK(strstr(imk__sasl_error(x.s), "before proving it knows the password") != NULL);
    scram_run_free(&x);

    /* OK right after the client-first message. */
    imk__sasl_creds c = password_creds();
    imk__sasl *s = new_one(&c, "SCRAM-SHA-1", NULL, NULL);
    const char *b64 = NULL;
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_finish(s), IMK_EAUTH);
    imk__sasl_free(s);

    /* PLAIN has no server proof: OK is fine. finish() also wipes the last
     * response (the password's base64), still valid memory until free. */
    s = new_one(&c, "PLAIN", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK(b64[0] != '\0');
    CHECK_INT(imk__sasl_finish(s), 0);
    CHECK_STR(b64, "");
    imk__sasl_free(s);
}

/* SCRAM-SHA-1 refuses `challenge` (base64) as the server-first message:
 * IMK_EAUTH, with a message holding `part`. */
static void scram_first_refused(const imk__sasl_creds *c, const char *challenge, const char *part)
{
    imk__sasl *s = new_one(c, "SCRAM-SHA-1", NULL, NULL);
    const char *b64 = NULL;
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_step(s, challenge, strlen(challenge), &b64), IMK_EAUTH);
    CHECK(strstr(imk__sasl_error(s), part) != NULL);
    imk__sasl_free(s);
}

static void test_scram_server_error_and_malformed(void)
{
    scram_run x = scram_until_server_final("SCRAM-SHA-256");
    char *err = encode("e=invalid-proof", 15);
    const char *b64 = "x";
    CHECK_INT(imk__sasl_step(x.s, err, strlen(err), &b64), IMK_EAUTH);
    CHECK(b64 == NULL);
    CHECK(strstr(imk__sasl_error(x.s), "invalid-proof") != NULL);
    CHECK_INT(imk__sasl_finish(x.s), IMK_EAUTH);
    free(err);
    scram_run_free(&x);
    imk__sasl_creds c = password_creds();

    /* Not base64. */
    scram_first_refused(&c, "%%%", "not base64");
    /* Base64, but not a server-first message. */
    char *junk = encode("hello", 5);
    scram_first_refused(&c, junk, "SCRAM-SHA-1");
    free(junk);
    /* A server-first whose nonce does not extend ours. */
    const char *sf = "r=someoneelse,s=c2FsdA==,i=4096";
    junk = encode(sf, strlen(sf));
    scram_first_refused(&c, junk, "nonce");
    free(junk);
}

static void test_call_order(void)
{
    imk__sasl_creds c = password_creds();
    const char *b64 = NULL;

    /* PLAIN is complete after its one message: a further challenge must not
     * make it send the password again. */
    imk__sasl *s = new_one(&c, "PLAIN", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_step(s, "", 0, &b64), IMK_EAUTH);
    CHECK(b64 == NULL);
    CHECK(strstr(imk__sasl_error(s), "after the PLAIN exchange was complete") != NULL);
    imk__sasl_free(s);

    /* initial() only once, and only first. */
    s = new_one(&c, "SCRAM-SHA-256", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_initial(s, &b64), IMK_ESTATE);
    imk__sasl_free(s);
    s = new_one(&c, "PLAIN", NULL, NULL);
    CHECK_INT(imk__sasl_step(s, "", 0, &b64), 0); /* empty challenge: the initial response */
    size_t n;
    char *raw = decode(b64, &n);
    CHECK_MEM(raw, n, "\0alice\0correct horse", 20);
    free(raw);
    CHECK_INT(imk__sasl_initial(s, &b64), IMK_ESTATE);
    imk__sasl_free(s);

    /* LOGIN has no initial response. */
    s = new_one(&c, "LOGIN", NULL, NULL);
    b64 = "x";
    CHECK_INT(imk__sasl_initial(s, &b64), 0);
    CHECK(b64 == NULL);
    /* Its prompts are not even decoded. */
    CHECK_INT(imk__sasl_step(s, "Username:", 9, &b64), 0);
    CHECK_STR(b64, "YWxpY2U="); /* alice */
    CHECK_INT(imk__sasl_step(s, "UGFzc3dvcmQ6", 12, &b64), 0);
    raw = decode(b64, &n);
    CHECK_MEM(raw, n, PASSWORD, strlen(PASSWORD));
    free(raw);
    CHECK_INT(imk__sasl_finish(s), 0);
    imk__sasl_free(s);

    /* Bad arguments. */
    CHECK_INT(imk__sasl_new(&c, ALL_MECHS, N_ALL, NULL, 1, 0, NULL, NULL), IMK_EINVAL);
    s = new_one(&c, "PLAIN", NULL, NULL);
    CHECK_INT(imk__sasl_step(s, NULL, 3, &b64), IMK_EINVAL);
    CHECK_INT(imk__sasl_initial(s, NULL), IMK_EINVAL);
    imk__sasl_free(s);
    imk__sasl_free(NULL);
    CHECK_STR(imk__sasl_error(NULL), "");
    CHECK_STR(imk__sasl_mech(NULL), "");
}

/* ---- OAUTHBEARER and XOAUTH2 ---- */

static void test_oauthbearer_bytes(void)
{
    imk__sasl_creds c = token_creds();
    imk__sasl *s = new_one(&c, "OAUTHBEARER", NULL, NULL);
    CHECK_STR(imk__sasl_mech(s), "OAUTHBEARER");
    CHECK_INITIAL(s, "n,a=alice@example.com,\x01host=imap.example.com\x01port=993\x01"
                     "auth=Bearer ya29.tok3n-SECRET\x01\x01");
    CHECK_INT(imk__sasl_finish(s), 0);
    imk__sasl_free(s);

    /* The authzid wins over the user, with "," and "=" escaped (RFC 5801). */
    c.authzid = "a,b=c";
    c.port = NULL;
    INITIAL_IS(&c, "OAUTHBEARER",
               "n,a=a=2Cb=3Dc,\x01host=imap.example.com\x01"
               "auth=Bearer ya29.tok3n-SECRET\x01\x01");

    /* Nothing optional. */
    imk__sasl_creds bare = {NULL, NULL, NULL, "T", NULL, NULL};
    INITIAL_IS(&bare, "oauthbearer",
               "n,,\x01"
               "auth=Bearer T\x01\x01");

    /* Without SASL-IR: the empty challenge gets the same message. */
    c = token_creds();
    s = new_one(&c, "OAUTHBEARER", NULL, NULL);
    const char *b64 = NULL;
    CHECK_INT(imk__sasl_step(s, "", 0, &b64), 0);
    size_t n;
    char *raw = decode(b64, &n);
    static const char expect[] = "n,a=alice@example.com,\x01host=imap.example.com\x01port=993\x01"
                                 "auth=Bearer ya29.tok3n-SECRET\x01\x01";
    CHECK_MEM(raw, n, expect, sizeof(expect) - 1);
    free(raw);
    imk__sasl_free(s);

    /* A control byte would forge a kvpair. */
    c.oauth_token = "tok\x01host=evil";
    s = NULL;
    const char *offered[] = {"OAUTHBEARER"};
    CHECK_INT(imk__sasl_new(&c, offered, 1, NULL, 1, 0, NULL, &s), IMK_EINVAL);
    CHECK(s != NULL);
    CHECK(strstr(imk__sasl_error(s), "control character") != NULL);
    CHECK_STR(imk__sasl_mech(s), "");
    imk__sasl_free(s);
}

static void test_xoauth2_bytes(void)
{
    imk__sasl_creds c = token_creds();
    imk__sasl *s = new_one(&c, "XOAUTH2", NULL, NULL);
    CHECK_STR(imk__sasl_mech(s), "XOAUTH2");
    CHECK_INITIAL(s, "user=alice@example.com\x01"
                     "auth=Bearer ya29.tok3n-SECRET\x01\x01");
    imk__sasl_free(s);

    /* XOAUTH2 needs a user and cannot carry an authzid. */
    imk__sasl_creds no_user = {NULL, NULL, NULL, TOKEN, NULL, NULL};
    const char *offered[] = {"XOAUTH2"};
    s = NULL;
    CHECK_INT(imk__sasl_new(&no_user, offered, 1, NULL, 1, 0, NULL, &s), IMK_ENOTSUP);
    imk__sasl_free(s);
    c.authzid = "boss";
    s = NULL;
    CHECK_INT(imk__sasl_new(&c, offered, 1, NULL, 1, 0, NULL, &s), IMK_ENOTSUP);
    imk__sasl_free(s);
}

static void test_oauth_error_challenge(void)
{
    static const char json[] =
        "{\"status\":\"invalid_token\",\"scope\":\"https://mail.google.com/\"}";
    char *challenge = encode(json, sizeof(json) - 1);
    const char *b64 = NULL;

    imk__sasl_creds c = token_creds();
    imk__sasl *s = new_one(&c, "OAUTHBEARER", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_step(s, challenge, strlen(challenge), &b64), 0);
    CHECK_STR(b64, "AQ=="); /* %x01, RFC 7628 section 3.2.3 */
    CHECK(strstr(imk__sasl_error(s), json) != NULL);
    /* A second challenge is not in the protocol. */
    CHECK_INT(imk__sasl_step(s, challenge, strlen(challenge), &b64), IMK_EAUTH);
    imk__sasl_free(s);

    s = new_one(&c, "XOAUTH2", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    CHECK_INT(imk__sasl_step(s, challenge, strlen(challenge), &b64), 0);
    CHECK_STR(b64, "");
    CHECK(strstr(imk__sasl_error(s), json) != NULL);
    imk__sasl_free(s);

    /* Without SASL-IR: empty challenge, initial response, then the error. */
    s = new_one(&c, "XOAUTH2", NULL, NULL);
    CHECK_INT(imk__sasl_step(s, "", 0, &b64), 0);
    CHECK(strlen(b64) > 10);
    CHECK_INT(imk__sasl_step(s, challenge, strlen(challenge), &b64), 0);
    CHECK_STR(b64, "");
    CHECK(strstr(imk__sasl_error(s), "invalid_token") != NULL);
    imk__sasl_free(s);

    /* A report with a line break stays one line in the message. */
    s = new_one(&c, "OAUTHBEARER", NULL, NULL);
    CHECK_INT(imk__sasl_initial(s, &b64), 1);
    char *multi = encode("{\n\"status\":\"401\"}", 17);
    CHECK_INT(imk__sasl_step(s, multi, strlen(multi), &b64), 0);
    CHECK(strchr(imk__sasl_error(s), '\n') == NULL);
    CHECK(strstr(imk__sasl_error(s), "\"status\":\"401\"") != NULL);
    free(multi);
    imk__sasl_free(s);
    free(challenge);
}

/* ---- mechanism choice ---- */

/* Choose from `offered`; returns the code, *mech the chosen name. */
static int choose(const imk__sasl_creds *c, const char *const *offered, size_t n,
                  const char *prefer, int secure, int allow, char *mech, char *err)
{
    imk__sasl *s = NULL;
    int rc = imk__sasl_new(c, offered, n, prefer, secure, allow, NULL, &s);
    CHECK(s != NULL);
    snprintf(mech, 32, "%s", imk__sasl_mech(s));
    snprintf(err, 1024, "%s", imk__sasl_error(s));
    if (rc < 0) {
        const char *b64 = NULL;
        CHECK_INT(imk__sasl_initial(s, &b64), IMK_ESTATE);
        CHECK_INT(imk__sasl_step(s, "", 0, &b64), IMK_ESTATE);
    }
    imk__sasl_free(s);
    return rc;
}

static void test_choice_order(void)
{
    imk__sasl_creds c = password_creds();
    char mech[32], err[1024];
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-256");
    const char *no256[] = {"LOGIN", "PLAIN", "SCRAM-SHA-1"};
    CHECK_INT(choose(&c, no256, 3, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-1");
    const char *lower[] = {"login", "plain"};
    CHECK_INT(choose(&c, lower, 2, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "PLAIN");
    const char *login[] = {"XOAUTH2", "Login"};
    CHECK_INT(choose(&c, login, 2, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "LOGIN");
}

static void test_choice_prefer(void)
{
    imk__sasl_creds c = password_creds();
    char mech[32], err[1024];
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "plain scram-sha-256", 1, 0, mech, err), 0);
    CHECK_STR(mech, "PLAIN");
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "  Scram-Sha-1\tPLAIN ", 1, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-1");
    /* The list limits the choice. */
    const char *plain_only[] = {"PLAIN"};
    CHECK_INT(choose(&c, plain_only, 1, "SCRAM-SHA-256 LOGIN", 1, 0, mech, err), IMK_ENOTSUP);
    CHECK_STR(err, "no usable SASL mechanism: the server offers PLAIN; with a password and the "
                   "mechanisms asked for imapkit can use SCRAM-SHA-256 LOGIN");
    /* Token mechanisms in the list do not fit a password. */
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "OAUTHBEARER XOAUTH2", 1, 0, mech, err), IMK_ENOTSUP);
    CHECK(strstr(err, "can use none") != NULL);
    /* An empty list is the default. */
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, " ", 1, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-256");
    /* LOGIN-COMMAND is the client's fallback: skipped here... */
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "LOGIN-COMMAND plain", 1, 0, mech, err), 0);
    CHECK_STR(mech, "PLAIN");
    /* ...and alone it means no SASL at all. */
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "login-command", 1, 0, mech, err), IMK_ENOTSUP);
    /* Unknown words are an error that names them. */
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "SCRAM-SHA-256 DIGEST-MD5", 1, 0, mech, err),
              IMK_EINVAL);
    CHECK(strstr(err, "\"DIGEST-MD5\"") != NULL);
    CHECK(strstr(err, "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN OAUTHBEARER XOAUTH2") != NULL);
    CHECK_INT(choose(&c, ALL_MECHS, N_ALL, "CRAM-MD5", 1, 0, mech, err), IMK_EINVAL);
    CHECK_STR(mech, "");
}

static void test_choice_token_vs_password(void)
{
    char mech[32], err[1024];
    imk__sasl_creds t = token_creds();
    CHECK_INT(choose(&t, ALL_MECHS, N_ALL, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "OAUTHBEARER");
    const char *x[] = {"PLAIN", "XOAUTH2"};
    CHECK_INT(choose(&t, x, 2, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "XOAUTH2");
    const char *plain[] = {"PLAIN", "SCRAM-SHA-256"};
    CHECK_INT(choose(&t, plain, 2, NULL, 1, 0, mech, err), IMK_ENOTSUP);
    CHECK_STR(err, "no usable SASL mechanism: the server offers PLAIN SCRAM-SHA-256; with an "
                   "OAuth token imapkit can use OAUTHBEARER XOAUTH2");

    /* Both: the token first, the password when no token mechanism fits. */
    imk__sasl_creds both = token_creds();
    both.password = PASSWORD;
    CHECK_INT(choose(&both, ALL_MECHS, N_ALL, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "OAUTHBEARER");
    CHECK_INT(choose(&both, plain, 2, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-256");

    /* The password mechanisms need a password, not just a token. */
    CHECK_INT(choose(&t, ALL_MECHS, N_ALL, "PLAIN", 1, 0, mech, err), IMK_ENOTSUP);

    /* LOGIN cannot carry an authzid. */
    imk__sasl_creds az = password_creds();
    az.authzid = "boss";
    const char *login[] = {"LOGIN"};
    CHECK_INT(choose(&az, login, 1, NULL, 1, 0, mech, err), IMK_ENOTSUP);
    CHECK_STR(err, "no usable SASL mechanism: the server offers LOGIN; with a password imapkit "
                   "can use SCRAM-SHA-256 SCRAM-SHA-1 PLAIN");

    /* No secret at all; a password without a user. */
    imk__sasl_creds none = {USER, NULL, NULL, NULL, NULL, NULL};
    CHECK_INT(choose(&none, ALL_MECHS, N_ALL, NULL, 1, 0, mech, err), IMK_EINVAL);
    CHECK(strstr(err, "no password or OAuth token") != NULL);
    imk__sasl_creds nouser = {NULL, PASSWORD, NULL, NULL, NULL, NULL};
    CHECK_INT(choose(&nouser, ALL_MECHS, N_ALL, NULL, 1, 0, mech, err), IMK_EINVAL);
    imk__sasl *s = NULL;
    CHECK_INT(imk__sasl_new(NULL, ALL_MECHS, N_ALL, NULL, 1, 0, NULL, &s), IMK_EINVAL);
    imk__sasl_free(s);
}

static void test_choice_security(void)
{
    char mech[32], err[1024];
    imk__sasl_creds c = password_creds();
    const char *cleartext[] = {"PLAIN", "LOGIN"};
    CHECK_INT(choose(&c, cleartext, 2, NULL, 0, 0, mech, err), IMK_ESECURITY);
    CHECK_STR(err, "refusing to send the password for PLAIN without TLS: connect with TLS or "
                   "STARTTLS, or allow cleartext passwords explicitly");
    CHECK_STR(mech, "");
    const char *login[] = {"LOGIN"};
    CHECK_INT(choose(&c, login, 1, NULL, 0, 0, mech, err), IMK_ESECURITY);
    CHECK(strstr(err, "password for LOGIN without TLS") != NULL);
    /* SCRAM never reveals the password: allowed in the clear. */
    const char *mixed[] = {"PLAIN", "SCRAM-SHA-1"};
    CHECK_INT(choose(&c, mixed, 2, NULL, 0, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-1");
    CHECK_INT(choose(&c, mixed, 2, "PLAIN SCRAM-SHA-1", 0, 0, mech, err), 0);
    CHECK_STR(mech, "SCRAM-SHA-1");
    /* Explicitly allowed, or over TLS. */
    CHECK_INT(choose(&c, cleartext, 2, NULL, 0, 1, mech, err), 0);
    CHECK_STR(mech, "PLAIN");
    CHECK_INT(choose(&c, cleartext, 2, NULL, 1, 0, mech, err), 0);
    CHECK_STR(mech, "PLAIN");

    imk__sasl_creds t = token_creds();
    CHECK_INT(choose(&t, ALL_MECHS, N_ALL, NULL, 0, 0, mech, err), IMK_ESECURITY);
    CHECK_STR(err, "refusing to send the OAuth token for OAUTHBEARER without TLS: connect with "
                   "TLS or STARTTLS, or allow cleartext passwords explicitly");
    const char *x[] = {"XOAUTH2"};
    CHECK_INT(choose(&t, x, 1, NULL, 0, 0, mech, err), IMK_ESECURITY);
    CHECK_INT(choose(&t, x, 1, NULL, 0, 1, mech, err), 0);
    CHECK_STR(mech, "XOAUTH2");

    /* The LOGIN command follows the same rule. */
    char buf[256] = "junk";
    CHECK_INT(imk__sasl_login_allowed(0, 0, buf, sizeof(buf)), IMK_ESECURITY);
    CHECK_STR(buf, "refusing to send the password with the LOGIN command without TLS: connect "
                   "with TLS or STARTTLS, or allow cleartext passwords explicitly");
    CHECK_INT(imk__sasl_login_allowed(1, 0, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "");
    CHECK_INT(imk__sasl_login_allowed(0, 1, buf, sizeof(buf)), 0);
    CHECK_INT(imk__sasl_login_allowed(0, 0, NULL, 0), IMK_ESECURITY);
    char tiny[8];
    CHECK_INT(imk__sasl_login_allowed(0, 0, tiny, sizeof(tiny)), IMK_ESECURITY);
    CHECK_STR(tiny, "refusin");
}

static void test_choice_nothing_offered(void)
{
    char mech[32], err[1024];
    imk__sasl_creds c = password_creds();
    const char *other[] = {"CRAM-MD5", "GSSAPI"};
    CHECK_INT(choose(&c, other, 2, NULL, 1, 0, mech, err), IMK_ENOTSUP);
    CHECK_STR(err, "no usable SASL mechanism: the server offers CRAM-MD5 GSSAPI; with a password "
                   "imapkit can use SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN");
    CHECK_INT(choose(&c, NULL, 0, NULL, 1, 0, mech, err), IMK_ENOTSUP);
    CHECK_STR(err, "no usable SASL mechanism: the server offers none; with a password "
                   "imapkit can use SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN");
    /* Server text is kept printable. */
    const char *odd[] = {"X\nY"};
    CHECK_INT(choose(&c, odd, 1, NULL, 1, 0, mech, err), IMK_ENOTSUP);
    CHECK(strstr(err, "offers X Y;") != NULL);
}

/* ---- allocation failure ---- */

static int alloc_exchange(const char *mech, const imk__sasl_creds *c, const imk_allocator *a,
                          int *completed)
{
    int rc;
    *completed = 0;
    imk__sasl *s = new_one(c, mech, a, &rc);
    if (rc < 0) {
        CHECK(rc != IMK_ENOMEM || s == NULL);
        imk__sasl_free(s);
        return rc;
    }
    if (c->oauth_token != NULL) {
        const char *b64 = NULL;
        rc = imk__sasl_initial(s, &b64);
        if (rc >= 0)
            rc = imk__sasl_finish(s);
    } else {
        exch r = run_exchange(s, mech, 1);
        rc = r.client_rc;
        if (rc == 0) {
            CHECK_INT(r.server_rc, GSASL_OK);
            CHECK_INT(r.finish_rc, 0);
            rc = r.finish_rc;
        }
    }
    *completed = rc == 0;
    imk__sasl_free(s);
    return rc;
}

static void alloc_failures(const char *mech, const imk__sasl_creds *c)
{
    int done = 0;
    for (long fail_at = 1; fail_at < 50 && !done; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        int completed;
        int rc = alloc_exchange(mech, c, &a, &completed);
        if (fa.failed) {
            CHECK_INT(rc, IMK_ENOMEM);
        } else {
            CHECK_INT(rc, 0);
            CHECK(completed);
            CHECK(fail_at > 1);
            done = 1;
        }
        CHECK_INT(fa.live, 0);
    }
    CHECK(done);
}

static void test_alloc_failures(void)
{
    imk__sasl_creds c = password_creds();
    alloc_failures("PLAIN", &c);
    alloc_failures("SCRAM-SHA-256", &c);
    c.authzid = "admin";
    alloc_failures("SCRAM-SHA-1", &c);
    imk__sasl_creds t = token_creds();
    alloc_failures("OAUTHBEARER", &t);
}

/* ---- secrets are wiped before their memory is freed ---- */

typedef struct snoop {
    long live;
    int found; /* a freed block still held a secret */
    const char *secrets[6];
    size_t n_secrets;
} snoop;

static int contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k > 0 && i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

static void *snoop_malloc(size_t size, void *user)
{
    snoop *sn = user;
    size_t *p = malloc(sizeof(size_t) * 2 + size);
    if (p == NULL)
        return NULL;
    p[0] = size;
    sn->live++;
    return p + 2;
}

static void snoop_free(void *ptr, void *user)
{
    snoop *sn = user;
    if (ptr == NULL)
        return;
    size_t *p = (size_t *)ptr - 2;
    for (size_t i = 0; i < sn->n_secrets; i++)
        if (contains(ptr, p[0], sn->secrets[i]))
            sn->found++;
    sn->live--;
    free(p);
}

static void *snoop_realloc(void *ptr, size_t size, void *user)
{
    void *q = snoop_malloc(size, user);
    if (q != NULL && ptr != NULL) {
        size_t old = ((size_t *)ptr - 2)[0];
        memcpy(q, ptr, old < size ? old : size);
        memset(ptr, 0, old);
        snoop_free(ptr, user);
    }
    return q;
}

static void test_secrets_wiped(void)
{
    snoop sn = {0, 0, {PASSWORD, TOKEN, NULL, NULL, NULL, NULL}, 2};
    /* The base64 of the PLAIN message holds the password too. */
    char *plain_b64 = encode("\0alice\0correct horse", 20);
    sn.secrets[2] = plain_b64;
    char *login_b64 = encode(PASSWORD, strlen(PASSWORD));
    sn.secrets[3] = login_b64;
    /* And the base64 of the OAuth messages. */
    static const char bearer[] = "n,a=alice@example.com,\x01host=imap.example.com\x01port=993\x01"
                                 "auth=Bearer ya29.tok3n-SECRET\x01\x01";
    static const char xoauth2[] = "user=alice@example.com\x01"
                                  "auth=Bearer ya29.tok3n-SECRET\x01\x01";
    char *bearer_b64 = encode(bearer, sizeof(bearer) - 1);
    char *xoauth2_b64 = encode(xoauth2, sizeof(xoauth2) - 1);
    sn.secrets[4] = bearer_b64;
    sn.secrets[5] = xoauth2_b64;
    sn.n_secrets = 6;
    imk_allocator a = {snoop_malloc, snoop_realloc, snoop_free, &sn};

    imk__sasl_creds c = password_creds();
    const char *names[] = {"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"};
    for (size_t i = 0; i < 4; i++) {
        imk__sasl *s = new_one(&c, names[i], &a, NULL);
        exch r = run_exchange(s, names[i], 1);
        CHECK_INT(r.finish_rc, 0);
        imk__sasl_free(s);
        /* Freed before the exchange too. */
        s = new_one(&c, names[i], &a, NULL);
        imk__sasl_free(s);
    }
    imk__sasl_creds t = token_creds();
    const char *oauth[] = {"OAUTHBEARER", "XOAUTH2"};
    for (size_t i = 0; i < 2; i++) {
        imk__sasl *s = new_one(&t, oauth[i], &a, NULL);
        const char *b64 = NULL;
        CHECK_INT(imk__sasl_initial(s, &b64), 1);
        CHECK_STR(b64, i == 0 ? bearer_b64 : xoauth2_b64);
        imk__sasl_free(s);
        s = new_one(&t, oauth[i], &a, NULL);
        imk__sasl_free(s);
    }
    CHECK_INT(sn.found, 0);
    CHECK_INT(sn.live, 0);

    /* The snoop can see a secret: a freed copy that was not wiped. */
    char *leak = snoop_malloc(32, &sn);
    snprintf(leak, 32, "x%sx", PASSWORD);
    snoop_free(leak, &sn);
    CHECK_INT(sn.found, 1);
    free(plain_b64);
    free(login_b64);
    free(bearer_b64);
    free(xoauth2_b64);
}

int main(void)
{
    if (gsasl_init(&srv_ctx) != GSASL_OK) {
        fprintf(stderr, "gsasl_init failed\n");
        return 1;
    }
    gsasl_callback_set(srv_ctx, server_cb);
    srv_conf.user = USER;
    srv_conf.password = PASSWORD;

    RUN(test_exchanges_ok);
    RUN(test_exchanges_wrong_password);
    RUN(test_plain_bytes_and_authzid);
    RUN(test_scram_client_first);
    RUN(test_scram_tampered_server_final);
    RUN(test_scram_finish_before_server_final);
    RUN(test_scram_server_error_and_malformed);
    RUN(test_call_order);
    RUN(test_oauthbearer_bytes);
    RUN(test_xoauth2_bytes);
    RUN(test_oauth_error_challenge);
    RUN(test_choice_order);
    RUN(test_choice_prefer);
    RUN(test_choice_token_vs_password);
    RUN(test_choice_security);
    RUN(test_choice_nothing_offered);
    RUN(test_alloc_failures);
    RUN(test_secrets_wiped);

    gsasl_done(srv_ctx);
    return test_finish();
}
