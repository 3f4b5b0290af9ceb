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
 * per-rule rate limit and the fold window.
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

#include "config.h"
#include "rules.h"
#include "spool.h"

struct emit;

/* Where a batch of lines came from. All strings borrowed. */
struct emit_source {
    const char *kind;                /* "log" */
    const char *source;              /* file path or journal input name */
    const struct tc_conf_kv *labels; /* the input's labels */
    size_t nlabels;
};

/* A pass's pending events and state changes; embedded by the caller. */
struct emit_batch {
    void *priv; /* owned by emit; reused across passes */
};

/*
 * cfg, spool and host are borrowed and outlive the emit. on_spooled
 * (may be NULL) runs after a commit that spooled at least one event.
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
