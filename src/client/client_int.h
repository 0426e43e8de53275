/* SPDX-License-Identifier: MIT */
/*
 * client/client_int.h - the seam between the connection core (conn.c and
 * friends: transport, event loop, blocking waits, callbacks) and the
 * operations (ops.c: one builder per IMAP command, and the public
 * imk_conn_<verb>() / imk_<verb>_async() wrappers).
 *
 * A public operation is written as:
 *
 *     int imk_conn_status(imk_conn *c, const char *mailbox, const char *items,
 *                    const imk_result **res)
 *     {
 *         imk_op *op;
 *         int rc = imk__conn_begin(c, IMK_CMD_STATUS, &op);
 *         if (rc < 0) return rc;
 *         rc = imk__build_status(imk_conn_session(c), op, mailbox, items,
 *                                imk__conn_errbuf(c), IMK__ERRBUF);
 *         if (rc < 0) return imk__conn_abandon(c, op, rc);
 *         return imk__conn_run(c, op, res);        // or imk__conn_submit(c, op, done, user)
 *     }
 *
 * Builders (imk__build_*) work on a bare session and an op already begun
 * with its verb: they append arguments (imk_op_args, imk_op_set,
 * imk_op_mailbox) and check capabilities. They never send anything and are
 * unit-tested without a network.
 */
#ifndef IMK_CLIENT_CLIENT_INT_H
#define IMK_CLIENT_CLIENT_INT_H

#include "imapkit/client.h"

#include <stdarg.h>
#include <stddef.h>

#define IMK__ERRBUF 512

/* ---- conn core (conn.c) ---- */

/* Check that a command may start now (connected, not inside a blocking
 * call from a callback: IMK_EBUSY, no iterator open: IMK_EBUSY) and begin
 * it on the session. On failure the reason is in imk_conn_error(). */
int imk__conn_begin(imk_conn *c, imk_command_kind kind, imk_op **out);
/* Discard an op that was begun but could not be built; records the
 * builder's message (already in imk__conn_errbuf) and returns rc. */
int imk__conn_abandon(imk_conn *c, imk_op *op, int rc);
/* Queue the op; `done` (may be NULL) runs when it completes or fails. */
int imk__conn_submit(imk_conn *c, imk_op *op, imk_done_fn done, void *user);
/* Queue the op and drive the connection until it completes, the deadline
 * passes or the connection fails. Returns 0 with *res (if res) valid until
 * the next call on the connection, or a negative IMK_E*. */
int imk__conn_run(imk_conn *c, imk_op *op, const imk_result **res);
/* The buffer where builders write their error message (IMK__ERRBUF bytes),
 * shown by imk_conn_error() after imk__conn_abandon. */
char *imk__conn_errbuf(imk_conn *c);
/* Record an error message for the connection (printf-style); returns code. */
int imk__conn_fail(imk_conn *c, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* APPEND content: for each literal of `op` announced with
 * imk_command_literal_stream(), in order, the core streams the content of
 * the next of msgs[0..n) whose imk__append_inline() is 0 (from memory, the
 * fd or the callback) through imk_session_stream_write(). The array is
 * copied; the data, fd and callbacks must stay valid until the op
 * completes. Call after the builder and before submit/run. */
int imk__conn_stream_sources(imk_conn *c, imk_op *op, const imk_append_msg *msgs, size_t n);
/* 1 when the builder copies this message's content into the command
 * (memory content of at most 64 KiB), 0 when it is streamed. */
int imk__append_inline(const imk_append_msg *m);
/* Memory from the connection's allocator, valid until the next call on the
 * connection (as results are); NULL when out of memory. For results a
 * call assembles from several commands. */
void *imk__conn_scratch(imk_conn *c, size_t size);
/* The connection's allocator. */
const imk_allocator *imk__conn_alloc(const imk_conn *c);

/* ---- builders (ops.c, criteria.c): arguments only ---- */

/* Append criteria text with %s placeholders replaced by args (see
 * client.h): tokens through imk_command_token, args through
 * imk_command_string. *needs_charset is set when an arg is not ASCII and
 * UTF8=ACCEPT is not enabled (the caller then writes CHARSET UTF-8 first:
 * call once with cmd NULL to learn it). */
int imk__criteria(imk_command *cmd, const char *criteria, const char *const *args, size_t n_args,
                  int utf8_enabled, int *needs_charset, char *err, size_t errlen);

int imk__build_enable(imk_session *s, imk_op *op, const char *const *exts, size_t n, char *err,
                      size_t errlen);
int imk__build_id(imk_session *s, imk_op *op, const char *const *kv, size_t n, char *err,
                  size_t errlen);
int imk__build_list(imk_session *s, imk_op *op, const char *reference, const char *pattern,
                    const imk_list_params *p, char *err, size_t errlen);
int imk__build_status(imk_session *s, imk_op *op, const char *mailbox, const char *items, char *err,
                      size_t errlen);
/* CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT: one mailbox. */
int imk__build_mailbox(imk_session *s, imk_op *op, const char *mailbox, char *err, size_t errlen);
int imk__build_rename(imk_session *s, imk_op *op, const char *from, const char *to, char *err,
                      size_t errlen);
int imk__build_select(imk_session *s, imk_op *op, const char *mailbox, const imk_select_params *p,
                      char *err, size_t errlen);
/* APPEND one message (or with more != 0, one more message of a
 * MULTIAPPEND being built on the same op). Streamed content (fd/callback)
 * becomes a literal announced with imk_command_literal_stream(): the core
 * feeds its bytes with imk_session_stream_write(). */
int imk__build_append(imk_session *s, imk_op *op, const char *mailbox, const imk_append_msg *m,
                      int more, char *err, size_t errlen);
int imk__build_search(imk_session *s, imk_op *op, const char *criteria, const char *const *args,
                      size_t n_args, char *err, size_t errlen);
int imk__build_sort(imk_session *s, imk_op *op, const char *keys, const char *criteria,
                    const char *const *args, size_t n_args, char *err, size_t errlen);
int imk__build_thread(imk_session *s, imk_op *op, const char *algorithm, const char *criteria,
                      const char *const *args, size_t n_args, char *err, size_t errlen);
int imk__build_fetch(imk_session *s, imk_op *op, const char *set, const char *items, char *err,
                     size_t errlen);
int imk__build_store(imk_session *s, imk_op *op, const char *set, const char *action,
                     const char *const *flags, size_t n_flags, uint64_t unchangedsince, char *err,
                     size_t errlen);
/* COPY / MOVE (and the UID forms): set and mailbox. */
int imk__build_copy(imk_session *s, imk_op *op, const char *set, const char *mailbox, char *err,
                    size_t errlen);
int imk__build_uid_expunge(imk_session *s, imk_op *op, const char *set, char *err, size_t errlen);
int imk__build_notify(imk_session *s, imk_op *op, const char *spec, const char *const *args,
                      size_t n_args, char *err, size_t errlen);
int imk__build_getquota(imk_session *s, imk_op *op, const char *root, char *err, size_t errlen);
int imk__build_getmetadata(imk_session *s, imk_op *op, const char *mailbox,
                           const char *const *entries, size_t n, uint64_t maxsize, int depth,
                           char *err, size_t errlen);
int imk__build_setmetadata(imk_session *s, imk_op *op, const char *mailbox,
                           const char *const *entries, const char *const *values, size_t n,
                           char *err, size_t errlen);

#endif
