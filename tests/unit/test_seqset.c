/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/util/seqset.c: compact formatting, merging, "*" and "$",
 * strict parsing with its limit, uid-set, membership and counting checked
 * against a brute-force model on generated sets, and allocation failure.
 */
#include "test.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/seqset.h"

#include <stdint.h>

static imk_allocator std_alloc;

/* Format `set` and compare with `expect`. */
static void check_format(const imk__seqset *set, const char *expect)
{
    imk__buf b;
    imk__buf_init(&b, &std_alloc, 0);
    CHECK_INT(imk__seqset_format(set, &b), 0);
    CHECK_MEM(b.data, b.len, expect, strlen(expect));
    imk__buf_free(&b);
}

/* Parse `text`, expecting success, then format and compare with `expect`. */
static void check_parse_format(const char *text, const char *expect)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    int rc = imk__seqset_parse(&set, text, strlen(text), 0);
    CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "   input: \"%s\"\n", text);
    else
        check_format(&set, expect);
    imk__seqset_free(&set);
}

/* Parse `text` as given, normalise, format and compare with `expect`. */
static void check_normalized(const char *text, const char *expect)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse(&set, text, strlen(text), 0), 0);
    CHECK_INT(imk__seqset_normalize(&set), 0);
    check_format(&set, expect);
    imk__seqset_free(&set);
}

static void test_format_compact(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    static const uint32_t numbers[] = {1, 2, 3, 5, 7, 8, 9};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        CHECK_INT(imk__seqset_add(&set, numbers[i]), 0);
    check_format(&set, "1,2,3,5,7,8,9"); /* as added until normalised */
    CHECK_INT(imk__seqset_normalize(&set), 0);
    CHECK_INT(set.count, 3);
    check_format(&set, "1:3,5,7:9");

    imk__seqset_clear(&set);
    CHECK_INT(set.count, 0);
    CHECK_INT(imk__seqset_add_range(&set, 9, 7), 0); /* either order */
    CHECK_INT(set.ranges[0].first, 7);
    CHECK_INT(set.ranges[0].last, 9);
    CHECK_INT(imk__seqset_add_range(&set, 4294967295u, 4294967295u), 0);
    CHECK_INT(imk__seqset_add_range(&set, 12, 12), 0);
    check_format(&set, "7:9,4294967295,12");
    imk__seqset_free(&set);
}

static void test_format_empty(void)
{
    imk__seqset set;
    imk__buf b;
    imk__seqset_init(&set, &std_alloc);
    imk__buf_init(&b, &std_alloc, 0);
    CHECK_INT(imk__buf_append_str(&b, "FETCH "), 0);
    CHECK_INT(imk__seqset_format(&set, &b), IMK_EINVAL);
    CHECK_MEM(b.data, b.len, "FETCH ", 6);
    CHECK_INT(imk__seqset_normalize(&set), 0);
    CHECK_INT(set.count, 0);
    imk__buf_free(&b);
    imk__seqset_free(&set);
    imk__seqset_free(&set); /* twice is harmless */
    imk__seqset_free(NULL);
}

static void test_merge(void)
{
    check_normalized("5,6,7", "5:7");
    check_normalized("7,6,5", "5:7");
    check_normalized("1:5,3:8", "1:8");
    check_normalized("3:8,1:5", "1:8");
    check_normalized("1:10,3:4", "1:10");
    check_normalized("1:3,4:6", "1:6");
    check_normalized("1:3,5:6", "1:3,5:6");
    check_normalized("4,4,4", "4");
    check_normalized("9,1,5,3,7,2,8,4,6", "1:9");
    check_normalized("10:20,1:2,15:30,4,3", "1:4,10:30");
    check_normalized("4294967294,4294967295,1", "1,4294967294:4294967295");
    check_normalized("2:4,4:2,3", "2:4");
}

static void test_star(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_add_range(&set, 5, 0), 0);
    CHECK_INT(imk__seqset_add_range(&set, 0, 5), 0); /* "*:5" is stored as "5:*" */
    CHECK_INT(set.ranges[1].first, 5);
    CHECK_INT(set.ranges[1].last, 0);
    CHECK_INT(imk__seqset_add(&set, 0), 0);
    CHECK_INT(imk__seqset_add_range(&set, 0, 0), 0);
    check_format(&set, "5:*,5:*,*,*");
    CHECK_INT(imk__seqset_normalize(&set), 0);
    check_format(&set, "5:*");
    imk__seqset_free(&set);

    check_parse_format("5:*", "5:*");
    check_parse_format("*:5", "5:*");
    check_parse_format("*", "*");
    check_parse_format("*:*", "*");
    check_parse_format("1:*", "1:*");
    check_normalized("1:3,*,4", "1:4,*");
    check_normalized("4,5:*", "4:*");
    check_normalized("*,5:*", "5:*");
    check_normalized("3:*,1:10", "1:*");
    check_normalized("*,2,1", "1:2,*");
    check_normalized("4294967295,*", "4294967295:*");
    check_normalized("2,4:*,7:*", "2,4:*");
}

static void test_parse_valid(void)
{
    check_parse_format("1", "1");
    check_parse_format("1:3,5,7:*", "1:3,5,7:*");
    check_parse_format("5:3", "3:5");             /* descending ranges are put in order */
    check_parse_format("9,1:3,5,2", "9,1:3,5,2"); /* order kept, not normalised */
    check_parse_format("4294967295", "4294967295");
    check_parse_format("1:4294967295", "1:4294967295");
    check_parse_format("2,4:7,9,12:*", "2,4:7,9,12:*");
    check_parse_format("*:4,5:7", "4:*,5:7");
    check_parse_format("10:10", "10");

    /* parse replaces the contents; the length bounds the text */
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_add(&set, 99), 0);
    CHECK_INT(imk__seqset_parse(&set, "1:2,3 FLAGS", 5, 0), 0);
    check_format(&set, "1:2,3");
    CHECK_INT(set.count, 2);
    CHECK_INT(set.is_saved, 0);
    imk__seqset_free(&set);
}

static void test_saved(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse(&set, "$", 1, 0), 0);
    CHECK_INT(set.is_saved, 1);
    CHECK_INT(set.count, 0);
    check_format(&set, "$");
    CHECK_INT(imk__seqset_add(&set, 1), IMK_EINVAL);
    CHECK_INT(imk__seqset_add_range(&set, 1, 2), IMK_EINVAL);
    CHECK_INT(imk__seqset_normalize(&set), 0);
    CHECK_INT(imk__seqset_contains(&set, 1, 10), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 10), 0);
    check_format(&set, "$");

    /* parsing numbers over a saved set, and clear, forget the "$" */
    CHECK_INT(imk__seqset_parse(&set, "3", 1, 0), 0);
    CHECK_INT(set.is_saved, 0);
    check_format(&set, "3");
    CHECK_INT(imk__seqset_parse(&set, "$", 1, 0), 0);
    imk__seqset_clear(&set);
    CHECK_INT(set.is_saved, 0);
    CHECK_INT(imk__seqset_add(&set, 4), 0);
    check_format(&set, "4");
    imk__seqset_free(&set);
}

static void check_parse_error(const char *text, int expect)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_add(&set, 42), 0);
    int rc = imk__seqset_parse(&set, text, strlen(text), 0);
    CHECK_INT(rc, expect);
    if (rc != expect)
        fprintf(stderr, "   input: \"%s\"\n", text);
    CHECK_INT(set.count, 0); /* left empty */
    CHECK_INT(set.is_saved, 0);
    imk__seqset_free(&set);
}

static void test_parse_errors(void)
{
    check_parse_error("", IMK_EPARSE);
    check_parse_error(",", IMK_EPARSE);
    check_parse_error(",1", IMK_EPARSE);
    check_parse_error("1,", IMK_EPARSE);
    check_parse_error("1,,2", IMK_EPARSE);
    check_parse_error("0", IMK_EPARSE);
    check_parse_error("0:5", IMK_EPARSE);
    check_parse_error("5:0", IMK_EPARSE);
    check_parse_error("1,0", IMK_EPARSE);
    check_parse_error("01", IMK_EPARSE);
    check_parse_error("4294967296", IMK_ERANGE);
    check_parse_error("1:4294967296", IMK_ERANGE);
    check_parse_error("99999999999999999999999999", IMK_ERANGE);
    check_parse_error("18446744073709551617", IMK_ERANGE);
    check_parse_error("1::2", IMK_EPARSE);
    check_parse_error("1:2:3", IMK_EPARSE);
    check_parse_error("a", IMK_EPARSE);
    check_parse_error("1a", IMK_EPARSE);
    check_parse_error(" 1", IMK_EPARSE);
    check_parse_error("1 ", IMK_EPARSE);
    check_parse_error("1, 2", IMK_EPARSE);
    check_parse_error("1 ,2", IMK_EPARSE);
    check_parse_error("1:", IMK_EPARSE);
    check_parse_error(":1", IMK_EPARSE);
    check_parse_error("1-3", IMK_EPARSE);
    check_parse_error("-1", IMK_EPARSE);
    check_parse_error("+1", IMK_EPARSE);
    check_parse_error("**", IMK_EPARSE);
    check_parse_error("*5", IMK_EPARSE);
    check_parse_error("$,1", IMK_EPARSE);
    check_parse_error("1,$", IMK_EPARSE);
    check_parse_error("$$", IMK_EPARSE);
    check_parse_error("1:$", IMK_EPARSE);

    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse(&set, "1\0002", 3, 0), IMK_EPARSE); /* a NUL is no separator */
    CHECK_INT(imk__seqset_parse(&set, NULL, 0, 0), IMK_EPARSE);
    imk__seqset_free(&set);
}

static void test_uidset(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse_uidset(&set, "1:3,5", 5, 0), 0);
    check_format(&set, "1:3,5");
    CHECK_INT(imk__seqset_parse_uidset(&set, "304:302", 7, 0), 0);
    check_format(&set, "302:304");
    CHECK_INT(imk__seqset_parse_uidset(&set, "*", 1, 0), IMK_EPARSE);
    CHECK_INT(imk__seqset_parse_uidset(&set, "1:*", 3, 0), IMK_EPARSE);
    CHECK_INT(imk__seqset_parse_uidset(&set, "$", 1, 0), IMK_EPARSE);
    CHECK_INT(imk__seqset_parse_uidset(&set, "0", 1, 0), IMK_EPARSE);
    CHECK_INT(imk__seqset_parse_uidset(&set, "4294967296", 10, 0), IMK_ERANGE);
    CHECK_INT(imk__seqset_parse_uidset(&set, "1,2,3", 5, 2), IMK_ELIMIT);
    CHECK_INT(set.count, 0);
    imk__seqset_free(&set);
}

static void test_limit(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse(&set, "1,2:5,7", 7, 3), 0);
    CHECK_INT(set.count, 3);
    CHECK_INT(imk__seqset_parse(&set, "1,2:5,7", 7, 2), IMK_ELIMIT);
    CHECK_INT(set.count, 0);
    CHECK_INT(imk__seqset_parse(&set, "1", 1, 1), 0);
    CHECK_INT(imk__seqset_parse(&set, "1,2", 3, 1), IMK_ELIMIT);
    /* the limit is found before the array grows past it */
    imk__seqset_free(&set);
    imk__seqset_init(&set, &std_alloc);
    char text[4000];
    size_t len = 0;
    for (int i = 1; i <= 1000; i++) {
        text[len++] = (char)('1' + i % 9);
        text[len++] = ',';
    }
    text[--len] = '\0';
    CHECK_INT(imk__seqset_parse(&set, text, len, 16), IMK_ELIMIT);
    CHECK(set.cap <= 16);
    CHECK_INT(imk__seqset_parse(&set, text, len, 0), 0); /* 0: no limit */
    CHECK_INT(set.count, 1000);
    CHECK_INT(imk__seqset_parse(&set, text, len, 1000), 0);
    CHECK_INT(imk__seqset_parse(&set, text, len, 999), IMK_ELIMIT);
    imk__seqset_free(&set);
}

static void test_contains_count(void)
{
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    CHECK_INT(imk__seqset_parse(&set, "1:3,5,7:9", 9, 0), 0);
    CHECK_INT(imk__seqset_contains(&set, 0, 100), 0);
    CHECK_INT(imk__seqset_contains(&set, 1, 100), 1);
    CHECK_INT(imk__seqset_contains(&set, 3, 100), 1);
    CHECK_INT(imk__seqset_contains(&set, 4, 100), 0);
    CHECK_INT(imk__seqset_contains(&set, 5, 100), 1);
    CHECK_INT(imk__seqset_contains(&set, 6, 100), 0);
    CHECK_INT(imk__seqset_contains(&set, 9, 100), 1);
    CHECK_INT(imk__seqset_contains(&set, 10, 100), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 100), 7);

    /* RFC 9051: "2,4:7,9,12:*" in a mailbox of 15 is 2,4,5,6,7,9,12,13,14,15 */
    CHECK_INT(imk__seqset_parse(&set, "2,4:7,9,12:*", 12, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 15), 10);
    CHECK_INT(imk__seqset_contains(&set, 15, 15), 1);
    CHECK_INT(imk__seqset_contains(&set, 11, 15), 0);
    CHECK_INT(imk__seqset_contains(&set, 16, 15), 0);
    /* "*:4,5:7" in a mailbox of 10 is 4..10 */
    CHECK_INT(imk__seqset_parse(&set, "*:4,5:7", 7, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 10), 7);
    CHECK_INT(imk__seqset_contains(&set, 3, 10), 0);
    CHECK_INT(imk__seqset_contains(&set, 10, 10), 1);
    /* "3291:*" includes the last UID even when it is below 3291 */
    CHECK_INT(imk__seqset_parse(&set, "3291:*", 6, 0), 0);
    CHECK_INT(imk__seqset_contains(&set, 3000, 3000), 1);
    CHECK_INT(imk__seqset_contains(&set, 2999, 3000), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 3000), 292);
    CHECK_INT((long long)imk__seqset_count(&set, 5000), 1710);
    /* "*" alone, and an empty mailbox where "*" is 0 */
    CHECK_INT(imk__seqset_parse(&set, "*", 1, 0), 0);
    CHECK_INT(imk__seqset_contains(&set, 8, 8), 1);
    CHECK_INT(imk__seqset_contains(&set, 7, 8), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 8), 1);
    CHECK_INT((long long)imk__seqset_count(&set, 0), 0);
    CHECK_INT(imk__seqset_contains(&set, 0, 0), 0);
    /* overlaps are counted once, in any order */
    CHECK_INT(imk__seqset_parse(&set, "1:10,5:15", 9, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 1), 15);
    CHECK_INT(imk__seqset_parse(&set, "5:15,1:10,3,20,2:4", 18, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 1), 16);
    /* the largest count there is */
    CHECK_INT(imk__seqset_parse(&set, "1:*", 3, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, UINT32_MAX), 4294967295LL);
    CHECK_INT(imk__seqset_parse(&set, "4294967295:1,*:1", 16, 0), 0);
    CHECK_INT((long long)imk__seqset_count(&set, 7), 4294967295LL);
    imk__seqset_free(&set);
}

/* ---- generated sets against a brute-force model ---- */

#define MODEL_MAX 64

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* model[n] = 1 when n (1..MODEL_MAX) is in the set, "*" = star. */
static void build_model(const imk__seqset *set, uint32_t star, unsigned char *model)
{
    memset(model, 0, MODEL_MAX + 1);
    for (size_t i = 0; i < set->count; i++) {
        uint32_t a = set->ranges[i].first ? set->ranges[i].first : star;
        uint32_t b = set->ranges[i].last ? set->ranges[i].last : star;
        uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
        for (uint32_t n = lo; n <= hi; n++) {
            if (n >= 1)
                model[n] = 1;
        }
    }
}

static void test_generated(void)
{
    long failures = 0;
    unsigned char model[MODEL_MAX + 1], after[MODEL_MAX + 1];
    imk__buf text;
    imk__seqset set, parsed;
    failing_alloc refusing_state;
    imk_allocator refusing = failing_allocator(&refusing_state, 1);
    imk__seqset_init(&set, &std_alloc);
    imk__seqset_init(&parsed, &std_alloc);
    imk__buf_init(&text, &std_alloc, 0);
    for (int iter = 0; iter < 20000; iter++) {
        imk__seqset_clear(&set);
        size_t ranges = 1 + rng() % 8;
        for (size_t k = 0; k < ranges; k++) {
            /* numbers up to 50, "*" one time in eight */
            uint32_t a = rng() % 8 == 0 ? 0 : 1 + rng() % 50;
            uint32_t b = rng() % 2 ? a : (rng() % 8 == 0 ? 0 : 1 + rng() % 50);
            if (imk__seqset_add_range(&set, a, b) != 0)
                failures++;
        }
        uint32_t star = rng() % 60; /* sometimes below the numbers, sometimes 0 */

        /* contains and count agree with the model, in the given order */
        build_model(&set, star, model);
        uint64_t expect = 0;
        for (uint32_t n = 0; n <= MODEL_MAX; n++) {
            expect += model[n];
            if (imk__seqset_contains(&set, n, star) != model[n])
                failures++;
        }
        if (imk__seqset_count(&set, star) != expect)
            failures++;
        /* ... also when the sorted copy cannot be allocated */
        imk__seqset no_memory = set;
        no_memory.alloc = &refusing;
        if (imk__seqset_count(&no_memory, star) != expect)
            failures++;

        /* format then parse gives back the same ranges */
        imk__buf_clear(&text);
        if (imk__seqset_format(&set, &text) != 0 ||
            imk__seqset_parse(&parsed, text.data, text.len, 0) != 0 || parsed.count != set.count ||
            memcmp(parsed.ranges, set.ranges, set.count * sizeof(*set.ranges)) != 0)
            failures++;

        /* normalising keeps every number up to "*" (all that exist) */
        CHECK_INT(imk__seqset_normalize(&set), 0);
        build_model(&set, star, after);
        for (uint32_t n = 1; n <= star && n <= MODEL_MAX; n++) {
            if (after[n] != model[n])
                failures++;
        }
        /* ... and everything when "*" is at least every number */
        build_model(&set, 55, after);
        build_model(&parsed, 55, model);
        if (memcmp(after, model, sizeof(model)) != 0)
            failures++;
        if (imk__seqset_count(&set, 55) != imk__seqset_count(&parsed, 55))
            failures++;

        /* the result is sorted, disjoint and not adjacent */
        for (size_t k = 0; k < set.count; k++) {
            const imk__seqrange *r = &set.ranges[k];
            uint64_t first = r->first ? r->first : UINT64_C(1) << 32;
            uint64_t last = r->last ? r->last : UINT64_C(1) << 32;
            if (first > last)
                failures++;
            if (k > 0) {
                const imk__seqrange *p = &set.ranges[k - 1];
                uint64_t prev_last = p->last ? p->last : UINT64_C(1) << 32;
                if (first <= prev_last + 1)
                    failures++;
            }
        }
    }
    CHECK_INT(failures, 0);
    CHECK_INT(refusing_state.live, 0);
    CHECK(refusing_state.failed); /* the in-place count did run */
    imk__buf_free(&text);
    imk__seqset_free(&set);
    imk__seqset_free(&parsed);
}

static void test_large(void)
{
    /* normalising 200000 single numbers in reverse order is O(n log n) */
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    for (uint32_t n = 200000; n >= 1; n--) {
        if (imk__seqset_add(&set, n) != 0)
            break;
    }
    CHECK_INT(set.count, 200000);
    CHECK_INT((long long)imk__seqset_count(&set, 1), 200000); /* descending: sorts a copy */
    CHECK_INT(imk__seqset_normalize(&set), 0);
    check_format(&set, "1:200000");
    CHECK_INT((long long)imk__seqset_count(&set, 1), 200000);

    /* every other number: nothing merges */
    imk__seqset_clear(&set);
    for (uint32_t n = 1; n <= 20000; n += 2)
        CHECK_INT(imk__seqset_add(&set, n), 0);
    CHECK_INT(imk__seqset_normalize(&set), 0);
    CHECK_INT(set.count, 10000);
    CHECK_INT((long long)imk__seqset_count(&set, 1), 10000);
    imk__seqset_free(&set);
}

static void test_allocation_failure(void)
{
    /* adding: every failure point returns ENOMEM and keeps the set intact */
    for (long fail_at = 1; fail_at <= 5; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        imk__seqset set;
        imk__seqset_init(&set, &a);
        size_t added = 0;
        int rc = 0;
        for (uint32_t n = 1; n <= 100 && rc == 0; n++) {
            rc = imk__seqset_add(&set, n * 2);
            if (rc == 0)
                added++;
        }
        CHECK_INT(rc, IMK_ENOMEM);
        CHECK_INT(set.count, added);
        for (size_t k = 0; k < set.count; k++)
            CHECK_INT(set.ranges[k].first, 2 * (k + 1));
        imk__seqset_free(&set);
        CHECK_INT(fa.live, 0);
    }

    /* counting an unordered set: the sorted copy is freed, and without
     * memory the answer is the same */
    {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, 0);
        imk__seqset set;
        imk__seqset_init(&set, &a);
        for (uint32_t n = 300; n >= 1; n--)
            CHECK_INT(imk__seqset_add_range(&set, n * 3, n * 3 + 3), 0);
        CHECK_INT((long long)imk__seqset_count(&set, 1), 901); /* 3..903 */
        CHECK_INT(fa.failed, 0);
        fa.fail_at = fa.count + 1;
        CHECK_INT((long long)imk__seqset_count(&set, 1), 901); /* 3..903 */
        CHECK_INT(fa.failed, 1);
        imk__seqset_free(&set);
        CHECK_INT(fa.live, 0);
    }

    /* parsing */
    static const char text[] = "1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31,33,35,37,39";
    for (long fail_at = 1;; fail_at++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, fail_at);
        imk__seqset set;
        imk__seqset_init(&set, &a);
        int rc = imk__seqset_parse(&set, text, sizeof(text) - 1, 0);
        if (fa.failed) {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK_INT(set.count, 0);
        } else {
            CHECK_INT(rc, 0);
            CHECK_INT(set.count, 20);
        }
        imk__seqset_free(&set);
        CHECK_INT(fa.live, 0);
        if (!fa.failed || fail_at > 10)
            break;
    }

    /* formatting leaves the buffer as it was */
    failing_alloc fa;
    imk_allocator a = failing_allocator(&fa, 2);
    imk__seqset set;
    imk__seqset_init(&set, &std_alloc);
    for (uint32_t n = 1; n <= 100; n++)
        CHECK_INT(imk__seqset_add(&set, n * 1000), 0);
    imk__buf b;
    imk__buf_init(&b, &a, 0);
    CHECK_INT(imk__buf_append_str(&b, "UID FETCH "), 0);
    CHECK_INT(imk__seqset_format(&set, &b), IMK_ENOMEM);
    CHECK_MEM(b.data, b.len, "UID FETCH ", 10);
    CHECK_INT(b.data[b.len], 0);
    imk__buf_free(&b);
    CHECK_INT(fa.live, 0);

    /* and a buffer maximum likewise */
    imk__buf_init(&b, &std_alloc, 20);
    CHECK_INT(imk__seqset_format(&set, &b), IMK_ELIMIT);
    CHECK_INT(b.len, 0);
    imk__buf_free(&b);
    imk__seqset_free(&set);
}

int main(void)
{
    imk__alloc_init(&std_alloc, NULL);
    RUN(test_format_compact);
    RUN(test_format_empty);
    RUN(test_merge);
    RUN(test_star);
    RUN(test_parse_valid);
    RUN(test_saved);
    RUN(test_parse_errors);
    RUN(test_uidset);
    RUN(test_limit);
    RUN(test_contains_count);
    RUN(test_generated);
    RUN(test_large);
    RUN(test_allocation_failure);
    return test_finish();
}
