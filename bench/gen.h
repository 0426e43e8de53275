/* SPDX-License-Identifier: MIT */
/*
 * bench/gen.h - a deterministic generator of realistic IMAP server output,
 * the input of the parsing benchmarks (bench_parse.c).
 *
 * Two streams are produced, both held in one contiguous buffer so that every
 * parser under test reads exactly the same bytes:
 *
 *   metadata  untagged FETCH responses carrying UID, MODSEQ, FLAGS,
 *             INTERNALDATE, RFC822.SIZE, ENVELOPE and BODYSTRUCTURE, shaped
 *             like Dovecot, Gmail and an upper-case (Courier/Exchange-like)
 *             server write them: RFC 2047 encoded words in names and
 *             subjects, several recipients, groups, quoted strings with
 *             escapes, raw 8-bit subjects sent as literals, and body
 *             structures from a lone text part to multipart/mixed with
 *             attachments and a forwarded message/rfc822 nested inside;
 *   bodies    `* n FETCH (UID u BODY[] {size}\r\n<bytes>)\r\n`, the reply to
 *             UID FETCH BODY.PEEK[], with sizes spread log-uniformly
 *             between a minimum and a maximum (10 KB .. 10 MB in the
 *             benchmark) and mail-like bytes (headers, then base64 lines).
 *
 * The same seed always gives the same bytes (a private xoshiro256** PRNG;
 * nothing depends on the C library's rand() or on the locale). The
 * generator also counts what it wrote - responses, the sum of the UIDs,
 * address entries and body-structure nodes - so a benchmark can prove that a
 * parser really went through every response instead of stopping early.
 *
 * gen.c is also a small program of its own (bench_gen): it prints a summary
 * of the streams or writes one to stdout. bench_parse.c compiles the
 * generator into itself with GEN_EMBEDDED defined (the build turns every
 * bench/ *.c into one program, so there is no shared object to link).
 */
#ifndef IMK_BENCH_GEN_H
#define IMK_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

/* The body-structure shapes the metadata stream mixes (counted per stream). */
typedef enum gen_shape {
    GEN_SHAPE_PLAIN,       /* text/plain alone */
    GEN_SHAPE_HTML,        /* text/html alone */
    GEN_SHAPE_ALTERNATIVE, /* multipart/alternative: plain + html */
    GEN_SHAPE_RELATED,     /* alternative of plain + related(html, inline images) */
    GEN_SHAPE_MIXED,       /* multipart/mixed: a text part + 1..4 attachments */
    GEN_SHAPE_SIGNED,      /* multipart/signed: text + PGP/S-MIME signature */
    GEN_SHAPE_FORWARD,     /* mixed: text + a forwarded message/rfc822 (nested) */
    GEN_SHAPE_INVITE,      /* mixed: alternative + text/calendar + .ics */
    GEN_SHAPE_COUNT
} gen_shape;

/* A generated stream and what it contains. */
typedef struct gen_stream {
    char *data; /* the bytes; NUL-terminated (the NUL is not counted in len) */
    size_t len;
    size_t cap;
    uint64_t responses;          /* FETCH responses */
    uint64_t uid_sum;            /* sum of the UIDs of all responses */
    uint64_t addresses;          /* address entries of every ENVELOPE, nested ones included */
    uint64_t body_nodes;         /* BODYSTRUCTURE nodes, multiparts and nested ones included */
    uint64_t literals;           /* inline literals in the metadata stream (8-bit strings) */
    uint64_t encoded_words;      /* RFC 2047 encoded words written */
    uint64_t body_bytes;         /* body stream: bytes inside the BODY[] literals */
    uint64_t body_min, body_max; /* body stream: smallest and largest literal */
    uint64_t shapes[GEN_SHAPE_COUNT];
} gen_stream;

/*
 * Fill `s` (zeroed by the call) with metadata FETCH responses until at least
 * `target` bytes are written; the last response is always complete.
 * Returns 0, or -1 when memory runs out (s is then freed).
 */
int gen_metadata(gen_stream *s, uint64_t seed, size_t target);

/*
 * Fill `s` with body-literal FETCH responses until the literals hold at least
 * `target` bytes. Sizes are log-uniform in [min_size, max_size].
 * Returns 0, or -1 when memory runs out or the sizes make no sense.
 */
int gen_bodies(gen_stream *s, uint64_t seed, size_t target, size_t min_size, size_t max_size);

/* Release the stream's buffer; the counters are zeroed. NULL is a no-op. */
void gen_stream_free(gen_stream *s);

/* "multipart/alternative", ... for a gen_shape; "?" when out of range. */
const char *gen_shape_name(int shape);

#endif
