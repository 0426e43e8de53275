/* SPDX-License-Identifier: MIT */
/*
 * The response vectors: data-driven tests of the reader, the parser and the
 * JSON output of `imapkit parse`, all at once.
 *
 * A vector is two files in tests/vectors/<group>/:
 *   <name>.txt          bytes as a server sent them (CRLF, literals, exact)
 *   <name>.jsonl        what `imapkit parse <name>.txt` prints, one object a line
 *   <name>.strict.jsonl (optional) what `imapkit parse --strict` prints
 *
 * Each vector is run through the same code as the tool (the JSON collector
 * of src/cli/json.c driving an imk_reader) in four ways, and every way must
 * print exactly the expected lines:
 *   (a) whole: all bytes in one feed;
 *   (b) one byte per feed;
 *   (c) two feeds, split at every position 1 .. n-1;
 *   (d) whole, under an allocator that fails the 1st, 2nd, ... allocation:
 *       the run must end (IMK_ENOMEM or complete), free everything
 *       (no live block after imk_reader_free), and the first N that never
 *       fails must give the expected output; that ends the series.
 *
 * IMK_UPDATE_VECTORS=1 writes the .jsonl files from way (a) instead of
 * comparing (and creates <name>.strict.jsonl for the quirks group). A vector
 * is only as good as the review of its expected output: read every
 * generated line before committing it.
 *
 * Usage: test_vectors [DIR|FILE.txt ...]   (default: tests/vectors under
 * $IMK_SOURCE_DIR, or the current directory)
 */
#define _POSIX_C_SOURCE 200809L /* opendir, readdir */

#include "test.h"

#include "cli/json.h"
#include "imapkit/reader.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int update_mode;
static int vectors_run;
static int vectors_failed;

/* ---- small file helpers (tests may allocate directly) ---- */

static int read_file(const char *path, cli_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (cli_buf_append(out, chunk, n) != 0) {
            rc = -1;
            break;
        }
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    int rc = (len == 0 || fwrite(data, 1, len, f) == len) ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- running one vector ---- */

static int sink_append(const json_t *obj, void *user)
{
    return cli_json_append_line(user, obj);
}

typedef struct run_result {
    int rc;      /* 0, or the negative code the run ended with */
    cli_buf out; /* the JSON lines */
} run_result;

/*
 * Parse `data` fed in pieces: `splits` lists the positions where a feed
 * ends (ascending, each < len); the last piece runs to the end. `step` > 0
 * instead feeds `step` bytes at a time.
 */
static void run(const char *data, size_t len, int strict, const size_t *splits, size_t nsplits,
                size_t step, const imk_allocator *alloc, run_result *res)
{
    memset(res, 0, sizeof(*res));
    imk_reader_options ro;
    memset(&ro, 0, sizeof(ro));
    ro.version = IMK_READER_OPTIONS_VERSION;
    if (strict)
        ro.quirks = IMK_READER_STRICT;
    imk_reader *r = NULL;
    res->rc = imk_reader_new(&ro, alloc, &r);
    if (res->rc != 0)
        return;

    cli_json_collector c;
    cli_json_collector_init(&c, NULL, sink_append, &res->out);
    int rc = 0;
    if (step > 0) {
        for (size_t at = 0; at < len && rc == 0; at += step) {
            size_t n = len - at < step ? len - at : step;
            rc = cli_json_feed(&c, r, data + at, n);
        }
    } else {
        size_t at = 0;
        for (size_t i = 0; i <= nsplits && rc == 0; i++) {
            size_t end = i < nsplits ? splits[i] : len;
            rc = cli_json_feed(&c, r, data + at, end - at);
            at = end;
        }
    }
    if (rc == 0)
        rc = cli_json_finish(&c, r);
    res->rc = rc;
    cli_json_collector_free(&c);
    imk_reader_free(r);
}

/* Report where two outputs first differ, line by line. */
static void report_difference(const char *vector, const char *how, const cli_buf *got,
                              const cli_buf *want)
{
    size_t line = 1, i = 0;
    size_t n = got->len < want->len ? got->len : want->len;
    size_t line_start = 0;
    while (i < n && got->data[i] == want->data[i]) {
        if (got->data[i] == '\n') {
            line++;
            line_start = i + 1;
        }
        i++;
    }
    fprintf(stderr, "FAIL %s (%s): output differs at line %zu\n", vector, how, line);
    const cli_buf *bufs[2] = {want, got};
    const char *labels[2] = {"expected", "got     "};
    for (int k = 0; k < 2; k++) {
        const cli_buf *b = bufs[k];
        size_t end = line_start;
        while (end < b->len && b->data[end] != '\n')
            end++;
        int shown = (int)(end - line_start > 600 ? 600 : end - line_start);
        fprintf(stderr, "   %s: %.*s\n", labels[k], shown,
                line_start < b->len ? b->data + line_start : "(end of output)");
    }
}

static int same(const cli_buf *a, const cli_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Check one run against the expected output; 0 if equal. */
static int expect_output(const char *vector, const char *how, run_result *res, const cli_buf *want)
{
    int ok = same(&res->out, want);
    test_checks++;
    if (!ok) {
        test_failures++;
        report_difference(vector, how, &res->out, want);
    }
    cli_buf_free(&res->out);
    return ok ? 0 : -1;
}

/* Ways (a) to (d) for one input and one option set. */
static int check_vector(const char *vector, const cli_buf *input, int strict,
                        const char *expected_path)
{
    const char *data = input->data != NULL ? input->data : "";
    size_t len = input->len;
    char how[96];
    run_result res;

    /* (a) whole */
    run(data, len, strict, NULL, 0, 0, NULL, &res);
    if (update_mode) {
        if (write_file(expected_path, res.out.data, res.out.len) != 0) {
            fprintf(stderr, "FAIL %s: cannot write %s: %s\n", vector, expected_path,
                    strerror(errno));
            test_failures++;
            cli_buf_free(&res.out);
            return -1;
        }
        fprintf(stderr, "wrote %s (review it!)\n", expected_path);
    }
    cli_buf want = {0};
    if (read_file(expected_path, &want) != 0) {
        fprintf(stderr,
                "FAIL %s: no expected output %s (create it with IMK_UPDATE_VECTORS=1, "
                "then review it)\n",
                vector, expected_path);
        test_failures++;
        cli_buf_free(&res.out);
        return -1;
    }
    int failed = expect_output(vector, "whole", &res, &want) != 0;

    /* (b) one byte at a time */
    run(data, len, strict, NULL, 0, 1, NULL, &res);
    failed |= expect_output(vector, "one byte per feed", &res, &want) != 0;

    /* (c) every split point; stop at the first difference */
    for (size_t k = 1; k < len; k++) {
        run(data, len, strict, &k, 1, 0, NULL, &res);
        snprintf(how, sizeof(how), "split at byte %zu", k);
        if (expect_output(vector, how, &res, &want) != 0) {
            failed = 1;
            break;
        }
    }

    /* (d) allocation failure at the 1st, 2nd, ... allocation */
    for (long n = 1; n < 1000000; n++) {
        failing_alloc fa;
        imk_allocator alloc = failing_allocator(&fa, n);
        run(data, len, strict, NULL, 0, 0, &alloc, &res);
        test_checks++;
        if (fa.live != 0) {
            test_failures++;
            failed = 1;
            fprintf(stderr, "FAIL %s: failing allocation %ld: %ld blocks leaked\n", vector, n,
                    fa.live);
        }
        if (!fa.failed) {
            /* Every allocation succeeded: the run must be a normal one. */
            snprintf(how, sizeof(how), "allocator failing at %ld (never reached)", n);
            failed |= expect_output(vector, how, &res, &want) != 0;
            break;
        }
        test_checks++;
        if (res.rc != 0 && res.rc != IMK_ENOMEM) {
            /* A fatal error other than out of memory after a failure. */
            test_failures++;
            failed = 1;
            fprintf(stderr, "FAIL %s: failing allocation %ld ended with %s, not IMK_ENOMEM\n",
                    vector, n, imk_error_name(res.rc));
        }
        cli_buf_free(&res.out);
        if (failed)
            break;
    }

    cli_buf_free(&want);
    return failed ? -1 : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Run the vector whose input is `txt_path` ("dir/group/name.txt"). */
static void run_vector(const char *txt_path)
{
    char base[4096];
    size_t n = strlen(txt_path);
    if (n < 4 || n - 4 >= sizeof(base) - 32)
        return;
    memcpy(base, txt_path, n - 4);
    base[n - 4] = '\0';

    /* The vector's display name: group/name. */
    const char *name = base;
    const char *slash = strrchr(base, '/');
    if (slash != NULL) {
        const char *p = slash;
        while (p > base && p[-1] != '/')
            p--;
        name = p;
    }

    cli_buf input = {0};
    if (read_file(txt_path, &input) != 0) {
        fprintf(stderr, "FAIL %s: cannot read %s: %s\n", name, txt_path, strerror(errno));
        test_failures++;
        vectors_failed++;
        return;
    }
    vectors_run++;

    char expected[4200], expected_strict[4200];
    snprintf(expected, sizeof(expected), "%s.jsonl", base);
    snprintf(expected_strict, sizeof(expected_strict), "%s.strict.jsonl", base);
    int failed = check_vector(name, &input, 0, expected) != 0;
    int strict =
        file_exists(expected_strict) || (update_mode && strstr(txt_path, "/quirks/") != NULL);
    if (strict) {
        char strict_name[4200];
        snprintf(strict_name, sizeof(strict_name), "%s --strict", name);
        failed |= check_vector(strict_name, &input, 1, expected_strict) != 0;
    }
    if (failed)
        vectors_failed++;
    fprintf(stderr, "%s %s (%zu bytes%s)\n", failed ? "FAIL" : "ok  ", name, input.len,
            strict ? ", also --strict" : "");
    cli_buf_free(&input);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct path_list {
    char **items;
    size_t count, cap;
} path_list;

static void add_path(path_list *l, const char *path)
{
    if (l->count == l->cap) {
        l->cap = l->cap != 0 ? l->cap * 2 : 64;
        l->items = realloc(l->items, l->cap * sizeof(char *));
        if (l->items == NULL)
            abort();
    }
    l->items[l->count] = strdup(path);
    if (l->items[l->count] == NULL)
        abort();
    l->count++;
}

/* Every *.txt in `dir` and, when `depth` > 0, in its subdirectories. */
static void collect(const char *dir, int depth, path_list *out)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "FAIL cannot open %s: %s\n", dir, strerror(errno));
        test_failures++;
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0)
            collect(path, depth - 1, out);
        else if (S_ISREG(st.st_mode) && ends_with(e->d_name, ".txt"))
            add_path(out, path);
    }
    closedir(d);
}

/* Every vector under `dir` (files, or one level of groups), sorted. */
static void run_directory(const char *dir)
{
    path_list l = {0};
    collect(dir, 1, &l);
    qsort(l.items, l.count, sizeof(char *), compare_names);
    for (size_t i = 0; i < l.count; i++) {
        run_vector(l.items[i]);
        free(l.items[i]);
    }
    free(l.items);
}

int main(int argc, char **argv)
{
    const char *update = getenv("IMK_UPDATE_VECTORS");
    update_mode = update != NULL && strcmp(update, "1") == 0;

    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            if (ends_with(argv[i], ".txt"))
                run_vector(argv[i]);
            else
                run_directory(argv[i]);
        }
    } else {
        char dir[4096];
        const char *src = getenv("IMK_SOURCE_DIR");
        snprintf(dir, sizeof(dir), "%s%stests/vectors", src != NULL ? src : "",
                 src != NULL ? "/" : "");
        run_directory(dir);
    }
    fprintf(stderr, "%d vectors, %d failed\n", vectors_run, vectors_failed);
    test_checks++;
    if (vectors_run == 0) {
        fprintf(stderr, "FAIL no vectors found\n");
        test_failures++;
    }
    return test_finish();
}
