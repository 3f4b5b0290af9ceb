/*
 * incidents_store: the engine state, the store's second interface
 * (docs/internals/store.md, docs/internals/incidents.md): load the
 * incident engine, apply one engine step atomically with its
 * watermark, and the queries tocsinctl and the API need (list,
 * timeline, actions, silences, stats, replay). The engine's input
 * batches come from the event log (store.h) by cursor; the watermark
 * is a log position.
 *
 * A struct incidents_store has its own connections, apart from the
 * ingest pipeline's, so that the engine can run on a threadpool worker
 * while a group commit runs on another. Like struct store, one thread
 * at a time.
 *
 * Errors are negative errno values; incidents_store_errmsg says why.
 */
#ifndef COLLECTOR_INCIDENTS_STORE_H
#define COLLECTOR_INCIDENTS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/incident.h"
#include "engine/problem.h"

struct incidents_store;
struct store;

/*
 * Open the store at path, which must exist with the current schema
 * (the collector's store_open creates and migrates it). rdonly: for
 * listing; otherwise actions can be added, and the engine steps run.
 * Logs why it fails.
 */
int incidents_store_open(const char *path, int rdonly,
                         struct incidents_store **out);

/*
 * The collector's engine connection, opened from its event log store
 * (which must outlive it): its write transactions take the log's writer
 * lock, so the step and the ingest commit hand the file over at once
 * instead of sleeping in SQLite's busy handler. Its commits never run a
 * WAL checkpoint (the log's maintenance runs them beside the commits,
 * store.h), and they are not fsynced (synchronous=NORMAL; WAL). Safe
 * because everything a step writes is derived: if power loss takes the
 * last steps back, their watermark goes back with them (same WAL
 * prefix) and the next step recomputes them from the batches and
 * actions, which are written with FULL sync by their own connections;
 * the next pipeline commit's fsync covers the step's frames anyway. It
 * takes one fsync off the path from a stored event to a visible
 * incident. Logs why it fails.
 */
int incidents_store_open_engine(struct store *log,
                                struct incidents_store **out);

void incidents_store_close(struct incidents_store *s);
const char *incidents_store_errmsg(const struct incidents_store *s);
/*
 * Action results that named another host's incident since s was
 * opened (incident.h, INCIDENT_RESULT_FOREIGN): each is refused by the
 * engine, kept as an event only, counted here and logged (the first
 * 10, then every 1000th, so that a hostile agent cannot flood the log).
 */
uint64_t incidents_store_foreign_results(const struct incidents_store *s);

/* What the incident tables reflect: the last engine step. */
struct incidents_watermark {
    int64_t step;      /* engine_steps row; 0 = none yet */
    int64_t batch_to;  /* event log position (store.h): every batch at
                          or before it was fed, none after it */
    int64_t action_to; /* every action with id <= this was applied */
};

/*
 * Collector start-up (and recovery after a failed step): new engines
 * in e (incidents) and pe (problems, problems.md "Load"), loaded from
 * the engine state's tables, and the watermark, all of one snapshot.
 */
int incidents_store_load(struct incidents_store *s,
                         const struct incident_config *cfg,
                         const struct problem_config *pcfg,
                         struct incident_engine **e, struct problem_engine **pe,
                         struct incidents_watermark *wm);

/*
 * One engine step (problems.md, "One step"): feed the batches after wm
 * (at most max_batches, read from the event log's cursor in commit
 * order; each event to e, then to pe as evidence), then the incident
 * actions after wm (in id order), then a tick at now; the incident
 * changes (each also to pe), the problem actions, a problem tick; write
 * every resulting change of both engines and the new watermark in one
 * transaction: on any error nothing is written. *more is set when
 * batches remain. On error the engines are ahead of the tables: the
 * caller must throw both away and load again. Nothing is written when
 * the step changed nothing.
 */
int incidents_store_step(struct incidents_store *s, struct incident_engine *e,
                         struct problem_engine *pe,
                         struct incidents_watermark *wm, int64_t now,
                         uint32_t max_batches, int *more);

/*
 * The runbook set from now on is set (docs/runbooks.md, "Dispatch"):
 * unless it is the one recorded last (by hash), record its files and an
 * action "runbooks" in one transaction, so that the next step applies
 * it in action order and replay applies it at the same point. The
 * empty set needs no record until another was recorded. *recorded: 1
 * when it wrote.
 */
struct runbook_set;
int incidents_store_runbooks_record(struct incidents_store *s,
                                    const struct runbook_set *set, int64_t now,
                                    int *recorded);

/*
 * Hints (docs/internals/hints.md, "Collector side"). A row of hints
 * with its delivery (hint_delivery: written by the network side, not
 * engine state). Strings valid during the callback.
 */
struct hint_row {
    int64_t id;
    const char *agent;
    int64_t incident_id; /* 0 = none */
    int64_t problem_id;  /* 0 = none */
    const char *source;  /* "runbook:<id>" or "known-error:<problem>" */
    const char *title, *text;
    const char *action; /* NULL = none */
    const char *params; /* JSON object of strings */
    const char *note;   /* what dispatch left out ("" = nothing) */
    int64_t issued;     /* ns, the step's engine time */
    int64_t sent_at;    /* ns, last send; 0 = never */
    int64_t acked_at;   /* ns; 0 = not acked */
    int64_t attempts;   /* sends */
    const char *error;  /* the last send's failure or the agent's refusal
                           (HINT_REFUSED_PREFIX), "" = none */
};

/* hint_delivery.last_error of a hint the agent refused: the prefix,
 * then the agent's reason. Such a hint is in state "refused". */
#define HINT_REFUSED_PREFIX "refused by the agent: "

/* Hints the last step wrote (the runner tells the sender). */
size_t incidents_store_step_hints(const struct incidents_store *s);
/* The highest hint id (0: none). */
int incidents_store_hints_max(struct incidents_store *s, int64_t *id);
/* How many hints are not acked (the metrics' hints_pending; one scan
 * of the hints table, run off the loop about once a second). */
int incidents_store_hints_unacked(struct incidents_store *s, uint64_t *n);
/* Hints not acked, for agent (NULL: any), with id > after, in id
 * order, at most max. A non-zero cb return stops and is returned. */
int incidents_store_hints_pending(
    struct incidents_store *s, const char *agent, int64_t after, size_t max,
    int (*cb)(const struct hint_row *r, void *arg), void *arg);
/* Delivery marks, written in one transaction: a send (sent_at = ts,
 * attempts + 1, error: why it failed or NULL), an ack (acked_at), or
 * the agent's refusal (refused: error, HINT_REFUSED_PREFIX and the
 * reason, in last_error; sent_at and attempts stay). */
struct hint_mark {
    int64_t hint_id;
    const char *agent;
    int64_t ts; /* ns */
    int acked;
    int refused;
    const char *error;
};
int incidents_store_hints_mark(struct incidents_store *s,
                               const struct hint_mark *m, size_t n);
/* tocsinctl hints list: NULL = any; state "pending", "sent", "acked",
 * "refused". */
struct hints_filter {
    const char *agent;
    const char *state;
    int64_t after; /* only ids above this (the API's pages); 0 = any */
    /* 1: newest first, and after is then the id to list below (0 =
     * from the newest): the dashboard's page of the latest hints. */
    int newest;
};
int incidents_store_hints(struct incidents_store *s,
                          const struct hints_filter *f,
                          int (*cb)(const struct hint_row *r, void *arg),
                          void *arg);

/* tocsinctl: filters for incidents_store_list; NULL / 0 = any. */
struct incidents_filter {
    const char *state; /* "open", "acknowledged", ... */
    int priority;      /* 1..5 */
    const char *host;
    int64_t id;     /* one incident */
    int silenced;   /* 1: only incidents marked silenced */
    int64_t before; /* only ids below this (the API's pages); 0 = any */
    /*
     * 1: by priority (P1 first), then newest first, on the index
     * incidents_state_prio: only with a state. A page after the first
     * starts after (from_priority, before): the same priority below
     * that id, then the next priorities.
     */
    int by_priority;
    int from_priority; /* 1..5 with before; 0 = from the start */
};

/* Incidents matching f, newest first (or by_priority), each with its problem
 * mark (read in the same row). Strings valid during cb. A non-zero cb return
 * stops the listing and is returned (a page that is full). */
int incidents_store_list(struct incidents_store *s,
                         const struct incidents_filter *f,
                         int (*cb)(const struct incident *in,
                                   const struct problem_mark *m, void *arg),
                         void *arg);
/*
 * The dashboard's header (GET /api/v1/summary): the incidents open and
 * acknowledged per priority and the problems not yet resolved per
 * state, each a COUNT on an index range (incidents_state_prio,
 * problems_state) read in one snapshot: the cost is that of the index
 * entries counted, never of the rows. Resolved and closed ones are not
 * counted: they only grow (tocsinctl stats has the history).
 */
struct incidents_summary {
    uint64_t open[6];     /* open incidents, [1]..[5] = P1..P5 */
    uint64_t acked[6];    /* acknowledged incidents, same */
    uint64_t problems[3]; /* open, investigating, known_error */
};

int incidents_store_summary(struct incidents_store *s,
                            struct incidents_summary *out);

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

/*
 * Silences (tocsinctl silences). Adding one writes the silences row and
 * a "silence" action in one transaction; expiring one writes an
 * "expire" action (the engine applies both in action order) and marks
 * the row. *action_id: the action to wait for with
 * incidents_store_action_result.
 */
struct incidents_silence_row {
    int64_t id;
    int64_t created;    /* ns */
    int64_t starts_at;  /* ns */
    int64_t ends_at;    /* ns, as added */
    int64_t expired_at; /* ns; 0 = not expired by hand */
    const char *user;
    const char *comment;
    const char *matchers; /* space-separated, see incident_silence */
};

/* sil->id is ignored; the new id in *id. */
int incidents_store_silence_add(struct incidents_store *s,
                                const struct incident_silence *sil, int64_t now,
                                const char *user, const char *comment,
                                int64_t *id, int64_t *action_id);
/* -ENOENT: no such silence; -EALREADY: already expired or ended. */
int incidents_store_silence_expire(struct incidents_store *s, int64_t id,
                                   int64_t now, const char *user,
                                   int64_t *action_id);
/* Silences newest first; all = 0: only those not ended at now. */
int incidents_store_silences(struct incidents_store *s, int all, int64_t now,
                             int (*cb)(const struct incidents_silence_row *r,
                                       void *arg),
                             void *arg);

/*
 * tocsinctl stats: response metrics of the incidents (re)opened since a
 * time, per group, all from the timeline. Means are in ns, < 0 when
 * there is nothing to average. Each opening ("opened" or "reopened")
 * since then is an episode, until the incident's next opening
 * (struct incident_metrics): MTTA is the mean from an opening to the
 * episode's first acknowledgement, MTTR to its first resolve (else its
 * close). MTBF: the mean gap between consecutive openings of the same
 * fingerprint.
 */
struct incidents_stats_row {
    const char *key;   /* "all", "P1".."P5", a host or a rule */
    uint64_t n;        /* incidents (re)opened since */
    uint64_t openings; /* their openings since (opened or reopened) */
    uint64_t acked;    /* of those openings, acknowledged */
    int64_t mtta_ns;   /* mean time to acknowledge */
    uint64_t restored; /* of those openings, resolved or closed */
    int64_t mttr_ns;   /* mean time to resolve */
    uint64_t gaps;     /* gaps between openings of one fingerprint */
    int64_t mtbf_ns;   /* mean gap */
};

/* by: NULL (one group "all"), "priority", "host" or "rule". */
int
incidents_store_stats(struct incidents_store *s, int64_t since, const char *by,
                      int (*cb)(const struct incidents_stats_row *r, void *arg),
                      void *arg);

/*
 * Problems (tocsinctl problems, docs/internals/problems.md). Callbacks
 * run while the query's statement is open (a read transaction): they
 * must not block (tocsinctl buffers its output, then prints).
 */
struct problems_filter {
    const char *state; /* "open", ..., NULL = any */
    int64_t id;        /* one problem; 0 = any */
    int64_t before;    /* only ids below this (the API's pages); 0 = any */
};

/* One problem with its incidents (the incidents marked with it, id
 * order) and their distinct hosts (sorted). Valid during the callback. */
struct problems_row {
    const struct problem *p; /* factors included */
    const int64_t *incidents;
    size_t nincidents;
    const char *const *hosts;
    size_t nhosts;
};

/* Problems matching f, newest first. */
int incidents_store_problems(struct incidents_store *s,
                             const struct problems_filter *f,
                             int (*cb)(const struct problems_row *r, void *arg),
                             void *arg);
/* The ranked candidates of a problem, best first. */
int incidents_store_problem_candidates(
    struct incidents_store *s, int64_t id,
    int (*cb)(const struct problem_candidate *c, void *arg), void *arg);
/* Every link made or undone to a problem, oldest first. */
int incidents_store_problem_links(struct incidents_store *s, int64_t id,
                                  int (*cb)(const struct problem_link *l,
                                            void *arg),
                                  void *arg);
/* The timeline of a problem, oldest first. */
int incidents_store_problem_timeline(struct incidents_store *s, int64_t id,
                                     int (*cb)(const struct problem_note *n,
                                               void *arg),
                                     void *arg);
/* Record a problem action (tocsinctl problems VERB); its id in *id, its
 * result through incidents_store_action_result. */
int incidents_store_problem_action_add(struct incidents_store *s,
                                       const struct problem_action *a,
                                       int64_t *id);

/*
 * tocsinctl replay: one difference between the live incident tables
 * and those rebuilt from the stored inputs. Strings valid during the
 * callback.
 */
struct incidents_diff {
    const char *table;   /* "incidents", "timeline", "incident_fps",
                            "actions" (an action's result), "problems",
                            "problem_factors", "problem_links",
                            "problem_candidates", "problem_timeline",
                            "incident_marks" (problem, inhibited) or
                            "hints" */
    int64_t incident_id; /* the incident the row is about; 0 = none */
    const char *key;     /* the row: "ID", "ID N" (Nth timeline entry),
                            the fingerprint, or the action id */
    const char *column;  /* the column that differs; NULL when only one
                            side has the row */
    const char *live;    /* the live value, or the whole row when column
                            is NULL; NULL = no such live row */
    const char *replay;  /* the same from the replay */
};

struct incidents_replay_stats {
    uint64_t steps;     /* engine_steps replayed */
    uint64_t batches;   /* batches they covered */
    uint64_t actions;   /* actions re-applied (results compared) */
    uint64_t incidents; /* incident rows compared (either side) */
    uint64_t notes;     /* timeline entries compared */
    uint64_t fps;       /* soft-state rows compared */
    uint64_t problems;  /* problem rows compared (either side) */
    uint64_t prows;     /* other problem rows compared: factors, links,
                           candidates, timeline, marks */
    uint64_t hints;     /* hint rows compared (either side) */
    uint64_t diffs;     /* differences reported */
    int64_t last_tick;  /* ns: the last step's tick (0: no step) */
};

/*
 * Rebuild the incident tables in a scratch in-memory store by running
 * fresh engines with cfg and pcfg over the recorded steps (for each
 * engine_steps row: its batches, its actions, its tick, in that order,
 * as incidents_store_step fed them), then compare every incident,
 * timeline entry, soft-state row, action result, problem, problem
 * link, candidate, timeline entry and mark with the live ones,
 * all read in one snapshot. cb is called for each difference; a
 * non-zero return stops and is returned. s may be read-only.
 */
int incidents_store_replay(struct incidents_store *s,
                           const struct incident_config *cfg,
                           const struct problem_config *pcfg,
                           int (*cb)(const struct incidents_diff *d, void *arg),
                           void *arg, struct incidents_replay_stats *stats);

/*
 * tocsinctl replay --config: one incident or problem of the live store
 * (candidate 0) or of the replay with a candidate configuration
 * (candidate 1). Strings valid during the callback.
 */
struct replay_incident {
    int64_t id;
    const char *fingerprint;
    int64_t opened_at; /* ns */
    int64_t problem;   /* 0: none */
    int inhibited;
};

struct replay_problem {
    int64_t id;
    int64_t opened_at;     /* ns */
    int64_t root_incident; /* 0: none */
    const char *root_host; /* "": none */
    const char *state, *rule, *title;
};

struct replay_sink {
    int (*incident)(int candidate, const struct replay_incident *in, void *arg);
    int (*problem)(int candidate, const struct replay_problem *p, void *arg);
    void *arg;
};

/*
 * Run fresh engines with cfg and pcfg over the recorded steps into a
 * scratch in-memory store (as incidents_store_replay), then hand the
 * sink every incident and problem of the live store and of the
 * scratch one, all read in one snapshot; action results are not
 * compared (a candidate may well refuse what the live engine took).
 * Nothing is written to s, which may be read-only; the scratch store
 * is gone when it returns. A non-zero sink return stops (-EIO).
 */
int incidents_store_replay_states(struct incidents_store *s,
                                  const struct incident_config *cfg,
                                  const struct problem_config *pcfg,
                                  const struct replay_sink *sink,
                                  struct incidents_replay_stats *stats);

#endif
