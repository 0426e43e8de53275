/* SPDX-License-Identifier: MIT */
/*
 * BODY, BODYSTRUCTURE and ENVELOPE (RFC 9051 section 7.5.2 and the body /
 * envelope ABNF of section 9; RFC 3501 section 9; RFC 6855 message/global).
 *
 * Both functions start at the opening "(" and stop right after the matching
 * ")". Everything they produce is allocated in the lexer's arena (and
 * strings point into the response buffer where no unescaping was needed),
 * so it lives until the reader's next event. On failure they return a
 * negative IMK_E* code (IMK_EPARSE, IMK_ERANGE, IMK_ELIMIT, IMK_ENOMEM) and
 * the error - its position and a message naming the field and the body
 * part, e.g. "expected body-fld-enc (string) in body part 1.2, found ..." -
 * is recorded in lx->ctx; *out is then left untouched.
 *
 * Server deviations accepted (QUIRKS.md Q23, Q25, Q27-Q35) depend on
 * lx->ctx->limits->quirks; each one used is added to lx->quirks_seen.
 */
#ifndef IMK_PROTO_PARSE_BODY_H
#define IMK_PROTO_PARSE_BODY_H

#include "imapkit/response.h"
#include "proto/lexer.h"

/* envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
 *            env-reply-to SP env-to SP env-cc SP env-bcc SP
 *            env-in-reply-to SP env-message-id ")"     (RFC 9051 section 9) */
int imk__parse_envelope(imk__lexer *lx, const imk_envelope **out);

/* body = "(" (body-type-1part / body-type-mpart) ")"  (RFC 9051 section 9)
 * extensible = 1 for BODYSTRUCTURE: extension data, when present, is parsed
 * into the has_ext fields. extensible = 0 for BODY: extension data must not
 * be there, but if a server sends it anyway it is skipped (has_ext stays
 * 0) rather than failing the response. */
int imk__parse_body(imk__lexer *lx, int extensible, const imk_body **out);

#endif
