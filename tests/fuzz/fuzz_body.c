/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for src/proto/parse_body.c: the input (plus CRLF, as the
 * framer would hand it over) is parsed as a BODYSTRUCTURE, as a BODY and as
 * an ENVELOPE, first with every quirk on, then with none, under a small
 * nesting limit. Invariants checked (abort() on violation):
 *   - success means the lexer is back at depth 0 and each list it opened
 *     was closed; failure means a negative code equal to the recorded one,
 *     with a message and a position inside the buffer;
 *   - without quirks, no quirk is ever recorded; every recorded quirk was
 *     allowed;
 *   - every string of the result is readable (ASan checks the reads), the
 *     strings the grammar requires are never NULL, counts match arrays.
 */
#include "proto/lexer.h"
#include "proto/parse_body.h"
#include "util/alloc.h"
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

static void touch(imk_str s)
{
    if (s.data == NULL) {
        if (s.len != 0)
            abort();
        return;
    }
    for (size_t i = 0; i < s.len; i++)
        sink = (unsigned char)(sink ^ (unsigned char)s.data[i]);
}

static void touch_required(imk_str s)
{
    if (s.data == NULL)
        abort();
    touch(s);
}

static void check_params(const imk_param_list *l)
{
    if (l->count != 0 && l->items == NULL)
        abort();
    for (size_t i = 0; i < l->count; i++) {
        touch_required(l->items[i].name);
        touch_required(l->items[i].value);
    }
}

static void check_value(const imk_value *v)
{
    touch(v->str);
    if (v->type == IMK_VALUE_LIST)
        for (size_t i = 0; i < v->count; i++)
            check_value(&v->items[i]);
}

static void check_addresses(const imk_address_list *l)
{
    if (l->count != 0 && l->items == NULL)
        abort();
    for (size_t i = 0; i < l->count; i++) {
        touch(l->items[i].name);
        touch(l->items[i].adl);
        touch(l->items[i].mailbox);
        touch(l->items[i].host);
    }
}

static void check_envelope(const imk_envelope *e)
{
    touch(e->date);
    touch(e->subject);
    check_addresses(&e->from);
    check_addresses(&e->sender);
    check_addresses(&e->reply_to);
    check_addresses(&e->to);
    check_addresses(&e->cc);
    check_addresses(&e->bcc);
    touch(e->in_reply_to);
    touch(e->message_id);
}

static void check_body(const imk_body *b, int extensible)
{
    touch_required(b->type);
    touch_required(b->subtype);
    if (b->part_count != 0 && b->parts == NULL)
        abort();
    for (size_t i = 0; i < b->part_count; i++)
        check_body(&b->parts[i], extensible);
    check_params(&b->params);
    touch(b->id);
    touch(b->description);
    if (b->multipart) {
        if (b->envelope != NULL || b->has_lines)
            abort();
    } else {
        touch_required(b->encoding);
        if (b->part_count > 1 || (b->part_count == 1) != (b->envelope != NULL))
            abort();
    }
    if (b->envelope != NULL)
        check_envelope(b->envelope);
    if (b->has_ext && !extensible)
        abort();
    touch(b->md5);
    touch(b->disposition);
    check_params(&b->disposition_params);
    for (size_t i = 0; i < b->languages.count; i++)
        touch_required(b->languages.items[i]);
    touch(b->location);
    for (size_t i = 0; i < b->extension_count; i++)
        check_value(&b->extensions[i]);
}

/* mode 0: BODYSTRUCTURE, 1: BODY, 2: ENVELOPE */
static void run(const char *buf, size_t len, unsigned quirks, int mode)
{
    imk_allocator alloc;
    imk__alloc_init(&alloc, NULL);
    imk__arena arena;
    imk__arena_init(&arena, &alloc, 1024, 1u << 20);
    imk__parse_limits limits = {8, 64, quirks, 0};
    imk__parse_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.limits = &limits;
    ctx.arena = &arena;
    ctx.buf = buf;
    ctx.len = len;
    imk__lexer lx;
    imk__lex_init(&lx, &ctx);

    int rc;
    const imk_body *body = NULL;
    const imk_envelope *env = NULL;
    if (mode == 2)
        rc = imk__parse_envelope(&lx, &env);
    else
        rc = imk__parse_body(&lx, mode == 0, &body);
    if (rc == 0) {
        if (lx.depth != 0 || ctx.err_code != 0 || lx.pos > len)
            abort();
        if (mode == 2)
            check_envelope(env);
        else
            check_body(body, mode == 0);
    } else {
        if (rc >= 0 || rc != ctx.err_code || ctx.err_msg == NULL || ctx.err_pos > len)
            abort();
        sink = (unsigned char)(sink ^ (unsigned char)strlen(ctx.err_msg));
    }
    if ((lx.quirks_seen & ~quirks) != 0)
        abort();
    imk__arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* Exactly sized, so a read past the CRLF is an ASan report. */
    char *buf = malloc(size + 2);
    if (buf == NULL)
        return 0;
    if (size != 0)
        memcpy(buf, data, size);
    buf[size] = '\r';
    buf[size + 1] = '\n';
    static const unsigned quirk_sets[2] = {~0u, 0u};
    for (int q = 0; q < 2; q++)
        for (int mode = 0; mode < 3; mode++)
            run(buf, size + 2, quirk_sets[q], mode);
    free(buf);
    return 0;
}
