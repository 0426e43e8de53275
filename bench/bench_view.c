/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_view.c - the mailbox view (src/proto/view.c) against the
 * sorted-array baseline, side by side in one run, on the same mailbox and
 * the same operations (DESIGN.md sections 3 and 10).
 *
 * The baseline is what Dovecot's imapc (imapc-msgmap.c: an array of UIDs,
 * array_delete() on EXPUNGE) and neomutt (arrays indexed by MSN) do: three
 * parallel arrays - uint32 UID, uint16 flag-set index, uint64 MODSEQ, 14
 * bytes per message, the same per-message data as the view - with memmove
 * on every removal, a binary search for UID -> seq and an index for
 * seq -> UID. It is written here, carefully, and given every advantage: no
 * observer, no bounds checks beyond what correctness needs.
 *
 * The mailbox: 1,000,000 messages (--messages), UIDs ascending with random
 * gaps (as after years of expunges), one of 8 flag sets and a MODSEQ on each.
 * The view gets it as the session would: EXISTS, then one FETCH (UID FLAGS
 * MODSEQ) per message; the view's observer counts events (a session always
 * has one). Building it is not timed (the view's build time is printed).
 *
 *   (a) 100,000 EXPUNGEs (--expunges) at random sequence numbers, the same
 *       list for both. Goal: the view at least 100x faster.
 *   (b) VANISHED of 500,000 UIDs (--vanished) given as ~10,000 ranges of
 *       1..99 present UIDs (each range spans the gaps between them too),
 *       in ascending order. The view: as one VANISHED response, and as one
 *       response per range. The array: one memmove per range (one per UID,
 *       as an array that only knows EXPUNGE would do it, takes minutes at
 *       this size and is not run), and - only possible when every range
 *       comes in one response - one filtering pass over the whole array,
 *       the best an array can do.
 *   (c) 1,000,000 UID -> seq lookups of random present UIDs and 1,000,000
 *       seq -> UID lookups of random sequence numbers (--lookups), on the
 *       full mailbox and again after (a). Goal: within 2x of the array.
 *   (d) memory per message: imk_view_memory() / messages (bytes requested
 *       from the allocator), and the heap the view really holds
 *       (malloc_usable_size of every block, glibc's headers excluded) -
 *       on the full mailbox and after (a). Goal: at most 16 bytes.
 *
 * Every timed step is followed by a proof that both sides agree: after (a)
 * and (b) every UID of the view equals the array's; the lookup loops sum
 * their answers and the sums must be equal. A difference exits with status 1.
 *
 * Times are the best of N runs (--runs, default 3) of wall-clock time
 * (CLOCK_MONOTONIC); each run starts from a freshly built mailbox.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "imapkit/view.h"
#include "proto/view.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int verbose;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: deterministic for a seed */
static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(rng() % n);
}

static void fail(const char *what)
{
    fprintf(stderr, "bench_view: %s\n", what);
    exit(1);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL)
        fail("out of memory");
    return p;
}

/* ---------------------------------------------------------------------- */
/* The mailbox                                                            */
/* ---------------------------------------------------------------------- */

#define NSETS 8

static const char *const flag_names[] = {"\\Seen", "\\Answered", "\\Flagged",
                                         "$Junk",  "$Forwarded", "NonJunk"};
/* 8 flag sets, as bit masks over flag_names */
static const unsigned set_bits[NSETS] = {0x01, 0x03, 0x00, 0x05, 0x09, 0x21, 0x11, 0x07};

typedef struct mailbox {
    uint32_t n;
    uint32_t *uid;
    uint16_t *set;
    uint64_t *modseq;
} mailbox;

static void mailbox_make(mailbox *mb, uint32_t n)
{
    mb->n = n;
    mb->uid = xmalloc(n * sizeof(uint32_t));
    mb->set = xmalloc(n * sizeof(uint16_t));
    mb->modseq = xmalloc(n * sizeof(uint64_t));
    uint32_t uid = 0;
    for (uint32_t i = 0; i < n; i++) {
        uid += 1 + (rnd(4) == 0 ? rnd(3) : 0);
        mb->uid[i] = uid;
        uint32_t r = rnd(100); /* most messages seen, a few flagged or junk */
        mb->set[i] = (uint16_t)(r < 60 ? 0 : r < 75 ? 1 : r < 85 ? 2 : 3 + r % 5);
        mb->modseq[i] = 7000000000ull + rng() % 1000000;
    }
}

/* ---------------------------------------------------------------------- */
/* The baseline: sorted parallel arrays, memmove on removal               */
/* ---------------------------------------------------------------------- */

typedef struct array_view {
    uint32_t n;
    uint32_t *uid;
    uint16_t *flags;
    uint64_t *modseq;
} array_view;

static void array_load(array_view *a, const mailbox *mb)
{
    a->n = mb->n;
    a->uid = xmalloc(mb->n * sizeof(uint32_t));
    a->flags = xmalloc(mb->n * sizeof(uint16_t));
    a->modseq = xmalloc(mb->n * sizeof(uint64_t));
    memcpy(a->uid, mb->uid, mb->n * sizeof(uint32_t));
    memcpy(a->flags, mb->set, mb->n * sizeof(uint16_t));
    memcpy(a->modseq, mb->modseq, mb->n * sizeof(uint64_t));
}

static void array_free(array_view *a)
{
    free(a->uid);
    free(a->flags);
    free(a->modseq);
}

/* Remove positions [i, i + k). */
static void array_remove(array_view *a, uint32_t i, uint32_t k)
{
    uint32_t tail = a->n - i - k;
    memmove(a->uid + i, a->uid + i + k, tail * sizeof(uint32_t));
    memmove(a->flags + i, a->flags + i + k, tail * sizeof(uint16_t));
    memmove(a->modseq + i, a->modseq + i + k, tail * sizeof(uint64_t));
    a->n -= k;
}

static void array_expunge(array_view *a, uint32_t seq)
{
    if (seq >= 1 && seq <= a->n)
        array_remove(a, seq - 1, 1);
}

/* First position whose UID is >= uid. */
static uint32_t array_lower_bound(const array_view *a, uint32_t uid)
{
    uint32_t lo = 0, hi = a->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->uid[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t array_seq_of_uid(const array_view *a, uint32_t uid)
{
    uint32_t i = array_lower_bound(a, uid);
    return i < a->n && a->uid[i] == uid ? i + 1 : 0;
}

static uint32_t array_uid_of_seq(const array_view *a, uint32_t seq)
{
    return seq >= 1 && seq <= a->n ? a->uid[seq - 1] : 0;
}

/* VANISHED, one memmove per range. */
static void array_vanish_ranges(array_view *a, const imk_range *r, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        uint32_t lo = array_lower_bound(a, r[k].first);
        uint32_t hi = r[k].last == UINT32_MAX ? a->n : array_lower_bound(a, r[k].last + 1);
        if (hi > lo)
            array_remove(a, lo, hi - lo);
    }
}

/* VANISHED, one pass (ranges ascending and disjoint). */
static void array_vanish_filter(array_view *a, const imk_range *r, size_t count)
{
    uint32_t w = 0;
    size_t k = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        uint32_t u = a->uid[i];
        while (k < count && r[k].last < u)
            k++;
        if (k < count && u >= r[k].first)
            continue;
        a->uid[w] = u;
        a->flags[w] = a->flags[i];
        a->modseq[w] = a->modseq[i];
        w++;
    }
    a->n = w;
}

/* ---------------------------------------------------------------------- */
/* The view                                                               */
/* ---------------------------------------------------------------------- */

/* An allocator that counts the heap the view holds, glibc's real block
 * sizes included (malloc_usable_size). */
static size_t heap_live;

static void *count_malloc(size_t size, void *user)
{
    (void)user;
    void *p = malloc(size);
    if (p != NULL)
        heap_live += malloc_usable_size(p);
    return p;
}

static void *count_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, size);
    if (p != NULL) {
        heap_live -= old;
        heap_live += malloc_usable_size(p);
    }
    return p;
}

static void count_free(void *ptr, void *user)
{
    (void)user;
    if (ptr != NULL) {
        heap_live -= malloc_usable_size(ptr);
        free(ptr);
    }
}

static uint64_t events;

static void ev_exists(void *user, uint32_t old_count, uint32_t new_count)
{
    (void)user;
    events += new_count - old_count;
}

static void ev_expunge(void *user, uint32_t seq, uint32_t uid)
{
    (void)user;
    (void)seq;
    (void)uid;
    events++;
}

static void ev_flags(void *user, uint32_t seq, uint32_t uid, imk_strlist flags, uint64_t modseq)
{
    (void)user;
    (void)seq;
    (void)uid;
    (void)flags;
    (void)modseq;
    events++;
}

static void ev_problem(void *user, const char *message)
{
    (void)user;
    fprintf(stderr, "bench_view: unexpected problem: %s\n", message);
    exit(1);
}

static imk_view *view_load(const mailbox *mb, double *seconds)
{
    static imk_str sets[NSETS][6];
    static size_t set_count[NSETS];
    for (int s = 0; s < NSETS; s++) {
        set_count[s] = 0;
        for (int f = 0; f < 6; f++)
            if (set_bits[s] & (1u << f)) {
                sets[s][set_count[s]].data = flag_names[f];
                sets[s][set_count[s]++].len = strlen(flag_names[f]);
            }
    }
    imk_allocator alloc = {count_malloc, count_realloc, count_free, NULL};
    imk_view *v = NULL;
    double t0 = now();
    if (imk__view_new(&alloc, &v) != 0)
        fail("imk__view_new failed");
    imk__view_observer obs = {ev_exists, ev_expunge, ev_flags, NULL, ev_problem, NULL};
    imk__view_set_observer(v, &obs);
    imk__view_set_uidvalidity(v, 1700000000);
    if (imk__view_exists(v, mb->n) != 0)
        fail("EXISTS failed");
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.present = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ;
    for (uint32_t i = 0; i < mb->n; i++) {
        f.seq = i + 1;
        f.uid = mb->uid[i];
        f.flags.items = sets[mb->set[i]];
        f.flags.count = set_count[mb->set[i]];
        f.modseq = mb->modseq[i];
        if (imk__view_fetch(v, &f) != 0)
            fail("FETCH failed");
    }
    *seconds = now() - t0;
    return v;
}

/* Every UID of the view equals the array's. */
static void prove_equal(const imk_view *v, const array_view *a, const char *after)
{
    if (imk_view_exists(v) != a->n) {
        fprintf(stderr, "bench_view: after %s: view has %lu messages, array %lu\n", after,
                (unsigned long)imk_view_exists(v), (unsigned long)a->n);
        exit(1);
    }
    for (uint32_t seq = 1; seq <= a->n; seq++)
        if (imk_view_uid_of_seq(v, seq) != a->uid[seq - 1]) {
            fprintf(stderr, "bench_view: after %s: message %lu differs\n", after,
                    (unsigned long)seq);
            exit(1);
        }
    if (!imk__view_check(v)) {
        fprintf(stderr, "bench_view: after %s: imk__view_check failed\n", after);
        exit(1);
    }
}

/* ---------------------------------------------------------------------- */
/* Timing                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct best {
    double wall, cpu;
} best;

static void best_init(best *b)
{
    b->wall = b->cpu = 1e30;
}

static void best_add(best *b, double wall, double cpu, const char *label, unsigned run)
{
    if (wall < b->wall)
        b->wall = wall;
    if (cpu < b->cpu)
        b->cpu = cpu;
    if (verbose)
        printf("    run %u  %-34s %10.3f ms wall  %10.3f ms cpu\n", run + 1, label, wall * 1e3,
               cpu * 1e3);
}

/* Time a block of code: TIMED(best, label, run, statements...). */
#define TIMED(b, label, run, ...)                                                                  \
    do {                                                                                           \
        double w0_ = now(), c0_ = cpu_now();                                                       \
        __VA_ARGS__;                                                                               \
        best_add(&(b), now() - w0_, cpu_now() - c0_, (label), (run));                              \
    } while (0)

static void row(const char *what, uint64_t ops, const best *view, const best *array,
                const char *goal)
{
    double ratio = array->wall / view->wall;
    printf("  %-38s %11.2f ms %8.1f ns/op | %11.2f ms %8.1f ns/op | %9.2fx %s\n", what,
           view->wall * 1e3, view->wall * 1e9 / (double)ops, array->wall * 1e3,
           array->wall * 1e9 / (double)ops, ratio, goal);
}

static void header(void)
{
    printf("  %-38s %27s | %27s | %10s\n", "", "view", "array (memmove)", "array/view");
}

/* ---------------------------------------------------------------------- */
/* The benchmarks                                                         */
/* ---------------------------------------------------------------------- */

typedef struct config {
    uint32_t messages, expunges, vanished, lookups;
    unsigned runs;
    uint64_t seed;
} config;

static volatile uint64_t sink;

static void lookups(const config *c, const mailbox *mb, const imk_view *v, const array_view *a,
                    unsigned run, best *v_u2s, best *a_u2s, best *v_s2u, best *a_s2u)
{
    uint32_t n = a->n;
    uint32_t *uids = xmalloc(c->lookups * sizeof(uint32_t));
    uint32_t *seqs = xmalloc(c->lookups * sizeof(uint32_t));
    for (uint32_t i = 0; i < c->lookups; i++) {
        uids[i] = a->uid[rnd(n)];
        seqs[i] = 1 + rnd(n);
    }
    (void)mb;
    uint64_t vs = 0, as = 0, vs2 = 0, as2 = 0;
    TIMED(*v_u2s, "view  UID -> seq", run, {
        for (uint32_t i = 0; i < c->lookups; i++)
            vs += imk_view_seq_of_uid(v, uids[i]);
    });
    TIMED(*a_u2s, "array UID -> seq", run, {
        for (uint32_t i = 0; i < c->lookups; i++)
            as += array_seq_of_uid(a, uids[i]);
    });
    TIMED(*v_s2u, "view  seq -> UID", run, {
        for (uint32_t i = 0; i < c->lookups; i++)
            vs2 += imk_view_uid_of_seq(v, seqs[i]);
    });
    TIMED(*a_s2u, "array seq -> UID", run, {
        for (uint32_t i = 0; i < c->lookups; i++)
            as2 += array_uid_of_seq(a, seqs[i]);
    });
    if (vs != as || vs2 != as2)
        fail("lookups: the view and the array disagree");
    sink += vs + vs2;
    free(uids);
    free(seqs);
}

/* Ranges covering about `target` present UIDs: runs of 1..99 messages
 * removed, separated by runs kept, so that they spread over the mailbox. */
static size_t make_ranges(const mailbox *mb, uint32_t target, imk_range **out, uint32_t *covered)
{
    size_t cap = target / 25 + 16, count = 0;
    imk_range *r = xmalloc(cap * sizeof(imk_range));
    uint32_t i = 0, total = 0;
    uint32_t keep_avg = (uint32_t)((uint64_t)50 * (mb->n - target) / (target ? target : 1));
    while (total < target && i < mb->n) {
        i += rnd(2 * keep_avg + 1);
        uint32_t len = 1 + rnd(99);
        if (len > target - total)
            len = target - total;
        if (i >= mb->n)
            break;
        if (len > mb->n - i)
            len = mb->n - i;
        if (count == cap) {
            cap *= 2;
            r = realloc(r, cap * sizeof(imk_range));
            if (r == NULL)
                fail("out of memory");
        }
        r[count].first = mb->uid[i];
        r[count].last = mb->uid[i + len - 1];
        count++;
        total += len;
        i += len + 1; /* at least one message kept between ranges */
    }
    *out = r;
    *covered = total;
    return count;
}

static void bench(const config *c)
{
    mailbox mb;
    rng_state = c->seed;
    mailbox_make(&mb, c->messages);

    /* operations, the same for every run and both sides */
    uint32_t *expunge_seqs = xmalloc(c->expunges * sizeof(uint32_t));
    for (uint32_t k = 0; k < c->expunges; k++)
        expunge_seqs[k] = 1 + rnd(c->messages - k);
    imk_range *ranges;
    uint32_t covered;
    size_t nranges = make_ranges(&mb, c->vanished, &ranges, &covered);

    printf("mailbox: %lu messages, UIDs %lu..%lu with gaps, %d flag sets, MODSEQ on each\n",
           (unsigned long)mb.n, (unsigned long)mb.uid[0], (unsigned long)mb.uid[mb.n - 1], NSETS);

    best load, va, aa, vb1, vbn, ab_range, ab_filter;
    best v_u2s, a_u2s, v_s2u, a_s2u, v_u2s2, a_u2s2, v_s2u2, a_s2u2;
    best_init(&load);
    best_init(&va);
    best_init(&aa);
    best_init(&vb1);
    best_init(&vbn);
    best_init(&ab_range);
    best_init(&ab_filter);
    best_init(&v_u2s);
    best_init(&a_u2s);
    best_init(&v_s2u);
    best_init(&a_s2u);
    best_init(&v_u2s2);
    best_init(&a_u2s2);
    best_init(&v_s2u2);
    best_init(&a_s2u2);
    size_t mem_full = 0, heap_full = 0, mem_after = 0, heap_after = 0;
    uint32_t after_n = 0;

    for (unsigned run = 0; run < c->runs; run++) {
        /* (c) and (d) on the full mailbox, then (a) */
        double load_s;
        heap_live = 0;
        imk_view *v = view_load(&mb, &load_s);
        best_add(&load, load_s, load_s, "view  load (EXISTS + FETCH)", run);
        array_view a;
        array_load(&a, &mb);
        prove_equal(v, &a, "loading");
        mem_full = imk_view_memory(v);
        heap_full = heap_live;
        lookups(c, &mb, v, &a, run, &v_u2s, &a_u2s, &v_s2u, &a_s2u);

        uint64_t ev0 = events;
        TIMED(va, "view  EXPUNGEs", run, {
            for (uint32_t k = 0; k < c->expunges; k++)
                if (imk__view_expunge(v, expunge_seqs[k]) != 0)
                    fail("EXPUNGE failed");
        });
        if (events - ev0 != c->expunges)
            fail("EXPUNGE: events missing");
        TIMED(aa, "array EXPUNGEs", run, {
            for (uint32_t k = 0; k < c->expunges; k++)
                array_expunge(&a, expunge_seqs[k]);
        });
        prove_equal(v, &a, "the EXPUNGEs");
        mem_after = imk_view_memory(v);
        heap_after = heap_live;
        after_n = a.n;
        lookups(c, &mb, v, &a, run, &v_u2s2, &a_u2s2, &v_s2u2, &a_s2u2);
        imk__view_free(v);
        array_free(&a);

        /* (b) on fresh copies */
        imk_seqset set = {nranges, ranges};
        double unused;
        v = view_load(&mb, &unused);
        ev0 = events;
        TIMED(vb1, "view  VANISHED, one response", run, {
            if (imk__view_vanished(v, &set) != 0)
                fail("VANISHED failed");
        });
        if (events - ev0 != covered)
            fail("VANISHED: wrong number of events");
        array_load(&a, &mb);
        TIMED(ab_range, "array VANISHED, memmove per range", run,
              array_vanish_ranges(&a, ranges, nranges));
        prove_equal(v, &a, "VANISHED (memmove per range)");
        array_free(&a);
        array_load(&a, &mb);
        TIMED(ab_filter, "array VANISHED, one filter pass", run,
              array_vanish_filter(&a, ranges, nranges));
        prove_equal(v, &a, "VANISHED (filter pass)");
        imk__view_free(v);
        v = view_load(&mb, &unused);
        TIMED(vbn, "view  VANISHED, one response/range", run, {
            for (size_t k = 0; k < nranges; k++) {
                imk_seqset one = {1, &ranges[k]};
                if (imk__view_vanished(v, &one) != 0)
                    fail("VANISHED failed");
            }
        });
        prove_equal(v, &a, "VANISHED (one response per range)");
        imk__view_free(v);
        array_free(&a);
    }

    printf("view built by EXISTS %lu + %lu FETCH (UID FLAGS MODSEQ): %.1f ms (%.1f ns/message)\n",
           (unsigned long)mb.n, (unsigned long)mb.n, load.wall * 1e3, load.wall * 1e9 / mb.n);
    header();
    char what[96];
    char goal[64];
    snprintf(what, sizeof(what), "(a) %lu EXPUNGEs, random seqs", (unsigned long)c->expunges);
    snprintf(goal, sizeof(goal), "goal >= 100x: %s", aa.wall / va.wall >= 100 ? "met" : "MISSED");
    row(what, c->expunges, &va, &aa, goal);
    snprintf(what, sizeof(what), "(b) VANISHED %lu UIDs, %lu ranges", (unsigned long)covered,
             (unsigned long)nranges);
    printf("  %s\n", what);
    row("      view 1 response; array memmove/range", covered, &vb1, &ab_range, "");
    row("      view 1 response; array 1 filter pass", covered, &vb1, &ab_filter, "");
    snprintf(what, sizeof(what), "      view %lu responses; memmove/range", (unsigned long)nranges);
    row(what, covered, &vbn, &ab_range, "");
    printf("  (c) %lu lookups each way, full mailbox (%lu messages)\n", (unsigned long)c->lookups,
           (unsigned long)mb.n);
    snprintf(goal, sizeof(goal), "goal view <= 2x array: %s",
             v_u2s.wall <= 2 * a_u2s.wall ? "met" : "MISSED");
    row("      UID -> seq", c->lookups, &v_u2s, &a_u2s, goal);
    snprintf(goal, sizeof(goal), "goal view <= 2x array: %s",
             v_s2u.wall <= 2 * a_s2u.wall ? "met" : "MISSED");
    row("      seq -> UID", c->lookups, &v_s2u, &a_s2u, goal);
    printf("  (c) the same after (a) (%lu messages)\n", (unsigned long)after_n);
    snprintf(goal, sizeof(goal), "goal view <= 2x array: %s",
             v_u2s2.wall <= 2 * a_u2s2.wall ? "met" : "MISSED");
    row("      UID -> seq", c->lookups, &v_u2s2, &a_u2s2, goal);
    snprintf(goal, sizeof(goal), "goal view <= 2x array: %s",
             v_s2u2.wall <= 2 * a_s2u2.wall ? "met" : "MISSED");
    row("      seq -> UID", c->lookups, &v_s2u2, &a_s2u2, goal);
    /* the array holds 14 bytes per slot; after (a) it keeps its slots
     * unless it reallocates */
    printf("  (d) memory per message             requested  (heap, glibc)        array\n");
    printf("      full mailbox                  %8.2f B    (%5.2f B)       %8.2f B    goal <= 16: "
           "%s\n",
           (double)mem_full / mb.n, (double)heap_full / mb.n, 14.0,
           (double)mem_full / mb.n <= 16.0 ? "met" : "MISSED");
    printf("      after (a)                     %8.2f B    (%5.2f B)       %8.2f B    goal <= 16: "
           "%s\n",
           (double)mem_after / after_n, (double)heap_after / after_n, 14.0 * c->messages / after_n,
           (double)mem_after / after_n <= 16.0 ? "met" : "MISSED");
    sink += events;

    free(expunge_seqs);
    free(ranges);
    free(mb.uid);
    free(mb.set);
    free(mb.modseq);
}

static uint32_t arg_u32(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0 || v > UINT32_MAX) {
        fprintf(stderr, "bench_view: bad number %s\n", s);
        exit(2);
    }
    return (uint32_t)v;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_view [--quick] [--messages N] [--expunges N] [--vanished N]\n"
                    "                  [--lookups N] [--runs N] [--seed N] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    config c = {1000000, 100000, 500000, 1000000, 3, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            c.messages = 100000;
            c.expunges = 10000;
            c.vanished = 50000;
            c.lookups = 100000;
        } else if (strcmp(a, "--messages") == 0 && i + 1 < argc) {
            c.messages = arg_u32(argv[++i]);
        } else if (strcmp(a, "--expunges") == 0 && i + 1 < argc) {
            c.expunges = arg_u32(argv[++i]);
        } else if (strcmp(a, "--vanished") == 0 && i + 1 < argc) {
            c.vanished = arg_u32(argv[++i]);
        } else if (strcmp(a, "--lookups") == 0 && i + 1 < argc) {
            c.lookups = arg_u32(argv[++i]);
        } else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            c.runs = arg_u32(argv[++i]);
        } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            c.seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = 1;
        } else {
            usage();
        }
    }
    if (c.expunges >= c.messages || c.vanished >= c.messages)
        usage();
    printf("bench_view: imapkit %s mailbox view vs sorted arrays with memmove; seed %llu, best of "
           "%u runs\n",
           imk_version(), (unsigned long long)c.seed, c.runs);
    bench(&c);
    return 0;
}
