/* SPDX-License-Identifier: MIT */
/*
 * What the core of the imapkit tool offers beyond ctx.h: server URLs, the
 * account file, credentials, the event printer, and small string helpers.
 * ctx.c and account.c implement it; commands may use it (watch and shell
 * print events with cli_event_print, for instance).
 *
 * Memory: the tool allocates only through xalloc.c (the one file of
 * src/cli/ that calls the C library's allocator). Strings returned here are
 * freed with cli_strfree (or cli_secret_free for passwords and tokens,
 * which wipes them first).
 */
#ifndef IMK_CLI_CORE_H
#define IMK_CLI_CORE_H

#include "ctx.h"

#include <stddef.h>

/* ---- dates ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
long long cli_days_from_civil(long long y, unsigned m, unsigned d);

/* ---- strings ---- */

/* A copy of s (or of its first n bytes), NUL-terminated; NULL when out of
 * memory. */
char *cli_strdup(const char *s);
char *cli_strndup(const char *s, size_t n);
void cli_strfree(char *s);
/* Overwrite with zeros, then free: for passwords and tokens. */
void cli_secret_free(char *s);

/* ---- server URLs ----
 *
 *   imap://[user@]host[:port]    STARTTLS (unless --tls none), port 143
 *   imaps://[user@]host[:port]   implicit TLS (RFC 8314), port 993
 *
 * The user may be percent-encoded (alice%40example.org, RFC 3986 section
 * 2.1); host is a name, an IPv4 address or an IPv6 literal in brackets
 * ([::1]). Nothing else (path, query, ";AUTH=", password) is accepted. */
typedef struct cli_url {
    char *user; /* decoded; NULL when the URL names none */
    char *host; /* without brackets */
    char *port; /* NULL: the scheme's default */
    int implicit_tls;
} cli_url;

/* The accepted forms, for error messages. */
extern const char cli_url_forms[];

/* 0, or -1 with the reason in err (nothing to free), or -2 out of memory. */
int cli_url_parse(const char *url, cli_url *out, char *err, size_t errcap);
void cli_url_free(cli_url *u);
/* The URL as it may be shown in a message: a password in it
 * ("user:secret@host") becomes "<redacted>". */
void cli_url_redact(const char *url, char *buf, size_t cap);

/* ---- the account file (docs/cli-config.md) ---- */

typedef struct cli_account {
    char *name;
    char *server, *tunnel, *password_command, *oauth2_token_command, *auth, *tls, *ca_file;
    char *user;     /* `user =`: the login name when the URL names none */
    int insecure;   /* -1: not set */
    int timeout_ms; /* -1: not set */
    int compress;   /* -1: not set */
} cli_account;

/* The file to read: ctx->config, else $XDG_CONFIG_HOME/imapkit/config, else
 * $HOME/.config/imapkit/config. Writes it into buf; 0 or -1 (no HOME). */
int cli_config_path(const cli_ctx *ctx, char *buf, size_t cap);

/* Read account `name` (NULL: the file's `default = NAME`, if any) from
 * `path`. Returns 0 (found), 1 (name NULL and no default, or the default
 * file does not exist while name is NULL), or an exit status with the
 * message printed: CLI_EXIT_USAGE for syntax errors (FILE:LINE), unknown
 * keys and unknown accounts, CLI_EXIT_IO when the file cannot be read. */
int cli_account_load(const char *path, const char *name, cli_account *out);
void cli_account_free(cli_account *a);

/* ---- credentials ---- */

/* Run `cmd` with /bin/sh -c; *out = the first line of its standard output
 * (without the line end). `what` names the option for messages
 * ("--password-command"). Returns 0 or CLI_EXIT_CONNECT (message printed,
 * with the command's standard error when it failed). */
int cli_secret_command(const char *what, const char *cmd, char **out);

/* Look up ~/.netrc (or $NETRC) for machine `host` (then `default`) and
 * login `user` (any login when user is NULL). Returns 0 with *password and
 * *login (when the entry had one; may be NULL) set, 1 when there is no file
 * or no entry, or CLI_EXIT_CONNECT (message printed) when the file is
 * readable or writable by others, or cannot be read. path_out gets the
 * file's name for messages. */
int cli_netrc_lookup(const char *host, const char *user, char **password, char **login,
                     char *path_out, size_t path_cap);

/* ---- events ----
 *
 * cli_open installs a printer for the connection's unsolicited events:
 * notices, alerts, progress, BYE and protocol errors always (alerts even
 * with -q); the mailbox changes (exists, expunge, vanished, flags,
 * uidvalidity) only after cli_events_show_changes(ctx, 1), because FLAGS
 * events also report the answers to the command's own FETCH and STORE.
 * Human form on standard error, JSON objects (docs/schema/event.schema.json)
 * on standard output with --json. */
void cli_events_show_changes(cli_ctx *ctx, int on);
/* Print one event as the installed printer does (whatever the filter). */
void cli_event_print(cli_ctx *ctx, const imk_session_event *ev);
/* The JSON object of an event ({"event": ...}), or NULL for an event that
 * has none (DONE, BODY_*, ...) or when out of memory. New reference. */
json_t *cli_event_json(cli_ctx *ctx, const imk_session_event *ev);

#endif
