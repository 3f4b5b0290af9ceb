/*
 * silence_view: how a silence (a row of the silences table) looks to a
 * reader as JSON: tocsinctl silences list --json and the HTTP API's
 * /api/v1/silences, built here only so that both have the same keys.
 */
#ifndef VIEW_SILENCE_VIEW_H
#define VIEW_SILENCE_VIEW_H

#include <stdint.h>

#include "buf.h"
#include "store/incidents_store.h"

/*
 * Append r as one JSON object: id, state ("pending", "active",
 * "ended" at now), starts_at, ends_at (when it ended if expired by
 * hand), their *_iso, expired, user, comment, matchers. 0 or -ENOBUFS.
 */
int view_silence_row_json(struct tc_buf *b,
                          const struct incidents_silence_row *r, int64_t now);

#endif
