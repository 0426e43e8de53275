/* SPDX-License-Identifier: MIT */
/*
 * The builders: one per IMAP command, each appending the arguments of an
 * op already begun (tag and verb written) on a bare session. They send
 * nothing, so they are tested byte for byte without a network
 * (tests/unit/test_client_build.c); ops.c wraps them into the public calls.
 *
 * Invariants:
 *   - every caller string reaches the command through a typed appender
 *     (mailbox, astring, string, nstring, flag, atom, token, seqset,
 *     literal): CR, LF and NUL can never break out of an argument
 *     (DESIGN.md section 8). Only fixed words of this file are written as
 *     atoms without a check of ours, and the encoder checks those too;
 *   - a builder fails before the command is sent, with one line in `err`
 *     saying what was wrong and what to do, and a negative code:
 *       IMK_EINVAL   the arguments are wrong,
 *       IMK_ENOTSUP  the server does not offer the extension needed,
 *       IMK_ESTATE   the extension is offered but not enabled (QRESYNC);
 *     the op is then abandoned by the caller, half-built;
 *   - the set a command is about goes through imk_op_set() (FETCH and STORE
 *     data are attributed by it) and the mailbox of SELECT, EXAMINE and
 *     STATUS through imk_op_mailbox() (the view's name, STATUS matching).
 *
 * Capabilities: an extension that IMAP4rev2 folded in (RFC 9051 appendix
 * E) is taken as offered by a server that advertises IMAP4rev2. When the
 * capability list is not known (after STARTTLS or a LOGIN that did not
 * bring one), a command that needs an extension fails and says to send
 * CAPABILITY; optional forms (ESEARCH's RETURN) are then simply left out.
 */
#define _POSIX_C_SOURCE 200809L

#include "client/client_int.h"

#include "util/datetime.h"
#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Memory content up to this size is copied into the command; larger
 * content, and content from a descriptor or a callback, is streamed. */
#define APPEND_INLINE_MAX (64u * 1024u)

/* The longest word of a programmer's list (status items, sort keys). */
#define LIST_WORD_MAX 64

/* ------------------------------------------------------------------ */
/* Errors and capabilities                                             */
/* ------------------------------------------------------------------ */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const char *verb(const imk_op *op)
{
    return imk_command_kind_verb(imk_op_kind(op));
}

/* An appender failed: the encoder's message says what and why. */
static int arg_failed(imk_op *op, int rc, const char *what, char *err, size_t errlen)
{
    const char *why = imk_command_error(imk_op_args(op));
    if (why == NULL || why[0] == '\0')
        why = imk_error_message(rc);
    return fail(err, errlen, rc, "%s: %s: %s", verb(op), what, why);
}

/* Offered by the server, directly or as part of IMAP4rev2. */
static int offers(const imk_session *s, const char *cap, int in_rev2)
{
    return imk_session_has_capability(s, cap) ||
           (in_rev2 && imk_session_has_capability(s, "IMAP4rev2"));
}

/* IMK_ENOTSUP with "<cap> is not offered by the server: <instead>" unless
 * offered. */
static int need_cap(const imk_session *s, const char *cap, int in_rev2, const char *instead,
                    char *err, size_t errlen)
{
    if (offers(s, cap, in_rev2))
        return 0;
    if (!imk_session_capabilities_known(s))
        return fail(err, errlen, IMK_ENOTSUP,
                    "%s cannot be used yet: the server's capabilities are not known (send "
                    "CAPABILITY first)",
                    cap);
    return fail(err, errlen, IMK_ENOTSUP, "%s is not offered by the server: %s", cap, instead);
}

/* Put "<VERB>: " before the message a callee wrote into err. */
static int prefix_verb(const imk_op *op, int rc, char *err, size_t errlen)
{
    if (err == NULL || errlen == 0)
        return rc;
    char msg[IMK__ERRBUF];
    snprintf(msg, sizeof(msg), "%s", err);
    return fail(err, errlen, rc, "%s: %s", verb(op), msg);
}

static int need_str(const imk_op *op, const char *p, const char *name, char *err, size_t errlen)
{
    if (p != NULL)
        return 0;
    return fail(err, errlen, IMK_EINVAL, "%s: %s is NULL", verb(op), name);
}

/* ------------------------------------------------------------------ */
/* Shared argument forms                                               */
/* ------------------------------------------------------------------ */

static int mailbox_arg(imk_op *op, const char *name, const char *what, char *err, size_t errlen)
{
    int rc = need_str(op, name, what, err, errlen);
    if (rc == 0 && (rc = imk_command_mailbox(imk_op_args(op), name, strlen(name))) < 0)
        return arg_failed(op, rc, what, err, errlen);
    return rc;
}

/* The mailbox the command is about (SELECT, EXAMINE, STATUS). */
static int op_mailbox(imk_op *op, const char *name, char *err, size_t errlen)
{
    int rc = need_str(op, name, "the mailbox name", err, errlen);
    if (rc == 0 && (rc = imk_op_mailbox(op, name, strlen(name))) < 0)
        return arg_failed(op, rc, "mailbox name", err, errlen);
    return rc;
}

static int op_set(imk_op *op, const char *set, char *err, size_t errlen)
{
    int rc = need_str(op, set, "the message set", err, errlen);
    if (rc == 0 && (rc = imk_op_set(op, set)) < 0)
        return arg_failed(op, rc, "message set", err, errlen);
    return rc;
}

/* A keyword; the encoder's message shows it escaped, so it is not repeated
 * here (it may hold anything when it comes from the caller). */
static int atom(imk_op *op, const char *a, const char *what, char *err, size_t errlen)
{
    int rc = imk_command_atom(imk_op_args(op), a);
    return rc < 0 ? arg_failed(op, rc, what, err, errlen) : 0;
}

static int list_begin(imk_op *op, char *err, size_t errlen)
{
    int rc = imk_command_list_begin(imk_op_args(op));
    return rc < 0 ? arg_failed(op, rc, "(", err, errlen) : 0;
}

static int list_end(imk_op *op, char *err, size_t errlen)
{
    int rc = imk_command_list_end(imk_op_args(op));
    return rc < 0 ? arg_failed(op, rc, ")", err, errlen) : 0;
}

static int number(imk_op *op, uint64_t n, const char *what, char *err, size_t errlen)
{
    int rc = imk_command_number(imk_op_args(op), n);
    return rc < 0 ? arg_failed(op, rc, what, err, errlen) : 0;
}

static int seqset(imk_op *op, const char *set, const char *what, char *err, size_t errlen)
{
    int rc = imk_command_seqset_text(imk_op_args(op), set);
    return rc < 0 ? arg_failed(op, rc, what, err, errlen) : 0;
}

/* A word of a programmer's list is acceptable here (capability checks). */
typedef int (*word_check_fn)(const imk_session *s, imk_op *op, const char *word, char *err,
                             size_t errlen);

/*
 * A parenthesised list of atoms written by the programmer as
 * space-separated words ("MESSAGES UIDNEXT", also accepted with its own
 * parentheses). Each word goes through imk_command_atom, which refuses
 * anything but an atom. `check` (may be NULL) vets each word first.
 */
static int atom_list(const imk_session *s, imk_op *op, const char *text, const char *what,
                     word_check_fn check, char *err, size_t errlen)
{
    int rc = need_str(op, text, what, err, errlen);
    if (rc < 0)
        return rc;
    size_t len = strlen(text), i = 0;
    while (len > 0 && text[len - 1] == ' ')
        len--;
    while (i < len && text[i] == ' ')
        i++;
    if (len - i >= 2 && text[i] == '(' && text[len - 1] == ')') {
        i++;
        len--;
    }
    if ((rc = list_begin(op, err, errlen)) < 0)
        return rc;
    size_t words = 0;
    while (i < len) {
        if (text[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && text[i] != ' ')
            i++;
        char word[LIST_WORD_MAX + 1];
        if (i - start > LIST_WORD_MAX)
            return fail(err, errlen, IMK_EINVAL,
                        "%s: %s: the word at offset %zu is longer than %d bytes", verb(op), what,
                        start, LIST_WORD_MAX);
        memcpy(word, text + start, i - start);
        word[i - start] = '\0';
        if (check != NULL && (rc = check(s, op, word, err, errlen)) < 0)
            return rc;
        if ((rc = imk_command_atom(imk_op_args(op), word)) < 0)
            return arg_failed(op, rc, what, err, errlen);
        words++;
    }
    if (words == 0)
        return fail(err, errlen, IMK_EINVAL, "%s: no %s given", verb(op), what);
    return list_end(op, err, errlen);
}

/* Flags of STORE and APPEND: RFC 9051 section 9 `flag`, which excludes
 * \Recent (only the server sets it) and \* (only in PERMANENTFLAGS). */
static int flag_args(imk_op *op, const char *const *flags, size_t n, char *err, size_t errlen)
{
    if (n > 0 && flags == NULL)
        return fail(err, errlen, IMK_EINVAL, "%s: %zu flags announced but the array is NULL",
                    verb(op), n);
    int rc = list_begin(op, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (flags[i] == NULL)
            return fail(err, errlen, IMK_EINVAL, "%s: flag %zu is NULL", verb(op), i);
        if (imk__str_ieq((imk_str){flags[i], strlen(flags[i])}, "\\Recent"))
            return fail(err, errlen, IMK_EINVAL,
                        "%s: \\Recent cannot be set by a client (RFC 9051 section 2.3.2): leave "
                        "it out",
                        verb(op));
        if ((rc = imk_command_flag(imk_op_args(op), flags[i])) < 0)
            return arg_failed(op, rc, "flag", err, errlen);
    }
    return rc < 0 ? rc : list_end(op, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Session commands                                                    */
/* ------------------------------------------------------------------ */

/* RFC 5161 section 3.1:  enable = "ENABLE" 1*(SP capability) */
int imk__build_enable(imk_session *s, imk_op *op, const char *const *exts, size_t n, char *err,
                      size_t errlen)
{
    int rc =
        need_cap(s, "ENABLE", 1, "extensions such as CONDSTORE cannot be enabled", err, errlen);
    if (rc < 0)
        return rc;
    if (n == 0 || exts == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "ENABLE: name at least one extension (CONDSTORE, QRESYNC, UTF8=ACCEPT...)");
    for (size_t i = 0; i < n; i++) {
        if (exts[i] == NULL)
            return fail(err, errlen, IMK_EINVAL, "ENABLE: extension %zu is NULL", i);
        if ((rc = atom(op, exts[i], "extension name", err, errlen)) < 0)
            return rc;
    }
    return 0;
}

/*
 * RFC 2971 section 4:
 *   id = "ID" SPACE id_params_list
 *   id_params_list ::= "(" #(string SPACE nstring) ")" / nil
 * Section 3.3: keys at most 30 octets, values at most 1024, at most 30
 * pairs. n counts pairs: kv[2i] is a key, kv[2i+1] its value (NULL: NIL).
 */
int imk__build_id(imk_session *s, imk_op *op, const char *const *kv, size_t n, char *err,
                  size_t errlen)
{
    imk_command *cmd = imk_op_args(op);
    int rc = need_cap(s, "ID", 0, "leave the ID exchange out", err, errlen);
    if (rc < 0)
        return rc;
    if (n == 0)
        return atom(op, "NIL", "keyword", err, errlen);
    if (kv == NULL)
        return fail(err, errlen, IMK_EINVAL, "ID: %zu pairs announced but kv is NULL", n);
    if (n > 30)
        return fail(err, errlen, IMK_EINVAL,
                    "ID: %zu pairs given, RFC 2971 allows at most 30: send the important ones", n);
    if ((rc = list_begin(op, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *key = kv[2 * i], *value = kv[2 * i + 1];
        if (key == NULL)
            return fail(err, errlen, IMK_EINVAL, "ID: key %zu is NULL", i);
        if (strlen(key) > 30)
            return fail(err, errlen, IMK_EINVAL,
                        "ID: key %zu is longer than the 30 bytes RFC 2971 allows", i);
        if (value != NULL && strlen(value) > 1024)
            return fail(err, errlen, IMK_EINVAL,
                        "ID: the value of key %zu is longer than the 1024 bytes RFC 2971 allows",
                        i);
        if ((rc = imk_command_string(cmd, key, strlen(key))) < 0)
            return arg_failed(op, rc, "key", err, errlen);
        if ((rc = imk_command_nstring(cmd, value, value != NULL ? strlen(value) : 0)) < 0)
            return arg_failed(op, rc, "value", err, errlen);
    }
    return list_end(op, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */
/* ------------------------------------------------------------------ */

/* Status items that need an extension (RFC 8438, RFC 7162, RFC 8474,
 * RFC 7889, RFC 9051 section 6.3.11). */
static int check_status_item(const imk_session *s, imk_op *op, const char *item, char *err,
                             size_t errlen)
{
    static const struct {
        const char *item, *cap;
        int in_rev2;
    } needs[] = {{"SIZE", "STATUS=SIZE", 1},
                 {"HIGHESTMODSEQ", "CONDSTORE", 0},
                 {"MAILBOXID", "OBJECTID", 0},
                 {"APPENDLIMIT", "APPENDLIMIT", 0},
                 {"DELETED", "IMAP4rev2", 0}};
    imk_str w = {item, strlen(item)};
    for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
        if (!imk__str_ieq(w, needs[i].item) || offers(s, needs[i].cap, needs[i].in_rev2))
            continue;
        char instead[96];
        snprintf(instead, sizeof(instead), "leave the status item %s out", needs[i].item);
        return prefix_verb(op, need_cap(s, needs[i].cap, needs[i].in_rev2, instead, err, errlen),
                           err, errlen);
    }
    return 0;
}

/*
 * RFC 5258 section 6, RFC 5819 section 6, RFC 6154 section 6:
 *   list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
 *          [SP list-return-opts]
 *   list-select-opts = "(" [(*(list-select-mod-opt SP) list-select-base-opt
 *                      *(SP list-select-opt)) / (list-select-independent-opt
 *                      *(SP list-select-independent-opt))] ")"
 *   list-select-base-opt = "SUBSCRIBED"; list-select-mod-opt = "RECURSIVEMATCH"
 *   list-select-independent-opt =/ "SPECIAL-USE"
 *   list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
 *   return-option = "SUBSCRIBED" / "CHILDREN" / status-option / "SPECIAL-USE"
 *   status-option = "STATUS" SP "(" status-att *(SP status-att) ")"
 */
int imk__build_list(imk_session *s, imk_op *op, const char *reference, const char *pattern,
                    const imk_list_params *p, char *err, size_t errlen)
{
    imk_command *cmd = imk_op_args(op);
    unsigned flags = p != NULL ? p->flags : 0;
    const char *status_items = p != NULL ? p->status_items : NULL;
    unsigned select =
        flags & (IMK_LIST_SUBSCRIBED | IMK_LIST_SPECIAL_USE | IMK_LIST_RECURSIVEMATCH);
    unsigned ret = flags & (IMK_LIST_RETURN_SPECIAL_USE | IMK_LIST_RETURN_CHILDREN);
    int rc = 0;

    if (pattern == NULL)
        return fail(err, errlen, IMK_EINVAL, "LIST: the pattern is NULL (\"*\" lists everything)");
    if (flags & ~(IMK_LIST_SUBSCRIBED | IMK_LIST_SPECIAL_USE | IMK_LIST_RECURSIVEMATCH |
                  IMK_LIST_RETURN_SPECIAL_USE | IMK_LIST_RETURN_CHILDREN))
        return fail(err, errlen, IMK_EINVAL, "LIST: unknown bits 0x%x in params->flags",
                    flags & ~0x1fu);
    if ((flags & IMK_LIST_RECURSIVEMATCH) && !(flags & IMK_LIST_SUBSCRIBED))
        return fail(err, errlen, IMK_EINVAL,
                    "LIST: RECURSIVEMATCH needs SUBSCRIBED as well (RFC 5258 section 3.1)");
    if ((select || ret || status_items != NULL) &&
        (rc = need_cap(s, "LIST-EXTENDED", 1,
                       "use a plain LIST (params NULL), or LSUB for subscribed mailboxes", err,
                       errlen)) < 0)
        return rc;
    if ((flags & (IMK_LIST_SPECIAL_USE | IMK_LIST_RETURN_SPECIAL_USE)) &&
        (rc = need_cap(s, "SPECIAL-USE", 0,
                       "list every mailbox and look for special-use attributes (\\Sent, \\Trash) "
                       "yourself",
                       err, errlen)) < 0)
        return rc;
    if (status_items != NULL &&
        (rc = need_cap(s, "LIST-STATUS", 1, "ask for STATUS separately", err, errlen)) < 0)
        return rc;

    if (select) {
        if ((rc = list_begin(op, err, errlen)) < 0 ||
            ((flags & IMK_LIST_SUBSCRIBED) &&
             (rc = atom(op, "SUBSCRIBED", "keyword", err, errlen)) < 0) ||
            ((flags & IMK_LIST_RECURSIVEMATCH) &&
             (rc = atom(op, "RECURSIVEMATCH", "keyword", err, errlen)) < 0) ||
            ((flags & IMK_LIST_SPECIAL_USE) &&
             (rc = atom(op, "SPECIAL-USE", "keyword", err, errlen)) < 0) ||
            (rc = list_end(op, err, errlen)) < 0)
            return rc;
    }
    if ((rc = mailbox_arg(op, reference != NULL ? reference : "", "reference", err, errlen)) < 0)
        return rc;
    if ((rc = imk_command_list_mailbox(cmd, pattern, strlen(pattern))) < 0)
        return arg_failed(op, rc, "pattern", err, errlen);
    if (!ret && status_items == NULL)
        return 0;
    if ((rc = atom(op, "RETURN", "keyword", err, errlen)) < 0 ||
        (rc = list_begin(op, err, errlen)) < 0 ||
        ((flags & IMK_LIST_RETURN_CHILDREN) &&
         (rc = atom(op, "CHILDREN", "keyword", err, errlen)) < 0) ||
        ((flags & IMK_LIST_RETURN_SPECIAL_USE) &&
         (rc = atom(op, "SPECIAL-USE", "keyword", err, errlen)) < 0))
        return rc;
    if (status_items != NULL &&
        ((rc = atom(op, "STATUS", "keyword", err, errlen)) < 0 ||
         (rc = atom_list(s, op, status_items, "status items", check_status_item, err, errlen)) < 0))
        return rc;
    return list_end(op, err, errlen);
}

/* RFC 9051 section 9:  status = "STATUS" SP mailbox SP "(" status-att
 * *(SP status-att) ")" */
int imk__build_status(imk_session *s, imk_op *op, const char *mailbox, const char *items, char *err,
                      size_t errlen)
{
    int rc = op_mailbox(op, mailbox, err, errlen);
    if (rc == 0 && items == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "STATUS: items is NULL (for example \"MESSAGES UIDNEXT UIDVALIDITY UNSEEN\")");
    if (rc == 0)
        rc = atom_list(s, op, items, "status items", check_status_item, err, errlen);
    return rc;
}

/* CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT mailbox
 * (RFC 9051 section 9, RFC 9208 section 4.1.2). */
int imk__build_mailbox(imk_session *s, imk_op *op, const char *mailbox, char *err, size_t errlen)
{
    int rc;
    if (imk_op_kind(op) == IMK_CMD_GETQUOTAROOT &&
        (rc = need_cap(s, "QUOTA", 0, "the server has no quota information to give", err, errlen)) <
            0)
        return rc;
    return mailbox_arg(op, mailbox, "mailbox name", err, errlen);
}

/* rename = "RENAME" SP mailbox SP mailbox */
int imk__build_rename(imk_session *s, imk_op *op, const char *from, const char *to, char *err,
                      size_t errlen)
{
    (void)s;
    int rc = mailbox_arg(op, from, "the old name", err, errlen);
    if (rc == 0)
        rc = mailbox_arg(op, to, "the new name", err, errlen);
    return rc;
}

/* known-uids, known-sequence-set, known-uid-set (RFC 7162 section 3.2.5.2):
 * sequence sets where "*" is not allowed. */
static int known_set(imk_op *op, const char *set, const char *what, char *err, size_t errlen)
{
    if (strchr(set, '*') != NULL || strchr(set, '$') != NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "SELECT: %s may not hold '*' or '$' (RFC 7162 section 3.2.5.2): name the "
                    "numbers",
                    what);
    return seqset(op, set, what, err, errlen);
}

/*
 * RFC 4466 section 2.1, RFC 7162 sections 3.1.8 and 3.2.5.2:
 *   select = "SELECT" SP mailbox [select-params]
 *   select-params = SP "(" select-param *(SP select-param) ")"
 *   select-param =/ "CONDSTORE"
 *   select-param =/ "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
 *                   [SP known-uids] [SP seq-match-data] ")"
 *   seq-match-data = "(" known-sequence-set SP known-uid-set ")"
 * The op's kind (SELECT or EXAMINE) was chosen by the caller from
 * p->readonly.
 */
int imk__build_select(imk_session *s, imk_op *op, const char *mailbox, const imk_select_params *p,
                      char *err, size_t errlen)
{
    if (p != NULL && p->readonly && imk_op_kind(op) == IMK_CMD_SELECT)
        return fail(err, errlen, IMK_EINVAL,
                    "SELECT: params->readonly asks for EXAMINE but the op was begun as SELECT");
    int rc = op_mailbox(op, mailbox, err, errlen);
    if (rc < 0 || p == NULL)
        return rc;
    int qresync = p->qresync_uidvalidity != 0;
    if (!qresync && (p->qresync_known_uids != NULL || p->qresync_seq_match != NULL ||
                     p->qresync_uid_match != NULL || p->qresync_modseq != 0))
        return fail(err, errlen, IMK_EINVAL,
                    "%s: QRESYNC parameters are set but qresync_uidvalidity is 0: give the "
                    "mailbox's UIDVALIDITY too",
                    verb(op));
    if ((p->qresync_seq_match == NULL) != (p->qresync_uid_match == NULL))
        return fail(err, errlen, IMK_EINVAL,
                    "%s: qresync_seq_match and qresync_uid_match go together: set both or neither",
                    verb(op));
    if (!p->condstore && !qresync)
        return 0;
    if (p->condstore &&
        (rc = need_cap(s, "CONDSTORE", 0, "select without params->condstore", err, errlen)) < 0)
        return rc;
    if (qresync) {
        if (!imk_session_is_enabled(s, "QRESYNC"))
            return fail(err, errlen, IMK_ESTATE,
                        "%s: QRESYNC parameters need QRESYNC enabled first: call imk_conn_enable() "
                        "with \"QRESYNC\" (the server must offer it)",
                        verb(op));
        if (p->qresync_modseq == 0)
            return fail(err, errlen, IMK_EINVAL,
                        "%s: qresync_modseq is 0; it must be the HIGHESTMODSEQ last seen "
                        "(1 or more, RFC 7162 section 3.2.5.2)",
                        verb(op));
    }
    if ((rc = list_begin(op, err, errlen)) < 0 ||
        (p->condstore && (rc = atom(op, "CONDSTORE", "keyword", err, errlen)) < 0))
        return rc;
    if (qresync) {
        if ((rc = atom(op, "QRESYNC", "keyword", err, errlen)) < 0 ||
            (rc = list_begin(op, err, errlen)) < 0 ||
            (rc = number(op, p->qresync_uidvalidity, "qresync_uidvalidity", err, errlen)) < 0 ||
            (rc = number(op, p->qresync_modseq, "qresync_modseq", err, errlen)) < 0)
            return rc;
        if (p->qresync_known_uids != NULL &&
            (rc = known_set(op, p->qresync_known_uids, "qresync_known_uids", err, errlen)) < 0)
            return rc;
        if (p->qresync_seq_match != NULL &&
            ((rc = list_begin(op, err, errlen)) < 0 ||
             (rc = known_set(op, p->qresync_seq_match, "qresync_seq_match", err, errlen)) < 0 ||
             (rc = known_set(op, p->qresync_uid_match, "qresync_uid_match", err, errlen)) < 0 ||
             (rc = list_end(op, err, errlen)) < 0))
            return rc;
        if ((rc = list_end(op, err, errlen)) < 0)
            return rc;
    }
    return list_end(op, err, errlen);
}

/* ------------------------------------------------------------------ */
/* APPEND                                                              */
/* ------------------------------------------------------------------ */

/* A message of size 0 is inlined too: an empty literal has nothing to
 * stream, and the core pairs streamed literals with the messages for
 * which this returns 0, so the two must agree. */
int imk__append_inline(const imk_append_msg *m)
{
    return m != NULL && (m->size == 0 || (m->data != NULL && m->size <= APPEND_INLINE_MAX));
}

/* The date-time of APPEND: parsed (leniently, util/datetime.c) and written
 * again in the canonical form by the encoder. */
static int append_date(imk_op *op, const char *text, char *err, size_t errlen)
{
    imk__datetime dt;
    if (imk__datetime_parse(text, strlen(text), &dt) < 0)
        return fail(err, errlen, IMK_EINVAL,
                    "APPEND: internaldate is not a date-time like \"01-Jan-2026 10:00:00 "
                    "+0000\" (day-month-year hours:minutes:seconds zone)");
    int rc = imk_command_datetime(imk_op_args(op), dt.year, dt.month, dt.day, dt.hour, dt.minute,
                                  dt.second, dt.zone_minutes);
    return rc < 0 ? arg_failed(op, rc, "internaldate", err, errlen) : 0;
}

/*
 * RFC 9051 section 9, RFC 3502 section 6, RFC 4466 section 2.3, RFC 3516
 * section 4.4:
 *   append = "APPEND" SP mailbox 1*append-message
 *   append-message = append-opts SP append-data
 *   append-opts = [SP flag-list] [SP date-time] *(SP append-ext)
 *   append-data = literal / literal8 / append-data-ext
 * More than one append-message is MULTIAPPEND (RFC 3502); literal8 needs
 * BINARY.
 */
int imk__build_append(imk_session *s, imk_op *op, const char *mailbox, const imk_append_msg *m,
                      int more, char *err, size_t errlen)
{
    imk_command *cmd = imk_op_args(op);
    int rc;
    if (m == NULL)
        return fail(err, errlen, IMK_EINVAL, "APPEND: the message is NULL");
    if (more && (rc = need_cap(s, "MULTIAPPEND", 0, "append one message per APPEND command", err,
                               errlen)) < 0)
        return rc;
    if (m->binary && (rc = need_cap(s, "BINARY", 0,
                                    "send the message without NUL bytes (encode binary parts in "
                                    "base64) and binary = 0",
                                    err, errlen)) < 0)
        return rc;
    int inline_ = imk__append_inline(m);
    if (!inline_ && m->data == NULL && m->read == NULL && m->fd < 0)
        return fail(err, errlen, IMK_EINVAL,
                    "APPEND: the message has no content: set data, fd (>= 0) or read");
    if (!more && (rc = mailbox_arg(op, mailbox, "mailbox name", err, errlen)) < 0)
        return rc;
    if (m->n_flags > 0 && (rc = flag_args(op, m->flags, m->n_flags, err, errlen)) < 0)
        return rc;
    if (m->internaldate != NULL && (rc = append_date(op, m->internaldate, err, errlen)) < 0)
        return rc;
    if (inline_)
        rc = imk_command_literal(cmd, m->size > 0 ? m->data : "", (size_t)m->size, m->binary);
    else
        rc = imk_command_literal_stream(cmd, m->size, m->binary);
    return rc < 0 ? arg_failed(op, rc, "message content", err, errlen) : 0;
}

/* ------------------------------------------------------------------ */
/* SEARCH, SORT, THREAD                                                */
/* ------------------------------------------------------------------ */

/* The criteria, after whatever the caller wrote before them (RETURN,
 * CHARSET, the sort keys). */
static int criteria_args(imk_session *s, imk_op *op, const char *criteria, const char *const *args,
                         size_t n_args, char *err, size_t errlen)
{
    int rc = imk__criteria(imk_op_args(op), criteria, args, n_args,
                           imk_session_is_enabled(s, "UTF8=ACCEPT"), NULL, err, errlen);
    return rc < 0 ? prefix_verb(op, rc, err, errlen) : 0;
}

/* Dry run: are the criteria valid, and is an arg outside ASCII? */
static int criteria_check(imk_op *op, const char *criteria, const char *const *args, size_t n_args,
                          int *non_ascii, char *err, size_t errlen)
{
    int rc = imk__criteria(NULL, criteria, args, n_args, 0, non_ascii, err, errlen);
    return rc < 0 ? prefix_verb(op, rc, err, errlen) : 0;
}

/*
 * RFC 9051 section 9, RFC 4731 section 3:
 *   search = "SEARCH" [search-return-opts] SP search-program
 *   search-return-opts = SP "RETURN" SP "(" [search-return-opt
 *                        *(SP search-return-opt)] ")"
 *   search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)
 * RETURN must come first: that is how the session recognises a command
 * answered by ESEARCH with its tag (session.c, uses_return()).
 */
int imk__build_search(imk_session *s, imk_op *op, const char *criteria, const char *const *args,
                      size_t n_args, char *err, size_t errlen)
{
    int non_ascii = 0;
    int rc = criteria_check(op, criteria, args, n_args, &non_ascii, err, errlen);
    if (rc < 0)
        return rc;
    int utf8 = imk_session_is_enabled(s, "UTF8=ACCEPT");
    if (offers(s, "ESEARCH", 0) || imk_session_is_enabled(s, "IMAP4rev2")) {
        if ((rc = atom(op, "RETURN", "keyword", err, errlen)) < 0 ||
            (rc = list_begin(op, err, errlen)) < 0 ||
            (rc = atom(op, "ALL", "keyword", err, errlen)) < 0 ||
            (rc = list_end(op, err, errlen)) < 0)
            return rc;
    }
    /* RFC 6855 section 3: no CHARSET once UTF8=ACCEPT is enabled. */
    if (non_ascii && !utf8 &&
        ((rc = atom(op, "CHARSET", "keyword", err, errlen)) < 0 ||
         (rc = atom(op, "UTF-8", "keyword", err, errlen)) < 0))
        return rc;
    return criteria_args(s, op, criteria, args, n_args, err, errlen);
}

/* The charset SORT and THREAD require (RFC 5256 section 3: US-ASCII and
 * UTF-8 must be implemented). */
static int required_charset(imk_op *op, int non_ascii, char *err, size_t errlen)
{
    return atom(op, non_ascii ? "UTF-8" : "US-ASCII", "keyword", err, errlen);
}

static int check_sort_key(const imk_session *s, imk_op *op, const char *word, char *err,
                          size_t errlen)
{
    imk_str w = {word, strlen(word)};
    if ((imk__str_ieq(w, "DISPLAYFROM") || imk__str_ieq(w, "DISPLAYTO")) &&
        !offers(s, "SORT=DISPLAY", 0)) {
        return prefix_verb(
            op, need_cap(s, "SORT=DISPLAY", 0, "sort by FROM or TO instead", err, errlen), err,
            errlen);
    }
    return 0;
}

/*
 * RFC 5256 section 5:
 *   sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
 *   sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
 *   sort-criterion = ["REVERSE" SP] sort-key
 *   search-criteria = charset 1*(SP search-key)
 */
int imk__build_sort(imk_session *s, imk_op *op, const char *keys, const char *criteria,
                    const char *const *args, size_t n_args, char *err, size_t errlen)
{
    int non_ascii = 0;
    int rc = need_cap(s, "SORT", 0, "SEARCH and sort the messages yourself", err, errlen);
    if (rc < 0)
        return rc;
    if (keys == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: the sort keys are NULL (for example \"REVERSE "
                    "DATE\")",
                    verb(op));
    /* REVERSE qualifies the key after it: it cannot end the list or
     * repeat. */
    const char *p = keys;
    int after_reverse = 0;
    while (*p != '\0') {
        while (*p == ' ' || *p == '(' || *p == ')')
            p++;
        const char *w = p;
        while (*p != '\0' && *p != ' ' && *p != ')')
            p++;
        if (p == w)
            continue;
        int is_rev = imk__str_ieq((imk_str){w, (size_t)(p - w)}, "REVERSE");
        if (is_rev && after_reverse)
            return fail(err, errlen, IMK_EINVAL, "%s: REVERSE twice in a row in the sort keys",
                        verb(op));
        after_reverse = is_rev;
    }
    if (after_reverse)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: the sort keys end with REVERSE: name the key it reverses (REVERSE DATE)",
                    verb(op));
    if ((rc = criteria_check(op, criteria, args, n_args, &non_ascii, err, errlen)) < 0 ||
        (rc = atom_list(s, op, keys, "sort keys", check_sort_key, err, errlen)) < 0 ||
        (rc = required_charset(op, non_ascii, err, errlen)) < 0)
        return rc;
    return criteria_args(s, op, criteria, args, n_args, err, errlen);
}

/*
 * RFC 5256 section 5:
 *   thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
 *   thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext
 * Each algorithm has its capability, THREAD=<alg>.
 */
int imk__build_thread(imk_session *s, imk_op *op, const char *algorithm, const char *criteria,
                      const char *const *args, size_t n_args, char *err, size_t errlen)
{
    int non_ascii = 0;
    if (algorithm == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: the algorithm is NULL (REFERENCES or ORDEREDSUBJECT)", verb(op));
    /* An atom of letters, digits and "-" (the registered names are), so
     * the capability name below is one, and so is any message showing it. */
    size_t alen = strlen(algorithm);
    if (alen == 0 || alen > 64 ||
        strspn(algorithm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "abcdefghijklmnopqrstuvwxyz0123456789-_.") != alen)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: the algorithm must be a name such as REFERENCES or ORDEREDSUBJECT",
                    verb(op));
    char cap[80];
    snprintf(cap, sizeof(cap), "THREAD=%s", algorithm);
    int rc =
        need_cap(s, cap, 0, "pick an algorithm the server lists as THREAD=<name>", err, errlen);
    if (rc < 0 || (rc = criteria_check(op, criteria, args, n_args, &non_ascii, err, errlen)) < 0 ||
        (rc = atom(op, algorithm, "algorithm", err, errlen)) < 0 ||
        (rc = required_charset(op, non_ascii, err, errlen)) < 0)
        return rc;
    return criteria_args(s, op, criteria, args, n_args, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/*
 * RFC 9051 section 9, RFC 7162 section 3.1.3:
 *   store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
 *   store-modifier =/ "UNCHANGEDSINCE" SP mod-sequence-valzer
 *   store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
 *                     (flag-list / (flag *(SP flag)))
 */
int imk__build_store(imk_session *s, imk_op *op, const char *set, const char *action,
                     const char *const *flags, size_t n_flags, uint64_t unchangedsince, char *err,
                     size_t errlen)
{
    static const char *const actions[] = {"FLAGS",        "+FLAGS",        "-FLAGS",
                                          "FLAGS.SILENT", "+FLAGS.SILENT", "-FLAGS.SILENT"};
    const char *canonical = NULL;
    if (action != NULL)
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
            if (imk__str_ieq((imk_str){action, strlen(action)}, actions[i]))
                canonical = actions[i];
    if (canonical == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: the action must be FLAGS, +FLAGS or -FLAGS, optionally with .SILENT",
                    verb(op));
    int rc = 0;
    if (unchangedsince > 0 &&
        (rc = need_cap(s, "CONDSTORE", 0, "store without unchangedsince (pass 0)", err, errlen)) <
            0)
        return rc;
    if ((rc = op_set(op, set, err, errlen)) < 0)
        return rc;
    if (unchangedsince > 0 &&
        ((rc = list_begin(op, err, errlen)) < 0 ||
         (rc = atom(op, "UNCHANGEDSINCE", "keyword", err, errlen)) < 0 ||
         (rc = number(op, unchangedsince, "unchangedsince", err, errlen)) < 0 ||
         (rc = list_end(op, err, errlen)) < 0))
        return rc;
    if ((rc = atom(op, canonical, "keyword", err, errlen)) < 0)
        return rc;
    return flag_args(op, flags, n_flags, err, errlen);
}

/* copy = "COPY" SP sequence-set SP mailbox; move = "MOVE" SP sequence-set
 * SP mailbox (RFC 6851 section 3). */
int imk__build_copy(imk_session *s, imk_op *op, const char *set, const char *mailbox, char *err,
                    size_t errlen)
{
    imk_command_kind k = imk_op_kind(op);
    int rc = 0;
    if ((k == IMK_CMD_MOVE || k == IMK_CMD_UID_MOVE) &&
        (rc =
             need_cap(s, "MOVE", 1, "copy, mark \\Deleted and expunge instead (imk_conn_move does)",
                      err, errlen)) < 0)
        return rc;
    if ((rc = op_set(op, set, err, errlen)) < 0)
        return rc;
    return mailbox_arg(op, mailbox, "mailbox name", err, errlen);
}

/* RFC 4315 section 2.1:  uid-expunge = "UID" SP "EXPUNGE" SP sequence-set */
int imk__build_uid_expunge(imk_session *s, imk_op *op, const char *set, char *err, size_t errlen)
{
    int rc = need_cap(s, "UIDPLUS", 1,
                      "a plain EXPUNGE would remove every message marked \\Deleted, not only "
                      "these",
                      err, errlen);
    if (rc == 0)
        rc = op_set(op, set, err, errlen);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Quota and metadata                                                  */
/* ------------------------------------------------------------------ */

/* RFC 9208 section 4.1.1:  getquota = "GETQUOTA" SP quota-root-name;
 * quota-root-name = astring */
int imk__build_getquota(imk_session *s, imk_op *op, const char *root, char *err, size_t errlen)
{
    int rc = need_cap(s, "QUOTA", 0, "the server has no quota information to give", err, errlen);
    if (rc < 0)
        return rc;
    if (root == NULL)
        root = "";
    if ((rc = imk_command_astring(imk_op_args(op), root, strlen(root))) < 0)
        return arg_failed(op, rc, "quota root", err, errlen);
    return 0;
}

/* METADATA for a mailbox; the server's own entries ("") also with
 * METADATA-SERVER (RFC 5464 section 1). */
static int need_metadata(const imk_session *s, const char *mailbox, char *err, size_t errlen)
{
    if (mailbox[0] == '\0' && offers(s, "METADATA-SERVER", 0))
        return 0;
    return need_cap(s, "METADATA", 0,
                    mailbox[0] == '\0' ? "the server keeps no metadata"
                                       : "the server keeps no per-mailbox metadata",
                    err, errlen);
}

/* entry = astring, "MUST NOT contain "*" or "%"" (RFC 5464 section 5) */
static int entry_arg(imk_op *op, const char *entry, size_t i, char *err, size_t errlen)
{
    if (entry == NULL)
        return fail(err, errlen, IMK_EINVAL, "%s: entry %zu is NULL", verb(op), i);
    if (strpbrk(entry, "*%") != NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: entry %zu holds '*' or '%%', which entry names may not (RFC 5464 "
                    "section 5): ask for the parent with a depth instead",
                    verb(op), i);
    int rc = imk_command_astring(imk_op_args(op), entry, strlen(entry));
    return rc < 0 ? arg_failed(op, rc, "entry", err, errlen) : 0;
}

/* What GETMETADATA and SETMETADATA both require: a mailbox name ("" for
 * the server), the METADATA capability that covers it, and some entries. */
static int metadata_checks(imk_session *s, imk_op *op, const char *mailbox,
                           const char *const *entries, size_t n, char *err, size_t errlen)
{
    int rc = need_str(op, mailbox, "the mailbox name (\"\" for the server)", err, errlen);
    if (rc < 0 || (rc = need_metadata(s, mailbox, err, errlen)) < 0)
        return rc;
    if (n == 0 || entries == NULL)
        return fail(err, errlen, IMK_EINVAL,
                    "%s: name at least one entry (for example \"/shared/comment\")", verb(op));
    return 0;
}

/*
 * RFC 5464 section 5:
 *   getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
 *   getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
 *   maxsize-opt = "MAXSIZE" SP number
 *   scope-opt = "DEPTH" SP ("0" / "1" / "infinity")
 *   entries = entry / "(" entry *(SP entry) ")"
 */
int imk__build_getmetadata(imk_session *s, imk_op *op, const char *mailbox,
                           const char *const *entries, size_t n, uint64_t maxsize, int depth,
                           char *err, size_t errlen)
{
    int rc = metadata_checks(s, op, mailbox, entries, n, err, errlen);
    if (rc < 0)
        return rc;
    if (depth != 0 && depth != 1 && depth != -1)
        return fail(err, errlen, IMK_EINVAL,
                    "GETMETADATA: depth is %d; it must be 0 (omitted), 1 or -1 (infinity)", depth);
    if (maxsize > UINT32_MAX)
        return fail(err, errlen, IMK_EINVAL,
                    "GETMETADATA: maxsize is above 4294967295, the largest the protocol takes");
    if (maxsize > 0 || depth != 0) {
        if ((rc = list_begin(op, err, errlen)) < 0 ||
            (maxsize > 0 && ((rc = atom(op, "MAXSIZE", "keyword", err, errlen)) < 0 ||
                             (rc = number(op, maxsize, "maxsize", err, errlen)) < 0)) ||
            (depth != 0 &&
             ((rc = atom(op, "DEPTH", "keyword", err, errlen)) < 0 ||
              (rc = atom(op, depth == 1 ? "1" : "infinity", "keyword", err, errlen)) < 0)) ||
            (rc = list_end(op, err, errlen)) < 0)
            return rc;
    }
    if ((rc = mailbox_arg(op, mailbox, "mailbox name", err, errlen)) < 0)
        return rc;
    if (n > 1 && (rc = list_begin(op, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = entry_arg(op, entries[i], i, err, errlen)) < 0)
            return rc;
    return n > 1 ? list_end(op, err, errlen) : 0;
}

/*
 * RFC 5464 section 5:
 *   setmetadata = "SETMETADATA" SP mailbox SP entry-values
 *   entry-values = "(" entry-value *(SP entry-value) ")"
 *   entry-value = entry SP value
 *   value = nstring / literal8
 * A NULL value (or a NULL values array) is NIL: the entry is removed.
 */
int imk__build_setmetadata(imk_session *s, imk_op *op, const char *mailbox,
                           const char *const *entries, const char *const *values, size_t n,
                           char *err, size_t errlen)
{
    int rc = metadata_checks(s, op, mailbox, entries, n, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = mailbox_arg(op, mailbox, "mailbox name", err, errlen)) < 0 ||
        (rc = list_begin(op, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *v = values != NULL ? values[i] : NULL;
        if ((rc = entry_arg(op, entries[i], i, err, errlen)) < 0)
            return rc;
        if ((rc = imk_command_nstring(imk_op_args(op), v, v != NULL ? strlen(v) : 0)) < 0)
            return arg_failed(op, rc, "value", err, errlen);
    }
    return list_end(op, err, errlen);
}
