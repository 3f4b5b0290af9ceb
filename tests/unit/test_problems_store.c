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
    fix_scenario(&a, 0);
    fix_open(&b, "reload1");
    fix_scenario(&b, 1);
    fix_open(&c, "reload3");
    fix_scenario(&c, 3);
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
    da = fix_dump(a.path, NULL, 0);
    db_ = fix_dump(b.path, NULL, 0);
    dc = fix_dump(c.path, NULL, 0);
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
