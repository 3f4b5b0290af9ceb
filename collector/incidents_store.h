/*
 * incidents_store: the incident tables in the collector's SQLite file
 * (schema version 3, created by store.c's migrations), and the engine
 * step that turns committed batches and recorded actions into incident
 * rows (docs/internals/incidents.md).
 *
 * A struct incidents_store is its own SQLite connection, apart from the
 * ingest pipeline's, so that the engine can run on a threadpool worker
 * while a group commit runs on another; WAL lets it read committed
 * batches without blocking the writer, and its own short write
 * transactions queue behind the ingest commit on SQLite's lock (busy
 * timeout 5 s). Like struct store, one thread at a time.
 *
 * Errors are negative errno values; incidents_store_errmsg says why.
 */
#ifndef COLLECTOR_INCIDENTS_STORE_H
#define COLLECTOR_INCIDENTS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "incident.h"

struct incidents_store;

/*
 * Open the store at path, which must exist with the current schema
 * (the collector's store_open creates and migrates it). rdonly: for
 * listing; otherwise actions can be added, and the engine steps run.
 */
int incidents_store_open(const char *path, int rdonly,
                         struct incidents_store **out);
void incidents_store_close(struct incidents_store *s);
const char *incidents_store_errmsg(const struct incidents_store *s);

/* What the incident tables reflect: the last engine step. */
struct incidents_watermark {
    int64_t step;      /* engine_steps row; 0 = none yet */
    int64_t batch_to;  /* every batch with id <= this was fed */
    int64_t action_to; /* every action with id <= this was applied */
};

/*
 * Collector start-up (and recovery after a failed step): a new engine
 * in e, loaded from the incident tables, and the watermark.
 */
int incidents_store_load(struct incidents_store *s,
                         const struct incident_config *cfg,
                         struct incident_engine **e,
                         struct incidents_watermark *wm);

/*
 * One engine step: feed the batches after wm (at most max_batches, in
 * id order), then the actions after wm (in id order), then a tick at
 * now; write every resulting change and the new watermark in one
 * transaction. *more is set when batches remain. On error the engine
 * is ahead of the tables: the caller must throw it away and load again.
 * Nothing is written when the step changed nothing.
 */
int incidents_store_step(struct incidents_store *s, struct incident_engine *e,
                         struct incidents_watermark *wm, int64_t now,
                         uint32_t max_batches, int *more);

/* tocsinctl: filters for incidents_store_list; NULL / 0 = any. */
struct incidents_filter {
    const char *state; /* "open", "acknowledged", ... */
    int priority;      /* 1..5 */
    const char *host;
    int64_t id; /* one incident */
};

/* Incidents matching f, newest first. Strings valid during cb. */
int incidents_store_list(struct incidents_store *s,
                         const struct incidents_filter *f,
                         int (*cb)(const struct incident *in, void *arg),
                         void *arg);
/* The timeline of one incident, oldest first. */
int incidents_store_timeline(struct incidents_store *s, int64_t id,
                             int (*cb)(const struct incident_note *n,
                                       void *arg),
                             void *arg);

/* Record a human action (tocsinctl); its id in *id. */
int incidents_store_action_add(struct incidents_store *s,
                               const struct incident_action *a, int64_t *id);
/*
 * Has the collector applied action id? *done 0 (not yet) or 1, and then
 * *result: 0 or the engine's negative errno.
 */
int incidents_store_action_result(struct incidents_store *s, int64_t id,
                                  int *done, int *result);

#endif
