/*
 * escape: control characters and invalid UTF-8 made visible; see
 * escape.h for the table.
 */
#include "escape.h"

#include <errno.h>
#include <string.h>

#include "util.h"

size_t
tc_utf8_len(const unsigned char *s, size_t n)
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
    return 0; /* ASCII, continuation byte, C0/C1 lead, F5..FF */
}

/*
 * The next piece of s (n > 0 bytes left): either *len input bytes to copy
 * as they are (return 0), or one character of *len bytes whose escape is
 * written to esc (return its length).
 */
static size_t
next_piece(const unsigned char *s, size_t n, size_t *len,
           char esc[TC_ESCAPE_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t k;

    if (c >= 0x20 && c < 0x7f) {
        /* A run of plain ASCII is copied at once. */
        for (k = 1; k < n && s[k] >= 0x20 && s[k] < 0x7f; k++)
            ;
        *len = k;
        return 0;
    }
    *len = 1;
    switch (c) {
    case '\n':
        memcpy(esc, "\\n", 2);
        return 2;
    case '\r':
        memcpy(esc, "\\r", 2);
        return 2;
    case '\t':
        memcpy(esc, "\\t", 2);
        return 2;
    }
    if (c >= 0x80 && (k = tc_utf8_len(s, n)) > 0) {
        unsigned cp;

        *len = k;
        if (k == 2) {
            cp = (unsigned)(c & 0x1f) << 6 | (s[1] & 0x3f);
            if (cp < 0xa0)
                goto ucode; /* C1 control */
        } else if (k == 3) {
            cp = (unsigned)(c & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 |
                 (s[2] & 0x3f);
            if ((cp >= 0x2028 && cp <= 0x202e) ||
                (cp >= 0x2066 && cp <= 0x2069))
                goto ucode;
        }
        return 0;
    ucode:
        memcpy(esc, "\\u", 2);
        esc[2] = hex[(cp >> 12) & 15];
        esc[3] = hex[(cp >> 8) & 15];
        esc[4] = hex[(cp >> 4) & 15];
        esc[5] = hex[cp & 15];
        return 6;
    }
    /* C0, DEL, or a byte that is not part of valid UTF-8. */
    esc[0] = '\\';
    esc[1] = 'x';
    esc[2] = hex[c >> 4];
    esc[3] = hex[c & 15];
    return 4;
}

int
tc_escape_buf(struct tc_buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = tc_buf_size(out), i = 0;
    int rc;

    while (i < n) {
        char esc[TC_ESCAPE_MAX];
        size_t len, elen = next_piece(p + i, n - i, &len, esc);

        if (elen > 0)
            rc = tc_buf_append(out, esc, elen);
        else
            rc = tc_buf_append(out, p + i, len);
        if (rc < 0) {
            out->len = out->off + start;
            return rc;
        }
        i += len;
    }
    return 0;
}

size_t
tc_escape(char *dst, size_t cap, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, w = 0;

    while (i < n) {
        char esc[TC_ESCAPE_MAX];
        size_t len, elen = next_piece(p + i, n - i, &len, esc);

        if (elen > 0) {
            if (w + elen >= cap)
                break;
            memcpy(dst + w, esc, elen);
            w += elen;
        } else {
            /* An ASCII run may be cut anywhere; a character may not. */
            if (len == 1 || p[i] < 0x80) {
                if (w + 1 >= cap)
                    break;
                if (w + len >= cap)
                    len = cap - 1 - w;
            } else if (w + len >= cap) {
                break;
            }
            memcpy(dst + w, p + i, len);
            w += len;
        }
        i += len;
    }
    dst[w] = '\0';
    return w;
}

char *
tc_escape_dup(const char *s)
{
    size_t n = strlen(s);
    char *d;

    /* Every input byte becomes at most 4 output bytes (\xHH); the 6-byte
     * \uHHHH escapes stand for 2- or 3-byte characters. */
    d = tc_xreallocarray(NULL, n + 1, 4);
    tc_escape(d, (n + 1) * 4, s, n);
    return d;
}
