/*
 * hash: the string hash of tocsin (64-bit FNV-1a), the one every module
 * uses. Stable across builds, platforms and versions: the agent stores
 * it (spool head hashes identify tracked files across upgrades) and
 * derives schedules from it (check splay), so its values must never
 * change. Not keyed: use it for tables only where the input's author is
 * trusted or a collision costs only time.
 */
#ifndef TC_HASH_H
#define TC_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The starting value of a hash built in parts with tc_hash64_add. */
#define TC_HASH64_INIT 14695981039346656037ULL

/* FNV-1a of p[0..n). */
uint64_t tc_hash64(const void *p, size_t n);

/* FNV-1a of the NUL-terminated string s (without its NUL). */
uint64_t tc_hash64_str(const char *s);

/*
 * Continue hash h (TC_HASH64_INIT to start) over p[0..n):
 * tc_hash64_add(tc_hash64_add(TC_HASH64_INIT, a, n), b, m) is the hash
 * of a and b concatenated.
 */
uint64_t tc_hash64_add(uint64_t h, const void *p, size_t n);

#endif
