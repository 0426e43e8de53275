/* SPDX-License-Identifier: MIT */
/*
 * Modified UTF-7, the IMAP4rev1 encoding of international mailbox names
 * (RFC 3501 section 5.1.3, kept for compatibility in RFC 9051 appendix A.1),
 * and the strict UTF-8 check that the rest of the library shares.
 *
 * A modified UTF-7 name is printable US-ASCII. "&" shifts into a run of
 * modified BASE64 ("," instead of "/", no padding) that carries UTF-16BE
 * code units, and "-" shifts back; "&-" is a literal "&". Every string has
 * exactly one valid encoding, so the decoder is strict: it refuses anything
 * the encoder would not have produced. That matters because servers compare
 * the encoded form byte for byte (RFC 3501: "MUST preserve the exact form"),
 * so a name we accepted loosely and re-encoded would name another mailbox.
 *
 * Neither direction appends anything to `out` when it fails.
 */
#ifndef IMK_UTIL_UTF7_H
#define IMK_UTIL_UTF7_H

#include "util/buf.h"

#include <stddef.h>

/*
 * Append to `out` the UTF-8 form of the modified UTF-7 mailbox name
 * `in[0..len)`. `in` is borrowed and need not be NUL-terminated.
 * Returns 0, or IMK_EUTF7 for anything that is not the one canonical
 * encoding of some string (see utf7.c for the list), IMK_ELIMIT when `out`
 * would pass its maximum, IMK_ENOMEM. On failure `out` is unchanged.
 */
int imk__utf7_decode(imk__buf *out, const char *in, size_t len);

/* 1 when imk__utf7_decode() would accept `in[0..len)`, else 0. Allocates
 * nothing. */
int imk__utf7_is_valid(const char *in, size_t len);

/*
 * Append to `out` the modified UTF-7 form of the UTF-8 string
 * `utf8[0..len)` (borrowed). Returns 0, or IMK_EUTF8 when the input is not
 * strictly valid UTF-8 (see imk__utf8_is_valid), IMK_ELIMIT, IMK_ENOMEM. On
 * failure `out` is unchanged.
 */
int imk__utf7_encode(imk__buf *out, const char *utf8, size_t len);

/*
 * 1 when `s[0..len)` is well-formed UTF-8 as RFC 3629 section 4 defines it
 * (no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequence), else 0. NUL bytes are valid (U+0000). Runs of ASCII are checked
 * eight bytes at a time.
 */
int imk__utf8_is_valid(const char *s, size_t len);

#endif
