/*
 * view: how an event looks to a reader, in one place. tocsinctl (events
 * list, incidents show), the agent's test-rules and the coming HTTP API
 * render events through it, so an event has the same keys wherever it
 * is shown. As JSON (an object) and as text (one line); incidents and
 * agents have theirs in collector/view/ (docs/internals/views.md).
 */
#ifndef TC_VIEW_H
#define TC_VIEW_H

#include "buf.h"
#include "wire.h"

/* What a rendering adds to the event's own fields. */
struct tc_view_event_opts {
    const char *origin; /* a stored event's origin ("agent", "collector"):
                           adds seq, origin and ts_iso; NULL for an
                           event not stored yet (test-rules' preview) */
    int iso_digits;     /* fractional digits of the *_iso times (3, 9) */
    int event_ts_error; /* 1: the rule's time capture did not parse */
};

/*
 * Append event e as one JSON object to b. 0, or -ENOBUFS when b is at
 * its cap (b then holds a partial object; the caller drops it).
 */
int tc_view_event_json(struct tc_buf *b, const struct tc_event *e,
                       const struct tc_view_event_opts *o);

/*
 * Append event e as one line of text, without the newline:
 * "TIME HOST SEQ SEVERITY RULE [count=N ]MESSAGE", TIME the agent's
 * read time (RFC 3339, ms), count only when repeats were folded in.
 * Strings are escaped (escape.h), empty ones shown as "-"; the message
 * is cut to max_message bytes (0: whole), at a whole character.
 * 0, or -ENOBUFS (b then holds a partial line).
 */
int tc_view_event_line(struct tc_buf *b, const struct tc_event *e,
                       size_t max_message);

#endif
