/* SPDX-License-Identifier: MIT */
/*
 * lib_it.h - what the real-server tests (tests/integration/test_it_*.c)
 * share: starting and stopping the private servers of servers.sh, the
 * skip rule, connection options, a trace of every connection, mail
 * fixtures, and checks that compare what a server returns with what was
 * stored.
 *
 * Rules kept here so that every test obeys them:
 *   - a server that cannot be started is a skip (exit 77), except under
 *     IMK_IT_REQUIRED=1 (CI), where it is a failure (exit 1);
 *   - no server outlives the test: every daemon started is stopped at exit,
 *     on SIGINT/SIGTERM/SIGHUP, and by a watchdog (SIGALRM) when a test
 *     hangs; the scratch directory is removed unless IMK_IT_KEEP=1;
 *   - only loopback addresses are used;
 *   - helpers never CHECK (test.h's counters are per file): they return 1
 *     for "as expected" and 0 otherwise, after printing why on stderr, and
 *     the test file CHECKs that.
 *
 * Environment: IMK_IT_TRACE=1 prints every connection's traffic as it
 * happens (passwords redacted by the library); without it the last
 * traffic is printed when a test function fails (IT_RUN).
 */
#ifndef IMK_LIB_IT_H
#define IMK_LIB_IT_H

#include "imapkit/client.h"

#include <stddef.h>
#include <stdint.h>

#define IT_USER "alice"
#define IT_PASSWORD "wonderland"
#define IT_USER2 "bob"
#define IT_PASSWORD2 "builder"

/* ---- setup, skip, cleanup ---- */

/* Call first in main(): names the test in messages, installs the exit and
 * signal cleanup and a watchdog of `watchdog_s` seconds. */
void it_init(const char *name, unsigned watchdog_s);

/* The server cannot be started here: print why, exit 77 (or 1 with
 * IMK_IT_REQUIRED=1). */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
void it_skip(const char *fmt, ...);

/* A fresh directory under the test's scratch root (under $IMK_BUILD_DIR,
 * else /tmp), traversable by the unprivileged user servers.sh runs mail
 * as; its path into out. Exits on failure. */
void it_scratch(const char *sub, char *out, size_t cap);

/* Print a line prefixed with the test's name (to stderr). */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void it_note(const char *fmt, ...);

/* ---- servers ---- */

typedef struct it_dovecot {
    char dir[1024];
    char imap_port[16], imaps_port[16];
    /* with tls_variants: */
    char wronghost_port[16], expired_port[16], unknownca_port[16], selfsigned_port[16],
        notls_port[16];
    int ipv6;          /* ::1 listens too */
    char alt_host[32]; /* "127.0.0.2" when it listens too, else "" */
    char pki_dir[1024];
    char ca_file[1100];
    char log_file[1100];
    int running;
} it_dovecot;

/* Start a Dovecot daemon (servers.sh dovecot-daemon); skips when it
 * cannot. */
void it_dovecot_start(it_dovecot *d, int tls_variants);
void it_dovecot_stop(it_dovecot *d);
/* How many lines of the daemon's log contain `needle`. */
int it_dovecot_log_count(const it_dovecot *d, const char *needle);
/* The Maildir of a daemon user. */
void it_dovecot_maildir(const it_dovecot *d, const char *user, char *out, size_t cap);

/* servers.sh `kind` (dovecot-tunnel, courier-tunnel) for a new scratch
 * directory `sub`: the tunnel command (malloc'd); skips when the server is
 * not installed. *dir_out (if not NULL) receives the directory. */
char *it_tunnel(const char *kind, const char *sub, char *dir_out, size_t dir_cap);

/* ---- connections ---- */

/* IMK_CONN_OPTIONS_INIT with short deadlines and the trace hook; the trace
 * label names the connection in dumps. */
imk_conn_options it_options(const char *label);
/* Implicit TLS / STARTTLS / cleartext to the daemon, verified with its CA. */
imk_conn_options it_options_tls(const it_dovecot *d, const char *label);
imk_conn_options it_options_tunnel(const char *command, const char *label);

/* imk_conn_new + imk_connect; NULL (with the reason printed) on failure. */
imk_conn *it_connect(const imk_conn_options *o);
/* it_connect + imk_login (user/password, mechanisms NULL); NULL on failure. */
imk_conn *it_connect_login(const imk_conn_options *o, const char *user, const char *password);

/* Bytes the client has sent on connections with this trace label so far
 * (for "nothing was sent" checks). */
size_t it_trace_sent(const char *label);
/* 1 when the client's bytes (since `from`, an it_trace_sent value) on
 * that label contain `needle`. */
int it_trace_sent_contains(const char *label, size_t from, const char *needle);
/* How often `needle` occurs in the client's bytes since `from`. */
int it_trace_sent_count(const char *label, size_t from, const char *needle);
/* 1 when the server's bytes on that label contain `needle` (the trace
 * keeps the last 1 MiB per label). */
int it_trace_received_contains(const char *label, const char *needle);
/* Print the tail of the trace (every connection) to stderr. */
void it_trace_dump(void);

/* ---- running test functions ---- */

/* RUN for these tests: reports ok/FAIL like RUN and, on failure, dumps the
 * trace. Counts failures of the test file's CHECKs. */
#define IT_RUN(fn)                                                                                 \
    do {                                                                                           \
        int it_before_ = test_failures;                                                            \
        it_begin(#fn);                                                                             \
        fn();                                                                                      \
        it_end(#fn, test_failures - it_before_);                                                   \
    } while (0)
void it_begin(const char *name);
void it_end(const char *name, int failures);

/* ---- events ---- */

/* A recorder for imk_conn_on_event: counts per type, and the last VANISHED
 * / EXISTS / UNSOLICITED details. Install with it_events_attach. */
typedef struct it_events {
    unsigned count[32];
    uint32_t last_exists;
    int vanished_earlier;
    char vanished_uids[512]; /* the last VANISHED set, "4:5,9" */
    imk_range vanished_ranges[32];
    size_t vanished_count;        /* ranges of every VANISHED seen */
    char unsolicited_names[512];  /* kinds of unsolicited responses, "STATUS LIST " */
    char unsolicited_status[512]; /* "box=2 " per unsolicited STATUS: mailbox=MESSAGES */
    int stop_idle_on_exists;
} it_events;
void it_events_attach(imk_conn *c, it_events *ev);
void it_events_clear(it_events *ev);
/* Whether any VANISHED seen named uid. */
int it_events_vanished_has(const it_events *ev, uint32_t uid);

/* ---- mail ---- */

/* A few related messages (a thread, dates, subjects, a multipart), CRLF. */
typedef struct it_message {
    const char *name;
    const char *text;
    const char *subject;
    const char *message_id;
    const char *date;
} it_message;
extern const it_message it_messages[];
extern const size_t it_message_count;

/* A message of exactly `size` bytes (header + text of pseudo-random
 * printable lines, CRLF), deterministic for `seed`. malloc'd. */
char *it_big_message(size_t size, unsigned seed);
/* A message whose body holds every byte value including NUL (declared
 * Content-Transfer-Encoding: binary). malloc'd, *len_out its size. */
char *it_binary_message(size_t *len_out);

/* Write a message straight into a Maildir (tmp/ then new/, or cur/ with
 * ":2,<flags>" when flags is not NULL), owned like the Maildir. 1 = ok. */
int it_maildir_put(const char *maildir, const char *data, size_t len, const char *flags);

/* ---- checks (1 = as expected, else 0 with the reason printed) ---- */

/* UID FETCH uid BODY.PEEK[] (or `section` such as "BINARY.PEEK[]") through
 * the iterator; the concatenated data must equal expect/len. */
int it_fetch_equals(imk_conn *c, uint32_t uid, const char *section, const void *expect, size_t len);
/* Whether the result's LIST entries hold a mailbox named utf8 (decoded). */
const imk_list_entry *it_list_find(const imk_result *r, const char *utf8);
/* Whether a flag list holds `flag` (case-insensitive). */
int it_has_flag(imk_strlist flags, const char *flag);
/* An imk_str equals a C string (exactly / ASCII case-insensitively). */
int it_str_eq(imk_str s, const char *c);
int it_str_ieq(imk_str s, const char *c);
/* A seqset contains n (0 in a range means `*`: unbounded). */
int it_seqset_has(imk_seqset set, uint32_t n);
/* The number of numbers in a seqset without `*`. */
size_t it_seqset_count(imk_seqset set);
/* The result of the last call, described in one line ("OK [CODE] text"). */
const char *it_describe(const imk_result *r);

/* res is there and says OK. */
int it_ok(const imk_result *r);
/* The first UID of APPENDUID, or 0. */
uint32_t it_first_dest_uid(const imk_result *r);
/* APPEND one small message from text; its UID (0 on failure, or when the
 * server gives no APPENDUID: then 1 is returned on success). */
uint32_t it_append_text(imk_conn *c, const char *mailbox, const char *text);
/* The ids of a SEARCH/SORT result are exactly want[0..n) (printed if not). */
int it_ids_equal(const imk_result *r, const uint32_t *want, size_t n);
/* FETCH 1:* (UID FLAGS) through the iterator, as a client does after a
 * SELECT so that its view knows every UID. Returns the number of records,
 * or -1 (printed). */
int it_learn_uids(imk_conn *c);
/* res->expunged_uids is exactly want[0..n) (printed if not). */
int it_expunged_equal(const imk_result *r, const uint32_t *want, size_t n);
/* A date-time as minutes since an arbitrary epoch, in UTC (servers may
 * give INTERNALDATE back in another zone than it was stored with). */
long it_minutes_utc(const imk_datetime *t);
/* The flags of the message with `uid` in the view (empty if unknown). */
imk_strlist it_view_flags(imk_conn *c, uint32_t uid);
void it_sleep_ms(long ms);

/* The number of messages in a mailbox (STATUS MESSAGES), or -1. */
long it_status_messages(imk_conn *c, const char *mailbox);

/* Run `fn` in a child process after `delay_ms`, while the caller goes on
 * (for "a second connection changes the mailbox while the first idles").
 * it_child_wait returns the child's exit status (0 = its checks passed). */
int it_child_start(unsigned delay_ms, int (*fn)(void *), void *arg);
int it_child_wait(int pid);

/* Drive an event-loop connection (imk_conn_fd / events / timeout /
 * process, with poll) until *flag becomes non-zero or timeout_ms passes.
 * Returns 0, IMK_ETIMEDOUT, or the error imk_conn_process returned. */
int it_loop(imk_conn *c, const int *flag, int timeout_ms);

/* Milliseconds on a monotonic clock. */
int64_t it_now_ms(void);

#endif
