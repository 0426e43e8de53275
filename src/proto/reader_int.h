/* SPDX-License-Identifier: MIT */
/*
 * proto/reader_int.h - what the session needs from the reader beyond the
 * public reader.h.
 */
#ifndef IMK_PROTO_READER_INT_H
#define IMK_PROTO_READER_INT_H

#include "imapkit/reader.h"

#include <stddef.h>

/* Hand over the bytes fed but not yet read (*data, *len) and forget them:
 * used when the stream changes encoding at a response boundary (COMPRESS,
 * RFC 4978). They stay valid until the next feed, buffer or commit. */
void imk__reader_take_unread(imk_reader *r, const char **data, size_t *len);

#endif
