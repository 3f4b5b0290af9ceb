/*
 * timefmt: the one RFC 3339 formatter. Every time a person or a JSON
 * reader sees (logs, tocsinctl, the agent's status, events' ts_iso) is
 * UTC, "2026-12-05T02:49:47.123Z", with the precision its reader needs.
 */
#ifndef TC_TIMEFMT_H
#define TC_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Enough for any time with nanoseconds ("-292277026596-..." included). */
#define TC_RFC3339_MAX 48

/*
 * Write ns (nanoseconds since the Unix epoch, UTC; negative is before
 * it) to buf as RFC 3339 with `digits` fractional digits (0, 3, 6 or 9;
 * other values are taken as the next of those above), always ending in
 * "Z" and NUL-terminated. A time gmtime cannot represent is written
 * "?". Returns the length written, without the NUL (cut to len - 1).
 */
size_t tc_rfc3339(int64_t ns, int digits, char *buf, size_t len);

#endif
