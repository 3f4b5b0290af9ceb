/*
 * json: the small JSON writer behind every --json listing.
 *
 * Log lines are arbitrary bytes; JSON strings must be valid UTF-8. The
 * string writer escapes quotes, backslashes and control characters and
 * replaces each byte that is not part of valid UTF-8 with U+FFFD, so
 * output always parses, whatever a log file contained.
 */
#ifndef TC_JSON_H
#define TC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Append s[0..n) as a quoted JSON string. 0 or -ENOBUFS. */
int tc_json_str(struct tc_buf *out, const char *s, size_t n);
/* Append a quoted key followed by ':'. */
int tc_json_key(struct tc_buf *out, const char *key);
int tc_json_i64(struct tc_buf *out, int64_t v);
int tc_json_u64(struct tc_buf *out, uint64_t v);
/* Append raw text (punctuation: "{", ",", ...). */
int tc_json_raw(struct tc_buf *out, const char *s);

#endif
