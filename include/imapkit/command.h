/* SPDX-License-Identifier: MIT */
/*
 * imapkit/command.h - building one IMAP command, safely.
 *
 * An imk_command turns typed arguments into the bytes of one command:
 *
 *     imk_command_begin(cmd, "A1", "LOGIN");
 *     imk_command_astring(cmd, user, strlen(user));
 *     imk_command_astring(cmd, password, strlen(password));
 *     imk_command_finish(cmd);
 *
 * Each appender knows the grammar of its argument and picks the form to
 * send: an atom where one is allowed, a quoted string, or a literal. The
 * promise that matters most (DESIGN.md section 8): no string given to any
 * appender can put CR, LF or NUL into a command line. Text that could is
 * either refused (atoms, flags, tokens: these are the programmer's words,
 * never user data) or sent as a literal, whose length prefix keeps the
 * server from reading it as protocol.
 *
 * The output is a list of segments. A synchronizing literal `{n}` obliges
 * the client to wait for the server's "+" continuation before sending the
 * literal's bytes, so a segment ends after each such announcement. With
 * LITERAL+ (any size) or LITERAL- (up to 4096 bytes, RFC 7888) the
 * non-synchronizing form `{n+}` is used and the command stays in one piece.
 * A literal whose bytes the caller sends itself (APPEND from a file) also
 * ends a segment, with the length of the gap.
 *
 * Errors: every function returns 0 on success or a negative IMK_E* code.
 * The first failure marks the command failed: later appenders return the
 * same code without doing anything, imk_command_finish() returns it too, and
 * imk_command_error() says what went wrong. So a sequence of appenders can be
 * checked once, at finish. Begin again to reuse the object.
 *
 * An imk_command is not thread-safe; use one per thread or lock around it.
 * Grammar references are to RFC 9051 section 9 unless noted.
 */
#ifndef IMAPKIT_COMMAND_H
#define IMAPKIT_COMMAND_H

#include "imapkit/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The command being built. Opaque; create with imk_command_new(). */
typedef struct imk_command imk_command;

#define IMK_ENCODER_OPTIONS_VERSION 1

/*
 * What the server allows, as negotiated by CAPABILITY and ENABLE. Zero
 * everywhere (or a NULL pointer) is plain IMAP4rev1/IMAP4rev2 without
 * extensions, which every server accepts. Initialise with
 * IMK_ENCODER_OPTIONS_INIT so that fields added in later versions start at 0.
 */
typedef struct imk_encoder_options {
    unsigned version;   /* IMK_ENCODER_OPTIONS_VERSION */
    int literal_plus;   /* LITERAL+: non-synchronizing literals of any size */
    int literal_minus;  /* LITERAL-: non-synchronizing only up to 4096 bytes */
    int utf8_accept;    /* UTF8=ACCEPT enabled: mailbox names go as UTF-8, not
                           modified UTF-7, and quoted strings may hold UTF-8 */
    int binary;         /* BINARY: literal8 (~{n}) allowed */
    size_t max_line;    /* longest command line (bytes between literals, not
                           counting literal data) before strings are sent as
                           literals; 0 = 8192 (RFC 7162 section 4) */
    size_t max_command; /* most bytes one command may take, excluding data
                           streamed by the caller; 0 = 16 MiB. Past it:
                           IMK_ELIMIT */
} imk_encoder_options;

#define IMK_ENCODER_OPTIONS_INIT                                                                   \
    {                                                                                              \
        IMK_ENCODER_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0                                              \
    }

/*
 * One piece of the command to write to the server, in order.
 *
 * After writing `data[0..len)`:
 *   - if `wait_continuation`, wait for the server's "+" continuation request
 *     (a tagged NO or BAD instead means the server refused the literal: the
 *     command is over, send nothing more of it);
 *   - then, if `stream_len` > 0, write exactly `stream_len` bytes of your own
 *     (the literal announced with imk_command_literal_stream());
 *   - then go on with the next segment.
 * The last segment ends with the command's CRLF and has neither flag.
 */
typedef struct imk_command_segment {
    const char *data;
    size_t len;
    int wait_continuation;
    uint64_t stream_len;
} imk_command_segment;

/*
 * Create a command builder. `opts` is copied (NULL = all extensions off);
 * `alloc` is copied too (NULL = malloc/realloc/free), and every allocation
 * of the command goes through it. On success *out owns the new object (free
 * it with imk_command_free()); on failure *out is set to NULL.
 * Returns 0, IMK_EINVAL (out is NULL, or opts->version is not
 * IMK_ENCODER_OPTIONS_VERSION), IMK_ENOMEM.
 */
IMK_API int imk_command_new(const imk_encoder_options *opts, const imk_allocator *alloc,
                            imk_command **out);

/* Free the command and everything it holds. NULL is a no-op. */
IMK_API void imk_command_free(imk_command *cmd);

/*
 * Start a new command, discarding whatever the object held (including a
 * failure). `tag` must be a valid tag (1*ASTRING-CHAR except "+"), `name`
 * one or more atoms separated by single spaces ("NOOP", "UID FETCH"). Both
 * are borrowed C strings, copied into the command.
 * Returns 0, IMK_EINVAL (bad tag or name; see imk_command_error()),
 * IMK_ELIMIT, IMK_ENOMEM.
 */
IMK_API int imk_command_begin(imk_command *cmd, const char *tag, const char *name);

/*
 * Argument appenders.
 *
 * Each appends one argument, preceded by a space unless it comes first in a
 * parenthesised list. String arguments are borrowed for the duration of the
 * call and copied; `data` need not be NUL-terminated where a length is
 * given. Every appender returns 0 or:
 *   IMK_EINVAL   the argument is not valid for its kind (detail in
 *                imk_command_error()), or a pointer argument is NULL;
 *   IMK_ESTATE   imk_command_begin() was not called, or the command is
 *                already finished;
 *   IMK_ELIMIT   the command would exceed max_command;
 *   IMK_ENOMEM   allocation failed;
 *   or the error of an earlier failure of the same command.
 * Other codes are listed with the function.
 */

/*
 * An atom: 1*ATOM-CHAR, i.e. printable US-ASCII except ( ) { SP % * " \ ].
 * For command keywords the program chooses: search keys (UNSEEN), fetch
 * items (FLAGS), status items, options. Never for user text: use
 * imk_command_astring() or imk_command_string() for that.
 */
IMK_API int imk_command_atom(imk_command *cmd, const char *atom);

/*
 * A programmer-supplied token that is more than an atom: fetch attributes
 * with sections and partials ("BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>"),
 * store items ("+FLAGS.SILENT"), flags (\Seen). The token is sent as is
 * after checking it cannot break the command: only printable US-ASCII and
 * SP, no "{" (which could forge a literal announcement), no leading or
 * trailing SP, and its ( ) [ ] and quotes balanced. IMK_EINVAL otherwise.
 */
IMK_API int imk_command_token(imk_command *cmd, const char *tok);

/*
 * A flag: a system or extension flag, "\" then an atom (\Seen, \Answered,
 * \Deleted, ...), or a keyword atom ($Forwarded, NonJunk). Flags have no
 * quoted or literal form in IMAP, so a keyword with SP or another
 * atom-special cannot be sent: IMK_EINVAL.
 */
IMK_API int imk_command_flag(imk_command *cmd, const char *flag);

/*
 * An astring (user names, passwords, header field names): sent as an atom
 * when every byte is an ASTRING-CHAR and it is not "NIL" in any case (which
 * some servers would read as nil); otherwise as a quoted string when it has
 * no CR, LF, NUL or 8-bit byte (8-bit is allowed when utf8_accept is on and
 * the data is valid UTF-8) and is at most 1024 bytes long and fits within
 * max_line; otherwise as a literal. Empty data is sent as "".
 * `data` may be NULL when len is 0.
 * IMK_EINVAL when the data contains NUL: no IMAP string can carry it (use a
 * binary literal with imk_command_literal() where the grammar allows one).
 * The detail message never quotes the data, which may be a password.
 */
IMK_API int imk_command_astring(imk_command *cmd, const char *data, size_t len);

/* A string (SEARCH text, ID values): as imk_command_astring() but never an
 * atom. Same errors. */
IMK_API int imk_command_string(imk_command *cmd, const char *data, size_t len);

/* An nstring: NIL when data is NULL, otherwise as imk_command_string(). */
IMK_API int imk_command_nstring(imk_command *cmd, const char *data, size_t len);

/*
 * A mailbox name given in UTF-8. Any case of "INBOX" is sent as INBOX.
 * Otherwise the name is encoded in modified UTF-7 (RFC 3501 section 5.1.3),
 * or, when utf8_accept is on, kept as UTF-8 (RFC 6855 section 3), and the
 * result is sent as an astring.
 * IMK_EUTF8 when the name is not valid UTF-8; IMK_EINVAL when it contains
 * NUL.
 */
IMK_API int imk_command_mailbox(imk_command *cmd, const char *utf8, size_t len);

/*
 * A LIST/LSUB pattern (list-mailbox): as imk_command_mailbox(), except that
 * the wildcards "%" and "*" may appear in the unquoted form. The wildcards
 * keep their meaning in every form. Same errors.
 */
IMK_API int imk_command_list_mailbox(imk_command *cmd, const char *pattern, size_t len);

/*
 * A number in decimal. IMK_ERANGE above 9223372036854775807, the largest
 * number64 (the protocol's widest number; most arguments are 32-bit, which
 * the caller knows better than the encoder).
 */
IMK_API int imk_command_number(imk_command *cmd, uint64_t n);

/*
 * A sequence set given as text, checked strictly: "$" alone (RFC 5182), or
 * comma-separated numbers and ranges (n, n:m, *, n:*) where each number is
 * 1..4294967295 without leading zeros. IMK_EINVAL otherwise.
 */
IMK_API int imk_command_seqset_text(imk_command *cmd, const char *set);

/*
 * A date as SEARCH takes it (date-text, e.g. 1-Feb-1994): year 1..9999,
 * month 1..12, a day that exists in that month. IMK_EINVAL otherwise.
 */
IMK_API int imk_command_date(imk_command *cmd, int year, int month, int day);

/*
 * A quoted date-time as APPEND takes it ("07-Jul-1996 02:44:25 -0700").
 * second may be 60 (a leap second); zone_minutes is the offset east of UTC,
 * -1439..1439 (-0700 is -420).
 * IMK_EINVAL for any field out of range.
 */
IMK_API int imk_command_datetime(imk_command *cmd, int year, int month, int day, int hour,
                                 int minute, int second, int zone_minutes);

/* Open a parenthesised list: "(". */
IMK_API int imk_command_list_begin(imk_command *cmd);

/* Close the innermost open list: ")". IMK_EINVAL when no list is open. */
IMK_API int imk_command_list_end(imk_command *cmd);

/*
 * A literal holding `data[0..len)`, whatever its contents: `{n}` (or
 * `{n+}`, see imk_encoder_options), or with `binary` a literal8 `~{n}`
 * (RFC 3516; RFC 6855 section 4 uses it for APPEND UTF8 too).
 * IMK_ENOTSUP when `binary` is set but neither the binary nor the
 * utf8_accept option is; IMK_EINVAL when a non-binary literal contains NUL
 * (CHAR8 excludes it) or data is NULL with len > 0.
 */
IMK_API int imk_command_literal(imk_command *cmd, const void *data, size_t len, int binary);

/*
 * Announce a literal of `len` bytes that the caller will send itself (for
 * APPEND from a file): the current segment ends after the announcement and
 * carries stream_len = len (see imk_command_segment). The caller is
 * responsible for the bytes: exactly `len` of them, no NUL unless `binary`.
 * IMK_ENOTSUP as for imk_command_literal(); IMK_ERANGE when len is above
 * the number64 maximum.
 */
IMK_API int imk_command_literal_stream(imk_command *cmd, uint64_t len, int binary);

/*
 * End the command: append CRLF and make the segments available. Returns 0,
 * the error of an earlier failure, IMK_EINVAL when a list is still open,
 * IMK_ESTATE without a begin (or when already finished), IMK_ELIMIT,
 * IMK_ENOMEM.
 */
IMK_API int imk_command_finish(imk_command *cmd);

/* The number of segments of a finished command; 0 when the command is not
 * finished or failed. */
IMK_API size_t imk_command_segment_count(const imk_command *cmd);

/*
 * Segment `i` of a finished command, or NULL when i is out of range. The
 * segment and the bytes it points to belong to the command and stay valid
 * until the next imk_command_begin() or imk_command_free().
 */
IMK_API const imk_command_segment *imk_command_segment_at(const imk_command *cmd, size_t i);

/*
 * Every byte built so far as one buffer (the whole command once finished),
 * without the data the caller streams itself. *len receives the length
 * when len is not NULL. Owned by the command, valid until the next call
 * that changes it; NUL-terminated, though literal data may contain NUL.
 * For tests and traces: traces must redact LOGIN and AUTHENTICATE payloads.
 */
IMK_API const char *imk_command_bytes(const imk_command *cmd, size_t *len);

/*
 * A human-readable description of the command's failure ("" when it has
 * not failed): what was wrong and what to do about it. Owned by the command,
 * valid until the next call on it.
 */
IMK_API const char *imk_command_error(const imk_command *cmd);

#ifdef __cplusplus
}
#endif

#endif
