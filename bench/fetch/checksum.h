/* SPDX-License-Identifier: MIT */
/*
 * bench/fetch/checksum.h - what the C drivers of the fetch benchmark
 * (fetch_imapkit.c, fetch_libetpan.c) add up, and the line they print, so
 * that run.sh can check both clients received the same messages and bytes.
 *
 * The body checksum reads one byte in 64, at offsets 0, 64, 128, ... from
 * the start of each message, weighted by its index: every cache line of
 * every body passes through the CPU (as it would for a consumer that copies
 * or parses it) while the arithmetic stays far below the cost of receiving
 * the bytes. It depends only on the bytes and their offsets, never on how
 * a client split a body into chunks. Messages are chained in the order
 * they arrive (UID order for UID FETCH 1:*).
 */
#ifndef BENCH_FETCH_CHECKSUM_H
#define BENCH_FETCH_CHECKSUM_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct bench_tally {
    uint64_t messages, uid_sum, size_sum, flags, addresses;
    uint64_t body_bytes, checksum;
} bench_tally;

/* Continue the sample sum of one body over `len` bytes found at `offset`
 * from its start. */
static inline uint64_t bench_sample(const unsigned char *data, size_t len, uint64_t offset,
                                    uint64_t acc)
{
    size_t i = (size_t)((64 - offset % 64) % 64);
    for (; i < len; i += 64)
        acc += (uint64_t)data[i] * ((offset + i) / 64 + 1);
    return acc;
}

/* One body is complete: `len` bytes, sample sum `acc`. */
static inline void bench_body_done(bench_tally *t, uint64_t len, uint64_t acc)
{
    t->body_bytes += len;
    t->checksum = t->checksum * 1000003u + acc + len;
}

static inline void bench_tally_print(const bench_tally *t)
{
    printf("messages=%" PRIu64 " uid_sum=%" PRIu64 " size_sum=%" PRIu64 " flags=%" PRIu64
           " addresses=%" PRIu64 " body_bytes=%" PRIu64 " checksum=%016" PRIx64 "\n",
           t->messages, t->uid_sum, t->size_sum, t->flags, t->addresses, t->body_bytes,
           t->checksum);
}

#endif
