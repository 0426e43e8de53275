/* SPDX-License-Identifier: MIT */
/*
 * The response parser: one framed response (see parser.h) in, one typed
 * imk_response (imapkit/response.h) out, everything in the arena.
 *
 * A response is classified by its first token (DESIGN.md section 1 rule 1):
 *
 *     "+"  -> continuation request      (resp-text or base64, kept as text)
 *     "*"  -> untagged: a status word (OK NO BAD PREAUTH BYE), a number
 *             followed by EXISTS / RECENT / EXPUNGE / FETCH, or a data name
 *     tag  -> tagged completion         (OK NO BAD)
 *
 * and data names are classified by a switch on their first letter, then a
 * length-checked comparison, so the common FETCH costs a handful of byte
 * compares. Names we do not model become IMK_KIND_GENERIC with the values
 * after the name as a generic value tree (rule 3: "ignore the rest,
 * gracefully" - never an error). Unknown response codes likewise become
 * IMK_CODE_OTHER with their raw bytes (QUIRKS.md Q13: the code ends at the
 * first "]").
 *
 * Known response codes are parsed into typed fields; when their arguments
 * do not fit the grammar (Q12 "[COPYUID 14  ]") they are delivered as
 * IMK_CODE_OTHER under IMK_QUIRK_CODE_TEXT, or fail the response without
 * it. Every response also carries `raw` (the whole buffer) and `quirks`
 * (the IMK_QUIRK_* bits used while parsing it).
 *
 * Grammar references are to RFC 9051 section 9 unless noted; extension
 * grammars cite their RFC.
 */
#include "proto/parser.h"

#include "proto/lexer.h"

#include <string.h>

/* Short local names for the shared helpers of lexer.h. */
#define peek imk__peek
#define upper imk__ascii_upper
#define IS IMK__IS
#define quirk_allowed imk__quirk_allowed

/* ------------------------------------------------------------------ */
/* Name tables                                                         */
/* ------------------------------------------------------------------ */

static const char *const code_names[] = {
#define IMK_X_CODE(sfx, name) name,
    IMK_CODE_TABLE(IMK_X_CODE)
#undef IMK_X_CODE
};

static const unsigned char code_name_len[] = {
#define IMK_X_CODE(sfx, name) (unsigned char)(sizeof(name) - 1),
    IMK_CODE_TABLE(IMK_X_CODE)
#undef IMK_X_CODE
};

static const char *const kind_names[] = {
#define IMK_X_KIND(sfx, name) name,
    IMK_KIND_TABLE(IMK_X_KIND)
#undef IMK_X_KIND
};

IMK_API const char *imk_code_kind_name(imk_code_kind kind)
{
    if ((unsigned)kind >= (unsigned)IMK_CODE_COUNT_)
        return "";
    return code_names[kind];
}

IMK_API const char *imk_response_kind_name(imk_response_kind kind)
{
    if ((unsigned)kind >= (unsigned)IMK_KIND_COUNT_)
        return "";
    return kind_names[kind];
}

IMK_API const char *imk_status_name(imk_status status)
{
    switch (status) {
    case IMK_STATUS_OK:
        return "OK";
    case IMK_STATUS_NO:
        return "NO";
    case IMK_STATUS_BAD:
        return "BAD";
    case IMK_STATUS_PREAUTH:
        return "PREAUTH";
    case IMK_STATUS_BYE:
        return "BYE";
    case IMK_STATUS_NONE:
    default:
        return "";
    }
}

IMK_API const char *imk_section_item_name(imk_section_item item)
{
    switch (item) {
    case IMK_SECTION_BODY:
        return "BODY";
    case IMK_SECTION_BINARY:
        return "BINARY";
    case IMK_SECTION_BINARY_SIZE:
        return "BINARY.SIZE";
    case IMK_SECTION_RFC822:
        return "RFC822";
    case IMK_SECTION_RFC822_HEADER:
        return "RFC822.HEADER";
    case IMK_SECTION_RFC822_TEXT:
        return "RFC822.TEXT";
    }
    return "";
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static inline int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A number that the grammar bounds to a non-zero 32-bit value, kept exact
 * in 64 bits (response.h): Q20 (> 2^32-1) and Q21 (0) are accepted under
 * IMK_QUIRK_NUMBER_RANGE and recorded. */
static int nz_number_exact(imk__lexer *lx, uint64_t *out)
{
    size_t start = lx->pos;
    int rc = imk__lex_number(lx, out);
    if (rc < 0)
        return rc;
    if (*out == 0 || *out > UINT32_MAX) {
        if (!quirk_allowed(lx, IMK_QUIRK_NUMBER_RANGE))
            return imk__lex_fail_range(lx, start,
                                       *out == 0 ? "expected a non-zero number, found 0"
                                                 : "expected a number below 4294967296");
        lx->quirks_seen |= IMK_QUIRK_NUMBER_RANGE;
    }
    return 0;
}

/* A 32-bit nz-number stored in a uint32_t slot (clamped under the quirk). */
static int nz_number32(imk__lexer *lx, uint32_t *out)
{
    if (!is_digit(peek(lx)))
        return imk__lex_fail(lx, "a non-zero number");
    return imk__lex_nz_number32(lx, out);
}

/* Read the next token name: 1*ATOM-CHAR. */
static int read_name(imk__lexer *lx, imk_str *out, const char *what)
{
    if (lx->pos >= lx->len)
        return imk__lex_fail(lx, what);
    int rc = imk__lex_atom(lx, out);
    if (rc < 0) {
        /* replace the lexer's generic "expected atom" with our context */
        lx->ctx->err_code = 0;
        return imk__lex_fail(lx, what);
    }
    return 0;
}

/* "SP" then a value of the given kind, with a message naming what. */
static int sp_then(imk__lexer *lx, const char *what)
{
    if (peek(lx) != ' ')
        return imk__lex_fail(lx, what);
    return imk__lex_sp(lx);
}

/* ------------------------------------------------------------------ */
/* Response codes (RFC 9051 section 7.1)                               */
/* ------------------------------------------------------------------ */

static imk_code_kind code_kind_of(imk_str name)
{
    if (name.len == 0)
        return IMK_CODE_OTHER;
    int first = upper((unsigned char)name.data[0]);
    for (size_t k = 1; k < (size_t)IMK_CODE_COUNT_; k++) {
        if (code_name_len[k] != name.len || code_names[k][0] != first)
            continue;
        if (imk__name_eq(name, code_names[k], name.len))
            return (imk_code_kind)k;
    }
    return IMK_CODE_OTHER;
}

/* capability-data = "CAPABILITY" *(SP capability) ... ; capability = atom
 * (also used for ENABLED). Q44: "LITERAL +" is joined into "LITERAL+"
 * under IMK_QUIRK_CAPABILITY_SPACE; without it the "+" stays a token of its
 * own, which the grammar allows (atom "+"), so nothing fails. Stops at the
 * line end or "]" (the CAPABILITY response code). */
static int parse_capability_list(imk__lexer *lx, imk_strlist *out)
{
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_str));
    for (;;) {
        if (imk__lex_at_eol(lx) || peek(lx) == ']')
            break;
        if (peek(lx) == ' ' && lx->pos + 1 < lx->len && lx->buf[lx->pos + 1] == ']' &&
            quirk_allowed(lx, IMK_QUIRK_TRAILING_SPACE)) {
            lx->pos++; /* "[CAPABILITY IMAP4rev1 ]": as Q2, inside a code */
            lx->quirks_seen |= IMK_QUIRK_TRAILING_SPACE;
            break;
        }
        int rc = sp_then(lx, "SP before a capability");
        if (rc < 0)
            return rc;
        imk_str cap;
        if ((rc = read_name(lx, &cap, "a capability name (atom)")) < 0)
            return rc;
        if (cap.len == 1 && cap.data[0] == '+' && v.count > 0 &&
            quirk_allowed(lx, IMK_QUIRK_CAPABILITY_SPACE)) {
            imk_str *prev = (imk_str *)v.items + (v.count - 1);
            if (IS(*prev, "LITERAL") || IS(*prev, "LITERAL-")) {
                /* Q44: "LITERAL +" - rebuild the token without the space */
                char *d = imk__lex_alloc(lx, prev->len + 2);
                if (d == NULL)
                    return lx->ctx->err_code;
                memcpy(d, prev->data, prev->len);
                d[prev->len] = '+';
                prev->data = d;
                prev->len++;
                lx->quirks_seen |= IMK_QUIRK_CAPABILITY_SPACE;
                continue;
            }
        }
        imk_str *slot = imk__vec_push(lx, &v);
        if (slot == NULL)
            return lx->ctx->err_code;
        *slot = cap;
    }
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/* A parenthesised list of atoms or strings: BADCHARSET charsets
 * (charset = atom / quoted), BADEVENT events. */
static int parse_paren_astrings(imk__lexer *lx, imk_strlist *out)
{
    return imk__lex_paren_strlist(lx, imk__lex_astring, "SP or \")\" in a list", out);
}

/* Space-separated atoms up to "]" (URLMECH mechanisms). */
static int parse_atoms_to_bracket(imk__lexer *lx, imk_strlist *out)
{
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_str));
    while (peek(lx) == ' ') {
        int rc = imk__lex_sp(lx);
        if (rc < 0)
            return rc;
        imk_str *s = imk__vec_push(lx, &v);
        if (s == NULL)
            return lx->ctx->err_code;
        if ((rc = read_name(lx, s, "a mechanism name")) < 0)
            return rc;
    }
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/*
 * INPROGRESS (RFC 9585, as sent by Dovecot 2.4; see rfc/INDEX.md):
 *   "INPROGRESS" [SP "(" (quoted / nil) SP (number / nil) SP
 *                 (nz-number / nil) ")"]
 */
static int parse_inprogress(imk__lexer *lx, imk_code *code)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_nstring(lx, &code->progress_tag)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP after the INPROGRESS tag")) < 0)
        return rc;
    if (!imk__lex_accept_word(lx, "NIL")) {
        if ((rc = imk__lex_number(lx, &code->progress_count)) < 0)
            return rc;
        code->has_progress_count = 1;
    }
    if ((rc = sp_then(lx, "SP after the INPROGRESS count")) < 0)
        return rc;
    if (!imk__lex_accept_word(lx, "NIL")) {
        size_t at = lx->pos;
        if ((rc = imk__lex_number(lx, &code->progress_goal)) < 0)
            return rc;
        if (code->progress_goal == 0)
            return imk__lex_fail_range(lx, at, "expected a non-zero INPROGRESS goal, found 0");
        code->has_progress_goal = 1;
    }
    return imk__lex_list_end(lx);
}

/* The typed arguments of a known code, starting after "NAME SP" (or at
 * "]" when there are none). Returns 0 with lx at the closing "]". */
static int parse_code_args(imk__lexer *lx, imk_code *code, int has_args)
{
    int rc;
    switch (code->kind) {
    /* "UIDNEXT" SP nz-number / "UIDVALIDITY" SP nz-number /
     * "UNSEEN" SP nz-number (RFC 3501) */
    case IMK_CODE_UIDNEXT:
    case IMK_CODE_UIDVALIDITY:
    case IMK_CODE_UNSEEN:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a number after the response code");
        return nz_number_exact(lx, &code->number);

    /* "HIGHESTMODSEQ" SP mod-sequence-value (RFC 7162 section 7) */
    case IMK_CODE_HIGHESTMODSEQ:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a mod-sequence after HIGHESTMODSEQ");
        return imk__lex_number(lx, &code->number);

    /* resp-code-apnd = "APPENDUID" SP nz-number SP append-uid
     * append-uid = uniqueid / uid-set (RFC 4315, MULTIAPPEND) */
    case IMK_CODE_APPENDUID:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a UIDVALIDITY after APPENDUID");
        if ((rc = nz_number_exact(lx, &code->uidvalidity)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and a UID set after the APPENDUID UIDVALIDITY")) < 0)
            return rc;
        return imk__lex_seqset(lx, &code->set);

    /* resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set */
    case IMK_CODE_COPYUID:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a UIDVALIDITY after COPYUID");
        if ((rc = nz_number_exact(lx, &code->uidvalidity)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the source UID set in COPYUID")) < 0)
            return rc;
        if ((rc = imk__lex_seqset(lx, &code->set)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the destination UID set in COPYUID")) < 0)
            return rc;
        return imk__lex_seqset(lx, &code->set2);

    /* "MODIFIED" SP sequence-set (RFC 7162 section 7) */
    case IMK_CODE_MODIFIED:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a sequence set after MODIFIED");
        return imk__lex_seqset(lx, &code->set);

    /* capability-data (inside the code) */
    case IMK_CODE_CAPABILITY:
        if (has_args)
            lx->pos--; /* the list parser wants to see each SP */
        return parse_capability_list(lx, &code->list);

    /* "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" */
    case IMK_CODE_PERMANENTFLAGS:
        if (!has_args)
            return imk__lex_fail(lx, "SP and a flag list after PERMANENTFLAGS");
        return imk__lex_flag_list(lx, &code->list);

    /* "BADCHARSET" [SP "(" charset *(SP charset) ")"] */
    case IMK_CODE_BADCHARSET:
        if (!has_args)
            return 0;
        if (peek(lx) != '(' && quirk_allowed(lx, IMK_QUIRK_CODE_TEXT)) {
            /* "[BADCHARSET UTF-8]" (RFC 5182's example): charsets without
             * the parentheses, under IMK_QUIRK_CODE_TEXT */
            imk__vec v;
            imk__vec_init(&v, sizeof(imk_str));
            for (;;) {
                imk_str *s = imk__vec_push(lx, &v);
                if (s == NULL)
                    return lx->ctx->err_code;
                if ((rc = imk__lex_astring_atom(lx, s)) < 0)
                    return rc;
                if (s->len > 0 && s->data[s->len - 1] == ']') {
                    s->len--; /* the code's own "]" */
                    lx->pos--;
                }
                if (peek(lx) != ' ')
                    break;
                if ((rc = imk__lex_sp(lx)) < 0)
                    return rc;
            }
            code->list.count = v.count;
            code->list.items = v.items;
            lx->quirks_seen |= IMK_QUIRK_CODE_TEXT;
            return 0;
        }
        return parse_paren_astrings(lx, &code->list);

    /* "BADEVENT" SP "(" event *(SP event) ")" (RFC 5465) */
    case IMK_CODE_BADEVENT:
        if (!has_args)
            return imk__lex_fail(lx, "SP and an event list after BADEVENT");
        return parse_paren_astrings(lx, &code->list);

    /* "USEATTR" (RFC 6154) - the attribute, when a server names it */
    case IMK_CODE_USEATTR:
        if (!has_args)
            return 0;
        if (peek(lx) == '(')
            return imk__lex_flag_list(lx, &code->list);
        {
            imk__vec v;
            imk__vec_init(&v, sizeof(imk_str));
            for (;;) {
                imk_str *s = imk__vec_push(lx, &v);
                if (s == NULL)
                    return lx->ctx->err_code;
                if ((rc = imk__lex_flag(lx, s)) < 0)
                    return rc;
                if (peek(lx) != ' ')
                    break;
                if ((rc = imk__lex_sp(lx)) < 0)
                    return rc;
            }
            code->list.count = v.count;
            code->list.items = v.items;
        }
        return 0;

    /* "URLMECH" SP "INTERNAL" *(SP urlmech-auth) (RFC 4467) */
    case IMK_CODE_URLMECH:
        if (!has_args)
            return imk__lex_fail(lx, "SP INTERNAL after URLMECH");
        if ((rc = read_name(lx, &code->string, "INTERNAL after URLMECH")) < 0)
            return rc;
        return parse_atoms_to_bracket(lx, &code->list);

    /* "MAILBOXID" SP "(" objectid ")" (RFC 8474) */
    case IMK_CODE_MAILBOXID:
        if (!has_args)
            return imk__lex_fail(lx, "SP and \"(\" objectid \")\" after MAILBOXID");
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        if ((rc = read_name(lx, &code->string, "an objectid")) < 0)
            return rc;
        return imk__lex_list_end(lx);

    /* "NOUPDATE" SP quoted (RFC 5267) */
    case IMK_CODE_NOUPDATE:
        if (!has_args || peek(lx) != '"')
            return imk__lex_fail(lx, "SP and a quoted tag after NOUPDATE");
        return imk__lex_string(lx, &code->string);

    /* "METADATA" SP ("LONGENTRIES" SP number / "MAXSIZE" SP number /
     *               "TOOMANY" / "NOPRIVATE")        (RFC 5464 section 4) */
    case IMK_CODE_METADATA:
        if (!has_args)
            return imk__lex_fail(lx, "SP and LONGENTRIES, MAXSIZE, TOOMANY or NOPRIVATE");
        if ((rc = read_name(lx, &code->string, "LONGENTRIES, MAXSIZE, TOOMANY or NOPRIVATE")) < 0)
            return rc;
        if (IS(code->string, "LONGENTRIES") || IS(code->string, "MAXSIZE")) {
            if ((rc = sp_then(lx, "SP and a number after the METADATA sub-code")) < 0)
                return rc;
            return imk__lex_number(lx, &code->number);
        }
        return 0;

    /* "REFERRAL" SP imap-url (RFC 2221): the URL as sent */
    case IMK_CODE_REFERRAL: {
        if (!has_args)
            return imk__lex_fail(lx, "SP and a URL after REFERRAL");
        size_t start = lx->pos;
        while (lx->pos < lx->len && lx->buf[lx->pos] != ']' && lx->buf[lx->pos] != '\r' &&
               lx->buf[lx->pos] != '\n')
            lx->pos++;
        code->string.data = lx->buf + start;
        code->string.len = lx->pos - start;
        return 0;
    }

    case IMK_CODE_INPROGRESS:
        if (!has_args)
            return 0;
        return parse_inprogress(lx, code);

    default:
        /* Codes without arguments: anything after them is allowed by
         * the generic alternative  atom [SP 1*<any TEXT-CHAR except "]">]
         * and kept in raw/value. */
        while (lx->pos < lx->len && lx->buf[lx->pos] != ']' && lx->buf[lx->pos] != '\r' &&
               lx->buf[lx->pos] != '\n')
            lx->pos++;
        return 0;
    }
}

/* Parse raw code arguments as generic values with a sub-lexer over
 * [start, end). A parse failure is not an error here: value stays NULL.
 * Memory and limit failures are. */
static int code_generic_value(imk__lexer *lx, size_t start, size_t end, const imk_value **out)
{
    imk__lexer sub = *lx;
    sub.pos = start;
    sub.len = end;
    imk__parse_ctx *ctx = lx->ctx;
    imk_value *v = NULL;
    int rc = imk__lex_values_until_end(&sub, &v);
    if (rc == 0 && sub.pos < end)
        rc = IMK_EPARSE; /* a stray ")" */
    if (rc == IMK_EPARSE || rc == IMK_ERANGE) {
        ctx->err_code = 0;
        ctx->err_msg = NULL;
        ctx->err_pos = 0;
        *out = NULL;
        return 0;
    }
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

/* Scan from lx->pos to the first "]" on the line (Q13). */
static int skip_to_bracket(imk__lexer *lx)
{
    size_t p = lx->pos;
    while (p < lx->len && lx->buf[p] != ']' && lx->buf[p] != '\r' && lx->buf[p] != '\n')
        p++;
    lx->pos = p;
    if (p >= lx->len || lx->buf[p] != ']')
        return imk__lex_fail(lx, "\"]\" closing the response code");
    return 0;
}

/*
 * resp-text-code = "ALERT" / "BADCHARSET" [...] / capability-data / ... /
 *                  atom [SP 1*<any TEXT-CHAR except "]">]
 * Called at "["; returns with lx after "]".
 */
static int parse_code(imk__lexer *lx, const imk_code **out)
{
    imk_code *code = imk__lex_alloc(lx, sizeof(*code));
    if (code == NULL)
        return lx->ctx->err_code;
    lx->pos++; /* "[" */
    int rc = read_name(lx, &code->name, "a response code name (atom) after \"[\"");
    if (rc < 0)
        return rc;
    code->kind = code_kind_of(code->name);

    size_t args_start;
    int has_args;
    int c = peek(lx);
    if (c == ']') {
        has_args = 0;
        args_start = lx->pos;
    } else if (c == ' ') {
        has_args = 1;
        lx->pos++;
        args_start = lx->pos;
    } else {
        /* Q13: "[Error="Microsoft..." ...]" - the name runs into its
         * arguments. Not in the grammar; under IMK_QUIRK_CODE_TEXT the
         * code is OTHER and its raw text runs to the first "]". */
        if (!quirk_allowed(lx, IMK_QUIRK_CODE_TEXT))
            return imk__lex_fail(lx, "SP or \"]\" after the response code name");
        lx->quirks_seen |= IMK_QUIRK_CODE_TEXT;
        code->kind = IMK_CODE_OTHER;
        args_start = lx->pos;
        if ((rc = skip_to_bracket(lx)) < 0)
            return rc;
        code->raw.data = lx->buf + args_start;
        code->raw.len = lx->pos - args_start;
        lx->pos++;
        *out = code;
        return 0; /* raw is not values (no SP after the name): value NULL */
    }

    if (code->kind == IMK_CODE_OTHER) {
        if ((rc = skip_to_bracket(lx)) < 0)
            return rc;
    } else {
        imk__lexer saved = *lx;
        rc = parse_code_args(lx, code, has_args);
        if (rc == 0 && peek(lx) != ']')
            rc = imk__lex_fail(lx, "\"]\" after the response code arguments");
        if (rc < 0) {
            if ((rc != IMK_EPARSE && rc != IMK_ERANGE) || !quirk_allowed(lx, IMK_QUIRK_CODE_TEXT))
                return rc;
            /* Q12 "[COPYUID 14  ]": a known code whose arguments do not
             * parse is delivered as OTHER with its raw text. */
            imk__parse_ctx *ctx = lx->ctx;
            ctx->err_code = 0;
            ctx->err_msg = NULL;
            ctx->err_pos = 0;
            *lx = saved;
            lx->quirks_seen |= IMK_QUIRK_CODE_TEXT;
            imk_str name = code->name;
            memset(code, 0, sizeof(*code));
            code->kind = IMK_CODE_OTHER;
            code->name = name;
            if ((rc = skip_to_bracket(lx)) < 0)
                return rc;
        }
    }
    code->raw.data = lx->buf + args_start;
    code->raw.len = lx->pos - args_start;
    if (code->raw.len > 0) {
        if ((rc = code_generic_value(lx, args_start, lx->pos, &code->value)) < 0)
            return rc;
    }
    lx->pos++; /* "]" */
    *out = code;
    return 0;
}

/*
 * resp-text = ["[" resp-text-code "]" SP] [text]
 * Called right after the status word (or "+"), before its SP. Q7: no SP
 * and no text ("* BYE", "tag OK", "* OK [HIGHESTMODSEQ 13632]") under
 * IMK_QUIRK_MISSING_TEXT; Q8 "+" alone likewise.
 */
static int parse_resp_text_body(imk__lexer *lx, imk_response *r);

static int parse_resp_text(imk__lexer *lx, imk_response *r)
{
    r->text.data = lx->buf + lx->pos;
    r->text.len = 0;
    if (peek(lx) != ' ') {
        if (lx->pos < lx->len && (lx->buf[lx->pos] == '\r' || lx->buf[lx->pos] == '\n') &&
            quirk_allowed(lx, IMK_QUIRK_MISSING_TEXT)) {
            lx->quirks_seen |= IMK_QUIRK_MISSING_TEXT;
            return imk__lex_eol(lx);
        }
        return imk__lex_fail(lx, r->type == IMK_RESPONSE_CONTINUATION
                                     ? "SP after \"+\""
                                     : "SP and text after the status");
    }
    lx->pos++;
    return parse_resp_text_body(lx, r);
}

/* After the SP: ["[" resp-text-code "]" SP] [text] CRLF */
static int parse_resp_text_body(imk__lexer *lx, imk_response *r)
{
    int rc;
    r->text.data = lx->buf + lx->pos;
    r->text.len = 0;
    if (peek(lx) == '[') {
        size_t at = lx->pos;
        rc = parse_code(lx, &r->code);
        if (rc < 0) {
            /* "[" with no "]" on the line is not a code: plain text
             * (under the code quirk; the grammar reserves "[" for codes). */
            if (rc != IMK_EPARSE || !quirk_allowed(lx, IMK_QUIRK_CODE_TEXT) ||
                memchr(lx->buf + at, ']', lx->len - at) != NULL)
                return rc;
            lx->ctx->err_code = 0;
            lx->ctx->err_msg = NULL;
            lx->quirks_seen |= IMK_QUIRK_CODE_TEXT;
            lx->pos = at;
            r->code = NULL;
        } else if (peek(lx) == ' ') {
            lx->pos++;
        } else if (lx->pos < lx->len && (lx->buf[lx->pos] == '\r' || lx->buf[lx->pos] == '\n') &&
                   quirk_allowed(lx, IMK_QUIRK_MISSING_TEXT)) {
            lx->quirks_seen |= IMK_QUIRK_MISSING_TEXT;
            r->text.data = lx->buf + lx->pos;
            return imk__lex_eol(lx);
        } else {
            return imk__lex_fail(lx, "SP after the response code");
        }
    }
    if ((rc = imk__lex_text(lx, &r->text)) < 0)
        return rc;
    return imk__lex_eol(lx);
}

/* ------------------------------------------------------------------ */
/* Data responses                                                      */
/* ------------------------------------------------------------------ */

/* flag-list data: "FLAGS" SP flag-list */
static int parse_flags(imk__lexer *lx, imk_response *r)
{
    int rc = sp_then(lx, "SP and a flag list after FLAGS");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_flag_list(lx, &r->u.flags)) < 0)
        return rc;
    return imk__lex_eol(lx);
}

/* Q41: an unquoted name that runs on with TABs/SPs to the line end
 * ("INBOX/Da\tOggetto\t...") under IMK_QUIRK_ATOM_MAILBOX. Called after
 * an atom mailbox; extends it when what follows is not the grammar's
 * [SP mbox-list-extended] nor trailing spaces. */
static int list_atom_mailbox_quirk(imk__lexer *lx, imk_str *raw)
{
    size_t p = lx->pos;
    if (p >= lx->len || (lx->buf[p] != '\t' && lx->buf[p] != ' '))
        return 0;
    if (lx->buf[p] == ' ' && p + 1 < lx->len && lx->buf[p + 1] == '(')
        return 0; /* extended data */
    size_t q = p;
    while (q < lx->len && lx->buf[q] == ' ')
        q++;
    if (q < lx->len && (lx->buf[q] == '\r' || lx->buf[q] == '\n'))
        return 0; /* only trailing spaces: Q1-style, eol() decides */
    if (!quirk_allowed(lx, IMK_QUIRK_ATOM_MAILBOX))
        return 0;
    size_t end = p;
    while (end < lx->len && lx->buf[end] != '\r' && lx->buf[end] != '\n')
        end++;
    size_t trim = end;
    while (trim > p && lx->buf[trim - 1] == ' ')
        trim--;
    raw->len = (size_t)(lx->buf + trim - raw->data);
    lx->pos = trim;
    lx->quirks_seen |= IMK_QUIRK_ATOM_MAILBOX;
    return 1;
}

/* Delimiter: DQUOTE QUOTED-CHAR DQUOTE / nil */
static int parse_delimiter(imk__lexer *lx, int *out)
{
    if (imk__lex_accept_word(lx, "NIL")) {
        *out = -1;
        return 0;
    }
    if (peek(lx) != '"')
        return imk__lex_fail(lx, "a quoted hierarchy delimiter or NIL");
    size_t at = lx->pos;
    imk_str d;
    int rc = imk__lex_string(lx, &d);
    if (rc < 0)
        return rc;
    if (d.len != 1) {
        lx->pos = at;
        return imk__lex_fail(lx, "a one-character hierarchy delimiter");
    }
    *out = (unsigned char)d.data[0];
    return 0;
}

/*
 * mbox-list-extended =  "(" [mbox-list-extended-item
 *                        *(SP mbox-list-extended-item)] ")"
 * mbox-list-extended-item = mbox-list-extended-item-tag SP tagged-ext-val
 * (RFC 9051; RFC 5258 section 9). CHILDINFO: "(" string *(SP string) ")";
 * OLDNAME: "(" mailbox ")"; others are kept as generic values.
 */
static int parse_list_extended(imk__lexer *lx, imk_list *l)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    imk__vec extras;
    imk__vec_init(&extras, sizeof(imk_list_extra));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_str tag;
            if ((rc = imk__lex_astring(lx, &tag)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and a value after the extended item tag")) < 0)
                return rc;
            if (IS(tag, "CHILDINFO") && peek(lx) == '(') {
                if ((rc = parse_paren_astrings(lx, &l->childinfo)) < 0)
                    return rc;
            } else if (IS(tag, "OLDNAME") && peek(lx) == '(') {
                imk_str raw;
                int bad;
                if ((rc = imk__lex_list_begin(lx)) < 0)
                    return rc;
                if ((rc = imk__lex_mailbox(lx, &l->oldname, &raw, &bad)) < 0)
                    return rc;
                if ((rc = imk__lex_list_end(lx)) < 0)
                    return rc;
            } else {
                imk_list_extra *x = imk__vec_push(lx, &extras);
                if (x == NULL)
                    return lx->ctx->err_code;
                x->tag = tag;
                imk_value *v;
                if ((rc = imk__lex_value(lx, &v)) < 0)
                    return rc;
                x->value = v;
            }
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after an extended LIST item")) < 0)
                return rc;
        }
    }
    l->extra_count = extras.count;
    l->extras = extras.items;
    return imk__lex_list_end(lx);
}

/*
 * mailbox-list = "(" [mbx-list-flags] ")" SP
 *                (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
 *                [SP mbox-list-extended]
 * (LSUB, RFC 3501, has the same shape.)
 */
static int parse_list(imk__lexer *lx, imk_response *r)
{
    imk_list *l = &r->u.list;
    int rc = sp_then(lx, "SP and the attribute list");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_flag_list(lx, &l->attributes)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and the hierarchy delimiter")) < 0)
        return rc;
    if ((rc = parse_delimiter(lx, &l->delimiter)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and the mailbox name")) < 0)
        return rc;
    size_t start = lx->pos;
    if ((rc = imk__lex_astring(lx, &l->mailbox_raw)) < 0)
        return rc;
    if (l->mailbox_raw.data == lx->buf + start) /* an atom, not quoted/literal */
        list_atom_mailbox_quirk(lx, &l->mailbox_raw);
    if ((rc = imk__lex_mailbox_decode(lx, l->mailbox_raw, &l->mailbox, &l->mailbox_not_utf7)) < 0)
        return rc;
    l->oldname.data = NULL;
    if (peek(lx) == ' ' && lx->pos + 1 < lx->len && lx->buf[lx->pos + 1] == '(') {
        lx->pos++;
        if ((rc = parse_list_extended(lx, l)) < 0)
            return rc;
    }
    return imk__lex_eol(lx);
}

/*
 * "STATUS" SP mailbox SP "(" [status-att-list] ")"
 * status-att-val = ("MESSAGES" SP number) / ("UIDNEXT" SP nz-number) /
 *                  ("UIDVALIDITY" SP nz-number) / ("UNSEEN" SP number) /
 *                  ("DELETED" SP number) / ("SIZE" SP number64)
 * plus RECENT (RFC 3501), HIGHESTMODSEQ (RFC 7162), APPENDLIMIT (RFC 7889,
 * number / NIL), MAILBOXID (RFC 8474, "(" objectid ")"), DELETED-STORAGE
 * (RFC 9208). Q1: trailing space after the list; Q20: UIDVALIDITY above
 * 2^32-1 (kept exact).
 */
static int parse_status(imk__lexer *lx, imk_response *r)
{
    imk_status_data *s = &r->u.status;
    int rc = sp_then(lx, "SP and a mailbox name after STATUS");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_mailbox(lx, &s->mailbox, &s->mailbox_raw, &s->mailbox_not_utf7)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and \"(\" after the STATUS mailbox")) < 0)
        return rc;
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    imk__vec extras;
    imk__vec_init(&extras, sizeof(imk_fetch_extra));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_str name;
            if ((rc = read_name(lx, &name, "a STATUS item name")) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and a value after the STATUS item")) < 0)
                return rc;
            unsigned bit = 0;
            uint64_t *slot = NULL;
            switch (upper((unsigned char)name.data[0])) {
            case 'M':
                if (IS(name, "MESSAGES"))
                    bit = IMK_STATUS_MESSAGES, slot = &s->messages;
                else if (IS(name, "MAILBOXID"))
                    bit = IMK_STATUS_MAILBOXID;
                break;
            case 'U':
                if (IS(name, "UIDNEXT"))
                    bit = IMK_STATUS_UIDNEXT, slot = &s->uidnext;
                else if (IS(name, "UIDVALIDITY"))
                    bit = IMK_STATUS_UIDVALIDITY, slot = &s->uidvalidity;
                else if (IS(name, "UNSEEN"))
                    bit = IMK_STATUS_UNSEEN, slot = &s->unseen;
                break;
            case 'R':
                if (IS(name, "RECENT"))
                    bit = IMK_STATUS_RECENT, slot = &s->recent;
                break;
            case 'D':
                if (IS(name, "DELETED"))
                    bit = IMK_STATUS_DELETED, slot = &s->deleted;
                else if (IS(name, "DELETED-STORAGE"))
                    bit = IMK_STATUS_DELETED_STORAGE, slot = &s->deleted_storage;
                break;
            case 'S':
                if (IS(name, "SIZE"))
                    bit = IMK_STATUS_SIZE, slot = &s->size;
                break;
            case 'H':
                if (IS(name, "HIGHESTMODSEQ"))
                    bit = IMK_STATUS_HIGHESTMODSEQ, slot = &s->highestmodseq;
                break;
            case 'A':
                if (IS(name, "APPENDLIMIT"))
                    bit = IMK_STATUS_APPENDLIMIT, slot = &s->appendlimit;
                break;
            default:
                break;
            }
            if (bit == IMK_STATUS_MAILBOXID) {
                if ((rc = imk__lex_list_begin(lx)) < 0)
                    return rc;
                if ((rc = read_name(lx, &s->mailboxid, "an objectid")) < 0)
                    return rc;
                if ((rc = imk__lex_list_end(lx)) < 0)
                    return rc;
            } else if (bit == IMK_STATUS_APPENDLIMIT && imk__lex_accept_word(lx, "NIL")) {
                s->appendlimit_nil = 1;
            } else if (bit == IMK_STATUS_UIDNEXT || bit == IMK_STATUS_UIDVALIDITY) {
                if ((rc = nz_number_exact(lx, slot)) < 0)
                    return rc;
            } else if (slot != NULL) {
                if ((rc = imk__lex_number(lx, slot)) < 0)
                    return rc;
            } else {
                imk_fetch_extra *x = imk__vec_push(lx, &extras);
                if (x == NULL)
                    return lx->ctx->err_code;
                x->name = name;
                imk_value *v;
                if ((rc = imk__lex_value(lx, &v)) < 0)
                    return rc;
                x->value = v;
            }
            s->present |= bit;
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after a STATUS item")) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    s->extra_count = extras.count;
    s->extras = extras.items;
    return imk__lex_eol(lx);
}

/*
 * mailbox-data =/ "SEARCH" [1*(SP nz-number) SP search-sort-mod-seq]
 * sort-data     = "SORT" [1*(SP nz-number) SP search-sort-mod-seq]
 * search-sort-mod-seq = "(" "MODSEQ" SP mod-sequence-value ")"
 * (RFC 9051 obsolete-search-response, RFC 5256, RFC 7162 section 7.)
 * Q3: trailing space, also on empty results.
 */
static int parse_search(imk__lexer *lx, imk_response *r)
{
    imk_search *s = &r->u.search;
    imk__vec v;
    imk__vec_init(&v, sizeof(uint32_t));
    int rc;
    while (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP and a number")) < 0)
            return rc;
        if (peek(lx) == '(') {
            if ((rc = imk__lex_list_begin(lx)) < 0)
                return rc;
            if (!imk__lex_accept_word(lx, "MODSEQ"))
                return imk__lex_fail(lx, "MODSEQ in \"(MODSEQ n)\"");
            if ((rc = sp_then(lx, "SP and a mod-sequence")) < 0)
                return rc;
            if ((rc = imk__lex_number(lx, &s->modseq)) < 0)
                return rc;
            if ((rc = imk__lex_list_end(lx)) < 0)
                return rc;
            s->has_modseq = 1;
            break;
        }
        uint32_t *n = imk__vec_push(lx, &v);
        if (n == NULL)
            return lx->ctx->err_code;
        if ((rc = nz_number32(lx, n)) < 0)
            return rc;
    }
    s->count = v.count;
    s->numbers = v.items;
    return imk__lex_eol(lx);
}

/*
 * thread-list    = "(" (thread-members / thread-nested) ")"
 * thread-members = nz-number *(SP nz-number) [SP thread-nested]
 * thread-nested  = 2*thread-list                     (RFC 5256 section 5)
 *
 * "(a b c (d)(e))": a is the parent of b, b of c, and d and e are the
 * children of c. A thread-list that starts with a nested list has no
 * message of its own: a dummy node (num 0).
 */
static int parse_thread_list(imk__lexer *lx, imk_thread_node *out)
{
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    imk__vec members;
    imk__vec_init(&members, sizeof(uint32_t));
    while (is_digit(peek(lx))) {
        uint32_t *n = imk__vec_push(lx, &members);
        if (n == NULL)
            return lx->ctx->err_code;
        if ((rc = nz_number32(lx, n)) < 0)
            return rc;
        if (peek(lx) != ' ')
            break;
        if ((rc = imk__lex_sp(lx)) < 0)
            return rc;
        if (peek(lx) == '(')
            break;
        if (!is_digit(peek(lx)))
            return imk__lex_fail(lx, "a message number or \"(\" in a thread");
    }
    imk__vec kids;
    imk__vec_init(&kids, sizeof(imk_thread_node));
    while (peek(lx) == '(') {
        imk_thread_node *k = imk__vec_push(lx, &kids);
        if (k == NULL)
            return lx->ctx->err_code;
        if ((rc = parse_thread_list(lx, k)) < 0)
            return rc;
    }
    if (members.count == 0 && kids.count == 0)
        return imk__lex_fail(lx, "a message number or \"(\" in a thread");
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    if (members.count == 0) {
        out->num = 0;
        out->child_count = kids.count;
        out->children = kids.items;
        return 0;
    }
    /* members[0] is out; members[1..] a chain below it (one child each). */
    const uint32_t *nums = members.items;
    imk_thread_node *chain = NULL;
    if (members.count > 1) {
        chain = imk__lex_array(lx, members.count - 1, sizeof(imk_thread_node));
        if (chain == NULL)
            return lx->ctx->err_code;
    }
    out->num = nums[0];
    imk_thread_node *tail = out;
    for (size_t i = 1; i < members.count; i++) {
        imk_thread_node *n = &chain[i - 1];
        n->num = nums[i];
        tail->child_count = 1;
        tail->children = n;
        tail = n;
    }
    tail->child_count = kids.count;
    tail->children = kids.items;
    return 0;
}

/* thread-data = "THREAD" [SP 1*thread-list] */
static int parse_thread(imk__lexer *lx, imk_response *r)
{
    imk__vec roots;
    imk__vec_init(&roots, sizeof(imk_thread_node));
    int rc;
    if (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP and a thread list")) < 0)
            return rc;
        while (peek(lx) == '(') {
            imk_thread_node *n = imk__vec_push(lx, &roots);
            if (n == NULL)
                return lx->ctx->err_code;
            if ((rc = parse_thread_list(lx, n)) < 0)
                return rc;
        }
    }
    r->u.thread.count = roots.count;
    r->u.thread.roots = roots.items;
    return imk__lex_eol(lx);
}

/* partial-range = ["-"] nz-number ":" ["-"] nz-number (RFC 9394; RFC 5267
 * without the minus). A negative bound is stored in two's complement
 * ((uint32_t)-n), so (int32_t)first < 0 tells it apart. */
static int parse_partial_bound(imk__lexer *lx, uint32_t *out)
{
    int neg = 0;
    if (peek(lx) == '-') {
        neg = 1;
        lx->pos++;
    }
    int rc = nz_number32(lx, out);
    if (rc < 0)
        return rc;
    if (neg)
        *out = (uint32_t)(0u - *out);
    return 0;
}

/* One search-return-data item after its name and SP. */
static int parse_return_data(imk__lexer *lx, imk_esearch *e, imk_str name, imk__vec *updates,
                             imk__vec *extras)
{
    int rc;
    if (IS(name, "MIN")) {
        if ((rc = nz_number32(lx, &e->min)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_MIN;
    } else if (IS(name, "MAX")) {
        if ((rc = nz_number32(lx, &e->max)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_MAX;
    } else if (IS(name, "COUNT")) {
        if ((rc = imk__lex_number(lx, &e->count)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_COUNT;
    } else if (IS(name, "ALL")) {
        if ((rc = imk__lex_seqset(lx, &e->all)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_ALL;
    } else if (IS(name, "MODSEQ")) {
        if ((rc = imk__lex_number(lx, &e->modseq)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_MODSEQ;
    } else if (IS(name, "PARTIAL")) {
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        if ((rc = parse_partial_bound(lx, &e->partial_range.first)) < 0)
            return rc;
        if (peek(lx) != ':')
            return imk__lex_fail(lx, "\":\" in the partial range");
        lx->pos++;
        if ((rc = parse_partial_bound(lx, &e->partial_range.last)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the partial results")) < 0)
            return rc;
        if (!imk__lex_accept_word(lx, "NIL")) {
            if ((rc = imk__lex_seqset(lx, &e->partial)) < 0)
                return rc;
        }
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
        e->present |= IMK_ESEARCH_PARTIAL;
    } else if (IS(name, "ADDTO") || IS(name, "REMOVEFROM")) {
        int remove = IS(name, "REMOVEFROM");
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        for (;;) {
            imk_esearch_update *u = imk__vec_push(lx, updates);
            if (u == NULL)
                return lx->ctx->err_code;
            u->remove = remove;
            if ((rc = imk__lex_number(lx, &u->position)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and a sequence set after the context position")) < 0)
                return rc;
            if ((rc = imk__lex_seqset(lx, &u->set)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after a sequence set")) < 0)
                return rc;
        }
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
    } else {
        imk_fetch_extra *x = imk__vec_push(lx, extras);
        if (x == NULL)
            return lx->ctx->err_code;
        x->name = name;
        imk_value *v;
        if ((rc = imk__lex_value(lx, &v)) < 0)
            return rc;
        x->value = v;
    }
    return 0;
}

/*
 * esearch-response  = "ESEARCH" [search-correlator] [SP "UID"]
 *                     *(SP search-return-data)
 * search-correlator = SP "(" "TAG" SP tag-string ")"
 * search-return-data = "MIN" SP nz-number / "MAX" SP nz-number /
 *                      "ALL" SP sequence-set / "COUNT" SP number /
 *                      search-ret-data-ext
 *   "MODSEQ" SP mod-sequence-value                       (RFC 7162)
 *   "PARTIAL" SP "(" partial-range SP partial-results ")" (RFC 9394)
 *   "ADDTO"/"REMOVEFROM" SP "(" context-position SP sequence-set
 *        *(SP context-position SP sequence-set) ")"      (RFC 5267)
 * Q47: "... UID ALL 1,2 (MODSEQ 284535)" (MailKit#323) under
 * IMK_QUIRK_ESEARCH_MODSEQ - and, under the same switch, any return data
 * item in parentheses (RFC 5465's example "(TAG "a00") (COUNT 17)").
 * "(TAG "x") UID" with no return data at all is legal and parses as such.
 */
static int parse_esearch(imk__lexer *lx, imk_response *r)
{
    imk_esearch *e = &r->u.esearch;
    imk__vec extras, updates;
    imk__vec_init(&extras, sizeof(imk_fetch_extra));
    imk__vec_init(&updates, sizeof(imk_esearch_update));
    int rc, items = 0;
    while (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP and ESEARCH return data")) < 0)
            return rc;
        int paren = 0;
        if (peek(lx) == '(' && items == 0 && e->tag.data == NULL && !e->uid) {
            if ((rc = imk__lex_list_begin(lx)) < 0)
                return rc;
            if (!imk__lex_accept_word(lx, "TAG"))
                return imk__lex_fail(lx, "TAG in the search correlator");
            if ((rc = sp_then(lx, "SP and the tag string")) < 0)
                return rc;
            if ((rc = imk__lex_astring(lx, &e->tag)) < 0)
                return rc;
            if ((rc = imk__lex_list_end(lx)) < 0)
                return rc;
            continue;
        }
        if (peek(lx) == '(') {
            if (!quirk_allowed(lx, IMK_QUIRK_ESEARCH_MODSEQ))
                return imk__lex_fail(lx, "an ESEARCH return data name");
            if ((rc = imk__lex_list_begin(lx)) < 0)
                return rc;
            paren = 1;
            lx->quirks_seen |= IMK_QUIRK_ESEARCH_MODSEQ;
        }
        imk_str name;
        if ((rc = read_name(lx, &name, "an ESEARCH return data name")) < 0)
            return rc;
        if (!paren && IS(name, "UID") && items == 0 && !e->uid) {
            e->uid = 1;
            continue;
        }
        items++;
        if ((rc = sp_then(lx, "SP and a value after the ESEARCH return data name")) < 0)
            return rc;
        if ((rc = parse_return_data(lx, e, name, &updates, &extras)) < 0)
            return rc;
        if (paren && (rc = imk__lex_list_end(lx)) < 0)
            return rc;
    }
    e->update_count = updates.count;
    e->updates = updates.items;
    e->extra_count = extras.count;
    e->extras = extras.items;
    return imk__lex_eol(lx);
}

/* expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids (RFC 7162) */
static int parse_vanished(imk__lexer *lx, imk_response *r)
{
    int rc = sp_then(lx, "SP after VANISHED");
    if (rc < 0)
        return rc;
    if (peek(lx) == '(') {
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        if (!imk__lex_accept_word(lx, "EARLIER"))
            return imk__lex_fail(lx, "EARLIER in \"(EARLIER)\"");
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
        r->u.vanished.earlier = 1;
        if ((rc = sp_then(lx, "SP and a UID set after (EARLIER)")) < 0)
            return rc;
    }
    if ((rc = imk__lex_seqset(lx, &r->u.vanished.uids)) < 0)
        return rc;
    return imk__lex_eol(lx);
}

/*
 * namespace       = nil / "(" 1*namespace-descr ")"
 * namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
 *                   [namespace-response-extensions] ")"
 * namespace-response-extension = SP string SP "(" string *(SP string) ")"
 */
static int parse_namespace_list(imk__lexer *lx, imk_namespace_list *out)
{
    if (imk__lex_accept_word(lx, "NIL")) {
        out->nil = 1;
        return 0;
    }
    if (peek(lx) != '(')
        return imk__lex_fail(lx, "NIL or \"(\"");
    int rc = imk__lex_list_begin(lx);
    if (rc < 0)
        return rc;
    imk__vec descs;
    imk__vec_init(&descs, sizeof(imk_namespace_desc));
    do {
        imk_namespace_desc *d = imk__vec_push(lx, &descs);
        if (d == NULL)
            return lx->ctx->err_code;
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        if ((rc = imk__lex_string(lx, &d->prefix)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the namespace delimiter")) < 0)
            return rc;
        if ((rc = parse_delimiter(lx, &d->delimiter)) < 0)
            return rc;
        imk__vec exts;
        imk__vec_init(&exts, sizeof(imk_list_extra));
        while (!imk__lex_at_list_end(lx)) {
            if ((rc = sp_then(lx, "SP or \")\" in a namespace description")) < 0)
                return rc;
            imk_list_extra *x = imk__vec_push(lx, &exts);
            if (x == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_string(lx, &x->tag)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and the namespace extension values")) < 0)
                return rc;
            if (peek(lx) != '(')
                return imk__lex_fail(lx, "\"(\" and namespace extension values");
            imk_value *v;
            if ((rc = imk__lex_value(lx, &v)) < 0)
                return rc;
            x->value = v;
        }
        d->extension_count = exts.count;
        d->extensions = exts.items;
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
    } while (peek(lx) == '(');
    out->count = descs.count;
    out->items = descs.items;
    return imk__lex_list_end(lx);
}

/* namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace */
static int parse_namespace(imk__lexer *lx, imk_response *r)
{
    imk_namespace *ns = &r->u.namespace_;
    int rc;
    if ((rc = sp_then(lx, "SP and the personal namespaces")) < 0 ||
        (rc = parse_namespace_list(lx, &ns->personal)) < 0 ||
        (rc = sp_then(lx, "SP and the other users' namespaces")) < 0 ||
        (rc = parse_namespace_list(lx, &ns->other_users)) < 0 ||
        (rc = sp_then(lx, "SP and the shared namespaces")) < 0 ||
        (rc = parse_namespace_list(lx, &ns->shared)) < 0)
        return rc;
    return imk__lex_eol(lx);
}

/*
 * id_response    ::= "ID" SPACE id_params_list
 * id_params_list ::= "(" #(string SPACE nstring) ")" / nil   (RFC 2971)
 * Q4: trailing space after the list.
 */
static int parse_id(imk__lexer *lx, imk_response *r)
{
    int rc = sp_then(lx, "SP and a parameter list or NIL after ID");
    if (rc < 0)
        return rc;
    if (imk__lex_accept_word(lx, "NIL")) {
        r->u.id.nil = 1;
        return imk__lex_eol(lx);
    }
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_param));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_param *p = imk__vec_push(lx, &v);
            if (p == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_string(lx, &p->name)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and a value after the ID field name")) < 0)
                return rc;
            if ((rc = imk__lex_nstring(lx, &p->value)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after an ID field")) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    r->u.id.fields.count = v.count;
    r->u.id.fields.items = v.items;
    return imk__lex_eol(lx);
}

/*
 * quota-response = "QUOTA" SP quota-root-name SP quota-list
 * quota-list     = "(" quota-resource *(SP quota-resource) ")"
 * quota-resource = resource-name SP resource-usage SP resource-limit
 *                                                   (RFC 9208 section 9)
 * Usage and limit are 64-bit (Q26, legal). An empty list (RFC 2087's
 * "#quota_resource") is accepted.
 */
static int parse_quota(imk__lexer *lx, imk_response *r)
{
    imk_quota *q = &r->u.quota;
    int rc = sp_then(lx, "SP and a quota root after QUOTA");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_astring(lx, &q->root)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and a resource list")) < 0)
        return rc;
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_quota_resource));
    if (!imk__lex_at_list_end(lx)) {
        for (;;) {
            imk_quota_resource *res = imk__vec_push(lx, &v);
            if (res == NULL)
                return lx->ctx->err_code;
            if ((rc = read_name(lx, &res->name, "a quota resource name")) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and the resource usage")) < 0)
                return rc;
            if ((rc = imk__lex_number(lx, &res->usage)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and the resource limit")) < 0)
                return rc;
            if ((rc = imk__lex_number(lx, &res->limit)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after a quota resource")) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    q->count = v.count;
    q->resources = v.items;
    return imk__lex_eol(lx);
}

/* quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name) */
static int parse_quotaroot(imk__lexer *lx, imk_response *r)
{
    imk_quotaroot *q = &r->u.quotaroot;
    imk_str raw;
    int bad;
    int rc = sp_then(lx, "SP and a mailbox after QUOTAROOT");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_mailbox(lx, &q->mailbox, &raw, &bad)) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_str));
    while (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP and a quota root name")) < 0)
            return rc;
        imk_str *s = imk__vec_push(lx, &v);
        if (s == NULL)
            return lx->ctx->err_code;
        if ((rc = imk__lex_astring(lx, s)) < 0)
            return rc;
    }
    q->roots.count = v.count;
    q->roots.items = v.items;
    return imk__lex_eol(lx);
}

/*
 * metadata-resp = "METADATA" SP mailbox SP (entry-values / entry-list)
 * entry-values  = "(" entry-value *(SP entry-value) ")"
 * entry-value   = entry SP value ; value = nstring / literal8
 * entry-list    = entry *(SP entry)   ; unsolicited    (RFC 5464 section 5)
 */
static int parse_metadata(imk__lexer *lx, imk_response *r)
{
    imk_metadata *m = &r->u.metadata;
    imk_str raw;
    int bad;
    int rc = sp_then(lx, "SP and a mailbox after METADATA");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_mailbox(lx, &m->mailbox, &raw, &bad)) < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and entries after the METADATA mailbox")) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_param));
    if (peek(lx) == '(') {
        m->has_values = 1;
        if ((rc = imk__lex_list_begin(lx)) < 0)
            return rc;
        for (;;) {
            imk_param *p = imk__vec_push(lx, &v);
            if (p == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_astring(lx, &p->name)) < 0)
                return rc;
            if ((rc = sp_then(lx, "SP and a value after the metadata entry")) < 0)
                return rc;
            if ((rc = imk__lex_nstring(lx, &p->value)) < 0)
                return rc;
            if (imk__lex_at_list_end(lx))
                break;
            if ((rc = sp_then(lx, "SP or \")\" after a metadata value")) < 0)
                return rc;
        }
        if ((rc = imk__lex_list_end(lx)) < 0)
            return rc;
    } else {
        for (;;) {
            imk_param *p = imk__vec_push(lx, &v);
            if (p == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_astring(lx, &p->name)) < 0)
                return rc;
            if (imk__lex_at_eol(lx))
                break;
            if ((rc = sp_then(lx, "SP and another entry name")) < 0)
                return rc;
        }
    }
    m->entries.count = v.count;
    m->entries.items = v.items;
    return imk__lex_eol(lx);
}

/*
 * acl-data        = "ACL" SP mailbox *(SP identifier SP rights)
 * listrights-data = "LISTRIGHTS" SP mailbox SP identifier SP rights
 *                   *(SP rights)
 * myrights-data   = "MYRIGHTS" SP mailbox SP rights      (RFC 4314 section 4)
 */
static int parse_acl(imk__lexer *lx, imk_response *r)
{
    imk_acl *a = &r->u.acl;
    imk_str raw;
    int bad;
    int rc = sp_then(lx, "SP and a mailbox");
    if (rc < 0)
        return rc;
    if ((rc = imk__lex_mailbox(lx, &a->mailbox, &raw, &bad)) < 0)
        return rc;
    if (r->kind == IMK_KIND_MYRIGHTS) {
        if ((rc = sp_then(lx, "SP and the rights after the mailbox")) < 0)
            return rc;
        if ((rc = imk__lex_astring(lx, &a->rights)) < 0)
            return rc;
        return imk__lex_eol(lx);
    }
    imk__vec v;
    if (r->kind == IMK_KIND_LISTRIGHTS) {
        if ((rc = sp_then(lx, "SP and an identifier after the mailbox")) < 0)
            return rc;
        if ((rc = imk__lex_astring(lx, &a->identifier)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the required rights")) < 0)
            return rc;
        if ((rc = imk__lex_astring(lx, &a->rights)) < 0)
            return rc;
        imk__vec_init(&v, sizeof(imk_str));
        while (!imk__lex_at_eol(lx)) {
            if ((rc = sp_then(lx, "SP and optional rights")) < 0)
                return rc;
            imk_str *s = imk__vec_push(lx, &v);
            if (s == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_astring(lx, s)) < 0)
                return rc;
        }
        a->optional_rights.count = v.count;
        a->optional_rights.items = v.items;
        return imk__lex_eol(lx);
    }
    imk__vec_init(&v, sizeof(imk_param));
    while (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP and an identifier")) < 0)
            return rc;
        imk_param *p = imk__vec_push(lx, &v);
        if (p == NULL)
            return lx->ctx->err_code;
        if ((rc = imk__lex_astring(lx, &p->name)) < 0)
            return rc;
        if ((rc = sp_then(lx, "SP and the rights of the identifier")) < 0)
            return rc;
        if ((rc = imk__lex_astring(lx, &p->value)) < 0)
            return rc;
    }
    a->entries.count = v.count;
    a->entries.items = v.items;
    return imk__lex_eol(lx);
}

/* capability-data / enable-data = "ENABLED" *(SP capability) (RFC 5161) */
static int parse_capability(imk__lexer *lx, imk_response *r)
{
    int rc = parse_capability_list(lx, &r->u.capability);
    if (rc < 0)
        return rc;
    return imk__lex_eol(lx);
}

/* Anything else: the values after the name as a LIST value. */
static int parse_generic(imk__lexer *lx, imk_response *r)
{
    r->kind = IMK_KIND_GENERIC;
    imk_value *v;
    int rc;
    if (!imk__lex_at_eol(lx)) {
        if ((rc = sp_then(lx, "SP or CRLF after the response name")) < 0)
            return rc;
    }
    if ((rc = imk__lex_values_until_end(lx, &v)) < 0)
        return rc;
    r->u.generic = v;
    return imk__lex_eol(lx);
}

/* ------------------------------------------------------------------ */
/* Classification                                                      */
/* ------------------------------------------------------------------ */

static imk_status status_of(imk_str name)
{
    switch (name.len) {
    case 2:
        if (IS(name, "OK"))
            return IMK_STATUS_OK;
        if (IS(name, "NO"))
            return IMK_STATUS_NO;
        break;
    case 3:
        if (IS(name, "BAD"))
            return IMK_STATUS_BAD;
        if (IS(name, "BYE"))
            return IMK_STATUS_BYE;
        break;
    case 7:
        if (IS(name, "PREAUTH"))
            return IMK_STATUS_PREAUTH;
        break;
    default:
        break;
    }
    return IMK_STATUS_NONE;
}

/* Data names that follow "*" SP directly. */
static imk_response_kind data_kind_of(imk_str n)
{
    switch (upper((unsigned char)n.data[0])) {
    case 'A':
        if (IS(n, "ACL"))
            return IMK_KIND_ACL;
        break;
    case 'C':
        if (IS(n, "CAPABILITY"))
            return IMK_KIND_CAPABILITY;
        break;
    case 'E':
        if (IS(n, "ESEARCH"))
            return IMK_KIND_ESEARCH;
        if (IS(n, "ENABLED"))
            return IMK_KIND_ENABLED;
        break;
    case 'F':
        if (IS(n, "FLAGS"))
            return IMK_KIND_FLAGS;
        break;
    case 'I':
        if (IS(n, "ID"))
            return IMK_KIND_ID;
        break;
    case 'L':
        if (IS(n, "LIST"))
            return IMK_KIND_LIST;
        if (IS(n, "LSUB"))
            return IMK_KIND_LSUB;
        if (IS(n, "LISTRIGHTS"))
            return IMK_KIND_LISTRIGHTS;
        break;
    case 'M':
        if (IS(n, "METADATA"))
            return IMK_KIND_METADATA;
        if (IS(n, "MYRIGHTS"))
            return IMK_KIND_MYRIGHTS;
        break;
    case 'N':
        if (IS(n, "NAMESPACE"))
            return IMK_KIND_NAMESPACE;
        break;
    case 'Q':
        if (IS(n, "QUOTA"))
            return IMK_KIND_QUOTA;
        if (IS(n, "QUOTAROOT"))
            return IMK_KIND_QUOTAROOT;
        break;
    case 'S':
        if (IS(n, "SEARCH"))
            return IMK_KIND_SEARCH;
        if (IS(n, "STATUS"))
            return IMK_KIND_STATUS;
        if (IS(n, "SORT"))
            return IMK_KIND_SORT;
        break;
    case 'T':
        if (IS(n, "THREAD"))
            return IMK_KIND_THREAD;
        break;
    case 'V':
        if (IS(n, "VANISHED"))
            return IMK_KIND_VANISHED;
        break;
    default:
        break;
    }
    return IMK_KIND_GENERIC;
}

/* Status responses: resp-cond-state / resp-cond-bye / resp-cond-auth. */
static int parse_status_response(imk__lexer *lx, imk_response *r, imk_status st)
{
    r->kind = IMK_KIND_STATUS_RESPONSE;
    r->status = st;
    return parse_resp_text(lx, r);
}

/* "*" SP number SP ("EXISTS" / "RECENT" / "EXPUNGE" / "FETCH" SP msg-att)
 * (message-data, mailbox-data). */
static int parse_numbered(imk__lexer *lx, imk_response *r)
{
    size_t num_at = lx->pos;
    int rc = imk__lex_number(lx, &r->number);
    if (rc < 0)
        return rc;
    if ((rc = sp_then(lx, "SP and a response name after the number")) < 0)
        return rc;
    if ((rc = read_name(lx, &r->name, "a response name (EXISTS, EXPUNGE, FETCH...)")) < 0)
        return rc;
    imk_str n = r->name;
    int nz = 0;
    switch (upper((unsigned char)n.data[0])) {
    case 'E':
        if (IS(n, "EXISTS")) {
            r->kind = IMK_KIND_EXISTS;
        } else if (IS(n, "EXPUNGE")) {
            r->kind = IMK_KIND_EXPUNGE;
            nz = 1;
        } else {
            return parse_generic(lx, r);
        }
        break;
    case 'R':
        if (!IS(n, "RECENT"))
            return parse_generic(lx, r);
        r->kind = IMK_KIND_RECENT;
        break;
    case 'F':
        if (!IS(n, "FETCH"))
            return parse_generic(lx, r);
        r->kind = IMK_KIND_FETCH;
        nz = 1;
        break;
    default:
        return parse_generic(lx, r);
    }
    if (nz && (r->number == 0 || r->number > UINT32_MAX)) {
        /* Q22: "* 0 FETCH" (Courier) under IMK_QUIRK_NUMBER_RANGE */
        if (!quirk_allowed(lx, IMK_QUIRK_NUMBER_RANGE))
            return imk__lex_fail_range(lx, num_at,
                                       r->number == 0
                                           ? "expected a non-zero message number, found 0"
                                           : "expected a message number below 4294967296");
        lx->quirks_seen |= IMK_QUIRK_NUMBER_RANGE;
    }
    if (r->kind == IMK_KIND_FETCH)
        return imk__parse_fetch(lx, r);
    return imk__lex_eol(lx);
}

static int parse_untagged(imk__lexer *lx, imk_response *r)
{
    int rc;
    r->type = IMK_RESPONSE_UNTAGGED;
    int c = peek(lx);
    if (is_digit(c))
        return parse_numbered(lx, r);
    if (c == '[' && quirk_allowed(lx, IMK_QUIRK_BARE_CODE)) {
        /* Q11: "* [COPYUID ...]" - a code with no status word: taken as OK
         * (MailKit's "pretend that we got an OK"). */
        lx->quirks_seen |= IMK_QUIRK_BARE_CODE;
        r->kind = IMK_KIND_STATUS_RESPONSE;
        r->status = IMK_STATUS_OK;
        return parse_resp_text_body(lx, r);
    }
    /* Response names are atoms that start with a letter; anything else
     * (e.g. "[" without Q11's switch) is not a response. */
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
        return imk__lex_fail(lx, "a response name or status after \"* \"");
    if ((rc = read_name(lx, &r->name, "a response name or status after \"* \"")) < 0)
        return rc;
    imk_status st = status_of(r->name);
    if (st != IMK_STATUS_NONE)
        return parse_status_response(lx, r, st);
    r->kind = data_kind_of(r->name);
    switch (r->kind) {
    case IMK_KIND_CAPABILITY:
    case IMK_KIND_ENABLED:
        return parse_capability(lx, r);
    case IMK_KIND_FLAGS:
        return parse_flags(lx, r);
    case IMK_KIND_LIST:
    case IMK_KIND_LSUB:
        return parse_list(lx, r);
    case IMK_KIND_STATUS:
        return parse_status(lx, r);
    case IMK_KIND_SEARCH:
    case IMK_KIND_SORT:
        return parse_search(lx, r);
    case IMK_KIND_THREAD:
        return parse_thread(lx, r);
    case IMK_KIND_ESEARCH:
        return parse_esearch(lx, r);
    case IMK_KIND_VANISHED:
        return parse_vanished(lx, r);
    case IMK_KIND_NAMESPACE:
        return parse_namespace(lx, r);
    case IMK_KIND_ID:
        return parse_id(lx, r);
    case IMK_KIND_QUOTA:
        return parse_quota(lx, r);
    case IMK_KIND_QUOTAROOT:
        return parse_quotaroot(lx, r);
    case IMK_KIND_METADATA:
        return parse_metadata(lx, r);
    case IMK_KIND_ACL:
    case IMK_KIND_LISTRIGHTS:
    case IMK_KIND_MYRIGHTS:
        return parse_acl(lx, r);
    default:
        return parse_generic(lx, r);
    }
}

/* response-tagged = tag SP resp-cond-state CRLF
 * tag = 1*<any ASTRING-CHAR except "+">
 * Q16: "tag BYE ..." under IMK_QUIRK_TAGGED_BYE. */
static int parse_tagged(imk__lexer *lx, imk_response *r)
{
    r->type = IMK_RESPONSE_TAGGED;
    int rc = imk__lex_astring_atom(lx, &r->tag);
    if (rc < 0)
        return rc;
    if (memchr(r->tag.data, '+', r->tag.len) != NULL) {
        lx->pos -= r->tag.len;
        return imk__lex_fail(lx, "a tag (no \"+\" allowed)");
    }
    if ((rc = sp_then(lx, "SP after the tag")) < 0)
        return rc;
    size_t at = lx->pos;
    if ((rc = read_name(lx, &r->name, "OK, NO or BAD after the tag")) < 0)
        return rc;
    imk_status st = status_of(r->name);
    if (st == IMK_STATUS_BYE && quirk_allowed(lx, IMK_QUIRK_TAGGED_BYE)) {
        lx->quirks_seen |= IMK_QUIRK_TAGGED_BYE;
    } else if (st != IMK_STATUS_OK && st != IMK_STATUS_NO && st != IMK_STATUS_BAD) {
        lx->pos = at;
        return imk__lex_fail(lx, "OK, NO or BAD after the tag");
    }
    return parse_status_response(lx, r, st);
}

/* continue-req = "+" SP (resp-text / base64) CRLF  - base64 is text too. */
static int parse_continuation(imk__lexer *lx, imk_response *r)
{
    r->type = IMK_RESPONSE_CONTINUATION;
    r->kind = IMK_KIND_CONTINUATION;
    lx->pos++; /* "+" */
    return parse_resp_text(lx, r);
}

/* response = continue-req / response-data / response-done */
int imk__parse_response(imk__parse_ctx *ctx, imk_response **out)
{
    imk__lexer lx;
    ctx->err_code = 0;
    ctx->err_pos = 0;
    ctx->err_msg = NULL;
    imk__lex_init(&lx, ctx);
    imk_response *r = imk__lex_alloc(&lx, sizeof(*r));
    if (r == NULL)
        return ctx->err_code;
    r->raw.data = ctx->buf;
    r->raw.len = ctx->len;
    int rc;
    int c = peek(&lx);
    if (c == '*') {
        lx.pos++;
        rc = sp_then(&lx, "SP after \"*\"");
        if (rc == 0)
            rc = parse_untagged(&lx, r);
    } else if (c == '+') {
        rc = parse_continuation(&lx, r);
    } else if (c == '[' && quirk_allowed(&lx, IMK_QUIRK_BARE_CODE)) {
        /* Q11 (Exchange 2013): a bare "[COPYUID 124 10 233]" line, not even
         * a "*": taken as an untagged OK. */
        r->type = IMK_RESPONSE_UNTAGGED;
        r->kind = IMK_KIND_STATUS_RESPONSE;
        r->status = IMK_STATUS_OK;
        lx.quirks_seen |= IMK_QUIRK_BARE_CODE;
        rc = parse_resp_text_body(&lx, r);
    } else if (c < 0) {
        rc = imk__lex_fail(&lx, "a response (\"*\", \"+\" or a tag)");
    } else {
        rc = parse_tagged(&lx, r);
    }
    if (rc < 0) {
        if (ctx->err_code == 0) {
            /* every failure path records its error; guard anyway */
            ctx->err_code = rc;
            ctx->err_pos = lx.pos;
            ctx->err_msg = "malformed response";
        }
        return ctx->err_code;
    }
    r->quirks = lx.quirks_seen;
    *out = r;
    return 0;
}
