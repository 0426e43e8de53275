/* SPDX-License-Identifier: MIT */
/*
 * The lexer: typed tokens over one framed response.
 *
 * The framer (reader.c) has already cut the stream into responses, so the
 * lexer works on one complete, bounded buffer: every read checks `len`, and
 * a literal announcement "{n}" is believed only when n bytes really follow
 * (a server that lies, or a fuzzer, gets IMK_EPARSE, never a read past the
 * end). Literals whose bytes were streamed out as body events are listed in
 * ctx->streamed by the offset of their announcement; at such an offset the
 * lexer takes the announcement and no bytes.
 *
 * Character classes come from one 256-entry table (RFC 9051 section 9):
 *
 *     ATOM-CHAR     = <any CHAR except atom-specials>
 *     atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
 *                     quoted-specials / resp-specials
 *     ASTRING-CHAR  = ATOM-CHAR / resp-specials
 *     list-char     = ATOM-CHAR / list-wildcards / resp-specials
 *
 * Nothing here calls malloc per token: values are arena-allocated, strings
 * that need no unescaping point into the response buffer (the buffer lives
 * as long as the arena's values, until the reader's next event).
 *
 * Errors: the first error recorded in ctx wins; later failures return the
 * recorded code, so whatever unwinds the stack returns the same code that
 * ctx->err_code holds. Messages say what was expected and what was found;
 * they are built in the arena, or are the static "expected" text when even
 * that allocation fails.
 *
 * Quirks handled here (QUIRKS.md): Q1-Q5 trailing spaces before CRLF or ")"
 * (IMK_QUIRK_TRAILING_SPACE), Q6 runs of spaces (IMK_QUIRK_EXTRA_SPACES),
 * Q10 bare LF (IMK_QUIRK_BARE_LF), Q20-Q22 out-of-range 32-bit numbers
 * (IMK_QUIRK_NUMBER_RANGE), Q23/Q24 "-1" (IMK_QUIRK_NEGATIVE_NUMBER), Q25
 * float forms (IMK_QUIRK_FLOAT_NUMBER), Q34 unescaped quotes
 * (IMK_QUIRK_QUOTE_HEURISTIC). Each use is recorded in lx->quirks_seen.
 */
#include "proto/lexer.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf7.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Short local names for the shared helpers of lexer.h. */
#define upper imk__ascii_upper
#define quirk_allowed imk__quirk_allowed

/* ------------------------------------------------------------------ */
/* Character classes                                                   */
/* ------------------------------------------------------------------ */

enum {
    C_ATOM = 1u << 0,  /* ATOM-CHAR */
    C_ASTR = 1u << 1,  /* ASTRING-CHAR */
    C_LIST = 1u << 2,  /* list-char (ATOM-CHAR, wildcards, "]") */
    C_DIGIT = 1u << 3, /* DIGIT */
    C_VALUE = 1u << 4  /* generic atom token: list-char and "\" */
};

/* Generated from the rules above: 0x21-0x7e only; "(" ")" "{" DQUOTE are
 * nothing; "\\" is C_VALUE; "%" "*" are C_LIST|C_VALUE; "]" is
 * C_ASTR|C_LIST|C_VALUE; every other printable is all of C_ATOM..C_VALUE
 * (digits also C_DIGIT). */
/* clang-format off */
static const unsigned char char_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0, 23,  0, 23, 23, 20, 23, 23,  0,  0, 20, 23, 23, 23, 23, 23,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23,
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 16, 22, 23, 23,
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  0, 23, 23, 23,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};
/* clang-format on */

static inline unsigned cls(unsigned char c)
{
    return char_class[c];
}

/* ------------------------------------------------------------------ */
/* Set-up and errors                                                   */
/* ------------------------------------------------------------------ */

void imk__lex_init(imk__lexer *lx, imk__parse_ctx *ctx)
{
    lx->ctx = ctx;
    lx->buf = ctx->buf;
    lx->len = ctx->len;
    lx->pos = 0;
    lx->next_streamed = 0;
    lx->depth = 0;
    lx->quirks_seen = 0;
}

static void set_error(imk__lexer *lx, int code, size_t pos, const char *msg)
{
    imk__parse_ctx *ctx = lx->ctx;
    if (ctx->err_code != 0)
        return;
    ctx->err_code = code;
    ctx->err_pos = pos;
    ctx->err_msg = msg;
}

/* Append `s` to the message being built (bounded by `cap`). */
static size_t put(char *m, size_t at, size_t cap, const char *s, size_t n)
{
    if (n > cap - at)
        n = cap - at;
    memcpy(m + at, s, n);
    return at + n;
}

/* "expected <what>, found <description of the bytes at pos>". */
static const char *build_message(imk__lexer *lx, const char *expected, size_t pos)
{
    static const char hex[] = "0123456789abcdef";
    enum { SHOW = 24 };
    size_t elen = strlen(expected);
    size_t cap = elen + 32 + SHOW * 4;
    char *m = imk__arena_alloc(lx->ctx->arena, cap + 1);
    if (m == NULL)
        return expected;
    size_t at = 0;
    at = put(m, at, cap, "expected ", 9);
    at = put(m, at, cap, expected, elen);
    at = put(m, at, cap, ", found ", 8);
    if (pos >= lx->len) {
        at = put(m, at, cap, "end of data", 11);
    } else if (lx->buf[pos] == '\r' || lx->buf[pos] == '\n') {
        at = put(m, at, cap, "end of line", 11);
    } else if (lx->buf[pos] == ' ') {
        at = put(m, at, cap, "SP", 2);
    } else {
        at = put(m, at, cap, "\"", 1);
        size_t i;
        for (i = pos; i < lx->len && i - pos < SHOW; i++) {
            unsigned char c = (unsigned char)lx->buf[i];
            if (c == '\r' || c == '\n')
                break;
            if (c == '\\' || c == '"') {
                char esc[2] = {'\\', (char)c};
                at = put(m, at, cap, esc, 2);
            } else if (c >= 0x20 && c < 0x7f) {
                char ch = (char)c;
                at = put(m, at, cap, &ch, 1);
            } else {
                char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
                at = put(m, at, cap, esc, 4);
            }
        }
        at = put(m, at, cap, "\"", 1);
        if (i < lx->len && i - pos >= SHOW && lx->buf[i] != '\r' && lx->buf[i] != '\n')
            at = put(m, at, cap, "...", 3);
    }
    m[at] = '\0';
    return m;
}

static int fail_at(imk__lexer *lx, size_t pos, int code, const char *expected)
{
    imk__parse_ctx *ctx = lx->ctx;
    if (ctx->err_code != 0)
        return ctx->err_code;
    set_error(lx, code, pos, build_message(lx, expected, pos));
    return code;
}

int imk__lex_fail(imk__lexer *lx, const char *expected)
{
    return fail_at(lx, lx->pos, IMK_EPARSE, expected);
}

int imk__lex_fail_code(imk__lexer *lx, int code, const char *message)
{
    imk__parse_ctx *ctx = lx->ctx;
    if (ctx->err_code != 0)
        return ctx->err_code;
    set_error(lx, code, lx->pos, message);
    return code;
}

int imk__lex_fail_range(imk__lexer *lx, size_t pos, const char *message)
{
    imk__parse_ctx *ctx = lx->ctx;
    if (ctx->err_code != 0)
        return ctx->err_code;
    set_error(lx, IMK_ERANGE, pos, message);
    return IMK_ERANGE;
}

static int fail_memory(imk__lexer *lx)
{
    if (lx->ctx->arena->over_limit)
        return imk__lex_fail_code(lx, IMK_ELIMIT, "response too large for the arena limit");
    return imk__lex_fail_code(lx, IMK_ENOMEM, "out of memory");
}

void *imk__lex_alloc(imk__lexer *lx, size_t size)
{
    void *p = imk__arena_alloc(lx->ctx->arena, size == 0 ? 1 : size);
    if (p == NULL) {
        fail_memory(lx);
        return NULL;
    }
    memset(p, 0, size == 0 ? 1 : size);
    return p;
}

void *imk__lex_array(imk__lexer *lx, size_t count, size_t size)
{
    size_t total;
    if (!imk__mul_ok(count, size, &total)) {
        fail_memory(lx);
        return NULL;
    }
    return imk__lex_alloc(lx, total);
}

void imk__vec_init(imk__vec *v, size_t item_size)
{
    v->items = NULL;
    v->count = 0;
    v->cap = 0;
    v->size = item_size;
}

/* Doubling inside the arena: the old array is abandoned (the arena frees
 * everything at once), which costs at most as much again as the final
 * array and keeps the steady state free of malloc calls. */
void *imk__vec_push(imk__lexer *lx, imk__vec *v)
{
    if (v->count >= lx->ctx->limits->max_list_items) {
        imk__lex_fail_code(lx, IMK_ELIMIT, "more items in one list than max_list_items allows");
        return NULL;
    }
    if (v->count == v->cap) {
        size_t ncap = v->cap == 0 ? 8 : v->cap * 2;
        char *n = imk__lex_array(lx, ncap, v->size);
        if (n == NULL)
            return NULL;
        if (v->count != 0)
            memcpy(n, v->items, v->count * v->size);
        v->items = n;
        v->cap = ncap;
    }
    char *item = (char *)v->items + v->count * v->size;
    memset(item, 0, v->size);
    v->count++;
    return item;
}

/* ------------------------------------------------------------------ */
/* Single bytes and words                                              */
/* ------------------------------------------------------------------ */

int imk__lex_peek(const imk__lexer *lx)
{
    return lx->pos < lx->len ? (unsigned char)lx->buf[lx->pos] : -1;
}

int imk__lex_peek_word(const imk__lexer *lx, const char *s)
{
    size_t n = strlen(s);
    if (n > lx->len - lx->pos)
        return 0;
    const char *p = lx->buf + lx->pos;
    for (size_t i = 0; i < n; i++)
        if (upper((unsigned char)p[i]) != upper((unsigned char)s[i]))
            return 0;
    return 1;
}

int imk__lex_accept(imk__lexer *lx, const char *s)
{
    if (!imk__lex_peek_word(lx, s))
        return 0;
    lx->pos += strlen(s);
    return 1;
}

int imk__lex_accept_word(imk__lexer *lx, const char *s)
{
    if (!imk__lex_peek_word(lx, s))
        return 0;
    size_t end = lx->pos + strlen(s);
    if (end < lx->len && (cls((unsigned char)lx->buf[end]) & C_VALUE))
        return 0;
    lx->pos = end;
    return 1;
}

int imk__lex_expect(imk__lexer *lx, char c)
{
    if (lx->pos < lx->len && lx->buf[lx->pos] == c) {
        lx->pos++;
        return 0;
    }
    switch (c) {
    case '(':
        return imk__lex_fail(lx, "\"(\"");
    case ')':
        return imk__lex_fail(lx, "\")\"");
    case '[':
        return imk__lex_fail(lx, "\"[\"");
    case ']':
        return imk__lex_fail(lx, "\"]\"");
    case '<':
        return imk__lex_fail(lx, "\"<\"");
    case '>':
        return imk__lex_fail(lx, "\">\"");
    case '{':
        return imk__lex_fail(lx, "\"{\"");
    case '}':
        return imk__lex_fail(lx, "\"}\"");
    case '"':
        return imk__lex_fail(lx, "'\"'");
    case ' ':
        return imk__lex_fail(lx, "SP");
    case '.':
        return imk__lex_fail(lx, "\".\"");
    default:
        return imk__lex_fail(lx, "a delimiter");
    }
}

/* ------------------------------------------------------------------ */
/* Spaces, line end, lists                                             */
/* ------------------------------------------------------------------ */

/* SP = %x20. Q6: runs of spaces ("*  22279 EXISTS") under
 * IMK_QUIRK_EXTRA_SPACES. */
int imk__lex_sp(imk__lexer *lx)
{
    if (lx->pos >= lx->len || lx->buf[lx->pos] != ' ')
        return imk__lex_fail(lx, "SP");
    lx->pos++;
    if (lx->pos < lx->len && lx->buf[lx->pos] == ' ' && quirk_allowed(lx, IMK_QUIRK_EXTRA_SPACES)) {
        while (lx->pos < lx->len && lx->buf[lx->pos] == ' ')
            lx->pos++;
        lx->quirks_seen |= IMK_QUIRK_EXTRA_SPACES;
    }
    return 0;
}

/* Position after an optional run of spaces starting at `p`. */
static size_t skip_spaces(const imk__lexer *lx, size_t p)
{
    while (p < lx->len && lx->buf[p] == ' ')
        p++;
    return p;
}

/* Length of the line terminator at `p` (2 for CRLF, 1 for a bare LF when
 * allowed), or 0. */
static size_t eol_len(const imk__lexer *lx, size_t p)
{
    if (p < lx->len && lx->buf[p] == '\r' && p + 1 < lx->len && lx->buf[p + 1] == '\n')
        return 2;
    if (p < lx->len && lx->buf[p] == '\n' && quirk_allowed(lx, IMK_QUIRK_BARE_LF))
        return 1;
    return 0;
}

/* Q1-Q4: trailing spaces before CRLF under IMK_QUIRK_TRAILING_SPACE;
 * Q10: bare LF under IMK_QUIRK_BARE_LF. */
int imk__lex_eol(imk__lexer *lx)
{
    size_t p = skip_spaces(lx, lx->pos);
    if (p != lx->pos) {
        if (!quirk_allowed(lx, IMK_QUIRK_TRAILING_SPACE) || eol_len(lx, p) == 0)
            return imk__lex_fail(lx, "CRLF at the end of the response");
        lx->quirks_seen |= IMK_QUIRK_TRAILING_SPACE;
        lx->pos = p;
    }
    size_t n = eol_len(lx, lx->pos);
    if (n == 0)
        return imk__lex_fail(lx, "CRLF at the end of the response");
    if (n == 1)
        lx->quirks_seen |= IMK_QUIRK_BARE_LF;
    lx->pos += n;
    if (lx->pos != lx->len)
        return imk__lex_fail(lx, "the end of the response after CRLF");
    return 0;
}

int imk__lex_at_eol(const imk__lexer *lx)
{
    size_t p = lx->pos;
    if (quirk_allowed(lx, IMK_QUIRK_TRAILING_SPACE))
        p = skip_spaces(lx, p);
    if (p >= lx->len)
        return 1;
    return eol_len(lx, p) != 0;
}

/* "(" with the nesting limit (DESIGN.md section 6: max_depth). */
int imk__lex_list_begin(imk__lexer *lx)
{
    if (lx->pos >= lx->len || lx->buf[lx->pos] != '(')
        return imk__lex_fail(lx, "\"(\"");
    if (lx->depth >= lx->ctx->limits->max_depth)
        return imk__lex_fail_code(lx, IMK_ELIMIT, "lists nested deeper than max_depth allows");
    lx->depth++;
    lx->pos++;
    return 0;
}

/* ")" - Q5 ("(UID 19436 )") spaces before it under
 * IMK_QUIRK_TRAILING_SPACE. */
int imk__lex_list_end(imk__lexer *lx)
{
    size_t p = skip_spaces(lx, lx->pos);
    if (p != lx->pos && p < lx->len && lx->buf[p] == ')' &&
        quirk_allowed(lx, IMK_QUIRK_TRAILING_SPACE)) {
        lx->quirks_seen |= IMK_QUIRK_TRAILING_SPACE;
        lx->pos = p;
    }
    if (lx->pos >= lx->len || lx->buf[lx->pos] != ')')
        return imk__lex_fail(lx, "\")\"");
    lx->pos++;
    if (lx->depth > 0)
        lx->depth--;
    return 0;
}

int imk__lex_at_list_end(const imk__lexer *lx)
{
    size_t p = skip_spaces(lx, lx->pos);
    return p < lx->len && lx->buf[p] == ')';
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

/* number = 1*DIGIT ; unsigned 64-bit here (RFC 9051 has 63-bit number64;
 * we accept the full uint64_t range and reject anything wider). */
int imk__lex_number(imk__lexer *lx, uint64_t *out)
{
    size_t p = lx->pos;
    const char *b = lx->buf;
    if (p >= lx->len || !(cls((unsigned char)b[p]) & C_DIGIT))
        return imk__lex_fail(lx, "number");
    uint64_t v = 0;
    while (p < lx->len && (cls((unsigned char)b[p]) & C_DIGIT)) {
        unsigned d = (unsigned)(b[p] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return imk__lex_fail_range(lx, lx->pos,
                                       "number out of range: more than 18446744073709551615");
        v = v * 10 + d;
        p++;
    }
    lx->pos = p;
    *out = v;
    return 0;
}

/* nz-number = digit-nz *DIGIT ; < 4,294,967,296 (RFC 9051 section 9).
 * Q21/Q22 (0) and Q20 (too big) under IMK_QUIRK_NUMBER_RANGE. */
int imk__lex_nz_number32(imk__lexer *lx, uint32_t *out)
{
    size_t start = lx->pos;
    uint64_t v = 0;
    int rc = imk__lex_number(lx, &v);
    if (rc < 0)
        return rc;
    if (v == 0 || v > UINT32_MAX) {
        if (!quirk_allowed(lx, IMK_QUIRK_NUMBER_RANGE))
            return imk__lex_fail_range(lx, start,
                                       v == 0 ? "expected a non-zero number, found 0"
                                              : "expected a number below 4294967296");
        lx->quirks_seen |= IMK_QUIRK_NUMBER_RANGE;
        if (v > UINT32_MAX)
            v = UINT32_MAX;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Q25: "9.3736e+06" -> 9373600 (digits [. digits] [e [+-] digits]),
 * truncated towards zero. Called at a digit. Returns 1 if a float form was
 * taken, 0 if the token is a plain number (nothing consumed), <0 on error. */
static int lex_float(imk__lexer *lx, uint64_t *out)
{
    const char *b = lx->buf;
    size_t p = lx->pos, n = lx->len;
    uint64_t mant = 0;
    int frac_digits = 0, mant_overflow = 0, is_float = 0;
    while (p < n && b[p] >= '0' && b[p] <= '9') {
        if (mant > (UINT64_MAX - 9) / 10)
            mant_overflow = 1;
        else
            mant = mant * 10 + (uint64_t)(b[p] - '0');
        p++;
    }
    if (p < n && b[p] == '.') {
        is_float = 1;
        p++;
        if (p >= n || b[p] < '0' || b[p] > '9')
            return 0;
        while (p < n && b[p] >= '0' && b[p] <= '9') {
            if (mant > (UINT64_MAX - 9) / 10) {
                p++;
                continue; /* ignore digits beyond precision */
            }
            mant = mant * 10 + (uint64_t)(b[p] - '0');
            frac_digits++;
            p++;
        }
    }
    long exp = 0;
    if (p < n && (b[p] == 'e' || b[p] == 'E')) {
        size_t q = p + 1;
        int neg = 0;
        if (q < n && (b[q] == '+' || b[q] == '-')) {
            neg = b[q] == '-';
            q++;
        }
        if (q >= n || b[q] < '0' || b[q] > '9')
            return 0;
        while (q < n && b[q] >= '0' && b[q] <= '9') {
            if (exp < 10000)
                exp = exp * 10 + (b[q] - '0');
            q++;
        }
        if (neg)
            exp = -exp;
        is_float = 1;
        p = q;
    }
    if (!is_float)
        return 0;
    if (mant_overflow)
        return imk__lex_fail_range(
            lx, lx->pos, "number out of range (float form): more than 18446744073709551615");
    long shift = exp - frac_digits;
    uint64_t v = mant;
    for (; shift > 0; shift--) {
        if (v > UINT64_MAX / 10)
            return imk__lex_fail_range(
                lx, lx->pos, "number out of range (float form): more than 18446744073709551615");
        v *= 10;
    }
    for (; shift < 0 && v != 0; shift++)
        v /= 10;
    lx->pos = p;
    *out = v;
    return 1;
}

int imk__lex_number_lenient(imk__lexer *lx, uint64_t *out)
{
    int c = imk__lex_peek(lx);
    if (c == '-' && quirk_allowed(lx, IMK_QUIRK_NEGATIVE_NUMBER)) {
        /* Q23 (body size -1), Q24 (MODSEQ (-1)): taken as 0. */
        size_t p = lx->pos + 1;
        if (p < lx->len && lx->buf[p] >= '0' && lx->buf[p] <= '9') {
            while (p < lx->len && lx->buf[p] >= '0' && lx->buf[p] <= '9')
                p++;
            lx->pos = p;
            lx->quirks_seen |= IMK_QUIRK_NEGATIVE_NUMBER;
            *out = 0;
            return 0;
        }
    }
    if (c >= '0' && c <= '9' && quirk_allowed(lx, IMK_QUIRK_FLOAT_NUMBER)) {
        int rc = lex_float(lx, out);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            lx->quirks_seen |= IMK_QUIRK_FLOAT_NUMBER;
            return 0;
        }
    }
    return imk__lex_number(lx, out);
}

/* ------------------------------------------------------------------ */
/* Atoms and strings                                                   */
/* ------------------------------------------------------------------ */

/* All string results go through here so that the choice "point into the
 * buffer" is made in one place. */
static inline void set_str(imk_str *out, const char *p, size_t n)
{
    out->data = p;
    out->len = n;
}

static int lex_class_run(imk__lexer *lx, unsigned mask, imk_str *out, const char *what)
{
    size_t p = lx->pos;
    const char *b = lx->buf;
    while (p < lx->len && (cls((unsigned char)b[p]) & mask))
        p++;
    if (p == lx->pos)
        return imk__lex_fail(lx, what);
    set_str(out, b + lx->pos, p - lx->pos);
    lx->pos = p;
    return 0;
}

/* atom = 1*ATOM-CHAR */
int imk__lex_atom(imk__lexer *lx, imk_str *out)
{
    return lex_class_run(lx, C_ATOM, out, "atom");
}

/* 1*ASTRING-CHAR (ATOM-CHAR / resp-specials) */
int imk__lex_astring_atom(imk__lexer *lx, imk_str *out)
{
    return lex_class_run(lx, C_ASTR, out, "atom");
}

/* A closing quote ends the string unless, under Q34's heuristic, it is not
 * followed by something that can follow a string: "]", ")", SP, CR, LF or
 * the end of the buffer. */
static int quote_closes(const imk__lexer *lx, size_t p)
{
    if (p + 1 >= lx->len)
        return 1;
    switch (lx->buf[p + 1]) {
    case ']':
    case ')':
    case ' ':
    case '\r':
    case '\n':
        return 1;
    default:
        return 0;
    }
}

/* Bytes that end a run of plain QUOTED-CHARs: DQUOTE, "\", CR, LF, NUL. */
static const unsigned char quoted_stop[256] = {
    [0] = 1, ['\r'] = 1, ['\n'] = 1, ['"'] = 1, ['\\'] = 1,
};

/*
 * quoted          = DQUOTE *QUOTED-CHAR DQUOTE
 * QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
 *                   "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
 * (RFC 9051 section 9.) NUL, CR and LF end nothing: they are errors.
 */
static int lex_quoted(imk__lexer *lx, imk_str *out)
{
    const char *b = lx->buf;
    size_t start = lx->pos + 1, p = start;
    int escapes = 0, heuristic = 0;
    for (;;) {
        /* the common case: a run of plain characters */
        while (p < lx->len && !quoted_stop[(unsigned char)b[p]])
            p++;
        if (p >= lx->len)
            return fail_at(lx, p, IMK_EPARSE, "closing '\"' of a quoted string");
        char c = b[p];
        if (c == '"') {
            if (quote_closes(lx, p) || !quirk_allowed(lx, IMK_QUIRK_QUOTE_HEURISTIC))
                break;
            heuristic = 1; /* Q34: an unescaped quote inside the string */
            p++;
            continue;
        }
        if (c == '\\') {
            if (p + 1 < lx->len && (b[p + 1] == '"' || b[p + 1] == '\\')) {
                escapes = 1;
                p += 2;
                continue;
            }
            return fail_at(lx, p + 1, IMK_EPARSE, "'\"' or '\\' after '\\' in a quoted string");
        }
        if (c == '\r' || c == '\n' || c == '\0')
            return fail_at(lx, p, IMK_EPARSE, "closing '\"' of a quoted string");
        p++;
    }
    if (heuristic)
        lx->quirks_seen |= IMK_QUIRK_QUOTE_HEURISTIC;
    if (!escapes) {
        set_str(out, b + start, p - start);
    } else {
        char *d = imk__arena_alloc(lx->ctx->arena, p - start + 1);
        if (d == NULL)
            return fail_memory(lx);
        size_t n = 0;
        for (size_t i = start; i < p; i++) {
            if (b[i] == '\\')
                i++;
            d[n++] = b[i];
        }
        d[n] = '\0';
        set_str(out, d, n);
    }
    lx->pos = p + 1;
    return 0;
}

/*
 * literal  = "{" number64 ["+"] "}" CRLF *CHAR8      (RFC 9051 section 9;
 * literal8 = "~{" number64 "}" CRLF *OCTET           "+" only from clients)
 *
 * The size is checked against the bytes left in the buffer: a lying
 * announcement is IMK_EPARSE, never a read past the end.
 */
static int lex_literal(imk__lexer *lx, imk_str *out, int *streamed_out, uint64_t *size_out,
                       int *binary_out)
{
    const char *b = lx->buf;
    size_t start = lx->pos, p = start;
    int binary = 0;
    if (p < lx->len && b[p] == '~') {
        binary = 1;
        p++;
    }
    if (p >= lx->len || b[p] != '{')
        return imk__lex_fail(lx, "\"{\" of a literal");
    p++;
    lx->pos = p;
    uint64_t n;
    int rc = imk__lex_number(lx, &n);
    if (rc < 0)
        return rc;
    p = lx->pos;
    if (p >= lx->len || b[p] != '}')
        return imk__lex_fail(lx, "\"}\" after the literal size");
    p++;
    lx->pos = p;
    size_t el = eol_len(lx, p);
    if (el == 0)
        return imk__lex_fail(lx, "CRLF after a literal announcement");
    if (el == 1)
        lx->quirks_seen |= IMK_QUIRK_BARE_LF;
    p += el;

    const imk__parse_ctx *ctx = lx->ctx;
    while (lx->next_streamed < ctx->streamed_count &&
           ctx->streamed[lx->next_streamed].offset < start)
        lx->next_streamed++;
    if (lx->next_streamed < ctx->streamed_count &&
        ctx->streamed[lx->next_streamed].offset == start) {
        if (streamed_out == NULL) {
            lx->pos = start;
            return imk__lex_fail(lx, "a string (a streamed body literal is not one)");
        }
        *streamed_out = 1;
        if (size_out != NULL)
            *size_out = ctx->streamed[lx->next_streamed].size;
        if (binary_out != NULL)
            *binary_out = binary;
        lx->next_streamed++;
        set_str(out, b + p, 0);
        lx->pos = p;
        return 0;
    }
    if (n > (uint64_t)(lx->len - p)) {
        lx->pos = start;
        return imk__lex_fail(lx, "a literal no longer than the rest of the response");
    }
    set_str(out, b + p, (size_t)n);
    if (streamed_out != NULL)
        *streamed_out = 0;
    if (size_out != NULL)
        *size_out = n;
    if (binary_out != NULL)
        *binary_out = binary;
    lx->pos = p + (size_t)n;
    return 0;
}

/* "{" or "~{" at the current position: a literal follows. */
static inline int at_literal(const imk__lexer *lx)
{
    if (lx->pos >= lx->len)
        return 0;
    char c = lx->buf[lx->pos];
    return c == '{' || (c == '~' && lx->pos + 1 < lx->len && lx->buf[lx->pos + 1] == '{');
}

/* string = quoted / literal */
int imk__lex_string_ex(imk__lexer *lx, imk_str *out, int *streamed_out, uint64_t *size_out,
                       int *binary_out)
{
    int c = imk__lex_peek(lx);
    if (c == '"') {
        if (streamed_out != NULL)
            *streamed_out = 0;
        if (binary_out != NULL)
            *binary_out = 0;
        int rc = lex_quoted(lx, out);
        if (rc == 0 && size_out != NULL)
            *size_out = out->len;
        return rc;
    }
    if (at_literal(lx))
        return lex_literal(lx, out, streamed_out, size_out, binary_out);
    return imk__lex_fail(lx, "a string (quoted or literal)");
}

int imk__lex_string(imk__lexer *lx, imk_str *out)
{
    return imk__lex_string_ex(lx, out, NULL, NULL, NULL);
}

/* astring = 1*ASTRING-CHAR / string */
int imk__lex_astring(imk__lexer *lx, imk_str *out)
{
    if (imk__lex_peek(lx) == '"' || at_literal(lx))
        return imk__lex_string(lx, out);
    return lex_class_run(lx, C_ASTR, out, "an astring (atom, quoted string or literal)");
}

/* nstring = string / nil */
int imk__lex_nstring(imk__lexer *lx, imk_str *out)
{
    if (imk__lex_peek(lx) == '"' || at_literal(lx))
        return imk__lex_string(lx, out);
    if (imk__lex_accept_word(lx, "NIL")) {
        out->data = NULL;
        out->len = 0;
        return 0;
    }
    return imk__lex_fail(lx, "a string or NIL");
}

/*
 * flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
 *        flag-keyword / flag-extension
 * flag-extension = "\" atom ; flag-keyword = atom
 * flag-perm = flag / "\*"                         (RFC 9051 section 9)
 */
int imk__lex_flag(imk__lexer *lx, imk_str *out)
{
    size_t p = lx->pos;
    const char *b = lx->buf;
    if (p < lx->len && b[p] == '\\') {
        p++;
        if (p < lx->len && b[p] == '*') {
            p++;
        } else {
            while (p < lx->len && (cls((unsigned char)b[p]) & C_ATOM))
                p++;
            if (p == lx->pos + 1)
                return fail_at(lx, p, IMK_EPARSE, "a flag name after \"\\\"");
        }
        set_str(out, b + lx->pos, p - lx->pos);
        lx->pos = p;
        return 0;
    }
    return lex_class_run(lx, C_ATOM, out, "a flag");
}

/* "(" [item *(SP item)] ")" for string items: flag lists, BADCHARSET,
 * BADEVENT. `sep_expected` names what was expected when an item is followed
 * by neither SP nor ")". */
int imk__lex_paren_strlist(imk__lexer *lx, int (*item)(imk__lexer *, imk_str *),
                           const char *sep_expected, imk_strlist *out)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_str));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_str *s = imk__vec_push(lx, &v);
            if (s == NULL)
                return lx->ctx->err_code;
            if ((rc = item(lx, s)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if (imk__lex_peek(lx) != ' ')
                return imk__lex_fail(lx, sep_expected);
            if ((rc = imk__lex_sp(lx)) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/* flag-list = "(" [flag *(SP flag)] ")" */
int imk__lex_flag_list(imk__lexer *lx, imk_strlist *out)
{
    return imk__lex_paren_strlist(lx, imk__lex_flag, "SP or \")\" in a flag list", out);
}

/* ------------------------------------------------------------------ */
/* Mailbox names                                                       */
/* ------------------------------------------------------------------ */

/* An imk_allocator over the arena (user = the arena): each block carries
 * its size in a header so realloc can copy; free is a no-op because the
 * arena releases everything at once. */
#define ARENA_HDR (sizeof(max_align_t))

static void *arena_malloc(size_t size, void *user)
{
    if (size > SIZE_MAX - ARENA_HDR)
        return NULL;
    char *p = imk__arena_alloc(user, size + ARENA_HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof(size));
    return p + ARENA_HDR;
}

static void *arena_realloc(void *ptr, size_t size, void *user)
{
    if (ptr == NULL)
        return arena_malloc(size, user);
    size_t old;
    memcpy(&old, (char *)ptr - ARENA_HDR, sizeof(old));
    if (size <= old)
        return ptr;
    void *n = arena_malloc(size, user);
    if (n != NULL)
        memcpy(n, ptr, old);
    return n;
}

static void arena_free(void *ptr, void *user)
{
    (void)ptr;
    (void)user;
}

/*
 * mailbox = "INBOX" / astring   ; INBOX is case-insensitive
 * The wire form is modified UTF-7 (RFC 3501 section 5.1.3) unless
 * UTF8=ACCEPT is on (RFC 6855: UTF-8). A name that is not valid in its
 * encoding is kept as sent with *not_utf7 = 1 rather than failing the
 * response: the raw form is still what the server wants back.
 */
int imk__lex_mailbox_decode(imk__lexer *lx, imk_str raw, imk_str *name, int *not_utf7)
{
    static const char inbox[] = "INBOX";
    *not_utf7 = 0;
    if (raw.len == 5 && upper((unsigned char)raw.data[0]) == 'I' &&
        upper((unsigned char)raw.data[1]) == 'N' && upper((unsigned char)raw.data[2]) == 'B' &&
        upper((unsigned char)raw.data[3]) == 'O' && upper((unsigned char)raw.data[4]) == 'X') {
        set_str(name, inbox, 5);
        return 0;
    }
    *name = raw;
    if (lx->ctx->limits->utf8_mailboxes) {
        if (!imk__utf8_is_valid(raw.data, raw.len))
            *not_utf7 = 1;
        return 0;
    }
    int needs_decode = 0;
    for (size_t i = 0; i < raw.len; i++) {
        unsigned char c = (unsigned char)raw.data[i];
        if (c == '&') {
            needs_decode = 1;
        } else if (c < 0x20 || c > 0x7e) {
            *not_utf7 = 1; /* 8-bit or control bytes: not modified UTF-7 */
            return 0;
        }
    }
    if (!needs_decode)
        return 0;
    /* The decoder appends to an imk__buf; give it an allocator that takes
     * its memory from the arena, so decoding allocates nothing in steady
     * state and the result needs no copy. */
    imk_allocator arena_alloc = {arena_malloc, arena_realloc, arena_free, lx->ctx->arena};
    imk__buf tmp;
    imk__buf_init(&tmp, &arena_alloc, 0);
    int rc = imk__utf7_decode(&tmp, raw.data, raw.len);
    if (rc == IMK_EUTF7) {
        *not_utf7 = 1;
        return 0;
    }
    if (rc < 0)
        return rc == IMK_ENOMEM ? fail_memory(lx)
                                : imk__lex_fail_code(lx, rc, "mailbox name too long to decode");
    if (tmp.data == NULL) {
        set_str(name, "", 0);
        return 0;
    }
    set_str(name, tmp.data, tmp.len);
    return 0;
}

int imk__lex_mailbox(imk__lexer *lx, imk_str *name, imk_str *raw, int *not_utf7)
{
    int rc = imk__lex_astring(lx, raw);
    if (rc < 0)
        return rc;
    return imk__lex_mailbox_decode(lx, *raw, name, not_utf7);
}

/* ------------------------------------------------------------------ */
/* Sequence sets                                                       */
/* ------------------------------------------------------------------ */

/*
 * sequence-set = (seq-number / seq-range) ["," sequence-set]
 * seq-range    = seq-number ":" seq-number
 * seq-number   = nz-number / "*"                (RFC 9051 section 9)
 * "*" is stored as 0.
 */
static int lex_seq_number(imk__lexer *lx, uint32_t *out)
{
    if (imk__lex_peek(lx) == '*') {
        lx->pos++;
        *out = 0;
        return 0;
    }
    if (imk__lex_peek(lx) < '0' || imk__lex_peek(lx) > '9')
        return imk__lex_fail(lx, "a sequence number or \"*\"");
    return imk__lex_nz_number32(lx, out);
}

int imk__lex_seqset(imk__lexer *lx, imk_seqset *out)
{
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_range));
    for (;;) {
        imk_range *r = imk__vec_push(lx, &v);
        if (r == NULL)
            return lx->ctx->err_code;
        int rc = lex_seq_number(lx, &r->first);
        if (rc < 0)
            return rc;
        r->last = r->first;
        if (imk__lex_peek(lx) == ':') {
            lx->pos++;
            if ((rc = lex_seq_number(lx, &r->last)) < 0)
                return rc;
        }
        if (imk__lex_peek(lx) != ',')
            break;
        lx->pos++;
    }
    out->count = v.count;
    out->ranges = v.items;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Text and generic values                                             */
/* ------------------------------------------------------------------ */

/* text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4): everything to the line
 * end (CR or LF). May be empty; the caller decides whether that is legal. */
int imk__lex_text(imk__lexer *lx, imk_str *out)
{
    const char *b = lx->buf;
    size_t p = lx->pos;
    const char *cr = memchr(b + p, '\r', lx->len - p);
    size_t end = cr != NULL ? (size_t)(cr - b) : lx->len;
    const char *lf = memchr(b + p, '\n', end - p);
    if (lf != NULL)
        end = (size_t)(lf - b);
    set_str(out, b + p, end - p);
    lx->pos = end;
    return 0;
}

static int is_delim(const imk__lexer *lx, size_t p)
{
    return p >= lx->len || !(cls((unsigned char)lx->buf[p]) & C_VALUE);
}

/*
 * A generic token: 1*(list-char / "\") with "[...]" kept whole (it may hold
 * SP and parentheses: BODY[HEADER.FIELDS (A B)]<0>).
 */
static int lex_value_atom(imk__lexer *lx, imk_str *out)
{
    const char *b = lx->buf;
    size_t p = lx->pos;
    for (;;) {
        while (p < lx->len && (cls((unsigned char)b[p]) & C_VALUE) && b[p] != '[')
            p++;
        if (p < lx->len && b[p] == '[') {
            size_t q = p + 1;
            while (q < lx->len && b[q] != ']' && b[q] != '\r' && b[q] != '\n')
                q++;
            if (q >= lx->len || b[q] != ']') {
                p++; /* an unbalanced "[": plain atom char */
                continue;
            }
            p = q + 1;
            continue;
        }
        break;
    }
    if (p == lx->pos)
        return imk__lex_fail(lx, "a value (atom, number, string, NIL or list)");
    set_str(out, b + lx->pos, p - lx->pos);
    lx->pos = p;
    return 0;
}

static int lex_value_into(imk__lexer *lx, imk_value *v);

static int lex_list_into(imk__lexer *lx, imk_value *v)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    imk__vec items;
    imk__vec_init(&items, sizeof(imk_value));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_value *item = imk__vec_push(lx, &items);
            if (item == NULL)
                return lx->ctx->err_code;
            if ((rc = lex_value_into(lx, item)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if (imk__lex_peek(lx) != ' ')
                return imk__lex_fail(lx, "SP or \")\" after a list item");
            if ((rc = imk__lex_sp(lx)) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    v->type = IMK_VALUE_LIST;
    v->count = items.count;
    v->items = items.items;
    return 0;
}

static int lex_value_into(imk__lexer *lx, imk_value *v)
{
    int c = imk__lex_peek(lx);
    int rc;
    switch (c) {
    case '(':
        return lex_list_into(lx, v);
    case '"':
        v->type = IMK_VALUE_STRING;
        return lex_quoted(lx, &v->str);
    case '{':
    case '~':
        if (c == '~' && (lx->pos + 1 >= lx->len || lx->buf[lx->pos + 1] != '{'))
            break;
        v->type = IMK_VALUE_LITERAL;
        return lex_literal(lx, &v->str, &v->streamed, &v->number, &v->binary);
    case -1:
        return imk__lex_fail(lx, "a value");
    default:
        break;
    }
    if ((rc = lex_value_atom(lx, &v->str)) < 0)
        return rc;
    v->type = IMK_VALUE_ATOM;
    if (v->str.len == 3 && upper((unsigned char)v->str.data[0]) == 'N' &&
        upper((unsigned char)v->str.data[1]) == 'I' &&
        upper((unsigned char)v->str.data[2]) == 'L') {
        v->type = IMK_VALUE_NIL;
        v->str.data = NULL;
        v->str.len = 0;
        return 0;
    }
    /* Digits only: a NUMBER. Wider than 64 bits stays an ATOM - an unknown
     * extension's data is delivered, not rejected. */
    uint64_t n = 0;
    size_t i;
    for (i = 0; i < v->str.len; i++) {
        unsigned d = (unsigned)(v->str.data[i] - '0');
        if (d > 9 || n > (UINT64_MAX - d) / 10)
            break;
        n = n * 10 + d;
    }
    if (i == v->str.len) {
        v->type = IMK_VALUE_NUMBER;
        v->number = n;
    }
    return 0;
}

int imk__lex_value(imk__lexer *lx, imk_value **out)
{
    imk_value *v = imk__lex_alloc(lx, sizeof(*v));
    if (v == NULL)
        return lx->ctx->err_code;
    int rc = lex_value_into(lx, v);
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

/* Values separated by SP until ")" (not consumed), the line end or the end
 * of the buffer (for sub-lexers over a response code's arguments). */
int imk__lex_values_until_end(imk__lexer *lx, imk_value **out)
{
    imk_value *list = imk__lex_alloc(lx, sizeof(*list));
    if (list == NULL)
        return lx->ctx->err_code;
    list->type = IMK_VALUE_LIST;
    imk__vec items;
    imk__vec_init(&items, sizeof(imk_value));
    for (;;) {
        if (lx->pos >= lx->len || imk__lex_at_eol(lx) || imk__lex_at_list_end(lx))
            break;
        if (items.count > 0) {
            int rc = imk__lex_sp(lx);
            if (rc < 0)
                return rc;
            /* spaces then the end of a sub-range (code arguments "14  ") */
            if (lx->pos >= lx->len)
                break;
        }
        imk_value *item = imk__vec_push(lx, &items);
        if (item == NULL)
            return lx->ctx->err_code;
        int rc = lex_value_into(lx, item);
        if (rc < 0)
            return rc;
    }
    list->count = items.count;
    list->items = items.items;
    *out = list;
    return 0;
}

/* Used by parser.c for delimiter checks after a keyword. */
int imk__lex_at_delim(const imk__lexer *lx)
{
    return is_delim(lx, lx->pos);
}
