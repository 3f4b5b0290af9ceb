/*
 * problem_view: how a problem looks to a reader (tocsinctl problems
 * list and show, the coming HTTP API), as JSON and as table rows, built
 * here and only here. Titles, hosts, fields and evidence come from log
 * data: text output escapes them (the table does, and the detail lines
 * go through common/escape), JSON escapes them as JSON strings.
 */
#ifndef VIEW_PROBLEM_VIEW_H
#define VIEW_PROBLEM_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "engine/problem.h"
#include "table.h"

/* A problem with its incidents (ids) and their distinct hosts. */
struct view_problem {
    const struct problem *p;
    const int64_t *incidents;
    size_t nincidents;
    const char *const *hosts;
    size_t nhosts;
};

/*
 * The list object: id, state, title, rule, key, incidents, hosts,
 * root_cause (host of the top candidate, or null), root_incident,
 * opened_at, resolved_at, closed_at (ns, null when not yet; *_iso when
 * set). Without the closing "}" when open_end (show appends to it).
 * 0 or -ENOBUFS.
 */
int view_problem_json(struct tc_buf *b, const struct view_problem *v,
                      int open_end);

/* show --json: the rest of the object, after view_problem_json with
 * open_end. "known_error" and "rca" (whys, factors). */
int view_problem_rca_json(struct tc_buf *b, const struct problem *p);
int view_problem_candidate_json(struct tc_buf *b,
                                const struct problem_candidate *c);
int view_problem_link_json(struct tc_buf *b, const struct problem_link *l);
int view_problem_note_json(struct tc_buf *b, const struct problem_note *n);

/* The columns of a problems table, and one row of it. */
extern const struct tc_table_col view_problem_cols[];
extern const size_t view_problem_ncols;
void view_problem_row(struct tc_table *t, const struct view_problem *v);

/* Candidates and links as tables (problems show). */
extern const struct tc_table_col view_candidate_cols[];
extern const size_t view_candidate_ncols;
void view_candidate_row(struct tc_table *t, const struct problem_candidate *c);
extern const struct tc_table_col view_link_cols[];
extern const size_t view_link_ncols;
void view_link_row(struct tc_table *t, const struct problem_link *l);

/* The detail block of problems show: one "key  value" line per field,
 * the known error and the RCA. Escaped. 0 or -ENOBUFS. */
int view_problem_text(struct tc_buf *b, const struct view_problem *v);

#endif
