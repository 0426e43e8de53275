/* SPDX-License-Identifier: MIT */
/*
 * `imapkit watch [MAILBOX...]`: keep a connection open and print one line
 * (one JSON object with --json, docs/schema/watch.schema.json) per event as
 * it happens.
 *
 * How the server is listened to:
 *
 *   one mailbox      EXAMINE it, learn every message's UID (UID FETCH 1:*
 *                    (UID), so that an expunge can name its UID), then IDLE
 *                    in a loop (imk_conn_idle; the library renews the IDLE
 *                    before RFC 2177's 29 minutes). An EXISTS ends the IDLE:
 *                    UID FETCH last+1:* (UID FLAGS ENVELOPE) names the new
 *                    messages, then IDLE again. Expunges (EXPUNGE or
 *                    VANISHED) and flag changes (unsolicited FETCH) are
 *                    printed by the event callback as they arrive.
 *   several, NOTIFY  the first mailbox as above; NOTIFY SET STATUS
 *                    (SELECTED-DELAYED (...)) (MAILBOXES (others) (...))
 *                    (RFC 5465) makes the server send an unsolicited STATUS
 *                    whenever another mailbox changes (section 5.2, 5.3):
 *                    printed as a "status" event with the mailbox's name.
 *                    SELECTED-DELAYED (section 6.1.2) keeps sequence
 *                    numbers stable while our own commands run.
 *   several, no      (or --no-notify) the first mailbox as above, the
 *   NOTIFY           others polled with STATUS every --interval seconds
 *                    (IDLE is left and resumed for it): a "status" event
 *                    when their counts change.
 *
 * Invariants: `last_uid` is the highest UID already known or reported in the
 * selected mailbox, so a message is reported as new exactly once, also
 * across reconnections (same UIDVALIDITY: what arrived while the
 * connection was down is reported after "reconnected"). While the tool's
 * own FETCH runs, the view's FLAGS events are answers to it, not changes,
 * and are not printed. Nothing is reported before the "ready" event.
 *
 * A drop (the server closed the connection, a fatal transport or protocol
 * error) is reported as "disconnected"; the tool then closes, reconnects
 * (cli_close + cli_open, immediately, then after 1, 2, 4... seconds),
 * re-examines and prints "reconnected". After --retries failed attempts in
 * a row it gives up with exit status 3.
 *
 * Ends: --timeout SECONDS (exit 0), --count N events (exit 0; "ready",
 * "disconnected", "reconnected" and a BYE notice are not counted: they are
 * about the connection, not the mailboxes), or a signal.
 * Standard output is line-buffered: each event is written when it happens.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, localtime_r */

#include "cli.h"
#include "core.h"
#include "ctx.h"
#include "json.h"
#include "mime.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SEE_HELP "imapkit watch --help"

static const char watch_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] watch [OPTIONS] [MAILBOX...]\n"
    "\n"
    "Keep the connection open and print one line per event as it happens\n"
    "(one JSON object per line with --json): new messages (uid, from,\n"
    "subject), expunges, flag changes, the server's notices, alerts and\n"
    "progress. MAILBOX defaults to INBOX. The first mailbox is watched with\n"
    "IDLE; further mailboxes through NOTIFY when the server offers it (their\n"
    "changes are printed as \"status\" events with new counts), else by polling\n"
    "them with STATUS.\n"
    "\n"
    "Options:\n"
    "  --timeout SECONDS   stop after SECONDS (exit status 0)\n"
    "  --count N           stop after N events\n"
    "  --interval SECONDS  how often other mailboxes are polled without\n"
    "                      NOTIFY (default 30)\n"
    "  --no-notify         poll other mailboxes even if NOTIFY is offered\n"
    "  --retries N         reconnection attempts after a drop before giving\n"
    "                      up with exit status 3 (default 3; 0: do not\n"
    "                      reconnect)\n"
    "  -h, --help          show this help and exit\n"
    "\n"
    "Human output: TIME  MAILBOX  EVENT  DETAILS. JSON output: the schema is\n"
    "docs/schema/watch.schema.json. Exit status: 0 (time or count reached),\n"
    "1 the server refused to open the mailbox, 2 usage error, 3 cannot\n"
    "connect (or reconnect), 4 protocol or internal error.\n";

#define DEFAULT_INTERVAL_MS 30000
#define DEFAULT_RETRIES 3
#define STATUS_ITEMS "MESSAGES UIDNEXT UIDVALIDITY UNSEEN"

typedef enum watch_mode { MODE_IDLE, MODE_NOTIFY, MODE_POLL } watch_mode;

/* What is known of a watched mailbox's counts (the others than the first). */
typedef struct watch_box {
    const char *name; /* from argv */
    int known;        /* a STATUS was seen */
    uint64_t messages, uidnext, uidvalidity, unseen, highestmodseq;
    unsigned present; /* IMK_STATUS_* bits ever seen */
} watch_box;

typedef struct watch {
    cli_ctx *ctx;
    watch_box *boxes;
    size_t n_boxes;
    size_t width; /* the mailbox column (human form) */
    watch_mode mode;
    int no_notify;
    int64_t interval_ms;
    int64_t deadline;    /* monotonic ms; 0: none */
    uint64_t max_events; /* 0: no limit */
    uint64_t events;
    int retries;

    int setup;       /* connecting and opening: nothing is reported */
    int quiet_flags; /* our own FETCH runs: its FLAGS are no changes */
    int fetch_due;   /* an EXISTS arrived: find the new messages */
    int stop;        /* --count reached */
    int out_failed;  /* standard output cannot be written */
    int ready_sent;
    int closing; /* our own LOGOUT: its BYE is no news */
    uint32_t last_uid;
    uint64_t uidvalidity; /* of the selected mailbox, to tell a recreated one */
} watch;

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The local time: ISO 8601 with offset for JSON ("2026-01-31T12:00:00+01:00"),
 * HH:MM:SS for people. */
static void local_time(char *iso, size_t iso_cap, char *hms, size_t hms_cap)
{
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    char zone[8] = "+0000";
    strftime(zone, sizeof(zone), "%z", &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    /* %z is +hhmm; RFC 3339 wants +hh:mm */
    snprintf(iso, iso_cap, "%s%.3s:%.2s", base, zone, strlen(zone) >= 5 ? zone + 3 : "00");
    strftime(hms, hms_cap, "%H:%M:%S", &tm);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* An event being built: the JSON object and the human line's details. */
typedef struct watch_event {
    json_t *obj;
    cli_buf human;
} watch_event;

static void event_discard(watch_event *e)
{
    json_decref(e->obj);
    cli_buf_free(&e->human);
    e->obj = NULL;
}

/* The start of an event: its JSON head and the human line's head. */
static int event_head(watch *w, watch_event *e, const char *type, const char *mailbox)
{
    memset(e, 0, sizeof(*e));
    e->obj = json_object();
    if (e->obj == NULL)
        return -1;
    char iso[48], hms[16];
    local_time(iso, sizeof(iso), hms, sizeof(hms));
    json_object_set_new(e->obj, "event", json_string(type));
    json_object_set_new(e->obj, "time", json_string(iso));
    if (mailbox != NULL)
        json_object_set_new(e->obj, "mailbox", cli_json_bytes(mailbox, strlen(mailbox)));
    /* the human line's head: TIME  MAILBOX  EVENT  */
    char head[64];
    snprintf(head, sizeof(head), "%s  ", hms);
    if (cli_buf_append(&e->human, head, strlen(head)) < 0)
        return -1;
    const char *mb = mailbox != NULL ? mailbox : "-";
    cli_buf shown = {0};
    int rc = cli_mime_display(mb, strlen(mb), &shown);
    if (rc == 0 && shown.len > 0)
        rc = cli_buf_append(&e->human, shown.data, shown.len);
    size_t cols = shown.len > 0 ? cli_mime_width(shown.data, shown.len) : 0;
    cli_buf_free(&shown);
    for (; rc == 0 && cols < w->width; cols++)
        rc = cli_buf_append(&e->human, " ", 1);
    snprintf(head, sizeof(head), "  %-12s ", type);
    if (rc == 0)
        rc = cli_buf_append(&e->human, head, strlen(head));
    return rc;
}

/* Start an event; `mailbox` NULL for events about the connection. Out of
 * memory, it returns -1 with the event already discarded. */
static int event_begin(watch *w, watch_event *e, const char *type, const char *mailbox)
{
    int rc = event_head(w, e, type, mailbox);
    if (rc < 0)
        event_discard(e);
    return rc;
}

static int human_add(watch_event *e, const char *text)
{
    return cli_buf_append(&e->human, text, strlen(text));
}

/* Append header-ish text for a person: decoded, made safe for a terminal. */
static int human_add_display(watch_event *e, const char *data, size_t len)
{
    return cli_mime_display(data, len, &e->human);
}

static void human_addf(watch_event *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void human_addf(watch_event *e, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    human_add(e, buf);
}

/* Print the event. `counted`: it counts towards --count (everything but
 * the connection's own events). */
static void event_end(watch *w, watch_event *e, int counted)
{
    if (e->obj == NULL || w->stop || w->out_failed) {
        event_discard(e);
        return;
    }
    if (w->ctx->json) {
        if (cli_out_json(w->ctx, e->obj) != 0)
            w->out_failed = 1;
    } else {
        /* drop the trailing padding of an event without details */
        while (e->human.len > 0 && e->human.data[e->human.len - 1] == ' ')
            e->human.len--;
        if (fwrite(e->human.data, 1, e->human.len, stdout) != e->human.len ||
            fputc('\n', stdout) == EOF || fflush(stdout) != 0)
            w->out_failed = 1;
    }
    event_discard(e);
    if (w->out_failed) {
        cli_error("watch: cannot write to standard output");
        w->stop = 1;
    }
    if (counted) {
        w->events++;
        if (w->max_events > 0 && w->events >= w->max_events)
            w->stop = 1;
    }
    if (w->stop && w->ctx->conn != NULL)
        imk_conn_idle_stop(w->ctx->conn);
}

static const char *selected_name(const watch *w)
{
    return w->boxes[0].name;
}

/* "Name <user@host>" of each address, decoded; group markers skipped. */
static int addresses_text(imk_address_list l, cli_buf *out)
{
    int rc = 0;
    int first = 1;
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const imk_address *a = &l.items[i];
        if (a->host.data == NULL)
            continue; /* group start or end (RFC 9051 section 7.5.2) */
        if (!first)
            rc = cli_buf_append(out, ", ", 2);
        first = 0;
        int named = a->name.data != NULL && a->name.len > 0;
        if (named && rc == 0) {
            rc = cli_mime_decode(a->name.data, a->name.len, out);
            if (rc == 0)
                rc = cli_buf_append(out, " <", 2);
        }
        if (rc == 0 && a->mailbox.data != NULL)
            rc = cli_mime_decode(a->mailbox.data, a->mailbox.len, out);
        if (rc == 0)
            rc = cli_buf_append(out, "@", 1);
        if (rc == 0)
            rc = cli_mime_decode(a->host.data, a->host.len, out);
        if (named && rc == 0)
            rc = cli_buf_append(out, ">", 1);
    }
    return rc;
}

static json_t *flags_json(imk_strlist flags)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < flags.count; i++)
        json_array_append_new(a, cli_json_str(flags.items[i]));
    return a;
}

static void human_flags(watch_event *e, imk_strlist flags)
{
    if (flags.count == 0) {
        human_add(e, "(no flags)");
        return;
    }
    for (size_t i = 0; i < flags.count; i++) {
        if (i > 0)
            human_add(e, " ");
        human_add_display(e, flags.items[i].data, flags.items[i].len);
    }
}

/* ------------------------------------------------------------------ */
/* The events                                                          */
/* ------------------------------------------------------------------ */

static void emit_new(watch *w, const imk_fetch *f)
{
    watch_event e;
    if (event_begin(w, &e, "new", selected_name(w)) < 0)
        return;
    json_object_set_new(e.obj, "uid", json_integer(f->uid));
    json_object_set_new(e.obj, "seq", json_integer(f->seq));
    cli_buf from = {0}, subject = {0};
    int have_env = (f->present & IMK_FETCH_ENVELOPE) && f->envelope != NULL;
    int has_subject = have_env && f->envelope->subject.data != NULL;
    if (have_env)
        addresses_text(f->envelope->from, &from);
    if (has_subject)
        cli_mime_decode(f->envelope->subject.data, f->envelope->subject.len, &subject);
    json_object_set_new(e.obj, "from",
                        from.len > 0 ? cli_json_bytes(from.data, from.len) : json_null());
    json_object_set_new(e.obj, "subject",
                        has_subject
                            ? cli_json_bytes(subject.data != NULL ? subject.data : "", subject.len)
                            : json_null());
    if (f->present & IMK_FETCH_FLAGS)
        json_object_set_new(e.obj, "flags", flags_json(f->flags));

    human_addf(&e, "uid %" PRIu32 "  ", f->uid);
    if (from.len > 0)
        human_add_display(&e, from.data, from.len);
    else
        human_add(&e, "(no sender)");
    human_add(&e, "  ");
    if (subject.len > 0) {
        human_add(&e, "\"");
        human_add_display(&e, subject.data, subject.len);
        human_add(&e, "\"");
    } else {
        human_add(&e, "(no subject)");
    }
    if ((f->present & IMK_FETCH_FLAGS) && f->flags.count > 0) {
        human_add(&e, "  ");
        human_flags(&e, f->flags);
    }
    cli_buf_free(&from);
    cli_buf_free(&subject);
    event_end(w, &e, 1);
}

/* The "uid" (null when not known) and "seq" members of an event. */
static void put_uid_seq(watch_event *e, uint32_t uid, uint32_t seq)
{
    json_object_set_new(e->obj, "uid", uid != 0 ? json_integer(uid) : json_null());
    json_object_set_new(e->obj, "seq", json_integer(seq));
}

static void emit_expunge(watch *w, uint32_t seq, uint32_t uid)
{
    watch_event e;
    if (event_begin(w, &e, "expunge", selected_name(w)) < 0)
        return;
    put_uid_seq(&e, uid, seq);
    if (uid != 0)
        human_addf(&e, "uid %" PRIu32, uid);
    else
        human_addf(&e, "seq %" PRIu32 " (uid not known)", seq);
    event_end(w, &e, 1);
}

/* "3:5,9" from a set as sent. */
static void seqset_text(imk_seqset s, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s.count && used < cap; i++) {
        char one[32], a[12], b[12];
        snprintf(a, sizeof(a), "%" PRIu32, s.ranges[i].first);
        snprintf(b, sizeof(b), "%" PRIu32, s.ranges[i].last);
        if (s.ranges[i].first == 0)
            snprintf(a, sizeof(a), "*");
        if (s.ranges[i].last == 0)
            snprintf(b, sizeof(b), "*");
        if (s.ranges[i].first == s.ranges[i].last)
            snprintf(one, sizeof(one), "%s%s", i > 0 ? "," : "", a);
        else
            snprintf(one, sizeof(one), "%s%s:%s", i > 0 ? "," : "", a, b);
        int n = snprintf(buf + used, cap - used, "%s", one);
        if (n < 0 || (size_t)n >= cap - used) {
            /* too long for a line: end with an ellipsis */
            if (cap >= 4)
                snprintf(buf + cap - 4, 4, "...");
            return;
        }
        used += (size_t)n;
    }
}

static void emit_vanished(watch *w, imk_seqset uids, uint32_t removed)
{
    watch_event e;
    if (event_begin(w, &e, "expunge", selected_name(w)) < 0)
        return;
    char set[512];
    seqset_text(uids, set, sizeof(set));
    json_object_set_new(e.obj, "uids", json_string(set));
    json_object_set_new(e.obj, "count", json_integer(removed));
    human_addf(&e, "uids %s (%" PRIu32 " message%s)", set, removed, removed == 1 ? "" : "s");
    event_end(w, &e, 1);
}

static void emit_flags(watch *w, const imk_session_event *ev)
{
    watch_event e;
    if (event_begin(w, &e, "flags", selected_name(w)) < 0)
        return;
    put_uid_seq(&e, ev->uid, ev->seq);
    json_object_set_new(e.obj, "flags", flags_json(ev->flags));
    if (ev->modseq != 0)
        json_object_set_new(e.obj, "modseq", cli_json_u64(ev->modseq));
    if (ev->uid != 0)
        human_addf(&e, "uid %" PRIu32 "  ", ev->uid);
    else
        human_addf(&e, "seq %" PRIu32 "  ", ev->seq);
    human_flags(&e, ev->flags);
    event_end(w, &e, 1);
}

static void emit_uidvalidity(watch *w, uint64_t value, uint64_t old)
{
    watch_event e;
    if (event_begin(w, &e, "uidvalidity", selected_name(w)) < 0)
        return;
    json_object_set_new(e.obj, "uidvalidity", cli_json_u64(value));
    json_object_set_new(e.obj, "previous", cli_json_u64(old));
    human_addf(&e, "%" PRIu64 " (was %" PRIu64 "): the mailbox was recreated, UIDs start again",
               value, old);
    event_end(w, &e, 1);
}

/* A notice: untagged OK/NO/BAD (an "alert" for [ALERT], RFC 9051 7.1) or BYE. */
static void emit_notice(watch *w, const imk_session_event *ev, imk_status status)
{
    watch_event e;
    if (event_begin(w, &e, ev->alert ? "alert" : "notice", NULL) < 0)
        return;
    json_object_set_new(e.obj, "status", json_string(imk_status_name(status)));
    if (ev->code != NULL)
        json_object_set_new(e.obj, "code", cli_json_str(ev->code->name));
    json_object_set_new(e.obj, "text",
                        cli_json_bytes(ev->text.data != NULL ? ev->text.data : "", ev->text.len));
    if (!ev->alert) {
        human_add(&e, imk_status_name(status));
        human_add(&e, " ");
    }
    if (ev->code != NULL) {
        human_add(&e, "[");
        human_add_display(&e, ev->code->name.data, ev->code->name.len);
        human_add(&e, "] ");
    }
    if (ev->text.data != NULL)
        human_add_display(&e, ev->text.data, ev->text.len);
    /* a BYE is about the connection, like "disconnected": not counted */
    event_end(w, &e, status != IMK_STATUS_BYE);
}

static void emit_progress(watch *w, const imk_session_event *ev)
{
    watch_event e;
    if (event_begin(w, &e, "progress", NULL) < 0)
        return;
    json_object_set_new(e.obj, "text",
                        cli_json_bytes(ev->text.data != NULL ? ev->text.data : "", ev->text.len));
    if (ev->has_count)
        json_object_set_new(e.obj, "count", cli_json_u64(ev->count));
    if (ev->has_goal)
        json_object_set_new(e.obj, "goal", cli_json_u64(ev->goal));
    if (ev->text.data != NULL)
        human_add_display(&e, ev->text.data, ev->text.len);
    if (ev->has_count && ev->has_goal)
        human_addf(&e, " (%" PRIu64 "/%" PRIu64 ")", ev->count, ev->goal);
    else if (ev->has_count)
        human_addf(&e, " (%" PRIu64 ")", ev->count);
    event_end(w, &e, 1);
}

static void emit_status(watch *w, const watch_box *b)
{
    watch_event e;
    if (event_begin(w, &e, "status", b->name) < 0)
        return;
    static const struct {
        unsigned bit;
        const char *name;
        size_t offset;
    } items[] = {
        {IMK_STATUS_MESSAGES, "messages", offsetof(watch_box, messages)},
        {IMK_STATUS_UNSEEN, "unseen", offsetof(watch_box, unseen)},
        {IMK_STATUS_UIDNEXT, "uidnext", offsetof(watch_box, uidnext)},
        {IMK_STATUS_UIDVALIDITY, "uidvalidity", offsetof(watch_box, uidvalidity)},
        {IMK_STATUS_HIGHESTMODSEQ, "highestmodseq", offsetof(watch_box, highestmodseq)},
    };
    int first = 1;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        if (!(b->present & items[i].bit))
            continue;
        uint64_t v;
        memcpy(&v, (const char *)b + items[i].offset, sizeof(v));
        json_object_set_new(e.obj, items[i].name, cli_json_u64(v));
        human_addf(&e, "%s%s %" PRIu64, first ? "" : "  ", items[i].name, v);
        first = 0;
    }
    event_end(w, &e, 1);
}

static void emit_ready(watch *w)
{
    watch_event e;
    if (event_begin(w, &e, "ready", NULL) < 0)
        return;
    static const char *const modes[] = {"idle", "notify", "poll"};
    json_t *names = json_array();
    for (size_t i = 0; i < w->n_boxes; i++)
        json_array_append_new(names, cli_json_bytes(w->boxes[i].name, strlen(w->boxes[i].name)));
    json_object_set_new(e.obj, "mailboxes", names);
    json_object_set_new(e.obj, "mode", json_string(modes[w->mode]));
    const imk_view *v = imk_conn_view(w->ctx->conn);
    json_object_set_new(e.obj, "messages", json_integer(imk_view_exists(v)));
    human_add(&e, "watching ");
    for (size_t i = 0; i < w->n_boxes; i++) {
        if (i > 0)
            human_add(&e, ", ");
        human_add_display(&e, w->boxes[i].name, strlen(w->boxes[i].name));
    }
    human_addf(&e, " (%" PRIu32 " message%s in %s", imk_view_exists(v),
               imk_view_exists(v) == 1 ? "" : "s", selected_name(w));
    if (w->mode == MODE_NOTIFY)
        human_add(&e, "; IDLE + NOTIFY)");
    else if (w->mode == MODE_POLL)
        human_addf(&e, "; IDLE + STATUS every %" PRId64 " s)", w->interval_ms / 1000);
    else
        human_add(&e, "; IDLE)");
    event_end(w, &e, 0);
}

static void emit_connection(watch *w, const char *type, const char *text, int attempt)
{
    watch_event e;
    if (event_begin(w, &e, type, NULL) < 0)
        return;
    if (text != NULL) {
        json_object_set_new(e.obj, "text", cli_json_bytes(text, strlen(text)));
        human_add_display(&e, text, strlen(text));
    }
    if (attempt > 0) {
        json_object_set_new(e.obj, "attempt", json_integer(attempt));
        human_addf(&e, "after %d attempt%s", attempt, attempt == 1 ? "" : "s");
    }
    event_end(w, &e, 0);
}

/* ------------------------------------------------------------------ */
/* Other mailboxes' STATUS                                             */
/* ------------------------------------------------------------------ */

static int same_mailbox(const char *a, const char *b, size_t blen)
{
    if (strlen(a) != blen)
        return 0;
    if (blen == 5 && strncasecmp(a, "INBOX", 5) == 0 && strncasecmp(b, "INBOX", 5) == 0)
        return 1; /* INBOX is case-insensitive, RFC 9051 section 5.1 */
    return memcmp(a, b, blen) == 0;
}

/* Merge a STATUS into what is known; print a "status" event when counts
 * changed (not for the first one: that is the starting point). */
static void status_update(watch *w, const imk_status_data *sd)
{
    if (sd->mailbox.data == NULL)
        return;
    for (size_t i = 1; i < w->n_boxes; i++) {
        watch_box *b = &w->boxes[i];
        if (!same_mailbox(b->name, sd->mailbox.data, sd->mailbox.len))
            continue;
        int changed = 0;
#define MERGE(bit, field)                                                                          \
    if (sd->present & (bit)) {                                                                     \
        if (!(b->present & (bit)) || b->field != sd->field)                                        \
            changed = 1;                                                                           \
        b->field = sd->field;                                                                      \
        b->present |= (bit);                                                                       \
    }
        MERGE(IMK_STATUS_MESSAGES, messages)
        MERGE(IMK_STATUS_UIDNEXT, uidnext)
        MERGE(IMK_STATUS_UIDVALIDITY, uidvalidity)
        MERGE(IMK_STATUS_UNSEEN, unseen)
        MERGE(IMK_STATUS_HIGHESTMODSEQ, highestmodseq)
#undef MERGE
        if (b->known && changed)
            emit_status(w, b);
        b->known = 1;
        return;
    }
}

/* ------------------------------------------------------------------ */
/* The event callback                                                  */
/* ------------------------------------------------------------------ */

static void on_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    watch *w = user;
    switch (ev->type) {
    case IMK_SE_EXISTS:
        /* also while setting up: the UID FETCH that learnt the UIDs may
         * have missed it; fetch_new reports only UIDs above last_uid */
        if (ev->count > ev->old_count) {
            w->fetch_due = 1;
            imk_conn_idle_stop(c); /* fetch them, then IDLE again */
        }
        break;
    case IMK_SE_EXPUNGE:
        if (!w->setup)
            emit_expunge(w, ev->seq, ev->uid);
        break;
    case IMK_SE_VANISHED:
        if (!w->setup && !ev->earlier && ev->removed > 0)
            emit_vanished(w, ev->uids, ev->removed);
        break;
    case IMK_SE_FLAGS:
        if (!w->setup && !w->quiet_flags)
            emit_flags(w, ev);
        break;
    case IMK_SE_UIDVALIDITY:
        if (!w->setup)
            emit_uidvalidity(w, ev->uidvalidity, ev->old_uidvalidity);
        w->last_uid = 0;
        w->uidvalidity = ev->uidvalidity;
        break;
    case IMK_SE_NOTICE:
        /* SELECT's own notices ([UIDNEXT], [PERMANENTFLAGS], ...) are not
         * news; alerts always are (RFC 9051 7.1.1: must be shown). */
        if (!w->setup || ev->alert)
            emit_notice(w, ev, ev->status);
        break;
    case IMK_SE_BYE:
        if (!w->closing)
            emit_notice(w, ev, IMK_STATUS_BYE);
        break;
    case IMK_SE_PROGRESS:
        /* A progress event without figures repeats the text of the NOTICE
         * that came with it (Dovecot 2.3's "* OK Still here" in IDLE): one
         * event, not two, also for --count. */
        if (ev->has_count || ev->has_goal)
            emit_progress(w, ev);
        break;
    case IMK_SE_UNSOLICITED:
        /* NOTIFY's STATUS for another mailbox (RFC 5465 section 5.2) */
        if (ev->response != NULL && ev->response->kind == IMK_KIND_STATUS)
            status_update(w, &ev->response->u.status);
        break;
    case IMK_SE_PROTOCOL_ERROR:
        fflush(stdout);
        cli_error("watch: the server sent something that cannot be understood: %.*s",
                  (int)(ev->text.len > 200 ? 200 : ev->text.len),
                  ev->text.data != NULL ? ev->text.data : "(malformed response)");
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Talking to the server                                               */
/* ------------------------------------------------------------------ */

/* UID FETCH `set` `items`, calling fn for each record (FETCH's FLAGS
 * events are not changes meanwhile). 0, or the error (connection's
 * message set), or 1 when the server refused (message printed). */
static int fetch_records(watch *w, const char *set, const char *items,
                         void (*fn)(watch *, const imk_fetch *))
{
    imk_conn *c = w->ctx->conn;
    imk_fetch_iter *it;
    w->quiet_flags = 1;
    int rc = imk_conn_fetch(c, 1, set, items, &it);
    if (rc < 0) {
        w->quiet_flags = 0;
        return rc;
    }
    imk_fetch_item item;
    int n;
    while ((n = imk_fetch_iter_next(it, &item)) == 1)
        if (item.type == IMK_FI_MESSAGE && item.msg != NULL)
            fn(w, item.msg);
    const imk_result *res = NULL;
    rc = imk_fetch_iter_end(it, &res);
    w->quiet_flags = 0;
    if (rc < 0)
        return rc;
    if (n < 0)
        return n;
    if (res != NULL && res->status != IMK_STATUS_OK) {
        fflush(stdout);
        cli_error("watch: UID FETCH %s in %s: the server said %s %.*s", set, selected_name(w),
                  imk_status_name(res->status), (int)res->text.len,
                  res->text.data != NULL ? res->text.data : "");
        return 1;
    }
    return 0;
}

static void note_uid(watch *w, const imk_fetch *f)
{
    if ((f->present & IMK_FETCH_UID) && f->uid > w->last_uid)
        w->last_uid = f->uid;
}

static void report_new(watch *w, const imk_fetch *f)
{
    /* UID FETCH n:* also returns the last message when its UID is below n
     * (RFC 9051 section 6.4.8): only UIDs above last_uid are new. */
    if (!(f->present & IMK_FETCH_UID) || f->uid <= w->last_uid)
        return;
    emit_new(w, f);
    w->last_uid = f->uid;
}

static int fetch_new(watch *w)
{
    char set[32];
    snprintf(set, sizeof(set), "%" PRIu32 ":*", w->last_uid + 1);
    if (imk_view_exists(imk_conn_view(w->ctx->conn)) == 0)
        return 0;
    return fetch_records(w, set, "(UID FLAGS ENVELOPE)", report_new);
}

/* STATUS of every other mailbox (poll mode). */
static int poll_status(watch *w)
{
    for (size_t i = 1; i < w->n_boxes && !w->stop; i++) {
        const imk_result *res = NULL;
        int rc = imk_conn_status(w->ctx->conn, w->boxes[i].name, STATUS_ITEMS, &res);
        if (rc < 0)
            return rc;
        if (res != NULL && res->status == IMK_STATUS_OK) {
            for (size_t k = 0; k < res->status_count; k++)
                status_update(w, &res->statuses[k]);
        } else if (res != NULL && !w->ready_sent) {
            return cli_exit_result(w->ctx, "STATUS", res);
        }
    }
    return 0;
}

/* NOTIFY SET for the selected mailbox and the others (RFC 5465 section
 * 3.1); the STATUS indicator makes the server send where each other
 * mailbox starts from. 0, a library error, or 1 when refused. */
static int notify_set(watch *w)
{
    cli_buf spec = {0};
    const char *head = "SET STATUS (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange)) "
                       "(MAILBOXES (";
    int rc = cli_buf_append(&spec, head, strlen(head));
    const char **args = NULL;
    size_t n_args = 0;
    if (rc == 0)
        rc = cli_array_resize((void **)&args, w->n_boxes, sizeof(*args));
    for (size_t i = 1; i < w->n_boxes && rc == 0; i++) {
        if (same_mailbox(w->boxes[0].name, w->boxes[i].name, strlen(w->boxes[i].name)))
            continue; /* the selected one is covered by SELECTED-DELAYED */
        rc = cli_buf_append(&spec, n_args > 0 ? " %s" : "%s", n_args > 0 ? 3 : 2);
        args[n_args++] = w->boxes[i].name;
    }
    const char *tail = ") (MessageNew MessageExpunge FlagChange))";
    if (rc == 0)
        rc = cli_buf_append(&spec, tail, strlen(tail) + 1);
    if (rc < 0) {
        cli_buf_free(&spec);
        cli_array_resize((void **)&args, 0, sizeof(*args));
        return IMK_ENOMEM;
    }
    const imk_result *res = NULL;
    if (n_args == 0) {
        cli_buf_free(&spec);
        cli_array_resize((void **)&args, 0, sizeof(*args));
        return 1; /* nothing but the selected mailbox: IDLE does it */
    }
    rc = imk_conn_notify(w->ctx->conn, spec.data, args, n_args, &res);
    cli_buf_free(&spec);
    cli_array_resize((void **)&args, 0, sizeof(*args));
    if (rc < 0)
        return rc;
    if (res != NULL && res->status != IMK_STATUS_OK) {
        fflush(stdout);
        cli_error("watch: the server refused NOTIFY (%s %.*s): polling the other mailboxes "
                  "with STATUS instead",
                  imk_status_name(res->status), (int)res->text.len,
                  res->text.data != NULL ? res->text.data : "");
        return 1;
    }
    return 0;
}

/* Connect, open the mailbox, learn the UIDs, arrange for the others.
 * Returns 0, a library error (< 0, the connection's message set), or an
 * exit status (> 0, message printed). */
static int open_watch(watch *w, int reconnecting)
{
    cli_ctx *ctx = w->ctx;
    w->setup = 1;
    int rc = cli_open(ctx);
    if (rc != 0)
        return rc;
    imk_conn *c = ctx->conn;
    imk_conn_on_event(c, on_event, w);
    rc = cli_select(ctx, selected_name(w), 1);
    if (rc != 0)
        return rc;
    w->fetch_due = 0; /* SELECT's own EXISTS: the UID FETCH below covers it */
    const imk_view *v = imk_conn_view(c);
    uint64_t uidvalidity = imk_view_uidvalidity(v);
    uint32_t before = w->last_uid;
    int same = reconnecting && uidvalidity == w->uidvalidity && uidvalidity != 0;
    w->last_uid = 0;
    if (imk_view_exists(v) > 0) {
        rc = fetch_records(w, "1:*", "(UID)", note_uid);
        if (rc != 0)
            return rc < 0 ? rc : CLI_EXIT_NO;
    }
    if (same) {
        /* what arrived while the connection was down is reported next */
        if (w->last_uid > before)
            w->fetch_due = 1;
        w->last_uid = before;
    } else if (reconnecting && w->uidvalidity != 0) {
        w->setup = 0;
        emit_uidvalidity(w, uidvalidity, w->uidvalidity);
        w->setup = 1;
    }
    w->uidvalidity = uidvalidity;

    if (w->n_boxes > 1) {
        rc = 1;
        if (!w->no_notify && imk_conn_has_capability(c, "NOTIFY")) {
            rc = notify_set(w);
            if (rc < 0)
                return rc;
        }
        w->mode = rc == 0 ? MODE_NOTIFY : MODE_POLL;
        if (w->mode == MODE_POLL) {
            rc = poll_status(w);
            if (rc != 0)
                return rc;
        }
    } else {
        w->mode = MODE_IDLE;
    }
    w->setup = 0;
    return 0;
}

/* May the error be survived by connecting again? */
static int reconnectable(cli_ctx *ctx, int rc)
{
    if (rc == IMK_ECLOSED || rc == IMK_ETIMEDOUT || rc == IMK_ENET || rc == IMK_ETLS ||
        rc == IMK_EPROTO)
        return 1;
    /* a call refused because the connection already ended */
    if (rc == IMK_ESTATE && ctx->conn != NULL &&
        imk_session_state(imk_conn_session(ctx->conn)) == IMK_STATE_LOGOUT)
        return 1;
    return 0;
}

static int deadline_passed(const watch *w)
{
    return w->deadline > 0 && now_ms() >= w->deadline;
}

/* After a drop: close and connect again, up to w->retries times. Returns
 * 0 (connected again, or the deadline came first: w->stop set) or an exit
 * status. */
static int reconnect(watch *w, int why)
{
    cli_ctx *ctx = w->ctx;
    char reason[512];
    snprintf(reason, sizeof(reason), "%s",
             ctx->conn != NULL && imk_conn_error(ctx->conn)[0] != '\0' ? imk_conn_error(ctx->conn)
                                                                       : imk_error_message(why));
    emit_connection(w, "disconnected", reason, 0);
    for (int attempt = 1; attempt <= w->retries; attempt++) {
        int64_t delay = attempt == 1 ? 0 : (int64_t)1000 << (attempt - 2 > 5 ? 5 : attempt - 2);
        if (w->deadline > 0 && now_ms() + delay >= w->deadline) {
            w->stop = 1; /* --timeout: the watch ends as asked */
            return 0;
        }
        if (delay > 0)
            sleep_ms(delay);
        w->closing = 1;
        cli_close(ctx);
        w->closing = 0;
        int rc = open_watch(w, 1);
        if (rc == 0) {
            emit_connection(w, "reconnected", NULL, attempt);
            return 0;
        }
        if (rc == CLI_EXIT_NO || rc == CLI_EXIT_USAGE)
            return rc; /* the mailbox went away: trying again will not help */
        if (rc < 0 && !reconnectable(ctx, rc))
            return cli_exit_error(ctx, "watch", rc);
        if (rc < 0) {
            fflush(stdout);
            cli_error("watch: reconnecting: %s", imk_conn_error(ctx->conn));
        }
    }
    fflush(stdout);
    cli_error("watch: gave up after %d reconnection attempt%s (the connection was lost: %s); "
              "check that the server is up, or raise --retries",
              w->retries, w->retries == 1 ? "" : "s", reason);
    return CLI_EXIT_CONNECT;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* SECONDS (decimals allowed) into milliseconds; 0 or -1. */
static int parse_seconds(const char *text, int64_t *ms)
{
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(s > 0) || s > 31536000.0 || isnan(s))
        return -1;
    *ms = (int64_t)(s * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

static int parse_count(const char *text, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* --name VALUE or --name=VALUE; *value set and *i advanced. 1 matched,
 * 0 not this option, -1 missing value. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int cli_cmd_watch(cli_ctx *ctx, int argc, char **argv)
{
    watch w;
    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.interval_ms = DEFAULT_INTERVAL_MS;
    w.retries = DEFAULT_RETRIES;
    int64_t timeout_ms = 0;
    int only_args = 0;
    char **names = NULL;
    size_t n_names = 0;

    if (cli_array_resize((void **)&names, (size_t)argc + 1, sizeof(*names)) < 0) {
        cli_error("watch: out of memory");
        return CLI_EXIT_PROTOCOL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        int m;
        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            names[n_names++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_array_resize((void **)&names, 0, sizeof(*names));
            fputs(watch_usage, stdout);
            fputs("\n", stdout);
            fputs(cli_global_help, stdout);
            return fflush(stdout) == 0 ? 0 : CLI_EXIT_IO;
        }
        if (strcmp(a, "--no-notify") == 0) {
            w.no_notify = 1;
            continue;
        }
        int bad = 0;
        long long num;
        if ((m = option_value(argc, argv, &i, "--timeout", &val)) != 0) {
            bad = m < 0 || parse_seconds(val, &timeout_ms) < 0;
        } else if ((m = option_value(argc, argv, &i, "--interval", &val)) != 0) {
            bad = m < 0 || parse_seconds(val, &w.interval_ms) < 0;
        } else if ((m = option_value(argc, argv, &i, "--count", &val)) != 0) {
            bad = m < 0 || parse_count(val, INT64_MAX, &num) < 0 || num == 0;
            if (!bad)
                w.max_events = (uint64_t)num;
        } else if ((m = option_value(argc, argv, &i, "--retries", &val)) != 0) {
            bad = m < 0 || parse_count(val, 1000, &num) < 0;
            if (!bad)
                w.retries = (int)num;
        } else {
            cli_array_resize((void **)&names, 0, sizeof(*names));
            return cli_usage_error(SEE_HELP, "watch: unknown option '%s'", a);
        }
        if (bad) {
            cli_array_resize((void **)&names, 0, sizeof(*names));
            if (m < 0)
                return cli_usage_error(SEE_HELP, "watch: %s needs a value", a);
            return cli_usage_error(SEE_HELP, "watch: %s: '%s' is not %s", a, val,
                                   strncmp(a, "--count", 7) == 0 ? "a positive whole number"
                                   : strncmp(a, "--retries", 9) == 0
                                       ? "a whole number from 0 to 1000"
                                       : "a positive number of seconds");
        }
    }
    if (n_names == 0)
        names[n_names++] = "INBOX";

    if (cli_array_resize((void **)&w.boxes, n_names, sizeof(*w.boxes)) < 0) {
        cli_array_resize((void **)&names, 0, sizeof(*names));
        cli_error("watch: out of memory");
        return CLI_EXIT_PROTOCOL;
    }
    memset(w.boxes, 0, n_names * sizeof(*w.boxes));
    for (size_t i = 0; i < n_names; i++) {
        w.boxes[i].name = names[i];
        size_t cols = cli_mime_width(names[i], strlen(names[i]));
        if (cols > w.width)
            w.width = cols;
    }
    w.n_boxes = n_names;
    cli_array_resize((void **)&names, 0, sizeof(*names));

    /* every event line leaves at once, also into a pipe */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (timeout_ms > 0)
        w.deadline = now_ms() + timeout_ms;

    int status = open_watch(&w, 0);
    if (status < 0)
        status = cli_exit_error(ctx, "watch", status);
    if (status == 0) {
        emit_ready(&w);
        w.ready_sent = 1;
    }
    int64_t next_poll = now_ms() + w.interval_ms;
    while (status == 0 && !w.stop) {
        int rc = 0;
        if (w.fetch_due) {
            w.fetch_due = 0;
            rc = fetch_new(&w);
        } else if (w.mode == MODE_POLL && now_ms() >= next_poll) {
            rc = poll_status(&w);
            next_poll = now_ms() + w.interval_ms;
        } else {
            int64_t now = now_ms();
            int64_t wait = -1;
            if (w.deadline > 0)
                wait = w.deadline - now;
            if (w.mode == MODE_POLL && (wait < 0 || next_poll - now < wait))
                wait = next_poll - now;
            if (w.deadline > 0 && w.deadline - now <= 0)
                break;
            if (wait == 0)
                wait = 1;
            rc = imk_conn_idle(ctx->conn, wait > INT32_MAX ? INT32_MAX : (int)wait, 0);
        }
        if (rc > 0) {
            status = rc == 1 ? CLI_EXIT_NO : rc;
        } else if (rc < 0) {
            if (reconnectable(ctx, rc) && w.retries > 0)
                status = reconnect(&w, rc);
            else
                status = cli_exit_error(ctx, "watch", rc);
            next_poll = now_ms() + w.interval_ms;
        }
        if (w.out_failed)
            status = CLI_EXIT_IO;
        if (status == 0 && deadline_passed(&w))
            break;
    }
    w.closing = 1;
    cli_close(ctx);
    cli_array_resize((void **)&w.boxes, 0, sizeof(*w.boxes));
    return status;
}
