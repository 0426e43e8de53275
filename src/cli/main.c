/* SPDX-License-Identifier: MIT */
/*
 * The `imapkit` command: global options and dispatch to a command.
 *
 *     imapkit [GLOBAL OPTIONS] COMMAND [ARGS]   (global options may also
 *                                               follow the command)
 *     imapkit --help | --version
 *     imapkit COMMAND --help                    (each command's own help)
 *
 * The table below lists every command with its one-line summary; `--help`
 * prints it. Network commands get a cli_ctx whose global options are parsed
 * out (ctx.h); `parse` works offline and keeps its own signature, getting
 * its arguments untouched.
 *
 * The tool uses only the public API (include/imapkit/); the build does not
 * even put src/ on its include path. Each command lives in cmd_<name>.c and
 * returns the exit status documented in ctx.h, cli.h and docs/imapkit.1.
 */
#include "cli.h"
#include "ctx.h"

#include "imapkit/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef int (*net_cmd_fn)(cli_ctx *ctx, int argc, char **argv);

static const struct command {
    const char *name;
    net_cmd_fn run; /* NULL: `parse` */
    const char *args;
    const char *summary;
} COMMANDS[] = {
    {"capabilities", cli_cmd_capabilities, "", "the server's capabilities"},
    {"list", cli_cmd_list, "[PATTERN]", "mailboxes with their counts and special-use roles"},
    {"status", cli_cmd_status, "MAILBOX", "a mailbox's counts (messages, unseen, UIDNEXT, ...)"},
    {"select", cli_cmd_select, "MAILBOX", "open a mailbox and summarise its view"},
    {"search", cli_cmd_search, "MAILBOX KEY...", "UIDs of the messages matching IMAP search keys"},
    {"fetch", cli_cmd_fetch, "MAILBOX UIDSET [ITEM...]", "message summaries or chosen items"},
    {"cat", cli_cmd_cat, "MAILBOX UID [SECTION]", "a raw message or part to standard output"},
    {"append", cli_cmd_append, "MAILBOX [FILE...|-]", "add messages (files, a Maildir, an mbox)"},
    {"flag", cli_cmd_flag, "MAILBOX UIDSET +FLAG...|-FLAG...", "add or remove flags"},
    {"copy", cli_cmd_copy, "MAILBOX UIDSET DEST", "copy messages to another mailbox"},
    {"move", cli_cmd_copy, "MAILBOX UIDSET DEST", "move messages to another mailbox"},
    {"expunge", cli_cmd_expunge, "MAILBOX [UIDSET]", "remove messages marked \\Deleted"},
    {"create", cli_cmd_create, "MAILBOX", "create a mailbox"},
    {"delete", cli_cmd_delete, "MAILBOX", "delete a mailbox"},
    {"rename", cli_cmd_rename, "OLD NEW", "rename a mailbox"},
    {"subscribe", cli_cmd_subscribe, "MAILBOX",
     "subscribe to a mailbox (--unsubscribe: remove it)"},
    {"quota", cli_cmd_quota, "[MAILBOX]", "storage and message quotas"},
    {"watch", cli_cmd_watch, "[MAILBOX...]", "print changes as they happen (IDLE or NOTIFY)"},
    {"shell", cli_cmd_shell, "", "an interactive IMAP session"},
    {"parse", NULL, "[FILE|-]", "server output to JSON, one object per response (offline)"},
};

#define N_COMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
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

static int print_help(void)
{
    printf("Usage: imapkit [OPTIONS] COMMAND [ARGS]\n"
           "       imapkit COMMAND --help\n"
           "       imapkit --help | --version\n"
           "\n"
           "Every IMAP operation from the shell, with JSON output (--json).\n"
           "\n"
           "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char head[64];
        snprintf(head, sizeof(head), "%s %s", COMMANDS[i].name, COMMANDS[i].args);
        if (strlen(head) > 34)
            printf("  %s\n  %-34s %s\n", head, "", COMMANDS[i].summary);
        else
            printf("  %-34s %s\n", head, COMMANDS[i].summary);
    }
    printf("\n%s", cli_global_help);
    printf("  -h, --help               show this help (COMMAND --help: the command's)\n"
           "  -V, --version            show the version\n"
           "\n"
           "Examples:\n"
           "  IMAPKIT_PASSWORD=... imapkit -s imaps://alice@imap.example.org list\n"
           "  imapkit -a work --json fetch INBOX 1:*\n"
           "  imapkit --tunnel '/usr/lib/dovecot/imap' search INBOX UNSEEN\n"
           "\n"
           "Exit status: 0 success; 1 the server answered NO or BAD (for 'parse': some\n"
           "responses were malformed); 2 usage error; 3 cannot connect, TLS or\n"
           "authentication failed; 4 protocol, internal or input/output error.\n"
           "The account file: docs/cli-config.md. See imapkit(1).\n");
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
}

static int print_version(void)
{
    printf("imapkit %s\n", imk_version());
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
}

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0)
            return &COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error("imapkit --help", "no command given");
    const char *first = argv[1];
    if (strcmp(first, "help") == 0 && argc == 3 && find(argv[2]) != NULL) {
        /* `imapkit help fetch` is `imapkit fetch --help` */
        char *args[] = {argv[2], (char *)"--help", NULL};
        const struct command *cmd = find(argv[2]);
        if (cmd->run == NULL)
            return cli_cmd_parse(2, args);
        cli_ctx ctx;
        memset(&ctx, 0, sizeof(ctx));
        return cmd->run(&ctx, 2, args);
    }
    if (strcmp(first, "-h") == 0 || strcmp(first, "--help") == 0 || strcmp(first, "help") == 0)
        return print_help();
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0)
        return print_version();
    /* `parse` first: its arguments are its own, untouched */
    if (strcmp(first, "parse") == 0)
        return cli_cmd_parse(argc - 1, argv + 1);

    cli_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    int n = argc - 1;
    char **av = argv + 1;
    int rc = cli_parse_global(&ctx, &n, &av);
    if (rc != 0)
        return rc;
    if (n == 0)
        return cli_usage_error("imapkit --help", "no command given");
    const char *name = av[0];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
        return print_help();
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
        return print_version();
    if (name[0] == '-')
        return cli_usage_error("imapkit --help", "unknown option '%s'", name);
    const struct command *cmd = find(name);
    if (cmd == NULL)
        return cli_usage_error("imapkit --help", "unknown command '%s'", name);
    if (cmd->run == NULL)
        return cli_cmd_parse(n, av);
    rc = cmd->run(&ctx, n, av);
    cli_close(&ctx);
    if (fflush(stdout) != 0 && rc == 0) {
        cli_error("cannot write to standard output");
        rc = CLI_EXIT_IO;
    }
    return rc;
}
