/*
 * test_actions: agent/actions.c. The allowlist as loaded from agent.yaml
 * (every load-time refusal names FILE:LINE), and actions_prepare on a
 * good request and on each class of refusal: not allowlisted, missing
 * and extra parameters, type failures, shell metacharacters, "../",
 * option injection, control characters, over-long values.
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

#include "actions.h"
#include "config.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

static const char head[] = "collector: {address: 'collector.example:7400'}\n"
                           "tls: {ca: ca.crt, cert: a.crt, key: a.key}\n"
                           "state_dir: /var/lib/tocsin-agent\n";

static const char good[] =
    "actions:\n"
    "  - name: restart-unit\n" /* line 5 */
    "    exec: /bin/true\n"
    "    args: [restart, '{unit}']\n"
    "    params:\n"
    "      unit: {type: enum, values: [nginx.service, php-fpm.service]}\n"
    "    timeout: 30s\n"
    "  - name: ping\n" /* line 11 */
    "    exec: /bin/true\n"
    "    args: ['-c', '{count}', '--host={host}', '{{x}}']\n"
    "    params:\n"
    "      count: {type: int, min: 1, max: 10}\n"
    "      host: {type: hostname}\n"
    "    auto: true\n"
    "  - name: clean\n"
    "    exec: /bin/true\n"
    "    args: ['{dir}']\n"
    "    params:\n"
    "      dir: {type: path, prefix: /var/tmp/app/}\n";

static struct agent_config *cfg;

static int
setup(void **state)
{
    char *text = tc_xasprintf("%s%s", head, good);
    int rc;

    if (tu_setup("tocsin-actions") < 0)
        return -1;
    rc = config_load(tu_write_file("agent.yaml", text), &cfg);
    free(text);
    return rc;
}

static int
teardown(void **state)
{
    config_free(cfg);
    cfg = NULL;
    return tu_teardown(state);
}

/* Load head + body, expecting -EINVAL; returns the log (caller frees). */
static char *
load_fails(const char *body)
{
    struct agent_config *c = (struct agent_config *)1;
    char *text = tc_xasprintf("%s%s", head, body);
    const char *path = tu_write_file("bad.yaml", text);
    char *err;
    int rc;

    tu_capture_begin();
    rc = config_load(path, &c);
    err = tu_capture_end();
    free(text);
    assert_int_equal(rc, -EINVAL);
    assert_null(c);
    return err;
}

static void
expect_load_error(const char *body, const char *line, const char *what)
{
    char *err = load_fails(body);

    tu_assert_contains(err, line);
    tu_assert_contains(err, what);
    free(err);
}

static void
test_load(void **state)
{
    const struct action_def *a;

    assert_int_equal(cfg->actions.n, 3);
    a = actions_find(&cfg->actions, "restart-unit");
    assert_non_null(a);
    assert_string_equal(a->exec, "/bin/true");
    assert_int_equal(a->nargs, 2);
    assert_int_equal(a->nparams, 1);
    assert_int_equal(a->params[0].type, ACTION_P_ENUM);
    assert_int_equal(a->params[0].nvalues, 2);
    assert_int_equal(a->timeout_ms, 30000);
    assert_int_equal(a->auto_run, 0);
    assert_int_equal(a->line, 5);
    a = actions_find(&cfg->actions, "ping");
    assert_int_equal(a->auto_run, 1);
    assert_int_equal(a->params[0].min, 1);
    assert_int_equal(a->params[0].max, 10);
    assert_int_equal(a->params[1].type, ACTION_P_HOSTNAME);
    a = actions_find(&cfg->actions, "clean");
    assert_string_equal(a->params[0].prefix, "/var/tmp/app");
    assert_null(actions_find(&cfg->actions, "nope"));
}

static void
test_load_errors(void **state)
{
    expect_load_error("actions:\n  - {name: a, exec: bin/true}\n",
                      ":5:", "must be an absolute path");
    expect_load_error("actions:\n  - {name: a, exec: /nonexistent/x}\n",
                      ":5:", "No such file");
    expect_load_error("actions:\n  - {name: a, exec: /bin/true, args: "
                      "['{x}'], params: {x: {type: string}}}\n",
                      ":5:", "unknown type 'string'");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    args: ['{n}']\n    params:\n"
                      "      n: {type: int, min: 5, max: 1}\n",
                      ":9:", "min 5 is above max 1");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    args: ['{n}']\n    params:\n"
                      "      n: {type: int, min: 1}\n",
                      ":9:", "needs min and max");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    user: no-such-user-tocsin\n",
                      ":7:", "unknown user 'no-such-user-tocsin'");
    expect_load_error("actions:\n  - {name: a, exec: /bin/true}\n"
                      "  - {name: a, exec: /bin/true}\n",
                      ":6:", "action name 'a' is used twice (first at line 5)");
    expect_load_error("actions:\n  - {name: a, exec: /bin/true, timeout: 0}\n",
                      ":5:", "actions[0].timeout: '0' is out of range");
    expect_load_error("actions:\n  - {name: a, exec: /bin/true, timeout: 2h}\n",
                      ":5:", "actions[0].timeout: '2h' is out of range");
    {
        /* Written 0600 (umask of the test): not executable. */
        char *body = tc_xasprintf("actions:\n  - {name: a, exec: %s}\n",
                                  tu_write_file("notexec", "x\n"));

        expect_load_error(body, ":5:", "is not an executable file");
        free(body);
    }
    expect_load_error("actions:\n  - {name: a, exec: /bin/true, args: "
                      "['{x']}\n",
                      ":5:", "'{' opens no {param}");
    expect_load_error("actions:\n  - {name: a, exec: /bin/true, args: "
                      "['{y}']}\n",
                      ":5:", "{y} is not a declared parameter");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    params:\n      h: {type: hostname}\n",
                      ":8:", "'h' is declared but not used");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    args: ['{p}']\n    params:\n"
                      "      p: {type: path, prefix: relative/dir}\n",
                      ":9:", "must be an absolute directory");
    expect_load_error("actions:\n  - name: a\n    exec: /bin/true\n"
                      "    args: ['{p}']\n    params:\n"
                      "      p: {type: enum}\n",
                      ":9:", "needs a non-empty list 'values'");
    expect_load_error("actions:\n  - {name: '-a', exec: /bin/true}\n",
                      ":5:", "not starting with '-'");
}

/* actions_prepare on a request of nkv key=value pairs. */
static int
prepare(const char *name, char ***argv, char *err, size_t errlen, int nkv, ...)
{
    struct tc_conf_kv kv[8];
    va_list ap;

    va_start(ap, nkv);
    for (int i = 0; i < nkv; i++) {
        kv[i].key = va_arg(ap, char *);
        kv[i].val = va_arg(ap, char *);
    }
    va_end(ap);
    return actions_prepare(&cfg->actions, name, kv, (size_t)nkv, argv, err,
                           errlen);
}

static void
test_good(void **state)
{
    char **argv = NULL, err[256];

    assert_int_equal(prepare("restart-unit", &argv, err, sizeof(err), 1, "unit",
                             "php-fpm.service"),
                     0);
    assert_string_equal(argv[0], "/bin/true");
    assert_string_equal(argv[1], "restart");
    assert_string_equal(argv[2], "php-fpm.service");
    assert_null(argv[3]);
    actions_argv_free(argv);

    assert_int_equal(prepare("ping", &argv, err, sizeof(err), 2, "host",
                             "db-01.example.com", "count", "3"),
                     0);
    assert_string_equal(argv[1], "-c");
    assert_string_equal(argv[2], "3");
    assert_string_equal(argv[3], "--host=db-01.example.com");
    assert_string_equal(argv[4], "{x}");
    assert_null(argv[5]);
    actions_argv_free(argv);

    /* Relative paths are under the prefix; "//" and "/./" collapse. */
    assert_int_equal(
        prepare("clean", &argv, err, sizeof(err), 1, "dir", "cache//./old"), 0);
    assert_string_equal(argv[1], "/var/tmp/app/cache/old");
    actions_argv_free(argv);
    assert_int_equal(
        prepare("clean", &argv, err, sizeof(err), 1, "dir", "/var/tmp/app/x"),
        0);
    assert_string_equal(argv[1], "/var/tmp/app/x");
    actions_argv_free(argv);
}

/* A refusal with rc and a reason containing want; argv stays NULL. */
static void
refused(int want_rc, const char *want, const char *name, int nkv,
        const char *k1, const char *v1, const char *k2, const char *v2)
{
    char **argv = (char **)1, err[256] = "";
    int rc;

    if (nkv == 0)
        rc = prepare(name, &argv, err, sizeof(err), 0);
    else if (nkv == 1)
        rc = prepare(name, &argv, err, sizeof(err), 1, k1, v1);
    else
        rc = prepare(name, &argv, err, sizeof(err), 2, k1, v1, k2, v2);
    assert_int_equal(rc, want_rc);
    assert_null(argv);
    tu_assert_contains(err, want);
}

static void
test_refusals(void **state)
{
    char big[ACTIONS_VALUE_MAX + 2];

    refused(-ENOENT, "action 'rm-rf' is not allowlisted", "rm-rf", 0, NULL,
            NULL, NULL, NULL);
    refused(-ENOENT, "not allowlisted", "restart-unit\x1b[2J", 1, "unit",
            "nginx.service", NULL, NULL);
    refused(-EINVAL, "missing parameter 'unit'", "restart-unit", 0, NULL, NULL,
            NULL, NULL);
    refused(-EINVAL, "unknown parameter 'extra'", "restart-unit", 2, "unit",
            "nginx.service", "extra", "1");
    refused(-EINVAL, "given twice", "restart-unit", 2, "unit", "nginx.service",
            "unit", "nginx.service");
    refused(-EINVAL, "not one of the allowed values", "restart-unit", 1, "unit",
            "sshd.service", NULL, NULL);
    refused(-EINVAL, "not an integer", "ping", 2, "count", "3; rm -rf /",
            "host", "a");
    refused(-EINVAL, "not an integer", "ping", 2, "count", "0x3", "host", "a");
    refused(-EINVAL, "out of range [1, 10]", "ping", 2, "count", "11", "host",
            "a");
    refused(-EINVAL, "out of range", "ping", 2, "count", "99999999999999999999",
            "host", "a");
    refused(-EINVAL, "shell metacharacter ';'", "ping", 2, "count", "1", "host",
            "a;rm -rf /");
    refused(-EINVAL, "shell metacharacter '$'", "ping", 2, "count", "1", "host",
            "$(touch x)");
    refused(-EINVAL, "shell metacharacter '`'", "ping", 2, "count", "1", "host",
            "`id`");
    refused(-EINVAL, "shell metacharacter '|'", "ping", 2, "count", "1", "host",
            "a|b");
    refused(-EINVAL, "leading '-'", "ping", 2, "count", "1", "host", "--foo");
    refused(-EINVAL, "control character \\x0a", "ping", 2, "count", "1", "host",
            "a\nb");
    refused(-EINVAL, "not a host name", "ping", 2, "count", "1", "host",
            "a-.example");
    refused(-EINVAL, "not a host name", "ping", 2, "count", "1", "host", "a_b");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    refused(-EINVAL, "value too long", "clean", 1, "dir", big, NULL, NULL);
    memset(big, 'a', 254);
    big[254] = '\0';
    refused(-EINVAL, "value too long (254 bytes, at most 253)", "ping", 2,
            "count", "1", "host", big);
    refused(-EINVAL, "'..' in", "clean", 1, "dir", "../../etc/shadow", NULL,
            NULL);
    refused(-EINVAL, "'..' in", "clean", 1, "dir", "/var/tmp/app/../../etc",
            NULL, NULL);
    refused(-EINVAL, "is not under /var/tmp/app", "clean", 1, "dir",
            "/etc/shadow", NULL, NULL);
    refused(-EINVAL, "is not under /var/tmp/app", "clean", 1, "dir",
            "/var/tmp/apple", NULL, NULL);
    refused(-EINVAL, "is not under", "clean", 1, "dir", "/var/tmp/app", NULL,
            NULL);
    refused(-EINVAL, "leading '-'", "clean", 1, "dir", "-rf", NULL, NULL);
    refused(-EINVAL, "empty value", "clean", 1, "dir", "", NULL, NULL);
    refused(-EINVAL, "shell metacharacter ' '", "clean", 1, "dir", "a b", NULL,
            NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_refusals),
    };

    log_init("test_actions", LOG_TO_STDERR, 0);
    return cmocka_run_group_tests(tests, setup, teardown);
}
