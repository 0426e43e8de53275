/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the command encoder.
 *
 * The input is a program: the first byte picks the encoder options, the
 * rest is a sequence of operations, each an opcode byte followed by its
 * arguments (strings are a length byte and that many bytes, or for length
 * bytes >= 240 a long run of one byte, to cross the 1024-byte quoted limit
 * and the 4096-byte LITERAL- limit). Whenever a command finishes, the
 * output is re-framed the way a server reads it, and any violation of the
 * encoder's promises aborts:
 *   - outside literal data, no CR, LF or NUL but the CRLF that ends the
 *     command and those ending literal announcements (DESIGN.md section 8);
 *   - without UTF8=ACCEPT, no 8-bit byte outside literal data;
 *   - segments split exactly after synchronizing announcements and streams,
 *     and concatenate to imk_command_bytes();
 *   - {n+} only where LITERAL+ / LITERAL- (and BINARY for ~{n+}) allow it;
 *   - no NUL inside a non-binary literal.
 * A failed command must report an error message of one line and no
 * segments.
 *
 * Build with clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc, linking
 * src/proto/encoder.c and the sources of src/util.
 */
#include "imapkit/command.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static uint8_t next_byte(reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

/* A string argument. Long runs live in `storage`, which must hold 4800. */
static const char *next_string(reader *r, char *storage, size_t *len)
{
    uint8_t l = next_byte(r);
    if (l >= 240) {
        uint8_t fill = next_byte(r);
        *len = (size_t)(l - 239) * 300;
        memset(storage, fill, *len);
        return storage;
    }
    *len = l < r->left ? l : r->left;
    const char *s = (const char *)r->p;
    r->p += *len;
    r->left -= *len;
    return s;
}

/* The same as a C string (cut at a NUL, as C would). */
static const char *next_cstring(reader *r, char *storage)
{
    size_t len;
    const char *s = next_string(r, storage, &len);
    if (s != storage)
        memcpy(storage, s, len);
    storage[len] = '\0';
    return storage;
}

static int nonsync_allowed(const imk_encoder_options *o, uint64_t n, int binary)
{
    if (binary && !o->binary)
        return 0;
    return o->literal_plus || (o->literal_minus && n <= 4096);
}

/* Re-frame a finished command; abort() on any broken promise. */
static void check_command(const imk_command *cmd, const imk_encoder_options *o)
{
    size_t count = imk_command_segment_count(cmd);
    size_t all_len, total = 0, concat = 0, vlen = 0;
    const char *all = imk_command_bytes(cmd, &all_len);

    if (count == 0)
        abort();
    for (size_t i = 0; i < count; i++) {
        const imk_command_segment *s = imk_command_segment_at(cmd, i);
        if (s == NULL || s->len == 0 || s->stream_len > 70000)
            abort();
        total += s->len + (size_t)s->stream_len;
    }
    if (imk_command_segment_at(cmd, count) != NULL)
        abort();

    /* The stream as the server sees it; streamed data is filled with line
     * ends, which must not matter because the announcement counts them. */
    char *v = malloc(total + 1);
    size_t *seg_end = malloc(count * sizeof(size_t));
    if (v == NULL || seg_end == NULL)
        abort();
    for (size_t i = 0; i < count; i++) {
        const imk_command_segment *s = imk_command_segment_at(cmd, i);
        if (s->len > all_len - concat || memcmp(s->data, all + concat, s->len) != 0)
            abort();
        concat += s->len;
        memcpy(v + vlen, s->data, s->len);
        vlen += s->len;
        seg_end[i] = vlen;
        for (uint64_t k = 0; k < s->stream_len; k++)
            v[vlen++] = (k & 1) ? '\n' : '\r';
        if (i + 1 < count && !s->wait_continuation && s->stream_len == 0)
            abort();
        if (i + 1 == count && (s->wait_continuation || s->stream_len != 0))
            abort();
    }
    if (concat != all_len)
        abort();

    size_t pos = 0, seg = 0;
    for (;;) {
        size_t j = pos;
        while (j < vlen && v[j] != '\r' && v[j] != '\n' && v[j] != '\0') {
            if ((unsigned char)v[j] >= 0x80 && !o->utf8_accept)
                abort();
            j++;
        }
        if (j + 1 >= vlen || v[j] != '\r' || v[j + 1] != '\n')
            abort();
        size_t k = j;
        int plus = 0, binary = 0, is_literal = 0;
        uint64_t n = 0, scale = 1;
        if (k > pos && v[k - 1] == '}') {
            k--;
            if (k > pos && v[k - 1] == '+') {
                plus = 1;
                k--;
            }
            size_t digits_end = k;
            while (k > pos && v[k - 1] >= '0' && v[k - 1] <= '9' && digits_end - k < 19) {
                n += (uint64_t)(v[k - 1] - '0') * scale;
                scale *= 10;
                k--;
            }
            if (k < digits_end && k > pos && v[k - 1] == '{') {
                is_literal = 1;
                binary = k - 1 > pos && v[k - 2] == '~';
            }
        }
        if (!is_literal) {
            if (j + 2 != vlen || seg + 1 != count)
                abort();
            break;
        }
        size_t start = j + 2;
        const imk_command_segment *s = imk_command_segment_at(cmd, seg);
        int streamed = 0;
        if (seg_end[seg] == start) {
            if (s->wait_continuation != !plus)
                abort();
            if (s->stream_len != 0) {
                if (s->stream_len != n)
                    abort();
                streamed = 1;
            }
            seg++;
        } else if (!plus) {
            abort();
        }
        if (plus && !nonsync_allowed(o, n, binary))
            abort();
        if (n > vlen - start)
            abort();
        if (!binary && !streamed && memchr(v + start, '\0', (size_t)n) != NULL)
            abort();
        pos = start + (size_t)n;
    }
    free(v);
    free(seg_end);
}

/* A failed or finished command keeps its promises about errors too. */
static void check_finish(imk_command *cmd, const imk_encoder_options *o)
{
    int rc = imk_command_finish(cmd);
    const char *err = imk_command_error(cmd);
    if (rc == 0) {
        if (err[0] != '\0')
            abort();
        check_command(cmd, o);
        return;
    }
    if (imk_command_segment_count(cmd) != 0 || err[0] == '\0' || strpbrk(err, "\r\n") != NULL)
        abort();
    if (imk_command_finish(cmd) != rc)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char storage[2][4801];
    reader r = {data, size};
    uint8_t flags = next_byte(&r);
    imk_encoder_options o = IMK_ENCODER_OPTIONS_INIT;
    o.literal_plus = flags & 1;
    o.literal_minus = (flags >> 1) & 1;
    o.utf8_accept = (flags >> 2) & 1;
    o.binary = (flags >> 3) & 1;
    if (flags & 16)
        o.max_line = 16 + (size_t)next_byte(&r);
    if (flags & 32)
        o.max_command = 64 + 16 * (size_t)next_byte(&r);

    imk_command *cmd = NULL;
    if (imk_command_new(&o, NULL, &cmd) != 0)
        abort();
    imk_command_begin(cmd, "F1", "X");

    while (r.left > 0) {
        uint8_t op = next_byte(&r);
        size_t len;
        const char *s;
        switch (op % 20) {
        case 0:
            imk_command_atom(cmd, next_cstring(&r, storage[0]));
            break;
        case 1:
            imk_command_token(cmd, next_cstring(&r, storage[0]));
            break;
        case 2:
            imk_command_flag(cmd, next_cstring(&r, storage[0]));
            break;
        case 3:
            s = next_string(&r, storage[0], &len);
            imk_command_astring(cmd, s, len);
            break;
        case 4:
            s = next_string(&r, storage[0], &len);
            imk_command_string(cmd, s, len);
            break;
        case 5:
            s = next_string(&r, storage[0], &len);
            imk_command_nstring(cmd, s, len);
            break;
        case 6:
            imk_command_nstring(cmd, NULL, 0);
            break;
        case 7:
            s = next_string(&r, storage[0], &len);
            imk_command_mailbox(cmd, s, len);
            break;
        case 8:
            s = next_string(&r, storage[0], &len);
            imk_command_list_mailbox(cmd, s, len);
            break;
        case 9: {
            uint64_t n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | next_byte(&r);
            imk_command_number(cmd, n);
            break;
        }
        case 10:
            imk_command_seqset_text(cmd, next_cstring(&r, storage[0]));
            break;
        case 11: {
            int y = 1900 + next_byte(&r), m = next_byte(&r) % 14, d = next_byte(&r) % 33;
            imk_command_date(cmd, y, m, d);
            break;
        }
        case 12: {
            int y = 1900 + next_byte(&r), m = next_byte(&r) % 14, d = next_byte(&r) % 33;
            int hh = next_byte(&r) % 25, mm = next_byte(&r) % 61, ss = next_byte(&r) % 62;
            int zone = ((int)next_byte(&r) - 128) * 12;
            imk_command_datetime(cmd, y, m, d, hh, mm, ss, zone);
            break;
        }
        case 13:
            imk_command_list_begin(cmd);
            break;
        case 14:
            imk_command_list_end(cmd);
            break;
        case 15:
        case 16:
            s = next_string(&r, storage[0], &len);
            imk_command_literal(cmd, s, len, op % 20 == 16);
            break;
        case 17: {
            uint64_t n = (uint64_t)next_byte(&r) << 8;
            n |= next_byte(&r);
            imk_command_literal_stream(cmd, n, op & 0x80);
            break;
        }
        case 18:
            check_finish(cmd, &o);
            imk_command_begin(cmd, "F2", "X");
            break;
        default: {
            const char *tag = next_cstring(&r, storage[0]);
            const char *name = next_cstring(&r, storage[1]);
            imk_command_begin(cmd, tag, name);
            break;
        }
        }
    }
    check_finish(cmd, &o);
    imk_command_free(cmd);
    return 0;
}
