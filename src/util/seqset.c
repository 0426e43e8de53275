/* SPDX-License-Identifier: MIT */
/*
 * Sequence sets: building, normalising, formatting, parsing, membership.
 *
 * For ordering, "*" (stored as 0) gets the key 2^32, one past the largest
 * number, so canonical ranges satisfy key(first) <= key(last) and sorting
 * and merging are plain interval arithmetic on 64-bit keys. That "*" sorts
 * last is an assumption about the mailbox, not a fact: see seqset.h for why
 * it is a safe one.
 *
 * The parser keeps ranges in the order and form the server sent them
 * (apart from putting each range's ends in order): only the caller knows
 * whether the server's order matters to it and whether merging is wanted.
 *
 * Security: a server controls the length of a set it sends; the parser
 * stops at `max_ranges` and never grows the array beyond it.
 */
#include "util/seqset.h"

#include "util/alloc.h"

#include <stdlib.h>

#define STAR_KEY (UINT64_C(1) << 32)

static uint64_t key_of(uint32_t n)
{
    return n == 0 ? STAR_KEY : n;
}

void imk__seqset_init(imk__seqset *set, const imk_allocator *alloc)
{
    set->ranges = NULL;
    set->count = set->cap = 0;
    set->alloc = alloc;
    set->is_saved = 0;
}

void imk__seqset_free(imk__seqset *set)
{
    if (set == NULL)
        return;
    imk__free(set->alloc, set->ranges);
    set->ranges = NULL;
    set->count = set->cap = 0;
    set->is_saved = 0;
}

void imk__seqset_clear(imk__seqset *set)
{
    set->count = 0;
    set->is_saved = 0;
}

/* Room for one more range. */
static int grow(imk__seqset *set)
{
    if (set->count < set->cap)
        return 0;
    size_t cap = set->cap == 0 ? 8 : set->cap * 2;
    size_t bytes;
    if (cap < set->cap || !imk__mul_ok(cap, sizeof(*set->ranges), &bytes))
        return IMK_ENOMEM;
    imk__seqrange *ranges = imk__realloc(set->alloc, set->ranges, bytes);
    if (ranges == NULL)
        return IMK_ENOMEM;
    set->ranges = ranges;
    set->cap = cap;
    return 0;
}

int imk__seqset_add_range(imk__seqset *set, uint32_t a, uint32_t b)
{
    if (set->is_saved)
        return IMK_EINVAL;
    int rc = grow(set);
    if (rc < 0)
        return rc;
    imk__seqrange *r = &set->ranges[set->count++];
    /* seq-range: "two seq-number values and all values between these two
     * regardless of order" - store the smaller first, "*" last. */
    if (key_of(a) <= key_of(b)) {
        r->first = a;
        r->last = b;
    } else {
        r->first = b;
        r->last = a;
    }
    return 0;
}

int imk__seqset_add(imk__seqset *set, uint32_t n)
{
    return imk__seqset_add_range(set, n, n);
}

static int compare_ranges(const void *pa, const void *pb)
{
    const imk__seqrange *a = pa, *b = pb;
    uint64_t fa = key_of(a->first), fb = key_of(b->first);
    if (fa != fb)
        return fa < fb ? -1 : 1;
    uint64_t la = key_of(a->last), lb = key_of(b->last);
    return (la > lb) - (la < lb);
}

int imk__seqset_normalize(imk__seqset *set)
{
    if (set->count < 2)
        return 0;
    qsort(set->ranges, set->count, sizeof(*set->ranges), compare_ranges);
    size_t out = 0;
    for (size_t i = 1; i < set->count; i++) {
        imk__seqrange *cur = &set->ranges[out];
        const imk__seqrange *next = &set->ranges[i];
        /* Sorted by first, so `next` touches `cur` unless a gap lies
         * between cur's end and next's start; +1 also merges neighbours. */
        if (key_of(next->first) <= key_of(cur->last) + 1) {
            if (key_of(next->last) > key_of(cur->last))
                cur->last = next->last;
        } else {
            set->ranges[++out] = *next;
        }
    }
    set->count = out + 1;
    return 0;
}

/* Decimal digits of n (n >= 1), written backwards from `end`. */
static char *put_number(char *end, uint32_t n)
{
    do {
        *--end = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    return end;
}

static int append_seq_number(imk__buf *out, uint32_t n)
{
    if (n == 0)
        return imk__buf_append_byte(out, '*');
    char digits[10];
    char *start = put_number(digits + sizeof(digits), n);
    return imk__buf_append(out, start, (size_t)(digits + sizeof(digits) - start));
}

/*
 * RFC 9051 section 9:
 *   seq-number      = nz-number / "*"
 *   seq-range       = seq-number ":" seq-number
 *   sequence-set    = (seq-number / seq-range) ["," sequence-set]
 *   sequence-set    =/ seq-last-command
 *   seq-last-command   = "$"
 * A range of one number is written as the seq-number alone.
 */
int imk__seqset_format(const imk__seqset *set, imk__buf *out)
{
    if (set->is_saved)
        return imk__buf_append_byte(out, '$');
    if (set->count == 0)
        return IMK_EINVAL;
    size_t saved_len = out->len;
    int rc = 0;
    for (size_t i = 0; i < set->count && rc == 0; i++) {
        const imk__seqrange *r = &set->ranges[i];
        if (i > 0)
            rc = imk__buf_append_byte(out, ',');
        if (rc == 0)
            rc = append_seq_number(out, r->first);
        if (rc == 0 && r->last != r->first) {
            rc = imk__buf_append_byte(out, ':');
            if (rc == 0)
                rc = append_seq_number(out, r->last);
        }
    }
    if (rc < 0) {
        out->len = saved_len;
        if (out->data != NULL)
            out->data[saved_len] = '\0';
    }
    return rc;
}

/*
 * RFC 9051 section 9:
 *   nz-number       = digit-nz *DIGIT
 *                       ; Non-zero unsigned 32-bit integer
 *                       ; (0 < n < 4,294,967,296)
 *   digit-nz        = %x31-39
 * Also "*" (as 0) when `allow_star`.
 */
static int read_seq_number(const char *s, size_t len, size_t *pos, int allow_star, uint32_t *value)
{
    if (*pos >= len)
        return IMK_EPARSE;
    if (s[*pos] == '*') {
        if (!allow_star)
            return IMK_EPARSE;
        (*pos)++;
        *value = 0;
        return 0;
    }
    if (s[*pos] < '1' || s[*pos] > '9')
        return IMK_EPARSE;
    uint64_t n = 0;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        n = n * 10 + (uint64_t)(s[*pos] - '0');
        if (n > UINT32_MAX)
            return IMK_ERANGE;
        (*pos)++;
    }
    *value = (uint32_t)n;
    return 0;
}

/*
 * RFC 9051 section 9 (the grammar above), and for UIDPLUS:
 *   uid-set         = (uniqueid / uid-range) *("," uid-set)
 *   uid-range       = (uniqueid ":" uniqueid)
 *   uniqueid        = nz-number
 * "$" is accepted only as the whole set: RFC 5182 has it stand "instead of"
 * a sequence, and a server would have to reject "1,$" anyway.
 */
static int parse_set(imk__seqset *set, const char *s, size_t len, uint32_t max_ranges,
                     int is_uid_set)
{
    imk__seqset_clear(set);
    if (!is_uid_set && len == 1 && s[0] == '$') {
        set->is_saved = 1;
        return 0;
    }
    size_t pos = 0;
    int rc;
    for (;;) {
        uint32_t a, b;
        rc = read_seq_number(s, len, &pos, !is_uid_set, &a);
        if (rc < 0)
            break;
        b = a;
        if (pos < len && s[pos] == ':') {
            pos++;
            rc = read_seq_number(s, len, &pos, !is_uid_set, &b);
            if (rc < 0)
                break;
        }
        if (max_ranges != 0 && set->count >= max_ranges) {
            rc = IMK_ELIMIT;
            break;
        }
        rc = imk__seqset_add_range(set, a, b);
        if (rc < 0 || pos == len)
            break;
        if (s[pos] != ',') {
            rc = IMK_EPARSE;
            break;
        }
        pos++;
    }
    if (rc < 0)
        imk__seqset_clear(set);
    return rc;
}

int imk__seqset_parse(imk__seqset *set, const char *s, size_t len, uint32_t max_ranges)
{
    return parse_set(set, s, len, max_ranges, 0);
}

int imk__seqset_parse_uidset(imk__seqset *set, const char *s, size_t len, uint32_t max_ranges)
{
    return parse_set(set, s, len, max_ranges, 1);
}

/* The numbers a range covers once "*" is `star_value`: [*lo, *hi], from 1
 * up (0 is never a message number). Returns 0 when it covers none. */
static int effective_range(const imk__seqrange *r, uint32_t star_value, uint32_t *lo, uint32_t *hi)
{
    uint32_t a = r->first == 0 ? star_value : r->first;
    uint32_t b = r->last == 0 ? star_value : r->last;
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
    if (*hi == 0)
        return 0;
    if (*lo == 0)
        *lo = 1;
    return 1;
}

int imk__seqset_contains(const imk__seqset *set, uint32_t n, uint32_t star_value)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < set->count; i++) {
        uint32_t lo, hi;
        if (effective_range(&set->ranges[i], star_value, &lo, &hi) && lo <= n && n <= hi)
            return 1;
    }
    return 0;
}

/* Ranges in ascending order of their low end: one sweep, counting each
 * range's part above everything before it. */
static uint64_t count_sorted(const imk__seqset *set, uint32_t star_value)
{
    uint64_t total = 0, covered = 0; /* numbers 1..covered are already counted */
    for (size_t i = 0; i < set->count; i++) {
        uint32_t lo, hi;
        if (!effective_range(&set->ranges[i], star_value, &lo, &hi) || hi <= covered)
            continue;
        uint64_t start = lo > covered ? lo : covered + 1;
        total += hi - start + 1;
        covered = hi;
    }
    return total;
}

/* Any order, no memory: repeatedly take, among the ranges reaching past
 * what is counted, the one that starts lowest above it. Each range is taken
 * at most once, so at most n rounds of n. */
static uint64_t count_in_place(const imk__seqset *set, uint32_t star_value)
{
    uint64_t total = 0, covered = 0;
    for (;;) {
        uint64_t best_start = 0, best_end = 0;
        for (size_t i = 0; i < set->count; i++) {
            uint32_t lo, hi;
            if (!effective_range(&set->ranges[i], star_value, &lo, &hi) || hi <= covered)
                continue;
            uint64_t start = lo > covered ? lo : covered + 1;
            if (best_end == 0 || start < best_start || (start == best_start && hi > best_end)) {
                best_start = start;
                best_end = hi;
            }
        }
        if (best_end == 0)
            return total;
        total += best_end - best_start + 1;
        covered = best_end;
    }
}

uint64_t imk__seqset_count(const imk__seqset *set, uint32_t star_value)
{
    uint32_t prev_lo = 0;
    size_t i;
    for (i = 0; i < set->count; i++) {
        uint32_t lo, hi;
        if (!effective_range(&set->ranges[i], star_value, &lo, &hi))
            continue;
        if (lo < prev_lo)
            break;
        prev_lo = lo;
    }
    if (i == set->count)
        return count_sorted(set, star_value);

    /* Out of order (a server may send "9,5,1"): sort a copy of the
     * effective ranges. They hold no 0, so compare_ranges sorts them by
     * their low end, and count_sorted leaves them as they are. */
    size_t bytes;
    imk__seqrange *copy = NULL;
    if (imk__mul_ok(set->count, sizeof(*set->ranges), &bytes))
        copy = imk__malloc(set->alloc, bytes);
    if (copy == NULL)
        return count_in_place(set, star_value);
    imk__seqset view = *set;
    view.ranges = copy;
    view.count = 0;
    for (i = 0; i < set->count; i++) {
        uint32_t lo, hi;
        if (effective_range(&set->ranges[i], star_value, &lo, &hi)) {
            copy[view.count].first = lo;
            copy[view.count].last = hi;
            view.count++;
        }
    }
    qsort(copy, view.count, sizeof(*copy), compare_ranges);
    uint64_t total = count_sorted(&view, star_value);
    imk__free(set->alloc, copy);
    return total;
}
