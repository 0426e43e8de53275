/* SPDX-License-Identifier: MIT */
/*
 * The reader: the framer that splits the server's byte stream into
 * responses, and the driver that hands each one to the parser.
 *
 * IMAP framing (RFC 9051 section 2.2): a response is a line ending in CRLF,
 * except that a line ending in a literal announcement "{n}" (or "~{n}",
 * RFC 3516 literal8) is followed by exactly n bytes of data and then the
 * rest of the response. Literal bytes are never looked at as protocol.
 *
 *            +--------------------------------------------+
 *            v                                            |
 *   LINE --"{n}" CRLF, inline--> LITERAL (copy n bytes) --+
 *     |  \                                                |
 *     |   "{n}" CRLF after BODY[..]/BINARY[..]/RFC822*     |
 *     |    \-> BODY (BEGIN, CHUNK..., END; no copy) ------+
 *     |
 *     +-- CRLF without literal --> parse --> RESPONSE or ERROR event
 *
 * Invariants:
 *   - Memory is bounded by the options: the input buffer, the response
 *     buffer (at most max_response_size) and the arena. A body-section
 *     literal never enters the response buffer: its chunks point into the
 *     input buffer, so a 1 GiB message costs no more than a small one.
 *   - A response that breaks a limit is discarded to its true end (its
 *     literals are still counted, so framing is kept) and reported as one
 *     ERROR event; the next response is read normally.
 *   - The common case, a whole response without literals already in the
 *     input buffer, is parsed in place without copying.
 *   - Events point into reader memory that stays untouched until the next
 *     call on the reader; compaction of the input buffer happens only in
 *     feed/buffer, and the arena is reset at the start of next().
 */
#include "imapkit/reader.h"

#include "proto/parser.h"
#include "proto/reader_int.h"
#include "util/alloc.h"
#include "util/arena.h"
#include "util/buf.h"

#include <string.h>

enum reader_state {
    ST_LINE,    /* reading a line (or the rest of one after a literal) */
    ST_LITERAL, /* copying (or skipping) an inline literal */
    ST_BODY     /* streaming a body-section literal */
};

enum body_phase { BODY_BEGIN_PENDING, BODY_DATA, BODY_END_PENDING };

struct imk_reader {
    imk_allocator user_alloc; /* the caller's allocator */
    imk_allocator alloc;      /* counting wrapper around it */
    uint64_t allocations;
    size_t memory;

    imk_reader_options opts;
    imk__parse_limits limits;

    /* input buffer: unconsumed bytes are in[in_start, in_end) */
    char *in;
    size_t in_cap, in_start, in_end;
    uint64_t stream_pos; /* stream offset of in[in_start] */
    int eof;

    /* the response being assembled */
    imk__buf resp;
    imk__streamed *streamed;
    size_t streamed_count, streamed_cap;
    uint64_t resp_offset;  /* stream offset of the response's first byte */
    uint64_t resp_skipped; /* streamed literal bytes so far (not in resp) */
    size_t line_start;     /* offset in resp of the current line fragment */
    int in_response;       /* bytes of a response have been seen */
    int no_literals;       /* status/continuation response: "{n}" is text */
    int first_line_done;

    enum reader_state state;
    uint64_t literal_left;

    /* the current line: its length, its first bytes (first line only: to
     * classify the response) and, while skipping, its last bytes (to find a
     * literal announcement that was not stored) */
    uint64_t line_len;
    char head[64];
    size_t head_len;
    char skip_tail[32];
    size_t skip_tail_len;

    /* skipping a response over a limit */
    int skipping;
    int skip_code;
    uint64_t skip_offset;
    const char *skip_msg;
    char skip_detail[160];

    /* streaming a body literal */
    enum body_phase body_phase;
    imk_body_info body;
    char body_spec[256];

    /* per-event storage */
    imk__arena arena;
    int reset_pending;
    imk_parse_error error;
    char error_msg[256];
    char fatal_msg[256];

    uint64_t responses, errors;
};

/* ---------------------------------------------------------------------- */
/* Allocation accounting                                                  */
/* ---------------------------------------------------------------------- */

/* Block headers so that free/realloc know the size for `memory`. */
typedef union size_header {
    size_t size;
    max_align_t align;
} size_header;

static void *count_malloc(size_t size, void *user)
{
    imk_reader *r = user;
    r->allocations++;
    if (size > SIZE_MAX - sizeof(size_header))
        return NULL;
    size_header *h = r->user_alloc.malloc(size + sizeof(size_header), r->user_alloc.user);
    if (h == NULL)
        return NULL;
    h->size = size;
    r->memory += size;
    return h + 1;
}

static void *count_realloc(void *ptr, size_t size, void *user)
{
    imk_reader *r = user;
    if (ptr == NULL)
        return count_malloc(size, user);
    r->allocations++;
    if (size > SIZE_MAX - sizeof(size_header))
        return NULL;
    size_header *old = (size_header *)ptr - 1;
    size_t old_size = old->size;
    size_header *h = r->user_alloc.realloc(old, size + sizeof(size_header), r->user_alloc.user);
    if (h == NULL)
        return NULL;
    h->size = size;
    r->memory = r->memory - old_size + size;
    return h + 1;
}

static void count_free(void *ptr, void *user)
{
    imk_reader *r = user;
    if (ptr == NULL)
        return;
    size_header *h = (size_header *)ptr - 1;
    r->memory -= h->size;
    r->user_alloc.free(h, r->user_alloc.user);
}

/* ---------------------------------------------------------------------- */
/* Creation                                                               */
/* ---------------------------------------------------------------------- */

#define DEFAULT_INPUT_BUFFER ((size_t)64 * 1024)
#define DEFAULT_MAX_LINE ((size_t)64 * 1024)
#define DEFAULT_MAX_LITERAL ((size_t)16 * 1024 * 1024)
#define DEFAULT_MAX_RESPONSE ((size_t)32 * 1024 * 1024)
#define DEFAULT_MAX_BODY ((uint64_t)1 << 62)
#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_ITEMS ((size_t)1000000)
#define DEFAULT_MAX_PARSED ((size_t)64 * 1024 * 1024)
#define MIN_INPUT_BUFFER ((size_t)64)

static void resolve_options(imk_reader *r, const imk_reader_options *in)
{
    imk_reader_options o;
    memset(&o, 0, sizeof(o));
    if (in != NULL)
        o = *in;
    o.version = IMK_READER_OPTIONS_VERSION;
    if (o.input_buffer_size == 0)
        o.input_buffer_size = DEFAULT_INPUT_BUFFER;
    if (o.input_buffer_size < MIN_INPUT_BUFFER)
        o.input_buffer_size = MIN_INPUT_BUFFER;
    if (o.max_line_length == 0)
        o.max_line_length = DEFAULT_MAX_LINE;
    if (o.max_literal_size == 0)
        o.max_literal_size = DEFAULT_MAX_LITERAL;
    if (o.max_response_size == 0)
        o.max_response_size = DEFAULT_MAX_RESPONSE;
    if (o.max_body_size == 0)
        o.max_body_size = DEFAULT_MAX_BODY;
    if (o.max_depth == 0)
        o.max_depth = DEFAULT_MAX_DEPTH;
    if (o.max_list_items == 0)
        o.max_list_items = DEFAULT_MAX_ITEMS;
    if (o.max_parsed_size == 0)
        o.max_parsed_size = DEFAULT_MAX_PARSED;
    if (o.quirks == 0)
        o.quirks = IMK_READER_QUIRKS_DEFAULT;
    else if (o.quirks & IMK_READER_STRICT)
        o.quirks = 0;
    r->opts = o;
    r->limits.max_depth = o.max_depth;
    r->limits.max_list_items = o.max_list_items;
    r->limits.quirks = o.quirks;
    r->limits.utf8_mailboxes = o.utf8_mailboxes;
}

int imk_reader_new(const imk_reader_options *opts, const imk_allocator *alloc, imk_reader **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    if (opts != NULL && opts->version != IMK_READER_OPTIONS_VERSION)
        return IMK_EINVAL;
    imk_allocator base;
    imk__alloc_init(&base, alloc);
    imk_reader *r = base.malloc(sizeof(*r), base.user);
    if (r == NULL)
        return IMK_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->user_alloc = base;
    r->alloc.malloc = count_malloc;
    r->alloc.realloc = count_realloc;
    r->alloc.free = count_free;
    r->alloc.user = r;
    resolve_options(r, opts);
    r->in_cap = r->opts.input_buffer_size;
    r->in = imk__malloc(&r->alloc, r->in_cap);
    if (r->in == NULL) {
        base.free(r, base.user);
        return IMK_ENOMEM;
    }
    imk__buf_init(&r->resp, &r->alloc, r->opts.max_response_size);
    /* The parsed form of a response can be several times larger than its
     * bytes (a BODYSTRUCTURE node is 256 bytes for ~30 bytes of input), so
     * it has a bound of its own. */
    imk__arena_init(&r->arena, &r->alloc, 16 * 1024, r->opts.max_parsed_size);
    r->state = ST_LINE;
    *out = r;
    return 0;
}

void imk_reader_free(imk_reader *r)
{
    if (r == NULL)
        return;
    imk__arena_free(&r->arena);
    imk__buf_free(&r->resp);
    imk__free(&r->alloc, r->streamed);
    imk__free(&r->alloc, r->in);
    imk_allocator base = r->user_alloc;
    base.free(r, base.user);
}

void imk_reader_set_utf8(imk_reader *r, int on)
{
    r->opts.utf8_mailboxes = on;
    r->limits.utf8_mailboxes = on;
}

const char *imk_reader_error(const imk_reader *r)
{
    return r->fatal_msg;
}

void imk_reader_get_stats(const imk_reader *r, imk_reader_stats *out)
{
    out->bytes_in = r->stream_pos + (r->in_end - r->in_start);
    out->responses = r->responses;
    out->errors = r->errors;
    out->allocations = r->allocations;
    out->memory = r->memory;
}

/* ---------------------------------------------------------------------- */
/* Input                                                                  */
/* ---------------------------------------------------------------------- */

static void compact(imk_reader *r)
{
    if (r->in_start == 0)
        return;
    size_t n = r->in_end - r->in_start;
    if (n != 0)
        memmove(r->in, r->in + r->in_start, n);
    r->in_start = 0;
    r->in_end = n;
}

char *imk_reader_buffer(imk_reader *r, size_t *room_out)
{
    compact(r);
    *room_out = r->in_cap - r->in_end;
    return r->in + r->in_end;
}

int imk_reader_commit(imk_reader *r, size_t len)
{
    if (len > r->in_cap - r->in_end)
        return IMK_EINVAL;
    r->in_end += len;
    return 0;
}

size_t imk_reader_feed(imk_reader *r, const void *data, size_t len)
{
    size_t room;
    char *space = imk_reader_buffer(r, &room);
    size_t n = len < room ? len : room;
    if (n != 0)
        memcpy(space, data, n);
    r->in_end += n;
    return n;
}

void imk__reader_take_unread(imk_reader *r, const char **data, size_t *len)
{
    *data = r->in + r->in_start;
    *len = r->in_end - r->in_start;
    /* Not counted in stream_pos: these bytes are not IMAP; offsets in later
     * error reports count the decompressed stream. */
    r->in_start = r->in_end;
}

void imk_reader_eof(imk_reader *r)
{
    r->eof = 1;
}

/* ---------------------------------------------------------------------- */
/* Framing helpers                                                        */
/* ---------------------------------------------------------------------- */

static void consume(imk_reader *r, size_t n)
{
    r->in_start += n;
    r->stream_pos += n;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int word_eq(const char *p, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)p[i]) != ascii_lower((unsigned char)word[i]))
            return 0;
    return 1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/*
 * Decide, from the first line of a response, whether "{n}" at its end can
 * announce a literal. continue-req and resp-cond-* / resp-cond-bye carry
 * resp-text, whose `text` may legally end in "{5}" (RFC 9051 section 9:
 * text = 1*TEXT-CHAR); treating that as a literal would swallow the next
 * responses.
 */
static int line_has_no_literals(const char *line, size_t len)
{
    if (len != 0 && line[0] == '+')
        return 1;
    size_t i = 0;
    while (i < len && line[i] != ' ')
        i++;
    while (i < len && line[i] == ' ') /* Q6: tolerate doubled SP here too */
        i++;
    size_t w = i;
    while (i < len && line[i] != ' ' && line[i] != '\r' && line[i] != '\n')
        i++;
    const char *word = line + w;
    size_t wl = i - w;
    return word_eq(word, wl, "OK") || word_eq(word, wl, "NO") || word_eq(word, wl, "BAD") ||
           word_eq(word, wl, "BYE") || word_eq(word, wl, "PREAUTH");
}

/*
 * If the line fragment line[0..len) (without its CRLF) ends in a literal
 * announcement, store its size and the offset of '{' (or '~'), return 1.
 * Returns -1 when the number overflows (framing cannot be trusted).
 *   literal  = "{" number64 ["+"] "}" CRLF     (RFC 9051, 7888)
 *   literal8 = "~{" number64 "}" CRLF          (RFC 3516)
 */
static int find_literal(const char *line, size_t len, uint64_t *size, size_t *brace, int *binary)
{
    if (len < 3 || line[len - 1] != '}')
        return 0;
    size_t end = len - 1;
    size_t i = end;
    while (i > 0 && is_digit((unsigned char)line[i - 1]))
        i--;
    if (i == end || i == 0 || line[i - 1] != '{')
        return 0;
    *brace = i - 1;
    *binary = 0;
    if (i >= 2 && line[i - 2] == '~') {
        *brace = i - 2;
        *binary = 1;
    }
    uint64_t n = 0;
    for (size_t k = i; k < end; k++) {
        unsigned d = (unsigned)(line[k] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *size = n;
    return 1;
}

/* Parse the "* n FETCH" prefix of a response; returns 1 and the number. */
static int fetch_prefix(const char *p, size_t len, uint32_t *seq)
{
    size_t i = 0;
    if (len < 2 || p[0] != '*' || p[1] != ' ')
        return 0;
    i = 2;
    while (i < len && p[i] == ' ')
        i++;
    uint64_t n = 0;
    size_t start = i;
    while (i < len && is_digit((unsigned char)p[i]) && n <= UINT32_MAX) {
        n = n * 10 + (unsigned)(p[i] - '0');
        i++;
    }
    if (i == start || n > UINT32_MAX || i >= len || p[i] != ' ')
        return 0;
    while (i < len && p[i] == ' ')
        i++;
    if (len - i < 5 || !word_eq(p + i, 5, "FETCH"))
        return 0;
    *seq = (uint32_t)n;
    return 1;
}

/*
 * Find "UID n" among the top-level items of the first FETCH line, skipping
 * values (quoted strings, nested lists) so that text inside a subject is
 * never mistaken for the item. Stops at a literal.
 */
static int scan_uid(const char *p, size_t len, uint32_t *uid)
{
    const char *paren = memchr(p, '(', len);
    if (paren == NULL)
        return 0;
    size_t i = (size_t)(paren - p) + 1;
    int depth = 0;
    int expect_name = 1;
    while (i < len) {
        char c = p[i];
        if (c == ' ') {
            i++;
            continue;
        }
        if (c == '"') {
            i++;
            while (i < len && p[i] != '"') {
                if (p[i] == '\\')
                    i++;
                i++;
            }
            i++;
            if (depth == 0)
                expect_name = !expect_name;
            continue;
        }
        if (c == '{' || c == '~')
            return 0;
        if (c == '(') {
            depth++;
            i++;
            continue;
        }
        if (c == ')') {
            if (depth == 0)
                return 0;
            depth--;
            i++;
            if (depth == 0)
                expect_name = !expect_name;
            continue;
        }
        size_t s = i;
        int bracket = 0;
        while (i < len && (bracket || (p[i] != ' ' && p[i] != '(' && p[i] != ')'))) {
            if (p[i] == '[')
                bracket = 1;
            else if (p[i] == ']')
                bracket = 0;
            i++;
        }
        if (depth != 0)
            continue;
        if (expect_name && word_eq(p + s, i - s, "UID")) {
            while (i < len && p[i] == ' ')
                i++;
            uint64_t n = 0;
            size_t ds = i;
            while (i < len && is_digit((unsigned char)p[i]) && n <= UINT32_MAX) {
                n = n * 10 + (unsigned)(p[i] - '0');
                i++;
            }
            if (i == ds || n > UINT32_MAX)
                return 0;
            *uid = (uint32_t)n;
            return 1;
        }
        expect_name = !expect_name;
    }
    return 0;
}

/*
 * Is the token just before the literal announcement at line[brace] a
 * body-section item whose value must be streamed?
 *   msg-att-static =/ "BODY" section ["<" number ">"] SP nstring
 *                   / "BINARY" section-binary [origin] SP (nstring / literal8)
 *                   / "RFC822" / "RFC822.HEADER" / "RFC822.TEXT" SP nstring
 * (RFC 9051 section 9; RFC 3501 for RFC822*). Fills r->body.
 */
static int body_item_before(imk_reader *r, const char *frag, size_t brace)
{
    if (brace < 2 || frag[brace - 1] != ' ')
        return 0;
    size_t end = brace - 1; /* one past the token */
    size_t i = end;
    int has_origin = 0;
    uint64_t origin = 0;
    if (frag[i - 1] == '>') {
        size_t close = i - 1;
        size_t k = close;
        while (k > 0 && is_digit((unsigned char)frag[k - 1]))
            k--;
        if (k == close || k == 0 || frag[k - 1] != '<' || close - k > 19)
            return 0;
        for (size_t d = k; d < close; d++)
            origin = origin * 10 + (unsigned)(frag[d] - '0');
        has_origin = 1;
        i = k - 1;
    }
    size_t spec_start = 0, spec_end = 0;
    int has_section = 0;
    if (i > 0 && frag[i - 1] == ']') {
        spec_end = i - 1;
        size_t k = spec_end;
        while (k > 0 && frag[k - 1] != '[')
            k--;
        if (k == 0)
            return 0;
        spec_start = k;
        has_section = 1;
        i = k - 1;
    }
    size_t name_end = i;
    while (i > 0 && frag[i - 1] != ' ' && frag[i - 1] != '(')
        i--;
    const char *name = frag + i;
    size_t nl = name_end - i;
    imk_section_item item;
    if (has_section && word_eq(name, nl, "BODY"))
        item = IMK_SECTION_BODY;
    else if (has_section && word_eq(name, nl, "BINARY"))
        item = IMK_SECTION_BINARY;
    else if (!has_section && !has_origin && word_eq(name, nl, "RFC822"))
        item = IMK_SECTION_RFC822;
    else if (!has_section && !has_origin && word_eq(name, nl, "RFC822.HEADER"))
        item = IMK_SECTION_RFC822_HEADER;
    else if (!has_section && !has_origin && word_eq(name, nl, "RFC822.TEXT"))
        item = IMK_SECTION_RFC822_TEXT;
    else
        return 0;
    r->body.item = item;
    r->body.has_origin = has_origin;
    r->body.origin = origin;
    size_t sl = spec_end - spec_start;
    if (sl >= sizeof(r->body_spec))
        sl = sizeof(r->body_spec) - 1; /* descriptive only; the FETCH has it whole */
    if (sl != 0)
        memcpy(r->body_spec, frag + spec_start, sl);
    r->body_spec[sl] = '\0';
    r->body.spec.data = r->body_spec;
    r->body.spec.len = sl;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Response assembly                                                      */
/* ---------------------------------------------------------------------- */

static void start_skipping(imk_reader *r, int code, uint64_t offset, const char *msg,
                           uint64_t limit)
{
    if (r->skipping)
        return;
    r->skipping = 1;
    size_t stored = r->resp.len - r->line_start;
    size_t keep = stored < sizeof(r->skip_tail) ? stored : sizeof(r->skip_tail);
    if (keep != 0)
        memcpy(r->skip_tail, r->resp.data + r->resp.len - keep, keep);
    r->skip_tail_len = keep;
    r->skip_code = code;
    r->skip_offset = offset;
    r->skip_msg = msg;
    if (limit != 0) {
        /* msg has one %llu-free form: append the limit as text */
        size_t ml = strlen(msg);
        if (ml > sizeof(r->skip_detail) - 40)
            ml = sizeof(r->skip_detail) - 40;
        memcpy(r->skip_detail, msg, ml);
        char num[24];
        size_t k = sizeof(num);
        uint64_t v = limit;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        const char *pre = " (limit ";
        memcpy(r->skip_detail + ml, pre, strlen(pre));
        ml += strlen(pre);
        memcpy(r->skip_detail + ml, num + k, sizeof(num) - k);
        ml += sizeof(num) - k;
        memcpy(r->skip_detail + ml, " bytes)", 8);
        r->skip_msg = r->skip_detail;
    }
}

static int append_resp(imk_reader *r, const char *p, size_t n)
{
    if (r->skipping)
        return 0;
    int rc = imk__buf_append(&r->resp, p, n);
    if (rc == IMK_ELIMIT) {
        start_skipping(r, IMK_ELIMIT, r->stream_pos + (r->resp.max - r->resp.len),
                       "response longer than max_response_size", r->opts.max_response_size);
        return 0;
    }
    return rc;
}

static int push_streamed(imk_reader *r, size_t offset, uint64_t size)
{
    if (r->streamed_count == r->streamed_cap) {
        size_t cap = r->streamed_cap == 0 ? 4 : r->streamed_cap * 2;
        size_t bytes;
        if (!imk__mul_ok(cap, sizeof(*r->streamed), &bytes))
            return IMK_ENOMEM;
        imk__streamed *p = imk__realloc(&r->alloc, r->streamed, bytes);
        if (p == NULL)
            return IMK_ENOMEM;
        r->streamed = p;
        r->streamed_cap = cap;
    }
    r->streamed[r->streamed_count].offset = offset;
    r->streamed[r->streamed_count].size = size;
    r->streamed_count++;
    return 0;
}

static void reset_response(imk_reader *r)
{
    imk__buf_clear(&r->resp);
    r->streamed_count = 0;
    r->resp_skipped = 0;
    r->line_start = 0;
    r->in_response = 0;
    r->no_literals = 0;
    r->first_line_done = 0;
    r->skipping = 0;
    r->state = ST_LINE;
    r->literal_left = 0;
    r->line_len = 0;
    r->head_len = 0;
    r->skip_tail_len = 0;
}

static void copy_raw(imk_reader *r, const char *p, size_t len, imk_str *out)
{
    size_t n = len < 1024 ? len : 1024;
    char *copy = imk__arena_strndup(&r->arena, p, n);
    out->data = copy != NULL ? copy : "";
    out->len = copy != NULL ? n : 0;
}

static void set_error(imk_reader *r, imk_event *ev, int code, uint64_t offset, const char *msg,
                      const char *raw, size_t raw_len)
{
    memset(&r->error, 0, sizeof(r->error));
    r->error.code = code;
    r->error.offset = offset;
    r->error.response_offset = r->resp_offset;
    size_t ml = strlen(msg);
    if (ml >= sizeof(r->error_msg))
        ml = sizeof(r->error_msg) - 1;
    memcpy(r->error_msg, msg, ml);
    r->error_msg[ml] = '\0';
    r->error.message = r->error_msg;
    copy_raw(r, raw, raw_len, &r->error.raw);
    memset(ev, 0, sizeof(*ev));
    ev->type = IMK_EVENT_ERROR;
    ev->error = &r->error;
    r->errors++;
}

/* Stream offset of position `pos` in the response buffer, counting the
 * streamed literal bytes that are not in it. */
static uint64_t stream_offset_of(const imk_reader *r, size_t pos)
{
    uint64_t off = r->resp_offset + pos;
    for (size_t i = 0; i < r->streamed_count; i++)
        if (r->streamed[i].offset < pos)
            off += r->streamed[i].size;
    return off;
}

/* Parse a complete response held at buf[0..len). Returns 1 (event) or a
 * fatal code. */
static int deliver(imk_reader *r, imk_event *ev, const char *buf, size_t len)
{
    imk__parse_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.limits = &r->limits;
    ctx.arena = &r->arena;
    ctx.buf = buf;
    ctx.len = len;
    ctx.streamed = r->streamed;
    ctx.streamed_count = r->streamed_count;
    imk_response *resp = NULL;
    int rc = imk__parse_response(&ctx, &resp);
    r->reset_pending = 1;
    if (rc == 0 && resp != NULL) {
        memset(ev, 0, sizeof(*ev));
        ev->type = IMK_EVENT_RESPONSE;
        ev->response = resp;
        r->responses++;
        return 1;
    }
    if (rc == IMK_ENOMEM || ctx.err_code == IMK_ENOMEM) {
        /* The response is lost but the framing is intact: report it. */
        set_error(r, ev, IMK_ENOMEM, r->resp_offset, "out of memory while parsing the response",
                  buf, len);
        return 1;
    }
    set_error(r, ev, ctx.err_code != 0 ? ctx.err_code : rc, stream_offset_of(r, ctx.err_pos),
              ctx.err_msg != NULL ? ctx.err_msg : "malformed response", buf, len);
    return 1;
}

static int finish_skipped(imk_reader *r, imk_event *ev)
{
    r->reset_pending = 1;
    set_error(r, ev, r->skip_code, r->skip_offset, r->skip_msg, r->resp.data, r->resp.len);
    return 1;
}

/*
 * A complete line (through its LF) is now at the end of r->resp (or was
 * skipped, its tail kept in skip_tail). Decide what follows it: another
 * fragment after a literal, a streamed body, or the end of the response.
 * Returns 1 when an event was produced, 0 to go on, or a fatal code.
 */
static int end_of_line(imk_reader *r, imk_event *ev)
{
    const char *frag = r->resp.data != NULL ? r->resp.data + r->line_start : "";
    size_t flen = r->resp.len - r->line_start;
    if (r->skipping) {
        /* Keep counting literals so the skipped response ends where it
         * really ends. The fragment was not stored: only its tail is known,
         * which is all find_literal needs. */
        frag = r->skip_tail;
        flen = r->skip_tail_len;
    }
    size_t body_len = flen;
    if (body_len != 0 && frag[body_len - 1] == '\n')
        body_len--;
    if (body_len != 0 && frag[body_len - 1] == '\r')
        body_len--;
    if (!r->first_line_done) {
        r->first_line_done = 1;
        r->no_literals = line_has_no_literals(r->head, r->head_len);
    }
    uint64_t size = 0;
    size_t brace = 0;
    int binary = 0;
    int lit = r->no_literals ? 0 : find_literal(frag, body_len, &size, &brace, &binary);
    if (lit < 0) {
        start_skipping(r, IMK_ERANGE, r->stream_pos - (flen - brace),
                       "literal size does not fit in 64 bits", 0);
        lit = 0;
    }
    if (lit == 0) {
        if (r->skipping)
            return finish_skipped(r, ev);
        return deliver(r, ev, r->resp.data, r->resp.len);
    }
    if (r->skipping) {
        r->state = ST_LITERAL;
        r->literal_left = size;
        return 0;
    }
    uint32_t seq;
    if (fetch_prefix(r->resp.data, r->resp.len, &seq) && body_item_before(r, frag, brace)) {
        if (size > r->opts.max_body_size) {
            start_skipping(r, IMK_ELIMIT, r->stream_pos, "body literal larger than max_body_size",
                           0);
            r->state = ST_LITERAL;
            r->literal_left = size;
            return 0;
        }
        int rc = push_streamed(r, r->line_start + brace, size);
        if (rc < 0)
            return rc;
        r->body.seq = seq;
        uint32_t uid = 0;
        r->body.has_uid = scan_uid(r->resp.data, r->line_start + body_len, &uid);
        r->body.uid = uid;
        r->body.size = size;
        r->body.binary = binary;
        r->body_phase = BODY_BEGIN_PENDING;
        r->state = ST_BODY;
        r->literal_left = size;
        r->resp_skipped += size;
        r->line_start = r->resp.len;
        return 0;
    }
    if (size > r->opts.max_literal_size) {
        start_skipping(r, IMK_ELIMIT, r->stream_pos, "literal larger than max_literal_size",
                       r->opts.max_literal_size);
    } else if (size > r->opts.max_response_size - r->resp.len) {
        start_skipping(r, IMK_ELIMIT, r->stream_pos + (r->opts.max_response_size - r->resp.len),
                       "response longer than max_response_size", r->opts.max_response_size);
    }
    r->state = ST_LITERAL;
    r->literal_left = size;
    return 0;
}

/* Bytes of the current line (up to and including its LF, if present). */
static int line_bytes(imk_reader *r, const char *p, size_t n)
{
    if (!r->first_line_done && r->head_len < sizeof(r->head)) {
        size_t k = sizeof(r->head) - r->head_len;
        if (k > n)
            k = n;
        memcpy(r->head + r->head_len, p, k);
        r->head_len += k;
    }
    if (!r->skipping && n > r->opts.max_line_length - r->line_len)
        start_skipping(r, IMK_ELIMIT, r->stream_pos + (r->opts.max_line_length - r->line_len),
                       "line longer than max_line_length", r->opts.max_line_length);
    r->line_len += n;
    if (r->skipping) {
        if (n >= sizeof(r->skip_tail)) {
            memcpy(r->skip_tail, p + n - sizeof(r->skip_tail), sizeof(r->skip_tail));
            r->skip_tail_len = sizeof(r->skip_tail);
        } else {
            size_t keep = sizeof(r->skip_tail) - n;
            if (keep > r->skip_tail_len)
                keep = r->skip_tail_len;
            memmove(r->skip_tail, r->skip_tail + r->skip_tail_len - keep, keep);
            memcpy(r->skip_tail + keep, p, n);
            r->skip_tail_len = keep + n;
        }
        return 0;
    }
    return append_resp(r, p, n);
}

/* The whole response is one line inside the input buffer: parse it there. */
static int try_direct(imk_reader *r, imk_event *ev)
{
    const char *p = r->in + r->in_start;
    size_t avail = r->in_end - r->in_start;
    const char *lf = memchr(p, '\n', avail);
    if (lf == NULL)
        return 0;
    size_t n = (size_t)(lf - p) + 1;
    if (n > r->opts.max_line_length)
        return 0;
    size_t body_len = n - 1;
    if (body_len != 0 && p[body_len - 1] == '\r')
        body_len--;
    uint64_t size;
    size_t brace;
    int binary;
    if (find_literal(p, body_len, &size, &brace, &binary) != 0 &&
        !line_has_no_literals(p, body_len < sizeof(r->head) ? body_len : sizeof(r->head)))
        return 0;
    r->resp_offset = r->stream_pos;
    consume(r, n);
    return deliver(r, ev, p, n);
}

int imk_reader_next(imk_reader *r, imk_event *ev)
{
    if (r->reset_pending) {
        r->reset_pending = 0;
        imk__arena_reset(&r->arena);
        reset_response(r);
    }
    for (;;) {
        size_t avail = r->in_end - r->in_start;
        const char *p = r->in + r->in_start;

        if (r->state == ST_BODY) {
            memset(ev, 0, sizeof(*ev));
            ev->body = &r->body;
            if (r->body_phase == BODY_BEGIN_PENDING) {
                r->body_phase = r->literal_left == 0 ? BODY_END_PENDING : BODY_DATA;
                ev->type = IMK_EVENT_BODY_BEGIN;
                return 1;
            }
            if (r->body_phase == BODY_END_PENDING) {
                r->state = ST_LINE;
                r->line_len = 0;
                ev->type = IMK_EVENT_BODY_END;
                return 1;
            }
            if (avail == 0)
                break;
            size_t n = r->literal_left < avail ? (size_t)r->literal_left : avail;
            ev->type = IMK_EVENT_BODY_CHUNK;
            ev->data.data = p;
            ev->data.len = n;
            consume(r, n);
            r->literal_left -= n;
            if (r->literal_left == 0)
                r->body_phase = BODY_END_PENDING;
            return 1;
        }

        if (r->state == ST_LITERAL) {
            if (r->literal_left == 0) {
                r->state = ST_LINE;
                r->line_start = r->resp.len;
                r->line_len = 0;
                r->skip_tail_len = 0;
                continue;
            }
            if (avail == 0)
                break;
            size_t n = r->literal_left < avail ? (size_t)r->literal_left : avail;
            int rc = append_resp(r, p, n);
            if (rc < 0)
                return rc;
            consume(r, n);
            r->literal_left -= n;
            continue;
        }

        /* ST_LINE */
        if (avail == 0)
            break;
        if (!r->in_response) {
            int rc = try_direct(r, ev);
            if (rc != 0)
                return rc;
            r->in_response = 1;
            r->resp_offset = r->stream_pos;
        }
        const char *lf = memchr(p, '\n', avail);
        size_t n = lf != NULL ? (size_t)(lf - p) + 1 : avail;
        int rc = line_bytes(r, p, n);
        if (rc < 0)
            return rc;
        consume(r, n);
        if (lf == NULL)
            break;
        rc = end_of_line(r, ev);
        if (rc != 0)
            return rc;
        r->line_len = 0;
    }
    if (r->eof && (r->in_response || r->state != ST_LINE)) {
        /* The stream ended inside a response: report it once. */
        const char *what = r->state == ST_BODY ? "connection closed inside a body literal"
                           : r->state == ST_LITERAL
                               ? "connection closed inside a literal"
                               : "connection closed before the end of the line";
        r->reset_pending = 1;
        set_error(r, ev, IMK_EPARSE, r->stream_pos, what, r->resp.data != NULL ? r->resp.data : "",
                  r->resp.len);
        return 1;
    }
    return 0;
}
