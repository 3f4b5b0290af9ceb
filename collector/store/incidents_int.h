/*
 * incidents_int: what the engine state's files share (private to
 * collector/store/): the connection, its error helpers, the incidents
 * row, and the step's feed and write, which replay reruns. See
 * incidents_store.h for the interface.
 */
#ifndef COLLECTOR_STORE_INCIDENTS_INT_H
#define COLLECTOR_STORE_INCIDENTS_INT_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "store/incidents_store.h"
#include "store/sqlerr.h"
#include "wire.h"

struct store;

struct incidents_store {
    sqlite3 *db; /* owned */
    int rdonly;
    char errmsg[256];      /* message behind the last error */
    struct tc_frame frame; /* batch decode memory, reused */
    int64_t *results;      /* owned: action results of a step */
    int64_t *result_ids;   /* owned: their action ids */
    size_t nresults, capresults;
    uint64_t fed_batches;    /* batches feed visited (replay's count) */
    pthread_mutex_t *writer; /* borrowed, or NULL (tocsinctl) */
    struct store *log;       /* owned: read-only event log reader, opened
                                by the first feed (listings need none);
                                NULL until then and in replay's scratch */
    char *path;              /* owned: the file, for opening log */
};

static inline int
fail(struct incidents_store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_sqlfail(rc);
}

static inline int
exec(struct incidents_store *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static inline int
prep(struct incidents_store *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static inline const char *
col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

/* Run a prepared statement that returns no rows, then reset it. */
static inline int
step_reset(struct incidents_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc);
}

/* The incidents columns, in incidents_row_incident's order. */
#define INC_COLS                                                               \
    "id, fingerprint, host, rule, kind, state, severity, priority, count,"     \
    " first_seen, last_seen, opened_at, acked_at, resolved_at, closed_at,"     \
    " reopened, tier1, silenced, flapping, service"

/* One incidents row (column order of INC_COLS) into in; strings point
 * into the statement's row. */
void incidents_row_incident(sqlite3_stmt *st, struct incident *in);

/*
 * Drain the engine's changes into the incident tables of s, inside the
 * caller's write transaction: the live step, and replay's scratch copy
 * (which must write exactly what the live step wrote).
 */
int incidents_write_changes(struct incidents_store *s,
                            struct incident_engine *e);

/*
 * Feed batches (through the event log's cursor) and actions after wm,
 * up to the marks in upto, at most max_batches batches; the new marks
 * in *to, *more when batches remain. The actions' results are kept in
 * s->results / s->result_ids.
 */
int incidents_feed(struct incidents_store *s, struct incident_engine *e,
                   const struct incidents_watermark *wm,
                   const struct incidents_watermark *upto, uint32_t max_batches,
                   struct incidents_watermark *to, int *more);

#endif
