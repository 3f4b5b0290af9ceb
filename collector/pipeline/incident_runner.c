/*
 * incident_runner: the loop-side driver of the incident engine (see
 * incident_runner.h and docs/internals/incidents.md).
 */
#include "pipeline/incident_runner.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "store/incidents_store.h"
#include "runbooks/runbooks.h"
#include "log.h"
#include "util.h"

/* How often committed batches are looked for, ms. */
#define POLL_MS 100
/* Batches per step: bounds one incident transaction under load. */
#define STEP_BATCHES 512
/* Steps per queued work while a backlog remains. */
#define STEPS_PER_WORK 16

struct incident_runner {
    uv_loop_t *loop; /* borrowed */
    struct incident_config cfg;
    struct incidents_store *store;          /* owned; used by the worker only,
                                               after start-up */
    struct incident_engine *engine;         /* owned; worker only */
    struct problem_engine *problems;        /* owned; worker only; loaded and
                                               dropped with engine */
    struct problem_config pcfg;             /* owned copy (pcfg_set): the worker
                                               loads from it while a SIGHUP may
                                               free cfg_src's arrays */
    const struct collector_config *cfg_src; /* borrowed: the running
                                       configuration, which outlives us */
    struct incidents_watermark wm; /* what the tables reflect; worker */
    uv_timer_t timer;              /* poll */
    uv_work_t work;
    int working; /* work queued, not completed */
    int kicked;  /* a commit landed while working: step again */
    struct incident_config next_cfg; /* incident_runner_set_config */
    int cfg_pending;                 /* next_cfg waits for the worker */
    int work_rc;                     /* last step's result */
    int stopped;
    int timer_closed;
    unsigned failures;                 /* consecutive failed steps */
    struct runbook_set *runbooks;      /* one reference; the worker reads
                                          it (dispatch), so it is swapped
                                          only while no step is in flight */
    struct runbook_set *next_runbooks; /* one reference; waits for that */
    size_t hints;                      /* hints the last work wrote */
    void (*on_hints)(void *arg);       /* told after such work */
    void *on_hints_arg;
    int record; /* runbooks not yet recorded as an
                   input: the worker records them
                   before its next step */
    /* Metrics. The worker fills the *_w fields during a work, the loop
     * takes them in after_work_cb (uv_queue_work orders the two). */
    struct metrics_hist step_w; /* this work's step durations */
    int census_w;               /* this work took a census: */
    uint64_t inc_w[INCIDENT_CENSUS_STATES][INCIDENT_CENSUS_PRIOS];
    uint64_t prob_w[PROBLEM_CENSUS_STATES];
    uint64_t unacked_w;
    int64_t census_mono;             /* worker: when it last took one */
    struct incident_runner_stats st; /* loop: what metrics read */
};

_Static_assert(METRICS_INCIDENT_STATES == INCIDENT_CENSUS_STATES &&
                   METRICS_PRIORITIES == INCIDENT_CENSUS_PRIOS &&
                   METRICS_PROBLEM_STATES == PROBLEM_CENSUS_STATES,
               "the metrics count what the engines count");

/* Census every this many ns at most (worker). */
#define CENSUS_EVERY_NS 1000000000LL

static void
pcfg_free(struct problem_config *c)
{
    for (size_t i = 0; i < c->nreference_fields; i++)
        free(c->reference_fields[i]);
    free((void *)c->reference_fields);
    for (size_t i = 0; i < c->ndeps; i++) {
        free(c->deps[i].from);
        free(c->deps[i].to);
    }
    free((void *)c->deps);
    memset(c, 0, sizeof(*c));
}

/* r->pcfg: a copy of cfg's correlation rules that owns its strings.
 * Loop thread, while no work is queued. */
static void
pcfg_set(struct incident_runner *r, const struct collector_config *cfg)
{
    struct problem_config src;
    char **fields = NULL;
    struct problem_dep *deps = NULL;

    config_correlation(cfg, &src);
    if (src.nreference_fields > 0) {
        fields = tc_xcalloc(src.nreference_fields, sizeof(*fields));
        for (size_t i = 0; i < src.nreference_fields; i++)
            fields[i] = tc_xstrdup(src.reference_fields[i]);
    }
    if (src.ndeps > 0) {
        deps = tc_xcalloc(src.ndeps, sizeof(*deps));
        for (size_t i = 0; i < src.ndeps; i++) {
            deps[i].from = tc_xstrdup(src.deps[i].from);
            deps[i].to = tc_xstrdup(src.deps[i].to);
            deps[i].line = src.deps[i].line;
        }
    }
    pcfg_free(&r->pcfg);
    r->pcfg = src;
    r->pcfg.reference_fields = fields;
    r->pcfg.deps = deps;
}

int
incident_runner_new(uv_loop_t *loop, const struct collector_config *cfg,
                    struct store *log, struct incident_runner **out)
{
    struct incident_runner *r = tc_xcalloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    r->loop = loop;
    config_incidents(cfg, &r->cfg);
    r->cfg_src = cfg;
    pcfg_set(r, cfg);
    if ((rc = incidents_store_open_engine(log, &r->store)) < 0)
        goto fail;
    if ((rc = incidents_store_load(r->store, &r->cfg, &r->pcfg, &r->engine,
                                   &r->problems, &r->wm)) < 0) {
        log_warnx("incidents: cannot load: %s",
                  incidents_store_errmsg(r->store));
        goto fail;
    }
    log_info("incidents: %zu not closed, %zu problems not closed, tables at"
             " batch %lld, action %lld",
             incident_engine_size(r->engine), problem_engine_size(r->problems),
             (long long)r->wm.batch_to, (long long)r->wm.action_to);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    *out = r;
    return 0;
fail:
    incidents_store_close(r->store);
    pcfg_free(&r->pcfg);
    free(r);
    return rc;
}

/* Threadpool: the metrics' census, at most once a second. */
static void
census(struct incident_runner *r)
{
    int64_t now = tc_mono_ns();

    if (r->census_mono != 0 && now - r->census_mono < CENSUS_EVERY_NS)
        return;
    /* A failed count keeps the last one: the metrics lag, no more. */
    if (incidents_store_hints_unacked(r->store, &r->unacked_w) < 0)
        return;
    r->census_mono = now;
    incident_engine_census(r->engine, r->inc_w);
    problem_engine_census(r->problems, r->prob_w);
    r->census_w = 1;
}

/* Threadpool. */
static void
work_cb(uv_work_t *w)
{
    struct incident_runner *r = w->data;
    int more = 0, rc = 0;

    if (r->engine == NULL) {
        /* A failed step left no engine: rebuild it from the tables. */
        rc = incidents_store_load(r->store, &r->cfg, &r->pcfg, &r->engine,
                                  &r->problems, &r->wm);
        if (rc < 0) {
            r->work_rc = rc;
            return;
        }
    }
    if (r->record && r->runbooks != NULL) {
        int recorded;

        /* An input like any action: the step applies it in order. */
        rc = incidents_store_runbooks_record(r->store, r->runbooks, tc_now_ns(),
                                             &recorded);
        if (rc < 0) {
            r->work_rc = rc;
            return;
        }
        r->record = 0;
    }
    r->hints = 0;
    for (int i = 0; i < STEPS_PER_WORK; i++) {
        int64_t t0 = tc_mono_ns();

        rc = incidents_store_step(r->store, r->engine, r->problems, &r->wm,
                                  tc_now_ns(), STEP_BATCHES, &more);
        metrics_hist_observe(&r->step_w, (uint64_t)(tc_mono_ns() - t0));
        if (rc == 0)
            r->hints += incidents_store_step_hints(r->store);
        if (rc < 0) {
            /* The engines are ahead of the tables: drop them, load
             * again. */
            incident_engine_free(r->engine);
            r->engine = NULL;
            problem_engine_free(r->problems);
            r->problems = NULL;
            break;
        }
        if (!more)
            break;
    }
    r->work_rc = rc;
    if (rc >= 0)
        census(r);
}

static void queue_step(struct incident_runner *r);

static void
after_work_cb(uv_work_t *w, int status)
{
    struct incident_runner *r = w->data;

    (void)status;
    r->working = 0;
    metrics_hist_add(&r->st.step, &r->step_w);
    memset(&r->step_w, 0, sizeof(r->step_w));
    if (r->census_w) {
        memcpy(r->st.incidents, r->inc_w, sizeof(r->st.incidents));
        memcpy(r->st.problems, r->prob_w, sizeof(r->st.problems));
        r->st.hints_unacked = r->unacked_w;
        r->st.census = 1;
        r->census_w = 0;
    }
    r->st.hints_decided += r->hints;
    if (r->hints > 0 && r->on_hints != NULL)
        r->on_hints(r->on_hints_arg);
    r->hints = 0;
    if (r->work_rc < 0) {
        if (r->failures++ == 0)
            log_warnx("incidents: step failed: %s (will retry)",
                      incidents_store_errmsg(r->store));
    } else if (r->failures > 0) {
        log_info("incidents: step succeeded after %u failures", r->failures);
        r->failures = 0;
    }
    /* A failing store is retried by the poll, not in a tight loop. */
    if (r->kicked && r->work_rc >= 0)
        queue_step(r);
}

static void
queue_step(struct incident_runner *r)
{
    if (r->stopped)
        return;
    if (r->working) {
        r->kicked = 1;
        return;
    }
    r->kicked = 0;
    if (r->next_runbooks != NULL) {
        runbook_set_unref(r->runbooks);
        r->runbooks = r->next_runbooks;
        r->next_runbooks = NULL;
        r->record = 1;
    }
    if (r->cfg_pending) {
        /* No step in flight: the worker's copy is ours to change. */
        r->cfg = r->next_cfg;
        r->cfg_pending = 0;
        /* Copied now, not at the SIGHUP: cfg_src's arrays are those of
         * the last reload. */
        pcfg_set(r, r->cfg_src);
        if (r->engine)
            incident_engine_set_config(r->engine, &r->cfg);
        if (r->problems)
            problem_engine_set_config(r->problems, &r->pcfg);
    }
    r->work.data = r;
    if (uv_queue_work(r->loop, &r->work, work_cb, after_work_cb) == 0)
        r->working = 1;
}

static void
timer_cb(uv_timer_t *t)
{
    struct incident_runner *r = t->data;

    if (!r->working)
        queue_step(r);
}

void
incident_runner_set_config(struct incident_runner *r,
                           const struct collector_config *cfg)
{
    config_incidents(cfg, &r->next_cfg);
    r->cfg_src = cfg;
    r->cfg_pending = 1;
    queue_step(r);
}

void
incident_runner_set_runbooks(struct incident_runner *r, struct runbook_set *set)
{
    if (!r->working) {
        runbook_set_unref(r->runbooks);
        r->runbooks = set;
        r->record = 1;
        return;
    }
    runbook_set_unref(r->next_runbooks);
    r->next_runbooks = set;
}

void
incident_runner_on_hints(struct incident_runner *r, void (*fn)(void *arg),
                         void *arg)
{
    r->on_hints = fn;
    r->on_hints_arg = arg;
}

void
incident_runner_kick(void *runner)
{
    struct incident_runner *r = runner;

    if (r != NULL)
        queue_step(r);
}

void
incident_runner_stats(const struct incident_runner *r,
                      struct incident_runner_stats *out)
{
    *out = r->st;
}

int
incident_runner_start(struct incident_runner *r)
{
    return uv_timer_start(&r->timer, timer_cb, 0, POLL_MS);
}

static void
closed_cb(uv_handle_t *h)
{
    struct incident_runner *r = h->data;

    r->timer_closed = 1;
}

void
incident_runner_stop(struct incident_runner *r)
{
    if (r == NULL || r->stopped)
        return;
    r->stopped = 1;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, closed_cb);
}

void
incident_runner_free(struct incident_runner *r)
{
    if (r == NULL)
        return;
    if (r->working || (r->stopped && !r->timer_closed))
        fatalx("incident_runner_free while running");
    if (!r->stopped) {
        /* Never started or stopped: the timer still needs closing. */
        fatalx("incident_runner_free before incident_runner_stop");
    }
    incident_engine_free(r->engine);
    problem_engine_free(r->problems);
    incidents_store_close(r->store);
    pcfg_free(&r->pcfg);
    runbook_set_unref(r->runbooks);
    runbook_set_unref(r->next_runbooks);
    free(r);
}
