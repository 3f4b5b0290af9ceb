/*
 * incident: the incident engine (docs/internals/incidents.md).
 *
 * A pure, deterministic state machine: it turns stored events, human
 * actions and clock ticks, fed in one total order, into incidents and
 * timeline entries. It does no I/O, reads no clock and uses no libuv;
 * every time it knows comes from its inputs (an event's event_ts, else
 * its ts; an action's recorded time; a tick's recorded time). Feeding
 * the same inputs to a fresh engine (or to one loaded from the rows an
 * earlier run persisted at the same point) gives the same output.
 *
 * Output is pulled: after feeding inputs, incident_engine_drain hands
 * over every incident that changed, every fingerprint whose soft state
 * changed and every new timeline entry, in the order they happened.
 *
 * Threading: an engine is used by one thread at a time.
 */
#ifndef COLLECTOR_INCIDENT_H
#define COLLECTOR_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct incident_engine;

struct incident_config {
    int64_t reopen_window_ns; /* recurrence after resolve reopens within
                                 this; later it opens a new incident */
    int64_t resolve_after_ns; /* a log incident quiet this long resolves */
    uint32_t max_attempts;    /* consecutive non-OK check results before
                                 a check incident opens (>= 1) */
    uint32_t flap_high;       /* percent state change over the last
                                 INCIDENT_FLAP_RESULTS check results above
                                 which a check flaps; 0 = no detection */
    uint32_t flap_low;        /* percent below which it stops flapping */
};

/* Check results (states) a fingerprint remembers for flap detection:
 * 21, so 20 state changes, as Nagios does. */
#define INCIDENT_FLAP_RESULTS 21

enum incident_state {
    INCIDENT_OPEN = 0,
    INCIDENT_ACKED = 1,
    INCIDENT_RESOLVED = 2,
    INCIDENT_CLOSED = 3,
};

/* "open", "acknowledged", "resolved", "closed"; NULL if out of range. */
const char *incident_state_name(enum incident_state s);
/* The inverse (also accepts "acked"); 0 or -EINVAL. */
int incident_state_parse(const char *s, enum incident_state *out);

/*
 * One incident. Times are engine time, ns since the Unix epoch; 0 means
 * "not yet". Strings are owned by the engine (or, for rows handed to
 * incident_engine_load, by the caller, which keeps them for the call).
 */
struct incident {
    int64_t id;        /* 1, 2, ... in opening order */
    char *fingerprint; /* key: host "\x1f" (fingerprint or rule) */
    char *host;        /* agent name */
    char *rule;        /* rule or check name ("agent-silent") */
    char *kind;        /* "log", "check" or "agent" */
    char *service;     /* label service= of its events ("" = none):
                          the first one seen wins */
    enum incident_state state;
    enum tc_severity severity; /* peak severity while it was active */
    int priority;              /* 1 (highest) .. 5 */
    uint64_t count;            /* events folded in (event counts summed) */
    int64_t first_seen;        /* earliest event time folded in */
    int64_t last_seen;         /* latest event time folded in */
    int64_t opened_at;         /* last (re)open */
    int64_t acked_at;          /* 0 unless acknowledged since (re)open */
    int64_t resolved_at;       /* 0 unless resolved */
    int64_t closed_at;         /* 0 unless closed */
    uint32_t reopened;         /* times it was reopened */
    int tier1;                 /* an event carried label tier=1 */
    int64_t silenced;          /* id of the silence that matched when it
                                  (re)opened; 0 = none */
    int flapping;              /* its check is flapping: results fold in,
                                  state changes do not resolve or reopen */
};

/*
 * Soft state of a fingerprint: consecutive non-OK check results not
 * (yet) followed by an OK, and the recent check results for flap
 * detection. Persisted so that a restart keeps counting. A row with
 * every field 0 holds nothing (the engine forgets it).
 */
struct incident_fp {
    const char *fingerprint; /* borrowed */
    uint32_t attempts;       /* consecutive non-OK results */
    int64_t since;           /* event time of the first of them, ns */
    int64_t history;         /* the last INCIDENT_FLAP_RESULTS check
                                states, 2 bits each (0 OK .. 3 UNKNOWN),
                                newest in bits 0-1; results before the
                                first count as OK */
    int flapping;            /* the check is flapping */
};

/* One timeline entry. Strings borrowed (valid during the drain). */
struct incident_note {
    int64_t incident_id;
    int64_t ts;         /* engine time */
    const char *what;   /* "opened", "reopened", "acknowledged", ... */
    const char *who;    /* "rule:<name>" or "user:<name>" */
    const char *detail; /* free text, may be "" */
};

enum incident_verb {
    INCIDENT_ACK = 0,
    INCIDENT_RESOLVE = 1,
    INCIDENT_CLOSE = 2,
    INCIDENT_NOTE = 3,
};
/* "ack", "resolve", "close", "note"; and the inverse (0 or -EINVAL). */
const char *incident_verb_name(enum incident_verb v);
int incident_verb_parse(const char *s, enum incident_verb *out);

/* A recorded human action (a row of the actions table). */
struct incident_action {
    int64_t ts;       /* when it was recorded, ns */
    const char *user; /* who; borrowed */
    enum incident_verb verb;
    int64_t incident_id;
    const char *text; /* note text or comment; may be NULL */
};

/*
 * A silence (maintenance window): an incident that opens or reopens
 * while it is active, from an event whose host, rule and labels match
 * every matcher, is recorded as usual and marked silenced (never
 * dropped). Silences are engine inputs like actions: added and expired
 * by recorded actions, so replay gives the same marks.
 */
struct incident_silence {
    int64_t id;
    int64_t start;        /* ns, engine time: active for start <= t < end */
    int64_t end;          /* ns */
    const char *matchers; /* borrowed: space-separated "host=H",
                             "rule=R", "label:K=V" (at least one) */
};

/* Check one matcher ("host=web-01", "rule=disk", "label:env=prod"):
 * 0 or -EINVAL. */
int incident_silence_matcher_check(const char *m);

/*
 * Add a silence (or replace the one with the same id: start-up load).
 * Returns 0, or -EINVAL if a matcher is malformed or there is none.
 */
int incident_engine_silence(struct incident_engine *e,
                            const struct incident_silence *s);
/*
 * End silence id at engine time ts (its end moves to ts if later):
 * 0, -ENOENT (unknown) or -EALREADY (already ended by ts).
 */
int incident_engine_silence_expire(struct incident_engine *e, int64_t id,
                                   int64_t ts);

/*
 * The incident fingerprint of an event from host, NUL-terminated in buf
 * (cut to len - 1): its length, or 0 when the event makes no incident.
 */
size_t incident_fingerprint(const char *host, const struct tc_event *ev,
                            char *buf, size_t len);

/* A new engine with no incidents; next id is 1. */
struct incident_engine *incident_engine_new(const struct incident_config *c);
/*
 * New thresholds (collector reload) for the inputs that follow. Replay
 * uses the configuration of the day it runs, so after a change it
 * reports where the new thresholds would have decided otherwise.
 */
void incident_engine_set_config(struct incident_engine *e,
                                const struct incident_config *c);
/* incident_engine_free(NULL) is a no-op. */
void incident_engine_free(struct incident_engine *e);

/*
 * Restore persisted state (start-up): every incident not closed, the
 * soft state rows, and the highest id ever given (closed ones
 * included). Loading produces no output.
 */
void incident_engine_load(struct incident_engine *e, const struct incident *in);
void incident_engine_load_fp(struct incident_engine *e,
                             const struct incident_fp *fp);
void incident_engine_set_last_id(struct incident_engine *e, int64_t last_id);

/*
 * Feed one stored event. host is the batch's (authenticated) host.
 * An action_result may add a timeline entry (incident_engine_last_result,
 * below); other kinds than log, check and agent/agent-silent are ignored.
 */
void incident_engine_event(struct incident_engine *e, const char *host,
                           const struct tc_event *ev);
/*
 * Apply a human action. Returns 0, or -ENOENT (no such incident, or it
 * is closed) or -EALREADY (the transition does not apply); a refused
 * action changes nothing and is not on any timeline.
 */
int incident_engine_action(struct incident_engine *e,
                           const struct incident_action *a);
/* A clock tick at engine time now: quiet log incidents resolve, resolved
 * incidents past reopen_window close. */
void incident_engine_tick(struct incident_engine *e, int64_t now);

struct incident_sink {
    /* Every changed incident (latest state), in id order. */
    int (*incident)(void *arg, const struct incident *in);
    /* Every changed soft state, in key order. */
    int (*fp)(void *arg, const struct incident_fp *fp);
    /* Every new timeline entry, in the order they happened. */
    int (*note)(void *arg, const struct incident_note *n);
};

/*
 * Hand over the changes since the last drain, then forget them (closed
 * incidents leave memory too). A non-zero return from a callback stops
 * the drain and is returned; the changes are then lost to this engine,
 * whose owner must rebuild it from the store.
 */
int incident_engine_drain(struct incident_engine *e,
                          const struct incident_sink *sink, void *arg);

/* 1 if a drain would hand over anything. */
int incident_engine_pending(const struct incident_engine *e);
/*
 * The incident the last incident_engine_event folded its event into
 * (opened, reopened, counted, resolved), or 0 when it touched none (an
 * ignored kind, a soft check attempt, an OK with nothing to resolve).
 * The step hands it to problem_engine_evidence with the same event.
 */
int64_t incident_engine_last(const struct incident_engine *e);

/*
 * An agent's action result (kind and rule "action_result", issue 12
 * item 4) whose field "incident" names, in decimal, an incident in
 * memory (not closed) of the event's own host becomes one timeline
 * entry of that incident: what "action", who "agent:<host>", detail
 * "NAME exit 0 in 1.2s (hint 12): first output line" (escaped here:
 * it comes from a host). Nothing else changes: the incident is not
 * opened, reopened, counted or marked changed, and incident_engine_last
 * stays 0 (not evidence for a problem). Any other action result is
 * stored as an event only. The engine decides; the store logs and
 * counts a refusal (it may log, the engine may not).
 */
enum incident_result {
    INCIDENT_RESULT_NONE = 0,    /* the event is not an action result */
    INCIDENT_RESULT_NOTED = 1,   /* on its incident's timeline */
    INCIDENT_RESULT_UNKNOWN = 2, /* no incident field, not an id, or no
                                    such incident (never, or closed) */
    INCIDENT_RESULT_FOREIGN = 3, /* names another host's incident:
                                    refused, on no timeline */
};
/* What the last incident_engine_event did with an action result; the
 * incident it named (0 if none or not an id) in *incident_id if not
 * NULL. */
enum incident_result
incident_engine_last_result(const struct incident_engine *e,
                            int64_t *incident_id);
/*
 * Pure helpers for action_result events, shared with the problem
 * engine (whose timeline takes the result of a hint naming only a
 * problem). incident_result_detail: the timeline detail, "NAME exit 0
 * in 1.2s (hint 12): first line", every part from the host escaped.
 * incident_result_id: the event's field key ("incident", "problem") as
 * an id > 0: 0 and *id, or -EINVAL (absent, empty, not a number).
 */
void incident_result_detail(const struct tc_event *ev, char *d, size_t len);
int incident_result_id(const struct tc_event *ev, const char *key, int64_t *id);
/* Number of incidents in memory (not closed). */
size_t incident_engine_size(const struct incident_engine *e);
/*
 * The incidents in memory counted by state and priority (the metrics'
 * gauge, refreshed about once a second off the loop): out[state][p - 1]
 * for open, acknowledged and resolved; closed ones are not held. O(n).
 */
#define INCIDENT_CENSUS_STATES 3
#define INCIDENT_CENSUS_PRIOS 5
void incident_engine_census(
    const struct incident_engine *e,
    uint64_t out[INCIDENT_CENSUS_STATES][INCIDENT_CENSUS_PRIOS]);
/* The in-memory incident with this id, or NULL (closed or unknown). */
const struct incident *incident_engine_get(const struct incident_engine *e,
                                           int64_t id);

/*
 * Response metrics from the timeline (docs/internals/incidents.md,
 * "Metrics"), so that a reopen, which clears acked_at and resolved_at,
 * loses nothing. Every opening of an incident (timeline entry "opened"
 * or "reopened") at or after since starts an episode that lasts until
 * the incident's next opening. The episode's first "acknowledged" entry
 * gives one time to acknowledge; its first "resolved", or else its
 * first "closed", one time to resolve. Both run from the opening.
 *
 * Embedded: incident_metrics_init, then incident_metrics_add for the
 * timeline entries of the incidents to count, incident after incident,
 * each incident's entries in timeline order; other entries are ignored.
 */
struct incident_metrics {
    int64_t since;      /* ns: openings before it are not counted */
    uint64_t incidents; /* incidents with an opening counted */
    uint64_t openings;  /* openings counted (episodes) */
    uint64_t acked;     /* of those, acknowledged before the next one */
    uint64_t restored;  /* of those, resolved or closed before it */
    double tta_ns;      /* sum of opening -> acknowledgement, ns */
    double ttr_ns;      /* sum of opening -> resolve or close, ns */
    /* The episode being followed (private): */
    int64_t ep_incident; /* its incident id; 0 = none */
    int64_t ep_opened;   /* its opening, ns */
    int ep_counted;      /* opened at or after since */
    int ep_acked;        /* its acknowledgement was counted */
    int ep_restored;     /* its resolve or close was counted */
    int inc_counted;     /* ep_incident is in incidents */
};

void incident_metrics_init(struct incident_metrics *m, int64_t since);
void incident_metrics_add(struct incident_metrics *m,
                          const struct incident_note *n);
/* Mean time to acknowledge, and to resolve, in ns; -1 when nothing was
 * acknowledged (resolved). */
int64_t incident_metrics_mtta(const struct incident_metrics *m);
int64_t incident_metrics_mttr(const struct incident_metrics *m);

#endif
