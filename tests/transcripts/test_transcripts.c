/* SPDX-License-Identifier: MIT */
/*
 * The transcript runner: drives the sans-I/O session (imapkit/session.h)
 * from the scripts in tests/transcripts/NN-name.txt (format: README.md there).
 *
 * Each transcript runs
 *   1. with every S: block fed whole;
 *   2. with every S: block fed one byte at a time;
 *   3. for each S: block and each position inside it, with that block fed
 *      in two parts split there (events drained after each part);
 *   4. under an allocator failing at the Nth allocation, N = 1, 2, ... until
 *      a run sees no failure: no crash, no leak (ASan), nothing checked
 *      about the events (they legitimately differ).
 * Runs 1-3 must each match the script exactly: the client bytes (C:), the
 * events in order (E:), and nothing more (no unexpected event, no output
 * left unchecked at the end).
 *
 * Usage: test_transcripts [FILE...]   (default: every tests/transcripts/NN-name.txt)
 * IMK_TRANSCRIPT_DUMP=1 prints what a whole-fed run produced, for writing
 * new transcripts (then check every line by hand against the RFCs: a
 * transcript that only records what the code does proves nothing).
 */
#define _POSIX_C_SOURCE 200809L

#include "imapkit/session.h"

#include "test.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Growable strings                                                    */
/* ------------------------------------------------------------------ */

typedef struct sbuf {
    char *data;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 128 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            abort();
        b->data = d;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void sb_free(sbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Bytes shown as text: printable ASCII as is (when quoted, the double
 * quote as \"), \r \n \t, everything else \xNN. */
static void sb_escaped(sbuf *b, const char *p, size_t n, int quote)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            sb_str(b, "\\r");
        else if (c == '\n')
            sb_str(b, "\\n");
        else if (c == '\t')
            sb_str(b, "\\t");
        else if (quote && c == '"')
            sb_str(b, "\\\"");
        else if (c < 0x20 || c >= 0x7f)
            sb_printf(b, "\\x%02x", c);
        else
            sb_add(b, &p[i], 1);
    }
}

static void sb_quoted(sbuf *b, imk_str s)
{
    if (s.data == NULL) {
        sb_str(b, "NIL");
        return;
    }
    sb_str(b, "\"");
    sb_escaped(b, s.data, s.len, 1);
    sb_str(b, "\"");
}

static void sb_imkstr(sbuf *b, imk_str s)
{
    if (s.data != NULL)
        sb_escaped(b, s.data, s.len, 0);
}

/* Decode S:/C: lines and action data. IMAP is full of backslashes (\Seen,
 * \Recent), so there are only two escapes: the four characters "\r\n" are
 * CRLF, and \xNN is the byte 0xNN. Everything else is as written. */
static void unescape(const char *in, sbuf *out)
{
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\\' && i + 4 <= n && in[i + 1] == 'r' && in[i + 2] == '\\' &&
            in[i + 3] == 'n') {
            sb_add(out, "\r\n", 2);
            i += 3;
            continue;
        }
        if (in[i] == '\\' && i + 4 <= n && in[i + 1] == 'x' && isxdigit((unsigned char)in[i + 2]) &&
            isxdigit((unsigned char)in[i + 3])) {
            char hex[3] = {in[i + 2], in[i + 3], 0};
            char v = (char)strtol(hex, NULL, 16);
            sb_add(out, &v, 1);
            i += 3;
            continue;
        }
        sb_add(out, &in[i], 1);
    }
}

/* ------------------------------------------------------------------ */
/* Scripts                                                             */
/* ------------------------------------------------------------------ */

typedef enum step_kind { STEP_S, STEP_C, STEP_A, STEP_E } step_kind;

typedef struct step {
    step_kind kind;
    sbuf data; /* S, C: decoded bytes; A, E: the text after "X: " */
    int line;
} step;

typedef struct script {
    const char *path;
    step *steps;
    size_t count;
    /* O: options */
    size_t max_output, max_ops, max_result_size;
    int preauth;
    int no_alloc_test;
} script;

static void script_free(script *sc)
{
    for (size_t i = 0; i < sc->count; i++)
        sb_free(&sc->steps[i].data);
    free(sc->steps);
}

static step *add_step(script *sc, step_kind kind, int line)
{
    step *st = realloc(sc->steps, (sc->count + 1) * sizeof(*st));
    if (st == NULL)
        abort();
    sc->steps = st;
    st = &sc->steps[sc->count++];
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    st->line = line;
    return st;
}

static int load_script(const char *path, script *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->path = path;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (n < 2 || line[1] != ':' || (n > 2 && line[2] != ' ')) {
            fprintf(stderr, "%s:%d: expected 'X: ...'\n", path, lineno);
            rc = -1;
            break;
        }
        const char *text = n > 2 ? line + 3 : "";
        char k = line[0];
        if (k == 'O') {
            if (strncmp(text, "max_output=", 11) == 0)
                sc->max_output = (size_t)strtoul(text + 11, NULL, 10);
            else if (strncmp(text, "max_ops=", 8) == 0)
                sc->max_ops = (size_t)strtoul(text + 8, NULL, 10);
            else if (strncmp(text, "max_result_size=", 16) == 0)
                sc->max_result_size = (size_t)strtoul(text + 16, NULL, 10);
            else if (strcmp(text, "preauth_tunnel") == 0)
                sc->preauth = 1;
            else if (strcmp(text, "no_alloc_test") == 0)
                sc->no_alloc_test = 1;
            else {
                fprintf(stderr, "%s:%d: unknown option\n", path, lineno);
                rc = -1;
                break;
            }
            continue;
        }
        step_kind kind;
        if (k == 'S')
            kind = STEP_S;
        else if (k == 'C')
            kind = STEP_C;
        else if (k == 'A')
            kind = STEP_A;
        else if (k == 'E')
            kind = STEP_E;
        else {
            fprintf(stderr, "%s:%d: unknown line kind %c\n", path, lineno, k);
            rc = -1;
            break;
        }
        /* consecutive S: lines form one feed, consecutive C: lines one check */
        step *st;
        if ((kind == STEP_S || kind == STEP_C) && sc->count > 0 &&
            sc->steps[sc->count - 1].kind == kind)
            st = &sc->steps[sc->count - 1];
        else
            st = add_step(sc, kind, lineno);
        if (kind == STEP_S || kind == STEP_C) {
            unescape(text, &st->data);
        } else {
            sb_str(&st->data, text);
        }
    }
    free(line);
    fclose(f);
    if (rc < 0)
        script_free(sc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Rendering events and results                                        */
/* ------------------------------------------------------------------ */

static void render_code(sbuf *b, const imk_code *c)
{
    if (c == NULL)
        return;
    sb_str(b, " [");
    sb_imkstr(b, c->name);
    if (c->raw.len > 0) {
        sb_str(b, " ");
        sb_imkstr(b, c->raw);
    }
    sb_str(b, "]");
}

static void render_strlist(sbuf *b, const imk_strlist *l)
{
    sb_str(b, "(");
    for (size_t i = 0; i < l->count; i++) {
        if (i > 0)
            sb_str(b, " ");
        sb_imkstr(b, l->items[i]);
    }
    sb_str(b, ")");
}

static void render_seqset(sbuf *b, const imk_seqset *set)
{
    for (size_t i = 0; i < set->count; i++) {
        if (i > 0)
            sb_str(b, ",");
        const imk_range *r = &set->ranges[i];
        if (r->first == 0)
            sb_str(b, "*");
        else
            sb_printf(b, "%u", r->first);
        if (r->last != r->first) {
            if (r->last == 0)
                sb_str(b, ":*");
            else
                sb_printf(b, ":%u", r->last);
        }
    }
}

static const char *const MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void render_datetime(sbuf *b, const imk_datetime *d)
{
    int z = d->zone_minutes < 0 ? -d->zone_minutes : d->zone_minutes;
    const char *mon = d->month >= 1 && d->month <= 12 ? MONTHS[d->month - 1] : "???";
    sb_printf(b, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", d->day, mon, d->year, d->hour, d->minute,
              d->second, d->zone_minutes < 0 ? '-' : '+', z / 60, z % 60);
}

static void render_section_name(sbuf *b, imk_section_item item, imk_str spec, int has_origin,
                                uint64_t origin)
{
    sb_str(b, imk_section_item_name(item));
    if (item == IMK_SECTION_BODY || item == IMK_SECTION_BINARY || item == IMK_SECTION_BINARY_SIZE) {
        sb_str(b, "[");
        sb_imkstr(b, spec);
        sb_str(b, "]");
    }
    if (has_origin)
        sb_printf(b, "<%llu>", (unsigned long long)origin);
}

static void render_fetch(sbuf *b, const imk_fetch *f)
{
    sb_printf(b, "  fetch seq=%u", f->seq);
    if (f->present & IMK_FETCH_UID)
        sb_printf(b, " uid=%u", f->uid);
    if (f->present & IMK_FETCH_FLAGS) {
        sb_str(b, " flags=");
        render_strlist(b, &f->flags);
    }
    if (f->present & IMK_FETCH_MODSEQ)
        sb_printf(b, " modseq=%llu", (unsigned long long)f->modseq);
    if (f->present & IMK_FETCH_INTERNALDATE) {
        sb_str(b, " internaldate=\"");
        render_datetime(b, &f->internaldate);
        sb_str(b, "\"");
    }
    if (f->present & IMK_FETCH_RFC822_SIZE)
        sb_printf(b, " rfc822.size=%llu", (unsigned long long)f->rfc822_size);
    if ((f->present & IMK_FETCH_ENVELOPE) && f->envelope != NULL) {
        sb_str(b, " envelope.subject=");
        sb_quoted(b, f->envelope->subject);
    }
    for (size_t i = 0; i < f->section_count; i++) {
        const imk_fetch_section *s = &f->sections[i];
        sb_str(b, " ");
        render_section_name(b, s->item, s->spec, s->has_origin, s->origin);
        if (s->item == IMK_SECTION_BINARY_SIZE)
            sb_printf(b, "=%llu", (unsigned long long)s->size);
        else if (s->streamed)
            sb_printf(b, "=streamed:%llu", (unsigned long long)s->size);
        else {
            sb_str(b, "=");
            sb_quoted(b, s->data);
        }
    }
    for (size_t i = 0; i < f->extra_count; i++) {
        sb_str(b, " extra:");
        sb_imkstr(b, f->extras[i].name);
    }
    sb_str(b, "\n");
}

static void render_status_data(sbuf *b, const imk_status_data *st)
{
    static const struct {
        unsigned bit;
        const char *name;
    } items[] = {
        {IMK_STATUS_MESSAGES, "messages"},       {IMK_STATUS_UIDNEXT, "uidnext"},
        {IMK_STATUS_UIDVALIDITY, "uidvalidity"}, {IMK_STATUS_UNSEEN, "unseen"},
        {IMK_STATUS_RECENT, "recent"},           {IMK_STATUS_HIGHESTMODSEQ, "highestmodseq"}};
    const uint64_t vals[] = {st->messages, st->uidnext, st->uidvalidity,
                             st->unseen,   st->recent,  st->highestmodseq};
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++)
        if (st->present & items[i].bit)
            sb_printf(b, " %s=%llu", items[i].name, (unsigned long long)vals[i]);
}

static void render_thread_nodes(sbuf *b, const imk_thread_node *nodes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const imk_thread_node *n = &nodes[i];
        sb_str(b, "(");
        /* walk the chain iteratively */
        for (;;) {
            sb_printf(b, "%u", n->num);
            if (n->child_count == 1) {
                sb_str(b, " ");
                n = &n->children[0];
                continue;
            }
            if (n->child_count > 1) {
                sb_str(b, " ");
                render_thread_nodes(b, n->children, n->child_count);
            }
            break;
        }
        sb_str(b, ")");
    }
}

static void render_result(sbuf *b, const imk_result *r)
{
    for (size_t i = 0; i < r->fetch_count; i++)
        render_fetch(b, &r->fetches[i]);
    if (r->search.count > 0 || r->search.has_modseq) {
        sb_str(b, "  search");
        for (size_t i = 0; i < r->search.count; i++)
            sb_printf(b, " %u", r->search.numbers[i]);
        if (r->search.has_modseq)
            sb_printf(b, " (MODSEQ %llu)", (unsigned long long)r->search.modseq);
        sb_str(b, "\n");
    }
    if (r->thread.count > 0) {
        sb_str(b, "  thread ");
        render_thread_nodes(b, r->thread.roots, r->thread.count);
        sb_str(b, "\n");
    }
    if (r->esearch != NULL) {
        const imk_esearch *e = r->esearch;
        sb_str(b, "  esearch tag=");
        sb_quoted(b, e->tag);
        if (e->uid)
            sb_str(b, " UID");
        if (e->present & IMK_ESEARCH_MIN)
            sb_printf(b, " min=%u", e->min);
        if (e->present & IMK_ESEARCH_MAX)
            sb_printf(b, " max=%u", e->max);
        if (e->present & IMK_ESEARCH_COUNT)
            sb_printf(b, " count=%llu", (unsigned long long)e->count);
        if (e->present & IMK_ESEARCH_ALL) {
            sb_str(b, " all=");
            render_seqset(b, &e->all);
        }
        if (e->present & IMK_ESEARCH_MODSEQ)
            sb_printf(b, " modseq=%llu", (unsigned long long)e->modseq);
        sb_str(b, "\n");
    }
    for (size_t i = 0; i < r->list_count; i++) {
        const imk_list_entry *le = &r->lists[i];
        sb_str(b, "  list ");
        render_strlist(b, &le->list.attributes);
        if (le->list.delimiter >= 0)
            sb_printf(b, " \"%c\" ", le->list.delimiter);
        else
            sb_str(b, " NIL ");
        sb_quoted(b, le->list.mailbox);
        if (le->status != NULL) {
            sb_str(b, " status:");
            render_status_data(b, le->status);
        }
        sb_str(b, "\n");
    }
    for (size_t i = 0; i < r->status_count; i++) {
        sb_str(b, "  status ");
        sb_quoted(b, r->statuses[i].mailbox);
        render_status_data(b, &r->statuses[i]);
        sb_str(b, "\n");
    }
    if (r->namespace_ != NULL) {
        const imk_namespace *ns = r->namespace_;
        sb_printf(b, "  namespace personal=%zu other=%zu shared=%zu\n", ns->personal.count,
                  ns->other_users.count, ns->shared.count);
    }
    if (r->id != NULL) {
        sb_str(b, "  id");
        for (size_t i = 0; i < r->id->fields.count; i++) {
            sb_str(b, " ");
            sb_imkstr(b, r->id->fields.items[i].name);
            sb_str(b, "=");
            sb_quoted(b, r->id->fields.items[i].value);
        }
        sb_str(b, "\n");
    }
    for (size_t i = 0; i < r->quota_count; i++) {
        sb_str(b, "  quota ");
        sb_quoted(b, r->quotas[i].root);
        for (size_t j = 0; j < r->quotas[i].count; j++) {
            const imk_quota_resource *q = &r->quotas[i].resources[j];
            sb_str(b, " ");
            sb_imkstr(b, q->name);
            sb_printf(b, "=%llu/%llu", (unsigned long long)q->usage, (unsigned long long)q->limit);
        }
        sb_str(b, "\n");
    }
    if (r->quotaroot != NULL) {
        sb_str(b, "  quotaroot ");
        sb_quoted(b, r->quotaroot->mailbox);
        sb_str(b, " ");
        render_strlist(b, &r->quotaroot->roots);
        sb_str(b, "\n");
    }
    for (size_t i = 0; i < r->metadata_count; i++) {
        sb_str(b, "  metadata ");
        sb_quoted(b, r->metadata[i].mailbox);
        for (size_t j = 0; j < r->metadata[i].entries.count; j++) {
            sb_str(b, " ");
            sb_imkstr(b, r->metadata[i].entries.items[j].name);
            sb_str(b, "=");
            sb_quoted(b, r->metadata[i].entries.items[j].value);
        }
        sb_str(b, "\n");
    }
    if (r->enabled.count > 0) {
        sb_str(b, "  enabled ");
        render_strlist(b, &r->enabled);
        sb_str(b, "\n");
    }
    if (r->capabilities.count > 0) {
        sb_str(b, "  capabilities ");
        render_strlist(b, &r->capabilities);
        sb_str(b, "\n");
    }
    if (r->acl != NULL) {
        sb_str(b, "  acl ");
        sb_quoted(b, r->acl->mailbox);
        for (size_t j = 0; j < r->acl->entries.count; j++) {
            sb_str(b, " ");
            sb_imkstr(b, r->acl->entries.items[j].name);
            sb_str(b, "=");
            sb_imkstr(b, r->acl->entries.items[j].value);
        }
        if (r->acl->rights.data != NULL) {
            sb_str(b, " rights=");
            sb_imkstr(b, r->acl->rights);
        }
        sb_str(b, "\n");
    }
    if (r->has_copyuid) {
        sb_printf(b, "  copyuid %llu ", (unsigned long long)r->uidvalidity);
        render_seqset(b, &r->source_uids);
        sb_str(b, " ");
        render_seqset(b, &r->dest_uids);
        sb_str(b, "\n");
    }
    if (r->has_appenduid) {
        sb_printf(b, "  appenduid %llu ", (unsigned long long)r->uidvalidity);
        render_seqset(b, &r->dest_uids);
        sb_str(b, "\n");
    }
    if (r->expunged_count > 0) {
        sb_str(b, "  expunged");
        for (size_t i = 0; i < r->expunged_count; i++)
            sb_printf(b, " %u", r->expunged_uids[i]);
        sb_str(b, "\n");
    }
}

/* A set member: 0 stands for `*`. */
static void render_uid(sbuf *b, uint32_t v)
{
    if (v == 0)
        sb_str(b, "*");
    else
        sb_printf(b, "%u", v);
}

static const char *tag_of(const imk_op *op)
{
    return op != NULL ? imk_op_tag(op) : "-";
}

/* One event as text lines (each ending in \n). Body chunks are coalesced
 * by the caller. */
static void render_event(sbuf *b, const imk_session_event *ev)
{
    switch (ev->type) {
    case IMK_SE_GREETING:
        sb_printf(b, "GREETING %s", imk_status_name(ev->status));
        render_code(b, ev->code);
        sb_str(b, " ");
        sb_quoted(b, ev->text);
        break;
    case IMK_SE_DONE: {
        const imk_result *r = imk_op_result(ev->op);
        sb_printf(b, "DONE %s %s", imk_op_tag(ev->op),
                  ev->status == IMK_STATUS_NONE ? "NONE" : imk_status_name(ev->status));
        render_code(b, ev->code);
        sb_str(b, " ");
        sb_quoted(b, ev->text);
        if (r == NULL) {
            sb_str(b, " NO-RESULT");
            break;
        }
        if (r->error != 0)
            sb_printf(b, " error=%s", imk_error_name(r->error));
        sb_str(b, "\n");
        render_result(b, r);
        return;
    }
    case IMK_SE_NOTICE:
        sb_printf(b, "NOTICE %s", imk_status_name(ev->status));
        render_code(b, ev->code);
        sb_str(b, " ");
        sb_quoted(b, ev->text);
        if (ev->alert)
            sb_str(b, " (alert)");
        break;
    case IMK_SE_PROGRESS:
        sb_printf(b, "PROGRESS %s", tag_of(ev->op));
        if (ev->has_count || ev->has_goal) {
            sb_str(b, " ");
            if (ev->has_count)
                sb_printf(b, "%llu", (unsigned long long)ev->count);
            else
                sb_str(b, "?");
            sb_str(b, "/");
            if (ev->has_goal)
                sb_printf(b, "%llu", (unsigned long long)ev->goal);
            else
                sb_str(b, "?");
        }
        sb_str(b, " ");
        sb_quoted(b, ev->text);
        break;
    case IMK_SE_EXISTS:
        sb_printf(b, "EXISTS %u->%llu", ev->old_count, (unsigned long long)ev->count);
        break;
    case IMK_SE_EXPUNGE:
        sb_printf(b, "EXPUNGE seq=%u uid=%u", ev->seq, ev->uid);
        break;
    case IMK_SE_FLAGS:
        sb_printf(b, "FLAGS seq=%u uid=%u ", ev->seq, ev->uid);
        render_strlist(b, &ev->flags);
        if (ev->modseq != 0)
            sb_printf(b, " modseq=%llu", (unsigned long long)ev->modseq);
        break;
    case IMK_SE_UIDVALIDITY:
        sb_printf(b, "UIDVALIDITY %llu->%llu", (unsigned long long)ev->old_uidvalidity,
                  (unsigned long long)ev->uidvalidity);
        break;
    case IMK_SE_UNSOLICITED: {
        sb_str(b, "UNSOLICITED ");
        imk_str raw = ev->response->raw;
        while (raw.len > 0 && (raw.data[raw.len - 1] == '\n' || raw.data[raw.len - 1] == '\r'))
            raw.len--;
        sb_imkstr(b, raw);
        break;
    }
    case IMK_SE_BODY_BEGIN:
        sb_printf(b, "BODY %s seq=%u", tag_of(ev->op), ev->body->seq);
        if (ev->body->has_uid)
            sb_printf(b, " uid=%u", ev->body->uid);
        sb_str(b, " ");
        render_section_name(b, ev->body->item, ev->body->spec, ev->body->has_origin,
                            ev->body->origin);
        sb_printf(b, " size=%llu", (unsigned long long)ev->body->size);
        break;
    case IMK_SE_BODY_CHUNK:
        break; /* coalesced by the caller */
    case IMK_SE_BODY_END:
        sb_printf(b, "BODY-END %s", tag_of(ev->op));
        break;
    case IMK_SE_CONTINUATION:
        sb_printf(b, "CONTINUATION %s ", tag_of(ev->op));
        sb_quoted(b, ev->text);
        break;
    case IMK_SE_IDLING:
        sb_printf(b, "IDLING %s", tag_of(ev->op));
        break;
    case IMK_SE_PROTOCOL_ERROR:
        sb_str(b, "PROTOCOL-ERROR ");
        if (ev->error != NULL)
            sb_printf(b, "%s ", imk_error_name(ev->error->code));
        sb_quoted(b, ev->text);
        break;
    case IMK_SE_BYE:
        sb_str(b, "BYE ");
        sb_quoted(b, ev->text);
        break;
    case IMK_SE_CLOSED:
        sb_str(b, "CLOSED");
        break;
    case IMK_SE_VANISHED:
        sb_printf(b, "VANISHED%s removed=%u uids=", ev->earlier ? " (EARLIER)" : "", ev->removed);
        for (size_t i = 0; i < ev->uids.count; i++) {
            const imk_range *rg = &ev->uids.ranges[i];
            sb_str(b, i ? "," : "");
            render_uid(b, rg->first);
            if (rg->first != rg->last) {
                sb_str(b, ":");
                render_uid(b, rg->last);
            }
        }
        break;
    case IMK_SE_FETCH:
        sb_printf(b, "FETCH seq=%u uid=%u", ev->seq, ev->uid);
        break;
    case IMK_SE_COMPRESSING:
        sb_str(b, "COMPRESSING");
        break;
    }
    sb_str(b, "\n");
}

/* ------------------------------------------------------------------ */
/* Running a script                                                    */
/* ------------------------------------------------------------------ */

typedef struct run {
    const script *sc;
    imk_session *s;
    int check;       /* compare against the script (not in alloc-failure runs) */
    int failed;      /* a mismatch was reported */
    int dead;        /* next() returned a fatal error */
    sbuf actual;     /* rendered lines not yet matched by E: */
    size_t consumed; /* bytes of `actual` already matched */
    sbuf chunk;      /* body chunk bytes being coalesced */
    int in_chunk;
    imk_op *ops[256]; /* live ops, for actions that name one by kind */
    size_t op_count;
    const char *mode;
} run;

static void run_fail(run *r, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void run_fail(run *r, int line, const char *fmt, ...)
{
    if (!r->check)
        return;
    r->failed = 1;
    fprintf(stderr, "%s:%d: [%s] ", r->sc->path, line, r->mode);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static void forget_op(run *r, const imk_op *op)
{
    for (size_t i = 0; i < r->op_count; i++) {
        if (r->ops[i] == op) {
            memmove(&r->ops[i], &r->ops[i + 1], (r->op_count - i - 1) * sizeof(r->ops[0]));
            r->op_count--;
            return;
        }
    }
}

static void flush_chunk(run *r)
{
    if (!r->in_chunk)
        return;
    sb_str(&r->actual, "BODY-DATA \"");
    sb_escaped(&r->actual, r->chunk.data != NULL ? r->chunk.data : "", r->chunk.len, 1);
    sb_str(&r->actual, "\"\n");
    r->chunk.len = 0;
    r->in_chunk = 0;
}

static void drain(run *r)
{
    if (r->dead)
        return;
    imk_session_event ev;
    int rc;
    while ((rc = imk_session_next(r->s, &ev)) == 1) {
        if (ev.type == IMK_SE_BODY_CHUNK) {
            sb_add(&r->chunk, ev.data.data, ev.data.len);
            r->in_chunk = 1;
            continue;
        }
        flush_chunk(r);
        render_event(&r->actual, &ev);
        if (ev.type == IMK_SE_DONE)
            forget_op(r, ev.op);
    }
    if (rc < 0) {
        flush_chunk(r);
        sb_printf(&r->actual, "FATAL %s ", imk_error_name(rc));
        const char *msg = imk_session_error(r->s);
        sb_quoted(&r->actual, (imk_str){msg, strlen(msg)});
        sb_str(&r->actual, "\n");
        r->dead = 1;
    }
}

static void feed(run *r, const char *p, size_t n)
{
    while (n > 0 && !r->dead) {
        size_t k = imk_session_feed(r->s, p, n);
        if (k == 0) {
            /* buffer full: events must be drained first; if that frees
             * nothing the reader is stuck, which is a failure */
            size_t before = r->actual.len;
            drain(r);
            k = imk_session_feed(r->s, p, n);
            if (k == 0) {
                if (r->actual.len == before && !r->dead)
                    run_fail(r, 0, "session takes no input and produces no event");
                return;
            }
        }
        p += k;
        n -= k;
    }
}

static void collect_output(run *r, sbuf *out)
{
    const char *data;
    size_t n;
    int guard = 0;
    while ((n = imk_session_output(r->s, &data)) > 0 && guard++ < 1000000) {
        sb_add(out, data, n);
        imk_session_sent(r->s, n);
    }
}

static void action_result(run *r, int rc)
{
    if (rc >= 0)
        return;
    sb_printf(&r->actual, "ERROR %s ", imk_error_name(rc));
    const char *msg = imk_session_error(r->s);
    sb_quoted(&r->actual, (imk_str){msg, strlen(msg)});
    sb_str(&r->actual, "\n");
}

static imk_op *last_op_of(run *r, imk_command_kind kind)
{
    for (size_t i = r->op_count; i > 0; i--)
        if (imk_op_kind(r->ops[i - 1]) == kind)
            return r->ops[i - 1];
    return NULL;
}

/* The next argument of an action: a word, a "quoted string" or a balanced
 * (parenthesised group). Returns its length, 0 at the end. */
static size_t next_arg(const char **p)
{
    while (**p == ' ')
        (*p)++;
    const char *s = *p;
    size_t i = 0;
    int depth = 0, quoted = 0;
    while (s[i] != '\0') {
        char c = s[i];
        if (quoted) {
            if (c == '\\' && s[i + 1] != '\0')
                i++;
            else if (c == '"')
                quoted = 0;
        } else if (c == '"') {
            quoted = 1;
        } else if (c == '(' || c == '[') {
            depth++;
        } else if (c == ')' || c == ']') {
            depth--;
        } else if (c == ' ' && depth == 0) {
            break;
        }
        i++;
    }
    return i;
}

static int kind_has_set(imk_command_kind k)
{
    switch (k) {
    case IMK_CMD_FETCH:
    case IMK_CMD_UID_FETCH:
    case IMK_CMD_STORE:
    case IMK_CMD_UID_STORE:
    case IMK_CMD_COPY:
    case IMK_CMD_UID_COPY:
    case IMK_CMD_MOVE:
    case IMK_CMD_UID_MOVE:
    case IMK_CMD_UID_EXPUNGE:
        return 1;
    default:
        return 0;
    }
}

static int kind_has_mailbox(imk_command_kind k)
{
    return k == IMK_CMD_SELECT || k == IMK_CMD_EXAMINE || k == IMK_CMD_STATUS;
}

/* One argument of a command action. Forms:
 *   lit:TEXT     a literal (escapes allowed)      stream:N  a streamed literal
 *   "TEXT"       imk_command_string               astr:TEXT imk_command_astring
 *   mbox:NAME    imk_command_mailbox              otherwise imk_command_token */
static int add_arg(imk_command *cmd, const char *a, size_t n)
{
    char *arg = strndup(a, n);
    if (arg == NULL)
        abort();
    int rc;
    sbuf tmp = {0};
    if (strncmp(arg, "lit:", 4) == 0 || strncmp(arg, "astr:", 5) == 0 ||
        strncmp(arg, "mbox:", 5) == 0) {
        const char *text = strchr(arg, ':') + 1;
        unescape(text, &tmp);
        const char *d = tmp.data != NULL ? tmp.data : "";
        if (arg[0] == 'l')
            rc = imk_command_literal(cmd, d, tmp.len, 0);
        else if (arg[0] == 'a')
            rc = imk_command_astring(cmd, d, tmp.len);
        else
            rc = imk_command_mailbox(cmd, d, tmp.len);
    } else if (strncmp(arg, "stream:", 7) == 0) {
        rc = imk_command_literal_stream(cmd, strtoull(arg + 7, NULL, 10), 0);
    } else if (arg[0] == '"' && n >= 2 && arg[n - 1] == '"') {
        arg[n - 1] = '\0';
        unescape(arg + 1, &tmp);
        rc = imk_command_string(cmd, tmp.data != NULL ? tmp.data : "", tmp.len);
    } else {
        rc = imk_command_token(cmd, arg);
    }
    sb_free(&tmp);
    free(arg);
    return rc;
}

static void do_command(run *r, const char *text)
{
    /* the longest verb that starts the text */
    imk_command_kind kind = IMK_CMD_COUNT_;
    size_t best = 0;
    for (int k = 0; k < IMK_CMD_COUNT_; k++) {
        const char *v = imk_command_kind_verb((imk_command_kind)k);
        size_t n = strlen(v);
        if (n > best && strncmp(text, v, n) == 0 && (text[n] == ' ' || text[n] == '\0')) {
            best = n;
            kind = (imk_command_kind)k;
        }
    }
    if (kind == IMK_CMD_COUNT_) {
        run_fail(r, 0, "unknown action: %s", text);
        return;
    }
    imk_op *op;
    int rc = imk_session_command(r->s, kind, &op);
    if (rc < 0) {
        action_result(r, rc);
        return;
    }
    const char *p = text + best;
    int first = 1;
    size_t n;
    while (rc == 0 && (n = next_arg(&p)) > 0) {
        if (first && kind_has_set(kind)) {
            char *set = strndup(p, n);
            if (set == NULL)
                abort();
            rc = imk_op_set(op, set);
            free(set);
        } else if (first && kind_has_mailbox(kind)) {
            sbuf name = {0};
            const char *a = p;
            size_t an = n;
            if (an >= 2 && a[0] == '"' && a[an - 1] == '"') {
                a++;
                an -= 2;
            }
            char *tmp = strndup(a, an);
            if (tmp == NULL)
                abort();
            unescape(tmp, &name);
            rc = imk_op_mailbox(op, name.data != NULL ? name.data : "", name.len);
            free(tmp);
            sb_free(&name);
        } else {
            rc = add_arg(imk_op_args(op), p, n);
        }
        first = 0;
        p += n;
    }
    if (rc < 0) {
        sb_printf(&r->actual, "ERROR %s ", imk_error_name(rc));
        const char *msg = imk_command_error(imk_op_args(op));
        sb_quoted(&r->actual, (imk_str){msg, strlen(msg)});
        sb_str(&r->actual, "\n");
        imk_op_discard(r->s, op);
        return;
    }
    rc = imk_session_submit(r->s, op);
    if (rc < 0) {
        action_result(r, rc);
        return;
    }
    if (r->op_count < sizeof(r->ops) / sizeof(r->ops[0]))
        r->ops[r->op_count++] = op;
}

static void do_action(run *r, const step *st)
{
    const char *text = st->data.data != NULL ? st->data.data : "";
    if (strcmp(text, "EOF") == 0) {
        imk_session_eof(r->s);
    } else if (strcmp(text, "IDLE-DONE") == 0) {
        imk_op *op = last_op_of(r, IMK_CMD_IDLE);
        if (op != NULL)
            action_result(r, imk_session_idle_done(r->s, op));
        else
            run_fail(r, st->line, "IDLE-DONE: no IDLE op");
    } else if (strncmp(text, "AUTH-RESPOND", 12) == 0) {
        imk_op *op = last_op_of(r, IMK_CMD_AUTHENTICATE);
        const char *d = text[12] == ' ' ? text + 13 : "";
        sbuf data = {0};
        unescape(d, &data);
        if (op != NULL)
            action_result(r, imk_session_auth_respond(r->s, op, data.data != NULL ? data.data : "",
                                                      data.len));
        else
            run_fail(r, st->line, "AUTH-RESPOND: no AUTHENTICATE op");
        sb_free(&data);
    } else if (strcmp(text, "AUTH-CANCEL") == 0) {
        imk_op *op = last_op_of(r, IMK_CMD_AUTHENTICATE);
        if (op != NULL)
            action_result(r, imk_session_auth_cancel(r->s, op));
        else
            run_fail(r, st->line, "AUTH-CANCEL: no AUTHENTICATE op");
    } else if (strcmp(text, "STARTTLS-DONE") == 0) {
        action_result(r, imk_session_starttls_done(r->s));
    } else if (strncmp(text, "STREAM ", 7) == 0) {
        sbuf data = {0};
        unescape(text + 7, &data);
        size_t k = imk_session_stream_write(r->s, data.data, data.len);
        if (k != data.len)
            sb_printf(&r->actual, "STREAM-SHORT %zu/%zu\n", k, data.len);
        sb_free(&data);
    } else {
        do_command(r, text);
    }
    drain(r);
}

/* Lines computed at check time: VIEW, MAILBOX, CAPS, ENABLED. */
static int render_query(run *r, const char *expect, sbuf *out)
{
    const imk_session *s = r->s;
    if (strncmp(expect, "VIEW", 4) == 0 && (expect[4] == ' ' || expect[4] == '\0')) {
        const imk_view *v = imk_session_view(s);
        uint32_t n = imk_view_exists(v);
        sb_printf(out, "VIEW exists=%u", n);
        for (uint32_t i = 1; i <= n; i++) {
            imk_view_message m;
            if (!imk_view_message_at(v, i, &m)) {
                sb_str(out, " ?");
                continue;
            }
            if (m.uid != 0)
                sb_printf(out, " %u=%u", i, m.uid);
            else
                sb_printf(out, " %u=?", i);
            if (m.flags_known)
                render_strlist(out, &m.flags);
            if (m.modseq != 0)
                sb_printf(out, "/%llu", (unsigned long long)m.modseq);
        }
        return 1;
    }
    if (strncmp(expect, "MAILBOX", 7) == 0) {
        static const char *const states[] = {"GREETING", "NOT_AUTHENTICATED", "AUTHENTICATED",
                                             "SELECTED", "LOGOUT"};
        const imk_view *v = imk_session_view(s);
        const char *mb = imk_session_mailbox(s);
        sb_printf(out, "MAILBOX %s ", states[imk_session_state(s)]);
        if (mb != NULL)
            sb_escaped(out, mb, strlen(mb), 0);
        else
            sb_str(out, "-");
        sb_printf(out, " uidvalidity=%llu uidnext=%llu highestmodseq=%llu ro=%d",
                  (unsigned long long)imk_view_uidvalidity(v),
                  (unsigned long long)imk_view_uidnext(v),
                  (unsigned long long)imk_view_highest_modseq(v), imk_view_read_only(v));
        imk_strlist fl = imk_view_flags(v), pf = imk_view_permanent_flags(v);
        if (fl.count > 0) {
            sb_str(out, " flags=");
            render_strlist(out, &fl);
        }
        if (pf.count > 0) {
            sb_str(out, " permanentflags=");
            render_strlist(out, &pf);
        }
        return 1;
    }
    int caps = strncmp(expect, "CAPS", 4) == 0;
    int enabled = strncmp(expect, "ENABLED", 7) == 0;
    if (caps || enabled) {
        /* "CAPS known +IDLE -LITERAL+": each name rendered with the sign
         * the session gives it */
        const char *p = expect + (caps ? 4 : 7);
        sb_str(out, caps ? "CAPS" : "ENABLED");
        if (caps)
            sb_str(out, imk_session_capabilities_known(s) ? " known" : " unknown");
        size_t n;
        while ((n = next_arg(&p)) > 0) {
            char *name = strndup(p, n);
            if (name == NULL)
                abort();
            p += n;
            if (strcmp(name, "known") == 0 || strcmp(name, "unknown") == 0) {
                free(name);
                continue;
            }
            const char *bare = (name[0] == '+' || name[0] == '-') ? name + 1 : name;
            int has = caps ? imk_session_has_capability(s, bare) : imk_session_is_enabled(s, bare);
            sb_printf(out, " %c%s", has ? '+' : '-', bare);
            free(name);
        }
        return 1;
    }
    if (strncmp(expect, "PENDING", 7) == 0) {
        sb_printf(out, "PENDING %zu", imk_session_pending(s));
        return 1;
    }
    return 0;
}

static void expect_line(run *r, const step *st)
{
    const char *expect = st->data.data != NULL ? st->data.data : "";
    sbuf q = {0};
    if (render_query(r, expect, &q)) {
        if (r->check && strcmp(q.data, expect) != 0)
            run_fail(r, st->line, "expected: %s\n      got: %s", expect, q.data);
        sb_free(&q);
        return;
    }
    const char *rest = r->actual.data != NULL ? r->actual.data + r->consumed : "";
    const char *nl = strchr(rest, '\n');
    if (nl == NULL) {
        run_fail(r, st->line, "expected: %s\n      got: (no more events)", expect);
        return;
    }
    size_t n = (size_t)(nl - rest);
    if (strlen(expect) != n || memcmp(expect, rest, n) != 0)
        run_fail(r, st->line, "expected: %s\n      got: %.*s", expect, (int)n, rest);
    r->consumed += n + 1;
}

typedef enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_SPLIT } feed_mode;

/* Run the script. In FEED_SPLIT mode, step `split_step` is fed in two parts
 * split at `split_at`. Returns 1 if it matched (or was not checked). */
static int run_script(const script *sc, feed_mode mode, size_t split_step, size_t split_at,
                      const imk_allocator *alloc, int check, int dump)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.sc = sc;
    r.check = check;
    char modebuf[64];
    if (mode == FEED_WHOLE)
        r.mode = check ? "whole" : "alloc";
    else if (mode == FEED_BYTES)
        r.mode = "byte by byte";
    else {
        snprintf(modebuf, sizeof(modebuf), "split line %d at %zu", sc->steps[split_step].line,
                 split_at);
        r.mode = modebuf;
    }
    imk_session_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_SESSION_OPTIONS_VERSION;
    o.max_output = sc->max_output;
    o.max_ops = sc->max_ops;
    o.max_result_size = sc->max_result_size;
    o.preauth_tunnel = sc->preauth;
    int rc = imk_session_new(&o, alloc, &r.s);
    if (rc < 0) {
        if (check)
            run_fail(&r, 0, "imk_session_new: %s", imk_error_name(rc));
        return !check;
    }
    for (size_t i = 0; i < sc->count; i++) {
        const step *st = &sc->steps[i];
        switch (st->kind) {
        case STEP_S: {
            const char *p = st->data.data;
            size_t n = st->data.len;
            if (mode == FEED_BYTES) {
                for (size_t k = 0; k < n; k++) {
                    feed(&r, p + k, 1);
                    drain(&r);
                }
            } else if (mode == FEED_SPLIT && i == split_step) {
                feed(&r, p, split_at);
                drain(&r);
                feed(&r, p + split_at, n - split_at);
                drain(&r);
            } else {
                feed(&r, p, n);
                drain(&r);
            }
            break;
        }
        case STEP_C: {
            sbuf out = {0};
            collect_output(&r, &out);
            if (check && (out.len != st->data.len ||
                          (out.len > 0 && memcmp(out.data, st->data.data, out.len) != 0))) {
                sbuf want = {0}, got = {0};
                sb_escaped(&want, st->data.data, st->data.len, 0);
                sb_escaped(&got, out.data != NULL ? out.data : "", out.len, 0);
                run_fail(&r, st->line, "client bytes differ\n  expected: %s\n       got: %s",
                         want.data, got.data != NULL ? got.data : "");
                sb_free(&want);
                sb_free(&got);
            }
            sb_free(&out);
            break;
        }
        case STEP_A:
            do_action(&r, st);
            break;
        case STEP_E:
            expect_line(&r, st);
            break;
        }
        if (r.failed)
            break;
    }
    if (!r.failed) {
        flush_chunk(&r);
        sbuf out = {0};
        if (!r.dead)
            collect_output(&r, &out);
        if (out.len > 0) {
            sbuf got = {0};
            sb_escaped(&got, out.data, out.len, 0);
            run_fail(&r, 0, "output not checked by any C: line: %s", got.data);
            sb_free(&got);
        }
        sb_free(&out);
        const char *rest = r.actual.data != NULL ? r.actual.data + r.consumed : "";
        if (*rest != '\0')
            run_fail(&r, 0, "events not expected by any E: line:\n%s", rest);
    }
    if (dump) {
        fprintf(stderr, "---- %s (whole)\n%s", sc->path,
                r.actual.data != NULL ? r.actual.data : "");
    }
    imk_session_free(r.s);
    sb_free(&r.actual);
    sb_free(&r.chunk);
    return !r.failed;
}

static void run_transcript(const char *path, int dump)
{
    script sc;
    if (load_script(path, &sc) < 0) {
        CHECK(0);
        return;
    }
    int ok = run_script(&sc, FEED_WHOLE, 0, 0, NULL, 1, dump);
    CHECK(ok);
    if (ok)
        CHECK(run_script(&sc, FEED_BYTES, 0, 0, NULL, 1, 0));
    for (size_t i = 0; ok && i < sc.count; i++) {
        if (sc.steps[i].kind != STEP_S)
            continue;
        for (size_t at = 1; ok && at < sc.steps[i].data.len; at++) {
            ok = run_script(&sc, FEED_SPLIT, i, at, NULL, 1, 0);
            CHECK(ok);
        }
    }
    /* allocation failure at every allocation: no crash, no leak */
    long alloc_runs = 0, splits = 0;
    for (size_t i = 0; i < sc.count; i++)
        if (sc.steps[i].kind == STEP_S && sc.steps[i].data.len > 1)
            splits += (long)sc.steps[i].data.len - 1;
    for (long n = 1; ok && !sc.no_alloc_test; n++) {
        alloc_runs++;
        failing_alloc fa;
        imk_allocator a = failing_allocator(&fa, n);
        run_script(&sc, FEED_WHOLE, 0, 0, &a, 0, 0);
        if (fa.live != 0) {
            fprintf(stderr, "%s: %ld blocks leaked when allocation %ld failed\n", path, fa.live, n);
            CHECK(0);
            break;
        }
        if (!fa.failed)
            break;
    }
    fprintf(stderr, "%s %s (%ld split runs, %ld allocation-failure runs)\n", ok ? "ok  " : "FAIL",
            path, splits, alloc_runs);
    script_free(&sc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int dump = getenv("IMK_TRANSCRIPT_DUMP") != NULL;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run_transcript(argv[i], dump);
        return test_finish();
    }
    const char *dir = "tests/transcripts";
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "cannot open %s (run from the source directory)\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".txt") != 0)
            continue;
        char **nn = realloc(names, (count + 1) * sizeof(*nn));
        if (nn == NULL)
            abort();
        names = nn;
        size_t len = strlen(dir) + 1 + n + 1;
        names[count] = malloc(len);
        if (names[count] == NULL)
            abort();
        snprintf(names[count], len, "%s/%s", dir, de->d_name);
        count++;
    }
    closedir(d);
    qsort(names, count, sizeof(*names), cmp_str);
    CHECK(count >= 12);
    for (size_t i = 0; i < count; i++) {
        run_transcript(names[i], dump);
        free(names[i]);
    }
    free(names);
    return test_finish();
}
