/* SPDX-License-Identifier: MIT */
/*
 * test_it_dovecot.c - the IMAP round trips of lib_roundtrip.c against a
 * real Dovecot 2.3, twice: over the preauthenticated tunnel
 * (/usr/lib/dovecot/imap on a pipe) and over implicit TLS to a private
 * daemon with a password login. Each run starts from an empty mailbox
 * store of its own.
 *
 * Dovecot is the server with everything on: servers.sh configures
 * METADATA, QUOTA ("User quota", 1 GiB), SPECIAL-USE (Sent, Drafts, Trash,
 * auto-subscribed) and the zlib plugin, so every step runs in full: ID,
 * LIST-EXTENDED, LITERAL+, binary APPEND, ESEARCH, CONDSTORE, MOVE,
 * LIST-STATUS, UNSELECT, NOTIFY, QRESYNC and MULTIAPPEND. Its personal
 * namespace has no prefix and "/" as delimiter. What Dovecot 2.3 does not
 * offer (UTF8=ACCEPT) is skipped, with a line saying so.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_roundtrip.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static it_dovecot d;
static char *tunnel_cmd;

static imk_conn_options tunnel_options(const char *label)
{
    return it_options_tunnel(tunnel_cmd, label);
}

static imk_conn_options daemon_options(const char *label)
{
    return it_options_tls(&d, label);
}

/* What the configuration turns on. */
static const char *const caps[] = {"IMAP4rev1", "ESEARCH",     "BINARY",      "MOVE",  "QRESYNC",
                                   "NOTIFY",    "METADATA",    "SPECIAL-USE", "QUOTA", "UIDPLUS",
                                   "LITERAL+",  "MULTIAPPEND", "LIST-STATUS", NULL};
static const char *const lacks[] = {"NO-SUCH-CAPABILITY", NULL};

static rt_server dovecot(const char *name, int tls)
{
    rt_server s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.options = tls ? daemon_options : tunnel_options;
    if (tls) {
        s.user = IT_USER;
        s.password = IT_PASSWORD;
    }
    s.tls = tls;
    s.caps = caps;
    s.lacks = lacks;
    s.prefix = "";
    s.delimiter = '/';
    s.ns_other_users = RT_NS_NONE;
    s.ns_shared = RT_NS_NONE;
    s.special_use_boxes = 1;
    s.response_codes = 1;
    s.move_to = "Trash";
    s.idle_wait_ms = 20000;
    s.id_name = "Dovecot";
    s.quota_root = "User quota";
    s.bye = "* BYE";
    return s;
}

int main(void)
{
    it_init("test_it_dovecot", 110);
    tunnel_cmd = it_tunnel("dovecot-tunnel", "dovecot-tunnel", NULL, 0);
    it_dovecot_start(&d, 0);
    rt_server tunnel = dovecot("tunnel", 0), daemon = dovecot("daemon", 1);
    it_note("---- over the preauth tunnel");
    rt_run(&tunnel);
    it_note("---- over the daemon (implicit TLS, login)");
    rt_run(&daemon);
    it_dovecot_stop(&d);
    free(tunnel_cmd);
    rt_add_counts(&test_checks, &test_failures);
    return test_finish();
}
