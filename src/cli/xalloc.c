/* SPDX-License-Identifier: MIT */
/*
 * The imapkit tool's memory helpers (see xalloc.h). This is the only file
 * of the tool that calls realloc() and free(): the source checker's one
 * exception under src/cli/. Buffers grow geometrically (x2), so appending n
 * bytes one chunk at a time costs O(n) copying in total; every size
 * computation is checked for overflow before it is used.
 */
#include "xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cli_buf_reserve(cli_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cli_buf_append(cli_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (cli_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void cli_buf_clear(cli_buf *b)
{
    b->len = 0;
}

void cli_buf_free(cli_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int cli_array_resize(void **ptr, size_t count, size_t size)
{
    if (count == 0) {
        free(*ptr);
        *ptr = NULL;
        return 0;
    }
    if (size != 0 && count > SIZE_MAX / size)
        return -1;
    void *p = realloc(*ptr, count * size);
    if (p == NULL)
        return -1;
    *ptr = p;
    return 0;
}
