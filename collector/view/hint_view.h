/*
 * hint_view: how a hint and its delivery look to a reader as JSON:
 * tocsinctl hints list --json and the HTTP API's /api/v1/hints, built
 * here only so that both have the same keys.
 */
#ifndef VIEW_HINT_VIEW_H
#define VIEW_HINT_VIEW_H

#include "buf.h"
#include "store/incidents_store.h"

/* "pending" (never sent), "sent" (not acked) or "acked". */
const char *view_hint_state(const struct hint_row *r);

/*
 * Append r as one JSON object: id, agent, incident, problem, source,
 * title, action (null = none), params (the stored JSON object), note,
 * issued, state, sent_at, acked_at, attempts. 0 or -ENOBUFS.
 */
int view_hint_json(struct tc_buf *b, const struct hint_row *r);

#endif
