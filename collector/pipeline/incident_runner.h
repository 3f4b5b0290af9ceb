/*
 * incident_runner: runs the incident engine beside the ingest pipeline.
 *
 * After every store commit that wrote events (incident_runner_kick,
 * wired to the ingest pipeline's commit hook) and otherwise every poll
 * interval (100 ms, for clock ticks and tocsinctl actions) it queues
 * one engine step on the libuv
 * threadpool (incidents_store_step): the batches committed since the
 * last step, then the actions tocsinctl recorded, then a clock tick,
 * written with the new watermark in one transaction on the runner's own
 * SQLite connection. Nothing touches SQLite on the loop thread except
 * the load at start-up, like the agents table.
 *
 * Contract: all functions run on the loop thread. incident_runner_stop
 * stops the timer; a step in flight completes on its own (the loop runs
 * until it has); incident_runner_free after the loop has ended.
 */
#ifndef COLLECTOR_INCIDENT_RUNNER_H
#define COLLECTOR_INCIDENT_RUNNER_H

#include <uv.h>

#include "metrics.h"

struct incident_runner;
struct collector_config;
struct store;

/* Open the engine state from log, the pipeline's event log store
 * (already migrated by store_open; it must outlive the runner), and
 * load the engine. Logs and returns a negative errno. */
int incident_runner_new(uv_loop_t *loop, const struct collector_config *cfg,
                        struct store *log, struct incident_runner **out);
int incident_runner_start(struct incident_runner *r);
/*
 * New batches are committed: step now, or right after the step in
 * flight (which may have read the store before that commit). Cheap;
 * any number of kicks during a step cause one more step.
 */
void incident_runner_kick(void *runner);
/* New incident thresholds (reload): used from the next step on. */
void incident_runner_set_config(struct incident_runner *r,
                                const struct collector_config *cfg);
/*
 * The runbooks from now on (start-up, reload): takes the caller's
 * reference to set. The step in flight, if any, keeps the set it has;
 * the next one sees the new set (dispatch reads it on the worker).
 */
struct runbook_set;
void incident_runner_set_runbooks(struct incident_runner *r,
                                  struct runbook_set *set);
/* fn(arg) on the loop thread after steps that wrote hints. */
void incident_runner_on_hints(struct incident_runner *r, void (*fn)(void *arg),
                              void *arg);
/*
 * For the metrics (loop thread). The census (incidents and problems
 * by state, hints not acked) is taken by the worker after a step at
 * most once a second: counts of the engine's memory and one count of
 * the hints table, never a query on the loop.
 */
struct incident_runner_stats {
    struct metrics_hist step; /* each engine step's duration */
    int census;               /* 1 once a census was taken */
    uint64_t incidents[METRICS_INCIDENT_STATES][METRICS_PRIORITIES];
    uint64_t problems[METRICS_PROBLEM_STATES];
    uint64_t hints_unacked;
    uint64_t hints_decided; /* hints the steps of this run wrote */
};
void incident_runner_stats(const struct incident_runner *r,
                           struct incident_runner_stats *out);
/* Idempotent. */
void incident_runner_stop(struct incident_runner *r);
/* NULL: no-op. */
void incident_runner_free(struct incident_runner *r);

#endif
