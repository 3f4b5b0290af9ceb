/*
 * store: the collector's event log (docs/internals/store.md), kept in
 * SQLite.
 *
 * Append: store_commit writes accepted EVENTS batches with the
 * per-agent marks (hwm and epoch, link state) in one durable step.
 * Read: store_log_read from a cursor, in commit order; store_events_iter
 * for listings. The engine state (incidents_store.h) is the other
 * interface of the store; both are implemented on one SQLite file and
 * nothing above them sees SQLite, a table or a lock. Events are stored
 * one row per accepted EVENTS batch (a msgpack array of event maps),
 * not one row per event: an indexed row insert costs SQLite about
 * 10 us, so per-event rows would cap ingest near 100k events/s, while
 * a batch row amortises that cost over hundreds of events.
 *
 * Threading: a struct store is one SQLite connection opened without
 * SQLite's own mutexes. Callers must make sure that at most one thread
 * uses a given store at a time; the ingest module runs store_commit on
 * the libuv threadpool with only one commit in flight, and the loop
 * thread does not touch the store while it runs (store_maintain, below,
 * has a connection of its own).
 *
 * Errors are negative errno values: -ENOSPC (database or disk full),
 * -EIO (I/O error), -EBADMSG (the file is not a store or is corrupt),
 * -EBUSY (locked), -EROFS (read-only), -EPROTO (schema from a newer
 * version), -ENOENT (no such store), -EINVAL. The SQLite message
 * behind the last error is kept in store_errmsg.
 */
#ifndef COLLECTOR_STORE_H
#define COLLECTOR_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* store_open flags */
#define STORE_RDONLY 0x1      /* tocsinctl: never write, never migrate */
#define STORE_SYNC_NORMAL 0x2 /* WAL without an fsync per commit */

/*
 * Current schema version (PRAGMA user_version) of the whole file. Each
 * module migrates its own tables: 1 and 2 the event log (store.c; 2
 * added the agents' link state and the origin of each batch), 3 to 7
 * the engine state (incidents_store.c: 3 the incident tables, 4
 * silences, 5 flap detection, 6 the service label of an incident;
 * problems_store.c: 7 the problem tables, 8 reviews; hints_store.c: 9
 * hints, 10 the opening events' fields a problem's hints are filled
 * from; tokens_store.c: 11 the API's tokens; incidents_store.c: 12 the
 * index of the active incidents by priority).
 */
#define STORE_SCHEMA_VERSION 12

/* Who wrote the events of a batch (batches.origin). */
enum store_origin {
    STORE_ORIGIN_AGENT = 0,     /* "agent": the agent's own seqs */
    STORE_ORIGIN_COLLECTOR = 1, /* "collector": events the collector made
                                   about the agent, own seq space */
};

/* "agent" or "collector": how views name an origin. */
static inline const char *
store_origin_name(enum store_origin o)
{
    return o == STORE_ORIGIN_COLLECTOR ? "collector" : "agent";
}

/*
 * Open (creating the file, its parent directories and the schema unless
 * STORE_RDONLY) the store at path. On failure returns a negative errno
 * and logs why with log_warnx.
 */
int store_open(const char *path, int flags, struct store **out);
/* Close the connection. store_close(NULL) is a no-op. */
void store_close(struct store *s);

/* The SQLite message for the last failed call on s ("" if none). */
const char *store_errmsg(const struct store *s);

/* One row of the agents table. */
struct store_agent {
    const char *name;       /* agent name (cert CN); borrowed */
    uint64_t epoch;         /* spool epoch the hwm belongs to; 0 = none */
    int has_epoch;          /* 0 if the epoch column is NULL */
    uint64_t hwm;           /* highest seq durably stored */
    int64_t first_seen;     /* ns since the epoch, 0 = unknown */
    int64_t last_seen;      /* ns since the epoch, 0 = unknown */
    const char *software;   /* HELLO software string or NULL; borrowed */
    int connected;          /* 1 if connected when last written */
    const char *address;    /* "ip:port" of the last connection or NULL;
                               borrowed */
    uint64_t spool_depth;   /* events in the agent's spool (last PING) */
    uint64_t spool_bytes;   /* bytes of those */
    uint64_t heartbeat_ms;  /* the agent's PING period (HELLO); 0 = unknown */
    int64_t silent_since;   /* ns: last heard from before it was declared
                               silent; 0 = not silent */
    uint64_t collector_seq; /* last seq of the collector's own events
                               about this agent */
};

/*
 * Call cb for every known agent (start-up: the loop keeps them in
 * memory afterwards). Strings are valid during the call only. A non-zero
 * return from cb stops the walk and is returned.
 */
int store_load_agents(struct store *s,
                      int (*cb)(const struct store_agent *a, void *arg),
                      void *arg);

/* One accepted EVENTS batch: a row of the batches table. */
struct store_batch {
    int64_t id;               /* log position (store.md): > 0, strictly
                                 increasing in commit order; set by the
                                 reads, ignored by store_commit */
    const char *host;         /* agent name, NUL-terminated; borrowed */
    uint64_t seq_first;       /* seq of the first event in the blob */
    uint64_t seq_last;        /* seq of the last event in the blob */
    uint32_t n;               /* events in the blob */
    int64_t ts_min;           /* smallest event ts, ns */
    int64_t ts_max;           /* largest event ts, ns */
    const uint8_t *events;    /* msgpack array of n event maps; borrowed */
    size_t events_len;        /* bytes */
    enum store_origin origin; /* whose seq space seq_first/last are in */
};

/* Agent row written with a commit (insert or update). */
struct store_agent_update {
    const char *name;     /* borrowed */
    uint64_t epoch;       /* spool epoch of the batches committed */
    uint64_t hwm;         /* new highest durable seq of that epoch */
    int64_t last_seen;    /* ns; also first_seen when the row is new */
    const char *software; /* may be NULL: keep the stored value */
};

/*
 * An agent's link state, written with a commit (insert or update),
 * after the batches and hwm updates of the same commit. It never
 * touches epoch or hwm: those move only with the agent's own events.
 */
struct store_agent_state {
    const char *name;     /* borrowed */
    int connected;        /* 0 or 1 */
    int64_t last_seen;    /* ns, last frame; the stored value only grows */
    const char *software; /* NULL: keep the stored value */
    const char *address;  /* "ip:port"; NULL: keep the stored value */
    uint64_t spool_depth; /* from the last PING */
    uint64_t spool_bytes;
    uint64_t heartbeat_ms;  /* 0 = unknown */
    int64_t silent_since;   /* 0 = not silent */
    uint64_t collector_seq; /* the stored value only grows */
};

/* What one store_commit writes, atomically. Everything borrowed. */
struct store_txn {
    const struct store_batch *batches; /* in arrival order */
    size_t nbatches;
    const struct store_agent_update *agents;
    size_t nagents;
    const struct store_agent_state *states; /* applied last, in order */
    size_t nstates;
};

/*
 * Mark every agent disconnected (collector start-up: no session
 * survives a restart, whatever the last run managed to write). 0 or a
 * negative errno. Loop thread, before the first commit.
 */
int store_agents_disconnected(struct store *s);

/*
 * Write every batch and agent update of t in one transaction. Either
 * all of it is durable when this returns 0 (within the limits of the
 * sync mode), or none of it is and a negative errno is returned; the
 * caller may retry the same txn. Safe to call from a worker thread (see
 * the threading note above); it does not log.
 */
int store_commit(struct store *s, const struct store_txn *t);

/* The largest position: "as far as the log goes" for store_log_read. */
#define STORE_POS_MAX INT64_MAX

/*
 * Read the log from a cursor: call cb, in position (commit) order, for
 * each batch with after < id <= upto, at most max of them. *last: the
 * position of the last batch visited (after when none); *more: 1 when
 * batches remain in the range past max. A batch read is never changed
 * afterwards, and no batch with a position <= *last can appear later
 * (store.md), so the next read starts at *last and misses nothing.
 * The batches are read in one read snapshot and cb runs inside it with
 * the blob bytes valid during the call only: cb must not block (no
 * output to a pipe), or it keeps WAL checkpoints from completing. A
 * non-zero return from cb stops the read and is returned. s may be
 * read-only.
 */
int store_log_read(struct store *s, int64_t after, int64_t upto, uint32_t max,
                   int (*cb)(const struct store_batch *b, void *arg), void *arg,
                   int64_t *last, int *more);

/*
 * Walk stored batches in log (commit) order, optionally only those of host
 * (NULL = all hosts). When last > 0, only the batches that hold the
 * `last` most recent matching events are visited, and skip tells cb how
 * many leading events of the batch fall outside that window (non-zero
 * for the first batch visited at most). Blob bytes are valid during the
 * call only. A non-zero return from cb stops the walk and is returned.
 * The walk lists the batches of one snapshot (those committed when it
 * starts), but reads them in chunks, each in its own short read
 * transaction, and cb runs with none open: a slow or stalled cb (output
 * to a pipe nobody reads) never keeps a checkpoint from completing.
 */
int store_events_iter(struct store *s, const char *host, uint64_t last,
                      int (*cb)(const struct store_batch *b, uint32_t skip,
                                void *arg),
                      void *arg);

/*
 * Walk stored batches newest first (descending log position), those of
 * host only unless NULL, starting at the batch with id <= upto (0 =
 * the newest). For the paged events listing of the HTTP API, which
 * walks the events of each batch backwards too. One statement, one
 * short read snapshot: cb runs inside it with the blob valid during the
 * call only and must not block; it stops the walk by returning
 * non-zero (returned; 1 = "page full"). s may be read-only.
 */
int store_events_back(struct store *s, const char *host, int64_t upto,
                      int (*cb)(const struct store_batch *b, void *arg),
                      void *arg);

struct store_stats {
    uint64_t commits;       /* successful store_commit calls */
    uint64_t commit_errors; /* failed store_commit calls */
    uint64_t batches;       /* batch rows written by this process */
    uint64_t events;        /* events in those rows */
    uint64_t bytes;         /* blob bytes in those rows */
    int64_t last_commit_ns; /* duration of the last commit, ns */
    uint64_t wal_bytes;     /* write-ahead log after the last commit, bytes
                               (copied back or not): it only falls when a
                               complete checkpoint lets a commit start it
                               again */
};

/*
 * Counters of this connection. Not to be called while a commit runs on
 * another thread (read them from the commit's completion callback).
 */
void store_stats(const struct store *s, struct store_stats *out);

/*
 * WAL maintenance (docs/internals/store.md, "Maintenance"). The policy
 * lives here; the pipeline only runs it where it runs work, without
 * knowing what it does. For SQLite: the pipeline connection does no
 * automatic checkpoint (that copies up to 16 MiB into the database and
 * fsyncs it inside the commit every ack waits for). Once the WAL holds
 * 16 MiB, store_after_commit asks for store_maintain on the threadpool
 * while commits go on: a PASSIVE checkpoint on a connection of its own,
 * which copies what no reader still needs and never blocks a writer.
 * Commits keep appending meanwhile, so a background pass never finishes
 * the WAL by itself; while more than a quarter of the threshold is left
 * (at most 4 passes) store_maintain_done asks for another, then the next
 * commit copies the rest inline (handed to it by store_commit_prepare):
 * with no writer beside it that pass is complete, and the commit after
 * it starts the WAL again from the beginning. Should all this fall
 * behind (WAL at 8 times the threshold), store_commit checkpoints inline
 * as SQLite would.
 *
 * Threads: store_commit_prepare, store_after_commit and
 * store_maintain_done run on the loop thread (the owner of the commits'
 * and the maintenance's work requests), store_maintain on the
 * threadpool, never two at once, possibly beside a store_commit.
 */

/* Loop thread, before queueing a store_commit (also a retry). */
void store_commit_prepare(struct store *s);

/*
 * Loop thread, from a successful commit's completion. Returns 1 when
 * store_maintain should run now (the caller skips that if one is
 * already running). Also warns, at most once a minute, when the WAL
 * has not been checkpointed completely for 30 s: a reader holds an old
 * snapshot and the WAL grows without bound meanwhile (issue 9).
 */
int store_after_commit(struct store *s);

/* Threadpool: one maintenance pass. Its result is kept for
 * store_maintain_done. */
void store_maintain(struct store *s);

/* Loop thread, from store_maintain's completion: logs a failure (once
 * until a pass succeeds again); returns 1 when another pass should run
 * now. */
int store_maintain_done(struct store *s);

#endif
