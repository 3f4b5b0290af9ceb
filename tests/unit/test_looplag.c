/*
 * test_looplag: the loop-lag histogram (quantiles never below the truth
 * and at most one bucket above it, the exact maximum, stalls over
 * 100 ms counted), the stats file written and read back, and the reader
 * refusing files that are not one (it is input from disk: tocsinctl
 * reads what sits beside the store); and the writer that keeps such a
 * file current off the loop (bgwrite).
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
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bgwrite.h"
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

/*
 * bgwrite: the first write blocks until the loop, still running, lets it
 * go; the contents submitted meanwhile collapse into the latest.
 */
static pthread_mutex_t bw_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bw_cv = PTHREAD_COND_INITIALIZER;
static int bw_release;   /* set by the loop's timer */
static int bw_timed_out; /* the first write waited 5 s for it in vain */
static int bw_calls;     /* writes */
static int bw_on_loop;   /* a write ran on the loop's thread */
static pthread_t bw_loop_thread;
static char bw_seen[4][16]; /* what each write got */

static int
slow_write(const char *path, const void *data, size_t len)
{
    FILE *f;
    int first;

    pthread_mutex_lock(&bw_mu);
    first = bw_calls == 0;
    if (bw_calls < 4)
        snprintf(bw_seen[bw_calls], sizeof(bw_seen[0]), "%.*s", (int)len,
                 (const char *)data);
    bw_calls++;
    if (pthread_equal(pthread_self(), bw_loop_thread))
        bw_on_loop = 1;
    if (first) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        while (!bw_release && !bw_timed_out)
            if (pthread_cond_timedwait(&bw_cv, &bw_mu, &ts) == ETIMEDOUT)
                bw_timed_out = 1;
    }
    pthread_mutex_unlock(&bw_mu);
    f = fopen(path, "w");
    if (f == NULL)
        return -errno;
    fwrite(data, 1, len, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

struct bw_test {
    struct bgwrite *w;
    uv_timer_t timer;
    int ticks; /* timer runs while the first write is held */
};

static void
bw_tick(uv_timer_t *t)
{
    struct bw_test *b = t->data;

    b->ticks++;
    if (b->ticks == 1) {
        bgwrite_submit(b->w, "two", 3);
        bgwrite_submit(b->w, "three", 5);
        assert_int_equal(bgwrite_count(b->w), 0);
    }
    if (b->ticks < 3)
        return;
    pthread_mutex_lock(&bw_mu);
    bw_release = 1;
    pthread_cond_signal(&bw_cv);
    pthread_mutex_unlock(&bw_mu);
    /* The last content replaces "three", still waiting. */
    bgwrite_close(b->w, "four", 4);
    uv_close((uv_handle_t *)t, NULL);
}

static void
test_bgwrite(void **state)
{
    struct bw_test b;
    uv_loop_t loop;
    char path[256], got[16] = "";
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/bg.prom", dir);
    bw_loop_thread = pthread_self();
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&b, 0, sizeof(b));
    b.w = bgwrite_new(&loop, path, "test file", slow_write);
    bgwrite_submit(b.w, "one", 3);
    uv_timer_init(&loop, &b.timer);
    b.timer.data = &b;
    uv_timer_start(&b.timer, bw_tick, 10, 10);
    /* Returns once the writer freed itself: nothing else is pending. */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    /* The loop kept running while a write was held, none ran on it. */
    assert_false(bw_timed_out);
    assert_false(bw_on_loop);
    assert_int_equal(b.ticks, 3);
    /* In order, the waiting ones collapsed into the last. */
    assert_int_equal(bw_calls, 2);
    assert_string_equal(bw_seen[0], "one");
    assert_string_equal(bw_seen[1], "four");
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(got, sizeof(got), f));
    fclose(f);
    assert_string_equal(got, "four");
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
        cmocka_unit_test(test_bgwrite),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
