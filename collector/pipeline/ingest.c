/*
 * ingest: queue accepted batches and group-commit them to the store on
 * the threadpool; ack only after COMMIT (see ingest.h).
 *
 * Two generations of batches exist at any time: "queued" (appended to
 * by the loop) and "inflight" (frozen, being written by a worker). A
 * commit swaps them. Each generation keeps every byte it needs (blobs,
 * host and software strings) in one arena, so a batch costs one arena
 * append per event and no allocation once the arena has grown to its
 * working size.
 */
#include "pipeline/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/store.h"
#include "util.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
/* Failed commits tolerated while draining before giving up. */
#define DRAIN_RETRIES 3
/* A msgpack array32 header: 0xdd and a 4-byte big-endian count. */
#define ARRAY32_HDR 5
#define NO_OFF SIZE_MAX

struct gen_batch {
    size_t host_off;    /* arena offset of the NUL-terminated agent name */
    size_t sw_off;      /* arena offset of the software string, or NO_OFF */
    size_t blob_off;    /* arena offset of the msgpack array */
    size_t blob_len;    /* bytes */
    uint64_t epoch;     /* agent's spool epoch */
    uint64_t seq_first; /* first and last seq in the blob */
    uint64_t seq_last;
    uint32_t n;     /* events in the blob */
    int64_t ts_min; /* event ts range, ns */
    int64_t ts_max;
    int64_t arrived; /* ns since the epoch */
    int collector;   /* origin "collector": no hwm, no ack */
};

/* An agent state row; its strings live in the arena. */
struct gen_state {
    struct store_agent_state v; /* string pointers unset until build_txn */
    size_t name_off;            /* arena offset of the name */
    size_t sw_off;              /* software, or NO_OFF */
    size_t addr_off;            /* address, or NO_OFF */
};

struct gen {
    struct tc_buf arena; /* owned; no cap: ingest_paused bounds it */
    struct gen_batch *b; /* owned array of nb (capacity capb) */
    size_t nb, capb;
    struct gen_state *st; /* owned array of nst (capacity capst) */
    size_t nst, capst;
    uint64_t events;           /* events in all batches */
    uint64_t collector_events; /* of those, the collector's own */
};

/* Sort key for finding each agent's last batch in a generation. */
struct agent_ref {
    const char *host; /* into the arena */
    size_t idx;       /* batch index */
};

struct ingest {
    uv_loop_t *loop;     /* borrowed */
    struct store *store; /* borrowed; used by the worker in flight */
    struct ingest_opts opts;
    struct ingest_cbs cbs;
    void *cb_arg;

    struct gen gens[2];
    struct gen *queued;   /* appended to by the loop */
    struct gen *inflight; /* frozen while committing; NULL if idle */

    uv_work_t work;         /* the commit in flight */
    int working;            /* work queued and not yet completed */
    int work_rc;            /* store_commit's result */
    struct store_txn txn;   /* views into inflight, built on the loop */
    struct store_batch *tb; /* owned; txn.batches */
    size_t tb_cap;
    struct store_agent_update *ta; /* owned; txn.agents */
    size_t ta_cap;
    struct store_agent_state *ts; /* owned; txn.states */
    size_t ts_cap;
    struct agent_ref *refs; /* owned scratch for grouping by agent */
    size_t refs_cap;

    uv_timer_t timer; /* commit interval and retry backoff */
    int timer_armed;
    uint64_t retry_ms; /* current backoff, 0 if not failing */
    unsigned failures; /* consecutive failed attempts */

    uv_work_t maint_work; /* store_maintain in flight (store.h: the
                             store decides when, we run it) */
    int maint_running;

    int paused; /* on_pressure(1) was the last call */
    void (*drain_cb)(void *arg, int status);
    void *drain_arg;
    int freeing;

    struct ingest_stats st;
};

static void start_commit(struct ingest *ig);
static void start_maintain(struct ingest *ig);
static void schedule(struct ingest *ig);

static const char *
gen_str(const struct gen *g, size_t off)
{
    return off == NO_OFF ? NULL : (const char *)tc_buf_head(&g->arena) + off;
}

static size_t
gen_bytes(const struct gen *g)
{
    return tc_buf_size(&g->arena);
}

static void
gen_reset(struct gen *g)
{
    tc_buf_reset(&g->arena);
    g->nb = 0;
    g->nst = 0;
    g->events = 0;
    g->collector_events = 0;
}

static int
gen_empty(const struct gen *g)
{
    return g->nb == 0 && g->nst == 0;
}

static size_t
total_bytes(const struct ingest *ig)
{
    size_t n = gen_bytes(ig->queued);
    if (ig->inflight)
        n += gen_bytes(ig->inflight);
    return n;
}

static void
check_pressure(struct ingest *ig)
{
    size_t bytes = total_bytes(ig);

    if (!ig->paused && bytes > ig->opts.max_bytes) {
        ig->paused = 1;
        log_debug("ingest: %zu bytes uncommitted (cap %" PRIu64
                  "): pausing reads",
                  bytes, ig->opts.max_bytes);
        if (ig->cbs.on_pressure)
            ig->cbs.on_pressure(ig->cb_arg, 1);
    } else if (ig->paused && bytes < ig->opts.max_bytes / 2) {
        ig->paused = 0;
        log_debug("ingest: %zu bytes uncommitted: resuming reads", bytes);
        if (ig->cbs.on_pressure)
            ig->cbs.on_pressure(ig->cb_arg, 0);
    }
}

int
ingest_new(uv_loop_t *loop, struct store *store, const struct ingest_opts *o,
           const struct ingest_cbs *cbs, void *arg, struct ingest **out)
{
    struct ingest *ig = tc_xcalloc(1, sizeof(*ig));
    int rc;

    ig->loop = loop;
    ig->store = store;
    ig->opts = *o;
    if (ig->opts.max_bytes == 0)
        ig->opts.max_bytes = 64u << 20;
    ig->cbs = *cbs;
    ig->cb_arg = arg;
    for (int i = 0; i < 2; i++)
        tc_buf_init(&ig->gens[i].arena, SIZE_MAX / 2);
    ig->queued = &ig->gens[0];
    if ((rc = uv_timer_init(loop, &ig->timer)) < 0) {
        free(ig);
        return rc;
    }
    ig->timer.data = ig;
    *out = ig;
    return 0;
}

static void
free_cb(uv_handle_t *h)
{
    struct ingest *ig = h->data;

    for (int i = 0; i < 2; i++) {
        tc_buf_close(&ig->gens[i].arena);
        free(ig->gens[i].b);
        free(ig->gens[i].st);
    }
    free(ig->tb);
    free(ig->ta);
    free(ig->ts);
    free(ig->refs);
    free(ig);
}

void
ingest_free(struct ingest *ig)
{
    if (ig == NULL || ig->freeing)
        return;
    /* The worker still holds the arena: freeing now would be a UAF. */
    if (ig->working || ig->maint_running)
        fatalx("ingest_free with a commit or store maintenance in flight");
    ig->freeing = 1;
    uv_close((uv_handle_t *)&ig->timer, free_cb);
}

int
ingest_paused(const struct ingest *ig)
{
    return ig->paused;
}

static void
timer_cb(uv_timer_t *t)
{
    struct ingest *ig = t->data;

    ig->timer_armed = 0;
    if (!ig->working)
        start_commit(ig);
}

static void
arm_timer(struct ingest *ig, uint64_t ms)
{
    uv_timer_start(&ig->timer, timer_cb, ms, 0);
    ig->timer_armed = 1;
}

/* Something was queued: start a commit now, soon, or after the current. */
static void
schedule(struct ingest *ig)
{
    check_pressure(ig);
    if (ig->working || ig->retry_ms > 0)
        return; /* the next commit will take it */
    if (ig->opts.commit_interval_ms == 0 ||
        gen_bytes(ig->queued) >= ig->opts.max_bytes / 4) {
        /* Enough to make a commit worth it: do not wait. */
        if (ig->timer_armed) {
            uv_timer_stop(&ig->timer);
            ig->timer_armed = 0;
        }
        start_commit(ig);
    } else if (!ig->timer_armed) {
        arm_timer(ig, ig->opts.commit_interval_ms);
    }
}

/* Write a msgpack array32 header for n elements at p. */
static void
put_array32(uint8_t *p, uint32_t n)
{
    p[0] = 0xdd;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
}

int
ingest_append(struct ingest *ig, const struct ingest_src *src,
              const struct tc_event *ev, uint32_t n)
{
    struct gen *g = ig->queued;
    struct gen_batch *b;
    size_t mark = g->arena.len, alen = strlen(src->agent);
    struct tc_event e;
    int rc;

    if (n == 0)
        return 0;
    if (ig->drain_cb != NULL || ig->freeing)
        return -ESHUTDOWN;
    if (g->nb == g->capb) {
        g->capb = g->capb ? g->capb * 2 : 64;
        g->b = tc_xreallocarray(g->b, g->capb, sizeof(*g->b));
    }
    b = &g->b[g->nb];
    memset(b, 0, sizeof(*b));
    b->epoch = src->epoch;
    b->arrived = src->now;
    b->collector = src->collector;
    b->host_off = gen_bytes(g);
    if ((rc = tc_buf_append(&g->arena, src->agent, alen + 1)) < 0)
        goto fail;
    b->sw_off = NO_OFF;
    if (src->software != NULL) {
        b->sw_off = gen_bytes(g);
        if ((rc = tc_buf_append(&g->arena, src->software,
                                strlen(src->software) + 1)) < 0)
            goto fail;
    }
    b->blob_off = gen_bytes(g);
    /*
     * The count is patched in below; array32 is valid msgpack for any
     * count, so the header size need not be known before encoding.
     */
    if ((rc = tc_buf_reserve(&g->arena, ARRAY32_HDR)) < 0)
        goto fail;
    g->arena.len += ARRAY32_HDR;
    b->ts_min = INT64_MAX;
    b->ts_max = INT64_MIN;
    for (uint32_t i = 0; i < n; i++) {
        /*
         * The authenticated name wins over what the agent wrote. It
         * nearly always wrote that name, and then the event's bytes as
         * received are what an encode would produce (plus any keys
         * newer than us): copy them. Encoding every event again cost
         * about a tenth of the collector's CPU.
         */
        if (ev[i].raw != NULL && ev[i].host.len == alen &&
            memcmp(ev[i].host.ptr, src->agent, alen) == 0) {
            rc = tc_buf_append(&g->arena, ev[i].raw, ev[i].raw_len);
        } else {
            e = ev[i];
            e.host.ptr = src->agent;
            e.host.len = (uint32_t)alen;
            rc = tc_event_encode(&g->arena, &e);
        }
        if (rc < 0)
            goto fail;
        if (ev[i].ts < b->ts_min)
            b->ts_min = ev[i].ts;
        if (ev[i].ts > b->ts_max)
            b->ts_max = ev[i].ts;
    }
    put_array32((uint8_t *)tc_buf_head(&g->arena) + b->blob_off, n);
    b->blob_len = gen_bytes(g) - b->blob_off;
    b->seq_first = ev[0].seq;
    b->seq_last = ev[n - 1].seq;
    b->n = n;
    g->nb++;
    g->events += n;
    if (src->collector)
        g->collector_events += n;
    schedule(ig);
    return 0;
fail:
    /* Roll the arena back: a half-written batch must not be committed. */
    g->arena.len = mark;
    return rc;
}

/* Copy a string into the arena; its offset, or NO_OFF for NULL. */
static int
gen_strdup(struct gen *g, const char *str, size_t *off)
{
    *off = NO_OFF;
    if (str == NULL)
        return 0;
    *off = gen_bytes(g);
    return tc_buf_append(&g->arena, str, strlen(str) + 1);
}

int
ingest_agent_state(struct ingest *ig, const struct store_agent_state *st)
{
    struct gen *g = ig->queued;
    struct gen_state *gs;
    size_t mark = g->arena.len;
    int rc;

    if (ig->drain_cb != NULL || ig->freeing)
        return -ESHUTDOWN;
    if (g->nst == g->capst) {
        g->capst = g->capst ? g->capst * 2 : 16;
        g->st = tc_xreallocarray(g->st, g->capst, sizeof(*g->st));
    }
    gs = &g->st[g->nst];
    gs->v = *st;
    if ((rc = gen_strdup(g, st->name, &gs->name_off)) < 0 ||
        (rc = gen_strdup(g, st->software, &gs->sw_off)) < 0 ||
        (rc = gen_strdup(g, st->address, &gs->addr_off)) < 0) {
        g->arena.len = mark;
        return rc;
    }
    g->nst++;
    schedule(ig);
    return 0;
}

static int
ref_cmp(const void *a, const void *b)
{
    const struct agent_ref *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Build the store_txn for the inflight generation: every batch in
 * order, and one agent update per agent from its last batch (later
 * batches of an agent carry higher seqs, or a newer epoch).
 */
static void
build_txn(struct ingest *ig)
{
    const struct gen *g = ig->inflight;
    size_t na = 0, nr = 0;

    if (g->nb > ig->tb_cap) {
        ig->tb_cap = g->nb;
        ig->tb = tc_xreallocarray(ig->tb, ig->tb_cap, sizeof(*ig->tb));
        ig->refs = tc_xreallocarray(ig->refs, ig->tb_cap, sizeof(*ig->refs));
    }
    for (size_t i = 0; i < g->nb; i++) {
        const struct gen_batch *b = &g->b[i];
        struct store_batch *t = &ig->tb[i];

        memset(t, 0, sizeof(*t));
        t->host = gen_str(g, b->host_off);
        t->seq_first = b->seq_first;
        t->seq_last = b->seq_last;
        t->n = b->n;
        t->ts_min = b->ts_min;
        t->ts_max = b->ts_max;
        t->events = tc_buf_head(&g->arena) + b->blob_off;
        t->events_len = b->blob_len;
        t->origin = b->collector ? STORE_ORIGIN_COLLECTOR : STORE_ORIGIN_AGENT;
        /* The collector's own events move no hwm and are acked to nobody. */
        if (b->collector)
            continue;
        ig->refs[nr].host = t->host;
        ig->refs[nr].idx = i;
        nr++;
    }
    if (nr > 1) /* qsort on a NULL array is undefined even for 0 */
        tc_qsort(ig->refs, nr, sizeof(*ig->refs), ref_cmp);
    for (size_t i = 0; i < nr; i++) {
        const struct gen_batch *b;
        struct store_agent_update *u;

        if (i + 1 < nr && strcmp(ig->refs[i].host, ig->refs[i + 1].host) == 0)
            continue; /* not this agent's last batch */
        b = &g->b[ig->refs[i].idx];
        if (na == ig->ta_cap) {
            ig->ta_cap = ig->ta_cap ? ig->ta_cap * 2 : 16;
            ig->ta = tc_xreallocarray(ig->ta, ig->ta_cap, sizeof(*ig->ta));
        }
        u = &ig->ta[na++];
        u->name = ig->refs[i].host;
        u->epoch = b->epoch;
        u->hwm = b->seq_last;
        u->last_seen = b->arrived;
        u->software = gen_str(g, b->sw_off);
    }
    ig->txn.batches = ig->tb;
    ig->txn.nbatches = g->nb;
    ig->txn.agents = ig->ta;
    ig->txn.nagents = na;

    if (g->nst > ig->ts_cap) {
        ig->ts_cap = g->nst;
        ig->ts = tc_xreallocarray(ig->ts, ig->ts_cap, sizeof(*ig->ts));
    }
    for (size_t i = 0; i < g->nst; i++) {
        const struct gen_state *gs = &g->st[i];

        ig->ts[i] = gs->v;
        ig->ts[i].name = gen_str(g, gs->name_off);
        ig->ts[i].software = gen_str(g, gs->sw_off);
        ig->ts[i].address = gen_str(g, gs->addr_off);
    }
    ig->txn.states = ig->ts;
    ig->txn.nstates = g->nst;
}

/* Threadpool: the only code that runs off the loop thread. */
static void
work_cb(uv_work_t *w)
{
    struct ingest *ig = w->data;

    ig->work_rc = store_commit(ig->store, &ig->txn);
}

static void maybe_drained(struct ingest *ig, int status);

/* Threadpool. */
static void
maint_work_cb(uv_work_t *w)
{
    struct ingest *ig = w->data;

    store_maintain(ig->store);
}

static void
maint_after_cb(uv_work_t *w, int status)
{
    struct ingest *ig = w->data;

    (void)status;
    ig->maint_running = 0;
    ig->st.checkpoints++;
    if (store_maintain_done(ig->store))
        start_maintain(ig);
    maybe_drained(ig, 0);
}

/* Run the store's maintenance beside the commits (store.h). */
static void
start_maintain(struct ingest *ig)
{
    if (ig->maint_running)
        return;
    ig->maint_work.data = ig;
    if (uv_queue_work(ig->loop, &ig->maint_work, maint_work_cb,
                      maint_after_cb) == 0)
        ig->maint_running = 1;
}

static void
after_work_cb(uv_work_t *w, int status)
{
    struct ingest *ig = w->data;
    struct store_stats ss;
    struct gen *g = ig->inflight;
    int rc = status < 0 ? status : ig->work_rc;

    ig->working = 0;
    if (rc < 0) {
        ig->st.commit_failures++;
        ig->failures++;
        ig->retry_ms = ig->retry_ms ? ig->retry_ms * 2 : RETRY_MIN_MS;
        if (ig->retry_ms > RETRY_MAX_MS)
            ig->retry_ms = RETRY_MAX_MS;
        log_warnx("store: commit failed: %s (will retry)",
                  status < 0 ? uv_strerror(status) : store_errmsg(ig->store));
        if (ig->drain_cb != NULL && ig->failures > DRAIN_RETRIES) {
            /*
             * Shutting down: nothing of this generation was acked, so
             * the agents still spool it and resend it to the next
             * collector run. Stop trying.
             */
            maybe_drained(ig, rc);
            return;
        }
        arm_timer(ig, ig->retry_ms);
        return;
    }
    if (ig->failures > 0)
        log_info("store: commit succeeded after %u failed attempts",
                 ig->failures);
    ig->failures = 0;
    ig->retry_ms = 0;
    store_stats(ig->store, &ss);
    ig->st.commits++;
    ig->st.events += g->events;
    ig->st.batches += g->nb;
    if (g->nb > ig->st.max_group)
        ig->st.max_group = g->nb;
    ig->st.last_commit_ns = ss.last_commit_ns;
    ig->st.collector_events += g->collector_events;
    if (ss.last_commit_ns > 0)
        metrics_hist_observe(&ig->st.commit_hist, (uint64_t)ss.last_commit_ns);

    /* Durable now: tell every agent in it. */
    for (size_t i = 0; i < ig->txn.nagents; i++) {
        const struct store_agent_update *u = &ig->txn.agents[i];
        if (ig->cbs.on_ack)
            ig->cbs.on_ack(ig->cb_arg, u->name, u->epoch, u->hwm);
    }
    if (store_after_commit(ig->store))
        start_maintain(ig);
    if (ig->cbs.on_commit && g->nb > 0)
        ig->cbs.on_commit(ig->cb_arg);
    memset(&ig->txn, 0, sizeof(ig->txn));
    gen_reset(g);
    ig->inflight = NULL;
    check_pressure(ig);
    /* What queued during the commit has waited long enough. */
    if (!gen_empty(ig->queued)) {
        if (ig->timer_armed) {
            uv_timer_stop(&ig->timer);
            ig->timer_armed = 0;
        }
        start_commit(ig);
        return;
    }
    maybe_drained(ig, 0);
}

static void
start_commit(struct ingest *ig)
{
    int rc;

    if (ig->working)
        return;
    if (ig->inflight == NULL) {
        /* Freeze the queued generation; appends go to the other one. */
        if (gen_empty(ig->queued)) {
            maybe_drained(ig, 0);
            return;
        }
        ig->inflight = ig->queued;
        ig->queued = ig->inflight == &ig->gens[0] ? &ig->gens[1] : &ig->gens[0];
        build_txn(ig);
    }
    /* else: a retry of the same inflight generation and txn. */
    store_commit_prepare(ig->store);
    ig->work.data = ig;
    rc = uv_queue_work(ig->loop, &ig->work, work_cb, after_work_cb);
    if (rc < 0) {
        /* Cannot happen with a valid loop; retry like a failed commit. */
        log_warnx("ingest: uv_queue_work: %s", uv_strerror(rc));
        arm_timer(ig, RETRY_MIN_MS);
        return;
    }
    ig->working = 1;
}

static void
maybe_drained(struct ingest *ig, int status)
{
    void (*cb)(void *, int) = ig->drain_cb;

    if (cb == NULL)
        return;
    if (status == 0 && (ig->working || ig->inflight || !gen_empty(ig->queued)))
        return;
    /* The maintenance's thread uses the store: wait for it either way. */
    if (ig->maint_running)
        return;
    ig->drain_cb = NULL;
    cb(ig->drain_arg, status);
}

void
ingest_drain(struct ingest *ig, void (*cb)(void *arg, int status), void *arg)
{
    ig->drain_cb = cb;
    ig->drain_arg = arg;
    ig->failures = 0; /* count drain attempts afresh */
    if (ig->timer_armed) {
        uv_timer_stop(&ig->timer);
        ig->timer_armed = 0;
    }
    if (ig->working)
        return; /* after_work_cb continues with what queued */
    start_commit(ig);
}

void
ingest_stats(const struct ingest *ig, struct ingest_stats *out)
{
    *out = ig->st;
    out->queued_events = ig->queued->events;
    out->queued_bytes = gen_bytes(ig->queued);
    if (ig->inflight) {
        out->inflight_events = ig->inflight->events;
        out->inflight_bytes = gen_bytes(ig->inflight);
    }
}
