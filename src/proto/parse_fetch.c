/* SPDX-License-Identifier: MIT */
/*
 * FETCH responses: the msg-att list after "* n FETCH".
 *
 *     msg-att = "(" (msg-att-dynamic / msg-att-static)
 *               *(SP (msg-att-dynamic / msg-att-static)) ")"
 *                                              (RFC 9051 section 9)
 *
 * This is the hot path of a mail client (a mailbox sync is thousands of
 * "* n FETCH (UID .. FLAGS (..) MODSEQ (..))" lines), so item names are
 * classified by their first letter and length before any comparison, and
 * nothing is copied: names, flags and inline data point into the response
 * buffer. Body-section values (BODY[...], BINARY[...], RFC822*) are either
 * inline or were streamed out by the reader as body events; in the latter
 * case the buffer holds only the "{n}" announcement, which the lexer
 * recognises from ctx->streamed.
 *
 * Server deviations accepted here (QUIRKS.md), each only with its switch:
 *   Q5  "(UID 19436 )"               IMK_QUIRK_TRAILING_SPACE (lexer)
 *   Q6  doubled SP between items     IMK_QUIRK_EXTRA_SPACES (lexer)
 *   Q22 "* 0 FETCH"                  IMK_QUIRK_NUMBER_RANGE (parser.c)
 *   Q24 "MODSEQ (-1)" -> 0           IMK_QUIRK_NEGATIVE_NUMBER
 *   Q37 items after the closing ")"  IMK_QUIRK_FETCH_TRAILER
 *   Q38 "BODY[1] )" with no value    IMK_QUIRK_EMPTY_ITEM (empty data)
 *   Q39 an item right after a literal, without SP
 *                                    IMK_QUIRK_FETCH_TRAILER
 * Items we do not model go to `extras` with their generic value.
 */
#include "proto/lexer.h"
#include "proto/parse_body.h"
#include "util/datetime.h"

#include <string.h>

/* Short local names for the shared helpers of lexer.h. */
#define peek imk__peek
#define upper imk__ascii_upper
#define IS IMK__IS
#define quirk_allowed imk__quirk_allowed

/* An ATOM-CHAR other than "[" (which starts a section). */
static inline int is_item_char(int c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
    case '[':
        return 0;
    default:
        return 1;
    }
}

typedef enum fetch_item {
    ITEM_UNKNOWN,
    ITEM_UID,
    ITEM_FLAGS,
    ITEM_MODSEQ,
    ITEM_INTERNALDATE,
    ITEM_RFC822_SIZE,
    ITEM_ENVELOPE,
    ITEM_BODY, /* BODY SP body, or BODY[section] */
    ITEM_BODYSTRUCTURE,
    ITEM_BINARY,
    ITEM_BINARY_SIZE,
    ITEM_RFC822,
    ITEM_RFC822_HEADER,
    ITEM_RFC822_TEXT,
    ITEM_EMAILID,
    ITEM_THREADID,
    ITEM_SAVEDATE,
    ITEM_PREVIEW
} fetch_item;

static fetch_item classify(imk_str n)
{
    switch (upper((unsigned char)n.data[0])) {
    case 'U':
        if (IS(n, "UID"))
            return ITEM_UID;
        break;
    case 'F':
        if (IS(n, "FLAGS"))
            return ITEM_FLAGS;
        break;
    case 'M':
        if (IS(n, "MODSEQ"))
            return ITEM_MODSEQ;
        break;
    case 'I':
        if (IS(n, "INTERNALDATE"))
            return ITEM_INTERNALDATE;
        break;
    case 'R':
        switch (n.len) {
        case 6:
            if (IS(n, "RFC822"))
                return ITEM_RFC822;
            break;
        case 11:
            if (IS(n, "RFC822.SIZE"))
                return ITEM_RFC822_SIZE;
            if (IS(n, "RFC822.TEXT"))
                return ITEM_RFC822_TEXT;
            break;
        case 13:
            if (IS(n, "RFC822.HEADER"))
                return ITEM_RFC822_HEADER;
            break;
        default:
            break;
        }
        break;
    case 'E':
        if (IS(n, "ENVELOPE"))
            return ITEM_ENVELOPE;
        if (IS(n, "EMAILID"))
            return ITEM_EMAILID;
        break;
    case 'B':
        if (IS(n, "BODY"))
            return ITEM_BODY;
        if (IS(n, "BODYSTRUCTURE"))
            return ITEM_BODYSTRUCTURE;
        if (IS(n, "BINARY"))
            return ITEM_BINARY;
        if (IS(n, "BINARY.SIZE"))
            return ITEM_BINARY_SIZE;
        break;
    case 'T':
        if (IS(n, "THREADID"))
            return ITEM_THREADID;
        break;
    case 'S':
        if (IS(n, "SAVEDATE"))
            return ITEM_SAVEDATE;
        break;
    case 'P':
        if (IS(n, "PREVIEW"))
            return ITEM_PREVIEW;
        break;
    default:
        break;
    }
    return ITEM_UNKNOWN;
}

/* "expected <what> <name>": the message names the item, e.g.
 * `expected SP or ")" after FETCH item UID, found "x"`. */
static int fail_item(imk__lexer *lx, const char *what, imk_str name)
{
    size_t wl = strlen(what);
    size_t nl = name.len > 64 ? 64 : name.len;
    char *m = imk__arena_alloc(lx->ctx->arena, wl + nl + 1);
    if (m == NULL)
        return imk__lex_fail(lx, what);
    memcpy(m, what, wl);
    memcpy(m + wl, name.data, nl);
    m[wl + nl] = '\0';
    return imk__lex_fail(lx, m);
}

static int sp_before_value(imk__lexer *lx, imk_str name)
{
    if (peek(lx) != ' ')
        return fail_item(lx, "SP and a value after FETCH item ", name);
    return imk__lex_sp(lx);
}

/*
 * section = "[" [section-spec] "]" ; kept as the text between the brackets
 * (a header-list may hold quoted strings, which may hold "]").
 * Then ["<" number ">"] for BODY and BINARY.
 */
static int parse_section(imk__lexer *lx, imk_fetch_section *s, int allow_origin)
{
    size_t p = lx->pos + 1, start = p;
    int in_quote = 0;
    while (p < lx->len) {
        char c = lx->buf[p];
        if (c == '\r' || c == '\n')
            break;
        if (in_quote) {
            if (c == '\\' && p + 1 < lx->len)
                p++;
            else if (c == '"')
                in_quote = 0;
        } else if (c == '"') {
            in_quote = 1;
        } else if (c == ']') {
            break;
        }
        p++;
    }
    if (p >= lx->len || lx->buf[p] != ']') {
        lx->pos = p;
        return imk__lex_fail(lx, "\"]\" closing the section");
    }
    s->spec.data = lx->buf + start;
    s->spec.len = p - start;
    lx->pos = p + 1;
    if (allow_origin && peek(lx) == '<') {
        lx->pos++;
        int rc = imk__lex_number(lx, &s->origin);
        if (rc < 0)
            return rc;
        if (peek(lx) != '>')
            return imk__lex_fail(lx, "\">\" closing the origin octet");
        lx->pos++;
        s->has_origin = 1;
    }
    return 0;
}

/* nstring / literal8 value of a body section; sets *was_literal. Q38:
 * "BODY[1] )" (no value) is taken as empty data under
 * IMK_QUIRK_EMPTY_ITEM. */
static int parse_section_value(imk__lexer *lx, imk_fetch_section *s, imk_str name, int *was_literal)
{
    if (imk__lex_at_list_end(lx) && quirk_allowed(lx, IMK_QUIRK_EMPTY_ITEM)) {
        lx->quirks_seen |= IMK_QUIRK_EMPTY_ITEM;
        s->data.data = lx->buf + lx->pos;
        s->data.len = 0;
        s->size = 0;
        return 0;
    }
    int rc = sp_before_value(lx, name);
    if (rc < 0)
        return rc;
    int c = peek(lx);
    if (c == '{' || c == '~') {
        int binary = 0;
        *was_literal = 1;
        return imk__lex_string_ex(lx, &s->data, &s->streamed, &s->size, &binary);
    }
    if (c == '"') {
        rc = imk__lex_string(lx, &s->data);
        s->size = s->data.len;
        return rc;
    }
    if (imk__lex_accept_word(lx, "NIL")) {
        s->data.data = NULL;
        s->data.len = 0;
        return 0;
    }
    return fail_item(lx, "a string, literal or NIL as the value of FETCH item ", name);
}

/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time
 *             SP zone DQUOTE */
static int parse_datetime(imk__lexer *lx, imk_datetime *out)
{
    size_t at = lx->pos;
    if (peek(lx) != '"')
        return imk__lex_fail(lx, "a quoted date-time");
    imk_str s;
    int rc = imk__lex_string(lx, &s);
    if (rc < 0)
        return rc;
    imk__datetime dt;
    if (imk__datetime_parse(s.data, s.len, &dt) < 0) {
        lx->pos = at;
        return imk__lex_fail(lx, "a date-time \"dd-Mon-yyyy hh:mm:ss +zzzz\"");
    }
    out->year = dt.year;
    out->month = dt.month;
    out->day = dt.day;
    out->hour = dt.hour;
    out->minute = dt.minute;
    out->second = dt.second;
    out->zone_minutes = dt.zone_minutes;
    return 0;
}

/* "(" objectid ")" (RFC 8474); objectid = 1*255(ALPHA / DIGIT / "_" / "-") */
static int parse_objectid(imk__lexer *lx, imk_str *out)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    size_t p = lx->pos;
    while (p < lx->len) {
        char c = lx->buf[p];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            break;
        p++;
    }
    if (p == lx->pos)
        return imk__lex_fail(lx, "an objectid (letters, digits, \"_\", \"-\")");
    out->data = lx->buf + lx->pos;
    out->len = p - lx->pos;
    lx->pos = p;
    return imk__lex_list_end(lx);
}

typedef struct fetch_state {
    imk_fetch *f;
    imk__vec sections;
    imk__vec extras;
} fetch_state;

/* One msg-att item at lx->pos; *was_literal set when its value was a
 * literal (for Q39). */
static int parse_item(imk__lexer *lx, fetch_state *st, int *was_literal)
{
    imk_fetch *f = st->f;
    size_t start = lx->pos;
    size_t p = start;
    while (p < lx->len && is_item_char((unsigned char)lx->buf[p]))
        p++;
    if (p == start && peek(lx) != '[')
        return imk__lex_fail(lx, "a FETCH item name");
    imk_str name = {lx->buf + start, p - start};
    fetch_item item = p == start ? ITEM_UNKNOWN : classify(name);
    int bracket = p < lx->len && lx->buf[p] == '[';
    if (bracket && item != ITEM_BODY && item != ITEM_BINARY && item != ITEM_BINARY_SIZE)
        item = ITEM_UNKNOWN;
    if (!bracket && (item == ITEM_BINARY || item == ITEM_BINARY_SIZE))
        item = ITEM_UNKNOWN;
    int rc;
    *was_literal = 0;
    if (item == ITEM_UNKNOWN) {
        /* Unknown item: its name as a generic token (keeps [..]<..>),
         * then its value. */
        imk_value *nv;
        if ((rc = imk__lex_value(lx, &nv)) < 0)
            return rc;
        if (nv->type != IMK_VALUE_ATOM) {
            lx->pos = start;
            return imk__lex_fail(lx, "a FETCH item name");
        }
        imk_fetch_extra *x = imk__vec_push(lx, &st->extras);
        if (x == NULL)
            return lx->ctx->err_code;
        x->name = nv->str;
        /* No IMK_QUIRK_EMPTY_ITEM here: Q38 concerns body sections only,
         * and an unknown "item" without a value is what the bytes after a
         * literal whose announced size was too short look like (Q36); such
         * a response must be reported, not absorbed. */
        if ((rc = sp_before_value(lx, x->name)) < 0)
            return rc;
        int c = peek(lx);
        imk_value *v;
        if ((rc = imk__lex_value(lx, &v)) < 0)
            return rc;
        x->value = v;
        *was_literal = c == '{' || c == '~';
        return 0;
    }
    lx->pos = p;

    imk_section_item sect;
    switch (item) {
    case ITEM_UID:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if (peek(lx) < '0' || peek(lx) > '9')
            return imk__lex_fail(lx, "a UID (nz-number) after FETCH item UID");
        if ((rc = imk__lex_nz_number32(lx, &f->uid)) < 0)
            return rc;
        f->present |= IMK_FETCH_UID;
        return 0;

    /* "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")" */
    case ITEM_FLAGS:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = imk__lex_flag_list(lx, &f->flags)) < 0)
            return rc;
        f->present |= IMK_FETCH_FLAGS;
        return 0;

    /* fetch-mod-resp = "MODSEQ" SP "(" permsg-modsequence ")" (RFC 7162);
     * Q24 "MODSEQ (-1)" -> 0 under IMK_QUIRK_NEGATIVE_NUMBER. */
    case ITEM_MODSEQ:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        if ((rc = imk__lex_number_lenient(lx, &f->modseq)) < 0)
            return rc;
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
        f->present |= IMK_FETCH_MODSEQ;
        return 0;

    case ITEM_INTERNALDATE:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = parse_datetime(lx, &f->internaldate)) < 0)
            return rc;
        f->present |= IMK_FETCH_INTERNALDATE;
        return 0;

    /* "RFC822.SIZE" SP number64 */
    case ITEM_RFC822_SIZE:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = imk__lex_number(lx, &f->rfc822_size)) < 0)
            return rc;
        f->present |= IMK_FETCH_RFC822_SIZE;
        return 0;

    case ITEM_ENVELOPE:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = imk__parse_envelope(lx, &f->envelope)) < 0)
            return rc;
        f->present |= IMK_FETCH_ENVELOPE;
        return 0;

    /* "BODY" ["STRUCTURE"] SP body / "BODY" section ["<" number ">"] SP nstring */
    case ITEM_BODY:
        if (bracket) {
            sect = IMK_SECTION_BODY;
            break;
        }
        /* fall through */
    case ITEM_BODYSTRUCTURE:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = imk__parse_body(lx, item == ITEM_BODYSTRUCTURE, &f->body)) < 0)
            return rc;
        f->present |= item == ITEM_BODYSTRUCTURE ? IMK_FETCH_BODYSTRUCTURE : IMK_FETCH_BODY;
        return 0;

    /* "BINARY" section-binary SP (nstring / literal8)   (RFC 3516) */
    case ITEM_BINARY:
        sect = IMK_SECTION_BINARY;
        break;
    /* "BINARY.SIZE" section-binary SP number */
    case ITEM_BINARY_SIZE:
        sect = IMK_SECTION_BINARY_SIZE;
        break;
    case ITEM_RFC822:
        sect = IMK_SECTION_RFC822;
        break;
    case ITEM_RFC822_HEADER:
        sect = IMK_SECTION_RFC822_HEADER;
        break;
    case ITEM_RFC822_TEXT:
        sect = IMK_SECTION_RFC822_TEXT;
        break;

    /* "EMAILID" SP "(" objectid ")"                      (RFC 8474) */
    case ITEM_EMAILID:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if ((rc = parse_objectid(lx, &f->emailid)) < 0)
            return rc;
        f->present |= IMK_FETCH_EMAILID;
        return 0;

    /* "THREADID" SP ("(" objectid ")" / nil)              (RFC 8474) */
    case ITEM_THREADID:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if (imk__lex_accept_word(lx, "NIL")) {
            f->threadid.data = NULL;
            f->threadid.len = 0;
        } else if ((rc = parse_objectid(lx, &f->threadid)) < 0) {
            return rc;
        }
        f->present |= IMK_FETCH_THREADID;
        return 0;

    /* "SAVEDATE" SP (date-time / nil)                     (RFC 8514) */
    case ITEM_SAVEDATE:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if (imk__lex_accept_word(lx, "NIL")) {
            f->has_savedate = 0;
        } else {
            if ((rc = parse_datetime(lx, &f->savedate)) < 0)
                return rc;
            f->has_savedate = 1;
        }
        f->present |= IMK_FETCH_SAVEDATE;
        return 0;

    /* "PREVIEW" SP nstring                                (RFC 8970) */
    case ITEM_PREVIEW:
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        if (peek(lx) == '{' || peek(lx) == '~')
            *was_literal = 1;
        if ((rc = imk__lex_nstring(lx, &f->preview)) < 0)
            return rc;
        f->present |= IMK_FETCH_PREVIEW;
        return 0;

    case ITEM_UNKNOWN:
    default:
        return imk__lex_fail(lx, "a FETCH item name");
    }

    /* Body sections. */
    imk_fetch_section *s = imk__vec_push(lx, &st->sections);
    if (s == NULL)
        return lx->ctx->err_code;
    s->item = sect;
    if (bracket) {
        if ((rc = parse_section(lx, s, sect != IMK_SECTION_BINARY_SIZE)) < 0)
            return rc;
        name.len = lx->pos - start; /* "BODY[1.2]<0>" in messages */
    }
    if (sect == IMK_SECTION_BINARY_SIZE) {
        if ((rc = sp_before_value(lx, name)) < 0)
            return rc;
        return imk__lex_number(lx, &s->size);
    }
    return parse_section_value(lx, s, name, was_literal);
}

/*
 * message-data = nz-number SP "FETCH" SP msg-att
 * Called after "FETCH"; r->number holds the sequence number.
 */
int imk__parse_fetch(imk__lexer *lx, imk_response *r)
{
    fetch_state st;
    st.f = &r->u.fetch;
    st.f->seq = r->number > UINT32_MAX ? UINT32_MAX : (uint32_t)r->number;
    imk__vec_init(&st.sections, sizeof(imk_fetch_section));
    imk__vec_init(&st.extras, sizeof(imk_fetch_extra));
    int rc;
    if (peek(lx) != ' ')
        return imk__lex_fail(lx, "SP and \"(\" after FETCH");
    if ((rc = imk__lex_sp(lx)) < 0)
        return rc;
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    for (;;) {
        size_t item_start = lx->pos;
        int was_literal = 0;
        if ((rc = parse_item(lx, &st, &was_literal)) < 0)
            return rc;
        if (imk__lex_at_list_end(lx))
            break;
        if (peek(lx) == ' ') {
            if ((rc = imk__lex_sp(lx)) < 0)
                return rc;
            continue;
        }
        if (was_literal && quirk_allowed(lx, IMK_QUIRK_FETCH_TRAILER) && is_item_char(peek(lx))) {
            /* Q39: "...literal bytes\r\nUID 12 FLAGS (\Seen))" */
            lx->quirks_seen |= IMK_QUIRK_FETCH_TRAILER;
            continue;
        }
        size_t n = item_start;
        while (n < lx->len && (is_item_char((unsigned char)lx->buf[n]) || lx->buf[n] == '['))
            n++;
        imk_str name = {lx->buf + item_start, n - item_start};
        if (n < lx->len && lx->buf[n - 1] == '[') {
            /* name the item with its section, e.g. BODY[] */
            size_t q = n;
            while (q < lx->len && lx->buf[q] != ']' && lx->buf[q] != '\r')
                q++;
            if (q < lx->len && lx->buf[q] == ']')
                name.len = q + 1 - item_start;
        }
        return fail_item(lx, "SP or \")\" after FETCH item ", name);
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    if (!imk__lex_at_eol(lx) && peek(lx) == ' ' && quirk_allowed(lx, IMK_QUIRK_FETCH_TRAILER)) {
        /* Q37 (Xeams): ")" right after the literal, then the remaining
         * items unframed on the same line: " FLAGS (\Seen) RFC822.SIZE n". */
        lx->quirks_seen |= IMK_QUIRK_FETCH_TRAILER;
        while (!imk__lex_at_eol(lx)) {
            if (peek(lx) == ')') {
                lx->pos++; /* a closing ")" of the trailer, if sent */
                break;
            }
            if (peek(lx) != ' ')
                return imk__lex_fail(lx, "SP and a FETCH item in the trailer");
            if ((rc = imk__lex_sp(lx)) < 0)
                return rc;
            if (imk__lex_at_eol(lx))
                break;
            int was_literal = 0;
            if ((rc = parse_item(lx, &st, &was_literal)) < 0)
                return rc;
        }
    }
    st.f->section_count = st.sections.count;
    st.f->sections = st.sections.items;
    st.f->extra_count = st.extras.count;
    st.f->extras = st.extras.items;
    return imk__lex_eol(lx);
}
