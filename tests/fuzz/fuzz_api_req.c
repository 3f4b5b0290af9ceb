/*
 * fuzz_api_req: libFuzzer target for what the HTTP API parses itself
 * (collector/http/api_req.c): the route and id of the path, the query
 * string (percent-decoding, limits, cursor, filters) and the cursor.
 * H2O parses the HTTP framing; everything after it comes through here.
 *
 * Input: the first byte picks the method (GET, POST, PUT, or the next
 * bytes up to a space), the rest is the request target. A parse that
 * succeeds must describe a route and keep limit within max_page; a
 * cursor that decodes must encode back to itself.
 *   build-fuzz/tests/fuzz/fuzz_api_req NEWDIR tests/fuzz/corpus/api_req
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    struct api_req r;
    char err[256], enc[API_CURSOR_MAX + 1];
    const char *m;
    int64_t id;

    if (size == 0)
        return 0;
    m = methods[data[0] % 4];
    /* A copy without a terminator: the parser must keep to its length. */
    char *p = malloc(size - 1 ? size - 1 : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data + 1, size - 1);
    if (api_req_parse(m, strlen(m), p, size - 1, 500, &r, err, sizeof(err)) ==
        0) {
        if (r.route == API_R_NONE || r.limit == 0 || r.limit > 500 ||
            r.before < 0 || r.id < 0)
            abort();
    } else if (memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }
    if (api_cursor_decode(p, size - 1, &id) == 0) {
        if (id <= 0 || api_cursor_encode(id, enc, sizeof(enc)) != 0 ||
            strlen(enc) != size - 1 || memcmp(enc, p, size - 1) != 0)
            abort();
    }
    free(p);
    return 0;
}
