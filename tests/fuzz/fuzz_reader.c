/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the reader (framer + parser): any byte stream, fed in
 * pieces whose sizes come from the input, under small limits so that every
 * limit path is reached. Invariants checked (abort() on violation):
 *   - the body bytes delivered between BEGIN and END equal the announced
 *     size, unless an ERROR ends the body early (end of stream);
 *   - every event's pointers are readable (ASan checks the reads);
 *   - the reader's memory stays within its configured bounds.
 */
#include "imapkit/reader.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

static void touch(const char *p, size_t n)
{
    if (n != 0 && p != NULL)
        sink = (unsigned char)(sink ^ (unsigned char)p[0] ^ (unsigned char)p[n - 1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    int strict = data[1] & 1;
    data += 2;
    size -= 2;

    imk_reader_options o;
    memset(&o, 0, sizeof(o));
    o.version = IMK_READER_OPTIONS_VERSION;
    o.input_buffer_size = 64;
    o.max_line_length = 512;
    o.max_literal_size = 256;
    o.max_response_size = 2048;
    o.max_body_size = 4096;
    o.max_depth = 8;
    o.max_list_items = 64;
    o.quirks = strict ? IMK_READER_STRICT : 0;
    imk_reader *r = NULL;
    if (imk_reader_new(&o, NULL, &r) != 0)
        abort();
    uint64_t body_left = 0;
    int in_body = 0;
    size_t pos = 0;
    int done = 0;
    while (!done) {
        if (pos < size) {
            size_t want = size - pos < step ? size - pos : step;
            pos += imk_reader_feed(r, data + pos, want);
        } else {
            imk_reader_eof(r);
            done = 1;
        }
        imk_event ev;
        int rc;
        while ((rc = imk_reader_next(r, &ev)) == 1) {
            switch (ev.type) {
            case IMK_EVENT_RESPONSE:
                if (in_body)
                    abort();
                touch(ev.response->raw.data, ev.response->raw.len);
                break;
            case IMK_EVENT_BODY_BEGIN:
                if (in_body)
                    abort();
                in_body = 1;
                body_left = ev.body->size;
                touch(ev.body->spec.data, ev.body->spec.len);
                break;
            case IMK_EVENT_BODY_CHUNK:
                if (!in_body || ev.data.len == 0 || ev.data.len > body_left)
                    abort();
                body_left -= ev.data.len;
                touch(ev.data.data, ev.data.len);
                break;
            case IMK_EVENT_BODY_END:
                if (!in_body || body_left != 0)
                    abort();
                in_body = 0;
                break;
            case IMK_EVENT_ERROR:
                in_body = 0;
                touch(ev.error->message, strlen(ev.error->message));
                touch(ev.error->raw.data, ev.error->raw.len);
                break;
            }
        }
        if (rc < 0)
            break;
        imk_reader_stats st;
        imk_reader_get_stats(r, &st);
        /* input + response buffer (2x growth) + arena blocks + bookkeeping */
        if (st.memory > 64 + 2 * 4096 + 1024 * 1024)
            abort();
    }
    imk_reader_free(r);
    return 0;
}
