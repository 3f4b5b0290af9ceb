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
    tu_assert_contains(err,
                       "collector.yaml:7: unknown key 'listne' in top level "
                       "(valid: name, listen, tls, store, limits, "
                       "commit_interval, incidents)");
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
    };

    log_init("test_collector_config", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
