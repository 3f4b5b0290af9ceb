/*
 * test_metrics: the Prometheus renderer, checked by parsing its own
 * output line by line as a scraper would (every sample after its
 * family's # HELP and # TYPE, names and labels well formed, counters
 * ending in _total, histogram buckets cumulative and ending with +Inf
 * equal to _count); label escaping; the histogram's "le" edges; the
 * loop-lag histogram exported in these buckets; the set of series
 * fixed whatever the values (bounded cardinality, docs/security.md);
 * and the textfile written and read back, the reader refusing what is
 * not one (tocsinctl prints it: it is input from disk).
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
#include "metrics.h"
#include "testutil.h"

#define MAXFAM 64

struct fam {
    char name[96];
    char type[16];
    int help;
};

struct parsed {
    struct fam fam[MAXFAM];
    size_t nfam;
    size_t nseries;
    char series[512][160]; /* name{labels} of every sample */
};

static int
name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              c == ':' || (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return n > 0;
}

static struct fam *
fam_of(struct parsed *p, const char *name, size_t n)
{
    for (size_t i = 0; i < p->nfam; i++)
        if (strlen(p->fam[i].name) == n && memcmp(p->fam[i].name, name, n) == 0)
            return &p->fam[i];
    return NULL;
}

/*
 * Parse a rendering; fail the test on anything a scraper would refuse.
 * Histograms: checks buckets cumulative, +Inf last and == _count.
 */
static void
parse(const char *text, struct parsed *p)
{
    const char *line = text;
    uint64_t last_bucket = 0, inf = 0;
    int in_hist = 0, saw_inf = 0;

    memset(p, 0, sizeof(*p));
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    while (*line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = (size_t)(nl - line);
        char buf[512];

        assert_non_null(nl);
        assert_true(len > 0 && len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            char *sp = strchr(buf + 7, ' ');

            assert_non_null(sp);
            assert_true(name_ok(buf + 7, (size_t)(sp - buf - 7)));
            assert_null(fam_of(p, buf + 7, (size_t)(sp - buf - 7)));
            assert_true(p->nfam < MAXFAM);
            memcpy(p->fam[p->nfam].name, buf + 7, (size_t)(sp - buf - 7));
            p->fam[p->nfam].help = 1;
            p->nfam++;
            in_hist = 0;
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char *sp = strchr(buf + 7, ' ');
            struct fam *f;

            assert_non_null(sp);
            f = fam_of(p, buf + 7, (size_t)(sp - buf - 7));
            /* HELP first, then TYPE, once. */
            assert_non_null(f);
            assert_string_equal(f->type, "");
            assert_true(strcmp(sp + 1, "counter") == 0 ||
                        strcmp(sp + 1, "gauge") == 0 ||
                        strcmp(sp + 1, "histogram") == 0);
            snprintf(f->type, sizeof(f->type), "%s", sp + 1);
            if (strcmp(f->type, "counter") == 0)
                assert_non_null(strstr(f->name, "_total"));
            if (strcmp(f->type, "histogram") == 0) {
                assert_non_null(strstr(f->name, "_seconds"));
                in_hist = 1;
                last_bucket = 0;
                saw_inf = 0;
            }
            continue;
        }
        assert_true(buf[0] != '#');
        {
            /* A sample: name, optional {labels}, space, value. */
            size_t n = strcspn(buf, "{ ");
            struct fam *f = p->nfam ? &p->fam[p->nfam - 1] : NULL;
            const char *v;
            char *end;
            uint64_t val;

            assert_true(name_ok(buf, n));
            assert_non_null(f);
            /* The sample belongs to the family just declared. */
            assert_int_equal(strncmp(buf, f->name, strlen(f->name)), 0);
            if (strcmp(f->type, "histogram") == 0) {
                const char *suf = buf + strlen(f->name);

                assert_true(strncmp(suf, "_bucket{", 8) == 0 ||
                            strncmp(suf, "_sum ", 5) == 0 ||
                            strncmp(suf, "_count ", 7) == 0);
            } else {
                assert_int_equal(n, strlen(f->name));
            }
            if (buf[n] == '{') {
                const char *q = buf + n + 1;

                for (;;) {
                    size_t k = strcspn(q, "=");

                    assert_true(name_ok(q, k));
                    q += k;
                    assert_int_equal(q[0], '=');
                    assert_int_equal(q[1], '"');
                    q += 2;
                    while (*q != '"') {
                        assert_true(*q != '\0' && *q != '\n');
                        if (*q == '\\') {
                            assert_true(q[1] == '\\' || q[1] == '"' ||
                                        q[1] == 'n');
                            q++;
                        }
                        q++;
                    }
                    q++;
                    if (*q == ',') {
                        q++;
                        continue;
                    }
                    assert_int_equal(*q, '}');
                    q++;
                    break;
                }
                n = (size_t)(q - buf);
            }
            assert_int_equal(buf[n], ' ');
            assert_true(p->nseries < 512);
            memcpy(p->series[p->nseries], buf, n);
            p->series[p->nseries][n] = '\0';
            p->nseries++;
            v = buf + n + 1;
            if (strstr(buf, "_sum ") != NULL ||
                strstr(buf, "start_time_seconds ") != NULL) {
                assert_true(strtod(v, &end) >= 0);
                assert_int_equal(*end, '\0');
                continue;
            }
            val = strtoull(v, &end, 10);
            assert_true(end != v && *end == '\0');
            if (in_hist && strstr(buf, "_bucket{") != NULL) {
                assert_false(saw_inf);
                /* Cumulative: never less than the bucket before. */
                assert_true(val >= last_bucket);
                last_bucket = val;
                if (strstr(buf, "le=\"+Inf\"") != NULL) {
                    saw_inf = 1;
                    inf = val;
                }
            } else if (in_hist && strstr(buf, "_count ") != NULL) {
                assert_true(saw_inf);
                assert_int_equal(val, inf);
            }
        }
    }
    for (size_t i = 0; i < p->nfam; i++)
        assert_string_not_equal(p->fam[i].type, "");
}

static const char *
value_of(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *l = text; l != NULL && *l; l = strchr(l, '\n')) {
        if (*l == '\n')
            l++;
        if (strncmp(l, series, n) == 0 && l[n] == ' ') {
            static char v[64];
            size_t k = strcspn(l + n + 1, "\n");

            assert_true(k < sizeof(v));
            memcpy(v, l + n + 1, k);
            v[k] = '\0';
            return v;
        }
    }
    fail_msg("no series %s", series);
    return NULL;
}

static void
render(const struct metrics *m, struct tc_buf *b)
{
    tc_buf_init(b, METRICS_RENDER_MAX);
    assert_int_equal(metrics_render(m, b), 0);
    assert_int_equal(tc_buf_append(b, "", 1), 0);
}

static void
test_render_format(void **state)
{
    static struct parsed p;
    struct metrics m;
    struct tc_buf b;
    const char *t;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.start_ns = 1795848743801525169LL;
    m.events_received = 12;
    m.events_stored[METRICS_ORIGIN_AGENT] = 10;
    m.events_stored[METRICS_ORIGIN_COLLECTOR] = 1;
    m.events_deduplicated = 2;
    m.agents_connected = 1;
    m.census = 1;
    m.incidents[0][1] = 3; /* open, P2 */
    m.problems[2] = 4;     /* known_error */
    m.tls_failures[TC_TLS_FAIL_BAD_CERT] = 5;
    /* 2 ms, 2.5 ms (on the bound: its bucket), 3 s, 20 s (+Inf). */
    metrics_hist_observe(&m.commit, 2000000);
    metrics_hist_observe(&m.commit, 2500000);
    metrics_hist_observe(&m.commit, 3000000000ULL);
    metrics_hist_observe(&m.commit, 20000000000ULL);
    render(&m, &b);
    t = (const char *)tc_buf_head(&b);
    parse(t, &p);
    assert_string_equal(value_of(t, "tocsin_events_received_total"), "12");
    assert_string_equal(
        value_of(t, "tocsin_events_stored_total{origin=\"agent\"}"), "10");
    assert_string_equal(
        value_of(t, "tocsin_events_stored_total{origin=\"collector\"}"), "1");
    assert_string_equal(value_of(t, "tocsin_agents_connected"), "1");
    assert_string_equal(
        value_of(t, "tocsin_incidents{state=\"open\",priority=\"P2\"}"), "3");
    assert_string_equal(value_of(t, "tocsin_problems{state=\"known_error\"}"),
                        "4");
    assert_string_equal(
        value_of(t, "tocsin_tls_handshake_failures_total{reason=\"bad_cert\"}"),
        "5");
    assert_string_equal(value_of(t, "tocsin_collector_start_time_seconds"),
                        "1795848743.801525169");
    /* Cumulative, le inclusive. */
    assert_string_equal(
        value_of(t,
                 "tocsin_store_commit_duration_seconds_bucket{le=\"0.001\"}"),
        "0");
    assert_string_equal(
        value_of(t,
                 "tocsin_store_commit_duration_seconds_bucket{le=\"0.0025\"}"),
        "2");
    assert_string_equal(
        value_of(t, "tocsin_store_commit_duration_seconds_bucket{le=\"2.5\"}"),
        "2");
    assert_string_equal(
        value_of(t, "tocsin_store_commit_duration_seconds_bucket{le=\"5\"}"),
        "3");
    assert_string_equal(
        value_of(t, "tocsin_store_commit_duration_seconds_bucket{le=\"10\"}"),
        "3");
    assert_string_equal(
        value_of(t, "tocsin_store_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        "4");
    assert_string_equal(value_of(t, "tocsin_store_commit_duration_seconds_sum"),
                        "23.004500000");
    assert_string_equal(
        value_of(t, "tocsin_store_commit_duration_seconds_count"), "4");
    tc_buf_close(&b);

    /* Before the first census its gauges are left out, not zero. */
    m.census = 0;
    render(&m, &b);
    t = (const char *)tc_buf_head(&b);
    parse(t, &p);
    assert_null(strstr(t, "tocsin_incidents"));
    assert_null(strstr(t, "tocsin_hints_pending"));
    tc_buf_close(&b);

    /* A cap too small: an error, not a cut rendering passed as whole. */
    tc_buf_init(&b, 100);
    assert_int_equal(metrics_render(&m, &b), -ENOBUFS);
    tc_buf_close(&b);
}

/* The same series whatever the numbers: no label comes from input. */
static void
test_series_fixed(void **state)
{
    static struct parsed a, z;
    struct metrics m;
    struct tc_buf b;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.census = 1;
    render(&m, &b);
    parse((const char *)tc_buf_head(&b), &z);
    tc_buf_close(&b);
    memset(&m, 0xff, sizeof(m));
    m.census = 1;
    m.start_ns = 0;
    /* Histograms must stay histograms: counts that add up. */
    memset(&m.commit, 0, sizeof(m.commit));
    memset(&m.step, 0, sizeof(m.step));
    memset(&m.looplag, 0, sizeof(m.looplag));
    metrics_hist_observe(&m.step, 123456789);
    render(&m, &b);
    parse((const char *)tc_buf_head(&b), &a);
    tc_buf_close(&b);
    assert_int_equal(a.nseries, z.nseries);
    for (size_t i = 0; i < a.nseries; i++)
        assert_string_equal(a.series[i], z.series[i]);
    /* 3 states x 5 priorities, 4 problem states, 7 TLS classes. */
    assert_true(z.nseries < 200);
}

static void
test_escape(void **state)
{
    struct tc_buf b;

    (void)state;
    tc_buf_init(&b, 64);
    assert_int_equal(metrics_escape_label(&b, "a\\b\"c\nd"), 0);
    assert_int_equal(tc_buf_size(&b), strlen("a\\\\b\\\"c\\nd"));
    assert_memory_equal(tc_buf_head(&b), "a\\\\b\\\"c\\nd", tc_buf_size(&b));
    tc_buf_close(&b);
    /* Over the cap: nothing half-written. */
    tc_buf_init(&b, 4);
    assert_int_equal(metrics_escape_label(&b, "\"\"\""), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 0);
    tc_buf_close(&b);
}

static void
test_looplag_export(void **state)
{
    struct looplag_hist lh;
    struct metrics_hist h;
    uint64_t cum = 0;

    (void)state;
    memset(&lh, 0, sizeof(lh));
    looplag_hist_add(&lh, 50);       /* <= 0.1 ms */
    looplag_hist_add(&lh, 800);      /* <= 1 ms */
    looplag_hist_add(&lh, 42300);    /* <= 50 ms */
    looplag_hist_add(&lh, 250000);   /* 250 ms: next bucket up, <= 0.5 s */
    looplag_hist_add(&lh, 30000000); /* +Inf */
    metrics_hist_from_looplag(&h, &lh);
    assert_int_equal(h.count, 5);
    assert_int_equal(h.sum_ns,
                     (50ULL + 800 + 42300 + 250000 + 30000000) * 1000);
    assert_int_equal(h.bucket[0], 1);  /* 0.0001 */
    assert_int_equal(h.bucket[2], 1);  /* 0.001 */
    assert_int_equal(h.bucket[7], 1);  /* 0.05 */
    assert_int_equal(h.bucket[10], 1); /* 0.5 */
    assert_int_equal(h.bucket[METRICS_NBOUNDS], 1);
    for (size_t i = 0; i <= METRICS_NBOUNDS; i++)
        cum += h.bucket[i];
    assert_int_equal(cum, h.count);
}

static void
test_textfile(void **state)
{
    char path[256], bad[256];
    struct metrics m;
    struct tc_buf b, r;
    const char *why;
    struct stat sb;
    int64_t age = -1;

    (void)state;
    assert_int_equal(tu_setup("test_metrics"), 0);
    assert_int_equal(
        metrics_textfile_path(path, sizeof(path), "/var/lib/x/c.db"), 0);
    assert_string_equal(path, "/var/lib/x/c.db-metrics.prom");
    snprintf(path, sizeof(path), "%s/c.db-metrics.prom", tu_tmpdir);
    memset(&m, 0, sizeof(m));
    render(&m, &b);
    assert_int_equal(
        metrics_textfile_write(path, tc_buf_head(&b), tc_buf_size(&b) - 1), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    tc_buf_init(&r, METRICS_RENDER_MAX);
    assert_int_equal(metrics_textfile_read(path, &r, &age, &why), 0);
    assert_int_equal(tc_buf_size(&r), tc_buf_size(&b) - 1);
    assert_memory_equal(tc_buf_head(&r), tc_buf_head(&b), tc_buf_size(&r));
    assert_true(age >= 0 && age < 60000000000LL);
    tc_buf_close(&r);
    tc_buf_close(&b);

    /* Refusals: not ours, escapes, a symlink, missing. */
    tc_buf_init(&r, METRICS_RENDER_MAX);
    assert_int_equal(metrics_textfile_read(tu_write_file("a.prom", "hello\n"),
                                           &r, &age, &why),
                     -EBADMSG);
    tc_buf_reset(&r);
    assert_int_equal(
        metrics_textfile_read(
            tu_write_file("b.prom", "# HELP tocsin_x \x1b]52;c;x\x07\n"), &r,
            &age, &why),
        -EBADMSG);
    assert_string_equal(why, "a byte that is not printable ASCII");
    tc_buf_reset(&r);
    snprintf(bad, sizeof(bad), "%s/link.prom", tu_tmpdir);
    assert_int_equal(symlink(path, bad), 0);
    assert_true(metrics_textfile_read(bad, &r, &age, &why) < 0);
    tc_buf_reset(&r);
    snprintf(bad, sizeof(bad), "%s/none.prom", tu_tmpdir);
    assert_int_equal(metrics_textfile_read(bad, &r, &age, &why), -ENOENT);
    tc_buf_close(&r);
    tu_teardown(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_format),
        cmocka_unit_test(test_series_fixed),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_looplag_export),
        cmocka_unit_test(test_textfile),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
