/*
 * test_util: host:port splitting (names, IPv4, bracketed IPv6, and the
 * inputs it must refuse) and mkdir -p.
 */
#include <errno.h>
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

#include "util.h"

static void
ok(const char *in, const char *host, uint16_t port)
{
    char *h = NULL;
    uint16_t p = 0;

    assert_int_equal(tc_hostport_split(in, &h, &p), 0);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
    free(h);
}

static void
bad(const char *in)
{
    char *h = NULL;
    uint16_t p = 0;

    assert_int_equal(tc_hostport_split(in, &h, &p), -EINVAL);
    assert_null(h);
}

static void
test_hostport(void **state)
{
    ok("collector.example.org:7400", "collector.example.org", 7400);
    ok("127.0.0.1:1", "127.0.0.1", 1);
    ok("[::1]:7400", "::1", 7400);
    ok("[fe80::1%eth0]:65535", "fe80::1%eth0", 65535);

    bad("");
    bad("host");
    bad("host:");
    bad(":7400");
    bad("host:0");
    bad("host:65536");
    bad("host:99999999999999999999");
    bad("host:74x0");
    bad("host:-1");
    bad("::1:7400"); /* bare IPv6 is ambiguous */
    bad("[::1]7400");
    bad("[::1]:");
    bad("[::1");
    bad("[]:7400");
    bad("host: 80");
    bad("host:+80");
}

static void
test_mkdirs(void **state)
{
    char tmpl[] = "/tmp/tocsin-test-util-XXXXXX";
    char *base = mkdtemp(tmpl);
    char *deep, *file;
    struct stat st;
    FILE *fp;

    assert_non_null(base);
    deep = tc_xasprintf("%s/a/b/c", base);
    assert_int_equal(tc_mkdirs(deep, 0700), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Existing directories are fine (mkdir -p). */
    assert_int_equal(tc_mkdirs(deep, 0700), 0);

    /* A regular file in the way is an error, not success. */
    file = tc_xasprintf("%s/file", base);
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    free(deep);
    deep = tc_xasprintf("%s/file/sub", base);
    assert_int_equal(tc_mkdirs(deep, 0700), -ENOTDIR);

    free(deep);
    deep = tc_xasprintf("%s/a/b/c", base);
    rmdir(deep);
    free(deep);
    deep = tc_xasprintf("%s/a/b", base);
    rmdir(deep);
    free(deep);
    deep = tc_xasprintf("%s/a", base);
    rmdir(deep);
    free(deep);
    unlink(file);
    free(file);
    rmdir(base);
}

/* A regular file where the directory should be, and an empty path. */
static void
test_mkdirs_refuses(void **state)
{
    char tmpl[] = "/tmp/tocsin-test-util-XXXXXX";
    char *base = mkdtemp(tmpl);
    char *file;
    FILE *fp;
    int rc;

    assert_non_null(base);
    file = tc_xasprintf("%s/file", base);
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    rc = tc_mkdirs(file, 0700);
    unlink(file);
    free(file);
    rmdir(base);
    assert_int_equal(rc, -EEXIST);
    assert_int_equal(tc_mkdirs("", 0700), -ENOENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_mkdirs_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
