/* SPDX-License-Identifier: MIT */
/*
 * What every network command of the imapkit tool shares: global options,
 * where to connect and as whom, the connection, output mode, the trace,
 * and the exit statuses of issue 5 (docs/imapkit.1):
 *
 *   0  success
 *   1  the server answered NO or BAD (its text printed)
 *   2  usage error (bad option, URL, argument; unknown command)
 *   3  cannot connect, TLS or authentication failed
 *   4  protocol or internal error (also I/O errors of local files)
 *
 * A command is `int cli_cmd_<name>(cli_ctx *ctx, int argc, char **argv)`
 * where argv[0] is the command's name and the global options are already
 * parsed out (they may appear before or after the command name). It calls
 * cli_open() to get a connected, authenticated imk_conn, does its work
 * through the public API only (include/imapkit/), prints results on
 * standard output (human form, or JSON Lines with --json via cli_out_json),
 * and returns an exit status (cli_exit_* helpers map library errors and
 * server results). Unsolicited events during any command go through
 * cli_ctx's event printer: to standard error in human mode, as JSON
 * objects with "event" on standard output in --json mode (never mixed into
 * a result object).
 */
#ifndef IMK_CLI_CTX_H
#define IMK_CLI_CTX_H

#include "imapkit/client.h"

#include <jansson.h>
#include <stdio.h>

#define CLI_EXIT_NO 1       /* the server said NO or BAD */
#define CLI_EXIT_CONNECT 3  /* connect, TLS or authentication failed */
#define CLI_EXIT_PROTOCOL 4 /* protocol or internal error */

typedef struct cli_ctx {
    /* --- global options, as given --- */
    const char *server;           /* -s/--server imap://user@host[:port] | imaps://... */
    const char *tunnel;           /* --tunnel 'COMMAND' (preauthenticated) */
    const char *account;          /* -a/--account NAME in the config file */
    const char *config;           /* --config FILE (default $XDG_CONFIG_HOME/imapkit/config) */
    const char *auth;             /* --auth MECH (a SASL mechanism or LOGIN-COMMAND) */
    const char *password_command; /* --password-command 'CMD' */
    const char *oauth2_token_command;
    const char *tls;     /* --tls none|starttls|implicit (default from the URL scheme) */
    const char *ca_file; /* --ca-file */
    int insecure;        /* --insecure: skip certificate verification (warns) */
    int json;            /* --json */
    const char *trace;   /* --trace[=FILE]: "-" or NULL-with-trace_on = stderr */
    int trace_on;
    int timeout_ms; /* --timeout-ms for each call (0 = library default) */
    int quiet;      /* -q: no notices/progress on stderr */

    /* --- resolved by cli_open --- */
    imk_conn *conn;
    char *user, *host, *port; /* owned */
    FILE *trace_file;
    int progress_tty; /* standard error is a terminal: progress bars allowed */
} cli_ctx;

/* Parse the global options anywhere in argv (stopping at "--"), removing
 * them; *argc and *argv are left with the command and its own arguments
 * (argv[0] = command name). Returns 0 or CLI_EXIT_USAGE (message printed). */
int cli_parse_global(cli_ctx *ctx, int *argc, char ***argv);

/* The help text of the global options (for --help outputs). */
extern const char cli_global_help[];

/* Connect and authenticate as the options say: URL or account or tunnel;
 * the password from --password-command, $IMAPKIT_PASSWORD or ~/.netrc (never
 * from the command line); --tls none and --insecure warn on stderr. Sets
 * ctx->conn and the event printer. Returns 0 or an exit status with the
 * message printed ("imapkit: cannot connect to HOST: ...; try ..."). */
int cli_open(cli_ctx *ctx);
/* LOGOUT (best effort) and free everything cli_open made. */
void cli_close(cli_ctx *ctx);

/* SELECT (or EXAMINE when readonly) MAILBOX; NO -> message + CLI_EXIT_NO. */
int cli_select(cli_ctx *ctx, const char *mailbox, int readonly);

/* Exit status for a library call that returned rc (< 0) on ctx->conn,
 * printing imk_conn_error(): fatal transport/TLS/auth codes -> 3 when
 * still connecting, protocol/internal -> 4, IMK_EINVAL -> 2, ... `what`
 * names the step ("UID FETCH"). */
int cli_exit_error(cli_ctx *ctx, const char *what, int rc);
/* 0 when res is OK; otherwise prints "imapkit: WHAT: server said NO
 * [CODE] text" and returns CLI_EXIT_NO. */
int cli_exit_result(cli_ctx *ctx, const char *what, const imk_result *res);

/* Print one JSON object as a line on standard output (and flush). Returns
 * 0 or CLI_EXIT_IO. Steals nothing: the caller decrefs. */
int cli_out_json(cli_ctx *ctx, const json_t *obj);

/* Human sizes ("12.3 KiB"), local dates ("2026-11-29 12:00"). */
void cli_fmt_size(char *buf, size_t cap, uint64_t bytes);
void cli_fmt_date(char *buf, size_t cap, const imk_datetime *dt);

/* Progress on a terminal: "label  done/total" bar on stderr, nothing when
 * stderr is not a terminal or with -q or --json. total 0 = unknown. */
void cli_progress(cli_ctx *ctx, const char *label, uint64_t done, uint64_t total);
void cli_progress_end(cli_ctx *ctx);

/* The commands (argv[0] is the command's name). */
int cli_cmd_capabilities(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_list(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_select(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_create(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_delete(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rename(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_subscribe(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_quota(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_search(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_fetch(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cat(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_append(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_flag(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_copy(cli_ctx *ctx, int argc, char **argv); /* copy and move */
int cli_cmd_expunge(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_watch(cli_ctx *ctx, int argc, char **argv);
int cli_cmd_shell(cli_ctx *ctx, int argc, char **argv);

#endif
