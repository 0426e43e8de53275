/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/proto/result.c, the builder that copies and merges a
 * command's untagged data into its imk_result.
 *
 * Inputs are built in a scratch arena the way the reader builds them: every
 * string is followed by a '#' byte instead of a NUL, so code that reads past
 * `len` shows up as a wrong value. Most checks compare a text dump of the
 * whole imk_result: dumping right after an add and again after the scratch
 * arena is freed proves the copy independent (under ASan a dangling pointer
 * is a use-after-free report), and dumping before and after a failing call
 * proves that a failure changes nothing - for every allocation of a
 * representative sequence (failing_allocator) and for the max_bytes limit.
 */
#include "test.h"

#include "proto/result.h"
#include "util/alloc.h"
#include "util/arena.h"

#include <stdarg.h>
#include <stdint.h>

static imk_allocator std_alloc;
static imk__arena scratch; /* the "reader's arena": inputs live here */

/* ------------------------------------------------------------------ */
/* Building inputs                                                     */
/* ------------------------------------------------------------------ */

static void *A(size_t size)
{
    void *p = imk__arena_alloc(&scratch, size == 0 ? 1 : size);
    if (p == NULL) {
        fprintf(stderr, "scratch arena: out of memory\n");
        exit(2);
    }
    memset(p, 0, size);
    return p;
}

/* n bytes followed by '#', not NUL. */
static imk_str SN(const char *s, size_t n)
{
    char *p = A(n + 1);
    memcpy(p, s, n);
    p[n] = '#';
    imk_str out = {p, n};
    return out;
}

static imk_str S(const char *s)
{
    return SN(s, strlen(s));
}

static const imk_str NIL_STR = {NULL, 0};

static imk_strlist SL(size_t n, ...)
{
    va_list ap;
    imk_str *items = A(n * sizeof(*items));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        items[i] = S(va_arg(ap, const char *));
    va_end(ap);
    imk_strlist out = {n, items};
    return out;
}

static imk_value V_atom(const char *s)
{
    imk_value v;
    memset(&v, 0, sizeof(v));
    v.type = IMK_VALUE_ATOM;
    v.str = S(s);
    return v;
}

static imk_value V_num(uint64_t n, const char *digits)
{
    imk_value v = V_atom(digits);
    v.type = IMK_VALUE_NUMBER;
    v.number = n;
    return v;
}

static imk_value V_literal(const char *s, size_t n)
{
    imk_value v;
    memset(&v, 0, sizeof(v));
    v.type = IMK_VALUE_LITERAL;
    v.binary = 1;
    v.number = n;
    v.str = SN(s, n);
    return v;
}

static imk_value V_list(size_t n, const imk_value *items)
{
    imk_value v;
    memset(&v, 0, sizeof(v));
    v.type = IMK_VALUE_LIST;
    imk_value *copy = A(n * sizeof(*copy));
    memcpy(copy, items, n * sizeof(*copy));
    v.count = n;
    v.items = copy;
    return v;
}

static const imk_value *VP(imk_value v)
{
    imk_value *p = A(sizeof(*p));
    *p = v;
    return p;
}

static imk_seqset SET(size_t n, const imk_range *ranges)
{
    imk_range *copy = A(n * sizeof(*copy));
    memcpy(copy, ranges, n * sizeof(*copy));
    imk_seqset s = {n, copy};
    return s;
}

static imk_fetch F(uint32_t seq)
{
    imk_fetch f;
    memset(&f, 0, sizeof(f));
    f.seq = seq;
    return f;
}

static void F_uid(imk_fetch *f, uint32_t uid)
{
    f->present |= IMK_FETCH_UID;
    f->uid = uid;
}

static void F_section(imk_fetch *f, imk_section_item item, const char *spec, int has_origin,
                      uint64_t origin, imk_str data)
{
    imk_fetch_section *a = A((f->section_count + 1) * sizeof(*a));
    if (f->section_count != 0)
        memcpy(a, f->sections, f->section_count * sizeof(*a));
    imk_fetch_section *s = &a[f->section_count];
    s->item = item;
    s->spec = S(spec);
    s->has_origin = has_origin;
    s->origin = origin;
    s->data = data;
    s->size = data.len;
    f->sections = a;
    f->section_count++;
}

static void F_extra(imk_fetch *f, const char *name, imk_value value)
{
    imk_fetch_extra *a = A((f->extra_count + 1) * sizeof(*a));
    if (f->extra_count != 0)
        memcpy(a, f->extras, f->extra_count * sizeof(*a));
    a[f->extra_count].name = S(name);
    a[f->extra_count].value = VP(value);
    f->extras = a;
    f->extra_count++;
}

static imk_address_list ADDRS(size_t n, const imk_address *items)
{
    imk_address *copy = A(n * sizeof(*copy));
    memcpy(copy, items, n * sizeof(*copy));
    imk_address_list l = {n, copy};
    return l;
}

static const imk_envelope *sample_envelope(const char *subject)
{
    imk_envelope *e = A(sizeof(*e));
    imk_address from[] = {{S("Fred Foobar"), NIL_STR, S("foobar"), S("Blurdybloop.example")}};
    imk_address to[] = {{NIL_STR, NIL_STR, S("undisclosed"), NIL_STR},
                        {S("Joe"), NIL_STR, S("joe"), S("example.org")},
                        {NIL_STR, NIL_STR, NIL_STR, NIL_STR}};
    e->date = S("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)");
    e->subject = S(subject);
    e->from = ADDRS(1, from);
    e->sender = ADDRS(1, from);
    e->reply_to = ADDRS(1, from);
    e->to = ADDRS(3, to);
    e->in_reply_to = NIL_STR;
    e->message_id = S("<B27397-0100000@Blurdybloop.example>");
    return e;
}

static imk_param_list PARAMS(size_t n, ...)
{
    va_list ap;
    imk_param *items = A(n * sizeof(*items));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        items[i].name = S(va_arg(ap, const char *));
        items[i].value = S(va_arg(ap, const char *));
    }
    va_end(ap);
    imk_param_list l = {n, items};
    return l;
}

/* multipart/mixed of text/plain (with extension data) and a
 * message/rfc822 holding its own envelope and a text/html part. */
static const imk_body *sample_body(void)
{
    imk_body *inner = A(sizeof(*inner));
    inner->type = S("TEXT");
    inner->subtype = S("HTML");
    inner->params = PARAMS(1, "CHARSET", "utf-8");
    inner->encoding = S("QUOTED-PRINTABLE");
    inner->size = 77;
    inner->has_lines = 1;
    inner->lines = 3;

    imk_body *parts = A(2 * sizeof(*parts));
    parts[0].type = S("TEXT");
    parts[0].subtype = S("PLAIN");
    parts[0].params = PARAMS(2, "CHARSET", "US-ASCII", "FORMAT", "flowed");
    parts[0].id = S("<part1@x>");
    parts[0].description = NIL_STR;
    parts[0].encoding = S("7BIT");
    parts[0].size = 3028;
    parts[0].has_lines = 1;
    parts[0].lines = 92;
    parts[0].has_ext = 1;
    parts[0].md5 = S("Q2hlY2sgSW50ZWdyaXR5IQ==");
    parts[0].disposition = S("inline");
    parts[0].disposition_params = PARAMS(1, "FILENAME", "a.txt");
    parts[0].languages = SL(2, "en", "de");
    parts[0].location = S("http://example/a.txt");
    imk_value ext_inner[] = {V_num(1, "1"), V_literal("l\0t", 3)};
    imk_value exts[] = {V_atom("X-EXT"), V_list(2, ext_inner)};
    parts[0].extension_count = 2;
    imk_value *ext_copy = A(sizeof(exts));
    memcpy(ext_copy, exts, sizeof(exts));
    parts[0].extensions = ext_copy;

    parts[1].type = S("MESSAGE");
    parts[1].subtype = S("RFC822");
    parts[1].encoding = S("7BIT");
    parts[1].size = 4000;
    parts[1].envelope = sample_envelope("inner subject");
    parts[1].part_count = 1;
    parts[1].parts = inner;
    parts[1].has_lines = 1;
    parts[1].lines = 50;

    imk_body *top = A(sizeof(*top));
    top->multipart = 1;
    top->type = S("MULTIPART");
    top->subtype = S("MIXED");
    top->part_count = 2;
    top->parts = parts;
    top->has_ext = 1;
    top->params = PARAMS(1, "BOUNDARY", "xyz");
    top->disposition = NIL_STR;
    return top;
}

static imk_fetch sample_fetch(uint32_t seq, uint32_t uid)
{
    imk_fetch f = F(seq);
    F_uid(&f, uid);
    f.present |= IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ | IMK_FETCH_INTERNALDATE |
                 IMK_FETCH_RFC822_SIZE | IMK_FETCH_ENVELOPE | IMK_FETCH_BODYSTRUCTURE |
                 IMK_FETCH_EMAILID | IMK_FETCH_THREADID | IMK_FETCH_SAVEDATE | IMK_FETCH_PREVIEW;
    f.flags = SL(3, "\\Seen", "\\Answered", "$Forwarded");
    f.modseq = 12345678901ull;
    imk_datetime dt = {1996, 7, 17, 2, 44, 25, -420};
    f.internaldate = dt;
    f.rfc822_size = 4286;
    f.envelope = sample_envelope("IMAP4rev2 WG mtg summary and minutes");
    f.body = sample_body();
    f.emailid = S("M6d99ac3275bb4e");
    f.threadid = NIL_STR;
    f.has_savedate = 1;
    f.savedate = dt;
    f.preview = S("Hello, this is the preview");
    /* an inline section with a NUL inside, a streamed one, BINARY.SIZE,
     * and one big enough for a block of its own */
    F_section(&f, IMK_SECTION_BODY, "HEADER.FIELDS (FROM TO)", 0, 0, SN("From: a\0b\r\n", 11));
    imk_fetch_section streamed = {IMK_SECTION_BODY, {NULL, 0}, 0, 0, {NULL, 0}, 1, 99999};
    F_section(&f, IMK_SECTION_BODY, "", 0, 0, NIL_STR);
    imk_fetch_section *last = (imk_fetch_section *)&f.sections[f.section_count - 1];
    *last = streamed;
    last->spec = S("");
    last->data = S("must not be copied");
    F_section(&f, IMK_SECTION_BINARY_SIZE, "1", 0, 0, NIL_STR);
    char big[5000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    F_section(&f, IMK_SECTION_BINARY, "2", 1, 100, SN(big, sizeof(big)));
    imk_value xitems[] = {V_atom("A"), V_literal("bytes", 5)};
    F_extra(&f, "X-GM-LABELS", V_list(2, xitems));
    F_extra(&f, "X-NIL", V_atom("NIL"));
    return f;
}

static const imk_code *sample_code(imk_code_kind kind)
{
    imk_code *c = A(sizeof(*c));
    c->kind = kind;
    c->name = S(kind == IMK_CODE_COPYUID     ? "COPYUID"
                : kind == IMK_CODE_APPENDUID ? "APPENDUID"
                                             : "XYZ");
    c->raw = S("38505 304,319:320 3956:3958");
    imk_value vals[] = {V_num(38505, "38505"), V_atom("304,319:320")};
    c->value = VP(V_list(2, vals));
    c->number = 7;
    c->list = SL(2, "IMAP4rev2", "IDLE");
    c->uidvalidity = 38505;
    imk_range src[] = {{304, 304}, {319, 320}};
    imk_range dst[] = {{3956, 3958}};
    c->set = SET(2, src);
    c->set2 = SET(1, dst);
    c->string = S("string arg");
    c->progress_tag = S("A12");
    c->has_progress_count = 1;
    c->progress_count = 5;
    return c;
}

static imk_list sample_list(const char *mailbox)
{
    imk_list l;
    memset(&l, 0, sizeof(l));
    l.attributes = SL(2, "\\HasNoChildren", "\\Sent");
    l.delimiter = '/';
    l.mailbox = S(mailbox);
    l.mailbox_raw = S(mailbox);
    l.childinfo = SL(1, "SUBSCRIBED");
    l.oldname = S("Old/Name");
    imk_list_extra *ex = A(sizeof(*ex));
    ex->tag = S("X-TAG");
    ex->value = VP(V_atom("v"));
    l.extra_count = 1;
    l.extras = ex;
    return l;
}

static imk_status_data sample_status(const char *mailbox, uint64_t messages)
{
    imk_status_data st;
    memset(&st, 0, sizeof(st));
    st.mailbox = S(mailbox);
    st.mailbox_raw = S(mailbox);
    st.present = IMK_STATUS_MESSAGES | IMK_STATUS_UIDNEXT | IMK_STATUS_MAILBOXID;
    st.messages = messages;
    st.uidnext = 44292;
    st.mailboxid = S("F2212ea87-6097-4256-9d51-71338625");
    imk_fetch_extra *ex = A(sizeof(*ex));
    ex->name = S("X-ITEM");
    ex->value = VP(V_num(3, "3"));
    st.extra_count = 1;
    st.extras = ex;
    return st;
}

static imk_esearch sample_esearch(void)
{
    imk_esearch e;
    memset(&e, 0, sizeof(e));
    e.tag = S("A282");
    e.uid = 1;
    e.present = IMK_ESEARCH_MIN | IMK_ESEARCH_ALL | IMK_ESEARCH_COUNT | IMK_ESEARCH_MODSEQ;
    e.min = 2;
    e.max = 50;
    e.count = 3;
    imk_range all[] = {{2, 2}, {10, 11}};
    e.all = SET(2, all);
    e.modseq = 917162500;
    imk_esearch_update *ups = A(2 * sizeof(*ups));
    imk_range up[] = {{5, 7}};
    ups[0].position = 1;
    ups[0].set = SET(1, up);
    ups[1].remove = 1;
    ups[1].position = 2;
    ups[1].set = SET(1, up);
    e.update_count = 2;
    e.updates = ups;
    imk_fetch_extra *ex = A(sizeof(*ex));
    ex->name = S("X-RESULT");
    ex->value = VP(V_atom("yes"));
    e.extra_count = 1;
    e.extras = ex;
    return e;
}

static imk_namespace sample_namespace(void)
{
    imk_namespace ns;
    memset(&ns, 0, sizeof(ns));
    imk_namespace_desc *personal = A(sizeof(*personal));
    personal->prefix = S("");
    personal->delimiter = '/';
    imk_list_extra *ext = A(sizeof(*ext));
    ext->tag = S("X-PARAM");
    imk_value vals[] = {V_atom("FLAG1"), V_atom("FLAG2")};
    ext->value = VP(V_list(2, vals));
    personal->extension_count = 1;
    personal->extensions = ext;
    ns.personal.count = 1;
    ns.personal.items = personal;
    ns.other_users.nil = 1;
    imk_namespace_desc *shared = A(2 * sizeof(*shared));
    shared[0].prefix = S("Public Folders/");
    shared[0].delimiter = '/';
    shared[1].prefix = S("#news.");
    shared[1].delimiter = -1;
    ns.shared.count = 2;
    ns.shared.items = shared;
    return ns;
}

/* ------------------------------------------------------------------ */
/* Dumping a result                                                    */
/* ------------------------------------------------------------------ */

typedef struct dbuf {
    char *p;
    size_t len, cap;
} dbuf;

static void db_put(dbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            fprintf(stderr, "dump: out of memory\n");
            exit(2);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n != 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
db_printf(dbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        db_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void db_str(dbuf *b, imk_str s)
{
    if (s.data == NULL) {
        db_put(b, "NIL ", 4);
        return;
    }
    db_put(b, "\"", 1);
    db_put(b, s.data, s.len);
    db_put(b, "\" ", 2);
}

static void db_strlist(dbuf *b, const imk_strlist *l)
{
    db_put(b, "(", 1);
    for (size_t i = 0; i < l->count; i++)
        db_str(b, l->items[i]);
    db_put(b, ") ", 2);
}

static void db_value(dbuf *b, const imk_value *v)
{
    if (v == NULL) {
        db_put(b, "<null> ", 7);
        return;
    }
    db_printf(b, "v%d/%d/%d/%llu:", (int)v->type, v->binary, v->streamed,
              (unsigned long long)v->number);
    db_str(b, v->str);
    if (v->type == IMK_VALUE_LIST) {
        db_put(b, "[", 1);
        for (size_t i = 0; i < v->count; i++)
            db_value(b, &v->items[i]);
        db_put(b, "] ", 2);
    }
}

static void db_seqset(dbuf *b, const imk_seqset *s)
{
    db_put(b, "{", 1);
    for (size_t i = 0; i < s->count; i++)
        db_printf(b, "%u:%u,", s->ranges[i].first, s->ranges[i].last);
    db_put(b, "} ", 2);
}

static void db_code(dbuf *b, const imk_code *c)
{
    if (c == NULL) {
        db_put(b, "code=none ", 10);
        return;
    }
    db_printf(b, "code %d ", (int)c->kind);
    db_str(b, c->name);
    db_str(b, c->raw);
    db_value(b, c->value);
    db_printf(b, "n=%llu uv=%llu ", (unsigned long long)c->number,
              (unsigned long long)c->uidvalidity);
    db_strlist(b, &c->list);
    db_seqset(b, &c->set);
    db_seqset(b, &c->set2);
    db_str(b, c->string);
    db_str(b, c->progress_tag);
    db_printf(b, "p=%d/%d/%llu/%llu\n", c->has_progress_count, c->has_progress_goal,
              (unsigned long long)c->progress_count, (unsigned long long)c->progress_goal);
}

static void db_addresses(dbuf *b, const imk_address_list *l)
{
    db_put(b, "(", 1);
    for (size_t i = 0; i < l->count; i++) {
        db_put(b, "(", 1);
        db_str(b, l->items[i].name);
        db_str(b, l->items[i].adl);
        db_str(b, l->items[i].mailbox);
        db_str(b, l->items[i].host);
        db_put(b, ")", 1);
    }
    db_put(b, ") ", 2);
}

static void db_envelope(dbuf *b, const imk_envelope *e)
{
    if (e == NULL) {
        db_put(b, "env=none ", 9);
        return;
    }
    db_put(b, "env ", 4);
    db_str(b, e->date);
    db_str(b, e->subject);
    db_addresses(b, &e->from);
    db_addresses(b, &e->sender);
    db_addresses(b, &e->reply_to);
    db_addresses(b, &e->to);
    db_addresses(b, &e->cc);
    db_addresses(b, &e->bcc);
    db_str(b, e->in_reply_to);
    db_str(b, e->message_id);
}

static void db_params(dbuf *b, const imk_param_list *l)
{
    db_put(b, "(", 1);
    for (size_t i = 0; i < l->count; i++) {
        db_str(b, l->items[i].name);
        db_str(b, l->items[i].value);
    }
    db_put(b, ") ", 2);
}

static void db_body(dbuf *b, const imk_body *body)
{
    if (body == NULL) {
        db_put(b, "body=none ", 10);
        return;
    }
    db_printf(b, "body mp=%d ", body->multipart);
    db_str(b, body->type);
    db_str(b, body->subtype);
    db_put(b, "[", 1);
    for (size_t i = 0; i < body->part_count; i++)
        db_body(b, &body->parts[i]);
    db_put(b, "] ", 2);
    db_params(b, &body->params);
    db_str(b, body->id);
    db_str(b, body->description);
    db_str(b, body->encoding);
    db_printf(b, "size=%llu lines=%d/%llu ", (unsigned long long)body->size, body->has_lines,
              (unsigned long long)body->lines);
    db_envelope(b, body->envelope);
    db_printf(b, "ext=%d ", body->has_ext);
    db_str(b, body->md5);
    db_str(b, body->disposition);
    db_params(b, &body->disposition_params);
    db_strlist(b, &body->languages);
    db_str(b, body->location);
    for (size_t i = 0; i < body->extension_count; i++)
        db_value(b, &body->extensions[i]);
}

static void db_datetime(dbuf *b, const imk_datetime *d)
{
    db_printf(b, "%d-%d-%d %d:%d:%d %d ", d->year, d->month, d->day, d->hour, d->minute, d->second,
              d->zone_minutes);
}

static void db_extras(dbuf *b, const imk_fetch_extra *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        db_put(b, "extra ", 6);
        db_str(b, e[i].name);
        db_value(b, e[i].value);
    }
}

static void db_fetch(dbuf *b, const imk_fetch *f)
{
    db_printf(b, "FETCH seq=%u present=%x uid=%u ", f->seq, f->present, f->uid);
    db_strlist(b, &f->flags);
    db_printf(b, "modseq=%llu size=%llu ", (unsigned long long)f->modseq,
              (unsigned long long)f->rfc822_size);
    db_datetime(b, &f->internaldate);
    db_envelope(b, f->envelope);
    db_body(b, f->body);
    db_str(b, f->emailid);
    db_str(b, f->threadid);
    db_printf(b, "savedate=%d ", f->has_savedate);
    db_datetime(b, &f->savedate);
    db_str(b, f->preview);
    for (size_t i = 0; i < f->section_count; i++) {
        const imk_fetch_section *s = &f->sections[i];
        db_printf(b, "\n  section %d ", (int)s->item);
        db_str(b, s->spec);
        db_printf(b, "origin=%d/%llu streamed=%d size=%llu ", s->has_origin,
                  (unsigned long long)s->origin, s->streamed, (unsigned long long)s->size);
        db_str(b, s->data);
    }
    db_extras(b, f->extras, f->extra_count);
    db_put(b, "\n", 1);
}

/* Chains are walked with a loop, as in the code under test. */
static void db_thread_node(dbuf *b, const imk_thread_node *n)
{
    for (;;) {
        db_printf(b, "%u", n->num);
        if (n->child_count == 0)
            break;
        if (n->child_count == 1) {
            db_put(b, " ", 1);
            n = &n->children[0];
            continue;
        }
        db_put(b, " {", 2);
        for (size_t i = 0; i < n->child_count; i++) {
            db_put(b, "(", 1);
            db_thread_node(b, &n->children[i]);
            db_put(b, ")", 1);
        }
        db_put(b, "}", 1);
        break;
    }
}

static void db_status(dbuf *b, const imk_status_data *st)
{
    db_put(b, "STATUS ", 7);
    db_str(b, st->mailbox);
    db_str(b, st->mailbox_raw);
    db_printf(b, "%d %x %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %d ",
              st->mailbox_not_utf7, st->present, (unsigned long long)st->messages,
              (unsigned long long)st->uidnext, (unsigned long long)st->uidvalidity,
              (unsigned long long)st->unseen, (unsigned long long)st->recent,
              (unsigned long long)st->deleted, (unsigned long long)st->size,
              (unsigned long long)st->highestmodseq, (unsigned long long)st->appendlimit,
              (unsigned long long)st->deleted_storage, st->appendlimit_nil);
    db_str(b, st->mailboxid);
    db_extras(b, st->extras, st->extra_count);
    db_put(b, "\n", 1);
}

static void db_list_extras(dbuf *b, const imk_list_extra *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        db_put(b, "lextra ", 7);
        db_str(b, e[i].tag);
        db_value(b, e[i].value);
    }
}

static void db_ns_list(dbuf *b, const imk_namespace_list *l)
{
    db_printf(b, "ns nil=%d (", l->nil);
    for (size_t i = 0; i < l->count; i++) {
        db_str(b, l->items[i].prefix);
        db_printf(b, "%d ", l->items[i].delimiter);
        db_list_extras(b, l->items[i].extensions, l->items[i].extension_count);
    }
    db_put(b, ")\n", 2);
}

static void db_result(dbuf *b, const imk_result *res)
{
    db_printf(b, "status=%d error=%d ", (int)res->status, res->error);
    db_code(b, res->code);
    db_str(b, res->text);
    db_put(b, "\n", 1);
    for (size_t i = 0; i < res->fetch_count; i++)
        db_fetch(b, &res->fetches[i]);
    db_put(b, "SEARCH ", 7);
    for (size_t i = 0; i < res->search.count; i++)
        db_printf(b, "%u ", res->search.numbers[i]);
    db_printf(b, "modseq=%d/%llu\n", res->search.has_modseq,
              (unsigned long long)res->search.modseq);
    db_put(b, "THREAD ", 7);
    for (size_t i = 0; i < res->thread.count; i++) {
        db_put(b, "(", 1);
        db_thread_node(b, &res->thread.roots[i]);
        db_put(b, ")", 1);
    }
    db_put(b, "\n", 1);
    if (res->esearch != NULL) {
        const imk_esearch *e = res->esearch;
        db_put(b, "ESEARCH ", 8);
        db_str(b, e->tag);
        db_printf(b, "uid=%d present=%x min=%u max=%u count=%llu modseq=%llu ", e->uid, e->present,
                  e->min, e->max, (unsigned long long)e->count, (unsigned long long)e->modseq);
        db_seqset(b, &e->all);
        db_seqset(b, &e->partial);
        for (size_t i = 0; i < e->update_count; i++) {
            db_printf(b, "up %d %llu ", e->updates[i].remove,
                      (unsigned long long)e->updates[i].position);
            db_seqset(b, &e->updates[i].set);
        }
        db_extras(b, e->extras, e->extra_count);
        db_put(b, "\n", 1);
    }
    for (size_t i = 0; i < res->list_count; i++) {
        const imk_list *l = &res->lists[i].list;
        db_put(b, "LIST ", 5);
        db_strlist(b, &l->attributes);
        db_printf(b, "%d ", l->delimiter);
        db_str(b, l->mailbox);
        db_str(b, l->mailbox_raw);
        db_printf(b, "%d ", l->mailbox_not_utf7);
        db_strlist(b, &l->childinfo);
        db_str(b, l->oldname);
        db_list_extras(b, l->extras, l->extra_count);
        db_put(b, "\n  ", 3);
        if (res->lists[i].status != NULL)
            db_status(b, res->lists[i].status);
        else
            db_put(b, "no status\n", 10);
    }
    for (size_t i = 0; i < res->status_count; i++)
        db_status(b, &res->statuses[i]);
    if (res->namespace_ != NULL) {
        db_ns_list(b, &res->namespace_->personal);
        db_ns_list(b, &res->namespace_->other_users);
        db_ns_list(b, &res->namespace_->shared);
    }
    if (res->id != NULL) {
        db_printf(b, "ID nil=%d ", res->id->nil);
        db_params(b, &res->id->fields);
        db_put(b, "\n", 1);
    }
    for (size_t i = 0; i < res->quota_count; i++) {
        db_put(b, "QUOTA ", 6);
        db_str(b, res->quotas[i].root);
        for (size_t j = 0; j < res->quotas[i].count; j++) {
            db_str(b, res->quotas[i].resources[j].name);
            db_printf(b, "%llu/%llu ", (unsigned long long)res->quotas[i].resources[j].usage,
                      (unsigned long long)res->quotas[i].resources[j].limit);
        }
        db_put(b, "\n", 1);
    }
    if (res->quotaroot != NULL) {
        db_put(b, "QUOTAROOT ", 10);
        db_str(b, res->quotaroot->mailbox);
        db_strlist(b, &res->quotaroot->roots);
        db_put(b, "\n", 1);
    }
    for (size_t i = 0; i < res->metadata_count; i++) {
        db_printf(b, "METADATA %d ", res->metadata[i].has_values);
        db_str(b, res->metadata[i].mailbox);
        db_params(b, &res->metadata[i].entries);
        db_put(b, "\n", 1);
    }
    db_put(b, "ENABLED ", 8);
    db_strlist(b, &res->enabled);
    db_put(b, "CAPABILITY ", 11);
    db_strlist(b, &res->capabilities);
    db_put(b, "\n", 1);
    if (res->acl != NULL) {
        db_put(b, "ACL ", 4);
        db_str(b, res->acl->mailbox);
        db_params(b, &res->acl->entries);
        db_str(b, res->acl->identifier);
        db_str(b, res->acl->rights);
        db_strlist(b, &res->acl->optional_rights);
        db_put(b, "\n", 1);
    }
    db_printf(b, "UIDPLUS %d %d %llu ", res->has_copyuid, res->has_appenduid,
              (unsigned long long)res->uidvalidity);
    db_seqset(b, &res->source_uids);
    db_seqset(b, &res->dest_uids);
    db_put(b, "\nEXPUNGED ", 10);
    for (size_t i = 0; i < res->expunged_count; i++)
        db_printf(b, "%u ", res->expunged_uids[i]);
    db_put(b, "\n", 1);
}

/* A malloc'd dump of the builder's current result. */
static dbuf dump(imk__result *r)
{
    dbuf b = {NULL, 0, 0};
    db_result(&b, imk__result_get(r));
    return b;
}

/* The dump equals `before`. */
#define CHECK_DUMP(r, before)                                                                      \
    do {                                                                                           \
        dbuf now_ = dump(r);                                                                       \
        CHECK_MEM(now_.p, now_.len, (before).p, (before).len);                                     \
        free(now_.p);                                                                              \
    } while (0)

static int str_is(imk_str s, const char *expect)
{
    return s.data != NULL && s.len == strlen(expect) && memcmp(s.data, expect, s.len) == 0;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void fresh_scratch(void)
{
    imk__arena_free(&scratch);
    imk__arena_init(&scratch, &std_alloc, 4096, 0);
}

static void test_empty(void)
{
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    const imk_result *res = imk__result_get(r);
    CHECK(res != NULL);
    CHECK_INT(res->status, IMK_STATUS_NONE);
    CHECK_INT(res->error, 0);
    CHECK(res->code == NULL);
    CHECK_INT(res->fetch_count, 0);
    CHECK_INT(res->search.count, 0);
    CHECK_INT(res->thread.count, 0);
    CHECK(res->esearch == NULL);
    CHECK_INT(res->list_count + res->status_count + res->quota_count + res->metadata_count, 0);
    CHECK_INT(res->expunged_count, 0);
    CHECK_INT(res->has_copyuid + res->has_appenduid, 0);
    CHECK_INT(imk__result_add_fetch(r, NULL), IMK_EINVAL);
    CHECK_INT(imk__result_add_fetch(NULL, NULL), IMK_EINVAL);
    CHECK_INT(imk__result_new(NULL, 0, NULL), IMK_EINVAL);
    imk__result_free(r);
    imk__result_free(NULL);
}

/*
 * Each builder call of a sequence goes through STEP, which numbers it. When
 * step_checking is on, the result is dumped before the call (before every
 * call, or only before call number step_dump_at when that is nonzero), and
 * a failing call must return step_expect and leave the dump unchanged.
 * step_failed_at records the number of the call that failed.
 */
static int step_checking;
static int step_expect;
static long step_count;
static long step_dump_at;
static long step_failed_at;

static void steps_reset(int checking, int expect, long dump_at)
{
    step_checking = checking;
    step_expect = expect;
    step_count = 0;
    step_dump_at = dump_at;
    step_failed_at = 0;
}

static int step_end(imk__result *r, dbuf *before, int rc)
{
    if (rc != 0) {
        step_failed_at = step_count;
        if (step_checking) {
            CHECK_INT(rc, step_expect);
            CHECK(before->p != NULL);
            if (before->p != NULL)
                CHECK_DUMP(r, *before);
        }
    }
    free(before->p);
    return rc;
}

static dbuf step_begin(imk__result *r)
{
    dbuf none = {NULL, 0, 0};
    step_count++;
    if (step_checking && (step_dump_at == 0 || step_dump_at == step_count))
        return dump(r);
    return none;
}

#define STEP(call)                                                                                 \
    do {                                                                                           \
        dbuf before_ = step_begin(r);                                                              \
        int step_rc_ = step_end(r, &before_, (call));                                              \
        if (step_rc_ != 0)                                                                         \
            return step_rc_;                                                                       \
    } while (0)

/* Everything a result can hold, into builder `r`, from the scratch arena. */
static int add_everything(imk__result *r)
{
    imk_fetch f = sample_fetch(12, 4827313);
    STEP(imk__result_add_fetch(r, &f));
    uint32_t nums[] = {2, 84, 882};
    imk_search s = {3, nums, 1, 917162500};
    STEP(imk__result_add_search(r, &s));
    imk_thread_node *leaf = A(2 * sizeof(*leaf));
    leaf[0].num = 4;
    leaf[1].num = 5;
    imk_thread_node *mid = A(sizeof(*mid));
    mid->num = 3;
    mid->child_count = 2;
    mid->children = leaf;
    imk_thread_node *roots = A(2 * sizeof(*roots));
    roots[0].num = 2;
    roots[1].num = 0;
    roots[1].child_count = 1;
    roots[1].children = mid;
    imk_thread t = {2, roots};
    STEP(imk__result_set_thread(r, &t));
    imk_esearch e = sample_esearch();
    STEP(imk__result_set_esearch(r, &e));
    imk_list l = sample_list("Sent");
    STEP(imk__result_add_list(r, &l));
    imk_status_data st = sample_status("Sent", 17);
    STEP(imk__result_add_status(r, &st));
    imk_status_data st2 = sample_status("Elsewhere", 3);
    STEP(imk__result_add_status(r, &st2));
    imk_namespace ns = sample_namespace();
    STEP(imk__result_set_namespace(r, &ns));
    imk_id id = {0, PARAMS(2, "name", "Dovecot", "version", "2.3")};
    STEP(imk__result_set_id(r, &id));
    imk_quota_resource *qr = A(2 * sizeof(*qr));
    qr[0].name = S("STORAGE");
    qr[0].usage = 10;
    qr[0].limit = 512;
    qr[1].name = S("MESSAGE");
    qr[1].usage = 5000000000ull;
    qr[1].limit = 6000000000ull;
    imk_quota q = {S(""), 2, qr};
    STEP(imk__result_add_quota(r, &q));
    imk_quotaroot qroot = {S("INBOX"), SL(1, "")};
    STEP(imk__result_set_quotaroot(r, &qroot));
    imk_metadata md = {S("INBOX"), 1, PARAMS(1, "/private/comment", "My comment")};
    STEP(imk__result_add_metadata(r, &md));
    imk_strlist en = SL(2, "CONDSTORE", "QRESYNC");
    STEP(imk__result_set_enabled(r, &en));
    imk_strlist caps = SL(3, "IMAP4rev2", "IDLE", "LITERAL+");
    STEP(imk__result_set_capabilities(r, &caps));
    imk_acl acl;
    memset(&acl, 0, sizeof(acl));
    acl.mailbox = S("INBOX");
    acl.entries = PARAMS(2, "Fred", "rwipslxetad", "anyone", "lr");
    acl.identifier = S("Fred");
    acl.rights = S("lr");
    acl.optional_rights = SL(2, "a", "0");
    STEP(imk__result_set_acl(r, &acl));
    STEP(imk__result_set_uidplus(r, sample_code(IMK_CODE_COPYUID)));
    STEP(imk__result_add_expunged(r, 4827313));
    STEP(imk__result_set_status(r, IMK_STATUS_OK, sample_code(IMK_CODE_OTHER),
                                S("UID FETCH completed")));
    return 0;
}

static void test_deep_copy_independent(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    CHECK_INT(add_everything(r), 0);
    dbuf before = dump(r);
    /* The reader's arena goes away (and is reused) right after each event. */
    fresh_scratch();
    sample_fetch(1, 1); /* fill the new scratch with other data */
    CHECK_DUMP(r, before);

    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 1);
    const imk_fetch *f = &res->fetches[0];
    CHECK_INT(f->seq, 12);
    CHECK_INT(f->uid, 4827313);
    CHECK_INT(f->flags.count, 3);
    CHECK(str_is(f->flags.items[2], "$Forwarded"));
    CHECK(f->flags.items[2].data[f->flags.items[2].len] == '\0'); /* copies are terminated */
    CHECK(str_is(f->envelope->to.items[1].host, "example.org"));
    CHECK(f->envelope->in_reply_to.data == NULL);
    CHECK(f->body->multipart);
    CHECK_INT(f->body->part_count, 2);
    CHECK(str_is(f->body->parts[1].envelope->subject, "inner subject"));
    CHECK(str_is(f->body->parts[1].parts[0].params.items[0].value, "utf-8"));
    CHECK(str_is(f->body->parts[0].languages.items[1], "de"));
    CHECK_INT(f->body->parts[0].extensions[1].count, 2);
    CHECK_MEM(f->body->parts[0].extensions[1].items[1].str.data,
              f->body->parts[0].extensions[1].items[1].str.len, "l\0t", 3);
    CHECK(f->threadid.data == NULL);
    CHECK(str_is(f->preview, "Hello, this is the preview"));
    CHECK_INT(f->section_count, 4);
    CHECK_MEM(f->sections[0].data.data, f->sections[0].data.len, "From: a\0b\r\n", 11);
    CHECK_INT(f->sections[1].streamed, 1);
    CHECK(f->sections[1].data.data == NULL);
    CHECK_INT(f->sections[1].size, 99999);
    CHECK_INT(f->sections[3].data.len, 5000);
    CHECK(f->sections[3].data.data[4999] == (char)('a' + 4999 % 26));
    CHECK_INT(f->extra_count, 2);
    CHECK_INT(f->extras[0].value->items[1].binary, 1);
    CHECK(res->code != NULL && str_is(res->code->string, "string arg"));
    CHECK(str_is(res->text, "UID FETCH completed"));
    CHECK(res->esearch != NULL && str_is(res->esearch->tag, "A282"));
    CHECK_INT(res->esearch->updates[1].set.ranges[0].last, 7);
    CHECK_INT(res->list_count, 1);
    CHECK(res->lists[0].status != NULL && res->lists[0].status->messages == 17);
    CHECK_INT(res->status_count, 1);
    CHECK(str_is(res->statuses[0].mailbox, "Elsewhere"));
    CHECK(str_is(res->namespace_->shared.items[0].prefix, "Public Folders/"));
    CHECK(res->namespace_->personal.items[0].prefix.data != NULL);
    CHECK_INT(res->namespace_->personal.items[0].prefix.len, 0);
    CHECK_INT(res->quotas[0].resources[1].usage, 5000000000ull);
    CHECK(str_is(res->acl->entries.items[1].value, "lr"));
    CHECK_INT(res->has_copyuid, 1);
    CHECK_INT(res->uidvalidity, 38505);
    CHECK_INT(res->source_uids.count, 2);
    CHECK_INT(res->dest_uids.ranges[0].last, 3958);
    CHECK_INT(res->expunged_count, 1);
    free(before.p);
    imk__result_free(r);
}

/* The same message in three responses with different items (by UID). */
static void test_merge_by_uid(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_fetch a = F(3);
    F_uid(&a, 42);
    a.present |= IMK_FETCH_FLAGS;
    a.flags = SL(1, "\\Seen");
    imk_fetch b = F(3);
    F_uid(&b, 42);
    F_section(&b, IMK_SECTION_BODY, "HEADER", 0, 0, S("Subject: x\r\n\r\n"));
    b.present |= IMK_FETCH_RFC822_SIZE;
    b.rfc822_size = 77;
    imk_fetch c = F(3);
    F_uid(&c, 42);
    c.present |= IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ;
    c.flags = SL(2, "\\Seen", "\\Answered");
    c.modseq = 7;
    CHECK_INT(imk__result_add_fetch(r, &a), 0);
    CHECK_INT(imk__result_add_fetch(r, &b), 0);
    CHECK_INT(imk__result_add_fetch(r, &c), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 1);
    const imk_fetch *f = &res->fetches[0];
    CHECK_INT(f->present,
              IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ | IMK_FETCH_RFC822_SIZE);
    CHECK_INT(f->uid, 42);
    CHECK_INT(f->seq, 3);
    CHECK_INT(f->flags.count, 2);
    CHECK(str_is(f->flags.items[1], "\\Answered"));
    CHECK_INT(f->modseq, 7);
    CHECK_INT(f->rfc822_size, 77);
    CHECK_INT(f->section_count, 1);
    CHECK(str_is(f->sections[0].data, "Subject: x\r\n\r\n"));
    /* A later FLAGS () empties the flags: single-valued items replace. */
    imk_fetch d = F(3);
    F_uid(&d, 42);
    d.present |= IMK_FETCH_FLAGS;
    CHECK_INT(imk__result_add_fetch(r, &d), 0);
    res = imk__result_get(r);
    CHECK_INT(res->fetches[0].flags.count, 0);
    CHECK_INT(res->fetches[0].modseq, 7);
    imk__result_free(r);
}

/* Seq first, then seq + UID; then moved seqs and seq-only updates. */
static void test_merge_seq_then_uid(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_fetch a = F(5);
    a.present |= IMK_FETCH_FLAGS;
    a.flags = SL(1, "\\Seen");
    CHECK_INT(imk__result_add_fetch(r, &a), 0);
    CHECK_INT(imk__result_get(r)->fetches[0].present, IMK_FETCH_FLAGS);
    imk_fetch b = F(5);
    F_uid(&b, 100);
    b.present |= IMK_FETCH_RFC822_SIZE;
    b.rfc822_size = 10;
    CHECK_INT(imk__result_add_fetch(r, &b), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 1);
    CHECK_INT(res->fetches[0].uid, 100);
    CHECK_INT(res->fetches[0].present, IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_RFC822_SIZE);

    /* The same UID at another seq (an expunge moved it during UID FETCH). */
    imk_fetch c = F(4);
    F_uid(&c, 100);
    c.present |= IMK_FETCH_MODSEQ;
    c.modseq = 9;
    CHECK_INT(imk__result_add_fetch(r, &c), 0);
    /* Another UID at the old seq: another message. */
    imk_fetch d = F(5);
    F_uid(&d, 101);
    CHECK_INT(imk__result_add_fetch(r, &d), 0);
    /* A UID at a seq already owned by a record with a different UID. */
    imk_fetch d2 = F(4);
    F_uid(&d2, 102);
    CHECK_INT(imk__result_add_fetch(r, &d2), 0);
    res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 3);
    CHECK_INT(res->fetches[0].seq, 4);
    CHECK_INT(res->fetches[0].modseq, 9);
    CHECK_INT(res->fetches[1].uid, 101);
    CHECK_INT(res->fetches[2].uid, 102);

    /* Seq-only data goes to the latest record seen at that seq. */
    imk_fetch e = F(5);
    e.present |= IMK_FETCH_FLAGS;
    e.flags = SL(1, "\\Draft");
    CHECK_INT(imk__result_add_fetch(r, &e), 0);
    imk_fetch g = F(4);
    g.present |= IMK_FETCH_FLAGS;
    g.flags = SL(1, "\\Flagged");
    CHECK_INT(imk__result_add_fetch(r, &g), 0);
    res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 3);
    CHECK(str_is(res->fetches[0].flags.items[0], "\\Seen"));
    CHECK(str_is(res->fetches[1].flags.items[0], "\\Draft"));
    CHECK(str_is(res->fetches[2].flags.items[0], "\\Flagged"));
    /* A seq never seen: a new record without UID. */
    imk_fetch h = F(9);
    CHECK_INT(imk__result_add_fetch(r, &h), 0);
    res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 4);
    CHECK_INT(res->fetches[3].present, 0);
    /* ...which a seq+UID FETCH then completes. */
    imk_fetch i = F(9);
    F_uid(&i, 0); /* UID 0 (QUIRKS Q20) is still a key */
    CHECK_INT(imk__result_add_fetch(r, &i), 0);
    imk_fetch j = F(9);
    F_uid(&j, 0);
    j.present |= IMK_FETCH_MODSEQ;
    j.modseq = 1;
    CHECK_INT(imk__result_add_fetch(r, &j), 0);
    res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 4);
    CHECK_INT(res->fetches[3].present, IMK_FETCH_UID | IMK_FETCH_MODSEQ);
    imk__result_free(r);
}

/* Records keep the order their message first appeared in. */
static void test_out_of_order(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    uint32_t order[] = {3, 1, 2, 1, 3, 7, 2};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        imk_fetch f = F(order[k]);
        F_uid(&f, order[k] * 10);
        f.present |= IMK_FETCH_MODSEQ;
        f.modseq = k;
        CHECK_INT(imk__result_add_fetch(r, &f), 0);
    }
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 4);
    uint32_t seqs[] = {3, 1, 2, 7};
    uint64_t modseqs[] = {4, 3, 6, 5};
    for (size_t k = 0; k < 4 && k < res->fetch_count; k++) {
        CHECK_INT(res->fetches[k].seq, seqs[k]);
        CHECK_INT(res->fetches[k].uid, seqs[k] * 10);
        CHECK_INT(res->fetches[k].modseq, modseqs[k]);
    }
    imk__result_free(r);
}

static void test_sections_accumulate(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_fetch a = F(1);
    F_uid(&a, 7);
    F_section(&a, IMK_SECTION_BODY, "HEADER", 0, 0, S("h1"));
    F_section(&a, IMK_SECTION_BODY, "1", 1, 0, S("part1@0"));
    F_extra(&a, "X-FOO", V_atom("one"));
    CHECK_INT(imk__result_add_fetch(r, &a), 0);
    imk_fetch b = F(1);
    F_uid(&b, 7);
    F_section(&b, IMK_SECTION_BODY, "TEXT", 0, 0, S("t1"));
    F_section(&b, IMK_SECTION_BODY, "header", 0, 0, S("h2")); /* case-insensitive: replaces */
    F_section(&b, IMK_SECTION_BODY, "1", 1, 100, S("part1@100"));
    F_section(&b, IMK_SECTION_BINARY, "1", 1, 0, S("binary1@0"));
    F_section(&b, IMK_SECTION_BODY, "1", 0, 0, S("part1"));
    F_section(&b, IMK_SECTION_BODY, "TEXT", 0, 0, S("t2")); /* same response: last wins */
    F_extra(&b, "X-BAR", V_atom("bar"));
    F_extra(&b, "x-foo", V_atom("two"));
    CHECK_INT(imk__result_add_fetch(r, &b), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, 1);
    const imk_fetch *f = &res->fetches[0];
    CHECK_INT(f->section_count, 6);
    const char *expect[][2] = {{"HEADER", "h2"},   {"1", "part1@0"},   {"TEXT", "t2"},
                               {"1", "part1@100"}, {"1", "binary1@0"}, {"1", "part1"}};
    for (size_t i = 0; i < 6 && i < f->section_count; i++) {
        CHECK(str_is(f->sections[i].data, expect[i][1]));
        if (i != 0)
            CHECK(str_is(f->sections[i].spec, expect[i][0]));
    }
    CHECK_INT(f->sections[4].item, IMK_SECTION_BINARY);
    CHECK_INT(f->extra_count, 2);
    CHECK(str_is(f->extras[0].value->str, "two"));
    CHECK(str_is(f->extras[1].name, "X-BAR"));

    /* 3,000 distinct sections of one message, one per response, then each
     * replaced once: the item table keeps this linear. */
    char spec[32];
    for (int i = 0; i < 3000; i++) {
        imk_fetch g = F(1);
        F_uid(&g, 7);
        snprintf(spec, sizeof(spec), "%d.MIME", i);
        F_section(&g, IMK_SECTION_BODY, spec, 0, 0, S(spec));
        CHECK_INT(imk__result_add_fetch(r, &g), 0);
    }
    for (int i = 2999; i >= 0; i--) {
        imk_fetch g = F(1);
        F_uid(&g, 7);
        snprintf(spec, sizeof(spec), "%d.mime", i);
        F_section(&g, IMK_SECTION_BODY, spec, 0, 0, S("again"));
        CHECK_INT(imk__result_add_fetch(r, &g), 0);
    }
    res = imk__result_get(r);
    f = &res->fetches[0];
    CHECK_INT(f->section_count, 3006);
    int bad = 0;
    for (int i = 0; i < 3000; i++) {
        /* in place, and the later section (with its spelling) wins */
        snprintf(spec, sizeof(spec), "%d.mime", i);
        if (!str_is(f->sections[6 + i].spec, spec) || !str_is(f->sections[6 + i].data, "again"))
            bad++;
    }
    CHECK_INT(bad, 0);
    imk__result_free(r);
}

/* 100,000 messages in three passes: seq+UID+FLAGS in order, UID+MODSEQ in
 * reverse, seq-only sections in a scrambled order. Every record checked. */
static void test_many_records(void)
{
    enum { N = 100000 };
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_strlist seen = SL(1, "\\Seen");
    int failed = 0;
    for (uint32_t i = 1; i <= N; i++) {
        imk_fetch f = F(i);
        F_uid(&f, 1000 + 3 * i);
        f.present |= IMK_FETCH_FLAGS;
        f.flags = seen;
        failed += imk__result_add_fetch(r, &f) != 0;
    }
    for (uint32_t i = N; i >= 1; i--) {
        imk_fetch f = F(i);
        F_uid(&f, 1000 + 3 * i);
        f.present |= IMK_FETCH_MODSEQ;
        f.modseq = (uint64_t)i * 2;
        failed += imk__result_add_fetch(r, &f) != 0;
    }
    imk__arena_reset(&scratch);
    imk_fetch_section sec;
    memset(&sec, 0, sizeof(sec));
    sec.spec = S("HEADER");
    char data[16];
    for (uint32_t k = 0; k < N; k++) {
        uint32_t i = (uint32_t)(((uint64_t)k * 7919) % N) + 1; /* 7919 is prime: a permutation */
        imk_fetch f = F(i);
        int n = snprintf(data, sizeof(data), "h%u", i);
        sec.data.data = data;
        sec.data.len = (size_t)n;
        f.section_count = 1;
        f.sections = &sec;
        failed += imk__result_add_fetch(r, &f) != 0;
    }
    CHECK_INT(failed, 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, N);
    int bad = 0;
    for (uint32_t i = 1; i <= N && i <= res->fetch_count; i++) {
        const imk_fetch *f = &res->fetches[i - 1];
        snprintf(data, sizeof(data), "h%u", i);
        if (f->seq != i || f->uid != 1000 + 3 * i || f->modseq != (uint64_t)i * 2 ||
            f->present != (IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ) ||
            f->flags.count != 1 || !str_is(f->flags.items[0], "\\Seen") || f->section_count != 1 ||
            !str_is(f->sections[0].data, data))
            bad++;
    }
    CHECK_INT(bad, 0);
    imk__result_free(r);
}

static void test_search_merge(void)
{
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    uint32_t a[] = {1, 2, 3}, b[] = {3, 4}, c[] = {7};
    imk_search s1 = {3, a, 0, 0}, s2 = {2, b, 1, 5}, s3 = {0, NULL, 1, 9}, s4 = {1, c, 1, 2};
    CHECK_INT(imk__result_add_search(r, &s1), 0);
    CHECK_INT(imk__result_get(r)->search.has_modseq, 0);
    CHECK_INT(imk__result_add_search(r, &s2), 0);
    CHECK_INT(imk__result_add_search(r, &s3), 0);
    CHECK_INT(imk__result_add_search(r, &s4), 0);
    const imk_result *res = imk__result_get(r);
    uint32_t expect[] = {1, 2, 3, 3, 4, 7};
    CHECK_INT(res->search.count, 6);
    CHECK_MEM(res->search.numbers, res->search.count * 4, expect, sizeof(expect));
    CHECK_INT(res->search.has_modseq, 1);
    CHECK_INT(res->search.modseq, 9);
    /* Many lines of many numbers (SORT of a large mailbox) */
    uint32_t big[1000];
    for (uint32_t i = 0; i < 1000; i++)
        big[i] = 5000 - i;
    imk_search s5 = {1000, big, 0, 0};
    for (int k = 0; k < 50; k++)
        CHECK_INT(imk__result_add_search(r, &s5), 0);
    res = imk__result_get(r);
    CHECK_INT(res->search.count, 6 + 50000);
    CHECK_INT(res->search.numbers[6 + 49999], 4001);
    imk__result_free(r);
}

static void test_list_status(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_list inbox = sample_list("INBOX"), sent = sample_list("Sent");
    CHECK_INT(imk__result_add_list(r, &inbox), 0);
    CHECK_INT(imk__result_add_list(r, &sent), 0);
    imk_status_data s_sent = sample_status("Sent", 4), s_other = sample_status("Other", 1),
                    s_case = sample_status("inbox", 2), s_sent2 = sample_status("Sent", 5),
                    s_inbox = sample_status("INBOX", 9);
    CHECK_INT(imk__result_add_status(r, &s_sent), 0);
    CHECK_INT(imk__result_add_status(r, &s_other), 0);
    CHECK_INT(imk__result_add_status(r, &s_case), 0); /* names compare exactly */
    const imk_result *res = imk__result_get(r);
    CHECK(res->lists[0].status == NULL);
    CHECK(res->lists[1].status != NULL && res->lists[1].status->messages == 4);
    CHECK_INT(res->status_count, 2);
    CHECK(str_is(res->statuses[0].mailbox, "Other"));
    CHECK(str_is(res->statuses[1].mailbox, "inbox"));
    CHECK_INT(imk__result_add_status(r, &s_sent2), 0); /* a second one replaces */
    CHECK_INT(imk__result_add_status(r, &s_inbox), 0);
    res = imk__result_get(r);
    CHECK_INT(res->lists[1].status->messages, 5);
    CHECK_INT(res->lists[0].status->messages, 9);
    CHECK(str_is(res->lists[0].status->extras[0].name, "X-ITEM"));
    CHECK_INT(res->status_count, 2);

    /* LIST-STATUS over many mailboxes, each STATUS after its LIST; the
     * entries array grows (moves) and the attached statuses stay right. */
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "Folder/%d", i);
        imk_list l = sample_list(name);
        CHECK_INT(imk__result_add_list(r, &l), 0);
        imk_status_data st = sample_status(name, (uint64_t)i);
        CHECK_INT(imk__result_add_status(r, &st), 0);
    }
    fresh_scratch();
    res = imk__result_get(r);
    CHECK_INT(res->list_count, 2002);
    CHECK_INT(res->status_count, 2);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "Folder/%d", i);
        const imk_list_entry *e = &res->lists[2 + i];
        if (!str_is(e->list.mailbox, name) || e->status == NULL ||
            e->status->messages != (uint64_t)i || !str_is(e->status->mailbox, name))
            bad++;
    }
    CHECK_INT(bad, 0);
    imk__result_free(r);
}

static void test_uidplus(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    CHECK_INT(imk__result_set_uidplus(r, sample_code(IMK_CODE_COPYUID)), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->has_copyuid, 1);
    CHECK_INT(res->has_appenduid, 0);
    CHECK_INT(res->uidvalidity, 38505);
    CHECK_INT(res->source_uids.count, 2);
    CHECK_INT(res->source_uids.ranges[1].first, 319);
    CHECK_INT(res->source_uids.ranges[1].last, 320);
    CHECK_INT(res->dest_uids.count, 1);
    CHECK_INT(res->dest_uids.ranges[0].first, 3956);
    imk__result_free(r);

    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_code *append = (imk_code *)sample_code(IMK_CODE_APPENDUID);
    imk_range one[] = {{3955, 3955}};
    append->set = SET(1, one);
    append->set2.count = 0;
    CHECK_INT(imk__result_set_uidplus(r, append), 0);
    res = imk__result_get(r);
    CHECK_INT(res->has_appenduid, 1);
    CHECK_INT(res->has_copyuid, 0);
    CHECK_INT(res->uidvalidity, 38505);
    CHECK_INT(res->source_uids.count, 0);
    CHECK_INT(res->dest_uids.count, 1);
    CHECK_INT(res->dest_uids.ranges[0].last, 3955);
    dbuf before = dump(r);
    CHECK_INT(imk__result_set_uidplus(r, sample_code(IMK_CODE_UIDNEXT)), IMK_EINVAL);
    CHECK_INT(imk__result_set_uidplus(r, NULL), IMK_EINVAL);
    CHECK_DUMP(r, before);
    free(before.p);
    imk__result_free(r);
}

static void test_expunged(void)
{
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    uint32_t uids[] = {5, 0, 7, 5};
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(imk__result_add_expunged(r, uids[i]), 0);
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_INT(imk__result_add_expunged(r, 100 + i), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->expunged_count, 1004);
    CHECK_MEM(res->expunged_uids, 16, uids, 16);
    CHECK_INT(res->expunged_uids[1003], 1099);
    imk__result_free(r);
}

/* THREAD (1 2 3 ... 100000) and a branch whose arms are long chains: copied
 * without deep recursion, correct node by node. */
static void test_thread_long_chain(void)
{
    enum { N = 100000 };
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    imk_thread_node *chain = A(N * sizeof(*chain));
    for (uint32_t i = 0; i < N; i++) {
        chain[i].num = i + 1;
        chain[i].child_count = i + 1 < N ? 1 : 0;
        chain[i].children = i + 1 < N ? &chain[i + 1] : NULL;
    }
    /* (0 (..chain a..)(..chain b..)): a dummy root with two long arms */
    imk_thread_node *arms = A(2 * N * sizeof(*arms));
    for (uint32_t arm = 0; arm < 2; arm++)
        for (uint32_t i = 0; i < N; i++) {
            imk_thread_node *n = &arms[arm * N + i];
            n->num = (arm + 1) * 1000000 + i;
            n->child_count = i + 1 < N ? 1 : 0;
            n->children = i + 1 < N ? n + 1 : NULL;
        }
    imk_thread_node *branch_kids = A(2 * sizeof(*branch_kids));
    branch_kids[0] = arms[0];
    branch_kids[1] = arms[N];
    imk_thread_node roots[2];
    roots[0] = chain[0];
    memset(&roots[1], 0, sizeof(roots[1]));
    roots[1].child_count = 2;
    roots[1].children = branch_kids;
    imk_thread t1 = {1, &roots[0]}, t2 = {1, &roots[1]};
    CHECK_INT(imk__result_set_thread(r, &t1), 0);
    CHECK_INT(imk__result_set_thread(r, &t2), 0); /* a second line appends its roots */
    fresh_scratch();
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->thread.count, 2);
    int bad = 0;
    const imk_thread_node *n = &res->thread.roots[0];
    for (uint32_t i = 0; i < N; i++) {
        if (n->num != i + 1 || n->child_count != (i + 1 < N ? 1u : 0u))
            bad++;
        if (n->child_count != 1)
            break;
        n = &n->children[0];
    }
    CHECK_INT(n->num, N);
    const imk_thread_node *root = &res->thread.roots[1];
    CHECK_INT(root->num, 0);
    CHECK_INT(root->child_count, 2);
    for (uint32_t arm = 0; arm < 2 && root->child_count == 2; arm++) {
        n = &root->children[arm];
        uint32_t len = 0;
        for (;;) {
            if (n->num != (arm + 1) * 1000000 + len)
                bad++;
            len++;
            if (n->child_count != 1)
                break;
            n = &n->children[0];
        }
        CHECK_INT(len, N);
    }
    CHECK_INT(bad, 0);
    imk__result_free(r);
}

static void test_status_error_text(void)
{
    fresh_scratch();
    imk__result *r;
    CHECK_INT(imk__result_new(NULL, 0, &r), 0);
    CHECK_INT(imk__result_set_status(r, IMK_STATUS_NO, NULL, S("[CANNOT] no")), 0);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->status, IMK_STATUS_NO);
    CHECK(res->code == NULL);
    CHECK(str_is(res->text, "[CANNOT] no"));
    imk__result_set_error(r, IMK_ECLOSED, S("Server shutting down"));
    res = imk__result_get(r);
    CHECK_INT(res->error, IMK_ECLOSED);
    CHECK_INT(res->status, IMK_STATUS_NO); /* left alone */
    CHECK(str_is(res->text, "Server shutting down"));
    imk__result_set_error(NULL, IMK_ECLOSED, NIL_STR);
    imk__result_free(r);

    /* The budget is spent: the reason is still kept (up to 1 KiB of it),
     * and the builder goes on refusing what does not fit. */
    CHECK_INT(imk__result_new(NULL, 64, &r), 0);
    char big[3000];
    memset(big, 'x', sizeof(big));
    CHECK_INT(imk__result_set_status(r, IMK_STATUS_OK, NULL, SN(big, 100)), IMK_ELIMIT);
    CHECK_INT(imk__result_set_status(r, IMK_STATUS_OK, NULL, SN(big, 60)), 0); /* 64 taken */
    imk__result_set_error(r, IMK_ELIMIT, S("the command's data exceeded max_result_size"));
    res = imk__result_get(r);
    CHECK_INT(res->error, IMK_ELIMIT);
    CHECK(str_is(res->text, "the command's data exceeded max_result_size"));
    imk__result_set_error(r, IMK_ELIMIT, res->text); /* its own text: kept as is */
    CHECK(str_is(imk__result_get(r)->text, "the command's data exceeded max_result_size"));
    CHECK_INT(imk__result_add_expunged(r, 1), IMK_ELIMIT);
    CHECK_INT(imk__result_set_status(r, IMK_STATUS_OK, NULL, S("OK")), IMK_ELIMIT);
    /* Beyond 1 KiB the error's static message stands in. */
    imk__result_set_error(r, IMK_ECLOSED, SN(big, sizeof(big)));
    res = imk__result_get(r);
    CHECK_INT(res->error, IMK_ECLOSED);
    CHECK(res->text.data != NULL && strcmp(res->text.data, imk_error_message(IMK_ECLOSED)) == 0);
    imk__result_free(r);

    /* Out of memory: the static message too, and nothing leaks. */
    failing_alloc fa;
    imk_allocator a = failing_allocator(&fa, 2);
    CHECK_INT(imk__result_new(&a, 0, &r), 0);
    imk__result_set_error(r, IMK_ECLOSED, S("Server shutting down"));
    CHECK(strcmp(imk__result_get(r)->text.data, imk_error_message(IMK_ECLOSED)) == 0);
    imk__result_free(r);
    CHECK_INT(fa.live, 0);
}

static void test_copy_exports(void)
{
    fresh_scratch();
    imk__arena ar;
    imk__arena_init(&ar, &std_alloc, 256, 0);
    imk_str out = {"x", 1};
    CHECK_INT(imk__copy_str(&ar, NIL_STR, &out), 0);
    CHECK(out.data == NULL && out.len == 0);
    imk_str empty = {"", 0};
    CHECK_INT(imk__copy_str(&ar, empty, &out), 0);
    CHECK(out.data != NULL && out.len == 0);
    CHECK_INT(imk__copy_str(&ar, SN("a\0b", 3), &out), 0);
    CHECK_MEM(out.data, out.len, "a\0b", 3);
    CHECK(out.data[3] == '\0');
    imk_strlist l;
    imk_strlist in = SL(2, "IMAP4rev2", "IDLE");
    CHECK_INT(imk__copy_strlist(&ar, &in, &l), 0);
    const imk_code *code = sample_code(IMK_CODE_CAPABILITY), *copy = (const imk_code *)1;
    CHECK_INT(imk__copy_code(&ar, NULL, &copy), 0);
    CHECK(copy == NULL);
    CHECK_INT(imk__copy_code(&ar, code, &copy), 0);
    fresh_scratch();
    CHECK(str_is(l.items[1], "IDLE"));
    CHECK(copy != NULL && str_is(copy->list.items[0], "IMAP4rev2"));
    CHECK_INT(copy->set.ranges[1].last, 320);
    CHECK_INT(copy->value->items[0].number, 38505);
    CHECK(str_is(copy->progress_tag, "A12"));
    imk__arena_free(&ar);

    /* Over the arena's limit: IMK_ELIMIT, even after an earlier failure. */
    imk__arena_init(&ar, &std_alloc, 256, 64);
    CHECK_INT(imk__copy_str(&ar, S("fits in 64 bytes"), &out), 0);
    out.data = "unchanged";
    CHECK_INT(
        imk__copy_str(&ar, S("does not fit in what is left of the 64 bytes, so: ELIMIT"), &out),
        IMK_ELIMIT);
    CHECK(strcmp(out.data, "unchanged") == 0);
    CHECK_INT(imk__copy_code(&ar, sample_code(IMK_CODE_COPYUID), &copy), IMK_ELIMIT);
    imk__arena_free(&ar);
}

/* Add FETCH responses until max_bytes is hit: IMK_ELIMIT, the result as it
 * was, and the builder still usable. */
static void test_limit(void)
{
    fresh_scratch();
    imk__result *r;
    size_t max = 200000;
    CHECK_INT(imk__result_new(NULL, max, &r), 0);
    int rc = 0;
    uint32_t i;
    for (i = 1; i < 100000; i++) {
        imk_fetch f = sample_fetch(i, i);
        dbuf before = dump(r);
        rc = imk__result_add_fetch(r, &f);
        if (rc != 0) {
            CHECK_DUMP(r, before);
            free(before.p);
            break;
        }
        free(before.p);
        imk__arena_reset(&scratch);
    }
    CHECK_INT(rc, IMK_ELIMIT);
    CHECK(i > 5);
    const imk_result *res = imk__result_get(r);
    CHECK_INT(res->fetch_count, i - 1);
    /* Every kind of add fails the same way, changing nothing. */
    dbuf before = dump(r);
    char big[100000];
    memset(big, 'b', sizeof(big));
    imk_fetch f = F(1);
    F_uid(&f, 1);
    F_section(&f, IMK_SECTION_BODY, "", 0, 0, SN(big, sizeof(big)));
    CHECK_INT(imk__result_add_fetch(r, &f), IMK_ELIMIT);
    imk_fetch g = sample_fetch(i, i);
    CHECK_INT(imk__result_add_fetch(r, &g), IMK_ELIMIT);
    CHECK_INT(imk__result_set_status(r, IMK_STATUS_OK, NULL, SN(big, sizeof(big))), IMK_ELIMIT);
    CHECK_INT(imk__result_set_uidplus(r, sample_code(IMK_CODE_COPYUID)), IMK_ELIMIT);
    imk_list l = sample_list("Sent");
    l.oldname = SN(big, 5000);
    CHECK_INT(imk__result_add_list(r, &l), IMK_ELIMIT);
    imk_status_data st = sample_status("Sent", 1);
    st.mailboxid = SN(big, 5000);
    CHECK_INT(imk__result_add_status(r, &st), IMK_ELIMIT);
    uint32_t *nums = A(sizeof(uint32_t) * 50000);
    imk_search s = {50000, nums, 1, 5};
    CHECK_INT(imk__result_add_search(r, &s), IMK_ELIMIT);
    imk_strlist caps = {1, NULL};
    imk_str cap = SN(big, 5000);
    caps.items = &cap;
    CHECK_INT(imk__result_set_capabilities(r, &caps), IMK_ELIMIT);
    CHECK_INT(imk__result_set_enabled(r, &caps), IMK_ELIMIT);
    CHECK_DUMP(r, before);
    free(before.p);
    /* Small things may still fit; whatever happens, no corruption. */
    rc = imk__result_add_expunged(r, 9);
    CHECK(rc == 0 || rc == IMK_ELIMIT);
    res = imk__result_get(r);
    CHECK_INT(res->fetch_count, i - 1);
    CHECK_INT(res->fetches[i - 2].uid, i - 1);
    imk__result_free(r);

    /* A tiny budget: even the first add fails cleanly. */
    CHECK_INT(imk__result_new(NULL, 100, &r), 0);
    imk_fetch h = sample_fetch(1, 1);
    CHECK_INT(imk__result_add_fetch(r, &h), IMK_ELIMIT);
    CHECK_INT(imk__result_get(r)->fetch_count, 0);
    imk__result_free(r);
}

/*
 * The representative sequence under a failing allocator: for every N, the
 * Nth allocation fails (and every later one). The failing call returns
 * IMK_ENOMEM and changes nothing; after imk__result_free nothing is live.
 */
static int run_sequence(imk__result *r)
{
    for (uint32_t i = 1; i <= 12; i++) {
        imk_fetch f = sample_fetch(i, 100 + i);
        STEP(imk__result_add_fetch(r, &f));
    }
    for (uint32_t i = 1; i <= 12; i++) { /* merges: sections and extras grow */
        imk_fetch f = F(i);
        F_uid(&f, 100 + i);
        F_section(&f, IMK_SECTION_BODY, "TEXT", 0, 0, S("text"));
        F_section(&f, IMK_SECTION_BODY, "HEADER.FIELDS (FROM TO)", 0, 0, S("replaced"));
        F_extra(&f, "X-NEW", V_atom("new"));
        STEP(imk__result_add_fetch(r, &f));
    }
    for (uint32_t i = 1; i <= 8; i++) {
        imk_fetch f = F(i);
        f.present |= IMK_FETCH_FLAGS;
        f.flags = SL(1, "\\Deleted");
        STEP(imk__result_add_fetch(r, &f));
    }
    for (int k = 0; k < 2; k++) {
        int rc = add_everything(r); /* a sequence of steps itself */
        if (rc != 0)
            return rc;
    }
    uint32_t nums[300];
    for (uint32_t i = 0; i < 300; i++)
        nums[i] = i + 1;
    imk_search s = {300, nums, 1, 99};
    STEP(imk__result_add_search(r, &s));
    for (int k = 0; k < 12; k++) {
        char name[32];
        snprintf(name, sizeof(name), "Box%d", k);
        imk_list l = sample_list(name);
        STEP(imk__result_add_list(r, &l));
        imk_status_data st = sample_status(name, 1);
        STEP(imk__result_add_status(r, &st));
    }
    for (uint32_t i = 0; i < 20; i++)
        STEP(imk__result_add_expunged(r, i));
    return 0;
}

static void test_alloc_failure(void)
{
    fresh_scratch();
    int complete = 0;
    long points = 0;
    for (long n = 1; n < 100000 && !complete; n++) {
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, n);
        imk__result *r = NULL;
        int rc = imk__result_new(&a, 0, &r);
        if (rc != 0) {
            CHECK_INT(rc, IMK_ENOMEM);
            CHECK_INT(fa.live, 0);
            points++;
            continue;
        }
        steps_reset(1, IMK_ENOMEM, 0);
        rc = run_sequence(r);
        steps_reset(0, 0, 0);
        if (rc == 0) {
            CHECK_INT(fa.failed, 0);
            complete = 1;
        } else {
            CHECK(fa.failed);
            points++;
        }
        imk__result_free(r);
        CHECK_INT(fa.live, 0);
        imk__arena_reset(&scratch);
    }
    CHECK(complete);
    CHECK(points > 20);
    fprintf(stderr, "     (%ld allocation points)\n", points);
}

/*
 * The same sequence under budgets from tiny to ample, dense enough that the
 * limit strikes inside most calls at many points: wherever it strikes, the
 * call returns IMK_ELIMIT and changes nothing. Each budget runs twice (the
 * builder is deterministic): once to learn which call fails, once dumping
 * only before that call.
 */
static void test_limit_everywhere(void)
{
    fresh_scratch();
    int complete = 0;
    long limited = 0, distinct_steps = 0, last_step = -1;
    for (size_t max = 64; max < 8000000 && !complete; max += max < 4096 ? 16 : max / 256) {
        imk__result *r;
        CHECK_INT(imk__result_new(NULL, max, &r), 0);
        steps_reset(0, 0, 0);
        int rc = run_sequence(r);
        long failed_at = step_failed_at;
        imk__result_free(r);
        imk__arena_reset(&scratch);
        if (rc == 0) {
            complete = 1;
            break;
        }
        CHECK_INT(rc, IMK_ELIMIT);
        limited++;
        if (failed_at != last_step)
            distinct_steps++;
        last_step = failed_at;
        CHECK_INT(imk__result_new(NULL, max, &r), 0);
        steps_reset(1, IMK_ELIMIT, failed_at);
        CHECK_INT(run_sequence(r), IMK_ELIMIT);
        CHECK_INT(step_failed_at, failed_at);
        steps_reset(0, 0, 0);
        imk__result_free(r);
        imk__arena_reset(&scratch);
    }
    CHECK(complete);
    CHECK(limited > 100);
    fprintf(stderr, "     (%ld budgets hit the limit, in %ld different calls)\n", limited,
            distinct_steps);
}

int main(void)
{
    imk__alloc_init(&std_alloc, NULL);
    imk__arena_init(&scratch, &std_alloc, 4096, 0);
    RUN(test_empty);
    RUN(test_deep_copy_independent);
    RUN(test_merge_by_uid);
    RUN(test_merge_seq_then_uid);
    RUN(test_out_of_order);
    RUN(test_sections_accumulate);
    RUN(test_many_records);
    RUN(test_search_merge);
    RUN(test_list_status);
    RUN(test_uidplus);
    RUN(test_expunged);
    RUN(test_thread_long_chain);
    RUN(test_status_error_text);
    RUN(test_copy_exports);
    RUN(test_limit);
    RUN(test_limit_everywhere);
    RUN(test_alloc_failure);
    imk__arena_free(&scratch);
    return test_finish();
}
