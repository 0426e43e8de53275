/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer with a hard maximum. Appends that would take the
 * buffer past `max` fail with IMK_ELIMIT and leave it unchanged; allocation
 * failure gives IMK_ENOMEM and also leaves it unchanged. The contents are
 * always followed by a NUL byte (not counted in len) once anything was
 * appended, so text can be used as a C string.
 */
#ifndef IMK_UTIL_BUF_H
#define IMK_UTIL_BUF_H

#include "imapkit/common.h"

#include <stddef.h>

typedef struct imk__buf {
    const imk_allocator *alloc;
    char *data;
    size_t len;
    size_t cap; /* allocated bytes, including room for the NUL */
    size_t max; /* maximum len; 0 = SIZE_MAX / 2 */
} imk__buf;

void imk__buf_init(imk__buf *b, const imk_allocator *alloc, size_t max);
void imk__buf_free(imk__buf *b);
/* Empty the buffer, keeping its memory. */
void imk__buf_clear(imk__buf *b);
/* Make room for `extra` more bytes. */
int imk__buf_reserve(imk__buf *b, size_t extra);
int imk__buf_append(imk__buf *b, const void *data, size_t len);
int imk__buf_append_str(imk__buf *b, const char *s);
int imk__buf_append_byte(imk__buf *b, char c);
/* Decimal representation of an unsigned 64-bit number. */
int imk__buf_append_u64(imk__buf *b, uint64_t n);
/* Remove the first `n` bytes (n <= len). */
void imk__buf_consume(imk__buf *b, size_t n);

#endif
