/*
 * checks: scheduler of the health checks and the events they make; see
 * checks.h for the contract and check.h for the runners.
 *
 * Per check: an interval timer (first fire after the splay, then every
 * interval) that only queues the check, and a deadline timer for the
 * run in progress. checks_pump starts queued checks while slots are
 * free. A run ends in checks_finish, which records the result, decides
 * whether it becomes an event, and frees the slot.
 */
#include "checks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "log.h"
#include "util.h"
#include "wire.h"

/* Labels an event can carry: agent labels plus check labels. */
#define CHECKS_LABELS_MAX 64

struct check {
    struct checks *owner;          /* back pointer */
    const struct agent_check *cfg; /* borrowed from the config */
    uv_timer_t timer;              /* due runs; data = this */
    uv_timer_t deadline;           /* timeout of the run; data = this */
    struct check_run run;          /* the current (or last) run */
    struct check *qnext;           /* FIFO link while queued */
    struct tc_tls_ctx *tls;        /* https only; owned */
    char tls_err[256];             /* why tls is NULL for https */
    int queued;                    /* 1: in the queue */
    int running;                   /* 1: started, checks_finish not yet */
    int busy;                      /* runner still holds a request */
    int state;                     /* last result's state; -1: none */
    char message[CHECK_MSG_MAX];   /* last result's message */
    int64_t last_run_ns;           /* wall clock of the last result */
    uint64_t duration_us;          /* last run's duration */
    int sent_state;                /* state of the last event; -1: none */
    int64_t sent_mono_ns;          /* monotonic time of the last event */
    int64_t sent_ns;               /* wall clock of the last event */
    uint64_t runs, timeouts, skipped, events; /* counters since start */
};

struct checks {
    uv_loop_t *loop;                /* borrowed */
    const struct agent_config *cfg; /* borrowed */
    struct spool *spool;            /* borrowed */
    const char *host;               /* borrowed; the agent name */
    void (*on_spooled)(void *arg);
    void *arg;
    struct check *checks; /* cfg->nchecks entries; owned */
    size_t n;
    /* Results of the runs in flight: a run takes one in checks_begin
     * and gives it back once recorded, so 20 checks with 4 slots hold
     * 4 results (5 KiB each) instead of 20. */
    struct check_result *results; /* owned; max_running entries */
    struct check_result **spare;  /* owned; the nspare unused results */
    uint32_t nspare;
    struct check *qhead, *qtail; /* FIFO of checks waiting for a slot */
    uint32_t nrunning;           /* runs holding a slot */
    uint32_t max_running;        /* check_max_concurrent */
    int started;                 /* timers initialised */
    int stopping;
    int open_handles; /* timers not yet closed, plus runs in progress */
    void (*stopped_cb)(void *arg);
    void *stopped_arg;
};

static const char *const checks_type_names[] = {
    "exec", "tcp", "http", "disk", "process", "file_age",
};

static void checks_pump(struct checks *cs);

void
checks_result_set(struct check_result *res, int state, const char *fmt, ...)
{
    va_list ap;
    char *p;

    res->state = state;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    /* The message is one line, whatever a plugin or peer put in it. */
    for (p = res->message; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

void
checks_result_field(struct check_result *res, const char *key, const char *fmt,
                    ...)
{
    struct check_field *f;
    va_list ap;

    if (res->nfields >= CHECK_FIELDS_MAX)
        return;
    f = &res->fields[res->nfields++];
    snprintf(f->key, sizeof(f->key), "%s", key);
    va_start(ap, fmt);
    vsnprintf(f->val, sizeof(f->val), fmt, ap);
    va_end(ap);
}

double
checks_run_elapsed_ms(const struct check_run *r)
{
    return (double)(tc_mono_ns() - r->start_ns) / 1e6;
}

const char *
checks_fmt_ms(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
    return buf;
}

uint64_t
checks_splay_ms(const char *host, const char *name, uint64_t interval_ms)
{
    /* Stable across builds and platforms, unlike a seeded hash. A
     * separator byte keeps ("ab", "c") and ("a", "bc") apart. */
    static const unsigned char sep = 0xff;
    uint64_t h = tc_hash64_add(TC_HASH64_INIT, host, strlen(host));

    h = tc_hash64_add(h, &sep, 1);
    h = tc_hash64_add(h, name, strlen(name));
    return interval_ms > 0 ? h % interval_ms : 0;
}

static enum tc_severity
checks_severity(int state)
{
    switch (state) {
    case CHECK_OK:
        return TC_SEV_OK;
    case CHECK_WARNING:
        return TC_SEV_WARNING;
    case CHECK_CRITICAL:
        return TC_SEV_CRITICAL;
    default:
        /* UNKNOWN says the check could not tell, not that all is lost. */
        return TC_SEV_WARNING;
    }
}

static const char *
checks_state_name(int state)
{
    static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

    return state >= 0 && state <= 3 ? names[state] : "NONE";
}

/* Add or replace a label: check labels override agent labels. */
static void
checks_put_label(struct tc_kv *lab, uint32_t *n, const char *k, const char *v)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (lab[i].key.len == strlen(k) &&
            memcmp(lab[i].key.ptr, k, lab[i].key.len) == 0) {
            lab[i].val = tc_str_c(v);
            return;
        }
    }
    if (*n >= CHECKS_LABELS_MAX)
        return;
    lab[*n].key = tc_str_c(k);
    lab[*n].val = tc_str_c(v);
    (*n)++;
}

/* Spool the run's result as one event. 0 or a negative errno. */
static int
checks_send(struct check *k, int64_t now_ns)
{
    struct checks *cs = k->owner;
    const struct check_result *res = k->run.res;
    struct tc_kv labels[CHECKS_LABELS_MAX];
    struct tc_kv fields[CHECK_FIELDS_MAX + 1];
    char dur[32];
    struct tc_event ev;
    uint32_t nl = 0, nf = 0;
    int r;

    for (size_t i = 0; i < cs->cfg->nlabels; i++)
        checks_put_label(labels, &nl, cs->cfg->labels[i].key,
                         cs->cfg->labels[i].val);
    for (size_t i = 0; i < k->cfg->nlabels; i++)
        checks_put_label(labels, &nl, k->cfg->labels[i].key,
                         k->cfg->labels[i].val);
    for (size_t i = 0; i < res->nfields; i++) {
        fields[nf].key = tc_str_c(res->fields[i].key);
        fields[nf].val = tc_str_c(res->fields[i].val);
        nf++;
    }
    snprintf(dur, sizeof(dur), "%.1f", (double)k->duration_us / 1000.0);
    fields[nf].key = tc_str_c("duration_ms");
    fields[nf].val = tc_str_c(dur);
    nf++;

    memset(&ev, 0, sizeof(ev));
    ev.ts = now_ns;
    ev.host = tc_str_c(cs->host);
    ev.kind = tc_str_c("check");
    ev.source = tc_str_c(k->cfg->name);
    ev.rule = tc_str_c(k->cfg->name);
    ev.sev = checks_severity(res->state);
    ev.state = res->state;
    ev.message = tc_str_c(res->message);
    ev.count = 1;
    ev.labels = labels;
    ev.nlabels = nl;
    ev.fields = fields;
    ev.nfields = nf;
    if ((r = spool_append(cs->spool, &ev, 1, NULL, NULL)) < 0)
        return r;
    if (cs->on_spooled != NULL)
        cs->on_spooled(cs->arg);
    return 0;
}

/* Record a finished run and send it if it is news (or due again). */
static void
checks_record(struct check *k)
{
    struct check_result *res = k->run.res;
    int64_t mono = tc_mono_ns(), now = tc_now_ns();
    int changed, r;

    if (res->state < CHECK_OK || res->state > CHECK_UNKNOWN)
        res->state = CHECK_UNKNOWN;
    k->runs++;
    if (res->timed_out)
        k->timeouts++;
    k->duration_us = (uint64_t)(mono - k->run.start_ns) / 1000;
    k->last_run_ns = now;
    changed = k->state != res->state;
    if (changed && k->state >= 0)
        log_info("check %s: %s -> %s: %s", k->cfg->name,
                 checks_state_name(k->state), checks_state_name(res->state),
                 res->message);
    else
        log_debug("check %s: %s: %s", k->cfg->name,
                  checks_state_name(res->state), res->message);
    k->state = res->state;
    snprintf(k->message, sizeof(k->message), "%s", res->message);

    /*
     * Compare with what was last SENT, not last seen: if spooling
     * failed, the next run tries again.
     */
    if (k->sent_state == res->state &&
        (uint64_t)(mono - k->sent_mono_ns) < k->cfg->resend_ms * 1000000)
        return;
    if ((r = checks_send(k, now)) < 0) {
        log_warnx("check %s: cannot spool its event: %s", k->cfg->name,
                  strerror(-r));
        return;
    }
    k->sent_state = res->state;
    k->sent_mono_ns = mono;
    k->sent_ns = now;
    k->events++;
}

static void
checks_handle_closed(uv_handle_t *h)
{
    struct check *k = h->data;
    struct checks *cs = k->owner;

    if (--cs->open_handles == 0 && cs->stopped_cb != NULL)
        cs->stopped_cb(cs->stopped_arg);
}

/* Close the timers once nothing runs any more. */
static void
checks_maybe_closed(struct checks *cs)
{
    if (!cs->stopping || cs->nrunning > 0)
        return;
    for (size_t i = 0; i < cs->n; i++) {
        struct check *k = &cs->checks[i];

        if (uv_is_closing((uv_handle_t *)&k->timer))
            continue;
        uv_close((uv_handle_t *)&k->timer, checks_handle_closed);
        uv_close((uv_handle_t *)&k->deadline, checks_handle_closed);
    }
}

/* A run ended (synchronously or through done). */
static void
checks_finish(struct check *k)
{
    struct checks *cs = k->owner;

    uv_timer_stop(&k->deadline);
    k->running = 0;
    cs->nrunning--;
    if (!cs->stopping)
        checks_record(k);
    cs->spare[cs->nspare++] = k->run.res;
    k->run.res = NULL;
}

static void
checks_run_done(struct check_run *r)
{
    struct check *k = r->data;
    struct checks *cs = k->owner;

    checks_finish(k);
    if (cs->stopping)
        checks_maybe_closed(cs);
    else
        checks_pump(cs);
}

static void
checks_deadline_cb(uv_timer_t *t)
{
    struct check *k = t->data;

    if (!k->running)
        return;
    switch (k->cfg->type) {
    case AGENT_CHECK_EXEC:
        check_exec_timeout(&k->run);
        break;
    case AGENT_CHECK_TCP:
    case AGENT_CHECK_HTTP:
        check_net_timeout(&k->run);
        break;
    default:
        check_local_timeout(&k->run);
        break;
    }
}

/* Start one run; it may finish inside this call. */
static void
checks_begin(struct check *k)
{
    struct checks *cs = k->owner;
    struct check_run *r = &k->run;
    int rc;

    if (cs->nspare == 0) /* checks_pump keeps nrunning < max_running */
        fatalx("checks: no free result for check %s", k->cfg->name);
    r->res = cs->spare[--cs->nspare];
    memset(r->res, 0, sizeof(*r->res));
    r->res->state = CHECK_UNKNOWN;
    r->loop = cs->loop;
    r->cfg = k->cfg;
    r->tls = k->tls;
    r->tls_err = k->tls_err[0] != '\0' ? k->tls_err : NULL;
    r->busy = &k->busy;
    r->priv = NULL;
    r->done = checks_run_done;
    r->data = k;
    r->start_ns = tc_mono_ns();
    k->running = 1;
    cs->nrunning++;
    switch (k->cfg->type) {
    case AGENT_CHECK_EXEC:
        rc = check_exec_start(r);
        break;
    case AGENT_CHECK_TCP:
    case AGENT_CHECK_HTTP:
        rc = check_net_start(r);
        break;
    default:
        rc = check_local_start(r);
        break;
    }
    if (rc != 0) {
        checks_finish(k);
        return;
    }
    uv_timer_start(&k->deadline, checks_deadline_cb, k->cfg->timeout_ms, 0);
}

/* Start queued checks while slots are free. */
static void
checks_pump(struct checks *cs)
{
    struct check *k;

    while (!cs->stopping && cs->nrunning < cs->max_running &&
           (k = cs->qhead) != NULL) {
        cs->qhead = k->qnext;
        if (cs->qhead == NULL)
            cs->qtail = NULL;
        k->qnext = NULL;
        k->queued = 0;
        checks_begin(k);
    }
}

static void
checks_due_cb(uv_timer_t *t)
{
    struct check *k = t->data;
    struct checks *cs = k->owner;

    if (k->queued || k->running || k->busy) {
        /* Never twice in the queue, never overlapping itself. */
        k->skipped++;
        log_debug("check %s: skipped, the previous run is still %s",
                  k->cfg->name, k->queued ? "queued" : "running");
        return;
    }
    k->queued = 1;
    if (cs->qtail != NULL)
        cs->qtail->qnext = k;
    else
        cs->qhead = k;
    cs->qtail = k;
    checks_pump(cs);
}

struct checks *
checks_new(uv_loop_t *loop, const struct agent_config *cfg, struct spool *spool,
           const char *host, void (*on_spooled)(void *arg), void *arg)
{
    struct checks *cs = tc_xcalloc(1, sizeof(*cs));
    struct tc_tls_ctx_opts o;

    cs->loop = loop;
    cs->cfg = cfg;
    cs->spool = spool;
    cs->host = host;
    cs->on_spooled = on_spooled;
    cs->arg = arg;
    cs->max_running =
        cfg->check_max_concurrent > 0 ? cfg->check_max_concurrent : 1;
    cs->n = cfg->nchecks;
    cs->checks = tc_xcalloc(cs->n + 1, sizeof(*cs->checks));
    cs->results = tc_xcalloc(cs->max_running, sizeof(*cs->results));
    cs->spare = tc_xcalloc(cs->max_running, sizeof(*cs->spare));
    /* Last first, so that the first slots are the ones reused. */
    for (uint32_t i = cs->max_running; i > 0; i--)
        cs->spare[cs->nspare++] = &cs->results[i - 1];
    for (size_t i = 0; i < cs->n; i++) {
        struct check *k = &cs->checks[i];

        k->owner = cs;
        k->cfg = &cfg->checks[i];
        k->state = -1;
        k->sent_state = -1;
        if (k->cfg->type != AGENT_CHECK_HTTP ||
            strncmp(k->cfg->url, "https://", 8) != 0)
            continue;
        memset(&o, 0, sizeof(o));
        o.ca = k->cfg->ca;
        o.probe = 1;
        o.min_version = TC_TLS_1_2;
        if (tc_tls_ctx_new(&o, &k->tls, k->tls_err, sizeof(k->tls_err)) < 0) {
            log_warnx("check %s: %s", k->cfg->name, k->tls_err);
            if (k->tls_err[0] == '\0')
                snprintf(k->tls_err, sizeof(k->tls_err), "tls: no context");
        }
    }
    return cs;
}

int
checks_start(struct checks *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        struct check *k = &cs->checks[i];
        uint64_t splay =
            checks_splay_ms(cs->host, k->cfg->name, k->cfg->interval_ms);

        uv_timer_init(cs->loop, &k->timer);
        uv_timer_init(cs->loop, &k->deadline);
        k->timer.data = k;
        k->deadline.data = k;
        cs->open_handles += 2;
        uv_timer_start(&k->timer, checks_due_cb, splay, k->cfg->interval_ms);
    }
    cs->started = 1;
    if (cs->n > 0)
        log_info("checks: %zu configured, at most %u at once", cs->n,
                 cs->max_running);
    return 0;
}

void
checks_stop(struct checks *cs, void (*cb)(void *arg), void *arg)
{
    if (cs->stopping)
        return;
    cs->stopping = 1;
    cs->stopped_cb = cb;
    cs->stopped_arg = arg;
    cs->qhead = cs->qtail = NULL;
    for (size_t i = 0; i < cs->n; i++) {
        struct check *k = &cs->checks[i];

        k->queued = 0;
        k->qnext = NULL;
        if (!cs->started)
            continue;
        uv_timer_stop(&k->timer);
        if (!k->running)
            continue;
        switch (k->cfg->type) {
        case AGENT_CHECK_EXEC:
            check_exec_cancel(&k->run);
            break;
        case AGENT_CHECK_TCP:
        case AGENT_CHECK_HTTP:
            check_net_cancel(&k->run);
            break;
        default:
            check_local_cancel(&k->run);
            break;
        }
    }
    if (!cs->started || cs->n == 0) {
        cb(arg);
        return;
    }
    checks_maybe_closed(cs);
}

void
checks_free(struct checks *cs)
{
    if (cs == NULL)
        return;
    for (size_t i = 0; i < cs->n; i++)
        tc_tls_ctx_free(cs->checks[i].tls);
    free(cs->checks);
    free(cs->results);
    free(cs->spare);
    free(cs);
}

size_t
checks_count(const struct checks *cs)
{
    return cs != NULL ? cs->n : 0;
}

int
checks_get(const struct checks *cs, size_t i, struct check_status *out)
{
    const struct check *k;

    if (cs == NULL || i >= cs->n)
        return -ENOENT;
    k = &cs->checks[i];
    memset(out, 0, sizeof(*out));
    out->name = k->cfg->name;
    out->type = (size_t)k->cfg->type <
                        sizeof(checks_type_names) / sizeof(checks_type_names[0])
                    ? checks_type_names[k->cfg->type]
                    : "?";
    out->state = k->state;
    out->message = k->message;
    out->last_run_ns = k->last_run_ns;
    out->duration_us = k->duration_us;
    out->last_sent_ns = k->sent_ns;
    out->interval_ms = k->cfg->interval_ms;
    out->runs = k->runs;
    out->timeouts = k->timeouts;
    out->skipped = k->skipped;
    out->events = k->events;
    out->running = k->running;
    out->queued = k->queued;
    return 0;
}
