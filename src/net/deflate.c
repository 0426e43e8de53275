/* SPDX-License-Identifier: MIT */
/*
 * net/deflate.c - COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951, no
 * zlib header: windowBits -15, RFC 4978 section 4) in both directions,
 * above TLS and below IMAP (section 3: "first COMPRESS, then SASL, and
 * finally TLS").
 *
 * Receiving: compressed bytes from the layer below land in `zbuf` (16 KiB,
 * or the size of the `rest` the caller handed over: bytes that arrived
 * right after the tagged OK, already compressed). imk__net_z_read inflates
 * at most `cap` bytes per call; what it could not inflate yet stays in
 * zbuf, and more is read from below only once zbuf is used up. So memory
 * is zbuf + zlib's 32 KiB window whatever the stream expands to: a
 * decompression bomb costs CPU, never memory. `z_more` remembers that the
 * last call filled the caller's buffer: inflate may then hold output that
 * needs no more input, and is asked again before reading.
 *
 * Sending: imk__net_z_write deflates into the send queue without flushing
 * (good compression across small writes); imk__net_z_sync ends with
 * Z_SYNC_FLUSH, which pushes every byte given so far out as a complete
 * block, so the server can act on the whole command.
 *
 * zlib allocates through the stack's imk_allocator (zalloc/zfree).
 */
#define _POSIX_C_SOURCE 200809L

#include "net/net_int.h"

#include "util/alloc.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    size_t total;
    if (!imk__mul_ok(items, size, &total))
        return Z_NULL;
    return imk__malloc(opaque, total);
}

static void z_free(voidpf opaque, voidpf p)
{
    imk__free(opaque, p);
}

static int z_oom(imk__net *n)
{
    return imk__net_fail(n, IMK_ENOMEM, "out of memory for COMPRESS=DEFLATE");
}

int imk__net_compress_start(imk__net *n, const void *rest, size_t rest_len)
{
    if (n->failed)
        return n->failed;
    if (n->phase != IMK__NET_CONNECTED || n->zin != NULL || n->tls == IMK__NET_TLS_HANDSHAKE) {
        snprintf(n->err, sizeof(n->err),
                 "cannot start compression now (not connected, already compressed, or in the "
                 "TLS handshake)");
        return IMK_EINVAL;
    }
    const imk_allocator *a = &n->alloc;
    z_stream *zin = imk__malloc(a, sizeof(*zin));
    z_stream *zout = imk__malloc(a, sizeof(*zout));
    size_t cap = rest_len > IMK__NET_ZIN_CAP ? rest_len : IMK__NET_ZIN_CAP;
    unsigned char *buf = imk__malloc(a, cap);
    if (zin == NULL || zout == NULL || buf == NULL) {
        imk__free(a, zin);
        imk__free(a, zout);
        imk__free(a, buf);
        return z_oom(n);
    }
    memset(zin, 0, sizeof(*zin));
    memset(zout, 0, sizeof(*zout));
    zin->zalloc = zout->zalloc = z_alloc;
    zin->zfree = zout->zfree = z_free;
    zin->opaque = zout->opaque = (voidpf)a;
    int ok_in = inflateInit2(zin, -15) == Z_OK;
    int ok_out =
        deflateInit2(zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    if (!ok_in || !ok_out) {
        if (ok_in)
            inflateEnd(zin);
        if (ok_out)
            deflateEnd(zout);
        imk__free(a, zin);
        imk__free(a, zout);
        imk__free(a, buf);
        return z_oom(n);
    }
    if (rest_len > 0)
        memcpy(buf, rest, rest_len);
    /* The caller hands back bytes it had read as plain: they count again
     * as what they inflate to. */
    n->plain_in -= rest_len < n->plain_in ? rest_len : n->plain_in;
    n->zin = zin;
    n->zout = zout;
    n->zbuf = buf;
    n->zbuf_cap = cap;
    n->zbuf_pos = 0;
    n->zbuf_len = rest_len;
    n->z_more = 0;
    n->z_end = 0;
    n->deflate_pending = 0;
    return 0;
}

int imk__net_is_compressed(const imk__net *n)
{
    return n->zin != NULL;
}

static int inflate_error(imk__net *n, int zrc)
{
    char peer[300];
    if (zrc == Z_MEM_ERROR)
        return z_oom(n);
    return imk__net_fail(n, IMK_ENET, "inflate data from %s: invalid compressed data (%s)",
                         imk__net_peer(n, peer, sizeof(peer)),
                         n->zin->msg != NULL ? n->zin->msg : "zlib error");
}

long imk__net_z_read(imk__net *n, void *buf, size_t cap)
{
    z_stream *z = n->zin;
    if (cap > UINT_MAX)
        cap = UINT_MAX;
    for (;;) {
        if (n->zbuf_pos < n->zbuf_len || n->z_more) {
            if (n->z_end) {
                char peer[300];
                return imk__net_fail(n, IMK_ENET,
                                     "inflate data from %s: data after the end of the "
                                     "compressed stream",
                                     imk__net_peer(n, peer, sizeof(peer)));
            }
            z->next_in = n->zbuf + n->zbuf_pos;
            z->avail_in = (uInt)(n->zbuf_len - n->zbuf_pos);
            z->next_out = buf;
            z->avail_out = (uInt)cap;
            int zrc = inflate(z, Z_SYNC_FLUSH);
            size_t consumed = n->zbuf_len - n->zbuf_pos - z->avail_in;
            size_t produced = cap - z->avail_out;
            n->zbuf_pos += consumed;
            n->z_more = z->avail_out == 0;
            if (zrc == Z_STREAM_END) {
                n->z_end = 1;
                n->z_more = 0;
            } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
                return inflate_error(n, zrc);
            }
            if (produced > 0)
                return (long)produced;
            n->z_more = 0;
            if (n->zbuf_pos < n->zbuf_len) {
                if (consumed == 0 && !n->z_end)
                    return inflate_error(n, Z_DATA_ERROR); /* no progress: never spin */
                continue;
            }
        }
        /* Everything given to inflate is used up: read more from below. */
        n->zbuf_pos = n->zbuf_len = 0;
        long r = imk__net_lower_read(n, n->zbuf, n->zbuf_cap);
        if (r <= 0)
            return r; /* end of stream, IMK__NET_AGAIN, or an error */
        n->zbuf_len = (size_t)r;
    }
}

/* Run deflate with `flush` until it has nothing more to give. */
static int run_deflate(imk__net *n, const void *data, size_t len, int flush)
{
    z_stream *z = n->zout;
    z->next_in = (Bytef *)(uintptr_t)data;
    for (;;) {
        uInt chunk = len > UINT_MAX ? UINT_MAX : (uInt)len;
        z->avail_in = chunk;
        int rc = imk__net_out_reserve(n, 16384);
        if (rc < 0)
            return z_oom(n);
        size_t room = n->out_cap - n->out_len;
        z->next_out = n->out + n->out_len;
        z->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = z->avail_out;
        int zrc = deflate(z, len > chunk ? Z_NO_FLUSH : flush);
        n->out_len += before - z->avail_out;
        len -= chunk - z->avail_in;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return imk__net_fail(n, IMK_ENET, "deflate failed (zlib %d)", zrc);
        if (len == 0 && z->avail_out != 0)
            return 0;
    }
}

int imk__net_z_write(imk__net *n, const void *data, size_t len)
{
    int rc = run_deflate(n, data, len, Z_NO_FLUSH);
    if (rc < 0)
        return rc;
    n->deflate_pending += len;
    return 0;
}

int imk__net_z_sync(imk__net *n)
{
    if (n->deflate_pending == 0)
        return 0;
    int rc = run_deflate(n, "", 0, Z_SYNC_FLUSH);
    if (rc < 0)
        return rc;
    n->deflate_pending = 0;
    return 0;
}

void imk__net_z_free(imk__net *n)
{
    const imk_allocator *a = &n->alloc;
    if (n->zin != NULL) {
        inflateEnd(n->zin);
        imk__free(a, n->zin);
    }
    if (n->zout != NULL) {
        deflateEnd(n->zout);
        imk__free(a, n->zout);
    }
    imk__free(a, n->zbuf);
    n->zin = n->zout = NULL;
    n->zbuf = NULL;
}
