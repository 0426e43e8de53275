/* SPDX-License-Identifier: MIT */
/*
 * poll_multi: several IMAP connections driven by ONE poll() loop, with
 * nothing but imapkit's non-blocking interface. No thread, no blocking
 * call: each connection is a little state machine whose steps are queued
 * by the completion callback of the step before.
 *
 *     connect_async -> login_async -> status_async -> select_async
 *       -> fetch_async (UID FLAGS RFC822.SIZE of every message, one
 *          callback per message) -> logout_async -> the connection frees
 *          itself from inside its last callback
 *
 * The loop asks each live connection for its descriptor (imk_conn_fd),
 * what to wait for (imk_conn_events) and how long at most
 * (imk_conn_timeout), polls all of them at once, and hands each one what
 * poll() saw (imk_conn_process). It ends when every connection has freed
 * itself.
 *
 * Usage:
 *   example_poll_multi [--mailbox NAME] --tunnel CMD [--tunnel CMD ...]
 *       one connection per command, IMAP over its stdin/stdout (e.g.
 *       Dovecot's preauthenticated imap binary, or "ssh host imapd");
 *   example_poll_multi [--mailbox NAME] [-n N] [--port P] [--plain] HOST USER
 *       N connections (3 by default) to HOST, implicit TLS on 993 unless
 *       --plain (cleartext, for a server on loopback); the password is
 *       read from the IMK_PASSWORD environment variable.
 *
 * Prints one line per step and connection, e.g.
 *   [2] INBOX: 25 messages, UIDNEXT 26 (STATUS)
 *   [2] fetched 25 messages, 61502 bytes (RFC822.SIZE total)
 * and exits 0 when every connection did every step, 1 otherwise.
 * Uses only the public API (include/imapkit/client.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "imapkit/client.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 16

/* One connection and where it is in its job. */
typedef struct job {
    int id;
    imk_conn *conn; /* NULL once freed */
    const char *mailbox;
    imk_auth auth;
    uint64_t messages, bytes;
    int ok;              /* every step succeeded */
    int64_t deadline_ms; /* when process() is due without I/O, or -1 */
} job;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of a job, good or bad: the connection is freed from inside its
 * own callback (imapkit completes the free when process() returns). */
static void finish(job *j, const char *failed_step, int err, const imk_result *res)
{
    if (failed_step != NULL) {
        if (err < 0)
            printf("[%d] %s failed: %s (%s)\n", j->id, failed_step, imk_conn_error(j->conn),
                   imk_error_name(err));
        else
            printf("[%d] %s refused: %.*s\n", j->id, failed_step, (int)res->text.len,
                   res->text.data != NULL ? res->text.data : "");
    }
    imk_conn_free(j->conn);
    j->conn = NULL;
}

/* A step succeeded when the command completed with OK. */
static int step_ok(job *j, const char *step, int err, const imk_result *res)
{
    if (err < 0 || (res != NULL && res->status != IMK_STATUS_OK)) {
        finish(j, step, err, res);
        return 0;
    }
    return 1;
}

static void on_logout(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    (void)c;
    (void)res;
    /* The server may close before its tagged OK: that is a logout too. */
    if (err < 0 && err != IMK_ECLOSED) {
        finish(j, "LOGOUT", err, res);
        return;
    }
    printf("[%d] logged out\n", j->id);
    j->ok = 1;
    finish(j, NULL, 0, NULL);
}

static void on_fetch_item(imk_conn *c, const imk_fetch_item *item, void *user)
{
    job *j = user;
    (void)c;
    if (item->type == IMK_FI_MESSAGE) {
        j->messages++;
        j->bytes += item->msg->rfc822_size;
    }
}

static void on_fetched(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    if (!step_ok(j, "UID FETCH", err, res))
        return;
    printf("[%d] fetched %" PRIu64 " messages, %" PRIu64 " bytes (RFC822.SIZE total)\n", j->id,
           j->messages, j->bytes);
    int rc = imk_conn_logout_async(c, on_logout, j);
    if (rc < 0)
        finish(j, "LOGOUT", rc, NULL);
}

static void on_selected(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    if (!step_ok(j, "SELECT", err, res))
        return;
    int rc =
        imk_conn_fetch_async(c, 1, "1:*", "(UID FLAGS RFC822.SIZE)", on_fetch_item, on_fetched, j);
    if (rc < 0)
        finish(j, "UID FETCH", rc, NULL);
}

static void on_status(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    if (!step_ok(j, "STATUS", err, res))
        return;
    if (res->status_count > 0) {
        const imk_status_data *st = &res->statuses[0];
        printf("[%d] %s: %" PRIu64 " messages, UIDNEXT %" PRIu64 " (STATUS)\n", j->id, j->mailbox,
               st->messages, st->uidnext);
    }
    int rc = imk_conn_select_async(c, j->mailbox, NULL, on_selected, j);
    if (rc < 0)
        finish(j, "SELECT", rc, NULL);
}

static void on_login(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    if (!step_ok(j, "login", err, res))
        return;
    int rc = imk_conn_status_async(c, j->mailbox, "MESSAGES UIDNEXT", on_status, j);
    if (rc < 0)
        finish(j, "STATUS", rc, NULL);
}

static void on_connected(imk_conn *c, int err, const imk_result *res, void *user)
{
    job *j = user;
    if (!step_ok(j, "connect", err, res))
        return;
    printf("[%d] connected over %s\n", j->id, imk_conn_transport(c));
    /* A preauthenticated tunnel needs no login: imapkit then completes
     * the login at once. */
    int rc = imk_conn_login_async(c, &j->auth, on_login, j);
    if (rc < 0)
        finish(j, "login", rc, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: example_poll_multi [--mailbox NAME] --tunnel CMD [--tunnel CMD ...]\n"
                    "       example_poll_multi [--mailbox NAME] [-n N] [--port P] [--plain] "
                    "HOST USER   (password in $IMK_PASSWORD)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *mailbox = "INBOX", *port = NULL, *tunnels[MAX_CONNS];
    const char *host = NULL, *user = NULL;
    size_t n_tunnels = 0;
    long n = 3;
    int plain = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mailbox") == 0 && i + 1 < argc) {
            mailbox = argv[++i];
        } else if (strcmp(argv[i], "--tunnel") == 0 && i + 1 < argc) {
            if (n_tunnels == MAX_CONNS)
                usage();
            tunnels[n_tunnels++] = argv[++i];
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = argv[++i];
        } else if (strcmp(argv[i], "--plain") == 0) {
            plain = 1;
        } else if (argv[i][0] != '-' && host == NULL) {
            host = argv[i];
        } else if (argv[i][0] != '-' && user == NULL) {
            user = argv[i];
        } else {
            usage();
        }
    }
    if (n_tunnels > 0)
        n = (long)n_tunnels;
    else if (host == NULL || user == NULL || n < 1 || n > MAX_CONNS)
        usage();

    job jobs[MAX_CONNS];
    memset(jobs, 0, sizeof jobs);
    for (long i = 0; i < n; i++) {
        job *j = &jobs[i];
        j->id = (int)i + 1;
        j->mailbox = mailbox;
        imk_auth a = IMK_AUTH_INIT;
        a.user = user;
        a.password = getenv("IMK_PASSWORD");
        j->auth = a;
        imk_conn_options o = IMK_CONN_OPTIONS_INIT;
        if (n_tunnels > 0) {
            o.tunnel = tunnels[i];
        } else {
            o.host = host;
            o.port = port;
            if (plain) {
                o.security = IMK_SECURITY_NONE;
                o.allow_cleartext_password = 1;
            }
        }
        int rc = imk_conn_new(&o, NULL, &j->conn);
        if (rc >= 0)
            rc = imk_conn_connect_async(j->conn, on_connected, j);
        if (rc < 0) {
            printf("[%d] cannot start: %s (%s)\n", j->id,
                   j->conn != NULL ? imk_conn_error(j->conn) : "", imk_error_name(rc));
            imk_conn_free(j->conn);
            j->conn = NULL;
        }
    }

    /* The one loop. */
    struct pollfd fds[MAX_CONNS];
    unsigned long iterations = 0;
    for (;;) {
        int live = 0, timeout = -1;
        int64_t now = now_ms();
        for (long i = 0; i < n; i++) {
            job *j = &jobs[i];
            fds[i].fd = -1; /* poll() skips negative descriptors */
            fds[i].events = 0;
            fds[i].revents = 0;
            if (j->conn == NULL)
                continue;
            live++;
            unsigned want = imk_conn_events(j->conn);
            fds[i].fd = imk_conn_fd(j->conn);
            fds[i].events = (short)(((want & IMK_WANT_READ) ? POLLIN : 0) |
                                    ((want & IMK_WANT_WRITE) ? POLLOUT : 0));
            int t = imk_conn_timeout(j->conn);
            j->deadline_ms = t >= 0 ? now + t : -1;
            if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
        }
        if (live == 0)
            break;
        int any_fd = 0;
        for (long i = 0; i < n; i++)
            any_fd |= fds[i].fd >= 0;
        if (!any_fd && timeout < 0) {
            fprintf(stderr, "poll_multi: no descriptor and no deadline to wait for\n");
            return 1;
        }
        iterations++;
        if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        now = now_ms();
        for (long i = 0; i < n; i++) {
            job *j = &jobs[i];
            if (j->conn == NULL)
                continue;
            unsigned revents = 0;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                revents |= IMK_WANT_READ;
            if (fds[i].revents & (POLLOUT | POLLERR))
                revents |= IMK_WANT_WRITE;
            int due = j->deadline_ms >= 0 && now >= j->deadline_ms;
            if (revents != 0 || due)
                imk_conn_process(j->conn, revents); /* failures reach the callbacks */
        }
    }

    int done = 0;
    for (long i = 0; i < n; i++)
        done += jobs[i].ok;
    printf("poll_multi: %d of %ld connections did every step, in one poll loop of %lu "
           "iterations\n",
           done, n, iterations);
    return done == n ? 0 : 1;
}
