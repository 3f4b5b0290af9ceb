/*
 * agent_view: how an agent (a row of the collector's agents table)
 * looks to a reader, as JSON and as a table row, built here and only
 * here: tocsinctl agents list now, the HTTP API's agent view next.
 * JSON keeps raw numbers with the unit in the key (spool_bytes,
 * heartbeat_ms); the table shows them with units (common/units).
 */
#ifndef VIEW_AGENT_VIEW_H
#define VIEW_AGENT_VIEW_H

#include <stddef.h>

#include "buf.h"
#include "store/store.h"
#include "table.h"

/* Append agent a as one JSON object to b. 0 or -ENOBUFS. */
int view_agent_json(struct tc_buf *b, const struct store_agent *a);

/* The columns of an agents table, and one row of it. */
extern const struct tc_table_col view_agent_cols[];
extern const size_t view_agent_ncols;
void view_agent_row(struct tc_table *t, const struct store_agent *a);

#endif
