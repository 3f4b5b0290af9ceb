/*
 * json: the JSON writer behind --json listings and the HTTP API (see
 * json.h). Strings are validated as UTF-8 strictly (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF); every byte
 * that is not part of a valid sequence becomes U+FFFD, so the output
 * always parses whatever bytes a log line carried.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const char replacement[] = "\xef\xbf\xbd";

/*
 * Length of the valid UTF-8 sequence starting at s[0] (n bytes
 * available), or 0 if s[0] does not start one. Only called for bytes
 * >= 0x80.
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        /* E0 needs A0..BF (else overlong); ED needs 80..9F (else a
         * surrogate). */
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned char hi = c == 0xed ? 0x9f : 0xbf;
        if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        /* F0 needs 90..BF (else overlong); F4 needs 80..8F (else past
         * U+10FFFF). */
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;
        if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        return 4;
    }
    return 0; /* continuation byte, C0/C1, F5..FF */
}

int
tc_json_str(struct tc_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t start = tc_buf_size(out), i = 0, run = 0;
    int rc;

    if ((rc = tc_buf_append(out, "\"", 1)) < 0)
        return rc;
    while (i < n) {
        unsigned char c = p[i];
        char esc[6];
        const char *rep = NULL;
        size_t replen = 0, k;

        /* Plain ASCII is copied in runs, not byte by byte. */
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (c >= 0x80 && (k = utf8_len(p + i, n - i)) > 0) {
            i += k;
            run += k;
            continue;
        }
        if (run && (rc = tc_buf_append(out, p + i - run, run)) < 0)
            goto fail;
        run = 0;
        switch (c) {
        case '"':
            rep = "\\\"";
            break;
        case '\\':
            rep = "\\\\";
            break;
        case '\n':
            rep = "\\n";
            break;
        case '\r':
            rep = "\\r";
            break;
        case '\t':
            rep = "\\t";
            break;
        case '\b':
            rep = "\\b";
            break;
        case '\f':
            rep = "\\f";
            break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
                rep = esc;
                replen = 6;
            } else {
                rep = replacement; /* a byte outside valid UTF-8 */
            }
        }
        if (replen == 0)
            replen = strlen(rep);
        if ((rc = tc_buf_append(out, rep, replen)) < 0)
            goto fail;
        i++;
    }
    if (run && (rc = tc_buf_append(out, p + i - run, run)) < 0)
        goto fail;
    if ((rc = tc_buf_append(out, "\"", 1)) < 0)
        goto fail;
    return 0;
fail:
    /* Leave out as it was: a half-written string is never useful. */
    out->len = out->off + start;
    return rc;
}

int
tc_json_key(struct tc_buf *out, const char *key)
{
    size_t start = tc_buf_size(out);
    int rc;

    if ((rc = tc_json_str(out, key, strlen(key))) < 0)
        return rc;
    if ((rc = tc_buf_append(out, ":", 1)) < 0)
        out->len = out->off + start;
    return rc;
}

int
tc_json_i64(struct tc_buf *out, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);

    return tc_buf_append(out, tmp, (size_t)n);
}

int
tc_json_u64(struct tc_buf *out, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

    return tc_buf_append(out, tmp, (size_t)n);
}

int
tc_json_raw(struct tc_buf *out, const char *s)
{
    return tc_buf_append(out, s, strlen(s));
}
