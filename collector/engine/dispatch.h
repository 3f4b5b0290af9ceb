/*
 * dispatch: which remediation hints an engine step decides
 * (docs/runbooks.md, "Dispatch: when hints are sent and to whom").
 *
 * Pure, like the rest of the engine (engine.md): the store hands it
 * what the step changed (an incident opened, with the labels and
 * fields of the event that opened it; an incident joined a problem; a
 * problem became a known error) and the runbook set in force, which is
 * itself a recorded input; it hands back hints. The store writes them
 * in the step's transaction, where the UNIQUE dedupe key refuses one
 * already decided, so replay decides exactly the same hints.
 */
#ifndef COLLECTOR_DISPATCH_H
#define COLLECTOR_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "runbooks/runbooks.h"

/* What a hint is about: one incident. rs is borrowed; rs.problem_rule
 * is the rule of the problem it is in (NULL: none). */
struct dispatch_subject {
    int64_t incident_id;
    struct runbook_subject rs;
};

/* A problem an incident joined, or that became a known error. All
 * borrowed. */
struct dispatch_problem {
    int64_t id;
    const char *rule;         /* "spread", ... */
    const char *title;        /* one line */
    int known_error;          /* state is known_error */
    const char *workaround;   /* known error: what to do ("" = none) */
    const char *const *hosts; /* every host of its incidents and the top
                                 candidate's host: sorted, unique */
    size_t nhosts;
    /* Per hosts[i]: that host's own incident in the problem (its
     * lowest), with the labels and fields at hand; NULL for a host
     * with no incident in it (a named host that reports nothing).
     * NULL as a whole: no host has one. */
    const struct dispatch_subject *const *subjects;
};

/* One decided hint. Strings owned. */
struct dispatch_hint {
    char *key;   /* "SOURCE|incident:N|AGENT" or "SOURCE|problem:N|AGENT":
                    the dedupe key (UNIQUE in the store) */
    char *agent; /* the addressee: a host's agent */
    int64_t incident_id; /* the incident it is for (its templates'); 0:
                            a problem hint to a host with none there */
    int64_t problem_id;  /* 0 = none */
    char *source;        /* "runbook:<id>" or "known-error:<problem id>" */
    char *title;
    char *text;   /* the runbook's body or the workaround, cut to
                     TC_HINT_MAX_TEXT bytes (at a UTF-8 boundary) */
    char *action; /* NULL = none */
    char *params; /* JSON object of the filled parameters ("{}") */
    char *note;   /* why something was left out ("" = nothing) */
};

struct dispatch_hints {
    struct dispatch_hint *v;
    size_t n, cap;
};

/*
 * An incident opened: the best runbook for it (not in a problem yet,
 * unless s says so) as a hint to its host. Nothing when none matches.
 */
void dispatch_incident_opened(const struct runbook_set *set,
                              const struct dispatch_subject *s,
                              struct dispatch_hints *out);

/*
 * s joined p, or p became a known error (s: one of its incidents): the
 * best runbook for s with p's rule, and p's workaround when p is a
 * known error, each as a hint to every host of p. Each host's hint
 * names that host's own incident (p->subjects) and its templates are
 * filled from it; a host with none gets a hint naming the problem only
 * (incident 0), its templates filled from its host name alone.
 */
void dispatch_problem(const struct runbook_set *set,
                      const struct dispatch_subject *s,
                      const struct dispatch_problem *p,
                      struct dispatch_hints *out);

void dispatch_hints_free(struct dispatch_hints *h);

#endif
