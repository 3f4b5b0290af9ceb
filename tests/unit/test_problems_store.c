/*
 * test_problems_store: the problem engine's persistence in the engine
 * step (collector/store/problems_store.c, docs/internals/problems.md
 * "One step" and "Load"): a store reloaded between steps (a restart)
 * ends with exactly the tables of one that never stopped; the problem
 * rows are written in the step's transaction with the incidents and
 * the watermark; replay rebuilds them.
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
#include "store/incidents_store.h"
#include "store/store.h"
#include "store_fixture.h"
#include "testutil.h"
#include "util.h"

/*
 * The scenario: a cache fails and three web servers name it
 * (reference), a class spreads over three hosts, an unrelated failure,
 * problem actions, quiet time so that problems resolve and incidents
 * close. reload_at: steps after which the engines are reloaded.
 */
static void
scenario(struct fix *f, int reload_every)
{
    int64_t t = T0;
    int step = 0;

#define STEP(now)                                                              \
    do {                                                                       \
        run(f, (now));                                                         \
        if (reload_every && ++step % reload_every == 0)                        \
            reload(f);                                                         \
    } while (0)

    commit(f, 3, "cache-oom", TC_SEV_CRITICAL, NULL, t);
    STEP(t + SEC);
    commit(f, 0, "upstream-down", TC_SEV_ERROR, "cache-01:6379", t + 2 * SEC);
    STEP(t + 2 * SEC);
    commit(f, 1, "upstream-down", TC_SEV_ERROR, "cache-01", t + 3 * SEC);
    commit(f, 2, "upstream-down", TC_SEV_ERROR, "cache-01.example.net",
           t + 4 * SEC);
    STEP(t + 5 * SEC);
    commit(f, 4, "slow-query", TC_SEV_WARNING, NULL, t + 6 * SEC);
    STEP(t + 6 * SEC);
    for (int h = 0; h < 3; h++) {
        commit(f, h, "tls-expired", TC_SEV_WARNING, NULL, t + (10 + h) * SEC);
        STEP(t + (10 + h) * SEC);
    }
    pact(f, PROBLEM_V_INVESTIGATE, 1, NULL, NULL, t + 20 * SEC);
    pact(f, PROBLEM_V_NOTE, 1, NULL, "looking at the cache", t + 21 * SEC);
    pact(f, PROBLEM_V_RCA, 1, "why1", "the cache ran out of memory",
         t + 22 * SEC);
    pact(f, PROBLEM_V_RCA, 1, "technology", "no memory limit", t + 23 * SEC);
    {
        /* A review of the cache's incident (1), on problem 1. */
        struct problem_action a = {.ts = t + 23 * SEC,
                                   .user = "alice",
                                   .verb = PROBLEM_V_REVIEW,
                                   .problem_id = 1,
                                   .incident_id = 1,
                                   .key = "lessons",
                                   .text = "set maxmemory everywhere"};
        int64_t id;

        assert_int_equal(incidents_store_problem_action_add(f->is, &a, &id), 0);
    }
    pact(f, PROBLEM_V_KNOWN_ERROR, 1, NULL, "maxmemory unset", t + 24 * SEC);
    pact(f, PROBLEM_V_CLOSE, 2, NULL, NULL, t + 25 * SEC); /* -EBUSY */
    STEP(t + 25 * SEC);
    /* Quiet: log incidents resolve, then problems, then time passes. */
    for (int i = 1; i <= 12; i++)
        STEP(t + i * 5 * MIN);
    /* A recurrence on one web server after the quiet. */
    commit(f, 0, "upstream-down", TC_SEV_ERROR, "cache-01", t + 61 * MIN);
    STEP(t + 61 * MIN);
    STEP(t + 70 * MIN);
#undef STEP
}

/* The engine state's tables, as text, for comparing two stores. */
static char *
dump(const char *path)
{
    static const char *const q[] = {
        "SELECT * FROM incidents ORDER BY id",
        "SELECT * FROM timeline ORDER BY id",
        "SELECT * FROM problems ORDER BY id",
        "SELECT * FROM problem_factors ORDER BY problem_id, n",
        "SELECT * FROM problem_reviews ORDER BY problem_id, n",
        "SELECT * FROM problem_links ORDER BY id",
        "SELECT * FROM problem_candidates ORDER BY problem_id, rank",
        "SELECT * FROM problem_timeline ORDER BY id",
        "SELECT * FROM problem_refs ORDER BY id",
        "SELECT * FROM problem_openings ORDER BY id",
        "SELECT id, result FROM actions ORDER BY id",
    };
    struct tc_buf b;
    sqlite3 *db;
    char *out;

    tc_buf_init(&b, 1u << 24);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        sqlite3_stmt *st;

        assert_int_equal(sqlite3_prepare_v2(db, q[i], -1, &st, NULL),
                         SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const char *v = (const char *)sqlite3_column_text(st, c);

                tc_buf_append(&b, v ? v : "NULL", strlen(v ? v : "NULL"));
                tc_buf_append(&b, "|", 1);
            }
            tc_buf_append(&b, "\n", 1);
        }
        sqlite3_finalize(st);
        tc_buf_append(&b, "--\n", 3);
    }
    sqlite3_close(db);
    tc_buf_append(&b, "", 1);
    out = tc_xstrdup((const char *)tc_buf_head(&b));
    tc_buf_close(&b);
    return out;
}

/*
 * Load after a step equals continuing: the same inputs through a store
 * whose engines are reloaded from its tables after every step, and
 * after every third, end with byte-identical tables to a store that
 * never reloaded; and replay of each is identical.
 */
static void
test_load_then_continue(void **state)
{
    struct fix a = {0}, b = {0}, c = {0};
    struct incidents_replay_stats rs;
    char *da, *db_, *dc;
    int nd = 0;

    (void)state;
    fix_open(&a, "continuous");
    scenario(&a, 0);
    fix_open(&b, "reload1");
    scenario(&b, 1);
    fix_open(&c, "reload3");
    scenario(&c, 3);
    /* The scenario did what it is meant to: problems with members,
     * candidates, an RCA, a known error, links, marks. */
    assert_true(sql_int(a.path, "SELECT count(*) FROM problems") >= 2);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM problems WHERE"
                                     " rule = 'reference' AND key ="
                                     " 'cache-01'"),
                     1);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM problems WHERE"
                                     " rule = 'spread'"),
                     1);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM problem_factors"),
                     1);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM problem_reviews"
                                     " WHERE incident_id = 1 AND field ="
                                     " 'lessons'"),
                     1);
    assert_true(sql_int(a.path, "SELECT count(*) FROM problems WHERE"
                                " root_cause = 'maxmemory unset'") == 1);
    assert_true(sql_int(a.path, "SELECT count(*) FROM incidents WHERE"
                                " inhibited != 0 OR problem != 0") >= 4);
    assert_int_equal(sql_int(a.path, "SELECT result FROM actions WHERE"
                                     " verb = 'problem-close'"),
                     -EBUSY);
    /* The slow query on db-01 stays apart. */
    assert_int_equal(sql_int(a.path, "SELECT problem FROM incidents WHERE"
                                     " host = 'db-01'"),
                     0);
    da = dump(a.path);
    db_ = dump(b.path);
    dc = dump(c.path);
    assert_string_equal(da, db_);
    assert_string_equal(da, dc);
    free(da);
    free(db_);
    free(dc);
    assert_int_equal(
        incidents_store_replay(b.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_true(rs.problems >= 2 && rs.prows > 10);
    /* A tampered problem row is a difference. */
    sql_exec(b.path, "UPDATE problem_candidates SET score = score + 1");
    assert_int_equal(
        incidents_store_replay(b.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_true(nd > 0);
    fix_close(&a);
    fix_close(&b);
    fix_close(&c);
}

/*
 * The problem rows are written in the step's transaction: a failure
 * injected into one of them (a trigger on problem_links) leaves no
 * incident, no problem and no watermark; once it is gone the same
 * inputs land together.
 */
static void
test_step_atomic(void **state)
{
    struct fix f = {0};
    int more;

    (void)state;
    fix_open(&f, "atomic");
    commit(&f, 3, "cache-oom", TC_SEV_CRITICAL, NULL, T0);
    run(&f, T0 + SEC);
    commit(&f, 0, "upstream-down", TC_SEV_ERROR, "cache-01", T0 + 2 * SEC);
    commit(&f, 1, "upstream-down", TC_SEV_ERROR, "cache-01", T0 + 3 * SEC);
    sql_exec(f.path, "CREATE TRIGGER fault BEFORE INSERT ON problem_links"
                     " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_true(incidents_store_step(f.is, f.e, f.pe, &f.wm, T0 + 4 * SEC, 16,
                                     &more) < 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM incidents"), 1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problems"), 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_refs"), 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM engine_steps"), 1);
    sql_exec(f.path, "DROP TRIGGER fault");
    reload(&f);
    run(&f, T0 + 4 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM incidents"), 3);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problems"), 1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM incidents WHERE"
                                     " problem = 1"),
                     3);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM engine_steps"), 2);
    fix_close(&f);
}

/*
 * An agent that never sent a batch is known from the agents table at
 * load: events naming it make a reference problem with it as the root
 * cause. Replay knows it from the same step (problem_hosts, agent 1),
 * so it rebuilds the same problem.
 */
static void
test_agent_hosts(void **state)
{
    struct fix f = {0};
    struct incidents_replay_stats rs;
    int nd = 0;

    (void)state;
    fix_open(&f, "agents");
    commit(&f, 4, "slow-query", TC_SEV_WARNING, NULL, T0);
    run(&f, T0 + SEC);
    sql_exec(f.path, "INSERT INTO agents(name, hwm) VALUES('cache-02', 0)");
    reload(&f);
    commit(&f, 0, "upstream-down", TC_SEV_ERROR, "cache-02:6379", T0 + 2 * SEC);
    commit(&f, 1, "upstream-down", TC_SEV_ERROR, "cache-02", T0 + 3 * SEC);
    run(&f, T0 + 4 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problems WHERE"
                                     " root_host = 'cache-02'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT step FROM problem_hosts WHERE"
                                     " host = 'cache-02' AND agent = 1"),
                     2);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(rs.problems, 1);
    fix_close(&f);
}

/*
 * Trend openings leave the table once the engine's tick dropped them
 * (older than trend.period), so it does not grow with every opening
 * ever; replay drops the same ones.
 */
static void
test_openings_pruned(void **state)
{
    struct fix f = {0};
    struct incidents_replay_stats rs;
    int nd = 0;

    (void)state;
    pcfg.trend_period_ns = 60 * MIN;
    fix_open(&f, "openings");
    commit(&f, 4, "slow-query", TC_SEV_WARNING, NULL, T0);
    commit(&f, 3, "evictions", TC_SEV_WARNING, NULL, T0 + SEC);
    run(&f, T0 + 2 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_openings"),
                     2);
    run(&f, T0 + 30 * MIN);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_openings"),
                     2);
    commit(&f, 4, "disk-slow", TC_SEV_WARNING, NULL, T0 + 40 * MIN);
    run(&f, T0 + 60 * MIN + SEC);
    /* The first is 1h old: gone; the other two stay. */
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_openings"),
                     2);
    run(&f, T0 + 90 * MIN);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_openings"),
                     1);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    fix_close(&f);
}

static int
setup(void **state)
{
    (void)state;
    problem_config_default(&pcfg);
    return tu_setup("test_problems_store");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_then_continue, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_step_atomic, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_agent_hosts, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_openings_pruned, setup,
                                        tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
