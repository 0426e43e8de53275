/* SPDX-License-Identifier: MIT */
/*
 * BODY / BODYSTRUCTURE and ENVELOPE: the two recursive structures of FETCH.
 *
 * A body is a tree. Its node is "(" ... ")" holding either a single part
 * (type, subtype, body-fields, then lines for text parts, or envelope + nested
 * body + lines for message/rfc822 and message/global) or a multipart (one
 * or more child bodies followed by the subtype). The first byte after "("
 * decides which: another "(" opens a child, so the node is a multipart;
 * anything else is the type string of a single part. Optional extension
 * data follows in both cases, each slot present only if the one before it
 * is, which is why every optional slot below starts with "is the list over?"
 * (imk__lex_at_list_end) before its SP.
 *
 *     node := "(" ( node+ SP subtype [SP ext-mpart]
 *                 | type SP subtype SP fields [type-specific] [SP ext-1part] ) ")"
 *
 * Recursion is bounded by the lexer: every "(" goes through
 * imk__lex_list_begin, which fails with IMK_ELIMIT beyond max_depth, and a
 * parse_body_node() frame is entered only after such a "(" - so the C stack
 * depth is at most max_depth frames of this file.
 *
 * Memory: one imk_body per node in the arena (children of a multipart are an
 * array grown by imk__vec), parameters and languages in arena arrays,
 * strings pointing into the response buffer. Nothing is allocated per token
 * and nothing is freed: the arena goes at the reader's next event.
 *
 * Part numbers: errors name the body part as IMAP numbers it (RFC 9051
 * section 6.4.5): the children of a multipart are 1, 2, ... (1.1, 1.2 when
 * nested); a single-part body that is not a multipart child - the top level
 * of a non-multipart message, or the body of a message/rfc822 part P - is
 * P.1 ("1" at the top). The number is kept as text while descending, which
 * costs a few bytes per level and spares formatting on the error path.
 *
 * Strings that the grammar requires (type, subtype, encoding, parameter
 * names and values) are never NULL: when a quirk lets NIL stand for one of
 * them it becomes "". nstring fields (id, description, md5, location,
 * envelope fields, address parts) keep NIL as data == NULL.
 *
 * Quirks (QUIRKS.md section 6.4; each accepted only when its bit is set in
 * limits->quirks, and recorded in lx->quirks_seen when used):
 *   Q23  "-1" as a size or line count -> 0         IMK_QUIRK_NEGATIVE_NUMBER (lexer)
 *   Q25  "9.3736e+06" as a size -> 9373600         IMK_QUIRK_FLOAT_NUMBER (lexer)
 *   Q27  NIL type and/or subtype of a single part  IMK_QUIRK_BODY_NIL
 *   Q28  (NIL "alternative" ("boundary" "x") NIL NIL): multipart without
 *        children, NIL in their place (unless the node reads as a Q27
 *        single part with a NIL type and a string subtype)
 *                                                  IMK_QUIRK_BODY_NIL
 *   Q29  ("ALTERNATIVE" ("BOUNDARY" "x") NIL NIL), ("RELATED" NIL
 *        ("ATTACHMENT" NIL) NIL), ("ALTERNATIVE"): Gmail's multipart
 *        without children and without even the NIL - accepted as a
 *        multipart with no children whose subtype is the first string and
 *        whose extension data is what follows      IMK_QUIRK_BODY_NIL
 *   Q30  NIL body-fld-enc -> ""                    IMK_QUIRK_BODY_NIL
 *   Q31  NIL parameter value (or name) -> ""       IMK_QUIRK_BODY_NIL
 *        also "()" for body-fld-param (no parameters)
 *   Q32  a string in an extension slot that wants a list (Content-
 *        Description leaking into body-fld-param or body-fld-dsp): kept as
 *        the node's description if it has none, else dropped; NIL inside a
 *        body-fld-lang list: skipped              IMK_QUIRK_BODY_NIL
 *   Q33  message/global (and message/rfc822) without envelope, body and
 *        lines: parsed as a basic part            IMK_QUIRK_BODY_NIL
 *   Q34  unescaped '"' inside a quoted string     IMK_QUIRK_QUOTE_HEURISTIC (lexer)
 *   Q35  ENVELOPE: wrapped in an extra "( )"; in-reply-to and message-id
 *        missing (NIL); NIL inside an address list (skipped); spaces between
 *        addresses; "()" for an address list       IMK_QUIRK_ENVELOPE
 *   and SP between the child bodies of a multipart (RFC 9051's own example
 *   is printed that way)                           IMK_QUIRK_EXTRA_SPACES
 * Not handled: Q35's swapped name/mailbox (not detectable from syntax) and
 * address literals counted in characters (a framing problem).
 *
 * The places that need more than a byte of lookahead are the quirks that
 * make a node ambiguous: `("X" NIL ...` is either a single part whose
 * subtype is NIL (Q27) or Gmail's childless multipart whose parameters are
 * NIL (Q29), and `(NIL "x" ...` a single part whose type is NIL (Q27) or
 * Dovecot's childless multipart (Q28). The single-part reading is tried on
 * a copy of the lexer and parse context (so its error, if any, is not
 * recorded); if it fails, the multipart reading is parsed for real. A
 * single part with a NIL type or subtype cannot be a message/rfc822, so
 * the trial never contains a nested body and costs at most one extra pass
 * over that one node.
 */
#include "proto/parse_body.h"

#include <string.h>

/* Short local names for the shared helpers of lexer.h. */
#define peek imk__peek

/* The longest part number kept for messages ("1.2.3..."); deeper numbers
 * are shown cut, with "...". */
enum { PATH_CAP = 64 };

typedef struct body_parser {
    imk__lexer *lx;
    int extensible;    /* BODYSTRUCTURE: parse extension data */
    int envelope_only; /* called for FETCH ENVELOPE: messages say "in ENVELOPE" */
    int in_envelope;   /* parsing an envelope (nested in body part `path`) */
    unsigned path_cut; /* levels whose number did not fit in `path` */
    size_t path_len;
    char path[PATH_CAP];
} body_parser;

static const char empty_str[] = "";
static const char multipart_str[] = "MULTIPART";
static const char param_what[] = "body-fld-param (\"(\" or NIL)";

/* ------------------------------------------------------------------ */
/* Errors and part numbers                                             */
/* ------------------------------------------------------------------ */

static size_t put(char *m, size_t at, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n > cap - at)
        n = cap - at;
    memcpy(m + at, s, n);
    return at + n;
}

/*
 * Records "expected <prefix><what> in body part 1.2" (the lexer appends
 * what was found). The lexer copies the text into the arena; when even that
 * fails it would keep our pointer, so the static `what` is put back.
 */
static int fail_in(body_parser *bp, const char *prefix, const char *what)
{
    imk__lexer *lx = bp->lx;
    if (lx->ctx->err_code != 0)
        return lx->ctx->err_code;
    char msg[PATH_CAP + 192];
    size_t cap = sizeof(msg) - 1, n = 0;
    if (prefix != NULL)
        n = put(msg, n, cap, prefix);
    n = put(msg, n, cap, what);
    if (bp->in_envelope && bp->envelope_only) {
        n = put(msg, n, cap, " in ENVELOPE");
    } else {
        if (bp->in_envelope)
            n = put(msg, n, cap, " in the envelope of");
        if (bp->path_len == 0) {
            n = put(msg, n, cap, bp->in_envelope ? " the message" : " in the top-level body");
        } else {
            n = put(msg, n, cap, bp->in_envelope ? " body part " : " in body part ");
            if (n + bp->path_len <= cap) {
                memcpy(msg + n, bp->path, bp->path_len);
                n += bp->path_len;
            }
            if (bp->path_cut != 0)
                n = put(msg, n, cap, "...");
        }
    }
    msg[n] = '\0';
    int rc = imk__lex_fail(lx, msg);
    if (lx->ctx->err_msg == msg)
        lx->ctx->err_msg = what;
    return rc;
}

/* Descends into part `num` of the current path: appends ".num". */
static void path_push(body_parser *bp, size_t num)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + num % 10);
        num /= 10;
    } while (num != 0);
    size_t need = n + (bp->path_len != 0);
    if (bp->path_cut != 0 || need > PATH_CAP - bp->path_len) {
        bp->path_cut++;
        return;
    }
    if (bp->path_len != 0)
        bp->path[bp->path_len++] = '.';
    while (n > 0)
        bp->path[bp->path_len++] = digits[--n];
}

/* Undoes the last path_push(). */
static void path_pop(body_parser *bp)
{
    if (bp->path_cut != 0) {
        bp->path_cut--;
        return;
    }
    while (bp->path_len > 0 && bp->path[bp->path_len - 1] != '.')
        bp->path_len--;
    if (bp->path_len > 0)
        bp->path_len--;
}

/* ------------------------------------------------------------------ */
/* Small helpers over the lexer                                        */
/* ------------------------------------------------------------------ */

/* 1 when quirk `bit` is allowed; using it is recorded. Call only once the
 * deviation is certain. */
static int quirk(body_parser *bp, unsigned bit)
{
    if ((bp->lx->ctx->limits->quirks & bit) == 0)
        return 0;
    bp->lx->quirks_seen |= bit;
    return 1;
}

static int quirk_allowed(const body_parser *bp, unsigned bit)
{
    return (bp->lx->ctx->limits->quirks & bit) != 0;
}

/*
 * Inlined forms of the lexer's peek and at_list_end, and a NIL test that
 * looks at one byte before asking the lexer: this parser asks "what comes
 * next" several times per token, and a call into lexer.c for each answer
 * was a third of the parse time (gprof, the deep structure of the tests).
 */
static inline int at_end(const imk__lexer *lx)
{
    int c = peek(lx);
    if (c == ')')
        return 1;
    return c == ' ' && imk__lex_at_list_end(lx);
}

static inline int accept_nil(imk__lexer *lx)
{
    int c = peek(lx);
    return (c == 'N' || c == 'n') && imk__lex_accept_word(lx, "NIL");
}

static int at_nil(const imk__lexer *lx)
{
    imk__lexer probe = *lx;
    return accept_nil(&probe);
}

static inline int at_string(const imk__lexer *lx)
{
    int c = peek(lx);
    return c == '"' || c == '{' || c == '~';
}

/* A copy of the lexer moved past the spaces at the current position, for
 * looking one token ahead. Never records anything. */
static imk__lexer after_spaces(const imk__lexer *lx)
{
    imk__lexer probe = *lx;
    while (peek(&probe) == ' ')
        probe.pos++;
    return probe;
}

static int is_word(imk_str s, const char *word)
{
    size_t n = strlen(word);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s.data[i];
        if (c >= 'a' && c <= 'z')
            c -= 32;
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* SP before the field `what` (so a missing field reads "expected SP before
 * body-fld-octets (number) ..."). */
static int sp_before(body_parser *bp, const char *what)
{
    imk__lexer *lx = bp->lx;
    if (peek(lx) != ' ')
        return fail_in(bp, "SP before ", what);
    /* One SP before a token, the usual case, needs no quirk handling. */
    if (lx->pos + 1 < lx->len && lx->buf[lx->pos + 1] != ' ') {
        lx->pos++;
        return 0;
    }
    return imk__lex_sp(lx);
}

/* string = quoted / literal (Q34's quote heuristic is the lexer's). */
static int field_string(body_parser *bp, imk_str *out, const char *what)
{
    if (!at_string(bp->lx))
        return fail_in(bp, NULL, what);
    return imk__lex_string(bp->lx, out);
}

/* nstring = string / nil */
static int field_nstring(body_parser *bp, imk_str *out, const char *what)
{
    if (accept_nil(bp->lx)) {
        out->data = NULL;
        out->len = 0;
        return 0;
    }
    return field_string(bp, out, what);
}

/* A string the grammar requires, where quirk Q27/Q30/Q31 lets a server
 * send NIL: then "" (never NULL). */
static int field_string_or_nil(body_parser *bp, imk_str *out, const char *what)
{
    if (at_nil(bp->lx) && quirk(bp, IMK_QUIRK_BODY_NIL)) {
        accept_nil(bp->lx);
        out->data = empty_str;
        out->len = 0;
        return 0;
    }
    return field_string(bp, out, what);
}

/*
 * body-fld-octets = number ; body-fld-lines = number64 (RFC 3501: number)
 * Q23 "-1" and Q25 "9.3736e+06" go through imk__lex_number_lenient under
 * their bits. A number must end at a delimiter: "9.3e+06" without
 * IMK_QUIRK_FLOAT_NUMBER is reported here, at the ".".
 */
static int field_number(body_parser *bp, uint64_t *out, const char *what)
{
    imk__lexer *lx = bp->lx;
    int c = peek(lx);
    if (!((c >= '0' && c <= '9') || (c == '-' && quirk_allowed(bp, IMK_QUIRK_NEGATIVE_NUMBER))))
        return fail_in(bp, NULL, what);
    int rc = imk__lex_number_lenient(lx, out);
    if (rc < 0)
        return rc;
    if (!imk__lex_at_delim(lx))
        return fail_in(bp, NULL, what);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parameters, disposition, language                                   */
/* ------------------------------------------------------------------ */

/* Q32: a string where a list was expected is a leaked Content-Description;
 * keep it if the node has no description yet. */
static void keep_leaked(imk_body *node, imk_str s)
{
    if (node != NULL && node->description.data == NULL)
        node->description = s;
}

/*
 * body-fld-param  = "(" string SP string *(SP string SP string) ")" / nil
 *                                                    (RFC 9051 section 9)
 * Q31: NIL for a value (or name) -> "". "()" -> no parameters.
 * Q32 (when `leak` is set, i.e. in an extension slot): a string instead of
 * the list.
 */
static int parse_params(body_parser *bp, imk_param_list *out, imk_body *leak, int leak_ok,
                        const char *what)
{
    imk__lexer *lx = bp->lx;
    int rc;
    out->count = 0;
    out->items = NULL;
    if (accept_nil(lx))
        return 0;
    if (leak_ok && at_string(lx) && quirk(bp, IMK_QUIRK_BODY_NIL)) {
        imk_str s;
        if ((rc = imk__lex_string(lx, &s)) < 0)
            return rc;
        keep_leaked(leak, s);
        return 0;
    }
    if (peek(lx) != '(')
        return fail_in(bp, NULL, what);
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    if (peek(lx) == ')' && quirk(bp, IMK_QUIRK_BODY_NIL))
        return imk__lex_list_end(lx);
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_param));
    for (;;) {
        imk_param *p = imk__vec_push(lx, &v);
        if (p == NULL)
            return lx->ctx->err_code;
        if ((rc = field_string_or_nil(bp, &p->name, "parameter name (string)")) < 0)
            return rc;
        if ((rc = sp_before(bp, "parameter value (string)")) < 0)
            return rc;
        if ((rc = field_string_or_nil(bp, &p->value, "parameter value (string)")) < 0)
            return rc;
        if (at_end(lx))
            break;
        if ((rc = sp_before(bp, "parameter name (string)")) < 0)
            return rc;
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/*
 * body-fld-dsp = "(" string SP body-fld-param ")" / nil   (RFC 9051 section 9)
 * Q32: a bare string here is a leaked Content-Description.
 */
static int parse_disposition(body_parser *bp, imk_body *node)
{
    imk__lexer *lx = bp->lx;
    int rc;
    static const char what[] = "body-fld-dsp (\"(\" or NIL)";
    if (accept_nil(lx))
        return 0;
    if (at_string(lx) && quirk(bp, IMK_QUIRK_BODY_NIL)) {
        imk_str s;
        if ((rc = imk__lex_string(lx, &s)) < 0)
            return rc;
        keep_leaked(node, s);
        return 0;
    }
    if (peek(lx) != '(')
        return fail_in(bp, NULL, what);
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    if ((rc = field_string(bp, &node->disposition, "disposition type (string)")) < 0)
        return rc;
    if ((rc = sp_before(bp, "disposition parameters")) < 0)
        return rc;
    if ((rc = parse_params(bp, &node->disposition_params, NULL, 1,
                           "disposition parameters (\"(\" or NIL)")) < 0)
        return rc;
    return imk__lex_list_end(lx);
}

/*
 * body-fld-lang = nstring / "(" string *(SP string) ")"  (RFC 9051 section 9)
 * NIL is the empty list. Q32: NIL items inside the list are skipped (and
 * so "()" is accepted too under the same bit).
 */
static int parse_languages(body_parser *bp, imk_strlist *out)
{
    imk__lexer *lx = bp->lx;
    int rc;
    static const char what[] = "body-fld-lang (string, list or NIL)";
    out->count = 0;
    out->items = NULL;
    if (accept_nil(lx))
        return 0;
    if (at_string(lx)) {
        imk_str *one = imk__lex_alloc(lx, sizeof(*one));
        if (one == NULL)
            return lx->ctx->err_code;
        if ((rc = imk__lex_string(lx, one)) < 0)
            return rc;
        out->count = 1;
        out->items = one;
        return 0;
    }
    if (peek(lx) != '(')
        return fail_in(bp, NULL, what);
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_str));
    int first = 1;
    for (;;) {
        if (first && peek(lx) == ')' && quirk(bp, IMK_QUIRK_BODY_NIL))
            break;
        if (!first) {
            if (at_end(lx))
                break;
            if ((rc = sp_before(bp, "language (string)")) < 0)
                return rc;
        }
        first = 0;
        if (at_nil(lx) && quirk(bp, IMK_QUIRK_BODY_NIL)) {
            accept_nil(lx);
            continue;
        }
        imk_str *s = imk__vec_push(lx, &v);
        if (s == NULL)
            return lx->ctx->err_code;
        if ((rc = field_string(bp, s, "language (string)")) < 0)
            return rc;
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/*
 * The tail shared by both kinds of extension data:
 *     [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
 *     body-extension = nstring / number / number64 /
 *                      "(" body-extension *(SP body-extension) ")"
 *                                                    (RFC 9051 section 9)
 * Unknown extensions are kept as generic values.
 */
static int parse_ext_tail(body_parser *bp, imk_body *node)
{
    imk__lexer *lx = bp->lx;
    int rc;
    if (at_end(lx))
        return 0;
    if ((rc = sp_before(bp, "body-fld-dsp")) < 0 || (rc = parse_disposition(bp, node)) < 0)
        return rc;
    if (at_end(lx))
        return 0;
    if ((rc = sp_before(bp, "body-fld-lang")) < 0 ||
        (rc = parse_languages(bp, &node->languages)) < 0)
        return rc;
    if (at_end(lx))
        return 0;
    if ((rc = sp_before(bp, "body-fld-loc")) < 0 ||
        (rc = field_nstring(bp, &node->location, "body-fld-loc (string or NIL)")) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_value));
    while (!at_end(lx)) {
        if ((rc = sp_before(bp, "body-extension")) < 0)
            return rc;
        imk_value *value;
        if ((rc = imk__lex_value(lx, &value)) < 0)
            return rc;
        imk_value *slot = imk__vec_push(lx, &v);
        if (slot == NULL)
            return lx->ctx->err_code;
        *slot = *value;
    }
    node->extension_count = v.count;
    node->extensions = v.items;
    return 0;
}

/* BODY (non-extensible): extension data MUST NOT be sent; when it is, skip
 * it as generic values instead of failing the whole FETCH. */
static int skip_ext(body_parser *bp)
{
    imk__lexer *lx = bp->lx;
    int rc;
    while (!at_end(lx)) {
        if ((rc = sp_before(bp, "\")\" or extension data")) < 0)
            return rc;
        imk_value *ignored;
        if ((rc = imk__lex_value(lx, &ignored)) < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* ENVELOPE                                                            */
/* ------------------------------------------------------------------ */

/*
 * address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
 * addr-* = nstring                                   (RFC 9051 section 9)
 */
static int parse_address(body_parser *bp, imk_address *a)
{
    imk__lexer *lx = bp->lx;
    int rc;
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    if ((rc = field_nstring(bp, &a->name, "addr-name (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "addr-adl")) < 0 ||
        (rc = field_nstring(bp, &a->adl, "addr-adl (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "addr-mailbox")) < 0 ||
        (rc = field_nstring(bp, &a->mailbox, "addr-mailbox (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "addr-host")) < 0 ||
        (rc = field_nstring(bp, &a->host, "addr-host (string or NIL)")) < 0)
        return rc;
    if (!at_end(lx))
        return fail_in(bp, NULL, "\")\" after addr-host");
    return imk__lex_list_end(lx);
}

/*
 * env-from = "(" 1*address ")" / nil    (same for env-sender, env-reply-to,
 * env-to, env-cc, env-bcc; RFC 9051 section 9)
 * Q35: NIL items are skipped, spaces between addresses and "()" accepted.
 */
static int parse_address_list(body_parser *bp, imk_address_list *out, const char *what)
{
    imk__lexer *lx = bp->lx;
    int rc;
    out->count = 0;
    out->items = NULL;
    if (accept_nil(lx))
        return 0;
    if (peek(lx) != '(')
        return fail_in(bp, NULL, what);
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    imk__vec v;
    imk__vec_init(&v, sizeof(imk_address));
    for (;;) {
        int c = peek(lx);
        if (c == '(') {
            imk_address *a = imk__vec_push(lx, &v);
            if (a == NULL)
                return lx->ctx->err_code;
            if ((rc = parse_address(bp, a)) < 0)
                return rc;
        } else if (at_end(lx)) {
            break;
        } else if (c == ' ' && quirk(bp, IMK_QUIRK_ENVELOPE)) {
            while (peek(lx) == ' ')
                lx->pos++;
        } else if (at_nil(lx) && quirk(bp, IMK_QUIRK_ENVELOPE)) {
            accept_nil(lx);
        } else {
            return fail_in(bp, NULL, "address (\"(\") or \")\"");
        }
    }
    if (v.count == 0 && !quirk(bp, IMK_QUIRK_ENVELOPE))
        return fail_in(bp, NULL, "at least one address");
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    out->count = v.count;
    out->items = v.items;
    return 0;
}

/*
 * envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
 *            env-reply-to SP env-to SP env-cc SP env-bcc SP
 *            env-in-reply-to SP env-message-id ")"
 * env-date, env-subject, env-in-reply-to, env-message-id = nstring
 *                                                    (RFC 9051 section 9)
 * Q35: the whole envelope wrapped in one more "( )" (Domino); the list
 * ending after env-bcc or after env-in-reply-to (the rest NIL).
 */
static int parse_envelope_node(body_parser *bp, imk_envelope *env, int may_unwrap)
{
    imk__lexer *lx = bp->lx;
    int rc;
    if (peek(lx) != '(')
        return fail_in(bp, NULL, "envelope (\"(\")");
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    if (may_unwrap && peek(lx) == '(' && quirk(bp, IMK_QUIRK_ENVELOPE)) {
        if ((rc = parse_envelope_node(bp, env, 0)) < 0)
            return rc;
        if (!at_end(lx))
            return fail_in(bp, NULL, "\")\" after a wrapped envelope");
        return imk__lex_list_end(lx);
    }
    if ((rc = field_nstring(bp, &env->date, "env-date (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-subject")) < 0 ||
        (rc = field_nstring(bp, &env->subject, "env-subject (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-from")) < 0 ||
        (rc = parse_address_list(bp, &env->from, "env-from (address list or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-sender")) < 0 ||
        (rc = parse_address_list(bp, &env->sender, "env-sender (address list or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-reply-to")) < 0 ||
        (rc = parse_address_list(bp, &env->reply_to, "env-reply-to (address list or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-to")) < 0 ||
        (rc = parse_address_list(bp, &env->to, "env-to (address list or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-cc")) < 0 ||
        (rc = parse_address_list(bp, &env->cc, "env-cc (address list or NIL)")) < 0 ||
        (rc = sp_before(bp, "env-bcc")) < 0 ||
        (rc = parse_address_list(bp, &env->bcc, "env-bcc (address list or NIL)")) < 0)
        return rc;
    if (at_end(lx) && quirk(bp, IMK_QUIRK_ENVELOPE))
        return imk__lex_list_end(lx);
    if ((rc = sp_before(bp, "env-in-reply-to")) < 0 ||
        (rc = field_nstring(bp, &env->in_reply_to, "env-in-reply-to (string or NIL)")) < 0)
        return rc;
    if (at_end(lx) && quirk(bp, IMK_QUIRK_ENVELOPE))
        return imk__lex_list_end(lx);
    if ((rc = sp_before(bp, "env-message-id")) < 0 ||
        (rc = field_nstring(bp, &env->message_id, "env-message-id (string or NIL)")) < 0)
        return rc;
    if (!at_end(lx))
        return fail_in(bp, NULL, "\")\" after env-message-id");
    return imk__lex_list_end(lx);
}

/* ------------------------------------------------------------------ */
/* BODY / BODYSTRUCTURE                                                */
/* ------------------------------------------------------------------ */

static int parse_body_node(body_parser *bp, imk_body *node, int numbered);

/*
 * The part of a multipart after its children (or after Q28's NIL, or from
 * Q29's subtype on), ending with the node's ")":
 *     SP media-subtype [SP body-ext-mpart] ")"
 *     body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang
 *                      [SP body-fld-loc *(SP body-extension)]]]
 *                                                    (RFC 9051 section 9)
 * `have_subtype`: Q29 already read it.
 */
static int parse_mpart_rest(body_parser *bp, imk_body *node, int have_subtype)
{
    imk__lexer *lx = bp->lx;
    int rc;
    node->multipart = 1;
    node->type.data = multipart_str;
    node->type.len = sizeof(multipart_str) - 1;
    if (!have_subtype) {
        if ((rc = sp_before(bp, "media-subtype")) < 0 ||
            (rc = field_string(bp, &node->subtype, "media-subtype (string)")) < 0)
            return rc;
    }
    if (!at_end(lx)) {
        if (!bp->extensible) {
            if ((rc = skip_ext(bp)) < 0)
                return rc;
        } else {
            node->has_ext = 1;
            if ((rc = sp_before(bp, "body-fld-param")) < 0 ||
                (rc = parse_params(bp, &node->params, node, 1, param_what)) < 0 ||
                (rc = parse_ext_tail(bp, node)) < 0)
                return rc;
        }
    }
    return imk__lex_list_end(lx);
}

/* body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
 *                                                    (RFC 9051 section 9) */
static int parse_mpart(body_parser *bp, imk_body *node)
{
    imk__lexer *lx = bp->lx;
    imk__vec children;
    imk__vec_init(&children, sizeof(imk_body));
    while (peek(lx) == '(') {
        imk_body *child = imk__vec_push(lx, &children);
        if (child == NULL)
            return lx->ctx->err_code;
        path_push(bp, children.count);
        int rc = parse_body_node(bp, child, 1);
        if (rc < 0)
            return rc;
        path_pop(bp);
        /* `(...) (...)`: a space between children is not in the grammar. */
        if (peek(lx) == ' ') {
            imk__lexer next = after_spaces(lx);
            if (peek(&next) == '(' && quirk(bp, IMK_QUIRK_EXTRA_SPACES))
                lx->pos = next.pos;
        }
    }
    node->part_count = children.count;
    node->parts = children.items;
    return parse_mpart_rest(bp, node, 0);
}

/*
 * A single part, from the SP after its type (read by the caller; NIL under
 * Q27 is given as "") to its ")":
 *     body-type-1part = (body-type-basic / body-type-msg / body-type-text)
 *                       [SP body-ext-1part]
 *     body-type-basic = media-basic SP body-fields
 *     body-type-msg   = media-message SP body-fields SP envelope
 *                       SP body SP body-fld-lines
 *     body-type-text  = media-text SP body-fields SP body-fld-lines
 *     body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP
 *                       body-fld-enc SP body-fld-octets
 *     body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
 *                       [SP body-fld-loc *(SP body-extension)]]]
 *     media-message   = DQUOTE "MESSAGE" DQUOTE SP
 *                       DQUOTE ("RFC822" / "GLOBAL") DQUOTE
 *                                                    (RFC 9051 section 9;
 * RFC 3501 has only RFC822 there and body-fld-lines = number; message/global
 * is RFC 6855's.)
 */
static int parse_1part(body_parser *bp, imk_body *node, int numbered, imk_str type)
{
    imk__lexer *lx = bp->lx;
    int rc;
    if (!numbered)
        path_push(bp, 1);
    node->type = type;
    if ((rc = sp_before(bp, "media-subtype")) < 0 ||
        (rc = field_string_or_nil(bp, &node->subtype, "media-subtype (string)")) < 0)
        return rc;

    if ((rc = sp_before(bp, "body-fld-param")) < 0 ||
        (rc = parse_params(bp, &node->params, NULL, 0, param_what)) < 0 ||
        (rc = sp_before(bp, "body-fld-id")) < 0 ||
        (rc = field_nstring(bp, &node->id, "body-fld-id (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "body-fld-desc")) < 0 ||
        (rc = field_nstring(bp, &node->description, "body-fld-desc (string or NIL)")) < 0 ||
        (rc = sp_before(bp, "body-fld-enc")) < 0 ||
        (rc = field_string_or_nil(bp, &node->encoding, "body-fld-enc (string)")) < 0 ||
        (rc = sp_before(bp, "body-fld-octets")) < 0 ||
        (rc = field_number(bp, &node->size, "body-fld-octets (number)")) < 0)
        return rc;

    if (is_word(type, "MESSAGE") &&
        (is_word(node->subtype, "RFC822") || is_word(node->subtype, "GLOBAL"))) {
        imk__lexer next = after_spaces(lx);
        if (peek(lx) == ' ' && peek(&next) == '(') {
            imk_envelope *env = imk__lex_alloc(lx, sizeof(*env));
            imk_body *inner = imk__lex_alloc(lx, sizeof(*inner));
            if (env == NULL || inner == NULL)
                return lx->ctx->err_code;
            if ((rc = imk__lex_sp(lx)) < 0)
                return rc;
            bp->in_envelope = 1;
            rc = parse_envelope_node(bp, env, 1);
            bp->in_envelope = 0;
            if (rc < 0)
                return rc;
            if ((rc = sp_before(bp, "body")) < 0 || (rc = parse_body_node(bp, inner, 0)) < 0 ||
                (rc = sp_before(bp, "body-fld-lines")) < 0 ||
                (rc = field_number(bp, &node->lines, "body-fld-lines (number)")) < 0)
                return rc;
            node->envelope = env;
            node->parts = inner;
            node->part_count = 1;
            node->has_lines = 1;
        } else if (!quirk(bp, IMK_QUIRK_BODY_NIL)) {
            /* Q33: Dovecot's message/global without envelope, body, lines */
            return fail_in(bp, "SP and ", "envelope (\"(\")");
        }
    } else if (is_word(type, "TEXT")) {
        if ((rc = sp_before(bp, "body-fld-lines")) < 0 ||
            (rc = field_number(bp, &node->lines, "body-fld-lines (number)")) < 0)
            return rc;
        node->has_lines = 1;
    }

    if (!at_end(lx)) {
        if (!bp->extensible) {
            if ((rc = skip_ext(bp)) < 0)
                return rc;
        } else {
            node->has_ext = 1;
            if ((rc = sp_before(bp, "body-fld-md5")) < 0 ||
                (rc = field_nstring(bp, &node->md5, "body-fld-md5 (string or NIL)")) < 0 ||
                (rc = parse_ext_tail(bp, node)) < 0)
                return rc;
        }
    }
    if ((rc = imk__lex_list_end(lx)) < 0)
        return rc;
    if (!numbered)
        path_pop(bp);
    return 0;
}

/*
 * `("X" NIL ...`: Q27 (single part, NIL subtype) or Q29 (childless
 * multipart "X", NIL parameters). The single-part reading is tried on
 * copies of the lexer and the context; on success the copy becomes the
 * lexer. On a resource failure (IMK_ENOMEM, IMK_ELIMIT) that failure is
 * final - the other reading must not win just because it needed less
 * memory. Returns 1 (single part taken), 0 (not a single part), or < 0.
 */
static int try_1part(body_parser *bp, imk_body *node, int numbered, imk_str type)
{
    imk__parse_ctx trial_ctx = *bp->lx->ctx;
    imk__lexer trial_lx = *bp->lx;
    body_parser trial = *bp;
    trial_lx.ctx = &trial_ctx;
    trial.lx = &trial_lx;
    int rc = parse_1part(&trial, node, numbered, type);
    if (rc == 0) {
        trial_lx.ctx = bp->lx->ctx;
        *bp->lx = trial_lx;
        return 1;
    }
    if (rc == IMK_ENOMEM || rc == IMK_ELIMIT) {
        imk__parse_ctx *ctx = bp->lx->ctx;
        ctx->err_code = trial_ctx.err_code;
        ctx->err_pos = trial_ctx.err_pos;
        ctx->err_msg = trial_ctx.err_msg;
        return rc;
    }
    memset(node, 0, sizeof(*node));
    return 0;
}

/* body = "(" (body-type-1part / body-type-mpart) ")"  (RFC 9051 section 9)
 * `numbered`: the node's own part number is already in the path (it is a
 * multipart child). */
static int parse_body_node(body_parser *bp, imk_body *node, int numbered)
{
    imk__lexer *lx = bp->lx;
    int rc;
    if (peek(lx) != '(')
        return fail_in(bp, NULL, "body (\"(\")");
    if ((rc = imk__lex_list_begin(lx)) < 0)
        return rc;
    if (peek(lx) == '(')
        return parse_mpart(bp, node);

    imk_str type;
    if (at_nil(lx)) {
        /* Q27 NIL type (field_string_or_nil checks the bit and gives ""). */
        if ((rc = field_string_or_nil(bp, &type, "body type (string) or a nested body")) < 0)
            return rc;
        imk__lexer next = after_spaces(lx);
        if (peek(lx) == ' ' && at_string(&next)) {
            /* NIL then a string: a single part with a NIL type if it reads
             * as one, else Q28, a multipart with NIL in place of its
             * children - (NIL "alternative" ("boundary" "x") NIL NIL) is
             * too short for body-fields, and no server sends the body
             * extensions that a multipart would need to read as a part. */
            rc = try_1part(bp, node, numbered, type);
            if (rc != 0)
                return rc < 0 ? rc : 0;
            return parse_mpart_rest(bp, node, 0);
        }
        return parse_1part(bp, node, numbered, type);
    }

    if ((rc = field_string(bp, &type, "body type (string) or a nested body")) < 0)
        return rc;
    /* What follows the first string tells a single part from Q29's
     * childless multipart, whose first string is the subtype. */
    imk__lexer next = after_spaces(lx);
    int follows = peek(lx) == ' ' ? peek(&next) : peek(lx);
    if (quirk_allowed(bp, IMK_QUIRK_BODY_NIL)) {
        int q29 = follows == ')' || follows == '(';
        if (!q29 && peek(lx) == ' ' && at_nil(&next)) {
            rc = try_1part(bp, node, numbered, type);
            if (rc != 0)
                return rc < 0 ? rc : 0;
            q29 = 1;
        }
        if (q29) {
            quirk(bp, IMK_QUIRK_BODY_NIL);
            node->subtype = type;
            return parse_mpart_rest(bp, node, 1);
        }
    }
    return parse_1part(bp, node, numbered, type);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                        */
/* ------------------------------------------------------------------ */

static void parser_init(body_parser *bp, imk__lexer *lx, int extensible)
{
    bp->lx = lx;
    bp->extensible = extensible;
    bp->envelope_only = 0;
    bp->in_envelope = 0;
    bp->path_cut = 0;
    bp->path_len = 0;
    bp->path[0] = '\0';
}

int imk__parse_envelope(imk__lexer *lx, const imk_envelope **out)
{
    body_parser bp;
    parser_init(&bp, lx, 1);
    bp.envelope_only = 1;
    bp.in_envelope = 1;
    imk_envelope *env = imk__lex_alloc(lx, sizeof(*env));
    if (env == NULL)
        return lx->ctx->err_code;
    int rc = parse_envelope_node(&bp, env, 1);
    if (rc < 0)
        return rc;
    *out = env;
    return 0;
}

int imk__parse_body(imk__lexer *lx, int extensible, const imk_body **out)
{
    body_parser bp;
    parser_init(&bp, lx, extensible != 0);
    imk_body *node = imk__lex_alloc(lx, sizeof(*node));
    if (node == NULL)
        return lx->ctx->err_code;
    int rc = parse_body_node(&bp, node, 0);
    if (rc < 0)
        return rc;
    *out = node;
    return 0;
}
