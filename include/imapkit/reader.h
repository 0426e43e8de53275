/* SPDX-License-Identifier: MIT */
/*
 * imapkit/reader.h - the sans-I/O response reader: bytes in, events out.
 *
 * The reader frames the server's byte stream into responses (lines and
 * literals), parses each into an imk_response (imapkit/response.h), and
 * delivers body-section literals (BODY[...], BINARY[...], RFC822,
 * RFC822.HEADER, RFC822.TEXT) as BEGIN / CHUNK / END events instead of
 * buffering them, so memory does not grow with message size.
 *
 *     imk_reader *r;
 *     imk_reader_new(NULL, NULL, &r);
 *     for (;;) {
 *         size_t room;
 *         char *space = imk_reader_buffer(r, &room);   // read() straight in
 *         ssize_t n = read(fd, space, room);
 *         imk_reader_commit(r, (size_t)n);             // or imk_reader_feed()
 *         imk_event ev;
 *         int rc;
 *         while ((rc = imk_reader_next(r, &ev)) == 1)
 *             handle(&ev);                             // valid until next call
 *         if (rc < 0) ... fatal: imk_reader_error(r) says why
 *     }
 *
 * A response that breaks a limit or does not parse produces one
 * IMK_EVENT_ERROR with its offset in the stream, a message and its first
 * bytes; the reader then continues with the next response. Only a loss of
 * framing that cannot be recovered is fatal.
 */
#ifndef IMAPKIT_READER_H
#define IMAPKIT_READER_H

#include "imapkit/common.h"
#include "imapkit/response.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Quirk switches (imk_reader_options.quirks). Each accepts one class of
 * real servers' deviations listed in QUIRKS.md; the same bits are reported
 * per response in imk_response.quirks when they were used. */
#define IMK_READER_QUIRKS_DEFAULT                                                                  \
    (IMK_QUIRK_TRAILING_SPACE | IMK_QUIRK_EXTRA_SPACES | IMK_QUIRK_MISSING_TEXT |                  \
     IMK_QUIRK_BARE_CODE | IMK_QUIRK_NUMBER_RANGE | IMK_QUIRK_NEGATIVE_NUMBER |                    \
     IMK_QUIRK_FLOAT_NUMBER | IMK_QUIRK_BODY_NIL | IMK_QUIRK_QUOTE_HEURISTIC |                     \
     IMK_QUIRK_ENVELOPE | IMK_QUIRK_ATOM_MAILBOX | IMK_QUIRK_CODE_TEXT | IMK_QUIRK_FETCH_TRAILER | \
     IMK_QUIRK_EMPTY_ITEM | IMK_QUIRK_ESEARCH_MODSEQ | IMK_QUIRK_CAPABILITY_SPACE |                \
     IMK_QUIRK_TAGGED_BYE)

#define IMK_READER_OPTIONS_VERSION 1

/*
 * Options. Zero-initialise, set `version`, change what you need; a zero
 * field means its default. Every limit bounds something the server
 * controls (DESIGN.md section 6).
 */
typedef struct imk_reader_options {
    unsigned version;         /* IMK_READER_OPTIONS_VERSION */
    size_t input_buffer_size; /* bytes buffered from the network: 64 KiB */
    size_t max_line_length;   /* one line between literals: 64 KiB */
    size_t max_literal_size;  /* a literal kept inline (not a body section): 16 MiB */
    size_t max_response_size; /* lines + inline literals of one response: 32 MiB */
    uint64_t max_body_size;   /* a streamed body-section literal: 2^62 */
    unsigned max_depth;       /* nesting of parenthesised lists: 64 */
    size_t max_list_items;    /* items in one list (flags, SEARCH numbers...): 1,000,000 */
    size_t max_parsed_size;   /* memory for the parsed form of one response: 64 MiB */
    unsigned quirks;          /* IMK_QUIRK_* accepted; 0 = IMK_READER_QUIRKS_DEFAULT.
                                 Set IMK_READER_STRICT to accept none. */
    int utf8_mailboxes;       /* UTF8=ACCEPT is enabled: mailbox names are UTF-8, not mUTF-7 */
} imk_reader_options;

/* Value for imk_reader_options.quirks meaning "no quirks at all". */
#define IMK_READER_STRICT 0x80000000u

typedef enum imk_event_type {
    IMK_EVENT_RESPONSE,   /* `response` is a complete parsed response */
    IMK_EVENT_BODY_BEGIN, /* a body-section literal starts: `body` describes it */
    IMK_EVENT_BODY_CHUNK, /* `data` holds the next bytes of that literal */
    IMK_EVENT_BODY_END,   /* the literal is complete (its FETCH response follows) */
    IMK_EVENT_ERROR       /* a malformed or over-limit response was skipped */
} imk_event_type;

/* Describes a streamed body-section literal (BODY_BEGIN/CHUNK/END). */
typedef struct imk_body_info {
    uint32_t seq; /* the FETCH's message sequence number */
    int has_uid;  /* UID seen before the literal in the same FETCH */
    uint32_t uid;
    imk_section_item item; /* BODY, BINARY, RFC822, ... */
    imk_str spec;          /* text between [ and ]; empty for RFC822* */
    int has_origin;
    uint64_t origin;
    uint64_t size; /* the literal's length */
    int binary;    /* literal8 */
} imk_body_info;

/* A malformed response (IMK_EVENT_ERROR). */
typedef struct imk_parse_error {
    int code;                 /* IMK_EPARSE, IMK_ELIMIT, IMK_ERANGE, ... */
    uint64_t offset;          /* stream offset of the offending byte */
    uint64_t response_offset; /* stream offset where the response began */
    const char *message;      /* what was wrong and what was expected */
    imk_str raw;              /* the response's first bytes (at most 1 KiB) */
} imk_parse_error;

typedef struct imk_event {
    imk_event_type type;
    const imk_response *response; /* RESPONSE */
    const imk_body_info *body;    /* BODY_BEGIN, BODY_CHUNK, BODY_END */
    imk_str data;                 /* BODY_CHUNK: points into the input buffer */
    const imk_parse_error *error; /* ERROR */
} imk_event;

typedef struct imk_reader imk_reader;

/* Create a reader. `opts` and `alloc` may be NULL for the defaults; both are
 * copied. Returns 0, IMK_EINVAL (bad version) or IMK_ENOMEM. */
IMK_API int imk_reader_new(const imk_reader_options *opts, const imk_allocator *alloc,
                           imk_reader **out);

/* Free the reader and everything it returned. NULL is a no-op. */
IMK_API void imk_reader_free(imk_reader *r);

/* Copy up to `len` bytes into the input buffer. Returns the number of bytes
 * taken (possibly fewer than len, 0 when the buffer is full: call
 * imk_reader_next() to drain events, then feed the rest). */
IMK_API size_t imk_reader_feed(imk_reader *r, const void *data, size_t len);

/* The free space of the input buffer, for reading from a socket without a
 * copy: write up to *room_out bytes there, then imk_reader_commit(). */
IMK_API char *imk_reader_buffer(imk_reader *r, size_t *room_out);
IMK_API int imk_reader_commit(imk_reader *r, size_t len);

/* The end of the stream has been reached: a response still incomplete is
 * reported as an IMK_EVENT_ERROR by the next imk_reader_next() calls. */
IMK_API void imk_reader_eof(imk_reader *r);

/*
 * Produce the next event. Returns 1 with *ev filled, 0 when more input is
 * needed, or a negative fatal code (IMK_ENOMEM, IMK_EPROTO). Everything *ev
 * points to is valid until the next call on this reader.
 */
IMK_API int imk_reader_next(imk_reader *r, imk_event *ev);

/* The detail of the last fatal error, or "" . */
IMK_API const char *imk_reader_error(const imk_reader *r);

/* Tell the reader that UTF8=ACCEPT is now enabled (mailbox names are then
 * taken as UTF-8). */
IMK_API void imk_reader_set_utf8(imk_reader *r, int on);

/* Statistics for tests and benchmarks. */
typedef struct imk_reader_stats {
    uint64_t bytes_in;    /* bytes fed so far */
    uint64_t responses;   /* RESPONSE events */
    uint64_t errors;      /* ERROR events */
    uint64_t allocations; /* calls to the allocator so far (all kinds) */
    size_t memory;        /* bytes currently held by the reader */
} imk_reader_stats;

IMK_API void imk_reader_get_stats(const imk_reader *r, imk_reader_stats *out);

#ifdef __cplusplus
}
#endif

#endif
