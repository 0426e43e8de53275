/* SPDX-License-Identifier: MIT */
/*
 * net/sasl.h - client side of SASL (RFC 4422) for IMAP AUTHENTICATE (RFC
 * 9051 section 6.2.2, SASL-IR RFC 4959). PLAIN, LOGIN, SCRAM-SHA-1 and
 * SCRAM-SHA-256 run through GNU SASL (libgsasl): no hand-written crypto.
 * OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's format) are plain string
 * formats with no cryptography, which gsasl 2.2 does not implement: they
 * are built here.
 *
 * All data in and out is base64 as it appears on the wire (the IMAP layer
 * adds nothing). No protocol decision is made here beyond the mechanism
 * choice.
 */
#ifndef IMK_NET_SASL_H
#define IMK_NET_SASL_H

#include "imapkit/common.h"

#include <stddef.h>

typedef struct imk__sasl_creds {
    const char *user;        /* authentication identity */
    const char *password;    /* for PLAIN, LOGIN, SCRAM-* */
    const char *authzid;     /* optional authorization identity */
    const char *oauth_token; /* for OAUTHBEARER, XOAUTH2 */
    const char *host;        /* server name, for OAUTHBEARER's host= */
    const char *port;        /* for OAUTHBEARER's port= (may be NULL) */
} imk__sasl_creds;

typedef struct imk__sasl imk__sasl;

/*
 * Choose a mechanism and prepare it.
 *   offered:  the server's AUTH=... mechanisms (without "AUTH="), n of them;
 *   prefer:   space-separated mechanism names in the caller's order, or NULL
 *             for the default: with a token OAUTHBEARER XOAUTH2; with a
 *             password SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN. The first one
 *             that is offered, usable with the credentials given, and allowed
 *             by the security rule is taken;
 *   secure:   the transport is TLS, or a local tunnel;
 *   allow_cleartext: the user explicitly allowed passwords without TLS.
 * Without `secure` and `allow_cleartext`, PLAIN, LOGIN, OAUTHBEARER and
 * XOAUTH2 are refused (they reveal the secret); SCRAM is still allowed (the
 * password never crosses the wire).
 * Returns 0; IMK_ENOTSUP (no usable mechanism: the message lists what the
 * server offers and what the credentials allow); IMK_ESECURITY (only
 * mechanisms that would expose the secret in cleartext were possible: the
 * message says to use TLS or allow cleartext); IMK_EINVAL; IMK_EAUTH (the
 * SASL library failed to start, with its message); IMK_ENOMEM.
 * On failure *out is still set (free it) so imk__sasl_error() can be read,
 * unless the failure was IMK_ENOMEM (then *out is NULL).
 */
int imk__sasl_new(const imk__sasl_creds *creds, const char *const *offered, size_t n_offered,
                  const char *prefer, int secure, int allow_cleartext, const imk_allocator *alloc,
                  imk__sasl **out);
void imk__sasl_free(imk__sasl *s);

/* The chosen mechanism's name ("SCRAM-SHA-256"). */
const char *imk__sasl_mech(const imk__sasl *s);

/* The client-first message for SASL-IR, base64 ("=" stands for an empty
 * initial response, RFC 4959). Returns 1 and sets *b64 (NUL-terminated,
 * owned by the sasl object, valid until the next call) when the mechanism
 * has one (PLAIN, SCRAM-*, OAUTHBEARER, XOAUTH2); 0 when it has none
 * (LOGIN); negative on error. Call at most once, before any step. */
int imk__sasl_initial(imk__sasl *s, const char **b64);

/* Answer a server challenge (base64 text of the "+ " line, len may be 0).
 * Returns 0 with *b64 set (the response to send, base64, possibly "" for an
 * empty response; owned by the object); negative on error (IMK_EAUTH with
 * the reason: a SCRAM server signature that does not verify, a malformed
 * challenge). For OAUTHBEARER/XOAUTH2 a challenge after the initial response
 * is the server's error report (JSON): the response is the empty string
 * (or "AQ==" for OAUTHBEARER, RFC 7628 3.2.3) and imk__sasl_error() keeps
 * the decoded JSON for the final message. */
int imk__sasl_step(imk__sasl *s, const char *challenge, size_t len, const char **b64);

/* After the tagged OK: 0 if the mechanism is satisfied (SCRAM: the server's
 * final message was verified), IMK_EAUTH if the server claimed success
 * without proving it knows the password. */
int imk__sasl_finish(imk__sasl *s);

/* The last error message, "" if none. */
const char *imk__sasl_error(const imk__sasl *s);

/*
 * Additions (sasl.c):
 *   - `prefer` may also hold "LOGIN-COMMAND" (imk_auth.mechanisms names the
 *     LOGIN command fallback so): it is skipped here, the client handles it.
 *     An empty or all-blank `prefer` is the default list.
 *   - With both a password and a token, the default list is the token's
 *     mechanisms first, then the password's.
 *   - LOGIN and XOAUTH2 cannot carry an authorization identity: with an
 *     authzid they are not usable (the session would silently run as the
 *     user instead).
 */

/* May the LOGIN command (RFC 9051 section 6.2.3) send the password? 0 when
 * the transport is secure or cleartext was explicitly allowed; otherwise
 * IMK_ESECURITY with the message in err (NUL-terminated, truncated to
 * errlen; err may be NULL when errlen is 0). */
int imk__sasl_login_allowed(int secure, int allow_cleartext, char *err, size_t errlen);

#endif
