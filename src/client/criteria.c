/* SPDX-License-Identifier: MIT */
/*
 * Criteria: programmer-written IMAP text with %s placeholders for user data
 * (client.h, "Criteria"), and the two builders whose arguments are the same
 * kind of text: NOTIFY (with mailbox names as args) and FETCH (its items,
 * without args).
 *
 *     "OR (SUBJECT %s) (FROM %s) SINCE 1-Jan-2026"   args: {"report", "ann"}
 *  -> OR (SUBJECT "report") (FROM "ann") SINCE 1-Jan-2026
 *
 * The text is the programmer's: search keys, numbers, sequence sets, dates,
 * flags, parentheses and (for NOTIFY's fetch attributes) bracketed sections.
 * The args are the user's: each becomes one string argument, quoted or a
 * literal as the encoder decides (imk_command_string), or for NOTIFY a
 * mailbox name (imk_command_mailbox, so it is encoded as every other
 * mailbox name is). The invariant (DESIGN.md section 8): no byte of the
 * text can end a line or open a literal, and no arg can be read as syntax.
 *
 * So the text is cut into pieces and re-emitted through the typed
 * appenders, never copied wholesale:
 *
 *   piece        what it may hold                       emitted with
 *   "(" / ")"    balanced over the whole text           list_begin / list_end
 *   word         printable US-ASCII except ( ) { } "    imk_command_token
 *                and %; a [...] part may hold SP and
 *                balanced parentheses
 *                ("BODY.PEEK[HEADER.FIELDS (FROM)]")
 *   %s           a whole argument: SP, "(", ")" or the  the next arg
 *                text's ends on both sides
 *
 * Spacing is the encoder's (one SP between arguments, none inside
 * parentheses), so "( UNSEEN  )" and "(UNSEEN)" send the same bytes.
 * Every check runs before anything is emitted: a text that fails leaves the
 * command untouched, and the caller can learn whether CHARSET is needed
 * with a dry run (cmd NULL).
 */
#define _POSIX_C_SOURCE 200809L

#include "client/client_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The longest word of criteria text; longer ones are refused (a real
 * search key or fetch attribute is a few dozen bytes). */
#define WORD_MAX 1024

typedef enum arg_kind {
    ARG_STRING, /* SEARCH, SORT, THREAD: string (RFC 9051 search-key) */
    ARG_MAILBOX /* NOTIFY: mailbox names (RFC 5465 one-or-more-mailbox) */
} arg_kind;

typedef enum piece_type { P_END, P_OPEN, P_CLOSE, P_WORD, P_ARG } piece_type;

typedef struct scanner {
    const char *text;
    size_t pos;
    const char *what; /* "criteria", "NOTIFY spec", "fetch items": for messages */
    int takes_args;   /* 0 for fetch items: the hints then do not mention %s */
    char *err;
    size_t errlen;
    /* the piece just read */
    piece_type type;
    size_t start, len;
} scanner;

static int fail(scanner *sc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail(scanner *sc, const char *fmt, ...)
{
    if (sc->err != NULL && sc->errlen > 0) {
        int n = snprintf(sc->err, sc->errlen, "%s: ", sc->what);
        if (n > 0 && (size_t)n < sc->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(sc->err + n, sc->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return IMK_EINVAL;
}

/* Where a placeholder may touch: the text's ends, SP and parentheses. */
static int is_boundary(char c)
{
    return c == '\0' || c == ' ' || c == '(' || c == ')';
}

/* 0 when the byte at `at` may be part of a word, else IMK_EINVAL with the
 * reason. The text is the programmer's, so showing the byte is safe. */
static int bad_byte(scanner *sc, size_t at)
{
    unsigned char c = (unsigned char)sc->text[at];
    int args = sc->takes_args;
    switch (c) {
    case '\r':
    case '\n':
        return fail(sc, "%s at offset %zu: %s", c == '\r' ? "CR" : "LF", at,
                    args ? "user text goes through %s args, never into the text itself"
                         : "the items are protocol syntax on one line");
    case '"':
        return fail(sc, "'\"' at offset %zu: %s", at,
                    args ? "pass strings as %s args, which are quoted or sent as literals as "
                           "needed"
                         : "quoted strings are not accepted here");
    case '{':
    case '}':
        return fail(sc, "'%c' at offset %zu could announce a literal%s", (char)c, at,
                    args ? ": pass data as %s args" : "");
    case '%':
        if (sc->text[at + 1] == 's')
            return fail(sc,
                        "%%s glued to other text at offset %zu: a placeholder must be a "
                        "whole argument, as in SUBJECT %%s",
                        at);
        return fail(sc, "'%%' at offset %zu is not %%s, the only placeholder", at);
    default:
        break;
    }
    if (c < 0x20 || c >= 0x7f)
        return fail(sc, "byte 0x%02X at offset %zu: the text must be printable US-ASCII%s",
                    (unsigned)c, at, args ? "; pass other text as %s args" : "");
    return 0;
}

/*
 * Read the next piece. A word runs to SP, "(", ")" or the end; inside a
 * "[" ... "]" part it also takes SP and balanced parentheses (fetch
 * attributes such as BODY[HEADER.FIELDS (SUBJECT FROM)], RFC 9051 section
 * 9 section-spec). Returns 0 or IMK_EINVAL with the message written.
 */
static int next_piece(scanner *sc)
{
    const char *t = sc->text;
    while (t[sc->pos] == ' ')
        sc->pos++;
    sc->start = sc->pos;
    sc->len = 0;
    char c = t[sc->pos];
    if (c == '\0') {
        sc->type = P_END;
        return 0;
    }
    if (c == '(' || c == ')') {
        sc->type = c == '(' ? P_OPEN : P_CLOSE;
        sc->len = 1;
        sc->pos++;
        return 0;
    }
    if (c == '%' && t[sc->pos + 1] == 's') {
        if (!is_boundary(t[sc->pos + 2]))
            return fail(sc,
                        "%%s glued to other text at offset %zu: a placeholder must be a "
                        "whole argument, as in SUBJECT %%s",
                        sc->pos);
        sc->type = P_ARG;
        sc->len = 2;
        sc->pos += 2;
        return 0;
    }
    size_t i = sc->pos;
    while (t[i] != '\0' && t[i] != ' ' && t[i] != '(' && t[i] != ')') {
        if (t[i] == ']')
            return fail(sc, "']' without '[' at offset %zu", i);
        if (t[i] == '[') {
            size_t open = i, depth = 0;
            for (i++; t[i] != ']'; i++) {
                if (t[i] == '\0')
                    return fail(sc, "'[' at offset %zu is never closed", open);
                if (t[i] == '[')
                    return fail(sc, "'[' nested inside [...] at offset %zu", i);
                if (t[i] == '%' && t[i + 1] == 's')
                    return fail(sc,
                                "%%s inside [...] at offset %zu: a placeholder must be a "
                                "whole argument",
                                i);
                if (t[i] == '(')
                    depth++;
                else if (t[i] == ')' && depth-- == 0)
                    return fail(sc, "unmatched ')' at offset %zu inside [...]", i);
                else if (t[i] != ' ' && bad_byte(sc, i) < 0)
                    return IMK_EINVAL;
            }
            if (depth != 0)
                return fail(sc, "'(' left unclosed inside the [...] at offset %zu", open);
            i++;
            continue;
        }
        if (bad_byte(sc, i) < 0)
            return IMK_EINVAL;
        i++;
    }
    sc->type = P_WORD;
    sc->len = i - sc->pos;
    sc->pos = i;
    if (sc->len >= WORD_MAX)
        return fail(sc, "word of %zu bytes at offset %zu: at most %d are allowed", sc->len,
                    sc->start, WORD_MAX - 1);
    return 0;
}

/* The whole text is valid and has exactly n_args placeholders. */
static int check_text(scanner *sc, size_t n_args)
{
    size_t depth = 0, placeholders = 0, pieces = 0;
    sc->pos = 0;
    for (;;) {
        if (next_piece(sc) < 0)
            return IMK_EINVAL;
        if (sc->type == P_END)
            break;
        pieces++;
        if (sc->type == P_OPEN) {
            depth++;
        } else if (sc->type == P_CLOSE) {
            if (depth == 0)
                return fail(sc, "unmatched ')' at offset %zu", sc->start);
            depth--;
        } else if (sc->type == P_ARG) {
            placeholders++;
        }
    }
    if (pieces == 0)
        return fail(sc, "empty: %s",
                    sc->takes_args ? "write at least one key (ALL matches every message)"
                                   : "name at least one item (for example UID FLAGS)");
    if (depth != 0)
        return fail(sc, "%zu '(' left unclosed", depth);
    if (placeholders != n_args)
        return fail(sc, "%zu %%s placeholder(s) but %zu arg(s) given", placeholders, n_args);
    return 0;
}

static int emit_failed(scanner *sc, imk_command *cmd, const char *piece)
{
    return fail(sc, "could not encode %s: %s", piece, imk_command_error(cmd));
}

/* Emit the checked text; args already checked for NULL. */
static int emit_text(scanner *sc, imk_command *cmd, const char *const *args, arg_kind kind)
{
    size_t arg = 0;
    char word[WORD_MAX];
    int rc = 0;
    sc->pos = 0;
    for (;;) {
        if (next_piece(sc) < 0)
            return IMK_EINVAL;
        switch (sc->type) {
        case P_END:
            return 0;
        case P_OPEN:
            rc = imk_command_list_begin(cmd);
            break;
        case P_CLOSE:
            rc = imk_command_list_end(cmd);
            break;
        case P_WORD:
            memcpy(word, sc->text + sc->start, sc->len);
            word[sc->len] = '\0';
            rc = imk_command_token(cmd, word);
            break;
        case P_ARG: {
            const char *a = args[arg++];
            rc = kind == ARG_MAILBOX ? imk_command_mailbox(cmd, a, strlen(a))
                                     : imk_command_string(cmd, a, strlen(a));
            if (rc < 0) {
                char which[32];
                snprintf(which, sizeof(which), "arg %zu", arg - 1);
                emit_failed(sc, cmd, which);
                return rc;
            }
            break;
        }
        }
        if (rc < 0) {
            emit_failed(sc, cmd, "text");
            return rc;
        }
    }
}

static int criteria_common(imk_command *cmd, const char *what, const char *text,
                           const char *const *args, size_t n_args, arg_kind kind, int *non_ascii,
                           char *err, size_t errlen)
{
    scanner sc = {text, 0, what, 1, err, errlen, P_END, 0, 0};
    if (non_ascii != NULL)
        *non_ascii = 0;
    if (text == NULL)
        return fail(&sc, "NULL: write at least one key (ALL matches every message)");
    if (n_args > 0 && args == NULL)
        return fail(&sc, "%zu arg(s) announced but args is NULL", n_args);
    for (size_t i = 0; i < n_args; i++) {
        if (args[i] == NULL)
            return fail(&sc, "arg %zu is NULL: pass \"\" for an empty string", i);
        for (const unsigned char *p = (const unsigned char *)args[i]; *p != '\0'; p++)
            if (*p >= 0x80 && non_ascii != NULL)
                *non_ascii = 1;
    }
    int rc = check_text(&sc, n_args);
    if (rc < 0 || cmd == NULL)
        return rc;
    return emit_text(&sc, cmd, args, kind);
}

int imk__criteria(imk_command *cmd, const char *criteria, const char *const *args, size_t n_args,
                  int utf8_enabled, int *needs_charset, char *err, size_t errlen)
{
    int non_ascii = 0;
    int rc = criteria_common(cmd, "criteria", criteria, args, n_args, ARG_STRING, &non_ascii, err,
                             errlen);
    /* RFC 6855 section 3: once UTF8=ACCEPT is enabled, strings are UTF-8
     * and SEARCH must not carry a CHARSET. */
    if (needs_charset != NULL)
        *needs_charset = rc == 0 && non_ascii && !utf8_enabled;
    return rc;
}

/*
 * RFC 5465 section 8:
 *   notify          = "NOTIFY" SP (notify-set / notify-none)
 *   notify-none     = "NONE"
 *   notify-set      = "SET" [status-indicator] SP event-groups
 *   filter-mailboxes = "selected" / "selected-delayed" / "inboxes" /
 *                     "personal" / "subscribed" /
 *                     ("subtree" SP one-or-more-mailbox) /
 *                     ("mailboxes" SP one-or-more-mailbox)
 * The only user data NOTIFY carries is mailbox names, so the args are
 * encoded as mailbox names (modified UTF-7 unless UTF8=ACCEPT is enabled).
 */
int imk__build_notify(imk_session *s, imk_op *op, const char *spec, const char *const *args,
                      size_t n_args, char *err, size_t errlen)
{
    imk_command *cmd = imk_op_args(op);
    if (!imk_session_has_capability(s, "NOTIFY")) {
        snprintf(err, errlen,
                 imk_session_capabilities_known(s)
                     ? "NOTIFY is not offered by the server: poll with NOOP, STATUS or IDLE "
                       "instead"
                     : "NOTIFY cannot be used yet: the server's capabilities are not known "
                       "(send CAPABILITY first)");
        return IMK_ENOTSUP;
    }
    if (spec == NULL) {
        if (n_args > 0) {
            snprintf(err, errlen, "NOTIFY NONE (spec NULL) takes no args, but %zu arg(s) given",
                     n_args);
            return IMK_EINVAL;
        }
        int rc = imk_command_atom(cmd, "NONE");
        if (rc < 0)
            snprintf(err, errlen, "NOTIFY: %s", imk_command_error(cmd));
        return rc;
    }
    return criteria_common(cmd, "NOTIFY spec", spec, args, n_args, ARG_MAILBOX, NULL, err, errlen);
}

/*
 * RFC 9051 section 9, RFC 4466 section 2.4:
 *   fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
 *           fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
 * The items follow the rules of criteria without args (client.h). Several
 * items not in parentheses ("UID FLAGS") are put in one list; modifiers go
 * after a parenthesised list ("(FLAGS) (CHANGEDSINCE 12345)").
 */
int imk__build_fetch(imk_session *s, imk_op *op, const char *set, const char *items, char *err,
                     size_t errlen)
{
    (void)s;
    imk_command *cmd = imk_op_args(op);
    const char *verb = imk_command_kind_verb(imk_op_kind(op));
    if (set == NULL) {
        snprintf(err, errlen, "%s: the message set is NULL", verb);
        return IMK_EINVAL;
    }
    int rc = imk_op_set(op, set);
    if (rc < 0) {
        snprintf(err, errlen, "%s: message set: %s", verb, imk_command_error(cmd));
        return rc;
    }
    scanner sc = {items, 0, "fetch items", 0, err, errlen, P_END, 0, 0};
    if (items == NULL)
        rc = fail(&sc, "NULL (for example \"(UID FLAGS BODY.PEEK[])\")");
    else
        rc = check_text(&sc, 0);
    if (rc < 0) {
        char msg[IMK__ERRBUF];
        snprintf(msg, sizeof(msg), "%s", err);
        snprintf(err, errlen, "%s: %s", verb, msg);
        return rc;
    }
    size_t pieces = 0;
    int first_open = 0;
    for (sc.pos = 0; next_piece(&sc) == 0 && sc.type != P_END; pieces++)
        if (pieces == 0)
            first_open = sc.type == P_OPEN;
    int wrap = pieces > 1 && !first_open;
    if (wrap && (rc = imk_command_list_begin(cmd)) < 0) {
        emit_failed(&sc, cmd, "(");
        return rc;
    }
    if ((rc = emit_text(&sc, cmd, NULL, ARG_STRING)) < 0)
        return rc;
    if (wrap && (rc = imk_command_list_end(cmd)) < 0) {
        emit_failed(&sc, cmd, ")");
        return rc;
    }
    return 0;
}
