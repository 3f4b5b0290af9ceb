/*
 * emit: turns rule matches into events and commits them durably.
 *
 * Every input (tail, journald) hands each matching line to emit_match
 * and ends each read pass with one emit_commit carrying its position
 * (a file offset or a journal cursor). emit applies, in order: the
 * rule's action (drop consumes the line, no event), the event's fields
 * (named captures), labels (agent, then input, then rule: later wins),
 * the event time from a capture (rule time.field/format; the event keeps
 * both that time and the time it was read), the fingerprint template
 * ("{rule}:{code}": {rule}, {host}, {source} and any capture name), the
 * fold window, and the per-rule rate limit on what is left to send
 * (a repeat folded into an open window is not an event, so it does not
 * count against the rate; only the first event of a window does).
 *
 * Folding and rate limiting never lose a count across a crash: the
 * pending fold and rate state lives in the spool and is changed in the
 * same transaction as the events and the input position (spool.h). The
 * first event of a fingerprint is sent at once; repeats within
 * fold_window are counted and sent as one event with count = repeats
 * when the window closes (emit's timer). Lines over a rule's rate limit
 * are counted and reported as one summary event per period.
 *
 * Single-threaded: all calls on the loop thread.
 */
#ifndef AGENT_EMIT_H
#define AGENT_EMIT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "config.h"
#include "rules.h"
#include "spool.h"

struct emit;

/*
 * Where a line came from. All borrowed, and valid until the commit.
 * Zero-initialise it: members may be added.
 */
struct emit_source {
    const char *kind;                /* "log" */
    const char *source;              /* file path or journal input name */
    const struct tc_conf_kv *labels; /* the input's labels */
    size_t nlabels;
    const struct tc_kv *extra; /* fields of the input itself, added
                                  before the captures (journald: unit,
                                  pid, identifier); may be NULL */
    uint32_t nextra;
    int64_t event_ts; /* the line's own time if the input knows it
                         (journald), ns; 0 = none. A rule's time
                         capture takes precedence */
};

/*
 * A pass's pending events and state changes; embedded by the caller.
 * A batch is filled and committed within one loop callback: emit's
 * timer never runs while a batch holds uncommitted lines.
 */
struct emit_batch {
    void *priv; /* owned by emit; reused across passes */
};

/*
 * cfg, spool and host are borrowed and outlive the emit. on_spooled
 * (may be NULL) runs after a commit that spooled at least one event.
 * With loop and spool NULL the emit only builds events (emit_preview,
 * for test-rules); emit_start, emit_match and emit_commit are then not
 * to be called.
 */
struct emit *emit_new(uv_loop_t *loop, const struct agent_config *cfg,
                      struct spool *spool, const char *host,
                      void (*on_spooled)(void *arg), void *arg);
/* Load pending fold/rate state from the spool, start the fold timer. */
int emit_start(struct emit *e);
/* Flush nothing (state is durable), close the timer; cb when closed. */
void emit_stop(struct emit *e, void (*cb)(void *arg), void *arg);
void emit_free(struct emit *e);

void emit_batch_init(struct emit_batch *b);
void emit_batch_close(struct emit_batch *b);

/*
 * One line matched rule hit (line[0..len) stays valid until the
 * commit). read_ts is when it was read (ns).
 */
void emit_match(struct emit *e, struct emit_batch *b,
                const struct emit_source *src, const struct rules_hit *hit,
                const char *line, size_t len, int64_t read_ts);

/*
 * Spool the batch's events and state changes with the input's position,
 * all in one transaction: a file position (path, pos) or a journal
 * cursor (cursor_key, cursor), or neither (both NULL). Then reset the
 * batch. 0 or a negative errno (nothing committed; the caller re-reads
 * from its last committed position).
 */
int emit_commit(struct emit *e, struct emit_batch *b, const char *path,
                const struct spool_file *pos, const char *cursor_key,
                const char *cursor);

/*
 * Close every fold window and rate period due at now (ns, wall clock)
 * in one transaction: the folded or summary events and the deletion of
 * their pending rows. The timer calls it; tests call it with a fake
 * clock. Returns the number of events spooled, or a negative errno
 * (nothing changed; retried on the next tick).
 */
int emit_tick(struct emit *e, int64_t now);
/* Fold windows and rate periods open (for tests and status). */
size_t emit_pending(const struct emit *e);

/*
 * What one line would become, as one JSON object appended to out (the
 * same keys as "tocsinctl events list --json"), ignoring fold and rate
 * state. Returns 1 if an event would be built, 0 if the rule drops the
 * line, -ENOBUFS if out is full.
 */
int emit_preview(struct emit *e, const struct emit_source *src,
                 const struct rules_hit *hit, const char *line, size_t len,
                 int64_t read_ts, struct tc_buf *out);

/*
 * Parse a time capture s[0..len) with a strptime format. After what
 * the format consumed, a fraction (".123", up to ns) and a zone ("Z",
 * "+02:00", "-0530", "+02") may follow even if the format ends at %S;
 * without a zone the time is UTC. Without a year in the format, the
 * year is now's, or the one before when that would put the time more
 * than a day after now (December lines read in January). 0 and *out
 * in ns since the epoch, or -EINVAL.
 */
int emit_parse_time(const char *s, size_t len, const char *format, int64_t now,
                    int64_t *out);

/* The stored cursor of a non-file input (spool_cursor_get). */
int emit_cursor_get(struct emit *e, const char *key, char **out);

/* Counters for status. */
struct emit_stats {
    uint64_t events;     /* events spooled */
    uint64_t dropped;    /* lines consumed by action: drop */
    uint64_t folded;     /* repeats folded into a count */
    uint64_t suppressed; /* lines over a rate limit */
    uint64_t bad_time;   /* time captures that did not parse */
};
void emit_get_stats(const struct emit *e, struct emit_stats *out);

#endif
