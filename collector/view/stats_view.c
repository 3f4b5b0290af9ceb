/*
 * stats_view: stats groups and the collector's live figures as JSON
 * (stats_view.h); moved out of tocsinctl stats for the HTTP API.
 */
#include "view/stats_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static void
jmean(struct tc_buf *b, const char *key, int64_t ns)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    if (ns < 0)
        tc_json_raw(b, "null");
    else
        tc_json_i64(b, ns / 1000000);
}

int
view_stats_row_json(struct tc_buf *b, const struct incidents_stats_row *r)
{
    tc_json_raw(b, "{");
    tc_json_key(b, "key");
    tc_json_str(b, r->key, strlen(r->key));
    tc_json_raw(b, ",");
    tc_json_key(b, "incidents");
    tc_json_u64(b, r->n);
    tc_json_raw(b, ",");
    tc_json_key(b, "openings");
    tc_json_u64(b, r->openings);
    tc_json_raw(b, ",");
    tc_json_key(b, "acknowledged");
    tc_json_u64(b, r->acked);
    jmean(b, "mtta_ms", r->mtta_ns);
    tc_json_raw(b, ",");
    tc_json_key(b, "resolved");
    tc_json_u64(b, r->restored);
    jmean(b, "mttr_ms", r->mttr_ns);
    tc_json_raw(b, ",");
    tc_json_key(b, "gaps");
    tc_json_u64(b, r->gaps);
    jmean(b, "mtbf_ms", r->mtbf_ns);
    return tc_json_raw(b, "}");
}

static void
ms_json(struct tc_buf *b, const char *key, uint64_t us)
{
    char num[32];

    tc_json_raw(b, ",");
    tc_json_key(b, key);
    snprintf(num, sizeof(num), "%" PRIu64 ".%01" PRIu64, us / 1000,
             us % 1000 / 100);
    tc_json_raw(b, num);
}

int
view_stats_collector_json(struct tc_buf *b, const struct looplag_stats *st,
                          int stale)
{
    if (st == NULL)
        return tc_json_raw(b, "null");
    tc_json_raw(b, "{");
    tc_json_key(b, "pid");
    tc_json_i64(b, st->pid);
    tc_json_raw(b, ",");
    tc_json_key(b, "started");
    tc_json_i64(b, st->started_ns);
    tc_json_raw(b, ",");
    tc_json_key(b, "updated");
    tc_json_i64(b, st->updated_ns);
    tc_json_raw(b, stale ? ",\"stale\":true" : ",\"stale\":false");
    tc_json_raw(b, ",");
    tc_json_key(b, "loop_lag_interval_ms");
    tc_json_u64(b, st->interval_ms);
    tc_json_raw(b, ",");
    tc_json_key(b, "loop_lag_samples");
    tc_json_u64(b, st->samples);
    ms_json(b, "loop_lag_max_ms", st->max_us);
    ms_json(b, "loop_lag_p50_ms", st->p50_us);
    ms_json(b, "loop_lag_p99_ms", st->p99_us);
    tc_json_raw(b, ",");
    tc_json_key(b, "loop_lag_stalls");
    tc_json_u64(b, st->stalls);
    ms_json(b, "loop_lag_recent_max_ms", st->recent_max_us);
    return tc_json_raw(b, "}");
}
