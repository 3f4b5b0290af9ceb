/*
 * token: the HTTP API's bearer tokens (docs/api.md, "Auth"): made from
 * 32 random bytes, kept only as their SHA-256, compared in constant
 * time. Here because only common/ touches OpenSSL.
 */
#ifndef TC_TOKEN_H
#define TC_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* "tct_" and 32 random bytes in base64url: 47 characters. */
#define TC_TOKEN_PREFIX "tct_"
#define TC_TOKEN_LEN 47
#define TC_TOKEN_HASH_LEN 32 /* SHA-256 */

/*
 * A new token from OpenSSL's RAND_bytes into out (outlen bytes, at
 * least TC_TOKEN_LEN + 1). 0, or -EIO when the generator fails.
 */
int tc_token_new(char *out, size_t outlen);

/* SHA-256 of tok[0..n) into hash. 0 or -EIO. */
int tc_token_hash(const char *tok, size_t n, uint8_t hash[TC_TOKEN_HASH_LEN]);

/* 1 when a and b (n bytes each) are equal; time independent of where
 * they differ (CRYPTO_memcmp). */
int tc_token_equal(const void *a, const void *b, size_t n);

#endif
