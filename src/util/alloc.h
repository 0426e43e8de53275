/* SPDX-License-Identifier: MIT */
/*
 * Allocation through the user's imk_allocator. This is the only module that
 * may call malloc/realloc/free directly (tools/check-source enforces it).
 * Every size computation that could overflow goes through imk__mul_ok().
 */
#ifndef IMK_UTIL_ALLOC_H
#define IMK_UTIL_ALLOC_H

#include "imapkit/common.h"

#include <stddef.h>

/* Fill `out` with `in`, or with the C library's functions when in is NULL. */
void imk__alloc_init(imk_allocator *out, const imk_allocator *in);

void *imk__malloc(const imk_allocator *a, size_t size);
void *imk__realloc(const imk_allocator *a, void *ptr, size_t size);
void imk__free(const imk_allocator *a, void *ptr);

/* 1 when a*b fits in size_t (and stores it in *out), else 0. */
int imk__mul_ok(size_t a, size_t b, size_t *out);

#endif
