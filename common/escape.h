/*
 * escape: the one function that makes untrusted bytes safe for a
 * terminal or a log line.
 *
 * Log lines, file names, peer strings and rule captures are arbitrary
 * bytes. Written raw, an ESC starts a terminal control sequence (OSC 52
 * writes the clipboard, CSI moves the cursor), a newline forges a log
 * line and a carriage return hides the start of one. Every human-readable
 * output (tocsinctl, tocsin-agent status and test-rules, every log line)
 * passes what it did not write itself through tc_escape_*:
 *
 *   \n \r \t          as those two-character escapes;
 *   other C0, DEL     as \xHH;
 *   invalid UTF-8     each offending byte as \xHH (so raw 0x80-0x9F, the
 *                     8-bit C1 controls, never reach the terminal);
 *   U+0080-U+009F     (C1 controls encoded in UTF-8) as \u00HH;
 *   U+2028, U+2029    (line and paragraph separators) and the bidi
 *   U+202A-U+202E,    embeddings, overrides and isolates (which reorder
 *   U+2066-U+2069     what is shown after them) as \uHHHH;
 *   everything else   (printable ASCII, valid UTF-8) unchanged.
 *
 * A backslash is kept as it is: the escapes are for safety, not a
 * reversible encoding, and doubling every backslash would garble the
 * regular expressions that log lines quote.
 *
 * JSON output does not use this: the JSON writer (json.h) has its own
 * escaping and shares tc_utf8_len with it.
 */
#ifndef TC_ESCAPE_H
#define TC_ESCAPE_H

#include <stddef.h>

#include "buf.h"

/* Longest escape one input byte or character can become ("\\u202e"). */
#define TC_ESCAPE_MAX 6

/*
 * Length (2-4) of the strictly valid UTF-8 sequence (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) at s[0], n
 * bytes available, or 0 if none starts there (an ASCII byte included).
 */
size_t tc_utf8_len(const unsigned char *s, size_t n);

/* Append s[0..n) escaped to out. 0, or -ENOBUFS (out left unchanged). */
int tc_escape_buf(struct tc_buf *out, const char *s, size_t n);

/*
 * Write s[0..n) escaped into dst (cap bytes, cap >= 1), always
 * NUL-terminated; what does not fit is cut at a whole escape or
 * character, never in the middle of one. Returns the number of bytes
 * written, without the NUL.
 */
size_t tc_escape(char *dst, size_t cap, const char *s, size_t n);

/* A NUL-terminated escaped copy of the string s (caller frees). */
char *tc_escape_dup(const char *s);

#endif
