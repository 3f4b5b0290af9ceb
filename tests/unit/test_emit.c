/*
 * test_emit: events built from rule hits (drop, labels, fingerprints,
 * time captures), fold windows and rate limits driven by a fake clock
 * (read_ts and emit_tick), and the durability of pending counts across
 * a close and reopen of the spool: exact counts, never counted twice.
 */
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
#include "rules.h"
#include "spool.h"
#include "util.h"

#define SEC 1000000000LL

struct fx {
    char dir[64];
    uv_loop_t loop;
    struct agent_config cfg;
    struct agent_rule rules[4];
    struct tc_conf_kv agent_labels[2], input_labels[2], rule_labels[2];
    struct rules *rs;
    struct spool *spool;
    struct emit *e;
    struct emit_source src;
    int64_t t0; /* fake clock origin, ns: an hour from now, so that the
                   real clock in emit_start never closes a window */
};

static char *
xs(const char *s)
{
    return tc_xstrdup(s);
}

static int
setup(void **state)
{
    struct fx *f = tc_xcalloc(1, sizeof(*f));
    struct agent_rule *r = f->rules;
    char err[256];

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_emit.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* Labels: agent env=prod, team=ops; input env=staging, svc=web;
     * rule svc=api. Later wins: env=staging, team=ops, svc=api. */
    f->agent_labels[0] = (struct tc_conf_kv){xs("env"), xs("prod")};
    f->agent_labels[1] = (struct tc_conf_kv){xs("team"), xs("ops")};
    f->input_labels[0] = (struct tc_conf_kv){xs("env"), xs("staging")};
    f->input_labels[1] = (struct tc_conf_kv){xs("svc"), xs("web")};
    f->rule_labels[0] = (struct tc_conf_kv){xs("svc"), xs("api")};
    f->cfg.labels = f->agent_labels;
    f->cfg.nlabels = 2;
    f->cfg.max_line_bytes = 65536;

    r[0].name = xs("noise");
    r[0].match = xs("^DEBUG");
    r[0].action = AGENT_ACTION_DROP;
    r[0].line = 10;
    r[1].name = xs("err");
    r[1].match = xs("^(?<ts>\\S+) ERROR code=(?<code>\\d+) (?<detail>.*)");
    r[1].severity = TC_SEV_ERROR;
    r[1].fingerprint = xs("{rule}:{code}");
    r[1].time_field = xs("ts");
    r[1].time_format = xs("%Y-%m-%dT%H:%M:%S");
    r[1].fold_window_ms = 10000;
    r[1].labels = f->rule_labels;
    r[1].nlabels = 1;
    r[1].line = 11;
    r[2].name = xs("flood");
    r[2].match = xs("^FLOOD (?<n>\\d+)");
    r[2].severity = TC_SEV_WARNING;
    r[2].rate_max = 5;
    r[2].rate_per_ms = 60000;
    r[2].line = 12;
    r[3].name = xs("other");
    r[3].match = xs("^OTHER");
    r[3].severity = TC_SEV_INFO;
    r[3].fingerprint = xs("{host}|{source}|{rule}");
    r[3].line = 13;
    assert_int_equal(
        rules_compile("agent.yaml", r, 4, &f->rs, err, sizeof(err)), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(spool_open(f->dir, 64 << 20, &f->spool), 0);
    f->e = emit_new(&f->loop, &f->cfg, f->spool, "web-01", NULL, NULL);
    assert_int_equal(emit_start(f->e), 0);
    f->src.kind = "log";
    f->src.source = "/var/log/app.log";
    f->src.labels = f->input_labels;
    f->src.nlabels = 2;
    f->t0 = tc_now_ns() + 3600 * SEC;
    *state = f;
    return 0;
}

static void
stop_emit(struct fx *f)
{
    emit_stop(f->e, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    emit_free(f->e);
    f->e = NULL;
}

static void
free_kv(struct tc_conf_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    if (f->e != NULL)
        stop_emit(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    spool_free(f->spool);
    rules_free(f->rs);
    for (int i = 0; i < 4; i++) {
        free(f->rules[i].name);
        free(f->rules[i].match);
        free(f->rules[i].fingerprint);
        free(f->rules[i].time_field);
        free(f->rules[i].time_format);
    }
    free_kv(f->agent_labels, 2);
    free_kv(f->input_labels, 2);
    free_kv(f->rule_labels, 1);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Reopen the spool and a new emit on it, as after a restart. */
static void
restart(struct fx *f)
{
    stop_emit(f);
    spool_free(f->spool);
    assert_int_equal(spool_open(f->dir, 64 << 20, &f->spool), 0);
    f->e = emit_new(&f->loop, &f->cfg, f->spool, "web-01", NULL, NULL);
    assert_int_equal(emit_start(f->e), 0);
}

/* Match one line and hand it to emit (no commit). */
static int
feed(struct fx *f, struct emit_batch *b, const char *line, int64_t ts)
{
    struct rules_hit hit;

    if (rules_match(f->rs, line, strlen(line), &hit) < 0)
        return -1;
    emit_match(f->e, b, &f->src, &hit, line, strlen(line), ts);
    return 0;
}

/* The spooled events, decoded. */
#define MAXEV 64
struct got {
    size_t n;
    char msg[MAXEV][160];
    char rule[MAXEV][32];
    char fp[MAXEV][160];
    char labels[MAXEV][160]; /* "k=v,k=v" in order */
    char fields[MAXEV][160];
    uint32_t count[MAXEV];
    int64_t ts[MAXEV], event_ts[MAXEV];
    enum tc_severity sev[MAXEV];
    uint64_t total; /* sum of counts */
};

static void
kvs(char *out, size_t len, const struct tc_kv *kv, uint32_t n)
{
    size_t o = 0;

    out[0] = '\0';
    for (uint32_t i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%.*s=%.*s", i ? "," : "",
                              (int)kv[i].key.len, kv[i].key.ptr,
                              (int)kv[i].val.len, kv[i].val.ptr);
}

static int
collect(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct got *g = arg;
    struct tc_frame fr;
    struct tc_event ev;
    const char *err = NULL;
    size_t i = g->n;

    tc_frame_init(&fr);
    assert_int_equal(
        tc_event_decode(body, len, &tc_wire_default_limits, &fr, &ev, &err), 0);
    assert_true(i < MAXEV);
    snprintf(g->msg[i], sizeof(g->msg[0]), "%.*s", (int)ev.message.len,
             ev.message.ptr);
    snprintf(g->rule[i], sizeof(g->rule[0]), "%.*s", (int)ev.rule.len,
             ev.rule.ptr);
    snprintf(g->fp[i], sizeof(g->fp[0]), "%.*s", (int)ev.fingerprint.len,
             ev.fingerprint.ptr);
    kvs(g->labels[i], sizeof(g->labels[0]), ev.labels, ev.nlabels);
    kvs(g->fields[i], sizeof(g->fields[0]), ev.fields, ev.nfields);
    g->count[i] = ev.count;
    g->ts[i] = ev.ts;
    g->event_ts[i] = ev.event_ts;
    g->sev[i] = ev.sev;
    g->total += ev.count;
    g->n++;
    tc_frame_close(&fr);
    return 0;
}

static void
got_all(struct fx *f, struct got *g)
{
    memset(g, 0, sizeof(*g));
    assert_true(spool_read_from(f->spool, 1, MAXEV, SIZE_MAX, collect, g) >= 0);
}

static void
test_build_event(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct emit_stats st;
    struct got g;

    emit_batch_init(&b);
    assert_int_equal(feed(f, &b, "DEBUG chatter", f->t0), 0);
    assert_int_equal(
        feed(f, &b, "2024-03-01T12:00:00.250Z ERROR code=503 upstream down",
             f->t0),
        0);
    assert_int_equal(feed(f, &b, "OTHER thing", f->t0), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    emit_batch_close(&b);
    got_all(f, &g);
    /* The DEBUG line is consumed without an event. */
    assert_int_equal(g.n, 2);
    assert_string_equal(g.rule[0], "err");
    assert_string_equal(
        g.msg[0], "2024-03-01T12:00:00.250Z ERROR code=503 upstream down");
    assert_string_equal(g.fp[0], "err:503");
    /* agent → input → rule, later wins, first position kept. */
    assert_string_equal(g.labels[0], "env=staging,team=ops,svc=api");
    /* Fields come in PCRE2's name table order (sorted by name). */
    assert_string_equal(g.fields[0], "code=503,detail=upstream down,"
                                     "ts=2024-03-01T12:00:00.250Z");
    assert_int_equal(g.event_ts[0], 1709294400LL * SEC + 250000000LL);
    assert_int_equal(g.ts[0], f->t0);
    assert_int_equal(g.count[0], 1);
    assert_int_equal(g.sev[0], TC_SEV_ERROR);
    assert_string_equal(g.fp[1], "web-01|/var/log/app.log|other");
    assert_string_equal(g.labels[1], "env=staging,team=ops,svc=web");
    assert_int_equal(g.event_ts[1], 0);
    emit_get_stats(f->e, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.bad_time, 0);
}

static void
test_bad_time(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct emit_stats st;
    struct got g;

    emit_batch_init(&b);
    assert_int_equal(feed(f, &b, "yesterday ERROR code=1 x", f->t0), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    emit_batch_close(&b);
    got_all(f, &g);
    /* Kept, without an event time, and counted. */
    assert_int_equal(g.n, 1);
    assert_int_equal(g.event_ts[0], 0);
    assert_int_equal(g.ts[0], f->t0);
    emit_get_stats(f->e, &st);
    assert_int_equal(st.bad_time, 1);
}

static void
test_parse_time(void **state)
{
    int64_t t, now = 1709294400LL * SEC; /* 2024-03-01T12:00:00Z */
    const char *iso = "%Y-%m-%dT%H:%M:%S";

    assert_int_equal(emit_parse_time("2024-03-01T12:00:00", 19, iso, now, &t),
                     0);
    assert_int_equal(t, 1709294400LL * SEC);
    /* Fractions: milli, micro, nano, more digits than ns are cut. */
    assert_int_equal(emit_parse_time("2024-03-01T12:00:00.5", 21, iso, now, &t),
                     0);
    assert_int_equal(t, 1709294400LL * SEC + 500000000);
    assert_int_equal(
        emit_parse_time("2024-03-01T12:00:00,123456", 26, iso, now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC + 123456000);
    assert_int_equal(
        emit_parse_time("2024-03-01T12:00:00.1234567891", 30, iso, now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC + 123456789);
    /* Zones after %S. */
    assert_int_equal(emit_parse_time("2024-03-01T12:00:00Z", 20, iso, now, &t),
                     0);
    assert_int_equal(t, 1709294400LL * SEC);
    assert_int_equal(
        emit_parse_time("2024-03-01T14:00:00+02:00", 25, iso, now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC);
    assert_int_equal(
        emit_parse_time("2024-03-01T06:30:00.250-0530", 28, iso, now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC + 250000000);
    assert_int_equal(
        emit_parse_time("2024-03-01T13:00:00+01", 22, iso, now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC);
    /* %z in the format itself. */
    assert_int_equal(emit_parse_time("01/Mar/2024:13:00:00 +0100", 26,
                                     "%d/%b/%Y:%H:%M:%S %z", now, &t),
                     0);
    assert_int_equal(t, 1709294400LL * SEC);
    /* No year: now's year; December read in January: last year's. */
    assert_int_equal(
        emit_parse_time("Mar  1 12:00:00", 15, "%b %d %H:%M:%S", now, &t), 0);
    assert_int_equal(t, 1709294400LL * SEC);
    assert_int_equal(emit_parse_time("Dec 31 23:59:59", 15, "%b %d %H:%M:%S",
                                     1704067260LL * SEC /* 2024-01-01 */, &t),
                     0);
    assert_int_equal(t, 1704067199LL * SEC); /* 2023-12-31T23:59:59Z */
    /* Bad input. */
    assert_int_equal(emit_parse_time("2024-13-01T12:00:00", 19, iso, now, &t),
                     -EINVAL);
    assert_int_equal(
        emit_parse_time("2024-03-01T12:00:00 junk", 24, iso, now, &t), -EINVAL);
    assert_int_equal(
        emit_parse_time("2024-03-01T12:00:00+25:00", 25, iso, now, &t),
        -EINVAL);
    assert_int_equal(emit_parse_time("", 0, iso, now, &t), -EINVAL);
    assert_int_equal(emit_parse_time("garbage", 7, iso, now, &t), -EINVAL);
    /* Not NUL-terminated: only len bytes count. */
    assert_int_equal(
        emit_parse_time("2024-03-01T12:00:00ZZZ", 20, iso, now, &t), 0);
}

static void
test_fold(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct emit_stats st;
    struct got g;
    static char line[100][64]; /* valid until the commit, as in tail */

    emit_batch_init(&b);
    /* 100 lines of code 503, 1 ms apart, across two passes. */
    for (int i = 0; i < 100; i++) {
        snprintf(line[i], sizeof(line[i]), "now ERROR code=503 attempt %d", i);
        assert_int_equal(feed(f, &b, line[i], f->t0 + i * 1000000LL), 0);
        if (i == 49)
            assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    }
    /* A different fingerprint is not folded into the first. */
    assert_int_equal(feed(f, &b, "now ERROR code=404 gone", f->t0), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    got_all(f, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.msg[0], "now ERROR code=503 attempt 0");
    assert_string_equal(g.fp[1], "err:404");
    /* Before the window closes nothing more goes out. */
    assert_int_equal(emit_tick(f->e, f->t0 + 9 * SEC), 0);
    assert_int_equal(spool_depth(f->spool), 2);
    /* At its end: one event, count = repeats, the last repeat's data. */
    assert_int_equal(emit_tick(f->e, f->t0 + 10 * SEC + 99000000LL), 1);
    got_all(f, &g);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.count[2], 99);
    assert_string_equal(g.msg[2], "now ERROR code=503 attempt 99");
    assert_string_equal(g.fp[2], "err:503");
    assert_int_equal(g.ts[2], f->t0 + 99000000LL);
    assert_int_equal(g.total, 101);
    /* The 404 window had no repeat: it closes without an event. */
    assert_int_equal(emit_tick(f->e, f->t0 + 20 * SEC), 0);
    assert_int_equal(emit_pending(f->e), 0);
    assert_int_equal(spool_depth(f->spool), 3);
    emit_get_stats(f->e, &st);
    assert_int_equal(st.folded, 99);
    assert_int_equal(st.events, 3);
    /* After the window the next line goes out at once again. */
    assert_int_equal(feed(f, &b, "now ERROR code=503 again", f->t0 + 30 * SEC),
                     0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(spool_depth(f->spool), 4);
    emit_batch_close(&b);
}

static void
test_fold_closed_inline(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct got g;

    /* A line after the window's end, before the timer ran: the folded
     * event goes first, then the line opens a new window. */
    emit_batch_init(&b);
    assert_int_equal(feed(f, &b, "x ERROR code=1 a", f->t0), 0);
    assert_int_equal(feed(f, &b, "x ERROR code=1 b", f->t0 + SEC), 0);
    assert_int_equal(feed(f, &b, "x ERROR code=1 c", f->t0 + 2 * SEC), 0);
    assert_int_equal(feed(f, &b, "x ERROR code=1 d", f->t0 + 11 * SEC), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    got_all(f, &g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.msg[0], "x ERROR code=1 a");
    assert_string_equal(g.msg[1], "x ERROR code=1 c");
    assert_int_equal(g.count[1], 2);
    assert_string_equal(g.msg[2], "x ERROR code=1 d");
    assert_int_equal(g.count[2], 1);
    emit_batch_close(&b);
}

static void
test_rate(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct emit_stats st;
    struct got g;
    static char line[20][64];

    emit_batch_init(&b);
    for (int i = 0; i < 20; i++) {
        snprintf(line[i], sizeof(line[i]), "FLOOD %d", i);
        assert_int_equal(feed(f, &b, line[i], f->t0 + i * SEC), 0);
        if (i % 7 == 0)
            assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    }
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(spool_depth(f->spool), 5);
    assert_int_equal(emit_tick(f->e, f->t0 + 59 * SEC), 0);
    assert_int_equal(emit_tick(f->e, f->t0 + 60 * SEC), 1);
    got_all(f, &g);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.msg[4], "FLOOD 4");
    assert_string_equal(g.rule[5], "flood");
    assert_int_equal(g.sev[5], TC_SEV_WARNING);
    assert_int_equal(g.count[5], 15);
    assert_string_equal(g.msg[5], "rate limit: 15 events suppressed in the "
                                  "last 1m (rule flood)");
    assert_string_equal(g.labels[5], "env=staging,team=ops,svc=web");
    assert_int_equal(g.total, 20);
    emit_get_stats(f->e, &st);
    assert_int_equal(st.suppressed, 15);
    /* A new period lets events through again. */
    assert_int_equal(feed(f, &b, "FLOOD 99", f->t0 + 61 * SEC), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(spool_depth(f->spool), 7);
    emit_batch_close(&b);
}

static void
test_fold_durable(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct spool_file pos = {1, 2, 3, 4, 0};
    struct got g;
    static char line[51][64];

    emit_batch_init(&b);
    for (int i = 0; i < 51; i++) {
        snprintf(line[i], sizeof(line[i]), "t ERROR code=7 n%d", i);
        assert_int_equal(feed(f, &b, line[i], f->t0 + i * 1000LL), 0);
    }
    pos.offset = 1234;
    assert_int_equal(
        emit_commit(f->e, &b, "/var/log/app.log", &pos, NULL, NULL), 0);
    /* Rate state too: 7 lines, 2 suppressed. */
    for (int i = 0; i < 7; i++) {
        snprintf(line[i], sizeof(line[i]), "FLOOD %d", i);
        assert_int_equal(feed(f, &b, line[i], f->t0), 0);
    }
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, NULL, NULL), 0);
    emit_batch_close(&b);
    assert_int_equal(spool_depth(f->spool), 6);

    /* Restart: the window is still open (due in the future). */
    restart(f);
    assert_int_equal(emit_pending(f->e), 2);
    assert_int_equal(spool_depth(f->spool), 6);
    assert_int_equal(emit_tick(f->e, f->t0 + 10 * SEC + 50000LL), 1);
    got_all(f, &g);
    assert_int_equal(g.n, 7);
    assert_int_equal(g.count[6], 50);
    assert_string_equal(g.msg[6], "t ERROR code=7 n50");
    assert_int_equal(emit_tick(f->e, f->t0 + 60 * SEC), 1);
    got_all(f, &g);
    assert_int_equal(g.n, 8);
    assert_int_equal(g.count[7], 2);
    assert_int_equal(g.total, 51 + 7);

    /* Closed for good: another restart flushes nothing twice. */
    restart(f);
    assert_int_equal(emit_pending(f->e), 0);
    assert_int_equal(emit_tick(f->e, f->t0 + 3600 * SEC), 0);
    assert_int_equal(spool_depth(f->spool), 8);
    assert_int_equal(spool_file_get(f->spool, "/var/log/app.log", &pos), 0);
    assert_int_equal(pos.offset, 1234);
}

static void
test_flushed_at_start(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    struct got g;

    /* Windows that closed while the agent was down go out at start:
     * times an hour in the past, so emit_start's real clock is past
     * their end. */
    int64_t past = tc_now_ns() - 3600 * SEC;

    emit_batch_init(&b);
    assert_int_equal(feed(f, &b, "p ERROR code=9 a", past), 0);
    assert_int_equal(feed(f, &b, "p ERROR code=9 b", past + 1), 0);
    assert_int_equal(feed(f, &b, "p ERROR code=9 c", past + 2), 0);
    assert_int_equal(emit_commit(f->e, &b, NULL, NULL, "journal:j", "c=1"), 0);
    emit_batch_close(&b);
    assert_int_equal(spool_depth(f->spool), 1);
    restart(f);
    assert_int_equal(emit_pending(f->e), 0);
    got_all(f, &g);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.count[1], 2);
    assert_string_equal(g.msg[1], "p ERROR code=9 c");
    restart(f);
    assert_int_equal(spool_depth(f->spool), 2);
}

static void
test_cursor_commit(void **state)
{
    struct fx *f = *state;
    struct emit_batch b;
    char *c = NULL;

    assert_int_equal(emit_cursor_get(f->e, "journal:sys", &c), -ENOENT);
    emit_batch_init(&b);
    assert_int_equal(feed(f, &b, "OTHER a", f->t0), 0);
    assert_int_equal(
        emit_commit(f->e, &b, NULL, NULL, "journal:sys", "s=abc;i=1"), 0);
    assert_int_equal(
        emit_commit(f->e, &b, NULL, NULL, "journal:sys", "s=abc;i=2"), 0);
    emit_batch_close(&b);
    restart(f);
    assert_int_equal(emit_cursor_get(f->e, "journal:sys", &c), 0);
    assert_string_equal(c, "s=abc;i=2");
    free(c);
    assert_int_equal(spool_depth(f->spool), 1);
}

static void
test_preview(void **state)
{
    struct fx *f = *state;
    struct rules_hit hit;
    struct tc_buf out;
    const char *l = "2024-03-01T12:00:00Z ERROR code=5 \"quoted\"";

    tc_buf_init(&out, 1 << 20);
    assert_int_equal(rules_match(f->rs, l, strlen(l), &hit), 1);
    assert_int_equal(
        emit_preview(f->e, &f->src, &hit, l, strlen(l), f->t0, &out), 1);
    assert_int_equal(tc_buf_append(&out, "", 1), 0);
    assert_non_null(
        strstr((const char *)tc_buf_head(&out), "\"fingerprint\":\"err:5\""));
    assert_non_null(strstr((const char *)tc_buf_head(&out),
                           "\"event_ts_iso\":\"2024-03-01T12:00:00."
                           "000000000Z\""));
    assert_non_null(strstr((const char *)tc_buf_head(&out),
                           "\"message\":\"2024-03-01T12:00:00Z ERROR code=5 "
                           "\\\"quoted\\\"\""));
    tc_buf_reset(&out);
    assert_int_equal(rules_match(f->rs, "DEBUG x", 7, &hit), 0);
    assert_int_equal(
        emit_preview(f->e, &f->src, &hit, "DEBUG x", 7, f->t0, &out), 0);
    tc_buf_close(&out);
    /* Preview never touches the spool. */
    assert_int_equal(spool_depth(f->spool), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_time, setup, teardown),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test_setup_teardown(test_fold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_closed_inline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flushed_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preview, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
