/*
 * test_journal: the journald input against real journal files.
 *
 * journald itself need not run: systemd-journal-remote (Debian package
 * systemd-journal-remote) writes journal files from the export format,
 * and the input reads them through TOCSIN_JOURNAL_DIRECTORY with the
 * same sd-journal code as the system journal. Without that program the
 * file tests are skipped (and say so); the mapping and the "cannot
 * open" path run everywhere.
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "emit.h"
#include "journal.h"
#include "rules.h"
#include "spool.h"
#include "testutil.h"
#include "util.h"

#define JOURNAL_REMOTE "/lib/systemd/systemd-journal-remote"

struct fx {
    char dir[64];   /* spool */
    char jdir[128]; /* journal files */
    uv_loop_t loop;
    struct agent_config cfg;
    struct agent_journal jc;
    char *units[1];
    struct agent_rule rule;
    struct rules *rs;
    struct spool *spool;
    struct emit *e;
    struct journal *j;
    int nfile; /* journal files written */
};

static int
setup(void **state)
{
    struct fx *f = tc_xcalloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_journal.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->jdir, sizeof(f->jdir), "%s/journal", f->dir);
    assert_int_equal(tc_mkdirs(f->jdir, 0700), 0);
    setenv("TOCSIN_JOURNAL_DIRECTORY", f->jdir, 1);
    f->units[0] = "app.service";
    f->jc.name = "sys";
    f->jc.units = f->units;
    f->jc.nunits = 1;
    f->jc.priority = 4; /* warning and worse */
    f->jc.start_at = AGENT_START_BEGINNING;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(spool_open(f->dir, 64 << 20, &f->spool), 0);
    f->e = emit_new(&f->loop, &f->cfg, f->spool, "web-01", NULL, NULL);
    assert_int_equal(emit_start(f->e), 0);
    *state = f;
    return 0;
}

static void
stop_journal(struct fx *f)
{
    if (f->j == NULL)
        return;
    journal_stop(f->j, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    journal_free(f->j);
    f->j = NULL;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    stop_journal(f);
    emit_stop(f->e, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    emit_free(f->e);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    spool_free(f->spool);
    rules_free(f->rs);
    free(f->rule.name);
    free(f->rule.match);
    unsetenv("TOCSIN_JOURNAL_DIRECTORY");
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Write entries "unit|prio|message" (NULL-terminated) as a new file. */
static void
write_entries(struct fx *f, const char *const *spec)
{
    char path[256], cmd[512];
    FILE *fp;
    int64_t now = tc_now_ns() / 1000;

    snprintf(path, sizeof(path), "%s/in.export", f->dir);
    assert_non_null(fp = fopen(path, "w"));
    for (int i = 0; spec[i] != NULL; i++) {
        char unit[64], msg[128];
        int prio;

        assert_int_equal(
            sscanf(spec[i], "%63[^|]|%d|%127[^\n]", unit, &prio, msg), 3);
        fprintf(fp,
                "__REALTIME_TIMESTAMP=%lld\n__MONOTONIC_TIMESTAMP=%d\n"
                "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                "_SYSTEMD_UNIT=%s\n_PID=%d\nSYSLOG_IDENTIFIER=%.*s\n"
                "PRIORITY=%d\nMESSAGE=%s\n\n",
                (long long)(now + i), 1000 + f->nfile * 100 + i, unit, 100 + i,
                (int)strcspn(unit, "."), unit, prio, msg);
    }
    fclose(fp);
    snprintf(cmd, sizeof(cmd), "%s -o %s/f%d.journal - < %s 2>/dev/null",
             JOURNAL_REMOTE, f->jdir, f->nfile++, path);
    assert_int_equal(system(cmd), 0);
}

/* Run the loop until the spool holds n events (or 5 s pass). */
static void
run_until(struct fx *f, uint64_t n)
{
    int64_t end = tc_mono_ns() + 5000000000LL;

    while (spool_depth(f->spool) < n && tc_mono_ns() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    /* A little longer, to see that nothing more arrives. */
    for (int i = 0; i < 20; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

struct got {
    size_t n;
    char line[16][256]; /* "rule sev message fields" */
    int64_t event_ts[16];
};

static int
collect(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct got *g = arg;
    struct tc_frame fr;
    struct tc_event ev;
    const char *err = NULL;
    size_t o;

    tc_frame_init(&fr);
    assert_int_equal(
        tc_event_decode(body, len, &tc_wire_default_limits, &fr, &ev, &err), 0);
    assert_true(g->n < 16);
    o = (size_t)snprintf(g->line[g->n], sizeof(g->line[0]), "%.*s %s %.*s",
                         (int)ev.rule.len, ev.rule.ptr,
                         tc_severity_name(ev.sev), (int)ev.message.len,
                         ev.message.ptr);
    for (uint32_t i = 0; i < ev.nfields; i++)
        o += (size_t)snprintf(g->line[g->n] + o, sizeof(g->line[0]) - o,
                              " %.*s=%.*s", (int)ev.fields[i].key.len,
                              ev.fields[i].key.ptr, (int)ev.fields[i].val.len,
                              ev.fields[i].val.ptr);
    g->event_ts[g->n] = ev.event_ts;
    g->n++;
    tc_frame_close(&fr);
    return 0;
}

static void
got_all(struct fx *f, struct got *g)
{
    memset(g, 0, sizeof(*g));
    assert_true(spool_read_from(f->spool, 1, 16, SIZE_MAX, collect, g) >= 0);
}

static int
have_remote(void)
{
    if (access(JOURNAL_REMOTE, X_OK) == 0)
        return 1;
    fprintf(stderr,
            "# %s not installed (Debian: systemd-journal-remote): "
            "skipping the journal file tests\n",
            JOURNAL_REMOTE);
    return 0;
}

static void
test_severity(void **state)
{
    static const enum tc_severity want[8] = {
        TC_SEV_CRITICAL, TC_SEV_CRITICAL, TC_SEV_CRITICAL, TC_SEV_ERROR,
        TC_SEV_WARNING,  TC_SEV_INFO,     TC_SEV_INFO,     TC_SEV_INFO,
    };

    for (int p = 0; p < 8; p++)
        assert_int_equal(journal_severity(p), want[p]);
}

/*
 * libsystemd is loaded by the first journal open (sdjournal.c), so that
 * an agent without journal inputs does not map it. Runs before any
 * other test opens a journal in this process.
 */
static void
test_libsystemd_on_demand(void **state)
{
    struct fx *f = *state;
    void *h;

    assert_null(dlopen("libsystemd.so.0", RTLD_NOW | RTLD_NOLOAD));
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    dlclose(h);
}

static void
test_cannot_open(void **state)
{
    struct fx *f = *state;
    struct journal_stats st;

    /* No journal here: a warning, an idle input, and no error. */
    setenv("TOCSIN_JOURNAL_DIRECTORY", "/nonexistent/journal", 1);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    journal_get_stats(f->j, &st);
    assert_int_equal(st.open, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(spool_depth(f->spool), 0);
}

static void
test_filters_and_cursor(void **state)
{
    struct fx *f = *state;
    const char *first[] = {
        "app.service|3|disk failing",   /* in: error */
        "app.service|6|all good",       /* out: info > warning */
        "db.service|2|db crashed",      /* out: other unit */
        "app.service|0|kernel on fire", /* in: critical */
        "app.service|4|slow response",  /* in: warning */
        NULL,
    };
    const char *second[] = {
        "app.service|3|second batch",
        "db.service|3|not ours",
        NULL,
    };
    struct got g;
    char *cursor = NULL;

    if (!have_remote())
        skip();
    write_entries(f, first);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 3);
    got_all(f, &g);
    assert_int_equal(g.n, 3);
    /* Without rules: rule = unit, severity from PRIORITY, fields. */
    assert_string_equal(g.line[0], "app.service error disk failing "
                                   "unit=app.service pid=100 identifier=app");
    assert_string_equal(g.line[1], "app.service critical kernel on fire "
                                   "unit=app.service pid=103 identifier=app");
    assert_string_equal(g.line[2], "app.service warning slow response "
                                   "unit=app.service pid=104 identifier=app");
    assert_true(g.event_ts[0] > 0);
    assert_int_equal(spool_cursor_get(f->spool, "journal:sys", &cursor), 0);
    assert_non_null(strstr(cursor, "i=5"));
    free(cursor);

    /* Restart after more entries: only the new ones, none twice. */
    stop_journal(f);
    write_entries(f, second);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 4);
    got_all(f, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.line[3], "app.service error second batch "
                                   "unit=app.service pid=100 identifier=app");
}

static void
test_rules_on_message(void **state)
{
    struct fx *f = *state;
    const char *lines[] = {
        "app.service|3|request failed code=502",
        "app.service|3|unrelated error",
        NULL,
    };
    char err[256];
    struct got g;

    if (!have_remote())
        skip();
    f->rule.name = tc_xstrdup("bad-gateway");
    f->rule.match = tc_xstrdup("code=(?<code>5\\d\\d)");
    f->rule.severity = TC_SEV_CRITICAL;
    assert_int_equal(
        rules_compile("agent.yaml", &f->rule, 1, &f->rs, err, sizeof(err)), 0);
    f->jc.rules = &f->rule;
    f->jc.nrules = 1;
    write_entries(f, lines);
    f->j = journal_new(&f->loop, &f->jc, f->rs, f->e);
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 1);
    got_all(f, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "bad-gateway critical request failed "
                                   "code=502 unit=app.service pid=100 "
                                   "identifier=app code=502");
}

static void
test_start_at_end(void **state)
{
    struct fx *f = *state;
    const char *old[] = {"app.service|3|old news", NULL};
    const char *new[] = {"app.service|3|fresh", NULL};
    struct got g;

    if (!have_remote())
        skip();
    f->jc.start_at = AGENT_START_END;
    write_entries(f, old);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 1);
    assert_int_equal(spool_depth(f->spool), 0);
    write_entries(f, new);
    run_until(f, 1);
    got_all(f, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "app.service error fresh "
                                   "unit=app.service pid=100 identifier=app");
}

static void
test_cursor_file_gone(void **state)
{
    struct fx *f = *state;
    const char *first[] = {"app.service|3|one", "app.service|3|two", NULL};
    const char *second[] = {"app.service|3|three", "app.service|3|four", NULL};
    char path[256], *err;
    struct got g;

    if (!have_remote())
        skip();
    write_entries(f, first);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 2);
    stop_journal(f);
    /* The file holding the stored cursor is vacuumed while the input
     * is stopped; the first entry left must not be skipped. */
    snprintf(path, sizeof(path), "%s/f0.journal", f->jdir);
    assert_int_equal(unlink(path), 0);
    write_entries(f, second);
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    tu_capture_begin();
    assert_int_equal(journal_start(f->j), 0);
    run_until(f, 4);
    err = tu_capture_end();
    got_all(f, &g);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.line[2], "app.service error three "
                                   "unit=app.service pid=100 identifier=app");
    assert_string_equal(g.line[3], "app.service error four "
                                   "unit=app.service pid=101 identifier=app");
    tu_assert_contains(err, "journal sys: the entry at the stored cursor is "
                            "gone");
    free(err);
}

static void
test_files_appear(void **state)
{
    struct fx *f = *state;
    const char *first[] = {"app.service|3|first words", NULL};
    struct journal_stats st;
    struct got g;

    if (!have_remote())
        skip();
    /* No journal files at start (a namespace whose journald has not
     * logged yet): the input waits and opens the journal again until
     * files appear. Everything in them is new, so they are read from
     * the head although start_at is end. */
    f->jc.start_at = AGENT_START_END;
    f->j = journal_new(&f->loop, &f->jc, NULL, f->e);
    assert_int_equal(journal_start(f->j), 0);
    journal_get_stats(f->j, &st);
    assert_int_equal(st.open, 1);
    assert_int_equal(st.waiting, 1);
    run_until(f, 1);
    assert_int_equal(spool_depth(f->spool), 0);
    write_entries(f, first);
    run_until(f, 1);
    journal_get_stats(f->j, &st);
    assert_int_equal(st.waiting, 0);
    got_all(f, &g);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.line[0], "app.service error first words "
                                   "unit=app.service pid=100 identifier=app");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severity),
        cmocka_unit_test_setup_teardown(test_libsystemd_on_demand, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cannot_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_and_cursor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rules_on_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_appear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_file_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
