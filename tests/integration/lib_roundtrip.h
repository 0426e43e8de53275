/* SPDX-License-Identifier: MIT */
/*
 * lib_roundtrip.h - the IMAP round trips that every real-server test runs
 * (test_it_dovecot.c twice, test_it_courier.c and test_it_cyrus.c once):
 * connect, NAMESPACE, ID, CREATE + LIST, SPECIAL-USE, APPEND (small, 10 MB
 * from a callback, 1 MB from a descriptor, binary), SELECT, FETCH, SEARCH,
 * SORT, THREAD, STORE, CONDSTORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, IDLE,
 * STATUS, LIST-STATUS, RENAME, SUBSCRIBE, UNSELECT, DELETE, quota,
 * UTF8=ACCEPT, metadata, NOTIFY, QRESYNC, MULTIAPPEND, the event-loop
 * interface, LOGOUT.
 *
 * One rt_server describes what differs between servers: how to connect,
 * the personal namespace (prefix and delimiter: mailbox names are written
 * here as "it/sub" and become "INBOX.it.sub" on Courier), the texts and
 * codes a server is known to send, the quirks it is known for (each field
 * cites the RFC it departs from or the leeway it uses), and which
 * capabilities it must and must not offer. What a server lacks is decided
 * from the capabilities the client read: a step needing one is skipped
 * with a `skipped: ... (why)` line, and where the library has a fallback or
 * a refusal (synchronizing literals, plain SEARCH, MOVE as COPY + STORE +
 * UID EXPUNGE, CLOSE for UNSELECT, one APPEND per message, LIST-EXTENDED
 * and binary APPEND refused before sending) that is checked instead.
 *
 * The steps run in an order where each knows what the server holds; every
 * step checks what came back (UIDs, counts, flags, bytes, codes), not just
 * the return code, and no protocol error may be reported on the main
 * connection.
 *
 * Counting: unlike the other helpers (lib_it.h), the steps here CHECK
 * themselves. test.h's counters are per file, so they count in this file's
 * and rt_add_counts() hands them to the test file's before test_finish().
 */
#ifndef IMK_LIB_ROUNDTRIP_H
#define IMK_LIB_ROUNDTRIP_H

#include "lib_it.h"

/* rt_server.ns_other_users / ns_shared: the namespace list is NIL, or NIL
 * or empty; any other value is the number of namespaces expected. */
#define RT_NS_NIL (-1)
#define RT_NS_NONE 0

/* The large messages appended to "it/big" (see rt_run). */
#define RT_BIG_LEN (10u * 1024u * 1024u)
#define RT_BIG_SEED 7
#define RT_MID_LEN (1024u * 1024u)
#define RT_MID_SEED 8

typedef struct rt_server {
    /* Names the run and starts every trace label ("tunnel:A", "courier:B"). */
    const char *name;
    /* The options of a connection (it_options_tunnel / it_options_tls). */
    imk_conn_options (*options)(const char *label);
    /* LOGIN after connecting; NULL when the session is preauthenticated. */
    const char *user, *password;
    /* imk_auth.mechanisms of those logins ("LOGIN-COMMAND": the LOGIN
     * command, checked in the trace), or NULL: the library chooses. */
    const char *mechanisms;
    /* Implicit TLS to a daemon; 0: a tunnel, whose exit is checked. */
    int tls;
    /* Capabilities that must be offered, and that must not be (each list
     * ends with NULL). */
    const char *const *caps;
    const char *const *lacks;
    /* The greeting carries no capabilities: the client asked for them. */
    int asks_capability;
    /* The personal namespace: prefix ("" or "INBOX.") and delimiter. */
    const char *prefix;
    char delimiter;
    int ns_other_users, ns_shared; /* RT_NS_NIL, RT_NS_NONE or a count */
    /* The prefix of the first other-users and shared namespace, or NULL:
     * not checked. */
    const char *ns_other_users_prefix, *ns_shared_prefix;
    /* Sent, Drafts and Trash exist (auto-subscribed), with their
     * SPECIAL-USE attributes. */
    int special_use_boxes;
    /* ...but not subscribed (servers.sh's Cyrus: autocreate_inbox_folders
     * without autocreate_subscribe_folder). */
    int special_use_unsubscribed;
    /* ALREADYEXISTS and NONEXISTENT response codes (RFC 5530). */
    int response_codes;
    /* SELECT leaves out UIDNEXT, which RFC 3501 section 6.3.1 requires
     * (Courier 5.0): the view must then say 0, unknown. */
    int select_without_uidnext;
    /* SELECT reports HIGHESTMODSEQ before any CONDSTORE enabling command
     * (RFC 7162 section 3.1.2.1 requires it only after one; Cyrus 3.6
     * always sends it): checked when set. */
    int select_reports_modseq;
    /* SORT puts messages of the same base subject last first, where RFC
     * 5256 section 3 wants mailbox order (Courier 5.0). */
    int sort_ties_reversed;
    /* A binary APPEND (literal8) is stored base64-encoded, and BINARY[] is
     * that stored message, not the bytes appended (Cyrus 3.6). RFC 3516
     * section 4.4 lets the server change the CTE (section 6: only when
     * "absolutely necessary"), so BINARY[1] (the decoded part) and the
     * stored header (Content-Transfer-Encoding: base64) are checked
     * instead of BINARY[]. */
    int binary_stored_base64;
    /* Where MOVE puts a message, in the "it/sub" form ("Trash", "it"). */
    const char *move_to;
    /* The continuation request of a synchronizing literal and of IDLE, as
     * the server words it (checked in the trace), or NULL. */
    const char *literal_go_ahead;
    const char *idle_go_ahead;
    /* How long IDLE may wait for another session's APPEND to show. */
    int idle_wait_ms;
    /* The "name" of the server's ID answer (needed when ID is offered). */
    const char *id_name;
    /* The quota root of INBOX (1 GiB of STORAGE). */
    const char *quota_root;
    /* STORAGE usage (KiB) at least, with the 11 MiB of it/big stored; 0:
     * 10 MiB (Dovecot stores messages with LF line ends). */
    long quota_min_usage_kib;
    /* GETQUOTA answers NO to a user who is no administrator (Cyrus 3.6:
     * "NO Permission denied"), while GETQUOTAROOT gives the same quota.
     * RFC 9208 section 4.1.1 allows NO "permission denied"; the NO and
     * that the session goes on are checked instead of the QUOTA. */
    int getquota_refused;
    /* Text that the server's bytes hold once LOGOUT is done ("* BYE ..."). */
    const char *bye;
} rt_server;

/* Run every step against srv, each under IT_RUN (ok/FAIL lines; the trace
 * dumped on a failure). Needs it_init() first.
 *
 * What a run leaves on the server, for a test's own steps after it: INBOX
 * with 4 messages (UIDs 1, 2 and 3 of it_messages, and the one appended
 * while idling), "it/big" with it_big_message(RT_BIG_LEN, RT_BIG_SEED) at
 * UID 1, it_big_message(RT_MID_LEN, RT_MID_SEED) at UID 2 and, with BINARY,
 * it_binary_message() at UID 3, "it/multi" with 3 messages and the move_to
 * mailbox with 1 (names in the "it/sub" form). */
void rt_run(const rt_server *srv);

/* Add the checks and failures counted here since the last call to the
 * test file's counters: rt_add_counts(&test_checks, &test_failures) before
 * test_finish(). */
void rt_add_counts(int *checks, int *failures);

#endif
