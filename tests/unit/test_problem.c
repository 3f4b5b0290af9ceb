/*
 * test_problem: the problem engine (collector/engine/problem.c) driven
 * as the step drives it, beside a real incident engine: events (and
 * their evidence), the incident drain into the problem engine, problem
 * actions, ticks. Linked with engine_dep and cmocka only, like
 * test_engine, so the engine stays pure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/problem.h"
#include "engine_fixture.h"
#include "util.h"

#define MAXP 32
#define MAXI 128

/* What problem drains produced, kept for assertions. */
struct pout {
    int seen[MAXP];
    enum problem_state state[MAXP];
    char rule[MAXP][32];
    char root_host[MAXP][64];
    int64_t root_inc[MAXP];
    char root_cause[MAXP][64];
    char why1[MAXP][64];
    size_t nfactors[MAXP];
    int ncand[MAXP];
    char cand[MAXP][4][64];  /* "host incident score" */
    char cand_ev[MAXP][512]; /* the top candidate's evidence */
    struct problem_mark mark[MAXI];
    int nlinks;
    char log[65536];
    size_t loglen;
};

/* The persisted rows (the store's tables, in memory) for load tests. */
struct rows {
    struct incident inc[MAXI]; /* strings owned */
    int has_inc[MAXI];
    struct problem prob[MAXP]; /* strings owned */
    int has_prob[MAXP];
    struct problem_mark mark[MAXI];
    struct problem_ref refs[256]; /* strings owned */
    int nrefs;
    struct problem_opening opens[256]; /* cls owned */
    int nopens;
    int64_t last_inc, last_prob;
};

struct world {
    struct incident_engine *ie;
    struct problem_engine *pe;
    struct pout o;
    struct rows *rows; /* NULL: not persisting */
};

static void pf(struct pout *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pf(struct pout *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->log + o->loglen, sizeof(o->log) - o->loglen, fmt, ap);
    va_end(ap);
    if (n > 0 && o->loglen + (size_t)n < sizeof(o->log))
        o->loglen += (size_t)n;
}

static void
copy_problem(struct problem *dst, const struct problem *src)
{
    *dst = *src;
    dst->rule = tc_xstrdup(src->rule);
    dst->key = tc_xstrdup(src->key);
    dst->title = tc_xstrdup(src->title);
    dst->root_host = tc_xstrdup(src->root_host);
    dst->root_cause = tc_xstrdup(src->root_cause);
    dst->workaround = tc_xstrdup(src->workaround);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        dst->whys[i] = tc_xstrdup(src->whys[i]);
    dst->factors = NULL;
    if (src->nfactors) {
        dst->factors = tc_xcalloc(src->nfactors, sizeof(*dst->factors));
        for (size_t i = 0; i < src->nfactors; i++) {
            dst->factors[i].category = src->factors[i].category;
            dst->factors[i].text = tc_xstrdup(src->factors[i].text);
        }
    }
}

static void
free_problem(struct problem *p)
{
    free(p->rule);
    free(p->key);
    free(p->title);
    free(p->root_host);
    free(p->root_cause);
    free(p->workaround);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        free(p->whys[i]);
    for (size_t i = 0; i < p->nfactors; i++)
        free(p->factors[i].text);
    free(p->factors);
}

static void
free_incident(struct incident *in)
{
    free(in->fingerprint);
    free(in->host);
    free(in->rule);
    free(in->kind);
    free(in->service);
}

static void
rows_free(struct rows *r)
{
    for (int i = 0; i < MAXI; i++)
        if (r->has_inc[i])
            free_incident(&r->inc[i]);
    for (int i = 0; i < MAXP; i++)
        if (r->has_prob[i])
            free_problem(&r->prob[i]);
    for (int i = 0; i < r->nrefs; i++) {
        free((char *)r->refs[i].host);
        free((char *)r->refs[i].field);
        free((char *)r->refs[i].value);
    }
    for (int i = 0; i < r->nopens; i++)
        free((char *)r->opens[i].cls);
    free(r);
}

/* ---- the problem sink ---------------------------------------------- */

static int
on_problem(void *arg, const struct problem *p)
{
    struct world *w = arg;
    struct pout *o = &w->o;

    assert_true(p->id > 0 && p->id < MAXP);
    o->seen[p->id] = 1;
    o->state[p->id] = p->state;
    snprintf(o->rule[p->id], sizeof(o->rule[0]), "%s", p->rule);
    snprintf(o->root_host[p->id], sizeof(o->root_host[0]), "%s", p->root_host);
    o->root_inc[p->id] = p->root_incident;
    snprintf(o->root_cause[p->id], sizeof(o->root_cause[0]), "%s",
             p->root_cause);
    snprintf(o->why1[p->id], sizeof(o->why1[0]), "%s", p->whys[0]);
    o->nfactors[p->id] = p->nfactors;
    pf(o, "P %lld %s %s key=%s root=%s/%lld q=%lld \"%s\"\n", (long long)p->id,
       problem_state_name(p->state), p->rule, p->key, p->root_host,
       (long long)p->root_incident, (long long)p->quiet_since, p->title);
    if (w->rows) {
        if (w->rows->has_prob[p->id])
            free_problem(&w->rows->prob[p->id]);
        copy_problem(&w->rows->prob[p->id], p);
        w->rows->has_prob[p->id] = 1;
        if (p->id > w->rows->last_prob)
            w->rows->last_prob = p->id;
    }
    return 0;
}

static int
on_link(void *arg, const struct problem_link *l)
{
    struct world *w = arg;

    w->o.nlinks++;
    pf(&w->o, "L %lld %s %lld %s [%s]\n", (long long)l->incident_id,
       l->removed ? "-" : "+", (long long)l->problem_id, l->rule, l->fields);
    return 0;
}

static int
on_cands(void *arg, int64_t pid, const struct problem_candidate *c, size_t n)
{
    struct world *w = arg;

    w->o.ncand[pid] = (int)n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].rank, (int)i + 1);
        if (i < 4)
            snprintf(w->o.cand[pid][i], sizeof(w->o.cand[0][0]), "%s %lld %lld",
                     c[i].host, (long long)c[i].incident_id,
                     (long long)c[i].score);
        if (i == 0)
            snprintf(w->o.cand_ev[pid], sizeof(w->o.cand_ev[0]), "%s",
                     c[i].evidence);
        pf(&w->o, "C %lld #%d %s %lld %lld {%s}\n", (long long)pid, c[i].rank,
           c[i].host, (long long)c[i].incident_id, (long long)c[i].score,
           c[i].evidence);
    }
    return 0;
}

static int
on_mark(void *arg, const struct problem_mark *m)
{
    struct world *w = arg;

    assert_true(m->incident_id > 0 && m->incident_id < MAXI);
    w->o.mark[m->incident_id] = *m;
    if (w->rows)
        w->rows->mark[m->incident_id] = *m;
    pf(&w->o, "M %lld p=%lld inh=%d man=%d\n", (long long)m->incident_id,
       (long long)m->problem_id, m->inhibited, m->manual);
    return 0;
}

static int
on_ref(void *arg, const struct problem_ref *r)
{
    struct world *w = arg;

    pf(&w->o, "R %lld %s %s=%s\n", (long long)r->incident_id, r->host, r->field,
       r->value);
    if (w->rows && w->rows->nrefs < 256) {
        struct problem_ref *d = &w->rows->refs[w->rows->nrefs++];

        *d = *r;
        d->host = tc_xstrdup(r->host);
        d->field = tc_xstrdup(r->field);
        d->value = tc_xstrdup(r->value);
    }
    return 0;
}

static int
on_opening(void *arg, const struct problem_opening *op)
{
    struct world *w = arg;

    pf(&w->o, "O %s %lld %lld\n", op->cls, (long long)op->incident_id,
       (long long)op->ts);
    if (w->rows && w->rows->nopens < 256) {
        struct problem_opening *d = &w->rows->opens[w->rows->nopens++];

        *d = *op;
        d->cls = tc_xstrdup(op->cls);
    }
    return 0;
}

static int
on_pnote(void *arg, const struct problem_note *n)
{
    struct world *w = arg;

    pf(&w->o, "N %lld %lld %s %s %s\n", (long long)n->problem_id,
       (long long)n->ts, n->what, n->who, n->detail);
    return 0;
}

static const struct problem_sink psink = {
    on_problem, on_link, on_cands, on_mark, on_ref, on_opening, on_pnote};

/* ---- the step --------------------------------------------------------- */

static int
inc_to_problem(void *arg, const struct incident *in)
{
    struct world *w = arg;

    problem_engine_incident(w->pe, in);
    if (w->rows) {
        assert_true(in->id < MAXI);
        if (w->rows->has_inc[in->id])
            free_incident(&w->rows->inc[in->id]);
        w->rows->inc[in->id] = *in;
        w->rows->inc[in->id].fingerprint = tc_xstrdup(in->fingerprint);
        w->rows->inc[in->id].host = tc_xstrdup(in->host);
        w->rows->inc[in->id].rule = tc_xstrdup(in->rule);
        w->rows->inc[in->id].kind = tc_xstrdup(in->kind);
        w->rows->inc[in->id].service = tc_xstrdup(in->service);
        w->rows->has_inc[in->id] = 1;
        if (in->id > w->rows->last_inc)
            w->rows->last_inc = in->id;
    }
    return 0;
}

static const struct incident_sink isink = {inc_to_problem, NULL, NULL};

static void
world_init(struct world *w, const struct problem_config *pc)
{
    memset(w, 0, sizeof(*w));
    w->ie = incident_engine_new(&cfg);
    w->pe = problem_engine_new(pc);
}

static void
world_close(struct world *w)
{
    incident_engine_free(w->ie);
    problem_engine_free(w->pe);
    if (w->rows)
        rows_free(w->rows);
}

/* One event, as the step feeds it: the incident engine, then evidence. */
static void
feed(struct world *w, const char *host, const struct tc_event *ev)
{
    incident_engine_event(w->ie, host, ev);
    problem_engine_evidence(w->pe, incident_engine_last(w->ie), host, ev);
}

/* A log event of rule on host at t, with captured fields k=v (or none). */
static void
logev(struct world *w, const char *host, const char *rule, enum tc_severity sev,
      int64_t t, const char *k, const char *v)
{
    struct tc_event ev = ev_log(rule, sev, t, 1);
    struct tc_kv kv;

    if (k != NULL) {
        kv.key = tc_str_c(k);
        kv.val = tc_str_c(v);
        ev.fields = &kv;
        ev.nfields = 1;
    }
    feed(w, host, &ev);
}

/* End of a step at now: incident tick and drain, problem tick, drain. */
static void
step(struct world *w, int64_t now)
{
    incident_engine_tick(w->ie, now);
    assert_int_equal(incident_engine_drain(w->ie, &isink, w), 0);
    problem_engine_tick(w->pe, now);
    assert_int_equal(problem_engine_drain(w->pe, &psink, w), 0);
    assert_int_equal(problem_engine_pending(w->pe), 0);
}

static int
act(struct world *w, enum problem_verb v, int64_t pid, int64_t iid,
    const char *key, const char *text, const char *text2, int64_t ts)
{
    struct problem_action a = {ts, "alice", v, pid, iid, key, text, text2};

    return problem_engine_action(w->pe, &a);
}

static void
hosts(struct world *w, const char *const *names)
{
    for (; *names; names++)
        problem_engine_host(w->pe, *names);
}

static const char *const fleet[] = {
    "web-01", "web-02", "web-03", "web-04",   "web-05", "web-06",   "web-07",
    "web-08", "web-09", "web-10", "web-11",   "web-12", "cache-01", "db-1",
    "app-1",  "app-2",  "mail-1", "Batch-01", NULL};

static struct problem_config
defaults(void)
{
    struct problem_config pc;

    problem_config_default(&pc);
    return pc;
}

/* ---- tests ---------------------------------------------------------- */

static void
test_names(void **state)
{
    struct problem_config pc = defaults();
    struct problem_engine *pe = problem_engine_new(&pc);
    const char *h;

    (void)state;
    problem_engine_host(pe, "cache-01");
    problem_engine_host(pe, "Batch-01");
    h = problem_engine_named_host(pe, "cache-01", 8, "web-01");
    assert_non_null(h);
    assert_string_equal(h, "cache-01");
    assert_non_null(problem_engine_named_host(pe, "cache-01:6379", 13, NULL));
    assert_non_null(
        problem_engine_named_host(pe, "CACHE-01.example.net", 20, NULL));
    assert_non_null(problem_engine_named_host(pe, "batch-01", 8, NULL));
    /* Not a port, not a host, not the event's own host, not a prefix. */
    assert_null(problem_engine_named_host(pe, "cache-01:http", 13, NULL));
    assert_null(problem_engine_named_host(pe, "cache-01:123456", 15, NULL));
    assert_null(problem_engine_named_host(pe, "cache-0", 7, NULL));
    assert_null(problem_engine_named_host(pe, "cache-011", 9, NULL));
    assert_null(problem_engine_named_host(pe, "cache-01", 8, "CACHE-01"));
    assert_null(problem_engine_named_host(pe, "x.cache-01", 10, NULL));
    assert_null(problem_engine_named_host(pe, "", 0, NULL));
    assert_string_equal(problem_class("web-01\x1f"
                                      "disk"),
                        "disk");
    problem_engine_free(pe);
}

/* incident_engine_last: which incident the last event went to. */
static void
test_incident_last(void **state)
{
    struct incident_engine *ie = incident_engine_new(&cfg);
    struct tc_event ev = ev_check("disk", 2, T0);

    (void)state;
    /* A soft attempt makes no incident. */
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 0);
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 1);
    ev = ev_log("oom", TC_SEV_ERROR, T0 + SEC, 1);
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 1);
    /* An ignored kind resets it. */
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    ev.kind = tc_str_c("heartbeat");
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 0);
    ev = ev_check("disk", 2, T0 + SEC);
    incident_engine_event(ie, "db-1", &ev);
    ev = ev_check("disk", 2, T0 + 2 * SEC);
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 2);
    ev = ev_check("disk", 0, T0 + 3 * SEC);
    incident_engine_event(ie, "db-1", &ev);
    assert_int_equal(incident_engine_last(ie), 2);
    incident_engine_free(ie);
}

/* Spread: 3 hosts of one class within the window; 2 are not enough. */
static void
test_spread(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    logev(&w, "web-02", "http-5xx", TC_SEV_ERROR, T0 + MIN, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 0);
    /* The same host twice does not count as two. */
    logev(&w, "web-02", "http-5xx", TC_SEV_ERROR, T0 + 2 * MIN, NULL, NULL);
    step(&w, T0 + 2 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 0);
    logev(&w, "web-03", "http-5xx", TC_SEV_ERROR, T0 + 3 * MIN, NULL, NULL);
    step(&w, T0 + 3 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "spread");
    assert_int_equal(w.o.mark[1].problem_id, 1);
    assert_int_equal(w.o.mark[2].problem_id, 1);
    assert_int_equal(w.o.mark[3].problem_id, 1);
    assert_int_equal(w.o.nlinks, 3);
    /* The earliest onset is the root; the others are inhibited. */
    assert_string_equal(w.o.root_host[1], "web-01");
    assert_int_equal(w.o.mark[1].inhibited, 0);
    assert_int_equal(w.o.mark[2].inhibited, 1);
    assert_int_equal(w.o.mark[3].inhibited, 1);
    assert_non_null(strstr(w.o.log, "L 3 + 1 spread [class=http-5xx]"));
    world_close(&w);
}

/* Two unrelated failures in the same minute stay apart; so do three
 * different classes on three hosts. */
static void
test_unrelated_stay_apart(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "db-1", "disk-full", TC_SEV_CRITICAL, T0, NULL, NULL);
    logev(&w, "mail-1", "queue-stuck", TC_SEV_CRITICAL, T0 + SEC, NULL, NULL);
    logev(&w, "app-1", "oom", TC_SEV_CRITICAL, T0 + 2 * SEC, "pid", "1234");
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 0);
    assert_int_equal(w.o.nlinks, 0);
    world_close(&w);
}

/* A failure that creeps over the fleet in an hour stays one problem. */
static void
test_creeping(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    char host[16];

    (void)state;
    world_init(&w, &pc);
    for (int i = 0; i < 12; i++) {
        /* Three within the window, then one every six minutes. */
        int64_t t = i < 3 ? T0 + i * 2 * MIN : T0 + (i - 2) * 6 * MIN + 4 * MIN;

        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "tls-expired", TC_SEV_ERROR, t, NULL, NULL);
        step(&w, t);
    }
    assert_int_equal(problem_engine_size(w.pe), 1);
    for (int i = 1; i <= 12; i++)
        assert_int_equal(w.o.mark[i].problem_id, 1);
    world_close(&w);
}

/* Reference: the twelve web servers and the dead cache. */
/*
 * A cascade: db-1 fails, cache-01 names db-1, the web servers name only
 * cache-01. The end of the chain is the root cause, not its busy
 * middle; every other incident is its symptom, through the chain.
 */
static void
test_reference_cascade(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    char host[16];

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "db-1", "disk-full", TC_SEV_CRITICAL, T0, NULL, NULL);
    logev(&w, "cache-01", "upstream", TC_SEV_ERROR, T0 + 10 * SEC, "peer",
          "db-1:5432");
    step(&w, T0 + 10 * SEC);
    for (int i = 0; i < 4; i++) {
        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "upstream", TC_SEV_ERROR, T0 + (30 + i) * SEC, "peer",
              "cache-01:6379");
    }
    step(&w, T0 + 40 * SEC);
    assert_int_equal(problem_engine_size(w.pe), 1);
    for (int i = 1; i <= 6; i++)
        assert_int_equal(w.o.mark[i].problem_id, 1);
    assert_string_equal(w.o.root_host[1], "db-1");
    assert_int_equal(w.o.root_inc[1], 1);
    /* 30 onset + 25 named + 75 behind (capped at 4 hosts) + 10
     * critical + 5 affected, against cache-01's 4 namers. */
    assert_string_equal(w.o.cand[1][0], "db-1 1 145");
    assert_non_null(strstr(w.o.cand_ev[1],
                           "behind them 4 more hosts name those: via "
                           "cache-01 (+75)"));
    assert_int_equal(w.o.mark[1].inhibited, 0);
    for (int i = 2; i <= 6; i++)
        assert_int_equal(w.o.mark[i].inhibited, 1);
    world_close(&w);
}

/*
 * The same cascade with the middle reporting late: the web servers name
 * cache-01 before it has an incident (a problem keyed on it), then
 * cache-01's incident names db-1. One cause found from both ends: the
 * first problem merges into the second and closes; db-1 is the root.
 */
static void
test_reference_cascade_late_middle(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    char host[16];

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "db-1", "disk-full", TC_SEV_CRITICAL, T0, NULL, NULL);
    step(&w, T0);
    for (int i = 0; i < 4; i++) {
        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "upstream", TC_SEV_ERROR, T0 + (10 + i) * SEC, "peer",
              "cache-01:6379");
    }
    step(&w, T0 + 15 * SEC);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_int_equal(w.o.mark[2].problem_id, 1);
    logev(&w, "cache-01", "upstream", TC_SEV_ERROR, T0 + 20 * SEC, "peer",
          "db-1:5432");
    step(&w, T0 + 20 * SEC);
    assert_int_equal(w.o.state[1], PROBLEM_CLOSED);
    assert_int_equal(w.o.state[2], PROBLEM_OPEN);
    for (int i = 1; i <= 6; i++)
        assert_int_equal(w.o.mark[i].problem_id, 2);
    assert_string_equal(w.o.root_host[2], "db-1");
    assert_non_null(strstr(w.o.log, "merged from problem 1"));
    for (int i = 2; i <= 6; i++)
        assert_int_equal(w.o.mark[i].inhibited, 1);
    world_close(&w);
}

static void
test_reference_dead_cache(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    char host[16];

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    /* One web server naming the cache is no relation yet. */
    logev(&w, "web-01", "cache-unreachable", TC_SEV_ERROR, T0, "upstream",
          "cache-01:6379");
    step(&w, T0);
    assert_int_equal(problem_engine_size(w.pe), 0);
    for (int i = 1; i < 12; i++) {
        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "cache-unreachable", TC_SEV_ERROR, T0 + i * SEC,
              "upstream", i % 2 ? "cache-01.example.net" : "cache-01");
    }
    step(&w, T0 + 12 * SEC);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "reference");
    for (int i = 1; i <= 12; i++)
        assert_int_equal(w.o.mark[i].problem_id, 1);
    /* The silent cache ranks first, with no incident; the earliest web
     * incident stays uninhibited so that someone hears of it. */
    assert_string_equal(w.o.root_host[1], "cache-01");
    assert_int_equal(w.o.root_inc[1], 0);
    assert_string_equal(w.o.cand[1][0], "cache-01 0 110");
    assert_non_null(strstr(w.o.cand_ev[1], "named by 12 other hosts' events"));
    assert_int_equal(w.o.mark[1].inhibited, 0);
    assert_int_equal(w.o.mark[2].inhibited, 1);
    /* Now the cache's own incident opens: it joins and becomes root. */
    logev(&w, "cache-01", "redis-down", TC_SEV_CRITICAL, T0 + 20 * SEC, NULL,
          NULL);
    step(&w, T0 + 20 * SEC);
    assert_int_equal(w.o.mark[13].problem_id, 1);
    assert_int_equal(w.o.root_inc[1], 13);
    assert_int_equal(w.o.mark[13].inhibited, 0);
    assert_int_equal(w.o.mark[1].inhibited, 1);
    assert_non_null(strstr(w.o.log, "L 13 + 1 reference [host=cache-01 "
                                    "named by web-01 upstream=cache-01:6379]"));
    world_close(&w);
}

/* Reference when the named host failed first: it is the root at once. */
static void
test_reference_root_first(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "db-1", "db-down", TC_SEV_CRITICAL, T0, NULL, NULL);
    logev(&w, "app-1", "query-failed", TC_SEV_ERROR, T0 + 30 * SEC, "dsn",
          "db-1:5432");
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "reference");
    assert_int_equal(w.o.root_inc[1], 1);
    assert_int_equal(w.o.mark[2].inhibited, 1);
    assert_int_equal(w.o.mark[1].inhibited, 0);
    /* While the problem is open, a later reference joins it. */
    logev(&w, "app-2", "query-failed", TC_SEV_ERROR, T0 + 20 * MIN, "dsn",
          "db-1.prod.example");
    step(&w, T0 + 20 * MIN);
    assert_int_equal(w.o.mark[3].problem_id, 1);

    /* A long value from a peer is kept cut to a name's length. */
    {
        char big[2048];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        memcpy(big, "db-1.", 5);
        logev(&w, "app-1", "query-failed", TC_SEV_ERROR, T0 + 21 * MIN, "peer",
              big);
        step(&w, T0 + 21 * MIN);
        assert_non_null(strstr(w.o.log, "R 2 db-1 peer=db-1.xxx"));
        big[PROBLEM_MAX_NAME + 1] = '\0';
        assert_null(strstr(w.o.log, big + 5));
    }
    world_close(&w);

    /* Outside the window, with no problem, a reference is no relation. */
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "db-1", "db-down", TC_SEV_CRITICAL, T0, NULL, NULL);
    logev(&w, "app-1", "query-failed", TC_SEV_ERROR, T0 + 11 * MIN, "dsn",
          "db-1:5432");
    step(&w, T0 + 11 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 0);
    world_close(&w);
}

/*
 * Naming another host is evidence for the ranking, not power over that
 * host's notifications: an agent whose events name db-1 (and that
 * fails first, with a higher severity) may rank first, but db-1's own
 * incident is not inhibited, since nothing of db-1's explains it.
 */
static void
test_naming_does_not_inhibit(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "app-1", "disk-full", TC_SEV_CRITICAL, T0, "peer", "db-1");
    step(&w, T0);
    logev(&w, "db-1", "disk-full", TC_SEV_WARNING, T0 + MIN, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "reference");
    assert_int_equal(w.o.mark[2].problem_id, 1);
    assert_string_equal(w.o.root_host[1], "app-1");
    assert_int_equal(w.o.mark[1].inhibited, 0);
    assert_int_equal(w.o.mark[2].inhibited, 0);
    world_close(&w);
}

/* Topology: dependents within the window become symptoms. */
static void
test_topology(void **state)
{
    struct problem_dep deps[] = {{"web-*", "db-1", 0},
                                 {"service:api", "service:queue", 0}};
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    pc.deps = deps;
    pc.ndeps = 2;
    world_init(&w, &pc);
    /* The dependent fails first, then the dependency. */
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    step(&w, T0);
    assert_int_equal(problem_engine_size(w.pe), 0);
    logev(&w, "db-1", "db-down", TC_SEV_CRITICAL, T0 + MIN, NULL, NULL);
    logev(&w, "web-02", "slow", TC_SEV_WARNING, T0 + 2 * MIN, NULL, NULL);
    step(&w, T0 + 2 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "topology");
    assert_int_equal(w.o.mark[1].problem_id, 1);
    assert_int_equal(w.o.mark[2].problem_id, 1);
    assert_int_equal(w.o.mark[3].problem_id, 1);
    /* Upstream of two hosts beats the earlier onset of web-01. */
    assert_int_equal(w.o.root_inc[1], 2);
    assert_non_null(strstr(w.o.cand_ev[1], "upstream in topology of 2 hosts"));
    /* Outside the window: apart. A host no dependency names: apart. */
    logev(&w, "web-03", "http-5xx", TC_SEV_ERROR, T0 + 30 * MIN, NULL, NULL);
    logev(&w, "mail-1", "queue-stuck", TC_SEV_ERROR, T0 + 3 * MIN, NULL, NULL);
    step(&w, T0 + 30 * MIN);
    assert_int_equal(w.o.mark[4].problem_id, 0);
    assert_int_equal(w.o.mark[5].problem_id, 0);
    world_close(&w);
}

/* Topology by service label. */
static void
test_topology_service(void **state)
{
    struct problem_dep deps[] = {{"service:api", "service:queue", 0}};
    struct problem_config pc = defaults();
    struct world w;
    struct tc_event ev;
    struct tc_kv lab;

    (void)state;
    pc.deps = deps;
    pc.ndeps = 1;
    world_init(&w, &pc);
    ev = ev_log("mq-down", TC_SEV_CRITICAL, T0, 1);
    lab.key = tc_str_c("service");
    lab.val = tc_str_c("queue");
    ev.labels = &lab;
    ev.nlabels = 1;
    feed(&w, "mq-7", &ev);
    ev = ev_log("publish-failed", TC_SEV_ERROR, T0 + MIN, 1);
    lab.val = tc_str_c("api");
    ev.labels = &lab;
    ev.nlabels = 1;
    feed(&w, "app-1", &ev);
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "topology");
    assert_int_equal(w.o.root_inc[1], 1);
    world_close(&w);
}

/* Trend: one class opening count incidents within period, one host. */
static void
test_trend(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    for (int i = 0; i < 5; i++) {
        int64_t t = T0 + i * 3 * 60 * MIN;

        logev(&w, "db-1", "disk-full", TC_SEV_WARNING, t, NULL, NULL);
        step(&w, t);
        assert_int_equal(problem_engine_size(w.pe), i < 4 ? 0 : 1);
        /* Quiet: resolves, then closes; the next is a new incident. */
        step(&w, t + 31 * MIN);
        step(&w, t + 92 * MIN);
    }
    assert_string_equal(w.o.rule[1], "trend");
    assert_int_equal(w.o.mark[5].problem_id, 1);
    /* Its incident stayed resolved for resolve_after and closed. */
    assert_int_equal(w.o.state[1], PROBLEM_CLOSED);
    assert_non_null(strstr(w.o.log, "disk-full recurring: 5 openings in 7d"));
    world_close(&w);
}

/* Major: a P1/P2 incident that resolves with no problem gets one. */
static void
test_major(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    logev(&w, "db-1", "corruption", TC_SEV_CRITICAL, T0, NULL, NULL); /* P2 */
    logev(&w, "db-1", "slow-query", TC_SEV_WARNING, T0, NULL, NULL);  /* P4 */
    step(&w, T0);
    assert_int_equal(problem_engine_size(w.pe), 0);
    step(&w, T0 + 31 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "major");
    assert_int_equal(w.o.mark[1].problem_id, 1);
    assert_int_equal(w.o.mark[2].problem_id, 0);
    world_close(&w);

    /* Opened and resolved within one step: handed over resolved, once;
     * still an opening and an end. */
    world_init(&w, &pc);
    logev(&w, "db-1", "corruption", TC_SEV_CRITICAL, T0, NULL, NULL);
    step(&w, T0 + 31 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 1);
    assert_string_equal(w.o.rule[1], "major");
    assert_non_null(strstr(w.o.log, "O corruption 1 "));
    /* Off: nothing. */
    world_close(&w);
    pc.major = 0;
    world_init(&w, &pc);
    logev(&w, "db-1", "corruption", TC_SEV_CRITICAL, T0, NULL, NULL);
    step(&w, T0);
    step(&w, T0 + 31 * MIN);
    assert_int_equal(problem_engine_size(w.pe), 0);
    world_close(&w);
}

/* The post-incident review of a major incident, on the problem it
 * handed over to: fields replace, action items append, refusals. */
static void
test_major_review(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    const struct problem *p;
    int64_t t = T0 + 40 * MIN;

    (void)state;
    world_init(&w, &pc);
    logev(&w, "db-1", "corruption", TC_SEV_CRITICAL, T0, NULL, NULL); /* P2 */
    logev(&w, "db-1", "slow-query", TC_SEV_WARNING, T0, NULL, NULL);  /* P4 */
    step(&w, T0);
    step(&w, T0 + 31 * MIN);
    assert_string_equal(w.o.rule[1], "major");
    assert_int_equal(
        act(&w, PROBLEM_V_REVIEW, 1, 1, "summary", "disk lied", NULL, t), 0);
    assert_int_equal(
        act(&w, PROBLEM_V_REVIEW, 1, 1, "impact", "30m of 5xx", NULL, t), 0);
    assert_int_equal(
        act(&w, PROBLEM_V_REVIEW, 1, 1, "summary", "firmware bug", NULL, t), 0);
    assert_int_equal(
        act(&w, PROBLEM_V_REVIEW, 1, 1, "action", "upgrade fw", NULL, t), 0);
    assert_int_equal(
        act(&w, PROBLEM_V_REVIEW, 1, 1, "action", "add scrub", NULL, t), 0);
    /* Not linked to this problem, unknown field, no text. */
    assert_int_equal(act(&w, PROBLEM_V_REVIEW, 1, 2, "summary", "x", NULL, t),
                     -ENOENT);
    assert_int_equal(act(&w, PROBLEM_V_REVIEW, 1, 1, "blame", "x", NULL, t),
                     -EINVAL);
    assert_int_equal(act(&w, PROBLEM_V_REVIEW, 1, 1, "summary", "", NULL, t),
                     -EINVAL);
    step(&w, t);
    p = problem_engine_get(w.pe, 1);
    assert_non_null(p);
    assert_int_equal(p->nreviews, 4);
    assert_string_equal(p->reviews[0].field, "summary");
    assert_string_equal(p->reviews[0].text, "firmware bug");
    assert_int_equal(p->reviews[0].incident_id, 1);
    assert_string_equal(p->reviews[1].field, "impact");
    assert_string_equal(p->reviews[2].text, "upgrade fw");
    assert_string_equal(p->reviews[3].text, "add scrub");
    assert_int_equal(problem_review_field_ok("lessons"), 1);
    assert_int_equal(problem_review_field_ok("why1"), 0);
    assert_int_equal(problem_review_field_ok(NULL), 0);
    world_close(&w);
}

/* Ranking order, scores, evidence and tie-breaks. */
static void
test_ranking(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    /* Same onset and severity: host name breaks the tie. */
    logev(&w, "web-03", "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    logev(&w, "web-02", "http-5xx", TC_SEV_CRITICAL, T0 + SEC, NULL, NULL);
    step(&w, T0 + SEC);
    assert_int_equal(w.o.ncand[1], 3);
    /* 30 onset + 6 error = 36 beats 10 critical alone. */
    assert_string_equal(w.o.cand[1][0], "web-01 2 36");
    assert_string_equal(w.o.cand[1][1], "web-03 1 36");
    assert_string_equal(w.o.cand[1][2], "web-02 3 10");
    assert_string_equal(w.o.cand_ev[1],
                        "earliest onset (+30); severity error (+6)");
    world_close(&w);
}

/* Lifecycle transitions, refusals, RCA, auto resolve and close. */
static void
test_lifecycle(void **state)
{
    struct problem_config pc = defaults();
    struct world w;
    const struct problem *p;
    int64_t t = T0 + 5 * MIN;

    (void)state;
    pc.resolve_after_ns = 30 * MIN;
    world_init(&w, &pc);
    for (int i = 0; i < 3; i++) {
        char host[16];

        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "http-5xx", TC_SEV_ERROR, T0 + i * SEC, NULL, NULL);
    }
    logev(&w, "db-1", "other", TC_SEV_ERROR, T0, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(act(&w, PROBLEM_V_INVESTIGATE, 9, 0, NULL, NULL, NULL, t),
                     -ENOENT);
    assert_int_equal(act(&w, PROBLEM_V_INVESTIGATE, 1, 0, NULL, NULL, NULL, t),
                     0);
    assert_int_equal(act(&w, PROBLEM_V_INVESTIGATE, 1, 0, NULL, NULL, NULL, t),
                     -EALREADY);
    assert_int_equal(act(&w, PROBLEM_V_KNOWN_ERROR, 1, 0, NULL, "", NULL, t),
                     -EINVAL);
    assert_int_equal(act(&w, PROBLEM_V_KNOWN_ERROR, 1, 0, NULL, "bad cert",
                         "restart nginx", t),
                     0);
    assert_int_equal(
        act(&w, PROBLEM_V_RCA, 1, 0, "why1", "cert expired", NULL, t), 0);
    assert_int_equal(
        act(&w, PROBLEM_V_RCA, 1, 0, "technology", "no expiry check", NULL, t),
        0);
    assert_int_equal(act(&w, PROBLEM_V_RCA, 1, 0, "why6", "x", NULL, t),
                     -EINVAL);
    assert_int_equal(act(&w, PROBLEM_V_RCA, 1, 0, "luck", "x", NULL, t),
                     -EINVAL);
    assert_int_equal(act(&w, PROBLEM_V_NOTE, 1, 0, NULL, "", NULL, t), -EINVAL);
    assert_int_equal(act(&w, PROBLEM_V_NOTE, 1, 0, NULL, "looking", NULL, t),
                     0);
    /* Closing with active incidents is refused. */
    assert_int_equal(act(&w, PROBLEM_V_CLOSE, 1, 0, NULL, NULL, NULL, t),
                     -EBUSY);
    /* Link: unknown incident, already linked, then a real one. */
    assert_int_equal(act(&w, PROBLEM_V_LINK, 1, 99, NULL, NULL, NULL, t),
                     -ENOENT);
    assert_int_equal(act(&w, PROBLEM_V_LINK, 1, 1, NULL, NULL, NULL, t),
                     -EALREADY);
    assert_int_equal(
        act(&w, PROBLEM_V_LINK, 1, 4, NULL, "same deploy", NULL, t), 0);
    assert_int_equal(act(&w, PROBLEM_V_UNLINK, 1, 4, NULL, NULL, NULL, t), 0);
    assert_int_equal(act(&w, PROBLEM_V_UNLINK, 1, 4, NULL, NULL, NULL, t),
                     -ENOENT);
    step(&w, t);
    assert_int_equal(w.o.state[1], PROBLEM_KNOWN_ERROR);
    assert_string_equal(w.o.root_cause[1], "bad cert");
    assert_string_equal(w.o.why1[1], "cert expired");
    assert_int_equal(w.o.nfactors[1], 1);
    assert_int_equal(w.o.mark[4].problem_id, 0);
    assert_int_equal(w.o.mark[4].manual, 1);
    /* Incidents resolve at +31m (30m quiet); the problem 30m later. */
    step(&w, T0 + 31 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_KNOWN_ERROR);
    step(&w, T0 + 60 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_KNOWN_ERROR);
    /* A member recurring holds it open... */
    logev(&w, "web-02", "http-5xx", TC_SEV_ERROR, T0 + 61 * MIN, NULL, NULL);
    step(&w, T0 + 61 * MIN);
    step(&w, T0 + 92 * MIN);
    step(&w, T0 + 121 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_KNOWN_ERROR);
    /* ... until everything stayed resolved for resolve_after. */
    step(&w, T0 + 122 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_RESOLVED);
    assert_int_equal(w.o.mark[2].inhibited, 0);
    assert_int_equal(w.o.mark[3].inhibited, 0);
    assert_int_equal(act(&w, PROBLEM_V_RESOLVE, 1, 0, NULL, NULL, NULL, t),
                     -EALREADY);
    /* Its last incident closes (reopen_window): then the problem. */
    step(&w, T0 + 151 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_RESOLVED);
    step(&w, T0 + 153 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_CLOSED);
    assert_int_equal(problem_engine_size(w.pe), 0);
    p = problem_engine_get(w.pe, 1);
    assert_null(p);
    world_close(&w);
}

/* A resolved problem reopens when one of its incidents does. */
static void
test_reopen_and_user_resolve(void **state)
{
    struct problem_config pc = defaults();
    struct world w;

    (void)state;
    world_init(&w, &pc);
    for (int i = 0; i < 3; i++) {
        char host[16];

        snprintf(host, sizeof(host), "web-%02d", i + 1);
        logev(&w, host, "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    }
    step(&w, T0);
    assert_int_equal(act(&w, PROBLEM_V_RESOLVE, 1, 0, NULL, "fixed", NULL, T0),
                     0);
    step(&w, T0 + SEC);
    assert_int_equal(w.o.state[1], PROBLEM_RESOLVED);
    /* Resolved problems inhibit nothing. */
    assert_int_equal(w.o.mark[2].inhibited, 0);
    step(&w, T0 + 31 * MIN);
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0 + 40 * MIN, NULL, NULL);
    step(&w, T0 + 40 * MIN);
    assert_int_equal(w.o.state[1], PROBLEM_OPEN);
    assert_non_null(strstr(w.o.log, "reopened rule:incident"));
    world_close(&w);
}

static const struct problem_dep scen_deps[] = {{"Batch-*", "db-1", 0}};

/* The scenario's rules: the defaults, a topology, a quicker trend. */
static struct problem_config
scen_cfg(void)
{
    struct problem_config pc = defaults();

    pc.deps = scen_deps;
    pc.ndeps = 1;
    pc.trend_count = 3;
    return pc;
}

/* The scenario used for determinism and restart: every rule. */
static void
scenario(struct world *w, int from, int to,
         void (*between)(struct world *w, int i))
{
    for (int i = from; i < to; i++) {
        int64_t t = T0 + i * 2 * MIN;
        char host[16];

        if (between)
            between(w, i);
        snprintf(host, sizeof(host), "web-%02d", i % 12 + 1);
        logev(w, host, "cache-unreachable", TC_SEV_ERROR, t, "upstream",
              "cache-01:6379");
        if (i == 3)
            logev(w, "cache-01", "redis-down", TC_SEV_CRITICAL, t, NULL, NULL);
        if (i % 5 == 0)
            logev(w, "db-1", "slow-query", TC_SEV_WARNING, t, NULL, NULL);
        if (i == 7)
            logev(w, "app-1", "oom", TC_SEV_CRITICAL, t, NULL, NULL);
        if (i == 21)
            logev(w, "Batch-01", "job-failed", TC_SEV_ERROR, t, NULL, NULL);
        /* Opens, resolves (tick), reopens: three openings, a trend. */
        if (i % 18 == 0)
            logev(w, "mail-1", "queue-stuck", TC_SEV_WARNING, t, NULL, NULL);
        if (i % 4 == 1) {
            snprintf(host, sizeof(host), "app-%d", i % 8 / 4 + 1);
            logev(w, host, "tls-expired", TC_SEV_ERROR, t, NULL, NULL);
            logev(w, "mail-1", "tls-expired", TC_SEV_ERROR, t, NULL, NULL);
        }
        if (i == 9)
            pf(&w->o, "A %d\n",
               act(w, PROBLEM_V_INVESTIGATE, 1, 0, NULL, "x", NULL, t));
        step(w, t + (i % 3 == 0 ? 31 * MIN : SEC));
    }
}

static void
test_determinism(void **state)
{
    struct problem_config pc = scen_cfg();
    struct world a, b;

    (void)state;
    world_init(&a, &pc);
    world_init(&b, &pc);
    hosts(&a, fleet);
    hosts(&b, fleet);
    scenario(&a, 0, 40, NULL);
    scenario(&b, 0, 40, NULL);
    assert_true(a.o.loglen > 1000);
    assert_int_equal(a.o.loglen, b.o.loglen);
    assert_memory_equal(a.o.log, b.o.log, a.o.loglen);
    /* The scenario exercises what it should. */
    assert_non_null(strstr(a.o.log, " reference "));
    assert_non_null(strstr(a.o.log, " spread "));
    assert_non_null(strstr(a.o.log, " major "));
    if (getenv("PROBLEM_DUMP"))
        fputs(a.o.log, stderr);
    assert_non_null(strstr(a.o.log, " trend "));
    assert_non_null(strstr(a.o.log, " topology "));
    assert_non_null(strstr(a.o.log, "A 0\n"));
    world_close(&a);
    world_close(&b);
}

/* Rebuild both engines from the persisted rows, as start-up does. */
static void
reload(struct world *w, const struct problem_config *pc)
{
    struct rows *r = w->rows;

    incident_engine_free(w->ie);
    problem_engine_free(w->pe);
    w->ie = incident_engine_new(&cfg);
    w->pe = problem_engine_new(pc);
    hosts(w, fleet);
    for (int i = 0; i < MAXI; i++) {
        int held;

        if (!r->has_inc[i])
            continue;
        incident_engine_load(w->ie, &r->inc[i]);
        held = r->inc[i].state != INCIDENT_CLOSED;
        if (!held && r->mark[i].problem_id != 0 &&
            r->has_prob[r->mark[i].problem_id] &&
            r->prob[r->mark[i].problem_id].state != PROBLEM_CLOSED)
            held = 1;
        if (held)
            problem_engine_load_incident(w->pe, &r->inc[i], &r->mark[i]);
    }
    incident_engine_set_last_id(w->ie, r->last_inc);
    for (int i = 0; i < MAXP; i++)
        if (r->has_prob[i])
            problem_engine_load(w->pe, &r->prob[i]);
    problem_engine_set_last_id(w->pe, r->last_prob);
    for (int i = 0; i < r->nrefs; i++) {
        int64_t id = r->refs[i].incident_id;

        if (r->has_inc[id] && (r->inc[id].state != INCIDENT_CLOSED ||
                               r->mark[id].problem_id != 0))
            problem_engine_load_ref(w->pe, &r->refs[i]);
    }
    for (int i = 0; i < r->nopens; i++)
        problem_engine_load_opening(w->pe, &r->opens[i]);
    assert_int_equal(problem_engine_pending(w->pe), 0);
}

static struct problem_config reload_cfg;

static void
maybe_reload(struct world *w, int i)
{
    if (i == 10 || i == 23)
        reload(w, &reload_cfg);
}

/* Load-then-continue gives the output of continuous feeding. */
static void
test_load_then_continue(void **state)
{
    struct world a, b;

    (void)state;
    reload_cfg = scen_cfg();
    world_init(&a, &reload_cfg);
    world_init(&b, &reload_cfg);
    hosts(&a, fleet);
    hosts(&b, fleet);
    b.rows = tc_xcalloc(1, sizeof(*b.rows));
    scenario(&a, 0, 40, NULL);
    scenario(&b, 0, 40, maybe_reload);
    assert_int_equal(a.o.loglen, b.o.loglen);
    assert_memory_equal(a.o.log, b.o.log, a.o.loglen);
    world_close(&a);
    world_close(&b);
}

/* Config copies: the caller's strings may go right after. */
static void
test_config_copied(void **state)
{
    struct problem_config pc = defaults();
    char *from = tc_xstrdup("web-*"), *to = tc_xstrdup("db-1");
    char *field = tc_xstrdup("dsn");
    struct problem_dep dep = {from, to, 3};
    struct world w;

    (void)state;
    pc.deps = &dep;
    pc.ndeps = 1;
    pc.reference_fields = &field;
    pc.nreference_fields = 1;
    world_init(&w, &pc);
    free(from);
    free(to);
    free(field);
    hosts(&w, fleet);
    /* Only the listed field is looked at. */
    logev(&w, "app-1", "query-failed", TC_SEV_ERROR, T0, "peer", "db-1");
    logev(&w, "db-1", "db-down", TC_SEV_CRITICAL, T0, NULL, NULL);
    step(&w, T0);
    assert_int_equal(w.o.mark[1].problem_id, 0);
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0 + SEC, NULL, NULL);
    step(&w, T0 + SEC);
    assert_int_equal(w.o.mark[3].problem_id, 1);
    assert_string_equal(w.o.rule[1], "topology");
    world_close(&w);
}

/* ---- explain ------------------------------------------------------------ */

/* Explain incident id as tocsinctl does (the engine holds it). */
static void
explain(struct world *w, int64_t id, struct problem_explain *x)
{
    struct incident in = {.id = id};

    assert_int_equal(problem_engine_explain_incident(w->pe, &in, x), 0);
    assert_int_equal(x->incident_id, id);
}

#define WHY(x, r) ((x)->v[PROBLEM_R_##r].why)

/* Spread: 2 of 3 hosts, nearest; with min_hosts 2 the same evaluation
 * says it matches, and the step then links them; roles after linking. */
static void
test_explain_spread(void **state)
{
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct world w;

    (void)state;
    world_init(&w, &pc);
    logev(&w, "web-01", "upstream-timeout", TC_SEV_ERROR, T0, NULL, NULL);
    logev(&w, "web-02", "upstream-timeout", TC_SEV_ERROR, T0 + MIN, NULL, NULL);
    step(&w, T0 + MIN);
    explain(&w, 1, &x);
    assert_true(x.known);
    assert_int_equal(x.mark.problem_id, 0);
    assert_false(x.v[PROBLEM_R_SPREAD].matches);
    assert_int_equal(x.v[PROBLEM_R_SPREAD].seen, 2);
    assert_int_equal(x.v[PROBLEM_R_SPREAD].need, 3);
    assert_string_equal(WHY(&x, SPREAD),
                        "class `upstream-timeout` was seen on 2 hosts within "
                        "10m (web-01, web-02); min_hosts is 3");
    assert_int_equal(x.nearest, PROBLEM_R_SPREAD);
    /* The step agrees: a rule change that makes it match links them. */
    pc.spread_min_hosts = 2;
    problem_engine_set_config(w.pe, &pc);
    explain(&w, 1, &x);
    assert_true(x.v[PROBLEM_R_SPREAD].matches);
    pc.spread_min_hosts = 3;
    problem_engine_set_config(w.pe, &pc);
    /* The third host: the step links all three. */
    logev(&w, "web-03", "upstream-timeout", TC_SEV_ERROR, T0 + 2 * MIN, NULL,
          NULL);
    step(&w, T0 + 2 * MIN);
    assert_int_equal(w.o.mark[1].problem_id, 1);
    explain(&w, 1, &x);
    assert_int_equal(x.mark.problem_id, 1);
    assert_true(x.root);
    assert_non_null(strstr(x.role, "root cause: its host web-01 ranks first"));
    explain(&w, 2, &x);
    assert_false(x.root);
    assert_true(x.mark.inhibited);
    assert_non_null(strstr(x.role, "inhibited symptom of the root web-01"));
    assert_non_null(strstr(x.role, "same class `upstream-timeout`"));
    assert_non_null(strstr(x.top, "web-01 ranks first of 3 candidates with "
                                  "score 36 (earliest onset (+30); severity "
                                  "error (+6))"));
    world_close(&w);
}

/* Reference: no field names a host; a field names a host with no
 * incident; the named host's incident then makes it match. */
static void
test_explain_reference(void **state)
{
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct world w;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "web-01", "upstream-timeout", TC_SEV_WARNING, T0, "upstream",
          "cache-01:6379");
    logev(&w, "mail-1", "queue-stuck", TC_SEV_ERROR, T0, "queue", "q7");
    step(&w, T0);
    assert_int_equal(problem_engine_size(w.pe), 0);
    explain(&w, 1, &x);
    assert_false(x.v[PROBLEM_R_REFERENCE].matches);
    assert_int_equal(x.v[PROBLEM_R_REFERENCE].seen, 1);
    assert_int_equal(x.v[PROBLEM_R_REFERENCE].need, 2);
    assert_non_null(
        strstr(WHY(&x, REFERENCE),
               "field `upstream=cache-01:6379` names `cache-01`, but it had "
               "no incident within 10m of this one's opening"));
    assert_int_equal(x.nearest, PROBLEM_R_REFERENCE);
    explain(&w, 2, &x);
    assert_int_equal(x.v[PROBLEM_R_REFERENCE].seen, 0);
    assert_non_null(
        strstr(WHY(&x, REFERENCE), "no captured field names a known host"));
    /* Topology: none configured. Trend: 1 of 5. Major: by priority. */
    assert_string_equal(WHY(&x, TOPOLOGY),
                        "no depends_on rules are configured");
    assert_string_equal(WHY(&x, TREND),
                        "1 incident of class `queue-stuck` opened in 7d; "
                        "count is 5");
    assert_non_null(strstr(WHY(&x, MAJOR), "open a problem on resolve"));
    /* The named host fails: the step links web-01, and explain of
     * web-01 before that step's evidence already agreed it would. */
    logev(&w, "cache-01", "oom", TC_SEV_CRITICAL, T0 + MIN, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(w.o.mark[1].problem_id, 1);
    assert_int_equal(w.o.mark[3].problem_id, 1);
    assert_int_equal(w.o.mark[2].problem_id, 0);
    explain(&w, 1, &x);
    assert_true(x.mark.inhibited);
    assert_non_null(strstr(x.role, "its events name the root cache-01 "
                                   "(upstream=cache-01:6379)"));
    world_close(&w);
}

/* Fields that look like host names but name no known host. */
static void
test_explain_fields(void **state)
{
    char *fields[] = {"peer"};
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct world w;
    struct tc_event ev = ev_log("upstream-timeout", TC_SEV_WARNING, T0, 1);
    struct tc_kv kv[4];

    (void)state;
    pc.reference_fields = fields;
    pc.nreference_fields = 1;
    world_init(&w, &pc);
    hosts(&w, fleet);
    kv[0].key = tc_str_c("upstream");
    kv[0].val = tc_str_c("db-9:5432");
    kv[1].key = tc_str_c("backend");
    kv[1].val = tc_str_c("cache-01");
    kv[2].key = tc_str_c("self");
    kv[2].val = tc_str_c("web-01.example.net");
    kv[3].key = tc_str_c("msg");
    kv[3].val = tc_str_c("timed out");
    ev.fields = kv;
    ev.nfields = 4;
    feed(&w, "web-01", &ev);
    step(&w, T0);
    explain(&w, 1, &x);
    assert_string_equal(WHY(&x, REFERENCE),
                        "no captured field names a known host (only fields "
                        "`peer` are looked at); no other incident within 10m "
                        "names web-01");
    problem_engine_explain_event(w.pe, &x, "web-01", &ev);
    assert_string_equal(
        WHY(&x, REFERENCE),
        "no captured field names a known host (only fields `peer` are looked "
        "at); no other incident within 10m names web-01; field "
        "`upstream=db-9:5432` names `db-9`, which is not a known host; field "
        "`backend=cache-01` names `cache-01`, but only reference.fields are "
        "looked at; field `self=web-01.example.net` names `web-01`, its own "
        "host, which never counts");
    assert_int_equal(x.nfield_notes, 3);
    /* Twice the same event: no note twice. */
    x.nfield_notes = 0;
    problem_engine_explain_event(w.pe, &x, "web-01", &ev);
    assert_int_equal(x.nfield_notes, 0);
    world_close(&w);
}

/* Explain says "matches" exactly when the step links: the reference
 * partner seen from the other side, before the step that links it. */
static void
test_explain_agrees_with_step(void **state)
{
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct world w;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "web-01", "upstream-timeout", TC_SEV_ERROR, T0, "upstream",
          "cache-01");
    step(&w, T0);
    /* A rule change the step has not seen yet: off, then on again. */
    pc.reference = 0;
    problem_engine_set_config(w.pe, &pc);
    logev(&w, "cache-01", "oom", TC_SEV_CRITICAL, T0 + MIN, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(w.o.mark[2].problem_id, 0);
    explain(&w, 2, &x);
    assert_false(x.v[PROBLEM_R_REFERENCE].enabled);
    assert_string_equal(WHY(&x, REFERENCE), "the rule is off");
    pc.reference = 1;
    problem_engine_set_config(w.pe, &pc);
    explain(&w, 2, &x);
    assert_true(x.v[PROBLEM_R_REFERENCE].matches);
    assert_non_null(strstr(WHY(&x, REFERENCE),
                           "incident 1 on web-01 names this host "
                           "(upstream=cache-01)"));
    assert_int_equal(x.nearest, PROBLEM_R_REFERENCE);
    world_close(&w);
}

/* Topology: no rule covers the host; a rule covers it but no incident
 * on the other side within the window. */
static void
test_explain_topology(void **state)
{
    struct problem_dep deps[] = {{"web-*", "db-1", 0}};
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct world w;

    (void)state;
    pc.deps = deps;
    pc.ndeps = 1;
    world_init(&w, &pc);
    /* Warnings: P4, so that no major problem takes them meanwhile. */
    logev(&w, "db-1", "db-down", TC_SEV_WARNING, T0, NULL, NULL);
    logev(&w, "mail-1", "queue-stuck", TC_SEV_WARNING, T0 + MIN, NULL, NULL);
    logev(&w, "web-03", "http-5xx", TC_SEV_WARNING, T0 + 30 * MIN, NULL, NULL);
    step(&w, T0 + 30 * MIN);
    explain(&w, 2, &x);
    assert_string_equal(WHY(&x, TOPOLOGY),
                        "no depends_on rule covers host mail-1");
    assert_int_equal(x.v[PROBLEM_R_TOPOLOGY].seen, 0);
    explain(&w, 3, &x);
    assert_int_equal(x.v[PROBLEM_R_TOPOLOGY].seen, 1);
    assert_string_equal(WHY(&x, TOPOLOGY),
                        "it depends on `db-1` (depends_on web-* -> db-1), but "
                        "no incident there opened within 10m of it");
    explain(&w, 1, &x);
    assert_non_null(strstr(WHY(&x, TOPOLOGY), "`web-*` depends on it"));
    /* A window of an hour: the same check matches, and the step agrees. */
    pc.topology_window_ns = 60 * MIN;
    problem_engine_set_config(w.pe, &pc);
    explain(&w, 3, &x);
    assert_true(x.v[PROBLEM_R_TOPOLOGY].matches);
    logev(&w, "web-04", "http-5xx", TC_SEV_ERROR, T0 + 31 * MIN, NULL, NULL);
    step(&w, T0 + 31 * MIN);
    assert_int_equal(w.o.mark[4].problem_id, 1);
    assert_int_equal(w.o.mark[1].problem_id, 1);
    world_close(&w);
}

/* Trend 4 of 5, nearest over major; major by priority; problem explain. */
static void
test_explain_trend_major_problem(void **state)
{
    struct problem_config pc = defaults();
    struct problem_explain x;
    struct problem_explain_problem xp;
    struct world w;
    int64_t t = T0;

    (void)state;
    world_init(&w, &pc);
    for (int i = 0; i < 4; i++) {
        t = T0 + i * 3 * 60 * MIN;
        logev(&w, "db-1", "disk-full", TC_SEV_WARNING, t, NULL, NULL);
        step(&w, t);
        if (i < 3) {
            step(&w, t + 31 * MIN);
            step(&w, t + 92 * MIN);
        }
    }
    explain(&w, 4, &x);
    assert_int_equal(x.v[PROBLEM_R_TREND].seen, 4);
    assert_string_equal(WHY(&x, TREND),
                        "4 incidents of class `disk-full` opened in 7d; count "
                        "is 5");
    assert_int_equal(x.nearest, PROBLEM_R_TREND);
    assert_non_null(strstr(WHY(&x, MAJOR), "; only P1-P2 open a problem"));
    /* A closed incident the engine no longer holds: the stored row. */
    {
        struct incident in = {.id = 1,
                              .host = "db-1",
                              .fingerprint = "db-1\x1f"
                                             "disk-full",
                              .state = INCIDENT_CLOSED,
                              .priority = 4};

        assert_int_equal(problem_engine_explain_incident(w.pe, &in, &x), 0);
        assert_false(x.known);
        assert_non_null(strstr(WHY(&x, SPREAD), "it is closed"));
        assert_false(x.v[PROBLEM_R_SPREAD].matches);
    }
    /* A major incident: pending while active; the problem explained. */
    logev(&w, "db-1", "corruption", TC_SEV_CRITICAL, t + MIN, NULL, NULL);
    step(&w, t + MIN);
    explain(&w, 5, &x);
    assert_false(x.v[PROBLEM_R_MAJOR].matches);
    assert_non_null(strstr(WHY(&x, MAJOR), "a problem opens if it resolves"));
    step(&w, t + 32 * MIN);
    assert_int_equal(w.o.mark[5].problem_id, 1);
    assert_int_equal(problem_engine_explain_problem(w.pe, 1, t + 32 * MIN, &xp),
                     0);
    assert_false(xp.active);
    assert_int_equal(xp.resolves_at, problem_engine_get(w.pe, 1)->quiet_since +
                                         pc.resolve_after_ns);
    assert_non_null(strstr(xp.state_why, "resolves automatically 1h after"));
    assert_int_equal(xp.ncands, 1);
    {
        int64_t sum = 0;

        for (size_t i = 0; i < xp.cands[0].nterms; i++)
            sum += xp.cands[0].terms[i].points;
        assert_int_equal(sum, xp.cands[0].score);
        assert_string_equal(xp.cands[0].terms[0].what, "earliest onset");
        assert_int_equal(xp.cands[0].terms[0].points, 30);
    }
    assert_int_equal(problem_engine_explain_problem(w.pe, 9, t + 32 * MIN, &xp),
                     -ENOENT);
    world_close(&w);
}

/*
 * The engine answers membership questions from indices (a problem's
 * members, incidents by host, class and named host), not by walking
 * every incident. An incident that moves between problems (unlink,
 * link) must move in them too: the ranking, explain and the tick then
 * see the new membership, and an incident the drain forgot is gone
 * from them (ASan would catch a stale pointer).
 */
static void
test_index_follows_membership(void **state)
{
    struct problem_config pc = defaults();
    struct problem_explain_problem xp;
    struct world w;
    int64_t t = T0 + 2 * MIN;

    (void)state;
    world_init(&w, &pc);
    hosts(&w, fleet);
    logev(&w, "web-01", "http-5xx", TC_SEV_ERROR, T0, NULL, NULL);
    logev(&w, "web-02", "http-5xx", TC_SEV_ERROR, T0 + SEC, NULL, NULL);
    logev(&w, "web-03", "http-5xx", TC_SEV_ERROR, T0 + 2 * SEC, NULL, NULL);
    logev(&w, "app-1", "disk-full", TC_SEV_WARNING, T0 + 3 * SEC, NULL, NULL);
    logev(&w, "app-2", "disk-full", TC_SEV_WARNING, T0 + 4 * SEC, NULL, NULL);
    logev(&w, "mail-1", "disk-full", TC_SEV_WARNING, T0 + 5 * SEC, NULL, NULL);
    step(&w, T0 + MIN);
    assert_int_equal(problem_engine_size(w.pe), 2);
    assert_string_equal(w.o.root_host[1], "web-01");
    assert_int_equal(w.o.ncand[1], 3);
    assert_int_equal(w.o.ncand[2], 3);

    /* web-01's incident leaves problem 1: its ranking loses web-01. */
    assert_int_equal(act(&w, PROBLEM_V_UNLINK, 1, 1, NULL, NULL, NULL, t), 0);
    step(&w, t);
    assert_int_equal(w.o.mark[1].problem_id, 0);
    assert_int_equal(w.o.ncand[1], 2);
    assert_string_equal(w.o.root_host[1], "web-02");
    assert_string_equal(w.o.cand[1][0], "web-02 2 36");
    assert_int_equal(problem_engine_explain_problem(w.pe, 1, t, &xp), 0);
    assert_non_null(strstr(xp.state_why, "2 of its 2 incidents"));

    /* ... and joins problem 2, whose ranking and explain now have it:
     * the earliest onset (+30) and the highest severity (+6). */
    assert_int_equal(
        act(&w, PROBLEM_V_LINK, 2, 1, NULL, "same deploy", NULL, t + SEC), 0);
    step(&w, t + SEC);
    assert_int_equal(w.o.mark[1].problem_id, 2);
    assert_int_equal(w.o.ncand[2], 4);
    assert_string_equal(w.o.root_host[2], "web-01");
    assert_string_equal(w.o.cand[2][0], "web-01 1 36");
    assert_int_equal(problem_engine_explain_problem(w.pe, 2, t + SEC, &xp), 0);
    assert_non_null(strstr(xp.state_why, "4 of its 4 incidents"));

    /* Every incident resolves (30 min quiet): explain counts problem 2's
     * four members, and an hour later both problems resolve (or close,
     * with their incidents, which the drain then forgets). */
    logev(&w, "web-02", "http-5xx", TC_SEV_ERROR, t + 2 * SEC, NULL, NULL);
    step(&w, t + 40 * MIN);
    assert_int_equal(problem_engine_explain_problem(w.pe, 2, t + 40 * MIN, &xp),
                     0);
    assert_int_equal(xp.active, 0);
    assert_non_null(strstr(xp.state_why, "all 4 incidents resolved"));
    step(&w, t + 110 * MIN);
    assert_true(w.o.state[1] >= PROBLEM_RESOLVED);
    assert_true(w.o.state[2] >= PROBLEM_RESOLVED);

    /* The class fails again on three other hosts: a new spread problem
     * of the three (the old incidents are in problems, not free),
     * ranked from its own members only. */
    for (int i = 0; i < 3; i++) {
        char host[16];

        snprintf(host, sizeof(host), "web-%02d", i + 4);
        logev(&w, host, "http-5xx", TC_SEV_CRITICAL, t + 120 * MIN + i * SEC,
              NULL, NULL);
    }
    step(&w, t + 121 * MIN);
    assert_string_equal(w.o.rule[3], "spread");
    assert_int_equal(w.o.ncand[3], 3);
    assert_string_equal(w.o.root_host[3], "web-04");
    world_close(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_incident_last),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_unrelated_stay_apart),
        cmocka_unit_test(test_creeping),
        cmocka_unit_test(test_reference_dead_cache),
        cmocka_unit_test(test_reference_cascade),
        cmocka_unit_test(test_reference_cascade_late_middle),
        cmocka_unit_test(test_reference_root_first),
        cmocka_unit_test(test_naming_does_not_inhibit),
        cmocka_unit_test(test_topology),
        cmocka_unit_test(test_topology_service),
        cmocka_unit_test(test_trend),
        cmocka_unit_test(test_major),
        cmocka_unit_test(test_major_review),
        cmocka_unit_test(test_ranking),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_reopen_and_user_resolve),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_load_then_continue),
        cmocka_unit_test(test_config_copied),
        cmocka_unit_test(test_explain_spread),
        cmocka_unit_test(test_explain_reference),
        cmocka_unit_test(test_explain_fields),
        cmocka_unit_test(test_explain_agrees_with_step),
        cmocka_unit_test(test_explain_topology),
        cmocka_unit_test(test_explain_trend_major_problem),
        cmocka_unit_test(test_index_follows_membership),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
