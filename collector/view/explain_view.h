/*
 * explain_view: how "tocsinctl explain" looks (docs/correlation.md,
 * "Asking why: explain"), as text and as JSON, built here and only
 * here. The verdicts, roles and evidence name hosts, classes and field
 * values from log data: text escapes them (common/escape), JSON escapes
 * them as JSON strings.
 */
#ifndef VIEW_EXPLAIN_VIEW_H
#define VIEW_EXPLAIN_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "engine/incident.h"
#include "engine/problem.h"

/* An incident and the engine's explanation of it. */
struct view_explain_incident {
    const struct incident *in;       /* the stored row */
    const struct problem_explain *x; /* problem_engine_explain_incident */
    const struct problem_link *link; /* its last link (made, not undone)
                                        to x->mark.problem_id; NULL none */
};

/* A problem: the stored row, its links and candidates, and, when the
 * engine holds it (not closed), the engine's explanation and each
 * member's role. */
struct view_explain_problem {
    const struct problem *p;
    const struct problem_link *links; /* oldest first */
    size_t nlinks;
    const struct problem_candidate *cands; /* stored ranking, best first */
    size_t ncands;
    const struct problem_explain_problem *xp; /* NULL: closed */
    const struct problem_explain *members;    /* xp: its incidents' roles */
    size_t nmembers;
};

/* Text ("key  value" lines and indented verdicts). 0 or -ENOBUFS. */
int view_explain_incident_text(struct tc_buf *b,
                               const struct view_explain_incident *v);
int view_explain_problem_text(struct tc_buf *b,
                              const struct view_explain_problem *v);
/* One JSON object each (shape in docs/correlation.md). 0 or -ENOBUFS. */
int view_explain_incident_json(struct tc_buf *b,
                               const struct view_explain_incident *v);
int view_explain_problem_json(struct tc_buf *b,
                              const struct view_explain_problem *v);

#endif
