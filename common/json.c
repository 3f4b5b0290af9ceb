/*
 * json: the JSON writer behind --json listings and the HTTP API (see
 * json.h). Strings are validated as UTF-8 strictly (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF); every byte
 * that is not part of a valid sequence becomes U+FFFD, so the output
 * always parses whatever bytes a log line carried. C0 controls, DEL and
 * the C1 controls (U+0080-U+009F) are written as \u00HH, so --json
 * output on a terminal cannot drive it either.
 */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const char replacement[] = "\xef\xbf\xbd";

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
        size_t replen = 0, k = 0;

        /* Plain ASCII is copied in runs, not byte by byte. */
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        /* Valid UTF-8 is copied, except the C1 controls U+0080-U+009F:
         * a terminal showing --json output may act on them. */
        if (c >= 0x80 && (k = tc_utf8_len(p + i, n - i)) > 0 &&
            !(c == 0xc2 && p[i + 1] < 0xa0)) {
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
            /* C0, DEL, or a C1 control in UTF-8 (k == 2: C2 80..C2 9F). */
            if (c < 0x20 || c == 0x7f || k == 2) {
                unsigned char cp = k == 2 ? p[++i] : c;

                memcpy(esc, "\\u00", 4);
                esc[4] = hex[cp >> 4];
                esc[5] = hex[cp & 0xf];
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
