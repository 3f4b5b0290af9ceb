/*
 * hint_view: a hint as JSON (hint_view.h).
 */
#include "view/hint_view.h"

#include <errno.h>
#include <string.h>

#include "json.h"

const char *
view_hint_state(const struct hint_row *r)
{
    if (r->acked_at)
        return "acked";
    if (strncmp(r->error, HINT_REFUSED_PREFIX,
                sizeof(HINT_REFUSED_PREFIX) - 1) == 0)
        return "refused";
    return r->sent_at ? "sent" : "pending";
}

static int
jstr(struct tc_buf *b, const char *k, const char *v)
{
    int rc = tc_json_raw(b, ",") | tc_json_key(b, k);

    if (v == NULL)
        return rc | tc_json_raw(b, "null");
    return rc | tc_json_str(b, v, strlen(v));
}

static int
jint(struct tc_buf *b, const char *k, int64_t v)
{
    return tc_json_raw(b, ",") | tc_json_key(b, k) | tc_json_i64(b, v);
}

int
view_hint_json(struct tc_buf *b, const struct hint_row *r)
{
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "id");
    rc |= tc_json_i64(b, r->id);
    rc |= jstr(b, "agent", r->agent);
    rc |= jint(b, "incident", r->incident_id);
    rc |= jint(b, "problem", r->problem_id);
    rc |= jstr(b, "source", r->source);
    rc |= jstr(b, "title", r->title);
    rc |= jstr(b, "action", r->action);
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "params");
    rc |= tc_json_raw(b, r->params); /* written as JSON by dispatch */
    rc |= jstr(b, "note", r->note);
    rc |= jint(b, "issued", r->issued);
    rc |= jstr(b, "state", view_hint_state(r));
    rc |= jint(b, "sent_at", r->sent_at);
    rc |= jint(b, "acked_at", r->acked_at);
    rc |= jint(b, "attempts", r->attempts);
    rc |= jstr(b, "error", r->error);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}
