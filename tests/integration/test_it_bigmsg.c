/* SPDX-License-Identifier: MIT */
/*
 * test_it_bigmsg.c - a 1 GiB message fetched through the FETCH iterator
 * keeps the client's memory bounded (DESIGN.md section 6: "Memory does not
 * grow with message size; a slow consumer slows the socket, not the heap").
 *
 * The message (a header and 1 GiB less its size of generated text lines,
 * CRLF, so the server's bytes equal the file's) is written in 1 MiB chunks
 * as a Maildir file of a Dovecot preauth tunnel's INBOX, with its CRC-32
 * computed on the way; the file is real data, not sparse, since Dovecot
 * reads it. The test then fetches BODY.PEEK[] through imk_conn_fetch /
 * imk_fetch_iter_next, computes the CRC-32 of what arrives, and compares
 * size and checksum. Memory: the peak RSS (VmHWM) is reset through
 * /proc/self/clear_refs just before the FETCH (where the kernel allows it;
 * otherwise the peak so far is the baseline) and read after it; the growth
 * over the resident size before must stay under 16 MiB.
 *
 * Needs 3 GiB free on the scratch file system (the file, plus room to
 * spare for the server's index files and everyone else); with less the
 * test is skipped (exit 77) even in CI, saying why: that is a resource of
 * the machine, not a server that failed to start.
 *
 * The figures are printed to stdout.
 */
#define _POSIX_C_SOURCE 200809L

#include "lib_it.h"
#include "lib_stress.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#define MSG_SIZE ((uint64_t)1 << 30)
#define LINE 80 /* bytes per body line, CRLF included */
#define CHUNK ((size_t)1 << 20)
#define MAX_GROWTH_KIB (16L * 1024)
#define FREE_NEEDED ((uint64_t)3 << 30)

static char *tunnel_cmd;
static char maildir[1100];
static char msg_path[1400];
static uint32_t file_crc;

/* Body line `n`: 8 hex digits of n, a space, 69 letters that shift with n,
 * CRLF. */
static void body_line(uint64_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--) {
        out[7 - i] = hex[(n >> (4 * i)) & 15];
    }
    out[8] = ' ';
    for (int i = 0; i < LINE - 11; i++)
        out[9 + i] = (char)('a' + (n + (uint64_t)i * 7) % 26);
    out[LINE - 2] = '\r';
    out[LINE - 1] = '\n';
}

/* Write the message; returns 0 and sets file_crc, or -1. */
static int write_message(void)
{
    uid_t uid;
    gid_t gid;
    char parent[1100];
    snprintf(parent, sizeof parent, "%s", maildir);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        *slash = '\0';
    if (stress_owner_of(parent, &uid, &gid) != 0 || stress_maildir_create(maildir, uid, gid) != 0)
        return -1;
    if (stress_maildir_path(maildir, 1, "S", (size_t)MSG_SIZE, msg_path, sizeof msg_path) != 0)
        return -1;

    /* The header, padded so that the body is a whole number of lines. */
    static const char head[] = "From: Big Sender <big@example.org>\r\n"
                               "To: Alice <alice@example.org>\r\n"
                               "Subject: one gibibyte\r\n"
                               "Message-ID: <one-gibibyte@example.org>\r\n"
                               "X-Pad: ";
    char header[256];
    size_t base = sizeof head - 1 + 4; /* + pad + "\r\n\r\n" */
    size_t pad = (size_t)((MSG_SIZE - base) % LINE);
    if (pad == 0)
        pad = LINE;
    memcpy(header, head, sizeof head - 1);
    memset(header + sizeof head - 1, 'p', pad);
    memcpy(header + sizeof head - 1 + pad, "\r\n\r\n", 4);
    size_t hlen = base + pad;
    if ((MSG_SIZE - hlen) % LINE != 0)
        return -1;

    int fd = open(msg_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    char *chunk = malloc(CHUNK);
    if (chunk == NULL) {
        close(fd);
        return -1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t written = 0, line = 0;
    int rc = 0;
    while (written < MSG_SIZE && rc == 0) {
        size_t n = 0;
        if (written == 0) {
            memcpy(chunk, header, hlen);
            n = hlen;
        }
        while (n + LINE <= CHUNK && written + n < MSG_SIZE) {
            body_line(line++, chunk + n);
            n += LINE;
        }
        crc = crc32(crc, (const Bytef *)chunk, (uInt)n);
        for (size_t off = 0; off < n;) {
            ssize_t w = write(fd, chunk + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += (size_t)w;
        }
        written += n;
    }
    free(chunk);
    if (close(fd) != 0 || written != MSG_SIZE)
        rc = -1;
    if (rc == 0 && geteuid() == 0 && chown(msg_path, uid, gid) != 0)
        rc = -1;
    file_crc = (uint32_t)crc;
    return rc;
}

static void test_fetch_one_gibibyte(void)
{
    imk_conn_options o = it_options_tunnel(tunnel_cmd, "big");
    /* 1 GiB through the trace's rings (and, with IMK_IT_TRACE=1, onto the
     * terminal) would measure the test, not the library. */
    o.trace = NULL;
    o.trace_user = NULL;
    imk_conn *c = it_connect(&o);
    CHECK(c != NULL);
    if (c == NULL)
        return;
    const imk_result *r = NULL;
    CHECK_INT(imk_conn_select(c, "INBOX", NULL, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    CHECK_INT(imk_view_exists(imk_conn_view(c)), 1);

    int reset = stress_reset_peak_rss();
    long rss0 = stress_status_kib("VmRSS");
    long hwm0 = stress_status_kib("VmHWM");
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = stress_now_ms();

    imk_fetch_iter *it = NULL;
    int rc = imk_conn_fetch(c, 1, "1", "(UID BODY.PEEK[])", &it);
    CHECK_INT(rc, 0);
    if (rc < 0) {
        fprintf(stderr, "UID FETCH: %s\n", imk_conn_error(c));
        imk_conn_free(c);
        return;
    }
    imk_fetch_item item;
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t bytes = 0, announced = 0, chunks = 0;
    size_t biggest = 0;
    unsigned begins = 0, ends = 0, records = 0;
    while ((rc = imk_fetch_iter_next(it, &item)) == 1) {
        switch (item.type) {
        case IMK_FI_BODY_BEGIN:
            begins++;
            announced = item.body->size;
            break;
        case IMK_FI_BODY_DATA:
            crc = crc32(crc, (const Bytef *)item.data, (uInt)item.len);
            bytes += item.len;
            chunks++;
            if (item.len > biggest)
                biggest = item.len;
            break;
        case IMK_FI_BODY_END:
            ends++;
            break;
        case IMK_FI_MESSAGE:
            records++;
            CHECK_INT(item.msg->uid, 1);
            break;
        }
    }
    CHECK_INT(rc, 0);
    if (rc < 0)
        fprintf(stderr, "imk_fetch_iter_next: %s: %s\n", imk_error_name(rc), imk_conn_error(c));
    r = NULL;
    CHECK_INT(imk_fetch_iter_end(it, &r), 0);
    CHECK(r != NULL && r->status == IMK_STATUS_OK);
    int64_t t1 = stress_now_ms();
    long hwm1 = stress_status_kib("VmHWM");
    long rss1 = stress_status_kib("VmRSS");
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);

    CHECK_INT(begins, 1);
    CHECK_INT(ends, 1);
    CHECK_INT(records, 1);
    CHECK_INT(announced, MSG_SIZE);
    CHECK_INT(bytes, MSG_SIZE);
    CHECK_INT((uint32_t)crc, file_crc);

    long base = reset == 0 ? rss0 : hwm0;
    long growth = hwm1 - base;
    double secs = (double)(t1 - t0) / 1000.0;
    printf("bigmsg: fetched %" PRIu64 " bytes in %.1f s (%.0f MiB/s), %" PRIu64
           " chunks (largest %zu bytes), crc32 %08" PRIx32 " %s the file's %08" PRIx32 "\n",
           bytes, secs, secs > 0 ? (double)bytes / 1048576.0 / secs : 0.0, chunks, biggest,
           (uint32_t)crc, (uint32_t)crc == file_crc ? "equals" : "DIFFERS FROM", file_crc);
    printf("bigmsg: peak RSS grew by %ld KiB (limit %ld KiB): VmRSS before %ld KiB, VmHWM after "
           "%ld KiB (peak %s), VmRSS after %ld KiB; ru_maxrss %ld -> %ld KiB\n",
           growth, MAX_GROWTH_KIB, rss0, hwm1,
           reset == 0 ? "reset before the FETCH" : "not resettable: baseline = peak so far", rss1,
           ru0.ru_maxrss, ru1.ru_maxrss);
    CHECK(rss0 > 0 && hwm1 > 0);
    CHECK(growth < MAX_GROWTH_KIB);

    CHECK_INT(imk_conn_logout(c), 0);
    imk_conn_free(c);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    it_init("test_it_bigmsg", 600);
    char dir[1024];
    tunnel_cmd = it_tunnel("dovecot-tunnel", "big", dir, sizeof dir);
    uint64_t avail = 0;
    if (stress_free_bytes(dir, &avail) != 0 || avail < FREE_NEEDED) {
        /* A resource of this machine, not a server that would not start:
         * a skip even under IMK_IT_REQUIRED=1. */
        printf("bigmsg: SKIPPED: %" PRIu64 " MiB free on the file system of %s, the test needs "
               "%" PRIu64 " MiB (a 1 GiB message file and room to spare)\n",
               avail >> 20, dir, FREE_NEEDED >> 20);
        free(tunnel_cmd);
        exit(77);
    }
    snprintf(maildir, sizeof maildir, "%s/Maildir", dir);
    int64_t t0 = stress_now_ms();
    if (write_message() != 0) {
        fprintf(stderr, "bigmsg: cannot write %s: %s\n", msg_path, strerror(errno));
        unlink(msg_path);
        free(tunnel_cmd);
        return 1;
    }
    printf("bigmsg: wrote %" PRIu64 " bytes (crc32 %08" PRIx32 ") in %lld ms: %s\n", MSG_SIZE,
           file_crc, (long long)(stress_now_ms() - t0), msg_path);

    IT_RUN(test_fetch_one_gibibyte);

    if (unlink(msg_path) != 0)
        fprintf(stderr, "bigmsg: cannot delete %s: %s\n", msg_path, strerror(errno));
    free(tunnel_cmd);
    return test_finish();
}
