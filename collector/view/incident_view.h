/*
 * incident_view: how an incident looks to a reader, as JSON and as a
 * table row or a detail block, built here and only here. tocsinctl
 * (incidents list and show) renders through it, and the HTTP API
 * (issue 13) will, so an incident has the same keys and the same
 * columns wherever it is shown. Events are rendered by common/view.
 *
 * The `silenced` mark is explained wherever it is shown: by which
 * silence (when the store still has it) and what the mark means.
 */
#ifndef VIEW_INCIDENT_VIEW_H
#define VIEW_INCIDENT_VIEW_H

#include <stdint.h>

#include "buf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "table.h"

/* What the mark means, said once next to it. */
#define VIEW_SILENCED_MEANING                                                  \
    "notifications suppressed; the incident is still tracked"

/*
 * How far back "incidents show" (and the API's incident events) look
 * for an incident's events: this many of its host's latest events.
 */
#define VIEW_INCIDENT_EVENTS_SCAN 5000

/* What the store knows of the silence that marked an incident. */
struct view_silence {
    int64_t id;
    int64_t starts_at;    /* ns */
    int64_t ends_at;      /* ns: when it ends, or ended if expired early */
    int expired;          /* 1: ended by hand (silences expire) */
    const char *matchers; /* borrowed; space-separated */
    const char *user;     /* borrowed; who added it */
    const char *comment;  /* borrowed */
};

/* "pending", "active" or "ended" at now. */
const char *view_silence_state(const struct view_silence *s, int64_t now);

/*
 * Append incident in as one JSON object to b. sil: the silence of
 * in->silenced if the store knows it, else NULL. Keys: those of
 * docs/internals/views.md; `silenced` stays the silence id (0 = none),
 * `silence` is null or an object telling which silence and what the
 * mark means. 0 or -ENOBUFS.
 */
int view_incident_json(struct tc_buf *b, const struct incident *in,
                       const struct view_silence *sil, int64_t now);

/* The same with the problem mark (m may be NULL: no such keys):
 * `problem` (id or null) and `inhibited`. */
int view_incident_json_marked(struct tc_buf *b, const struct incident *in,
                              const struct view_silence *sil,
                              const struct problem_mark *m, int64_t now);

/* One timeline entry as JSON (incidents show, the API's incident):
 * ts_iso, ts, what, who, detail. 0 or -ENOBUFS. */
int view_incident_note_json(struct tc_buf *b, const struct incident_note *n);

/* The columns of an incidents table, and one row of it. */
extern const struct tc_table_col view_incident_cols[];
extern const size_t view_incident_ncols;
void view_incident_row(struct tc_table *t, const struct incident *in,
                       const struct view_silence *sil);

/*
 * One line that says what a silence is, for under a table or in a
 * detail block: "silence 1: rule=app-slow, active until ..., by alice
 * (deploy of v2)"; in->silenced alone when the store lost it. Escaped.
 */
int view_silence_line(struct tc_buf *b, int64_t id,
                      const struct view_silence *sil, int64_t now);

/*
 * The detail block of "incidents show": one "key  value" line per
 * field, the silence explained. Escaped. 0 or -ENOBUFS.
 */
int view_incident_text(struct tc_buf *b, const struct incident *in,
                       const struct view_silence *sil, int64_t now);

#endif
