/*
 * problem: the problem engine (docs/internals/problems.md,
 * docs/correlation.md).
 *
 * A second pure, deterministic state machine beside the incident
 * engine: it correlates incidents from many hosts into problems (the
 * underlying cause of one or more incidents), ranks root-cause
 * candidates with their evidence, runs the problem lifecycle and marks
 * symptom incidents inhibited. Like the incident engine it does no I/O,
 * reads no clock and uses no libuv; every time it knows comes from its
 * inputs, and feeding the same inputs to a fresh engine (or to one
 * loaded from the rows an earlier run persisted at the same point)
 * gives the same output.
 *
 * Inputs, in the step's total order (problems.md, "One step"):
 *   - evidence: every stored event, after the incident engine took it,
 *     with the incident it folded into (incident_engine_last);
 *   - incident changes: each changed incident as incident_engine_drain
 *     hands it over;
 *   - problem actions (tocsinctl problems ...), in action order;
 *   - one tick;
 *   - known hosts (agent names), whenever one becomes known.
 * Output is pulled with problem_engine_drain.
 *
 * Relations, never time alone, link incidents: the same fingerprint
 * class across hosts (spread), a captured field naming another known
 * host (reference), a configured dependency (topology), recurrence
 * (trend), a major incident resolving without a problem (major).
 *
 * Threading: an engine is used by one thread at a time.
 */
#ifndef COLLECTOR_PROBLEM_H
#define COLLECTOR_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#include "engine/incident.h"
#include "wire.h"

struct problem_engine;

/* Limits: the engine refuses (config) or caps (evidence) beyond them. */
#define PROBLEM_MAX_DEPS 256      /* topology depends_on entries */
#define PROBLEM_MAX_FIELDS 64     /* reference.fields entries */
#define PROBLEM_MAX_NAME 255      /* bytes of a host, glob, field name */
#define PROBLEM_MAX_REFS 16       /* references kept per incident */
#define PROBLEM_MAX_CANDIDATES 10 /* ranked candidates kept per problem */
#define PROBLEM_MAX_TEXT 4096     /* bytes of an action's text */
#define PROBLEM_MAX_FACTORS 32    /* contributing factors per problem */
#define PROBLEM_MAX_REVIEW 64     /* review entries per problem */
#define PROBLEM_MAX_TREND 1000    /* trend.count upper bound */
#define PROBLEM_WHYS 5            /* the 5 Whys chain */

/*
 * One topology dependency: incidents on what `from` names depend on
 * incidents on what `to` names. Each side is a host glob (fnmatch,
 * "web-*") or "service:NAME" (the incident's service label). Strings
 * owned by whoever fills the config; the engine keeps copies.
 */
struct problem_dep {
    char *from;
    char *to;
    int line; /* config line, for messages; the engine ignores it */
};

struct problem_config {
    int64_t resolve_after_ns;  /* all incidents resolved this long: the
                                  problem resolves */
    int spread;                /* rule on */
    uint32_t spread_min_hosts; /* distinct hosts (>= 2) */
    int64_t spread_window_ns;  /* openings within this of one another */
    int reference;             /* rule on */
    int64_t reference_window_ns;
    char *const *reference_fields; /* captured field names to look at;
                                      nreference_fields == 0: all */
    size_t nreference_fields;
    const struct problem_dep *deps; /* topology; ndeps == 0: none */
    size_t ndeps;
    int64_t topology_window_ns;
    int trend;               /* rule on */
    uint32_t trend_count;    /* openings of one class ... */
    int64_t trend_period_ns; /* ... within this */
    int major;               /* rule on */
    int major_priority;      /* P1..major_priority count as major */
};

/* The defaults of docs/correlation.md (no correlation: section). */
void problem_config_default(struct problem_config *c);

enum problem_state {
    PROBLEM_OPEN = 0,
    PROBLEM_INVESTIGATING = 1,
    PROBLEM_KNOWN_ERROR = 2,
    PROBLEM_RESOLVED = 3,
    PROBLEM_CLOSED = 4,
};
/* "open", "investigating", "known_error", "resolved", "closed"; NULL if
 * out of range; and the inverse (0 or -EINVAL). */
const char *problem_state_name(enum problem_state s);
int problem_state_parse(const char *s, enum problem_state *out);

/* Contributing factor categories of an RCA. */
enum problem_factor_cat {
    PROBLEM_F_PEOPLE = 0,
    PROBLEM_F_PROCESS = 1,
    PROBLEM_F_TECHNOLOGY = 2,
    PROBLEM_F_ENVIRONMENT = 3,
    PROBLEM_F_SUPPLIER = 4,
};
const char *problem_factor_name(enum problem_factor_cat c);
int problem_factor_parse(const char *s, enum problem_factor_cat *out);

struct problem_factor {
    enum problem_factor_cat category;
    char *text; /* owned by whoever holds the problem */
};

/*
 * One entry of a post-incident review: the review of a (major) incident
 * is recorded on the problem it handed over to, one field at a time.
 * "summary", "impact", "detection", "response", "recovery" and
 * "lessons" hold one text each (a new one replaces it); "action" (a
 * follow-up action item) is appended. Entries are kept in the order
 * they were first recorded.
 */
struct problem_review {
    int64_t incident_id; /* the reviewed incident, linked to the problem */
    char *field;         /* one of the names above; owned like text */
    char *text;          /* owned by whoever holds the problem */
};
/* 1 if field names a review field, 0 if not. */
int problem_review_field_ok(const char *field);

/*
 * One problem. Times are engine time, ns; 0 = not yet. Strings and
 * arrays are owned by the engine (or, for rows handed to
 * problem_engine_load, by the caller, for the call).
 */
struct problem {
    int64_t id; /* 1, 2, ... in opening order */
    enum problem_state state;
    char *rule;  /* the rule that opened it: "spread", "reference",
                    "topology", "trend", "major" */
    char *key;   /* what the rule grouped on: the class (spread, trend,
                    major), the named host (reference), the dependency
                    incident's host (topology) */
    char *title; /* one line for listings */
    int64_t opened_at;
    int64_t investigating_at;       /* 0 unless investigated */
    int64_t known_error_at;         /* 0 unless a known error */
    int64_t resolved_at;            /* 0 unless resolved */
    int64_t closed_at;              /* 0 unless closed */
    int64_t quiet_since;            /* all its incidents resolved (or closed)
                                       since; 0 while one is active */
    int64_t root_incident;          /* the top candidate's incident; 0 = none */
    char *root_host;                /* the top candidate's host; "" = none */
    char *root_cause;               /* known error: the cause ("" = none) */
    char *workaround;               /* known error: the workaround ("") */
    char *whys[PROBLEM_WHYS];       /* RCA: the 5 Whys chain ("" = unset) */
    struct problem_factor *factors; /* RCA: contributing factors */
    size_t nfactors;
    struct problem_review *reviews; /* post-incident reviews */
    size_t nreviews;
};

/*
 * Per incident: which problem it belongs to and whether its
 * notifications are inhibited. Persisted beside the incident.
 */
struct problem_mark {
    int64_t incident_id;
    int64_t problem_id; /* 0 = none */
    int inhibited;      /* a symptom of an open problem */
    int manual;         /* a user linked or unlinked it: rules leave it */
};

/* A link made or removed. Strings borrowed (valid during the drain). */
struct problem_link {
    int64_t incident_id;
    int64_t problem_id;
    int64_t ts;         /* engine time */
    int removed;        /* 0: linked; 1: unlinked */
    const char *rule;   /* "spread", ..., "user" */
    const char *fields; /* the matched fields, "k=v k=v" */
};

/* A reference: an event of incident_id named host. Borrowed strings. */
struct problem_ref {
    int64_t incident_id;
    const char *host;  /* the named host */
    const char *field; /* the captured field that named it */
    const char *value; /* its value (cut to PROBLEM_MAX_NAME) */
    int64_t ts;        /* event time */
};

/* An opening counted for the trend rule (persisted for restarts). */
struct problem_opening {
    const char *cls; /* fingerprint class; borrowed */
    int64_t incident_id;
    int64_t ts; /* opened_at of that episode */
};

/* One ranked root-cause candidate. Borrowed strings. */
struct problem_candidate {
    int64_t problem_id;
    int rank;            /* 1 = best */
    const char *host;    /* the candidate host */
    int64_t incident_id; /* its earliest incident in the problem; 0 = a
                            host named by events with no incident */
    int64_t score;
    const char *evidence; /* the score's parts in words */
};

/* One timeline entry of a problem. Borrowed strings. */
struct problem_note {
    int64_t problem_id;
    int64_t ts;
    const char *what;   /* "opened", "linked", "resolved", ... */
    const char *who;    /* "rule:<rule>" or "user:<name>" */
    const char *detail; /* may be "" */
};

enum problem_verb {
    PROBLEM_V_INVESTIGATE = 0,
    PROBLEM_V_KNOWN_ERROR = 1,
    PROBLEM_V_RESOLVE = 2,
    PROBLEM_V_CLOSE = 3,
    PROBLEM_V_LINK = 4,
    PROBLEM_V_UNLINK = 5,
    PROBLEM_V_NOTE = 6,
    PROBLEM_V_RCA = 7,
    PROBLEM_V_REVIEW = 8,
};
/* "investigate", "known-error", "resolve", "close", "link", "unlink",
 * "note", "rca", "review"; and the inverse (0 or -EINVAL). */
const char *problem_verb_name(enum problem_verb v);
int problem_verb_parse(const char *s, enum problem_verb *out);

/*
 * A recorded human action. Borrowed strings.
 *   known-error: text = root cause (required), text2 = workaround;
 *   link/unlink: incident_id;
 *   note:        text;
 *   rca:         key = "why1".."why5" (text replaces that step, "" clears
 *                it) or a factor category (text is appended);
 *   review:      incident_id (linked to this problem), key = a review
 *                field (problem_review_field_ok), text (required).
 */
struct problem_action {
    int64_t ts;
    const char *user;
    enum problem_verb verb;
    int64_t problem_id;
    int64_t incident_id;
    const char *key;
    const char *text;
    const char *text2;
};

struct problem_engine *problem_engine_new(const struct problem_config *c);
/* New rules (reload) for the inputs that follow; the engine copies c. */
void problem_engine_set_config(struct problem_engine *e,
                               const struct problem_config *c);
/* problem_engine_free(NULL) is a no-op. */
void problem_engine_free(struct problem_engine *e);

/*
 * Restore persisted state (start-up); loading produces no output.
 * Problems not closed; incidents not closed, and the closed ones of a
 * problem not closed, each with its mark; their references; trend
 * openings within the trend period; the highest problem id ever given.
 * Candidates are recomputed from these when loading ends (the first
 * input after a load, or problem_engine_pending).
 */
void problem_engine_load(struct problem_engine *e, const struct problem *p);
void problem_engine_load_incident(struct problem_engine *e,
                                  const struct incident *in,
                                  const struct problem_mark *m);
void problem_engine_load_ref(struct problem_engine *e,
                             const struct problem_ref *r);
void problem_engine_load_opening(struct problem_engine *e,
                                 const struct problem_opening *o);
void problem_engine_set_last_id(struct problem_engine *e, int64_t last_id);

/* Trend openings before this time no longer count: the tick at now
 * dropped them from memory, so the store may drop them too. */
int64_t problem_engine_trend_horizon(const struct problem_engine *e,
                                     int64_t now);

/* A known host (agent name): the reference rule only follows names of
 * known hosts. Hosts of evidence and incidents become known too. */
void problem_engine_host(struct problem_engine *e, const char *host);

/*
 * Evidence: a stored event from host (the batch's authenticated host)
 * that folded into incident incident_id (0: it made none; ignored).
 * Its captured fields are searched for names of other known hosts.
 */
void problem_engine_evidence(struct problem_engine *e, int64_t incident_id,
                             const char *host, const struct tc_event *ev);

/*
 * An action_result event from host (the batch's authenticated host).
 * One that names no incident but a problem (the result of a hint to a
 * host with no incident in that problem) is an "action" entry on that
 * problem's timeline when host is one of the problem's hosts (an
 * incident of it is on host, or host is its top candidate's); a
 * problem of other hosts refuses it. Anything else is left alone.
 * What it did is returned; the problem it named in *problem_id.
 */
enum problem_result {
    PROBLEM_RESULT_NONE = 0,    /* not an action result naming a problem
                                   (and no incident) */
    PROBLEM_RESULT_NOTED = 1,   /* on the problem's timeline */
    PROBLEM_RESULT_UNKNOWN = 2, /* no such problem (never, or closed) */
    PROBLEM_RESULT_FOREIGN = 3, /* a problem that host is not in:
                                   refused, on no timeline */
};
enum problem_result problem_engine_action_result(struct problem_engine *e,
                                                 const char *host,
                                                 const struct tc_event *ev,
                                                 int64_t *problem_id);

/* A changed incident, as incident_engine_drain hands it over. */
void problem_engine_incident(struct problem_engine *e,
                             const struct incident *in);

/*
 * Apply a human action. 0, or -ENOENT (no such problem or incident, or
 * it is closed), -EALREADY (the transition does not apply), -EBUSY
 * (close with an active incident; link of an incident that has another
 * problem), -EINVAL (bad key, missing text) or -E2BIG (text over
 * PROBLEM_MAX_TEXT, too many factors). A refused action changes nothing.
 */
int problem_engine_action(struct problem_engine *e,
                          const struct problem_action *a);

/* A clock tick: problems whose incidents stayed resolved for
 * resolve_after resolve; trend openings older than the period go. */
void problem_engine_tick(struct problem_engine *e, int64_t now);

struct problem_sink {
    /* Every changed problem (latest state), in id order. */
    int (*problem)(void *arg, const struct problem *p);
    /* Every link made or removed, in the order it happened. */
    int (*link)(void *arg, const struct problem_link *l);
    /* The full ranked list of every problem whose ranking changed
     * (replaces the previous list; n may be 0), in problem id order. */
    int (*candidates)(void *arg, int64_t problem_id,
                      const struct problem_candidate *c, size_t n);
    /* Every changed mark, in incident id order. */
    int (*mark)(void *arg, const struct problem_mark *m);
    /* Every new reference, in the order it was seen. */
    int (*ref)(void *arg, const struct problem_ref *r);
    /* Every new trend opening, in the order it was counted. */
    int (*opening)(void *arg, const struct problem_opening *o);
    /* Every new timeline entry, in the order it happened. */
    int (*note)(void *arg, const struct problem_note *n);
};

/*
 * Hand over the changes since the last drain, then forget them (closed
 * problems and what only they held leave memory). A non-zero return
 * from a callback stops the drain and is returned; the owner must then
 * rebuild the engine from the store. NULL callbacks are skipped.
 */
int problem_engine_drain(struct problem_engine *e,
                         const struct problem_sink *sink, void *arg);

/* 1 if a drain would hand over anything. */
int problem_engine_pending(struct problem_engine *e);
/* Problems in memory (not closed). */
size_t problem_engine_size(const struct problem_engine *e);
/*
 * The in-memory problem with this id, or NULL. Its ranking (root_*)
 * and the marks below are as of the last drain or pending: the engine
 * settles them there, once per step, not after every input.
 */
/*
 * Problems in memory counted by state, out[state] for open to resolved
 * (closed ones are not held). O(n); for the metrics' gauge.
 */
#define PROBLEM_CENSUS_STATES 4
void problem_engine_census(const struct problem_engine *e,
                           uint64_t out[PROBLEM_CENSUS_STATES]);
const struct problem *problem_engine_get(const struct problem_engine *e,
                                         int64_t id);
/* The mark of an incident the engine knows ({id, 0, 0, 0} otherwise). */
struct problem_mark problem_engine_mark(const struct problem_engine *e,
                                        int64_t incident_id);

/*
 * The fingerprint class of an incident fingerprint: the part after the
 * host and its "\x1f" (the rule or check name by default).
 */
const char *problem_class(const char *fingerprint);

/*
 * The known host a captured value names, or NULL: the value is a host
 * name, "name:port" (digits), or a dotted name whose first label is a
 * host ("cache-01.example.net"). Compared without ASCII case. self (the
 * event's own host) never counts.
 */
const char *problem_engine_named_host(const struct problem_engine *e,
                                      const char *value, size_t len,
                                      const char *self);

/* ---- explain (tocsinctl explain; docs/correlation.md "Asking why") ---- */

/*
 * Why an incident is, or is not, in a problem, from the same predicates
 * the rules use in the step, on the engine's state now and its config
 * now (so an admin can also ask what a changed config would do). Pure:
 * it changes nothing the drain hands over (a load still pending is
 * settled silently, as the first input would).
 */
enum problem_rule_id {
    PROBLEM_R_SPREAD = 0,
    PROBLEM_R_REFERENCE = 1,
    PROBLEM_R_TOPOLOGY = 2,
    PROBLEM_R_TREND = 3,
    PROBLEM_R_MAJOR = 4,
    PROBLEM_NRULES = 5,
};

#define PROBLEM_EXPLAIN_TEXT 1024 /* bytes of one verdict line */
#define PROBLEM_MAX_TERMS 8       /* score terms of one candidate */

/*
 * One rule's verdict on an unlinked incident. "How close" is seen of
 * need (docs/correlation.md): spread hosts of min_hosts, trend
 * openings of count, reference and topology 0, 1 or 2 of 2 (a related
 * host, then an incident of it within the window), major 0 of 2 (not
 * major), 1 of 2 (major, still active), 2 of 2.
 */
struct problem_verdict {
    const char *rule; /* "spread", ...; static */
    int enabled;      /* the rule is on */
    int matches;      /* its condition holds now: it links (or would) */
    uint32_t seen;    /* how close: seen of need */
    uint32_t need;    /* >= 1 */
    char why[PROBLEM_EXPLAIN_TEXT]; /* plain words; raw (callers escape) */
};

struct problem_explain {
    int64_t incident_id;
    int known; /* the engine holds it (else: the row given) */
    struct problem_mark mark;
    /* In a problem: its role, root cause or symptom, and why. */
    int root; /* the top candidate's incident */
    char role[PROBLEM_EXPLAIN_TEXT];
    char top[PROBLEM_EXPLAIN_TEXT]; /* the top candidate and its evidence */
    /* Not in one: each rule's verdict, and the closest one. */
    struct problem_verdict v[PROBLEM_NRULES];
    int nearest;      /* index into v of the closest rule not matching; -1 */
    int nfield_notes; /* problem_engine_explain_event notes added */
};

/*
 * Explain incident in->id (the stored row: used as is when the engine
 * does not hold it, a closed incident). 0, or -EINVAL (in NULL).
 */
int problem_engine_explain_incident(struct problem_engine *e,
                                    const struct incident *in,
                                    struct problem_explain *out);

/*
 * The engine keeps references to known hosts only. For an unlinked
 * incident whose reference verdict saw nothing, say which captured
 * fields of ev (one of its stored events, from host) look like a host
 * name ("db-9:5432", "db-9.example.net") and why they name none: not a
 * known host, not among reference.fields, or the incident's own host.
 * At most 3 such notes, appended to x's reference verdict.
 */
void problem_engine_explain_event(const struct problem_engine *e,
                                  struct problem_explain *x, const char *host,
                                  const struct tc_event *ev);

/* One term of a candidate's score. Borrowed from the engine. */
struct problem_term {
    const char *what; /* "earliest onset", "severity critical", ... */
    int64_t points;   /* 0: a remark ("no incident of its own") */
};

struct problem_explain_cand {
    const char *host; /* borrowed */
    int64_t incident_id;
    int64_t score; /* the sum of the terms' points */
    struct problem_term terms[PROBLEM_MAX_TERMS];
    size_t nterms;
};

/* Why a problem is where it is. Borrowed strings valid until the next
 * input to the engine. */
struct problem_explain_problem {
    int64_t id;
    int active;          /* incidents of it open or acknowledged */
    int64_t resolves_at; /* the tick resolves it at or after; 0 = not
                            scheduled (an incident is active, or it is
                            not open) */
    char state_why[PROBLEM_EXPLAIN_TEXT];
    struct problem_explain_cand cands[PROBLEM_MAX_CANDIDATES];
    size_t ncands;
};

/*
 * Explain problem id (in memory: not closed). 0 or -ENOENT. now: the
 * reader's clock, only for words ("overdue").
 */
int problem_engine_explain_problem(struct problem_engine *e, int64_t id,
                                   int64_t now,
                                   struct problem_explain_problem *out);

#endif
