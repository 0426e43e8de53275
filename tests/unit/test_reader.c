/* SPDX-License-Identifier: MIT */
/*
 * Tests of the reader's framing: lines, literals, literal8, streamed body
 * sections, limits, end of stream, split points and allocation failure.
 *
 * Each stream is turned into a trace string, one line per event:
 *   R <raw bytes of the response, CRLF shown as \n>
 *   B seq=.. uid=.. item=.. spec=.. origin=.. size=..   (BODY_BEGIN)
 *   D <all chunk bytes of the body, concatenated>        (BODY_CHUNKs)
 *   X                                                    (BODY_END)
 *   E <error name> @offset <message>                     (ERROR)
 * and the same stream fed whole, one byte at a time and split at every
 * position must give the same trace.
 */
#include "imapkit/reader.h"

#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct trace {
    char *data;
    size_t len, cap;
    int in_chunk;
} trace;

static void tr_add(trace *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap == 0 ? 256 : t->cap;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->data = realloc(t->data, cap);
        if (t->data == NULL)
            abort();
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void tr_str(trace *t, const char *s)
{
    tr_add(t, s, strlen(s));
}

static void tr_escaped(trace *t, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\r')
            continue;
        if (c == '\n')
            tr_str(t, "\\n");
        else if (c == '\0')
            tr_str(t, "\\0");
        else
            tr_add(t, &c, 1);
    }
}

static void tr_event(trace *t, const imk_event *ev)
{
    char line[512];
    if (ev->type != IMK_EVENT_BODY_CHUNK && t->in_chunk) {
        tr_str(t, "\n");
        t->in_chunk = 0;
    }
    switch (ev->type) {
    case IMK_EVENT_RESPONSE:
        tr_str(t, "R ");
        tr_escaped(t, ev->response->raw.data, ev->response->raw.len);
        tr_str(t, "\n");
        break;
    case IMK_EVENT_BODY_BEGIN:
        snprintf(line, sizeof(line),
                 "B seq=%u uid=%u/%d item=%d spec=%.*s origin=%d/%llu size=%llu%s\n", ev->body->seq,
                 ev->body->uid, ev->body->has_uid, (int)ev->body->item, (int)ev->body->spec.len,
                 ev->body->spec.data, ev->body->has_origin, (unsigned long long)ev->body->origin,
                 (unsigned long long)ev->body->size, ev->body->binary ? " binary" : "");
        tr_str(t, line);
        break;
    case IMK_EVENT_BODY_CHUNK:
        if (!t->in_chunk) {
            tr_str(t, "D ");
            t->in_chunk = 1;
        }
        tr_escaped(t, ev->data.data, ev->data.len);
        break;
    case IMK_EVENT_BODY_END:
        tr_str(t, "X\n");
        break;
    case IMK_EVENT_ERROR:
        snprintf(line, sizeof(line), "E %s @%llu %s\n", imk_error_name(ev->error->code),
                 (unsigned long long)ev->error->offset, ev->error->message);
        tr_str(t, line);
        break;
    }
}

/* Feed `in` in pieces of `step` bytes (0 = whole); if `split` is nonzero,
 * feed in[0..split) then the rest. Returns the trace (caller frees). */
static char *run(const imk_reader_options *opts, const char *in, size_t len, size_t step,
                 size_t split)
{
    imk_reader *r = NULL;
    if (imk_reader_new(opts, NULL, &r) != 0)
        abort();
    trace t = {0};
    size_t pos = 0;
    while (pos < len) {
        size_t want = len - pos;
        if (step != 0 && want > step)
            want = step;
        if (split != 0 && pos < split && want > split - pos)
            want = split - pos;
        size_t took = imk_reader_feed(r, in + pos, want);
        pos += took;
        imk_event ev;
        int rc;
        while ((rc = imk_reader_next(r, &ev)) == 1)
            tr_event(&t, &ev);
        if (rc < 0) {
            tr_str(&t, "FATAL\n");
            break;
        }
    }
    imk_reader_eof(r);
    imk_event ev;
    while (imk_reader_next(r, &ev) == 1)
        tr_event(&t, &ev);
    if (t.in_chunk)
        tr_str(&t, "\n");
    imk_reader_free(r);
    if (t.data == NULL)
        tr_str(&t, "");
    return t.data;
}

/* Run whole, byte by byte and split everywhere; all must equal `expect`. */
static void check_stream_opts(const imk_reader_options *opts, const char *in, size_t len,
                              const char *expect)
{
    char *whole = run(opts, in, len, 0, 0);
    CHECK_STR(whole, expect);
    char *bytes = run(opts, in, len, 1, 0);
    CHECK_STR(bytes, expect);
    for (size_t split = 1; split < len; split++) {
        char *s = run(opts, in, len, 0, split);
        if (strcmp(s, expect) != 0) {
            fprintf(stderr, "split at %zu differs:\n%s\n", split, s);
            CHECK(0);
            free(s);
            break;
        }
        free(s);
    }
    free(whole);
    free(bytes);
}

#define check_stream(in, expect) check_stream_opts(NULL, in, sizeof(in) - 1, expect)

static void test_lines(void)
{
    check_stream("* 3 EXISTS\r\n* OK [UIDNEXT 4] Predicted next UID\r\nA1 OK done\r\n",
                 "R * 3 EXISTS\\n\n"
                 "R * OK [UIDNEXT 4] Predicted next UID\\n\n"
                 "R A1 OK done\\n\n");
}

static void test_inline_literal(void)
{
    check_stream("* XFOO (a {3}\r\nabc (b c))\r\n* 1 EXISTS\r\n",
                 "R * XFOO (a {3}\\nabc (b c))\\n\n"
                 "R * 1 EXISTS\\n\n");
    /* zero-length literal and two literals in one response */
    check_stream("* XFOO {0}\r\n {2}\r\nab\r\n", "R * XFOO {0}\\n {2}\\nab\\n\n");
}

static void test_status_text_is_not_literal(void)
{
    /* resp-text may end in "{5}": it is text, not a literal announcement. */
    check_stream("A1 OK done {5}\r\n* 1 EXISTS\r\n+ send {3}\r\n", "R A1 OK done {5}\\n\n"
                                                                   "R * 1 EXISTS\\n\n"
                                                                   "R + send {3}\\n\n");
}

static void test_body_streamed(void)
{
    check_stream("* 1 FETCH (UID 7 BODY[] {11}\r\nhello world)\r\nA1 OK\r\n",
                 "B seq=1 uid=7/1 item=0 spec= origin=0/0 size=11\n"
                 "D hello world\n"
                 "X\n"
                 "R * 1 FETCH (UID 7 BODY[] {11}\\n)\\n\n"
                 "R A1 OK\\n\n");
    /* a section with spaces, an origin, and UID after the body */
    check_stream("* 12 FETCH (BODY[HEADER.FIELDS (FROM TO)]<5> {4}\r\nab\r\n UID 99)\r\n",
                 "B seq=12 uid=0/0 item=0 spec=HEADER.FIELDS (FROM TO) origin=1/5 size=4\n"
                 "D ab\\n\n"
                 "X\n"
                 "R * 12 FETCH (BODY[HEADER.FIELDS (FROM TO)]<5> {4}\\n UID 99)\\n\n");
    /* literal8 with NUL bytes, RFC822.TEXT, and an empty body */
    static const char bin[] = "* 2 FETCH (UID 3 BINARY[1] ~{4}\r\na\0b\0 RFC822.TEXT {0}\r\n)\r\n";
    check_stream_opts(NULL, bin, sizeof(bin) - 1,
                      "B seq=2 uid=3/1 item=1 spec=1 origin=0/0 size=4 binary\n"
                      "D a\\0b\\0\n"
                      "X\n"
                      "B seq=2 uid=3/1 item=5 spec= origin=0/0 size=0\n"
                      "X\n"
                      "R * 2 FETCH (UID 3 BINARY[1] ~{4}\\n RFC822.TEXT {0}\\n)\\n\n");
    /* a literal that is not a body section stays inline, even in FETCH */
    check_stream("* 4 FETCH (ENVELOPE (NIL {5}\r\nhello NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",
                 "R * 4 FETCH (ENVELOPE (NIL {5}\\nhello NIL NIL NIL NIL NIL NIL NIL NIL))\\n\n");
    /* UID inside a quoted subject is not the UID item */
    check_stream("* 5 FETCH (X \"UID 9\" BODY[1] {1}\r\nz)\r\n",
                 "B seq=5 uid=0/0 item=0 spec=1 origin=0/0 size=1\n"
                 "D z\n"
                 "X\n"
                 "R * 5 FETCH (X \"UID 9\" BODY[1] {1}\\n)\\n\n");
}

/* The FETCH that follows a streamed body describes the section as streamed. */
static void test_body_typed(void)
{
    imk_reader *r = NULL;
    CHECK_INT(imk_reader_new(NULL, NULL, &r), 0);
    static const char in[] =
        "* 1 FETCH (UID 7 BODY[1.MIME]<10> {11}\r\nhello world FLAGS (\\Seen))\r\n";
    imk_reader_feed(r, in, sizeof(in) - 1);
    imk_event ev;
    int n = 0;
    while (imk_reader_next(r, &ev) == 1) {
        n++;
        if (ev.type != IMK_EVENT_RESPONSE)
            continue;
        const imk_response *resp = ev.response;
        CHECK_INT(resp->kind, IMK_KIND_FETCH);
        CHECK_INT(resp->u.fetch.seq, 1);
        CHECK_INT(resp->u.fetch.uid, 7);
        CHECK_INT(resp->u.fetch.flags.count, 1);
        CHECK_INT(resp->u.fetch.section_count, 1);
        if (resp->u.fetch.section_count == 1) {
            const imk_fetch_section *sec = &resp->u.fetch.sections[0];
            CHECK_INT(sec->item, IMK_SECTION_BODY);
            CHECK_MEM(sec->spec.data, sec->spec.len, "1.MIME", 6);
            CHECK_INT(sec->has_origin, 1);
            CHECK_INT(sec->origin, 10);
            CHECK_INT(sec->streamed, 1);
            CHECK_INT(sec->size, 11);
        }
    }
    CHECK_INT(n, 4); /* BEGIN, CHUNK, END, RESPONSE */
    imk_reader_free(r);
}

static imk_reader_options opts_with(size_t line, size_t literal, size_t response)
{
    imk_reader_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_READER_OPTIONS_VERSION;
    o.max_line_length = line;
    o.max_literal_size = literal;
    o.max_response_size = response;
    return o;
}

static void test_limit_line(void)
{
    /* "* 1 EXISTS\r\n" is 12 bytes: a limit of 12 passes, 11 fails, and the
     * next response is read normally. */
    static const char in[] = "* 1 EXISTS\r\n* 2 EXISTS\r\n";
    imk_reader_options ok = opts_with(12, 0, 0);
    check_stream_opts(&ok, in, sizeof(in) - 1, "R * 1 EXISTS\\n\nR * 2 EXISTS\\n\n");
    static const char in2[] = "* 10 EXISTS\r\n* 2 EXISTS\r\n";
    check_stream_opts(&ok, in2, sizeof(in2) - 1,
                      "E IMK_ELIMIT @12 line longer than max_line_length (limit 12 bytes)\n"
                      "R * 2 EXISTS\\n\n");
    /* an over-long line that announces a literal: the literal is still
     * skipped, so framing survives */
    static const char in3[] = "* XFOO aaaaaaaaaaaaaa {3}\r\n)\r\n\r\n* 2 EXISTS\r\n";
    imk_reader_options small = opts_with(16, 0, 0);
    check_stream_opts(&small, in3, sizeof(in3) - 1,
                      "E IMK_ELIMIT @16 line longer than max_line_length (limit 16 bytes)\n"
                      "R * 2 EXISTS\\n\n");
}

static void test_limit_literal(void)
{
    imk_reader_options o = opts_with(0, 3, 0);
    static const char in[] = "* XFOO {3}\r\nabc\r\n* XFOO {4}\r\nabcd\r\n* 2 EXISTS\r\n";
    check_stream_opts(&o, in, sizeof(in) - 1,
                      "R * XFOO {3}\\nabc\\n\n"
                      "E IMK_ELIMIT @29 literal larger than max_literal_size (limit 3 bytes)\n"
                      "R * 2 EXISTS\\n\n");
}

static void test_limit_response(void)
{
    /* "* XFOO {3}\r\nabc\r\n" is 17 bytes */
    imk_reader_options o = opts_with(0, 0, 17);
    static const char in[] = "* XFOO {3}\r\nabc\r\n* XFOO {3}\r\nabc \r\n* 2 EXISTS\r\n";
    check_stream_opts(&o, in, sizeof(in) - 1,
                      "R * XFOO {3}\\nabc\\n\n"
                      "E IMK_ELIMIT @34 response longer than max_response_size (limit 17 bytes)\n"
                      "R * 2 EXISTS\\n\n");
}

static void test_limit_body(void)
{
    imk_reader_options o = opts_with(0, 0, 0);
    o.max_body_size = 4;
    static const char in[] =
        "* 1 FETCH (BODY[] {4}\r\nabcd)\r\n* 2 FETCH (BODY[] {5}\r\nabcde)\r\n* 2 EXISTS\r\n";
    check_stream_opts(&o, in, sizeof(in) - 1,
                      "B seq=1 uid=0/0 item=0 spec= origin=0/0 size=4\n"
                      "D abcd\n"
                      "X\n"
                      "R * 1 FETCH (BODY[] {4}\\n)\\n\n"
                      "E IMK_ELIMIT @53 body literal larger than max_body_size\n"
                      "R * 2 EXISTS\\n\n");
}

/* The parsed form of a response has its own bound (max_parsed_size). */
static void test_limit_parsed(void)
{
    char in[8192];
    size_t n = 0;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "* SEARCH");
    for (int i = 1; i <= 1000; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, " %d", i);
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\n* 2 EXISTS\r\n");
    for (int round = 0; round < 2; round++) {
        imk_reader_options o = opts_with(0, 0, 0);
        o.max_parsed_size = round == 0 ? 2048 : 64 * 1024;
        imk_reader *r = NULL;
        CHECK_INT(imk_reader_new(&o, NULL, &r), 0);
        CHECK_INT(imk_reader_feed(r, in, n), n);
        imk_event ev;
        CHECK_INT(imk_reader_next(r, &ev), 1);
        if (round == 0) {
            CHECK_INT(ev.type, IMK_EVENT_ERROR);
            CHECK_INT(ev.error->code, IMK_ELIMIT);
        } else {
            CHECK_INT(ev.type, IMK_EVENT_RESPONSE);
            CHECK_INT(ev.response->u.search.count, 1000);
        }
        CHECK_INT(imk_reader_next(r, &ev), 1);
        CHECK_INT(ev.type, IMK_EVENT_RESPONSE);
        CHECK_INT(ev.response->kind, IMK_KIND_EXISTS);
        CHECK_INT(imk_reader_next(r, &ev), 0);
        imk_reader_free(r);
    }
}

static void test_literal_overflow(void)
{
    check_stream("* XFOO {99999999999999999999999}\r\n* 2 EXISTS\r\n",
                 "E IMK_ERANGE @7 literal size does not fit in 64 bits\n"
                 "R * 2 EXISTS\\n\n");
}

static void test_eof(void)
{
    check_stream("* 1 EXISTS\r\n* 2 EXI",
                 "R * 1 EXISTS\\n\n"
                 "E IMK_EPARSE @19 connection closed before the end of the line\n");
    check_stream("* XFOO {5}\r\nab", "E IMK_EPARSE @14 connection closed inside a literal\n");
    check_stream("* 1 FETCH (BODY[] {5}\r\nab",
                 "B seq=1 uid=0/0 item=0 spec= origin=0/0 size=5\n"
                 "D ab\n"
                 "E IMK_EPARSE @25 connection closed inside a body literal\n");
}

/* A 1 GiB body through a 64 KiB input buffer: memory stays bounded. */
static void test_big_body_memory(void)
{
    imk_reader_options o = opts_with(0, 0, 0);
    o.input_buffer_size = 64 * 1024;
    imk_reader *r = NULL;
    CHECK_INT(imk_reader_new(&o, NULL, &r), 0);
    const uint64_t size = (uint64_t)1 << 30;
    char head[64];
    int hl = snprintf(head, sizeof(head), "* 1 FETCH (UID 1 BODY[] {%llu}\r\n",
                      (unsigned long long)size);
    CHECK_INT(imk_reader_feed(r, head, (size_t)hl), hl);
    static char block[64 * 1024];
    memset(block, 'x', sizeof(block));
    uint64_t fed = 0, got = 0;
    size_t max_memory = 0;
    int begins = 0, ends = 0, responses = 0;
    imk_event ev;
    for (;;) {
        int rc;
        while ((rc = imk_reader_next(r, &ev)) == 1) {
            if (ev.type == IMK_EVENT_BODY_CHUNK)
                got += ev.data.len;
            else if (ev.type == IMK_EVENT_BODY_BEGIN)
                begins++;
            else if (ev.type == IMK_EVENT_BODY_END)
                ends++;
            else if (ev.type == IMK_EVENT_RESPONSE)
                responses++;
        }
        CHECK_INT(rc, 0);
        imk_reader_stats st;
        imk_reader_get_stats(r, &st);
        if (st.memory > max_memory)
            max_memory = st.memory;
        if (fed == size) {
            if (responses == 1)
                break;
            imk_reader_feed(r, ")\r\n", 3);
            continue;
        }
        size_t want = size - fed < sizeof(block) ? (size_t)(size - fed) : sizeof(block);
        fed += imk_reader_feed(r, block, want);
    }
    CHECK(got == size);
    CHECK_INT(begins, 1);
    CHECK_INT(ends, 1);
    CHECK_INT(responses, 1);
    /* input buffer + response buffer + arena block + bookkeeping */
    fprintf(stderr, "  1 GiB body: peak reader memory %zu bytes\n", max_memory);
    CHECK(max_memory < 64 * 1024 + 64 * 1024);
    imk_reader_free(r);
}

/* The allocator fails at the 1st, 2nd, ... allocation: no crash, no leak. */
static void test_alloc_failure(void)
{
    static const char in[] = "* XFOO (a {3}\r\nabc (b c))\r\n* 1 FETCH (UID 7 BODY[] {2}\r\nhi)"
                             "\r\n* 2 EXISTS\r\n";
    for (long n = 1; n < 200; n++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, n);
        imk_reader *r = NULL;
        int rc = imk_reader_new(NULL, &a, &r);
        if (rc == 0) {
            imk_reader_feed(r, in, sizeof(in) - 1);
            imk_event ev;
            while ((rc = imk_reader_next(r, &ev)) == 1)
                ;
            imk_reader_free(r);
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
        }
        CHECK_INT(fa.live, 0);
        if (!fa.failed)
            return;
    }
    CHECK(0); /* never completed */
}

static void test_steady_state_allocations(void)
{
    imk_reader *r = NULL;
    CHECK_INT(imk_reader_new(NULL, NULL, &r), 0);
    static const char line[] =
        "* 1 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 1234 INTERNALDATE \"17-Jul-1996 02:44:25 "
        "-0700\")\r\n";
    imk_reader_stats before, after;
    imk_event ev;
    for (int i = 0; i < 1000; i++) {
        if (i == 100)
            imk_reader_get_stats(r, &before);
        imk_reader_feed(r, line, sizeof(line) - 1);
        while (imk_reader_next(r, &ev) == 1)
            CHECK(ev.type == IMK_EVENT_RESPONSE);
    }
    imk_reader_get_stats(r, &after);
    CHECK_INT(after.allocations - before.allocations, 0);
    CHECK_INT(after.responses, 1000);
    imk_reader_free(r);
}

int main(void)
{
    RUN(test_lines);
    RUN(test_inline_literal);
    RUN(test_status_text_is_not_literal);
    RUN(test_body_streamed);
    RUN(test_body_typed);
    RUN(test_limit_line);
    RUN(test_limit_literal);
    RUN(test_limit_response);
    RUN(test_limit_body);
    RUN(test_limit_parsed);
    RUN(test_literal_overflow);
    RUN(test_eof);
    RUN(test_big_body_memory);
    RUN(test_alloc_failure);
    RUN(test_steady_state_allocations);
    return test_finish();
}
