/* SPDX-License-Identifier: MIT */
/*
 * net/sasl.c - the client side of SASL (RFC 4422) for IMAP AUTHENTICATE.
 *
 * PLAIN, LOGIN, SCRAM-SHA-1 and SCRAM-SHA-256 run through GNU SASL: one
 * Gsasl context per imk__sasl object (no global state, so two connections
 * in two threads never share anything), one client session, and a property
 * callback that hands gsasl the user name, the authzid and the password.
 * OAUTHBEARER (RFC 7628) and XOAUTH2 are fixed string formats without
 * cryptography; they are built here and only base64 comes from gsasl.
 *
 * The exchange, as the IMAP layer drives it:
 *
 *     new ──► [initial] ──► step ──► step ... ──► finish
 *              (SASL-IR)     one per "+ " line      after the tagged OK
 *
 *   - A client-first mechanism (PLAIN, SCRAM-*, OAUTH*) produces its first
 *     message either from initial() (SASL-IR, RFC 4959) or, without SASL-IR,
 *     from the first step(): the server then sends an empty challenge (RFC
 *     4422 section 5), whose content is not looked at.
 *   - SCRAM (RFC 5802 section 5): client-first, server-first, client-final,
 *     server-final ("v=" ServerSignature), which gsasl verifies in its last
 *     step; the answer to it is the empty response. `done` is set only when
 *     gsasl reports completion, so finish() refuses a server that said OK
 *     without proving it knows the password.
 *   - OAUTH*: any challenge after the initial response is the server's
 *     error report (RFC 7628 section 3.2.2); the answer is the dummy
 *     response ("AQ==", i.e. %x01, for OAUTHBEARER; empty for XOAUTH2).
 *
 * Secrets. Our copy of the password lives from new() until gsasl asks for
 * it (the callback hands it over, then wipes and frees our copy); the
 * OAuth message lives from new() until it is sent. gsasl keeps its own copy
 * as a session property: after every gsasl step we wipe and drop the
 * password-equivalent properties it holds (password, salted password, SCRAM
 * keys), since no later step needs them. Every buffer that held a secret or
 * its base64 (the raw and base64 step outputs, our output buffer) is wiped
 * before it is freed, with a volatile byte loop (wipe() below) rather than
 * explicit_bzero, which needs _DEFAULT_SOURCE and is not in C11 or POSIX.
 * gsasl's internal temporaries (e.g. its decoded input, SCRAM's key
 * material on its stack) are beyond our reach.
 *
 * Memory: everything we own goes through the object's allocator; gsasl's
 * own allocations use the C library's malloc and are outside it.
 */
#define _POSIX_C_SOURCE 200809L

#include "net/sasl.h"

#include "util/alloc.h"
#include "util/str.h"

#include <gsasl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define SASL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SASL_PRINTF(fmt, args)
#endif

/* ---- the mechanisms ---- */

enum {
    F_PASSWORD = 1u << 0,     /* needs a password (and a user name) */
    F_TOKEN = 1u << 1,        /* needs an OAuth token */
    F_CLEARTEXT = 1u << 2,    /* the secret crosses the wire (security rule) */
    F_GSASL = 1u << 3,        /* run through GNU SASL */
    F_MUTUAL = 1u << 4,       /* the server proves itself (SCRAM) */
    F_CLIENT_FIRST = 1u << 5, /* has an initial response */
    F_NEEDS_USER = 1u << 6,   /* cannot run without a user name */
    F_NO_AUTHZID = 1u << 7    /* has no field for an authzid */
};

enum {
    MECH_SCRAM_SHA_256,
    MECH_SCRAM_SHA_1,
    MECH_PLAIN,
    MECH_LOGIN,
    MECH_OAUTHBEARER,
    MECH_XOAUTH2,
    MECH_COUNT
};

static const struct mech_info {
    const char *name;
    unsigned flags;
} mechs[MECH_COUNT] = {
    [MECH_SCRAM_SHA_256] = {"SCRAM-SHA-256",
                            F_PASSWORD | F_GSASL | F_MUTUAL | F_CLIENT_FIRST | F_NEEDS_USER},
    [MECH_SCRAM_SHA_1] = {"SCRAM-SHA-1",
                          F_PASSWORD | F_GSASL | F_MUTUAL | F_CLIENT_FIRST | F_NEEDS_USER},
    [MECH_PLAIN] = {"PLAIN", F_PASSWORD | F_GSASL | F_CLEARTEXT | F_CLIENT_FIRST | F_NEEDS_USER},
    [MECH_LOGIN] = {"LOGIN", F_PASSWORD | F_GSASL | F_CLEARTEXT | F_NEEDS_USER | F_NO_AUTHZID},
    [MECH_OAUTHBEARER] = {"OAUTHBEARER", F_TOKEN | F_CLEARTEXT | F_CLIENT_FIRST},
    [MECH_XOAUTH2] = {"XOAUTH2",
                      F_TOKEN | F_CLEARTEXT | F_CLIENT_FIRST | F_NEEDS_USER | F_NO_AUTHZID},
};

/* The default orders (sasl.h): strongest first. */
static const int default_token[] = {MECH_OAUTHBEARER, MECH_XOAUTH2};
static const int default_password[] = {MECH_SCRAM_SHA_256, MECH_SCRAM_SHA_1, MECH_PLAIN,
                                       MECH_LOGIN};

/* imk_auth.mechanisms names the LOGIN command fallback so (client.h). */
#define LOGIN_COMMAND_WORD "LOGIN-COMMAND"

#define SECURITY_ADVICE "connect with TLS or STARTTLS, or allow cleartext passwords explicitly"

/* ---- the object ---- */

struct imk__sasl {
    imk_allocator alloc;
    int mech; /* index into mechs[], -1 until one is chosen and started */

    Gsasl *ctx;             /* NULL for OAUTH* */
    Gsasl_session *session; /* NULL for OAUTH* */
    int gsasl_steps;        /* gsasl_step calls made (SCRAM: 1 to 3) */
    int gsasl_nomem;        /* the callback could not store a property */

    /* Our copies of the credentials for gsasl's callback; the password is
     * wiped and freed as soon as gsasl has taken it. */
    char *user;
    char *authzid; /* NULL when none */
    char *password;

    /* OAUTH*: the raw initial response (holds the token) until it is sent. */
    char *oauth_msg;
    size_t oauth_len;

    /* The last response, base64, NUL-terminated; wiped before reuse. */
    char *out;
    size_t out_cap;

    int initial_called; /* initial() or a step ran: initial() is no longer allowed */
    int first_sent;     /* the client-first message was produced */
    int done;           /* the mechanism completed (SCRAM: server-final verified) */
    int failed;         /* a step failed: the exchange is over */
    int oauth_reported; /* OAUTH*: the server's error report arrived */

    char err[1024];
};

/* ---- small helpers ---- */

/* A volatile store cannot be optimised away, unlike a memset before free. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

static void set_err(imk__sasl *s, const char *fmt, ...) SASL_PRINTF(2, 3);

static void set_err(imk__sasl *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

/* A bounded message under construction; appending past the end truncates. */
typedef struct msg {
    char *buf;
    size_t cap, len;
} msg;

/* Append `n` bytes of text that may come from the server or the user:
 * control bytes become '?' so a message stays one printable line (line
 * breaks and tabs become spaces). */
static void msg_putn(msg *m, const char *text, size_t n)
{
    for (size_t i = 0; i < n && m->len + 1 < m->cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        else if (c < 0x20 || c == 0x7f)
            c = '?';
        m->buf[m->len++] = (char)c;
    }
    m->buf[m->len] = '\0';
}

static void msg_put(msg *m, const char *text)
{
    msg_putn(m, text, strlen(text));
}

static int ascii_ieq(const char *a, size_t alen, const char *b)
{
    imk_str as = {a, alen};
    return imk__str_ieq(as, b);
}

static int nonempty(const char *p)
{
    return p != NULL && p[0] != '\0';
}

/* 1 if the string holds a byte that would break an OAuth kvpair or an
 * XOAUTH2 field (RFC 7628 section 3.1: values are VCHAR / SP / HTAB / CR /
 * LF, and %x01 separates them; we refuse all controls). */
static int has_control(const char *p)
{
    for (; p != NULL && *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

static char *dup_str(imk__sasl *s, const char *src)
{
    size_t n = strlen(src);
    char *p = imk__malloc(&s->alloc, n + 1);
    if (p != NULL)
        memcpy(p, src, n + 1);
    return p;
}

static void free_secret(imk__sasl *s, char **p, size_t n)
{
    if (*p != NULL) {
        wipe(*p, n);
        imk__free(&s->alloc, *p);
        *p = NULL;
    }
}

static void free_secret_str(imk__sasl *s, char **p)
{
    if (*p != NULL)
        free_secret(s, p, strlen(*p));
}

/* Store a NUL-terminated base64 response in s->out, wiping what was there.
 * The buffer is replaced, never realloc'ed, so no unwiped copy is left
 * behind in a block realloc would have released. */
static int store_out(imk__sasl *s, const char *b64, size_t len, const char **b64_out)
{
    if (s->out != NULL)
        wipe(s->out, s->out_cap);
    if (s->out == NULL || s->out_cap < len + 1) {
        char *bigger = imk__malloc(&s->alloc, len + 1);
        if (bigger == NULL)
            return IMK_ENOMEM;
        imk__free(&s->alloc, s->out);
        s->out = bigger;
        s->out_cap = len + 1;
    }
    memcpy(s->out, b64, len);
    s->out[len] = '\0';
    *b64_out = s->out;
    return 0;
}

/* Base64-encode a raw response into s->out. An empty response is "" on a
 * continuation line, "=" as an initial response (RFC 4959 section 3). */
static int emit_raw(imk__sasl *s, const char *raw, size_t raw_len, int initial, const char **b64)
{
    if (raw_len == 0)
        return store_out(s, initial ? "=" : "", initial ? 1 : 0, b64);
    char *enc = NULL;
    size_t enc_len = 0;
    int grc = gsasl_base64_to(raw, raw_len, &enc, &enc_len);
    if (grc != GSASL_OK || enc == NULL) {
        gsasl_free(enc);
        return IMK_ENOMEM; /* encoding can only fail for memory */
    }
    int rc = store_out(s, enc, enc_len, b64);
    wipe(enc, enc_len);
    gsasl_free(enc);
    return rc;
}

/* Mark the exchange as failed; ENOMEM keeps a fixed message. */
static int fail(imk__sasl *s, int rc)
{
    s->failed = 1;
    if (rc == IMK_ENOMEM)
        set_err(s, "out of memory during the %s exchange", mechs[s->mech].name);
    return rc;
}

/* ---- gsasl glue ---- */

/* Wipe and drop the password-equivalent properties gsasl holds. Called
 * after every step: each mechanism reads the password in exactly one step
 * (PLAIN the first, LOGIN the second, SCRAM the second, where it also
 * derives the salted password and keys) and never again. Writing through
 * gsasl_property_fast's pointer is safe: it is gsasl's own malloc'ed copy,
 * and we release it right after. */
static void scrub_session(imk__sasl *s)
{
    static const Gsasl_property secret_props[] = {GSASL_PASSWORD, GSASL_SCRAM_SALTED_PASSWORD,
                                                  GSASL_SCRAM_SERVERKEY, GSASL_SCRAM_STOREDKEY};
    if (s->session == NULL)
        return;
    for (size_t i = 0; i < sizeof(secret_props) / sizeof(secret_props[0]); i++) {
        const char *p = gsasl_property_fast(s->session, secret_props[i]);
        if (p != NULL) {
            wipe((char *)(uintptr_t)p, strlen(p));
            gsasl_property_free(s->session, secret_props[i]);
        }
    }
}

/* gsasl asks for what it needs. Everything else (notably GSASL_CB_TLS_UNIQUE
 * and GSASL_CB_TLS_EXPORTER: we never run the -PLUS variants, and without
 * channel binding data SCRAM sends the "n" gs2 flag) gets NO_CALLBACK. */
static int on_property(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    imk__sasl *s = gsasl_callback_hook_get(ctx);
    const char *value;
    switch (prop) {
    case GSASL_AUTHID:
        value = s->user;
        break;
    case GSASL_AUTHZID:
        value = s->authzid;
        break;
    case GSASL_PASSWORD:
        value = s->password;
        break;
    default:
        return GSASL_NO_CALLBACK;
    }
    if (value == NULL)
        return GSASL_NO_CALLBACK;
    int grc = gsasl_property_set(sctx, prop, value);
    if (grc != GSASL_OK) {
        s->gsasl_nomem = 1;
        return grc;
    }
    if (prop == GSASL_PASSWORD)
        free_secret_str(s, &s->password); /* gsasl holds it now */
    return GSASL_OK;
}

/* Why a gsasl step failed, as our error code and message. */
static int gsasl_failure(imk__sasl *s, int grc)
{
    const char *name = mechs[s->mech].name;
    if (grc == GSASL_MALLOC_ERROR || s->gsasl_nomem)
        return fail(s, IMK_ENOMEM);
    s->failed = 1;
    if ((mechs[s->mech].flags & F_MUTUAL) && grc == GSASL_AUTHENTICATION_ERROR) {
        if (s->gsasl_steps >= 3)
            set_err(s,
                    "the server's %s signature does not verify: the server does not know the "
                    "password, or someone altered the exchange",
                    name);
        else
            set_err(s, "the server's %s nonce does not extend the client's", name);
    } else if (grc == GSASL_MECHANISM_PARSE_ERROR) {
        set_err(s, "malformed %s challenge from the server", name);
    } else if (grc == GSASL_MECHANISM_CALLED_TOO_MANY_TIMES) {
        set_err(s, "the server sent more challenges than %s has steps", name);
    } else {
        set_err(s, "%s failed in GNU SASL: %s (%s)", name, gsasl_strerror(grc),
                gsasl_strerror_name(grc));
    }
    return IMK_EAUTH;
}

/* One gsasl step: raw challenge in, base64 response out. */
static int run_gsasl(imk__sasl *s, const char *in, size_t in_len, int initial, const char **b64)
{
    char *raw = NULL;
    size_t raw_len = 0;
    int grc = gsasl_step(s->session, in, in_len, &raw, &raw_len);
    s->gsasl_steps++;
    scrub_session(s);
    if (grc != GSASL_OK && grc != GSASL_NEEDS_MORE) {
        gsasl_free(raw);
        return gsasl_failure(s, grc);
    }
    int rc;
    if (raw == NULL && raw_len > 0) /* gsasl's LOGIN does not check its strdup */
        rc = IMK_ENOMEM;
    else
        rc = emit_raw(s, raw, raw_len, initial, b64);
    if (raw != NULL) {
        wipe(raw, raw_len);
        gsasl_free(raw);
    }
    if (rc < 0)
        return fail(s, rc);
    if (grc == GSASL_OK)
        s->done = 1;
    return 0;
}

/* ---- OAUTHBEARER and XOAUTH2 ---- */

/* RFC 5801 section 4 (used by RFC 7628 section 3.1): in a gs2 saslname,
 * "," is written "=2C" and "=" is written "=3D". */
static size_t saslname_len(const char *name)
{
    size_t n = 0;
    for (const char *p = name; *p != '\0'; p++)
        n += (*p == ',' || *p == '=') ? 3 : 1;
    return n;
}

static char *put_saslname(char *w, const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == ',' || *p == '=') {
            memcpy(w, *p == ',' ? "=2C" : "=3D", 3);
            w += 3;
        } else {
            *w++ = *p;
        }
    }
    return w;
}

static char *put(char *w, const char *text)
{
    size_t n = strlen(text);
    memcpy(w, text, n);
    return w + n;
}

/*
 * RFC 7628 section 3.1:
 *   client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
 *   gs2-header  = gs2-cb-flag "," [ authzid ] ","   ; RFC 5801
 *   kvsep       = %x01
 *   kvpair      = key "=" value kvsep
 *   host, port  : optional; auth = "Bearer " token
 * giving "n,a=USER,\x01host=HOST\x01port=PORT\x01auth=Bearer TOKEN\x01\x01".
 * XOAUTH2 (Google): "user=USER\x01auth=Bearer TOKEN\x01\x01".
 */
static int build_oauth(imk__sasl *s, int mech, const imk__sasl_creds *c)
{
    const char *fields[] = {c->user, c->authzid, c->oauth_token, c->host, c->port};
    static const char *const field_names[] = {"user name", "authzid", "OAuth token", "host name",
                                              "port"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (has_control(fields[i])) {
            set_err(s, "the %s for %s contains a control character", field_names[i],
                    mechs[mech].name);
            return IMK_EINVAL;
        }
    }
    const char *token = c->oauth_token;
    size_t len;
    if (mech == MECH_OAUTHBEARER) {
        const char *who = nonempty(c->authzid) ? c->authzid : c->user;
        len = strlen("n,,\x01") + strlen("auth=Bearer ") + strlen(token) + 2;
        if (nonempty(who))
            len += 2 + saslname_len(who);
        if (nonempty(c->host))
            len += strlen("host=") + strlen(c->host) + 1;
        if (nonempty(c->port))
            len += strlen("port=") + strlen(c->port) + 1;
        char *m = imk__malloc(&s->alloc, len);
        if (m == NULL)
            return IMK_ENOMEM;
        char *w = put(m, "n,");
        if (nonempty(who))
            w = put_saslname(put(w, "a="), who);
        w = put(w, ",\x01");
        if (nonempty(c->host))
            w = put(put(put(w, "host="), c->host), "\x01");
        if (nonempty(c->port))
            w = put(put(put(w, "port="), c->port), "\x01");
        w = put(put(put(w, "auth=Bearer "), token), "\x01\x01");
        s->oauth_msg = m;
        s->oauth_len = (size_t)(w - m);
    } else {
        len = strlen("user=\x01"
                     "auth=Bearer \x01\x01") +
              strlen(c->user) + strlen(token);
        char *m = imk__malloc(&s->alloc, len);
        if (m == NULL)
            return IMK_ENOMEM;
        char *w = put(put(put(m, "user="), c->user), "\x01");
        w = put(put(put(w, "auth=Bearer "), token), "\x01\x01");
        s->oauth_msg = m;
        s->oauth_len = (size_t)(w - m);
    }
    return 0;
}

/* RFC 7628 section 3.2.2: a challenge after the initial response carries
 * the server's error (JSON); the client answers with the dummy response
 * %x01 (section 3.2.3) and the server then fails the command. XOAUTH2's
 * equivalent answer is the empty response. */
static int oauth_error(imk__sasl *s, const char *challenge, size_t len, const char **b64)
{
    if (s->oauth_reported) {
        s->failed = 1;
        set_err(s, "the server sent another %s challenge after its error report",
                mechs[s->mech].name);
        return IMK_EAUTH;
    }
    s->oauth_reported = 1;
    char *json = NULL;
    size_t json_len = 0;
    int grc = len == 0 ? GSASL_OK : gsasl_base64_from(challenge, len, &json, &json_len);
    msg m = {s->err, sizeof(s->err), 0};
    msg_put(&m, "the server rejected the OAuth token: ");
    if (grc == GSASL_MALLOC_ERROR) {
        return fail(s, IMK_ENOMEM);
    } else if (grc != GSASL_OK) {
        msg_put(&m, "(undecodable error report) ");
        msg_putn(&m, challenge, len);
    } else {
        msg_putn(&m, json != NULL ? json : "", json_len);
    }
    gsasl_free(json);
    int rc = s->mech == MECH_OAUTHBEARER ? store_out(s, "AQ==", 4, b64) : store_out(s, "", 0, b64);
    return rc < 0 ? fail(s, rc) : 0;
}

/* ---- mechanism choice ---- */

/* Parse `prefer` into mechanism indices. Returns the count, or IMK_EINVAL
 * naming the unknown word; *words counts every word, LOGIN-COMMAND too. */
static int parse_prefer(imk__sasl *s, const char *prefer, int *list, int *words)
{
    int n = 0;
    *words = 0;
    const char *p = prefer;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        const char *word = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - word);
        (*words)++;
        if (ascii_ieq(word, len, LOGIN_COMMAND_WORD))
            continue; /* the client's LOGIN command fallback, not SASL */
        int found = -1;
        for (int m = 0; m < MECH_COUNT; m++)
            if (ascii_ieq(word, len, mechs[m].name))
                found = m;
        if (found < 0) {
            msg e = {s->err, sizeof(s->err), 0};
            msg_put(&e, "unknown SASL mechanism \"");
            msg_putn(&e, word, len > 64 ? 64 : len);
            msg_put(&e, "\" in the mechanism list: imapkit knows");
            for (int m = 0; m < MECH_COUNT; m++) {
                msg_put(&e, " ");
                msg_put(&e, mechs[m].name);
            }
            msg_put(&e, " (and " LOGIN_COMMAND_WORD " for the LOGIN command)");
            return IMK_EINVAL;
        }
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= list[i] == found;
        if (!dup)
            list[n++] = found;
    }
    return n;
}

/* Whether the credentials (and the gsasl build) can run mechanism m. */
static int usable(const imk__sasl *s, int m, const imk__sasl_creds *c)
{
    unsigned f = mechs[m].flags;
    if ((f & F_PASSWORD) && c->password == NULL)
        return 0;
    if ((f & F_TOKEN) && !nonempty(c->oauth_token))
        return 0;
    if ((f & F_NEEDS_USER) && !nonempty(c->user))
        return 0;
    if ((f & F_NO_AUTHZID) && nonempty(c->authzid))
        return 0;
    if ((f & F_GSASL) && (s->ctx == NULL || !gsasl_client_support_p(s->ctx, mechs[m].name)))
        return 0;
    return 1;
}

static int is_offered(int m, const char *const *offered, size_t n_offered)
{
    for (size_t i = 0; i < n_offered; i++)
        if (offered[i] != NULL && ascii_ieq(offered[i], strlen(offered[i]), mechs[m].name))
            return 1;
    return 0;
}

static void explain_nothing_usable(imk__sasl *s, const imk__sasl_creds *c, const int *cand,
                                   int n_cand, int explicit_list, const char *const *offered,
                                   size_t n_offered)
{
    msg e = {s->err, sizeof(s->err), 0};
    msg_put(&e, "no usable SASL mechanism: the server offers");
    size_t shown = 0;
    for (size_t i = 0; i < n_offered; i++) {
        if (offered[i] == NULL)
            continue;
        msg_put(&e, " ");
        msg_put(&e, offered[i]);
        shown++;
    }
    if (shown == 0)
        msg_put(&e, " none");
    int has_password = c->password != NULL, has_token = nonempty(c->oauth_token);
    msg_put(&e, has_password && has_token ? "; with a password and an OAuth token"
                : has_password            ? "; with a password"
                                          : "; with an OAuth token");
    if (explicit_list)
        msg_put(&e, " and the mechanisms asked for");
    msg_put(&e, " imapkit can use");
    int any = 0;
    for (int i = 0; i < n_cand; i++) {
        if (!usable(s, cand[i], c))
            continue;
        msg_put(&e, " ");
        msg_put(&e, mechs[cand[i]].name);
        any = 1;
    }
    if (!any)
        msg_put(&e, " none");
}

static int start_mech(imk__sasl *s, int m, const imk__sasl_creds *c)
{
    if (mechs[m].flags & F_TOKEN) {
        int rc = build_oauth(s, m, c);
        if (rc < 0)
            return rc;
        s->mech = m;
        return 0;
    }
    s->user = dup_str(s, c->user);
    if (s->user == NULL)
        return IMK_ENOMEM;
    if (nonempty(c->authzid) && (s->authzid = dup_str(s, c->authzid)) == NULL)
        return IMK_ENOMEM;
    s->password = dup_str(s, c->password);
    if (s->password == NULL)
        return IMK_ENOMEM;
    gsasl_callback_set(s->ctx, on_property);
    gsasl_callback_hook_set(s->ctx, s);
    int grc = gsasl_client_start(s->ctx, mechs[m].name, &s->session);
    if (grc != GSASL_OK) {
        s->session = NULL;
        if (grc == GSASL_MALLOC_ERROR)
            return IMK_ENOMEM;
        set_err(s, "GNU SASL cannot start %s: %s (%s)", mechs[m].name, gsasl_strerror(grc),
                gsasl_strerror_name(grc));
        return IMK_EAUTH;
    }
    s->mech = m;
    return 0;
}

static int choose(imk__sasl *s, const imk__sasl_creds *c, const char *const *offered,
                  size_t n_offered, const char *prefer, int secure, int allow_cleartext)
{
    if (c == NULL || (offered == NULL && n_offered > 0)) {
        set_err(s, "invalid arguments to the SASL setup");
        return IMK_EINVAL;
    }
    int has_password = c->password != NULL, has_token = nonempty(c->oauth_token);
    if (!has_password && !has_token) {
        set_err(s, "no password or OAuth token to authenticate with");
        return IMK_EINVAL;
    }
    if (has_password && !has_token && !nonempty(c->user)) {
        set_err(s, "a password needs a user name to go with it");
        return IMK_EINVAL;
    }

    int cand[MECH_COUNT];
    int n_cand = 0;
    int explicit_list = 0;
    if (prefer != NULL) {
        int words;
        n_cand = parse_prefer(s, prefer, cand, &words);
        if (n_cand < 0)
            return n_cand;
        explicit_list = words > 0; /* "LOGIN-COMMAND" alone: no SASL at all */
    }
    if (!explicit_list) {
        n_cand = 0;
        if (has_token)
            for (size_t i = 0; i < sizeof(default_token) / sizeof(default_token[0]); i++)
                cand[n_cand++] = default_token[i];
        if (has_password)
            for (size_t i = 0; i < sizeof(default_password) / sizeof(default_password[0]); i++)
                cand[n_cand++] = default_password[i];
    }

    int need_gsasl = 0;
    for (int i = 0; i < n_cand; i++)
        need_gsasl |= (mechs[cand[i]].flags & F_GSASL) != 0;
    if (need_gsasl) {
        int grc = gsasl_init(&s->ctx);
        if (grc != GSASL_OK) {
            s->ctx = NULL;
            if (grc == GSASL_MALLOC_ERROR)
                return IMK_ENOMEM;
            set_err(s, "GNU SASL failed to start: %s (%s)", gsasl_strerror(grc),
                    gsasl_strerror_name(grc));
            return IMK_EAUTH;
        }
    }

    int blocked = -1;
    for (int i = 0; i < n_cand; i++) {
        int m = cand[i];
        if (!usable(s, m, c) || !is_offered(m, offered, n_offered))
            continue;
        /* DESIGN.md section 8: no secret in the clear unless allowed. */
        if ((mechs[m].flags & F_CLEARTEXT) && !secure && !allow_cleartext) {
            if (blocked < 0)
                blocked = m;
            continue;
        }
        return start_mech(s, m, c);
    }
    if (blocked >= 0) {
        set_err(s, "refusing to send the %s for %s without TLS: " SECURITY_ADVICE,
                (mechs[blocked].flags & F_TOKEN) ? "OAuth token" : "password", mechs[blocked].name);
        return IMK_ESECURITY;
    }
    explain_nothing_usable(s, c, cand, n_cand, explicit_list, offered, n_offered);
    return IMK_ENOTSUP;
}

/* ---- public (internal) API ---- */

int imk__sasl_new(const imk__sasl_creds *creds, const char *const *offered, size_t n_offered,
                  const char *prefer, int secure, int allow_cleartext, const imk_allocator *alloc,
                  imk__sasl **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    imk_allocator a;
    imk__alloc_init(&a, alloc);
    imk__sasl *s = imk__malloc(&a, sizeof(*s));
    if (s == NULL)
        return IMK_ENOMEM;
    memset(s, 0, sizeof(*s));
    s->alloc = a;
    s->mech = -1;
    int rc = choose(s, creds, offered, n_offered, prefer, secure, allow_cleartext);
    if (rc == IMK_ENOMEM) {
        imk__sasl_free(s);
        return rc;
    }
    if (rc < 0) {
        /* Keep the message, drop everything else (secrets first). */
        s->mech = -1;
        free_secret_str(s, &s->password);
        free_secret(s, &s->oauth_msg, s->oauth_len);
    }
    *out = s;
    return rc;
}

void imk__sasl_free(imk__sasl *s)
{
    if (s == NULL)
        return;
    if (s->session != NULL) {
        scrub_session(s);
        gsasl_finish(s->session);
    }
    if (s->ctx != NULL)
        gsasl_done(s->ctx);
    free_secret_str(s, &s->password);
    free_secret(s, &s->oauth_msg, s->oauth_len);
    free_secret(s, &s->out, s->out_cap);
    imk__free(&s->alloc, s->user);
    imk__free(&s->alloc, s->authzid);
    imk_allocator a = s->alloc;
    wipe(s, sizeof(*s));
    imk__free(&a, s);
}

const char *imk__sasl_mech(const imk__sasl *s)
{
    return s != NULL && s->mech >= 0 ? mechs[s->mech].name : "";
}

const char *imk__sasl_error(const imk__sasl *s)
{
    return s != NULL ? s->err : "";
}

static int not_now(imk__sasl *s, const char *what)
{
    set_err(s, "%s", what);
    return IMK_ESTATE;
}

/* The client-first message, for SASL-IR (initial) or for the first,
 * empty, challenge. */
static int client_first(imk__sasl *s, int initial, const char **b64)
{
    s->first_sent = 1;
    if (s->session != NULL)
        return run_gsasl(s, NULL, 0, initial, b64);
    int rc = emit_raw(s, s->oauth_msg, s->oauth_len, initial, b64);
    free_secret(s, &s->oauth_msg, s->oauth_len);
    if (rc < 0)
        return fail(s, rc);
    s->done = 1;
    return 0;
}

int imk__sasl_initial(imk__sasl *s, const char **b64)
{
    if (b64 != NULL)
        *b64 = NULL;
    if (s == NULL || b64 == NULL)
        return IMK_EINVAL;
    if (s->mech < 0)
        return not_now(s, "no SASL mechanism was chosen");
    if (s->initial_called)
        return not_now(s, "the SASL initial response can only be asked for first, and once");
    s->initial_called = 1;
    if (!(mechs[s->mech].flags & F_CLIENT_FIRST))
        return 0;
    int rc = client_first(s, 1, b64);
    return rc < 0 ? rc : 1;
}

int imk__sasl_step(imk__sasl *s, const char *challenge, size_t len, const char **b64)
{
    if (b64 != NULL)
        *b64 = NULL;
    if (s == NULL || b64 == NULL || (challenge == NULL && len > 0))
        return IMK_EINVAL;
    if (s->mech < 0)
        return not_now(s, "no SASL mechanism was chosen");
    if (s->failed)
        return not_now(s, "the SASL exchange already failed");
    s->initial_called = 1;
    unsigned f = mechs[s->mech].flags;

    /* RFC 4422 section 5: without an initial response, the server opens a
     * client-first mechanism with an empty challenge. We answer it whatever
     * it holds: its content has no meaning. */
    if ((f & F_CLIENT_FIRST) && !s->first_sent)
        return client_first(s, 0, b64);
    if (f & F_TOKEN)
        return oauth_error(s, challenge, len, b64);
    if (s->done) {
        /* Never feed gsasl again: its PLAIN would resend the password. */
        s->failed = 1;
        set_err(s, "the server sent a challenge after the %s exchange was complete",
                mechs[s->mech].name);
        return IMK_EAUTH;
    }

    char *raw = NULL;
    size_t raw_len = 0;
    /* LOGIN's prompts ("Username:", "Password:") carry no data and gsasl
     * ignores them; some servers send them as text that is not base64. */
    if (s->mech != MECH_LOGIN && len > 0) {
        int grc = gsasl_base64_from(challenge, len, &raw, &raw_len);
        if (grc == GSASL_MALLOC_ERROR)
            return fail(s, IMK_ENOMEM);
        if (grc != GSASL_OK) {
            gsasl_free(raw);
            s->failed = 1;
            msg e = {s->err, sizeof(s->err), 0};
            msg_put(&e, "the server's challenge is not base64: ");
            msg_putn(&e, challenge, len > 200 ? 200 : len);
            return IMK_EAUTH;
        }
    }
    /* RFC 5802 section 7: server-error = "e=" server-error-value. The
     * server-first message starts with "r=" or "m=", never "e=". */
    if ((f & F_MUTUAL) && raw_len >= 2 && raw[0] == 'e' && raw[1] == '=') {
        s->failed = 1;
        msg e = {s->err, sizeof(s->err), 0};
        msg_put(&e, "the server rejected the ");
        msg_put(&e, mechs[s->mech].name);
        msg_put(&e, " exchange: ");
        msg_putn(&e, raw + 2, raw_len - 2);
        gsasl_free(raw);
        return IMK_EAUTH;
    }
    int rc = run_gsasl(s, raw, raw_len, 0, b64);
    gsasl_free(raw);
    return rc;
}

int imk__sasl_finish(imk__sasl *s)
{
    if (s == NULL)
        return IMK_EINVAL;
    if (s->mech < 0)
        return not_now(s, "no SASL mechanism was chosen");
    /* The last response went out with the command: no reason to keep it. */
    if (s->out != NULL)
        wipe(s->out, s->out_cap);
    if (s->failed)
        return IMK_EAUTH; /* the step's message stays */
    if ((mechs[s->mech].flags & F_MUTUAL) && !s->done) {
        set_err(s,
                "the server said OK before proving it knows the password (no verified %s "
                "server-final message): treat this server as an impostor",
                mechs[s->mech].name);
        return IMK_EAUTH;
    }
    return 0;
}

int imk__sasl_login_allowed(int secure, int allow_cleartext, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (secure || allow_cleartext)
        return 0;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen,
                 "refusing to send the password with the LOGIN command without TLS: "
                 "" SECURITY_ADVICE);
    return IMK_ESECURITY;
}
