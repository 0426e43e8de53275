/* SPDX-License-Identifier: MIT */
/*
 * test_it_async.c - every operation of the event-loop interface against real
 * servers: each connection here is driven only through imk_conn_fd /
 * imk_conn_events / imk_conn_timeout / imk_conn_process from a poll() loop
 * (it_loop), with the _async forms, several commands queued at once.
 *
 * Dovecot 2.3 (preauth tunnel), one connection: CAPABILITY, ID, NAMESPACE,
 * ENABLE, GETQUOTAROOT, GETQUOTA, CREATE, SUBSCRIBE queued together (and
 * seen pipelined on the wire); RENAME, LIST (plain and SUBSCRIBED),
 * UNSUBSCRIBE, DELETE, each visible in the next LIST; APPEND of five
 * messages (MULTIAPPEND), SELECT, FETCH, SORT, THREAD queued together;
 * COPY (COPYUID), MOVE (COPYUID + expunged UIDs), UID EXPUNGE, EXPUNGE,
 * STATUS; SETMETADATA + GETMETADATA round trip; NOTIFY SET / NONE;
 * UNSELECT; LOGOUT.
 *
 * Courier-IMAP 5.0 (preauth tunnel; no MOVE, UNSELECT, MULTIAPPEND): the
 * async MOVE fallback (UID COPY, UID STORE, UID EXPUNGE chained from the
 * completions, one `done` with the merged result), a refused COPY that
 * ends the chain at once, an APPEND of three messages as three chained
 * APPENDs (and a refused one that stops the chain), the CLOSE rule of
 * imk_conn_unselect_async, and the chain's end when the connection goes
 * away mid-chain: LOGOUT queued behind it, the connection freed from a
 * completion callback between two commands of the chain, freed from the
 * `done` the chain's first command calls, freed from the final `done`,
 * and freed from outside any callback. Run under ASan, these show that the
 * chain's state is freed on every path and nothing touches a freed
 * connection. The Courier part is skipped (with a note) when Courier is not
 * unpacked, and fails under IMK_IT_REQUIRED=1.
 *
 * Results are only valid during the completion callback, so each check of
 * a result's data is made inside its callback (inspect functions); the test
 * body then checks that every callback ran exactly once.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Pipelining probe: a trace hook in front of lib_it's                 */
/* ------------------------------------------------------------------ */

/* Counts tagged command lines the client sent and tagged completions the
 * server sent ("A<n> ..." lines), and the most commands that were on the
 * wire at once. */
typedef struct probe {
    imk_trace_fn next;
    void *next_user;
    char line[2][24];
    size_t len[2];
    int in_flight, max_in_flight;
} probe;

static int tagged(const char *line, size_t len, size_t *after)
{
    if (len < 3 || line[0] != 'A')
        return 0;
    size_t i = 1;
    while (i < len && line[i] >= '0' && line[i] <= '9')
        i++;
    if (i == 1 || i >= len || line[i] != ' ')
        return 0;
    *after = i + 1;
    return 1;
}

static void probe_line(probe *p, int server)
{
    const char *l = p->line[server];
    size_t len = p->len[server], at = 0;
    if (!tagged(l, len, &at))
        return;
    if (!server) {
        if (++p->in_flight > p->max_in_flight)
            p->max_in_flight = p->in_flight;
        return;
    }
    if ((len - at >= 3 && (memcmp(l + at, "OK ", 3) == 0 || memcmp(l + at, "NO ", 3) == 0)) ||
        (len - at >= 4 && memcmp(l + at, "BAD ", 4) == 0))
        p->in_flight--;
}

static void probe_hook(void *user, char dir, const char *data, size_t len)
{
    probe *p = user;
    int server = dir == 'S';
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            probe_line(p, server);
            p->len[server] = 0;
        } else if (p->len[server] < sizeof(p->line[0])) {
            p->line[server][p->len[server]++] = data[i];
        }
    }
    if (p->next != NULL)
        p->next(p->next_user, dir, data, len);
}

/* ------------------------------------------------------------------ */
/* Completions                                                         */
/* ------------------------------------------------------------------ */

typedef struct rec rec;
/* Checks a result's data during its callback (where it is valid). */
typedef void (*inspect_fn)(rec *d, const imk_result *r);

struct rec {
    int calls;   /* how often `done` ran: must end as 1 */
    int err;     /* its err */
    int had_res; /* res was not NULL */
    imk_status status;
    int order; /* completion order in the test run, 1-based */
    inspect_fn inspect;
    char desc[256];
};

static int completions; /* callbacks so far */
static int outstanding; /* queued, not yet completed */
static int all_done;    /* outstanding reached 0 */

static void on_done(imk_conn *c, int err, const imk_result *r, void *user)
{
    (void)c;
    rec *d = user;
    d->calls++;
    d->err = err;
    d->had_res = r != NULL;
    d->status = r != NULL ? r->status : IMK_STATUS_NONE;
    d->order = ++completions;
    snprintf(d->desc, sizeof(d->desc), "%s", r != NULL ? it_describe(r) : imk_error_name(err));
    if (r != NULL && d->inspect != NULL)
        d->inspect(d, r);
    if (--outstanding == 0)
        all_done = 1;
}

static rec *expect(rec *d, inspect_fn f)
{
    memset(d, 0, sizeof(*d));
    d->inspect = f;
    return d;
}

/* Queue: the call must return 0; its callback is then awaited. */
#define QUEUE(call)                                                                                \
    do {                                                                                           \
        int queue_rc_ = (call);                                                                    \
        CHECK_INT(queue_rc_, 0);                                                                   \
        if (queue_rc_ == 0)                                                                        \
            outstanding++;                                                                         \
        else                                                                                       \
            it_note("%s: %s", #call, imk_error_name(queue_rc_));                                   \
    } while (0)

/* Drive the connection until every queued callback ran. */
static int wait_all(imk_conn *c, int timeout_ms)
{
    all_done = outstanding == 0;
    int rc = it_loop(c, &all_done, timeout_ms);
    if (rc != 0)
        it_note("the loop ended with %s (%d callbacks missing): %s", imk_error_name(rc),
                outstanding, imk_conn_error(c));
    return rc;
}

/* done ran once with an OK result. */
static int ok_once(const rec *d, const char *what)
{
    if (d->calls == 1 && d->err == 0 && d->had_res && d->status == IMK_STATUS_OK)
        return 1;
    it_note("%s: %d calls, err %s, %s", what, d->calls, imk_error_name(d->err), d->desc);
    return 0;
}

#define CHECK_OK(d) CHECK(ok_once(&(d), #d))

/* A connection over a tunnel, connected with imk_conn_connect_async. */
static imk_conn *open_async(const char *tunnel, const char *label, probe *p)
{
    imk_conn_options o = it_options_tunnel(tunnel, label);
    if (p != NULL) {
        memset(p, 0, sizeof(*p));
        p->next = o.trace;
        p->next_user = o.trace_user;
        o.trace = probe_hook;
        o.trace_user = p;
    }
    imk_conn *c = NULL;
    int rc = imk_conn_new(&o, NULL, &c);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        imk_conn_free(c);
        return NULL;
    }
    rec conn;
    expect(&conn, NULL);
    outstanding = 0; /* a new connection: nothing of an earlier one counts */
    QUEUE(imk_conn_connect_async(c, on_done, &conn));
    CHECK_INT(wait_all(c, 15000), 0);
    CHECK(conn.calls == 1 && conn.err == 0);
    if (conn.calls != 1 || conn.err != 0) {
        it_note("connect: %s", imk_conn_error(c));
        imk_conn_free(c);
        return NULL;
    }
    return c;
}

static int has_str(imk_strlist l, const char *s)
{
    for (size_t i = 0; i < l.count; i++)
        if (it_str_ieq(l.items[i], s))
            return 1;
    return 0;
}

static imk_conn_state state_of(imk_conn *c)
{
    return imk_session_state(imk_conn_session(c));
}

/* ------------------------------------------------------------------ */
/* Dovecot                                                             */
/* ------------------------------------------------------------------ */

static char *dovecot_cmd;
static imk_conn *D;
static probe dprobe;
static const char *const dlabel = "dovecot:async";
static uint64_t async_uidvalidity, sub_uidvalidity;

static void i_capability(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(has_str(r->capabilities, "IMAP4rev1"));
    CHECK(has_str(r->capabilities, "MOVE"));
    CHECK(has_str(r->capabilities, "METADATA"));
}

static void i_id(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->id != NULL && !r->id->nil);
    int found = 0;
    for (size_t i = 0; r->id != NULL && i < r->id->fields.count; i++)
        if (it_str_ieq(r->id->fields.items[i].name, "name"))
            found = it_str_eq(r->id->fields.items[i].value, "Dovecot");
    CHECK(found);
}

static void i_namespace(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->namespace_ != NULL);
    if (r->namespace_ == NULL)
        return;
    const imk_namespace_list *p = &r->namespace_->personal;
    CHECK_INT(p->count, 1);
    if (p->count >= 1) {
        CHECK(p->items[0].prefix.data != NULL && p->items[0].prefix.len == 0);
        CHECK_INT(p->items[0].delimiter, '/');
    }
}

static void i_enable(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(has_str(r->enabled, "CONDSTORE"));
}

static void i_quotaroot(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->quotaroot != NULL);
    if (r->quotaroot != NULL) {
        CHECK(it_str_eq(r->quotaroot->mailbox, "INBOX"));
        CHECK(r->quotaroot->roots.count == 1 &&
              it_str_eq(r->quotaroot->roots.items[0], "User quota"));
    }
    CHECK(r->quota_count == 1 && it_str_eq(r->quotas[0].root, "User quota"));
}

static void i_quota(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->quota_count == 1);
    if (r->quota_count == 1) {
        CHECK(it_str_eq(r->quotas[0].root, "User quota"));
        CHECK(r->quotas[0].count == 1 && it_str_ieq(r->quotas[0].resources[0].name, "STORAGE"));
    }
}

static void t_dv_connect(void)
{
    D = open_async(dovecot_cmd, dlabel, &dprobe);
    CHECK(D != NULL);
    if (D == NULL)
        return;
    CHECK_INT(state_of(D), IMK_STATE_AUTHENTICATED);
    CHECK_STR(imk_conn_transport(D), "tunnel");
}

#define NEED(c)                                                                                    \
    do {                                                                                           \
        if ((c) == NULL || imk_conn_fd(c) < 0) {                                                   \
            CHECK((c) != NULL && imk_conn_fd(c) >= 0);                                             \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Ten commands queued in one go. */
static void t_dv_session(void)
{
    NEED(D);
    static const char *const kv[] = {"name", "imapkit-async", "version", "0.1"};
    static const char *const exts[] = {"CONDSTORE"};
    rec cap, id, ns, en, qr, q, cr1, cr2, cr3, sub;
    dprobe.max_in_flight = dprobe.in_flight;
    QUEUE(imk_conn_capability_async(D, on_done, expect(&cap, i_capability)));
    QUEUE(imk_conn_id_async(D, kv, 2, on_done, expect(&id, i_id)));
    QUEUE(imk_conn_namespace_async(D, on_done, expect(&ns, i_namespace)));
    QUEUE(imk_conn_enable_async(D, exts, 1, on_done, expect(&en, i_enable)));
    QUEUE(imk_conn_getquotaroot_async(D, "INBOX", on_done, expect(&qr, i_quotaroot)));
    QUEUE(imk_conn_getquota_async(D, "User quota", on_done, expect(&q, i_quota)));
    QUEUE(imk_conn_create_async(D, "async", on_done, expect(&cr1, NULL)));
    QUEUE(imk_conn_create_async(D, "async/old", on_done, expect(&cr2, NULL)));
    QUEUE(imk_conn_create_async(D, "async/sub", on_done, expect(&cr3, NULL)));
    QUEUE(imk_conn_subscribe_async(D, "async/sub", on_done, expect(&sub, NULL)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(cap);
    CHECK_OK(id);
    CHECK_OK(ns);
    CHECK_OK(en);
    CHECK_OK(qr);
    CHECK_OK(q);
    CHECK_OK(cr1);
    CHECK_OK(cr2);
    CHECK_OK(cr3);
    CHECK_OK(sub);
    CHECK(imk_session_is_enabled(imk_conn_session(D), "CONDSTORE"));
    CHECK(it_trace_sent_contains(dlabel, 0, "\"imapkit-async\""));
    /* Pipelined: several were on the wire before the first answer. */
    it_note("at most %d commands in flight", dprobe.max_in_flight);
    CHECK(dprobe.max_in_flight >= 3);
    CHECK_INT(dprobe.in_flight, 0);
}

/* LIST checks: want[i] present (1) or absent (0). */
typedef struct list_want {
    const char *names[4];
    int present[4];
} list_want;

static list_want lw_plain, lw_subscribed;

static void i_list(rec *d, const imk_result *r, const list_want *w)
{
    for (size_t i = 0; i < 4 && w->names[i] != NULL; i++) {
        int found = it_list_find(r, w->names[i]) != NULL;
        if (found != w->present[i]) {
            it_note("%s: LIST %s %s", d->desc, w->present[i] ? "lacks" : "still has", w->names[i]);
            CHECK_INT(found, w->present[i]);
        }
    }
}

static void i_list_plain(rec *d, const imk_result *r)
{
    i_list(d, r, &lw_plain);
}

static void i_list_subscribed(rec *d, const imk_result *r)
{
    i_list(d, r, &lw_subscribed);
}

static void i_nonexistent(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->status == IMK_STATUS_NO && r->code != NULL && r->code->kind == IMK_CODE_NONEXISTENT);
}

static void t_dv_mailboxes(void)
{
    NEED(D);
    imk_list_params subscribed = {IMK_LIST_SUBSCRIBED, NULL};
    rec ren, l1, l2, unsub, del, del_missing, l3, l4;

    QUEUE(imk_conn_rename_async(D, "async/old", "async/new", on_done, expect(&ren, NULL)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(ren);

    lw_plain = (list_want){{"async", "async/new", "async/sub", "async/old"}, {1, 1, 1, 0}};
    lw_subscribed = (list_want){{"async/sub", "async/new", NULL, NULL}, {1, 0, 0, 0}};
    QUEUE(imk_conn_list_async(D, "", "async*", NULL, on_done, expect(&l1, i_list_plain)));
    QUEUE(
        imk_conn_list_async(D, "", "async*", &subscribed, on_done, expect(&l2, i_list_subscribed)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(l1);
    CHECK_OK(l2);

    QUEUE(imk_conn_unsubscribe_async(D, "async/sub", on_done, expect(&unsub, NULL)));
    QUEUE(imk_conn_delete_async(D, "async/new", on_done, expect(&del, NULL)));
    QUEUE(imk_conn_delete_async(D, "async/missing", on_done, expect(&del_missing, i_nonexistent)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(unsub);
    CHECK_OK(del);
    CHECK(del_missing.calls == 1 && del_missing.err == 0 && del_missing.status == IMK_STATUS_NO);

    lw_plain = (list_want){{"async", "async/sub", "async/new", "async/old"}, {1, 1, 0, 0}};
    lw_subscribed = (list_want){{"async/sub", NULL, NULL, NULL}, {0, 0, 0, 0}};
    QUEUE(imk_conn_list_async(D, "", "async*", NULL, on_done, expect(&l3, i_list_plain)));
    QUEUE(
        imk_conn_list_async(D, "", "async*", &subscribed, on_done, expect(&l4, i_list_subscribed)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(l3);
    CHECK_OK(l4);
}

static void i_appended5(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->has_appenduid);
    CHECK_INT(it_seqset_count(r->dest_uids), 5);
    CHECK(it_seqset_has(r->dest_uids, 1) && it_seqset_has(r->dest_uids, 5));
    async_uidvalidity = r->uidvalidity;
}

static void i_selected5(rec *d, const imk_result *r)
{
    (void)d;
    (void)r;
    CHECK_INT(imk_view_exists(imk_conn_view(D)), 5);
}

static void i_sorted(rec *d, const imk_result *r)
{
    (void)d;
    static const uint32_t by_date[] = {4, 5, 3, 2, 1};
    CHECK(it_ids_equal(r, by_date, 5));
}

static void i_threaded(rec *d, const imk_result *r)
{
    (void)d;
    /* (1 2 4)(3)(5): threads ordered by their first message's date. */
    const imk_thread *t = &r->thread;
    CHECK_INT(t->count, 3);
    if (t->count != 3)
        return;
    const imk_thread_node *n1 = &t->roots[0];
    CHECK(n1->num == 1 && n1->child_count == 1);
    if (n1->child_count == 1) {
        const imk_thread_node *n2 = &n1->children[0];
        CHECK(n2->num == 2 && n2->child_count == 1);
        if (n2->child_count == 1)
            CHECK(n2->children[0].num == 4 && n2->children[0].child_count == 0);
    }
    CHECK(t->roots[1].num == 3 && t->roots[1].child_count == 0);
    CHECK(t->roots[2].num == 5 && t->roots[2].child_count == 0);
}

static int fetched_records;

static void on_fetch_item(imk_conn *c, const imk_fetch_item *item, void *user)
{
    (void)c;
    (void)user;
    if (item->type == IMK_FI_MESSAGE)
        fetched_records++;
}

static void t_dv_messages(void)
{
    NEED(D);
    imk_append_msg m[5];
    for (size_t i = 0; i < 5; i++) {
        imk_append_msg one = IMK_APPEND_MSG_INIT;
        one.data = it_messages[i].text;
        one.size = strlen(it_messages[i].text);
        m[i] = one;
    }
    size_t from = it_trace_sent(dlabel);
    rec app, sel, fetch, sort, thread;
    fetched_records = 0;
    QUEUE(imk_conn_append_multi_async(D, "async", m, 5, on_done, expect(&app, i_appended5)));
    QUEUE(imk_conn_select_async(D, "async", NULL, on_done, expect(&sel, i_selected5)));
    QUEUE(imk_conn_fetch_async(D, 1, "1:*", "(UID FLAGS)", on_fetch_item, on_done,
                               expect(&fetch, NULL)));
    QUEUE(imk_conn_sort_async(D, 1, "REVERSE DATE", "ALL", NULL, 0, on_done,
                              expect(&sort, i_sorted)));
    QUEUE(imk_conn_thread_async(D, 1, "REFERENCES", "ALL", NULL, 0, on_done,
                                expect(&thread, i_threaded)));
    CHECK_INT(wait_all(D, 20000), 0);
    CHECK_OK(app);
    CHECK_OK(sel);
    CHECK_OK(fetch);
    CHECK_OK(sort);
    CHECK_OK(thread);
    CHECK_INT(fetched_records, 5);
    /* MULTIAPPEND: one command for the five. */
    CHECK_INT(it_trace_sent_count(dlabel, from, " APPEND "), 1);
    /* completed in the order queued */
    CHECK(app.order < sel.order && sel.order < fetch.order && fetch.order < sort.order &&
          sort.order < thread.order);
    CHECK_INT(state_of(D), IMK_STATE_SELECTED);
}

static void i_copied(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->has_copyuid);
    CHECK(it_seqset_count(r->source_uids) == 2 && it_seqset_has(r->source_uids, 1) &&
          it_seqset_has(r->source_uids, 2));
    CHECK_INT(it_seqset_count(r->dest_uids), 2);
    sub_uidvalidity = r->uidvalidity;
    CHECK(r->uidvalidity != 0 && r->uidvalidity != async_uidvalidity);
}

static void i_moved3(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->has_copyuid && it_seqset_count(r->source_uids) == 1 &&
          it_seqset_has(r->source_uids, 3));
    CHECK(it_seqset_count(r->dest_uids) == 1 && r->uidvalidity == sub_uidvalidity);
    CHECK(it_expunged_equal(r, (const uint32_t[]){3}, 1));
}

static void i_expunged4(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(it_expunged_equal(r, (const uint32_t[]){4}, 1));
}

static void i_expunged5(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(it_expunged_equal(r, (const uint32_t[]){5}, 1));
}

static void i_status3(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->status_count == 1 && r->statuses[0].messages == 3);
}

static void t_dv_copy_move_expunge(void)
{
    NEED(D);
    static const char *const del[] = {"\\Deleted"};
    size_t from = it_trace_sent(dlabel);
    rec copy, move, st4, ex4, ex5, status;
    QUEUE(imk_conn_copy_async(D, 1, "1:2", "async/sub", on_done, expect(&copy, i_copied)));
    QUEUE(imk_conn_move_async(D, 1, "3", "async/sub", on_done, expect(&move, i_moved3)));
    QUEUE(
        imk_conn_store_async(D, 1, "4:5", "+FLAGS.SILENT", del, 1, 0, on_done, expect(&st4, NULL)));
    QUEUE(imk_conn_expunge_async(D, "4", on_done, expect(&ex4, i_expunged4)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(copy);
    CHECK_OK(move);
    CHECK_OK(st4);
    CHECK_OK(ex4);
    /* MOVE is offered: one command. */
    CHECK(it_trace_sent_contains(dlabel, from, "UID MOVE 3 "));
    CHECK_INT(it_trace_sent_count(dlabel, from, "UID COPY"), 1);
    CHECK_INT(imk_view_exists(imk_conn_view(D)), 3);

    /* EXPUNGE (no set) takes 5, marked above and left alone by UID EXPUNGE 4. */
    QUEUE(imk_conn_expunge_async(D, NULL, on_done, expect(&ex5, i_expunged5)));
    QUEUE(imk_conn_status_async(D, "async/sub", "MESSAGES", on_done, expect(&status, i_status3)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(ex5);
    CHECK_OK(status);
    CHECK_INT(imk_view_exists(imk_conn_view(D)), 2);
}

static const char *const md_entries[] = {"/private/comment", "/shared/comment"};
static const char *const md_values[] = {"async \xc3\xbc\r\nsecond line", "shared async"};

static void i_md_values(rec *d, const imk_result *r)
{
    (void)d;
    size_t found = 0;
    for (size_t i = 0; i < r->metadata_count; i++) {
        const imk_metadata *m = &r->metadata[i];
        CHECK(it_str_eq(m->mailbox, "async/sub"));
        for (size_t k = 0; k < m->entries.count; k++)
            for (size_t e = 0; e < 2; e++)
                if (it_str_ieq(m->entries.items[k].name, md_entries[e])) {
                    found++;
                    CHECK_MEM(m->entries.items[k].value.data, m->entries.items[k].value.len,
                              md_values[e], strlen(md_values[e]));
                }
    }
    CHECK_INT(found, 2);
}

static void i_md_nil(rec *d, const imk_result *r)
{
    (void)d;
    for (size_t i = 0; i < r->metadata_count; i++)
        for (size_t k = 0; k < r->metadata[i].entries.count; k++)
            CHECK(r->metadata[i].entries.items[k].value.data == NULL);
}

static void t_dv_metadata(void)
{
    NEED(D);
    static const char *const none[] = {NULL, NULL};
    rec set, get, unset, get2;
    /* SET then GET, pipelined: the GET sees what the SET stored. */
    QUEUE(imk_conn_setmetadata_async(D, "async/sub", md_entries, md_values, 2, on_done,
                                     expect(&set, NULL)));
    QUEUE(imk_conn_getmetadata_async(D, "async/sub", md_entries, 2, 0, 0, on_done,
                                     expect(&get, i_md_values)));
    QUEUE(imk_conn_setmetadata_async(D, "async/sub", md_entries, none, 2, on_done,
                                     expect(&unset, NULL)));
    QUEUE(imk_conn_getmetadata_async(D, "async/sub", md_entries, 2, 0, 0, on_done,
                                     expect(&get2, i_md_nil)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(set);
    CHECK_OK(get);
    CHECK_OK(unset);
    CHECK_OK(get2);
}

static void t_dv_notify(void)
{
    NEED(D);
    size_t from = it_trace_sent(dlabel);
    rec set, none;
    QUEUE(imk_conn_notify_async(D, "SET STATUS (PERSONAL (MessageNew MessageExpunge MailboxName))",
                                NULL, 0, on_done, expect(&set, NULL)));
    QUEUE(imk_conn_notify_async(D, NULL, NULL, 0, on_done, expect(&none, NULL)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(set);
    CHECK_OK(none);
    CHECK(it_trace_sent_contains(dlabel, from, "NOTIFY SET STATUS (PERSONAL"));
    CHECK(it_trace_sent_contains(dlabel, from, "NOTIFY NONE"));
}

static void t_dv_unselect_logout(void)
{
    NEED(D);
    size_t from = it_trace_sent(dlabel);
    rec unsel, out;
    QUEUE(imk_conn_unselect_async(D, on_done, expect(&unsel, NULL)));
    CHECK_INT(wait_all(D, 15000), 0);
    CHECK_OK(unsel);
    CHECK(it_trace_sent_contains(dlabel, from, " UNSELECT\r\n"));
    CHECK(!it_trace_sent_contains(dlabel, from, "CLOSE"));
    CHECK_INT(state_of(D), IMK_STATE_AUTHENTICATED);
    CHECK_INT(imk_view_exists(imk_conn_view(D)), 0);
    QUEUE(imk_conn_logout_async(D, on_done, expect(&out, NULL)));
    CHECK_INT(wait_all(D, 10000), 0);
    CHECK(out.calls == 1 && out.err == 0);
    CHECK_INT(imk_conn_fd(D), -1);
    imk_conn_free(D);
    D = NULL;
}

/* ------------------------------------------------------------------ */
/* Courier: the chains                                                 */
/* ------------------------------------------------------------------ */

static char *courier_cmd;
static imk_conn *K;
static const char *const klabel = "courier:async";

#define MSG(subject) "Subject: " subject "\r\nFrom: a@example.org\r\n\r\nbody of " subject "\r\n"

static void i_kappended3(rec *d, const imk_result *r)
{
    (void)d;
    /* the last APPEND's APPENDUID: the third message */
    CHECK(r->has_appenduid && it_seqset_count(r->dest_uids) == 1 && it_seqset_has(r->dest_uids, 3));
}

static void i_tries_create(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->status == IMK_STATUS_NO);
}

static void t_cu_connect_append(void)
{
    K = open_async(courier_cmd, klabel, NULL);
    CHECK(K != NULL);
    if (K == NULL)
        return;
    CHECK(!imk_conn_has_capability(K, "MOVE") && !imk_conn_has_capability(K, "MULTIAPPEND") &&
          !imk_conn_has_capability(K, "UNSELECT") && imk_conn_has_capability(K, "UIDPLUS"));
    imk_append_msg m[3];
    static const char *const texts[] = {MSG("one"), MSG("two"), MSG("three")};
    static const char *const seen[] = {"\\Seen"};
    for (size_t i = 0; i < 3; i++) {
        imk_append_msg one = IMK_APPEND_MSG_INIT;
        one.data = texts[i];
        one.size = strlen(texts[i]);
        one.flags = i == 1 ? seen : NULL;
        one.n_flags = i == 1 ? 1 : 0;
        m[i] = one;
    }
    size_t from = it_trace_sent(klabel);
    rec app, bad, mk, sel, fetch;
    fetched_records = 0;
    /* No MULTIAPPEND: three APPENDs, chained; the one to a missing mailbox
     * stops at its first refused command. */
    QUEUE(imk_conn_append_multi_async(K, "INBOX", m, 3, on_done, expect(&app, i_kappended3)));
    QUEUE(imk_conn_append_multi_async(K, "INBOX.missing", m, 3, on_done,
                                      expect(&bad, i_tries_create)));
    QUEUE(imk_conn_create_async(K, "INBOX.moved", on_done, expect(&mk, NULL)));
    CHECK_INT(wait_all(K, 20000), 0);
    CHECK_OK(app);
    CHECK(bad.calls == 1 && bad.err == 0 && bad.status == IMK_STATUS_NO);
    CHECK_OK(mk);
    CHECK_INT(it_trace_sent_count(klabel, from, " APPEND INBOX "), 3);
    CHECK_INT(it_trace_sent_count(klabel, from, " APPEND INBOX.missing "), 1);

    QUEUE(imk_conn_select_async(K, "INBOX", NULL, on_done, expect(&sel, NULL)));
    QUEUE(imk_conn_fetch_async(K, 1, "1:*", "(UID FLAGS)", on_fetch_item, on_done,
                               expect(&fetch, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(sel);
    CHECK_OK(fetch);
    CHECK_INT(fetched_records, 3);
    CHECK_INT(imk_view_exists(imk_conn_view(K)), 3);
}

static void i_kmoved12(rec *d, const imk_result *r)
{
    (void)d;
    /* the UID EXPUNGE's result with the COPY's COPYUID */
    CHECK(r->has_copyuid);
    CHECK(it_seqset_count(r->source_uids) == 2 && it_seqset_has(r->source_uids, 1) &&
          it_seqset_has(r->source_uids, 2));
    CHECK_INT(it_seqset_count(r->dest_uids), 2);
    CHECK(r->uidvalidity != 0);
    CHECK(it_expunged_equal(r, (const uint32_t[]){1, 2}, 2));
}

static void i_kstatus2(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->status_count == 1 && r->statuses[0].messages == 2);
}

static void t_cu_move_fallback(void)
{
    NEED(K);
    size_t from = it_trace_sent(klabel);
    rec move, noop, status;
    QUEUE(imk_conn_move_async(K, 1, "1:2", "INBOX.moved", on_done, expect(&move, i_kmoved12)));
    /* Queued behind the COPY: it completes between the chain's commands. */
    QUEUE(imk_conn_noop_async(K, on_done, expect(&noop, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(move);
    CHECK_OK(noop);
    CHECK(noop.order < move.order);
    CHECK(!it_trace_sent_contains(klabel, from, "MOVE"));
    CHECK(it_trace_sent_contains(klabel, from, "UID COPY 1:2 INBOX.moved\r\n"));
    CHECK(it_trace_sent_contains(klabel, from, "UID STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\n"));
    CHECK(it_trace_sent_contains(klabel, from, "UID EXPUNGE 1:2\r\n"));
    CHECK_INT(imk_view_exists(imk_conn_view(K)), 1);
    CHECK_INT(imk_view_seq_of_uid(imk_conn_view(K), 3), 1);
    QUEUE(
        imk_conn_status_async(K, "INBOX.moved", "MESSAGES", on_done, expect(&status, i_kstatus2)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(status);

    /* A refused COPY ends the chain with its result; nothing else is sent. */
    from = it_trace_sent(klabel);
    rec refused;
    QUEUE(imk_conn_move_async(K, 1, "3", "INBOX.nowhere", on_done, expect(&refused, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK(refused.calls == 1 && refused.err == 0 && refused.status == IMK_STATUS_NO);
    CHECK(it_trace_sent_contains(klabel, from, "UID COPY 3 INBOX.nowhere"));
    CHECK(!it_trace_sent_contains(klabel, from, "STORE"));
    CHECK(!it_trace_sent_contains(klabel, from, "EXPUNGE"));
    CHECK_INT(imk_view_exists(imk_conn_view(K)), 1);

    /* Sequence numbers could shift between the commands: refused before
     * anything is sent, and `done` is not called. */
    from = it_trace_sent(klabel);
    rec never;
    expect(&never, NULL);
    CHECK_INT(imk_conn_move_async(K, 0, "1", "INBOX.moved", on_done, &never), IMK_ENOTSUP);
    CHECK(strstr(imk_conn_error(K), "uid = 1") != NULL);
    CHECK_INT(wait_all(K, 1000), 0);
    CHECK_INT(never.calls, 0);
    CHECK_INT(it_trace_sent(klabel), from);
}

static void t_cu_unselect(void)
{
    NEED(K);
    /* Read-write INBOX, no UNSELECT: CLOSE would expunge; refused, nothing
     * sent, no callback. */
    size_t from = it_trace_sent(klabel);
    rec never;
    expect(&never, NULL);
    CHECK_INT(imk_conn_unselect_async(K, on_done, &never), IMK_ENOTSUP);
    CHECK_INT(it_trace_sent(klabel), from);

    /* Read-only now (EXAMINE), but a SELECT is queued (behind a NOOP, or
     * already started, which resets the view): CLOSE would run in the
     * read-write mailbox it selects. Refused. */
    imk_select_params ro = {1, 0, 0, 0, NULL, NULL, NULL};
    rec ex, noop, sel, ex2, unsel;
    QUEUE(imk_conn_select_async(K, "INBOX", &ro, on_done, expect(&ex, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(ex);
    CHECK(imk_view_read_only(imk_conn_view(K)));
    QUEUE(imk_conn_noop_async(K, on_done, expect(&noop, NULL)));
    QUEUE(imk_conn_select_async(K, "INBOX", NULL, on_done, expect(&sel, NULL)));
    CHECK_INT(imk_conn_unselect_async(K, on_done, &never), IMK_ENOTSUP);
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(noop);
    CHECK_OK(sel);
    CHECK(!imk_view_read_only(imk_conn_view(K)));
    CHECK_INT(never.calls, 0);
    CHECK(!it_trace_sent_contains(klabel, from, "CLOSE"));

    /* Read-only, and only a NOOP queued: still refused, since whatever is
     * queued is not looked into. */
    QUEUE(imk_conn_select_async(K, "INBOX", &ro, on_done, expect(&ex2, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(ex2);
    CHECK(imk_view_read_only(imk_conn_view(K)));
    QUEUE(imk_conn_noop_async(K, on_done, expect(&noop, NULL)));
    CHECK_INT(imk_conn_unselect_async(K, on_done, &never), IMK_ENOTSUP);
    CHECK(strstr(imk_conn_error(K), "queued") != NULL);
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(noop);
    CHECK_INT(never.calls, 0);
    CHECK(!it_trace_sent_contains(klabel, from, "CLOSE"));

    /* Now nothing is queued and the mailbox is read-only: CLOSE. */
    QUEUE(imk_conn_unselect_async(K, on_done, expect(&unsel, NULL)));
    CHECK_INT(wait_all(K, 15000), 0);
    CHECK_OK(unsel);
    CHECK(it_trace_sent_contains(klabel, from, " CLOSE\r\n"));
    CHECK(!it_trace_sent_contains(klabel, from, "UNSELECT"));
    CHECK_INT(state_of(K), IMK_STATE_AUTHENTICATED);

    rec out;
    QUEUE(imk_conn_logout_async(K, on_done, expect(&out, NULL)));
    CHECK_INT(wait_all(K, 10000), 0);
    CHECK(out.calls == 1 && out.err == 0);
    imk_conn_free(K);
    K = NULL;
}

/* ---- the connection going away mid-chain ---- */

typedef struct freeing {
    imk_conn *c;
    rec move;  /* the chained move's done */
    rec other; /* the command queued behind it */
    int move_calls_at_free;
    int stop; /* the loop must end: the connection is gone */
} freeing;

static freeing F;

static uint32_t appended_uid;

static void i_appenduid(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->has_appenduid && it_seqset_count(r->dest_uids) == 1);
    appended_uid = it_first_dest_uid(r);
}

/* A connection with INBOX selected and one new message in it; its UID. */
static uint32_t prepare(const char *label, const char *subject)
{
    memset(&F, 0, sizeof(F));
    F.c = open_async(courier_cmd, label, NULL);
    if (F.c == NULL)
        return 0;
    char text[256];
    snprintf(text, sizeof(text), "Subject: %s\r\n\r\nchain\r\n", subject);
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = text;
    m.size = strlen(text);
    rec app, sel;
    appended_uid = 0;
    QUEUE(imk_conn_append_async(F.c, "INBOX", &m, on_done, expect(&app, i_appenduid)));
    QUEUE(imk_conn_select_async(F.c, "INBOX", NULL, on_done, expect(&sel, NULL)));
    CHECK_INT(wait_all(F.c, 15000), 0);
    CHECK_OK(app);
    CHECK_OK(sel);
    CHECK(appended_uid != 0);
    return appended_uid;
}

static void on_free_in_other(imk_conn *c, int err, const imk_result *r, void *user)
{
    on_done(c, err, r, user);
    F.move_calls_at_free = F.move.calls;
    imk_conn_free(c);
    F.stop = 1;
}

static void on_free_in_move(imk_conn *c, int err, const imk_result *r, void *user)
{
    on_done(c, err, r, user);
    imk_conn_free(c);
    F.stop = 1;
}

static void on_flag(imk_conn *c, int err, const imk_result *r, void *user)
{
    on_done(c, err, r, user);
    F.stop = 1;
}

/* The chain completes with the error, once, when the connection dies. */
static void check_chain_failed(const char *what)
{
    CHECK_INT(F.move.calls, 1);
    CHECK(F.move.err < 0 && !F.move.had_res);
    it_note("%s: the chain ended with %s", what, F.move.desc);
}

/* LOGOUT queued behind the chain: its next command cannot run. */
static void t_cu_chain_logout(void)
{
    uint32_t uid = prepare("courier:logout", "logout");
    if (uid == 0)
        return;
    char set[16];
    snprintf(set, sizeof(set), "%u", (unsigned)uid);
    QUEUE(imk_conn_move_async(F.c, 1, set, "INBOX.moved", on_done, expect(&F.move, NULL)));
    QUEUE(imk_conn_logout_async(F.c, on_done, expect(&F.other, NULL)));
    CHECK_INT(wait_all(F.c, 15000), 0);
    check_chain_failed("LOGOUT behind the chain");
    CHECK(F.other.calls == 1 && F.other.err == 0);
    CHECK_INT(imk_conn_fd(F.c), -1);
    imk_conn_free(F.c);
}

/* Freed from the completion callback of the command queued right behind
 * the chain's UID COPY: the COPY has completed and the chain's STORE is
 * queued when the free comes. */
static void t_cu_free_between_commands(void)
{
    uint32_t uid = prepare("courier:free-between", "free between");
    if (uid == 0)
        return;
    char set[16];
    snprintf(set, sizeof(set), "%u", (unsigned)uid);
    QUEUE(imk_conn_move_async(F.c, 1, set, "INBOX.moved", on_done, expect(&F.move, NULL)));
    QUEUE(imk_conn_noop_async(F.c, on_free_in_other, expect(&F.other, NULL)));
    CHECK_INT(it_loop(F.c, &F.stop, 15000), 0);
    CHECK(F.stop);
    CHECK_INT(F.move_calls_at_free, 0);
    CHECK_OK(F.other);
    check_chain_failed("freed between the chain's commands");
    CHECK_INT(F.move.err, IMK_ECLOSED);
    CHECK(it_trace_sent_contains("courier:free-between", 0, "UID COPY"));
    outstanding = 0;
}

/* Freed from `done`, called from the completion callback of the chain's
 * first command (a refused COPY). */
static void t_cu_free_in_first_done(void)
{
    uint32_t uid = prepare("courier:free-first", "free first");
    if (uid == 0)
        return;
    char set[16];
    snprintf(set, sizeof(set), "%u", (unsigned)uid);
    QUEUE(
        imk_conn_move_async(F.c, 1, set, "INBOX.nowhere", on_free_in_move, expect(&F.move, NULL)));
    CHECK_INT(it_loop(F.c, &F.stop, 15000), 0);
    CHECK(F.stop);
    CHECK(F.move.calls == 1 && F.move.err == 0 && F.move.status == IMK_STATUS_NO);
    outstanding = 0;
}

static void i_moved_one(rec *d, const imk_result *r)
{
    (void)d;
    CHECK(r->has_copyuid && it_seqset_count(r->source_uids) == 1 &&
          it_seqset_count(r->dest_uids) == 1);
    CHECK_INT(r->expunged_count, 1);
}

/* Freed from `done` at the end of a successful chain (the UID EXPUNGE's
 * completion). */
static void t_cu_free_in_last_done(void)
{
    uint32_t uid = prepare("courier:free-last", "free last");
    if (uid == 0)
        return;
    char set[16];
    snprintf(set, sizeof(set), "%u", (unsigned)uid);
    QUEUE(imk_conn_move_async(F.c, 1, set, "INBOX.moved", on_free_in_move,
                              expect(&F.move, i_moved_one)));
    CHECK_INT(it_loop(F.c, &F.stop, 15000), 0);
    CHECK(F.stop);
    CHECK_OK(F.move);
    outstanding = 0;
}

/* Freed by the application outside any callback while the chain waits
 * for its STORE. */
static void t_cu_free_outside(void)
{
    uint32_t uid = prepare("courier:free-outside", "free outside");
    if (uid == 0)
        return;
    char set[16];
    snprintf(set, sizeof(set), "%u", (unsigned)uid);
    QUEUE(imk_conn_move_async(F.c, 1, set, "INBOX.moved", on_done, expect(&F.move, NULL)));
    QUEUE(imk_conn_noop_async(F.c, on_flag, expect(&F.other, NULL)));
    CHECK_INT(it_loop(F.c, &F.stop, 15000), 0);
    CHECK_OK(F.other);
    CHECK_INT(F.move.calls, 0);
    imk_conn_free(F.c);
    check_chain_failed("freed outside callbacks");
    CHECK_INT(F.move.err, IMK_ECLOSED);
    outstanding = 0;
}

/* Whether Courier can be started here (in a child: it_tunnel exits when
 * it cannot). */
static int probe_courier(void *arg)
{
    (void)arg;
    char *cmd = it_tunnel("courier-tunnel", "courier-probe", NULL, 0);
    free(cmd);
    return 0;
}

int main(void)
{
    it_init("test_it_async", 110);
    dovecot_cmd = it_tunnel("dovecot-tunnel", "dovecot-async", NULL, 0);
    IT_RUN(t_dv_connect);
    IT_RUN(t_dv_session);
    IT_RUN(t_dv_mailboxes);
    IT_RUN(t_dv_messages);
    IT_RUN(t_dv_copy_move_expunge);
    IT_RUN(t_dv_metadata);
    IT_RUN(t_dv_notify);
    IT_RUN(t_dv_unselect_logout);
    if (D != NULL)
        imk_conn_free(D);
    free(dovecot_cmd);

    int st = it_child_wait(it_child_start(0, probe_courier, NULL));
    if (st == 77) {
        it_note("skipped: the Courier part (MOVE fallback and chains): Courier is not available");
    } else {
        CHECK_INT(st, 0); /* IMK_IT_REQUIRED=1 and no Courier, or the probe broke */
    }
    if (st == 0) {
        courier_cmd = it_tunnel("courier-tunnel", "courier-async", NULL, 0);
        IT_RUN(t_cu_connect_append);
        IT_RUN(t_cu_move_fallback);
        IT_RUN(t_cu_unselect);
        if (K != NULL)
            imk_conn_free(K);
        IT_RUN(t_cu_chain_logout);
        IT_RUN(t_cu_free_between_commands);
        IT_RUN(t_cu_free_in_first_done);
        IT_RUN(t_cu_free_in_last_done);
        IT_RUN(t_cu_free_outside);
        free(courier_cmd);
    }
    return test_finish();
}
