/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for src/proto/view.c: the input is a program of view
 * operations, applied both to the view and to a plain-array model (one
 * struct per message, memmove on removal). After every operation
 * imk__view_check() must hold and the view must equal the model - EXISTS,
 * every seq -> UID and UID -> seq, flags, MODSEQ - and the observer's
 * events must be the ones the model expects. abort() on any difference.
 *
 * Encoding: byte 0 picks the block size (2..9, or 256) and the UID base
 * (1 or near 2^32, to reach the top of the UID range). Then each operation
 * is an opcode byte followed by its arguments:
 *
 *   op % 8   operation            arguments
 *   0        EXISTS               1 byte: +n (0xf0.. = shrink, a problem)
 *   1        EXPUNGE              1 byte: seq (may be 0 or beyond EXISTS)
 *   2        VANISHED             1 byte: ranges (1..4), then 2+2 bytes each
 *                                 (UID offsets from the base; 0 = "*")
 *   3        FETCH                1 byte seq, 1 byte items (UID/FLAGS/MODSEQ),
 *                                 2 bytes UID offset, 1 byte flags, 1 byte modseq
 *   4        UIDVALIDITY          1 byte (0..3; 0 = a problem)
 *   5        reset
 *   6        FLAGS/PERMANENTFLAGS 1 byte (flag bits)
 *   7        fail an allocation   1 byte: which one of the next operation
 *
 * A failed allocation must make the operation return IMK_ENOMEM with the
 * view unchanged (the model is then not updated) and no event.
 */
#include "proto/view.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- input ---- */

typedef struct input {
    const uint8_t *p;
    size_t left;
} input;

static unsigned take(input *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static unsigned take16(input *in)
{
    unsigned hi = take(in);
    return hi << 8 | take(in);
}

/* ---- allocator that fails on request ---- */

typedef struct fuzz_alloc {
    long count, fail_at, live;
} fuzz_alloc;

static void *fa_malloc(size_t size, void *user)
{
    fuzz_alloc *fa = user;
    if (fa->fail_at != 0 && ++fa->count >= fa->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        fa->live++;
    return p;
}

static void *fa_realloc(void *ptr, size_t size, void *user)
{
    fuzz_alloc *fa = user;
    if (ptr == NULL)
        return fa_malloc(size, user);
    if (fa->fail_at != 0 && ++fa->count >= fa->fail_at)
        return NULL;
    return realloc(ptr, size);
}

static void fa_free(void *ptr, void *user)
{
    fuzz_alloc *fa = user;
    if (ptr != NULL) {
        fa->live--;
        free(ptr);
    }
}

/* ---- flags ---- */

typedef struct spelling {
    const char *name;
    unsigned bit;
} spelling;

/* System flags fold case; keywords do not. */
static const spelling spellings[8] = {
    {"\\Seen", 0}, {"\\SEEN", 0}, {"\\Flagged", 1}, {"\\fLAGGED", 1},
    {"$Junk", 2},  {"$junk", 3},  {"\\Deleted", 4}, {"NonJunk", 5},
};
static const char *const canonical[6] = {"\\Seen", "\\Flagged", "$Junk",
                                         "$junk",  "\\Deleted", "NonJunk"};

static uint32_t mask_of(imk_strlist l)
{
    uint32_t mask = 0;
    for (size_t i = 0; i < l.count; i++) {
        unsigned bit = 6;
        for (unsigned k = 0; k < 6; k++)
            if (strlen(canonical[k]) == l.items[i].len &&
                memcmp(canonical[k], l.items[i].data, l.items[i].len) == 0)
                bit = k;
        if (bit == 6 || (mask & (1u << bit)) != 0)
            abort(); /* not normalised, or a duplicate */
        mask |= 1u << bit;
    }
    return mask;
}

/* ---- events ---- */

enum { EV_EXISTS = 1, EV_EXPUNGE, EV_FLAGS, EV_UIDVALIDITY, EV_PROBLEM };

typedef struct event {
    int type;
    uint64_t a, b, modseq;
    uint32_t mask;
} event;

typedef struct event_log {
    event *e;
    size_t n, cap;
} event_log;

static void push(event_log *log, int type, uint64_t a, uint64_t b, uint32_t mask, uint64_t ms)
{
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 64;
        log->e = realloc(log->e, log->cap * sizeof(event));
        if (log->e == NULL)
            abort();
    }
    event ev = {type, a, b, ms, mask};
    log->e[log->n++] = ev;
}

static void on_exists(void *u, uint32_t o, uint32_t n)
{
    push(u, EV_EXISTS, o, n, 0, 0);
}

static void on_expunge(void *u, uint32_t seq, uint32_t uid)
{
    push(u, EV_EXPUNGE, seq, uid, 0, 0);
}

static void on_flags(void *u, uint32_t seq, uint32_t uid, imk_strlist f, uint64_t ms)
{
    push(u, EV_FLAGS, seq, uid, mask_of(f), ms);
}

static void on_uidvalidity(void *u, uint64_t o, uint64_t n)
{
    push(u, EV_UIDVALIDITY, o, n, 0, 0);
}

static void on_problem(void *u, const char *message)
{
    if (message == NULL || message[0] == '\0')
        abort();
    push(u, EV_PROBLEM, 0, 0, 0, 0);
}

/* ---- the model ---- */

#define MAX_MESSAGES 1000u

typedef struct msg {
    uint32_t uid, mask;
    int known;
    uint64_t modseq;
} msg;

typedef struct model {
    msg m[MAX_MESSAGES];
    uint32_t n;
    uint64_t uidvalidity;
    event_log expect;
} model;

static void model_remove(model *md, uint32_t i)
{
    push(&md->expect, EV_EXPUNGE, i + 1, md->m[i].uid, 0, 0);
    memmove(md->m + i, md->m + i + 1, (md->n - i - 1) * sizeof(msg));
    md->n--;
}

static uint32_t model_max_uid(const model *md)
{
    for (uint32_t i = md->n; i > 0; i--)
        if (md->m[i - 1].uid != 0)
            return md->m[i - 1].uid;
    return 0;
}

static void compare(const imk_view *v, model *md, event_log *got)
{
    if (!imk__view_check(v) || imk_view_exists(v) != md->n ||
        imk_view_uidvalidity(v) != md->uidvalidity)
        abort();
    if (got->n != md->expect.n)
        abort();
    for (size_t i = 0; i < got->n; i++) {
        const event *g = &got->e[i], *w = &md->expect.e[i];
        if (g->type != w->type || g->a != w->a || g->b != w->b || g->mask != w->mask ||
            g->modseq != w->modseq)
            abort();
    }
    for (uint32_t i = 0; i < md->n; i++) {
        imk_view_message vm;
        if (!imk_view_message_at(v, i + 1, &vm) || vm.uid != md->m[i].uid ||
            vm.flags_known != md->m[i].known || vm.modseq != md->m[i].modseq ||
            mask_of(vm.flags) != (md->m[i].known ? md->m[i].mask : 0) ||
            imk_view_uid_of_seq(v, i + 1) != md->m[i].uid)
            abort();
        uint32_t uid = md->m[i].uid;
        if (uid != 0 && imk_view_seq_of_uid(v, uid) != i + 1)
            abort();
        /* a UID just above: present only if the next known message has it */
        if (uid != 0 && uid < UINT32_MAX) {
            uint32_t next = 0;
            for (uint32_t k = i + 1; k < md->n && next == 0; k++)
                next = md->m[k].uid;
            uint32_t seq = imk_view_seq_of_uid(v, uid + 1);
            if ((next == uid + 1) != (seq != 0))
                abort();
        }
    }
    if (imk_view_uid_of_seq(v, md->n + 1) != 0 || imk_view_uid_of_seq(v, 0) != 0)
        abort();
    got->n = 0;
    md->expect.n = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static model md;
    input in = {data, size};
    fuzz_alloc fa = {0, 0, 0};
    imk_allocator alloc = {fa_malloc, fa_realloc, fa_free, &fa};
    event_log got = {NULL, 0, 0};
    imk_view *v = NULL;
    if (imk__view_new(&alloc, &v) != 0)
        abort();
    imk__view_observer obs = {on_exists, on_expunge, on_flags, on_uidvalidity, on_problem, &got};
    imk__view_set_observer(v, &obs);
    imk__view_set_max_messages(v, MAX_MESSAGES);

    unsigned first = take(&in);
    uint32_t block = (first & 15) < 8 ? 2 + (first & 7) : 256;
    uint32_t base = (first & 16) ? 4294967295u - 70000 : 0;
    if (imk__view_set_block_size(v, block) != 0)
        abort();
    memset(&md, 0, sizeof(md));

    long fail_next = 0;
    while (in.left > 0) {
        unsigned op = take(&in);
        int rc = 0;
        if (fail_next != 0) {
            fa.count = 0;
            fa.fail_at = fail_next;
        }
        switch (op % 8) {
        case 0: {
            unsigned arg = take(&in);
            uint32_t count =
                arg >= 0xf0 ? (md.n > arg - 0xf0 ? md.n - (arg - 0xf0) - 1 : 0) : md.n + arg;
            if (arg == 0xef)
                count = MAX_MESSAGES + 1;
            rc = imk__view_exists(v, count);
            if (rc == 0) {
                if (count < md.n || count > MAX_MESSAGES) {
                    push(&md.expect, EV_PROBLEM, 0, 0, 0, 0);
                } else if (count > md.n) {
                    memset(md.m + md.n, 0, (count - md.n) * sizeof(msg));
                    push(&md.expect, EV_EXISTS, md.n, count, 0, 0);
                    md.n = count;
                }
            }
            break;
        }
        case 1: {
            uint32_t seq = take(&in);
            if (md.n > 255)
                seq = seq * (md.n / 200 + 1);
            rc = imk__view_expunge(v, seq);
            if (rc == 0) {
                if (seq == 0 || seq > md.n)
                    push(&md.expect, EV_PROBLEM, 0, 0, 0, 0);
                else
                    model_remove(&md, seq - 1);
            }
            break;
        }
        case 2: {
            imk_range r[4];
            size_t count = 1 + take(&in) % 4;
            for (size_t k = 0; k < count; k++) {
                unsigned a = take16(&in), z = take16(&in);
                r[k].first = a == 0 ? 0 : base + a;
                r[k].last = z == 0 ? 0 : z == 0xffff ? UINT32_MAX : base + z;
            }
            imk_seqset set = {count, r};
            rc = imk__view_vanished(v, &set);
            if (rc == 0) {
                uint32_t star = model_max_uid(&md);
                for (size_t k = 0; k < count; k++) {
                    uint32_t a = r[k].first ? r[k].first : star;
                    uint32_t z = r[k].last ? r[k].last : star;
                    if (a > z) {
                        uint32_t t = a;
                        a = z;
                        z = t;
                    }
                    for (uint32_t i = 0; i < md.n;) {
                        uint32_t u = md.m[i].uid;
                        if (u != 0 && u >= a && u <= z)
                            model_remove(&md, i);
                        else
                            i++;
                    }
                }
            }
            break;
        }
        case 3: {
            imk_fetch f;
            memset(&f, 0, sizeof(f));
            f.seq = take(&in);
            if (md.n > 255)
                f.seq = f.seq * (md.n / 200 + 1);
            unsigned items = take(&in);
            unsigned uid = take16(&in);
            unsigned fl = take(&in);
            unsigned ms = take(&in);
            imk_str flags[8];
            uint32_t mask = 0;
            if (items & 1) {
                f.present |= IMK_FETCH_UID;
                f.uid = uid == 0 ? 0 : base + uid;
            }
            if (items & 2) {
                f.present |= IMK_FETCH_FLAGS;
                for (unsigned k = 0; k < 8; k++)
                    if (fl & (1u << k)) {
                        flags[f.flags.count].data = spellings[k].name;
                        flags[f.flags.count++].len = strlen(spellings[k].name);
                        mask |= 1u << spellings[k].bit;
                    }
                if (items & 8) /* the same again: duplicates */
                    for (unsigned k = 0; k < 8 && f.flags.count < 8; k++)
                        if (fl & (1u << k)) {
                            flags[f.flags.count].data = spellings[k].name;
                            flags[f.flags.count++].len = strlen(spellings[k].name);
                        }
                f.flags.items = flags;
            }
            if (items & 4) {
                f.present |= IMK_FETCH_MODSEQ;
                f.modseq = (items & 16) ? UINT64_MAX - ms : ms;
            }
            rc = imk__view_fetch(v, &f);
            if (rc != 0)
                break;
            if (f.seq == 0 || f.seq > md.n) {
                push(&md.expect, EV_PROBLEM, 0, 0, 0, 0);
                break;
            }
            msg *m = &md.m[f.seq - 1];
            if (f.present & IMK_FETCH_UID) {
                int bad = f.uid == 0 || (m->uid != 0 && m->uid != f.uid);
                for (uint32_t i = 0; i < md.n && !bad && m->uid == 0; i++) {
                    uint32_t u = md.m[i].uid;
                    if (u != 0 && ((i < f.seq - 1 && u >= f.uid) || (i > f.seq - 1 && u <= f.uid)))
                        bad = 1;
                }
                if (bad) {
                    push(&md.expect, EV_PROBLEM, 0, 0, 0, 0);
                    break;
                }
                m->uid = f.uid;
            }
            int changed = 0;
            if ((f.present & IMK_FETCH_FLAGS) && (!m->known || m->mask != mask)) {
                m->known = 1;
                m->mask = mask;
                changed = 1;
            }
            if ((f.present & IMK_FETCH_MODSEQ) && m->modseq != f.modseq) {
                m->modseq = f.modseq;
                changed = 1;
            }
            if (changed)
                push(&md.expect, EV_FLAGS, f.seq, m->uid, m->known ? m->mask : 0, m->modseq);
            break;
        }
        case 4: {
            uint64_t value = take(&in) % 4;
            imk__view_set_uidvalidity(v, value);
            if (value == 0) {
                push(&md.expect, EV_PROBLEM, 0, 0, 0, 0);
            } else if (value != md.uidvalidity) {
                if (md.uidvalidity != 0) {
                    push(&md.expect, EV_UIDVALIDITY, md.uidvalidity, value, 0, 0);
                    md.n = 0;
                }
                md.uidvalidity = value;
            }
            break;
        }
        case 5:
            imk__view_reset(v);
            md.n = 0;
            md.uidvalidity = 0;
            break;
        case 6: {
            unsigned fl = take(&in);
            imk_str flags[8];
            size_t count = 0;
            for (unsigned k = 0; k < 8; k++)
                if (fl & (1u << k)) {
                    flags[count].data = spellings[k].name;
                    flags[count++].len = strlen(spellings[k].name);
                }
            imk_strlist l = {count, flags};
            size_t before = imk_view_flags(v).count;
            rc = (op & 8) ? imk__view_set_permanent_flags(v, &l) : imk__view_set_flags(v, &l);
            if (rc == 0 && !(op & 8) && imk_view_flags(v).count != count)
                abort();
            if (rc != 0 && imk_view_flags(v).count != before)
                abort();
            break;
        }
        default:
            fail_next = 1 + take(&in) % 4;
            continue;
        }
        if (fail_next != 0) {
            fa.fail_at = 0;
            fail_next = 0;
        } else if (rc != 0) {
            abort(); /* only a failing allocator may refuse */
        }
        if (rc != 0 && rc != IMK_ENOMEM)
            abort();
        compare(v, &md, &got);
    }
    imk__view_free(v);
    if (fa.live != 0)
        abort();
    free(got.e);
    free(md.expect.e);
    return 0;
}
