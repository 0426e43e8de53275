/* SPDX-License-Identifier: MIT */
/*
 * A minimal test harness shared by every test program. Each test file
 * defines functions `static void test_x(void)` and a main() that runs them
 * with RUN(test_x) and returns test_finish(). CHECK* record a failure with
 * file and line and carry on, so one run reports every broken assertion.
 *
 * failing_alloc: an imk_allocator that fails the Nth allocation (1-based;
 * 0 = never) and every one after it, and counts live blocks, for
 * allocation-failure and leak tests.
 *
 * Also shared: take_output_len() (the bytes a session has to send) and
 * count_open_fds() (for descriptor leak checks, Linux /proc).
 */
#ifndef IMK_TEST_H
#define IMK_TEST_H

#include "imapkit/common.h"
#include "imapkit/session.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        test_checks++;                                                                             \
        if (check_a_ != check_b_) {                                                                \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, expected %s == %lld\n",          \
                    __FILE__, __LINE__, #a, check_a_, #b, check_b_);                               \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(ptr, len, expect, expect_len)                                                    \
    do {                                                                                           \
        const void *check_p_ = (ptr), *check_e_ = (expect);                                        \
        size_t check_l_ = (size_t)(len), check_el_ = (size_t)(expect_len);                         \
        test_checks++;                                                                             \
        if (check_l_ != check_el_ ||                                                               \
            (check_l_ != 0 && memcmp(check_p_, check_e_, check_l_) != 0)) {                        \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK_MEM failed: %s (%zu bytes) != %s (%zu bytes)\n",         \
                    __FILE__, __LINE__, #ptr, check_l_, #expect, check_el_);                       \
            fprintf(stderr, "   got:      %.*s\n   expected: %.*s\n", (int)check_l_,               \
                    check_p_ ? (const char *)check_p_ : "", (int)check_el_,                        \
                    check_e_ ? (const char *)check_e_ : "");                                       \
        }                                                                                          \
    } while (0)

#define CHECK_STR(s, expect) CHECK_MEM((s), strlen(s), (expect), strlen(expect))

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn);               \
    } while (0)

static inline int test_finish(void)
{
    fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);
    return test_failures == 0 ? 0 : 1;
}

/* ---- an allocator that fails on request and counts what is live ---- */

typedef struct failing_alloc {
    long fail_at; /* fail the fail_at-th allocation (1-based); 0 = never */
    long count;   /* allocations attempted so far */
    long live;    /* blocks currently allocated */
    int failed;   /* set once an allocation was refused */
} failing_alloc;

static inline void *failing_malloc(size_t size, void *user)
{
    failing_alloc *fa = user;
    fa->count++;
    if (fa->fail_at != 0 && fa->count >= fa->fail_at) {
        fa->failed = 1;
        return NULL;
    }
    void *p = malloc(size);
    if (p != NULL)
        fa->live++;
    return p;
}

static inline void *failing_realloc(void *ptr, size_t size, void *user)
{
    failing_alloc *fa = user;
    if (ptr == NULL)
        return failing_malloc(size, user);
    fa->count++;
    if (fa->fail_at != 0 && fa->count >= fa->fail_at) {
        fa->failed = 1;
        return NULL;
    }
    return realloc(ptr, size);
}

static inline void failing_free(void *ptr, void *user)
{
    failing_alloc *fa = user;
    if (ptr != NULL) {
        fa->live--;
        free(ptr);
    }
}

static inline imk_allocator failing_allocator(failing_alloc *fa, long fail_at)
{
    memset(fa, 0, sizeof(*fa));
    fa->fail_at = fail_at;
    imk_allocator a = {failing_malloc, failing_realloc, failing_free, fa};
    return a;
}

/* ---- what a session has to send ---- */

/* Everything the session has to send now, taken (imk_session_sent), as a
 * NUL-terminated malloc'd string; its length in *len_out when not NULL (it
 * may hold NUL bytes). Aborts when memory runs out. */
static inline char *take_output_len(imk_session *s, size_t *len_out)
{
    char *all = malloc(1);
    size_t len = 0;
    const char *p;
    size_t n;
    if (all == NULL)
        abort();
    while ((n = imk_session_output(s, &p)) > 0) {
        char *b = realloc(all, len + n + 1);
        if (b == NULL)
            abort();
        all = b;
        memcpy(all + len, p, n);
        len += n;
        imk_session_sent(s, n);
    }
    all[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return all;
}

/* ---- descriptors ---- */

/* The number of open descriptors of this process, or -1 (no /proc): only
 * differences mean something (the count includes the directory's own). */
static inline int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

#endif
