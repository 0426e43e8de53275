/* SPDX-License-Identifier: MIT */
/*
 * Small string helpers shared across modules. IMAP atoms (capabilities,
 * response names, keywords like INBOX) compare ASCII-case-insensitively;
 * these never depend on the C locale, whose tolower() would fold bytes
 * above 0x7f differently from one machine to the next.
 */
#ifndef IMK_UTIL_STR_H
#define IMK_UTIL_STR_H

#include "imapkit/common.h"

#include <string.h>

static inline int imk__ascii_fold(int c)
{
    return (c >= 'a' && c <= 'z') ? c - ('a' - 'A') : c;
}

/* 1 if `a` equals the C string `b`, ignoring ASCII case; 0 otherwise (also
 * for a NIL `a`). */
static inline int imk__str_ieq(imk_str a, const char *b)
{
    size_t n = strlen(b);
    if (a.data == NULL || a.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (imk__ascii_fold((unsigned char)a.data[i]) != imk__ascii_fold((unsigned char)b[i]))
            return 0;
    return 1;
}

#endif
