/* SPDX-License-Identifier: MIT */
#include "util/alloc.h"

#include <stdlib.h>

static void *std_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *std_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    return realloc(ptr, size);
}

static void std_free(void *ptr, void *user)
{
    (void)user;
    free(ptr);
}

void imk__alloc_init(imk_allocator *out, const imk_allocator *in)
{
    if (in != NULL && in->malloc != NULL && in->realloc != NULL && in->free != NULL) {
        *out = *in;
        return;
    }
    out->malloc = std_malloc;
    out->realloc = std_realloc;
    out->free = std_free;
    out->user = NULL;
}

void *imk__malloc(const imk_allocator *a, size_t size)
{
    return a->malloc(size == 0 ? 1 : size, a->user);
}

void *imk__realloc(const imk_allocator *a, void *ptr, size_t size)
{
    return a->realloc(ptr, size == 0 ? 1 : size, a->user);
}

void imk__free(const imk_allocator *a, void *ptr)
{
    if (ptr != NULL)
        a->free(ptr, a->user);
}

int imk__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}
