/*
 * fuzz_hint_params: libFuzzer target for the parser of a stored hint's
 * params (collector/pipeline/hint_params.c), which reads bytes from the
 * collector's store.
 *
 * Besides crashes, leaks and sanitizer reports, two properties abort:
 * what the parser accepts must pass the wire decoder's hint check (the
 * agent would refuse it otherwise), and written back with the JSON
 * writer as dispatch writes it, it must parse to the same pairs.
 *   build-fuzz/tests/fuzz/fuzz_hint_params NEWDIR \
 *     tests/fuzz/corpus/hint_params
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "pipeline/hint_params.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hint_params p, q;
    struct tc_hint h;
    struct tc_buf b;
    const char *why, *werr;

    if (hint_params_parse((const char *)data, size, &p, &why) < 0) {
        if (why == NULL || p.n != 0 || p.kv != NULL)
            abort();
        return 0;
    }
    memset(&h, 0, sizeof(h));
    h.params = p.kv;
    h.nparams = p.n;
    if (tc_wire_hint_check(&h, &werr) < 0)
        abort();
    tc_buf_init(&b, 1u << 20);
    tc_json_raw(&b, "{");
    for (uint32_t i = 0; i < p.n; i++) {
        if (i > 0)
            tc_json_raw(&b, ",");
        tc_json_key(&b, p.strs[2 * i]);
        tc_json_str(&b, p.kv[i].val.ptr, p.kv[i].val.len);
    }
    tc_json_raw(&b, "}");
    if (hint_params_parse((const char *)tc_buf_head(&b), tc_buf_size(&b), &q,
                          &why) < 0 ||
        q.n != p.n)
        abort();
    for (uint32_t i = 0; i < 2 * p.n; i++)
        if (strcmp(p.strs[i], q.strs[i]) != 0)
            abort();
    hint_params_free(&q);
    hint_params_free(&p);
    tc_buf_close(&b);
    return 0;
}
