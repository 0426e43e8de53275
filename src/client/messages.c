/* SPDX-License-Identifier: MIT */
/*
 * imk_conn_fetch_messages(): whole small messages in memory, built on the
 * public FETCH iterator (imk_conn_fetch / imk_fetch_iter_next /
 * imk_fetch_iter_end), so it
 * holds nothing the iterator does not give every application.
 *
 * The iterator yields, per FETCH response, the body sections first
 * (BODY_BEGIN, BODY_DATA..., BODY_END) and then the record (MESSAGE) with
 * the other items; a small section may instead arrive inline in the
 * record. So a streamed BODY[] is collected into `pending` and attached to
 * the next record of the same sequence number.
 *
 * Invariants:
 *   - no body is ever larger than max_bytes: the size is known at
 *     BODY_BEGIN (the literal's length), before any byte is stored; a
 *     larger message ends the call with IMK_ELIMIT;
 *   - several FETCH responses for one message (a flag change arriving
 *     beside the answer) are merged into one imk_message, found by its
 *     sequence number;
 *   - everything belongs to the connection's allocator and is freed by
 *     imk_messages_free(), also on every failure path here.
 *
 * A tagged NO or BAD is not an error here either (client.h): the call
 * returns 0 with the messages that did arrive (a NO for FETCH usually means
 * some of them were expunged meanwhile).
 */
#define _POSIX_C_SOURCE 200809L

#include "client/client_int.h"

#include "util/alloc.h"

#include <string.h>

#define DEFAULT_MAX_BYTES ((size_t)64 * 1024 * 1024)

typedef struct collector {
    const imk_allocator *alloc;
    size_t max_bytes;
    imk_message *msgs;
    size_t count, cap;
    /* the BODY[] being streamed */
    int pending;
    uint32_t pending_seq;
    char *body;
    size_t body_len, body_cap;
    /* IMK_ELIMIT: which message was too big */
    uint32_t big_seq;
    uint64_t big_size;
} collector;

static void message_clear(const imk_allocator *a, imk_message *m)
{
    imk__free(a, m->body);
    imk__free(a, (void *)m->flags.items);
    memset(m, 0, sizeof(*m));
}

void imk_messages_free(imk_conn *c, imk_message *msgs, size_t count)
{
    if (c == NULL || msgs == NULL)
        return;
    const imk_allocator *a = imk__conn_alloc(c);
    for (size_t i = 0; i < count; i++)
        message_clear(a, &msgs[i]);
    imk__free(a, msgs);
}

/* The message with this sequence number, added when new. Servers answer
 * in ascending order, so a new number is usually appended in O(1). */
static imk_message *message_for(collector *col, uint32_t seq)
{
    if (col->count == 0 || seq <= col->msgs[col->count - 1].seq)
        for (size_t i = col->count; i-- > 0;)
            if (col->msgs[i].seq == seq)
                return &col->msgs[i];
    if (col->count == col->cap) {
        size_t cap = col->cap == 0 ? 16 : col->cap * 2, bytes;
        if (cap < col->cap || !imk__mul_ok(cap, sizeof(imk_message), &bytes))
            return NULL;
        imk_message *m = imk__realloc(col->alloc, col->msgs, bytes);
        if (m == NULL)
            return NULL;
        col->msgs = m;
        col->cap = cap;
    }
    imk_message *m = &col->msgs[col->count++];
    memset(m, 0, sizeof(*m));
    m->seq = seq;
    return m;
}

/* Copy flags into one block: the imk_str array, then the NUL-terminated
 * names. */
static int copy_flags(collector *col, imk_message *m, const imk_strlist *flags)
{
    size_t bytes = 0, head;
    if (!imk__mul_ok(flags->count, sizeof(imk_str), &head))
        return IMK_ENOMEM;
    bytes = head;
    for (size_t i = 0; i < flags->count; i++) {
        if (flags->items[i].len + 1 > SIZE_MAX - bytes)
            return IMK_ENOMEM;
        bytes += flags->items[i].len + 1;
    }
    imk_str *items = imk__malloc(col->alloc, bytes > 0 ? bytes : 1);
    if (items == NULL)
        return IMK_ENOMEM;
    char *p = (char *)items + head;
    for (size_t i = 0; i < flags->count; i++) {
        size_t len = flags->items[i].len;
        if (len > 0)
            memcpy(p, flags->items[i].data, len);
        p[len] = '\0';
        items[i].data = p;
        items[i].len = len;
        p += len + 1;
    }
    imk__free(col->alloc, (void *)m->flags.items);
    m->flags.items = items;
    m->flags.count = flags->count;
    return 0;
}

static int too_big(collector *col, uint32_t seq, uint64_t size)
{
    col->big_seq = seq;
    col->big_size = size;
    return IMK_ELIMIT;
}

/* BODY[] whole: not a part, not a partial fetch. */
static int is_whole_body(imk_section_item item, imk_str spec, int has_origin)
{
    return item == IMK_SECTION_BODY && spec.len == 0 && !has_origin;
}

static int body_begin(collector *col, const imk_body_info *b)
{
    if (!is_whole_body(b->item, b->spec, b->has_origin))
        return 0;
    if (b->size > col->max_bytes)
        return too_big(col, b->seq, b->size);
    imk__free(col->alloc, col->body);
    col->body = imk__malloc(col->alloc, (size_t)b->size + 1);
    if (col->body == NULL)
        return IMK_ENOMEM;
    col->pending = 1;
    col->pending_seq = b->seq;
    col->body_len = 0;
    col->body_cap = (size_t)b->size;
    return 0;
}

static int body_data(collector *col, const char *data, size_t len)
{
    if (!col->pending)
        return 0;
    /* The literal's length bounds its data; more would be the iterator's
     * bug, and must not overrun the buffer. */
    if (len > col->body_cap - col->body_len)
        return too_big(col, col->pending_seq, (uint64_t)col->body_len + len);
    memcpy(col->body + col->body_len, data, len);
    col->body_len += len;
    return 0;
}

/* Give `body` (len bytes, room for a NUL after them) to the message; the
 * NUL is a convenience, body_len is the length. */
static void set_body(collector *col, imk_message *m, char *body, size_t len)
{
    imk__free(col->alloc, m->body);
    body[len] = '\0';
    m->body = body;
    m->body_len = len;
}

static int message(collector *col, const imk_fetch *f)
{
    imk_message *m = message_for(col, f->seq);
    if (m == NULL)
        return IMK_ENOMEM;
    if (f->present & IMK_FETCH_UID)
        m->uid = f->uid;
    if (f->present & IMK_FETCH_MODSEQ)
        m->modseq = f->modseq;
    if (f->present & IMK_FETCH_RFC822_SIZE)
        m->size = f->rfc822_size;
    if ((f->present & IMK_FETCH_FLAGS) && copy_flags(col, m, &f->flags) < 0)
        return IMK_ENOMEM;
    if (col->pending && col->pending_seq == f->seq) {
        col->pending = 0;
        set_body(col, m, col->body, col->body_len);
        col->body = NULL;
    }
    for (size_t i = 0; i < f->section_count; i++) {
        const imk_fetch_section *sec = &f->sections[i];
        if (sec->streamed || sec->data.data == NULL ||
            !is_whole_body(sec->item, sec->spec, sec->has_origin))
            continue;
        if (sec->data.len > col->max_bytes)
            return too_big(col, f->seq, sec->data.len);
        char *body = imk__malloc(col->alloc, sec->data.len + 1);
        if (body == NULL)
            return IMK_ENOMEM;
        memcpy(body, sec->data.data, sec->data.len);
        set_body(col, m, body, sec->data.len);
    }
    return 0;
}

static int collect(collector *col, const imk_fetch_item *item)
{
    switch (item->type) {
    case IMK_FI_BODY_BEGIN:
        return body_begin(col, item->body);
    case IMK_FI_BODY_DATA:
        return body_data(col, item->data, item->len);
    case IMK_FI_BODY_END:
        return 0;
    case IMK_FI_MESSAGE:
        return message(col, item->msg);
    }
    return 0;
}

int imk_conn_fetch_messages(imk_conn *c, int uid, const char *set, size_t max_bytes,
                            imk_message **out, size_t *count)
{
    if (out != NULL)
        *out = NULL;
    if (count != NULL)
        *count = 0;
    if (c == NULL)
        return IMK_EINVAL;
    if (out == NULL || count == NULL)
        return imk__conn_fail(c, IMK_EINVAL,
                              "imk_conn_fetch_messages: out and count must not be NULL");
    collector col;
    memset(&col, 0, sizeof(col));
    col.alloc = imk__conn_alloc(c);
    col.max_bytes = max_bytes != 0 ? max_bytes : DEFAULT_MAX_BYTES;

    imk_fetch_iter *it;
    int rc = imk_conn_fetch(c, uid, set, "(UID FLAGS RFC822.SIZE BODY.PEEK[])", &it);
    if (rc < 0)
        return rc;
    imk_fetch_item item;
    int stop = 0; /* our own reason to stop: IMK_ELIMIT or IMK_ENOMEM */
    while ((rc = imk_fetch_iter_next(it, &item)) == 1)
        if ((stop = collect(&col, &item)) < 0)
            break;
    /* The iterator must be ended whatever happened (it drains what is
     * left); a stop of ours is the cause to report. */
    int end_rc = imk_fetch_iter_end(it, NULL);
    if (stop == 0 && rc == 0)
        rc = end_rc;
    imk__free(col.alloc, col.body);
    if (stop < 0 || rc < 0) {
        imk_messages_free(c, col.msgs, col.count);
        if (stop == IMK_ELIMIT)
            return imk__conn_fail(c, IMK_ELIMIT,
                                  "message %u is %llu bytes, above max_bytes (%zu): fetch it "
                                  "with imk_conn_fetch(), which streams bodies",
                                  (unsigned)col.big_seq, (unsigned long long)col.big_size,
                                  col.max_bytes);
        if (stop == IMK_ENOMEM)
            return imk__conn_fail(c, IMK_ENOMEM, "out of memory collecting fetched messages");
        return rc;
    }
    *out = col.msgs;
    *count = col.count;
    return 0;
}
