/* SPDX-License-Identifier: MIT */
/*
 * imapkit/client.h - talking to an IMAP server: connections (TCP, implicit
 * TLS, STARTTLS, a tunnel command), authentication (SASL or LOGIN),
 * compression, and every IMAP operation, both blocking and driven by an
 * application's event loop.
 *
 * Blocking use:
 *
 *     imk_conn_options o = IMK_CONN_OPTIONS_INIT;
 *     o.host = "imap.example.com";            // implicit TLS on port 993
 *     imk_conn *c;
 *     if (imk_conn_new(&o, NULL, &c) < 0 || imk_conn_connect(c) < 0) {
 *         fprintf(stderr, "%s\n", imk_conn_error(c)); ...
 *     }
 *     imk_auth a = IMK_AUTH_INIT;
 *     a.user = "me"; a.password = pw;
 *     if (imk_conn_login(c, &a) < 0) ... imk_conn_error(c)
 *     const imk_result *r;
 *     imk_conn_select(c, "INBOX", NULL, &r);        // r valid until the next call on c
 *     imk_fetch_iter *it;
 *     imk_conn_fetch(c, 1, "1:*", "(UID FLAGS BODY.PEEK[])", &it);  // UID FETCH
 *     imk_fetch_item item;
 *     while (imk_fetch_iter_next(it, &item) == 1) ...
 *     imk_fetch_iter_end(it, &r);
 *     imk_conn_logout(c);
 *     imk_conn_free(c);
 *
 * Naming: every operation is imk_conn_<verb>(conn, ...) (the connection is
 * the object); the FETCH iterator is imk_fetch_iter_*.
 *
 * Event-loop use: the same operations with an _async suffix take a
 * completion callback instead of waiting. The application polls
 * imk_conn_fd() for imk_conn_events(), wakes up after imk_conn_timeout()
 * milliseconds at most, and calls imk_conn_process(). Callbacks run inside
 * imk_conn_process(); a callback may queue further commands or free the
 * connection (the free is completed when process() returns).
 *
 * Results and errors (DESIGN.md section 7):
 *   - a function returns 0 (or a count) on success and a negative IMK_E*
 *     code on failure; imk_conn_error(c) then holds one line naming the
 *     host, the step and the cause;
 *   - a server's NO or BAD is a RESULT, not an error: the call returns 0
 *     and res->status says NO/BAD with res->code and res->text. Exceptions,
 *     where a refusal means the call did not do its job: imk_conn_connect (a BYE
 *     greeting: IMK_ECLOSED), imk_conn_login (IMK_EAUTH), imk_conn_select (returns 0
 *     but the state stays AUTHENTICATED);
 *   - transport, TLS, timeout and protocol failures are fatal codes
 *     (imk_error_is_fatal): the connection is dead; free it or call
 *     imk_conn_connect() again to reconnect (the mailbox view starts empty).
 *
 * Every blocking call has a deadline: it fails with IMK_ETIMEDOUT when no
 * byte arrives for io_timeout_ms while the call waits on the server, or
 * when the whole call outlasts call_timeout_ms (if set). IDLE waits are
 * not "waiting on the server" and have their own timeout argument.
 *
 * Unsolicited data (new messages, expunges, flag changes, notices,
 * alerts, progress) reaches the callback set with imk_conn_on_event(); the
 * mailbox view (imk_conn_view) is readable at any time between calls.
 *
 * A connection is used by one thread at a time.
 */
#ifndef IMAPKIT_CLIENT_H
#define IMAPKIT_CLIENT_H

#include "imapkit/common.h"
#include "imapkit/response.h"
#include "imapkit/session.h"
#include "imapkit/view.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

typedef enum imk_security {
    IMK_SECURITY_TLS = 0,  /* implicit TLS (RFC 8314), port 993: the default */
    IMK_SECURITY_STARTTLS, /* plain TCP, then STARTTLS; fails when not offered */
    IMK_SECURITY_NONE      /* cleartext; passwords refused unless allowed */
} imk_security;

/* A trace hook: every byte exchanged, after TLS and compression are taken
 * off. dir is 'S' (from the server) or 'C' (to it). Passwords and SASL
 * exchanges are replaced by "<redacted>" (DESIGN.md section 8). */
typedef void (*imk_trace_fn)(void *user, char dir, const char *data, size_t len);

#define IMK_CONN_OPTIONS_VERSION 1

/* Every field's zero value is the safe, usual choice. */
typedef struct imk_conn_options {
    unsigned version; /* IMK_CONN_OPTIONS_VERSION */

    /* Where. A tunnel, when set, replaces host/port: `/bin/sh -c tunnel` is
     * run and IMAP is spoken over its stdin/stdout (mbsync's Tunnel); its
     * stderr is kept for error messages and its exit status reported. A
     * tunnel counts as secure (no TLS is layered over it). */
    const char *host;
    const char *port; /* NULL: "993" for TLS, "143" otherwise */
    const char *tunnel;
    imk_security security;
    int family; /* 0: IPv6 and IPv4, each address in turn; 4 or 6 only */

    /* TLS */
    const char *ca_file;     /* PEM bundle; NULL = the system's trust store */
    const char *ca_dir;      /* hashed certificate directory */
    const char *server_name; /* name verified and sent as SNI; NULL = host */
    /* DANGEROUS: accept any certificate, so anyone on the path can read
     * and change everything, password included. For tests only. */
    int tls_insecure_skip_verify;

    /* Allow LOGIN / PLAIN / LOGIN-mechanism passwords without TLS (a
     * tunnel counts as TLS). Off: such an attempt fails with
     * IMK_ESECURITY before anything is sent. */
    int allow_cleartext_password;

    /* After authentication: negotiate COMPRESS=DEFLATE when offered. */
    int compress;

    /* Deadlines in milliseconds; 0 = default, -1 = none. */
    int connect_timeout_ms; /* per address: 30000 */
    int io_timeout_ms;      /* no byte from a server we wait on: 60000 */
    int call_timeout_ms;    /* a whole blocking call: none */
    int no_keepalive;       /* 0: TCP keepalive on */

    /* The session's limits and quirks; NULL = defaults. */
    const imk_session_options *session;

    /* Trace (redacted), or NULL. */
    imk_trace_fn trace;
    void *trace_user;
} imk_conn_options;

#define IMK_CONN_OPTIONS_INIT                                                                      \
    {                                                                                              \
        IMK_CONN_OPTIONS_VERSION, NULL, NULL, NULL, IMK_SECURITY_TLS, 0, NULL, NULL, NULL, 0, 0,   \
            0, 0, 0, 0, 0, NULL, NULL, NULL                                                        \
    }

/* Credentials for imk_conn_login(). */
typedef struct imk_auth {
    const char *user;
    const char *password;    /* for SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN */
    const char *oauth_token; /* for OAUTHBEARER, XOAUTH2 */
    const char *authzid;     /* act as this user (optional) */
    /* Space-separated SASL mechanisms to try, in order, or NULL: the best
     * one the server offers (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN with
     * a password; OAUTHBEARER, XOAUTH2 with a token), then the LOGIN
     * command when the server offers no usable mechanism and does not say
     * LOGINDISABLED. "LOGIN-COMMAND" in the list names that fallback. */
    const char *mechanisms;
} imk_auth;

#define IMK_AUTH_INIT                                                                              \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL                                                               \
    }

/* ------------------------------------------------------------------ */
/* The connection                                                      */
/* ------------------------------------------------------------------ */

typedef struct imk_conn imk_conn;

/* Create a connection object (nothing is connected yet). The options'
 * strings are copied. Returns 0, IMK_EINVAL (no host and no tunnel, ...:
 * the reason in imk_conn_error, so *out is set even then, unless
 * IMK_ENOMEM) or IMK_ENOMEM. */
IMK_API int imk_conn_new(const imk_conn_options *opts, const imk_allocator *alloc, imk_conn **out);
/* Close and free. Pending async commands complete with IMK_ECLOSED first
 * (their callbacks run). Inside a callback the free is deferred until
 * imk_conn_process() returns. NULL is a no-op. */
IMK_API void imk_conn_free(imk_conn *c);

/* The message of the last error on this connection ("" if none). */
IMK_API const char *imk_conn_error(const imk_conn *c);
/* The underlying session (state, capabilities, enabled extensions). */
IMK_API imk_session *imk_conn_session(imk_conn *c);
/* The selected mailbox's view; never NULL. */
IMK_API const imk_view *imk_conn_view(const imk_conn *c);
IMK_API int imk_conn_has_capability(const imk_conn *c, const char *cap);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", "tunnel", "cleartext"; plus
 * " + COMPRESS=DEFLATE" when compressed. */
IMK_API const char *imk_conn_transport(const imk_conn *c);
/* Tunnel: 1 and the wait status (as waitpid) if the command has exited. */
IMK_API int imk_conn_tunnel_status(imk_conn *c, int *status);

/* Mailbox changes and everything no command claimed. The callback gets:
 *   - the view's changes, whatever caused them: IMK_SE_EXISTS, EXPUNGE,
 *     VANISHED, UIDVALIDITY, and IMK_SE_FLAGS whenever the server reports
 *     a message's flags, also in the answer to the application's own
 *     FETCH or STORE (the view records them either way);
 *   - NOTICE (untagged OK/NO/BAD, also those a SELECT brings; `alert` set
 *     for [ALERT]: show it to the user), PROGRESS, BYE, PROTOCOL_ERROR;
 *   - UNSOLICITED: a response no command claimed, e.g. a FETCH about
 *     another client's change (after the FLAGS event it caused), or NOTIFY
 *     data; BODY_* without an op;
 *   - CLOSED when the connection ends (logout, the server closed, a fatal
 *     error or a timeout).
 * `ev` is valid during the call. The view is already updated. */
typedef void (*imk_event_fn)(imk_conn *c, const imk_session_event *ev, void *user);
IMK_API void imk_conn_on_event(imk_conn *c, imk_event_fn fn, void *user);

/* The deadline of the next blocking call(s) on this connection, replacing
 * call_timeout_ms (0 = the option's value, -1 none). */
IMK_API void imk_conn_set_call_timeout(imk_conn *c, int ms);

/* ------------------------------------------------------------------ */
/* Event-loop interface                                                */
/* ------------------------------------------------------------------ */

#define IMK_WANT_READ 1u
#define IMK_WANT_WRITE 2u

/* The descriptor to poll, or -1 when there is none (not connected). */
IMK_API int imk_conn_fd(const imk_conn *c);
/* IMK_WANT_READ / IMK_WANT_WRITE: what to poll the descriptor for. */
IMK_API unsigned imk_conn_events(const imk_conn *c);
/* Milliseconds until imk_conn_process() must be called even without I/O
 * (a deadline or the IDLE refresh), or -1 for none. */
IMK_API int imk_conn_timeout(const imk_conn *c);
/* Do all work possible without blocking: connect steps, TLS, read, parse,
 * run callbacks, write. `revents` are the IMK_WANT_* bits that poll
 * reported (0 after a timeout; the call still checks everything). Returns
 * 0 (also once the connection ended by LOGOUT), IMK_ECLOSED when the server
 * closed it unexpectedly, or a fatal IMK_E* when it failed; every pending
 * command's callback has then run with that error. */
IMK_API int imk_conn_process(imk_conn *c, unsigned revents);

/* Completion of an async command. `res` is NULL when the command never
 * completed (err < 0: the connection failed, IMK_ECLOSED, IMK_ETIMEDOUT,
 * ...). With err == 0, res->status is the server's OK/NO/BAD. `res` is
 * valid during the call only. */
typedef void (*imk_done_fn)(imk_conn *c, int err, const imk_result *res, void *user);

/* Begin connecting (TCP or tunnel, TLS, greeting, STARTTLS, CAPABILITY);
 * `done` runs when the connection is ready for commands (res NULL, err 0)
 * or failed. Called from a callback of the same connection it returns
 * IMK_EBUSY (the old session is still in use up the call stack): reconnect
 * after imk_conn_process() returns. */
IMK_API int imk_conn_connect_async(imk_conn *c, imk_done_fn done, void *user);
/* Authenticate as imk_conn_login() does; `res` is the final command's result. */
IMK_API int imk_conn_login_async(imk_conn *c, const imk_auth *auth, imk_done_fn done, void *user);

/* ------------------------------------------------------------------ */
/* Blocking: connection and session                                    */
/* ------------------------------------------------------------------ */

/* Connect: resolve, try each address (IPv6 and IPv4) until one answers,
 * TLS (verified), read the greeting, STARTTLS when asked for (fails closed
 * with IMK_ESECURITY when the server does not offer it), read the
 * capabilities (again after TLS). Also reconnects a connection that
 * failed or was logged out. */
IMK_API int imk_conn_connect(imk_conn *c);

/* Authenticate (skipped with 0 when the greeting was PREAUTH): SASL with
 * SASL-IR when offered, else the LOGIN command; then refresh the
 * capabilities if the server did not send them, and negotiate COMPRESS if
 * the options ask for it. IMK_EAUTH when the server refused (its text in
 * imk_conn_error), IMK_ESECURITY when a password would go in cleartext,
 * IMK_ENOTSUP when no mechanism fits. */
IMK_API int imk_conn_login(imk_conn *c, const imk_auth *auth);

/* LOGOUT and close. 0 also when the server just closed. */
IMK_API int imk_conn_logout(imk_conn *c);

/* Every call below: `res` may be NULL; when not, *res is set to the
 * command's result, valid until the next call on the connection. */

IMK_API int imk_conn_noop(imk_conn *c, const imk_result **res);
IMK_API int imk_conn_capability(imk_conn *c, const imk_result **res);
/* ENABLE each of exts[0..n) (RFC 5161). */
IMK_API int imk_conn_enable(imk_conn *c, const char *const *exts, size_t n, const imk_result **res);
/* ID (RFC 2971): n key/value pairs, kv[2i] key, kv[2i+1] value (NULL =
 * NIL); n == 0 sends ID NIL. The server's answer is res->id. */
IMK_API int imk_conn_id(imk_conn *c, const char *const *kv, size_t n, const imk_result **res);
IMK_API int imk_conn_namespace(imk_conn *c, const imk_result **res);

/* ------------------------------------------------------------------ */
/* Blocking: mailboxes                                                 */
/* ------------------------------------------------------------------ */

/* Mailbox names are UTF-8 everywhere; imapkit encodes them (modified
 * UTF-7, or UTF-8 once UTF8=ACCEPT is enabled) and decodes them in
 * results. */

#define IMK_LIST_SUBSCRIBED 1u  /* selection: SUBSCRIBED (RFC 5258) */
#define IMK_LIST_SPECIAL_USE 2u /* selection: SPECIAL-USE only (RFC 6154) */
#define IMK_LIST_RECURSIVEMATCH 4u
#define IMK_LIST_RETURN_SPECIAL_USE 8u /* RETURN (SPECIAL-USE) */
#define IMK_LIST_RETURN_CHILDREN 16u   /* RETURN (CHILDREN) */

typedef struct imk_list_params {
    unsigned flags; /* IMK_LIST_* */
    /* LIST-STATUS (RFC 5819): status items to return with each mailbox,
     * e.g. "MESSAGES UNSEEN UIDNEXT"; NULL for none. Sent only when the
     * server offers LIST-STATUS; otherwise IMK_ENOTSUP. */
    const char *status_items;
} imk_list_params;

/* LIST reference pattern ("" "*"), with LIST-EXTENDED options when params
 * ask for them (IMK_ENOTSUP when not offered). res->lists. */
IMK_API int imk_conn_list(imk_conn *c, const char *reference, const char *pattern,
                          const imk_list_params *params, const imk_result **res);
/* STATUS mailbox (items) e.g. "MESSAGES UIDNEXT UIDVALIDITY UNSEEN". */
IMK_API int imk_conn_status(imk_conn *c, const char *mailbox, const char *items,
                            const imk_result **res);
IMK_API int imk_conn_create(imk_conn *c, const char *mailbox, const imk_result **res);
IMK_API int imk_conn_delete(imk_conn *c, const char *mailbox, const imk_result **res);
IMK_API int imk_conn_rename(imk_conn *c, const char *from, const char *to, const imk_result **res);
IMK_API int imk_conn_subscribe(imk_conn *c, const char *mailbox, const imk_result **res);
IMK_API int imk_conn_unsubscribe(imk_conn *c, const char *mailbox, const imk_result **res);

typedef struct imk_select_params {
    int readonly;  /* EXAMINE instead of SELECT */
    int condstore; /* (CONDSTORE) parameter, RFC 7162 */
    /* QRESYNC (RFC 7162 3.2.5): when uidvalidity is non-zero, send
     * (QRESYNC (uidvalidity modseq [known_uids] [(seq_match uid_match)]));
     * QRESYNC must have been enabled (imk_conn_enable), else IMK_ESTATE. */
    uint32_t qresync_uidvalidity;
    uint64_t qresync_modseq;
    const char *qresync_known_uids; /* sequence set or NULL */
    const char *qresync_seq_match;  /* both or neither, or NULL */
    const char *qresync_uid_match;
} imk_select_params;

/* SELECT or EXAMINE; the view fills in. `params` may be NULL. */
IMK_API int imk_conn_select(imk_conn *c, const char *mailbox, const imk_select_params *params,
                            const imk_result **res);
/* Leave the selected mailbox: UNSELECT (RFC 3691) when offered. Without
 * it, CLOSE is used only for a read-only mailbox (EXAMINE), and only when no
 * other command is queued or in flight (a queued SELECT could make it
 * read-write first): on a
 * read-write one CLOSE would silently expunge the messages marked \Deleted,
 * so IMK_ENOTSUP is returned instead (select another mailbox, or EXPUNGE
 * and CLOSE deliberately with imk_conn_command). */
IMK_API int imk_conn_unselect(imk_conn *c, const imk_result **res);

/* APPEND. The message comes from memory, a file descriptor (read from its
 * current position, exactly `size` bytes) or a callback that fills buf and
 * returns the bytes written (0 < n <= cap, never more than asked for in
 * total; negative aborts the command, which then fails with that code). A
 * non-synchronizing literal is used when LITERAL+ (or LITERAL- for <= 4 KiB)
 * allows, otherwise the server's "+" is awaited. Binary content (NUL bytes)
 * is sent as literal8 when the server offers BINARY, else IMK_ENOTSUP. */
typedef long (*imk_read_fn)(void *user, void *buf, size_t cap);

typedef struct imk_append_msg {
    uint64_t size;
    const void *data; /* from memory, or */
    int fd;           /* from a descriptor (when data is NULL and read is NULL), or */
    imk_read_fn read; /* from a callback */
    void *read_user;
    const char *const *flags; /* n_flags flags, e.g. "\\Seen" */
    size_t n_flags;
    const char *internaldate; /* "01-Jan-2026 10:00:00 +0000" or NULL */
    int binary;               /* the content may hold NUL: literal8 */
} imk_append_msg;

#define IMK_APPEND_MSG_INIT                                                                        \
    {                                                                                              \
        0, NULL, -1, NULL, NULL, NULL, 0, NULL, 0                                                  \
    }

/* APPEND n messages to a mailbox: one APPEND for n == 1, MULTIAPPEND (RFC
 * 3502) for n > 1 when offered, else one APPEND each (stopping at the first
 * that is refused). res->has_appenduid / dest_uids with UIDPLUS. */
IMK_API int imk_conn_append(imk_conn *c, const char *mailbox, const imk_append_msg *msgs, size_t n,
                            const imk_result **res);

/* ------------------------------------------------------------------ */
/* Blocking: messages                                                  */
/* ------------------------------------------------------------------ */

/*
 * Sets: a sequence set ("1:*", "4,7:9") of UIDs when `uid` is set
 * (recommended: UIDs do not shift when messages are expunged) or of
 * sequence numbers otherwise.
 *
 * Criteria (SEARCH, SORT, THREAD, NOTIFY): text in IMAP syntax written by
 * the programmer ("UNSEEN SINCE 1-Jan-2026 SUBJECT %s"), where each %s is
 * replaced by the next of the `args` strings, encoded safely (quoted or a
 * literal; CHARSET UTF-8 is added when an arg is not ASCII). The text
 * itself may not hold CR, LF, NUL, quotes or braces (IMK_EINVAL): user data
 * goes through args only.
 */

/* SEARCH (UID SEARCH). With ESEARCH offered, RETURN (ALL) is asked and the
 * set is res->esearch->all; otherwise res->search lists the numbers. Use
 * imk_result_ids() to read either as numbers. */
IMK_API int imk_conn_search(imk_conn *c, int uid, const char *criteria, const char *const *args,
                            size_t n_args, const imk_result **res);
/* SORT (RFC 5256): sort_keys such as "REVERSE DATE"; res->search. */
IMK_API int imk_conn_sort(imk_conn *c, int uid, const char *sort_keys, const char *criteria,
                          const char *const *args, size_t n_args, const imk_result **res);
/* THREAD: algorithm "REFERENCES" / "ORDEREDSUBJECT"; res->thread. */
IMK_API int imk_conn_thread(imk_conn *c, int uid, const char *algorithm, const char *criteria,
                            const char *const *args, size_t n_args, const imk_result **res);
/* The ids of a SEARCH/SORT result whichever form it came in (ESEARCH ALL
 * is expanded; at most `cap` written). Returns the total count. */
IMK_API size_t imk_result_ids(const imk_result *res, uint32_t *out, size_t cap);

/* STORE: action is "FLAGS", "+FLAGS", "-FLAGS", optionally ".SILENT";
 * unchangedsince > 0 adds (UNCHANGEDSINCE n) (RFC 7162; messages that
 * changed are in res->code MODIFIED). FETCH data the server returns is
 * in res->fetches. */
IMK_API int imk_conn_store(imk_conn *c, int uid, const char *set, const char *action,
                           const char *const *flags, size_t n_flags, uint64_t unchangedsince,
                           const imk_result **res);
IMK_API int imk_conn_copy(imk_conn *c, int uid, const char *set, const char *mailbox,
                          const imk_result **res);
/* MOVE (RFC 6851) when offered; else COPY, then STORE +FLAGS.SILENT
 * (\Deleted), then UID EXPUNGE of exactly those messages (needs UIDPLUS
 * and uid = 1; otherwise IMK_ENOTSUP, since a plain EXPUNGE would remove
 * other messages marked \Deleted and sequence numbers shift between the
 * commands). In the fallback `res` is the UID EXPUNGE's result
 * (expunged_uids) carrying the COPY's COPYUID; if the COPY is refused, it
 * is the COPY's result and nothing else was sent. */
IMK_API int imk_conn_move(imk_conn *c, int uid, const char *set, const char *mailbox,
                          const imk_result **res);
/* EXPUNGE (set NULL) or UID EXPUNGE set (UIDPLUS). res->expunged_uids. */
IMK_API int imk_conn_expunge(imk_conn *c, const char *uid_set, const imk_result **res);

/* ------------------------------------------------------------------ */
/* Blocking: FETCH as an iterator                                      */
/* ------------------------------------------------------------------ */

typedef enum imk_fetch_item_type {
    /* A streamed body section starts: `body` (seq, uid when it came
     * before the literal, section, size). */
    IMK_FI_BODY_BEGIN,
    /* Its bytes: data/len, valid until the next imk_fetch_iter_next(). */
    IMK_FI_BODY_DATA,
    IMK_FI_BODY_END,
    /* A FETCH response's other items: `msg` (seq, UID, FLAGS, ENVELOPE,
     * sizes, ...; its streamed sections have streamed = 1). A message's
     * sections come before its record, in the order the server sends
     * them: the record is only complete at the end of the response. */
    IMK_FI_MESSAGE
} imk_fetch_item_type;

typedef struct imk_fetch_item {
    imk_fetch_item_type type;
    const imk_body_info *body; /* BODY_* */
    const char *data;          /* BODY_DATA */
    size_t len;
    const imk_fetch *msg; /* MESSAGE */
} imk_fetch_item;

typedef struct imk_fetch_iter imk_fetch_iter;

/* FETCH (uid = 0) or UID FETCH (uid = 1) `set` `items` ("(UID FLAGS
 * BODY.PEEK[])", written by the programmer; same rules as criteria, no
 * args). Memory stays bounded whatever the sizes: bodies are streamed and
 * records are not accumulated. Only one iterator per connection at a
 * time; other blocking calls fail with IMK_EBUSY until imk_fetch_iter_end(). */
IMK_API int imk_conn_fetch(imk_conn *c, int uid, const char *set, const char *items,
                           imk_fetch_iter **out);
/* 1: *item filled (valid until the next call); 0: the command completed
 * (call imk_fetch_iter_end for its result); negative: error (the iterator
 * still must be ended). */
IMK_API int imk_fetch_iter_next(imk_fetch_iter *it, imk_fetch_item *item);
/* Finish (draining what is left if stopped early) and free the iterator;
 * *res (if res) is the tagged result. Returns 0 or the error that ended
 * the command. */
IMK_API int imk_fetch_iter_end(imk_fetch_iter *it, const imk_result **res);

/* A whole message in memory: the helper for small messages. */
typedef struct imk_message {
    uint32_t seq, uid;
    imk_strlist flags; /* valid until imk_message_free */
    uint64_t modseq;
    uint64_t size; /* RFC822.SIZE when fetched, else 0 */
    char *body;    /* BODY.PEEK[] bytes (not NUL-terminated... see len) */
    size_t body_len;
} imk_message;

/* UID FETCH (or FETCH) `set` (UID FLAGS RFC822.SIZE BODY.PEEK[]) into
 * memory: *out gets *count messages. A message above max_bytes (0 = 64 MiB)
 * ends the call with IMK_ELIMIT: use the iterator for big messages. */
IMK_API int imk_conn_fetch_messages(imk_conn *c, int uid, const char *set, size_t max_bytes,
                                    imk_message **out, size_t *count);
IMK_API void imk_messages_free(imk_conn *c, imk_message *msgs, size_t count);

/* ------------------------------------------------------------------ */
/* Blocking: IDLE, NOTIFY, quota, metadata, anything                   */
/* ------------------------------------------------------------------ */

/* IDLE (RFC 2177) for up to timeout_ms (-1: until stopped): unsolicited
 * events reach the event callback as they arrive. The IDLE is renewed
 * (DONE + IDLE) every 28 minutes, before the 29-minute limit of RFC 2177
 * (imk_conn_options has no say: servers cut at 30). Returns 0 when the
 * time is up or imk_conn_idle_stop() was called (from the event callback or,
 * with the async form, anywhere); with stop_on_change, also as soon as the
 * mailbox changes (EXISTS, EXPUNGE, VANISHED, FLAGS). Without IDLE
 * support: NOOP every 30 s instead. */
IMK_API int imk_conn_idle(imk_conn *c, int timeout_ms, int stop_on_change);
IMK_API void imk_conn_idle_stop(imk_conn *c);
IMK_API int imk_conn_idle_async(imk_conn *c, imk_done_fn done, void *user);

/* NOTIFY SET ... (RFC 5465): `spec` is the text after "NOTIFY " in
 * criteria syntax with %s args (e.g. "SET (SELECTED (MessageNew
 * MessageExpunge)) (PERSONAL (MailboxName))"), or NULL for NOTIFY NONE. */
IMK_API int imk_conn_notify(imk_conn *c, const char *spec, const char *const *args, size_t n_args,
                            const imk_result **res);
IMK_API int imk_conn_getquota(imk_conn *c, const char *root, const imk_result **res);
IMK_API int imk_conn_getquotaroot(imk_conn *c, const char *mailbox, const imk_result **res);
/* GETMETADATA mailbox ("" = server) entries; maxsize/depth 0 = omitted
 * (depth: 1 or -1 for infinity). */
IMK_API int imk_conn_getmetadata(imk_conn *c, const char *mailbox, const char *const *entries,
                                 size_t n, uint64_t maxsize, int depth, const imk_result **res);
/* SETMETADATA: values[i] NULL removes entries[i]. */
IMK_API int imk_conn_setmetadata(imk_conn *c, const char *mailbox, const char *const *entries,
                                 const char *const *values, size_t n, const imk_result **res);

/* Any command: `build` appends its arguments with the imk_command_* and
 * imk_op_* appenders (it may be NULL). For extensions imapkit has no
 * function for. */
typedef int (*imk_build_fn)(imk_op *op, void *user);
IMK_API int imk_conn_command(imk_conn *c, imk_command_kind kind, imk_build_fn build, void *user,
                             const imk_result **res);

/* ------------------------------------------------------------------ */
/* Async forms                                                         */
/* ------------------------------------------------------------------ */

/* The same operations, queued; `done` runs from imk_conn_process(). They
 * return 0 when queued, or a negative IMK_E* (nothing queued, `done` not
 * called). Several may be queued at once: the session pipelines them where
 * RFC 9051 allows. */
IMK_API int imk_conn_command_async(imk_conn *c, imk_command_kind kind, imk_build_fn build,
                                   void *user_build, imk_done_fn done, void *user);
IMK_API int imk_conn_noop_async(imk_conn *c, imk_done_fn done, void *user);
IMK_API int imk_conn_select_async(imk_conn *c, const char *mailbox, const imk_select_params *params,
                                  imk_done_fn done, void *user);
IMK_API int imk_conn_status_async(imk_conn *c, const char *mailbox, const char *items,
                                  imk_done_fn done, void *user);
IMK_API int imk_conn_list_async(imk_conn *c, const char *reference, const char *pattern,
                                const imk_list_params *params, imk_done_fn done, void *user);
IMK_API int imk_conn_search_async(imk_conn *c, int uid, const char *criteria,
                                  const char *const *args, size_t n_args, imk_done_fn done,
                                  void *user);
IMK_API int imk_conn_store_async(imk_conn *c, int uid, const char *set, const char *action,
                                 const char *const *flags, size_t n_flags, uint64_t unchangedsince,
                                 imk_done_fn done, void *user);
IMK_API int imk_conn_append_async(imk_conn *c, const char *mailbox, const imk_append_msg *msg,
                                  imk_done_fn done, void *user);
IMK_API int imk_conn_logout_async(imk_conn *c, imk_done_fn done, void *user);
/* FETCH with a callback per item (same items as the iterator, `item`
 * valid during the call); `done` at the end. */
typedef void (*imk_fetch_item_fn)(imk_conn *c, const imk_fetch_item *item, void *user);
IMK_API int imk_conn_fetch_async(imk_conn *c, int uid, const char *set, const char *items,
                                 imk_fetch_item_fn on_item, imk_done_fn done, void *user);

/* The same operations, queued; `done` runs from imk_conn_process(). Each
 * takes the arguments of its blocking form and checks them the same way
 * (argument and capability errors are returned at once, nothing queued);
 * the strings and arrays passed are copied into the command before the
 * call returns. */
IMK_API int imk_conn_capability_async(imk_conn *c, imk_done_fn done, void *user);
IMK_API int imk_conn_enable_async(imk_conn *c, const char *const *exts, size_t n, imk_done_fn done,
                                  void *user);
IMK_API int imk_conn_id_async(imk_conn *c, const char *const *kv, size_t n, imk_done_fn done,
                              void *user);
IMK_API int imk_conn_namespace_async(imk_conn *c, imk_done_fn done, void *user);
IMK_API int imk_conn_create_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user);
IMK_API int imk_conn_delete_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user);
IMK_API int imk_conn_rename_async(imk_conn *c, const char *from, const char *to, imk_done_fn done,
                                  void *user);
IMK_API int imk_conn_subscribe_async(imk_conn *c, const char *mailbox, imk_done_fn done,
                                     void *user);
IMK_API int imk_conn_unsubscribe_async(imk_conn *c, const char *mailbox, imk_done_fn done,
                                       void *user);
/* As imk_conn_unselect(); CLOSE (no UNSELECT offered, read-only mailbox)
 * is chosen only when no other command is queued or running, since a
 * queued SELECT could make the mailbox read-write before CLOSE runs:
 * otherwise IMK_ENOTSUP. */
IMK_API int imk_conn_unselect_async(imk_conn *c, imk_done_fn done, void *user);
/* imk_conn_append() of n messages. A multi-command APPEND (no MULTIAPPEND,
 * or more content than one command takes) is a chain: each command is
 * built when the one before completed OK, so msgs[0..n) and everything
 * they point to (data, flags, dates, descriptors, callbacks) must stay
 * valid until `done` runs. `done` runs once, with the last command's
 * result (the first refused one), or with the error that ended the chain
 * (res NULL). */
IMK_API int imk_conn_append_multi_async(imk_conn *c, const char *mailbox,
                                        const imk_append_msg *msgs, size_t n, imk_done_fn done,
                                        void *user);
IMK_API int imk_conn_sort_async(imk_conn *c, int uid, const char *sort_keys, const char *criteria,
                                const char *const *args, size_t n_args, imk_done_fn done,
                                void *user);
IMK_API int imk_conn_thread_async(imk_conn *c, int uid, const char *algorithm, const char *criteria,
                                  const char *const *args, size_t n_args, imk_done_fn done,
                                  void *user);
IMK_API int imk_conn_copy_async(imk_conn *c, int uid, const char *set, const char *mailbox,
                                imk_done_fn done, void *user);
/* As imk_conn_move(). The fallback is a chain: UID COPY, and when it
 * completed OK the STORE is queued from its completion, then the UID
 * EXPUNGE; other queued commands may run in between (UIDs do not shift).
 * `done` runs once: with the UID EXPUNGE's result carrying the COPY's
 * COPYUID, or the first refused command's result (a refused COPY: nothing
 * moved; a refused STORE: the copies exist, the originals are untouched),
 * or with the error that ended the chain (res NULL: the connection failed
 * or was freed, or the next command could not be started, e.g. IMK_EBUSY
 * while a FETCH iterator is open). */
IMK_API int imk_conn_move_async(imk_conn *c, int uid, const char *set, const char *mailbox,
                                imk_done_fn done, void *user);
IMK_API int imk_conn_expunge_async(imk_conn *c, const char *uid_set, imk_done_fn done, void *user);
IMK_API int imk_conn_notify_async(imk_conn *c, const char *spec, const char *const *args,
                                  size_t n_args, imk_done_fn done, void *user);
IMK_API int imk_conn_getquota_async(imk_conn *c, const char *root, imk_done_fn done, void *user);
IMK_API int imk_conn_getquotaroot_async(imk_conn *c, const char *mailbox, imk_done_fn done,
                                        void *user);
IMK_API int imk_conn_getmetadata_async(imk_conn *c, const char *mailbox, const char *const *entries,
                                       size_t n, uint64_t maxsize, int depth, imk_done_fn done,
                                       void *user);
IMK_API int imk_conn_setmetadata_async(imk_conn *c, const char *mailbox, const char *const *entries,
                                       const char *const *values, size_t n, imk_done_fn done,
                                       void *user);

#ifdef __cplusplus
}
#endif

#endif
