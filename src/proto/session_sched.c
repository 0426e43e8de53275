/* SPDX-License-Identifier: MIT */
/*
 * The command table and the pipelining scheduler (DESIGN.md section 5).
 *
 * Commands are queued in submission order and leave the queue in that
 * order: the scheduler looks at the head only, so a command never overtakes
 * an earlier one (their effects on the mailbox must happen in the order the
 * application asked for). The head goes on the wire as soon as every rule
 * below allows it with respect to each command already in flight:
 *
 *   1. One command on the wire at a time. A command whose segments are not
 *      all in the output (a synchronizing literal waiting for "+", a literal
 *      the caller streams) blocks every later one: "any command continuation
 *      request responses and command continuations MUST be negotiated before
 *      any subsequent command is initiated" (RFC 9051 section 5.5).
 *
 *   2. Barriers: SELECT, EXAMINE, CLOSE, UNSELECT, STARTTLS, AUTHENTICATE,
 *      LOGIN, COMPRESS, ENABLE, IDLE and LOGOUT change what every later
 *      command means (the mailbox, the transport, the capabilities, the
 *      connection state) or take the connection over (IDLE, AUTHENTICATE's
 *      exchange). They wait until nothing is in flight, and nothing starts
 *      while one is in flight.
 *
 *   3. RFC 9051 section 5.5: servers may send EXPUNGE during any command
 *      other than FETCH, STORE and SEARCH, and during every UID command,
 *      and an EXPUNGE shifts sequence numbers under a command already sent.
 *      So a command that uses sequence numbers (FETCH, STORE, COPY, MOVE,
 *      SEARCH, SORT, THREAD, and UID SEARCH, UID SORT and UID THREAD whose
 *      criteria hold a sequence set: "UID SEARCH + UID SEARCH may be valid
 *      or invalid ... depending upon whether or not the second UID SEARCH
 *      contains message sequence numbers") starts only when every command
 *      in flight is a FETCH, STORE or SEARCH.
 *
 *   4. Attribution (DESIGN.md section 1 rule 5): two commands whose untagged
 *      data could be confused are never in flight together. Which command
 *      kinds claim which responses is the response table of
 *      session_dispatch.c; two commands conflict when they claim a common
 *      response kind, except that
 *        - FETCH data (FETCH, UID FETCH, STORE, UID STORE) is attributed by
 *          message set, so two of them conflict only when their sets might
 *          overlap: UID sets are compared with UID sets and sequence sets
 *          with sequence sets, range by range; a UID set against a sequence
 *          set, "*", "$" or a missing set overlaps everything;
 *        - STATUS data names its mailbox: two STATUS commands conflict only
 *          for the same mailbox (or when one mailbox is unknown);
 *        - ESEARCH carries its command's tag: a SEARCH or SORT with RETURN
 *          claims only ESEARCH (and a stray SEARCH when it is the only
 *          search in flight, for servers that answer RETURN with SEARCH,
 *          QUIRKS Q47), so several of them run together; a plain SEARCH
 *          (SORT) never runs beside another SEARCH (SORT), with RETURN or
 *          without, since a stray SEARCH line could then be either's.
 *      Thus independent UID FETCHes, UID STOREs of disjoint sets and STATUS
 *      commands on different mailboxes all go out at once.
 *
 *   5. Nothing is sent before the greeting, after LOGOUT was sent or a BYE
 *      arrived, nor while a STARTTLS handshake is pending.
 *
 * The output is bounded by max_output: the scheduler copies segments into
 * it only as far as they fit, and continues when imk_session_sent() made
 * room. An op counts as in flight from its first byte in the output, since
 * the server cannot answer bytes it has not received.
 */
#include "proto/session_int.h"

#include <stdio.h>
#include <string.h>

#define ST_NA (1u << IMK_STATE_NOT_AUTHENTICATED)
#define ST_AU (1u << IMK_STATE_AUTHENTICATED)
#define ST_SE (1u << IMK_STATE_SELECTED)
#define ST_ANY (ST_NA | ST_AU | ST_SE)

#define B IMK__CF_BARRIER
#define SQ IMK__CF_SEQ
#define U IMK__CF_UID
#define SAFE IMK__CF_SEQSAFE
#define F IMK__CF_FETCH
#define SR IMK__CF_SEARCH
#define STT IMK__CF_STATE

/* One row per command kind: scheduling flags and the connection states it
 * is valid in (RFC 9051 section 6 and the extensions' RFCs). */
static const struct command_row {
    unsigned flags;
    unsigned states;
} COMMANDS[IMK_CMD_COUNT_] = {
    [IMK_CMD_CAPABILITY] = {0, ST_ANY},
    /* NOOP may bring EXPUNGEs: not SEQSAFE ("FETCH + NOOP + STORE" is invalid) */
    [IMK_CMD_NOOP] = {0, ST_ANY},
    [IMK_CMD_LOGOUT] = {B | STT, ST_ANY},
    [IMK_CMD_STARTTLS] = {B, ST_NA},
    [IMK_CMD_AUTHENTICATE] = {B | STT, ST_NA},
    [IMK_CMD_LOGIN] = {B | STT, ST_NA},
    [IMK_CMD_ENABLE] = {B, ST_AU}, /* RFC 5161 section 3.1: authenticated state only */
    [IMK_CMD_ID] = {0, ST_ANY},    /* RFC 2971: any state */
    [IMK_CMD_COMPRESS] = {B, ST_AU | ST_SE},
    [IMK_CMD_SELECT] = {B | STT, ST_AU | ST_SE},
    [IMK_CMD_EXAMINE] = {B | STT, ST_AU | ST_SE},
    [IMK_CMD_CREATE] = {0, ST_AU | ST_SE},
    [IMK_CMD_DELETE] = {0, ST_AU | ST_SE},
    [IMK_CMD_RENAME] = {0, ST_AU | ST_SE},
    [IMK_CMD_SUBSCRIBE] = {0, ST_AU | ST_SE},
    [IMK_CMD_UNSUBSCRIBE] = {0, ST_AU | ST_SE},
    [IMK_CMD_LIST] = {0, ST_AU | ST_SE},
    [IMK_CMD_LSUB] = {0, ST_AU | ST_SE},
    [IMK_CMD_NAMESPACE] = {0, ST_AU | ST_SE},
    [IMK_CMD_STATUS] = {0, ST_AU | ST_SE},
    [IMK_CMD_APPEND] = {0, ST_AU | ST_SE},
    [IMK_CMD_IDLE] = {B, ST_AU | ST_SE},
    [IMK_CMD_NOTIFY] = {0, ST_AU | ST_SE},
    [IMK_CMD_CHECK] = {0, ST_SE},
    [IMK_CMD_CLOSE] = {B | STT, ST_SE},
    [IMK_CMD_UNSELECT] = {B | STT, ST_SE},
    [IMK_CMD_EXPUNGE] = {0, ST_SE},
    [IMK_CMD_UID_EXPUNGE] = {U, ST_SE},
    [IMK_CMD_SEARCH] = {SQ | SAFE | SR, ST_SE},
    [IMK_CMD_UID_SEARCH] = {U | SQ | SR, ST_SE}, /* SQ: unless its criteria have no seq set */
    [IMK_CMD_FETCH] = {SQ | SAFE | F, ST_SE},
    [IMK_CMD_UID_FETCH] = {U | F, ST_SE},
    [IMK_CMD_STORE] = {SQ | SAFE | F, ST_SE},
    [IMK_CMD_UID_STORE] = {U | F, ST_SE},
    [IMK_CMD_COPY] = {SQ, ST_SE},
    [IMK_CMD_UID_COPY] = {U, ST_SE},
    [IMK_CMD_MOVE] = {SQ, ST_SE},
    [IMK_CMD_UID_MOVE] = {U, ST_SE},
    [IMK_CMD_SORT] = {SQ | SR, ST_SE},
    [IMK_CMD_UID_SORT] = {U | SQ | SR, ST_SE},
    [IMK_CMD_THREAD] = {SQ, ST_SE},
    [IMK_CMD_UID_THREAD] = {U | SQ, ST_SE},
    [IMK_CMD_GETQUOTA] = {0, ST_AU | ST_SE},
    [IMK_CMD_GETQUOTAROOT] = {0, ST_AU | ST_SE},
    [IMK_CMD_SETQUOTA] = {0, ST_AU | ST_SE},
    [IMK_CMD_GETMETADATA] = {0, ST_AU | ST_SE},
    [IMK_CMD_SETMETADATA] = {0, ST_AU | ST_SE},
    [IMK_CMD_GETACL] = {0, ST_AU | ST_SE},
    [IMK_CMD_SETACL] = {0, ST_AU | ST_SE},
    [IMK_CMD_DELETEACL] = {0, ST_AU | ST_SE},
    [IMK_CMD_LISTRIGHTS] = {0, ST_AU | ST_SE},
    [IMK_CMD_MYRIGHTS] = {0, ST_AU | ST_SE},
};

#undef B
#undef SQ
#undef U
#undef SAFE
#undef F
#undef SR
#undef STT

unsigned imk__session_cmd_flags(imk_command_kind kind)
{
    return (unsigned)kind < IMK_CMD_COUNT_ ? COMMANDS[kind].flags : 0;
}

static const char *state_name(imk_conn_state st)
{
    switch (st) {
    case IMK_STATE_GREETING:
        return "GREETING";
    case IMK_STATE_NOT_AUTHENTICATED:
        return "NOT_AUTHENTICATED";
    case IMK_STATE_AUTHENTICATED:
        return "AUTHENTICATED";
    case IMK_STATE_SELECTED:
        return "SELECTED";
    case IMK_STATE_LOGOUT:
        return "LOGOUT";
    }
    return "?";
}

int imk__session_check_state(imk_session *s, imk_command_kind kind, imk_conn_state state)
{
    const char *verb = imk_command_kind_verb(kind);
    if (state == IMK_STATE_LOGOUT) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s cannot be sent: the session is ending (state is LOGOUT: LOGOUT was sent or "
                 "the server said BYE); open a new connection",
                 verb);
        return IMK_ESTATE;
    }
    /* Before the greeting the state is unknown; commands of the
     * not-authenticated state are allowed (they wait for the greeting), and
     * with a preauthenticated tunnel those of the authenticated state. */
    imk_conn_state eff = state;
    if (eff == IMK_STATE_GREETING)
        eff = s->opts.preauth_tunnel ? IMK_STATE_AUTHENTICATED : IMK_STATE_NOT_AUTHENTICATED;
    unsigned allowed = COMMANDS[kind].states;
    if (allowed & (1u << eff))
        return 0;
    /* "state is X", or the state the queue leads to */
    char st[96];
    if (state == s->state)
        snprintf(st, sizeof(st), "state is %s", state_name(state));
    else
        snprintf(st, sizeof(st), "state will be %s after the commands queued before it",
                 state_name(state));
    if (allowed == ST_SE) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s needs a selected mailbox (%s): SELECT or EXAMINE one first", verb, st);
    } else if (allowed == ST_NA) {
        snprintf(s->errmsg, sizeof(s->errmsg), "%s is only valid before authentication (%s)", verb,
                 st);
    } else if (allowed == ST_AU) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s is only valid in the authenticated state with no mailbox selected (%s): "
                 "CLOSE or UNSELECT the mailbox first",
                 verb, st);
    } else {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "%s needs an authenticated session (%s): LOGIN or AUTHENTICATE first", verb, st);
    }
    return IMK_ESTATE;
}

/* The state after `kind` completes successfully. */
static imk_conn_state state_after(imk_command_kind kind, imk_conn_state st)
{
    switch (kind) {
    case IMK_CMD_LOGIN:
    case IMK_CMD_AUTHENTICATE:
        return IMK_STATE_AUTHENTICATED;
    case IMK_CMD_SELECT:
    case IMK_CMD_EXAMINE:
        return IMK_STATE_SELECTED;
    case IMK_CMD_CLOSE:
    case IMK_CMD_UNSELECT:
        return IMK_STATE_AUTHENTICATED;
    case IMK_CMD_LOGOUT:
        return IMK_STATE_LOGOUT;
    default:
        return st;
    }
}

static imk_conn_state fold(const imk__op_list *l, imk_conn_state st)
{
    for (const imk_op *op = l->head; op != NULL; op = op->next)
        if (COMMANDS[op->kind].flags & IMK__CF_STATE)
            st = state_after(op->kind, st);
    return st;
}

imk_conn_state imk__session_projected_state(const imk_session *s)
{
    imk_conn_state st = s->state;
    if (s->state_ops == 0 || st == IMK_STATE_LOGOUT)
        return st;
    if (st == IMK_STATE_GREETING)
        st = s->opts.preauth_tunnel ? IMK_STATE_AUTHENTICATED : IMK_STATE_NOT_AUTHENTICATED;
    st = fold(&s->inflight, st);
    return fold(&s->queue, st);
}

/* ---- conflicts ---- */

/* Ranges of two explicit sets intersect? Past a work bound the answer is
 * "maybe", which the scheduler treats as yes. */
static int sets_overlap(const imk__seqset *a, const imk__seqset *b)
{
    if ((uint64_t)a->count * b->count > 1000000u)
        return 1;
    for (size_t i = 0; i < a->count; i++) {
        uint32_t alo = a->ranges[i].first, ahi = a->ranges[i].last;
        for (size_t j = 0; j < b->count; j++) {
            uint32_t blo = b->ranges[j].first, bhi = b->ranges[j].last;
            if (alo <= bhi && blo <= ahi)
                return 1;
        }
    }
    return 0;
}

static int fetch_sets_conflict(const imk_op *a, const imk_op *b)
{
    if (a->set_any || b->set_any)
        return 1;
    unsigned ua = COMMANDS[a->kind].flags & IMK__CF_UID;
    unsigned ub = COMMANDS[b->kind].flags & IMK__CF_UID;
    if (ua != ub)
        return 1; /* a UID set against a sequence set: unknown mapping */
    return sets_overlap(&a->set, &b->set);
}

static int mailbox_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 1; /* unknown: might be the same */
    /* INBOX is case-insensitive (RFC 9051 section 5.1) */
    static const char inbox[] = "INBOX";
    size_t i = 0;
    for (; i < 5 && a[i] != '\0' && b[i] != '\0'; i++) {
        char ca = a[i] >= 'a' && a[i] <= 'z' ? (char)(a[i] - 32) : a[i];
        char cb = b[i] >= 'a' && b[i] <= 'z' ? (char)(b[i] - 32) : b[i];
        if (ca != inbox[i] || cb != inbox[i])
            break;
    }
    if (i == 5 && a[5] == '\0' && b[5] == '\0')
        return 1;
    return strcmp(a, b) == 0;
}

/* The response kinds the table lets `op`'s kind claim, as a bit mask. */
static uint32_t table_mask(const imk_op *op)
{
    uint32_t m = 0;
    for (int k = 0; k < IMK_KIND_COUNT_; k++)
        if (imk__session_claims(op->kind, (imk_response_kind)k))
            m |= 1u << k;
    return m;
}

#define SEARCH_BITS ((1u << IMK_KIND_SEARCH) | (1u << IMK_KIND_SORT))

/* The response kinds `op` claims for the conflict rule (rule 4 above). */
static uint32_t claim_mask(const imk_op *op)
{
    uint32_t m = table_mask(op);
    /* ESEARCH is matched by tag: never a conflict. */
    m &= ~(1u << IMK_KIND_ESEARCH);
    if (op->esearch)
        m &= ~SEARCH_BITS;
    /* Untagged OK (COPYUID during MOVE) is claimed only by MOVE, which also
     * claims EXPUNGE: the EXPUNGE bit decides. */
    m &= ~(1u << IMK_KIND_STATUS_RESPONSE);
    return m;
}

static int conflicts(const imk_op *a, const imk_op *b)
{
    /* A plain SEARCH (or SORT) takes the family's untagged SEARCH lines,
     * which a RETURN search answered by a server ignoring RETURN (QUIRKS
     * Q47) would send too: the two cannot share the wire. */
    if ((!a->esearch || !b->esearch) && (table_mask(a) & table_mask(b) & SEARCH_BITS))
        return 1;
    uint32_t common = claim_mask(a) & claim_mask(b);
    if (common & (1u << IMK_KIND_FETCH)) {
        if (fetch_sets_conflict(a, b))
            return 1;
        common &= ~(1u << IMK_KIND_FETCH);
    }
    if ((common & (1u << IMK_KIND_STATUS)) && a->kind == IMK_CMD_STATUS &&
        b->kind == IMK_CMD_STATUS) {
        if (mailbox_eq(a->mailbox, b->mailbox))
            return 1;
        common &= ~(1u << IMK_KIND_STATUS);
    }
    return common != 0;
}

/* May `op` (the head of the queue) go on the wire now? */
static int can_start(const imk_session *s, const imk_op *op)
{
    if (s->sending != NULL)
        return 0; /* rule 1 */
    if (s->state == IMK_STATE_GREETING || s->state == IMK_STATE_LOGOUT || s->bye_seen ||
        s->tls_pending || s->compress_pending || s->eof || s->fatal)
        return 0; /* rule 5 */
    unsigned flags = COMMANDS[op->kind].flags;
    if (s->inflight.count == 0)
        return 1;
    if (flags & IMK__CF_BARRIER)
        return 0; /* rule 2 */
    for (const imk_op *x = s->inflight.head; x != NULL; x = x->next) {
        unsigned xf = COMMANDS[x->kind].flags;
        if (xf & IMK__CF_BARRIER)
            return 0; /* rule 2 */
        if (op->uses_seq && !(xf & IMK__CF_SEQSAFE))
            return 0; /* rule 3 */
        if (conflicts(op, x))
            return 0; /* rule 4 */
    }
    return 1;
}

/* ---- sequence sets in search criteria ---- */

static int ieq(const char *p, size_t n, const char *word)
{
    size_t wn = strlen(word);
    if (n != wn)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i] >= 'a' && p[i] <= 'z' ? (char)(p[i] - 32) : p[i];
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* Keywords whose next argument is a number or a UID set, not a sequence
 * set (RFC 9051 section 9 search-key, RFC 7162 MODSEQ, RFC 5032 WITHIN). */
static int takes_number(const char *p, size_t n)
{
    static const char *const words[] = {"UID",     "LARGER", "SMALLER", "OLDER",
                                        "YOUNGER", "MODSEQ", "CHARSET", NULL};
    for (int i = 0; words[i] != NULL; i++)
        if (ieq(p, n, words[i]))
            return 1;
    return 0;
}

static int is_seqset_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strchr("0123456789:*,$", p[i]) == NULL)
            return 0;
    return 1;
}

/*
 * Does the criteria text of a UID SEARCH/SORT/THREAD hold a sequence set?
 * A token of digits, ":", "*", ",", "$" that is not the argument of a
 * keyword taking a number (LARGER 100, UID 1:5, MODSEQ ... 620162338) is
 * one. Quoted strings and literals are skipped. Wrong guesses can only be
 * "yes" (a numeric HEADER value, a RETURN (PARTIAL 1:10) range): the
 * command then waits, which is always safe.
 */
static int criteria_use_seq(const char *b, size_t len, size_t start)
{
    const char *prev = NULL;
    size_t prev_len = 0;
    size_t i = start;
    while (i < len) {
        char c = b[i];
        if (c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n') {
            i++;
            continue;
        }
        if (c == '"') {
            for (i++; i < len && b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
            i++;
            prev = NULL;
            prev_len = 0;
            continue;
        }
        size_t s = i;
        while (i < len && b[i] != ' ' && b[i] != '(' && b[i] != ')' && b[i] != '\r' && b[i] != '\n')
            i++;
        size_t n = i - s;
        if (b[s] == '{' || (n > 1 && b[s] == '~' && b[s + 1] == '{')) {
            /* a literal: {n} or {n+} then CRLF and n bytes */
            uint64_t lit = 0;
            for (size_t k = s + (b[s] == '~' ? 2 : 1); k < i && b[k] >= '0' && b[k] <= '9'; k++)
                lit = lit * 10 + (uint64_t)(b[k] - '0');
            while (i < len && b[i] != '\n')
                i++;
            i++;
            i = lit < len - (i < len ? i : len) ? i + (size_t)lit : len;
            prev = NULL;
            prev_len = 0;
            continue;
        }
        if (is_seqset_token(b + s, n) && !(prev != NULL && takes_number(prev, prev_len)))
            return 1;
        prev = b + s;
        prev_len = n;
    }
    return 0;
}

int imk__session_uses_seq(const imk_op *op)
{
    unsigned f = COMMANDS[op->kind].flags;
    if (!(f & IMK__CF_SEQ))
        return 0;
    if (!(f & IMK__CF_UID))
        return 1;
    size_t len;
    const char *b = imk_command_bytes(op->cmd, &len);
    size_t start = strlen(op->tag) + 1 + strlen(imk_command_kind_verb(op->kind));
    return criteria_use_seq(b, len, start);
}

/* What happens when an op goes on the wire. */
static void on_start(imk_session *s, imk_op *op)
{
    op->caps_gen_at_start = s->caps_gen;
    switch (op->kind) {
    case IMK_CMD_SELECT:
    case IMK_CMD_EXAMINE:
        s->select_op = op;
        /* RFC 7162 section 3.2.11: with QRESYNC enabled, a server switching
         * mailboxes sends [CLOSED] where the old mailbox's responses end;
         * the view is reset there. Otherwise everything after this SELECT
         * is about the new mailbox (SELECT is a barrier), so reset now. */
        if (!((s->enabled_bits & IMK__ENABLED_QRESYNC) && s->state == IMK_STATE_SELECTED))
            imk__view_reset(s->view);
        break;
    case IMK_CMD_LOGOUT:
        /* nothing more is sent after LOGOUT; commands are refused */
        s->state = IMK_STATE_LOGOUT;
        break;
    default:
        break;
    }
}

void imk__session_pump(imk_session *s)
{
    size_t max = s->opts.max_output;
    for (;;) {
        imk_op *op = s->sending;
        if (op != NULL) {
            size_t nseg = imk_command_segment_count(op->cmd);
            while (op->seg < nseg) {
                if (op->wait_plus || op->stream_left > 0)
                    return;
                const imk_command_segment *seg = imk_command_segment_at(op->cmd, op->seg);
                size_t left = seg->len - op->seg_off;
                size_t room = s->out.len < max ? max - s->out.len : 0;
                size_t n = left < room ? left : room;
                if (n > 0) {
                    int rc = imk__buf_append(&s->out, seg->data + op->seg_off, n);
                    if (rc < 0) {
                        imk__session_fail(s, rc, "out of memory for the output buffer");
                        return;
                    }
                    op->seg_off += n;
                }
                if (op->seg_off < seg->len)
                    return; /* output full: continue after imk_session_sent() */
                op->seg_off = 0;
                op->seg++;
                if (seg->wait_continuation)
                    op->wait_plus = 1;
                op->stream_left = seg->stream_len;
            }
            if (op->wait_plus || op->stream_left > 0)
                return;
            op->state = IMK__OP_SENT;
            s->sending = NULL;
            /* IDLE asked to end before the server accepted it: nothing to do
             * until "+" arrives (RFC 2177: DONE only after the continuation). */
        }
        imk_op *head = s->queue.head;
        if (head == NULL || !can_start(s, head))
            return;
        imk__session_list_remove(&s->queue, head);
        imk__session_list_append(&s->inflight, head);
        head->state = IMK__OP_SENDING;
        s->sending = head;
        on_start(s, head);
    }
}
