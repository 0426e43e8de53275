/* SPDX-License-Identifier: MIT */
/*
 * net/tunnel.c - IMAP over a command's stdin/stdout: `/bin/sh -c CMD`
 * (a preauthenticated `/usr/lib/dovecot/imap`, `ssh host imapd`, ...).
 *
 *   parent                                 child (/bin/sh -c CMD)
 *   n->fd  ==== socketpair(AF_UNIX) ====   fd 0 and fd 1
 *   n->stderr_fd <------- pipe ----------  fd 2
 *
 * One socketpair end carries both directions, so the event loop polls one
 * descriptor, and writes to it use send(MSG_NOSIGNAL): a dead child is EPIPE,
 * not SIGPIPE. The child inherits nothing else: our descriptors are
 * close-on-exec, and the child closes every descriptor above 2 before exec
 * (the application's own descriptors may lack FD_CLOEXEC). It gets SIGPIPE
 * back to the default and an empty signal mask, as a shell started from a
 * terminal would.
 *
 * The stderr pipe is read without blocking whenever the stack does I/O, at
 * errors and at free time; its last 4 KiB are kept for messages
 * (`tunnel "CMD": exited with status 89: Fatal: ...`). A child that writes
 * more than a pipe's capacity to stderr while we wait for its stdout could
 * block; the pipe is enlarged to 1 MiB where Linux allows it.
 *
 * Reaping: without blocking whenever a status is wanted; at the end of the
 * stream the child gets a short grace (it closes stdout as it exits, and
 * the kernel makes it reapable a moment later); imk__net_free closes our
 * end, waits up to 1 s, sends SIGTERM, waits up to 1 s more, then SIGKILL
 * and a final blocking waitpid: no zombie is ever left. Signals go to the
 * shell's pid only (not a process group: a tunnel that prompts on the
 * terminal must stay in the foreground group); a grandchild that ignores
 * SIGTERM and outlives its shell is not ours to reap.
 *
 * _GNU_SOURCE: pipe2 (close-on-exec without a race against other threads'
 * fork), F_SETPIPE_SZ and close_range are Linux extensions.
 */
#define _GNU_SOURCE

#include "net/net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(int sock, int errw, const char *cmd, long max_fd)
{
    /* Move our two ends above 2 first, in case the parent had closed its
     * standard descriptors and one of ours landed on 0, 1 or 2. */
    if (sock < 3)
        sock = fcntl(sock, F_DUPFD, 3);
    if (errw < 3)
        errw = fcntl(errw, F_DUPFD, 3);
    if (sock < 0 || errw < 0 || dup2(sock, 0) < 0 || dup2(sock, 1) < 0 || dup2(errw, 2) < 0)
        _exit(127);
#if defined(SYS_close_range)
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
        for (long fd = 3; fd < max_fd; fd++)
            close((int)fd);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    static const char msg[] = "imapkit: cannot execute /bin/sh\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(127);
}

int imk__net_tunnel_spawn(imk__net *n)
{
    int sv[2] = {-1, -1}, ep[2] = {-1, -1};
    char peer[300];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        int e = errno;
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return imk__net_fail(n, IMK_ENET, "%s: cannot create its socket or pipe: %s",
                             imk__net_peer(n, peer, sizeof(peer)), strerror(e));
    }
#ifdef F_SETPIPE_SZ
    fcntl(ep[1], F_SETPIPE_SZ, 1 << 20); /* best effort: EPERM above the user limit */
#endif
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;
    pid_t pid = fork();
    if (pid == 0)
        child(sv[1], ep[1], n->tunnel, max_fd);
    int e = errno;
    close(sv[1]);
    close(ep[1]);
    if (pid < 0) {
        close(sv[0]);
        close(ep[0]);
        return imk__net_fail(n, IMK_ENET, "%s: cannot start it: fork: %s",
                             imk__net_peer(n, peer, sizeof(peer)), strerror(e));
    }
    n->pid = pid;
    n->exited = 0;
    n->status = -1;
    n->fd = sv[0];
    n->stderr_fd = ep[0];
    if (imk__net_fd_setup(n->fd) < 0 || imk__net_fd_setup(n->stderr_fd) < 0)
        return imk__net_fail(n, IMK_ENET, "%s: fcntl: %s", imk__net_peer(n, peer, sizeof(peer)),
                             strerror(errno));
    return 0;
}

/* Keep the last IMK__NET_STDERR_TAIL bytes. */
static void keep(imk__net *n, const char *data, size_t len)
{
    const size_t cap = IMK__NET_STDERR_TAIL;
    if (len >= cap) {
        memcpy(n->tail, data + len - cap, cap);
        n->tail_len = cap;
    } else {
        if (n->tail_len + len > cap) {
            size_t drop = n->tail_len + len - cap;
            memmove(n->tail, n->tail + drop, n->tail_len - drop);
            n->tail_len -= drop;
        }
        memcpy(n->tail + n->tail_len, data, len);
        n->tail_len += len;
    }
    n->tail[n->tail_len] = '\0';
}

void imk__net_tunnel_drain(imk__net *n)
{
    if (n->stderr_fd < 0)
        return;
    char buf[4096];
    for (;;) {
        ssize_t r = read(n->stderr_fd, buf, sizeof(buf));
        if (r > 0) {
            keep(n, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            /* Every writer closed it (or it broke): nothing more to read. */
            close(n->stderr_fd);
            n->stderr_fd = -1;
        }
        return;
    }
}

/* Reap without blocking; 1 once the child is gone. */
static int reap(imk__net *n)
{
    if (n->pid < 0 || n->exited)
        return n->exited;
    int st;
    pid_t r;
    do
        r = waitpid(n->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == n->pid) {
        n->exited = 1;
        n->status = st;
    } else if (r < 0) {
        /* ECHILD: reaped by someone else (SIGCHLD ignored by the
         * application): gone, status unknown. */
        n->exited = 1;
        n->status = -1;
    }
    return n->exited;
}

int imk__net_tunnel_exited(imk__net *n, int *status)
{
    if (n->pid < 0 || !reap(n))
        return 0;
    if (status != NULL)
        *status = n->status;
    return 1;
}

const char *imk__net_tunnel_stderr(imk__net *n)
{
    imk__net_tunnel_drain(n);
    n->tail[n->tail_len] = '\0';
    return n->tail;
}

/* The last non-empty line of what the child wrote to stderr, trimmed. */
static void last_line(const imk__net *n, const char **start, int *len)
{
    size_t end = n->tail_len;
    while (end > 0 && (n->tail[end - 1] == '\n' || n->tail[end - 1] == '\r' ||
                       n->tail[end - 1] == ' ' || n->tail[end - 1] == '\t'))
        end--;
    size_t begin = end;
    while (begin > 0 && n->tail[begin - 1] != '\n')
        begin--;
    while (begin < end && (n->tail[begin] == ' ' || n->tail[begin] == '\t'))
        begin++;
    *start = n->tail + begin;
    *len = (int)(end - begin > 300 ? 300 : end - begin);
}

const char *imk__net_tunnel_describe(imk__net *n, char *buf, size_t size)
{
    buf[0] = '\0';
    if (n->pid < 0)
        return buf;
    imk__net_tunnel_drain(n);
    reap(n);
    const char *line;
    int len;
    last_line(n, &line, &len);
    const char *sep = len > 0 ? ": " : "";
    if (!n->exited) {
        if (len > 0)
            snprintf(buf, size, "it is still running; its last words: %.*s", len, line);
        return buf;
    }
    if (n->status == -1) {
        snprintf(buf, size, "it exited%s%.*s", sep, len, line);
    } else if (WIFEXITED(n->status)) {
        int code = WEXITSTATUS(n->status);
        const char *hint = code == 127   ? " (command not found)"
                           : code == 126 ? " (command not executable)"
                                         : "";
        snprintf(buf, size, "exited with status %d%s%s%.*s", code, hint, sep, len, line);
    } else if (WIFSIGNALED(n->status)) {
        snprintf(buf, size, "killed by signal %d (%s)%s%.*s", WTERMSIG(n->status),
                 strsignal(WTERMSIG(n->status)), sep, len, line);
    }
    return buf;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Wait up to `ms` for the child to exit, reading its stderr meanwhile. */
static int wait_exit(imk__net *n, int ms)
{
    int64_t until = imk__net_now_ms() + ms;
    for (;;) {
        imk__net_tunnel_drain(n);
        if (reap(n))
            return 1;
        int64_t left = until - imk__net_now_ms();
        if (left <= 0)
            return 0;
        int step = left < 10 ? (int)left : 10;
        if (n->stderr_fd >= 0) {
            struct pollfd p = {.fd = n->stderr_fd, .events = POLLIN, .revents = 0};
            if (poll(&p, 1, step) > 0)
                continue; /* drained at the top of the loop */
        } else {
            sleep_ms(step);
        }
    }
}

int imk__net_tunnel_eof(imk__net *n, int wait_ms)
{
    char peer[300], how[IMK__NET_ERRLEN / 2];
    wait_exit(n, wait_ms);
    imk__net_tunnel_describe(n, how, sizeof(how));
    imk__net_peer(n, peer, sizeof(peer));
    if (n->exited && n->status != -1 && !(WIFEXITED(n->status) && WEXITSTATUS(n->status) == 0))
        return imk__net_fail(n, IMK_ENET, "%s: %s", peer, how);
    snprintf(n->err, sizeof(n->err), "%s: closed its output%s%s", peer, how[0] ? "; " : "", how);
    return 0;
}

void imk__net_tunnel_free(imk__net *n, int grace_ms)
{
    if (n->pid >= 0 && !n->exited) {
        /* Our end of the socketpair is closed already: a well-behaved child
         * sees end of file and exits. With no grace (a server that stopped
         * answering), it is killed at once so the caller's deadline holds. */
        if (grace_ms <= 0 || !wait_exit(n, grace_ms)) {
            kill(n->pid, SIGTERM);
            if (!wait_exit(n, grace_ms > 0 ? grace_ms : 100)) {
                kill(n->pid, SIGKILL);
                int st;
                st = -1;
                while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
                    ;
                n->exited = 1;
                n->status = st;
            }
        }
    }
    if (n->stderr_fd >= 0)
        close(n->stderr_fd);
    n->stderr_fd = -1;
}
