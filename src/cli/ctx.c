/* SPDX-License-Identifier: MIT */
/*
 * The shared core of the imapkit tool's network commands (ctx.h): global
 * options, connecting and logging in, the event printer, the trace, exit
 * statuses, JSON lines, human sizes and dates, the progress bar.
 *
 * One process runs one command, so the state that ctx.h's cli_ctx does not
 * carry (the account read from the file, the password's source, the trace's
 * partial line, the progress bar) lives in one file-local struct, `core`;
 * cli_close() resets it, so cli_open() may run again (to reconnect).
 *
 * Invariants:
 *   - a password is read only from --password-command, $IMAPKIT_PASSWORD or
 *     ~/.netrc, is handed to imk_conn_login() and wiped right after; it is
 *     never printed, and the trace gets the library's redacted bytes only;
 *   - results go to standard output; everything for a human (errors,
 *     warnings, notices, progress) to standard error, except that --json
 *     prints events as their own JSON lines on standard output;
 *   - exit statuses (ctx.h): 1 for NO/BAD, 2 usage, 3 cannot connect / TLS /
 *     authenticate, 4 protocol or internal error. A transport failure is 3
 *     while connecting and 4 once connected (the command then broke off);
 *   - --tls none and --insecure warn on standard error on every run, -q
 *     included: they are never silent.
 *
 * The trace (--trace[=FILE]) is written in the S:/C: form of
 * tests/transcripts/README.md, so that a user's trace can be pasted into a
 * transcript: one line per CRLF-terminated line of the wire, "\r\n" written
 * as those four characters, other bytes outside printable ASCII (a bare CR or
 * LF, UTF-8, binary) as \xNN, and a backslash as \x5C where it would read as
 * an escape. Consecutive lines of one direction are concatenated by the
 * transcript runner, so a long line or a literal's bare LF may start a new
 * line without changing the bytes.
 */
#define _POSIX_C_SOURCE 200809L

#include "ctx.h"
#include "cli.h"
#include "core.h"
#include "json.h"
#include "xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* State beyond cli_ctx                                                */
/* ------------------------------------------------------------------ */

static struct core {
    cli_account acct;
    int have_acct;
    int compress;          /* --compress */
    int connected;         /* cli_open completed */
    int closing;           /* cli_close runs: the BYE of LOGOUT is expected */
    int show_changes;      /* print mailbox-change events */
    const char *pw_source; /* where the password came from, for messages */
    char notice[256];      /* the text of the event before, if a NOTICE */
    size_t notice_len;     /* (size_t)-1: the event before was no NOTICE */
    /* trace */
    cli_buf tline;
    char tdir;
    /* progress bar */
    int bar_shown;
    long long bar_last_ms;
} core;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Global options                                                      */
/* ------------------------------------------------------------------ */

const char cli_global_help[] =
    "Global options (before or after the command):\n"
    "  -s, --server URL         imaps://USER@HOST[:PORT] (TLS) or imap://USER@HOST[:PORT]\n"
    "                           (STARTTLS); USER may be percent-encoded, [::1] for IPv6\n"
    "      --tunnel 'COMMAND'   speak IMAP over COMMAND's stdin/stdout (preauthenticated,\n"
    "                           e.g. '/usr/lib/dovecot/imap')\n"
    "  -a, --account NAME       use account NAME of the account file\n"
    "      --config FILE        the account file (default $XDG_CONFIG_HOME/imapkit/config,\n"
    "                           else ~/.config/imapkit/config)\n"
    "      --password-command 'CMD'  the password is the first line CMD prints\n"
    "                           (else $IMAPKIT_PASSWORD, else ~/.netrc; never an option)\n"
    "      --oauth2-token-command 'CMD'  an OAuth 2.0 access token (OAUTHBEARER, XOAUTH2)\n"
    "      --auth MECH          SASL mechanism(s) to use, e.g. SCRAM-SHA-256 or LOGIN-COMMAND\n"
    "      --tls MODE           implicit, starttls or none (cleartext: warns)\n"
    "      --ca-file FILE       trust the CA certificates in FILE (PEM)\n"
    "      --insecure           do not verify the server's certificate (warns; tests only)\n"
    "      --compress           use COMPRESS=DEFLATE when the server offers it\n"
    "      --timeout-ms MS      give up when the server is silent for MS milliseconds\n"
    "      --json               JSON Lines on standard output (events as {\"event\": ...})\n"
    "      --trace[=FILE]       log the protocol (S:/C: lines, passwords redacted) to FILE\n"
    "                           or standard error\n"
    "  -q, --quiet              no notices or progress on standard error\n";

enum gopt_id {
    G_SERVER,
    G_TUNNEL,
    G_ACCOUNT,
    G_CONFIG,
    G_AUTH,
    G_PASSWORD_COMMAND,
    G_OAUTH2,
    G_TLS,
    G_CA_FILE,
    G_INSECURE,
    G_COMPRESS,
    G_JSON,
    G_TRACE,
    G_TIMEOUT,
    G_QUIET,
    G_PASSWORD
};

static const struct gopt {
    const char *name; /* long form without "--" */
    char short_name;  /* 0: none */
    int has_arg;      /* 1 required; 2 optional, only as --name=VALUE */
    enum gopt_id id;
} GOPTS[] = {
    {"server", 's', 1, G_SERVER},
    {"tunnel", 0, 1, G_TUNNEL},
    {"account", 'a', 1, G_ACCOUNT},
    {"config", 0, 1, G_CONFIG},
    {"auth", 0, 1, G_AUTH},
    {"password-command", 0, 1, G_PASSWORD_COMMAND},
    {"oauth2-token-command", 0, 1, G_OAUTH2},
    {"tls", 0, 1, G_TLS},
    {"ca-file", 0, 1, G_CA_FILE},
    {"insecure", 0, 0, G_INSECURE},
    {"compress", 0, 0, G_COMPRESS},
    {"json", 0, 0, G_JSON},
    {"trace", 0, 2, G_TRACE},
    {"timeout-ms", 0, 1, G_TIMEOUT},
    {"quiet", 'q', 0, G_QUIET},
    {"password", 0, 2, G_PASSWORD},
    {"pass", 0, 2, G_PASSWORD},
};

static int set_gopt(cli_ctx *ctx, const struct gopt *g, const char *value)
{
    switch (g->id) {
    case G_SERVER:
        ctx->server = value;
        break;
    case G_TUNNEL:
        ctx->tunnel = value;
        break;
    case G_ACCOUNT:
        ctx->account = value;
        break;
    case G_CONFIG:
        ctx->config = value;
        break;
    case G_AUTH:
        ctx->auth = value;
        break;
    case G_PASSWORD_COMMAND:
        ctx->password_command = value;
        break;
    case G_OAUTH2:
        ctx->oauth2_token_command = value;
        break;
    case G_TLS:
        if (strcmp(value, "none") != 0 && strcmp(value, "starttls") != 0 &&
            strcmp(value, "implicit") != 0)
            return cli_usage_error("imapkit --help",
                                   "--tls '%s': expected implicit, starttls or none", value);
        ctx->tls = value;
        break;
    case G_CA_FILE:
        ctx->ca_file = value;
        break;
    case G_INSECURE:
        ctx->insecure = 1;
        break;
    case G_COMPRESS:
        core.compress = 1;
        break;
    case G_JSON:
        ctx->json = 1;
        break;
    case G_TRACE:
        ctx->trace_on = 1;
        ctx->trace = value;
        break;
    case G_TIMEOUT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < 1 || v > 86400000)
            return cli_usage_error("imapkit --help",
                                   "--timeout-ms '%s': expected milliseconds from 1 to 86400000",
                                   value);
        ctx->timeout_ms = (int)v;
        break;
    }
    case G_QUIET:
        ctx->quiet = 1;
        break;
    case G_PASSWORD:
        cli_error("--password is not accepted: a password given as an argument is visible to "
                  "every user of this machine (ps) and stays in the shell's history");
        fprintf(stderr, "Give it with --password-command 'CMD' (e.g. 'pass show mail'), the "
                        "IMAPKIT_PASSWORD variable, or ~/.netrc (chmod 600).\n");
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_parse_global(cli_ctx *ctx, int *argc, char ***argv)
{
    char **av = *argv;
    int n = *argc, out = 0;
    ctx->progress_tty = isatty(2);
    for (int i = 0; i < n; i++) {
        const char *a = av[i];
        if (strcmp(a, "--") == 0) {
            /* the rest belongs to the command, "--" included */
            while (i < n)
                av[out++] = av[i++];
            break;
        }
        const struct gopt *g = NULL;
        const char *value = NULL;
        int has_value = 0;
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t nl = eq != NULL ? (size_t)(eq - name) : strlen(name);
            for (size_t k = 0; k < sizeof(GOPTS) / sizeof(GOPTS[0]); k++)
                if (strlen(GOPTS[k].name) == nl && strncmp(GOPTS[k].name, name, nl) == 0)
                    g = &GOPTS[k];
            if (g != NULL && eq != NULL) {
                if (g->has_arg == 0)
                    return cli_usage_error("imapkit --help", "--%s takes no value", g->name);
                value = eq + 1;
                has_value = 1;
            }
        } else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
            for (size_t k = 0; k < sizeof(GOPTS) / sizeof(GOPTS[0]); k++)
                if (GOPTS[k].short_name == a[1])
                    g = &GOPTS[k];
            if (g != NULL && a[2] != '\0') {
                if (g->has_arg != 1)
                    g = NULL; /* e.g. "-qx": not ours, the command may know it */
                else {
                    value = a + 2;
                    has_value = 1;
                }
            }
        }
        if (g == NULL) {
            av[out++] = av[i];
            continue;
        }
        if (g->has_arg == 1 && !has_value) {
            if (i + 1 >= n)
                return cli_usage_error("imapkit --help", "%s needs a value", a);
            value = av[++i];
        }
        if (g->has_arg == 1 && value[0] == '\0')
            return cli_usage_error("imapkit --help", "%s needs a non-empty value", a);
        int rc = set_gopt(ctx, g, value);
        if (rc != 0)
            return rc;
    }
    av[out] = NULL;
    *argc = out;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The trace                                                           */
/* ------------------------------------------------------------------ */

#define TRACE_LINE_MAX 4096

static void trace_emit(FILE *f)
{
    if (core.tline.len == 0)
        return;
    const unsigned char *p = (const unsigned char *)core.tline.data;
    size_t n = core.tline.len;
    fputc(core.tdir, f);
    fputs(": ", f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
            fputs("\\r\\n", f);
            i++;
        } else if (c == '\\' && i + 1 < n && (p[i + 1] == 'r' || p[i + 1] == 'x')) {
            fputs("\\x5C", f);
        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, f);
        } else {
            fprintf(f, "\\x%02X", c);
        }
    }
    fputc('\n', f);
    fflush(f);
    cli_buf_clear(&core.tline);
}

static void on_trace(void *user, char dir, const char *data, size_t len)
{
    cli_ctx *ctx = user;
    FILE *f = ctx->trace_file;
    if (f == NULL)
        return;
    if (core.tdir != dir) {
        trace_emit(f);
        core.tdir = dir;
    }
    for (size_t i = 0; i < len; i++) {
        if (cli_buf_append(&core.tline, data + i, 1) < 0) {
            trace_emit(f);
            continue;
        }
        if (data[i] == '\n' || core.tline.len >= TRACE_LINE_MAX)
            trace_emit(f);
    }
}

static int trace_open(cli_ctx *ctx, const char *where)
{
    if (!ctx->trace_on)
        return 0;
    if (ctx->trace == NULL || strcmp(ctx->trace, "-") == 0) {
        ctx->trace_file = stderr;
    } else {
        /* A reconnect (watch) reopens it: keep what the first connection
         * wrote. */
        static int opened_before;
        ctx->trace_file = fopen(ctx->trace, opened_before ? "a" : "w");
        opened_before = 1;
        if (ctx->trace_file == NULL) {
            cli_error("--trace: cannot open %s for writing: %s", ctx->trace, strerror(errno));
            return CLI_EXIT_IO;
        }
    }
    char shown[600];
    snprintf(shown, sizeof(shown), "%s", where);
    for (char *q = shown; *q != '\0'; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?'; /* the header stays one comment line */
    char when[64] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
    fprintf(ctx->trace_file,
            "# imapkit %s trace: %s, %s\n# S: server to client, C: client to server "
            "(tests/transcripts/README.md); secrets are <redacted>\n",
            imk_version(), shown, when);
    fflush(ctx->trace_file);
    return 0;
}

static void trace_close(cli_ctx *ctx)
{
    if (ctx->trace_file != NULL) {
        trace_emit(ctx->trace_file);
        if (ctx->trace_file != stderr)
            fclose(ctx->trace_file);
        else
            fflush(stderr);
    }
    ctx->trace_file = NULL;
    cli_buf_free(&core.tline);
    core.tdir = 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

int cli_out_json(cli_ctx *ctx, const json_t *obj)
{
    (void)ctx;
    if (cli_json_write_line(stdout, obj) < 0 || fflush(stdout) != 0) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return 0;
}

void cli_fmt_size(char *buf, size_t cap, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%u B", (unsigned)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    if (v < 99.95)
        snprintf(buf, cap, "%.1f %s", v, units[u]); /* "12.3 KiB" */
    else
        snprintf(buf, cap, "%.0f %s", v, units[u]);
}

/* H. Hinnant's days_from_civil (core.h): timegm() is not POSIX. */
long long cli_days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

void cli_fmt_date(char *buf, size_t cap, const imk_datetime *dt)
{
    if (cap == 0)
        return;
    if (dt == NULL || dt->year <= 0 || dt->month < 1 || dt->month > 12 || dt->day < 1 ||
        dt->day > 31) {
        snprintf(buf, cap, "-");
        return;
    }
    long long days = cli_days_from_civil(dt->year, (unsigned)dt->month, (unsigned)dt->day);
    long long secs = days * 86400 + dt->hour * 3600 + dt->minute * 60 + dt->second -
                     (long long)dt->zone_minutes * 60;
    time_t t = (time_t)secs;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M", &tm) == 0)
        snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d", dt->year, dt->month, dt->day, dt->hour,
                 dt->minute);
}

void cli_progress(cli_ctx *ctx, const char *label, uint64_t done, uint64_t total)
{
    if (!ctx->progress_tty || ctx->quiet || ctx->json)
        return;
    long long t = now_ms();
    int final = total > 0 && done >= total;
    if (core.bar_shown && !final && t - core.bar_last_ms < 100)
        return; /* at most ten redraws a second */
    core.bar_last_ms = t;
    core.bar_shown = 1;
    if (total == 0) {
        fprintf(stderr, "\r%s  %llu\033[K", label, (unsigned long long)done);
    } else {
        if (done > total)
            done = total;
        enum { WIDTH = 30 };
        unsigned filled = (unsigned)((double)done / (double)total * WIDTH);
        char bar[WIDTH + 1];
        for (unsigned i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(stderr, "\r%s  [%s] %3u%%  %llu/%llu\033[K", label, bar,
                (unsigned)((double)done * 100.0 / (double)total), (unsigned long long)done,
                (unsigned long long)total);
    }
    fflush(stderr);
}

void cli_progress_end(cli_ctx *ctx)
{
    (void)ctx;
    if (core.bar_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    core.bar_shown = 0;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/* Untagged OKs that carry mailbox or session data the view absorbs: they are
 * the answer to SELECT, not news for the user. */
static int data_code(const imk_code *code)
{
    if (code == NULL)
        return 0;
    switch (code->kind) {
    case IMK_CODE_CAPABILITY:
    case IMK_CODE_PERMANENTFLAGS:
    case IMK_CODE_UIDNEXT:
    case IMK_CODE_UIDVALIDITY:
    case IMK_CODE_UNSEEN:
    case IMK_CODE_HIGHESTMODSEQ:
    case IMK_CODE_NOMODSEQ:
    case IMK_CODE_READ_ONLY:
    case IMK_CODE_READ_WRITE:
    case IMK_CODE_CLOSED:
    case IMK_CODE_MAILBOXID:
    case IMK_CODE_COPYUID:
    case IMK_CODE_APPENDUID:
    case IMK_CODE_URLMECH:
        return 1;
    default:
        return 0;
    }
}

static const char *host_name(const cli_ctx *ctx)
{
    return ctx->host != NULL ? ctx->host : "the server";
}

static void put(json_t *o, const char *key, json_t *v)
{
    if (v != NULL)
        json_object_set_new(o, key, v);
}

static json_t *code_json(const imk_code *code)
{
    if (code == NULL)
        return json_null();
    return cli_json_str(code->name);
}

static json_t *strlist_json(imk_strlist l)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < l.count; i++)
        json_array_append_new(a, cli_json_str(l.items[i]));
    return a;
}

static json_t *seqset_json(imk_seqset set)
{
    cli_buf b = {0};
    for (size_t i = 0; i < set.count; i++) {
        char tmp[32];
        imk_range r = set.ranges[i];
        char first[12], last[12];
        snprintf(first, sizeof(first), "%u", r.first);
        snprintf(last, sizeof(last), "%u", r.last);
        if (r.first == r.last)
            snprintf(tmp, sizeof(tmp), "%s%s", i > 0 ? "," : "", r.first == 0 ? "*" : first);
        else
            snprintf(tmp, sizeof(tmp), "%s%s:%s", i > 0 ? "," : "", r.first == 0 ? "*" : first,
                     r.last == 0 ? "*" : last);
        cli_buf_append(&b, tmp, strlen(tmp));
    }
    json_t *s = json_stringn(b.data != NULL ? b.data : "", b.len);
    cli_buf_free(&b);
    return s;
}

json_t *cli_event_json(cli_ctx *ctx, const imk_session_event *ev)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const char *name = NULL;
    switch (ev->type) {
    case IMK_SE_NOTICE:
        if (ev->alert) {
            name = "alert";
            put(o, "host", json_string(host_name(ctx)));
        } else {
            name = "notice";
            put(o, "status", json_string(imk_status_name(ev->status)));
            put(o, "code", code_json(ev->code));
            if (ev->code != NULL && ev->code->raw.len > 0)
                put(o, "code_data", cli_json_str(ev->code->raw));
        }
        put(o, "text", cli_json_str(ev->text));
        break;
    case IMK_SE_PROGRESS:
        name = "progress";
        put(o, "command",
            ev->op != NULL ? json_string(imk_command_kind_verb(imk_op_kind(ev->op))) : json_null());
        if (ev->has_count)
            put(o, "count", cli_json_u64(ev->count));
        if (ev->has_goal)
            put(o, "goal", cli_json_u64(ev->goal));
        put(o, "text", cli_json_str(ev->text));
        break;
    case IMK_SE_EXISTS:
        name = "exists";
        put(o, "count", cli_json_u64(ev->count));
        put(o, "previous", json_integer(ev->old_count));
        break;
    case IMK_SE_EXPUNGE:
        name = "expunge";
        put(o, "seq", json_integer(ev->seq));
        put(o, "uid", ev->uid != 0 ? json_integer(ev->uid) : json_null());
        break;
    case IMK_SE_VANISHED:
        name = "vanished";
        put(o, "uids", seqset_json(ev->uids));
        put(o, "earlier", json_boolean(ev->earlier));
        put(o, "removed", json_integer(ev->removed));
        break;
    case IMK_SE_FLAGS:
        name = "flags";
        put(o, "seq", json_integer(ev->seq));
        put(o, "uid", ev->uid != 0 ? json_integer(ev->uid) : json_null());
        put(o, "flags", strlist_json(ev->flags));
        if (ev->modseq != 0)
            put(o, "modseq", cli_json_u64(ev->modseq));
        break;
    case IMK_SE_UIDVALIDITY:
        name = "uidvalidity";
        put(o, "uidvalidity", cli_json_u64(ev->uidvalidity));
        put(o, "previous", cli_json_u64(ev->old_uidvalidity));
        break;
    case IMK_SE_UNSOLICITED:
        name = "unsolicited";
        put(o, "response",
            ev->response != NULL ? cli_json_response(ev->response, NULL, 0, NULL) : json_null());
        break;
    case IMK_SE_BYE:
        name = "bye";
        put(o, "host", json_string(host_name(ctx)));
        put(o, "text", cli_json_str(ev->text));
        break;
    case IMK_SE_PROTOCOL_ERROR:
        name = "protocol_error";
        if (ev->error != NULL)
            put(o, "response", cli_json_error(ev->error));
        put(o, "text", cli_json_str(ev->text));
        break;
    case IMK_SE_CLOSED:
        name = "closed";
        put(o, "host", json_string(host_name(ctx)));
        break;
    default:
        json_decref(o);
        return NULL;
    }
    /* "event" first, for readers that look at the start of a line */
    json_t *r = json_object();
    if (r == NULL || json_object_set_new(r, "event", json_string(name)) != 0 ||
        json_object_update(r, o) != 0) {
        json_decref(r);
        json_decref(o);
        return NULL;
    }
    json_decref(o);
    return r;
}

static void print_str(const char *prefix, imk_str s, const char *suffix)
{
    fputs(prefix, stderr);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c < 0x20 || c == 0x7f)
            fputc('?', stderr); /* no terminal escapes from the server */
        else
            fputc(c, stderr);
    }
    fputs(suffix, stderr);
}

static void print_human(cli_ctx *ctx, const imk_session_event *ev)
{
    char line[512];
    switch (ev->type) {
    case IMK_SE_NOTICE:
        cli_progress_end(ctx);
        if (ev->alert) {
            snprintf(line, sizeof(line), "imapkit: ALERT from %s: ", host_name(ctx));
            print_str(line, ev->text, "\n");
        } else {
            const char *kind = ev->status == IMK_STATUS_NO    ? "warning"
                               : ev->status == IMK_STATUS_BAD ? "error"
                                                              : "notice";
            if (ev->code != NULL) {
                snprintf(line, sizeof(line), "imapkit: server %s [%.*s]: ", kind,
                         (int)ev->code->name.len, ev->code->name.data);
            } else {
                snprintf(line, sizeof(line), "imapkit: server %s: ", kind);
            }
            print_str(line, ev->text, "\n");
        }
        break;
    case IMK_SE_PROGRESS:
        if (ev->has_count && ev->has_goal && ctx->progress_tty) {
            cli_progress(ctx, "server", ev->count, ev->goal);
            if (ev->count >= ev->goal)
                cli_progress_end(ctx); /* done: the command's output follows */
        } else {
            cli_progress_end(ctx);
            print_str("imapkit: server progress: ", ev->text, "\n");
        }
        break;
    case IMK_SE_EXISTS:
        fprintf(stderr, "imapkit: %llu messages (was %u)\n", (unsigned long long)ev->count,
                ev->old_count);
        break;
    case IMK_SE_EXPUNGE:
        fprintf(stderr, "imapkit: message %u (UID %u) expunged\n", ev->seq, ev->uid);
        break;
    case IMK_SE_VANISHED:
        fprintf(stderr, "imapkit: %u messages vanished\n", ev->removed);
        break;
    case IMK_SE_FLAGS:
        fprintf(stderr, "imapkit: flags of message %u (UID %u):", ev->seq, ev->uid);
        for (size_t i = 0; i < ev->flags.count; i++)
            print_str(" ", ev->flags.items[i], "");
        fputc('\n', stderr);
        break;
    case IMK_SE_UIDVALIDITY:
        fprintf(stderr,
                "imapkit: UIDVALIDITY changed from %llu to %llu: every UID known before is "
                "void\n",
                (unsigned long long)ev->old_uidvalidity, (unsigned long long)ev->uidvalidity);
        break;
    case IMK_SE_UNSOLICITED:
        if (ev->response != NULL)
            print_str("imapkit: unsolicited ", ev->response->name, " response\n");
        break;
    case IMK_SE_BYE:
        cli_progress_end(ctx);
        snprintf(line, sizeof(line), "imapkit: %s is closing the connection: ", host_name(ctx));
        print_str(line, ev->text, "\n");
        break;
    case IMK_SE_PROTOCOL_ERROR:
        cli_progress_end(ctx);
        snprintf(line, sizeof(line),
                 "imapkit: malformed response from %s (skipped): ", host_name(ctx));
        if (ev->error != NULL && ev->text.len == 0)
            fprintf(stderr, "%s%s\n", line, imk_error_message(ev->error->code));
        else
            print_str(line, ev->text, "\n");
        break;
    default:
        break;
    }
}

void cli_event_print(cli_ctx *ctx, const imk_session_event *ev)
{
    if (ctx->json) {
        json_t *o = cli_event_json(ctx, ev);
        if (o != NULL) {
            cli_out_json(ctx, o);
            json_decref(o);
        }
        return;
    }
    print_human(ctx, ev);
}

void cli_events_show_changes(cli_ctx *ctx, int on)
{
    (void)ctx;
    core.show_changes = on;
}

/* The session reports Dovecot's plain-text progress ("Searched 40% of the
 * mailbox", QUIRKS Q54) twice: as the NOTICE it is, then as a PROGRESS
 * without numbers. The second one is dropped: the notice said it. */
static int repeats_notice(const imk_session_event *ev)
{
    return !ev->has_count && !ev->has_goal && ev->text.len == core.notice_len &&
           ev->text.len <= sizeof(core.notice) &&
           (ev->text.len == 0 || memcmp(ev->text.data, core.notice, ev->text.len) == 0);
}

static void on_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    (void)c;
    cli_ctx *ctx = user;
    if (ev->type != IMK_SE_PROGRESS)
        core.notice_len = (size_t)-1;
    switch (ev->type) {
    case IMK_SE_NOTICE:
        if (ev->text.len <= sizeof(core.notice)) {
            if (ev->text.len > 0)
                memcpy(core.notice, ev->text.data, ev->text.len);
            core.notice_len = ev->text.len;
        }
        if (ev->alert)
            break; /* RFC 9051 7.1: ALERT must be shown, -q or not */
        if ((ctx->quiet && !ctx->json) || data_code(ev->code))
            return;
        break;
    case IMK_SE_PROGRESS:
        if ((ctx->quiet && !ctx->json) || repeats_notice(ev))
            return;
        break;
    case IMK_SE_EXISTS:
    case IMK_SE_EXPUNGE:
    case IMK_SE_VANISHED:
    case IMK_SE_FLAGS:
    case IMK_SE_UNSOLICITED:
    case IMK_SE_UIDVALIDITY:
        if (!core.show_changes)
            return;
        break;
    case IMK_SE_BYE:
        if (core.closing)
            return;
        break;
    case IMK_SE_CLOSED:
        /* human mode: the failing call's message says it; while
         * connecting, cli_open's message does */
        if (core.closing || !core.connected || !ctx->json)
            return;
        break;
    case IMK_SE_PROTOCOL_ERROR:
        break;
    default:
        return;
    }
    cli_event_print(ctx, ev);
}

/* ------------------------------------------------------------------ */
/* Exit statuses                                                       */
/* ------------------------------------------------------------------ */

int cli_exit_error(cli_ctx *ctx, const char *what, int rc)
{
    cli_progress_end(ctx);
    const char *detail = ctx->conn != NULL ? imk_conn_error(ctx->conn) : "";
    if (detail == NULL || detail[0] == '\0')
        detail = imk_error_message(rc);
    int status = CLI_EXIT_PROTOCOL;
    const char *hint = "";
    switch (rc) {
    case IMK_EINVAL:
        status = CLI_EXIT_USAGE;
        hint = " (check the command's arguments: see its --help)";
        break;
    case IMK_EAUTH:
    case IMK_ETLS:
        status = CLI_EXIT_CONNECT;
        break;
    case IMK_ENET:
    case IMK_ECLOSED:
    case IMK_ETIMEDOUT:
    case IMK_ESECURITY:
        status = core.connected ? CLI_EXIT_PROTOCOL : CLI_EXIT_CONNECT;
        if (rc == IMK_ETIMEDOUT)
            hint = "; the server did not answer in time: try again, or allow more with "
                   "--timeout-ms";
        else if (core.connected && rc != IMK_ESECURITY)
            hint = "; the connection was lost: run the command again";
        break;
    case IMK_ENOTSUP:
        hint = "; the server does not offer what this needs (see 'imapkit capabilities')";
        break;
    case IMK_ELIMIT:
        hint = "; a size limit was reached";
        break;
    default:
        break;
    }
    fprintf(stderr, "imapkit: %s failed: %s%s\n", what, detail, hint);
    return status;
}

int cli_exit_result(cli_ctx *ctx, const char *what, const imk_result *res)
{
    if (res == NULL)
        return 0;
    if (res->status == IMK_STATUS_OK)
        return 0;
    if (res->status == IMK_STATUS_NONE && res->error < 0)
        return cli_exit_error(ctx, what, res->error);
    cli_progress_end(ctx);
    const char *said = res->status == IMK_STATUS_NO    ? "NO"
                       : res->status == IMK_STATUS_BAD ? "BAD"
                       : res->status == IMK_STATUS_BYE ? "BYE"
                                                       : "nothing";
    fprintf(stderr, "imapkit: %s: %s said %s", what, host_name(ctx), said);
    if (res->code != NULL) {
        fprintf(stderr, " [%.*s", (int)res->code->name.len, res->code->name.data);
        if (res->code->raw.len > 0)
            fprintf(stderr, " %.*s", (int)res->code->raw.len, res->code->raw.data);
        fputc(']', stderr);
    }
    print_str(" ", res->text, "\n");
    return CLI_EXIT_NO;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

static const char *ways_to_give_password =
    "Give it in one of three ways:\n"
    "  --password-command 'CMD'   (or password-command in the account file): the first\n"
    "                             line CMD prints, e.g. 'pass show mail/work'\n"
    "  IMAPKIT_PASSWORD=...       the environment variable\n"
    "  ~/.netrc (chmod 600)       machine HOST login USER password PASSWORD\n";

static void warn_security(cli_ctx *ctx, int tls_none, int insecure)
{
    if (tls_none)
        fprintf(stderr,
                "imapkit: warning: --tls none: the connection to %s is not encrypted; the "
                "password and every message cross the network in cleartext\n",
                host_name(ctx));
    if (insecure)
        fprintf(stderr,
                "imapkit: warning: --insecure: the certificate of %s is not verified; anyone "
                "on the network path can read and change everything, the password included\n",
                host_name(ctx));
}

static int connect_failed(cli_ctx *ctx, int rc, const char *step)
{
    const char *detail = imk_conn_error(ctx->conn);
    if (detail == NULL || detail[0] == '\0')
        detail = imk_error_message(rc);
    const char *hint;
    switch (rc) {
    case IMK_ENET:
        hint = ctx->tunnel != NULL || core.acct.tunnel != NULL
                   ? "check the tunnel command: run it by hand, it must speak IMAP on its "
                     "standard input and output"
                   : "check the host name and port, and that the server is running";
        break;
    case IMK_ETIMEDOUT:
        hint = "check the host name and port (a firewall may drop the packets), or allow "
               "more time with --timeout-ms";
        break;
    case IMK_ETLS:
        hint = "use --ca-file FILE if the server's certificate comes from a private CA, or "
               "fix the server certificate (name, dates); also check that the port speaks TLS "
               "(imaps://, usually 993) or STARTTLS (imap://, usually 143)";
        break;
    case IMK_ESECURITY:
        hint = "the server does not offer STARTTLS: use imaps:// if it has a TLS port, or, on "
               "a trusted network only, --tls none";
        break;
    case IMK_ECLOSED:
        hint = "the server refused or dropped the connection: try again later, or ask its "
               "administrator";
        break;
    default:
        hint = "try again with --trace to see the exchange";
        break;
    }
    fprintf(stderr, "imapkit: cannot connect to %s (%s): %s\nimapkit: %s\n", host_name(ctx), step,
            detail, hint);
    return rc == IMK_ENOMEM ? CLI_EXIT_PROTOCOL : CLI_EXIT_CONNECT;
}

static int login_failed(cli_ctx *ctx, int rc, const char *mechs)
{
    const char *detail = imk_conn_error(ctx->conn);
    if (detail == NULL || detail[0] == '\0')
        detail = imk_error_message(rc);
    fprintf(stderr, "imapkit: cannot log in to %s as %s: %s\n", host_name(ctx),
            ctx->user != NULL ? ctx->user : "(no user)", detail);
    switch (rc) {
    case IMK_EAUTH:
        fprintf(stderr, "imapkit: check the user name and the password (it came from %s)%s\n",
                core.pw_source != NULL ? core.pw_source : "--oauth2-token-command",
                mechs != NULL ? "; or try another --auth mechanism" : "");
        break;
    case IMK_ESECURITY:
        fprintf(stderr, "imapkit: the password would cross the network in cleartext: connect "
                        "with imaps:// or STARTTLS (imap://)\n");
        break;
    case IMK_ENOTSUP:
        fprintf(stderr,
                "imapkit: no authentication mechanism fits%s: see the AUTH= entries of "
                "'imapkit capabilities' and choose one with --auth\n",
                mechs != NULL ? " the --auth list" : "");
        break;
    default:
        break;
    }
    if (rc == IMK_ENOMEM || rc == IMK_EPROTO)
        return CLI_EXIT_PROTOCOL;
    return CLI_EXIT_CONNECT;
}

static const char *pick(const char *cmdline, const char *account)
{
    return cmdline != NULL ? cmdline : account;
}

int cli_open(cli_ctx *ctx)
{
    if (ctx->conn != NULL)
        return 0;
    int rc;
    core.connected = core.closing = 0;
    core.pw_source = NULL;

    /* 1. the account file: named with -a, else its `default` when neither
     * a server nor a tunnel is given */
    if (!core.have_acct && (ctx->account != NULL || (ctx->server == NULL && ctx->tunnel == NULL))) {
        char path[4096];
        if (cli_config_path(ctx, path, sizeof(path)) < 0) {
            if (ctx->account != NULL) {
                cli_error("-a %s: cannot find the account file: HOME is not set (give --config "
                          "FILE)",
                          ctx->account);
                return CLI_EXIT_USAGE;
            }
        } else {
            rc = cli_account_load(path, ctx->account, &core.acct);
            if (rc == 0)
                core.have_acct = 1;
            else if (rc != 1)
                return rc;
        }
    }
    const cli_account *ac = &core.acct;
    if (ctx->server != NULL && ctx->tunnel != NULL)
        return cli_usage_error("imapkit --help", "give either --server or --tunnel, not both");
    const char *server = ctx->tunnel != NULL ? NULL : pick(ctx->server, ac->server);
    const char *tunnel = ctx->server != NULL ? NULL : pick(ctx->tunnel, ac->tunnel);
    if (server != NULL && tunnel != NULL) {
        cli_error("account '%s' sets both 'server' and 'tunnel': keep one", ac->name);
        return CLI_EXIT_USAGE;
    }
    if (server == NULL && tunnel == NULL) {
        cli_error("no server given: use -s imaps://USER@HOST, --tunnel 'COMMAND' or -a ACCOUNT "
                  "(or 'default = ACCOUNT' in the account file)");
        fprintf(stderr, "Try 'imapkit --help' for more information.\n");
        return CLI_EXIT_USAGE;
    }
    const char *tls = pick(ctx->tls, ac->tls);
    const char *ca_file = pick(ctx->ca_file, ac->ca_file);
    const char *auth_mechs = pick(ctx->auth, ac->auth);
    const char *pw_cmd = pick(ctx->password_command, ac->password_command);
    const char *oauth_cmd = pick(ctx->oauth2_token_command, ac->oauth2_token_command);
    int insecure = ctx->insecure || ac->insecure == 1;
    int timeout_ms = ctx->timeout_ms > 0  ? ctx->timeout_ms
                     : ac->timeout_ms > 0 ? ac->timeout_ms
                                          : 0;
    int compress = core.compress || ac->compress == 1;

    imk_conn_options o = IMK_CONN_OPTIONS_INIT;
    cli_url url = {0};
    char *password = NULL, *token = NULL, *netrc_login = NULL;
    int tls_none = 0;
    if (tunnel != NULL) {
        if (ctx->tls != NULL || ctx->insecure || ctx->ca_file != NULL)
            return cli_usage_error("imapkit --help",
                                   "--tls, --ca-file and --insecure do not apply to --tunnel "
                                   "(the tunnel's command is trusted as it is)");
        o.tunnel = tunnel;
        /* Messages name "the tunnel", not its (long) command line. */
        ctx->host = cli_strdup("the tunnel");
        if (ctx->host == NULL)
            goto oom;
    } else {
        char err[512];
        rc = cli_url_parse(server, &url, err, sizeof(err));
        if (rc == -2)
            goto oom;
        if (rc < 0) {
            char shown[1024];
            cli_url_redact(server, shown, sizeof(shown));
            cli_error("bad server URL '%s'%s%s: %s", shown,
                      ctx->server == NULL ? " in account " : "",
                      ctx->server == NULL ? ac->name : "", err);
            fprintf(stderr, "%s\n", cli_url_forms);
            return CLI_EXIT_USAGE;
        }
        o.host = url.host;
        o.port = url.port;
        if (url.implicit_tls) {
            if (tls != NULL && strcmp(tls, "implicit") != 0) {
                cli_url_free(&url);
                return cli_usage_error("imapkit --help",
                                       "--tls %s contradicts imaps:// (implicit TLS): use "
                                       "imap://USER@HOST with --tls %s",
                                       tls, tls);
            }
            o.security = IMK_SECURITY_TLS;
        } else if (tls != NULL && strcmp(tls, "none") == 0) {
            o.security = IMK_SECURITY_NONE;
            o.allow_cleartext_password = 1; /* asked for explicitly, and warned about */
            tls_none = 1;
        } else if (tls != NULL && strcmp(tls, "implicit") == 0) {
            cli_url_free(&url);
            return cli_usage_error("imapkit --help",
                                   "--tls implicit contradicts imap:// (STARTTLS): use "
                                   "imaps://USER@HOST for implicit TLS");
        } else {
            o.security = IMK_SECURITY_STARTTLS;
        }
        o.ca_file = ca_file;
        o.tls_insecure_skip_verify = insecure;
        ctx->host = cli_strdup(url.host);
        if (ctx->host == NULL)
            goto oom;
        if (url.port != NULL && (ctx->port = cli_strdup(url.port)) == NULL)
            goto oom;
        if (insecure && tls_none)
            insecure = 0; /* nothing to verify */
        warn_security(ctx, tls_none, insecure);

        /* 2. credentials, before connecting: no point in a connection
         * that cannot log in */
        if (oauth_cmd != NULL) {
            rc = cli_secret_command("--oauth2-token-command", oauth_cmd, &token);
            if (rc != 0)
                goto fail;
        } else if (pw_cmd != NULL) {
            rc = cli_secret_command("--password-command", pw_cmd, &password);
            if (rc != 0)
                goto fail;
            core.pw_source = ctx->password_command != NULL ? "--password-command"
                                                           : "the account's password-command";
        } else if (getenv("IMAPKIT_PASSWORD") != NULL && getenv("IMAPKIT_PASSWORD")[0] != '\0') {
            password = cli_strdup(getenv("IMAPKIT_PASSWORD"));
            if (password == NULL)
                goto oom;
            core.pw_source = "IMAPKIT_PASSWORD";
        } else {
            char netrc[4096];
            const char *want_user = url.user != NULL ? url.user : ac->user;
            rc = cli_netrc_lookup(url.host, want_user, &password, &netrc_login, netrc,
                                  sizeof(netrc));
            if (rc > 1)
                goto fail;
            if (rc == 1) {
                cli_error("no password for %s@%s", want_user != NULL ? want_user : "USER",
                          url.host);
                fputs(ways_to_give_password, stderr);
                rc = CLI_EXIT_CONNECT;
                goto fail;
            }
            core.pw_source = "~/.netrc";
        }
        const char *user = url.user != NULL ? url.user : ac->user != NULL ? ac->user : netrc_login;
        if (user == NULL) {
            cli_error("no user name for %s: write it in the URL (imaps://USER@%s)", url.host,
                      url.host);
            rc = CLI_EXIT_USAGE;
            goto fail;
        }
        ctx->user = cli_strdup(user);
        if (ctx->user == NULL)
            goto oom;
    }
    if (timeout_ms > 0) {
        o.connect_timeout_ms = timeout_ms;
        o.io_timeout_ms = timeout_ms;
    }
    o.compress = compress;

    /* 3. the trace */
    char where[600];
    if (tunnel != NULL)
        snprintf(where, sizeof(where), "tunnel '%s'", tunnel);
    else
        snprintf(where, sizeof(where), "%s://%s%s%s%s:%s", url.implicit_tls ? "imaps" : "imap",
                 strchr(url.host, ':') != NULL ? "[" : "", url.host,
                 strchr(url.host, ':') != NULL ? "]" : "", "",
                 url.port != NULL   ? url.port
                 : url.implicit_tls ? "993"
                                    : "143");
    rc = trace_open(ctx, where);
    if (rc != 0)
        goto fail;
    if (ctx->trace_file != NULL) {
        o.trace = on_trace;
        o.trace_user = ctx;
    }

    /* 4. connect */
    rc = imk_conn_new(&o, NULL, &ctx->conn);
    if (rc < 0) {
        if (ctx->conn != NULL)
            cli_error("cannot set up the connection to %s: %s", host_name(ctx),
                      imk_conn_error(ctx->conn));
        else
            cli_error("cannot set up the connection: %s", imk_error_message(rc));
        rc = rc == IMK_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_PROTOCOL;
        goto fail;
    }
    imk_conn_on_event(ctx->conn, on_event, ctx);
    rc = imk_conn_connect(ctx->conn);
    if (rc < 0) {
        rc = connect_failed(ctx, rc, tunnel != NULL ? "starting the tunnel" : "connecting");
        goto fail;
    }

    /* 5. log in, unless the greeting was PREAUTH */
    if (imk_session_state(imk_conn_session(ctx->conn)) == IMK_STATE_NOT_AUTHENTICATED) {
        if (tunnel != NULL) {
            cli_error("the tunnel '%s' did not preauthenticate (its greeting was not PREAUTH); "
                      "imapkit logs in only with --server",
                      tunnel);
            rc = CLI_EXIT_CONNECT;
            goto fail;
        }
        imk_auth a = IMK_AUTH_INIT;
        a.user = ctx->user;
        a.password = password;
        a.oauth_token = token;
        a.mechanisms = auth_mechs;
        rc = imk_conn_login(ctx->conn, &a);
        if (rc < 0) {
            rc = login_failed(ctx, rc, auth_mechs);
            goto fail;
        }
    }
    cli_secret_free(password);
    cli_secret_free(token);
    cli_strfree(netrc_login);
    cli_url_free(&url);
    core.connected = 1;
    return 0;

oom:
    cli_error("out of memory");
    rc = CLI_EXIT_PROTOCOL;
fail:
    cli_secret_free(password);
    cli_secret_free(token);
    cli_strfree(netrc_login);
    cli_url_free(&url);
    core.closing = 1; /* no event output for the teardown */
    cli_close(ctx);
    return rc;
}

void cli_close(cli_ctx *ctx)
{
    cli_progress_end(ctx);
    if (ctx->conn != NULL) {
        core.closing = 1;
        imk_conn_state st = imk_session_state(imk_conn_session(ctx->conn));
        if (core.connected && st != IMK_STATE_LOGOUT)
            imk_conn_logout(ctx->conn);
        imk_conn_free(ctx->conn);
        ctx->conn = NULL;
    }
    trace_close(ctx);
    cli_strfree(ctx->user);
    cli_strfree(ctx->host);
    cli_strfree(ctx->port);
    ctx->user = ctx->host = ctx->port = NULL;
    cli_account_free(&core.acct);
    core.have_acct = 0;
    core.connected = 0;
    core.closing = 0;
    core.pw_source = NULL;
}

int cli_select(cli_ctx *ctx, const char *mailbox, int readonly)
{
    imk_select_params p;
    memset(&p, 0, sizeof(p));
    p.readonly = readonly;
    const imk_result *res = NULL;
    char what[512];
    snprintf(what, sizeof(what), "%s %s", readonly ? "EXAMINE" : "SELECT", mailbox);
    int rc = imk_conn_select(ctx->conn, mailbox, &p, &res);
    if (rc < 0)
        return cli_exit_error(ctx, what, rc);
    return cli_exit_result(ctx, what, res);
}
