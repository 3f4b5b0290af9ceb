/*
 * agent_view: an agent as JSON and as a table row; see agent_view.h.
 */
#include "view/agent_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "timefmt.h"
#include "units.h"

/* Cell caps: names and versions come from agents' HELLOs. */
const struct tc_table_col view_agent_cols[] = {
    {"NAME", 0, 40},     {"CONNECTED", 0, 0}, {"LAST_SEEN", 0, 0},
    {"SOFTWARE", 0, 32}, {"SPOOL", 1, 0},     {"SPOOL_SIZE", 1, 0},
    {"HWM", 1, 0},       {"HEARTBEAT", 1, 0}, {"SILENT", 0, 0},
};
const size_t view_agent_ncols =
    sizeof(view_agent_cols) / sizeof(view_agent_cols[0]);

static int
json_time(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX], k[64];
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_i64(b, ns);
    snprintf(k, sizeof(k), "%s_iso", key);
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, k);
    if (ns > 0) {
        tc_rfc3339(ns, 3, iso, sizeof(iso));
        rc |= tc_json_str(b, iso, strlen(iso));
    } else {
        rc |= tc_json_raw(b, "null");
    }
    return rc;
}

static int
json_opt_str(struct tc_buf *b, const char *key, const char *v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    if (v != NULL)
        rc |= tc_json_str(b, v, strlen(v));
    else
        rc |= tc_json_raw(b, "null");
    return rc;
}

static int
json_u64(struct tc_buf *b, const char *key, uint64_t v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_u64(b, v);
    return rc;
}

static int
json_bool(struct tc_buf *b, const char *key, int v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_raw(b, v ? "true" : "false");
    return rc;
}

int
view_agent_json(struct tc_buf *b, const struct store_agent *a)
{
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "name");
    rc |= tc_json_str(b, a->name, strlen(a->name));
    rc |= json_bool(b, "connected", a->connected);
    rc |= json_opt_str(b, "address", a->address);
    rc |= json_time(b, "last_seen", a->last_seen);
    rc |= json_time(b, "first_seen", a->first_seen);
    rc |= json_opt_str(b, "software", a->software);
    rc |= json_u64(b, "spool_depth", a->spool_depth);
    rc |= json_u64(b, "spool_bytes", a->spool_bytes);
    rc |= json_u64(b, "hwm", a->hwm);
    rc |= json_u64(b, "heartbeat_ms", a->heartbeat_ms);
    rc |= json_bool(b, "silent", a->silent_since != 0);
    if (a->silent_since != 0)
        rc |= json_time(b, "silent_since", a->silent_since);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

void
view_agent_row(struct tc_table *t, const struct store_agent *a)
{
    char iso[TC_RFC3339_MAX], u[TC_UNITS_MAX];

    tc_table_cell(t, a->name);
    tc_table_cell(t, a->connected ? "yes" : "no");
    if (a->last_seen > 0)
        tc_rfc3339(a->last_seen, 3, iso, sizeof(iso));
    tc_table_cell(t, a->last_seen > 0 ? iso : NULL);
    tc_table_cell(t, a->software);
    tc_table_cellf(t, "%" PRIu64, a->spool_depth);
    tc_table_cell(t, tc_fmt_bytes(u, sizeof(u), a->spool_bytes));
    tc_table_cellf(t, "%" PRIu64, a->hwm);
    /* heartbeat_ms is the peer's word: keep ms * 10^6 in range. */
    tc_table_cell(t,
                  a->heartbeat_ms
                      ? tc_fmt_duration(u, sizeof(u),
                                        a->heartbeat_ms < INT64_MAX / 1000000
                                            ? (int64_t)a->heartbeat_ms * 1000000
                                            : INT64_MAX)
                      : NULL);
    if (a->silent_since != 0) {
        tc_rfc3339(a->silent_since, 0, iso, sizeof(iso));
        tc_table_cellf(t, "since %s", iso);
    } else {
        tc_table_cell(t, "no");
    }
}
