/*
 * test_units: sizes and durations as people read them, on each
 * boundary where the unit or the number of digits changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "units.h"

static void
bytes_is(uint64_t n, const char *want)
{
    char buf[TC_UNITS_MAX];

    assert_string_equal(tc_fmt_bytes(buf, sizeof(buf), n), want);
}

static void
dur_is(int64_t ns, const char *want)
{
    char buf[TC_UNITS_MAX];

    assert_string_equal(tc_fmt_duration(buf, sizeof(buf), ns), want);
}

static void
test_bytes(void **state)
{
    const uint64_t Ki = 1024, Mi = Ki * Ki, Gi = Mi * Ki, Ei = Gi * Gi;

    (void)state;
    bytes_is(0, "0 B");
    bytes_is(512, "512 B");
    bytes_is(1023, "1023 B");
    bytes_is(1024, "1.0 KiB");
    bytes_is(1536, "1.5 KiB");
    /* 1.05 KiB rounds half up; 1.049... does not. */
    bytes_is(1075, "1.0 KiB");
    bytes_is(1076, "1.1 KiB");
    bytes_is(23 * Mi + 4 * Mi / 10 + 1, "23.4 MiB");
    /* 99.95 KiB is 100: no decimal from 100 on. */
    bytes_is(99 * Ki + 972, "99.9 KiB");
    bytes_is(99 * Ki + 973, "100 KiB");
    bytes_is(100 * Ki, "100 KiB");
    bytes_is(1023 * Ki, "1023 KiB");
    /* What would round to 1024 KiB is 1.0 MiB. */
    bytes_is(1023 * Ki + 511, "1023 KiB");
    bytes_is(1023 * Ki + 512, "1.0 MiB");
    bytes_is(Mi, "1.0 MiB");
    bytes_is(Gi, "1.0 GiB");
    bytes_is(Ei, "1.0 EiB");
    bytes_is(UINT64_MAX, "16.0 EiB");
}

static void
test_bytes_small_buffer(void **state)
{
    char buf[4];

    (void)state;
    assert_string_equal(tc_fmt_bytes(buf, sizeof(buf), 1536), "1.5");
    assert_string_equal(tc_fmt_bytes(buf, 1, 1536), "");
}

static void
test_durations(void **state)
{
    const int64_t ms = 1000000, s = 1000 * ms, m = 60 * s, h = 60 * m,
                  d = 24 * h;

    (void)state;
    dur_is(-1, "-");
    dur_is(0, "0ms");
    dur_is(12, "12ns");
    dur_is(999, "999ns");
    dur_is(1000, "1us");
    dur_is(740 * 1000, "740us");
    dur_is(ms - 1, "999us");
    dur_is(ms, "1ms");
    dur_is(850 * ms, "850ms");
    /* Truncated, never rounded up into the next unit. */
    dur_is(s - 1, "999ms");
    dur_is(s, "1s");
    dur_is(s + 1, "1.0s");
    dur_is(2 * s + 183 * ms, "2.1s");
    dur_is(10 * s - 1, "9.9s");
    dur_is(10 * s, "10s");
    dur_is(42 * s + 999 * ms, "42s");
    dur_is(m - 1, "59s");
    dur_is(m, "1m00s");
    dur_is(3 * m + 12 * s, "3m12s");
    dur_is(3 * m + 5 * s, "3m05s");
    dur_is(h - 1, "59m59s");
    dur_is(h, "1h00m");
    dur_is(2 * h + 5 * m + 59 * s, "2h05m");
    dur_is(d - 1, "23h59m");
    dur_is(d, "1d0h");
    dur_is(3 * d + 4 * h + 59 * m, "3d4h");
    dur_is(INT64_MAX, "106751d23h");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_bytes_small_buffer),
        cmocka_unit_test(test_durations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
