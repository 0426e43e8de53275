/* SPDX-License-Identifier: MIT */
/*
 * test_it_dovecot.c - the IMAP round trips against a real Dovecot 2.3,
 * twice: over the preauthenticated tunnel (/usr/lib/dovecot/imap on a
 * pipe) and over implicit TLS to a private daemon with a password login.
 * Each run starts from an empty mailbox store and goes through the
 * operations in an order where every step knows what the server holds:
 *
 *   connect, NAMESPACE, ID, CREATE + LIST (+ LIST-EXTENDED: SPECIAL-USE),
 *   APPEND (5 related messages with flags and a date), SELECT, FETCH of
 *   attributes (flags, envelope, bodystructure) and of bodies (in memory
 *   and through the iterator, byte for byte), APPEND of 10 MB (callback),
 *   1 MB (file descriptor) and binary content (literal8), SEARCH (ESEARCH,
 *   UTF-8 and hostile arguments), SORT, THREAD, STORE, CONDSTORE
 *   (UNCHANGEDSINCE / MODIFIED), COPY, MOVE, EXPUNGE, UID EXPUNGE, IDLE
 *   while a second connection appends, STATUS, LIST-STATUS, RENAME,
 *   SUBSCRIBE, DELETE, quota, metadata, NOTIFY, ENABLE QRESYNC and a
 *   SELECT (QRESYNC ...) that gets VANISHED (EARLIER), MULTIAPPEND, the
 *   event-loop interface, LOGOUT.
 *
 * Every step checks what came back (UIDs, counts, flags, bytes, codes),
 * not just the return code. The connection's event callback records every
 * unsolicited event, and no protocol error may be reported at all.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct server {
    const char *name; /* "tunnel" or "daemon" */
    int tunnel;
} server;

static it_dovecot d;
static char *tunnel_cmd;
static server *S;
static imk_conn *A; /* the main connection of the run */
static it_events evA;
static char label_a[32];
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

static imk_conn_options options_for(const char *label)
{
    if (S->tunnel)
        return it_options_tunnel(tunnel_cmd, label);
    return it_options_tls(&d, label);
}

static imk_conn *open_conn(const char *role)
{
    char label[48];
    snprintf(label, sizeof(label), "%s:%s", S->name, role);
    imk_conn_options o = options_for(label);
    return S->tunnel ? it_connect(&o) : it_connect_login(&o, IT_USER, IT_PASSWORD);
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
    if (!S->tunnel) {
        imk_auth a = IMK_AUTH_INIT;
        a.user = IT_USER;
        a.password = IT_PASSWORD;
        if (imk_conn_login(A, &a) < 0)
            return 0;
    }
    const imk_result *r = NULL;
    return imk_conn_select(A, "INBOX", NULL, &r) == 0 && it_ok(r);
}

/* ---------------------------------------------------------------- */

static void t_connect(void)
{
    A = open_conn("A");
    CHECK(A != NULL);
    if (A == NULL)
        return;
    snprintf(label_a, sizeof(label_a), "%s:A", S->name);
    it_events_attach(A, &evA);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    const char *t = imk_conn_transport(A);
    if (S->tunnel)
        CHECK_STR(t, "tunnel");
    else
        CHECK(strncmp(t, "TLSv1.", 6) == 0);
    /* What the configuration turns on, as the client read it. */
    static const char *const caps[] = {
        "IMAP4rev1",   "ESEARCH", "BINARY",  "MOVE",     "QRESYNC",     "NOTIFY",     "METADATA",
        "SPECIAL-USE", "QUOTA",   "UIDPLUS", "LITERAL+", "MULTIAPPEND", "LIST-STATUS"};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        if (!imk_conn_has_capability(A, caps[i]))
            it_note("capability %s missing", caps[i]);
        CHECK(imk_conn_has_capability(A, caps[i]));
    }
    CHECK(!imk_conn_has_capability(A, "NO-SUCH-CAPABILITY"));
}

static void t_namespace(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_namespace(A, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->namespace_ != NULL);
    if (r == NULL || r->namespace_ == NULL)
        return;
    const imk_namespace *ns = r->namespace_;
    CHECK_INT(ns->personal.count, 1);
    if (ns->personal.count >= 1) {
        CHECK(ns->personal.items[0].prefix.data != NULL && ns->personal.items[0].prefix.len == 0);
        CHECK_INT(ns->personal.items[0].delimiter, '/');
    }
    CHECK(ns->other_users.nil || ns->other_users.count == 0);
    CHECK(ns->shared.nil || ns->shared.count == 0);
}

static void t_id(void)
{
    NEED_A();
    static const char *const kv[] = {"name", "imapkit-it", "version", "0.1"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_id(A, kv, 2, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->id != NULL && !r->id->nil);
    int found = 0;
    for (size_t i = 0; r != NULL && r->id != NULL && i < r->id->fields.count; i++) {
        if (it_str_ieq(r->id->fields.items[i].name, "name"))
            found = it_str_eq(r->id->fields.items[i].value, "Dovecot");
    }
    CHECK(found);
    CHECK(it_trace_sent_contains(label_a, 0, "\"imapkit-it\""));
}

static void t_create_list(void)
{
    NEED_A();
    static const char *const boxes[] = {"it", "it/sub", "it/big", "Entw\xc3\xbcrfe", "it/multi"};
    const imk_result *r = NULL;
    for (size_t i = 0; i < sizeof(boxes) / sizeof(boxes[0]); i++) {
        CHECK_INT(imk_conn_create(A, boxes[i], &r), 0);
        if (!it_ok(r))
            it_note("CREATE %s: %s", boxes[i], it_describe(r));
        CHECK(it_ok(r));
    }
    /* A refusal is a result, not an error. */
    CHECK_INT(imk_conn_create(A, "it", &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_ALREADYEXISTS);

    CHECK_INT(imk_conn_list(A, "", "*", NULL, &r), 0);
    CHECK(it_ok(r));
    static const char *const expect[] = {"INBOX",  "Sent",   "Drafts",          "Trash",   "it",
                                         "it/sub", "it/big", "Entw\xc3\xbcrfe", "it/multi"};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        const imk_list_entry *e = it_list_find(r, expect[i]);
        if (e == NULL)
            it_note("LIST lacks %s", expect[i]);
        CHECK(e != NULL);
        if (e != NULL)
            CHECK_INT(e->list.delimiter, '/');
    }
    CHECK_INT(r != NULL ? r->list_count : 0, sizeof(expect) / sizeof(expect[0]));
    const imk_list_entry *e = it_list_find(r, "Entw\xc3\xbcrfe");
    CHECK(e != NULL && it_str_eq(e->list.mailbox_raw, "Entw&APw-rfe"));
    e = it_list_find(r, "it");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\HasChildren"));
    e = it_list_find(r, "it/sub");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\HasNoChildren"));

    CHECK_INT(imk_conn_list(A, "", "it/%", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(r != NULL ? r->list_count : 0, 3);
    CHECK(it_list_find(r, "it/sub") != NULL && it_list_find(r, "INBOX") == NULL);
}

static void t_list_special_use(void)
{
    NEED_A();
    imk_list_params p = {IMK_LIST_RETURN_SPECIAL_USE, NULL};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    const imk_list_entry *e = it_list_find(r, "Sent");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Sent"));
    e = it_list_find(r, "Drafts");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Drafts"));
    e = it_list_find(r, "Trash");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Trash"));
    e = it_list_find(r, "INBOX");
    CHECK(e != NULL && !it_has_flag(e->list.attributes, "\\Sent"));
    CHECK(it_trace_sent_contains(label_a, 0, "RETURN (SPECIAL-USE)"));

    /* Selection by SPECIAL-USE: only the three special mailboxes. */
    p.flags = IMK_LIST_SPECIAL_USE | IMK_LIST_RETURN_SPECIAL_USE;
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(r != NULL ? r->list_count : 0, 3);
    CHECK(it_list_find(r, "INBOX") == NULL && it_list_find(r, "Trash") != NULL);
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
        if (r != NULL && r->has_appenduid) {
            CHECK_INT(it_seqset_count(r->dest_uids), 1);
            if (i == 0)
                inbox_uidvalidity = (uint32_t)r->uidvalidity;
            CHECK_INT(r->uidvalidity, inbox_uidvalidity);
        }
    }
    CHECK(inbox_uidvalidity != 0);
    /* LITERAL+ is offered: no synchronizing literal, no "+" awaited. */
    CHECK(it_trace_sent_contains(label_a, 0, "+}\r\n"));
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
    CHECK_INT(imk_view_uidnext(v), 6);
    CHECK(!imk_view_read_only(v));
    CHECK(it_has_flag(imk_view_flags(v), "\\Seen"));
    CHECK(it_has_flag(imk_view_permanent_flags(v), "\\*"));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
    const char *mb = imk_session_mailbox(imk_conn_session(A));
    CHECK(mb != NULL && strcmp(mb, "INBOX") == 0);
}

static void check_envelope_1(const imk_envelope *env)
{
    CHECK(env != NULL);
    if (env == NULL)
        return;
    CHECK(it_str_eq(env->subject, "Project kickoff"));
    CHECK(it_str_eq(env->message_id, "<kickoff-1@example.org>"));
    CHECK(it_str_eq(env->date, "Mon, 03 Jul 2023 09:12:44 +0200"));
    CHECK_INT(env->from.count, 1);
    if (env->from.count == 1) {
        CHECK(it_str_eq(env->from.items[0].name, "Alice Example"));
        CHECK(it_str_eq(env->from.items[0].mailbox, "alice"));
        CHECK(it_str_eq(env->from.items[0].host, "example.org"));
    }
    CHECK_INT(env->to.count, 1);
    if (env->to.count == 1)
        CHECK(it_str_eq(env->to.items[0].host, "example.com"));
    CHECK(env->in_reply_to.data == NULL || env->in_reply_to.len == 0);
}

static void check_bodystructure_2(const imk_body *b)
{
    CHECK(b != NULL);
    if (b == NULL)
        return;
    CHECK(b->multipart);
    CHECK(it_str_ieq(b->subtype, "mixed"));
    CHECK_INT(b->part_count, 2);
    if (b->part_count != 2)
        return;
    const imk_body *p1 = &b->parts[0], *p2 = &b->parts[1];
    CHECK(!p1->multipart && it_str_ieq(p1->type, "text") && it_str_ieq(p1->subtype, "plain"));
    CHECK(p1->has_lines && p1->lines == 3);
    CHECK(it_str_ieq(p2->type, "application") && it_str_ieq(p2->subtype, "pdf"));
    CHECK(it_str_ieq(p2->encoding, "base64"));
    CHECK(p2->has_ext && it_str_ieq(p2->disposition, "attachment"));
    int name_ok = 0;
    for (size_t i = 0; i < p2->params.count; i++) {
        if (it_str_ieq(p2->params.items[i].name, "name"))
            name_ok = it_str_eq(p2->params.items[i].value, "draft-plan.pdf");
    }
    CHECK(name_ok);
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
    /* Only one iterator at a time; other calls wait for its end. */
    const imk_result *busy = NULL;
    CHECK_INT(imk_conn_noop(A, &busy), IMK_EBUSY);
    imk_fetch_item item;
    int records = 0;
    unsigned seen = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        CHECK(item.type == IMK_FI_MESSAGE);
        if (item.type != IMK_FI_MESSAGE)
            continue;
        records++;
        const imk_fetch *f = item.msg;
        unsigned need = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_INTERNALDATE |
                        IMK_FETCH_RFC822_SIZE | IMK_FETCH_ENVELOPE | IMK_FETCH_BODYSTRUCTURE;
        CHECK((f->present & need) == need);
        CHECK(f->uid >= 1 && f->uid <= 5);
        if (f->uid < 1 || f->uid > 5)
            continue;
        size_t i = f->uid - 1;
        seen |= 1u << i;
        CHECK_INT(f->seq, f->uid);
        CHECK_INT(f->rfc822_size, strlen(it_messages[i].text));
        for (size_t k = 0; k < n_flags_of(i); k++)
            CHECK(it_has_flag(f->flags, flags_of[i][k]));
        CHECK(it_has_flag(f->flags, "\\Seen") == (i < 2));
        CHECK(f->envelope != NULL && it_str_eq(f->envelope->subject, it_messages[i].subject));
        CHECK(f->envelope != NULL && it_str_eq(f->envelope->message_id, it_messages[i].message_id));
        if (i == 0) {
            check_envelope_1(f->envelope);
            /* The moment appended; Dovecot may give it in another zone. */
            imk_datetime want = {2023, 7, 3, 9, 12, 50, 120};
            CHECK_INT(it_minutes_utc(&f->internaldate), it_minutes_utc(&want));
            CHECK_INT(f->internaldate.second, 50);
            CHECK(f->body != NULL && !f->body->multipart && it_str_ieq(f->body->type, "text") &&
                  it_str_ieq(f->body->subtype, "plain"));
        }
        if (i == 1) {
            check_bodystructure_2(f->body);
            CHECK(f->envelope != NULL && f->envelope->cc.count == 2);
            CHECK(f->envelope != NULL &&
                  it_str_eq(f->envelope->in_reply_to, "<kickoff-1@example.org>"));
        }
    }
    CHECK_INT(rc, 0);
    const imk_result *r = NULL;
    CHECK_INT(imk_fetch_iter_end(it, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(records, 5);
    CHECK_INT(seen, 0x1f);
    /* The view learnt the flags too. */
    CHECK(it_has_flag(it_view_flags(A, 2), "\\Answered"));
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Seen"));
}

static void t_fetch_bodies(void)
{
    NEED_A();
    /* In memory. */
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
        CHECK_INT(msgs[k].size, strlen(want));
        CHECK_INT(msgs[k].seq, uid);
        CHECK(it_has_flag(msgs[k].flags, "\\Seen") == (uid <= 2));
    }
    imk_messages_free(A, msgs, n);

    /* Through the iterator, all at once, each body compared at its end. */
    imk_fetch_iter *it = NULL;
    CHECK_INT(imk_conn_fetch(A, 1, "1:*", "(UID BODY.PEEK[])", &it), 0);
    if (it != NULL) {
        char *buf = malloc(64 * 1024);
        size_t len = 0;
        int bodies = 0, records = 0, rc;
        uint32_t seq = 0;
        imk_fetch_item item;
        while (buf != NULL && (rc = imk_fetch_iter_next(it, &item)) == 1) {
            if (item.type == IMK_FI_BODY_BEGIN) {
                len = 0;
                seq = item.body->seq;
                CHECK(item.body->item == IMK_SECTION_BODY && item.body->spec.len == 0);
            } else if (item.type == IMK_FI_BODY_DATA) {
                if (len + item.len <= 64 * 1024)
                    memcpy(buf + len, item.data, item.len);
                len += item.len;
            } else if (item.type == IMK_FI_BODY_END) {
                bodies++;
                CHECK(seq >= 1 && seq <= 5);
                if (seq >= 1 && seq <= 5) /* seq == uid in this mailbox */
                    CHECK_MEM(buf, len, it_messages[seq - 1].text,
                              strlen(it_messages[seq - 1].text));
            } else {
                records++;
                CHECK(item.msg->uid == item.msg->seq);
                CHECK(item.msg->section_count == 1 && item.msg->sections[0].streamed);
            }
        }
        free(buf);
        CHECK_INT(bodies, 5);
        CHECK_INT(records, 5);
        const imk_result *r = NULL;
        CHECK_INT(imk_fetch_iter_end(it, &r), 0);
        CHECK(it_ok(r));
    }
    /* One by one, with the shared helper; and a section. */
    for (uint32_t uid = 1; uid <= 5; uid++)
        CHECK(it_fetch_equals(A, uid, "BODY.PEEK[]", it_messages[uid - 1].text,
                              strlen(it_messages[uid - 1].text)));
    const char *text1 = strstr(it_messages[0].text, "\r\n\r\n") + 4;
    CHECK(it_fetch_equals(A, 1, "BODY.PEEK[TEXT]", text1, strlen(text1)));
    /* A peek leaves \Seen alone. */
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Seen"));
}

typedef struct mem_reader {
    const char *data;
    size_t len, at;
    int calls;
} mem_reader;

static long read_chunks(void *user, void *buf, size_t cap)
{
    mem_reader *m = user;
    size_t n = m->len - m->at;
    if (n > cap)
        n = cap;
    if (n > 100000) /* several calls, in uneven pieces */
        n = 100000 - (size_t)(m->calls % 7) * 1000;
    memcpy(buf, m->data + m->at, n);
    m->at += n;
    m->calls++;
    return (long)n;
}

static void t_append_large_and_binary(void)
{
    NEED_A();
    /* 11 MB over a local pipe or socket take well under a second; a stalled
     * transfer must fail this step, not the whole test's watchdog. */
    imk_conn_set_call_timeout(A, 20000);
    const size_t big_len = 10u * 1024u * 1024u, mid_len = 1024u * 1024u;
    char *big = it_big_message(big_len, 7);
    char *mid = it_big_message(mid_len, 8);
    size_t bin_len = 0;
    char *bin = it_binary_message(&bin_len);
    CHECK(big != NULL && mid != NULL && bin != NULL);
    if (big == NULL || mid == NULL || bin == NULL)
        goto out;
    const imk_result *r = NULL;

    /* 10 MB from a callback. */
    mem_reader mr = {big, big_len, 0, 0};
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.size = big_len;
    m.read = read_chunks;
    m.read_user = &mr;
    int rc = imk_conn_append(A, "it/big", &m, 1, &r);
    CHECK_INT(rc, 0);
    if (rc != 0)
        it_note("APPEND of 10 MB: %s: %s", imk_error_name(rc), imk_conn_error(A));
    CHECK(it_ok(r));
    uint32_t uid_big = it_first_dest_uid(r);
    CHECK_INT(uid_big, 1);
    CHECK_INT(mr.at, big_len);

    /* 1 MB from a file descriptor (read from its current position). */
    char dir[1024], path[1100];
    it_scratch("append-fd", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/mid.eml", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    uint32_t uid_mid = 0;
    if (fd >= 0) {
        CHECK(write(fd, "skipped", 7) == 7);
        CHECK(write(fd, mid, mid_len) == (ssize_t)mid_len);
        CHECK(lseek(fd, 7, SEEK_SET) == 7);
        imk_append_msg f = IMK_APPEND_MSG_INIT;
        f.size = mid_len;
        f.fd = fd;
        CHECK_INT(imk_conn_append(A, "it/big", &f, 1, &r), 0);
        CHECK(it_ok(r));
        uid_mid = it_first_dest_uid(r);
        CHECK_INT(uid_mid, 2);
        close(fd);
    }

    /* Binary content: NUL and every other byte, as literal8. */
    size_t sent_before = it_trace_sent(label_a);
    imk_append_msg b = IMK_APPEND_MSG_INIT;
    b.data = bin;
    b.size = bin_len;
    b.binary = 1;
    CHECK_INT(imk_conn_append(A, "it/big", &b, 1, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("binary APPEND: %s", it_describe(r));
    uint32_t uid_bin = it_first_dest_uid(r);
    CHECK_INT(uid_bin, 3);
    CHECK(it_trace_sent_contains(label_a, sent_before, "~{"));

    CHECK_INT(imk_conn_select(A, "it/big", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 3);
    CHECK(it_fetch_equals(A, uid_big, "BODY.PEEK[]", big, big_len));
    CHECK(it_fetch_equals(A, uid_mid, "BODY.PEEK[]", mid, mid_len));
    /* Dovecot stores binary parts base64-encoded; BINARY[] gives back the
     * bytes as appended (RFC 3516). */
    CHECK(it_fetch_equals(A, uid_bin, "BINARY.PEEK[]", bin, bin_len));

    /* The in-memory helper refuses what is above its limit... */
    imk_message *msgs = NULL;
    size_t n = 0;
    char set[16];
    snprintf(set, sizeof(set), "%u", uid_big);
    CHECK_INT(imk_conn_fetch_messages(A, 1, set, 1024 * 1024, &msgs, &n), IMK_ELIMIT);
    /* ...and the connection goes on. */
    snprintf(set, sizeof(set), "%u", uid_mid);
    msgs = NULL;
    n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, set, 2 * 1024 * 1024, &msgs, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK(msgs[0].body_len == mid_len && memcmp(msgs[0].body, mid, mid_len) == 0);
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
    CHECK(r != NULL && r->esearch != NULL); /* ESEARCH is offered */
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

    CHECK_INT(imk_conn_search(A, 0, "ALL", NULL, 0, &r), 0);
    static const uint32_t all[] = {1, 2, 3, 4, 5};
    CHECK(it_ok(r) && it_ids_equal(r, all, 5));

    /* Hostile arguments are data, never protocol. */
    const char *hostile[] = {"x\"y\\z\r\nA999 LOGOUT\r\n"};
    CHECK_INT(imk_conn_search(A, 1, "SUBJECT %s", hostile, 1, &r), 0);
    CHECK(it_ok(r) && it_ids_equal(r, NULL, 0));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK(it_ok(r));
    /* Quotes in the criteria text itself are refused before sending. */
    before = it_trace_sent(label_a);
    CHECK_INT(imk_conn_search(A, 1, "SUBJECT \"x\"", NULL, 0, &r), IMK_EINVAL);
    CHECK_INT(it_trace_sent(label_a), before);
}

static void t_sort_thread(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_sort(A, 1, "REVERSE DATE", "ALL", NULL, 0, &r), 0);
    CHECK(it_ok(r));
    static const uint32_t by_date[] = {4, 5, 3, 2, 1};
    CHECK(it_ids_equal(r, by_date, 5));
    CHECK_INT(imk_conn_sort(A, 1, "SUBJECT", "SEEN", NULL, 0, &r), 0);
    static const uint32_t by_subject[] = {1, 2}; /* same base subject: then by order */
    CHECK(it_ok(r) && it_ids_equal(r, by_subject, 2));

    CHECK_INT(imk_conn_thread(A, 1, "REFERENCES", "ALL", NULL, 0, &r), 0);
    CHECK(it_ok(r));
    /* (1 2 4)(3)(5): threads ordered by their first message's date. */
    const imk_thread *t = r != NULL ? &r->thread : NULL;
    CHECK(t != NULL && t->count == 3);
    if (t != NULL && t->count == 3) {
        const imk_thread_node *n1 = &t->roots[0];
        CHECK_INT(n1->num, 1);
        CHECK_INT(n1->child_count, 1);
        if (n1->child_count == 1) {
            const imk_thread_node *n2 = &n1->children[0];
            CHECK_INT(n2->num, 2);
            CHECK_INT(n2->child_count, 1);
            if (n2->child_count == 1) {
                CHECK_INT(n2->children[0].num, 4);
                CHECK_INT(n2->children[0].child_count, 0);
            }
        }
        CHECK(t->roots[1].num == 3 && t->roots[1].child_count == 0);
        CHECK(t->roots[2].num == 5 && t->roots[2].child_count == 0);
    }
    CHECK_INT(imk_conn_thread(A, 1, "ORDEREDSUBJECT", "ALL", NULL, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->thread.count == 4); /* kickoff+re, gruesse, nightly, room */
}

static void t_store(void)
{
    NEED_A();
    static const char *const two[] = {"\\Flagged", "$Important"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_store(A, 1, "3", "+FLAGS", two, 2, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->fetch_count == 1);
    if (r != NULL && r->fetch_count == 1) {
        CHECK_INT(r->fetches[0].uid, 3);
        CHECK(it_has_flag(r->fetches[0].flags, "\\Flagged"));
        CHECK(it_has_flag(r->fetches[0].flags, "$Important"));
    }
    CHECK(it_has_flag(it_view_flags(A, 3), "$Important"));
    CHECK_INT(imk_conn_store(A, 1, "3", "-FLAGS", two, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->fetch_count == 1 && !it_has_flag(r->fetches[0].flags, "\\Flagged") &&
          it_has_flag(r->fetches[0].flags, "$Important"));
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Flagged"));
    /* By sequence number. */
    static const char *const seen[] = {"\\Seen"};
    CHECK_INT(imk_conn_store(A, 0, "4:5", "+FLAGS", seen, 1, 0, &r), 0);
    CHECK(it_ok(r) && r->fetch_count == 2);
    CHECK_INT(imk_conn_store(A, 0, "4:5", "-FLAGS.SILENT", seen, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_search(A, 1, "UNSEEN", NULL, 0, &r), 0);
    static const uint32_t u[] = {3, 4, 5};
    CHECK(it_ok(r) && it_ids_equal(r, u, 3));
}

static void t_condstore(void)
{
    NEED_A();
    imk_select_params p;
    memset(&p, 0, sizeof(p));
    p.condstore = 1;
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(A, "INBOX", &p, &r), 0);
    CHECK(it_ok(r));
    CHECK(imk_view_highest_modseq(imk_conn_view(A)) > 0);
    /* After a SELECT the view knows no UIDs: learn them (and the MODSEQs),
     * as a client does before it works with UIDs. */
    CHECK_INT(imk_view_uid_of_seq(imk_conn_view(A), 5), 0);
    imk_fetch_iter *it = NULL;
    CHECK_INT(imk_conn_fetch(A, 0, "1:*", "(UID FLAGS MODSEQ)", &it), 0);
    if (it != NULL) {
        imk_fetch_item item;
        int n = 0;
        while (imk_fetch_iter_next(it, &item) == 1)
            n += item.type == IMK_FI_MESSAGE && (item.msg->present & IMK_FETCH_MODSEQ) != 0;
        CHECK_INT(n, 5);
        CHECK_INT(imk_fetch_iter_end(it, &r), 0);
        CHECK(it_ok(r));
    }
    for (uint32_t seq = 1; seq <= 5; seq++) {
        imk_view_message vm;
        CHECK(imk_view_message_at(imk_conn_view(A), seq, &vm) && vm.uid == seq && vm.modseq > 0);
    }
    static const char *const fa[] = {"$A"}, *const fb[] = {"$B"}, *const fc[] = {"$C"};
    CHECK_INT(imk_conn_store(A, 1, "3", "+FLAGS", fa, 1, 0, &r), 0);
    uint64_t m1 = r != NULL && r->fetch_count == 1 ? r->fetches[0].modseq : 0;
    CHECK(m1 > 0);
    CHECK_INT(imk_conn_store(A, 1, "3", "+FLAGS", fb, 1, m1, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && (r->code == NULL || r->code->kind != IMK_CODE_MODIFIED));
    uint64_t m2 = r != NULL && r->fetch_count == 1 ? r->fetches[0].modseq : 0;
    CHECK(m2 > m1);
    CHECK(it_has_flag(it_view_flags(A, 3), "$B"));
    /* Stale: the message changed since m1. */
    CHECK_INT(imk_conn_store(A, 1, "3", "+FLAGS", fc, 1, m1, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_MODIFIED);
    if (r != NULL && r->code != NULL && r->code->kind == IMK_CODE_MODIFIED)
        CHECK(it_seqset_has(r->code->set, 3));
    CHECK(!it_has_flag(it_view_flags(A, 3), "$C"));
}

static void t_copy_move_expunge(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_copy(A, 1, "1:2", "it/sub", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->has_copyuid);
    if (r != NULL && r->has_copyuid) {
        CHECK(it_seqset_has(r->source_uids, 1) && it_seqset_has(r->source_uids, 2));
        CHECK_INT(it_seqset_count(r->dest_uids), 2);
        CHECK(it_seqset_has(r->dest_uids, 1) && it_seqset_has(r->dest_uids, 2));
        copy_uidvalidity = (uint32_t)r->uidvalidity;
        CHECK(copy_uidvalidity != 0);
    }
    CHECK_INT(it_status_messages(A, "it/sub"), 2);
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 5);

    CHECK_INT(imk_conn_move(A, 1, "5", "Trash", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->has_copyuid && it_seqset_has(r->source_uids, 5) &&
          it_seqset_count(r->dest_uids) == 1);
    CHECK(it_expunged_equal(r, (const uint32_t[]){5}, 1));
    CHECK(it_trace_sent_contains(label_a, 0, "UID MOVE 5"));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 4);
    CHECK_INT(imk_view_seq_of_uid(imk_conn_view(A), 5), 0);
    CHECK_INT(it_status_messages(A, "Trash"), 1);

    static const char *const del[] = {"\\Deleted"};
    CHECK_INT(imk_conn_store(A, 1, "4", "+FLAGS.SILENT", del, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_expunge(A, NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_expunged_equal(r, (const uint32_t[]){4}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 3);

    /* UID EXPUNGE removes exactly the named message. */
    uint32_t t1 = it_append_text(A, "INBOX", "Subject: tmp1\r\n\r\nfirst\r\n");
    uint32_t t2 = it_append_text(A, "INBOX", "Subject: tmp2\r\n\r\nsecond\r\n");
    CHECK(t1 == 6 && t2 == 7);
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 5);
    CHECK_INT(imk_conn_store(A, 1, "6:7", "+FLAGS", del, 1, 0, &r), 0);
    CHECK(it_ok(r) && r->fetch_count == 2);
    CHECK_INT(imk_conn_expunge(A, "6", &r), 0);
    CHECK(it_ok(r));
    CHECK(it_expunged_equal(r, (const uint32_t[]){6}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 4);
    CHECK(imk_view_seq_of_uid(imk_conn_view(A), 7) != 0);
    CHECK(it_has_flag(it_view_flags(A, 7), "\\Deleted"));
    CHECK_INT(imk_conn_expunge(A, "7", &r), 0);
    CHECK(it_expunged_equal(r, (const uint32_t[]){7}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 3); /* UIDs 1, 2, 3 */
}

static int child_append(void *arg)
{
    const char *mailbox = arg;
    imk_conn *b = open_conn("B");
    if (b == NULL)
        return 1;
    uint32_t uid = it_append_text(b, mailbox, "Subject: while idling\r\n\r\nnew mail\r\n");
    imk_conn_logout(b);
    imk_conn_free(b);
    return uid != 0 ? 0 : 1;
}

static void t_idle(void)
{
    NEED_A();
    uint32_t before = imk_view_exists(imk_conn_view(A));
    it_events_clear(&evA);
    int pid = it_child_start(300, child_append, (void *)"INBOX");
    CHECK(pid > 0);
    int64_t t0 = it_now_ms();
    int rc = imk_conn_idle(A, 20000, 1);
    int64_t took = it_now_ms() - t0;
    CHECK_INT(rc, 0);
    CHECK_INT(it_child_wait(pid), 0);
    CHECK(evA.count[IMK_SE_EXISTS] >= 1);
    /* stop_on_change ended the IDLE, not the 20 s timeout. */
    CHECK(took < 19000);
    it_note("IDLE ended after %lld ms", (long long)took);
    CHECK(it_trace_sent_contains(label_a, 0, "IDLE\r\n"));
    CHECK(it_trace_sent_contains(label_a, 0, "DONE\r\n"));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), before + 1);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);

    /* Nothing happens: the time is up, and the connection works on. */
    it_events_clear(&evA);
    CHECK_INT(imk_conn_idle(A, 300, 1), 0);
    CHECK_INT(evA.count[IMK_SE_EXISTS], 0);
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK(it_ok(r));
}

static void t_status(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_status(A, "it/sub", "MESSAGES UIDNEXT UIDVALIDITY UNSEEN", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->status_count == 1);
    if (r == NULL || r->status_count != 1)
        return;
    const imk_status_data *s = &r->statuses[0];
    unsigned need =
        IMK_STATUS_MESSAGES | IMK_STATUS_UIDNEXT | IMK_STATUS_UIDVALIDITY | IMK_STATUS_UNSEEN;
    CHECK((s->present & need) == need);
    CHECK(it_str_eq(s->mailbox, "it/sub"));
    CHECK_INT(s->messages, 2);
    CHECK_INT(s->uidnext, 3);
    CHECK_INT(s->uidvalidity, copy_uidvalidity);
    CHECK_INT(s->unseen, 0);

    imk_list_params p = {0, "MESSAGES UNSEEN"};
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    const imk_list_entry *e = it_list_find(r, "Trash");
    CHECK(e != NULL && e->status != NULL && e->status->messages == 1);
    e = it_list_find(r, "it/sub");
    CHECK(e != NULL && e->status != NULL && e->status->messages == 2 && e->status->unseen == 0);
    e = it_list_find(r, "Entw\xc3\xbcrfe");
    CHECK(e != NULL && e->status != NULL && e->status->messages == 0);
    e = it_list_find(r, "INBOX");
    CHECK(e != NULL && e->status != NULL && e->status->messages == 4);
}

static void t_rename_subscribe_delete(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_rename(A, "it/sub", "it/renamed", &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_list(A, "", "it/*", NULL, &r), 0);
    CHECK(it_list_find(r, "it/renamed") != NULL && it_list_find(r, "it/sub") == NULL);
    CHECK_INT(it_status_messages(A, "it/renamed"), 2);

    CHECK_INT(imk_conn_subscribe(A, "Entw\xc3\xbcrfe", &r), 0);
    CHECK(it_ok(r));
    imk_list_params p = {IMK_LIST_SUBSCRIBED, NULL};
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    const imk_list_entry *e = it_list_find(r, "Entw\xc3\xbcrfe");
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Subscribed"));
    CHECK(it_list_find(r, "Sent") != NULL); /* auto = subscribe */
    CHECK(it_list_find(r, "it/renamed") == NULL);
    CHECK_INT(imk_conn_unsubscribe(A, "Entw\xc3\xbcrfe", &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, "Entw\xc3\xbcrfe") == NULL);

    CHECK_INT(imk_conn_delete(A, "it/renamed", &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_delete(A, "it/renamed", &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_NONEXISTENT);
    CHECK_INT(imk_conn_list(A, "", "*", NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, "it/renamed") == NULL && it_list_find(r, "it") != NULL);
    /* SELECT of a missing mailbox: a result, and the state falls back. */
    CHECK_INT(imk_conn_select(A, "it/renamed", NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
}

static void t_quota(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_getquotaroot(A, "INBOX", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->quotaroot != NULL);
    if (r != NULL && r->quotaroot != NULL) {
        CHECK(it_str_eq(r->quotaroot->mailbox, "INBOX"));
        CHECK(r->quotaroot->roots.count == 1 &&
              it_str_eq(r->quotaroot->roots.items[0], "User quota"));
    }
    CHECK(r != NULL && r->quota_count == 1);
    if (r != NULL && r->quota_count == 1) {
        const imk_quota *q = &r->quotas[0];
        CHECK(it_str_eq(q->root, "User quota"));
        CHECK(q->count == 1 && it_str_ieq(q->resources[0].name, "STORAGE"));
        if (q->count == 1) {
            CHECK_INT(q->resources[0].limit, 1024 * 1024); /* 1G in KiB */
            /* the 11 MiB in it/big, stored with LF line ends by Dovecot */
            CHECK(q->resources[0].usage >= 10 * 1024);
        }
    }
    CHECK_INT(imk_conn_getquota(A, "User quota", &r), 0);
    CHECK(it_ok(r) && r->quota_count == 1 && it_str_eq(r->quotas[0].root, "User quota"));
}

static void t_metadata(void)
{
    NEED_A();
    static const char *const entries[] = {"/private/comment", "/shared/comment"};
    static const char *const values[] = {"Gr\xc3\xbc\xc3\x9f"
                                         "e\r\nsecond line with \"quotes\"",
                                         "shared note"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_setmetadata(A, "INBOX", entries, values, 2, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("SETMETADATA: %s", it_describe(r));
    CHECK_INT(imk_conn_getmetadata(A, "INBOX", entries, 2, 0, 0, &r), 0);
    CHECK(it_ok(r));
    size_t found = 0;
    for (size_t i = 0; r != NULL && i < r->metadata_count; i++) {
        const imk_metadata *m = &r->metadata[i];
        CHECK(it_str_eq(m->mailbox, "INBOX"));
        for (size_t k = 0; k < m->entries.count; k++) {
            for (size_t e = 0; e < 2; e++) {
                if (it_str_ieq(m->entries.items[k].name, entries[e])) {
                    found++;
                    CHECK_MEM(m->entries.items[k].value.data, m->entries.items[k].value.len,
                              values[e], strlen(values[e]));
                }
            }
        }
    }
    CHECK_INT(found, 2);

    static const char *const none[] = {NULL};
    CHECK_INT(imk_conn_setmetadata(A, "INBOX", entries, none, 1, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_getmetadata(A, "INBOX", entries, 1, 0, 0, &r), 0);
    CHECK(it_ok(r));
    for (size_t i = 0; r != NULL && i < r->metadata_count; i++) {
        for (size_t k = 0; k < r->metadata[i].entries.count; k++)
            CHECK(r->metadata[i].entries.items[k].value.data == NULL);
    }
    /* Server annotations: mailbox "". */
    static const char *const server_val[] = {"server note"};
    CHECK_INT(imk_conn_setmetadata(A, "", entries, server_val, 1, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_getmetadata(A, "", entries, 1, 0, 0, &r), 0);
    CHECK(it_ok(r) && r->metadata_count == 1 && r->metadata[0].entries.count == 1 &&
          it_str_eq(r->metadata[0].entries.items[0].value, "server note"));
}

static void t_notify(void)
{
    NEED_A();
    imk_conn *n = open_conn("N");
    CHECK(n != NULL);
    if (n == NULL)
        return;
    it_events ev;
    memset(&ev, 0, sizeof(ev));
    it_events_attach(n, &ev);
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_notify(n, "SET STATUS (PERSONAL (MessageNew MessageExpunge MailboxName))",
                              NULL, 0, &r),
              0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("NOTIFY: %s", it_describe(r));
    it_events_clear(&ev);
    /* A change made by another connection... */
    CHECK(it_append_text(A, "Entw\xc3\xbcrfe", "Subject: draft\r\n\r\ndraft\r\n") != 0);
    /* ...arrives as unsolicited STATUS (after a NOOP at the latest). */
    for (int i = 0; i < 30 && strstr(ev.unsolicited_status, "Entw\xc3\xbcrfe=1") == NULL; i++) {
        CHECK_INT(imk_conn_noop(n, &r), 0);
        if (strstr(ev.unsolicited_status, "Entw\xc3\xbcrfe=1") == NULL)
            it_sleep_ms(100);
    }
    it_note("NOTIFY delivered: %s/ %s", ev.unsolicited_names, ev.unsolicited_status);
    CHECK(strstr(ev.unsolicited_status, "Entw\xc3\xbcrfe=1") != NULL);
    CHECK(imk_conn_create(A, "it/notified", &r) == 0 && it_ok(r));
    for (int i = 0; i < 30 && strstr(ev.unsolicited_names, "LIST") == NULL; i++) {
        CHECK_INT(imk_conn_noop(n, &r), 0);
        if (strstr(ev.unsolicited_names, "LIST") == NULL)
            it_sleep_ms(100);
    }
    CHECK(strstr(ev.unsolicited_names, "LIST") != NULL);
    CHECK_INT(imk_conn_notify(n, NULL, NULL, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_trace_sent_contains("tunnel:N", 0, "NOTIFY NONE") ||
          it_trace_sent_contains("daemon:N", 0, "NOTIFY NONE"));
    CHECK_INT(ev.count[IMK_SE_PROTOCOL_ERROR], 0);
    imk_conn_logout(n);
    imk_conn_free(n);
}

static void t_qresync(void)
{
    NEED_A();
    imk_conn *q = open_conn("Q");
    CHECK(q != NULL);
    if (q == NULL)
        return;
    it_events ev;
    memset(&ev, 0, sizeof(ev));
    it_events_attach(q, &ev);
    static const char *const exts[] = {"CONDSTORE", "QRESYNC"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_enable(q, exts, 2, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && it_has_flag(r->enabled, "QRESYNC"));
    CHECK(imk_session_is_enabled(imk_conn_session(q), "QRESYNC"));
    CHECK(imk_session_is_enabled(imk_conn_session(q), "CONDSTORE"));

    CHECK_INT(imk_conn_select(q, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
    uint64_t uv = imk_view_uidvalidity(imk_conn_view(q));
    uint64_t hm = imk_view_highest_modseq(imk_conn_view(q));
    uint64_t next = imk_view_uidnext(imk_conn_view(q));
    CHECK(uv == inbox_uidvalidity && hm > 0);
    CHECK_INT(imk_conn_unselect(q, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_session_state(imk_conn_session(q)), IMK_STATE_AUTHENTICATED);

    /* Meanwhile, on A: a message comes and goes, another is flagged. */
    uint32_t gone = it_append_text(A, "INBOX", "Subject: short-lived\r\n\r\nbye\r\n");
    CHECK(gone == next);
    static const char *const del[] = {"\\Deleted"}, *const changed[] = {"$Changed"};
    char set[16];
    snprintf(set, sizeof(set), "%u", gone);
    CHECK_INT(imk_conn_noop(A, &r), 0);
    CHECK_INT(imk_conn_store(A, 1, set, "+FLAGS.SILENT", del, 1, 0, &r), 0);
    CHECK_INT(imk_conn_expunge(A, set, &r), 0);
    CHECK(r != NULL && r->expunged_count == 1);
    CHECK_INT(imk_conn_store(A, 1, "1", "+FLAGS", changed, 1, 0, &r), 0);
    CHECK(it_ok(r));

    /* Q comes back with what it knew: VANISHED (EARLIER) and the FETCH of
     * the flag change arrive during the SELECT. */
    imk_select_params p;
    memset(&p, 0, sizeof(p));
    p.qresync_uidvalidity = (uint32_t)uv;
    p.qresync_modseq = hm;
    char known[32];
    snprintf(known, sizeof(known), "1:%u", gone);
    p.qresync_known_uids = known;
    it_events_clear(&ev);
    CHECK_INT(imk_conn_select(q, "INBOX", &p, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_trace_sent_contains("tunnel:Q", 0, "(QRESYNC (") ||
          it_trace_sent_contains("daemon:Q", 0, "(QRESYNC ("));
    it_note("QRESYNC: %u VANISHED (earlier=%d: %s), %u FLAGS events", ev.count[IMK_SE_VANISHED],
            ev.vanished_earlier, ev.vanished_uids, ev.count[IMK_SE_FLAGS]);
    CHECK(ev.count[IMK_SE_VANISHED] >= 1);
    CHECK(ev.vanished_earlier);
    CHECK(it_events_vanished_has(&ev, gone));
    CHECK(!it_events_vanished_has(&ev, 1));
    CHECK(ev.count[IMK_SE_FLAGS] >= 1);
    CHECK(it_has_flag(it_view_flags(q, 1), "$Changed"));
    CHECK_INT(imk_view_exists(imk_conn_view(q)), imk_view_exists(imk_conn_view(A)));

    /* With QRESYNC on, an expunge arrives as VANISHED: the result still
     * names the UID. */
    uint32_t tmp = it_append_text(q, "INBOX", "Subject: tmp\r\n\r\ntmp\r\n");
    CHECK(tmp != 0);
    snprintf(set, sizeof(set), "%u", tmp);
    CHECK_INT(imk_conn_noop(q, &r), 0);
    CHECK_INT(imk_conn_store(q, 1, set, "+FLAGS", del, 1, 0, &r), 0);
    CHECK(it_ok(r) && r->fetch_count == 1 && r->fetches[0].modseq > hm);
    it_events_clear(&ev);
    CHECK_INT(imk_conn_expunge(q, set, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_expunged_equal(r, (const uint32_t[]){tmp}, 1));
    CHECK_INT(imk_view_seq_of_uid(imk_conn_view(q), tmp), 0);
    CHECK_INT(ev.count[IMK_SE_PROTOCOL_ERROR], 0);
    CHECK_INT(imk_conn_logout(q), 0);
    imk_conn_free(q);
    CHECK_INT(imk_conn_noop(A, &r), 0);
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
    static const char *const seen[] = {"\\Seen"};
    m[1].flags = seen;
    m[1].n_flags = 1;
    size_t before = it_trace_sent(label_a);
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_append(A, "it/multi", m, 3, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->has_appenduid && it_seqset_count(r->dest_uids) == 3);
    CHECK_INT(it_trace_sent_count(label_a, before, "APPEND"), 1);
    CHECK_INT(it_status_messages(A, "it/multi"), 3);
    CHECK_INT(imk_conn_status(A, "it/multi", "UNSEEN", &r), 0);
    CHECK(it_ok(r) && r->status_count == 1 && r->statuses[0].unseen == 2);
}

/* ---- the event-loop interface ---- */

typedef struct async_ctx {
    int done[8];
    int status_ok[8];
    uint64_t messages[8];
    char mailbox[8][32];
    int fetch_done;
    int fetch_ok;
    char body[4096];
    size_t body_len;
    int selected;
} async_ctx;

static async_ctx actx;

static void on_status(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    size_t i = *(const size_t *)user;
    actx.done[i] = 1;
    actx.status_ok[i] = err == 0 && res != NULL && res->status == IMK_STATUS_OK;
    if (actx.status_ok[i] && res->status_count == 1) {
        actx.messages[i] = res->statuses[0].messages;
        snprintf(actx.mailbox[i], sizeof(actx.mailbox[i]), "%.*s",
                 (int)res->statuses[0].mailbox.len, res->statuses[0].mailbox.data);
    }
}

static void on_selected(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    (void)user;
    actx.selected = err == 0 && res != NULL && res->status == IMK_STATUS_OK ? 1 : -1;
}

static void on_item(imk_conn *c, const imk_fetch_item *item, void *user)
{
    (void)c;
    (void)user;
    if (item->type == IMK_FI_BODY_DATA && actx.body_len + item->len <= sizeof(actx.body)) {
        memcpy(actx.body + actx.body_len, item->data, item->len);
        actx.body_len += item->len;
    }
}

static void on_fetched(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    (void)user;
    actx.fetch_done = 1;
    actx.fetch_ok = err == 0 && res != NULL && res->status == IMK_STATUS_OK;
}

typedef struct connect_flag {
    int done, err;
} connect_flag;

static void on_connect(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    (void)res;
    connect_flag *f = user;
    f->done = 1;
    f->err = err;
}

static void t_event_loop(void)
{
    NEED_A();
    char label[48];
    snprintf(label, sizeof(label), "%s:async", S->name);
    imk_conn_options o = options_for(label);
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    connect_flag f = {0, 0};
    CHECK_INT(imk_conn_connect_async(c, on_connect, &f), 0);
    CHECK_INT(it_loop(c, &f.done, 15000), 0);
    CHECK(f.done && f.err == 0);
    if (!S->tunnel && f.done && f.err == 0) {
        imk_auth a = IMK_AUTH_INIT;
        a.user = IT_USER;
        a.password = IT_PASSWORD;
        connect_flag l = {0, 0};
        CHECK_INT(imk_conn_login_async(c, &a, on_connect, &l), 0);
        CHECK_INT(it_loop(c, &l.done, 15000), 0);
        CHECK(l.done && l.err == 0);
    }
    memset(&actx, 0, sizeof(actx));
    static const char *const boxes[] = {"INBOX", "Trash", "it/multi", "Entw\xc3\xbcrfe"};
    static const uint64_t counts[] = {4, 1, 3, 1};
    static size_t index[] = {0, 1, 2, 3};
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(imk_conn_status_async(c, boxes[i], "MESSAGES", on_status, &index[i]), 0);
    CHECK_INT(imk_conn_select_async(c, "INBOX", NULL, on_selected, NULL), 0);
    CHECK_INT(imk_conn_fetch_async(c, 1, "1", "(UID BODY.PEEK[])", on_item, on_fetched, NULL), 0);
    CHECK_INT(it_loop(c, &actx.fetch_done, 20000), 0);
    for (size_t i = 0; i < 4; i++) {
        CHECK(actx.done[i] && actx.status_ok[i]);
        CHECK_INT(actx.messages[i], counts[i]);
        CHECK_STR(actx.mailbox[i], boxes[i]);
    }
    CHECK_INT(actx.selected, 1);
    CHECK(actx.fetch_ok);
    CHECK_MEM(actx.body, actx.body_len, it_messages[0].text, strlen(it_messages[0].text));
    connect_flag out = {0, 0};
    CHECK_INT(imk_conn_logout_async(c, on_connect, &out), 0);
    CHECK_INT(it_loop(c, &out.done, 10000), 0);
    CHECK(out.done && out.err == 0);
    imk_conn_free(c);
}

static void t_logout(void)
{
    NEED_A();
    CHECK_INT(evA.count[IMK_SE_PROTOCOL_ERROR], 0);
    CHECK_INT(imk_conn_logout(A), 0);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_LOGOUT);
    CHECK(it_trace_received_contains(label_a, "* BYE"));
    if (S->tunnel) {
        int st = -1, exited = 0;
        for (int i = 0; i < 100 && !(exited = imk_conn_tunnel_status(A, &st)); i++)
            it_sleep_ms(20);
        CHECK_INT(exited, 1);
        CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    imk_conn_free(A);
    A = NULL;
}

static void run(server *srv)
{
    S = srv;
    A = NULL;
    it_note("---- over the %s", srv->tunnel ? "preauth tunnel" : "daemon (implicit TLS, login)");
    IT_RUN(t_connect);
    IT_RUN(t_namespace);
    IT_RUN(t_id);
    IT_RUN(t_create_list);
    IT_RUN(t_list_special_use);
    IT_RUN(t_append_small);
    IT_RUN(t_select);
    IT_RUN(t_fetch_attributes);
    IT_RUN(t_fetch_bodies);
    IT_RUN(t_append_large_and_binary);
    IT_RUN(t_search);
    IT_RUN(t_sort_thread);
    IT_RUN(t_store);
    IT_RUN(t_condstore);
    IT_RUN(t_copy_move_expunge);
    IT_RUN(t_idle);
    IT_RUN(t_status);
    IT_RUN(t_rename_subscribe_delete);
    IT_RUN(t_quota);
    IT_RUN(t_metadata);
    IT_RUN(t_notify);
    IT_RUN(t_qresync);
    IT_RUN(t_multiappend);
    IT_RUN(t_event_loop);
    IT_RUN(t_logout);
    if (A != NULL) {
        imk_conn_free(A);
        A = NULL;
    }
}

int main(void)
{
    it_init("test_it_dovecot", 110);
    tunnel_cmd = it_tunnel("dovecot-tunnel", "dovecot-tunnel", NULL, 0);
    it_dovecot_start(&d, 0);
    server tunnel = {"tunnel", 1}, daemon = {"daemon", 0};
    run(&tunnel);
    run(&daemon);
    it_dovecot_stop(&d);
    free(tunnel_cmd);
    return test_finish();
}
