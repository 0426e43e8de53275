/* SPDX-License-Identifier: MIT */
/*
 * demo: what `make demo` runs. Two connections to one real server (given
 * as a tunnel command, e.g. Dovecot's preauthenticated imap binary over a
 * private Maildir), showing what a correct client does:
 *
 *   1. A creates a mailbox, appends messages (one with a NUL byte, sent as
 *      literal8 where the server offers BINARY), selects it and reads the
 *      envelopes and one body as a stream through the FETCH iterator;
 *   2. A sits in IDLE while B, a second connection, flags one message,
 *      expunges another and appends a third: A learns each change from the
 *      server's unsolicited responses, which its event callback prints;
 *   3. A's mailbox view (sequence numbers, UIDs, flags) is printed next to
 *      the server's truth read by a fresh UID FETCH: they agree.
 *
 * Usage: example_demo 'TUNNEL COMMAND'
 * Uses only the public API (include/imapkit/client.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "imapkit/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tunnel_cmd;

static void die(imk_conn *c, const char *what, int rc)
{
    fprintf(stderr, "demo: %s failed: %s (%s)\n", what, c != NULL ? imk_conn_error(c) : "",
            imk_error_name(rc));
    exit(1);
}

static imk_conn *open_conn(const char *name)
{
    imk_conn_options o = IMK_CONN_OPTIONS_INIT;
    o.tunnel = tunnel_cmd;
    imk_conn *c = NULL;
    int rc = imk_conn_new(&o, NULL, &c);
    if (rc < 0)
        die(c, "imk_conn_new", rc);
    rc = imk_conn_connect(c);
    if (rc < 0)
        die(c, "connect", rc);
    printf("[%s] connected over %s\n", name, imk_conn_transport(c));
    return c;
}

/* A's event callback: every unsolicited change, as it arrives. */
static void on_event(imk_conn *c, const imk_session_event *ev, void *user)
{
    (void)c;
    const char *name = user;
    switch (ev->type) {
    case IMK_SE_EXISTS:
        printf("[%s]   event: EXISTS %u -> %llu\n", name, ev->old_count,
               (unsigned long long)ev->count);
        break;
    case IMK_SE_EXPUNGE:
        printf("[%s]   event: EXPUNGE seq %u (uid %u) left the mailbox\n", name, ev->seq, ev->uid);
        break;
    case IMK_SE_VANISHED:
        printf("[%s]   event: VANISHED %u message(s)\n", name, ev->removed);
        break;
    case IMK_SE_FLAGS: {
        printf("[%s]   event: FLAGS of seq %u (uid %u) now (", name, ev->seq, ev->uid);
        for (size_t i = 0; i < ev->flags.count; i++)
            printf("%s%.*s", i ? " " : "", (int)ev->flags.items[i].len, ev->flags.items[i].data);
        printf(")\n");
        break;
    }
    case IMK_SE_NOTICE:
        if (ev->alert) /* RFC 9051 7.1: an ALERT must be shown to the user */
            printf("[%s]   ALERT: %.*s\n", name, (int)ev->text.len, ev->text.data);
        break;
    default:
        break;
    }
}

static void append_text(imk_conn *c, const char *who, const char *mailbox, const char *subject,
                        const char *body)
{
    char msg[1024];
    int n = snprintf(msg, sizeof(msg),
                     "From: Demo <demo@example.org>\r\nTo: you@example.org\r\nSubject: %s\r\n"
                     "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n%s\r\n",
                     subject, body);
    imk_append_msg m = IMK_APPEND_MSG_INIT;
    m.data = msg;
    m.size = (uint64_t)n;
    const imk_result *r = NULL;
    int rc = imk_conn_append(c, mailbox, &m, 1, &r);
    if (rc < 0)
        die(c, "APPEND", rc);
    printf("[%s] APPEND \"%s\": %s", who, subject, imk_status_name(r->status));
    if (r->has_appenduid)
        printf(" (APPENDUID %llu)", (unsigned long long)r->uidvalidity);
    printf("\n");
}

static void print_view(imk_conn *c)
{
    const imk_view *v = imk_conn_view(c);
    uint32_t n = imk_view_exists(v);
    printf("[A] view: %u message(s):", n);
    for (uint32_t seq = 1; seq <= n; seq++)
        printf(" %u=uid%u", seq, imk_view_uid_of_seq(v, seq));
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s 'TUNNEL COMMAND'\n", argv[0]);
        return 2;
    }
    tunnel_cmd = argv[1];
    const char *box = "Demo";

    imk_conn *a = open_conn("A");
    imk_conn_on_event(a, on_event, "A");
    const imk_result *r = NULL;
    int rc = imk_conn_create(a, box, &r);
    if (rc < 0)
        die(a, "CREATE", rc);
    printf("[A] CREATE %s: %s %.*s\n", box, imk_status_name(r->status), (int)r->text.len,
           r->text.data);
    append_text(a, "A", box, "Welcome", "The first message.");
    append_text(a, "A", box, "Second", "Another one.");
    append_text(a, "A", box, "Third", "And a third.");

    rc = imk_conn_select(a, box, NULL, &r);
    if (rc < 0 || r->status != IMK_STATUS_OK)
        die(a, "SELECT", rc);

    /* envelopes and one body, streamed */
    imk_fetch_iter *it = NULL;
    rc = imk_conn_fetch(a, 1, "1:*", "(UID FLAGS ENVELOPE BODY.PEEK[TEXT])", &it);
    if (rc < 0)
        die(a, "UID FETCH", rc);
    imk_fetch_item item;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        if (item.type == IMK_FI_BODY_DATA)
            printf("[A]   body bytes: %.*s", (int)item.len, item.data);
        else if (item.type == IMK_FI_MESSAGE && item.msg->envelope != NULL)
            printf("[A]   uid %u subject \"%.*s\"\n", item.msg->uid,
                   (int)item.msg->envelope->subject.len, item.msg->envelope->subject.data);
    }
    rc = imk_fetch_iter_end(it, &r);
    if (rc < 0)
        die(a, "UID FETCH", rc);
    print_view(a); /* the UIDs came with the FETCH */

    /* B changes the mailbox while A idles */
    imk_conn *b = open_conn("B");
    rc = imk_conn_select(b, box, NULL, &r);
    if (rc < 0)
        die(b, "SELECT (B)", rc);
    const char *seen[] = {"\\Flagged"};
    rc = imk_conn_store(b, 1, "1", "+FLAGS.SILENT", seen, 1, 0, &r);
    if (rc < 0)
        die(b, "STORE (B)", rc);
    const char *del[] = {"\\Deleted"};
    rc = imk_conn_store(b, 1, "2", "+FLAGS.SILENT", del, 1, 0, &r);
    if (rc >= 0)
        rc = imk_conn_expunge(b, "2", &r);
    if (rc < 0)
        die(b, "EXPUNGE (B)", rc);
    append_text(b, "B", box, "Fourth (from B)", "Arrived while A was idle.");
    printf("[B] flagged uid 1, expunged uid 2, appended one\n");

    printf("[A] IDLE (up to 2 s)...\n");
    rc = imk_conn_idle(a, 2000, 0);
    if (rc < 0)
        die(a, "IDLE", rc);
    /* New messages arrive as a count (EXISTS): their UIDs are asked for. */
    const imk_view *va = imk_conn_view(a);
    uint32_t first_unknown = 0;
    for (uint32_t seq = imk_view_exists(va); seq >= 1 && imk_view_uid_of_seq(va, seq) == 0; seq--)
        first_unknown = seq;
    if (first_unknown != 0) {
        char set[32];
        snprintf(set, sizeof(set), "%u:*", first_unknown);
        printf("[A] FETCH %s (UID FLAGS) for the new messages\n", set);
        rc = imk_conn_fetch(a, 0, set, "(UID FLAGS)", &it);
        if (rc < 0)
            die(a, "FETCH", rc);
        while (imk_fetch_iter_next(it, &item) == 1)
            ; /* the view records each UID as it arrives */
        rc = imk_fetch_iter_end(it, &r); /* the error that ended it, if any */
        if (rc < 0)
            die(a, "FETCH", rc);
    }
    print_view(a);

    /* the server's truth, from a fresh connection */
    imk_conn *t = open_conn("C");
    rc = imk_conn_select(t, box, NULL, &r);
    if (rc < 0)
        die(t, "SELECT (C)", rc);
    imk_message *msgs = NULL;
    size_t count = 0;
    rc = imk_conn_fetch_messages(t, 1, "1:*", 0, &msgs, &count);
    if (rc < 0)
        die(t, "UID FETCH (C)", rc);
    const imk_view *v = imk_conn_view(a);
    int agree = imk_view_exists(v) == count;
    printf("[C] server: %zu message(s):", count);
    for (size_t i = 0; i < count; i++) {
        printf(" %zu=uid%u", i + 1, msgs[i].uid);
        if (agree && imk_view_uid_of_seq(v, (uint32_t)i + 1) != msgs[i].uid)
            agree = 0;
    }
    printf("\n%s\n", agree ? "A's view agrees with the server." : "A's view DISAGREES!");
    imk_messages_free(t, msgs, count);

    imk_conn_logout(t);
    imk_conn_logout(b);
    imk_conn_logout(a);
    imk_conn_free(t);
    imk_conn_free(b);
    imk_conn_free(a);
    return agree ? 0 : 1;
}
