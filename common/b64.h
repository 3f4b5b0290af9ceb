/*
 * b64: base64url (RFC 4648 section 5, no padding), for the tokens and
 * the API's page cursors: text that travels in URLs and HTTP headers
 * without escaping. Pure (core): no allocation, no I/O.
 */
#ifndef TC_B64_H
#define TC_B64_H

#include <stddef.h>
#include <stdint.h>

/* Characters tc_b64url_encode writes for n bytes (no NUL). */
#define TC_B64URL_LEN(n) (((n)*4 + 2) / 3)

/*
 * Encode p[0..n) into out (outlen bytes, at least TC_B64URL_LEN(n) + 1),
 * NUL-terminated. Returns the length, or -ENOBUFS.
 */
int tc_b64url_encode(const void *p, size_t n, char *out, size_t outlen);

/*
 * Decode s[0..n) into out (outlen bytes). Refuses padding, characters
 * outside the alphabet, a length of 1 mod 4 and non-zero trailing bits
 * (so each byte string has exactly one encoding). Returns the decoded
 * length, -EINVAL or -ENOBUFS.
 */
int tc_b64url_decode(const char *s, size_t n, uint8_t *out, size_t outlen);

#endif
