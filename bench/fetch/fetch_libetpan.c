/* SPDX-License-Identifier: MIT */
/*
 * bench/fetch/fetch_libetpan.c - the libetpan client of the whole-job fetch
 * benchmark: the same two jobs as fetch_imapkit.c, through Debian's
 * libetpan (libetpan-dev), the way its documentation shows.
 *
 *     fetch_libetpan metadata|bodies HOST PORT USER PASSWORD [MAILBOX]
 *
 * mailimap_socket_connect, mailimap_login (the LOGIN command),
 * mailimap_select, then one mailimap_uid_fetch over 1:* with
 *
 *   metadata  UID FLAGS ENVELOPE RFC822.SIZE
 *   bodies    BODY.PEEK[]
 *
 * libetpan returns the whole reply as one list, so the whole mailbox's
 * data is in memory at once (that is the library's design, not this
 * driver's choice); the list is then walked and the same work is done as
 * in fetch_imapkit.c (checksum.h), and the same line printed.
 *
 * Build: gcc -O2 fetch_libetpan.c $(pkg-config --cflags --libs libetpan)
 * (run.sh drops the -specs= flag Debian's libetpan.pc leaks).
 */
#define _POSIX_C_SOURCE 200809L

#include <libetpan/libetpan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"

static void fail(const char *step, int rc)
{
    fprintf(stderr, "fetch_libetpan: %s failed: libetpan error %d\n", step, rc);
    exit(1);
}

static int ok(int rc)
{
    return rc == MAILIMAP_NO_ERROR || rc == MAILIMAP_NO_ERROR_AUTHENTICATED ||
           rc == MAILIMAP_NO_ERROR_NON_AUTHENTICATED;
}

static uint64_t count(clist *l)
{
    return l ? (uint64_t)clist_count(l) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "metadata") != 0 && strcmp(argv[1], "bodies") != 0)) {
        fprintf(stderr,
                "usage: fetch_libetpan metadata|bodies HOST PORT USER PASSWORD [MAILBOX]\n");
        return 2;
    }
    int bodies = strcmp(argv[1], "bodies") == 0;
    const char *mailbox = argc > 6 ? argv[6] : "INBOX";
    long port = strtol(argv[3], NULL, 10);

    mailimap *imap = mailimap_new(0, NULL);
    if (!imap)
        fail("mailimap_new", -1);
    int rc = mailimap_socket_connect(imap, argv[2], (uint16_t)port);
    if (!ok(rc))
        fail("connect", rc);
    if (!ok(rc = mailimap_login(imap, argv[4], argv[5])))
        fail("login", rc);
    if (!ok(rc = mailimap_select(imap, mailbox)))
        fail("select", rc);

    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    if (bodies) {
        mailimap_fetch_type_new_fetch_att_list_add(
            ft, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
    } else {
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_envelope());
        mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
    }
    struct mailimap_set *set = mailimap_set_new_interval(1, 0); /* 1:* */
    clist *result = NULL;
    rc = mailimap_uid_fetch(imap, set, ft, &result);
    mailimap_fetch_type_free(ft);
    mailimap_set_free(set);
    if (!ok(rc))
        fail("uid fetch", rc);

    bench_tally t;
    memset(&t, 0, sizeof t);
    for (clistiter *mi = clist_begin(result); mi; mi = clist_next(mi)) {
        struct mailimap_msg_att *msg = clist_content(mi);
        int have_uid = 0, have_flags = 0, have_env = 0, have_size = 0;
        t.messages++;
        for (clistiter *ai = clist_begin(msg->att_list); ai; ai = clist_next(ai)) {
            struct mailimap_msg_att_item *item = clist_content(ai);
            if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
                have_flags = 1;
                if (item->att_data.att_dyn)
                    t.flags += count(item->att_data.att_dyn->att_list);
                continue;
            }
            if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
                continue;
            struct mailimap_msg_att_static *st = item->att_data.att_static;
            switch (st->att_type) {
            case MAILIMAP_MSG_ATT_UID:
                have_uid = 1;
                t.uid_sum += st->att_data.att_uid;
                break;
            case MAILIMAP_MSG_ATT_RFC822_SIZE:
                have_size = 1;
                t.size_sum += st->att_data.att_rfc822_size;
                break;
            case MAILIMAP_MSG_ATT_ENVELOPE: {
                struct mailimap_envelope *e = st->att_data.att_env;
                have_env = e != NULL;
                if (e) {
                    t.addresses += (e->env_from ? count(e->env_from->frm_list) : 0) +
                                   (e->env_to ? count(e->env_to->to_list) : 0) +
                                   (e->env_cc ? count(e->env_cc->cc_list) : 0);
                }
                break;
            }
            case MAILIMAP_MSG_ATT_BODY_SECTION: {
                struct mailimap_msg_att_body_section *b = st->att_data.att_body_section;
                if (b && b->sec_body_part) {
                    uint64_t acc =
                        bench_sample((const unsigned char *)b->sec_body_part, b->sec_length, 0, 0);
                    bench_body_done(&t, b->sec_length, acc);
                }
                break;
            }
            default:
                break;
            }
        }
        if (!bodies && !(have_uid && have_flags && have_env && have_size)) {
            fprintf(stderr, "fetch_libetpan: message %u lacks an item\n", msg->att_number);
            return 1;
        }
    }
    mailimap_fetch_list_free(result);
    mailimap_logout(imap);
    mailimap_free(imap);
    bench_tally_print(&t);
    return 0;
}
