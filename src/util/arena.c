/* SPDX-License-Identifier: MIT */
#include "util/arena.h"

#include "util/alloc.h"

#include <stdalign.h>
#include <string.h>

struct imk__arena_block {
    imk__arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
};

#define ARENA_ALIGN (alignof(max_align_t))
#define HEADER_SIZE ((sizeof(imk__arena_block) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1))

static unsigned char *block_data(imk__arena_block *b)
{
    return (unsigned char *)b + HEADER_SIZE;
}

void imk__arena_init(imk__arena *ar, const imk_allocator *alloc, size_t block_size, size_t limit)
{
    memset(ar, 0, sizeof(*ar));
    ar->alloc = alloc;
    ar->block_size = block_size < 256 ? 256 : block_size;
    ar->limit = limit;
}

void imk__arena_reset(imk__arena *ar)
{
    for (imk__arena_block *b = ar->first; b != NULL; b = b->next)
        b->used = 0;
    ar->head = ar->first;
    ar->used_total = 0;
    ar->over_limit = 0;
}

void imk__arena_free(imk__arena *ar)
{
    imk__arena_block *b = ar->first;
    while (b != NULL) {
        imk__arena_block *next = b->next;
        imk__free(ar->alloc, b);
        b = next;
    }
    ar->first = ar->head = NULL;
    ar->used_total = ar->reserved = 0;
}

void *imk__arena_alloc(imk__arena *ar, size_t size)
{
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (rounded < size)
        return NULL;
    if (ar->limit != 0 && (rounded > ar->limit || ar->used_total > ar->limit - rounded)) {
        ar->over_limit = 1;
        return NULL;
    }
    /* Find room in the current block or a later, already allocated one. */
    while (ar->head != NULL) {
        imk__arena_block *b = ar->head;
        if (b->size - b->used >= rounded) {
            void *p = block_data(b) + b->used;
            b->used += rounded;
            ar->used_total += rounded;
            return p;
        }
        if (b->next == NULL)
            break;
        ar->head = b->next;
    }
    size_t want = rounded > ar->block_size ? rounded : ar->block_size;
    if (want > SIZE_MAX - HEADER_SIZE)
        return NULL;
    imk__arena_block *nb = imk__malloc(ar->alloc, HEADER_SIZE + want);
    if (nb == NULL)
        return NULL;
    ar->block_allocs++;
    nb->next = NULL;
    nb->size = want;
    nb->used = rounded;
    ar->reserved += want;
    if (ar->head != NULL)
        ar->head->next = nb;
    else
        ar->first = nb;
    ar->head = nb;
    ar->used_total += rounded;
    return block_data(nb);
}

char *imk__arena_strndup(imk__arena *ar, const char *src, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = imk__arena_alloc(ar, len + 1);
    if (p == NULL)
        return NULL;
    if (len != 0)
        memcpy(p, src, len);
    p[len] = '\0';
    return p;
}
