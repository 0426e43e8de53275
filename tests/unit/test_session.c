/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the session (src/proto/session*.c): the scheduler's rules
 * one by one (which commands go out together, which wait), the state
 * checks, capability refresh, STARTTLS injection through every input path,
 * streamed literals, and every limit (max_output, max_ops,
 * max_result_size). Whole protocol scenarios live in tests/transcripts/.
 *
 * Output checks are exact: out_is() takes everything the session wants to
 * send at that moment, so a command missing from it is a command waiting.
 */
#include "imapkit/session.h"

#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static imk_session *mk(const imk_session_options *o)
{
    imk_session *s = NULL;
    int rc = imk_session_new(o, NULL, &s);
    CHECK_INT(rc, 0);
    if (s == NULL)
        abort();
    return s;
}

static void feed(imk_session *s, const char *text)
{
    size_t n = strlen(text);
    CHECK_INT(imk_session_feed(s, text, n), n);
}

/* Everything to send now (take_output_len is in test.h). */
static char *take_output(imk_session *s)
{
    return take_output_len(s, NULL);
}

#define out_is(s, expect)                                                                          \
    do {                                                                                           \
        char *out_ = take_output(s);                                                               \
        CHECK_STR(out_, expect);                                                                   \
        free(out_);                                                                                \
    } while (0)

static const char *type_name(imk_session_event_type t)
{
    static const char *const names[] = {
        "GREETING",   "DONE",     "NOTICE",       "PROGRESS",    "EXISTS",
        "EXPUNGE",    "FLAGS",    "UIDVALIDITY",  "UNSOLICITED", "BODY_BEGIN",
        "BODY_CHUNK", "BODY_END", "CONTINUATION", "IDLING",      "PROTOCOL_ERROR",
        "BYE",        "CLOSED",   "VANISHED",     "FETCH",       "COMPRESSING"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Events as "TYPE[:tag[:status]]" separated by spaces. */
static char *events(imk_session *s)
{
    static char buf[4096];
    size_t len = 0;
    imk_session_event ev;
    int rc;
    buf[0] = '\0';
    while ((rc = imk_session_next(s, &ev)) == 1) {
        int n;
        if (ev.type == IMK_SE_DONE)
            n = snprintf(buf + len, sizeof(buf) - len, "%sDONE:%s:%s", len ? " " : "",
                         imk_op_tag(ev.op),
                         ev.status == IMK_STATUS_NONE ? "NONE" : imk_status_name(ev.status));
        else if (ev.op != NULL)
            n = snprintf(buf + len, sizeof(buf) - len, "%s%s:%s", len ? " " : "",
                         type_name(ev.type), imk_op_tag(ev.op));
        else
            n = snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "", type_name(ev.type));
        if (n > 0 && (size_t)n < sizeof(buf) - len)
            len += (size_t)n;
    }
    if (rc < 0) {
        int n = snprintf(buf + len, sizeof(buf) - len, "%sFATAL:%s", len ? " " : "",
                         imk_error_name(rc));
        if (n > 0 && (size_t)n < sizeof(buf) - len)
            len += (size_t)n;
    }
    return buf;
}

/* CHECK_STR evaluates its argument twice: take the events once. */
#define ev_is(s, expect)                                                                           \
    do {                                                                                           \
        const char *ev_ = events(s);                                                               \
        CHECK_STR(ev_, expect);                                                                    \
    } while (0)

/* Start, fill and submit a command: `set` goes through imk_op_set (or,
 * for SELECT/EXAMINE/STATUS, imk_op_mailbox), `rest` is one token. */
static imk_op *cmd(imk_session *s, imk_command_kind kind, const char *set, const char *rest)
{
    imk_op *op = NULL;
    int rc = imk_session_command(s, kind, &op);
    CHECK_INT(rc, 0);
    if (rc < 0)
        return NULL;
    if (set != NULL) {
        if (kind == IMK_CMD_SELECT || kind == IMK_CMD_EXAMINE || kind == IMK_CMD_STATUS)
            CHECK_INT(imk_op_mailbox(op, set, strlen(set)), 0);
        else
            CHECK_INT(imk_op_set(op, set), 0);
    }
    if (rest != NULL)
        CHECK_INT(imk_command_token(imk_op_args(op), rest), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    return op;
}

/* A session in the SELECTED state with `exists` messages, UIDs = seqs. */
static imk_session *selected(const imk_session_options *o, unsigned exists)
{
    imk_session *s = mk(o);
    feed(s, "* PREAUTH [CAPABILITY IMAP4rev1 ESEARCH] hi\r\n");
    ev_is(s, "GREETING");
    cmd(s, IMK_CMD_SELECT, "INBOX", NULL);
    out_is(s, "A1 SELECT INBOX\r\n");
    char buf[64];
    snprintf(buf, sizeof(buf), "* %u EXISTS\r\n", exists);
    feed(s, buf);
    for (unsigned i = 1; i <= exists; i++) {
        snprintf(buf, sizeof(buf), "* %u FETCH (UID %u)\r\n", i, i);
        feed(s, buf);
    }
    feed(s, "A1 OK [READ-WRITE] done\r\n");
    events(s);
    CHECK_INT(imk_session_state(s), IMK_STATE_SELECTED);
    return s;
}

/* ---- options, tags ---- */

static void test_options(void)
{
    imk_session *s = NULL;
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = 99;
    CHECK_INT(imk_session_new(&o, NULL, &s), IMK_EINVAL);
    CHECK(s == NULL);
    CHECK_INT(imk_session_new(NULL, NULL, NULL), IMK_EINVAL);
    o.version = IMK_SESSION_OPTIONS_VERSION;
    const char *bad[] = {"", "A B", "T+", "x\"", "(", "ABCDEFGHIJKLMNOPQ", "a\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.tag_prefix = bad[i];
        CHECK_INT(imk_session_new(&o, NULL, &s), IMK_EINVAL);
    }
    o.tag_prefix = "imk.";
    s = mk(&o);
    feed(s, "* OK hi\r\n");
    ev_is(s, "GREETING");
    imk_op *a = cmd(s, IMK_CMD_NOOP, NULL, NULL);
    imk_op *b = cmd(s, IMK_CMD_CAPABILITY, NULL, NULL);
    CHECK_STR(imk_op_tag(a), "imk.1");
    CHECK_STR(imk_op_tag(b), "imk.2");
    CHECK_INT(imk_op_kind(b), IMK_CMD_CAPABILITY);
    out_is(s, "imk.1 NOOP\r\nimk.2 CAPABILITY\r\n");
    CHECK_INT(imk_session_pending(s), 2);
    imk_op_set_user(a, &o);
    CHECK(imk_op_user(a) == &o);
    CHECK(imk_op_result(a) == NULL);
    imk_session_free(s);
    imk_session_free(NULL);
}

static void test_verbs(void)
{
    CHECK_STR(imk_command_kind_verb(IMK_CMD_UID_FETCH), "UID FETCH");
    CHECK_STR(imk_command_kind_verb(IMK_CMD_MYRIGHTS), "MYRIGHTS");
    CHECK_STR(imk_command_kind_verb(IMK_CMD_CAPABILITY), "CAPABILITY");
    CHECK_STR(imk_command_kind_verb(IMK_CMD_COUNT_), "");
}

/* ---- the scheduler ---- */

static void test_nothing_before_greeting(void)
{
    imk_session *s = mk(NULL);
    cmd(s, IMK_CMD_CAPABILITY, NULL, NULL);
    out_is(s, "");
    CHECK_INT(imk_session_state(s), IMK_STATE_GREETING);
    feed(s, "* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n");
    ev_is(s, "GREETING");
    CHECK(imk_session_has_capability(s, "literal+"));
    CHECK(!imk_session_has_capability(s, "LITERAL-"));
    out_is(s, "A1 CAPABILITY\r\n");
    imk_session_free(s);
}

static void test_uid_fetches_together(void)
{
    imk_session *s = selected(NULL, 10);
    cmd(s, IMK_CMD_UID_FETCH, "1:3", "(FLAGS)");
    cmd(s, IMK_CMD_UID_FETCH, "4,6", "(FLAGS)");
    cmd(s, IMK_CMD_UID_FETCH, "7:10", "(FLAGS)");
    out_is(s, "A2 UID FETCH 1:3 (FLAGS)\r\nA3 UID FETCH 4,6 (FLAGS)\r\n"
              "A4 UID FETCH 7:10 (FLAGS)\r\n");
    /* each FETCH goes to the command whose set holds it */
    feed(s, "* 7 FETCH (UID 7 FLAGS ())\r\n* 4 FETCH (UID 4 FLAGS ())\r\n"
            "* 1 FETCH (UID 1 FLAGS ())\r\nA4 OK a\r\nA2 OK b\r\nA3 OK c\r\n");
    imk_session_event ev;
    int counts[3] = {0, 0, 0}, done = 0;
    while (imk_session_next(s, &ev) == 1) {
        if (ev.type != IMK_SE_DONE)
            continue;
        const imk_result *r = imk_op_result(ev.op);
        CHECK(r != NULL);
        if (r == NULL || r->fetch_count != 1)
            continue;
        const char *t = imk_op_tag(ev.op);
        int i = t[1] - '2';
        if (i >= 0 && i < 3)
            counts[i] = (int)r->fetches[0].uid;
        done++;
    }
    CHECK_INT(done, 3);
    CHECK_INT(counts[0], 1);
    CHECK_INT(counts[1], 4);
    CHECK_INT(counts[2], 7);
    imk_session_free(s);
}

static void test_overlap_waits(void)
{
    imk_session *s = selected(NULL, 10);
    /* ranges touching at 5 overlap */
    cmd(s, IMK_CMD_UID_FETCH, "1:5", "(FLAGS)");
    cmd(s, IMK_CMD_UID_STORE, "5:9", "+FLAGS (\\Seen)");
    out_is(s, "A2 UID FETCH 1:5 (FLAGS)\r\n");
    feed(s, "A2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    out_is(s, "A3 UID STORE 5:9 +FLAGS (\\Seen)\r\n");
    /* "*" overlaps everything */
    cmd(s, IMK_CMD_UID_FETCH, "100:*", "(FLAGS)");
    out_is(s, "");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    out_is(s, "A4 UID FETCH 100:* (FLAGS)\r\n");
    cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
    out_is(s, "");
    feed(s, "A4 OK done\r\n");
    ev_is(s, "DONE:A4:OK");
    out_is(s, "A5 UID FETCH 1 (FLAGS)\r\n");
    /* "$" (SEARCHRES) overlaps everything too */
    cmd(s, IMK_CMD_UID_FETCH, "$", "(FLAGS)");
    out_is(s, "");
    feed(s, "A5 OK done\r\n");
    ev_is(s, "DONE:A5:OK");
    out_is(s, "A6 UID FETCH $ (FLAGS)\r\n");
    /* no set recorded (built without imk_op_set): overlaps everything */
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_UID_FETCH, &op), 0);
    CHECK_INT(imk_command_seqset_text(imk_op_args(op), "900"), 0);
    CHECK_INT(imk_command_token(imk_op_args(op), "(FLAGS)"), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "");
    feed(s, "A6 OK done\r\n");
    ev_is(s, "DONE:A6:OK");
    out_is(s, "A7 UID FETCH 900 (FLAGS)\r\n");
    imk_session_free(s);
}

static void test_seq_rules(void)
{
    imk_session *s = selected(NULL, 10);
    /* RFC 9051 5.5: after a UID command, wait before sequence numbers */
    cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
    cmd(s, IMK_CMD_FETCH, "2", "(FLAGS)");
    out_is(s, "A2 UID FETCH 1 (FLAGS)\r\n");
    feed(s, "A2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    /* FETCH + STORE (disjoint) + SEARCH + NOOP is valid */
    cmd(s, IMK_CMD_STORE, "3", "+FLAGS (\\Seen)");
    cmd(s, IMK_CMD_SEARCH, NULL, "UNSEEN");
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, "A3 FETCH 2 (FLAGS)\r\nA4 STORE 3 +FLAGS (\\Seen)\r\nA5 SEARCH UNSEEN\r\n"
              "A6 NOOP\r\n");
    /* after NOOP (EXPUNGE allowed), a sequence-number command waits */
    cmd(s, IMK_CMD_FETCH, "4", "(FLAGS)");
    out_is(s, "");
    feed(s, "A3 OK a\r\nA4 OK b\r\nA5 OK c\r\n");
    ev_is(s, "DONE:A3:OK DONE:A4:OK DONE:A5:OK");
    out_is(s, "");
    feed(s, "A6 OK d\r\n");
    ev_is(s, "DONE:A6:OK");
    out_is(s, "A7 FETCH 4 (FLAGS)\r\n");
    /* a UID command may follow a sequence-number FETCH */
    cmd(s, IMK_CMD_UID_COPY, "8", "Trash");
    out_is(s, "A8 UID COPY 8 Trash\r\n");
    /* EXPUNGE may follow FETCH (STORE + COPY + EXPUNGE is valid) */
    cmd(s, IMK_CMD_EXPUNGE, NULL, NULL);
    out_is(s, "A9 EXPUNGE\r\n");
    imk_session_free(s);
}

static void test_search_rules(void)
{
    imk_session *s = selected(NULL, 3);
    /* two SEARCHes without RETURN: their SEARCH lines could be confused */
    cmd(s, IMK_CMD_SEARCH, NULL, "UNSEEN");
    cmd(s, IMK_CMD_SEARCH, NULL, "DELETED");
    out_is(s, "A2 SEARCH UNSEEN\r\n");
    feed(s, "* SEARCH 1\r\nA2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    out_is(s, "A3 SEARCH DELETED\r\n");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    /* with RETURN (ESEARCH, matched by tag) they go together; a RETURN
     * search still waits for a plain one in flight */
    cmd(s, IMK_CMD_SEARCH, NULL, "RETURN (COUNT) UNSEEN");
    cmd(s, IMK_CMD_SEARCH, NULL, "return (MIN) DELETED");
    cmd(s, IMK_CMD_SEARCH, NULL, "FLAGGED");
    cmd(s, IMK_CMD_SEARCH, NULL, "RETURN () SEEN");
    out_is(s, "A4 SEARCH RETURN (COUNT) UNSEEN\r\nA5 SEARCH return (MIN) DELETED\r\n");
    feed(s, "A4 OK a\r\nA5 OK b\r\n");
    ev_is(s, "DONE:A4:OK DONE:A5:OK");
    out_is(s, "A6 SEARCH FLAGGED\r\n");
    feed(s, "A6 OK c\r\n");
    ev_is(s, "DONE:A6:OK");
    out_is(s, "A7 SEARCH RETURN () SEEN\r\n");
    feed(s, "A7 OK d\r\n");
    ev_is(s, "DONE:A7:OK");
    /* SEARCH and SORT answer with different responses: together */
    cmd(s, IMK_CMD_SEARCH, NULL, "ALL");
    cmd(s, IMK_CMD_SORT, NULL, "(DATE) UTF-8 ALL");
    out_is(s, "A8 SEARCH ALL\r\nA9 SORT (DATE) UTF-8 ALL\r\n");
    imk_session_free(s);
}

static void test_uid_search_seq_detection(void)
{
    imk_session *s = selected(NULL, 3);
    struct {
        const char *criteria;
        int waits;
    } cases[] = {
        {"UID 1:5", 0},
        {"LARGER 1000 SMALLER 2000", 0},
        {"SUBJECT \"1:5\"", 0},
        {"1:5", 1},
        {"NOT 3", 1},
        {"OR UID 4 7", 1},
        {"$", 1},
        {"MODSEQ 620162338", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        imk_op *f = cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
        imk_op *q = cmd(s, IMK_CMD_UID_SEARCH, NULL, cases[i].criteria);
        char *out = take_output(s);
        char want[256];
        if (cases[i].waits)
            snprintf(want, sizeof(want), "%s UID FETCH 1 (FLAGS)\r\n", imk_op_tag(f));
        else
            snprintf(want, sizeof(want), "%s UID FETCH 1 (FLAGS)\r\n%s UID SEARCH %s\r\n",
                     imk_op_tag(f), imk_op_tag(q), cases[i].criteria);
        if (strcmp(out, want) != 0)
            fprintf(stderr, "criteria: %s\n", cases[i].criteria);
        CHECK_STR(out, want);
        free(out);
        char buf[64];
        snprintf(buf, sizeof(buf), "%s OK f\r\n", imk_op_tag(f));
        feed(s, buf);
        events(s);
        if (cases[i].waits) {
            /* it goes out once the UID FETCH has completed */
            snprintf(want, sizeof(want), "%s UID SEARCH %s\r\n", imk_op_tag(q), cases[i].criteria);
            out_is(s, want);
        } else {
            out_is(s, "");
        }
        snprintf(buf, sizeof(buf), "%s OK q\r\n", imk_op_tag(q));
        feed(s, buf);
        events(s);
    }
    /* a literal argument's bytes are not criteria */
    imk_op *f = cmd(s, IMK_CMD_UID_FETCH, "2", "(FLAGS)");
    imk_op *q;
    CHECK_INT(imk_session_command(s, IMK_CMD_UID_SEARCH, &q), 0);
    CHECK_INT(imk_command_atom(imk_op_args(q), "SUBJECT"), 0);
    CHECK_INT(imk_command_literal(imk_op_args(q), "1:5", 3, 0), 0);
    CHECK_INT(imk_session_submit(s, q), 0);
    char want[128];
    snprintf(want, sizeof(want), "%s UID FETCH 2 (FLAGS)\r\n%s UID SEARCH SUBJECT {3}\r\n",
             imk_op_tag(f), imk_op_tag(q));
    out_is(s, want);
    imk_session_free(s);
}

static void test_status_list_rules(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_STATUS, "INBOX", "(MESSAGES)");
    cmd(s, IMK_CMD_STATUS, "inbox", "(UNSEEN)"); /* INBOX in any case: same */
    out_is(s, "A1 STATUS INBOX (MESSAGES)\r\n");
    feed(s, "* STATUS INBOX (MESSAGES 3)\r\nA1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    out_is(s, "A2 STATUS INBOX (UNSEEN)\r\n");
    feed(s, "A2 OK done\r\n");
    events(s);
    /* LIST and LSUB answer differently: together; two LISTs not; a STATUS
     * not with a LIST (LIST-STATUS sends STATUS) */
    cmd(s, IMK_CMD_LIST, NULL, "\"\" *");
    cmd(s, IMK_CMD_LSUB, NULL, "\"\" *");
    cmd(s, IMK_CMD_STATUS, "Sent", "(MESSAGES)");
    out_is(s, "A3 LIST \"\" *\r\nA4 LSUB \"\" *\r\n");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    out_is(s, "A5 STATUS Sent (MESSAGES)\r\n");
    /* singleton kinds: two NAMESPACEs wait, GETQUOTA waits for
     * GETQUOTAROOT (both claim QUOTA) */
    cmd(s, IMK_CMD_GETQUOTAROOT, NULL, "INBOX");
    cmd(s, IMK_CMD_GETQUOTA, NULL, "\"\"");
    out_is(s, "A6 GETQUOTAROOT INBOX\r\n");
    feed(s, "A6 OK done\r\n");
    ev_is(s, "DONE:A6:OK");
    out_is(s, "A7 GETQUOTA \"\"\r\n");
    imk_session_free(s);
}

static void test_barriers(void)
{
    imk_session *s = selected(NULL, 3);
    cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
    cmd(s, IMK_CMD_SELECT, "Archive", NULL);
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, "A2 UID FETCH 1 (FLAGS)\r\n");
    feed(s, "A2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    out_is(s, "A3 SELECT Archive\r\n");
    CHECK_STR(imk_session_mailbox(s), "INBOX");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    CHECK_STR(imk_session_mailbox(s), "Archive");
    out_is(s, "A4 NOOP\r\n");
    /* EXPUNGE-family commands would share their EXPUNGEs: one at a time */
    cmd(s, IMK_CMD_UID_EXPUNGE, "1", NULL);
    cmd(s, IMK_CMD_UID_MOVE, "2", "Trash");
    out_is(s, "A5 UID EXPUNGE 1\r\n");
    feed(s, "A4 OK a\r\nA5 OK b\r\n");
    ev_is(s, "DONE:A4:OK DONE:A5:OK");
    out_is(s, "A6 UID MOVE 2 Trash\r\n");
    imk_session_free(s);
}

/* ---- state and capabilities ---- */

static void test_state_checks(void)
{
    imk_session *s = mk(NULL);
    imk_op *op = NULL;
    /* before the greeting: not-authenticated commands only */
    CHECK_INT(imk_session_command(s, IMK_CMD_FETCH, &op), IMK_ESTATE);
    CHECK(op == NULL);
    CHECK_STR(imk_session_error(s), "FETCH needs a selected mailbox (state is GREETING): SELECT "
                                    "or EXAMINE one first");
    CHECK_INT(imk_session_command(s, IMK_CMD_COUNT_, &op), IMK_EINVAL);
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, NULL), IMK_EINVAL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    CHECK_INT(imk_session_state(s), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_session_command(s, IMK_CMD_STARTTLS, &op), IMK_ESTATE);
    CHECK_STR(imk_session_error(s),
              "STARTTLS is only valid before authentication (state is AUTHENTICATED)");
    CHECK_INT(imk_session_command(s, IMK_CMD_EXPUNGE, &op), IMK_ESTATE);
    /* a command whose state changed between command() and submit() */
    imk_op *fetch;
    CHECK_INT(imk_session_command(s, IMK_CMD_ENABLE, &fetch), 0);
    CHECK_INT(imk_command_atom(imk_op_args(fetch), "QRESYNC"), 0);
    cmd(s, IMK_CMD_SELECT, "INBOX", NULL);
    CHECK_INT(imk_session_submit(s, fetch), IMK_ESTATE); /* freed */
    CHECK_STR(imk_session_error(s),
              "ENABLE is only valid in the authenticated state with no mailbox selected (state "
              "will be SELECTED after the commands queued before it): CLOSE or UNSELECT the "
              "mailbox first");
    out_is(s, "A2 SELECT INBOX\r\n");
    /* a preauthenticated tunnel: authenticated commands before the greeting */
    imk_session_free(s);
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.preauth_tunnel = 1;
    s = mk(&o);
    cmd(s, IMK_CMD_SELECT, "INBOX", NULL);
    cmd(s, IMK_CMD_UID_FETCH, "1:*", "(FLAGS)");
    out_is(s, "");
    feed(s, "* PREAUTH tunnel\r\n");
    ev_is(s, "GREETING");
    out_is(s, "A1 SELECT INBOX\r\n");
    imk_session_free(s);
}

static void test_greeting_bye(void)
{
    imk_session *s = mk(NULL);
    cmd(s, IMK_CMD_CAPABILITY, NULL, NULL);
    feed(s, "* BYE [ALERT] Fatal error: Account's mailbox directory is not owned\r\n");
    ev_is(s, "GREETING");
    CHECK_INT(imk_session_state(s), IMK_STATE_LOGOUT);
    out_is(s, "");
    imk_session_eof(s);
    ev_is(s, "DONE:A1:NONE CLOSED");
    ev_is(s, "");
    CHECK_INT(imk_session_pending(s), 0);
    imk_session_free(s);
}

static void test_capability_refresh(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n");
    events(s);
    CHECK(imk_session_capabilities_known(s));
    /* an untagged CAPABILITY during LOGIN counts as fresh */
    cmd(s, IMK_CMD_LOGIN, NULL, "a b");
    out_is(s, "A1 LOGIN a b\r\n");
    feed(s, "* CAPABILITY IMAP4rev1 IDLE\r\nA1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    CHECK(imk_session_capabilities_known(s));
    CHECK(imk_session_has_capability(s, "IDLE"));
    CHECK(!imk_session_has_capability(s, "AUTH=PLAIN"));
    CHECK(!imk_session_has_capability(s, NULL));
    imk_session_free(s);

    s = mk(NULL);
    feed(s, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LITERAL+] hi\r\n");
    events(s);
    cmd(s, IMK_CMD_LOGIN, NULL, "a b");
    out_is(s, "A1 LOGIN a b\r\n");
    feed(s, "A1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    CHECK(!imk_session_capabilities_known(s));
    CHECK(!imk_session_has_capability(s, "IMAP4rev1"));
    /* LITERAL+ is forgotten too: literals synchronize again */
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_SELECT, &op), 0);
    CHECK_INT(imk_command_literal(imk_op_args(op), "x", 1, 0), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A2 SELECT {1}\r\n");
    imk_session_free(s);
}

static void test_enable(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_ENABLE, NULL, "CONDSTORE IMAP4rev2");
    out_is(s, "A1 ENABLE CONDSTORE IMAP4rev2\r\n");
    feed(s, "* ENABLED CONDSTORE\r\n* ENABLED IMAP4rev2 CONDSTORE\r\nA1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    CHECK(imk_session_is_enabled(s, "condstore"));
    CHECK(imk_session_is_enabled(s, "IMAP4REV2"));
    CHECK(!imk_session_is_enabled(s, "QRESYNC"));
    CHECK(!imk_session_is_enabled(s, NULL));
    /* ENABLED outside ENABLE: recorded, and unsolicited */
    feed(s, "* ENABLED QRESYNC\r\n");
    ev_is(s, "UNSOLICITED");
    CHECK(imk_session_is_enabled(s, "QRESYNC"));
    imk_session_free(s);
}

/* ---- STARTTLS ---- */

static imk_session *starttls_ok(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n");
    events(s);
    cmd(s, IMK_CMD_STARTTLS, NULL, NULL);
    out_is(s, "A1 STARTTLS\r\n");
    return s;
}

/* imk_op_stream_fetch: one FETCH event per response, in arrival order,
 * nothing accumulated; body sections still stream; data for other messages
 * stays unsolicited. */
static void test_stream_fetch(void)
{
    imk_session *s = selected(NULL, 3);
    imk_op *op = NULL;
    CHECK_INT(imk_session_command(s, IMK_CMD_UID_FETCH, &op), 0);
    CHECK_INT(imk_op_stream_fetch(op, 1), 0);
    CHECK_INT(imk_op_set(op, "1:2"), 0);
    CHECK_INT(imk_command_token(imk_op_args(op), "(FLAGS BODY[])"), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A2 UID FETCH 1:2 (FLAGS BODY[])\r\n");
    /* seq 1 without UID: the view's UID is filled in for the UID command */
    feed(s, "* 1 FETCH (FLAGS (\\Seen) BODY[] {3}\r\nabc)\r\n"
            "* 2 FETCH (UID 2 FLAGS ())\r\n"
            "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n"
            "* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n"
            "A2 OK done\r\n");
    imk_session_event ev;
    char got[256] = "";
    uint32_t fetched_uids[3] = {0, 0, 0};
    size_t nf = 0, len = 0;
    int rc;
    while ((rc = imk_session_next(s, &ev)) == 1) {
        if (ev.type == IMK_SE_FLAGS)
            continue; /* view updates: not the point here */
        int n = snprintf(got + len, sizeof(got) - len, "%s%s", len ? " " : "", type_name(ev.type));
        if (n > 0 && (size_t)n < sizeof(got) - len)
            len += (size_t)n;
        if (ev.type == IMK_SE_FETCH) {
            CHECK(ev.op == op);
            CHECK(ev.fetch != NULL);
            if (ev.fetch != NULL && nf < 3)
                fetched_uids[nf++] = ev.fetch->uid;
        }
        if (ev.type == IMK_SE_DONE) {
            const imk_result *r = imk_op_result(op);
            CHECK(r != NULL);
            if (r != NULL) {
                CHECK_INT(r->status, IMK_STATUS_OK);
                CHECK_INT(r->fetch_count, 0);
            }
        }
    }
    CHECK_STR(got, "BODY_BEGIN BODY_CHUNK BODY_END FETCH FETCH FETCH UNSOLICITED DONE");
    CHECK_INT(rc, 0);
    CHECK_INT(nf, 3);
    CHECK_INT(fetched_uids[0], 1);
    CHECK_INT(fetched_uids[1], 2);
    CHECK_INT(fetched_uids[2], 2);
    /* only FETCH-like commands stream */
    imk_op *noop = NULL;
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, &noop), 0);
    CHECK_INT(imk_op_stream_fetch(noop, 1), IMK_EINVAL);
    imk_op_discard(s, noop);
    imk_session_free(s);
}

/* COMPRESS (RFC 4978): after the OK nothing is read or sent until
 * imk_session_compress_done(), which hands back the compressed bytes that
 * followed the OK in the same read. */
static void test_compress_handoff(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] hi\r\n");
    ev_is(s, "GREETING");
    const char *rest = NULL;
    size_t rest_len = 99;
    CHECK_INT(imk_session_compress_done(s, &rest, &rest_len), IMK_ESTATE);
    cmd(s, IMK_CMD_COMPRESS, NULL, "DEFLATE");
    out_is(s, "A1 COMPRESS DEFLATE\r\n");
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, ""); /* COMPRESS is a barrier */
    feed(s, "A1 OK DEFLATE active\r\n\x01\x02* 9 EXISTS\r\n");
    ev_is(s, "COMPRESSING:A1 DONE:A1:OK");
    ev_is(s, "");
    out_is(s, ""); /* nothing goes out uncompressed */
    CHECK_INT(imk_session_compress_done(s, &rest, &rest_len), 0);
    CHECK_MEM(rest, rest_len, "\x01\x02* 9 EXISTS\r\n", 14);
    out_is(s, "A2 NOOP\r\n");
    ev_is(s, ""); /* the handed-back bytes are not parsed */
    feed(s, "* OK still here\r\nA2 OK\r\n");
    ev_is(s, "NOTICE DONE:A2:OK");
    CHECK_INT(imk_session_compress_done(s, NULL, NULL), IMK_ESTATE);

    /* refused: nothing changes */
    imk_session *t = mk(NULL);
    feed(t, "* PREAUTH hi\r\n");
    ev_is(t, "GREETING");
    cmd(t, IMK_CMD_COMPRESS, NULL, "DEFLATE");
    out_is(t, "A1 COMPRESS DEFLATE\r\n");
    feed(t, "A1 NO [COMPRESSIONACTIVE] already\r\n* OK x\r\n");
    ev_is(t, "DONE:A1:NO NOTICE");
    CHECK_INT(imk_session_compress_done(t, NULL, NULL), IMK_ESTATE);
    imk_session_free(t);
    imk_session_free(s);
}

/* RECENT (RFC 3501 7.3.2) is kept in the view, during SELECT and after;
 * a new SELECT starts from 0. */
static void test_recent(void)
{
    imk_session *s = selected(NULL, 3);
    CHECK_INT(imk_view_recent(imk_session_view(s)), 0);
    feed(s, "* 4 EXISTS\r\n* 1 RECENT\r\n");
    events(s);
    CHECK_INT(imk_view_recent(imk_session_view(s)), 1);
    cmd(s, IMK_CMD_SELECT, "Other", NULL);
    out_is(s, "A2 SELECT Other\r\n");
    feed(s, "* 2 EXISTS\r\n* 2 RECENT\r\nA2 OK [READ-WRITE] done\r\n");
    events(s);
    CHECK_INT(imk_view_recent(imk_session_view(s)), 2);
    cmd(s, IMK_CMD_SELECT, "Third", NULL);
    out_is(s, "A3 SELECT Third\r\n");
    feed(s, "* 0 EXISTS\r\nA3 OK [READ-WRITE] done\r\n");
    events(s);
    CHECK_INT(imk_view_recent(imk_session_view(s)), 0);
    imk_session_free(s);
}

static void test_starttls_injection(void)
{
    /* 1. bytes in the same read as the OK */
    imk_session *s = starttls_ok();
    feed(s, "A1 OK go\r\n* CAPABILITY X\r\n");
    ev_is(s, "DONE:A1:OK FATAL:IMK_EPROTO");
    CHECK_INT(imk_session_starttls_done(s), IMK_EPROTO);
    CHECK_INT(imk_session_feed(s, "x", 1), 0);
    imk_session_free(s);

    /* 2. a partial line in the same read (no CRLF yet) */
    s = starttls_ok();
    feed(s, "A1 OK go\r\n* CAP");
    ev_is(s, "DONE:A1:OK FATAL:IMK_EPROTO");
    imk_session_free(s);

    /* 3. bytes fed after the OK but before the handshake */
    s = starttls_ok();
    feed(s, "A1 OK go\r\n");
    ev_is(s, "DONE:A1:OK");
    ev_is(s, "");
    feed(s, "*");
    ev_is(s, "FATAL:IMK_EPROTO");
    imk_session_free(s);

    /* 4. the same through imk_session_buffer/commit */
    s = starttls_ok();
    feed(s, "A1 OK go\r\n");
    ev_is(s, "DONE:A1:OK");
    size_t room;
    char *p = imk_session_buffer(s, &room);
    CHECK(p != NULL && room > 0);
    if (p != NULL && room > 0) {
        p[0] = '*';
        CHECK_INT(imk_session_commit(s, 1), 0);
    }
    ev_is(s, "FATAL:IMK_EPROTO");
    CHECK(strstr(imk_session_error(s), "CVE-2020-15953") != NULL);
    imk_session_free(s);

    /* 5. the good case: nothing until the handshake, then normal */
    s = starttls_ok();
    cmd(s, IMK_CMD_CAPABILITY, NULL, NULL);
    feed(s, "A1 OK go\r\n");
    ev_is(s, "DONE:A1:OK");
    CHECK(!imk_session_capabilities_known(s));
    out_is(s, "");
    CHECK_INT(imk_session_starttls_done(s), 0);
    out_is(s, "A2 CAPABILITY\r\n");
    feed(s, "* CAPABILITY IMAP4rev1\r\nA2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    CHECK(imk_session_capabilities_known(s));
    imk_session_free(s);

    /* 6. STARTTLS refused: no handshake pending, reading goes on */
    s = starttls_ok();
    feed(s, "A1 NO not now\r\n* OK still\r\n");
    ev_is(s, "DONE:A1:NO NOTICE");
    CHECK_INT(imk_session_starttls_done(s), IMK_ESTATE);
    imk_session_free(s);
}

/* ---- literals, AUTHENTICATE, IDLE ---- */

static void test_streamed_literal(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_APPEND, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal_stream(imk_op_args(op), 10, 0), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, "A1 APPEND INBOX {10}\r\n");
    /* before "+": nothing wanted, nothing taken */
    CHECK_INT(imk_session_stream_pending(s), 0);
    CHECK_INT(imk_session_stream_write(s, "0123456789", 10), 0);
    feed(s, "+ go\r\n");
    ev_is(s, "");
    CHECK_INT(imk_session_stream_pending(s), 10);
    CHECK_INT(imk_session_stream_write(s, "0123", 4), 4);
    CHECK_INT(imk_session_stream_pending(s), 6);
    out_is(s, "0123");
    /* never more than announced */
    CHECK_INT(imk_session_stream_write(s, "456789XYZ", 9), 6);
    CHECK_INT(imk_session_stream_pending(s), 0);
    /* the command's CRLF, and only then the next command */
    out_is(s, "456789\r\nA2 NOOP\r\n");
    CHECK_INT(imk_session_stream_write(s, "x", 1), 0);
    feed(s, "A1 OK [APPENDUID 7 42] done\r\nA2 OK done\r\n");
    imk_session_event ev;
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_DONE);
    const imk_result *r = imk_op_result(ev.op);
    CHECK(r != NULL && r->has_appenduid && r->uidvalidity == 7);
    ev_is(s, "DONE:A2:OK");
    imk_session_free(s);
}

static void test_auth_checks(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* OK hi\r\n");
    events(s);
    imk_op *op = cmd(s, IMK_CMD_AUTHENTICATE, NULL, "PLAIN");
    out_is(s, "A1 AUTHENTICATE PLAIN\r\n");
    /* no challenge yet */
    CHECK_INT(imk_session_auth_respond(s, op, "AA==", 4), IMK_ESTATE);
    feed(s, "+ \r\n");
    ev_is(s, "CONTINUATION:A1");
    /* CR/LF would end the line early and smuggle a command */
    CHECK_INT(imk_session_auth_respond(s, op, "AA==\r\nA9 DELETE INBOX", 21), IMK_EINVAL);
    CHECK_INT(imk_session_auth_respond(s, NULL, "AA==", 4), IMK_ESTATE);
    CHECK_INT(imk_session_auth_respond(s, op, "AGEAYg==", 8), 0);
    out_is(s, "AGEAYg==\r\n");
    feed(s, "+ more\r\n");
    ev_is(s, "CONTINUATION:A1");
    CHECK_INT(imk_session_auth_respond(s, op, "", 0), 0);
    out_is(s, "\r\n");
    feed(s, "A1 NO [AUTHENTICATIONFAILED] wrong\r\n");
    ev_is(s, "DONE:A1:NO");
    CHECK_INT(imk_session_state(s), IMK_STATE_NOT_AUTHENTICATED);
    imk_session_free(s);
}

static void test_idle_queued_done(void)
{
    imk_session *s = selected(NULL, 1);
    cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
    imk_op *idle = cmd(s, IMK_CMD_IDLE, NULL, NULL);
    /* DONE asked for while IDLE is still queued */
    CHECK_INT(imk_session_idle_done(s, idle), 0);
    CHECK_INT(imk_session_idle_done(s, idle), IMK_ESTATE);
    out_is(s, "A2 UID FETCH 1 (FLAGS)\r\n");
    feed(s, "A2 OK done\r\n");
    ev_is(s, "DONE:A2:OK");
    out_is(s, "A3 IDLE\r\n");
    feed(s, "+ idling\r\n");
    ev_is(s, "IDLING:A3");
    out_is(s, "DONE\r\n");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    imk_session_free(s);
}

static void test_literal_caps(void)
{
    /* LITERAL-: non-synchronizing up to 4096 bytes only (RFC 7888) */
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH [CAPABILITY IMAP4rev1 LITERAL- BINARY] hi\r\n");
    events(s);
    static char big[4097];
    memset(big, 'x', sizeof(big));
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_APPEND, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(imk_op_args(op), "abc", 3, 0), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A1 APPEND INBOX {3+}\r\nabc\r\n");
    feed(s, "A1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    CHECK_INT(imk_session_command(s, IMK_CMD_APPEND, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(imk_op_args(op), big, sizeof(big), 0), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A2 APPEND INBOX {4097}\r\n");
    feed(s, "A2 NO too big\r\n");
    ev_is(s, "DONE:A2:NO");
    out_is(s, "");
    /* BINARY: literal8 allowed */
    CHECK_INT(imk_session_command(s, IMK_CMD_APPEND, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_command_literal(imk_op_args(op), "a\0b", 3, 1), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    size_t olen;
    char *out = take_output_len(s, &olen);
    static const char want[] = "A3 APPEND INBOX ~{3+}\r\na\0b\r\n";
    CHECK_MEM(out, olen, want, sizeof(want) - 1);
    free(out);
    imk_session_free(s);

    /* without the capabilities: synchronizing, and no literal8 */
    s = mk(NULL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    CHECK_INT(imk_session_command(s, IMK_CMD_APPEND, &op), 0);
    CHECK_INT(imk_command_literal(imk_op_args(op), "a\0b", 3, 1), IMK_ENOTSUP);
    imk_op_discard(s, op);
    imk_session_free(s);
}

/* ---- op lifecycle ---- */

static void test_discard_and_submit_errors(void)
{
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, &op), 0);
    imk_op_discard(s, op);
    /* an argument the encoder refuses: submit fails and frees the op */
    CHECK_INT(imk_session_command(s, IMK_CMD_SELECT, &op), 0);
    CHECK_INT(imk_command_atom(imk_op_args(op), "a b"), IMK_EINVAL);
    CHECK_INT(imk_session_submit(s, op), IMK_EINVAL);
    CHECK(strncmp(imk_session_error(s), "SELECT: ", 8) == 0);
    /* a bad set is refused by imk_op_set */
    CHECK_INT(imk_session_command(s, IMK_CMD_SELECT, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    CHECK_INT(imk_session_submit(s, op), IMK_EINVAL); /* twice: refused, not freed */
    imk_op_discard(s, op);                            /* not building: ignored */
    out_is(s, "A3 SELECT INBOX\r\n");
    feed(s, "A3 OK done\r\n");
    ev_is(s, "DONE:A3:OK");
    CHECK_INT(imk_session_command(s, IMK_CMD_UID_FETCH, &op), 0);
    CHECK_INT(imk_op_set(op, "1:0"), IMK_EINVAL);
    CHECK_INT(imk_op_set(NULL, "1"), IMK_EINVAL);
    imk_op_discard(s, op);
    CHECK_INT(imk_session_pending(s), 0);
    /* tags are never reused */
    op = cmd(s, IMK_CMD_NOOP, NULL, NULL);
    CHECK_STR(imk_op_tag(op), "A5");
    imk_session_free(s); /* frees building/queued/in-flight ops */
}

static void test_done_lifetime(void)
{
    imk_session *s = selected(NULL, 2);
    cmd(s, IMK_CMD_UID_FETCH, "1:2", "(FLAGS)");
    out_is(s, "A2 UID FETCH 1:2 (FLAGS)\r\n");
    feed(s, "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\nA2 OK done\r\n* 2 EXISTS\r\n");
    imk_session_event ev;
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_FLAGS);
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_DONE);
    imk_op *op = ev.op;
    const imk_result *r = imk_op_result(op);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK_INT(r->status, IMK_STATUS_OK);
        CHECK_INT(r->fetch_count, 1);
        CHECK_MEM(r->text.data, r->text.len, "done", 4);
        CHECK_MEM(ev.text.data, ev.text.len, "done", 4);
    }
    CHECK_STR(imk_op_tag(op), "A2");        /* still valid until the next call */
    CHECK_INT(imk_session_next(s, &ev), 0); /* "* 2 EXISTS": no change, no event */
    imk_session_free(s);
}

/* ---- limits ---- */

static void test_max_output(void)
{
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.max_output = 8;
    imk_session *s = mk(&o);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_STATUS, "A-long-mailbox-name", "(MESSAGES UNSEEN)");
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    const char *p;
    size_t n, total = 0;
    char all[128];
    int pieces = 0;
    while ((n = imk_session_output(s, &p)) > 0 && total < sizeof(all)) {
        CHECK(n <= 8);
        /* send at most 3 bytes at a time: partial sends keep the order */
        size_t k = n < 3 ? n : 3;
        if (total + k < sizeof(all))
            memcpy(all + total, p, k);
        total += k;
        imk_session_sent(s, k);
        pieces++;
    }
    all[total < sizeof(all) ? total : sizeof(all) - 1] = '\0';
    CHECK_STR(all, "A1 STATUS A-long-mailbox-name (MESSAGES UNSEEN)\r\nA2 NOOP\r\n");
    CHECK(pieces > 10);
    imk_session_free(s);

    s = mk(&o);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_STATUS, "A-long-mailbox-name", "(MESSAGES UNSEEN)");
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    char *out = take_output(s);
    CHECK_STR(out, "A1 STATUS A-long-mailbox-name (MESSAGES UNSEEN)\r\nA2 NOOP\r\n");
    free(out);
    /* an AUTHENTICATE answer that cannot fit beside pending output */
    imk_session_free(s);
    s = mk(&o);
    feed(s, "* OK hi\r\n");
    events(s);
    imk_op *op = cmd(s, IMK_CMD_AUTHENTICATE, NULL, "X");
    out = take_output(s);
    CHECK_STR(out, "A1 AUTHENTICATE X\r\n");
    free(out);
    feed(s, "+ \r\n");
    ev_is(s, "CONTINUATION:A1");
    CHECK_INT(imk_session_auth_respond(s, op, "0123456789", 10), IMK_ELIMIT);
    CHECK_INT(imk_session_auth_respond(s, op, "012345", 6), 0);
    out_is(s, "012345\r\n");
    imk_session_free(s);
}

static void test_max_ops(void)
{
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.max_ops = 2;
    imk_session *s = mk(&o);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    imk_op *b;
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, &b), 0); /* building counts */
    imk_op *c = NULL;
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, &c), IMK_ELIMIT);
    CHECK(c == NULL);
    CHECK_STR(imk_session_error(s),
              "2 commands are already queued or in flight (max_ops): wait for some to complete");
    imk_op_discard(s, b);
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, "A1 NOOP\r\nA3 NOOP\r\n");
    feed(s, "A1 OK done\r\n");
    ev_is(s, "DONE:A1:OK");
    cmd(s, IMK_CMD_NOOP, NULL, NULL);
    out_is(s, "A4 NOOP\r\n");
    imk_session_free(s);
}

static void test_max_result_size(void)
{
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.max_result_size = 64; /* not even room for a code: the status stays */
    imk_session *s = mk(&o);
    feed(s, "* PREAUTH hi\r\n");
    events(s);
    cmd(s, IMK_CMD_LIST, NULL, "\"\" *");
    out_is(s, "A1 LIST \"\" *\r\n");
    feed(s, "* LIST () \"/\" INBOX\r\n* LIST () \"/\" Archive/2024/Some/Long/Name\r\n"
            "A1 OK [ALERT] List completed with a long text\r\n");
    imk_session_event ev;
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_DONE);
    const imk_result *r = imk_op_result(ev.op);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK_INT(r->status, IMK_STATUS_OK);
        CHECK_INT(r->error, IMK_ELIMIT);
    }
    imk_session_free(s);
}

/* ---- end of stream, events ---- */

static void test_eof(void)
{
    imk_session *s = selected(NULL, 1);
    cmd(s, IMK_CMD_UID_FETCH, "1", "(FLAGS)");
    cmd(s, IMK_CMD_CLOSE, NULL, NULL);
    out_is(s, "A2 UID FETCH 1 (FLAGS)\r\n");
    feed(s, "* 1 FETCH (UID 1 FL");
    imk_session_eof(s);
    imk_session_eof(s);
    CHECK_INT(imk_session_feed(s, "x", 1), 0);
    ev_is(s, "PROTOCOL_ERROR DONE:A2:NONE DONE:A3:NONE CLOSED");
    ev_is(s, "");
    CHECK_INT(imk_session_state(s), IMK_STATE_LOGOUT);
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_NOOP, &op), IMK_ESTATE);
    imk_session_free(s);
}

static void test_untagged_status_events(void)
{
    imk_session *s = selected(NULL, 2);
    feed(s, "* NO [ALERT] disk full\r\n* OK [INPROGRESS (\"A9\" 1 2)] x\r\n");
    imk_session_event ev;
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_NOTICE);
    CHECK_INT(ev.alert, 1);
    CHECK_INT(ev.status, IMK_STATUS_NO);
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_PROGRESS);
    CHECK(ev.op == NULL); /* unknown tag */
    CHECK(ev.has_count && ev.count == 1 && ev.has_goal && ev.goal == 2);
    /* a UIDVALIDITY change empties the view and is reported */
    feed(s, "* OK [UIDVALIDITY 5] x\r\n* OK [UIDVALIDITY 6] y\r\n");
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_NOTICE);
    CHECK_INT(imk_session_next(s, &ev), 1);
    CHECK_INT(ev.type, IMK_SE_UIDVALIDITY);
    CHECK(ev.old_uidvalidity == 5 && ev.uidvalidity == 6);
    ev_is(s, "NOTICE");
    CHECK_INT(imk_view_exists(imk_session_view(s)), 0);
    imk_session_free(s);
}

static void test_alloc_failure(void)
{
    /* every allocation of a session's life fails once: no crash, no leak */
    for (long n = 1; n < 2000; n++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, n);
        imk_session *s = NULL;
        int rc = imk_session_new(NULL, &a, &s);
        if (rc == 0) {
            imk_session_feed(s, "* PREAUTH [CAPABILITY IMAP4rev1 IDLE] hi\r\n", 42);
            imk_session_event ev;
            while (imk_session_next(s, &ev) == 1)
                ;
            imk_op *op;
            if (imk_session_command(s, IMK_CMD_SELECT, &op) == 0) {
                imk_op_mailbox(op, "INBOX", 5);
                imk_session_submit(s, op);
            }
            if (imk_session_command(s, IMK_CMD_UID_FETCH, &op) == 0) {
                imk_op_set(op, "1:*");
                imk_command_token(imk_op_args(op), "(FLAGS)");
                imk_session_submit(s, op);
            }
            const char *p;
            size_t k;
            while ((k = imk_session_output(s, &p)) > 0)
                imk_session_sent(s, k);
            static const char in[] = "* 2 EXISTS\r\n* 1 FETCH (UID 4 FLAGS (\\Seen))\r\n"
                                     "A1 OK done\r\n* 2 FETCH (UID 5 FLAGS ())\r\nA2 OK x\r\n";
            imk_session_feed(s, in, sizeof(in) - 1);
            while (imk_session_next(s, &ev) == 1)
                ;
            imk_session_eof(s);
            while (imk_session_next(s, &ev) == 1)
                ;
            imk_session_free(s);
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
        }
        CHECK_INT(fa.live, 0);
        if (!fa.failed)
            break;
    }
}

/* A VANISHED naming every message of a large view is one event, not one per
 * message: the server chooses the size of the set, and the event queue must
 * not grow with it. The removed messages still reach UID EXPUNGE's result. */
static void test_vanished_one_event(void)
{
    enum { N = 20000 };
    imk_session *s = mk(NULL);
    feed(s, "* PREAUTH [CAPABILITY IMAP4rev1 QRESYNC] hi\r\n");
    const char *got = events(s);
    CHECK_STR(got, "GREETING");
    imk_op *op = NULL;
    CHECK_INT(imk_session_command(s, IMK_CMD_SELECT, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A1 SELECT INBOX\r\n");
    feed(s, "* 20000 EXISTS\r\nA1 OK [READ-WRITE] done\r\n");
    got = events(s);
    CHECK_STR(got, "EXISTS DONE:A1:OK");
    char line[64];
    for (int i = 1; i <= N; i++) {
        snprintf(line, sizeof(line), "* %d FETCH (UID %d)\r\n", i, 2 * i);
        feed(s, line);
        imk_session_event ev;
        while (imk_session_next(s, &ev) == 1)
            ;
    }
    CHECK_INT(imk_view_uid_of_seq(imk_session_view(s), N), 2 * N);
    CHECK_INT(imk_session_command(s, IMK_CMD_UID_EXPUNGE, &op), 0);
    CHECK_INT(imk_op_set(op, "1:*"), 0);
    CHECK_INT(imk_session_submit(s, op), 0);
    out_is(s, "A2 UID EXPUNGE 1:*\r\n");
    feed(s, "* VANISHED 1:*\r\nA2 OK done\r\n");
    imk_session_event ev;
    int vanished = 0, other = 0;
    while (imk_session_next(s, &ev) == 1) {
        if (ev.type == IMK_SE_VANISHED) {
            vanished++;
            CHECK_INT(ev.removed, N);
            CHECK_INT(ev.earlier, 0);
            CHECK_INT(ev.uids.count, 1);
        } else if (ev.type == IMK_SE_DONE) {
            const imk_result *res = imk_op_result(ev.op);
            CHECK_INT(res->expunged_count, N);
            if (res->expunged_count == N)
                CHECK_INT(res->expunged_uids[N - 1], 2 * N);
        } else {
            other++;
        }
    }
    CHECK_INT(vanished, 1);
    CHECK_INT(other, 0);
    CHECK_INT(imk_view_exists(imk_session_view(s)), 0);
    imk_session_free(s);
}

int main(void)
{
    RUN(test_options);
    RUN(test_verbs);
    RUN(test_nothing_before_greeting);
    RUN(test_uid_fetches_together);
    RUN(test_overlap_waits);
    RUN(test_seq_rules);
    RUN(test_search_rules);
    RUN(test_uid_search_seq_detection);
    RUN(test_status_list_rules);
    RUN(test_barriers);
    RUN(test_state_checks);
    RUN(test_greeting_bye);
    RUN(test_capability_refresh);
    RUN(test_enable);
    RUN(test_starttls_injection);
    RUN(test_stream_fetch);
    RUN(test_recent);
    RUN(test_compress_handoff);
    RUN(test_streamed_literal);
    RUN(test_auth_checks);
    RUN(test_idle_queued_done);
    RUN(test_literal_caps);
    RUN(test_discard_and_submit_errors);
    RUN(test_done_lifetime);
    RUN(test_max_output);
    RUN(test_max_ops);
    RUN(test_max_result_size);
    RUN(test_vanished_one_event);
    RUN(test_eof);
    RUN(test_untagged_status_events);
    RUN(test_alloc_failure);
    return test_finish();
}
