/*
 * test_collector_config: collector/config.c on valid files (values,
 * defaults, path resolution) and on every class of error, checking that
 * each message names FILE:LINE and what was wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "engine/problem.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

static const char example[] =
    "name: collector-1\n"
    "listen: 0.0.0.0:7401\n"
    "tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}\n"
    "store: {path: state/collector.db, sync: normal}\n"
    "limits: {pipeline_max_bytes: 128MiB, max_agents: 500, "
    "max_pending: 64, sessions_per_agent: 3, session_memory: 64MiB, "
    "handshake_timeout: 3s, idle_timeout: 5m}\n"
    "commit_interval: 20ms\n";

/* The required keys only. */
static const char minimal[] = "tls: {ca: /pki/ca.crt, cert: c.crt, key: k}\n"
                              "store: {path: /var/lib/tocsin/c.db}\n";

static int
setup(void **state)
{
    return tu_setup("tocsin-colconf");
}

/* Load text as rel, expecting -EINVAL; returns the log (caller frees). */
static char *
load_fails(const char *rel, const char *text)
{
    struct collector_config *c = (struct collector_config *)1;
    const char *path = tu_write_file(rel, text);
    char *err;
    int rc;

    tu_capture_begin();
    rc = config_load(path, &c);
    err = tu_capture_end();
    assert_int_equal(rc, -EINVAL);
    assert_null(c);
    return err;
}

static void
test_example(void **state)
{
    struct collector_config *c = NULL;
    const char *path = tu_write_file("collector.yaml", example);
    char want[PATH_MAX];

    assert_int_equal(config_load(path, &c), 0);
    assert_string_equal(c->file, path);
    assert_string_equal(c->name, "collector-1");
    assert_string_equal(c->listen, "0.0.0.0:7401");
    snprintf(want, sizeof(want), "%s/pki/ca.crt", tu_tmpdir);
    assert_string_equal(c->tls_ca, want);
    snprintf(want, sizeof(want), "%s/pki/collector.crt", tu_tmpdir);
    assert_string_equal(c->tls_cert, want);
    snprintf(want, sizeof(want), "%s/pki/collector.key", tu_tmpdir);
    assert_string_equal(c->tls_key, want);
    snprintf(want, sizeof(want), "%s/state/collector.db", tu_tmpdir);
    assert_string_equal(c->store_path, want);
    assert_int_equal(c->store_sync, CONFIG_SYNC_NORMAL);
    assert_int_equal(c->pipeline_max_bytes, 128ULL << 20);
    assert_int_equal(c->max_agents, 500);
    assert_int_equal(c->max_pending, 64);
    assert_int_equal(c->sessions_per_agent, 3);
    assert_int_equal(c->session_memory, 64ULL << 20);
    assert_int_equal(c->handshake_timeout_ms, 3000);
    assert_int_equal(c->idle_timeout_ms, 300000);
    assert_int_equal(c->commit_interval_ms, 20);
    config_free(c);
}

static void
test_defaults(void **state)
{
    struct collector_config *c = NULL;
    const char *path = tu_write_file("min.yaml", minimal);
    char host[256] = "";

    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    assert_string_equal(c->name, host);
    assert_string_equal(c->listen, "127.0.0.1:7400");
    assert_string_equal(c->tls_ca, "/pki/ca.crt");
    assert_string_equal(c->store_path, "/var/lib/tocsin/c.db");
    assert_int_equal(c->store_sync, CONFIG_SYNC_FULL);
    assert_int_equal(c->pipeline_max_bytes, 64ULL << 20);
    assert_int_equal(c->max_agents, 10000);
    assert_int_equal(c->max_pending, 1024);
    assert_int_equal(c->sessions_per_agent, 4);
    assert_int_equal(c->session_memory, 256ULL << 20);
    assert_int_equal(c->handshake_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 120000);
    assert_int_equal(c->commit_interval_ms, 5);
    assert_int_equal(c->inc_flap_high, 50);
    assert_int_equal(c->inc_flap_low, 25);
    config_free(c);
    config_free(NULL);

    /* commit_interval 0 means commit at once; it has no unit to give. */
    path = tu_write_file("zero.yaml", "commit_interval: 0\n"
                                      "tls: {ca: a, cert: b, key: c}\n"
                                      "store: {path: d}\n");
    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->commit_interval_ms, 0);
    config_free(c);
}

static void
test_missing_file(void **state)
{
    struct collector_config *c = (struct collector_config *)1;
    char path[PATH_MAX];
    char *err;

    snprintf(path, sizeof(path), "%s/nope.yaml", tu_tmpdir);
    tu_capture_begin();
    assert_int_equal(config_load(path, &c), -ENOENT);
    err = tu_capture_end();
    assert_null(c);
    tu_assert_contains(err, "nope.yaml: No such file or directory");
    free(err);
}

static void
test_unknown_keys(void **state)
{
    char *err = load_fails("collector.yaml", "name: c\n"
                                             "tls: {ca: a, cert: b, key: c}\n"
                                             "store: {path: d, synch: full}\n"
                                             "limits:\n"
                                             "  max_agent: 5\n"
                                             "\n"
                                             "listne: 127.0.0.1:7400\n");
    tu_assert_contains(err, "collector.yaml:3: unknown key 'synch' in store "
                            "(valid: path, sync)");
    tu_assert_contains(err,
                       "collector.yaml:5: unknown key 'max_agent' in limits "
                       "(valid: pipeline_max_bytes, max_agents, "
                       "max_pending, sessions_per_agent, session_memory, "
                       "handshake_timeout, idle_timeout)");
    tu_assert_contains(
        err, "collector.yaml:7: unknown key 'listne' in top level "
             "(valid: name, listen, tls, hints, store, limits, "
             "commit_interval, incidents, correlation, runbooks, api)");
    free(err);
}

static void
test_bad_values(void **state)
{
    char *err = load_fails("bad.yaml", "listen: 127.0.0.1:99999\n"
                                       "tls: {ca: a, cert: b, key: c}\n"
                                       "store: {path: d, sync: always}\n"
                                       "limits:\n"
                                       "  pipeline_max_bytes: 64 megs\n"
                                       "  max_agents: 0\n"
                                       "  handshake_timeout: 10\n"
                                       "  idle_timeout: 1ms\n"
                                       "commit_interval: 2s\n"
                                       "name: ''\n");
    tu_assert_contains(err, "bad.yaml:1: listen: '127.0.0.1:99999' is not "
                            "host:port");
    tu_assert_contains(err, "bad.yaml:3: store.sync: 'always' is not one of "
                            "full, normal");
    tu_assert_contains(err, "bad.yaml:5: limits.pipeline_max_bytes: '64 megs' "
                            "is not a size (e.g. 64MiB)");
    tu_assert_contains(err,
                       "bad.yaml:6: limits.max_agents: '0' is out of range "
                       "(1 to 1000000)");
    tu_assert_contains(err, "bad.yaml:7: limits.handshake_timeout: '10' is not "
                            "a duration");
    tu_assert_contains(err, "bad.yaml:8: limits.idle_timeout: '1ms' is out of "
                            "range (1000ms to 86400000ms)");
    tu_assert_contains(err, "bad.yaml:9: commit_interval: '2s' is out of range "
                            "(0ms to 1000ms)");
    tu_assert_contains(err, "bad.yaml:10: name: must not be empty");
    free(err);
}

/* Flap thresholds: percents, and low may not exceed high. */
static void
test_flap_thresholds(void **state)
{
    struct collector_config *c = NULL;
    const char *path =
        tu_write_file("flap.yaml", "incidents: {flap_high: 40, flap_low: 40}\n"
                                   "tls: {ca: a, cert: b, key: c}\n"
                                   "store: {path: d}\n");
    char *err;

    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->inc_flap_high, 40);
    assert_int_equal(c->inc_flap_low, 40);
    config_free(c);
    err = load_fails("flap1.yaml", "incidents: {flap_high: 20, flap_low: 30}\n"
                                   "tls: {ca: a, cert: b, key: c}\n"
                                   "store: {path: d}\n");
    tu_assert_contains(err, "incidents.flap_low (30) is above "
                            "incidents.flap_high (20)");
    free(err);
    err = load_fails("flap2.yaml", "incidents: {flap_high: 101}\n"
                                   "tls: {ca: a, cert: b, key: c}\n"
                                   "store: {path: d}\n");
    tu_assert_contains(err, "incidents.flap_high: '101' is out of range");
    free(err);
}

static void
test_missing_required(void **state)
{
    char *err = load_fails("req.yaml", "\n"
                                       "listen: 127.0.0.1:7400\n"
                                       "store:\n"
                                       "  sync: full\n");
    tu_assert_contains(err, "req.yaml:2: missing required key 'tls.ca'");
    tu_assert_contains(err, "req.yaml:2: missing required key 'tls.cert'");
    tu_assert_contains(err, "req.yaml:2: missing required key 'tls.key'");
    tu_assert_contains(err, "req.yaml:3: missing required key 'store.path'");
    free(err);
}

static void
test_wrong_kind(void **state)
{
    char *err = load_fails("kind.yaml", "tls: [ca, cert, key]\n"
                                        "store: {path: {a: b}}\n"
                                        "limits: 5\n");
    tu_assert_contains(err, "kind.yaml:1: tls: expected a map, got a list");
    tu_assert_contains(err, "kind.yaml:2: store.path: expected a single value, "
                            "got a map");
    tu_assert_contains(err, "kind.yaml:3: limits: expected a map, got a single "
                            "value");
    free(err);
}

static void
test_loader_errors(void **state)
{
    char text[1024];
    char *err;

    snprintf(text, sizeof(text), "%slisten: 127.0.0.1:1\nlisten: h:2\n",
             minimal);
    err = load_fails("dup.yaml", text);
    tu_assert_contains(err, "dup.yaml:4: duplicate key 'listen' (first at "
                            "line 3)");
    free(err);

    err = load_fails("syn.yaml", "listen: [oops\n");
    tu_assert_contains(err, "syn.yaml:2: syntax error: did not find expected "
                            "',' or ']'");
    free(err);

    err = load_fails("empty.yaml", "\n# only a comment\n");
    tu_assert_contains(err, "empty.yaml:1: the file is empty");
    free(err);

    err = load_fails("docs.yaml", "name: a\n---\nname: b\n");
    tu_assert_contains(err, "docs.yaml:2: more than one YAML document");
    free(err);

    err = load_fails("bomb.yaml", "name: &n x\n"
                                  "l: &l [*n, *n, *n, *n, *n, *n, *n, *n]\n"
                                  "m: [*l, *l, *l, *l, *l, *l, *l, *l]\n");
    tu_assert_contains(err, "bomb.yaml:1: anchor '&n': anchors and aliases are "
                            "not supported");
    free(err);
}

/* No correlation: section: the documented defaults, as the engine's. */
static void
test_correlation_defaults(void **state)
{
    struct collector_config *c = NULL;
    const char *path = tu_write_file("min.yaml", minimal);
    struct problem_config pc, def;

    assert_int_equal(config_load(path, &c), 0);
    config_correlation(c, &pc);
    problem_config_default(&def);
    assert_int_equal(pc.resolve_after_ns, def.resolve_after_ns);
    assert_int_equal(pc.spread, 1);
    assert_int_equal(pc.spread_min_hosts, 3);
    assert_int_equal(pc.spread_window_ns, 600LL * 1000000000);
    assert_int_equal(pc.reference, 1);
    assert_int_equal(pc.reference_window_ns, def.reference_window_ns);
    assert_int_equal(pc.nreference_fields, 0);
    assert_int_equal(pc.ndeps, 0);
    assert_int_equal(pc.topology_window_ns, def.topology_window_ns);
    assert_int_equal(pc.trend, 1);
    assert_int_equal(pc.trend_count, def.trend_count);
    assert_int_equal(pc.trend_period_ns, def.trend_period_ns);
    assert_int_equal(pc.major, 1);
    assert_int_equal(pc.major_priority, 2);
    config_free(c);
}

static const char corr_full[] =
    "tls: {ca: a, cert: b, key: c}\n"
    "store: {path: d}\n"
    "correlation:\n"
    "  resolve_after: 2h\n"
    "  spread: {enabled: false, min_hosts: 5, window: 15m}\n"
    "  reference: {window: 5m, fields: [upstream, dsn]}\n"
    "  topology:\n"
    "    window: 3m\n"
    "    depends_on:\n"
    "      - {from: \"web-*\", to: cache-01}\n"
    "      - {from: \"service:api\", to: \"service:db\"}\n"
    "  trend: {count: 3, period: 2d}\n"
    "  major: {enabled: no, max_priority: 1}\n";

static void
test_correlation_values(void **state)
{
    struct collector_config *c = NULL;
    const char *path = tu_write_file("corr.yaml", corr_full);
    struct problem_config pc;
    struct problem_engine *pe;

    assert_int_equal(config_load(path, &c), 0);
    config_correlation(c, &pc);
    assert_int_equal(pc.resolve_after_ns, 7200LL * 1000000000);
    assert_int_equal(pc.spread, 0);
    assert_int_equal(pc.spread_min_hosts, 5);
    assert_int_equal(pc.spread_window_ns, 900LL * 1000000000);
    assert_int_equal(pc.reference, 1);
    assert_int_equal(pc.reference_window_ns, 300LL * 1000000000);
    assert_int_equal(pc.nreference_fields, 2);
    assert_string_equal(pc.reference_fields[0], "upstream");
    assert_string_equal(pc.reference_fields[1], "dsn");
    assert_int_equal(pc.ndeps, 2);
    assert_string_equal(pc.deps[0].from, "web-*");
    assert_string_equal(pc.deps[0].to, "cache-01");
    assert_int_equal(pc.deps[0].line, 10);
    assert_string_equal(pc.deps[1].to, "service:db");
    assert_int_equal(pc.topology_window_ns, 180LL * 1000000000);
    assert_int_equal(pc.trend_count, 3);
    assert_int_equal(pc.trend_period_ns, 2 * 86400LL * 1000000000);
    assert_int_equal(pc.major, 0);
    assert_int_equal(pc.major_priority, 1);
    /* The engine copies: it outlives the config. */
    pe = problem_engine_new(&pc);
    config_free(c);
    problem_engine_free(pe);
}

static void
test_correlation_errors(void **state)
{
    char *err =
        load_fails("cerr.yaml", "tls: {ca: a, cert: b, key: c}\n"
                                "store: {path: d}\n"
                                "correlation:\n"
                                "  spread: {min_hosts: 1, window: 2d}\n"
                                "  reference: {fields: [upstream, '']}\n"
                                "  topology:\n"
                                "    depends_on:\n"
                                "      - {from: 'service:', to: cache}\n"
                                "      - {from: db-1, to: db-1}\n"
                                "      - {from: 'a b', to: c}\n"
                                "      - {to: cache}\n"
                                "  trend: {count: 1, period: 10s}\n"
                                "  major: {max_priority: 9}\n"
                                "  corelation: 1\n");

    tu_assert_contains(err, "cerr.yaml:4: correlation.spread.min_hosts: '1' "
                            "is out of range (2 to 100000)");
    tu_assert_contains(err, "cerr.yaml:4: correlation.spread.window: '2d' is "
                            "out of range");
    tu_assert_contains(err, "cerr.yaml:11: missing required key "
                            "'correlation.topology.depends_on[3].from'");
    tu_assert_contains(err, "cerr.yaml:12: correlation.trend.count: '1' is "
                            "out of range (2 to 1000)");
    tu_assert_contains(err, "cerr.yaml:12: correlation.trend.period: '10s' is "
                            "out of range");
    tu_assert_contains(err, "cerr.yaml:13: correlation.major.max_priority: "
                            "'9' is out of range (1 to 5)");
    tu_assert_contains(err, "cerr.yaml:14: unknown key 'corelation' in "
                            "correlation");
    free(err);

    /* What the schema cannot say: checked once the schema passed. */
    err = load_fails("cerr2.yaml", "tls: {ca: a, cert: b, key: c}\n"
                                   "store: {path: d}\n"
                                   "correlation:\n"
                                   "  reference: {fields: [upstream, '']}\n"
                                   "  topology:\n"
                                   "    depends_on:\n"
                                   "      - {from: 'service:', to: cache}\n"
                                   "      - {from: db-1, to: db-1}\n"
                                   "      - {from: 'a b', to: 'service:x*'}\n");
    tu_assert_contains(err, "cerr2.yaml:4: correlation.reference.fields[1]: "
                            "length 0, expected 1 to 255 bytes");
    tu_assert_contains(err, "cerr2.yaml:7: correlation.topology.depends_on[0]"
                            ".from: 'service:' is neither a host glob nor "
                            "service:NAME");
    tu_assert_contains(err, "cerr2.yaml:8: correlation.topology.depends_on[1]: "
                            "'db-1' depends on itself");
    tu_assert_contains(err, "cerr2.yaml:9: correlation.topology.depends_on[2]"
                            ".from: 'a b' is neither");
    tu_assert_contains(err, "cerr2.yaml:9: correlation.topology.depends_on[2]"
                            ".to: 'service:x*' is neither");
    free(err);
}

/* Lists are bounded: the engine walks them for every incident. */
static void
test_correlation_limits(void **state)
{
    size_t cap = 64 + 40 * (PROBLEM_MAX_DEPS + 1);
    char *text = tc_xcalloc(1, cap), *err;
    size_t at = 0;

    at += (size_t)snprintf(text + at, cap - at,
                           "tls: {ca: a, cert: b, key: c}\n"
                           "store: {path: d}\n"
                           "correlation:\n"
                           "  topology:\n"
                           "    depends_on:\n");
    for (int i = 0; i <= PROBLEM_MAX_DEPS; i++)
        at += (size_t)snprintf(text + at, cap - at,
                               "      - {from: a%d, to: b}\n", i);
    err = load_fails("many.yaml", text);
    tu_assert_contains(err, "many.yaml:6: correlation.topology.depends_on: "
                            "257 entries, at most 256");
    free(err);
    free(text);
}

/* SIGHUP: the correlation: block is applied; cur owns its own copy. */
static void
test_correlation_reload(void **state)
{
    static const char plain[] = "tls: {ca: a, cert: b, key: c}\n"
                                "store: {path: d}\n";
    struct collector_config *cur = NULL, *next = NULL;
    struct problem_config pc;

    /* tu_write_file's path is one static buffer: load right away. */
    assert_int_equal(config_load(tu_write_file("r1.yaml", plain), &cur), 0);
    config_correlation(cur, &pc);
    assert_int_equal(pc.spread, 1);
    assert_int_equal(pc.ndeps, 0);
    assert_int_equal(config_load(tu_write_file("r2.yaml", corr_full), &next),
                     0);
    assert_int_equal(config_reload(cur, next), 0);
    config_free(next);
    config_correlation(cur, &pc);
    assert_int_equal(pc.spread, 0);
    assert_int_equal(pc.ndeps, 2);
    assert_string_equal(pc.deps[1].from, "service:api");
    assert_int_equal(pc.nreference_fields, 2);
    assert_string_equal(pc.reference_fields[1], "dsn");
    assert_int_equal(pc.major, 0);
    /* And back to the defaults. */
    assert_int_equal(config_load(tu_write_file("r3.yaml", plain), &next), 0);
    assert_int_equal(config_reload(cur, next), 0);
    config_free(next);
    config_correlation(cur, &pc);
    assert_int_equal(pc.ndeps, 0);
    assert_int_equal(pc.nreference_fields, 0);
    assert_int_equal(pc.spread, 1);
    config_free(cur);
}

/* runbooks: {dir}: resolved against the file, required inside the
 * block, absent = no runbooks; a reload takes the new directory. */
static void
test_runbooks_dir(void **state)
{
    static const char plain[] = "tls: {ca: a, cert: b, key: c}\n"
                                "store: {path: d}\n";
    static const char with[] = "tls: {ca: a, cert: b, key: c}\n"
                               "store: {path: d}\n"
                               "runbooks: {dir: kb}\n";
    struct collector_config *cur = NULL, *next = NULL;
    char want[256], *err;

    (void)state;
    assert_int_equal(config_load(tu_write_file("p.yaml", plain), &cur), 0);
    assert_null(cur->runbooks_dir);
    assert_int_equal(config_load(tu_write_file("w.yaml", with), &next), 0);
    snprintf(want, sizeof(want), "%s/kb", tu_tmpdir);
    assert_string_equal(next->runbooks_dir, want);
    assert_int_equal(config_reload(cur, next), 0);
    assert_string_equal(cur->runbooks_dir, want);
    config_free(next);
    assert_int_equal(config_load(tu_write_file("p2.yaml", plain), &next), 0);
    assert_int_equal(config_reload(cur, next), 0);
    assert_null(cur->runbooks_dir);
    config_free(next);
    config_free(cur);
    err = load_fails("e.yaml", "tls: {ca: a, cert: b, key: c}\n"
                               "store: {path: d}\n"
                               "runbooks: {path: kb}\n");
    tu_assert_contains(err, "e.yaml:3: unknown key 'path' in runbooks");
    tu_assert_contains(err, "runbooks.dir");
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_example, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_flap_thresholds, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_kind, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_loader_errors, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_correlation_defaults, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_correlation_values, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_correlation_errors, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_correlation_limits, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_runbooks_dir, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_correlation_reload, setup,
                                        tu_teardown),
    };

    log_init("test_collector_config", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
