/* SPDX-License-Identifier: MIT */
/*
 * The mailbox view's internal interface: how the session applies server
 * data to it. The public read-only interface is imapkit/view.h.
 *
 * Every apply function leaves the view consistent. Data that cannot be
 * true (EXPUNGE of a sequence number above EXISTS, FETCH of a message beyond
 * EXISTS, an EXISTS smaller than the current count, a UID that would break
 * the strictly ascending UID order) is reported through on_problem and
 * ignored: the view is not changed by it, and the call returns 0.
 * Errors returned are IMK_ENOMEM only (the view is then unchanged, too).
 */
#ifndef IMK_PROTO_VIEW_H
#define IMK_PROTO_VIEW_H

#include "imapkit/view.h"

/* Called synchronously, in arrival order, for each change. All optional. */
typedef struct imk__view_observer {
    /* new messages: EXISTS grew from old_count to new_count */
    void (*on_exists)(void *user, uint32_t old_count, uint32_t new_count);
    /* a message left (EXPUNGE by seq, or VANISHED by uid); uid 0 = unknown */
    void (*on_expunge)(void *user, uint32_t seq, uint32_t uid);
    /* the flags (and/or modseq) of a message changed; uid 0 = unknown */
    void (*on_flags)(void *user, uint32_t seq, uint32_t uid, imk_strlist flags, uint64_t modseq);
    /* UIDVALIDITY changed from a known value: the view was emptied */
    void (*on_uidvalidity)(void *user, uint64_t old_value, uint64_t new_value);
    /* impossible server data, ignored; `message` says what and why */
    void (*on_problem)(void *user, const char *message);
    void *user;
} imk__view_observer;

int imk__view_new(const imk_allocator *alloc, imk_view **out);
void imk__view_free(imk_view *v); /* NULL ok */
void imk__view_set_observer(imk_view *v, const imk__view_observer *obs);

/* Forget everything (a new SELECT/EXAMINE, or [CLOSED]). Keeps memory. */
void imk__view_reset(imk_view *v);

int imk__view_exists(imk_view *v, uint32_t count);
int imk__view_expunge(imk_view *v, uint32_t seq);
/* VANISHED (EARLIER or not): remove every message whose UID is in the set;
 * UIDs not in the view are ignored silently (EARLIER may name long-gone
 * UIDs). `*` in a range means "the highest UID". */
int imk__view_vanished(imk_view *v, const imk_seqset *uids);
/* Apply the UID, FLAGS and MODSEQ items of a FETCH (other items ignored). */
int imk__view_fetch(imk_view *v, const imk_fetch *fetch);

int imk__view_set_flags(imk_view *v, const imk_strlist *flags);
int imk__view_set_permanent_flags(imk_view *v, const imk_strlist *flags);
/* A changed UIDVALIDITY empties the message list and calls on_uidvalidity. */
void imk__view_set_uidvalidity(imk_view *v, uint64_t uidvalidity);
void imk__view_set_uidnext(imk_view *v, uint64_t uidnext);
void imk__view_set_recent(imk_view *v, uint32_t recent);
void imk__view_set_highest_modseq(imk_view *v, uint64_t modseq);
void imk__view_set_read_only(imk_view *v, int read_only);

/* Consistency check for tests and the fuzzer: 1 if every internal
 * invariant holds (counts, UID order, flag-table references). */
int imk__view_check(const imk_view *v);

/* Largest number of messages the view accepts: an EXISTS above it is
 * reported through on_problem and ignored, so that a hostile server cannot
 * make the client allocate 14 bytes for each of 4 billion messages.
 * Default 50,000,000 (about 700 MB); 0 = no limit but 2^32 - 1. */
void imk__view_set_max_messages(imk_view *v, uint32_t max_messages);

/* Slots per block (default 256), for tests that want many blocks with few
 * messages. Only on a view without blocks (new or reset). Returns 0,
 * IMK_EINVAL (outside 2..32768), IMK_ESTATE (the view has blocks) or
 * IMK_ENOMEM. */
int imk__view_set_block_size(imk_view *v, uint32_t slots);

#endif
