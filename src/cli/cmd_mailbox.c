/* SPDX-License-Identifier: MIT */
/*
 * The mailbox commands of the imapkit tool:
 *
 *     imapkit list [PATTERN]            mailboxes with roles and counts
 *     imapkit status MAILBOX            STATUS figures
 *     imapkit select [--readonly] MAILBOX   the mailbox view after SELECT
 *     imapkit create MAILBOX
 *     imapkit delete MAILBOX
 *     imapkit rename OLD NEW
 *     imapkit subscribe [--unsubscribe] MAILBOX
 *     imapkit quota [MAILBOX]           GETQUOTAROOT (default INBOX)
 *
 * Each command parses its own arguments first (so `--help` and usage errors
 * never connect), then cli_open()s, sends what it needs through the public
 * API, and prints either a human form (aligned columns or "key: value"
 * lines) or, with --json, JSON Lines following docs/schema/<command>.schema.json.
 * The results are first turned into jansson objects, and the human form is
 * printed from those objects: both modes show the same facts by
 * construction.
 *
 * Invariants:
 *   - an imk_result is valid only until the next call on the connection, so
 *     everything needed from one (LIST entries above all) is copied into
 *     JSON before the next command is sent;
 *   - a server NO/BAD is exit 1 with the server's text (cli_exit_result),
 *     plus a hint at what to try; a library error goes through
 *     cli_exit_error (exit 2, 3 or 4 by its kind);
 *   - mailbox names are UTF-8 both ways: the library encodes them (modified
 *     UTF-7) and decodes the names of LIST and STATUS responses.
 *
 * Extensions are used only when the server advertises them: LIST-STATUS
 * (RFC 5819) for counts in the LIST answer, else one STATUS per selectable
 * mailbox; RETURN (SPECIAL-USE) (RFC 6154 section 2) with LIST-EXTENDED
 * (RFC 5258); LIST (SUBSCRIBED) or else LSUB for the subscription marks;
 * HIGHESTMODSEQ (RFC 7162 section 3.1.2.1) with CONDSTORE; SIZE (RFC 8438)
 * with STATUS=SIZE; GETQUOTAROOT (RFC 9208 section 4.1.2) with QUOTA.
 */
#include "cli.h"
#include "ctx.h"
#include "json.h"

#include "imapkit/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Help texts                                                          */
/* ------------------------------------------------------------------ */

static const char list_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] list [PATTERN]\n"
    "\n"
    "List the mailboxes whose names match PATTERN (default \"*\", every\n"
    "mailbox; \"%\" matches within one level of the hierarchy), with their\n"
    "special-use role (\\Sent, \\Drafts, \\Trash, ...), the number of messages\n"
    "and of unseen messages. The counts come with the LIST answer when the\n"
    "server offers LIST-STATUS, else from one STATUS per mailbox; mailboxes\n"
    "that cannot be selected show \"-\".\n"
    "\n"
    "Output: columns NAME, ROLE, MESSAGES, UNSEEN, INBOX first, then by name.\n"
    "With --json, one object per mailbox (docs/schema/list.schema.json): name\n"
    "(UTF-8), delimiter, flags, special_use, messages, unseen, subscribed.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -s imaps://me@imap.example.org list\n"
    "  imapkit -a work list 'Archive/*'\n"
    "  imapkit -a work --json list | jq -r 'select(.unseen > 0) | .name'\n";

static const char status_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] status MAILBOX\n"
    "\n"
    "Show MAILBOX's STATUS without selecting it: messages, recent, uidnext,\n"
    "uidvalidity, unseen; highestmodseq when the server offers CONDSTORE and\n"
    "size (in bytes) when it offers STATUS=SIZE.\n"
    "\n"
    "Output: \"key: value\" lines; with --json one object\n"
    "(docs/schema/status.schema.json).\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -a work status INBOX\n"
    "  imapkit -a work --json status Archive/2024 | jq .messages\n";

static const char select_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] select [--readonly] MAILBOX\n"
    "\n"
    "Open MAILBOX with SELECT (EXAMINE with --readonly) and show what the\n"
    "server said about it: exists, recent, uidvalidity, uidnext, highestmodseq (with\n"
    "CONDSTORE), flags, permanentflags and whether it is read-only. SELECT\n"
    "may clear the \\Recent flag of new messages; --readonly does not.\n"
    "\n"
    "Output: \"key: value\" lines; with --json one object\n"
    "(docs/schema/select.schema.json).\n"
    "\n"
    "Options:\n"
    "  --readonly     use EXAMINE: open read-only, change nothing\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -a work select INBOX\n"
    "  imapkit -a work --json select --readonly Sent\n";

static const char create_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] create MAILBOX\n"
    "\n"
    "Create MAILBOX (UTF-8; the server's hierarchy delimiter, shown by\n"
    "'imapkit list', separates levels, and missing parents are created by\n"
    "most servers).\n"
    "\n"
    "Output: \"Created MAILBOX\"; with --json {\"action\": \"create\",\n"
    "\"mailbox\": ...}.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -a work create Projects/2026\n"
    "  imapkit -a work create 'Entwürfe'\n";

static const char delete_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] delete MAILBOX\n"
    "\n"
    "Delete MAILBOX and every message in it. This cannot be undone. Servers\n"
    "refuse to delete INBOX, and many refuse a mailbox that has children.\n"
    "\n"
    "Output: \"Deleted MAILBOX\"; with --json {\"action\": \"delete\",\n"
    "\"mailbox\": ...}.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Example:\n"
    "  imapkit -a work delete Projects/2019\n";

static const char rename_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] rename OLD NEW\n"
    "\n"
    "Rename mailbox OLD to NEW (with its children). Renaming INBOX moves its\n"
    "messages to NEW and leaves INBOX empty (RFC 9051 section 6.3.6).\n"
    "\n"
    "Output: \"Renamed OLD to NEW\"; with --json {\"action\": \"rename\",\n"
    "\"mailbox\": OLD, \"new_name\": NEW}.\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Example:\n"
    "  imapkit -a work rename Projects Archive/Projects\n";

static const char subscribe_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] subscribe [--unsubscribe] MAILBOX\n"
    "\n"
    "Add MAILBOX to the subscribed mailboxes (the ones mail programs show),\n"
    "or remove it with --unsubscribe. 'imapkit --json list' marks them with\n"
    "\"subscribed\": true.\n"
    "\n"
    "Output: \"Subscribed MAILBOX\" or \"Unsubscribed MAILBOX\"; with --json\n"
    "{\"action\": \"subscribe\" or \"unsubscribe\", \"mailbox\": ...}.\n"
    "\n"
    "Options:\n"
    "  --unsubscribe  remove the subscription (UNSUBSCRIBE)\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -a work subscribe Lists/imap\n"
    "  imapkit -a work subscribe --unsubscribe Lists/imap\n";

static const char quota_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] quota [MAILBOX]\n"
    "\n"
    "Show the quota roots of MAILBOX (default INBOX) and, for each, the usage\n"
    "and limit of every resource (GETQUOTAROOT, RFC 9208). STORAGE is shown\n"
    "in bytes (the server counts KiB); other resources (MESSAGE, MAILBOX) as\n"
    "numbers. Needs the server's QUOTA capability: without it the command\n"
    "says so and exits with status 1.\n"
    "\n"
    "Output: a line per root, then \"  STORAGE  1.2 MiB of 1.0 GiB (0%)\" per\n"
    "resource; with --json one object (docs/schema/quota.schema.json) whose\n"
    "usage and limit are the server's numbers (STORAGE in KiB).\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit -a work quota\n"
    "  imapkit -a work --json quota Archive\n";

/* ------------------------------------------------------------------ */
/* Arguments                                                           */
/* ------------------------------------------------------------------ */

#define OPT_READONLY 1u
#define OPT_UNSUBSCRIBE 2u

typedef struct mb_args {
    int help;
    int readonly;
    int unsubscribe;
    int npos;
    const char *pos[2];
} mb_args;

/* 1 when s is well-formed UTF-8 (RFC 3629 section 4: no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        unsigned c = *p;
        size_t n;
        unsigned min, cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0u) == 0xC0u) {
            n = 1, min = 0x80, cp = c & 0x1Fu;
        } else if ((c & 0xF0u) == 0xE0u) {
            n = 2, min = 0x800, cp = c & 0x0Fu;
        } else if ((c & 0xF8u) == 0xF0u) {
            n = 3, min = 0x10000, cp = c & 0x07u;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[k] & 0xC0u) != 0x80u)
                return 0;
            cp = (cp << 6) | (p[k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* Print a command's help on standard output. */
static int print_help(const char *usage)
{
    if (fputs(usage, stdout) == EOF || fputs("\n", stdout) == EOF ||
        fputs(cli_global_help, stdout) == EOF || fflush(stdout) != 0) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return 0;
}

/* Parse a command's own arguments (argv[0] is its name): the options in
 * `allowed`, -h/--help, "--" (everything after it is an operand, so a
 * mailbox may be called "-x"), and between min_pos and max_pos operands.
 * Returns 0 to go on, CLI_EXIT_USAGE with the message printed, or, with
 * a->help set, the status of printing `usage` (the caller then stops). */
static int parse_args(int argc, char **argv, unsigned allowed, int min_pos, int max_pos,
                      const char *const *pos_names, const char *usage, mb_args *a)
{
    char see[64];
    snprintf(see, sizeof(see), "imapkit %s --help", argv[0]);
    memset(a, 0, sizeof(*a));
    int options_end = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_end && arg[0] == '-' && arg[1] != '\0') {
            if (strcmp(arg, "--") == 0) {
                options_end = 1;
            } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
                a->help = 1;
                return print_help(usage);
            } else if ((allowed & OPT_READONLY) && strcmp(arg, "--readonly") == 0) {
                a->readonly = 1;
            } else if ((allowed & OPT_UNSUBSCRIBE) && strcmp(arg, "--unsubscribe") == 0) {
                a->unsubscribe = 1;
            } else {
                return cli_usage_error(see,
                                       "%s: unknown option '%s' (a mailbox name that "
                                       "starts with '-' goes after '--')",
                                       argv[0], arg);
            }
            continue;
        }
        if (a->npos >= max_pos)
            return cli_usage_error(see, "%s: unexpected argument '%s' (%s takes %s)", argv[0], arg,
                                   argv[0],
                                   max_pos == 0   ? "no arguments"
                                   : max_pos == 1 ? "one argument"
                                                  : "two arguments");
        if (!valid_utf8(arg))
            return cli_usage_error(see,
                                   "%s: '%s' is not valid UTF-8 (mailbox names are given in "
                                   "UTF-8; check the terminal's locale)",
                                   argv[0], arg);
        a->pos[a->npos++] = arg;
    }
    if (a->npos < min_pos)
        return cli_usage_error(see, "%s: missing %s argument", argv[0], pos_names[a->npos]);
    return 0;
}

/* The start of a command: parse_args, then cli_open. Returns 0 with the
 * connection open to go on, else the status to exit with (0 after
 * --help, with a->help set). */
static int begin(cli_ctx *ctx, int argc, char **argv, unsigned allowed, int min_pos, int max_pos,
                 const char *const *pos_names, const char *usage, mb_args *a)
{
    int rc = parse_args(argc, argv, allowed, min_pos, max_pos, pos_names, usage, a);
    if (rc != 0 || a->help)
        return rc;
    return cli_open(ctx);
}

/* The end of a command's human output: anything unwritten is an error. */
static int finish_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_EXIT_IO;
    }
    return 0;
}

static int out_of_memory(const char *what)
{
    cli_error("%s: out of memory", what);
    return CLI_EXIT_PROTOCOL;
}

/* A command's result object on standard output: as JSON with --json,
 * else through `human`; out of memory when building it failed. */
static int emit(cli_ctx *ctx, json_t *o, int oom, const char *command, int (*human)(const json_t *))
{
    if (oom)
        return out_of_memory(command);
    return ctx->json ? cli_out_json(ctx, o) : human(o);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* Set o[key] = v, stealing v; *oom is set when v is NULL or the set fails. */
static void put(json_t *o, const char *key, json_t *v, int *oom)
{
    if (o == NULL) {
        json_decref(v);
        *oom = 1;
    } else if (v == NULL || json_object_set_new(o, key, v) != 0) { /* v is released */
        *oom = 1;
    }
}

static json_t *strlist_json(imk_strlist l, int *oom)
{
    json_t *a = json_array();
    if (a == NULL) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < l.count; i++) {
        json_t *v = cli_json_str(l.items[i]);
        if (v == NULL || json_array_append_new(a, v) != 0)
            *oom = 1;
    }
    return a;
}

/* ASCII case-insensitive comparison of an imk_str with a word. */
static int str_ieq(imk_str s, const char *word)
{
    size_t n = strlen(word);
    if (s.data == NULL || s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s.data[i], b = (unsigned char)word[i];
        if (a >= 'A' && a <= 'Z')
            a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int has_attribute(imk_strlist l, const char *attr)
{
    for (size_t i = 0; i < l.count; i++)
        if (str_ieq(l.items[i], attr))
            return 1;
    return 0;
}

/* The special-use attributes (RFC 6154 section 2, RFC 8457 \Important). */
static const char *const special_uses[] = {"\\All",  "\\Archive", "\\Drafts", "\\Flagged",
                                           "\\Junk", "\\Sent",    "\\Trash",  "\\Important"};

/* The first special-use attribute of a LIST entry, or NULL. */
static const imk_str *special_use_of(imk_strlist l)
{
    for (size_t i = 0; i < l.count; i++)
        for (size_t k = 0; k < sizeof(special_uses) / sizeof(special_uses[0]); k++)
            if (str_ieq(l.items[i], special_uses[k]))
                return &l.items[i];
    return NULL;
}

/* Columns a UTF-8 string takes on a terminal, counted as code points (wide
 * East Asian characters take two, which this does not know). */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0u) != 0x80u)
            w++;
    return w;
}

/* Write server-controlled text for a terminal: control characters (C0,
 * DEL) become '?', so that a mailbox name cannot move the cursor or change
 * the terminal's state. */
static void put_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? '?' : c, stdout);
    }
}

/* Print s (made safe) left-aligned in `width` columns. */
static void print_padded(const char *s, size_t width)
{
    put_safe(s);
    for (size_t w = display_width(s); w < width; w++)
        fputc(' ', stdout);
}

/* A JSON number (integer, or the decimal string cli_json_u64 makes above
 * INT64_MAX) as text; "-" for null or absent. */
static void json_number_text(const json_t *v, char *buf, size_t cap)
{
    if (json_is_integer(v))
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else
        snprintf(buf, cap, "-");
}

/* A name as text for human output: the string, or "?" for a name that was
 * not UTF-8 (JSON {"base64": ...}). */
static const char *name_text(const json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "?";
}

/* 0 for INBOX (in any case, RFC 9051 section 5.1) and its children, 1 for
 * every other name: the first key of list's order. */
static int inbox_rank(const char *name, int delim)
{
    static const char inbox[] = "inbox";
    for (size_t i = 0; i < 5; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != inbox[i])
            return 1;
    }
    return name[5] == '\0' || (delim >= 0 && (unsigned char)name[5] == (unsigned)delim) ? 0 : 1;
}

/* Print "imapkit: " + a hint at what to try after a server refusal: from
 * the response code when there is one (RFC 5530), else from the command. */
static void refusal_hint(const imk_result *res, const char *command, const char *mailbox)
{
    if (strcmp(command, "delete") == 0 && mailbox != NULL && inbox_rank(mailbox, -1) == 0) {
        cli_error("INBOX itself can never be deleted (RFC 9051 section 6.3.4)");
        return;
    }
    int creating = strcmp(command, "create") == 0;
    imk_code_kind kind = res != NULL && res->code != NULL ? res->code->kind : IMK_CODE_OTHER;
    switch (kind) {
    case IMK_CODE_NONEXISTENT:
    case IMK_CODE_TRYCREATE:
        cli_error("no such mailbox; 'imapkit list' shows the mailboxes there are");
        break;
    case IMK_CODE_ALREADYEXISTS:
        cli_error("that name is taken; choose another one ('imapkit list' shows the names)");
        break;
    case IMK_CODE_NOPERM:
        cli_error("you lack the rights for this; ask the mailbox's owner or the server's "
                  "administrator");
        break;
    case IMK_CODE_INUSE:
        cli_error("the mailbox is in use; try again later");
        break;
    case IMK_CODE_LIMIT:
    case IMK_CODE_OVERQUOTA:
        cli_error("a server limit was reached; 'imapkit quota' shows the quota");
        break;
    default:
        if (creating)
            cli_error("check the name: 'imapkit list' shows the names there are and the "
                      "hierarchy delimiter");
        else if (strcmp(command, "list") != 0)
            cli_error("check the mailbox name: 'imapkit list' shows the mailboxes there are");
        break;
    }
}

/* The exit status for a command's result: 0 for OK; otherwise the server's
 * text (cli_exit_result) and a hint. */
static int check_result(cli_ctx *ctx, int status, const char *what, const char *command,
                        const char *mailbox, const imk_result *res)
{
    if (status < 0)
        return cli_exit_error(ctx, what, status);
    int rc = cli_exit_result(ctx, what, res);
    if (rc == CLI_EXIT_NO)
        refusal_hint(res, command, mailbox);
    return rc;
}

/* Describe a step for messages: VERB "mailbox". */
static void describe(char *buf, size_t cap, const char *verb, const char *mailbox)
{
    snprintf(buf, cap, "%s \"%s\"", verb, mailbox);
}

/* ------------------------------------------------------------------ */
/* list                                                                */
/* ------------------------------------------------------------------ */

/* The object of one LIST entry: name, delimiter, flags, special_use, and
 * messages/unseen from LIST-STATUS when it came with them (else null). */
static json_t *mailbox_json(const imk_list_entry *e, int *oom)
{
    const imk_list *l = &e->list;
    json_t *o = json_object();
    if (o == NULL) {
        *oom = 1;
        return NULL;
    }
    put(o, "name", cli_json_str(l->mailbox), oom);
    if (l->delimiter < 0) {
        put(o, "delimiter", json_null(), oom);
    } else {
        char d = (char)l->delimiter;
        put(o, "delimiter", cli_json_bytes(&d, 1), oom);
    }
    put(o, "flags", strlist_json(l->attributes, oom), oom);
    const imk_str *use = special_use_of(l->attributes);
    put(o, "special_use", use != NULL ? cli_json_str(*use) : json_null(), oom);
    const imk_status_data *st = e->status;
    put(o, "messages",
        st != NULL && (st->present & IMK_STATUS_MESSAGES) ? cli_json_u64(st->messages)
                                                          : json_null(),
        oom);
    put(o, "unseen",
        st != NULL && (st->present & IMK_STATUS_UNSEEN) ? cli_json_u64(st->unseen) : json_null(),
        oom);
    return o;
}

/* A mailbox that has no messages of its own (RFC 9051 section 7.3.1
 * \Noselect, RFC 5258 section 3.4 \NonExistent): no STATUS for it. */
static int selectable(imk_strlist attrs)
{
    return !has_attribute(attrs, "\\Noselect") && !has_attribute(attrs, "\\NonExistent");
}

static int selectable_json(const json_t *o)
{
    size_t k;
    const json_t *f;
    json_array_foreach(json_object_get(o, "flags"), k, f)
    {
        const char *fs = json_string_value(f);
        if (fs == NULL)
            continue;
        imk_str s = {fs, strlen(fs)};
        imk_strlist one = {1, &s};
        if (!selectable(one))
            return 0;
    }
    return 1;
}

static int delimiter_of(const json_t *o)
{
    const char *d = json_string_value(json_object_get(o, "delimiter"));
    return d != NULL && d[0] != '\0' ? (unsigned char)d[0] : -1;
}

/* list's order: INBOX and its children first, then by name with the
 * hierarchy delimiter ordered before every other character, so that
 * children follow their parent ("A", "A/b", "A b"). */
static int compare_mailboxes(const void *pa, const void *pb)
{
    const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
    const char *na = json_string_value(json_object_get(a, "name"));
    const char *nb = json_string_value(json_object_get(b, "name"));
    if (na == NULL)
        na = "";
    if (nb == NULL)
        nb = "";
    int da = delimiter_of(a), db = delimiter_of(b);
    int ra = inbox_rank(na, da), rb = inbox_rank(nb, db);
    if (ra != rb)
        return ra - rb;
    for (size_t i = 0;; i++) {
        unsigned ca = (unsigned char)na[i], cb = (unsigned char)nb[i];
        /* NUL < delimiter < any other byte */
        unsigned ka = ca == 0 ? 0u : (int)ca == da ? 1u : ca + 1u;
        unsigned kb = cb == 0 ? 0u : (int)cb == db ? 1u : cb + 1u;
        if (ka != kb)
            return ka < kb ? -1 : 1;
        if (ca == 0)
            return 0;
    }
}

/* LSUB "" pattern: the build callback of imk_conn_command. */
static int build_lsub(imk_op *op, void *user)
{
    const char *pattern = user;
    imk_command *cmd = imk_op_args(op);
    int rc = imk_command_mailbox(cmd, "", 0);
    if (rc == 0)
        rc = imk_command_list_mailbox(cmd, pattern, strlen(pattern));
    return rc;
}

/* Set "subscribed" on every mailbox: one more command, LIST (SUBSCRIBED)
 * with LIST-EXTENDED (RFC 5258 section 3.1), else LSUB. A refusal leaves
 * the key out (it is optional in the schema); a library error is returned. */
static int mark_subscribed(cli_ctx *ctx, json_t *mailboxes, const char *pattern, int *oom)
{
    const imk_result *res = NULL;
    int rc;
    if (imk_conn_has_capability(ctx->conn, "LIST-EXTENDED")) {
        imk_list_params p = {IMK_LIST_SUBSCRIBED, NULL};
        rc = imk_conn_list(ctx->conn, "", pattern, &p, &res);
    } else {
        rc = imk_conn_command(ctx->conn, IMK_CMD_LSUB, build_lsub, (void *)pattern, &res);
    }
    if (rc < 0)
        return rc;
    if (res == NULL || res->status != IMK_STATUS_OK) {
        if (!ctx->quiet)
            cli_error("list: the server did not say which mailboxes are subscribed (%.*s); "
                      "\"subscribed\" is left out",
                      res != NULL && res->text.data != NULL ? (int)res->text.len : 0,
                      res != NULL && res->text.data != NULL ? res->text.data : "");
        return 0;
    }
    size_t i;
    json_t *o;
    json_array_foreach(mailboxes, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        int found = 0;
        for (size_t k = 0; name != NULL && k < res->list_count && !found; k++) {
            const imk_list *l = &res->lists[k].list;
            /* \NonExistent: subscribed, but the mailbox itself is gone */
            if (l->mailbox.data != NULL && l->mailbox.len == strlen(name) &&
                memcmp(l->mailbox.data, name, l->mailbox.len) == 0 &&
                !has_attribute(l->attributes, "\\NonExistent"))
                found = 1;
        }
        put(o, "subscribed", json_boolean(found), oom);
    }
    return 0;
}

/* The ROLE column: the special-use attribute without its backslash
 * ("\Sent" is shown as "Sent"), or "". */
static const char *role_text(const json_t *o)
{
    const char *use = json_string_value(json_object_get(o, "special_use"));
    if (use == NULL)
        return "";
    return use[0] == '\\' ? use + 1 : use;
}

static int print_list_human(const json_t *mailboxes)
{
    size_t wname = 4, wrole = 4, wmsg = 8, wunseen = 6, i;
    const json_t *o;
    char num[32];
    json_array_foreach(mailboxes, i, o)
    {
        size_t w = display_width(name_text(json_object_get(o, "name")));
        if (w > wname)
            wname = w;
        size_t wr = display_width(role_text(o));
        if (wr > wrole)
            wrole = wr;
        json_number_text(json_object_get(o, "messages"), num, sizeof(num));
        if (strlen(num) > wmsg)
            wmsg = strlen(num);
        json_number_text(json_object_get(o, "unseen"), num, sizeof(num));
        if (strlen(num) > wunseen)
            wunseen = strlen(num);
    }
    print_padded("NAME", wname + 2);
    print_padded("ROLE", wrole + 2);
    printf("%*s  %*s\n", (int)wmsg, "MESSAGES", (int)wunseen, "UNSEEN");
    json_array_foreach(mailboxes, i, o)
    {
        print_padded(name_text(json_object_get(o, "name")), wname + 2);
        print_padded(role_text(o), wrole + 2);
        json_number_text(json_object_get(o, "messages"), num, sizeof(num));
        printf("%*s  ", (int)wmsg, num);
        json_number_text(json_object_get(o, "unseen"), num, sizeof(num));
        printf("%*s\n", (int)wunseen, num);
    }
    return finish_stdout();
}

int cli_cmd_list(cli_ctx *ctx, int argc, char **argv)
{
    static const char *const names[] = {"PATTERN"};
    mb_args a;
    int rc = begin(ctx, argc, argv, 0, 0, 1, names, list_usage, &a);
    if (rc != 0 || a.help)
        return rc;
    const char *pattern = a.npos > 0 ? a.pos[0] : "*";
    imk_conn *c = ctx->conn;
    int list_status = imk_conn_has_capability(c, "LIST-STATUS");
    int extended = imk_conn_has_capability(c, "LIST-EXTENDED");
    imk_list_params p = {0, NULL};
    if (extended && imk_conn_has_capability(c, "SPECIAL-USE"))
        p.flags |= IMK_LIST_RETURN_SPECIAL_USE;
    if (extended && list_status)
        p.status_items = "MESSAGES UNSEEN";

    const imk_result *res = NULL;
    json_t *mailboxes = NULL;
    int oom = 0;
    rc = imk_conn_list(c, "", pattern, &p, &res);
    if ((rc = check_result(ctx, rc, "LIST", "list", NULL, res)) != 0)
        goto done;

    /* Copy the entries out of the result before the next command. */
    if ((mailboxes = json_array()) == NULL) {
        rc = out_of_memory("list");
        goto done;
    }
    for (size_t i = 0; i < res->list_count; i++)
        if (json_array_append_new(mailboxes, mailbox_json(&res->lists[i], &oom)) != 0)
            oom = 1;
    if (oom) {
        rc = out_of_memory("list");
        goto done;
    }

    /* Counts the LIST answer did not bring: one STATUS each. */
    size_t i;
    json_t *o;
    json_array_foreach(mailboxes, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (name == NULL || !json_is_null(json_object_get(o, "messages")))
            continue;
        if (!selectable_json(o))
            continue;
        const imk_result *sres = NULL;
        rc = imk_conn_status(c, name, "MESSAGES UNSEEN", &sres);
        if (rc < 0) {
            char what[300];
            describe(what, sizeof(what), "STATUS", name);
            rc = cli_exit_error(ctx, what, rc);
            goto done;
        }
        if (sres->status != IMK_STATUS_OK || sres->status_count == 0) {
            /* An unreadable mailbox keeps null counts; the list goes on. */
            if (!ctx->quiet)
                cli_error("list: no counts for \"%s\": server said %s %.*s", name,
                          imk_status_name(sres->status),
                          sres->text.data != NULL ? (int)sres->text.len : 0,
                          sres->text.data != NULL ? sres->text.data : "");
            continue;
        }
        const imk_status_data *st = &sres->statuses[0];
        if (st->present & IMK_STATUS_MESSAGES)
            put(o, "messages", cli_json_u64(st->messages), &oom);
        if (st->present & IMK_STATUS_UNSEEN)
            put(o, "unseen", cli_json_u64(st->unseen), &oom);
    }
    rc = 0;

    if ((rc = mark_subscribed(ctx, mailboxes, pattern, &oom)) < 0) {
        rc = cli_exit_error(ctx, "LIST (SUBSCRIBED)", rc);
        goto done;
    }
    if (oom) {
        rc = out_of_memory("list");
        goto done;
    }

    /* Order for people and scripts alike: sort the pointers, then build
     * the array again in that order. */
    size_t n = json_array_size(mailboxes);
    json_t **sorted = NULL;
    if (n > 0 && cli_array_resize((void **)&sorted, n, sizeof(*sorted)) != 0) {
        rc = out_of_memory("list");
        goto done;
    }
    for (i = 0; i < n; i++)
        sorted[i] = json_array_get(mailboxes, i);
    if (n > 0)
        qsort(sorted, n, sizeof(*sorted), compare_mailboxes);
    json_t *ordered = json_array();
    for (i = 0; ordered != NULL && i < n; i++)
        if (json_array_append(ordered, sorted[i]) != 0)
            oom = 1;
    if (n > 0)
        cli_array_resize((void **)&sorted, 0, sizeof(*sorted));
    if (ordered == NULL || oom) {
        json_decref(ordered);
        rc = out_of_memory("list");
        goto done;
    }
    json_decref(mailboxes);
    mailboxes = ordered;

    if (ctx->json) {
        json_array_foreach(mailboxes, i, o)
        {
            if ((rc = cli_out_json(ctx, o)) != 0)
                break;
        }
    } else {
        rc = print_list_human(mailboxes);
    }

done:
    json_decref(mailboxes);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* status                                                              */
/* ------------------------------------------------------------------ */

/* "key: value" lines with the values aligned. */
static void print_kv(const char *key, const char *value)
{
    printf("%s:", key);
    for (size_t w = strlen(key) + 1; w < 16; w++)
        fputc(' ', stdout);
    put_safe(value);
    fputc('\n', stdout);
}

static void print_kv_number(const char *key, const json_t *v)
{
    char num[32];
    json_number_text(v, num, sizeof(num));
    print_kv(key, num);
}

/* A list of flags on one "key: value" line, "(none)" when empty. */
static void print_kv_flags(const char *key, const json_t *list)
{
    if (json_array_size(list) == 0) {
        print_kv(key, "(none)");
        return;
    }
    printf("%s:", key);
    for (size_t w = strlen(key) + 1; w < 16; w++)
        fputc(' ', stdout);
    size_t i;
    const json_t *f;
    json_array_foreach(list, i, f)
    {
        if (i > 0)
            fputc(' ', stdout);
        put_safe(name_text(f));
    }
    fputc('\n', stdout);
}

/* The status keys in the order they are shown. */
static const char *const status_keys[] = {"messages", "recent", "uidnext",       "uidvalidity",
                                          "unseen",   "size",   "highestmodseq", "appendlimit",
                                          "deleted",  NULL};

static int print_status_human(const json_t *o)
{
    print_kv("mailbox", name_text(json_object_get(o, "mailbox")));
    for (size_t k = 0; status_keys[k] != NULL; k++) {
        const json_t *v = json_object_get(o, status_keys[k]);
        if (v == NULL)
            continue;
        if (strcmp(status_keys[k], "size") == 0 && json_is_integer(v)) {
            char size[32], text[96];
            cli_fmt_size(size, sizeof(size), (uint64_t)json_integer_value(v));
            snprintf(text, sizeof(text), "%s (%" JSON_INTEGER_FORMAT " bytes)", size,
                     json_integer_value(v));
            print_kv("size", text);
        } else {
            print_kv_number(status_keys[k], v);
        }
    }
    return finish_stdout();
}

int cli_cmd_status(cli_ctx *ctx, int argc, char **argv)
{
    static const char *const names[] = {"MAILBOX"};
    mb_args a;
    int rc = begin(ctx, argc, argv, 0, 1, 1, names, status_usage, &a);
    if (rc != 0 || a.help)
        return rc;
    const char *mailbox = a.pos[0];
    imk_conn *c = ctx->conn;
    /* RECENT is an IMAP4rev1 item (RFC 9051 appendix E drops it). */
    char items[128];
    snprintf(items, sizeof(items), "MESSAGES%s UIDNEXT UIDVALIDITY UNSEEN%s%s",
             imk_conn_has_capability(c, "IMAP4rev1") ? " RECENT" : "",
             imk_conn_has_capability(c, "CONDSTORE") ? " HIGHESTMODSEQ" : "",
             imk_conn_has_capability(c, "STATUS=SIZE") ? " SIZE" : "");

    char what[300];
    describe(what, sizeof(what), "STATUS", mailbox);
    const imk_result *res = NULL;
    json_t *o = NULL;
    int oom = 0;
    rc = imk_conn_status(c, mailbox, items, &res);
    if ((rc = check_result(ctx, rc, what, "status", mailbox, res)) != 0)
        goto done;
    if (res->status_count == 0) {
        cli_error("%s: the server said OK but sent no STATUS data; run again with --trace to "
                  "see what it sent",
                  what);
        rc = CLI_EXIT_PROTOCOL;
        goto done;
    }
    const imk_status_data *st = &res->statuses[0];
    o = json_object();
    put(o, "mailbox", cli_json_str(st->mailbox), &oom);
    if (st->present & IMK_STATUS_MESSAGES)
        put(o, "messages", cli_json_u64(st->messages), &oom);
    if (st->present & IMK_STATUS_RECENT)
        put(o, "recent", cli_json_u64(st->recent), &oom);
    if (st->present & IMK_STATUS_UIDNEXT)
        put(o, "uidnext", cli_json_u64(st->uidnext), &oom);
    if (st->present & IMK_STATUS_UIDVALIDITY)
        put(o, "uidvalidity", cli_json_u64(st->uidvalidity), &oom);
    if (st->present & IMK_STATUS_UNSEEN)
        put(o, "unseen", cli_json_u64(st->unseen), &oom);
    if (st->present & IMK_STATUS_SIZE)
        put(o, "size", cli_json_u64(st->size), &oom);
    if (st->present & IMK_STATUS_HIGHESTMODSEQ)
        put(o, "highestmodseq", cli_json_u64(st->highestmodseq), &oom);
    rc = emit(ctx, o, oom, "status", print_status_human);

done:
    json_decref(o);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* select                                                              */
/* ------------------------------------------------------------------ */

static int print_select_human(const json_t *o)
{
    print_kv("mailbox", name_text(json_object_get(o, "mailbox")));
    print_kv_number("exists", json_object_get(o, "exists"));
    print_kv_number("recent", json_object_get(o, "recent"));
    print_kv_number("uidvalidity", json_object_get(o, "uidvalidity"));
    print_kv_number("uidnext", json_object_get(o, "uidnext"));
    print_kv_number("highestmodseq", json_object_get(o, "highestmodseq"));
    print_kv_flags("flags", json_object_get(o, "flags"));
    print_kv_flags("permanentflags", json_object_get(o, "permanentflags"));
    print_kv("read-only", json_is_true(json_object_get(o, "read_only")) ? "yes" : "no");
    return finish_stdout();
}

/* A view number: 0 means the server did not send it (view.h). */
static json_t *number_or_null(uint64_t v)
{
    return v == 0 ? json_null() : cli_json_u64(v);
}

int cli_cmd_select(cli_ctx *ctx, int argc, char **argv)
{
    static const char *const names[] = {"MAILBOX"};
    mb_args a;
    int rc = begin(ctx, argc, argv, OPT_READONLY, 1, 1, names, select_usage, &a);
    if (rc != 0 || a.help)
        return rc;
    const char *mailbox = a.pos[0];
    imk_conn *c = ctx->conn;
    imk_select_params p;
    memset(&p, 0, sizeof(p));
    p.readonly = a.readonly;
    /* (CONDSTORE) makes the server report HIGHESTMODSEQ (RFC 7162
     * section 3.1.8); without it Dovecot, for one, stays silent. */
    p.condstore = imk_conn_has_capability(c, "CONDSTORE");

    char what[300];
    describe(what, sizeof(what), a.readonly ? "EXAMINE" : "SELECT", mailbox);
    const imk_result *res = NULL;
    json_t *o = NULL;
    int oom = 0;
    rc = imk_conn_select(c, mailbox, &p, &res);
    if ((rc = check_result(ctx, rc, what, "select", mailbox, res)) != 0)
        goto done;

    const imk_view *v = imk_conn_view(c);
    o = json_object();
    put(o, "mailbox", json_string(mailbox), &oom);
    put(o, "exists", json_integer(imk_view_exists(v)), &oom);
    put(o, "recent", json_integer(imk_view_recent(v)), &oom);
    put(o, "uidvalidity", number_or_null(imk_view_uidvalidity(v)), &oom);
    put(o, "uidnext", number_or_null(imk_view_uidnext(v)), &oom);
    put(o, "highestmodseq", number_or_null(imk_view_highest_modseq(v)), &oom);
    put(o, "flags", strlist_json(imk_view_flags(v), &oom), &oom);
    put(o, "permanentflags", strlist_json(imk_view_permanent_flags(v), &oom), &oom);
    put(o, "read_only", json_boolean(imk_view_read_only(v)), &oom);
    rc = emit(ctx, o, oom, "select", print_select_human);

done:
    json_decref(o);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* create, delete, rename, subscribe                                   */
/* ------------------------------------------------------------------ */

typedef enum change_kind {
    CHANGE_CREATE,
    CHANGE_DELETE,
    CHANGE_RENAME,
    CHANGE_SUBSCRIBE,
    CHANGE_UNSUBSCRIBE
} change_kind;

static const struct change_info {
    const char *action; /* JSON "action" */
    const char *verb;   /* IMAP verb, for messages */
    const char *done;   /* human output */
} changes[] = {
    [CHANGE_CREATE] = {"create", "CREATE", "Created"},
    [CHANGE_DELETE] = {"delete", "DELETE", "Deleted"},
    [CHANGE_RENAME] = {"rename", "RENAME", "Renamed"},
    [CHANGE_SUBSCRIBE] = {"subscribe", "SUBSCRIBE", "Subscribed"},
    [CHANGE_UNSUBSCRIBE] = {"unsubscribe", "UNSUBSCRIBE", "Unsubscribed"},
};

/* Run one mailbox-changing command, on the open connection, and report
 * it. */
static int change_mailbox(cli_ctx *ctx, change_kind kind, const char *command, const char *mailbox,
                          const char *new_name)
{
    const struct change_info *info = &changes[kind];
    int rc = 0;
    char what[600];
    if (kind == CHANGE_RENAME)
        snprintf(what, sizeof(what), "RENAME \"%s\" \"%s\"", mailbox, new_name);
    else
        describe(what, sizeof(what), info->verb, mailbox);

    const imk_result *res = NULL;
    imk_conn *c = ctx->conn;
    switch (kind) {
    case CHANGE_CREATE:
        rc = imk_conn_create(c, mailbox, &res);
        break;
    case CHANGE_DELETE:
        rc = imk_conn_delete(c, mailbox, &res);
        break;
    case CHANGE_RENAME:
        rc = imk_conn_rename(c, mailbox, new_name, &res);
        break;
    case CHANGE_SUBSCRIBE:
        rc = imk_conn_subscribe(c, mailbox, &res);
        break;
    case CHANGE_UNSUBSCRIBE:
        rc = imk_conn_unsubscribe(c, mailbox, &res);
        break;
    }
    json_t *o = NULL;
    if ((rc = check_result(ctx, rc, what, command, mailbox, res)) != 0)
        goto done;
    if (ctx->json) {
        int oom = 0;
        o = json_object();
        put(o, "action", json_string(info->action), &oom);
        put(o, "mailbox", json_string(mailbox), &oom);
        if (kind == CHANGE_RENAME)
            put(o, "new_name", json_string(new_name), &oom);
        rc = oom ? out_of_memory(command) : cli_out_json(ctx, o);
    } else {
        if (kind == CHANGE_RENAME)
            printf("%s %s to %s\n", info->done, mailbox, new_name);
        else
            printf("%s %s\n", info->done, mailbox);
        rc = finish_stdout();
    }

done:
    json_decref(o);
    cli_close(ctx);
    return rc;
}

/* create, delete, rename and subscribe (--unsubscribe): their arguments,
 * then change_mailbox. */
static int change_command(cli_ctx *ctx, int argc, char **argv, change_kind kind, const char *usage)
{
    static const char *const one[] = {"MAILBOX"}, *const two[] = {"OLD", "NEW"};
    const char *command = changes[kind].action;
    int npos = kind == CHANGE_RENAME ? 2 : 1;
    mb_args a;
    int rc = begin(ctx, argc, argv, kind == CHANGE_SUBSCRIBE ? OPT_UNSUBSCRIBE : 0, npos, npos,
                   npos == 2 ? two : one, usage, &a);
    if (rc != 0 || a.help)
        return rc;
    if (a.unsubscribe)
        kind = CHANGE_UNSUBSCRIBE;
    return change_mailbox(ctx, kind, command, a.pos[0], npos == 2 ? a.pos[1] : NULL);
}

int cli_cmd_create(cli_ctx *ctx, int argc, char **argv)
{
    return change_command(ctx, argc, argv, CHANGE_CREATE, create_usage);
}

int cli_cmd_delete(cli_ctx *ctx, int argc, char **argv)
{
    return change_command(ctx, argc, argv, CHANGE_DELETE, delete_usage);
}

int cli_cmd_rename(cli_ctx *ctx, int argc, char **argv)
{
    return change_command(ctx, argc, argv, CHANGE_RENAME, rename_usage);
}

int cli_cmd_subscribe(cli_ctx *ctx, int argc, char **argv)
{
    return change_command(ctx, argc, argv, CHANGE_SUBSCRIBE, subscribe_usage);
}

/* ------------------------------------------------------------------ */
/* quota                                                               */
/* ------------------------------------------------------------------ */

/* Resources counted in units of 1024 octets (RFC 9208 sections 5.1, 5.4). */
static int in_kib(const char *resource)
{
    imk_str s = {resource, strlen(resource)};
    return str_ieq(s, "STORAGE") || str_ieq(s, "ANNOTATION-STORAGE");
}

static uint64_t kib_to_bytes(uint64_t kib)
{
    return kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024;
}

/* One resource amount as text: a size for KiB resources, else a number. */
static void amount_text(const char *resource, const json_t *v, char *buf, size_t cap)
{
    if (in_kib(resource) && json_is_integer(v))
        cli_fmt_size(buf, cap, kib_to_bytes((uint64_t)json_integer_value(v)));
    else
        json_number_text(v, buf, cap);
}

/* floor(usage * 100 / limit) for limit > 0, without overflow. */
static uint64_t percent_floor(uint64_t usage, uint64_t limit)
{
    if (usage <= UINT64_MAX / 100)
        return usage * 100 / limit;
    if (limit >= 100)
        return usage / (limit / 100);
    return usage / limit > UINT64_MAX / 100 ? UINT64_MAX : usage / limit * 100;
}

static int print_quota_human(const json_t *o)
{
    const char *mailbox = name_text(json_object_get(o, "mailbox"));
    const json_t *roots = json_object_get(o, "roots");
    if (json_array_size(roots) == 0) {
        put_safe(mailbox);
        fputs(": no quota\n", stdout);
        return finish_stdout();
    }
    size_t i;
    const json_t *root;
    json_array_foreach(roots, i, root)
    {
        put_safe(mailbox);
        fputs(": quota root \"", stdout);
        put_safe(name_text(json_object_get(root, "root")));
        fputs("\"\n", stdout);
        const json_t *resources = json_object_get(root, "resources");
        size_t wname = 0, k;
        const json_t *r;
        json_array_foreach(resources, k, r)
        {
            size_t w = strlen(name_text(json_object_get(r, "name")));
            if (w > wname)
                wname = w;
        }
        if (json_array_size(resources) == 0)
            printf("  (no limits)\n");
        json_array_foreach(resources, k, r)
        {
            const char *name = name_text(json_object_get(r, "name"));
            const json_t *usage = json_object_get(r, "usage"), *limit = json_object_get(r, "limit");
            char u[32], l[32], pct[32] = "";
            amount_text(name, usage, u, sizeof(u));
            amount_text(name, limit, l, sizeof(l));
            if (json_is_integer(usage) && json_is_integer(limit) &&
                json_integer_value(usage) >= 0 && json_integer_value(limit) > 0)
                snprintf(pct, sizeof(pct), " (%" PRIu64 "%%)",
                         percent_floor((uint64_t)json_integer_value(usage),
                                       (uint64_t)json_integer_value(limit)));
            printf("  ");
            print_padded(name, wname + 2);
            printf("%s of %s%s\n", u, l, pct);
        }
    }
    return finish_stdout();
}

/* The QUOTA data of one root: {"root", "resources": [...]} (RFC 9208
 * section 7.1.1). A root the server named but sent no QUOTA for gets an
 * empty list. */
static json_t *quota_root_json(const imk_result *res, imk_str root, int *oom)
{
    json_t *o = json_object();
    json_t *resources = json_array();
    put(o, "root", cli_json_str(root), oom);
    for (size_t q = 0; q < res->quota_count; q++) {
        const imk_quota *quota = &res->quotas[q];
        if (quota->root.len != root.len ||
            (root.len > 0 && memcmp(quota->root.data, root.data, root.len) != 0))
            continue;
        for (size_t k = 0; k < quota->count; k++) {
            json_t *r = json_object();
            put(r, "name", cli_json_str(quota->resources[k].name), oom);
            put(r, "usage", cli_json_u64(quota->resources[k].usage), oom);
            put(r, "limit", cli_json_u64(quota->resources[k].limit), oom);
            if (r == NULL || resources == NULL || json_array_append_new(resources, r) != 0)
                *oom = 1;
        }
        break;
    }
    put(o, "resources", resources, oom);
    return o;
}

int cli_cmd_quota(cli_ctx *ctx, int argc, char **argv)
{
    static const char *const names[] = {"MAILBOX"};
    mb_args a;
    int rc = begin(ctx, argc, argv, 0, 0, 1, names, quota_usage, &a);
    if (rc != 0 || a.help)
        return rc;
    const char *mailbox = a.npos > 0 ? a.pos[0] : "INBOX";
    imk_conn *c = ctx->conn;
    char what[300];
    describe(what, sizeof(what), "GETQUOTAROOT", mailbox);
    const imk_result *res = NULL;
    json_t *o = NULL;
    int oom = 0;
    if (!imk_conn_has_capability(c, "QUOTA")) {
        /* Not a library failure: the server has no quota to tell, which is
         * its answer, so exit 1 like a refusal. */
        cli_error("quota: the server does not support quotas (no QUOTA capability, RFC 9208); "
                  "'imapkit capabilities' lists what it offers");
        rc = CLI_EXIT_NO;
        goto done;
    }
    rc = imk_conn_getquotaroot(c, mailbox, &res);
    if ((rc = check_result(ctx, rc, what, "quota", mailbox, res)) != 0)
        goto done;

    o = json_object();
    json_t *roots = json_array();
    put(o, "mailbox",
        res->quotaroot != NULL && res->quotaroot->mailbox.data != NULL
            ? cli_json_str(res->quotaroot->mailbox)
            : json_string(mailbox),
        &oom);
    if (res->quotaroot != NULL) {
        for (size_t i = 0; i < res->quotaroot->roots.count; i++)
            if (roots == NULL ||
                json_array_append_new(roots,
                                      quota_root_json(res, res->quotaroot->roots.items[i], &oom)))
                oom = 1;
    } else {
        /* No QUOTAROOT line (a server bug): show the QUOTA data it sent. */
        for (size_t i = 0; i < res->quota_count; i++)
            if (roots == NULL ||
                json_array_append_new(roots, quota_root_json(res, res->quotas[i].root, &oom)))
                oom = 1;
    }
    put(o, "roots", roots, &oom);
    rc = emit(ctx, o, oom, "quota", print_quota_human);

done:
    json_decref(o);
    cli_close(ctx);
    return rc;
}
