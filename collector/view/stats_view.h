/*
 * stats_view: the response figures of tocsinctl stats --json and the
 * HTTP API's /api/v1/stats, built here only so that both have the same
 * keys: one group of incidents_store_stats, and the running collector's
 * own figures from its stats file (looplag.h).
 */
#ifndef VIEW_STATS_VIEW_H
#define VIEW_STATS_VIEW_H

#include "buf.h"
#include "looplag.h"
#include "store/incidents_store.h"

/*
 * Append r as one JSON object: key, incidents, openings, acknowledged,
 * mtta_ms, resolved, mttr_ms, gaps, mtbf_ms (means null when there is
 * nothing to average). 0 or -ENOBUFS.
 */
int view_stats_row_json(struct tc_buf *b, const struct incidents_stats_row *r);

/* Figures older than this: the file's writer is taken to be gone. */
#define VIEW_STATS_STALE_NS 5000000000LL

/*
 * Append the collector's figures st as one JSON object (pid, started,
 * updated, stale, the loop lag), or null when st is NULL (no readable
 * stats file). 0 or -ENOBUFS.
 */
int view_stats_collector_json(struct tc_buf *b, const struct looplag_stats *st,
                              int stale);

#endif
