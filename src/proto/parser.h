/* SPDX-License-Identifier: MIT */
/*
 * The interface between the framer (reader.c) and the response parser
 * (parser.c and the parse_*.c modules).
 *
 * The framer hands over one complete response: its lines, each ending in
 * CRLF (or LF under IMK_QUIRK_BARE_LF), with every inline literal's bytes
 * right after its "{n}\r\n" announcement. A body-section literal that was
 * streamed out as BODY events is NOT in the buffer: its "{n}\r\n"
 * announcement is followed directly by the rest of the line, and its
 * position is listed in `streamed` so the lexer knows to take no bytes.
 *
 * The parser allocates everything in `arena` (reset by the reader between
 * responses) and reports failure through imk__parse_ctx's err_* fields.
 */
#ifndef IMK_PROTO_PARSER_H
#define IMK_PROTO_PARSER_H

#include "imapkit/reader.h"
#include "imapkit/response.h"
#include "util/arena.h"

/* A streamed literal: its announcement starts at `offset` in the response
 * buffer (the '{' or the '~' of "~{"), and had `size` bytes. */
typedef struct imk__streamed {
    size_t offset;
    uint64_t size;
} imk__streamed;

/* Resolved limits and switches (no zero "defaults" left). */
typedef struct imk__parse_limits {
    unsigned max_depth;
    size_t max_list_items;
    unsigned quirks; /* IMK_QUIRK_* accepted */
    int utf8_mailboxes;
} imk__parse_limits;

typedef struct imk__parse_ctx {
    const imk__parse_limits *limits;
    imk__arena *arena;
    const char *buf; /* the framed response */
    size_t len;
    const imk__streamed *streamed;
    size_t streamed_count;
    /* set on failure */
    int err_code;        /* IMK_EPARSE, IMK_ELIMIT, IMK_ERANGE, IMK_ENOMEM */
    size_t err_pos;      /* offset in buf */
    const char *err_msg; /* static or arena string */
} imk__parse_ctx;

/* Parse ctx->buf into *out (arena-allocated). 0 on success; a negative
 * code with ctx->err_* set on failure. */
int imk__parse_response(imk__parse_ctx *ctx, imk_response **out);

#endif
