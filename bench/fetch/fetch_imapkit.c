/* SPDX-License-Identifier: MIT */
/*
 * bench/fetch/fetch_imapkit.c - the imapkit client of the whole-job fetch
 * benchmark (run.sh measures it as a separate process, like every peer).
 *
 *     fetch_imapkit metadata|bodies HOST PORT USER PASSWORD [MAILBOX]
 *
 * One plain-TCP connection (LOGIN allowed in cleartext: the server is on
 * loopback), SELECT, then one command:
 *
 *   metadata  UID FETCH 1:* (UID FLAGS ENVELOPE RFC822.SIZE)
 *   bodies    UID FETCH 1:* (BODY.PEEK[])
 *
 * read through the blocking FETCH iterator (imk_conn_fetch / imk_fetch_iter_next),
 * which streams body bytes and keeps no record once it has been handed
 * over: memory stays bounded whatever the message sizes.
 *
 * The work done on what arrives, the same in the libetpan driver:
 *   metadata  every record must have UID, FLAGS, ENVELOPE and RFC822.SIZE;
 *             count the messages, add up UIDs, sizes, flags and the From,
 *             To and Cc addresses;
 *   bodies    add up the body bytes and a checksum that reads one byte per
 *             64 (one per cache line, at fixed offsets from the start of
 *             each message, so the result does not depend on how the
 *             bytes were split into chunks); the bytes are then dropped.
 *
 * Output: one line on stdout,
 *   messages=N uid_sum=U size_sum=S flags=F addresses=A body_bytes=B checksum=X
 * which run.sh compares between clients. Exit status 0, or 1 with the
 * reason on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include "imapkit/client.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"

static void fail(imk_conn *c, const char *step, int rc)
{
    fprintf(stderr, "fetch_imapkit: %s: %s (%s)\n", step, c ? imk_conn_error(c) : "",
            imk_error_name(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "metadata") != 0 && strcmp(argv[1], "bodies") != 0)) {
        fprintf(stderr, "usage: fetch_imapkit metadata|bodies HOST PORT USER PASSWORD [MAILBOX]\n");
        return 2;
    }
    int bodies = strcmp(argv[1], "bodies") == 0;
    const char *mailbox = argc > 6 ? argv[6] : "INBOX";

    imk_conn_options o = IMK_CONN_OPTIONS_INIT;
    o.host = argv[2];
    o.port = argv[3];
    o.security = IMK_SECURITY_NONE;
    o.allow_cleartext_password = 1;
    imk_conn *c = NULL;
    int rc = imk_conn_new(&o, NULL, &c);
    if (rc < 0)
        fail(c, "imk_conn_new", rc);
    if ((rc = imk_conn_connect(c)) < 0)
        fail(c, "connect", rc);
    imk_auth a = IMK_AUTH_INIT;
    a.user = argv[4];
    a.password = argv[5];
    if ((rc = imk_conn_login(c, &a)) < 0)
        fail(c, "login", rc);
    const imk_result *res = NULL;
    if ((rc = imk_conn_select(c, mailbox, NULL, &res)) < 0)
        fail(c, "select", rc);
    if (res->status != IMK_STATUS_OK) {
        fprintf(stderr, "fetch_imapkit: SELECT %s refused: %.*s\n", mailbox, (int)res->text.len,
                res->text.data ? res->text.data : "");
        return 1;
    }

    imk_fetch_iter *it = NULL;
    rc = imk_conn_fetch(c, 1, "1:*", bodies ? "(BODY.PEEK[])" : "(UID FLAGS ENVELOPE RFC822.SIZE)",
                        &it);
    if (rc < 0)
        fail(c, "fetch", rc);

    bench_tally t;
    memset(&t, 0, sizeof t);
    uint64_t offset = 0, sample = 0;
    unsigned need = IMK_FETCH_UID | IMK_FETCH_FLAGS | IMK_FETCH_ENVELOPE | IMK_FETCH_RFC822_SIZE;
    imk_fetch_item item;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        switch (item.type) {
        case IMK_FI_BODY_BEGIN:
            offset = 0;
            sample = 0;
            break;
        case IMK_FI_BODY_DATA:
            sample = bench_sample((const unsigned char *)item.data, item.len, offset, sample);
            offset += item.len;
            break;
        case IMK_FI_BODY_END:
            bench_body_done(&t, offset, sample);
            break;
        case IMK_FI_MESSAGE: {
            const imk_fetch *m = item.msg;
            t.messages++;
            t.uid_sum += m->uid;
            if (bodies)
                break;
            if ((m->present & need) != need || m->envelope == NULL) {
                fprintf(stderr, "fetch_imapkit: message %" PRIu32 " lacks an item (present %#x)\n",
                        m->seq, m->present);
                return 1;
            }
            t.size_sum += m->rfc822_size;
            t.flags += m->flags.count;
            t.addresses += m->envelope->from.count + m->envelope->to.count + m->envelope->cc.count;
            break;
        }
        }
    }
    if (rc < 0) {
        imk_fetch_iter_end(it, NULL);
        fail(c, "fetch_next", rc);
    }
    if ((rc = imk_fetch_iter_end(it, &res)) < 0)
        fail(c, "fetch_end", rc);
    if (res->status != IMK_STATUS_OK) {
        fprintf(stderr, "fetch_imapkit: UID FETCH refused: %.*s\n", (int)res->text.len,
                res->text.data ? res->text.data : "");
        return 1;
    }
    imk_conn_logout(c);
    imk_conn_free(c);
    bench_tally_print(&t);
    return 0;
}
