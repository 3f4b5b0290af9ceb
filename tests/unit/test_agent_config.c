/*
 * test_agent_config: agent/config.c on valid files (values, defaults,
 * path resolution) and on every class of error, checking that each
 * message names FILE:LINE and what was wrong.
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
    "collector: {address: 127.0.0.1:7400}\n"
    "tls: {ca: pki/ca.crt, cert: pki/web-01.crt, key: pki/web-01.key}\n"
    "state_dir: state/web-01\n"
    "spool: {max_bytes: 256MiB}\n"
    "sender: {batch_max_events: 500, window_batches: 4, backoff_min: 1s, "
    "backoff_max: 1m}\n"
    "tail: {poll_interval: 100ms, read_max_bytes: 2MiB, "
    "max_line_bytes: 16KiB}\n"
    "files:\n"
    "  - path: /var/log/app.log\n"
    "    rules:\n"
    "      - {name: app-error, match: 'ERROR (?<detail>.*)', "
    "severity: error}\n"
    "      - name: app-warn\n"
    "        match: WARN\n"
    "        severity: warning\n"
    "  - path: logs/other.log\n";

/* The required keys only, for error tests that add one bad line. */
static const char minimal[] = "collector: {address: 'collector.example:7400'}\n"
                              "tls: {ca: ca.crt, cert: a.crt, key: a.key}\n"
                              "state_dir: /var/lib/tocsin-agent\n";

static int
setup(void **state)
{
    return tu_setup("tocsin-agentconf");
}

/* Load text as rel, expecting -EINVAL; returns the log (caller frees). */
static char *
load_fails(const char *rel, const char *text)
{
    struct agent_config *c = (struct agent_config *)1;
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
    struct agent_config *c = NULL;
    const char *path = tu_write_file("agent.yaml", example);
    char want[PATH_MAX];

    assert_int_equal(config_load(path, &c), 0);
    assert_string_equal(c->file, path);
    assert_null(c->name); /* the agent fills in the certificate CN */
    assert_string_equal(c->collector_address, "127.0.0.1:7400");
    assert_string_equal(c->collector_server_name, "127.0.0.1");
    snprintf(want, sizeof(want), "%s/pki/ca.crt", tu_tmpdir);
    assert_string_equal(c->tls_ca, want);
    snprintf(want, sizeof(want), "%s/pki/web-01.crt", tu_tmpdir);
    assert_string_equal(c->tls_cert, want);
    snprintf(want, sizeof(want), "%s/pki/web-01.key", tu_tmpdir);
    assert_string_equal(c->tls_key, want);
    snprintf(want, sizeof(want), "%s/state/web-01", tu_tmpdir);
    assert_string_equal(c->state_dir, want);
    assert_int_equal(c->spool_max_bytes, 256ULL << 20);
    assert_int_equal(c->batch_max_events, 500);
    assert_int_equal(c->window_batches, 4);
    assert_int_equal(c->backoff_min_ms, 1000);
    assert_int_equal(c->backoff_max_ms, 60000);
    assert_int_equal(c->poll_interval_ms, 100);
    assert_int_equal(c->read_max_bytes, 2 << 20);
    assert_int_equal(c->max_line_bytes, 16 << 10);

    assert_int_equal(c->nfiles, 2);
    assert_string_equal(c->files[0].path, "/var/log/app.log");
    assert_int_equal(c->files[0].line, 8);
    assert_int_equal(c->files[0].nrules, 2);
    assert_string_equal(c->files[0].rules[0].name, "app-error");
    assert_string_equal(c->files[0].rules[0].match, "ERROR (?<detail>.*)");
    assert_int_equal(c->files[0].rules[0].severity, TC_SEV_ERROR);
    assert_int_equal(c->files[0].rules[0].line, 10);
    assert_string_equal(c->files[0].rules[1].name, "app-warn");
    assert_string_equal(c->files[0].rules[1].match, "WARN");
    assert_int_equal(c->files[0].rules[1].severity, TC_SEV_WARNING);
    assert_int_equal(c->files[0].rules[1].line, 11);
    snprintf(want, sizeof(want), "%s/logs/other.log", tu_tmpdir);
    assert_string_equal(c->files[1].path, want);
    assert_int_equal(c->files[1].nrules, 0);
    assert_null(c->files[1].rules);
    assert_int_equal(c->files[1].line, 14);
    config_free(c);
}

static void
test_defaults(void **state)
{
    struct agent_config *c = NULL;
    const char *path =
        tu_write_file("min.yaml", "collector:\n"
                                  "  address: '[::1]:7400'\n"
                                  "  server_name: collector.example\n"
                                  "name: web-01\n"
                                  "tls: {ca: /etc/ca.crt, cert: c, key: k}\n"
                                  "state_dir: /var/lib/x\n"
                                  "files:\n"
                                  "  - path: /var/log/a.log\n"
                                  "    rules:\n"
                                  "      - {name: r, match: x}\n");

    assert_int_equal(config_load(path, &c), 0);
    assert_string_equal(c->name, "web-01");
    assert_string_equal(c->collector_server_name, "collector.example");
    assert_string_equal(c->tls_ca, "/etc/ca.crt");
    assert_string_equal(c->state_dir, "/var/lib/x");
    assert_int_equal(c->spool_max_bytes, 256ULL << 20);
    assert_int_equal(c->batch_max_events, 1000);
    assert_int_equal(c->window_batches, 64);
    assert_int_equal(c->backoff_min_ms, 200);
    assert_int_equal(c->backoff_max_ms, 30000);
    assert_int_equal(c->poll_interval_ms, 250);
    assert_int_equal(c->read_max_bytes, 1 << 20);
    assert_int_equal(c->max_line_bytes, 64 << 10);
    assert_int_equal(c->files[0].rules[0].severity, TC_SEV_ERROR);
    config_free(c);

    /* No files at all, or an empty list, is a valid (idle) agent. */
    path = tu_write_file("nofiles.yaml", minimal);
    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->nfiles, 0);
    assert_null(c->files);
    assert_string_equal(c->collector_server_name, "collector.example");
    config_free(c);
    path = tu_write_file("emptyfiles.yaml", "files:\n"
                                            "collector: {address: h:1}\n"
                                            "tls: {ca: a, cert: b, key: c}\n"
                                            "state_dir: s\n");
    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->nfiles, 0);
    config_free(c);
    path = tu_write_file("emptylist.yaml", "files: []\n"
                                           "collector: {address: h:1}\n"
                                           "tls: {ca: a, cert: b, key: c}\n"
                                           "state_dir: s\n");
    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->nfiles, 0);
    config_free(c);
    config_free(NULL);
}

static void
test_missing_file(void **state)
{
    struct agent_config *c = (struct agent_config *)1;
    char path[PATH_MAX];
    char *err;

    snprintf(path, sizeof(path), "%s/absent.yaml", tu_tmpdir);
    tu_capture_begin();
    assert_int_equal(config_load(path, &c), -ENOENT);
    err = tu_capture_end();
    assert_null(c);
    tu_assert_contains(err, "absent.yaml: No such file or directory");
    free(err);
}

static void
test_unknown_keys(void **state)
{
    char text[1024];
    char *err;

    snprintf(text, sizeof(text), "%sstatedir: x\nspool: {max_byte: 1MiB}\n",
             minimal);
    err = load_fails("agent.yaml", text);
    tu_assert_contains(err, "agent.yaml:4: unknown key 'statedir' in top level "
                            "(valid: name, labels, heartbeat, status_socket, "
                            "collector, tls, state_dir, spool, sender, hints, "
                            "tail, files, journald, check_defaults, checks, "
                            "actions)");
    tu_assert_contains(err, "agent.yaml:5: unknown key 'max_byte' in spool "
                            "(valid: max_bytes)");
    free(err);

    snprintf(text, sizeof(text),
             "%sfiles:\n  - path: /a\n    rules:\n"
             "      - {name: a, match: b, sevrity: info}\n",
             minimal);
    err = load_fails("agent.yaml", text);
    tu_assert_contains(err, "agent.yaml:7: unknown key 'sevrity' in "
                            "files[0].rules[0] (valid: name, match, severity, "
                            "fingerprint, labels, action, time, fold_window, "
                            "rate_limit)");
    free(err);
}

static void
test_bad_values(void **state)
{
    char text[1024];
    char *err;

    snprintf(text, sizeof(text),
             "%s"
             "spool: {max_bytes: 12XB}\n"
             "sender: {backoff_min: 5, backoff_max: soon, "
             "batch_max_events: 0, window_batches: many}\n"
             "tail: {max_line_bytes: 1MiB, poll_interval: 1}\n"
             "files:\n"
             "  - path: /a\n"
             "    rules:\n"
             "      - {name: a, match: b, severity: fatal}\n",
             minimal);
    err = load_fails("agent.yaml", text);
    tu_assert_contains(err, "agent.yaml:4: spool.max_bytes: '12XB' is not a "
                            "size (e.g. 64MiB)");
    tu_assert_contains(err, "agent.yaml:5: sender.backoff_min: '5' is not a "
                            "duration (e.g. 250ms, 5s, 2m, 1h, 7d)");
    tu_assert_contains(err, "agent.yaml:5: sender.backoff_max: 'soon' is not a "
                            "duration");
    tu_assert_contains(err, "agent.yaml:5: sender.batch_max_events: '0' is out "
                            "of range (1 to 10000)");
    tu_assert_contains(err,
                       "agent.yaml:5: sender.window_batches: 'many' is not "
                       "a non-negative integer");
    tu_assert_contains(err, "agent.yaml:6: tail.max_line_bytes: '1MiB' is out "
                            "of range (256 to 65536 bytes)");
    tu_assert_contains(err, "agent.yaml:6: tail.poll_interval: '1' is not a "
                            "duration");
    tu_assert_contains(err, "agent.yaml:10: files[0].rules[0].severity: "
                            "'fatal' is not a severity (ok, info, warning, "
                            "error, critical)");
    free(err);

    err = load_fails("addr.yaml", "collector: {address: localhost}\n"
                                  "tls: {ca: a, cert: b, key: c}\n"
                                  "state_dir: s\n");
    tu_assert_contains(err, "addr.yaml:1: collector.address: 'localhost' is "
                            "not host:port");
    free(err);

    err = load_fails("order.yaml", "collector: {address: h:1}\n"
                                   "tls: {ca: a, cert: b, key: c}\n"
                                   "state_dir: s\n"
                                   "sender:\n"
                                   "  backoff_max: 1s\n"
                                   "  backoff_min: 2s\n");
    tu_assert_contains(err,
                       "order.yaml:6: sender.backoff_min (2000ms) is above "
                       "sender.backoff_max (1000ms)");
    free(err);
}

/* follow_symlinks: a list (or one string) of absolute directories. */
static void
test_follow_symlinks(void **state)
{
    struct agent_config *c = NULL;
    char text[1024];
    char *err;

    snprintf(text, sizeof(text),
             "%s"
             "files:\n"
             "  - path: /var/log/containers/*.log\n"
             "    follow_symlinks: [/var/log/pods, /var/lib/docker]\n"
             "  - path: /var/log/app.log\n",
             minimal);
    assert_int_equal(config_load(tu_write_file("ok.yaml", text), &c), 0);
    assert_int_equal(c->files[0].nfollow_symlinks, 2);
    assert_string_equal(c->files[0].follow_symlinks[0], "/var/log/pods");
    assert_string_equal(c->files[0].follow_symlinks[1], "/var/lib/docker");
    assert_int_equal(c->files[1].nfollow_symlinks, 0);
    config_free(c);

    snprintf(text, sizeof(text),
             "%s"
             "files:\n"
             "  - path: /var/log/containers/*.log\n"
             "    follow_symlinks: pods\n",
             minimal);
    err = load_fails("rel.yaml", text);
    tu_assert_contains(err, "rel.yaml:5: files[0].follow_symlinks: 'pods' "
                            "must be an absolute directory");
    free(err);
}

static void
test_missing_required(void **state)
{
    char *err = load_fails("req.yaml", "tls: {cert: b}\n"
                                       "files:\n"
                                       "  - rules:\n"
                                       "      - name: r\n");
    tu_assert_contains(err, "req.yaml:1: missing required key "
                            "'collector.address'");
    tu_assert_contains(err, "req.yaml:1: missing required key 'tls.ca'");
    tu_assert_contains(err, "req.yaml:1: missing required key 'tls.key'");
    tu_assert_contains(err, "req.yaml:1: missing required key 'state_dir'");
    tu_assert_contains(err, "req.yaml:3: missing required key 'files[0].path'");
    tu_assert_contains(err, "req.yaml:4: missing required key "
                            "'files[0].rules[0].match'");
    assert_null(strstr(err, "'tls.cert'"));
    free(err);
}

static void
test_wrong_kind(void **state)
{
    char *err = load_fails("kind.yaml", "collector: {address: h:1}\n"
                                        "tls:\n"
                                        "  - ca.crt\n"
                                        "state_dir: [a]\n"
                                        "files: {path: /a}\n");
    tu_assert_contains(err, "kind.yaml:2: tls: expected a map, got a list");
    tu_assert_contains(err, "kind.yaml:4: state_dir: expected a single value, "
                            "got a list");
    tu_assert_contains(err, "kind.yaml:5: files: expected a list, got a map");
    free(err);
}

static void
test_duplicate_key(void **state)
{
    char text[1024];
    char *err;

    snprintf(text, sizeof(text), "%sstate_dir: /other\n", minimal);
    err = load_fails("dup.yaml", text);
    tu_assert_contains(err, "dup.yaml:4: duplicate key 'state_dir' (first at "
                            "line 3)");
    free(err);
}

static void
test_duplicate_rule(void **state)
{
    char text[1024];
    char *err;

    snprintf(text, sizeof(text),
             "%sfiles:\n"
             "  - path: /a\n"
             "    rules:\n"
             "      - {name: r1, match: a}\n"
             "      - {name: r2, match: b}\n"
             "      - {name: r1, match: c}\n"
             "  - path: /b\n"
             "    rules:\n"
             "      - {name: r1, match: a}\n",
             minimal);
    err = load_fails("rules.yaml", text);
    tu_assert_contains(err,
                       "rules.yaml:9: rule name 'r1' is used twice in this "
                       "input (first at line 7)");
    /* The same name in another file is fine. */
    assert_null(strstr(err, "rules.yaml:12:"));
    free(err);
}

static void
test_journald(void **state)
{
    struct agent_config *c = NULL;
    char text[1024];
    const char *path;
    char *err;

    snprintf(text, sizeof(text),
             "%sjournald:\n"
             "  - {units: [app.service, db.service], priority: warning}\n"
             "  - name: apps\n"
             "    namespace: tocsin-apps.1@x\n"
             "    start_at: beginning\n",
             minimal);
    path = tu_write_file("j.yaml", text);
    assert_int_equal(config_load(path, &c), 0);
    assert_int_equal(c->njournals, 2);
    assert_string_equal(c->journals[0].name, "journal");
    assert_null(c->journals[0].namespace); /* the default namespace */
    assert_int_equal(c->journals[0].nunits, 2);
    assert_string_equal(c->journals[0].units[1], "db.service");
    assert_int_equal(c->journals[0].priority, 4);
    assert_int_equal(c->journals[0].start_at, AGENT_START_END);
    assert_string_equal(c->journals[1].name, "apps");
    assert_string_equal(c->journals[1].namespace, "tocsin-apps.1@x");
    assert_int_equal(c->journals[1].priority, 7);
    assert_int_equal(c->journals[1].start_at, AGENT_START_BEGINNING);
    config_free(c);

    /* Names a stored cursor: two inputs may not share one, also not the
     * default. Namespaces are what systemd-journald accepts. */
    snprintf(text, sizeof(text),
             "%sjournald:\n"
             "  - {priority: err}\n"
             "  - {namespace: apps}\n"
             "  - name: x\n"
             "    namespace: ../etc\n"
             "  - {name: y, namespace: 'a b'}\n"
             "  - {name: z, namespace: ..}\n",
             minimal);
    err = load_fails("j.yaml", text);
    tu_assert_contains(err, "j.yaml:6: journald[1]: name 'journal' is used "
                            "twice (first at line 5)");
    tu_assert_contains(err, "j.yaml:8: journald[2].namespace: '../etc' is not "
                            "a journal namespace (letters, digits, ':', '-', "
                            "'_', '.', '@')");
    tu_assert_contains(err, "j.yaml:9: journald[3].namespace: 'a b' is not a "
                            "journal namespace");
    tu_assert_contains(err, "j.yaml:10: journald[4].namespace: '..' is not a "
                            "journal namespace");
    free(err);
    snprintf(text, sizeof(text), "%sjournald:\n  - {namespace: ''}\n", minimal);
    err = load_fails("j.yaml", text);
    tu_assert_contains(err, "j.yaml:5: journald[0].namespace: must not be "
                            "empty");
    free(err);
}

static void
test_syntax_and_shape(void **state)
{
    char *err = load_fails("syn.yaml", "collector: {address: h:1\n"
                                       "tls: {ca: a}\n");
    tu_assert_contains(err, "syn.yaml:2: syntax error: ");
    free(err);

    err = load_fails("empty.yaml", "");
    tu_assert_contains(err, "empty.yaml:1: the file is empty");
    free(err);

    err = load_fails("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                                  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
                                  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
                                  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\n"
                                  "f: [*e, *e, *e, *e, *e, *e, *e, *e]\n");
    tu_assert_contains(err, "bomb.yaml:1: anchor '&a': anchors and aliases are "
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
        cmocka_unit_test_setup_teardown(test_follow_symlinks, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_kind, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_rule, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_journald, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_and_shape, setup,
                                        tu_teardown),
    };

    log_init("test_agent_config", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
