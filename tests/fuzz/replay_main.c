/* SPDX-License-Identifier: MIT */
/*
 * Replays fuzz inputs through a libFuzzer target without libFuzzer, so every
 * ordinary build (gcc, ASan, no clang needed) runs the corpus as a test.
 *
 *     replay_<name> PATH...
 *
 * A directory PATH runs every regular file directly inside it, in strcmp()
 * order, so runs are reproducible; a file PATH runs that file (handy for a
 * crash artifact). Each input is handed over in a heap block of exactly its
 * size, as libFuzzer does, so ASan sees any read past the end. A crash or
 * sanitizer report fails the test; so does a PATH that cannot be read.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    if (data == NULL) {
        fclose(f);
        fprintf(stderr, "replay: out of memory\n");
        return -1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *bigger = realloc(data, cap * 2);
            if (bigger == NULL) {
                free(data);
                fclose(f);
                fprintf(stderr, "replay: out of memory\n");
                return -1;
            }
            data = bigger;
            cap *= 2;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(data);
        fprintf(stderr, "replay: %s: read error\n", path);
        return -1;
    }

    /* An exactly sized copy: one byte too far is a heap overflow under ASan. */
    uint8_t *exact = malloc(len == 0 ? 1 : len);
    if (exact == NULL) {
        free(data);
        fprintf(stderr, "replay: out of memory\n");
        return -1;
    }
    if (len != 0)
        memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in `dir`; returns how many, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **paths = NULL;
    size_t count = 0, cap = 0;
    long result = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        size_t size = strlen(dir) + 1 + strlen(entry->d_name) + 1;
        char *path = malloc(size);
        if (path == NULL) {
            result = -1;
            break;
        }
        snprintf(path, size, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (count == cap) {
            size_t new_cap = cap == 0 ? 64 : cap * 2;
            char **bigger = realloc(paths, new_cap * sizeof(*paths));
            if (bigger == NULL) {
                free(path);
                result = -1;
                break;
            }
            paths = bigger;
            cap = new_cap;
        }
        paths[count++] = path;
    }
    closedir(d);
    if (result < 0)
        fprintf(stderr, "replay: out of memory\n");

    if (count > 1)
        qsort(paths, count, sizeof(*paths), compare_names);
    for (size_t i = 0; i < count; i++) {
        if (result >= 0) {
            if (run_file(paths[i]) != 0)
                result = -1;
            else
                result++;
        }
        free(paths[i]);
    }
    free(paths);
    return result;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        long ran;
        if (S_ISDIR(st.st_mode))
            ran = run_dir(argv[i]);
        else
            ran = run_file(argv[i]) == 0 ? 1 : -1;
        if (ran < 0)
            return 1;
        printf("replay: %ld inputs from %s\n", ran, argv[i]);
        total += ran;
    }
    if (argc > 2)
        printf("replay: %ld inputs in total\n", total);
    return 0;
}
