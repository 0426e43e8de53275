/* SPDX-License-Identifier: MIT */
/*
 * test_it_concurrency.c - the founding document's case, for real: while
 * connection A reads a mailbox, connection B changes it, and afterwards A's
 * mailbox view must equal the server's truth.
 *
 * Timo Sirainen's question to the Perl library's maintainer (DESIGN.md,
 * SEED-progress-messages.txt): "I'm also wondering how your client will
 * behave when receiving unsolicited FETCH replies caused by other
 * concurrent clients ... that would require tracking the
 * EXPUNGE/EXISTS/FETCH replies, which could happen as a result of most of
 * the IMAP commands". This test makes those replies happen, many times, at
 * random, against a private Dovecot daemon.
 *
 * One run (a seed, a mode, with or without CONDSTORE):
 *   1. a fresh mailbox of 1,000 messages (1-16 KiB, random flags) is
 *      written as Maildir files before the server first sees it;
 *   2. A (the library, TCP) selects it, with (CONDSTORE) or without;
 *   3. mode "fetch": A runs UID FETCH 1:* (UID FLAGS [MODSEQ] BODY.PEEK[])
 *      through the pull iterator, and every few messages B (a second
 *      connection of the library, same process) makes 1-3 changes;
 *      mode "idle": A learns UIDs and flags (UID FETCH 1:* (UID FLAGS
 *      [MODSEQ])), then IDLEs while B, in a child process, makes its
 *      changes;
 *      the 100 changes: +FLAGS / -FLAGS on one or several random messages
 *      (system flags and keywords), expunges (STORE \Deleted + UID
 *      EXPUNGE), APPENDs with random flags;
 *   4. B done, A finishes its FETCH and sends NOOP;
 *   5. a FRESH connection C reads the truth: STATUS MESSAGES, then EXAMINE
 *      and UID FETCH 1:* (UID FLAGS [MODSEQ]);
 *   6. A's view must match it: the message count; for every sequence
 *      number, the UID (messages B appended may still have UID 0: a server
 *      need not say a new message's UID until asked, but every message that
 *      was there at SELECT must be known) and the flags (order-insensitive,
 *      \Recent ignored), and seq_of_uid(uid) == seq;
 *   7. A catches up the way a client does (UID FETCH <uidnext at SELECT>:*
 *      (UID FLAGS [MODSEQ])), and then the view must match the truth
 *      completely, MODSEQ included in the CONDSTORE runs.
 *
 * Seeds: IMK_STRESS_SEED (default: from the clock, printed) is the first,
 * IMK_STRESS_SEEDS (default 5) how many. B's choices follow from the seed;
 * how they interleave with A's reading depends on timing, so a rerun with
 * the printed seed repeats the changes, not necessarily every interleaving.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_stress.h"
#include "test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_MESSAGES 1000
#define N_CHANGES 100
#define FLAGS_CAP 256

static it_dovecot dv;
static char maildir_root[1100];
static uid_t mail_uid;
static gid_t mail_gid;
static unsigned run_serial;

/* ---- messages --------------------------------------------------------- */

/* A CRLF message of about `size` bytes; *len_out its exact length. */
static char *make_message(stress_rng *r, const char *subject, size_t size, size_t *len_out)
{
    char header[512];
    int hn = snprintf(header, sizeof header,
                      "From: Stress <stress@example.org>\r\n"
                      "To: Alice <alice@example.org>\r\n"
                      "Subject: %s\r\n"
                      "Message-ID: <%s.%016" PRIx64 "@example.org>\r\n"
                      "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                      "\r\n",
                      subject, subject, stress_rng_next(r));
    size_t hlen = (size_t)hn;
    if (size < hlen + 64)
        size = hlen + 64;
    char *m = malloc(size);
    if (m == NULL)
        return NULL;
    memcpy(m, header, hlen);
    size_t at = hlen;
    while (at + 2 < size) {
        size_t line = 20 + stress_rng_below(r, 58);
        for (size_t i = 0; i < line && at + 2 < size; i++)
            m[at++] = (char)('a' + stress_rng_below(r, 26));
        m[at++] = '\r';
        m[at++] = '\n';
    }
    *len_out = at;
    return m;
}

/* Maildir info letters (ASCII order) and the same flags for IMAP. */
static const struct {
    char letter;
    const char *imap;
} sys_flags[] = {
    {'D', "\\Draft"}, {'F', "\\Flagged"}, {'R', "\\Answered"}, {'S', "\\Seen"}, {'T', "\\Deleted"}};

/* Fill a mailbox directory with N_MESSAGES messages. */
static int fill_mailbox(const char *dir, stress_rng *r)
{
    if (stress_maildir_create(dir, mail_uid, mail_gid) != 0)
        return -1;
    for (unsigned k = 1; k <= N_MESSAGES; k++) {
        char subject[64], info[8];
        snprintf(subject, sizeof subject, "stress-%u", k);
        size_t n = 0;
        for (size_t f = 0; f < sizeof sys_flags / sizeof sys_flags[0]; f++) {
            /* \Deleted rarely: B's expunges are UID EXPUNGE of their own. */
            unsigned odds = sys_flags[f].letter == 'T' ? 20 : 3;
            if (stress_rng_below(r, odds) == 0)
                info[n++] = sys_flags[f].letter;
        }
        info[n] = '\0';
        size_t len;
        char *m = make_message(r, subject, 1024 + stress_rng_below(r, 15 * 1024), &len);
        if (m == NULL)
            return -1;
        int rc = stress_maildir_put(dir, k, info, m, len, mail_uid, mail_gid);
        free(m);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- connections ------------------------------------------------------ */

static imk_conn *connect_daemon(const char *label)
{
    /* Cleartext to 127.0.0.1: Dovecot counts loopback as secured. */
    imk_conn_options o = it_options(label);
    o.host = "127.0.0.1";
    o.port = dv.imap_port;
    o.security = IMK_SECURITY_NONE;
    o.allow_cleartext_password = 1;
    return it_connect_login(&o, IT_USER, IT_PASSWORD);
}

static int select_box(imk_conn *c, const char *box, int condstore, int readonly)
{
    imk_select_params p;
    memset(&p, 0, sizeof p);
    p.condstore = condstore;
    p.readonly = readonly;
    const imk_result *r = NULL;
    int rc = imk_conn_select(c, box, &p, &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK) {
        fprintf(stderr, "SELECT %s: %s: %s %s\n", box, imk_error_name(rc), imk_conn_error(c),
                r != NULL ? it_describe(r) : "");
        return -1;
    }
    return 0;
}

/* Drain an iterator; counts MESSAGE records. Returns the end's code. */
static int fetch_all(imk_conn *c, const char *set, const char *items, size_t *records,
                     const imk_result **res)
{
    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(c, 1, set, items, &it);
    if (rc < 0) {
        fprintf(stderr, "UID FETCH %s %s: %s: %s\n", set, items, imk_error_name(rc),
                imk_conn_error(c));
        return rc;
    }
    imk_fetch_item item;
    size_t n = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type == IMK_FI_MESSAGE)
            n++;
    }
    int end = imk_fetch_iter_end(it, res);
    if (records != NULL)
        *records = n;
    if (rc < 0 || end < 0)
        fprintf(stderr, "UID FETCH %s %s: next %s, end %s: %s\n", set, items, imk_error_name(rc),
                imk_error_name(end), imk_conn_error(c));
    return rc < 0 ? rc : end;
}

/* ---- B: the changes --------------------------------------------------- */

typedef struct changer {
    imk_conn *c;
    const char *box;
    stress_rng rng;
    uint32_t *live; /* UIDs B believes exist */
    size_t n_live, cap_live;
    unsigned done; /* changes made */
    unsigned n_flag, n_multi, n_expunge, n_expunged, n_append;
    int failed;
} changer;

static const char *const flag_pool[] = {"\\Seen",  "\\Flagged", "\\Answered", "\\Draft",
                                        "$Stress", "$Label2",   "\\Deleted"};

static int changer_begin(changer *b, const char *box, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    b->box = box;
    stress_rng_seed(&b->rng, seed ^ 0xB0B0B0B0ull);
    b->c = connect_daemon("B");
    if (b->c == NULL || select_box(b->c, box, 0, 0) != 0)
        return -1;
    imk_fetch_iter *it = NULL;
    if (imk_conn_fetch(b->c, 1, "1:*", "(UID)", &it) < 0)
        return -1;
    imk_fetch_item item;
    int rc;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type != IMK_FI_MESSAGE || !(item.msg->present & IMK_FETCH_UID))
            continue;
        if (b->n_live == b->cap_live) {
            b->cap_live = b->cap_live ? 2 * b->cap_live : 1024;
            b->live = realloc(b->live, b->cap_live * sizeof *b->live);
            if (b->live == NULL)
                return -1;
        }
        b->live[b->n_live++] = item.msg->uid;
    }
    if (imk_fetch_iter_end(it, NULL) < 0 || rc < 0)
        return -1;
    return b->n_live == N_MESSAGES ? 0 : -1;
}

static void changer_end(changer *b)
{
    if (b->c != NULL) {
        imk_conn_logout(b->c);
        imk_conn_free(b->c);
    }
    free(b->live);
    memset(b, 0, sizeof *b);
}

static int ok_result(imk_conn *c, int rc, const imk_result *r, const char *what)
{
    if (rc == 0 && r != NULL && r->status == IMK_STATUS_OK)
        return 1;
    fprintf(stderr, "B: %s: %s: %s %s\n", what, imk_error_name(rc), imk_conn_error(c),
            r != NULL ? it_describe(r) : "");
    return 0;
}

/* Pick k distinct live UIDs (k <= n_live) into a set string; with
 * `remove`, they leave the live list. */
static size_t pick_set(changer *b, size_t k, int remove, char *set, size_t cap)
{
    set[0] = '\0';
    if (k > b->n_live)
        k = b->n_live;
    size_t len = 0;
    /* A partial Fisher-Yates shuffle brings k distinct UIDs to the front. */
    for (size_t i = 0; i < k; i++) {
        size_t j = i + stress_rng_below(&b->rng, (uint32_t)(b->n_live - i));
        uint32_t uid = b->live[j];
        b->live[j] = b->live[i];
        b->live[i] = uid;
        int n = snprintf(set + len, cap - len, "%s%" PRIu32, len ? "," : "", uid);
        if (n > 0 && (size_t)n < cap - len)
            len += (size_t)n;
    }
    if (remove) {
        for (size_t i = k; i-- > 0;)
            b->live[i] = b->live[--b->n_live];
    }
    return k;
}

/* One change: a flag change on one or a few messages, an expunge of 1-3,
 * or an APPEND. */
static int change_once(changer *b)
{
    const imk_result *r = NULL;
    unsigned kind = stress_rng_below(&b->rng, 100);
    char set[256];
    int rc;
    if (b->n_live < 10)
        kind = 90; /* keep the mailbox from emptying: append */
    if (kind < 55) {
        size_t k = kind < 45 ? 1 : 2 + stress_rng_below(&b->rng, 4);
        pick_set(b, k, 0, set, sizeof set);
        const char *flags[2];
        size_t nf = 1 + stress_rng_below(&b->rng, 2);
        for (size_t i = 0; i < nf; i++)
            flags[i] = flag_pool[stress_rng_below(&b->rng, 6)]; /* not \Deleted */
        if (nf == 2 && flags[0] == flags[1])
            nf = 1;
        const char *action = stress_rng_below(&b->rng, 2) ? "+FLAGS.SILENT" : "-FLAGS.SILENT";
        rc = imk_conn_store(b->c, 1, set, action, flags, nf, 0, &r);
        if (!ok_result(b->c, rc, r, "UID STORE"))
            return -1;
        if (k == 1)
            b->n_flag++;
        else
            b->n_multi++;
    } else if (kind < 80) {
        size_t k = 1 + stress_rng_below(&b->rng, 3);
        size_t got = pick_set(b, k, 1, set, sizeof set);
        const char *del[] = {"\\Deleted"};
        rc = imk_conn_store(b->c, 1, set, "+FLAGS.SILENT", del, 1, 0, &r);
        if (!ok_result(b->c, rc, r, "UID STORE \\Deleted"))
            return -1;
        rc = imk_conn_expunge(b->c, set, &r);
        if (!ok_result(b->c, rc, r, "UID EXPUNGE"))
            return -1;
        b->n_expunge++;
        b->n_expunged += (unsigned)got;
    } else {
        char subject[64];
        snprintf(subject, sizeof subject, "appended-%u", b->done);
        size_t len;
        char *m = make_message(&b->rng, subject, 512 + stress_rng_below(&b->rng, 4096), &len);
        if (m == NULL)
            return -1;
        const char *flags[3];
        size_t nf = 0;
        for (size_t i = 0; i < 3; i++)
            if (stress_rng_below(&b->rng, 2))
                flags[nf++] = flag_pool[i * 2]; /* \Seen, \Answered, $Stress */
        imk_append_msg am = IMK_APPEND_MSG_INIT;
        am.data = m;
        am.size = len;
        am.flags = flags;
        am.n_flags = nf;
        rc = imk_conn_append(b->c, b->box, &am, 1, &r);
        free(m);
        if (!ok_result(b->c, rc, r, "APPEND"))
            return -1;
        if (!r->has_appenduid || r->dest_uids.count == 0) {
            fprintf(stderr, "B: APPEND without APPENDUID: %s\n", it_describe(r));
            return -1;
        }
        if (b->n_live == b->cap_live) {
            b->cap_live *= 2;
            b->live = realloc(b->live, b->cap_live * sizeof *b->live);
            if (b->live == NULL)
                return -1;
        }
        b->live[b->n_live++] = r->dest_uids.ranges[0].first;
        b->n_append++;
    }
    b->done++;
    return 0;
}

/* ---- the truth -------------------------------------------------------- */

typedef struct truth {
    uint32_t count;
    uint32_t *uid;
    char (*flags)[FLAGS_CAP];
    uint64_t *modseq;
} truth;

static void truth_free(truth *t)
{
    free(t->uid);
    free(t->flags);
    free(t->modseq);
    memset(t, 0, sizeof *t);
}

/* A fresh connection: STATUS, EXAMINE, UID FETCH 1:* (UID FLAGS [MODSEQ]). */
static int read_truth(const char *box, int condstore, truth *t)
{
    memset(t, 0, sizeof *t);
    imk_conn *c = connect_daemon("C");
    if (c == NULL)
        return -1;
    const imk_result *r = NULL;
    int rc = imk_conn_status(c, box, "MESSAGES", &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK || r->status_count != 1 ||
        !(r->statuses[0].present & IMK_STATUS_MESSAGES)) {
        fprintf(stderr, "C: STATUS %s: %s %s\n", box, imk_error_name(rc), imk_conn_error(c));
        imk_conn_free(c);
        return -1;
    }
    t->count = (uint32_t)r->statuses[0].messages;
    t->uid = calloc(t->count + 1, sizeof *t->uid);
    t->flags = calloc(t->count + 1, sizeof *t->flags);
    t->modseq = calloc(t->count + 1, sizeof *t->modseq);
    if (t->uid == NULL || t->flags == NULL || t->modseq == NULL ||
        select_box(c, box, condstore, 1) != 0) {
        imk_conn_free(c);
        return -1;
    }
    imk_fetch_iter *it = NULL;
    rc = imk_conn_fetch(c, 1, "1:*", condstore ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)", &it);
    if (rc < 0) {
        imk_conn_free(c);
        return -1;
    }
    imk_fetch_item item;
    int bad = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type != IMK_FI_MESSAGE)
            continue;
        const imk_fetch *f = item.msg;
        if (f->seq == 0 || f->seq > t->count || !(f->present & IMK_FETCH_UID) ||
            !(f->present & IMK_FETCH_FLAGS) || t->uid[f->seq] != 0) {
            fprintf(stderr, "C: unexpected FETCH record for seq %" PRIu32 " (uid %" PRIu32 ")\n",
                    f->seq, f->uid);
            bad = 1;
            continue;
        }
        t->uid[f->seq] = f->uid;
        stress_flags_canon(f->flags, t->flags[f->seq], FLAGS_CAP);
        t->modseq[f->seq] = f->modseq;
    }
    const imk_result *fr = NULL;
    int end = imk_fetch_iter_end(it, &fr);
    if (rc < 0 || end < 0 || fr == NULL || fr->status != IMK_STATUS_OK)
        bad = 1;
    for (uint32_t s = 1; s <= t->count; s++) {
        if (t->uid[s] == 0 || (s > 1 && t->uid[s] <= t->uid[s - 1]) ||
            (condstore && t->modseq[s] == 0)) {
            fprintf(stderr, "C: seq %" PRIu32 " has uid %" PRIu32 " (modseq %" PRIu64 ")\n", s,
                    t->uid[s], t->modseq[s]);
            bad = 1;
            break;
        }
    }
    imk_conn_logout(c);
    imk_conn_free(c);
    return bad ? -1 : 0;
}

/* ---- the comparison --------------------------------------------------- */

/* A's view against the truth. `complete`: every UID, flag set (and
 * MODSEQ with condstore) must be known; otherwise messages that were not
 * there at SELECT (uid >= uidnext0) may still be unknown. Returns the
 * number of differences (the first ones printed). */
static unsigned compare_view(imk_conn *a, const truth *t, uint32_t uidnext0, int complete,
                             int condstore, const char *stage)
{
    const imk_view *v = imk_conn_view(a);
    unsigned diffs = 0, shown = 0, unknown = 0;
    uint32_t exists = imk_view_exists(v);
    if (exists != t->count) {
        fprintf(stderr, "%s: A's view has %" PRIu32 " messages, the server %" PRIu32 "\n", stage,
                exists, t->count);
        diffs++;
    }
    uint32_t n = exists < t->count ? exists : t->count;
    for (uint32_t s = 1; s <= n; s++) {
        imk_view_message m;
        char why[512] = "";
        if (!imk_view_message_at(v, s, &m)) {
            snprintf(why, sizeof why, "no message at seq");
        } else if (m.uid == 0) {
            if (complete || t->uid[s] < uidnext0)
                snprintf(why, sizeof why, "UID unknown, server has %" PRIu32, t->uid[s]);
            else
                unknown++;
        } else if (m.uid != t->uid[s]) {
            snprintf(why, sizeof why, "UID %" PRIu32 ", server has %" PRIu32, m.uid, t->uid[s]);
        } else if (imk_view_seq_of_uid(v, m.uid) != s) {
            snprintf(why, sizeof why, "seq_of_uid(%" PRIu32 ") = %" PRIu32, m.uid,
                     imk_view_seq_of_uid(v, m.uid));
        } else if (!m.flags_known) {
            if (complete || t->uid[s] < uidnext0)
                snprintf(why, sizeof why, "UID %" PRIu32 ": flags unknown, server has (%s)", m.uid,
                         t->flags[s]);
        } else {
            char mine[FLAGS_CAP];
            stress_flags_canon(m.flags, mine, sizeof mine);
            if (strcmp(mine, t->flags[s]) != 0)
                snprintf(why, sizeof why, "UID %" PRIu32 ": flags (%s), server has (%s)", m.uid,
                         mine, t->flags[s]);
            else if (condstore && complete && m.modseq != t->modseq[s])
                snprintf(why, sizeof why,
                         "UID %" PRIu32 ": MODSEQ %" PRIu64 ", server has %" PRIu64, m.uid,
                         m.modseq, t->modseq[s]);
        }
        if (why[0] != '\0') {
            diffs++;
            if (shown++ < 12)
                fprintf(stderr, "%s: seq %" PRIu32 ": %s\n", stage, s, why);
        }
    }
    if (diffs > shown)
        fprintf(stderr, "%s: ... %u differences in all\n", stage, diffs);
    if (!complete)
        printf("concurrency:   %s: %u new messages without a UID yet\n", stage, unknown);
    return diffs;
}

/* ---- one run ---------------------------------------------------------- */

typedef enum mode { MODE_FETCH, MODE_IDLE } mode;

typedef struct event_counts {
    unsigned by_type[32];
} event_counts;

static void count_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    (void)c;
    event_counts *e = user;
    unsigned t = (unsigned)ev->type;
    e->by_type[t < 32 ? t : 31]++;
}

/* "1003 FLAGS, 2 EXISTS, ..." */
static void print_events(const char *when, const event_counts *e)
{
    static const char *const names[] = {
        "GREETING",   "DONE",     "NOTICE",       "PROGRESS",    "EXISTS",
        "EXPUNGE",    "FLAGS",    "UIDVALIDITY",  "UNSOLICITED", "BODY_BEGIN",
        "BODY_CHUNK", "BODY_END", "CONTINUATION", "IDLING",      "PROTOCOL_ERROR",
        "BYE",        "CLOSED",   "VANISHED",     "FETCH",       "COMPRESSING"};
    char line[512] = "";
    size_t len = 0;
    for (unsigned t = 0; t < 32; t++) {
        if (e->by_type[t] == 0)
            continue;
        int n = snprintf(line + len, sizeof line - len, "%s%u %s", len ? ", " : "", e->by_type[t],
                         t < sizeof names / sizeof names[0] ? names[t] : "?");
        if (n > 0 && (size_t)n < sizeof line - len)
            len += (size_t)n;
    }
    printf("concurrency:   A's events %s: %s\n", when, len ? line : "none");
}

typedef struct child_job {
    const char *box;
    uint64_t seed;
} child_job;

/* mode idle: B in a child process. */
static int child_changes(void *arg)
{
    child_job *j = arg;
    changer b;
    if (changer_begin(&b, j->box, j->seed) != 0) {
        fprintf(stderr, "B (child): setup failed\n");
        changer_end(&b);
        return 1;
    }
    int rc = 0;
    /* Short pauses spread the changes over several IDLE periods, so some
     * arrive around A's DONE / IDLE turnarounds. */
    while (b.done < N_CHANGES && rc == 0) {
        rc = change_once(&b);
        stress_sleep_ms((int)stress_rng_below(&b.rng, 12));
    }
    printf("concurrency:   B (child): %u changes: %u flag, %u multi-flag, %u expunges (%u "
           "messages), %u appends\n",
           b.done, b.n_flag, b.n_multi, b.n_expunge, b.n_expunged, b.n_append);
    changer_end(&b);
    return rc == 0 ? 0 : 1;
}

static void one_run(uint64_t seed, mode md, int condstore)
{
    const char *mname = md == MODE_FETCH ? "fetch" : "idle";
    printf("concurrency: seed=%" PRIu64 " mode=%s condstore=%d (rerun: IMK_STRESS_SEED=%" PRIu64
           " IMK_STRESS_SEEDS=1)\n",
           seed, mname, condstore, seed);
    char box[64], dir[1300];
    snprintf(box, sizeof box, "stress%u", ++run_serial);
    snprintf(dir, sizeof dir, "%s/.%s", maildir_root, box);
    stress_rng rng;
    stress_rng_seed(&rng, seed);
    int64_t t0 = stress_now_ms();
    CHECK_INT(fill_mailbox(dir, &rng), 0);

    imk_conn *a = connect_daemon("A");
    CHECK(a != NULL);
    if (a == NULL)
        return;
    event_counts ev;
    memset(&ev, 0, sizeof ev);
    imk_conn_on_event(a, count_event, &ev);
    CHECK_INT(select_box(a, box, condstore, 0), 0);
    const imk_view *v = imk_conn_view(a);
    CHECK_INT(imk_view_exists(v), N_MESSAGES);
    uint32_t uidnext0 = (uint32_t)imk_view_uidnext(v);
    CHECK(uidnext0 > N_MESSAGES);
    const char *items = condstore ? "(UID FLAGS MODSEQ BODY.PEEK[])" : "(UID FLAGS BODY.PEEK[])";
    const char *meta = condstore ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)";
    unsigned changes = 0;
    size_t records = 0;
    uint64_t body_bytes = 0;
    const imk_result *r = NULL;

    if (md == MODE_FETCH) {
        changer b;
        int brc = changer_begin(&b, box, seed);
        CHECK_INT(brc, 0);
        imk_fetch_iter *it = NULL;
        int rc = imk_conn_fetch(a, 1, "1:*", items, &it);
        CHECK_INT(rc, 0);
        if (rc == 0) {
            imk_fetch_item item;
            unsigned next_change = 1 + stress_rng_below(&rng, 8);
            while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
                if (item.type == IMK_FI_BODY_DATA)
                    body_bytes += item.len;
                if (item.type != IMK_FI_MESSAGE)
                    continue;
                records++;
                if (records == next_change && brc == 0 && b.done < N_CHANGES) {
                    unsigned k = 1 + stress_rng_below(&rng, 3);
                    for (unsigned i = 0; i < k && b.done < N_CHANGES && !b.failed; i++)
                        b.failed = change_once(&b) != 0;
                    next_change = (unsigned)records + 1 + stress_rng_below(&rng, 8);
                }
            }
            CHECK_INT(rc, 0);
            int end = imk_fetch_iter_end(it, &r);
            CHECK_INT(end, 0);
            /* NO [EXPUNGEISSUED] is a legitimate answer when B expunged a
             * message A's FETCH still had to send. */
            CHECK(r != NULL && (r->status == IMK_STATUS_OK || r->status == IMK_STATUS_NO));
            printf("concurrency:   A: UID FETCH 1:* gave %zu records, %" PRIu64
                   " body bytes, %u changes made meanwhile: %s\n",
                   records, body_bytes, b.done, r != NULL ? it_describe(r) : "(no result)");
        }
        /* B finishes what the FETCH did not leave room for. */
        while (brc == 0 && !b.failed && b.done < N_CHANGES)
            b.failed = change_once(&b) != 0;
        CHECK(!b.failed);
        changes = b.done;
        printf("concurrency:   B: %u changes: %u flag, %u multi-flag, %u expunges (%u messages), "
               "%u appends\n",
               b.done, b.n_flag, b.n_multi, b.n_expunge, b.n_expunged, b.n_append);
        changer_end(&b);
    } else {
        CHECK_INT(fetch_all(a, "1:*", meta, &records, &r), 0);
        CHECK_INT(records, N_MESSAGES);
        print_events("during the first UID FETCH 1:*", &ev);
        memset(&ev, 0, sizeof ev);
        child_job job = {box, seed};
        int child = it_child_start(0, child_changes, &job);
        CHECK(child > 0);
        int st = 0, done = child <= 0;
        unsigned idles = 0;
        int64_t deadline = stress_now_ms() + 120000;
        while (!done) {
            int rc = imk_conn_idle(a, 250, 0);
            idles++;
            if (rc != 0) {
                CHECK_INT(rc, 0);
                fprintf(stderr, "IDLE: %s\n", imk_conn_error(a));
                break;
            }
            pid_t w = waitpid((pid_t)child, &st, WNOHANG);
            if (w == (pid_t)child)
                done = 1;
            else if (stress_now_ms() > deadline)
                break;
        }
        if (!done) {
            CHECK(done);
            st = it_child_wait(child) << 8;
        }
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        changes = N_CHANGES;
        printf("concurrency:   A: %u IDLE periods while B worked\n", idles);
    }

    print_events(md == MODE_FETCH ? "during the FETCH and B's changes" : "during IDLE", &ev);
    memset(&ev, 0, sizeof ev);
    r = NULL;
    CHECK_INT(imk_conn_noop(a, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    print_events("during the NOOP", &ev);

    truth t;
    int trc = read_truth(box, condstore, &t);
    CHECK_INT(trc, 0);
    if (trc == 0) {
        unsigned d1 = compare_view(a, &t, uidnext0, 0, condstore, "after NOOP");
        CHECK_INT(d1, 0);
        /* Catch up on the new messages, as a client does. */
        char set[32];
        snprintf(set, sizeof set, "%" PRIu32 ":*", uidnext0);
        CHECK_INT(fetch_all(a, set, meta, NULL, NULL), 0);
        unsigned d2 = compare_view(a, &t, uidnext0, 1, condstore, "after catch-up");
        CHECK_INT(d2, 0);
        printf("concurrency:   %s: %" PRIu32 " messages on the server; A's view %s (%u changes, "
               "%lld ms)\n",
               d1 + d2 == 0 ? "ok" : "MISMATCH", t.count,
               d1 + d2 == 0 ? "matches every UID and flag set" : "differs", changes,
               (long long)(stress_now_ms() - t0));
        if (d1 + d2 != 0)
            fprintf(stderr, "concurrency: FAILED with seed=%" PRIu64 " mode=%s condstore=%d\n",
                    seed, mname, condstore);
    }
    truth_free(&t);
    imk_conn_logout(a);
    imk_conn_free(a);
    if (stress_rmtree(dir) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static uint64_t first_seed;
static unsigned n_seeds = 5;

static void test_concurrent_changes(void)
{
    for (unsigned i = 0; i < n_seeds; i++) {
        uint64_t seed = first_seed + i;
        for (int md = 0; md < 2; md++)
            for (int cs = 0; cs < 2; cs++)
                one_run(seed, (mode)md, cs);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    it_init("test_it_concurrency", 880);
    first_seed = stress_seed("IMK_STRESS_SEED");
    const char *ns = getenv("IMK_STRESS_SEEDS");
    if (ns != NULL && *ns != '\0') {
        char *end;
        long v = strtol(ns, &end, 10);
        if (*end == '\0' && v > 0 && v < 1000)
            n_seeds = (unsigned)v;
    }
    printf("concurrency: seeds %" PRIu64 "..%" PRIu64 " (IMK_STRESS_SEED, IMK_STRESS_SEEDS)\n",
           first_seed, first_seed + n_seeds - 1);

    it_dovecot_start(&dv, 0);
    it_dovecot_maildir(&dv, IT_USER, maildir_root, sizeof maildir_root);
    char parent[1100];
    snprintf(parent, sizeof parent, "%s", maildir_root);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        *slash = '\0';
    if (stress_owner_of(parent, &mail_uid, &mail_gid) != 0 ||
        stress_maildir_create(maildir_root, mail_uid, mail_gid) != 0) {
        fprintf(stderr, "cannot prepare %s: %s\n", maildir_root, strerror(errno));
        return 1;
    }

    IT_RUN(test_concurrent_changes);

    it_dovecot_stop(&dv);
    return test_finish();
}
