/* SPDX-License-Identifier: MIT */
/*
 * The public operations of client.h: imk_conn_<verb>() (blocking) and
 * imk_conn_<verb>_async(). Each is the same three steps over the seam of
 * client_int.h:
 *
 *     begin   imk__conn_begin: may a command start now? tag and verb
 *     build   an imk__build_* of build.c appends the arguments; when it
 *             fails its message is in imk__conn_errbuf and the op is
 *             abandoned (imk__conn_abandon), so nothing is sent
 *     go      imk__conn_run (wait for the result) or imk__conn_submit
 *             (queue it; `done` runs from imk_conn_process)
 *
 * Every operation has one static start_<verb>() doing begin and build,
 * used by both forms, so the two cannot disagree about arguments or
 * capabilities. Everything the server says (NO, BAD) is a result, not an
 * error: the functions here decide nothing about it, except where a
 * sequence of commands must stop (imk_conn_append without MULTIAPPEND, the
 * MOVE fallback).
 *
 * Choices that are not one command:
 *   - imk_conn_unselect: UNSELECT (RFC 3691, in IMAP4rev2) when offered. CLOSE
 *     is no substitute in general: it also expunges every message marked
 *     \Deleted (RFC 9051 section 6.4.1), which "leave the mailbox" must not
 *     do behind the caller's back. So without UNSELECT, CLOSE is sent only
 *     when the mailbox is read-only (EXAMINE or [READ-ONLY]: CLOSE then
 *     expunges nothing) AND no other command is queued or in flight: the
 *     read-only state is the one seen now, and a queued SELECT (an async
 *     one, or anything the application pipelined) could make the mailbox
 *     read-write by the time CLOSE runs. Otherwise IMK_ENOTSUP says so.
 *   - imk_conn_move without MOVE (RFC 6851 section 3.3 describes the fallback):
 *     UID COPY, then UID STORE +FLAGS.SILENT (\Deleted) on the same set,
 *     then UID EXPUNGE of that set (UIDPLUS), each only after the one
 *     before succeeded. Without UIDPLUS, a plain EXPUNGE would also remove
 *     messages others marked \Deleted, so IMK_ENOTSUP; with sequence
 *     numbers the set could shift between the commands, so the fallback
 *     asks for UIDs (IMK_ENOTSUP).
 *   - imk_conn_append of several messages: MULTIAPPEND (RFC 3502) when offered,
 *     in commands of at most APPEND_BATCH_INLINE bytes of inlined content
 *     (the encoder bounds one command at 16 MiB); else one APPEND each.
 *     Either way it stops at the first command the server refuses, and
 *     `res` is the last command's result.
 *
 * The async forms of the last two are chains: a small heap object (struct
 * chain) carries what the next command needs, and the completion callback
 * of each command starts the next one. Invariants of a chain:
 *   - the user's `done` runs exactly once, from a completion callback (so
 *     inside imk_conn_process(), or inside the connection's teardown, with
 *     the error, when the connection fails or is freed mid-chain: every
 *     pending command's callback then runs with that error);
 *   - the chain object is freed right after `done` returns, on every path;
 *     the connection is still valid then, because a free from inside a
 *     callback is deferred until the outermost library frame returns;
 *   - when starting the next command fails (the connection is closing, a
 *     FETCH iterator is open: IMK_EBUSY, out of memory), `done` gets that
 *     error and a NULL result, with the reason in imk_conn_error().
 * Between two commands of a chain other queued commands may run; UIDs do
 * not shift, so this changes nothing for the MOVE fallback's set.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/client_int.h"
#include "util/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Inlined APPEND content per MULTIAPPEND command (see above). */
#define APPEND_BATCH_INLINE ((uint64_t)8 * 1024 * 1024)

#define S(c) imk_conn_session(c)
#define ERR(c) imk__conn_errbuf(c), IMK__ERRBUF

/* ------------------------------------------------------------------ */
/* The three steps                                                     */
/* ------------------------------------------------------------------ */

static int begin(imk_conn *c, imk_command_kind kind, imk_op **op)
{
    *op = NULL;
    if (c == NULL)
        return IMK_EINVAL;
    return imk__conn_begin(c, kind, op);
}

/* After a builder: abandon the op when it failed (its message is in the
 * errbuf). */
static int built(imk_conn *c, imk_op *op, int rc)
{
    return rc < 0 ? imk__conn_abandon(c, op, rc) : 0;
}

static int run(imk_conn *c, int rc, imk_op *op, const imk_result **res)
{
    return rc < 0 ? rc : imk__conn_run(c, op, res);
}

static int submit(imk_conn *c, int rc, imk_op *op, imk_done_fn done, void *user)
{
    return rc < 0 ? rc : imk__conn_submit(c, op, done, user);
}

/* A command without arguments. */
static int run_bare(imk_conn *c, imk_command_kind kind, const imk_result **res)
{
    imk_op *op;
    int rc = begin(c, kind, &op);
    return run(c, rc, op, res);
}

static int submit_bare(imk_conn *c, imk_command_kind kind, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = begin(c, kind, &op);
    return submit(c, rc, op, done, user);
}

static int offers(imk_conn *c, const char *cap, int in_rev2)
{
    imk_session *s = S(c);
    return imk_session_has_capability(s, cap) ||
           (in_rev2 && imk_session_has_capability(s, "IMAP4rev2"));
}

/* ------------------------------------------------------------------ */
/* Chains of commands (see the top of the file)                        */
/* ------------------------------------------------------------------ */

/* COPYUID data carried across the MOVE fallback's commands. */
typedef struct copyuid {
    int has;
    uint64_t uidvalidity;
    imk_seqset source, dest;
    imk_range *ranges; /* both sets' ranges, one allocation */
} copyuid;

typedef enum chain_step {
    STEP_COPY,        /* MOVE fallback: UID COPY running */
    STEP_STORE,       /* UID STORE +FLAGS.SILENT (\Deleted) running */
    STEP_UID_EXPUNGE, /* UID EXPUNGE running */
    STEP_APPEND       /* imk_conn_append_multi_async: an APPEND running */
} chain_step;

typedef struct chain {
    imk_done_fn done;
    void *user;
    chain_step step;
    copyuid keep;               /* the MOVE fallback's COPYUID */
    const imk_append_msg *msgs; /* APPEND: the caller's, valid until done */
    size_t n, next;             /* APPEND: msgs[next..n) not yet sent */
    int multi;                  /* APPEND: MULTIAPPEND offered */
    char text[];                /* the UID set (MOVE) or mailbox (APPEND) */
} chain;

/* A chain with a copy of `text`; NULL when out of memory. */
static chain *chain_new(imk_conn *c, const char *text, imk_done_fn done, void *user)
{
    size_t n = strlen(text);
    chain *k = imk__malloc(imk__conn_alloc(c), sizeof(*k) + n + 1);
    if (k == NULL)
        return NULL;
    memset(k, 0, sizeof(*k));
    memcpy(k->text, text, n + 1);
    k->done = done;
    k->user = user;
    return k;
}

static void copyuid_free(imk_conn *c, copyuid *k)
{
    imk__free(imk__conn_alloc(c), k->ranges);
    k->ranges = NULL;
}

/* The fallback's result: `last` (status, text, expunged_uids) with the
 * COPY's COPYUID, its ranges read from `ranges` (k->ranges itself, or a
 * copy of them that lives longer). */
static void copyuid_apply(const copyuid *k, const imk_result *last, imk_result *m,
                          imk_range *ranges)
{
    *m = *last;
    m->has_copyuid = 1;
    m->uidvalidity = k->uidvalidity;
    m->source_uids = k->source;
    m->source_uids.ranges = ranges;
    m->dest_uids = k->dest;
    m->dest_uids.ranges = ranges + k->source.count;
}

/* End a chain: the user's `done` once (with the COPYUID kept, if any,
 * merged into `last`), then the chain goes. We run inside a completion
 * callback: if `done` frees the connection, the free waits until the
 * library's outermost frame returns, so `c` is still usable here. */
static void chain_end(imk_conn *c, chain *k, int err, const imk_result *last)
{
    imk_result merged;
    if (err == 0 && last != NULL && k->keep.has) {
        copyuid_apply(&k->keep, last, &merged, k->keep.ranges);
        last = &merged;
    }
    if (k->done != NULL)
        k->done(c, err < 0 ? err : 0, err < 0 ? NULL : last, k->user);
    copyuid_free(c, &k->keep);
    imk__free(imk__conn_alloc(c), k);
}

/* ------------------------------------------------------------------ */
/* Session                                                             */
/* ------------------------------------------------------------------ */

int imk_conn_noop(imk_conn *c, const imk_result **res)
{
    return run_bare(c, IMK_CMD_NOOP, res);
}

int imk_conn_noop_async(imk_conn *c, imk_done_fn done, void *user)
{
    return submit_bare(c, IMK_CMD_NOOP, done, user);
}

int imk_conn_capability(imk_conn *c, const imk_result **res)
{
    return run_bare(c, IMK_CMD_CAPABILITY, res);
}

int imk_conn_capability_async(imk_conn *c, imk_done_fn done, void *user)
{
    return submit_bare(c, IMK_CMD_CAPABILITY, done, user);
}

static int start_enable(imk_conn *c, const char *const *exts, size_t n, imk_op **op)
{
    int rc = begin(c, IMK_CMD_ENABLE, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_enable(S(c), *op, exts, n, ERR(c)));
    return rc;
}

int imk_conn_enable(imk_conn *c, const char *const *exts, size_t n, const imk_result **res)
{
    imk_op *op;
    int rc = start_enable(c, exts, n, &op);
    return run(c, rc, op, res);
}

int imk_conn_enable_async(imk_conn *c, const char *const *exts, size_t n, imk_done_fn done,
                          void *user)
{
    imk_op *op;
    int rc = start_enable(c, exts, n, &op);
    return submit(c, rc, op, done, user);
}

static int start_id(imk_conn *c, const char *const *kv, size_t n, imk_op **op)
{
    int rc = begin(c, IMK_CMD_ID, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_id(S(c), *op, kv, n, ERR(c)));
    return rc;
}

int imk_conn_id(imk_conn *c, const char *const *kv, size_t n, const imk_result **res)
{
    imk_op *op;
    int rc = start_id(c, kv, n, &op);
    return run(c, rc, op, res);
}

int imk_conn_id_async(imk_conn *c, const char *const *kv, size_t n, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_id(c, kv, n, &op);
    return submit(c, rc, op, done, user);
}

/* A command without arguments that needs a capability: begun first, so
 * that a connection that is not ready says so before anything else. */
static int start_needing(imk_conn *c, imk_command_kind kind, const char *cap, const char *instead,
                         imk_op **op)
{
    int rc = begin(c, kind, op);
    if (rc == 0 && !offers(c, cap, 1)) {
        if (imk_session_capabilities_known(S(c)))
            snprintf(imk__conn_errbuf(c), IMK__ERRBUF, "%s is not offered by the server: %s", cap,
                     instead);
        else
            snprintf(imk__conn_errbuf(c), IMK__ERRBUF,
                     "%s cannot be used yet: the server's capabilities are not known (send "
                     "CAPABILITY first)",
                     cap);
        rc = built(c, *op, IMK_ENOTSUP);
    }
    return rc;
}

/* NAMESPACE (RFC 2342, in IMAP4rev2). */
static int start_namespace(imk_conn *c, imk_op **op)
{
    return start_needing(c, IMK_CMD_NAMESPACE, "NAMESPACE",
                         "assume the personal namespace \"\" and take the delimiter from LIST", op);
}

int imk_conn_namespace(imk_conn *c, const imk_result **res)
{
    imk_op *op;
    int rc = start_namespace(c, &op);
    return run(c, rc, op, res);
}

int imk_conn_namespace_async(imk_conn *c, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_namespace(c, &op);
    return submit(c, rc, op, done, user);
}

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */
/* ------------------------------------------------------------------ */

static int start_list(imk_conn *c, const char *reference, const char *pattern,
                      const imk_list_params *params, imk_op **op)
{
    int rc = begin(c, IMK_CMD_LIST, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_list(S(c), *op, reference, pattern, params, ERR(c)));
    return rc;
}

int imk_conn_list(imk_conn *c, const char *reference, const char *pattern,
                  const imk_list_params *params, const imk_result **res)
{
    imk_op *op;
    int rc = start_list(c, reference, pattern, params, &op);
    return run(c, rc, op, res);
}

int imk_conn_list_async(imk_conn *c, const char *reference, const char *pattern,
                        const imk_list_params *params, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_list(c, reference, pattern, params, &op);
    return submit(c, rc, op, done, user);
}

static int start_status(imk_conn *c, const char *mailbox, const char *items, imk_op **op)
{
    int rc = begin(c, IMK_CMD_STATUS, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_status(S(c), *op, mailbox, items, ERR(c)));
    return rc;
}

int imk_conn_status(imk_conn *c, const char *mailbox, const char *items, const imk_result **res)
{
    imk_op *op;
    int rc = start_status(c, mailbox, items, &op);
    return run(c, rc, op, res);
}

int imk_conn_status_async(imk_conn *c, const char *mailbox, const char *items, imk_done_fn done,
                          void *user)
{
    imk_op *op;
    int rc = start_status(c, mailbox, items, &op);
    return submit(c, rc, op, done, user);
}

/* CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT. */
static int start_mailbox(imk_conn *c, imk_command_kind kind, const char *mailbox, imk_op **op)
{
    int rc = begin(c, kind, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_mailbox(S(c), *op, mailbox, ERR(c)));
    return rc;
}

static int run_mailbox(imk_conn *c, imk_command_kind kind, const char *mailbox,
                       const imk_result **res)
{
    imk_op *op;
    int rc = start_mailbox(c, kind, mailbox, &op);
    return run(c, rc, op, res);
}

static int submit_mailbox(imk_conn *c, imk_command_kind kind, const char *mailbox, imk_done_fn done,
                          void *user)
{
    imk_op *op;
    int rc = start_mailbox(c, kind, mailbox, &op);
    return submit(c, rc, op, done, user);
}

int imk_conn_create(imk_conn *c, const char *mailbox, const imk_result **res)
{
    return run_mailbox(c, IMK_CMD_CREATE, mailbox, res);
}

int imk_conn_create_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user)
{
    return submit_mailbox(c, IMK_CMD_CREATE, mailbox, done, user);
}

int imk_conn_delete(imk_conn *c, const char *mailbox, const imk_result **res)
{
    return run_mailbox(c, IMK_CMD_DELETE, mailbox, res);
}

int imk_conn_delete_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user)
{
    return submit_mailbox(c, IMK_CMD_DELETE, mailbox, done, user);
}

int imk_conn_subscribe(imk_conn *c, const char *mailbox, const imk_result **res)
{
    return run_mailbox(c, IMK_CMD_SUBSCRIBE, mailbox, res);
}

int imk_conn_subscribe_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user)
{
    return submit_mailbox(c, IMK_CMD_SUBSCRIBE, mailbox, done, user);
}

int imk_conn_unsubscribe(imk_conn *c, const char *mailbox, const imk_result **res)
{
    return run_mailbox(c, IMK_CMD_UNSUBSCRIBE, mailbox, res);
}

int imk_conn_unsubscribe_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user)
{
    return submit_mailbox(c, IMK_CMD_UNSUBSCRIBE, mailbox, done, user);
}

static int start_rename(imk_conn *c, const char *from, const char *to, imk_op **op)
{
    int rc = begin(c, IMK_CMD_RENAME, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_rename(S(c), *op, from, to, ERR(c)));
    return rc;
}

int imk_conn_rename(imk_conn *c, const char *from, const char *to, const imk_result **res)
{
    imk_op *op;
    int rc = start_rename(c, from, to, &op);
    return run(c, rc, op, res);
}

int imk_conn_rename_async(imk_conn *c, const char *from, const char *to, imk_done_fn done,
                          void *user)
{
    imk_op *op;
    int rc = start_rename(c, from, to, &op);
    return submit(c, rc, op, done, user);
}

static int start_select(imk_conn *c, const char *mailbox, const imk_select_params *params,
                        imk_op **op)
{
    int ro = params != NULL && params->readonly;
    int rc = begin(c, ro ? IMK_CMD_EXAMINE : IMK_CMD_SELECT, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_select(S(c), *op, mailbox, params, ERR(c)));
    return rc;
}

int imk_conn_select(imk_conn *c, const char *mailbox, const imk_select_params *params,
                    const imk_result **res)
{
    imk_op *op;
    int rc = start_select(c, mailbox, params, &op);
    return run(c, rc, op, res);
}

int imk_conn_select_async(imk_conn *c, const char *mailbox, const imk_select_params *params,
                          imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_select(c, mailbox, params, &op);
    return submit(c, rc, op, done, user);
}

/* UNSELECT, or CLOSE where it cannot expunge (see the top of the file). */
static int start_unselect(imk_conn *c, imk_op **op)
{
    *op = NULL;
    if (c == NULL)
        return IMK_EINVAL;
    imk_session *s = S(c);
    int read_only = !offers(c, "UNSELECT", 1) && imk_session_capabilities_known(s) &&
                    imk_session_state(s) == IMK_STATE_SELECTED &&
                    imk_view_read_only(imk_session_view(s));
    if (read_only && imk_session_pending(s) == 0)
        return begin(c, IMK_CMD_CLOSE, op);
    if (read_only)
        return start_needing(c, IMK_CMD_UNSELECT, "UNSELECT",
                             "CLOSE, safe in this read-only mailbox, is only sent when no other "
                             "command is queued (a queued SELECT could make the mailbox "
                             "read-write before it runs): call again once they completed",
                             op);
    return start_needing(c, IMK_CMD_UNSELECT, "UNSELECT",
                         "CLOSE would expunge the messages marked \\Deleted in this read-write "
                         "mailbox; select (or EXAMINE) another mailbox to leave it, or send CLOSE "
                         "with imk_conn_command() if expunging is wanted",
                         op);
}

int imk_conn_unselect(imk_conn *c, const imk_result **res)
{
    imk_op *op;
    int rc = start_unselect(c, &op);
    return run(c, rc, op, res);
}

int imk_conn_unselect_async(imk_conn *c, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_unselect(c, &op);
    return submit(c, rc, op, done, user);
}

/* APPEND of msgs[0..n): one message, or a MULTIAPPEND of n. */
static int start_append(imk_conn *c, const char *mailbox, const imk_append_msg *msgs, size_t n,
                        imk_op **op)
{
    int rc = begin(c, IMK_CMD_APPEND, op);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = built(c, *op, imk__build_append(S(c), *op, mailbox, &msgs[i], i > 0, ERR(c)));
    if (rc == 0 && (rc = imk__conn_stream_sources(c, *op, msgs, n)) < 0) {
        snprintf(imk__conn_errbuf(c), IMK__ERRBUF, "APPEND: cannot set up the content: %s",
                 imk_error_message(rc));
        rc = imk__conn_abandon(c, *op, rc);
    }
    return rc;
}

/* How many of msgs[0..n) go in one MULTIAPPEND (at least one). */
static size_t append_batch(const imk_append_msg *msgs, size_t n)
{
    uint64_t inlined = 0;
    size_t k = 0;
    for (; k < n; k++) {
        uint64_t add = imk__append_inline(&msgs[k]) ? msgs[k].size : 0;
        if (k > 0 && inlined + add > APPEND_BATCH_INLINE)
            break;
        inlined += add;
    }
    return k;
}

/* The checks both forms of a multi-message APPEND make; 1 when
 * MULTIAPPEND is to be used. */
static int append_plan(imk_conn *c, const imk_append_msg *msgs, size_t n)
{
    if (c == NULL)
        return IMK_EINVAL;
    if (msgs == NULL || n == 0)
        return imk__conn_fail(c, IMK_EINVAL, "APPEND: no message given (msgs NULL or n 0)");
    return n > 1 && imk_session_has_capability(S(c), "MULTIAPPEND");
}

int imk_conn_append(imk_conn *c, const char *mailbox, const imk_append_msg *msgs, size_t n,
                    const imk_result **res)
{
    int multi = append_plan(c, msgs, n);
    if (multi < 0)
        return multi;
    const imk_result *last = NULL;
    for (size_t i = 0; i < n;) {
        size_t k = multi ? append_batch(msgs + i, n - i) : 1;
        imk_op *op;
        int rc = start_append(c, mailbox, msgs + i, k, &op);
        if ((rc = run(c, rc, op, &last)) < 0)
            return rc;
        i += k;
        if (last == NULL || last->status != IMK_STATUS_OK)
            break;
    }
    if (res != NULL)
        *res = last;
    return 0;
}

int imk_conn_append_async(imk_conn *c, const char *mailbox, const imk_append_msg *msg,
                          imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_append(c, mailbox, msg, 1, &op);
    return submit(c, rc, op, done, user);
}

/* The next command of an APPEND chain: msgs[next..) in one command (a
 * MULTIAPPEND batch or one message). Returns 0 when submitted. */
static void append_step(imk_conn *c, int err, const imk_result *res, void *user);

static int append_next(imk_conn *c, chain *k)
{
    size_t batch = k->multi ? append_batch(k->msgs + k->next, k->n - k->next) : 1;
    imk_op *op;
    int rc = start_append(c, k->text, k->msgs + k->next, batch, &op);
    rc = submit(c, rc, op, append_step, k);
    if (rc == 0)
        k->next += batch;
    return rc;
}

static void append_step(imk_conn *c, int err, const imk_result *res, void *user)
{
    chain *k = user;
    if (err < 0 || res == NULL || res->status != IMK_STATUS_OK || k->next == k->n) {
        chain_end(c, k, err, res);
        return;
    }
    int rc = append_next(c, k);
    if (rc < 0)
        chain_end(c, k, rc, NULL);
}

int imk_conn_append_multi_async(imk_conn *c, const char *mailbox, const imk_append_msg *msgs,
                                size_t n, imk_done_fn done, void *user)
{
    int multi = append_plan(c, msgs, n);
    if (multi < 0)
        return multi;
    if (mailbox == NULL)
        return imk__conn_fail(c, IMK_EINVAL, "APPEND: no mailbox given");
    chain *k = chain_new(c, mailbox, done, user);
    if (k == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "APPEND: out of memory for the chain of commands");
    k->step = STEP_APPEND;
    k->msgs = msgs;
    k->n = n;
    k->multi = multi;
    int rc = append_next(c, k);
    if (rc < 0)
        imk__free(imk__conn_alloc(c), k); /* nothing queued: done is not called */
    return rc;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

static int start_search(imk_conn *c, int uid, const char *criteria, const char *const *args,
                        size_t n_args, imk_op **op)
{
    int rc = begin(c, uid ? IMK_CMD_UID_SEARCH : IMK_CMD_SEARCH, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_search(S(c), *op, criteria, args, n_args, ERR(c)));
    return rc;
}

int imk_conn_search(imk_conn *c, int uid, const char *criteria, const char *const *args,
                    size_t n_args, const imk_result **res)
{
    imk_op *op;
    int rc = start_search(c, uid, criteria, args, n_args, &op);
    return run(c, rc, op, res);
}

int imk_conn_search_async(imk_conn *c, int uid, const char *criteria, const char *const *args,
                          size_t n_args, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_search(c, uid, criteria, args, n_args, &op);
    return submit(c, rc, op, done, user);
}

static int start_sort(imk_conn *c, int uid, const char *sort_keys, const char *criteria,
                      const char *const *args, size_t n_args, imk_op **op)
{
    int rc = begin(c, uid ? IMK_CMD_UID_SORT : IMK_CMD_SORT, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_sort(S(c), *op, sort_keys, criteria, args, n_args, ERR(c)));
    return rc;
}

int imk_conn_sort(imk_conn *c, int uid, const char *sort_keys, const char *criteria,
                  const char *const *args, size_t n_args, const imk_result **res)
{
    imk_op *op;
    int rc = start_sort(c, uid, sort_keys, criteria, args, n_args, &op);
    return run(c, rc, op, res);
}

int imk_conn_sort_async(imk_conn *c, int uid, const char *sort_keys, const char *criteria,
                        const char *const *args, size_t n_args, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_sort(c, uid, sort_keys, criteria, args, n_args, &op);
    return submit(c, rc, op, done, user);
}

static int start_thread(imk_conn *c, int uid, const char *algorithm, const char *criteria,
                        const char *const *args, size_t n_args, imk_op **op)
{
    int rc = begin(c, uid ? IMK_CMD_UID_THREAD : IMK_CMD_THREAD, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_thread(S(c), *op, algorithm, criteria, args, n_args, ERR(c)));
    return rc;
}

int imk_conn_thread(imk_conn *c, int uid, const char *algorithm, const char *criteria,
                    const char *const *args, size_t n_args, const imk_result **res)
{
    imk_op *op;
    int rc = start_thread(c, uid, algorithm, criteria, args, n_args, &op);
    return run(c, rc, op, res);
}

int imk_conn_thread_async(imk_conn *c, int uid, const char *algorithm, const char *criteria,
                          const char *const *args, size_t n_args, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_thread(c, uid, algorithm, criteria, args, n_args, &op);
    return submit(c, rc, op, done, user);
}

/*
 * ESEARCH ALL is a set in the server's order (RFC 4731 section 3.1:
 * "sequence-set"); each range is expanded in the direction written.
 * Numbers are counted arithmetically, so a huge range costs nothing past
 * `cap`. "*" (0) has no value here and cannot appear in ALL; a range with
 * it counts its other end only.
 */
size_t imk_result_ids(const imk_result *res, uint32_t *out, size_t cap)
{
    if (res == NULL)
        return 0;
    if (res->esearch == NULL || !(res->esearch->present & IMK_ESEARCH_ALL)) {
        size_t n = res->search.count;
        if (out != NULL && n > 0)
            memcpy(out, res->search.numbers, (n < cap ? n : cap) * sizeof(*out));
        return n;
    }
    const imk_seqset *all = &res->esearch->all;
    size_t total = 0;
    for (size_t i = 0; i < all->count; i++) {
        uint32_t a = all->ranges[i].first, b = all->ranges[i].last;
        if (a == 0 || b == 0)
            a = b = a != 0 ? a : b;
        if (a == 0)
            continue;
        uint32_t lo = a < b ? a : b, span = (a < b ? b - a : a - b);
        for (uint32_t k = 0; out != NULL && total + k < cap; k++) {
            out[total + k] = a <= b ? lo + k : a - k;
            if (k == span)
                break;
        }
        size_t count = (size_t)span + 1;
        total = count > SIZE_MAX - total ? SIZE_MAX : total + count;
    }
    return total;
}

static int start_store(imk_conn *c, int uid, const char *set, const char *action,
                       const char *const *flags, size_t n_flags, uint64_t unchangedsince,
                       imk_op **op)
{
    int rc = begin(c, uid ? IMK_CMD_UID_STORE : IMK_CMD_STORE, op);
    if (rc == 0)
        rc =
            built(c, *op,
                  imk__build_store(S(c), *op, set, action, flags, n_flags, unchangedsince, ERR(c)));
    return rc;
}

int imk_conn_store(imk_conn *c, int uid, const char *set, const char *action,
                   const char *const *flags, size_t n_flags, uint64_t unchangedsince,
                   const imk_result **res)
{
    imk_op *op;
    int rc = start_store(c, uid, set, action, flags, n_flags, unchangedsince, &op);
    return run(c, rc, op, res);
}

int imk_conn_store_async(imk_conn *c, int uid, const char *set, const char *action,
                         const char *const *flags, size_t n_flags, uint64_t unchangedsince,
                         imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_store(c, uid, set, action, flags, n_flags, unchangedsince, &op);
    return submit(c, rc, op, done, user);
}

/* COPY, UID COPY, MOVE, UID MOVE. */
static int start_copy(imk_conn *c, imk_command_kind kind, const char *set, const char *mailbox,
                      imk_op **op)
{
    int rc = begin(c, kind, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_copy(S(c), *op, set, mailbox, ERR(c)));
    return rc;
}

static int run_copy(imk_conn *c, imk_command_kind kind, const char *set, const char *mailbox,
                    const imk_result **res)
{
    imk_op *op;
    int rc = start_copy(c, kind, set, mailbox, &op);
    return run(c, rc, op, res);
}

int imk_conn_copy(imk_conn *c, int uid, const char *set, const char *mailbox,
                  const imk_result **res)
{
    return run_copy(c, uid ? IMK_CMD_UID_COPY : IMK_CMD_COPY, set, mailbox, res);
}

int imk_conn_copy_async(imk_conn *c, int uid, const char *set, const char *mailbox,
                        imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_copy(c, uid ? IMK_CMD_UID_COPY : IMK_CMD_COPY, set, mailbox, &op);
    return submit(c, rc, op, done, user);
}

/* EXPUNGE (uid_set NULL) or UID EXPUNGE uid_set. */
static int start_expunge(imk_conn *c, const char *uid_set, imk_op **op)
{
    if (uid_set == NULL)
        return begin(c, IMK_CMD_EXPUNGE, op);
    int rc = begin(c, IMK_CMD_UID_EXPUNGE, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_uid_expunge(S(c), *op, uid_set, ERR(c)));
    return rc;
}

int imk_conn_expunge(imk_conn *c, const char *uid_set, const imk_result **res)
{
    imk_op *op;
    int rc = start_expunge(c, uid_set, &op);
    return run(c, rc, op, res);
}

int imk_conn_expunge_async(imk_conn *c, const char *uid_set, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_expunge(c, uid_set, &op);
    return submit(c, rc, op, done, user);
}

/*
 * MOVE, or the fallback described at the top of the file. Each step runs
 * only when the one before returned OK; a refusal ends the call with that
 * step's result (a refused STORE leaves the copies made: the source is
 * untouched, nothing is lost). The fallback's `res` is the UID EXPUNGE's
 * result (expunged_uids) with the COPY's COPYUID: that dies with the
 * COPY's result when the next command starts (RFC 4315), so it is kept
 * (copyuid_save) and merged back at the end.
 */
static const char *const deleted_flag[] = {"\\Deleted"};

static int copyuid_save(imk_conn *c, const imk_result *r, copyuid *k)
{
    memset(k, 0, sizeof(*k));
    if (!r->has_copyuid)
        return 0;
    size_t n = r->source_uids.count + r->dest_uids.count, bytes;
    if (n > SIZE_MAX / sizeof(imk_range))
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory keeping COPYUID");
    bytes = n * sizeof(imk_range);
    k->ranges = n ? imk__malloc(imk__conn_alloc(c), bytes) : NULL;
    if (n && k->ranges == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory keeping COPYUID");
    if (r->source_uids.count)
        memcpy(k->ranges, r->source_uids.ranges, r->source_uids.count * sizeof(imk_range));
    if (r->dest_uids.count)
        memcpy(k->ranges + r->source_uids.count, r->dest_uids.ranges,
               r->dest_uids.count * sizeof(imk_range));
    k->has = 1;
    k->uidvalidity = r->uidvalidity;
    k->source = r->source_uids;
    k->dest = r->dest_uids;
    return 0;
}

/* The blocking fallback's result, in memory that lives until the next
 * call on the connection (the async one lives on the callback's stack). */
static int copyuid_merge(imk_conn *c, const copyuid *k, const imk_result *last,
                         const imk_result **res)
{
    if (last == NULL || !k->has) {
        *res = last;
        return 0;
    }
    size_t n = k->source.count + k->dest.count;
    imk_result *m = imk__conn_scratch(c, sizeof(*m) + n * sizeof(imk_range));
    if (m == NULL)
        return imk__conn_fail(c, IMK_ENOMEM, "out of memory for the MOVE result");
    imk_range *ranges = (imk_range *)(m + 1);
    if (n)
        memcpy(ranges, k->ranges, n * sizeof(imk_range));
    copyuid_apply(k, last, m, ranges);
    *res = m;
    return 0;
}

/* Which way a MOVE goes: 1 = the MOVE command, 0 = the fallback, or
 * IMK_ENOTSUP (with the reason) when the fallback cannot be done safely. */
static int move_plan(imk_conn *c, int uid)
{
    /* Capabilities not known: MOVE's builder says to send CAPABILITY. */
    if (offers(c, "MOVE", 1) || !imk_session_capabilities_known(S(c)))
        return 1;
    if (!uid)
        return imk__conn_fail(c, IMK_ENOTSUP,
                              "MOVE is not offered by the server, and the fallback (COPY, STORE "
                              "\\Deleted, EXPUNGE) needs UIDs, which do not shift between the "
                              "commands: call imk_conn_move with uid = 1 and a UID set");
    if (!offers(c, "UIDPLUS", 1))
        return imk__conn_fail(c, IMK_ENOTSUP,
                              "MOVE is not offered by the server, and without UIDPLUS the "
                              "fallback's EXPUNGE would also remove every other message marked "
                              "\\Deleted: use imk_conn_copy, then mark and expunge if that is "
                              "acceptable");
    return 0;
}

static int start_move_store(imk_conn *c, const char *set, imk_op **op)
{
    return start_store(c, 1, set, "+FLAGS.SILENT", deleted_flag, 1, 0, op);
}

int imk_conn_move(imk_conn *c, int uid, const char *set, const char *mailbox,
                  const imk_result **res)
{
    if (c == NULL)
        return IMK_EINVAL;
    int plan = move_plan(c, uid);
    if (plan < 0)
        return plan;
    if (plan == 1)
        return run_copy(c, uid ? IMK_CMD_UID_MOVE : IMK_CMD_MOVE, set, mailbox, res);
    const imk_result *r = NULL;
    int rc = run_copy(c, IMK_CMD_UID_COPY, set, mailbox, &r);
    if (rc < 0 || r == NULL || r->status != IMK_STATUS_OK) {
        if (rc == 0 && res != NULL)
            *res = r; /* the refused COPY: nothing was moved */
        return rc;
    }
    copyuid keep;
    rc = copyuid_save(c, r, &keep);
    if (rc < 0)
        return rc;
    imk_op *op;
    rc = start_move_store(c, set, &op);
    rc = run(c, rc, op, &r);
    if (rc == 0 && r != NULL && r->status == IMK_STATUS_OK) {
        rc = start_expunge(c, set, &op);
        rc = run(c, rc, op, &r);
    }
    if (rc == 0 && res != NULL)
        rc = copyuid_merge(c, &keep, r, res);
    copyuid_free(c, &keep);
    return rc;
}

/* The async fallback: each completion starts the next step. */
static void move_step(imk_conn *c, int err, const imk_result *res, void *user)
{
    chain *k = user;
    if (err < 0 || res == NULL || res->status != IMK_STATUS_OK || k->step == STEP_UID_EXPUNGE) {
        chain_end(c, k, err, res); /* a refused COPY: its result, nothing moved */
        return;
    }
    imk_op *op = NULL;
    int rc;
    if (k->step == STEP_COPY) {
        rc = copyuid_save(c, res, &k->keep);
        if (rc == 0)
            rc = start_move_store(c, k->text, &op);
        k->step = STEP_STORE;
    } else {
        rc = start_expunge(c, k->text, &op);
        k->step = STEP_UID_EXPUNGE;
    }
    rc = submit(c, rc, op, move_step, k);
    if (rc < 0)
        chain_end(c, k, rc, NULL);
}

int imk_conn_move_async(imk_conn *c, int uid, const char *set, const char *mailbox,
                        imk_done_fn done, void *user)
{
    if (c == NULL)
        return IMK_EINVAL;
    int plan = move_plan(c, uid);
    if (plan < 0)
        return plan;
    imk_op *op;
    if (plan == 1) {
        int rc = start_copy(c, uid ? IMK_CMD_UID_MOVE : IMK_CMD_MOVE, set, mailbox, &op);
        return submit(c, rc, op, done, user);
    }
    int rc = start_copy(c, IMK_CMD_UID_COPY, set, mailbox, &op);
    if (rc < 0)
        return rc;
    /* The builder accepted the set, so it is a string. */
    chain *k = chain_new(c, set, done, user);
    if (k == NULL) {
        snprintf(imk__conn_errbuf(c), IMK__ERRBUF, "MOVE: out of memory for the chain of commands");
        return imk__conn_abandon(c, op, IMK_ENOMEM);
    }
    k->step = STEP_COPY;
    rc = submit(c, rc, op, move_step, k);
    if (rc < 0)
        imk__free(imk__conn_alloc(c), k); /* nothing queued: done is not called */
    return rc;
}

/* ------------------------------------------------------------------ */
/* NOTIFY, quota, metadata                                             */
/* ------------------------------------------------------------------ */

static int start_notify(imk_conn *c, const char *spec, const char *const *args, size_t n_args,
                        imk_op **op)
{
    int rc = begin(c, IMK_CMD_NOTIFY, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_notify(S(c), *op, spec, args, n_args, ERR(c)));
    return rc;
}

int imk_conn_notify(imk_conn *c, const char *spec, const char *const *args, size_t n_args,
                    const imk_result **res)
{
    imk_op *op;
    int rc = start_notify(c, spec, args, n_args, &op);
    return run(c, rc, op, res);
}

int imk_conn_notify_async(imk_conn *c, const char *spec, const char *const *args, size_t n_args,
                          imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_notify(c, spec, args, n_args, &op);
    return submit(c, rc, op, done, user);
}

static int start_getquota(imk_conn *c, const char *root, imk_op **op)
{
    int rc = begin(c, IMK_CMD_GETQUOTA, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_getquota(S(c), *op, root, ERR(c)));
    return rc;
}

int imk_conn_getquota(imk_conn *c, const char *root, const imk_result **res)
{
    imk_op *op;
    int rc = start_getquota(c, root, &op);
    return run(c, rc, op, res);
}

int imk_conn_getquota_async(imk_conn *c, const char *root, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_getquota(c, root, &op);
    return submit(c, rc, op, done, user);
}

int imk_conn_getquotaroot(imk_conn *c, const char *mailbox, const imk_result **res)
{
    return run_mailbox(c, IMK_CMD_GETQUOTAROOT, mailbox, res);
}

int imk_conn_getquotaroot_async(imk_conn *c, const char *mailbox, imk_done_fn done, void *user)
{
    return submit_mailbox(c, IMK_CMD_GETQUOTAROOT, mailbox, done, user);
}

static int start_getmetadata(imk_conn *c, const char *mailbox, const char *const *entries, size_t n,
                             uint64_t maxsize, int depth, imk_op **op)
{
    int rc = begin(c, IMK_CMD_GETMETADATA, op);
    if (rc == 0)
        rc = built(c, *op,
                   imk__build_getmetadata(S(c), *op, mailbox, entries, n, maxsize, depth, ERR(c)));
    return rc;
}

int imk_conn_getmetadata(imk_conn *c, const char *mailbox, const char *const *entries, size_t n,
                         uint64_t maxsize, int depth, const imk_result **res)
{
    imk_op *op;
    int rc = start_getmetadata(c, mailbox, entries, n, maxsize, depth, &op);
    return run(c, rc, op, res);
}

int imk_conn_getmetadata_async(imk_conn *c, const char *mailbox, const char *const *entries,
                               size_t n, uint64_t maxsize, int depth, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_getmetadata(c, mailbox, entries, n, maxsize, depth, &op);
    return submit(c, rc, op, done, user);
}

static int start_setmetadata(imk_conn *c, const char *mailbox, const char *const *entries,
                             const char *const *values, size_t n, imk_op **op)
{
    int rc = begin(c, IMK_CMD_SETMETADATA, op);
    if (rc == 0)
        rc = built(c, *op, imk__build_setmetadata(S(c), *op, mailbox, entries, values, n, ERR(c)));
    return rc;
}

int imk_conn_setmetadata(imk_conn *c, const char *mailbox, const char *const *entries,
                         const char *const *values, size_t n, const imk_result **res)
{
    imk_op *op;
    int rc = start_setmetadata(c, mailbox, entries, values, n, &op);
    return run(c, rc, op, res);
}

int imk_conn_setmetadata_async(imk_conn *c, const char *mailbox, const char *const *entries,
                               const char *const *values, size_t n, imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_setmetadata(c, mailbox, entries, values, n, &op);
    return submit(c, rc, op, done, user);
}

/* ------------------------------------------------------------------ */
/* Any command                                                         */
/* ------------------------------------------------------------------ */

/* The application's builder; its failure message is the encoder's when
 * it failed in an appender. */
static int start_command(imk_conn *c, imk_command_kind kind, imk_build_fn build, void *user,
                         imk_op **op)
{
    int rc = begin(c, kind, op);
    if (rc < 0 || build == NULL)
        return rc;
    rc = build(*op, user);
    if (rc >= 0)
        return 0;
    const char *why = imk_command_error(imk_op_args(*op));
    snprintf(imk__conn_errbuf(c), IMK__ERRBUF, "%s: the build callback failed: %s",
             imk_command_kind_verb(kind), why[0] != '\0' ? why : imk_error_message(rc));
    return imk__conn_abandon(c, *op, rc);
}

int imk_conn_command(imk_conn *c, imk_command_kind kind, imk_build_fn build, void *user,
                     const imk_result **res)
{
    imk_op *op;
    int rc = start_command(c, kind, build, user, &op);
    return run(c, rc, op, res);
}

int imk_conn_command_async(imk_conn *c, imk_command_kind kind, imk_build_fn build, void *user_build,
                           imk_done_fn done, void *user)
{
    imk_op *op;
    int rc = start_command(c, kind, build, user_build, &op);
    return submit(c, rc, op, done, user);
}
