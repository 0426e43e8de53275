/* SPDX-License-Identifier: MIT */
/*
 * `imapkit shell`: an interactive IMAP session. The user types commands
 * without tags (`select INBOX`, `uid fetch 1:* (flags)`); the tool tags
 * them, sends them through the library, and shows what comes back as it
 * arrives:
 *
 *     imapkit INBOX> uid fetch 1:2 (flags)
 *     * {"name":"FETCH","seq":1,"items":{"uid":1,"flags":["\\Seen"]}}
 *     * {"name":"FETCH","seq":2,"items":{"uid":2,"flags":[]}}
 *     A4 OK Fetch completed (0.001 + 0.000 secs).
 *     imapkit INBOX> noop
 *     [view] 3 messages (was 2)
 *     [unsolicited] * 1 FETCH (UID 1 FLAGS (\Seen \Flagged))
 *     A5 OK NOOP completed.
 *
 * Safety (DESIGN.md section 8): the user's text never reaches the wire as
 * is. The line is split into tokens here and each one goes through the
 * library's encoder, which refuses or encodes anything that could end the
 * command line:
 *   - a bare word goes as imk_command_token (printable ASCII, no "{",
 *     balanced brackets: the encoder checks), or as a mailbox name
 *     (modified UTF-7) where the command takes one, or as a message set
 *     (checked strictly) where the command takes one, or as a string when
 *     it holds 8-bit text;
 *   - "a quoted string" (escapes \" \\ \r \n \t) goes as imk_command_string
 *     or as a mailbox: the encoder sends it quoted when it can and as a
 *     literal otherwise (CR, LF, 8-bit without UTF8=ACCEPT, too long), so
 *     "x\r\nA1 DELETE INBOX" is one literal argument, never a second
 *     command;
 *   - <FILE sends the file's bytes as a literal (APPEND's message);
 *   - `{N}` typed by the user is refused: literals are made for you.
 * Commands are those the library knows (IMK_COMMAND_TABLE); LOGIN,
 * AUTHENTICATE, STARTTLS and COMPRESS are refused (the tool does them when
 * it connects), LOGOUT ends the shell, IDLE runs until the next input line.
 *
 * What is shown: each response's data as it arrives (FETCH records are
 * streamed, body sections printed as their bytes), other commands' data at
 * their completion, then the tagged status line. The connection's events
 * are marked: [view] for changes of the mailbox view, [unsolicited] for
 * data no command asked for (the server's own bytes), [notice], [ALERT],
 * [progress], [bye]. With --json every line is a JSON object instead
 * (responses as `imapkit parse` prints them, events as the core's event
 * objects). While the tool's own FETCH or STORE runs, the view's FLAGS
 * changes are the command's data and are not repeated as [view] lines.
 *
 * Input: on a terminal, libedit (line editing, history in
 * $XDG_STATE_HOME/imapkit/history unless --no-history; lines that start
 * with a space are not kept); otherwise plain lines from standard input,
 * so scripts can pipe commands in. End of input logs out cleanly.
 */
#define _POSIX_C_SOURCE 200809L /* poll, read, open, fileno, isatty, mkdir */

#include "cli.h"
#include "core.h"
#include "ctx.h"
#include "json.h"
#include "mime.h"
#include "xalloc.h"

#include <histedit.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEE_HELP "imapkit shell --help"
#define HISTORY_SIZE 1000
#define MAX_FILE_LITERAL ((size_t)64 * 1024 * 1024)

static const char shell_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] shell [--no-history]\n"
    "\n"
    "An interactive IMAP session: type IMAP commands without tags (the tool\n"
    "tags them) and see the responses as they arrive, with changes of the\n"
    "mailbox view marked [view] and data nobody asked for marked\n"
    "[unsolicited]. On a terminal lines can be edited and recalled (history\n"
    "in $XDG_STATE_HOME/imapkit/history); otherwise commands are read from\n"
    "standard input, one per line.\n"
    "\n"
    "Arguments: words as in IMAP; \"quoted strings\" (escapes \\\" \\\\ \\r \\n \\t)\n"
    "are sent quoted or as literals, whichever is safe; <FILE sends a file as a\n"
    "literal (e.g. append INBOX (\\Seen) <message.eml). Mailbox names are\n"
    "UTF-8. `idle` idles until the next line (Enter). Type .help for more.\n"
    "\n"
    "Options:\n"
    "  --no-history   do not read or write the history file\n"
    "  -h, --help     show this help and exit\n"
    "\n"
    "Exit status: 0 after .quit, LOGOUT or the end of input; 3 or 4 when the\n"
    "connection fails or is lost.\n";

static const char shell_help[] =
    "Type IMAP commands without a tag, e.g.:\n"
    "  list \"\" *                 select INBOX              status INBOX (messages unseen)\n"
    "  uid search unseen         uid fetch 1:* (flags envelope)\n"
    "  uid store 4 +flags (\\Seen) append INBOX (\\Seen) <message.eml\n"
    "  idle                      (waits for the server's news until you press Enter)\n"
    "Arguments: words as in IMAP; \"quoted strings\" (\\\" \\\\ \\r \\n \\t escapes) are sent\n"
    "quoted or as literals as needed; <FILE sends a file as a literal. Mailbox names\n"
    "are UTF-8. Lines marked [view] are changes of the mailbox view, [unsolicited]\n"
    "data no command asked for.\n"
    "Shell commands:\n"
    "  .help   this text\n"
    "  .view   the selected mailbox as the client knows it\n"
    "  .caps   the server's capabilities (sends CAPABILITY)\n"
    "  .quit   log out and leave (also: logout, Ctrl-D)\n";

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* Lines from a descriptor without stdio (so poll() sees what is left). */
typedef struct line_reader {
    int fd;
    cli_buf buf;
    size_t start; /* first byte not handed out yet */
    int eof;
} line_reader;

/* A complete line is buffered (or the input ended with a partial one). */
static int reader_ready(const line_reader *r)
{
    if (r->start < r->buf.len && memchr(r->buf.data + r->start, '\n', r->buf.len - r->start))
        return 1;
    return r->eof;
}

/* One read(): 1 got bytes or EOF noted, -1 error. */
static int reader_fill(line_reader *r)
{
    if (r->start > 0 && r->start == r->buf.len) {
        cli_buf_clear(&r->buf);
        r->start = 0;
    }
    if (cli_buf_reserve(&r->buf, 4096) < 0)
        return -1;
    ssize_t n;
    do
        n = read(r->fd, r->buf.data + r->buf.len, 4096);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0)
        r->eof = 1;
    r->buf.len += (size_t)n;
    return 1;
}

/* The next line (without its end) into out, NUL-terminated: 1, or 0 at
 * the end of input, -1 on error. */
static int reader_line(line_reader *r, cli_buf *out)
{
    cli_buf_clear(out);
    while (!reader_ready(r))
        if (reader_fill(r) < 0)
            return -1;
    size_t avail = r->buf.len - r->start;
    if (avail == 0)
        return 0; /* eof */
    const char *p = r->buf.data + r->start;
    const char *nl = memchr(p, '\n', avail);
    size_t len = nl != NULL ? (size_t)(nl - p) : avail;
    if (cli_buf_append(out, p, len) < 0 || cli_buf_append(out, "", 1) < 0)
        return -1;
    out->len--; /* the NUL is not part of the line */
    r->start += nl != NULL ? len + 1 : len;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The shell's state                                                   */
/* ------------------------------------------------------------------ */

typedef struct body_part {
    cli_json_body body;
} body_part;

typedef struct shell {
    cli_ctx *ctx;
    int tty;     /* standard input is a terminal: libedit */
    int history; /* keep history */
    char history_path[1024];
    EditLine *el;
    History *hist;
    line_reader in;
    char prompt[160];

    imk_command_kind running; /* the command in flight, IMK_CMD_COUNT_ when none */
    int body_open;            /* human form: body bytes were printed, no newline yet */
    int body_last_nl;
    /* --json: body sections collected for the FETCH record that follows */
    cli_json_body *bodies;
    size_t n_bodies;
    int out_failed;
    cli_buf pending; /* a line typed during IDLE, run after it */
    int has_pending;
} shell;

static void out_flush_error(shell *sh)
{
    if (fflush(stdout) != 0 && !sh->out_failed) {
        sh->out_failed = 1;
        cli_error("shell: cannot write to standard output");
    }
}

/* One line on standard output, made safe for a terminal. */
static void out_line(shell *sh, const char *mark, const char *text, size_t len)
{
    cli_buf b = {0};
    if (mark != NULL && mark[0] != '\0') {
        cli_buf_append(&b, mark, strlen(mark));
        cli_buf_append(&b, " ", 1);
    }
    cli_mime_display(text, len, &b);
    cli_buf_append(&b, "\n", 1);
    if (fwrite(b.data, 1, b.len, stdout) != b.len)
        sh->out_failed = 1;
    cli_buf_free(&b);
    out_flush_error(sh);
}

static void out_linef(shell *sh, const char *mark, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void out_linef(shell *sh, const char *mark, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    out_line(sh, mark, buf, strlen(buf));
}

/* A JSON object as one line; `prefix` (human form) and a space before it. */
static void out_json(shell *sh, const char *prefix, json_t *obj)
{
    if (obj == NULL) {
        cli_error("shell: out of memory");
        return;
    }
    if (sh->ctx->json) {
        if (cli_out_json(sh->ctx, obj) != 0)
            sh->out_failed = 1;
        return;
    }
    cli_buf text = {0};
    if (cli_json_append_line(&text, obj) < 0) {
        cli_buf_free(&text);
        cli_error("shell: out of memory");
        return;
    }
    /* UTF-8 as is (JSON escapes C0 controls); C1 controls and
     * bidirectional overrides are made harmless by out_line */
    out_line(sh, prefix, text.data, text.len > 0 ? text.len - 1 : 0);
    cli_buf_free(&text);
}

/* Messages of the shell itself (syntax errors...) go to standard error,
 * after what standard output already holds. */
static void shell_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void shell_error(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fflush(stdout);
    cli_error("%s", buf);
}

/* ------------------------------------------------------------------ */
/* Showing responses                                                   */
/* ------------------------------------------------------------------ */

static const cli_json_options no_body_data = {1, CLI_JSON_MAX_BODY_DEFAULT};

/* One untagged data response: "* {json}" (without "type"), or the whole
 * object with --json. */
static void show_data(shell *sh, const imk_response *r, const cli_json_body *bodies, size_t n)
{
    json_t *o = cli_json_response(r, bodies, n, sh->ctx->json ? NULL : &no_body_data);
    if (o != NULL && !sh->ctx->json)
        json_object_del(o, "type");
    out_json(sh, "*", o);
    json_decref(o);
}

static imk_response data_response(imk_response_kind kind)
{
    imk_response r;
    memset(&r, 0, sizeof(r));
    r.type = IMK_RESPONSE_UNTAGGED;
    r.kind = kind;
    const char *name = imk_response_kind_name(kind);
    r.name.data = name;
    r.name.len = strlen(name);
    return r;
}

static void show_fetch(shell *sh, const imk_fetch *f)
{
    imk_response r = data_response(IMK_KIND_FETCH);
    r.number = f->seq;
    r.u.fetch = *f;
    show_data(sh, &r, sh->bodies, sh->n_bodies);
    for (size_t i = 0; i < sh->n_bodies; i++)
        cli_buf_free(&sh->bodies[i].data);
    cli_array_resize((void **)&sh->bodies, 0, sizeof(*sh->bodies));
    sh->n_bodies = 0;
}

/* The data a command's result holds (what was not streamed). */
static void show_result_data(shell *sh, imk_command_kind kind, const imk_result *res)
{
    imk_response r;
    for (size_t i = 0; i < res->fetch_count; i++)
        show_fetch(sh, &res->fetches[i]);
    for (size_t i = 0; i < res->list_count; i++) {
        r = data_response(kind == IMK_CMD_LSUB ? IMK_KIND_LSUB : IMK_KIND_LIST);
        r.u.list = res->lists[i].list;
        show_data(sh, &r, NULL, 0);
        if (res->lists[i].status != NULL) {
            r = data_response(IMK_KIND_STATUS);
            r.u.status = *res->lists[i].status;
            show_data(sh, &r, NULL, 0);
        }
    }
    for (size_t i = 0; i < res->status_count; i++) {
        r = data_response(IMK_KIND_STATUS);
        r.u.status = res->statuses[i];
        show_data(sh, &r, NULL, 0);
    }
    int searching = kind == IMK_CMD_SEARCH || kind == IMK_CMD_UID_SEARCH;
    int sorting = kind == IMK_CMD_SORT || kind == IMK_CMD_UID_SORT;
    if (res->esearch != NULL) {
        r = data_response(IMK_KIND_ESEARCH);
        r.u.esearch = *res->esearch;
        show_data(sh, &r, NULL, 0);
    } else if ((searching || sorting) && res->status == IMK_STATUS_OK) {
        r = data_response(sorting ? IMK_KIND_SORT : IMK_KIND_SEARCH);
        r.u.search = res->search;
        show_data(sh, &r, NULL, 0);
    }
    if (res->thread.count > 0 ||
        ((kind == IMK_CMD_THREAD || kind == IMK_CMD_UID_THREAD) && res->status == IMK_STATUS_OK)) {
        r = data_response(IMK_KIND_THREAD);
        r.u.thread = res->thread;
        show_data(sh, &r, NULL, 0);
    }
    if (res->namespace_ != NULL) {
        r = data_response(IMK_KIND_NAMESPACE);
        r.u.namespace_ = *res->namespace_;
        show_data(sh, &r, NULL, 0);
    }
    if (res->id != NULL) {
        r = data_response(IMK_KIND_ID);
        r.u.id = *res->id;
        show_data(sh, &r, NULL, 0);
    }
    for (size_t i = 0; i < res->quota_count; i++) {
        r = data_response(IMK_KIND_QUOTA);
        r.u.quota = res->quotas[i];
        show_data(sh, &r, NULL, 0);
    }
    if (res->quotaroot != NULL) {
        r = data_response(IMK_KIND_QUOTAROOT);
        r.u.quotaroot = *res->quotaroot;
        show_data(sh, &r, NULL, 0);
    }
    for (size_t i = 0; i < res->metadata_count; i++) {
        r = data_response(IMK_KIND_METADATA);
        r.u.metadata = res->metadata[i];
        show_data(sh, &r, NULL, 0);
    }
    if (kind == IMK_CMD_ENABLE && res->enabled.count > 0) {
        r = data_response(IMK_KIND_ENABLED);
        r.u.capability = res->enabled;
        show_data(sh, &r, NULL, 0);
    }
    if (kind == IMK_CMD_CAPABILITY && res->capabilities.count > 0) {
        r = data_response(IMK_KIND_CAPABILITY);
        r.u.capability = res->capabilities;
        show_data(sh, &r, NULL, 0);
    }
    if (res->acl != NULL) {
        imk_response_kind k = kind == IMK_CMD_LISTRIGHTS ? IMK_KIND_LISTRIGHTS
                              : kind == IMK_CMD_MYRIGHTS ? IMK_KIND_MYRIGHTS
                                                         : IMK_KIND_ACL;
        r = data_response(k);
        r.u.acl = *res->acl;
        show_data(sh, &r, NULL, 0);
    }
}

/* "OK " and the like: a status response's name. */
static void append_status(cli_buf *b, imk_status status)
{
    const char *st = imk_status_name(status);
    cli_buf_append(b, st, strlen(st));
    cli_buf_append(b, " ", 1);
}

/* "[CODE raw] text" of a status response, each part when present. */
static void append_code_text(cli_buf *b, const imk_code *code, imk_str text)
{
    if (code != NULL) {
        cli_buf_append(b, "[", 1);
        cli_buf_append(b, code->name.data, code->name.len);
        if (code->raw.len > 0) {
            cli_buf_append(b, " ", 1);
            cli_buf_append(b, code->raw.data, code->raw.len);
        }
        cli_buf_append(b, "] ", 2);
    }
    if (text.data != NULL)
        cli_buf_append(b, text.data, text.len);
}

/* "A5 OK [READ-WRITE] Select completed." */
static void show_tagged(shell *sh, const char *tag, const imk_result *res)
{
    if (sh->ctx->json) {
        imk_response r;
        memset(&r, 0, sizeof(r));
        r.type = IMK_RESPONSE_TAGGED;
        r.kind = IMK_KIND_STATUS_RESPONSE;
        r.tag.data = tag;
        r.tag.len = strlen(tag);
        r.status = res->status;
        r.code = res->code;
        r.text = res->text;
        json_t *o = cli_json_response(&r, NULL, 0, NULL);
        if (o != NULL && res->status == IMK_STATUS_NONE) {
            json_object_set_new(o, "error", json_string(imk_error_message(res->error)));
        }
        out_json(sh, NULL, o);
        json_decref(o);
        return;
    }
    cli_buf b = {0};
    cli_buf_append(&b, tag, strlen(tag));
    cli_buf_append(&b, " ", 1);
    if (res->status == IMK_STATUS_NONE) {
        const char *why = imk_error_message(res->error);
        cli_buf_append(&b, "(no tagged answer: ", 19);
        cli_buf_append(&b, why, strlen(why));
        cli_buf_append(&b, ") ", 2);
    } else {
        append_status(&b, res->status);
    }
    append_code_text(&b, res->code, res->text);
    out_line(sh, NULL, b.data != NULL ? b.data : "", b.len);
    cli_buf_free(&b);
}

/* Body bytes, human form: printed as they come, controls made visible
 * (a message must not drive the terminal). */
static void show_body_bytes(shell *sh, const char *p, size_t n)
{
    cli_buf b = {0};
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n' && p[j] != '\t')
            j++;
        if (j > i)
            cli_mime_display(p + i, j - i, &b);
        if (j < n) {
            if (p[j] == '\n' || p[j] == '\t')
                cli_buf_append(&b, p + j, 1);
            /* CR of CRLF: dropped */
            j++;
        }
        i = j;
    }
    if (b.len > 0) {
        if (fwrite(b.data, 1, b.len, stdout) != b.len)
            sh->out_failed = 1;
        sh->body_last_nl = b.data[b.len - 1] == '\n';
    }
    cli_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static int fetch_like(imk_command_kind k)
{
    return k == IMK_CMD_FETCH || k == IMK_CMD_UID_FETCH || k == IMK_CMD_STORE ||
           k == IMK_CMD_UID_STORE;
}

static void flags_text(imk_strlist flags, cli_buf *b)
{
    if (flags.count == 0)
        cli_buf_append(b, "(none)", 6);
    for (size_t i = 0; i < flags.count; i++) {
        if (i > 0)
            cli_buf_append(b, " ", 1);
        cli_buf_append(b, flags.items[i].data, flags.items[i].len);
    }
}

static void body_event(shell *sh, const imk_session_event *ev)
{
    if (sh->ctx->json) {
        /* collected for the FETCH record that follows (json.c's rule) */
        if (ev->type == IMK_SE_BODY_BEGIN) {
            if (cli_array_resize((void **)&sh->bodies, sh->n_bodies + 1, sizeof(*sh->bodies)) < 0)
                return;
            cli_json_body *b = &sh->bodies[sh->n_bodies++];
            memset(b, 0, sizeof(*b));
            b->size = ev->body != NULL ? ev->body->size : 0;
            b->kept = b->size <= CLI_JSON_MAX_BODY_DEFAULT;
            b->truncated = !b->kept;
        } else if (ev->type == IMK_SE_BODY_CHUNK && sh->n_bodies > 0) {
            cli_json_body *b = &sh->bodies[sh->n_bodies - 1];
            if (b->kept && cli_buf_append(&b->data, ev->data.data, ev->data.len) < 0) {
                b->kept = 0;
                b->truncated = 1;
            }
        }
        return;
    }
    if (ev->type == IMK_SE_BODY_BEGIN && ev->body != NULL) {
        const imk_body_info *bi = ev->body;
        char head[256];
        snprintf(head, sizeof(head), "* %" PRIu32 " %s[%.*s] {%" PRIu64 "}%s", bi->seq,
                 imk_section_item_name(bi->item), (int)(bi->spec.len > 120 ? 120 : bi->spec.len),
                 bi->spec.data != NULL ? bi->spec.data : "", bi->size,
                 ev->op == NULL ? " (unsolicited)" : "");
        out_line(sh, NULL, head, strlen(head));
        sh->body_open = 1;
        sh->body_last_nl = 1;
    } else if (ev->type == IMK_SE_BODY_CHUNK) {
        show_body_bytes(sh, ev->data.data, ev->data.len);
    } else if (ev->type == IMK_SE_BODY_END) {
        if (sh->body_open && !sh->body_last_nl)
            fputc('\n', stdout);
        sh->body_open = 0;
        out_flush_error(sh);
    }
}

static void on_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    shell *sh = user;
    (void)c;
    switch (ev->type) {
    case IMK_SE_FETCH:
        if (ev->fetch != NULL)
            show_fetch(sh, ev->fetch);
        return;
    case IMK_SE_BODY_BEGIN:
    case IMK_SE_BODY_CHUNK:
    case IMK_SE_BODY_END:
        body_event(sh, ev);
        return;
    case IMK_SE_FLAGS:
        /* the answer to our own FETCH/STORE: shown as its data */
        if (sh->running != IMK_CMD_COUNT_ && fetch_like(sh->running))
            return;
        break;
    default:
        break;
    }
    if (sh->ctx->json) {
        json_t *o = cli_event_json(sh->ctx, ev); /* docs/schema/event.schema.json */
        if (o != NULL)
            out_json(sh, NULL, o);
        json_decref(o);
        return;
    }
    cli_buf b = {0};
    char num[160];
    const char *mark = NULL;
    switch (ev->type) {
    case IMK_SE_EXISTS:
        mark = "[view]";
        snprintf(num, sizeof(num), "%" PRIu64 " message%s (was %" PRIu32 ")", ev->count,
                 ev->count == 1 ? "" : "s", ev->old_count);
        cli_buf_append(&b, num, strlen(num));
        break;
    case IMK_SE_EXPUNGE:
        mark = "[view]";
        if (ev->uid != 0)
            snprintf(num, sizeof(num), "message %" PRIu32 " (uid %" PRIu32 ") expunged", ev->seq,
                     ev->uid);
        else
            snprintf(num, sizeof(num), "message %" PRIu32 " expunged", ev->seq);
        cli_buf_append(&b, num, strlen(num));
        break;
    case IMK_SE_VANISHED:
        mark = "[view]";
        snprintf(num, sizeof(num), "%s%" PRIu32 " message%s vanished",
                 ev->earlier ? "(earlier) " : "", ev->removed, ev->removed == 1 ? "" : "s");
        cli_buf_append(&b, num, strlen(num));
        break;
    case IMK_SE_FLAGS:
        mark = "[view]";
        if (ev->uid != 0)
            snprintf(num, sizeof(num), "message %" PRIu32 " (uid %" PRIu32 ") flags: ", ev->seq,
                     ev->uid);
        else
            snprintf(num, sizeof(num), "message %" PRIu32 " flags: ", ev->seq);
        cli_buf_append(&b, num, strlen(num));
        flags_text(ev->flags, &b);
        break;
    case IMK_SE_UIDVALIDITY:
        mark = "[view]";
        snprintf(num, sizeof(num),
                 "UIDVALIDITY %" PRIu64 " (was %" PRIu64 "): the view starts again",
                 ev->uidvalidity, ev->old_uidvalidity);
        cli_buf_append(&b, num, strlen(num));
        break;
    case IMK_SE_UNSOLICITED:
        mark = "[unsolicited]";
        if (ev->response != NULL && ev->response->raw.data != NULL) {
            size_t n = ev->response->raw.len;
            while (n > 0 &&
                   (ev->response->raw.data[n - 1] == '\n' || ev->response->raw.data[n - 1] == '\r'))
                n--;
            cli_buf_append(&b, ev->response->raw.data, n);
        }
        break;
    case IMK_SE_NOTICE:
        mark = ev->alert ? "[ALERT]" : "[notice]";
        if (!ev->alert)
            append_status(&b, ev->status);
        append_code_text(&b, ev->code, ev->text);
        break;
    case IMK_SE_PROGRESS:
        mark = "[progress]";
        if (ev->text.data != NULL)
            cli_buf_append(&b, ev->text.data, ev->text.len);
        if (ev->has_count) {
            if (ev->has_goal)
                snprintf(num, sizeof(num), " (%" PRIu64 "/%" PRIu64 ")", ev->count, ev->goal);
            else
                snprintf(num, sizeof(num), " (%" PRIu64 ")", ev->count);
            cli_buf_append(&b, num, strlen(num));
        }
        break;
    case IMK_SE_BYE:
        mark = "[bye]";
        if (ev->text.data != NULL)
            cli_buf_append(&b, ev->text.data, ev->text.len);
        break;
    case IMK_SE_PROTOCOL_ERROR:
        mark = "[protocol error]";
        if (ev->error != NULL && ev->error->message != NULL)
            cli_buf_append(&b, ev->error->message, strlen(ev->error->message));
        else if (ev->text.data != NULL)
            cli_buf_append(&b, ev->text.data, ev->text.len);
        break;
    default:
        break;
    }
    if (mark != NULL)
        out_line(sh, mark, b.data != NULL ? b.data : "", b.len);
    cli_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Parsing a command line                                              */
/* ------------------------------------------------------------------ */

typedef enum arg_type { ARG_WORD, ARG_STRING, ARG_FILE, ARG_OPEN, ARG_CLOSE } arg_type;

typedef struct shell_arg {
    arg_type type;
    size_t off, len; /* bytes in shell_cmd.text */
    size_t pos;      /* top-level position (lists count as one), for roles */
    int depth;       /* list nesting of the argument */
} shell_arg;

typedef enum arg_role {
    ROLE_PLAIN,
    ROLE_MAILBOX,        /* a mailbox name (modified UTF-7) */
    ROLE_MAILBOX_RECORD, /* the mailbox the command is about (imk_op_mailbox) */
    ROLE_PATTERN,        /* a LIST pattern */
    ROLE_SET,            /* a message set (imk_op_set) */
    ROLE_MESSAGE         /* APPEND's message: a literal */
} arg_role;

typedef struct shell_cmd {
    imk_command_kind kind;
    cli_buf text;
    shell_arg *args;
    size_t n_args;
    size_t n_top;  /* top-level positions */
    size_t skip;   /* leading list positions not counted (LIST options...) */
    char tag[32];  /* filled by the build callback */
    char why[256]; /* the build callback's own failure */
} shell_cmd;

static void cmd_free(shell_cmd *sc)
{
    cli_buf_free(&sc->text);
    cli_array_resize((void **)&sc->args, 0, sizeof(*sc->args));
}

static int push_arg(shell_cmd *sc, arg_type type, size_t off, size_t len, size_t pos, int depth)
{
    if (cli_array_resize((void **)&sc->args, sc->n_args + 1, sizeof(*sc->args)) < 0)
        return -1;
    shell_arg *a = &sc->args[sc->n_args++];
    a->type = type;
    a->off = off;
    a->len = len;
    a->pos = pos;
    a->depth = depth;
    return 0;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Read FILE into sc->text for a <FILE argument. 0, or -1 (message printed). */
static int read_file_arg(shell_cmd *sc, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        shell_error("shell: <%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t start = sc->text.len;
    for (;;) {
        if (sc->text.len - start > MAX_FILE_LITERAL) {
            close(fd);
            shell_error("shell: <%s: larger than %zu MiB; use `imapkit append` for big messages",
                        path, MAX_FILE_LITERAL >> 20);
            return -1;
        }
        if (cli_buf_reserve(&sc->text, 65536) < 0) {
            close(fd);
            shell_error("shell: <%s: out of memory", path);
            return -1;
        }
        ssize_t n = read(fd, sc->text.data + sc->text.len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            shell_error("shell: <%s: cannot read: %s", path, strerror(e));
            return -1;
        }
        if (n == 0)
            break;
        sc->text.len += (size_t)n;
    }
    close(fd);
    return 0;
}

/* Split the arguments (the text after the verb). 0, or -1 (message
 * printed). */
static int parse_args(shell_cmd *sc, const char *p)
{
    int depth = 0;
    size_t pos = 0;
    for (;;) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        size_t off = sc->text.len;
        if (*p == '(') {
            if (push_arg(sc, ARG_OPEN, off, 0, pos, depth) < 0)
                goto nomem;
            depth++;
            p++;
            continue;
        }
        if (*p == ')') {
            if (depth == 0) {
                shell_error("shell: unbalanced ')': a list was closed that was never opened");
                return -1;
            }
            depth--;
            if (push_arg(sc, ARG_CLOSE, off, 0, pos, depth) < 0)
                goto nomem;
            if (depth == 0)
                pos++;
            p++;
            continue;
        }
        if (*p == '{') {
            shell_error("shell: literals ({N}) are not typed here: write the text as a \"quoted "
                        "string\" (\\r\\n allowed) or <FILE, and the shell sends a literal when "
                        "one is needed");
            return -1;
        }
        if (*p == '"') {
            p++;
            for (;;) {
                char ch = *p;
                if (ch == '\0') {
                    shell_error("shell: unterminated quoted string: a closing '\"' is missing");
                    return -1;
                }
                p++;
                if (ch == '"')
                    break;
                if (ch == '\\') {
                    char e = *p;
                    char v = e == '"'    ? '"'
                             : e == '\\' ? '\\'
                             : e == 'r'  ? '\r'
                             : e == 'n'  ? '\n'
                             : e == 't'  ? '\t'
                                         : 0;
                    if (v == 0) {
                        shell_error(
                            "shell: unknown escape '\\%c' in a quoted string: use \\\" \\\\ "
                            "\\r \\n or \\t",
                            e != '\0' ? e : ' ');
                        return -1;
                    }
                    ch = v;
                    p++;
                }
                if (cli_buf_append(&sc->text, &ch, 1) < 0)
                    goto nomem;
            }
            if (*p != '\0' && !is_space(*p) && *p != ')') {
                shell_error("shell: a quoted string must be followed by a space or ')'");
                return -1;
            }
            if (push_arg(sc, ARG_STRING, off, sc->text.len - off, pos, depth) < 0)
                goto nomem;
            if (depth == 0)
                pos++;
            continue;
        }
        if (*p == '<' && p[1] != '\0' && !is_space(p[1])) {
            const char *start = ++p;
            while (*p != '\0' && !is_space(*p))
                p++;
            char path[4096];
            size_t n = (size_t)(p - start);
            if (n >= sizeof(path)) {
                shell_error("shell: file name too long");
                return -1;
            }
            memcpy(path, start, n);
            path[n] = '\0';
            if (read_file_arg(sc, path) < 0)
                return -1;
            if (push_arg(sc, ARG_FILE, off, sc->text.len - off, pos, depth) < 0)
                goto nomem;
            if (depth == 0)
                pos++;
            continue;
        }
        /* a word; brackets may hold spaces and parentheses:
         * BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.100> */
        const char *start = p;
        int brackets = 0;
        while (*p != '\0') {
            if (brackets == 0 && (is_space(*p) || *p == '(' || *p == ')'))
                break;
            if (*p == '[')
                brackets++;
            else if (*p == ']' && brackets > 0)
                brackets--;
            else if (*p == '"' && brackets == 0) {
                shell_error("shell: a '\"' inside a word: put the whole argument in quotes");
                return -1;
            }
            p++;
        }
        if (brackets != 0) {
            shell_error("shell: unbalanced '[' in '%.*s'", (int)(p - start), start);
            return -1;
        }
        if (cli_buf_append(&sc->text, start, (size_t)(p - start)) < 0)
            goto nomem;
        if (push_arg(sc, ARG_WORD, off, (size_t)(p - start), pos, depth) < 0)
            goto nomem;
        if (depth == 0)
            pos++;
    }
    if (depth != 0) {
        shell_error("shell: %d list%s left open: a ')' is missing", depth, depth == 1 ? "" : "s");
        return -1;
    }
    sc->n_top = pos;
    return 0;
nomem:
    shell_error("shell: out of memory");
    return -1;
}

/* Commands whose arguments start with an optional parenthesised list of
 * options that does not count for the positions below. */
static int has_leading_options(imk_command_kind k)
{
    return k == IMK_CMD_LIST || k == IMK_CMD_GETMETADATA;
}

/* What the argument at top-level position `pos` is for the command. */
static arg_role role_of(const shell_cmd *sc, size_t pos, arg_type type)
{
    size_t p = pos - sc->skip;
    if (pos < sc->skip)
        return ROLE_PLAIN;
    switch (sc->kind) {
    case IMK_CMD_SELECT:
    case IMK_CMD_EXAMINE:
    case IMK_CMD_STATUS:
        return p == 0 ? ROLE_MAILBOX_RECORD : ROLE_PLAIN;
    case IMK_CMD_CREATE:
    case IMK_CMD_DELETE:
    case IMK_CMD_SUBSCRIBE:
    case IMK_CMD_UNSUBSCRIBE:
    case IMK_CMD_GETQUOTAROOT:
    case IMK_CMD_GETACL:
    case IMK_CMD_SETACL:
    case IMK_CMD_DELETEACL:
    case IMK_CMD_LISTRIGHTS:
    case IMK_CMD_MYRIGHTS:
    case IMK_CMD_GETMETADATA:
    case IMK_CMD_SETMETADATA:
        return p == 0 ? ROLE_MAILBOX : ROLE_PLAIN;
    case IMK_CMD_RENAME:
        return p <= 1 ? ROLE_MAILBOX : ROLE_PLAIN;
    case IMK_CMD_LIST:
    case IMK_CMD_LSUB:
        return p == 0 ? ROLE_MAILBOX : p == 1 ? ROLE_PATTERN : ROLE_PLAIN;
    case IMK_CMD_APPEND:
        if (p == 0)
            return ROLE_MAILBOX;
        /* append-data is a literal (RFC 9051 section 6.3.12) */
        if (pos + 1 == sc->n_top && (type == ARG_STRING || type == ARG_FILE))
            return ROLE_MESSAGE;
        return ROLE_PLAIN;
    case IMK_CMD_COPY:
    case IMK_CMD_UID_COPY:
    case IMK_CMD_MOVE:
    case IMK_CMD_UID_MOVE:
        return p == 0 ? ROLE_SET : p == 1 ? ROLE_MAILBOX : ROLE_PLAIN;
    case IMK_CMD_FETCH:
    case IMK_CMD_UID_FETCH:
    case IMK_CMD_STORE:
    case IMK_CMD_UID_STORE:
    case IMK_CMD_UID_EXPUNGE:
        return p == 0 ? ROLE_SET : ROLE_PLAIN;
    default:
        return ROLE_PLAIN;
    }
}

static int has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

static int has_nul(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

/* imk_build_fn: every argument through the encoder (see the top). */
static int build_cmd(imk_op *op, void *user)
{
    shell_cmd *sc = user;
    snprintf(sc->tag, sizeof(sc->tag), "%s", imk_op_tag(op));
    imk_command *cmd = imk_op_args(op);
    if (sc->kind == IMK_CMD_FETCH || sc->kind == IMK_CMD_UID_FETCH || sc->kind == IMK_CMD_STORE ||
        sc->kind == IMK_CMD_UID_STORE)
        imk_op_stream_fetch(op, 1); /* records shown as they arrive */
    int recorded = 0;
    for (size_t i = 0; i < sc->n_args; i++) {
        const shell_arg *a = &sc->args[i];
        /* NUL-terminated copy for the appenders that take C strings */
        const char *data = sc->text.data != NULL ? sc->text.data + a->off : "";
        int rc = 0;
        arg_role role = a->depth == 0 ? role_of(sc, a->pos, a->type) : ROLE_PLAIN;
        if (a->type == ARG_OPEN) {
            rc = imk_command_list_begin(cmd);
        } else if (a->type == ARG_CLOSE) {
            rc = imk_command_list_end(cmd);
        } else if (a->type == ARG_FILE || role == ROLE_MESSAGE) {
            rc = imk_command_literal(cmd, data, a->len, has_nul(data, a->len));
        } else {
            char small[1024];
            char *word = small;
            cli_buf big = {0};
            if (a->len >= sizeof(small)) {
                if (cli_buf_append(&big, data, a->len) < 0 || cli_buf_append(&big, "", 1) < 0) {
                    cli_buf_free(&big);
                    return IMK_ENOMEM;
                }
                word = big.data;
            } else {
                memcpy(small, data, a->len);
                small[a->len] = '\0';
            }
            if (memchr(word, '\0', a->len) != NULL && role != ROLE_PLAIN) {
                snprintf(sc->why, sizeof(sc->why), "an argument holds a NUL byte");
                cli_buf_free(&big);
                return IMK_EINVAL;
            }
            switch (role) {
            case ROLE_MAILBOX_RECORD:
                rc = recorded ? imk_command_mailbox(cmd, word, a->len)
                              : imk_op_mailbox(op, word, a->len);
                recorded = 1;
                break;
            case ROLE_MAILBOX:
                rc = imk_command_mailbox(cmd, word, a->len);
                break;
            case ROLE_PATTERN:
                rc = imk_command_list_mailbox(cmd, word, a->len);
                break;
            case ROLE_SET:
                if (a->type == ARG_WORD)
                    rc = imk_op_set(op, word);
                else
                    rc = imk_command_string(cmd, word, a->len);
                break;
            default:
                if (a->type == ARG_STRING || has_8bit(word, a->len))
                    rc = imk_command_string(cmd, word, a->len);
                else
                    rc = imk_command_token(cmd, word);
                break;
            }
            cli_buf_free(&big);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

/* The command kind whose verb the line starts with ("uid fetch" -> UID
 * FETCH); *rest after it. IMK_CMD_COUNT_ when unknown. */
static imk_command_kind find_verb(const char *line, const char **rest, char *verb, size_t cap)
{
    const char *p = line;
    while (*p != '\0' && !is_space(*p))
        p++;
    size_t n1 = (size_t)(p - line);
    size_t n = n1;
    if (n1 == 3 && strncasecmp(line, "UID", 3) == 0) {
        const char *q = p;
        while (is_space(*q))
            q++;
        const char *w2 = q;
        while (*q != '\0' && !is_space(*q))
            q++;
        if (q > w2) {
            p = q;
            n = (size_t)(q - line);
        }
    }
    snprintf(verb, cap, "%.*s", (int)n, line);
    /* "UID   FETCH" -> "UID FETCH" */
    char norm[64];
    size_t k = 0;
    for (size_t i = 0; verb[i] != '\0' && k + 1 < sizeof(norm); i++) {
        if (is_space(verb[i])) {
            if (k > 0 && norm[k - 1] != ' ')
                norm[k++] = ' ';
        } else {
            norm[k++] = verb[i];
        }
    }
    norm[k] = '\0';
    snprintf(verb, cap, "%s", norm);
    *rest = p;
    for (int i = 0; i < (int)IMK_CMD_COUNT_; i++) {
        imk_command_kind kind = (imk_command_kind)i;
        if (strcasecmp(imk_command_kind_verb(kind), norm) == 0)
            return kind;
    }
    return IMK_CMD_COUNT_;
}

/* A library error: fatal ones end the shell (exit status returned),
 * others are reported and the session goes on (0). */
static int library_error(shell *sh, const char *what, int rc)
{
    imk_conn *c = sh->ctx->conn;
    if (imk_error_is_fatal(rc) || rc == IMK_ECLOSED ||
        imk_session_state(imk_conn_session(c)) == IMK_STATE_LOGOUT) {
        fflush(stdout);
        return cli_exit_error(sh->ctx, what, rc);
    }
    shell_error("shell: %s: %s", what, imk_conn_error(c));
    return 0;
}

static void idle_done(imk_conn *c, int err, const imk_result *res, void *user)
{
    (void)c;
    (void)res;
    int *state = user;
    state[0] = 1;
    state[1] = err;
}

/* IDLE until a line is typed (an empty one just ends it; another is run
 * afterwards) or the input ends. 0, or an exit status. */
static int run_idle(shell *sh)
{
    imk_conn *c = sh->ctx->conn;
    int state[2] = {0, 0};
    int rc = imk_conn_idle_async(c, idle_done, state);
    if (rc < 0)
        return library_error(sh, "IDLE", rc);
    if (!sh->ctx->json)
        out_line(
            sh, NULL, sh->tty ? "+ idling (press Enter to stop)" : "+ idling (until the next line)",
            strlen(sh->tty ? "+ idling (press Enter to stop)" : "+ idling (until the next line)"));
    int stopping = 0;
    while (!state[0]) {
        struct pollfd p[2];
        nfds_t n = 0;
        int fd = imk_conn_fd(c);
        unsigned want = imk_conn_events(c);
        int conn_slot = -1, in_slot = -1;
        if (fd >= 0) {
            p[n].fd = fd;
            p[n].events = (short)(((want & IMK_WANT_READ) ? POLLIN : 0) |
                                  ((want & IMK_WANT_WRITE) ? POLLOUT : 0));
            p[n].revents = 0;
            conn_slot = (int)n++;
        }
        if (!stopping && !reader_ready(&sh->in)) {
            p[n].fd = sh->in.fd;
            p[n].events = POLLIN;
            p[n].revents = 0;
            in_slot = (int)n++;
        }
        int timeout = imk_conn_timeout(c);
        if (!stopping && reader_ready(&sh->in))
            timeout = 0;
        int got = poll(p, n, timeout);
        if (got < 0 && errno != EINTR) {
            shell_error("shell: poll: %s", strerror(errno));
            return CLI_EXIT_PROTOCOL;
        }
        if (in_slot >= 0 && p[in_slot].revents != 0 && reader_fill(&sh->in) < 0)
            sh->in.eof = 1;
        if (!stopping && reader_ready(&sh->in)) {
            cli_buf line = {0};
            int lr = reader_line(&sh->in, &line);
            if (lr == 1) {
                size_t k = 0;
                while (k < line.len && is_space(line.data[k]))
                    k++;
                if (k < line.len) {
                    cli_buf_clear(&sh->pending);
                    if (cli_buf_append(&sh->pending, line.data, line.len) == 0 &&
                        cli_buf_append(&sh->pending, "", 1) == 0)
                        sh->has_pending = 1;
                }
            } else {
                sh->in.eof = 1;
            }
            cli_buf_free(&line);
            stopping = 1;
            imk_conn_idle_stop(c); /* DONE (RFC 2177) */
        }
        unsigned revents = 0;
        if (conn_slot >= 0) {
            short r = p[conn_slot].revents;
            if (r & (POLLIN | POLLHUP | POLLERR))
                revents |= IMK_WANT_READ;
            if (r & (POLLOUT | POLLERR))
                revents |= IMK_WANT_WRITE;
        }
        rc = imk_conn_process(c, revents);
        if (rc < 0 && !state[0])
            return library_error(sh, "IDLE", rc);
    }
    if (state[1] < 0)
        return library_error(sh, "IDLE", state[1]);
    if (!sh->ctx->json)
        out_line(sh, NULL, "+ done: IDLE ended", strlen("+ done: IDLE ended"));
    return 0;
}

/* A tagged IMAP command line. 0, or an exit status (the session is over). */
static int run_imap(shell *sh, imk_command_kind kind, const char *verb, const char *rest)
{
    shell_cmd sc;
    memset(&sc, 0, sizeof(sc));
    sc.kind = kind;
    if (parse_args(&sc, rest) < 0) {
        cmd_free(&sc);
        return 0;
    }
    if (has_leading_options(kind) && sc.n_args > 0 && sc.args[0].type == ARG_OPEN)
        sc.skip = 1;
    const imk_result *res = NULL;
    sh->running = kind;
    int rc = imk_conn_command(sh->ctx->conn, kind, build_cmd, &sc, &res);
    sh->running = IMK_CMD_COUNT_;
    if (rc < 0) {
        if (sc.why[0] != '\0')
            shell_error("shell: %s: %s", verb, sc.why);
        cmd_free(&sc);
        return library_error(sh, verb, rc);
    }
    if (res != NULL) {
        show_result_data(sh, kind, res);
        show_tagged(sh, sc.tag, res);
    }
    cmd_free(&sc);
    return 0;
}

static void show_strlist(cli_buf *b, imk_strlist l)
{
    for (size_t i = 0; i < l.count; i++) {
        if (i > 0)
            cli_buf_append(b, " ", 1);
        cli_buf_append(b, l.items[i].data, l.items[i].len);
    }
}

static json_t *strlist_json(imk_strlist l)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < l.count; i++)
        json_array_append_new(a, cli_json_str(l.items[i]));
    return a;
}

/* .view: the mailbox as the client knows it (DESIGN.md section 3). */
static void dot_view(shell *sh)
{
    imk_conn *c = sh->ctx->conn;
    const imk_view *v = imk_conn_view(c);
    const char *mb = imk_session_mailbox(imk_conn_session(c));
    uint32_t exists = imk_view_exists(v), uids = 0;
    for (uint32_t s = 1; s <= exists; s++)
        if (imk_view_uid_of_seq(v, s) != 0)
            uids++;
    if (sh->ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "view", mb != NULL ? cli_json_bytes(mb, strlen(mb)) : json_null());
        json_object_set_new(o, "read_only", json_boolean(imk_view_read_only(v)));
        json_object_set_new(o, "exists", json_integer(exists));
        json_object_set_new(o, "uids_known", json_integer(uids));
        json_object_set_new(o, "uidvalidity", cli_json_u64(imk_view_uidvalidity(v)));
        json_object_set_new(o, "uidnext", cli_json_u64(imk_view_uidnext(v)));
        json_object_set_new(o, "highestmodseq", cli_json_u64(imk_view_highest_modseq(v)));
        json_object_set_new(o, "flags", strlist_json(imk_view_flags(v)));
        json_object_set_new(o, "permanent_flags", strlist_json(imk_view_permanent_flags(v)));
        out_json(sh, NULL, o);
        json_decref(o);
        return;
    }
    if (mb == NULL) {
        out_line(sh, "[view]", "no mailbox selected (type: select INBOX)",
                 strlen("no mailbox selected (type: select INBOX)"));
        return;
    }
    out_linef(sh, "[view]", "mailbox      %s (%s)", mb,
              imk_view_read_only(v) ? "read-only" : "read-write");
    out_linef(sh, "[view]", "messages     %" PRIu32 " (UIDs known for %" PRIu32 ")", exists, uids);
    out_linef(sh, "[view]",
              "uidvalidity  %" PRIu64 "   uidnext %" PRIu64 "   highestmodseq %" PRIu64,
              imk_view_uidvalidity(v), imk_view_uidnext(v), imk_view_highest_modseq(v));
    cli_buf b = {0};
    cli_buf_append(&b, "flags        ", 13);
    show_strlist(&b, imk_view_flags(v));
    out_line(sh, "[view]", b.data, b.len);
    cli_buf_clear(&b);
    cli_buf_append(&b, "permanent    ", 13);
    show_strlist(&b, imk_view_permanent_flags(v));
    out_line(sh, "[view]", b.data, b.len);
    cli_buf_free(&b);
}

/* .caps: CAPABILITY, the extensions enabled, the transport. */
static int dot_caps(shell *sh)
{
    imk_conn *c = sh->ctx->conn;
    const imk_result *res = NULL;
    int rc = imk_conn_capability(c, &res);
    if (rc < 0)
        return library_error(sh, "CAPABILITY", rc);
    static const char *const known[] = {"CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4rev2"};
    imk_session *s = imk_conn_session(c);
    if (sh->ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "capabilities", strlist_json(res->capabilities));
        json_t *en = json_array();
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (imk_session_is_enabled(s, known[i]))
                json_array_append_new(en, json_string(known[i]));
        json_object_set_new(o, "enabled", en);
        json_object_set_new(o, "transport", json_string(imk_conn_transport(c)));
        out_json(sh, NULL, o);
        json_decref(o);
        return 0;
    }
    cli_buf b = {0};
    show_strlist(&b, res->capabilities);
    out_line(sh, "capabilities:", b.data != NULL ? b.data : "", b.len);
    cli_buf_clear(&b);
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (imk_session_is_enabled(s, known[i])) {
            if (b.len > 0)
                cli_buf_append(&b, " ", 1);
            cli_buf_append(&b, known[i], strlen(known[i]));
        }
    out_line(sh, "enabled:", b.len > 0 ? b.data : "(none)", b.len > 0 ? b.len : 6);
    cli_buf_free(&b);
    const char *t = imk_conn_transport(c);
    out_line(sh, "transport:", t, strlen(t));
    return 0;
}

/* One input line. 0 go on, 1 leave, or an exit status + 1 << 8 (over). */
#define SHELL_QUIT 1
#define SHELL_OVER(status) (0x100 | (status))

static int run_line(shell *sh, const char *line)
{
    while (is_space(*line))
        line++;
    size_t n = strlen(line);
    while (n > 0 && is_space(line[n - 1]))
        n--;
    if (n == 0)
        return 0;
    char *copy = cli_strndup(line, n);
    if (copy == NULL) {
        shell_error("shell: out of memory");
        return 0;
    }
    int ret = 0;
    if (copy[0] == '.') {
        if (strcmp(copy, ".help") == 0 || strcmp(copy, ".h") == 0) {
            fputs(shell_help, stdout);
            out_flush_error(sh);
        } else if (strcmp(copy, ".quit") == 0 || strcmp(copy, ".exit") == 0 ||
                   strcmp(copy, ".q") == 0) {
            ret = SHELL_QUIT;
        } else if (strcmp(copy, ".view") == 0) {
            dot_view(sh);
        } else if (strcmp(copy, ".caps") == 0) {
            int rc = dot_caps(sh);
            if (rc != 0)
                ret = SHELL_OVER(rc);
        } else {
            shell_error("shell: unknown shell command '%s': type .help for the list", copy);
        }
        cli_strfree(copy);
        return ret;
    }
    char verb[64];
    const char *rest;
    imk_command_kind kind = find_verb(copy, &rest, verb, sizeof(verb));
    switch (kind) {
    case IMK_CMD_COUNT_:
        shell_error("shell: unknown command '%s': the shell sends the IMAP commands imapkit "
                    "knows (SELECT, FETCH, UID STORE, ...); type .help",
                    verb);
        break;
    case IMK_CMD_LOGIN:
    case IMK_CMD_AUTHENTICATE:
    case IMK_CMD_STARTTLS:
    case IMK_CMD_COMPRESS:
        shell_error("shell: %s is done by imapkit when it connects (see --auth, --tls and the "
                    "account file): the shell does not send it",
                    imk_command_kind_verb(kind));
        break;
    case IMK_CMD_LOGOUT:
        ret = SHELL_QUIT;
        break;
    case IMK_CMD_IDLE: {
        while (is_space(*rest))
            rest++;
        if (*rest != '\0') {
            shell_error("shell: IDLE takes no arguments");
            break;
        }
        int rc = run_idle(sh);
        if (rc != 0)
            ret = SHELL_OVER(rc);
        break;
    }
    default: {
        int rc = run_imap(sh, kind, verb, rest);
        if (rc != 0)
            ret = SHELL_OVER(rc);
        break;
    }
    }
    cli_strfree(copy);
    return ret;
}

/* ------------------------------------------------------------------ */
/* libedit                                                             */
/* ------------------------------------------------------------------ */

static char *prompt_fn(EditLine *el)
{
    shell *sh = NULL;
    el_get(el, EL_CLIENTDATA, &sh);
    return sh != NULL ? sh->prompt : (char *)"imapkit> ";
}

static void update_prompt(shell *sh)
{
    const char *mb =
        sh->ctx->conn != NULL ? imk_session_mailbox(imk_conn_session(sh->ctx->conn)) : NULL;
    if (mb != NULL) {
        cli_buf b = {0};
        cli_mime_display(mb, strlen(mb), &b);
        size_t cut = b.len > 0 ? cli_mime_fit(b.data, b.len, 40, NULL) : 0;
        snprintf(sh->prompt, sizeof(sh->prompt), "imapkit %.*s> ", (int)cut,
                 b.data != NULL ? b.data : "");
        cli_buf_free(&b);
    } else {
        snprintf(sh->prompt, sizeof(sh->prompt), "imapkit> ");
    }
}

/* $XDG_STATE_HOME/imapkit/history (or ~/.local/state/...), directories
 * made private. 0 or -1 (no usable place: history off). */
static int history_file(char *buf, size_t cap)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[900];
    if (state != NULL && state[0] == '/')
        snprintf(dir, sizeof(dir), "%s", state);
    else if (home != NULL && home[0] != '\0')
        snprintf(dir, sizeof(dir), "%s/.local/state", home);
    else
        return -1;
    /* mkdir -p of dir/imapkit */
    char path[1000];
    snprintf(path, sizeof(path), "%s/imapkit", dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    int n = snprintf(buf, cap, "%s/history", path);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void history_save(shell *sh)
{
    if (!sh->history || sh->hist == NULL)
        return;
    HistEvent he;
    if (history(sh->hist, &he, H_SAVE, sh->history_path) < 0)
        return;
    chmod(sh->history_path, 0600); /* commands may name private things */
}

static int editline_start(shell *sh)
{
    sh->el = el_init("imapkit", stdin, stdout, stderr);
    sh->hist = history_init();
    if (sh->el == NULL || sh->hist == NULL)
        return -1;
    HistEvent he;
    history(sh->hist, &he, H_SETSIZE, HISTORY_SIZE);
    history(sh->hist, &he, H_SETUNIQUE, 1);
    el_set(sh->el, EL_CLIENTDATA, sh);
    el_set(sh->el, EL_PROMPT, prompt_fn);
    el_set(sh->el, EL_EDITOR, "emacs");
    el_set(sh->el, EL_SIGNAL, 1);
    el_set(sh->el, EL_HIST, history, sh->hist);
    el_source(sh->el, NULL); /* ~/.editrc */
    if (sh->history)
        history(sh->hist, &he, H_LOAD, sh->history_path); /* fails when there is no file yet */
    return 0;
}

static void editline_end(shell *sh)
{
    if (sh->el != NULL)
        el_end(sh->el);
    if (sh->hist != NULL)
        history_end(sh->hist);
    sh->el = NULL;
    sh->hist = NULL;
}

/* The next line: 1 (in *line, NUL-terminated), 0 end of input, -1 error. */
static int next_line(shell *sh, cli_buf *line)
{
    if (sh->has_pending) {
        sh->has_pending = 0;
        cli_buf_clear(line);
        int rc = cli_buf_append(line, sh->pending.data, sh->pending.len);
        cli_buf_clear(&sh->pending);
        if (rc < 0)
            return -1;
        line->len = strlen(line->data);
        return 1;
    }
    if (!sh->tty)
        return reader_line(&sh->in, line);
    if (sh->in.eof)
        return 0; /* Ctrl-D while idling */
    update_prompt(sh);
    int count = 0;
    const char *text = el_gets(sh->el, &count);
    if (text == NULL || count <= 0)
        return 0;
    cli_buf_clear(line);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (cli_buf_append(line, text, n) < 0 || cli_buf_append(line, "", 1) < 0)
        return -1;
    line->len = n;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

int cli_cmd_shell(cli_ctx *ctx, int argc, char **argv)
{
    shell sh;
    memset(&sh, 0, sizeof(sh));
    sh.ctx = ctx;
    sh.history = 1;
    sh.running = IMK_CMD_COUNT_;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(shell_usage, stdout);
            fputs("\n", stdout);
            fputs(cli_global_help, stdout);
            return fflush(stdout) == 0 ? 0 : CLI_EXIT_IO;
        }
        if (strcmp(argv[i], "--no-history") == 0) {
            sh.history = 0;
            continue;
        }
        if (argv[i][0] == '-')
            return cli_usage_error(SEE_HELP, "shell: unknown option '%s'", argv[i]);
        return cli_usage_error(SEE_HELP,
                               "shell: unexpected argument '%s' (type commands at the "
                               "prompt, or pipe them into standard input)",
                               argv[i]);
    }
    sh.in.fd = STDIN_FILENO;
    sh.tty = isatty(STDIN_FILENO);
    if (!sh.tty)
        sh.history = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    int status = cli_open(ctx);
    if (status != 0)
        return status;
    imk_conn_on_event(ctx->conn, on_event, &sh);

    if (sh.tty) {
        if (sh.history && history_file(sh.history_path, sizeof(sh.history_path)) < 0) {
            cli_error("shell: no place for the history file ($XDG_STATE_HOME or $HOME): history "
                      "is not kept");
            sh.history = 0;
        }
        if (editline_start(&sh) < 0) {
            cli_error("shell: cannot set up line editing on this terminal: reading plain lines");
            editline_end(&sh);
            sh.tty = 0;
        }
    }
    if (sh.tty && !ctx->json)
        fprintf(stderr,
                "Connected (%s). Type IMAP commands without tags; .help for help, "
                "Ctrl-D to log out.\n",
                imk_conn_transport(ctx->conn));

    cli_buf line = {0};
    for (;;) {
        int got = next_line(&sh, &line);
        if (got < 0) {
            shell_error("shell: cannot read standard input: %s", strerror(errno));
            status = CLI_EXIT_IO;
            break;
        }
        if (got == 0) {
            if (sh.tty)
                fputc('\n', stdout); /* after the prompt */
            break;
        }
        if (sh.tty && sh.hist != NULL && line.len > 0 && !is_space(line.data[0])) {
            HistEvent he;
            history(sh.hist, &he, H_ENTER, line.data);
            history_save(&sh);
        }
        int r = run_line(&sh, line.data);
        if (r == SHELL_QUIT)
            break;
        if (r & 0x100) {
            status = r & 0xff;
            break;
        }
        if (sh.out_failed) {
            status = CLI_EXIT_IO;
            break;
        }
    }
    cli_buf_free(&line);
    cli_buf_free(&sh.pending);
    cli_buf_free(&sh.in.buf);
    for (size_t i = 0; i < sh.n_bodies; i++)
        cli_buf_free(&sh.bodies[i].data);
    cli_array_resize((void **)&sh.bodies, 0, sizeof(*sh.bodies));
    editline_end(&sh);
    if (status == 0 && ctx->conn != NULL &&
        imk_session_state(imk_conn_session(ctx->conn)) != IMK_STATE_LOGOUT) {
        /* LOGOUT here so that its BYE is shown */
        int rc = imk_conn_logout(ctx->conn);
        if (rc < 0 && !sh.out_failed)
            shell_error("shell: LOGOUT: %s", imk_conn_error(ctx->conn));
    }
    cli_close(ctx);
    return status;
}
