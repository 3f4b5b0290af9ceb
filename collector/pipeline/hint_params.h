/*
 * hint_params: the params of a stored hint (the JSON object dispatch
 * wrote into hints.params, docs/internals/hints.md) back into the
 * key/value pairs of a HINT frame, for the hint sender.
 *
 * The text is read from the store, which dispatch wrote with the JSON
 * writer (json.h); but the store is a file, so the parser takes it as
 * untrusted bytes and accepts only what a HINT can carry: one object
 * of string values, each key and value strictly valid UTF-8 with no NUL
 * (neither raw nor as \u0000) and no raw control byte, escapes decoded
 * (surrogate pairs joined, a lone surrogate refused), no key given
 * twice (the signature covers params sorted by key), within the
 * TC_HINT_MAX_* limits of wire.h, JSON white space allowed between
 * tokens and nothing after the object. It never reads past len and
 * never allocates more than the limits allow, whatever the input's
 * length.
 */
#ifndef COLLECTOR_HINT_PARAMS_H
#define COLLECTOR_HINT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct hint_params {
    struct tc_kv *kv; /* n pairs, pointing into strs; owned */
    uint32_t n;
    char **strs; /* owned: 2n C strings, key then value */
};

/*
 * Parse json[0..len) into *out (zeroed first). 0; or -EINVAL (not such
 * an object) or -EMSGSIZE (over a limit) with *why a static reason and
 * *out empty.
 */
int hint_params_parse(const char *json, size_t len, struct hint_params *out,
                      const char **why);

/* Free what parse filled; *p is empty after. */
void hint_params_free(struct hint_params *p);

#endif
