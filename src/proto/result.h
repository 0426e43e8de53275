/* SPDX-License-Identifier: MIT */
/*
 * Result accumulation: copying the parts of responses that belong to a
 * command out of the reader's per-response arena into the command's own
 * storage, and merging them (DESIGN.md section 1 rule 4).
 *
 * A builder owns an arena (its memory is freed with the builder) and
 * produces an imk_result whose pointers stay valid until
 * imk__result_free(). Every add function deep-copies what it is given, so
 * the response it came from may die right after. Adding is bounded by
 * `max_bytes` (IMK_ELIMIT when exceeded; the builder stays usable and
 * reports what it had). Errors: IMK_ENOMEM, IMK_ELIMIT; on error nothing
 * of that call was added.
 *
 * FETCH merging: several FETCH responses for the same message (same UID
 * when both carry one, else same sequence number) become one record; items
 * present in a later response replace earlier ones (FLAGS, MODSEQ), sections
 * and extras accumulate. Records keep the order in which their message
 * first appeared. Lookup of a record is O(1) on average (hash on UID / seq).
 */
#ifndef IMK_PROTO_RESULT_H
#define IMK_PROTO_RESULT_H

#include "imapkit/session.h"
#include "util/arena.h"

typedef struct imk__result imk__result;

int imk__result_new(const imk_allocator *alloc, size_t max_bytes, imk__result **out);
void imk__result_free(imk__result *r); /* NULL ok */

/* The result as built so far; pointers valid until the next add or free. */
const imk_result *imk__result_get(imk__result *r);

/* Tagged completion (status, code, text) or a local failure (error). */
int imk__result_set_status(imk__result *r, imk_status status, const imk_code *code, imk_str text);
void imk__result_set_error(imk__result *r, int error, imk_str text);

int imk__result_add_fetch(imk__result *r, const imk_fetch *f);
/* SEARCH / SORT lines: numbers appended; a (MODSEQ n) keeps the highest. */
int imk__result_add_search(imk__result *r, const imk_search *s);
int imk__result_set_thread(imk__result *r, const imk_thread *t); /* replaces; merges roots */
int imk__result_set_esearch(imk__result *r, const imk_esearch *e);
int imk__result_add_list(imk__result *r, const imk_list *l);
/* A STATUS: attached to the LIST entry of the same mailbox name when there
 * is one (LIST-STATUS), else added to `statuses`. */
int imk__result_add_status(imk__result *r, const imk_status_data *st);
int imk__result_set_namespace(imk__result *r, const imk_namespace *ns);
int imk__result_set_id(imk__result *r, const imk_id *id);
int imk__result_add_quota(imk__result *r, const imk_quota *q);
int imk__result_set_quotaroot(imk__result *r, const imk_quotaroot *q);
int imk__result_add_metadata(imk__result *r, const imk_metadata *m);
int imk__result_set_enabled(imk__result *r, const imk_strlist *caps); /* appends */
int imk__result_set_capabilities(imk__result *r, const imk_strlist *caps);
int imk__result_set_acl(imk__result *r, const imk_acl *acl);
/* From a COPYUID or APPENDUID code (tagged or untagged). */
int imk__result_set_uidplus(imk__result *r, const imk_code *code);
int imk__result_add_expunged(imk__result *r, uint32_t uid);

/* Deep copies usable elsewhere (e.g. the session's capability list): into
 * the given arena. */
int imk__copy_str(imk__arena *ar, imk_str in, imk_str *out);
int imk__copy_strlist(imk__arena *ar, const imk_strlist *in, imk_strlist *out);
int imk__copy_code(imk__arena *ar, const imk_code *in, const imk_code **out);

#endif
