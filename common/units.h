/*
 * units: how a size or a duration reads to a person, in one place.
 * tocsinctl's tables and tocsin-agent status print through these;
 * JSON never does: it keeps raw numbers and names the unit in the key
 * (spool_bytes, mtta_ns, interval_ms), so scripts need no parsing.
 */
#ifndef TC_UNITS_H
#define TC_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Longest output of either formatter, with its NUL. */
#define TC_UNITS_MAX 32

/*
 * Bytes with binary units: "0 B", "1023 B", "1.0 KiB", "1.5 KiB",
 * "23.4 MiB", "100 KiB", "1023 MiB", up to EiB. One decimal below 100
 * of a unit, none from 100; rounded half up, and a value that would
 * round to 1024 of a unit is shown in the next ("1.0 MiB", never
 * "1024 KiB"). Writes NUL-terminated into buf (len bytes, cut to fit);
 * returns buf.
 */
const char *tc_fmt_bytes(char *buf, size_t len, uint64_t n);

/*
 * A duration in its two largest units, truncated (never rounded up, so
 * a time is never shown as reached before it is): "0ms", "850ms",
 * "2.1s", "1s", "42s", "3m12s", "3m05s", "2h05m", "3d4h". Below 10 s a
 * duration that is not whole seconds gets one decimal (a mean time to
 * acknowledge would lose too much as whole seconds). Below a
 * millisecond "740us", below a microsecond "12ns". A negative duration
 * (no value: nothing was measured) is "-". Returns buf, as above.
 */
const char *tc_fmt_duration(char *buf, size_t len, int64_t ns);

#endif
