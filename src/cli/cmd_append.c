/* SPDX-License-Identifier: MIT */
/*
 * `imapkit append MAILBOX [FILE... | -]`: messages from files, standard
 * input, Maildirs and mbox files into a mailbox (APPEND, RFC 9051 section
 * 6.3.12; MULTIAPPEND, RFC 3502, when offered: the library decides).
 *
 * The sources, in the order given:
 *   - a file: one message (a file whose first bytes are "From " is an mbox);
 *   - "-" (or no FILE at all): standard input, the same way;
 *   - a directory with cur/ or new/: a Maildir, every message in it, sorted
 *     by name within new/ then cur/; the flags of its names (":2,FRS",
 *     maildir.html "Info semantics") become IMAP flags, its mtime the
 *     internal date;
 *   - an mbox (mboxrd): split at "From " lines, each message without the
 *     blank line that separates it from the next, ">From " unquoted (one ">"
 *     taken off ">>...From " lines); the date of the "From " line becomes
 *     the internal date.
 *
 * Nothing is read into memory whole. Three passes over the bytes, each
 * with a fixed buffer: find the messages (mbox), count each message's
 * bytes as they will be sent, then send them through imk_append_msg's
 * read callback, which converts as it goes. The count must be known first
 * because an IMAP literal announces its size.
 *
 * Line ends: IMAP messages have CRLF line ends (RFC 5322 section 2.1,
 * RFC 9051 section 6.3.12). A message whose first line ends in LF (a Unix
 * file, every Maildir and mbox) has each bare LF sent as CRLF; one whose
 * first line ends in CRLF is taken as already in network form and sent
 * byte for byte (so binary content in it is not touched). A message with
 * NUL bytes goes as a literal8 (BINARY, RFC 3516).
 *
 * If a file changes between the count and the send, the send notices (too
 * few or too many bytes) and the APPEND is aborted: the command fails
 * rather than storing a truncated message.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "core.h"
#include "ctx.h"
#include "json.h"
#include "message.h"
#include "mime.h"
#include "xalloc.h"

#include "imapkit/client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char append_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] append [OPTIONS] MAILBOX [FILE... | -]\n"
    "\n"
    "Append messages to MAILBOX. Each FILE is one message (RFC 5322 format,\n"
    "e.g. a .eml file), or an mbox file (it starts with \"From \") holding many,\n"
    "or a Maildir directory (with cur/ and new/): every message in it, with the\n"
    "flags of the Maildir names (S \\Seen, R \\Answered, F \\Flagged, T \\Deleted,\n"
    "D \\Draft, P $Forwarded). \"-\", or no FILE, reads standard input. Files are\n"
    "streamed, never loaded whole; Unix line ends (LF) are sent as CRLF.\n"
    "\n"
    "Options:\n"
    "      --flags FLAGS   set these flags on every message: space- or comma-\n"
    "                      separated, e.g. '\\Seen $Work' (the backslash may be left\n"
    "                      out: seen,flagged)\n"
    "      --date DATE     the internal date of every message: 2026-01-15,\n"
    "                      '2026-01-15 10:30', 2026-01-15T10:30:00+01:00 (local time\n"
    "                      when no zone is given) or '15-Jan-2026 10:30:00 +0100';\n"
    "                      default: the mbox \"From \" line's date, a Maildir file's\n"
    "                      time, else now (the server's clock)\n"
    "  -h, --help          show this help and exit\n"
    "\n"
    "Output: one line per message with its new UID (when the server tells it,\n"
    "UIDPLUS), size and source; with --json one object per message {\"mailbox\",\n"
    "\"source\", \"message\", \"uid\", \"uidvalidity\", \"size\", \"flags\"}\n"
    "(docs/schema/append.schema.json). A progress bar shows on a terminal for\n"
    "many or big messages.\n"
    "\n"
    "Examples:\n"
    "  imapkit append INBOX message.eml\n"
    "  imapkit append --flags seen Archive ~/Maildir/.Old\n"
    "  imapkit append Imported mail.mbox\n"
    "  some-program | imapkit append Drafts -\n"
    "\n";

#define USAGE(...) cli_usage_error("imapkit append --help", __VA_ARGS__)

/* Messages per APPEND command (one MULTIAPPEND, or the library's series). */
#define BATCH 50
/* Flags from --flags at most. */
#define MAX_USER_FLAGS 32
/* Read buffer of each pass. */
#define CHUNK 65536
/* Progress bar from this many messages or bytes on. */
#define PROGRESS_MESSAGES 20
#define PROGRESS_BYTES ((uint64_t)4 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* Sources and messages                                                */
/* ------------------------------------------------------------------ */

typedef struct asrc {
    size_t name; /* offset of its name in run.names */
    int fd;      /* kept open (standard input); -1: opened when read */
    int stdin_src;
} asrc;

/* Maildir flag bits. */
#define MF_SEEN 1u
#define MF_ANSWERED 2u
#define MF_FLAGGED 4u
#define MF_DELETED 8u
#define MF_DRAFT 16u
#define MF_FORWARDED 32u

static const struct {
    char letter;
    unsigned bit;
    const char *flag;
} maildir_flags[] = {
    {'S', MF_SEEN, "\\Seen"},       {'R', MF_ANSWERED, "\\Answered"},
    {'F', MF_FLAGGED, "\\Flagged"}, {'T', MF_DELETED, "\\Deleted"},
    {'D', MF_DRAFT, "\\Draft"},     {'P', MF_FORWARDED, "$Forwarded"},
};
#define N_MAILDIR_FLAGS (sizeof(maildir_flags) / sizeof(maildir_flags[0]))

/* Conversion modes. */
#define XF_CRLF 1u   /* bare LF -> CRLF */
#define XF_UNFROM 2u /* mboxrd: ">From " at line start -> "From " */

typedef struct amsg {
    size_t src;
    uint64_t offset, length; /* the raw bytes in the file */
    uint64_t size;           /* bytes sent, after conversion */
    unsigned mode;           /* XF_* */
    unsigned flags;          /* MF_* */
    size_t index;            /* 1-based number in an mbox; 0 otherwise */
    char date[32];           /* internal date, "" for none */
    int binary;
} amsg;

typedef struct run {
    cli_ctx *ctx;
    const char *mailbox;
    cli_buf names; /* source names, NUL-terminated one after another */
    asrc *srcs;
    size_t nsrcs, srccap;
    amsg *msgs;
    size_t nmsgs, msgcap;
    const char *user_flags[MAX_USER_FLAGS];
    size_t n_user_flags;
    char date[32]; /* --date, "" for none */
    uint64_t total_bytes, sent_bytes;
    int progress;
    size_t appended;
    int tmp_fd; /* standard input copied, or -1 */
} run;

static int oom(void)
{
    cli_error("out of memory");
    return CLI_EXIT_PROTOCOL;
}

static const char *src_name(const run *r, size_t src)
{
    return r->names.data + r->srcs[src].name;
}

static int add_src(run *r, const char *name, int fd, int stdin_src, size_t *out)
{
    if (r->nsrcs == r->srccap) {
        size_t cap = r->srccap ? r->srccap * 2 : 16;
        void *p = r->srcs;
        if (cli_array_resize(&p, cap, sizeof(asrc)) != 0)
            return -1;
        r->srcs = p;
        r->srccap = cap;
    }
    asrc *s = &r->srcs[r->nsrcs];
    s->name = r->names.len;
    s->fd = fd;
    s->stdin_src = stdin_src;
    if (cli_buf_append(&r->names, name, strlen(name) + 1) != 0)
        return -1;
    *out = r->nsrcs++;
    return 0;
}

static amsg *add_msg(run *r)
{
    if (r->nmsgs == r->msgcap) {
        size_t cap = r->msgcap ? r->msgcap * 2 : 64;
        void *p = r->msgs;
        if (cli_array_resize(&p, cap, sizeof(amsg)) != 0)
            return NULL;
        r->msgs = p;
        r->msgcap = cap;
    }
    amsg *m = &r->msgs[r->nmsgs++];
    memset(m, 0, sizeof(*m));
    return m;
}

static int open_src(const run *r, size_t src)
{
    if (r->srcs[src].fd >= 0)
        return r->srcs[src].fd;
    return open(src_name(r, src), O_RDONLY);
}

static void close_src(const run *r, size_t src, int fd)
{
    if (fd >= 0 && r->srcs[src].fd < 0)
        close(fd);
}

/* pread, again when a signal interrupts it. */
static ssize_t pread_retry(int fd, void *buf, size_t n, uint64_t pos)
{
    ssize_t got;
    do
        got = pread(fd, buf, n, (off_t)pos);
    while (got < 0 && errno == EINTR);
    return got;
}

static int io_error(const char *what, const char *name)
{
    cli_error("append: cannot %s %s: %s", what, name, strerror(errno));
    return CLI_EXIT_IO;
}

/* open_src, reporting a failure to open: -1 then, whose exit status is
 * CLI_EXIT_IO. */
static int open_checked(const run *r, size_t src)
{
    int fd = open_src(r, src);
    if (fd < 0)
        io_error("open", src_name(r, src));
    return fd;
}

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time
 * SP zone DQUOTE (RFC 9051 section 9), written without the quotes. */
static void imap_date(char *out, size_t cap, int y, int mo, int d, int h, int mi, int s,
                      int zone_minutes)
{
    char sign = zone_minutes < 0 ? '-' : '+';
    int z = zone_minutes < 0 ? -zone_minutes : zone_minutes;
    snprintf(out, cap, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", d, month_names[mo - 1], y, h, mi,
             s, sign, z / 60, z % 60);
}

static long long tm_seconds(const struct tm *t)
{
    return cli_days_from_civil(t->tm_year + 1900LL, (unsigned)t->tm_mon + 1, (unsigned)t->tm_mday) *
               86400 +
           t->tm_hour * 3600LL + t->tm_min * 60LL + t->tm_sec;
}

/* The local zone's offset in minutes at local time y-mo-d h:mi:s. */
static int local_zone(int y, int mo, int d, int h, int mi, int s)
{
    struct tm t;
    memset(&t, 0, sizeof(t));
    t.tm_year = y - 1900;
    t.tm_mon = mo - 1;
    t.tm_mday = d;
    t.tm_hour = h;
    t.tm_min = mi;
    t.tm_sec = s;
    t.tm_isdst = -1;
    time_t when = mktime(&t);
    struct tm utc;
    if (when == (time_t)-1 || gmtime_r(&when, &utc) == NULL)
        return 0;
    return (int)((tm_seconds(&t) - tm_seconds(&utc)) / 60);
}

/* Read exactly n digits. */
static int digits_n(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

static int month_of(const char *p)
{
    for (int m = 0; m < 12; m++)
        if (strncasecmp(p, month_names[m], 3) == 0)
            return m + 1;
    return 0;
}

static int valid_fields(int y, int mo, int d, int h, int mi, int s, int zone)
{
    return y >= 1 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23 &&
           mi >= 0 && mi <= 59 && s >= 0 && s <= 60 && zone > -24 * 60 && zone < 24 * 60;
}

/* --date: ISO 8601 (date, date + time, zone optional) or the IMAP form. */
static int parse_user_date(const char *s, char *out, size_t cap)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, zone = 0, have_zone = 0;
    const char *p = s;
    if (is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) && p[4] == '-') {
        if (!digits_n(&p, 4, &y) || *p++ != '-' || !digits_n(&p, 2, &mo) || *p++ != '-' ||
            !digits_n(&p, 2, &d))
            return 0;
        if (*p == 'T' || *p == ' ') {
            p++;
            if (!digits_n(&p, 2, &h) || *p++ != ':' || !digits_n(&p, 2, &mi))
                return 0;
            if (*p == ':') {
                p++;
                if (!digits_n(&p, 2, &sec))
                    return 0;
            }
        }
        if (*p == 'Z') {
            have_zone = 1;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, zh, zm;
            p++;
            if (!digits_n(&p, 2, &zh))
                return 0;
            if (*p == ':')
                p++;
            if (!digits_n(&p, 2, &zm))
                return 0;
            zone = sign * (zh * 60 + zm);
            have_zone = 1;
        }
        if (*p != '\0')
            return 0;
    } else {
        /* dd-Mon-yyyy hh:mm:ss +zzzz (the day may have one digit or a
         * leading space, date-day-fixed) */
        while (*p == ' ')
            p++;
        if (!is_digit(*p))
            return 0;
        d = *p++ - '0';
        if (is_digit(*p))
            d = d * 10 + (*p++ - '0');
        if (*p++ != '-' || (mo = month_of(p)) == 0)
            return 0;
        p += 3;
        if (*p++ != '-' || !digits_n(&p, 4, &y) || *p++ != ' ' || !digits_n(&p, 2, &h) ||
            *p++ != ':' || !digits_n(&p, 2, &mi) || *p++ != ':' || !digits_n(&p, 2, &sec) ||
            *p++ != ' ' || (*p != '+' && *p != '-'))
            return 0;
        int sign = *p++ == '-' ? -1 : 1, zh, zm;
        if (!digits_n(&p, 2, &zh) || !digits_n(&p, 2, &zm) || *p != '\0')
            return 0;
        zone = sign * (zh * 60 + zm);
        have_zone = 1;
    }
    if (!have_zone)
        zone = local_zone(y, mo, d, h, mi, sec);
    if (!valid_fields(y, mo, d, h, mi, sec, zone))
        return 0;
    imap_date(out, cap, y, mo, d, h, mi, sec, zone);
    return 1;
}

/* The date of an mbox "From " line: "From SENDER Www Mmm dd hh:mm:ss yyyy"
 * (asctime, taken as UTC; some writers put a zone before the year). */
static void from_line_date(const char *line, size_t len, char *out, size_t cap)
{
    char buf[256];
    out[0] = '\0';
    if (len >= sizeof(buf))
        return;
    memcpy(buf, line, len);
    buf[len] = '\0';
    /* Find the month among the words after the sender. */
    const char *p = buf + 5;
    while (*p == ' ')
        p++;
    while (*p != '\0' && *p != ' ')
        p++; /* the sender */
    for (; *p != '\0'; p++) {
        if (p[-1] != ' ' || month_of(p) == 0 || p[3] != ' ')
            continue;
        int mo = month_of(p), d, h, mi, s = 0, y;
        const char *q = p + 4;
        while (*q == ' ')
            q++;
        if (!is_digit(*q))
            return;
        d = *q++ - '0';
        if (is_digit(*q))
            d = d * 10 + (*q++ - '0');
        if (*q++ != ' ' || !digits_n(&q, 2, &h) || *q++ != ':' || !digits_n(&q, 2, &mi))
            return;
        if (*q == ':') {
            q++;
            if (!digits_n(&q, 2, &s))
                return;
        }
        while (*q == ' ')
            q++;
        if (*q == '+' || *q == '-' || (*q >= 'A' && *q <= 'Z')) { /* a zone: skip it */
            while (*q != '\0' && *q != ' ')
                q++;
            while (*q == ' ')
                q++;
        }
        if (!digits_n(&q, 4, &y) || !valid_fields(y, mo, d, h, mi, s, 0))
            return;
        imap_date(out, cap, y, mo, d, h, mi, s, 0);
        return;
    }
}

/* A file's modification time as a UTC date-time. */
static void mtime_date(int fd, char *out, size_t cap)
{
    struct stat st;
    struct tm t;
    out[0] = '\0';
    if (fstat(fd, &st) != 0 || gmtime_r(&st.st_mtime, &t) == NULL)
        return;
    if (valid_fields(t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                     t.tm_sec > 59 ? 59 : t.tm_sec, 0))
        imap_date(out, cap, t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                  t.tm_sec > 59 ? 59 : t.tm_sec, 0);
}

/* ------------------------------------------------------------------ */
/* The conversion (counting and sending use the same code)            */
/* ------------------------------------------------------------------ */

typedef struct xform {
    unsigned mode;
    int line_start; /* the next byte starts a line */
    int prev_cr;    /* the last byte was CR */
    int held;       /* a ">" at line start withheld (XF_UNFROM) */
    size_t match;   /* bytes of "From " matched after the ">"s */
} xform;

static void xf_init(xform *x, unsigned mode)
{
    memset(x, 0, sizeof(*x));
    x->mode = mode;
    x->line_start = 1;
}

/* Feed one byte; writes at most 8 bytes to out and returns their count.
 * mboxrd unquoting: ">From " -> "From ", ">>From " -> ">From ". The first
 * ">" of a run at line start is withheld; further ">" pass (they are the
 * same byte, so order does not matter); if "From " follows, the withheld
 * one is dropped, otherwise given back. */
static size_t xf_byte(xform *x, unsigned char c, char *out)
{
    size_t n = 0;
    if (x->mode & XF_UNFROM) {
        if (x->held) {
            if (x->match == 0 && c == '>') {
                out[n++] = '>';
                return n;
            }
            if (c == (unsigned char)"From "[x->match]) {
                if (++x->match == 5) {
                    memcpy(out, "From ", 5);
                    x->held = 0;
                    x->match = 0;
                    return 5;
                }
                return 0;
            }
            out[n++] = '>';
            memcpy(out + n, "From ", x->match);
            n += x->match;
            x->held = 0;
            x->match = 0;
        } else if (x->line_start && c == '>') {
            x->held = 1;
            x->match = 0;
            x->line_start = 0;
            return 0;
        }
    }
    if (c == '\n') {
        if ((x->mode & XF_CRLF) && !x->prev_cr)
            out[n++] = '\r';
        out[n++] = '\n';
        x->line_start = 1;
    } else {
        out[n++] = (char)c;
        x->line_start = 0;
    }
    x->prev_cr = c == '\r';
    return n;
}

/* The end of the input: what is still withheld. */
static size_t xf_end(xform *x, char *out)
{
    size_t n = 0;
    if (x->held) {
        out[n++] = '>';
        memcpy(out + n, "From ", x->match);
        n += x->match;
    }
    x->held = 0;
    x->match = 0;
    return n;
}

/* Count what message m becomes (both with and without CRLF conversion,
 * choosing by its first line end), and whether it holds NUL. */
static int count_msg(run *r, amsg *m, unsigned base_mode, char *buf)
{
    int fd = open_checked(r, m->src);
    if (fd < 0)
        return CLI_EXIT_IO;
    xform with, without;
    xf_init(&with, base_mode | XF_CRLF);
    xf_init(&without, base_mode);
    uint64_t n_with = 0, n_without = 0, pos = m->offset, end = m->offset + m->length;
    int first_line = -1; /* -1 unknown, 0 LF, 1 CRLF */
    unsigned char prev = 0;
    char out[8];
    int rc = 0;
    while (pos < end) {
        size_t want = end - pos < CHUNK ? (size_t)(end - pos) : CHUNK;
        ssize_t got = pread_retry(fd, buf, want, pos);
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            rc = io_error("read", src_name(r, m->src));
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c == 0)
                m->binary = 1;
            if (c == '\n' && first_line < 0)
                first_line = prev == '\r';
            prev = c;
            n_with += xf_byte(&with, c, out);
            n_without += xf_byte(&without, c, out);
        }
        pos += (uint64_t)got;
    }
    close_src(r, m->src, fd);
    n_with += xf_end(&with, out);
    n_without += xf_end(&without, out);
    if (first_line == 1) {
        m->mode = base_mode;
        m->size = n_without;
    } else {
        m->mode = base_mode | XF_CRLF;
        m->size = n_with;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Finding the messages                                                */
/* ------------------------------------------------------------------ */

/*
 * An mbox: "From " at the start of a line begins a message (its first
 * line is the separator, not part of it); the message ends before the
 * next separator, less the one empty line that mbox writers put there.
 */
static int scan_mbox(run *r, size_t src, char *buf)
{
    const char *name = src_name(r, src);
    int fd = open_checked(r, src);
    if (fd < 0)
        return CLI_EXIT_IO;
    uint64_t pos = 0, line_pos = 0, msg_start = 0;
    int line_start = 1, in_from = 0, have_msg = 0;
    size_t match = 0, index = 0;
    unsigned char win[4] = {0, 0, 0, 0}, at_line[4] = {0, 0, 0, 0};
    char from_line[256];
    size_t from_len = 0;
    char msg_date[32] = "";
    int rc = 0;
    for (;;) {
        ssize_t got = pread_retry(fd, buf, CHUNK, pos);
        if (got < 0) {
            rc = io_error("read", name);
            break;
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got && rc == 0; i++) {
            unsigned char c = (unsigned char)buf[i];
            uint64_t off = pos + (uint64_t)i;
            if (in_from) {
                if (from_len < sizeof(from_line) && c != '\n' && c != '\r')
                    from_line[from_len++] = (char)c;
                if (c == '\n') {
                    in_from = 0;
                    have_msg = 1;
                    msg_start = off + 1;
                    from_line_date(from_line, from_len, msg_date, sizeof(msg_date));
                    line_start = 1;
                }
            } else {
                if (line_start) {
                    line_pos = off;
                    memcpy(at_line, win, sizeof(win));
                    match = 0;
                    line_start = 0;
                }
                if (match < 5 && off - line_pos == match) {
                    if (c == (unsigned char)"From "[match]) {
                        if (++match == 5) {
                            if (have_msg) {
                                uint64_t end = line_pos;
                                if (at_line[3] == '\n' && at_line[2] == '\n')
                                    end -= 1;
                                else if (at_line[3] == '\n' && at_line[2] == '\r' &&
                                         at_line[1] == '\n')
                                    end -= 2;
                                amsg *m = end > msg_start ? add_msg(r) : NULL;
                                if (end > msg_start && m == NULL) {
                                    rc = oom();
                                    break;
                                }
                                index++;
                                if (m != NULL) {
                                    m->src = src;
                                    m->offset = msg_start;
                                    m->length = end - msg_start;
                                    m->index = index;
                                    memcpy(m->date, msg_date, sizeof(m->date));
                                }
                            }
                            in_from = 1;
                            memcpy(from_line, "From ", 5);
                            from_len = 5;
                        }
                    } else {
                        match = 99;
                    }
                }
                if (c == '\n')
                    line_start = 1;
            }
            win[0] = win[1];
            win[1] = win[2];
            win[2] = win[3];
            win[3] = c;
        }
        if (rc != 0)
            break;
        pos += (uint64_t)got;
    }
    close_src(r, src, fd);
    if (rc == 0 && have_msg && !in_from) {
        uint64_t end = pos;
        if (win[3] == '\n' && win[2] == '\n')
            end -= 1;
        else if (win[3] == '\n' && win[2] == '\r' && win[1] == '\n')
            end -= 2;
        index++;
        if (end > msg_start) {
            amsg *m = add_msg(r);
            if (m == NULL)
                return oom();
            m->src = src;
            m->offset = msg_start;
            m->length = end - msg_start;
            m->index = index;
            memcpy(m->date, msg_date, sizeof(m->date));
        }
    }
    return rc;
}

/* A single-message file (or an mbox, by its first bytes). */
static int add_file(run *r, size_t src, char *buf)
{
    const char *name = src_name(r, src);
    int fd = open_checked(r, src);
    if (fd < 0)
        return CLI_EXIT_IO;
    struct stat st;
    ssize_t got = pread_retry(fd, buf, 5, 0);
    int rc = 0;
    if (got < 0 || fstat(fd, &st) != 0)
        rc = io_error("read", name);
    close_src(r, src, fd);
    if (rc != 0)
        return rc;
    if (got == 5 && memcmp(buf, "From ", 5) == 0) {
        size_t before = r->nmsgs;
        rc = scan_mbox(r, src, buf);
        for (size_t i = before; i < r->nmsgs && rc == 0; i++)
            rc = count_msg(r, &r->msgs[i], XF_UNFROM, buf);
        if (rc == 0 && r->nmsgs == before)
            fprintf(stderr, "imapkit: append: warning: the mbox %s holds no message\n", name);
        return rc;
    }
    if (st.st_size == 0) {
        cli_error("append: %s is empty: there is no message to append", name);
        return CLI_EXIT_USAGE;
    }
    amsg *m = add_msg(r);
    if (m == NULL)
        return oom();
    m->src = src;
    m->offset = 0;
    m->length = (uint64_t)st.st_size;
    return count_msg(r, m, 0, buf);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The flags of a Maildir file name: "...:2,FRS" (maildir.html). */
static unsigned maildir_name_flags(const char *name)
{
    const char *info = strstr(name, ":2,");
    unsigned bits = 0;
    if (info == NULL)
        return 0;
    for (const char *p = info + 3; *p != '\0'; p++)
        for (size_t i = 0; i < N_MAILDIR_FLAGS; i++)
            if (*p == maildir_flags[i].letter)
                bits |= maildir_flags[i].bit;
    return bits;
}

/* Every message of a Maildir: new/ then cur/, each sorted by name. */
static int add_maildir(run *r, const char *dir, char *buf)
{
    static const char *const subdirs[] = {"new", "cur"};
    for (size_t k = 0; k < 2; k++) {
        cli_buf path = {0}, names = {0};
        void *list = NULL;
        size_t n = 0;
        int rc = 0;
        if (cli_buf_append(&path, dir, strlen(dir)) != 0 || cli_buf_append(&path, "/", 1) != 0 ||
            cli_buf_append(&path, subdirs[k], strlen(subdirs[k]) + 1) != 0)
            return oom();
        DIR *d = opendir(path.data);
        if (d == NULL) {
            int missing = errno == ENOENT;
            rc = missing ? 0 : io_error("read the directory", path.data);
            cli_buf_free(&path);
            if (rc != 0)
                return rc;
            continue;
        }
        struct dirent *e;
        errno = 0;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            if (cli_buf_append(&names, e->d_name, strlen(e->d_name) + 1) != 0) {
                rc = oom();
                break;
            }
            n++;
        }
        closedir(d);
        /* Pointers to the names, sorted. */
        if (rc == 0 && n != 0 && cli_array_resize(&list, n, sizeof(char *)) != 0)
            rc = oom();
        char **v = list;
        for (size_t i = 0, off = 0; rc == 0 && i < n; i++) {
            v[i] = names.data + off;
            off += strlen(v[i]) + 1;
        }
        if (rc == 0 && n != 0)
            qsort(v, n, sizeof(char *), cmp_names);
        cli_buf file = {0};
        for (size_t i = 0; rc == 0 && i < n; i++) {
            cli_buf_clear(&file);
            if (cli_buf_append(&file, path.data, path.len - 1) != 0 ||
                cli_buf_append(&file, "/", 1) != 0 ||
                cli_buf_append(&file, v[i], strlen(v[i]) + 1) != 0) {
                rc = oom();
                break;
            }
            struct stat st;
            if (stat(file.data, &st) != 0) {
                rc = io_error("read", file.data);
                break;
            }
            if (!S_ISREG(st.st_mode))
                continue;
            if (st.st_size == 0) {
                fprintf(stderr, "imapkit: append: warning: skipping the empty file %s\n",
                        file.data);
                continue;
            }
            size_t src;
            amsg *m = NULL;
            if (add_src(r, file.data, -1, 0, &src) != 0 || (m = add_msg(r)) == NULL) {
                rc = oom();
                break;
            }
            m->src = src;
            m->offset = 0;
            m->length = (uint64_t)st.st_size;
            m->flags = k == 1 ? maildir_name_flags(v[i]) : 0;
            int fd = open_src(r, src);
            if (fd < 0) {
                rc = io_error("open", file.data);
                break;
            }
            mtime_date(fd, m->date, sizeof(m->date));
            close_src(r, src, fd);
            rc = count_msg(r, m, 0, buf);
        }
        cli_buf_free(&file);
        cli_array_resize(&list, 0, sizeof(char *));
        cli_buf_free(&names);
        cli_buf_free(&path);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Standard input: used in place when it is a regular file, else copied
 * to an unlinked temporary file first (it is read more than once). */
static int add_stdin(run *r, char *buf)
{
    if (r->tmp_fd >= 0) {
        cli_error("append: standard input (\"-\") can be given once only");
        return CLI_EXIT_USAGE;
    }
    struct stat st;
    int fd = STDIN_FILENO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || lseek(fd, 0, SEEK_CUR) != 0) {
        FILE *tmp = tmpfile();
        if (tmp == NULL)
            return io_error("create a temporary file for", "standard input");
        fd = dup(fileno(tmp));
        fclose(tmp);
        if (fd < 0)
            return io_error("create a temporary file for", "standard input");
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "imapkit: append: reading the message from the terminal; end it "
                            "with Ctrl-D\n");
        for (;;) {
            ssize_t got = read(STDIN_FILENO, buf, CHUNK);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                close(fd);
                return io_error("read", "standard input");
            }
            if (got == 0)
                break;
            for (ssize_t off = 0; off < got;) {
                ssize_t w = write(fd, buf + off, (size_t)(got - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0) {
                    close(fd);
                    return io_error("write a temporary file for", "standard input");
                }
                off += w;
            }
        }
    } else {
        fd = dup(STDIN_FILENO);
        if (fd < 0)
            return io_error("read", "standard input");
    }
    r->tmp_fd = fd;
    size_t src;
    if (add_src(r, "-", fd, 1, &src) != 0)
        return oom();
    return add_file(r, src, buf);
}

static int add_path(run *r, const char *path, char *buf)
{
    if (strcmp(path, "-") == 0)
        return add_stdin(r, buf);
    struct stat st;
    if (stat(path, &st) != 0)
        return io_error("read", path);
    if (S_ISDIR(st.st_mode)) {
        cli_buf sub = {0};
        struct stat s1, s2;
        int is_maildir = 0;
        if (cli_buf_append(&sub, path, strlen(path)) == 0 && cli_buf_append(&sub, "/cur", 5) == 0) {
            is_maildir = stat(sub.data, &s1) == 0 && S_ISDIR(s1.st_mode);
            memcpy(sub.data + sub.len - 4, "new", 4);
            is_maildir |= stat(sub.data, &s2) == 0 && S_ISDIR(s2.st_mode);
        }
        cli_buf_free(&sub);
        if (!is_maildir) {
            cli_error("append: %s is a directory but not a Maildir (it has no cur/ or new/); "
                      "give the message files themselves",
                      path);
            return CLI_EXIT_USAGE;
        }
        size_t before = r->nmsgs;
        int rc = add_maildir(r, path, buf);
        if (rc == 0 && r->nmsgs == before)
            fprintf(stderr, "imapkit: append: warning: the Maildir %s holds no message\n", path);
        return rc;
    }
    size_t src;
    if (add_src(r, path, -1, 0, &src) != 0)
        return oom();
    return add_file(r, src, buf);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

typedef struct sender {
    run *r;
    amsg *m;
    int fd;
    uint64_t pos, end; /* raw bytes still to read */
    uint64_t sent;
    xform xf;
    int ended; /* xf_end done */
    char carry[16];
    size_t carry_len, carry_off;
    char in[8192];
    size_t in_len, in_off;
    int failed;
} sender;

/* imk_read_fn: the message's converted bytes, exactly m->size of them. */
static long send_read(void *user, void *buf, size_t cap)
{
    sender *s = user;
    char *o = buf;
    size_t n = 0;
    if (s->fd < 0) {
        s->fd = open_src(s->r, s->m->src);
        if (s->fd < 0) {
            io_error("open", src_name(s->r, s->m->src));
            s->failed = 1;
            return IMK_EINVAL;
        }
    }
    uint64_t left = s->m->size - s->sent;
    if (cap > left)
        cap = (size_t)left;
    while (n < cap) {
        if (s->carry_off < s->carry_len) {
            o[n++] = s->carry[s->carry_off++];
            continue;
        }
        if (s->in_off == s->in_len) {
            if (s->pos == s->end) {
                if (s->ended)
                    break;
                s->ended = 1;
                s->carry_len = xf_end(&s->xf, s->carry);
                s->carry_off = 0;
                continue;
            }
            size_t want =
                s->end - s->pos < sizeof(s->in) ? (size_t)(s->end - s->pos) : sizeof(s->in);
            ssize_t got = pread_retry(s->fd, s->in, want, s->pos);
            if (got <= 0)
                break; /* shorter than counted: reported below */
            s->in_len = (size_t)got;
            s->in_off = 0;
            s->pos += (uint64_t)got;
        }
        s->carry_len = xf_byte(&s->xf, (unsigned char)s->in[s->in_off++], s->carry);
        s->carry_off = 0;
    }
    s->sent += n;
    int more = s->carry_off < s->carry_len || s->in_off < s->in_len || s->pos < s->end ||
               (!s->ended && s->xf.held);
    if (n == 0 || (s->sent == s->m->size && more)) {
        cli_error("append: %s changed while it was being sent (%s bytes than counted); "
                  "nothing of it was stored: run the command again",
                  src_name(s->r, s->m->src), n == 0 ? "fewer" : "more");
        s->failed = 1;
        return IMK_EINVAL;
    }
    s->r->sent_bytes += n;
    if (s->r->progress)
        cli_progress(s->r->ctx, "append", s->r->sent_bytes, s->r->total_bytes);
    if (s->sent == s->m->size) {
        close_src(s->r, s->m->src, s->fd);
        s->fd = -1;
    }
    return (long)n;
}

static int print_result(run *r, const amsg *m, uint32_t uid, uint64_t uidvalidity,
                        const char *const *flags, size_t nflags)
{
    const char *name = src_name(r, m->src);
    if (r->ctx->json) {
        json_t *o = json_object();
        json_t *fl = json_array();
        int bad = o == NULL || fl == NULL;
        for (size_t i = 0; i < nflags && !bad; i++)
            bad = json_array_append_new(fl, json_string(flags[i])) != 0;
        if (!bad)
            bad = json_object_set_new(o, "mailbox", json_string(r->mailbox)) != 0 ||
                  json_object_set_new(o, "source", cli_json_bytes(name, strlen(name))) != 0 ||
                  json_object_set_new(o, "message",
                                      m->index ? json_integer((json_int_t)m->index)
                                               : json_null()) != 0 ||
                  json_object_set_new(o, "uid", uid ? json_integer(uid) : json_null()) != 0 ||
                  json_object_set_new(o, "uidvalidity",
                                      uid ? cli_json_u64(uidvalidity) : json_null()) != 0 ||
                  json_object_set_new(o, "size", cli_json_u64(m->size)) != 0 ||
                  json_object_set(o, "flags", fl) != 0;
        json_decref(fl);
        int rc = bad ? oom() : cli_out_json(r->ctx, o);
        json_decref(o);
        return rc;
    }
    char size[32], uidtext[16];
    cli_fmt_size(size, sizeof(size), m->size);
    if (uid)
        snprintf(uidtext, sizeof(uidtext), "%" PRIu32, uid);
    else
        snprintf(uidtext, sizeof(uidtext), "-");
    cli_buf shown = {0};
    const char *label =
        strcmp(name, "-") == 0 && r->srcs[m->src].stdin_src ? "(standard input)" : name;
    if (cli_mime_display(label, strlen(label), &shown) != 0 || cli_buf_append(&shown, "", 1) != 0) {
        cli_buf_free(&shown);
        return oom();
    }
    int w;
    if (m->index)
        w = printf("%8s  %9s  %s (message %zu)\n", uidtext, size, shown.data, m->index);
    else
        w = printf("%8s  %9s  %s\n", uidtext, size, shown.data);
    cli_buf_free(&shown);
    if (w < 0) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return 0;
}

/* APPEND msgs[first .. first+n) and print what became of them. */
static int send_batch(run *r, size_t first, size_t n, sender *senders, imk_append_msg *am,
                      const char **flagv)
{
    size_t per = r->n_user_flags + N_MAILDIR_FLAGS;
    for (size_t i = 0; i < n; i++) {
        amsg *m = &r->msgs[first + i];
        sender *s = &senders[i];
        memset(s, 0, sizeof(*s));
        s->r = r;
        s->m = m;
        s->fd = -1;
        s->pos = m->offset;
        s->end = m->offset + m->length;
        xf_init(&s->xf, m->mode);
        const char **fl = flagv + i * per;
        size_t nf = 0;
        for (size_t k = 0; k < r->n_user_flags; k++)
            fl[nf++] = r->user_flags[k];
        for (size_t k = 0; k < N_MAILDIR_FLAGS; k++) {
            if (!(m->flags & maildir_flags[k].bit))
                continue;
            int dup = 0;
            for (size_t j = 0; j < nf; j++)
                dup |= strcasecmp(fl[j], maildir_flags[k].flag) == 0;
            if (!dup)
                fl[nf++] = maildir_flags[k].flag;
        }
        imk_append_msg init = IMK_APPEND_MSG_INIT;
        am[i] = init;
        am[i].size = m->size;
        am[i].read = send_read;
        am[i].read_user = s;
        am[i].flags = nf ? fl : NULL;
        am[i].n_flags = nf;
        am[i].internaldate = r->date[0] ? r->date : m->date[0] ? m->date : NULL;
        am[i].binary = m->binary;
    }
    const imk_result *res = NULL;
    int lrc = imk_conn_append(r->ctx->conn, r->mailbox, am, n, &res);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed |= senders[i].failed;
        close_src(r, senders[i].m->src, senders[i].fd);
        senders[i].fd = -1;
    }
    if (failed)
        return CLI_EXIT_IO;
    int rc;
    if (lrc < 0)
        rc = cli_exit_error(r->ctx, "APPEND", lrc);
    else
        rc = cli_exit_result(r->ctx, "APPEND", res);
    if (rc != 0) {
        if (res != NULL && res->code != NULL && res->code->kind == IMK_CODE_TRYCREATE)
            fprintf(stderr, "imapkit: %s does not exist; create it with 'imapkit create %s'\n",
                    r->mailbox, r->mailbox);
        if (r->appended != 0)
            fprintf(stderr, "imapkit: append: %zu of %zu messages had been appended before\n",
                    r->appended, r->nmsgs);
        return rc;
    }
    /* APPENDUID (RFC 4315 section 3): the new UIDs, in message order. */
    uint32_t uids[BATCH];
    size_t nu = 0;
    if (res->has_appenduid)
        nu = cli_msg_seqset_expand(res->dest_uids, uids, n);
    if (nu != n)
        nu = 0;
    if (r->progress)
        cli_progress_end(r->ctx);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char **fl = flagv + i * per;
        rc = print_result(r, &r->msgs[first + i], nu ? uids[i] : 0, res->uidvalidity, fl,
                          am[i].n_flags);
    }
    r->appended += n;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

/* --flags "a b,c": each flag checked as `flag` does. */
static int parse_user_flags(run *r, char *text)
{
    char *p = text;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        char *start = p;
        while (*p != '\0' && *p != ' ' && *p != ',' && *p != '\t')
            p++;
        char saved = *p;
        *p = '\0';
        const char *name = cli_msg_flag_name(start);
        if (name == NULL)
            return USAGE("append: --flags: '%s' is not a flag that can be stored: \\Seen "
                         "\\Answered \\Flagged \\Deleted \\Draft, or a keyword such as $Label",
                         start);
        if (r->n_user_flags == MAX_USER_FLAGS)
            return USAGE("append: --flags: at most %d flags", MAX_USER_FLAGS);
        r->user_flags[r->n_user_flags++] = name;
        if (saved != '\0')
            p++;
    }
    return 0;
}

int cli_cmd_append(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(append_usage);
    run r;
    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.tmp_fd = -1;
    int rc = 0, ddash = 0, nfiles = 0;
    /* Options, then MAILBOX, then files; files are collected in place. */
    char **files = argv + 1;
    for (int i = 1; i < argc && rc == 0; i++) {
        char *a = argv[i];
        if (!ddash && strcmp(a, "--") == 0) {
            ddash = 1;
            continue;
        }
        if (!ddash && (strcmp(a, "--flags") == 0 || strcmp(a, "--date") == 0)) {
            if (i + 1 >= argc) {
                rc = USAGE("append: %s needs a value", a);
                break;
            }
            char *v = argv[++i];
            if (a[2] == 'f')
                rc = parse_user_flags(&r, v);
            else if (!parse_user_date(v, r.date, sizeof(r.date)))
                rc = USAGE("append: --date: '%s' is not a date: write 2026-01-15, "
                           "'2026-01-15 10:30', 2026-01-15T10:30:00+01:00 or "
                           "'15-Jan-2026 10:30:00 +0100'",
                           v);
            continue;
        }
        if (!ddash && strncmp(a, "--flags=", 8) == 0) {
            rc = parse_user_flags(&r, a + 8);
            continue;
        }
        if (!ddash && strncmp(a, "--date=", 7) == 0) {
            if (!parse_user_date(a + 7, r.date, sizeof(r.date)))
                rc = USAGE("append: --date: '%s' is not a date: write 2026-01-15, "
                           "'2026-01-15 10:30', 2026-01-15T10:30:00+01:00 or "
                           "'15-Jan-2026 10:30:00 +0100'",
                           a + 7);
            continue;
        }
        if (!ddash && a[0] == '-' && a[1] != '\0') {
            rc = USAGE("append: unknown option '%s'", a);
            break;
        }
        if (r.mailbox == NULL) {
            r.mailbox = a;
            continue;
        }
        files[nfiles++] = a;
    }
    if (rc == 0 && r.mailbox == NULL)
        rc = USAGE("append: the MAILBOX to append to is missing");
    if (rc != 0)
        return rc;

    /* Find and count every message before connecting: a missing file is
     * reported without a word sent to the server. */
    cli_buf buf = {0};
    void *ps = NULL, *pa = NULL, *pf = NULL;
    if (cli_buf_reserve(&buf, CHUNK) != 0) {
        rc = oom();
        goto out;
    }
    if (nfiles == 0)
        rc = add_stdin(&r, buf.data);
    for (int i = 0; i < nfiles && rc == 0; i++)
        rc = add_path(&r, files[i], buf.data);
    if (rc != 0)
        goto out;
    if (r.nmsgs == 0) {
        cli_error("append: no message to append");
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < r.nmsgs; i++)
        r.total_bytes += r.msgs[i].size;
    r.progress = r.nmsgs >= PROGRESS_MESSAGES || r.total_bytes >= PROGRESS_BYTES;

    size_t per = r.n_user_flags + N_MAILDIR_FLAGS;
    if (cli_array_resize(&ps, BATCH, sizeof(sender)) != 0 ||
        cli_array_resize(&pa, BATCH, sizeof(imk_append_msg)) != 0 ||
        cli_array_resize(&pf, BATCH * per, sizeof(char *)) != 0) {
        rc = oom();
        goto out;
    }
    if ((rc = cli_open(ctx)) != 0)
        goto out;
    if (!ctx->json && printf("%8s  %9s  %s\n", "UID", "SIZE", "SOURCE") < 0) {
        rc = CLI_EXIT_IO;
        goto out;
    }
    for (size_t first = 0; first < r.nmsgs && rc == 0; first += BATCH) {
        size_t n = r.nmsgs - first < BATCH ? r.nmsgs - first : BATCH;
        rc = send_batch(&r, first, n, ps, pa, pf);
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        rc = CLI_EXIT_IO;
    }
out:
    cli_close(ctx);
    if (r.tmp_fd >= 0)
        close(r.tmp_fd);
    cli_array_resize(&ps, 0, sizeof(sender));
    cli_array_resize(&pa, 0, sizeof(imk_append_msg));
    cli_array_resize(&pf, 0, sizeof(char *));
    void *p = r.srcs;
    cli_array_resize(&p, 0, sizeof(asrc));
    p = r.msgs;
    cli_array_resize(&p, 0, sizeof(amsg));
    cli_buf_free(&r.names);
    cli_buf_free(&buf);
    return rc;
}
