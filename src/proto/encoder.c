/* SPDX-License-Identifier: MIT */
/*
 * The command encoder: typed arguments in, the bytes of one command out.
 *
 * The whole command is built in one bounded buffer (`out`). Segment
 * boundaries are recorded as offsets while building, because the buffer may
 * move when it grows; they become pointers only in finish(), after which the
 * buffer no longer changes.
 *
 *     begin ──> BUILDING ──finish──> FINISHED
 *                  │                    │
 *                  └── any error ──> FAILED <── appender after finish
 *     begin from any state starts over.
 *
 * The invariant every appender keeps (DESIGN.md section 8): outside literal
 * data, the output holds no CR, LF or NUL except the CRLF that ends the
 * command and the CRLF that ends each literal announcement. Only three
 * functions write protocol bytes that came from a caller: emit_atom_text()
 * after a byte-class check, emit_quoted() (whose callers have excluded CR,
 * LF and NUL), and the literal writers, which put caller bytes only after a
 * length announcement. A second, related rule: nothing but a literal
 * announcement may end a line with "}", or the server would take it for
 * one; atoms exclude "{", tokens are refused if they contain it, and quoted
 * strings end with DQUOTE.
 *
 * `line_len` counts the bytes of the current line without literal data, to
 * honour max_line (RFC 7162 section 4: "clients SHOULD limit the length of
 * the command lines they generate to approximately 8192 octets (including
 * all quoted strings but not including literals)").
 */
#include "proto/encoder.h"

#include "util/alloc.h"
#include "util/buf.h"
#include "util/datetime.h"
#include "util/seqset.h"
#include "util/utf7.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

enum {
    DEFAULT_MAX_LINE = 8192,
    DEFAULT_MAX_COMMAND = 16 * 1024 * 1024,
    /* RFC 7888 section 5: with LITERAL-, non-synchronizing literals "MUST
     * NOT be larger than 4096 bytes". */
    LITERAL_MINUS_MAX = 4096,
    /* Longer strings go as literals even where a quoted string would be
     * legal: servers cap their line buffers very differently, and a literal
     * is length-prefixed, so it is the form every server sizes correctly. */
    QUOTED_MAX = 1024,
    /* Nesting of ( [ inside one token; real fetch attributes use 2. */
    TOKEN_MAX_DEPTH = 16,
    /* How much of a bad argument an error message shows. */
    PREVIEW_MAX = 40
};

/* number64 (RFC 9051 section 9): "Unsigned 63-bit integer". */
#define NUMBER64_MAX UINT64_C(9223372036854775807)

enum state { STATE_IDLE, STATE_BUILDING, STATE_FINISHED, STATE_FAILED };

/* A segment as recorded while building: `pub.data` is set at finish. */
typedef struct segment_rec {
    imk_command_segment pub;
    size_t start;
} segment_rec;

struct imk_command {
    imk_allocator alloc;
    imk_encoder_options opts; /* max_line and max_command resolved */

    imk__buf out;     /* the command's bytes, without streamed literal data */
    imk__buf scratch; /* the encoded form of a mailbox name */

    segment_rec *segs; /* closed segments */
    size_t seg_count, seg_cap;
    size_t seg_start; /* offset in `out` where the open segment begins */

    size_t line_len; /* bytes on the current line, literal data excluded */
    unsigned depth;  /* open parenthesised lists */
    int need_space;  /* the next argument must be preceded by SP */
    enum state state;
    int error_code;
    char error[320];
};

/* ------------------------------------------------------------------ */
/* Character classes (RFC 9051 section 9)                             */
/* ------------------------------------------------------------------ */

/*
 * ATOM-CHAR       = <any CHAR except atom-specials>
 * atom-specials   = "(" / ")" / "{" / SP / CTL / list-wildcards /
 *                   quoted-specials / resp-specials
 * list-wildcards  = "%" / "*"
 * quoted-specials = DQUOTE / "\"
 * resp-specials   = "]"
 * CHAR            = %x01-7F;  CTL = %x00-1F / %x7F
 */
static int is_atom_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 0;
    return strchr("(){%*\"\\]", c) == NULL;
}

/* ASTRING-CHAR   = ATOM-CHAR / resp-specials */
static int is_astring_char(unsigned char c)
{
    return is_atom_char(c) || c == ']';
}

/* list-char       = ATOM-CHAR / list-wildcards / resp-specials */
static int is_list_char(unsigned char c)
{
    return is_astring_char(c) || c == '%' || c == '*';
}

static int ascii_case_equal(const char *a, size_t len, const char *lower)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (lower[i] == '\0' || c != (unsigned char)lower[i])
            return 0;
    }
    return lower[len] == '\0';
}

/* ------------------------------------------------------------------ */
/* Error reporting                                                    */
/* ------------------------------------------------------------------ */

/* A name for a byte that does not belong somewhere, for messages. */
static void describe_byte(unsigned char c, char out[40])
{
    switch (c) {
    case '\0':
        snprintf(out, 40, "NUL");
        return;
    case '\r':
        snprintf(out, 40, "CR");
        return;
    case '\n':
        snprintf(out, 40, "LF");
        return;
    case ' ':
        snprintf(out, 40, "SP");
        return;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f)
        snprintf(out, 40, "the control byte 0x%02X", (unsigned)c);
    else if (c >= 0x80)
        snprintf(out, 40, "the 8-bit byte 0x%02X", (unsigned)c);
    else
        snprintf(out, 40, "'%c'", (char)c);
}

/* The start of a programmer-supplied argument, quoted and escaped so the
 * message itself stays one clean line. Never used for user data, which may
 * be a password. */
static void preview(const char *s, size_t len, char out[4 * PREVIEW_MAX + 8])
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len && i < PREVIEW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, 5, "\\x%02X", (unsigned)c);
            o += 4;
        }
    }
    if (len > PREVIEW_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static int fail(imk_command *cmd, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int fail(imk_command *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd->error, sizeof(cmd->error), fmt, ap);
    va_end(ap);
    cmd->state = STATE_FAILED;
    cmd->error_code = code;
    return code;
}

/* Report a failure of the buffer layer (limit or memory). */
static int fail_rc(imk_command *cmd, int rc)
{
    if (rc == IMK_ELIMIT)
        return fail(cmd, rc,
                    "the command would exceed max_command (%zu bytes); split the work into "
                    "several commands, stream large data with imk_command_literal_stream, or "
                    "raise imk_encoder_options.max_command",
                    cmd->opts.max_command);
    if (rc == IMK_ENOMEM)
        return fail(cmd, rc, "out of memory while building the command");
    return fail(cmd, rc, "%s", imk_error_message(rc));
}

/* 0 when appenders may run; otherwise the error they must return. */
static int check_building(imk_command *cmd)
{
    switch (cmd->state) {
    case STATE_BUILDING:
        return 0;
    case STATE_FAILED:
        return cmd->error_code;
    case STATE_FINISHED:
        return fail(cmd, IMK_ESTATE,
                    "the command is already finished; call imk_command_begin to build another");
    case STATE_IDLE:
    default:
        return fail(cmd, IMK_ESTATE, "call imk_command_begin before adding arguments");
    }
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

/* Protocol bytes: they count towards the line. */
static int emit(imk_command *cmd, const char *data, size_t len)
{
    int rc = imk__buf_append(&cmd->out, data, len);
    if (rc < 0)
        return fail_rc(cmd, rc);
    cmd->line_len += len;
    return 0;
}

/* SP between arguments; none after "(" and none first thing in a list. */
static int separate(imk_command *cmd)
{
    if (!cmd->need_space)
        return 0;
    cmd->need_space = 0;
    return emit(cmd, " ", 1);
}

/* Whether `n` more bytes, after the separator, stay within max_line. */
static int fits_line(const imk_command *cmd, size_t n)
{
    size_t used = cmd->line_len + (cmd->need_space ? 1u : 0u);
    return used <= cmd->opts.max_line && n <= cmd->opts.max_line - used;
}

static int close_segment(imk_command *cmd, int wait_continuation, uint64_t stream_len)
{
    if (cmd->seg_count == cmd->seg_cap) {
        size_t cap = cmd->seg_cap == 0 ? 4 : cmd->seg_cap * 2;
        size_t bytes;
        if (!imk__mul_ok(cap, sizeof(segment_rec), &bytes))
            return fail_rc(cmd, IMK_ENOMEM);
        segment_rec *segs = imk__realloc(&cmd->alloc, cmd->segs, bytes);
        if (segs == NULL)
            return fail_rc(cmd, IMK_ENOMEM);
        cmd->segs = segs;
        cmd->seg_cap = cap;
    }
    segment_rec *s = &cmd->segs[cmd->seg_count++];
    s->start = cmd->seg_start;
    s->pub.data = NULL;
    s->pub.len = cmd->out.len - cmd->seg_start;
    s->pub.wait_continuation = wait_continuation;
    s->pub.stream_len = stream_len;
    cmd->seg_start = cmd->out.len;
    return 0;
}

/* An atom-like argument whose bytes the caller has checked. */
static int emit_atom_text(imk_command *cmd, const char *text, size_t len)
{
    int rc = separate(cmd);
    if (rc == 0)
        rc = emit(cmd, text, len);
    cmd->need_space = 1;
    return rc;
}

/*
 * quoted          = DQUOTE *QUOTED-CHAR DQUOTE
 * QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
 *                   "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
 *
 * The caller has excluded CR, LF and NUL, and 8-bit bytes unless UTF-8 in
 * quoted strings is allowed (RFC 6855 section 3, uQUOTED-CHAR).
 */
static int emit_quoted(imk_command *cmd, const char *data, size_t len, size_t quoted_len)
{
    int rc = separate(cmd);
    if (rc < 0)
        return rc;
    rc = imk__buf_reserve(&cmd->out, quoted_len);
    if (rc < 0)
        return fail_rc(cmd, rc);
    /* Cannot fail now: the room is reserved. */
    char *p = cmd->out.data + cmd->out.len;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '"' || data[i] == '\\')
            *p++ = '\\';
        *p++ = data[i];
    }
    *p++ = '"';
    cmd->out.len += quoted_len;
    cmd->out.data[cmd->out.len] = '\0';
    cmd->line_len += quoted_len;
    cmd->need_space = 1;
    return 0;
}

/*
 * RFC 7888 section 3 (LITERAL+ and LITERAL-), RFC 4466 section 2.7 and
 * RFC 7888 section 6: a literal8 may be non-synchronizing only when the
 * server has BINARY as well as LITERAL+ or LITERAL-. A literal8 allowed
 * only by UTF8=ACCEPT (APPEND UTF8) therefore always synchronizes.
 */
static int may_skip_sync(const imk_command *cmd, uint64_t len, int binary)
{
    if (binary && !cmd->opts.binary)
        return 0;
    if (cmd->opts.literal_plus)
        return 1;
    return cmd->opts.literal_minus && len <= LITERAL_MINUS_MAX;
}

/*
 * literal         = "{" number64 ["+"] "}" CRLF *CHAR8
 * literal8        = "~{" number64 ["+"] "}" CRLF *OCTET    (RFC 4466)
 *
 * Writes the announcement; a synchronizing one ends the segment, and so
 * does one whose data the caller streams (stream_len > 0).
 */
static int emit_literal_head(imk_command *cmd, uint64_t len, int binary, uint64_t stream_len)
{
    int sync = !may_skip_sync(cmd, len, binary);
    int rc = separate(cmd);
    if (rc == 0 && binary)
        rc = emit(cmd, "~", 1);
    if (rc == 0)
        rc = emit(cmd, "{", 1);
    if (rc == 0) {
        rc = imk__buf_append_u64(&cmd->out, len);
        if (rc < 0)
            rc = fail_rc(cmd, rc);
    }
    if (rc == 0)
        rc = emit(cmd, sync ? "}\r\n" : "+}\r\n", sync ? 3u : 4u);
    if (rc < 0)
        return rc;
    cmd->line_len = 0;
    cmd->need_space = 1;
    if (sync || stream_len > 0)
        return close_segment(cmd, sync, stream_len);
    return 0;
}

static int emit_literal(imk_command *cmd, const char *data, size_t len, int binary)
{
    int rc = emit_literal_head(cmd, len, binary, 0);
    if (rc < 0)
        return rc;
    /* Literal data does not count towards the line (RFC 7162 section 4). */
    rc = imk__buf_append(&cmd->out, data, len);
    if (rc < 0)
        return fail_rc(cmd, rc);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Strings: choosing the form                                         */
/* ------------------------------------------------------------------ */

enum string_kind {
    KIND_STRING,      /* string       = quoted / literal */
    KIND_ASTRING,     /* astring      = 1*ASTRING-CHAR / string */
    KIND_LIST_MAILBOX /* list-mailbox = 1*list-char / string */
};

/*
 * Send caller data as the shortest form its grammar allows. Atom-like when
 * every byte qualifies, the text is not empty (an empty atom does not
 * exist) and is not NIL in any case (it would read as nil where an nstring
 * is also possible, and some servers read it so everywhere); quoted when no
 * byte needs a literal; a literal otherwise.
 */
static int emit_string(imk_command *cmd, const char *data, size_t len, enum string_kind kind)
{
    int atom_ok = kind != KIND_STRING && len > 0 && !ascii_case_equal(data, len, "nil");
    int quote_ok = len <= QUOTED_MAX;
    int has_8bit = 0;
    size_t escapes = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\0')
            /* Security: the data may be a password, so only its offset is shown. */
            return fail(cmd, IMK_EINVAL,
                        "string argument contains NUL at offset %zu; no IMAP string can "
                        "carry NUL (only a binary literal can, see imk_command_literal, "
                        "where the command allows literal8)",
                        i);
        if (atom_ok)
            atom_ok = kind == KIND_LIST_MAILBOX ? is_list_char(c) : is_astring_char(c);
        if (c == '\r' || c == '\n')
            quote_ok = 0;
        else if (c >= 0x80)
            has_8bit = 1;
        else if (c == '"' || c == '\\')
            escapes++;
    }
    if (has_8bit && quote_ok)
        quote_ok = cmd->opts.utf8_accept && imk__utf8_is_valid(data, len);

    if (atom_ok && fits_line(cmd, len))
        return emit_atom_text(cmd, data, len);
    size_t quoted_len = len + escapes + 2;
    if (quote_ok && fits_line(cmd, quoted_len))
        return emit_quoted(cmd, data, len, quoted_len);
    return emit_literal(cmd, data, len, 0);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                          */
/* ------------------------------------------------------------------ */

int imk_command_new(const imk_encoder_options *opts, const imk_allocator *alloc, imk_command **out)
{
    if (out == NULL)
        return IMK_EINVAL;
    *out = NULL;
    if (opts != NULL && opts->version != IMK_ENCODER_OPTIONS_VERSION)
        return IMK_EINVAL;

    imk_allocator a;
    imk__alloc_init(&a, alloc);
    imk_command *cmd = imk__malloc(&a, sizeof(*cmd));
    if (cmd == NULL)
        return IMK_ENOMEM;
    memset(cmd, 0, sizeof(*cmd));
    cmd->alloc = a;
    if (opts != NULL)
        cmd->opts = *opts;
    cmd->opts.version = IMK_ENCODER_OPTIONS_VERSION;
    if (cmd->opts.max_line == 0)
        cmd->opts.max_line = DEFAULT_MAX_LINE;
    if (cmd->opts.max_command == 0)
        cmd->opts.max_command = DEFAULT_MAX_COMMAND;
    imk__buf_init(&cmd->out, &cmd->alloc, cmd->opts.max_command);
    imk__buf_init(&cmd->scratch, &cmd->alloc, cmd->opts.max_command);
    cmd->state = STATE_IDLE;
    *out = cmd;
    return 0;
}

void imk_command_free(imk_command *cmd)
{
    if (cmd == NULL)
        return;
    imk__buf_free(&cmd->out);
    imk__buf_free(&cmd->scratch);
    imk__free(&cmd->alloc, cmd->segs);
    imk_allocator a = cmd->alloc;
    imk__free(&a, cmd);
}

/* tag             = 1*<any ASTRING-CHAR except "+"> */
static int check_tag(imk_command *cmd, const char *tag)
{
    size_t len = strlen(tag);
    char shown[4 * PREVIEW_MAX + 8];
    if (len == 0)
        return fail(cmd, IMK_EINVAL,
                    "the tag is empty; a tag is one or more ASTRING-CHAR "
                    "except '+' (for example A1)");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tag[i];
        if (!is_astring_char(c) || c == '+') {
            char what[40];
            describe_byte(c, what);
            preview(tag, len, shown);
            return fail(cmd, IMK_EINVAL,
                        "tag %s contains %s; a tag is one or more ASTRING-CHAR except '+' "
                        "(letters, digits and most punctuation)",
                        shown, what);
        }
    }
    return 0;
}

/* The command name: atoms separated by single spaces ("UID FETCH"). */
static int check_name(imk_command *cmd, const char *name)
{
    size_t len = strlen(name);
    char shown[4 * PREVIEW_MAX + 8];
    preview(name, len, shown);
    if (len == 0)
        return fail(cmd, IMK_EINVAL, "the command name is empty");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == ' ' && i > 0 && i + 1 < len && name[i + 1] != ' ')
            continue;
        if (!is_atom_char(c)) {
            char what[40];
            describe_byte(c, what);
            return fail(cmd, IMK_EINVAL,
                        "command name %s contains %s at offset %zu; a name is one or more "
                        "atoms separated by single spaces (\"UID FETCH\"), arguments are "
                        "added with the appenders",
                        shown, what, i);
        }
    }
    return 0;
}

int imk_command_begin(imk_command *cmd, const char *tag, const char *name)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    imk__buf_clear(&cmd->out);
    cmd->seg_count = 0;
    cmd->seg_start = 0;
    cmd->line_len = 0;
    cmd->depth = 0;
    cmd->need_space = 0;
    cmd->error_code = 0;
    cmd->error[0] = '\0';
    cmd->state = STATE_BUILDING;

    if (tag == NULL || name == NULL)
        return fail(cmd, IMK_EINVAL, "imk_command_begin needs a tag and a command name");
    int rc = check_tag(cmd, tag);
    if (rc == 0)
        rc = check_name(cmd, name);
    if (rc == 0)
        rc = emit(cmd, tag, strlen(tag));
    if (rc == 0)
        rc = emit(cmd, " ", 1);
    if (rc == 0)
        rc = emit(cmd, name, strlen(name));
    cmd->need_space = 1;
    return rc;
}

int imk_command_finish(imk_command *cmd)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (cmd->depth != 0)
        return fail(cmd, IMK_EINVAL,
                    "%u parenthesised list(s) still open at imk_command_finish; close each "
                    "imk_command_list_begin with imk_command_list_end",
                    cmd->depth);
    rc = emit(cmd, "\r\n", 2);
    if (rc == 0)
        rc = close_segment(cmd, 0, 0);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < cmd->seg_count; i++)
        cmd->segs[i].pub.data = cmd->out.data + cmd->segs[i].start;
    cmd->state = STATE_FINISHED;
    return 0;
}

size_t imk_command_segment_count(const imk_command *cmd)
{
    return cmd != NULL && cmd->state == STATE_FINISHED ? cmd->seg_count : 0;
}

const imk_command_segment *imk_command_segment_at(const imk_command *cmd, size_t i)
{
    if (i >= imk_command_segment_count(cmd))
        return NULL;
    return &cmd->segs[i].pub;
}

const char *imk_command_bytes(const imk_command *cmd, size_t *len)
{
    if (len != NULL)
        *len = cmd != NULL ? cmd->out.len : 0;
    if (cmd == NULL || cmd->out.data == NULL)
        return "";
    return cmd->out.data;
}

const char *imk_command_error(const imk_command *cmd)
{
    if (cmd == NULL)
        return "no command (NULL)";
    return cmd->error;
}

/* ------------------------------------------------------------------ */
/* Appenders                                                          */
/* ------------------------------------------------------------------ */

/* atom            = 1*ATOM-CHAR */
int imk_command_atom(imk_command *cmd, const char *atom)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (atom == NULL)
        return fail(cmd, IMK_EINVAL, "imk_command_atom: atom is NULL");
    size_t len = strlen(atom);
    if (len == 0)
        return fail(cmd, IMK_EINVAL,
                    "an atom cannot be empty; use imk_command_string to send "
                    "an empty string");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)atom[i];
        if (!is_atom_char(c)) {
            char what[40], shown[4 * PREVIEW_MAX + 8];
            describe_byte(c, what);
            preview(atom, len, shown);
            return fail(cmd, IMK_EINVAL,
                        "atom %s contains %s, which is not allowed in an atom; use "
                        "imk_command_astring or imk_command_string for user text, "
                        "imk_command_token for fetch items with sections",
                        shown, what);
        }
    }
    return emit_atom_text(cmd, atom, len);
}

/*
 * Tokens carry fixed protocol syntax that is not one atom, e.g.
 *   fetch-att = ... / "BODY" [".PEEK"] section [partial] / ...
 *   section   = "[" [section-spec] "]"
 *   header-list = "(" header-fld-name *(SP header-fld-name) ")"
 * We do not parse them; we only make sure they cannot break out of their
 * place: no byte that ends or corrupts a line, no "{" that could forge a
 * literal announcement, and brackets and quotes closed so that what follows
 * is not swallowed.
 */
static const char *token_problem(const char *tok, size_t len, size_t *at)
{
    char stack[TOKEN_MAX_DEPTH];
    size_t depth = 0;
    int in_quote = 0, escaped = 0;

    if (len == 0) {
        *at = 0;
        return "is empty";
    }
    if (tok[0] == ' ' || tok[len - 1] == ' ') {
        *at = tok[0] == ' ' ? 0 : len - 1;
        return "starts or ends with SP";
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tok[i];
        *at = i;
        if (c < 0x20 || c >= 0x7f)
            return "contains a byte that is not printable US-ASCII";
        /* An escaped byte has had the class check above as well: skipping
         * it would let "\<CR>" through. */
        if (in_quote) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_quote = 0;
            continue;
        }
        switch (c) {
        case '{':
            return "contains '{', which could announce a literal";
        case '"':
            in_quote = 1;
            break;
        case '(':
        case '[':
            if (depth == TOKEN_MAX_DEPTH)
                return "nests brackets too deeply";
            stack[depth++] = c == '(' ? ')' : ']';
            break;
        case ')':
        case ']':
            if (depth == 0 || stack[depth - 1] != (char)c)
                return "has an unmatched closing bracket";
            depth--;
            break;
        default:
            break;
        }
    }
    *at = len;
    if (in_quote)
        return "has an unterminated quoted string";
    if (depth != 0)
        return "has an unclosed bracket";
    return NULL;
}

int imk_command_token(imk_command *cmd, const char *tok)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (tok == NULL)
        return fail(cmd, IMK_EINVAL, "imk_command_token: token is NULL");
    size_t len = strlen(tok);
    size_t at = 0;
    const char *problem = token_problem(tok, len, &at);
    if (problem != NULL) {
        char shown[4 * PREVIEW_MAX + 8];
        preview(tok, len, shown);
        return fail(cmd, IMK_EINVAL,
                    "token %s %s (offset %zu); tokens are for fixed protocol syntax such as "
                    "BODY.PEEK[HEADER] - use imk_command_astring or imk_command_string for "
                    "user text",
                    shown, problem, at);
    }
    return emit_atom_text(cmd, tok, len);
}

/*
 * flag            = "\Answered" / "\Flagged" / "\Deleted" /
 *                   "\Seen" / "\Draft" / flag-keyword / flag-extension
 * flag-extension  = "\" atom
 * flag-keyword    = "$MDNSent" / "$Forwarded" / "$Junk" /
 *                   "$NotJunk" / "$Phishing" / atom
 */
int imk_command_flag(imk_command *cmd, const char *flag)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (flag == NULL)
        return fail(cmd, IMK_EINVAL, "imk_command_flag: flag is NULL");
    size_t len = strlen(flag);
    size_t first = flag[0] == '\\' ? 1 : 0;
    char shown[4 * PREVIEW_MAX + 8];
    preview(flag, len, shown);
    if (len == first)
        return fail(cmd, IMK_EINVAL,
                    "flag %s is empty; a flag is \\ followed by an atom (\\Seen) or a "
                    "keyword atom ($Forwarded)",
                    shown);
    for (size_t i = first; i < len; i++) {
        unsigned char c = (unsigned char)flag[i];
        if (!is_atom_char(c)) {
            char what[40];
            describe_byte(c, what);
            return fail(cmd, IMK_EINVAL,
                        "flag %s contains %s; a flag is \\ followed by an atom (\\Seen) or a "
                        "keyword atom ($Forwarded), and IMAP has no quoted form for flags",
                        shown, what);
        }
    }
    return emit_atom_text(cmd, flag, len);
}

static int string_args_ok(imk_command *cmd, const char *data, size_t len, const char *fn)
{
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (data == NULL && len > 0)
        return fail(cmd, IMK_EINVAL, "%s: data is NULL but len is %zu", fn, len);
    return 0;
}

int imk_command_astring(imk_command *cmd, const char *data, size_t len)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = string_args_ok(cmd, data, len, "imk_command_astring");
    if (rc < 0)
        return rc;
    return emit_string(cmd, data != NULL ? data : "", len, KIND_ASTRING);
}

int imk_command_string(imk_command *cmd, const char *data, size_t len)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = string_args_ok(cmd, data, len, "imk_command_string");
    if (rc < 0)
        return rc;
    return emit_string(cmd, data != NULL ? data : "", len, KIND_STRING);
}

/* nstring         = string / nil */
int imk_command_nstring(imk_command *cmd, const char *data, size_t len)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (data == NULL)
        return emit_atom_text(cmd, "NIL", 3);
    return emit_string(cmd, data, len, KIND_STRING);
}

/*
 * mailbox         = "INBOX" / astring
 *                     ; INBOX is case insensitive.
 * list-mailbox    = 1*list-char / string
 *
 * Without UTF8=ACCEPT, names travel in modified UTF-7 (RFC 3501 section
 * 5.1.3); with it, as UTF-8 (RFC 6855 section 3: servers "MUST accept
 * UTF8-quoted mailbox names").
 */
static int emit_mailbox(imk_command *cmd, const char *name, size_t len, enum string_kind kind,
                        const char *fn)
{
    int rc = string_args_ok(cmd, name, len, fn);
    if (rc < 0)
        return rc;
    if (name == NULL)
        name = "";
    const char *nul = memchr(name, '\0', len);
    if (nul != NULL)
        return fail(cmd, IMK_EINVAL,
                    "%s: the mailbox name contains NUL at offset %zu; no mailbox name can", fn,
                    (size_t)(nul - name));
    if (!imk__utf8_is_valid(name, len))
        return fail(cmd, IMK_EUTF8,
                    "%s: the mailbox name is not valid UTF-8; pass names in UTF-8 (names "
                    "from LIST replies are already decoded)",
                    fn);
    /* Every case of INBOX means the same mailbox; send the canonical one. */
    if (ascii_case_equal(name, len, "inbox"))
        return emit_atom_text(cmd, "INBOX", 5);
    if (cmd->opts.utf8_accept)
        return emit_string(cmd, name, len, kind);

    imk__buf_clear(&cmd->scratch);
    rc = imk__utf7_encode(&cmd->scratch, name, len);
    if (rc == IMK_EUTF8)
        return fail(cmd, rc, "%s: the mailbox name is not valid UTF-8", fn);
    if (rc < 0)
        return fail_rc(cmd, rc);
    return emit_string(cmd, cmd->scratch.data != NULL ? cmd->scratch.data : "", cmd->scratch.len,
                       kind);
}

int imk_command_mailbox(imk_command *cmd, const char *utf8, size_t len)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    return emit_mailbox(cmd, utf8, len, KIND_ASTRING, "imk_command_mailbox");
}

int imk_command_list_mailbox(imk_command *cmd, const char *pattern, size_t len)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    return emit_mailbox(cmd, pattern, len, KIND_LIST_MAILBOX, "imk_command_list_mailbox");
}

/* number64        = 1*DIGIT ; Unsigned 63-bit integer */
int imk_command_number(imk_command *cmd, uint64_t n)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (n > NUMBER64_MAX)
        return fail(cmd, IMK_ERANGE,
                    "number %llu is above 9223372036854775807, the largest number IMAP can "
                    "carry (number64)",
                    (unsigned long long)n);
    char digits[24];
    size_t i = sizeof(digits);
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    return emit_atom_text(cmd, digits + i, sizeof(digits) - i);
}

/*
 * sequence-set    = (seq-number / seq-range) ["," sequence-set]
 * sequence-set    =/ seq-last-command
 * seq-range       = seq-number ":" seq-number
 * seq-number      = nz-number / "*"
 * nz-number       = digit-nz *DIGIT ; Non-zero unsigned 32-bit integer
 * seq-last-command = "$"                                  (RFC 5182)
 *
 * "$" is accepted only alone: RFC 5182 combines it with other sets through
 * SEARCH OR, never inside one set, and servers differ on "1,$".
 * Returns NULL when valid, else what is wrong, with its offset in *at.
 */
static const char *seqset_problem(const char *set, size_t *at)
{
    size_t i = 0;
    *at = 0;
    if (strcmp(set, "$") == 0)
        return NULL;
    for (;;) {
        for (int side = 0; side < 2; side++) {
            *at = i;
            if (set[i] == '*') {
                i++;
            } else if (set[i] >= '1' && set[i] <= '9') {
                uint64_t v = 0;
                while (set[i] >= '0' && set[i] <= '9') {
                    v = v * 10 + (uint64_t)(set[i] - '0');
                    if (v > UINT32_MAX)
                        return "has a number above 4294967295";
                    i++;
                }
            } else if (set[i] == '0') {
                return "has a zero or a leading zero (numbers start at 1)";
            } else {
                return "expects a number or '*' here";
            }
            if (side == 1 || set[i] != ':')
                break;
            i++;
        }
        *at = i;
        if (set[i] == '\0')
            return NULL;
        if (set[i] != ',')
            return "expects ',' ':' or the end here";
        i++;
    }
}

int imk_command_seqset_text(imk_command *cmd, const char *set)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (set == NULL)
        return fail(cmd, IMK_EINVAL, "imk_command_seqset_text: set is NULL");
    size_t at;
    const char *problem = seqset_problem(set, &at);
    if (problem != NULL) {
        char shown[4 * PREVIEW_MAX + 8];
        preview(set, strlen(set), shown);
        return fail(cmd, IMK_EINVAL,
                    "sequence set %s %s (offset %zu); a set looks like 1:3,5,7:* or is $ alone",
                    shown, problem, at);
    }
    return emit_atom_text(cmd, set, strlen(set));
}

int imk__command_seqset(imk_command *cmd, const imk__seqset *set)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (set == NULL || (!set->is_saved && set->count == 0))
        return fail(cmd, IMK_EINVAL,
                    "an empty sequence set cannot be sent; skip the command "
                    "or use a SEARCH that matches nothing");
    rc = separate(cmd);
    if (rc < 0)
        return rc;
    size_t before = cmd->out.len;
    rc = imk__seqset_format(set, &cmd->out);
    if (rc == IMK_EINVAL)
        return fail(cmd, rc, "the sequence set cannot be formatted (empty or invalid)");
    if (rc < 0)
        return fail_rc(cmd, rc);
    cmd->line_len += cmd->out.len - before;
    cmd->need_space = 1;
    return 0;
}

static int is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Checks what date-text and date-time can say; NULL when valid. */
static const char *date_problem(int year, int month, int day)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || year > 9999)
        return "the year is outside 1..9999 (date-year = 4DIGIT)";
    if (month < 1 || month > 12)
        return "the month is outside 1..12";
    int last = days[month - 1] + (month == 2 && is_leap(year) ? 1 : 0);
    if (day < 1 || day > last)
        return "that day does not exist in that month";
    return NULL;
}

/*
 * date            = date-text / DQUOTE date-text DQUOTE
 * date-text       = date-day "-" date-month "-" date-year
 */
int imk_command_date(imk_command *cmd, int year, int month, int day)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    const char *problem = date_problem(year, month, day);
    if (problem != NULL)
        return fail(cmd, IMK_EINVAL, "date %04d-%02d-%02d: %s", year, month, day, problem);
    char text[IMK__DATE_IMAP_SIZE];
    int n = imk__date_format(year, month, day, text);
    if (n <= 0 || n >= (int)sizeof(text))
        return fail(cmd, IMK_EINVAL, "date %04d-%02d-%02d cannot be formatted", year, month, day);
    return emit_atom_text(cmd, text, (size_t)n);
}

/*
 * date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
 *                   SP time SP zone DQUOTE
 * time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
 * zone            = ("+" / "-") 4DIGIT
 */
int imk_command_datetime(imk_command *cmd, int year, int month, int day, int hour, int minute,
                         int second, int zone_minutes)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    const char *problem = date_problem(year, month, day);
    if (problem == NULL &&
        (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60))
        problem = "the time is outside 00:00:00..23:59:60";
    if (problem == NULL && (zone_minutes < -1439 || zone_minutes > 1439))
        problem = "the zone is outside -1439..1439 minutes (-2359..+2359)";
    if (problem != NULL)
        return fail(cmd, IMK_EINVAL, "date-time %04d-%02d-%02d %02d:%02d:%02d zone %d: %s", year,
                    month, day, hour, minute, second, zone_minutes, problem);
    imk__datetime dt = {year, month, day, hour, minute, second, zone_minutes};
    char text[IMK__DATETIME_IMAP_SIZE];
    int n = imk__datetime_format(&dt, text);
    if (n <= 0 || n >= (int)sizeof(text))
        return fail(cmd, IMK_EINVAL, "date-time %04d-%02d-%02d cannot be formatted", year, month,
                    day);
    char quoted[IMK__DATETIME_IMAP_SIZE + 2];
    quoted[0] = '"';
    memcpy(quoted + 1, text, (size_t)n);
    quoted[n + 1] = '"';
    return emit_atom_text(cmd, quoted, (size_t)n + 2);
}

int imk_command_list_begin(imk_command *cmd)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (cmd->depth == UINT32_MAX)
        return fail(cmd, IMK_ELIMIT, "too many nested lists");
    rc = separate(cmd);
    if (rc == 0)
        rc = emit(cmd, "(", 1);
    if (rc < 0)
        return rc;
    cmd->depth++;
    cmd->need_space = 0;
    return 0;
}

int imk_command_list_end(imk_command *cmd)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (cmd->depth == 0)
        return fail(cmd, IMK_EINVAL,
                    "imk_command_list_end without an open list; every list_end needs an "
                    "earlier imk_command_list_begin");
    rc = emit(cmd, ")", 1);
    if (rc < 0)
        return rc;
    cmd->depth--;
    cmd->need_space = 1;
    return 0;
}

static int check_binary(imk_command *cmd, int binary)
{
    if (binary && !cmd->opts.binary && !cmd->opts.utf8_accept)
        return fail(cmd, IMK_ENOTSUP,
                    "a binary literal (~{n}) needs the server's BINARY capability (or "
                    "UTF8=ACCEPT, for APPEND UTF8); set imk_encoder_options.binary when the "
                    "server offers BINARY, otherwise send a plain literal");
    return 0;
}

int imk_command_literal(imk_command *cmd, const void *data, size_t len, int binary)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (data == NULL && len > 0)
        return fail(cmd, IMK_EINVAL, "imk_command_literal: data is NULL but len is %zu", len);
    rc = check_binary(cmd, binary);
    if (rc < 0)
        return rc;
    if (data == NULL)
        data = "";
    /* literal = ... *CHAR8, and CHAR8 = %x01-ff: only literal8 may hold NUL. */
    const char *nul = binary ? NULL : memchr(data, '\0', len);
    if (nul != NULL)
        return fail(cmd, IMK_EINVAL,
                    "literal data contains NUL at offset %zu, which only a binary literal "
                    "can carry; pass binary = 1 (needs the server's BINARY capability)",
                    (size_t)(nul - (const char *)data));
    return emit_literal(cmd, data, len, binary != 0);
}

int imk_command_literal_stream(imk_command *cmd, uint64_t len, int binary)
{
    if (cmd == NULL)
        return IMK_EINVAL;
    int rc = check_building(cmd);
    if (rc < 0)
        return rc;
    if (len > NUMBER64_MAX)
        return fail(cmd, IMK_ERANGE,
                    "literal length %llu is above 9223372036854775807, the largest number64",
                    (unsigned long long)len);
    rc = check_binary(cmd, binary);
    if (rc < 0)
        return rc;
    return emit_literal_head(cmd, len, binary != 0, len);
}
