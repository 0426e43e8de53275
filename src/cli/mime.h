/* SPDX-License-Identifier: MIT */
/*
 * Header text for people: RFC 2047 encoded-words decoded to UTF-8, text
 * made safe for a terminal, and its width in terminal columns.
 *
 * ENVELOPE strings arrive as the message's raw header bytes (imapkit does
 * not decode them, response.h says so): "=?UTF-8?B?w6lw...?=" subjects and
 * names, and now and then raw 8-bit text in some legacy charset. The
 * decoder turns any such bytes into valid UTF-8, always: what cannot be
 * decoded is replaced, never passed through, so the result can go straight
 * into a JSON string or a terminal line.
 *
 * Every function appending to a cli_buf returns 0, or -1 when out of
 * memory (the buffer then holds a prefix of the result).
 */
#ifndef IMK_CLI_MIME_H
#define IMK_CLI_MIME_H

#include "xalloc.h"

#include <stddef.h>

/* Append the decoded form of header text `in` (RFC 2047 encoded-words in
 * B or Q encoding, any charset iconv knows; RFC 2231 language suffixes
 * ignored; whitespace between adjacent encoded-words dropped, sections
 * 6.2 and 2). Raw bytes that are not UTF-8 are read as ISO-8859-1; bytes
 * that do not decode in their declared charset become U+FFFD. Folding
 * (CRLF before whitespace) is removed. The output is valid UTF-8. */
int cli_mime_decode(const char *in, size_t len, cli_buf *out);

/* Append valid UTF-8 `in` made safe for a terminal: TAB, CR and LF become
 * a space; other C0/C1 controls, DEL and the bidirectional overrides
 * (U+202A..U+202E, U+2066..U+2069) become U+FFFD, so a subject cannot
 * move the cursor or reorder what is shown. Invalid UTF-8 becomes U+FFFD. */
int cli_mime_display(const char *in, size_t len, cli_buf *out);

/* Terminal columns of UTF-8 text: wide East Asian characters and emoji
 * count 2, combining marks and zero-width characters 0, the rest 1. */
size_t cli_mime_width(const char *s, size_t len);

/* The number of bytes of the longest prefix of `s` (whole characters) that
 * fits in `cols` columns; *width_out (may be NULL) gets its width. */
size_t cli_mime_fit(const char *s, size_t len, size_t cols, size_t *width_out);

/* Release the cached charset converter (optional; for leak checkers). */
void cli_mime_cleanup(void);

#endif
