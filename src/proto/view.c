/* SPDX-License-Identifier: MIT */
/*
 * The mailbox view (DESIGN.md section 3): per message UID, flags and MODSEQ
 * of the selected mailbox, in sequence-number order, with the mailbox-wide
 * values beside them.
 *
 * Messages live in fixed-size blocks (B slots, 256 by default), in sequence
 * order, each block one allocation laid out as a struct of arrays:
 *
 *   block b:  | modseq[B] (u64) | uid[B] (u32) | flags[B] (u16) |   14 bytes/slot
 *             '-- count[b] slots used, in order; the rest is free -'
 *
 *   per block (one allocation for all blocks, grown by doubling):
 *     blocks[b]   the block's memory, NULL when the block is empty
 *     count[b]    slots used (0..B)
 *     fen[]       Fenwick tree over count[]: prefix sums in O(log nb)
 *   umax[]        segment tree over the blocks: the largest known UID of
 *                 each block (0 = none known), max of the children above
 *
 *   seq 1..7, B = 4:
 *     count  [ 4 ][ 3 ][ 0 ][ 1 ]      <- block 2 emptied by expunges
 *     uid    [3 5 0 9][11 0 12][  ][0] <- 0 = not known yet
 *     umax       9      12      0   0   (leaves; internal nodes: max)
 *
 * Sequence number -> message. While the view is dense - every block but
 * the last full, as after SELECT, the FETCH of the UIDs and any number of
 * EXISTS - the block is (seq - 1) / B: O(1), and uid_of_seq() takes a few
 * instructions. Once a removal leaves a hole before the last block:
 * interpolation guesses the block ((seq - 1) * nb / exists), the Fenwick
 * prefix sum gives its exact first sequence number, and up to three steps
 * to a neighbour find the right one (removals leave the blocks about evenly
 * filled); failing that, a branch-free Fenwick descent, O(log nb). Nodes of
 * the Fenwick array past nb hold UINT32_MAX, so the descent needs no bounds
 * test.
 *
 * UID -> message: descend the segment tree to the first block whose largest
 * known UID is >= uid (known UIDs ascend, so that is the only block that can
 * hold it), O(log nb), then binary-search the block. Unknown UIDs (0) in the
 * block are skipped during that search; with none it is O(log B), with
 * some it is bounded by B. The sequence number is the Fenwick prefix of the
 * block plus the slot. So both lookups are O(log n) when all UIDs are known
 * and O(log n + B) otherwise.
 *
 * EXPUNGE removes the slot from its block (a memmove bounded by B, a
 * constant) and updates the Fenwick tree, and the segment tree when the
 * largest known UID of the block left: O(B + log n). Then, in order:
 *   - a block that empties is freed and stays as an empty entry (count 0,
 *     invisible to both trees);
 *   - a block that falls below B/4 messages moves into its nearest
 *     non-empty neighbour (found through the Fenwick tree) when both fit in
 *     one block: O(B + log n). A merge empties a block, and only EXISTS
 *     creates blocks, so merges are paid for by the appends that filled
 *     them;
 *   - when fewer than 89.2% of the allocated slots are in use (and the
 *     view has 16 blocks or more), every message is packed into the
 *     fewest blocks, in place: O(n), once per 10% of the messages removed,
 *     so amortised O(1) per removal. It makes the view dense again, and it
 *     is what keeps it within 16 bytes per message (below);
 *   - otherwise, when more than a quarter of the entries are empty they
 *     are squeezed out and both trees rebuilt: O(nb), amortised O(1) per
 *     emptied block.
 * After a squeeze or a compaction the index arrays shrink to the smallest
 * power of two that holds the blocks, as growth would have made them.
 *
 * VANISHED of a range a:b never walks the numbers of the range: it descends
 * to the first block with a known UID >= a, removes the known UIDs <= b from
 * that block in one compaction pass, and descends again for the next block.
 * Each visit removes at least one message or ends the range, so k UIDs in
 * r ranges cost O((k + r)(B + log n)). "VANISHED 1:4000000000" on a
 * ten-message mailbox is one descent and one block.
 *
 * EXISTS appends slots with UID 0 to the last block and new full blocks
 * after it. The Fenwick tree is sized exactly to the block count, so the
 * update for the last block touches one node, and appending a block costs
 * O(log nb) once per B messages: amortised O(1) per message.
 *
 * Flags are an index (u16) into a table of interned flag sets; index 0
 * means "FLAGS not seen for this message". A set is stored normalised:
 * the six system flags of RFC 9051 section 2.3.2 (\Answered \Deleted \Draft
 * \Flagged \Recent \Seen), which the RFC makes case-insensitive, take that
 * canonical spelling; every other flag (keywords, other \-flags) is kept
 * byte for byte, because servers return keywords as stored and some treat
 * them case-sensitively; then the list is sorted by bytes and duplicates
 * dropped. Two sets are equal when their normalised forms are equal, so
 * "(\SEEN $Junk)" and "($Junk \Seen)" are one set, and a FETCH that
 * repeats a message's flags in another order is not a change. Each set
 * counts its references; unreferenced sets are freed lazily, when they
 * outnumber the referenced ones or the 65535 indices run out. A mailbox
 * with more than 65535 distinct sets in use at once (a hostile server:
 * real mailboxes have tens) gets a problem report, and the FETCH's FLAGS
 * are not recorded.
 *
 * Memory per message: 14 bytes in a full block of 256, plus the index: 18
 * bytes per block entry (pointer, Fenwick node and its sentinel, count)
 * and 8 per segment-tree leaf, arrays at most twice the entries, entries
 * at most 4/3 of the allocated blocks. That is 3584 + (18 + 8) * 2 * 4/3
 * = 3653 bytes per allocated block at worst, 14.27 bytes per slot, so a
 * fill F costs at most 14.27 / F bytes per message: 16 at F = 89.2%, the
 * compaction threshold. In practice: 14.1 bytes after SELECT and FETCH,
 * 15.7 after 10% of random EXPUNGEs. Add the flag sets (a few hundred
 * bytes) and about 3 KB of fixed cost, negligible from some 40,000
 * messages up. imk_view_memory() counts every byte requested from the allocator,
 * not the allocator's own headers (8 bytes per block of 3584 with glibc).
 *
 * Invariants (imk__view_check):
 *   - sum(count) == exists; count[b] <= B; blocks[b] == NULL iff count[b] == 0;
 *     n_empty is the number of empty entries;
 *   - known UIDs strictly ascend in sequence order, whatever unknown UIDs lie
 *     between them;
 *   - fen[] is the Fenwick tree of count[], UINT32_MAX past nb; umax leaves
 *     are the largest known UID of each block (0 beyond nb), internal nodes
 *     the max of their children;
 *   - dense implies every block but the last is full;
 *   - every flags index is 0 or a live set; each set's refs is its number of
 *     messages; every set is normalised and findable in the hash table.
 *
 * Allocation failure: every apply function allocates everything it needs
 * before it changes anything, so IMK_ENOMEM leaves the view as it was (a
 * grown array or an unreferenced interned set may remain; neither is
 * visible).
 *
 * MODSEQ from FETCH is stored per message but never raises HIGHESTMODSEQ:
 * "It is not safe to update the client's copy of the HIGHESTMODSEQ value
 * with a MODSEQ FETCH data item value as soon as it is received" (RFC 7162
 * section 6): servers need not send MODSEQs in increasing order and may
 * delay a VANISHED with a smaller one, so a client that trusted them could
 * miss changes after a disconnection. The session sets HIGHESTMODSEQ
 * explicitly, from the [HIGHESTMODSEQ] response code.
 *
 * Observer callbacks run after the change they report, with the view
 * consistent. on_flags comes once per FETCH that changed FLAGS or MODSEQ
 * (learning a UID is not reported); its list is empty when the message's
 * FLAGS are not known yet. A VANISHED reports its removals in ascending UID
 * order, each with the sequence number it had once the removals before it
 * were done (as if they were EXPUNGEs); the view may already lack later
 * messages of the same block. Callbacks must not call the apply functions.
 */
#include "proto/view.h"

#include "util/alloc.h"
#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIEW_BLOCK_DEFAULT 256u
#define VIEW_BLOCK_MIN 2u
#define VIEW_BLOCK_MAX 32768u /* count[] is uint16_t */
#define VIEW_MAX_MESSAGES_DEFAULT 50000000u
#define FLAGSET_SLOTS 65536u /* indices 1..65535; 0 = flags unknown */
#define SLOT_BYTES 14u       /* modseq 8 + uid 4 + flags 2 */

#if defined(__GNUC__)
#define VIEW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VIEW_PRINTF(f, a)
#endif

/* One interned flag set. items and their bytes are one allocation. */
typedef struct flagset {
    imk_str *items; /* NULL: free slot */
    size_t count;
    size_t bytes; /* size of the allocation, for imk_view_memory() */
    uint32_t refs;
    uint32_t hash; /* for a free slot: the next free index, 0 = end */
} flagset;

/* A removal waiting to be reported (VANISHED in one block). */
typedef struct removal {
    uint32_t seq, uid;
} removal;

/* A copied FLAGS / PERMANENTFLAGS list. */
typedef struct strlist_copy {
    imk_str *items;
    size_t count;
    size_t bytes;
} strlist_copy;

struct imk_view {
    imk_allocator alloc;
    imk__view_observer obs;
    size_t memory; /* bytes requested from alloc and not yet freed */

    uint64_t uidvalidity, uidnext, highest_modseq;
    uint32_t recent; /* the last RECENT count (RFC 3501; IMAP4rev2 has none) */
    int read_only;
    strlist_copy mailbox_flags, permanent_flags;

    uint32_t exists;
    uint32_t max_messages;
    uint32_t bsize;  /* B: slots per block */
    unsigned bshift; /* log2(B) when B is a power of two, else 0 */
    int dense;       /* every block but the last is full: seq -> block is a division */

    /* blocks: nb entries in use, bcap allocated */
    size_t nb, bcap, n_empty;
    void *meta; /* one allocation: blocks[bcap], fen[2 * bcap], count[bcap] */
    uint64_t **blocks;
    uint32_t *fen;
    uint16_t *count;
    size_t fen_top; /* highest power of two <= nb, 0 when nb == 0 */
    uint32_t *umax; /* 2 * tcap nodes; leaves at tcap + b; node 0 unused */
    size_t tcap;

    removal *removed; /* bsize entries */

    flagset *sets;
    size_t nsets, setcap; /* slots in use (index 0 reserved) and allocated */
    size_t live_sets, garbage_sets;
    uint32_t free_head;
    uint16_t *htab; /* open addressing, linear probing; 0 = empty */
    size_t hcap;

    char problem[200];
};

/* ------------------------------------------------------------------ */
/* Memory, with accounting                                             */
/* ------------------------------------------------------------------ */

static void *vm_alloc(imk_view *v, size_t size)
{
    void *p = imk__malloc(&v->alloc, size);
    if (p != NULL)
        v->memory += size;
    return p;
}

static void vm_free(imk_view *v, void *p, size_t size)
{
    if (p != NULL) {
        imk__free(&v->alloc, p);
        v->memory -= size;
    }
}

/* ------------------------------------------------------------------ */
/* Observer                                                            */
/* ------------------------------------------------------------------ */

static void problem(imk_view *v, const char *fmt, ...) VIEW_PRINTF(2, 3);

static void problem(imk_view *v, const char *fmt, ...)
{
    if (v->obs.on_problem == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->problem, sizeof(v->problem), fmt, ap);
    va_end(ap);
    v->obs.on_problem(v->obs.user, v->problem);
}

/* ------------------------------------------------------------------ */
/* Block layout                                                        */
/* ------------------------------------------------------------------ */

static size_t block_bytes(const imk_view *v)
{
    return (size_t)v->bsize * SLOT_BYTES;
}

static uint64_t *blk_modseq(const imk_view *v, size_t b)
{
    return v->blocks[b];
}

static uint32_t *blk_uid(const imk_view *v, size_t b)
{
    return (uint32_t *)(void *)(v->blocks[b] + v->bsize);
}

static uint16_t *blk_flags(const imk_view *v, size_t b)
{
    return (uint16_t *)(void *)(blk_uid(v, b) + v->bsize);
}

/* Move `n` slots inside block b from `from` to `to` (may overlap). */
static void slots_move(const imk_view *v, size_t b, uint32_t to, uint32_t from, uint32_t n)
{
    if (n == 0 || to == from)
        return;
    memmove(blk_modseq(v, b) + to, blk_modseq(v, b) + from, (size_t)n * sizeof(uint64_t));
    memmove(blk_uid(v, b) + to, blk_uid(v, b) + from, (size_t)n * sizeof(uint32_t));
    memmove(blk_flags(v, b) + to, blk_flags(v, b) + from, (size_t)n * sizeof(uint16_t));
}

/* Copy `n` slots from block src (from slot `from`) to block dst (slot `to`). */
static void slots_copy(const imk_view *v, size_t dst, uint32_t to, size_t src, uint32_t from,
                       uint32_t n)
{
    if (n == 0)
        return;
    memcpy(blk_modseq(v, dst) + to, blk_modseq(v, src) + from, (size_t)n * sizeof(uint64_t));
    memcpy(blk_uid(v, dst) + to, blk_uid(v, src) + from, (size_t)n * sizeof(uint32_t));
    memcpy(blk_flags(v, dst) + to, blk_flags(v, src) + from, (size_t)n * sizeof(uint16_t));
}

static void slots_clear(const imk_view *v, size_t b, uint32_t from, uint32_t n)
{
    memset(blk_modseq(v, b) + from, 0, (size_t)n * sizeof(uint64_t));
    memset(blk_uid(v, b) + from, 0, (size_t)n * sizeof(uint32_t));
    memset(blk_flags(v, b) + from, 0, (size_t)n * sizeof(uint16_t));
}

/* The largest known UID among slots [0, end) of block b, 0 if none. */
static uint32_t block_last_known(const imk_view *v, size_t b, uint32_t end)
{
    const uint32_t *uid = blk_uid(v, b);
    while (end > 0) {
        if (uid[end - 1] != 0)
            return uid[end - 1];
        end--;
    }
    return 0;
}

/* The slot holding `uid` in a block of n slots, or -1. Known UIDs ascend;
 * unknown ones (0) are stepped over: O(log n) without them, O(n) at most. */
static long block_find_uid(const uint32_t *uids, uint32_t n, uint32_t uid)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, m = mid;
        while (m > lo && uids[m] == 0)
            m--;
        if (uids[m] == 0 || uids[m] < uid) {
            lo = mid + 1; /* slots m+1..mid are unknown */
        } else if (uids[m] == uid) {
            return (long)m;
        } else {
            hi = m;
        }
    }
    return -1;
}

/* The first slot whose UID is known and >= a, or n. Same cost. */
static uint32_t block_lower_bound(const uint32_t *uids, uint32_t n, uint32_t a)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, m = mid;
        while (m > lo && uids[m] == 0)
            m--;
        if (uids[m] == 0 || uids[m] < a)
            lo = mid + 1;
        else
            hi = m;
    }
    return lo;
}

/* ------------------------------------------------------------------ */
/* Fenwick tree over block counts (1-based nodes fen[1..nb])           */
/* ------------------------------------------------------------------ */

static size_t lowbit(size_t i)
{
    return i & (~i + 1);
}

static void fen_set_top(imk_view *v)
{
    size_t top = 0;
    if (v->nb > 0) {
        top = 1;
        while (top <= v->nb / 2)
            top *= 2;
    }
    v->fen_top = top;
}

/* Nodes past nb hold UINT32_MAX, so that the descent below needs no bounds
 * test: it never steps onto them. fen[] has 2 * bcap entries, and the
 * descent reaches at most 2 * fen_top - 1 <= 2 * nb - 1. */
static void fen_sentinels(imk_view *v, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        v->fen[i] = UINT32_MAX;
}

/* Add `delta` (two's complement for a decrease) to block b's count. The
 * last block's update touches one node: nodes past nb do not exist. */
static void fen_add(imk_view *v, size_t b, uint32_t delta)
{
    for (size_t i = b + 1; i <= v->nb; i += lowbit(i))
        v->fen[i] += delta;
}

/* Messages in blocks [0, b). */
static uint32_t fen_prefix(const imk_view *v, size_t b)
{
    uint32_t sum = 0;
    for (size_t i = b; i > 0; i &= i - 1)
        sum += v->fen[i];
    return sum;
}

/* Block and slot of sequence number seq (1 <= seq <= exists). While the
 * view is dense that is a division; otherwise a Fenwick descent, written
 * without branches on the data (they would be mispredicted half the time). */
static void fen_locate(const imk_view *v, uint32_t seq, size_t *block, uint32_t *slot)
{
    uint32_t s = seq - 1;
    if (v->dense) {
        if (v->bshift != 0) {
            *block = s >> v->bshift;
            *slot = s & (v->bsize - 1);
        } else {
            *block = s / v->bsize;
            *slot = s % v->bsize;
        }
        return;
    }
    /* Removals leave the blocks about evenly filled, so interpolation
     * guesses the block, or one beside it; the Fenwick prefix sum (a few
     * independent loads, no branches) gives its exact start. A bad guess
     * (uneven blocks) falls back to the descent. */
    size_t b = (size_t)((uint64_t)s * v->nb / v->exists);
    uint32_t before = fen_prefix(v, b);
    for (int steps = 0; steps < 3; steps++) {
        if (before > s) {
            before -= v->count[--b];
        } else if (s - before >= v->count[b]) {
            before += v->count[b++];
        } else {
            *block = b;
            *slot = s - before;
            return;
        }
    }
    const uint32_t *fen = v->fen;
    size_t pos = 0;
    uint32_t rem = seq;
    for (size_t step = v->fen_top; step != 0; step >>= 1) {
        uint32_t f = fen[pos + step];
        uint32_t right = 0u - (uint32_t)(f < rem); /* all ones: the target is further */
        pos += step & (0 - (size_t)(f < rem));
        rem -= f & right;
    }
    *block = pos;
    *slot = rem - 1;
}

/* Make block nb (count already in count[nb]) part of the tree. */
static void fen_append(imk_view *v)
{
    size_t i = v->nb + 1;
    uint32_t sum = v->count[v->nb];
    for (size_t m = 1; m < lowbit(i); m *= 2)
        sum += v->fen[i - m];
    v->fen[i] = sum;
    v->nb = i;
    fen_set_top(v);
}

/* Rebuild from count[] in O(nb); old_nb was the size before. */
static void fen_rebuild(imk_view *v, size_t old_nb)
{
    for (size_t i = 1; i <= v->nb; i++)
        v->fen[i] = v->count[i - 1];
    for (size_t i = 1; i <= v->nb; i++) {
        size_t up = i + lowbit(i);
        if (up <= v->nb)
            v->fen[up] += v->fen[i];
    }
    if (old_nb > v->nb)
        fen_sentinels(v, v->nb + 1, old_nb + 1);
    fen_set_top(v);
}

/* Whether every block but the last is full: O(nb). */
static int blocks_dense(const imk_view *v)
{
    for (size_t b = 0; b + 1 < v->nb; b++)
        if (v->count[b] != v->bsize)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Segment tree of the largest known UID per block                     */
/* ------------------------------------------------------------------ */

static uint32_t max_u32(uint32_t a, uint32_t b)
{
    return a > b ? a : b;
}

static uint32_t seg_leaf(const imk_view *v, size_t b)
{
    return v->umax[v->tcap + b];
}

static void seg_set(imk_view *v, size_t b, uint32_t value)
{
    size_t i = v->tcap + b;
    v->umax[i] = value;
    for (i /= 2; i > 0; i /= 2) {
        uint32_t m = max_u32(v->umax[2 * i], v->umax[2 * i + 1]);
        if (v->umax[i] == m)
            break; /* the ancestors are unchanged too */
        v->umax[i] = m;
    }
}

static uint32_t seg_max_all(const imk_view *v)
{
    return v->tcap == 0 ? 0 : v->umax[1];
}

/* The first block whose largest known UID is >= uid, or (size_t)-1. */
static size_t seg_first_ge(const imk_view *v, uint32_t uid)
{
    if (v->tcap == 0 || v->umax[1] < uid)
        return (size_t)-1;
    size_t i = 1;
    while (i < v->tcap)
        i = v->umax[2 * i] >= uid ? 2 * i : 2 * i + 1;
    return i - v->tcap;
}

/* The largest known UID in blocks [0, b). */
static uint32_t seg_prefix_max(const imk_view *v, size_t b)
{
    uint32_t m = 0;
    size_t lo = v->tcap, hi = v->tcap + b;
    while (lo < hi) {
        if (lo & 1)
            m = max_u32(m, v->umax[lo++]);
        if (hi & 1)
            m = max_u32(m, v->umax[--hi]);
        lo /= 2;
        hi /= 2;
    }
    return m;
}

static void seg_rebuild_internal(imk_view *v)
{
    for (size_t i = v->tcap - 1; i > 0; i--)
        v->umax[i] = max_u32(v->umax[2 * i], v->umax[2 * i + 1]);
}

/* ------------------------------------------------------------------ */
/* Growing the per-block arrays                                         */
/* ------------------------------------------------------------------ */

static size_t meta_bytes(size_t cap)
{
    return cap * sizeof(uint64_t *) + 2 * cap * sizeof(uint32_t) + cap * sizeof(uint16_t);
}

/* Room for `need` block entries. Nothing changes on failure. */
static int reserve_blocks(imk_view *v, size_t need)
{
    if (need <= v->bcap)
        return 0;
    size_t cap = v->bcap < 16 ? 16 : v->bcap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return IMK_ENOMEM;
        cap *= 2;
    }
    size_t bytes;
    if (!imk__mul_ok(cap, sizeof(uint64_t *) + 2 * sizeof(uint32_t) + sizeof(uint16_t), &bytes))
        return IMK_ENOMEM;
    void *meta = vm_alloc(v, meta_bytes(cap));
    if (meta == NULL)
        return IMK_ENOMEM;
    uint64_t **blocks = meta;
    uint32_t *fen = (uint32_t *)(void *)(blocks + cap);
    uint16_t *count = (uint16_t *)(void *)(fen + 2 * cap);
    if (v->nb > 0) {
        memcpy(blocks, v->blocks, v->nb * sizeof(*blocks));
        memcpy(fen, v->fen, (v->nb + 1) * sizeof(*fen));
        memcpy(count, v->count, v->nb * sizeof(*count));
    }
    fen[0] = 0;
    vm_free(v, v->meta, meta_bytes(v->bcap));
    v->meta = meta;
    v->blocks = blocks;
    v->fen = fen;
    v->count = count;
    v->bcap = cap;
    fen_sentinels(v, v->nb + 1, 2 * cap);
    return 0;
}

/* A segment tree with room for `need` leaves. Nothing changes on failure. */
static int reserve_tree(imk_view *v, size_t need)
{
    if (need <= v->tcap)
        return 0;
    size_t cap = v->tcap == 0 ? 1 : v->tcap;
    while (cap < need) {
        if (cap > SIZE_MAX / 4 / sizeof(uint32_t))
            return IMK_ENOMEM;
        cap *= 2;
    }
    uint32_t *umax = vm_alloc(v, 2 * cap * sizeof(uint32_t));
    if (umax == NULL)
        return IMK_ENOMEM;
    memset(umax, 0, 2 * cap * sizeof(uint32_t));
    if (v->tcap > 0)
        memcpy(umax + cap, v->umax + v->tcap, v->nb * sizeof(uint32_t));
    vm_free(v, v->umax, 2 * v->tcap * sizeof(uint32_t));
    v->umax = umax;
    v->tcap = cap;
    seg_rebuild_internal(v);
    return 0;
}

/* Give back index memory once the block count has fallen (after a squeeze
 * or a compaction): both arrays go to the smallest power of two that holds
 * nb, as growth would have made them. Best effort: should the allocator
 * refuse, the larger arrays stay, and nothing else changes. */
static void shrink_index(imk_view *v)
{
    size_t cap = 16;
    while (cap < v->nb)
        cap *= 2;
    if (cap < v->bcap) {
        void *meta = vm_alloc(v, meta_bytes(cap));
        if (meta != NULL) {
            uint64_t **blocks = meta;
            uint32_t *fen = (uint32_t *)(void *)(blocks + cap);
            uint16_t *count = (uint16_t *)(void *)(fen + 2 * cap);
            memcpy(blocks, v->blocks, v->nb * sizeof(*blocks));
            memcpy(fen, v->fen, (v->nb + 1) * sizeof(*fen));
            memcpy(count, v->count, v->nb * sizeof(*count));
            vm_free(v, v->meta, meta_bytes(v->bcap));
            v->meta = meta;
            v->blocks = blocks;
            v->fen = fen;
            v->count = count;
            v->bcap = cap;
            fen_sentinels(v, v->nb + 1, 2 * cap);
        }
    }
    size_t tcap = 1;
    while (tcap < v->nb)
        tcap *= 2;
    if (tcap < v->tcap) {
        uint32_t *umax = vm_alloc(v, 2 * tcap * sizeof(uint32_t));
        if (umax != NULL) {
            memset(umax, 0, 2 * tcap * sizeof(uint32_t));
            memcpy(umax + tcap, v->umax + v->tcap, v->nb * sizeof(uint32_t));
            vm_free(v, v->umax, 2 * v->tcap * sizeof(uint32_t));
            v->umax = umax;
            v->tcap = tcap;
            seg_rebuild_internal(v);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Flag sets                                                           */
/* ------------------------------------------------------------------ */

static const imk_str system_flags[] = {
    {"\\Answered", 9}, {"\\Deleted", 8}, {"\\Draft", 6},
    {"\\Flagged", 8},  {"\\Recent", 7},  {"\\Seen", 5},
};

/* The canonical spelling of a system flag, or the flag as it is. */
static imk_str flag_canonical(imk_str s)
{
    if (s.len < 2 || s.data[0] != '\\')
        return s;
    for (size_t k = 0; k < sizeof(system_flags) / sizeof(system_flags[0]); k++)
        if (imk__str_ieq(s, system_flags[k].data))
            return system_flags[k];
    return s;
}

static int str_cmp(const imk_str *a, const imk_str *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n == 0 ? 0 : memcmp(a->data, b->data, n);
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static int str_cmp_qsort(const void *a, const void *b)
{
    return str_cmp(a, b);
}

static uint32_t set_hash(const imk_str *items, size_t count)
{
    uint32_t h = 2166136261u; /* FNV-1a, with each length mixed in */
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < items[i].len; k++) {
            h ^= (unsigned char)items[i].data[k];
            h *= 16777619u;
        }
        h ^= (uint32_t)items[i].len ^ 0x9e3779b9u;
        h *= 16777619u;
    }
    return h;
}

static int set_equal(const flagset *s, const imk_str *items, size_t count)
{
    if (s->count != count)
        return 0;
    for (size_t i = 0; i < count; i++)
        if (s->items[i].len != items[i].len ||
            (items[i].len != 0 && memcmp(s->items[i].data, items[i].data, items[i].len) != 0))
            return 0;
    return 1;
}

static void set_ref(imk_view *v, uint16_t idx)
{
    if (idx == 0)
        return;
    if (v->sets[idx].refs++ == 0) {
        v->garbage_sets--;
        v->live_sets++;
    }
}

static void set_unref(imk_view *v, uint16_t idx)
{
    if (idx == 0)
        return;
    if (--v->sets[idx].refs == 0) {
        v->live_sets--;
        v->garbage_sets++;
    }
}

static void htab_insert(imk_view *v, uint16_t idx)
{
    size_t mask = v->hcap - 1, h = v->sets[idx].hash & mask;
    while (v->htab[h] != 0)
        h = (h + 1) & mask;
    v->htab[h] = idx;
}

static void htab_rebuild(imk_view *v)
{
    if (v->hcap == 0)
        return;
    memset(v->htab, 0, v->hcap * sizeof(uint16_t));
    for (size_t i = 1; i < v->nsets; i++)
        if (v->sets[i].items != NULL)
            htab_insert(v, (uint16_t)i);
}

/* Free every unreferenced set. */
static void sets_sweep(imk_view *v)
{
    if (v->garbage_sets == 0)
        return;
    for (size_t i = 1; i < v->nsets; i++) {
        flagset *s = &v->sets[i];
        if (s->items != NULL && s->refs == 0) {
            vm_free(v, s->items, s->bytes);
            s->items = NULL;
            s->count = 0;
            s->bytes = 0;
            s->hash = v->free_head;
            v->free_head = (uint32_t)i;
        }
    }
    v->garbage_sets = 0;
    htab_rebuild(v);
}

/* Create the set items[0..count) (normalised). Returns 0 with *out set,
 * 1 when every index is in use, or IMK_ENOMEM; nothing visible changes
 * unless it succeeds. */
static int set_create(imk_view *v, const imk_str *items, size_t count, uint32_t hash, uint16_t *out)
{
    if (v->garbage_sets >= 32 && v->garbage_sets > v->live_sets)
        sets_sweep(v);
    if (v->free_head == 0 && v->nsets == FLAGSET_SLOTS)
        sets_sweep(v);
    if (v->free_head == 0 && v->nsets == FLAGSET_SLOTS)
        return 1;

    /* the hash table stays at most half full */
    size_t entries = v->live_sets + v->garbage_sets + 1;
    if (entries * 2 > v->hcap) {
        size_t cap = v->hcap == 0 ? 64 : v->hcap * 2;
        uint16_t *htab = vm_alloc(v, cap * sizeof(uint16_t));
        if (htab == NULL)
            return IMK_ENOMEM;
        vm_free(v, v->htab, v->hcap * sizeof(uint16_t));
        v->htab = htab;
        v->hcap = cap;
        htab_rebuild(v);
    }
    if (v->free_head == 0 && v->nsets == v->setcap) {
        size_t cap = v->setcap * 2;
        if (cap > FLAGSET_SLOTS)
            cap = FLAGSET_SLOTS;
        flagset *sets = vm_alloc(v, cap * sizeof(flagset));
        if (sets == NULL)
            return IMK_ENOMEM;
        memcpy(sets, v->sets, v->nsets * sizeof(flagset));
        vm_free(v, v->sets, v->setcap * sizeof(flagset));
        v->sets = sets;
        v->setcap = cap;
    }

    size_t bytes = count * sizeof(imk_str);
    for (size_t i = 0; i < count; i++)
        bytes += items[i].len + 1;
    imk_str *copy = vm_alloc(v, bytes);
    if (copy == NULL)
        return IMK_ENOMEM;
    char *text = (char *)(copy + count);
    for (size_t i = 0; i < count; i++) {
        memcpy(text, items[i].data, items[i].len);
        text[items[i].len] = '\0';
        copy[i].data = text;
        copy[i].len = items[i].len;
        text += items[i].len + 1;
    }

    uint32_t idx;
    if (v->free_head != 0) {
        idx = v->free_head;
        v->free_head = v->sets[idx].hash;
    } else {
        idx = (uint32_t)v->nsets++;
    }
    flagset *s = &v->sets[idx];
    s->items = copy;
    s->count = count;
    s->bytes = bytes;
    s->refs = 0;
    s->hash = hash;
    v->garbage_sets++;
    htab_insert(v, (uint16_t)idx);
    *out = (uint16_t)idx;
    return 0;
}

/* The index of the set `flags` (normalised first). Returns 0, 1 when the
 * table is full, or IMK_ENOMEM. The set may come back unreferenced. */
static int set_intern(imk_view *v, const imk_strlist *flags, uint16_t *out)
{
    imk_str local[32];
    imk_str *items = local;
    size_t n = flags->count;
    if (n > sizeof(local) / sizeof(local[0])) {
        size_t bytes;
        if (!imk__mul_ok(n, sizeof(imk_str), &bytes))
            return IMK_ENOMEM;
        items = imk__malloc(&v->alloc, bytes);
        if (items == NULL)
            return IMK_ENOMEM;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (flags->items[i].len != 0 && flags->items[i].data != NULL)
            items[count++] = flag_canonical(flags->items[i]);
    if (count > 1) {
        qsort(items, count, sizeof(imk_str), str_cmp_qsort);
        size_t kept = 1;
        for (size_t i = 1; i < count; i++)
            if (str_cmp(&items[i], &items[kept - 1]) != 0)
                items[kept++] = items[i];
        count = kept;
    }

    uint32_t hash = set_hash(items, count);
    int rc = -1;
    if (v->hcap != 0) {
        size_t mask = v->hcap - 1;
        for (size_t h = hash & mask; v->htab[h] != 0; h = (h + 1) & mask) {
            const flagset *s = &v->sets[v->htab[h]];
            if (s->hash == hash && set_equal(s, items, count)) {
                *out = v->htab[h];
                rc = 0;
                break;
            }
        }
    }
    if (rc < 0)
        rc = set_create(v, items, count, hash, out);
    if (items != local)
        imk__free(&v->alloc, items);
    return rc;
}

static imk_strlist set_list(const imk_view *v, uint16_t idx)
{
    imk_strlist l = {0, NULL};
    if (idx != 0) {
        l.count = v->sets[idx].count;
        l.items = v->sets[idx].items;
    }
    return l;
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

int imk__view_new(const imk_allocator *alloc, imk_view **out)
{
    imk_allocator a;
    imk__alloc_init(&a, alloc);
    *out = NULL;
    imk_view *v = imk__malloc(&a, sizeof(*v));
    if (v == NULL)
        return IMK_ENOMEM;
    memset(v, 0, sizeof(*v));
    v->alloc = a;
    v->bsize = VIEW_BLOCK_DEFAULT;
    v->bshift = 8;
    v->dense = 1;
    v->max_messages = VIEW_MAX_MESSAGES_DEFAULT;
    v->removed = vm_alloc(v, v->bsize * sizeof(removal));
    v->sets = vm_alloc(v, 16 * sizeof(flagset));
    if (v->removed == NULL || v->sets == NULL) {
        vm_free(v, v->removed, v->bsize * sizeof(removal));
        vm_free(v, v->sets, 16 * sizeof(flagset));
        imk__free(&a, v);
        return IMK_ENOMEM;
    }
    memset(&v->sets[0], 0, sizeof(flagset)); /* index 0: flags unknown */
    v->setcap = 16;
    v->nsets = 1;
    *out = v;
    return 0;
}

static void free_blocks(imk_view *v)
{
    for (size_t b = 0; b < v->nb; b++)
        vm_free(v, v->blocks[b], block_bytes(v));
    if (v->nb > 0)
        fen_sentinels(v, 1, v->nb + 1);
    v->nb = 0;
    v->n_empty = 0;
    v->fen_top = 0;
    v->exists = 0;
    v->dense = 1;
    if (v->tcap > 0)
        memset(v->umax, 0, 2 * v->tcap * sizeof(uint32_t));
}

static void free_all_sets(imk_view *v)
{
    for (size_t i = 1; i < v->nsets; i++)
        vm_free(v, v->sets[i].items, v->sets[i].bytes);
    v->nsets = 1;
    v->free_head = 0;
    v->live_sets = 0;
    v->garbage_sets = 0;
    if (v->hcap > 0)
        memset(v->htab, 0, v->hcap * sizeof(uint16_t));
}

static void strlist_free(imk_view *v, strlist_copy *l)
{
    vm_free(v, l->items, l->bytes);
    memset(l, 0, sizeof(*l));
}

void imk__view_free(imk_view *v)
{
    if (v == NULL)
        return;
    free_blocks(v);
    free_all_sets(v);
    strlist_free(v, &v->mailbox_flags);
    strlist_free(v, &v->permanent_flags);
    vm_free(v, v->meta, meta_bytes(v->bcap));
    vm_free(v, v->umax, 2 * v->tcap * sizeof(uint32_t));
    vm_free(v, v->removed, v->bsize * sizeof(removal));
    vm_free(v, v->sets, v->setcap * sizeof(flagset));
    vm_free(v, v->htab, v->hcap * sizeof(uint16_t));
    imk_allocator a = v->alloc;
    imk__free(&a, v);
}

void imk__view_set_observer(imk_view *v, const imk__view_observer *obs)
{
    if (obs == NULL)
        memset(&v->obs, 0, sizeof(v->obs));
    else
        v->obs = *obs;
}

int imk__view_set_block_size(imk_view *v, uint32_t slots)
{
    if (slots < VIEW_BLOCK_MIN || slots > VIEW_BLOCK_MAX)
        return IMK_EINVAL;
    if (v->nb != 0)
        return IMK_ESTATE;
    if (slots == v->bsize)
        return 0;
    removal *removed = vm_alloc(v, slots * sizeof(removal));
    if (removed == NULL)
        return IMK_ENOMEM;
    vm_free(v, v->removed, v->bsize * sizeof(removal));
    v->removed = removed;
    v->bsize = slots;
    v->bshift = 0;
    if ((slots & (slots - 1)) == 0)
        while ((1u << v->bshift) < slots)
            v->bshift++;
    return 0;
}

void imk__view_set_max_messages(imk_view *v, uint32_t max_messages)
{
    v->max_messages = max_messages == 0 ? UINT32_MAX : max_messages;
}

/* Forget the messages (not the mailbox-wide values); keeps the index
 * arrays, returns the blocks and flag sets to the allocator. */
static void empty_messages(imk_view *v)
{
    free_blocks(v);
    free_all_sets(v);
}

void imk__view_reset(imk_view *v)
{
    empty_messages(v);
    strlist_free(v, &v->mailbox_flags);
    strlist_free(v, &v->permanent_flags);
    v->uidvalidity = 0;
    v->uidnext = 0;
    v->highest_modseq = 0;
    v->recent = 0;
    v->read_only = 0;
}

/* ------------------------------------------------------------------ */
/* Removing messages                                                   */
/* ------------------------------------------------------------------ */

/* Squeeze out the empty entries and rebuild both trees: O(nb). */
static void drop_empty_blocks(imk_view *v)
{
    size_t kept = 0, old_nb = v->nb;
    for (size_t b = 0; b < v->nb; b++) {
        if (v->count[b] == 0)
            continue;
        v->blocks[kept] = v->blocks[b];
        v->count[kept] = v->count[b];
        v->umax[v->tcap + kept] = v->umax[v->tcap + b];
        kept++;
    }
    for (size_t b = kept; b < v->nb; b++)
        v->umax[v->tcap + b] = 0;
    v->nb = kept;
    v->n_empty = 0;
    fen_rebuild(v, old_nb);
    seg_rebuild_internal(v);
    v->dense = blocks_dense(v);
    shrink_index(v);
}

/* Pack every message into the fewest blocks, in order, and free the rest:
 * O(n), no allocation. Afterwards the view is dense again. */
static void compact(imk_view *v)
{
    size_t old_nb = v->nb, k = 0;
    uint32_t B = v->bsize;
    for (size_t b = 0; b < v->nb; b++) {
        if (v->count[b] == 0)
            continue;
        v->blocks[k] = v->blocks[b];
        v->count[k] = v->count[b];
        k++;
    }
    /* The write position never passes the read position: every block
     * before the one read holds at most B, and B are written to each. */
    size_t wb = 0;
    uint32_t ws = 0;
    for (size_t rb = 0; rb < k; rb++) {
        uint32_t c = v->count[rb], rs = 0;
        while (rs < c) {
            if (ws == B) {
                wb++;
                ws = 0;
            }
            uint32_t n = c - rs < B - ws ? c - rs : B - ws;
            if (wb == rb)
                slots_move(v, wb, ws, rs, n);
            else
                slots_copy(v, wb, ws, rb, rs, n);
            ws += n;
            rs += n;
        }
    }
    size_t used = k == 0 ? 0 : wb + 1;
    for (size_t b = used; b < k; b++)
        vm_free(v, v->blocks[b], block_bytes(v));
    for (size_t b = 0; b < used; b++)
        v->count[b] = (uint16_t)(b + 1 < used ? B : ws);
    v->nb = used;
    v->n_empty = 0;
    fen_rebuild(v, old_nb);
    for (size_t b = 0; b < old_nb; b++)
        v->umax[v->tcap + b] = b < used ? block_last_known(v, b, v->count[b]) : 0;
    seg_rebuild_internal(v);
    v->dense = 1;
    shrink_index(v);
}

static void block_emptied(imk_view *v, size_t b)
{
    vm_free(v, v->blocks[b], block_bytes(v));
    v->blocks[b] = NULL;
    seg_set(v, b, 0);
    v->n_empty++;
}

/* Move sparse block b into its nearest non-empty neighbour when both fit
 * in one block. The neighbours are found through the Fenwick tree, past
 * any empty entries between: O(B + log n). */
static void try_merge(imk_view *v, size_t b)
{
    uint32_t c = v->count[b], B = v->bsize, slot;
    uint32_t before = fen_prefix(v, b);
    size_t left = (size_t)-1, right = (size_t)-1;
    if (before > 0) {
        fen_locate(v, before, &left, &slot);
        if (v->count[left] + c > B)
            left = (size_t)-1;
    }
    if (before + c < v->exists) {
        fen_locate(v, before + c + 1, &right, &slot);
        if (v->count[right] + c > B)
            right = (size_t)-1;
    }
    if (left != (size_t)-1 && right != (size_t)-1 && v->count[right] < v->count[left])
        left = (size_t)-1;
    uint32_t bmax = seg_leaf(v, b);
    if (left != (size_t)-1) {
        slots_copy(v, left, v->count[left], b, 0, c);
        v->count[left] = (uint16_t)(v->count[left] + c);
        fen_add(v, left, c);
        if (bmax != 0)
            seg_set(v, left, bmax);
    } else if (right != (size_t)-1) {
        slots_move(v, right, c, 0, v->count[right]);
        slots_copy(v, right, 0, b, 0, c);
        v->count[right] = (uint16_t)(v->count[right] + c);
        fen_add(v, right, c);
        if (seg_leaf(v, right) == 0 && bmax != 0)
            seg_set(v, right, bmax);
    } else {
        return;
    }
    v->count[b] = 0;
    fen_add(v, b, 0u - c);
    block_emptied(v, b);
}

/* After messages left block b: free, merge, compact, squeeze as the
 * policy says (see the top of the file for the 89.2%). */
static void after_removal(imk_view *v, size_t b)
{
    if (b + 1 != v->nb)
        v->dense = 0;
    if (v->count[b] == 0)
        block_emptied(v, b);
    else if (v->count[b] < v->bsize / 4)
        try_merge(v, b);
    uint64_t slots = (uint64_t)(v->nb - v->n_empty) * v->bsize;
    if (v->exists >= 16 * (uint64_t)v->bsize && (uint64_t)v->exists * 1000 < slots * 892)
        compact(v);
    else if (v->n_empty >= 4 && v->n_empty * 4 > v->nb)
        drop_empty_blocks(v);
}

int imk__view_expunge(imk_view *v, uint32_t seq)
{
    if (seq == 0 || seq > v->exists) {
        problem(v, "EXPUNGE %lu, but there %s %lu message%s: ignored", (unsigned long)seq,
                v->exists == 1 ? "is" : "are", (unsigned long)v->exists, v->exists == 1 ? "" : "s");
        return 0;
    }
    size_t b;
    uint32_t slot;
    fen_locate(v, seq, &b, &slot);
    uint32_t uid = blk_uid(v, b)[slot];
    set_unref(v, blk_flags(v, b)[slot]);
    uint32_t c = v->count[b];
    slots_move(v, b, slot, slot + 1, c - slot - 1);
    v->count[b] = (uint16_t)(c - 1);
    fen_add(v, b, 0u - 1u);
    v->exists--;
    if (uid != 0 && uid == seg_leaf(v, b))
        seg_set(v, b, block_last_known(v, b, slot));
    after_removal(v, b);
    if (v->obs.on_expunge != NULL)
        v->obs.on_expunge(v->obs.user, seq, uid);
    return 0;
}

/* Remove the known UIDs in [a, z] from block b, starting at slot `from`
 * (the first known UID >= a). Returns how many left; *more is set when the
 * block holds a known UID above z (the range ends here). */
static uint32_t block_vanish(imk_view *v, size_t b, uint32_t from, uint32_t z, int *more)
{
    uint32_t *uid = blk_uid(v, b);
    uint16_t *flags = blk_flags(v, b);
    uint64_t *modseq = blk_modseq(v, b);
    uint32_t c = v->count[b], base = fen_prefix(v, b), n = 0, w = from, i = from;
    *more = 0;
    for (; i < c; i++) {
        if (uid[i] != 0 && uid[i] > z) {
            *more = 1;
            break;
        }
        if (uid[i] != 0) {
            v->removed[n].seq = base + i + 1 - n;
            v->removed[n].uid = uid[i];
            set_unref(v, flags[i]);
            n++;
            continue;
        }
        uid[w] = uid[i];
        flags[w] = flags[i];
        modseq[w] = modseq[i];
        w++;
    }
    if (n == 0)
        return 0;
    slots_move(v, b, w, i, c - i);
    v->count[b] = (uint16_t)(c - n);
    fen_add(v, b, 0u - n);
    v->exists -= n;
    if (!*more)
        seg_set(v, b, block_last_known(v, b, from));
    return n;
}

int imk__view_vanished(imk_view *v, const imk_seqset *uids)
{
    /* "*" is the highest UID in use; the largest one the view knows stands
     * for it (messages whose UID is unknown cannot be named), taken once:
     * the whole set describes the mailbox as the server saw it. */
    uint32_t star = seg_max_all(v);
    for (size_t r = 0; r < uids->count; r++) {
        uint32_t a = uids->ranges[r].first, z = uids->ranges[r].last;
        if (a == 0)
            a = star;
        if (z == 0)
            z = star;
        if (a > z) {
            uint32_t t = a;
            a = z;
            z = t;
        }
        if (a == 0)
            a = 1; /* only when the view knows no UID: nothing to do below */
        for (;;) {
            size_t b = seg_first_ge(v, a);
            if (b == (size_t)-1)
                break;
            uint32_t from = block_lower_bound(blk_uid(v, b), v->count[b], a);
            int more;
            uint32_t n = block_vanish(v, b, from, z, &more);
            if (n == 0)
                break;
            after_removal(v, b); /* the events see a settled view */
            if (v->obs.on_expunge != NULL)
                for (uint32_t k = 0; k < n; k++)
                    v->obs.on_expunge(v->obs.user, v->removed[k].seq, v->removed[k].uid);
            if (more)
                break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* EXISTS                                                              */
/* ------------------------------------------------------------------ */

int imk__view_exists(imk_view *v, uint32_t count)
{
    uint32_t old = v->exists;
    if (count < old) {
        problem(v, "EXISTS %lu is below the %lu messages already counted: ignored",
                (unsigned long)count, (unsigned long)old);
        return 0;
    }
    if (count == old)
        return 0;
    if (count > v->max_messages) {
        problem(v, "EXISTS %lu is above the view's limit of %lu messages: ignored",
                (unsigned long)count, (unsigned long)v->max_messages);
        return 0;
    }
    uint32_t B = v->bsize, need = count - old, take_last = 0;
    int last_needs_block = 0;
    if (v->nb > 0 && v->count[v->nb - 1] < B) {
        take_last = B - v->count[v->nb - 1];
        if (take_last > need)
            take_last = need;
        last_needs_block = v->blocks[v->nb - 1] == NULL;
    }
    uint32_t rest = need - take_last;
    size_t new_blocks = rest / B + (rest % B != 0);

    /* everything that can fail, first */
    if (reserve_blocks(v, v->nb + new_blocks) != 0 || reserve_tree(v, v->nb + new_blocks) != 0)
        return IMK_ENOMEM;
    uint64_t *last_block = NULL;
    if (last_needs_block && (last_block = vm_alloc(v, block_bytes(v))) == NULL)
        return IMK_ENOMEM;
    for (size_t k = 0; k < new_blocks; k++) {
        v->blocks[v->nb + k] = vm_alloc(v, block_bytes(v));
        if (v->blocks[v->nb + k] == NULL) {
            while (k-- > 0)
                vm_free(v, v->blocks[v->nb + k], block_bytes(v));
            vm_free(v, last_block, block_bytes(v));
            return IMK_ENOMEM;
        }
    }

    if (take_last > 0) {
        size_t b = v->nb - 1;
        if (last_needs_block) {
            v->blocks[b] = last_block;
            v->n_empty--;
        }
        slots_clear(v, b, v->count[b], take_last);
        v->count[b] = (uint16_t)(v->count[b] + take_last);
        fen_add(v, b, take_last);
    }
    for (size_t k = 0; k < new_blocks; k++) {
        uint32_t c = rest < B ? rest : B;
        slots_clear(v, v->nb, 0, c);
        v->count[v->nb] = (uint16_t)c;
        fen_append(v);
        rest -= c;
    }
    v->exists = count;
    if (v->obs.on_exists != NULL)
        v->obs.on_exists(v->obs.user, old, count);
    return 0;
}

/* ------------------------------------------------------------------ */
/* FETCH                                                               */
/* ------------------------------------------------------------------ */

/* The first known UID after slot `slot` of block b, 0 if none; `prev` is
 * the last known UID before it (all known UIDs after the slot exceed it). */
static uint32_t next_known(const imk_view *v, size_t b, uint32_t slot, uint32_t prev)
{
    if (seg_leaf(v, b) > prev) {
        const uint32_t *u = blk_uid(v, b);
        for (uint32_t i = slot + 1; i < v->count[b]; i++)
            if (u[i] != 0)
                return u[i];
    } else if (prev < UINT32_MAX) {
        size_t nb = seg_first_ge(v, prev + 1);
        if (nb != (size_t)-1) {
            const uint32_t *u = blk_uid(v, nb);
            for (uint32_t i = 0; i < v->count[nb]; i++)
                if (u[i] != 0)
                    return u[i];
        }
    }
    return 0;
}

/* Whether `uid` may be given to the unknown-UID message at slot `slot` of
 * block b: it must lie strictly between the known UIDs around it. The
 * common case, UIDs learnt in ascending order, costs O(1) here: the one
 * before is in the slot before, and none is known after. */
static int uid_fits(const imk_view *v, size_t b, uint32_t slot, uint32_t uid, uint32_t *before,
                    uint32_t *after)
{
    uint32_t prev = block_last_known(v, b, slot);
    if (prev == 0)
        prev = seg_prefix_max(v, b);
    *before = prev;
    *after = next_known(v, b, slot, prev);
    return uid > prev && (*after == 0 || uid < *after);
}

int imk__view_fetch(imk_view *v, const imk_fetch *fetch)
{
    uint32_t seq = fetch->seq;
    if (seq == 0 || seq > v->exists) {
        problem(v, "FETCH for message %lu, but there %s %lu message%s (QUIRKS Q22, Q53): ignored",
                (unsigned long)seq, v->exists == 1 ? "is" : "are", (unsigned long)v->exists,
                v->exists == 1 ? "" : "s");
        return 0;
    }
    size_t b;
    uint32_t slot;
    fen_locate(v, seq, &b, &slot);
    uint32_t *uidp = &blk_uid(v, b)[slot];
    uint16_t *flagsp = &blk_flags(v, b)[slot];
    uint64_t *modseqp = &blk_modseq(v, b)[slot];

    int set_uid = 0;
    if (fetch->present & IMK_FETCH_UID) {
        uint32_t uid = fetch->uid, before, after;
        if (uid == 0) {
            problem(v, "FETCH for message %lu gives UID 0: ignored", (unsigned long)seq);
            return 0;
        }
        if (*uidp != 0 && *uidp != uid) {
            problem(v, "FETCH for message %lu gives UID %lu, but its UID is %lu: ignored",
                    (unsigned long)seq, (unsigned long)uid, (unsigned long)*uidp);
            return 0;
        }
        if (*uidp == 0) {
            if (!uid_fits(v, b, slot, uid, &before, &after)) {
                problem(v,
                        "FETCH for message %lu gives UID %lu, out of the ascending order of "
                        "UIDs (%lu before it, %lu after it): ignored",
                        (unsigned long)seq, (unsigned long)uid, (unsigned long)before,
                        (unsigned long)after);
                return 0;
            }
            set_uid = 1;
        }
    }

    uint16_t flags = *flagsp;
    if (fetch->present & IMK_FETCH_FLAGS) {
        int rc = set_intern(v, &fetch->flags, &flags);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            problem(v,
                    "FETCH for message %lu: more than 65535 distinct flag sets are in use; "
                    "its FLAGS were not recorded",
                    (unsigned long)seq);
            flags = *flagsp;
        }
    }

    /* nothing can fail from here on */
    if (set_uid) {
        *uidp = fetch->uid;
        if (fetch->uid > seg_leaf(v, b))
            seg_set(v, b, fetch->uid);
    }
    int changed = 0;
    if (flags != *flagsp) {
        set_ref(v, flags);
        set_unref(v, *flagsp);
        *flagsp = flags;
        changed = 1;
    }
    if ((fetch->present & IMK_FETCH_MODSEQ) && fetch->modseq != *modseqp) {
        *modseqp = fetch->modseq;
        changed = 1;
    }
    if (changed && v->obs.on_flags != NULL)
        v->obs.on_flags(v->obs.user, seq, *uidp, set_list(v, flags), *modseqp);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mailbox-wide values                                                 */
/* ------------------------------------------------------------------ */

static int strlist_set(imk_view *v, strlist_copy *dst, const imk_strlist *src)
{
    size_t bytes, total;
    if (!imk__mul_ok(src->count, sizeof(imk_str), &bytes))
        return IMK_ENOMEM;
    total = bytes;
    for (size_t i = 0; i < src->count; i++) {
        if (src->items[i].len > SIZE_MAX - total - 1)
            return IMK_ENOMEM;
        total += src->items[i].len + 1;
    }
    imk_str *items = vm_alloc(v, total);
    if (items == NULL)
        return IMK_ENOMEM;
    char *text = (char *)(items + src->count);
    for (size_t i = 0; i < src->count; i++) {
        if (src->items[i].len != 0)
            memcpy(text, src->items[i].data, src->items[i].len);
        text[src->items[i].len] = '\0';
        items[i].data = text;
        items[i].len = src->items[i].len;
        text += src->items[i].len + 1;
    }
    strlist_free(v, dst);
    dst->items = items;
    dst->count = src->count;
    dst->bytes = total;
    return 0;
}

int imk__view_set_flags(imk_view *v, const imk_strlist *flags)
{
    return strlist_set(v, &v->mailbox_flags, flags);
}

int imk__view_set_permanent_flags(imk_view *v, const imk_strlist *flags)
{
    return strlist_set(v, &v->permanent_flags, flags);
}

void imk__view_set_uidvalidity(imk_view *v, uint64_t uidvalidity)
{
    uint64_t old = v->uidvalidity;
    if (uidvalidity == 0) {
        problem(v, "UIDVALIDITY 0 (QUIRKS Q21): ignored");
        return;
    }
    if (old == uidvalidity)
        return;
    v->uidvalidity = uidvalidity;
    if (old == 0)
        return;
    /* Every UID the view holds belongs to the old mailbox: forget them,
     * with UIDNEXT and HIGHESTMODSEQ, which counted in it. */
    empty_messages(v);
    v->uidnext = 0;
    v->highest_modseq = 0;
    if (v->obs.on_uidvalidity != NULL)
        v->obs.on_uidvalidity(v->obs.user, old, uidvalidity);
}

void imk__view_set_uidnext(imk_view *v, uint64_t uidnext)
{
    v->uidnext = uidnext;
}

void imk__view_set_recent(imk_view *v, uint32_t recent)
{
    v->recent = recent;
}

uint32_t imk_view_recent(const imk_view *v)
{
    return v == NULL ? 0 : v->recent;
}

void imk__view_set_highest_modseq(imk_view *v, uint64_t modseq)
{
    v->highest_modseq = modseq;
}

void imk__view_set_read_only(imk_view *v, int read_only)
{
    v->read_only = read_only != 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

uint32_t imk_view_exists(const imk_view *v)
{
    return v == NULL ? 0 : v->exists;
}

uint64_t imk_view_uidvalidity(const imk_view *v)
{
    return v == NULL ? 0 : v->uidvalidity;
}

uint64_t imk_view_uidnext(const imk_view *v)
{
    return v == NULL ? 0 : v->uidnext;
}

uint64_t imk_view_highest_modseq(const imk_view *v)
{
    return v == NULL ? 0 : v->highest_modseq;
}

int imk_view_read_only(const imk_view *v)
{
    return v == NULL ? 0 : v->read_only;
}

static imk_strlist strlist_view(const strlist_copy *c)
{
    imk_strlist l = {c->count, c->items};
    return l;
}

imk_strlist imk_view_flags(const imk_view *v)
{
    imk_strlist none = {0, NULL};
    return v == NULL ? none : strlist_view(&v->mailbox_flags);
}

imk_strlist imk_view_permanent_flags(const imk_view *v)
{
    imk_strlist none = {0, NULL};
    return v == NULL ? none : strlist_view(&v->permanent_flags);
}

int imk_view_message_at(const imk_view *v, uint32_t seq, imk_view_message *out)
{
    if (v == NULL || seq == 0 || seq > v->exists)
        return 0;
    size_t b;
    uint32_t slot;
    fen_locate(v, seq, &b, &slot);
    uint16_t flags = blk_flags(v, b)[slot];
    out->seq = seq;
    out->uid = blk_uid(v, b)[slot];
    out->flags_known = flags != 0;
    out->flags = set_list(v, flags);
    out->modseq = blk_modseq(v, b)[slot];
    return 1;
}

uint32_t imk_view_seq_of_uid(const imk_view *v, uint32_t uid)
{
    if (v == NULL || uid == 0)
        return 0;
    size_t b = seg_first_ge(v, uid);
    if (b == (size_t)-1)
        return 0;
    long slot = block_find_uid(blk_uid(v, b), v->count[b], uid);
    if (slot < 0)
        return 0;
    uint32_t before = v->dense ? (uint32_t)b * v->bsize : fen_prefix(v, b);
    return before + (uint32_t)slot + 1;
}

uint32_t imk_view_uid_of_seq(const imk_view *v, uint32_t seq)
{
    uint32_t s = seq - 1; /* seq 0 wraps to a value above any count */
    if (v == NULL || s >= v->exists)
        return 0;
    /* The common case in a few instructions: random lookups are bound by
     * cache misses, and the fewer instructions each takes, the more of
     * them the processor keeps in flight. */
    if (v->dense && v->bshift != 0) {
        const uint64_t *block = v->blocks[s >> v->bshift];
        return ((const uint32_t *)(const void *)(block + v->bsize))[s & (v->bsize - 1)];
    }
    size_t b;
    uint32_t slot;
    fen_locate(v, seq, &b, &slot);
    return blk_uid(v, b)[slot];
}

size_t imk_view_memory(const imk_view *v)
{
    return v == NULL ? 0 : sizeof(*v) + v->memory;
}

/* ------------------------------------------------------------------ */
/* Consistency check                                                   */
/* ------------------------------------------------------------------ */

static int check_sets(const imk_view *v, uint64_t known_flag_refs)
{
    if (v->nsets < 1 || v->nsets > FLAGSET_SLOTS || v->nsets > v->setcap)
        return 0;
    if (v->sets[0].items != NULL)
        return 0;
    size_t live = 0, garbage = 0, free_slots = 0;
    uint64_t refs = 0;
    for (size_t i = 1; i < v->nsets; i++) {
        const flagset *s = &v->sets[i];
        if (s->items == NULL) {
            free_slots++;
            continue;
        }
        if (s->refs == 0)
            garbage++;
        else
            live++;
        refs += s->refs;
        for (size_t k = 0; k < s->count; k++) {
            if (s->items[k].len == 0)
                return 0;
            if (k > 0 && str_cmp(&s->items[k - 1], &s->items[k]) >= 0)
                return 0;
            imk_str canon = flag_canonical(s->items[k]);
            if (canon.len != s->items[k].len ||
                memcmp(canon.data, s->items[k].data, canon.len) != 0)
                return 0;
        }
        if (s->hash != set_hash(s->items, s->count))
            return 0;
        /* findable in the hash table */
        if (v->hcap == 0)
            return 0;
        size_t mask = v->hcap - 1, h = s->hash & mask;
        while (v->htab[h] != 0 && v->htab[h] != i)
            h = (h + 1) & mask;
        if (v->htab[h] != i)
            return 0;
    }
    if (live != v->live_sets || garbage != v->garbage_sets || refs != known_flag_refs)
        return 0;
    size_t chain = 0;
    for (uint32_t f = v->free_head; f != 0; f = v->sets[f].hash) {
        if (f >= v->nsets || v->sets[f].items != NULL || ++chain > free_slots)
            return 0;
    }
    if (chain != free_slots)
        return 0;
    size_t entries = 0;
    for (size_t h = 0; h < v->hcap; h++) {
        if (v->htab[h] == 0)
            continue;
        if (v->htab[h] >= v->nsets || v->sets[v->htab[h]].items == NULL)
            return 0;
        entries++;
    }
    if (entries != live + garbage || (v->hcap != 0 && entries * 2 > v->hcap))
        return 0;
    return 1;
}

int imk__view_check(const imk_view *v)
{
    if (v == NULL)
        return 0;
    if (v->bsize < VIEW_BLOCK_MIN || v->bsize > VIEW_BLOCK_MAX || v->nb > v->bcap ||
        v->nb > v->tcap)
        return 0;
    uint64_t total = 0, flag_refs = 0;
    size_t empties = 0;
    uint32_t last_uid = 0;
    /* exact per-set reference counts when the table is small */
    uint32_t refs[256];
    int exact = v->nsets <= 256;
    if (exact)
        memset(refs, 0, sizeof(refs));
    for (size_t b = 0; b < v->nb; b++) {
        uint32_t c = v->count[b];
        if (c > v->bsize || (c == 0) != (v->blocks[b] == NULL))
            return 0;
        if (c == 0) {
            empties++;
            if (seg_leaf(v, b) != 0)
                return 0;
            continue;
        }
        total += c;
        const uint32_t *uid = blk_uid(v, b);
        const uint16_t *flags = blk_flags(v, b);
        uint32_t bmax = 0;
        for (uint32_t i = 0; i < c; i++) {
            if (uid[i] != 0) {
                if (uid[i] <= last_uid)
                    return 0;
                last_uid = bmax = uid[i];
            }
            if (flags[i] != 0) {
                if (flags[i] >= v->nsets || v->sets[flags[i]].items == NULL)
                    return 0;
                flag_refs++;
                if (exact)
                    refs[flags[i]]++;
            }
        }
        if (seg_leaf(v, b) != bmax)
            return 0;
    }
    if (total != v->exists || empties != v->n_empty)
        return 0;
    if (exact)
        for (size_t i = 1; i < v->nsets; i++)
            if (v->sets[i].items != NULL && v->sets[i].refs != refs[i])
                return 0;

    /* Fenwick: node i holds the counts of blocks (i - lowbit(i), i] */
    for (size_t i = 1; i <= v->nb; i++) {
        uint32_t sum = 0;
        for (size_t k = i - lowbit(i); k < i; k++)
            sum += v->count[k];
        if (v->fen[i] != sum)
            return 0;
    }
    size_t top = v->nb > 0 ? 1 : 0;
    while (top != 0 && top * 2 <= v->nb)
        top *= 2;
    if (v->fen_top != top)
        return 0;
    for (size_t i = v->nb + 1; i < 2 * v->bcap; i++)
        if (v->fen[i] != UINT32_MAX)
            return 0;
    if (v->dense && !blocks_dense(v))
        return 0;
    if (v->bshift != 0 ? (1u << v->bshift) != v->bsize : (v->bsize & (v->bsize - 1)) == 0)
        return 0;

    /* segment tree */
    for (size_t b = v->nb; b < v->tcap; b++)
        if (seg_leaf(v, b) != 0)
            return 0;
    for (size_t i = 1; i < v->tcap; i++)
        if (v->umax[i] != max_u32(v->umax[2 * i], v->umax[2 * i + 1]))
            return 0;

    return check_sets(v, flag_refs);
}
