/*
 * hash: the string hash of common/ (64-bit FNV-1a). Stable across builds
 * and platforms; not keyed, so use it only where the input's author is
 * trusted or a collision costs only time (config keys).
 */
#ifndef TC_HASH_H
#define TC_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t tc_hash64(const void *p, size_t n);

#endif
