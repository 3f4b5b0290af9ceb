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

#include "engine/problem.h"
#include "store/incidents_store.h"
#include "store/sqlerr.h"
#include "wire.h"

struct store;

struct incident_engine;
struct runbook_kv;
struct runbook_set;

/* The event that opened an incident in this feed (hints_store.c):
 * what dispatch fills templates from. Strings owned. */
struct hint_ev {
    int64_t incident_id;
    struct runbook_kv *labels;
    size_t nlabels;
    struct runbook_kv *fields;
    size_t nfields;
};

/* An incident that joined a problem, or (incident_id 0) a problem that
 * is a known error: a dispatch trigger of the step. */
struct hint_link {
    int64_t incident_id;
    int64_t problem_id;
};

/* A problem action read by the feed, applied after the incident drain
 * (problems.md, "One step"). Strings owned. */
struct pending_paction {
    struct problem_action a;
    char *user, *key, *text, *text2;
    size_t slot; /* its index in results / result_ids */
};

struct incidents_store {
    sqlite3 *db; /* owned */
    int rdonly;
    char errmsg[256];      /* message behind the last error */
    struct tc_frame frame; /* batch decode memory, reused */
    int64_t *results;      /* owned: action results of a step */
    int64_t *result_ids;   /* owned: their action ids */
    size_t nresults, capresults;
    uint64_t fed_batches;          /* batches feed visited (replay's count) */
    pthread_mutex_t *writer;       /* borrowed, or NULL (tocsinctl) */
    struct store *log;             /* owned: read-only event log reader, opened
                                      by the first feed (listings need none);
                                      NULL until then and in replay's scratch */
    char *path;                    /* owned: the file, for opening log */
    struct problem_engine *pe;     /* borrowed during a feed: evidence */
    struct pending_paction *pacts; /* owned: problem actions of a feed */
    size_t npacts, cappacts;
    char **hosts; /* owned: batch hosts of a feed, for problem_hosts */
    size_t nhosts, caphosts;
    char **ahosts; /* owned: agent names fed at load, not yet written */
    size_t nahosts, capahosts;
    uint64_t foreign_results; /* action results naming another host's
                                 incident, refused since open */
    /* Dispatch (hints_store.c). */
    struct runbook_set *runbooks; /* one reference: the set the feed
                                     applied last (an input); NULL =
                                     none recorded */
    struct hint_ev *hevs;         /* owned: feed, opening events */
    size_t nhevs, caphevs;
    int64_t *hopened; /* owned: writer, incidents opened this drain */
    size_t nhopened, caphopened;
    struct hint_link *hlinks; /* owned: writer, problem triggers */
    size_t nhlinks, caphlinks;
    int64_t *hnew; /* owned: writer, ids of the hints the last step wrote */
    size_t nhnew, caphnew;
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
#define INC_NCOLS 20 /* how many INC_COLS names */

/* One incidents row (column order of INC_COLS) into in; strings point
 * into the statement's row. */
void incidents_row_incident(sqlite3_stmt *st, struct incident *in);

/*
 * Drain the engine's changes into the incident tables of s, inside the
 * caller's write transaction: the live step, and replay's scratch copy
 * (which must write exactly what the live step wrote).
 */
int incidents_write_changes(struct incidents_store *s,
                            struct incident_engine *e,
                            struct problem_engine *pe);

/* Version 7 of the schema: the problem tables (problems_store.c). */
extern const char problems_schema_v7[];
extern const char problems_schema_v8[];

/* The problem engine's state, loaded inside the caller's read
 * transaction after the incidents (problems.md, "Load"). */
int problems_load(struct incidents_store *s, struct problem_engine *pe);

/*
 * The problem half of a step, after the incident changes were written
 * to w (and fed to pe): the problem actions feed read (their results
 * into feed's results), a tick at now when tick, then pe's changes and
 * feed's batch hosts into w, inside the caller's write transaction.
 * w is the live store or replay's scratch copy.
 */
int problems_step_changes(struct incidents_store *w,
                          struct incidents_store *feed,
                          struct problem_engine *pe, int64_t now, int tick);

/* Forget the problem actions and hosts of the last feed. */
void problems_feed_reset(struct incidents_store *s);
/* Forget the agent names a load fed. */
void problems_agent_hosts_reset(struct incidents_store *s);

/*
 * Feed batches (through the event log's cursor) and actions after wm,
 * up to the marks in upto, at most max_batches batches; the new marks
 * in *to, *more when batches remain. The actions' results are kept in
 * s->results / s->result_ids; problem actions wait in s->pacts (their
 * result slots filled by problems_step_changes), the batches' hosts in
 * s->hosts. Every event goes to pe as evidence after ie took it.
 */
int incidents_feed(struct incidents_store *s, struct incident_engine *e,
                   struct problem_engine *pe,
                   const struct incidents_watermark *wm,
                   const struct incidents_watermark *upto, uint32_t max_batches,
                   struct incidents_watermark *to, int *more);

/* ---- hints_store.c ---- */

/* Version 9 of the schema: runbook_sets, hints, hint_delivery. */
extern const char hints_schema_v9[];
extern const char hints_schema_v10[];
/* The feed: forget captured events; keep ev if it opened e's last
 * incident. */
void hints_feed_reset(struct incidents_store *s);
void hints_feed_event(struct incidents_store *s,
                      const struct incident_engine *e,
                      const struct tc_event *ev);
/* The drains (writer side): an incident opened; a link or known error
 * (incident 0); forget them. */
void hints_note_opened(struct incidents_store *s, int64_t incident);
void hints_note_link(struct incidents_store *s, int64_t incident,
                     int64_t problem);
void hints_drain_reset(struct incidents_store *s);
/* A "runbooks" action: the recorded set id into s->runbooks. */
int hints_runbooks_apply(struct incidents_store *s, int64_t id);
/* Load: the set in force after action_to. */
int hints_runbooks_restore(struct incidents_store *s, int64_t action_to);
/* After both drains, in the step's transaction: decide (feed's set and
 * captured events, w's triggers) and write the hints into w. */
int hints_step(struct incidents_store *w, struct incidents_store *feed,
               int64_t now);
/* Close: what the above hold. */
void hints_store_free(struct incidents_store *s);

/* ---- tokens_store.c ---- */

/* Version 10 of the schema: api_tokens. */
extern const char tokens_schema_v11[];

#endif
