/* SPDX-License-Identifier: MIT */
#include "util/buf.h"

#include "util/alloc.h"

#include <string.h>

void imk__buf_init(imk__buf *b, const imk_allocator *alloc, size_t max)
{
    b->alloc = alloc;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max == 0 ? SIZE_MAX / 2 : max;
}

void imk__buf_free(imk__buf *b)
{
    imk__free(b->alloc, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void imk__buf_clear(imk__buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int imk__buf_reserve(imk__buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return IMK_ELIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = imk__realloc(b->alloc, b->data, cap);
    if (p == NULL)
        return IMK_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int imk__buf_append(imk__buf *b, const void *data, size_t len)
{
    int rc = imk__buf_reserve(b, len);
    if (rc < 0)
        return rc;
    if (len != 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int imk__buf_append_str(imk__buf *b, const char *s)
{
    return imk__buf_append(b, s, strlen(s));
}

int imk__buf_append_byte(imk__buf *b, char c)
{
    return imk__buf_append(b, &c, 1);
}

int imk__buf_append_u64(imk__buf *b, uint64_t n)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + (n % 10));
        n /= 10;
    } while (n != 0);
    return imk__buf_append(b, tmp + i, sizeof(tmp) - i);
}

void imk__buf_consume(imk__buf *b, size_t n)
{
    if (n >= b->len) {
        imk__buf_clear(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
