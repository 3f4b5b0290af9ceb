/*
 * silence_view: a silence as JSON (silence_view.h).
 */
#include "view/silence_view.h"

#include <errno.h>
#include <string.h>

#include "json.h"
#include "timefmt.h"

static int
key(struct tc_buf *b, const char *k)
{
    return tc_json_raw(b, ",") | tc_json_key(b, k);
}

int
view_silence_row_json(struct tc_buf *b, const struct incidents_silence_row *r,
                      int64_t now)
{
    int64_t end = r->expired_at && r->expired_at < r->ends_at ? r->expired_at
                                                              : r->ends_at;
    const char *state = end <= now           ? "ended"
                        : r->starts_at > now ? "pending"
                                             : "active";
    char s[TC_RFC3339_MAX], e[TC_RFC3339_MAX];
    int rc = 0;

    tc_rfc3339(r->starts_at, 3, s, sizeof(s));
    tc_rfc3339(end, 3, e, sizeof(e));
    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "id");
    rc |= tc_json_i64(b, r->id);
    rc |= key(b, "state");
    rc |= tc_json_str(b, state, strlen(state));
    rc |= key(b, "starts_at");
    rc |= tc_json_i64(b, r->starts_at);
    rc |= key(b, "ends_at");
    rc |= tc_json_i64(b, end);
    rc |= key(b, "starts_at_iso");
    rc |= tc_json_str(b, s, strlen(s));
    rc |= key(b, "ends_at_iso");
    rc |= tc_json_str(b, e, strlen(e));
    rc |= key(b, "expired");
    rc |= tc_json_raw(b, r->expired_at ? "true" : "false");
    rc |= key(b, "user");
    rc |= tc_json_str(b, r->user, strlen(r->user));
    rc |= key(b, "comment");
    rc |= tc_json_str(b, r->comment, strlen(r->comment));
    rc |= key(b, "matchers");
    rc |= tc_json_str(b, r->matchers, strlen(r->matchers));
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}
