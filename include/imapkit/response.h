/* SPDX-License-Identifier: MIT */
/*
 * imapkit/response.h - the typed model of one server response.
 *
 * Everything here is produced by the reader (imapkit/reader.h) and lives in
 * the reader's per-response arena: every pointer in an imk_response stays
 * valid until the next call of imk_reader_next() on the same reader, and not
 * longer. Copy what you need to keep.
 *
 * Strings are imk_str (data + len, NUL-terminated, may contain NUL when they
 * came from a literal). An nstring that was NIL has data == NULL.
 * Numbers are uint64_t throughout, so servers that send values beyond the
 * RFC's 32-bit ranges (QUIRKS.md Q20, Q26) are represented exactly; the
 * parser records such deviations in imk_response.quirks.
 *
 * Grammar references are to RFC 9051 section 9 unless noted.
 */
#ifndef IMAPKIT_RESPONSE_H
#define IMAPKIT_RESPONSE_H

#include "imapkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Generic values                                                      */
/* ------------------------------------------------------------------ */

typedef enum imk_value_type {
    IMK_VALUE_NIL,
    IMK_VALUE_ATOM,    /* also tokens such as BODY[HEADER] and \Seen */
    IMK_VALUE_NUMBER,  /* digits only; `number` holds it, `str` its text */
    IMK_VALUE_STRING,  /* quoted string, unescaped */
    IMK_VALUE_LITERAL, /* {n} or ~{n} literal; `binary` set for ~{n} */
    IMK_VALUE_LIST     /* ( ... ) */
} imk_value_type;

/* A value tree: how unknown responses, unknown response codes and unknown
 * FETCH items are delivered (DESIGN.md section 1 rule 3). */
typedef struct imk_value {
    imk_value_type type;
    int binary;      /* LITERAL only: 1 for a literal8 (~{n}) */
    int streamed;    /* LITERAL only: the bytes were delivered as body events */
    uint64_t number; /* NUMBER; for a LITERAL its length */
    imk_str str;     /* ATOM, NUMBER (its digits), STRING, LITERAL */
    size_t count;    /* LIST: number of items */
    const struct imk_value *items;
} imk_value;

/* A list of strings: capabilities, flags, attributes. */
typedef struct imk_strlist {
    size_t count;
    const imk_str *items;
} imk_strlist;

/* A range of a sequence set or uid set. 0 stands for `*`. */
typedef struct imk_range {
    uint32_t first, last;
} imk_range;

/* A sequence set or uid set as sent, in the server's order. */
typedef struct imk_seqset {
    size_t count;
    const imk_range *ranges;
} imk_seqset;

/* A date-time (INTERNALDATE, SAVEDATE). zone_minutes is east of UTC. */
typedef struct imk_datetime {
    int year, month, day, hour, minute, second;
    int zone_minutes;
} imk_datetime;

/* ------------------------------------------------------------------ */
/* Response codes (RFC 9051 section 7.1, RFC 5530 and extensions)      */
/* ------------------------------------------------------------------ */

/* X(enum suffix, name as sent). Order is stable ABI. */
#define IMK_CODE_TABLE(X)                                                                          \
    X(OTHER, "")                                                                                   \
    X(ALERT, "ALERT")                                                                              \
    X(ALREADYEXISTS, "ALREADYEXISTS")                                                              \
    X(APPENDUID, "APPENDUID")                                                                      \
    X(AUTHENTICATIONFAILED, "AUTHENTICATIONFAILED")                                                \
    X(AUTHORIZATIONFAILED, "AUTHORIZATIONFAILED")                                                  \
    X(BADCHARSET, "BADCHARSET")                                                                    \
    X(BADCOMPARATOR, "BADCOMPARATOR")                                                              \
    X(BADEVENT, "BADEVENT")                                                                        \
    X(CANNOT, "CANNOT")                                                                            \
    X(CAPABILITY, "CAPABILITY")                                                                    \
    X(CLIENTBUG, "CLIENTBUG")                                                                      \
    X(CLOSED, "CLOSED")                                                                            \
    X(COMPRESSIONACTIVE, "COMPRESSIONACTIVE")                                                      \
    X(CONTACTADMIN, "CONTACTADMIN")                                                                \
    X(COPYUID, "COPYUID")                                                                          \
    X(CORRUPTION, "CORRUPTION")                                                                    \
    X(EXPIRED, "EXPIRED")                                                                          \
    X(EXPUNGEISSUED, "EXPUNGEISSUED")                                                              \
    X(HASCHILDREN, "HASCHILDREN")                                                                  \
    X(HIGHESTMODSEQ, "HIGHESTMODSEQ")                                                              \
    X(INPROGRESS, "INPROGRESS")                                                                    \
    X(INUSE, "INUSE")                                                                              \
    X(LIMIT, "LIMIT")                                                                              \
    X(MAILBOXID, "MAILBOXID")                                                                      \
    X(METADATA, "METADATA")                                                                        \
    X(MODIFIED, "MODIFIED")                                                                        \
    X(NOMODSEQ, "NOMODSEQ")                                                                        \
    X(NONEXISTENT, "NONEXISTENT")                                                                  \
    X(NOPERM, "NOPERM")                                                                            \
    X(NOTIFICATIONOVERFLOW, "NOTIFICATIONOVERFLOW")                                                \
    X(NOTSAVED, "NOTSAVED")                                                                        \
    X(NOUPDATE, "NOUPDATE")                                                                        \
    X(OVERQUOTA, "OVERQUOTA")                                                                      \
    X(PARSE, "PARSE")                                                                              \
    X(PERMANENTFLAGS, "PERMANENTFLAGS")                                                            \
    X(PRIVACYREQUIRED, "PRIVACYREQUIRED")                                                          \
    X(READ_ONLY, "READ-ONLY")                                                                      \
    X(READ_WRITE, "READ-WRITE")                                                                    \
    X(REFERRAL, "REFERRAL")                                                                        \
    X(SERVERBUG, "SERVERBUG")                                                                      \
    X(TOOBIG, "TOOBIG")                                                                            \
    X(TRYCREATE, "TRYCREATE")                                                                      \
    X(UIDNEXT, "UIDNEXT")                                                                          \
    X(UIDNOTSTICKY, "UIDNOTSTICKY")                                                                \
    X(UIDVALIDITY, "UIDVALIDITY")                                                                  \
    X(UNAVAILABLE, "UNAVAILABLE")                                                                  \
    X(UNKNOWN_CTE, "UNKNOWN-CTE")                                                                  \
    X(UNSEEN, "UNSEEN")                                                                            \
    X(URLMECH, "URLMECH")                                                                          \
    X(USEATTR, "USEATTR")

typedef enum imk_code_kind {
#define IMK_X_CODE(sfx, name) IMK_CODE_##sfx,
    IMK_CODE_TABLE(IMK_X_CODE)
#undef IMK_X_CODE
        IMK_CODE_COUNT_
} imk_code_kind;

/* The name of a code kind as sent on the wire ("READ-ONLY"), "" for OTHER. */
IMK_API const char *imk_code_kind_name(imk_code_kind kind);

/*
 * A response code. `kind` says which fields are meaningful:
 *   number:   UIDNEXT, UIDVALIDITY, UNSEEN, HIGHESTMODSEQ,
 *             METADATA LONGENTRIES / MAXSIZE (with `string` = the sub-code)
 *   list:     CAPABILITY, PERMANENTFLAGS, BADCHARSET, BADEVENT, USEATTR,
 *             URLMECH (mechanisms, after `string` = "INTERNAL")
 *   uidvalidity + set (+ set2): APPENDUID (set = appended UIDs),
 *             COPYUID (set = source UIDs, set2 = destination UIDs)
 *   set:      MODIFIED
 *   string:   REFERRAL (the URL), MAILBOXID (the objectid), NOUPDATE (the
 *             tag), METADATA (TOOMANY / NOPRIVATE / LONGENTRIES / MAXSIZE)
 *   inprogress fields: INPROGRESS (RFC 9585)
 * Every code also carries `name` as sent and `raw`, the bytes between the
 * name and the closing `]` (without the separating space), and `value`, the
 * generic parse of `raw` when it parses as values (NULL otherwise).
 */
typedef struct imk_code {
    imk_code_kind kind;
    imk_str name;
    imk_str raw;
    const imk_value *value;
    uint64_t number;
    imk_strlist list;
    uint64_t uidvalidity;
    imk_seqset set, set2;
    imk_str string;
    /* INPROGRESS ("tag" count goal): each part may be NIL or absent. */
    imk_str progress_tag; /* data NULL when NIL or absent */
    int has_progress_count, has_progress_goal;
    uint64_t progress_count, progress_goal;
} imk_code;

/* ------------------------------------------------------------------ */
/* ENVELOPE and BODYSTRUCTURE                                          */
/* ------------------------------------------------------------------ */

/* address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")".
 * A group start has host NIL and mailbox = group name; a group end has
 * mailbox and host NIL (RFC 9051 section 7.5.2). Strings are raw (RFC 2047
 * encoded words are not decoded here). */
typedef struct imk_address {
    imk_str name, adl, mailbox, host;
} imk_address;

typedef struct imk_address_list {
    size_t count;
    const imk_address *items;
} imk_address_list;

typedef struct imk_envelope {
    imk_str date, subject;
    imk_address_list from, sender, reply_to, to, cc, bcc;
    imk_str in_reply_to, message_id;
} imk_envelope;

/* A body parameter: attribute/value pair (body-fld-param). */
typedef struct imk_param {
    imk_str name, value;
} imk_param;

typedef struct imk_param_list {
    size_t count;
    const imk_param *items;
} imk_param_list;

typedef struct imk_body imk_body;

/*
 * One node of a BODY or BODYSTRUCTURE (RFC 9051 section 7.5.2, body ABNF).
 * For a multipart, `type` is "MULTIPART" (synthesised; the wire has no
 * type) and `parts` holds the children; `subtype` and the extension fields
 * apply. For a single part, the body-fields apply, `lines` for text parts and
 * message/rfc822, and `envelope` + `parts[0]` for message/rfc822 (and
 * message/global).
 */
struct imk_body {
    int multipart;
    imk_str type, subtype;
    size_t part_count;
    const imk_body *parts;
    /* single part: body-fields */
    imk_param_list params;
    imk_str id, description, encoding;
    uint64_t size;
    int has_lines;
    uint64_t lines;
    const imk_envelope *envelope; /* message/rfc822 only */
    /* extension data (BODYSTRUCTURE only); has_ext = 0 when absent */
    int has_ext;
    imk_str md5;         /* single part only */
    imk_str disposition; /* data NULL when NIL */
    imk_param_list disposition_params;
    imk_strlist languages; /* NIL = empty list */
    imk_str location;
    size_t extension_count; /* body-extension values after location */
    const imk_value *extensions;
};

/* ------------------------------------------------------------------ */
/* FETCH                                                               */
/* ------------------------------------------------------------------ */

/* A body-section item of a FETCH response: BODY[section]<origin>,
 * BINARY[section]<origin>, BINARY.SIZE[section], RFC822, RFC822.HEADER,
 * RFC822.TEXT. */
typedef enum imk_section_item {
    IMK_SECTION_BODY,
    IMK_SECTION_BINARY,
    IMK_SECTION_BINARY_SIZE,
    IMK_SECTION_RFC822,
    IMK_SECTION_RFC822_HEADER,
    IMK_SECTION_RFC822_TEXT
} imk_section_item;

/* The item's name as sent ("BODY", "BINARY.SIZE", "RFC822.TEXT"); "" for
 * a value outside the enum. Static. */
IMK_API const char *imk_section_item_name(imk_section_item item);

typedef struct imk_fetch_section {
    imk_section_item item;
    imk_str spec;   /* the text between [ and ], e.g. "1.2.HEADER.FIELDS (FROM)" */
    int has_origin; /* <origin> present */
    uint64_t origin;
    /* The value: for BINARY.SIZE `size` only. Otherwise either inline data
     * (`data`, NIL = data.data NULL) or streamed = 1: the bytes were
     * delivered by IMK_EVENT_BODY_BEGIN/CHUNK/END events before this
     * response, and `size` is their count. */
    imk_str data;
    int streamed;
    uint64_t size;
} imk_fetch_section;

/* A FETCH item imapkit does not model: name as sent and its value. */
typedef struct imk_fetch_extra {
    imk_str name;
    const imk_value *value;
} imk_fetch_extra;

/* Bits of imk_fetch.present. */
#define IMK_FETCH_UID (1u << 0)
#define IMK_FETCH_FLAGS (1u << 1)
#define IMK_FETCH_MODSEQ (1u << 2)
#define IMK_FETCH_INTERNALDATE (1u << 3)
#define IMK_FETCH_RFC822_SIZE (1u << 4)
#define IMK_FETCH_ENVELOPE (1u << 5)
#define IMK_FETCH_BODY (1u << 6) /* BODY (non-extensible form) */
#define IMK_FETCH_BODYSTRUCTURE (1u << 7)
#define IMK_FETCH_EMAILID (1u << 8)   /* RFC 8474 */
#define IMK_FETCH_THREADID (1u << 9)  /* RFC 8474; NIL = data NULL */
#define IMK_FETCH_SAVEDATE (1u << 10) /* RFC 8514; has_savedate 0 = NIL */
#define IMK_FETCH_PREVIEW (1u << 11)  /* RFC 8970; NIL = data NULL */

typedef struct imk_fetch {
    uint32_t seq;
    unsigned present; /* IMK_FETCH_* bits */
    uint32_t uid;
    imk_strlist flags;
    uint64_t modseq;
    imk_datetime internaldate;
    uint64_t rfc822_size;
    const imk_envelope *envelope;
    const imk_body *body; /* BODY or BODYSTRUCTURE */
    imk_str emailid, threadid;
    int has_savedate;
    imk_datetime savedate;
    imk_str preview;
    size_t section_count;
    const imk_fetch_section *sections;
    size_t extra_count;
    const imk_fetch_extra *extras;
} imk_fetch;

/* ------------------------------------------------------------------ */
/* Other data responses                                                */
/* ------------------------------------------------------------------ */

/* mailbox-list (RFC 9051 section 7.3.1, RFC 5258 LIST-EXTENDED). */
typedef struct imk_list_extra {
    imk_str tag;
    const imk_value *value;
} imk_list_extra;

typedef struct imk_list {
    imk_strlist attributes; /* \HasChildren, \Sent, ... as sent */
    int delimiter;          /* the hierarchy delimiter byte, or -1 for NIL */
    imk_str mailbox;        /* UTF-8 (decoded from modified UTF-7 if needed) */
    imk_str mailbox_raw;    /* as sent */
    int mailbox_not_utf7;   /* the name was not valid modified UTF-7: mailbox = raw */
    imk_strlist childinfo;  /* CHILDINFO extended item (RFC 5258) */
    imk_str oldname;        /* OLDNAME extended item (RFC 9051), data NULL if absent */
    size_t extra_count;     /* other extended items */
    const imk_list_extra *extras;
} imk_list;

/* Bits of imk_status_data.present (STATUS response items). */
#define IMK_STATUS_MESSAGES (1u << 0)
#define IMK_STATUS_UIDNEXT (1u << 1)
#define IMK_STATUS_UIDVALIDITY (1u << 2)
#define IMK_STATUS_UNSEEN (1u << 3)
#define IMK_STATUS_RECENT (1u << 4)
#define IMK_STATUS_DELETED (1u << 5)
#define IMK_STATUS_SIZE (1u << 6)             /* RFC 8438 */
#define IMK_STATUS_HIGHESTMODSEQ (1u << 7)    /* RFC 7162 */
#define IMK_STATUS_APPENDLIMIT (1u << 8)      /* RFC 7889; appendlimit_nil for NIL */
#define IMK_STATUS_MAILBOXID (1u << 9)        /* RFC 8474 */
#define IMK_STATUS_DELETED_STORAGE (1u << 10) /* RFC 9208 */

typedef struct imk_status_data {
    imk_str mailbox, mailbox_raw;
    int mailbox_not_utf7;
    unsigned present;
    uint64_t messages, uidnext, uidvalidity, unseen, recent, deleted, size, highestmodseq,
        appendlimit, deleted_storage;
    int appendlimit_nil;
    imk_str mailboxid;
    size_t extra_count; /* unknown items: name + value */
    const imk_fetch_extra *extras;
} imk_status_data;

/* SEARCH and SORT: numbers in the server's order, plus the CONDSTORE
 * (MODSEQ n) suffix of SEARCH (RFC 7162 section 3.1.5). */
typedef struct imk_search {
    size_t count;
    const uint32_t *numbers;
    int has_modseq;
    uint64_t modseq;
} imk_search;

/* THREAD (RFC 5256): a forest. A node with num 0 is a dummy parent (a
 * thread-list without a message of its own). The members of "(1 2 3)" are
 * a chain, each the only child of the one before: the server controls the
 * length of a chain, so walk chains with a loop, not by recursion (only
 * branch points, which are parenthesised on the wire, are bounded by
 * max_depth). */
typedef struct imk_thread_node {
    uint32_t num;
    size_t child_count;
    const struct imk_thread_node *children;
} imk_thread_node;

typedef struct imk_thread {
    size_t count;
    const imk_thread_node *roots;
} imk_thread;

/* CONTEXT=SEARCH update (RFC 5267): ADDTO / REMOVEFROM (position set). */
typedef struct imk_esearch_update {
    int remove; /* 0 = ADDTO, 1 = REMOVEFROM */
    uint64_t position;
    imk_seqset set;
} imk_esearch_update;

#define IMK_ESEARCH_MIN (1u << 0)
#define IMK_ESEARCH_MAX (1u << 1)
#define IMK_ESEARCH_COUNT (1u << 2)
#define IMK_ESEARCH_ALL (1u << 3)
#define IMK_ESEARCH_MODSEQ (1u << 4)
#define IMK_ESEARCH_PARTIAL (1u << 5) /* RFC 9394 */

/* ESEARCH (RFC 4731, RFC 9051 section 7.3.4). */
typedef struct imk_esearch {
    imk_str tag; /* the (TAG "x") correlator; data NULL if absent */
    int uid;
    unsigned present;
    uint32_t min, max;
    uint64_t count;
    imk_seqset all;
    uint64_t modseq;
    imk_range partial_range; /* PARTIAL (range set), RFC 9394: a range counted
                                from the end ("-1:-100") is stored negated in
                                two's complement: test (int32_t)first < 0 */
    imk_seqset partial;
    size_t update_count;
    const imk_esearch_update *updates;
    size_t extra_count;
    const imk_fetch_extra *extras;
} imk_esearch;

/* VANISHED (RFC 7162 section 3.2.10). */
typedef struct imk_vanished {
    int earlier;
    imk_seqset uids;
} imk_vanished;

/* NAMESPACE (RFC 2342, RFC 9051 section 7.3.2). */
typedef struct imk_namespace_desc {
    imk_str prefix;
    int delimiter; /* -1 for NIL */
    size_t extension_count;
    const imk_list_extra *extensions;
} imk_namespace_desc;

typedef struct imk_namespace_list {
    int nil;
    size_t count;
    const imk_namespace_desc *items;
} imk_namespace_list;

typedef struct imk_namespace {
    imk_namespace_list personal, other_users, shared;
} imk_namespace;

/* ID (RFC 2971): field/value pairs, or nil. */
typedef struct imk_id {
    int nil;
    imk_param_list fields;
} imk_id;

/* QUOTA (RFC 9208): resources with 64-bit usage and limit. */
typedef struct imk_quota_resource {
    imk_str name;
    uint64_t usage, limit;
} imk_quota_resource;

typedef struct imk_quota {
    imk_str root;
    size_t count;
    const imk_quota_resource *resources;
} imk_quota;

typedef struct imk_quotaroot {
    imk_str mailbox;
    imk_strlist roots;
} imk_quotaroot;

/* METADATA (RFC 5464): entries with values, or (unsolicited) names only. */
typedef struct imk_metadata {
    imk_str mailbox;
    int has_values;
    imk_param_list entries; /* value.data NULL for NIL or name-only */
} imk_metadata;

/* ACL, LISTRIGHTS, MYRIGHTS (RFC 4314). */
typedef struct imk_acl {
    imk_str mailbox;
    imk_param_list entries;      /* ACL: identifier -> rights */
    imk_str identifier;          /* LISTRIGHTS */
    imk_str rights;              /* LISTRIGHTS required rights; MYRIGHTS rights */
    imk_strlist optional_rights; /* LISTRIGHTS */
} imk_acl;

/* ------------------------------------------------------------------ */
/* The response                                                        */
/* ------------------------------------------------------------------ */

typedef enum imk_response_type {
    IMK_RESPONSE_UNTAGGED,
    IMK_RESPONSE_TAGGED,
    IMK_RESPONSE_CONTINUATION
} imk_response_type;

typedef enum imk_status {
    IMK_STATUS_NONE,
    IMK_STATUS_OK,
    IMK_STATUS_NO,
    IMK_STATUS_BAD,
    IMK_STATUS_PREAUTH,
    IMK_STATUS_BYE
} imk_status;

/* X(enum suffix, name as sent). */
#define IMK_KIND_TABLE(X)                                                                          \
    X(STATUS_RESPONSE, "")                                                                         \
    X(CONTINUATION, "")                                                                            \
    X(CAPABILITY, "CAPABILITY")                                                                    \
    X(ENABLED, "ENABLED")                                                                          \
    X(FLAGS, "FLAGS")                                                                              \
    X(LIST, "LIST")                                                                                \
    X(LSUB, "LSUB")                                                                                \
    X(STATUS, "STATUS")                                                                            \
    X(SEARCH, "SEARCH")                                                                            \
    X(SORT, "SORT")                                                                                \
    X(THREAD, "THREAD")                                                                            \
    X(ESEARCH, "ESEARCH")                                                                          \
    X(EXISTS, "EXISTS")                                                                            \
    X(RECENT, "RECENT")                                                                            \
    X(EXPUNGE, "EXPUNGE")                                                                          \
    X(FETCH, "FETCH")                                                                              \
    X(VANISHED, "VANISHED")                                                                        \
    X(NAMESPACE, "NAMESPACE")                                                                      \
    X(ID, "ID")                                                                                    \
    X(QUOTA, "QUOTA")                                                                              \
    X(QUOTAROOT, "QUOTAROOT")                                                                      \
    X(METADATA, "METADATA")                                                                        \
    X(ACL, "ACL")                                                                                  \
    X(LISTRIGHTS, "LISTRIGHTS")                                                                    \
    X(MYRIGHTS, "MYRIGHTS")                                                                        \
    X(GENERIC, "")

typedef enum imk_response_kind {
#define IMK_X_KIND(sfx, name) IMK_KIND_##sfx,
    IMK_KIND_TABLE(IMK_X_KIND)
#undef IMK_X_KIND
        IMK_KIND_COUNT_
} imk_response_kind;

/* "FETCH", "LIST", ...; "" for STATUS_RESPONSE, CONTINUATION, GENERIC. */
IMK_API const char *imk_response_kind_name(imk_response_kind kind);

/* "OK", "NO", "BAD", "PREAUTH", "BYE", or "" for NONE. */
IMK_API const char *imk_status_name(imk_status status);

/* Bits of imk_response.quirks: deviations from the RFC grammar that the
 * parser accepted (see imapkit/reader.h for the switches). */
#define IMK_QUIRK_TRAILING_SPACE (1u << 0)    /* Q1-Q5: SP before CRLF or ")" */
#define IMK_QUIRK_EXTRA_SPACES (1u << 1)      /* Q6: doubled SP */
#define IMK_QUIRK_MISSING_TEXT (1u << 2)      /* Q7: no SP/text after status or code */
#define IMK_QUIRK_BARE_LF (1u << 3)           /* Q10: LF without CR (off by default) */
#define IMK_QUIRK_BARE_CODE (1u << 4)         /* Q11: "* [CODE ...]" with no status word */
#define IMK_QUIRK_NUMBER_RANGE (1u << 5)      /* Q20-Q22: 0 or > 2^32-1 where nz-number32 */
#define IMK_QUIRK_NEGATIVE_NUMBER (1u << 6)   /* Q23, Q24: -1 taken as 0 */
#define IMK_QUIRK_FLOAT_NUMBER (1u << 7)      /* Q25: 9.3736e+06 in a number slot */
#define IMK_QUIRK_BODY_NIL (1u << 8)          /* Q27-Q31, Q33: NIL where a body field is required */
#define IMK_QUIRK_QUOTE_HEURISTIC (1u << 9)   /* Q34: unescaped '"' inside a quoted string */
#define IMK_QUIRK_ENVELOPE (1u << 10)         /* Q35: malformed ENVELOPE accepted */
#define IMK_QUIRK_ATOM_MAILBOX (1u << 11)     /* Q41: unquoted name with SP/TAB to end of line */
#define IMK_QUIRK_CODE_TEXT (1u << 12)        /* Q12, Q13: code arguments not in the grammar */
#define IMK_QUIRK_FETCH_TRAILER (1u << 13)    /* Q37, Q39: items after a literal without SP */
#define IMK_QUIRK_EMPTY_ITEM (1u << 14)       /* Q38: FETCH item with no value */
#define IMK_QUIRK_ESEARCH_MODSEQ (1u << 15)   /* Q47: parenthesised (MODSEQ n) in ESEARCH */
#define IMK_QUIRK_CAPABILITY_SPACE (1u << 16) /* Q44: "LITERAL +" */
#define IMK_QUIRK_TAGGED_BYE (1u << 17)       /* Q16: "tag BYE ..." */

typedef struct imk_response {
    imk_response_type type;
    imk_response_kind kind;
    imk_str tag;          /* TAGGED only */
    imk_status status;    /* STATUS_RESPONSE (untagged or tagged) */
    const imk_code *code; /* NULL when the response has no [code] */
    imk_str text;         /* resp-text text (STATUS_RESPONSE, CONTINUATION) */
    imk_str name;         /* the data response's name as sent ("FETCH", "XFOO") */
    unsigned quirks;      /* IMK_QUIRK_* bits of deviations accepted */
    uint64_t number;      /* EXISTS, RECENT, EXPUNGE; FETCH's seq as well */
    union {
        imk_strlist capability;   /* CAPABILITY, ENABLED */
        imk_strlist flags;        /* FLAGS */
        imk_list list;            /* LIST, LSUB */
        imk_status_data status;   /* STATUS */
        imk_search search;        /* SEARCH, SORT */
        imk_thread thread;        /* THREAD */
        imk_esearch esearch;      /* ESEARCH */
        imk_fetch fetch;          /* FETCH */
        imk_vanished vanished;    /* VANISHED */
        imk_namespace namespace_; /* NAMESPACE */
        imk_id id;                /* ID */
        imk_quota quota;          /* QUOTA */
        imk_quotaroot quotaroot;  /* QUOTAROOT */
        imk_metadata metadata;    /* METADATA */
        imk_acl acl;              /* ACL, LISTRIGHTS, MYRIGHTS */
        const imk_value *generic; /* GENERIC: the values after the name (a LIST) */
    } u;
    /* The response's bytes as framed (lines and inline literals); streamed
     * body literals are not included. */
    imk_str raw;
} imk_response;

#ifdef __cplusplus
}
#endif

#endif
