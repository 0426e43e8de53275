/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the command builders (src/client/build.c) and the criteria
 * encoder (src/client/criteria.c), on a bare session: no connection, no
 * server. Each test gives the session the capabilities it wants in the
 * greeting, begins an op, runs one builder, submits, and compares the bytes
 * the session puts on the wire exactly. Refusals are checked by code and
 * by a piece of their message.
 *
 * Covered: every builder, each capability-dependent branch both ways,
 * injection attempts (CR/LF in mailbox names, flags, criteria args, ID
 * values, metadata values: sent as literals or refused, never as protocol),
 * criteria errors, non-ASCII args (CHARSET UTF-8 and a literal, or a
 * quoted UTF-8 string once UTF8=ACCEPT is enabled), inline vs streamed
 * APPEND and its literal announcements, MULTIAPPEND, QRESYNC parameters,
 * LIST-EXTENDED / LIST-STATUS, STORE UNCHANGEDSINCE, GETMETADATA options,
 * SETMETADATA NIL, that an ESEARCH with the op's tag lands in its result,
 * and imk_result_ids() on both result forms. The public wrappers need a
 * server: they are exercised by the integration tests.
 */
#include "client/client_int.h"

#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[IMK__ERRBUF];

/* ---- session plumbing ---- */

static void feed(imk_session *s, const char *text)
{
    size_t n = strlen(text);
    CHECK_INT(imk_session_feed(s, text, n), n);
}

static void drain(imk_session *s)
{
    imk_session_event ev;
    while (imk_session_next(s, &ev) == 1)
        ;
}

/* Complete the op that is on the wire with a tagged OK. */
static void complete(imk_session *s, const char *tag)
{
    char line[64];
    snprintf(line, sizeof(line), "%s OK done\r\n", tag);
    feed(s, line);
    drain(s);
}

/* Submit `op` (its bytes are not what the test is about: they are taken
 * unseen); its tag goes to tag[32]. */
static void submit_unseen(imk_session *s, imk_op *op, char *tag)
{
    snprintf(tag, 32, "%s", imk_op_tag(op));
    CHECK_INT(imk_session_submit(s, op), 0);
    free(take_output_len(s, NULL));
}

/* A session in the authenticated state whose capabilities are `caps`
 * (NULL: none announced, so unknown), with `enable` (or NULL) enabled. */
static imk_session *mk(const char *caps, const char *enable)
{
    imk_session *s = NULL;
    CHECK_INT(imk_session_new(NULL, NULL, &s), 0);
    if (s == NULL)
        abort();
    char line[512];
    if (caps != NULL)
        snprintf(line, sizeof(line), "* PREAUTH [CAPABILITY IMAP4rev1 %s] hi\r\n", caps);
    else
        snprintf(line, sizeof(line), "* PREAUTH hi\r\n");
    feed(s, line);
    drain(s);
    if (enable != NULL) {
        imk_op *op;
        CHECK_INT(imk_session_command(s, IMK_CMD_ENABLE, &op), 0);
        CHECK_INT(imk_command_atom(imk_op_args(op), enable), 0);
        char tag[32];
        submit_unseen(s, op, tag);
        snprintf(line, sizeof(line), "* ENABLED %s\r\n", enable);
        feed(s, line);
        complete(s, tag);
        CHECK(imk_session_is_enabled(s, enable));
    }
    return s;
}

/* Select INBOX (read-write) so that message commands may start. */
static void select_inbox(imk_session *s)
{
    imk_op *op;
    CHECK_INT(imk_session_command(s, IMK_CMD_SELECT, &op), 0);
    CHECK_INT(imk_op_mailbox(op, "INBOX", 5), 0);
    char tag[32];
    submit_unseen(s, op, tag);
    complete(s, tag);
    CHECK_INT(imk_session_state(s), IMK_STATE_SELECTED);
}

static imk_op *begin(imk_session *s, imk_command_kind kind)
{
    imk_op *op = NULL;
    CHECK_INT(imk_session_command(s, kind, &op), 0);
    if (op == NULL)
        abort();
    err[0] = '\0';
    return op;
}

/* Submit and compare what goes on the wire now with "<tag> " + expect
 * (expect_len bytes); then, when `finish`, complete the command. */
static void wire_is_len(imk_session *s, imk_op *op, const char *expect, size_t expect_len,
                        int finish, int line)
{
    char tag[32], want[70000];
    snprintf(tag, sizeof(tag), "%s", imk_op_tag(op));
    size_t tl = strlen(tag);
    memcpy(want, tag, tl);
    want[tl] = ' ';
    memcpy(want + tl + 1, expect, expect_len);
    int rc = imk_session_submit(s, op);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "  (line %d) submit: %s\n", line, imk_session_error(s));
        return;
    }
    size_t len;
    char *out = take_output_len(s, &len);
    int before = test_failures;
    CHECK_MEM(out, len, want, tl + 1 + expect_len);
    if (test_failures != before)
        fprintf(stderr, "  (line %d)\n", line);
    free(out);
    if (finish)
        complete(s, tag);
}

/* Submit; what goes on the wire now is "<tag> " + `expect` (a string
 * literal), and the command is not completed: a literal waits for "+", the
 * core streams the rest, or the test answers. The tag goes to tag[32]. */
#define ON_WIRE(s, op, tag, expect)                                                                \
    do {                                                                                           \
        snprintf((tag), 32, "%s", imk_op_tag(op));                                                 \
        wire_is_len((s), (op), (expect), sizeof(expect) - 1, 0, __LINE__);                         \
    } while (0)

/* The server's "+": the rest of the command may go. */
static void go_ahead(imk_session *s)
{
    feed(s, "+ go\r\n");
    drain(s);
}

/* The rest of the command is `expect`; the tagged OK completes it. */
static void rest_is(imk_session *s, const char *tag, const char *expect)
{
    char *out = take_output_len(s, NULL);
    CHECK_STR(out, expect);
    free(out);
    complete(s, tag);
}

/* The builder returned 0 and the whole command is `expect`. */
#define SENT(s, op, rc, expect)                                                                    \
    do {                                                                                           \
        int sent_rc_ = (rc);                                                                       \
        CHECK_INT(sent_rc_, 0);                                                                    \
        if (sent_rc_ == 0)                                                                         \
            wire_is_len(s, op, expect, sizeof(expect) - 1, 1, __LINE__);                           \
        else {                                                                                     \
            fprintf(stderr, "  (line %d) %s\n", __LINE__, err);                                    \
            imk_op_discard(s, op);                                                                 \
        }                                                                                          \
    } while (0)

/* The builder returned `code` with a message holding `part`; the op is
 * discarded. */
#define REFUSED(s, op, rc, code, part)                                                             \
    do {                                                                                           \
        CHECK_INT((rc), (code));                                                                   \
        if (strstr(err, (part)) == NULL) {                                                         \
            CHECK(strstr(err, (part)) != NULL);                                                    \
            fprintf(stderr, "  (line %d) message: %s\n", __LINE__, err);                           \
        }                                                                                          \
        CHECK(strchr(err, '\r') == NULL && strchr(err, '\n') == NULL);                             \
        imk_op_discard(s, op);                                                                     \
    } while (0)

#define E err, sizeof(err)

/* Tables of refusals: each case begins an op of `kind`, runs a builder
 * on the case's arguments, and expects REFUSED with its code and part. */
typedef struct refusal {
    const char *a, *b; /* the builder's arguments, in its order */
    uint64_t n;
    int code;
    const char *part;
} refusal;

typedef int (*refusal_build)(imk_session *s, imk_op *op, const refusal *r);

static void check_refusals(imk_session *s, imk_command_kind kind, refusal_build build,
                           const refusal *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        imk_op *op = begin(s, kind);
        int before = test_failures;
        REFUSED(s, op, build(s, op, &table[i]), table[i].code, table[i].part);
        if (test_failures != before)
            fprintf(stderr, "  (table case %zu)\n", i);
    }
}

#define REFUSALS(s, kind, build, table)                                                            \
    check_refusals((s), (kind), (build), (table), sizeof(table) / sizeof((table)[0]))

/* ---- session commands ---- */

static void test_enable(void)
{
    imk_session *s = mk("ENABLE CONDSTORE QRESYNC", NULL);
    const char *exts[] = {"CONDSTORE", "QRESYNC"};
    imk_op *op = begin(s, IMK_CMD_ENABLE);
    SENT(s, op, imk__build_enable(s, op, exts, 2, E), "ENABLE CONDSTORE QRESYNC\r\n");
    op = begin(s, IMK_CMD_ENABLE);
    REFUSED(s, op, imk__build_enable(s, op, exts, 0, E), IMK_EINVAL, "at least one");
    const char *bad[] = {"CONDSTORE\r\nA9 LOGOUT"};
    op = begin(s, IMK_CMD_ENABLE);
    REFUSED(s, op, imk__build_enable(s, op, bad, 1, E), IMK_EINVAL, "ENABLE: ");
    imk_session_free(s);

    s = mk("IDLE", NULL);
    op = begin(s, IMK_CMD_ENABLE);
    REFUSED(s, op, imk__build_enable(s, op, exts, 1, E), IMK_ENOTSUP,
            "ENABLE is not offered by the server");
    imk_session_free(s);

    /* IMAP4rev2 includes ENABLE (RFC 9051 appendix E) */
    s = mk("IMAP4rev2", NULL);
    op = begin(s, IMK_CMD_ENABLE);
    SENT(s, op, imk__build_enable(s, op, exts, 1, E), "ENABLE CONDSTORE\r\n");
    imk_session_free(s);

    /* capabilities not known: say so */
    s = mk(NULL, NULL);
    op = begin(s, IMK_CMD_ENABLE);
    REFUSED(s, op, imk__build_enable(s, op, exts, 1, E), IMK_ENOTSUP,
            "capabilities are not known (send CAPABILITY first)");
    imk_session_free(s);
}

static void test_id(void)
{
    imk_session *s = mk("ID", NULL);
    imk_op *op = begin(s, IMK_CMD_ID);
    SENT(s, op, imk__build_id(s, op, NULL, 0, E), "ID NIL\r\n");
    const char *kv[] = {"name", "imapkit", "version", NULL};
    op = begin(s, IMK_CMD_ID);
    SENT(s, op, imk__build_id(s, op, kv, 2, E), "ID (\"name\" \"imapkit\" \"version\" NIL)\r\n");
    /* a CR LF in a value: a literal, so the command waits for "+" before
     * the value's bytes, which can never be read as a command */
    const char *inj[] = {"name", "x\r\nA9 LOGOUT"};
    op = begin(s, IMK_CMD_ID);
    CHECK_INT(imk__build_id(s, op, inj, 1, E), 0);
    char tag[32];
    ON_WIRE(s, op, tag, "ID (\"name\" {12}\r\n");
    go_ahead(s);
    rest_is(s, tag, "x\r\nA9 LOGOUT)\r\n");
    /* RFC 2971 limits */
    const char *longkey[] = {"0123456789012345678901234567890", "v"};
    op = begin(s, IMK_CMD_ID);
    REFUSED(s, op, imk__build_id(s, op, longkey, 1, E), IMK_EINVAL, "30 bytes");
    const char *many[62];
    for (int i = 0; i < 62; i++)
        many[i] = "k";
    op = begin(s, IMK_CMD_ID);
    REFUSED(s, op, imk__build_id(s, op, many, 31, E), IMK_EINVAL, "at most 30");
    const char *nullkey[] = {NULL, "v"};
    op = begin(s, IMK_CMD_ID);
    REFUSED(s, op, imk__build_id(s, op, nullkey, 1, E), IMK_EINVAL, "key 0 is NULL");
    imk_session_free(s);

    /* with LITERAL+ the same value goes in one piece */
    s = mk("ID LITERAL+", NULL);
    op = begin(s, IMK_CMD_ID);
    SENT(s, op, imk__build_id(s, op, inj, 1, E), "ID (\"name\" {12+}\r\nx\r\nA9 LOGOUT)\r\n");
    imk_session_free(s);

    s = mk("IMAP4rev2", NULL);
    op = begin(s, IMK_CMD_ID);
    REFUSED(s, op, imk__build_id(s, op, NULL, 0, E), IMK_ENOTSUP, "ID is not offered");
    imk_session_free(s);
}

/* ---- mailboxes ---- */

static void test_list(void)
{
    imk_session *s = mk("LIST-EXTENDED LIST-STATUS SPECIAL-USE LITERAL+", NULL);
    imk_op *op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "*", NULL, E), "LIST \"\" *\r\n");
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, NULL, "Entw\xc3\xbcrfe/%", NULL, E),
         "LIST \"\" Entw&APw-rfe/%\r\n");
    imk_list_params p = {IMK_LIST_SUBSCRIBED | IMK_LIST_RECURSIVEMATCH | IMK_LIST_RETURN_CHILDREN,
                         NULL};
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "%", &p, E),
         "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)\r\n");
    p.flags = IMK_LIST_SPECIAL_USE;
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "*", &p, E), "LIST (SPECIAL-USE) \"\" *\r\n");
    p.flags = IMK_LIST_RETURN_SPECIAL_USE;
    p.status_items = "MESSAGES UNSEEN";
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "*", &p, E),
         "LIST \"\" * RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n");
    p.flags = 0;
    p.status_items = "(MESSAGES UIDNEXT)";
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "*", &p, E),
         "LIST \"\" * RETURN (STATUS (MESSAGES UIDNEXT))\r\n");
    /* refusals */
    p.status_items = "MESSAGES\r\nA9 LOGOUT";
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", "*", &p, E), IMK_EINVAL, "status items");
    p.status_items = NULL;
    p.flags = IMK_LIST_RECURSIVEMATCH;
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", "*", &p, E), IMK_EINVAL,
            "RECURSIVEMATCH needs SUBSCRIBED");
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", NULL, NULL, E), IMK_EINVAL, "pattern is NULL");
    /* a reference with CR LF: modified UTF-7 encodes them */
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "a\r\nb", "*", NULL, E), "LIST a&AA0ACg-b *\r\n");
    imk_session_free(s);

    s = mk("LIST-EXTENDED", NULL);
    p.flags = 0;
    p.status_items = "MESSAGES";
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", "*", &p, E), IMK_ENOTSUP,
            "LIST-STATUS is not offered by the server: ask for STATUS separately");
    p.status_items = NULL;
    p.flags = IMK_LIST_SPECIAL_USE;
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", "*", &p, E), IMK_ENOTSUP,
            "SPECIAL-USE is not offered");
    imk_session_free(s);

    s = mk("CHILDREN", NULL);
    p.flags = IMK_LIST_SUBSCRIBED;
    op = begin(s, IMK_CMD_LIST);
    REFUSED(s, op, imk__build_list(s, op, "", "*", &p, E), IMK_ENOTSUP,
            "LIST-EXTENDED is not offered");
    imk_session_free(s);

    /* IMAP4rev2 includes LIST-EXTENDED and LIST-STATUS */
    s = mk("IMAP4rev2", NULL);
    p.flags = IMK_LIST_SUBSCRIBED;
    p.status_items = "MESSAGES";
    op = begin(s, IMK_CMD_LIST);
    SENT(s, op, imk__build_list(s, op, "", "*", &p, E),
         "LIST (SUBSCRIBED) \"\" * RETURN (STATUS (MESSAGES))\r\n");
    imk_session_free(s);
}

static int status_build(imk_session *s, imk_op *op, const refusal *r)
{
    return imk__build_status(s, op, r->a, r->b, E);
}

static void test_status(void)
{
    imk_session *s = mk("LITERAL+", NULL);
    imk_op *op = begin(s, IMK_CMD_STATUS);
    SENT(s, op, imk__build_status(s, op, "INBOX", "MESSAGES UIDNEXT UIDVALIDITY UNSEEN", E),
         "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n");
    op = begin(s, IMK_CMD_STATUS);
    SENT(s, op, imk__build_status(s, op, "Sent Items", " (MESSAGES)  ", E),
         "STATUS \"Sent Items\" (MESSAGES)\r\n");
    /* CR LF in a mailbox name: modified UTF-7 encodes control characters,
     * so they never appear on the wire */
    op = begin(s, IMK_CMD_STATUS);
    SENT(s, op, imk__build_status(s, op, "a\r\nb", "MESSAGES", E),
         "STATUS a&AA0ACg-b (MESSAGES)\r\n");
    /* mailbox, items */
    static const refusal status_refused[] = {
        {"INBOX", NULL, 0, IMK_EINVAL, "items is NULL"},
        {"INBOX", "  ", 0, IMK_EINVAL, "no status items given"},
        {NULL, "MESSAGES", 0, IMK_EINVAL, "NULL"},
        {"INBOX", "MESSAGES HIGHESTMODSEQ", 0, IMK_ENOTSUP, "STATUS: CONDSTORE is not offered"},
        {"INBOX", "SIZE", 0, IMK_ENOTSUP, "STATUS=SIZE is not offered"},
        {"INBOX", "MESSAGES \"X\"", 0, IMK_EINVAL, "status items"},
    };
    REFUSALS(s, IMK_CMD_STATUS, status_build, status_refused);
    imk_session_free(s);

    s = mk("CONDSTORE STATUS=SIZE", NULL);
    op = begin(s, IMK_CMD_STATUS);
    SENT(s, op, imk__build_status(s, op, "INBOX", "highestmodseq SIZE", E),
         "STATUS INBOX (highestmodseq SIZE)\r\n");
    imk_session_free(s);

    /* UTF8=ACCEPT enabled: names go as UTF-8 */
    s = mk("ENABLE UTF8=ACCEPT", "UTF8=ACCEPT");
    op = begin(s, IMK_CMD_STATUS);
    SENT(s, op, imk__build_status(s, op, "Entw\xc3\xbcrfe", "MESSAGES", E),
         "STATUS \"Entw\xc3\xbcrfe\" (MESSAGES)\r\n");
    imk_session_free(s);
}

static void test_mailbox_commands(void)
{
    imk_session *s = mk("QUOTA", NULL);
    imk_op *op = begin(s, IMK_CMD_CREATE);
    SENT(s, op, imk__build_mailbox(s, op, "Sent Items", E), "CREATE \"Sent Items\"\r\n");
    op = begin(s, IMK_CMD_DELETE);
    SENT(s, op, imk__build_mailbox(s, op, "Old", E), "DELETE Old\r\n");
    op = begin(s, IMK_CMD_SUBSCRIBE);
    SENT(s, op, imk__build_mailbox(s, op, "inbox", E), "SUBSCRIBE INBOX\r\n");
    op = begin(s, IMK_CMD_UNSUBSCRIBE);
    SENT(s, op, imk__build_mailbox(s, op, "a&b", E), "UNSUBSCRIBE a&-b\r\n");
    op = begin(s, IMK_CMD_GETQUOTAROOT);
    SENT(s, op, imk__build_mailbox(s, op, "INBOX", E), "GETQUOTAROOT INBOX\r\n");
    op = begin(s, IMK_CMD_CREATE);
    REFUSED(s, op, imk__build_mailbox(s, op, NULL, E), IMK_EINVAL, "CREATE: mailbox name is NULL");
    op = begin(s, IMK_CMD_CREATE);
    REFUSED(s, op, imk__build_mailbox(s, op, "bad\xff", E), IMK_EUTF8, "UTF-8");
    op = begin(s, IMK_CMD_RENAME);
    SENT(s, op, imk__build_rename(s, op, "Old", "New name", E), "RENAME Old \"New name\"\r\n");
    op = begin(s, IMK_CMD_RENAME);
    REFUSED(s, op, imk__build_rename(s, op, "Old", NULL, E), IMK_EINVAL, "the new name is NULL");
    op = begin(s, IMK_CMD_GETQUOTA);
    SENT(s, op, imk__build_getquota(s, op, NULL, E), "GETQUOTA \"\"\r\n");
    op = begin(s, IMK_CMD_GETQUOTA);
    SENT(s, op, imk__build_getquota(s, op, "User quota", E), "GETQUOTA \"User quota\"\r\n");
    imk_session_free(s);

    s = mk("IMAP4rev2", NULL);
    op = begin(s, IMK_CMD_GETQUOTAROOT);
    REFUSED(s, op, imk__build_mailbox(s, op, "INBOX", E), IMK_ENOTSUP, "QUOTA is not offered");
    op = begin(s, IMK_CMD_GETQUOTA);
    REFUSED(s, op, imk__build_getquota(s, op, "", E), IMK_ENOTSUP, "QUOTA is not offered");
    imk_session_free(s);
}

static void test_select(void)
{
    imk_session *s = mk("CONDSTORE", NULL);
    imk_op *op = begin(s, IMK_CMD_SELECT);
    SENT(s, op, imk__build_select(s, op, "INBOX", NULL, E), "SELECT INBOX\r\n");
    imk_select_params p = {0, 0, 0, 0, NULL, NULL, NULL};
    p.readonly = 1;
    op = begin(s, IMK_CMD_EXAMINE);
    SENT(s, op, imk__build_select(s, op, "Archive", &p, E), "EXAMINE Archive\r\n");
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "Archive", &p, E), IMK_EINVAL, "EXAMINE");
    p.readonly = 0;
    p.condstore = 1;
    op = begin(s, IMK_CMD_SELECT);
    SENT(s, op, imk__build_select(s, op, "INBOX", &p, E), "SELECT INBOX (CONDSTORE)\r\n");
    /* QRESYNC parameters without QRESYNC enabled */
    p.condstore = 0;
    p.qresync_uidvalidity = 67890007;
    p.qresync_modseq = 20050715194045000u;
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_ESTATE, "QRESYNC enabled first");
    imk_session_free(s);

    s = mk("IMAP4rev1", NULL);
    p.qresync_uidvalidity = 0;
    p.qresync_modseq = 0;
    p.condstore = 1;
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_ENOTSUP,
            "CONDSTORE is not offered");
    imk_session_free(s);

    s = mk("ENABLE CONDSTORE QRESYNC", "QRESYNC");
    memset(&p, 0, sizeof(p));
    p.qresync_uidvalidity = 67890007;
    p.qresync_modseq = 20050715194045000u;
    op = begin(s, IMK_CMD_SELECT);
    SENT(s, op, imk__build_select(s, op, "INBOX", &p, E),
         "SELECT INBOX (QRESYNC (67890007 20050715194045000))\r\n");
    p.qresync_known_uids = "41,43:211,214:541";
    op = begin(s, IMK_CMD_SELECT);
    SENT(s, op, imk__build_select(s, op, "INBOX", &p, E),
         "SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n");
    p.qresync_seq_match = "1:10";
    p.qresync_uid_match = "41:52";
    p.condstore = 1;
    op = begin(s, IMK_CMD_SELECT);
    SENT(s, op, imk__build_select(s, op, "INBOX", &p, E),
         "SELECT INBOX (CONDSTORE QRESYNC (67890007 20050715194045000 41,43:211,214:541 "
         "(1:10 41:52)))\r\n");
    p.condstore = 0;
    p.qresync_uid_match = NULL;
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_EINVAL, "set both or neither");
    p.qresync_seq_match = NULL;
    p.qresync_known_uids = "1:*";
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_EINVAL, "may not hold '*'");
    p.qresync_known_uids = "1:5\r\n";
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_EINVAL, "sequence set");
    p.qresync_known_uids = NULL;
    p.qresync_modseq = 0;
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_EINVAL, "qresync_modseq is 0");
    p.qresync_uidvalidity = 0;
    p.qresync_modseq = 5;
    op = begin(s, IMK_CMD_SELECT);
    REFUSED(s, op, imk__build_select(s, op, "INBOX", &p, E), IMK_EINVAL,
            "qresync_uidvalidity is 0");
    imk_session_free(s);
}

/* ---- APPEND ---- */

static void test_append_inline(void)
{
    imk_session *s = mk("LITERAL+", NULL);
    const char *flags[] = {"\\Seen", "$Forwarded"};
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = "hello";
    m.size = 5;
    m.flags = flags;
    m.n_flags = 2;
    m.internaldate = " 1-jan-2026 10:00:00 +0000";
    CHECK_INT(imk__append_inline(&m), 1);
    imk_op *op = begin(s, IMK_CMD_APPEND);
    SENT(s, op, imk__build_append(s, op, "INBOX", &m, 0, E),
         "APPEND INBOX (\\Seen $Forwarded) \"01-Jan-2026 10:00:00 +0000\" {5+}\r\nhello\r\n");
    m.internaldate = "yesterday";
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m, 0, E), IMK_EINVAL, "not a date-time");
    m.internaldate = NULL;
    const char *recent[] = {"\\Recent"};
    m.flags = recent;
    m.n_flags = 1;
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m, 0, E), IMK_EINVAL, "\\Recent");
    const char *inj[] = {"\\Seen)\r\nA9 LOGOUT"};
    m.flags = inj;
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m, 0, E), IMK_EINVAL, "flag");
    m.flags = NULL;
    m.n_flags = 0;
    /* NUL without binary: refused by the encoder, with the way out */
    m.data = "a\0b";
    m.size = 3;
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m, 0, E), IMK_EINVAL, "binary");
    m.binary = 1;
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m, 0, E), IMK_ENOTSUP,
            "BINARY is not offered");
    /* empty content: an empty literal, nothing to stream */
    imk_append_msg empty = IMK_APPEND_MSG_INIT;
    CHECK_INT(imk__append_inline(&empty), 1);
    op = begin(s, IMK_CMD_APPEND);
    SENT(s, op, imk__build_append(s, op, "INBOX", &empty, 0, E), "APPEND INBOX {0+}\r\n\r\n");
    /* MULTIAPPEND not offered */
    imk_append_msg m2 = IMK_APPEND_MSG_INIT;
    m2.data = "x";
    m2.size = 1;
    op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &m2, 0, E), 0);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &m2, 1, E), IMK_ENOTSUP,
            "MULTIAPPEND is not offered");
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", NULL, 0, E), IMK_EINVAL, "NULL");
    imk_session_free(s);

    /* binary with BINARY: literal8 */
    s = mk("BINARY LITERAL+", NULL);
    m.data = "a\0b";
    m.size = 3;
    m.binary = 1;
    op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &m, 0, E), 0);
    static const char literal8[] = "APPEND INBOX ~{3+}\r\na\0b\r\n";
    wire_is_len(s, op, literal8, sizeof(literal8) - 1, 1, __LINE__);
    imk_session_free(s);

    /* without LITERAL+: a synchronizing literal waits for "+" */
    s = mk("IMAP4rev1", NULL);
    op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "Drafts", &m2, 0, E), 0);
    char tag[32];
    ON_WIRE(s, op, tag, "APPEND Drafts {1}\r\n");
    go_ahead(s);
    rest_is(s, tag, "x\r\n");
    imk_session_free(s);
}

static void test_append_multi(void)
{
    imk_session *s = mk("MULTIAPPEND LITERAL+", NULL);
    const char *seen[] = {"\\Seen"};
    imk_append_msg a = IMK_APPEND_MSG_INIT, b = IMK_APPEND_MSG_INIT;
    a.data = "one";
    a.size = 3;
    b.data = "two";
    b.size = 3;
    b.flags = seen;
    b.n_flags = 1;
    b.internaldate = "02-Feb-2026 03:04:05 -0700";
    imk_op *op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &a, 0, E), 0);
    SENT(s, op, imk__build_append(s, op, "INBOX", &b, 1, E),
         "APPEND INBOX {3+}\r\none (\\Seen) \"02-Feb-2026 03:04:05 -0700\" {3+}\r\ntwo\r\n");
    imk_session_free(s);
}

static void test_append_streamed(void)
{
    imk_session *s = mk("LITERAL+", NULL);
    static char big[65537];
    memset(big, 'x', sizeof(big));
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = big;
    m.size = 65536;
    CHECK_INT(imk__append_inline(&m), 1);
    m.size = 65537;
    CHECK_INT(imk__append_inline(&m), 0);
    /* memory above 64 KiB: announced, the core streams the bytes */
    imk_op *op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &m, 0, E), 0);
    char tag[32];
    ON_WIRE(s, op, tag, "APPEND INBOX {65537+}\r\n");
    CHECK_INT(imk_session_stream_pending(s), 65537);
    CHECK_INT(imk_session_stream_write(s, big, sizeof(big)), 65537);
    size_t len;
    char *out = take_output_len(s, &len);
    CHECK_INT(len, 65537 + 2);
    CHECK(len == 65539 && memcmp(out + 65537, "\r\n", 2) == 0);
    free(out);
    complete(s, tag);

    /* a descriptor: always streamed, even when small */
    imk_append_msg f = IMK_APPEND_MSG_INIT;
    f.fd = 0;
    f.size = 10;
    CHECK_INT(imk__append_inline(&f), 0);
    op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &f, 0, E), 0);
    ON_WIRE(s, op, tag, "APPEND INBOX {10+}\r\n");
    CHECK_INT(imk_session_stream_pending(s), 10);
    CHECK_INT(imk_session_stream_write(s, "0123456789", 10), 10);
    rest_is(s, tag, "0123456789\r\n");

    /* no source at all */
    imk_append_msg none = IMK_APPEND_MSG_INIT;
    none.size = 10;
    CHECK_INT(imk__append_inline(&none), 0);
    op = begin(s, IMK_CMD_APPEND);
    REFUSED(s, op, imk__build_append(s, op, "INBOX", &none, 0, E), IMK_EINVAL, "no content");
    imk_session_free(s);

    /* without LITERAL+: the streamed literal synchronizes */
    s = mk("IMAP4rev1", NULL);
    op = begin(s, IMK_CMD_APPEND);
    CHECK_INT(imk__build_append(s, op, "INBOX", &f, 0, E), 0);
    ON_WIRE(s, op, tag, "APPEND INBOX {10}\r\n");
    CHECK_INT(imk_session_stream_write(s, "0123456789", 10), 0);
    go_ahead(s);
    CHECK_INT(imk_session_stream_write(s, "0123456789", 10), 10);
    rest_is(s, tag, "0123456789\r\n");
    imk_session_free(s);
}

/* ---- criteria ---- */

static int crit(const char *text, const char *const *args, size_t n, int *charset)
{
    err[0] = '\0';
    return imk__criteria(NULL, text, args, n, 0, charset, E);
}

static void test_criteria_errors(void)
{
    int cs = -1;
    const char *one[] = {"x"};
    const char *two[] = {"x", "y"};
    CHECK_INT(crit("UNSEEN SUBJECT %s", one, 1, &cs), 0);
    CHECK_INT(cs, 0);
    const char *utf[] = {"caf\xc3\xa9"};
    CHECK_INT(crit("SUBJECT %s", utf, 1, &cs), 0);
    CHECK_INT(cs, 1);
    CHECK_INT(imk__criteria(NULL, "SUBJECT %s", utf, 1, 1, &cs, E), 0);
    CHECK_INT(cs, 0); /* UTF8=ACCEPT enabled: no CHARSET */

    static const struct {
        const char *text;
        size_t n;
        const char *part;
    } bad[] = {
        {"SUBJECT \"x\"", 0, "'\"' at offset 8"},
        {"SUBJECT {3}", 0, "'{' at offset 8"},
        {"UNSEEN}", 0, "'}' at offset 6"},
        {"UNSEEN\r\nA9 LOGOUT", 0, "CR at offset 6"},
        {"UNSEEN\nX", 0, "LF at offset 6"},
        {"UNSEEN\tX", 0, "byte 0x09"},
        {"SUBJECT caf\xc3\xa9", 0, "byte 0xC3"},
        {"LARGER 10%", 0, "'%' at offset 9 is not %s"},
        {"SUBJECT %d", 1, "is not %s"},
        {"SUBJECT x%s", 1, "glued"},
        {"SUBJECT %sx", 1, "glued"},
        {"SUBJECT %s", 2, "1 %s placeholder(s) but 2 arg(s)"},
        {"SUBJECT %s FROM %s", 1, "2 %s placeholder(s) but 1 arg(s)"},
        {"(UNSEEN", 0, "1 '(' left unclosed"},
        {"UNSEEN)", 0, "unmatched ')' at offset 6"},
        {"   ", 0, "empty"},
        {"", 0, "empty"},
        {"BODY[HEADER", 0, "never closed"},
        {"BODY]", 0, "']' without '['"},
        {"BODY[HEADER.FIELDS (%s)]", 1, "inside [...]"},
        {"BODY[A[B]]", 0, "nested"},
        {"BODY[(A]", 0, "'(' left unclosed inside"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = crit(bad[i].text, two, bad[i].n, &cs);
        CHECK_INT(rc, IMK_EINVAL);
        if (strstr(err, bad[i].part) == NULL || strncmp(err, "criteria: ", 10) != 0) {
            CHECK(strstr(err, bad[i].part) != NULL);
            fprintf(stderr, "  case %zu: %s\n", i, err);
        }
        CHECK(strchr(err, '\r') == NULL && strchr(err, '\n') == NULL);
        CHECK_INT(cs, 0);
    }
    CHECK_INT(crit(NULL, NULL, 0, &cs), IMK_EINVAL);
    CHECK(strstr(err, "NULL") != NULL);
    const char *nullarg[] = {NULL};
    CHECK_INT(crit("SUBJECT %s", nullarg, 1, &cs), IMK_EINVAL);
    CHECK(strstr(err, "arg 0 is NULL") != NULL);
    CHECK_INT(crit("SUBJECT %s", NULL, 1, &cs), IMK_EINVAL);
    /* a very long word */
    static char longw[1100];
    memset(longw, 'A', sizeof(longw) - 1);
    CHECK_INT(crit(longw, NULL, 0, &cs), IMK_EINVAL);
    CHECK(strstr(err, "at most 1023") != NULL);
    /* brackets and parentheses that are fine */
    CHECK_INT(crit("OR (SUBJECT %s) (FROM %s) SINCE 1-Jan-2026", two, 2, &cs), 0);
    CHECK_INT(crit("(UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)", NULL, 0, &cs), 0);
    CHECK_INT(crit("1:*,5 KEYWORD $Forwarded NOT DELETED", NULL, 0, &cs), 0);
}

static void test_search(void)
{
    imk_session *s = mk("LITERAL+", NULL);
    select_inbox(s);
    const char *args[] = {"hello world"};
    imk_op *op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "UNSEEN  SUBJECT %s", args, 1, E),
         "SEARCH UNSEEN SUBJECT \"hello world\"\r\n");
    op = begin(s, IMK_CMD_UID_SEARCH);
    SENT(
        s, op,
        imk__build_search(s, op, "( OR (SUBJECT %s) (FROM %s) )", (const char *[]){"a", "b"}, 2, E),
        "UID SEARCH (OR (SUBJECT \"a\") (FROM \"b\"))\r\n");
    /* non-ASCII: CHARSET UTF-8 and a literal */
    const char *utf[] = {"caf\xc3\xa9"};
    op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "SUBJECT %s", utf, 1, E),
         "SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncaf\xc3\xa9\r\n");
    /* injection through an arg: a literal, never a line of its own */
    const char *inj[] = {"x\r\nA9 LOGOUT"};
    op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "BODY %s", inj, 1, E),
         "SEARCH BODY {12+}\r\nx\r\nA9 LOGOUT\r\n");
    /* quotes and backslashes in an arg are escaped */
    const char *q[] = {"say \"hi\" \\o/"};
    op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "TEXT %s", q, 1, E),
         "SEARCH TEXT \"say \\\"hi\\\" \\\\o/\"\r\n");
    op = begin(s, IMK_CMD_SEARCH);
    REFUSED(s, op, imk__build_search(s, op, "SUBJECT \"x\"", NULL, 0, E), IMK_EINVAL,
            "SEARCH: criteria: '\"'");
    imk_session_free(s);

    /* ESEARCH: RETURN (ALL) first, and the ESEARCH with the op's tag is
     * this op's result */
    s = mk("ESEARCH LITERAL+", NULL);
    select_inbox(s);
    op = begin(s, IMK_CMD_UID_SEARCH);
    CHECK_INT(imk__build_search(s, op, "UNSEEN", NULL, 0, E), 0);
    char tag[32];
    ON_WIRE(s, op, tag, "UID SEARCH RETURN (ALL) UNSEEN\r\n");
    char line[128];
    snprintf(line, sizeof(line), "* ESEARCH (TAG \"%s\") UID ALL 3:5,9\r\n%s OK done\r\n", tag,
             tag);
    feed(s, line);
    imk_session_event ev;
    int seen = 0;
    while (imk_session_next(s, &ev) == 1) {
        if (ev.type == IMK_SE_DONE && ev.op == op) {
            const imk_result *r = imk_op_result(op);
            CHECK(r != NULL && r->esearch != NULL);
            if (r != NULL && r->esearch != NULL) {
                CHECK(r->esearch->present & IMK_ESEARCH_ALL);
                CHECK_INT(r->esearch->all.count, 2);
            }
            seen = 1;
        }
        CHECK(ev.type != IMK_SE_UNSOLICITED);
    }
    CHECK(seen);
    op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "SUBJECT %s", utf, 1, E),
         "SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT {5+}\r\ncaf\xc3\xa9\r\n");
    imk_session_free(s);

    /* UTF8=ACCEPT enabled: no CHARSET (RFC 6855 section 3), quoted UTF-8 */
    s = mk("ENABLE UTF8=ACCEPT", "UTF8=ACCEPT");
    select_inbox(s);
    op = begin(s, IMK_CMD_SEARCH);
    SENT(s, op, imk__build_search(s, op, "SUBJECT %s", utf, 1, E),
         "SEARCH SUBJECT \"caf\xc3\xa9\"\r\n");
    imk_session_free(s);
}

static int sort_build(imk_session *s, imk_op *op, const refusal *r)
{
    return imk__build_sort(s, op, r->a, "ALL", NULL, 0, E);
}

static int thread_build(imk_session *s, imk_op *op, const refusal *r)
{
    return imk__build_thread(s, op, r->a, "ALL", NULL, 0, E);
}

static void test_sort_thread(void)
{
    imk_session *s = mk("SORT THREAD=REFERENCES LITERAL+", NULL);
    select_inbox(s);
    imk_op *op = begin(s, IMK_CMD_SORT);
    SENT(s, op, imk__build_sort(s, op, "REVERSE DATE", "ALL", NULL, 0, E),
         "SORT (REVERSE DATE) US-ASCII ALL\r\n");
    const char *utf[] = {"caf\xc3\xa9"};
    op = begin(s, IMK_CMD_UID_SORT);
    SENT(s, op, imk__build_sort(s, op, "(SUBJECT)", "SUBJECT %s", utf, 1, E),
         "UID SORT (SUBJECT) UTF-8 SUBJECT {5+}\r\ncaf\xc3\xa9\r\n");
    /* SORT: sort keys (criteria ALL) */
    static const refusal sort_refused[] = {
        {"DATE REVERSE", NULL, 0, IMK_EINVAL, "end with REVERSE"},
        {"REVERSE REVERSE DATE", NULL, 0, IMK_EINVAL, "REVERSE twice"},
        {"DISPLAYFROM", NULL, 0, IMK_ENOTSUP, "SORT=DISPLAY is not offered"},
        {"DATE\r\n", NULL, 0, IMK_EINVAL, "sort keys"},
        {NULL, NULL, 0, IMK_EINVAL, "NULL"},
    };
    REFUSALS(s, IMK_CMD_SORT, sort_build, sort_refused);
    op = begin(s, IMK_CMD_THREAD);
    SENT(s, op, imk__build_thread(s, op, "REFERENCES", "SINCE 1-Jan-2026", NULL, 0, E),
         "THREAD REFERENCES US-ASCII SINCE 1-Jan-2026\r\n");
    op = begin(s, IMK_CMD_UID_THREAD);
    SENT(s, op, imk__build_thread(s, op, "references", "FROM %s", utf, 1, E),
         "UID THREAD references UTF-8 FROM {5+}\r\ncaf\xc3\xa9\r\n");
    /* THREAD: algorithm (criteria ALL) */
    static const refusal thread_refused[] = {
        {"ORDEREDSUBJECT", NULL, 0, IMK_ENOTSUP, "THREAD=ORDEREDSUBJECT is not offered"},
        {"REFS\r\nX", NULL, 0, IMK_EINVAL, "algorithm must be a name"},
    };
    REFUSALS(s, IMK_CMD_THREAD, thread_build, thread_refused);
    imk_session_free(s);

    s = mk("SORT=DISPLAY SORT", NULL);
    select_inbox(s);
    op = begin(s, IMK_CMD_SORT);
    SENT(s, op, imk__build_sort(s, op, "DISPLAYFROM", "ALL", NULL, 0, E),
         "SORT (DISPLAYFROM) US-ASCII ALL\r\n");
    imk_session_free(s);

    s = mk("IMAP4rev2", NULL);
    select_inbox(s);
    op = begin(s, IMK_CMD_SORT);
    REFUSED(s, op, imk__build_sort(s, op, "DATE", "ALL", NULL, 0, E), IMK_ENOTSUP,
            "SORT is not offered");
    imk_session_free(s);
}

/* ---- messages ---- */

static int fetch_build(imk_session *s, imk_op *op, const refusal *r)
{
    return imk__build_fetch(s, op, r->a, r->b, E);
}

static int store_build(imk_session *s, imk_op *op, const refusal *r)
{
    const char *flag[] = {r->b};
    return imk__build_store(s, op, "1", r->a, flag, 1, r->n, E);
}

static void test_fetch_store_copy(void)
{
    imk_session *s = mk("LITERAL+ UIDPLUS", NULL);
    select_inbox(s);
    imk_op *op = begin(s, IMK_CMD_UID_FETCH);
    SENT(s, op, imk__build_fetch(s, op, "1:*", "(UID FLAGS)", E), "UID FETCH 1:* (UID FLAGS)\r\n");
    op = begin(s, IMK_CMD_FETCH);
    SENT(s, op, imk__build_fetch(s, op, "1", "FLAGS", E), "FETCH 1 FLAGS\r\n");
    op = begin(s, IMK_CMD_FETCH);
    SENT(s, op, imk__build_fetch(s, op, "2,4", "UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]", E),
         "FETCH 2,4 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
    /* set, items */
    static const refusal fetch_refused[] = {
        {"1", "FLAGS\r\nA9 LOGOUT", 0, IMK_EINVAL, "fetch items"},
        {"1", "BODY[] {5}", 0, IMK_EINVAL, "'{'"},
        {"0:*", "FLAGS", 0, IMK_EINVAL, "message set"},
        {"1", "", 0, IMK_EINVAL, "FETCH: fetch items: empty: name at least one item"},
        {"1", NULL, 0, IMK_EINVAL, "fetch items: NULL"},
        {"1", "BODY[HEADER.FIELDS (\"X\")]", 0, IMK_EINVAL, "quoted strings are not accepted here"},
        {"1", "(FLAGS %s)", 0, IMK_EINVAL, "1 %s placeholder(s) but 0 arg(s)"},
        {NULL, "FLAGS", 0, IMK_EINVAL, "set is NULL"},
    };
    REFUSALS(s, IMK_CMD_FETCH, fetch_build, fetch_refused);
    /* spacing is the encoder's; modifiers after a parenthesised list */
    op = begin(s, IMK_CMD_UID_FETCH);
    SENT(s, op, imk__build_fetch(s, op, "1:*", " ( FLAGS  UID ) (CHANGEDSINCE 12345)", E),
         "UID FETCH 1:* (FLAGS UID) (CHANGEDSINCE 12345)\r\n");
    op = begin(s, IMK_CMD_FETCH);
    SENT(s, op, imk__build_fetch(s, op, "$", "BODY.PEEK[1.2.MIME]<0.2048>", E),
         "FETCH $ BODY.PEEK[1.2.MIME]<0.2048>\r\n");

    const char *flags[] = {"\\Seen", "\\Flagged"};
    op = begin(s, IMK_CMD_STORE);
    SENT(s, op, imk__build_store(s, op, "1:3", "+FLAGS.SILENT", flags, 2, 0, E),
         "STORE 1:3 +FLAGS.SILENT (\\Seen \\Flagged)\r\n");
    op = begin(s, IMK_CMD_UID_STORE);
    SENT(s, op, imk__build_store(s, op, "7", "-flags", flags, 1, 0, E),
         "UID STORE 7 -FLAGS (\\Seen)\r\n");
    op = begin(s, IMK_CMD_UID_STORE);
    SENT(s, op, imk__build_store(s, op, "7", "FLAGS", NULL, 0, 0, E), "UID STORE 7 FLAGS ()\r\n");
    /* STORE 1 action (flag) (UNCHANGEDSINCE n) */
    static const refusal store_refused[] = {
        {"+FLAG", "\\Seen", 0, IMK_EINVAL, "FLAGS, +FLAGS or -FLAGS"},
        {NULL, "\\Seen", 0, IMK_EINVAL, "action"},
        {"+FLAGS", "\\Seen", 5, IMK_ENOTSUP, "CONDSTORE is not offered"},
        {"+FLAGS", "\\Seen\r\nA9 LOGOUT", 0, IMK_EINVAL, "flag"},
        {"+FLAGS", "two words", 0, IMK_EINVAL, "flag"},
        {"+FLAGS", "\\recent", 0, IMK_EINVAL, "\\Recent"},
    };
    REFUSALS(s, IMK_CMD_STORE, store_build, store_refused);

    op = begin(s, IMK_CMD_UID_COPY);
    SENT(s, op, imk__build_copy(s, op, "1:5", "Archive", E), "UID COPY 1:5 Archive\r\n");
    op = begin(s, IMK_CMD_COPY);
    SENT(s, op, imk__build_copy(s, op, "2", "Sent Items", E), "COPY 2 \"Sent Items\"\r\n");
    op = begin(s, IMK_CMD_UID_MOVE);
    REFUSED(s, op, imk__build_copy(s, op, "1:5", "Archive", E), IMK_ENOTSUP, "MOVE is not offered");
    op = begin(s, IMK_CMD_COPY);
    REFUSED(s, op, imk__build_copy(s, op, "1\r\n", "Archive", E), IMK_EINVAL, "message set");
    op = begin(s, IMK_CMD_UID_EXPUNGE);
    SENT(s, op, imk__build_uid_expunge(s, op, "3:5", E), "UID EXPUNGE 3:5\r\n");
    imk_session_free(s);

    s = mk("CONDSTORE MOVE", NULL);
    select_inbox(s);
    op = begin(s, IMK_CMD_UID_STORE);
    SENT(s, op, imk__build_store(s, op, "5", "FLAGS.silent", NULL, 0, 320162338, E),
         "UID STORE 5 (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()\r\n");
    op = begin(s, IMK_CMD_UID_MOVE);
    SENT(s, op, imk__build_copy(s, op, "1:5", "Archive", E), "UID MOVE 1:5 Archive\r\n");
    op = begin(s, IMK_CMD_UID_EXPUNGE);
    REFUSED(s, op, imk__build_uid_expunge(s, op, "3:5", E), IMK_ENOTSUP, "UIDPLUS is not offered");
    imk_session_free(s);

    /* IMAP4rev2 includes MOVE and UIDPLUS */
    s = mk("IMAP4rev2", NULL);
    select_inbox(s);
    op = begin(s, IMK_CMD_MOVE);
    SENT(s, op, imk__build_copy(s, op, "1", "Trash", E), "MOVE 1 Trash\r\n");
    op = begin(s, IMK_CMD_UID_EXPUNGE);
    SENT(s, op, imk__build_uid_expunge(s, op, "9", E), "UID EXPUNGE 9\r\n");
    imk_session_free(s);
}

/* ---- NOTIFY, METADATA ---- */

static void test_notify(void)
{
    imk_session *s = mk("NOTIFY", NULL);
    imk_op *op = begin(s, IMK_CMD_NOTIFY);
    SENT(s, op, imk__build_notify(s, op, NULL, NULL, 0, E), "NOTIFY NONE\r\n");
    const char *boxes[] = {"Entw\xc3\xbcrfe", "a\r\nb"};
    op = begin(s, IMK_CMD_NOTIFY);
    SENT(s, op,
         imk__build_notify(s, op,
                           "SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) "
                           "MessageExpunge)) (MAILBOXES (%s %s) (MessageNew))",
                           boxes, 2, E),
         "NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) "
         "MessageExpunge)) (MAILBOXES (Entw&APw-rfe a&AA0ACg-b) (MessageNew))\r\n");
    op = begin(s, IMK_CMD_NOTIFY);
    REFUSED(s, op, imk__build_notify(s, op, "SET (MAILBOXES \"x\" (MessageNew))", NULL, 0, E),
            IMK_EINVAL, "NOTIFY spec: '\"'");
    op = begin(s, IMK_CMD_NOTIFY);
    REFUSED(s, op, imk__build_notify(s, op, NULL, boxes, 1, E), IMK_EINVAL, "takes no args");
    imk_session_free(s);

    s = mk("IDLE", NULL);
    op = begin(s, IMK_CMD_NOTIFY);
    REFUSED(s, op, imk__build_notify(s, op, NULL, NULL, 0, E), IMK_ENOTSUP,
            "NOTIFY is not offered");
    imk_session_free(s);
}

static void test_metadata(void)
{
    imk_session *s = mk("METADATA LITERAL+", NULL);
    const char *one[] = {"/shared/comment"};
    const char *two[] = {"/private/comment", "/shared/comment"};
    imk_op *op = begin(s, IMK_CMD_GETMETADATA);
    SENT(s, op, imk__build_getmetadata(s, op, "", one, 1, 0, 0, E),
         "GETMETADATA \"\" /shared/comment\r\n");
    op = begin(s, IMK_CMD_GETMETADATA);
    SENT(s, op, imk__build_getmetadata(s, op, "INBOX", two, 2, 1024, -1, E),
         "GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX (/private/comment /shared/comment)\r\n");
    op = begin(s, IMK_CMD_GETMETADATA);
    SENT(s, op, imk__build_getmetadata(s, op, "INBOX", one, 1, 0, 1, E),
         "GETMETADATA (DEPTH 1) INBOX /shared/comment\r\n");
    op = begin(s, IMK_CMD_GETMETADATA);
    REFUSED(s, op, imk__build_getmetadata(s, op, "INBOX", one, 1, 0, 2, E), IMK_EINVAL,
            "depth is 2");
    const char *wild[] = {"/shared/*"};
    op = begin(s, IMK_CMD_GETMETADATA);
    REFUSED(s, op, imk__build_getmetadata(s, op, "INBOX", wild, 1, 0, 0, E), IMK_EINVAL,
            "'*' or '%'");
    op = begin(s, IMK_CMD_GETMETADATA);
    REFUSED(s, op, imk__build_getmetadata(s, op, "INBOX", one, 0, 0, 0, E), IMK_EINVAL,
            "at least one entry");
    op = begin(s, IMK_CMD_GETMETADATA);
    REFUSED(s, op, imk__build_getmetadata(s, op, "INBOX", one, 1, (uint64_t)1 << 32, 0, E),
            IMK_EINVAL, "maxsize");

    const char *values[] = {"hi", NULL};
    op = begin(s, IMK_CMD_SETMETADATA);
    SENT(s, op, imk__build_setmetadata(s, op, "INBOX", two, values, 2, E),
         "SETMETADATA INBOX (/private/comment \"hi\" /shared/comment NIL)\r\n");
    op = begin(s, IMK_CMD_SETMETADATA);
    SENT(s, op, imk__build_setmetadata(s, op, "", one, NULL, 1, E),
         "SETMETADATA \"\" (/shared/comment NIL)\r\n");
    const char *inj[] = {"x\r\nA9 LOGOUT"};
    op = begin(s, IMK_CMD_SETMETADATA);
    SENT(s, op, imk__build_setmetadata(s, op, "INBOX", one, inj, 1, E),
         "SETMETADATA INBOX (/shared/comment {12+}\r\nx\r\nA9 LOGOUT)\r\n");
    /* the word NIL as a value is a string, not a removal */
    const char *nil[] = {"NIL"};
    op = begin(s, IMK_CMD_SETMETADATA);
    SENT(s, op, imk__build_setmetadata(s, op, "INBOX", one, nil, 1, E),
         "SETMETADATA INBOX (/shared/comment \"NIL\")\r\n");
    imk_session_free(s);

    /* METADATA-SERVER: server entries only */
    s = mk("METADATA-SERVER", NULL);
    op = begin(s, IMK_CMD_GETMETADATA);
    SENT(s, op, imk__build_getmetadata(s, op, "", one, 1, 0, 0, E),
         "GETMETADATA \"\" /shared/comment\r\n");
    op = begin(s, IMK_CMD_GETMETADATA);
    REFUSED(s, op, imk__build_getmetadata(s, op, "INBOX", one, 1, 0, 0, E), IMK_ENOTSUP,
            "METADATA is not offered by the server: the server keeps no per-mailbox metadata");
    op = begin(s, IMK_CMD_SETMETADATA);
    REFUSED(s, op, imk__build_setmetadata(s, op, NULL, one, NULL, 1, E), IMK_EINVAL, "NULL");
    imk_session_free(s);
}

/* ---- imk_result_ids (ops.c): ESEARCH ALL expanded, or the SEARCH list ---- */

static void test_result_ids(void)
{
    uint32_t out[16];
    CHECK_INT(imk_result_ids(NULL, out, 16), 0);
    imk_range ranges[] = {{3, 5}, {9, 9}, {12, 10}};
    imk_esearch es;
    memset(&es, 0, sizeof(es));
    es.present = IMK_ESEARCH_ALL | IMK_ESEARCH_COUNT;
    es.all.count = 3;
    es.all.ranges = ranges;
    imk_result r;
    memset(&r, 0, sizeof(r));
    r.esearch = &es;
    CHECK_INT(imk_result_ids(&r, out, 16), 7);
    const uint32_t want[] = {3, 4, 5, 9, 12, 11, 10};
    CHECK_MEM(out, 7 * sizeof(uint32_t), want, sizeof(want));
    /* at most cap written, the total still returned */
    for (size_t i = 0; i < 16; i++)
        out[i] = 77;
    CHECK_INT(imk_result_ids(&r, out, 2), 7);
    CHECK(out[0] == 3 && out[1] == 4 && out[2] == 77);
    CHECK_INT(imk_result_ids(&r, NULL, 0), 7);
    /* a huge range costs nothing past cap */
    imk_range huge[] = {{1, 4294967295u}};
    es.all.ranges = huge;
    es.all.count = 1;
    CHECK_INT(imk_result_ids(&r, out, 3), 4294967295u);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 3 && out[3] == 77);
    /* ESEARCH without ALL (no match): the SEARCH list, here empty */
    es.present = IMK_ESEARCH_COUNT;
    CHECK_INT(imk_result_ids(&r, out, 16), 0);
    /* plain SEARCH: copied in the server's order */
    const uint32_t nums[] = {5, 1, 3};
    memset(&r, 0, sizeof(r));
    r.search.count = 3;
    r.search.numbers = nums;
    CHECK_INT(imk_result_ids(&r, out, 2), 3);
    CHECK(out[0] == 5 && out[1] == 1 && out[2] == 3 /* from before: untouched */);
    CHECK_INT(imk_result_ids(&r, out, 16), 3);
    CHECK_MEM(out, 3 * sizeof(uint32_t), nums, sizeof(nums));
}

int main(void)
{
    RUN(test_enable);
    RUN(test_id);
    RUN(test_list);
    RUN(test_status);
    RUN(test_mailbox_commands);
    RUN(test_select);
    RUN(test_append_inline);
    RUN(test_append_multi);
    RUN(test_append_streamed);
    RUN(test_criteria_errors);
    RUN(test_search);
    RUN(test_sort_thread);
    RUN(test_fetch_store_copy);
    RUN(test_notify);
    RUN(test_metadata);
    RUN(test_result_ids);
    return test_finish();
}
