/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/proto/parse_body.c: BODY, BODYSTRUCTURE and ENVELOPE.
 *
 * Every input is framed as the reader would hand it over (the bytes, then
 * CRLF, in a heap block of exactly that size so ASan sees any over-read),
 * parsed with imk__parse_body / imk__parse_envelope, and then the lexer must
 * be exactly at the CRLF: a parser that stops early or reads too far fails.
 *
 * Covered: the RFC 9051 and RFC 3501 examples, message/global (RFC 6855), a
 * realistic deep structure with every field asserted, extension data in all
 * its optional lengths, BODY vs BODYSTRUCTURE, each quirk of QUIRKS.md
 * Q23 Q25 Q27-Q35 (accepted and recorded with its bit; rejected cleanly
 * without it), error messages naming the field and the IMAP part number,
 * the nesting limit hit exactly, max_list_items, the arena limit, every
 * truncation of a structure, and an allocation failure at every allocation
 * (IMK_ENOMEM, no crash, nothing leaked).
 */
#include "test.h"

#include "proto/lexer.h"
#include "proto/parse_body.h"
#include "util/alloc.h"
#include "util/arena.h"

#include <stdint.h>

#define ALL_QUIRKS (~0u)

/* ---- fixture: one framed response, its arena and lexer ---- */

typedef struct fx {
    imk_allocator alloc;
    imk__arena arena;
    imk__parse_limits limits;
    imk__parse_ctx ctx;
    imk__lexer lx;
    char *buf;
    size_t len;
} fx;

static void fx_init_n(fx *f, const char *text, size_t n, unsigned quirks,
                      const imk_allocator *alloc)
{
    memset(f, 0, sizeof(*f));
    imk__alloc_init(&f->alloc, alloc);
    imk__arena_init(&f->arena, &f->alloc, 256, 0);
    f->limits.max_depth = 64;
    f->limits.max_list_items = 1000;
    f->limits.quirks = quirks;
    f->limits.utf8_mailboxes = 0;
    f->len = n + 2;
    f->buf = malloc(f->len);
    if (f->buf == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (n != 0)
        memcpy(f->buf, text, n);
    f->buf[n] = '\r';
    f->buf[n + 1] = '\n';
    f->ctx.limits = &f->limits;
    f->ctx.arena = &f->arena;
    f->ctx.buf = f->buf;
    f->ctx.len = f->len;
    imk__lex_init(&f->lx, &f->ctx);
}

static void fx_init(fx *f, const char *text, unsigned quirks)
{
    fx_init_n(f, text, strlen(text), quirks, NULL);
}

/* Re-reads the same bytes under other limits (after the caller changed
 * f->limits). */
static void fx_restart(fx *f)
{
    imk__arena_reset(&f->arena);
    f->ctx.err_code = 0;
    f->ctx.err_pos = 0;
    f->ctx.err_msg = NULL;
    imk__lex_init(&f->lx, &f->ctx);
}

static void fx_free(fx *f)
{
    imk__arena_free(&f->arena);
    free(f->buf);
    f->buf = NULL;
}

/* Parse a body; on success the lexer must sit exactly on the final CRLF. */
static int fx_body(fx *f, int extensible, const imk_body **out)
{
    *out = NULL;
    int rc = imk__parse_body(&f->lx, extensible, out);
    if (rc == 0) {
        CHECK(*out != NULL);
        CHECK_INT(f->lx.depth, 0);
        rc = imk__lex_eol(&f->lx);
    } else {
        CHECK_INT(f->ctx.err_code, rc);
        CHECK(f->ctx.err_msg != NULL);
        CHECK(f->ctx.err_pos <= f->len);
    }
    return rc;
}

static int fx_envelope(fx *f, const imk_envelope **out)
{
    *out = NULL;
    int rc = imk__parse_envelope(&f->lx, out);
    if (rc == 0) {
        CHECK(*out != NULL);
        CHECK_INT(f->lx.depth, 0);
        rc = imk__lex_eol(&f->lx);
    } else {
        CHECK_INT(f->ctx.err_code, rc);
        CHECK(f->ctx.err_msg != NULL);
    }
    return rc;
}

static int contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL) {
        fprintf(stderr, "  message: %s\n  lacks:   %s\n", haystack ? haystack : "(null)", needle);
        return 0;
    }
    return 1;
}

/* A string that must be exactly `lit` (and not NIL). */
#define CHECK_S(s, lit)                                                                            \
    do {                                                                                           \
        CHECK((s).data != NULL);                                                                   \
        CHECK_MEM((s).data, (s).len, (lit), sizeof(lit) - 1);                                      \
    } while (0)
#define CHECK_NIL(s) CHECK((s).data == NULL && (s).len == 0)
#define CHECK_FAIL(why)                                                                            \
    do {                                                                                           \
        test_checks++;                                                                             \
        test_failures++;                                                                           \
        fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, (why));                         \
    } while (0)

#define CHECK_PARAM(list, i, n, v)                                                                 \
    do {                                                                                           \
        CHECK((list).count > (i));                                                                 \
        if ((list).count > (i)) {                                                                  \
            CHECK_S((list).items[i].name, n);                                                      \
            CHECK_S((list).items[i].value, v);                                                     \
        }                                                                                          \
    } while (0)

static void check_str_or(imk_str s, const char *expect, const char *file, int line)
{
    test_checks++;
    size_t n = strlen(expect);
    if (s.data == NULL || s.len != n || memcmp(s.data, expect, n) != 0) {
        test_failures++;
        fprintf(stderr, "%s:%d: string is \"%.*s\"%s, expected \"%s\"\n", file, line, (int)s.len,
                s.data ? s.data : "", s.data ? "" : " (NIL)", expect);
    }
}
#define CHECK_STR_OR(s, e) check_str_or((s), (e), __FILE__, __LINE__)

/* An nstring: NULL `expect` means NIL. */
static void check_nstr(imk_str s, const char *expect, const char *file, int line)
{
    if (expect != NULL) {
        check_str_or(s, expect, file, line);
        return;
    }
    test_checks++;
    if (s.data != NULL || s.len != 0) {
        test_failures++;
        fprintf(stderr, "%s:%d: string is \"%.*s\", expected NIL\n", file, line, (int)s.len,
                s.data);
    }
}

static void check_addr(const imk_address *a, const char *name, const char *adl, const char *mailbox,
                       const char *host, const char *file, int line)
{
    check_nstr(a->name, name, file, line);
    check_nstr(a->adl, adl, file, line);
    check_nstr(a->mailbox, mailbox, file, line);
    check_nstr(a->host, host, file, line);
}
#define CHECK_ADDR(a, n, adl, mbox, host) check_addr(&(a), n, adl, mbox, host, __FILE__, __LINE__)

/* A single part's body-fields and lines. */
static void check_part(const imk_body *b, const char *type, const char *subtype,
                       const char *encoding, uint64_t size)
{
    CHECK_INT(b->multipart, 0);
    CHECK_STR_OR(b->type, type);
    CHECK_STR_OR(b->subtype, subtype);
    CHECK_STR_OR(b->encoding, encoding);
    CHECK_INT(b->size, size);
}

/* Parses `text` with all quirks: must succeed and record exactly `bits`. */
static const imk_body *body_quirk_ok(fx *f, const char *text, unsigned bits)
{
    const imk_body *b = NULL;
    fx_init(f, text, ALL_QUIRKS);
    int rc = fx_body(f, 1, &b);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n  error: %s\n", text, f->ctx.err_msg ? f->ctx.err_msg : "");
    CHECK_INT(f->lx.quirks_seen, bits);
    return rc == 0 ? b : NULL;
}

/* Without quirk `bit` (all others on) and with no quirks at all, `text`
 * is rejected with `code`, the message containing `msg` (if not NULL). */
static void body_rejected(const char *text, unsigned bit, int code, const char *msg)
{
    const unsigned variants[2] = {ALL_QUIRKS & ~bit, 0};
    for (int i = 0; i < 2; i++) {
        fx f;
        const imk_body *b;
        fx_init(&f, text, variants[i]);
        int rc = fx_body(&f, 1, &b);
        CHECK_INT(rc, code);
        if (msg != NULL)
            CHECK(contains(f.ctx.err_msg, msg));
        CHECK_INT(f.lx.quirks_seen & bit, 0);
        fx_free(&f);
    }
}

static void envelope_rejected(const char *text, unsigned bit, const char *msg)
{
    const unsigned variants[2] = {ALL_QUIRKS & ~bit, 0};
    for (int i = 0; i < 2; i++) {
        fx f;
        const imk_envelope *e;
        fx_init(&f, text, variants[i]);
        CHECK_INT(fx_envelope(&f, &e), IMK_EPARSE);
        if (msg != NULL)
            CHECK(contains(f.ctx.err_msg, msg));
        fx_free(&f);
    }
}

/* ------------------------------------------------------------------ */
/* RFC examples                                                        */
/* ------------------------------------------------------------------ */

/* RFC 9051 section 7.5.2 (and RFC 3501 7.4.2): a simple text message. */
static void test_rfc_text_plain(void)
{
    static const char text[] = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
                               "2279 48)";
    for (int extensible = 0; extensible <= 1; extensible++) {
        for (int q = 0; q < 2; q++) {
            fx f;
            const imk_body *b;
            fx_init(&f, text, q ? ALL_QUIRKS : 0);
            CHECK_INT(fx_body(&f, extensible, &b), 0);
            check_part(b, "TEXT", "PLAIN", "7BIT", 2279);
            CHECK_INT(b->params.count, 1);
            CHECK_PARAM(b->params, 0, "CHARSET", "US-ASCII");
            CHECK_NIL(b->id);
            CHECK_NIL(b->description);
            CHECK_INT(b->has_lines, 1);
            CHECK_INT(b->lines, 48);
            CHECK(b->envelope == NULL);
            CHECK_INT(b->part_count, 0);
            CHECK_INT(b->has_ext, 0);
            CHECK_INT(b->languages.count, 0);
            CHECK_INT(f.lx.quirks_seen, 0);
            /* strings point into the response buffer: no copies */
            CHECK(b->type.data > f.buf && b->type.data < f.buf + f.len);
            fx_free(&f);
        }
    }
}

static void check_rfc_mixed(const imk_body *b)
{
    CHECK_INT(b->multipart, 1);
    CHECK_S(b->type, "MULTIPART");
    CHECK_S(b->subtype, "MIXED");
    CHECK_INT(b->part_count, 2);
    CHECK_INT(b->has_ext, 0);
    if (b->part_count != 2)
        return;
    const imk_body *p1 = &b->parts[0], *p2 = &b->parts[1];
    check_part(p1, "TEXT", "PLAIN", "7BIT", 1152);
    CHECK_INT(p1->lines, 23);
    CHECK_PARAM(p1->params, 0, "CHARSET", "US-ASCII");
    check_part(p2, "TEXT", "PLAIN", "BASE64", 4554);
    CHECK_INT(p2->lines, 73);
    CHECK_INT(p2->params.count, 2);
    CHECK_PARAM(p2->params, 0, "CHARSET", "US-ASCII");
    CHECK_PARAM(p2->params, 1, "NAME", "cc.diff");
    CHECK_S(p2->id, "<960723163407.20117h@cac.washington.edu>");
    CHECK_S(p2->description, "Compiler diff");
}

/* RFC 3501 section 7.4.2: the two-part example, children adjacent. RFC
 * 9051 prints the same structure with a line break between the children;
 * read as a space that is outside the grammar (1*body has no SP) and is
 * accepted under IMK_QUIRK_EXTRA_SPACES only. */
static void test_rfc_multipart_mixed(void)
{
    static const char adjacent[] =
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
        "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
        "\"MIXED\")";
    static const char spaced[] =
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23) "
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
        "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) "
        "\"MIXED\")";
    fx f;
    const imk_body *b;
    for (int extensible = 0; extensible <= 1; extensible++) {
        fx_init(&f, adjacent, 0);
        CHECK_INT(fx_body(&f, extensible, &b), 0);
        check_rfc_mixed(b);
        fx_free(&f);
    }
    b = body_quirk_ok(&f, spaced, IMK_QUIRK_EXTRA_SPACES);
    if (b != NULL)
        check_rfc_mixed(b);
    fx_free(&f);
    body_rejected(spaced, IMK_QUIRK_EXTRA_SPACES, IMK_EPARSE,
                  "expected media-subtype (string) in the top-level body");
}

/* The ENVELOPE and BODY of "fetch 12 full", RFC 3501 section 8 and RFC
 * 9051 section 8 (which has a different subject and a typo in the id). */
static void test_rfc_fetch_full(void)
{
    static const char env3501[] =
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((NIL NIL \"imap\" \"cac.washington.edu\")) "
        "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
        "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
        "\"<B27397-0100000@cac.washington.edu>\")";
    static const char env9051[] =
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
        "((NIL NIL \"imap\" \"cac.washington.edu\")) "
        "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
        "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
        "\"<B27397-0100000@cac.washington.ed>\")";
    for (int which = 0; which < 2; which++) {
        fx f;
        const imk_envelope *e;
        fx_init(&f, which == 0 ? env3501 : env9051, 0);
        CHECK_INT(fx_envelope(&f, &e), 0);
        CHECK_S(e->date, "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)");
        if (which == 0) {
            CHECK_S(e->subject, "IMAP4rev1 WG mtg summary and minutes");
            CHECK_S(e->message_id, "<B27397-0100000@cac.washington.edu>");
        } else {
            CHECK_S(e->subject, "IMAP4rev2 WG mtg summary and minutes");
            CHECK_S(e->message_id, "<B27397-0100000@cac.washington.ed>");
        }
        CHECK_INT(e->from.count, 1);
        CHECK_ADDR(e->from.items[0], "Terry Gray", NULL, "gray", "cac.washington.edu");
        CHECK_INT(e->sender.count, 1);
        CHECK_ADDR(e->sender.items[0], "Terry Gray", NULL, "gray", "cac.washington.edu");
        CHECK_INT(e->reply_to.count, 1);
        CHECK_ADDR(e->reply_to.items[0], "Terry Gray", NULL, "gray", "cac.washington.edu");
        CHECK_INT(e->to.count, 1);
        CHECK_ADDR(e->to.items[0], NULL, NULL, "imap", "cac.washington.edu");
        CHECK_INT(e->cc.count, 2);
        CHECK_ADDR(e->cc.items[0], NULL, NULL, "minutes", "CNRI.Reston.VA.US");
        CHECK_ADDR(e->cc.items[1], "John Klensin", NULL, "KLENSIN", "MIT.EDU");
        CHECK_INT(e->bcc.count, 0);
        CHECK(e->bcc.items == NULL);
        CHECK_NIL(e->in_reply_to);
        CHECK_INT(f.lx.quirks_seen, 0);
        fx_free(&f);
    }

    fx f;
    const imk_body *b;
    fx_init(&f, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)", 0);
    CHECK_INT(fx_body(&f, 0, &b), 0);
    check_part(b, "TEXT", "PLAIN", "7BIT", 3028);
    CHECK_INT(b->lines, 92);
    fx_free(&f);
}

/* Group syntax (RFC 9051 section 7.5.2), literals, escapes, NIL fields. */
static void test_envelope_forms(void)
{
    fx f;
    const imk_envelope *e;
    fx_init(&f,
            "(NIL {10}\r\nhello\r\nyou ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))"
            " NIL NIL ((\"A \\\"quoted\\\" \\\\ name\" \"@relay.example:\" \"a\" \"b.example\"))"
            " NIL NIL \"<x@y>\" NIL)",
            0);
    CHECK_INT(fx_envelope(&f, &e), 0);
    if (e == NULL) {
        fx_free(&f);
        return;
    }
    CHECK_NIL(e->date);
    CHECK_S(e->subject, "hello\r\nyou");
    CHECK_INT(e->from.count, 2);
    CHECK_ADDR(e->from.items[0], NULL, NULL, "undisclosed-recipients", NULL);
    CHECK_ADDR(e->from.items[1], NULL, NULL, NULL, NULL);
    CHECK_INT(e->sender.count, 0);
    CHECK_INT(e->reply_to.count, 0);
    CHECK_INT(e->to.count, 1);
    CHECK_ADDR(e->to.items[0], "A \"quoted\" \\ name", "@relay.example:", "a", "b.example");
    CHECK_S(e->in_reply_to, "<x@y>");
    CHECK_NIL(e->message_id);
    fx_free(&f);

    /* strict failures name the field, "in ENVELOPE" */
    envelope_rejected("(NIL NIL BAD NIL NIL NIL NIL NIL NIL NIL)", 0,
                      "expected env-from (address list or NIL) in ENVELOPE");
    envelope_rejected("(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", 0,
                      "expected \")\" after env-message-id in ENVELOPE");
    envelope_rejected("(NIL NIL ((NIL NIL \"a\")) NIL NIL NIL NIL NIL NIL NIL)", 0,
                      "expected SP before addr-host in ENVELOPE");
    envelope_rejected("(NIL NIL ((NIL NIL \"a\" \"b\" \"c\")) NIL NIL NIL NIL NIL NIL NIL)", 0,
                      "expected \")\" after addr-host in ENVELOPE");
    envelope_rejected("NIL", 0, "expected envelope (\"(\") in ENVELOPE");
}

/* RFC 6855: message/global carries an envelope and body like rfc822. */
static void test_message_global(void)
{
    fx f;
    const imk_body *b;
    fx_init(&f,
            "(\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"8BIT\" 512 (NIL \"\xc3\xa9t\xc3\xa9\" NIL NIL "
            "NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"8BIT\" "
            "100 4) 12)",
            0);
    CHECK_INT(fx_body(&f, 1, &b), 0);
    check_part(b, "MESSAGE", "GLOBAL", "8BIT", 512);
    CHECK(b->envelope != NULL);
    if (b->envelope != NULL)
        CHECK_S(b->envelope->subject, "\xc3\xa9t\xc3\xa9");
    CHECK_INT(b->part_count, 1);
    if (b->part_count == 1) {
        check_part(&b->parts[0], "TEXT", "PLAIN", "8BIT", 100);
        CHECK_INT(b->parts[0].lines, 4);
    }
    CHECK_INT(b->has_lines, 1);
    CHECK_INT(b->lines, 12);
    CHECK_INT(b->has_ext, 0);
    fx_free(&f);
}

/* ------------------------------------------------------------------ */
/* A realistic deep structure                                          */
/* ------------------------------------------------------------------ */

/*
 * multipart/mixed                                           (top level)
 *   1   multipart/alternative
 *   1.1   text/plain
 *   1.2   text/html
 *   2   message/rfc822 (envelope)
 *         multipart/mixed                                   (2)
 *   2.1     text/plain
 *   2.2     application/pdf (md5, disposition, languages, location, extensions)
 */
static const char deep[] =
    "("
    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\" \"FORMAT\" \"flowed\") NIL NIL "
    "\"QUOTED-PRINTABLE\" 1200 30 NIL NIL NIL NIL)"
    "(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 5400 110 NIL NIL "
    "NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"alt-b\") NIL NIL NIL)"
    "(\"MESSAGE\" \"RFC822\" (\"NAME\" \"fwd.eml\") \"<part2@example.com>\" "
    "\"Forwarded message\" \"7BIT\" 9000 "
    "(\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \"Report\" "
    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) "
    "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) NIL "
    "((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL "
    "\"<B27397-0100000@Blurdybloop.example>\") "
    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 300 8 NIL NIL NIL NIL)"
    "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<pdf@x>\" NIL \"BASE64\" 4096 "
    "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\" \"SIZE\" "
    "\"3000\")) (\"EN\" \"DE\") \"http://example.com/report.pdf\" 42 \"future\" "
    "(1 \"two\" NIL)) \"MIXED\" (\"BOUNDARY\" \"inner-b\") NIL \"EN\") "
    "180 \"md5sum\" (\"ATTACHMENT\" (\"FILENAME\" \"fwd.eml\")) NIL NIL)"
    " \"MIXED\" (\"BOUNDARY\" \"outer-b\") (\"INLINE\" NIL) (\"EN\" \"FR\") \"loc\")";

static void check_deep(const imk_body *b, int extensible)
{
    CHECK_INT(b->multipart, 1);
    CHECK_S(b->type, "MULTIPART");
    CHECK_S(b->subtype, "MIXED");
    CHECK_INT(b->part_count, 2);
    CHECK_INT(b->has_ext, extensible);
    if (extensible) {
        CHECK_INT(b->params.count, 1);
        CHECK_PARAM(b->params, 0, "BOUNDARY", "outer-b");
        CHECK_S(b->disposition, "INLINE");
        CHECK_INT(b->disposition_params.count, 0);
        CHECK_INT(b->languages.count, 2);
        if (b->languages.count == 2) {
            CHECK_S(b->languages.items[0], "EN");
            CHECK_S(b->languages.items[1], "FR");
        }
        CHECK_S(b->location, "loc");
        CHECK_INT(b->extension_count, 0);
    } else {
        CHECK_INT(b->params.count, 0);
        CHECK_NIL(b->disposition);
        CHECK_INT(b->languages.count, 0);
        CHECK_NIL(b->location);
    }
    if (b->part_count != 2)
        return;

    /* 1: multipart/alternative */
    const imk_body *alt = &b->parts[0];
    CHECK_INT(alt->multipart, 1);
    CHECK_S(alt->subtype, "ALTERNATIVE");
    CHECK_INT(alt->part_count, 2);
    CHECK_INT(alt->has_ext, extensible);
    if (extensible) {
        CHECK_PARAM(alt->params, 0, "BOUNDARY", "alt-b");
        CHECK_NIL(alt->disposition);
        CHECK_INT(alt->languages.count, 0);
        CHECK_NIL(alt->location);
    }
    if (alt->part_count == 2) {
        const imk_body *plain = &alt->parts[0], *html = &alt->parts[1];
        check_part(plain, "TEXT", "PLAIN", "QUOTED-PRINTABLE", 1200);
        CHECK_INT(plain->lines, 30);
        CHECK_INT(plain->params.count, 2);
        CHECK_PARAM(plain->params, 0, "CHARSET", "UTF-8");
        CHECK_PARAM(plain->params, 1, "FORMAT", "flowed");
        CHECK_INT(plain->has_ext, extensible);
        CHECK_NIL(plain->md5);
        check_part(html, "TEXT", "HTML", "QUOTED-PRINTABLE", 5400);
        CHECK_INT(html->lines, 110);
        CHECK_INT(html->part_count, 0);
    }

    /* 2: message/rfc822 */
    const imk_body *msg = &b->parts[1];
    check_part(msg, "MESSAGE", "RFC822", "7BIT", 9000);
    CHECK_PARAM(msg->params, 0, "NAME", "fwd.eml");
    CHECK_S(msg->id, "<part2@example.com>");
    CHECK_S(msg->description, "Forwarded message");
    CHECK_INT(msg->has_lines, 1);
    CHECK_INT(msg->lines, 180);
    CHECK_INT(msg->has_ext, extensible);
    if (extensible) {
        CHECK_S(msg->md5, "md5sum");
        CHECK_S(msg->disposition, "ATTACHMENT");
        CHECK_PARAM(msg->disposition_params, 0, "FILENAME", "fwd.eml");
        CHECK_INT(msg->languages.count, 0);
        CHECK_NIL(msg->location);
    } else {
        CHECK_NIL(msg->md5);
        CHECK_NIL(msg->disposition);
    }
    const imk_envelope *e = msg->envelope;
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK_S(e->date, "Mon, 7 Feb 1994 21:52:25 -0800 (PST)");
        CHECK_S(e->subject, "Report");
        CHECK_INT(e->from.count, 1);
        CHECK_ADDR(e->from.items[0], "Fred Foobar", NULL, "foobar", "Blurdybloop.example");
        CHECK_INT(e->sender.count, 1);
        CHECK_INT(e->reply_to.count, 0);
        CHECK_INT(e->to.count, 1);
        CHECK_ADDR(e->to.items[0], NULL, NULL, "mooch", "owatagu.siam.edu.example");
        CHECK_INT(e->cc.count, 0);
        CHECK_INT(e->bcc.count, 0);
        CHECK_NIL(e->in_reply_to);
        CHECK_S(e->message_id, "<B27397-0100000@Blurdybloop.example>");
    }
    CHECK_INT(msg->part_count, 1);
    if (msg->part_count != 1)
        return;
    const imk_body *inner = &msg->parts[0];
    CHECK_INT(inner->multipart, 1);
    CHECK_S(inner->subtype, "MIXED");
    CHECK_INT(inner->part_count, 2);
    if (extensible) {
        CHECK_PARAM(inner->params, 0, "BOUNDARY", "inner-b");
        CHECK_NIL(inner->disposition);
        CHECK_INT(inner->languages.count, 1);
        if (inner->languages.count == 1)
            CHECK_S(inner->languages.items[0], "EN");
        CHECK_NIL(inner->location);
    }
    if (inner->part_count != 2)
        return;
    check_part(&inner->parts[0], "TEXT", "PLAIN", "7BIT", 300);
    CHECK_INT(inner->parts[0].lines, 8);
    const imk_body *pdf = &inner->parts[1];
    check_part(pdf, "APPLICATION", "PDF", "BASE64", 4096);
    CHECK_INT(pdf->has_lines, 0);
    CHECK_PARAM(pdf->params, 0, "NAME", "report.pdf");
    CHECK_S(pdf->id, "<pdf@x>");
    CHECK_NIL(pdf->description);
    CHECK_INT(pdf->has_ext, extensible);
    if (!extensible) {
        CHECK_INT(pdf->extension_count, 0);
        return;
    }
    CHECK_S(pdf->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
    CHECK_S(pdf->disposition, "ATTACHMENT");
    CHECK_INT(pdf->disposition_params.count, 2);
    CHECK_PARAM(pdf->disposition_params, 0, "FILENAME", "report.pdf");
    CHECK_PARAM(pdf->disposition_params, 1, "SIZE", "3000");
    CHECK_INT(pdf->languages.count, 2);
    if (pdf->languages.count == 2) {
        CHECK_S(pdf->languages.items[0], "EN");
        CHECK_S(pdf->languages.items[1], "DE");
    }
    CHECK_S(pdf->location, "http://example.com/report.pdf");
    CHECK_INT(pdf->extension_count, 3);
    if (pdf->extension_count == 3) {
        CHECK_INT(pdf->extensions[0].type, IMK_VALUE_NUMBER);
        CHECK_INT(pdf->extensions[0].number, 42);
        CHECK_INT(pdf->extensions[1].type, IMK_VALUE_STRING);
        CHECK_S(pdf->extensions[1].str, "future");
        const imk_value *list = &pdf->extensions[2];
        CHECK_INT(list->type, IMK_VALUE_LIST);
        CHECK_INT(list->count, 3);
        if (list->count == 3) {
            CHECK_INT(list->items[0].type, IMK_VALUE_NUMBER);
            CHECK_INT(list->items[0].number, 1);
            CHECK_INT(list->items[1].type, IMK_VALUE_STRING);
            CHECK_S(list->items[1].str, "two");
            CHECK_INT(list->items[2].type, IMK_VALUE_NIL);
        }
    }
}

static void test_deep_structure(void)
{
    for (int extensible = 0; extensible <= 1; extensible++) {
        for (int q = 0; q < 2; q++) {
            fx f;
            const imk_body *b;
            fx_init(&f, deep, q ? ALL_QUIRKS : 0);
            CHECK_INT(fx_body(&f, extensible, &b), 0);
            if (b != NULL)
                check_deep(b, extensible);
            CHECK_INT(f.lx.quirks_seen, 0);
            fx_free(&f);
        }
    }
}

/* Every proper prefix (then CRLF) is incomplete: a clean error, never a
 * success, never a read past the buffer. */
static void test_truncations(void)
{
    size_t n = strlen(deep);
    for (size_t cut = 0; cut < n; cut++) {
        for (int q = 0; q < 2; q++) {
            fx f;
            const imk_body *b;
            fx_init_n(&f, deep, cut, q ? ALL_QUIRKS : 0, NULL);
            int rc = fx_body(&f, 1, &b);
            CHECK(rc == IMK_EPARSE);
            fx_free(&f);
        }
    }
}

/* Extension data stopping after each optional slot. */
static void test_extension_lengths(void)
{
    static const char *const single[] = {
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10)",
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10 NIL)",
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10 NIL NIL)",
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10 NIL NIL NIL)",
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10 NIL NIL NIL NIL)",
        "(\"IMAGE\" \"PNG\" NIL NIL NIL \"BASE64\" 10 NIL NIL NIL NIL NIL)",
    };
    for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        fx f;
        const imk_body *b;
        fx_init(&f, single[i], 0);
        CHECK_INT(fx_body(&f, 1, &b), 0);
        if (b != NULL) {
            check_part(b, "IMAGE", "PNG", "BASE64", 10);
            CHECK_INT(b->has_ext, i > 0);
            CHECK_INT(b->extension_count, i > 4 ? 1 : 0);
            CHECK_INT(b->has_lines, 0);
        }
        fx_free(&f);
    }
    static const char *const multi[] = {
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\")",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" NIL)",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" NIL NIL)",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" NIL NIL NIL)",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" NIL NIL NIL NIL)",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" NIL NIL NIL NIL {3}\r\nabc)",
    };
    for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++) {
        fx f;
        const imk_body *b;
        fx_init(&f, multi[i], 0);
        CHECK_INT(fx_body(&f, 1, &b), 0);
        if (b != NULL) {
            CHECK_INT(b->multipart, 1);
            CHECK_INT(b->part_count, 1);
            CHECK_INT(b->has_ext, i > 0);
            CHECK_INT(b->extension_count, i > 4 ? 1 : 0);
            if (b->extension_count == 1) {
                CHECK_INT(b->extensions[0].type, IMK_VALUE_LITERAL);
                CHECK_S(b->extensions[0].str, "abc");
            }
        }
        fx_free(&f);
    }
    /* body-fld-lang as one string, location a literal, md5 a literal */
    fx f;
    const imk_body *b;
    fx_init(&f,
            "(\"AUDIO\" \"OGG\" (\"A\" \"1\" \"B\" \"2\" \"C\" \"3\") NIL NIL \"BASE64\" 7 {2}\r\n"
            "md (\"INLINE\" NIL) \"i-klingon\" {4}\r\nhere)",
            0);
    CHECK_INT(fx_body(&f, 1, &b), 0);
    if (b != NULL) {
        CHECK_INT(b->params.count, 3);
        CHECK_PARAM(b->params, 2, "C", "3");
        CHECK_S(b->md5, "md");
        CHECK_S(b->disposition, "INLINE");
        CHECK_INT(b->languages.count, 1);
        if (b->languages.count == 1)
            CHECK_S(b->languages.items[0], "i-klingon");
        CHECK_S(b->location, "here");
    }
    fx_free(&f);
}

/* Malformed bodies that no quirk accepts: clean errors that say what was
 * expected and in which part (IMAP part numbers). */
static void test_errors_and_part_numbers(void)
{
    struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10)",
         "expected SP before body-fld-lines in body part 1"},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" X 1)",
         "expected body-fld-octets (number) in body part 1, found \"X 1)\""},
        {"((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"TEXT\" \"PLAIN\" NIL NIL NIL 7BIT 1 1) "
         "\"MIXED\")",
         "expected body-fld-enc (string) in body part 2, found \"7BIT"},
        {"(((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" "
         "1)"
         " \"ALTERNATIVE\") \"MIXED\")",
         "expected SP before body-fld-lines in body part 1.2"},
        {"((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1))",
         "expected SP before media-subtype in the top-level body"},
        {"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 10 (NIL NIL X NIL NIL NIL NIL NIL NIL NIL) "
         "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) 1)",
         "expected env-from (address list or NIL) in the envelope of body part 1"},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"X\")",
         NULL /* trailing bytes: the caller's eol check fails */},
        {"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 10 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
         " ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" "
         "1 1 NIL BAD) \"MIXED\") 1)",
         "expected body-fld-dsp (\"(\" or NIL) in body part 1.2"},
        {"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 10 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
         " (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1) 1)",
         "expected SP before body-fld-lines in body part 1.1"},
        {"(\"TEXT\" \"PLAIN\" (\"A\") NIL NIL \"7BIT\" 1 1)",
         "expected SP before parameter value (string) in body part 1"},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL (\"EN\" 1))",
         "expected language (string) in body part 1"},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"INLINE\"))",
         "expected SP before disposition parameters in body part 1"},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL ()", NULL},
        {"(1 \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)",
         "expected body type (string) or a nested body in the top-level body"},
        {"()", "expected body type (string) or a nested body in the top-level body"},
        {"NIL", "expected body (\"(\") in the top-level body"},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int q = 0; q < 2; q++) {
            fx f;
            const imk_body *b;
            fx_init(&f, cases[i].text, q ? ALL_QUIRKS : 0);
            int rc = fx_body(&f, 1, &b);
            CHECK_INT(rc, IMK_EPARSE);
            if (cases[i].msg != NULL && !contains(f.ctx.err_msg, cases[i].msg))
                CHECK_FAIL("message");
            fx_free(&f);
        }
    }

    /* Part 3.12: numbers above 9 and restored after each child. */
    char text[4096];
    size_t n = 0;
    static const char leaf[] = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)";
    static const char bad_leaf[] = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 NIL)";
    n += (size_t)snprintf(text + n, sizeof(text) - n, "(%s%s(", leaf, leaf);
    for (int i = 0; i < 11; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", leaf);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%s \"MIXED\") \"MIXED\")", bad_leaf);
    fx f;
    const imk_body *b;
    fx_init(&f, text, 0);
    CHECK_INT(fx_body(&f, 1, &b), IMK_EPARSE);
    CHECK(contains(f.ctx.err_msg, "expected body-fld-lines (number) in body part 3.12,"));
    fx_free(&f);

    /* A part number longer than the buffer kept for it is shown cut. */
    n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "(");
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", bad_leaf);
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " \"MIXED\")");
    fx_init(&f, text, 0);
    CHECK_INT(fx_body(&f, 1, &b), IMK_EPARSE);
    CHECK(contains(f.ctx.err_msg, "in body part 1.1.1.1.1.1.1.1.1.1.1.1.1"));
    CHECK(contains(f.ctx.err_msg, "..., found"));
    fx_free(&f);
}

/* ------------------------------------------------------------------ */
/* Quirks                                                              */
/* ------------------------------------------------------------------ */

/* Q23 Dovecot: -1 as a size (the bytes of QUIRKS.md, "..." as sent). */
static void test_q23_negative_size(void)
{
    static const char text[] =
        "(\"multipart\" \"parallel\" (\"boundary\" \"\xe2\x80\xa6\") NIL NIL \"7BIT\" -1)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_NEGATIVE_NUMBER);
    if (b != NULL) {
        /* As sent: a single part whose type string is "multipart". */
        check_part(b, "multipart", "parallel", "7BIT", 0);
        CHECK_PARAM(b->params, 0, "boundary", "\xe2\x80\xa6");
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_NEGATIVE_NUMBER, IMK_EPARSE,
                  "expected body-fld-octets (number) in body part 1, found \"-1)\"");

    static const char lines[] = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 -1)";
    b = body_quirk_ok(&f, lines, IMK_QUIRK_NEGATIVE_NUMBER);
    if (b != NULL)
        CHECK_INT(b->lines, 0);
    fx_free(&f);
    body_rejected(lines, IMK_QUIRK_NEGATIVE_NUMBER, IMK_EPARSE, "body-fld-lines (number)");
}

/* Q25 mail.ru: float forms. */
static void test_q25_float_size(void)
{
    static const char text[] =
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"BASE64\" 9.3736e+06 3.45027e+06)"
        "(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 3.45027e+06) \"MIXED\")";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_FLOAT_NUMBER);
    if (b != NULL && b->part_count == 2) {
        CHECK_INT(b->parts[0].size, 9373600);
        CHECK_INT(b->parts[0].lines, 3450270);
        CHECK_INT(b->parts[1].size, 3450270);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_FLOAT_NUMBER, IMK_EPARSE,
                  "expected body-fld-octets (number) in body part 1, found \".3736e+06");
}

/* Q27 Office365: NIL type and subtype. */
static void test_q27_nil_type(void)
{
    static const char text[] = "(NIL NIL NIL NIL NIL \"7BIT\" 0 NIL NIL NIL NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        check_part(b, "", "", "7BIT", 0);
        CHECK(b->type.data != NULL && b->subtype.data != NULL);
        CHECK_INT(b->has_ext, 1);
        CHECK_NIL(b->md5);
        CHECK_NIL(b->disposition);
        CHECK_INT(b->languages.count, 0);
        CHECK_NIL(b->location);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected body type (string) or a nested body in the top-level body");

    /* a string type with a NIL subtype is the same quirk (the single-part
     * reading wins over Q29's because it parses) */
    static const char subtype[] = "(\"TEXT\" NIL NIL NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)";
    b = body_quirk_ok(&f, subtype, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        check_part(b, "TEXT", "", "7BIT", 5);
        CHECK_INT(b->lines, 1);
    }
    fx_free(&f);
    body_rejected(subtype, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected media-subtype (string) in body part 1");
}

/* Q28 Dovecot: NIL instead of the children. */
static void test_q28_childless_multipart(void)
{
    static const char text[] = "(NIL \"alternative\" (\"boundary\" \"\xe2\x80\xa6\") NIL NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->multipart, 1);
        CHECK_S(b->type, "MULTIPART");
        CHECK_S(b->subtype, "alternative");
        CHECK_INT(b->part_count, 0);
        CHECK_INT(b->has_ext, 1);
        CHECK_PARAM(b->params, 0, "boundary", "\xe2\x80\xa6");
        CHECK_NIL(b->disposition);
        CHECK_INT(b->languages.count, 0);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected body type (string) or a nested body in the top-level body");

    /* NIL then a string that reads as a whole single part: Q27, not Q28 */
    static const char part[] = "(NIL \"octet-stream\" (\"name\" \"x.bin\") NIL NIL \"base64\" 10)";
    b = body_quirk_ok(&f, part, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        check_part(b, "", "octet-stream", "base64", 10);
        CHECK_PARAM(b->params, 0, "name", "x.bin");
    }
    fx_free(&f);
    body_rejected(part, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected body type (string) or a nested body in the top-level body");
    /* ... and with the location slot, still too short for a part: Q28 */
    b = body_quirk_ok(&f, "(NIL \"alternative\" (\"boundary\" \"x\") NIL NIL \"loc\")",
                      IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->multipart, 1);
        CHECK_S(b->location, "loc");
    }
    fx_free(&f);

    /* In context (jstedfast/MailKit#1393): the body of a message/rfc822. */
    static const char report[] =
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 727 16 NIL NIL NIL NIL)"
        "(\"message\" \"delivery-status\" (\"name\" \"Delivery status\") NIL NIL \"7bit\" 416 NIL "
        "NIL NIL NIL)(\"message\" \"rfc822\" (\"name\" \"Message headers\") NIL NIL \"7bit\" 903 "
        "(\"Mon, 17 Nov 2014 13:29:21 +0100\" \"Re: Adresy\" ((\"username\" NIL \"e.username\" "
        "\"example.com\")) ((\"username\" NIL \"e.username\" \"example.com\")) ((\"username\" NIL "
        "\"e.username\" \"example.com\")) ((\"=?utf-8?Q?Justyna?=\" NIL \"salesde\" "
        "\"some-company.eu\")) ((NIL NIL \"saleseu\" \"some-company.eu\")(\"Bogdan\" NIL "
        "\"bogdan\" \"some-company.eu\")) NIL \"<004901d00260$35405970$9fc10c50$@some-company.eu>"
        "\" \"<D6173425-9D71-4D78-8C3C-1CEB03BCB4D0@example.com>\") (NIL \"alternative\" "
        "(\"boundary\" \"Apple-Mail=_352FCEEC-EB15-428F-9D8B-D3B4259DD646\") NIL NIL NIL) 17 NIL "
        "NIL NIL NIL) \"report\" (\"report-type\" \"delivery-status\" \"boundary\" "
        "\"_e0d7475d888f9882b71de053e5efb221_idea\") NIL NIL NIL)";
    b = body_quirk_ok(&f, report, IMK_QUIRK_BODY_NIL);
    if (b != NULL && b->part_count == 3) {
        CHECK_S(b->subtype, "report");
        CHECK_PARAM(b->params, 0, "report-type", "delivery-status");
        check_part(&b->parts[1], "message", "delivery-status", "7bit", 416);
        const imk_body *m = &b->parts[2];
        check_part(m, "message", "rfc822", "7bit", 903);
        CHECK_INT(m->lines, 17);
        CHECK(m->envelope != NULL);
        if (m->envelope != NULL) {
            CHECK_INT(m->envelope->cc.count, 2);
            CHECK_S(m->envelope->in_reply_to, "<004901d00260$35405970$9fc10c50$@some-company.eu>");
        }
        CHECK_INT(m->part_count, 1);
        if (m->part_count == 1) {
            CHECK_INT(m->parts[0].multipart, 1);
            CHECK_INT(m->parts[0].part_count, 0);
            CHECK_S(m->parts[0].subtype, "alternative");
            CHECK_PARAM(m->parts[0].params, 0, "boundary",
                        "Apple-Mail=_352FCEEC-EB15-428F-9D8B-D3B4259DD646");
        }
    } else {
        CHECK_FAIL("report structure");
    }
    fx_free(&f);
    body_rejected(report, IMK_QUIRK_BODY_NIL, IMK_EPARSE, "in body part 3");
}

/* Q29 Gmail, Yandex, QQMail: childless multiparts without even the NIL.
 * Accepted as multipart nodes with no children: the first string is the
 * subtype, the rest the extension data. */
static void test_q29_broken_nested_multipart(void)
{
    fx f;
    const imk_body *b;

    b = body_quirk_ok(&f, "(\"RELATED\" NIL (\"ATTACHMENT\" NIL) NIL)", IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->multipart, 1);
        CHECK_S(b->type, "MULTIPART");
        CHECK_S(b->subtype, "RELATED");
        CHECK_INT(b->part_count, 0);
        CHECK_INT(b->params.count, 0);
        CHECK_S(b->disposition, "ATTACHMENT");
        CHECK_INT(b->disposition_params.count, 0);
        CHECK_INT(b->languages.count, 0);
    }
    fx_free(&f);
    body_rejected("(\"RELATED\" NIL (\"ATTACHMENT\" NIL) NIL)", IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected media-subtype (string) in body part 1");

    static const char alt[] = "(\"ALTERNATIVE\" (\"BOUNDARY\" \"==alternative_x\") NIL NIL)";
    b = body_quirk_ok(&f, alt, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->multipart, 1);
        CHECK_S(b->subtype, "ALTERNATIVE");
        CHECK_INT(b->part_count, 0);
        CHECK_PARAM(b->params, 0, "BOUNDARY", "==alternative_x");
        CHECK_NIL(b->disposition);
    }
    fx_free(&f);
    body_rejected(alt, IMK_QUIRK_BODY_NIL, IMK_EPARSE, "expected media-subtype (string)");

    b = body_quirk_ok(&f, "(\"ALTERNATIVE\")", IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->multipart, 1);
        CHECK_S(b->subtype, "ALTERNATIVE");
        CHECK_INT(b->part_count, 0);
        CHECK_INT(b->has_ext, 0);
    }
    fx_free(&f);
    body_rejected("(\"ALTERNATIVE\")", IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected SP before media-subtype");

    /* In context: jstedfast/MailKit#205 (Gmail, same boundary nested). */
    static const char gmail[] =
        "((\"ALTERNATIVE\" (\"BOUNDARY\" \"==alternative_xad5934455aeex\") NIL NIL)(\"TEXT\" "
        "\"HTML\" (\"CHARSET\" \"iso-8859-1\" \"NAME\" \"seti_letter.html\") NIL NIL \"7BIT\" 6769 "
        "171 NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"==alternative_xad5934455aeex\") NIL "
        "NIL)";
    b = body_quirk_ok(&f, gmail, IMK_QUIRK_BODY_NIL);
    if (b != NULL && b->part_count == 2) {
        CHECK_INT(b->parts[0].multipart, 1);
        CHECK_INT(b->parts[0].part_count, 0);
        check_part(&b->parts[1], "TEXT", "HTML", "7BIT", 6769);
        CHECK_INT(b->parts[1].lines, 171);
        CHECK_S(b->subtype, "ALTERNATIVE");
    } else {
        CHECK_FAIL("gmail structure");
    }
    fx_free(&f);
    body_rejected(gmail, IMK_QUIRK_BODY_NIL, IMK_EPARSE, "in body part 1");

    /* In context: jstedfast/MailKit#1841 (Gmail): ("ALTERNATIVE") as the
     * body of a message/rfc822, in a BODY (non-extensible) response. */
    static const char report[] =
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"windows-1252\") NIL NIL \"QUOTED-PRINTABLE\" 211 5)"
        "(\"MESSAGE\" \"DELIVERY-STATUS\" NIL NIL NIL \"7BIT\" 344)(\"MESSAGE\" \"RFC822\" NIL NIL "
        "NIL \"7BIT\" 2942 (\"Sat, 3 Jan 2015 19:26:15 +0100\" \"Re: MPG\" ((\"c p\" NIL "
        "\"---.---87\" \"gmail.com\")) ((\"c p\" NIL \"---.---87\" \"gmail.com\")) ((\"c p\" NIL "
        "\"---.---87\" \"gmail.com\")) ((\"am sa[cft]\" NIL \"sm\" \"cft.ce.fr\")) NIL NIL "
        "\"<D3CAD328B4CFD24E83DD07E8923DFEE902FA8F1B@PRDGCE8P4523.sigce.ce.fr>\" "
        "\"<D4A-8A32-4DC3-AC6C-98429154@gmail.com>\") (\"ALTERNATIVE\") 51) \"REPORT\")";
    fx_init(&f, report, ALL_QUIRKS);
    CHECK_INT(fx_body(&f, 0, &b), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_BODY_NIL);
    if (b != NULL && b->part_count == 3) {
        const imk_body *m = &b->parts[2];
        CHECK_INT(m->lines, 51);
        CHECK_INT(m->part_count, 1);
        if (m->part_count == 1) {
            CHECK_INT(m->parts[0].multipart, 1);
            CHECK_S(m->parts[0].subtype, "ALTERNATIVE");
        }
        if (m->envelope != NULL)
            CHECK_ADDR(m->envelope->to.items[0], "am sa[cft]", NULL, "sm", "cft.ce.fr");
    } else {
        CHECK_FAIL("report structure");
    }
    fx_free(&f);
}

/* Q30 iCloud, maddy: NIL body-fld-enc. */
static void test_q30_nil_encoding(void)
{
    static const char text[] =
        "(\"text\" \"plain\" (\"CHARSET\" \"UTF-8\") NIL NIL NIL 1694 51 NIL NIL NIL NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        check_part(b, "text", "plain", "", 1694);
        CHECK(b->encoding.data != NULL);
        CHECK_INT(b->lines, 51);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected body-fld-enc (string) in body part 1, found \"NIL 1694");
}

/* Q31 mail.ru: NIL parameter value (and "()" for no parameters). */
static void test_q31_nil_param(void)
{
    static const char text[] =
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 1)(\"text\" \"html\" () "
        "NIL NIL \"7bit\" 20 1) \"alternative\" (\"boundary\" NIL) NIL NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->params.count, 1);
        CHECK_PARAM(b->params, 0, "boundary", "");
        if (b->part_count == 2)
            CHECK_INT(b->parts[1].params.count, 0);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected parameter name (string) in body part 2");
    body_rejected("((\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1) \"alternative\" "
                  "(\"boundary\" NIL) NIL NIL)",
                  IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected parameter value (string) in the top-level body");
}

/* Q32 Exchange: Content-Description in an extension slot; NIL in a
 * body-fld-lang list. */
static void test_q32_extension_slots(void)
{
    static const char text[] =
        "((\"application\" \"pkcs7-mime\" (\"name\" \"smime.p7m\") NIL NIL \"base64\" 1000 NIL "
        "NIL NIL NIL) \"mixed\" (\"boundary\" \"----=_Part_694_\xe2\x80\xa6\") "
        "\"S/MIME Encrypted Message\" NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_PARAM(b->params, 0, "boundary", "----=_Part_694_\xe2\x80\xa6");
        CHECK_NIL(b->disposition);
        CHECK_S(b->description, "S/MIME Encrypted Message");
        CHECK_INT(b->languages.count, 0);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected body-fld-dsp (\"(\" or NIL) in the top-level body");

    /* the same leak in the body-fld-param slot, and in disposition params */
    b = body_quirk_ok(&f,
                      "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1) \"mixed\" \"Leaked\" "
                      "(\"inline\" \"dropped\"))",
                      IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_S(b->description, "Leaked");
        CHECK_INT(b->params.count, 0);
        CHECK_S(b->disposition, "inline");
        CHECK_INT(b->disposition_params.count, 0);
    }
    fx_free(&f);

    static const char lang[] =
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL "
        "(\"en\" NIL) NIL)";
    b = body_quirk_ok(&f, lang, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        CHECK_INT(b->languages.count, 1);
        if (b->languages.count == 1)
            CHECK_S(b->languages.items[0], "en");
        CHECK_NIL(b->location);
    }
    fx_free(&f);
    body_rejected(lang, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected language (string) in body part 1, found \"NIL) NIL)");
    b = body_quirk_ok(&f, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL (NIL))",
                      IMK_QUIRK_BODY_NIL);
    if (b != NULL)
        CHECK_INT(b->languages.count, 0);
    fx_free(&f);
    b = body_quirk_ok(&f, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL ())",
                      IMK_QUIRK_BODY_NIL);
    if (b != NULL)
        CHECK_INT(b->languages.count, 0);
    fx_free(&f);
    body_rejected("(\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL ())", IMK_QUIRK_BODY_NIL,
                  IMK_EPARSE, "expected language (string) in body part 1");
}

/* Q33 Dovecot: message/global without envelope, body and lines; Gmail
 * (jstedfast/MailKit PR#59) does the same for message/rfc822. */
static void test_q33_message_without_envelope(void)
{
    static const char text[] = "(\"message\" \"global\" NIL NIL NIL \"7bit\" 1024 NIL NIL NIL NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_BODY_NIL);
    if (b != NULL) {
        check_part(b, "message", "global", "7bit", 1024);
        CHECK(b->envelope == NULL);
        CHECK_INT(b->part_count, 0);
        CHECK_INT(b->has_lines, 0);
        CHECK_INT(b->has_ext, 1);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_BODY_NIL, IMK_EPARSE,
                  "expected SP and envelope (\"(\") in body part 1");

    static const char gmail[] =
        "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"koi8-r\") NIL NIL \"QUOTED-PRINTABLE\" 4452 113 NIL "
        "NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"koi8-r\") NIL NIL \"QUOTED-PRINTABLE\" 10350 "
        "240 "
        "NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"----=_NextPart_001_0539_01CAA4EE.0103D300\") "
        "NIL NIL)(\"MESSAGE\" \"RFC822\" (\"NAME\" \"=?KOI8-R?B?0NLF1MXO2snRIC0g9/TiMjQuZW1s?=\") "
        "NIL NIL \"7BIT\" 23379 NIL (\"ATTACHMENT\" (\"FILENAME\" "
        "\"=?KOI8-R?B?0NLF1MXO2snRIC0g9/TiMjQuZW1s?=\")) NIL) \"MIXED\" (\"BOUNDARY\" "
        "\"----=_NextPart_000_0538_01CAA4EE.0103D300\") NIL NIL)";
    b = body_quirk_ok(&f, gmail, IMK_QUIRK_BODY_NIL);
    if (b != NULL && b->part_count == 2) {
        const imk_body *m = &b->parts[1];
        check_part(m, "MESSAGE", "RFC822", "7BIT", 23379);
        CHECK(m->envelope == NULL);
        CHECK_S(m->disposition, "ATTACHMENT");
        CHECK_NIL(m->md5);
    } else {
        CHECK_FAIL("gmail structure");
    }
    fx_free(&f);
    body_rejected(gmail, IMK_QUIRK_BODY_NIL, IMK_EPARSE, "envelope (\"(\") in body part 2");

    /* Without extension data at all. */
    b = body_quirk_ok(&f, "(\"message\" \"global\" NIL NIL NIL \"7bit\" 1024)", IMK_QUIRK_BODY_NIL);
    if (b != NULL)
        CHECK_INT(b->has_ext, 0);
    fx_free(&f);
}

/* Q34 163/qiye and others: unescaped quotes (the lexer's heuristic). */
static void test_q34_unescaped_quotes(void)
{
    static const char text[] = "(\"application\" \"octet-stream\" (\"name\" \"2154973550.pdf\") "
                               "NIL \"\"\"\" \"base64\" 65322)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_QUOTE_HEURISTIC);
    if (b != NULL) {
        check_part(b, "application", "octet-stream", "base64", 65322);
        CHECK_S(b->description, "\"\"");
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_QUOTE_HEURISTIC, IMK_EPARSE,
                  "expected SP before body-fld-enc in body part 1");

    static const char charset[] =
        "(\"text\" \"plain\" (\"charset \" \" \"utf-8\"\") NIL NIL \"7bit\" 10 1)";
    b = body_quirk_ok(&f, charset, IMK_QUIRK_QUOTE_HEURISTIC);
    if (b != NULL)
        CHECK_PARAM(b->params, 0, "charset ", " \"utf-8\"");
    fx_free(&f);
    body_rejected(charset, IMK_QUIRK_QUOTE_HEURISTIC, IMK_EPARSE, "in body part 1");
}

/* Q35 ENVELOPE deviations. */
static void test_q35_envelope(void)
{
    fx f;
    const imk_envelope *e;

    /* NIL inside an address list (SmarterMail, jstedfast/MailKit#991) */
    static const char nil_item[] =
        "(\"Thu, 18 Jul 2019 01:29:32 -0300\" \"Xxx\" (NIL (\"Name\" NIL \"xxxxxxx\" "
        "\"xxxxxxxxxx.xxx\")) (NIL (\"Name\" NIL \"xxxxxxx\" \"xxxxxxxxxx.xxx\")) ((NIL NIL "
        "\"xxxxxxx\" \"xxxxx.xxx.xx\")) ((NIL NIL \"xxxxxxx\" \"xxxxxxx.xxx.xx\")) NIL NIL NIL "
        "\"<0A9F01100712011D213C15B6D2B6DA@XXXXXXX-XXXXXXX>\")";
    fx_init(&f, nil_item, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL) {
        CHECK_INT(e->from.count, 1);
        CHECK_ADDR(e->from.items[0], "Name", NULL, "xxxxxxx", "xxxxxxxxxx.xxx");
        CHECK_INT(e->sender.count, 1);
        CHECK_S(e->message_id, "<0A9F01100712011D213C15B6D2B6DA@XXXXXXX-XXXXXXX>");
    }
    fx_free(&f);
    envelope_rejected(nil_item, IMK_QUIRK_ENVELOPE,
                      "expected address (\"(\") or \")\" in ENVELOPE, found \"NIL (");

    /* wrapped in an extra "( )" (Domino, jstedfast/MailKit#943) */
    static const char wrapped[] =
        "((\"Tue, 1 Mar 2016 10:00:00 +0100\" \"Subject\" ((\"A\" NIL \"a\" \"example.com\")) "
        "NIL NIL NIL NIL NIL NIL \"<id@example.com>\"))";
    fx_init(&f, wrapped, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL) {
        CHECK_S(e->subject, "Subject");
        CHECK_INT(e->from.count, 1);
        CHECK_S(e->message_id, "<id@example.com>");
    }
    fx_free(&f);
    envelope_rejected(wrapped, IMK_QUIRK_ENVELOPE, "expected env-date (string or NIL) in ENVELOPE");
    /* only one wrapping */
    fx_init(&f, "((( NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)))", ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), IMK_EPARSE);
    fx_free(&f);

    /* in-reply-to and message-id missing (jstedfast/MailKit#932, #669) */
    static const char short2[] = "(\"date\" \"subj\" ((\"A\" NIL \"a\" \"b.c\")) NIL NIL NIL NIL "
                                 "NIL)";
    fx_init(&f, short2, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL) {
        CHECK_NIL(e->in_reply_to);
        CHECK_NIL(e->message_id);
        CHECK_INT(e->from.count, 1);
    }
    fx_free(&f);
    envelope_rejected(short2, IMK_QUIRK_ENVELOPE, "expected SP before env-in-reply-to");
    static const char short1[] = "(\"date\" \"subj\" NIL NIL NIL NIL NIL NIL \"<parent@x>\")";
    fx_init(&f, short1, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL) {
        CHECK_S(e->in_reply_to, "<parent@x>");
        CHECK_NIL(e->message_id);
    }
    fx_free(&f);
    envelope_rejected(short1, IMK_QUIRK_ENVELOPE, "expected SP before env-message-id");

    /* spaces between addresses (duesee/imap-codec PR#594) */
    static const char spaced[] =
        "(NIL NIL ((\"A\" NIL \"a\" \"x.org\") (\"B\" NIL \"b\" \"x.org\")  (NIL NIL \"c\" "
        "\"x.org\")) NIL NIL NIL NIL NIL NIL NIL)";
    fx_init(&f, spaced, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL && e->from.count == 3) {
        CHECK_ADDR(e->from.items[1], "B", NULL, "b", "x.org");
        CHECK_ADDR(e->from.items[2], NULL, NULL, "c", "x.org");
    } else {
        CHECK_FAIL("three addresses");
    }
    fx_free(&f);
    envelope_rejected(spaced, IMK_QUIRK_ENVELOPE,
                      "expected address (\"(\") or \")\" in ENVELOPE, found SP");

    /* "()" for an address list (Mail.ru, apple/swift-nio-imap#821) */
    static const char empty[] =
        "(\"Wed, 11 Oct 2023 02:11:04 +0000\" \"=?utf-8?B?...?=\" ((\"Tn\" NIL \"info\" "
        "\"e.geekbrains.ru\")) NIL NIL () NIL NIL \"<msg-id-1>\" \"<msg-id-2>\")";
    fx_init(&f, empty, ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (e != NULL) {
        CHECK_INT(e->to.count, 0);
        CHECK_S(e->in_reply_to, "<msg-id-1>");
        CHECK_S(e->message_id, "<msg-id-2>");
    }
    fx_free(&f);
    envelope_rejected(empty, IMK_QUIRK_ENVELOPE, "expected at least one address in ENVELOPE");

    /* The same quirks in the envelope of a message/rfc822 part. */
    static const char in_body[] =
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 100 ((NIL \"s\" () NIL NIL NIL NIL NIL)) "
        "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1) 4)";
    const imk_body *b = NULL;
    fx_init(&f, in_body, ALL_QUIRKS);
    CHECK_INT(fx_body(&f, 1, &b), 0);
    CHECK_INT(f.lx.quirks_seen, IMK_QUIRK_ENVELOPE);
    if (b != NULL && b->envelope != NULL) {
        CHECK_S(b->envelope->subject, "s");
        CHECK_NIL(b->envelope->message_id);
        CHECK_INT(b->lines, 4);
    }
    fx_free(&f);
    body_rejected(in_body, IMK_QUIRK_ENVELOPE, IMK_EPARSE,
                  "expected env-date (string or NIL) in the envelope of body part 1");
}

/* Spaces before ")" (Q5 style) in every list this parser closes: accepted
 * with IMK_QUIRK_TRAILING_SPACE (the lexer's), rejected without. */
static void test_trailing_spaces(void)
{
    static const char *const bodies[] = {
        "(\"TEXT\" \"PLAIN\" (\"A\" \"B\" ) NIL NIL \"7BIT\" 1 1)",
        "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL (\"EN\" \"DE\" ))",
        "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"INLINE\" NIL ))",
        "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 )",
        "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL 1 )",
        "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\" )",
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 1 (NIL NIL ((NIL NIL \"a\" \"b\" ) ) NIL NIL "
        "NIL NIL NIL NIL NIL ) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) 1)",
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 1 (NIL NIL ((NIL NIL \"a\" \"b\") ) NIL NIL "
        "NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) 1)",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        fx f;
        const imk_body *b = body_quirk_ok(&f, bodies[i], IMK_QUIRK_TRAILING_SPACE);
        CHECK(b != NULL);
        fx_free(&f);
        body_rejected(bodies[i], IMK_QUIRK_TRAILING_SPACE, IMK_EPARSE, NULL);
    }
}

/* Q6-style doubled spaces between fields: the lexer's IMK_QUIRK_EXTRA_SPACES. */
static void test_extra_spaces(void)
{
    static const char text[] = "(\"TEXT\"  \"PLAIN\" NIL NIL NIL   \"7BIT\" 1 1  NIL)";
    fx f;
    const imk_body *b = body_quirk_ok(&f, text, IMK_QUIRK_EXTRA_SPACES);
    if (b != NULL) {
        check_part(b, "TEXT", "PLAIN", "7BIT", 1);
        CHECK_INT(b->has_ext, 1);
    }
    fx_free(&f);
    body_rejected(text, IMK_QUIRK_EXTRA_SPACES, IMK_EPARSE,
                  "expected media-subtype (string) in body part 1, found SP");
}

/* For each structure, the nesting it needs is exactly `need`: every
 * max_depth below fails with IMK_ELIMIT, `need` itself passes. The
 * structures put their deepest "(" in each kind of list. */
static void test_depth_at_each_list(void)
{
    static const struct {
        const char *text;
        int envelope;
        unsigned need;
    } cases[] = {
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"INLINE\" NIL))", 0, 2},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL (\"INLINE\" (\"A\" \"B\")))", 0, 3},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL (\"EN\"))", 0, 2},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL ((1)))", 0, 3},
        {"(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 1 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
         "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) 1)",
         0, 2},
        {"(NIL NIL ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL)", 1, 3},
        {"((NIL NIL ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL))", 1, 4},
        {"(NIL \"alternative\" (\"boundary\" \"x\") NIL NIL)", 0, 2},
        {"(\"RELATED\" NIL (\"ATTACHMENT\" NIL) NIL)", 0, 2},
        {deep, 0, 6},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (unsigned max = 1; max <= cases[i].need; max++) {
            fx f;
            fx_init(&f, cases[i].text, ALL_QUIRKS);
            f.limits.max_depth = max;
            int rc;
            if (cases[i].envelope) {
                const imk_envelope *e;
                rc = fx_envelope(&f, &e);
            } else {
                const imk_body *b;
                rc = fx_body(&f, 1, &b);
            }
            if (max < cases[i].need)
                CHECK_INT(rc, IMK_ELIMIT);
            else
                CHECK_INT(rc, 0);
            fx_free(&f);
        }
    }
}

/* Numbers and strings the lexer itself rejects inside the body. */
static void test_bad_tokens(void)
{
    static const struct {
        const char *text;
        int code;
    } cases[] = {
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" -x 1)", IMK_EPARSE},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 99999999999999999999999 1)", IMK_ERANGE},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1e400 1)", IMK_ERANGE},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 {99}\r\n1)", IMK_EPARSE},
        {"((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"mixed\" {99}\r\nab)", IMK_EPARSE},
        {"((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"mixed\" NIL {99}\r\nab)", IMK_EPARSE},
        {"(\"TEXT\" \"PL\\AIN\" NIL NIL NIL \"7BIT\" 1 1)", IMK_EPARSE},
        {"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL \"open)", IMK_EPARSE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx f;
        const imk_body *b;
        fx_init(&f, cases[i].text, ALL_QUIRKS);
        CHECK_INT(fx_body(&f, 1, &b), cases[i].code);
        fx_free(&f);
    }
    /* a wrapped envelope must close right after the inner one */
    fx f;
    const imk_envelope *e;
    fx_init(&f, "((NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) NIL)", ALL_QUIRKS);
    CHECK_INT(fx_envelope(&f, &e), IMK_EPARSE);
    CHECK(contains(f.ctx.err_msg, "expected \")\" after a wrapped envelope in ENVELOPE"));
    fx_free(&f);
}

/* ------------------------------------------------------------------ */
/* Limits and allocation failures                                      */
/* ------------------------------------------------------------------ */

/* `depth` nested lists: depth-1 multiparts around one leaf without a
 * parameter list. */
static char *nested_body(unsigned depth)
{
    static const char leaf[] = "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)";
    static const char close[] = " \"MIXED\")";
    size_t len = (depth - 1) + sizeof(leaf) - 1 + (depth - 1) * (sizeof(close) - 1) + 1;
    char *s = malloc(len);
    if (s == NULL)
        exit(2);
    size_t n = 0;
    for (unsigned i = 0; i + 1 < depth; i++)
        s[n++] = '(';
    memcpy(s + n, leaf, sizeof(leaf) - 1);
    n += sizeof(leaf) - 1;
    for (unsigned i = 0; i + 1 < depth; i++) {
        memcpy(s + n, close, sizeof(close) - 1);
        n += sizeof(close) - 1;
    }
    s[n] = '\0';
    return s;
}

static void test_depth_limit(void)
{
    static const unsigned limits[] = {1, 2, 5, 64};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        unsigned max = limits[i];
        char *ok = nested_body(max);
        char *deeper = nested_body(max + 1);
        fx f;
        const imk_body *b;
        fx_init(&f, ok, ALL_QUIRKS);
        f.limits.max_depth = max;
        CHECK_INT(fx_body(&f, 1, &b), 0);
        unsigned levels = 0;
        for (const imk_body *p = b; p != NULL; p = p->part_count ? &p->parts[0] : NULL)
            levels++;
        CHECK_INT(levels, max);
        fx_free(&f);
        fx_init(&f, deeper, ALL_QUIRKS);
        f.limits.max_depth = max;
        CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
        CHECK(contains(f.ctx.err_msg, "max_depth"));
        fx_free(&f);
        free(ok);
        free(deeper);
    }

    /* Far deeper than the limit: stops at the limit, the stack is safe. */
    char *huge = nested_body(100000);
    fx f;
    const imk_body *b;
    fx_init(&f, huge, ALL_QUIRKS);
    CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
    fx_free(&f);
    free(huge);

    /* The depth counts the envelope's lists in a message/rfc822 part:
     * body 1, envelope 2, address list 3, address 4. */
    static const char msg[] = "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 1 (NIL NIL ((NIL NIL "
                              "\"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL "
                              "NIL NIL \"7BIT\" 1 1) 1)";
    fx_init(&f, msg, 0);
    f.limits.max_depth = 4;
    CHECK_INT(fx_body(&f, 1, &b), 0);
    f.limits.max_depth = 3;
    fx_restart(&f);
    CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
    fx_free(&f);

    /* The Q29 trial parse hitting the limit is final, not retried. */
    fx_init(&f, "(\"X\" NIL (\"A\" \"B\") NIL NIL \"7BIT\" 1)", ALL_QUIRKS);
    f.limits.max_depth = 1;
    CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
    fx_free(&f);
}

static void test_list_limits(void)
{
    fx f;
    const imk_body *b;
    /* 3 children / 3 parameters / 3 addresses pass at max_list_items = 3 */
    static const char three[] =
        "((\"TEXT\" \"PLAIN\" (\"A\" \"1\" \"B\" \"2\" \"C\" \"3\") NIL NIL "
        "\"7BIT\" 1 1)(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1)(\"TEXT\" "
        "\"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\")";
    fx_init(&f, three, 0);
    f.limits.max_list_items = 3;
    CHECK_INT(fx_body(&f, 1, &b), 0);
    f.limits.max_list_items = 2;
    fx_restart(&f);
    CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
    CHECK(contains(f.ctx.err_msg, "max_list_items"));
    fx_free(&f);

    const imk_envelope *e;
    fx_init(&f,
            "(NIL NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL NIL NIL NIL NIL NIL NIL)",
            0);
    f.limits.max_list_items = 1;
    CHECK_INT(fx_envelope(&f, &e), IMK_ELIMIT);
    fx_free(&f);

    /* the arena's own limit is IMK_ELIMIT too */
    fx_init(&f, deep, 0);
    f.arena.limit = 512;
    CHECK_INT(fx_body(&f, 1, &b), IMK_ELIMIT);
    fx_free(&f);
}

/* Fail the 1st, 2nd, ... allocation until the parse needs no more: every
 * failure is IMK_ENOMEM, recorded, and nothing is left allocated. */
static void alloc_failures(const char *text, int extensible, int envelope)
{
    long fail_at;
    for (fail_at = 1; fail_at < 10000; fail_at++) {
        failing_alloc fa;
        imk_allocator alloc = failing_allocator(&fa, fail_at);
        fx f;
        fx_init_n(&f, text, strlen(text), ALL_QUIRKS, &alloc);
        int rc;
        if (envelope) {
            const imk_envelope *e;
            rc = imk__parse_envelope(&f.lx, &e);
        } else {
            const imk_body *b;
            rc = imk__parse_body(&f.lx, extensible, &b);
        }
        int done = !fa.failed;
        if (done) {
            CHECK_INT(rc, 0);
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK_INT(f.ctx.err_code, IMK_ENOMEM);
            CHECK(f.ctx.err_msg != NULL && strlen(f.ctx.err_msg) > 0);
        }
        fx_free(&f);
        CHECK_INT(fa.live, 0);
        if (done)
            break;
    }
    CHECK(fail_at > 1 && fail_at < 10000);
}

static void test_allocation_failures(void)
{
    alloc_failures(deep, 1, 0);
    alloc_failures(deep, 0, 0);
    /* the Q29 trial parse allocates before it fails */
    alloc_failures("((\"RELATED\" NIL (\"ATTACHMENT\" (\"A\" \"B\")) (\"EN\" \"DE\") NIL 1 (2))"
                   "(\"TEXT\" NIL (\"A\" \"B\") NIL NIL \"7BIT\" 1 1)"
                   "(NIL \"alternative\" (\"boundary\" \"x\") NIL NIL) \"MIXED\")",
                   1, 0);
    alloc_failures("(\"date\" \"subj\" ((\"A\" NIL \"a\" \"b.c\")(NIL NIL \"d\" \"e\")) NIL NIL "
                   "((\"x\" NIL \"y\" \"z\")) NIL NIL \"<a>\" \"<b>\")",
                   0, 1);
}

int main(void)
{
    RUN(test_rfc_text_plain);
    RUN(test_rfc_multipart_mixed);
    RUN(test_rfc_fetch_full);
    RUN(test_envelope_forms);
    RUN(test_message_global);
    RUN(test_deep_structure);
    RUN(test_truncations);
    RUN(test_extension_lengths);
    RUN(test_errors_and_part_numbers);
    RUN(test_q23_negative_size);
    RUN(test_q25_float_size);
    RUN(test_q27_nil_type);
    RUN(test_q28_childless_multipart);
    RUN(test_q29_broken_nested_multipart);
    RUN(test_q30_nil_encoding);
    RUN(test_q31_nil_param);
    RUN(test_q32_extension_slots);
    RUN(test_q33_message_without_envelope);
    RUN(test_q34_unescaped_quotes);
    RUN(test_q35_envelope);
    RUN(test_trailing_spaces);
    RUN(test_extra_spaces);
    RUN(test_depth_at_each_list);
    RUN(test_bad_tokens);
    RUN(test_depth_limit);
    RUN(test_list_limits);
    RUN(test_allocation_failures);
    return test_finish();
}
