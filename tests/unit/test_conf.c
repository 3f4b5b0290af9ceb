/*
 * test_conf: the YAML loader (tree, lines, refusals) and the schema walk
 * (every type, defaults, bounds, error messages with FILE:LINE).
 *
 * Each test writes its YAML into a fresh mkdtemp directory and captures
 * stderr, where log_warnx writes in foreground mode, to check messages.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "testutil.h"
#include "util.h"

static int
setup(void **state)
{
    return tu_setup("tocsin-conf");
}

/* Load rel with text, expecting failure; returns the log (caller frees). */
static char *
load_fails(const char *rel, const char *text)
{
    struct tc_conf *c = (struct tc_conf *)1;
    const char *path = tu_write_file(rel, text);
    char *err;
    int rc;

    tu_capture_begin();
    rc = tc_conf_load(path, &c);
    err = tu_capture_end();
    assert_int_equal(rc, -EINVAL);
    assert_null(c);
    return err;
}

static struct tc_conf *
load_ok(const char *rel, const char *text)
{
    struct tc_conf *c = NULL;
    const char *path = tu_write_file(rel, text);

    assert_int_equal(tc_conf_load(path, &c), 0);
    assert_non_null(c);
    return c;
}

/* ---- value syntax ---- */

static void
test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"4096", 4096},
        {"10B", 10},
        {"512KB", 512000},
        {"512kB", 512000},
        {"3MB", 3000000},
        {"2GB", 2000000000ULL},
        {"1TB", 1000000000000ULL},
        {"64KiB", 64 << 10},
        {"64MiB", 64ULL << 20},
        {"64 MiB", 64ULL << 20},
        {"1GiB", 1ULL << 30},
        {"2TiB", 2ULL << 40},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "12XB",
        "-1",
        "1.5GiB",
        "MiB",
        "64mib",
        "64 ",
        "64  MiB",
        " 64",
        "0x10",
        "64M",
        "16777216TiB",
        "18446744073709551616",
    };
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        if (tc_conf_parse_size(ok[i].s, &v) != 0)
            fail_msg("'%s' refused", ok[i].s);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tc_conf_parse_size(bad[i], &v) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

static void
test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},       {"250ms", 250},  {"5s", 5000},
        {"2m", 120000}, {"1h", 3600000}, {"7d", 7 * 86400000ULL},
    };
    static const char *const bad[] = {
        "",  "5",  "5sec",  "1.5s",  "-1s",
        "s", "5S", "5 ms ", "250us", "9999999999999999999d"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 1;
        if (tc_conf_parse_duration(ok[i].s, &v) != 0)
            fail_msg("'%s' refused", ok[i].s);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tc_conf_parse_duration(bad[i], &v) != -EINVAL)
            fail_msg("'%s' accepted", bad[i]);
}

/* ---- the tree ---- */

static void
test_tree_lines(void **state)
{
    struct tc_conf *c = load_ok("t.yaml", "# comment\n"
                                          "a: 1\n"
                                          "b:\n"
                                          "  c: 'x'\n"
                                          "  d: [p, q]\n"
                                          "e:\n"
                                          "  - f: 2\n"
                                          "  -\n"
                                          "    g\n"
                                          "h:\n"
                                          "i: ~\n"
                                          "j: ''\n");
    const struct tc_conf_node *r = c->root, *n;
    char want[PATH_MAX];

    snprintf(want, sizeof(want), "%s/t.yaml", tu_tmpdir);
    assert_string_equal(c->path, want);
    assert_string_equal(c->dir, tu_tmpdir);

    assert_int_equal(r->kind, TC_CONF_MAP);
    assert_int_equal(r->npairs, 6);
    assert_string_equal(r->pairs[0].key, "a");
    assert_int_equal(r->pairs[0].line, 2);
    assert_int_equal(r->pairs[0].val->kind, TC_CONF_SCALAR);
    assert_string_equal(r->pairs[0].val->str, "1");
    assert_int_equal(r->pairs[0].val->line, 2);

    n = tc_conf_find(r, "b.c");
    assert_non_null(n);
    assert_string_equal(n->str, "x");
    assert_int_equal(n->line, 4);
    assert_int_equal(n->null, 0);
    n = tc_conf_find(r, "b.d");
    assert_int_equal(n->kind, TC_CONF_SEQ);
    assert_int_equal(n->nitems, 2);
    assert_string_equal(n->items[1]->str, "q");
    assert_int_equal(n->items[1]->line, 5);

    n = tc_conf_find(r, "e");
    assert_int_equal(n->kind, TC_CONF_SEQ);
    assert_int_equal(n->items[0]->kind, TC_CONF_MAP);
    assert_int_equal(n->items[0]->line, 7);
    assert_string_equal(n->items[1]->str, "g");
    assert_int_equal(n->items[1]->line, 9);

    assert_true(tc_conf_find(r, "h")->null);
    assert_true(tc_conf_find(r, "i")->null);
    /* A quoted empty string is a value, not null. */
    assert_false(tc_conf_find(r, "j")->null);
    assert_null(tc_conf_find(r, "b.nope"));
    assert_null(tc_conf_find(r, "a.b"));
    assert_null(tc_conf_find(r, "zz"));
    tc_conf_free(c);
}

static void
test_paths(void **state)
{
    struct tc_conf *c;
    char cwd[PATH_MAX], *p, want[PATH_MAX];

    assert_int_equal(mkdir(strcat(strcpy(want, tu_tmpdir), "/sub"), 0700), 0);
    tu_write_file("sub/x.yaml", "a: 1\n");
    /* A relative config path resolves against the working directory. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tu_tmpdir), 0);
    assert_int_equal(tc_conf_load("./sub/x.yaml", &c), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(c->file, "./sub/x.yaml");
    snprintf(want, sizeof(want), "%s/sub/x.yaml", tu_tmpdir);
    assert_string_equal(c->path, want);
    snprintf(want, sizeof(want), "%s/sub", tu_tmpdir);
    assert_string_equal(c->dir, want);

    p = tc_conf_path(c, "pki/ca.crt");
    snprintf(want, sizeof(want), "%s/sub/pki/ca.crt", tu_tmpdir);
    assert_string_equal(p, want);
    free(p);
    p = tc_conf_path(c, "./ca.crt");
    snprintf(want, sizeof(want), "%s/sub/ca.crt", tu_tmpdir);
    assert_string_equal(p, want);
    free(p);
    p = tc_conf_path(c, "/etc/tocsin/ca.crt");
    assert_string_equal(p, "/etc/tocsin/ca.crt");
    free(p);
    tc_conf_free(c);
}

/* ---- refusals while loading ---- */

static void
test_missing_file(void **state)
{
    struct tc_conf *c = (struct tc_conf *)1;
    char path[PATH_MAX];
    char *err;

    snprintf(path, sizeof(path), "%s/nope.yaml", tu_tmpdir);
    tu_capture_begin();
    assert_int_equal(tc_conf_load(path, &c), -ENOENT);
    err = tu_capture_end();
    assert_null(c);
    tu_assert_contains(err, "nope.yaml");
    free(err);

    tu_capture_begin();
    assert_int_equal(tc_conf_load(tu_tmpdir, &c), -EISDIR);
    err = tu_capture_end();
    assert_null(c);
    tu_assert_contains(err, ": is a directory");
    free(err);
}

static void
test_duplicate_key(void **state)
{
    char *err = load_fails("dup.yaml", "a: 1\n"
                                       "b:\n"
                                       "  c: 1\n"
                                       "  c: 2\n"
                                       "a: 3\n");
    tu_assert_contains(err, "dup.yaml:4: duplicate key 'c' (first at line 3)");
    tu_assert_contains(err, "dup.yaml:5: duplicate key 'a' (first at line 1)");
    free(err);
}

/*
 * Past the small-map scan: duplicates among thousands of keys are found
 * through the hash index, each against its first occurrence, and the
 * map keeps every distinct key in file order.
 */
static void
test_duplicate_key_many(void **state)
{
    enum { N = 5000 };
    size_t cap = (size_t)N * 32, len = 0;
    char *text = malloc(cap), *err;
    struct tc_conf *c = NULL;
    const char *path;

    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d: %d\n", i, i);
    /* Lines N+1 and N+2 repeat keys first seen on lines 1 and N. */
    len += (size_t)snprintf(text + len, cap - len, "k0: x\nk%d: y\n", N - 1);
    err = load_fails("many-dup.yaml", text);
    tu_assert_contains(err, "many-dup.yaml:5001: duplicate key 'k0' (first "
                            "at line 1)");
    tu_assert_contains(err, "many-dup.yaml:5002: duplicate key 'k4999' "
                            "(first at line 5000)");
    free(err);

    /* Without the repeats: every key, in order. */
    text[len - strlen("k0: x\nk4999: y\n")] = '\0';
    path = tu_write_file("many.yaml", text);
    assert_int_equal(tc_conf_load(path, &c), 0);
    assert_int_equal(c->root->npairs, N);
    for (int i = 0; i < N; i += 997) {
        char k[16];

        snprintf(k, sizeof(k), "k%d", i);
        assert_string_equal(c->root->pairs[i].key, k);
        assert_int_equal(c->root->pairs[i].line, i + 1);
    }
    tc_conf_free(c);
    free(text);
}

/* Unique-name checks: each repeat points at the first occurrence. */
static void
test_find_dups(void **state)
{
    static const char *const names[] = {"a", "b",  NULL, "a", "c",
                                        "b", NULL, "a",  ""};
    enum { N = sizeof(names) / sizeof(names[0]) };
    static const size_t want[N] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, 0, SIZE_MAX, 1,
                                   SIZE_MAX, 0,        SIZE_MAX};
    size_t first[N], *many_first;
    const char **many;
    enum { M = 20000 };

    tc_conf_find_dups(names, N, first);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(first[i], want[i]);
    tc_conf_find_dups(names, 0, first);

    /* Many distinct names and one repeat at the end. */
    many = calloc(M + 1, sizeof(*many));
    many_first = calloc(M + 1, sizeof(*many_first));
    for (size_t i = 0; i < M; i++)
        many[i] = tc_xasprintf("check-%zu", i);
    many[M] = "check-12345";
    tc_conf_find_dups(many, M + 1, many_first);
    for (size_t i = 0; i < M; i++)
        assert_int_equal(many_first[i], SIZE_MAX);
    assert_int_equal(many_first[M], 12345);
    for (size_t i = 0; i < M; i++)
        free((char *)many[i]);
    free(many);
    free(many_first);
}

/* Over TC_CONF_MAX_BYTES: refused before parsing, naming file and size. */
static void
test_size_cap(void **state)
{
    size_t n = TC_CONF_MAX_BYTES + 1;
    char *text = malloc(n + 1), *err, want[256];
    struct tc_conf *c = (struct tc_conf *)1;
    const char *path;

    memset(text, '#', n); /* a comment: valid YAML, but too big */
    text[n - 1] = '\n';
    text[n] = '\0';
    path = tu_write_file("big.yaml", text);
    tu_capture_begin();
    assert_int_equal(tc_conf_load(path, &c), -EFBIG);
    err = tu_capture_end();
    assert_null(c);
    snprintf(want, sizeof(want),
             "big.yaml: the file is %zu bytes, over the limit of %d bytes", n,
             TC_CONF_MAX_BYTES);
    tu_assert_contains(err, want);
    free(err);

    /* A stream without a size (a pipe) is cut at the cap too. */
    {
        int p[2];
        pid_t pid;
        char dev[64];

        assert_int_equal(pipe(p), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            for (size_t off = 0; off < n;) {
                ssize_t w = write(p[1], text + off, n - off);
                if (w <= 0)
                    _exit(0); /* the reader stopped at the cap */
                off += (size_t)w;
            }
            _exit(0);
        }
        close(p[1]);
        snprintf(dev, sizeof(dev), "/dev/fd/%d", p[0]);
        c = (struct tc_conf *)1;
        tu_capture_begin();
        assert_int_equal(tc_conf_load(dev, &c), -EFBIG);
        err = tu_capture_end();
        close(p[0]);
        waitpid(pid, NULL, 0);
        assert_null(c);
        tu_assert_contains(err, ": the file is over the limit of");
        free(err);
    }
    c = (struct tc_conf *)1;
    tu_capture_begin();
    assert_int_equal(tc_conf_load_mem("mem.yaml", text, n, &c), -EFBIG);
    err = tu_capture_end();
    assert_null(c);
    tu_assert_contains(err, "mem.yaml: the file is");
    free(err);

    /* One byte under: loads. */
    text[n - 2] = '\n';
    text[0] = 'a';
    text[1] = ':';
    text[2] = ' ';
    text[3] = '1';
    text[4] = '\n';
    assert_int_equal(tc_conf_load_mem("ok.yaml", text, n - 1, &c), 0);
    assert_string_equal(c->root->pairs[0].key, "a");
    tc_conf_free(c);
    free(text);
}

/* The buffer entry point: same tree, paths relative to the name. */
static void
test_load_mem(void **state)
{
    static const char yaml[] = "a: 1\nb: [x, y]\n";
    struct tc_conf *c = NULL;

    assert_int_equal(
        tc_conf_load_mem("/etc/tocsin/x.yaml", yaml, sizeof(yaml) - 1, &c), 0);
    assert_int_equal(c->root->npairs, 2);
    assert_int_equal(c->root->pairs[1].line, 2);
    assert_string_equal(c->dir, "/etc/tocsin");
    tc_conf_free(c);
    c = (struct tc_conf *)1;
    tu_capture_begin();
    assert_int_equal(tc_conf_load_mem("e.yaml", NULL, 0, &c), -EINVAL);
    free(tu_capture_end());
    assert_null(c);
}

static void
test_syntax_error(void **state)
{
    char *err = load_fails("syn.yaml", "a: 1\n"
                                       "b: [oops\n"
                                       "c: 2\n");
    tu_assert_contains(err, "syn.yaml:");
    tu_assert_contains(err, ": syntax error: ");
    free(err);

    err = load_fails("syn2.yaml", "a: 1\n"
                                  "b: 2\n"
                                  "  c: 3\n");
    tu_assert_contains(err, "syn2.yaml:3: syntax error: mapping values are not "
                            "allowed in this context");
    free(err);

    err = load_fails("tab.yaml", "a:\n\tb: 1\n");
    tu_assert_contains(err, "tab.yaml:2: syntax error: ");
    free(err);
}

static void
test_empty(void **state)
{
    char *err = load_fails("empty.yaml", "");
    tu_assert_contains(err, "empty.yaml:1: the file is empty");
    free(err);
    err = load_fails("comments.yaml", "# nothing\n\n# here\n");
    tu_assert_contains(err, "comments.yaml:1: the file is empty");
    free(err);
    err = load_fails("null.yaml", "---\n~\n");
    tu_assert_contains(err, "null.yaml:2: the file holds no settings");
    free(err);
}

static void
test_not_a_map(void **state)
{
    char *err = load_fails("seq.yaml", "- a\n- b\n");
    tu_assert_contains(err, "seq.yaml:1: the top level must be a map");
    free(err);
    err = load_fails("scalar.yaml", "hello\n");
    tu_assert_contains(err, "scalar.yaml:1: the top level must be a map");
    free(err);
}

static void
test_multiple_documents(void **state)
{
    char *err = load_fails("docs.yaml", "a: 1\n---\nb: 2\n");
    tu_assert_contains(err, "docs.yaml:2: more than one YAML document");
    free(err);
}

static void
test_alias_bomb(void **state)
{
    /* Nine levels of ten: 10^9 strings if anything expanded it. */
    char *err = load_fails("bomb.yaml",
                           "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
                           "\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                           "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                           "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                           "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                           "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                           "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                           "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                           "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                           "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n");
    tu_assert_contains(err, "bomb.yaml:1: anchor '&a': anchors and aliases are "
                            "not supported");
    /* One line, not one per alias. */
    assert_null(strstr(err, "bomb.yaml:2:"));
    assert_null(strstr(err, "alias '*"));
    free(err);
}

static void
test_anchor_alone(void **state)
{
    char *err = load_fails("anchor.yaml", "a: &x 1\nb: 2\n");
    tu_assert_contains(err, "anchor.yaml:1: anchor '&x'");
    free(err);
    err = load_fails("alias.yaml", "a: 1\nb: *x\n");
    tu_assert_contains(err, "alias.yaml:2: alias '*x': anchors");
    free(err);
    err = load_fails("alias2.yaml", "a: [1]\nb: 2\nc: {x: *a}\n");
    tu_assert_contains(err, "alias2.yaml:3: alias '*a': anchors and aliases "
                            "are not supported");
    free(err);
}

static void
test_deep_nesting(void **state)
{
    char text[512];
    char *err;
    size_t n = 0;

    n += (size_t)snprintf(text, sizeof(text), "a: ");
    for (int i = 0; i < 100; i++)
        text[n++] = '[';
    for (int i = 0; i < 100; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    err = load_fails("deep.yaml", text);
    tu_assert_contains(err, "deep.yaml:1: nesting deeper than");
    free(err);
}

static void
test_complex_key(void **state)
{
    char *err = load_fails("ckey.yaml", "? [a, b]\n: 1\n");
    tu_assert_contains(err, "ckey.yaml:1: map keys must be plain strings");
    free(err);
}

/* ---- the schema walk ---- */

enum color { RED = 1, GREEN = 2 };

struct item {
    char *name;
    uint32_t weight;
    int line;
};

struct sample {
    char *str;
    char *path;
    char *addr;
    uint64_t size;
    uint32_t size32;
    uint64_t dur_ms;
    uint32_t count;
    uint64_t big;
    int flag;
    enum color color;
    int odd; /* custom: an odd number */
    char *inner_name;
    uint64_t inner_dur_ms;
    struct item *items;
    size_t nitems;
    int checked;
};

#define S(m) TC_CONF_AT(struct sample, m)

static int
parse_odd(const char *s, void *dst)
{
    int v = atoi(s);

    if (v % 2 == 0)
        return -EINVAL;
    memcpy(dst, &v, sizeof(v));
    return 0;
}

static void
check_items(struct tc_conf *c, const struct tc_conf_node *seq, void *base)
{
    struct sample *s = base;

    s->checked = 1;
    if (s->nitems > 2)
        tc_conf_error(c, seq->line, "items: at most 2");
}

static const struct tc_conf_enum colors[] = {
    {"red", RED}, {"green", GREEN}, {NULL, 0}};

static const struct tc_conf_field inner_fields[] = {
    {.key = "name", .type = TC_CONF_T_STRING, S(inner_name), .required = 1},
    {.key = "dur", .type = TC_CONF_T_DURATION, S(inner_dur_ms), .def = "1s"},
    {0},
};

static const struct tc_conf_field item_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct item, name),
     .required = 1,
     .min = 1},
    {.key = "weight",
     .type = TC_CONF_T_UINT,
     TC_CONF_AT(struct item, weight),
     .def = "1",
     .max = 100},
    {0},
};

static const struct tc_conf_field sample_fields[] = {
    {.key = "str", .type = TC_CONF_T_STRING, S(str), .def = "dflt"},
    {.key = "path", .type = TC_CONF_T_PATH, S(path), .def = "data/x.db"},
    {.key = "addr", .type = TC_CONF_T_HOSTPORT, S(addr), .required = 1},
    {.key = "size",
     .type = TC_CONF_T_SIZE,
     S(size),
     .def = "1MiB",
     .min = 1024},
    {.key = "size32", .type = TC_CONF_T_SIZE, S(size32), .def = "4KiB"},
    {.key = "dur",
     .type = TC_CONF_T_DURATION,
     S(dur_ms),
     .def = "250ms",
     .min = 10,
     .max = 60000},
    {.key = "count", .type = TC_CONF_T_UINT, S(count), .def = "7", .min = 1},
    {.key = "big", .type = TC_CONF_T_UINT, S(big)},
    {.key = "flag", .type = TC_CONF_T_BOOL, S(flag), .def = "yes"},
    {.key = "color",
     .type = TC_CONF_T_ENUM,
     S(color),
     .def = "red",
     .enums = colors},
    {.key = "odd",
     .type = TC_CONF_T_CUSTOM,
     S(odd),
     .def = "3",
     .parse = parse_odd,
     .expect = "an odd number"},
    {.key = "inner", .type = TC_CONF_T_MAP, .sub = inner_fields},
    {.key = "items",
     .type = TC_CONF_T_SEQ,
     S(items),
     .sub = item_fields,
     .elem_size = sizeof(struct item),
     .count_offset = offsetof(struct sample, nitems),
     .line_offset = offsetof(struct item, line),
     .has_line = 1,
     .check = check_items},
    {0},
};

static void
test_apply_values(void **state)
{
    struct tc_conf *c = load_ok("s.yaml", "addr: '[::1]:7400'\n"
                                          "path: /abs/file\n"
                                          "size: 2 GiB\n"
                                          "size32: 100KB\n"
                                          "dur: 1m\n"
                                          "count: 4294967295\n"
                                          "big: 18446744073709551615\n"
                                          "flag: off\n"
                                          "color: green\n"
                                          "odd: 5\n"
                                          "inner: {name: in}\n"
                                          "items:\n"
                                          "  - name: one\n"
                                          "  - {name: two, weight: 100}\n");
    struct sample s = {0};

    assert_int_equal(tc_conf_apply(c, sample_fields, &s), 0);
    assert_string_equal(s.str, "dflt");
    assert_string_equal(s.path, "/abs/file");
    assert_string_equal(s.addr, "[::1]:7400");
    assert_int_equal(s.size, 2ULL << 30);
    assert_int_equal(s.size32, 100000);
    assert_int_equal(s.dur_ms, 60000);
    assert_int_equal(s.count, UINT32_MAX);
    assert_int_equal(s.big, UINT64_MAX);
    assert_int_equal(s.flag, 0);
    assert_int_equal(s.color, GREEN);
    assert_int_equal(s.odd, 5);
    assert_string_equal(s.inner_name, "in");
    assert_int_equal(s.inner_dur_ms, 1000);
    assert_int_equal(s.nitems, 2);
    assert_string_equal(s.items[0].name, "one");
    assert_int_equal(s.items[0].weight, 1);
    assert_int_equal(s.items[0].line, 13);
    assert_string_equal(s.items[1].name, "two");
    assert_int_equal(s.items[1].weight, 100);
    assert_int_equal(s.items[1].line, 14);
    assert_int_equal(s.checked, 1);
    tc_conf_release(sample_fields, &s);
    assert_null(s.str);
    assert_null(s.items);
    assert_int_equal(s.nitems, 0);
    tc_conf_free(c);
}

/* ---- string lists, string maps, optional blocks ---- */

struct lists {
    char **argv;
    size_t nargv;
    struct tc_conf_kv *labels;
    size_t nlabels;
    char *opt_name; /* inside an optional block with a required key */
};

static const struct tc_conf_field opt_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct lists, opt_name),
     .required = 1},
    {0},
};

static const struct tc_conf_field list_fields[] = {
    {.key = "argv",
     .type = TC_CONF_T_STRLIST,
     TC_CONF_AT(struct lists, argv),
     .count_offset = offsetof(struct lists, nargv)},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     TC_CONF_AT(struct lists, labels),
     .count_offset = offsetof(struct lists, nlabels)},
    {.key = "opt", .type = TC_CONF_T_MAP, .optional = 1, .sub = opt_fields},
    {0},
};

static void
test_lists_and_maps(void **state)
{
    struct tc_conf *c = load_ok("l.yaml", "argv: [/bin/true, -x, '42']\n"
                                          "labels: {env: prod, tier: ''}\n");
    struct lists l = {0};
    char *err;

    /* An absent optional block is off: its required key is not missed. */
    assert_int_equal(tc_conf_apply(c, list_fields, &l), 0);
    assert_int_equal(l.nargv, 3);
    assert_string_equal(l.argv[2], "42");
    assert_null(l.argv[3]); /* argv-ready: uv_spawn and execv need it */
    assert_int_equal(l.nlabels, 2);
    assert_string_equal(l.labels[0].key, "env");
    assert_string_equal(l.labels[0].val, "prod");
    assert_string_equal(l.labels[1].val, "");
    assert_null(l.opt_name);
    tc_conf_release(list_fields, &l);
    assert_null(l.argv);
    assert_null(l.labels);
    tc_conf_free(c);

    /* One string is a list of one; a present block is walked. */
    c = load_ok("l2.yaml", "argv: /bin/true\nopt: {}\n");
    tu_capture_begin();
    assert_int_equal(tc_conf_apply(c, list_fields, &l), -EINVAL);
    err = tu_capture_end();
    tu_assert_contains(err, "missing required key 'opt.name'");
    assert_int_equal(l.nargv, 1);
    assert_null(l.argv[1]);
    free(err);
    tc_conf_release(list_fields, &l);
    tc_conf_free(c);

    /* Wrong shapes name the entry. */
    c = load_ok("l3.yaml", "argv: [[a]]\nlabels: {k: [v]}\n");
    tu_capture_begin();
    assert_int_equal(tc_conf_apply(c, list_fields, &l), -EINVAL);
    err = tu_capture_end();
    tu_assert_contains(err,
                       "l3.yaml:1: argv[0]: expected a string, got a list");
    tu_assert_contains(err,
                       "l3.yaml:2: labels.k: expected a string, got a list");
    free(err);
    tc_conf_release(list_fields, &l);
    tc_conf_free(c);
}

static void
test_apply_defaults(void **state)
{
    struct tc_conf *c = load_ok("d.yaml", "addr: h:1\n"
                                          "inner:\n"
                                          "  name: n\n"
                                          "items:\n"
                                          "str: ~\n");
    struct sample s = {0};
    char want[PATH_MAX];

    assert_int_equal(tc_conf_apply(c, sample_fields, &s), 0);
    assert_string_equal(s.str, "dflt");
    snprintf(want, sizeof(want), "%s/data/x.db", tu_tmpdir);
    assert_string_equal(s.path, want);
    assert_int_equal(s.size, 1 << 20);
    assert_int_equal(s.size32, 4096);
    assert_int_equal(s.dur_ms, 250);
    assert_int_equal(s.count, 7);
    assert_int_equal(s.big, 0);
    assert_int_equal(s.flag, 1);
    assert_int_equal(s.color, RED);
    assert_int_equal(s.odd, 3);
    assert_int_equal(s.inner_dur_ms, 1000);
    assert_null(s.items);
    assert_int_equal(s.nitems, 0);
    /* The check only runs for what the file holds. */
    assert_int_equal(s.checked, 0);
    tc_conf_release(sample_fields, &s);
    tc_conf_free(c);
}

/* Apply sample_fields to text, expecting failure; returns the log. */
static char *
apply_fails(const char *rel, const char *text, int nerrors)
{
    struct tc_conf *c = load_ok(rel, text);
    struct sample s = {0};
    char *err;
    int rc;

    tu_capture_begin();
    rc = tc_conf_apply(c, sample_fields, &s);
    err = tu_capture_end();
    assert_int_equal(rc, -EINVAL);
    if (nerrors > 0)
        assert_int_equal(c->nerrors, nerrors);
    tc_conf_release(sample_fields, &s);
    tc_conf_free(c);
    return err;
}

static void
test_unknown_keys(void **state)
{
    char *err = apply_fails("u.yaml",
                            "addr: h:1\n"
                            "inner: {name: n, nmae: m}\n"
                            "sise: 1\n"
                            "items:\n"
                            "  - {name: a, wieght: 2}\n",
                            3);
    tu_assert_contains(err, "u.yaml:2: unknown key 'nmae' in inner (valid: "
                            "name, dur)");
    tu_assert_contains(err, "u.yaml:3: unknown key 'sise' in top level (valid: "
                            "str, path, addr, size, size32, dur, count, big, "
                            "flag, color, odd, inner, items)");
    tu_assert_contains(err, "u.yaml:5: unknown key 'wieght' in items[0] "
                            "(valid: name, weight)");
    free(err);
}

static void
test_bad_values(void **state)
{
    char *err = apply_fails("v.yaml",
                            "addr: nohost\n"
                            "size: 12XB\n"
                            "size32: 5GiB\n"
                            "dur: 5\n"
                            "count: -1\n"
                            "flag: maybe\n"
                            "color: blue\n"
                            "odd: 4\n"
                            "inner: {name: n, dur: 2x}\n"
                            "items: [{name: a, weight: 101}, {name: ''}]\n"
                            "path: ''\n",
                            12);
    tu_assert_contains(err, "v.yaml:1: addr: 'nohost' is not host:port");
    tu_assert_contains(err,
                       "v.yaml:2: size: '12XB' is not a size (e.g. 64MiB)");
    tu_assert_contains(err, "v.yaml:3: size32: '5GiB' is out of range (0 to "
                            "4294967295 bytes)");
    tu_assert_contains(err, "v.yaml:4: dur: '5' is not a duration");
    tu_assert_contains(err, "v.yaml:5: count: '-1' is not a non-negative "
                            "integer");
    tu_assert_contains(err, "v.yaml:6: flag: 'maybe' is not a boolean");
    tu_assert_contains(err, "v.yaml:7: color: 'blue' is not one of red, green");
    tu_assert_contains(err, "v.yaml:8: odd: '4' is not an odd number");
    tu_assert_contains(err, "v.yaml:9: inner.dur: '2x' is not a duration");
    tu_assert_contains(err, "v.yaml:10: items[0].weight: '101' is out of range "
                            "(0 to 100)");
    tu_assert_contains(err, "v.yaml:10: items[1].name: must not be empty");
    tu_assert_contains(err, "v.yaml:11: path: '' is not a file path");
    free(err);
}

static void
test_bounds(void **state)
{
    char *err = apply_fails("b.yaml",
                            "addr: h:1\n"
                            "size: 1000\n"
                            "dur: 2m\n"
                            "count: 0\n"
                            "items: [{name: a}, {name: b}, {name: c}]\n"
                            "inner: {name: n}\n",
                            4);
    tu_assert_contains(err, "b.yaml:2: size: '1000' is out of range (1024 to "
                            "18446744073709551615 bytes)");
    tu_assert_contains(err, "b.yaml:3: dur: '2m' is out of range (10ms to "
                            "60000ms)");
    tu_assert_contains(err, "b.yaml:4: count: '0' is out of range (1 to "
                            "4294967295)");
    tu_assert_contains(err, "b.yaml:5: items: at most 2");
    free(err);
}

static void
test_missing_required(void **state)
{
    char *err = apply_fails("r.yaml",
                            "str: x\n"
                            "inner: {dur: 1s}\n"
                            "items:\n"
                            "  - weight: 2\n",
                            3);
    tu_assert_contains(err, "r.yaml:1: missing required key 'addr'");
    tu_assert_contains(err, "r.yaml:2: missing required key 'inner.name'");
    tu_assert_contains(err, "r.yaml:4: missing required key 'items[0].name'");
    free(err);

    /* An absent map still reports the keys it requires. */
    err = apply_fails("r2.yaml", "\n\naddr: h:1\n", 1);
    tu_assert_contains(err, "r2.yaml:3: missing required key 'inner.name'");
    free(err);

    /* "key:" with nothing after it is absent, not an empty string. */
    err = apply_fails("r3.yaml", "addr:\ninner: {name: n}\n", 1);
    tu_assert_contains(err, "r3.yaml:1: missing required key 'addr'");
    free(err);
}

static void
test_wrong_kind(void **state)
{
    char *err = apply_fails("k.yaml",
                            "addr: [h, 1]\n"
                            "inner:\n"
                            "  - name: n\n"
                            "items: {name: a}\n"
                            "str: {a: b}\n"
                            "size: [1]\n",
                            5);
    tu_assert_contains(err, "k.yaml:1: addr: expected a single value, got a "
                            "list");
    tu_assert_contains(err, "k.yaml:2: inner: expected a map, got a list");
    tu_assert_contains(err, "k.yaml:4: items: expected a list, got a map");
    tu_assert_contains(err,
                       "k.yaml:5: str: expected a single value, got a map");
    tu_assert_contains(err, "k.yaml:6: size: expected a single value");
    free(err);

    err =
        apply_fails("k2.yaml", "addr: h:1\ninner: {name: n}\nitems: [x]\n", 1);
    tu_assert_contains(err, "k2.yaml:3: items[0]: expected a map, got a single "
                            "value");
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test_setup_teardown(test_tree_lines, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key_many, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, tu_teardown),
        cmocka_unit_test(test_find_dups),
        cmocka_unit_test_setup_teardown(test_load_mem, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_not_a_map, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_multiple_documents, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_alias_bomb, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_anchor_alone, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_deep_nesting, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_complex_key, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_apply_values, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_lists_and_maps, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_apply_defaults, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_kind, setup, tu_teardown),
    };

    log_init("test_conf", 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
