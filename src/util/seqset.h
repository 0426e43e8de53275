/* SPDX-License-Identifier: MIT */
/*
 * Sequence sets: the sequence-set of message sequence numbers and UIDs
 * ("1:3,5,7:*"), the "$" of SEARCHRES (RFC 5182), and the uid-set of
 * UIDPLUS responses (RFC 9051 section 9).
 *
 * A set is a list of ranges in the order given. The value 0 stands for "*"
 * (sequence numbers and UIDs are nz-number, so 0 is free). Each stored range
 * is canonical: first <= last when both are numbers, and when one end is
 * "*" it is `last` ({n, 0} is "n:*", {0, 0} is "*").
 *
 * "*" is the largest number in use, which the set cannot know, so
 * imk__seqset_normalize() orders it after every number. That keeps the
 * meaning for every number up to the value "*" takes - every number that
 * exists in the mailbox - and the server never sees anything else: "4,5:*"
 * becomes "4:*", which matches the same messages whatever the last one is.
 */
#ifndef IMK_UTIL_SEQSET_H
#define IMK_UTIL_SEQSET_H

#include "imapkit/common.h"
#include "util/buf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct imk__seqrange {
    uint32_t first, last; /* 0 = "*" */
} imk__seqrange;

typedef struct imk__seqset {
    imk__seqrange *ranges; /* owned, from `alloc` */
    size_t count, cap;
    const imk_allocator *alloc; /* borrowed; must outlive the set */
    int is_saved;               /* the set is "$", the saved search result; no ranges then */
} imk__seqset;

/* An empty set allocating through `alloc` (a filled-in allocator, as from
 * imk__alloc_init(); borrowed). Allocates nothing itself. */
void imk__seqset_init(imk__seqset *set, const imk_allocator *alloc);

/* Release the ranges; the set is then empty and may be reused. NULL is a
 * no-op. */
void imk__seqset_free(imk__seqset *set);

/* Make the set empty (and not "$"), keeping its memory. */
void imk__seqset_clear(imk__seqset *set);

/* Append the number `n` (0 = "*"). Returns 0, IMK_EINVAL when the set is
 * "$", or IMK_ENOMEM (the set is then unchanged). */
int imk__seqset_add(imk__seqset *set, uint32_t n);

/* Append the range a:b, in either order (0 = "*"). Errors as for add. */
int imk__seqset_add_range(imk__seqset *set, uint32_t a, uint32_t b);

/* Sort and merge overlapping and adjacent ranges ("5,6,7" -> "5:7"), in
 * O(n log n), in place. Returns 0; cannot fail. */
int imk__seqset_normalize(imk__seqset *set);

/*
 * Append the set as sequence-set text to `out` ("$" for a saved set).
 * Returns 0, IMK_EINVAL for an empty set (the grammar has no empty
 * sequence-set), IMK_ELIMIT or IMK_ENOMEM; `out` is unchanged on failure.
 */
int imk__seqset_format(const imk__seqset *set, imk__buf *out);

/*
 * Replace the contents of `set` with the sequence-set text `s[0..len)`
 * (borrowed), keeping the order given; "$" gives a saved set. At most
 * `max_ranges` ranges (0 = no limit but memory). Returns 0, or IMK_EPARSE
 * (bad syntax, a 0 or a leading zero, an empty element, "$" mixed with
 * ranges), IMK_ERANGE (a number above 4294967295), IMK_ELIMIT (more than
 * max_ranges ranges), IMK_ENOMEM. On failure the set is left empty.
 */
int imk__seqset_parse(imk__seqset *set, const char *s, size_t len, uint32_t max_ranges);

/* As imk__seqset_parse() for the uid-set of UIDPLUS responses (COPYUID,
 * APPENDUID), where neither "*" nor "$" may appear. */
int imk__seqset_parse_uidset(imk__seqset *set, const char *s, size_t len, uint32_t max_ranges);

/*
 * 1 when `n` is in the set, "*" taking the value `star_value`, else 0.
 * Works on any set, normalised or not (a binary search is not used: sets
 * from the server are in no particular order). 0 for a saved set and for
 * n == 0.
 */
int imk__seqset_contains(const imk__seqset *set, uint32_t n, uint32_t star_value);

/*
 * The number of distinct numbers >= 1 in the set, "*" taking the value
 * `star_value`; 0 for a saved set. O(n) when the ranges are in ascending
 * order once "*" is replaced (any normalised set whose "*" is at least its
 * other numbers, and what servers usually send). Otherwise O(n log n) on a
 * sorted temporary copy from the set's allocator, or, should that
 * allocation fail, O(n^2) in place: the answer never depends on memory.
 */
uint64_t imk__seqset_count(const imk__seqset *set, uint32_t star_value);

#endif
