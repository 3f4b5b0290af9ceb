/*
 * tail: follow the configured log files through rotation, match their
 * lines (or multiline records) against the rules, and spool the matches
 * together with the new read position.
 *
 * Each files[] entry is an input: a path or glob(3) pattern, minus its
 * exclude patterns (fnmatch on the full path). The matches are rescanned
 * on every poll tick and on inotify events of their directories, so new
 * files are picked up while running.
 *
 * A file is tracked by identity, not by name: device, inode and a hash
 * of its first (up to) SPOOL_HEAD_MAX bytes. Its position is stored in
 * the spool under "file:<dev>:<ino>", which survives renames, and the
 * identity last seen at each matched path under "path:<path>", which
 * lets a restart find the file that was rotated away while the agent
 * was stopped. A renamed or deleted file keeps being read through its
 * open descriptor until it is at its end and has been quiet for
 * max(poll_interval, flush_timeout); only then is it let go. See
 * docs/internals/agent.md "tail" for every rotation case.
 *
 * One read pass reads up to read_max_bytes of one file and ends in one
 * emit_commit of the pass's events and the position just past the
 * last complete line (or the start of an open multiline record), so a
 * restart re-reads exactly what was not spooled.
 */
#ifndef AGENT_TAIL_H
#define AGENT_TAIL_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "emit.h"
#include "rules.h"
#include "spool.h"

struct tail;

/*
 * Check what tail compiles itself (the multiline start patterns), for
 * -n. Errors are logged as "FILE:LINE: ..." with the line of the file
 * entry. 0 or -EINVAL.
 */
int tail_check_config(const struct agent_config *cfg);

/*
 * Prepare to tail cfg->files. rules[i] is the ruleset of cfg->files[i].
 * Matching lines go to emit (emit_match), and each pass ends in one
 * emit_commit with the file's position; the spool is used directly only
 * to look stored positions up and to note which file is at which path.
 * cfg, rules, spool and emit are borrowed and must outlive the tail.
 * 0 or -EINVAL (a multiline pattern does not compile; logged with
 * FILE:LINE).
 */
int tail_new(uv_loop_t *loop, const struct agent_config *cfg,
             struct rules *const *rules, struct spool *spool, struct emit *emit,
             struct tail **out);
/* Find the files (resuming at the spooled positions) and start watching. */
int tail_start(struct tail *t);
/*
 * Stop reading and close the loop handles. Every pass commits before it
 * returns, so there is nothing left to save. on_stopped(arg) runs once
 * the handles are closed; only then may tail_free be called.
 */
void tail_stop(struct tail *t, void (*on_stopped)(void *arg), void *arg);
/* Free a tail that was never started or is stopped. NULL is a no-op. */
void tail_free(struct tail *t);

/* Counters for logs, status and tests. */
struct tail_stats {
    uint64_t lines;     /* complete lines scanned */
    uint64_t records;   /* multiline records closed */
    uint64_t matched;   /* lines or records that matched a rule */
    uint64_t cut;       /* lines (or records) over max_line_bytes, cut */
    uint64_t flushed;   /* partial lines sent after flush_timeout */
    uint64_t bytes;     /* bytes consumed */
    uint64_t passes;    /* read passes that consumed something */
    uint64_t truncated; /* truncations seen (copytruncate, "> file") */
    uint64_t let_go;    /* rotated or deleted files read to the end */
    uint64_t trimmed;   /* bytes of idle read buffers given back */
    uint64_t refused;   /* paths not read: symlink out of bounds, FIFO,
                           device, /proc ... (each logged once) */
    uint32_t open;      /* files open now */
    uint32_t slow_poll; /* 1: all watched and quiet, polling less often */
};
void tail_get_stats(const struct tail *t, struct tail_stats *out);

/* One files[] input, for status. Strings valid during the callback. */
struct tail_input_info {
    size_t index;     /* in files[] */
    const char *path; /* as configured: a path or a glob */
    uint32_t matched; /* regular files read at matching paths, last scan */
    int no_match;     /* 1: matches nothing and nothing is left to read
                         (warned once in the log) */
};
/* Call cb for every input, in config order. */
void tail_inputs(const struct tail *t,
                 void (*cb)(void *arg, const struct tail_input_info *ii),
                 void *arg);

/* One open file, for status. Strings valid during the callback only. */
struct tail_file_info {
    const char *source; /* the path it was found at (events' source) */
    const char *name;   /* the path it was last seen at */
    uint64_t offset;    /* committed position, bytes */
    uint64_t size;      /* its size at the last pass, bytes */
    int rotated;        /* 1: no longer at a matching path; finishing */
};
/* Call cb for every open file, oldest first within a source. */
void tail_files(const struct tail *t,
                void (*cb)(void *arg, const struct tail_file_info *fi),
                void *arg);

#endif
