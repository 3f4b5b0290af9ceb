/*
 * units: sizes and durations for people; see units.h. Integer arithmetic
 * only, so the boundaries are exact (no double rounding 1023.95 KiB to
 * "1024.0 KiB").
 */
#include "units.h"

#include <inttypes.h>
#include <stdio.h>

const char *
tc_fmt_bytes(char *buf, size_t len, uint64_t n)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB",
                                       "TiB", "PiB", "EiB"};

    if (len == 0)
        return buf;
    if (n < 1024) {
        snprintf(buf, len, "%" PRIu64 " B", n);
        return buf;
    }
    for (unsigned i = 1; i <= 6; i++) {
        unsigned s = 10 * i;
        uint64_t q = n >> s, r = n & ((UINT64_C(1) << s) - 1);
        /* r < 2^60, so r * 10 + 2^59 fits in 64 bits. */
        uint64_t tenths = q * 10 + ((r * 10 + (UINT64_C(1) << (s - 1))) >> s);
        uint64_t whole = q + (r >> (s - 1));

        if (tenths < 1000) {
            snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " %s", tenths / 10,
                     tenths % 10, unit[i - 1]);
            return buf;
        }
        if (whole < 1024 || i == 6) {
            snprintf(buf, len, "%" PRIu64 " %s", whole, unit[i - 1]);
            return buf;
        }
    }
    return buf; /* not reached: i == 6 always prints */
}

const char *
tc_fmt_duration(char *buf, size_t len, int64_t ns)
{
    const int64_t us = 1000, ms = 1000 * us, sec = 1000 * ms;
    int64_t s;

    if (len == 0)
        return buf;
    if (ns < 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    s = ns / sec;
    if (ns == 0)
        snprintf(buf, len, "0ms");
    else if (ns < us)
        snprintf(buf, len, "%" PRId64 "ns", ns);
    else if (ns < ms)
        snprintf(buf, len, "%" PRId64 "us", ns / us);
    else if (ns < sec)
        snprintf(buf, len, "%" PRId64 "ms", ns / ms);
    else if (s < 10 && ns % sec != 0)
        snprintf(buf, len, "%" PRId64 ".%" PRId64 "s", s,
                 ns % sec / (100 * ms));
    else if (s < 60)
        snprintf(buf, len, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600,
                 s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", s / 86400,
                 s % 86400 / 3600);
    return buf;
}
