/* SPDX-License-Identifier: MIT */
/*
 * IMAP dates: the date-time of INTERNALDATE and APPEND ("17-Jul-1996
 * 02:44:25 -0700") and the date of SEARCH ("17-Jul-1996"), RFC 9051
 * section 9. Reading is lenient where servers are known to differ (day
 * padding, month case); writing always produces the canonical form.
 * Conversions to Unix time and ISO 8601 are for the JSON output.
 *
 * There is no dependence on the C library's time functions or the local
 * time zone: the calendar arithmetic is proleptic Gregorian, done here.
 */
#ifndef IMK_UTIL_DATETIME_H
#define IMK_UTIL_DATETIME_H

#include "imapkit/common.h"

#include <stdint.h>

/* A date-time as the server wrote it: local wall-clock fields plus the
 * offset of that clock from UTC. */
typedef struct imk__datetime {
    int year, month, day, hour, minute, second; /* month 1-12, second 0-60 */
    int zone_minutes; /* offset east of UTC, e.g. +0300 = 180, -0430 = -270 */
} imk__datetime;

/* Buffer sizes, including the NUL. */
#define IMK__DATETIME_IMAP_SIZE 27 /* "17-Jul-1996 02:44:25 -0700" */
#define IMK__DATE_IMAP_SIZE 12     /* "17-Jul-1996" */
#define IMK__DATETIME_ISO_SIZE 26  /* "1996-07-17T02:44:25-07:00" */

/*
 * 1 when every field is in range: year 1-9999, month 1-12, day within the
 * month (leap years counted), hour 0-23, minute 0-59, second 0-60 (a leap
 * second), zone within -23:59..+23:59. Else 0.
 */
int imk__datetime_is_valid(const imk__datetime *dt);

/*
 * Parse the contents of an INTERNALDATE quoted string (without the quotes),
 * `s[0..len)`, borrowed, into *out. Accepts a space-padded, zero-padded or
 * unpadded day and month names in any case. Returns 0, or IMK_EPARSE for
 * any syntax error or out-of-range field; *out is then unspecified.
 */
int imk__datetime_parse(const char *s, size_t len, imk__datetime *out);

/* Write "dd-Mon-yyyy hh:mm:ss +zzzz" (day zero-padded) and a NUL. Returns
 * 26, or IMK_EINVAL when *dt is not valid (out is then untouched). */
int imk__datetime_format(const imk__datetime *dt, char out[IMK__DATETIME_IMAP_SIZE]);

/* Write the SEARCH date "d-Mon-yyyy" (day not padded) and a NUL. Returns
 * its length (10 or 11), or IMK_EINVAL for an impossible date. */
int imk__date_format(int year, int month, int day, char out[IMK__DATE_IMAP_SIZE]);

/* Seconds since 1970-01-01T00:00:00Z (negative before), the zone applied;
 * a leap second counts as the first second of the next minute. Returns
 * INT64_MIN when *dt is not valid. */
int64_t imk__datetime_to_unix(const imk__datetime *dt);

/* Write RFC 3339 "yyyy-mm-ddThh:mm:ss+hh:mm" ("+00:00" for UTC) and a NUL.
 * Returns 25, or IMK_EINVAL when *dt is not valid (out untouched). */
int imk__datetime_to_iso8601(const imk__datetime *dt, char out[IMK__DATETIME_ISO_SIZE]);

#endif
