/* SPDX-License-Identifier: MIT */
/*
 * Tests of the command encoder (src/proto/encoder.c).
 *
 * Most tests compare exact bytes. The injection test is the one that
 * guards the security promise of DESIGN.md section 8: it pushes every byte
 * value through every appender and re-frames the output the way a server
 * would (lines, then literals announced at a line's end), asserting that
 * nothing but our own CRLFs ever ends a line. framing_problem() is that
 * server's-eye view and is applied to every command built here.
 */
#include "imapkit/command.h"
#include "proto/encoder.h"
#include "test.h"
#include "util/alloc.h"

#include <stdint.h>

#define CHECK_OUT(cmd, expect)                                                                     \
    do {                                                                                           \
        size_t out_len_;                                                                           \
        const char *out_ = imk_command_bytes((cmd), &out_len_);                                    \
        CHECK_MEM(out_, out_len_, (expect), sizeof(expect) - 1);                                   \
    } while (0)

#define CHECK_SEG(cmd, i, expect, wait, stream)                                                    \
    do {                                                                                           \
        const imk_command_segment *seg_ = imk_command_segment_at((cmd), (i));                      \
        CHECK(seg_ != NULL);                                                                       \
        if (seg_ != NULL) {                                                                        \
            CHECK_MEM(seg_->data, seg_->len, (expect), sizeof(expect) - 1);                        \
            CHECK_INT(seg_->wait_continuation, (wait));                                            \
            CHECK_INT(seg_->stream_len, (stream));                                                 \
        }                                                                                          \
    } while (0)

static imk_encoder_options options(int plus, int minus, int utf8, int binary)
{
    imk_encoder_options o = IMK_ENCODER_OPTIONS_INIT;
    o.literal_plus = plus;
    o.literal_minus = minus;
    o.utf8_accept = utf8;
    o.binary = binary;
    return o;
}

static imk_command *make(const imk_encoder_options *o)
{
    imk_command *cmd = NULL;
    int rc = imk_command_new(o, NULL, &cmd);
    CHECK_INT(rc, 0);
    if (cmd == NULL) {
        fprintf(stderr, "cannot create a command\n");
        exit(1);
    }
    return cmd;
}

/* ------------------------------------------------------------------ */
/* The server's view: re-framing the output                           */
/* ------------------------------------------------------------------ */

/* What the test writes in place of streamed data: line ends and a fake
 * literal announcement, so a framing error would show. */
static const char stream_filler[] = "\r\n{9}\r\n\0";

/* Whether `{n+}` was allowed for these options (RFC 7888, RFC 4466). */
static int nonsync_allowed(const imk_encoder_options *o, uint64_t n, int binary)
{
    if (binary && !o->binary)
        return 0;
    return o->literal_plus || (o->literal_minus && n <= 4096);
}

/*
 * Re-frame a finished command as a server would and check every promise:
 * the segments concatenate to imk_command_bytes(); each line (the bytes up
 * to a CRLF, literal data excluded) contains no CR, LF or NUL; a line ends
 * either with a literal announcement or at the end of the command; every
 * synchronizing announcement, and nothing else, ends a segment that waits
 * for "+"; non-synchronizing literals only where the options allow them;
 * no NUL in a non-binary literal. Returns NULL or what is wrong.
 */
static const char *framing_problem(const imk_command *cmd, const imk_encoder_options *o)
{
    static char v[1 << 20];
    size_t seg_end[512];
    int seg_wait[512];
    uint64_t seg_stream[512];
    size_t count = imk_command_segment_count(cmd);
    size_t all_len, vlen = 0, concat = 0;
    const char *all = imk_command_bytes(cmd, &all_len);

    if (count == 0)
        return "no segments";
    if (count > 512)
        return "too many segments for the checker";
    for (size_t i = 0; i < count; i++) {
        const imk_command_segment *s = imk_command_segment_at(cmd, i);
        if (s == NULL || s->len == 0)
            return "missing or empty segment";
        if (s->len > all_len - concat || memcmp(s->data, all + concat, s->len) != 0)
            return "segments do not concatenate to the command bytes";
        concat += s->len;
        if (s->len + s->stream_len > sizeof(v) - vlen)
            return "command too large for the checker";
        memcpy(v + vlen, s->data, s->len);
        vlen += s->len;
        seg_end[i] = vlen;
        seg_wait[i] = s->wait_continuation;
        seg_stream[i] = s->stream_len;
        for (uint64_t k = 0; k < s->stream_len; k++)
            v[vlen++] = stream_filler[k % (sizeof(stream_filler) - 1)];
        if (i + 1 < count && !s->wait_continuation && s->stream_len == 0)
            return "a segment ends for no reason";
        if (i + 1 == count && (s->wait_continuation || s->stream_len != 0))
            return "the last segment waits or streams";
    }
    if (concat != all_len)
        return "segments do not cover the command bytes";
    if (imk_command_segment_at(cmd, count) != NULL)
        return "segment_at past the end is not NULL";

    size_t pos = 0, seg = 0;
    for (;;) {
        size_t j = pos;
        while (j < vlen && v[j] != '\r' && v[j] != '\n' && v[j] != '\0')
            j++;
        if (j + 1 >= vlen || v[j] != '\r' || v[j + 1] != '\n')
            return "CR, LF or NUL inside a line, or a line without CRLF";
        /* An announcement: ["~"] "{" 1*DIGIT ["+"] "}" just before CRLF. */
        size_t k = j;
        int plus = 0, binary = 0, is_literal = 0;
        uint64_t n = 0, scale = 1;
        if (k > pos && v[k - 1] == '}') {
            k--;
            if (k > pos && v[k - 1] == '+') {
                plus = 1;
                k--;
            }
            size_t digits_end = k;
            while (k > pos && v[k - 1] >= '0' && v[k - 1] <= '9') {
                n += (uint64_t)(v[k - 1] - '0') * scale;
                scale *= 10;
                k--;
            }
            if (k < digits_end && k > pos && v[k - 1] == '{') {
                is_literal = 1;
                k--;
                binary = k > pos && v[k - 1] == '~';
            }
        }
        if (!is_literal) {
            if (j + 2 != vlen)
                return "a line ends without a literal announcement before the end";
            if (seg + 1 != count)
                return "more segments than announcements";
            return NULL;
        }
        size_t data_start = j + 2;
        int streamed = 0;
        /* Each segment must end at exactly this announcement, or later. */
        if (seg < count && seg_end[seg] == data_start) {
            if (seg_wait[seg] != !plus)
                return "wait_continuation does not match the announcement";
            if (seg_stream[seg] != 0) {
                if (seg_stream[seg] != n)
                    return "stream_len differs from the announced length";
                streamed = 1;
            }
            seg++;
        } else if (!plus) {
            return "a synchronizing literal does not end its segment";
        }
        if (plus && !nonsync_allowed(o, n, binary))
            return "a non-synchronizing literal the server does not allow";
        if (n > vlen - data_start)
            return "literal runs past the end";
        if (!binary && !streamed && memchr(v + data_start, '\0', (size_t)n) != NULL)
            return "NUL in a non-binary literal";
        pos = data_start + (size_t)n;
    }
}

#define CHECK_FRAMING(cmd, o)                                                                      \
    do {                                                                                           \
        const char *problem_ = framing_problem((cmd), (o));                                        \
        test_checks++;                                                                             \
        if (problem_ != NULL) {                                                                    \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: framing: %s\n", __FILE__, __LINE__, problem_);                 \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Lifecycle and state                                                */
/* ------------------------------------------------------------------ */

static void test_new_free(void)
{
    imk_command *cmd = (imk_command *)1;
    imk_encoder_options bad = IMK_ENCODER_OPTIONS_INIT;
    bad.version = 2;
    CHECK_INT(imk_command_new(&bad, NULL, &cmd), IMK_EINVAL);
    CHECK(cmd == NULL);
    CHECK_INT(imk_command_new(NULL, NULL, NULL), IMK_EINVAL);
    imk_command_free(NULL);

    cmd = make(NULL);
    CHECK_INT(imk_command_segment_count(cmd), 0);
    CHECK(imk_command_segment_at(cmd, 0) == NULL);
    CHECK_STR(imk_command_error(cmd), "");
    size_t len = 99;
    CHECK_STR(imk_command_bytes(cmd, &len), "");
    CHECK_INT(len, 0);
    imk_command_free(cmd);
}

static void test_state(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_atom(cmd, "X"), IMK_ESTATE);
    CHECK(strstr(imk_command_error(cmd), "imk_command_begin") != NULL);
    CHECK_INT(imk_command_finish(cmd), IMK_ESTATE);

    CHECK_INT(imk_command_begin(cmd, "A1", "NOOP"), 0);
    CHECK_STR(imk_command_error(cmd), "");
    CHECK_INT(imk_command_segment_count(cmd), 0); /* not finished yet */
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 NOOP\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 1);
    CHECK_SEG(cmd, 0, "A1 NOOP\r\n", 0, 0);

    /* Appending to or finishing a finished command is a state error. */
    CHECK_INT(imk_command_atom(cmd, "X"), IMK_ESTATE);
    CHECK(strstr(imk_command_error(cmd), "already finished") != NULL);
    CHECK_INT(imk_command_segment_count(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), IMK_ESTATE);

    /* begin starts over, reusing the object. */
    CHECK_INT(imk_command_begin(cmd, "A2", "CAPABILITY"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A2 CAPABILITY\r\n");
    imk_command_free(cmd);
}

static void test_failure_is_sticky(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "SEARCH"), 0);
    CHECK_INT(imk_command_atom(cmd, "a b"), IMK_EINVAL);
    CHECK_STR(imk_command_error(cmd), "atom \"a b\" contains SP, which is not allowed in an "
                                      "atom; use imk_command_astring or imk_command_string "
                                      "for user text, imk_command_token for fetch items "
                                      "with sections");
    /* Later calls do nothing and return the first error. */
    CHECK_INT(imk_command_atom(cmd, "UNSEEN"), IMK_EINVAL);
    CHECK_INT(imk_command_astring(cmd, "x", 1), IMK_EINVAL);
    CHECK_INT(imk_command_list_begin(cmd), IMK_EINVAL);
    CHECK_INT(imk_command_literal_stream(cmd, 10, 0), IMK_EINVAL);
    CHECK_OUT(cmd, "A1 SEARCH");
    CHECK_INT(imk_command_finish(cmd), IMK_EINVAL);
    CHECK_INT(imk_command_segment_count(cmd), 0);
    CHECK(strstr(imk_command_error(cmd), "atom \"a b\"") != NULL);

    CHECK_INT(imk_command_begin(cmd, "A2", "SEARCH"), 0);
    CHECK_STR(imk_command_error(cmd), "");
    CHECK_INT(imk_command_atom(cmd, "UNSEEN"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A2 SEARCH UNSEEN\r\n");
    imk_command_free(cmd);
}

static void test_begin(void)
{
    static const char *const good_tags[] = {"A1", "a", "tag]", "x.y-z_0", "$", "~1"};
    static const char *const bad_tags[] = {"",    "+",   "A+1", "A B",  "A{",
                                           "A(",  "A)",  "A%",  "A*",   "A\"",
                                           "A\\", "A\r", "A\n", "\x7f", "\x80\x41"};
    static const char *const good_names[] = {"NOOP", "UID FETCH", "X-FOO", "UID EXPUNGE"};
    static const char *const bad_names[] = {"",       " NOOP",  "NOOP ", "UID  FETCH",
                                            "FE(TCH", "A\r\nB", "F{1}",  "N\tX"};
    imk_command *cmd = make(NULL);
    for (size_t i = 0; i < sizeof(good_tags) / sizeof(good_tags[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, good_tags[i], "NOOP"), 0);
        CHECK_INT(imk_command_finish(cmd), 0);
    }
    for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, bad_tags[i], "NOOP"), IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "tag") != NULL);
        CHECK_INT(imk_command_finish(cmd), IMK_EINVAL);
    }
    for (size_t i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "T", good_names[i]), 0);
        CHECK_INT(imk_command_finish(cmd), 0);
    }
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "T", bad_names[i]), IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "name") != NULL);
    }
    CHECK_INT(imk_command_begin(cmd, NULL, "NOOP"), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A", NULL), IMK_EINVAL);
    CHECK_INT(imk_command_begin(NULL, "A", "NOOP"), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A1", "UID FETCH"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 UID FETCH\r\n");
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Atoms, tokens, flags                                               */
/* ------------------------------------------------------------------ */

static void test_atom(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "SEARCH"), 0);
    CHECK_INT(imk_command_atom(cmd, "UNSEEN"), 0);
    CHECK_INT(imk_command_atom(cmd, "X-GM-RAW"), 0);
    CHECK_INT(imk_command_atom(cmd, "$Junk"), 0);
    CHECK_INT(imk_command_atom(cmd, "NIL"), 0); /* the programmer's NIL is meant */
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 SEARCH UNSEEN X-GM-RAW $Junk NIL\r\n");

    /* Every atom-special, CTL and 8-bit byte is refused, alone or inside. */
    for (int c = 1; c < 256; c++) {
        int ok = c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
        char alone[2] = {(char)c, 0};
        char inside[4] = {'a', (char)c, 'b', 0};
        CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
        CHECK_INT(imk_command_atom(cmd, alone), ok ? 0 : IMK_EINVAL);
        CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
        CHECK_INT(imk_command_atom(cmd, inside), ok ? 0 : IMK_EINVAL);
    }
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_atom(cmd, ""), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "empty") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_atom(cmd, NULL), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_atom(cmd, "a\r\nb"), IMK_EINVAL);
    CHECK_STR(imk_command_error(cmd),
              "atom \"a\\x0D\\x0Ab\" contains CR, which is not allowed in an atom; use "
              "imk_command_astring or imk_command_string for user text, imk_command_token for "
              "fetch items with sections");
    CHECK_INT(imk_command_atom(NULL, "X"), IMK_EINVAL);
    imk_command_free(cmd);
}

static void test_token(void)
{
    static const char *const good[] = {
        "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>",
        "BODY[]",
        "BINARY.PEEK[1.2]<0.2048>",
        "+FLAGS.SILENT",
        "\\Seen",
        "BODY[HEADER.FIELDS.NOT (\"X-A(\" \"X-\\\"B\")]",
        "RFC822.SIZE",
    };
    static const char *const bad[] = {
        "",
        " BODY",
        "BODY ",
        "BODY[",
        "BODY]",
        "BODY[(])",
        "A(B",
        "A)B",
        "\"ab",
        "\"a\\",
        "x{3}",
        "A{",
        "A\tB",
        "A\x7f",
        "A\xc3\xa9",
        "A\r\n",
        /* an escape inside quotes does not excuse the byte it escapes */
        "\"\\\r\"",
        "\"\\\n\"",
        "(\"\\\xaa\")",
    };
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK_INT(imk_command_token(cmd, good[i]), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100> BODY[] "
                   "BINARY.PEEK[1.2]<0.2048> +FLAGS.SILENT \\Seen "
                   "BODY[HEADER.FIELDS.NOT (\"X-A(\" \"X-\\\"B\")] RFC822.SIZE)\r\n");
    imk_encoder_options plain = IMK_ENCODER_OPTIONS_INIT;
    CHECK_FRAMING(cmd, &plain);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
        CHECK_INT(imk_command_token(cmd, bad[i]), IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "token") != NULL);
    }
    CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
    CHECK_INT(imk_command_token(cmd, "x{3}"), IMK_EINVAL);
    CHECK_STR(imk_command_error(cmd),
              "token \"x{3}\" contains '{', which could announce a literal (offset 1); tokens "
              "are for fixed protocol syntax such as BODY.PEEK[HEADER] - use "
              "imk_command_astring or imk_command_string for user text");
    CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
    CHECK_INT(imk_command_token(cmd, NULL), IMK_EINVAL);
    imk_command_free(cmd);
}

static void test_flag(void)
{
    static const char *const bad[] = {"",      "\\",   "\\*",   "a b", "\\Se en", "(x",
                                      "\\\\x", "x\\y", "\"x\"", "%",   "a]",      "\xc3\xa9"};
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "STORE"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1:*"), 0);
    CHECK_INT(imk_command_atom(cmd, "+FLAGS"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_flag(cmd, "\\Seen"), 0);
    CHECK_INT(imk_command_flag(cmd, "\\Answered"), 0);
    CHECK_INT(imk_command_flag(cmd, "$Forwarded"), 0);
    CHECK_INT(imk_command_flag(cmd, "NonJunk"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 STORE 1:* +FLAGS (\\Seen \\Answered $Forwarded NonJunk)\r\n");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "STORE"), 0);
        CHECK_INT(imk_command_flag(cmd, bad[i]), IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "flag") != NULL);
    }
    CHECK_INT(imk_command_begin(cmd, "A1", "STORE"), 0);
    CHECK_INT(imk_command_flag(cmd, NULL), IMK_EINVAL);
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Strings                                                            */
/* ------------------------------------------------------------------ */

/* One astring (or string, with as_string) on its own in "A1 X ...". */
static void check_astring(const imk_encoder_options *o, int as_string, const char *data, size_t len,
                          const char *expect, size_t expect_len)
{
    imk_command *cmd = make(o);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    if (as_string)
        CHECK_INT(imk_command_string(cmd, data, len), 0);
    else
        CHECK_INT(imk_command_astring(cmd, data, len), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    size_t out_len;
    const char *out = imk_command_bytes(cmd, &out_len);
    CHECK(out_len >= 5 && memcmp(out, "A1 X ", 5) == 0);
    CHECK_MEM(out + 5, out_len - 5, expect, expect_len);
    CHECK_FRAMING(cmd, o);
    imk_command_free(cmd);
}

#define ASTRING(o, in, expect)                                                                     \
    check_astring((o), 0, (in), sizeof(in) - 1, (expect), sizeof(expect) - 1)
#define STRING(o, in, expect)                                                                      \
    check_astring((o), 1, (in), sizeof(in) - 1, (expect), sizeof(expect) - 1)

static void test_astring_forms(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options utf8 = options(0, 0, 1, 0);
    imk_encoder_options plus = options(1, 0, 0, 0);

    ASTRING(&plain, "user", "user\r\n");
    ASTRING(&plain, "a]b", "a]b\r\n"); /* resp-specials are ASTRING-CHAR */
    ASTRING(&plain, "", "\"\"\r\n");
    ASTRING(&plain, "NIL", "\"NIL\"\r\n");
    ASTRING(&plain, "nil", "\"nil\"\r\n");
    ASTRING(&plain, "NiL", "\"NiL\"\r\n");
    ASTRING(&plain, "NILS", "NILS\r\n");
    ASTRING(&plain, "a b", "\"a b\"\r\n");
    ASTRING(&plain, "p\"a\\s", "\"p\\\"a\\\\s\"\r\n");
    ASTRING(&plain, "50%", "\"50%\"\r\n");
    ASTRING(&plain, "a*", "\"a*\"\r\n");
    ASTRING(&plain, "(x)", "\"(x)\"\r\n");
    ASTRING(&plain, "{5}", "\"{5}\"\r\n");
    ASTRING(&plain, "tab\there", "\"tab\there\"\r\n"); /* TEXT-CHAR allows HTAB */
    ASTRING(&plain, "a\r\nb", "{4}\r\na\r\nb\r\n");
    ASTRING(&plain, "a\rb", "{3}\r\na\rb\r\n");
    ASTRING(&plain, "\n", "{1}\r\n\n\r\n");
    ASTRING(&plus, "a\r\nb", "{4+}\r\na\r\nb\r\n");
    /* 8-bit: a literal unless UTF8=ACCEPT allows it in quoted strings. */
    ASTRING(&plain, "caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9\r\n");
    ASTRING(&utf8, "caf\xc3\xa9", "\"caf\xc3\xa9\"\r\n");
    ASTRING(&utf8, "caf\xe9", "{4}\r\ncaf\xe9\r\n"); /* not UTF-8: a literal */
    ASTRING(&utf8, "\xc3\xa9\r\n", "{4}\r\n\xc3\xa9\r\n\r\n");

    STRING(&plain, "user", "\"user\"\r\n");
    STRING(&plain, "", "\"\"\r\n");
    STRING(&plain, "a\"b", "\"a\\\"b\"\r\n");
    STRING(&plain, "x\r\n", "{3}\r\nx\r\n\r\n");

    /* 1024 bytes is the longest quoted string; longer go as literals. */
    static char big[1100];
    static char expect[1200];
    memset(big, 'x', sizeof(big));
    big[0] = ' ';
    expect[0] = '"';
    memcpy(expect + 1, big, 1024);
    memcpy(expect + 1025, "\"\r\n", 3);
    check_astring(&plain, 0, big, 1024, expect, 1028);
    memcpy(expect, "{1025}\r\n", 8);
    memcpy(expect + 8, big, 1025);
    memcpy(expect + 8 + 1025, "\r\n", 2);
    check_astring(&plain, 0, big, 1025, expect, 8 + 1025 + 2);
    /* A long atom stays an atom while it fits on the line. */
    big[0] = 'x';
    memcpy(expect, big, 1100);
    memcpy(expect + 1100, "\r\n", 2);
    check_astring(&plain, 0, big, 1100, expect, 1102);

    /* NUL cannot be sent in any string; the message does not show the data. */
    imk_command *cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A1", "LOGIN"), 0);
    CHECK_INT(imk_command_astring(cmd, "user", 4), 0);
    CHECK_INT(imk_command_astring(cmd, "secret\0x", 8), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "NUL at offset 6") != NULL);
    CHECK(strstr(imk_command_error(cmd), "secret") == NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_string(cmd, "\0", 1), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_astring(cmd, NULL, 1), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_astring(cmd, NULL, 0), 0);
    CHECK_INT(imk_command_string(cmd, NULL, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X \"\" \"\"\r\n");
    imk_command_free(cmd);
}

static void test_nstring(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "ID"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_string(cmd, "name", 4), 0);
    CHECK_INT(imk_command_nstring(cmd, "imapkit", 7), 0);
    CHECK_INT(imk_command_string(cmd, "vendor", 6), 0);
    CHECK_INT(imk_command_nstring(cmd, NULL, 0), 0);
    CHECK_INT(imk_command_string(cmd, "x", 1), 0);
    CHECK_INT(imk_command_nstring(cmd, "NIL", 3), 0);
    CHECK_INT(imk_command_string(cmd, "y", 1), 0);
    CHECK_INT(imk_command_nstring(cmd, "", 0), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_nstring(cmd, NULL, 5), 0); /* NULL means NIL, len ignored */
    CHECK_INT(imk_command_nstring(cmd, "a\nb", 3), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 ID (\"name\" \"imapkit\" \"vendor\" NIL \"x\" \"NIL\" \"y\" \"\") NIL "
                   "{3}\r\na\nb\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_nstring(cmd, "a\0", 2), IMK_EINVAL);
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Mailboxes                                                          */
/* ------------------------------------------------------------------ */

static void check_mailbox(const imk_encoder_options *o, int list, const char *name, size_t len,
                          const char *expect, size_t expect_len)
{
    imk_command *cmd = make(o);
    CHECK_INT(imk_command_begin(cmd, "A1", list ? "LIST" : "SELECT"), 0);
    if (list)
        CHECK_INT(imk_command_list_mailbox(cmd, name, len), 0);
    else
        CHECK_INT(imk_command_mailbox(cmd, name, len), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    size_t out_len;
    const char *out = imk_command_bytes(cmd, &out_len);
    size_t skip = list ? 8 : 10;
    CHECK(out_len >= skip);
    CHECK_MEM(out + skip, out_len - skip, expect, expect_len);
    CHECK_FRAMING(cmd, o);
    imk_command_free(cmd);
}

#define MAILBOX(o, in, expect)                                                                     \
    check_mailbox((o), 0, (in), sizeof(in) - 1, (expect), sizeof(expect) - 1)
#define PATTERN(o, in, expect)                                                                     \
    check_mailbox((o), 1, (in), sizeof(in) - 1, (expect), sizeof(expect) - 1)

static void test_mailbox(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options utf8 = options(0, 0, 1, 0);

    MAILBOX(&plain, "INBOX", "INBOX\r\n");
    MAILBOX(&plain, "inbox", "INBOX\r\n");
    MAILBOX(&plain, "iNbOx", "INBOX\r\n");
    MAILBOX(&utf8, "Inbox", "INBOX\r\n");
    MAILBOX(&plain, "INBOX/Sub", "INBOX/Sub\r\n");
    MAILBOX(&plain, "INBOXES", "INBOXES\r\n");
    MAILBOX(&plain, "Drafts", "Drafts\r\n");
    MAILBOX(&plain, "Sent Items", "\"Sent Items\"\r\n");
    MAILBOX(&plain, "a&b", "a&-b\r\n");
    MAILBOX(&plain, "\xe5\x8f\xb0\xe5\x8c\x97", "&U,BTFw-\r\n"); /* 台北 */
    MAILBOX(&plain, "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n"); /* RFC 3501 section 5.1.3 */
    MAILBOX(&plain, "", "\"\"\r\n");
    MAILBOX(&plain, "NIL", "\"NIL\"\r\n");
    MAILBOX(&plain, "50%", "\"50%\"\r\n");
    MAILBOX(&utf8, "\xe5\x8f\xb0\xe5\x8c\x97", "\"\xe5\x8f\xb0\xe5\x8c\x97\"\r\n");
    MAILBOX(&utf8, "a&b", "a&b\r\n");
    MAILBOX(&utf8, "Sent Items", "\"Sent Items\"\r\n");

    PATTERN(&plain, "", "\"\"\r\n");
    PATTERN(&plain, "%", "%\r\n");
    PATTERN(&plain, "*", "*\r\n");
    PATTERN(&plain, "Archive/%", "Archive/%\r\n");
    PATTERN(&plain, "inbox", "INBOX\r\n");
    PATTERN(&plain, "My Folders/*", "\"My Folders/*\"\r\n");
    PATTERN(&plain, "\xe5\x8f\xb0\xe5\x8c\x97/%", "&U,BTFw-/%\r\n");
    PATTERN(&utf8, "\xe5\x8f\xb0*", "\"\xe5\x8f\xb0*\"\r\n");

    imk_command *cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "caf\xe9", 4), IMK_EUTF8);
    CHECK(strstr(imk_command_error(cmd), "UTF-8") != NULL);
    CHECK_INT(imk_command_finish(cmd), IMK_EUTF8);
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "a\0b", 3), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "NUL at offset 1") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_list_mailbox(cmd, "\xed\xa0\x80", 3), IMK_EUTF8); /* surrogate */
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_mailbox(cmd, NULL, 3), IMK_EINVAL);
    imk_command_free(cmd);

    cmd = make(&utf8);
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "caf\xe9", 4), IMK_EUTF8);
    CHECK_INT(imk_command_begin(cmd, "A1", "SELECT"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "a\r\nb", 4), 0); /* legal, if odd: a literal */
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 SELECT {4}\r\na\r\nb\r\n");
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Numbers, sets, dates                                               */
/* ------------------------------------------------------------------ */

static void test_number(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_number(cmd, 0), 0);
    CHECK_INT(imk_command_number(cmd, 42), 0);
    CHECK_INT(imk_command_number(cmd, 4294967295u), 0);
    CHECK_INT(imk_command_number(cmd, UINT64_C(9223372036854775807)), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X 0 42 4294967295 9223372036854775807\r\n");
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_number(cmd, UINT64_C(9223372036854775808)), IMK_ERANGE);
    CHECK(strstr(imk_command_error(cmd), "9223372036854775808") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_number(cmd, UINT64_MAX), IMK_ERANGE);
    imk_command_free(cmd);
}

static void test_seqset_text(void)
{
    static const char *const good[] = {"1",    "1:3,5",        "*",          "1:*",  "*:4,5:7",
                                       "$",    "2,4:7,9,12:*", "4294967295", "10:1", "*:*",
                                       "1,1,1"};
    static const char *const bad[] = {"",
                                      "0",
                                      "01",
                                      "1:",
                                      ":1",
                                      "1,,2",
                                      "1,",
                                      ",1",
                                      "$,1",
                                      "1,$",
                                      "4294967296",
                                      "a",
                                      "1 2",
                                      "1:2:3",
                                      "$$",
                                      "1:0",
                                      "99999999999999999999",
                                      "-1",
                                      "1;2",
                                      "**"};
    imk_command *cmd = make(NULL);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
        CHECK_INT(imk_command_seqset_text(cmd, good[i]), 0);
        CHECK_INT(imk_command_finish(cmd), 0);
        size_t len;
        const char *out = imk_command_bytes(cmd, &len);
        CHECK(len == 9 + strlen(good[i]) + 2 && memcmp(out + 9, good[i], strlen(good[i])) == 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
        CHECK_INT(imk_command_seqset_text(cmd, bad[i]), IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "sequence set") != NULL);
    }
    CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1:"), IMK_EINVAL);
    CHECK_STR(imk_command_error(cmd), "sequence set \"1:\" expects a number or '*' here "
                                      "(offset 2); a set looks like 1:3,5,7:* or is $ alone");
    CHECK_INT(imk_command_begin(cmd, "A1", "FETCH"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, NULL), IMK_EINVAL);
    imk_command_free(cmd);
}

static void test_seqset_internal(void)
{
    imk_allocator a;
    imk__alloc_init(&a, NULL);
    imk__seqrange ranges[3] = {{1, 3}, {5, 5}, {7, 0}};
    imk__seqset set = {ranges, 3, 3, &a, 0};
    imk__seqset saved = {NULL, 0, 0, &a, 1};
    imk__seqset empty = {NULL, 0, 0, &a, 0};

    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "UID FETCH"), 0);
    CHECK_INT(imk__command_seqset(cmd, &set), 0);
    CHECK_INT(imk_command_atom(cmd, "FLAGS"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 UID FETCH 1:3,5,7:* FLAGS\r\n");

    CHECK_INT(imk_command_begin(cmd, "A2", "UID COPY"), 0);
    CHECK_INT(imk__command_seqset(cmd, &saved), 0);
    CHECK_INT(imk_command_mailbox(cmd, "Trash", 5), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A2 UID COPY $ Trash\r\n");

    CHECK_INT(imk_command_begin(cmd, "A3", "FETCH"), 0);
    CHECK_INT(imk__command_seqset(cmd, &empty), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "empty sequence set") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A3", "FETCH"), 0);
    CHECK_INT(imk__command_seqset(cmd, NULL), IMK_EINVAL);
    CHECK_INT(imk__command_seqset(NULL, &set), IMK_EINVAL);
    imk_command_free(cmd);
}

static void test_dates(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "SEARCH"), 0);
    CHECK_INT(imk_command_atom(cmd, "SINCE"), 0);
    CHECK_INT(imk_command_date(cmd, 1994, 2, 1), 0);
    CHECK_INT(imk_command_atom(cmd, "BEFORE"), 0);
    CHECK_INT(imk_command_date(cmd, 2000, 2, 29), 0);
    CHECK_INT(imk_command_atom(cmd, "ON"), 0);
    CHECK_INT(imk_command_date(cmd, 2024, 12, 31), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 SEARCH SINCE 1-Feb-1994 BEFORE 29-Feb-2000 ON 31-Dec-2024\r\n");

    static const int bad_dates[][3] = {{1900, 2, 29}, {2023, 2, 29}, {2023, 4, 31}, {2023, 13, 1},
                                       {2023, 0, 1},  {2023, 1, 0},  {2023, 1, 32}, {0, 1, 1},
                                       {10000, 1, 1}, {-1, 1, 1}};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "SEARCH"), 0);
        CHECK_INT(imk_command_date(cmd, bad_dates[i][0], bad_dates[i][1], bad_dates[i][2]),
                  IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "date") != NULL);
        CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
        CHECK_INT(imk_command_datetime(cmd, bad_dates[i][0], bad_dates[i][1], bad_dates[i][2], 0, 0,
                                       0, 0),
                  IMK_EINVAL);
    }

    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_datetime(cmd, 1996, 7, 7, 2, 44, 25, -420), 0);
    CHECK_INT(imk_command_datetime(cmd, 2024, 1, 31, 23, 59, 60, 0), 0);
    CHECK_INT(imk_command_datetime(cmd, 2024, 12, 1, 0, 0, 0, 330), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X \"07-Jul-1996 02:44:25 -0700\" \"31-Jan-2024 23:59:60 +0000\" "
                   "\"01-Dec-2024 00:00:00 +0530\"\r\n");

    static const int bad_times[][4] = {{24, 0, 0, 0},   {-1, 0, 0, 0},   {0, 60, 0, 0},
                                       {0, -1, 0, 0},   {0, 0, 61, 0},   {0, 0, -1, 0},
                                       {0, 0, 0, 1440}, {0, 0, 0, -1440}};
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
        CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
        CHECK_INT(imk_command_datetime(cmd, 2020, 1, 1, bad_times[i][0], bad_times[i][1],
                                       bad_times[i][2], bad_times[i][3]),
                  IMK_EINVAL);
        CHECK(strstr(imk_command_error(cmd), "date-time") != NULL);
    }
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Lists                                                              */
/* ------------------------------------------------------------------ */

static void test_lists(void)
{
    imk_command *cmd = make(NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "A"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "B"), 0);
    CHECK_INT(imk_command_string(cmd, "C", 1), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "D"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "E"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X (A (B \"C\") () (()) D) E\r\n");

    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_list_end(cmd), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "without an open list") != NULL);
    CHECK_INT(imk_command_finish(cmd), IMK_EINVAL);

    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "1 parenthesised list(s) still open") != NULL);
    CHECK_INT(imk_command_segment_count(cmd), 0);

    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_list_end(cmd), IMK_EINVAL);
    CHECK_INT(imk_command_list_begin(NULL), IMK_EINVAL);
    CHECK_INT(imk_command_list_end(NULL), IMK_EINVAL);
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Literals and segments                                              */
/* ------------------------------------------------------------------ */

static void test_login_literal(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options plus = options(1, 0, 0, 0);

    imk_command *cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A2", "LOGIN"), 0);
    CHECK_INT(imk_command_astring(cmd, "user", 4), 0);
    CHECK_INT(imk_command_astring(cmd, "p\"a\\s\r\n", 7), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A2 LOGIN user {7}\r\np\"a\\s\r\n\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A2 LOGIN user {7}\r\n", 1, 0);
    CHECK_SEG(cmd, 1, "p\"a\\s\r\n\r\n", 0, 0);
    CHECK_FRAMING(cmd, &plain);
    imk_command_free(cmd);

    /* The RFC 7888 section 3 example, with LITERAL+. */
    cmd = make(&plus);
    CHECK_INT(imk_command_begin(cmd, "A001", "LOGIN"), 0);
    CHECK_INT(imk_command_literal(cmd, "FRED FOOBAR", 11, 0), 0);
    CHECK_INT(imk_command_literal(cmd, "fat man", 7, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 1);
    CHECK_FRAMING(cmd, &plus);
    imk_command_free(cmd);

    /* The same without: three segments, each literal waits for "+". */
    cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A001", "LOGIN"), 0);
    CHECK_INT(imk_command_literal(cmd, "FRED FOOBAR", 11, 0), 0);
    CHECK_INT(imk_command_literal(cmd, "fat man", 7, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 3);
    CHECK_SEG(cmd, 0, "A001 LOGIN {11}\r\n", 1, 0);
    CHECK_SEG(cmd, 1, "FRED FOOBAR {7}\r\n", 1, 0);
    CHECK_SEG(cmd, 2, "fat man\r\n", 0, 0);
    CHECK_FRAMING(cmd, &plain);
    imk_command_free(cmd);
}

/* A literal of `n` bytes 'x' under options `o`: the announcement used and
 * the number of segments. */
static void check_literal_size(const imk_encoder_options *o, size_t n, const char *announce,
                               size_t segments)
{
    static char data[5000];
    memset(data, 'x', sizeof(data));
    imk_command *cmd = make(o);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_literal(cmd, data, n, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    size_t len;
    const char *out = imk_command_bytes(cmd, &len);
    size_t alen = strlen(announce);
    CHECK_INT(len, 5 + alen + n + 2);
    CHECK_MEM(out + 5, alen, announce, alen);
    CHECK_INT(imk_command_segment_count(cmd), segments);
    if (segments == 2) {
        const imk_command_segment *s = imk_command_segment_at(cmd, 0);
        CHECK(s != NULL && s->len == 5 + alen && s->wait_continuation == 1);
        s = imk_command_segment_at(cmd, 1);
        CHECK(s != NULL && s->len == n + 2 && s->wait_continuation == 0);
    }
    CHECK_FRAMING(cmd, o);
    imk_command_free(cmd);
}

static void test_literal_plus_minus(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options plus = options(1, 0, 0, 0);
    imk_encoder_options minus = options(0, 1, 0, 0);

    check_literal_size(&plain, 0, "{0}\r\n", 2);
    check_literal_size(&plain, 10, "{10}\r\n", 2);
    check_literal_size(&plain, 4096, "{4096}\r\n", 2);
    check_literal_size(&plus, 0, "{0+}\r\n", 1);
    check_literal_size(&plus, 4096, "{4096+}\r\n", 1);
    check_literal_size(&plus, 4097, "{4097+}\r\n", 1);
    check_literal_size(&minus, 1, "{1+}\r\n", 1);
    check_literal_size(&minus, 4096, "{4096+}\r\n", 1);
    check_literal_size(&minus, 4097, "{4097}\r\n", 2);
    check_literal_size(&minus, 5000, "{5000}\r\n", 2);

    /* Arguments after a synchronizing literal continue in the next segment. */
    imk_command *cmd = make(&minus);
    static char big[4097];
    memset(big, 'y', sizeof(big));
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_literal(cmd, "ab", 2, 0), 0);
    CHECK_INT(imk_command_literal(cmd, big, sizeof(big), 0), 0);
    CHECK_INT(imk_command_literal(cmd, "", 0, 0), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "Z"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A1 X ({2+}\r\nab {4097}\r\n", 1, 0);
    const imk_command_segment *s = imk_command_segment_at(cmd, 1);
    CHECK(s != NULL && s->len == 4097 + sizeof(" {0+}\r\n) Z\r\n") - 1);
    CHECK(s != NULL && memcmp(s->data + 4097, " {0+}\r\n) Z\r\n", 12) == 0);
    CHECK_FRAMING(cmd, &minus);
    imk_command_free(cmd);
}

static void test_binary_literal(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options binary = options(0, 0, 0, 1);
    imk_encoder_options binary_plus = options(1, 0, 0, 1);
    imk_encoder_options binary_minus = options(0, 1, 0, 1);
    imk_encoder_options utf8_plus = options(1, 0, 1, 0);

    imk_command *cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(cmd, "a\0b", 3, 1), IMK_ENOTSUP);
    CHECK(strstr(imk_command_error(cmd), "BINARY") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 3, 1), IMK_ENOTSUP);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_literal(cmd, "a\0b", 3, 0), IMK_EINVAL);
    CHECK(strstr(imk_command_error(cmd), "NUL at offset 1") != NULL);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_literal(cmd, NULL, 3, 0), IMK_EINVAL);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_literal(cmd, NULL, 0, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X {0}\r\n\r\n");
    imk_command_free(cmd);

    cmd = make(&binary);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(cmd, "a\0b", 3, 1), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 APPEND INBOX ~{3}\r\na\0b\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A1 APPEND INBOX ~{3}\r\n", 1, 0);
    CHECK_SEG(cmd, 1, "a\0b\r\n", 0, 0);
    CHECK_FRAMING(cmd, &binary);
    imk_command_free(cmd);

    cmd = make(&binary_plus);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(cmd, "a\0b", 3, 1), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 APPEND INBOX ~{3+}\r\na\0b\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 1);
    CHECK_FRAMING(cmd, &binary_plus);
    imk_command_free(cmd);

    cmd = make(&binary_minus);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_literal(cmd, "a\0b", 3, 1), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 4097, 1), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A1 X ~{3+}\r\na\0b ~{4097}\r\n", 1, 4097);
    CHECK_SEG(cmd, 1, "\r\n", 0, 0);
    CHECK_FRAMING(cmd, &binary_minus);
    imk_command_free(cmd);

    /* APPEND UTF8 (RFC 6855 section 4): literal8 without BINARY, and then
     * always synchronizing, even with LITERAL+ (RFC 4466 section 2.7). */
    cmd = make(&utf8_plus);
    CHECK_INT(imk_command_begin(cmd, "A1", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "INBOX", 5), 0);
    CHECK_INT(imk_command_atom(cmd, "UTF8"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_literal(cmd, "S\xc3\xa9", 3, 1), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_literal(cmd, "x", 1, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 APPEND INBOX UTF8 (~{3}\r\nS\xc3\xa9) {1+}\r\nx\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A1 APPEND INBOX UTF8 (~{3}\r\n", 1, 0);
    CHECK_FRAMING(cmd, &utf8_plus);
    imk_command_free(cmd);
}

static void test_stream_append(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_encoder_options plus = options(1, 0, 0, 0);
    imk_encoder_options minus = options(0, 1, 0, 0);

    imk_command *cmd = make(&plain);
    CHECK_INT(imk_command_begin(cmd, "A3", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "inbox", 5), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_flag(cmd, "\\Seen"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_datetime(cmd, 1996, 7, 7, 2, 44, 25, -420), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 310, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A3 APPEND INBOX (\\Seen) \"07-Jul-1996 02:44:25 -0700\" {310}\r\n\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_SEG(cmd, 0, "A3 APPEND INBOX (\\Seen) \"07-Jul-1996 02:44:25 -0700\" {310}\r\n", 1, 310);
    CHECK_SEG(cmd, 1, "\r\n", 0, 0);
    CHECK_FRAMING(cmd, &plain);
    imk_command_free(cmd);

    /* MULTIAPPEND with LITERAL+: segments split only at the streams. */
    cmd = make(&plus);
    CHECK_INT(imk_command_begin(cmd, "A4", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "Saved", 5), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 10, 0), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_flag(cmd, "\\Draft"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 20, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 3);
    CHECK_SEG(cmd, 0, "A4 APPEND Saved {10+}\r\n", 0, 10);
    CHECK_SEG(cmd, 1, " (\\Draft) {20+}\r\n", 0, 20);
    CHECK_SEG(cmd, 2, "\r\n", 0, 0);
    CHECK_FRAMING(cmd, &plus);
    imk_command_free(cmd);

    /* LITERAL-: a large stream synchronizes, a small one does not. */
    cmd = make(&minus);
    CHECK_INT(imk_command_begin(cmd, "A5", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "Saved", 5), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 4096, 0), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 4097, 0), 0);
    CHECK_INT(imk_command_literal_stream(cmd, 0, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 3);
    CHECK_SEG(cmd, 0, "A5 APPEND Saved {4096+}\r\n", 0, 4096);
    CHECK_SEG(cmd, 1, " {4097}\r\n", 1, 4097);
    CHECK_SEG(cmd, 2, " {0+}\r\n\r\n", 0, 0);
    CHECK_FRAMING(cmd, &minus);

    /* Streamed data does not count towards max_command; the length must
     * still be a number64. */
    CHECK_INT(imk_command_begin(cmd, "A6", "APPEND"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "Saved", 5), 0);
    CHECK_INT(imk_command_literal_stream(cmd, UINT64_C(1) << 40, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_SEG(cmd, 0, "A6 APPEND Saved {1099511627776}\r\n", 1, UINT64_C(1) << 40);
    CHECK_INT(imk_command_begin(cmd, "A7", "APPEND"), 0);
    CHECK_INT(imk_command_literal_stream(cmd, UINT64_C(9223372036854775808), 0), IMK_ERANGE);
    imk_command_free(cmd);
}

static void test_realistic_commands(void)
{
    imk_encoder_options plain = options(0, 0, 0, 0);
    imk_command *cmd = make(&plain);

    CHECK_INT(imk_command_begin(cmd, "A1", "UID FETCH"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1:3,5"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "UID"), 0);
    CHECK_INT(imk_command_atom(cmd, "FLAGS"), 0);
    CHECK_INT(imk_command_token(cmd, "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 UID FETCH 1:3,5 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 1);
    CHECK_FRAMING(cmd, &plain);

    CHECK_INT(imk_command_begin(cmd, "A5", "UID STORE"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1:*"), 0);
    CHECK_INT(imk_command_atom(cmd, "+FLAGS.SILENT"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_flag(cmd, "\\Seen"), 0);
    CHECK_INT(imk_command_flag(cmd, "$Forwarded"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A5 UID STORE 1:* +FLAGS.SILENT (\\Seen $Forwarded)\r\n");

    CHECK_INT(imk_command_begin(cmd, "A6", "LIST"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "", 0), 0);
    CHECK_INT(imk_command_list_mailbox(cmd, "%", 1), 0);
    CHECK_INT(imk_command_atom(cmd, "RETURN"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "SPECIAL-USE"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A6 LIST \"\" % RETURN (SPECIAL-USE)\r\n");

    CHECK_INT(imk_command_begin(cmd, "A7", "STATUS"), 0);
    CHECK_INT(imk_command_mailbox(cmd, "Sent Items", 10), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "MESSAGES"), 0);
    CHECK_INT(imk_command_atom(cmd, "UIDNEXT"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A7 STATUS \"Sent Items\" (MESSAGES UIDNEXT)\r\n");

    CHECK_INT(imk_command_begin(cmd, "A8", "UID SEARCH"), 0);
    CHECK_INT(imk_command_atom(cmd, "CHARSET"), 0);
    CHECK_INT(imk_command_atom(cmd, "UTF-8"), 0);
    CHECK_INT(imk_command_atom(cmd, "SINCE"), 0);
    CHECK_INT(imk_command_date(cmd, 1994, 2, 1), 0);
    CHECK_INT(imk_command_atom(cmd, "FROM"), 0);
    CHECK_INT(imk_command_string(cmd, "Smith", 5), 0);
    CHECK_INT(imk_command_atom(cmd, "SUBJECT"), 0);
    CHECK_INT(imk_command_string(cmd, "\xc3\xa9t\xc3\xa9", 5), 0);
    CHECK_INT(imk_command_atom(cmd, "NOT"), 0);
    CHECK_INT(imk_command_atom(cmd, "SEEN"), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A8 UID SEARCH CHARSET UTF-8 SINCE 1-Feb-1994 FROM \"Smith\" SUBJECT {5}\r\n"
                   "\xc3\xa9t\xc3\xa9 NOT SEEN\r\n");
    CHECK_INT(imk_command_segment_count(cmd), 2);
    CHECK_FRAMING(cmd, &plain);

    CHECK_INT(imk_command_begin(cmd, "A9", "UID FETCH"), 0);
    CHECK_INT(imk_command_seqset_text(cmd, "1:*"), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "FLAGS"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_list_begin(cmd), 0);
    CHECK_INT(imk_command_atom(cmd, "CHANGEDSINCE"), 0);
    CHECK_INT(imk_command_number(cmd, 12345678901ull), 0);
    CHECK_INT(imk_command_atom(cmd, "VANISHED"), 0);
    CHECK_INT(imk_command_list_end(cmd), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A9 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345678901 VANISHED)\r\n");
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Limits                                                             */
/* ------------------------------------------------------------------ */

static void test_max_line(void)
{
    imk_encoder_options o = options(0, 0, 0, 0);
    o.max_line = 20;
    imk_command *cmd = make(&o);
    /* "A1 X " is 5 bytes: 15 are left on the line. */
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_astring(cmd, "abcdefghijklmno", 15), 0); /* exactly fits */
    CHECK_INT(imk_command_astring(cmd, "a", 1), 0);                /* does not */
    CHECK_INT(imk_command_string(cmd, "bc", 2), 0);                /* fits again */
    CHECK_INT(imk_command_string(cmd, "abcdefghijklmnop", 16), 0);
    CHECK_INT(imk_command_atom(cmd, "LONG-ATOMS-CANNOT-MOVE"), 0);
    CHECK_INT(imk_command_astring(cmd, "z", 1), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_OUT(cmd, "A1 X abcdefghijklmno {1}\r\na \"bc\" {16}\r\nabcdefghijklmnop "
                   "LONG-ATOMS-CANNOT-MOVE {1}\r\nz\r\n");
    CHECK_FRAMING(cmd, &o);
    imk_command_free(cmd);

    /* The default is 8192: a long quoted-able text moves to a literal. */
    o = options(0, 0, 0, 0);
    cmd = make(&o);
    static char text[1000];
    memset(text, 'w', sizeof(text));
    text[0] = ' ';
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    for (int i = 0; i < 9; i++)
        CHECK_INT(imk_command_string(cmd, text, sizeof(text)), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    CHECK_INT(imk_command_segment_count(cmd), 2); /* the ninth is a literal */
    const imk_command_segment *s = imk_command_segment_at(cmd, 0);
    CHECK(s != NULL && s->len == 4 + 8 * 1003 + sizeof(" {1000}\r\n") - 1 && s->wait_continuation);
    CHECK_FRAMING(cmd, &o);
    imk_command_free(cmd);
}

static void test_max_command(void)
{
    imk_encoder_options o = options(1, 0, 0, 0);
    o.max_command = 64;
    imk_command *cmd = make(&o);
    static char data[100];
    memset(data, 'q', sizeof(data));

    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_literal(cmd, data, 100, 0), IMK_ELIMIT);
    CHECK(strstr(imk_command_error(cmd), "max_command (64 bytes)") != NULL);
    CHECK_INT(imk_command_finish(cmd), IMK_ELIMIT);

    /* Exactly 64 bytes is allowed, one more is not. */
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    /* "A1 X" SP "{51+}" CRLF data CRLF is 65 bytes */
    CHECK_INT(imk_command_literal(cmd, data, 51, 0), 0);
    CHECK_INT(imk_command_finish(cmd), IMK_ELIMIT);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_literal(cmd, data, 50, 0), 0);
    CHECK_INT(imk_command_finish(cmd), 0);
    size_t len;
    imk_command_bytes(cmd, &len);
    CHECK_INT(len, 64);

    /* Every appender reports the limit. */
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_atom(cmd, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
              IMK_ELIMIT);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_string(cmd, data, 60), IMK_ELIMIT);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    CHECK_INT(imk_command_mailbox(cmd, data, 60), IMK_ELIMIT);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = imk_command_list_begin(cmd);
    CHECK_INT(rc, IMK_ELIMIT);
    CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
    for (int i = 0; i < 20; i++)
        imk_command_number(cmd, 123);
    CHECK_INT(imk_command_finish(cmd), IMK_ELIMIT);
    static char long_tag[80];
    memset(long_tag, 'T', sizeof(long_tag) - 1);
    CHECK_INT(imk_command_begin(cmd, long_tag, "X"), IMK_ELIMIT);
    imk_command_free(cmd);

    /* The default maximum is 16 MiB. */
    o = options(1, 0, 0, 0);
    cmd = make(&o);
    size_t big_len = (size_t)16 * 1024 * 1024;
    char *big = malloc(big_len);
    CHECK(big != NULL);
    if (big != NULL) {
        memset(big, 'b', big_len);
        CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
        CHECK_INT(imk_command_literal(cmd, big, big_len - 100, 0), 0);
        CHECK_INT(imk_command_finish(cmd), 0);
        CHECK_INT(imk_command_begin(cmd, "A1", "X"), 0);
        CHECK_INT(imk_command_literal(cmd, big, big_len, 0), IMK_ELIMIT);
        free(big);
    }
    imk_command_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Security: no byte of user data breaks the command line             */
/* ------------------------------------------------------------------ */

enum appender {
    APP_ATOM,
    APP_TOKEN,
    APP_FLAG,
    APP_ASTRING,
    APP_STRING,
    APP_NSTRING,
    APP_MAILBOX,
    APP_LIST_MAILBOX,
    APP_SEQSET,
    APP_LITERAL,
    APP_LITERAL8,
    APP_TAG,
    APP_NAME,
    APP_COUNT
};

/* Build a command with `data` in the middle of other arguments. Returns the
 * result of the call that received the data. */
static int build_with(imk_command *cmd, enum appender app, const char *data, size_t len)
{
    char cstr[8];
    size_t clen = len < sizeof(cstr) - 1 ? len : sizeof(cstr) - 1;
    memcpy(cstr, data, clen);
    cstr[clen] = '\0'; /* a NUL inside ends the C string: that is its meaning */

    int rc = imk_command_begin(cmd, app == APP_TAG ? cstr : "T1", app == APP_NAME ? cstr : "X");
    if (app == APP_TAG || app == APP_NAME) {
        if (rc == 0)
            imk_command_atom(cmd, "A");
        return rc;
    }
    imk_command_atom(cmd, "A");
    imk_command_list_begin(cmd);
    switch (app) {
    case APP_ATOM:
        rc = imk_command_atom(cmd, cstr);
        break;
    case APP_TOKEN:
        rc = imk_command_token(cmd, cstr);
        break;
    case APP_FLAG:
        rc = imk_command_flag(cmd, cstr);
        break;
    case APP_ASTRING:
        rc = imk_command_astring(cmd, data, len);
        break;
    case APP_STRING:
        rc = imk_command_string(cmd, data, len);
        break;
    case APP_NSTRING:
        rc = imk_command_nstring(cmd, data, len);
        break;
    case APP_MAILBOX:
        rc = imk_command_mailbox(cmd, data, len);
        break;
    case APP_LIST_MAILBOX:
        rc = imk_command_list_mailbox(cmd, data, len);
        break;
    case APP_SEQSET:
        rc = imk_command_seqset_text(cmd, cstr);
        break;
    case APP_LITERAL:
        rc = imk_command_literal(cmd, data, len, 0);
        break;
    case APP_LITERAL8:
        rc = imk_command_literal(cmd, data, len, 1);
        break;
    default:
        rc = -999;
        break;
    }
    imk_command_list_end(cmd);
    imk_command_string(cmd, "z", 1);
    return rc;
}

static void test_injection(void)
{
    imk_encoder_options opts[5] = {options(0, 0, 0, 0), options(1, 0, 0, 0), options(0, 1, 0, 0),
                                   options(0, 0, 1, 0), options(1, 0, 1, 1)};
    int failures_before = test_failures;
    long built = 0;

    for (size_t oi = 0; oi < 5; oi++) {
        imk_command *cmd = make(&opts[oi]);
        for (int app = 0; app < APP_COUNT; app++) {
            for (int b = 0; b < 256; b++) {
                for (int where = 0; where < 5; where++) {
                    char data[4];
                    size_t len;
                    char c = (char)b;
                    switch (where) {
                    case 0:
                        data[0] = c;
                        len = 1;
                        break;
                    case 1:
                        data[0] = c;
                        data[1] = 'x';
                        data[2] = 'y';
                        len = 3;
                        break;
                    case 2:
                        data[0] = 'x';
                        data[1] = c;
                        data[2] = 'y';
                        len = 3;
                        break;
                    case 3:
                        data[0] = 'x';
                        data[1] = 'y';
                        data[2] = c;
                        len = 3;
                        break;
                    default: /* escaped inside a quoted part of a token */
                        data[0] = '"';
                        data[1] = '\\';
                        data[2] = c;
                        data[3] = '"';
                        len = 4;
                        break;
                    }
                    int rc = build_with(cmd, (enum appender)app, data, len);
                    int frc = imk_command_finish(cmd);
                    if (rc < 0) {
                        /* Refused: the error is sticky, nothing is emitted. */
                        CHECK(rc == IMK_EINVAL || rc == IMK_EUTF8 || rc == IMK_ENOTSUP);
                        CHECK_INT(frc, rc);
                        CHECK_INT(imk_command_segment_count(cmd), 0);
                        CHECK(imk_command_error(cmd)[0] != '\0');
                        continue;
                    }
                    CHECK_INT(frc, 0);
                    CHECK_FRAMING(cmd, &opts[oi]);
                    built++;
                    /* Programmer words refuse line breakers outright... */
                    if (app == APP_ATOM || app == APP_TOKEN || app == APP_FLAG ||
                        app == APP_SEQSET || app == APP_TAG || app == APP_NAME)
                        CHECK(b != '\r' && b != '\n');
                    /* ...and user strings carry them in literals. */
                    if ((b == '\r' || b == '\n') &&
                        (app == APP_ASTRING || app == APP_STRING || app == APP_NSTRING ||
                         (app == APP_MAILBOX && opts[oi].utf8_accept) ||
                         (app == APP_LIST_MAILBOX && opts[oi].utf8_accept)))
                        CHECK(imk_command_segment_count(cmd) == 2 || opts[oi].literal_plus ||
                              opts[oi].literal_minus);
                }
            }
            /* Also user data that is all line breakers, and long. */
            static char crlf[3000];
            for (size_t i = 0; i < sizeof(crlf); i++)
                crlf[i] = "\r\n\0"[i % 2];
            if (app >= APP_ASTRING && app <= APP_LIST_MAILBOX) {
                int rc = build_with(cmd, (enum appender)app, crlf, sizeof(crlf));
                if (imk_command_finish(cmd) == 0) {
                    CHECK_INT(rc, 0);
                    CHECK_FRAMING(cmd, &opts[oi]);
                }
            }
        }
        imk_command_free(cmd);
    }
    CHECK(built > 10000);
    if (test_failures != failures_before)
        fprintf(stderr, "injection: %d failures\n", test_failures - failures_before);
}

/* ------------------------------------------------------------------ */
/* Allocation failure                                                 */
/* ------------------------------------------------------------------ */

static const char complex_expect[] =
    "A1 APPEND \"&U,BTFw-/%-Sub\" (\\Seen $Forwarded) \"07-Jul-1996 02:44:25 -0700\" {12}\r\n"
    "line1\r\nline2 {310}\r\n \"a b\" (x y \"\" NIL) ~{3}\r\na\0b {2}\r\n\r\n Q\r\n";

static int build_complex(imk_command *cmd)
{
    imk_command_begin(cmd, "A1", "APPEND");
    imk_command_mailbox(cmd, "\xe5\x8f\xb0\xe5\x8c\x97/%-Sub", 12);
    imk_command_list_begin(cmd);
    imk_command_flag(cmd, "\\Seen");
    imk_command_flag(cmd, "$Forwarded");
    imk_command_list_end(cmd);
    imk_command_datetime(cmd, 1996, 7, 7, 2, 44, 25, -420);
    imk_command_astring(cmd, "line1\r\nline2", 12);
    imk_command_literal_stream(cmd, 310, 0);
    imk_command_string(cmd, "a b", 3);
    imk_command_list_begin(cmd);
    imk_command_atom(cmd, "x");
    imk_command_astring(cmd, "y", 1);
    imk_command_nstring(cmd, "", 0);
    imk_command_nstring(cmd, NULL, 0);
    imk_command_list_end(cmd);
    imk_command_literal(cmd, "a\0b", 3, 1);
    imk_command_string(cmd, "\r\n", 2);
    imk_command_atom(cmd, "Q");
    return imk_command_finish(cmd);
}

static void test_alloc_failure(void)
{
    imk_encoder_options o = options(0, 0, 0, 1);
    int succeeded = 0;
    long fail_at;
    for (fail_at = 1; fail_at < 1000 && !succeeded; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        imk_command *cmd = NULL;
        int rc = imk_command_new(&o, &a, &cmd);
        if (rc == 0) {
            rc = build_complex(cmd);
            if (rc == 0) {
                CHECK_OUT(cmd, complex_expect);
                CHECK_FRAMING(cmd, &o);
                CHECK_INT(imk_command_segment_count(cmd), 5);
                /* A second command in the same object needs no new memory. */
                long count = fa.count;
                CHECK_INT(build_complex(cmd), 0);
                CHECK_INT(fa.count, count);
                succeeded = !fa.failed;
            } else {
                CHECK_INT(rc, IMK_ENOMEM);
                CHECK(fa.failed);
                CHECK(strstr(imk_command_error(cmd), "out of memory") != NULL);
                CHECK_INT(imk_command_segment_count(cmd), 0);
            }
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK(cmd == NULL);
        }
        imk_command_free(cmd);
        CHECK_INT(fa.live, 0);
    }
    CHECK(succeeded);
    CHECK(fail_at > 3); /* several allocations were failed on the way */
}

int main(void)
{
    RUN(test_new_free);
    RUN(test_state);
    RUN(test_failure_is_sticky);
    RUN(test_begin);
    RUN(test_atom);
    RUN(test_token);
    RUN(test_flag);
    RUN(test_astring_forms);
    RUN(test_nstring);
    RUN(test_mailbox);
    RUN(test_number);
    RUN(test_seqset_text);
    RUN(test_seqset_internal);
    RUN(test_dates);
    RUN(test_lists);
    RUN(test_login_literal);
    RUN(test_literal_plus_minus);
    RUN(test_binary_literal);
    RUN(test_stream_append);
    RUN(test_realistic_commands);
    RUN(test_max_line);
    RUN(test_max_command);
    RUN(test_injection);
    RUN(test_alloc_failure);
    return test_finish();
}
