/*
 * spool: the agent's durable queue of events and its tail offsets.
 *
 * The agent's SQLite code, but for hints_store.c, which keeps its table
 * in the same database. One database, state_dir/spool.db,
 * holds the events waiting for the collector, the per-file read offsets
 * and a little metadata (the spool's epoch, the next sequence number,
 * the count of events dropped because the spool was full).
 *
 * The durability contract (DESIGN.md "Delivery"): spool_commit inserts
 * a pass's events AND the new position of the input they came from (a
 * file offset or a journal cursor) AND emit's pending fold/rate state in
 * one transaction, so a line is either accounted for everywhere, or
 * nowhere.
 * Sequence numbers are assigned here, densely: the spool always holds a
 * contiguous range [spool_first_seq, spool_next_seq).
 *
 * Single-threaded: every call runs on the loop thread.
 */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Bytes of a file's head that identify it across restarts. */
#define SPOOL_HEAD_MAX 1024

struct spool;

/* Where a tailed file was read up to: one row of the files table. */
struct spool_file {
    uint64_t dev;       /* st_dev of the file when read */
    uint64_t ino;       /* st_ino of the file when read */
    uint64_t head_hash; /* spool_head_hash of the first head_len bytes */
    uint32_t head_len;  /* bytes hashed, <= SPOOL_HEAD_MAX */
    uint64_t offset;    /* bytes consumed: end of the last complete line */
};

/*
 * Open (creating state_dir with mode 0700 and the database if needed)
 * and migrate the spool. max_bytes bounds the sum of the spooled event
 * bodies. 0 or a negative errno; errors are logged.
 */
int spool_open(const char *state_dir, uint64_t max_bytes, struct spool **out);
/* Close the database. spool_free(NULL) is a no-op. */
void spool_free(struct spool *s);

/*
 * Map an SQLite result code to a negative errno (-ENOSPC for a full
 * disk, -EBUSY, ...): the agent's one mapping, which hints_store uses
 * for its table in the same database.
 */
int spool_errno(int rc);

/* Random id of this spool, created once with it (HELLO's epoch). */
uint64_t spool_epoch(const struct spool *s);

/*
 * A row of emit's pending state (an open fold window or rate period).
 * The meaning of count and aux is emit's; the spool only keeps them.
 */
struct spool_state {
    const char *key;     /* unique key; borrowed */
    uint64_t count;      /* e.g. repeats folded, lines suppressed */
    uint64_t aux;        /* e.g. events let through in a rate period */
    int64_t first_ts;    /* ns: first line counted */
    int64_t last_ts;     /* ns: last line counted */
    int64_t due_ts;      /* ns: when the window or period closes */
    const uint8_t *body; /* encoded template event (tc_event_encode);
                            borrowed; may be NULL */
    size_t body_len;     /* bytes */
};

/*
 * One transaction's worth of changes; every member is borrowed and may
 * be empty (NULL / 0).
 */
struct spool_batch {
    const struct tc_event *evs; /* events to spool, in order */
    size_t nevs;
    const char *path;             /* file whose position moves, or NULL */
    const struct spool_file *pos; /* its new position */
    const char *cursor_key;       /* non-file input ("journal:NAME"), or NULL */
    const char *cursor;           /* its new cursor (NUL-terminated text) */
    const struct spool_state *put; /* pending rows inserted or replaced */
    size_t nput;
    const char *const *del; /* pending keys deleted (before the puts) */
    size_t ndel;
};

/*
 * Apply b in one transaction. Events get the next seqs as in
 * spool_append (and are dropped and counted when the spool is full).
 * 0 or a negative errno (nothing changed, in memory or on disk).
 */
int spool_commit(struct spool *s, const struct spool_batch *b);

/*
 * spool_commit with only events and a file position (tail and checks
 * use it). Spool n events and, when path is not NULL, set that file's
 * position to *pos, all in one transaction. Each event is copied with the next
 * seq and msgpack-encoded (ev->seq is ignored). When an event does not
 * fit under max_bytes it is dropped and counted instead; the position
 * still advances. 0 or a negative errno (nothing changed, in memory or
 * on disk).
 */
int spool_append(struct spool *s, const struct tc_event *evs, size_t n,
                 const char *path, const struct spool_file *pos);

/*
 * Deliver up to max_n spooled events with seq >= from, in seq order,
 * stopping before the event that would take the total body size over
 * max_bytes (but always delivering at least one). from may be below
 * spool_first_seq (delivery starts there) or inside a stored chunk.
 * body is valid only during the call, and cb must not call the spool;
 * a negative return from cb stops the read and is returned. Returns
 * the number of events delivered or a negative errno.
 */
int spool_read_from(struct spool *s, uint64_t from, uint32_t max_n,
                    size_t max_bytes,
                    int (*cb)(void *arg, uint64_t seq, const uint8_t *body,
                              size_t len),
                    void *arg);

/*
 * Forget every event with seq <= upto (the collector has it): chunks
 * acked whole are deleted, and where a chunk is acked in part that is
 * remembered on disk too, so its acked events are not read again.
 */
int spool_ack(struct spool *s, uint64_t upto);

/*
 * The collector does not know this spool's epoch and holds events up to
 * hwm from an earlier one: shift the spooled events up (in one
 * transaction) so that the lowest is >= hwm + 1, and next_seq with them,
 * so that (agent, seq) stays unique. Also used with a known epoch to
 * make sure next_seq > hwm.
 */
int spool_renumber(struct spool *s, uint64_t hwm);

/*
 * If events were dropped because the spool was full, spool one "agent"
 * event saying how many (host is the agent name) and reset the counter,
 * in one transaction. Call when the link is back. 0 or negative.
 */
int spool_report_drops(struct spool *s, const char *host);

/*
 * Make every spooled event durable on disk (see spool.c for why the
 * sender calls this before it sends events for the first time). Cheap
 * when nothing was appended since the last call. 0 or negative.
 */
int spool_sync(struct spool *s);
/*
 * The same in three steps, so that the fsync can run on a worker thread
 * while the loop keeps spooling: spool_sync_begin (loop thread) fills
 * out a request and returns the seq below which it will make events
 * durable (0: nothing to do); spool_sync_run (any thread) touches
 * nothing but the request; spool_sync_end (loop thread) records the
 * result. The request is the caller's; it holds no pointer into s.
 */
struct spool_sync_req {
    char wal[4096]; /* the WAL's path */
    char dir[4096]; /* its directory, synced once per spool; "" if done */
    uint64_t upto;  /* seqs below this become durable */
    uint64_t gen;   /* the spool's numbering when it began */
};
uint64_t spool_sync_begin(struct spool *s, struct spool_sync_req *r);
int spool_sync_run(const struct spool_sync_req *r);
void spool_sync_end(struct spool *s, const struct spool_sync_req *r, int rc);
/*
 * Checkpoints: copying the WAL into the database file. SQLite does it
 * by itself at the end of a commit once the WAL holds 1000 pages, on
 * the thread that commits; in ship-all mode that was a sixth of the
 * loop's time, spent while nothing was read or sent. So the loop's
 * connection does not, and a second connection does it on a worker:
 * spool_checkpoint_begin (loop thread) returns 1 and fills out r when
 * one is due (0: not due, or one is running); spool_checkpoint_run
 * (any thread) touches nothing but r and the second connection;
 * spool_checkpoint_end (loop thread) records the result. Until _end
 * the request must stay alive and spool_free must not be called. A
 * checkpoint runs beside commits (SQLite's PASSIVE mode); should the
 * WAL grow to 64 MiB all the same (nobody runs them), the loop's
 * connection checkpoints at the end of a commit, as SQLite would.
 */
struct spool_ckpt;
struct spool_ckpt_req {
    struct spool_ckpt *ck; /* the spool's; borrowed until _end */
    int rc;                /* OUT: 0 or a negative errno */
    char err[128];         /* OUT: SQLite's message when rc < 0 */
    uint64_t frames;       /* OUT: frames in the WAL */
    uint64_t copied;       /* OUT: of which in the database now */
};
int spool_checkpoint_begin(struct spool *s, struct spool_ckpt_req *r);
void spool_checkpoint_run(struct spool_ckpt_req *r);
void spool_checkpoint_end(struct spool *s, const struct spool_ckpt_req *r);

/* 1 if events with seq < upto are known to be on disk. */
int spool_is_synced(const struct spool *s, uint64_t upto);
/* Events with seq below this are known to be on disk. */
uint64_t spool_synced_seq(const struct spool *s);

/*
 * Give back the memory that a burst made the chunk buffers grow to (a
 * pass's worth of encoded events, and a copy of the chunk last read, a
 * MiB or two each) and close the checkpoint connection (opened again
 * when a checkpoint is due), if the spool was not used since the
 * previous call;
 * 1 if so (the agent was idle), else 0. Call it from a timer every few
 * seconds: releasing them as soon as the spool was empty made a sender
 * that keeps up grow them again from nothing at every read pass.
 */
int spool_trim(struct spool *s);

uint64_t spool_depth(const struct spool *s); /* events not yet acked */
uint64_t spool_bytes(const struct spool *s); /* their body bytes */
/* Lowest spooled seq, or spool_next_seq when the spool is empty. */
uint64_t spool_first_seq(const struct spool *s);
/* The seq the next appended event gets. */
uint64_t spool_next_seq(const struct spool *s);
/* Events dropped (spool full) and not yet reported. */
uint64_t spool_drops(const struct spool *s);

/* A cursor stored by spool_commit: 0 (*out is the caller's to free),
 * -ENOENT, or another negative errno. */
int spool_cursor_get(struct spool *s, const char *key, char **out);

/*
 * Call cb for each pending state row, earliest due first. The row's
 * strings and body are valid only during the call; a negative return
 * from cb stops and is returned. Returns the number of rows or a
 * negative errno.
 */
int spool_state_load(struct spool *s,
                     int (*cb)(void *arg, const struct spool_state *st),
                     void *arg);

/* A file's stored position: 0, -ENOENT, or another negative errno. */
int spool_file_get(struct spool *s, const char *path, struct spool_file *out);
/* Store a file's position on its own (no events). 0 or negative. */
int spool_file_put(struct spool *s, const char *path,
                   const struct spool_file *pos);
/*
 * Store n file rows (keys[i] -> rows[i], "file:..." or "path:...") in
 * one transaction: all or none, so a row that must not be stored
 * without another (see tail's restart rules) cannot be. 0 or negative.
 */
int spool_files_put(struct spool *s, const char *const *keys,
                    const struct spool_file *rows, size_t n);

/* The hash stored in head_hash (64-bit FNV-1a). */
uint64_t spool_head_hash(const void *p, size_t n);

#endif
