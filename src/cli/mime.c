/* SPDX-License-Identifier: MIT */
/*
 * Header text for people (see mime.h): the RFC 2047 decoder, the terminal
 * sanitiser and the column counter.
 *
 * The decoder reads the text once, left to right, as a sequence of
 *
 *     encoded-word = "=?" charset ["*" language] "?" encoding "?" text "?="
 *                                                     (RFC 2047 section 2,
 *                                                      RFC 2231 section 5)
 *
 * and everything else. Decoded bytes of adjacent encoded-words in the same
 * charset are gathered before conversion, because real mailers split one
 * multi-byte character over two words although section 5 forbids it; the
 * whitespace between two encoded-words is dropped (section 6.2). Where a
 * word does not parse, its bytes stay text ("=?" is ordinary text then).
 * Like most mail readers we also decode a word that touches other text
 * ("Re:=?UTF-8?Q?...?="), which section 5 does not allow.
 *
 * Invariant: whatever the input, the output is valid UTF-8 (the JSON
 * output and the terminal rely on it). Conversions are done by iconv from
 * the C library; UTF-8, US-ASCII and ISO-8859-1 without it. The converter
 * of the last charset is kept for the next call (one process, one thread).
 */
#define _POSIX_C_SOURCE 200809L

#include "mime.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

/* Longest charset name and encoded-text accepted. RFC 2047 caps a whole
 * word at 75 characters; real mail exceeds that, so the limits are loose
 * but still bound the work. */
#define MAX_CHARSET 64
#define MAX_WORD_TEXT 8192

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */
/* ------------------------------------------------------------------ */

/* The length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes
 * there are not one (overlong forms, surrogates and code points above
 * U+10FFFF are invalid, RFC 3629 section 4). *cp gets the code point. */
static size_t utf8_seq(const unsigned char *p, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1Fu;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0Fu;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static int put_cp(cli_buf *out, uint32_t cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return cli_buf_append(out, b, n);
}

#define REPLACEMENT 0xFFFDu

/* Append bytes that should be UTF-8: valid sequences as they are, each
 * other byte as ISO-8859-1 (latin1 = 1) or as U+FFFD. */
static int put_utf8_lenient(cli_buf *out, const unsigned char *p, size_t len, int latin1)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            if (put_cp(out, latin1 ? p[i] : REPLACEMENT) != 0)
                return -1;
            i++;
            continue;
        }
        if (cli_buf_append(out, p + i, n) != 0)
            return -1;
        i += n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Charsets                                                            */
/* ------------------------------------------------------------------ */

static int ascii_ieq(const char *a, size_t alen, const char *b)
{
    size_t n = strlen(b);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* The one cached converter: charset name (lower case as given) and iconv
 * descriptor, or cd_valid 0. */
static struct {
    char name[MAX_CHARSET + 1];
    iconv_t cd;
    int cd_valid;
} cache;

void cli_mime_cleanup(void)
{
    if (cache.cd_valid)
        iconv_close(cache.cd);
    cache.cd_valid = 0;
    cache.name[0] = '\0';
}

static iconv_t converter(const char *charset, size_t len)
{
    if (cache.cd_valid && ascii_ieq(charset, len, cache.name)) {
        iconv(cache.cd, NULL, NULL, NULL, NULL); /* back to the initial state */
        return cache.cd;
    }
    cli_mime_cleanup();
    char name[MAX_CHARSET + 1];
    memcpy(name, charset, len);
    name[len] = '\0';
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return cd;
    memcpy(cache.name, name, len + 1);
    cache.cd = cd;
    cache.cd_valid = 1;
    return cd;
}

/* Append `len` bytes in `charset` as UTF-8. */
static int put_charset(cli_buf *out, const char *charset, size_t clen, const unsigned char *p,
                       size_t len)
{
    if (ascii_ieq(charset, clen, "utf-8") || ascii_ieq(charset, clen, "utf8") ||
        ascii_ieq(charset, clen, "us-ascii"))
        return put_utf8_lenient(out, p, len, 0);
    if (ascii_ieq(charset, clen, "iso-8859-1") || ascii_ieq(charset, clen, "latin1")) {
        for (size_t i = 0; i < len; i++)
            if (put_cp(out, p[i]) != 0)
                return -1;
        return 0;
    }
    iconv_t cd = converter(charset, clen);
    if (cd == (iconv_t)-1) {
        /* Unknown charset: keep what is ASCII readable. */
        for (size_t i = 0; i < len; i++)
            if (put_cp(out, p[i] < 0x80 ? p[i] : REPLACEMENT) != 0)
                return -1;
        return 0;
    }
    char *in = (char *)(uintptr_t)p;
    size_t in_left = len;
    char chunk[256];
    while (in_left > 0) {
        char *o = chunk;
        size_t o_left = sizeof(chunk);
        size_t r = iconv(cd, &in, &in_left, &o, &o_left);
        int err = r == (size_t)-1 ? errno : 0;
        if (cli_buf_append(out, chunk, sizeof(chunk) - o_left) != 0)
            return -1;
        if (err == E2BIG || err == 0)
            continue;
        /* EILSEQ: a byte that is not in the charset; EINVAL: the input ends
         * inside a character. Either way one replacement, and go on after
         * the byte (EINVAL: after everything). */
        if (put_cp(out, REPLACEMENT) != 0)
            return -1;
        if (err == EILSEQ) {
            in++;
            in_left--;
        } else {
            in_left = 0;
        }
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    /* Flush a stateful encoding's shift sequence (ISO-2022-JP). */
    char *o = chunk;
    size_t o_left = sizeof(chunk);
    iconv(cd, NULL, NULL, &o, &o_left);
    return cli_buf_append(out, chunk, sizeof(chunk) - o_left);
}

/* ------------------------------------------------------------------ */
/* Encoded-words                                                       */
/* ------------------------------------------------------------------ */

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Q encoding (RFC 2047 section 4.2): "_" is a space, "=XX" a byte. A
 * malformed "=" stays as it is. */
static int decode_q(const unsigned char *p, size_t len, cli_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '_') {
            c = ' ';
        } else if (c == '=' && i + 2 < len && hex_value(p[i + 1]) >= 0 &&
                   hex_value(p[i + 2]) >= 0) {
            c = (unsigned char)(hex_value(p[i + 1]) * 16 + hex_value(p[i + 2]));
            i += 2;
        }
        if (cli_buf_append(out, &c, 1) != 0)
            return -1;
    }
    return 0;
}

/* B encoding (section 4.1, base64 of RFC 2045): padding optional, stops at
 * the first "=". Characters outside the alphabet are skipped. */
static int decode_b(const unsigned char *p, size_t len, cli_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && p[i] != '='; i++) {
        int v = b64_value(p[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char c = (unsigned char)((acc >> bits) & 0xFF);
            if (cli_buf_append(out, &c, 1) != 0)
                return -1;
        }
    }
    return 0;
}

typedef struct word {
    const char *charset; /* without the RFC 2231 "*language" */
    size_t charset_len;
    char encoding; /* 'B' or 'Q' */
    const unsigned char *text;
    size_t text_len;
    size_t total; /* bytes from "=?" to "?=" inclusive */
} word;

/* Parse an encoded-word at p; 1 and *w, or 0 when there is none. */
static int parse_word(const char *p, size_t len, word *w)
{
    if (len < 8 || p[0] != '=' || p[1] != '?')
        return 0;
    size_t i = 2;
    size_t star = 0;
    /* charset = token (section 2): no SPACE, CTLs or especials. */
    while (i < len && p[i] != '?') {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7F || strchr("()<>@,;\"/[]=", c) != NULL)
            return 0; /* ("." and ":" are tolerated: a few charset names have them) */
        if (c == '*' && star == 0)
            star = i;
        i++;
        if (i - 2 > MAX_CHARSET)
            return 0;
    }
    if (i >= len || i == 2)
        return 0;
    w->charset = p + 2;
    w->charset_len = (star != 0 ? star : i) - 2;
    if (w->charset_len == 0)
        return 0;
    i++; /* '?' */
    if (i + 2 > len || p[i + 1] != '?')
        return 0;
    char enc = p[i];
    if (enc == 'b')
        enc = 'B';
    if (enc == 'q')
        enc = 'Q';
    if (enc != 'B' && enc != 'Q')
        return 0;
    w->encoding = enc;
    i += 2;
    size_t start = i;
    /* encoded-text: printable ASCII without "?" and without space. */
    while (i < len && p[i] != '?') {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7F)
            return 0;
        i++;
        if (i - start > MAX_WORD_TEXT)
            return 0;
    }
    if (i + 1 >= len || p[i + 1] != '=')
        return 0;
    w->text = (const unsigned char *)p + start;
    w->text_len = i - start;
    w->total = i + 2;
    return 1;
}

/* Decoded bytes of adjacent encoded-words waiting for conversion. */
typedef struct pending {
    cli_buf bytes;
    char charset[MAX_CHARSET + 1];
    size_t charset_len;
} pending;

static int flush(pending *pd, cli_buf *out)
{
    if (pd->bytes.len == 0)
        return 0;
    int rc = put_charset(out, pd->charset, pd->charset_len, (const unsigned char *)pd->bytes.data,
                         pd->bytes.len);
    cli_buf_clear(&pd->bytes);
    return rc;
}

static int is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Append plain header text: folding removed (CR and LF dropped, RFC 5322
 * section 2.2.3), raw 8-bit bytes kept when UTF-8, else read as latin1. */
static int put_plain(cli_buf *out, const char *p, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '\r' || p[i] == '\n') {
            if (put_utf8_lenient(out, (const unsigned char *)p + start, i - start, 1) != 0)
                return -1;
            start = i + 1;
        }
    }
    return 0;
}

int cli_mime_decode(const char *in, size_t len, cli_buf *out)
{
    pending pd = {{0}, {0}, 0};
    int rc = 0;
    int after_word = 0; /* the last thing seen was an encoded-word */
    size_t i = 0;
    while (i < len && rc == 0) {
        /* A run of whitespace: dropped when it separates two words. */
        if (is_wsp(in[i])) {
            size_t j = i;
            while (j < len && is_wsp(in[j]))
                j++;
            word w;
            if (after_word && parse_word(in + j, len - j, &w)) {
                i = j;
                continue;
            }
            rc = flush(&pd, out);
            if (rc == 0)
                rc = put_plain(out, in + i, j - i);
            after_word = 0;
            i = j;
            continue;
        }
        word w;
        if (in[i] == '=' && parse_word(in + i, len - i, &w)) {
            if (pd.bytes.len != 0 &&
                !ascii_ieq(w.charset, w.charset_len, pd.charset) /* another charset */)
                rc = flush(&pd, out);
            if (rc != 0)
                break;
            memcpy(pd.charset, w.charset, w.charset_len);
            pd.charset[w.charset_len] = '\0';
            pd.charset_len = w.charset_len;
            rc = w.encoding == 'B' ? decode_b(w.text, w.text_len, &pd.bytes)
                                   : decode_q(w.text, w.text_len, &pd.bytes);
            after_word = 1;
            i += w.total;
            continue;
        }
        /* Plain text up to the next whitespace or "=?". */
        size_t j = i + 1;
        while (j < len && !is_wsp(in[j]) && !(in[j] == '=' && j + 1 < len && in[j + 1] == '?'))
            j++;
        rc = flush(&pd, out);
        if (rc == 0)
            rc = put_plain(out, in + i, j - i);
        after_word = 0;
        i = j;
    }
    if (rc == 0)
        rc = flush(&pd, out);
    cli_buf_free(&pd.bytes);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Terminal safety and width                                           */
/* ------------------------------------------------------------------ */

static int unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

int cli_mime_display(const char *in, size_t len, cli_buf *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        if (n == 0) {
            cp = REPLACEMENT;
            n = 1;
        } else if (cp == '\t' || cp == '\r' || cp == '\n') {
            cp = ' ';
        } else if (unsafe_cp(cp)) {
            cp = REPLACEMENT;
        }
        if (put_cp(out, cp) != 0)
            return -1;
        i += n;
    }
    return 0;
}

static unsigned cp_width(uint32_t cp)
{
    /* Combining marks and zero-width characters. */
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
        (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
        (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0x200B && cp <= 0x200F) ||
        (cp >= 0x2060 && cp <= 0x2064) || cp == 0xFEFF || (cp >= 0xFE00 && cp <= 0xFE0F))
        return 0;
    /* East Asian Wide and Fullwidth (UAX #11), emoji. */
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
        (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

size_t cli_mime_fit(const char *s, size_t len, size_t cols, size_t *width_out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, width = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        unsigned w = 1;
        if (n == 0)
            n = 1;
        else
            w = cp_width(cp);
        if (width + w > cols)
            break;
        width += w;
        i += n;
    }
    if (width_out != NULL)
        *width_out = width;
    return i;
}

size_t cli_mime_width(const char *s, size_t len)
{
    size_t width = 0;
    cli_mime_fit(s, len, SIZE_MAX, &width);
    return width;
}
