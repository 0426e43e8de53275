/* SPDX-License-Identifier: MIT */
/*
 * test_it_courier.c - the IMAP round trips against a real Courier-IMAP 5.0
 * (Debian 12's imapd, unpacked by `make deps-courier`), preauthenticated
 * over a tunnel (servers.sh courier-tunnel).
 *
 * The same round trips as test_it_dovecot.c, minus what Courier lacks,
 * decided from its capability list (printed at the start, with each
 * skipped step and why). Courier is the other kind of server: no
 * LITERAL+ (every literal waits for "+"), no ESEARCH (plain SEARCH), no
 * MOVE (the client falls back to COPY + STORE + UID EXPUNGE), no UNSELECT
 * (CLOSE), no MULTIAPPEND (one APPEND each), no LIST-EXTENDED (the
 * extended LIST forms are refused before anything is sent), no BINARY
 * (binary APPEND refused before anything is sent), INBOX.-prefixed
 * names with "." as delimiter, ENABLE UTF8=ACCEPT (names and search
 * strings in UTF-8, and no CHARSET, RFC 6855), IDLE that notices other
 * sessions' changes by polling (IMAP_IDLE_TIMEOUT=5 s here), and a
 * Maildir++ quota (without the maildirsize file it answers `* QUOTA
 * "ROOT"`, a QUOTA response without its list, which must not hurt).
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tunnel_cmd;
static char tunnel_dir[1024];
static imk_conn *A;
static it_events evA;
static const char *const label_a = "courier:A";
static uint32_t inbox_uidvalidity;
static uint32_t copy_uidvalidity;

/* Every step needs the main connection. When an earlier step left it dead
 * (a fatal error: the step has failed already), it is connected again and
 * INBOX selected, so that the later steps still test something. */
static int revive_a(void);
#define NEED_A()                                                                                   \
    do {                                                                                           \
        if (!revive_a()) {                                                                         \
            CHECK(A != NULL && imk_conn_fd(A) >= 0);                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define ENTW "INBOX.Entw\xc3\xbcrfe"

static imk_conn *open_conn(const char *label)
{
    imk_conn_options o = it_options_tunnel(tunnel_cmd, label);
    return it_connect(&o);
}

static void skipped(const char *what, const char *why)
{
    it_note("skipped: %s (%s)", what, why);
}

static int revive_a(void)
{
    if (A == NULL)
        return 0;
    if (imk_conn_fd(A) >= 0)
        return 1;
    it_note("the main connection died (%s): connecting again", imk_conn_error(A));
    if (imk_conn_connect(A) < 0) {
        it_note("reconnect: %s", imk_conn_error(A));
        return 0;
    }
    const imk_result *r = NULL;
    return imk_conn_select(A, "INBOX", NULL, &r) == 0 && it_ok(r);
}

/* ---------------------------------------------------------------- */

static void t_connect(void)
{
    A = open_conn(label_a);
    CHECK(A != NULL);
    if (A == NULL)
        return;
    it_events_attach(A, &evA);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_STR(imk_conn_transport(A), "tunnel");
    /* The greeting carries no capabilities: the client asked. */
    CHECK(it_trace_sent_contains(label_a, 0, "CAPABILITY"));
    static const char *const have[] = {
        "IMAP4rev1", "UIDPLUS", "CHILDREN", "NAMESPACE", "THREAD=REFERENCES",
        "SORT",      "QUOTA",   "IDLE",     "ENABLE",    "UTF8=ACCEPT"};
    for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
        CHECK(imk_conn_has_capability(A, have[i]));
    static const char *const lacks[] = {
        "LITERAL+",    "ESEARCH",       "BINARY",      "MOVE",        "UNSELECT",
        "MULTIAPPEND", "CONDSTORE",     "QRESYNC",     "METADATA",    "NOTIFY",
        "ID",          "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "COMPRESS=DEFLATE"};
    char list[512] = "";
    for (size_t i = 0; i < sizeof(lacks) / sizeof(lacks[0]); i++) {
        CHECK(!imk_conn_has_capability(A, lacks[i]));
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, " %s", lacks[i]);
    }
    it_note("Courier does not offer:%s", list);
    skipped("ID", "no ID capability");
    skipped("CONDSTORE, UNCHANGEDSINCE, QRESYNC, VANISHED", "no CONDSTORE/QRESYNC");
    skipped("GETMETADATA/SETMETADATA", "no METADATA");
    skipped("NOTIFY", "no NOTIFY");
    skipped("COMPRESS", "no COMPRESS=DEFLATE (and a tunnel)");
}

static void t_namespace(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_namespace(A, &r), 0);
    CHECK(it_ok(r) && r->namespace_ != NULL);
    if (!it_ok(r) || r->namespace_ == NULL)
        return;
    const imk_namespace *ns = r->namespace_;
    CHECK_INT(ns->personal.count, 1);
    if (ns->personal.count == 1) {
        CHECK(it_str_eq(ns->personal.items[0].prefix, "INBOX."));
        CHECK_INT(ns->personal.items[0].delimiter, '.');
    }
    CHECK(ns->other_users.nil);
    CHECK_INT(ns->shared.count, 2);
}

static void t_create_list(void)
{
    NEED_A();
    static const char *const boxes[] = {"INBOX.it", "INBOX.it.sub", "INBOX.it.big", ENTW,
                                        "INBOX.it.multi"};
    const imk_result *r = NULL;
    for (size_t i = 0; i < sizeof(boxes) / sizeof(boxes[0]); i++) {
        CHECK_INT(imk_conn_create(A, boxes[i], &r), 0);
        if (!it_ok(r))
            it_note("CREATE %s: %s", boxes[i], it_describe(r));
        CHECK(it_ok(r));
    }
    CHECK(it_trace_sent_contains(label_a, 0, "INBOX.Entw&APw-rfe"));
    CHECK_INT(imk_conn_create(A, "INBOX.it", &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);

    CHECK_INT(imk_conn_list(A, "", "*", NULL, &r), 0);
    CHECK(it_ok(r));
    static const char *const expect[] = {"INBOX",        "INBOX.it",       "INBOX.it.sub",
                                         "INBOX.it.big", "INBOX.it.multi", ENTW};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        const imk_list_entry *e = it_list_find(r, expect[i]);
        if (e == NULL)
            it_note("LIST lacks %s", expect[i]);
        CHECK(e != NULL && e->list.delimiter == '.');
    }
    CHECK_INT(r != NULL ? r->list_count : 0, sizeof(expect) / sizeof(expect[0]));
    const imk_list_entry *e = it_list_find(r, ENTW);
    CHECK(e != NULL && it_str_eq(e->list.mailbox_raw, "INBOX.Entw&APw-rfe"));
    e = it_list_find(r, "INBOX.it");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\HasChildren"));

    /* The LIST-EXTENDED forms are refused without a word to the server. */
    size_t before = it_trace_sent(label_a);
    imk_list_params p = {IMK_LIST_RETURN_SPECIAL_USE, NULL};
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), IMK_ENOTSUP);
    imk_list_params ps = {0, "MESSAGES"};
    CHECK_INT(imk_conn_list(A, "", "*", &ps, &r), IMK_ENOTSUP);
    CHECK_INT(it_trace_sent(label_a), before);
    skipped("LIST RETURN (SPECIAL-USE), LIST-STATUS", "no LIST-EXTENDED: refused, checked");
}

static const char *const flags_of[5][3] = {{"\\Seen", NULL, NULL},
                                           {"\\Seen", "\\Answered", NULL},
                                           {NULL, NULL, NULL},
                                           {"$Forwarded", NULL, NULL},
                                           {"\\Flagged", NULL, NULL}};

static size_t n_flags_of(size_t i)
{
    size_t n = 0;
    while (n < 3 && flags_of[i][n] != NULL)
        n++;
    return n;
}

static void t_append_small(void)
{
    NEED_A();
    for (size_t i = 0; i < it_message_count; i++) {
        imk_append_msg m = IMK_APPEND_MSG_INIT;
        m.data = it_messages[i].text;
        m.size = strlen(it_messages[i].text);
        m.flags = flags_of[i];
        m.n_flags = n_flags_of(i);
        if (i == 0)
            m.internaldate = "03-Jul-2023 09:12:50 +0200";
        const imk_result *r = NULL;
        CHECK_INT(imk_conn_append(A, "INBOX", &m, 1, &r), 0);
        CHECK(it_ok(r));
        CHECK(r != NULL && r->has_appenduid);
        CHECK_INT(it_first_dest_uid(r), i + 1);
        if (i == 0 && r != NULL)
            inbox_uidvalidity = (uint32_t)r->uidvalidity;
    }
    CHECK(inbox_uidvalidity != 0);
    /* No LITERAL+: every literal waited for the server's "+". */
    CHECK(!it_trace_sent_contains(label_a, 0, "+}"));
    CHECK(it_trace_received_contains(label_a, "+ OK"));
}

static void t_select(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_READ_WRITE);
    const imk_view *v = imk_conn_view(A);
    CHECK_INT(imk_view_exists(v), 5);
    CHECK_INT(imk_view_uidvalidity(v), inbox_uidvalidity);
    CHECK(it_has_flag(imk_view_permanent_flags(v), "\\*"));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
}

static void t_fetch_attributes(void)
{
    NEED_A();
    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(A, 1, "1:*",
                            "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)", &it);
    CHECK_INT(rc, 0);
    if (rc != 0)
        return;
    imk_fetch_item item;
    int records = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        CHECK(item.type == IMK_FI_MESSAGE);
        if (item.type != IMK_FI_MESSAGE)
            continue;
        records++;
        const imk_fetch *f = item.msg;
        CHECK(f->uid >= 1 && f->uid <= 5);
        if (f->uid < 1 || f->uid > 5)
            continue;
        size_t i = f->uid - 1;
        CHECK_INT(f->rfc822_size, strlen(it_messages[i].text));
        for (size_t k = 0; k < n_flags_of(i); k++)
            CHECK(it_has_flag(f->flags, flags_of[i][k]));
        CHECK(f->envelope != NULL && it_str_eq(f->envelope->subject, it_messages[i].subject));
        CHECK(f->envelope != NULL && it_str_eq(f->envelope->message_id, it_messages[i].message_id));
        if (i == 0) {
            imk_datetime want = {2023, 7, 3, 9, 12, 50, 120};
            CHECK_INT(it_minutes_utc(&f->internaldate), it_minutes_utc(&want));
            CHECK_INT(f->internaldate.second, 50);
            CHECK(f->envelope != NULL && f->envelope->from.count == 1 &&
                  it_str_eq(f->envelope->from.items[0].host, "example.org"));
        }
        if (i == 1) {
            const imk_body *b = f->body;
            CHECK(b != NULL && b->multipart && it_str_ieq(b->subtype, "mixed") &&
                  b->part_count == 2);
            if (b != NULL && b->part_count == 2) {
                CHECK(it_str_ieq(b->parts[0].subtype, "plain") && b->parts[0].lines == 3);
                CHECK(it_str_ieq(b->parts[1].subtype, "pdf") &&
                      it_str_ieq(b->parts[1].disposition, "attachment"));
            }
            CHECK(f->envelope != NULL && f->envelope->cc.count == 2);
        }
    }
    CHECK_INT(rc, 0);
    const imk_result *r = NULL;
    CHECK_INT(imk_fetch_iter_end(it, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(records, 5);
}

static void t_fetch_bodies(void)
{
    NEED_A();
    imk_message *msgs = NULL;
    size_t n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, "1:*", 0, &msgs, &n), 0);
    CHECK_INT(n, 5);
    for (size_t k = 0; k < n; k++) {
        uint32_t uid = msgs[k].uid;
        CHECK(uid >= 1 && uid <= 5);
        if (uid < 1 || uid > 5)
            continue;
        const char *want = it_messages[uid - 1].text;
        CHECK_MEM(msgs[k].body, msgs[k].body_len, want, strlen(want));
    }
    imk_messages_free(A, msgs, n);
    for (uint32_t uid = 1; uid <= 5; uid++)
        CHECK(it_fetch_equals(A, uid, "BODY.PEEK[]", it_messages[uid - 1].text,
                              strlen(it_messages[uid - 1].text)));
    const char *text2 = strstr(it_messages[1].text, "\r\n\r\n") + 4;
    CHECK(it_fetch_equals(A, 2, "BODY.PEEK[TEXT]", text2, strlen(text2)));
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Seen"));
}

typedef struct mem_reader {
    const char *data;
    size_t len, at;
} mem_reader;

static long read_chunks(void *user, void *buf, size_t cap)
{
    mem_reader *m = user;
    size_t n = m->len - m->at;
    if (n > cap)
        n = cap;
    if (n > 65536)
        n = 65536;
    memcpy(buf, m->data + m->at, n);
    m->at += n;
    return (long)n;
}

static void t_append_large_and_binary(void)
{
    NEED_A();
    /* 11 MB over a local pipe or socket take well under a second; a stalled
     * transfer must fail this step, not the whole test's watchdog. */
    imk_conn_set_call_timeout(A, 20000);
    const size_t big_len = 10u * 1024u * 1024u, mid_len = 1024u * 1024u;
    char *big = it_big_message(big_len, 11);
    char *mid = it_big_message(mid_len, 12);
    size_t bin_len = 0;
    char *bin = it_binary_message(&bin_len);
    CHECK(big != NULL && mid != NULL && bin != NULL);
    if (big == NULL || mid == NULL || bin == NULL)
        goto out;
    const imk_result *r = NULL;
    mem_reader mr = {big, big_len, 0};
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.size = big_len;
    m.read = read_chunks;
    m.read_user = &mr;
    int rc = imk_conn_append(A, "INBOX.it.big", &m, 1, &r);
    CHECK_INT(rc, 0);
    if (rc != 0)
        it_note("APPEND of 10 MB: %s: %s", imk_error_name(rc), imk_conn_error(A));
    CHECK(it_ok(r));
    uint32_t uid_big = it_first_dest_uid(r);
    CHECK_INT(uid_big, 1);

    char dir[1024], path[1100];
    it_scratch("append-fd", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/mid.eml", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    uint32_t uid_mid = 0;
    if (fd >= 0) {
        CHECK(write(fd, mid, mid_len) == (ssize_t)mid_len);
        CHECK(lseek(fd, 0, SEEK_SET) == 0);
        imk_append_msg f = IMK_APPEND_MSG_INIT;
        f.size = mid_len;
        f.fd = fd;
        CHECK_INT(imk_conn_append(A, "INBOX.it.big", &f, 1, &r), 0);
        CHECK(it_ok(r));
        uid_mid = it_first_dest_uid(r);
        CHECK_INT(uid_mid, 2);
        close(fd);
    }

    /* No BINARY: refused before anything is sent. */
    size_t before = it_trace_sent(label_a);
    imk_append_msg b = IMK_APPEND_MSG_INIT;
    b.data = bin;
    b.size = bin_len;
    b.binary = 1;
    CHECK_INT(imk_conn_append(A, "INBOX.it.big", &b, 1, &r), IMK_ENOTSUP);
    CHECK_INT(it_trace_sent(label_a), before);
    skipped("binary APPEND and BINARY[] FETCH", "no BINARY: the APPEND is refused, checked");

    CHECK_INT(imk_conn_select(A, "INBOX.it.big", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 2);
    CHECK(it_fetch_equals(A, uid_big, "BODY.PEEK[]", big, big_len));
    CHECK(it_fetch_equals(A, uid_mid, "BODY.PEEK[]", mid, mid_len));
    imk_message *msgs = NULL;
    size_t n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, "1", 1024 * 1024, &msgs, &n), IMK_ELIMIT);
    msgs = NULL;
    n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, "2", 0, &msgs, &n), 0);
    CHECK(n == 1 && msgs[0].body_len == mid_len && memcmp(msgs[0].body, mid, mid_len) == 0);
    imk_messages_free(A, msgs, n);
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 5);
    /* The new SELECT emptied the view's UIDs: learn them again. */
    CHECK_INT(it_learn_uids(A), 5);
    CHECK_INT(imk_view_uid_of_seq(imk_conn_view(A), 5), 5);
out:
    imk_conn_set_call_timeout(A, 0);
    free(big);
    free(mid);
    free(bin);
}

static void t_search(void)
{
    NEED_A();
    const imk_result *r = NULL;
    const char *kickoff[] = {"kickoff"};
    CHECK_INT(imk_conn_search(A, 1, "SUBJECT %s", kickoff, 1, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->esearch == NULL); /* no ESEARCH: plain SEARCH */
    CHECK(!it_trace_sent_contains(label_a, 0, "RETURN"));
    static const uint32_t k[] = {1, 2};
    CHECK(it_ids_equal(r, k, 2));
    const char *alice[] = {"alice@example.org"};
    CHECK_INT(imk_conn_search(A, 1, "FROM %s", alice, 1, &r), 0);
    static const uint32_t a[] = {1, 4};
    CHECK(it_ok(r) && it_ids_equal(r, a, 2));
    size_t before = it_trace_sent(label_a);
    const char *gruss[] = {"Gr\xc3\xbc\xc3\x9f"};
    CHECK_INT(imk_conn_search(A, 1, "SUBJECT %s", gruss, 1, &r), 0);
    static const uint32_t g[] = {3};
    CHECK(it_ok(r) && it_ids_equal(r, g, 1));
    CHECK(it_trace_sent_contains(label_a, before, "CHARSET UTF-8"));
    CHECK_INT(imk_conn_search(A, 1, "UNSEEN", NULL, 0, &r), 0);
    static const uint32_t u[] = {3, 4, 5};
    CHECK(it_ok(r) && it_ids_equal(r, u, 3));
    /* A hostile argument goes as a literal, here a synchronizing one. */
    const char *hostile[] = {"x\"y\\z\r\nA999 LOGOUT\r\n"};
    CHECK_INT(imk_conn_search(A, 1, "SUBJECT %s", hostile, 1, &r), 0);
    CHECK(it_ok(r) && it_ids_equal(r, NULL, 0));
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
}

static void t_sort_thread(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_sort(A, 1, "REVERSE DATE", "ALL", NULL, 0, &r), 0);
    static const uint32_t by_date[] = {4, 5, 3, 2, 1};
    CHECK(it_ok(r) && it_ids_equal(r, by_date, 5));
    CHECK_INT(imk_conn_thread(A, 1, "REFERENCES", "ALL", NULL, 0, &r), 0);
    CHECK(it_ok(r));
    const imk_thread *t = r != NULL ? &r->thread : NULL;
    CHECK(t != NULL && t->count == 3);
    if (t != NULL && t->count == 3) {
        const imk_thread_node *n1 = &t->roots[0];
        CHECK(n1->num == 1 && n1->child_count == 1);
        if (n1->child_count == 1) {
            CHECK(n1->children[0].num == 2 && n1->children[0].child_count == 1);
            if (n1->children[0].child_count == 1)
                CHECK_INT(n1->children[0].children[0].num, 4);
        }
        CHECK(t->roots[1].num == 3 && t->roots[2].num == 5);
    }
    CHECK_INT(imk_conn_thread(A, 1, "ORDEREDSUBJECT", "ALL", NULL, 0, &r), 0);
    CHECK(it_ok(r) && r->thread.count == 4);
}

static void t_store(void)
{
    NEED_A();
    static const char *const two[] = {"\\Flagged", "$Important"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_store(A, 1, "3", "+FLAGS", two, 2, 0, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("STORE: %s", it_describe(r));
    CHECK(r != NULL && r->fetch_count == 1 && r->fetches[0].uid == 3 &&
          it_has_flag(r->fetches[0].flags, "$Important"));
    CHECK(it_has_flag(it_view_flags(A, 3), "\\Flagged"));
    CHECK_INT(imk_conn_store(A, 1, "3", "-FLAGS", two, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Flagged"));
    CHECK(it_has_flag(it_view_flags(A, 3), "$Important"));
    /* UNCHANGEDSINCE needs CONDSTORE: refused before sending. */
    size_t before = it_trace_sent(label_a);
    int rc = imk_conn_store(A, 1, "3", "+FLAGS", two, 1, 5, &r);
    CHECK(rc == IMK_ENOTSUP || rc == IMK_ESTATE);
    CHECK_INT(it_trace_sent(label_a), before);
}

static void t_copy_move_expunge(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_copy(A, 1, "1:2", "INBOX.it.sub", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->has_copyuid && it_seqset_count(r->dest_uids) == 2);
    if (r != NULL && r->has_copyuid)
        copy_uidvalidity = (uint32_t)r->uidvalidity;
    CHECK_INT(it_status_messages(A, "INBOX.it.sub"), 2);

    /* MOVE without MOVE: COPY, STORE \Deleted, UID EXPUNGE of that one. */
    size_t before = it_trace_sent(label_a);
    CHECK_INT(imk_conn_move(A, 1, "5", "INBOX.it", &r), 0);
    CHECK(it_ok(r));
    CHECK(!it_trace_sent_contains(label_a, before, "MOVE"));
    CHECK(it_trace_sent_contains(label_a, before, "UID COPY 5"));
    CHECK(it_trace_sent_contains(label_a, before, "UID EXPUNGE 5"));
    CHECK(r != NULL && r->has_copyuid && it_seqset_has(r->source_uids, 5));
    CHECK(it_expunged_equal(r, (const uint32_t[]){5}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 4);
    CHECK_INT(it_status_messages(A, "INBOX.it"), 1);

    static const char *const del[] = {"\\Deleted"};
    CHECK_INT(imk_conn_store(A, 1, "4", "+FLAGS.SILENT", del, 1, 0, &r), 0);
    CHECK_INT(imk_conn_expunge(A, NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_expunged_equal(r, (const uint32_t[]){4}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 3);

    uint32_t t1 = it_append_text(A, "INBOX", "Subject: tmp1\r\n\r\nfirst\r\n");
    uint32_t t2 = it_append_text(A, "INBOX", "Subject: tmp2\r\n\r\nsecond\r\n");
    CHECK(t1 == 6 && t2 == 7);
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 5);
    CHECK_INT(imk_conn_store(A, 1, "6:7", "+FLAGS", del, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_expunge(A, "6", &r), 0);
    CHECK(it_expunged_equal(r, (const uint32_t[]){6}, 1));
    CHECK(imk_view_seq_of_uid(imk_conn_view(A), 7) != 0);
    CHECK_INT(imk_conn_expunge(A, "7", &r), 0);
    CHECK(it_expunged_equal(r, (const uint32_t[]){7}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 3);
}

static int child_append(void *arg)
{
    (void)arg;
    imk_conn *b = open_conn("courier:B");
    if (b == NULL)
        return 1;
    uint32_t uid = it_append_text(b, "INBOX", "Subject: while idling\r\n\r\nnew mail\r\n");
    imk_conn_logout(b);
    imk_conn_free(b);
    return uid != 0 ? 0 : 1;
}

static void t_idle(void)
{
    NEED_A();
    uint32_t before = imk_view_exists(imk_conn_view(A));
    it_events_clear(&evA);
    int pid = it_child_start(300, child_append, NULL);
    CHECK(pid > 0);
    int64_t t0 = it_now_ms();
    /* Courier looks for other sessions' changes every 5 s. */
    int rc = imk_conn_idle(A, 30000, 1);
    int64_t took = it_now_ms() - t0;
    CHECK_INT(rc, 0);
    CHECK_INT(it_child_wait(pid), 0);
    it_note("IDLE ended after %lld ms", (long long)took);
    CHECK(evA.count[IMK_SE_EXISTS] >= 1);
    CHECK(took < 29000);
    CHECK_INT(imk_view_exists(imk_conn_view(A)), before + 1);
    /* Courier's "+ entering idle mode" was accepted as the continuation. */
    CHECK(it_trace_received_contains(label_a, "+ entering idle mode"));
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK(it_ok(r));
}

static void t_status(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_status(A, "INBOX.it.sub", "MESSAGES UIDNEXT UIDVALIDITY UNSEEN", &r), 0);
    CHECK(it_ok(r) && r->status_count == 1);
    if (!it_ok(r) || r->status_count != 1)
        return;
    const imk_status_data *s = &r->statuses[0];
    CHECK(it_str_eq(s->mailbox, "INBOX.it.sub"));
    CHECK_INT(s->messages, 2);
    CHECK_INT(s->uidnext, 3);
    CHECK_INT(s->uidvalidity, copy_uidvalidity);
    CHECK_INT(s->unseen, 0);
    CHECK_INT(imk_conn_status(A, ENTW, "MESSAGES", &r), 0);
    CHECK(it_ok(r) && r->status_count == 1 && it_str_eq(r->statuses[0].mailbox, ENTW));
}

static int build_lsub(imk_op *op, void *user)
{
    (void)user;
    imk_command *cmd = imk_op_args(op);
    int rc = imk_command_astring(cmd, "", 0);
    if (rc == 0)
        rc = imk_command_list_mailbox(cmd, "*", 1);
    return rc;
}

static void t_rename_subscribe_delete(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_rename(A, "INBOX.it.sub", "INBOX.it.renamed", &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_list(A, "", "INBOX.it.*", NULL, &r), 0);
    CHECK(it_list_find(r, "INBOX.it.renamed") != NULL && it_list_find(r, "INBOX.it.sub") == NULL);
    CHECK_INT(it_status_messages(A, "INBOX.it.renamed"), 2);

    CHECK_INT(imk_conn_subscribe(A, ENTW, &r), 0);
    CHECK(it_ok(r));
    /* LIST (SUBSCRIBED) needs LIST-EXTENDED; LSUB through the generic call. */
    imk_list_params p = {IMK_LIST_SUBSCRIBED, NULL};
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), IMK_ENOTSUP);
    CHECK_INT(imk_conn_command(A, IMK_CMD_LSUB, build_lsub, NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, ENTW) != NULL);
    CHECK_INT(imk_conn_unsubscribe(A, ENTW, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_command(A, IMK_CMD_LSUB, build_lsub, NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, ENTW) == NULL);

    CHECK_INT(imk_conn_delete(A, "INBOX.it.renamed", &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_delete(A, "INBOX.it.renamed", &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);

    /* No UNSELECT: CLOSE. Read-only first (EXAMINE: CLOSE expunges
     * nothing there), then read-write (nothing is marked \Deleted). */
    imk_select_params ro;
    memset(&ro, 0, sizeof(ro));
    ro.readonly = 1;
    CHECK_INT(imk_conn_select(A, "INBOX", &ro, &r), 0);
    CHECK(it_ok(r) && imk_view_read_only(imk_conn_view(A)));
    size_t before = it_trace_sent(label_a);
    r = NULL;
    CHECK_INT(imk_conn_unselect(A, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_trace_sent_contains(label_a, before, "CLOSE"));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r) && !imk_view_read_only(imk_conn_view(A)));
    /* read-write without UNSELECT: CLOSE would expunge \Deleted messages,
     * so the library refuses and sends nothing (client.h) */
    before = it_trace_sent(label_a);
    r = NULL;
    CHECK_INT(imk_conn_unselect(A, &r), IMK_ENOTSUP);
    CHECK(!it_trace_sent_contains(label_a, before, "CLOSE"));
    CHECK(strstr(imk_conn_error(A), "CLOSE") != NULL);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
    CHECK_INT(it_status_messages(A, "INBOX"), 4);
}

static void t_quota(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_getquotaroot(A, "INBOX", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->quotaroot != NULL && r->quotaroot->roots.count == 1 &&
          it_str_eq(r->quotaroot->roots.items[0], "ROOT"));
    CHECK(r != NULL && r->quota_count == 1);
    if (r != NULL && r->quota_count == 1) {
        const imk_quota *q = &r->quotas[0];
        CHECK(it_str_eq(q->root, "ROOT") && q->count == 1);
        if (q->count == 1) {
            CHECK(it_str_ieq(q->resources[0].name, "STORAGE"));
            CHECK_INT(q->resources[0].limit, 1024 * 1024);
            CHECK(q->resources[0].usage >= 10 * 1024); /* 11 MiB in INBOX.it.big */
        }
    }
}

/* Without a maildirsize file Courier answers `* QUOTA "ROOT"`: no list. */
static void t_quota_without_limits(void)
{
    char dir[1024], path[1100];
    char *cmd = it_tunnel("courier-tunnel", "courier-noquota", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/Maildir/maildirsize", dir);
    CHECK_INT(unlink(path), 0);
    imk_conn_options o = it_options_tunnel(cmd, "courier:noquota");
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c != NULL) {
        it_events ev;
        memset(&ev, 0, sizeof(ev));
        it_events_attach(c, &ev);
        const imk_result *r = NULL;
        int rc = imk_conn_getquotaroot(c, "INBOX", &r);
        CHECK_INT(rc, 0);
        CHECK(it_ok(r));
        CHECK(r != NULL && r->quotaroot != NULL && r->quotaroot->roots.count == 1);
        it_note("QUOTA without a list: %s; %u protocol error event(s), %zu quota(s)",
                r != NULL ? it_describe(r) : imk_error_name(rc), ev.count[IMK_SE_PROTOCOL_ERROR],
                r != NULL ? r->quota_count : 0);
        CHECK(it_trace_received_contains("courier:noquota", "* QUOTA \"ROOT\"\r\n"));
        /* The session goes on. */
        CHECK_INT(imk_conn_noop(c, &r), 0);
        CHECK(it_ok(r));
        CHECK_INT(imk_conn_logout(c), 0);
        imk_conn_free(c);
    }
    free(cmd);
}

static void t_utf8_accept(void)
{
    NEED_A();
    imk_conn *u = open_conn("courier:U");
    CHECK(u != NULL);
    if (u == NULL)
        return;
    static const char *const ext[] = {"UTF8=ACCEPT"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_enable(u, ext, 1, &r), 0);
    CHECK(it_ok(r) && it_has_flag(r->enabled, "UTF8=ACCEPT"));
    CHECK(imk_session_is_enabled(imk_conn_session(u), "UTF8=ACCEPT"));
    CHECK_INT(imk_conn_create(u,
                              "INBOX.Gr\xc3\xbc\xc3\x9f"
                              "e",
                              &r),
              0);
    CHECK(it_ok(r));
    /* The name went as UTF-8, not modified UTF-7. */
    CHECK(it_trace_sent_contains("courier:U", 0,
                                 "INBOX.Gr\xc3\xbc\xc3\x9f"
                                 "e"));
    CHECK_INT(imk_conn_list(u, "", "*", NULL, &r), 0);
    const imk_list_entry *e = it_list_find(r, "INBOX.Gr\xc3\xbc\xc3\x9f"
                                              "e");
    CHECK(e != NULL);
    /* A search string in UTF-8 mode: no CHARSET (RFC 6855 section 3). */
    CHECK_INT(imk_conn_select(u, "INBOX", NULL, &r), 0);
    size_t before = it_trace_sent("courier:U");
    const char *gruss[] = {"Gr\xc3\xbc\xc3\x9f"};
    CHECK_INT(imk_conn_search(u, 1, "SUBJECT %s", gruss, 1, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("SEARCH in UTF8=ACCEPT mode: %s", it_describe(r));
    static const uint32_t g[] = {3};
    CHECK(it_ids_equal(r, g, 1));
    CHECK(!it_trace_sent_contains("courier:U", before, "CHARSET"));
    imk_conn_logout(u);
    imk_conn_free(u);
    /* The other session sees the name in modified UTF-7, decoded. */
    CHECK_INT(imk_conn_list(A, "", "INBOX.Gr*", NULL, &r), 0);
    e = it_list_find(r, "INBOX.Gr\xc3\xbc\xc3\x9f"
                        "e");
    CHECK(e != NULL && it_str_eq(e->list.mailbox_raw, "INBOX.Gr&APwA3w-e"));
}

static void t_multiappend(void)
{
    NEED_A();
    imk_append_msg m[3];
    for (size_t i = 0; i < 3; i++) {
        imk_append_msg init = IMK_APPEND_MSG_INIT;
        m[i] = init;
        m[i].data = it_messages[i].text;
        m[i].size = strlen(it_messages[i].text);
    }
    size_t before = it_trace_sent(label_a);
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_append(A, "INBOX.it.multi", m, 3, &r), 0);
    CHECK(it_ok(r));
    /* No MULTIAPPEND: one APPEND each. */
    CHECK_INT(it_trace_sent_count(label_a, before, "APPEND"), 3);
    CHECK_INT(it_status_messages(A, "INBOX.it.multi"), 3);
}

typedef struct flag {
    int done, err, ok;
    uint64_t messages;
} flag;

static void on_done(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    flag *f = user;
    f->done = 1;
    f->err = err;
    f->ok = err == 0 && res != NULL && res->status == IMK_STATUS_OK;
    if (f->ok && res->status_count == 1)
        f->messages = res->statuses[0].messages;
}

static char async_body[2048];
static size_t async_len;

static void on_item(imk_conn *c, const imk_fetch_item *item, void *user)
{
    (void)c;
    (void)user;
    if (item->type == IMK_FI_BODY_DATA && async_len + item->len <= sizeof(async_body)) {
        memcpy(async_body + async_len, item->data, item->len);
        async_len += item->len;
    }
}

static void t_event_loop(void)
{
    imk_conn_options o = it_options_tunnel(tunnel_cmd, "courier:async");
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    flag f = {0, 0, 0, 0};
    CHECK_INT(imk_conn_connect_async(c, on_done, &f), 0);
    CHECK_INT(it_loop(c, &f.done, 15000), 0);
    CHECK(f.err == 0);
    flag s[3];
    memset(s, 0, sizeof(s));
    static const char *const boxes[] = {"INBOX", "INBOX.it", "INBOX.it.multi"};
    static const uint64_t counts[] = {4, 1, 3};
    for (size_t i = 0; i < 3; i++)
        CHECK_INT(imk_conn_status_async(c, boxes[i], "MESSAGES", on_done, &s[i]), 0);
    flag sel = {0, 0, 0, 0}, fe = {0, 0, 0, 0};
    CHECK_INT(imk_conn_select_async(c, "INBOX", NULL, on_done, &sel), 0);
    async_len = 0;
    CHECK_INT(imk_conn_fetch_async(c, 1, "1", "(UID BODY.PEEK[])", on_item, on_done, &fe), 0);
    CHECK_INT(it_loop(c, &fe.done, 20000), 0);
    for (size_t i = 0; i < 3; i++)
        CHECK(s[i].done && s[i].ok && s[i].messages == counts[i]);
    CHECK(sel.ok && fe.ok);
    CHECK_MEM(async_body, async_len, it_messages[0].text, strlen(it_messages[0].text));
    flag out = {0, 0, 0, 0};
    CHECK_INT(imk_conn_logout_async(c, on_done, &out), 0);
    CHECK_INT(it_loop(c, &out.done, 10000), 0);
    imk_conn_free(c);
}

static void t_logout(void)
{
    NEED_A();
    CHECK_INT(evA.count[IMK_SE_PROTOCOL_ERROR], 0);
    CHECK_INT(imk_conn_logout(A), 0);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_LOGOUT);
    CHECK(it_trace_received_contains(label_a, "* BYE Courier-IMAP server shutting down"));
    int st = -1, exited = 0;
    for (int i = 0; i < 100 && !(exited = imk_conn_tunnel_status(A, &st)); i++)
        it_sleep_ms(20);
    CHECK_INT(exited, 1);
    CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    imk_conn_free(A);
    A = NULL;
}

int main(void)
{
    it_init("test_it_courier", 110);
    tunnel_cmd = it_tunnel("courier-tunnel", "courier", tunnel_dir, sizeof(tunnel_dir));
    IT_RUN(t_connect);
    IT_RUN(t_namespace);
    IT_RUN(t_create_list);
    IT_RUN(t_append_small);
    IT_RUN(t_select);
    IT_RUN(t_fetch_attributes);
    IT_RUN(t_fetch_bodies);
    IT_RUN(t_append_large_and_binary);
    IT_RUN(t_search);
    IT_RUN(t_sort_thread);
    IT_RUN(t_store);
    IT_RUN(t_copy_move_expunge);
    IT_RUN(t_idle);
    IT_RUN(t_status);
    IT_RUN(t_rename_subscribe_delete);
    IT_RUN(t_quota);
    IT_RUN(t_quota_without_limits);
    IT_RUN(t_utf8_accept);
    IT_RUN(t_multiappend);
    IT_RUN(t_event_loop);
    IT_RUN(t_logout);
    if (A != NULL)
        imk_conn_free(A);
    free(tunnel_cmd);
    return test_finish();
}
