/* SPDX-License-Identifier: MIT */
/*
 * The lexer: typed tokens read from one framed response (see parser.h).
 * Every function reads at the current position, advances past what it read
 * on success, and on failure records an error (position, message) in the
 * lexer and returns a negative IMK_E* code; the first recorded error wins.
 * Strings returned point into the response buffer when they need no
 * unescaping, or into the arena; both live until the reader's next event.
 *
 * Quirk handling lives here where it concerns tokens: with
 * IMK_QUIRK_EXTRA_SPACES, imk__lex_sp() accepts runs of spaces; with
 * IMK_QUIRK_TRAILING_SPACE, imk__lex_list_end() and imk__lex_eol() accept
 * spaces before ")" and CRLF; every use is recorded in `quirks_seen`.
 */
#ifndef IMK_PROTO_LEXER_H
#define IMK_PROTO_LEXER_H

#include "proto/parser.h"

typedef struct imk__lexer {
    imk__parse_ctx *ctx;
    const char *buf;
    size_t len;
    size_t pos;
    size_t next_streamed; /* index into ctx->streamed of the next streamed literal */
    unsigned depth;       /* current list nesting */
    unsigned quirks_seen; /* IMK_QUIRK_* bits used so far */
} imk__lexer;

void imk__lex_init(imk__lexer *lx, imk__parse_ctx *ctx);

/* Record a parse error at the current position: "expected <what>" plus what
 * was found. Returns IMK_EPARSE (or the code given to imk__lex_fail_code). */
int imk__lex_fail(imk__lexer *lx, const char *expected);
int imk__lex_fail_code(imk__lexer *lx, int code, const char *message);

/* The byte at the current position, or -1 at the end of the buffer. */
int imk__lex_peek(const imk__lexer *lx);
/* 1 if the next bytes equal `s` (ASCII case-insensitive), else 0. */
int imk__lex_peek_word(const imk__lexer *lx, const char *s);
/* Consume byte c or fail. */
int imk__lex_expect(imk__lexer *lx, char c);
/* Consume `s` (case-insensitive) if it is next: returns 1 (consumed) or 0. */
int imk__lex_accept(imk__lexer *lx, const char *s);

/* One SP (runs of spaces under IMK_QUIRK_EXTRA_SPACES). */
int imk__lex_sp(imk__lexer *lx);
/* The end of the response: optional trailing spaces (quirk), then CRLF (or
 * LF under IMK_QUIRK_BARE_LF), then the end of the buffer. */
int imk__lex_eol(imk__lexer *lx);
/* 1 if only (quirk-tolerated) spaces and the line end remain. */
int imk__lex_at_eol(const imk__lexer *lx);

/* "(" and ")": track depth against max_depth (IMK_ELIMIT when exceeded).
 * imk__lex_list_end tolerates spaces before ")" under the quirk. */
int imk__lex_list_begin(imk__lexer *lx);
int imk__lex_list_end(imk__lexer *lx);
/* 1 if the next non-space byte is ")" (without consuming). */
int imk__lex_at_list_end(const imk__lexer *lx);

/* number = 1*DIGIT, 64-bit; overflow is IMK_ERANGE. */
int imk__lex_number(imk__lexer *lx, uint64_t *out);
/* nz-number fitting 32 bits; 0 or > 2^32-1 accepted under
 * IMK_QUIRK_NUMBER_RANGE (value clamped to UINT32_MAX when too big),
 * else IMK_ERANGE. */
int imk__lex_nz_number32(imk__lexer *lx, uint32_t *out);
/* A number where servers send -1 or float forms (Q23-Q25): "-1" -> 0 under
 * IMK_QUIRK_NEGATIVE_NUMBER, "9.3736e+06" -> 9373600 under
 * IMK_QUIRK_FLOAT_NUMBER. */
int imk__lex_number_lenient(imk__lexer *lx, uint64_t *out);

/* atom = 1*ATOM-CHAR */
int imk__lex_atom(imk__lexer *lx, imk_str *out);
/* An atom that may also contain "]" (astring chars) - for tags, mailbox
 * atoms, flag keywords. */
int imk__lex_astring_atom(imk__lexer *lx, imk_str *out);
/* quoted / literal; `streamed_out` (may be NULL) set for streamed literals,
 * whose data is then empty and whose size is in *size_out (may be NULL). */
int imk__lex_string(imk__lexer *lx, imk_str *out);
int imk__lex_string_ex(imk__lexer *lx, imk_str *out, int *streamed_out, uint64_t *size_out,
                       int *binary_out);
/* astring = 1*ASTRING-CHAR / string */
int imk__lex_astring(imk__lexer *lx, imk_str *out);
/* nstring = string / "NIL"; NIL gives out->data == NULL */
int imk__lex_nstring(imk__lexer *lx, imk_str *out);
/* flag = "\" atom / atom (also \* in PERMANENTFLAGS) */
int imk__lex_flag(imk__lexer *lx, imk_str *out);
/* "(" [flag *(SP flag)] ")" -> list (limit max_list_items) */
int imk__lex_flag_list(imk__lexer *lx, imk_strlist *out);
/* "(" [item *(SP item)] ")" for any string item reader (limit max_list_items);
 * `sep_expected` is the error text when an item is followed by neither SP
 * nor ")". */
int imk__lex_paren_strlist(imk__lexer *lx, int (*item)(imk__lexer *, imk_str *),
                           const char *sep_expected, imk_strlist *out);
/* mailbox: astring, decoded from mUTF-7 (or UTF-8 under utf8_mailboxes);
 * "INBOX" case-insensitively becomes "INBOX". */
int imk__lex_mailbox(imk__lexer *lx, imk_str *name, imk_str *raw, int *not_utf7);
/* sequence-set / uid-set text parsed into ranges (max_list_items ranges). */
int imk__lex_seqset(imk__lexer *lx, imk_seqset *out);
/* The rest of the line up to (not including) CRLF, for resp-text. */
int imk__lex_text(imk__lexer *lx, imk_str *out);
/* A generic value: NIL, number, atom (with [...] and <...> kept inside the
 * token, e.g. BODY[HEADER.FIELDS (A B)]<0>), string, literal, or list. */
int imk__lex_value(imk__lexer *lx, imk_value **out);
/* Generic values until ")" (not consumed) or the line end: a LIST value. */
int imk__lex_values_until_end(imk__lexer *lx, imk_value **out);

/* Arena helpers. */
void *imk__lex_alloc(imk__lexer *lx, size_t size); /* zeroed; error recorded on failure */
void *imk__lex_array(imk__lexer *lx, size_t count, size_t size);

/* A growable array built in scratch space and committed to the arena: used
 * for lists whose length is not known in advance. */
typedef struct imk__vec {
    void *items;
    size_t count, cap, size;
} imk__vec;
void imk__vec_init(imk__vec *v, size_t item_size);
/* Append one zeroed item and return it (NULL + error recorded on failure
 * or when max_list_items is exceeded). */
void *imk__vec_push(imk__lexer *lx, imk__vec *v);

/* ---- small inline helpers shared by lexer.c and the parse_*.c modules ---- */

/* The byte at the current position, or -1 at the end (inline form of
 * imk__lex_peek for the hot paths). */
static inline int imk__peek(const imk__lexer *lx)
{
    return lx->pos < lx->len ? (unsigned char)lx->buf[lx->pos] : -1;
}

static inline int imk__ascii_upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* Case-insensitive equality of a token with an upper-case literal. */
static inline int imk__name_eq(imk_str s, const char *lit, size_t n)
{
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (imk__ascii_upper((unsigned char)s.data[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

#define IMK__IS(s, lit) imk__name_eq((s), (lit), sizeof(lit) - 1)

static inline int imk__quirk_allowed(const imk__lexer *lx, unsigned bit)
{
    return (lx->ctx->limits->quirks & bit) != 0;
}

/* ---- additions (parser helper) ---- */

/* Like imk__lex_accept, but only when the word is followed by a delimiter
 * (not a generic-token character), so "NIL" does not match "NILS". */
int imk__lex_accept_word(imk__lexer *lx, const char *s);
/* Record IMK_ERANGE at `pos` with a static message. */
int imk__lex_fail_range(imk__lexer *lx, size_t pos, const char *message);
/* Decode an already-read mailbox name (see imk__lex_mailbox). */
int imk__lex_mailbox_decode(imk__lexer *lx, imk_str raw, imk_str *name, int *not_utf7);
/* 1 if the current position is at a delimiter (SP, parenthesis, quote,
 * CR/LF, end of buffer) rather than inside a token. */
int imk__lex_at_delim(const imk__lexer *lx);

/* parse_fetch.c: msg-att after "* n FETCH" (r->number holds n); consumes
 * through the line end. */
int imk__parse_fetch(imk__lexer *lx, imk_response *r);

#endif
