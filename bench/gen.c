/* SPDX-License-Identifier: MIT */
/*
 * bench/gen.c - the stream generator behind the parsing benchmarks (see
 * gen.h for what the streams contain).
 *
 * How realistic output is made. Every metadata response is assembled from
 * the parts a real server writes, each drawn from tables of plausible values
 * with fixed odds:
 *
 *   * 42 FETCH (UID 7313 FLAGS (\Seen $Forwarded) INTERNALDATE "..."
 *      RFC822.SIZE 48211 ENVELOPE (date subject from sender reply-to to cc
 *      bcc in-reply-to message-id) BODYSTRUCTURE (...) MODSEQ (913344))
 *
 * Three server "dialects" are mixed per response: Dovecot (lower-case MIME
 * names, body-fld-loc present, MODSEQ last), Gmail (MODSEQ right after UID,
 * no body-fld-loc) and an upper-case server in the style of Courier and
 * Exchange ("TEXT" "PLAIN" ("CHARSET" ...), space-padded INTERNALDATE day).
 * Strings holding 8-bit bytes are sent as literals, as Dovecot does; all
 * other strings are quoted, with `"` and `\` escaped. The BODYSTRUCTURE is
 * built first into a side buffer because RFC822.SIZE, which precedes it,
 * is the sum of its part sizes plus a header block.
 *
 * Body-literal responses carry a header block and base64 lines copied from a
 * 64 KiB pool, so generating hundreds of megabytes takes well under a second.
 *
 * Everything here is deterministic for a given seed: the PRNG is
 * xoshiro256** seeded through splitmix64, and no floating-point library
 * function is used (sizes use a piecewise-linear 2^x, so "log-uniform" is
 * approximate to a few percent).
 *
 * Compiled alone, this file is the bench_gen program: with no arguments it
 * prints a summary of both streams; `--dump metadata|bodies` writes one to
 * stdout (to feed another parser, a profiler or `imapkit parse`). With
 * GEN_EMBEDDED defined it is just the generator, included by bench_parse.c.
 */
#include "gen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* PRNG: xoshiro256** (Blackman & Vigna), seeded with splitmix64          */
/* ---------------------------------------------------------------------- */

typedef struct gen_rng {
    uint64_t s[4];
} gen_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void rng_seed(gen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (n > 0), by multiply-shift; the bias is below 2^-32. */
static uint32_t below(gen_rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static uint32_t between(gen_rng *r, uint32_t lo, uint32_t hi)
{
    return lo + below(r, hi - lo + 1);
}

/* True with probability permille / 1000. */
static int chance(gen_rng *r, uint32_t permille)
{
    return below(r, 1000) < permille;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(r, a) ((a)[below((r), (uint32_t)COUNT(a))])

/* ---------------------------------------------------------------------- */
/* Output                                                                 */
/* ---------------------------------------------------------------------- */

/* A growable byte buffer: the stream itself, or the side buffer in which a
 * BODYSTRUCTURE is built before it is copied after RFC822.SIZE. */
typedef struct gen_out {
    char *p;
    size_t len, cap;
} gen_out;

typedef enum gen_dialect { D_DOVECOT, D_GMAIL, D_UPPER } gen_dialect;

typedef struct gen_writer {
    gen_stream *s;
    gen_rng rnd;
    gen_out main, side;
    gen_out *cur; /* where put*() writes */
    int failed;   /* an allocation failed: stop and report */
    gen_dialect dialect;
    /* per-response scratch for strings built with sfmt() */
    char scratch[16384];
    size_t scratch_len;
} gen_writer;

static void out_reserve(gen_writer *w, gen_out *o, size_t more)
{
    if (w->failed)
        return;
    if (o->cap - o->len > more)
        return;
    size_t cap = o->cap != 0 ? o->cap : (size_t)1 << 16;
    while (cap - o->len <= more)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (p == NULL) {
        w->failed = 1;
        return;
    }
    o->p = p;
    o->cap = cap;
}

static void put(gen_writer *w, const char *p, size_t n)
{
    gen_out *o = w->cur;
    out_reserve(w, o, n + 1);
    if (w->failed)
        return;
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(gen_writer *w, const char *str)
{
    put(w, str, strlen(str));
}

static void putc_(gen_writer *w, char c)
{
    put(w, &c, 1);
}

static void put_u64(gen_writer *w, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + i, sizeof(tmp) - i);
}

/* printf into the per-response scratch area; the string lives until the
 * next response. Falls back to "" when the scratch area is full. */
__attribute__((format(printf, 2, 3))) static const char *sfmt(gen_writer *w, const char *fmt, ...)
{
    size_t room = sizeof(w->scratch) - w->scratch_len;
    char *dst = w->scratch + w->scratch_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        return "";
    w->scratch_len += (size_t)n + 1;
    return dst;
}

static int needs_literal(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80 || c == '\r' || c == '\n' || c == '\0')
            return 1;
    }
    return 0;
}

/* string = quoted / literal (RFC 9051 section 9); quoted-specials escaped. */
static void put_string(gen_writer *w, const char *p)
{
    size_t n = strlen(p);
    if (needs_literal(p, n)) {
        putc_(w, '{');
        put_u64(w, n);
        puts_(w, "}\r\n");
        put(w, p, n);
        w->s->literals++;
        return;
    }
    putc_(w, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            put(w, p + run, i - run);
            putc_(w, '\\');
            run = i;
        }
    }
    put(w, p + run, n - run);
    putc_(w, '"');
}

static void put_nstring(gen_writer *w, const char *p)
{
    if (p == NULL)
        puts_(w, "NIL");
    else
        put_string(w, p);
}

/* A MIME token (type, subtype, attribute, encoding, disposition): quoted,
 * in capitals for the upper-case dialect. */
static void put_token(gen_writer *w, const char *p)
{
    if (w->dialect != D_UPPER) {
        put_string(w, p);
        return;
    }
    char tmp[64];
    size_t n = strlen(p);
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (p[i] >= 'a' && p[i] <= 'z') ? (char)(p[i] - 'a' + 'A') : p[i];
    tmp[n] = '\0';
    put_string(w, tmp);
}

/* ---------------------------------------------------------------------- */
/* RFC 2047 encoded words                                                 */
/* ---------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of p[0..n) into dst (NUL-terminated); returns its length. dst must
 * hold 4 * ((n + 2) / 3) + 1 bytes. */
static size_t base64(const char *p, size_t n, char *dst)
{
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)u[i + 1] << 8;
        if (i + 2 < n)
            v |= u[i + 2];
        dst[o++] = b64_alphabet[(v >> 18) & 63];
        dst[o++] = b64_alphabet[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        dst[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    dst[o] = '\0';
    return o;
}

/*
 * text as one or more encoded words (at most ~45 input bytes each, cut at
 * UTF-8 character boundaries, as mail clients fold long subjects):
 *   "=?UTF-8?B?...?=" or "=?utf-8?q?...?=" (Q: '_' for space, =XX for
 * 8-bit and specials). Written into the scratch area.
 */
static const char *encode_words(gen_writer *w, const char *text, int q)
{
    char out[2048];
    size_t o = 0;
    size_t n = strlen(text);
    size_t i = 0;
    while (i < n && o + 256 < sizeof(out)) {
        size_t take = n - i < 45 ? n - i : 45;
        while (i + take < n && ((unsigned char)text[i + take] & 0xC0) == 0x80)
            take--; /* do not split a UTF-8 sequence */
        if (o != 0)
            out[o++] = ' ';
        w->s->encoded_words++;
        if (!q) {
            memcpy(out + o, "=?UTF-8?B?", 10);
            o += 10;
            o += base64(text + i, take, out + o);
        } else {
            memcpy(out + o, "=?utf-8?q?", 10);
            o += 10;
            for (size_t k = i; k < i + take; k++) {
                unsigned char c = (unsigned char)text[k];
                if (c == ' ') {
                    out[o++] = '_';
                } else if (c >= 0x80 || c == '=' || c == '?' || c == '_' || c == '"') {
                    static const char hex[] = "0123456789ABCDEF";
                    out[o++] = '=';
                    out[o++] = hex[c >> 4];
                    out[o++] = hex[c & 15];
                } else {
                    out[o++] = (char)c;
                }
            }
        }
        memcpy(out + o, "?=", 2);
        o += 2;
        i += take;
    }
    out[o] = '\0';
    return sfmt(w, "%s", out);
}

/* ---------------------------------------------------------------------- */
/* Tables                                                                 */
/* ---------------------------------------------------------------------- */

static const char *const first_names[] = {
    "Alice",  "Bob",    "Carol",  "David", "Erin",     "Frank", "Grace", "Heidi",
    "Ivan",   "Judy",   "Oscar",  "Peggy", "Rupert",   "Sybil", "Trent", "Victor",
    "Walter", "Maria",  "Jose",   "Wei",   "Yuki",     "Olga",  "Ahmed", "Fatima",
    "Lars",   "Ingrid", "Pierre", "Chloe", "Giovanni", "Priya", "Kofi",  "Mei"};

static const char *const last_names[] = {
    "Smith",  "Johnson", "Miller",   "Garcia",    "Martinez", "Schmidt", "Dubois",
    "Rossi",  "Tanaka",  "Kowalski", "Novak",     "Andersen", "O'Brien", "van der Berg",
    "Nguyen", "Silva",   "Ivanova",  "Cohen",     "Larsen",   "Fischer", "Okafor",
    "Patel",  "Kim",     "Haddad",   "Lindqvist", "Moreau"};

/* Names that need an encoded word (UTF-8). */
static const char *const intl_names[] = {
    "J\303\274rgen M\303\274ller",
    "Fran\303\247ois Lef\303\250vre",
    "Jos\303\251 Pe\303\261a",
    "\305\201ukasz W\303\263jcik",
    "Zo\303\253 Bront\303\253",
    "S\303\270ren Kierkeg\303\245rd",
    "\303\205sa \303\226berg",
    "Anton\303\255n Dvo\305\231\303\241k",
    ("\316\225\316\273\316\255\316\275\316\267 \316\240\316\261\317\200\316\261\316\264"
     "\316\277\317\200\316\277\317\215\316\273\316\277\317\205"),
    "\320\230\320\262\320\260\320\275 \320\237\320\265\321\202\321\200\320\276\320\262",
    "\345\261\261\347\224\260 \345\244\252\351\203\216",
    "\352\271\200\353\257\274\354\210\230",
    "Bj\303\266rk Gu\303\260mundsd\303\263ttir",
    "Ren\303\251e Fa\303\247ade"};

static const char *const hosts[] = {"example.com",       "example.org",    "mail.example.net",
                                    "lists.example.org", "corp.example",   "uni-example.de",
                                    "example.co.uk",     "dev.example.io", "support.example.com",
                                    "news.example.net",  "example.fr",     "mx.example.jp"};

static const char *const robots[] = {"noreply", "no-reply",   "notifications", "billing",
                                     "support", "newsletter", "mailer-daemon", "calendar",
                                     "alerts",  "jira",       "github",        "do-not-reply"};

static const char *const words[] = {
    "meeting",  "agenda",     "quarterly", "report",  "invoice",   "update",   "project",
    "review",   "draft",      "budget",    "release", "notes",     "patch",    "build",
    "failure",  "question",   "about",     "the",     "new",       "server",   "migration",
    "schedule", "tomorrow",   "lunch",     "offsite", "contract",  "signed",   "reminder",
    "your",     "order",      "has",       "shipped", "security",  "alert",    "weekly",
    "digest",   "newsletter", "feedback",  "request", "access",    "proposal", "minutes",
    "travel",   "expenses",   "Q3",        "v2.1",    "RFC",       "IMAP",     "deadline",
    "urgent",   "for",        "and",       "on",      "with",      "status",   "plan",
    "customer", "ticket",     "#4521",     "(action", "required)", "re-run",   "CI",
    "pipeline", "results",    "photos",    "weekend", "holiday",   "party",    "call"};

static const char *const subject_prefixes[] = {
    "Re: ", "RE: ",  "Fwd: ", "AW: ", "Re: Re: ", "[dev] ", "[announce] ", "Re: [PATCH v3 2/7] ",
    "FW: ", "Antw: "};

static const char *const intl_subjects[] = {
    "Gr\303\274\303\237e aus M\303\274nchen",
    "R\303\251union de l'\303\251quipe lundi",
    ("\320\237\321\200\320\270\320\262\320\265\321\202, \320\272\320\260\320\272 "
     "\320\264\320\265\320\273\320\260?"),
    ("\344\274\232\350\255\260\343\201\256\350\255\260\351\241\214\343\201\253\343\201"
     "\244\343\201\204\343\201\246"),
    "\302\241Feliz cumplea\303\261os, Mar\303\255a!",
    "Za\305\274\303\263\305\202\304\207 g\304\231\305\233l\304\205 ja\305\272\305\204",
    "Caf\303\251 \342\230\225 tomorrow? \342\200\224 the usual place",
    ("Rechnung Nr. 2024-0815 f\303\274r Ihre Bestellung \342\200\223 bitte pr\303\274"
     "fen Sie die Anlage"),
    "\360\237\216\211 Your order has shipped \360\237\223\246"};

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const weekdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const int zones[] = {0, 0, 100, 200, -500, -400, -700, -800, 530, 900, 800, 1000};
static const char *const zone_comments[] = {" (UTC)", " (CET)", " (PST)", " (GMT)"};

/* ---------------------------------------------------------------------- */
/* Dates, flags                                                           */
/* ---------------------------------------------------------------------- */

static void put_zone(gen_writer *w, int z)
{
    putc_(w, z < 0 ? '-' : '+');
    int a = z < 0 ? -z : z;
    char tmp[5] = {(char)('0' + a / 1000), (char)('0' + a / 100 % 10), (char)('0' + a / 10 % 10),
                   (char)('0' + a % 10), 0};
    puts_(w, tmp);
}

/* INTERNALDATE: date-time = DQUOTE date-day-fixed "-" date-month "-"
 * date-year SP time SP zone DQUOTE (RFC 9051 section 9). */
static void put_internaldate(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    uint32_t day = between(r, 1, 28);
    int z = PICK(r, zones);
    const char *month = PICK(r, months);
    uint32_t year = between(r, 2012, 2025), h = below(r, 24), m = below(r, 60), sec = below(r, 60);
    if (w->dialect == D_UPPER) /* date-day-fixed = (SP DIGIT) / 2DIGIT */
        puts_(w, sfmt(w, "\"%2u-%s-%u %02u:%02u:%02u ", day, month, year, h, m, sec));
    else
        puts_(w, sfmt(w, "\"%02u-%s-%u %02u:%02u:%02u ", day, month, year, h, m, sec));
    put_zone(w, z);
    putc_(w, '"');
}

/* The Date: header as the envelope carries it (RFC 5322, as sent). */
static const char *make_date(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    int z = PICK(r, zones);
    char zone[16];
    snprintf(zone, sizeof(zone), "%c%04d", z < 0 ? '-' : '+', z < 0 ? -z : z);
    const char *comment = chance(r, 150) ? PICK(r, zone_comments) : "";
    if (chance(r, 80)) /* no day of week */
        return sfmt(w, "%u %s %u %02u:%02u:%02u %s%s", between(r, 1, 28), PICK(r, months),
                    between(r, 2012, 2025), below(r, 24), below(r, 60), below(r, 60), zone,
                    comment);
    return sfmt(w, "%s, %u %s %u %02u:%02u:%02u %s%s", PICK(r, weekdays), between(r, 1, 28),
                PICK(r, months), between(r, 2012, 2025), below(r, 24), below(r, 60), below(r, 60),
                zone, comment);
}

static void put_flags(gen_writer *w)
{
    static const char *const keywords[] = {"$Forwarded", "$MDNSent",   "$Junk",     "$NotJunk",
                                           "NonJunk",    "$label1",    "$label3",   "Work",
                                           "Personal",   "$Important", "$Phishing", "Old"};
    gen_rng *r = &w->rnd;
    int n = 0;
    puts_(w, "FLAGS (");
#define FLAG(p, name)                                                                              \
    do {                                                                                           \
        if (chance(r, (p))) {                                                                      \
            if (n++)                                                                               \
                putc_(w, ' ');                                                                     \
            puts_(w, (name));                                                                      \
        }                                                                                          \
    } while (0)
    FLAG(720, "\\Seen");
    FLAG(150, "\\Answered");
    FLAG(60, "\\Flagged");
    FLAG(10, "\\Deleted");
    FLAG(8, "\\Draft");
    if (w->dialect == D_DOVECOT)
        FLAG(20, "\\Recent");
    int extra = chance(r, 250) ? (int)between(r, 1, 3) : 0;
    for (int i = 0; i < extra; i++)
        FLAG(1000, PICK(r, keywords));
#undef FLAG
    putc_(w, ')');
}

/* ---------------------------------------------------------------------- */
/* ENVELOPE                                                               */
/* ---------------------------------------------------------------------- */

static void lower_ascii(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < cap; i++) {
        char c = src[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (c == ' ' || c == '\'')
            c = '-';
        dst[i] = c;
    }
    dst[i] = '\0';
}

/* address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")" */
static void put_person(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    const char *first = PICK(r, first_names);
    const char *last = PICK(r, last_names);
    char lf[32], ll[32];
    lower_ascii(lf, sizeof(lf), first);
    lower_ascii(ll, sizeof(ll), last);
    const char *name;
    uint32_t k = below(r, 1000);
    if (k < 150)
        name = NULL;
    else if (k < 600)
        name = sfmt(w, "%s %s", first, last);
    else if (k < 680)
        name = sfmt(w, "%s, %s", last, first);
    else if (k < 720)
        name = sfmt(w, "%s \"%s\" %s", first, PICK(r, words), last); /* escaped quotes */
    else if (k < 740)
        name = sfmt(w, "CORP\\%s%c", ll, lf[0]); /* escaped backslash */
    else if (k < 890)
        name = encode_words(w, PICK(r, intl_names), 0);
    else if (k < 970)
        name = encode_words(w, PICK(r, intl_names), 1);
    else if (k < 985)
        name = sfmt(w, "=?iso-8859-1?q?%s_=E9ric?=", first); /* Latin-1 Q word */
    else
        name = PICK(r, intl_names); /* raw 8-bit: sent as a literal */
    const char *mailbox;
    k = below(r, 100);
    if (k < 55)
        mailbox = sfmt(w, "%s.%s", lf, ll);
    else if (k < 75)
        mailbox = sfmt(w, "%c%s", lf[0], ll);
    else if (k < 85)
        mailbox = sfmt(w, "%s+%s", lf, PICK(r, words));
    else
        mailbox = PICK(r, robots);
    putc_(w, '(');
    put_nstring(w, name);
    puts_(w, " NIL ");
    put_string(w, mailbox);
    putc_(w, ' ');
    put_string(w, PICK(r, hosts));
    putc_(w, ')');
    w->s->addresses++;
}

/* env-to etc. = "(" 1*address ")" / nil; groups per RFC 9051 section 7.5.2. */
static void put_address_list(gen_writer *w, uint32_t count, int group_permille)
{
    gen_rng *r = &w->rnd;
    if (count == 0) {
        puts_(w, "NIL");
        return;
    }
    putc_(w, '(');
    if (chance(r, (uint32_t)group_permille)) {
        int undisclosed = chance(r, 600);
        puts_(w,
              undisclosed ? "(NIL NIL \"undisclosed-recipients\" NIL)" : "(NIL NIL \"team\" NIL)");
        w->s->addresses++;
        if (!undisclosed)
            for (uint32_t i = 0; i < count; i++)
                put_person(w);
        puts_(w, "(NIL NIL NIL NIL)");
        w->s->addresses++;
    } else {
        for (uint32_t i = 0; i < count; i++)
            put_person(w);
    }
    putc_(w, ')');
}

static uint32_t recipient_count(gen_rng *r)
{
    uint32_t k = below(r, 1000);
    if (k < 700)
        return 1;
    if (k < 900)
        return between(r, 2, 4);
    if (k < 980)
        return between(r, 5, 12);
    return between(r, 20, 40);
}

static const char *make_message_id(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    char rnd[48];
    size_t n = between(r, 20, 44);
    for (size_t i = 0; i < n; i++) {
        char c = b64_alphabet[below(r, 62)];
        rnd[i] = c;
    }
    rnd[n] = '\0';
    switch (below(r, 4)) {
    case 0:
        return sfmt(w, "<CA+%s@mail.gmail.com>", rnd);
    case 1:
        return sfmt(w, "<%u%02u%02u%02u%02u.%u.%s@%s>", between(r, 2012, 2025), between(r, 1, 12),
                    between(r, 1, 28), below(r, 24), below(r, 60), below(r, 100000), rnd,
                    PICK(r, hosts));
    case 2:
        return sfmt(w, "<%08x-%04x-%04x-%04x-%012llx@%s>", (unsigned)rng_next(r), below(r, 65536),
                    below(r, 65536), below(r, 65536),
                    (unsigned long long)(rng_next(r) & 0xffffffffffffu), PICK(r, hosts));
    default:
        return sfmt(w, "<%s.fsf@%s>", rnd, PICK(r, hosts));
    }
}

/* Bounded strcat: appends src at buf[o], returns the new length. */
static size_t append(char *buf, size_t cap, size_t o, const char *src)
{
    while (*src != '\0' && o + 1 < cap)
        buf[o++] = *src++;
    buf[o] = '\0';
    return o;
}

static const char *make_subject(gen_writer *w, int *reply)
{
    gen_rng *r = &w->rnd;
    *reply = 0;
    uint32_t k = below(r, 1000);
    if (k < 5)
        return NULL;
    if (k < 15)
        return "";
    if (k < 130)
        return encode_words(w, PICK(r, intl_subjects), chance(r, 300));
    if (k < 160)
        return PICK(r, intl_subjects); /* raw 8-bit: literal */
    char buf[512];
    size_t o = 0;
    buf[0] = '\0';
    if (chance(r, 350)) {
        const char *pre = PICK(r, subject_prefixes);
        *reply = pre[0] == 'R' || pre[0] == 'A';
        o = append(buf, sizeof(buf), o, pre);
    }
    uint32_t n = between(r, 2, 12);
    for (uint32_t i = 0; i < n; i++) {
        const char *word = PICK(r, words);
        if (i != 0) {
            o = append(buf, sizeof(buf), o, " ");
        } else if (word[0] >= 'a' && word[0] <= 'z') {
            char cap[2] = {(char)(word[0] - 'a' + 'A'), '\0'};
            o = append(buf, sizeof(buf), o, cap);
            word++;
        }
        o = append(buf, sizeof(buf), o, word);
    }
    if (chance(r, 40)) { /* quotes inside the subject: escaped in the quoted string */
        o = append(buf, sizeof(buf), o, " \"");
        o = append(buf, sizeof(buf), o, PICK(r, words));
        o = append(buf, sizeof(buf), o, "\"");
    }
    if (chance(r, 10)) { /* backslashes: escaped too */
        o = append(buf, sizeof(buf), o, " in C:\\Users\\");
        o = append(buf, sizeof(buf), o, PICK(r, words));
    }
    return sfmt(w, "%s", buf);
}

/* envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
 *   env-reply-to SP env-to SP env-cc SP env-bcc SP env-in-reply-to SP
 *   env-message-id ")"                                  (RFC 9051 section 9) */
static void put_envelope(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    int reply;
    putc_(w, '(');
    put_nstring(w, chance(r, 3) ? NULL : make_date(w));
    putc_(w, ' ');
    put_nstring(w, make_subject(w, &reply));
    putc_(w, ' ');
    /* from; sender and reply-to repeat it, as servers fill them in */
    size_t from_start = w->cur->len;
    put_address_list(w, 1, 0);
    size_t from_len = w->cur->len - from_start;
    char from[4096];
    int have_from = from_len < sizeof(from) && !w->failed;
    if (have_from)
        memcpy(from, w->cur->p + from_start, from_len);
    for (int i = 0; i < 2; i++) {
        putc_(w, ' ');
        if (have_from && !(i == 0 && chance(r, 80)) && !(i == 1 && chance(r, 120))) {
            put(w, from, from_len);
            w->s->addresses++;
            if (memchr(from, '\r', from_len) != NULL) /* it held a literal */
                w->s->literals++;
        } else {
            put_address_list(w, 1, 0); /* list bounce address / a different reply-to */
        }
    }
    putc_(w, ' ');
    put_address_list(w, recipient_count(r), 20);
    putc_(w, ' ');
    put_address_list(w, chance(r, 300) ? between(r, 1, 6) : 0, 0);
    putc_(w, ' ');
    put_address_list(w, chance(r, 30) ? 1 : 0, 0);
    putc_(w, ' ');
    put_nstring(w, reply || chance(r, 50) ? make_message_id(w) : NULL);
    putc_(w, ' ');
    put_nstring(w, chance(r, 5) ? NULL : make_message_id(w));
    putc_(w, ')');
}

/* ---------------------------------------------------------------------- */
/* BODYSTRUCTURE                                                          */
/* ---------------------------------------------------------------------- */

/* One single-part body (body-type-basic / body-type-text, RFC 9051
 * section 9), with its extension data. */
typedef struct gen_leaf {
    const char *type, *subtype;
    const char *params[8]; /* attribute, value, ... */
    int nparams;           /* number of strings in params */
    const char *id, *description, *encoding;
    uint64_t size;
    int text; /* emit body-fld-lines */
    uint64_t lines;
    const char *md5;
    const char *disposition; /* NULL: NIL */
    const char *dsp_params[4];
    int ndsp;
    int lang; /* 0 NIL, 1 "en", 2 ("en" "de") */
} gen_leaf;

static void put_params(gen_writer *w, const char *const *kv, int n)
{
    if (n == 0) {
        puts_(w, "NIL");
        return;
    }
    putc_(w, '(');
    for (int i = 0; i < n; i++) {
        if (i)
            putc_(w, ' ');
        if (i % 2 == 0)
            put_token(w, kv[i]);
        else
            put_string(w, kv[i]);
    }
    putc_(w, ')');
}

static void put_disposition(gen_writer *w, const char *dsp, const char *const *kv, int n)
{
    if (dsp == NULL) {
        puts_(w, "NIL");
        return;
    }
    putc_(w, '(');
    put_token(w, dsp);
    putc_(w, ' ');
    put_params(w, kv, n);
    putc_(w, ')');
}

static void put_lang(gen_writer *w, int lang)
{
    puts_(w, lang == 0 ? "NIL" : lang == 1 ? "\"en\"" : "(\"en\" \"de\")");
}

/* Single-part extension: md5 dsp lang [loc]. Gmail omits body-fld-loc. */
static void put_leaf_ext(gen_writer *w, const gen_leaf *l)
{
    putc_(w, ' ');
    put_nstring(w, l->md5);
    putc_(w, ' ');
    put_disposition(w, l->disposition, l->dsp_params, l->ndsp);
    putc_(w, ' ');
    put_lang(w, l->lang);
    if (w->dialect != D_GMAIL)
        puts_(w, " NIL");
}

static void put_leaf(gen_writer *w, const gen_leaf *l)
{
    putc_(w, '(');
    put_token(w, l->type);
    putc_(w, ' ');
    put_token(w, l->subtype);
    putc_(w, ' ');
    put_params(w, l->params, l->nparams);
    putc_(w, ' ');
    put_nstring(w, l->id);
    putc_(w, ' ');
    put_nstring(w, l->description);
    putc_(w, ' ');
    put_token(w, l->encoding);
    putc_(w, ' ');
    put_u64(w, l->size);
    if (l->text) {
        putc_(w, ' ');
        put_u64(w, l->lines);
    }
    put_leaf_ext(w, l);
    putc_(w, ')');
    w->s->body_nodes++;
}

static const char *make_boundary(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    switch (below(r, 4)) {
    case 0:
        return sfmt(w, "000000000000%04x%08x", below(r, 65536), (unsigned)rng_next(r));
    case 1:
        return sfmt(w, "----=_Part_%u_%u.%llu", below(r, 100000), below(r, 1000000000),
                    (unsigned long long)(rng_next(r) % 10000000000000u));
    case 2:
        return sfmt(w, "_000_%08X%04X%s_", (unsigned)rng_next(r), below(r, 65536),
                    "EXCHANGE2016exampleorg");
    default:
        return sfmt(w, "=-%016llx", (unsigned long long)rng_next(r));
    }
}

/* Closes a multipart: SP subtype SP params SP dsp SP lang [SP loc] ")". */
static void close_multipart(gen_writer *w, const char *subtype, const char *const *extra,
                            int nextra)
{
    const char *kv[8];
    int n = 0;
    for (int i = 0; i < nextra && n < 6; i++)
        kv[n++] = extra[i];
    kv[n++] = "boundary";
    kv[n++] = make_boundary(w);
    putc_(w, ' ');
    put_token(w, subtype);
    putc_(w, ' ');
    put_params(w, kv, n);
    puts_(w, " NIL NIL");
    if (w->dialect != D_GMAIL)
        puts_(w, " NIL");
    putc_(w, ')');
    w->s->body_nodes++;
}

static const char *charset(gen_writer *w)
{
    static const char *const sets[] = {"utf-8",      "utf-8",        "UTF-8", "us-ascii",
                                       "iso-8859-1", "windows-1252", "utf-8", "ISO-8859-15"};
    return PICK(&w->rnd, sets);
}

/* A text/plain or text/html part; returns its size. */
static uint64_t text_part(gen_writer *w, const char *subtype, int big)
{
    gen_rng *r = &w->rnd;
    gen_leaf l;
    memset(&l, 0, sizeof(l));
    l.type = "text";
    l.subtype = subtype;
    l.params[l.nparams++] = "charset";
    l.params[l.nparams++] = charset(w);
    if (subtype[0] == 'p' && chance(r, 200)) {
        l.params[l.nparams++] = "format";
        l.params[l.nparams++] = "flowed";
        if (chance(r, 500)) {
            l.params[l.nparams++] = "delsp";
            l.params[l.nparams++] = "yes";
        }
    }
    static const char *const encs[] = {"7bit", "quoted-printable", "quoted-printable", "base64",
                                       "8bit"};
    l.encoding = PICK(r, encs);
    l.size = big ? between(r, 2000, 120000) : between(r, 120, 9000);
    l.text = 1;
    l.lines = l.size / between(r, 40, 76) + 1;
    if (chance(r, 60)) {
        l.disposition = "inline";
        l.ndsp = 0;
    }
    if (chance(r, 30))
        l.lang = (int)between(r, 1, 2);
    if (chance(r, 5))
        l.md5 = "Q2hlY2sgSW50ZWdyaXR5IQ==";
    put_leaf(w, &l);
    return l.size;
}

static uint64_t attachment(gen_writer *w)
{
    static const struct {
        const char *type, *subtype, *ext;
    } kinds[] = {
        {"application", "pdf", "pdf"},
        {"application", "vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"},
        {"application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"},
        {"application", "zip", "zip"},
        {"application", "octet-stream", "bin"},
        {"image", "png", "png"},
        {"image", "jpeg", "jpg"},
        {"text", "csv", "csv"},
        {"audio", "mpeg", "mp3"}};
    static const char *const stems[] = {"Report_Q3_2024",      "invoice-0815", "scan0001",
                                        "Meeting notes",       "photo",        "budget (final)",
                                        "IMG_20240612_101544", "contract v2",  "logs"};
    static const char *const intl_stems[] = {"Pr\303\244sentation", "R\303\251sum\303\251",
                                             "\350\246\213\347\251\215\346\233\270",
                                             "\320\236\321\202\321\207\321\221\321\202"};
    gen_rng *r = &w->rnd;
    int ki = (int)below(r, (uint32_t)COUNT(kinds));
    gen_leaf l;
    memset(&l, 0, sizeof(l));
    l.type = kinds[ki].type;
    l.subtype = kinds[ki].subtype;
    const char *fname;
    const char *fname_key = "filename", *name_key = "name";
    uint32_t k = below(r, 100);
    if (k < 75) {
        fname = sfmt(w, "%s.%s", PICK(r, stems), kinds[ki].ext);
    } else if (k < 90) {
        fname = encode_words(w, sfmt(w, "%s.%s", PICK(r, intl_stems), kinds[ki].ext), k & 1);
    } else {
        /* RFC 2231 extended parameter, percent-encoded UTF-8 */
        fname_key = "filename*";
        name_key = "name*";
        fname = sfmt(w, "utf-8''R%%C3%%A9sum%%C3%%A9-%u.%s", below(r, 100), kinds[ki].ext);
    }
    if (l.type[0] == 't') {
        l.params[l.nparams++] = "charset";
        l.params[l.nparams++] = "utf-8";
    }
    l.params[l.nparams++] = name_key;
    l.params[l.nparams++] = fname;
    l.encoding = l.type[0] == 't' ? "quoted-printable" : "base64";
    l.size = chance(r, 700) ? between(r, 4000, 400000) : between(r, 400000, 9000000);
    l.text = l.type[0] == 't';
    l.lines = l.size / 76 + 1;
    l.disposition = "attachment";
    l.dsp_params[l.ndsp++] = fname_key;
    l.dsp_params[l.ndsp++] = fname;
    if (chance(r, 300)) {
        l.dsp_params[l.ndsp++] = "size";
        l.dsp_params[l.ndsp++] = sfmt(w, "%llu", (unsigned long long)(l.size * 3 / 4));
    }
    if (chance(r, 100))
        l.description = fname;
    put_leaf(w, &l);
    return l.size;
}

static uint64_t inline_image(gen_writer *w, unsigned index)
{
    gen_rng *r = &w->rnd;
    gen_leaf l;
    memset(&l, 0, sizeof(l));
    l.type = "image";
    l.subtype = chance(r, 500) ? "png" : "jpeg";
    const char *name = sfmt(w, "image%03u.%s", index + 1, l.subtype[0] == 'p' ? "png" : "jpg");
    l.params[l.nparams++] = "name";
    l.params[l.nparams++] = name;
    l.id = chance(r, 500) ? sfmt(w, "<image%03u.png@01DA%04X.%08X>", index + 1, below(r, 65536),
                                 (unsigned)rng_next(r))
                          : sfmt(w, "<ii_l%08x%u>", (unsigned)rng_next(r), index);
    l.encoding = "base64";
    l.size = between(r, 2000, 250000);
    l.disposition = "inline";
    l.dsp_params[l.ndsp++] = "filename";
    l.dsp_params[l.ndsp++] = name;
    put_leaf(w, &l);
    return l.size;
}

static uint64_t alternative(gen_writer *w)
{
    uint64_t size = 0;
    putc_(w, '(');
    size += text_part(w, "plain", 0);
    size += text_part(w, "html", 1);
    close_multipart(w, "alternative", NULL, 0);
    return size + 300;
}

static uint64_t body_of_shape(gen_writer *w, gen_shape shape, int depth);

/* message/rfc822: body-type-msg = media-message SP body-fields SP envelope
 *   SP body SP body-fld-lines                          (RFC 9051 section 9) */
static uint64_t forwarded(gen_writer *w)
{
    gen_rng *r = &w->rnd;
    putc_(w, '(');
    put_token(w, "message");
    putc_(w, ' ');
    put_token(w, "rfc822");
    putc_(w, ' ');
    if (chance(r, 500)) {
        const char *kv[2] = {"name", "Forwarded message.eml"};
        put_params(w, kv, 2);
    } else {
        puts_(w, "NIL");
    }
    puts_(w, " NIL NIL ");
    put_token(w, "7bit");
    putc_(w, ' ');
    /* body-fld-octets precedes the envelope and body it measures: write a
     * placeholder "0" and patch in the real size below */
    size_t start = w->cur->len;
    put_u64(w, 0);
    size_t num_end = w->cur->len;
    putc_(w, ' ');
    put_envelope(w);
    putc_(w, ' ');
    static const gen_shape inner[] = {GEN_SHAPE_PLAIN, GEN_SHAPE_ALTERNATIVE, GEN_SHAPE_MIXED,
                                      GEN_SHAPE_HTML};
    uint64_t size = body_of_shape(w, PICK(r, inner), 1) + between(r, 800, 4000);
    putc_(w, ' ');
    put_u64(w, size / 60 + 1); /* body-fld-lines */
    gen_leaf ext;
    memset(&ext, 0, sizeof(ext));
    if (chance(r, 400)) {
        ext.disposition = "attachment";
        ext.dsp_params[0] = "filename";
        ext.dsp_params[1] = "Forwarded message.eml";
        ext.ndsp = 2;
    }
    put_leaf_ext(w, &ext);
    putc_(w, ')');
    w->s->body_nodes++;
    /* patch the size: rewrite the placeholder "0" with the real digits */
    if (!w->failed) {
        char digits[24];
        int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)size);
        size_t tail = w->cur->len - num_end;
        out_reserve(w, w->cur, (size_t)n + 1);
        if (!w->failed) {
            char *p = w->cur->p;
            memmove(p + start + (size_t)n, p + num_end, tail);
            memcpy(p + start, digits, (size_t)n);
            w->cur->len = start + (size_t)n + tail;
            p[w->cur->len] = '\0';
        }
    }
    return size;
}

static uint64_t body_of_shape(gen_writer *w, gen_shape shape, int depth)
{
    gen_rng *r = &w->rnd;
    uint64_t size = 0;
    switch (shape) {
    case GEN_SHAPE_PLAIN:
        return text_part(w, "plain", 1);
    case GEN_SHAPE_HTML:
        return text_part(w, "html", 1);
    case GEN_SHAPE_ALTERNATIVE:
        return alternative(w);
    case GEN_SHAPE_RELATED: {
        putc_(w, '(');
        size += text_part(w, "plain", 0);
        putc_(w, '(');
        size += text_part(w, "html", 1);
        unsigned images = between(r, 1, 4);
        for (unsigned i = 0; i < images; i++)
            size += inline_image(w, i);
        const char *type[2] = {"type", "text/html"};
        close_multipart(w, "related", type, 2);
        close_multipart(w, "alternative", NULL, 0);
        return size + 600;
    }
    case GEN_SHAPE_MIXED: {
        putc_(w, '(');
        size += chance(r, 600) ? alternative(w) : text_part(w, "plain", 0);
        unsigned n = depth > 0 ? 1 : between(r, 1, 4);
        for (unsigned i = 0; i < n; i++)
            size += attachment(w);
        close_multipart(w, "mixed", NULL, 0);
        return size + 400;
    }
    case GEN_SHAPE_SIGNED: {
        putc_(w, '(');
        size += chance(r, 500) ? text_part(w, "plain", 0) : alternative(w);
        gen_leaf l;
        memset(&l, 0, sizeof(l));
        int pgp = chance(r, 600);
        l.type = "application";
        l.subtype = pgp ? "pgp-signature" : "pkcs7-signature";
        l.params[l.nparams++] = "name";
        l.params[l.nparams++] = pgp ? "signature.asc" : "smime.p7s";
        l.description = pgp ? "OpenPGP digital signature" : "S/MIME Cryptographic Signature";
        l.encoding = pgp ? "7bit" : "base64";
        l.size = pgp ? between(r, 480, 900) : between(r, 3000, 7000);
        l.disposition = "attachment";
        l.dsp_params[l.ndsp++] = "filename";
        l.dsp_params[l.ndsp++] = l.params[1];
        put_leaf(w, &l);
        size += l.size;
        const char *kv[4] = {"micalg", pgp ? "pgp-sha256" : "sha-256", "protocol",
                             pgp ? "application/pgp-signature" : "application/pkcs7-signature"};
        close_multipart(w, "signed", kv, 4);
        return size + 500;
    }
    case GEN_SHAPE_FORWARD:
        if (depth > 0)
            return text_part(w, "plain", 0);
        putc_(w, '(');
        size += text_part(w, "plain", 0);
        size += forwarded(w);
        close_multipart(w, "mixed", NULL, 0);
        return size + 400;
    case GEN_SHAPE_INVITE: {
        putc_(w, '(');
        putc_(w, '(');
        size += text_part(w, "plain", 0);
        size += text_part(w, "html", 0);
        gen_leaf l;
        memset(&l, 0, sizeof(l));
        l.type = "text";
        l.subtype = "calendar";
        l.params[l.nparams++] = "charset";
        l.params[l.nparams++] = "utf-8";
        l.params[l.nparams++] = "method";
        l.params[l.nparams++] = "REQUEST";
        l.encoding = "7bit";
        l.size = between(r, 1500, 6000);
        l.text = 1;
        l.lines = l.size / 50;
        put_leaf(w, &l);
        size += l.size;
        close_multipart(w, "alternative", NULL, 0);
        l.type = "application";
        l.subtype = "ics";
        l.params[0] = "name";
        l.params[1] = "invite.ics";
        l.nparams = 2;
        l.encoding = "base64";
        l.text = 0;
        l.disposition = "attachment";
        l.dsp_params[0] = "filename";
        l.dsp_params[1] = "invite.ics";
        l.ndsp = 2;
        put_leaf(w, &l);
        size += l.size * 4 / 3;
        close_multipart(w, "mixed", NULL, 0);
        return size + 700;
    }
    case GEN_SHAPE_COUNT:
        break;
    }
    return text_part(w, "plain", 1);
}

static gen_shape pick_shape(gen_rng *r)
{
    /* permille thresholds: plain 25%, html 6%, alternative 32%, related 7%,
     * mixed 18%, signed 4%, forward 5%, invite 3% */
    static const uint32_t upto[GEN_SHAPE_COUNT] = {250, 310, 630, 700, 880, 920, 970, 1000};
    uint32_t k = below(r, 1000);
    for (int i = 0; i < GEN_SHAPE_COUNT; i++)
        if (k < upto[i])
            return (gen_shape)i;
    return GEN_SHAPE_PLAIN;
}

/* ---------------------------------------------------------------------- */
/* Streams                                                                */
/* ---------------------------------------------------------------------- */

static void writer_init(gen_writer *w, gen_stream *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    memset(w, 0, sizeof(*w));
    w->s = s;
    rng_seed(&w->rnd, seed);
    w->cur = &w->main;
}

static int writer_finish(gen_writer *w)
{
    free(w->side.p);
    if (w->failed) {
        free(w->main.p);
        memset(w->s, 0, sizeof(*w->s));
        return -1;
    }
    w->s->data = w->main.p;
    w->s->len = w->main.len;
    w->s->cap = w->main.cap;
    return 0;
}

/*
 * One metadata response:
 *   "*" SP nz-number SP "FETCH" SP "(" msg-att ")" CRLF  (RFC 9051 section 9)
 * with the items in the order the dialect's server uses.
 */
static void metadata_response(gen_writer *w, uint32_t seq, uint32_t uid, uint64_t modseq)
{
    gen_rng *r = &w->rnd;
    w->scratch_len = 0;
    uint32_t d = below(r, 100);
    w->dialect = d < 50 ? D_DOVECOT : d < 85 ? D_GMAIL : D_UPPER;

    /* the BODYSTRUCTURE first, into the side buffer */
    w->side.len = 0;
    w->cur = &w->side;
    gen_shape shape = pick_shape(r);
    w->s->shapes[shape]++;
    puts_(w, "BODYSTRUCTURE ");
    uint64_t size = body_of_shape(w, shape, 0) + between(r, 1500, 7000);
    w->cur = &w->main;
    if (w->failed)
        return;

    puts_(w, "* ");
    put_u64(w, seq);
    puts_(w, " FETCH (UID ");
    put_u64(w, uid);
    if (w->dialect == D_GMAIL) {
        puts_(w, " MODSEQ (");
        put_u64(w, modseq);
        puts_(w, ") INTERNALDATE ");
        put_internaldate(w);
        putc_(w, ' ');
        put_flags(w);
    } else if (w->dialect == D_UPPER) {
        putc_(w, ' ');
        put_flags(w);
        puts_(w, " MODSEQ (");
        put_u64(w, modseq);
        puts_(w, ") INTERNALDATE ");
        put_internaldate(w);
    } else {
        putc_(w, ' ');
        put_flags(w);
        puts_(w, " INTERNALDATE ");
        put_internaldate(w);
    }
    puts_(w, " RFC822.SIZE ");
    put_u64(w, size);
    puts_(w, " ENVELOPE ");
    put_envelope(w);
    putc_(w, ' ');
    if (!w->failed)
        put(w, w->side.p, w->side.len);
    if (w->dialect == D_DOVECOT) {
        puts_(w, " MODSEQ (");
        put_u64(w, modseq);
        putc_(w, ')');
    }
    puts_(w, ")\r\n");
    w->s->responses++;
    w->s->uid_sum += uid;
}

int gen_metadata(gen_stream *s, uint64_t seed, size_t target)
{
    gen_writer *w = malloc(sizeof(*w));
    if (w == NULL)
        return -1;
    writer_init(w, s, seed);
    out_reserve(w, &w->main, target + (target >> 4) + 65536);
    uint32_t seq = 0, uid = between(&w->rnd, 1, 5000);
    uint64_t modseq = between(&w->rnd, 1000, 900000);
    while (!w->failed && w->main.len < target) {
        seq++;
        uid += chance(&w->rnd, 200) ? between(&w->rnd, 2, 40) : 1;
        modseq += between(&w->rnd, 1, 9);
        metadata_response(w, seq, uid, modseq);
    }
    int rc = writer_finish(w);
    free(w);
    return rc;
}

/* Approximately 2^x for x >= 0 without libm: 2^floor(x) * (1 + frac). */
static double exp2_approx(double x)
{
    double p = 1.0;
    while (x >= 1.0) {
        p *= 2.0;
        x -= 1.0;
    }
    return p * (1.0 + x);
}

/* Approximately log2(v) for v >= 1, the inverse of exp2_approx. */
static double log2_approx(double v)
{
    double e = 0.0;
    while (v >= 2.0) {
        v /= 2.0;
        e += 1.0;
    }
    return e + (v - 1.0);
}

/* 64 KiB of base64 lines (76 characters + CRLF), the filler of bodies. */
#define POOL_LINES 840
#define POOL_SIZE (POOL_LINES * 78)

int gen_bodies(gen_stream *s, uint64_t seed, size_t target, size_t min_size, size_t max_size)
{
    if (min_size < 1024 || max_size < min_size)
        return -1;
    gen_writer *w = malloc(sizeof(*w));
    char *pool = malloc(POOL_SIZE);
    if (w == NULL || pool == NULL) {
        free(w);
        free(pool);
        return -1;
    }
    writer_init(w, s, seed);
    gen_rng *r = &w->rnd;
    for (size_t i = 0; i < POOL_LINES; i++) {
        for (size_t k = 0; k < 76; k++)
            pool[i * 78 + k] = b64_alphabet[below(r, 64)];
        pool[i * 78 + 76] = '\r';
        pool[i * 78 + 77] = '\n';
    }
    double span = log2_approx((double)max_size / (double)min_size);
    out_reserve(w, &w->main, target + target / 8 + max_size + 65536);
    s->body_min = UINT64_MAX;
    uint32_t seq = 0, uid = between(r, 1, 5000);
    while (!w->failed && s->body_bytes < target) {
        seq++;
        uid += chance(r, 100) ? between(r, 2, 9) : 1;
        double u = (double)(rng_next(r) >> 11) / 9007199254740992.0; /* [0, 1) */
        uint64_t size = (uint64_t)((double)min_size * exp2_approx(u * span));
        if (size < min_size)
            size = min_size;
        if (size > max_size)
            size = max_size;
        w->scratch_len = 0;
        puts_(w, "* ");
        put_u64(w, seq);
        puts_(w, " FETCH (UID ");
        put_u64(w, uid);
        puts_(w, " BODY[] {");
        put_u64(w, size);
        puts_(w, "}\r\n");
        /* a header block, then base64 lines from the pool */
        const char *head =
            sfmt(w,
                 "Return-Path: <%s@%s>\r\nReceived: from mx.%s by imap.example.org with LMTP id "
                 "%08x; %s\r\nFrom: %s %s <%s@%s>\r\nTo: undisclosed-recipients:;\r\nSubject: %s "
                 "%s %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: "
                 "multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\nContent-Type: "
                 "application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                 PICK(r, robots), PICK(r, hosts), PICK(r, hosts), (unsigned)rng_next(r),
                 make_date(w), PICK(r, first_names), PICK(r, last_names), PICK(r, robots),
                 PICK(r, hosts), PICK(r, words), PICK(r, words), PICK(r, words), make_date(w),
                 make_message_id(w), "b1_example", "b1_example");
        size_t head_len = strlen(head);
        if (head_len > size - 2)
            head_len = (size_t)size - 2;
        put(w, head, head_len);
        size_t left = (size_t)size - head_len - 2;
        size_t off = (size_t)below(r, POOL_LINES) * 78;
        while (left > 0 && !w->failed) {
            size_t n = POOL_SIZE - off < left ? POOL_SIZE - off : left;
            put(w, pool + off, n);
            left -= n;
            off = 0;
        }
        puts_(w, "\r\n)\r\n");
        s->responses++;
        s->uid_sum += uid;
        s->body_bytes += size;
        if (size < s->body_min)
            s->body_min = size;
        if (size > s->body_max)
            s->body_max = size;
    }
    free(pool);
    int rc = writer_finish(w);
    free(w);
    return rc;
}

void gen_stream_free(gen_stream *s)
{
    if (s == NULL)
        return;
    free(s->data);
    memset(s, 0, sizeof(*s));
}

const char *gen_shape_name(int shape)
{
    static const char *const names[GEN_SHAPE_COUNT] = {"text/plain",
                                                       "text/html",
                                                       "multipart/alternative",
                                                       "alternative + related (inline images)",
                                                       "multipart/mixed (attachments)",
                                                       "multipart/signed",
                                                       "mixed + message/rfc822 (forward)",
                                                       "mixed + text/calendar (invitation)"};
    return shape >= 0 && shape < GEN_SHAPE_COUNT ? names[shape] : "?";
}

/* ---------------------------------------------------------------------- */
/* bench_gen: the generator as a program                                  */
/* ---------------------------------------------------------------------- */

#ifndef GEN_EMBEDDED

static void summary(const char *what, const gen_stream *s)
{
    printf("%s: %.1f MB, %llu responses (%.0f bytes each on average)\n", what, (double)s->len / 1e6,
           (unsigned long long)s->responses,
           s->responses ? (double)s->len / (double)s->responses : 0.0);
}

int main(int argc, char **argv)
{
    size_t mib = 10;
    uint64_t seed = 1;
    const char *dump = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            mib = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
            dump = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_gen [--size MiB] [--seed N] [--dump metadata|bodies]\n"
                            "  without --dump: print what the streams contain\n"
                            "  --dump: write the stream (MiB of it) to stdout\n");
            return 2;
        }
    }
    if (mib == 0)
        mib = 1;
    size_t target = mib << 20;
    gen_stream s;
    if (dump != NULL) {
        int rc;
        if (strcmp(dump, "metadata") == 0)
            rc = gen_metadata(&s, seed, target);
        else if (strcmp(dump, "bodies") == 0)
            rc = gen_bodies(&s, seed, target, 10000, 10000000);
        else {
            fprintf(stderr, "bench_gen: --dump takes metadata or bodies\n");
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "bench_gen: out of memory\n");
            return 1;
        }
        size_t len = s.len;
        size_t done = fwrite(s.data, 1, len, stdout);
        gen_stream_free(&s);
        return done == len ? 0 : 1;
    }
    if (gen_metadata(&s, seed, target) != 0) {
        fprintf(stderr, "bench_gen: out of memory\n");
        return 1;
    }
    summary("metadata stream", &s);
    printf("  %llu addresses, %llu body-structure nodes, %llu literals, %llu encoded words\n",
           (unsigned long long)s.addresses, (unsigned long long)s.body_nodes,
           (unsigned long long)s.literals, (unsigned long long)s.encoded_words);
    for (int i = 0; i < GEN_SHAPE_COUNT; i++)
        printf("  %5.1f%%  %s\n", 100.0 * (double)s.shapes[i] / (double)s.responses,
               gen_shape_name(i));
    const char *end = memchr(s.data, '\n', s.len);
    size_t first = end != NULL ? (size_t)(end - s.data) + 1 : s.len;
    printf("  first response (%zu bytes):\n    %.*s", first, (int)(first < 600 ? first : 600),
           s.data);
    if (first > 600)
        printf("...\n");
    gen_stream_free(&s);
    if (gen_bodies(&s, seed, target * 4, 10000, 10000000) != 0) {
        fprintf(stderr, "bench_gen: out of memory\n");
        return 1;
    }
    summary("body-literal stream", &s);
    printf("  %.1f MB of literal bytes, %llu .. %llu bytes per literal\n",
           (double)s.body_bytes / 1e6, (unsigned long long)s.body_min,
           (unsigned long long)s.body_max);
    gen_stream_free(&s);
    return 0;
}

#endif
