/*
 * test_looplag: the loop-lag histogram (quantiles never below the truth
 * and at most one bucket above it, the exact maximum, stalls over
 * 100 ms counted), the stats file written and read back, and the reader
 * refusing files that are not one (it is input from disk: tocsinctl
 * reads what sits beside the store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "looplag.h"

static void
test_hist_quantiles(void **state)
{
    struct looplag_hist h;

    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(looplag_hist_quantile(&h, 0.99), 0);
    /* 98 samples of 0.5 ms, one of 42.3 ms, one of 250 ms. */
    for (int i = 0; i < 98; i++)
        looplag_hist_add(&h, 500);
    looplag_hist_add(&h, 42300);
    looplag_hist_add(&h, 250000);
    assert_int_equal(h.n, 100);
    assert_int_equal(h.max_us, 250000);
    assert_int_equal(h.stalls, 1);
    /* 0.5 ms is in the 0.5-0.6 ms bucket: its upper bound. */
    assert_int_equal(looplag_hist_quantile(&h, 0.50), 600);
    /* The 99th sample is 42.3 ms: bucket 42-43 ms. */
    assert_int_equal(looplag_hist_quantile(&h, 0.99), 43000);
    /* p100 is the exact maximum, not its bucket's bound (260 ms). */
    assert_int_equal(looplag_hist_quantile(&h, 1.0), 250000);

    /* Bucket edges: 100 ms is not a stall, a microsecond more is. */
    memset(&h, 0, sizeof(h));
    looplag_hist_add(&h, 100000);
    assert_int_equal(h.stalls, 0);
    looplag_hist_add(&h, 100001);
    assert_int_equal(h.stalls, 1);
    /* Beyond 10 s: the last bucket, reported as the maximum. */
    memset(&h, 0, sizeof(h));
    looplag_hist_add(&h, 30000000);
    assert_int_equal(looplag_hist_quantile(&h, 0.5), 30000000);
    memset(&h, 0, sizeof(h));
    looplag_hist_add(&h, 9999999);
    assert_int_equal(looplag_hist_quantile(&h, 0.5), 9999999);
    looplag_hist_add(&h, 1000000);
    assert_int_equal(looplag_hist_quantile(&h, 0.5), 1100000);
    looplag_hist_add(&h, 0);
    assert_int_equal(looplag_hist_quantile(&h, 0.01), 100);
}

static char dir[] = "/tmp/test_looplag.XXXXXX";

static void
put(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
test_stats_file(void **state)
{
    struct looplag_stats st =
                             {
                                 .pid = 4242,
                                 .started_ns = 1795848743801525169LL,
                                 .updated_ns = 1795848744801525169LL,
                                 .interval_ms = 50,
                                 .samples = 20,
                                 .max_us = 142400,
                                 .p50_us = 800,
                                 .p99_us = 69000,
                                 .stalls = 3,
                                 .recent_max_us = 900,
                             },
                         got;
    char path[256], tmp[300];
    const char *why;
    struct stat sb;

    (void)state;
    assert_int_equal(looplag_stats_path(path, sizeof(path), "/x/c.db"), 0);
    assert_string_equal(path, "/x/c.db-stats");
    assert_int_equal(looplag_stats_path(path, 8, "/x/c.db"), -ENAMETOOLONG);

    snprintf(path, sizeof(path), "%s/c.db-stats", dir);
    assert_int_equal(looplag_stats_read(path, &got, &why), -ENOENT);
    assert_int_equal(looplag_stats_write(path, &st), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    memset(&got, 0xff, sizeof(got));
    assert_int_equal(looplag_stats_read(path, &got, &why), 0);
    assert_memory_equal(&got, &st, sizeof(st));
}

/* Each of these is refused with -EBADMSG and a reason. */
static void
test_stats_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "pid 1\n",
        "tocsin-collector-stats 2\n",
        "tocsin-collector-stats 1",
        "tocsin-collector-stats 1\npid 1\n", /* keys missing */
        "tocsin-collector-stats 1\npid\n",
        "tocsin-collector-stats 1\npid -1\n",
        "tocsin-collector-stats 1\npid 1x\n",
        "tocsin-collector-stats 1\npid 9223372036854775808\n",
        "tocsin-collector-stats 1\npid 1\npid 2\n",
        "tocsin-collector-stats 1\npid 1\nstarted 2", /* unterminated */
    };
    char path[256], big[5000], full[1024], link[300];
    struct looplag_stats got;
    const char *why;

    (void)state;
    snprintf(path, sizeof(path), "%s/bad-stats", dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(path, bad[i], strlen(bad[i]));
        why = NULL;
        assert_int_equal(looplag_stats_read(path, &got, &why), -EBADMSG);
        assert_non_null(why);
    }
    /* A NUL byte, and a file larger than 4 KiB. */
    put(path, "tocsin-collector-stats 1\npid 1\0\n", 32);
    assert_int_equal(looplag_stats_read(path, &got, &why), -EBADMSG);
    memset(big, 'a', sizeof(big));
    put(path, big, sizeof(big));
    assert_int_equal(looplag_stats_read(path, &got, &why), -EBADMSG);
    assert_string_equal(why, "larger than 4 KiB");

    /* Unknown keys (a newer collector's) are skipped. */
    snprintf(full, sizeof(full),
             "tocsin-collector-stats 1\npid 1\nstarted 2\nupdated 3\n"
             "loop_lag_interval_ms 50\nloop_lag_samples 4\nnew_key 7\n"
             "loop_lag_max_us 5\nloop_lag_p50_us 6\nloop_lag_p99_us 7\n"
             "loop_lag_stalls 0\nloop_lag_recent_max_us 8\n");
    put(path, full, strlen(full));
    assert_int_equal(looplag_stats_read(path, &got, &why), 0);
    assert_int_equal(got.max_us, 5);
    assert_int_equal(got.recent_max_us, 8);

    /* Not followed through a symlink; not a directory. */
    snprintf(link, sizeof(link), "%s/link-stats", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(looplag_stats_read(link, &got, &why), -ELOOP);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(looplag_stats_read(dir, &got, &why), -EBADMSG);
    assert_string_equal(why, "not a regular file");
    assert_int_equal(unlink(path), 0);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    char path[256];

    (void)state;
    snprintf(path, sizeof(path), "%s/c.db-stats", dir);
    unlink(path);
    return rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_quantiles),
        cmocka_unit_test(test_stats_file),
        cmocka_unit_test(test_stats_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
