/* SPDX-License-Identifier: MIT */
/*
 * Modified UTF-7 <-> UTF-8, and strict UTF-8 validation.
 *
 * Both conversions run the same core twice: a first pass validates the
 * input and measures the output exactly, then the buffer is grown once and
 * a second pass writes. So a failure leaves `out` untouched without any
 * undo, a buffer maximum is checked against the true output size, and
 * imk__utf7_is_valid() is just the first pass.
 *
 * The decoder accepts exactly the strings the encoder produces. It refuses
 * (IMK_EUTF7):
 *   - a byte outside printable US-ASCII (0x20-0x7e), anywhere;
 *   - a character in a BASE64 run that is not in the modified alphabet;
 *   - a run with no closing "-" (names "MUST end in US-ASCII");
 *   - a run that encodes no whole UTF-16 unit ("&A-", "&AA-"); "&-" is the
 *     literal "&", not a run;
 *   - leftover bits after the last unit that are non-zero, or that are a
 *     whole superfluous character, or that hold an odd byte;
 *   - a unit that is printable US-ASCII (it "MUST NOT" be encoded) - we
 *     refuse it even when the run also encodes other characters, since the
 *     encoder never produces that either;
 *   - an unpaired or reversed surrogate;
 *   - a run right after another ("&AOk-&AOk-"): a null shift.
 * U+0000 and other controls are accepted; they can only be encoded in BASE64,
 * and the decoded length tells the caller about an embedded NUL.
 */
#include "util/utf7.h"

#include <stdint.h>
#include <string.h>

/* RFC 3501 section 5.1.3: '"," is used instead of "/"' in modified BASE64. */
static const char mbase64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* The value of a modified BASE64 character, or -1. */
static int mbase64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == ',')
        return 63;
    return -1;
}

/* RFC 3501 section 5.1.3: "printable US-ASCII characters, except for "&",
 * represent themselves; that is, characters with octet values 0x20-0x25
 * and 0x27-0x7e." */
static int is_printable_ascii(uint32_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

/* Store one byte at dst[*n] when writing; always count it. */
static void put_byte(char *dst, size_t *n, unsigned char c)
{
    if (dst != NULL)
        dst[*n] = (char)c;
    (*n)++;
}

/* Store the UTF-8 form of the scalar value `cp` (never a surrogate). */
static void put_utf8(char *dst, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        put_byte(dst, n, (unsigned char)cp);
    } else if (cp < 0x800) {
        put_byte(dst, n, (unsigned char)(0xC0 | (cp >> 6)));
        put_byte(dst, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        put_byte(dst, n, (unsigned char)(0xE0 | (cp >> 12)));
        put_byte(dst, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put_byte(dst, n, (unsigned char)(0x80 | (cp & 0x3F)));
    } else {
        put_byte(dst, n, (unsigned char)(0xF0 | (cp >> 18)));
        put_byte(dst, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3F)));
        put_byte(dst, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F)));
        put_byte(dst, n, (unsigned char)(0x80 | (cp & 0x3F)));
    }
}

/*
 * RFC 3501 section 5.1.3 (there is no ABNF for modified UTF-7):
 *   "&" is used to shift to modified BASE64 and "-" to shift back to
 *   US-ASCII.  There is no implicit shift from BASE64 to US-ASCII, and
 *   null shifts ("-&" while in BASE64; note that "&-" while in US-ASCII
 *   means "&") are not permitted.  However, all names start in US-ASCII,
 *   and MUST end in US-ASCII; that is, a name that ends with a non-ASCII
 *   ISO-10646 character MUST end with a "-").
 *
 * Validate `in` and count the bytes of its UTF-8 form into *out_len; when
 * `dst` is not NULL, also write them there.
 */
static int decode_core(const char *in, size_t len, char *dst, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t n = 0;
    size_t i = 0;
    int after_run = 0; /* the previous token was a BASE64 run */

    while (i < len) {
        unsigned char c = p[i++];
        if (!is_printable_ascii(c))
            return IMK_EUTF7;
        if (c != '&') {
            put_byte(dst, &n, c);
            after_run = 0;
            continue;
        }
        if (i < len && p[i] == '-') {
            put_byte(dst, &n, '&');
            i++;
            after_run = 0;
            continue;
        }
        if (after_run)
            return IMK_EUTF7;

        uint32_t bits = 0; /* the low `nbits` bits are not yet part of a unit */
        unsigned nbits = 0;
        uint32_t high = 0; /* a high surrogate waiting for its low half */
        size_t units = 0;
        for (;;) {
            if (i >= len)
                return IMK_EUTF7;
            c = p[i++];
            if (c == '-')
                break;
            int v = mbase64_value(c);
            if (v < 0)
                return IMK_EUTF7;
            bits = (bits << 6) | (uint32_t)v;
            nbits += 6;
            if (nbits < 16)
                continue;
            nbits -= 16;
            uint32_t unit = (bits >> nbits) & 0xFFFF;
            bits &= (1u << nbits) - 1;
            units++;
            if (high != 0) {
                if (unit < 0xDC00 || unit > 0xDFFF)
                    return IMK_EUTF7;
                put_utf8(dst, &n, 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00));
                high = 0;
            } else if (unit >= 0xD800 && unit <= 0xDBFF) {
                high = unit;
            } else if ((unit >= 0xDC00 && unit <= 0xDFFF) || is_printable_ascii(unit)) {
                return IMK_EUTF7;
            } else {
                put_utf8(dst, &n, unit);
            }
        }
        /* An odd byte leaves >= 8 bits, a superfluous character 6 more. */
        if (units == 0 || high != 0 || nbits >= 6 || bits != 0)
            return IMK_EUTF7;
        after_run = 1;
    }
    *out_len = n;
    return 0;
}

int imk__utf7_decode(imk__buf *out, const char *in, size_t len)
{
    size_t need = 0;
    int rc = decode_core(in, len, NULL, &need);
    if (rc < 0)
        return rc;
    rc = imk__buf_reserve(out, need);
    if (rc < 0)
        return rc;
    (void)decode_core(in, len, out->data + out->len, &need);
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

int imk__utf7_is_valid(const char *in, size_t len)
{
    size_t need;
    return decode_core(in, len, NULL, &need) == 0;
}

/* The next scalar value of UTF-8 already checked by imk__utf8_is_valid(). */
static uint32_t next_scalar(const unsigned char *p, size_t *i)
{
    uint32_t c = p[*i];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        uint32_t cp = ((c & 0x1F) << 6) | (p[*i + 1] & 0x3Fu);
        *i += 2;
        return cp;
    }
    if (c < 0xF0) {
        uint32_t cp = ((c & 0x0F) << 12) | ((p[*i + 1] & 0x3Fu) << 6) | (p[*i + 2] & 0x3Fu);
        *i += 3;
        return cp;
    }
    uint32_t cp = ((c & 0x07) << 18) | ((p[*i + 1] & 0x3Fu) << 12) | ((p[*i + 2] & 0x3Fu) << 6) |
                  (p[*i + 3] & 0x3Fu);
    *i += 4;
    return cp;
}

/* Append one UTF-16 unit to a BASE64 run, writing each whole sextet. */
static void put_unit(char *dst, size_t *n, uint32_t *bits, unsigned *nbits, uint32_t unit)
{
    *bits = (*bits << 16) | unit;
    *nbits += 16;
    while (*nbits >= 6) {
        *nbits -= 6;
        put_byte(dst, n, (unsigned char)mbase64_alphabet[(*bits >> *nbits) & 0x3F]);
    }
    *bits &= (1u << *nbits) - 1;
}

/*
 * RFC 3501 section 5.1.3:
 *   All other characters (octet values 0x00-0x1f and 0x7f-0xff) are
 *   represented in modified BASE64, with a further modification from
 *   [UTF-7] that "," is used instead of "/".  Modified BASE64 MUST NOT be
 *   used to represent any printing US-ASCII character which can represent
 *   itself.
 *
 * `utf8` must be valid. Count the output into *out_len, writing it to `dst`
 * unless that is NULL. Each run takes every consecutive non-printable
 * character, so two runs are never adjacent.
 */
static void encode_core(const char *utf8, size_t len, char *dst, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)utf8;
    size_t n = 0;
    size_t i = 0;

    while (i < len) {
        if (is_printable_ascii(p[i])) {
            put_byte(dst, &n, p[i]);
            if (p[i] == '&')
                put_byte(dst, &n, '-');
            i++;
            continue;
        }
        uint32_t bits = 0;
        unsigned nbits = 0;
        put_byte(dst, &n, '&');
        while (i < len && !is_printable_ascii(p[i])) {
            uint32_t cp = next_scalar(p, &i);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                put_unit(dst, &n, &bits, &nbits, 0xD800 | (cp >> 10));
                put_unit(dst, &n, &bits, &nbits, 0xDC00 | (cp & 0x3FF));
            } else {
                put_unit(dst, &n, &bits, &nbits, cp);
            }
        }
        if (nbits > 0)
            put_byte(dst, &n, (unsigned char)mbase64_alphabet[(bits << (6 - nbits)) & 0x3F]);
        put_byte(dst, &n, '-');
    }
    *out_len = n;
}

int imk__utf7_encode(imk__buf *out, const char *utf8, size_t len)
{
    if (!imk__utf8_is_valid(utf8, len))
        return IMK_EUTF8;
    size_t need = 0;
    encode_core(utf8, len, NULL, &need);
    int rc = imk__buf_reserve(out, need);
    if (rc < 0)
        return rc;
    encode_core(utf8, len, out->data + out->len, &need);
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

/* 1 when the eight bytes at p are all ASCII. memcpy keeps this free of
 * alignment and aliasing assumptions; compilers turn it into one load. */
static int ascii8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return (w & UINT64_C(0x8080808080808080)) == 0;
}

/*
 * RFC 3629 section 4:
 *   UTF8-octets = *( UTF8-char )
 *   UTF8-char   = UTF8-1 / UTF8-2 / UTF8-3 / UTF8-4
 *   UTF8-1      = %x00-7F
 *   UTF8-2      = %xC2-DF UTF8-tail
 *   UTF8-3      = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *                 %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4      = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *                 %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail   = %x80-BF
 */
int imk__utf8_is_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            while (len - i >= 16 && ascii8(p + i) && ascii8(p + i + 8))
                i += 16;
            continue;
        }
        size_t tail;
        unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            tail = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            tail = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            tail = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return 0; /* a stray tail byte, C0, C1 or F5-FF */
        }
        if (len - i - 1 < tail || p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= tail; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        }
        i += tail + 1;
    }
    return 1;
}
