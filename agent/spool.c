/*
 * spool: SQLite-backed event queue and tail offsets; see spool.h.
 *
 * Schema (PRAGMA user_version 3):
 *   meta(key TEXT PRIMARY KEY, value)   epoch, next_seq, drops_full, acked
 *   chunks(seq_first INTEGER PRIMARY KEY, seq_last INTEGER NOT NULL,
 *          n INTEGER NOT NULL, bytes INTEGER NOT NULL,
 *          offs BLOB NOT NULL, body BLOB NOT NULL)       since version 3
 *   files(path TEXT PRIMARY KEY, dev, ino, head_hash, head_len, offset)
 *   cursors(key TEXT PRIMARY KEY, cursor TEXT)           since version 2
 *   pending(key TEXT PRIMARY KEY, count, aux, first_ts, last_ts, due_ts,
 *           body BLOB)                                   since version 2
 * cursors holds the positions of inputs that are not files (a journald
 * cursor); pending holds emit's open fold windows and rate periods.
 *
 * Chunks. Up to version 2 every event was a row of its own, and SQLite's
 * per-row cost (a b-tree insert, and later a delete) capped the agent at
 * a few hundred thousand events a second whatever the rest did. Since
 * version 3 a row holds the events of one spool_commit (one read pass):
 * the seqs seq_first..seq_last (n of them, always n = seq_last -
 * seq_first + 1), body = their msgpack event maps (tc_event_encode) back
 * to back, bytes = the length of body, and offs = n little-endian uint32,
 * the end offset of each event in body. msgpack maps are self-delimiting,
 * but finding event k by parsing would cost O(k) on every read that
 * starts inside a chunk; 4 bytes an event buys O(1) and a cheap
 * consistency check of every chunk read. Each event still is one map the
 * sender ships without decoding (tc_wire_encode_events_raw). A commit
 * bigger than SPOOL_CHUNK_BYTES is split into several rows (same
 * transaction), which bounds the memory a chunk takes to build and read.
 *
 * Acks arrive per EVENTS batch, not per chunk. spool_ack deletes the
 * chunks that are acked whole and writes the highest acked seq to
 * meta.acked in the same transaction; the events of the first chunk up
 * to meta.acked are dead and are skipped by reads and by spool_load.
 * Persisting it costs one small row write per ack and keeps the rule
 * that an acked event is never sent again, after a restart too. (The
 * collector would drop the replay as a duplicate, but a restart with a
 * slow link would then resend up to a whole chunk for nothing, and
 * depth/bytes after a restart would disagree with those before it.)
 *
 * Why WAL with synchronous=NORMAL is still exactly-once. NORMAL skips
 * the fsync at each commit, so a power loss (not a process crash: the
 * WAL sits in the page cache and survives SIGKILL) can take the last
 * committed transactions with it. Each lost transaction took its file
 * offsets back with its events, so after the reboot the same lines are
 * read again and get the same seqs again, since next_seq went back with
 * them; the collector dedups by (agent, seq). That argument only holds
 * while the collector has seen none of the lost seqs: had it stored seq
 * 100 from file A before the crash, the replay could give seq 100 to a
 * line of file B if B happens to be read first, and that line would be
 * dropped as a duplicate. So the sender calls spool_sync before it sends
 * any seq for the first time: an fsync of the WAL, which makes every
 * committed transaction, and so every seq the collector can know,
 * durable (the database file only ever receives pages from a checkpoint,
 * which with NORMAL syncs the WAL before and the database after). That
 * costs an fsync per send burst instead of one per read pass, and a lost
 * offset update with no events costs only a re-read.
 * A lost meta.acked update only means resending what the collector
 * already has, which it recognises.
 */
#include "spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "hash.h"
#include "log.h"
#include "perms.h"
#include "seq.h"
#include "util.h"

#define SPOOL_SCHEMA 3

/*
 * A commit's events go into one chunk until it holds this many body
 * bytes; then the next event opens another. 1 MiB is a read pass of
 * short lines, large enough that the per-row cost disappears, small
 * enough that building and caching a chunk stays a small part of the
 * agent's memory.
 */
#define SPOOL_CHUNK_BYTES (1u << 20)
/* Cap on a chunk being built or read: full, plus the largest event. */
#define SPOOL_CHUNK_MAX (SPOOL_CHUNK_BYTES + TC_WIRE_MAX_FRAME)

/*
 * Checkpoints (see spool.h): one is due when the WAL holds this much
 * and has grown since the last one (SQLite's own default is 1000 pages,
 * 16 MiB at our page size) ...
 */
#define SPOOL_CKPT_BYTES (16u << 20)
/*
 * ... and when that much is waiting, the loop's connection copies it
 * itself, at the end of a commit, as SQLite would. That happens only
 * when no worker ran one (the sender is stopped) or when commits never
 * let a worker's checkpoint finish, and it bounds the WAL either way.
 */
#define SPOOL_WAL_MAX_BYTES (64u << 20)

/*
 * Room on the state_dir filesystem (issue 9). In WAL mode a commit first
 * needs room in the WAL, and later the checkpoint needs room to grow the
 * database by every page the WAL added past its end; only then can the
 * WAL be truncated. Let the disk fill up with pages that live only in
 * the WAL and no checkpoint can ever complete again: the spool drains,
 * but nothing can be written any more (the agent stayed stuck until
 * space was added by hand). So a commit of events must leave room for
 * that checkpoint, and one that makes the database grow must also leave
 * SPOOL_ROOM_RESERVE (or a quarter of a small filesystem) free: that is
 * what a commit needs in the WAL once the spool has drained, when its
 * pages come from the database's free list. Commits that only move
 * offsets or acks are never refused: they are what frees the spool.
 * Above SPOOL_ROOM_CHECK free bytes none of this is computed.
 */
#define SPOOL_ROOM_CHECK (256ull << 20)
#define SPOOL_ROOM_RESERVE (8ull << 20)
/* WAL pages a commit writes besides its chunk bodies: b-tree, meta,
 * files and state pages (an estimate with margin). */
#define SPOOL_ROOM_PAGES 8

enum spool_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_CHUNK_PUT,
    ST_OFFS_AT,
    ST_META_SET,
    ST_FILE_GET,
    ST_FILE_PUT,
    ST_ACK_BYTES,
    ST_ACK,
    ST_MOVE,
    ST_CURSOR_GET,
    ST_CURSOR_PUT,
    ST_STATE_PUT,
    ST_STATE_DEL,
    ST_STATE_ALL,
    ST_MAX
};

#define SPOOL_SQL_CHUNK_PUT                                                    \
    "INSERT INTO chunks(seq_first, seq_last, n, bytes, offs, body) "           \
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"

static const char *const spool_sql[ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_CHUNK_PUT] = SPOOL_SQL_CHUNK_PUT,
    /* The chunk holding seq ?1: chunks are contiguous, so it is the
     * last one that starts at or below it (a rowid range, no scan).
     * Without body: SQLite then leaves its overflow pages alone, which
     * is what makes a partial ack cheap; a read takes the body with
     * sqlite3_blob_read (spool_chunk_get). */
    [ST_OFFS_AT] = "SELECT seq_first, seq_last, offs FROM chunks "
                   "WHERE seq_first <= ?1 ORDER BY seq_first DESC LIMIT 1",
    [ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
    [ST_FILE_GET] = "SELECT dev, ino, head_hash, head_len, offset "
                    "FROM files WHERE path = ?1",
    [ST_FILE_PUT] = "INSERT OR REPLACE INTO files"
                    "(path, dev, ino, head_hash, head_len, offset) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    /* seq_first <= ?1 is implied by seq_last <= ?1; it is there so that
     * the delete walks a rowid range instead of the whole table. The
     * bytes are summed by a query of their own: RETURNING made the
     * delete load each row whole, body included, and reading a body's
     * overflow pages was as costly as the delete itself (which has to
     * walk them once more to free them). */
    [ST_ACK_BYTES] = "SELECT coalesce(sum(bytes), 0) FROM chunks "
                     "WHERE seq_first <= ?1 AND seq_last <= ?1",
    [ST_ACK] = "DELETE FROM chunks WHERE seq_first <= ?1 AND seq_last <= ?1",
    [ST_MOVE] = "UPDATE chunks SET seq_first = ?2, seq_last = ?3, n = ?4, "
                "bytes = ?5, offs = ?6, body = ?7 WHERE seq_first = ?1",
    [ST_CURSOR_GET] = "SELECT cursor FROM cursors WHERE key = ?1",
    [ST_CURSOR_PUT] = "INSERT OR REPLACE INTO cursors(key, cursor) "
                      "VALUES(?1, ?2)",
    [ST_STATE_PUT] = "INSERT OR REPLACE INTO pending"
                     "(key, count, aux, first_ts, last_ts, due_ts, body) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_STATE_DEL] = "DELETE FROM pending WHERE key = ?1",
    [ST_STATE_ALL] = "SELECT key, count, aux, first_ts, last_ts, due_ts, "
                     "body FROM pending ORDER BY due_ts, key",
};

/*
 * A copy of one chunk row. The sender reads a chunk in several batches
 * (a batch is at most batch_max_events and SENDER_BATCH_BYTES), so the
 * chunk of the last read is kept: each chunk is fetched from SQLite
 * once, not once per batch. After a commit it is the chunk the commit
 * wrote last (spool_chunk_keep), which a sender that keeps up then
 * sends without reading it back at all. Chunks never change once
 * written, except in spool_renumber, which drops the copy.
 */
struct spool_chunk {
    uint64_t first;     /* seq of its first event; 0: holds nothing */
    uint64_t n;         /* events in it */
    struct tc_buf offs; /* owned: n little-endian uint32 end offsets */
    struct tc_buf body; /* owned: the n encoded events, back to back */
};

/*
 * A second connection to the spool, used only for checkpoints, by one
 * thread at a time (spool_checkpoint_run on a worker, between
 * spool_checkpoint_begin and spool_checkpoint_end on the loop).
 */
struct spool_ckpt {
    sqlite3 *db; /* owned */
};

struct spool {
    sqlite3 *db;              /* owned */
    sqlite3_stmt *st[ST_MAX]; /* owned; prepared once, reset after use */
    char *path;               /* owned; state_dir/spool.db, for logs */
    int lock_fd;              /* state_dir/spool.lock, flock'ed; owned */
    uint64_t max_bytes;       /* bound on the unacked body bytes */
    uint64_t epoch;           /* meta.epoch */
    uint64_t next_seq;        /* meta.next_seq: the next event's seq */
    uint64_t first_seq;       /* lowest unacked seq; next_seq if none */
    uint64_t depth;           /* unacked events: next_seq - first_seq */
    uint64_t bytes;           /* body bytes of the unacked events */
    uint64_t head_acked;      /* body bytes of the first chunk's events
                                 below first_seq (acked, still stored) */
    uint64_t drops;           /* meta.drops_full */
    uint64_t synced_seq;      /* seqs below this are known on disk */
    int dir_synced;           /* state_dir fsynced since open (the WAL's
                                 directory entry is durable) */
    uint64_t sync_gen;        /* bumped by spool_renumber: a sync begun
                                 before it speaks of other seqs */
    int full_logged;          /* 1 once "spool full" was logged */
    int seq_logged;           /* 1 once "no seq left" was logged */
    int room_short;           /* a commit was refused or hit a full disk
                                 since the spool last drained */
    int64_t full_logged_ns;   /* tc_mono_ns of the last "disk full" line */
    uint64_t full_quiet;      /* disk-full failures not logged since */
    struct spool_ckpt *ck;    /* owned: the checkpoint connection; NULL
                                 until one is due, and after idle trims */
    int ckpt_failed;          /* it could not be opened (until a trim) */
    int ckpt_running;         /* between checkpoint_begin and _end */
    uint64_t page_size;       /* bytes per database page */
    uint64_t wal_frames;      /* frames in the WAL after the last commit */
    uint64_t ckpt_at;         /* frames in the WAL when the last worker
                                 checkpoint ran; 0 after a restart */
    struct tc_buf enc;        /* the chunk being built: its bodies */
    struct tc_buf woffs;      /* ... and its end offsets (as in offs) */
    uint64_t wfirst;          /* ... and the seq of its first event */
    struct tc_event_cache enc_cache; /* what its events share, encoded */
    struct spool_chunk rd;           /* the chunk of the last read */
    uint64_t busy;                   /* commits, reads and acks so far */
    uint64_t busy_trimmed;           /* busy at the last spool_trim */
};

/* sqlite3_config done (spool_open). */
static int spool_sqlite_configured;

static void
spool_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* The end offset of event i of a chunk, from its offs. */
static size_t
spool_end_at(const uint8_t *offs, uint64_t i)
{
    const uint8_t *p = offs + 4 * i;

    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
           (size_t)p[3] << 24;
}

/*
 * Is this a chunk we could have written? Checked on every chunk read,
 * so that a damaged row is reported as such instead of handing the
 * sender events cut at the wrong places.
 */
static int
spool_chunk_ok(uint64_t first, uint64_t last, const uint8_t *offs,
               size_t offs_len, size_t body_len)
{
    uint64_t n = last - first + 1;
    size_t prev = 0;

    /* Divide rather than multiply: n comes from the file. */
    if (first == 0 || last < first || offs_len % 4 != 0 || offs_len / 4 != n)
        return 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t end = spool_end_at(offs, i);
        if (end <= prev)
            return 0;
        prev = end;
    }
    return prev == body_len;
}

/* Start a new chunk buffer (nothing built yet). */
static void
spool_chunk_init(struct spool_chunk *c)
{
    c->first = 0;
    c->n = 0;
    tc_buf_init(&c->offs, SPOOL_CHUNK_MAX);
    tc_buf_init(&c->body, SPOOL_CHUNK_MAX);
}

static void
spool_chunk_close(struct spool_chunk *c)
{
    tc_buf_close(&c->offs);
    tc_buf_close(&c->body);
}

/* Map an SQLite result code to a negative errno (spool.h). */
int
spool_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    default:
        return -EIO;
    }
}

/* A full disk is said once a minute, with how often it was hit since. */
#define SPOOL_FULL_LOG_NS (60 * 1000000000LL)

static int
spool_fail(struct spool *s, const char *what, int rc)
{
    /*
     * Whoever else keeps the disk full makes every commit fail the same
     * way, and the tail retries it every pass: one line a minute says
     * it without filling the log (and the disk) further.
     */
    if ((rc & 0xff) == SQLITE_FULL) {
        int64_t now = tc_mono_ns();

        if (s->full_logged_ns && now - s->full_logged_ns < SPOOL_FULL_LOG_NS) {
            s->full_quiet++;
            return spool_errno(rc);
        }
        log_warnx("spool %s: %s: %s (%" PRIu64 " more since the last "
                  "report)",
                  s->path, what, sqlite3_errmsg(s->db), s->full_quiet);
        s->full_logged_ns = now;
        s->full_quiet = 0;
        return spool_errno(rc);
    }
    log_warnx("spool %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    return spool_errno(rc);
}

/* Step a statement that returns no rows, then reset it. */
static int
spool_run(struct spool *s, enum spool_stmt i)
{
    int rc = sqlite3_step(s->st[i]);
    sqlite3_reset(s->st[i]);
    if (rc != SQLITE_DONE)
        return spool_fail(s, spool_sql[i], rc);
    return 0;
}

static int
spool_begin(struct spool *s)
{
    return spool_run(s, ST_BEGIN);
}

static int
spool_end(struct spool *s)
{
    return spool_run(s, ST_COMMIT);
}

static void
spool_rollback(struct spool *s)
{
    /* A failed statement may already have rolled the transaction back
     * (SQLITE_FULL does); then there is nothing left to undo. */
    if (!sqlite3_get_autocommit(s->db))
        (void)spool_run(s, ST_ROLLBACK);
}

static int
spool_meta_set(struct spool *s, const char *key, uint64_t val)
{
    sqlite3_stmt *st = s->st[ST_META_SET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)val);
    return spool_run(s, ST_META_SET);
}

/* Run SQL text that is executed once (schema, pragmas). */
static int
spool_exec(struct spool *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_warnx("spool %s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return spool_errno(rc);
    }
    return 0;
}

/* One integer from a query run once; *out untouched if no row. */
static int
spool_query_int(struct spool *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return spool_fail(s, sql, rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        rc = spool_fail(s, sql, rc);
    else
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

static uint64_t
spool_random64(void)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        /* Only reachable on kernels without getrandom; an epoch need
         * not be secret, only different from the last install's. */
        v = (uint64_t)tc_now_ns() ^ ((uint64_t)getpid() << 32);
    }
    return v ? v : 1;
}

/*
 * Write the chunk built in s->enc and s->woffs as one row with the
 * statement st (ST_CHUNK_PUT, or its twin during the migration, before
 * the statements are prepared), and start the next one empty; or, with
 * keep, leave it built for spool_chunk_keep (the last chunk of a
 * commit).
 */
static int
spool_chunk_put(struct spool *s, sqlite3_stmt *st, int keep)
{
    uint64_t n = tc_buf_size(&s->woffs) / 4;
    size_t len = tc_buf_size(&s->enc);
    int rc;

    if (n == 0)
        return 0;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)s->wfirst);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(s->wfirst + n - 1));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
    sqlite3_bind_blob(st, 5, tc_buf_head(&s->woffs),
                      (int)tc_buf_size(&s->woffs), SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, tc_buf_head(&s->enc), (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    /* The bindings point into our buffers, which are about to change. */
    sqlite3_clear_bindings(st);
    if (!keep) {
        tc_buf_reset(&s->enc);
        tc_buf_reset(&s->woffs);
    }
    if (rc != SQLITE_DONE)
        return spool_fail(s, "chunk insert", rc);
    return 0;
}

/*
 * The commit that wrote the chunk still built in s->enc succeeded: make
 * it the chunk of the last read, so that a sender that keeps up sends
 * it from memory instead of reading it back from SQLite (and the pass
 * after it builds its chunk in the buffers the old copy had). The
 * buffers swap places: no copy, and no memory beyond the two chunk
 * buffers the spool had already.
 */
static void
spool_chunk_keep(struct spool *s)
{
    uint64_t n = tc_buf_size(&s->woffs) / 4;
    struct tc_buf t;

    if (n > 0) {
        t = s->rd.body;
        s->rd.body = s->enc;
        s->enc = t;
        t = s->rd.offs;
        s->rd.offs = s->woffs;
        s->woffs = t;
        s->rd.first = s->wfirst;
        s->rd.n = n;
    }
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
}

/* Append the end offset of the event just added to s->enc. */
static int
spool_chunk_mark(struct spool *s)
{
    uint8_t le[4];

    spool_put_le32(le, (uint32_t)tc_buf_size(&s->enc));
    return tc_buf_append(&s->woffs, le, sizeof(le));
}

/*
 * Version 2 -> 3: the events table (one row per event) becomes chunks
 * of contiguous seqs of up to SPOOL_CHUNK_BYTES, inside the caller's
 * transaction, so that an agent upgraded with a full spool neither
 * loses nor resends anything.
 */
static int
spool_migrate_chunks(struct spool *s)
{
    static const char get_sql[] = "SELECT seq, body FROM events ORDER BY seq";
    sqlite3_stmt *get = NULL, *put = NULL;
    uint64_t events = 0, chunks = 0;
    int rc;

    rc = spool_exec(s, "CREATE TABLE chunks(seq_first INTEGER PRIMARY KEY,"
                       " seq_last INTEGER NOT NULL, n INTEGER NOT NULL,"
                       " bytes INTEGER NOT NULL, offs BLOB NOT NULL,"
                       " body BLOB NOT NULL);"
                       "INSERT OR REPLACE INTO meta VALUES('acked', 0);");
    if (rc < 0)
        return rc;
    if ((rc = sqlite3_prepare_v2(s->db, get_sql, -1, &get, NULL)) !=
        SQLITE_OK) {
        rc = spool_fail(s, get_sql, rc);
        goto out;
    }
    if ((rc = sqlite3_prepare_v2(s->db, SPOOL_SQL_CHUNK_PUT, -1, &put, NULL)) !=
        SQLITE_OK) {
        rc = spool_fail(s, SPOOL_SQL_CHUNK_PUT, rc);
        goto out;
    }
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    while ((rc = sqlite3_step(get)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(get, 0);
        const void *body = sqlite3_column_blob(get, 1);
        size_t len = (size_t)sqlite3_column_bytes(get, 1);
        uint64_t n = tc_buf_size(&s->woffs) / 4;

        /* A gap cannot happen (seqs are dense); should it anyway, a
         * chunk must not span it, and spool_load reports it. */
        if (n > 0 && (tc_buf_size(&s->enc) >= SPOOL_CHUNK_BYTES ||
                      seq != s->wfirst + n)) {
            if ((rc = spool_chunk_put(s, put, 0)) < 0)
                goto out;
            chunks++;
            n = 0;
        }
        if (n == 0)
            s->wfirst = seq;
        if (len == 0 || tc_buf_append(&s->enc, body, len) < 0 ||
            spool_chunk_mark(s) < 0) {
            log_warnx("spool %s: event %" PRIu64 " cannot be migrated"
                      " (%zu bytes)",
                      s->path, seq, len);
            rc = -EPROTO;
            goto out;
        }
        events++;
    }
    if (rc != SQLITE_DONE) {
        rc = spool_fail(s, "migrate events", rc);
        goto out;
    }
    if (tc_buf_size(&s->woffs) > 0) {
        if ((rc = spool_chunk_put(s, put, 0)) < 0)
            goto out;
        chunks++;
    }
    rc = spool_exec(s, "DROP TABLE events; PRAGMA user_version = 3;");
    if (rc == 0 && events > 0)
        log_info("spool %s: moved %" PRIu64 " events into %" PRIu64 " chunks",
                 s->path, events, chunks);
out:
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    sqlite3_finalize(get);
    sqlite3_finalize(put);
    return rc;
}

/* Bring the schema to SPOOL_SCHEMA, inside the caller's transaction. */
static int
spool_migrate(struct spool *s)
{
    int64_t version = 0;
    int rc;

    if ((rc = spool_query_int(s, "PRAGMA user_version", &version)) < 0)
        return rc;
    if (version > SPOOL_SCHEMA) {
        log_warnx("spool %s: schema version %" PRId64
                  " is newer than this agent's (%d)",
                  s->path, version, SPOOL_SCHEMA);
        return -EPROTO;
    }
    if (version < 1) {
        char *sql = tc_xasprintf(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
            "CREATE TABLE events(seq INTEGER PRIMARY KEY,"
            " bytes INTEGER NOT NULL, body BLOB NOT NULL);"
            "CREATE TABLE files(path TEXT PRIMARY KEY, dev INTEGER,"
            " ino INTEGER, head_hash INTEGER, head_len INTEGER,"
            " offset INTEGER);"
            "INSERT INTO meta VALUES('epoch', %" PRId64 ");"
            "INSERT INTO meta VALUES('next_seq', 1);"
            "INSERT INTO meta VALUES('drops_full', 0);"
            "PRAGMA user_version = 1;",
            (int64_t)spool_random64());
        rc = spool_exec(s, sql);
        free(sql);
        if (rc < 0)
            return rc;
        log_info("spool %s: created", s->path);
    }
    if (version < 2) {
        /* Inputs that are not files (journald) and emit's pending fold
         * and rate state: both must move in the same transaction as
         * the events, so they live here rather than in a file of
         * their own. */
        rc = spool_exec(s, "CREATE TABLE cursors(key TEXT PRIMARY KEY,"
                           " cursor TEXT NOT NULL);"
                           "CREATE TABLE pending(key TEXT PRIMARY KEY,"
                           " count INTEGER NOT NULL, aux INTEGER NOT NULL,"
                           " first_ts INTEGER NOT NULL,"
                           " last_ts INTEGER NOT NULL,"
                           " due_ts INTEGER NOT NULL, body BLOB);"
                           "PRAGMA user_version = 2;");
        if (rc < 0)
            return rc;
    }
    /* A new spool goes through here too: one path, always exercised. */
    if (version < 3 && (rc = spool_migrate_chunks(s)) < 0)
        return rc;
    /* Later migrations go here, one "if (version < N)" block each. */
    return 0;
}

/*
 * Find the chunk holding seq and copy it into s->rd, unless it is there
 * already. -EPROTO if there is no such chunk or it is damaged.
 */
static int
spool_chunk_get(struct spool *s, uint64_t seq)
{
    struct spool_chunk *c = &s->rd;
    sqlite3_stmt *st = s->st[ST_OFFS_AT];
    sqlite3_blob *blob = NULL;
    uint64_t first, last;
    const void *offs;
    size_t offs_len, body_len = 0;
    int rc, bad = 0;

    if (c->n > 0 && seq >= c->first && seq - c->first < c->n)
        return 0;
    c->first = c->n = 0;
    tc_buf_reset(&c->offs);
    tc_buf_reset(&c->body);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return spool_fail(s, "chunk read", rc);
        log_warnx("spool %s: event %" PRIu64 " is missing", s->path, seq);
        return -EPROTO;
    }
    first = (uint64_t)sqlite3_column_int64(st, 0);
    last = (uint64_t)sqlite3_column_int64(st, 1);
    offs = sqlite3_column_blob(st, 2);
    offs_len = (size_t)sqlite3_column_bytes(st, 2);
    if (last < seq) {
        sqlite3_reset(st);
        log_warnx("spool %s: event %" PRIu64 " is missing", s->path, seq);
        return -EPROTO;
    }
    if (tc_buf_append(&c->offs, offs, offs_len) < 0)
        bad = 1;
    sqlite3_reset(st);
    /*
     * The body straight into our buffer: through a column SQLite would
     * first assemble it in a buffer of its own, a second copy of every
     * byte the sender sends. A body that is not a blob or a text cannot
     * be opened: the row is damaged.
     */
    if (!bad) {
        rc = sqlite3_blob_open(s->db, "main", "chunks", "body",
                               (sqlite3_int64)first, 0, &blob);
        if (rc == SQLITE_ERROR)
            bad = 1;
        else if (rc != SQLITE_OK)
            return spool_fail(s, "chunk read", rc);
    }
    if (!bad) {
        body_len = (size_t)sqlite3_blob_bytes(blob);
        bad = !spool_chunk_ok(first, last, tc_buf_head(&c->offs), offs_len,
                              body_len) ||
              tc_buf_reserve(&c->body, body_len) < 0;
    }
    if (!bad) {
        rc = sqlite3_blob_read(blob, c->body.data + c->body.len, (int)body_len,
                               0);
        if (rc != SQLITE_OK) {
            rc = spool_fail(s, "chunk read", rc);
            sqlite3_blob_close(blob);
            tc_buf_reset(&c->offs);
            return rc;
        }
        c->body.len += body_len;
    }
    sqlite3_blob_close(blob);
    if (bad) {
        tc_buf_reset(&c->offs);
        tc_buf_reset(&c->body);
        log_warnx("spool %s: the chunk of events %" PRIu64 "-%" PRIu64
                  " is corrupt",
                  s->path, first, last);
        return -EPROTO;
    }
    c->first = first;
    c->n = last - first + 1;
    return 0;
}

/*
 * Body bytes of the events of the chunk holding seq that come before
 * seq (0 if seq starts its chunk), without reading the bodies.
 */
static int
spool_prefix_bytes(struct spool *s, uint64_t seq, uint64_t *out)
{
    sqlite3_stmt *st = s->st[ST_OFFS_AT];
    uint64_t first, last;
    const uint8_t *offs;
    size_t offs_len;
    int rc;

    *out = 0;
    if (s->rd.n > 0 && seq >= s->rd.first && seq - s->rd.first < s->rd.n) {
        if (seq > s->rd.first)
            *out =
                spool_end_at(tc_buf_head(&s->rd.offs), seq - s->rd.first - 1);
        return 0;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return spool_fail(s, "chunk read", rc);
        log_warnx("spool %s: event %" PRIu64 " is missing", s->path, seq);
        return -EPROTO;
    }
    first = (uint64_t)sqlite3_column_int64(st, 0);
    last = (uint64_t)sqlite3_column_int64(st, 1);
    offs = sqlite3_column_blob(st, 2);
    offs_len = (size_t)sqlite3_column_bytes(st, 2);
    rc = 0;
    if (first == 0 || last < seq || last < first || offs_len % 4 != 0 ||
        offs_len / 4 != last - first + 1) {
        log_warnx("spool %s: the chunk of events %" PRIu64 "-%" PRIu64
                  " is corrupt",
                  s->path, first, last);
        rc = -EPROTO;
    } else if (seq > first) {
        *out = spool_end_at(offs, seq - first - 1);
    }
    sqlite3_reset(st);
    return rc;
}

/*
 * SQLite calls this on the loop's connection after each commit, with
 * the frames now in the WAL; it replaces the automatic checkpoint (see
 * spool.h "Checkpoints"). The WAL restarts from its beginning at the
 * first commit after a checkpoint copied all of it, so frames counts
 * what the WAL holds since then.
 */
static int
spool_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct spool *s = arg;

    (void)name;
    if ((uint64_t)frames < s->wal_frames)
        s->ckpt_at = 0; /* restarted */
    s->wal_frames = frames > 0 ? (uint64_t)frames : 0;
    if (!s->ckpt_running && s->wal_frames * s->page_size >= SPOOL_WAL_MAX_BYTES)
        (void)sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE,
                                        NULL, NULL);
    return SQLITE_OK;
}

static void
spool_ckpt_close(struct spool *s)
{
    if (s->ck == NULL)
        return;
    sqlite3_close(s->ck->db);
    free(s->ck);
    s->ck = NULL;
}

/*
 * Open the checkpoint connection (see struct spool_ckpt) when the first
 * checkpoint is due; spool_trim closes it again when the spool is idle,
 * so that an agent that never writes much never holds it.
 */
static int
spool_ckpt_open(struct spool *s)
{
    struct spool_ckpt *ck = tc_xcalloc(1, sizeof(*ck));
    char *msg = NULL;
    int rc;

    s->ck = ck;
    rc = sqlite3_open_v2(s->path, &ck->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /*
     * A checkpoint syncs the WAL before and the database after it
     * copies; the read opens the WAL on this connection, which a
     * checkpoint needs and does not do by itself in every SQLite.
     */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ck->db,
                          "PRAGMA synchronous = NORMAL;"
                          "PRAGMA cache_size = -64;"
                          "SELECT count(*) FROM meta;",
                          NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_warnx("spool %s: checkpoint connection: %s", s->path,
                  msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        spool_ckpt_close(s);
        return spool_errno(rc);
    }
    return 0;
}

static int
spool_load(struct spool *s)
{
    int64_t epoch = 0, next = 1, drops = 0, acked = 0, sum_n = 0, bytes = 0;
    int64_t first = 0, last = 0, odd = 0;
    uint64_t head = 0;
    int rc;

    if ((rc = spool_query_int(s, "SELECT value FROM meta WHERE key = 'epoch'",
                              &epoch)) < 0 ||
        (rc = spool_query_int(
             s, "SELECT value FROM meta WHERE key = 'next_seq'", &next)) < 0 ||
        (rc = spool_query_int(s,
                              "SELECT value FROM meta WHERE key = 'drops_full'",
                              &drops)) < 0 ||
        (rc = spool_query_int(s, "SELECT value FROM meta WHERE key = 'acked'",
                              &acked)) < 0 ||
        (rc = spool_query_int(s, "SELECT coalesce(sum(n), 0) FROM chunks",
                              &sum_n)) < 0 ||
        (rc = spool_query_int(s, "SELECT coalesce(sum(bytes), 0) FROM chunks",
                              &bytes)) < 0 ||
        (rc = spool_query_int(s, "SELECT min(seq_first) FROM chunks", &first)) <
            0 ||
        (rc = spool_query_int(s, "SELECT max(seq_last) FROM chunks", &last)) <
            0 ||
        (rc = spool_query_int(s,
                              "SELECT count(*) FROM chunks "
                              "WHERE n != seq_last - seq_first + 1",
                              &odd)) < 0)
        return rc;
    s->epoch = (uint64_t)epoch;
    s->next_seq = next > 0 ? (uint64_t)next : 1;
    s->drops = drops > 0 ? (uint64_t)drops : 0;
    s->first_seq = s->next_seq;
    s->depth = s->bytes = s->head_acked = 0;
    if (sum_n > 0) {
        /* The events of the first chunk up to meta.acked were acked. */
        s->first_seq = (uint64_t)first;
        if (acked > 0 && (uint64_t)acked >= s->first_seq)
            s->first_seq = (uint64_t)acked + 1;
        /*
         * Seqs are assigned densely and deleted from the front only, so
         * anything else is a broken invariant; the collector would wait
         * forever for the missing seqs.
         */
        if (odd != 0 || first <= 0 ||
            (uint64_t)first + (uint64_t)sum_n != s->next_seq ||
            (uint64_t)last + 1 != s->next_seq ||
            s->first_seq > (uint64_t)last) {
            log_warnx("spool %s: events are not contiguous (%" PRId64
                      " events in chunks from seq %" PRId64 " to %" PRId64
                      ", acked %" PRId64 ", next %" PRIu64 ")",
                      s->path, sum_n, first, last, acked, s->next_seq);
            return -EPROTO;
        }
        if ((rc = spool_prefix_bytes(s, s->first_seq, &head)) < 0)
            return rc;
        s->depth = s->next_seq - s->first_seq;
        s->head_acked = head;
        s->bytes = (uint64_t)bytes - head;
    }
    /* Whatever is in the database now was read back from the disk. */
    s->synced_seq = s->next_seq;
    return 0;
}

int
spool_open(const char *state_dir, uint64_t max_bytes, struct spool **out)
{
    struct spool *s = tc_xcalloc(1, sizeof(*s));
    int64_t page_size = 0;
    char *lock, why[512];
    int rc;

    *out = NULL;
    s->lock_fd = -1;
    s->max_bytes = max_bytes;
    tc_buf_init(&s->enc, SPOOL_CHUNK_MAX);
    tc_buf_init(&s->woffs, SPOOL_CHUNK_MAX);
    spool_chunk_init(&s->rd);
    s->path = tc_xasprintf("%s/spool.db", state_dir);
    /*
     * The spool holds log lines and offsets: a private directory, and
     * files an older version left readable tightened before use (new
     * ones are 0600 by the umask, tc_perms_umask).
     */
    if ((rc = tc_perms_dir(state_dir, why, sizeof(why))) < 0) {
        log_warnx("spool: state_dir %s", why);
        goto fail;
    }
    /*
     * The spool belongs to one agent process: a second agent on the same
     * state_dir would hand out the same seqs. A lock file rather than
     * SQLite's EXCLUSIVE locking mode, so that sqlite3(1) can still
     * look inside while the agent runs.
     */
    lock = tc_xasprintf("%s/spool.lock", state_dir);
    if ((rc = tc_perms_tighten(lock, why, sizeof(why))) < 0 ||
        (rc = tc_perms_tighten_db(s->path, why, sizeof(why))) < 0) {
        log_warnx("spool: %s", why);
        free(lock);
        goto fail;
    }
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (rc != -EBUSY)
            log_warn("spool: %s", lock);
        free(lock);
        goto fail;
    }
    free(lock);
    /*
     * No preallocated page cache: SQLite would otherwise take a 20-page
     * block (330 KiB at 16 KiB pages) on its first use and never give
     * it back; pages come from malloc like the rest. Only possible
     * before SQLite is first initialised, and not thread-safe: the
     * first spool_open of the process, before any SQLite thread, does
     * it (agent main opens one spool, at start).
     */
    if (!spool_sqlite_configured) {
        spool_sqlite_configured = 1;
        (void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    }
    rc = sqlite3_open_v2(s->path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = spool_fail(s, "open", rc);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /*
     * page_size: chunk bodies live in overflow pages, and SQLite writes
     * each page to the WAL with two syscalls and copies it again at a
     * checkpoint; 16 KiB pages halve the agent's CPU in ship-all mode
     * against the default 4 KiB. Larger pages gain a little more but
     * make every small commit (a check result, a single line) write
     * several of them. It takes effect only when the file is created.
     * busy_timeout: a sqlite3(1) reader may hold a lock for a moment.
     * secure_delete: Debian builds SQLite with SQLITE_SECURE_DELETE, so
     * every chunk deleted by an ack had all its pages overwritten with
     * zeros, written to the WAL and copied again by the checkpoint: a
     * quarter of the agent's CPU in ship-all mode. The freed pages hold
     * lines of log files that sit on the same disk in the clear, in a
     * 0600 file of a 0700 directory, until the next chunk reuses them.
     */
    rc = spool_exec(s, "PRAGMA page_size = 16384;"
                       "PRAGMA busy_timeout = 1000;"
                       "PRAGMA journal_mode = WAL;"
                       "PRAGMA synchronous = NORMAL;"
                       "PRAGMA secure_delete = OFF;"
                       /* Checkpoints run on a worker (spool.h). */
                       "PRAGMA wal_autocheckpoint = 0;"
                       /* Appends touch the right edge of the tree and
                        * reads follow them: a small cache will do. */
                       "PRAGMA cache_size = -512;"
                       /* Do not keep a huge WAL after a burst. */
                       "PRAGMA journal_size_limit = 67108864;");
    if (rc < 0)
        goto fail;
    if ((rc = spool_exec(s, "BEGIN IMMEDIATE")) < 0)
        goto fail;
    if ((rc = spool_migrate(s)) < 0) {
        spool_exec(s, "ROLLBACK");
        goto fail;
    }
    if ((rc = spool_exec(s, "COMMIT")) < 0)
        goto fail;
    for (int i = 0; i < ST_MAX; i++) {
        rc = sqlite3_prepare_v3(s->db, spool_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            rc = spool_fail(s, spool_sql[i], rc);
            goto fail;
        }
    }
    /* After the statements, which it uses; the lock keeps every other
     * writer away, so it need not share the migration's transaction. */
    if ((rc = spool_load(s)) < 0)
        goto fail;
    if ((rc = spool_query_int(s, "PRAGMA page_size", &page_size)) < 0)
        goto fail;
    s->page_size = page_size > 0 ? (uint64_t)page_size : 4096;
    sqlite3_wal_hook(s->db, spool_wal_hook, s);
    (void)chmod(s->path, 0600);
    log_debug("spool %s: epoch %016" PRIx64 ", %" PRIu64 " events (%" PRIu64
              " bytes) from seq %" PRIu64,
              s->path, s->epoch, s->depth, s->bytes, s->first_seq);
    *out = s;
    return 0;
fail:
    if (rc == -EBUSY)
        log_warnx("spool %s is locked: is another tocsin-agent using "
                  "this state_dir?",
                  s->path);
    spool_free(s);
    return rc;
}

void
spool_free(struct spool *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < ST_MAX; i++)
        sqlite3_finalize(s->st[i]);
    /* First: the last connection to close checkpoints and removes the
     * WAL, and that should be the loop's. */
    spool_ckpt_close(s);
    if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
        log_warnx("spool %s: close: %s", s->path, sqlite3_errmsg(s->db));
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    tc_buf_close(&s->enc);
    tc_buf_close(&s->woffs);
    spool_chunk_close(&s->rd);
    free(s->path);
    free(s);
}

uint64_t
spool_epoch(const struct spool *s)
{
    return s->epoch;
}

static int
spool_put_file(struct spool *s, const char *path, const struct spool_file *p)
{
    sqlite3_stmt *st = s->st[ST_FILE_PUT];

    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)p->dev);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)p->ino);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)p->head_hash);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)p->head_len);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)p->offset);
    return spool_run(s, ST_FILE_PUT);
}

/* Start building a transaction's chunks; seqs from s->next_seq. */
static void
spool_chunk_begin(struct spool *s)
{
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    s->wfirst = s->next_seq;
}

/*
 * Add one event with the next seq to the chunk being built, or count it
 * as dropped; a full chunk is written first. Updates the in-memory
 * counters; the caller restores them if the transaction fails.
 */
static int
spool_add(struct spool *s, const struct tc_event *ev, uint64_t *dropped)
{
    struct tc_event e = *ev;
    size_t before, len;
    int rc;

    if (tc_buf_size(&s->enc) >= SPOOL_CHUNK_BYTES) {
        if ((rc = spool_chunk_put(s, s->st[ST_CHUNK_PUT], 0)) < 0)
            return rc;
        s->wfirst = s->next_seq;
    }
    if (s->next_seq >= TC_SEQ_MAX) {
        /* Cannot happen but after a renumbering to the very top of the
         * range (common/seq.h); wrapping would collide, so drop. */
        if (!s->seq_logged)
            log_warnx("spool %s: no seq left below %" PRIu64 ": dropping "
                      "new events",
                      s->path, TC_SEQ_MAX);
        s->seq_logged = 1;
        (*dropped)++;
        return 0;
    }
    e.seq = s->next_seq;
    before = tc_buf_size(&s->enc);
    /* Encoded in place, after the chunk's other events: no copy, and
     * no allocation once the buffer has grown to a pass's size. */
    if ((rc = tc_event_encode_cached(&s->enc, &e, &s->enc_cache)) < 0) {
        /* Cannot happen for lines under the wire's string limit; if it
         * does, retrying would wedge the file, so count it instead. */
        log_warnx("spool: cannot encode an event from %.*s: %s",
                  (int)e.source.len, e.source.ptr, strerror(-rc));
        (*dropped)++;
        return 0;
    }
    len = tc_buf_size(&s->enc) - before;
    if (s->bytes + len > s->max_bytes) {
        if (!s->full_logged) {
            log_warnx("spool %s is full (%" PRIu64 " bytes, max_bytes %" PRIu64
                      "): dropping new events until the collector "
                      "catches up",
                      s->path, s->bytes, s->max_bytes);
            s->full_logged = 1;
        }
        /* Take the event back out; tc_buf has no call for that, and
         * wire.c's encoder rolls back the same way. */
        s->enc.len = s->enc.off + before;
        (*dropped)++;
        return 0;
    }
    if ((rc = spool_chunk_mark(s)) < 0) {
        /* woffs holds 4 bytes for each event of at least 4 in enc, so
         * it cannot hit the cap that enc did not. */
        s->enc.len = s->enc.off + before;
        return rc;
    }
    if (s->depth == 0)
        s->first_seq = e.seq;
    s->next_seq++;
    s->depth++;
    s->bytes += len;
    return 0;
}

static int
spool_put_cursor(struct spool *s, const char *key, const char *cursor)
{
    sqlite3_stmt *st = s->st[ST_CURSOR_PUT];

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cursor, -1, SQLITE_STATIC);
    return spool_run(s, ST_CURSOR_PUT);
}

static int
spool_put_state(struct spool *s, const struct spool_state *p)
{
    sqlite3_stmt *st = s->st[ST_STATE_PUT];

    sqlite3_bind_text(st, 1, p->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)p->count);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)p->aux);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)p->first_ts);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)p->last_ts);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)p->due_ts);
    if (p->body != NULL)
        sqlite3_bind_blob(st, 7, p->body, (int)p->body_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 7);
    return spool_run(s, ST_STATE_PUT);
}

static int
spool_del_state(struct spool *s, const char *key)
{
    sqlite3_stmt *st = s->st[ST_STATE_DEL];

    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return spool_run(s, ST_STATE_DEL);
}

/*
 * Copy the whole WAL into the database and truncate it, giving its
 * space back to the filesystem; loop thread, not while a worker
 * checkpoint runs (it would wait for it). 0 or a negative errno.
 */
static int
spool_reclaim(struct spool *s)
{
    int rc;

    if (s->ckpt_running)
        return -EBUSY;
    rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE,
                                   NULL, NULL);
    if (rc != SQLITE_OK)
        return spool_errno(rc);
    s->wal_frames = 0;
    s->ckpt_at = 0;
    return 0;
}

/* Free bytes on the state_dir filesystem and its size; 0 or -errno. */
static int
spool_fs_room(const struct spool *s, uint64_t *avail, uint64_t *total)
{
    struct statvfs v;

    if (statvfs(s->path, &v) < 0)
        return -errno;
    *avail = (uint64_t)v.f_bavail * v.f_frsize;
    *total = (uint64_t)v.f_blocks * v.f_frsize;
    return 0;
}

/*
 * Inside the commit's transaction, before COMMIT: is there room for
 * what it writes and for the checkpoint after it (see
 * SPOOL_ROOM_RESERVE)? added: event body bytes it adds; pages0: the
 * database's page count before it. 0, or -ENOSPC to refuse it.
 */
static int
spool_room(struct spool *s, uint64_t added, int64_t pages0)
{
    uint64_t avail, total, wal, pend, reserve;
    int64_t pages;
    struct stat st;

    if (spool_fs_room(s, &avail, &total) < 0)
        return 0;
    if (spool_query_int(s, "PRAGMA page_count", &pages) < 0 ||
        stat(s->path, &st) < 0)
        return 0; /* cannot tell: let SQLite find out */
    /* What the WAL needs, and what the database file must still grow by
     * before the WAL can be truncated (this commit and older ones). */
    wal = added + SPOOL_ROOM_PAGES * (s->page_size + 24);
    pend = (uint64_t)pages * s->page_size > (uint64_t)st.st_size
               ? (uint64_t)pages * s->page_size - (uint64_t)st.st_size
               : 0;
    reserve = total / 4 < SPOOL_ROOM_RESERVE ? total / 4 : SPOOL_ROOM_RESERVE;
    if (pages <= pages0)
        reserve = SPOOL_ROOM_PAGES * s->page_size; /* reuses free pages */
    if (avail >= wal + pend + reserve)
        return 0;
    return -ENOSPC;
}

int
spool_commit(struct spool *s, const struct spool_batch *b)
{
    uint64_t next = s->next_seq, first = s->first_seq, depth = s->depth;
    uint64_t bytes = s->bytes, dropped = 0;
    int64_t pages0 = 0;
    uint64_t avail = UINT64_MAX, total;
    int rc, tries = 0, low;

    if (b->nevs == 0 && b->path == NULL && b->cursor_key == NULL &&
        b->nput == 0 && b->ndel == 0)
        return 0;
    s->busy++;
again:
    dropped = 0;
    /* One statvfs a commit; the rest only when the disk runs short. */
    low = b->nevs > 0 && spool_fs_room(s, &avail, &total) == 0 &&
          avail < SPOOL_ROOM_CHECK;
    if ((rc = spool_begin(s)) < 0)
        goto fail;
    if (low && (rc = spool_query_int(s, "PRAGMA page_count", &pages0)) < 0)
        goto fail;
    spool_chunk_begin(s);
    for (size_t i = 0; i < b->nevs; i++)
        if ((rc = spool_add(s, &b->evs[i], &dropped)) < 0)
            goto fail;
    if ((rc = spool_chunk_put(s, s->st[ST_CHUNK_PUT], 1)) < 0)
        goto fail;
    if (s->next_seq != next &&
        (rc = spool_meta_set(s, "next_seq", s->next_seq)) < 0)
        goto fail;
    if (dropped > 0 &&
        (rc = spool_meta_set(s, "drops_full", s->drops + dropped)) < 0)
        goto fail;
    if (b->path != NULL && (rc = spool_put_file(s, b->path, b->pos)) < 0)
        goto fail;
    if (b->cursor_key != NULL &&
        (rc = spool_put_cursor(s, b->cursor_key, b->cursor)) < 0)
        goto fail;
    /* Deletes first: a key may be closed and opened again in one batch,
     * and then its new row must be what remains. */
    for (size_t i = 0; i < b->ndel; i++)
        if ((rc = spool_del_state(s, b->del[i])) < 0)
            goto fail;
    for (size_t i = 0; i < b->nput; i++)
        if ((rc = spool_put_state(s, &b->put[i])) < 0)
            goto fail;
    if (low && (rc = spool_room(s, s->bytes - bytes, pages0)) < 0)
        goto fail;
    if ((rc = spool_end(s)) < 0)
        goto fail;
    spool_chunk_keep(s);
    s->drops += dropped;
    return 0;
fail:
    spool_rollback(s);
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    s->next_seq = next;
    s->first_seq = first;
    s->depth = depth;
    s->bytes = bytes;
    /*
     * No room (refused above, or SQLite met a full disk): give the WAL's
     * space back and try once more; else the caller keeps its lines and
     * offsets and retries later, and nothing is lost.
     */
    if (rc == -ENOSPC) {
        s->room_short = 1;
        if (tries++ == 0 && s->wal_frames > 0 && spool_reclaim(s) == 0)
            goto again;
    }
    return rc;
}

int
spool_append(struct spool *s, const struct tc_event *evs, size_t n,
             const char *path, const struct spool_file *pos)
{
    struct spool_batch b;

    memset(&b, 0, sizeof(b));
    b.evs = evs;
    b.nevs = n;
    b.path = path;
    b.pos = pos;
    return spool_commit(s, &b);
}

int
spool_cursor_get(struct spool *s, const char *key, char **out)
{
    sqlite3_stmt *st = s->st[ST_CURSOR_GET];
    int rc;

    *out = NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = tc_xstrdup((const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = spool_fail(s, "cursor get", rc);
    }
    sqlite3_reset(st);
    return rc;
}

int
spool_state_load(struct spool *s,
                 int (*cb)(void *arg, const struct spool_state *st), void *arg)
{
    sqlite3_stmt *st = s->st[ST_STATE_ALL];
    int n = 0, rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct spool_state ps;
        int crc;

        ps.key = (const char *)sqlite3_column_text(st, 0);
        ps.count = (uint64_t)sqlite3_column_int64(st, 1);
        ps.aux = (uint64_t)sqlite3_column_int64(st, 2);
        ps.first_ts = sqlite3_column_int64(st, 3);
        ps.last_ts = sqlite3_column_int64(st, 4);
        ps.due_ts = sqlite3_column_int64(st, 5);
        ps.body = sqlite3_column_blob(st, 6);
        ps.body_len = (size_t)sqlite3_column_bytes(st, 6);
        if ((crc = cb(arg, &ps)) < 0) {
            sqlite3_reset(st);
            return crc;
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return spool_fail(s, "pending state", rc);
    return n;
}

int
spool_read_from(struct spool *s, uint64_t from, uint32_t max_n,
                size_t max_bytes,
                int (*cb)(void *arg, uint64_t seq, const uint8_t *body,
                          size_t len),
                void *arg)
{
    uint64_t seq = from < s->first_seq ? s->first_seq : from;
    size_t total = 0;
    int n = 0, rc;

    s->busy++;
    if (max_n > INT32_MAX)
        max_n = INT32_MAX;
    while ((uint32_t)n < max_n && seq < s->next_seq) {
        const uint8_t *offs, *body;
        uint64_t i;

        if ((rc = spool_chunk_get(s, seq)) < 0)
            return rc;
        offs = tc_buf_head(&s->rd.offs);
        body = tc_buf_head(&s->rd.body);
        for (i = seq - s->rd.first; i < s->rd.n && (uint32_t)n < max_n;
             i++, seq++) {
            size_t start = i > 0 ? spool_end_at(offs, i - 1) : 0;
            size_t len = spool_end_at(offs, i) - start;
            int crc;

            if (n > 0 && total + len > max_bytes)
                return n;
            /* body points into s->rd: cb must not call back into the
             * spool, which could replace the chunk under it. */
            if ((crc = cb(arg, seq, body + start, len)) < 0)
                return crc;
            total += len;
            n++;
        }
    }
    return n;
}

int
spool_ack(struct spool *s, uint64_t upto)
{
    sqlite3_stmt *sum = s->st[ST_ACK_BYTES];
    uint64_t gone = 0, head = 0;
    int rc, tries = 0;

    if (s->depth == 0 || upto < s->first_seq)
        return 0;
    if (upto >= s->next_seq)
        upto = s->next_seq - 1;
    s->busy++;
again:
    gone = head = 0;
    if ((rc = spool_begin(s)) < 0)
        goto fail;
    sqlite3_bind_int64(sum, 1, (sqlite3_int64)upto);
    if ((rc = sqlite3_step(sum)) == SQLITE_ROW)
        gone = (uint64_t)sqlite3_column_int64(sum, 0);
    sqlite3_reset(sum);
    if (rc != SQLITE_ROW) {
        rc = spool_fail(s, "ack", rc);
        goto fail;
    }
    sqlite3_bind_int64(s->st[ST_ACK], 1, (sqlite3_int64)upto);
    if ((rc = spool_run(s, ST_ACK)) < 0)
        goto fail;
    /* What remains of a chunk acked in part, for load after a restart. */
    if ((rc = spool_meta_set(s, "acked", upto)) < 0)
        goto fail;
    if (upto + 1 < s->next_seq &&
        (rc = spool_prefix_bytes(s, upto + 1, &head)) < 0)
        goto fail;
    if ((rc = spool_end(s)) < 0)
        goto fail;
    /* bytes was (sum of chunk bytes) - head_acked; chunks worth gone
     * left the sum, and the new first chunk's acked part is head. */
    s->bytes = s->bytes + s->head_acked - gone - head;
    s->head_acked = head;
    s->depth -= upto + 1 - s->first_seq;
    s->first_seq = s->depth > 0 ? upto + 1 : s->next_seq;
    if (s->full_logged && s->bytes < s->max_bytes / 2)
        s->full_logged = 0;
    /* Drained after the disk was short: give the WAL's space back now,
     * so that the tail, which retries on its own, finds room. */
    if (s->depth == 0 && s->room_short && spool_reclaim(s) == 0) {
        uint64_t avail = 0, total = 0;

        (void)spool_fs_room(s, &avail, &total);
        log_info("spool %s: drained after running out of disk space; WAL "
                 "truncated, %" PRIu64 " KiB free",
                 s->path, avail >> 10);
        s->room_short = 0;
    }
    return 0;
fail:
    spool_rollback(s);
    /* Acks are what frees the spool: if the disk is full, give the WAL
     * back (it is copied into the database first) and try once more. */
    if (rc == -ENOSPC && tries++ == 0) {
        s->room_short = 1;
        if (spool_reclaim(s) == 0)
            goto again;
    }
    return rc;
}

/*
 * Give the unacked events of the chunk now in s->rd their seq plus
 * shift: the seq lives in the row and in each encoded body, which is
 * what the collector reads, so the bodies are decoded and encoded
 * again. The acked events at the head of the first chunk are left out.
 * *bytes accumulates the new body bytes.
 */
static int
spool_move(struct spool *s, uint64_t shift, uint64_t *bytes)
{
    sqlite3_stmt *mv = s->st[ST_MOVE];
    const uint8_t *offs = tc_buf_head(&s->rd.offs);
    const uint8_t *body = tc_buf_head(&s->rd.body);
    uint64_t skip = 0, n;
    int rc = 0;

    if (s->first_seq > s->rd.first)
        skip = s->first_seq - s->rd.first;
    spool_chunk_begin(s);
    s->wfirst = s->rd.first + skip + shift;
    for (uint64_t i = skip; i < s->rd.n && rc == 0; i++) {
        size_t start = i > 0 ? spool_end_at(offs, i - 1) : 0;
        struct tc_frame f;
        struct tc_event ev;
        const char *why = NULL;

        tc_frame_init(&f);
        rc = tc_event_decode(body + start, spool_end_at(offs, i) - start,
                             &tc_wire_default_limits, &f, &ev, &why);
        if (rc == 0) {
            ev.seq = s->rd.first + i + shift;
            if ((rc = tc_event_encode(&s->enc, &ev)) == 0)
                rc = spool_chunk_mark(s);
        } else {
            log_warnx("spool %s: event %" PRIu64 " is corrupt: %s", s->path,
                      s->rd.first + i, why ? why : strerror(-rc));
        }
        tc_frame_close(&f);
    }
    if (rc < 0)
        return rc;
    n = s->rd.n - skip;
    *bytes += tc_buf_size(&s->enc);
    sqlite3_bind_int64(mv, 1, (sqlite3_int64)s->rd.first);
    sqlite3_bind_int64(mv, 2, (sqlite3_int64)s->wfirst);
    sqlite3_bind_int64(mv, 3, (sqlite3_int64)(s->wfirst + n - 1));
    sqlite3_bind_int64(mv, 4, (sqlite3_int64)n);
    sqlite3_bind_int64(mv, 5, (sqlite3_int64)tc_buf_size(&s->enc));
    sqlite3_bind_blob(mv, 6, tc_buf_head(&s->woffs),
                      (int)tc_buf_size(&s->woffs), SQLITE_STATIC);
    sqlite3_bind_blob(mv, 7, tc_buf_head(&s->enc), (int)tc_buf_size(&s->enc),
                      SQLITE_STATIC);
    rc = spool_run(s, ST_MOVE);
    sqlite3_clear_bindings(mv);
    return rc;
}

int
spool_renumber(struct spool *s, uint64_t hwm)
{
    uint64_t shift = 0, next, first, bytes = 0;
    int rc;

    if (s->depth > 0 && s->first_seq <= hwm)
        shift = hwm + 1 - s->first_seq;
    if (shift == 0 && s->next_seq > hwm)
        return 0;
    /*
     * The events will be hwm + 1 .. hwm + depth, and next_seq after
     * them: refused rather than wrapped when that passes the top of the
     * seq range (a mark pushed there by a stolen key, say), or the seqs
     * would start again at 0 and collide in the spool.
     */
    if (tc_seq_after(hwm, s->depth, &first) < 0)
        return -ERANGE;
    next = first + s->depth;
    if ((rc = spool_begin(s)) < 0)
        return rc;
    /*
     * Highest chunk first, so that a new seq_first never lands on a row
     * that has not moved yet. This is slow for a big spool (every event
     * is decoded and encoded again), but it happens once, when the
     * spool meets a collector that lost track of it.
     */
    for (uint64_t seq = s->next_seq - 1; shift > 0 && seq >= s->first_seq;
         seq = s->rd.first - 1)
        if ((rc = spool_chunk_get(s, seq)) < 0 ||
            (rc = spool_move(s, shift, &bytes)) < 0)
            goto fail;
    /* The copy in s->rd has the old seqs. */
    s->rd.first = s->rd.n = 0;
    if ((rc = spool_meta_set(s, "next_seq", next)) < 0 ||
        (rc = spool_end(s)) < 0)
        goto fail;
    if (shift > 0)
        log_info("spool: renumbered %" PRIu64 " events by %" PRIu64
                 " after the collector's seq %" PRIu64,
                 s->depth, shift, hwm);
    log_debug("spool: next seq %" PRIu64 " (collector's seq %" PRIu64 ")", next,
              hwm);
    s->first_seq = s->depth > 0 ? s->first_seq + shift : next;
    s->next_seq = next;
    if (shift > 0) {
        /* The acked head of the first chunk was left behind. */
        s->bytes = bytes;
        s->head_acked = 0;
    }
    /* The new numbers are not on disk until the next sync. */
    s->synced_seq = 0;
    s->sync_gen++;
    return 0;
fail:
    s->rd.first = s->rd.n = 0;
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    spool_rollback(s);
    return rc;
}

int
spool_report_drops(struct spool *s, const char *host)
{
    uint64_t next = s->next_seq, first = s->first_seq, depth = s->depth;
    uint64_t bytes = s->bytes, max = s->max_bytes, dropped = 0;
    struct tc_event ev;
    char msg[128];
    int rc;

    if (s->drops == 0)
        return 0;
    snprintf(msg, sizeof(msg),
             "dropped %" PRIu64 " events: spool full (max_bytes %" PRIu64 ")",
             s->drops, s->max_bytes);
    memset(&ev, 0, sizeof(ev));
    ev.ts = tc_now_ns();
    ev.host = tc_str_c(host);
    ev.kind = tc_str_c("agent");
    ev.source = tc_str_c("spool");
    ev.rule = tc_str_c("spool-full");
    ev.sev = TC_SEV_WARNING;
    ev.state = -1;
    ev.message = tc_str_c(msg);
    ev.count = 1;
    if ((rc = spool_begin(s)) < 0)
        return rc;
    spool_chunk_begin(s);
    /* The report must get through even while the spool is still full:
     * it is small, and it is the reason the bound exists. */
    s->max_bytes = UINT64_MAX;
    rc = spool_add(s, &ev, &dropped);
    s->max_bytes = max;
    if (rc < 0 || (rc = spool_chunk_put(s, s->st[ST_CHUNK_PUT], 0)) < 0 ||
        (rc = spool_meta_set(s, "next_seq", s->next_seq)) < 0 ||
        (rc = spool_meta_set(s, "drops_full", 0)) < 0 ||
        (rc = spool_end(s)) < 0)
        goto fail;
    log_warnx("spool: %s", msg);
    s->drops = 0;
    return 0;
fail:
    spool_rollback(s);
    tc_buf_reset(&s->enc);
    tc_buf_reset(&s->woffs);
    s->next_seq = next;
    s->first_seq = first;
    s->depth = depth;
    s->bytes = bytes;
    return rc;
}

int
spool_sync(struct spool *s)
{
    sqlite3_file *wal = NULL;
    int rc;

    if (s->synced_seq >= s->next_seq)
        return 0;
    /*
     * Syncing the WAL is enough (see the top of this file). This used
     * to be a passive checkpoint: it synced too, but also copied every
     * page written since the last one into the database, and at one
     * sync every 20 ms in ship-all mode that copy was a fifth of the
     * agent's CPU. The automatic checkpoint (every 1000 pages) still
     * bounds the WAL, and copies a page reused by later chunks once.
     * The WAL's file handle is SQLite's own, so its locks are not
     * disturbed; the first sync of a new WAL also syncs its directory.
     */
    rc =
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
    if (rc == SQLITE_OK && wal != NULL && wal->pMethods != NULL) {
        rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
        if (rc != SQLITE_OK)
            return spool_fail(s, "sync", rc);
    } else {
        /* No WAL open (nothing written since open): a checkpoint makes
         * what is in the database file durable. */
        rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE,
                                       NULL, NULL);
        if (rc != SQLITE_OK)
            return spool_fail(s, "checkpoint", rc);
    }
    s->synced_seq = s->next_seq;
    return 0;
}

uint64_t
spool_sync_begin(struct spool *s, struct spool_sync_req *r)
{
    const char *slash;

    if (s->synced_seq >= s->next_seq)
        return 0;
    snprintf(r->wal, sizeof(r->wal), "%s-wal", s->path);
    r->dir[0] = '\0';
    if (!s->dir_synced && (slash = strrchr(s->path, '/')) != NULL)
        snprintf(r->dir, sizeof(r->dir), "%.*s", (int)(slash - s->path),
                 s->path);
    r->upto = s->next_seq;
    r->gen = s->sync_gen;
    return r->upto;
}

/*
 * Our own descriptor on the WAL: fdatasync through any descriptor
 * flushes what SQLite wrote through its own. SQLite keeps no POSIX
 * locks on the WAL (they live on -shm), so closing ours releases
 * nothing of its. A checkpoint may reset the WAL meanwhile; then what
 * it held is in the database, which the checkpoint synced.
 */
int
spool_sync_run(const struct spool_sync_req *r)
{
    int fd, rc = 0;

    if ((fd = open(r->wal, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    if (fdatasync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && r->dir[0] != '\0') {
        /* SQLite syncs the directory of a new WAL only on its own
         * first sync of it, which synchronous=NORMAL never asks for. */
        if ((fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            return -errno;
        if (fsync(fd) < 0)
            rc = -errno;
        close(fd);
    }
    return rc;
}

void
spool_sync_end(struct spool *s, const struct spool_sync_req *r, int rc)
{
    if (rc < 0) {
        log_warnx("spool %s: sync: %s", s->path, strerror(-rc));
        return;
    }
    if (r->dir[0] != '\0')
        s->dir_synced = 1;
    if (r->gen == s->sync_gen && r->upto > s->synced_seq)
        s->synced_seq = r->upto;
}

int
spool_trim(struct spool *s)
{
    int idle = s->busy == s->busy_trimmed;

    if (idle) {
        /* enc and woffs are empty between commits; rd is a copy. */
        tc_buf_close(&s->enc);
        tc_buf_init(&s->enc, SPOOL_CHUNK_MAX);
        tc_buf_close(&s->woffs);
        tc_buf_init(&s->woffs, SPOOL_CHUNK_MAX);
        spool_chunk_close(&s->rd);
        spool_chunk_init(&s->rd);
        if (!s->ckpt_running)
            spool_ckpt_close(s);
        /* And the pages SQLite cached for the burst. */
        sqlite3_db_release_memory(s->db);
    }
    s->ckpt_failed = 0; /* try to open it again, at most once a call */
    s->busy_trimmed = s->busy;
    return idle;
}

int
spool_checkpoint_begin(struct spool *s, struct spool_ckpt_req *r)
{
    if (s->ckpt_running || s->wal_frames <= s->ckpt_at ||
        s->wal_frames * s->page_size < SPOOL_CKPT_BYTES)
        return 0;
    /* Without it, the WAL hook's own checkpoint still bounds the WAL. */
    if (s->ck == NULL && (s->ckpt_failed || spool_ckpt_open(s) < 0)) {
        s->ckpt_failed = 1;
        return 0;
    }
    memset(r, 0, sizeof(*r));
    r->ck = s->ck;
    s->ckpt_running = 1;
    return 1;
}

void
spool_checkpoint_run(struct spool_ckpt_req *r)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(r->ck->db, "main",
                                       SQLITE_CHECKPOINT_PASSIVE, &log, &done);

    r->rc = rc == SQLITE_OK ? 0 : spool_errno(rc);
    if (rc != SQLITE_OK)
        snprintf(r->err, sizeof(r->err), "%s", sqlite3_errmsg(r->ck->db));
    r->frames = log > 0 ? (uint64_t)log : 0;
    r->copied = done > 0 ? (uint64_t)done : 0;
}

void
spool_checkpoint_end(struct spool *s, const struct spool_ckpt_req *r)
{
    s->ckpt_running = 0;
    /* Busy: another checkpoint (sqlite3(1)) was running; try later. */
    if (r->rc < 0 && r->rc != -EBUSY)
        log_warnx("spool %s: checkpoint: %s", s->path, r->err);
    /* Frames appended while it ran are not copied yet: due again once
     * the WAL has grown past what it saw. */
    if (r->rc == 0 && r->frames <= s->wal_frames)
        s->ckpt_at = r->frames;
}

int
spool_is_synced(const struct spool *s, uint64_t upto)
{
    return upto <= s->synced_seq;
}

uint64_t
spool_synced_seq(const struct spool *s)
{
    return s->synced_seq;
}

uint64_t
spool_depth(const struct spool *s)
{
    return s->depth;
}

uint64_t
spool_bytes(const struct spool *s)
{
    return s->bytes;
}

uint64_t
spool_first_seq(const struct spool *s)
{
    return s->first_seq;
}

uint64_t
spool_next_seq(const struct spool *s)
{
    return s->next_seq;
}

uint64_t
spool_drops(const struct spool *s)
{
    return s->drops;
}

int
spool_file_get(struct spool *s, const char *path, struct spool_file *out)
{
    sqlite3_stmt *st = s->st[ST_FILE_GET];
    int rc;

    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->dev = (uint64_t)sqlite3_column_int64(st, 0);
        out->ino = (uint64_t)sqlite3_column_int64(st, 1);
        out->head_hash = (uint64_t)sqlite3_column_int64(st, 2);
        out->head_len = (uint32_t)sqlite3_column_int64(st, 3);
        out->offset = (uint64_t)sqlite3_column_int64(st, 4);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = spool_fail(s, "file get", rc);
    }
    sqlite3_reset(st);
    return rc;
}

int
spool_file_put(struct spool *s, const char *path, const struct spool_file *pos)
{
    return spool_append(s, NULL, 0, path, pos);
}

int
spool_files_put(struct spool *s, const char *const *keys,
                const struct spool_file *rows, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    s->busy++;
    if ((rc = spool_begin(s)) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((rc = spool_put_file(s, keys[i], &rows[i])) < 0)
            goto fail;
    if ((rc = spool_end(s)) < 0)
        goto fail;
    return 0;
fail:
    spool_rollback(s);
    return rc;
}

uint64_t
spool_head_hash(const void *p, size_t n)
{
    return tc_hash64(p, n);
}
