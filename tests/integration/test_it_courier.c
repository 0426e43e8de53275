/* SPDX-License-Identifier: MIT */
/*
 * test_it_courier.c - the IMAP round trips of lib_roundtrip.c against a
 * real Courier-IMAP 5.0 (Debian 12's imapd, unpacked by `make
 * deps-courier`), preauthenticated over a tunnel (servers.sh
 * courier-tunnel), and what only Courier does.
 *
 * Courier is the other kind of server; the shared steps see it from its
 * capability list and check the fallbacks instead: no LITERAL+ (every
 * literal waits for "+ OK"), no ESEARCH (plain SEARCH), no MOVE (COPY +
 * STORE + UID EXPUNGE), no UNSELECT (CLOSE), no MULTIAPPEND (one APPEND
 * each), no LIST-EXTENDED (the extended LIST forms are refused before
 * anything is sent), no BINARY (binary APPEND refused before anything is
 * sent), no ID, CONDSTORE, QRESYNC, METADATA or NOTIFY (skipped, with a
 * line saying so). Its names are INBOX.-prefixed with "." as delimiter; it
 * offers ENABLE UTF8=ACCEPT (names and search strings in UTF-8, no
 * CHARSET, RFC 6855); its IDLE notices other sessions' changes by polling
 * (IMAP_IDLE_TIMEOUT=5 s here); its quota is Maildir++ (root "ROOT").
 *
 * Courier's own step: without the maildirsize file GETQUOTAROOT answers
 * `* QUOTA "ROOT"`, a QUOTA response without its list, which must not
 * hurt.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_roundtrip.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tunnel_cmd;

static imk_conn_options courier_options(const char *label)
{
    return it_options_tunnel(tunnel_cmd, label);
}

/* Without a maildirsize file Courier answers `* QUOTA "ROOT"`: no list. */
static void t_quota_without_limits(void)
{
    char dir[1024], path[1100];
    char *cmd = it_tunnel("courier-tunnel", "courier-noquota", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/Maildir/maildirsize", dir);
    CHECK_INT(unlink(path), 0);
    imk_conn_options o = it_options_tunnel(cmd, "courier:noquota");
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c != NULL) {
        it_events ev;
        memset(&ev, 0, sizeof(ev));
        it_events_attach(c, &ev);
        const imk_result *r = NULL;
        int rc = imk_conn_getquotaroot(c, "INBOX", &r);
        CHECK_INT(rc, 0);
        CHECK(it_ok(r));
        CHECK(r != NULL && r->quotaroot != NULL && r->quotaroot->roots.count == 1);
        it_note("QUOTA without a list: %s; %u protocol error event(s), %zu quota(s)",
                r != NULL ? it_describe(r) : imk_error_name(rc), ev.count[IMK_SE_PROTOCOL_ERROR],
                r != NULL ? r->quota_count : 0);
        CHECK(it_trace_received_contains("courier:noquota", "* QUOTA \"ROOT\"\r\n"));
        /* The session goes on. */
        CHECK_INT(imk_conn_noop(c, &r), 0);
        CHECK(it_ok(r));
        CHECK_INT(imk_conn_logout(c), 0);
        imk_conn_free(c);
    }
    free(cmd);
}

int main(void)
{
    it_init("test_it_courier", 110);
    tunnel_cmd = it_tunnel("courier-tunnel", "courier", NULL, 0);
    /* What servers.sh tells it to advertise (it implements those), plus
     * what imapd always adds; and what it lacks. */
    static const char *const have[] = {
        "IMAP4rev1", "UIDPLUS", "CHILDREN",    "NAMESPACE", "THREAD=REFERENCES", "SORT", "QUOTA",
        "IDLE",      "ENABLE",  "UTF8=ACCEPT", NULL};
    static const char *const lacks[] = {
        "LITERAL+",    "ESEARCH",     "BINARY",           "MOVE",   "UNSELECT", "MULTIAPPEND",
        "CONDSTORE",   "QRESYNC",     "METADATA",         "NOTIFY", "ID",       "LIST-EXTENDED",
        "LIST-STATUS", "SPECIAL-USE", "COMPRESS=DEFLATE", NULL};
    rt_server courier;
    memset(&courier, 0, sizeof(courier));
    courier.name = "courier";
    courier.options = courier_options;
    courier.caps = have;
    courier.lacks = lacks;
    courier.asks_capability = 1; /* the greeting is `* PREAUTH Ready.` */
    courier.prefix = "INBOX.";
    courier.delimiter = '.';
    courier.ns_other_users = RT_NS_NIL;
    courier.ns_shared = 2;
    courier.select_without_uidnext = 1;
    courier.sort_ties_reversed = 1;
    courier.move_to = "it";
    courier.literal_go_ahead = "+ OK";
    courier.idle_go_ahead = "+ entering idle mode";
    courier.idle_wait_ms = 30000; /* it looks for other sessions' changes every 5 s */
    courier.quota_root = "ROOT";
    courier.bye = "* BYE Courier-IMAP server shutting down";
    it_note("skipped: COMPRESS (no COMPRESS=DEFLATE, and a tunnel)");
    rt_run(&courier);
    IT_RUN(t_quota_without_limits);
    free(tunnel_cmd);
    rt_add_counts(&test_checks, &test_failures);
    return test_finish();
}
