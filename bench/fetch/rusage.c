/* SPDX-License-Identifier: MIT */
/*
 * bench/fetch/rusage.c - runs one command and writes what it cost: the
 * measuring tool of the whole-job fetch benchmark (run.sh).
 *
 *     rusage OUTFILE COMMAND [ARG...]
 *
 * COMMAND runs as a child (execvp, stdio inherited); when it ends, one line
 * goes to OUTFILE:
 *
 *     <user s> <sys s> <wall s> <peak RSS KiB> <exit status>
 *
 * user and sys come from wait4()'s rusage with microsecond resolution (GNU
 * time prints hundredths, too coarse for jobs of a tenth of a second); on
 * Linux they cover the child and every descendant it waited for, never the
 * server. Wall time is CLOCK_MONOTONIC from just before fork() to wait4()'s
 * return. Peak RSS is ru_maxrss (KiB on Linux): the largest resident set of
 * the child or of any waited-for descendant.
 *
 * The exit status of rusage is the command's (128 + signal when killed; 127
 * when it could not be started).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* wait4() is BSD, not POSIX: glibc declares it here */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv_seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rusage OUTFILE COMMAND [ARG...]\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        fprintf(stderr, "rusage: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "rusage: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "rusage: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    pid_t r;
    while ((r = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r < 0) {
        fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
        return 2;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(out, "%.6f %.6f %.6f %ld %d\n", tv_seconds(ru.ru_utime), tv_seconds(ru.ru_stime), wall,
            ru.ru_maxrss, code);
    if (fclose(out) != 0) {
        fprintf(stderr, "rusage: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    return code;
}
