/* SPDX-License-Identifier: MIT */
/*
 * The imapkit tool's own memory: a growable byte buffer and a growable array
 * of fixed-size items, with the C library's allocator.
 *
 * The library never calls malloc/free directly (every object allocates
 * through its imk_allocator). The tool is an ordinary program that uses the
 * library's default allocator, and it needs a little memory of its own:
 * streamed body bytes collected for `imapkit parse` and base64 text. This
 * module is the one place in src/cli/ that calls realloc and free, so that
 * tools/check-source can name it as its only exception there.
 *
 * Every function reports failure (out of memory, size overflow) by returning
 * -1 and leaves the buffer as it was; nothing aborts.
 */
#ifndef IMK_CLI_XALLOC_H
#define IMK_CLI_XALLOC_H

#include <stddef.h>

/* A byte buffer. Zero-initialise it; cli_buf_free() releases it. `data` is
 * NULL until something is appended, and is not NUL-terminated. */
typedef struct cli_buf {
    char *data;
    size_t len, cap;
} cli_buf;

/* Make room for `extra` more bytes beyond len. 0 or -1. */
int cli_buf_reserve(cli_buf *b, size_t extra);
/* Append n bytes. 0 or -1. */
int cli_buf_append(cli_buf *b, const void *data, size_t n);
/* Forget the contents, keep the memory. */
void cli_buf_clear(cli_buf *b);
/* Release the memory; the buffer is empty and reusable afterwards. */
void cli_buf_free(cli_buf *b);

/* Resize an array of `count` items of `size` bytes (overflow-checked), like
 * realloc: *ptr is replaced on success. 0 or -1. count 0 frees. */
int cli_array_resize(void **ptr, size_t count, size_t size);

#endif
