/*
 * runbook_view: a runbook set as JSON: tocsinctl runbooks list --json
 * and the HTTP API's /api/v1/runbooks, built here only so that both
 * have the same keys (docs/runbooks.md).
 */
#ifndef VIEW_RUNBOOK_VIEW_H
#define VIEW_RUNBOOK_VIEW_H

#include <stddef.h>
#include <stdint.h>

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

/* Append [,]"key":"v" (null when v is NULL); no comma when first. */
void view_jkey_str(struct tc_buf *b, const char *key, const char *v, int first);
/* Append ,"key":{"k":"v",...}. */
void view_jkvs(struct tc_buf *b, const char *key, const struct runbook_kv *v,
               size_t n);
/* Append ,"key":"<16 hex digits of h>". */
void view_jhash(struct tc_buf *b, const char *key, uint64_t h);

#endif
