/*
 * Unit tests for http/api_static: the dashboard's files come from a
 * fixed list read at load; a request path is only looked up in it
 * (no traversal, no other name in the directory, no prefix match).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "http/api_static.h"
#include "testutil.h"

static int
setup(void **state)
{
    (void)state;
    return tu_setup("tocsin-apistatic");
}

static const struct api_static_file *
find(const struct api_static *s, const char *path)
{
    return api_static_find(s, path, strlen(path));
}

static void
test_fixed_list(void **state)
{
    struct api_static s = {0};
    const struct api_static_file *f;
    char chart[256];

    (void)state;
    tu_write_file("index.html", "<!DOCTYPE html>page");
    tu_write_file("app.js", "js");
    tu_write_file("style.css", "css");
    tu_write_file("secret.txt", "do not serve");
    snprintf(chart, sizeof(chart), "%s",
             tu_write_file("chart.min.js", "chart"));
    assert_int_equal(api_static_load(&s, tu_tmpdir, chart), 4);

    f = find(&s, "/");
    assert_non_null(f);
    assert_int_equal(f->len, strlen("<!DOCTYPE html>page"));
    assert_memory_equal(f->data, "<!DOCTYPE html>page", f->len);
    assert_string_equal(f->ctype, "text/html; charset=utf-8");
    assert_non_null(find(&s, "/index.html"));
    f = find(&s, "/app.js");
    assert_non_null(f);
    assert_string_equal(f->ctype, "text/javascript; charset=utf-8");
    assert_string_equal(find(&s, "/style.css")->ctype,
                        "text/css; charset=utf-8");
    f = find(&s, "/static/chart.js");
    assert_non_null(f);
    assert_memory_equal(f->data, "chart", 5);

    /* Nothing else, however it is spelled. */
    assert_null(find(&s, "/secret.txt"));
    assert_null(find(&s, "/../secret.txt"));
    assert_null(find(&s, "/static/../app.js"));
    assert_null(find(&s, "//app.js"));
    assert_null(find(&s, "/app.js/"));
    assert_null(find(&s, "/APP.JS"));
    assert_null(find(&s, "/app.j"));
    assert_null(find(&s, "/static/chart.min.js"));
    assert_null(find(&s, ""));
    assert_null(api_static_find(&s, "/app.js\0x", 9));
    api_static_free(&s);
}

static void
test_missing(void **state)
{
    struct api_static s = {0};
    char dir[128];
    char *err;

    (void)state;
    /* A file that is missing, or not a regular file, is a 404. */
    tu_write_file("index.html", "page");
    snprintf(dir, sizeof(dir), "%s/app.js", tu_tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    tu_capture_begin();
    assert_int_equal(api_static_load(&s, tu_tmpdir, "/nonexistent/chart.js"),
                     1);
    err = tu_capture_end();
    tu_assert_contains(err, "style.css");
    tu_assert_contains(err, "app.js: not a regular file");
    tu_assert_contains(err, "chart.js");
    free(err);
    assert_non_null(find(&s, "/"));
    assert_null(find(&s, "/style.css"));
    assert_null(find(&s, "/app.js"));
    assert_null(find(&s, "/static/chart.js"));
    api_static_free(&s);

    /* No directory at all: one line, nothing served. */
    tu_capture_begin();
    assert_int_equal(api_static_load(&s, "/nonexistent-tocsin-dash", "/x"), 0);
    err = tu_capture_end();
    tu_assert_contains(err, "no dashboard");
    free(err);
    assert_null(find(&s, "/"));
    api_static_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixed_list, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
