/*
 * hash: 64-bit FNV-1a; see hash.h.
 */
#include "hash.h"

uint64_t
tc_hash64(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}
