/* SPDX-License-Identifier: MIT */
/*
 * The message commands of the imapkit tool:
 *
 *     imapkit search MAILBOX [KEY...]           UID SEARCH: the matching UIDs
 *     imapkit fetch MAILBOX UIDSET [ITEM...]    UID FETCH: one row/object a message
 *     imapkit cat MAILBOX UID [SECTION]         the raw message or part, streamed
 *     imapkit flag MAILBOX UIDSET +FLAG|-FLAG...  UID STORE +FLAGS / -FLAGS
 *     imapkit copy|move MAILBOX UIDSET DEST     UID COPY / UID MOVE (COPYUID shown)
 *     imapkit expunge MAILBOX [UIDSET]          EXPUNGE or UID EXPUNGE
 *
 * Every command checks its arguments before connecting (usage errors exit
 * 2 without touching the network), then cli_open()s, selects the mailbox
 * (EXAMINE where nothing changes: search, fetch, cat, copy) and works
 * through the public API. Results go to standard output, either for people
 * or, with --json, as JSON Lines following docs/schema/<command>.schema.json.
 *
 * Invariants:
 *   - user text never reaches a command line unencoded: search strings go
 *     through imk_conn_search's %s arguments (quoted or literal, CHARSET
 *     UTF-8 added by the library when needed); everything else that is put
 *     into criteria or FETCH items (numbers, dates, sets, keywords, section
 *     specs) is validated here against its grammar first;
 *   - memory does not grow with the number or size of messages: fetch and
 *     cat go through the FETCH iterator, body bytes are written as they
 *     arrive, and fetch keeps at most FIRST_ROWS rows (to size the columns)
 *     and one message's header (HEADER_MAX bytes);
 *   - what the server sent is shown safely: header text is RFC 2047 decoded
 *     into valid UTF-8 (mime.c) and, for a terminal, controls and bidi
 *     overrides are replaced, so a subject cannot drive the terminal.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "ctx.h"
#include "json.h"
#include "message.h"
#include "mime.h"
#include "xalloc.h"

#include "imapkit/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Help texts                                                          */
/* ------------------------------------------------------------------ */

static const char search_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] search [--set] MAILBOX [KEY...]\n"
    "\n"
    "Search MAILBOX with IMAP search keys (RFC 9051 section 6.4.4) and print the\n"
    "UIDs of the matching messages, in ascending order, on one line separated by\n"
    "spaces. Without a key every message matches (ALL). Keys are case-insensitive;\n"
    "several keys must all match; OR KEY1 KEY2, NOT KEY and ( KEY... ) combine them\n"
    "(give the parentheses as separate words, quoted for the shell).\n"
    "\n"
    "  ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED\n"
    "  UNDRAFT UNFLAGGED UNSEEN\n"
    "  FROM|TO|CC|BCC|SUBJECT|BODY|TEXT STRING   substring match; one shell word\n"
    "  HEADER NAME STRING                          a header field contains STRING\n"
    "  KEYWORD|UNKEYWORD FLAG                      a keyword ($Label) set or not\n"
    "  BEFORE|ON|SINCE DATE                        internal date (received)\n"
    "  SENTBEFORE|SENTON|SENTSINCE DATE            the Date: header\n"
    "  SAVEDBEFORE|SAVEDON|SAVEDSINCE DATE         save date (SAVEDATE servers)\n"
    "  LARGER|SMALLER N                            size in bytes\n"
    "  OLDER|YOUNGER SECONDS                       WITHIN servers\n"
    "  MODSEQ N                                    CONDSTORE servers\n"
    "  UID SET, or a SET of sequence numbers       e.g. 1:100,200:*\n"
    "  EMAILID|THREADID ID                         OBJECTID servers\n"
    "DATE is 15-Jan-2026 or 2026-01-15. A STRING is sent as it is, safely quoted;\n"
    "non-ASCII text is searched as UTF-8.\n"
    "\n"
    "Options:\n"
    "      --set          print the UIDs as one compact set (1:3,7) for other commands\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Output: the UIDs on one line (nothing when none match); with --json one object\n"
    "{\"mailbox\", \"uids\": [...], \"count\"} (docs/schema/search.schema.json).\n"
    "\n"
    "Examples:\n"
    "  imapkit search INBOX UNSEEN SUBJECT \"hello world\"\n"
    "  imapkit search INBOX OR FROM alice FROM bob SINCE 2026-01-01\n"
    "  imapkit search INBOX NOT \\( SEEN FLAGGED \\) LARGER 1000000\n"
    "  imapkit search --json INBOX SUBJECT \"Grüße\"\n"
    "\n";

static const char fetch_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] fetch MAILBOX UIDSET [ITEM...]\n"
    "\n"
    "Show the messages of MAILBOX whose UIDs are in UIDSET (e.g. 42, 1:100,\n"
    "200:* or 1:* for all), one row each in aligned columns, streamed as they\n"
    "arrive: thousands of messages take no more memory than one.\n"
    "\n"
    "Items (default: uid flags date from subject size):\n"
    "  uid            the message's UID\n"
    "  flags          its flags (\\Seen, $Label, ...)\n"
    "  date           when the server received it (INTERNALDATE), in local time\n"
    "  size           its size (RFC822.SIZE)\n"
    "  modseq         its modification sequence (CONDSTORE servers)\n"
    "  from to cc bcc reply-to subject message-id\n"
    "                 from the ENVELOPE; names and subjects RFC 2047 decoded\n"
    "  preview        a short text preview (PREVIEW servers)\n"
    "  envelope       the whole envelope, under the row\n"
    "  bodystructure  the MIME structure, one line per part with its number for\n"
    "                 'imapkit cat', under the row\n"
    "  header         the message's header, under the row\n"
    "\n"
    "With --json: one object per message with uid, seq, flags, internaldate (ISO\n"
    "8601), size, modseq (when the server has CONDSTORE) and the envelope (names\n"
    "and subject decoded), plus bodystructure, header and preview when asked\n"
    "for (docs/schema/fetch.schema.json); the other items are always included.\n"
    "\n"
    "Options:\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Examples:\n"
    "  imapkit fetch INBOX 1:*\n"
    "  imapkit fetch INBOX 42 envelope bodystructure\n"
    "  imapkit fetch --json INBOX \"$(imapkit search --set INBOX UNSEEN)\"\n"
    "\n";

static const char cat_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] cat [--decode] MAILBOX UID [SECTION]\n"
    "\n"
    "Write the message with UID in MAILBOX to standard output exactly as the\n"
    "server stores it (CRLF line ends), streamed: the message is never held in\n"
    "memory. The message is not marked \\Seen (BODY.PEEK).\n"
    "\n"
    "SECTION picks a part (RFC 9051 section 6.4.5): HEADER, TEXT, a part number\n"
    "such as 2 or 1.3 (see 'imapkit fetch MAILBOX UID bodystructure'), or\n"
    "PART.HEADER, PART.TEXT, PART.MIME, HEADER.FIELDS (FROM SUBJECT).\n"
    "\n"
    "Options:\n"
    "      --decode       undo the part's transfer encoding (base64, quoted-\n"
    "                     printable) on the server: BINARY.PEEK, for attachments;\n"
    "                     SECTION is then a part number (or nothing)\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "--json does not apply: the bytes are written as they are. A progress bar\n"
    "shows on a terminal when standard output is redirected.\n"
    "Exit status 1 when there is no message with that UID (or no such part).\n"
    "\n"
    "Examples:\n"
    "  imapkit cat INBOX 42 > message.eml\n"
    "  imapkit cat INBOX 42 HEADER\n"
    "  imapkit cat --decode INBOX 42 2 > attachment.pdf\n"
    "\n";

static const char flag_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] flag MAILBOX UIDSET +FLAG|-FLAG...\n"
    "\n"
    "Add (+FLAG) or remove (-FLAG) flags on the messages of MAILBOX in UIDSET.\n"
    "Both may be given at once: the additions are stored first, then the\n"
    "removals. FLAG is a system flag (\\Seen \\Answered \\Flagged \\Deleted\n"
    "\\Draft; the backslash may be left out: +seen) or a keyword ($Label,\n"
    "Work). A message marked +deleted goes for good with 'imapkit expunge'.\n"
    "\n"
    "Options:\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Output: nothing; with --json one object per message with its flags after\n"
    "the change: {\"uid\", \"seq\", \"flags\", \"modseq\"} (docs/schema/store.schema.json).\n"
    "\n"
    "Examples:\n"
    "  imapkit flag INBOX 42 +seen\n"
    "  imapkit flag INBOX 1:10 +\\\\Flagged -\\\\Seen\n"
    "  imapkit flag INBOX 7,9 +'$Important' +deleted\n"
    "\n";

static const char copy_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] copy|move MAILBOX UIDSET DEST\n"
    "\n"
    "Copy (or move) the messages of MAILBOX in UIDSET to mailbox DEST, which\n"
    "must exist. move uses MOVE (RFC 6851) when the server has it, otherwise\n"
    "COPY, STORE \\Deleted and UID EXPUNGE of exactly those messages (UIDPLUS).\n"
    "\n"
    "Options:\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Output: when the server tells the new UIDs (UIDPLUS), one line per message:\n"
    "its UID in MAILBOX and its UID in DEST. With --json one object {\"operation\",\n"
    "\"mailbox\", \"destination\", \"uidvalidity\", \"map\": [{\"uid\", \"dest_uid\"}]}\n"
    "(docs/schema/copy.schema.json; map and uidvalidity are null without UIDPLUS).\n"
    "\n"
    "Examples:\n"
    "  imapkit copy INBOX 1:5 Archive\n"
    "  imapkit move INBOX \"$(imapkit search --set INBOX FROM newsletter)\" Junk\n"
    "\n";

static const char expunge_usage[] =
    "Usage: imapkit [GLOBAL OPTIONS] expunge MAILBOX [UIDSET]\n"
    "\n"
    "Remove for good the messages of MAILBOX marked \\Deleted (see 'imapkit\n"
    "flag'): all of them, or with UIDSET only those in the set (UID EXPUNGE,\n"
    "UIDPLUS servers), leaving other deleted messages alone.\n"
    "\n"
    "Options:\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "Output: the UIDs expunged, on one line; with --json one object {\"mailbox\",\n"
    "\"uids\": [...], \"count\"} (docs/schema/expunge.schema.json).\n"
    "\n"
    "Examples:\n"
    "  imapkit expunge INBOX\n"
    "  imapkit flag INBOX 42 +deleted && imapkit expunge INBOX 42\n"
    "\n";

/* ------------------------------------------------------------------ */
/* Shared helpers (message.h)                                          */
/* ------------------------------------------------------------------ */

int cli_msg_help_asked(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int cli_msg_help(const char *usage)
{
    if (fputs(usage, stdout) == EOF || fputs(cli_global_help, stdout) == EOF ||
        fflush(stdout) != 0) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return 0;
}

int cli_msg_write(const void *data, size_t len)
{
    if (len != 0 && fwrite(data, 1, len, stdout) != len) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* nz-number (RFC 9051 section 9): 1..4294967295, no leading zero. Reads
 * digits at *p and advances; 0 when there is no such number. */
static uint32_t read_nz_number(const char **p)
{
    const char *s = *p;
    if (!is_digit(*s) || *s == '0')
        return 0;
    uint64_t v = 0;
    while (is_digit(*s)) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return 0;
        s++;
    }
    *p = s;
    return (uint32_t)v;
}

/* One seq-number: a number or "*" (returned as 0); -1 when neither. */
static int64_t read_seq_number(const char **p)
{
    if (**p == '*') {
        (*p)++;
        return 0;
    }
    uint32_t v = read_nz_number(p);
    return v == 0 ? -1 : (int64_t)v;
}

/*
 * sequence-set = (seq-number / seq-range) ["," sequence-set]
 * seq-range    = seq-number ":" seq-number
 * seq-number   = nz-number / "*"                  (RFC 9051 section 9)
 * Calls `range` (may be NULL) for each element; 1 when the whole text is
 * a set.
 */
static int parse_set(const char *s, void (*range)(void *, uint32_t, uint32_t), void *user)
{
    if (s == NULL || *s == '\0')
        return 0;
    const char *p = s;
    for (;;) {
        int64_t a = read_seq_number(&p);
        if (a < 0)
            return 0;
        int64_t b = a;
        if (*p == ':') {
            p++;
            b = read_seq_number(&p);
            if (b < 0)
                return 0;
        }
        if (range != NULL)
            range(user, (uint32_t)a, (uint32_t)b);
        if (*p == '\0')
            return 1;
        if (*p != ',')
            return 0;
        p++;
    }
}

int cli_msg_set_valid(const char *s)
{
    return parse_set(s, NULL, NULL);
}

size_t cli_msg_seqset_expand(imk_seqset s, uint32_t *out, size_t cap)
{
    size_t total = 0;
    for (size_t i = 0; i < s.count; i++) {
        uint32_t lo = s.ranges[i].first, hi = s.ranges[i].last;
        if (lo > hi) {
            uint32_t t = lo;
            lo = hi;
            hi = t;
        }
        uint64_t count = (uint64_t)hi - lo + 1;
        for (uint64_t k = 0; k < count && total + k < cap; k++)
            out[total + k] = (uint32_t)(lo + k);
        total = count > SIZE_MAX - total ? SIZE_MAX : total + (size_t)count;
    }
    return total;
}

int cli_msg_uids_to_set(const uint32_t *uids, size_t n, cli_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && uids[j + 1] == uids[j] + 1)
            j++;
        char part[32];
        int len;
        if (j == i)
            len = snprintf(part, sizeof(part), "%s%" PRIu32, i ? "," : "", uids[i]);
        else
            len = snprintf(part, sizeof(part), "%s%" PRIu32 ":%" PRIu32, i ? "," : "", uids[i],
                           uids[j]);
        if (cli_buf_append(out, part, (size_t)len) != 0)
            return -1;
        i = j + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int oom(void)
{
    cli_error("out of memory");
    return CLI_EXIT_PROTOCOL;
}

/* The usage error of command `cmd` with its --help pointer. */
#define USAGE(cmd, ...) cli_usage_error("imapkit " cmd " --help", __VA_ARGS__)

/* An option-like word that is not an operand: "-x", "--x" but not "-". */
static int is_option(const char *a)
{
    return a[0] == '-' && a[1] != '\0';
}

/* Collect the operands of command `cmd` into ops (at most max): "--" ends
 * the options; `flag`, when not NULL, is the one option taken and sets
 * *flag_seen. Returns 0 with *nops set, or the status of a usage error. */
static int collect_operands(int argc, char **argv, const char *cmd, const char *flag,
                            int *flag_seen, char **ops, int max, int *nops)
{
    char see[48];
    snprintf(see, sizeof(see), "imapkit %s --help", cmd);
    int ddash = 0;
    *nops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!ddash && strcmp(a, "--") == 0) {
            ddash = 1;
            continue;
        }
        if (!ddash && flag != NULL && strcmp(a, flag) == 0) {
            *flag_seen = 1;
            continue;
        }
        if (!ddash && is_option(a))
            return cli_usage_error(see, "%s: unknown option '%s'", cmd, a);
        if (*nops == max)
            return cli_usage_error(see, "%s: too many arguments ('%s')", cmd, a);
        ops[(*nops)++] = argv[i];
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop duplicates and zeros; returns the new count. */
static size_t sort_uids(uint32_t *u, size_t n)
{
    if (n == 0)
        return 0;
    qsort(u, n, sizeof(*u), cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (u[i] != 0 && (k == 0 || u[k - 1] != u[i]))
            u[k++] = u[i];
    return k;
}

static int flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return CLI_EXIT_IO;
    }
    return 0;
}

/* UIDs on one line, space-separated, then a newline (nothing for none). */
static int print_uid_line(const uint32_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (printf(i ? " %" PRIu32 : "%" PRIu32, u[i]) < 0)
            return flush_stdout(), CLI_EXIT_IO;
    if (n != 0 && putchar('\n') == EOF)
        return flush_stdout(), CLI_EXIT_IO;
    return 0;
}

/* {"mailbox": m, "uids": [...], "count": n} */
static int print_uids_json(cli_ctx *ctx, const char *mailbox, const uint32_t *u, size_t n)
{
    json_t *o = json_object();
    json_t *a = json_array();
    int failed = o == NULL || a == NULL;
    for (size_t i = 0; i < n && !failed; i++)
        failed = json_array_append_new(a, json_integer(u[i])) != 0;
    if (!failed)
        failed = json_object_set_new(o, "mailbox", json_string(mailbox)) != 0 ||
                 json_object_set(o, "uids", a) != 0 ||
                 json_object_set_new(o, "count", json_integer((json_int_t)n)) != 0;
    json_decref(a);
    int rc = failed ? oom() : cli_out_json(ctx, o);
    json_decref(o);
    return rc;
}

/* The UIDs of a SEARCH result, sorted: *out (free with cli_array_resize
 * to 0) and *n. 0 or -1 (out of memory). */
static int result_uids(const imk_result *res, uint32_t **out, size_t *n)
{
    size_t total = imk_result_ids(res, NULL, 0);
    void *p = NULL;
    if (total != 0) {
        if (cli_array_resize(&p, total, sizeof(uint32_t)) != 0)
            return -1;
        imk_result_ids(res, p, total);
    }
    *out = p;
    *n = sort_uids(p, total);
    return 0;
}

static void free_uids(uint32_t **u)
{
    void *p = *u;
    cli_array_resize(&p, 0, sizeof(uint32_t));
    *u = NULL;
}

/* ------------------------------------------------------------------ */
/* search                                                              */
/* ------------------------------------------------------------------ */

/*
 * The shell words after MAILBOX are read as a stream of tokens: "(" and
 * ")" (also when glued to a key or to a number/date/set argument), and
 * words split at whitespace. A string argument is different: it is the
 * next whole shell word as typed (or, when its key shared a word with
 * it, the rest of that word), spaces and parentheses included, and goes
 * into the args array behind a %s.
 */
typedef enum skind {
    SK_NONE,     /* a key alone: SEEN */
    SK_STRING,   /* one string: SUBJECT s */
    SK_HEADER,   /* field name + string */
    SK_ATOM,     /* a flag keyword or an objectid */
    SK_DATE,     /* date */
    SK_NUMBER,   /* number (32-bit) */
    SK_NUMBER64, /* mod-sequence-valzer (MODSEQ) */
    SK_SET,      /* sequence-set (UID) */
    SK_NOT,      /* NOT key (and FUZZY key) */
    SK_OR        /* OR key key */
} skind;

static const struct skey {
    const char *name;
    skind kind;
} search_keys[] = {
    /* RFC 9051 section 6.4.4 (and RFC 3501's NEW OLD RECENT) */
    {"ALL", SK_NONE},
    {"ANSWERED", SK_NONE},
    {"BCC", SK_STRING},
    {"BEFORE", SK_DATE},
    {"BODY", SK_STRING},
    {"CC", SK_STRING},
    {"DELETED", SK_NONE},
    {"DRAFT", SK_NONE},
    {"FLAGGED", SK_NONE},
    {"FROM", SK_STRING},
    {"HEADER", SK_HEADER},
    {"KEYWORD", SK_ATOM},
    {"LARGER", SK_NUMBER},
    {"NEW", SK_NONE},
    {"NOT", SK_NOT},
    {"OLD", SK_NONE},
    {"ON", SK_DATE},
    {"OR", SK_OR},
    {"RECENT", SK_NONE},
    {"SEEN", SK_NONE},
    {"SENTBEFORE", SK_DATE},
    {"SENTON", SK_DATE},
    {"SENTSINCE", SK_DATE},
    {"SINCE", SK_DATE},
    {"SMALLER", SK_NUMBER},
    {"SUBJECT", SK_STRING},
    {"TEXT", SK_STRING},
    {"TO", SK_STRING},
    {"UID", SK_SET},
    {"UNANSWERED", SK_NONE},
    {"UNDELETED", SK_NONE},
    {"UNDRAFT", SK_NONE},
    {"UNFLAGGED", SK_NONE},
    {"UNKEYWORD", SK_ATOM},
    {"UNSEEN", SK_NONE},
    /* RFC 5032 WITHIN */
    {"OLDER", SK_NUMBER},
    {"YOUNGER", SK_NUMBER},
    /* RFC 7162 CONDSTORE */
    {"MODSEQ", SK_NUMBER64},
    /* RFC 8514 SAVEDATE */
    {"SAVEDBEFORE", SK_DATE},
    {"SAVEDON", SK_DATE},
    {"SAVEDSINCE", SK_DATE},
    {"SAVEDATESUPPORTED", SK_NONE},
    /* RFC 8474 OBJECTID */
    {"EMAILID", SK_ATOM},
    {"THREADID", SK_ATOM},
    /* RFC 6203 FUZZY */
    {"FUZZY", SK_NOT},
    /* Gmail's X-GM-EXT-1 */
    {"X-GM-RAW", SK_STRING},
};

#define SEARCH_MAX_DEPTH 32

typedef struct sparse {
    char **words;
    int nwords;
    int wi;       /* current word */
    size_t off;   /* offset in it */
    cli_buf crit; /* the criteria text */
    const char **args;
    size_t nargs;
    char err[300];
} sparse;

typedef struct token {
    const char *p;
    size_t len;
} token;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Move to the next non-space character; 0 at the end of the words. */
static int skip_space(sparse *sp)
{
    while (sp->wi < sp->nwords) {
        const char *w = sp->words[sp->wi];
        while (w[sp->off] != '\0' && is_space(w[sp->off]))
            sp->off++;
        if (w[sp->off] != '\0')
            return 1;
        sp->wi++;
        sp->off = 0;
    }
    return 0;
}

/* The next token: "(", ")" or a run of other characters (without trailing
 * ")" characters, which come back as their own tokens). 0 at the end. */
static int next_token(sparse *sp, token *t)
{
    if (!skip_space(sp))
        return 0;
    const char *w = sp->words[sp->wi];
    const char *p = w + sp->off;
    if (*p == '(' || *p == ')') {
        t->p = p;
        t->len = 1;
        sp->off++;
        return 1;
    }
    size_t n = 0;
    while (p[n] != '\0' && !is_space(p[n]) && p[n] != '(')
        n++;
    size_t end = n;
    while (end > 0 && p[end - 1] == ')')
        end--;
    t->p = p;
    t->len = end;
    sp->off += end;
    return 1;
}

static int peek_token(sparse *sp, token *t)
{
    int wi = sp->wi;
    size_t off = sp->off;
    int rc = next_token(sp, t);
    sp->wi = wi;
    sp->off = off;
    return rc;
}

/* A string argument: the next whole word, or the rest of the current one. */
static const char *next_string(sparse *sp)
{
    if (sp->wi >= sp->nwords)
        return NULL;
    const char *w = sp->words[sp->wi];
    if (sp->off == 0 || w[sp->off] == '\0') {
        if (w[sp->off] == '\0' && sp->off != 0) {
            sp->wi++;
            sp->off = 0;
            if (sp->wi >= sp->nwords)
                return NULL;
            w = sp->words[sp->wi];
        }
        sp->wi++;
        sp->off = 0;
        return w;
    }
    /* "SUBJECT hello" given as one word: the rest after the spaces. */
    size_t off = sp->off;
    while (w[off] != '\0' && is_space(w[off]))
        off++;
    if (w[off] == '\0') {
        sp->wi++;
        sp->off = 0;
        return next_string(sp);
    }
    sp->wi++;
    sp->off = 0;
    return w + off;
}

static int emit(sparse *sp, const char *p, size_t len)
{
    if (sp->crit.len != 0 && !(sp->crit.data[sp->crit.len - 1] == '(') &&
        !(len == 1 && p[0] == ')'))
        if (cli_buf_append(&sp->crit, " ", 1) != 0)
            return -1;
    return cli_buf_append(&sp->crit, p, len);
}

static int emit_str(sparse *sp, const char *s)
{
    return emit(sp, s, strlen(s));
}

/* sp->err = before + the token (at most 60 bytes) + after; returns -2. */
static int serr(sparse *sp, const char *before, const char *a, size_t alen, const char *after)
{
    snprintf(sp->err, sizeof(sp->err), "%s%.*s%s", before, (int)(alen > 60 ? 60 : alen), a, after);
    return -2;
}

static int tok_ieq(token t, const char *s)
{
    return strlen(s) == t.len && strncasecmp(t.p, s, t.len) == 0;
}

/* atom-char minus list-wildcards and resp-specials (RFC 9051 section 9):
 * printable ASCII except ( ) { SP % * " \ ]. */
static int atom_valid(const char *p, size_t len, int allow_backslash_first)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c >= 0x7F || strchr("(){%*\"]", c) != NULL)
            return 0;
        if (c == '\\' && !(i == 0 && allow_backslash_first))
            return 0;
    }
    return 1;
}

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* date = date-day "-" date-month "-" date-year (RFC 9051 section 9), or
 * ISO 8601 YYYY-MM-DD; written as the IMAP form into out. */
static int date_convert(const char *p, size_t len, char *out, size_t cap)
{
    char s[32];
    if (len == 0 || len >= sizeof(s))
        return 0;
    memcpy(s, p, len);
    s[len] = '\0';
    int day = 0, month = 0, year = 0;
    if (len == 10 && is_digit(s[0]) && s[4] == '-' && s[7] == '-') {
        for (int i = 0; i < 10; i++)
            if (i != 4 && i != 7 && !is_digit(s[i]))
                return 0;
        year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        month = (s[5] - '0') * 10 + (s[6] - '0');
        day = (s[8] - '0') * 10 + (s[9] - '0');
    } else {
        const char *q = s;
        while (is_digit(*q) && q - s < 2)
            day = day * 10 + (*q++ - '0');
        if (q == s || *q != '-')
            return 0;
        q++;
        for (int m = 0; m < 12; m++)
            if (strncasecmp(q, month_names[m], 3) == 0)
                month = m + 1;
        if (month == 0 || q[3] != '-')
            return 0;
        q += 4;
        for (int i = 0; i < 4; i++) {
            if (!is_digit(q[i]))
                return 0;
            year = year * 10 + (q[i] - '0');
        }
        if (q[4] != '\0')
            return 0;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || year < 1)
        return 0;
    snprintf(out, cap, "%d-%s-%04d", day, month_names[month - 1], year);
    return 1;
}

static int number_valid(token t, uint64_t max)
{
    if (t.len == 0 || t.len > 20)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < t.len; i++) {
        if (!is_digit(t.p[i]))
            return 0;
        uint64_t d = (uint64_t)(t.p[i] - '0');
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return 1;
}

static int set_token_valid(token t)
{
    char s[256];
    if (t.len == 0 || t.len >= sizeof(s))
        return 0;
    memcpy(s, t.p, t.len);
    s[t.len] = '\0';
    return cli_msg_set_valid(s);
}

static int parse_key(sparse *sp, int depth);

/* The argument token of `key`, or an error. */
static int key_arg(sparse *sp, token key, token *arg, const char *what)
{
    token t;
    if (!next_token(sp, &t) || (t.len == 1 && (t.p[0] == '(' || t.p[0] == ')'))) {
        snprintf(sp->err, sizeof(sp->err), "search key %.*s needs %s", (int)key.len, key.p, what);
        return -2;
    }
    *arg = t;
    return 0;
}

/* search-key (RFC 9051 section 9). 0, -1 (out of memory), -2 (sp->err). */
static int parse_key(sparse *sp, int depth)
{
    if (depth > SEARCH_MAX_DEPTH) {
        snprintf(sp->err, sizeof(sp->err), "search keys nested too deeply");
        return -2;
    }
    token t;
    if (!next_token(sp, &t)) {
        snprintf(sp->err, sizeof(sp->err), "a search key is missing at the end");
        return -2;
    }
    if (t.len == 1 && t.p[0] == ')')
        return serr(sp, "unexpected '", t.p, t.len, "' (no '(' to close)");
    if (t.len == 1 && t.p[0] == '(') {
        if (emit(sp, "(", 1) != 0)
            return -1;
        int n = 0;
        for (;;) {
            token nt;
            if (!peek_token(sp, &nt)) {
                snprintf(sp->err, sizeof(sp->err), "'(' is not closed: add ')'");
                return -2;
            }
            if (nt.len == 1 && nt.p[0] == ')') {
                next_token(sp, &nt);
                if (n == 0) {
                    snprintf(sp->err, sizeof(sp->err), "empty '( )' in the search keys");
                    return -2;
                }
                return emit(sp, ")", 1);
            }
            int rc = parse_key(sp, depth + 1);
            if (rc != 0)
                return rc;
            n++;
        }
    }
    const struct skey *k = NULL;
    for (size_t i = 0; i < sizeof(search_keys) / sizeof(search_keys[0]); i++)
        if (tok_ieq(t, search_keys[i].name))
            k = &search_keys[i];
    if (k == NULL) {
        /* A sequence set of message numbers is a key of its own. */
        if (set_token_valid(t))
            return emit(sp, t.p, t.len);
        return serr(sp, "unknown search key '", t.p, t.len, "' (see 'imapkit search --help')");
    }
    if (emit_str(sp, k->name) != 0)
        return -1;
    token a;
    char date[32];
    const char *s;
    switch (k->kind) {
    case SK_NONE:
        return 0;
    case SK_STRING:
    case SK_HEADER:
        if (k->kind == SK_HEADER) {
            int rc = key_arg(sp, t, &a, "a header field name and a string");
            if (rc != 0)
                return rc;
            /* field-name = 1*ftext (RFC 5322 section 3.6.8); we take the
             * common letters, digits and "-_." only, as a token. */
            for (size_t i = 0; i < a.len; i++) {
                char c = a.p[i];
                if (!(is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
                      c == '_' || c == '.'))
                    return serr(sp, "'", a.p, a.len, "' is not a header field name");
            }
            if (emit(sp, a.p, a.len) != 0)
                return -1;
        }
        s = next_string(sp);
        if (s == NULL) {
            snprintf(sp->err, sizeof(sp->err), "search key %s needs a string", k->name);
            return -2;
        }
        sp->args[sp->nargs++] = s;
        return emit(sp, "%s", 2);
    case SK_ATOM: {
        int rc = key_arg(sp, t, &a, "a keyword");
        if (rc != 0)
            return rc;
        if (!atom_valid(a.p, a.len, 0))
            return serr(sp, "'", a.p, a.len,
                        "' is not a keyword (letters, digits, $ and the like)");
        return emit(sp, a.p, a.len);
    }
    case SK_DATE: {
        int rc = key_arg(sp, t, &a, "a date (15-Jan-2026 or 2026-01-15)");
        if (rc != 0)
            return rc;
        if (!date_convert(a.p, a.len, date, sizeof(date)))
            return serr(sp, "'", a.p, a.len, "' is not a date: write 15-Jan-2026 or 2026-01-15");
        return emit_str(sp, date);
    }
    case SK_NUMBER:
    case SK_NUMBER64: {
        int rc = key_arg(sp, t, &a, "a number");
        if (rc != 0)
            return rc;
        if (!number_valid(a, k->kind == SK_NUMBER ? UINT32_MAX : (uint64_t)INT64_MAX))
            return serr(sp, "'", a.p, a.len, "' is not a number in range");
        return emit(sp, a.p, a.len);
    }
    case SK_SET: {
        int rc = key_arg(sp, t, &a, "a UID set (e.g. 1:100,200:*)");
        if (rc != 0)
            return rc;
        if (!set_token_valid(a))
            return serr(sp, "'", a.p, a.len, "' is not a UID set (e.g. 7, 1:100, 200:*)");
        return emit(sp, a.p, a.len);
    }
    case SK_NOT:
        return parse_key(sp, depth + 1);
    case SK_OR: {
        int rc = parse_key(sp, depth + 1);
        return rc != 0 ? rc : parse_key(sp, depth + 1);
    }
    }
    return 0;
}

/* Build criteria + args from words[0..n). 0, -1 (out of memory) or -2
 * (sp->err says what is wrong). */
static int search_build(sparse *sp, char **words, int n)
{
    memset(sp, 0, sizeof(*sp));
    sp->words = words;
    sp->nwords = n;
    void *p = NULL;
    if (cli_array_resize(&p, (size_t)n + 1, sizeof(char *)) != 0)
        return -1;
    sp->args = p;
    token t;
    if (!peek_token(sp, &t) && emit_str(sp, "ALL") != 0)
        return -1;
    while (peek_token(sp, &t)) {
        int rc = parse_key(sp, 0);
        if (rc != 0)
            return rc;
    }
    return cli_buf_append(&sp->crit, "", 1); /* NUL-terminate */
}

static void search_free(sparse *sp)
{
    void *p = (void *)sp->args;
    cli_array_resize(&p, 0, sizeof(char *));
    sp->args = NULL;
    cli_buf_free(&sp->crit);
}

int cli_cmd_search(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(search_usage);
    int as_set = 0, i = 1;
    /* Options come before MAILBOX: after it every word is a search key
     * (a string argument may well start with "-"). */
    for (; i < argc && is_option(argv[i]); i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--set") == 0)
            as_set = 1;
        else
            return USAGE("search", "search: unknown option '%s'", argv[i]);
    }
    if (i >= argc)
        return USAGE("search", "search: the MAILBOX to search is missing");
    const char *mailbox = argv[i++];
    sparse sp;
    int rc = search_build(&sp, argv + i, argc - i);
    if (rc != 0) {
        search_free(&sp);
        if (rc == -1)
            return oom();
        return USAGE("search", "search: %s", sp.err);
    }

    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, mailbox, 1)) != 0)
        goto out;
    const imk_result *res = NULL;
    int lrc = imk_conn_search(ctx->conn, 1, sp.crit.data, sp.args, sp.nargs, &res);
    if (lrc < 0) {
        rc = cli_exit_error(ctx, "UID SEARCH", lrc);
        goto out;
    }
    if ((rc = cli_exit_result(ctx, "UID SEARCH", res)) != 0)
        goto out;
    uint32_t *uids = NULL;
    size_t n = 0;
    if (result_uids(res, &uids, &n) != 0) {
        rc = oom();
        goto out;
    }
    if (ctx->json) {
        rc = print_uids_json(ctx, mailbox, uids, n);
    } else if (as_set) {
        cli_buf b = {0};
        if (cli_msg_uids_to_set(uids, n, &b) != 0 || cli_buf_append(&b, "\n", 1) != 0)
            rc = oom();
        else
            rc = cli_msg_write(b.data, b.len);
        cli_buf_free(&b);
    } else {
        rc = print_uid_line(uids, n);
        if (rc == 0 && !ctx->quiet && isatty(STDERR_FILENO))
            fprintf(stderr, "%zu message%s\n", n, n == 1 ? "" : "s");
    }
    free_uids(&uids);
    if (rc == 0)
        rc = flush_stdout();
out:
    search_free(&sp);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* fetch                                                               */
/* ------------------------------------------------------------------ */

typedef enum fitem {
    FI_UID,
    FI_FLAGS,
    FI_DATE,
    FI_SIZE,
    FI_MODSEQ,
    FI_FROM,
    FI_TO,
    FI_CC,
    FI_BCC,
    FI_REPLY_TO,
    FI_SUBJECT,
    FI_MESSAGE_ID,
    FI_PREVIEW,
    FI_ENVELOPE,
    FI_BODYSTRUCTURE,
    FI_HEADER,
    FI_COUNT_
} fitem;

static const struct fitem_def {
    const char *name;  /* as typed */
    const char *imap;  /* the FETCH item it needs */
    const char *title; /* column title; NULL: a block under the row */
    size_t cap;        /* widest the column gets when it is not the last */
    int right;         /* right-aligned (numbers) */
} fitems[FI_COUNT_] = {
    [FI_UID] = {"uid", "UID", "UID", 10, 1},
    [FI_FLAGS] = {"flags", "FLAGS", "FLAGS", 24, 0},
    [FI_DATE] = {"date", "INTERNALDATE", "DATE", 16, 0},
    [FI_SIZE] = {"size", "RFC822.SIZE", "SIZE", 9, 1},
    [FI_MODSEQ] = {"modseq", "MODSEQ", "MODSEQ", 20, 1},
    [FI_FROM] = {"from", "ENVELOPE", "FROM", 24, 0},
    [FI_TO] = {"to", "ENVELOPE", "TO", 24, 0},
    [FI_CC] = {"cc", "ENVELOPE", "CC", 24, 0},
    [FI_BCC] = {"bcc", "ENVELOPE", "BCC", 24, 0},
    [FI_REPLY_TO] = {"reply-to", "ENVELOPE", "REPLY-TO", 24, 0},
    [FI_SUBJECT] = {"subject", "ENVELOPE", "SUBJECT", 50, 0},
    [FI_MESSAGE_ID] = {"message-id", "ENVELOPE", "MESSAGE-ID", 40, 0},
    [FI_PREVIEW] = {"preview", "PREVIEW", "PREVIEW", 50, 0},
    [FI_ENVELOPE] = {"envelope", "ENVELOPE", NULL, 0, 0},
    [FI_BODYSTRUCTURE] = {"bodystructure", "BODYSTRUCTURE", NULL, 0, 0},
    [FI_HEADER] = {"header", "BODY.PEEK[HEADER]", NULL, 0, 0},
};

static const struct {
    const char *alias;
    fitem item;
} fitem_aliases[] = {
    {"internaldate", FI_DATE},       {"rfc822.size", FI_SIZE},      {"reply_to", FI_REPLY_TO},
    {"replyto", FI_REPLY_TO},        {"message_id", FI_MESSAGE_ID}, {"messageid", FI_MESSAGE_ID},
    {"structure", FI_BODYSTRUCTURE}, {"headers", FI_HEADER},
};

static int fitem_lookup(const char *name)
{
    for (int i = 0; i < FI_COUNT_; i++)
        if (strcasecmp(name, fitems[i].name) == 0)
            return i;
    for (size_t i = 0; i < sizeof(fitem_aliases) / sizeof(fitem_aliases[0]); i++)
        if (strcasecmp(name, fitem_aliases[i].alias) == 0)
            return (int)fitem_aliases[i].item;
    return -1;
}

/* Rows kept to size the columns; later rows use those widths. */
#define FIRST_ROWS 200
/* Bytes of one message's header kept (fetch ... header). */
#define HEADER_MAX ((size_t)1024 * 1024)
/* Show a progress bar from this many messages on. */
#define PROGRESS_MIN 50

typedef struct frow {
    cli_buf cells;         /* the cells' texts one after another */
    size_t end[FI_COUNT_]; /* end offset of cell k (k = column index) */
    cli_buf block;         /* lines printed under the row */
} frow;

typedef struct fetch_run {
    cli_ctx *ctx;
    const char *mailbox;
    int cols[FI_COUNT_]; /* the column items, in the order asked */
    size_t ncols;
    int blocks[FI_COUNT_]; /* the block items, in the order asked */
    size_t nblocks;
    int want[FI_COUNT_];
    size_t width[FI_COUNT_]; /* per column index */
    int widths_fixed;
    frow *rows;
    size_t nrows;
    cli_buf header; /* the current message's streamed header section */
    int header_truncated;
    uint64_t done, total;
    int progress;
} fetch_run;

/* Text for a terminal cell: decoded (when header text) and made safe. */
static int add_display(cli_buf *b, const char *s, size_t len)
{
    return cli_mime_display(s != NULL ? s : "", len, b);
}

static int add_decoded(cli_buf *b, imk_str s)
{
    if (s.data == NULL)
        return 0;
    cli_buf tmp = {0};
    int rc = cli_mime_decode(s.data, s.len, &tmp);
    if (rc == 0)
        rc = add_display(b, tmp.data, tmp.len);
    cli_buf_free(&tmp);
    return rc;
}

static int add_text(cli_buf *b, const char *s)
{
    return cli_buf_append(b, s, strlen(s));
}

/* An address list for people: "Name <m@h>" (full) or "Name" / "m@h";
 * groups as "Group: a, b;". */
static int add_addresses(cli_buf *b, imk_address_list l, int full)
{
    int rc = 0, need_sep = 0;
    for (size_t i = 0; i < l.count && rc == 0; i++) {
        const imk_address *a = &l.items[i];
        if (a->mailbox.data == NULL) { /* group end */
            rc = cli_buf_append(b, ";", 1);
            need_sep = 1;
            continue;
        }
        if (need_sep)
            rc = cli_buf_append(b, ", ", 2);
        if (rc != 0)
            break;
        if (a->host.data == NULL) { /* group start */
            rc = add_decoded(b, a->mailbox);
            if (rc == 0)
                rc = cli_buf_append(b, ": ", 2);
            need_sep = 0;
            continue;
        }
        int has_name = a->name.data != NULL && a->name.len != 0;
        if (has_name)
            rc = add_decoded(b, a->name);
        if (rc == 0 && (!has_name || full)) {
            if (has_name)
                rc = cli_buf_append(b, " <", 2);
            if (rc == 0)
                rc = add_display(b, a->mailbox.data, a->mailbox.len);
            if (rc == 0)
                rc = cli_buf_append(b, "@", 1);
            if (rc == 0)
                rc = add_display(b, a->host.data, a->host.len);
            if (rc == 0 && has_name)
                rc = cli_buf_append(b, ">", 1);
        }
        need_sep = 1;
    }
    return rc;
}

static int add_flags(cli_buf *b, imk_strlist flags)
{
    int rc = 0;
    for (size_t i = 0; i < flags.count && rc == 0; i++) {
        if (i != 0)
            rc = cli_buf_append(b, " ", 1);
        if (rc == 0)
            rc = add_display(b, flags.items[i].data, flags.items[i].len);
    }
    return rc;
}

/* The text of one cell. "-" stands for an item the server did not send. */
/* The envelope field an address column shows. */
static imk_address_list column_addresses(const imk_envelope *e, fitem item)
{
    switch (item) {
    case FI_TO:
        return e->to;
    case FI_CC:
        return e->cc;
    case FI_BCC:
        return e->bcc;
    case FI_REPLY_TO:
        return e->reply_to;
    default:
        return e->from;
    }
}

static int cell_text(cli_buf *b, fitem item, const imk_fetch *f)
{
    char tmp[64] = ""; /* the cell, for the items formatted here */
    const imk_envelope *e = (f->present & IMK_FETCH_ENVELOPE) ? f->envelope : NULL;
    size_t before = b->len;
    int rc = 0;
    switch (item) {
    case FI_UID:
        if (f->present & IMK_FETCH_UID)
            snprintf(tmp, sizeof(tmp), "%" PRIu32, f->uid);
        break;
    case FI_FLAGS:
        if (f->present & IMK_FETCH_FLAGS)
            rc = add_flags(b, f->flags);
        break;
    case FI_DATE:
        if (f->present & IMK_FETCH_INTERNALDATE)
            cli_fmt_date(tmp, sizeof(tmp), &f->internaldate);
        break;
    case FI_SIZE:
        if (f->present & IMK_FETCH_RFC822_SIZE)
            cli_fmt_size(tmp, sizeof(tmp), f->rfc822_size);
        break;
    case FI_MODSEQ:
        if (f->present & IMK_FETCH_MODSEQ)
            snprintf(tmp, sizeof(tmp), "%" PRIu64, f->modseq);
        break;
    case FI_FROM:
    case FI_TO:
    case FI_CC:
    case FI_BCC:
    case FI_REPLY_TO:
        rc = e ? add_addresses(b, column_addresses(e, item), 0) : 0;
        break;
    case FI_SUBJECT:
        rc = e ? add_decoded(b, e->subject) : 0;
        break;
    case FI_MESSAGE_ID:
        rc = e && e->message_id.data ? add_display(b, e->message_id.data, e->message_id.len) : 0;
        break;
    case FI_PREVIEW:
        if ((f->present & IMK_FETCH_PREVIEW) && f->preview.data != NULL)
            rc = add_display(b, f->preview.data, f->preview.len);
        break;
    default:
        break;
    }
    if (rc == 0 && tmp[0] != '\0')
        rc = add_text(b, tmp);
    if (rc == 0 && b->len == before)
        rc = add_text(b, "-");
    return rc;
}

/* ---- blocks under the row ---- */

#define INDENT "    "

/* The start of an indented "Label: " line. */
static int label_start(cli_buf *b, const char *label)
{
    int rc = add_text(b, INDENT);
    return rc == 0 ? add_text(b, label) : rc;
}

static int env_line(cli_buf *b, const char *label, imk_address_list l)
{
    if (l.count == 0)
        return 0;
    int rc = label_start(b, label);
    if (rc == 0)
        rc = add_addresses(b, l, 1);
    return rc == 0 ? add_text(b, "\n") : rc;
}

static int env_str_line(cli_buf *b, const char *label, imk_str s, int decode)
{
    if (s.data == NULL)
        return 0;
    int rc = label_start(b, label);
    if (rc == 0)
        rc = decode ? add_decoded(b, s) : add_display(b, s.data, s.len);
    return rc == 0 ? add_text(b, "\n") : rc;
}

static int same_str(imk_str a, imk_str b)
{
    if (a.data == NULL || b.data == NULL)
        return a.data == b.data;
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static int same_addresses(imk_address_list a, imk_address_list b)
{
    if (a.count != b.count)
        return 0;
    for (size_t i = 0; i < a.count; i++)
        if (!same_str(a.items[i].name, b.items[i].name) ||
            !same_str(a.items[i].mailbox, b.items[i].mailbox) ||
            !same_str(a.items[i].host, b.items[i].host))
            return 0;
    return 1;
}

static int envelope_block(cli_buf *b, const imk_envelope *e)
{
    if (e == NULL)
        return 0;
    int rc = env_str_line(b, "Date: ", e->date, 0);
    if (rc == 0)
        rc = env_line(b, "From: ", e->from);
    /* Servers fill Sender and Reply-To with From when the message has
     * none (RFC 9051 section 7.5.2): shown only when they differ. */
    if (rc == 0 && !same_addresses(e->sender, e->from))
        rc = env_line(b, "Sender: ", e->sender);
    if (rc == 0 && !same_addresses(e->reply_to, e->from))
        rc = env_line(b, "Reply-To: ", e->reply_to);
    if (rc == 0)
        rc = env_line(b, "To: ", e->to);
    if (rc == 0)
        rc = env_line(b, "Cc: ", e->cc);
    if (rc == 0)
        rc = env_line(b, "Bcc: ", e->bcc);
    if (rc == 0)
        rc = env_str_line(b, "Subject: ", e->subject, 1);
    if (rc == 0)
        rc = env_str_line(b, "Message-ID: ", e->message_id, 0);
    if (rc == 0)
        rc = env_str_line(b, "In-Reply-To: ", e->in_reply_to, 0);
    return rc;
}

static int lower_into(cli_buf *b, imk_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.data[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (cli_mime_display(&c, 1, b) != 0)
            return -1;
    }
    return 0;
}

/* The value of parameter `name` in a list, or a NIL string. */
static imk_str param(imk_param_list l, const char *name)
{
    for (size_t i = 0; i < l.count; i++)
        if (l.items[i].name.data != NULL && l.items[i].name.len == strlen(name) &&
            strncasecmp(l.items[i].name.data, name, l.items[i].name.len) == 0)
            return l.items[i].value;
    imk_str none = {NULL, 0};
    return none;
}

/* One line per part: its number for `cat`, type, size, file name. The
 * nesting is bounded by the reader's max_depth; recursion follows it. */
static int outline(cli_buf *b, const imk_body *body, const char *label, const char *num, int depth)
{
    if (body == NULL || depth > 64)
        return 0;
    int rc = add_text(b, INDENT);
    for (int i = 0; i < depth && rc == 0; i++)
        rc = add_text(b, "  ");
    if (rc == 0 && label[0] != '\0') {
        rc = add_text(b, label);
        if (rc == 0)
            rc = add_text(b, "  ");
    }
    if (rc == 0)
        rc = lower_into(b, body->type);
    if (rc == 0)
        rc = add_text(b, "/");
    if (rc == 0)
        rc = lower_into(b, body->subtype);
    if (rc != 0)
        return rc;
    if (!body->multipart) {
        char size[32];
        cli_fmt_size(size, sizeof(size), body->size);
        rc = add_text(b, "  ");
        if (rc == 0)
            rc = add_text(b, size);
        imk_str name = param(body->disposition_params, "filename");
        if (name.data == NULL)
            name = param(body->params, "name");
        if (rc == 0 && body->disposition.data != NULL) {
            rc = add_text(b, "  ");
            if (rc == 0)
                rc = lower_into(b, body->disposition);
        }
        if (rc == 0 && name.data != NULL) {
            rc = add_text(b, "  \"");
            if (rc == 0)
                rc = add_decoded(b, name);
            if (rc == 0)
                rc = add_text(b, "\"");
        }
    }
    if (rc == 0)
        rc = add_text(b, "\n");
    /* Children: a multipart's parts are num.1, num.2...; an attached
     * message's body is num.1 when single, or its parts num.1... */
    const char *prefix = num;
    for (size_t i = 0; i < body->part_count && rc == 0; i++) {
        const imk_body *child = &body->parts[i];
        char cnum[256];
        if (!body->multipart && child->multipart) {
            /* message/rfc822 holding a multipart: the multipart has no
             * number of its own (it is NUM.TEXT); its parts are NUM.n. */
            rc = outline(b, child, "", num, depth + 1);
            continue;
        }
        snprintf(cnum, sizeof(cnum), "%s%s%zu", prefix, prefix[0] ? "." : "", i + 1);
        rc = outline(b, child, cnum, cnum, depth + 1);
    }
    return rc;
}

/* Header bytes, line by line, indented and made safe. */
static int header_block(cli_buf *b, const char *data, size_t len, int truncated)
{
    int rc = 0;
    size_t i = 0;
    while (i < len && rc == 0) {
        size_t j = i;
        while (j < len && data[j] != '\n')
            j++;
        size_t end = j;
        if (end > i && data[end - 1] == '\r')
            end--;
        if (end > i) { /* the blank line that ends the header is left out */
            rc = add_text(b, INDENT);
            if (rc == 0)
                rc = add_display(b, data + i, end - i);
            if (rc == 0)
                rc = add_text(b, "\n");
        }
        i = j + 1;
    }
    if (rc == 0 && truncated)
        rc = add_text(b, INDENT "[header truncated]\n");
    return rc;
}

/* The header section of a record: streamed bytes collected in fr->header,
 * or inline data. Sets data and len; 0 when the record has none. */
static int header_of(fetch_run *fr, const imk_fetch *f, const char **data, size_t *len)
{
    for (size_t i = 0; i < f->section_count; i++) {
        const imk_fetch_section *s = &f->sections[i];
        if (s->item != IMK_SECTION_BODY)
            continue;
        if (s->streamed) {
            *data = fr->header.data != NULL ? fr->header.data : "";
            *len = fr->header.len;
            return 1;
        }
        if (s->data.data != NULL) {
            *data = s->data.data;
            *len = s->data.len;
            return 1;
        }
    }
    return 0;
}

/* ---- columns ---- */

static int row_build(fetch_run *fr, frow *r, const imk_fetch *f)
{
    int rc = 0;
    for (size_t k = 0; k < fr->ncols && rc == 0; k++) {
        rc = cell_text(&r->cells, (fitem)fr->cols[k], f);
        r->end[k] = r->cells.len;
    }
    for (size_t k = 0; k < fr->nblocks && rc == 0; k++) {
        switch (fr->blocks[k]) {
        case FI_ENVELOPE:
            rc = envelope_block(&r->block, (f->present & IMK_FETCH_ENVELOPE) ? f->envelope : NULL);
            break;
        case FI_BODYSTRUCTURE:
            if (f->present & (IMK_FETCH_BODYSTRUCTURE | IMK_FETCH_BODY))
                rc = outline(&r->block, f->body, f->body && !f->body->multipart ? "1" : "", "", 0);
            break;
        case FI_HEADER: {
            const char *data;
            size_t len;
            if (header_of(fr, f, &data, &len))
                rc = header_block(&r->block, data, len, fr->header_truncated);
            break;
        }
        default:
            break;
        }
    }
    return rc;
}

static void row_cell(const frow *r, size_t k, const char **p, size_t *len)
{
    size_t start = k == 0 ? 0 : r->end[k - 1];
    *p = r->cells.data != NULL ? r->cells.data + start : "";
    *len = r->end[k] - start;
}

static int put_spaces(cli_buf *b, size_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        if (cli_buf_append(b, spaces, k) != 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* One cell padded (or cut with "…") to its column. */
static int put_cell(cli_buf *line, const char *p, size_t len, size_t width, int right, int last)
{
    size_t w = cli_mime_width(p, len);
    int rc = 0;
    if (w > width && !right && !last) {
        len = cli_mime_fit(p, len, width > 0 ? width - 1 : 0, &w);
        rc = cli_buf_append(line, p, len);
        if (rc == 0)
            rc = cli_buf_append(line, "\xe2\x80\xa6", 3); /* … */
        w++;
        p = NULL;
    }
    if (rc == 0 && right && w < width)
        rc = put_spaces(line, width - w);
    if (rc == 0 && p != NULL)
        rc = cli_buf_append(line, p, len);
    if (rc == 0 && !right && !last && w < width)
        rc = put_spaces(line, width - w);
    return rc;
}

static int print_line(cli_buf *line)
{
    int rc = cli_msg_write(line->data != NULL ? line->data : "", line->len);
    cli_buf_clear(line);
    return rc;
}

static int print_header_row(fetch_run *fr)
{
    cli_buf line = {0};
    int rc = 0;
    for (size_t k = 0; k < fr->ncols && rc == 0; k++) {
        const struct fitem_def *d = &fitems[fr->cols[k]];
        if (k != 0)
            rc = cli_buf_append(&line, "  ", 2);
        if (rc == 0)
            rc = put_cell(&line, d->title, strlen(d->title), fr->width[k], d->right,
                          k + 1 == fr->ncols);
    }
    if (rc == 0)
        rc = cli_buf_append(&line, "\n", 1);
    rc = rc != 0 ? oom() : print_line(&line);
    cli_buf_free(&line);
    return rc;
}

static int print_row(fetch_run *fr, const frow *r)
{
    cli_buf line = {0};
    int rc = 0;
    for (size_t k = 0; k < fr->ncols && rc == 0; k++) {
        const char *p;
        size_t len;
        row_cell(r, k, &p, &len);
        if (k != 0)
            rc = cli_buf_append(&line, "  ", 2);
        if (rc == 0)
            rc = put_cell(&line, p, len, fr->width[k], fitems[fr->cols[k]].right,
                          k + 1 == fr->ncols);
    }
    if (rc == 0 && fr->ncols != 0)
        rc = cli_buf_append(&line, "\n", 1);
    if (rc == 0)
        rc = cli_buf_append(&line, r->block.data, r->block.len);
    rc = rc != 0 ? oom() : print_line(&line);
    cli_buf_free(&line);
    return rc;
}

static void row_free(frow *r)
{
    cli_buf_free(&r->cells);
    cli_buf_free(&r->block);
}

/* Size the columns from the rows kept, print them, and from now on print
 * each row as it comes. */
static int flush_rows(fetch_run *fr)
{
    int rc = 0;
    if (!fr->widths_fixed) {
        for (size_t k = 0; k < fr->ncols; k++) {
            const struct fitem_def *d = &fitems[fr->cols[k]];
            size_t w = fr->width[k];
            if (cli_mime_width(d->title, strlen(d->title)) > w)
                w = strlen(d->title);
            for (size_t i = 0; i < fr->nrows; i++) {
                const char *p;
                size_t len;
                row_cell(&fr->rows[i], k, &p, &len);
                size_t cw = cli_mime_width(p, len);
                if (cw > w)
                    w = cw;
            }
            if (k + 1 != fr->ncols && !d->right && w > d->cap)
                w = d->cap;
            fr->width[k] = w;
        }
        fr->widths_fixed = 1;
        if (fr->nrows != 0 && fr->ncols != 0)
            rc = print_header_row(fr);
    }
    for (size_t i = 0; i < fr->nrows; i++) {
        if (rc == 0)
            rc = print_row(fr, &fr->rows[i]);
        row_free(&fr->rows[i]);
    }
    fr->nrows = 0;
    return rc;
}

/* ---- JSON ---- */

static json_t *decoded_json(imk_str raw)
{
    cli_buf b = {0};
    if (cli_mime_decode(raw.data, raw.len, &b) != 0) {
        cli_buf_free(&b);
        return NULL;
    }
    json_t *j = json_stringn(b.len != 0 ? b.data : "", b.len);
    cli_buf_free(&b);
    return j;
}

static int jput(json_t *o, const char *key, json_t *v)
{
    return v == NULL || json_object_set_new(o, key, v) != 0 ? -1 : 0;
}

static int fetch_json(fetch_run *fr, const imk_fetch *f)
{
    json_t *o = json_object();
    int bad = o == NULL;
    if (!bad && (f->present & IMK_FETCH_UID))
        bad |= jput(o, "uid", json_integer(f->uid));
    if (!bad)
        bad |= jput(o, "seq", json_integer(f->seq));
    if (!bad && (f->present & IMK_FETCH_FLAGS))
        bad |= jput(o, "flags", cli_json_strlist(f->flags));
    if (!bad && (f->present & IMK_FETCH_INTERNALDATE))
        bad |= jput(o, "internaldate", cli_json_datetime(&f->internaldate));
    if (!bad && (f->present & IMK_FETCH_RFC822_SIZE))
        bad |= jput(o, "size", cli_json_u64(f->rfc822_size));
    if (!bad && (f->present & IMK_FETCH_MODSEQ))
        bad |= jput(o, "modseq", cli_json_u64(f->modseq));
    if (!bad && (f->present & IMK_FETCH_ENVELOPE))
        bad |= jput(o, "envelope", cli_json_envelope(f->envelope, decoded_json));
    if (!bad && fr->want[FI_BODYSTRUCTURE] && (f->present & IMK_FETCH_BODYSTRUCTURE))
        bad |= jput(o, "bodystructure", cli_json_bodystructure(f->body));
    if (!bad && fr->want[FI_PREVIEW] && (f->present & IMK_FETCH_PREVIEW))
        bad |= jput(o, "preview", cli_json_str(f->preview));
    const char *data;
    size_t len;
    if (!bad && fr->want[FI_HEADER] && header_of(fr, f, &data, &len)) {
        bad |= jput(o, "header", cli_json_bytes(data, len));
        if (!bad && fr->header_truncated)
            bad |= jput(o, "header_truncated", json_true());
    }
    int rc = bad ? oom() : cli_out_json(fr->ctx, o);
    json_decref(o);
    return rc;
}

/* ---- the run ---- */

static int fetch_message(fetch_run *fr, const imk_fetch *f)
{
    int rc;
    if (!(f->present & IMK_FETCH_UID))
        return 0; /* not a record of ours (a bare flag update) */
    if (fr->ctx->json) {
        rc = fetch_json(fr, f);
    } else {
        frow r;
        memset(&r, 0, sizeof(r));
        if (row_build(fr, &r, f) != 0) {
            row_free(&r);
            return oom();
        }
        if (fr->widths_fixed) {
            rc = print_row(fr, &r);
            row_free(&r);
        } else {
            fr->rows[fr->nrows++] = r;
            rc = fr->nrows == FIRST_ROWS ? flush_rows(fr) : 0;
        }
    }
    fr->done++;
    if (fr->progress)
        cli_progress(fr->ctx, "fetch", fr->done, fr->total);
    return rc;
}

typedef struct set_count {
    uint32_t star;
    uint64_t n;
} set_count;

static void count_range(void *user, uint32_t a, uint32_t b)
{
    set_count *c = user;
    if (a == 0)
        a = c->star;
    if (b == 0)
        b = c->star;
    if (a > b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    if (b != 0)
        c->n += (uint64_t)b - a + 1;
}

/* "(UID FLAGS ...)" for the items wanted, each FETCH item once. */
static int fetch_items_text(fetch_run *fr, cli_buf *b, int json, int condstore)
{
    const char *names[FI_COUNT_ + 8];
    size_t n = 0;
    int use[FI_COUNT_];
    memcpy(use, fr->want, sizeof(use));
    use[FI_UID] = 1;
    if (json) {
        use[FI_FLAGS] = use[FI_DATE] = use[FI_SIZE] = use[FI_ENVELOPE] = 1;
        if (condstore)
            use[FI_MODSEQ] = 1;
    }
    for (int i = 0; i < FI_COUNT_; i++) {
        if (!use[i])
            continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= strcmp(names[j], fitems[i].imap) == 0;
        if (!dup)
            names[n++] = fitems[i].imap;
    }
    int rc = cli_buf_append(b, "(", 1);
    for (size_t j = 0; j < n && rc == 0; j++) {
        if (j != 0)
            rc = cli_buf_append(b, " ", 1);
        if (rc == 0)
            rc = add_text(b, names[j]);
    }
    if (rc == 0)
        rc = cli_buf_append(b, ")", 2); /* with the NUL */
    return rc;
}

static size_t digits(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

int cli_cmd_fetch(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(fetch_usage);
    char *ops[3] = {NULL, NULL, NULL};
    int nops = 0, ddash = 0;
    fetch_run fr;
    memset(&fr, 0, sizeof(fr));
    fr.ctx = ctx;
    int asked = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!ddash && strcmp(a, "--") == 0) {
            ddash = 1;
            continue;
        }
        if (!ddash && is_option(a))
            return USAGE("fetch", "fetch: unknown option '%s'", a);
        if (nops < 2) {
            ops[nops++] = argv[i];
            continue;
        }
        int item = fitem_lookup(a);
        if (item < 0)
            return USAGE("fetch",
                         "fetch: unknown item '%s'; items are uid flags date size modseq from "
                         "to cc bcc reply-to subject message-id preview envelope bodystructure "
                         "header",
                         a);
        if (!fr.want[item]) {
            fr.want[item] = 1;
            if (fitems[item].title != NULL)
                fr.cols[fr.ncols++] = item;
            else
                fr.blocks[fr.nblocks++] = item;
        }
        asked = 1;
    }
    if (nops < 1)
        return USAGE("fetch", "fetch: the MAILBOX is missing");
    if (nops < 2)
        return USAGE("fetch", "fetch: the UIDSET is missing (e.g. 1:* for every message)");
    if (!cli_msg_set_valid(ops[1]))
        return USAGE("fetch", "fetch: '%s' is not a UID set (e.g. 42, 1:100, 200:*, 1:*)", ops[1]);
    if (!asked) {
        static const int defaults[] = {FI_UID, FI_FLAGS, FI_DATE, FI_FROM, FI_SUBJECT, FI_SIZE};
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
            fr.want[defaults[i]] = 1;
            fr.cols[fr.ncols++] = defaults[i];
        }
    }
    if (fr.ncols == 0) {
        /* Only blocks asked for: the UID still says whose they are. */
        fr.want[FI_UID] = 1;
        fr.cols[fr.ncols++] = FI_UID;
    }
    fr.mailbox = ops[0];

    int rc;
    cli_buf items = {0};
    imk_fetch_iter *it = NULL;
    void *rows = NULL;
    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, ops[0], 1)) != 0)
        goto out;
    int condstore = imk_conn_has_capability(ctx->conn, "CONDSTORE");
    if (fr.want[FI_MODSEQ] && !condstore) {
        cli_error("fetch: the server does not offer CONDSTORE, so messages have no modseq; "
                  "leave the item out");
        rc = CLI_EXIT_NO;
        goto out;
    }
    if (fr.want[FI_PREVIEW] && !imk_conn_has_capability(ctx->conn, "PREVIEW")) {
        cli_error("fetch: the server does not offer PREVIEW; leave the item out");
        rc = CLI_EXIT_NO;
        goto out;
    }
    if (fetch_items_text(&fr, &items, ctx->json, condstore) != 0 ||
        cli_array_resize(&rows, FIRST_ROWS, sizeof(frow)) != 0) {
        rc = oom();
        goto out;
    }
    fr.rows = rows;

    /* Column floors that later rows cannot outgrow: UIDs and modseqs up
     * to what the mailbox has, dates of fixed width. */
    const imk_view *view = imk_conn_view(ctx->conn);
    uint64_t uidnext = imk_view_uidnext(view);
    for (size_t k = 0; k < fr.ncols; k++) {
        if (fr.cols[k] == FI_UID)
            fr.width[k] = digits(uidnext > 1 ? uidnext - 1 : 1);
        else if (fr.cols[k] == FI_MODSEQ)
            fr.width[k] = digits(imk_view_highest_modseq(view));
        else if (fr.cols[k] == FI_DATE)
            fr.width[k] = 16;
        else if (fr.cols[k] == FI_SIZE)
            fr.width[k] = 7;
    }
    set_count sc = {uidnext > 1 ? (uint32_t)(uidnext - 1) : 1, 0};
    parse_set(ops[1], count_range, &sc);
    fr.total = sc.n < imk_view_exists(view) ? sc.n : imk_view_exists(view);
    /* The rows show the progress on a terminal; a bar only when they go
     * elsewhere. */
    fr.progress = fr.total >= PROGRESS_MIN && !isatty(STDOUT_FILENO);

    int lrc = imk_conn_fetch(ctx->conn, 1, ops[1], items.data, &it);
    if (lrc < 0) {
        rc = cli_exit_error(ctx, "UID FETCH", lrc);
        goto out;
    }
    imk_fetch_item item;
    while (rc == 0 && (lrc = imk_fetch_iter_next(it, &item)) == 1) {
        switch (item.type) {
        case IMK_FI_BODY_BEGIN:
            cli_buf_clear(&fr.header);
            fr.header_truncated = 0;
            break;
        case IMK_FI_BODY_DATA:
            /* Past HEADER_MAX the rest is dropped: the first part is kept. */
            if (fr.header_truncated || fr.header.len + item.len > HEADER_MAX)
                fr.header_truncated = 1;
            else if (cli_buf_append(&fr.header, item.data, item.len) != 0)
                rc = oom();
            break;
        case IMK_FI_BODY_END:
            break;
        case IMK_FI_MESSAGE:
            rc = fetch_message(&fr, item.msg);
            cli_buf_clear(&fr.header);
            fr.header_truncated = 0;
            break;
        }
    }
    const imk_result *res = NULL;
    int erc = imk_fetch_iter_end(it, &res);
    it = NULL;
    if (rc != 0)
        goto out;
    if (lrc < 0 || erc < 0) {
        rc = cli_exit_error(ctx, "UID FETCH", lrc < 0 ? lrc : erc);
        goto out;
    }
    if (fr.progress)
        cli_progress_end(ctx);
    if (!ctx->json)
        rc = flush_rows(&fr);
    if (rc == 0)
        rc = cli_exit_result(ctx, "UID FETCH", res);
    if (rc == 0)
        rc = flush_stdout();
out:
    if (it != NULL)
        imk_fetch_iter_end(it, NULL);
    for (size_t i = 0; i < fr.nrows; i++)
        row_free(&fr.rows[i]);
    cli_array_resize(&rows, 0, sizeof(frow));
    cli_buf_free(&fr.header);
    cli_buf_free(&items);
    cli_mime_cleanup();
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* cat                                                                 */
/* ------------------------------------------------------------------ */

static int upper_eq(const char *p, const char *word)
{
    return strncasecmp(p, word, strlen(word)) == 0;
}

/*
 * section-spec    = section-msgtext / (section-part ["." section-text])
 * section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
 * section-part    = nz-number *("." nz-number)
 * section-text    = section-msgtext / "MIME"           (RFC 9051 section 9)
 * header-list is restricted here to field names of letters, digits and
 * "-_" separated by single spaces. With binary (BINARY[], section-binary)
 * only a section-part (or nothing) is allowed.
 */
static int section_valid(const char *s, int binary)
{
    const char *p = s;
    if (*p == '\0')
        return 1;
    int have_part = 0;
    while (is_digit(*p)) {
        if (read_nz_number(&p) == 0)
            return 0;
        have_part = 1;
        if (*p == '\0')
            return 1;
        if (*p != '.')
            return 0;
        p++;
        if (!is_digit(*p))
            break;
    }
    if (binary)
        return 0;
    if (have_part && upper_eq(p, "MIME") && p[4] == '\0')
        return 1;
    if (upper_eq(p, "TEXT") && p[4] == '\0')
        return 1;
    if (!upper_eq(p, "HEADER"))
        return 0;
    p += 6;
    if (*p == '\0')
        return 1;
    if (!upper_eq(p, ".FIELDS"))
        return 0;
    p += 7;
    if (upper_eq(p, ".NOT"))
        p += 4;
    if (p[0] != ' ' || p[1] != '(')
        return 0;
    p += 2;
    for (;;) {
        const char *start = p;
        while (is_digit(*p) || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-' ||
               *p == '_')
            p++;
        if (p == start)
            return 0;
        if (*p == ')')
            return p[1] == '\0';
        if (*p != ' ')
            return 0;
        p++;
    }
}

/* Whether the part numbered by the section's leading "n.n.n" is in the
 * structure (RFC 9051 section 6.4.5: a multipart's parts are 1..n; a
 * single part is part 1 of its parent; a message/rfc822 part's numbers
 * continue into the message's body). */
static int part_exists(const imk_body *root, const char *section)
{
    const imk_body *node = NULL; /* the part reached so far; NULL = the message */
    const char *p = section;
    while (is_digit(*p)) {
        uint32_t n = read_nz_number(&p);
        if (n == 0)
            return 0;
        /* What node's children are: the top level, a multipart's parts, or
         * the body of an attached message. */
        const imk_body *container = root;
        if (node != NULL) {
            if (node->multipart)
                container = node;
            else if (node->part_count == 1)
                container = &node->parts[0]; /* message/rfc822 */
            else
                return 0;
        }
        if (container == NULL)
            return 0;
        if (container->multipart) {
            if (n > container->part_count)
                return 0;
            node = &container->parts[n - 1];
        } else {
            if (n != 1)
                return 0;
            node = container;
        }
        if (*p != '.')
            break;
        p++;
    }
    return 1;
}

int cli_cmd_cat(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(cat_usage);
    char *ops[4] = {NULL, NULL, NULL, NULL};
    int nops = 0, decode = 0;
    int urc = collect_operands(argc, argv, "cat", "--decode", &decode, ops, 3, &nops);
    if (urc != 0)
        return urc;
    if (nops < 2)
        return USAGE("cat", "cat: %s is missing", nops == 0 ? "the MAILBOX" : "the UID");
    const char *uidp = ops[1];
    uint32_t uid = read_nz_number(&uidp);
    if (uid == 0 || *uidp != '\0')
        return USAGE("cat", "cat: '%s' is not a UID (a number from 1 to 4294967295)", ops[1]);
    const char *section = nops == 3 ? ops[2] : "";
    if (!section_valid(section, decode))
        return USAGE("cat",
                     decode ? "cat: with --decode, SECTION is a part number such as 2 or 1.3, "
                              "not '%s'"
                            : "cat: '%s' is not a section (HEADER, TEXT, 2, 1.3, 2.MIME, "
                              "HEADER.FIELDS (FROM SUBJECT), ...)",
                     section);
    /* The bytes are the result; events stay on standard error. */
    ctx->json = 0;

    char items[512];
    /* A part that does not exist comes back empty (Dovecot) or NIL: with a
     * part number, BODYSTRUCTURE tells the two apart from an empty part. */
    int has_part = is_digit(section[0]);
    snprintf(items, sizeof(items), "(%s%s[%s])", has_part ? "BODYSTRUCTURE " : "",
             decode ? "BINARY.PEEK" : "BODY.PEEK", section);
    char uidtext[16];
    snprintf(uidtext, sizeof(uidtext), "%" PRIu32, uid);

    int rc;
    imk_fetch_iter *it = NULL;
    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, ops[0], 1)) != 0)
        goto out;
    int lrc = imk_conn_fetch(ctx->conn, 1, uidtext, items, &it);
    if (lrc < 0) {
        rc = cli_exit_error(ctx, "UID FETCH", lrc);
        goto out;
    }
    int found = 0, got_bytes = 0, nil = 0, progress = 0;
    uint64_t total = 0, done = 0;
    imk_fetch_item item;
    while ((lrc = imk_fetch_iter_next(it, &item)) == 1) {
        if (rc != 0)
            continue; /* drain after a write error */
        switch (item.type) {
        case IMK_FI_BODY_BEGIN:
            got_bytes = 1;
            total = item.body->size;
            done = 0;
            progress = total >= (uint64_t)1024 * 1024 && !isatty(STDOUT_FILENO);
            break;
        case IMK_FI_BODY_DATA:
            rc = cli_msg_write(item.data, item.len);
            done += item.len;
            if (progress)
                cli_progress(ctx, "cat", done, total);
            break;
        case IMK_FI_BODY_END:
            break;
        case IMK_FI_MESSAGE: {
            const imk_fetch *f = item.msg;
            if ((f->present & IMK_FETCH_UID) && f->uid != uid)
                break;
            for (size_t i = 0; i < f->section_count; i++) {
                const imk_fetch_section *s = &f->sections[i];
                if (s->item != IMK_SECTION_BODY && s->item != IMK_SECTION_BINARY)
                    continue;
                found = 1;
                if (s->streamed)
                    continue;
                if (s->data.data == NULL) {
                    nil = 1;
                } else {
                    rc = cli_msg_write(s->data.data, s->data.len);
                    done += s->data.len;
                }
                got_bytes = 1;
            }
            if (f->present & IMK_FETCH_UID)
                found = 1;
            if (has_part && (f->present & IMK_FETCH_BODYSTRUCTURE) && done == 0 &&
                !part_exists(f->body, section))
                nil = 1;
            break;
        }
        }
    }
    const imk_result *res = NULL;
    int erc = imk_fetch_iter_end(it, &res);
    it = NULL;
    if (progress)
        cli_progress_end(ctx);
    if (rc != 0)
        goto out;
    if (lrc < 0 || erc < 0) {
        rc = cli_exit_error(ctx, "UID FETCH", lrc < 0 ? lrc : erc);
        goto out;
    }
    if ((rc = cli_exit_result(ctx, "UID FETCH", res)) != 0)
        goto out;
    if (!found && !got_bytes) {
        cli_error("cat: no message with UID %" PRIu32 " in %s; list the UIDs with "
                  "'imapkit search %s'",
                  uid, ops[0], ops[0]);
        rc = CLI_EXIT_NO;
        goto out;
    }
    if (nil) {
        cli_error("cat: message %" PRIu32 " in %s has no part %s; see its parts with "
                  "'imapkit fetch %s %" PRIu32 " bodystructure'",
                  uid, ops[0], section, ops[0], uid);
        rc = CLI_EXIT_NO;
        goto out;
    }
    rc = flush_stdout();
out:
    if (it != NULL)
        imk_fetch_iter_end(it, NULL);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* flag                                                                */
/* ------------------------------------------------------------------ */

static const char *const system_flags[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                           "\\Draft"};

/* The flag as sent: a system flag (with or without its backslash, any
 * case) or a keyword atom; NULL when it is neither. */
const char *cli_msg_flag_name(const char *s)
{
    for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
        if (strcasecmp(s, system_flags[i]) == 0 || strcasecmp(s, system_flags[i] + 1) == 0)
            return system_flags[i];
    }
    /* flag-keyword = "$MDNSent" / "$Forwarded" / ... / atom; a "\" flag
     * other than the system ones is a flag-extension, which servers refuse
     * to store (\Recent can never be stored, RFC 9051 section 2.3.2). */
    if (s[0] == '\\')
        return NULL;
    return atom_valid(s, strlen(s), 0) ? s : NULL;
}

/* UID FETCH set (UID FLAGS [MODSEQ]) printed as store objects. */
static int print_flags_json(cli_ctx *ctx, const char *set)
{
    int condstore = imk_conn_has_capability(ctx->conn, "CONDSTORE");
    imk_fetch_iter *it;
    int lrc =
        imk_conn_fetch(ctx->conn, 1, set, condstore ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)", &it);
    if (lrc < 0)
        return cli_exit_error(ctx, "UID FETCH", lrc);
    int rc = 0;
    imk_fetch_item item;
    while ((lrc = imk_fetch_iter_next(it, &item)) == 1) {
        if (rc != 0 || item.type != IMK_FI_MESSAGE || !(item.msg->present & IMK_FETCH_UID))
            continue;
        const imk_fetch *f = item.msg;
        json_t *o = json_object();
        int bad = o == NULL || jput(o, "uid", json_integer(f->uid)) ||
                  jput(o, "seq", json_integer(f->seq)) ||
                  jput(o, "flags", cli_json_strlist(f->flags)) ||
                  ((f->present & IMK_FETCH_MODSEQ) && jput(o, "modseq", cli_json_u64(f->modseq)));
        rc = bad ? oom() : cli_out_json(ctx, o);
        json_decref(o);
    }
    const imk_result *res = NULL;
    int erc = imk_fetch_iter_end(it, &res);
    if (rc != 0)
        return rc;
    if (lrc < 0 || erc < 0)
        return cli_exit_error(ctx, "UID FETCH", lrc < 0 ? lrc : erc);
    return cli_exit_result(ctx, "UID FETCH", res);
}

int cli_cmd_flag(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(flag_usage);
    const char *mailbox = NULL, *set = NULL;
    int ddash = 0;
    const char **add = NULL, **del = NULL;
    size_t nadd = 0, ndel = 0;
    void *pa = NULL, *pd = NULL;
    if (cli_array_resize(&pa, (size_t)argc, sizeof(char *)) != 0 ||
        cli_array_resize(&pd, (size_t)argc, sizeof(char *)) != 0) {
        cli_array_resize(&pa, 0, sizeof(char *));
        return oom();
    }
    add = pa;
    del = pd;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (!ddash && strcmp(a, "--") == 0) {
            ddash = 1;
            continue;
        }
        if (mailbox == NULL || set == NULL) {
            if (!ddash && is_option(a))
                rc = USAGE("flag", "flag: unknown option '%s'", a);
            else if (mailbox == NULL)
                mailbox = a;
            else
                set = a;
            continue;
        }
        if ((a[0] != '+' && a[0] != '-') || a[1] == '\0') {
            rc = USAGE("flag", "flag: '%s' must be +FLAG (add) or -FLAG (remove)", a);
            break;
        }
        const char *name = cli_msg_flag_name(a + 1);
        if (name == NULL) {
            rc = USAGE("flag",
                       "flag: '%s' is not a flag that can be stored: \\Seen \\Answered "
                       "\\Flagged \\Deleted \\Draft, or a keyword such as $Label",
                       a + 1);
            break;
        }
        if (a[0] == '+')
            add[nadd++] = name;
        else
            del[ndel++] = name;
    }
    if (rc == 0 && mailbox == NULL)
        rc = USAGE("flag", "flag: the MAILBOX is missing");
    else if (rc == 0 && set == NULL)
        rc = USAGE("flag", "flag: the UIDSET is missing");
    else if (rc == 0 && !cli_msg_set_valid(set))
        rc = USAGE("flag", "flag: '%s' is not a UID set (e.g. 42, 1:100, 200:*)", set);
    else if (rc == 0 && nadd + ndel == 0)
        rc = USAGE("flag", "flag: no +FLAG or -FLAG given");
    if (rc != 0)
        goto done;

    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, mailbox, 0)) != 0)
        goto out;
    const imk_result *res = NULL;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        const char *const *flags = pass == 0 ? add : del;
        size_t n = pass == 0 ? nadd : ndel;
        if (n == 0)
            continue;
        const char *action = pass == 0 ? "+FLAGS.SILENT" : "-FLAGS.SILENT";
        int lrc = imk_conn_store(ctx->conn, 1, set, action, flags, n, 0, &res);
        if (lrc < 0)
            rc = cli_exit_error(ctx, "UID STORE", lrc);
        else
            rc = cli_exit_result(ctx, "UID STORE", res);
    }
    if (rc == 0 && ctx->json)
        rc = print_flags_json(ctx, set);
    if (rc == 0)
        rc = flush_stdout();
out:
    cli_close(ctx);
done:
    cli_array_resize(&pa, 0, sizeof(char *));
    cli_array_resize(&pd, 0, sizeof(char *));
    return rc;
}

/* ------------------------------------------------------------------ */
/* copy, move                                                          */
/* ------------------------------------------------------------------ */

/* After a NO with [TRYCREATE] (RFC 9051 section 7.1): how to go on. */
static void trycreate_hint(const imk_result *res, const char *dest)
{
    if (res != NULL && res->code != NULL && res->code->kind == IMK_CODE_TRYCREATE)
        fprintf(stderr, "imapkit: %s does not exist; create it with 'imapkit create %s'\n", dest,
                dest);
}

int cli_cmd_copy(cli_ctx *ctx, int argc, char **argv)
{
    int move = strcmp(argv[0], "move") == 0;
    const char *cmd = move ? "move" : "copy";
    char see[32];
    snprintf(see, sizeof(see), "imapkit %s --help", cmd);
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(copy_usage);
    char *ops[3] = {NULL, NULL, NULL};
    int nops = 0;
    int urc = collect_operands(argc, argv, cmd, NULL, NULL, ops, 3, &nops);
    if (urc != 0)
        return urc;
    if (nops < 3)
        return cli_usage_error(see, "%s: %s is missing", cmd,
                               nops == 0   ? "the MAILBOX"
                               : nops == 1 ? "the UIDSET"
                                           : "the destination mailbox DEST");
    if (!cli_msg_set_valid(ops[1]))
        return cli_usage_error(see, "%s: '%s' is not a UID set (e.g. 42, 1:100, 200:*)", cmd,
                               ops[1]);

    int rc;
    uint32_t *src = NULL, *dst = NULL;
    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, ops[0], !move)) != 0)
        goto out;
    uint32_t exists = imk_view_exists(imk_conn_view(ctx->conn));
    const imk_result *res = NULL;
    const char *what = move ? "UID MOVE" : "UID COPY";
    int lrc = move ? imk_conn_move(ctx->conn, 1, ops[1], ops[2], &res)
                   : imk_conn_copy(ctx->conn, 1, ops[1], ops[2], &res);
    if (lrc < 0) {
        rc = cli_exit_error(ctx, what, lrc);
        goto out;
    }
    if ((rc = cli_exit_result(ctx, what, res)) != 0) {
        trycreate_hint(res, ops[2]);
        goto out;
    }
    /* COPYUID (RFC 4315 section 3): source and destination UIDs in the same
     * order. Never more pairs than the mailbox had messages: a server's set
     * cannot make us allocate beyond that. */
    size_t n = 0;
    int have_map = 0;
    if (res->has_copyuid) {
        size_t ns = cli_msg_seqset_expand(res->source_uids, NULL, 0);
        size_t nd = cli_msg_seqset_expand(res->dest_uids, NULL, 0);
        if (ns == nd && ns <= exists) {
            void *ps = NULL, *pd = NULL;
            if (ns != 0 && (cli_array_resize(&ps, ns, sizeof(uint32_t)) != 0 ||
                            cli_array_resize(&pd, ns, sizeof(uint32_t)) != 0)) {
                cli_array_resize(&ps, 0, sizeof(uint32_t));
                rc = oom();
                goto out;
            }
            src = ps;
            dst = pd;
            cli_msg_seqset_expand(res->source_uids, src, ns);
            cli_msg_seqset_expand(res->dest_uids, dst, ns);
            n = ns;
            have_map = 1;
        }
    }
    if (ctx->json) {
        json_t *o = json_object();
        json_t *map = have_map ? json_array() : json_null();
        int bad = o == NULL || map == NULL;
        for (size_t i = 0; i < n && !bad; i++) {
            json_t *p = json_object();
            bad = p == NULL || jput(p, "uid", json_integer(src[i])) ||
                  jput(p, "dest_uid", json_integer(dst[i])) || json_array_append(map, p) != 0;
            json_decref(p);
        }
        if (!bad)
            bad = jput(o, "operation", json_string(cmd)) ||
                  jput(o, "mailbox", json_string(ops[0])) ||
                  jput(o, "destination", json_string(ops[2])) ||
                  jput(o, "uidvalidity",
                       res->has_copyuid ? cli_json_u64(res->uidvalidity) : json_null()) ||
                  json_object_set(o, "map", map) != 0;
        json_decref(map);
        rc = bad ? oom() : cli_out_json(ctx, o);
        json_decref(o);
    } else if (have_map && n != 0) {
        int w1 = (int)digits(src[0]), w2 = 0;
        for (size_t i = 0; i < n; i++) {
            if ((int)digits(src[i]) > w1)
                w1 = (int)digits(src[i]);
            if ((int)digits(dst[i]) > w2)
                w2 = (int)digits(dst[i]);
        }
        if (w1 < 3)
            w1 = 3;
        printf("%*s  %s\n", w1, "UID", "NEW UID");
        for (size_t i = 0; i < n; i++)
            printf("%*" PRIu32 "  %" PRIu32 "\n", w1, src[i], dst[i]);
    }
    if (rc == 0)
        rc = flush_stdout();
out:
    free_uids(&src);
    free_uids(&dst);
    cli_close(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* expunge                                                             */
/* ------------------------------------------------------------------ */

/* Make the view learn the UIDs of the messages about to go, so that the
 * EXPUNGE responses (which carry sequence numbers) can be told as UIDs. */
static int learn_deleted_uids(cli_ctx *ctx, const char *set)
{
    /* The set went through cli_msg_set_valid, so it may stand in the
     * criteria text (a %s argument would be quoted, which UID does not
     * take). */
    const char *crit = "DELETED";
    cli_buf b = {0};
    if (set != NULL) {
        if (cli_buf_append(&b, "DELETED UID ", 12) != 0 ||
            cli_buf_append(&b, set, strlen(set) + 1) != 0) {
            cli_buf_free(&b);
            return oom();
        }
        crit = b.data;
    }
    const imk_result *res = NULL;
    int lrc = imk_conn_search(ctx->conn, 1, crit, NULL, 0, &res);
    cli_buf_free(&b);
    if (lrc < 0)
        return cli_exit_error(ctx, "UID SEARCH", lrc);
    int rc = cli_exit_result(ctx, "UID SEARCH", res);
    if (rc != 0)
        return rc;
    uint32_t *uids = NULL;
    size_t n = 0;
    if (result_uids(res, &uids, &n) != 0)
        return oom();
    cli_buf s = {0};
    if (n != 0 && (cli_msg_uids_to_set(uids, n, &s) != 0 || cli_buf_append(&s, "", 1) != 0))
        rc = oom();
    free_uids(&uids);
    if (rc == 0 && n != 0) {
        imk_fetch_iter *it;
        lrc = imk_conn_fetch(ctx->conn, 1, s.data, "(UID)", &it);
        if (lrc < 0) {
            rc = cli_exit_error(ctx, "UID FETCH", lrc);
        } else {
            imk_fetch_item item;
            while ((lrc = imk_fetch_iter_next(it, &item)) == 1)
                ;
            int erc = imk_fetch_iter_end(it, &res);
            if (lrc < 0 || erc < 0)
                rc = cli_exit_error(ctx, "UID FETCH", lrc < 0 ? lrc : erc);
            else
                rc = cli_exit_result(ctx, "UID FETCH", res);
        }
    }
    cli_buf_free(&s);
    return rc;
}

int cli_cmd_expunge(cli_ctx *ctx, int argc, char **argv)
{
    if (cli_msg_help_asked(argc, argv))
        return cli_msg_help(expunge_usage);
    char *ops[2] = {NULL, NULL};
    int nops = 0;
    int urc = collect_operands(argc, argv, "expunge", NULL, NULL, ops, 2, &nops);
    if (urc != 0)
        return urc;
    if (nops < 1)
        return USAGE("expunge", "expunge: the MAILBOX is missing");
    if (nops == 2 && !cli_msg_set_valid(ops[1]))
        return USAGE("expunge", "expunge: '%s' is not a UID set (e.g. 42, 1:100, 200:*)", ops[1]);

    int rc;
    uint32_t *uids = NULL;
    if ((rc = cli_open(ctx)) != 0 || (rc = cli_select(ctx, ops[0], 0)) != 0)
        goto out;
    if (nops == 2 && !imk_conn_has_capability(ctx->conn, "UIDPLUS")) {
        cli_error("expunge: the server does not offer UIDPLUS, so it cannot expunge only the "
                  "messages of a set; run 'imapkit expunge %s' to expunge every message marked "
                  "\\Deleted",
                  ops[0]);
        rc = CLI_EXIT_NO;
        goto out;
    }
    if ((rc = learn_deleted_uids(ctx, nops == 2 ? ops[1] : NULL)) != 0)
        goto out;
    const imk_result *res = NULL;
    const char *what = nops == 2 ? "UID EXPUNGE" : "EXPUNGE";
    int lrc = imk_conn_expunge(ctx->conn, nops == 2 ? ops[1] : NULL, &res);
    if (lrc < 0) {
        rc = cli_exit_error(ctx, what, lrc);
        goto out;
    }
    if ((rc = cli_exit_result(ctx, what, res)) != 0)
        goto out;
    size_t n = res->expunged_count;
    void *p = NULL;
    if (n != 0) {
        if (cli_array_resize(&p, n, sizeof(uint32_t)) != 0) {
            rc = oom();
            goto out;
        }
        memcpy(p, res->expunged_uids, n * sizeof(uint32_t));
    }
    uids = p;
    n = sort_uids(uids, n);
    if (ctx->json)
        rc = print_uids_json(ctx, ops[0], uids, n);
    else
        rc = print_uid_line(uids, n);
    if (rc == 0)
        rc = flush_stdout();
out:
    free_uids(&uids);
    cli_close(ctx);
    return rc;
}
