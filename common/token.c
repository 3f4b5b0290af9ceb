/*
 * token: API bearer tokens (token.h) through OpenSSL.
 */
#include "token.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"

int
tc_token_new(char *out, size_t outlen)
{
    uint8_t raw[32];
    size_t pl = strlen(TC_TOKEN_PREFIX);

    if (outlen < TC_TOKEN_LEN + 1)
        return -ENOBUFS;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    memcpy(out, TC_TOKEN_PREFIX, pl);
    if (tc_b64url_encode(raw, sizeof(raw), out + pl, outlen - pl) < 0)
        return -ENOBUFS;
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int
tc_token_hash(const char *tok, size_t n, uint8_t hash[TC_TOKEN_HASH_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(tok, n, hash, &len, EVP_sha256(), NULL) != 1 ||
        len != TC_TOKEN_HASH_LEN)
        return -EIO;
    return 0;
}

int
tc_token_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
