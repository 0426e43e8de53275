/* SPDX-License-Identifier: MIT */
/*
 * The result builder: what a command's untagged data becomes once it is
 * copied out of the reader's per-response arena and merged (DESIGN.md
 * section 1 rule 4). The session adds every response it attributes to a
 * command; imk__result_get() shows the imk_result built so far.
 *
 * Storage. Three kinds of memory, all from the builder's allocator:
 *   - an arena for the small pieces of deep copies (strings, address lists,
 *     body nodes, value trees, per-record section arrays): nothing is
 *     allocated per item from the allocator, and nothing is freed before
 *     imk__result_free();
 *   - "big blocks": any single copy of BIG_ALLOC bytes or more (a literal
 *     body, a long value list) gets its own allocation. The arena moves to
 *     a fresh block whenever one allocation does not fit, and a sync that
 *     interleaves 20 KB bodies with small items would otherwise strand most
 *     of every 8 KB block;
 *   - growable arrays (the FETCH records, SEARCH numbers, LIST entries,
 *     ...) and three open-addressing hash tables, realloc'd by doubling.
 *     They are the arrays imk_result points into, so their pointers change
 *     on growth: the result is valid until the next add.
 * One budget covers all three: held (arrays, tables, big blocks) plus the
 * arena's used bytes never exceed max_bytes. The arena enforces its share
 * through its own limit, which is kept at max_bytes - held. (Arena block
 * slack, at most one block, and the builder struct are not counted; the
 * text of imk__result_set_error() may overshoot by up to 1 KiB, so that the
 * reason for a failure is never lost to the limit it reports.)
 *
 * Atomicity. Every add is two phases: first everything that can fail -
 * array and table capacity, then the deep copy into the arena and into
 * spare array slots nobody can see yet - and then a commit that cannot
 * fail (counts, pointers, hash entries). A failed call thus leaves the
 * result exactly as it was. Its big blocks are released again; its arena
 * bytes cannot be (a bump arena) and stay charged to the budget until
 * imk__result_free().
 *
 * FETCH merging. A record is found by UID when the FETCH carries one, else
 * by sequence number; a FETCH with a UID that matches no record but whose
 * seq names a record without a UID merges into that record and gives it the
 * UID. A FETCH without a UID merges into the latest record seen with its seq
 * even when that record has a UID: RFC 9051 section 7.5.1 forbids EXPUNGE
 * during FETCH/STORE/SEARCH, and a UID command's responses must carry the
 * UID (section 6.4.9), so the sequence number cannot have moved in between.
 * Single-valued items of a later FETCH replace earlier ones, the present
 * bits are OR-ed, and the record's seq is the latest one seen. Sections
 * accumulate; a later section with the same item, spec (ASCII
 * case-insensitive, as IMAP section text is) and origin replaces the
 * earlier one in place. Extras (unmodelled items) accumulate the same way,
 * one per name. Records keep the order in which their message first
 * appeared.
 *
 * Complexity. The key table maps (UID or seq) to a record index, the item
 * table maps (record, section key or extra name) to the position in the
 * record's array, the mailbox table maps a LIST entry's name to its index:
 * all O(1) on average, so n FETCH responses cost O(n) however they are
 * interleaved, and a server that sends 100,000 sections for one message
 * costs no more. A record's section and extra arrays live in the arena with
 * a power-of-two capacity that is implied by their count (the smallest
 * power of two >= count), so they need no capacity field and grow in
 * amortised O(1). A slot stores the hash and the index only; equality is
 * checked against the record itself, which also makes a seq entry whose
 * record has since moved to another seq simply not match (and it is
 * dropped at the next rehash).
 *
 * Recursion. Value trees and body structures are copied recursively: their
 * depth is bounded by the reader's max_depth. A THREAD chain "(1 2 3 ...)"
 * is as long as the server makes it, so chains are copied with a loop and
 * only branch points recurse (the last child of a branch continues the
 * loop too).
 */
#include "proto/result.h"

#include "util/alloc.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

/* Default arena block; smaller when max_bytes is smaller, so a tiny budget
 * does not reserve a whole block. */
#define BLOCK_SIZE ((size_t)8192)
/* Copies from this size up get a block of their own (see the essay). */
#define BIG_ALLOC ((size_t)1024)
#define NO_INDEX SIZE_MAX
/* A slot holds index + 1 in 32 bits, and a position shifted left by one. */
#define MAX_INDEX ((size_t)UINT32_MAX - 1)
#define MAX_POS ((size_t)(UINT32_MAX >> 1) - 1)
/* Initial capacity of a growable array, in elements; of a table, in slots. */
#define VEC_MIN 8
#define TABLE_MIN 16

typedef struct big_block {
    struct big_block *next;
    size_t size; /* including the header, as charged to the budget */
} big_block;

#define BIG_HEADER ((sizeof(big_block) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

typedef struct vec {
    void *data;
    size_t count, cap; /* in elements */
} vec;

/* An open-addressing slot (linear probing): `a` = index + 1 of what the key
 * belongs to (0 = empty), `b` = kind and position, `hash` = the full hash
 * so that rehashing needs no key. */
typedef struct slot {
    uint32_t hash;
    uint32_t a, b;
} slot;

typedef struct table {
    slot *slots;
    size_t cap; /* 0 or a power of two; at most half of it is used */
    size_t used;
} table;

struct imk__result {
    imk_allocator alloc;
    imk__arena arena;
    size_t max_bytes; /* 0 = unlimited */
    size_t held;      /* bytes outside the arena: arrays, tables, big blocks */
    big_block *bigs;  /* newest first */
    imk_result res;   /* scalars and arena pointers; arrays are set by get() */
    vec fetches;      /* imk_fetch */
    vec search;       /* uint32_t */
    vec roots;        /* imk_thread_node */
    vec lists;        /* imk_list_entry */
    vec statuses;     /* imk_status_data */
    vec quotas;       /* imk_quota */
    vec metadata;     /* imk_metadata */
    vec enabled;      /* imk_str */
    vec expunged;     /* uint32_t */
    table fetch_keys; /* UID or seq -> record */
    table items;      /* record + section key / extra name -> position */
    table mailboxes;  /* LIST mailbox -> entry */
};

/* ------------------------------------------------------------------ */
/* Budget                                                              */
/* ------------------------------------------------------------------ */

/* Bytes that may still be taken (SIZE_MAX when unlimited). Saturating:
 * the error text of set_error() may overshoot the budget. */
static size_t budget_room(const imk__result *r)
{
    if (r->max_bytes == 0)
        return SIZE_MAX;
    size_t taken = r->held + r->arena.used_total;
    return taken < r->max_bytes ? r->max_bytes - taken : 0;
}

/* Record that `old_bytes` outside the arena became `new_bytes`, and give
 * the arena what is left. */
static void budget_update(imk__result *r, size_t old_bytes, size_t new_bytes)
{
    r->held = r->held - old_bytes + new_bytes;
    if (r->max_bytes != 0) {
        size_t left = r->held < r->max_bytes ? r->max_bytes - r->held : 0;
        /* The arena reads limit 0 as "unlimited"; 1 refuses everything. */
        r->arena.limit = left != 0 ? left : 1;
    }
}

/* `force`: allocate even beyond the budget (set_error's text only). */
static void *big_alloc_ex(imk__result *r, size_t size, int force, int *rc)
{
    if (size > SIZE_MAX - BIG_HEADER) {
        *rc = IMK_ENOMEM;
        return NULL;
    }
    size_t total = BIG_HEADER + size;
    if (!force && total > budget_room(r)) {
        *rc = IMK_ELIMIT;
        return NULL;
    }
    big_block *b = imk__malloc(&r->alloc, total);
    if (b == NULL) {
        *rc = IMK_ENOMEM;
        return NULL;
    }
    b->next = r->bigs;
    b->size = total;
    r->bigs = b;
    budget_update(r, 0, total);
    return (unsigned char *)b + BIG_HEADER;
}

static void *big_alloc(imk__result *r, size_t size, int *rc)
{
    return big_alloc_ex(r, size, 0, rc);
}

/* Free the big blocks allocated after `mark` (the rollback of a failed add). */
static void bigs_release_to(imk__result *r, big_block *mark)
{
    while (r->bigs != mark) {
        big_block *b = r->bigs;
        r->bigs = b->next;
        budget_update(r, b->size, 0);
        imk__free(&r->alloc, b);
    }
}

/* ------------------------------------------------------------------ */
/* Growable arrays                                                     */
/* ------------------------------------------------------------------ */

/* Room for `extra` more elements. Doubles; when doubling would cross the
 * budget, takes what the budget has left if that is enough. */
static int vec_reserve(imk__result *r, vec *v, size_t elem, size_t extra)
{
    if (extra <= v->cap - v->count)
        return 0;
    if (extra > SIZE_MAX - v->count)
        return IMK_ENOMEM;
    size_t need = v->count + extra;
    size_t cap = v->cap != 0 ? v->cap : VEC_MIN;
    while (cap < need)
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    size_t bytes;
    size_t old_bytes = v->cap * elem;
    if (!imk__mul_ok(cap, elem, &bytes)) {
        if (!imk__mul_ok(need, elem, &bytes))
            return IMK_ENOMEM;
        cap = need;
    }
    size_t room = budget_room(r);
    if (bytes - old_bytes > room) {
        /* room is finite here (max_bytes != 0), so this cannot overflow */
        size_t most = (old_bytes + room) / elem;
        if (most < need)
            return IMK_ELIMIT;
        cap = most;
        bytes = cap * elem;
    }
    void *p = imk__realloc(&r->alloc, v->data, bytes);
    if (p == NULL)
        return IMK_ENOMEM;
    v->data = p;
    v->cap = cap;
    budget_update(r, old_bytes, bytes);
    return 0;
}

static void vec_free(imk__result *r, vec *v)
{
    imk__free(&r->alloc, v->data);
    v->data = NULL;
    v->count = v->cap = 0;
}

/* The capacity a record's arena array of `count` elements has: the smallest
 * power of two >= count (0 for 0). See the essay. */
static size_t implied_cap(size_t count)
{
    size_t cap = 1;
    if (count == 0)
        return 0;
    while (cap < count)
        cap *= 2;
    return cap;
}

/* ------------------------------------------------------------------ */
/* Hash tables                                                         */
/* ------------------------------------------------------------------ */

typedef int (*slot_match)(const imk__result *r, const slot *s, const void *key);
typedef int (*slot_live)(const imk__result *r, const slot *s);

/* splitmix64's finaliser: every input bit reaches the low bits we index by
 * (UIDs are sequential; a plain multiply would cluster them). */
static uint32_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (uint32_t)x;
}

#define FNV_OFFSET 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u

static unsigned char ascii_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

static uint64_t fnv(uint64_t h, imk_str s, int fold)
{
    const unsigned char *p = (const unsigned char *)s.data;
    for (size_t i = 0; i < s.len; i++) {
        h ^= fold ? ascii_lower(p[i]) : p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static int str_equal(imk_str a, imk_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static int str_equal_ci(imk_str a, imk_str b)
{
    if (a.len != b.len)
        return 0;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower((unsigned char)a.data[i]) != ascii_lower((unsigned char)b.data[i]))
            return 0;
    return 1;
}

/* Make room for `extra` more keys at load <= 1/2, dropping the slots that
 * `live` (if given) says are dead. */
static int table_reserve(imk__result *r, table *t, size_t extra, slot_live live)
{
    if (extra > SIZE_MAX / 4 - t->used)
        return IMK_ENOMEM;
    if (t->cap != 0 && t->used + extra <= t->cap / 2)
        return 0;
    size_t want = TABLE_MIN;
    while (want / 2 < t->used + extra)
        want *= 2;
    /* Slots index with a 32-bit hash: a bigger table would not spread. */
    if (want > (size_t)UINT32_MAX + 1)
        return IMK_ELIMIT;
    size_t bytes, old_bytes = t->cap * sizeof(slot);
    if (!imk__mul_ok(want, sizeof(slot), &bytes))
        return IMK_ENOMEM;
    if (bytes - old_bytes > budget_room(r))
        return IMK_ELIMIT;
    slot *ns = imk__malloc(&r->alloc, bytes);
    if (ns == NULL)
        return IMK_ENOMEM;
    memset(ns, 0, bytes);
    size_t mask = want - 1, used = 0;
    for (size_t i = 0; i < t->cap; i++) {
        const slot *s = &t->slots[i];
        if (s->a == 0 || (live != NULL && !live(r, s)))
            continue;
        size_t j = s->hash & mask;
        while (ns[j].a != 0)
            j = (j + 1) & mask;
        ns[j] = *s;
        used++;
    }
    imk__free(&r->alloc, t->slots);
    t->slots = ns;
    t->cap = want;
    t->used = used;
    budget_update(r, old_bytes, bytes);
    return 0;
}

/* The slot holding `key`, or the empty slot where it would go. The table
 * must have a capacity (it always has a free slot then). */
static slot *table_probe(const table *t, uint32_t hash, slot_match match, const imk__result *r,
                         const void *key)
{
    size_t mask = t->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        slot *s = &t->slots[i];
        if (s->a == 0 || (s->hash == hash && match(r, s, key)))
            return s;
    }
}

/* Point `key` at (a, b), replacing an entry for the same key. Capacity must
 * have been reserved: this cannot fail. */
static void table_put(table *t, uint32_t hash, uint32_t a, uint32_t b, slot_match match,
                      const imk__result *r, const void *key)
{
    slot *s = table_probe(t, hash, match, r, key);
    if (s->a == 0) {
        s->hash = hash;
        t->used++;
    }
    s->a = a;
    s->b = b;
}

static void table_free(imk__result *r, table *t)
{
    imk__free(&r->alloc, t->slots);
    t->slots = NULL;
    t->cap = t->used = 0;
}

/* --- FETCH records by UID or seq --- */

enum { KEY_UID = 0, KEY_SEQ = 1 };

typedef struct fetch_key {
    uint32_t kind, value;
} fetch_key;

static uint32_t fetch_key_hash(uint32_t kind, uint32_t value)
{
    return mix64(((uint64_t)kind << 32) | value);
}

static int record_has_key(const imk_fetch *rec, uint32_t kind, uint32_t value)
{
    if (kind == KEY_UID)
        return (rec->present & IMK_FETCH_UID) != 0 && rec->uid == value;
    return rec->seq == value;
}

static int fetch_key_match(const imk__result *r, const slot *s, const void *key)
{
    const fetch_key *k = key;
    const imk_fetch *recs = r->fetches.data;
    return s->b == k->kind && record_has_key(&recs[s->a - 1], k->kind, k->value);
}

/* A seq slot whose record has moved on to another seq is dead (UIDs never
 * change). Comparing hashes may keep a dead slot by chance: harmless. */
static int fetch_key_live(const imk__result *r, const slot *s)
{
    const imk_fetch *recs = r->fetches.data;
    return s->b == KEY_UID || fetch_key_hash(KEY_SEQ, recs[s->a - 1].seq) == s->hash;
}

static size_t find_record(const imk__result *r, uint32_t kind, uint32_t value)
{
    if (r->fetch_keys.cap == 0)
        return NO_INDEX;
    fetch_key k = {kind, value};
    const slot *s =
        table_probe(&r->fetch_keys, fetch_key_hash(kind, value), fetch_key_match, r, &k);
    return s->a != 0 ? (size_t)s->a - 1 : NO_INDEX;
}

static void put_record_key(imk__result *r, uint32_t kind, uint32_t value, size_t idx)
{
    fetch_key k = {kind, value};
    table_put(&r->fetch_keys, fetch_key_hash(kind, value), (uint32_t)(idx + 1), kind,
              fetch_key_match, r, &k);
}

/* --- sections and extras of a record --- */

enum { ITEM_SECTION = 0, ITEM_EXTRA = 1 };

typedef struct item_key {
    size_t rec;
    uint32_t kind;
    const imk_fetch_section *section; /* ITEM_SECTION */
    const imk_fetch_extra *extra;     /* ITEM_EXTRA */
} item_key;

static uint32_t section_hash(size_t rec, const imk_fetch_section *s)
{
    uint64_t h = fnv(FNV_OFFSET, s->spec, 1);
    h ^= (uint64_t)s->item * 0x9e3779b97f4a7c15u;
    if (s->has_origin)
        h ^= (s->origin + 1) * 0xc2b2ae3d27d4eb4fu;
    return mix64(h ^ ((uint64_t)rec << 1));
}

static uint32_t extra_hash(size_t rec, const imk_fetch_extra *e)
{
    return mix64(fnv(FNV_OFFSET, e->name, 1) ^ ((uint64_t)rec << 1) ^ 1u);
}

static int section_same(const imk_fetch_section *a, const imk_fetch_section *b)
{
    return a->item == b->item && a->has_origin == b->has_origin &&
           (!a->has_origin || a->origin == b->origin) && str_equal_ci(a->spec, b->spec);
}

static int item_match(const imk__result *r, const slot *s, const void *key)
{
    const item_key *k = key;
    if (s->a != k->rec + 1 || (s->b & 1u) != k->kind)
        return 0;
    const imk_fetch *rec = (const imk_fetch *)r->fetches.data + k->rec;
    size_t pos = s->b >> 1;
    if (k->kind == ITEM_SECTION)
        return section_same(&rec->sections[pos], k->section);
    return str_equal_ci(rec->extras[pos].name, k->extra->name);
}

/* --- LIST entries by mailbox name --- */

static int mailbox_match(const imk__result *r, const slot *s, const void *key)
{
    const imk_list_entry *lists = r->lists.data;
    return str_equal(lists[s->a - 1].list.mailbox, *(const imk_str *)key);
}

static uint32_t mailbox_hash(imk_str name)
{
    return mix64(fnv(FNV_OFFSET, name, 0));
}

/* ------------------------------------------------------------------ */
/* Deep copies                                                         */
/* ------------------------------------------------------------------ */

/* Where copies go: the arena, and big copies to big blocks when a builder
 * is given (NULL for the exported imk__copy_* functions). */
typedef struct copier {
    imk__arena *ar;
    imk__result *r;
} copier;

static void *cp_alloc(copier *c, size_t size, int *rc)
{
    if (c->r != NULL && size >= BIG_ALLOC)
        return big_alloc(c->r, size, rc);
    /* over_limit is sticky in the arena: look at this allocation alone. */
    int was_over = c->ar->over_limit;
    c->ar->over_limit = 0;
    void *p = imk__arena_alloc(c->ar, size);
    if (p == NULL)
        *rc = c->ar->over_limit ? IMK_ELIMIT : IMK_ENOMEM;
    c->ar->over_limit |= was_over;
    return p;
}

/* An array of count (> 0) elements. */
static void *cp_array(copier *c, size_t count, size_t elem, int *rc)
{
    size_t bytes;
    if (!imk__mul_ok(count, elem, &bytes)) {
        *rc = IMK_ENOMEM;
        return NULL;
    }
    return cp_alloc(c, bytes, rc);
}

/* NIL stays NIL; the copy is NUL-terminated (not counted in len). */
static int cp_str(copier *c, imk_str in, imk_str *out)
{
    int rc = 0;
    if (in.data == NULL) {
        out->data = NULL;
        out->len = 0;
        return 0;
    }
    if (in.len == 0) {
        out->data = "";
        out->len = 0;
        return 0;
    }
    if (in.len == SIZE_MAX)
        return IMK_ENOMEM;
    char *p = cp_alloc(c, in.len + 1, &rc);
    if (p == NULL)
        return rc;
    memcpy(p, in.data, in.len);
    p[in.len] = '\0';
    out->data = p;
    out->len = in.len;
    return 0;
}

static int cp_strlist(copier *c, const imk_strlist *in, imk_strlist *out)
{
    int rc = 0;
    imk_str *items = NULL;
    if (in->count != 0) {
        items = cp_array(c, in->count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < in->count; i++)
            if ((rc = cp_str(c, in->items[i], &items[i])) != 0)
                return rc;
    }
    out->count = in->count;
    out->items = items;
    return 0;
}

static int cp_value(copier *c, const imk_value *in, imk_value *out);

static int cp_values(copier *c, const imk_value *in, size_t count, const imk_value **out)
{
    int rc = 0;
    imk_value *items = NULL;
    if (count != 0) {
        items = cp_array(c, count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < count; i++)
            if ((rc = cp_value(c, &in[i], &items[i])) != 0)
                return rc;
    }
    *out = items;
    return 0;
}

/* Recursive in the nesting of lists, which the reader bounds (max_depth). */
static int cp_value(copier *c, const imk_value *in, imk_value *out)
{
    *out = *in;
    out->count = 0;
    out->items = NULL;
    int rc = cp_str(c, in->str, &out->str);
    if (rc == 0 && in->type == IMK_VALUE_LIST && in->count != 0) {
        rc = cp_values(c, in->items, in->count, &out->items);
        if (rc == 0)
            out->count = in->count;
    }
    return rc;
}

static int cp_value_ptr(copier *c, const imk_value *in, const imk_value **out)
{
    if (in == NULL) {
        *out = NULL;
        return 0;
    }
    return cp_values(c, in, 1, out);
}

static int cp_seqset(copier *c, const imk_seqset *in, imk_seqset *out)
{
    int rc = 0;
    imk_range *ranges = NULL;
    if (in->count != 0) {
        ranges = cp_array(c, in->count, sizeof(*ranges), &rc);
        if (ranges == NULL)
            return rc;
        memcpy(ranges, in->ranges, in->count * sizeof(*ranges));
    }
    out->count = in->count;
    out->ranges = ranges;
    return 0;
}

static int cp_code_ptr(copier *c, const imk_code *in, const imk_code **out)
{
    int rc = 0;
    if (in == NULL) {
        *out = NULL;
        return 0;
    }
    imk_code *code = cp_alloc(c, sizeof(*code), &rc);
    if (code == NULL)
        return rc;
    *code = *in;
    if ((rc = cp_str(c, in->name, &code->name)) != 0 ||
        (rc = cp_str(c, in->raw, &code->raw)) != 0 ||
        (rc = cp_value_ptr(c, in->value, &code->value)) != 0 ||
        (rc = cp_strlist(c, &in->list, &code->list)) != 0 ||
        (rc = cp_seqset(c, &in->set, &code->set)) != 0 ||
        (rc = cp_seqset(c, &in->set2, &code->set2)) != 0 ||
        (rc = cp_str(c, in->string, &code->string)) != 0 ||
        (rc = cp_str(c, in->progress_tag, &code->progress_tag)) != 0)
        return rc;
    *out = code;
    return 0;
}

static int cp_addresses(copier *c, const imk_address_list *in, imk_address_list *out)
{
    int rc = 0;
    imk_address *items = NULL;
    if (in->count != 0) {
        items = cp_array(c, in->count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < in->count; i++) {
            const imk_address *a = &in->items[i];
            if ((rc = cp_str(c, a->name, &items[i].name)) != 0 ||
                (rc = cp_str(c, a->adl, &items[i].adl)) != 0 ||
                (rc = cp_str(c, a->mailbox, &items[i].mailbox)) != 0 ||
                (rc = cp_str(c, a->host, &items[i].host)) != 0)
                return rc;
        }
    }
    out->count = in->count;
    out->items = items;
    return 0;
}

static int cp_envelope_ptr(copier *c, const imk_envelope *in, const imk_envelope **out)
{
    int rc = 0;
    if (in == NULL) {
        *out = NULL;
        return 0;
    }
    imk_envelope *env = cp_alloc(c, sizeof(*env), &rc);
    if (env == NULL)
        return rc;
    if ((rc = cp_str(c, in->date, &env->date)) != 0 ||
        (rc = cp_str(c, in->subject, &env->subject)) != 0 ||
        (rc = cp_addresses(c, &in->from, &env->from)) != 0 ||
        (rc = cp_addresses(c, &in->sender, &env->sender)) != 0 ||
        (rc = cp_addresses(c, &in->reply_to, &env->reply_to)) != 0 ||
        (rc = cp_addresses(c, &in->to, &env->to)) != 0 ||
        (rc = cp_addresses(c, &in->cc, &env->cc)) != 0 ||
        (rc = cp_addresses(c, &in->bcc, &env->bcc)) != 0 ||
        (rc = cp_str(c, in->in_reply_to, &env->in_reply_to)) != 0 ||
        (rc = cp_str(c, in->message_id, &env->message_id)) != 0)
        return rc;
    *out = env;
    return 0;
}

static int cp_params(copier *c, const imk_param_list *in, imk_param_list *out)
{
    int rc = 0;
    imk_param *items = NULL;
    if (in->count != 0) {
        items = cp_array(c, in->count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < in->count; i++)
            if ((rc = cp_str(c, in->items[i].name, &items[i].name)) != 0 ||
                (rc = cp_str(c, in->items[i].value, &items[i].value)) != 0)
                return rc;
    }
    out->count = in->count;
    out->items = items;
    return 0;
}

/* Recursive in the nesting of body parts, which the reader bounds. */
static int cp_body(copier *c, const imk_body *in, imk_body *out)
{
    int rc = 0;
    *out = *in;
    out->part_count = 0;
    out->parts = NULL;
    out->extension_count = 0;
    out->extensions = NULL;
    if (in->part_count != 0) {
        imk_body *parts = cp_array(c, in->part_count, sizeof(*parts), &rc);
        if (parts == NULL)
            return rc;
        for (size_t i = 0; i < in->part_count; i++)
            if ((rc = cp_body(c, &in->parts[i], &parts[i])) != 0)
                return rc;
        out->parts = parts;
        out->part_count = in->part_count;
    }
    if ((rc = cp_str(c, in->type, &out->type)) != 0 ||
        (rc = cp_str(c, in->subtype, &out->subtype)) != 0 ||
        (rc = cp_params(c, &in->params, &out->params)) != 0 ||
        (rc = cp_str(c, in->id, &out->id)) != 0 ||
        (rc = cp_str(c, in->description, &out->description)) != 0 ||
        (rc = cp_str(c, in->encoding, &out->encoding)) != 0 ||
        (rc = cp_envelope_ptr(c, in->envelope, &out->envelope)) != 0 ||
        (rc = cp_str(c, in->md5, &out->md5)) != 0 ||
        (rc = cp_str(c, in->disposition, &out->disposition)) != 0 ||
        (rc = cp_params(c, &in->disposition_params, &out->disposition_params)) != 0 ||
        (rc = cp_strlist(c, &in->languages, &out->languages)) != 0 ||
        (rc = cp_str(c, in->location, &out->location)) != 0 ||
        (rc = cp_values(c, in->extensions, in->extension_count, &out->extensions)) != 0)
        return rc;
    out->extension_count = in->extension_count;
    return 0;
}

static int cp_body_ptr(copier *c, const imk_body *in, const imk_body **out)
{
    int rc = 0;
    if (in == NULL) {
        *out = NULL;
        return 0;
    }
    imk_body *body = cp_alloc(c, sizeof(*body), &rc);
    if (body == NULL)
        return rc;
    if ((rc = cp_body(c, in, body)) != 0)
        return rc;
    *out = body;
    return 0;
}

/* A streamed section keeps streamed = 1 and its size: its bytes went out
 * as body events and are not ours to keep. */
static int cp_section(copier *c, const imk_fetch_section *in, imk_fetch_section *out)
{
    *out = *in;
    out->data.data = NULL;
    out->data.len = 0;
    int rc = cp_str(c, in->spec, &out->spec);
    if (rc == 0 && !in->streamed)
        rc = cp_str(c, in->data, &out->data);
    return rc;
}

static int cp_extra(copier *c, const imk_fetch_extra *in, imk_fetch_extra *out)
{
    int rc = cp_str(c, in->name, &out->name);
    if (rc == 0)
        rc = cp_value_ptr(c, in->value, &out->value);
    return rc;
}

static int cp_extras(copier *c, const imk_fetch_extra *in, size_t count,
                     const imk_fetch_extra **out)
{
    int rc = 0;
    imk_fetch_extra *items = NULL;
    if (count != 0) {
        items = cp_array(c, count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < count; i++)
            if ((rc = cp_extra(c, &in[i], &items[i])) != 0)
                return rc;
    }
    *out = items;
    return 0;
}

static int cp_list_extras(copier *c, const imk_list_extra *in, size_t count,
                          const imk_list_extra **out)
{
    int rc = 0;
    imk_list_extra *items = NULL;
    if (count != 0) {
        items = cp_array(c, count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < count; i++)
            if ((rc = cp_str(c, in[i].tag, &items[i].tag)) != 0 ||
                (rc = cp_value_ptr(c, in[i].value, &items[i].value)) != 0)
                return rc;
    }
    *out = items;
    return 0;
}

static int cp_list(copier *c, const imk_list *in, imk_list *out)
{
    int rc;
    *out = *in;
    if ((rc = cp_strlist(c, &in->attributes, &out->attributes)) != 0 ||
        (rc = cp_str(c, in->mailbox, &out->mailbox)) != 0 ||
        (rc = cp_str(c, in->mailbox_raw, &out->mailbox_raw)) != 0 ||
        (rc = cp_strlist(c, &in->childinfo, &out->childinfo)) != 0 ||
        (rc = cp_str(c, in->oldname, &out->oldname)) != 0 ||
        (rc = cp_list_extras(c, in->extras, in->extra_count, &out->extras)) != 0)
        return rc;
    return 0;
}

static int cp_status(copier *c, const imk_status_data *in, imk_status_data *out)
{
    int rc;
    *out = *in;
    if ((rc = cp_str(c, in->mailbox, &out->mailbox)) != 0 ||
        (rc = cp_str(c, in->mailbox_raw, &out->mailbox_raw)) != 0 ||
        (rc = cp_str(c, in->mailboxid, &out->mailboxid)) != 0 ||
        (rc = cp_extras(c, in->extras, in->extra_count, &out->extras)) != 0)
        return rc;
    return 0;
}

static int cp_esearch(copier *c, const imk_esearch *in, imk_esearch *out)
{
    int rc;
    *out = *in;
    out->update_count = 0;
    out->updates = NULL;
    if ((rc = cp_str(c, in->tag, &out->tag)) != 0 ||
        (rc = cp_seqset(c, &in->all, &out->all)) != 0 ||
        (rc = cp_seqset(c, &in->partial, &out->partial)) != 0 ||
        (rc = cp_extras(c, in->extras, in->extra_count, &out->extras)) != 0)
        return rc;
    if (in->update_count != 0) {
        imk_esearch_update *ups = cp_array(c, in->update_count, sizeof(*ups), &rc);
        if (ups == NULL)
            return rc;
        for (size_t i = 0; i < in->update_count; i++) {
            ups[i] = in->updates[i];
            if ((rc = cp_seqset(c, &in->updates[i].set, &ups[i].set)) != 0)
                return rc;
        }
        out->updates = ups;
        out->update_count = in->update_count;
    }
    return 0;
}

static int cp_namespace_list(copier *c, const imk_namespace_list *in, imk_namespace_list *out)
{
    int rc = 0;
    imk_namespace_desc *items = NULL;
    if (in->count != 0) {
        items = cp_array(c, in->count, sizeof(*items), &rc);
        if (items == NULL)
            return rc;
        for (size_t i = 0; i < in->count; i++) {
            const imk_namespace_desc *d = &in->items[i];
            items[i] = *d;
            if ((rc = cp_str(c, d->prefix, &items[i].prefix)) != 0 ||
                (rc = cp_list_extras(c, d->extensions, d->extension_count, &items[i].extensions)) !=
                    0)
                return rc;
        }
    }
    out->nil = in->nil;
    out->count = in->count;
    out->items = items;
    return 0;
}

static int cp_quota(copier *c, const imk_quota *in, imk_quota *out)
{
    int rc = cp_str(c, in->root, &out->root);
    imk_quota_resource *res = NULL;
    if (rc != 0)
        return rc;
    if (in->count != 0) {
        res = cp_array(c, in->count, sizeof(*res), &rc);
        if (res == NULL)
            return rc;
        for (size_t i = 0; i < in->count; i++) {
            res[i] = in->resources[i];
            if ((rc = cp_str(c, in->resources[i].name, &res[i].name)) != 0)
                return rc;
        }
    }
    out->count = in->count;
    out->resources = res;
    return 0;
}

static int cp_metadata(copier *c, const imk_metadata *in, imk_metadata *out)
{
    int rc;
    out->has_values = in->has_values;
    if ((rc = cp_str(c, in->mailbox, &out->mailbox)) != 0 ||
        (rc = cp_params(c, &in->entries, &out->entries)) != 0)
        return rc;
    return 0;
}

static int cp_acl(copier *c, const imk_acl *in, imk_acl *out)
{
    int rc;
    if ((rc = cp_str(c, in->mailbox, &out->mailbox)) != 0 ||
        (rc = cp_params(c, &in->entries, &out->entries)) != 0 ||
        (rc = cp_str(c, in->identifier, &out->identifier)) != 0 ||
        (rc = cp_str(c, in->rights, &out->rights)) != 0 ||
        (rc = cp_strlist(c, &in->optional_rights, &out->optional_rights)) != 0)
        return rc;
    return 0;
}

/*
 * One THREAD node and its descendants. A chain of only children is walked
 * with the loop; at a branch point the children but the last recurse and
 * the last continues the loop, so the C stack grows only with branch
 * points nested as first children - parenthesised on the wire, hence
 * bounded by the reader's max_depth.
 */
static int cp_thread_node(copier *c, const imk_thread_node *src, imk_thread_node *dst)
{
    int rc = 0;
    for (;;) {
        size_t n = src->child_count;
        dst->num = src->num;
        dst->child_count = 0;
        dst->children = NULL;
        if (n == 0)
            return 0;
        imk_thread_node *kids = cp_array(c, n, sizeof(*kids), &rc);
        if (kids == NULL)
            return rc;
        for (size_t i = 0; i + 1 < n; i++)
            if ((rc = cp_thread_node(c, &src->children[i], &kids[i])) != 0)
                return rc;
        dst->children = kids;
        dst->child_count = n;
        src = &src->children[n - 1];
        dst = &kids[n - 1];
    }
}

/* The single-valued items of a FETCH (all but UID, sections and extras),
 * copied as far as its present bits say they are there. */
static int cp_fetch_items(copier *c, const imk_fetch *f, imk_fetch *out)
{
    unsigned p = f->present;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    out->modseq = f->modseq;
    out->internaldate = f->internaldate;
    out->rfc822_size = f->rfc822_size;
    out->has_savedate = f->has_savedate;
    out->savedate = f->savedate;
    if ((p & IMK_FETCH_FLAGS) != 0 && (rc = cp_strlist(c, &f->flags, &out->flags)) != 0)
        return rc;
    if ((p & IMK_FETCH_ENVELOPE) != 0 &&
        (rc = cp_envelope_ptr(c, f->envelope, &out->envelope)) != 0)
        return rc;
    if ((p & (IMK_FETCH_BODY | IMK_FETCH_BODYSTRUCTURE)) != 0 &&
        (rc = cp_body_ptr(c, f->body, &out->body)) != 0)
        return rc;
    if ((p & IMK_FETCH_EMAILID) != 0 && (rc = cp_str(c, f->emailid, &out->emailid)) != 0)
        return rc;
    if ((p & IMK_FETCH_THREADID) != 0 && (rc = cp_str(c, f->threadid, &out->threadid)) != 0)
        return rc;
    if ((p & IMK_FETCH_PREVIEW) != 0 && (rc = cp_str(c, f->preview, &out->preview)) != 0)
        return rc;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Exported copies                                                     */
/* ------------------------------------------------------------------ */

int imk__copy_str(imk__arena *ar, imk_str in, imk_str *out)
{
    copier c = {ar, NULL};
    imk_str tmp;
    int rc = cp_str(&c, in, &tmp);
    if (rc == 0)
        *out = tmp;
    return rc;
}

int imk__copy_strlist(imk__arena *ar, const imk_strlist *in, imk_strlist *out)
{
    copier c = {ar, NULL};
    return cp_strlist(&c, in, out);
}

int imk__copy_code(imk__arena *ar, const imk_code *in, const imk_code **out)
{
    copier c = {ar, NULL};
    return cp_code_ptr(&c, in, out);
}

/* ------------------------------------------------------------------ */
/* The builder                                                         */
/* ------------------------------------------------------------------ */

int imk__result_new(const imk_allocator *alloc, size_t max_bytes, imk__result **out)
{
    imk_allocator a;
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    imk__alloc_init(&a, alloc);
    imk__result *r = imk__malloc(&a, sizeof(*r));
    if (r == NULL)
        return IMK_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->alloc = a;
    r->max_bytes = max_bytes;
    size_t block = max_bytes != 0 && max_bytes < BLOCK_SIZE ? max_bytes : BLOCK_SIZE;
    imk__arena_init(&r->arena, &r->alloc, block, 0);
    budget_update(r, 0, 0);
    r->res.status = IMK_STATUS_NONE;
    *out = r;
    return 0;
}

void imk__result_free(imk__result *r)
{
    if (r == NULL)
        return;
    bigs_release_to(r, NULL);
    imk__arena_free(&r->arena);
    vec *vecs[] = {&r->fetches, &r->search,   &r->roots,   &r->lists,   &r->statuses,
                   &r->quotas,  &r->metadata, &r->enabled, &r->expunged};
    for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++)
        vec_free(r, vecs[i]);
    table_free(r, &r->fetch_keys);
    table_free(r, &r->items);
    table_free(r, &r->mailboxes);
    imk_allocator a = r->alloc;
    imk__free(&a, r);
}

const imk_result *imk__result_get(imk__result *r)
{
    if (r == NULL)
        return NULL;
    imk_result *o = &r->res;
    o->fetch_count = r->fetches.count;
    o->fetches = r->fetches.data;
    o->search.count = r->search.count;
    o->search.numbers = r->search.data;
    o->thread.count = r->roots.count;
    o->thread.roots = r->roots.data;
    o->list_count = r->lists.count;
    o->lists = r->lists.data;
    o->status_count = r->statuses.count;
    o->statuses = r->statuses.data;
    o->quota_count = r->quotas.count;
    o->quotas = r->quotas.data;
    o->metadata_count = r->metadata.count;
    o->metadata = r->metadata.data;
    o->enabled.count = r->enabled.count;
    o->enabled.items = r->enabled.data;
    o->expunged_count = r->expunged.count;
    o->expunged_uids = r->expunged.data;
    return o;
}

int imk__result_set_status(imk__result *r, imk_status status, const imk_code *code, imk_str text)
{
    if (r == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    const imk_code *code_copy = NULL;
    imk_str text_copy;
    int rc = cp_code_ptr(&c, code, &code_copy);
    if (rc == 0)
        rc = cp_str(&c, text, &text_copy);
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.status = status;
    r->res.code = code_copy;
    r->res.text = text_copy;
    return 0;
}

/*
 * The status is left alone: a tagged status already recorded stays, and a
 * fresh result's is IMK_STATUS_NONE. The reason for a failure must not be
 * lost to the limit it reports, so a text of up to ERROR_TEXT_MAX bytes is
 * kept even beyond max_bytes; a text that is already the result's own is
 * kept as it is. Failing all that (no memory), the error's own static
 * message stands in.
 */
#define ERROR_TEXT_MAX ((size_t)1024)

void imk__result_set_error(imk__result *r, int error, imk_str text)
{
    if (r == NULL)
        return;
    r->res.error = error;
    if (text.data == r->res.text.data && text.len == r->res.text.len)
        return;
    copier c = {&r->arena, r};
    imk_str text_copy;
    int rc = cp_str(&c, text, &text_copy);
    if (rc == IMK_ELIMIT && text.len <= ERROR_TEXT_MAX) {
        char *p = big_alloc_ex(r, text.len + 1, 1, &rc);
        if (p != NULL) {
            memcpy(p, text.data, text.len);
            p[text.len] = '\0';
            text_copy.data = p;
            text_copy.len = text.len;
            rc = 0;
        }
    }
    if (rc != 0) {
        text_copy.data = imk_error_message(error);
        text_copy.len = strlen(text_copy.data);
    }
    r->res.text = text_copy;
}

/* --- FETCH --- */

/*
 * The array for `count` + `n` elements of a record whose array `old` holds
 * `count`: `old` itself when its implied capacity has room, else a new one
 * of the next power of two holding a copy of the old elements. Returns NULL
 * (and *rc) on failure.
 */
static void *record_room(copier *c, const void *old, size_t count, size_t n, size_t elem, int *rc)
{
    size_t cap = implied_cap(count);
    if (n <= cap - count)
        return (void *)(uintptr_t)old; /* ours: allocated by this file, not const */
    size_t want = implied_cap(count + n);
    void *a = cp_array(c, want, elem, rc);
    if (a != NULL && count != 0)
        memcpy(a, old, count * elem);
    return a;
}

/* Move the staged sections at secs[old .. old+n) into place: replace a
 * section with the same key, else append. Cannot fail (capacity of the item
 * table reserved). */
static void commit_sections(imk__result *r, size_t idx, imk_fetch_section *secs, size_t old,
                            size_t n)
{
    imk_fetch *rec = (imk_fetch *)r->fetches.data + idx;
    size_t count = old;
    rec->sections = secs;
    for (size_t i = 0; i < n; i++) {
        const imk_fetch_section s = secs[old + i];
        item_key k = {idx, ITEM_SECTION, &s, NULL};
        uint32_t h = section_hash(idx, &s);
        slot *sl = table_probe(&r->items, h, item_match, r, &k);
        if (sl->a != 0) {
            secs[sl->b >> 1] = s;
            continue;
        }
        secs[count] = s; /* count <= old + i: never overwrites an unread staged one */
        sl->hash = h;
        sl->a = (uint32_t)(idx + 1);
        sl->b = (uint32_t)(count << 1) | ITEM_SECTION;
        r->items.used++;
        rec->section_count = ++count;
    }
}

static void commit_extras(imk__result *r, size_t idx, imk_fetch_extra *extras, size_t old, size_t n)
{
    imk_fetch *rec = (imk_fetch *)r->fetches.data + idx;
    size_t count = old;
    rec->extras = extras;
    for (size_t i = 0; i < n; i++) {
        const imk_fetch_extra e = extras[old + i];
        item_key k = {idx, ITEM_EXTRA, NULL, &e};
        uint32_t h = extra_hash(idx, &e);
        slot *sl = table_probe(&r->items, h, item_match, r, &k);
        if (sl->a != 0) {
            extras[sl->b >> 1] = e;
            continue;
        }
        extras[count] = e;
        sl->hash = h;
        sl->a = (uint32_t)(idx + 1);
        sl->b = (uint32_t)(count << 1) | ITEM_EXTRA;
        r->items.used++;
        rec->extra_count = ++count;
    }
}

/* Later single-valued items replace earlier ones. */
static void merge_items(imk_fetch *rec, const imk_fetch *in, unsigned p)
{
    rec->present |= p;
    if (p & IMK_FETCH_FLAGS)
        rec->flags = in->flags;
    if (p & IMK_FETCH_MODSEQ)
        rec->modseq = in->modseq;
    if (p & IMK_FETCH_INTERNALDATE)
        rec->internaldate = in->internaldate;
    if (p & IMK_FETCH_RFC822_SIZE)
        rec->rfc822_size = in->rfc822_size;
    if (p & IMK_FETCH_ENVELOPE)
        rec->envelope = in->envelope;
    if (p & (IMK_FETCH_BODY | IMK_FETCH_BODYSTRUCTURE))
        rec->body = in->body;
    if (p & IMK_FETCH_EMAILID)
        rec->emailid = in->emailid;
    if (p & IMK_FETCH_THREADID)
        rec->threadid = in->threadid;
    if (p & IMK_FETCH_SAVEDATE) {
        rec->has_savedate = in->has_savedate;
        rec->savedate = in->savedate;
    }
    if (p & IMK_FETCH_PREVIEW)
        rec->preview = in->preview;
}

int imk__result_add_fetch(imk__result *r, const imk_fetch *f)
{
    if (r == NULL || f == NULL)
        return IMK_EINVAL;
    int has_uid = (f->present & IMK_FETCH_UID) != 0;
    size_t ns = f->section_count, ne = f->extra_count;
    size_t idx;
    if (has_uid) {
        idx = find_record(r, KEY_UID, f->uid);
        if (idx == NO_INDEX) {
            size_t by_seq = find_record(r, KEY_SEQ, f->seq);
            const imk_fetch *recs = r->fetches.data;
            if (by_seq != NO_INDEX && (recs[by_seq].present & IMK_FETCH_UID) == 0)
                idx = by_seq;
        }
    } else {
        idx = find_record(r, KEY_SEQ, f->seq);
    }
    if (idx == NO_INDEX && r->fetches.count >= MAX_INDEX)
        return IMK_ELIMIT;

    /* Phase 1: everything that can fail. Capacity first: growing the
     * records array moves the records, so no pointer into it is taken
     * before. */
    int rc = vec_reserve(r, &r->fetches, sizeof(imk_fetch), idx == NO_INDEX ? 1 : 0);
    if (rc == 0)
        rc = table_reserve(r, &r->fetch_keys, 2, fetch_key_live);
    if (rc == 0 && ns + ne != 0)
        rc = table_reserve(r, &r->items, ns + ne, NULL);
    if (rc != 0)
        return rc;
    const imk_fetch *old = idx != NO_INDEX ? (const imk_fetch *)r->fetches.data + idx : NULL;
    size_t old_ns = old != NULL ? old->section_count : 0;
    size_t old_ne = old != NULL ? old->extra_count : 0;
    if (ns > MAX_POS - old_ns || ne > MAX_POS - old_ne)
        return IMK_ELIMIT;

    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_fetch staged;
    imk_fetch_section *secs = NULL;
    imk_fetch_extra *extras = NULL;
    rc = cp_fetch_items(&c, f, &staged);
    if (rc == 0 && ns != 0) {
        secs = record_room(&c, old != NULL ? old->sections : NULL, old_ns, ns, sizeof(*secs), &rc);
        for (size_t i = 0; secs != NULL && rc == 0 && i < ns; i++)
            rc = cp_section(&c, &f->sections[i], &secs[old_ns + i]);
    }
    if (rc == 0 && ne != 0) {
        extras =
            record_room(&c, old != NULL ? old->extras : NULL, old_ne, ne, sizeof(*extras), &rc);
        for (size_t i = 0; extras != NULL && rc == 0 && i < ne; i++)
            rc = cp_extra(&c, &f->extras[i], &extras[old_ne + i]);
    }
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }

    /* Phase 2: commit; nothing below fails. */
    imk_fetch *rec;
    if (idx == NO_INDEX) {
        idx = r->fetches.count++;
        rec = (imk_fetch *)r->fetches.data + idx;
        memset(rec, 0, sizeof(*rec));
        rec->seq = f->seq;
        put_record_key(r, KEY_SEQ, f->seq, idx);
    } else {
        rec = (imk_fetch *)r->fetches.data + idx;
        if (rec->seq != f->seq) {
            rec->seq = f->seq;
            put_record_key(r, KEY_SEQ, f->seq, idx);
        }
    }
    if (has_uid && (rec->present & IMK_FETCH_UID) == 0) {
        rec->uid = f->uid;
        rec->present |= IMK_FETCH_UID;
        put_record_key(r, KEY_UID, f->uid, idx);
    }
    merge_items(rec, &staged, f->present & ~IMK_FETCH_UID);
    if (ns != 0)
        commit_sections(r, idx, secs, old_ns, ns);
    if (ne != 0)
        commit_extras(r, idx, extras, old_ne, ne);
    return 0;
}

/* --- SEARCH, SORT, THREAD, ESEARCH --- */

/* Numbers are appended in arrival order and never deduplicated: SORT's
 * order and multiplicity are the answer, and a SEARCH answer is a set the
 * server already sends without repeats. */
int imk__result_add_search(imk__result *r, const imk_search *s)
{
    if (r == NULL || s == NULL)
        return IMK_EINVAL;
    if (s->count != 0) {
        int rc = vec_reserve(r, &r->search, sizeof(uint32_t), s->count);
        if (rc != 0)
            return rc;
        memcpy((uint32_t *)r->search.data + r->search.count, s->numbers,
               s->count * sizeof(uint32_t));
        r->search.count += s->count;
    }
    if (s->has_modseq && (!r->res.search.has_modseq || s->modseq > r->res.search.modseq)) {
        r->res.search.has_modseq = 1;
        r->res.search.modseq = s->modseq;
    }
    return 0;
}

/* Each THREAD line's roots are appended to the forest built so far. */
int imk__result_set_thread(imk__result *r, const imk_thread *t)
{
    if (r == NULL || t == NULL)
        return IMK_EINVAL;
    if (t->count == 0)
        return 0;
    int rc = vec_reserve(r, &r->roots, sizeof(imk_thread_node), t->count);
    if (rc != 0)
        return rc;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_thread_node *roots = (imk_thread_node *)r->roots.data + r->roots.count;
    for (size_t i = 0; rc == 0 && i < t->count; i++)
        rc = cp_thread_node(&c, &t->roots[i], &roots[i]);
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->roots.count += t->count;
    return 0;
}

int imk__result_set_esearch(imk__result *r, const imk_esearch *e)
{
    int rc = 0;
    if (r == NULL || e == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_esearch *copy = cp_alloc(&c, sizeof(*copy), &rc);
    if (copy == NULL || (rc = cp_esearch(&c, e, copy)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.esearch = copy;
    return 0;
}

/* --- LIST and STATUS --- */

int imk__result_add_list(imk__result *r, const imk_list *l)
{
    if (r == NULL || l == NULL)
        return IMK_EINVAL;
    if (r->lists.count >= MAX_INDEX)
        return IMK_ELIMIT;
    int rc = vec_reserve(r, &r->lists, sizeof(imk_list_entry), 1);
    if (rc == 0)
        rc = table_reserve(r, &r->mailboxes, 1, NULL);
    if (rc != 0)
        return rc;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_list_entry *entry = (imk_list_entry *)r->lists.data + r->lists.count;
    if ((rc = cp_list(&c, l, &entry->list)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    entry->status = NULL;
    size_t idx = r->lists.count++;
    /* A repeated name points at its latest entry. */
    table_put(&r->mailboxes, mailbox_hash(entry->list.mailbox), (uint32_t)(idx + 1), 0,
              mailbox_match, r, &entry->list.mailbox);
    return 0;
}

/* LIST-STATUS (RFC 5819 section 3): the server sends each STATUS after the
 * LIST of its mailbox, so a STATUS is attached to the latest LIST entry of
 * the same decoded name seen so far (a later STATUS for it replaces the
 * earlier). A STATUS before its LIST, or for a name never listed (a plain
 * STATUS command), goes to `statuses`. */
int imk__result_add_status(imk__result *r, const imk_status_data *st)
{
    int rc = 0;
    if (r == NULL || st == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    const slot *s = NULL;
    if (r->mailboxes.cap != 0)
        s = table_probe(&r->mailboxes, mailbox_hash(st->mailbox), mailbox_match, r, &st->mailbox);
    if (s != NULL && s->a != 0) {
        imk_status_data *copy = cp_alloc(&c, sizeof(*copy), &rc);
        if (copy == NULL || (rc = cp_status(&c, st, copy)) != 0) {
            bigs_release_to(r, mark);
            return rc;
        }
        ((imk_list_entry *)r->lists.data)[s->a - 1].status = copy;
        return 0;
    }
    if ((rc = vec_reserve(r, &r->statuses, sizeof(imk_status_data), 1)) != 0)
        return rc;
    imk_status_data *slot_st = (imk_status_data *)r->statuses.data + r->statuses.count;
    if ((rc = cp_status(&c, st, slot_st)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->statuses.count++;
    return 0;
}

/* --- the rest: replaced (set_*) or appended (add_*) --- */

int imk__result_set_namespace(imk__result *r, const imk_namespace *ns)
{
    int rc = 0;
    if (r == NULL || ns == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_namespace *copy = cp_alloc(&c, sizeof(*copy), &rc);
    if (copy == NULL || (rc = cp_namespace_list(&c, &ns->personal, &copy->personal)) != 0 ||
        (rc = cp_namespace_list(&c, &ns->other_users, &copy->other_users)) != 0 ||
        (rc = cp_namespace_list(&c, &ns->shared, &copy->shared)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.namespace_ = copy;
    return 0;
}

int imk__result_set_id(imk__result *r, const imk_id *id)
{
    int rc = 0;
    if (r == NULL || id == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_id *copy = cp_alloc(&c, sizeof(*copy), &rc);
    if (copy == NULL || (rc = cp_params(&c, &id->fields, &copy->fields)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    copy->nil = id->nil;
    r->res.id = copy;
    return 0;
}

int imk__result_add_quota(imk__result *r, const imk_quota *q)
{
    if (r == NULL || q == NULL)
        return IMK_EINVAL;
    int rc = vec_reserve(r, &r->quotas, sizeof(imk_quota), 1);
    if (rc != 0)
        return rc;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    if ((rc = cp_quota(&c, q, (imk_quota *)r->quotas.data + r->quotas.count)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->quotas.count++;
    return 0;
}

int imk__result_set_quotaroot(imk__result *r, const imk_quotaroot *q)
{
    int rc = 0;
    if (r == NULL || q == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_quotaroot *copy = cp_alloc(&c, sizeof(*copy), &rc);
    if (copy == NULL || (rc = cp_str(&c, q->mailbox, &copy->mailbox)) != 0 ||
        (rc = cp_strlist(&c, &q->roots, &copy->roots)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.quotaroot = copy;
    return 0;
}

int imk__result_add_metadata(imk__result *r, const imk_metadata *m)
{
    if (r == NULL || m == NULL)
        return IMK_EINVAL;
    int rc = vec_reserve(r, &r->metadata, sizeof(imk_metadata), 1);
    if (rc != 0)
        return rc;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    if ((rc = cp_metadata(&c, m, (imk_metadata *)r->metadata.data + r->metadata.count)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->metadata.count++;
    return 0;
}

/* ENABLED may come in several lines (RFC 5161 allows one per extension). */
int imk__result_set_enabled(imk__result *r, const imk_strlist *caps)
{
    if (r == NULL || caps == NULL)
        return IMK_EINVAL;
    if (caps->count == 0)
        return 0;
    int rc = vec_reserve(r, &r->enabled, sizeof(imk_str), caps->count);
    if (rc != 0)
        return rc;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_str *items = (imk_str *)r->enabled.data + r->enabled.count;
    for (size_t i = 0; rc == 0 && i < caps->count; i++)
        rc = cp_str(&c, caps->items[i], &items[i]);
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->enabled.count += caps->count;
    return 0;
}

/* A CAPABILITY response or code replaces the list (the latest is true). */
int imk__result_set_capabilities(imk__result *r, const imk_strlist *caps)
{
    if (r == NULL || caps == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_strlist copy;
    int rc = cp_strlist(&c, caps, &copy);
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.capabilities = copy;
    return 0;
}

int imk__result_set_acl(imk__result *r, const imk_acl *acl)
{
    int rc = 0;
    if (r == NULL || acl == NULL)
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_acl *copy = cp_alloc(&c, sizeof(*copy), &rc);
    if (copy == NULL || (rc = cp_acl(&c, acl, copy)) != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.acl = copy;
    return 0;
}

/* COPYUID: set = source UIDs, set2 = destination UIDs (RFC 4315 section 3,
 * RFC 9051 section 7.1). APPENDUID: set = the appended message's UIDs (more
 * than one with MULTIAPPEND), which are destination UIDs; source_uids is
 * then emptied. Any other code: IMK_EINVAL. */
int imk__result_set_uidplus(imk__result *r, const imk_code *code)
{
    if (r == NULL || code == NULL ||
        (code->kind != IMK_CODE_COPYUID && code->kind != IMK_CODE_APPENDUID))
        return IMK_EINVAL;
    copier c = {&r->arena, r};
    big_block *mark = r->bigs;
    imk_seqset first, second = {0, NULL};
    int rc = cp_seqset(&c, &code->set, &first);
    if (rc == 0 && code->kind == IMK_CODE_COPYUID)
        rc = cp_seqset(&c, &code->set2, &second);
    if (rc != 0) {
        bigs_release_to(r, mark);
        return rc;
    }
    r->res.uidvalidity = code->uidvalidity;
    if (code->kind == IMK_CODE_COPYUID) {
        r->res.has_copyuid = 1;
        r->res.source_uids = first;
        r->res.dest_uids = second;
    } else {
        r->res.has_appenduid = 1;
        r->res.source_uids = second;
        r->res.dest_uids = first;
    }
    return 0;
}

int imk__result_add_expunged(imk__result *r, uint32_t uid)
{
    if (r == NULL)
        return IMK_EINVAL;
    int rc = vec_reserve(r, &r->expunged, sizeof(uint32_t), 1);
    if (rc != 0)
        return rc;
    ((uint32_t *)r->expunged.data)[r->expunged.count++] = uid;
    return 0;
}
