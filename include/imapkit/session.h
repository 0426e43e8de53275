/* SPDX-License-Identifier: MIT */
/*
 * imapkit/session.h - the sans-I/O IMAP session: commands in, bytes out;
 * bytes in, events and command results out. No socket, no clock.
 *
 *     imk_session *s;
 *     imk_session_new(NULL, NULL, &s);
 *     imk_op *op;
 *     imk_session_command(s, IMK_CMD_UID_FETCH, &op);   // tag + verb
 *     imk_op_set(op, "1:*");                            // set, recorded for attribution
 *     imk_command_token(imk_op_args(op), "(UID FLAGS)");
 *     imk_session_submit(s, op);
 *     loop:
 *         while (imk_session_output(s, &data, &len) > 0) { send(data, len); imk_session_sent(s,
 * len); } n = recv(...); imk_session_feed(s, buf, n);     // or imk_session_eof(s) while
 * (imk_session_next(s, &ev) == 1) handle(&ev);
 *
 * What the session guarantees (DESIGN.md sections 1, 4, 5):
 *   - every response is classified by its kind, never by what the client
 *     expects: untagged data is applied to the mailbox view first (EXISTS,
 *     EXPUNGE, VANISHED, FETCH flags/UID/MODSEQ, FLAGS, the codes), then
 *     given to the command that asked for it, or else delivered as an
 *     unsolicited event; untagged OK/NO/BAD never complete a command;
 *   - results are accumulated until the tagged completion: several FETCH
 *     responses for one message are merged into one record, several SEARCH
 *     lines into one list, ESEARCH is matched by its TAG;
 *   - commands are pipelined only where their untagged data cannot be
 *     confused and RFC 9051 section 5.5 allows it.
 *
 * Lifetimes: an imk_op belongs to the session. After its IMK_SE_DONE event
 * has been returned, the op and its result stay valid until the next call
 * of imk_session_next(); copy what you need. Everything an event points to
 * is likewise valid until the next imk_session_next() call.
 */
#ifndef IMAPKIT_SESSION_H
#define IMAPKIT_SESSION_H

#include "imapkit/command.h"
#include "imapkit/common.h"
#include "imapkit/reader.h"
#include "imapkit/response.h"
#include "imapkit/view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

/* X(enum suffix, verb as sent). */
#define IMK_COMMAND_TABLE(X)                                                                       \
    X(CAPABILITY, "CAPABILITY")                                                                    \
    X(NOOP, "NOOP")                                                                                \
    X(LOGOUT, "LOGOUT")                                                                            \
    X(STARTTLS, "STARTTLS")                                                                        \
    X(AUTHENTICATE, "AUTHENTICATE")                                                                \
    X(LOGIN, "LOGIN")                                                                              \
    X(ENABLE, "ENABLE")                                                                            \
    X(ID, "ID")                                                                                    \
    X(COMPRESS, "COMPRESS")                                                                        \
    X(SELECT, "SELECT")                                                                            \
    X(EXAMINE, "EXAMINE")                                                                          \
    X(CREATE, "CREATE")                                                                            \
    X(DELETE, "DELETE")                                                                            \
    X(RENAME, "RENAME")                                                                            \
    X(SUBSCRIBE, "SUBSCRIBE")                                                                      \
    X(UNSUBSCRIBE, "UNSUBSCRIBE")                                                                  \
    X(LIST, "LIST")                                                                                \
    X(LSUB, "LSUB")                                                                                \
    X(NAMESPACE, "NAMESPACE")                                                                      \
    X(STATUS, "STATUS")                                                                            \
    X(APPEND, "APPEND")                                                                            \
    X(IDLE, "IDLE")                                                                                \
    X(NOTIFY, "NOTIFY")                                                                            \
    X(CHECK, "CHECK")                                                                              \
    X(CLOSE, "CLOSE")                                                                              \
    X(UNSELECT, "UNSELECT")                                                                        \
    X(EXPUNGE, "EXPUNGE")                                                                          \
    X(UID_EXPUNGE, "UID EXPUNGE")                                                                  \
    X(SEARCH, "SEARCH")                                                                            \
    X(UID_SEARCH, "UID SEARCH")                                                                    \
    X(FETCH, "FETCH")                                                                              \
    X(UID_FETCH, "UID FETCH")                                                                      \
    X(STORE, "STORE")                                                                              \
    X(UID_STORE, "UID STORE")                                                                      \
    X(COPY, "COPY")                                                                                \
    X(UID_COPY, "UID COPY")                                                                        \
    X(MOVE, "MOVE")                                                                                \
    X(UID_MOVE, "UID MOVE")                                                                        \
    X(SORT, "SORT")                                                                                \
    X(UID_SORT, "UID SORT")                                                                        \
    X(THREAD, "THREAD")                                                                            \
    X(UID_THREAD, "UID THREAD")                                                                    \
    X(GETQUOTA, "GETQUOTA")                                                                        \
    X(GETQUOTAROOT, "GETQUOTAROOT")                                                                \
    X(SETQUOTA, "SETQUOTA")                                                                        \
    X(GETMETADATA, "GETMETADATA")                                                                  \
    X(SETMETADATA, "SETMETADATA")                                                                  \
    X(GETACL, "GETACL")                                                                            \
    X(SETACL, "SETACL")                                                                            \
    X(DELETEACL, "DELETEACL")                                                                      \
    X(LISTRIGHTS, "LISTRIGHTS")                                                                    \
    X(MYRIGHTS, "MYRIGHTS")

typedef enum imk_command_kind {
#define IMK_X_CMD(sfx, verb) IMK_CMD_##sfx,
    IMK_COMMAND_TABLE(IMK_X_CMD)
#undef IMK_X_CMD
        IMK_CMD_COUNT_
} imk_command_kind;

/* The verb of a command kind ("UID FETCH"). */
IMK_API const char *imk_command_kind_verb(imk_command_kind kind);

/* Connection state (RFC 9051 section 3). */
typedef enum imk_conn_state {
    IMK_STATE_GREETING, /* waiting for the server's greeting */
    IMK_STATE_NOT_AUTHENTICATED,
    IMK_STATE_AUTHENTICATED,
    IMK_STATE_SELECTED,
    IMK_STATE_LOGOUT /* BYE received or LOGOUT sent: nothing more is sent */
} imk_conn_state;

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* A LIST/LSUB entry with the STATUS that LIST-STATUS (RFC 5819) sent for
 * it during the same command (status NULL when none). */
typedef struct imk_list_entry {
    imk_list list;
    const imk_status_data *status;
} imk_list_entry;

/*
 * The result of a completed command. `status` is the tagged status (OK,
 * NO, BAD; BYE for a tagged BYE, QUIRKS Q16), or IMK_STATUS_NONE when the
 * command ended without a tagged response: then `error` is the negative
 * IMK_E* reason (IMK_ECLOSED: the connection closed or the server said BYE,
 * whose text is in `text`). A LOGOUT that the server answered with BYE and
 * then closed without a tagged OK got what it asked for: status NONE, error
 * 0, the BYE text. A command with a status may also carry an error when its
 * data could not all be kept (IMK_ELIMIT: max_result_size; IMK_ENOMEM): the
 * data fields then hold what was kept. Data fields are empty unless the
 * command's responses carried them.
 */
typedef struct imk_result {
    imk_status status;
    int error;
    const imk_code *code; /* the tagged response's code, or NULL */
    imk_str text;

    /* FETCH / UID FETCH / STORE / UID STORE: one merged record per message,
     * in the order the messages first appeared. Body sections that were
     * streamed appear with streamed = 1 (their bytes came as events). */
    size_t fetch_count;
    const imk_fetch *fetches;
    /* SEARCH / SORT (merged over every untagged line, server order) */
    imk_search search;
    imk_thread thread;          /* THREAD */
    const imk_esearch *esearch; /* ESEARCH matched by TAG, or NULL */
    size_t list_count;          /* LIST / LSUB */
    const imk_list_entry *lists;
    size_t status_count; /* STATUS (and LIST-STATUS ones not matched) */
    const imk_status_data *statuses;
    const imk_namespace *namespace_;
    const imk_id *id;
    size_t quota_count;
    const imk_quota *quotas;
    const imk_quotaroot *quotaroot;
    size_t metadata_count;
    const imk_metadata *metadata;
    imk_strlist enabled;      /* ENABLE: what ENABLED said */
    imk_strlist capabilities; /* CAPABILITY (response or code) */
    const imk_acl *acl;       /* GETACL, LISTRIGHTS, MYRIGHTS */
    /* COPYUID (COPY, MOVE: tagged code or untagged OK, QUIRKS Q14) and
     * APPENDUID (APPEND) */
    int has_copyuid, has_appenduid;
    uint64_t uidvalidity;
    imk_seqset source_uids, dest_uids;
    /* EXPUNGE / UID EXPUNGE / MOVE / UID MOVE / CLOSE: UIDs of the messages
     * that left the view while the command ran (0 where the UID was never
     * known), in arrival order */
    size_t expunged_count;
    const uint32_t *expunged_uids;
} imk_result;

typedef struct imk_op imk_op;

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

typedef enum imk_session_event_type {
    IMK_SE_GREETING,    /* the greeting arrived: `status` OK/PREAUTH/BYE, code, text */
    IMK_SE_DONE,        /* `op` completed: imk_op_result(op) */
    IMK_SE_NOTICE,      /* untagged OK/NO/BAD: status, code, text, alert */
    IMK_SE_PROGRESS,    /* progress of `op` (NULL if no single command runs) */
    IMK_SE_EXISTS,      /* the view grew: old_count, count */
    IMK_SE_EXPUNGE,     /* a message left the view: seq, uid (0 = unknown) */
    IMK_SE_FLAGS,       /* flags/modseq of message seq/uid changed: flags, modseq */
    IMK_SE_UIDVALIDITY, /* UIDVALIDITY changed: the view was emptied */
    IMK_SE_UNSOLICITED, /* `response`: data no command claimed (also NOTIFY data) */
    IMK_SE_BODY_BEGIN,  /* body section of `op` (or unsolicited, op NULL): body */
    IMK_SE_BODY_CHUNK,  /* body bytes: data */
    IMK_SE_BODY_END,
    IMK_SE_CONTINUATION, /* `op` (AUTHENTICATE) got a challenge: text (base64) */
    IMK_SE_IDLING,       /* the server accepted `op` (IDLE): call imk_session_idle_done() to end */
    IMK_SE_PROTOCOL_ERROR, /* malformed response (`error`) or impossible data (text) */
    IMK_SE_BYE,            /* the server announced it is closing: text */
    IMK_SE_CLOSED,         /* the stream ended; every outstanding op got IMK_SE_DONE */
    /* A VANISHED response (RFC 7162 section 3.2.10) removed `removed`
     * messages from the view; `uids` is the set as sent (UIDs not in the view
     * are ignored), `earlier` is set for VANISHED (EARLIER). One event per
     * response, not one per message: the server chooses how many UIDs one
     * VANISHED names, and the event queue must not grow with that. */
    IMK_SE_VANISHED,
    /* A FETCH record of `op`, which asked for imk_op_stream_fetch(): `fetch`
     * (one per FETCH response, as it arrives, not merged). */
    IMK_SE_FETCH,
    /* The server accepted COMPRESS (`op`): from its OK on, the server's bytes
     * are compressed. Call imk_session_compress_done() once the transport
     * inflates and deflates. */
    IMK_SE_COMPRESSING
} imk_session_event_type;

typedef struct imk_session_event {
    imk_session_event_type type;
    imk_op *op;
    imk_status status;
    const imk_code *code;
    imk_str text;
    int alert; /* NOTICE: [ALERT] - must be shown to the user (RFC 9051 7.1) */
    /* PROGRESS: RFC 9585 INPROGRESS count/goal when known; Dovecot 2.3's
     * plain text forms give only `text`. */
    int has_count, has_goal;
    uint64_t count, goal;
    /* EXISTS / EXPUNGE / FLAGS */
    uint32_t old_count, seq, uid;
    imk_strlist flags;
    uint64_t modseq;
    /* UIDVALIDITY: the new value and the one it replaced */
    uint64_t uidvalidity, old_uidvalidity;
    const imk_response *response; /* UNSOLICITED */
    const imk_body_info *body;    /* BODY_* */
    imk_str data;                 /* BODY_CHUNK */
    const imk_parse_error *error; /* PROTOCOL_ERROR from the reader */
    /* VANISHED */
    imk_seqset uids;
    int earlier;
    uint32_t removed;
    const imk_fetch *fetch; /* FETCH */
} imk_session_event;

/* ------------------------------------------------------------------ */
/* The session                                                         */
/* ------------------------------------------------------------------ */

#define IMK_SESSION_OPTIONS_VERSION 1

typedef struct imk_session_options {
    unsigned version;          /* IMK_SESSION_OPTIONS_VERSION */
    imk_reader_options reader; /* limits and quirks of the response reader */
    size_t max_output;         /* bytes of queued output: 16 MiB */
    size_t max_ops;            /* started, queued or in flight: 10,000 */
    size_t max_result_size;    /* accumulated data of one command: 256 MiB */
    int preauth_tunnel;        /* informational: the transport is a preauth tunnel */
    const char *tag_prefix;    /* tags are PREFIX + number: "A" */
} imk_session_options;

typedef struct imk_session imk_session;

/* Create a session (state GREETING). opts and alloc may be NULL. Returns 0,
 * IMK_EINVAL or IMK_ENOMEM. */
IMK_API int imk_session_new(const imk_session_options *opts, const imk_allocator *alloc,
                            imk_session **out);
/* Free the session and every op. NULL is a no-op. */
IMK_API void imk_session_free(imk_session *s);

/* --- input: bytes from the server --- */
IMK_API size_t imk_session_feed(imk_session *s, const void *data, size_t len);
IMK_API char *imk_session_buffer(imk_session *s, size_t *room_out);
IMK_API int imk_session_commit(imk_session *s, size_t len);
/* The connection ended (after it, imk_session_next delivers DONE for every
 * outstanding op and then IMK_SE_CLOSED). */
IMK_API void imk_session_eof(imk_session *s);

/* --- output: bytes to the server --- */
/* Pointer to the bytes waiting to be sent: returns their count (0 = none). */
IMK_API size_t imk_session_output(imk_session *s, const char **data_out);
/* `n` bytes of that output were sent. */
IMK_API void imk_session_sent(imk_session *s, size_t n);
/* APPEND from a stream: when the head of the output is a streamed literal,
 * these bytes are its contents; returns how many were taken. */
IMK_API size_t imk_session_stream_write(imk_session *s, const void *data, size_t len);
/* Bytes imk_session_stream_write expects now for the current streamed
 * literal: 0 when none is pending, and also while a synchronizing literal
 * still waits for the server's "+" (so nothing is read from the source of
 * a literal the server may refuse). */
IMK_API uint64_t imk_session_stream_pending(const imk_session *s);

/* --- events --- */
/* 1: *ev filled (valid until the next call, and until the next feed: body
 * chunks point into the input buffer); 0: need input (or output to be
 * sent); negative: fatal (IMK_ENOMEM, IMK_EPROTO), see imk_session_error().
 * Untagged OK/NO/BAD never complete a command (an untagged BAD where the
 * tagged completion was due, QUIRKS Q15, leaves it waiting: the caller's
 * deadline must end such a wait). */
IMK_API int imk_session_next(imk_session *s, imk_session_event *ev);
IMK_API const char *imk_session_error(const imk_session *s);

/* --- commands --- */
/* Start a command of `kind`: a tag is assigned and the verb written. The
 * op's arguments are then appended through imk_op_args() (and
 * imk_op_set()), and imk_session_submit() queues it. Returns 0,
 * IMK_ESTATE (not allowed in the current state, with the reason in
 * imk_session_error), IMK_ELIMIT (max_ops) or IMK_ENOMEM. */
IMK_API int imk_session_command(imk_session *s, imk_command_kind kind, imk_op **out);
/* The encoder for the op's arguments (after the verb). Owned by the op. */
IMK_API imk_command *imk_op_args(imk_op *op);
/* Append a message set argument ("1:*", "4,7:9", "$") AND record it as the
 * set this command is about: FETCH and STORE data for messages in it is
 * this command's; data for others is unsolicited. */
IMK_API int imk_op_set(imk_op *op, const char *set);
/* Append a mailbox name argument (UTF-8; encoded as imk_command_mailbox()
 * does) AND record it as the mailbox this command is about: for
 * SELECT/EXAMINE the name imk_session_mailbox() reports once it succeeds,
 * for STATUS the name its untagged STATUS data is matched by (two STATUS
 * commands for different mailboxes are pipelined, for the same one not).
 * Only the first call records. Returns 0 or the encoder's error. */
IMK_API int imk_op_mailbox(imk_op *op, const char *utf8, size_t len);
/* Queue the op; it goes on the wire as soon as the pipelining rules allow.
 * After a failure here the op is freed. Returns 0 or a negative IMK_E*. */
IMK_API int imk_session_submit(imk_session *s, imk_op *op);
/* Abandon a command that was started but not submitted. */
IMK_API void imk_op_discard(imk_session *s, imk_op *op);

IMK_API const char *imk_op_tag(const imk_op *op);
IMK_API imk_command_kind imk_op_kind(const imk_op *op);
IMK_API void imk_op_set_user(imk_op *op, void *user);
IMK_API void *imk_op_user(const imk_op *op);
/* The result, once IMK_SE_DONE was delivered for the op; NULL before. */
IMK_API const imk_result *imk_op_result(const imk_op *op);

/* FETCH / UID FETCH / STORE / UID STORE: deliver this op's FETCH data as
 * IMK_SE_FETCH events, one per response as it arrives, instead of merging
 * it into the result (fetch_count then stays 0). The session's memory then
 * does not grow with the number of messages. A server may send one
 * message's items in several responses; the caller sees each. Call before
 * imk_session_submit(). Returns 0, or IMK_EINVAL for another kind. */
IMK_API int imk_op_stream_fetch(imk_op *op, int on);

/* AUTHENTICATE: answer the challenge of `op` with `data` (already base64,
 * without CRLF), or cancel the exchange ("*", RFC 9051 section 6.2.2). */
IMK_API int imk_session_auth_respond(imk_session *s, imk_op *op, const char *data, size_t len);
IMK_API int imk_session_auth_cancel(imk_session *s, imk_op *op);
/* IDLE: send DONE for an idling op. Called before the server's "+" (the
 * IMK_SE_IDLING event), DONE is sent as soon as it arrives (RFC 2177).
 * IMK_ESTATE when `op` is not an IDLE still running. */
IMK_API int imk_session_idle_done(imk_session *s, imk_op *op);
/* STARTTLS: after the DONE event of a successful STARTTLS the session reads
 * nothing until this is called, once the TLS handshake has completed on the
 * transport. Any byte fed (or already buffered) before that is response
 * injection (CVE-2020-15953 class, DESIGN.md section 8): imk_session_next()
 * then fails with IMK_EPROTO. The capabilities are forgotten at the OK (RFC
 * 9051 section 6.2.1): send CAPABILITY again. IMK_ESTATE when no handshake
 * is pending. */
IMK_API int imk_session_starttls_done(imk_session *s);

/* COMPRESS (RFC 4978): after the IMK_SE_COMPRESSING event the session
 * reads nothing and sends nothing until this is called, once the transport
 * compresses in both directions. *rest and *rest_len (may be NULL) receive
 * the bytes that were already fed after the server's OK: they are
 * compressed, so they are taken out of the session's input; inflate them
 * and feed the result. They stay valid until the next feed or commit.
 * IMK_ESTATE when no COMPRESS is pending. */
IMK_API int imk_session_compress_done(imk_session *s, const char **rest, size_t *rest_len);

/* --- state --- */
IMK_API imk_conn_state imk_session_state(const imk_session *s);
/* 1 if the server advertised `cap` (case-insensitive) in its latest list. */
IMK_API int imk_session_has_capability(const imk_session *s, const char *cap);
/* 1 if a capability list is known. The list comes from the greeting's
 * [CAPABILITY] code, CAPABILITY responses and codes; it is forgotten after
 * STARTTLS succeeds and after LOGIN/AUTHENTICATE succeed without bringing a
 * new list (the tagged OK's [CAPABILITY] code or an untagged CAPABILITY
 * during the command): the application must then send CAPABILITY again
 * before relying on imk_session_has_capability(). */
IMK_API int imk_session_capabilities_known(const imk_session *s);
/* 1 if ENABLE enabled `ext` (CONDSTORE, QRESYNC, IMAP4rev2, UTF8=ACCEPT).
 * CONDSTORE counts as enabled once QRESYNC is, RFC 7162 section 3.2.3. */
IMK_API int imk_session_is_enabled(const imk_session *s, const char *ext);
/* The selected mailbox's view (always non-NULL; empty when none). */
IMK_API const imk_view *imk_session_view(const imk_session *s);
/* The selected mailbox's name as given to SELECT/EXAMINE, or NULL. */
IMK_API const char *imk_session_mailbox(const imk_session *s);
/* Number of ops queued or in flight. */
IMK_API size_t imk_session_pending(const imk_session *s);

#ifdef __cplusplus
}
#endif

#endif
