/* SPDX-License-Identifier: MIT */
/*
 * The `imapkit` command: global options and dispatch to a command.
 *
 *     imapkit --help | --version
 *     imapkit parse [OPTIONS] [FILE|-]
 *
 * The tool uses only the public API (include/imapkit/); the build does not
 * even put src/ on its include path. Each command lives in cmd_<name>.c and
 * returns the exit status documented in cli.h and docs/imapkit.1.
 */
#include "cli.h"

#include "imapkit/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "Usage: imapkit COMMAND [OPTIONS] [ARGS]\n"
    "       imapkit --help | --version\n"
    "\n"
    "An IMAP client toolkit.\n"
    "\n"
    "Commands:\n"
    "  parse [FILE|-]   read IMAP server output and print each response as one\n"
    "                   JSON object per line (see 'imapkit parse --help')\n"
    "\n"
    "Options:\n"
    "  -h, --help       show this help and exit\n"
    "  -V, --version    show the version and exit\n"
    "\n"
    "Exit status: 0 success, 1 malformed responses were found, 2 usage error,\n"
    "4 input/output error. See imapkit(1) and docs/json-schema.md.\n";

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("imapkit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *see_help, const char *fmt, ...)
{
    va_list ap;
    fputs("imapkit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s' for more information.\n", see_help);
    return CLI_EXIT_USAGE;
}

static int print_stdout(const char *text)
{
    if (fputs(text, stdout) == EOF || fflush(stdout) != 0) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("imapkit --help", "no command given");

    const char *arg = argv[1];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0 || strcmp(arg, "help") == 0)
        return print_stdout(usage_text);
    if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
        char line[64];
        snprintf(line, sizeof(line), "imapkit %s\n", imk_version());
        return print_stdout(line);
    }
    if (strcmp(arg, "parse") == 0)
        return cli_cmd_parse(argc - 1, argv + 1);
    if (arg[0] == '-')
        return cli_usage_error("imapkit --help", "unknown option '%s'", arg);
    return cli_usage_error("imapkit --help", "unknown command '%s'", arg);
}
