/* SPDX-License-Identifier: MIT */
/*
 * The JSON form of imapkit's responses: the output of `imapkit parse`.
 *
 * The schema is documented, with examples, in docs/json-schema.md; it is a
 * stable interface. In short: one JSON object per response, with `type`
 * ("untagged", "tagged", "continuation"), `tag`, `status`, `code`, `text` for
 * status responses, `name` and the parsed values for data responses, and
 * `quirks` when the server deviated from the grammar; a malformed response
 * becomes {"error": ..., "code": ..., "offset": ..., "raw": ...}.
 *
 * Two layers:
 *   - conversions (cli_json_response, cli_json_error, cli_json_value): one
 *     parsed object to one new json_t, nothing kept;
 *   - the collector: fed the reader's events in order, it gathers the bytes
 *     of streamed body sections (BODY_BEGIN / CHUNK / END) and attaches them
 *     to the FETCH response that follows, then hands each finished object to
 *     a sink. `imapkit parse` and the vector tests both drive a reader
 *     through cli_json_feed() / cli_json_finish(), so the tests check exactly
 *     what the tool prints.
 *
 * Every function returning json_t* returns a new reference (json_decref it)
 * or NULL when out of memory.
 */
#ifndef IMK_CLI_JSON_H
#define IMK_CLI_JSON_H

#include "imapkit/reader.h"
#include "imapkit/response.h"
#include "xalloc.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* Bytes as JSON: a string when they are valid UTF-8 (NUL included), else
 * {"base64": "..."}. */
json_t *cli_json_bytes(const char *data, size_t len);
/* An imk_str: null when NIL (data NULL), else as cli_json_bytes. */
json_t *cli_json_str(imk_str s);
/* An unsigned 64-bit number: an integer up to INT64_MAX, beyond that a
 * string of its decimal digits (jansson integers are signed 64-bit). */
json_t *cli_json_u64(uint64_t v);
/* A generic value tree: list -> array, atom/string/literal -> string,
 * number -> number, NIL -> null; a streamed literal -> {"size": n}. */
json_t *cli_json_value(const imk_value *v);

/* A body section's bytes collected from BODY events, for cli_json_fetch. */
typedef struct cli_json_body {
    uint64_t size; /* the literal's announced size */
    int kept;      /* the bytes are in `data` */
    int truncated; /* the bytes were dropped: size > max_body */
    cli_buf data;
} cli_json_body;

typedef struct cli_json_options {
    int no_body_data;  /* print only section sizes, never their bytes */
    uint64_t max_body; /* sections larger than this print "truncated": true */
} cli_json_options;

#define CLI_JSON_MAX_BODY_DEFAULT ((uint64_t)16 * 1024 * 1024)

/* One response. `bodies` are the streamed sections collected for it, in
 * order (they match the response's sections whose `streamed` is set); may
 * be NULL with count 0. `opts` may be NULL for the defaults. */
json_t *cli_json_response(const imk_response *r, const cli_json_body *bodies, size_t body_count,
                          const cli_json_options *opts);
/* A malformed response: {"error", "code", "offset", "response_offset", "raw"}. */
json_t *cli_json_error(const imk_parse_error *e);
/* A fatal reader error (negative return of imk_reader_next):
 * {"error", "code", "fatal": true, "offset"}. */
json_t *cli_json_fatal(int code, const char *detail, uint64_t offset);

/* Write `obj` as one compact line (UTF-8, not ASCII-escaped) plus "\n".
 * 0 or -1 (write error). */
int cli_json_write_line(FILE *f, const json_t *obj);
/* The same line appended to a buffer. 0 or -1 (out of memory). */
int cli_json_append_line(cli_buf *b, const json_t *obj);

/* ---- pieces for the other commands ---- */

/* Header text (a subject, a display name; never NIL) as a new JSON value
 * for people: e.g. RFC 2047 decoded. NULL when out of memory. */
typedef json_t *(*cli_json_text_fn)(imk_str raw);

/* An ENVELOPE as in `parse` output (null for NULL). With `decode`, the
 * subject and the address names go through it, and each address gains
 * "address": "mailbox@host" (null for group markers); without, the
 * strings are the raw ones, exactly as `parse` prints them. */
json_t *cli_json_envelope(const imk_envelope *e, cli_json_text_fn decode);
/* A BODY / BODYSTRUCTURE tree as in `parse` output (null for NULL). */
json_t *cli_json_bodystructure(const imk_body *b);
/* ISO 8601 with the zone offset: "1996-07-17T02:44:25-07:00". */
json_t *cli_json_datetime(const imk_datetime *d);
/* An array of strings (flags). */
json_t *cli_json_strlist(imk_strlist l);
/* A sequence set as compact IMAP text "1:3,7" (0 printed as "*"). */
json_t *cli_json_seqset(imk_seqset s);

/* ---- the collector ---- */

/* Receives each finished object; returns 0, or -1 to stop (the error is
 * passed back by cli_json_feed/finish as CLI_JSON_ESINK). The sink does not
 * own `obj`. */
typedef int (*cli_json_sink)(const json_t *obj, void *user);

#define CLI_JSON_ESINK (-1000)  /* the sink asked to stop */
#define CLI_JSON_ENOMEM (-1001) /* out of memory while converting */

typedef struct cli_json_collector {
    cli_json_options opts;
    cli_json_sink sink;
    void *user;
    cli_json_body *bodies; /* streamed sections waiting for their FETCH */
    size_t body_count, body_cap;
    uint64_t responses; /* objects for well-formed responses */
    uint64_t errors;    /* malformed responses (ERROR events) */
    int fatal;          /* the reader failed fatally (code), 0 if not */
} cli_json_collector;

/* `opts` may be NULL for the defaults. */
void cli_json_collector_init(cli_json_collector *c, const cli_json_options *opts,
                             cli_json_sink sink, void *user);
void cli_json_collector_free(cli_json_collector *c);

/* Handle one event: 0, CLI_JSON_ENOMEM or CLI_JSON_ESINK. */
int cli_json_event(cli_json_collector *c, const imk_event *ev);

/* Feed `len` bytes to the reader and pass every event that results to the
 * collector. 0 when all bytes were taken; negative on a fatal reader error
 * (IMK_E*, after a fatal object was sunk and c->fatal set), CLI_JSON_ENOMEM
 * or CLI_JSON_ESINK. */
int cli_json_feed(cli_json_collector *c, imk_reader *r, const void *data, size_t len);
/* The input has ended: tell the reader and drain the last events. */
int cli_json_finish(cli_json_collector *c, imk_reader *r);

#endif
