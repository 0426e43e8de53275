/* SPDX-License-Identifier: MIT */
/*
 * lib_stress.h - helpers for the integration tests that push a real server
 * and the client hard: concurrency (test_it_concurrency), failures
 * (test_it_failure) and a 1 GiB message (test_it_bigmsg).
 *
 * What lives here and why it is not in lib_it:
 *   - a seeded random generator, so a failing run is printed with the seed
 *     that reproduces its choices;
 *   - Maildir files written directly (a mailbox of 1,000 messages or one of
 *     1 GiB exists before the server first looks at it: filling it through
 *     IMAP would cost minutes and test the wrong thing);
 *   - finding the server process that serves one connection (by a marker in
 *     its command line for a tunnel, by the TCP connection's other end for a
 *     daemon) so a test can kill or stop exactly that process;
 *   - a fake server that accepts and then never speaks (or speaks only its
 *     greeting), for deadline tests;
 *   - the process's resident memory (VmRSS / VmHWM, with the peak reset
 *     through /proc/self/clear_refs) and free disk space;
 *   - flag lists in a canonical form (sorted, lower case, \Recent left out)
 *     so a view's flags and the server's can be compared as strings.
 *
 * Everything is Linux + POSIX, loopback only, and returns -1 / 0 rather
 * than exiting: the test decides whether a failure is a skip or an error.
 */
#ifndef IMK_IT_LIB_STRESS_H
#define IMK_IT_LIB_STRESS_H

#include "imapkit/response.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- random ---------------------------------------------------------- */

/* xorshift64*: small, fast, and the same sequence on every platform. */
typedef struct stress_rng {
    uint64_t state;
} stress_rng;

void stress_rng_seed(stress_rng *r, uint64_t seed);
uint64_t stress_rng_next(stress_rng *r);
/* Uniform in [0, n) (n > 0). */
uint32_t stress_rng_below(stress_rng *r, uint32_t n);

/* The seed named by environment variable `name` (decimal or 0x hex), or,
 * when unset, one made from the clock and the process id. */
uint64_t stress_seed(const char *name);

/* ---- time ------------------------------------------------------------ */

/* Monotonic milliseconds. */
int64_t stress_now_ms(void);
void stress_sleep_ms(int ms);

/* ---- memory and disk ------------------------------------------------- */

/* A "kB" field of /proc/self/status ("VmRSS", "VmHWM") in KiB, or -1. */
long stress_status_kib(const char *field);
/* Reset VmHWM to the current VmRSS (writes "5" to /proc/self/clear_refs,
 * Linux 4.0+). 0 on success, -1 when the kernel does not allow it. */
int stress_reset_peak_rss(void);
/* Bytes available to an unprivileged user on the file system of `path`. */
int stress_free_bytes(const char *path, uint64_t *out);

/* ---- files ----------------------------------------------------------- */

/* The owner of `path`. 0 or -1. */
int stress_owner_of(const char *path, uid_t *uid, gid_t *gid);
/* Create `dir` (mode 0700) with cur/, new/ and tmp/; when running as root,
 * give all four to uid:gid (the user the server's mail processes run as). */
int stress_maildir_create(const char *dir, uid_t uid, gid_t gid);
/* Write one message as dir/cur/<unique>,S=<len>,W=<len>:2,<info>, where
 * `info` are the Maildir flag letters in ASCII order ("FS"; "" for none).
 * The content must use CRLF line ends (then S= and W= are both its size,
 * and the server's bytes equal the file's). Given to uid:gid when root.
 * `serial` makes the name unique within the process and orders the files. */
int stress_maildir_put(const char *dir, unsigned long serial, const char *info, const void *data,
                       size_t len, uid_t uid, gid_t gid);
/* The path of the file stress_maildir_put would write (for deleting it). */
int stress_maildir_path(const char *dir, unsigned long serial, const char *info, size_t len,
                        char *buf, size_t cap);
/* Remove a directory tree (no symlinks followed). 0, or -1 with errno. */
int stress_rmtree(const char *path);

/* ---- processes ------------------------------------------------------- */

/* Processes other than this one whose command line (all arguments, joined
 * by spaces) contains `needle`. Returns how many were found (at most `cap`
 * written). */
size_t stress_pids_by_cmdline(const char *needle, pid_t *out, size_t cap);
/* Processes other than this one that hold the other end of the TCP
 * connection `fd` (a loopback connection: the server's socket is found in
 * /proc/net/tcp{,6} by its addresses, then its owners by inode). */
size_t stress_pids_by_tcp_peer(int fd, pid_t *out, size_t cap);
/* kill() each; returns how many signals were delivered. */
size_t stress_signal_pids(const pid_t *pids, size_t n, int sig);
/* Block until every pid has gone (or `timeout_ms` passed): 1 when all
 * have, 0 otherwise. For processes that are not our children (kill 0). */
int stress_wait_gone(const pid_t *pids, size_t n, int timeout_ms);

/* Open file descriptors of this process (from /proc/self/fd), or -1: a
 * connection that failed and was freed must not leave one behind. */
int stress_count_fds(void);

/* ---- a fake server --------------------------------------------------- */

typedef struct stress_fake {
    pid_t pid;
    int port;
} stress_fake;

/* Fork a server on 127.0.0.1 (a free port): it accepts connections one
 * after the other, sends `greeting` (may be NULL: it never says a word),
 * then reads and discards everything until the client closes. 0 or -1. */
int stress_fake_start(const char *greeting, stress_fake *out);
/* Kill and reap it. */
void stress_fake_stop(stress_fake *f);

/* ---- flags ----------------------------------------------------------- */

/* `flags` as one string: lower case, sorted, separated by one space,
 * \Recent left out (it is per session, RFC 9051 2.3.2). Returns the length
 * (truncated to cap - 1, always NUL-terminated when cap > 0). */
size_t stress_flags_canon(imk_strlist flags, char *buf, size_t cap);

#endif
