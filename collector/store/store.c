/*
 * store: the event log in SQLite (see store.h, docs/internals/store.md),
 * the migrator of the whole file, and the WAL maintenance policy.
 *
 * Schema migrations are keyed on PRAGMA user_version: each module lists
 * its own steps (struct store_migration), and each step runs in its own
 * IMMEDIATE transaction and re-reads the version inside it, so two
 * processes opening a fresh file cannot both apply a step.
 */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "perms.h"
#include "store/sqlerr.h"
#include "store/store_int.h"
#include "util.h"

/*
 * WAL size that starts a background checkpoint (store.h, "WAL
 * maintenance"); STORE_WAL_KEEP_SQL (store_int.h) is twice this.
 */
#define STORE_CKPT_BYTES (16 << 20)
/*
 * A WAL that has stayed over STORE_CKPT_BYTES this long has not been
 * checkpointed completely, which with our scheme means a reader holds
 * an old snapshot; say so, at most once a minute, since the WAL grows
 * without bound meanwhile (issue 9).
 */
#define CKPT_STUCK_NS (30 * 1000000000LL)
#define CKPT_STUCK_LOG_NS (60 * 1000000000LL)
/* Background passes that chase the commits before the inline one. */
#define CKPT_MAX_PASSES 4

struct store {
    sqlite3 *db;             /* owned */
    char *path;              /* owned copy, for messages */
    int flags;               /* STORE_* given to store_open */
    sqlite3_stmt *begin;     /* BEGIN IMMEDIATE; owned */
    sqlite3_stmt *commit;    /* COMMIT; owned */
    sqlite3_stmt *ins_batch; /* INSERT INTO batches; owned */
    sqlite3_stmt *up_agent;  /* agents upsert (hwm); owned */
    sqlite3_stmt *up_state;  /* agents upsert (link state); owned */
    char errmsg[256];        /* message behind the last error */
    struct store_stats st;   /* counters; written by store_commit */
    pthread_mutex_t writer;  /* store_writer (store_int.h) */
    sqlite3 *ckpt;           /* checkpoint connection; owned, or NULL */
    int wal_pages;           /* WAL frames not copied, last commit */
    int wal_frames;          /* frames in the WAL after the last commit */
    int ckpt_inline;         /* set by store_commit_prepare for the next
                                commit (which runs on a worker) */
    int ckpt_pages;          /* STORE_CKPT_BYTES in pages */
    int page;                /* page size, bytes */
    /* Maintenance policy, loop thread only (store.h): */
    int ckpt_finish;        /* the next commit copies the rest inline */
    unsigned ckpt_passes;   /* background passes in this round */
    unsigned ckpt_failures; /* consecutive failed passes */
    int64_t wal_big_since;  /* mono ns the WAL went over STORE_CKPT_BYTES;
                               0 = it is not */
    int64_t wal_stuck_log;  /* mono ns of the last "cannot complete"
                               warning; 0 = none since */
    /* Written by store_maintain (threadpool), read after it: */
    int ckpt_rc;        /* 0 or a negative errno */
    int ckpt_left;      /* frames the last pass could not copy */
    char ckpt_msg[256]; /* SQLite's message when ckpt_rc < 0 */
};

/* Replaces SQLite's automatic checkpoint on the pipeline connection. */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct store *s = arg;

    (void)db;
    (void)name;
    s->wal_pages = pages;
    s->wal_frames = pages;
    return SQLITE_OK;
}

/*
 * Version 1. One row per accepted batch; the index lets a per-host
 * lookup (replay, "events of host X") avoid a full scan.
 */
static const char schema_v1[] =
    "CREATE TABLE agents("
    " name TEXT PRIMARY KEY,"
    " epoch INTEGER,"
    " hwm INTEGER NOT NULL,"
    " first_seen INTEGER,"
    " last_seen INTEGER,"
    " software TEXT);"
    "CREATE TABLE batches("
    " id INTEGER PRIMARY KEY,"
    " host TEXT NOT NULL,"
    " seq_first INTEGER NOT NULL,"
    " seq_last INTEGER NOT NULL,"
    " n INTEGER NOT NULL,"
    " ts_min INTEGER,"
    " ts_max INTEGER,"
    " events BLOB NOT NULL);"
    "CREATE INDEX batches_host_seq ON batches(host, seq_first);";

/*
 * Version 2. The agents' link state, so that `tocsinctl agents list`
 * can show it and silence detection survives a restart; and the origin
 * of a batch, so that events the collector writes about an agent (host
 * = the agent's name, their own seq space) are never mistaken for the
 * agent's. last_seen and software already exist since version 1.
 */
static const char schema_v2[] =
    "ALTER TABLE agents ADD COLUMN connected INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN address TEXT;"
    "ALTER TABLE agents ADD COLUMN spool_depth INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN spool_bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN heartbeat_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN silent_since INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN collector_seq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE batches ADD COLUMN origin TEXT NOT NULL DEFAULT 'agent';";

/* The event log's steps; the engine state's are in incidents_store.c. */
static const struct store_migration log_migrations[] = {
    {1, schema_v1},
    {2, schema_v2},
};

/* The step that reaches version v, whichever module owns it; NULL if
 * none does (a build error, caught by the unit tests). */
static const char *
migration(int v)
{
    for (size_t i = 0; i < sizeof(log_migrations) / sizeof(log_migrations[0]);
         i++)
        if (log_migrations[i].version == v)
            return log_migrations[i].sql;
    for (size_t i = 0; i < incidents_nmigrations; i++)
        if (incidents_migrations[i].version == v)
            return incidents_migrations[i].sql;
    return NULL;
}

/* Remember the connection's current error message; return errno form. */
static int
fail(struct store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_sqlfail(rc);
}

static int
exec(struct store *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static int
user_version(struct store *s, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = fail(s, rc);
        sqlite3_finalize(st);
        return rc;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int
migrate(struct store *s)
{
    char sql[64];
    int v, rc;

    if ((rc = user_version(s, &v)) < 0)
        return rc;
    if (v > STORE_SCHEMA_VERSION) {
        log_warnx("store %s: schema version %d is newer than this "
                  "program's (%d)",
                  s->path, v, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    while (v < STORE_SCHEMA_VERSION) {
        if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
            return rc;
        /* Another process may have migrated while we waited. */
        if ((rc = user_version(s, &v)) < 0)
            goto rollback;
        if (v >= STORE_SCHEMA_VERSION) {
            rc = exec(s, "COMMIT");
            break;
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (migration(v + 1) == NULL) {
            snprintf(s->errmsg, sizeof(s->errmsg), "no migration step");
            rc = -EPROTO;
            goto rollback;
        }
        if ((rc = exec(s, migration(v + 1))) < 0 || (rc = exec(s, sql)) < 0)
            goto rollback;
        if ((rc = exec(s, "COMMIT")) < 0)
            goto rollback;
        log_debug("store %s: schema migrated to version %d", s->path, v + 1);
        v++;
    }
    return rc;
rollback:
    log_warnx("store %s: migration to version %d failed: %s", s->path, v + 1,
              s->errmsg);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int
prepare(struct store *s, const char *sql, sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                                NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static int
prepare_writer(struct store *s)
{
    int rc;

    if ((rc = prepare(s, "BEGIN IMMEDIATE", &s->begin)) < 0 ||
        (rc = prepare(s, "COMMIT", &s->commit)) < 0 ||
        (rc = prepare(s,
                      "INSERT INTO batches(host, seq_first, seq_last, n,"
                      " ts_min, ts_max, events, origin)"
                      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                      &s->ins_batch)) < 0 ||
        (rc = prepare(s,
                      "INSERT INTO agents(name, epoch, hwm, first_seen,"
                      " last_seen, software) VALUES(?1,?2,?3,?4,?4,?5)"
                      " ON CONFLICT(name) DO UPDATE SET"
                      " epoch = excluded.epoch, hwm = max(hwm, excluded.hwm),"
                      " last_seen = max(coalesce(last_seen, 0),"
                      " excluded.last_seen),"
                      " software = coalesce(excluded.software, software)",
                      &s->up_agent)) < 0 ||
        (rc = prepare(s,
                      "INSERT INTO agents(name, hwm, first_seen, last_seen,"
                      " software, connected, address, spool_depth,"
                      " spool_bytes, heartbeat_ms, silent_since,"
                      " collector_seq)"
                      " VALUES(?1,0,?2,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                      " ON CONFLICT(name) DO UPDATE SET"
                      " last_seen = max(coalesce(last_seen, 0),"
                      " excluded.last_seen),"
                      " software = coalesce(excluded.software, software),"
                      " connected = excluded.connected,"
                      " address = coalesce(excluded.address, address),"
                      " spool_depth = excluded.spool_depth,"
                      " spool_bytes = excluded.spool_bytes,"
                      " heartbeat_ms = excluded.heartbeat_ms,"
                      " silent_since = excluded.silent_since,"
                      " collector_seq = max(collector_seq,"
                      " excluded.collector_seq)",
                      &s->up_state)) < 0)
        return rc;
    return 0;
}

/*
 * The directory that holds path: created, or checked and tightened, as
 * a private directory (tc_perms_dir); and the database files an older
 * version left readable to others tightened. Every event of every agent
 * is in there. A path without a directory (the working directory) is
 * left as it is.
 */
static int
store_private(const char *path)
{
    const char *slash = strrchr(path, '/');
    char why[512];
    char *dir;
    int rc = 0;

    if (slash != NULL && slash != path) {
        dir = tc_xstrndup(path, (size_t)(slash - path));
        rc = tc_perms_dir(dir, why, sizeof(why));
        free(dir);
    }
    if (rc == 0)
        rc = tc_perms_tighten_db(path, why, sizeof(why));
    if (rc < 0)
        log_warnx("store %s: %s", path, why);
    return rc;
}

int
store_open(const char *path, int flags, struct store **out)
{
    struct store *s;
    int oflags, rc, v;

    *out = NULL;
    s = tc_xcalloc(1, sizeof(*s));
    s->path = tc_xstrdup(path);
    s->flags = flags;
    pthread_mutex_init(&s->writer, NULL);

    if (flags & STORE_RDONLY) {
        /* Do not let SQLite create an empty file for a typo'd path. */
        if (access(path, F_OK) < 0) {
            rc = -errno;
            log_warnx("store %s: %s", path, strerror(errno));
            goto fail;
        }
        oflags = SQLITE_OPEN_READONLY;
    } else {
        if ((rc = store_private(path)) < 0)
            goto fail;
        oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    }
    /* One thread at a time by contract, so SQLite's mutexes are waste. */
    oflags |= SQLITE_OPEN_NOMUTEX;
    rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        rc = s->db ? fail(s, rc) : -ENOMEM;
        log_warnx("store %s: cannot open: %s", path,
                  s->db ? s->errmsg : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

    if (flags & STORE_RDONLY) {
        if ((rc = user_version(s, &v)) < 0) {
            log_warnx("store %s: %s", path, s->errmsg);
            goto fail;
        }
        if (v != STORE_SCHEMA_VERSION) {
            log_warnx("store %s: schema version %d, expected %d%s", path, v,
                      STORE_SCHEMA_VERSION,
                      v == 0 ? " (the collector has not initialised it)" : "");
            rc = v == 0 ? -ENOENT : -EPROTO;
            goto fail;
        }
        *out = s;
        return 0;
    }

    /*
     * WAL: readers (tocsinctl, the API) never block the writer, and a
     * commit is one sequential append plus one fsync. FULL also syncs
     * the WAL at every commit, which is what "acked means durable"
     * needs across power loss; NORMAL only survives process crashes.
     * page_size (new stores only; it must precede WAL): a batch's blob
     * lives in overflow pages, and SQLite writes each page to the WAL
     * with two syscalls, copies it again at the checkpoint and reads it
     * back for the incident engine; the store is mostly such blobs.
     * 16 KiB pages cut those calls by 4 against the default 4 KiB, and
     * 64 KiB (SQLite's largest) by 4 again: in ship-all mode the
     * collector used about a fifth less CPU than with 16 KiB. A small
     * commit (a PING's state, an incident step) writes a few pages,
     * 64 KiB each; that is affordable on the one central machine,
     * unlike on every agent (the spool keeps 16 KiB).
     */
    if ((rc = exec(s, "PRAGMA page_size = 65536")) < 0 ||
        (rc = exec(s, "PRAGMA journal_mode = WAL")) < 0 ||
        (rc = exec(s, (flags & STORE_SYNC_NORMAL)
                          ? "PRAGMA synchronous = NORMAL"
                          : "PRAGMA synchronous = FULL")) < 0) {
        log_warnx("store %s: %s", path, s->errmsg);
        goto fail;
    }
    if ((rc = migrate(s)) < 0)
        goto fail;
    /*
     * Once a checkpoint has copied the whole WAL, the next commit starts
     * it again from the beginning but SQLite keeps the file at its
     * largest size unless told otherwise: a reader that once pinned the
     * WAL (issue 9: 864 MB) left it that size for good. With this limit
     * the first commit of a fresh WAL cuts the file back to
     * STORE_WAL_KEEP_SQL bytes when it is larger.
     */
    if ((rc = exec(s, "PRAGMA journal_size_limit = " STORE_WAL_KEEP_SQL)) < 0) {
        log_warnx("store %s: %s", path, s->errmsg);
        goto fail;
    }
    if ((rc = prepare_writer(s)) < 0) {
        log_warnx("store %s: %s", path, s->errmsg);
        goto fail;
    }
    sqlite3_wal_hook(s->db, wal_hook, s);
    {
        sqlite3_stmt *ps = NULL;
        int page = 4096;

        if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &ps, NULL) ==
                SQLITE_OK &&
            sqlite3_step(ps) == SQLITE_ROW)
            page = sqlite3_column_int(ps, 0);
        sqlite3_finalize(ps);
        s->page = page > 0 ? page : 4096;
        s->ckpt_pages = STORE_CKPT_BYTES / s->page;
    }
    if (sqlite3_open_v2(path, &s->ckpt,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = -ENOMEM;
        log_warnx("store %s: checkpoint connection: %s", path,
                  s->ckpt ? sqlite3_errmsg(s->ckpt) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->ckpt, STORE_BUSY_TIMEOUT_MS);
    /*
     * A connection learns that the file is in WAL mode (and opens the
     * WAL) only with its first read transaction; until then
     * sqlite3_wal_checkpoint_v2 returns SQLITE_OK having done nothing
     * (log and done -1), so every background pass was a no-op and the
     * inline finish copied the whole WAL inside a commit.
     */
    if (sqlite3_exec(s->ckpt, "SELECT count(*) FROM sqlite_schema", NULL, NULL,
                     NULL) != SQLITE_OK) {
        rc = -EIO;
        log_warnx("store %s: checkpoint connection: %s", path,
                  sqlite3_errmsg(s->ckpt));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->ins_batch);
    sqlite3_finalize(s->up_agent);
    sqlite3_finalize(s->up_state);
    sqlite3_close(s->ckpt);
    /* The last connection to close also checkpoints and removes the WAL. */
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->writer);
    free(s->path);
    free(s);
}

pthread_mutex_t *
store_writer(struct store *s)
{
    return &s->writer;
}

const char *
store_path(const struct store *s)
{
    return s->path;
}

/* Bytes in the WAL after the last commit, copied back or not. */
static uint64_t
wal_bytes(const struct store *s)
{
    return (uint64_t)(s->wal_frames > 0 ? s->wal_frames : 0) *
           (uint64_t)s->page;
}

void
store_commit_prepare(struct store *s)
{
    /* Handed over here, not in store_maintain_done: a commit may be in
     * flight then, and the connection is its thread's. */
    if (s->ckpt_finish) {
        s->ckpt_inline = 1;
        s->ckpt_finish = 0;
    }
}

/* Complain, rate-limited, when no checkpoint has been able to complete
 * for a while. */
static void
check_wal(struct store *s)
{
    uint64_t bytes = wal_bytes(s);
    int64_t now = tc_mono_ns();

    if (bytes < STORE_CKPT_BYTES) {
        if (s->wal_stuck_log != 0)
            log_info("store: WAL checkpoint complete again after %" PRId64 " s",
                     (now - s->wal_big_since) / 1000000000);
        s->wal_big_since = 0;
        s->wal_stuck_log = 0;
        return;
    }
    if (s->wal_big_since == 0) {
        s->wal_big_since = now;
        return;
    }
    if (now - s->wal_big_since < CKPT_STUCK_NS ||
        (s->wal_stuck_log != 0 && now - s->wal_stuck_log < CKPT_STUCK_LOG_NS))
        return;
    s->wal_stuck_log = now;
    log_warnx("store: WAL checkpoint cannot complete for %" PRId64
              " s, WAL is %" PRIu64
              " MiB and growing: a reader holds an old snapshot of the"
              " store (a long tocsinctl, sqlite3 or backup read)",
              (now - s->wal_big_since) / 1000000000, bytes >> 20);
}

int
store_after_commit(struct store *s)
{
    int due =
        s->ckpt != NULL && s->wal_pages >= s->ckpt_pages && !s->ckpt_finish;

    check_wal(s);
    return due;
}

void
store_maintain(struct store *s)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);

    s->ckpt_left = log > done ? log - done : 0;
    s->ckpt_rc = 0;
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        snprintf(s->ckpt_msg, sizeof(s->ckpt_msg), "%s",
                 sqlite3_errmsg(s->ckpt));
        s->ckpt_rc = store_sqlfail(rc);
    }
}

int
store_maintain_done(struct store *s)
{
    if (s->ckpt_rc < 0) {
        if (s->ckpt_failures++ == 0)
            log_warnx("store: checkpoint failed: %s (will retry)", s->ckpt_msg);
        return 0;
    }
    s->ckpt_failures = 0;
    /*
     * What commits appended during the pass is left: chase it in the
     * background while it is big, then let the next commit copy the
     * rest, so that the WAL can start again.
     */
    if (s->ckpt_left > s->ckpt_pages / 4 && ++s->ckpt_passes < CKPT_MAX_PASSES)
        return 1;
    s->ckpt_passes = 0;
    s->ckpt_finish = 1;
    return 0;
}

const char *
store_errmsg(const struct store *s)
{
    return s->errmsg;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int
store_load_agents(struct store *s,
                  int (*cb)(const struct store_agent *a, void *arg), void *arg)
{
    sqlite3_stmt *st = NULL;
    struct store_agent a;
    int rc;

    rc = sqlite3_prepare_v2(s->db,
                            "SELECT name, epoch, hwm, first_seen, last_seen,"
                            " software, connected, address, spool_depth,"
                            " spool_bytes, heartbeat_ms, silent_since,"
                            " collector_seq FROM agents ORDER BY name",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&a, 0, sizeof(a));
        a.name = col_text(st, 0);
        if (a.name == NULL)
            continue; /* cannot happen with the PRIMARY KEY; be safe */
        a.has_epoch = sqlite3_column_type(st, 1) != SQLITE_NULL;
        a.epoch = (uint64_t)sqlite3_column_int64(st, 1);
        a.hwm = (uint64_t)sqlite3_column_int64(st, 2);
        a.first_seen = sqlite3_column_int64(st, 3);
        a.last_seen = sqlite3_column_int64(st, 4);
        a.software = col_text(st, 5);
        a.connected = sqlite3_column_int(st, 6) != 0;
        a.address = col_text(st, 7);
        a.spool_depth = (uint64_t)sqlite3_column_int64(st, 8);
        a.spool_bytes = (uint64_t)sqlite3_column_int64(st, 9);
        a.heartbeat_ms = (uint64_t)sqlite3_column_int64(st, 10);
        a.silent_since = sqlite3_column_int64(st, 11);
        a.collector_seq = (uint64_t)sqlite3_column_int64(st, 12);
        if ((rc = cb(&a, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Run a prepared statement that returns no rows, then reset it. */
static int
step_done(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        rc = fail(s, rc);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return 0;
}

int
store_commit(struct store *s, const struct store_txn *t)
{
    int64_t t0 = tc_mono_ns();
    uint64_t events = 0, bytes = 0;
    int rc;

    if (s->flags & STORE_RDONLY)
        return -EROFS;
    pthread_mutex_lock(&s->writer);
    if ((rc = step_done(s, s->begin)) < 0)
        goto fail;
    for (size_t i = 0; i < t->nbatches; i++) {
        const struct store_batch *b = &t->batches[i];
        sqlite3_stmt *st = s->ins_batch;

        /*
         * SQLITE_STATIC: the caller keeps the bytes alive for the whole
         * call, so SQLite need not copy a blob it writes once.
         */
        sqlite3_bind_text(st, 1, b->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)b->seq_first);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)b->seq_last);
        sqlite3_bind_int64(st, 4, b->n);
        sqlite3_bind_int64(st, 5, b->ts_min);
        sqlite3_bind_int64(st, 6, b->ts_max);
        sqlite3_bind_blob64(st, 7, b->events, b->events_len, SQLITE_STATIC);
        sqlite3_bind_text(
            st, 8, b->origin == STORE_ORIGIN_COLLECTOR ? "collector" : "agent",
            -1, SQLITE_STATIC);
        if ((rc = step_done(s, st)) < 0)
            goto fail;
        events += b->n;
        bytes += b->events_len;
    }
    for (size_t i = 0; i < t->nagents; i++) {
        const struct store_agent_update *a = &t->agents[i];
        sqlite3_stmt *st = s->up_agent;

        sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)a->epoch);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)a->hwm);
        sqlite3_bind_int64(st, 4, a->last_seen);
        if (a->software)
            sqlite3_bind_text(st, 5, a->software, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        if ((rc = step_done(s, st)) < 0)
            goto fail;
    }
    for (size_t i = 0; i < t->nstates; i++) {
        const struct store_agent_state *a = &t->states[i];
        sqlite3_stmt *st = s->up_state;

        sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, a->last_seen);
        if (a->software)
            sqlite3_bind_text(st, 3, a->software, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int(st, 4, a->connected ? 1 : 0);
        if (a->address)
            sqlite3_bind_text(st, 5, a->address, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)a->spool_depth);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)a->spool_bytes);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)a->heartbeat_ms);
        sqlite3_bind_int64(st, 9, a->silent_since);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)a->collector_seq);
        if ((rc = step_done(s, st)) < 0)
            goto fail;
    }
    if ((rc = step_done(s, s->commit)) < 0)
        goto fail;
    if (s->ckpt_inline || s->wal_pages >= 8 * s->ckpt_pages) {
        /* Finish what the background passes left (store.h), or bound
         * the WAL if they fell behind. An error here is not the
         * commit's: the next pass retries. */
        int log = 0, done = 0;

        s->ckpt_inline = 0;
        if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                      &log, &done) == SQLITE_OK)
            s->wal_pages = log - done;
    }
    pthread_mutex_unlock(&s->writer);
    s->st.commits++;
    s->st.batches += t->nbatches;
    s->st.events += events;
    s->st.bytes += bytes;
    s->st.last_commit_ns = tc_mono_ns() - t0;
    s->st.wal_bytes = wal_bytes(s);
    return 0;
fail:
    /*
     * SQLite rolls back by itself on some errors (SQLITE_FULL may, an
     * I/O error does), not on others (a busy COMMIT keeps the
     * transaction open). Leave no transaction behind either way, so a
     * retry starts clean.
     */
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&s->writer);
    s->st.commit_errors++;
    return rc;
}

/*
 * store_events_iter reads this much per read transaction, then calls
 * back with no transaction open (at least one batch per chunk).
 */
#define ITER_CHUNK_BATCHES 64
#define ITER_CHUNK_BYTES (4u << 20)

/* One batch copied out of a chunk's read transaction. */
struct iter_row {
    struct store_batch b; /* host and events point into mem */
    uint8_t *mem;         /* owned: host NUL, then the blob */
};

/*
 * The window of store_events_iter, in one short read transaction:
 * the first batch id and how many of its events to skip (last > 0), and
 * the newest batch id, which bounds the walk to this snapshot.
 */
static int
iter_window(struct store *s, const char *host, uint64_t last, int64_t *from_id,
            uint64_t *skip, int64_t *to_id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *from_id = 0;
    *skip = 0;
    *to_id = 0;
    if ((rc = exec(s, "BEGIN")) < 0)
        return rc;
    rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM batches",
                            -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = fail(s, rc);
        goto out;
    }
    *to_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    rc = 0;
    if (last > 0) {
        /*
         * Walk back from the newest batch until `last` events are
         * covered; only (id, n) is read, never a blob, so this stays
         * cheap and nothing is held in memory.
         */
        uint64_t sum = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, n FROM batches WHERE"
                                " (?1 IS NULL OR host = ?1) ORDER BY id DESC",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
            rc = fail(s, rc);
            goto out;
        }
        if (host)
            sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            *from_id = sqlite3_column_int64(st, 0);
            sum += (uint64_t)sqlite3_column_int64(st, 1);
            if (sum >= last) {
                *skip = sum - last;
                break;
            }
        }
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(s, rc);
    }
out:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* One row of the batches table (column order of LOG_COLS) into b. */
#define LOG_COLS                                                               \
    "id, host, seq_first, seq_last, n, ts_min, ts_max, events, origin"

static void
row_batch(sqlite3_stmt *st, struct store_batch *b)
{
    const char *h = col_text(st, 1), *o = col_text(st, 8);

    memset(b, 0, sizeof(*b));
    b->id = sqlite3_column_int64(st, 0);
    b->host = h ? h : "";
    b->seq_first = (uint64_t)sqlite3_column_int64(st, 2);
    b->seq_last = (uint64_t)sqlite3_column_int64(st, 3);
    b->n = (uint32_t)sqlite3_column_int64(st, 4);
    b->ts_min = sqlite3_column_int64(st, 5);
    b->ts_max = sqlite3_column_int64(st, 6);
    b->events = sqlite3_column_blob(st, 7);
    b->events_len = (size_t)sqlite3_column_bytes(st, 7);
    b->origin = o != NULL && strcmp(o, "collector") == 0
                    ? STORE_ORIGIN_COLLECTOR
                    : STORE_ORIGIN_AGENT;
}

/*
 * Copy the batches with id in [from, to] (of host, if given) into rows,
 * at most ITER_CHUNK_BATCHES and about ITER_CHUNK_BYTES, in one read
 * transaction that ends before this returns. *n: rows filled.
 */
static int
iter_chunk(struct store *s, const char *host, int64_t from, int64_t to,
           struct iter_row *rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t bytes = 0;
    int rc;

    *n = 0;
    if ((rc = exec(s, "BEGIN")) < 0)
        return rc;
    /* "?1 IS NULL OR": keeps the scan in rowid (arrival) order. */
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT " LOG_COLS " FROM batches WHERE"
                            " (?1 IS NULL OR host = ?1) AND id >= ?2"
                            " AND id <= ?3 ORDER BY id LIMIT ?4",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(s, rc);
        goto out;
    }
    if (host)
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int(st, 4, ITER_CHUNK_BATCHES);
    while (bytes < ITER_CHUNK_BYTES && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct iter_row *r = &rows[*n];
        size_t hlen, blen;

        /* Copied out: the caller calls back with no transaction open. */
        row_batch(st, &r->b);
        hlen = strlen(r->b.host);
        blen = r->b.events_len;
        r->mem = tc_xmalloc(hlen + 1 + blen + 1);
        memcpy(r->mem, r->b.host, hlen + 1);
        if (blen > 0)
            memcpy(r->mem + hlen + 1, r->b.events, blen);
        r->b.host = (const char *)r->mem;
        r->b.events = r->mem + hlen + 1;
        (*n)++;
        bytes += blen;
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/*
 * No read transaction stays open while cb runs: the caller may write to
 * a pipe nobody reads (tocsinctl events list | less), and an open read
 * transaction would keep every checkpoint from completing and let the
 * WAL grow without bound (issue 9). So the walk copies a chunk of
 * batches in a short read transaction, ends it, then calls back. The
 * result is still the listing of one snapshot, that of iter_window:
 * batches are only ever appended (never updated or deleted) and a new
 * one gets a larger id than every batch committed before it, so the
 * batches with id <= the newest id seen then are exactly that
 * snapshot's, whatever commits during the walk.
 */
int
store_events_iter(struct store *s, const char *host, uint64_t last,
                  int (*cb)(const struct store_batch *b, uint32_t skip,
                            void *arg),
                  void *arg)
{
    struct iter_row *rows = tc_xcalloc(ITER_CHUNK_BATCHES, sizeof(*rows));
    int64_t from_id, to_id;
    uint64_t skip;
    size_t n = 0;
    int rc;

    if ((rc = iter_window(s, host, last, &from_id, &skip, &to_id)) < 0)
        goto out;
    while (from_id <= to_id) {
        if ((rc = iter_chunk(s, host, from_id, to_id, rows, &n)) < 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const struct store_batch *b = &rows[i].b;

            rc = cb(b, (uint32_t)(skip < b->n ? skip : b->n), arg);
            skip = 0;
            if (rc != 0)
                goto out;
        }
        from_id = rows[n - 1].b.id + 1;
        for (size_t i = 0; i < n; i++)
            free(rows[i].mem);
        n = 0;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(rows[i].mem);
    free(rows);
    return rc;
}

/*
 * Newest first, for a page of events: the statement stops as soon as cb
 * has its page (at most limit + 1 events, so a few batches), and the
 * scan stays in rowid order ("?1 IS NULL OR"), as in iter_chunk.
 */
int
store_events_back(struct store *s, const char *host, int64_t upto,
                  int (*cb)(const struct store_batch *b, void *arg), void *arg)
{
    sqlite3_stmt *st = NULL;
    struct store_batch b;
    int rc;

    rc = sqlite3_prepare_v2(s->db,
                            "SELECT " LOG_COLS " FROM batches WHERE"
                            " (?1 IS NULL OR host = ?1) AND id <= ?2"
                            " ORDER BY id DESC",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc);
    if (host)
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, upto > 0 ? upto : INT64_MAX);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_batch(st, &b);
        if ((rc = cb(&b, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

/*
 * rowid order is commit order (store.md): ids are assigned inside the
 * write transaction, under the writer lock, by the one writer of this
 * table, so "id > after" misses nothing that commits later. One
 * statement, one read snapshot; LIMIT max + 1 tells whether more
 * remain without reading them.
 */
int
store_log_read(struct store *s, int64_t after, int64_t upto, uint32_t max,
               int (*cb)(const struct store_batch *b, void *arg), void *arg,
               int64_t *last, int *more)
{
    sqlite3_stmt *st = NULL;
    struct store_batch b;
    uint32_t n = 0;
    int rc;

    *last = after;
    *more = 0;
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT " LOG_COLS " FROM batches WHERE id > ?1"
                            " AND id <= ?2 ORDER BY id LIMIT ?3",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(s, rc);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, upto);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == max) {
            *more = 1;
            break;
        }
        n++;
        row_batch(st, &b);
        *last = b.id;
        if ((rc = cb(&b, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
store_agents_disconnected(struct store *s)
{
    if (s->flags & STORE_RDONLY)
        return -EROFS;
    return exec(s, "UPDATE agents SET connected = 0 WHERE connected != 0");
}

void
store_stats(const struct store *s, struct store_stats *out)
{
    *out = s->st;
}
