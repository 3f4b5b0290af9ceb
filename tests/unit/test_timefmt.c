/*
 * test_timefmt: the one RFC 3339 formatter, at each precision, before
 * 1970, and into buffers too small for it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "timefmt.h"

static void
is(int64_t ns, int digits, const char *want)
{
    char buf[TC_RFC3339_MAX];
    size_t n = tc_rfc3339(ns, digits, buf, sizeof(buf));

    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void
test_precisions(void **state)
{
    const int64_t t = 1796438132786067529LL; /* 2026-12-05T02:35:32.786... */

    (void)state;
    is(0, 0, "1970-01-01T00:00:00Z");
    is(t, 0, "2026-12-05T02:35:32Z");
    is(t, 3, "2026-12-05T02:35:32.786Z");
    is(t, 6, "2026-12-05T02:35:32.786067Z");
    is(t, 9, "2026-12-05T02:35:32.786067529Z");
    /* Precisions in between round up to the next one offered. */
    is(t, 2, "2026-12-05T02:35:32.786Z");
    is(t, 12, "2026-12-05T02:35:32.786067529Z");
}

static void
test_before_1970(void **state)
{
    (void)state;
    /* One nanosecond before the epoch is in the last second of 1969. */
    is(-1, 9, "1969-12-31T23:59:59.999999999Z");
    is(-1500000000LL, 3, "1969-12-31T23:59:58.500Z");
}

static void
test_small_buffers(void **state)
{
    char buf[8];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    /* Cut, never overrun, always terminated. */
    assert_true(tc_rfc3339(0, 3, buf, sizeof(buf)) < sizeof(buf));
    assert_non_null(memchr(buf, '\0', sizeof(buf)));
    assert_int_equal(tc_rfc3339(0, 3, buf, 0), 0);
    assert_int_equal(tc_rfc3339(0, 3, buf, 1), 0);
    assert_int_equal(buf[0], '\0');
}

static void
test_extremes(void **state)
{
    (void)state;
    /* The whole int64 range of nanoseconds is representable. */
    is(INT64_MIN, 9, "1677-09-21T00:12:43.145224192Z");
    is(INT64_MAX, 9, "2262-04-11T23:47:16.854775807Z");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precisions),
        cmocka_unit_test(test_before_1970),
        cmocka_unit_test(test_small_buffers),
        cmocka_unit_test(test_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
