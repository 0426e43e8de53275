/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/proto/view.c, the mailbox view.
 *
 * Unit tests walk every apply function through its ordinary cases and its
 * problem cases (the server data that cannot be true: EXPUNGE and FETCH
 * beyond EXISTS, "* 0 FETCH", a shrinking EXISTS, UIDs out of order), with
 * the observer's events checked one by one.
 *
 * The property test is the main proof. A plain-array model of the mailbox
 * (one struct per message, memmove on removal: obviously right, and slow)
 * receives the same long random sequences of EXISTS, EXPUNGE, VANISHED,
 * FETCH (UID, FLAGS, MODSEQ, sequence numbers out of range) and UIDVALIDITY
 * changes as the view, in bursts that grow, shrink, fill UIDs and churn
 * flags: 40 runs of 5,000 steps with fixed seeds (IMK_VIEW_RUNS=N for more;
 * millions of steps were run while writing the view). After every step the
 * observer's events must be the ones the model expects, and the two are
 * compared - every seq -> UID, every UID -> seq, flags, MODSEQ, EXISTS - in
 * full for views up to 32 messages, else for 8 random messages and in full
 * every 16th step; imk__view_check() must hold (every step up to 64
 * messages, every 4th above). Block sizes of 2 to 16 make a few hundred
 * messages span many blocks, so merging, emptied blocks, compaction, the
 * dense and interpolated lookups and both trees are all exercised; some
 * runs also fail allocations at random, and an IMK_ENOMEM must leave the
 * view equal to the model, with no event.
 *
 * Memory: a 1,000,000-message view with every UID, flag set and MODSEQ
 * known must cost at most 16 bytes per message (a size, not a time).
 */
#include "test.h"

#include "proto/view.h"
#include "util/alloc.h"

#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Random numbers: xorshift64*, fixed seeds                            */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static uint32_t rnd(uint32_t n) /* 0..n-1 */
{
    return n == 0 ? 0 : (uint32_t)(rng() % n);
}

/* ------------------------------------------------------------------ */
/* Flags: names the tests send, and what each normalises to            */
/* ------------------------------------------------------------------ */

/* Canonical names, one per bit. System flags are case-insensitive; the
 * others are kept byte for byte, so "$Junk" and "$junk" differ, as do
 * "\Other" and "\other" (not a system flag). */
static const char *const canonical_names[] = {
    "\\Answered", "\\Deleted",  "\\Draft", "\\Flagged", "\\Recent", "\\Seen",  "$Junk",
    "$junk",      "$Forwarded", "\\Other", "\\other",   "NonJunk",  "$label1",
};
#define NBITS (sizeof(canonical_names) / sizeof(canonical_names[0]))

typedef struct flag_name {
    const char *name;
    unsigned bit;
} flag_name;

static const flag_name spellings[] = {
    {"\\Seen", 5},     {"\\SEEN", 5},    {"\\seen", 5},    {"\\Answered", 0},
    {"\\aNSWERED", 0}, {"\\Flagged", 3}, {"\\Deleted", 1}, {"\\Draft", 2},
    {"\\Recent", 4},   {"$Junk", 6},     {"$junk", 7},     {"$Forwarded", 8},
    {"\\Other", 9},    {"\\other", 10},  {"NonJunk", 11},  {"$label1", 12},
};
#define NSPELLINGS (sizeof(spellings) / sizeof(spellings[0]))

/* The bitmask of a flag list as the view returns it; also checks that the
 * list is normalised (canonical names, strictly ascending bytes).
 * Returns UINT32_MAX when it is not. */
static uint32_t mask_of(imk_strlist l)
{
    uint32_t mask = 0;
    for (size_t i = 0; i < l.count; i++) {
        unsigned bit = NBITS;
        for (unsigned k = 0; k < NBITS; k++)
            if (strlen(canonical_names[k]) == l.items[i].len &&
                memcmp(canonical_names[k], l.items[i].data, l.items[i].len) == 0)
                bit = k;
        if (bit == NBITS || l.items[i].data[l.items[i].len] != '\0')
            return UINT32_MAX;
        if (i > 0) {
            size_t a = l.items[i - 1].len, b = l.items[i].len;
            int c = memcmp(l.items[i - 1].data, l.items[i].data, a < b ? a : b);
            if (c > 0 || (c == 0 && a >= b))
                return UINT32_MAX;
        }
        mask |= 1u << bit;
    }
    return mask;
}

/* A flag list of `n` random spellings (repeats allowed) in `items`. */
static uint32_t random_flags(imk_str *items, size_t n)
{
    uint32_t mask = 0;
    for (size_t i = 0; i < n; i++) {
        const flag_name *f = &spellings[rnd(NSPELLINGS)];
        items[i].data = f->name;
        items[i].len = strlen(f->name);
        mask |= 1u << f->bit;
    }
    return mask;
}

static imk_str S(const char *s)
{
    imk_str r = {s, strlen(s)};
    return r;
}

/* ------------------------------------------------------------------ */
/* Observer: a log of events                                           */
/* ------------------------------------------------------------------ */

enum { EV_EXISTS = 1, EV_EXPUNGE, EV_FLAGS, EV_UIDVALIDITY, EV_PROBLEM };

typedef struct event {
    int type;
    uint64_t a, b; /* exists old/new, expunge seq/uid, flags seq/uid, uidvalidity */
    uint32_t mask; /* flags: bitmask of the list given */
    uint64_t modseq;
} event;

typedef struct event_log {
    event *e;
    size_t n, cap;
    char last_problem[256];
} event_log;

static void log_push(event_log *log, event ev)
{
    if (log->n == log->cap) {
        log->cap = log->cap == 0 ? 64 : log->cap * 2;
        log->e = realloc(log->e, log->cap * sizeof(event));
        if (log->e == NULL)
            abort();
    }
    log->e[log->n++] = ev;
}

static void on_exists(void *user, uint32_t old_count, uint32_t new_count)
{
    event ev = {EV_EXISTS, old_count, new_count, 0, 0};
    log_push(user, ev);
}

static void on_expunge(void *user, uint32_t seq, uint32_t uid)
{
    event ev = {EV_EXPUNGE, seq, uid, 0, 0};
    log_push(user, ev);
}

static void on_flags(void *user, uint32_t seq, uint32_t uid, imk_strlist flags, uint64_t modseq)
{
    event ev = {EV_FLAGS, seq, uid, mask_of(flags), modseq};
    log_push(user, ev);
}

static void on_uidvalidity(void *user, uint64_t old_value, uint64_t new_value)
{
    event ev = {EV_UIDVALIDITY, old_value, new_value, 0, 0};
    log_push(user, ev);
}

static void on_problem(void *user, const char *message)
{
    event_log *log = user;
    event ev = {EV_PROBLEM, 0, 0, 0, 0};
    snprintf(log->last_problem, sizeof(log->last_problem), "%s", message);
    log_push(log, ev);
}

static void observe(imk_view *v, event_log *log)
{
    memset(log, 0, sizeof(*log));
    imk__view_observer obs = {on_exists, on_expunge, on_flags, on_uidvalidity, on_problem, log};
    imk__view_set_observer(v, &obs);
}

static int events_equal(const event_log *got, const event_log *want)
{
    if (got->n != want->n)
        return 0;
    for (size_t i = 0; i < got->n; i++) {
        const event *g = &got->e[i], *w = &want->e[i];
        if (g->type != w->type || g->a != w->a || g->b != w->b || g->mask != w->mask ||
            g->modseq != w->modseq)
            return 0;
    }
    return 1;
}

static void print_events(const char *what, const event_log *log)
{
    fprintf(stderr, "   %s:", what);
    for (size_t i = 0; i < log->n && i < 12; i++)
        fprintf(stderr, " [%d %llu %llu %x %llu]", log->e[i].type, (unsigned long long)log->e[i].a,
                (unsigned long long)log->e[i].b, log->e[i].mask,
                (unsigned long long)log->e[i].modseq);
    fprintf(stderr, "%s\n", log->n > 12 ? " ..." : "");
}

/* ------------------------------------------------------------------ */
/* Helpers for the unit tests                                          */
/* ------------------------------------------------------------------ */

static imk_view *new_view(event_log *log)
{
    imk_view *v = NULL;
    CHECK_INT(imk__view_new(NULL, &v), 0);
    if (v == NULL)
        abort();
    if (log != NULL)
        observe(v, log);
    return v;
}

static int fetch_uid(imk_view *v, uint32_t seq, uint32_t uid)
{
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = seq;
    f.present = IMK_FETCH_UID;
    f.uid = uid;
    return imk__view_fetch(v, &f);
}

static int fetch_flags(imk_view *v, uint32_t seq, const imk_str *items, size_t count)
{
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = seq;
    f.present = IMK_FETCH_FLAGS;
    f.flags.count = count;
    f.flags.items = items;
    return imk__view_fetch(v, &f);
}

static int fetch_modseq(imk_view *v, uint32_t seq, uint64_t modseq)
{
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = seq;
    f.present = IMK_FETCH_MODSEQ;
    f.modseq = modseq;
    return imk__view_fetch(v, &f);
}

static int vanish(imk_view *v, const imk_range *ranges, size_t count)
{
    imk_seqset set = {count, ranges};
    return imk__view_vanished(v, &set);
}

static int vanish1(imk_view *v, uint32_t first, uint32_t last)
{
    imk_range r = {first, last};
    return vanish(v, &r, 1);
}

/* The UIDs of the view as one string "1 2 0 5" for readable checks. */
static void uids_string(const imk_view *v, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t seq = 1; seq <= imk_view_exists(v) && len + 12 < size; seq++)
        len += (size_t)snprintf(out + len, size - len, "%s%lu", seq > 1 ? " " : "",
                                (unsigned long)imk_view_uid_of_seq(v, seq));
}

#define CHECK_UIDS(v, expect)                                                                      \
    do {                                                                                           \
        char uids_[512];                                                                           \
        uids_string((v), uids_, sizeof(uids_));                                                    \
        CHECK_STR(uids_, expect);                                                                  \
    } while (0)

/* A view of n messages with UIDs uid0, uid0 + step, ... */
static imk_view *filled_view(event_log *log, uint32_t block, uint32_t n, uint32_t uid0,
                             uint32_t step)
{
    imk_view *v = new_view(NULL);
    CHECK_INT(imk__view_set_block_size(v, block), 0);
    CHECK_INT(imk__view_exists(v, n), 0);
    for (uint32_t i = 0; i < n; i++)
        CHECK_INT(fetch_uid(v, i + 1, uid0 + i * step), 0);
    if (log != NULL)
        observe(v, log);
    return v;
}

static size_t count_type(const event_log *log, int type)
{
    size_t n = 0;
    for (size_t i = 0; i < log->n; i++)
        n += log->e[i].type == type;
    return n;
}

/* ------------------------------------------------------------------ */
/* Unit tests                                                          */
/* ------------------------------------------------------------------ */

static void test_new_free(void)
{
    imk_view *v = new_view(NULL);
    CHECK_INT(imk_view_exists(v), 0);
    CHECK_INT(imk_view_uidvalidity(v), 0);
    CHECK_INT(imk_view_uidnext(v), 0);
    CHECK_INT(imk_view_highest_modseq(v), 0);
    CHECK_INT(imk_view_read_only(v), 0);
    CHECK_INT(imk_view_flags(v).count, 0);
    CHECK_INT(imk_view_permanent_flags(v).count, 0);
    CHECK_INT(imk_view_uid_of_seq(v, 1), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 1), 0);
    imk_view_message m;
    CHECK_INT(imk_view_message_at(v, 1, &m), 0);
    CHECK(imk_view_memory(v) > 0);
    CHECK(imk__view_check(v));
    /* no observer at all: every function still works */
    CHECK_INT(imk__view_exists(v, 3), 0);
    CHECK_INT(imk__view_exists(v, 2), 0);
    CHECK_INT(imk__view_expunge(v, 9), 0);
    CHECK_INT(fetch_uid(v, 1, 10), 0);
    CHECK_INT(vanish1(v, 10, 10), 0);
    imk__view_set_uidvalidity(v, 5);
    imk__view_set_uidvalidity(v, 6);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    imk__view_free(NULL);

    /* NULL view for the readers */
    CHECK_INT(imk_view_exists(NULL), 0);
    CHECK_INT(imk_view_memory(NULL), 0);
    CHECK_INT(imk_view_message_at(NULL, 1, &m), 0);
    CHECK_INT(imk_view_seq_of_uid(NULL, 1), 0);
    CHECK_INT(imk_view_uid_of_seq(NULL, 1), 0);
    CHECK_INT(imk__view_check(NULL), 0);
}

static void test_exists(void)
{
    event_log log;
    imk_view *v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 0), 0); /* 0 -> 0: no change, no event */
    CHECK_INT(log.n, 0);
    CHECK_INT(imk__view_exists(v, 3), 0);
    CHECK_INT(imk__view_exists(v, 3), 0); /* the same count again: no event */
    CHECK_INT(imk__view_exists(v, 700), 0);
    CHECK_INT(log.n, 2);
    CHECK_INT(log.e[0].type, EV_EXISTS);
    CHECK_INT(log.e[0].a, 0);
    CHECK_INT(log.e[0].b, 3);
    CHECK_INT(log.e[1].a, 3);
    CHECK_INT(log.e[1].b, 700);
    CHECK_INT(imk_view_exists(v), 700);
    imk_view_message m;
    CHECK_INT(imk_view_message_at(v, 700, &m), 1);
    CHECK_INT(m.seq, 700);
    CHECK_INT(m.uid, 0);
    CHECK_INT(m.flags_known, 0);
    CHECK_INT(m.flags.count, 0);
    CHECK_INT(m.modseq, 0);
    CHECK_INT(imk_view_message_at(v, 701, &m), 0);
    CHECK_INT(imk_view_message_at(v, 0, &m), 0);

    /* a shrinking EXISTS is impossible: reported, ignored */
    CHECK_INT(imk__view_exists(v, 699), 0);
    CHECK_INT(log.n, 3);
    CHECK_INT(log.e[2].type, EV_PROBLEM);
    CHECK(strstr(log.last_problem, "699") != NULL);
    CHECK_INT(imk_view_exists(v), 700);

    /* the limit */
    imk__view_set_max_messages(v, 1000);
    CHECK_INT(imk__view_exists(v, 1001), 0);
    CHECK_INT(log.e[log.n - 1].type, EV_PROBLEM);
    CHECK(strstr(log.last_problem, "limit") != NULL);
    CHECK_INT(imk_view_exists(v), 700);
    CHECK_INT(imk__view_exists(v, 1000), 0);
    CHECK_INT(imk_view_exists(v), 1000);
    imk__view_set_max_messages(v, 0); /* no limit */
    CHECK_INT(imk__view_exists(v, 5000), 0);
    CHECK_INT(imk_view_exists(v), 5000);
    CHECK(imk__view_check(v));

    /* growth one message at a time, across blocks */
    for (uint32_t n = 5001; n <= 5600; n++)
        CHECK_INT(imk__view_exists(v, n), 0);
    CHECK_INT(imk_view_exists(v), 5600);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

static void test_expunge(void)
{
    event_log log;
    imk_view *v = filled_view(&log, 4, 10, 10, 10); /* UIDs 10 20 ... 100 */
    CHECK_UIDS(v, "10 20 30 40 50 60 70 80 90 100");
    CHECK_INT(imk__view_expunge(v, 3), 0);
    CHECK_UIDS(v, "10 20 40 50 60 70 80 90 100");
    CHECK_INT(log.n, 1);
    CHECK_INT(log.e[0].type, EV_EXPUNGE);
    CHECK_INT(log.e[0].a, 3);
    CHECK_INT(log.e[0].b, 30);
    CHECK_INT(imk__view_expunge(v, 9), 0); /* the last one */
    CHECK_INT(imk__view_expunge(v, 1), 0); /* the first one */
    CHECK_UIDS(v, "20 40 50 60 70 80 90");
    CHECK_INT(imk_view_seq_of_uid(v, 20), 1);
    CHECK_INT(imk_view_seq_of_uid(v, 90), 7);
    CHECK_INT(imk_view_seq_of_uid(v, 30), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 10), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 100), 0);
    CHECK(imk__view_check(v));

    /* impossible: 0 and beyond EXISTS */
    log.n = 0;
    CHECK_INT(imk__view_expunge(v, 0), 0);
    CHECK_INT(imk__view_expunge(v, 8), 0);
    CHECK_INT(log.n, 2);
    CHECK_INT(log.e[0].type, EV_PROBLEM);
    CHECK_INT(log.e[1].type, EV_PROBLEM);
    CHECK(strstr(log.last_problem, "EXPUNGE 8") != NULL);
    CHECK_INT(imk_view_exists(v), 7);

    /* down to nothing, then up again (the emptied blocks are reused) */
    for (int i = 0; i < 7; i++)
        CHECK_INT(imk__view_expunge(v, 1), 0);
    CHECK_INT(imk_view_exists(v), 0);
    CHECK(imk__view_check(v));
    CHECK_INT(imk__view_exists(v, 3), 0);
    CHECK_INT(fetch_uid(v, 1, 200), 0);
    CHECK_INT(fetch_uid(v, 3, 202), 0);
    CHECK_UIDS(v, "200 0 202");
    CHECK_INT(imk__view_expunge(v, 2), 0); /* an unknown UID: reported as 0 */
    CHECK_INT(log.e[log.n - 1].type, EV_EXPUNGE);
    CHECK_INT(log.e[log.n - 1].a, 2);
    CHECK_INT(log.e[log.n - 1].b, 0);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

static void test_fetch_uid(void)
{
    event_log log;
    imk_view *v = new_view(&log);
    CHECK_INT(imk__view_set_block_size(v, 4), 0);
    CHECK_INT(imk__view_exists(v, 10), 0);
    log.n = 0;
    /* UIDs learnt out of order, with holes: fine while they ascend */
    CHECK_INT(fetch_uid(v, 5, 50), 0);
    CHECK_INT(fetch_uid(v, 1, 3), 0);
    CHECK_INT(fetch_uid(v, 10, 1000), 0);
    CHECK_INT(fetch_uid(v, 7, 70), 0);
    CHECK_INT(log.n, 0); /* learning a UID is not a flag change */
    CHECK_UIDS(v, "3 0 0 0 50 0 70 0 0 1000");
    CHECK_INT(imk_view_seq_of_uid(v, 50), 5);
    CHECK_INT(imk_view_seq_of_uid(v, 70), 7);
    CHECK_INT(imk_view_seq_of_uid(v, 1000), 10);
    CHECK_INT(imk_view_seq_of_uid(v, 3), 1);
    CHECK_INT(imk_view_seq_of_uid(v, 60), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 4), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 1001), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 0), 0);

    /* out of order: equal to, below or above a neighbour */
    static const struct {
        uint32_t seq, uid;
        const char *why;
    } bad[] = {
        {6, 50, "equal to the one before"},
        {6, 49, "below the one before"},
        {6, 70, "equal to the one after"},
        {6, 71, "above the one after"},
        {2, 3, "equal to the first"},
        {2, 2, "below the first"},
        {4, 50, "equal to the next, across a block"},
        {8, 1000, "equal to the last"},
        {9, 2000, "above the last"},
        {1, 4, "a different UID for a known one"},
        {5, 0, "UID 0"},
        {2, 0, "UID 0 on an unknown one"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        log.n = 0;
        CHECK_INT(fetch_uid(v, bad[i].seq, bad[i].uid), 0);
        CHECK_INT(log.n, 1);
        CHECK_INT(log.e[0].type, EV_PROBLEM);
        if (log.n != 1 || log.e[0].type != EV_PROBLEM)
            fprintf(stderr, "   case: %s\n", bad[i].why);
    }
    CHECK_UIDS(v, "3 0 0 0 50 0 70 0 0 1000");
    /* the problem text names what happened */
    fetch_uid(v, 6, 49);
    CHECK(strstr(log.last_problem, "UID 49") != NULL);
    CHECK(strstr(log.last_problem, "50 before") != NULL);
    CHECK(strstr(log.last_problem, "70 after") != NULL);

    /* the same UID again is not a change */
    log.n = 0;
    CHECK_INT(fetch_uid(v, 5, 50), 0);
    CHECK_INT(log.n, 0);
    /* the tightest fits */
    CHECK_INT(fetch_uid(v, 6, 51), 0);
    CHECK_INT(fetch_uid(v, 4, 49), 0);
    CHECK_INT(fetch_uid(v, 2, 4), 0);
    CHECK_INT(fetch_uid(v, 3, 5), 0);
    CHECK_INT(log.n, 0);
    CHECK_UIDS(v, "3 4 5 49 50 51 70 0 0 1000");

    /* sequence numbers that do not exist (QUIRKS Q22 "* 0 FETCH", Q53) */
    log.n = 0;
    CHECK_INT(fetch_uid(v, 0, 16334), 0);
    CHECK(strstr(log.last_problem, "message 0") != NULL);
    CHECK_INT(fetch_uid(v, 11, 2000), 0);
    CHECK(strstr(log.last_problem, "message 11") != NULL);
    CHECK_INT(fetch_modseq(v, 11, 5), 0);
    CHECK_INT(log.n, 3);
    CHECK_INT(count_type(&log, EV_PROBLEM), 3);
    CHECK_UIDS(v, "3 4 5 49 50 51 70 0 0 1000");

    /* UIDs at the top of the range */
    CHECK_INT(fetch_uid(v, 9, 4294967295u), 0); /* above 1000: out of order */
    CHECK_INT(log.e[log.n - 1].type, EV_PROBLEM);
    CHECK(imk__view_check(v));
    imk__view_free(v);

    free(log.e);
    v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 3), 0);
    CHECK_INT(fetch_uid(v, 2, 4294967295u), 0);
    CHECK_INT(fetch_uid(v, 1, 4294967294u), 0);
    log.n = 0;
    CHECK_INT(fetch_uid(v, 3, 4294967295u), 0); /* nothing can follow the largest */
    CHECK_INT(log.n, 1);
    CHECK_INT(imk_view_seq_of_uid(v, 4294967295u), 2);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

static void test_fetch_flags(void)
{
    event_log log;
    imk_view *v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 3), 0);
    CHECK_INT(fetch_uid(v, 1, 7), 0);
    log.n = 0;

    /* normalised: system flags to their canonical spelling, sorted, once */
    imk_str f1[] = {S("\\SEEN"), S("$Junk"), S("\\flagged"), S("\\Seen"), S("$junk")};
    CHECK_INT(fetch_flags(v, 1, f1, 5), 0);
    CHECK_INT(log.n, 1);
    CHECK_INT(log.e[0].type, EV_FLAGS);
    CHECK_INT(log.e[0].a, 1);
    CHECK_INT(log.e[0].b, 7);
    CHECK_INT(log.e[0].mask, (1u << 5) | (1u << 3) | (1u << 6) | (1u << 7));
    imk_view_message m;
    CHECK_INT(imk_view_message_at(v, 1, &m), 1);
    CHECK_INT(m.flags_known, 1);
    CHECK_INT(m.flags.count, 4);
    if (m.flags.count == 4) {
        CHECK_MEM(m.flags.items[0].data, m.flags.items[0].len, "$Junk", 5);
        CHECK_MEM(m.flags.items[1].data, m.flags.items[1].len, "$junk", 5);
        CHECK_MEM(m.flags.items[2].data, m.flags.items[2].len, "\\Flagged", 8);
        CHECK_MEM(m.flags.items[3].data, m.flags.items[3].len, "\\Seen", 5);
    }

    /* the same set in another order and case: no change, no event */
    imk_str f2[] = {S("\\Flagged"), S("$junk"), S("\\seen"), S("$Junk")};
    CHECK_INT(fetch_flags(v, 1, f2, 4), 0);
    CHECK_INT(log.n, 1);

    /* keywords are compared exactly; unknown \-flags too */
    imk_str f3[] = {S("\\Other")};
    imk_str f4[] = {S("\\other")};
    CHECK_INT(fetch_flags(v, 2, f3, 1), 0);
    CHECK_INT(fetch_flags(v, 2, f4, 1), 0);
    CHECK_INT(log.n, 3);
    CHECK_INT(log.e[2].mask, 1u << 10);
    CHECK_INT(log.e[2].b, 0); /* message 2's UID is not known */

    /* an empty list is known flags: a change from unknown */
    CHECK_INT(fetch_flags(v, 3, NULL, 0), 0);
    CHECK_INT(log.n, 4);
    CHECK_INT(imk_view_message_at(v, 3, &m), 1);
    CHECK_INT(m.flags_known, 1);
    CHECK_INT(m.flags.count, 0);
    CHECK_INT(fetch_flags(v, 3, NULL, 0), 0);
    CHECK_INT(log.n, 4);
    /* a zero-length flag is not a flag */
    imk_str f5[] = {S(""), {NULL, 0}};
    CHECK_INT(fetch_flags(v, 3, f5, 2), 0);
    CHECK_INT(log.n, 4);

    /* MODSEQ: a change is reported with the flags; the same is not */
    CHECK_INT(fetch_modseq(v, 1, 12345), 0);
    CHECK_INT(log.n, 5);
    CHECK_INT(log.e[4].type, EV_FLAGS);
    CHECK_INT(log.e[4].modseq, 12345);
    CHECK_INT(log.e[4].mask, (1u << 5) | (1u << 3) | (1u << 6) | (1u << 7));
    CHECK_INT(fetch_modseq(v, 1, 12345), 0);
    CHECK_INT(log.n, 5);
    CHECK_INT(imk_view_highest_modseq(v), 0); /* left to the explicit setter */
    /* UID, FLAGS and MODSEQ in one FETCH: one event */
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = 2;
    f.present = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ | IMK_FETCH_RFC822_SIZE;
    f.uid = 9;
    f.flags.count = 1;
    f.flags.items = f1;
    f.modseq = 99;
    CHECK_INT(imk__view_fetch(v, &f), 0);
    CHECK_INT(log.n, 6);
    CHECK_INT(log.e[5].a, 2);
    CHECK_INT(log.e[5].b, 9);
    CHECK_INT(log.e[5].mask, 1u << 5);
    CHECK_INT(log.e[5].modseq, 99);
    /* a UID out of order voids the whole FETCH, flags included */
    f.seq = 3;
    f.uid = 8;
    f.modseq = 100;
    CHECK_INT(imk__view_fetch(v, &f), 0);
    CHECK_INT(log.n, 7);
    CHECK_INT(log.e[6].type, EV_PROBLEM);
    CHECK_INT(imk_view_message_at(v, 3, &m), 1);
    CHECK_INT(m.uid, 0);
    CHECK_INT(m.modseq, 0);
    CHECK_INT(m.flags.count, 0);

    /* more flags than the stack buffer holds */
    imk_str many[100];
    char names[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "k%02d", 99 - i);
        many[i] = S(names[i]);
    }
    CHECK_INT(fetch_flags(v, 3, many, 100), 0);
    CHECK_INT(imk_view_message_at(v, 3, &m), 1);
    CHECK_INT(m.flags.count, 100);
    if (m.flags.count == 100)
        CHECK_MEM(m.flags.items[0].data, m.flags.items[0].len, "k00", 3);

    /* the flag strings are the view's own: the FETCH's buffer may go */
    char buf[8] = "$Mine";
    imk_str mine[] = {{buf, 5}};
    CHECK_INT(fetch_flags(v, 2, mine, 1), 0);
    memset(buf, 'x', sizeof(buf));
    CHECK_INT(imk_view_message_at(v, 2, &m), 1);
    CHECK_INT(m.flags.count, 1);
    if (m.flags.count == 1)
        CHECK_MEM(m.flags.items[0].data, m.flags.items[0].len, "$Mine", 5);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

/* Unreferenced sets are collected; more than 65535 in use is a problem. */
static void test_flag_sets(void)
{
    event_log log;
    imk_view *v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 2), 0);
    char name[32];
    imk_str one[1];
    /* churn: 20,000 distinct sets through one message */
    size_t after_100 = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "$k%d", i);
        one[0] = S(name);
        CHECK_INT(fetch_flags(v, 1 + (uint32_t)(i & 1), one, 1), 0);
        if (i == 100)
            after_100 = imk_view_memory(v);
    }
    CHECK(imk__view_check(v));
    CHECK(imk_view_memory(v) < after_100 + 16384); /* garbage does not pile up */
    imk__view_free(v);

    /* 65535 sets in use at once, then one more */
    free(log.e);
    v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 65536), 0);
    for (uint32_t i = 1; i <= 65535; i++) {
        snprintf(name, sizeof(name), "$k%lu", (unsigned long)i);
        one[0] = S(name);
        CHECK_INT(fetch_flags(v, i, one, 1), 0);
    }
    log.n = 0;
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = 65536;
    f.present = IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ | IMK_FETCH_UID;
    f.uid = 5;
    one[0] = S("$another");
    f.flags.count = 1;
    f.flags.items = one;
    f.modseq = 77;
    CHECK_INT(imk__view_fetch(v, &f), 0);
    CHECK_INT(log.n, 2); /* the problem, then the MODSEQ change */
    CHECK_INT(log.e[0].type, EV_PROBLEM);
    CHECK(strstr(log.last_problem, "65535") != NULL);
    imk_view_message m;
    CHECK_INT(imk_view_message_at(v, 65536, &m), 1);
    CHECK_INT(m.flags_known, 0);
    CHECK_INT(m.uid, 5);
    CHECK_INT(m.modseq, 77);
    /* an existing set is still found; freeing one makes room */
    one[0] = S("$k17");
    CHECK_INT(fetch_flags(v, 65536, one, 1), 0);
    CHECK_INT(imk_view_message_at(v, 65536, &m), 1);
    CHECK_INT(m.flags_known, 1);
    CHECK_INT(imk__view_expunge(v, 1), 0); /* "$k1" is no longer used */
    one[0] = S("$another");
    log.n = 0;
    CHECK_INT(fetch_flags(v, 65535, one, 1), 0);
    CHECK_INT(log.n, 1);
    CHECK_INT(log.e[0].type, EV_FLAGS);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

/* Two flag sets whose hashes collide are still two sets. The search uses
 * a copy of view.c's hash (FNV-1a with each length mixed in); should that
 * hash change, the test still checks that distinct sets stay distinct. */
static uint32_t mirror_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < len; k++) {
        h ^= (unsigned char)s[k];
        h *= 16777619u;
    }
    h ^= (uint32_t)len ^ 0x9e3779b9u;
    h *= 16777619u;
    return h;
}

static void test_hash_collision(void)
{
    enum { TABLE = 1 << 20 };
    uint32_t *seen = calloc(TABLE, sizeof(uint32_t)); /* hash -> n + 1 */
    uint32_t *hashes = calloc(TABLE, sizeof(uint32_t));
    if (seen == NULL || hashes == NULL)
        abort();
    char a[16] = "", b[16] = "";
    for (uint32_t n = 0; n < 600000 && a[0] == '\0'; n++) {
        char name[16];
        int len = snprintf(name, sizeof(name), "$c%lu", (unsigned long)n);
        uint32_t h = mirror_hash(name, (size_t)len);
        size_t slot = h & (TABLE - 1);
        while (seen[slot] != 0 && hashes[slot] != h)
            slot = (slot + 1) & (TABLE - 1);
        if (seen[slot] != 0) {
            snprintf(a, sizeof(a), "$c%lu", (unsigned long)(seen[slot] - 1));
            snprintf(b, sizeof(b), "%s", name);
        } else {
            seen[slot] = n + 1;
            hashes[slot] = h;
        }
    }
    free(seen);
    free(hashes);
    CHECK(a[0] != '\0');
    if (a[0] == '\0')
        return;

    event_log log;
    imk_view *v = new_view(&log);
    CHECK_INT(imk__view_exists(v, 3), 0);
    imk_str fa[] = {S(a)}, fb[] = {S(b)};
    CHECK_INT(fetch_flags(v, 1, fa, 1), 0);
    CHECK_INT(fetch_flags(v, 2, fb, 1), 0);
    CHECK_INT(fetch_flags(v, 3, fa, 1), 0);
    imk_view_message m;
    CHECK_INT(imk_view_message_at(v, 1, &m), 1);
    CHECK(m.flags.count == 1 && m.flags.items[0].len == strlen(a) &&
          memcmp(m.flags.items[0].data, a, strlen(a)) == 0);
    CHECK_INT(imk_view_message_at(v, 2, &m), 1);
    CHECK(m.flags.count == 1 && m.flags.items[0].len == strlen(b) &&
          memcmp(m.flags.items[0].data, b, strlen(b)) == 0);
    CHECK_INT(imk_view_message_at(v, 3, &m), 1);
    CHECK(m.flags.count == 1 && memcmp(m.flags.items[0].data, a, strlen(a)) == 0);
    CHECK(imk__view_check(v));
    /* no observer any more: changes are silent */
    imk__view_set_observer(v, NULL);
    CHECK_INT(fetch_flags(v, 3, fb, 1), 0);
    CHECK_INT(log.n, 4); /* EXISTS and three flag changes, none after */
    imk__view_free(v);
    free(log.e);
}

static void test_vanished(void)
{
    event_log log;
    imk_view *v = filled_view(&log, 4, 10, 1, 1); /* UIDs 1..10 */
    /* a huge range on a small mailbox: cheap, and exact */
    CHECK_INT(vanish1(v, 3, 4000000000u), 0);
    CHECK_UIDS(v, "1 2");
    CHECK_INT(log.n, 8);
    for (size_t i = 0; i < log.n; i++) {
        CHECK_INT(log.e[i].type, EV_EXPUNGE);
        CHECK_INT(log.e[i].a, 3); /* each at seq 3 once the ones before it left */
        CHECK_INT(log.e[i].b, 3 + i);
    }
    CHECK(imk__view_check(v));
    imk__view_free(v);

    /* ranges with absent UIDs, unordered, overlapping, reversed; "*" */
    free(log.e);
    v = filled_view(&log, 4, 12, 10, 10); /* 10 20 ... 120 */
    imk_range r1[] = {{25, 25}, {45, 61}, {100, 0}, {5, 12}, {55, 65}, {30, 30}};
    CHECK_INT(vanish(v, r1, 6), 0);
    CHECK_UIDS(v, "20 40 70 80 90");
    CHECK_INT(log.n, 7); /* 50 60 100 110 120 10 30 */
    static const uint32_t want_seq[] = {5, 5, 8, 8, 8, 1, 2};
    static const uint32_t want_uid[] = {50, 60, 100, 110, 120, 10, 30};
    for (size_t i = 0; i < 7 && i < log.n; i++) {
        CHECK_INT(log.e[i].a, want_seq[i]);
        CHECK_INT(log.e[i].b, want_uid[i]);
    }
    /* "*" alone: the largest UID the view knows */
    log.n = 0;
    CHECK_INT(vanish1(v, 0, 0), 0);
    CHECK_UIDS(v, "20 40 70 80");
    /* n:* with n above the largest UID: *:n, the largest message */
    CHECK_INT(vanish1(v, 500, 0), 0);
    CHECK_UIDS(v, "20 40 70");
    /* reversed */
    CHECK_INT(vanish1(v, 45, 15), 0);
    CHECK_UIDS(v, "70");
    CHECK_INT(log.n, 4);
    /* nothing there: silent */
    log.n = 0;
    CHECK_INT(vanish1(v, 1, 69), 0);
    CHECK_INT(vanish1(v, 71, 4294967295u), 0);
    CHECK_INT(vanish(v, NULL, 0), 0);
    CHECK_INT(log.n, 0);
    CHECK(imk__view_check(v));
    imk__view_free(v);

    /* unknown UIDs are never removed; known ones around them are */
    free(log.e);
    v = new_view(&log);
    CHECK_INT(imk__view_set_block_size(v, 4), 0);
    CHECK_INT(imk__view_exists(v, 12), 0);
    CHECK_INT(fetch_uid(v, 2, 20), 0);
    CHECK_INT(fetch_uid(v, 4, 40), 0);
    CHECK_INT(fetch_uid(v, 9, 90), 0);
    CHECK_INT(fetch_uid(v, 12, 120), 0);
    log.n = 0;
    CHECK_INT(vanish1(v, 1, 100), 0);
    CHECK_UIDS(v, "0 0 0 0 0 0 0 0 120");
    CHECK_INT(log.n, 3);
    CHECK_INT(log.e[0].a, 2);
    CHECK_INT(log.e[1].a, 3);
    CHECK_INT(log.e[2].a, 7);
    CHECK_INT(vanish1(v, 0, 0), 0); /* "*": 120 */
    CHECK_UIDS(v, "0 0 0 0 0 0 0 0");
    CHECK_INT(vanish1(v, 0, 0), 0); /* no UID known: "*" names nothing */
    CHECK_INT(vanish1(v, 1, 0), 0);
    CHECK_INT(imk_view_exists(v), 8);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

/* seq_of_uid with long runs of unknown UIDs between known ones. */
static void test_lookup_holes(void)
{
    imk_view *v = new_view(NULL);
    CHECK_INT(imk__view_set_block_size(v, 8), 0);
    CHECK_INT(imk__view_exists(v, 1000), 0);
    /* every 37th message known */
    for (uint32_t seq = 5; seq <= 1000; seq += 37)
        CHECK_INT(fetch_uid(v, seq, seq * 3), 0);
    for (uint32_t seq = 1; seq <= 1000; seq++) {
        uint32_t expect = (seq >= 5 && (seq - 5) % 37 == 0) ? seq * 3 : 0;
        CHECK_INT(imk_view_uid_of_seq(v, seq), expect);
        if (expect != 0) {
            CHECK_INT(imk_view_seq_of_uid(v, expect), seq);
            CHECK_INT(imk_view_seq_of_uid(v, expect + 1), 0);
            CHECK_INT(imk_view_seq_of_uid(v, expect - 1), 0);
        }
    }
    /* the gaps filled from the end backwards */
    for (uint32_t seq = 1000; seq >= 1; seq--)
        if (imk_view_uid_of_seq(v, seq) == 0)
            CHECK_INT(fetch_uid(v, seq, seq * 3), 0);
    for (uint32_t seq = 1; seq <= 1000; seq++)
        CHECK_INT(imk_view_seq_of_uid(v, seq * 3), seq);
    CHECK(imk__view_check(v));
    imk__view_free(v);
}

static void test_uidvalidity_reset(void)
{
    event_log log;
    imk_view *v = filled_view(&log, 4, 6, 1, 1);
    imk__view_set_uidvalidity(v, 100);
    imk__view_set_uidnext(v, 7);
    imk__view_set_highest_modseq(v, 555);
    imk__view_set_read_only(v, 7);
    CHECK_INT(log.n, 0); /* the first UIDVALIDITY is no change */
    CHECK_INT(imk_view_uidvalidity(v), 100);
    CHECK_INT(imk_view_uidnext(v), 7);
    CHECK_INT(imk_view_highest_modseq(v), 555);
    CHECK_INT(imk_view_read_only(v), 1);
    imk__view_set_uidvalidity(v, 100);
    CHECK_INT(log.n, 0);
    CHECK_INT(imk_view_exists(v), 6);
    imk__view_set_uidvalidity(v, 0); /* QUIRKS Q21 */
    CHECK_INT(log.n, 1);
    CHECK_INT(log.e[0].type, EV_PROBLEM);
    CHECK_INT(imk_view_uidvalidity(v), 100);

    log.n = 0;
    imk__view_set_uidvalidity(v, 1713632002544ull); /* QUIRKS Q20: above 2^32 */
    CHECK_INT(log.n, 1);
    CHECK_INT(log.e[0].type, EV_UIDVALIDITY);
    CHECK_INT(log.e[0].a, 100);
    CHECK_INT(log.e[0].b, 1713632002544ull);
    CHECK_INT(imk_view_exists(v), 0);
    CHECK_INT(imk_view_uidnext(v), 0);
    CHECK_INT(imk_view_highest_modseq(v), 0);
    CHECK_INT(imk_view_read_only(v), 1);
    CHECK_INT(imk_view_uidvalidity(v), 1713632002544ull);
    CHECK_INT(imk_view_seq_of_uid(v, 1), 0);
    CHECK(imk__view_check(v));
    CHECK_INT(imk__view_exists(v, 2), 0);
    CHECK_INT(fetch_uid(v, 1, 1), 0);
    CHECK_UIDS(v, "1 0");

    /* reset: everything forgotten, no event */
    imk_str fl[] = {S("\\Seen"), S("\\Answered")};
    imk_strlist list = {2, fl};
    CHECK_INT(imk__view_set_flags(v, &list), 0);
    CHECK_INT(imk__view_set_permanent_flags(v, &list), 0);
    CHECK_INT(fetch_flags(v, 1, fl, 2), 0);
    log.n = 0;
    imk__view_reset(v);
    CHECK_INT(log.n, 0);
    CHECK_INT(imk_view_exists(v), 0);
    CHECK_INT(imk_view_uidvalidity(v), 0);
    CHECK_INT(imk_view_read_only(v), 0);
    CHECK_INT(imk_view_flags(v).count, 0);
    CHECK_INT(imk_view_permanent_flags(v).count, 0);
    CHECK(imk__view_check(v));
    /* a new mailbox after the reset; the first UIDVALIDITY is no change */
    imk__view_set_uidvalidity(v, 9);
    CHECK_INT(log.n, 0);
    CHECK_INT(imk__view_set_block_size(v, 16), 0); /* allowed again */
    CHECK_INT(imk__view_exists(v, 40), 0);
    CHECK_INT(fetch_uid(v, 40, 400), 0);
    CHECK_INT(imk_view_seq_of_uid(v, 400), 40);
    CHECK(imk__view_check(v));
    imk__view_free(v);
    free(log.e);
}

static void test_mailbox_values(void)
{
    imk_view *v = new_view(NULL);
    char buf[64] = "\\Answered \\Seen $Junk \\*";
    imk_str fl[] = {{buf, 9}, {buf + 10, 5}, {buf + 16, 5}, {buf + 22, 2}};
    imk_strlist list = {4, fl};
    CHECK_INT(imk__view_set_flags(v, &list), 0);
    list.count = 3;
    CHECK_INT(imk__view_set_permanent_flags(v, &list), 0);
    list.items = fl + 1;
    memset(buf, 'x', sizeof(buf)); /* the view keeps its own copies */
    imk_strlist got = imk_view_flags(v);
    CHECK_INT(got.count, 4);
    if (got.count == 4) {
        CHECK_STR(got.items[0].data, "\\Answered"); /* as sent: not normalised */
        CHECK_STR(got.items[3].data, "\\*");
    }
    got = imk_view_permanent_flags(v);
    CHECK_INT(got.count, 3);
    /* replacing, and an empty list */
    imk_strlist empty = {0, NULL};
    CHECK_INT(imk__view_set_flags(v, &empty), 0);
    CHECK_INT(imk_view_flags(v).count, 0);
    CHECK_INT(imk_view_permanent_flags(v).count, 3);
    imk__view_set_read_only(v, 0);
    CHECK_INT(imk_view_read_only(v), 0);
    imk__view_set_uidnext(v, 4294967296ull);
    CHECK_INT(imk_view_uidnext(v), 4294967296ull);
    imk__view_free(v);
}

static void test_block_size(void)
{
    imk_view *v = new_view(NULL);
    CHECK_INT(imk__view_set_block_size(v, 1), IMK_EINVAL);
    CHECK_INT(imk__view_set_block_size(v, 32769), IMK_EINVAL);
    CHECK_INT(imk__view_set_block_size(v, 32768), 0);
    CHECK_INT(imk__view_set_block_size(v, 2), 0);
    CHECK_INT(imk__view_exists(v, 1), 0);
    CHECK_INT(imk__view_set_block_size(v, 8), IMK_ESTATE);
    CHECK_INT(imk__view_expunge(v, 1), 0);
    CHECK_INT(imk__view_set_block_size(v, 8), IMK_ESTATE); /* an empty block remains */
    imk__view_reset(v);
    CHECK_INT(imk__view_set_block_size(v, 8), 0);
    imk__view_free(v);
}

/* Sparse blocks merge, emptied ones are squeezed out; lookups stay right. */
static void test_merge_squeeze(void)
{
    imk_view *v = filled_view(NULL, 8, 800, 1, 1);
    size_t full = imk_view_memory(v);
    /* remove 7 of every 8: every block falls below B/4 */
    for (uint32_t uid = 1; uid <= 800; uid++)
        if (uid % 8 != 0)
            CHECK_INT(vanish1(v, uid, uid), 0);
    CHECK_INT(imk_view_exists(v), 100);
    CHECK(imk__view_check(v));
    for (uint32_t seq = 1; seq <= 100; seq++) {
        CHECK_INT(imk_view_uid_of_seq(v, seq), seq * 8);
        CHECK_INT(imk_view_seq_of_uid(v, seq * 8), seq);
    }
    CHECK(imk_view_memory(v) < full / 2); /* merged blocks were freed */
    /* expunge from the middle outwards */
    while (imk_view_exists(v) > 0) {
        CHECK_INT(imk__view_expunge(v, (imk_view_exists(v) + 1) / 2), 0);
        CHECK(imk__view_check(v));
    }
    imk__view_free(v);
}

/* ------------------------------------------------------------------ */
/* Allocation failure                                                  */
/* ------------------------------------------------------------------ */

/* Compare everything the reader can see of two views. */
static int views_equal(const imk_view *a, const imk_view *b)
{
    if (imk_view_exists(a) != imk_view_exists(b) ||
        imk_view_uidvalidity(a) != imk_view_uidvalidity(b) ||
        imk_view_flags(a).count != imk_view_flags(b).count ||
        imk_view_permanent_flags(a).count != imk_view_permanent_flags(b).count)
        return 0;
    for (uint32_t seq = 1; seq <= imk_view_exists(a); seq++) {
        imk_view_message ma, mb;
        imk_view_message_at(a, seq, &ma);
        imk_view_message_at(b, seq, &mb);
        if (ma.uid != mb.uid || ma.flags_known != mb.flags_known || ma.modseq != mb.modseq ||
            mask_of(ma.flags) != mask_of(mb.flags))
            return 0;
        if (ma.uid != 0 && imk_view_seq_of_uid(a, ma.uid) != seq)
            return 0;
    }
    return 1;
}

typedef int (*view_op)(imk_view *v, int step);

/* Build the same state in a reference view and in one on a failing
 * allocator, then run `op` failing at the 1st, 2nd, ... allocation it
 * makes until it succeeds: each IMK_ENOMEM must leave the view equal to
 * the reference before the op, without events; the success must equal the
 * reference after it. Nothing may leak. */
static void alloc_failure_case(const char *name, uint32_t block, view_op setup, view_op op)
{
    imk_view *ref = NULL;
    CHECK_INT(imk__view_new(NULL, &ref), 0);
    CHECK_INT(imk__view_set_block_size(ref, block), 0);
    CHECK_INT(setup(ref, 0), 0);
    int successes = 0, failures = 0;
    for (long k = 1; k < 1000 && successes == 0; k++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, 0);
        imk_view *v = NULL;
        CHECK_INT(imk__view_new(&a, &v), 0);
        if (v == NULL)
            return;
        CHECK_INT(imk__view_set_block_size(v, block), 0);
        CHECK_INT(setup(v, 0), 0);
        event_log log;
        observe(v, &log);
        fa.fail_at = fa.count + k;
        int rc = op(v, 1);
        fa.fail_at = 0;
        if (rc == IMK_ENOMEM) {
            failures++;
            CHECK(views_equal(v, ref));
            CHECK_INT(log.n, 0);
        } else {
            CHECK_INT(rc, 0);
            CHECK(!fa.failed);
            successes++;
            CHECK_INT(op(ref, 1), 0);
            CHECK(views_equal(v, ref));
        }
        CHECK(imk__view_check(v));
        /* the view still works after a failure */
        CHECK_INT(imk__view_exists(v, imk_view_exists(v) + 3), 0);
        CHECK(imk__view_check(v));
        imk__view_free(v);
        CHECK_INT(fa.live, 0);
        free(log.e);
    }
    CHECK_INT(successes, 1);
    if (failures == 0)
        fprintf(stderr, "   note: %s never allocates\n", name);
    imk__view_free(ref);
}

static int setup_empty(imk_view *v, int step)
{
    (void)v;
    (void)step;
    return 0;
}

static int setup_some(imk_view *v, int step)
{
    (void)step;
    int rc = imk__view_exists(v, 37);
    for (uint32_t seq = 1; seq <= 37 && rc == 0; seq += 2)
        rc = fetch_uid(v, seq, seq * 10);
    imk_str fl[] = {S("\\Seen")};
    for (uint32_t seq = 1; seq <= 37 && rc == 0; seq += 3)
        rc = fetch_flags(v, seq, fl, 1);
    return rc;
}

/* 36 messages in blocks of 4: the next one needs a new block. */
static int setup_full(imk_view *v, int step)
{
    (void)step;
    return imk__view_exists(v, 36);
}

static int op_exists_big(imk_view *v, int step)
{
    (void)step;
    return imk__view_exists(v, imk_view_exists(v) + 300);
}

static int op_exists_one(imk_view *v, int step)
{
    (void)step;
    return imk__view_exists(v, imk_view_exists(v) + 1);
}

static int op_fetch_new_set(imk_view *v, int step)
{
    (void)step;
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    imk_str fl[] = {S("$New"), S("\\seen")};
    f.seq = 2;
    f.present = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ;
    f.uid = 15;
    f.flags.count = 2;
    f.flags.items = fl;
    f.modseq = 3;
    return imk__view_fetch(v, &f);
}

static int op_fetch_many_flags(imk_view *v, int step)
{
    (void)step;
    static char names[40][16];
    imk_str fl[40];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        fl[i] = S(names[i]);
    }
    return fetch_flags(v, 3, fl, 40);
}

/* `count` distinct flag sets in use, on messages 1..count. */
static int setup_sets(imk_view *v, uint32_t count)
{
    int rc = setup_some(v, 0);
    char name[16];
    imk_str fl[1];
    for (uint32_t seq = 1; seq <= count && rc == 0; seq++) {
        snprintf(name, sizeof(name), "$s%lu", (unsigned long)seq);
        fl[0] = S(name);
        rc = fetch_flags(v, seq, fl, 1);
    }
    return rc;
}

/* Just before the set table grows (16 slots, index 0 reserved)... */
static int setup_sets_15(imk_view *v, int step)
{
    (void)step;
    return setup_sets(v, 14);
}

/* ... and before the hash table does (64 entries, at most half full). */
static int setup_sets_32(imk_view *v, int step)
{
    (void)step;
    return setup_sets(v, 31);
}

static int op_fetch_set(imk_view *v, int step)
{
    (void)step;
    imk_str fl[] = {S("$brand-new")};
    return fetch_flags(v, 36, fl, 1);
}

static int op_expunge_vanish(imk_view *v, int step)
{
    (void)step;
    int rc = imk__view_expunge(v, 5);
    if (rc == 0)
        rc = vanish1(v, 1, 200);
    return rc;
}

static int op_set_flags(imk_view *v, int step)
{
    (void)step;
    imk_str fl[] = {S("\\Seen"), S("$Junk")};
    imk_strlist l = {2, fl};
    int rc = imk__view_set_flags(v, &l);
    if (rc == 0)
        rc = imk__view_set_permanent_flags(v, &l);
    return rc;
}

static void test_alloc_failure(void)
{
    alloc_failure_case("EXISTS from empty", 4, setup_empty, op_exists_big);
    alloc_failure_case("EXISTS growing", 4, setup_some, op_exists_big);
    alloc_failure_case("EXISTS growing, large blocks", 256, setup_some, op_exists_big);
    alloc_failure_case("EXISTS + 1", 4, setup_full, op_exists_one);
    alloc_failure_case("FETCH with a new set", 4, setup_some, op_fetch_new_set);
    alloc_failure_case("FETCH with 40 flags", 4, setup_some, op_fetch_many_flags);
    alloc_failure_case("FETCH, the set table grows", 4, setup_sets_15, op_fetch_set);
    alloc_failure_case("FETCH, the hash table grows", 4, setup_sets_32, op_fetch_set);
    alloc_failure_case("EXPUNGE, VANISHED", 4, setup_some, op_expunge_vanish);

    /* set_flags / set_permanent_flags: the first may succeed before the
     * second fails, so check each alone */
    for (long k = 1; k < 10; k++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, 0);
        imk_view *v = NULL;
        CHECK_INT(imk__view_new(&a, &v), 0);
        imk_str fl[] = {S("\\Seen")};
        imk_strlist l = {1, fl};
        CHECK_INT(imk__view_set_flags(v, &l), 0);
        fa.fail_at = fa.count + 1;
        imk_str fl2[] = {S("$A"), S("$B")};
        imk_strlist l2 = {2, fl2};
        CHECK_INT(imk__view_set_flags(v, &l2), IMK_ENOMEM);
        CHECK_INT(imk__view_set_permanent_flags(v, &l2), IMK_ENOMEM);
        CHECK_INT(imk__view_set_block_size(v, 8), IMK_ENOMEM);
        fa.fail_at = 0;
        CHECK_INT(imk_view_flags(v).count, 1);
        CHECK_INT(imk_view_permanent_flags(v).count, 0);
        CHECK_INT(op_set_flags(v, 0), 0);
        CHECK_INT(imk_view_flags(v).count, 2);
        imk__view_free(v);
        CHECK_INT(fa.live, 0);
    }

    /* imk__view_new itself */
    for (long k = 1; k <= 4; k++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, k);
        imk_view *v = (imk_view *)&fa; /* must be cleared on failure */
        int rc = imk__view_new(&a, &v);
        if (rc == 0) {
            CHECK(v != NULL);
            imk__view_free(v);
        } else {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK(v == NULL);
        }
        CHECK_INT(fa.live, 0);
    }
}

/* ------------------------------------------------------------------ */
/* The model                                                           */
/* ------------------------------------------------------------------ */

typedef struct model_msg {
    uint32_t uid;
    int flags_known;
    uint32_t mask;
    uint64_t modseq;
} model_msg;

typedef struct model {
    model_msg *m;
    uint32_t n, cap;
    uint32_t max_messages;
    uint64_t uidvalidity;
    event_log expect;
} model;

static void model_emit(model *md, int type, uint64_t a, uint64_t b, uint32_t mask, uint64_t ms)
{
    event ev = {type, a, b, mask, ms};
    log_push(&md->expect, ev);
}

static void model_exists(model *md, uint32_t count)
{
    if (count < md->n || count > md->max_messages) {
        model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
        return;
    }
    if (count == md->n)
        return;
    if (count > md->cap) {
        md->cap = count * 2;
        md->m = realloc(md->m, md->cap * sizeof(model_msg));
        if (md->m == NULL)
            abort();
    }
    memset(md->m + md->n, 0, (count - md->n) * sizeof(model_msg));
    model_emit(md, EV_EXISTS, md->n, count, 0, 0);
    md->n = count;
}

static void model_remove(model *md, uint32_t i)
{
    model_emit(md, EV_EXPUNGE, i + 1, md->m[i].uid, 0, 0);
    memmove(md->m + i, md->m + i + 1, (md->n - i - 1) * sizeof(model_msg));
    md->n--;
}

static void model_expunge(model *md, uint32_t seq)
{
    if (seq == 0 || seq > md->n)
        model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
    else
        model_remove(md, seq - 1);
}

static uint32_t model_max_uid(const model *md)
{
    for (uint32_t i = md->n; i > 0; i--)
        if (md->m[i - 1].uid != 0)
            return md->m[i - 1].uid;
    return 0;
}

static void model_vanished(model *md, const imk_range *r, size_t count)
{
    uint32_t star = model_max_uid(md);
    for (size_t k = 0; k < count; k++) {
        uint32_t a = r[k].first ? r[k].first : star, z = r[k].last ? r[k].last : star;
        if (a > z) {
            uint32_t t = a;
            a = z;
            z = t;
        }
        for (uint32_t i = 0; i < md->n;) {
            uint32_t u = md->m[i].uid;
            if (u != 0 && u >= a && u <= z)
                model_remove(md, i);
            else
                i++;
        }
    }
}

static void model_fetch(model *md, const imk_fetch *f, uint32_t mask)
{
    if (f->seq == 0 || f->seq > md->n) {
        model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
        return;
    }
    model_msg *m = &md->m[f->seq - 1];
    if (f->present & IMK_FETCH_UID) {
        if (f->uid == 0 || (m->uid != 0 && m->uid != f->uid)) {
            model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
            return;
        }
        if (m->uid == 0) {
            for (uint32_t i = 0; i < md->n; i++) {
                uint32_t u = md->m[i].uid;
                if (u != 0 &&
                    ((i < f->seq - 1 && u >= f->uid) || (i > f->seq - 1 && u <= f->uid))) {
                    model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
                    return;
                }
            }
            m->uid = f->uid;
        }
    }
    int changed = 0;
    if ((f->present & IMK_FETCH_FLAGS) && (!m->flags_known || m->mask != mask)) {
        m->flags_known = 1;
        m->mask = mask;
        changed = 1;
    }
    if ((f->present & IMK_FETCH_MODSEQ) && f->modseq != m->modseq) {
        m->modseq = f->modseq;
        changed = 1;
    }
    if (changed)
        model_emit(md, EV_FLAGS, f->seq, m->uid, m->flags_known ? m->mask : 0, m->modseq);
}

static void model_uidvalidity(model *md, uint64_t value)
{
    if (value == 0) {
        model_emit(md, EV_PROBLEM, 0, 0, 0, 0);
        return;
    }
    if (value == md->uidvalidity)
        return;
    uint64_t old = md->uidvalidity;
    md->uidvalidity = value;
    if (old != 0) {
        md->n = 0;
        model_emit(md, EV_UIDVALIDITY, old, value, 0, 0);
    }
}

static void model_neighbours(const model *md, uint32_t i, uint32_t *before, uint32_t *after);

/* Compare the view with the model: everything when `full`, else a sample. */
static int compare(const imk_view *v, const model *md, int full)
{
    if (imk_view_exists(v) != md->n || imk_view_uidvalidity(v) != md->uidvalidity)
        return 0;
    uint32_t samples = full ? md->n : (md->n < 8 ? md->n : 8);
    for (uint32_t k = 0; k < samples; k++) {
        uint32_t i = full ? k : rnd(md->n);
        const model_msg *m = &md->m[i];
        imk_view_message vm;
        if (!imk_view_message_at(v, i + 1, &vm) || vm.seq != i + 1 || vm.uid != m->uid ||
            vm.flags_known != m->flags_known || vm.modseq != m->modseq ||
            imk_view_uid_of_seq(v, i + 1) != m->uid)
            return 0;
        if (mask_of(vm.flags) != (m->flags_known ? m->mask : 0))
            return 0;
        if (m->uid != 0) {
            if (imk_view_seq_of_uid(v, m->uid) != i + 1)
                return 0;
            /* the neighbours of a known UID, when no message has them */
            uint32_t prev, next;
            model_neighbours(md, i, &prev, &next);
            if (m->uid > 1 && prev != m->uid - 1 && imk_view_seq_of_uid(v, m->uid - 1) != 0)
                return 0;
            if (m->uid < UINT32_MAX && next != m->uid + 1 &&
                imk_view_seq_of_uid(v, m->uid + 1) != 0)
                return 0;
        }
    }
    uint32_t top = model_max_uid(md);
    if (top < UINT32_MAX && imk_view_seq_of_uid(v, top + 1) != 0)
        return 0;
    if (imk_view_uid_of_seq(v, md->n + 1) != 0 || imk_view_seq_of_uid(v, 0) != 0)
        return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Random operations                                                   */
/* ------------------------------------------------------------------ */

/* The known UIDs around position i (0-based): before (0 if none) and after
 * (0 if none). */
static void model_neighbours(const model *md, uint32_t i, uint32_t *before, uint32_t *after)
{
    *before = *after = 0;
    for (uint32_t k = i; k > 0 && *before == 0; k--)
        *before = md->m[k - 1].uid;
    for (uint32_t k = i + 1; k < md->n && *after == 0; k++)
        *after = md->m[k].uid;
}

/* A UID for unknown message i: usually fitting, sometimes not. */
static uint32_t pick_uid(const model *md, uint32_t i, uint32_t uid_base)
{
    uint32_t before, after;
    model_neighbours(md, i, &before, &after);
    if (before == 0)
        before = uid_base;
    switch (rnd(20)) {
    case 0:
        return before; /* equal to the one before: out of order */
    case 1:
        return after != 0 ? after : before; /* equal to the one after */
    case 2:
        return before > 1 ? before - 1 - rnd(before - 1) : 1;
    case 3:
        return after != 0 && after < UINT32_MAX ? after + 1 + rnd(3) : UINT32_MAX;
    case 4:
        return 0;
    default:
        break;
    }
    uint64_t hi = after != 0 ? after : (uint64_t)before + 1 + rnd(6) + 1;
    if (hi > (uint64_t)UINT32_MAX + 1)
        hi = (uint64_t)UINT32_MAX + 1;
    if (hi <= (uint64_t)before + 1)
        return before + (before < UINT32_MAX); /* no room: out of order */
    return (uint32_t)((uint64_t)before + 1 + rng() % (hi - before - 1));
}

typedef struct run_state {
    imk_view *v;
    model md;
    event_log got;
    failing_alloc fa;
    int fail_sometimes;
    uint32_t uid_base;
    uint32_t target; /* the size around which the view moves */
    long steps, enomem;
} run_state;

/* One operation on both. Returns 0, or -1 on a mismatch. */
static int random_step(run_state *st, int phase)
{
    imk_view *v = st->v;
    model *md = &st->md;
    uint32_t n = md->n;
    int rc = 0;
    int fail = st->fail_sometimes && rnd(8) == 0;
    if (fail)
        st->fa.fail_at = st->fa.count + 1 + rnd(3);

    /* the mix of operations depends on the phase: grow, fill UIDs, churn
     * flags, shrink */
    uint32_t r = rnd(100);
    int op;
    if (phase == 0)
        op = r < 40 ? 0 : r < 85 ? 3 : r < 92 ? 1 : 2;
    else if (phase == 1)
        op = r < 5 ? 0 : r < 90 ? 3 : r < 95 ? 1 : 2;
    else if (phase == 2)
        op = r < 10 ? 0 : r < 25 ? 1 : r < 35 ? 2 : r < 99 ? 3 : 4;
    else
        op = r < 10 ? 0 : r < 55 ? 1 : r < 95 ? 2 : r < 99 ? 3 : 4;
    /* above its target size the view shrinks: every op that could grow it
     * becomes an EXPUNGE or a VANISHED */
    if (n > st->target && op == 0)
        op = rnd(2) ? 1 : 2;
    if (rnd(400) == 0)
        op = 5; /* UIDVALIDITY */
    if (rnd(3000) == 0)
        op = 6; /* reset */

    switch (op) {
    case 0: { /* EXISTS */
        uint32_t count;
        uint32_t k = rnd(20);
        if (k == 0)
            count = n > 0 ? n - 1 - rnd(n) : 0; /* shrinking: a problem */
        else if (k == 1)
            count = n; /* the same */
        else if (k == 2)
            count = n + 1 + rnd(st->target / 2 + 20); /* a burst */
        else if (k == 3)
            count = md->max_messages + 1; /* above the limit */
        else
            count = n + 1 + rnd(4);
        rc = imk__view_exists(v, count);
        if (rc == 0)
            model_exists(md, count);
        break;
    }
    case 1: { /* EXPUNGE */
        uint32_t seq = rnd(12) == 0 ? (rnd(2) ? 0 : n + 1 + rnd(3)) : 1 + rnd(n);
        if (n == 0 && seq != 0)
            seq = 1 + rnd(2);
        rc = imk__view_expunge(v, seq);
        if (rc == 0)
            model_expunge(md, seq);
        break;
    }
    case 2: { /* VANISHED */
        imk_range ranges[6];
        size_t count = 1 + rnd(6);
        for (size_t k = 0; k < count; k++) {
            uint32_t a, z;
            uint32_t pick = n > 0 ? md->m[rnd(n)].uid : 0;
            if (pick == 0 || rnd(4) == 0)
                pick = st->uid_base + rnd(n * 3 + 10); /* present or absent */
            a = pick;
            uint32_t len = rnd(4) == 0 ? rnd(200) : rnd(4);
            z = a + len < a ? UINT32_MAX : a + len;
            switch (rnd(12)) {
            case 0:
                z = 0; /* a:* */
                break;
            case 1:
                a = z = 0; /* * */
                break;
            case 2: { /* reversed */
                uint32_t t = a;
                a = z;
                z = t;
                break;
            }
            case 3:
                a = 1;
                z = 4000000000u; /* everything */
                if (rnd(4) != 0)
                    a = z = pick; /* (mostly not) */
                break;
            default:
                break;
            }
            ranges[k].first = a;
            ranges[k].last = z;
        }
        rc = vanish(v, ranges, count);
        if (rc == 0)
            model_vanished(md, ranges, count);
        break;
    }
    case 3: { /* FETCH */
        imk_fetch f;
        memset(&f, 0, sizeof(f));
        uint32_t seq;
        if (rnd(30) == 0 || n == 0)
            seq = rnd(2) ? 0 : n + 1 + rnd(2);
        else if (phase == 1 && rnd(3) != 0) {
            /* fill UIDs from the front, as FETCH 1:* (UID) does */
            seq = 1;
            while (seq < n && md->m[seq - 1].uid != 0)
                seq++;
        } else
            seq = 1 + rnd(n);
        f.seq = seq;
        uint32_t items = 1 + rnd(7);
        imk_str flags[6];
        uint32_t mask = 0;
        if (items & 1) {
            f.present |= IMK_FETCH_UID;
            if (seq >= 1 && seq <= n && md->m[seq - 1].uid != 0 && rnd(6) != 0)
                f.uid = md->m[seq - 1].uid; /* again, as servers do */
            else if (seq >= 1 && seq <= n)
                f.uid = pick_uid(md, seq - 1, st->uid_base);
            else
                f.uid = 1 + rnd(100);
        }
        if (items & 2) {
            f.present |= IMK_FETCH_FLAGS;
            f.flags.items = flags;
            if (rnd(5) != 0) {
                /* mostly one of a few common sets, in any spelling and order,
                 * as in a real mailbox; sometimes anything */
                static const uint32_t common[] = {0x20, 0x28, 0x21, 0x60, 0x00, 0x120};
                uint32_t want = common[rnd(6)];
                f.flags.count = 0;
                mask = 0;
                while (mask != want || rnd(4) == 0) {
                    const flag_name *fn = &spellings[rnd(NSPELLINGS)];
                    if ((want & (1u << fn->bit)) == 0)
                        continue;
                    flags[f.flags.count].data = fn->name;
                    flags[f.flags.count++].len = strlen(fn->name);
                    mask |= 1u << fn->bit;
                    if (f.flags.count == 6)
                        break;
                }
            } else {
                f.flags.count = rnd(5);
                mask = random_flags(flags, f.flags.count);
            }
        }
        if (items & 4) {
            f.present |= IMK_FETCH_MODSEQ;
            f.modseq = rnd(3) == 0 && seq >= 1 && seq <= n ? md->m[seq - 1].modseq : rng();
        }
        rc = imk__view_fetch(v, &f);
        if (rc == 0)
            model_fetch(md, &f, mask);
        break;
    }
    case 4: { /* a run of EXPUNGEs from one place, as after EXPUNGE of \Deleted */
        uint32_t seq = 1 + rnd(n + 1), k = rnd(30);
        for (uint32_t i = 0; i < k && rc == 0; i++) {
            rc = imk__view_expunge(v, seq);
            if (rc == 0)
                model_expunge(md, seq);
        }
        break;
    }
    case 5: {
        uint64_t value = rnd(10) == 0 ? 0 : rnd(3) == 0 ? md->uidvalidity : 1 + rnd(5);
        imk__view_set_uidvalidity(v, value);
        model_uidvalidity(md, value);
        break;
    }
    default:
        imk__view_reset(v);
        md->n = 0;
        md->uidvalidity = 0;
        break;
    }
    st->fa.fail_at = 0;
    st->steps++;

    if (rc == IMK_ENOMEM) {
        st->enomem++;
        if (!fail) {
            fprintf(stderr, "   IMK_ENOMEM without a failing allocator (op %d)\n", op);
            return -1;
        }
        /* the op may have emitted problems before it failed: none here,
         * since every allocation precedes every event */
    } else if (rc != 0) {
        fprintf(stderr, "   op %d returned %d\n", op, rc);
        return -1;
    }
    if (!events_equal(&st->got, &md->expect)) {
        fprintf(stderr, "   events differ after op %d (step %ld)\n", op, st->steps);
        print_events("view ", &st->got);
        print_events("model", &md->expect);
        return -1;
    }
    st->got.n = 0;
    md->expect.n = 0;
    /* every step for small views; every 4th for larger ones, whose
     * check costs O(n) */
    if ((md->n <= 64 || st->steps % 4 == 0) && !imk__view_check(v)) {
        fprintf(stderr, "   imk__view_check failed after op %d (step %ld)\n", op, st->steps);
        return -1;
    }
    if (!compare(v, md, md->n <= 32 || st->steps % 16 == 0)) {
        fprintf(stderr, "   view and model differ after op %d (step %ld)\n", op, st->steps);
        return -1;
    }
    return 0;
}

static void test_random_model(void)
{
    static const uint32_t blocks[] = {2, 3, 4, 5, 8, 16, 256, 4};
    long total_steps = 0, total_enomem = 0;
    /* 40 runs (each block size 5 times) keep the test at a few seconds
     * under ASan at -O0; set IMK_VIEW_RUNS (e.g. 2000) for a longer search */
    int runs = 40;
    const char *env = getenv("IMK_VIEW_RUNS");
    if (env != NULL && strtol(env, NULL, 10) > 0)
        runs = (int)strtol(env, NULL, 10);
    for (int run = 0; run < runs; run++) {
        rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)(unsigned)(run + 1);
        run_state st;
        memset(&st, 0, sizeof(st));
        imk_allocator a = failing_allocator(&st.fa, 0);
        st.fail_sometimes = run % 4 == 3;
        CHECK_INT(imk__view_new(&a, &st.v), 0);
        if (st.v == NULL)
            return;
        CHECK_INT(imk__view_set_block_size(st.v, blocks[run % 8]), 0);
        st.md.max_messages = run % 5 == 0 ? 500 : 50000000;
        if (run % 5 == 0)
            imk__view_set_max_messages(st.v, 500);
        /* UIDs near the top of the range in some runs */
        st.uid_base = run % 7 == 6 ? 4294967295u - 3000 : 1;
        /* enough messages for many blocks, few enough for a fast test */
        st.target = blocks[run % 8] * 12 < 1000 ? blocks[run % 8] * 12 : 1000;
        if (st.target < 30)
            st.target = 30;
        memset(&st.got, 0, sizeof(st.got));
        imk__view_observer obs = {on_exists,      on_expunge, on_flags,
                                  on_uidvalidity, on_problem, &st.got};
        imk__view_set_observer(st.v, &obs);

        int failed = 0;
        for (int step = 0; step < 5000 && !failed; step++) {
            /* bursts: phases of a few hundred steps */
            int phase = (step / 250) % 4;
            if (random_step(&st, phase) != 0) {
                fprintf(stderr, "   run %d (block %lu), step %d\n", run,
                        (unsigned long)blocks[run % 8], step);
                failed = 1;
            }
        }
        CHECK(!failed);
        total_steps += st.steps;
        total_enomem += st.enomem;
        imk__view_free(st.v);
        CHECK_INT(st.fa.live, 0);
        free(st.md.m);
        free(st.md.expect.e);
        free(st.got.e);
        if (failed)
            break;
    }
    CHECK(total_enomem > 100 || runs < 16);
    fprintf(stderr, "   %ld random operations, %ld of them refused for memory\n", total_steps,
            total_enomem);
}

/* ------------------------------------------------------------------ */
/* Memory per message                                                  */
/* ------------------------------------------------------------------ */

static void test_memory_1m(void)
{
    const uint32_t n = 1000000;
    imk_view *v = new_view(NULL);
    CHECK_INT(imk__view_exists(v, n), 0);
    static const char *const names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                        "$Junk",  "$Forwarded", "NonJunk"};
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.present = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ;
    imk_str fl[6];
    f.flags.items = fl;
    for (uint32_t seq = 1; seq <= n; seq++) {
        uint32_t pattern = seq % 11 == 0 ? 7 : seq % 3; /* a few distinct sets */
        f.flags.count = 0;
        for (int k = 0; k < 6; k++)
            if (pattern & (1u << k))
                fl[f.flags.count++] = S(names[k]);
        f.seq = seq;
        f.uid = seq * 2 + 100;
        f.modseq = 1000000000000ull + seq;
        if (imk__view_fetch(v, &f) != 0) {
            CHECK(0);
            break;
        }
    }
    double per = (double)imk_view_memory(v) / n;
    fprintf(stderr, "   1,000,000 messages with UID, FLAGS and MODSEQ: %.2f bytes per message\n",
            per);
    CHECK(per <= 16.0);
    CHECK_INT(imk_view_seq_of_uid(v, 2 * 777777 + 100), 777777);
    CHECK_INT(imk_view_uid_of_seq(v, 999999), 2 * 999999 + 100);
    CHECK(imk__view_check(v));
    imk__view_free(v);
}

/* The bound holds whatever the removals: spread evenly over the blocks (no
 * block empties, none merges), every other UID, at random. Asserted after
 * every removal while the view has 40,000 messages or more (below that
 * the view's 3 KB of fixed cost start to count). */
static void test_memory_bound(void)
{
    const uint32_t n = 80000;
    double worst[3] = {0, 0, 0};
    for (int pattern = 0; pattern < 3; pattern++) {
        imk_view *v = new_view(NULL);
        CHECK_INT(imk__view_exists(v, n), 0);
        imk_fetch f;
        memset(&f, 0, sizeof(f));
        f.present = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ;
        imk_str fl[] = {S("\\Seen"), S("$Junk")};
        f.flags.items = fl;
        for (uint32_t seq = 1; seq <= n; seq++) {
            f.seq = seq;
            f.uid = seq;
            f.flags.count = seq % 3;
            f.modseq = seq;
            CHECK_INT(imk__view_fetch(v, &f), 0);
        }
        uint32_t k = 0;
        while (imk_view_exists(v) >= 40000) {
            uint32_t exists = imk_view_exists(v);
            if (pattern == 0)
                CHECK_INT(imk__view_expunge(v, 1 + (uint32_t)(((uint64_t)k * 257) % exists)), 0);
            else if (pattern == 1)
                CHECK_INT(vanish1(v, 2 * (k % (n / 2)) + 1, 2 * (k % (n / 2)) + 1), 0);
            else
                CHECK_INT(imk__view_expunge(v, 1 + rnd(exists)), 0);
            k++;
            if (imk_view_exists(v) == exists) /* an absent UID: nothing left */
                break;
            double per = (double)imk_view_memory(v) / imk_view_exists(v);
            if (per > worst[pattern])
                worst[pattern] = per;
        }
        CHECK(imk__view_check(v));
        CHECK(worst[pattern] <= 16.0);
        imk__view_free(v);
    }
    fprintf(stderr, "   worst bytes per message: %.2f spread, %.2f alternate, %.2f random\n",
            worst[0], worst[1], worst[2]);
}

int main(void)
{
    RUN(test_new_free);
    RUN(test_exists);
    RUN(test_expunge);
    RUN(test_fetch_uid);
    RUN(test_fetch_flags);
    RUN(test_flag_sets);
    RUN(test_hash_collision);
    RUN(test_vanished);
    RUN(test_lookup_holes);
    RUN(test_uidvalidity_reset);
    RUN(test_mailbox_values);
    RUN(test_block_size);
    RUN(test_merge_squeeze);
    RUN(test_alloc_failure);
    RUN(test_random_model);
    RUN(test_memory_1m);
    RUN(test_memory_bound);
    return test_finish();
}
