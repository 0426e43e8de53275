/* SPDX-License-Identifier: MIT */
/*
 * IMAP date-time and date: parsing, formatting, and conversion to Unix time
 * and RFC 3339.
 *
 * Invariant: every function that reads an imk__datetime first checks it
 * with imk__datetime_is_valid(), so the arithmetic below only ever sees
 * years 1-9999 and in-range fields; nothing here can overflow an int.
 *
 * Quirks accepted when reading (RFC 9051 requires date-day-fixed):
 *   - quirk "unpadded day": "7-Jul-1996 ..." as well as " 7-" and "07-";
 *   - quirk "month case": "jul" and "JUL" as well as "Jul".
 * We also refuse zones beyond +-23:59 although `zone` is any 4DIGIT: such
 * an offset names no real place and has no RFC 3339 form.
 */
#include "util/datetime.h"

#include <stddef.h>

static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Days before the first of each month in a common year. */
static const int days_before_month[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

static int is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

static int date_is_valid(int year, int month, int day)
{
    return year >= 1 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 &&
           day <= days_in_month(year, month);
}

int imk__datetime_is_valid(const imk__datetime *dt)
{
    return date_is_valid(dt->year, dt->month, dt->day) && dt->hour >= 0 && dt->hour <= 23 &&
           dt->minute >= 0 && dt->minute <= 59 && dt->second >= 0 && dt->second <= 60 &&
           dt->zone_minutes >= -(23 * 60 + 59) && dt->zone_minutes <= 23 * 60 + 59;
}

/* Read exactly `n` digits at s[*pos] into *value. */
static int read_digits(const char *s, size_t len, size_t *pos, size_t n, int *value)
{
    int v = 0;
    if (len - *pos < n)
        return IMK_EPARSE;
    for (size_t k = 0; k < n; k++) {
        char c = s[*pos + k];
        if (c < '0' || c > '9')
            return IMK_EPARSE;
        v = v * 10 + (c - '0');
    }
    *pos += n;
    *value = v;
    return 0;
}

static int read_char(const char *s, size_t len, size_t *pos, char expect)
{
    if (*pos >= len || s[*pos] != expect)
        return IMK_EPARSE;
    (*pos)++;
    return 0;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* date-month, case-insensitively; *month is 1-12. */
static int read_month(const char *s, size_t len, size_t *pos, int *month)
{
    if (len - *pos < 3)
        return IMK_EPARSE;
    for (int m = 0; m < 12; m++) {
        const char *name = month_names[m];
        if (ascii_lower(s[*pos]) == ascii_lower(name[0]) &&
            ascii_lower(s[*pos + 1]) == ascii_lower(name[1]) &&
            ascii_lower(s[*pos + 2]) == ascii_lower(name[2])) {
            *pos += 3;
            *month = m + 1;
            return 0;
        }
    }
    return IMK_EPARSE;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * RFC 9051 section 9:
 *   date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
 *                     SP time SP zone DQUOTE
 *   date-day-fixed  = (SP DIGIT) / 2DIGIT
 *                       ; Fixed-format version of date-day
 *   date-month      = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
 *                     "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
 *   date-year       = 4DIGIT
 *   time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
 *                       ; Hours minutes seconds
 *   zone            = ("+" / "-") 4DIGIT
 *                       ; Signed four-digit value of hhmm representing
 *                       ; hours and minutes east of Greenwich
 * The caller has removed the DQUOTEs.
 */
int imk__datetime_parse(const char *s, size_t len, imk__datetime *out)
{
    size_t pos = 0;
    imk__datetime dt;
    int zone_hours, zone_mins;

    if (len == 0)
        return IMK_EPARSE;
    if (s[0] == ' ')
        pos = 1; /* SP DIGIT */
    /* one digit after SP, or without padding; two otherwise */
    size_t day_digits = pos == 0 && len >= 2 && is_digit(s[1]) ? 2 : 1;
    if (read_digits(s, len, &pos, day_digits, &dt.day) < 0 || read_char(s, len, &pos, '-') < 0 ||
        read_month(s, len, &pos, &dt.month) < 0 || read_char(s, len, &pos, '-') < 0 ||
        read_digits(s, len, &pos, 4, &dt.year) < 0 || read_char(s, len, &pos, ' ') < 0 ||
        read_digits(s, len, &pos, 2, &dt.hour) < 0 || read_char(s, len, &pos, ':') < 0 ||
        read_digits(s, len, &pos, 2, &dt.minute) < 0 || read_char(s, len, &pos, ':') < 0 ||
        read_digits(s, len, &pos, 2, &dt.second) < 0 || read_char(s, len, &pos, ' ') < 0)
        return IMK_EPARSE;
    if (pos >= len || (s[pos] != '+' && s[pos] != '-'))
        return IMK_EPARSE;
    int sign = s[pos] == '-' ? -1 : 1;
    pos++;
    if (read_digits(s, len, &pos, 2, &zone_hours) < 0 ||
        read_digits(s, len, &pos, 2, &zone_mins) < 0 || pos != len || zone_mins > 59)
        return IMK_EPARSE;
    dt.zone_minutes = sign * (zone_hours * 60 + zone_mins);
    if (!imk__datetime_is_valid(&dt))
        return IMK_EPARSE;
    *out = dt;
    return 0;
}

/* Write `value` (>= 0) as exactly `width` decimal digits. */
static char *put_digits(char *p, int value, int width)
{
    for (int k = width - 1; k >= 0; k--) {
        p[k] = (char)('0' + value % 10);
        value /= 10;
    }
    return p + width;
}

static char *put_text(char *p, const char *text, size_t n)
{
    for (size_t k = 0; k < n; k++)
        p[k] = text[k];
    return p + n;
}

/* The ("+" / "-") sign of a zone and its absolute value in minutes. */
static char zone_sign(int zone_minutes, int *abs_minutes)
{
    *abs_minutes = zone_minutes < 0 ? -zone_minutes : zone_minutes;
    return zone_minutes < 0 ? '-' : '+';
}

/* The same date-time grammar as imk__datetime_parse(); we write the 2DIGIT
 * alternative of date-day-fixed. */
int imk__datetime_format(const imk__datetime *dt, char out[IMK__DATETIME_IMAP_SIZE])
{
    if (!imk__datetime_is_valid(dt))
        return IMK_EINVAL;
    int zone_abs;
    char sign = zone_sign(dt->zone_minutes, &zone_abs);
    char *p = out;
    p = put_digits(p, dt->day, 2);
    *p++ = '-';
    p = put_text(p, month_names[dt->month - 1], 3);
    *p++ = '-';
    p = put_digits(p, dt->year, 4);
    *p++ = ' ';
    p = put_digits(p, dt->hour, 2);
    *p++ = ':';
    p = put_digits(p, dt->minute, 2);
    *p++ = ':';
    p = put_digits(p, dt->second, 2);
    *p++ = ' ';
    *p++ = sign;
    p = put_digits(p, zone_abs / 60, 2);
    p = put_digits(p, zone_abs % 60, 2);
    *p = '\0';
    return (int)(p - out);
}

/*
 * RFC 9051 section 9:
 *   date-text       = date-day "-" date-month "-" date-year
 *   date-day        = 1*2DIGIT
 *                       ; Day of month
 */
int imk__date_format(int year, int month, int day, char out[IMK__DATE_IMAP_SIZE])
{
    if (!date_is_valid(year, month, day))
        return IMK_EINVAL;
    char *p = out;
    p = put_digits(p, day, day >= 10 ? 2 : 1);
    *p++ = '-';
    p = put_text(p, month_names[month - 1], 3);
    *p++ = '-';
    p = put_digits(p, year, 4);
    *p = '\0';
    return (int)(p - out);
}

/* Days from 0001-01-01 to the first of January of `year`, proleptic
 * Gregorian: 365 a year plus one for each leap year before it. */
static int64_t days_before_year(int year)
{
    int64_t y = year - 1;
    return y * 365 + y / 4 - y / 100 + y / 400;
}

int64_t imk__datetime_to_unix(const imk__datetime *dt)
{
    if (!imk__datetime_is_valid(dt))
        return INT64_MIN;
    int64_t days = days_before_year(dt->year) - days_before_year(1970) +
                   days_before_month[dt->month - 1] +
                   (dt->month > 2 && is_leap_year(dt->year) ? 1 : 0) + (dt->day - 1);
    /* Subtracting the zone from the local time gives UTC (RFC 9051 "zone"). */
    return days * 86400 + dt->hour * 3600 + dt->minute * 60 + dt->second -
           (int64_t)dt->zone_minutes * 60;
}

/*
 * RFC 3339 section 5.6:
 *   date-time       = full-date "T" full-time
 *   full-date       = date-fullyear "-" date-month "-" date-mday
 *   full-time       = partial-time time-offset
 *   partial-time    = time-hour ":" time-minute ":" time-second [time-secfrac]
 *   time-offset     = "Z" / time-numoffset
 *   time-numoffset  = ("+" / "-") time-hour ":" time-minute
 * We always write time-numoffset, "+00:00" for UTC, so the offset the
 * server gave survives.
 */
int imk__datetime_to_iso8601(const imk__datetime *dt, char out[IMK__DATETIME_ISO_SIZE])
{
    if (!imk__datetime_is_valid(dt))
        return IMK_EINVAL;
    int zone_abs;
    char sign = zone_sign(dt->zone_minutes, &zone_abs);
    char *p = out;
    p = put_digits(p, dt->year, 4);
    *p++ = '-';
    p = put_digits(p, dt->month, 2);
    *p++ = '-';
    p = put_digits(p, dt->day, 2);
    *p++ = 'T';
    p = put_digits(p, dt->hour, 2);
    *p++ = ':';
    p = put_digits(p, dt->minute, 2);
    *p++ = ':';
    p = put_digits(p, dt->second, 2);
    *p++ = sign;
    p = put_digits(p, zone_abs / 60, 2);
    *p++ = ':';
    p = put_digits(p, zone_abs % 60, 2);
    *p = '\0';
    return (int)(p - out);
}
