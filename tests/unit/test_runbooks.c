/*
 * test_runbooks: collector/runbooks on good files (every key, defaults),
 * each kind of broken file (with the line its reason names), the
 * directory refusals, each match condition, priority and tie order, the
 * nearest miss, templates (check and expansion), and the set's hashes.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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

#include "hash.h"
#include "log.h"
#include "runbooks/runbooks.h"
#include "testutil.h"
#include "util.h"
#include "wire.h"

static const char good[] =
    "---\n"
    "id: cache-down\n"
    "title: Cache unreachable\n"
    "match:\n"
    "  class: [upstream-timeout, cache-*]\n"
    "  labels: {service: web}\n"
    "  severity: [error, critical]\n"
    "  problem_rule: [reference, spread]\n"
    "  hosts: [\"web-*\"]\n"
    "priority: 10\n"
    "links: [\"https://wiki/cache\"]\n"
    "action:\n"
    "  name: restart-cache\n"
    "  params: {unit: \"memcached.service\", host: \"{field.upstream_host}\"}\n"
    "---\n"
    "1. Check the cache.\n";

/* A scratch directory with an empty rb/ in it. */
static int
setup(void **state)
{
    char dir[128];

    (void)state;
    if (tu_setup("tocsin-runbooks") < 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s/rb", tu_tmpdir);
    return mkdir(dir, 0700);
}

/* Parse text; on failure the reason in err. */
static int
parse(const char *text, struct runbook *rb, char *err, size_t errlen)
{
    int rc;

    tu_capture_begin();
    rc = runbook_parse("/rb/x.md", "x", text, strlen(text), rb, err, errlen);
    free(tu_capture_end());
    return rc;
}

/* text must be refused with a reason containing want. */
static void
refused(const char *text, const char *want)
{
    struct runbook rb;
    char err[1024] = "";

    if (parse(text, &rb, err, sizeof(err)) == 0) {
        runbook_free(&rb);
        fail_msg("accepted, expected '%s'", want);
    }
    tu_assert_contains(err, want);
}

static void
test_parse_good(void **state)
{
    struct runbook rb;
    char err[256] = "";

    (void)state;
    assert_int_equal(parse(good, &rb, err, sizeof(err)), 0);
    assert_string_equal(rb.id, "cache-down");
    assert_string_equal(rb.title, "Cache unreachable");
    assert_string_equal(rb.file, "/rb/x.md");
    assert_string_equal(rb.body, "1. Check the cache.\n");
    assert_int_equal(rb.match.nclasses, 2);
    assert_string_equal(rb.match.classes[1], "cache-*");
    assert_int_equal(rb.match.nlabels, 1);
    assert_string_equal(rb.match.labels[0].key, "service");
    assert_string_equal(rb.match.labels[0].val, "web");
    assert_int_equal(rb.match.severities,
                     (1u << TC_SEV_ERROR) | (1u << TC_SEV_CRITICAL));
    assert_int_equal(rb.match.nrules, 2);
    assert_int_equal(rb.match.nhosts, 1);
    assert_int_equal(rb.priority, 10);
    assert_int_equal(rb.nlinks, 1);
    assert_string_equal(rb.action, "restart-cache");
    /* Sorted by key: the signed bytes will list them in that order. */
    assert_int_equal(rb.nparams, 2);
    assert_string_equal(rb.params[0].key, "host");
    assert_string_equal(rb.params[1].key, "unit");
    assert_int_equal(rb.hash, tc_hash64(good, strlen(good)));
    runbook_free(&rb);
}

static void
test_parse_defaults(void **state)
{
    struct runbook rb;
    char err[256] = "";
    const char *t = "---\r\n"
                    "title: T\r\n"
                    "match: {class: disk-full}\r\n"
                    "---\r\n";

    (void)state;
    assert_int_equal(parse(t, &rb, err, sizeof(err)), 0);
    assert_string_equal(rb.id, "x"); /* the file name */
    assert_int_equal(rb.priority, 0);
    assert_null(rb.action);
    assert_int_equal(rb.match.nclasses, 1); /* one value is a list of one */
    assert_string_equal(rb.body, "");
    runbook_free(&rb);
}

static void
test_parse_broken(void **state)
{
    (void)state;
    refused("title: T\n", "/rb/x.md:1: no front matter");
    refused("---\ntitle: T\nmatch: {class: a}\n", "/rb/x.md:1: front matter");
    refused("---\ntitle: T\nmatch: {class: a}\nnope: 1\n---\n",
            "/rb/x.md:4: unknown key 'nope'");
    refused("---\ntitle: T\nmatch: {clas: a}\n---\n",
            "/rb/x.md:3: match: unknown condition 'clas'");
    refused("---\ntitle: T\nmatch: {}\n---\n",
            "/rb/x.md:3: match: no condition");
    refused("---\ntitle: T\n---\n", "match is required");
    refused("---\nmatch: {class: a}\n---\n", "title is required");
    refused("---\ntitle: T\nmatch: {class: []}\n---\n",
            "/rb/x.md:3: match.class: an empty list");
    refused("---\ntitle: T\nmatch:\n  severity: [bad]\n---\n",
            "/rb/x.md:4: match.severity: 'bad'");
    refused("---\ntitle: T\nmatch:\n  problem_rule: [magic]\n---\n",
            "match.problem_rule: 'magic'");
    refused("---\ntitle: T\nmatch: {class: a}\npriority: high\n---\n",
            "/rb/x.md:4: priority: 'high'");
    refused("---\ntitle: T\nmatch: {class: a}\npriority: 99999999\n---\n",
            "priority");
    refused("---\ntitle: \"a\\x1bb\"\nmatch: {class: a}\n---\n",
            "/rb/x.md:2: title: control character 0x1b");
    refused("---\ntitle: T\nmatch: {class: a}\nid: \"../etc\"\n---\n",
            "/rb/x.md:4: id: expected");
    refused("---\ntitle: T\nmatch: {class: a}\naction: {params: {a: b}}\n"
            "---\n",
            "action: name is required");
    refused("---\ntitle: T\nmatch: {class: a}\naction: {name: \"rm -rf\"}\n"
            "---\n",
            "action.name: expected");
    refused("---\ntitle: T\nmatch: {class: a}\n"
            "action: {name: r, params: {u: \"{shell}\"}}\n---\n",
            "/rb/x.md:4: action.params.u: template: bad placeholder");
    refused("---\ntitle: T\nmatch: {class: a}\n"
            "action: {name: r, params: {\"a-b\": x}}\n---\n",
            "action.params: name 'a-b'");
    /* common/conf's refusals, with the file's own line numbers. */
    refused("---\ntitle: T\ntitle: U\nmatch: {class: a}\n---\n",
            "/rb/x.md:3: ");
    refused("---\ntitle: &a T\nmatch: {class: *a}\n---\n", "/rb/x.md:2: ");
    refused("---\ntitle: [unclosed\nmatch: {class: a}\n---\n", "/rb/x.md:");
    {
        static const char nul[] = "---\ntitle: T\nmatch: {class: a}\n---\n"
                                  "body\0more";
        struct runbook rb;
        char err[256] = "";

        tu_capture_begin();
        assert_int_equal(runbook_parse("/rb/x.md", "x", nul, sizeof(nul) - 1,
                                       &rb, err, sizeof(err)),
                         -EINVAL);
        free(tu_capture_end());
        tu_assert_contains(err, "/rb/x.md:5: a NUL byte");
    }
}

/* A YAML bomb and deep nesting: refused, quickly, without blowing up. */
static void
test_parse_hostile(void **state)
{
    char *deep = tc_xmalloc(200000), *p = deep;

    (void)state;
    p += sprintf(p, "---\ntitle: T\nmatch: {class: a}\nlinks: ");
    for (int i = 0; i < 10000; i++)
        *p++ = '[';
    strcpy(p, "\n---\n");
    refused(deep, "/rb/x.md:");
    free(deep);
    refused("---\na: &a [x, x, x, x, x, x, x, x, x]\n"
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
            "title: T\nmatch: {class: a}\n---\n",
            "/rb/x.md:2: ");
}

static void
test_template(void **state)
{
    struct runbook_kv fields[] = {{"upstream_host", "cache-01"}};
    struct runbook_kv labels[] = {{"service", "web"}};
    struct runbook_subject s = {.host = "web-01",
                                .fields = fields,
                                .nfields = 1,
                                .labels = labels,
                                .nlabels = 1};
    char out[64], err[256];

    (void)state;
    assert_int_equal(runbook_template_check("plain", err, sizeof(err)), 0);
    assert_int_equal(
        runbook_template_check("{host}:{field.a_b}{label.x}", err, sizeof(err)),
        0);
    assert_int_equal(runbook_template_check("{{lit}}", err, sizeof(err)), 0);
    assert_int_equal(runbook_template_check("{field.}", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(runbook_template_check("{host", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(runbook_template_check("a}b", err, sizeof(err)), -EINVAL);
    assert_int_equal(runbook_template_check("{env.HOME}", err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(runbook_template_check("{field.$(x)}", err, sizeof(err)),
                     -EINVAL);

    assert_int_equal(runbook_expand("{host} -> {field.upstream_host} "
                                    "({label.service}) {{x}}",
                                    &s, out, sizeof(out), err, sizeof(err)),
                     0);
    assert_string_equal(out, "web-01 -> cache-01 (web) {x}");
    assert_int_equal(
        runbook_expand("{field.nope}", &s, out, sizeof(out), err, sizeof(err)),
        -ENOENT);
    tu_assert_contains(err, "no field nope");
    assert_int_equal(runbook_expand("{host}{host}{host}{host}{host}{host}"
                                    "{host}{host}{host}{host}{host}",
                                    &s, out, sizeof(out), err, sizeof(err)),
                     -ENOBUFS);
}

/* A set built by hand, in load order (priority, then id). */
static struct runbook_set *
set_of(const char *const *texts, size_t n)
{
    struct runbook_set *set = runbooks_empty();
    char err[512];

    set->v = tc_xcalloc(n, sizeof(*set->v));
    for (size_t i = 0; i < n; i++) {
        char id[16];

        snprintf(id, sizeof(id), "rb%zu", i);
        tu_capture_begin();
        assert_int_equal(runbook_parse("/rb/t.md", id, texts[i],
                                       strlen(texts[i]), &set->v[i], err,
                                       sizeof(err)),
                         0);
        free(tu_capture_end());
        set->n++;
    }
    return set;
}

static const struct runbook_kv web_labels[] = {{"service", "web"},
                                               {"env", "prod"}};

static struct runbook_subject
subject(void)
{
    struct runbook_subject s = {.cls = "upstream-timeout",
                                .host = "web-01",
                                .severity = TC_SEV_ERROR,
                                .problem_rule = "reference",
                                .labels = web_labels,
                                .nlabels = 2};
    return s;
}

static void
test_match_conditions(void **state)
{
    static const char *const t[] = {"---\ntitle: T\nmatch:\n"
                                    "  class: [upstream-*]\n"
                                    "  hosts: [web-*]\n"
                                    "  severity: [error, critical]\n"
                                    "  labels: {service: w*, env: prod}\n"
                                    "  problem_rule: [reference]\n---\n"};
    struct runbook_set *set = set_of(t, 1);
    struct runbook_check checks[1];
    struct runbook_verdict v = {.checks = checks, .cap = 1};
    struct runbook_subject s = subject();
    struct runbook_kv other[] = {{"service", "api"}};

    (void)state;
    assert_int_equal(runbook_match(set, &s, &v), 1);
    assert_ptr_equal(v.best, &set->v[0]);
    assert_int_equal(checks[0].nconds, 6);
    assert_int_equal(checks[0].npass, 6);

    s = subject();
    s.cls = "disk-full";
    assert_int_equal(runbook_match(set, &s, &v), 0);
    assert_null(v.best);
    assert_string_equal(checks[0].why, "class disk-full not in [upstream-*]");
    assert_int_equal(checks[0].npass, 5);

    s = subject();
    s.host = "db-01";
    runbook_match(set, &s, &v);
    assert_string_equal(checks[0].why, "host db-01 not in [web-*]");

    s = subject();
    s.severity = TC_SEV_WARNING;
    runbook_match(set, &s, &v);
    assert_string_equal(checks[0].why,
                        "severity warning not in [error, critical]");

    s = subject();
    s.labels = other;
    s.nlabels = 1;
    runbook_match(set, &s, &v);
    assert_string_equal(checks[0].why, "label service=api does not match w*");
    assert_int_equal(checks[0].npass, 4); /* env absent too */

    s = subject();
    s.nlabels = 0;
    runbook_match(set, &s, &v);
    assert_string_equal(checks[0].why, "label service absent (wanted w*)");

    s = subject();
    s.problem_rule = NULL;
    runbook_match(set, &s, &v);
    assert_string_equal(checks[0].why, "problem rule none not in [reference]");
    assert_null(v.best);
    assert_ptr_equal(v.nearest, &set->v[0]);
    assert_string_equal(v.nearest_why, checks[0].why);
    runbook_set_unref(set);
}

/* "none" matches an incident in no problem, and only that. */
static void
test_match_no_problem(void **state)
{
    static const char *const t[] = {
        "---\ntitle: T\nmatch: {problem_rule: none}\n---\n"};
    struct runbook_set *set = set_of(t, 1);
    struct runbook_verdict v = {0};
    struct runbook_subject s = subject();

    (void)state;
    assert_int_equal(runbook_match(set, &s, &v), 0);
    s.problem_rule = NULL;
    assert_int_equal(runbook_match(set, &s, &v), 1);
    s.problem_rule = "";
    assert_int_equal(runbook_match(set, &s, &v), 1);
    runbook_set_unref(set);
}

static void
write_rb(const char *name, const char *id, int prio, const char *cls)
{
    char text[512];

    snprintf(text, sizeof(text),
             "---\nid: %s\ntitle: T %s\npriority: %d\nmatch: {class: \"%s\"}"
             "\n---\nsteps\n",
             id, id, prio, cls);
    tu_write_file(name, text);
}

static struct runbook_set *
load_dir(const char *rel, char **log)
{
    struct runbook_set *set = NULL;
    char dir[256];

    snprintf(dir, sizeof(dir), "%s/%s", tu_tmpdir, rel);
    tu_capture_begin();
    assert_int_equal(runbooks_load(dir, &set), 0);
    *log = tu_capture_end();
    return set;
}

static void
test_priority_and_ties(void **state)
{
    struct runbook_set *set;
    struct runbook_verdict v = {0};
    struct runbook_subject s = subject();
    char *log;

    (void)state;
    write_rb("rb/a.md", "zeta", 5, "upstream-*");
    write_rb("rb/b.md", "alpha", 5, "upstream-timeout");
    write_rb("rb/c.md", "low", 1, "*");
    write_rb("rb/d.md", "high", 9, "disk-*");
    set = load_dir("rb", &log);
    free(log);
    assert_int_equal(set->n, 4);
    /* Sorted: high (9), alpha and zeta (5, by id), low (1). */
    assert_string_equal(set->v[0].id, "high");
    assert_string_equal(set->v[1].id, "alpha");
    assert_string_equal(set->v[2].id, "zeta");
    assert_string_equal(set->v[3].id, "low");
    assert_int_equal(runbook_match(set, &s, &v), 3);
    assert_string_equal(v.best->id, "alpha");
    assert_string_equal(v.nearest->id, "high");
    runbook_set_unref(set);
}

static void
test_dir_refusals(void **state)
{
    struct runbook_set *set;
    char *log, path[512], *big;

    (void)state;
    write_rb("rb/good.md", "good", 0, "a");
    write_rb("rb/dup.md", "good", 0, "b");
    tu_write_file("rb/notes.txt", "not a runbook");
    tu_write_file("rb/broken.md", "---\ntitle: B\nmatch: {class: a}\n"
                                  "priority: x\n---\n");
    snprintf(path, sizeof(path), "%s/rb/shadow.md", tu_tmpdir);
    assert_int_equal(symlink("/etc/shadow", path), 0);
    snprintf(path, sizeof(path), "%s/rb/fifo.md", tu_tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/rb/dir.md", tu_tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    big = tc_xmalloc(RUNBOOK_MAX_BYTES + 2);
    memset(big, 'x', RUNBOOK_MAX_BYTES + 1);
    big[RUNBOOK_MAX_BYTES + 1] = '\0';
    tu_write_file("rb/huge.md", big);
    free(big);
    tu_write_file("rb/open.md", "---\ntitle: O\nmatch: {class: a}\n");
    snprintf(path, sizeof(path), "%s/rb/open.md", tu_tmpdir);
    assert_int_equal(chmod(path, 0666), 0);

    set = load_dir("rb", &log);
    assert_int_equal(set->n, 1);
    assert_string_equal(set->v[0].id, "good");
    assert_int_equal(set->nskipped, 7);
    tu_assert_contains(log, "rb/broken.md:4: priority");
    /* File name order: dup.md comes first and keeps the id. */
    tu_assert_contains(log, "rb/good.md:1: id good already used by");
    tu_assert_contains(set->v[0].file, "rb/dup.md");
    tu_assert_contains(log, "rb/shadow.md: a symbolic link, refused");
    tu_assert_contains(log, "rb/fifo.md: a FIFO, refused");
    tu_assert_contains(log, "rb/dir.md: a directory, refused");
    tu_assert_contains(log, "rb/huge.md: 262145 bytes, refused");
    tu_assert_contains(log, "rb/open.md: writable by every user");
    tu_assert_contains(log, "1 loaded");
    /* The reasons are kept for tocsinctl runbooks list, file order. */
    tu_assert_contains(set->skipped[0].error, "broken.md:4: priority");
    free(log);
    runbook_set_unref(set);
}

/* Past RUNBOOK_MAX_FILES, the rest (in name order) are skipped. */
static void
test_dir_too_many(void **state)
{
    struct runbook_set *set;
    char name[64], id[32], *log;

    (void)state;
    for (int i = 0; i < RUNBOOK_MAX_FILES + 2; i++) {
        snprintf(name, sizeof(name), "rb/f%04d.md", i);
        snprintf(id, sizeof(id), "f%04d", i);
        write_rb(name, id, 0, "a");
    }
    set = load_dir("rb", &log);
    assert_int_equal(set->n, RUNBOOK_MAX_FILES);
    assert_int_equal(set->nskipped, 2);
    tu_assert_contains(log, "more than 1000 *.md files: 2 skipped, from "
                            "f1000.md on");
    tu_assert_contains(set->skipped[1].error, "f1001.md: more than 1000");
    free(log);
    runbook_set_unref(set);
}

static void
test_dir_missing(void **state)
{
    struct runbook_set *set = NULL;
    char dir[256], *log;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/nope", tu_tmpdir);
    tu_capture_begin();
    assert_int_equal(runbooks_load(dir, &set), -ENOENT);
    log = tu_capture_end();
    assert_null(set);
    tu_assert_contains(log, "nope: no such directory");
    free(log);
    tu_write_file("file", "x");
    snprintf(dir, sizeof(dir), "%s/file", tu_tmpdir);
    tu_capture_begin();
    assert_int_equal(runbooks_load(dir, &set), -ENOTDIR);
    log = tu_capture_end();
    tu_assert_contains(log, "not a directory");
    free(log);
}

static void
test_hashes(void **state)
{
    struct runbook_set *a, *b, *c;
    char *log;
    uint64_t h;

    (void)state;
    write_rb("rb/a.md", "a", 0, "x");
    write_rb("rb/b.md", "b", 0, "y");
    a = load_dir("rb", &log);
    free(log);
    b = load_dir("rb", &log);
    free(log);
    assert_int_equal(a->hash, b->hash);
    h = a->v[0].hash;
    write_rb("rb/a.md", "a", 0, "z");
    c = load_dir("rb", &log);
    free(log);
    assert_int_not_equal(c->hash, a->hash);
    assert_int_not_equal(c->v[0].hash, h);
    assert_int_equal(c->v[1].hash, a->v[1].hash);
    runbook_set_unref(a);
    runbook_set_unref(b);
    runbook_set_unref(c);
}

/*
 * Globs are fnmatch(3) patterns, and subject values are an agent's to
 * choose (a class or label value of 64 KiB): a many-star pattern must
 * not backtrack into every star (glibc's does not; this pins it).
 */
static void
test_match_long_values(void **state)
{
    static const char *const t[] = {
        "---\ntitle: T\nmatch:\n  class: \"*a*b*a*b*a*b*a*b*c\"\n"
        "  labels: {service: \"*a*a*a*a*a*a*a*b\"}\n---\n"};
    struct runbook_set *set = set_of(t, 1);
    struct runbook_verdict v = {0};
    struct runbook_subject s = subject();
    char *cls = tc_xmalloc(65537), *val = tc_xmalloc(65537);
    struct runbook_kv labels[1];

    (void)state;
    for (int i = 0; i < 65536; i++)
        cls[i] = "ab"[i % 2];
    cls[65536] = '\0';
    memset(val, 'a', 65536);
    val[65536] = '\0';
    labels[0].key = "service";
    labels[0].val = val;
    s.cls = cls;
    s.labels = labels;
    s.nlabels = 1;
    assert_int_equal(runbook_match(set, &s, &v), 0);
    assert_int_equal(fnmatch("*a*b*a*b*a*b*a*b*b", cls, 0), 0);
    free(cls);
    free(val);
    runbook_set_unref(set);
}

static void
test_refs(void **state)
{
    struct runbook_set *s = runbooks_empty();

    (void)state;
    assert_ptr_equal(runbook_set_ref(s), s);
    runbook_set_unref(s);
    assert_int_equal(s->n, 0); /* still alive: ASan would say otherwise */
    runbook_set_unref(s);
    runbook_set_unref(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_good, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_parse_defaults, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_parse_broken, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_parse_hostile, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_template, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_match_conditions, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_match_no_problem, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_ties, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_dir_refusals, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_dir_too_many, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_dir_missing, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_hashes, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_match_long_values, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_refs, setup, tu_teardown),
    };

    log_init("test_runbooks", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
