/*
 * b64: base64url without padding (b64.h).
 */
#include "b64.h"

#include <errno.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
tc_b64url_encode(const void *p, size_t n, char *out, size_t outlen)
{
    const uint8_t *b = p;
    size_t o = 0, i;

    if (outlen < TC_B64URL_LEN(n) + 1)
        return -ENOBUFS;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];

        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)b[i] << 16;

        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;

        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int
val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int
tc_b64url_decode(const char *s, size_t n, uint8_t *out, size_t outlen)
{
    size_t o = 0, need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return -EINVAL;
    if (need > outlen)
        return -ENOBUFS;
    for (size_t i = 0; i < n; i++) {
        int v = val(s[i]);

        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: one encoding per byte string. */
    if (acc != 0)
        return -EINVAL;
    return (int)o;
}
