/* SPDX-License-Identifier: MIT */
/*
 * A bump arena for the values of one response. Blocks are kept across
 * imk__arena_reset(), so after the first few responses parsing allocates
 * nothing (the steady-state goal of DESIGN.md section 6). The arena never
 * grows past `limit` bytes in total; an allocation that would returns NULL
 * and sets `over_limit`, which callers report as IMK_ELIMIT (not ENOMEM).
 */
#ifndef IMK_UTIL_ARENA_H
#define IMK_UTIL_ARENA_H

#include "imapkit/common.h"

#include <stddef.h>

typedef struct imk__arena_block imk__arena_block;

typedef struct imk__arena {
    const imk_allocator *alloc;
    imk__arena_block *head;     /* block being filled */
    imk__arena_block *first;    /* chain of all blocks, oldest first */
    size_t used_total;          /* bytes handed out since the last reset */
    size_t reserved;            /* bytes held in blocks */
    size_t limit;               /* maximum of used_total; 0 = unlimited */
    size_t block_size;          /* default size of a new block */
    unsigned long block_allocs; /* number of block allocations made (statistics) */
    int over_limit;             /* set when an allocation failed on `limit` */
} imk__arena;

void imk__arena_init(imk__arena *ar, const imk_allocator *alloc, size_t block_size, size_t limit);
/* Forget every allocation; keep the blocks for reuse. */
void imk__arena_reset(imk__arena *ar);
/* Free every block. */
void imk__arena_free(imk__arena *ar);
/* `size` bytes aligned for any object, or NULL (ENOMEM or over the limit). */
void *imk__arena_alloc(imk__arena *ar, size_t size);
/* A NUL-terminated copy of `len` bytes, or NULL. */
char *imk__arena_strndup(imk__arena *ar, const char *src, size_t len);

#endif
