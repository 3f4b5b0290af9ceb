/*
 * runbook_view: a runbook set as JSON: tocsinctl runbooks list --json
 * and the HTTP API's /api/v1/runbooks, built here only so that both
 * have the same keys (docs/runbooks.md).
 */
#ifndef VIEW_RUNBOOK_VIEW_H
#define VIEW_RUNBOOK_VIEW_H

#include "buf.h"
#include "runbooks/runbooks.h"

/*
 * Append one runbook as a JSON object: id, title, file, priority,
 * match (class, labels, severity, problem_rule, hosts), summary,
 * action, params, links, hash. 0 or -ENOBUFS.
 */
int view_runbook_json(struct tc_buf *b, const struct runbook *rb);

/* Append ,"skipped":[{"file","error"},...]. 0 or -ENOBUFS. */
int view_runbook_skipped_json(struct tc_buf *b, const struct runbook_set *set);

/*
 * Append the whole set as one object: dir, hash, runbooks (as
 * view_runbook_json), skipped. 0 or -ENOBUFS.
 */
int view_runbook_set_json(struct tc_buf *b, const struct runbook_set *set);

#endif
