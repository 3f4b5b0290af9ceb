/*
 * tail: follow the configured log files, match their lines against the
 * rules, and spool the matches together with the new read offset.
 *
 * One read pass reads up to read_max_bytes of one file, splits the
 * complete lines, matches them, and ends in one spool_append carrying
 * the pass's events and the offset just past its last complete line.
 * A partial last line waits for its newline; the stored offset is always
 * the start of a line, so a restart re-reads exactly what was not
 * spooled. Passes are driven by inotify (uv_fs_event on each file's
 * directory) with a poll timer as the fallback, and a file with more to
 * read gets its next pass on the next loop iteration, so a large backlog
 * never blocks the loop.
 *
 * Plain paths only for now: a file that does not exist yet is waited
 * for; a truncated file is read again from the start; a file replaced
 * under its path is read to its end, then the new one from the start.
 */
#ifndef AGENT_TAIL_H
#define AGENT_TAIL_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "rules.h"
#include "spool.h"

struct tail;

/*
 * Prepare to tail cfg->files. rules[i] is the ruleset of cfg->files[i];
 * cfg, rules, spool and host (the agent name put in events) are
 * borrowed and must outlive the tail. on_spooled(arg), if not NULL, is
 * called after a pass spooled at least one event.
 */
struct tail *tail_new(uv_loop_t *loop, const struct agent_config *cfg,
                      struct rules *const *rules, struct spool *spool,
                      const char *host, void (*on_spooled)(void *arg),
                      void *arg);
/* Open the files (resuming at the spooled offsets) and start watching. */
int tail_start(struct tail *t);
/*
 * Stop reading and close the loop handles. Every pass commits before it
 * returns, so there is nothing left to save. on_stopped(arg) runs once
 * the handles are closed; only then may tail_free be called.
 */
void tail_stop(struct tail *t, void (*on_stopped)(void *arg), void *arg);
/* Free a tail that was never started or is stopped. NULL is a no-op. */
void tail_free(struct tail *t);

/* Counters for logs and tests. */
struct tail_stats {
    uint64_t lines;   /* complete lines scanned */
    uint64_t matched; /* lines that matched a rule */
    uint64_t cut;     /* lines over max_line_bytes, cut */
    uint64_t bytes;   /* bytes consumed */
    uint64_t passes;  /* read passes that consumed something */
};
void tail_get_stats(const struct tail *t, struct tail_stats *out);

#endif
