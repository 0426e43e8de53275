/* SPDX-License-Identifier: MIT */
/*
 * The imapkit tool's commands and the conventions they share.
 *
 * Each command is a function taking the arguments after its name and
 * returning the process exit status. Exit statuses are part of the tool's
 * interface (docs/imapkit.1; the network commands' constants are in ctx.h):
 *   0  success
 *   1  the server answered NO or BAD (its text printed); for `parse`, which
 *      works offline: some responses were malformed (reported, and parsing
 *      went on) - CLI_EXIT_MALFORMED
 *   2  usage error: bad option, argument, URL or account file; unknown
 *      command (the message names it)
 *   3  cannot connect, TLS or authentication failed (also: no password, the
 *      password command failed, ~/.netrc refused)
 *   4  protocol or internal error, also input/output errors (a file cannot
 *      be opened or read, standard output cannot be written) and out of
 *      memory
 * Messages for humans go to standard error, prefixed "imapkit: ".
 */
#ifndef IMK_CLI_CLI_H
#define IMK_CLI_CLI_H

#define CLI_EXIT_OK 0
#define CLI_EXIT_MALFORMED 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_IO 4

/* `imapkit parse [OPTIONS] [FILE|-]`; argv[0] is "parse". */
int cli_cmd_parse(int argc, char **argv);

/* Print "imapkit: " + the formatted message + "\n" to standard error. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* A usage error: the message, then a pointer to `see_help` (e.g.
 * "imapkit parse --help"). Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *see_help, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
