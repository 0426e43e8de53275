/* SPDX-License-Identifier: MIT */
/*
 * lib_roundtrip.c - the round trips shared by the real-server tests (see
 * lib_roundtrip.h for what runs and what a server description holds).
 *
 * A run starts from an empty mailbox store (the test made a fresh one) and
 * goes through the steps in an order where every step knows what the
 * server holds:
 *
 *   connect, NAMESPACE, ID, CREATE + LIST (+ LIST-EXTENDED: SPECIAL-USE),
 *   APPEND (5 related messages with flags and a date), SELECT, FETCH of
 *   attributes (flags, envelope, bodystructure) and of bodies (in memory
 *   and through the iterator, byte for byte), APPEND of 10 MB (callback),
 *   1 MB (file descriptor) and binary content (literal8), SEARCH (ESEARCH,
 *   UTF-8 and hostile arguments), SORT, THREAD, STORE, CONDSTORE
 *   (UNCHANGEDSINCE / MODIFIED), COPY, MOVE, EXPUNGE, UID EXPUNGE, IDLE
 *   while a second connection appends, STATUS, LIST-STATUS, RENAME,
 *   SUBSCRIBE, DELETE, UNSELECT (or CLOSE), quota, UTF8=ACCEPT, metadata,
 *   NOTIFY, ENABLE QRESYNC and a SELECT (QRESYNC ...) that gets VANISHED
 *   (EARLIER), MULTIAPPEND, the event-loop interface, LOGOUT.
 *
 * INBOX holds UIDs 1..5 (it_messages) after the APPEND step; the FETCH,
 * SEARCH, SORT and THREAD steps rely on that, and on seq == uid there.
 * Mailbox names are written "it/sub" and made the server's with N below.
 *
 * Invariants: A is the main connection of the run, evA records its events;
 * a step that finds it dead (an earlier step failed fatally) connects it
 * again (NEED_A) so that later steps still test something. The CHECKs here
 * count in this file's test.h counters (rt_add_counts hands them over).
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_roundtrip.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENTW "Entw\xc3\xbcrfe"
#define GRUSS "Gr\xc3\xbc\xc3\x9f"

static const rt_server *S;
static imk_conn *A; /* the main connection of the run */
static it_events evA;
static char label_a[48];
static char label_other[64]; /* of the connection open_other made last */
static uint32_t inbox_uidvalidity;
static uint32_t copy_uidvalidity;
static uint64_t entw_messages; /* appended to Entwürfe so far */

/* The server's names of the mailboxes the steps use. */
#define BOX_LEN 64
static struct names {
    char it[BOX_LEN], sub[BOX_LEN], big[BOX_LEN], multi[BOX_LEN];
    char renamed[BOX_LEN], notified[BOX_LEN], move_to[BOX_LEN];
    char entw[BOX_LEN], entw_raw[BOX_LEN], gruss[BOX_LEN], gruss_raw[BOX_LEN];
    char sent[BOX_LEN], drafts[BOX_LEN], trash[BOX_LEN];
    /* LIST patterns: the children of it (with % and with *), Gr* */
    char it_children[BOX_LEN], it_all[BOX_LEN], gruss_all[BOX_LEN];
} N;

/* prefix + rel, with '/' as the server's delimiter. */
static void name_of(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s%s", S->prefix, rel);
    size_t skip = strlen(S->prefix);
    for (char *p = out + (skip < strlen(out) ? skip : strlen(out)); *p != '\0'; p++) {
        if (*p == '/')
            *p = S->delimiter;
    }
}

static void names_init(void)
{
    const struct {
        char *out;
        const char *rel;
    } map[] = {
        {N.it, "it"},
        {N.sub, "it/sub"},
        {N.big, "it/big"},
        {N.multi, "it/multi"},
        {N.renamed, "it/renamed"},
        {N.notified, "it/notified"},
        {N.entw, ENTW},
        {N.entw_raw, "Entw&APw-rfe"},
        {N.gruss, GRUSS "e"},
        {N.gruss_raw, "Gr&APwA3w-e"},
        {N.sent, "Sent"},
        {N.drafts, "Drafts"},
        {N.trash, "Trash"},
        {N.move_to, S->move_to},
        {N.it_children, "it/%"},
        {N.it_all, "it/*"},
        {N.gruss_all, "Gr*"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        name_of(map[i].out, BOX_LEN, map[i].rel);
}

static void skipped(const char *what, const char *why)
{
    it_note("skipped: %s (%s)", what, why);
}

/* The main connection lacks `cap`: say what is skipped. */
static int lacks(const char *cap, const char *what)
{
    if (imk_conn_has_capability(A, cap))
        return 0;
    char why[64];
    snprintf(why, sizeof(why), "no %s", cap);
    skipped(what, why);
    return 1;
}

/* The login of every connection: S->user with S->mechanisms. */
static imk_auth auth_of_server(void)
{
    imk_auth a = IMK_AUTH_INIT;
    a.user = S->user;
    a.password = S->password;
    a.mechanisms = S->mechanisms;
    return a;
}

static int login(imk_conn *c)
{
    imk_auth a = auth_of_server();
    int rc = imk_conn_login(c, &a);
    if (rc < 0)
        it_note("login: %s: %s", imk_error_name(rc), imk_conn_error(c));
    return rc;
}

static imk_conn *open_conn(const char *role)
{
    char label[64];
    snprintf(label, sizeof(label), "%s:%s", S->name, role);
    imk_conn_options o = S->options(label);
    imk_conn *c = it_connect(&o);
    if (c != NULL && S->user != NULL && login(c) < 0) {
        imk_conn_free(c);
        return NULL;
    }
    return c;
}

/* Another connection of the run (role "U", "N", ...), its trace label in
 * label_other, its events recorded in ev when not NULL; NULL (checked) when
 * it could not connect. One at a time. */
static imk_conn *open_other(const char *role, it_events *ev)
{
    snprintf(label_other, sizeof(label_other), "%s:%s", S->name, role);
    imk_conn *c = open_conn(role);
    CHECK(c != NULL);
    if (c != NULL && ev != NULL) {
        memset(ev, 0, sizeof(*ev));
        it_events_attach(c, ev);
    }
    return c;
}

/* Every step needs the main connection. When an earlier step left it dead
 * (a fatal error: the step has failed already), it is connected again and
 * INBOX selected, so that the later steps still test something. */
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
    if (S->user != NULL && login(A) < 0)
        return 0;
    const imk_result *r = NULL;
    return imk_conn_select(A, "INBOX", NULL, &r) == 0 && it_ok(r);
}

#define NEED_A()                                                                                   \
    do {                                                                                           \
        if (!revive_a()) {                                                                         \
            CHECK(A != NULL && imk_conn_fd(A) >= 0);                                               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* NEED_A, and the step is skipped (with a line saying so) when the server
 * lacks the capability `cap` that `what` needs. */
#define NEED_A_WITH(cap, what)                                                                     \
    do {                                                                                           \
        NEED_A();                                                                                  \
        if (lacks(cap, what))                                                                      \
            return;                                                                                \
    } while (0)

/* ---------------------------------------------------------------- */

static void t_connect(void)
{
    A = open_conn("A");
    CHECK(A != NULL);
    if (A == NULL)
        return;
    it_events_attach(A, &evA);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    const char *t = imk_conn_transport(A);
    if (S->tls)
        CHECK(strncmp(t, "TLSv1.", 6) == 0);
    else
        CHECK_STR(t, "tunnel");
    /* The greeting carried no capabilities: the client asked. */
    if (S->asks_capability)
        CHECK(it_trace_sent_contains(label_a, 0, "CAPABILITY"));
    if (S->user != NULL) /* redacted in the trace */
        CHECK(!it_trace_sent_contains(label_a, 0, S->password));
    if (S->mechanisms != NULL && strcmp(S->mechanisms, "LOGIN-COMMAND") == 0) {
        char login_cmd[96];
        snprintf(login_cmd, sizeof(login_cmd), "LOGIN %s ", S->user);
        CHECK(it_trace_sent_contains(label_a, 0, login_cmd));
        CHECK(!it_trace_sent_contains(label_a, 0, "AUTHENTICATE"));
    }
    /* What the configuration turns on, as the client read it. */
    for (const char *const *c = S->caps; *c != NULL; c++) {
        if (!imk_conn_has_capability(A, *c))
            it_note("capability %s missing", *c);
        CHECK(imk_conn_has_capability(A, *c));
    }
    char list[512] = "";
    for (const char *const *c = S->lacks; *c != NULL; c++) {
        if (imk_conn_has_capability(A, *c))
            it_note("capability %s offered", *c);
        CHECK(!imk_conn_has_capability(A, *c));
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, " %s", *c);
    }
    it_note("%s does not offer:%s", S->name, list);
}

/* A namespace list as rt_server.ns_other_users / ns_shared describe it. */
static int ns_list_is(imk_namespace_list l, int want)
{
    if (want == RT_NS_NIL)
        return l.nil;
    if (want == RT_NS_NONE)
        return l.nil || l.count == 0;
    return l.count == (size_t)want;
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
        CHECK(it_str_eq(ns->personal.items[0].prefix, S->prefix)); /* "" is not NIL */
        CHECK_INT(ns->personal.items[0].delimiter, S->delimiter);
    }
    CHECK(ns_list_is(ns->other_users, S->ns_other_users));
    CHECK(ns_list_is(ns->shared, S->ns_shared));
    if (S->ns_other_users_prefix != NULL)
        CHECK(ns->other_users.count >= 1 &&
              it_str_eq(ns->other_users.items[0].prefix, S->ns_other_users_prefix));
    if (S->ns_shared_prefix != NULL)
        CHECK(ns->shared.count >= 1 && it_str_eq(ns->shared.items[0].prefix, S->ns_shared_prefix));
}

static void t_id(void)
{
    NEED_A_WITH("ID", "ID");
    static const char *const kv[] = {"name", "imapkit-it", "version", "0.1"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_id(A, kv, 2, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->id != NULL && !r->id->nil);
    int found = 0;
    for (size_t i = 0; r != NULL && r->id != NULL && i < r->id->fields.count; i++) {
        if (it_str_ieq(r->id->fields.items[i].name, "name"))
            found = it_str_eq(r->id->fields.items[i].value, S->id_name);
    }
    CHECK(found);
    CHECK(it_trace_sent_contains(label_a, 0, "\"imapkit-it\""));
}

static void t_create_list(void)
{
    NEED_A();
    const char *const boxes[] = {N.it, N.sub, N.big, N.entw, N.multi};
    const size_t n_boxes = sizeof(boxes) / sizeof(boxes[0]);
    const imk_result *r = NULL;
    for (size_t i = 0; i < n_boxes; i++) {
        CHECK_INT(imk_conn_create(A, boxes[i], &r), 0);
        if (!it_ok(r))
            it_note("CREATE %s: %s", boxes[i], it_describe(r));
        CHECK(it_ok(r));
    }
    /* The name went in modified UTF-7. */
    CHECK(it_trace_sent_contains(label_a, 0, N.entw_raw));
    /* A refusal is a result, not an error. */
    CHECK_INT(imk_conn_create(A, N.it, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    if (S->response_codes)
        CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_ALREADYEXISTS);

    CHECK_INT(imk_conn_list(A, "", "*", NULL, &r), 0);
    CHECK(it_ok(r));
    const char *expect[16];
    size_t n = 0;
    expect[n++] = "INBOX";
    if (S->special_use_boxes) {
        expect[n++] = N.sent;
        expect[n++] = N.drafts;
        expect[n++] = N.trash;
    }
    for (size_t i = 0; i < n_boxes; i++)
        expect[n++] = boxes[i];
    for (size_t i = 0; i < n; i++) {
        const imk_list_entry *e = it_list_find(r, expect[i]);
        if (e == NULL)
            it_note("LIST lacks %s", expect[i]);
        CHECK(e != NULL);
        if (e != NULL)
            CHECK_INT(e->list.delimiter, S->delimiter);
    }
    CHECK_INT(r != NULL ? r->list_count : 0, n);
    const imk_list_entry *e = it_list_find(r, N.entw);
    CHECK(e != NULL && it_str_eq(e->list.mailbox_raw, N.entw_raw));
    e = it_list_find(r, N.it);
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\HasChildren"));
    e = it_list_find(r, N.sub);
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\HasNoChildren"));

    CHECK_INT(imk_conn_list(A, "", N.it_children, NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(r != NULL ? r->list_count : 0, 3);
    CHECK(it_list_find(r, N.sub) != NULL && it_list_find(r, "INBOX") == NULL);

    if (!imk_conn_has_capability(A, "LIST-EXTENDED")) {
        /* The LIST-EXTENDED forms are refused without a word to the server. */
        size_t before = it_trace_sent(label_a);
        imk_list_params p = {IMK_LIST_RETURN_SPECIAL_USE, NULL};
        CHECK_INT(imk_conn_list(A, "", "*", &p, &r), IMK_ENOTSUP);
        imk_list_params ps = {0, "MESSAGES"};
        CHECK_INT(imk_conn_list(A, "", "*", &ps, &r), IMK_ENOTSUP);
        CHECK_INT(it_trace_sent(label_a), before);
        skipped("LIST RETURN (SPECIAL-USE), LIST-STATUS", "no LIST-EXTENDED: refused, checked");
    }
}

static void t_list_special_use(void)
{
    NEED_A_WITH("SPECIAL-USE", "LIST RETURN (SPECIAL-USE)");
    if (!S->special_use_boxes) {
        skipped("LIST RETURN (SPECIAL-USE)", "no special-use mailboxes configured");
        return;
    }
    imk_list_params p = {IMK_LIST_RETURN_SPECIAL_USE, NULL};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    const imk_list_entry *e = it_list_find(r, N.sent);
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Sent"));
    e = it_list_find(r, N.drafts);
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Drafts"));
    e = it_list_find(r, N.trash);
    CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Trash"));
    e = it_list_find(r, "INBOX");
    CHECK(e != NULL && !it_has_flag(e->list.attributes, "\\Sent"));
    CHECK(it_trace_sent_contains(label_a, 0, "RETURN (SPECIAL-USE)"));

    /* Selection by SPECIAL-USE: only the three special mailboxes. */
    p.flags = IMK_LIST_SPECIAL_USE | IMK_LIST_RETURN_SPECIAL_USE;
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(r != NULL ? r->list_count : 0, 3);
    CHECK(it_list_find(r, "INBOX") == NULL && it_list_find(r, N.trash) != NULL);
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
    if (imk_conn_has_capability(A, "LITERAL+")) {
        /* No synchronizing literal, no "+" awaited. */
        CHECK(it_trace_sent_contains(label_a, 0, "+}\r\n"));
    } else {
        /* Every literal waited for the server's "+". */
        CHECK(!it_trace_sent_contains(label_a, 0, "+}"));
        if (S->literal_go_ahead != NULL)
            CHECK(it_trace_received_contains(label_a, S->literal_go_ahead));
    }
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
    CHECK_INT(imk_view_uidnext(v), S->select_without_uidnext ? 0 : 6);
    CHECK(!imk_view_read_only(v));
    CHECK(it_has_flag(imk_view_flags(v), "\\Seen"));
    CHECK(it_has_flag(imk_view_permanent_flags(v), "\\*"));
    if (S->select_reports_modseq)
        CHECK(imk_view_highest_modseq(v) > 0);
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
            /* The moment appended; the server may give it in another zone. */
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
    /* One by one, with the shared helper; and a section of two messages. */
    for (uint32_t uid = 1; uid <= 5; uid++)
        CHECK(it_fetch_equals(A, uid, "BODY.PEEK[]", it_messages[uid - 1].text,
                              strlen(it_messages[uid - 1].text)));
    for (uint32_t uid = 1; uid <= 2; uid++) {
        const char *text = strstr(it_messages[uid - 1].text, "\r\n\r\n") + 4;
        CHECK(it_fetch_equals(A, uid, "BODY.PEEK[TEXT]", text, strlen(text)));
    }
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

/* Binary content: NUL and every other byte, as literal8 (RFC 3516); the
 * UID it got, or 0 when the server has no BINARY (then the APPEND must be
 * refused before anything is sent). */
static uint32_t append_binary(const char *bin, size_t bin_len)
{
    const imk_result *r = NULL;
    size_t sent_before = it_trace_sent(label_a);
    imk_append_msg b = IMK_APPEND_MSG_INIT;
    b.data = bin;
    b.size = bin_len;
    b.binary = 1;
    if (!imk_conn_has_capability(A, "BINARY")) {
        CHECK_INT(imk_conn_append(A, N.big, &b, 1, &r), IMK_ENOTSUP);
        CHECK_INT(it_trace_sent(label_a), sent_before);
        skipped("binary APPEND and BINARY[] FETCH", "no BINARY: the APPEND is refused, checked");
        return 0;
    }
    CHECK_INT(imk_conn_append(A, N.big, &b, 1, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("binary APPEND: %s", it_describe(r));
    uint32_t uid_bin = it_first_dest_uid(r);
    CHECK_INT(uid_bin, 3);
    CHECK(it_trace_sent_contains(label_a, sent_before, "~{"));
    return uid_bin;
}

/* The binary message at uid_bin of the selected mailbox: the part
 * decoded is the bytes appended (BINARY[1], RFC 3516 section 4.2); and
 * BINARY[] is the message as appended, or, where the server stored it
 * base64-encoded (rt_server.binary_stored_base64), the stored header says
 * so. */
static void check_binary(uint32_t uid_bin, const char *bin, size_t bin_len)
{
    const char *body = strstr(bin, "\r\n\r\n") + 4;
    size_t header_len = (size_t)(body - bin);
    CHECK(it_fetch_equals(A, uid_bin, "BINARY.PEEK[1]", body, bin_len - header_len));
    if (!S->binary_stored_base64) {
        CHECK(it_fetch_equals(A, uid_bin, "BINARY.PEEK[]", bin, bin_len));
        return;
    }
    static const char cte[] = "Content-Transfer-Encoding: ";
    char header[1024];
    CHECK(header_len < sizeof(header));
    if (header_len >= sizeof(header))
        return;
    memcpy(header, bin, header_len);
    header[header_len] = '\0';
    char *at = strstr(header, "Content-Transfer-Encoding: binary");
    CHECK(at != NULL);
    if (at != NULL)
        memcpy(at + strlen(cte), "base64", 6); /* as long as "binary" */
    CHECK(it_fetch_equals(A, uid_bin, "BODY.PEEK[HEADER]", header, header_len));
}

static void t_append_large_and_binary(void)
{
    NEED_A();
    /* 11 MB over a local pipe or socket take well under a second; a stalled
     * transfer must fail this step, not the whole test's watchdog. */
    imk_conn_set_call_timeout(A, 20000);
    const size_t big_len = RT_BIG_LEN, mid_len = RT_MID_LEN;
    char *big = it_big_message(big_len, RT_BIG_SEED);
    char *mid = it_big_message(mid_len, RT_MID_SEED);
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
    int rc = imk_conn_append(A, N.big, &m, 1, &r);
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
        CHECK_INT(imk_conn_append(A, N.big, &f, 1, &r), 0);
        CHECK(it_ok(r));
        uid_mid = it_first_dest_uid(r);
        CHECK_INT(uid_mid, 2);
        close(fd);
    }

    uint32_t uid_bin = append_binary(bin, bin_len);

    CHECK_INT(imk_conn_select(A, N.big, NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), uid_bin != 0 ? 3 : 2);
    CHECK(it_fetch_equals(A, uid_big, "BODY.PEEK[]", big, big_len));
    CHECK(it_fetch_equals(A, uid_mid, "BODY.PEEK[]", mid, mid_len));
    if (uid_bin != 0)
        check_binary(uid_bin, bin, bin_len);

    /* The in-memory helper refuses what is above its limit... */
    imk_message *msgs = NULL;
    size_t n = 0;
    char set[16];
    snprintf(set, sizeof(set), "%u", uid_big);
    CHECK_INT(imk_conn_fetch_messages(A, 1, set, 1024 * 1024, &msgs, &n), IMK_ELIMIT);
    /* ...and the connection goes on, with a limit given and the default. */
    snprintf(set, sizeof(set), "%u", uid_mid);
    msgs = NULL;
    n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, set, 2 * 1024 * 1024, &msgs, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK(msgs[0].body_len == mid_len && memcmp(msgs[0].body, mid, mid_len) == 0);
    imk_messages_free(A, msgs, n);
    msgs = NULL;
    n = 0;
    CHECK_INT(imk_conn_fetch_messages(A, 1, set, 0, &msgs, &n), 0);
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
    if (imk_conn_has_capability(A, "ESEARCH")) {
        CHECK(r != NULL && r->esearch != NULL);
    } else { /* plain SEARCH */
        CHECK(r != NULL && r->esearch == NULL);
        CHECK(!it_trace_sent_contains(label_a, 0, "RETURN"));
    }
    static const uint32_t k[] = {1, 2};
    CHECK(it_ids_equal(r, k, 2));

    const char *alice[] = {"alice@example.org"};
    CHECK_INT(imk_conn_search(A, 1, "FROM %s", alice, 1, &r), 0);
    static const uint32_t a[] = {1, 4};
    CHECK(it_ok(r) && it_ids_equal(r, a, 2));

    size_t before = it_trace_sent(label_a);
    const char *gruss[] = {GRUSS};
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

    /* Hostile arguments are data, never protocol (a literal; without
     * LITERAL+ a synchronizing one). */
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
    /* The same base subject: then by order (or reversed, see rt_server). */
    static const uint32_t by_subject[] = {1, 2}, by_subject_reversed[] = {2, 1};
    CHECK(it_ok(r) && it_ids_equal(r, S->sort_ties_reversed ? by_subject_reversed : by_subject, 2));

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
    if (!it_ok(r))
        it_note("STORE: %s", it_describe(r));
    CHECK(r != NULL && r->fetch_count == 1);
    if (r != NULL && r->fetch_count == 1) {
        CHECK_INT(r->fetches[0].uid, 3);
        CHECK(it_has_flag(r->fetches[0].flags, "\\Flagged"));
        CHECK(it_has_flag(r->fetches[0].flags, "$Important"));
    }
    CHECK(it_has_flag(it_view_flags(A, 3), "\\Flagged"));
    CHECK(it_has_flag(it_view_flags(A, 3), "$Important"));
    CHECK_INT(imk_conn_store(A, 1, "3", "-FLAGS", two, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->fetch_count == 1 && !it_has_flag(r->fetches[0].flags, "\\Flagged") &&
          it_has_flag(r->fetches[0].flags, "$Important"));
    CHECK(!it_has_flag(it_view_flags(A, 3), "\\Flagged"));
    CHECK(it_has_flag(it_view_flags(A, 3), "$Important"));
    /* By sequence number. */
    static const char *const seen[] = {"\\Seen"};
    CHECK_INT(imk_conn_store(A, 0, "4:5", "+FLAGS", seen, 1, 0, &r), 0);
    CHECK(it_ok(r) && r->fetch_count == 2);
    CHECK_INT(imk_conn_store(A, 0, "4:5", "-FLAGS.SILENT", seen, 1, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_search(A, 1, "UNSEEN", NULL, 0, &r), 0);
    static const uint32_t u[] = {3, 4, 5};
    CHECK(it_ok(r) && it_ids_equal(r, u, 3));
    if (!imk_conn_has_capability(A, "CONDSTORE")) {
        /* UNCHANGEDSINCE needs CONDSTORE: refused before sending. */
        size_t before = it_trace_sent(label_a);
        int rc = imk_conn_store(A, 1, "3", "+FLAGS", two, 1, 5, &r);
        CHECK(rc == IMK_ENOTSUP || rc == IMK_ESTATE);
        CHECK_INT(it_trace_sent(label_a), before);
    }
}

static void t_condstore(void)
{
    NEED_A_WITH("CONDSTORE", "CONDSTORE: MODSEQ, UNCHANGEDSINCE honoured, MODIFIED");
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
    CHECK_INT(imk_conn_copy(A, 1, "1:2", N.sub, &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->has_copyuid);
    if (r != NULL && r->has_copyuid) {
        CHECK(it_seqset_has(r->source_uids, 1) && it_seqset_has(r->source_uids, 2));
        CHECK_INT(it_seqset_count(r->dest_uids), 2);
        CHECK(it_seqset_has(r->dest_uids, 1) && it_seqset_has(r->dest_uids, 2));
        copy_uidvalidity = (uint32_t)r->uidvalidity;
        CHECK(copy_uidvalidity != 0);
    }
    CHECK_INT(it_status_messages(A, N.sub), 2);
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 5);

    size_t before = it_trace_sent(label_a);
    CHECK_INT(imk_conn_move(A, 1, "5", N.move_to, &r), 0);
    CHECK(it_ok(r));
    if (imk_conn_has_capability(A, "MOVE")) {
        CHECK(it_trace_sent_contains(label_a, before, "UID MOVE 5"));
    } else { /* COPY, STORE \Deleted, UID EXPUNGE of that one */
        CHECK(!it_trace_sent_contains(label_a, before, "MOVE"));
        CHECK(it_trace_sent_contains(label_a, before, "UID COPY 5"));
        CHECK(it_trace_sent_contains(label_a, before, "UID EXPUNGE 5"));
    }
    CHECK(r != NULL && r->has_copyuid && it_seqset_has(r->source_uids, 5) &&
          it_seqset_count(r->dest_uids) == 1);
    CHECK(it_expunged_equal(r, (const uint32_t[]){5}, 1));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 4);
    CHECK_INT(imk_view_seq_of_uid(imk_conn_view(A), 5), 0);
    CHECK_INT(it_status_messages(A, N.move_to), 1);

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
    int rc = imk_conn_idle(A, S->idle_wait_ms, 1);
    int64_t took = it_now_ms() - t0;
    CHECK_INT(rc, 0);
    CHECK_INT(it_child_wait(pid), 0);
    CHECK(evA.count[IMK_SE_EXISTS] >= 1);
    /* stop_on_change ended the IDLE, not its timeout. */
    CHECK(took < S->idle_wait_ms - 1000);
    it_note("IDLE ended after %lld ms", (long long)took);
    CHECK(it_trace_sent_contains(label_a, 0, "IDLE\r\n"));
    CHECK(it_trace_sent_contains(label_a, 0, "DONE\r\n"));
    if (S->idle_go_ahead != NULL) /* accepted as the continuation */
        CHECK(it_trace_received_contains(label_a, S->idle_go_ahead));
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
    CHECK_INT(imk_conn_status(A, N.sub, "MESSAGES UIDNEXT UIDVALIDITY UNSEEN", &r), 0);
    CHECK(it_ok(r));
    CHECK(r != NULL && r->status_count == 1);
    if (r == NULL || r->status_count != 1)
        return;
    const imk_status_data *s = &r->statuses[0];
    unsigned need =
        IMK_STATUS_MESSAGES | IMK_STATUS_UIDNEXT | IMK_STATUS_UIDVALIDITY | IMK_STATUS_UNSEEN;
    CHECK((s->present & need) == need);
    CHECK(it_str_eq(s->mailbox, N.sub));
    CHECK_INT(s->messages, 2);
    CHECK_INT(s->uidnext, 3);
    CHECK_INT(s->uidvalidity, copy_uidvalidity);
    CHECK_INT(s->unseen, 0);
    CHECK_INT(imk_conn_status(A, N.entw, "MESSAGES", &r), 0);
    CHECK(it_ok(r) && r->status_count == 1 && it_str_eq(r->statuses[0].mailbox, N.entw));

    if (lacks("LIST-STATUS", "LIST-STATUS"))
        return;
    imk_list_params p = {0, "MESSAGES UNSEEN"};
    CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
    CHECK(it_ok(r));
    const imk_list_entry *e = it_list_find(r, N.move_to);
    CHECK(e != NULL && e->status != NULL && e->status->messages == 1);
    e = it_list_find(r, N.sub);
    CHECK(e != NULL && e->status != NULL && e->status->messages == 2 && e->status->unseen == 0);
    e = it_list_find(r, N.entw);
    CHECK(e != NULL && e->status != NULL && e->status->messages == 0);
    e = it_list_find(r, "INBOX");
    CHECK(e != NULL && e->status != NULL && e->status->messages == 4);
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

/* Without UNSELECT the library closes with CLOSE, which expunges nothing
 * in a read-only mailbox (EXAMINE); read-write it would expunge \Deleted
 * messages, so there the library refuses and sends nothing (client.h). */
static void unselect_by_close(void)
{
    const imk_result *r = NULL;
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
    before = it_trace_sent(label_a);
    r = NULL;
    CHECK_INT(imk_conn_unselect(A, &r), IMK_ENOTSUP);
    CHECK(!it_trace_sent_contains(label_a, before, "CLOSE"));
    CHECK(strstr(imk_conn_error(A), "CLOSE") != NULL);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_SELECTED);
}

/* With UNSELECT (RFC 3691) the library sends it, even on a read-write
 * mailbox (nothing is expunged); a SELECT of a missing mailbox then leaves
 * the state alone. INBOX is selected again afterwards. */
static void unselect_command(void)
{
    const imk_result *r = NULL;
    size_t before = it_trace_sent(label_a);
    CHECK_INT(imk_conn_unselect(A, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_trace_sent_contains(label_a, before, "UNSELECT"));
    CHECK(!it_trace_sent_contains(label_a, before, "CLOSE"));
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_conn_select(A, N.renamed, NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_view_exists(imk_conn_view(A)), 4);
}

static void t_rename_subscribe_delete(void)
{
    NEED_A();
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_rename(A, N.sub, N.renamed, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_list(A, "", N.it_all, NULL, &r), 0);
    CHECK(it_list_find(r, N.renamed) != NULL && it_list_find(r, N.sub) == NULL);
    CHECK_INT(it_status_messages(A, N.renamed), 2);

    CHECK_INT(imk_conn_subscribe(A, N.entw, &r), 0);
    CHECK(it_ok(r));
    int extended = imk_conn_has_capability(A, "LIST-EXTENDED");
    imk_list_params p = {IMK_LIST_SUBSCRIBED, NULL};
    if (extended) {
        CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
        CHECK(it_ok(r));
        const imk_list_entry *e = it_list_find(r, N.entw);
        CHECK(e != NULL && it_has_flag(e->list.attributes, "\\Subscribed"));
        if (S->special_use_boxes) /* auto = subscribe, unless configured otherwise */
            CHECK((it_list_find(r, N.sent) != NULL) == !S->special_use_unsubscribed);
        CHECK(it_list_find(r, N.renamed) == NULL);
    } else {
        /* LIST (SUBSCRIBED) needs LIST-EXTENDED: refused. */
        CHECK_INT(imk_conn_list(A, "", "*", &p, &r), IMK_ENOTSUP);
    }
    /* LSUB, through the generic call. */
    CHECK_INT(imk_conn_command(A, IMK_CMD_LSUB, build_lsub, NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, N.entw) != NULL);
    CHECK_INT(imk_conn_unsubscribe(A, N.entw, &r), 0);
    CHECK(it_ok(r));
    if (extended) {
        CHECK_INT(imk_conn_list(A, "", "*", &p, &r), 0);
        CHECK(it_ok(r) && it_list_find(r, N.entw) == NULL);
    }
    CHECK_INT(imk_conn_command(A, IMK_CMD_LSUB, build_lsub, NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, N.entw) == NULL);

    CHECK_INT(imk_conn_delete(A, N.renamed, &r), 0);
    CHECK(it_ok(r));
    CHECK_INT(imk_conn_delete(A, N.renamed, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    if (S->response_codes)
        CHECK(r != NULL && r->code != NULL && r->code->kind == IMK_CODE_NONEXISTENT);
    CHECK_INT(imk_conn_list(A, "", "*", NULL, &r), 0);
    CHECK(it_ok(r) && it_list_find(r, N.renamed) == NULL && it_list_find(r, N.it) != NULL);
    /* SELECT of a missing mailbox: a result, and the state falls back. */
    CHECK_INT(imk_conn_select(A, N.renamed, NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_NO);
    CHECK_INT(imk_session_state(imk_conn_session(A)), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_conn_select(A, "INBOX", NULL, &r), 0);
    CHECK(it_ok(r));
    if (imk_conn_has_capability(A, "UNSELECT"))
        unselect_command();
    else
        unselect_by_close();
    CHECK_INT(it_status_messages(A, "INBOX"), 4);
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
              it_str_eq(r->quotaroot->roots.items[0], S->quota_root));
    }
    CHECK(r != NULL && r->quota_count == 1);
    if (r != NULL && r->quota_count == 1) {
        const imk_quota *q = &r->quotas[0];
        CHECK(it_str_eq(q->root, S->quota_root));
        CHECK(q->count == 1 && it_str_ieq(q->resources[0].name, "STORAGE"));
        if (q->count == 1) {
            CHECK_INT(q->resources[0].limit, 1024 * 1024); /* 1G in KiB */
            /* the 11 MiB in it/big (Dovecot stores them with LF line ends) */
            long min_kib = S->quota_min_usage_kib != 0 ? S->quota_min_usage_kib : 10 * 1024;
            CHECK(q->resources[0].usage >= (uint64_t)min_kib);
        }
    }
    CHECK_INT(imk_conn_getquota(A, S->quota_root, &r), 0);
    if (S->getquota_refused) {
        /* A NO (a result, not an error), and the session goes on. */
        CHECK(r != NULL && r->status == IMK_STATUS_NO);
        if (r != NULL)
            it_note("GETQUOTA: %s", it_describe(r));
        CHECK_INT(imk_conn_noop(A, &r), 0);
        CHECK(it_ok(r));
        return;
    }
    CHECK(it_ok(r) && r->quota_count == 1 && it_str_eq(r->quotas[0].root, S->quota_root));
}

/* ENABLE UTF8=ACCEPT (RFC 6855) on a second connection: mailbox names go
 * as UTF-8, search strings without CHARSET. */
static void t_utf8_accept(void)
{
    NEED_A_WITH("UTF8=ACCEPT", "UTF8=ACCEPT");
    imk_conn *u = open_other("U", NULL);
    if (u == NULL)
        return;
    static const char *const ext[] = {"UTF8=ACCEPT"};
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_enable(u, ext, 1, &r), 0);
    CHECK(it_ok(r) && it_has_flag(r->enabled, "UTF8=ACCEPT"));
    CHECK(imk_session_is_enabled(imk_conn_session(u), "UTF8=ACCEPT"));
    CHECK_INT(imk_conn_create(u, N.gruss, &r), 0);
    CHECK(it_ok(r));
    /* The name went as UTF-8, not modified UTF-7. */
    CHECK(it_trace_sent_contains(label_other, 0, N.gruss));
    CHECK_INT(imk_conn_list(u, "", "*", NULL, &r), 0);
    const imk_list_entry *e = it_list_find(r, N.gruss);
    CHECK(e != NULL);
    /* A search string in UTF-8 mode: no CHARSET (RFC 6855 section 3). */
    CHECK_INT(imk_conn_select(u, "INBOX", NULL, &r), 0);
    size_t before = it_trace_sent(label_other);
    const char *gruss[] = {GRUSS};
    CHECK_INT(imk_conn_search(u, 1, "SUBJECT %s", gruss, 1, &r), 0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("SEARCH in UTF8=ACCEPT mode: %s", it_describe(r));
    static const uint32_t g[] = {3};
    CHECK(it_ids_equal(r, g, 1));
    CHECK(!it_trace_sent_contains(label_other, before, "CHARSET"));
    imk_conn_logout(u);
    imk_conn_free(u);
    /* The other session sees the name in modified UTF-7, decoded. */
    CHECK_INT(imk_conn_list(A, "", N.gruss_all, NULL, &r), 0);
    e = it_list_find(r, N.gruss);
    CHECK(e != NULL && it_str_eq(e->list.mailbox_raw, N.gruss_raw));
}

static void t_metadata(void)
{
    NEED_A_WITH("METADATA", "GETMETADATA/SETMETADATA");
    static const char *const entries[] = {"/private/comment", "/shared/comment"};
    static const char *const values[] = {GRUSS "e\r\nsecond line with \"quotes\"", "shared note"};
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

/* Poll with NOOP on n until `needle` shows in *text (3 s at most). */
static void noop_until(imk_conn *n, const char *text, const char *needle)
{
    const imk_result *r = NULL;
    for (int i = 0; i < 30 && strstr(text, needle) == NULL; i++) {
        CHECK_INT(imk_conn_noop(n, &r), 0);
        if (strstr(text, needle) == NULL)
            it_sleep_ms(100);
    }
}

static void t_notify(void)
{
    NEED_A_WITH("NOTIFY", "NOTIFY");
    it_events ev;
    imk_conn *n = open_other("N", &ev);
    if (n == NULL)
        return;
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_notify(n, "SET STATUS (PERSONAL (MessageNew MessageExpunge MailboxName))",
                              NULL, 0, &r),
              0);
    CHECK(it_ok(r));
    if (!it_ok(r))
        it_note("NOTIFY: %s", it_describe(r));
    it_events_clear(&ev);
    /* A change made by another connection... */
    uint32_t uid = it_append_text(A, N.entw, "Subject: draft\r\n\r\ndraft\r\n");
    CHECK(uid != 0);
    if (uid != 0)
        entw_messages++;
    /* ...arrives as unsolicited STATUS (after a NOOP at the latest). */
    char want[80];
    snprintf(want, sizeof(want), "%s=1", N.entw);
    noop_until(n, ev.unsolicited_status, want);
    it_note("NOTIFY delivered: %s/ %s", ev.unsolicited_names, ev.unsolicited_status);
    CHECK(strstr(ev.unsolicited_status, want) != NULL);
    CHECK(imk_conn_create(A, N.notified, &r) == 0 && it_ok(r));
    noop_until(n, ev.unsolicited_names, "LIST");
    CHECK(strstr(ev.unsolicited_names, "LIST") != NULL);
    CHECK_INT(imk_conn_notify(n, NULL, NULL, 0, &r), 0);
    CHECK(it_ok(r));
    CHECK(it_trace_sent_contains(label_other, 0, "NOTIFY NONE"));
    CHECK_INT(ev.count[IMK_SE_PROTOCOL_ERROR], 0);
    imk_conn_logout(n);
    imk_conn_free(n);
}

static void t_qresync(void)
{
    NEED_A_WITH("QRESYNC", "QRESYNC, VANISHED");
    it_events ev;
    imk_conn *q = open_other("Q", &ev);
    if (q == NULL)
        return;
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
    CHECK(it_trace_sent_contains(label_other, 0, "(QRESYNC ("));
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
    CHECK_INT(imk_conn_append(A, N.multi, m, 3, &r), 0);
    CHECK(it_ok(r));
    if (imk_conn_has_capability(A, "MULTIAPPEND")) {
        CHECK(r != NULL && r->has_appenduid && it_seqset_count(r->dest_uids) == 3);
        CHECK_INT(it_trace_sent_count(label_a, before, "APPEND"), 1);
    } else { /* one APPEND each */
        CHECK_INT(it_trace_sent_count(label_a, before, "APPEND"), 3);
    }
    CHECK_INT(it_status_messages(A, N.multi), 3);
    CHECK_INT(imk_conn_status(A, N.multi, "UNSEEN", &r), 0);
    CHECK(it_ok(r) && r->status_count == 1 && r->statuses[0].unseen == 2);
}

/* ---- the event-loop interface ---- */

typedef struct async_ctx {
    int done[8];
    int status_ok[8];
    uint64_t messages[8];
    char mailbox[8][64];
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
    char label[64];
    snprintf(label, sizeof(label), "%s:async", S->name);
    imk_conn_options o = S->options(label);
    imk_conn *c = NULL;
    CHECK_INT(imk_conn_new(&o, NULL, &c), 0);
    if (c == NULL)
        return;
    connect_flag f = {0, 0};
    CHECK_INT(imk_conn_connect_async(c, on_connect, &f), 0);
    CHECK_INT(it_loop(c, &f.done, 15000), 0);
    CHECK(f.done && f.err == 0);
    if (S->user != NULL && f.done && f.err == 0) {
        imk_auth a = auth_of_server();
        connect_flag l = {0, 0};
        CHECK_INT(imk_conn_login_async(c, &a, on_connect, &l), 0);
        CHECK_INT(it_loop(c, &l.done, 15000), 0);
        CHECK(l.done && l.err == 0);
    }
    memset(&actx, 0, sizeof(actx));
    const char *const boxes[] = {"INBOX", N.move_to, N.multi, N.entw};
    const uint64_t counts[] = {4, 1, 3, entw_messages};
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
    CHECK(it_trace_received_contains(label_a, S->bye));
    if (!S->tls) {
        int st = -1, exited = 0;
        for (int i = 0; i < 100 && !(exited = imk_conn_tunnel_status(A, &st)); i++)
            it_sleep_ms(20);
        CHECK_INT(exited, 1);
        CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    imk_conn_free(A);
    A = NULL;
}

/* ---------------------------------------------------------------- */

void rt_run(const rt_server *srv)
{
    S = srv;
    A = NULL;
    memset(&evA, 0, sizeof(evA));
    inbox_uidvalidity = 0;
    copy_uidvalidity = 0;
    entw_messages = 0;
    snprintf(label_a, sizeof(label_a), "%s:A", srv->name);
    names_init();
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
    IT_RUN(t_utf8_accept);
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

void rt_add_counts(int *checks, int *failures)
{
    *checks += test_checks;
    *failures += test_failures;
    test_checks = 0;
    test_failures = 0;
}
