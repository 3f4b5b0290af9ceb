/*
 * test_store: the collector's SQLite store. Schema creation, commits of
 * batches with agent high-water marks, durability across reopen, the
 * event walk (host filter, last-N window), read-only opens, and a
 * failing commit that must report an error and lose nothing that was
 * committed before it.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log.h"
#include "store/store.h"
#include "testutil.h"
#include "util.h"

struct fixture {
    char dir[64];   /* mkdtemp directory */
    char path[128]; /* store file, two directories below dir */
};

static int
setup(void **state)
{
    struct fixture *f = tc_xcalloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* Parent directories do not exist yet: store_open creates them. */
    snprintf(f->path, sizeof(f->path), "%s/state/sub/collector.db", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char *cmd = tc_xasprintf("rm -rf '%s'", f->dir);

    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

/* A batch whose blob is recognisable bytes (the store does not parse). */
static struct store_batch
mkbatch(const char *host, uint64_t first, uint32_t n, const char *blob)
{
    struct store_batch b = {
        .host = host,
        .seq_first = first,
        .seq_last = first + n - 1,
        .n = n,
        .ts_min = (int64_t)first * 1000,
        .ts_max = (int64_t)(first + n - 1) * 1000,
        .events = (const uint8_t *)blob,
        .events_len = strlen(blob),
    };
    return b;
}

struct seen_agent {
    char name[32];
    uint64_t epoch, hwm;
    int64_t first_seen, last_seen;
    char software[64];
};

struct agents_acc {
    struct seen_agent a[8];
    int n;
};

static int
agent_cb(const struct store_agent *a, void *arg)
{
    struct agents_acc *acc = arg;
    struct seen_agent *s;

    assert_true(acc->n < 8);
    s = &acc->a[acc->n++];
    snprintf(s->name, sizeof(s->name), "%s", a->name);
    s->epoch = a->epoch;
    s->hwm = a->hwm;
    s->first_seen = a->first_seen;
    s->last_seen = a->last_seen;
    snprintf(s->software, sizeof(s->software), "%s",
             a->software ? a->software : "(null)");
    return 0;
}

struct walk {
    int64_t ids[32];
    char hosts[32][16];
    char blobs[32][32];
    uint32_t skips[32];
    uint64_t seq_first[32];
    enum store_origin origins[32];
    int n;
};

static int
walk_cb(const struct store_batch *b, uint32_t skip, void *arg)
{
    struct walk *w = arg;

    assert_true(w->n < 32);
    w->ids[w->n] = b->id;
    snprintf(w->hosts[w->n], sizeof(w->hosts[0]), "%s", b->host);
    snprintf(w->blobs[w->n], sizeof(w->blobs[0]), "%.*s", (int)b->events_len,
             (const char *)b->events);
    w->skips[w->n] = skip;
    w->seq_first[w->n] = b->seq_first;
    w->origins[w->n] = b->origin;
    w->n++;
    return 0;
}

static void
commit_two_agents(struct store *s)
{
    struct store_batch b[3] = {
        mkbatch("web1", 1, 3, "web1:1-3"),
        mkbatch("db1", 10, 2, "db1:10-11"),
        mkbatch("web1", 4, 2, "web1:4-5"),
    };
    struct store_agent_update a[2] = {
        {.name = "web1",
         .epoch = 0xfeedfacecafebeefULL,
         .hwm = 5,
         .last_seen = 111,
         .software = "tocsin-agent 0.1.0"},
        {.name = "db1",
         .epoch = 7,
         .hwm = 11,
         .last_seen = 222,
         .software = NULL},
    };
    struct store_txn t = {b, 3, a, 2, NULL, 0};

    assert_int_equal(store_commit(s, &t), 0);
}

static void
test_schema(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    sqlite3 *db;
    sqlite3_stmt *st;
    int n = 0;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    store_close(s);

    /* Inspect the file with plain SQLite, not through the module. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_schema WHERE name IN"
                           " ('agents', 'batches', 'batches_host_seq')",
                           -1, &st, NULL),
        SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        n++;
    sqlite3_finalize(st);
    assert_int_equal(n, 3);
    sqlite3_close(db);

    /* Reopening an up-to-date store migrates nothing and succeeds. */
    assert_int_equal(store_open(f->path, STORE_SYNC_NORMAL, &s), 0);
    store_close(s);
}

static void
test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    sqlite3 *db;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    store_close(s);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->path, 0, &s), -EPROTO);
    assert_null(s);
}

static void
test_commit_reopen(void **state)
{
    struct fixture *f = *state;
    struct agents_acc acc = {0};
    struct store_stats st;
    struct store *s;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);
    store_stats(s, &st);
    assert_int_equal(st.commits, 1);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.events, 7);
    store_close(s);

    /* Durability: a fresh connection sees the agents and their hwm. */
    assert_int_equal(store_open(f->path, 0, &s), 0);
    assert_int_equal(store_load_agents(s, agent_cb, &acc), 0);
    assert_int_equal(acc.n, 2);
    /* Ordered by name. */
    assert_string_equal(acc.a[0].name, "db1");
    assert_int_equal(acc.a[0].hwm, 11);
    assert_int_equal(acc.a[0].epoch, 7);
    assert_string_equal(acc.a[0].software, "(null)");
    assert_string_equal(acc.a[1].name, "web1");
    assert_int_equal(acc.a[1].hwm, 5);
    /* A 64-bit epoch survives the signed INTEGER column. */
    assert_true(acc.a[1].epoch == 0xfeedfacecafebeefULL);
    assert_int_equal(acc.a[1].first_seen, 111);
    assert_string_equal(acc.a[1].software, "tocsin-agent 0.1.0");

    /* An update moves hwm/last_seen, keeps first_seen and software. */
    {
        struct store_batch b = mkbatch("web1", 6, 1, "web1:6");
        struct store_agent_update a = {.name = "web1",
                                       .epoch = 0xfeedfacecafebeefULL,
                                       .hwm = 6,
                                       .last_seen = 333};
        struct store_txn t = {&b, 1, &a, 1, NULL, 0};

        assert_int_equal(store_commit(s, &t), 0);
    }
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(store_load_agents(s, agent_cb, &acc), 0);
    assert_int_equal(acc.a[1].hwm, 6);
    assert_int_equal(acc.a[1].first_seen, 111);
    assert_int_equal(acc.a[1].last_seen, 333);
    assert_string_equal(acc.a[1].software, "tocsin-agent 0.1.0");

    /* A new epoch is recorded; the stored hwm never moves backwards. */
    {
        struct store_agent_update a = {
            .name = "web1", .epoch = 9, .hwm = 3, .last_seen = 444};
        struct store_txn t = {NULL, 0, &a, 1, NULL, 0};

        assert_int_equal(store_commit(s, &t), 0);
    }
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(store_load_agents(s, agent_cb, &acc), 0);
    assert_int_equal(acc.a[1].epoch, 9);
    assert_int_equal(acc.a[1].hwm, 6);
    store_close(s);
}

static void
test_events_iter(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    struct walk w;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);

    /* All hosts, arrival order. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, NULL, 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.blobs[0], "web1:1-3");
    assert_string_equal(w.blobs[1], "db1:10-11");
    assert_string_equal(w.blobs[2], "web1:4-5");
    assert_true(w.ids[0] < w.ids[1] && w.ids[1] < w.ids[2]);
    assert_int_equal(w.skips[0], 0);

    /* Host filter. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, "web1", 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.hosts[0], "web1");
    assert_string_equal(w.hosts[1], "web1");
    assert_int_equal(w.seq_first[1], 4);

    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, "nosuch", 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 0);

    /* Last 3 of all: db1's 2 events need 1 more, from the last batch. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, NULL, 3, walk_cb, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.blobs[0], "db1:10-11");
    assert_int_equal(w.skips[0], 1);
    assert_int_equal(w.skips[1], 0);

    /* Last 4 of web1: 2 of the first batch (skip 1), then all of 4-5. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, "web1", 4, walk_cb, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.blobs[0], "web1:1-3");
    assert_int_equal(w.skips[0], 1);

    /* More than stored: everything, nothing skipped. */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, NULL, 1000, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.skips[0], 0);

    store_close(s);
}

static int
stop_cb(const struct store_batch *b, uint32_t skip, void *arg)
{
    int *calls = arg;
    (*calls)++;
    return 42;
}

static void
test_iter_stop(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    int calls = 0;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);
    assert_int_equal(store_events_iter(s, NULL, 0, stop_cb, &calls), 42);
    assert_int_equal(calls, 1);
    store_close(s);
}

static int
back_cb(const struct store_batch *b, void *arg)
{
    return walk_cb(b, 0, arg);
}

static int
back_stop_cb(const struct store_batch *b, void *arg)
{
    return stop_cb(b, 0, arg);
}

/* store_events_back: newest first, host filter, from a batch, stop. */
static void
test_events_back(void **state)
{
    struct fixture *f = *state;
    struct store *s, *ro;
    struct walk w;
    int calls = 0;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);
    assert_int_equal(store_open(f->path, STORE_RDONLY, &ro), 0);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_back(ro, NULL, 0, back_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.blobs[0], "web1:4-5");
    assert_string_equal(w.blobs[1], "db1:10-11");
    assert_string_equal(w.blobs[2], "web1:1-3");
    assert_true(w.ids[0] > w.ids[1] && w.ids[1] > w.ids[2]);

    /* From the middle batch down (the cursor's batch included). */
    {
        int64_t mid = w.ids[1];

        memset(&w, 0, sizeof(w));
        assert_int_equal(store_events_back(ro, NULL, mid, back_cb, &w), 0);
        assert_int_equal(w.n, 2);
        assert_string_equal(w.blobs[0], "db1:10-11");
        memset(&w, 0, sizeof(w));
        assert_int_equal(store_events_back(ro, "web1", mid, back_cb, &w), 0);
        assert_int_equal(w.n, 1);
        assert_string_equal(w.blobs[0], "web1:1-3");
    }
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_back(ro, "web1", 0, back_cb, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.blobs[0], "web1:4-5");
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_back(ro, "nosuch", 0, back_cb, &w), 0);
    assert_int_equal(w.n, 0);
    /* A non-zero return stops the walk and is returned. */
    assert_int_equal(store_events_back(ro, NULL, 0, back_stop_cb, &calls), 42);
    assert_int_equal(calls, 1);
    store_close(ro);
    store_close(s);
}

static void
test_readonly(void **state)
{
    struct fixture *f = *state;
    struct store *s, *ro;
    struct walk w = {0};
    struct store_batch b = mkbatch("x", 1, 1, "x");
    struct store_txn t = {&b, 1, NULL, 0, NULL, 0};
    struct stat sb;

    /* A missing store is an error, and no file is created. */
    assert_int_equal(store_open(f->path, STORE_RDONLY, &ro), -ENOENT);
    assert_null(ro);
    assert_int_equal(stat(f->path, &sb), -1);

    /* The writer stays open, as the running collector would be. */
    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);
    assert_int_equal(store_open(f->path, STORE_RDONLY, &ro), 0);
    assert_int_equal(store_events_iter(ro, NULL, 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(store_commit(ro, &t), -EROFS);
    store_close(ro);
    store_close(s);

    /* And with no writer around (the collector stopped). */
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_open(f->path, STORE_RDONLY, &ro), 0);
    assert_int_equal(store_events_iter(ro, "db1", 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 1);
    store_close(ro);
}

static void
test_commit_error(void **state)
{
    struct fixture *f = *state;
    static char big[256 * 1024];
    struct store_batch b;
    struct store_agent_update a = {
        .name = "web1", .epoch = 1, .hwm = 1000, .last_seen = 1};
    struct store_txn t = {&b, 1, &a, 1, NULL, 0};
    struct agents_acc acc = {0};
    struct rlimit old, lim;
    struct store_stats st;
    struct store *s;
    struct walk w = {0};
    int rc;

    assert_int_equal(store_open(f->path, 0, &s), 0);
    commit_two_agents(s);

    /*
     * Cap the size of any file this process writes, so the WAL cannot
     * grow by another 256 KiB: the commit fails like on a full disk
     * (SQLite reports the short write as an I/O or disk-full error).
     */
    memset(big, 'z', sizeof(big) - 1);
    b = mkbatch("web1", 6, 995, big);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 128 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = store_commit(s, &t);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(rc == -EIO || rc == -ENOSPC);
    assert_true(store_errmsg(s)[0] != '\0');
    store_stats(s, &st);
    assert_int_equal(st.commit_errors, 1);
    assert_int_equal(st.commits, 1);

    /* Nothing of the failed txn is visible; earlier rows are intact. */
    assert_int_equal(store_events_iter(s, NULL, 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(store_load_agents(s, agent_cb, &acc), 0);
    assert_int_equal(acc.a[1].hwm, 5);

    /* The same txn succeeds once there is room again. */
    assert_int_equal(store_commit(s, &t), 0);
    store_close(s);

    memset(&w, 0, sizeof(w));
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(store_open(f->path, 0, &s), 0);
    assert_int_equal(store_events_iter(s, NULL, 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 4);
    assert_int_equal(store_load_agents(s, agent_cb, &acc), 0);
    assert_int_equal(acc.a[1].hwm, 1000);
    store_close(s);
}

/*
 * A version 1 store, as the previous release created it (the SQL is
 * copied here on purpose: it must not follow later edits of store.c),
 * is migrated to the current schema with its rows intact.
 */
static const char v1_sql[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE agents(name TEXT PRIMARY KEY, epoch INTEGER,"
    " hwm INTEGER NOT NULL, first_seen INTEGER, last_seen INTEGER,"
    " software TEXT);"
    "CREATE TABLE batches(id INTEGER PRIMARY KEY, host TEXT NOT NULL,"
    " seq_first INTEGER NOT NULL, seq_last INTEGER NOT NULL,"
    " n INTEGER NOT NULL, ts_min INTEGER, ts_max INTEGER,"
    " events BLOB NOT NULL);"
    "CREATE INDEX batches_host_seq ON batches(host, seq_first);"
    "INSERT INTO agents VALUES('web1', 7, 42, 100, 200, 'tocsin-agent 0.0.9');"
    "INSERT INTO batches(host, seq_first, seq_last, n, ts_min, ts_max, events)"
    " VALUES('web1', 1, 42, 42, 1, 2, 'old-blob');"
    "PRAGMA user_version = 1;";

static int
full_agent_cb(const struct store_agent *a, void *arg)
{
    struct store_agent *out = arg;

    *out = *a;
    /* Strings die with the row: keep what the test looks at. */
    out->name = strcmp(a->name, "web1") == 0 ? "web1" : "?";
    out->software =
        a->software && strcmp(a->software, "tocsin-agent 0.0.9") == 0
            ? "tocsin-agent 0.0.9"
        : a->software ? "other"
                      : NULL;
    out->address = a->address && strcmp(a->address, "10.0.0.1:5555") == 0
                       ? "10.0.0.1:5555"
                   : a->address ? "other"
                                : NULL;
    return 0;
}

/* Commit one 64 KiB batch for agent "big" (seq i). */
static void
commit_big(struct store *s, uint64_t i, const char *blob)
{
    struct store_batch b = mkbatch("big", i, 1, blob);
    struct store_agent_update a = {.name = "big", .epoch = 1, .hwm = i};
    struct store_txn t = {&b, 1, &a, 1, NULL, 0};

    assert_int_equal(store_commit(s, &t), 0);
}

/*
 * WAL maintenance, driven as the pipeline drives it (store.h): no
 * automatic checkpoint inside a commit, so the WAL grows past SQLite's
 * default 1000 pages until store_after_commit asks for maintenance (at
 * 16 MiB); a background pass with no writer beside it copies
 * everything, so no chase is asked for and the next prepared commit
 * finishes inline; the commit after it starts the WAL again; nothing
 * committed is lost on the way.
 */
static void
test_checkpoint(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    struct store_stats ss;
    char *blob = tc_xmalloc(65536 + 1);
    struct walk w = {0};
    uint64_t i = 0;
    int due = 0;

    memset(blob, 'x', 65536);
    blob[65536] = '\0';
    assert_int_equal(store_open(f->path, STORE_SYNC_NORMAL, &s), 0);
    while (!due && i < 1000) {
        store_commit_prepare(s);
        commit_big(s, ++i, blob);
        due = store_after_commit(s);
    }
    assert_true(due);
    /* Not before 16 MiB of WAL. */
    assert_true(i > 10);
    store_stats(s, &ss);
    assert_true(ss.wal_bytes >= (16u << 20));
    store_maintain(s);
    assert_int_equal(store_maintain_done(s), 0);
    /* The finish is pending: no new pass while it is. */
    commit_big(s, ++i, blob);
    assert_int_equal(store_after_commit(s), 0);
    /* The prepared commit finishes inline... */
    store_commit_prepare(s);
    commit_big(s, ++i, blob);
    store_after_commit(s);
    /* ...and the next one writes at the start of a new WAL. */
    store_commit_prepare(s);
    commit_big(s, ++i, blob);
    assert_int_equal(store_after_commit(s), 0);
    store_stats(s, &ss);
    assert_true(ss.wal_bytes > 0 && ss.wal_bytes < 10 * 65536);
    store_close(s);
    /* Every batch is there, in order. */
    assert_int_equal(store_open(f->path, STORE_RDONLY, &s), 0);
    assert_int_equal(store_events_iter(s, "big", 3, walk_cb, &w), 0);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.seq_first[2], i);
    store_close(s);
    free(blob);
}

/*
 * The chase (store.h): while a pass leaves more than a quarter of the
 * threshold (here a reader pins an old snapshot, so nothing past it can
 * be copied), store_maintain_done asks for another pass, at most 4 in
 * all; then the finish is handed to the next commit and no pass is
 * asked for until it ran.
 */
static void
test_maintain_chase(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    char *blob = tc_xmalloc(65536 + 1);
    sqlite3 *reader;
    sqlite3_stmt *st;
    uint64_t i = 0;
    int due = 0, passes = 1;

    memset(blob, 'x', 65536);
    blob[65536] = '\0';
    assert_int_equal(store_open(f->path, STORE_SYNC_NORMAL, &s), 0);
    commit_big(s, ++i, blob);
    assert_int_equal(sqlite3_open(f->path, &reader), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(reader, "SELECT count(*) FROM batches",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    while (!due && i < 1000) {
        store_commit_prepare(s);
        commit_big(s, ++i, blob);
        due = store_after_commit(s);
    }
    assert_true(due);
    for (;;) {
        store_maintain(s);
        if (!store_maintain_done(s))
            break;
        passes++;
        assert_true(passes <= 4);
    }
    assert_int_equal(passes, 4);
    /* The finish is pending: no pass asked for however big the WAL. */
    commit_big(s, ++i, blob);
    assert_int_equal(store_after_commit(s), 0);
    sqlite3_finalize(st);
    sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(reader);
    store_close(s);
    free(blob);
}

/* A reader that commits more batches while it is called back. */
struct growing {
    struct store *writer; /* another connection, committing */
    sqlite3 *raw;         /* a third one, for the checkpoint */
    uint64_t next;        /* seq of the next batch it commits */
    uint64_t seen;        /* batches called back */
    uint64_t expect;      /* seq_first the next callback must have */
    int in_txn;           /* a callback ran inside a read transaction */
};

static int
growing_cb(const struct store_batch *b, uint32_t skip, void *arg)
{
    struct growing *g = arg;
    char blob[32];
    struct store_batch nb;
    struct store_agent_update a = {.name = "g", .epoch = 1};
    struct store_txn t = {&nb, 1, &a, 1, NULL, 0};

    (void)skip;
    assert_int_equal(b->seq_first, g->expect);
    g->expect++;
    g->seen++;
    /* Committing on another connection must not be held up, and what
     * it commits must not show up in this listing. */
    snprintf(blob, sizeof(blob), "late-%" PRIu64, g->next);
    nb = mkbatch("g", g->next, 1, blob);
    a.hwm = g->next++;
    assert_int_equal(store_commit(g->writer, &t), 0);
    /* A read transaction open during the callback would make a
     * TRUNCATE checkpoint busy (it needs every reader gone). */
    {
        sqlite3_stmt *st = NULL;

        assert_int_equal(sqlite3_prepare_v2(g->raw,
                                            "PRAGMA wal_checkpoint(TRUNCATE)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        if (sqlite3_column_int(st, 0) != 0)
            g->in_txn++;
        sqlite3_finalize(st);
    }
    return 0;
}

/*
 * store_events_iter reads in chunks (64 batches) with no transaction
 * open during the callbacks, and still lists one snapshot: the batches
 * committed when it started, in order, each once, whatever commits
 * while it runs.
 */
static void
test_iter_chunks_snapshot(void **state)
{
    struct fixture *f = *state;
    struct store *w, *r;
    struct growing g = {0};
    uint64_t n = 200;

    assert_int_equal(store_open(f->path, STORE_SYNC_NORMAL, &w), 0);
    for (uint64_t i = 1; i <= n; i++) {
        struct store_batch b = mkbatch("g", i, 1, "early");
        struct store_agent_update a = {.name = "g", .epoch = 1, .hwm = i};
        struct store_txn t = {&b, 1, &a, 1, NULL, 0};

        assert_int_equal(store_commit(w, &t), 0);
    }
    assert_int_equal(store_open(f->path, STORE_RDONLY, &r), 0);
    g.writer = w;
    assert_int_equal(sqlite3_open(f->path, &g.raw), SQLITE_OK);
    g.next = n + 1;
    g.expect = 1;
    assert_int_equal(store_events_iter(r, NULL, 0, growing_cb, &g), 0);
    assert_int_equal(g.seen, n);
    assert_int_equal(g.in_txn, 0);
    /* The last 70 events, across a chunk boundary, of a store that grew
     * to 400 batches meanwhile: 331..400, not what commits now. */
    g.expect = 2 * n - 69;
    g.seen = 0;
    assert_int_equal(store_events_iter(r, "g", 70, growing_cb, &g), 0);
    assert_int_equal(g.seen, 70);
    assert_int_equal(g.in_txn, 0);
    sqlite3_close(g.raw);
    store_close(r);
    store_close(w);
}

static void
test_migrate_v1(void **state)
{
    struct fixture *f = *state;
    struct store_agent a;
    struct store *s;
    struct walk w = {0};
    sqlite3 *db;
    char *dir = tc_xasprintf("%s/state/sub", f->dir);

    assert_int_equal(tc_mkdirs(dir, 0750), 0);
    free(dir);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* tocsinctl does not migrate: it refuses the old version. */
    assert_int_equal(store_open(f->path, STORE_RDONLY, &s), -EPROTO);

    assert_int_equal(store_open(f->path, 0, &s), 0);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_load_agents(s, full_agent_cb, &a), 0);
    assert_string_equal(a.name, "web1");
    assert_int_equal(a.epoch, 7);
    assert_int_equal(a.hwm, 42);
    assert_int_equal(a.first_seen, 100);
    assert_int_equal(a.last_seen, 200);
    assert_string_equal(a.software, "tocsin-agent 0.0.9");
    /* New columns start at their defaults. */
    assert_int_equal(a.connected, 0);
    assert_null(a.address);
    assert_int_equal(a.heartbeat_ms, 0);
    assert_int_equal(a.silent_since, 0);
    assert_int_equal(a.collector_seq, 0);
    assert_int_equal(store_events_iter(s, NULL, 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.blobs[0], "old-blob");

    /* The migrated store takes link state and collector batches. */
    {
        struct store_batch b = mkbatch("web1", 1, 1, "silent");
        struct store_agent_state st = {.name = "web1",
                                       .connected = 1,
                                       .last_seen = 150, /* older: kept 200 */
                                       .address = "10.0.0.1:5555",
                                       .spool_depth = 3,
                                       .spool_bytes = 300,
                                       .heartbeat_ms = 1000,
                                       .silent_since = 200,
                                       .collector_seq = 1};
        struct store_txn t = {&b, 1, NULL, 0, &st, 1};

        b.origin = STORE_ORIGIN_COLLECTOR;
        assert_int_equal(store_commit(s, &t), 0);
    }
    store_close(s);

    assert_int_equal(store_open(f->path, STORE_RDONLY, &s), 0);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_load_agents(s, full_agent_cb, &a), 0);
    assert_int_equal(a.hwm, 42); /* a state row never moves the hwm */
    assert_int_equal(a.epoch, 7);
    assert_int_equal(a.last_seen, 200);
    assert_string_equal(a.software, "tocsin-agent 0.0.9");
    assert_int_equal(a.connected, 1);
    assert_string_equal(a.address, "10.0.0.1:5555");
    assert_int_equal(a.spool_depth, 3);
    assert_int_equal(a.spool_bytes, 300);
    assert_int_equal(a.heartbeat_ms, 1000);
    assert_int_equal(a.silent_since, 200);
    assert_int_equal(a.collector_seq, 1);
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_events_iter(s, "web1", 0, walk_cb, &w), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.origins[0], STORE_ORIGIN_AGENT);
    assert_int_equal(w.origins[1], STORE_ORIGIN_COLLECTOR);
    store_close(s);

    /* A collector start marks every agent disconnected. */
    assert_int_equal(store_open(f->path, 0, &s), 0);
    assert_int_equal(store_agents_disconnected(s), 0);
    memset(&a, 0, sizeof(a));
    assert_int_equal(store_load_agents(s, full_agent_cb, &a), 0);
    assert_int_equal(a.connected, 0);
    assert_int_equal(a.silent_since, 200);
    store_close(s);
}

struct cursor_walk {
    int64_t pos[32];
    uint64_t seq_first[32];
    int n;
};

static int
cursor_cb(const struct store_batch *b, void *arg)
{
    struct cursor_walk *w = arg;

    assert_true(w->n < 32);
    w->pos[w->n] = b->id;
    w->seq_first[w->n] = b->seq_first;
    w->n++;
    return 0;
}

/*
 * The event log's cursor (store.md): batches come back in commit order
 * from any cursor, whichever of two writing connections committed them
 * and whatever their host; max bounds a read and says whether more
 * remain; upto bounds the range; the last position is the next cursor.
 */
static void
test_log_cursor(void **state)
{
    struct fixture *f = *state;
    struct store *a, *b, *r;
    struct cursor_walk all = {0}, w;
    int64_t last;
    int more;
    const int ncommits = 8;

    assert_int_equal(store_open(f->path, 0, &a), 0);
    assert_int_equal(store_open(f->path, 0, &b), 0);
    /* seq_first = commit number * 10 + batch: commit order is known. */
    for (int c = 0; c < ncommits; c++) {
        struct store_batch bs[2] = {
            mkbatch(c % 2 ? "zz" : "aa", (uint64_t)c * 10, 1, "x"),
            mkbatch("mm", (uint64_t)c * 10 + 1, 1, "y"),
        };
        struct store_txn t = {bs, (size_t)(c % 3 == 0 ? 1 : 2), NULL, 0, NULL,
                              0};

        assert_int_equal(store_commit(c % 2 ? b : a, &t), 0);
    }
    assert_int_equal(store_open(f->path, STORE_RDONLY, &r), 0);
    assert_int_equal(store_log_read(r, 0, STORE_POS_MAX, UINT32_MAX, cursor_cb,
                                    &all, &last, &more),
                     0);
    assert_int_equal(more, 0);
    assert_true(all.n > ncommits);
    assert_int_equal(last, all.pos[all.n - 1]);
    for (int i = 1; i < all.n; i++) {
        assert_true(all.pos[i] > all.pos[i - 1]);
        assert_true(all.seq_first[i] > all.seq_first[i - 1]);
    }
    /* From every cursor: exactly the batches after it, in order. */
    for (int i = 0; i <= all.n; i++) {
        int64_t after = i == 0 ? 0 : all.pos[i - 1];

        memset(&w, 0, sizeof(w));
        assert_int_equal(store_log_read(r, after, STORE_POS_MAX, UINT32_MAX,
                                        cursor_cb, &w, &last, &more),
                         0);
        assert_int_equal(w.n, all.n - i);
        for (int j = 0; j < w.n; j++)
            assert_int_equal(w.pos[j], all.pos[i + j]);
        assert_int_equal(last, i == all.n ? after : all.pos[all.n - 1]);
    }
    /* Two at a time, chained by the last position, bounded by upto. */
    memset(&w, 0, sizeof(w));
    last = 0;
    do {
        assert_int_equal(store_log_read(r, last, all.pos[all.n - 2], 2,
                                        cursor_cb, &w, &last, &more),
                         0);
    } while (more);
    assert_int_equal(w.n, all.n - 1);
    assert_int_equal(last, all.pos[all.n - 2]);
    /* A commit after a read lands after the cursor. */
    {
        struct store_batch nb = mkbatch("aa", 1000, 1, "z");
        struct store_txn t = {&nb, 1, NULL, 0, NULL, 0};

        assert_int_equal(store_commit(a, &t), 0);
    }
    memset(&w, 0, sizeof(w));
    assert_int_equal(store_log_read(r, all.pos[all.n - 1], STORE_POS_MAX, 1,
                                    cursor_cb, &w, &last, &more),
                     0);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.seq_first[0], 1000);
    assert_int_equal(more, 0);
    store_close(r);
    store_close(b);
    store_close(a);
}

/*
 * A file that is not a store (or is corrupt) is -EBADMSG, not -EIO
 * (store/sqlerr.h: retrying will not help), and the message names it.
 */
static void
test_not_a_store(void **state)
{
    struct fixture *f = *state;
    struct store *s = NULL;
    char junk[8192], *dir, *err;
    FILE *fp;

    /* tu_capture_begin writes into tu_tmpdir: this test's directory. */
    snprintf(tu_tmpdir, sizeof(tu_tmpdir), "%s", f->dir);
    dir = tc_xasprintf("mkdir -p -m 700 '%s/state/sub'", f->dir);
    assert_int_equal(system(dir), 0);
    free(dir);
    memset(junk, 'x', sizeof(junk));
    assert_non_null(fp = fopen(f->path, "w"));
    assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
    fclose(fp);
    assert_int_equal(chmod(f->path, 0600), 0);
    for (int flags = 0; flags <= STORE_RDONLY; flags += STORE_RDONLY) {
        tu_capture_begin();
        assert_int_equal(store_open(f->path, flags, &s), -EBADMSG);
        err = tu_capture_end();
        assert_null(s);
        tu_assert_contains(err, f->path);
        tu_assert_contains(err, "not a database");
        free(err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_iter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maintain_chase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_chunks_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
    };

    log_init("test_store", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
