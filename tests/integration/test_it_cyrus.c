/* SPDX-License-Identifier: MIT */
/*
 * test_it_cyrus.c - the IMAP round trips of lib_roundtrip.c against a real
 * Cyrus IMAP 3.6 (Debian 12's imapd, unpacked by `make deps-cyrus`), one
 * imapd per connection on a tunnel (servers.sh cyrus-tunnel): its own
 * imapd.conf, mailbox database and spool in a scratch directory; and what
 * only Cyrus does.
 *
 * Cyrus is the third kind of server: mailboxes in its own store (not a
 * Maildir), "/" as delimiter with the other folders beside INBOX
 * (altnamespace), IMAP4rev1 with nearly every extension (ESEARCH, BINARY,
 * MOVE, CONDSTORE, QRESYNC, METADATA, LIST-EXTENDED, LIST-STATUS,
 * SPECIAL-USE, MULTIAPPEND, LITERAL+, UNSELECT, COMPRESS=DEFLATE; no
 * NOTIFY, skipped with a line saying so).
 *
 * Cyrus has no PREAUTH mode: the tunnel starts in the not-authenticated
 * state and imapd -N accepts any password in the LOGIN command (SASL is
 * not configured, so AUTHENTICATE would fail: the logins name the LOGIN
 * command, rt_server.mechanisms). The first LOGIN creates the INBOX with
 * Sent, Drafts and Trash (autocreate_inbox_folders, special-use set).
 * Without Cyrus' idled, IDLE looks for other sessions' changes every
 * second (imapidlepoll).
 *
 * Cyrus' ways, pinned in the rt_server: SELECT always reports
 * HIGHESTMODSEQ; a binary APPEND is stored base64-encoded (BINARY[1] gives
 * the bytes back, the stored header says base64); GETQUOTA answers NO to a
 * non-administrator (GETQUOTAROOT works); refusals carry no RFC 5530 code;
 * the autocreated special-use folders are not subscribed.
 *
 * Cyrus' own steps, after the shared run: the capabilities that grow at the
 * login (the greeting lists a few, the LOGIN's OK the rest, and the client
 * does not ask again), and COMPRESS=DEFLATE over the tunnel.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_roundtrip.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static char *tunnel_cmd;

static imk_conn_options cyrus_options(const char *label)
{
    return it_options_tunnel(tunnel_cmd, label);
}

/* The LOGIN command: the only way in (imapd -N, no SASL database). */
static int login(imk_conn *c)
{
    imk_auth a = IMK_AUTH_INIT;
    a.user = IT_USER;
    a.password = IT_PASSWORD;
    a.mechanisms = "LOGIN-COMMAND";
    int rc = imk_conn_login(c, &a);
    if (rc < 0)
        it_note("login: %s: %s", imk_error_name(rc), imk_conn_error(c));
    return rc;
}

/* The greeting is an OK with a short capability list; the LOGIN's OK
 * carries the rest, which the client takes without asking. */
static void t_capabilities_at_login(void)
{
    static const char *const label = "cyrus:L";
    imk_conn_options o = it_options_tunnel(tunnel_cmd, label);
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_NOT_AUTHENTICATED);
    CHECK(it_trace_received_contains(label, "* OK [CAPABILITY IMAP4rev1"));
    CHECK(imk_conn_has_capability(c, "AUTH=PLAIN"));
    CHECK(!imk_conn_has_capability(c, "LOGINDISABLED"));
    CHECK(!imk_conn_has_capability(c, "MOVE"));
    CHECK_INT(login(c), 0);
    CHECK_INT(imk_session_state(imk_conn_session(c)), IMK_STATE_AUTHENTICATED);
    CHECK(imk_conn_has_capability(c, "MOVE"));
    /* The LOGIN is the first command (tag A1): its OK carried them. */
    CHECK(it_trace_received_contains(label, "A1 OK [CAPABILITY IMAP4rev1"));
    CHECK(!it_trace_sent_contains(label, 0, "CAPABILITY"));
    CHECK_INT(imk_conn_logout(c), 0);
    imk_conn_free(c);
}

/* COMPRESS=DEFLATE (RFC 4978) over the tunnel: offered after the login.
 * The 1 MiB message the shared run left in it/big comes back whole. */
static void t_compress(void)
{
    imk_conn_options o = it_options_tunnel(tunnel_cmd, "cyrus:Z");
    o.compress = 1;
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_INT(login(c), 0);
    CHECK(imk_conn_has_capability(c, "COMPRESS=DEFLATE"));
    const char *t = imk_conn_transport(c);
    it_note("compressed transport: %s", t);
    CHECK(strstr(t, "COMPRESS=DEFLATE") != NULL);
    CHECK(it_trace_sent_contains("cyrus:Z", 0, "COMPRESS DEFLATE"));
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(c, "it/big", NULL, &r), 0);
    CHECK(it_ok(r));
    char *mid = it_big_message(RT_MID_LEN, RT_MID_SEED);
    CHECK(mid != NULL);
    if (mid != NULL)
        CHECK(it_fetch_equals(c, 2, "BODY.PEEK[]", mid, RT_MID_LEN));
    free(mid);
    CHECK_INT(imk_conn_logout(c), 0);
    imk_conn_free(c);
}

/* After the login (the greeting lists only a few, t_capabilities_at_login;
 * COMPRESS=DEFLATE is t_compress'). */
static const char *const caps[] = {"IMAP4rev1", "ESEARCH",       "BINARY",      "MOVE",
                                   "CONDSTORE", "QRESYNC",       "METADATA",    "QUOTA",
                                   "UIDPLUS",   "LITERAL+",      "MULTIAPPEND", "LIST-STATUS",
                                   "UNSELECT",  "LIST-EXTENDED", "SPECIAL-USE", "IDLE",
                                   "SORT",      "NAMESPACE",     "ID",          "THREAD=REFERENCES",
                                   "ENABLE",    "CHILDREN",      NULL};
static const char *const lacks[] = {"NOTIFY", "NO-SUCH-CAPABILITY", NULL};

int main(void)
{
    it_init("test_it_cyrus", 110);
    tunnel_cmd = it_tunnel("cyrus-tunnel", "cyrus", NULL, 0);
    rt_server cyrus;
    memset(&cyrus, 0, sizeof(cyrus));
    cyrus.name = "cyrus";
    cyrus.options = cyrus_options;
    cyrus.user = IT_USER;
    cyrus.password = IT_PASSWORD; /* any password does (imapd -N) */
    cyrus.mechanisms = "LOGIN-COMMAND";
    cyrus.caps = caps;
    cyrus.lacks = lacks;
    cyrus.prefix = "";
    cyrus.delimiter = '/';
    cyrus.ns_other_users = 1;
    cyrus.ns_shared = 1;
    cyrus.ns_other_users_prefix = "Other Users/";
    cyrus.ns_shared_prefix = "Shared Folders/";
    cyrus.special_use_boxes = 1;
    cyrus.special_use_unsubscribed = 1;
    /* No RFC 5530 codes: "NO Mailbox already exists", "NO Mailbox does not
     * exist" (the codes are optional). */
    cyrus.response_codes = 0;
    cyrus.select_reports_modseq = 1;
    cyrus.binary_stored_base64 = 1;
    cyrus.move_to = "Trash";
    cyrus.idle_go_ahead = "+ idling";
    cyrus.idle_wait_ms = 20000; /* it looks for other sessions' changes every 1 s */
    cyrus.id_name = "Cyrus IMAPD";
    cyrus.quota_root = "INBOX";            /* of every mailbox of the user */
    cyrus.quota_min_usage_kib = 11 * 1024; /* stored with CRLF, as appended */
    cyrus.getquota_refused = 1;
    cyrus.bye = "* BYE LOGOUT received";
    rt_run(&cyrus);
    IT_RUN(t_capabilities_at_login);
    IT_RUN(t_compress);
    free(tunnel_cmd);
    rt_add_counts(&test_checks, &test_failures);
    return test_finish();
}
