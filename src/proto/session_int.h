/* SPDX-License-Identifier: MIT */
/*
 * The session's private structures, shared by its three source files:
 *
 *   session.c           the public API: lifecycle, input, output, commands,
 *                       connection state and capabilities, events;
 *   session_sched.c     the command table and the pipelining scheduler
 *                       (which queued command may go on the wire now);
 *   session_dispatch.c  the response table and the dispatch of every
 *                       response (view first, then the claiming command,
 *                       else an unsolicited event).
 *
 * Every op is in exactly one of the session's lists, by state:
 *
 *   building  started with imk_session_command(), not submitted yet
 *   queue     submitted, waiting for the scheduler (FIFO: commands go out in
 *             the order they were submitted)
 *   inflight  on the wire (some or all of its bytes are in the output), in
 *             the order they were sent; at most one of them, `sending`, has
 *             segments not yet in the output
 *   completing  completed; its IMK_SE_DONE event is in the event queue
 *   done      IMK_SE_DONE was returned for it: freed at the next
 *             imk_session_next() call
 */
#ifndef IMK_PROTO_SESSION_INT_H
#define IMK_PROTO_SESSION_INT_H

#include "imapkit/session.h"
#include "proto/result.h"
#include "proto/view.h"
#include "util/alloc.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/seqset.h"

#include <stddef.h>
#include <stdint.h>

typedef enum imk__op_state {
    IMK__OP_BUILDING,
    IMK__OP_QUEUED,
    IMK__OP_SENDING, /* segments remain to be put in the output */
    IMK__OP_SENT,    /* wholly in the output; waiting for the tagged response */
    IMK__OP_DONE     /* completed; DONE event queued or delivered */
} imk__op_state;

typedef struct imk__op_list {
    imk_op *head, *tail;
    size_t count;
} imk__op_list;

struct imk_op {
    imk_session *session;
    imk_op *prev, *next; /* links of the list the op is in */
    imk__op_state state;
    imk_command_kind kind;
    char tag[32];
    imk_command *cmd;
    imk__result *result;
    void *user;

    /* The set given with imk_op_set(): what FETCH/STORE data belongs to this
     * command (DESIGN.md section 1 rule 5). set_any: the set matches any
     * message for scheduling ("*", "$", or no set recorded). */
    imk__seqset set;
    int has_set, set_any;
    /* The mailbox given with imk_op_mailbox() (UTF-8, NUL-terminated), or NULL. */
    char *mailbox;
    /* SEARCH/SORT with RETURN (RFC 4731, RFC 5267): answered by ESEARCH
     * with this command's tag, so it cannot be confused with another. */
    int esearch;
    /* uses message sequence numbers (RFC 9051 section 5.5); decided at
     * submit, from the kind and, for UID SEARCH/SORT/THREAD, the criteria */
    int uses_seq;

    /* Sending: the next segment and the offset in it already output. */
    size_t seg, seg_off;
    int wait_plus;        /* the last segment output waits for "+" */
    uint64_t stream_left; /* bytes the caller still streams for a literal */

    /* AUTHENTICATE: a challenge awaits imk_session_auth_respond/cancel. */
    int challenge_pending;
    /* IDLE: "+" arrived (idling); DONE asked for before it (done_asked);
     * DONE written (done_sent). */
    int idling, done_asked, done_sent;

    unsigned caps_gen_at_start; /* capability generation when sent */
    int data_error;             /* first error adding to the result, or 0 */
    int done_event_queued;      /* its DONE event is in the event queue */
    int stream_fetch;           /* FETCH data as IMK_SE_FETCH events, not kept */
};

#define IMK__ENABLED_CONDSTORE 1u
#define IMK__ENABLED_QRESYNC 2u
#define IMK__ENABLED_IMAP4REV2 4u
#define IMK__ENABLED_UTF8 8u

struct imk_session {
    imk_allocator alloc;
    imk_session_options opts;
    char tag_prefix[16];
    uint64_t tag_counter;

    imk_reader *reader;
    size_t reader_cap; /* the reader's input buffer size (for unconsumed bytes) */
    imk_view *view;

    imk_conn_state state;
    imk__op_list building, queue, inflight, completing, done;
    imk_op *sending;   /* the in-flight op with segments still to output */
    size_t state_ops;  /* queued/in-flight ops that change the connection state */
    imk_op *select_op; /* in-flight SELECT/EXAMINE */
    char *mailbox;     /* the selected mailbox (UTF-8), or NULL */
    int selected;      /* a mailbox is selected (stays so through BYE/LOGOUT) */

    /* Output: bytes to send. Bounded by opts.max_output in the scheduler. */
    imk__buf out;

    /* Events produced by one response, delivered one per imk_session_next(). */
    imk_session_event *events;
    size_t ev_head, ev_len, ev_cap;
    imk__arena ev_arena; /* copies the events point to; reset with the queue */

    /* Capabilities: the latest list the server sent, and a generation
     * counter bumped at each change (to see whether LOGIN's completion
     * brought a fresh list). */
    imk__arena caps_arena;
    imk_strlist caps;
    int caps_known;
    unsigned caps_gen;
    int cap_literal_plus, cap_literal_minus, cap_binary;

    /* ENABLE: every extension ENABLED named, "NAME\0NAME\0...". */
    imk__buf enabled;
    unsigned enabled_bits;

    /* BYE: the first one's text (QUIRKS Q17: only it makes an event). */
    int bye_seen;
    imk__buf bye_text;

    /* STARTTLS (DESIGN.md section 8): after its tagged OK nothing may be
     * read until imk_session_starttls_done(); bytes that arrive meanwhile
     * are response injection. */
    int tls_pending, injected;
    /* COMPRESS (RFC 4978): after its tagged OK nothing is read or sent
     * until imk_session_compress_done(): the bytes after the OK are
     * compressed and belong to the transport. */
    int compress_pending;

    int eof, closed; /* imk_session_eof() called; IMK_SE_CLOSED queued */
    int fatal;       /* a fatal IMK_E* code, or 0 */
    char errmsg[256];

    /* Dispatch context of the response being handled. */
    imk_op *expunge_target;    /* op recording expunged UIDs (EXPUNGE, MOVE...) */
    int in_vanished;           /* applying a VANISHED: count removals, no per-message events */
    uint32_t vanished_removed; /* messages that VANISHED removed so far */
    imk_op *body_op;           /* op of the body section being streamed */
};

/* ---- session.c ---- */
imk_session_event *imk__session_push(imk_session *s, imk_session_event_type type);
void imk__session_fail(imk_session *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void imk__session_list_remove(imk__op_list *l, imk_op *op);
void imk__session_list_append(imk__op_list *l, imk_op *op);
/* Copy bytes into the event arena (NUL-terminated); NULL data -> NULL. */
int imk__session_copy_str(imk_session *s, imk_str in, imk_str *out);
/* Complete `op`: its result gets `status` (or the error), it leaves the
 * in-flight list, and a DONE event is queued. */
void imk__session_complete(imk_session *s, imk_op *op);
void imk__session_set_caps(imk_session *s, const imk_strlist *caps);
void imk__session_forget_caps(imk_session *s);
void imk__session_add_enabled(imk_session *s, const imk_strlist *names);
void imk__session_note_data_error(imk_session *s, imk_op *op, int rc);
size_t imk__session_unconsumed(imk_session *s);

/* ---- session_sched.c ---- */
/* Flags of a command kind (CF_*) and the states it is valid in. */
unsigned imk__session_cmd_flags(imk_command_kind kind);
/* 0 when `kind` may be started in `state`, else IMK_ESTATE with the reason
 * written to s->errmsg. */
int imk__session_check_state(imk_session *s, imk_command_kind kind, imk_conn_state state);
/* The state the connection will have once every queued and in-flight
 * command has completed successfully. */
imk_conn_state imk__session_projected_state(const imk_session *s);
/* Move what the rules allow from the queue to the output. */
void imk__session_pump(imk_session *s);
/* Does the op use message sequence numbers? (at submit time) */
int imk__session_uses_seq(const imk_op *op);
/* 1 if the response kind may be claimed by the command kind. */
int imk__session_claims(imk_command_kind cmd, imk_response_kind resp);

#define IMK__CF_BARRIER (1u << 0) /* waits for all before, blocks all after */
#define IMK__CF_SEQ (1u << 1)     /* uses message sequence numbers */
#define IMK__CF_UID (1u << 2)     /* a UID command */
#define IMK__CF_SEQSAFE (1u << 3) /* FETCH, STORE, SEARCH: no EXPUNGE during it */
#define IMK__CF_FETCH (1u << 4)   /* FETCH/STORE data attributed by set */
#define IMK__CF_SEARCH (1u << 5)  /* SEARCH/SORT: may use RETURN (ESEARCH) */
#define IMK__CF_STATE (1u << 6)   /* changes the connection state */

/* ---- session_dispatch.c ---- */
/* Handle one reader event. */
void imk__session_dispatch(imk_session *s, const imk_event *ev);
/* The view observer (its user is the session). */
extern const imk__view_observer imk__session_observer_template;
/* The FETCH-family op in flight whose set holds the message, or NULL. */
imk_op *imk__session_fetch_owner(imk_session *s, uint32_t seq, int has_uid, uint32_t uid);

#endif
