/* SPDX-License-Identifier: MIT */
/*
 * Responses as JSON (see json.h; the schema is docs/json-schema.md).
 *
 * The conversion walks the typed response model of imapkit/response.h and
 * builds a jansson tree; jansson does every bit of JSON syntax and escaping.
 * Three rules keep the output faithful and machine-readable:
 *
 *   - bytes become a JSON string only when they are valid UTF-8 (jansson
 *     checks; embedded NUL is fine, json_stringn keeps it as \u0000);
 *     anything else becomes {"base64": "..."} so no byte is lost or altered;
 *   - numbers are unsigned 64-bit in the model and signed 64-bit in jansson:
 *     values above INT64_MAX become strings of digits;
 *   - a key appears when the server sent the item: FETCH items by their
 *     presence bits, optional fields when set. NIL is null.
 *
 * Out of memory anywhere makes the whole conversion return NULL: every
 * setter goes through put()/push(), which record the failure in the
 * conversion context (a NULL value is never inserted, and jansson's *_new
 * setters release the value on failure, so nothing leaks).
 *
 * The collector at the bottom turns the reader's event sequence
 *
 *     BODY_BEGIN CHUNK* BODY_END  (zero or more, one per streamed section)
 *     RESPONSE (the FETCH those sections belong to)  |  ERROR
 *
 * into one object per RESPONSE or ERROR, with the streamed bytes attached
 * to the FETCH's sections in order.
 */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Conversion context and setters                                      */
/* ------------------------------------------------------------------ */

typedef struct conv {
    int failed; /* an allocation failed: the result is discarded */
    const cli_json_options *opts;
    const cli_json_body *bodies;
    size_t body_count;
    size_t next_body;
    cli_json_text_fn decode; /* header text for people (cli_json_envelope), or NULL */
} conv;

static void put(conv *cv, json_t *obj, const char *key, json_t *value)
{
    if (value == NULL || obj == NULL) {
        json_decref(value);
        cv->failed = 1;
        return;
    }
    if (json_object_set_new_nocheck(obj, key, value) != 0)
        cv->failed = 1;
}

static void push(conv *cv, json_t *arr, json_t *value)
{
    if (value == NULL || arr == NULL) {
        json_decref(value);
        cv->failed = 1;
        return;
    }
    if (json_array_append_new(arr, value) != 0)
        cv->failed = 1;
}

static json_t *new_object(conv *cv)
{
    json_t *o = json_object();
    if (o == NULL)
        cv->failed = 1;
    return o;
}

static json_t *new_array(conv *cv)
{
    json_t *a = json_array();
    if (a == NULL)
        cv->failed = 1;
    return a;
}

/* ------------------------------------------------------------------ */
/* Scalars                                                             */
/* ------------------------------------------------------------------ */

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 base64 with padding, as a JSON string. */
static json_t *base64_string(const unsigned char *p, size_t len)
{
    cli_buf b = {0};
    if (len / 3 >= SIZE_MAX / 4 - 1 || cli_buf_reserve(&b, (len / 3 + 1) * 4) != 0)
        return NULL;
    char *out = b.data;
    size_t i = 0, o = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | (unsigned)p[i + 2];
        out[o++] = base64_alphabet[(v >> 18) & 63];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = base64_alphabet[(v >> 6) & 63];
        out[o++] = base64_alphabet[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        out[o++] = base64_alphabet[(v >> 18) & 63];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? base64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    json_t *s = json_stringn_nocheck(o != 0 ? out : "", o);
    cli_buf_free(&b);
    return s;
}

json_t *cli_json_bytes(const char *data, size_t len)
{
    if (len == 0)
        return json_string_nocheck("");
    /* json_stringn validates UTF-8 (overlong forms, surrogates and code
     * points above U+10FFFF are rejected) and keeps NUL bytes. */
    json_t *s = json_stringn(data, len);
    if (s != NULL)
        return s;
    json_t *b64 = base64_string((const unsigned char *)data, len);
    if (b64 == NULL)
        return NULL;
    json_t *o = json_object();
    if (o == NULL || json_object_set_new_nocheck(o, "base64", b64) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cli_json_str(imk_str s)
{
    if (s.data == NULL)
        return json_null();
    return cli_json_bytes(s.data, s.len);
}

json_t *cli_json_u64(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
    return json_stringn_nocheck(digits, (size_t)n);
}

/* A hierarchy delimiter byte, or -1 for NIL. */
static json_t *delimiter_json(int delimiter)
{
    if (delimiter < 0)
        return json_null();
    char c = (char)delimiter;
    return cli_json_bytes(&c, 1);
}

static json_t *strlist_json(conv *cv, imk_strlist l)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < l.count; i++)
        push(cv, a, cli_json_str(l.items[i]));
    return a;
}

/* An imk_strlist where an empty list stands for NIL: null when empty. */
static json_t *strlist_or_null(conv *cv, imk_strlist l)
{
    return l.count == 0 ? json_null() : strlist_json(cv, l);
}

/* name/value pairs as [[name, value], ...]: order and duplicates kept. */
static json_t *pairs_json(conv *cv, imk_param_list l)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < l.count; i++) {
        json_t *pair = new_array(cv);
        push(cv, pair, cli_json_str(l.items[i].name));
        push(cv, pair, cli_json_str(l.items[i].value));
        push(cv, a, pair);
    }
    return a;
}

static json_t *pairs_or_null(conv *cv, imk_param_list l)
{
    return l.count == 0 ? json_null() : pairs_json(cv, l);
}

/* A sequence set as its compact IMAP text, ranges in the server's order:
 * "1:3,7,9:*" (0 stands for "*"). */
static json_t *seqset_json(imk_seqset s)
{
    cli_buf b = {0};
    int failed = 0;
    for (size_t i = 0; i < s.count && !failed; i++) {
        char part[40];
        char first[12], last[12];
        imk_range r = s.ranges[i];
        if (r.first == 0)
            snprintf(first, sizeof(first), "*");
        else
            snprintf(first, sizeof(first), "%" PRIu32, r.first);
        if (r.last == 0)
            snprintf(last, sizeof(last), "*");
        else
            snprintf(last, sizeof(last), "%" PRIu32, r.last);
        int n;
        if (r.first == r.last)
            n = snprintf(part, sizeof(part), "%s%s", i ? "," : "", first);
        else
            n = snprintf(part, sizeof(part), "%s%s:%s", i ? "," : "", first, last);
        failed = cli_buf_append(&b, part, (size_t)n) != 0;
    }
    json_t *j = failed ? NULL : json_stringn_nocheck(b.len != 0 ? b.data : "", b.len);
    cli_buf_free(&b);
    return j;
}

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void zone_parts(int zone_minutes, char *sign, int *hours, int *minutes)
{
    int z = zone_minutes;
    *sign = '+';
    if (z < 0) {
        *sign = '-';
        z = -z;
    }
    *hours = z / 60;
    *minutes = z % 60;
}

/* ISO 8601 with the server's zone offset: "1996-07-17T02:44:25-07:00". */
static json_t *datetime_iso(const imk_datetime *d)
{
    char sign;
    int zh, zm;
    zone_parts(d->zone_minutes, &sign, &zh, &zm);
    char text[80];
    int n = snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", d->year,
                     d->month, d->day, d->hour, d->minute, d->second, sign, zh, zm);
    if (n < 0 || (size_t)n >= sizeof(text))
        return NULL;
    return json_stringn_nocheck(text, (size_t)n);
}

/* The IMAP date-time form, rebuilt from the parsed value:
 * "17-Jul-1996 02:44:25 -0700" (the day always has two digits). */
static json_t *datetime_imap(const imk_datetime *d)
{
    char sign;
    int zh, zm;
    zone_parts(d->zone_minutes, &sign, &zh, &zm);
    const char *mon = d->month >= 1 && d->month <= 12 ? month_names[d->month - 1] : "???";
    char text[80];
    int n = snprintf(text, sizeof(text), "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", d->day, mon,
                     d->year, d->hour, d->minute, d->second, sign, zh, zm);
    if (n < 0 || (size_t)n >= sizeof(text))
        return NULL;
    return json_stringn_nocheck(text, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* Generic values                                                      */
/* ------------------------------------------------------------------ */

static json_t *value_json(conv *cv, const imk_value *v)
{
    if (v == NULL)
        return json_null();
    switch (v->type) {
    case IMK_VALUE_NIL:
        return json_null();
    case IMK_VALUE_NUMBER:
        return cli_json_u64(v->number);
    case IMK_VALUE_ATOM:
    case IMK_VALUE_STRING:
        return cli_json_str(v->str);
    case IMK_VALUE_LITERAL:
        if (v->streamed) {
            json_t *o = new_object(cv);
            put(cv, o, "size", cli_json_u64(v->number));
            return o;
        }
        return cli_json_bytes(v->str.data != NULL ? v->str.data : "", v->str.len);
    case IMK_VALUE_LIST: {
        json_t *a = new_array(cv);
        for (size_t i = 0; i < v->count; i++)
            push(cv, a, value_json(cv, &v->items[i]));
        return a;
    }
    }
    return json_null();
}

json_t *cli_json_value(const imk_value *v)
{
    conv cv = {0};
    json_t *j = value_json(&cv, v);
    if (cv.failed) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Extra items as [{"name": ..., "value": ...}, ...] in the server's order. */
static json_t *extras_json(conv *cv, const imk_fetch_extra *items, size_t count)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < count; i++) {
        json_t *o = new_object(cv);
        put(cv, o, "name", cli_json_str(items[i].name));
        put(cv, o, "value", value_json(cv, items[i].value));
        push(cv, a, o);
    }
    return a;
}

static json_t *list_extras_json(conv *cv, const imk_list_extra *items, size_t count)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < count; i++) {
        json_t *o = new_object(cv);
        put(cv, o, "name", cli_json_str(items[i].tag));
        put(cv, o, "value", value_json(cv, items[i].value));
        push(cv, a, o);
    }
    return a;
}

/* ------------------------------------------------------------------ */
/* Response codes                                                      */
/* ------------------------------------------------------------------ */

/* `s` equals `word` (ASCII case-insensitive). imk_str data may point into
 * the response buffer, so compare by length, never as C strings. */
static int str_is(imk_str s, const char *word)
{
    size_t n = strlen(word);
    if (s.data == NULL || s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char a = s.data[i], b = word[i];
        if (a >= 'a' && a <= 'z')
            a = (char)(a - 'a' + 'A');
        if (a != b)
            return 0;
    }
    return 1;
}

static json_t *code_json(conv *cv, const imk_code *c)
{
    json_t *o = new_object(cv);
    if (c->kind == IMK_CODE_OTHER)
        put(cv, o, "name", cli_json_str(c->name));
    else
        put(cv, o, "name", json_string_nocheck(imk_code_kind_name(c->kind)));

    switch (c->kind) {
    case IMK_CODE_UIDNEXT:
    case IMK_CODE_UIDVALIDITY:
    case IMK_CODE_UNSEEN:
    case IMK_CODE_HIGHESTMODSEQ:
        put(cv, o, "value", cli_json_u64(c->number));
        break;
    case IMK_CODE_METADATA:
        put(cv, o, "subcode", cli_json_str(c->string));
        if (str_is(c->string, "LONGENTRIES") || str_is(c->string, "MAXSIZE"))
            put(cv, o, "value", cli_json_u64(c->number));
        break;
    case IMK_CODE_CAPABILITY:
        put(cv, o, "capabilities", strlist_json(cv, c->list));
        break;
    case IMK_CODE_PERMANENTFLAGS:
        put(cv, o, "flags", strlist_json(cv, c->list));
        break;
    case IMK_CODE_BADCHARSET:
        put(cv, o, "charsets", strlist_json(cv, c->list));
        break;
    case IMK_CODE_BADEVENT:
        put(cv, o, "events", strlist_json(cv, c->list));
        break;
    case IMK_CODE_USEATTR:
        put(cv, o, "attributes", strlist_json(cv, c->list));
        break;
    case IMK_CODE_URLMECH:
        put(cv, o, "mechanisms", strlist_json(cv, c->list));
        break;
    case IMK_CODE_APPENDUID:
        put(cv, o, "uidvalidity", cli_json_u64(c->uidvalidity));
        put(cv, o, "uids", seqset_json(c->set));
        break;
    case IMK_CODE_COPYUID:
        put(cv, o, "uidvalidity", cli_json_u64(c->uidvalidity));
        put(cv, o, "source", seqset_json(c->set));
        put(cv, o, "destination", seqset_json(c->set2));
        break;
    case IMK_CODE_MODIFIED:
        put(cv, o, "set", seqset_json(c->set));
        break;
    case IMK_CODE_REFERRAL:
        put(cv, o, "url", cli_json_str(c->string));
        break;
    case IMK_CODE_MAILBOXID:
        put(cv, o, "mailboxid", cli_json_str(c->string));
        break;
    case IMK_CODE_NOUPDATE:
        put(cv, o, "tag", cli_json_str(c->string));
        break;
    case IMK_CODE_INPROGRESS:
        put(cv, o, "tag", cli_json_str(c->progress_tag));
        put(cv, o, "count", c->has_progress_count ? cli_json_u64(c->progress_count) : json_null());
        put(cv, o, "goal", c->has_progress_goal ? cli_json_u64(c->progress_goal) : json_null());
        break;
    case IMK_CODE_OTHER:
        /* Unknown code: its text, and its generic parse when it has one. */
        if (c->raw.len != 0)
            put(cv, o, "raw", cli_json_str(c->raw));
        if (c->value != NULL)
            put(cv, o, "args", value_json(cv, c->value));
        break;
    default:
        break;
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* ENVELOPE and BODYSTRUCTURE                                          */
/* ------------------------------------------------------------------ */

/* Header text (subject, display names): raw, or decoded for people when
 * the caller gave a decoder (`parse` never does: it shows the wire). */
static json_t *header_text(conv *cv, imk_str s)
{
    if (cv->decode == NULL || s.data == NULL)
        return cli_json_str(s);
    return cv->decode(s);
}

/* "mailbox@host" of an address, null for the group markers (host NIL). */
static json_t *address_spec(conv *cv, const imk_address *ad)
{
    if (ad->mailbox.data == NULL || ad->host.data == NULL)
        return json_null();
    cli_buf b = {0};
    if (cli_buf_append(&b, ad->mailbox.data, ad->mailbox.len) != 0 ||
        cli_buf_append(&b, "@", 1) != 0 || cli_buf_append(&b, ad->host.data, ad->host.len) != 0) {
        cli_buf_free(&b);
        cv->failed = 1;
        return NULL;
    }
    json_t *j = cli_json_bytes(b.data, b.len);
    cli_buf_free(&b);
    return j;
}

/* An address list; null for NIL (the grammar has no empty list). */
static json_t *addresses_json(conv *cv, imk_address_list l)
{
    if (l.count == 0)
        return json_null();
    json_t *a = new_array(cv);
    for (size_t i = 0; i < l.count; i++) {
        const imk_address *ad = &l.items[i];
        json_t *o = new_object(cv);
        put(cv, o, "name", header_text(cv, ad->name));
        put(cv, o, "adl", cli_json_str(ad->adl));
        put(cv, o, "mailbox", cli_json_str(ad->mailbox));
        put(cv, o, "host", cli_json_str(ad->host));
        if (cv->decode != NULL)
            put(cv, o, "address", address_spec(cv, ad));
        push(cv, a, o);
    }
    return a;
}

static json_t *envelope_json(conv *cv, const imk_envelope *e)
{
    if (e == NULL)
        return json_null();
    json_t *o = new_object(cv);
    put(cv, o, "date", cli_json_str(e->date));
    put(cv, o, "subject", header_text(cv, e->subject));
    put(cv, o, "from", addresses_json(cv, e->from));
    put(cv, o, "sender", addresses_json(cv, e->sender));
    put(cv, o, "reply_to", addresses_json(cv, e->reply_to));
    put(cv, o, "to", addresses_json(cv, e->to));
    put(cv, o, "cc", addresses_json(cv, e->cc));
    put(cv, o, "bcc", addresses_json(cv, e->bcc));
    put(cv, o, "in_reply_to", cli_json_str(e->in_reply_to));
    put(cv, o, "message_id", cli_json_str(e->message_id));
    return o;
}

static json_t *disposition_json(conv *cv, const imk_body *b)
{
    if (b->disposition.data == NULL)
        return json_null();
    json_t *o = new_object(cv);
    put(cv, o, "type", cli_json_str(b->disposition));
    put(cv, o, "params", pairs_or_null(cv, b->disposition_params));
    return o;
}

/* One node and its children; the nesting is bounded by the reader's max_depth. */
static json_t *body_json(conv *cv, const imk_body *b)
{
    if (b == NULL)
        return json_null();
    json_t *o = new_object(cv);
    put(cv, o, "type", cli_json_str(b->type));
    put(cv, o, "subtype", cli_json_str(b->subtype));
    if (!b->multipart) {
        put(cv, o, "params", pairs_or_null(cv, b->params));
        put(cv, o, "id", cli_json_str(b->id));
        put(cv, o, "description", cli_json_str(b->description));
        put(cv, o, "encoding", cli_json_str(b->encoding));
        put(cv, o, "size", cli_json_u64(b->size));
        if (b->has_lines)
            put(cv, o, "lines", cli_json_u64(b->lines));
        if (b->envelope != NULL)
            put(cv, o, "envelope", envelope_json(cv, b->envelope));
    }
    if (b->multipart || b->part_count != 0) {
        json_t *parts = new_array(cv);
        for (size_t i = 0; i < b->part_count; i++)
            push(cv, parts, body_json(cv, &b->parts[i]));
        put(cv, o, "parts", parts);
    }
    if (b->has_ext) {
        if (b->multipart)
            put(cv, o, "params", pairs_or_null(cv, b->params));
        else
            put(cv, o, "md5", cli_json_str(b->md5));
        put(cv, o, "disposition", disposition_json(cv, b));
        put(cv, o, "languages", strlist_or_null(cv, b->languages));
        put(cv, o, "location", cli_json_str(b->location));
        if (b->extension_count != 0) {
            json_t *ext = new_array(cv);
            for (size_t i = 0; i < b->extension_count; i++)
                push(cv, ext, value_json(cv, &b->extensions[i]));
            put(cv, o, "extensions", ext);
        }
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* FETCH                                                               */
/* ------------------------------------------------------------------ */

static uint64_t max_body(const conv *cv)
{
    if (cv->opts == NULL || cv->opts->max_body == 0)
        return CLI_JSON_MAX_BODY_DEFAULT;
    return cv->opts->max_body;
}

static json_t *section_json(conv *cv, const imk_fetch_section *s)
{
    json_t *o = new_object(cv);
    put(cv, o, "item", json_string_nocheck(imk_section_item_name(s->item)));
    if (s->item == IMK_SECTION_BODY || s->item == IMK_SECTION_BINARY ||
        s->item == IMK_SECTION_BINARY_SIZE)
        put(cv, o, "spec", cli_json_str(s->spec));
    if (s->has_origin)
        put(cv, o, "origin", cli_json_u64(s->origin));
    if (s->item == IMK_SECTION_BINARY_SIZE) {
        put(cv, o, "size", cli_json_u64(s->size));
        return o;
    }
    int no_data = cv->opts != NULL && cv->opts->no_body_data;
    if (s->streamed) {
        const cli_json_body *body = NULL;
        if (cv->next_body < cv->body_count)
            body = &cv->bodies[cv->next_body++];
        put(cv, o, "size", cli_json_u64(s->size));
        if (no_data)
            return o;
        if (body != NULL && body->kept && body->data.len == s->size)
            put(cv, o, "data",
                cli_json_bytes(body->data.data != NULL ? body->data.data : "", body->data.len));
        else
            put(cv, o, "truncated", json_true());
        return o;
    }
    if (s->data.data == NULL) {
        put(cv, o, "data", json_null());
        return o;
    }
    put(cv, o, "size", cli_json_u64(s->data.len));
    if (no_data)
        return o;
    if ((uint64_t)s->data.len > max_body(cv))
        put(cv, o, "truncated", json_true());
    else
        put(cv, o, "data", cli_json_str(s->data));
    return o;
}

static json_t *fetch_items_json(conv *cv, const imk_fetch *f)
{
    json_t *o = new_object(cv);
    if (f->present & IMK_FETCH_UID)
        put(cv, o, "uid", json_integer(f->uid));
    if (f->present & IMK_FETCH_FLAGS)
        put(cv, o, "flags", strlist_json(cv, f->flags));
    if (f->present & IMK_FETCH_MODSEQ)
        put(cv, o, "modseq", cli_json_u64(f->modseq));
    if (f->present & IMK_FETCH_INTERNALDATE) {
        put(cv, o, "internaldate", datetime_iso(&f->internaldate));
        put(cv, o, "internaldate_imap", datetime_imap(&f->internaldate));
    }
    if (f->present & IMK_FETCH_RFC822_SIZE)
        put(cv, o, "rfc822_size", cli_json_u64(f->rfc822_size));
    if (f->present & IMK_FETCH_ENVELOPE)
        put(cv, o, "envelope", envelope_json(cv, f->envelope));
    if (f->present & IMK_FETCH_BODY)
        put(cv, o, "body", body_json(cv, f->body));
    if (f->present & IMK_FETCH_BODYSTRUCTURE)
        put(cv, o, "bodystructure", body_json(cv, f->body));
    if (f->present & IMK_FETCH_EMAILID)
        put(cv, o, "emailid", cli_json_str(f->emailid));
    if (f->present & IMK_FETCH_THREADID)
        put(cv, o, "threadid", cli_json_str(f->threadid));
    if (f->present & IMK_FETCH_SAVEDATE)
        put(cv, o, "savedate", f->has_savedate ? datetime_iso(&f->savedate) : json_null());
    if (f->present & IMK_FETCH_PREVIEW)
        put(cv, o, "preview", cli_json_str(f->preview));
    if (f->section_count != 0) {
        json_t *a = new_array(cv);
        for (size_t i = 0; i < f->section_count; i++)
            push(cv, a, section_json(cv, &f->sections[i]));
        put(cv, o, "sections", a);
    }
    if (f->extra_count != 0)
        put(cv, o, "extras", extras_json(cv, f->extras, f->extra_count));
    return o;
}

/* ------------------------------------------------------------------ */
/* Other data responses                                                */
/* ------------------------------------------------------------------ */

static void mailbox_fields(conv *cv, json_t *o, imk_str name, imk_str raw, int not_utf7)
{
    put(cv, o, "mailbox", cli_json_str(name));
    if (raw.data != NULL &&
        (name.data == NULL || raw.len != name.len || memcmp(raw.data, name.data, raw.len) != 0))
        put(cv, o, "mailbox_raw", cli_json_str(raw));
    if (not_utf7)
        put(cv, o, "mailbox_not_utf7", json_true());
}

static void list_fields(conv *cv, json_t *o, const imk_list *l)
{
    put(cv, o, "attributes", strlist_json(cv, l->attributes));
    put(cv, o, "delimiter", delimiter_json(l->delimiter));
    mailbox_fields(cv, o, l->mailbox, l->mailbox_raw, l->mailbox_not_utf7);
    if (l->childinfo.count != 0)
        put(cv, o, "childinfo", strlist_json(cv, l->childinfo));
    if (l->oldname.data != NULL)
        put(cv, o, "oldname", cli_json_str(l->oldname));
    if (l->extra_count != 0)
        put(cv, o, "extended", list_extras_json(cv, l->extras, l->extra_count));
}

static void status_fields(conv *cv, json_t *o, const imk_status_data *s)
{
    mailbox_fields(cv, o, s->mailbox, s->mailbox_raw, s->mailbox_not_utf7);
    json_t *items = new_object(cv);
    if (s->present & IMK_STATUS_MESSAGES)
        put(cv, items, "messages", cli_json_u64(s->messages));
    if (s->present & IMK_STATUS_UIDNEXT)
        put(cv, items, "uidnext", cli_json_u64(s->uidnext));
    if (s->present & IMK_STATUS_UIDVALIDITY)
        put(cv, items, "uidvalidity", cli_json_u64(s->uidvalidity));
    if (s->present & IMK_STATUS_UNSEEN)
        put(cv, items, "unseen", cli_json_u64(s->unseen));
    if (s->present & IMK_STATUS_RECENT)
        put(cv, items, "recent", cli_json_u64(s->recent));
    if (s->present & IMK_STATUS_DELETED)
        put(cv, items, "deleted", cli_json_u64(s->deleted));
    if (s->present & IMK_STATUS_SIZE)
        put(cv, items, "size", cli_json_u64(s->size));
    if (s->present & IMK_STATUS_HIGHESTMODSEQ)
        put(cv, items, "highestmodseq", cli_json_u64(s->highestmodseq));
    if (s->present & IMK_STATUS_APPENDLIMIT)
        put(cv, items, "appendlimit",
            s->appendlimit_nil ? json_null() : cli_json_u64(s->appendlimit));
    if (s->present & IMK_STATUS_MAILBOXID)
        put(cv, items, "mailboxid", cli_json_str(s->mailboxid));
    if (s->present & IMK_STATUS_DELETED_STORAGE)
        put(cv, items, "deleted_storage", cli_json_u64(s->deleted_storage));
    put(cv, o, "items", items);
    if (s->extra_count != 0)
        put(cv, o, "extras", extras_json(cv, s->extras, s->extra_count));
}

static void search_fields(conv *cv, json_t *o, const imk_search *s)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < s->count; i++)
        push(cv, a, json_integer(s->numbers[i]));
    put(cv, o, "numbers", a);
    if (s->has_modseq)
        put(cv, o, "modseq", cli_json_u64(s->modseq));
}

/*
 * A thread in RFC 5256's own shape: the chain of single descendants as
 * numbers, then one array per branch, so (3 6 (4 23)(44 7 96)) becomes
 * [3, 6, [4, 23], [44, 7, 96]]. A chain is followed in a loop, not by
 * recursion: the server controls its length (the parser links each member
 * as the only child of the one before). Recursion happens only at branch
 * points, and each branch is a parenthesised list on the wire, so its
 * depth is bounded by the reader's max_depth; the JSON nesting is too,
 * which keeps the output readable by parsers with recursion limits.
 */
static json_t *thread_json(conv *cv, const imk_thread_node *n)
{
    json_t *a = new_array(cv);
    for (;;) {
        if (n->num != 0)
            push(cv, a, json_integer(n->num));
        if (n->child_count == 1) {
            n = &n->children[0];
            continue;
        }
        for (size_t i = 0; i < n->child_count; i++)
            push(cv, a, thread_json(cv, &n->children[i]));
        return a;
    }
}

static void thread_fields(conv *cv, json_t *o, const imk_thread *t)
{
    json_t *a = new_array(cv);
    for (size_t i = 0; i < t->count; i++)
        push(cv, a, thread_json(cv, &t->roots[i]));
    put(cv, o, "threads", a);
}

/* A PARTIAL range (RFC 9394): "first:last", where a negative bound (counted
 * from the end of the results) is stored by the parser in two's complement
 * and printed with its minus sign: "-1:-100". */
static json_t *partial_range_json(imk_range r)
{
    char text[32];
    int32_t first = (int32_t)r.first, last = (int32_t)r.last;
    int n;
    if (first < 0 || last < 0)
        n = snprintf(text, sizeof(text), "%" PRId64 ":%" PRId64,
                     first < 0 ? (int64_t)first : (int64_t)r.first,
                     last < 0 ? (int64_t)last : (int64_t)r.last);
    else
        n = snprintf(text, sizeof(text), "%" PRIu32 ":%" PRIu32, r.first, r.last);
    return json_stringn_nocheck(text, (size_t)n);
}

static void esearch_fields(conv *cv, json_t *o, const imk_esearch *e)
{
    if (e->tag.data != NULL)
        put(cv, o, "search_tag", cli_json_str(e->tag));
    put(cv, o, "uid", json_boolean(e->uid));
    if (e->present & IMK_ESEARCH_MIN)
        put(cv, o, "min", json_integer(e->min));
    if (e->present & IMK_ESEARCH_MAX)
        put(cv, o, "max", json_integer(e->max));
    if (e->present & IMK_ESEARCH_COUNT)
        put(cv, o, "count", cli_json_u64(e->count));
    if (e->present & IMK_ESEARCH_ALL)
        put(cv, o, "all", seqset_json(e->all));
    if (e->present & IMK_ESEARCH_MODSEQ)
        put(cv, o, "modseq", cli_json_u64(e->modseq));
    if (e->present & IMK_ESEARCH_PARTIAL) {
        json_t *p = new_object(cv);
        put(cv, p, "range", partial_range_json(e->partial_range));
        put(cv, p, "set", e->partial.count != 0 ? seqset_json(e->partial) : json_null());
        put(cv, o, "partial", p);
    }
    if (e->update_count != 0) {
        json_t *a = new_array(cv);
        for (size_t i = 0; i < e->update_count; i++) {
            const imk_esearch_update *u = &e->updates[i];
            json_t *uo = new_object(cv);
            put(cv, uo, "op", json_string_nocheck(u->remove ? "REMOVEFROM" : "ADDTO"));
            put(cv, uo, "position", cli_json_u64(u->position));
            put(cv, uo, "set", seqset_json(u->set));
            push(cv, a, uo);
        }
        put(cv, o, "updates", a);
    }
    if (e->extra_count != 0)
        put(cv, o, "extras", extras_json(cv, e->extras, e->extra_count));
}

static json_t *namespace_list_json(conv *cv, const imk_namespace_list *l)
{
    if (l->nil)
        return json_null();
    json_t *a = new_array(cv);
    for (size_t i = 0; i < l->count; i++) {
        const imk_namespace_desc *d = &l->items[i];
        json_t *o = new_object(cv);
        put(cv, o, "prefix", cli_json_str(d->prefix));
        put(cv, o, "delimiter", delimiter_json(d->delimiter));
        if (d->extension_count != 0)
            put(cv, o, "extensions", list_extras_json(cv, d->extensions, d->extension_count));
        push(cv, a, o);
    }
    return a;
}

static void quota_fields(conv *cv, json_t *o, const imk_quota *q)
{
    put(cv, o, "root", cli_json_str(q->root));
    json_t *a = new_array(cv);
    for (size_t i = 0; i < q->count; i++) {
        json_t *r = new_object(cv);
        put(cv, r, "name", cli_json_str(q->resources[i].name));
        put(cv, r, "usage", cli_json_u64(q->resources[i].usage));
        put(cv, r, "limit", cli_json_u64(q->resources[i].limit));
        push(cv, a, r);
    }
    put(cv, o, "resources", a);
}

static void metadata_fields(conv *cv, json_t *o, const imk_metadata *m)
{
    put(cv, o, "mailbox", cli_json_str(m->mailbox));
    if (m->has_values) {
        put(cv, o, "entries", pairs_json(cv, m->entries));
    } else {
        json_t *a = new_array(cv);
        for (size_t i = 0; i < m->entries.count; i++)
            push(cv, a, cli_json_str(m->entries.items[i].name));
        put(cv, o, "entry_names", a);
    }
}

/* ------------------------------------------------------------------ */
/* The response                                                        */
/* ------------------------------------------------------------------ */

/* Names of the IMK_QUIRK_* bits, in bit order. */
static const char *const quirk_names[] = {
    "trailing-space", "extra-spaces",     "missing-text", "bare-lf",       "bare-code",
    "number-range",   "negative-number",  "float-number", "body-nil",      "quote-heuristic",
    "envelope",       "atom-mailbox",     "code-text",    "fetch-trailer", "empty-item",
    "esearch-modseq", "capability-space", "tagged-bye",
};

static json_t *quirks_json(conv *cv, unsigned quirks)
{
    json_t *a = new_array(cv);
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(quirks & (1u << bit)))
            continue;
        if (bit < sizeof(quirk_names) / sizeof(quirk_names[0])) {
            push(cv, a, json_string_nocheck(quirk_names[bit]));
        } else {
            char name[16];
            int n = snprintf(name, sizeof(name), "bit-%u", bit);
            push(cv, a, json_stringn_nocheck(name, (size_t)n));
        }
    }
    return a;
}

static const char *type_name(imk_response_type t)
{
    switch (t) {
    case IMK_RESPONSE_TAGGED:
        return "tagged";
    case IMK_RESPONSE_CONTINUATION:
        return "continuation";
    case IMK_RESPONSE_UNTAGGED:
        break;
    }
    return "untagged";
}

static int generic_has_number(const imk_response *r)
{
    size_t i = 0;
    if (r->type != IMK_RESPONSE_UNTAGGED || r->raw.data == NULL || r->raw.len == 0 ||
        r->raw.data[0] != '*')
        return 0;
    for (i = 1; i < r->raw.len && r->raw.data[i] == ' '; i++)
        ;
    return i > 1 && i < r->raw.len && r->raw.data[i] >= '0' && r->raw.data[i] <= '9';
}

static void data_fields(conv *cv, json_t *o, const imk_response *r)
{
    switch (r->kind) {
    case IMK_KIND_CAPABILITY:
    case IMK_KIND_ENABLED:
        put(cv, o, "capabilities", strlist_json(cv, r->u.capability));
        break;
    case IMK_KIND_FLAGS:
        put(cv, o, "flags", strlist_json(cv, r->u.flags));
        break;
    case IMK_KIND_LIST:
    case IMK_KIND_LSUB:
        list_fields(cv, o, &r->u.list);
        break;
    case IMK_KIND_STATUS:
        status_fields(cv, o, &r->u.status);
        break;
    case IMK_KIND_SEARCH:
    case IMK_KIND_SORT:
        search_fields(cv, o, &r->u.search);
        break;
    case IMK_KIND_THREAD:
        thread_fields(cv, o, &r->u.thread);
        break;
    case IMK_KIND_ESEARCH:
        esearch_fields(cv, o, &r->u.esearch);
        break;
    case IMK_KIND_EXISTS:
    case IMK_KIND_RECENT:
        put(cv, o, "count", cli_json_u64(r->number));
        break;
    case IMK_KIND_EXPUNGE:
        put(cv, o, "seq", cli_json_u64(r->number));
        break;
    case IMK_KIND_FETCH:
        put(cv, o, "seq", json_integer(r->u.fetch.seq));
        put(cv, o, "items", fetch_items_json(cv, &r->u.fetch));
        break;
    case IMK_KIND_VANISHED:
        put(cv, o, "earlier", json_boolean(r->u.vanished.earlier));
        put(cv, o, "uids", seqset_json(r->u.vanished.uids));
        break;
    case IMK_KIND_NAMESPACE:
        put(cv, o, "personal", namespace_list_json(cv, &r->u.namespace_.personal));
        put(cv, o, "other_users", namespace_list_json(cv, &r->u.namespace_.other_users));
        put(cv, o, "shared", namespace_list_json(cv, &r->u.namespace_.shared));
        break;
    case IMK_KIND_ID:
        put(cv, o, "fields", r->u.id.nil ? json_null() : pairs_json(cv, r->u.id.fields));
        break;
    case IMK_KIND_QUOTA:
        quota_fields(cv, o, &r->u.quota);
        break;
    case IMK_KIND_QUOTAROOT:
        put(cv, o, "mailbox", cli_json_str(r->u.quotaroot.mailbox));
        put(cv, o, "roots", strlist_json(cv, r->u.quotaroot.roots));
        break;
    case IMK_KIND_METADATA:
        metadata_fields(cv, o, &r->u.metadata);
        break;
    case IMK_KIND_ACL:
        put(cv, o, "mailbox", cli_json_str(r->u.acl.mailbox));
        put(cv, o, "entries", pairs_json(cv, r->u.acl.entries));
        break;
    case IMK_KIND_LISTRIGHTS:
        put(cv, o, "mailbox", cli_json_str(r->u.acl.mailbox));
        put(cv, o, "identifier", cli_json_str(r->u.acl.identifier));
        put(cv, o, "required", cli_json_str(r->u.acl.rights));
        put(cv, o, "optional", strlist_json(cv, r->u.acl.optional_rights));
        break;
    case IMK_KIND_MYRIGHTS:
        put(cv, o, "mailbox", cli_json_str(r->u.acl.mailbox));
        put(cv, o, "rights", cli_json_str(r->u.acl.rights));
        break;
    case IMK_KIND_GENERIC:
        /* "* 5 XSEEN ...": the model keeps the number in r->number but has
         * no flag for its presence; the raw bytes tell ("*", spaces, digit). */
        if (generic_has_number(r))
            put(cv, o, "number", cli_json_u64(r->number));
        put(cv, o, "values", value_json(cv, r->u.generic));
        break;
    default:
        break;
    }
}

json_t *cli_json_response(const imk_response *r, const cli_json_body *bodies, size_t body_count,
                          const cli_json_options *opts)
{
    conv cv = {0};
    cv.opts = opts;
    cv.bodies = bodies;
    cv.body_count = body_count;

    json_t *o = new_object(&cv);
    put(&cv, o, "type", json_string_nocheck(type_name(r->type)));
    if (r->type == IMK_RESPONSE_TAGGED)
        put(&cv, o, "tag", cli_json_str(r->tag));
    if (r->kind == IMK_KIND_STATUS_RESPONSE || r->kind == IMK_KIND_CONTINUATION ||
        r->type == IMK_RESPONSE_CONTINUATION) {
        if (r->status != IMK_STATUS_NONE)
            put(&cv, o, "status", json_string_nocheck(imk_status_name(r->status)));
        if (r->code != NULL)
            put(&cv, o, "code", code_json(&cv, r->code));
        put(&cv, o, "text", cli_json_bytes(r->text.data != NULL ? r->text.data : "", r->text.len));
    } else {
        if (r->kind == IMK_KIND_GENERIC)
            put(&cv, o, "name", cli_json_str(r->name));
        else
            put(&cv, o, "name", json_string_nocheck(imk_response_kind_name(r->kind)));
        data_fields(&cv, o, r);
    }
    if (r->quirks != 0)
        put(&cv, o, "quirks", quirks_json(&cv, r->quirks));
    if (cv.failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cli_json_error(const imk_parse_error *e)
{
    conv cv = {0};
    json_t *o = new_object(&cv);
    const char *message = e->message != NULL ? e->message : "malformed response";
    put(&cv, o, "error", cli_json_bytes(message, strlen(message)));
    put(&cv, o, "code", json_string_nocheck(imk_error_name(e->code)));
    put(&cv, o, "offset", cli_json_u64(e->offset));
    put(&cv, o, "response_offset", cli_json_u64(e->response_offset));
    put(&cv, o, "raw", cli_json_bytes(e->raw.data != NULL ? e->raw.data : "", e->raw.len));
    if (cv.failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *cli_json_fatal(int code, const char *detail, uint64_t offset)
{
    conv cv = {0};
    json_t *o = new_object(&cv);
    const char *message = detail != NULL && detail[0] != '\0' ? detail : imk_error_message(code);
    put(&cv, o, "error", cli_json_bytes(message, strlen(message)));
    put(&cv, o, "code", json_string_nocheck(imk_error_name(code)));
    put(&cv, o, "offset", cli_json_u64(offset));
    put(&cv, o, "fatal", json_true());
    if (cv.failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* Pieces for the other commands (fetch, copy, ...)                    */
/* ------------------------------------------------------------------ */

static json_t *finish(conv *cv, json_t *j)
{
    if (cv->failed || j == NULL) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *cli_json_envelope(const imk_envelope *e, cli_json_text_fn decode)
{
    conv cv = {0};
    cv.decode = decode;
    return finish(&cv, envelope_json(&cv, e));
}

json_t *cli_json_bodystructure(const imk_body *b)
{
    conv cv = {0};
    return finish(&cv, body_json(&cv, b));
}

json_t *cli_json_datetime(const imk_datetime *d)
{
    return datetime_iso(d);
}

json_t *cli_json_strlist(imk_strlist l)
{
    conv cv = {0};
    return finish(&cv, strlist_json(&cv, l));
}

json_t *cli_json_seqset(imk_seqset s)
{
    return seqset_json(s);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* Compact, UTF-8 kept as UTF-8, keys in insertion order (jansson >= 2.8). */
#define LINE_FLAGS (JSON_COMPACT)

int cli_json_write_line(FILE *f, const json_t *obj)
{
    if (json_dumpf(obj, f, LINE_FLAGS) != 0)
        return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

static int append_callback(const char *buffer, size_t size, void *data)
{
    return cli_buf_append(data, buffer, size);
}

int cli_json_append_line(cli_buf *b, const json_t *obj)
{
    if (json_dump_callback(obj, append_callback, b, LINE_FLAGS) != 0)
        return -1;
    return cli_buf_append(b, "\n", 1);
}

/* ------------------------------------------------------------------ */
/* The collector                                                       */
/* ------------------------------------------------------------------ */

void cli_json_collector_init(cli_json_collector *c, const cli_json_options *opts,
                             cli_json_sink sink, void *user)
{
    memset(c, 0, sizeof(*c));
    if (opts != NULL)
        c->opts = *opts;
    if (c->opts.max_body == 0)
        c->opts.max_body = CLI_JSON_MAX_BODY_DEFAULT;
    c->sink = sink;
    c->user = user;
}

static void drop_bodies(cli_json_collector *c)
{
    for (size_t i = 0; i < c->body_count; i++)
        cli_buf_free(&c->bodies[i].data);
    c->body_count = 0;
}

void cli_json_collector_free(cli_json_collector *c)
{
    drop_bodies(c);
    void *p = c->bodies;
    cli_array_resize(&p, 0, sizeof(cli_json_body));
    c->bodies = NULL;
    c->body_cap = 0;
}

static int emit(cli_json_collector *c, json_t *obj)
{
    if (obj == NULL)
        return CLI_JSON_ENOMEM;
    int rc = c->sink(obj, c->user);
    json_decref(obj);
    return rc != 0 ? CLI_JSON_ESINK : 0;
}

static int body_begin(cli_json_collector *c, const imk_body_info *info)
{
    if (c->body_count == c->body_cap) {
        size_t cap = c->body_cap != 0 ? c->body_cap * 2 : 4;
        void *p = c->bodies;
        if (cli_array_resize(&p, cap, sizeof(cli_json_body)) != 0)
            return CLI_JSON_ENOMEM;
        c->bodies = p;
        c->body_cap = cap;
    }
    cli_json_body *b = &c->bodies[c->body_count++];
    memset(b, 0, sizeof(*b));
    b->size = info->size;
    if (!c->opts.no_body_data) {
        if (info->size > c->opts.max_body)
            b->truncated = 1;
        else
            b->kept = 1;
    }
    return 0;
}

static int body_chunk(cli_json_collector *c, imk_str data)
{
    if (c->body_count == 0)
        return 0; /* a chunk without BEGIN: nothing to attach it to */
    cli_json_body *b = &c->bodies[c->body_count - 1];
    if (!b->kept)
        return 0;
    if ((uint64_t)b->data.len + data.len > c->opts.max_body) {
        /* More bytes than announced: not possible from a correct reader,
         * but never buffer beyond the limit. */
        b->kept = 0;
        b->truncated = 1;
        cli_buf_free(&b->data);
        return 0;
    }
    return cli_buf_append(&b->data, data.data, data.len) == 0 ? 0 : CLI_JSON_ENOMEM;
}

int cli_json_event(cli_json_collector *c, const imk_event *ev)
{
    int rc = 0;
    switch (ev->type) {
    case IMK_EVENT_BODY_BEGIN:
        rc = body_begin(c, ev->body);
        break;
    case IMK_EVENT_BODY_CHUNK:
        rc = body_chunk(c, ev->data);
        break;
    case IMK_EVENT_BODY_END:
        break;
    case IMK_EVENT_RESPONSE:
        c->responses++;
        rc = emit(c, cli_json_response(ev->response, c->bodies, c->body_count, &c->opts));
        drop_bodies(c);
        break;
    case IMK_EVENT_ERROR:
        c->errors++;
        rc = emit(c, cli_json_error(ev->error));
        drop_bodies(c);
        break;
    }
    return rc;
}

static int fatal(cli_json_collector *c, imk_reader *r, int code)
{
    imk_reader_stats st;
    imk_reader_get_stats(r, &st);
    c->fatal = code;
    drop_bodies(c);
    int rc = emit(c, cli_json_fatal(code, imk_reader_error(r), st.bytes_in));
    return rc != 0 ? rc : code;
}

/* Pass every available event to the collector: 0 when the reader needs
 * more input, or a negative code. */
static int drain(cli_json_collector *c, imk_reader *r)
{
    for (;;) {
        imk_event ev;
        int rc = imk_reader_next(r, &ev);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return fatal(c, r, rc);
        rc = cli_json_event(c, &ev);
        if (rc != 0)
            return rc;
    }
}

int cli_json_feed(cli_json_collector *c, imk_reader *r, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        size_t taken = imk_reader_feed(r, p, len);
        p += taken;
        len -= taken;
        int rc = drain(c, r);
        if (rc != 0)
            return rc;
        if (taken == 0) {
            /* The buffer was full and the reader produced no event to make
             * room: it cannot make progress. */
            size_t room = 0;
            imk_reader_buffer(r, &room);
            if (room == 0)
                return fatal(c, r, IMK_EPROTO);
        }
    }
    return 0;
}

int cli_json_finish(cli_json_collector *c, imk_reader *r)
{
    imk_reader_eof(r);
    int rc = drain(c, r);
    drop_bodies(c);
    return rc;
}
