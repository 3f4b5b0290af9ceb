/*
 * replay_diff: what a candidate configuration would change, as a pure
 * function of two states (tocsinctl replay --config, docs/correlation.md,
 * "Trying a change first").
 *
 * Input: the incidents and problems of the live store and of the same
 * inputs replayed with the candidate configuration. Output: problems
 * opened, removed, merged, split, changed, unchanged, root causes
 * changed, and incidents moved, every list sorted, so that the same
 * states always give the same report. No I/O, no clock (it lives in the
 * engine library).
 *
 * Identity. Problem ids are not comparable across the two sides (the
 * candidate numbers its problems afresh). Incident ids are not either
 * once incident thresholds change (one more or one fewer incident
 * shifts every later id), so an incident is identified by its
 * fingerprint and opened_at; equal pairs match in id order. Its live id
 * is the one reported; an incident only the candidate has is reported
 * by its candidate id.
 *
 * Counterpart. The counterpart of a live problem is the candidate
 * problem that holds the most of its incidents, ties by lowest id; none
 * when no incident of it is in a candidate problem. The other way
 * round likewise. Root causes are compared between mutual counterparts.
 */
#ifndef COLLECTOR_REPLAY_DIFF_H
#define COLLECTOR_REPLAY_DIFF_H

#include <stddef.h>
#include <stdint.h>

/* One incident of one side. */
struct rdiff_incident {
    int64_t id;
    const char *fingerprint; /* not owned; NULL is "" */
    int64_t opened_at;       /* ns */
    int64_t problem;         /* that side's problem id; 0: none */
    int inhibited;
};

/* One problem of one side. */
struct rdiff_problem {
    int64_t id;
    int64_t opened_at;     /* ns */
    int64_t root_incident; /* that side's incident id; 0: none */
    const char *root_host; /* not owned; NULL or "": none */
};

struct rdiff_input {
    const struct rdiff_incident *live_inc, *cand_inc;
    size_t nlive_inc, ncand_inc;
    const struct rdiff_problem *live, *cand;
    size_t nlive, ncand;
    int64_t since; /* ns: report only what opened at or after it;
                      INT64_MIN: everything */
};

enum rdiff_pkind {
    RDIFF_OPENED,    /* a candidate problem with no live incident in
                        common with any live problem */
    RDIFF_REMOVED,   /* a live problem none of whose incidents is in a
                        candidate problem */
    RDIFF_MERGED,    /* a candidate problem holding incidents of two or
                        more live problems */
    RDIFF_SPLIT,     /* a live problem whose incidents are in two or more
                        candidate problems */
    RDIFF_CHANGED,   /* one to one, but incidents joined or left */
    RDIFF_ROOT,      /* mutual counterparts with another root cause */
    RDIFF_UNCHANGED, /* one to one, same incidents, same root cause */
    RDIFF_NPKIND
};

enum rdiff_ikind {
    RDIFF_MOVED,     /* linked on both sides, but not to mutual
                        counterparts */
    RDIFF_UNLINKED,  /* linked live, unlinked in the candidate */
    RDIFF_LINKED,    /* unlinked live, linked in the candidate */
    RDIFF_INHIBITED, /* inhibited differs */
    RDIFF_ONLY_LIVE, /* the candidate has no such incident */
    RDIFF_ONLY_CAND, /* only the candidate has it */
    RDIFF_NIKIND
};

/* One problem line of the report. */
struct rdiff_pitem {
    enum rdiff_pkind kind;
    int64_t *live; /* live problem ids, ascending (owned) */
    size_t nlive;
    int64_t *cand; /* candidate problem ids, ascending (owned) */
    size_t ncand;
    int64_t *inc; /* the incidents concerned, live ids ascending (owned):
                     the live problem's, or for opened and merged the
                     candidate problem's */
    size_t ninc;
    int64_t *cinc; /* those only the candidate has, candidate ids (owned) */
    size_t ncinc;
    const char *live_root, *cand_root; /* root hosts (input's strings);
                                          "" none */
};

/* One incident line of the report. */
struct rdiff_iitem {
    enum rdiff_ikind kind;
    int64_t live_id, cand_id;           /* 0: not on that side */
    int64_t live_problem, cand_problem; /* 0: none */
    int live_inhibited, cand_inhibited;
};

struct rdiff {
    struct rdiff_pitem *p; /* by kind, then first live id, then first
                              candidate id (owned) */
    size_t np;
    struct rdiff_iitem *i; /* by kind, then live id, then candidate id */
    size_t ni;
    size_t pcount[RDIFF_NPKIND];
    size_t icount[RDIFF_NIKIND];
    size_t changes; /* items of every kind but RDIFF_UNCHANGED */
};

/* Compute the report; out is overwritten. Free it with rdiff_free. */
void rdiff_compute(const struct rdiff_input *in, struct rdiff *out);
void rdiff_free(struct rdiff *d);

/* Names for output: "opened", ..., "unchanged"; "moved", ... */
const char *rdiff_pkind_name(enum rdiff_pkind k);
const char *rdiff_ikind_name(enum rdiff_ikind k);

#endif
