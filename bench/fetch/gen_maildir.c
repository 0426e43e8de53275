/* SPDX-License-Identifier: MIT */
/*
 * bench/fetch/gen_maildir.c - writes the mailbox of the whole-job fetch
 * benchmark: a Maildir of N messages (20,000 by default, about 441 MB), the
 * same bytes for the same seed on every machine.
 *
 *     gen_maildir [--messages N] [--total-mb MB] [--seed S] [--huge-mb N] DIR
 *
 * DIR/cur, DIR/new and DIR/tmp are created; every message is one file in
 * cur/ named as Dovecot's own delivery names them
 * ("<time>.M<n>P<seed>.bench,S=<size>,W=<vsize>:2,<flags>": S= is the file
 * size, W= the size with CRLF line ends, i.e. RFC822.SIZE, so the server
 * need not read a file to answer it), with random Maildir flags and the
 * file's mtime set to the Date: header (the INTERNALDATE). Lines end in LF,
 * as Maildir files do; the server sends CRLF.
 *
 * What the messages look like (odds per message):
 *
 *   75.0 %  text/plain, 2 to 30 KB, log-uniform
 *   17.0 %  multipart/alternative: text/plain + text/html, 4 to 30 KB
 *    7.5 %  multipart/mixed: text + a base64 attachment of 20 to 150 KB
 *    0.5 %  multipart/mixed: text + a base64 attachment of 400 KB to 14 MB
 *
 * Headers: Return-Path, two Received, Date (dates rise through the
 * mailbox, mixed time zones), From, To (1 to 4), Cc (40 %), Subject (12 %
 * RFC 2047 encoded words, UTF-8 B or Q), Message-ID, In-Reply-To and
 * References for the 35 % that answer an earlier message (threads, "Re: "
 * subjects, quoted text), MIME-Version, Content-Type, Content-Transfer-
 * Encoding (7bit, 8bit UTF-8, or quoted-printable). Display names are
 * sometimes quoted or encoded.
 *
 * Sizes: every message's size is drawn first; then the attachment sizes are
 * scaled together (the ranges above are before scaling) so that the
 * messages as the server sends them (CRLF: the sum of RFC822.SIZE) add up
 * to --total-mb (441 MB by default; seed 1 gives 441.2 MB, the largest
 * message 5.06 MB, 87 large attachments). Each message is then written to
 * its planned size to within one line.
 *
 * --huge-mb N adds the folder "Huge" (Maildir++: DIR/.Huge) holding one
 * message of N MB: a short text and one base64 attachment.
 *
 * Determinism: xoshiro256** seeded through splitmix64; no rand(), no
 * locale, no floating point in what is written (the one scale factor is
 * computed in integers).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* PRNG                                                                   */
/* ---------------------------------------------------------------------- */

static uint64_t rng_s[4];

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    uint64_t result = rotl(rng_s[1] * 5, 7) * 9;
    uint64_t t = rng_s[1] << 17;
    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return result;
}

/* Uniform in [0, n). */
static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(((rng_next() >> 32) * (uint64_t)n) >> 32);
}

/* 1 with probability per_mille / 1000. */
static int chance(uint32_t per_mille)
{
    return rnd(1000) < per_mille;
}

/* Roughly log-uniform in [lo, hi]: a power of two picked uniformly in
 * log2 steps, then a uniform point inside that octave. */
static uint64_t log_uniform(uint64_t lo, uint64_t hi)
{
    unsigned octaves = 0;
    while ((lo << (octaves + 1)) <= hi)
        octaves++;
    unsigned o = rnd(octaves + 1);
    uint64_t a = lo << o;
    uint64_t b = a * 2 < hi ? a * 2 : hi;
    if (b <= a)
        return a;
    return a + (rng_next() % (b - a));
}

/* ---------------------------------------------------------------------- */
/* Output buffer                                                          */
/* ---------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "gen_maildir: out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void put(buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---------------------------------------------------------------------- */
/* Vocabulary                                                             */
/* ---------------------------------------------------------------------- */

static const char *const words[] = {
    "the",       "of",        "and",         "to",       "in",        "is",        "that",
    "for",       "it",        "as",          "was",      "with",      "be",        "by",
    "on",        "not",       "he",          "this",     "are",       "or",        "his",
    "from",      "at",        "which",       "but",      "have",      "an",        "had",
    "they",      "you",       "were",        "their",    "one",       "all",       "we",
    "can",       "her",       "has",         "there",    "been",      "if",        "more",
    "when",      "will",      "would",       "who",      "so",        "no",        "meeting",
    "release",   "server",    "mailbox",     "schedule", "budget",    "proposal",  "review",
    "patch",     "deadline",  "customer",    "invoice",  "quarter",   "report",    "draft",
    "attached",  "please",    "thanks",      "question", "update",    "following", "team",
    "project",   "version",   "minutes",     "agenda",   "tomorrow",  "yesterday", "Monday",
    "Friday",    "office",    "travel",      "contract", "feedback",  "estimate",  "numbers",
    "changes",   "comments",  "issue",       "problem",  "solution",  "approach",  "design",
    "document",  "discussed", "agreed",      "suggest",  "consider",  "important", "later",
    "before",    "after",     "because",     "however",  "although",  "perhaps",   "exactly",
    "probably",  "message",   "list",        "thread",   "configure", "database",  "network",
    "backup",    "storage",   "certificate", "password", "account",   "folder",    "archive",
    "benchmark", "latency",   "throughput",  "memory",   "kernel",    "library",   "compile",
    "function",  "variable",  "pointer",     "buffer",   "timeout",   "protocol",  "client",
    "response",  "request",   "literal",     "envelope", "header",    "body",      "section",
};

/* Words with non-ASCII letters (UTF-8), for 8-bit bodies and encoded
 * subjects and names. */
static const char *const words8[] = {
    "Grüße", "café",   "naïve",  "Ärger",  "über",   "Straße", "déjà",        "vu",
    "señor", "Zürich", "Kraków", "Ελλάδα", "Москва", "東京",   "smörgåsbord", "façade",
};

static const char *const first_names[] = {
    "Alice", "Bob",    "Carol",   "David",  "Erin",   "Frank", "Grace",  "Heidi",
    "Ivan",  "Judy",   "Mallory", "Niaj",   "Olivia", "Peggy", "Rupert", "Sybil",
    "Trent", "Victor", "Walter",  "Xavier", "Yasmin", "Zoe",   "Maria",  "Ahmed",
};
static const char *const first_names8[] = {"Jürgen",    "Zoë",    "José",   "Søren",
                                           "Françoise", "Łukasz", "Ingrid", "Björn"};
static const char *const last_names[] = {
    "Smith",  "Johnson", "Williams", "Brown",  "Jones", "Garcia", "Miller", "Davis",
    "Wilson", "Taylor",  "Anderson", "Thomas", "Moore", "Martin", "Lee",    "Clark",
    "Lewis",  "Walker",  "Hall",     "Young",  "King",  "Wright", "Lopez",  "Hill",
};
static const char *const last_names8[] = {"Müller", "Núñez", "Østergaard", "Kovač", "Dvořák"};
static const char *const domains[] = {
    "example.com",  "example.org",       "mail.example.net",
    "corp.example", "lists.example.org", "university.example.edu",
};
static const char *const zones[] = {"+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900"};
static const int zone_minutes[] = {0, 60, 120, -300, -480, 330, 540};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(a) ((a)[rnd((uint32_t)N_OF(a))])

/* ---------------------------------------------------------------------- */
/* Encodings                                                              */
/* ---------------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of n bytes (no line breaks). */
static void put_base64(buf *b, const unsigned char *s, size_t n)
{
    buf_reserve(b, (n + 2) / 3 * 4);
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = b64chars[(v >> 6) & 63];
        *o++ = b64chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
}

/* RFC 2047 encoded word of a UTF-8 text: B or Q encoding. */
static void put_encoded_word(buf *b, const char *utf8, int q)
{
    if (!q) {
        puts_(b, "=?UTF-8?B?");
        put_base64(b, (const unsigned char *)utf8, strlen(utf8));
        puts_(b, "?=");
        return;
    }
    puts_(b, "=?UTF-8?Q?");
    for (const unsigned char *p = (const unsigned char *)utf8; *p; p++) {
        if (*p == ' ')
            put(b, "_", 1);
        else if (*p >= 0x80 || *p == '=' || *p == '?' || *p == '_')
            putf(b, "=%02X", *p);
        else
            put(b, (const char *)p, 1);
    }
    puts_(b, "?=");
}

/* ---------------------------------------------------------------------- */
/* Dates                                                                  */
/* ---------------------------------------------------------------------- */

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

/* RFC 5322 section 3.3 date-time of a UTC instant shown in zone z. */
static void put_date(buf *b, int64_t t, unsigned z)
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t local = t + zone_minutes[z] * 60;
    int64_t days = local / 86400;
    int64_t secs = local % 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    putf(b, "%s, %u %s %d %02d:%02d:%02d %s", wd[days % 7], d, mon[m - 1], y, (int)(secs / 3600),
         (int)(secs / 60 % 60), (int)(secs % 60), zones[z]);
}

/* ---------------------------------------------------------------------- */
/* The mailbox plan                                                       */
/* ---------------------------------------------------------------------- */

enum kind { K_PLAIN, K_ALTERNATIVE, K_SMALL_ATTACH, K_BIG_ATTACH };

typedef struct msg_plan {
    enum kind kind;
    uint64_t text_size;   /* target for the text part(s) */
    uint64_t attach_size; /* raw (decoded) attachment bytes */
    int64_t time;
    int parent; /* index of the message answered, or -1 */
    unsigned depth;
    char subject[160]; /* UTF-8, without "Re: " */
} msg_plan;

static void make_subject(char *out, size_t cap, int non_ascii)
{
    size_t len = 0;
    unsigned n = 3 + rnd(6);
    for (unsigned i = 0; i < n; i++) {
        const char *w = (non_ascii && i == 1) ? PICK(words8) : PICK(words);
        int k = snprintf(out + len, cap - len, "%s%s", i ? " " : "", w);
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
    if (len && out[0] >= 'a' && out[0] <= 'z')
        out[0] = (char)(out[0] - 'a' + 'A');
}

/* ---------------------------------------------------------------------- */
/* Writing one message                                                    */
/* ---------------------------------------------------------------------- */

static void put_person(buf *b, unsigned person, int allow_encoded)
{
    /* The person's identity is a function of the number, so the same
     * people recur through the mailbox. */
    uint64_t saved[4];
    memcpy(saved, rng_s, sizeof saved);
    uint64_t x = person * 0x9e3779b97f4a7c15u + 1;
    for (int i = 0; i < 4; i++)
        rng_s[i] = splitmix64(&x);
    int eight = chance(120);
    const char *first = eight ? PICK(first_names8) : PICK(first_names);
    const char *last = eight && chance(500) ? PICK(last_names8) : PICK(last_names);
    const char *dom = PICK(domains);
    unsigned style = rnd(10);
    memcpy(rng_s, saved, sizeof saved);

    char local[64];
    snprintf(local, sizeof local, "%c%s.%u", first[0] | 0x20, eight ? "user" : last, person % 97);
    for (char *p = local; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (style == 0) {
        putf(b, "%s@%s", local, dom);
    } else if (eight && allow_encoded) {
        char name[96];
        snprintf(name, sizeof name, "%s %s", first, last);
        put_encoded_word(b, name, (int)(style & 1));
        putf(b, " <%s@%s>", local, dom);
    } else if (style < 4) {
        putf(b, "\"%s, %s\" <%s@%s>", eight ? "Smith" : last, eight ? "Anna" : first, local, dom);
    } else {
        putf(b, "%s %s <%s@%s>", eight ? "Anna" : first, eight ? "Smith" : last, local, dom);
    }
}

static void put_msgid(buf *b, unsigned i, uint64_t seed)
{
    putf(b, "<%u.%llx.%u@bench.example.org>", i * 7919u + 13u,
         (unsigned long long)(seed * 0x2545f4914f6cdd1du + i), i);
}

/* Text lines of about `size` bytes: paragraphs wrapped at 72 columns. In
 * 8-bit mode some words are UTF-8; in QP mode those are written as =XX
 * (RFC 2045 section 6.7) and no line exceeds 76 characters. */
static void put_text(buf *b, uint64_t size, int eight, int qp)
{
    size_t start = b->len;
    size_t line_start = b->len;
    unsigned words_in_par = 0, par_len = 20 + rnd(60);
    while (b->len - start < size) {
        const char *w = (eight || qp) && chance(40) ? PICK(words8) : PICK(words);
        size_t wl = strlen(w);
        size_t col = b->len - line_start;
        size_t wcols = wl;
        if (qp)
            for (const unsigned char *p = (const unsigned char *)w; *p; p++)
                if (*p >= 0x80)
                    wcols += 2;
        if (col && col + 1 + wcols > 72) {
            put(b, "\n", 1);
            line_start = b->len;
            col = 0;
        }
        if (col)
            put(b, " ", 1);
        if (qp) {
            for (const unsigned char *p = (const unsigned char *)w; *p; p++) {
                if (*p >= 0x80)
                    putf(b, "=%02X", *p);
                else
                    put(b, (const char *)p, 1);
            }
        } else {
            put(b, w, wl);
        }
        if (++words_in_par >= par_len) {
            puts_(b, ".\n\n");
            line_start = b->len;
            words_in_par = 0;
            par_len = 20 + rnd(60);
        }
    }
    if (b->len > line_start)
        put(b, "\n", 1);
}

static void put_quote(buf *b, const msg_plan *parent, unsigned parent_from)
{
    puts_(b, "On ");
    put_date(b, parent->time, 0);
    puts_(b, ", ");
    put_person(b, parent_from, 0);
    puts_(b, " wrote:\n");
    unsigned n = 3 + rnd(12);
    for (unsigned i = 0; i < n; i++) {
        puts_(b, "> ");
        unsigned k = 5 + rnd(8);
        for (unsigned j = 0; j < k; j++) {
            if (j)
                put(b, " ", 1);
            puts_(b, PICK(words));
        }
        put(b, "\n", 1);
    }
    put(b, "\n", 1);
}

static void put_signature(buf *b, unsigned from)
{
    puts_(b, "\n-- \n");
    put_person(b, from, 0);
    puts_(b, "\nSent from a benchmark\n");
}

/* Base64 attachment lines of n raw bytes (76 characters per line). */
static void put_attachment(buf *b, uint64_t n)
{
    unsigned char raw[57 * 64];
    while (n) {
        size_t chunk = n < sizeof raw ? (size_t)n : sizeof raw;
        for (size_t i = 0; i < chunk; i += 8) {
            uint64_t v = rng_next();
            size_t k = chunk - i < 8 ? chunk - i : 8;
            memcpy(raw + i, &v, k);
        }
        for (size_t i = 0; i < chunk; i += 57) {
            size_t k = chunk - i < 57 ? chunk - i : 57;
            put_base64(b, raw + i, k);
            put(b, "\n", 1);
        }
        n -= chunk;
    }
}

static unsigned sender_of(unsigned i)
{
    return (i * 2654435761u) % 180;
}

static void write_message(buf *b, const msg_plan *plan, unsigned i, uint64_t seed)
{
    const msg_plan *m = &plan[i];
    unsigned from = sender_of(i);
    unsigned zone = rnd((uint32_t)N_OF(zones));
    b->len = 0;

    putf(b, "Return-Path: <");
    size_t mark = b->len;
    put_person(b, from, 0);
    /* keep only the address part for Return-Path */
    {
        char *lt = memchr(b->p + mark, '<', b->len - mark);
        if (lt) {
            size_t alen = b->len - (size_t)(lt + 1 - b->p);
            memmove(b->p + mark, lt + 1, alen);
            b->len = mark + alen;
        } else {
            put(b, ">", 1);
        }
    }
    puts_(b, "\n");
    putf(b,
         "Received: from mx%u.example.net (mx%u.example.net [192.0.2.%u])\n\tby "
         "imap.bench.example.org (Postfix) with ESMTPS id %08X\n\tfor <me@bench.example.org>; ",
         i % 7, i % 7, 1 + i % 250, (unsigned)(rng_next() >> 32));
    put_date(b, m->time + 2, 0);
    putf(b, "\nReceived: from [10.%u.%u.%u] (helo=client)\n\tby mx%u.example.net with esmtpa; ",
         i % 256, (i >> 8) % 256, 1 + i % 200, i % 7);
    put_date(b, m->time + 1, zone);
    puts_(b, "\nDate: ");
    put_date(b, m->time, zone);
    puts_(b, "\nFrom: ");
    put_person(b, from, 1);
    puts_(b, "\nTo: ");
    unsigned nto = 1 + (chance(300) ? 1 + rnd(3) : 0);
    for (unsigned k = 0; k < nto; k++) {
        if (k)
            puts_(b, ",\n ");
        put_person(b, k == 0 ? 180 : 181 + rnd(60), 1);
    }
    if (chance(400)) {
        puts_(b, "\nCc: ");
        unsigned ncc = 1 + rnd(3);
        for (unsigned k = 0; k < ncc; k++) {
            if (k)
                puts_(b, ", ");
            put_person(b, rnd(240), 1);
        }
    }
    puts_(b, "\nSubject: ");
    const char *subject = m->parent >= 0 ? plan[m->parent].subject : m->subject;
    int subj8 = 0;
    for (const char *p = subject; *p; p++)
        subj8 |= (unsigned char)*p >= 0x80;
    if (subj8) {
        char full[200];
        snprintf(full, sizeof full, "%s%s", m->parent >= 0 ? "Re: " : "", subject);
        put_encoded_word(b, full, (int)(i & 1));
    } else {
        putf(b, "%s%s", m->parent >= 0 ? "Re: " : "", subject);
    }
    puts_(b, "\nMessage-ID: ");
    put_msgid(b, i, seed);
    if (m->parent >= 0) {
        puts_(b, "\nIn-Reply-To: ");
        put_msgid(b, (unsigned)m->parent, seed);
        puts_(b, "\nReferences:");
        /* the chain of ancestors, oldest first, at most 10 */
        int chain[10];
        int n = 0;
        for (int p = m->parent; p >= 0 && n < 10; p = plan[p].parent)
            chain[n++] = p;
        for (int k = n - 1; k >= 0; k--) {
            puts_(b, k == n - 1 ? " " : "\n ");
            put_msgid(b, (unsigned)chain[k], seed);
        }
    }
    if (chance(200))
        putf(b, "\nList-Id: <list%u.lists.example.org>", i % 5);
    puts_(b, "\nMIME-Version: 1.0\n");

    int eight = chance(300), qp = !eight && chance(150);
    const char *cte = eight ? "8bit" : qp ? "quoted-printable" : "7bit";
    size_t head_len = b->len;
    uint64_t text_target = m->text_size > head_len + 200 ? m->text_size - head_len - 200 : 200;
    char boundary[64];
    snprintf(boundary, sizeof boundary, "=_bench_%08x_%u", (unsigned)(rng_next() >> 32), i);

    switch (m->kind) {
    case K_PLAIN:
        putf(b,
             "Content-Type: text/plain; charset=%s; format=flowed\n"
             "Content-Transfer-Encoding: %s\n\n",
             eight || qp ? "utf-8" : "us-ascii", cte);
        if (m->parent >= 0)
            put_quote(b, &plan[m->parent], sender_of((unsigned)m->parent));
        put_text(b, text_target, eight, qp);
        put_signature(b, from);
        break;
    case K_ALTERNATIVE:
        putf(b,
             "Content-Type: multipart/alternative; boundary=\"%s\"\n\n"
             "This is a multi-part message in MIME format.\n\n--%s\n"
             "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: %s\n\n",
             boundary, boundary, cte);
        if (m->parent >= 0)
            put_quote(b, &plan[m->parent], sender_of((unsigned)m->parent));
        put_text(b, text_target * 2 / 5, eight, qp);
        putf(b,
             "\n--%s\nContent-Type: text/html; charset=utf-8\n"
             "Content-Transfer-Encoding: %s\n\n<html><head><meta charset=\"utf-8\"></head>\n"
             "<body style=\"font-family: sans-serif\">\n<p>\n",
             boundary, cte);
        put_text(b, text_target * 3 / 5, eight, qp);
        putf(b, "</p>\n</body></html>\n\n--%s--\n", boundary);
        break;
    case K_SMALL_ATTACH:
    case K_BIG_ATTACH: {
        static const char *const types[][2] = {
            {"application/pdf", "pdf"},
            {"image/jpeg", "jpg"},
            {"application/zip", "zip"},
            {"image/png", "png"},
            {"application/vnd.oasis.opendocument.text", "odt"},
            {"application/octet-stream", "bin"},
        };
        unsigned t = rnd((uint32_t)N_OF(types));
        const char *stem = PICK(words);
        putf(b,
             "Content-Type: multipart/mixed; boundary=\"%s\"\n\n"
             "This is a multi-part message in MIME format.\n\n--%s\n"
             "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: %s\n\n",
             boundary, boundary, cte);
        if (m->parent >= 0)
            put_quote(b, &plan[m->parent], sender_of((unsigned)m->parent));
        put_text(b, text_target, eight, qp);
        put_signature(b, from);
        putf(b,
             "\n--%s\nContent-Type: %s; name=\"%s-%u.%s\"\n"
             "Content-Disposition: attachment; filename=\"%s-%u.%s\"\n"
             "Content-Transfer-Encoding: base64\n\n",
             boundary, types[t][0], stem, i, types[t][1], stem, i, types[t][1]);
        put_attachment(b, m->attach_size);
        putf(b, "\n--%s--\n", boundary);
        break;
    }
    }
}

/* ---------------------------------------------------------------------- */
/* main                                                                   */
/* ---------------------------------------------------------------------- */

/* DIR, DIR/cur, DIR/new, DIR/tmp. */
static int make_maildir(const char *dir)
{
    char path[4096];
    const char *subdirs[] = {"", "/cur", "/new", "/tmp"};
    for (size_t k = 0; k < N_OF(subdirs); k++) {
        snprintf(path, sizeof path, "%s%s", dir, subdirs[k]);
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "gen_maildir: mkdir %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Write message b as DIR/cur/<name> with mtime `time`; *vsize_out is its
 * size with CRLF line ends (RFC822.SIZE). */
static int store(const char *dir, const buf *b, int64_t time, unsigned i, uint64_t seed,
                 const char *flags, uint64_t *vsize_out)
{
    uint64_t lines = 0;
    for (const char *p = b->p, *end = b->p + b->len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        lines++;
    char path[4096];
    snprintf(path, sizeof path, "%s/cur/%lld.M%06uP%llu.bench,S=%zu,W=%llu:2,%s", dir,
             (long long)time, i, (unsigned long long)seed, b->len,
             (unsigned long long)(b->len + lines), flags);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "gen_maildir: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (size_t off = 0; off < b->len;) {
        ssize_t k = write(fd, b->p + off, b->len - off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "gen_maildir: write %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)k;
    }
    struct timespec ts[2] = {{(time_t)time, 0}, {(time_t)time, 0}};
    if (futimens(fd, ts) < 0 || close(fd) < 0) {
        fprintf(stderr, "gen_maildir: %s: %s\n", path, strerror(errno));
        return -1;
    }
    *vsize_out = b->len + lines;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gen_maildir [--messages N] [--total-mb MB] [--seed S] [--huge-mb MB] DIR\n");
    exit(2);
}

static unsigned long long arg_num(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    unsigned n = 20000;
    uint64_t total = 441;
    uint64_t seed = 1, huge = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            n = (unsigned)arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--total-mb") && i + 1 < argc)
            total = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = arg_num(argv[++i]);
        else if (!strcmp(argv[i], "--huge-mb") && i + 1 < argc)
            huge = arg_num(argv[++i]);
        else if (argv[i][0] == '-' || dir)
            usage();
        else
            dir = argv[i];
    }
    if (!dir || n == 0)
        usage();
    total *= 1000000u;

    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng_s[i] = splitmix64(&x);

    msg_plan *plan = calloc(n + 1, sizeof *plan); /* + the huge one */
    if (!plan)
        return 1;
    /* Plan sizes, dates and threads first. */
    int64_t t = 1609459200; /* 2021-01-01T00:00:00Z */
    uint64_t fixed = 0, attach = 0;
    for (unsigned i = 0; i < n; i++) {
        msg_plan *m = &plan[i];
        uint32_t r = rnd(1000);
        m->kind = r < 750   ? K_PLAIN
                  : r < 920 ? K_ALTERNATIVE
                  : r < 995 ? K_SMALL_ATTACH
                            : K_BIG_ATTACH;
        m->text_size = log_uniform(m->kind == K_ALTERNATIVE ? 4000 : 2000, 30000);
        if (m->kind == K_SMALL_ATTACH)
            m->attach_size = log_uniform(20000, 150000) * 3 / 4;
        else if (m->kind == K_BIG_ATTACH)
            m->attach_size = log_uniform(400000, 14000000) * 3 / 4;
        t += 60 + rnd(5400);
        m->time = t;
        m->parent = -1;
        if (i > 0 && chance(350)) {
            unsigned back = 1 + rnd(i < 400 ? i : 400);
            m->parent = (int)(i - back);
            m->depth = plan[m->parent].depth + 1;
        }
        make_subject(m->subject, sizeof m->subject, chance(120));
        /* What a message gets beyond its planned text (headers of the
         * parts, quote, signature: about 260 bytes), and the CR the
         * server adds to each line of text (about one per 60 bytes). */
        fixed += (m->text_size + 260) * 61 / 60;
        /* base64 is 4/3 of the raw size plus CRLF per 76 characters */
        attach += m->attach_size * 4 / 3 * 78 / 76;
    }
    /* Scale the attachments so that the messages, as the server sends
     * them (CRLF), add up to `total` (fixed-point factor in 1/65536,
     * integers only). */
    if (attach && total > fixed) {
        uint64_t f = (total - fixed) * 65536 / attach;
        for (unsigned i = 0; i < n; i++)
            plan[i].attach_size = plan[i].attach_size * f / 65536;
    }

    if (make_maildir(dir) < 0)
        return 1;
    buf b = {0};
    uint64_t written = 0, vwritten = 0, largest = 0;
    unsigned kinds[4] = {0};
    for (unsigned i = 0; i < n; i++) {
        write_message(&b, plan, i, seed);
        char flags[8];
        size_t nf = 0;
        int recent = i + n / 20 >= n;
        int seen = recent ? chance(300) : chance(900);
        if (chance(3))
            flags[nf++] = 'D';
        if (chance(40))
            flags[nf++] = 'F';
        if (seen && chance(130))
            flags[nf++] = 'R';
        if (seen)
            flags[nf++] = 'S';
        if (chance(2))
            flags[nf++] = 'T';
        flags[nf] = 0;
        uint64_t vsize;
        if (store(dir, &b, plan[i].time, i, seed, flags, &vsize) < 0)
            return 1;
        written += b.len;
        vwritten += vsize;
        if (b.len > largest)
            largest = b.len;
        kinds[plan[i].kind]++;
    }
    printf("gen_maildir: %u messages in %s/cur: %llu bytes in files, %llu bytes with CRLF "
           "(RFC822.SIZE total), largest %llu\n",
           n, dir, (unsigned long long)written, (unsigned long long)vwritten,
           (unsigned long long)largest);
    printf("gen_maildir: %u text/plain, %u multipart/alternative, %u small attachments, %u large "
           "attachments (seed %llu)\n",
           kinds[K_PLAIN], kinds[K_ALTERNATIVE], kinds[K_SMALL_ATTACH], kinds[K_BIG_ATTACH],
           (unsigned long long)seed);

    if (huge) {
        /* One message of `huge` MB in the folder "Huge" (Maildir++:
         * DIR/.Huge): a short text and one base64 attachment. */
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/.Huge", dir);
        if (make_maildir(sub) < 0)
            return 1;
        msg_plan *m = &plan[n];
        m->kind = K_BIG_ATTACH;
        m->text_size = 3000;
        m->attach_size = (huge * 1000000u - 4000) * 3 / 4 * 76 / 77;
        m->time = plan[n - 1].time + 3600;
        m->parent = -1;
        snprintf(m->subject, sizeof m->subject, "The %llu MB message", (unsigned long long)huge);
        write_message(&b, plan, n, seed);
        uint64_t vsize;
        if (store(sub, &b, m->time, n, seed, "S", &vsize) < 0)
            return 1;
        printf("gen_maildir: 1 message in %s/cur: %zu bytes in the file, %llu bytes with CRLF "
               "(huge)\n",
               sub, b.len, (unsigned long long)vsize);
    }
    free(b.p);
    free(plan);
    return 0;
}
