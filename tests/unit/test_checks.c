/*
 * test_checks: the health checks on a real libuv loop with real
 * processes, sockets and a real spool in a fresh temp dir per test:
 * plugin states and perfdata, the timeout (SIGTERM ignored, so SIGKILL,
 * and no zombie left), spawn failure, the output cap, the concurrency
 * cap and skipped runs, splay determinism, when events are sent (first,
 * change, resend), tcp, http, disk, process and file_age.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include <cmocka.h>
#include <uv.h>

#include "check.h"
#include "checks.h"
#include "config.h"
#include "spool.h"
#include "testutil.h"
#include "util.h"
#include "wire.h"

static int
setup(void **state)
{
    return tu_setup("tocsin-checks");
}

/* Write an executable shell script into tu_tmpdir; returns its path. */
static char *
script(const char *name, const char *body)
{
    char *path = tc_xasprintf("%s/%s", tu_tmpdir, name);
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    return path;
}

/* A check with test-sized timings; strings are borrowed. */
static struct agent_check
mkcheck(const char *name, enum agent_check_type type)
{
    struct agent_check k;

    memset(&k, 0, sizeof(k));
    k.name = (char *)name;
    k.type = type;
    k.interval_ms = 100;
    k.timeout_ms = 2000;
    k.resend_ms = 60000;
    k.expect_status = 200;
    k.warning_free_pct = 15;
    k.critical_free_pct = 5;
    k.warning_age_ms = 300000;
    k.critical_age_ms = 900000;
    k.min_count = 1;
    return k;
}

/*
 * A check name whose splay on host web-01 is under 100 ms, so that a
 * test with a long interval need not wait for its first run. Owned by
 * the caller.
 */
static char *
quick_name(const char *prefix, uint64_t interval_ms)
{
    for (int i = 0;; i++) {
        char *n = tc_xasprintf("%s%d", prefix, i);

        if (checks_splay_ms("web-01", n, interval_ms) < 100)
            return n;
        free(n);
    }
}

/* One exec check running argv {path}. */
static struct agent_check
mkexec(const char *name, char *path)
{
    struct agent_check k = mkcheck(name, AGENT_CHECK_EXEC);
    char **argv = tc_xcalloc(2, sizeof(*argv));

    argv[0] = path;
    k.command = argv;
    k.ncommand = 1;
    return k;
}

/* The loop, spool and checks of one run. */
struct harness {
    uv_loop_t loop;
    struct spool *spool;
    struct agent_config cfg;
    struct checks *cs;
    uv_timer_t poll;                /* watches for the stop condition */
    int (*pred)(struct harness *h); /* stop when it returns 1 */
    int64_t deadline_ns;            /* or at this monotonic time */
    int met;                        /* 1 if pred returned 1 */
    int stopped;                    /* checks_stop's cb ran */
    uv_handle_t *extra;             /* a server to close at the end */
    uint32_t max_running;           /* most checks seen running at once */
    void *arg;                      /* for pred */
};

static void
h_stopped(void *arg)
{
    struct harness *h = arg;

    h->stopped = 1;
}

static void
h_poll(uv_timer_t *t)
{
    struct harness *h = t->data;
    struct check_status st;
    uint32_t running = 0;

    for (size_t i = 0; i < checks_count(h->cs); i++) {
        assert_int_equal(checks_get(h->cs, i, &st), 0);
        running += (uint32_t)st.running;
    }
    if (running > h->max_running)
        h->max_running = running;
    if (h->pred(h))
        h->met = 1;
    else if (tc_mono_ns() < h->deadline_ns)
        return;
    uv_close((uv_handle_t *)&h->poll, NULL);
    if (h->extra != NULL)
        uv_close(h->extra, NULL);
    checks_stop(h->cs, h_stopped, h);
}

/* Run cfg's checks until pred holds (or max_ms); returns pred's result. */
static int
h_run(struct harness *h, int (*pred)(struct harness *), uint64_t max_ms)
{
    h->pred = pred;
    h->deadline_ns = tc_mono_ns() + (int64_t)max_ms * 1000000;
    h->cs = checks_new(&h->loop, &h->cfg, h->spool, "web-01", NULL, NULL);
    assert_int_equal(checks_start(h->cs), 0);
    uv_timer_init(&h->loop, &h->poll);
    h->poll.data = h;
    uv_timer_start(&h->poll, h_poll, 5, 5);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_true(h->stopped);
    return h->met;
}

static void
h_init(struct harness *h, struct agent_check *checks, size_t n)
{
    char *dir = tc_xasprintf("%s/state", tu_tmpdir);

    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    assert_int_equal(spool_open(dir, 1 << 20, &h->spool), 0);
    free(dir);
    h->cfg.checks = checks;
    h->cfg.nchecks = n;
    h->cfg.check_max_concurrent = 4;
}

/* Free everything; the loop must close cleanly (no handle leaked). */
static void
h_close(struct harness *h)
{
    checks_free(h->cs);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    spool_free(h->spool);
}

static struct check_status
status_of(struct harness *h, size_t i)
{
    struct check_status st;

    assert_int_equal(checks_get(h->cs, i, &st), 0);
    return st;
}

static int
all_ran(struct harness *h)
{
    for (size_t i = 0; i < checks_count(h->cs); i++)
        if (status_of(h, i).runs < 1)
            return 0;
    return 1;
}

/* Spooled events, decoded: a growing array the test frees. */
struct evlist {
    struct tc_frame f[64];
    struct tc_event ev[64];
    uint8_t *body[64]; /* the decoded events point into these */
    size_t n;
};

static int
ev_cb(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct evlist *l = arg;
    const char *err = NULL;

    assert_true(l->n < 64);
    /* body lives only during the call; the event's strings point in. */
    l->body[l->n] = tc_xmalloc(len);
    memcpy(l->body[l->n], body, len);
    body = l->body[l->n];
    tc_frame_init(&l->f[l->n]);
    assert_int_equal(tc_event_decode(body, len, &tc_wire_default_limits,
                                     &l->f[l->n], &l->ev[l->n], &err),
                     0);
    l->n++;
    return 0;
}

static void
ev_read(struct harness *h, struct evlist *l)
{
    memset(l, 0, sizeof(*l));
    assert_true(spool_read_from(h->spool, 0, 64, 1 << 20, ev_cb, l) >= 0);
}

static void
ev_free(struct evlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tc_frame_close(&l->f[i]);
        free(l->body[i]);
    }
}

static int
str_eq(struct tc_str s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

static const char *
ev_field(const struct tc_event *e, const char *key, char *buf, size_t len)
{
    for (uint32_t i = 0; i < e->nfields; i++)
        if (str_eq(e->fields[i].key, key)) {
            snprintf(buf, len, "%.*s", (int)e->fields[i].val.len,
                     e->fields[i].val.ptr);
            return buf;
        }
    return NULL;
}

static const char *
ev_label(const struct tc_event *e, const char *key, char *buf, size_t len)
{
    for (uint32_t i = 0; i < e->nlabels; i++)
        if (str_eq(e->labels[i].key, key)) {
            snprintf(buf, len, "%.*s", (int)e->labels[i].val.len,
                     e->labels[i].val.ptr);
            return buf;
        }
    return NULL;
}

/* The event whose source is name (the first one). */
static const struct tc_event *
ev_find(const struct evlist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(l->ev[i].source, name))
            return &l->ev[i];
    return NULL;
}

static void
free_exec(struct agent_check *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (k[i].command != NULL)
            free(k[i].command[0]);
        free(k[i].command);
    }
}

/* ---- perfdata ---------------------------------------------------- */

static const char *
res_field(const struct check_result *res, const char *key)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (strcmp(res->fields[i].key, key) == 0)
            return res->fields[i].val;
    return NULL;
}

static void
test_perfdata_parse(void **state)
{
    struct check_result res;
    const char *out;

    memset(&res, 0, sizeof(res));
    out = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968"
          " 'inode pct'=12%;80;90 time=0.002s\n";
    assert_int_equal(check_exec_parse(out, strlen(out), &res), 0);
    assert_string_equal(res.message, "DISK OK - free space: / 3326 MB (56%);");
    assert_string_equal(res_field(&res, "perf./"), "2643MB");
    assert_string_equal(res_field(&res, "perf./.warn"), "5948");
    assert_string_equal(res_field(&res, "perf./.crit"), "5958");
    assert_string_equal(res_field(&res, "perf.inode pct"), "12%");
    assert_string_equal(res_field(&res, "perf.inode pct.crit"), "90");
    assert_string_equal(res_field(&res, "perf.time"), "0.002s");
    assert_null(res_field(&res, "perf.time.warn"));

    /* Long output: perfdata after a '|' on a later line, to the end. */
    memset(&res, 0, sizeof(res));
    out = "OK: 3 services|a=1\nservice one fine\nservice two fine | b=2c;;3\n"
          "c=4 'it''s'=5\n";
    assert_int_equal(check_exec_parse(out, strlen(out), &res), 0);
    assert_string_equal(res.message, "OK: 3 services");
    assert_string_equal(res_field(&res, "perf.a"), "1");
    assert_string_equal(res_field(&res, "perf.b"), "2c");
    assert_null(res_field(&res, "perf.b.warn"));
    assert_string_equal(res_field(&res, "perf.b.crit"), "3");
    assert_string_equal(res_field(&res, "perf.c"), "4");
    assert_string_equal(res_field(&res, "perf.it's"), "5");

    /* Garbage is counted and skipped; the rest still parses. */
    memset(&res, 0, sizeof(res));
    out = "WARN x | novalue= =3 'open=1 ok=1";
    assert_int_equal(check_exec_parse(out, strlen(out), &res), 3);
    assert_string_equal(res.message, "WARN x");
    assert_int_equal(res.nfields, 0);
    memset(&res, 0, sizeof(res));
    out = "fine | junk x=1";
    assert_int_equal(check_exec_parse(out, strlen(out), &res), 1);
    assert_string_equal(res_field(&res, "perf.x"), "1");

    /* No output, no newline, no perfdata. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(check_exec_parse("", 0, &res), 0);
    assert_string_equal(res.message, "");
    assert_int_equal(check_exec_parse("  just text  ", 13, &res), 0);
    assert_string_equal(res.message, "just text");
}

/* ---- splay ------------------------------------------------------- */

static void
test_splay(void **state)
{
    uint64_t a = checks_splay_ms("web-01", "disk", 60000);
    int differ = 0;

    assert_true(a < 60000);
    assert_int_equal(a, checks_splay_ms("web-01", "disk", 60000));
    /* Hosts spread out: of 20 hosts, not all share one splay. */
    for (int i = 0; i < 20; i++) {
        char host[32];

        snprintf(host, sizeof(host), "web-%02d", i);
        assert_true(checks_splay_ms(host, "disk", 60000) < 60000);
        differ += checks_splay_ms(host, "disk", 60000) != a;
    }
    assert_true(differ >= 15);
    assert_true(checks_splay_ms("ab", "c", 60000) !=
                checks_splay_ms("a", "bc", 60000));
    assert_int_equal(checks_splay_ms("web-01", "disk", 1), 0);
}

/* ---- exec -------------------------------------------------------- */

static void
test_exec_states(void **state)
{
    struct agent_check k[6];
    struct harness h;
    struct evlist l;
    const struct tc_event *e;
    char buf[64];
    static const char *const names[] = {"ok",      "warn",  "crit",
                                        "unknown", "weird", "missing"};
    static const int want[] = {0, 1, 2, 3, 3, 3};

    k[0] = mkexec("ok", script("ok", "echo 'PING OK - rta 0.1ms|rta=0.1ms;"
                                     "100;500;0 pl=0%;20;60;;'\nexit 0"));
    k[1] = mkexec("warn", script("warn", "echo 'LOAD WARNING'; exit 1"));
    k[2] = mkexec("crit", script("crit", "echo 'oops' >&2; exit 2"));
    k[3] = mkexec("unknown", script("unknown", "exit 3"));
    k[4] = mkexec("weird", script("weird", "echo 'strange'; exit 7"));
    k[5] = mkexec("missing", tc_xstrdup("/nonexistent/check_foo"));
    h_init(&h, k, 6);
    h.cfg.check_max_concurrent = 6;
    assert_true(h_run(&h, all_ran, 5000));
    for (size_t i = 0; i < 6; i++) {
        struct check_status st = status_of(&h, i);

        assert_string_equal(st.name, names[i]);
        assert_string_equal(st.type, "exec");
        assert_int_equal(st.state, want[i]);
        assert_true(st.last_run_ns > 0 && st.events >= 1);
    }
    assert_string_equal(status_of(&h, 0).message, "PING OK - rta 0.1ms");
    assert_string_equal(status_of(&h, 2).message, "oops");
    assert_string_equal(status_of(&h, 3).message,
                        "(no output returned from plugin)");
    assert_string_equal(status_of(&h, 4).message,
                        "weird: exit status 7: strange");
    assert_string_equal(status_of(&h, 5).message,
                        "check_foo: No such file or directory");

    ev_read(&h, &l);
    assert_true(l.n >= 6);
    e = ev_find(&l, "ok");
    assert_non_null(e);
    assert_true(str_eq(e->kind, "check") && str_eq(e->rule, "ok"));
    assert_true(str_eq(e->host, "web-01"));
    assert_int_equal(e->state, 0);
    assert_int_equal(e->sev, TC_SEV_OK);
    assert_string_equal(ev_field(e, "perf.rta", buf, sizeof(buf)), "0.1ms");
    assert_string_equal(ev_field(e, "perf.rta.crit", buf, sizeof(buf)), "500");
    assert_string_equal(ev_field(e, "perf.pl", buf, sizeof(buf)), "0%");
    assert_non_null(ev_field(e, "duration_ms", buf, sizeof(buf)));
    assert_int_equal(ev_find(&l, "warn")->sev, TC_SEV_WARNING);
    assert_int_equal(ev_find(&l, "crit")->sev, TC_SEV_CRITICAL);
    /* UNKNOWN: the check could not tell; a warning, not critical. */
    assert_int_equal(ev_find(&l, "unknown")->sev, TC_SEV_WARNING);
    assert_int_equal(ev_find(&l, "missing")->state, 3);
    ev_free(&l);
    h_close(&h);
    free_exec(k, 6);
}

static int
proc_alive(const char *pidfile)
{
    char path[64], buf[256];
    FILE *f = fopen(pidfile, "r");
    int pid = 0;

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    assert_true(pid > 1);
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    /* A zombie is not alive, but it is a leak: report it as such. */
    buf[0] = '\0';
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    return strstr(buf, ") Z ") != NULL ? 2 : 1;
}

/*
 * The state of the plugin's child after its group was killed. SIGKILL
 * is delivered asynchronously: on a loaded machine the child may still
 * be running for a moment after the plugin was reaped, so give it up to
 * 5 s to go (a wait, not a measurement; a child that survives the kill
 * is still reported alive).
 */
static int
child_outlives_kill(const char *pidfile)
{
    int st = proc_alive(pidfile);

    for (int i = 0; i < 500 && st == 1; i++) {
        usleep(10000);
        st = proc_alive(pidfile);
    }
    return st;
}

static int
first_done(struct harness *h)
{
    return status_of(h, 0).runs >= 1;
}

static void
test_exec_timeout_kills_group(void **state)
{
    struct agent_check k[1];
    struct harness h;
    struct check_status st;
    char *body, *pidf, *kidf;

    pidf = tc_xasprintf("%s/plugin.pid", tu_tmpdir);
    kidf = tc_xasprintf("%s/child.pid", tu_tmpdir);
    /* Ignores SIGTERM, and so does its child (SIG_IGN is inherited). */
    body = tc_xasprintf("trap '' TERM\necho $$ > %s\nsleep 30 &\n"
                        "echo $! > %s\necho started\nwait\nwait\n",
                        pidf, kidf);
    k[0] = mkexec(quick_name("hang", 60000), script("hang", body));
    k[0].interval_ms = 60000;
    /* Long enough for the shell to reach its trap on a loaded machine
     * (a SIGTERM before it would end the script at once). */
    k[0].timeout_ms = 1500;
    h_init(&h, k, 1);
    assert_true(h_run(&h, first_done, 10000));
    st = status_of(&h, 0);
    assert_int_equal(st.state, 3);
    assert_string_equal(st.message, "timed out after 1500ms");
    assert_int_equal(st.timeouts, 1);
    /* SIGTERM was ignored: only SIGKILL, 2 s later, ended it. */
    assert_true(st.duration_us >= 2000000);
    /* The plugin was reaped (no zombie) and its child died with it. */
    assert_int_equal(proc_alive(pidf), 0);
    assert_int_not_equal(child_outlives_kill(kidf), 1);
    h_close(&h);
    free(k[0].name);
    free_exec(k, 1);
    free(body);
    free(pidf);
    free(kidf);
}

static void
test_exec_output_cap(void **state)
{
    struct agent_check k[1];
    struct harness h;
    struct evlist l;
    char buf[64];

    /* 100 KB: well over the 8 KiB kept; the plugin must not block. */
    k[0] = mkexec("chatty", script("chatty", "echo 'CHATTY OK|x=1'\n"
                                             "i=0; while [ $i -lt 1000 ]; do "
                                             "printf '%0100d\\n' 0; "
                                             "i=$((i+1)); done\nexit 0"));
    h_init(&h, k, 1);
    assert_true(h_run(&h, first_done, 5000));
    assert_int_equal(status_of(&h, 0).state, 0);
    assert_string_equal(status_of(&h, 0).message, "CHATTY OK");
    ev_read(&h, &l);
    assert_true(l.n >= 1);
    assert_string_equal(ev_field(&l.ev[0], "perf.x", buf, sizeof(buf)), "1");
    assert_non_null(
        ev_field(&l.ev[0], "output_discarded_bytes", buf, sizeof(buf)));
    assert_true(atoi(buf) > 80000);
    ev_free(&l);
    h_close(&h);
    free_exec(k, 1);
}

/* ---- scheduling -------------------------------------------------- */

static int
five_ran_twice(struct harness *h)
{
    for (size_t i = 0; i < 5; i++)
        if (status_of(h, i).runs < 2)
            return 0;
    return 1;
}

static void
test_concurrency_cap(void **state)
{
    struct agent_check k[5];
    struct harness h;
    char *body, *logf, line[16];
    int cur = 0, max = 0;
    FILE *f;

    logf = tc_xasprintf("%s/conc.log", tu_tmpdir);
    for (int i = 0; i < 5; i++) {
        char *name = tc_xasprintf("slow%d", i);

        /* Each says its own name: five checks share two results. */
        body = tc_xasprintf("echo + >> %s; sleep 0.2; echo - >> %s; "
                            "echo ok from %s",
                            logf, logf, name);
        k[i] = mkexec(name, script(name, body));
        k[i].interval_ms = 150;
        free(body);
    }
    h_init(&h, k, 5);
    h.cfg.check_max_concurrent = 2;
    assert_true(h_run(&h, five_ran_twice, 20000));
    /* Seen from the scheduler and from the plugins themselves. */
    assert_int_equal(h.max_running, 2);
    assert_non_null(f = fopen(logf, "r"));
    while (fgets(line, sizeof(line), f) != NULL) {
        cur += line[0] == '+' ? 1 : -1;
        if (cur > max)
            max = cur;
    }
    fclose(f);
    assert_int_equal(max, 2);
    /*
     * Five 200 ms runs every 150 ms, two at a time: runs fall due while
     * the last one still waits, and are skipped rather than queued
     * twice.
     */
    {
        uint64_t skipped = 0;

        for (size_t i = 0; i < 5; i++)
            skipped += status_of(&h, i).skipped;
        assert_true(skipped > 0);
    }
    for (int i = 0; i < 5; i++) {
        char want[32];

        snprintf(want, sizeof(want), "ok from slow%d", i);
        assert_string_equal(status_of(&h, (size_t)i).message, want);
    }
    h_close(&h);
    for (int i = 0; i < 5; i++)
        free(k[i].name);
    free_exec(k, 5);
    free(logf);
}

/* ---- what is sent ------------------------------------------------ */

static void
set_state(const char *path, int s)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "%d\n", s);
    fclose(f);
}

struct flip {
    const char *statef; /* file the plugin reads its exit status from */
    int phase;          /* 0: OK, 1: CRITICAL, 2: OK again */
    uint64_t at_runs;   /* runs when the phase began */
};

/* 5 runs in each phase: OK, CRITICAL, OK. */
static int
flip_pred(struct harness *h)
{
    struct flip *fl = h->arg;
    uint64_t runs = status_of(h, 0).runs;

    if (runs < fl->at_runs + 5)
        return 0;
    if (fl->phase == 2)
        return 1;
    fl->phase++;
    fl->at_runs = runs;
    set_state(fl->statef, fl->phase == 1 ? 2 : 0);
    return 0;
}

static void
test_send_on_change_only(void **state)
{
    struct agent_check k[1];
    struct tc_conf_kv alab[2] = {{"env", "prod"}, {"service", "web"}};
    struct tc_conf_kv klab[1] = {{"service", "db"}};
    struct harness h;
    struct flip fl = {0};
    struct evlist l;
    char *body, buf[32];

    fl.statef = tc_xasprintf("%s/state.txt", tu_tmpdir);
    set_state(fl.statef, 0);
    body = tc_xasprintf("s=$(cat %s); echo \"state $s\"; exit $s", fl.statef);
    k[0] = mkexec("flip", script("flip", body));
    k[0].interval_ms = 50;
    k[0].labels = klab;
    k[0].nlabels = 1;
    h_init(&h, k, 1);
    h.cfg.labels = alab;
    h.cfg.nlabels = 2;
    h.arg = &fl;
    assert_true(h_run(&h, flip_pred, 20000));
    assert_true(status_of(&h, 0).runs >= 15);
    ev_read(&h, &l);
    /* The first result, OK -> CRITICAL, CRITICAL -> OK: three events. */
    assert_int_equal(l.n, 3);
    assert_int_equal(l.ev[0].state, 0);
    assert_int_equal(l.ev[1].state, 2);
    assert_int_equal(l.ev[2].state, 0);
    assert_true(str_eq(l.ev[1].message, "state 2"));
    assert_int_equal(l.ev[1].sev, TC_SEV_CRITICAL);
    /* Agent labels, then check labels: the check's win. */
    assert_string_equal(ev_label(&l.ev[0], "env", buf, sizeof(buf)), "prod");
    assert_string_equal(ev_label(&l.ev[0], "service", buf, sizeof(buf)), "db");
    assert_int_equal(l.ev[0].nlabels, 2);
    assert_int_equal(status_of(&h, 0).events, 3);
    ev_free(&l);
    h_close(&h);
    free_exec(k, 1);
    free(body);
    free((char *)fl.statef);
}

static int
ran_20(struct harness *h)
{
    return status_of(h, 0).runs >= 20;
}

static void
test_resend(void **state)
{
    struct agent_check k[1];
    struct harness h;
    struct evlist l;
    struct check_status st;

    k[0] = mkexec("steady", script("steady", "echo fine; exit 0"));
    k[0].interval_ms = 50;
    k[0].resend_ms = 300;
    h_init(&h, k, 1);
    assert_true(h_run(&h, ran_20, 20000));
    st = status_of(&h, 0);
    ev_read(&h, &l);
    /*
     * 20+ runs 50 ms apart with no change take over 1 s: the first
     * event and a resend every 300 ms, but not one event per run.
     */
    assert_true(l.n >= 3);
    assert_true(l.n < st.runs / 2);
    assert_int_equal(l.n, st.events);
    for (size_t i = 1; i < l.n; i++) {
        assert_int_equal(l.ev[i].state, 0);
        /* Never sooner than the resend interval. */
        assert_true(l.ev[i].ts - l.ev[i - 1].ts >= 300 * 1000000LL);
    }
    ev_free(&l);
    h_close(&h);
    free_exec(k, 1);
}

/* ---- tcp and http ------------------------------------------------ */

struct server {
    uv_tcp_t tcp;       /* listener */
    int port;           /* its port */
    const char *answer; /* what each client gets */
};

struct sconn {
    uv_tcp_t tcp;
    struct server *srv;
    char buf[4096];
    size_t len;
    uv_write_t w;
};

static void
s_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
s_written(uv_write_t *w, int status)
{
    struct sconn *c = w->data;

    uv_close((uv_handle_t *)&c->tcp, s_closed);
}

static void
s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct sconn *c = h->data;

    b->base = c->buf + c->len;
    b->len = sizeof(c->buf) - c->len - 1;
}

static void
s_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct sconn *c = s->data;
    uv_buf_t out;

    if (n < 0) {
        uv_close((uv_handle_t *)&c->tcp, s_closed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    /* An empty answer: a server that never answers (until EOF). */
    if (strstr(c->buf, "\r\n\r\n") == NULL || c->srv->answer[0] == '\0')
        return;
    /* What the check must send. */
    assert_non_null(strstr(c->buf, "GET /health?x=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(c->buf, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(c->buf, "\r\nHost: 127.0.0.1:"));
    uv_read_stop(s);
    out = uv_buf_init((char *)c->srv->answer, strlen(c->srv->answer));
    c->w.data = c;
    uv_write(&c->w, s, &out, 1, s_written);
}

static void
s_conn(uv_stream_t *l, int status)
{
    struct server *srv = l->data;
    struct sconn *c = tc_xcalloc(1, sizeof(*c));

    c->srv = srv;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    if (srv->answer == NULL) {
        /* A plain TCP listener: accept and hang up. */
        uv_close((uv_handle_t *)&c->tcp, s_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, s_alloc, s_read);
}

static void
server_start(uv_loop_t *loop, struct server *srv, const char *answer)
{
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    srv->answer = answer;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &srv->tcp);
    srv->tcp.data = srv;
    assert_int_equal(uv_tcp_bind(&srv->tcp, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->tcp, 16, s_conn), 0);
    uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &len);
    srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A port nobody listens on (bound a moment ago, then closed). */
static int
closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), port;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    getsockname(s, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    close(s);
    return port;
}

static void
test_tcp(void **state)
{
    struct agent_check k[3];
    struct harness h;
    struct server srv;
    struct evlist l;
    char *a0, *a1, buf[32];

    h_init(&h, k, 0);
    server_start(&h.loop, &srv, NULL);
    a0 = tc_xasprintf("127.0.0.1:%d", srv.port);
    a1 = tc_xasprintf("127.0.0.1:%d", closed_port());
    k[0] = mkcheck("open", AGENT_CHECK_TCP);
    k[0].address = a0;
    k[1] = mkcheck("closed", AGENT_CHECK_TCP);
    k[1].address = a1;
    k[2] = mkcheck("nxdomain", AGENT_CHECK_TCP);
    k[2].address = "no-such-host.invalid:80";
    h.cfg.nchecks = 3;
    h.extra = (uv_handle_t *)&srv.tcp;
    assert_true(h_run(&h, all_ran, 10000));
    assert_int_equal(status_of(&h, 0).state, 0);
    assert_true(
        strncmp(status_of(&h, 0).message, "connected to 127.0.0.1:", 23) == 0);
    assert_non_null(strstr(status_of(&h, 0).message, " ms"));
    assert_int_equal(status_of(&h, 1).state, 2);
    assert_non_null(strstr(status_of(&h, 1).message, "Connection refused"));
    assert_int_equal(status_of(&h, 2).state, 2);
    assert_non_null(strstr(status_of(&h, 2).message, "cannot resolve"));
    ev_read(&h, &l);
    assert_non_null(
        ev_field(ev_find(&l, "open"), "latency_ms", buf, sizeof(buf)));
    ev_free(&l);
    h_close(&h);
    free(a0);
    free(a1);
}

static void
test_http(void **state)
{
    struct agent_check k[4];
    struct harness h;
    struct server srv;
    char *url, *bad;

    h_init(&h, k, 0);
    server_start(&h.loop, &srv,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
    url = tc_xasprintf("http://127.0.0.1:%d/health?x=1", srv.port);
    bad = tc_xasprintf("http://127.0.0.1:%d/health?x=1", closed_port());
    k[0] = mkcheck("good", AGENT_CHECK_HTTP);
    k[0].url = url;
    /* Only after de-chunking is this one string. */
    k[0].expect_body = "hello world";
    k[1] = mkcheck("body", AGENT_CHECK_HTTP);
    k[1].url = url;
    k[1].expect_body = "goodbye";
    k[2] = mkcheck("status", AGENT_CHECK_HTTP);
    k[2].url = url;
    k[2].expect_status = 204;
    k[3] = mkcheck("refused", AGENT_CHECK_HTTP);
    k[3].url = bad;
    h.cfg.nchecks = 4;
    h.extra = (uv_handle_t *)&srv.tcp;
    assert_true(h_run(&h, all_ran, 10000));
    assert_int_equal(status_of(&h, 0).state, 0);
    assert_true(strncmp(status_of(&h, 0).message, "HTTP 200 in ", 12) == 0);
    assert_int_equal(status_of(&h, 1).state, 2);
    assert_non_null(strstr(status_of(&h, 1).message,
                           "the body does not contain 'goodbye'"));
    assert_int_equal(status_of(&h, 2).state, 2);
    assert_true(
        strncmp(status_of(&h, 2).message, "HTTP 200 (expected 204)", 23) == 0);
    assert_int_equal(status_of(&h, 3).state, 2);
    assert_non_null(strstr(status_of(&h, 3).message, "refused"));
    h_close(&h);
    free(url);
    free(bad);
}

/* A listener that never answers: the http check times out. */
static void
test_http_timeout(void **state)
{
    struct agent_check k[1];
    struct harness h;
    struct server srv;
    char *url;

    h_init(&h, k, 0);
    /* An answer that never comes: s_read waits for a request end. */
    server_start(&h.loop, &srv, "");
    url = tc_xasprintf("http://127.0.0.1:%d/slow", srv.port);
    k[0] = mkcheck(quick_name("slow", 60000), AGENT_CHECK_HTTP);
    k[0].url = url;
    k[0].timeout_ms = 200;
    k[0].interval_ms = 60000;
    h.cfg.nchecks = 1;
    h.extra = (uv_handle_t *)&srv.tcp;
    assert_true(h_run(&h, first_done, 5000));
    assert_int_equal(status_of(&h, 0).state, 2);
    assert_int_equal(status_of(&h, 0).timeouts, 1);
    assert_true(
        strncmp(status_of(&h, 0).message, "timed out after 200ms (", 23) == 0);
    h_close(&h);
    free(k[0].name);
    free(url);
}

/* ---- disk, process, file_age -------------------------------------- */

static void
test_local(void **state)
{
    struct agent_check k[8];
    struct harness h;
    struct evlist l;
    struct utimbuf old;
    char comm[64], buf[32], *fresh, *stale, *gone;
    FILE *f;
    size_t n;

    assert_non_null(f = fopen("/proc/self/comm", "r"));
    assert_non_null(fgets(comm, sizeof(comm), f));
    fclose(f);
    n = strlen(comm);
    if (n > 0 && comm[n - 1] == '\n')
        comm[n - 1] = '\0';
    fresh = tc_xasprintf("%s/fresh", tu_tmpdir);
    stale = tc_xasprintf("%s/stale", tu_tmpdir);
    gone = tc_xasprintf("%s/gone", tu_tmpdir);
    fclose(fopen(fresh, "w"));
    fclose(fopen(stale, "w"));
    old.actime = old.modtime = time(NULL) - 3600;
    assert_int_equal(utime(stale, &old), 0);

    k[0] = mkcheck("disk-ok", AGENT_CHECK_DISK);
    k[0].path = "/";
    k[0].warning_free_pct = 0;
    k[0].critical_free_pct = 0;
    k[1] = mkcheck("disk-crit", AGENT_CHECK_DISK);
    k[1].path = "/";
    k[1].warning_free_pct = 100;
    k[1].critical_free_pct = 100;
    k[2] = mkcheck("proc-ok", AGENT_CHECK_PROCESS);
    k[2].process = comm;
    k[3] = mkcheck("proc-none", AGENT_CHECK_PROCESS);
    k[3].process = "no-such-proc-x";
    k[4] = mkcheck("proc-few", AGENT_CHECK_PROCESS);
    k[4].process = comm;
    k[4].min_count = 100000;
    k[5] = mkcheck("age-ok", AGENT_CHECK_FILE_AGE);
    k[5].path = fresh;
    k[6] = mkcheck("age-old", AGENT_CHECK_FILE_AGE);
    k[6].path = stale;
    k[6].warning_age_ms = 60000;
    k[6].critical_age_ms = 120000;
    k[7] = mkcheck("age-gone", AGENT_CHECK_FILE_AGE);
    k[7].path = gone;
    h_init(&h, k, 8);
    assert_true(h_run(&h, all_ran, 10000));
    assert_int_equal(status_of(&h, 0).state, 0);
    assert_non_null(strstr(status_of(&h, 0).message, "% free ("));
    assert_non_null(strstr(status_of(&h, 0).message, ") on /"));
    assert_int_equal(status_of(&h, 1).state, 2);
    assert_int_equal(status_of(&h, 2).state, 0);
    assert_non_null(strstr(status_of(&h, 2).message, comm));
    assert_int_equal(status_of(&h, 3).state, 2);
    assert_string_equal(status_of(&h, 3).message,
                        "no process named 'no-such-proc-x'");
    assert_int_equal(status_of(&h, 4).state, 2);
    assert_non_null(strstr(status_of(&h, 4).message, "expected at least"));
    assert_int_equal(status_of(&h, 5).state, 0);
    assert_int_equal(status_of(&h, 6).state, 2);
    assert_non_null(strstr(status_of(&h, 6).message, "1h00m ago"));
    assert_int_equal(status_of(&h, 7).state, 2);
    assert_non_null(strstr(status_of(&h, 7).message, "No such file"));
    ev_read(&h, &l);
    assert_non_null(
        ev_field(ev_find(&l, "disk-ok"), "perf.free_pct", buf, sizeof(buf)));
    assert_non_null(strchr(buf, '%'));
    assert_non_null(
        ev_field(ev_find(&l, "proc-ok"), "perf.count", buf, sizeof(buf)));
    assert_true(atoi(buf) >= 1);
    ev_free(&l);
    h_close(&h);
    free(fresh);
    free(stale);
    free(gone);
}

/* Stopping while a plugin runs kills and reaps it at once. */
static void
test_stop_while_running(void **state)
{
    struct agent_check k[1];
    struct harness h;
    char *pidf, *body;
    int64_t t0;

    pidf = tc_xasprintf("%s/p.pid", tu_tmpdir);
    body = tc_xasprintf("echo $$ > %s; exec sleep 30", pidf);
    k[0] = mkexec("long", script("long", body));
    k[0].interval_ms = 20;
    k[0].timeout_ms = 30000;
    h_init(&h, k, 1);
    t0 = tc_mono_ns();
    /* Stop as soon as it runs (the pid file exists). */
    assert_false(h_run(&h, first_done, 500));
    assert_true(tc_mono_ns() - t0 < 5000000000LL);
    assert_int_equal(status_of(&h, 0).runs, 0);
    assert_int_equal(proc_alive(pidf), 0);
    h_close(&h);
    free_exec(k, 1);
    free(body);
    free(pidf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perfdata_parse),
        cmocka_unit_test(test_splay),
        cmocka_unit_test_setup_teardown(test_exec_states, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout_kills_group, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_exec_output_cap, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency_cap, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_send_on_change_only, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_resend, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_tcp, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_http, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_http_timeout, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_local, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_running, setup,
                                        tu_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
