/*
 * hash: 64-bit FNV-1a; see hash.h.
 */
#include "hash.h"

#define FNV64_PRIME 1099511628211ULL

uint64_t
tc_hash64_add(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV64_PRIME;
    }
    return h;
}

uint64_t
tc_hash64(const void *p, size_t n)
{
    return tc_hash64_add(TC_HASH64_INIT, p, n);
}

uint64_t
tc_hash64_str(const char *s)
{
    uint64_t h = TC_HASH64_INIT;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= FNV64_PRIME;
    }
    return h;
}
