/* SPDX-License-Identifier: MIT */
/*
 * Response parser tests (src/proto/parser.c, parse_fetch.c, lexer.c).
 *
 * Each test hands imk__parse_response() one framed response, as the reader
 * would (parser.h): the response's lines with CRLF, inline literal bytes
 * right after their "{n}\r\n", and - for streamed body literals - only the
 * announcement plus an entry in the streamed table. Every input is copied
 * into a heap block of exactly its length, so AddressSanitizer catches any
 * read past ctx->len.
 *
 * What is covered:
 *   - every response example of RFC 9051 sections 7 and 8;
 *   - examples from the extension RFCs in /work/shared/rfc (UIDPLUS,
 *     CONDSTORE/QRESYNC, ESEARCH, CONTEXT, PARTIAL, SORT/THREAD,
 *     NAMESPACE, ID, QUOTA, METADATA, ACL, LIST-EXTENDED, ENABLE,
 *     OBJECTID, SAVEDATE, STATUS=SIZE, APPENDLIMIT, SPECIAL-USE, NOTIFY,
 *     MOVE, COMPRESS, LIST-STATUS, IDLE, CHILDREN, SEARCHRES, CATENATE,
 *     MULTIAPPEND, RFC 5530 codes) and INPROGRESS as described in
 *     rfc/INDEX.md;
 *   - every parsing-related item of QUIRKS.md 6.1-6.3, 6.5 (Q37-Q39), 6.6
 *     and 6.7 (Q44, Q45, Q47) with the quoted bytes: accepted with its
 *     quirk bit, and the same bytes with quirks = 0 (IMK_READER_STRICT)
 *     failing with a stated code, position and message - or, where the
 *     bytes are legal IMAP, accepted in both modes (said in the comment);
 *   - errors (code, position, "expected ..., found ..." message), limits
 *     at their boundary, 64-bit overflow, lying literal sizes, every prefix
 *     of valid responses, and allocation failure at every allocation.
 */
#include "imapkit/reader.h"
#include "imapkit/response.h"
#include "proto/parser.h"
#include "test.h"
#include "util/alloc.h"
#include "util/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Harness                                                             */
/* ------------------------------------------------------------------ */

#define QD IMK_READER_QUIRKS_DEFAULT
#define STRICT 0u

static imk_allocator g_alloc;
static imk__arena g_arena;
static imk__parse_limits g_limits;
static imk__parse_ctx g_ctx;
static char *g_buf;
static const imk_response g_empty; /* returned when a parse failed */

static void limits_reset(void)
{
    g_limits.max_depth = 64;
    g_limits.max_list_items = 1000000;
    g_limits.quirks = QD;
    g_limits.utf8_mailboxes = 0;
}

/* Parse `len` bytes copied into an exact-size heap block. */
static int parse_raw(const char *s, size_t len, unsigned quirks, const imk__streamed *st,
                     size_t nst, imk_response **out)
{
    free(g_buf);
    g_buf = malloc(len == 0 ? 1 : len);
    if (g_buf == NULL) {
        fprintf(stderr, "out of memory in the test\n");
        exit(2);
    }
    if (len != 0)
        memcpy(g_buf, s, len);
    imk__arena_reset(&g_arena);
    g_limits.quirks = quirks;
    memset(&g_ctx, 0, sizeof(g_ctx));
    g_ctx.limits = &g_limits;
    g_ctx.arena = &g_arena;
    g_ctx.buf = g_buf;
    g_ctx.len = len;
    g_ctx.streamed = st;
    g_ctx.streamed_count = nst;
    *out = NULL;
    return imk__parse_response(&g_ctx, out);
}

static const imk_response *parse_ok_(const char *s, size_t len, unsigned quirks,
                                     const imk__streamed *st, size_t nst, int line)
{
    imk_response *r;
    int rc = parse_raw(s, len, quirks, st, nst, &r);
    test_checks++;
    if (rc != 0 || r == NULL) {
        test_failures++;
        fprintf(stderr, "%s:%d: parse failed (%d at %zu: %s) for: %.*s\n", __FILE__, line, rc,
                g_ctx.err_pos, g_ctx.err_msg ? g_ctx.err_msg : "(no message)", (int)len, s);
        return &g_empty;
    }
    /* raw is the whole buffer, always */
    test_checks++;
    if (r->raw.data != g_buf || r->raw.len != len) {
        test_failures++;
        fprintf(stderr, "%s:%d: raw is not the whole buffer\n", __FILE__, line);
    }
    return r;
}

static void parse_fail_(const char *s, size_t len, unsigned quirks, int code, long pos,
                        const char *msg, int line)
{
    imk_response *r;
    int rc = parse_raw(s, len, quirks, NULL, 0, &r);
    test_checks++;
    if (rc != code || g_ctx.err_code != code) {
        test_failures++;
        fprintf(stderr, "%s:%d: expected error %d, got rc %d (err_code %d, msg %s) for: %.*s\n",
                __FILE__, line, code, rc, g_ctx.err_code, g_ctx.err_msg ? g_ctx.err_msg : "(none)",
                (int)len, s);
        return;
    }
    test_checks++;
    if (pos >= 0 && g_ctx.err_pos != (size_t)pos) {
        test_failures++;
        fprintf(stderr, "%s:%d: error position %zu, expected %ld (%s)\n", __FILE__, line,
                g_ctx.err_pos, pos, g_ctx.err_msg ? g_ctx.err_msg : "");
    }
    test_checks++;
    if (g_ctx.err_msg == NULL || (msg != NULL && strcmp(g_ctx.err_msg, msg) != 0)) {
        test_failures++;
        fprintf(stderr, "%s:%d: error message\n   got:      %s\n   expected: %s\n", __FILE__, line,
                g_ctx.err_msg ? g_ctx.err_msg : "(null)", msg ? msg : "(any)");
    }
    test_checks++;
    if (g_ctx.err_msg != NULL && code == IMK_EPARSE && strncmp(g_ctx.err_msg, "expected ", 9)) {
        test_failures++;
        fprintf(stderr, "%s:%d: message does not say what was expected: %s\n", __FILE__, line,
                g_ctx.err_msg);
    }
}

/* String literals keep their length (they may hold NUL bytes). */
#define OK(lit) parse_ok_((lit), sizeof(lit) - 1, QD, NULL, 0, __LINE__)
#define OKQ(lit, q) parse_ok_((lit), sizeof(lit) - 1, (q), NULL, 0, __LINE__)
#define OKS(lit, st, n) parse_ok_((lit), sizeof(lit) - 1, QD, (st), (n), __LINE__)
#define FAIL(lit, q, code, pos, msg)                                                               \
    parse_fail_((lit), sizeof(lit) - 1, (q), (code), (pos), (msg), __LINE__)

#define STR_EQ(s, lit) CHECK_MEM((s).data, (s).len, (lit), sizeof(lit) - 1)
#define IS_NIL(s) CHECK((s).data == NULL && (s).len == 0)
#define HAS_QUIRK(r, bit) CHECK(((r)->quirks & (bit)) != 0)
#define NO_QUIRKS(r) CHECK_INT((r)->quirks, 0)

/* A compact rendering of a value tree: NIL, atoms as is, #n numbers,
 * "strings", {n}literals ({n}S streamed, ~{n} binary), (lists). */
static void dump_into(const imk_value *v, char *out, size_t cap, size_t *at)
{
#define PUT(str, n)                                                                                \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (*at + n_ < cap) {                                                                      \
            memcpy(out + *at, (str), n_);                                                          \
            *at += n_;                                                                             \
        }                                                                                          \
    } while (0)
    char num[32];
    if (v == NULL) {
        PUT("<null>", 6);
        return;
    }
    switch (v->type) {
    case IMK_VALUE_NIL:
        PUT("NIL", 3);
        break;
    case IMK_VALUE_ATOM:
        PUT(v->str.data, v->str.len);
        break;
    case IMK_VALUE_NUMBER:
        PUT("#", 1);
        PUT(v->str.data, v->str.len);
        break;
    case IMK_VALUE_STRING:
        PUT("\"", 1);
        PUT(v->str.data, v->str.len);
        PUT("\"", 1);
        break;
    case IMK_VALUE_LITERAL:
        snprintf(num, sizeof(num), "%s{%llu}%s", v->binary ? "~" : "",
                 (unsigned long long)v->number, v->streamed ? "S" : "");
        PUT(num, strlen(num));
        PUT(v->str.data, v->str.len);
        break;
    case IMK_VALUE_LIST:
        PUT("(", 1);
        for (size_t i = 0; i < v->count; i++) {
            if (i > 0)
                PUT(" ", 1);
            dump_into(&v->items[i], out, cap, at);
        }
        PUT(")", 1);
        break;
    }
#undef PUT
}

static const char *dump(const imk_value *v)
{
    static char buf[2048];
    size_t at = 0;
    dump_into(v, buf, sizeof(buf) - 1, &at);
    buf[at] = '\0';
    return buf;
}

static const char *dump_set(imk_seqset s)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s.count && at < sizeof(buf) - 40; i++) {
        char a[16], b[16];
        if (s.ranges[i].first == 0)
            snprintf(a, sizeof(a), "*");
        else
            snprintf(a, sizeof(a), "%u", (unsigned)s.ranges[i].first);
        if (s.ranges[i].last == 0)
            snprintf(b, sizeof(b), "*");
        else
            snprintf(b, sizeof(b), "%u", (unsigned)s.ranges[i].last);
        if (s.ranges[i].first == s.ranges[i].last)
            at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s", i ? "," : "", a);
        else
            at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s:%s", i ? "," : "", a, b);
    }
    return buf;
}

static const char *dump_strlist(imk_strlist l)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l.count && at < sizeof(buf) - 1; i++)
        at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%.*s", i ? " " : "",
                               (int)l.items[i].len, l.items[i].data);
    return buf;
}

/* A thread forest as "(a (b c) d)" - each node is "num" or "num(children)" */
static void dump_thread_into(const imk_thread_node *n, size_t count, char *out, size_t cap,
                             size_t *at)
{
    for (size_t i = 0; i < count; i++) {
        if (*at + 24 >= cap)
            return;
        *at += (size_t)snprintf(out + *at, cap - *at, "%s%u", i ? " " : "", (unsigned)n[i].num);
        if (n[i].child_count > 0) {
            out[(*at)++] = '(';
            dump_thread_into(n[i].children, n[i].child_count, out, cap, at);
            if (*at + 1 < cap)
                out[(*at)++] = ')';
        }
    }
    out[*at] = '\0';
}

static const char *dump_thread(const imk_thread *t)
{
    static char buf[1024];
    size_t at = 0;
    buf[0] = '\0';
    dump_thread_into(t->roots, t->count, buf, sizeof(buf), &at);
    return buf;
}

#define CHECK_DUMP(got, expect) CHECK_STR((got), (expect))

/* ------------------------------------------------------------------ */
/* RFC 9051 section 7.1: status responses and response codes           */
/* ------------------------------------------------------------------ */

static void test_rfc9051_status_responses(void)
{
    const imk_response *r;

    r = OK("* OK IMAP4rev2 server ready\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_UNTAGGED);
    CHECK_INT(r->kind, IMK_KIND_STATUS_RESPONSE);
    CHECK_INT(r->status, IMK_STATUS_OK);
    CHECK(r->code == NULL);
    STR_EQ(r->text, "IMAP4rev2 server ready");
    NO_QUIRKS(r);

    r = OK("* OK [ALERT] System shutdown in 10 minutes\r\n");
    CHECK(r->code != NULL && r->code->kind == IMK_CODE_ALERT);
    if (r->code) {
        STR_EQ(r->code->name, "ALERT");
        CHECK_INT(r->code->raw.len, 0);
        CHECK(r->code->value == NULL);
    }
    STR_EQ(r->text, "System shutdown in 10 minutes");

    r = OK("* NO Disk is 98% full, please delete unnecessary data\r\n");
    CHECK_INT(r->status, IMK_STATUS_NO);
    STR_EQ(r->text, "Disk is 98% full, please delete unnecessary data");
    r = OK("* NO Disk is 99% full, please delete unnecessary data\r\n");
    CHECK_INT(r->status, IMK_STATUS_NO);

    r = OK("* BAD Command line too long\r\n");
    CHECK_INT(r->status, IMK_STATUS_BAD);
    STR_EQ(r->text, "Command line too long");
    r = OK("* BAD Empty command line\r\n");
    CHECK_INT(r->status, IMK_STATUS_BAD);
    r = OK("* BAD Disk crash, attempting salvage to a new disk!\r\n");
    STR_EQ(r->text, "Disk crash, attempting salvage to a new disk!");
    r = OK("* OK Salvage successful, no data lost\r\n");
    CHECK_INT(r->status, IMK_STATUS_OK);

    r = OK("* PREAUTH IMAP4rev2 server logged in as Smith\r\n");
    CHECK_INT(r->status, IMK_STATUS_PREAUTH);
    STR_EQ(r->text, "IMAP4rev2 server logged in as Smith");

    r = OK("* BYE Autologout; idle for too long\r\n");
    CHECK_INT(r->status, IMK_STATUS_BYE);
    STR_EQ(r->text, "Autologout; idle for too long");
    r = OK("* BYE IMAP4rev2 server terminating connection\r\n");
    CHECK_INT(r->status, IMK_STATUS_BYE);

    r = OK("A001 OK LOGIN completed\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_TAGGED);
    STR_EQ(r->tag, "A001");
    CHECK_INT(r->status, IMK_STATUS_OK);
    STR_EQ(r->text, "LOGIN completed");
    r = OK("A001 OK LOGIN Completed\r\n");
    STR_EQ(r->text, "LOGIN Completed");
    r = OK("A044 BAD No such command as \"BLURDYBLOOP\"\r\n");
    STR_EQ(r->tag, "A044");
    CHECK_INT(r->status, IMK_STATUS_BAD);
    STR_EQ(r->text, "No such command as \"BLURDYBLOOP\"");
    r = OK("A222 OK COPY completed\r\n");
    STR_EQ(r->tag, "A222");
    r = OK("A223 NO COPY failed: disk is full\r\n");
    CHECK_INT(r->status, IMK_STATUS_NO);
    STR_EQ(r->text, "COPY failed: disk is full");
    r = OK("A443 OK Expunge completed\r\n");
    STR_EQ(r->tag, "A443");

    /* section 8 */
    r = OK("a000 OK Proceed with TLS negotiation\r\n");
    STR_EQ(r->tag, "a000");
    r = OK("A001 OK SCRAM-SHA-256 authentication successful\r\n");
    r = OK("babc OK Some capabilities enabled\r\n");
    STR_EQ(r->tag, "babc");
    r = OK("a002 OK [READ-WRITE] SELECT completed\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_READ_WRITE);
    STR_EQ(r->text, "SELECT completed");
    r = OK("a003 OK FETCH completed\r\n");
    r = OK("a005 OK +FLAGS completed\r\n");
    STR_EQ(r->text, "+FLAGS completed");
    r = OK("a006 OK LOGOUT completed\r\n");
    r = OK("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UIDVALIDITY);
    if (r->code) {
        CHECK(r->code->number == 3857529045u);
        STR_EQ(r->code->raw, "3857529045");
        CHECK_DUMP(dump(r->code->value), "(#3857529045)");
    }
    NO_QUIRKS(r);
    r = OK("* OK [CAPABILITY STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2] "
           "IMAP4rev2 Service Ready\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_CAPABILITY);
    if (r->code)
        CHECK_STR(dump_strlist(r->code->list),
                  "STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED IMAP4rev2");
    STR_EQ(r->text, "IMAP4rev2 Service Ready");
}

/* RFC 9051 section 7.1 response code examples (from RFC 5530). */
static void test_rfc9051_response_codes(void)
{
    static const struct {
        const char *line;
        const char *tag;
        imk_status status;
        imk_code_kind kind;
        const char *text;
    } cases[] = {
        {"o356 NO [ALREADYEXISTS] Mailbox \"that\" already exists\r\n", "o356", IMK_STATUS_NO,
         IMK_CODE_ALREADYEXISTS, "Mailbox \"that\" already exists"},
        {"b NO [AUTHENTICATIONFAILED] Authentication failed\r\n", "b", IMK_STATUS_NO,
         IMK_CODE_AUTHENTICATIONFAILED, "Authentication failed"},
        {"c1 NO [AUTHORIZATIONFAILED] No such authorization-ID\r\n", "c1", IMK_STATUS_NO,
         IMK_CODE_AUTHORIZATIONFAILED, "No such authorization-ID"},
        {"c2 NO [AUTHORIZATIONFAILED] Authenticator is not an admin\r\n", "c2", IMK_STATUS_NO,
         IMK_CODE_AUTHORIZATIONFAILED, "Authenticator is not an admin"},
        {"l NO [CANNOT] Adjacent slashes are not supported\r\n", "l", IMK_STATUS_NO,
         IMK_CODE_CANNOT, "Adjacent slashes are not supported"},
        {"k1 OK [READ-ONLY] Done\r\n", "k1", IMK_STATUS_OK, IMK_CODE_READ_ONLY, "Done"},
        {"k2 OK [CLIENTBUG] Done\r\n", "k2", IMK_STATUS_OK, IMK_CODE_CLIENTBUG, "Done"},
        {"i NO [CORRUPTION] Cannot open mailbox\r\n", "i", IMK_STATUS_NO, IMK_CODE_CORRUPTION,
         "Cannot open mailbox"},
        {"d NO [EXPIRED] That password isn't valid any more\r\n", "d", IMK_STATUS_NO,
         IMK_CODE_EXPIRED, "That password isn't valid any more"},
        {"h OK [EXPUNGEISSUED] Search completed\r\n", "h", IMK_STATUS_OK, IMK_CODE_EXPUNGEISSUED,
         "Search completed"},
        {"o356 NO [HASCHILDREN] Mailbox \"Notes\" has children\r\n", "o356", IMK_STATUS_NO,
         IMK_CODE_HASCHILDREN, "Mailbox \"Notes\" has children"},
        {"g NO [INUSE] Mailbox in use\r\n", "g", IMK_STATUS_NO, IMK_CODE_INUSE, "Mailbox in use"},
        {"m NO [LIMIT] At most 32 flags in one mailbox supported\r\n", "m", IMK_STATUS_NO,
         IMK_CODE_LIMIT, "At most 32 flags in one mailbox supported"},
        {"p NO [NONEXISTENT] No such mailbox\r\n", "p", IMK_STATUS_NO, IMK_CODE_NONEXISTENT,
         "No such mailbox"},
        {"f NO [NOPERM] Access denied\r\n", "f", IMK_STATUS_NO, IMK_CODE_NOPERM, "Access denied"},
        {"n1 NO [OVERQUOTA] Sorry\r\n", "n1", IMK_STATUS_NO, IMK_CODE_OVERQUOTA, "Sorry"},
        {"n2 OK [OVERQUOTA] You are now over your soft quota\r\n", "n2", IMK_STATUS_OK,
         IMK_CODE_OVERQUOTA, "You are now over your soft quota"},
        {"d NO [PRIVACYREQUIRED] Connection offers no privacy\r\n", "d", IMK_STATUS_NO,
         IMK_CODE_PRIVACYREQUIRED, "Connection offers no privacy"},
        {"j NO [SERVERBUG] This should not happen\r\n", "j", IMK_STATUS_NO, IMK_CODE_SERVERBUG,
         "This should not happen"},
        {"a NO [UNAVAILABLE] User's backend down for maintenance\r\n", "a", IMK_STATUS_NO,
         IMK_CODE_UNAVAILABLE, "User's backend down for maintenance"},
        {"o NO [ALREADYEXISTS] Mailbox \"that\" already exists\r\n", "o", IMK_STATUS_NO,
         IMK_CODE_ALREADYEXISTS, "Mailbox \"that\" already exists"},
        {"A004 NO [TRYCREATE] No such mailbox as bogusname\r\n", "A004", IMK_STATUS_NO,
         IMK_CODE_TRYCREATE, "No such mailbox as bogusname"},
        {"x NO [PARSE] Bad header\r\n", "x", IMK_STATUS_NO, IMK_CODE_PARSE, "Bad header"},
        {"x NO [UNKNOWN-CTE] Can't decode\r\n", "x", IMK_STATUS_NO, IMK_CODE_UNKNOWN_CTE,
         "Can't decode"},
        {"* OK [CLOSED] Previous mailbox closed\r\n", NULL, IMK_STATUS_OK, IMK_CODE_CLOSED,
         "Previous mailbox closed"},
        {"c NO [COMPRESSIONACTIVE] DEFLATE active via TLS\r\n", "c", IMK_STATUS_NO,
         IMK_CODE_COMPRESSIONACTIVE, "DEFLATE active via TLS"},
        {"* OK [NOTIFICATIONOVERFLOW] ...A comment can go here...\r\n", NULL, IMK_STATUS_OK,
         IMK_CODE_NOTIFICATIONOVERFLOW, "...A comment can go here..."},
        {"t3 NO [USEATTR] \\All not supported\r\n", "t3", IMK_STATUS_NO, IMK_CODE_USEATTR,
         "\\All not supported"},
        {"* NO [UIDNOTSTICKY] Non-persistent UIDs\r\n", NULL, IMK_STATUS_NO, IMK_CODE_UIDNOTSTICKY,
         "Non-persistent UIDs"},
        {"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n", NULL,
         IMK_STATUS_OK, IMK_CODE_NOMODSEQ,
         "Sorry, this mailbox format doesn't support modsequences"},
        {"x NO [BADCOMPARATOR] Unknown comparator\r\n", "x", IMK_STATUS_NO, IMK_CODE_BADCOMPARATOR,
         "Unknown comparator"},
        {"x NO [NOTSAVED] Search result not saved\r\n", "x", IMK_STATUS_NO, IMK_CODE_NOTSAVED,
         "Search result not saved"},
        {"x NO [TOOBIG] Message too big\r\n", "x", IMK_STATUS_NO, IMK_CODE_TOOBIG,
         "Message too big"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const imk_response *r =
            parse_ok_(cases[i].line, strlen(cases[i].line), QD, NULL, 0, __LINE__);
        CHECK_INT(r->status, cases[i].status);
        CHECK_INT(r->type, cases[i].tag ? IMK_RESPONSE_TAGGED : IMK_RESPONSE_UNTAGGED);
        if (cases[i].tag)
            CHECK_MEM(r->tag.data, r->tag.len, cases[i].tag, strlen(cases[i].tag));
        CHECK(r->code != NULL);
        if (r->code) {
            CHECK_INT(r->code->kind, cases[i].kind);
            CHECK_STR(imk_code_kind_name(r->code->kind), imk_code_kind_name(cases[i].kind));
            CHECK_MEM(r->code->name.data, r->code->name.len, imk_code_kind_name(cases[i].kind),
                      strlen(imk_code_kind_name(cases[i].kind)));
        }
        CHECK_MEM(r->text.data, r->text.len, cases[i].text, strlen(cases[i].text));
        CHECK_INT(r->quirks, 0);
        /* and the same in strict mode */
        parse_ok_(cases[i].line, strlen(cases[i].line), STRICT, NULL, 0, __LINE__);
    }

    /* "e NO [CONTACTADMIN]" is RFC 9051's own example, yet its ABNF wants
     * "]" SP: accepted as Q7 (IMK_QUIRK_MISSING_TEXT), rejected strictly. */
    const imk_response *r = OK("e NO [CONTACTADMIN]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_CONTACTADMIN);
    CHECK_INT(r->text.len, 0);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("e NO [CONTACTADMIN]\r\n", STRICT, IMK_EPARSE, 19,
         "expected SP after the response code, found end of line");
    r = OK("e OK [CONTACTADMIN]\r\n"); /* RFC 5530's version */
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
}

/* Every code with arguments (response.h says which field each fills). */
static void test_response_code_fields(void)
{
    const imk_response *r;

    r = OK("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_APPENDUID);
    if (r->code) {
        CHECK_INT(r->code->uidvalidity, 38505);
        CHECK_STR(dump_set(r->code->set), "3955");
        STR_EQ(r->code->raw, "38505 3955");
        CHECK_DUMP(dump(r->code->value), "(#38505 #3955)");
    }
    r = OK("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_COPYUID);
    if (r->code) {
        CHECK_INT(r->code->uidvalidity, 38505);
        CHECK_STR(dump_set(r->code->set), "304,319:320");
        CHECK_STR(dump_set(r->code->set2), "3956:3958");
        CHECK_DUMP(dump(r->code->value), "(#38505 304,319:320 3956:3958)");
    }
    /* RFC 6851 */
    r = OK("* OK [COPYUID 432432 42:69 1202:1229]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_COPYUID);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    r = OK("* OK [COPYUID 432432 42:43 100:101] Moved UIDs.\r\n");
    if (r->code)
        CHECK_STR(dump_set(r->code->set2), "100:101");

    r = OK("* OK [UIDNEXT 4392] Predicted next UID\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UIDNEXT && r->code->number == 4392);
    r = OK("* OK [UNSEEN 12] Message 12 is first unseen\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UNSEEN && r->code->number == 12);
    r = OK("* OK [HIGHESTMODSEQ 715194045007] Highest\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_HIGHESTMODSEQ && r->code->number == 715194045007ull);
    r = OK("* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\*)] L\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_PERMANENTFLAGS);
    if (r->code) {
        CHECK_STR(dump_strlist(r->code->list), "\\Seen \\Answered \\Flagged \\*");
        CHECK_DUMP(dump(r->code->value), "((\\Seen \\Answered \\Flagged \\*))");
    }
    r = OK("* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n");
    CHECK(r->code && r->code->list.count == 0);
    r = OK("d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_MODIFIED);
    if (r->code)
        CHECK_STR(dump_set(r->code->set), "7,9");
    r = OK("x NO [BADCHARSET (UTF-8 \"KOI8-R\")] Unsupported\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_BADCHARSET);
    if (r->code)
        CHECK_STR(dump_strlist(r->code->list), "UTF-8 KOI8-R");
    r = OK("x NO [BADCHARSET] Unsupported\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_BADCHARSET && r->code->list.count == 0);
    /* RFC 5182's example writes the charset without parentheses: kept as
     * BADCHARSET under IMK_QUIRK_CODE_TEXT; strictly an error. */
    r = OK("B283 NO [BADCHARSET UTF-8] KOI8-R is not supported\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_BADCHARSET);
    if (r->code)
        CHECK_STR(dump_strlist(r->code->list), "UTF-8");
    HAS_QUIRK(r, IMK_QUIRK_CODE_TEXT);
    FAIL("B283 NO [BADCHARSET UTF-8] KOI8-R is not supported\r\n", STRICT, IMK_EPARSE, 20,
         "expected \"(\", found \"UTF-8] KOI8-R is not sup\"...");
    /* RFC 5465 */
    r = OK("x NO [BADEVENT (MessageNew MessageExpunge)] Unsupported\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_BADEVENT);
    if (r->code)
        CHECK_STR(dump_strlist(r->code->list), "MessageNew MessageExpunge");
    r = OK("* OK [CAPABILITY IMAP4REV1 NOTIFY]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_CAPABILITY);
    if (r->code)
        CHECK_STR(dump_strlist(r->code->list), "IMAP4REV1 NOTIFY");
    r = OK("* OK [CAPABILITY IMAP4REV1 STARTTLS COMPRESS=DEFLATE] ok\r\n");
    if (r->code)
        CHECK_INT(r->code->list.count, 3);
    /* RFC 8474 */
    r = OK("3 OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] Completed\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_MAILBOXID);
    if (r->code)
        STR_EQ(r->code->string, "F2212ea87-6097-4256-9d51-71338625");
    /* RFC 5267 */
    r = OK("* NO [NOUPDATE \"B02\"] Too many contexts\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_NOUPDATE);
    if (r->code)
        STR_EQ(r->code->string, "B02");
    /* RFC 5464 */
    r = OK("a OK [METADATA LONGENTRIES 2199] GETMETADATA complete\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_METADATA);
    if (r->code) {
        STR_EQ(r->code->string, "LONGENTRIES");
        CHECK_INT(r->code->number, 2199);
    }
    r = OK("a NO [METADATA MAXSIZE 1024] SETMETADATA failed\r\n");
    CHECK(r->code && r->code->number == 1024);
    r = OK("a NO [METADATA TOOMANY] SETMETADATA failed\r\n");
    if (r->code)
        STR_EQ(r->code->string, "TOOMANY");
    r = OK("a NO [METADATA NOPRIVATE] SETMETADATA failed\r\n");
    if (r->code)
        STR_EQ(r->code->string, "NOPRIVATE");
    /* RFC 2221 referrals (URL kept as sent) */
    r = OK("A001 NO [REFERRAL IMAP://user;AUTH=*@SERVER2/] Remote Server\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_REFERRAL);
    if (r->code)
        STR_EQ(r->code->string, "IMAP://user;AUTH=*@SERVER2/");
    /* RFC 4467 */
    r = OK("a OK [URLMECH INTERNAL XSAMPLE=P34OKhO7VEkCbsiYY8rGEg==] done\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_URLMECH);
    if (r->code) {
        STR_EQ(r->code->string, "INTERNAL");
        CHECK_STR(dump_strlist(r->code->list), "XSAMPLE=P34OKhO7VEkCbsiYY8rGEg==");
    }
    r = OK("a OK [URLMECH INTERNAL] done\r\n");
    CHECK(r->code && r->code->list.count == 0);

    /* INPROGRESS (rfc/INDEX.md; Dovecot 2.4, QUIRKS Q54) */
    r = OK("* OK [INPROGRESS (\"A12\" 42 100)] Processed 42% of the mailbox, ETA 0:58\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_INPROGRESS);
    if (r->code) {
        STR_EQ(r->code->progress_tag, "A12");
        CHECK(r->code->has_progress_count && r->code->progress_count == 42);
        CHECK(r->code->has_progress_goal && r->code->progress_goal == 100);
    }
    r = OK("* OK [INPROGRESS (\"A5\" 120 800)] Processed 15% of the mailbox, ETA 0:57\r\n");
    CHECK(r->code && r->code->progress_goal == 800);
    r = OK("* OK [INPROGRESS] Hang in there..\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_INPROGRESS);
    if (r->code) {
        IS_NIL(r->code->progress_tag);
        CHECK(!r->code->has_progress_count && !r->code->has_progress_goal);
    }
    STR_EQ(r->text, "Hang in there..");
    r = OK("* OK [INPROGRESS (NIL NIL NIL)] Working\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_INPROGRESS && !r->code->has_progress_count);
    FAIL("* OK [INPROGRESS (\"A1\" 1 0)] x\r\n", STRICT, IMK_ERANGE, 25,
         "expected a non-zero INPROGRESS goal, found 0");

    /* Unknown codes: OTHER, name, raw and the generic value. */
    r = OK("* OK [XFOO bar (1 \"two\") NIL] text\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_OTHER);
    if (r->code) {
        STR_EQ(r->code->name, "XFOO");
        STR_EQ(r->code->raw, "bar (1 \"two\") NIL");
        CHECK_DUMP(dump(r->code->value), "(bar (#1 \"two\") NIL)");
    }
    CHECK_STR(imk_code_kind_name(IMK_CODE_OTHER), "");
    r = OK("* OK [X-NOARGS] t\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_OTHER && r->code->value == NULL);
    /* a known code without arguments but with text after it (allowed by
     * the generic alternative of resp-text-code) */
    r = OK("* OK [ALERT now] x\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_ALERT);
    if (r->code)
        STR_EQ(r->code->raw, "now");
    /* an unknown code whose text is not values: raw kept, value NULL */
    r = OK("* NO [XERR a)b] x\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_OTHER && r->code->value == NULL);
    if (r->code)
        STR_EQ(r->code->raw, "a)b");
    CHECK_INT(g_ctx.err_code, 0);
}

/* ------------------------------------------------------------------ */
/* RFC 9051 sections 7.2-7.5 and 8: data responses                     */
/* ------------------------------------------------------------------ */

static void test_rfc9051_data_responses(void)
{
    const imk_response *r;

    r = OK("* CAPABILITY STARTTLS AUTH=GSSAPI IMAP4rev2 LOGINDISABLED XPIG-LATIN\r\n");
    CHECK_INT(r->kind, IMK_KIND_CAPABILITY);
    STR_EQ(r->name, "CAPABILITY");
    CHECK_STR(dump_strlist(r->u.capability),
              "STARTTLS AUTH=GSSAPI IMAP4rev2 LOGINDISABLED XPIG-LATIN");
    r = OK("* ENABLED CONDSTORE QRESYNC\r\n");
    CHECK_INT(r->kind, IMK_KIND_ENABLED);
    CHECK_STR(dump_strlist(r->u.capability), "CONDSTORE QRESYNC");
    r = OK("* ENABLED IMAP4rev2\r\n");
    CHECK_INT(r->u.capability.count, 1);
    r = OK("* ENABLED\r\n");
    CHECK_INT(r->kind, IMK_KIND_ENABLED);
    CHECK_INT(r->u.capability.count, 0);

    r = OK("* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n");
    CHECK_INT(r->kind, IMK_KIND_LIST);
    CHECK_STR(dump_strlist(r->u.list.attributes), "\\Noselect");
    CHECK_INT(r->u.list.delimiter, '/');
    STR_EQ(r->u.list.mailbox, "~/Mail/foo");
    STR_EQ(r->u.list.mailbox_raw, "~/Mail/foo");
    CHECK(r->u.list.oldname.data == NULL);

    r = OK("* LIST (\\Marked) \":\" Tables (tablecloth ((\"edge\" \"lacy\") (\"color\" "
           "\"red\")) Sample \"text\")\r\n");
    CHECK_INT(r->u.list.delimiter, ':');
    STR_EQ(r->u.list.mailbox, "Tables");
    CHECK_INT(r->u.list.extra_count, 2);
    if (r->u.list.extra_count == 2) {
        STR_EQ(r->u.list.extras[0].tag, "tablecloth");
        CHECK_DUMP(dump(r->u.list.extras[0].value), "((\"edge\" \"lacy\") (\"color\" \"red\"))");
        STR_EQ(r->u.list.extras[1].tag, "Sample");
        CHECK_DUMP(dump(r->u.list.extras[1].value), "\"text\"");
    }
    r = OK("* LIST () \":\" Tables:new (tablecloth (\"edge\" \"lacy\") Sample (\"text\" "
           "\"more text\"))\r\n");
    STR_EQ(r->u.list.mailbox, "Tables:new");
    CHECK_INT(r->u.list.extra_count, 2);
    if (r->u.list.extra_count == 2)
        CHECK_DUMP(dump(r->u.list.extras[1].value), "(\"text\" \"more text\")");

    r = OK("* LIST () \"/\" INBOX (\"OLDNAME\" (\"inbox\"))\r\n");
    STR_EQ(r->u.list.mailbox, "INBOX");
    STR_EQ(r->u.list.oldname, "INBOX"); /* INBOX is case-insensitive */
    CHECK_INT(r->u.list.extra_count, 0);

    r = OK("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) NIL\r\n");
    CHECK_INT(r->kind, IMK_KIND_NAMESPACE);
    CHECK_INT(r->u.namespace_.personal.count, 1);
    CHECK(!r->u.namespace_.personal.nil);
    if (r->u.namespace_.personal.count == 1) {
        STR_EQ(r->u.namespace_.personal.items[0].prefix, "");
        CHECK_INT(r->u.namespace_.personal.items[0].delimiter, '/');
    }
    if (r->u.namespace_.other_users.count == 1)
        STR_EQ(r->u.namespace_.other_users.items[0].prefix, "~");
    CHECK(r->u.namespace_.shared.nil);

    r = OK("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n");
    CHECK_INT(r->kind, IMK_KIND_STATUS);
    STR_EQ(r->u.status.mailbox, "blurdybloop");
    CHECK_INT(r->u.status.present, IMK_STATUS_MESSAGES | IMK_STATUS_UIDNEXT);
    CHECK_INT(r->u.status.messages, 231);
    CHECK_INT(r->u.status.uidnext, 44292);

    r = OK("* ESEARCH UID COUNT 17 ALL 4:18,21,28\r\n");
    CHECK_INT(r->kind, IMK_KIND_ESEARCH);
    CHECK(r->u.esearch.tag.data == NULL);
    CHECK_INT(r->u.esearch.uid, 1);
    CHECK_INT(r->u.esearch.present, IMK_ESEARCH_COUNT | IMK_ESEARCH_ALL);
    CHECK_INT(r->u.esearch.count, 17);
    CHECK_STR(dump_set(r->u.esearch.all), "4:18,21,28");
    r = OK("* ESEARCH (TAG \"a567\") UID COUNT 17 ALL 4:18,21,28\r\n");
    STR_EQ(r->u.esearch.tag, "a567");
    CHECK_INT(r->u.esearch.uid, 1);
    r = OK("* ESEARCH COUNT 18 ALL 1:17,21\r\n");
    CHECK_INT(r->u.esearch.uid, 0);
    CHECK_INT(r->u.esearch.count, 18);
    CHECK_STR(dump_set(r->u.esearch.all), "1:17,21");
    r = OK("* ESEARCH (TAG \"h\") ALL 1:3,5,8,13,21,42\r\n");
    CHECK_STR(dump_set(r->u.esearch.all), "1:3,5,8,13,21,42");

    r = OK("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
    CHECK_INT(r->kind, IMK_KIND_FLAGS);
    CHECK_STR(dump_strlist(r->u.flags), "\\Answered \\Flagged \\Deleted \\Seen \\Draft");

    r = OK("* 23 EXISTS\r\n");
    CHECK_INT(r->kind, IMK_KIND_EXISTS);
    CHECK_INT(r->number, 23);
    STR_EQ(r->name, "EXISTS");
    r = OK("* 18 EXISTS\r\n");
    CHECK_INT(r->number, 18);
    r = OK("* 44 EXPUNGE\r\n");
    CHECK_INT(r->kind, IMK_KIND_EXPUNGE);
    CHECK_INT(r->number, 44);
    r = OK("* 5 RECENT\r\n");
    CHECK_INT(r->kind, IMK_KIND_RECENT);
    CHECK_INT(r->number, 5);
    r = OK("* 0 RECENT\r\n"); /* RFC 2177 */
    CHECK_INT(r->number, 0);
    NO_QUIRKS(r);
    r = OK("* 0 EXISTS\r\n");
    NO_QUIRKS(r);

    r = OK("* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827 UID 447)\r\n");
    CHECK_INT(r->kind, IMK_KIND_FETCH);
    CHECK_INT(r->number, 23);
    CHECK_INT(r->u.fetch.seq, 23);
    CHECK_INT(r->u.fetch.present, IMK_FETCH_FLAGS | IMK_FETCH_RFC822_SIZE | IMK_FETCH_UID);
    CHECK_STR(dump_strlist(r->u.fetch.flags), "\\Seen");
    CHECK_INT(r->u.fetch.rfc822_size, 44827);
    CHECK_INT(r->u.fetch.uid, 447);
    NO_QUIRKS(r);
    r = OK("* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n");
    CHECK_STR(dump_strlist(r->u.fetch.flags), "\\Seen \\Deleted");

    r = OK("+ Ready for additional command text\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_CONTINUATION);
    CHECK_INT(r->kind, IMK_KIND_CONTINUATION);
    STR_EQ(r->text, "Ready for additional command text");
    NO_QUIRKS(r);
    /* section 8: base64 payloads are text */
    r = OK("+ cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE"
           "5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=\r\n");
    STR_EQ(r->text, "cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGopaE"
                    "5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=");
    r = OK("+ dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0PQ==\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_CONTINUATION);
    r = OK("+ idling\r\n"); /* RFC 2177 */
    STR_EQ(r->text, "idling");
    r = OK("+ \r\n"); /* empty resp-text is legal in RFC 9051 */
    CHECK_INT(r->text.len, 0);
    NO_QUIRKS(r);
}

/* RFC 9051 section 8: the full FETCH and the BODY[HEADER] literal. */
static const char rfc9051_header[] =
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    "From: Terry Gray <gray@cac.washington.edu>\r\n"
    "Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
    "To: imap@cac.washington.edu\r\n"
    "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    "Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    "\r\n";

static void test_rfc9051_sample_fetch(void)
{
    const imk_response *r =
        OK("* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
           "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
           "\"IMAP4rev2 WG mtg summary and minutes\" "
           "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
           "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
           "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
           "((NIL NIL \"imap\" \"cac.washington.edu\")) "
           "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") "
           "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
           "\"<B27397-0100000@cac.washington.ed>\") "
           "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n");
    const imk_fetch *f = &r->u.fetch;
    CHECK_INT(f->seq, 12);
    CHECK_INT(f->present, IMK_FETCH_FLAGS | IMK_FETCH_INTERNALDATE | IMK_FETCH_RFC822_SIZE |
                              IMK_FETCH_ENVELOPE | IMK_FETCH_BODY);
    CHECK_INT(f->internaldate.year, 1996);
    CHECK_INT(f->internaldate.month, 7);
    CHECK_INT(f->internaldate.day, 17);
    CHECK_INT(f->internaldate.hour, 2);
    CHECK_INT(f->internaldate.minute, 44);
    CHECK_INT(f->internaldate.second, 25);
    CHECK_INT(f->internaldate.zone_minutes, -420);
    CHECK_INT(f->rfc822_size, 4286);
    CHECK(f->envelope != NULL);
    if (f->envelope) {
        STR_EQ(f->envelope->subject, "IMAP4rev2 WG mtg summary and minutes");
        CHECK_INT(f->envelope->cc.count, 2);
        IS_NIL(f->envelope->bcc.count ? f->envelope->bcc.items[0].name : f->envelope->in_reply_to);
        STR_EQ(f->envelope->message_id, "<B27397-0100000@cac.washington.ed>");
    }
    CHECK(f->body != NULL);
    if (f->body) {
        STR_EQ(f->body->type, "TEXT");
        STR_EQ(f->body->subtype, "PLAIN");
        CHECK_INT(f->body->size, 3028);
        CHECK_INT(f->body->lines, 92);
    }
    /* RFC 9051's own example separates the two cc addresses with a SP,
     * which env-cc = "(" 1*address ")" does not allow: Q35's "spaces
     * between addresses", accepted by parse_body under IMK_QUIRK_ENVELOPE */
    CHECK_INT(r->quirks, IMK_QUIRK_ENVELOPE);

    /* a004: BODY[HEADER] as an inline literal */
    char buf[600];
    int n = snprintf(buf, sizeof(buf), "* 12 FETCH (BODY[HEADER] {342}\r\n%s)\r\n", rfc9051_header);
    CHECK_INT(sizeof(rfc9051_header) - 1, 342);
    r = parse_ok_(buf, (size_t)n, QD, NULL, 0, __LINE__);
    CHECK_INT(r->u.fetch.section_count, 1);
    if (r->u.fetch.section_count == 1) {
        const imk_fetch_section *s = &r->u.fetch.sections[0];
        CHECK_INT(s->item, IMK_SECTION_BODY);
        STR_EQ(s->spec, "HEADER");
        CHECK_INT(s->has_origin, 0);
        CHECK_INT(s->streamed, 0);
        CHECK_INT(s->size, 342);
        CHECK_MEM(s->data.data, s->data.len, rfc9051_header, 342);
    }

    /* the same, streamed: the buffer holds only the announcement */
    static const char streamed[] = "* 12 FETCH (BODY[HEADER] {342}\r\n)\r\n";
    imk__streamed st = {25, 342};
    CHECK(streamed[25] == '{');
    r = OKS(streamed, &st, 1);
    if (r->u.fetch.section_count == 1) {
        const imk_fetch_section *s = &r->u.fetch.sections[0];
        CHECK_INT(s->streamed, 1);
        CHECK_INT(s->size, 342);
        CHECK_INT(s->data.len, 0);
    }
}

/* ------------------------------------------------------------------ */
/* FETCH items                                                         */
/* ------------------------------------------------------------------ */

static void test_fetch_items(void)
{
    const imk_response *r;

    /* RFC 7162 */
    r = OK("* 1 FETCH (UID 4 MODSEQ (12121231000))\r\n");
    CHECK_INT(r->u.fetch.present, IMK_FETCH_UID | IMK_FETCH_MODSEQ);
    CHECK(r->u.fetch.modseq == 12121231000ull);
    r = OK("* 1 FETCH (MODSEQ (320172342) FLAGS (\\SEEN))\r\n");
    CHECK_STR(dump_strlist(r->u.fetch.flags), "\\SEEN");
    r = OK("* 2 FETCH (UID 6 MODSEQ (20010715205008000) FLAGS (\\Deleted))\r\n");
    CHECK(r->u.fetch.modseq == 20010715205008000ull);
    r = OK("* 101 FETCH (MODSEQ (303011130956) FLAGS ($Processed \\Deleted \\Answered))\r\n");
    CHECK_STR(dump_strlist(r->u.fetch.flags), "$Processed \\Deleted \\Answered");
    r = OK("* 12594 FETCH (FLAGS () UID 26311)\r\n"); /* RFC 9394 */
    CHECK_INT(r->u.fetch.flags.count, 0);
    CHECK(r->u.fetch.present & IMK_FETCH_FLAGS);

    /* RFC 8474 */
    r = OK("* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))\r\n");
    CHECK_INT(r->u.fetch.present, IMK_FETCH_EMAILID | IMK_FETCH_THREADID);
    STR_EQ(r->u.fetch.emailid, "M6d99ac3275bb4e");
    STR_EQ(r->u.fetch.threadid, "T64b478a75b7ea9");
    r = OK("* 1 FETCH (EMAILID (M00000001) THREADID NIL)\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_THREADID);
    IS_NIL(r->u.fetch.threadid);

    /* RFC 8514 */
    r = OK("* 998 FETCH (SAVEDATE \"01-Jan-2015 18:50:53 +0100\")\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_SAVEDATE);
    CHECK_INT(r->u.fetch.has_savedate, 1);
    CHECK_INT(r->u.fetch.savedate.year, 2015);
    CHECK_INT(r->u.fetch.savedate.zone_minutes, 60);
    r = OK("* 998 FETCH (SAVEDATE NIL)\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_SAVEDATE);
    CHECK_INT(r->u.fetch.has_savedate, 0);

    /* RFC 8970 */
    r = OK("* 1 FETCH (PREVIEW \"Hello, this is a preview\")\r\n");
    STR_EQ(r->u.fetch.preview, "Hello, this is a preview");
    r = OK("* 1 FETCH (PREVIEW NIL)\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_PREVIEW);
    IS_NIL(r->u.fetch.preview);
    r = OK("* 1 FETCH (PREVIEW {5}\r\nhello)\r\n");
    STR_EQ(r->u.fetch.preview, "hello");

    /* RFC 8438 */
    r = OK("* 7 FETCH (RFC822.SIZE 31126)\r\n");
    CHECK_INT(r->u.fetch.rfc822_size, 31126);

    /* body sections with origin, BINARY, BINARY.SIZE, RFC822.* */
    r = OK("* 1 FETCH (BODY[1.2.HEADER.FIELDS (FROM TO)]<0> {5}\r\nab\r\nc "
           "BINARY[2]<10> ~{4}\r\n\x00\x01\x02\x03 BINARY.SIZE[3] 4286 RFC822.HEADER \"h\" "
           "RFC822.TEXT NIL RFC822 {2}\r\nxy BODY[] \"q\\\"x\")\r\n");
    CHECK_INT(r->u.fetch.section_count, 7);
    if (r->u.fetch.section_count == 7) {
        const imk_fetch_section *s = r->u.fetch.sections;
        CHECK_INT(s[0].item, IMK_SECTION_BODY);
        STR_EQ(s[0].spec, "1.2.HEADER.FIELDS (FROM TO)");
        CHECK_INT(s[0].has_origin, 1);
        CHECK_INT(s[0].origin, 0);
        STR_EQ(s[0].data, "ab\r\nc");
        CHECK_INT(s[1].item, IMK_SECTION_BINARY);
        STR_EQ(s[1].spec, "2");
        CHECK_INT(s[1].origin, 10);
        CHECK_MEM(s[1].data.data, s[1].data.len, "\x00\x01\x02\x03", 4);
        CHECK_INT(s[2].item, IMK_SECTION_BINARY_SIZE);
        STR_EQ(s[2].spec, "3");
        CHECK_INT(s[2].size, 4286);
        CHECK_INT(s[3].item, IMK_SECTION_RFC822_HEADER);
        STR_EQ(s[3].data, "h");
        CHECK_INT(s[3].spec.len, 0);
        CHECK_INT(s[4].item, IMK_SECTION_RFC822_TEXT);
        IS_NIL(s[4].data);
        CHECK_INT(s[5].item, IMK_SECTION_RFC822);
        STR_EQ(s[5].data, "xy");
        CHECK_INT(s[6].item, IMK_SECTION_BODY);
        STR_EQ(s[6].spec, "");
        STR_EQ(s[6].data, "q\"x");
    }
    /* a section spec with a quoted "]" */
    r = OK("* 1 FETCH (BODY[HEADER.FIELDS (\"X-]\")] NIL)\r\n");
    if (r->u.fetch.section_count == 1)
        STR_EQ(r->u.fetch.sections[0].spec, "HEADER.FIELDS (\"X-]\")");

    /* streamed BINARY literal8 and RFC822, UID before and after */
    static const char two[] = "* 3 FETCH (UID 9 BINARY[] ~{100}\r\n RFC822 {7}\r\n FLAGS ())\r\n";
    imk__streamed st[2] = {{(size_t)(strstr(two, "~{") - two), 100},
                           {(size_t)(strstr(two, " {7}") + 1 - two), 7}};
    r = OKS(two, st, 2);
    CHECK_INT(r->u.fetch.section_count, 2);
    if (r->u.fetch.section_count == 2) {
        CHECK_INT(r->u.fetch.sections[0].streamed, 1);
        CHECK_INT(r->u.fetch.sections[0].size, 100);
        CHECK_INT(r->u.fetch.sections[1].item, IMK_SECTION_RFC822);
        CHECK_INT(r->u.fetch.sections[1].streamed, 1);
        CHECK_INT(r->u.fetch.sections[1].size, 7);
    }
    CHECK_INT(r->u.fetch.uid, 9);

    /* unknown items -> extras */
    r = OK("* 1 FETCH (X-GM-MSGID 1278455344230334865 X-GM-LABELS (\\Inbox \"Foo Bar\") "
           "UID 5 X-THING[1]<2> {3}\r\nabc)\r\n");
    CHECK_INT(r->u.fetch.extra_count, 3);
    if (r->u.fetch.extra_count == 3) {
        STR_EQ(r->u.fetch.extras[0].name, "X-GM-MSGID");
        CHECK_DUMP(dump(r->u.fetch.extras[0].value), "#1278455344230334865");
        STR_EQ(r->u.fetch.extras[1].name, "X-GM-LABELS");
        CHECK_DUMP(dump(r->u.fetch.extras[1].value), "(\\Inbox \"Foo Bar\")");
        STR_EQ(r->u.fetch.extras[2].name, "X-THING[1]<2>");
        CHECK_DUMP(dump(r->u.fetch.extras[2].value), "{3}abc");
    }
    CHECK_INT(r->u.fetch.uid, 5);

    /* BODYSTRUCTURE goes to parse_body with extension data */
    r = OK("* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
           "\"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_BODYSTRUCTURE);
    CHECK(r->u.fetch.body != NULL && r->u.fetch.body->has_ext);

    /* errors name the item */
    FAIL("* 1 FETCH (UID 5x)\r\n", QD, IMK_EPARSE, 16,
         "expected SP or \")\" after FETCH item UID, found \"x)\"");
    FAIL("* 1 FETCH (UID x)\r\n", QD, IMK_EPARSE, 15,
         "expected a UID (nz-number) after FETCH item UID, found \"x)\"");
    FAIL("* 1 FETCH (FLAGS)\r\n", STRICT, IMK_EPARSE, 16,
         "expected SP and a value after FETCH item FLAGS, found \")\"");
    FAIL("* 1 FETCH (INTERNALDATE \"32-Jul-1996 02:44:25 -0700\")\r\n", QD, IMK_EPARSE, 24,
         "expected a date-time \"dd-Mon-yyyy hh:mm:ss +zzzz\", found "
         "\"\\\"32-Jul-1996 02:44:25 -0\"...");
    FAIL("* 1 FETCH (BODY[1 NIL)\r\n", QD, IMK_EPARSE, 22,
         "expected \"]\" closing the section, found end of line");
    FAIL("* 1 FETCH (BODY[]<x> NIL)\r\n", QD, IMK_EPARSE, 18, "expected number, found \"x> NIL)\"");
    FAIL("* 1 FETCH (BODY[] 5)\r\n", QD, IMK_EPARSE, 18,
         "expected a string, literal or NIL as the value of FETCH item BODY[], found \"5)\"");
    FAIL("* 1 FETCH (EMAILID M1)\r\n", QD, IMK_EPARSE, 19, "expected \"(\", found \"M1)\"");
    FAIL("* 1 FETCH UID 1\r\n", QD, IMK_EPARSE, 10, "expected \"(\", found \"UID 1\"");
    FAIL("* 1 FETCH\r\n", QD, IMK_EPARSE, 9,
         "expected SP and \"(\" after FETCH, found end of line");
    FAIL("* 1 FETCH ()\r\n", QD, IMK_EPARSE, 11, "expected a FETCH item name, found \")\"");
    FAIL("* 1 FETCH (UID 1) x\r\n", STRICT, IMK_EPARSE, 17,
         "expected CRLF at the end of the response, found SP");
}

/* ------------------------------------------------------------------ */
/* Extension RFC examples                                              */
/* ------------------------------------------------------------------ */

static void test_search_sort_thread(void)
{
    const imk_response *r;

    r = OK("* SEARCH 1 2 3 5 8 13 21 42\r\n"); /* RFC 5530 */
    CHECK_INT(r->kind, IMK_KIND_SEARCH);
    CHECK_INT(r->u.search.count, 8);
    if (r->u.search.count == 8)
        CHECK_INT(r->u.search.numbers[7], 42);
    CHECK_INT(r->u.search.has_modseq, 0);
    r = OK("* SEARCH\r\n");
    CHECK_INT(r->u.search.count, 0);
    r = OK("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n"); /* RFC 7162 */
    CHECK_INT(r->u.search.count, 10);
    CHECK_INT(r->u.search.has_modseq, 1);
    CHECK(r->u.search.modseq == 917162500u);
    r = OK("* SORT 2 84 882\r\n"); /* RFC 5256 */
    CHECK_INT(r->kind, IMK_KIND_SORT);
    CHECK_INT(r->u.search.count, 3);
    r = OK("* SORT 5 3 4 1 2\r\n");
    if (r->u.search.count == 5)
        CHECK_INT(r->u.search.numbers[0], 5);
    r = OK("* SORT\r\n");
    CHECK_INT(r->u.search.count, 0);
    r = OK("* SORT 5 3 (MODSEQ 5)\r\n");
    CHECK_INT(r->u.search.has_modseq, 1);

    r = OK("* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
    CHECK_INT(r->kind, IMK_KIND_THREAD);
    CHECK_STR(dump_thread(&r->u.thread), "2 3(6(4(23) 44(7(96))))");
    r = OK("* THREAD ((3)(5))\r\n");
    CHECK_STR(dump_thread(&r->u.thread), "0(3 5)");
    r = OK("* THREAD (166)(167)(168)(169)(172)((170)(179))\r\n");
    CHECK_INT(r->u.thread.count, 6);
    CHECK_STR(dump_thread(&r->u.thread), "166 167 168 169 172 0(170 179)");
    r = OK("* THREAD (166)(167)(168)(169)(172)(170)(171)\r\n");
    CHECK_INT(r->u.thread.count, 7);
    r = OK("* THREAD\r\n");
    CHECK_INT(r->u.thread.count, 0);
    r = OK("* THREAD (1 2 3 4 5)\r\n");
    CHECK_STR(dump_thread(&r->u.thread), "1(2(3(4(5))))");
    FAIL("* THREAD ()\r\n", QD, IMK_EPARSE, 10,
         "expected a message number or \"(\" in a thread, found \")\"");
    FAIL("* THREAD (1 x)\r\n", QD, IMK_EPARSE, 12,
         "expected a message number or \"(\" in a thread, found \"x)\"");
}

static void test_esearch(void)
{
    const imk_response *r;

    /* RFC 4731 */
    r = OK("* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n");
    CHECK_INT(r->u.esearch.present, IMK_ESEARCH_MIN | IMK_ESEARCH_COUNT);
    CHECK_INT(r->u.esearch.min, 2);
    CHECK_INT(r->u.esearch.count, 3);
    r = OK("* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n");
    CHECK_STR(dump_set(r->u.esearch.all), "2,10:11");
    r = OK("* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n");
    CHECK_INT(r->u.esearch.uid, 1);
    CHECK_INT(r->u.esearch.max, 3800);
    r = OK("* ESEARCH (TAG \"A286\") COUNT 15\r\n");
    CHECK_INT(r->u.esearch.count, 15);
    r = OK("* ESEARCH (TAG \"a3\") MIN 2 MAX 23 MODSEQ 917162488\r\n");
    CHECK_INT(r->u.esearch.present, IMK_ESEARCH_MIN | IMK_ESEARCH_MAX | IMK_ESEARCH_MODSEQ);
    CHECK(r->u.esearch.modseq == 917162488u);
    NO_QUIRKS(r);
    /* RFC 5182 */
    r = OK("* ESEARCH (TAG \"C286\") MIN 2 MAX 21 COUNT 8\r\n");
    CHECK_INT(r->u.esearch.count, 8);
    /* RFC 5267 */
    r = OK("* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n");
    CHECK_INT(r->u.esearch.update_count, 1);
    if (r->u.esearch.update_count == 1) {
        CHECK_INT(r->u.esearch.updates[0].remove, 0);
        CHECK_INT(r->u.esearch.updates[0].position, 0);
        CHECK_STR(dump_set(r->u.esearch.updates[0].set), "32768:32769");
    }
    r = OK("* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 32768)\r\n");
    CHECK(r->u.esearch.update_count == 1 && r->u.esearch.updates[0].remove == 1);
    r = OK("* ESEARCH (TAG \"C01\") UID ADDTO (1 2733 1 2732 1 2731)\r\n");
    CHECK_INT(r->u.esearch.update_count, 3);
    if (r->u.esearch.update_count == 3)
        CHECK_STR(dump_set(r->u.esearch.updates[2].set), "2731");
    r = OK("* ESEARCH (TAG \"C01\") UID ADDTO (1 2733) ADDTO (1 2731:2732)\r\n");
    CHECK_INT(r->u.esearch.update_count, 2);
    r = OK("* ESEARCH (TAG \"A04\") UID PARTIAL (24000:24500 NIL)\r\n");
    CHECK_INT(r->u.esearch.present, IMK_ESEARCH_PARTIAL);
    CHECK_INT(r->u.esearch.partial_range.first, 24000);
    CHECK_INT(r->u.esearch.partial_range.last, 24500);
    CHECK_INT(r->u.esearch.partial.count, 0);
    /* RFC 9394 (the "..." of its examples filled in) */
    r = OK("* ESEARCH (TAG \"A01\") UID PARTIAL (-1:-100 200:250,300)\r\n");
    CHECK_INT((int32_t)r->u.esearch.partial_range.first, -1);
    CHECK_INT((int32_t)r->u.esearch.partial_range.last, -100);
    CHECK_STR(dump_set(r->u.esearch.partial), "200:250,300");
    r = OK("* ESEARCH (TAG \"A02\") UID PARTIAL (23500:24000 1:5)\r\n");
    CHECK_INT(r->u.esearch.partial_range.first, 23500);
    /* unknown return data -> extras */
    r = OK("* ESEARCH (TAG \"x\") XRELEVANCY (4 3 2 1) COUNT 4\r\n");
    CHECK_INT(r->u.esearch.extra_count, 1);
    if (r->u.esearch.extra_count == 1) {
        STR_EQ(r->u.esearch.extras[0].name, "XRELEVANCY");
        CHECK_DUMP(dump(r->u.esearch.extras[0].value), "(#4 #3 #2 #1)");
    }
    CHECK_INT(r->u.esearch.count, 4);
    r = OK("* ESEARCH\r\n");
    CHECK_INT(r->kind, IMK_KIND_ESEARCH);
    CHECK_INT(r->u.esearch.present, 0);
    FAIL("* ESEARCH (TAG \"x\") MIN x\r\n", QD, IMK_EPARSE, 24,
         "expected a non-zero number, found \"x\"");
}

static void test_mailbox_responses(void)
{
    const imk_response *r;

    /* RFC 5258 */
    r = OK("* LIST () \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
    STR_EQ(r->u.list.mailbox, "Foo");
    CHECK_STR(dump_strlist(r->u.list.childinfo), "SUBSCRIBED");
    r = OK("* LIST (\\HasNoChildren) \"/\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
    STR_EQ(r->u.list.mailbox, "foo");
    r = OK("* LIST (\\Marked \\NoInferiors \\Subscribed) \"/\" \"inbox\"\r\n");
    STR_EQ(r->u.list.mailbox, "INBOX");
    STR_EQ(r->u.list.mailbox_raw, "inbox");
    CHECK_INT(r->u.list.attributes.count, 3);
    r = OK("* LIST (\\HasChildren \\Remote) \"/\" \"Meat\"\r\n");
    CHECK_STR(dump_strlist(r->u.list.attributes), "\\HasChildren \\Remote");
    r = OK("* LIST (\\NonExistent) \".\" \"INBOX.DeletedMailbox\"\r\n"); /* RFC 5465 */
    CHECK_INT(r->u.list.delimiter, '.');
    r = OK("* LSUB () \".\" #news.comp.mail.misc\r\n"); /* RFC 3501 */
    CHECK_INT(r->kind, IMK_KIND_LSUB);
    STR_EQ(r->u.list.mailbox, "#news.comp.mail.misc");
    r = OK("* LIST (\\Noselect) NIL \"\"\r\n");
    CHECK_INT(r->u.list.delimiter, -1);
    STR_EQ(r->u.list.mailbox, "");
    r = OK("* LIST () \"\\\\\" \"a\\\\b\"\r\n");
    CHECK_INT(r->u.list.delimiter, '\\');
    STR_EQ(r->u.list.mailbox, "a\\b");
    /* RFC 6154 */
    r = OK("* LIST (\\Marked \\Drafts \\HasNoChildren) \"/\" MyDrafts\r\n");
    CHECK_STR(dump_strlist(r->u.list.attributes), "\\Marked \\Drafts \\HasNoChildren");
    /* RFC 7889's "* LIST () \".\"  \"INBOX\"" (two spaces): Q6 */
    r = OK("* LIST () \".\"  \"INBOX\"\r\n");
    HAS_QUIRK(r, IMK_QUIRK_EXTRA_SPACES);
    /* modified UTF-7 names are decoded; invalid ones kept raw */
    r = OK("* LIST () \"/\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n");
    STR_EQ(r->u.list.mailbox, "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
                              "\xe8\xaa\x9e");
    STR_EQ(r->u.list.mailbox_raw, "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    CHECK_INT(r->u.list.mailbox_not_utf7, 0);
    r = OK("* LIST () \"/\" \"Bad&Jjo\"\r\n");
    STR_EQ(r->u.list.mailbox, "Bad&Jjo");
    CHECK_INT(r->u.list.mailbox_not_utf7, 1);
    r = OK("* LIST () \"/\" \"Caf\xc3\xa9\"\r\n");
    CHECK_INT(r->u.list.mailbox_not_utf7, 1);
    g_limits.utf8_mailboxes = 1; /* RFC 6855 */
    r = OK("* LIST () \"/\" \"Caf\xc3\xa9\"\r\n");
    STR_EQ(r->u.list.mailbox, "Caf\xc3\xa9");
    CHECK_INT(r->u.list.mailbox_not_utf7, 0);
    r = OK("* LIST () \"/\" \"&ZeVnLIqe-\"\r\n");
    STR_EQ(r->u.list.mailbox, "&ZeVnLIqe-"); /* no mUTF-7 decoding under UTF8=ACCEPT */
    g_limits.utf8_mailboxes = 0;
    FAIL("* LIST () \"//\" x\r\n", QD, IMK_EPARSE, 10,
         "expected a one-character hierarchy delimiter, found \"\\\"//\\\" x\"");
    FAIL("* LIST \"/\" x\r\n", QD, IMK_EPARSE, 7, "expected \"(\", found \"\\\"/\\\" x\"");

    /* STATUS: RFC 8438, 7889, 7162, 8474, 9208, 5465 */
    r = OK("* STATUS \"INBOX\" (MESSAGES 17 SIZE 16234)\r\n");
    CHECK_INT(r->u.status.present, IMK_STATUS_MESSAGES | IMK_STATUS_SIZE);
    CHECK_INT(r->u.status.size, 16234);
    STR_EQ(r->u.status.mailbox, "INBOX");
    r = OK("* STATUS INBOX (APPENDLIMIT 257890)\r\n");
    CHECK_INT(r->u.status.appendlimit, 257890);
    CHECK_INT(r->u.status.appendlimit_nil, 0);
    r = OK("* STATUS INBOX (APPENDLIMIT NIL)\r\n");
    CHECK(r->u.status.present & IMK_STATUS_APPENDLIMIT);
    CHECK_INT(r->u.status.appendlimit_nil, 1);
    r = OK("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\r\n");
    CHECK(r->u.status.highestmodseq == 7011231777ull);
    r = OK("* STATUS foo (MAILBOXID (F2212ea87-6097-4256-9d51-71338625))\r\n");
    CHECK_INT(r->u.status.present, IMK_STATUS_MAILBOXID);
    STR_EQ(r->u.status.mailboxid, "F2212ea87-6097-4256-9d51-71338625");
    r = OK("* STATUS INBOX (MESSAGES 12 DELETED 4 DELETED-STORAGE 8)\r\n");
    CHECK_INT(r->u.status.deleted, 4);
    CHECK_INT(r->u.status.deleted_storage, 8);
    r = OK("* STATUS Lists/Im2000 (UIDVALIDITY 901 UIDNEXT 1 MESSAGES 0)\r\n");
    CHECK_INT(r->u.status.uidvalidity, 901);
    r = OK("* STATUS x (UNSEEN 3 RECENT 1 XFOO (a b))\r\n");
    CHECK_INT(r->u.status.unseen, 3);
    CHECK_INT(r->u.status.recent, 1);
    CHECK_INT(r->u.status.extra_count, 1);
    if (r->u.status.extra_count == 1) {
        STR_EQ(r->u.status.extras[0].name, "XFOO");
        CHECK_DUMP(dump(r->u.status.extras[0].value), "(a b)");
    }
    r = OK("* STATUS x ()\r\n");
    CHECK_INT(r->u.status.present, 0);

    /* NAMESPACE (RFC 2342) */
    r = OK("* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL "
           "NIL\r\n");
    CHECK_INT(r->u.namespace_.personal.count, 2);
    if (r->u.namespace_.personal.count == 2) {
        const imk_namespace_desc *d = &r->u.namespace_.personal.items[1];
        STR_EQ(d->prefix, "#mh/");
        CHECK_INT(d->extension_count, 1);
        if (d->extension_count == 1) {
            STR_EQ(d->extensions[0].tag, "X-PARAM");
            CHECK_DUMP(dump(d->extensions[0].value), "(\"FLAG1\" \"FLAG2\")");
        }
    }
    CHECK(r->u.namespace_.other_users.nil && r->u.namespace_.shared.nil);
    r = OK("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" "
           "\"/\")(\"#ftp/\" \"/\")(\"#news.\" \".\"))\r\n");
    CHECK_INT(r->u.namespace_.shared.count, 4);
    if (r->u.namespace_.shared.count == 4)
        CHECK_INT(r->u.namespace_.shared.items[3].delimiter, '.');
    r = OK("* NAMESPACE NIL NIL ((\"\" \".\"))\r\n");
    CHECK(r->u.namespace_.personal.nil);
    r = OK("* NAMESPACE ((\"INBOX.\" \".\")) NIL  NIL\r\n"); /* RFC 2342, two spaces: Q6 */
    HAS_QUIRK(r, IMK_QUIRK_EXTRA_SPACES);
    FAIL("* NAMESPACE ((\"INBOX.\" \".\")) NIL  NIL\r\n", STRICT, IMK_EPARSE, 33,
         "expected NIL or \"(\", found SP");

    /* ID (RFC 2971) */
    r = OK("* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" \"sunos\" \"os-version\" \"5.5\" "
           "\"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\")\r\n");
    CHECK_INT(r->kind, IMK_KIND_ID);
    CHECK_INT(r->u.id.fields.count, 5);
    if (r->u.id.fields.count == 5) {
        STR_EQ(r->u.id.fields.items[0].name, "name");
        STR_EQ(r->u.id.fields.items[4].value, "mailto:cyrus-bugs+@andrew.cmu.edu");
    }
    r = OK("* ID NIL\r\n");
    CHECK_INT(r->u.id.nil, 1);
    r = OK("* ID (\"name\" NIL)\r\n");
    if (r->u.id.fields.count == 1)
        IS_NIL(r->u.id.fields.items[0].value);

    /* QUOTA (RFC 9208) */
    r = OK("* QUOTA \"#user/alice\" (STORAGE 54 111 MESSAGE 42 1000)\r\n");
    CHECK_INT(r->kind, IMK_KIND_QUOTA);
    STR_EQ(r->u.quota.root, "#user/alice");
    CHECK_INT(r->u.quota.count, 2);
    if (r->u.quota.count == 2) {
        STR_EQ(r->u.quota.resources[1].name, "MESSAGE");
        CHECK_INT(r->u.quota.resources[1].usage, 42);
        CHECK_INT(r->u.quota.resources[1].limit, 1000);
    }
    r = OK("* QUOTA \"\" (STORAGE 10 512)\r\n");
    STR_EQ(r->u.quota.root, "");
    r = OK("* QUOTA \"!partition/sda4\" (STORAGE 104 10923847)\r\n");
    CHECK_INT(r->u.quota.resources[0].limit, 10923847);
    r = OK("* QUOTAROOT INBOX \"#user/alice\" \"!partition/sda4\"\r\n");
    CHECK_INT(r->kind, IMK_KIND_QUOTAROOT);
    STR_EQ(r->u.quotaroot.mailbox, "INBOX");
    CHECK_STR(dump_strlist(r->u.quotaroot.roots), "#user/alice !partition/sda4");
    r = OK("* QUOTAROOT INBOX \"\"\r\n");
    CHECK_INT(r->u.quotaroot.roots.count, 1);
    r = OK("* QUOTAROOT comp.mail.mime\r\n");
    CHECK_INT(r->u.quotaroot.roots.count, 0);

    /* METADATA (RFC 5464, RFC 6154) */
    r = OK("* METADATA \"INBOX\" (/private/comment \"My own comment\")\r\n");
    CHECK_INT(r->kind, IMK_KIND_METADATA);
    STR_EQ(r->u.metadata.mailbox, "INBOX");
    CHECK_INT(r->u.metadata.has_values, 1);
    if (r->u.metadata.entries.count == 1) {
        STR_EQ(r->u.metadata.entries.items[0].name, "/private/comment");
        STR_EQ(r->u.metadata.entries.items[0].value, "My own comment");
    }
    r = OK("* METADATA \"INBOX\" (/private/comment \"My comment\" /shared/comment \"Its "
           "sunny outside!\")\r\n");
    CHECK_INT(r->u.metadata.entries.count, 2);
    r = OK("* METADATA \"INBOX\" /shared/comment /private/comment\r\n");
    CHECK_INT(r->u.metadata.has_values, 0);
    CHECK_INT(r->u.metadata.entries.count, 2);
    r = OK("* METADATA \"\" /shared/comment\r\n");
    STR_EQ(r->u.metadata.mailbox, "");
    r = OK("* METADATA \"MyDrafts\" (/private/specialuse \"\\\\Drafts\")\r\n");
    STR_EQ(r->u.metadata.entries.items[0].value, "\\Drafts");
    r = OK("* METADATA \"MyDrafts\" (/private/specialuse NIL)\r\n");
    IS_NIL(r->u.metadata.entries.items[0].value);
    r = OK("* METADATA \"INBOX\" (/private/filters/values/small {5}\r\nab\r\nc)\r\n");
    STR_EQ(r->u.metadata.entries.items[0].value, "ab\r\nc");

    /* ACL (RFC 4314) */
    r = OK("* ACL INBOX Fred rwipsldexta\r\n");
    CHECK_INT(r->kind, IMK_KIND_ACL);
    CHECK_INT(r->u.acl.entries.count, 1);
    STR_EQ(r->u.acl.entries.items[0].name, "Fred");
    STR_EQ(r->u.acl.entries.items[0].value, "rwipsldexta");
    r = OK("* ACL INBOX Fred rwipslxetad -Fred wetd $team w\r\n");
    CHECK_INT(r->u.acl.entries.count, 3);
    STR_EQ(r->u.acl.entries.items[2].name, "$team");
    r = OK("* LISTRIGHTS ~/Mail/saved smith la r swicdkxte\r\n");
    CHECK_INT(r->kind, IMK_KIND_LISTRIGHTS);
    STR_EQ(r->u.acl.mailbox, "~/Mail/saved");
    STR_EQ(r->u.acl.identifier, "smith");
    STR_EQ(r->u.acl.rights, "la");
    CHECK_STR(dump_strlist(r->u.acl.optional_rights), "r swicdkxte");
    r = OK("* LISTRIGHTS archive.imap anyone \"\"\r\n");
    STR_EQ(r->u.acl.rights, "");
    r = OK("* MYRIGHTS INBOX rwiptsldaex\r\n");
    CHECK_INT(r->kind, IMK_KIND_MYRIGHTS);
    STR_EQ(r->u.acl.rights, "rwiptsldaex");

    /* VANISHED (RFC 7162) */
    r = OK("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n");
    CHECK_INT(r->kind, IMK_KIND_VANISHED);
    CHECK_INT(r->u.vanished.earlier, 1);
    CHECK_STR(dump_set(r->u.vanished.uids), "41,43:116,118,120:211,214:540");
    r = OK("* VANISHED 5444\r\n"); /* RFC 5465 */
    CHECK_INT(r->u.vanished.earlier, 0);
    CHECK_STR(dump_set(r->u.vanished.uids), "5444");
    FAIL("* VANISHED (LATER) 1\r\n", QD, IMK_EPARSE, 12,
         "expected EARLIER in \"(EARLIER)\", found \"LATER) 1\"");

    /* CAPABILITY examples from the extension RFCs */
    r = OK("* CAPABILITY IMAP4rev1 ID LITERAL+ ENABLE X-GOOD-IDEA\r\n");
    CHECK_INT(r->u.capability.count, 5);
    r = OK("* CAPABILITY IMAP4rev1 ID APPENDLIMIT=257890\r\n");
    STR_EQ(r->u.capability.items[2], "APPENDLIMIT=257890");
}

/* Untagged data we do not model: GENERIC with name, number and values. */
static void test_generic(void)
{
    const imk_response *r;

    r = OK("* 5 XFOO bar\r\n");
    CHECK_INT(r->kind, IMK_KIND_GENERIC);
    STR_EQ(r->name, "XFOO");
    CHECK_INT(r->number, 5);
    CHECK_DUMP(dump(r->u.generic), "(bar)");
    CHECK_STR(imk_response_kind_name(r->kind), "");
    r = OK("* XFOO\r\n");
    CHECK_INT(r->kind, IMK_KIND_GENERIC);
    CHECK_DUMP(dump(r->u.generic), "()");
    r = OK("* XFOO NIL 12 \"q\\\\\" (a (b)) {3}\r\nxyz BODY[HEADER.FIELDS (A B)]<0> \\Seen ~{2}\r\n"
           "\x00\x01 18446744073709551616\r\n");
    CHECK_DUMP(dump(r->u.generic),
               "(NIL #12 \"q\\\" (a (b)) {3}xyz BODY[HEADER.FIELDS (A B)]<0> \\Seen ~{2}\x00\x01 "
               "18446744073709551616)");
    /* RFC 5465 has "* EXISTS 93" (an erratum): a generic response */
    r = OK("* EXISTS 93\r\n");
    CHECK_INT(r->kind, IMK_KIND_GENERIC);
    STR_EQ(r->name, "EXISTS");
    CHECK_DUMP(dump(r->u.generic), "(#93)");
    r = OK("* 3 FETCHX (a)\r\n");
    CHECK_INT(r->kind, IMK_KIND_GENERIC);
    CHECK_INT(r->number, 3);
    FAIL("* XFOO (a\r\n", QD, IMK_EPARSE, 9,
         "expected SP or \")\" after a list item, found end of line");
    FAIL("* XFOO a)\r\n", QD, IMK_EPARSE, 8,
         "expected CRLF at the end of the response, found \")\"");

    CHECK_STR(imk_response_kind_name(IMK_KIND_FETCH), "FETCH");
    CHECK_STR(imk_response_kind_name(IMK_KIND_LISTRIGHTS), "LISTRIGHTS");
    CHECK_STR(imk_response_kind_name(IMK_KIND_COUNT_), "");
    CHECK_STR(imk_status_name(IMK_STATUS_PREAUTH), "PREAUTH");
    CHECK_STR(imk_status_name(IMK_STATUS_NONE), "");
    CHECK_STR(imk_code_kind_name(IMK_CODE_READ_ONLY), "READ-ONLY");
    CHECK_STR(imk_code_kind_name(IMK_CODE_UNKNOWN_CTE), "UNKNOWN-CTE");
    CHECK_STR(imk_code_kind_name(IMK_CODE_COUNT_), "");
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.1: whitespace and framing                               */
/* ------------------------------------------------------------------ */

static void test_quirks_whitespace(void)
{
    const imk_response *r;

    /* Q1 accepted (IMK_QUIRK_TRAILING_SPACE) */
    r = OK("* STATUS Inbox (MESSAGES 1) \r\n");
    CHECK_INT(r->kind, IMK_KIND_STATUS);
    CHECK_INT(r->u.status.messages, 1);
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* STATUS Inbox (MESSAGES 1) \r\n", STRICT, IMK_EPARSE, 27,
         "expected CRLF at the end of the response, found SP");

    /* Q2 accepted */
    r = OK("* CAPABILITY IMAP4rev1 \r\n");
    CHECK_STR(dump_strlist(r->u.capability), "IMAP4rev1");
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* CAPABILITY IMAP4rev1 \r\n", STRICT, IMK_EPARSE, 23,
         "expected a capability name (atom), found end of line");

    /* Q3 accepted: SEARCH with trailing space, also when empty */
    r = OK("* SEARCH 169654 169655 169663 \r\n");
    CHECK_INT(r->u.search.count, 3);
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* SEARCH 169654 169655 169663 \r\n", STRICT, IMK_EPARSE, 30,
         "expected a non-zero number, found end of line");
    r = OK("* SEARCH 7456 \r\n");
    CHECK_INT(r->u.search.count, 1);
    r = OK("* SEARCH \r\n");
    CHECK_INT(r->u.search.count, 0);
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* SEARCH \r\n", STRICT, IMK_EPARSE, 9, "expected a non-zero number, found end of line");
    /* ... and the command that followed in ikvk/imap_tools#97, legal */
    r = OK("DPPL5 BAD [CLIENTBUG] FETCH Command arguments invalid\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_CLIENTBUG);

    /* Q4 accepted */
    r = OK("* ID (\"name\" \"x\") \r\n");
    CHECK_INT(r->u.id.fields.count, 1);
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* ID (\"name\" \"x\") \r\n", STRICT, IMK_EPARSE, 17,
         "expected CRLF at the end of the response, found SP");

    /* Q5 accepted */
    r = OK("* 11487 FETCH (UID 19436 )\r\n");
    CHECK_INT(r->u.fetch.uid, 19436);
    CHECK_INT(r->u.fetch.seq, 11487);
    HAS_QUIRK(r, IMK_QUIRK_TRAILING_SPACE);
    FAIL("* 11487 FETCH (UID 19436 )\r\n", STRICT, IMK_EPARSE, 24, "expected \")\", found SP");

    /* Q6 accepted (IMK_QUIRK_EXTRA_SPACES), three forms */
    r = OK("* 1 FETCH (FLAGS (\\Seen)  INTERNALDATE \"25-Jul-2023 13:55:25 -0400\" UID 1)\r\n");
    CHECK_INT(r->u.fetch.internaldate.year, 2023);
    CHECK_INT(r->u.fetch.internaldate.zone_minutes, -240);
    CHECK_INT(r->u.fetch.uid, 1);
    HAS_QUIRK(r, IMK_QUIRK_EXTRA_SPACES);
    FAIL("* 1 FETCH (FLAGS (\\Seen)  INTERNALDATE \"25-Jul-2023 13:55:25 -0400\" UID 1)\r\n",
         STRICT, IMK_EPARSE, 25, "expected a FETCH item name, found SP");
    r = OK("*  22279 EXISTS\r\n");
    CHECK_INT(r->number, 22279);
    HAS_QUIRK(r, IMK_QUIRK_EXTRA_SPACES);
    FAIL("*  22279 EXISTS\r\n", STRICT, IMK_EPARSE, 2,
         "expected a response name or status after \"* \", found SP");
    r = OK("* 1 FETCH (UID 1989 FLAGS (\\Seen)  RFC822.HEADER {5}\r\nHi: x)\r\n");
    CHECK(r->u.fetch.section_count == 1 &&
          r->u.fetch.sections[0].item == IMK_SECTION_RFC822_HEADER);
    HAS_QUIRK(r, IMK_QUIRK_EXTRA_SPACES);
    FAIL("* 1 FETCH (UID 1989 FLAGS (\\Seen)  RFC822.HEADER {5}\r\nHi: x)\r\n", STRICT, IMK_EPARSE,
         34, "expected a FETCH item name, found SP");

    /* Q7 accepted (IMK_QUIRK_MISSING_TEXT), three forms */
    r = OK("* OK [HIGHESTMODSEQ 13632]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_HIGHESTMODSEQ && r->code->number == 13632);
    CHECK_INT(r->text.len, 0);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("* OK [HIGHESTMODSEQ 13632]\r\n", STRICT, IMK_EPARSE, 26,
         "expected SP after the response code, found end of line");
    r = OK("* BYE\r\n");
    CHECK_INT(r->status, IMK_STATUS_BYE);
    CHECK_INT(r->text.len, 0);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("* BYE\r\n", STRICT, IMK_EPARSE, 5,
         "expected SP and text after the status, found end of line");
    r = OK("IOMC1 OK\r\n");
    STR_EQ(r->tag, "IOMC1");
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("IOMC1 OK\r\n", STRICT, IMK_EPARSE, 8,
         "expected SP and text after the status, found end of line");
    /* legal in RFC 9051: SP then empty text */
    r = OKQ("* BYE \r\n", STRICT);
    CHECK_INT(r->text.len, 0);

    /* Q8 accepted (IMK_QUIRK_MISSING_TEXT); Courier's text form is legal */
    r = OK("+\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_CONTINUATION);
    CHECK_INT(r->text.len, 0);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("+\r\n", STRICT, IMK_EPARSE, 1, "expected SP after \"+\", found end of line");
    r = OKQ("+ entering idle mode\r\n", STRICT);
    STR_EQ(r->text, "entering idle mode");

    /* Q9: the tagged line is legal; the garbage line after it, framed as
     * a response of its own, is rejected (an error event; the session
     * goes on). */
    r = OK("1 OK CAPABILITY completed.\r\n");
    STR_EQ(r->text, "CAPABILITY completed.");
    FAIL("CAPABILITY completed.\r\n", QD, IMK_EPARSE, 11,
         "expected OK, NO or BAD after the tag, found \"completed.\"");

    /* Q10: bare LF is off by default (rejected), accepted when switched on */
    FAIL("* OK hello\n", QD, IMK_EPARSE, 10,
         "expected CRLF at the end of the response, found end of line");
    r = OKQ("* OK hello\n", QD | IMK_QUIRK_BARE_LF);
    STR_EQ(r->text, "hello");
    HAS_QUIRK(r, IMK_QUIRK_BARE_LF);
    r = OKQ("* 1 FETCH (BODY[] {2}\nab)\n", QD | IMK_QUIRK_BARE_LF);
    if (r->u.fetch.section_count == 1)
        STR_EQ(r->u.fetch.sections[0].data, "ab");
    FAIL("* 1 FETCH (BODY[] {2}\nab)\n", STRICT, IMK_EPARSE, 21,
         "expected CRLF after a literal announcement, found end of line");
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.2: status lines, tags, response codes                   */
/* ------------------------------------------------------------------ */

static void test_quirks_status(void)
{
    const imk_response *r;

    /* Q11 accepted (IMK_QUIRK_BARE_CODE): with "*" and fully bare */
    r = OK("* [COPYUID 124 10 233]\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_UNTAGGED);
    CHECK_INT(r->status, IMK_STATUS_OK);
    CHECK(r->code && r->code->kind == IMK_CODE_COPYUID && r->code->uidvalidity == 124);
    HAS_QUIRK(r, IMK_QUIRK_BARE_CODE);
    FAIL("* [COPYUID 124 10 233]\r\n", STRICT, IMK_EPARSE, 2,
         "expected a response name or status after \"* \", found \"[COPYUID 124 10 233]\"");
    r = OK("[COPYUID 124 10 233]\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_UNTAGGED);
    CHECK(r->code && r->code->kind == IMK_CODE_COPYUID);
    if (r->code)
        CHECK_STR(dump_set(r->code->set2), "233");
    HAS_QUIRK(r, IMK_QUIRK_BARE_CODE);
    FAIL("[COPYUID 124 10 233]\r\n", STRICT, IMK_EPARSE, 9,
         "expected OK, NO or BAD after the tag, found \"124 10 233]\"");
    r = OK("* [COPYUID 1 2 3] moved\r\n");
    STR_EQ(r->text, "moved");

    /* Q12 accepted (IMK_QUIRK_CODE_TEXT): truncated COPYUID -> OTHER */
    r = OK("* OK [COPYUID 14  ]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_OTHER);
    if (r->code) {
        STR_EQ(r->code->name, "COPYUID");
        STR_EQ(r->code->raw, "14  ");
    }
    HAS_QUIRK(r, IMK_QUIRK_CODE_TEXT);
    HAS_QUIRK(r, IMK_QUIRK_MISSING_TEXT);
    FAIL("* OK [COPYUID 14  ]\r\n", STRICT, IMK_EPARSE, 17,
         "expected a sequence number or \"*\", found SP");

    /* Q13 accepted (IMK_QUIRK_CODE_TEXT): vendor text inside the code */
    r = OK("RUBY0001 OK [Error=\"Microsoft.Exchange.Data.Storage.WrongServerException:Cross "
           "Server access is not allowed for mailbox \xe2\x80\xa6\" AuthResultFromPopImapEnd=0 "
           "Proxy=\xe2\x80\xa6.PROD.OUTLOOK.COM:1993:SSL MailboxBE=\xe2\x80\xa6 Service=Imap4] "
           "AUTHENTICATE completed.\r\n");
    CHECK_INT(r->status, IMK_STATUS_OK);
    CHECK(r->code && r->code->kind == IMK_CODE_OTHER);
    if (r->code) {
        STR_EQ(r->code->name, "Error=");
        CHECK(r->code->raw.len > 0 && r->code->raw.data[0] == '"');
        CHECK(r->code->raw.data[r->code->raw.len - 1] == '4'); /* ...Service=Imap4 */
        CHECK(r->code->value == NULL);
    }
    STR_EQ(r->text, "AUTHENTICATE completed.");
    HAS_QUIRK(r, IMK_QUIRK_CODE_TEXT);
    FAIL("RUBY0001 OK [Error=\"Microsoft.Exchange.Data.Storage.WrongServerException:Cross "
         "Server access is not allowed for mailbox \xe2\x80\xa6\" AuthResultFromPopImapEnd=0 "
         "Proxy=\xe2\x80\xa6.PROD.OUTLOOK.COM:1993:SSL MailboxBE=\xe2\x80\xa6 Service=Imap4] "
         "AUTHENTICATE completed.\r\n",
         STRICT, IMK_EPARSE, 19,
         "expected SP or \"]\" after the response code name, found "
         "\"\\\"Microsoft.Exchange.Data\"...");
    /* a "[" that never closes: plain text under the quirk, else an error */
    r = OK("* OK [not a code\r\n");
    CHECK(r->code == NULL);
    STR_EQ(r->text, "[not a code");
    FAIL("* OK [not a code\r\n", STRICT, IMK_EPARSE, 16,
         "expected \"]\" closing the response code, found end of line");

    /* Q14 legal: COPYUID in an untagged OK */
    r = OKQ("* OK [COPYUID 1304109194 59667 4484] Completed\r\n", STRICT);
    CHECK(r->code && r->code->kind == IMK_CODE_COPYUID && r->code->uidvalidity == 1304109194u);
    r = OKQ("* 217 EXPUNGE\r\n", STRICT);
    CHECK_INT(r->number, 217);

    /* Q15 legal: untagged BAD with ALERT; the tagged form too */
    r = OKQ("* BAD [ALERT] Please enable IMAP access in your account settings first.\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_BAD);
    CHECK(r->code && r->code->kind == IMK_CODE_ALERT);
    r = OKQ("A00000001 OK [ALERT] Please enable IMAP access\xe2\x80\xa6\r\n", STRICT);
    STR_EQ(r->tag, "A00000001");

    /* Q16 accepted (IMK_QUIRK_TAGGED_BYE) */
    r = OK("A00000006 BYE IMAP4rev1 Server logging out\r\n");
    CHECK_INT(r->type, IMK_RESPONSE_TAGGED);
    CHECK_INT(r->status, IMK_STATUS_BYE);
    STR_EQ(r->text, "IMAP4rev1 Server logging out");
    HAS_QUIRK(r, IMK_QUIRK_TAGGED_BYE);
    FAIL("A00000006 BYE IMAP4rev1 Server logging out\r\n", STRICT, IMK_EPARSE, 10,
         "expected OK, NO or BAD after the tag, found \"BYE IMAP4rev1 Server log\"...");

    /* Q17, Q18, Q19 legal */
    r = OKQ("* BYE Autologout; idle for too long\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_BYE);
    r = OKQ("* OK PM IMAP ready\r\n", STRICT);
    r = OKQ("* BYE Unknown command.\r\n", STRICT);
    r = OKQ("* BAD malformed command\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_BAD);
    r = OKQ("A1 NO [SERVERBUG] UID SEARCH Server error\r\n", STRICT);
    CHECK(r->code && r->code->kind == IMK_CODE_SERVERBUG);
    r = OKQ("A2 NO FETCH Server error while fetching messages\r\n", STRICT);
    CHECK(r->code == NULL);

    /* tags */
    FAIL("A+1 OK x\r\n", QD, IMK_EPARSE, 0,
         "expected a tag (no \"+\" allowed), found \"A+1 OK x\"");
    r = OK("[tag] OK x\r\n"); /* "]" and "[" are legal tag chars... but "[" starts Q11 */
    CHECK_INT(r->type, IMK_RESPONSE_UNTAGGED);
    r = OKQ("[tag] OK x\r\n", STRICT);
    CHECK_INT(r->type, IMK_RESPONSE_TAGGED);
    STR_EQ(r->tag, "[tag]");
    r = OKQ("t] OK x\r\n", STRICT);
    STR_EQ(r->tag, "t]");
    FAIL("A1 PREAUTH x\r\n", QD, IMK_EPARSE, 3,
         "expected OK, NO or BAD after the tag, found \"PREAUTH x\"");
    FAIL("", QD, IMK_EPARSE, 0, "expected a response (\"*\", \"+\" or a tag), found end of data");
    FAIL("*\r\n", QD, IMK_EPARSE, 1, "expected SP after \"*\", found end of line");
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.3: numbers                                              */
/* ------------------------------------------------------------------ */

static void test_quirks_numbers(void)
{
    const imk_response *r;

    /* Q20 accepted (IMK_QUIRK_NUMBER_RANGE), exact 64-bit value kept */
    r = OK("* OK [UIDVALIDITY 1713632002544]\r\n");
    CHECK(r->code && r->code->number == 1713632002544ull);
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* OK [UIDVALIDITY 1713632002544]\r\n", STRICT, IMK_ERANGE, 18,
         "expected a number below 4294967296");
    r = OK("* STATUS \"folder_0\" (UIDNEXT 1 UIDVALIDITY 1666390893380 UNSEEN 0 RECENT 0 "
           "MESSAGES 0)\r\n");
    CHECK(r->u.status.uidvalidity == 1666390893380ull);
    CHECK_INT(r->u.status.present, IMK_STATUS_UIDNEXT | IMK_STATUS_UIDVALIDITY | IMK_STATUS_UNSEEN |
                                       IMK_STATUS_RECENT | IMK_STATUS_MESSAGES);
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* STATUS \"folder_0\" (UIDNEXT 1 UIDVALIDITY 1666390893380 UNSEEN 0 RECENT 0 "
         "MESSAGES 0)\r\n",
         STRICT, IMK_ERANGE, 43, "expected a number below 4294967296");
    r = OK("* OK [UIDVALIDITY 1528896777421]\r\n");
    CHECK(r->code && r->code->number == 1528896777421ull);

    /* Q21 accepted: zero where nz-number is required */
    r = OK("* OK [UIDVALIDITY 0]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UIDVALIDITY && r->code->number == 0);
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* OK [UIDVALIDITY 0]\r\n", STRICT, IMK_ERANGE, 18, "expected a non-zero number, found 0");
    r = OK("* OK [UIDNEXT 0]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UIDNEXT);
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* OK [UIDNEXT 0]\r\n", STRICT, IMK_ERANGE, 14, "expected a non-zero number, found 0");
    r = OK("* OK [UNSEEN 0]\r\n");
    CHECK(r->code && r->code->kind == IMK_CODE_UNSEEN);
    FAIL("* OK [UNSEEN 0]\r\n", STRICT, IMK_ERANGE, 13, "expected a non-zero number, found 0");

    /* Q22 accepted */
    r = OK("* 0 FETCH (UID 16334 FLAGS ())\r\n");
    CHECK_INT(r->kind, IMK_KIND_FETCH);
    CHECK_INT(r->u.fetch.seq, 0);
    CHECK_INT(r->u.fetch.uid, 16334);
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* 0 FETCH (UID 16334 FLAGS ())\r\n", STRICT, IMK_ERANGE, 2,
         "expected a non-zero message number, found 0");
    FAIL("* 0 EXPUNGE\r\n", STRICT, IMK_ERANGE, 2, "expected a non-zero message number, found 0");
    r = OK("* 4294967296 FETCH (UID 1)\r\n");
    CHECK_INT(r->u.fetch.seq, UINT32_MAX);
    CHECK(r->number == 4294967296ull);
    r = OK("* 1 FETCH (UID 0)\r\n");
    HAS_QUIRK(r, IMK_QUIRK_NUMBER_RANGE);
    FAIL("* 1 FETCH (UID 0)\r\n", STRICT, IMK_ERANGE, 15, "expected a non-zero number, found 0");

    /* Q23 accepted (IMK_QUIRK_NEGATIVE_NUMBER), via parse_body */
    r = OK("* 1 FETCH (BODY (\"multipart\" \"parallel\" (\"boundary\" \"x\") NIL NIL \"7BIT\" "
           "-1))\r\n");
    CHECK(r->u.fetch.body != NULL && r->u.fetch.body->size == 0);
    HAS_QUIRK(r, IMK_QUIRK_NEGATIVE_NUMBER);
    FAIL("* 1 FETCH (BODY (\"multipart\" \"parallel\" (\"boundary\" \"x\") NIL NIL \"7BIT\" "
         "-1))\r\n",
         STRICT, IMK_EPARSE, 72,
         "expected body-fld-octets (number) in body part 1, found \"-1))\"");

    /* Q24 accepted */
    r = OK("* 1 FETCH (UID 5 MODSEQ (-1))\r\n");
    CHECK(r->u.fetch.present & IMK_FETCH_MODSEQ);
    CHECK_INT(r->u.fetch.modseq, 0);
    HAS_QUIRK(r, IMK_QUIRK_NEGATIVE_NUMBER);
    FAIL("* 1 FETCH (UID 5 MODSEQ (-1))\r\n", STRICT, IMK_EPARSE, 25,
         "expected number, found "
         "\"-1))\"");

    /* Q25 accepted (IMK_QUIRK_FLOAT_NUMBER), via parse_body */
    r = OK("* 1 FETCH (BODY (\"application\" \"pdf\" NIL NIL NIL \"base64\" 9.3736e+06))\r\n");
    CHECK(r->u.fetch.body != NULL && r->u.fetch.body->size == 9373600);
    HAS_QUIRK(r, IMK_QUIRK_FLOAT_NUMBER);
    r = OK("* 1 FETCH (BODY (\"application\" \"pdf\" NIL NIL NIL \"base64\" 3.45027e+06))\r\n");
    CHECK(r->u.fetch.body != NULL && r->u.fetch.body->size == 3450270);
    FAIL("* 1 FETCH (BODY (\"application\" \"pdf\" NIL NIL NIL \"base64\" 9.3736e+06))\r\n", STRICT,
         IMK_EPARSE, 59, "expected body-fld-octets (number) in body part 1, found \".3736e+06))\"");

    /* Q26 legal: 64-bit QUOTA values */
    r = OKQ("* QUOTA \"\" (STORAGE 17179869184 9223372036854775807)\r\n", STRICT);
    CHECK(r->u.quota.resources[0].usage == 17179869184ull);
    CHECK(r->u.quota.resources[0].limit == 9223372036854775807ull);
    NO_QUIRKS(r);

    /* 64-bit overflow */
    r = OK("* 18446744073709551615 EXISTS\r\n");
    CHECK(r->number == UINT64_MAX);
    FAIL("* 18446744073709551616 EXISTS\r\n", QD, IMK_ERANGE, 2,
         "number out of range: more than 18446744073709551615");
    r = OK("* 1 FETCH (RFC822.SIZE 18446744073709551615)\r\n");
    CHECK(r->u.fetch.rfc822_size == UINT64_MAX);
    FAIL("* 1 FETCH (RFC822.SIZE 18446744073709551616)\r\n", QD, IMK_ERANGE, 23,
         "number out of range: more than 18446744073709551615");
    FAIL("* OK [HIGHESTMODSEQ 99999999999999999999] x\r\n", STRICT, IMK_ERANGE, 20,
         "number out of range: more than 18446744073709551615");
    FAIL("* 1 FETCH (BODY[] {18446744073709551616}\r\n)\r\n", QD, IMK_ERANGE, 19,
         "number out of range: more than 18446744073709551615");
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.5: literals and FETCH framing                           */
/* ------------------------------------------------------------------ */

static void test_quirks_fetch_framing(void)
{
    const imk_response *r;

    /* Q36: a literal that announces more than the response holds is an
     * error, never a read past the end */
    FAIL("* 1 FETCH (BODY[] {225752}\r\nshort)\r\n", QD, IMK_EPARSE, 18,
         "expected a literal no longer than the rest of the response, found "
         "\"{225752}\"");
    FAIL("* 1 FETCH (BODY[] {9}\r\nabc)\r\n", QD, IMK_EPARSE, 18, NULL);
    r = OK("* 1 FETCH (BODY[] {6}\r\nabc)\r\n)\r\n");
    if (r->u.fetch.section_count == 1)
        STR_EQ(r->u.fetch.sections[0].data, "abc)\r\n");
    /* a literal of exactly what remains: no read past the end either */
    FAIL("* 1 FETCH (BODY[] {9}\r\nabc)\r\n)\r\n", QD, IMK_EPARSE, 32,
         "expected SP or \")\" after FETCH item BODY[], found end of data");

    /* Q37 accepted (IMK_QUIRK_FETCH_TRAILER): ")" right after the literal,
     * the other items after it on the line */
    r = OK("* 1 FETCH (UID 5 BODY[] {5}\r\nhello) FLAGS (\\Seen) RFC822.SIZE 5\r\n");
    CHECK_INT(r->u.fetch.present, IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_RFC822_SIZE);
    CHECK_INT(r->u.fetch.rfc822_size, 5);
    CHECK_STR(dump_strlist(r->u.fetch.flags), "\\Seen");
    HAS_QUIRK(r, IMK_QUIRK_FETCH_TRAILER);
    FAIL("* 1 FETCH (UID 5 BODY[] {5}\r\nhello) FLAGS (\\Seen) RFC822.SIZE 5\r\n", STRICT,
         IMK_EPARSE, 35, "expected CRLF at the end of the response, found SP");
    r = OK("* 1 FETCH (UID 5 BODY[] {5}\r\nhello) FLAGS (\\Seen) RFC822.SIZE 5)\r\n");
    CHECK_INT(r->u.fetch.rfc822_size, 5);

    /* Q38 accepted (IMK_QUIRK_EMPTY_ITEM): "BODY[1] )" -> empty data */
    r = OK("* 1 FETCH (UID 7 BODY[1] )\r\n");
    CHECK_INT(r->u.fetch.section_count, 1);
    if (r->u.fetch.section_count == 1) {
        STR_EQ(r->u.fetch.sections[0].spec, "1");
        CHECK(r->u.fetch.sections[0].data.data != NULL);
        CHECK_INT(r->u.fetch.sections[0].data.len, 0);
    }
    HAS_QUIRK(r, IMK_QUIRK_EMPTY_ITEM);
    FAIL("* 1 FETCH (UID 7 BODY[1] )\r\n", STRICT, IMK_EPARSE, 25,
         "expected a string, literal or NIL as the value of FETCH item BODY[1], found \")\"");

    /* Q39 accepted (IMK_QUIRK_FETCH_TRAILER): no SP after a literal */
    r = OK("* 4 FETCH (BODY[] {11}\r\nHi\r\n\r\nbye\r\nUID 12 FLAGS (\\Seen))\r\n");
    CHECK_INT(r->u.fetch.uid, 12);
    CHECK_STR(dump_strlist(r->u.fetch.flags), "\\Seen");
    if (r->u.fetch.section_count == 1)
        STR_EQ(r->u.fetch.sections[0].data, "Hi\r\n\r\nbye\r\n");
    HAS_QUIRK(r, IMK_QUIRK_FETCH_TRAILER);
    FAIL("* 4 FETCH (BODY[] {11}\r\nHi\r\n\r\nbye\r\nUID 12 FLAGS (\\Seen))\r\n", STRICT,
         IMK_EPARSE, 35,
         "expected SP or \")\" after FETCH item BODY[], found \"UID 12 FLAGS "
         "(\\\\Seen))\"");
    /* the Gmail variant has the SP: legal */
    r = OKQ("* 28942 FETCH (UID 37383 RFC822 {3}\r\nabc FLAGS (\\Seen))\r\n", STRICT);
    CHECK_INT(r->u.fetch.uid, 37383);
    NO_QUIRKS(r);

    /* Q40 legal: a tagged OK with no FETCH data at all */
    r = OKQ("00005 OK FETCH completed.\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_OK);
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.6: mailbox names                                        */
/* ------------------------------------------------------------------ */

static void test_quirks_mailbox_names(void)
{
    const imk_response *r;

    /* Q41 accepted (IMK_QUIRK_ATOM_MAILBOX): unquoted name with TABs */
    r = OK("* LIST (\\HasNoChildren) \"/\" INBOX/Da\tOggetto\tRicevuto\tDimensione\tCategorie\t"
           "\r\n");
    STR_EQ(r->u.list.mailbox_raw, "INBOX/Da\tOggetto\tRicevuto\tDimensione\tCategorie\t");
    STR_EQ(r->u.list.mailbox, "INBOX/Da\tOggetto\tRicevuto\tDimensione\tCategorie\t");
    CHECK_INT(r->u.list.mailbox_not_utf7, 1); /* TAB is not modified UTF-7 */
    HAS_QUIRK(r, IMK_QUIRK_ATOM_MAILBOX);
    FAIL("* LIST (\\HasNoChildren) \"/\" INBOX/Da\tOggetto\tRicevuto\tDimensione\tCategorie\t"
         "\r\n",
         STRICT, IMK_EPARSE, 36,
         "expected CRLF at the end of the response, found "
         "\"\\x09Oggetto\\x09Ricevuto\\x09Dimens\"...");
    r = OK("* LIST () \"/\" My Folder\r\n");
    STR_EQ(r->u.list.mailbox, "My Folder");
    HAS_QUIRK(r, IMK_QUIRK_ATOM_MAILBOX);
    /* the quoted form with a raw TAB is legal */
    r = OKQ("* LIST (\\HasNoChildren) \"/\" \"INBOX/ \tExample \"\r\n", STRICT);
    STR_EQ(r->u.list.mailbox_raw, "INBOX/ \tExample ");
    r = OKQ("A010 BAD Command Argument Error. 11\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_BAD);

    /* Q42 legal: the name as a literal */
    r = OKQ("* LIST (\\HasNoChildren) \"/\" {7}\r\nHell\"oh\r\n", STRICT);
    STR_EQ(r->u.list.mailbox, "Hell\"oh");

    /* Q43 legal astrings */
    r = OKQ("* LIST (\\HasChildren) \".\" [Gmail]\r\n", STRICT);
    STR_EQ(r->u.list.mailbox, "[Gmail]");
    r = OKQ("* LIST (\\UnMarked) \".\" INBOX.[Airmail].Snooze\r\n", STRICT);
    STR_EQ(r->u.list.mailbox, "INBOX.[Airmail].Snooze");
    r = OKQ("* LIST (\\HasNoChildren) \"/\" +SaneLater\r\n", STRICT);
    STR_EQ(r->u.list.mailbox, "+SaneLater");
    r = OKQ("* LIST (\\HasNoChildren) \"/\" NIL\r\n", STRICT);
    STR_EQ(r->u.list.mailbox, "NIL");
    CHECK(r->u.list.mailbox.data != NULL);
    /* malformed extended data after a legal name is an error, not Q41 */
    FAIL("* LIST (\\HasNoChildren) \"/\" [Gmail]/Sent ( \"CHILDINFO\" )\r\n", QD, IMK_EPARSE, 42,
         "expected an astring (atom, quoted string or literal), found SP");
}

/* ------------------------------------------------------------------ */
/* QUIRKS.md 6.7: capabilities and extensions                          */
/* ------------------------------------------------------------------ */

static void test_quirks_extensions(void)
{
    const imk_response *r;

    /* Q44 accepted (IMK_QUIRK_CAPABILITY_SPACE): "LITERAL +" joined. The
     * bytes are grammatical ("+" is an atom), so strict mode does not
     * fail: it delivers the two tokens as sent. */
    r = OK("* CAPABILITY IMAP4rev1 LITERAL + IDLE\r\n");
    CHECK_STR(dump_strlist(r->u.capability), "IMAP4rev1 LITERAL+ IDLE");
    HAS_QUIRK(r, IMK_QUIRK_CAPABILITY_SPACE);
    r = OKQ("* CAPABILITY IMAP4rev1 LITERAL + IDLE\r\n", STRICT);
    CHECK_STR(dump_strlist(r->u.capability), "IMAP4rev1 LITERAL + IDLE");
    NO_QUIRKS(r);
    r = OK("* OK [CAPABILITY IMAP4rev1 LITERAL +] ready\r\n");
    CHECK(r->code && r->code->list.count == 2);
    if (r->code)
        STR_EQ(r->code->list.items[1], "LITERAL+");

    /* Q45 legal: ENABLE answered without ENABLED; iCloud's BAD */
    r = OKQ("3 OK ENABLE completed\r\n", STRICT);
    STR_EQ(r->tag, "3");
    r = OKQ("4 BAD Unexpected extra arguments\r\n", STRICT);
    CHECK_INT(r->status, IMK_STATUS_BAD);

    /* Q47: "(TAG ...) UID" with no return data is legal */
    r = OKQ("* ESEARCH (TAG \"A00000008\") UID\r\n", STRICT);
    STR_EQ(r->u.esearch.tag, "A00000008");
    CHECK_INT(r->u.esearch.uid, 1);
    CHECK_INT(r->u.esearch.present, 0);
    /* Cyrus 2.4 answers with SEARCH: legal, a SEARCH response */
    r = OKQ("* SEARCH 1 2\r\n", STRICT);
    CHECK_INT(r->kind, IMK_KIND_SEARCH);
    /* parenthesised MODSEQ accepted (IMK_QUIRK_ESEARCH_MODSEQ) */
    r = OK("* ESEARCH (TAG \"A00000012\") UID ALL 33866,33897,33906 (MODSEQ 284535)\r\n");
    CHECK_INT(r->u.esearch.present, IMK_ESEARCH_ALL | IMK_ESEARCH_MODSEQ);
    CHECK_INT(r->u.esearch.modseq, 284535);
    CHECK_STR(dump_set(r->u.esearch.all), "33866,33897,33906");
    HAS_QUIRK(r, IMK_QUIRK_ESEARCH_MODSEQ);
    FAIL("* ESEARCH (TAG \"A00000012\") UID ALL 33866,33897,33906 (MODSEQ 284535)\r\n", STRICT,
         IMK_EPARSE, 54,
         "expected an ESEARCH return data name, found \"(MODSEQ "
         "284535)\"");
    /* RFC 5465's "(COUNT 17)" example, under the same switch */
    r = OK("* ESEARCH (TAG \"a00\") (COUNT 17)\r\n");
    CHECK_INT(r->u.esearch.count, 17);
    HAS_QUIRK(r, IMK_QUIRK_ESEARCH_MODSEQ);
    r = OK("* ESEARCH (TAG \"a00\") ADDTO (0 93)\r\n");
    CHECK_INT(r->u.esearch.update_count, 1);
    /* the NO/BAD answers of arcor.de and ionos are legal */
    r = OKQ("A1 NO [SERVERBUG] x\r\n", STRICT);
    r = OKQ("A2 BAD expected search-key instead of RETURN\r\n", STRICT);
}

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

static void test_limits(void)
{
    const imk_response *r;

    g_limits.max_depth = 3;
    r = OK("* XFOO (((a)))\r\n");
    CHECK_DUMP(dump(r->u.generic), "((((a))))");
    FAIL("* XFOO ((((a))))\r\n", QD, IMK_ELIMIT, 10, "lists nested deeper than max_depth allows");
    /* FETCH's own list counts: depth 3 = (FLAGS (..)) fine, BODY deeper */
    r = OK("* 1 FETCH (FLAGS (\\Seen) MODSEQ (1))\r\n");
    CHECK_INT(r->u.fetch.flags.count, 1);
    FAIL("* 1 FETCH (X ((((1)))))\r\n", QD, IMK_ELIMIT, 15,
         "lists nested deeper than max_depth allows");
    g_limits.max_depth = 64;

    g_limits.max_list_items = 5;
    r = OK("* SEARCH 1 2 3 4 5\r\n");
    CHECK_INT(r->u.search.count, 5);
    FAIL("* SEARCH 1 2 3 4 5 6\r\n", QD, IMK_ELIMIT, 19,
         "more items in one list than max_list_items allows");
    r = OK("* FLAGS (a b c d e)\r\n");
    CHECK_INT(r->u.flags.count, 5);
    FAIL("* FLAGS (a b c d e f)\r\n", QD, IMK_ELIMIT, 19,
         "more items in one list than max_list_items allows");
    r = OK("* XFOO (1 2 3 4 5)\r\n");
    FAIL("* XFOO (1 2 3 4 5 6)\r\n", QD, IMK_ELIMIT, 18,
         "more items in one list than max_list_items allows");
    r = OK("* VANISHED 1,2,3,4,5\r\n");
    FAIL("* VANISHED 1,2,3,4,5,6\r\n", QD, IMK_ELIMIT, 21,
         "more items in one list than max_list_items allows");
    r = OK("* THREAD (1)(2)(3)(4)(5)\r\n");
    FAIL("* THREAD (1)(2)(3)(4)(5)(6)\r\n", QD, IMK_ELIMIT, 24,
         "more items in one list than max_list_items allows");
    g_limits.max_list_items = 1000000;

    /* a long SEARCH: the vector doubles inside the arena */
    {
        static char big[8 * 20000 + 32];
        size_t at = (size_t)snprintf(big, sizeof(big), "* SEARCH");
        for (unsigned i = 1; i <= 20000; i++)
            at += (size_t)snprintf(big + at, sizeof(big) - at, " %u", i);
        at += (size_t)snprintf(big + at, sizeof(big) - at, "\r\n");
        r = parse_ok_(big, at, QD, NULL, 0, __LINE__);
        CHECK_INT(r->u.search.count, 20000);
        if (r->u.search.count == 20000)
            CHECK_INT(r->u.search.numbers[19999], 20000);
    }
}

/* ------------------------------------------------------------------ */
/* Robustness: every prefix, lying literals, streamed table misuse     */
/* ------------------------------------------------------------------ */

static const char *const robust_inputs[] = {
    "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 "
    "UID 7 MODSEQ (5) BODY[1]<0> {3}\r\nabc BINARY[2] ~{2}\r\nxy)\r\n",
    "* OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
    "* LIST (\\Marked) \":\" Tables (tablecloth ((\"edge\" \"lacy\") (\"color\" \"red\")) "
    "Sample \"text\")\r\n",
    "* ESEARCH (TAG \"C01\") UID ADDTO (1 2733 1 2732) PARTIAL (-1:-100 1:5) COUNT 3\r\n",
    "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
    "* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL NIL\r\n",
    "* STATUS \"&ZeVnLIqe-\" (MESSAGES 1 MAILBOXID (F1) APPENDLIMIT NIL)\r\n",
    "A1 OK [INPROGRESS (\"A1\" 1 2)] x\r\n",
    "* XFOO {3}\r\nabc (\"q\\\"\" NIL)\r\n",
};

static void test_every_prefix(void)
{
    for (size_t i = 0; i < sizeof(robust_inputs) / sizeof(robust_inputs[0]); i++) {
        size_t len = strlen(robust_inputs[i]);
        const imk_response *r = parse_ok_(robust_inputs[i], len, QD, NULL, 0, __LINE__);
        (void)r;
        for (size_t n = 0; n < len; n++) {
            imk_response *out;
            int rc = parse_raw(robust_inputs[i], n, QD, NULL, 0, &out);
            test_checks++;
            if (rc >= 0 || g_ctx.err_code != rc || g_ctx.err_msg == NULL || g_ctx.err_pos > n) {
                test_failures++;
                fprintf(stderr, "%s:%d: prefix %zu of input %zu: rc %d pos %zu\n", __FILE__,
                        __LINE__, n, i, rc, g_ctx.err_pos);
            }
        }
    }
}

static void test_streamed_table(void)
{
    /* an entry for an offset the parser never reaches is ignored; a
     * streamed literal where a plain string is required is an error */
    static const char a[] = "* 1 FETCH (BODY[] {3}\r\nabc)\r\n";
    imk__streamed st = {500, 3};
    const imk_response *r = OKS(a, &st, 1);
    if (r->u.fetch.section_count == 1)
        STR_EQ(r->u.fetch.sections[0].data, "abc");

    static const char b[] = "* 1 FETCH (ENVELOPE {3}\r\n)\r\n";
    imk__streamed st2 = {20, 3};
    imk_response *out;
    int rc = parse_raw(b, sizeof(b) - 1, QD, &st2, 1, &out);
    CHECK_INT(rc, IMK_EPARSE);

    static const char c[] = "* XFOO {3}\r\n\r\n";
    imk__streamed st3 = {7, 3};
    r = OKS(c, &st3, 1);
    CHECK_DUMP(dump(r->u.generic), "({3}S)");
}

/* ------------------------------------------------------------------ */
/* Allocation failure                                                  */
/* ------------------------------------------------------------------ */

static const char *const alloc_inputs[] = {
    "* 12 FETCH (FLAGS (\\Seen \\Answered $Forwarded) UID 77 MODSEQ (9) X-GM-LABELS (a b) "
    "BODY[HEADER.FIELDS (FROM)] {4}\r\nab\r\n ENVELOPE (\"d\" \"s\" ((\"n\" NIL \"m\" \"h\")) "
    "NIL NIL NIL NIL NIL NIL \"<id>\") BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" "
    "\"US-ASCII\") NIL NIL \"7BIT\" 10 1)(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 20) "
    "\"MIXED\"))\r\n",
    "* OK [PERMANENTFLAGS (\\Seen \\*)] x\r\n",
    "A4 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"&ZeVnLIqe-\" (\"CHILDINFO\" (\"SUBSCRIBED\") X (1))\r\n",
    "* STATUS \"&ZeVnLIqe-\" (MESSAGES 1 XFOO 2)\r\n",
    "* ESEARCH (TAG \"x\") UID ALL 1:3,5 ADDTO (1 2) XRET (a)\r\n",
    "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n",
    "* NAMESPACE ((\"\" \"/\" \"X\" (\"a\"))) NIL NIL\r\n",
    "* ID (\"name\" \"Cyrus\" \"version\" NIL)\r\n",
    "* QUOTA \"\" (STORAGE 10 512 MESSAGE 1 2)\r\n",
    "* CAPABILITY IMAP4rev1 LITERAL + IDLE AUTH=PLAIN\r\n",
    "* XFOO (a (b \"c\\\\\")) NIL {2}\r\nxy\r\n",
    "* 1 FETCH (UID 5x)\r\n", /* the error path builds its message in the arena */
};

static void test_allocation_failure(void)
{
    for (size_t i = 0; i < sizeof(alloc_inputs) / sizeof(alloc_inputs[0]); i++) {
        const char *in = alloc_inputs[i];
        size_t len = strlen(in);
        int expect_error = strstr(in, "5x") != NULL;
        int reached = 0;
        for (long fail_at = 1; fail_at < 500 && !reached; fail_at++) {
            failing_alloc fa;
            imk_allocator a = failing_allocator(&fa, fail_at);
            imk__arena ar;
            imk__arena_init(&ar, &a, 256, 0);
            char *buf = malloc(len);
            memcpy(buf, in, len);
            imk__parse_ctx ctx;
            memset(&ctx, 0, sizeof(ctx));
            ctx.limits = &g_limits;
            g_limits.quirks = QD;
            ctx.arena = &ar;
            ctx.buf = buf;
            ctx.len = len;
            imk_response *r = NULL;
            int rc = imk__parse_response(&ctx, &r);
            if (!fa.failed) {
                /* the allocation budget was enough: the normal result */
                reached = 1;
                CHECK_INT(rc, expect_error ? IMK_EPARSE : 0);
            } else if (expect_error && rc == IMK_EPARSE) {
                /* the failed allocation was the error message: static
                 * fallback, still an EPARSE with a message */
                CHECK(ctx.err_msg != NULL);
            } else {
                CHECK_INT(rc, IMK_ENOMEM);
                CHECK_INT(ctx.err_code, IMK_ENOMEM);
                CHECK(ctx.err_msg != NULL);
            }
            imk__arena_free(&ar);
            CHECK_INT(fa.live, 0);
            free(buf);
        }
        CHECK(reached);
    }
}

/* The arena keeps its blocks: after a warm-up, parsing allocates nothing -
 * also for mailbox names that need modified UTF-7 decoding. */
static void test_steady_state(void)
{
    static const char *const inputs[] = {
        "* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827 UID 447 MODSEQ (12))\r\n",
        "* LIST (\\HasNoChildren) \"/\" \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"\r\n",
        "* OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        ("* 1 FETCH (UID 9 BODY[HEADER] {5}\r\nab\r\nc ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL "
         "NIL NIL NIL))\r\n"),
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, 0);
        imk__arena ar;
        imk__arena_init(&ar, &a, 4096, 0);
        long before = 0;
        for (int round = 0; round < 50; round++) {
            imk__arena_reset(&ar);
            imk__parse_ctx ctx;
            memset(&ctx, 0, sizeof(ctx));
            g_limits.quirks = QD;
            ctx.limits = &g_limits;
            ctx.arena = &ar;
            ctx.buf = inputs[i];
            ctx.len = strlen(inputs[i]);
            imk_response *r;
            CHECK_INT(imk__parse_response(&ctx, &r), 0);
            if (round == 0)
                before = fa.count;
        }
        CHECK_INT(fa.count, before);
        imk__arena_free(&ar);
        CHECK_INT(fa.live, 0);
    }
}

int main(void)
{
    imk__alloc_init(&g_alloc, NULL);
    imk__arena_init(&g_arena, &g_alloc, 4096, 0);
    limits_reset();

    RUN(test_rfc9051_status_responses);
    RUN(test_rfc9051_response_codes);
    RUN(test_response_code_fields);
    RUN(test_rfc9051_data_responses);
    RUN(test_rfc9051_sample_fetch);
    RUN(test_fetch_items);
    RUN(test_search_sort_thread);
    RUN(test_esearch);
    RUN(test_mailbox_responses);
    RUN(test_generic);
    RUN(test_quirks_whitespace);
    RUN(test_quirks_status);
    RUN(test_quirks_numbers);
    RUN(test_quirks_fetch_framing);
    RUN(test_quirks_mailbox_names);
    RUN(test_quirks_extensions);
    RUN(test_limits);
    RUN(test_every_prefix);
    RUN(test_streamed_table);
    RUN(test_allocation_failure);
    RUN(test_steady_state);

    imk__arena_free(&g_arena);
    free(g_buf);
    return test_finish();
}
