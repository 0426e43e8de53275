/* SPDX-License-Identifier: MIT */
/*
 * imapkit/view.h - the mailbox view: what the client knows of the selected
 * mailbox (DESIGN.md section 3).
 *
 * The session owns the view and applies EXISTS, EXPUNGE, VANISHED, FETCH
 * (UID, FLAGS, MODSEQ), FLAGS, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT,
 * HIGHESTMODSEQ, READ-ONLY / READ-WRITE and CLOSED to it in arrival order,
 * before any command result or event sees them. Applications read it at
 * any time through these functions; they never change it.
 *
 * Costs: sequence number <-> UID in O(log n), one EXPUNGE in O(log n), a
 * VANISHED of k UIDs in O(k log n), EXISTS growth amortised O(1); at most 16
 * bytes per message with UID, flags and MODSEQ.
 *
 * A message whose UID the client has not learnt yet (it arrived by EXISTS
 * and was never FETCHed with UID) has UID 0 in this interface.
 */
#ifndef IMAPKIT_VIEW_H
#define IMAPKIT_VIEW_H

#include "imapkit/common.h"
#include "imapkit/response.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct imk_view imk_view;

/* One message as the view knows it. `flags` points into the view's flag
 * table and stays valid until the view next changes. */
typedef struct imk_view_message {
    uint32_t seq;
    uint32_t uid;    /* 0 = not known yet */
    int flags_known; /* FLAGS seen for this message */
    imk_strlist flags;
    uint64_t modseq; /* 0 = not known */
} imk_view_message;

/* Number of messages (the last EXISTS, less the expunges since). */
IMK_API uint32_t imk_view_exists(const imk_view *v);

/* UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ: 0 when the server has not sent them. */
IMK_API uint64_t imk_view_uidvalidity(const imk_view *v);
IMK_API uint64_t imk_view_uidnext(const imk_view *v);
IMK_API uint64_t imk_view_highest_modseq(const imk_view *v);

/* The last RECENT count the server sent (RFC 3501 7.3.2: messages with
 * \Recent); 0 when none was sent (IMAP4rev2 servers send none). */
IMK_API uint32_t imk_view_recent(const imk_view *v);

/* 1 when the mailbox was opened read-only (EXAMINE or [READ-ONLY]). */
IMK_API int imk_view_read_only(const imk_view *v);

/* The FLAGS and PERMANENTFLAGS lists last sent; valid until the view next
 * changes. */
IMK_API imk_strlist imk_view_flags(const imk_view *v);
IMK_API imk_strlist imk_view_permanent_flags(const imk_view *v);

/* The message with sequence number `seq` (1-based). Returns 1 and fills
 * *out, or 0 when seq is 0 or beyond EXISTS. */
IMK_API int imk_view_message_at(const imk_view *v, uint32_t seq, imk_view_message *out);

/* The sequence number of the message with `uid`, or 0 when no message of
 * the view has that UID (expunged, not yet known, or never existed). */
IMK_API uint32_t imk_view_seq_of_uid(const imk_view *v, uint32_t uid);

/* The UID of message `seq`, or 0 when unknown or out of range. */
IMK_API uint32_t imk_view_uid_of_seq(const imk_view *v, uint32_t seq);

/* Bytes of memory the view holds (for tests and benchmarks). */
IMK_API size_t imk_view_memory(const imk_view *v);

#ifdef __cplusplus
}
#endif

#endif
