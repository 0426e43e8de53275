/* SPDX-License-Identifier: MIT */
/*
 * `imapkit capabilities`: what the server offers, as it says after login
 * (RFC 9051 section 6.1.1: the list may change at authentication and after
 * STARTTLS, so a fresh CAPABILITY command is sent once logged in).
 *
 * Human form: one capability per line, as the server spells it, then the
 * extensions enabled on this connection (none unless a command enabled
 * them). --json: one object (docs/schema/capabilities.schema.json):
 *     {"capabilities": [...], "enabled": [...], "transport": "TLSv1.3 ..."}
 */
#include "cli.h"
#include "ctx.h"
#include "json.h"

#include <stdio.h>
#include <string.h>

static const char help_text[] =
    "Usage: imapkit [OPTIONS] capabilities\n"
    "\n"
    "Print the server's capabilities after login, one per line (as the server\n"
    "spells them), then the extensions enabled on the connection, if any.\n"
    "With --json: {\"capabilities\": [...], \"enabled\": [...], \"transport\": \"...\"}.\n"
    "\n"
    "Example:\n"
    "  imapkit -s imaps://alice@imap.example.org capabilities | grep -i idle\n"
    "\n"
    "Options: -h, --help. The global options are in 'imapkit --help'.\n";

/* ENABLE-able extensions whose state the session tracks. */
static const char *const ENABLEABLE[] = {"CONDSTORE", "QRESYNC", "IMAP4rev2", "UTF8=ACCEPT"};
#define N_ENABLEABLE (sizeof(ENABLEABLE) / sizeof(ENABLEABLE[0]))

int cli_cmd_capabilities(cli_ctx *ctx, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(help_text, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--") == 0)
            continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("imapkit capabilities --help",
                                   "capabilities: unknown option '%s'", argv[i]);
        return cli_usage_error("imapkit capabilities --help",
                               "capabilities takes no arguments (got '%s')", argv[i]);
    }
    int rc = cli_open(ctx);
    if (rc != 0)
        return rc;
    const imk_result *res = NULL;
    rc = imk_conn_capability(ctx->conn, &res);
    if (rc < 0)
        return cli_exit_error(ctx, "CAPABILITY", rc);
    rc = cli_exit_result(ctx, "CAPABILITY", res);
    if (rc != 0)
        return rc;
    imk_session *s = imk_conn_session(ctx->conn);

    if (ctx->json) {
        json_t *o = json_object();
        json_t *caps = json_array();
        json_t *enabled = json_array();
        if (o == NULL || caps == NULL || enabled == NULL) {
            json_decref(o);
            json_decref(caps);
            json_decref(enabled);
            cli_error("out of memory");
            return CLI_EXIT_PROTOCOL;
        }
        for (size_t i = 0; i < res->capabilities.count; i++)
            json_array_append_new(caps, cli_json_str(res->capabilities.items[i]));
        for (size_t i = 0; i < N_ENABLEABLE; i++)
            if (imk_session_is_enabled(s, ENABLEABLE[i]))
                json_array_append_new(enabled, json_string(ENABLEABLE[i]));
        json_object_set_new(o, "capabilities", caps);
        json_object_set_new(o, "enabled", enabled);
        json_object_set_new(o, "transport", json_string(imk_conn_transport(ctx->conn)));
        rc = cli_out_json(ctx, o);
        json_decref(o);
        return rc;
    }
    for (size_t i = 0; i < res->capabilities.count; i++) {
        imk_str c = res->capabilities.items[i];
        printf("%.*s\n", (int)c.len, c.data);
    }
    int any = 0;
    for (size_t i = 0; i < N_ENABLEABLE; i++) {
        if (imk_session_is_enabled(s, ENABLEABLE[i])) {
            printf("%s%s", any ? " " : "enabled: ", ENABLEABLE[i]);
            any = 1;
        }
    }
    if (any)
        putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return 0;
}
