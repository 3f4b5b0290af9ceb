/*
 * test_rules: rule order, named captures, bytes that are not UTF-8,
 * error messages for bad patterns, and the match limits that keep a
 * catastrophic-backtracking pattern from hanging the agent.
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

#include "config.h"
#include "rules.h"
#include "util.h"

/* Build an agent_file from name/pattern pairs (NULL-terminated). */
static struct agent_file *
make_file(const char *const *spec)
{
    struct agent_file *f = tc_xcalloc(1, sizeof(*f));
    size_t n = 0;

    while (spec[2 * n] != NULL)
        n++;
    f->path = tc_xstrdup("/var/log/app.log");
    f->rules = tc_xcalloc(n ? n : 1, sizeof(*f->rules));
    f->nrules = n;
    for (size_t i = 0; i < n; i++) {
        f->rules[i].name = tc_xstrdup(spec[2 * i]);
        f->rules[i].match = tc_xstrdup(spec[2 * i + 1]);
        f->rules[i].severity = (enum tc_severity)(i % 5);
        f->rules[i].line = 10 + (int)i;
    }
    return f;
}

static void
free_file(struct agent_file *f)
{
    for (size_t i = 0; i < f->nrules; i++) {
        free(f->rules[i].name);
        free(f->rules[i].match);
        free(f->rules[i].fingerprint);
        free(f->rules[i].time_field);
    }
    free(f->rules);
    free(f->path);
    free(f);
}

static int
match_str(struct rules *rs, const char *line, struct rules_hit *hit)
{
    return rules_match(rs, line, strlen(line), hit);
}

/* The value of field key in hit, as a NUL-terminated copy (static). */
static const char *
field(const struct rules_hit *hit, const char *key)
{
    static char buf[256];

    for (uint32_t i = 0; i < hit->nfields; i++) {
        if (hit->fields[i].key.len == strlen(key) &&
            memcmp(hit->fields[i].key.ptr, key, strlen(key)) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)hit->fields[i].val.len,
                     hit->fields[i].val.ptr);
            return buf;
        }
    }
    return NULL;
}

static void
test_first_match_wins(void **state)
{
    const char *spec[] = {"timeout", "timed out",   "error", "ERROR",
                          "any-err", "ERROR|FATAL", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256];

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    assert_int_equal(rules_count(rs), 3);
    /* Both "error" and "any-err" match: the earlier one wins. */
    assert_int_equal(match_str(rs, "ERROR: disk", &hit), 1);
    assert_string_equal(hit.rule, "error");
    assert_int_equal(hit.sev, TC_SEV_INFO);
    assert_int_equal(match_str(rs, "ERROR: timed out", &hit), 0);
    assert_string_equal(hit.rule, "timeout");
    assert_int_equal(match_str(rs, "FATAL: boom", &hit), 2);
    assert_string_equal(hit.rule, "any-err");
    assert_int_equal(match_str(rs, "all is well", &hit), -1);
    /* Only len bytes count: the match must not see past them. */
    assert_int_equal(rules_match(rs, "ok ERROR", 3, &hit), -1);
    assert_int_equal(rules_errors(rs), 0);
    rules_free(rs);
    free_file(f);
}

static void
test_named_captures(void **state)
{
    const char *spec[] = {
        "http-5xx",
        "status=(?<status>5\\d\\d) path=(?<path>\\S+)(?: user=(?<user>\\w+))?",
        "plain", "(panic)", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256];

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    assert_int_equal(
        match_str(rs, "GET status=503 path=/api/x user=bob t=3", &hit), 0);
    assert_int_equal(hit.nfields, 3);
    assert_string_equal(field(&hit, "status"), "503");
    assert_string_equal(field(&hit, "path"), "/api/x");
    assert_string_equal(field(&hit, "user"), "bob");
    /* An optional group that did not take part is not a field. */
    assert_int_equal(match_str(rs, "status=500 path=/", &hit), 0);
    assert_int_equal(hit.nfields, 2);
    assert_null(field(&hit, "user"));
    /* Unnamed groups are not fields. */
    assert_int_equal(match_str(rs, "kernel panic", &hit), 1);
    assert_int_equal(hit.nfields, 0);
    rules_free(rs);
    free_file(f);
}

static void
test_arbitrary_bytes(void **state)
{
    const char *spec[] = {"bin", "fail(?<rest>.*)$", NULL};
    struct agent_file *f = make_file(spec);
    const char line[] = "x\xff\xfe\0fail\xc3\x28 end";
    struct rules *rs;
    struct rules_hit hit;
    char err[256];

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    /* Invalid UTF-8 and a NUL byte are just bytes. */
    assert_int_equal(rules_match(rs, line, sizeof(line) - 1, &hit), 0);
    assert_int_equal(hit.fields[0].val.len, 6);
    assert_memory_equal(hit.fields[0].val.ptr, "\xc3\x28 end", 6);
    assert_int_equal(rules_errors(rs), 0);
    rules_free(rs);
    free_file(f);
}

static void
test_bad_regex(void **state)
{
    const char *spec[] = {"ok", "fine", "app-error", "(unclosed", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs = (struct rules *)1;
    char err[256];

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)),
                     -EINVAL);
    assert_null(rs);
    assert_string_equal(err, "agent.yaml:11: rule 'app-error': bad regex at "
                             "offset 9: missing closing parenthesis");
    free_file(f);
}

static void
test_utf_refused(void **state)
{
    const char *spec[] = {"u", "(*UTF)caf\xc3\xa9", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    char err[256];

    /* (*UTF) would make every non-UTF-8 line a match error. */
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "agent.yaml:10: rule 'u': bad regex"));
    free_file(f);
}

static void
test_backtracking_bounded(void **state)
{
    const char *spec[] = {"evil", "^(\\w+\\s?)*$", "after", "x", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256], *line;
    size_t n = 20000;

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    /* Words followed by a character that makes the whole match fail:
     * exponential without a limit. */
    line = tc_xmalloc(n + 2);
    for (size_t i = 0; i < n; i++)
        line[i] = (i % 7 == 6) ? ' ' : 'a';
    line[n] = '!';
    line[n + 1] = '\0';
    assert_int_equal(match_str(rs, line, &hit), -1);
    assert_int_equal(rules_errors(rs), 1);
    assert_true(strlen(rules_last_error(rs)) > 0);
    /* The error skips only the rule that hit it. */
    line[0] = 'x';
    assert_int_equal(match_str(rs, line, &hit), 1);
    assert_string_equal(hit.rule, "after");
    assert_int_equal(rules_errors(rs), 2);
    /* And the ruleset still works for ordinary lines. */
    assert_int_equal(match_str(rs, "short words", &hit), 0);
    free(line);
    rules_free(rs);
    free_file(f);
}

static void
test_empty(void **state)
{
    const char *spec[] = {NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256];

    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    assert_int_equal(match_str(rs, "anything", &hit), -1);
    rules_free(rs);
    rules_free(NULL);
    free_file(f);
}

/* Fingerprint templates: rendering, and names checked at compile. */
static void
test_fingerprint(void **state)
{
    const char *spec[] = {"http",
                          "status=(?<code>\\d+)(?: path=(?<path>\\S+))?", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256], fp[RULES_FP_MAX];

    f->rules[0].fingerprint = tc_xstrdup("{rule}:{code}@{host}{source}/{path}");
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    assert_int_equal(match_str(rs, "GET status=503 path=/api", &hit), 0);
    assert_ptr_equal(hit.conf, &f->rules[0]);
    assert_int_equal(rules_fingerprint(&hit, "web-01", "/l", fp, sizeof(fp)),
                     (int)strlen("http:503@web-01/l//api"));
    assert_string_equal(fp, "http:503@web-01/l//api");
    /* A capture that did not take part renders empty. */
    assert_int_equal(match_str(rs, "status=404", &hit), 0);
    rules_fingerprint(&hit, "h", "s", fp, sizeof(fp));
    assert_string_equal(fp, "http:404@hs/");
    /* Cut at the buffer, NUL-terminated. */
    assert_int_equal(rules_fingerprint(&hit, "h", "s", fp, 5), 4);
    assert_string_equal(fp, "http");
    rules_free(rs);

    /* No template: -1 (the collector's default applies). */
    free(f->rules[0].fingerprint);
    f->rules[0].fingerprint = NULL;
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)), 0);
    assert_int_equal(match_str(rs, "status=1", &hit), 0);
    assert_int_equal(rules_fingerprint(&hit, "h", "s", fp, sizeof(fp)), -1);
    rules_free(rs);

    /* An unknown name or an unclosed brace is a config error. */
    f->rules[0].fingerprint = tc_xstrdup("{rule}:{cod}");
    rs = (struct rules *)1;
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)),
                     -EINVAL);
    assert_null(rs);
    assert_string_equal(err, "agent.yaml:10: rule 'http': fingerprint "
                             "'{rule}:{cod}': unknown name 'cod' (use rule, "
                             "host, source or a named capture of the "
                             "pattern: code, path)");
    free(f->rules[0].fingerprint);
    f->rules[0].fingerprint = tc_xstrdup("{rule");
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "agent.yaml:10: rule 'http': fingerprint "
                             "'{rule': '{' without '}'");
    free_file(f);
}

static void
test_time_field_checked(void **state)
{
    const char *spec[] = {"ok", "^(?<when>\\S+) ", "t", "^(?<ts>\\S+) x", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    char err[256];

    f->rules[0].time_field = tc_xstrdup("when");
    f->rules[1].time_field = tc_xstrdup("time");
    assert_int_equal(rules_new("agent.yaml", f, &rs, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "agent.yaml:11: rule 't': time.field 'time' is "
                             "not a named capture of the pattern (captures: "
                             "ts)");
    free_file(f);
}

/* rules_compile takes any rule list (journald's). */
static void
test_compile_list(void **state)
{
    const char *spec[] = {"a", "A", "b", "B", NULL};
    struct agent_file *f = make_file(spec);
    struct rules *rs;
    struct rules_hit hit;
    char err[256];

    assert_int_equal(
        rules_compile("agent.yaml", f->rules + 1, 1, &rs, err, sizeof(err)), 0);
    assert_int_equal(rules_count(rs), 1);
    assert_int_equal(match_str(rs, "A", &hit), -1);
    assert_int_equal(match_str(rs, "B", &hit), 0);
    assert_string_equal(hit.rule, "b");
    rules_free(rs);
    free_file(f);
}

/* rules_check: one rule, the failing key and a reason without prefix
 * (config_load adds file, line and the dotted key). */
static void
test_check(void **state)
{
    const char *spec[] = {"ok", "^(?<n>\\d+)", "bad", "ERROR (", NULL};
    struct agent_file *f = make_file(spec);
    const char *key = NULL;
    char err[256];

    assert_int_equal(rules_check(&f->rules[0], &key, err, sizeof(err)), 0);
    assert_int_equal(rules_check(&f->rules[1], &key, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(key, "match");
    assert_string_equal(err,
                        "bad regex at offset 7: missing closing parenthesis");
    f->rules[0].fingerprint = tc_xstrdup("{rule}:{m}");
    assert_int_equal(rules_check(&f->rules[0], &key, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(key, "fingerprint");
    free(f->rules[0].fingerprint);
    f->rules[0].fingerprint = NULL;
    f->rules[0].time_field = tc_xstrdup("t");
    assert_int_equal(rules_check(&f->rules[0], &key, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(key, "time.field");
    assert_int_equal(rules_check_pattern("^x(", err, sizeof(err)), -EINVAL);
    assert_int_equal(rules_check_pattern("^x", err, sizeof(err)), 0);
    free_file(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_named_captures),
        cmocka_unit_test(test_arbitrary_bytes),
        cmocka_unit_test(test_bad_regex),
        cmocka_unit_test(test_utf_refused),
        cmocka_unit_test(test_backtracking_bounded),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_time_field_checked),
        cmocka_unit_test(test_compile_list),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
