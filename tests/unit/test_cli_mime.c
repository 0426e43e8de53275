/* SPDX-License-Identifier: MIT */
/*
 * The imapkit tool's header-text module (src/cli/mime.c): RFC 2047
 * decoding, terminal sanitising and column widths.
 *
 * The tool is not part of the library, so its sources are compiled into
 * this test directly (mime.c and the xalloc.c buffers it uses): the test
 * also checks mime.c's internal UTF-8 sequence helper.
 */
#define _POSIX_C_SOURCE 200809L

#include "test.h"

#include "cli/mime.c"
#include "cli/xalloc.c"

/* Decode `in` and compare with `expect` (both C strings). */
static void check_decode(const char *in, const char *expect, int line)
{
    cli_buf b = {0};
    int rc = cli_mime_decode(in, strlen(in), &b);
    test_checks++;
    if (rc != 0 || b.len != strlen(expect) || (b.len != 0 && memcmp(b.data, expect, b.len) != 0)) {
        test_failures++;
        fprintf(stderr, "%s:%d: decode(%s) = [%.*s], expected [%s]\n", __FILE__, line, in,
                (int)b.len, b.data != NULL ? b.data : "", expect);
    }
    cli_buf_free(&b);
}

#define DECODE(in, expect) check_decode((in), (expect), __LINE__)

static void test_plain(void)
{
    DECODE("", "");
    DECODE("Hello world", "Hello world");
    DECODE("a =? b", "a =? b");
    DECODE("=?", "=?");
    DECODE("=?utf-8?x?abc?=", "=?utf-8?x?abc?="); /* unknown encoding */
    DECODE("=?utf-8?q?abc", "=?utf-8?q?abc");     /* unterminated */
    DECODE("=??q?abc?=", "=??q?abc?=");           /* empty charset */
    DECODE("=?utf 8?q?abc?=", "=?utf 8?q?abc?="); /* space in charset */
    DECODE("=?utf-8?q?a b?=", "=?utf-8?q?a b?="); /* space in text */
    DECODE("folded\r\n line", "folded line");     /* CRLF of folding dropped */
    DECODE("caf\xc3\xa9", "caf\xc3\xa9");         /* raw UTF-8 kept */
    DECODE("caf\xe9", "caf\xc3\xa9");             /* raw 8-bit read as latin1 */
}

static void test_q(void)
{
    DECODE("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
    DECODE("=?utf-8?q?hello_world?=", "hello world");
    DECODE("=?UTF-8?Q?=E2=82=AC_100?=", "\xe2\x82\xac 100");
    DECODE("=?utf-8?q?bad=ZZhex?=", "bad=ZZhex"); /* malformed = kept */
    DECODE("=?utf-8?q?end=?=", "end=");
    DECODE("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore"); /* RFC 2231 language */
}

static void test_b(void)
{
    DECODE("=?UTF-8?B?w6l0w6k=?=", "\xc3\xa9t\xc3\xa9");
    DECODE("=?UTF-8?B?w6l0w6k?=", "\xc3\xa9t\xc3\xa9"); /* padding missing */
    DECODE("=?utf-8?b?SGVsbG8=?=", "Hello");
    DECODE("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=", "If you can read this yo");
}

/* RFC 2047 section 8's examples: whitespace between words. */
static void test_adjacent(void)
{
    DECODE("(=?ISO-8859-1?Q?a?=)", "(a)");
    DECODE("(=?ISO-8859-1?Q?a?= b)", "(a b)");
    DECODE("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)");
    DECODE("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)");
    DECODE("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)");
    DECODE("(=?ISO-8859-1?Q?a_b?=)", "(a b)");
    DECODE("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)");
    DECODE("Re: =?utf-8?q?x?=", "Re: x");
    DECODE("Re:=?utf-8?q?x?=", "Re:x");
    DECODE("=?utf-8?q?x?= tail", "x tail");
}

/* A UTF-8 character split over two encoded-words is rejoined. */
static void test_split_character(void)
{
    /* "é" = C3 A9: C3 in the first word, A9 in the second. */
    DECODE("=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=", "caf\xc3\xa9");
    DECODE("=?UTF-8?B?w4=?= =?UTF-8?B?qQ==?=", "\xc3\xa9");
}

static void test_charsets(void)
{
    /* iconv: windows-1252's euro sign, KOI8-R, Shift_JIS, ISO-2022-JP. */
    DECODE("=?windows-1252?Q?=80?=", "\xe2\x82\xac");
    DECODE("=?KOI8-R?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    DECODE("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    /* Invalid in the declared charset: U+FFFD, the rest kept. */
    DECODE("=?UTF-8?Q?a=FFb?=", "a\xef\xbf\xbd"
                                "b");
    /* Unknown charset: ASCII kept, other bytes replaced. */
    DECODE("=?x-no-such-charset?Q?ab=E9?=", "ab\xef\xbf\xbd");
    /* Overlong and surrogate encodings never come out. */
    DECODE("=?UTF-8?Q?=C0=AF?=", "\xef\xbf\xbd\xef\xbf\xbd");
    DECODE("=?UTF-8?Q?=ED=A0=80?=", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cli_mime_cleanup();
}

/* Whatever the bytes, the output is valid UTF-8 (checked with utf8_seq). */
static void test_always_utf8(void)
{
    unsigned char in[64];
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned char c = (unsigned char)(seed >> 16);
            /* Bias towards the syntax characters. */
            const char *syntax = "=?QBqb_ \r\nA0";
            if (c % 3 == 0)
                c = (unsigned char)syntax[(seed >> 8) % strlen(syntax)];
            in[i] = c;
        }
        cli_buf b = {0};
        CHECK_INT(cli_mime_decode((const char *)in, n, &b), 0);
        size_t i = 0;
        int valid = 1;
        while (i < b.len) {
            uint32_t cp;
            size_t k = utf8_seq((const unsigned char *)b.data + i, b.len - i, &cp);
            if (k == 0) {
                valid = 0;
                break;
            }
            i += k;
        }
        CHECK(valid);
        cli_buf_free(&b);
    }
    cli_mime_cleanup();
}

static void check_display(const char *in, size_t len, const char *expect, int line)
{
    cli_buf b = {0};
    int rc = cli_mime_display(in, len, &b);
    test_checks++;
    if (rc != 0 || b.len != strlen(expect) || (b.len != 0 && memcmp(b.data, expect, b.len) != 0)) {
        test_failures++;
        fprintf(stderr, "%s:%d: display = [%.*s], expected [%s]\n", __FILE__, line, (int)b.len,
                b.data != NULL ? b.data : "", expect);
    }
    cli_buf_free(&b);
}

static void test_display(void)
{
    check_display("plain", 5, "plain", __LINE__);
    check_display("a\tb\r\nc", 6, "a b  c", __LINE__);
    /* ESC [ 2 J would clear the screen. */
    check_display("x\x1b[2Jy", 6, "x\xef\xbf\xbd[2Jy", __LINE__);
    check_display("nul\0x", 5, "nul\xef\xbf\xbdx", __LINE__);
    /* U+009B (C1 CSI) and U+202E (right-to-left override). */
    check_display("\xc2\x9b\xe2\x80\xae", 5, "\xef\xbf\xbd\xef\xbf\xbd", __LINE__);
    check_display("\xff", 1, "\xef\xbf\xbd", __LINE__);
    check_display("caf\xc3\xa9", 5, "caf\xc3\xa9", __LINE__);
}

static void test_width(void)
{
    CHECK_INT(cli_mime_width("abc", 3), 3);
    CHECK_INT(cli_mime_width("caf\xc3\xa9", 5), 4);
    CHECK_INT(cli_mime_width("\xe6\x97\xa5\xe6\x9c\xac", 6), 4); /* 日本 */
    CHECK_INT(cli_mime_width("e\xcc\x81", 3), 1);                /* e + combining acute */
    CHECK_INT(cli_mime_width("\xf0\x9f\x98\x80", 4), 2);         /* emoji */
    size_t w = 0;
    /* "日本語" in 5 columns: two characters (4 columns), never half of one. */
    CHECK_INT(cli_mime_fit("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9, 5, &w), 6);
    CHECK_INT(w, 4);
    CHECK_INT(cli_mime_fit("abcdef", 6, 3, &w), 3);
    CHECK_INT(w, 3);
    CHECK_INT(cli_mime_fit("ab", 2, 10, NULL), 2);
    CHECK_INT(cli_mime_fit("caf\xc3\xa9!", 6, 4, NULL), 5);
}

int main(void)
{
    RUN(test_plain);
    RUN(test_q);
    RUN(test_b);
    RUN(test_adjacent);
    RUN(test_split_character);
    RUN(test_charsets);
    RUN(test_always_utf8);
    RUN(test_display);
    RUN(test_width);
    return test_finish();
}
