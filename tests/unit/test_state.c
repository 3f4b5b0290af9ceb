/*
 * test_state: the engine state interface of the store (incidents_store.h,
 * docs/internals/store.md): a step and its watermark are written
 * atomically (a failure injected into either leaves neither), the step
 * reads the event log by cursor in commit order, the engine connection
 * is opened from the log store, and a file that is not a store is
 * -EBADMSG with its path in the message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "log.h"
#include "store/incidents_store.h"
#include "store/store.h"
#include "testutil.h"
#include "util.h"

/* The default correlation rules (problem engine beside the incidents). */
static const struct problem_config *
pdef(void)
{
    static struct problem_config c;
    static int init;

    if (!init) {
        problem_config_default(&c);
        init = 1;
    }
    return &c;
}

#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)

static const struct incident_config cfg = {
    .reopen_window_ns = 60 * 60 * SEC,
    .resolve_after_ns = 30 * 60 * SEC,
    .max_attempts = 3,
};

struct fix {
    char path[128];
    struct store *log;
    struct incidents_store *is;
    struct incident_engine *e;
    struct problem_engine *pe;
    struct incidents_watermark wm;
    uint64_t seq;
};

static int
setup(void **state)
{
    struct fix *f = tc_xcalloc(1, sizeof(*f));

    assert_int_equal(tu_setup("test_state"), 0);
    snprintf(f->path, sizeof(f->path), "%s/collector.db", tu_tmpdir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    incident_engine_free(f->e);
    problem_engine_free(f->pe);
    incidents_store_close(f->is);
    store_close(f->log);
    free(f);
    return tu_teardown(state);
}

/* A store with its engine connection and a loaded engine. */
static void
open_all(struct fix *f)
{
    assert_int_equal(store_open(f->path, 0, &f->log), 0);
    assert_int_equal(incidents_store_open_engine(f->log, &f->is), 0);
    assert_int_equal(
        incidents_store_load(f->is, &cfg, pdef(), &f->e, &f->pe, &f->wm), 0);
}

static int
noop_cb(const struct store_batch *b, void *arg)
{
    (void)b;
    (void)arg;
    return 0;
}

/* Commit one batch of one error log event of rule; its position. */
static int64_t
commit_event(struct fix *f, const char *rule, int64_t ts)
{
    static const uint8_t one = 0x91; /* msgpack: array of 1 */
    struct store_batch b = {0};
    struct store_txn t = {0};
    struct tc_event ev;
    struct tc_buf blob;
    int64_t last;
    int more;

    memset(&ev, 0, sizeof(ev));
    ev.kind = tc_str_c("log");
    ev.rule = tc_str_c(rule);
    ev.sev = TC_SEV_ERROR;
    ev.state = -1;
    ev.ts = ts;
    ev.count = 1;
    ev.seq = ++f->seq;
    ev.host = tc_str_c("web-01");
    ev.source = tc_str_c("/var/log/app.log");
    ev.message = tc_str_c("msg");
    ev.fingerprint = tc_str_c("");
    tc_buf_init(&blob, 1u << 20);
    assert_int_equal(tc_buf_append(&blob, &one, 1), 0);
    assert_int_equal(tc_event_encode(&blob, &ev), 0);
    b.host = "web-01";
    b.seq_first = b.seq_last = f->seq;
    b.n = 1;
    b.ts_min = b.ts_max = ts;
    b.events = (const uint8_t *)tc_buf_head(&blob);
    b.events_len = tc_buf_size(&blob);
    t.batches = &b;
    t.nbatches = 1;
    assert_int_equal(store_commit(f->log, &t), 0);
    tc_buf_close(&blob);
    /* Its position: the last of the log. */
    assert_int_equal(store_log_read(f->log, 0, STORE_POS_MAX, UINT32_MAX,
                                    noop_cb, NULL, &last, &more),
                     0);
    return last;
}

/* One integer from the file, through a connection of the test's own. */
static int64_t
sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Drop the engine and load it again, as the runner does after a failed
 * step (the engine is ahead of the tables then). */
static void
reload(struct fix *f)
{
    incident_engine_free(f->e);
    problem_engine_free(f->pe);
    f->e = NULL;
    assert_int_equal(
        incidents_store_load(f->is, &cfg, pdef(), &f->e, &f->pe, &f->wm), 0);
}

/*
 * A failure injected into the watermark's write (a trigger on
 * engine_steps) or into the incident rows' write (a trigger on
 * incidents) leaves neither the rows nor the watermark: the step is one
 * transaction. Once the fault is gone, the same inputs are fed again
 * and land with their watermark.
 */
static void
test_step_atomic(void **state)
{
    struct fix *f = *state;
    int64_t pos1, pos2;
    int more;

    open_all(f);
    pos1 = commit_event(f, "oom", T0);
    sql_exec(f->path, "CREATE TRIGGER fault BEFORE INSERT ON engine_steps"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_true(
        incidents_store_step(f->is, f->e, f->pe, &f->wm, T0, 16, &more) < 0);
    tu_assert_contains(incidents_store_errmsg(f->is), "injected");
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM timeline"), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM engine_steps"), 0);
    assert_int_equal(f->wm.batch_to, 0);
    sql_exec(f->path, "DROP TRIGGER fault");
    reload(f);
    assert_int_equal(f->wm.batch_to, 0);
    assert_int_equal(
        incidents_store_step(f->is, f->e, f->pe, &f->wm, T0, 16, &more), 0);
    assert_int_equal(f->wm.batch_to, pos1);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 1);
    assert_int_equal(sql_int(f->path, "SELECT max(batch_to) FROM engine_steps"),
                     pos1);

    /* The other way round: the rows fail, the watermark stays. */
    pos2 = commit_event(f, "disk", T0 + SEC);
    assert_true(pos2 > pos1);
    sql_exec(f->path, "CREATE TRIGGER fault BEFORE INSERT ON incidents"
                      " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_true(incidents_store_step(f->is, f->e, f->pe, &f->wm, T0 + SEC, 16,
                                     &more) < 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 1);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM engine_steps"), 1);
    assert_int_equal(sql_int(f->path, "SELECT max(batch_to) FROM engine_steps"),
                     pos1);
    sql_exec(f->path, "DROP TRIGGER fault");
    reload(f);
    assert_int_equal(f->wm.batch_to, pos1);
    assert_int_equal(
        incidents_store_step(f->is, f->e, f->pe, &f->wm, T0 + SEC, 16, &more),
        0);
    assert_int_equal(f->wm.batch_to, pos2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 2);
}

/*
 * The step reads the log by cursor: max_batches at a time, in commit
 * order, the watermark at the position of the last one fed, "more"
 * while some remain; a batch committed between steps is picked up from
 * the watermark on.
 */
static void
test_step_cursor(void **state)
{
    struct fix *f = *state;
    int64_t pos[5];
    int more;

    open_all(f);
    for (int i = 0; i < 4; i++) {
        char rule[16];

        snprintf(rule, sizeof(rule), "r%d", i);
        pos[i] = commit_event(f, rule, T0 + i * SEC);
        assert_true(i == 0 || pos[i] > pos[i - 1]);
    }
    assert_int_equal(incidents_store_step(f->is, f->e, f->pe, &f->wm,
                                          T0 + 10 * SEC, 3, &more),
                     0);
    assert_int_equal(more, 1);
    assert_int_equal(f->wm.batch_to, pos[2]);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 3);
    pos[4] = commit_event(f, "r4", T0 + 11 * SEC);
    assert_int_equal(incidents_store_step(f->is, f->e, f->pe, &f->wm,
                                          T0 + 12 * SEC, 3, &more),
                     0);
    assert_int_equal(more, 0);
    assert_int_equal(f->wm.batch_to, pos[4]);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM incidents"), 5);
    /* A restart resumes from the stored watermark. */
    reload(f);
    assert_int_equal(f->wm.batch_to, pos[4]);
}

/* Not a store: -EBADMSG (store/sqlerr.h), and the message names the
 * file, for the engine state as for the log. */
static void
test_not_a_store(void **state)
{
    struct fix *f = *state;
    struct incidents_store *is = NULL;
    char junk[8192];
    char *err;
    FILE *fp;

    memset(junk, 'x', sizeof(junk));
    assert_non_null(fp = fopen(f->path, "w"));
    assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
    fclose(fp);
    for (int rdonly = 0; rdonly <= 1; rdonly++) {
        tu_capture_begin();
        assert_int_equal(incidents_store_open(f->path, rdonly, &is), -EBADMSG);
        err = tu_capture_end();
        assert_null(is);
        tu_assert_contains(err, f->path);
        tu_assert_contains(err, "not a database");
        free(err);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_step_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_step_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
    };

    log_init("test_state", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
