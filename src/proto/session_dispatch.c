/* SPDX-License-Identifier: MIT */
/*
 * Response dispatch: where every response goes (DESIGN.md sections 1 and 4).
 *
 * A response is classified by its kind, never by what the client expects
 * (RFC 9051 sections 2.2.2 and 7: "the client MUST be prepared to accept any
 * response at all times"). The RESPONSES table below has one row per kind:
 *
 *   - which state it updates: the mailbox view (EXISTS, EXPUNGE, VANISHED,
 *     FETCH flags/UID/MODSEQ, FLAGS and the codes UIDVALIDITY, UIDNEXT,
 *     HIGHESTMODSEQ, PERMANENTFLAGS, READ-ONLY, READ-WRITE, CLOSED), the
 *     capabilities, the enabled set, the connection state. This happens
 *     first, in arrival order, before any command sees the response;
 *   - which command kinds may claim it as their data;
 *   - what happens when no command in flight claims it: an unsolicited
 *     event with the parsed response (the view's own change events stand
 *     for EXISTS, EXPUNGE and VANISHED), or a notice.
 *
 * Claiming is certain or not at all (rule 5): the scheduler keeps two
 * commands that could claim the same response out of flight together, so
 * at most one candidate exists; where two still could (two searches with
 * RETURN and a plain SEARCH from a server that ignored RETURN), nobody
 * claims and the data is delivered as unsolicited.
 *
 *   FETCH      the FETCH/STORE whose set holds the message: by UID for UID
 *              commands (the response's UID item, else the view's UID for
 *              that sequence number), by sequence number otherwise;
 *   ESEARCH    the command named by its (TAG "x"); without one, unsolicited;
 *   SEARCH,    the single command of that family in flight;
 *   SORT,
 *   THREAD
 *   STATUS     the STATUS command for that mailbox, or the LIST in flight
 *              (LIST-STATUS, RFC 5819);
 *   EXPUNGE,   recorded as expunged UIDs of the EXPUNGE, UID EXPUNGE, MOVE,
 *   VANISHED   UID MOVE or CLOSE in flight (VANISHED (EARLIER) is history,
 *              not an expunge: it is applied to the view and delivered as
 *              unsolicited so that a resynchronising client sees the UIDs);
 *   OK [COPYUID] untagged, during MOVE: the MOVE's (QUIRKS Q14, Cyrus).
 *
 * Untagged OK/NO/BAD never complete or fail a command (RFC 9051 7.1): they
 * are notices (QUIRKS Q15: an untagged BAD where a tagged completion was due
 * leaves the command waiting; the client layer's deadline ends it). Progress
 * is information: [INPROGRESS ("tag" n goal)] (RFC 9585) is progress of the
 * command with that tag, and Dovecot 2.3's plain-text forms are notices that
 * are also progress of the single command in flight.
 *
 * BYE: the first one is reported (QUIRKS Q17 sends them forever), the state
 * becomes LOGOUT and the session reads on until the end of the stream, when
 * every outstanding command fails with the BYE text (session.c).
 */
#include "proto/session_int.h"
#include "util/str.h"

#include <stdio.h>
#include <string.h>

#define UPD_VIEW 1u
#define UPD_CAPS 2u
#define UPD_ENABLED 4u
#define UPD_CONN 8u

enum otherwise {
    OTHER_UNSOLICITED, /* an IMK_SE_UNSOLICITED event */
    OTHER_VIEW_EVENT,  /* the view's change events report it */
    OTHER_NOTICE,      /* untagged status responses: notices */
    OTHER_NOTHING      /* state only (CAPABILITY), or handled elsewhere */
};

#define C(k) ((uint64_t)1 << IMK_CMD_##k)
#define EXPUNGERS (C(EXPUNGE) | C(UID_EXPUNGE) | C(MOVE) | C(UID_MOVE) | C(CLOSE))

/* The response table (DESIGN.md section 4): one row per response kind. */
static const struct response_row {
    unsigned updates;
    uint64_t claimed_by; /* bit IMK_CMD_x: that command kind may claim it */
    enum otherwise otherwise;
} RESPONSES[IMK_KIND_COUNT_] = {
    /* OK/NO/BAD/PREAUTH/BYE: codes, BYE; COPYUID during MOVE (Q14) */
    [IMK_KIND_STATUS_RESPONSE] = {UPD_VIEW | UPD_CAPS | UPD_CONN, C(MOVE) | C(UID_MOVE),
                                  OTHER_NOTICE},
    /* "+": a literal's, AUTHENTICATE's or IDLE's (handled by the sender) */
    [IMK_KIND_CONTINUATION] = {0, C(AUTHENTICATE) | C(IDLE) | C(APPEND), OTHER_NOTHING},
    [IMK_KIND_CAPABILITY] = {UPD_CAPS, C(CAPABILITY), OTHER_NOTHING},
    [IMK_KIND_ENABLED] = {UPD_ENABLED, C(ENABLE), OTHER_UNSOLICITED},
    [IMK_KIND_FLAGS] = {UPD_VIEW, C(SELECT) | C(EXAMINE), OTHER_UNSOLICITED},
    [IMK_KIND_LIST] = {0, C(LIST), OTHER_UNSOLICITED},
    [IMK_KIND_LSUB] = {0, C(LSUB), OTHER_UNSOLICITED},
    [IMK_KIND_STATUS] = {0, C(STATUS) | C(LIST), OTHER_UNSOLICITED},
    [IMK_KIND_SEARCH] = {0, C(SEARCH) | C(UID_SEARCH), OTHER_UNSOLICITED},
    [IMK_KIND_SORT] = {0, C(SORT) | C(UID_SORT), OTHER_UNSOLICITED},
    [IMK_KIND_THREAD] = {0, C(THREAD) | C(UID_THREAD), OTHER_UNSOLICITED},
    [IMK_KIND_ESEARCH] = {0, C(SEARCH) | C(UID_SEARCH) | C(SORT) | C(UID_SORT), OTHER_UNSOLICITED},
    [IMK_KIND_EXISTS] = {UPD_VIEW, C(SELECT) | C(EXAMINE), OTHER_VIEW_EVENT},
    [IMK_KIND_RECENT] = {0, C(SELECT) | C(EXAMINE), OTHER_UNSOLICITED},
    [IMK_KIND_EXPUNGE] = {UPD_VIEW, EXPUNGERS, OTHER_VIEW_EVENT},
    [IMK_KIND_FETCH] = {UPD_VIEW, C(FETCH) | C(UID_FETCH) | C(STORE) | C(UID_STORE),
                        OTHER_UNSOLICITED},
    [IMK_KIND_VANISHED] = {UPD_VIEW, EXPUNGERS, OTHER_VIEW_EVENT},
    [IMK_KIND_NAMESPACE] = {0, C(NAMESPACE), OTHER_UNSOLICITED},
    [IMK_KIND_ID] = {0, C(ID), OTHER_UNSOLICITED},
    [IMK_KIND_QUOTA] = {0, C(GETQUOTA) | C(GETQUOTAROOT), OTHER_UNSOLICITED},
    [IMK_KIND_QUOTAROOT] = {0, C(GETQUOTAROOT), OTHER_UNSOLICITED},
    [IMK_KIND_METADATA] = {0, C(GETMETADATA), OTHER_UNSOLICITED},
    [IMK_KIND_ACL] = {0, C(GETACL), OTHER_UNSOLICITED},
    [IMK_KIND_LISTRIGHTS] = {0, C(LISTRIGHTS), OTHER_UNSOLICITED},
    [IMK_KIND_MYRIGHTS] = {0, C(MYRIGHTS), OTHER_UNSOLICITED},
    [IMK_KIND_GENERIC] = {0, 0, OTHER_UNSOLICITED},
};

#undef C
#undef EXPUNGERS

int imk__session_claims(imk_command_kind cmd, imk_response_kind resp)
{
    if ((unsigned)resp >= IMK_KIND_COUNT_ || (unsigned)cmd >= IMK_CMD_COUNT_)
        return 0;
    return (int)((RESPONSES[resp].claimed_by >> cmd) & 1u);
}

/* ---- the view observer: change events ---- */

static void obs_exists(void *user, uint32_t old_count, uint32_t new_count)
{
    imk_session_event *ev = imk__session_push(user, IMK_SE_EXISTS);
    if (ev != NULL) {
        ev->old_count = old_count;
        ev->count = new_count;
    }
}

static void obs_expunge(void *user, uint32_t seq, uint32_t uid)
{
    imk_session *s = user;
    if (s->in_vanished) {
        /* one IMK_SE_VANISHED event for the whole response, see dispatch */
        s->vanished_removed++;
    } else {
        imk_session_event *ev = imk__session_push(s, IMK_SE_EXPUNGE);
        if (ev != NULL) {
            ev->seq = seq;
            ev->uid = uid;
        }
    }
    if (s->expunge_target != NULL)
        imk__session_note_data_error(s, s->expunge_target,
                                     imk__result_add_expunged(s->expunge_target->result, uid));
}

static void obs_flags(void *user, uint32_t seq, uint32_t uid, imk_strlist flags, uint64_t modseq)
{
    imk_session *s = user;
    imk_session_event *ev = imk__session_push(s, IMK_SE_FLAGS);
    if (ev == NULL)
        return;
    ev->seq = seq;
    ev->uid = uid;
    ev->modseq = modseq;
    /* The view's flag table may change with the next response: copy. */
    if (flags.count > 0) {
        size_t bytes;
        imk_str *items = NULL;
        if (imk__mul_ok(flags.count, sizeof(imk_str), &bytes))
            items = imk__arena_alloc(&s->ev_arena, bytes);
        if (items == NULL) {
            imk__session_fail(s, IMK_ENOMEM, "out of memory for an event");
            return;
        }
        for (size_t i = 0; i < flags.count; i++)
            if (imk__session_copy_str(s, flags.items[i], &items[i]) < 0)
                return;
        ev->flags.items = items;
        ev->flags.count = flags.count;
    }
}

static void obs_uidvalidity(void *user, uint64_t old_value, uint64_t new_value)
{
    imk_session_event *ev = imk__session_push(user, IMK_SE_UIDVALIDITY);
    if (ev != NULL) {
        ev->uidvalidity = new_value;
        ev->old_uidvalidity = old_value;
    }
}

static void obs_problem(void *user, const char *message)
{
    imk_session *s = user;
    imk_session_event *ev = imk__session_push(s, IMK_SE_PROTOCOL_ERROR);
    if (ev != NULL) {
        imk_str m = {message, strlen(message)};
        imk__session_copy_str(s, m, &ev->text);
    }
}

const imk__view_observer imk__session_observer_template = {obs_exists,      obs_expunge, obs_flags,
                                                           obs_uidvalidity, obs_problem, NULL};

/* ---- helpers ---- */

static int mailbox_open(const imk_session *s)
{
    return s->selected || s->select_op != NULL;
}

static void view_rc(imk_session *s, int rc)
{
    /* The view missed an update the server made: every later sequence
     * number would be wrong, so this cannot be survived. */
    if (rc < 0)
        imk__session_fail(s, rc, "out of memory while updating the mailbox view");
}

static void unsolicited(imk_session *s, const imk_response *r)
{
    imk_session_event *ev = imk__session_push(s, IMK_SE_UNSOLICITED);
    if (ev != NULL)
        ev->response = r;
}

static imk_op *find_tag(imk_session *s, const char *tag, size_t len)
{
    for (imk_op *op = s->inflight.head; op != NULL; op = op->next)
        if (strlen(op->tag) == len && memcmp(op->tag, tag, len) == 0)
            return op;
    return NULL;
}

/* The only in-flight op that claims `kind`, or NULL (none, or several). */
static imk_op *single_claimant(imk_session *s, imk_response_kind kind)
{
    imk_op *found = NULL;
    for (imk_op *op = s->inflight.head; op != NULL; op = op->next) {
        if (!imk__session_claims(op->kind, kind))
            continue;
        if (found != NULL)
            return NULL;
        found = op;
    }
    return found;
}

static int mailbox_matches(const char *want, imk_str got)
{
    if (want == NULL)
        return 0;
    if (imk__str_ieq(got, "INBOX") && imk__str_ieq((imk_str){want, strlen(want)}, "INBOX"))
        return 1;
    return got.data != NULL && strlen(want) == got.len && memcmp(want, got.data, got.len) == 0;
}

static imk_op *status_claimant(imk_session *s, imk_str mailbox)
{
    imk_op *list = NULL, *unknown = NULL;
    size_t unknown_count = 0;
    for (imk_op *op = s->inflight.head; op != NULL; op = op->next) {
        if (op->kind == IMK_CMD_STATUS) {
            if (mailbox_matches(op->mailbox, mailbox))
                return op;
            if (op->mailbox == NULL) {
                unknown = op;
                unknown_count++;
            }
        } else if (op->kind == IMK_CMD_LIST) {
            list = op;
        }
    }
    if (list != NULL)
        return list;
    return unknown_count == 1 ? unknown : NULL;
}

/* The highest UID the view knows (the last message's), or 0. */
static uint32_t view_last_uid(const imk_view *v)
{
    uint32_t n = imk_view_exists(v);
    return n > 0 ? imk_view_uid_of_seq(v, n) : 0;
}

imk_op *imk__session_fetch_owner(imk_session *s, uint32_t seq, int has_uid, uint32_t uid)
{
    for (imk_op *op = s->inflight.head; op != NULL; op = op->next) {
        unsigned f = imk__session_cmd_flags(op->kind);
        if (!(f & IMK__CF_FETCH))
            continue;
        if (!op->has_set || op->set.is_saved)
            return op; /* no set known: the scheduler let it run alone */
        if (f & IMK__CF_UID) {
            uint32_t u = has_uid ? uid : imk_view_uid_of_seq(s->view, seq);
            if (u == 0)
                continue;
            /* "*" is the highest UID in use: at least the view's last and
             * this one (a message the view has not seen yet may be it) */
            uint32_t last = view_last_uid(s->view);
            if (imk__seqset_contains(&op->set, u, last > u ? last : u))
                return op;
        } else {
            uint32_t n = imk_view_exists(s->view);
            if (imk__seqset_contains(&op->set, seq, n > seq ? n : seq))
                return op;
        }
    }
    return NULL;
}

void imk__session_note_data_error(imk_session *s, imk_op *op, int rc)
{
    (void)s;
    if (rc < 0 && op->data_error == 0)
        op->data_error = rc;
}

/* ---- codes of status responses (tagged or untagged) ---- */

static void apply_code(imk_session *s, const imk_code *code)
{
    if (code == NULL)
        return;
    switch (code->kind) {
    case IMK_CODE_CAPABILITY:
        imk__session_set_caps(s, &code->list);
        return;
    case IMK_CODE_CLOSED:
        /* RFC 7162 section 3.2.11: the old mailbox ends here. */
        imk__view_reset(s->view);
        return;
    default:
        break;
    }
    if (!mailbox_open(s))
        return;
    switch (code->kind) {
    case IMK_CODE_UIDVALIDITY:
        imk__view_set_uidvalidity(s->view, code->number);
        break;
    case IMK_CODE_UIDNEXT:
        imk__view_set_uidnext(s->view, code->number);
        break;
    case IMK_CODE_HIGHESTMODSEQ:
        imk__view_set_highest_modseq(s->view, code->number);
        break;
    case IMK_CODE_PERMANENTFLAGS:
        view_rc(s, imk__view_set_permanent_flags(s->view, &code->list));
        break;
    case IMK_CODE_READ_ONLY:
        imk__view_set_read_only(s->view, 1);
        break;
    case IMK_CODE_READ_WRITE:
        imk__view_set_read_only(s->view, 0);
        break;
    default:
        break;
    }
}

/* ---- tagged completion ---- */

static void copy_mailbox(imk_session *s, const char *name)
{
    imk__free(&s->alloc, s->mailbox);
    s->mailbox = NULL;
    if (name == NULL)
        return;
    size_t n = strlen(name);
    s->mailbox = imk__malloc(&s->alloc, n + 1);
    if (s->mailbox == NULL) {
        imk__session_fail(s, IMK_ENOMEM, "out of memory for the mailbox name");
        return;
    }
    memcpy(s->mailbox, name, n + 1);
}

static void record_bye(imk_session *s, imk_str text)
{
    s->bye_seen = 1;
    s->state = IMK_STATE_LOGOUT;
    imk__buf_clear(&s->bye_text);
    if (text.len > 0 && imk__buf_append(&s->bye_text, text.data, text.len) < 0)
        imk__session_fail(s, IMK_ENOMEM, "out of memory for the BYE text");
}

static void handle_tagged(imk_session *s, const imk_response *r)
{
    imk_op *op = find_tag(s, r->tag.data, r->tag.len);
    if (op == NULL) {
        imk_session_event *ev = imk__session_push(s, IMK_SE_PROTOCOL_ERROR);
        if (ev != NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "tagged response for no command in flight (tag %.*s)",
                     (int)(r->tag.len > 64 ? 64 : r->tag.len), r->tag.data);
            imk__session_copy_str(s, (imk_str){msg, strlen(msg)}, &ev->text);
            ev->response = r;
        }
        return;
    }
    apply_code(s, r->code);
    imk_status st = r->status;
    if (st != IMK_STATUS_OK && st != IMK_STATUS_NO && st != IMK_STATUS_BYE)
        st = IMK_STATUS_BAD; /* a tagged PREAUTH is nonsense: a failure */
    int rc = imk__result_set_status(op->result, st, r->code, r->text);
    if (rc < 0) {
        /* No room for the code and text (max_result_size, memory): the
         * status itself must not be lost. */
        imk__session_note_data_error(s, op, rc);
        imk__result_set_status(op->result, st, NULL, (imk_str){NULL, 0});
    }
    if (r->code != NULL) {
        if (r->code->kind == IMK_CODE_COPYUID || r->code->kind == IMK_CODE_APPENDUID)
            imk__result_set_uidplus(op->result, r->code); /* malformed (Q12): ignored */
        else if (r->code->kind == IMK_CODE_CAPABILITY)
            imk__session_note_data_error(s, op,
                                         imk__result_set_capabilities(op->result, &r->code->list));
    }
    int ok = st == IMK_STATUS_OK;
    switch (op->kind) {
    case IMK_CMD_LOGIN:
    case IMK_CMD_AUTHENTICATE:
        if (ok) {
            s->state = IMK_STATE_AUTHENTICATED;
            /* The list may change with authentication (RFC 9051 6.2.2/6.2.3):
             * keep it only if the server sent a new one during the command. */
            if (s->caps_gen == op->caps_gen_at_start)
                imk__session_forget_caps(s);
        }
        break;
    case IMK_CMD_SELECT:
    case IMK_CMD_EXAMINE:
        s->select_op = NULL;
        if (ok) {
            s->state = IMK_STATE_SELECTED;
            s->selected = 1;
            copy_mailbox(s, op->mailbox);
        } else if (st != IMK_STATUS_BYE) {
            /* RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
             * (A BAD may leave the old one selected at some servers; the
             * view was already given up, so no mailbox is the only state
             * the client can vouch for.) */
            s->state = IMK_STATE_AUTHENTICATED;
            s->selected = 0;
            copy_mailbox(s, NULL);
            imk__view_reset(s->view);
        }
        break;
    case IMK_CMD_CLOSE:
    case IMK_CMD_UNSELECT:
        if (ok) {
            s->state = IMK_STATE_AUTHENTICATED;
            s->selected = 0;
            copy_mailbox(s, NULL);
            imk__view_reset(s->view);
        }
        break;
    case IMK_CMD_STARTTLS:
        if (ok) {
            /* RFC 9051 6.2.1: forget everything learnt before TLS. From now
             * until imk_session_starttls_done() no byte may be read: any
             * the server already sent is an injection (DESIGN.md 8),
             * which imk_session_next() checks once this completion's
             * events are delivered. */
            imk__session_forget_caps(s);
            s->tls_pending = 1;
        }
        break;
    case IMK_CMD_COMPRESS:
        if (ok) {
            /* RFC 4978 section 3: compression starts right after the CRLF
             * of the tagged OK, in both directions. Stop here; the
             * transport takes the rest of the input. */
            s->compress_pending = 1;
            imk_session_event *ev = imk__session_push(s, IMK_SE_COMPRESSING);
            if (ev != NULL)
                ev->op = op;
        }
        break;
    default:
        break;
    }
    if (st == IMK_STATUS_BYE)
        record_bye(s, r->text); /* QUIRKS Q16: the server is closing */
    imk__session_complete(s, op);
}

/* ---- continuation requests ---- */

static void handle_continuation(imk_session *s, const imk_response *r)
{
    imk_op *op = s->sending;
    if (op != NULL && op->wait_plus) {
        op->wait_plus = 0; /* the literal may follow: imk__session_pump */
        return;
    }
    for (op = s->inflight.head; op != NULL; op = op->next) {
        if (op->kind == IMK_CMD_AUTHENTICATE && op->state == IMK__OP_SENT) {
            op->challenge_pending = 1;
            imk_session_event *ev = imk__session_push(s, IMK_SE_CONTINUATION);
            if (ev != NULL) {
                ev->op = op;
                ev->text = r->text;
            }
            return;
        }
        if (op->kind == IMK_CMD_IDLE && op->state == IMK__OP_SENT && !op->idling) {
            op->idling = 1;
            imk_session_event *ev = imk__session_push(s, IMK_SE_IDLING);
            if (ev != NULL)
                ev->op = op;
            if (op->done_asked && !op->done_sent) {
                if (imk__buf_append(&s->out, "DONE\r\n", 6) < 0)
                    imk__session_fail(s, IMK_ENOMEM, "out of memory for the output buffer");
                op->done_sent = 1;
            }
            return;
        }
    }
    imk_session_event *ev = imk__session_push(s, IMK_SE_PROTOCOL_ERROR);
    if (ev != NULL) {
        static const char msg[] = "continuation request (+) while no command waits for one";
        ev->text.data = msg;
        ev->text.len = sizeof(msg) - 1;
        ev->response = r;
    }
}

/* ---- untagged status responses ---- */

static int starts_with(imk_str t, const char *prefix)
{
    size_t n = strlen(prefix);
    return t.data != NULL && t.len >= n && memcmp(t.data, prefix, n) == 0;
}

static int contains(imk_str t, const char *needle)
{
    size_t n = strlen(needle);
    if (t.data == NULL || t.len < n)
        return 0;
    for (size_t i = 0; i + n <= t.len; i++)
        if (memcmp(t.data + i, needle, n) == 0)
            return 1;
    return 0;
}

/* Dovecot 2.3's plain-text progress (the founding document, QUIRKS Q53,
 * Q54): "Searched 76% of the mailbox, ETA 0:12", "Hang in there..",
 * "Still here". */
static int plain_progress(imk_str text)
{
    return (starts_with(text, "Searched ") && contains(text, "% of the mailbox")) ||
           starts_with(text, "Hang in there") || starts_with(text, "Still here");
}

static void handle_greeting(imk_session *s, const imk_response *r)
{
    apply_code(s, r->code);
    imk_status st = r->status;
    if (st == IMK_STATUS_PREAUTH) {
        s->state = IMK_STATE_AUTHENTICATED;
    } else if (st == IMK_STATUS_BYE) {
        record_bye(s, r->text);
    } else {
        s->state = IMK_STATE_NOT_AUTHENTICATED;
    }
    imk_session_event *ev = imk__session_push(s, IMK_SE_GREETING);
    if (ev != NULL) {
        ev->status = st;
        ev->code = r->code;
        ev->text = r->text;
    }
}

static void handle_status(imk_session *s, const imk_response *r)
{
    apply_code(s, r->code);
    if (r->status == IMK_STATUS_BYE) {
        if (s->bye_seen)
            return; /* QUIRKS Q17: one BYE is news, the next ones are not */
        record_bye(s, r->text);
        imk_session_event *ev = imk__session_push(s, IMK_SE_BYE);
        if (ev != NULL) {
            ev->status = r->status;
            ev->code = r->code;
            ev->text = r->text;
        }
        return;
    }
    const imk_code *code = r->code;
    if (code != NULL && code->kind == IMK_CODE_INPROGRESS) {
        /* RFC 9585: progress of the command the tag names; with no tag,
         * of the single command in flight (else of none: op NULL). */
        imk_op *op = NULL;
        if (code->progress_tag.data != NULL)
            op = find_tag(s, code->progress_tag.data, code->progress_tag.len);
        else if (s->inflight.count == 1)
            op = s->inflight.head;
        imk_session_event *ev = imk__session_push(s, IMK_SE_PROGRESS);
        if (ev != NULL) {
            ev->op = op;
            ev->status = r->status;
            ev->code = code;
            ev->text = r->text;
            ev->has_count = code->has_progress_count;
            ev->count = code->progress_count;
            ev->has_goal = code->has_progress_goal;
            ev->goal = code->progress_goal;
        }
        return;
    }
    if (code != NULL && code->kind == IMK_CODE_COPYUID) {
        imk_op *mover = single_claimant(s, IMK_KIND_STATUS_RESPONSE);
        if (mover != NULL)
            imk__result_set_uidplus(mover->result, code); /* malformed (Q12): ignored */
    }
    imk_session_event *ev = imk__session_push(s, IMK_SE_NOTICE);
    if (ev != NULL) {
        ev->status = r->status;
        ev->code = code;
        ev->text = r->text;
        ev->alert = code != NULL && code->kind == IMK_CODE_ALERT;
    }
    if (r->status == IMK_STATUS_OK && plain_progress(r->text) && s->inflight.count == 1) {
        ev = imk__session_push(s, IMK_SE_PROGRESS);
        if (ev != NULL) {
            ev->op = s->inflight.head;
            ev->status = r->status;
            ev->text = r->text;
        }
    }
}

/* ---- untagged data ---- */

static int search_family(imk_command_kind k, imk_response_kind r)
{
    return imk__session_claims(k, r);
}

/* The single in-flight op of the SEARCH/SORT/THREAD family (with or
 * without RETURN): a stray SEARCH goes to it. */
/* A FETCH record of an op that streams them (imk_op_stream_fetch): one
 * IMK_SE_FETCH event, nothing kept. The record points into the response,
 * which stays valid until the event has been delivered. A UID command's
 * record gets the UID the view knows when the server left it out (as for
 * accumulated records, below). */
static int stream_fetch_event(imk_session *s, imk_op *op, const imk_fetch *f)
{
    const imk_fetch *rec = f;
    if ((imk__session_cmd_flags(op->kind) & IMK__CF_UID) && !(f->present & IMK_FETCH_UID)) {
        imk_fetch *copy = imk__arena_alloc(&s->ev_arena, sizeof(*copy));
        if (copy == NULL)
            return IMK_ENOMEM;
        *copy = *f;
        copy->uid = imk_view_uid_of_seq(s->view, f->seq);
        copy->present |= IMK_FETCH_UID;
        rec = copy;
    }
    imk_session_event *ev = imk__session_push(s, IMK_SE_FETCH);
    if (ev == NULL)
        return IMK_ENOMEM;
    ev->op = op;
    ev->fetch = rec;
    ev->seq = rec->seq;
    ev->uid = rec->uid;
    return 0;
}

static imk_op *search_claimant(imk_session *s, imk_response_kind kind)
{
    imk_op *found = NULL;
    for (imk_op *op = s->inflight.head; op != NULL; op = op->next) {
        if (!search_family(op->kind, kind))
            continue;
        if (found != NULL)
            return NULL;
        found = op;
    }
    return found;
}

static void handle_data(imk_session *s, const imk_response *r)
{
    const struct response_row *row = &RESPONSES[r->kind];
    int open = mailbox_open(s);
    imk_op *op = NULL;
    int rc = 0;

    switch (r->kind) {
    case IMK_KIND_CAPABILITY:
        imk__session_set_caps(s, &r->u.capability);
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_capabilities(op->result, &r->u.capability);
        break;
    case IMK_KIND_ENABLED:
        imk__session_add_enabled(s, &r->u.capability);
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_enabled(op->result, &r->u.capability);
        break;
    case IMK_KIND_FLAGS:
        if (!open)
            break;
        view_rc(s, imk__view_set_flags(s->view, &r->u.flags));
        op = s->select_op; /* part of SELECT's answer: nothing to keep */
        break;
    case IMK_KIND_RECENT:
        /* recorded like EXISTS; a count above 2^32-1 cannot be a real one */
        if (open && r->number <= UINT32_MAX)
            imk__view_set_recent(s->view, (uint32_t)r->number);
        op = s->select_op;
        break;
    case IMK_KIND_EXISTS:
        if (!open)
            break;
        if (r->number > UINT32_MAX) {
            obs_problem(s, "EXISTS count above 4294967295 ignored");
            return;
        }
        view_rc(s, imk__view_exists(s->view, (uint32_t)r->number));
        return;
    case IMK_KIND_EXPUNGE:
        if (!open)
            break;
        if (r->number == 0 || r->number > UINT32_MAX) {
            obs_problem(s, "EXPUNGE of an impossible sequence number ignored");
            return;
        }
        s->expunge_target = single_claimant(s, r->kind);
        view_rc(s, imk__view_expunge(s->view, (uint32_t)r->number));
        s->expunge_target = NULL;
        return;
    case IMK_KIND_VANISHED:
        if (!open)
            break;
        if (!r->u.vanished.earlier)
            s->expunge_target = single_claimant(s, r->kind);
        /* The server chooses how many UIDs one VANISHED names ("1:*"), so
         * the removals are reported as one event with the set, not one
         * event per message: the event queue stays bounded per response.
         * The set points into the response, which lives until the queue of
         * this response's events has been delivered. */
        s->in_vanished = 1;
        s->vanished_removed = 0;
        view_rc(s, imk__view_vanished(s->view, &r->u.vanished.uids));
        s->in_vanished = 0;
        s->expunge_target = NULL;
        {
            imk_session_event *ev = imk__session_push(s, IMK_SE_VANISHED);
            if (ev != NULL) {
                ev->uids = r->u.vanished.uids;
                ev->earlier = r->u.vanished.earlier;
                ev->removed = s->vanished_removed;
                ev->response = r;
            }
        }
        return;
    case IMK_KIND_FETCH: {
        const imk_fetch *f = &r->u.fetch;
        if (open)
            view_rc(s, imk__view_fetch(s->view, f));
        op = imk__session_fetch_owner(s, f->seq, (f->present & IMK_FETCH_UID) != 0, f->uid);
        if (op != NULL && op->stream_fetch) {
            rc = stream_fetch_event(s, op, f);
        } else if (op != NULL && (imk__session_cmd_flags(op->kind) & IMK__CF_UID) &&
                   !(f->present & IMK_FETCH_UID)) {
            /* A UID command's records are keyed by UID; this response was
             * attributed by the view's UID for its sequence number, so
             * record that UID (the sequence number alone could merge it
             * into another message's record after an EXPUNGE). */
            imk_fetch with_uid = *f;
            with_uid.uid = imk_view_uid_of_seq(s->view, f->seq);
            with_uid.present |= IMK_FETCH_UID;
            rc = imk__result_add_fetch(op->result, &with_uid);
        } else if (op != NULL) {
            rc = imk__result_add_fetch(op->result, f);
        }
        break;
    }
    case IMK_KIND_SEARCH:
    case IMK_KIND_SORT:
        op = search_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_add_search(op->result, &r->u.search);
        break;
    case IMK_KIND_THREAD:
        op = search_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_thread(op->result, &r->u.thread);
        break;
    case IMK_KIND_ESEARCH:
        if (r->u.esearch.tag.data != NULL) {
            op = find_tag(s, r->u.esearch.tag.data, r->u.esearch.tag.len);
            if (op != NULL && !imk__session_claims(op->kind, r->kind))
                op = NULL;
        }
        if (op != NULL)
            rc = imk__result_set_esearch(op->result, &r->u.esearch);
        break;
    case IMK_KIND_STATUS:
        op = status_claimant(s, r->u.status.mailbox);
        if (op != NULL)
            rc = imk__result_add_status(op->result, &r->u.status);
        break;
    case IMK_KIND_LIST:
    case IMK_KIND_LSUB:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_add_list(op->result, &r->u.list);
        break;
    case IMK_KIND_NAMESPACE:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_namespace(op->result, &r->u.namespace_);
        break;
    case IMK_KIND_ID:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_id(op->result, &r->u.id);
        break;
    case IMK_KIND_QUOTA:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_add_quota(op->result, &r->u.quota);
        break;
    case IMK_KIND_QUOTAROOT:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_quotaroot(op->result, &r->u.quotaroot);
        break;
    case IMK_KIND_METADATA:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_add_metadata(op->result, &r->u.metadata);
        break;
    case IMK_KIND_ACL:
    case IMK_KIND_LISTRIGHTS:
    case IMK_KIND_MYRIGHTS:
        op = single_claimant(s, r->kind);
        if (op != NULL)
            rc = imk__result_set_acl(op->result, &r->u.acl);
        break;
    default:
        break;
    }
    if (op != NULL) {
        imk__session_note_data_error(s, op, rc);
        return;
    }
    if (row->otherwise == OTHER_UNSOLICITED || (row->otherwise == OTHER_VIEW_EVENT && !open))
        unsolicited(s, r);
}

static void handle_response(imk_session *s, const imk_response *r)
{
    switch (r->type) {
    case IMK_RESPONSE_TAGGED:
        handle_tagged(s, r);
        return;
    case IMK_RESPONSE_CONTINUATION:
        handle_continuation(s, r);
        return;
    case IMK_RESPONSE_UNTAGGED:
        break;
    }
    if (r->kind == IMK_KIND_STATUS_RESPONSE) {
        if (s->state == IMK_STATE_GREETING)
            handle_greeting(s, r);
        else
            handle_status(s, r);
        return;
    }
    handle_data(s, r);
}

/* ---- malformed responses ---- */

static int word_is(const char *p, size_t len, const char *word)
{
    return imk__str_ieq((imk_str){p, len}, word);
}

/* A tagged response that did not parse still ends its command: find the
 * tag and the status word in the raw bytes, so the command does not hang
 * until a deadline. */
static void salvage_tagged(imk_session *s, const imk_parse_error *e)
{
    const char *p = e->raw.data;
    size_t n = e->raw.len;
    if (p == NULL || n == 0 || p[0] == '*' || p[0] == '+')
        return;
    size_t sp = 0;
    while (sp < n && p[sp] != ' ' && p[sp] != '\r' && p[sp] != '\n')
        sp++;
    if (sp == n || p[sp] != ' ' || find_tag(s, p, sp) == NULL)
        return;
    size_t w = sp + 1, we = w;
    while (we < n && p[we] != ' ' && p[we] != '\r' && p[we] != '\n')
        we++;
    imk_response fake;
    memset(&fake, 0, sizeof(fake));
    fake.type = IMK_RESPONSE_TAGGED;
    fake.kind = IMK_KIND_STATUS_RESPONSE;
    fake.tag.data = p;
    fake.tag.len = sp;
    if (word_is(p + w, we - w, "OK"))
        fake.status = IMK_STATUS_OK;
    else if (word_is(p + w, we - w, "NO"))
        fake.status = IMK_STATUS_NO;
    else if (word_is(p + w, we - w, "BYE"))
        fake.status = IMK_STATUS_BYE;
    else
        fake.status = IMK_STATUS_BAD;
    fake.text.data = e->message;
    fake.text.len = strlen(e->message);
    handle_tagged(s, &fake);
}

void imk__session_dispatch(imk_session *s, const imk_event *ev)
{
    imk_session_event *out;
    switch (ev->type) {
    case IMK_EVENT_RESPONSE:
        handle_response(s, ev->response);
        return;
    case IMK_EVENT_BODY_BEGIN: {
        const imk_body_info *b = ev->body;
        imk_op *op = imk__session_fetch_owner(s, b->seq, b->has_uid, b->uid);
        if (op == NULL && !b->has_uid && imk_view_uid_of_seq(s->view, b->seq) == 0) {
            /* The UID is sent after the literal and the view has not
             * learnt it: a UID FETCH alone in flight is the only candidate
             * (servers do not send body sections unasked). */
            imk_op *only = NULL;
            size_t n = 0;
            for (imk_op *x = s->inflight.head; x != NULL; x = x->next) {
                if (imk__session_cmd_flags(x->kind) & IMK__CF_FETCH) {
                    only = x;
                    n++;
                }
            }
            if (n == 1 && (imk__session_cmd_flags(only->kind) & IMK__CF_UID))
                op = only;
        }
        s->body_op = op;
        out = imk__session_push(s, IMK_SE_BODY_BEGIN);
        if (out != NULL) {
            out->op = op;
            out->body = b;
            out->seq = b->seq;
            out->uid = b->uid;
        }
        return;
    }
    case IMK_EVENT_BODY_CHUNK:
        out = imk__session_push(s, IMK_SE_BODY_CHUNK);
        if (out != NULL) {
            out->op = s->body_op;
            out->body = ev->body;
            out->data = ev->data;
        }
        return;
    case IMK_EVENT_BODY_END:
        out = imk__session_push(s, IMK_SE_BODY_END);
        if (out != NULL) {
            out->op = s->body_op;
            out->body = ev->body;
        }
        s->body_op = NULL;
        return;
    case IMK_EVENT_ERROR:
        s->body_op = NULL;
        if (ev->error->code == IMK_ENOMEM) {
            /* The reader could not keep a response for want of memory: an
             * EXISTS or a tagged completion may be gone, so neither the view
             * nor the commands can be trusted any more. */
            imk__session_fail(s, IMK_ENOMEM,
                              "out of memory while parsing a response: the response was lost");
            return;
        }
        out = imk__session_push(s, IMK_SE_PROTOCOL_ERROR);
        if (out != NULL) {
            out->error = ev->error;
            out->text.data = ev->error->message;
            out->text.len = strlen(ev->error->message);
        }
        salvage_tagged(s, ev->error);
        return;
    }
}
