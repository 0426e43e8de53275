/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_parse.c - parse throughput and allocations of the imapkit
 * reader, side by side with libetpan's IMAP parser on the same bytes in the
 * same run (DESIGN.md section 10).
 *
 * What is measured:
 *
 *   1. metadata stream: >= 100 MiB of generated FETCH responses (UID, FLAGS,
 *      INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, MODSEQ; see gen.h),
 *      generated once into memory.
 *        imapkit   imk_reader_feed() in 64 KiB pieces, imk_reader_next()
 *                  drained after each piece;
 *        libetpan  mailimap_response_data_parse() in a loop over the same
 *                  buffer (wrapped in an MMAPString, no copy), each result
 *                  freed with mailimap_response_data_free().
 *      Both are best of N runs (wall clock, CLOCK_MONOTONIC; process CPU
 *      time is printed beside it). Allocations: imapkit's own count
 *      (imk_reader_get_stats) in its steady state - a second pass over the
 *      whole stream through the same reader, once every buffer has grown
 *      to what the stream needs - and, for both parsers, every
 *      malloc/calloc/realloc call seen by the counting wrappers below.
 *
 *   2. body-literal stream: `* n FETCH (UID u BODY[] {size}\r\n...)` with
 *      literal sizes 10 KB .. 10 MB, >= 1 GiB of literal bytes in total (a
 *      256 MiB stream, --body-buffer, fed several times).
 *        memcpy    the same 64 KiB pieces copied into a 64 KiB buffer - the
 *                  floor of any reader that takes bytes from the network;
 *        imapkit   feed + next; BODY_CHUNK events point into the reader's
 *                  input buffer;
 *        libetpan  the same parse loop; it copies each literal whole.
 *      Every consumer reads one byte per 4 KiB of data it is given, so no
 *      work can be optimised away and all do the same.
 *
 * Before any timing, one untimed pass of each parser proves it parsed every
 * response: the count of FETCH responses, the sum of their UIDs, and (for
 * the metadata stream) the number of address entries and body-structure
 * nodes must equal what the generator wrote; each response must have all
 * seven items. A mismatch aborts the program with exit status 1 - a
 * baseline that silently stops early would be worthless.
 *
 * Allocation counting: this program defines malloc, calloc, realloc and
 * free itself and forwards to glibc's __libc_* entry points, which glibc
 * documents as a supported way to replace the allocator. libetpan.so and
 * the statically linked imapkit resolve to these definitions, so every
 * heap call of both parsers is seen. While no pass is being tracked, a
 * wrapper costs an increment, a test and a jump; building with
 * -DBENCH_NO_MALLOC_COUNT removes them, to measure even that.
 *
 * Figures: MB = 10^6 bytes; throughput is stream bytes (protocol and
 * literal bytes) divided by the best run's wall time.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#define GEN_EMBEDDED 1
#include "gen.c"

#include "imapkit/reader.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef IMK_HAVE_LIBETPAN
#include <libetpan/libetpan.h>

/* libetpan's parser entry point; mailimap_parser.h is not installed by
 * Debian's libetpan-dev, but the symbol is exported (1.9.4 signature). */
int mailimap_response_data_parse(mailstream *fd, MMAPString *buffer,
                                 struct mailimap_parser_context *parser_ctx, size_t *indx,
                                 struct mailimap_response_data **result, size_t progr_rate,
                                 progress_function *progr_fun);
#endif

/* ---------------------------------------------------------------------- */
/* Counting allocator                                                     */
/* ---------------------------------------------------------------------- */

static uint64_t heap_calls; /* malloc + calloc + realloc calls */
static int heap_track;      /* also follow live bytes (untimed passes only) */
static int64_t heap_live, heap_peak;

#ifndef BENCH_NO_MALLOC_COUNT
#define MALLOC_COUNTED 1

/* glibc's own allocator entry points (not in any header). */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);

static void track_add(void *p)
{
    if (p != NULL) {
        heap_live += (int64_t)malloc_usable_size(p);
        if (heap_live > heap_peak)
            heap_peak = heap_live;
    }
}

static void track_sub(void *p)
{
    if (p != NULL)
        heap_live -= (int64_t)malloc_usable_size(p);
}

/* Live-byte tracking, kept out of the common path below so that, while it
 * is off (every timed run), each wrapper is an increment, a test and a tail
 * call into glibc. */
static void *tracked_realloc(void *ptr, size_t size)
{
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    void *p = __libc_realloc(ptr, size);
    if (p != NULL || size == 0) { /* on failure ptr is untouched */
        heap_live -= (int64_t)old;
        track_add(p);
    }
    return p;
}

void *malloc(size_t size)
{
    heap_calls++;
    if (heap_track) {
        void *p = __libc_malloc(size);
        track_add(p);
        return p;
    }
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    heap_calls++;
    if (heap_track) {
        void *p = __libc_calloc(count, size);
        track_add(p);
        return p;
    }
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    heap_calls++;
    if (heap_track)
        return tracked_realloc(ptr, size);
    return __libc_realloc(ptr, size);
}

void free(void *ptr)
{
    if (heap_track)
        track_sub(ptr);
    __libc_free(ptr);
}
#else
/* Built with -DBENCH_NO_MALLOC_COUNT: the C library's allocator untouched,
 * to measure what the counting wrappers cost; malloc figures read 0. */
#define MALLOC_COUNTED 0
#endif

static void heap_track_start(void)
{
    heap_live = 0;
    heap_peak = 0;
    heap_track = 1;
}

static int64_t heap_track_stop(void)
{
    heap_track = 0;
    return heap_peak;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */
/* ---------------------------------------------------------------------- */

#define FEED_SIZE ((size_t)64 * 1024)
#define TOUCH_STRIDE 4096

static volatile uint64_t sink; /* results go here so nothing is optimised away */

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall clock: what the figures are computed from. */
static double now(void)
{
    return clock_seconds(CLOCK_MONOTONIC);
}

/* CPU time of this process, printed next to the wall time by --verbose: a
 * run whose wall time is well above its CPU time was preempted. */
static double cpu_now(void)
{
    return clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
}

/* The consumer's work on data handed to it: one byte per 4 KiB. */
static uint64_t touch(const char *p, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i += TOUCH_STRIDE)
        sum += (unsigned char)p[i];
    return sum;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_parse: %s%s%s\n", what, detail[0] ? ": " : "", detail);
    exit(1);
}

static int verbose;
static int with_libetpan = 1; /* --no-libetpan: imapkit alone, for profiling */

/* What one pass over a stream saw. */
typedef struct tally {
    uint64_t responses;  /* FETCH responses */
    uint64_t others;     /* any other response */
    uint64_t errors;     /* ERROR events / parse failures */
    uint64_t incomplete; /* FETCH responses without all expected items */
    uint64_t uid_sum;
    uint64_t addresses, body_nodes; /* verify passes only */
    uint64_t body_bytes, body_literals;
    uint64_t touched;
    /* allocations */
    uint64_t heap_calls;        /* wrapper: whole pass */
    uint64_t imk_allocs;        /* imapkit's own count: whole pass */
    uint64_t steady_responses;  /* responses after the warm-up mark */
    uint64_t steady_heap_calls; /* wrapper, after the mark */
    uint64_t steady_imk_allocs; /* imapkit's count, after the mark */
    int64_t peak_heap;
    double seconds;     /* wall clock */
    double cpu_seconds; /* process CPU time */
} tally;

/* Abort unless pass `t` saw exactly what the generator wrote. `deep`: the
 * pass also counted addresses and body-structure nodes. */
static void check(const char *who, const char *stream, const gen_stream *s, const tally *t,
                  int deep)
{
    char msg[512];
    if (t->errors != 0 || t->others != 0 || t->incomplete != 0) {
        snprintf(msg, sizeof(msg),
                 "%s on the %s stream: %llu errors, %llu unexpected responses, %llu FETCH "
                 "responses missing items",
                 who, stream, (unsigned long long)t->errors, (unsigned long long)t->others,
                 (unsigned long long)t->incomplete);
        die(msg, "");
    }
    if (t->responses != s->responses || t->uid_sum != s->uid_sum) {
        snprintf(msg, sizeof(msg),
                 "%s on the %s stream: %llu FETCH responses (UID sum %llu), generated %llu "
                 "(UID sum %llu)",
                 who, stream, (unsigned long long)t->responses, (unsigned long long)t->uid_sum,
                 (unsigned long long)s->responses, (unsigned long long)s->uid_sum);
        die(msg, "");
    }
    if (deep && (t->addresses != s->addresses || t->body_nodes != s->body_nodes)) {
        snprintf(msg, sizeof(msg),
                 "%s on the %s stream: %llu addresses and %llu body nodes, generated %llu and "
                 "%llu",
                 who, stream, (unsigned long long)t->addresses, (unsigned long long)t->body_nodes,
                 (unsigned long long)s->addresses, (unsigned long long)s->body_nodes);
        die(msg, "");
    }
    if (t->body_bytes != s->body_bytes) {
        snprintf(msg, sizeof(msg), "%s on the %s stream: %llu literal bytes, generated %llu", who,
                 stream, (unsigned long long)t->body_bytes, (unsigned long long)s->body_bytes);
        die(msg, "");
    }
}

/* ---------------------------------------------------------------------- */
/* imapkit                                                                */
/* ---------------------------------------------------------------------- */

#define META_ITEMS                                                                                 \
    (IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_MODSEQ | IMK_FETCH_INTERNALDATE |                 \
     IMK_FETCH_RFC822_SIZE | IMK_FETCH_ENVELOPE | IMK_FETCH_BODYSTRUCTURE)

static uint64_t kit_envelope_addresses(const imk_envelope *e)
{
    return e->from.count + e->sender.count + e->reply_to.count + e->to.count + e->cc.count +
           e->bcc.count;
}

static void kit_walk_body(const imk_body *b, tally *t)
{
    t->body_nodes++;
    if (b->envelope != NULL)
        t->addresses += kit_envelope_addresses(b->envelope);
    for (size_t i = 0; i < b->part_count; i++)
        kit_walk_body(&b->parts[i], t);
}

typedef struct kit_pass {
    tally *t;
    int verify;
    int metadata;
    uint64_t warm_mark; /* responses before the steady state */
    imk_reader *reader;
} kit_pass;

static void kit_mark_steady(kit_pass *p)
{
    imk_reader_stats st;
    imk_reader_get_stats(p->reader, &st);
    p->t->steady_responses = p->t->responses;
    p->t->steady_heap_calls = heap_calls;
    p->t->steady_imk_allocs = st.allocations;
}

static void kit_handle(kit_pass *p, const imk_event *ev)
{
    tally *t = p->t;
    switch (ev->type) {
    case IMK_EVENT_RESPONSE: {
        const imk_response *resp = ev->response;
        if (resp->kind != IMK_KIND_FETCH) {
            t->others++;
            break;
        }
        const imk_fetch *f = &resp->u.fetch;
        t->responses++;
        t->uid_sum += f->uid;
        if (p->metadata) {
            if ((f->present & META_ITEMS) != META_ITEMS)
                t->incomplete++;
            if (p->verify) {
                if (f->envelope != NULL)
                    t->addresses += kit_envelope_addresses(f->envelope);
                if (f->body != NULL)
                    kit_walk_body(f->body, t);
            }
        } else if (f->section_count != 1 || !f->sections[0].streamed) {
            t->incomplete++;
        }
        if (t->responses == p->warm_mark)
            kit_mark_steady(p);
        break;
    }
    case IMK_EVENT_BODY_BEGIN:
        t->body_literals++;
        break;
    case IMK_EVENT_BODY_CHUNK:
        t->body_bytes += ev->data.len;
        t->touched += touch(ev->data.data, ev->data.len);
        break;
    case IMK_EVENT_BODY_END:
        break;
    case IMK_EVENT_ERROR:
        if (t->errors++ == 0) {
            const imk_parse_error *e = ev->error;
            fprintf(stderr,
                    "bench_parse: imapkit: %s (%s) at stream offset %llu, response at %llu:\n"
                    "  %.*s\n",
                    e->message, imk_error_name(e->code), (unsigned long long)e->offset,
                    (unsigned long long)e->response_offset,
                    (int)(e->raw.len < 400 ? e->raw.len : 400), e->raw.data);
        }
        break;
    }
}

/* Drain every ready event; returns the number handled. */
static uint64_t kit_drain(kit_pass *p)
{
    imk_event ev;
    uint64_t n = 0;
    int rc;
    while ((rc = imk_reader_next(p->reader, &ev)) == 1) {
        kit_handle(p, &ev);
        n++;
    }
    if (rc < 0)
        die("imapkit: fatal reader error", imk_reader_error(p->reader));
    return n;
}

/* One pass of imapkit over `rounds` copies of the stream. The steady state
 * starts after `warm` responses (0: after the first 10%). */
static void kit_run_warm(const gen_stream *s, unsigned rounds, int metadata, int verify,
                         uint64_t warm, tally *t)
{
    memset(t, 0, sizeof(*t));
    kit_pass p;
    memset(&p, 0, sizeof(p));
    p.t = t;
    p.verify = verify;
    p.metadata = metadata;
    p.warm_mark = warm != 0 ? warm : s->responses * rounds / 10 + 1;
    if (verify)
        heap_track_start();
    uint64_t calls0 = heap_calls;
    double c0 = cpu_now();
    double t0 = now();
    if (imk_reader_new(NULL, NULL, &p.reader) != 0)
        die("imapkit: imk_reader_new failed", "");
    for (unsigned round = 0; round < rounds; round++) {
        const char *data = s->data;
        size_t left = s->len;
        while (left > 0) {
            size_t piece = left < FEED_SIZE ? left : FEED_SIZE;
            size_t n = imk_reader_feed(p.reader, data, piece);
            data += n;
            left -= n;
            if (kit_drain(&p) == 0 && n == 0)
                die("imapkit: no progress (input buffer full, no event)", "");
        }
    }
    imk_reader_eof(p.reader);
    kit_drain(&p);
    imk_reader_stats st;
    imk_reader_get_stats(p.reader, &st);
    t->imk_allocs = st.allocations;
    if (st.errors != t->errors)
        die("imapkit: stats.errors differs from the ERROR events seen", "");
    if (t->steady_responses == 0) /* a tiny stream: no warm-up mark reached */
        kit_mark_steady(&p);
    t->steady_responses = t->responses - t->steady_responses;
    t->steady_heap_calls = heap_calls - t->steady_heap_calls;
    t->steady_imk_allocs = st.allocations - t->steady_imk_allocs;
    imk_reader_free(p.reader);
    t->seconds = now() - t0;
    t->cpu_seconds = cpu_now() - c0;
    t->heap_calls = heap_calls - calls0;
    if (verify)
        t->peak_heap = heap_track_stop();
    sink += t->touched + t->uid_sum;
}

static void kit_run(const gen_stream *s, unsigned rounds, int metadata, int verify, tally *t)
{
    kit_run_warm(s, rounds, metadata, verify, 0, t);
}

/* ---------------------------------------------------------------------- */
/* libetpan                                                               */
/* ---------------------------------------------------------------------- */

#ifdef IMK_HAVE_LIBETPAN

enum {
    ETP_UID = 1,
    ETP_FLAGS = 2,
    ETP_DATE = 4,
    ETP_SIZE = 8,
    ETP_ENV = 16,
    ETP_BODY = 32,
    ETP_MODSEQ = 64,
    ETP_SECTION = 128
};
#define ETP_META (ETP_UID | ETP_FLAGS | ETP_DATE | ETP_SIZE | ETP_ENV | ETP_BODY | ETP_MODSEQ)

static uint64_t etp_list_count(clist *l)
{
    return l != NULL ? (uint64_t)clist_count(l) : 0;
}

static uint64_t etp_envelope_addresses(const struct mailimap_envelope *e)
{
    uint64_t n = 0;
    if (e->env_from != NULL)
        n += etp_list_count(e->env_from->frm_list);
    if (e->env_sender != NULL)
        n += etp_list_count(e->env_sender->snd_list);
    if (e->env_reply_to != NULL)
        n += etp_list_count(e->env_reply_to->rt_list);
    if (e->env_to != NULL)
        n += etp_list_count(e->env_to->to_list);
    if (e->env_cc != NULL)
        n += etp_list_count(e->env_cc->cc_list);
    if (e->env_bcc != NULL)
        n += etp_list_count(e->env_bcc->bcc_list);
    return n;
}

static void etp_walk_body(const struct mailimap_body *b, tally *t)
{
    t->body_nodes++;
    if (b->bd_type == MAILIMAP_BODY_MPART) {
        for (clistiter *it = clist_begin(b->bd_data.bd_body_mpart->bd_list); it != NULL;
             it = it->next)
            etp_walk_body(it->data, t);
    } else if (b->bd_data.bd_body_1part->bd_type == MAILIMAP_BODY_TYPE_1PART_MSG) {
        const struct mailimap_body_type_msg *m = b->bd_data.bd_body_1part->bd_data.bd_type_msg;
        t->addresses += etp_envelope_addresses(m->bd_envelope);
        etp_walk_body(m->bd_body, t);
    }
}

/* Look at one parsed response the way a client would take its items. */
static void etp_handle(const struct mailimap_response_data *rd, int metadata, int verify, tally *t)
{
    if (rd->rsp_type != MAILIMAP_RESP_DATA_TYPE_MESSAGE_DATA ||
        rd->rsp_data.rsp_message_data->mdt_type != MAILIMAP_MESSAGE_DATA_FETCH) {
        t->others++;
        return;
    }
    const struct mailimap_msg_att *att = rd->rsp_data.rsp_message_data->mdt_msg_att;
    unsigned seen = 0;
    for (clistiter *it = clist_begin(att->att_list); it != NULL; it = it->next) {
        const struct mailimap_msg_att_item *item = it->data;
        if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
            seen |= ETP_FLAGS;
            continue;
        }
        if (item->att_type == MAILIMAP_MSG_ATT_ITEM_EXTENSION) {
            seen |= ETP_MODSEQ; /* the only extension item in the stream */
            continue;
        }
        const struct mailimap_msg_att_static *st = item->att_data.att_static;
        switch (st->att_type) {
        case MAILIMAP_MSG_ATT_UID:
            seen |= ETP_UID;
            t->uid_sum += st->att_data.att_uid;
            break;
        case MAILIMAP_MSG_ATT_INTERNALDATE:
            seen |= ETP_DATE;
            break;
        case MAILIMAP_MSG_ATT_RFC822_SIZE:
            seen |= ETP_SIZE;
            break;
        case MAILIMAP_MSG_ATT_ENVELOPE:
            seen |= ETP_ENV;
            if (verify)
                t->addresses += etp_envelope_addresses(st->att_data.att_env);
            break;
        case MAILIMAP_MSG_ATT_BODYSTRUCTURE:
            seen |= ETP_BODY;
            if (verify)
                etp_walk_body(st->att_data.att_bodystructure, t);
            break;
        case MAILIMAP_MSG_ATT_BODY_SECTION: {
            const struct mailimap_msg_att_body_section *sec = st->att_data.att_body_section;
            seen |= ETP_SECTION;
            t->body_literals++;
            t->body_bytes += sec->sec_length;
            if (sec->sec_body_part != NULL)
                t->touched += touch(sec->sec_body_part, sec->sec_length);
            break;
        }
        default:
            break;
        }
    }
    t->responses++;
    unsigned want = metadata ? ETP_META : (ETP_UID | ETP_SECTION);
    if ((seen & want) != want)
        t->incomplete++;
}

static void etp_run(const gen_stream *s, unsigned rounds, int metadata, int verify, tally *t)
{
    memset(t, 0, sizeof(*t));
    /* The stream buffer, seen as libetpan's string type without a copy; the
     * parser only reads str[0..len). */
    MMAPString buffer;
    memset(&buffer, 0, sizeof(buffer));
    buffer.str = s->data;
    buffer.len = s->len;
    buffer.allocated_len = s->cap;
    buffer.fd = -1;
    if (verify)
        heap_track_start();
    uint64_t calls0 = heap_calls;
    double c0 = cpu_now();
    double t0 = now();
    mailimap *session = mailimap_new(0, NULL);
    struct mailimap_parser_context *ctx = mailimap_parser_context_new(session);
    if (session == NULL || ctx == NULL)
        die("libetpan: cannot create a session", "");
    for (unsigned round = 0; round < rounds; round++) {
        size_t indx = 0;
        while (indx < s->len) {
            struct mailimap_response_data *rd = NULL;
            size_t at = indx;
            int rc = mailimap_response_data_parse(NULL, &buffer, ctx, &indx, &rd, 0, NULL);
            if (rc != MAILIMAP_NO_ERROR || indx <= at) {
                char where[600];
                snprintf(where, sizeof(where), "error %d at offset %zu, response %llu:\n  %.400s",
                         rc, at, (unsigned long long)t->responses + 1, s->data + at);
                die("libetpan: mailimap_response_data_parse failed", where);
            }
            etp_handle(rd, metadata, verify, t);
            mailimap_response_data_free(rd);
        }
    }
    mailimap_parser_context_free(ctx);
    mailimap_free(session);
    t->seconds = now() - t0;
    t->cpu_seconds = cpu_now() - c0;
    t->heap_calls = heap_calls - calls0;
    if (verify)
        t->peak_heap = heap_track_stop();
    sink += t->touched + t->uid_sum;
}

#endif

/* ---------------------------------------------------------------------- */
/* memcpy floor                                                           */
/* ---------------------------------------------------------------------- */

static void memcpy_run(const gen_stream *s, unsigned rounds, char *scratch, tally *t)
{
    memset(t, 0, sizeof(*t));
    double c0 = cpu_now();
    double t0 = now();
    for (unsigned round = 0; round < rounds; round++) {
        const char *data = s->data;
        size_t left = s->len;
        while (left > 0) {
            size_t piece = left < FEED_SIZE ? left : FEED_SIZE;
            memcpy(scratch, data, piece);
            t->touched += touch(scratch, piece);
            data += piece;
            left -= piece;
        }
    }
    t->seconds = now() - t0;
    t->cpu_seconds = cpu_now() - c0;
    sink += t->touched;
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                 */
/* ---------------------------------------------------------------------- */

typedef void run_fn(const gen_stream *s, unsigned rounds, int metadata, int verify, tally *t);

static double mbps(uint64_t bytes, double seconds)
{
    return seconds > 0 ? (double)bytes / 1e6 / seconds : 0.0;
}

/* The counters of `k` copies of stream `s` (what a pass over them must see). */
static gen_stream repeated(const gen_stream *s, unsigned k)
{
    gen_stream r = *s;
    r.responses *= k;
    r.uid_sum *= k;
    r.addresses *= k;
    r.body_nodes *= k;
    r.body_bytes *= k;
    return r;
}

/* best: the run with the least wall time; its cpu_seconds is then replaced
 * by the least CPU time of all runs. */
static void keep_best(tally *best, const tally *t, int first)
{
    double cpu = t->cpu_seconds;
    if (!first && best->cpu_seconds < cpu)
        cpu = best->cpu_seconds;
    if (first || t->seconds < best->seconds)
        *best = *t;
    best->cpu_seconds = cpu;
}

static void print_run(const char *who, unsigned i, uint64_t bytes, const tally *t)
{
    if (verbose)
        printf("    run %u  %-8s %8.1f MB/s  (%.3f s wall, %.3f s cpu)\n", i + 1, who,
               mbps(bytes, t->seconds), t->seconds, t->cpu_seconds);
}

static const char *goal(int met)
{
    return met ? "goal met" : "GOAL MISSED";
}

static void fmt_bytes(char *out, size_t cap, int64_t n)
{
    if (n >= 10 * 1000 * 1000)
        snprintf(out, cap, "%.0f MB", (double)n / 1e6);
    else if (n >= 10 * 1000)
        snprintf(out, cap, "%.0f KB", (double)n / 1e3);
    else
        snprintf(out, cap, "%lld B", (long long)n);
}

static void bench_metadata(size_t mib, uint64_t seed, unsigned runs)
{
    gen_stream s;
    double g0 = now();
    if (gen_metadata(&s, seed, mib << 20) != 0)
        die("out of memory generating the metadata stream", "");
    double gen_s = now() - g0;
    printf("metadata stream: %.1f MB, %llu FETCH responses (%.0f bytes each; %llu addresses, "
           "%llu body parts, %llu literals)\n",
           (double)s.len / 1e6, (unsigned long long)s.responses,
           (double)s.len / (double)s.responses, (unsigned long long)s.addresses,
           (unsigned long long)s.body_nodes, (unsigned long long)s.literals);
    if (verbose)
        printf("    generated in %.2f s\n", gen_s);

    /* Untimed verification passes. imapkit reads the stream twice with one
     * reader: its steady state is the second pass, when every buffer has
     * reached the size the stream needs. */
    tally vi, bi;
    memset(&bi, 0, sizeof(bi));
    gen_stream twice = repeated(&s, 2);
    kit_run_warm(&s, 2, 1, 1, s.responses, &vi);
    check("imapkit", "metadata (twice)", &twice, &vi, 1);
    tally v10;
    kit_run(&s, 1, 1, 0, &v10);
    check("imapkit", "metadata", &s, &v10, 0);
#ifdef IMK_HAVE_LIBETPAN
    tally ve, be;
    memset(&ve, 0, sizeof(ve));
    memset(&be, 0, sizeof(be));
    if (with_libetpan) {
        etp_run(&s, 1, 1, 1, &ve);
        check("libetpan", "metadata", &s, &ve, 1);
    }
#endif
    for (unsigned i = 0; i < runs; i++) {
        tally t;
        kit_run(&s, 1, 1, 0, &t);
        check("imapkit", "metadata", &s, &t, 0);
        print_run("imapkit", i, s.len, &t);
        keep_best(&bi, &t, i == 0);
#ifdef IMK_HAVE_LIBETPAN
        if (with_libetpan) {
            etp_run(&s, 1, 1, 0, &t);
            check("libetpan", "metadata", &s, &t, 0);
            print_run("libetpan", i, s.len, &t);
            keep_best(&be, &t, i == 0);
        }
#endif
    }
    double imk_rate = mbps(s.len, bi.seconds), imk_cpu = mbps(s.len, bi.cpu_seconds);
    char peak[32];
    fmt_bytes(peak, sizeof(peak), vi.peak_heap);
    printf("                MB/s  (by CPU time)  allocations per response\n");
    printf("  imapkit   %8.1f  (%8.1f)    %6.2f in steady state (%llu in a second pass); first "
           "pass: %llu in all, %llu after its first 10%%; peak heap %s\n",
           imk_rate, imk_cpu, (double)vi.steady_imk_allocs / (double)vi.steady_responses,
           (unsigned long long)vi.steady_imk_allocs, (unsigned long long)v10.imk_allocs,
           (unsigned long long)v10.steady_imk_allocs, peak);
#ifdef IMK_HAVE_LIBETPAN
    if (!with_libetpan) {
        printf("  libetpan  (skipped: --no-libetpan)\n");
    } else {
        double etp_rate = mbps(s.len, be.seconds), etp_cpu = mbps(s.len, be.cpu_seconds);
        fmt_bytes(peak, sizeof(peak), ve.peak_heap);
        printf("  libetpan  %8.1f  (%8.1f)    %6.2f malloc calls; peak heap %s\n", etp_rate,
               etp_cpu, (double)ve.heap_calls / (double)ve.responses, peak);
        printf("  ratio     %7.2fx  (%7.2fx)    goal >= 3x libetpan: %s\n", imk_rate / etp_rate,
               imk_cpu / etp_cpu, goal(imk_rate >= 3 * etp_rate));
    }
#else
    printf("  libetpan  (not built: libetpan-dev was not found)\n");
#endif
    printf("  zero allocations per response in steady state: %s (%llu by the reader's count, "
           "%llu malloc calls, in %llu responses)\n",
           goal(vi.steady_imk_allocs == 0 && vi.steady_heap_calls == 0),
           (unsigned long long)vi.steady_imk_allocs, (unsigned long long)vi.steady_heap_calls,
           (unsigned long long)vi.steady_responses);
    gen_stream_free(&s);
}

static void bench_bodies(size_t total_mib, size_t buf_mib, uint64_t seed, unsigned runs)
{
    if (buf_mib > total_mib)
        buf_mib = total_mib;
    gen_stream s;
    if (gen_bodies(&s, seed, buf_mib << 20, 10000, 10000000) != 0)
        die("out of memory generating the body stream", "");
    unsigned rounds = (unsigned)((((uint64_t)total_mib << 20) + s.body_bytes - 1) / s.body_bytes);
    if (rounds == 0)
        rounds = 1;
    uint64_t bytes = (uint64_t)s.len * rounds;
    printf("body-literal stream: %.1f MB (%u x %.1f MB), %llu FETCH BODY[] literals of %.1f KB "
           ".. %.1f MB, %.1f MB of literal bytes\n",
           (double)bytes / 1e6, rounds, (double)s.len / 1e6,
           (unsigned long long)s.responses * rounds, (double)s.body_min / 1e3,
           (double)s.body_max / 1e6, (double)s.body_bytes * rounds / 1e6);

    /* the per-pass checks compare with `rounds` copies of the stream */
    gen_stream want = repeated(&s, rounds);

    char *scratch = malloc(FEED_SIZE);
    if (scratch == NULL)
        die("out of memory", "");
    tally vi, bi, bm;
    memset(&bi, 0, sizeof(bi));
    memset(&bm, 0, sizeof(bm));
    kit_run(&s, rounds, 0, 1, &vi);
    check("imapkit", "body-literal", &want, &vi, 0);
#ifdef IMK_HAVE_LIBETPAN
    tally ve, be;
    memset(&ve, 0, sizeof(ve));
    memset(&be, 0, sizeof(be));
    if (with_libetpan) {
        etp_run(&s, rounds, 0, 1, &ve);
        check("libetpan", "body-literal", &want, &ve, 0);
    }
#endif
    for (unsigned i = 0; i < runs; i++) {
        tally t;
        memcpy_run(&s, rounds, scratch, &t);
        print_run("memcpy", i, bytes, &t);
        keep_best(&bm, &t, i == 0);
        kit_run(&s, rounds, 0, 0, &t);
        check("imapkit", "body-literal", &want, &t, 0);
        print_run("imapkit", i, bytes, &t);
        keep_best(&bi, &t, i == 0);
#ifdef IMK_HAVE_LIBETPAN
        if (with_libetpan) {
            etp_run(&s, rounds, 0, 0, &t);
            check("libetpan", "body-literal", &want, &t, 0);
            print_run("libetpan", i, bytes, &t);
            keep_best(&be, &t, i == 0);
        }
#endif
    }
    double mem_rate = mbps(bytes, bm.seconds), mem_cpu = mbps(bytes, bm.cpu_seconds);
    double imk_rate = mbps(bytes, bi.seconds), imk_cpu = mbps(bytes, bi.cpu_seconds);
    char peak[32];
    printf("                MB/s  (by CPU time)\n");
    printf("  memcpy    %8.1f  (%8.1f)    64 KiB pieces copied into a 64 KiB buffer\n", mem_rate,
           mem_cpu);
    fmt_bytes(peak, sizeof(peak), vi.peak_heap);
    printf("  imapkit   %8.1f  (%8.1f)    %.2f x memcpy (goal > 0.5: %s); peak heap %s; %.2f "
           "malloc calls/response\n",
           imk_rate, imk_cpu, imk_rate / mem_rate, goal(imk_rate > 0.5 * mem_rate), peak,
           (double)vi.heap_calls / (double)vi.responses);
#ifdef IMK_HAVE_LIBETPAN
    if (!with_libetpan) {
        printf("  libetpan  (skipped: --no-libetpan)\n");
    } else {
        double etp_rate = mbps(bytes, be.seconds), etp_cpu = mbps(bytes, be.cpu_seconds);
        fmt_bytes(peak, sizeof(peak), ve.peak_heap);
        printf("  libetpan  %8.1f  (%8.1f)    %.2f x memcpy; peak heap %s; %.2f malloc "
               "calls/response\n",
               etp_rate, etp_cpu, etp_rate / mem_rate, peak,
               (double)ve.heap_calls / (double)ve.responses);
        printf("  ratio     %7.2fx  (%7.2fx)    imapkit / libetpan\n", imk_rate / etp_rate,
               imk_cpu / etp_cpu);
    }
#endif
    free(scratch);
    gen_stream_free(&s);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_parse [--quick] [--size MiB] [--body-size MiB] [--body-buffer MiB]\n"
            "                   [--runs N] [--seed N] [--verbose] [--no-libetpan]\n"
            "                   [--metadata-only | --bodies-only]\n"
            "  --size         metadata stream size (default 100 MiB; --quick: 10)\n"
            "  --body-size    literal bytes pushed through the body benchmark (default 1024 MiB;\n"
            "                 --quick: 64)\n"
            "  --body-buffer  size of the body stream generated, fed as many times as needed to\n"
            "                 reach --body-size (default 256 MiB)\n"
            "  --runs         timed runs per parser; the best is reported (default 3)\n");
    exit(2);
}

static size_t arg_size(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0 || v > 65536)
        usage();
    return (size_t)v;
}

int main(int argc, char **argv)
{
    size_t meta_mib = 100, body_mib = 1024, body_buf_mib = 256;
    unsigned runs = 3;
    uint64_t seed = 1;
    int do_meta = 1, do_bodies = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            meta_mib = 10;
            body_mib = 64;
        } else if (strcmp(a, "--size") == 0 && i + 1 < argc) {
            meta_mib = arg_size(argv[++i]);
        } else if (strcmp(a, "--body-size") == 0 && i + 1 < argc) {
            body_mib = arg_size(argv[++i]);
        } else if (strcmp(a, "--body-buffer") == 0 && i + 1 < argc) {
            body_buf_mib = arg_size(argv[++i]);
        } else if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            runs = (unsigned)arg_size(argv[++i]);
        } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = 1;
        } else if (strcmp(a, "--no-libetpan") == 0) {
            with_libetpan = 0;
        } else if (strcmp(a, "--metadata-only") == 0) {
            do_bodies = 0;
        } else if (strcmp(a, "--bodies-only") == 0) {
            do_meta = 0;
        } else {
            usage();
        }
    }
    printf("bench_parse: imapkit %s", imk_version());
#ifdef IMK_HAVE_LIBETPAN
    printf(" vs libetpan %d.%d", libetpan_get_version_major(), libetpan_get_version_minor());
#endif
    printf("; seed %llu, 64 KiB feeds, best of %u runs, MB = 10^6 bytes\n",
           (unsigned long long)seed, runs);
    if (!MALLOC_COUNTED)
        printf("(built with BENCH_NO_MALLOC_COUNT: malloc calls and peak heap are not counted)\n");
    if (do_meta)
        bench_metadata(meta_mib, seed, runs);
    if (do_bodies)
        bench_bodies(body_mib, body_buf_mib, seed + 1, runs);
    return 0;
}
