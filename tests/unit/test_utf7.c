/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/util/utf7.c: modified UTF-7 both ways (RFC 3501 section
 * 5.1.3), every rejection the strict decoder makes, generated round trips,
 * a canonicality property (whatever decodes must re-encode to the same
 * bytes), allocation failure, and the UTF-8 validator against a slow
 * reference over every sequence of up to three bytes.
 */
#include "test.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf7.h"

#include <stdint.h>

static imk_allocator std_alloc;

/* Decode `in` into a fresh buffer; returns the result code, *out holds it. */
static int decode_str(imk__buf *out, const char *in)
{
    imk__buf_init(out, &std_alloc, 0);
    return imk__utf7_decode(out, in, strlen(in));
}

/* Check that `utf7` decodes to `utf8` and that `utf8` encodes to `utf7`. */
#define CHECK_PAIR(utf7, utf8)                                                                     \
    do {                                                                                           \
        imk__buf pair_b_;                                                                          \
        CHECK_INT(decode_str(&pair_b_, (utf7)), 0);                                                \
        CHECK_MEM(pair_b_.data, pair_b_.len, (utf8), sizeof(utf8) - 1);                            \
        imk__buf_free(&pair_b_);                                                                   \
        imk__buf_init(&pair_b_, &std_alloc, 0);                                                    \
        CHECK_INT(imk__utf7_encode(&pair_b_, (utf8), sizeof(utf8) - 1), 0);                        \
        CHECK_MEM(pair_b_.data, pair_b_.len, (utf7), strlen(utf7));                                \
        CHECK_INT(imk__utf7_is_valid((utf7), strlen(utf7)), 1);                                    \
        imk__buf_free(&pair_b_);                                                                   \
    } while (0)

static void test_rfc_example(void)
{
    /* RFC 3501 section 5.1.3 */
    CHECK_PAIR("~peter/mail/&U,BTFw-/&ZeVnLIqe-",
               "~peter/mail/\xE5\x8F\xB0\xE5\x8C\x97/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E");
    CHECK_PAIR("&U,BTFw-", "\xE5\x8F\xB0\xE5\x8C\x97");
}

static void test_ascii_and_ampersand(void)
{
    CHECK_PAIR("", "");
    CHECK_PAIR("INBOX", "INBOX");
    CHECK_PAIR("&-", "&");
    CHECK_PAIR("&-&-", "&&");
    CHECK_PAIR("Tom &- Jerry", "Tom & Jerry");
    CHECK_PAIR(" !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
               " !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
    CHECK_PAIR("-", "-");
    CHECK_PAIR("a-&-b", "a-&b");
}

static void test_non_ascii(void)
{
    CHECK_PAIR("&AOk-", "\xC3\xA9");
    CHECK_PAIR("caf&AOk-", "caf\xC3\xA9");
    CHECK_PAIR("&AOkA6QDp-", "\xC3\xA9\xC3\xA9\xC3\xA9");
    /* a run then a literal "&", then another run: not a null shift */
    CHECK_PAIR("&AOk-&-&AOk-", "\xC3\xA9&\xC3\xA9");
    CHECK_PAIR("&AOk--", "\xC3\xA9-");
    CHECK_PAIR("&AOk-x&AOk-", "\xC3\xA9x\xC3\xA9");
    /* controls must be encoded, including DEL and NUL */
    CHECK_PAIR("&AAE-", "\x01");
    CHECK_PAIR("&AH8-", "\x7F");
    CHECK_PAIR("&AAA-", "\0");
    CHECK_PAIR("a&AAkACg-b", "a\t\nb");
    CHECK_PAIR("&AAkA6Q-", "\t\xC3\xA9");
}

static void test_astral(void)
{
    /* U+1F600 = D83D DE00 */
    CHECK_PAIR("&2D3eAA-", "\xF0\x9F\x98\x80");
    CHECK_PAIR("x&2D3eAA-y", "x\xF0\x9F\x98\x80y");
    /* U+10000 = D800 DC00, U+10FFFF = DBFF DFFF */
    CHECK_PAIR("&2ADcAA-", "\xF0\x90\x80\x80");
    CHECK_PAIR("&2,,f,w-", "\xF4\x8F\xBF\xBF");
    /* BMP then astral then BMP in one run */
    CHECK_PAIR("&AOnYPd4AAOk-", "\xC3\xA9\xF0\x9F\x98\x80\xC3\xA9");
    /* U+FFFF, just below the surrogate range, and just above it */
    CHECK_PAIR("&,,8-", "\xEF\xBF\xBF");
    CHECK_PAIR("&1,8-", "\xED\x9F\xBF");
    CHECK_PAIR("&4AA-", "\xEE\x80\x80");
}

/* `in` must be refused by decode and by is_valid, leaving the buffer as it
 * was. */
static void check_reject(const char *in, size_t len)
{
    imk__buf b;
    imk__buf_init(&b, &std_alloc, 0);
    CHECK_INT(imk__buf_append_str(&b, "keep"), 0);
    int rc = imk__utf7_decode(&b, in, len);
    CHECK_INT(rc, IMK_EUTF7);
    if (rc != IMK_EUTF7)
        fprintf(stderr, "   input: %.*s\n", (int)len, in);
    CHECK_MEM(b.data, b.len, "keep", 4);
    CHECK_INT(b.data[b.len], 0);
    CHECK_INT(imk__utf7_is_valid(in, len), 0);
    imk__buf_free(&b);
}

#define REJECT(lit) check_reject((lit), sizeof(lit) - 1)

static void test_reject_non_printable(void)
{
    REJECT("a\tb");
    REJECT("a\x7F");
    REJECT("\x1F");
    REJECT("\x80");
    REJECT("a\0b");
    REJECT("caf\xC3\xA9"); /* raw UTF-8 */
    REJECT("&AO\nk-");
    REJECT("&AOk\x80-");
}

static void test_reject_bad_base64(void)
{
    REJECT("&AOk/-"); /* "/" is replaced by "," */
    REJECT("&AOk=-"); /* no padding */
    REJECT("&AO.k-");
    REJECT("&AO k-");
    REJECT("&&-");
    REJECT("&AOk&-");
}

static void test_reject_leftover_bits(void)
{
    REJECT("&AOl-");       /* 00E9 then bits 01 */
    REJECT("&AOn-");       /* 00E9 then bits 11 */
    REJECT("&AOkA6f-");    /* 00E9 00E9 then bits 0100... non-zero */
    REJECT("&AOkA6QDpA-"); /* a whole superfluous character */
    REJECT("&AOkA6QDpAA-");
}

static void test_reject_empty_run(void)
{
    REJECT("&A-");
    REJECT("&AA-");
    REJECT("x&A-y");
}

static void test_reject_encoded_ascii(void)
{
    REJECT("&AGE-");    /* "a" */
    REJECT("&ACY-");    /* "&" itself */
    REJECT("&ACA-");    /* " " */
    REJECT("&AH4-");    /* "~" */
    REJECT("&AGEA6Q-"); /* "a" then U+00E9: still must be literal */
    REJECT("&AOkAYQ-"); /* U+00E9 then "a" */
}

static void test_reject_surrogates(void)
{
    REJECT("&2D0-");      /* lone high */
    REJECT("&3gA-");      /* lone low */
    REJECT("&2D0A6Q-");   /* high then not a low */
    REJECT("&3gDYPQ-");   /* reversed pair */
    REJECT("&2D3YPQ-");   /* high then high */
    REJECT("&2D0-&3gA-"); /* pair split across runs (also a null shift) */
}

static void test_reject_odd_bytes(void)
{
    REJECT("&AO-");      /* 1 byte */
    REJECT("&AOkA-");    /* 3 bytes */
    REJECT("&AOkA6-");   /* 3 bytes + 6 bits */
    REJECT("&AOkA6QD-"); /* 5 bytes */
}

static void test_reject_unterminated(void)
{
    REJECT("&");
    REJECT("abc&");
    REJECT("&AOk");
    REJECT("a&AOkA6QDp");
    REJECT("&-&AOk");
}

static void test_reject_adjacent_runs(void)
{
    REJECT("&AGE-&AGE-");
    REJECT("&AOk-&AOk-");
    REJECT("x&AOk-&AOk-y");
}

/* A buffer maximum is checked against the exact output size. */
static void test_limits(void)
{
    imk__buf b;
    imk__buf_init(&b, &std_alloc, 5);
    CHECK_INT(imk__utf7_decode(&b, "&AOkA6Q-a", 9), 0); /* 2 + 2 + 1 bytes */
    CHECK_INT(b.len, 5);
    CHECK_INT(imk__utf7_decode(&b, "a", 1), IMK_ELIMIT);
    CHECK_INT(b.len, 5);
    imk__buf_free(&b);

    imk__buf_init(&b, &std_alloc, 8);
    CHECK_INT(imk__utf7_encode(&b, "\xC3\xA9\xC3\xA9", 4), 0); /* "&AOkA6Q-" */
    CHECK_INT(b.len, 8);
    CHECK_INT(imk__utf7_encode(&b, "&", 1), IMK_ELIMIT);
    CHECK_MEM(b.data, b.len, "&AOkA6Q-", 8);
    imk__buf_free(&b);

    /* nothing to append: success even when full, and with a NULL pointer */
    imk__buf_init(&b, &std_alloc, 0);
    CHECK_INT(imk__utf7_decode(&b, NULL, 0), 0);
    CHECK_INT(imk__utf7_encode(&b, NULL, 0), 0);
    CHECK_INT(b.len, 0);
    CHECK_INT(imk__utf7_is_valid(NULL, 0), 1);
    imk__buf_free(&b);
}

static void check_encode_reject(const char *in, size_t len)
{
    imk__buf b;
    imk__buf_init(&b, &std_alloc, 0);
    CHECK_INT(imk__buf_append_str(&b, "keep"), 0);
    CHECK_INT(imk__utf7_encode(&b, in, len), IMK_EUTF8);
    CHECK_MEM(b.data, b.len, "keep", 4);
    CHECK_INT(imk__utf8_is_valid(in, len), 0);
    imk__buf_free(&b);
}

#define ENCODE_REJECT(lit) check_encode_reject((lit), sizeof(lit) - 1)

static void test_encode_invalid_utf8(void)
{
    ENCODE_REJECT("\xC0\xAF"); /* overlong "/" */
    ENCODE_REJECT("\xC1\xBF");
    ENCODE_REJECT("\xE0\x80\xAF");             /* overlong */
    ENCODE_REJECT("\xE0\x9F\xBF");             /* overlong U+07FF */
    ENCODE_REJECT("\xF0\x8F\xBF\xBF");         /* overlong U+FFFF */
    ENCODE_REJECT("\xED\xA0\x80");             /* U+D800 */
    ENCODE_REJECT("\xED\xBF\xBF");             /* U+DFFF */
    ENCODE_REJECT("\xED\xA0\xBD\xED\xB8\x80"); /* CESU-8 pair */
    ENCODE_REJECT("\xF4\x90\x80\x80");         /* U+110000 */
    ENCODE_REJECT("\xF5\x80\x80\x80");
    ENCODE_REJECT("\xFF");
    ENCODE_REJECT("\xFE");
    ENCODE_REJECT("\x80"); /* stray continuation */
    ENCODE_REJECT("a\xBF");
    ENCODE_REJECT("\xE6\x97"); /* truncated */
    ENCODE_REJECT("abc\xF0\x9F\x98");
    ENCODE_REJECT("\xC3");
    ENCODE_REJECT("\xC3\x41"); /* continuation missing */
    ENCODE_REJECT("\xE6\x41\x97");
    ENCODE_REJECT("\xF0\x9F\x98\x41");
}

static void test_utf8_boundaries(void)
{
    static const char *const valid[] = {
        "\x7F",         "\xC2\x80",     "\xDF\xBF",         "\xE0\xA0\x80",     "\xED\x9F\xBF",
        "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\xF3\xBF\xBF\xBF",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        CHECK_INT(imk__utf8_is_valid(valid[i], strlen(valid[i])), 1);
    CHECK_INT(imk__utf8_is_valid("", 0), 1);
    CHECK_INT(imk__utf8_is_valid("a\0b", 3), 1);

    /* every position relative to the eight- and sixteen-byte fast path */
    char s[80];
    for (size_t len = 1; len <= 70; len++) {
        for (size_t at = 0; at < len; at++) {
            memset(s, 'x', len);
            s[at] = (char)0x80;
            CHECK_INT(imk__utf8_is_valid(s, len), 0);
            s[at] = (char)0xC3;
            CHECK_INT(imk__utf8_is_valid(s, len), 0); /* 'x' is no continuation */
            if (at + 1 < len) {
                s[at + 1] = (char)0xA9;
                CHECK_INT(imk__utf8_is_valid(s, len), 1);
            }
        }
        memset(s, 'x', len);
        s[len - 1] = (char)0xE6; /* truncated at the very end */
        CHECK_INT(imk__utf8_is_valid(s, len), 0);
        CHECK_INT(imk__utf8_is_valid(s, len - 1), 1);
    }
}

/* A slow reference: decode by the definition and check the value. */
static int reference_utf8_valid(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

static void test_utf8_exhaustive(void)
{
    unsigned char s[4];
    long mismatches = 0;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        if (imk__utf8_is_valid((char *)s, 1) != reference_utf8_valid(s, 1))
            mismatches++;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            if (imk__utf8_is_valid((char *)s, 2) != reference_utf8_valid(s, 2))
                mismatches++;
            if (a < 0xC0)
                continue; /* cannot start a multi-byte sequence: already covered */
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                if (imk__utf8_is_valid((char *)s, 3) != reference_utf8_valid(s, 3))
                    mismatches++;
            }
        }
    }
    /* four-byte sequences: every lead and second byte, a spread of the rest */
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F,
                                          0x90, 0xA0, 0xBF, 0xC0, 0xFF};
    for (unsigned a = 0xF0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (size_t c = 0; c < sizeof(tails); c++) {
                for (size_t d = 0; d < sizeof(tails); d++) {
                    s[0] = (unsigned char)a, s[1] = (unsigned char)b;
                    s[2] = tails[c], s[3] = tails[d];
                    if (imk__utf8_is_valid((char *)s, 4) != reference_utf8_valid(s, 4))
                        mismatches++;
                }
            }
        }
    }
    CHECK_INT(mismatches, 0);
}

/* ---- generated strings ---- */

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    /* xorshift32: deterministic, so a failure reproduces */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Append the UTF-8 form of `cp` (a scalar value) to s. */
static size_t put_cp(char *s, uint32_t cp)
{
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        s[0] = (char)(0xE0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    s[0] = (char)(0xF0 | (cp >> 18));
    s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    s[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t random_scalar(void)
{
    switch (rng() % 6) {
    case 0:
        return 0x20 + rng() % 0x5F; /* printable ASCII */
    case 1:
        return rng() % 2 ? '&' : '-';
    case 2:
        return rng() % 0x80; /* any ASCII, controls included */
    case 3:
        return 0x80 + rng() % 0x780;
    case 4: {
        uint32_t cp = 0x800 + rng() % 0xF800;
        return cp >= 0xD800 && cp <= 0xDFFF ? cp + 0x800 : cp;
    }
    default:
        return 0x10000 + rng() % 0x100000;
    }
}

static void test_round_trip_generated(void)
{
    char utf8[200];
    imk__buf enc, dec;
    long failures = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, count = rng() % 24;
        for (size_t k = 0; k < count; k++)
            len += put_cp(utf8 + len, random_scalar());
        imk__buf_init(&enc, &std_alloc, 0);
        imk__buf_init(&dec, &std_alloc, 0);
        int ok = imk__utf7_encode(&enc, utf8, len) == 0;
        ok = ok && imk__utf7_is_valid(enc.data, enc.len);
        ok = ok && imk__utf7_decode(&dec, enc.data, enc.len) == 0;
        ok = ok && dec.len == len && memcmp(dec.data, utf8, len) == 0;
        for (size_t k = 0; ok && k < enc.len; k++)
            ok = enc.data[k] >= 0x20 && enc.data[k] <= 0x7E;
        if (!ok)
            failures++;
        imk__buf_free(&enc);
        imk__buf_free(&dec);
    }
    CHECK_INT(failures, 0);
}

/* Whatever the strict decoder accepts is the one canonical encoding of its
 * result, so re-encoding gives back the input byte for byte. */
static void test_decode_is_canonical(void)
{
    static const char alphabet[] = "&-AOkQ6D2d3gY,+aAE/ ";
    char in[16];
    imk__buf dec, enc;
    long accepted = 0, failures = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = rng() % sizeof(in);
        for (size_t k = 0; k < len; k++)
            in[k] = alphabet[rng() % (sizeof(alphabet) - 1)];
        imk__buf_init(&dec, &std_alloc, 0);
        imk__buf_init(&enc, &std_alloc, 0);
        int rc = imk__utf7_decode(&dec, in, len);
        if (rc == 0) {
            accepted++;
            if (imk__utf7_encode(&enc, dec.data, dec.len) != 0 || enc.len != len ||
                memcmp(enc.data, in, len) != 0)
                failures++;
        } else if (rc != IMK_EUTF7 || imk__utf7_is_valid(in, len)) {
            failures++;
        }
        imk__buf_free(&dec);
        imk__buf_free(&enc);
    }
    CHECK_INT(failures, 0);
    CHECK(accepted > 1000); /* the property was exercised on non-trivial input */
}

static void test_allocation_failure(void)
{
    static const char utf7[] = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
    static const char utf8[] = "~peter/mail/\xE5\x8F\xB0\xE5\x8C\x97/"
                               "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    for (long fail_at = 1;; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        imk__buf b;
        imk__buf_init(&b, &a, 0);
        int rc = imk__utf7_decode(&b, utf7, sizeof(utf7) - 1);
        if (rc == 0)
            rc = imk__utf7_encode(&b, utf8, sizeof(utf8) - 1);
        if (fa.failed) {
            CHECK_INT(rc, IMK_ENOMEM);
        } else {
            CHECK_INT(rc, 0);
        }
        imk__buf_free(&b);
        CHECK_INT(fa.live, 0);
        if (!fa.failed)
            break;
        CHECK(fail_at < 10);
        if (fail_at >= 10)
            break;
    }

    /* a failed append leaves the earlier contents intact */
    failing_alloc fa;
    imk_allocator a = failing_allocator(&fa, 2);
    imk__buf b;
    imk__buf_init(&b, &a, 0);
    CHECK_INT(imk__buf_append_str(&b, "INBOX."), 0);
    char big[200];
    memset(big, 'x', sizeof(big));
    CHECK_INT(imk__utf7_decode(&b, big, sizeof(big)), IMK_ENOMEM);
    CHECK_MEM(b.data, b.len, "INBOX.", 6);
    CHECK_INT(imk__utf7_encode(&b, big, sizeof(big)), IMK_ENOMEM);
    CHECK_MEM(b.data, b.len, "INBOX.", 6);
    imk__buf_free(&b);
    CHECK_INT(fa.live, 0);
}

int main(void)
{
    imk__alloc_init(&std_alloc, NULL);
    RUN(test_rfc_example);
    RUN(test_ascii_and_ampersand);
    RUN(test_non_ascii);
    RUN(test_astral);
    RUN(test_reject_non_printable);
    RUN(test_reject_bad_base64);
    RUN(test_reject_leftover_bits);
    RUN(test_reject_empty_run);
    RUN(test_reject_encoded_ascii);
    RUN(test_reject_surrogates);
    RUN(test_reject_odd_bytes);
    RUN(test_reject_unterminated);
    RUN(test_reject_adjacent_runs);
    RUN(test_limits);
    RUN(test_encode_invalid_utf8);
    RUN(test_utf8_boundaries);
    RUN(test_utf8_exhaustive);
    RUN(test_round_trip_generated);
    RUN(test_decode_is_canonical);
    RUN(test_allocation_failure);
    return test_finish();
}
