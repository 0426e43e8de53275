/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/util/datetime.c: INTERNALDATE parsing (every accepted day
 * form, every invalid field), leap years, formatting, round trips over a
 * spread of dates, Unix time against known values and against a day-by-day
 * walk, and RFC 3339 output.
 */
#include "test.h"

#include "util/datetime.h"

#include <limits.h>
#include <stdint.h>

static int parse_str(const char *s, imk__datetime *dt)
{
    return imk__datetime_parse(s, strlen(s), dt);
}

#define CHECK_DT(dt, y, mo, d, h, mi, s, z)                                                        \
    do {                                                                                           \
        CHECK_INT((dt).year, (y));                                                                 \
        CHECK_INT((dt).month, (mo));                                                               \
        CHECK_INT((dt).day, (d));                                                                  \
        CHECK_INT((dt).hour, (h));                                                                 \
        CHECK_INT((dt).minute, (mi));                                                              \
        CHECK_INT((dt).second, (s));                                                               \
        CHECK_INT((dt).zone_minutes, (z));                                                         \
    } while (0)

static void test_parse_valid(void)
{
    imk__datetime dt;
    CHECK_INT(parse_str("17-Jul-1996 02:44:25 -0700", &dt), 0);
    CHECK_DT(dt, 1996, 7, 17, 2, 44, 25, -420);
    CHECK_INT(parse_str(" 7-Jul-1996 02:44:25 -0700", &dt), 0);
    CHECK_DT(dt, 1996, 7, 7, 2, 44, 25, -420);
    CHECK_INT(parse_str("07-Jul-1996 02:44:25 +0300", &dt), 0);
    CHECK_DT(dt, 1996, 7, 7, 2, 44, 25, 180);
    CHECK_INT(parse_str("7-Jul-1996 02:44:25 -0430", &dt), 0); /* quirk: unpadded day */
    CHECK_DT(dt, 1996, 7, 7, 2, 44, 25, -270);
    CHECK_INT(parse_str("01-jan-2000 00:00:00 +0000", &dt), 0); /* quirk: month case */
    CHECK_DT(dt, 2000, 1, 1, 0, 0, 0, 0);
    CHECK_INT(parse_str("31-DEC-9999 23:59:59 +2359", &dt), 0);
    CHECK_DT(dt, 9999, 12, 31, 23, 59, 59, 1439);
    CHECK_INT(parse_str("01-Jan-0001 00:00:00 -2359", &dt), 0);
    CHECK_DT(dt, 1, 1, 1, 0, 0, 0, -1439);
    CHECK_INT(parse_str("30-Jun-2015 23:59:60 +0000", &dt), 0); /* leap second */
    CHECK_INT(dt.second, 60);
    CHECK_INT(parse_str("01-Jan-2000 00:00:00 -0000", &dt), 0);
    CHECK_INT(dt.zone_minutes, 0);

    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int m = 0; m < 12; m++) {
        char s[40];
        memcpy(s, "01-XXX-2001 10:20:30 +0100", 27);
        memcpy(s + 3, months[m], 3);
        CHECK_INT(parse_str(s, &dt), 0);
        CHECK_INT(dt.month, m + 1);
        s[3] = (char)(s[3] - 'A' + 'a');
        s[5] = (char)(s[5] - 'a' + 'A');
        CHECK_INT(parse_str(s, &dt), 0);
        CHECK_INT(dt.month, m + 1);
    }

    /* the length bounds the parse: no NUL needed, trailing bytes ignored */
    CHECK_INT(imk__datetime_parse("17-Jul-1996 02:44:25 -0700\"xyz", 26, &dt), 0);
    CHECK_DT(dt, 1996, 7, 17, 2, 44, 25, -420);
}

static void check_parse_fails(const char *s)
{
    imk__datetime dt = {1, 2, 3, 4, 5, 6, 7};
    int rc = parse_str(s, &dt);
    CHECK_INT(rc, IMK_EPARSE);
    if (rc != IMK_EPARSE)
        fprintf(stderr, "   input: \"%s\"\n", s);
    CHECK_DT(dt, 1, 2, 3, 4, 5, 6, 7); /* untouched on failure */
}

static void test_parse_invalid(void)
{
    /* syntax */
    check_parse_fails("");
    check_parse_fails(" ");
    check_parse_fails("17-Jul-1996 02:44:25");
    check_parse_fails("17-Jul-1996 02:44:25 -070");
    check_parse_fails("17-Jul-1996 02:44:25 -07000");
    check_parse_fails("17-Jul-1996 02:44:25 0700");
    check_parse_fails("17-Jul-1996 02:44:25 *0700");
    check_parse_fails("17-Jul-1996 02:44:25  -0700");
    check_parse_fails("17-Jul-1996 02:44:25 -0700 ");
    check_parse_fails(" 17-Jul-1996 02:44:25 -0700");
    check_parse_fails("  7-Jul-1996 02:44:25 -0700");
    check_parse_fails("117-Jul-1996 02:44:25 -0700");
    check_parse_fails("-Jul-1996 02:44:25 -0700");
    check_parse_fails("17 Jul 1996 02:44:25 -0700");
    check_parse_fails("17-July-1996 02:44:25 -0700");
    check_parse_fails("17-Jux-1996 02:44:25 -0700");
    check_parse_fails("17-Ju-1996 02:44:25 -0700");
    check_parse_fails("17-Jul-96 02:44:25 -0700");
    check_parse_fails("17-Jul-19960 02:44:25 -0700");
    check_parse_fails("17-Jul-1996T02:44:25 -0700");
    check_parse_fails("17-Jul-1996 2:44:25 -0700");
    check_parse_fails("17-Jul-1996 02:4:25 -0700");
    check_parse_fails("17-Jul-1996 02:44:2 -0700");
    check_parse_fails("17-Jul-1996 02.44.25 -0700");
    check_parse_fails("17-Jul-1996 02:44 -0700");
    check_parse_fails("17-Jul-1996 +2:44:25 -0700");
    check_parse_fails("1a-Jul-1996 02:44:25 -0700");
    check_parse_fails("17-Jul-199a 02:44:25 -0700");
    check_parse_fails("17-Jul-1996 02:44:25 -07a0");
    check_parse_fails("\"17-Jul-1996 02:44:25 -0700\"");
    /* ranges */
    check_parse_fails("00-Jul-1996 02:44:25 -0700");
    check_parse_fails("32-Jul-1996 02:44:25 -0700");
    check_parse_fails("31-Jun-1996 02:44:25 -0700");
    check_parse_fails("31-Apr-1996 02:44:25 -0700");
    check_parse_fails("30-Feb-1996 02:44:25 -0700");
    check_parse_fails("17-Jul-0000 02:44:25 -0700");
    check_parse_fails("17-Jul-1996 24:00:00 -0700");
    check_parse_fails("17-Jul-1996 02:60:25 -0700");
    check_parse_fails("17-Jul-1996 02:44:61 -0700");
    check_parse_fails("17-Jul-1996 02:44:99 -0700");
    check_parse_fails("17-Jul-1996 02:44:25 -0760");
    check_parse_fails("17-Jul-1996 02:44:25 +0099");
    check_parse_fails("17-Jul-1996 02:44:25 +2400");
    check_parse_fails("17-Jul-1996 02:44:25 -9999");

    /* every truncation of a valid string */
    static const char full[] = "17-Jul-1996 02:44:25 -0700";
    imk__datetime dt;
    for (size_t len = 0; len < sizeof(full) - 1; len++)
        CHECK_INT(imk__datetime_parse(full, len, &dt), IMK_EPARSE);
}

static void test_leap_years(void)
{
    imk__datetime dt;
    CHECK_INT(parse_str("29-Feb-2000 12:00:00 +0000", &dt), 0); /* divisible by 400 */
    CHECK_INT(parse_str("29-Feb-1996 12:00:00 +0000", &dt), 0);
    CHECK_INT(parse_str("29-Feb-2024 12:00:00 +0000", &dt), 0);
    CHECK_INT(parse_str("29-Feb-1900 12:00:00 +0000", &dt), IMK_EPARSE); /* by 100, not 400 */
    CHECK_INT(parse_str("29-Feb-2100 12:00:00 +0000", &dt), IMK_EPARSE);
    CHECK_INT(parse_str("29-Feb-2023 12:00:00 +0000", &dt), IMK_EPARSE);
    CHECK_INT(parse_str("28-Feb-1900 12:00:00 +0000", &dt), 0);
    CHECK_INT(parse_str("30-Feb-2000 12:00:00 +0000", &dt), IMK_EPARSE);

    char out[IMK__DATE_IMAP_SIZE];
    CHECK_INT(imk__date_format(2000, 2, 29, out), 11);
    CHECK_STR(out, "29-Feb-2000");
    CHECK_INT(imk__date_format(1900, 2, 29, out), IMK_EINVAL);
}

static void test_format(void)
{
    char out[IMK__DATETIME_IMAP_SIZE];
    imk__datetime dt = {1996, 7, 17, 2, 44, 25, -420};
    CHECK_INT(imk__datetime_format(&dt, out), 26);
    CHECK_STR(out, "17-Jul-1996 02:44:25 -0700");
    imk__datetime dt2 = {1996, 7, 7, 2, 44, 25, -270};
    CHECK_INT(imk__datetime_format(&dt2, out), 26);
    CHECK_STR(out, "07-Jul-1996 02:44:25 -0430");
    imk__datetime dt3 = {1, 1, 1, 0, 0, 0, 0};
    CHECK_INT(imk__datetime_format(&dt3, out), 26);
    CHECK_STR(out, "01-Jan-0001 00:00:00 +0000");
    imk__datetime dt4 = {9999, 12, 31, 23, 59, 60, 1439};
    CHECK_INT(imk__datetime_format(&dt4, out), 26);
    CHECK_STR(out, "31-Dec-9999 23:59:60 +2359");
    imk__datetime dt5 = {2020, 3, 1, 0, 0, 0, 180};
    CHECK_INT(imk__datetime_format(&dt5, out), 26);
    CHECK_STR(out, "01-Mar-2020 00:00:00 +0300");
}

static void test_format_invalid(void)
{
    static const imk__datetime bad[] = {
        {0, 1, 1, 0, 0, 0, 0},          {10000, 1, 1, 0, 0, 0, 0},
        {-5, 1, 1, 0, 0, 0, 0},         {2000, 0, 1, 0, 0, 0, 0},
        {2000, 13, 1, 0, 0, 0, 0},      {2000, 1, 0, 0, 0, 0, 0},
        {2000, 1, 32, 0, 0, 0, 0},      {1900, 2, 29, 0, 0, 0, 0},
        {2000, 4, 31, 0, 0, 0, 0},      {2000, 1, 1, -1, 0, 0, 0},
        {2000, 1, 1, 24, 0, 0, 0},      {2000, 1, 1, 0, -1, 0, 0},
        {2000, 1, 1, 0, 60, 0, 0},      {2000, 1, 1, 0, 0, -1, 0},
        {2000, 1, 1, 0, 0, 61, 0},      {2000, 1, 1, 0, 0, 0, 1440},
        {2000, 1, 1, 0, 0, 0, -1440},   {2000, 1, 1, 0, 0, 0, INT_MIN},
        {2000, INT_MAX, 1, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[IMK__DATETIME_IMAP_SIZE] = "untouched";
        char iso[IMK__DATETIME_ISO_SIZE] = "untouched";
        CHECK_INT(imk__datetime_is_valid(&bad[i]), 0);
        CHECK_INT(imk__datetime_format(&bad[i], out), IMK_EINVAL);
        CHECK_STR(out, "untouched");
        CHECK_INT(imk__datetime_to_iso8601(&bad[i], iso), IMK_EINVAL);
        CHECK_STR(iso, "untouched");
        CHECK(imk__datetime_to_unix(&bad[i]) == INT64_MIN);
    }
}

static void test_date_format(void)
{
    char out[IMK__DATE_IMAP_SIZE];
    CHECK_INT(imk__date_format(1996, 7, 7, out), 10);
    CHECK_STR(out, "7-Jul-1996");
    CHECK_INT(imk__date_format(1996, 7, 17, out), 11);
    CHECK_STR(out, "17-Jul-1996");
    CHECK_INT(imk__date_format(1, 1, 1, out), 10);
    CHECK_STR(out, "1-Jan-0001");
    CHECK_INT(imk__date_format(9999, 12, 31, out), 11);
    CHECK_STR(out, "31-Dec-9999");
    memcpy(out, "untouched", 10);
    CHECK_INT(imk__date_format(0, 1, 1, out), IMK_EINVAL);
    CHECK_INT(imk__date_format(10000, 1, 1, out), IMK_EINVAL);
    CHECK_INT(imk__date_format(2000, 0, 1, out), IMK_EINVAL);
    CHECK_INT(imk__date_format(2000, 13, 1, out), IMK_EINVAL);
    CHECK_INT(imk__date_format(2000, 6, 0, out), IMK_EINVAL);
    CHECK_INT(imk__date_format(2000, 6, 31, out), IMK_EINVAL);
    CHECK_STR(out, "untouched");
}

/* Format then parse gives the same fields; parse then format gives the
 * canonical text. */
static void test_round_trip(void)
{
    long failures = 0;
    uint32_t seed = 7;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        imk__datetime dt;
        dt.year = 1 + (int)(seed % 9999);
        seed = seed * 1103515245u + 12345u;
        dt.month = 1 + (int)(seed % 12);
        dt.day = 1 + (int)((seed >> 8) % 28);
        dt.hour = (int)((seed >> 16) % 24);
        seed = seed * 1103515245u + 12345u;
        dt.minute = (int)(seed % 60);
        dt.second = (int)((seed >> 8) % 61);
        dt.zone_minutes = (int)((seed >> 16) % 2879) - 1439;
        char out[IMK__DATETIME_IMAP_SIZE], again[IMK__DATETIME_IMAP_SIZE];
        imk__datetime back;
        if (imk__datetime_format(&dt, out) != 26 || imk__datetime_parse(out, 26, &back) != 0 ||
            memcmp(&dt, &back, sizeof(dt)) != 0 || imk__datetime_format(&back, again) != 26 ||
            strcmp(out, again) != 0)
            failures++;
    }
    CHECK_INT(failures, 0);

    imk__datetime dt;
    char out[IMK__DATETIME_IMAP_SIZE];
    CHECK_INT(parse_str(" 7-jul-1996 02:44:25 -0000", &dt), 0);
    CHECK_INT(imk__datetime_format(&dt, out), 26);
    CHECK_STR(out, "07-Jul-1996 02:44:25 +0000");
}

static int64_t unix_of(const char *s)
{
    imk__datetime dt;
    if (parse_str(s, &dt) != 0)
        return INT64_MIN + 1;
    return imk__datetime_to_unix(&dt);
}

static void test_to_unix(void)
{
    CHECK_INT(unix_of("01-Jan-1970 00:00:00 +0000"), 0);
    CHECK_INT(unix_of("17-Jul-1996 02:44:25 -0700"), 837596665);
    CHECK_INT(unix_of("17-Jul-1996 09:44:25 +0000"), 837596665);
    CHECK_INT(unix_of("17-Jul-1996 12:14:25 +0230"), 837596665);
    CHECK_INT(unix_of("31-Dec-1969 23:59:59 +0000"), -1);
    CHECK_INT(unix_of("01-Jan-1970 00:00:00 +0100"), -3600);
    CHECK_INT(unix_of("29-Feb-2000 12:00:00 +0000"), 951825600);
    CHECK_INT(unix_of("19-Jan-2038 03:14:08 +0000"), 2147483648LL);
    CHECK_INT(unix_of("01-Mar-2024 00:00:00 +0000"), 1709251200);
    CHECK_INT(unix_of("01-Mar-1900 00:00:00 +0000"), -2203891200LL);
    CHECK_INT(unix_of("01-Jan-0001 00:00:00 +0000"), -62135596800LL);
    CHECK_INT(unix_of("31-Dec-9999 23:59:59 +0000"), 253402300799LL);
    /* a leap second is the next minute's first second */
    CHECK_INT(unix_of("31-Dec-2016 23:59:60 +0000"), unix_of("01-Jan-2017 00:00:00 +0000"));

    /* day by day from 1-Jan-0001: each day is exactly 86400 s after the previous */
    imk__datetime dt = {1, 1, 1, 0, 0, 0, 0};
    int64_t prev = imk__datetime_to_unix(&dt);
    long failures = 0, days = 0;
    for (;;) {
        dt.day++;
        if (!imk__datetime_is_valid(&dt)) {
            dt.day = 1;
            dt.month++;
            if (dt.month > 12) {
                dt.month = 1;
                dt.year++;
                if (dt.year > 9999)
                    break;
            }
        }
        int64_t t = imk__datetime_to_unix(&dt);
        if (t - prev != 86400)
            failures++;
        prev = t;
        days++;
    }
    CHECK_INT(failures, 0);
    CHECK_INT(days, 3652058); /* days from 0001-01-01 to 9999-12-31 */
    CHECK_INT(prev, 253402214400LL);
}

static void test_to_iso8601(void)
{
    char out[IMK__DATETIME_ISO_SIZE];
    imk__datetime dt = {1996, 7, 17, 2, 44, 25, -420};
    CHECK_INT(imk__datetime_to_iso8601(&dt, out), 25);
    CHECK_STR(out, "1996-07-17T02:44:25-07:00");
    imk__datetime utc = {2000, 1, 2, 3, 4, 5, 0};
    CHECK_INT(imk__datetime_to_iso8601(&utc, out), 25);
    CHECK_STR(out, "2000-01-02T03:04:05+00:00");
    imk__datetime east = {1, 12, 31, 23, 59, 60, 330};
    CHECK_INT(imk__datetime_to_iso8601(&east, out), 25);
    CHECK_STR(out, "0001-12-31T23:59:60+05:30");
    imk__datetime west = {2020, 2, 29, 0, 0, 0, -1439};
    CHECK_INT(imk__datetime_to_iso8601(&west, out), 25);
    CHECK_STR(out, "2020-02-29T00:00:00-23:59");
}

int main(void)
{
    RUN(test_parse_valid);
    RUN(test_parse_invalid);
    RUN(test_leap_years);
    RUN(test_format);
    RUN(test_format_invalid);
    RUN(test_date_format);
    RUN(test_round_trip);
    RUN(test_to_unix);
    RUN(test_to_iso8601);
    return test_finish();
}
