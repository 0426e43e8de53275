/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the response parser (src/proto/parser.c and the
 * lexer and FETCH/BODY modules under it).
 *
 * The input is framed naively: all of it is one response buffer, exactly
 * as long as the input (libFuzzer and replay_main.c both hand it over in a
 * heap block of that size, so ASan sees a read one byte past the end). It is
 * not required to be a well-formed frame - "{n}" announcements may lie about
 * their size, CRLFs may sit anywhere - and the parser must survive that: the
 * framer is not the parser's only line of defence.
 *
 * Each input is parsed three times:
 *   1. default quirks and limits;
 *   2. strict (quirks = 0);
 *   3. every quirk on (bare LF too), UTF8=ACCEPT mailbox names, tight
 *      limits (depth 4, 8 items per list), and the first "{" of the input
 *      declared a streamed literal, as the reader would for a body section.
 * On success every string the response points to is read (to catch a
 * pointer that leads outside the buffer or the arena); on failure the error
 * fields must be consistent. Any violation aborts.
 */
#include "imapkit/reader.h"
#include "imapkit/response.h"
#include "proto/parser.h"
#include "util/alloc.h"
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

static void touch(const imk_str *s)
{
    unsigned char acc = 0;
    if (s->data == NULL) {
        if (s->len != 0)
            abort();
        return;
    }
    for (size_t i = 0; i < s->len; i++)
        acc ^= (unsigned char)s->data[i];
    sink ^= acc;
}

static void touch_value(const imk_value *v, int depth)
{
    if (v == NULL)
        return;
    if (depth > 1000)
        abort();
    touch(&v->str);
    if (v->type == IMK_VALUE_LIST)
        for (size_t i = 0; i < v->count; i++)
            touch_value(&v->items[i], depth + 1);
}

static void touch_strlist(const imk_strlist *l)
{
    for (size_t i = 0; i < l->count; i++)
        touch(&l->items[i]);
}

static void touch_seqset(const imk_seqset *s)
{
    for (size_t i = 0; i < s->count; i++)
        sink ^= (unsigned char)(s->ranges[i].first ^ s->ranges[i].last);
}

/* Members of a thread-list form a chain of single children (RFC 5256), as
 * long as the server makes it: walk chains iteratively, recurse only at
 * branches (bounded by max_depth, since each branch needs a "("). */
static void touch_thread(const imk_thread_node *n, size_t count, int depth)
{
    if (depth > 10000)
        abort();
    for (size_t i = 0; i < count; i++) {
        const imk_thread_node *cur = &n[i];
        while (cur->child_count == 1) {
            sink ^= (unsigned char)cur->num;
            cur = cur->children;
        }
        sink ^= (unsigned char)cur->num;
        touch_thread(cur->children, cur->child_count, depth + 1);
    }
}

static void touch_response(const imk_response *r)
{
    touch(&r->tag);
    touch(&r->text);
    touch(&r->name);
    touch(&r->raw);
    if (r->code != NULL) {
        touch(&r->code->name);
        touch(&r->code->raw);
        touch(&r->code->string);
        touch(&r->code->progress_tag);
        touch_value(r->code->value, 0);
        touch_strlist(&r->code->list);
        touch_seqset(&r->code->set);
        touch_seqset(&r->code->set2);
    }
    switch (r->kind) {
    case IMK_KIND_CAPABILITY:
    case IMK_KIND_ENABLED:
        touch_strlist(&r->u.capability);
        break;
    case IMK_KIND_FLAGS:
        touch_strlist(&r->u.flags);
        break;
    case IMK_KIND_LIST:
    case IMK_KIND_LSUB:
        touch_strlist(&r->u.list.attributes);
        touch(&r->u.list.mailbox);
        touch(&r->u.list.mailbox_raw);
        touch(&r->u.list.oldname);
        touch_strlist(&r->u.list.childinfo);
        for (size_t i = 0; i < r->u.list.extra_count; i++) {
            touch(&r->u.list.extras[i].tag);
            touch_value(r->u.list.extras[i].value, 0);
        }
        break;
    case IMK_KIND_STATUS:
        touch(&r->u.status.mailbox);
        touch(&r->u.status.mailboxid);
        for (size_t i = 0; i < r->u.status.extra_count; i++)
            touch_value(r->u.status.extras[i].value, 0);
        break;
    case IMK_KIND_SEARCH:
    case IMK_KIND_SORT:
        for (size_t i = 0; i < r->u.search.count; i++)
            sink ^= (unsigned char)r->u.search.numbers[i];
        break;
    case IMK_KIND_THREAD:
        touch_thread(r->u.thread.roots, r->u.thread.count, 0);
        break;
    case IMK_KIND_ESEARCH:
        touch(&r->u.esearch.tag);
        touch_seqset(&r->u.esearch.all);
        touch_seqset(&r->u.esearch.partial);
        for (size_t i = 0; i < r->u.esearch.update_count; i++)
            touch_seqset(&r->u.esearch.updates[i].set);
        for (size_t i = 0; i < r->u.esearch.extra_count; i++)
            touch_value(r->u.esearch.extras[i].value, 0);
        break;
    case IMK_KIND_FETCH:
        touch_strlist(&r->u.fetch.flags);
        touch(&r->u.fetch.emailid);
        touch(&r->u.fetch.threadid);
        touch(&r->u.fetch.preview);
        for (size_t i = 0; i < r->u.fetch.section_count; i++) {
            touch(&r->u.fetch.sections[i].spec);
            touch(&r->u.fetch.sections[i].data);
        }
        for (size_t i = 0; i < r->u.fetch.extra_count; i++) {
            touch(&r->u.fetch.extras[i].name);
            touch_value(r->u.fetch.extras[i].value, 0);
        }
        if (r->u.fetch.envelope != NULL)
            touch(&r->u.fetch.envelope->subject);
        if (r->u.fetch.body != NULL)
            touch(&r->u.fetch.body->type);
        break;
    case IMK_KIND_VANISHED:
        touch_seqset(&r->u.vanished.uids);
        break;
    case IMK_KIND_NAMESPACE:
        for (size_t i = 0; i < r->u.namespace_.personal.count; i++)
            touch(&r->u.namespace_.personal.items[i].prefix);
        break;
    case IMK_KIND_ID:
        for (size_t i = 0; i < r->u.id.fields.count; i++) {
            touch(&r->u.id.fields.items[i].name);
            touch(&r->u.id.fields.items[i].value);
        }
        break;
    case IMK_KIND_QUOTA:
        touch(&r->u.quota.root);
        for (size_t i = 0; i < r->u.quota.count; i++)
            touch(&r->u.quota.resources[i].name);
        break;
    case IMK_KIND_QUOTAROOT:
        touch(&r->u.quotaroot.mailbox);
        touch_strlist(&r->u.quotaroot.roots);
        break;
    case IMK_KIND_METADATA:
        touch(&r->u.metadata.mailbox);
        for (size_t i = 0; i < r->u.metadata.entries.count; i++)
            touch(&r->u.metadata.entries.items[i].value);
        break;
    case IMK_KIND_ACL:
    case IMK_KIND_LISTRIGHTS:
    case IMK_KIND_MYRIGHTS:
        touch(&r->u.acl.mailbox);
        touch(&r->u.acl.rights);
        touch_strlist(&r->u.acl.optional_rights);
        for (size_t i = 0; i < r->u.acl.entries.count; i++)
            touch(&r->u.acl.entries.items[i].value);
        break;
    case IMK_KIND_GENERIC:
        touch_value(r->u.generic, 0);
        break;
    default:
        break;
    }
}

static void run(const uint8_t *data, size_t size, const imk__parse_limits *limits,
                const imk__streamed *streamed, size_t streamed_count)
{
    imk_allocator alloc;
    imk__alloc_init(&alloc, NULL);
    imk__arena arena;
    imk__arena_init(&arena, &alloc, 4096, 64u << 20);
    imk__parse_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.limits = limits;
    ctx.arena = &arena;
    ctx.buf = (const char *)data;
    ctx.len = size;
    ctx.streamed = streamed;
    ctx.streamed_count = streamed_count;
    imk_response *r = NULL;
    int rc = imk__parse_response(&ctx, &r);
    if (rc == 0) {
        if (r == NULL || r->raw.data != (const char *)data || r->raw.len != size)
            abort();
        touch_response(r);
    } else {
        if (rc > 0 || ctx.err_code != rc || ctx.err_msg == NULL || ctx.err_pos > size)
            abort();
        sink ^= (unsigned char)strlen(ctx.err_msg);
    }
    imk__arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    imk__parse_limits limits = {64, 1000000, IMK_READER_QUIRKS_DEFAULT, 0};
    run(data, size, &limits, NULL, 0);

    limits.quirks = 0;
    run(data, size, &limits, NULL, 0);

    imk__parse_limits tight = {4, 8, IMK_READER_QUIRKS_DEFAULT | IMK_QUIRK_BARE_LF, 1};
    const uint8_t *brace = memchr(data, '{', size);
    imk__streamed st = {0, 0};
    if (brace != NULL) {
        st.offset = (size_t)(brace - data);
        if (st.offset > 0 && data[st.offset - 1] == '~')
            st.offset--;
        st.size = 12345;
    }
    run(data, size, &tight, &st, brace != NULL ? 1 : 0);
    return 0;
}
