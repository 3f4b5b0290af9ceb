/*
 * server: the collector's network side wired together (see server.h
 * and docs/internals/net.md): accepted sockets (net/listener.c) become
 * sessions, the registry of agents is loaded from the store, the
 * liveness policy runs on a 1 s timer, and the ingest pipeline's
 * callbacks send each commit's ACK to its agent through the registry.
 */
#include "net/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "log.h"
#include "net/listener.h"
#include "net/liveness.h"
#include "net/registry.h"
#include "net/session.h"
#include "pipeline/ingest.h"
#include "store/store.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

/* Period of the silence check and of writing agents' link state, ms. */
#define TICK_MS 1000
/*
 * TLS work (handshakes, decryption, decoding and queueing frames) per
 * loop iteration, us: the rest waits for the next iteration (tls.h,
 * tc_tls_pacer). Well under the 100 ms a stall is, so that the acks,
 * timers and the other sessions' turn come often; big enough that an
 * iteration's fixed cost stays small beside it.
 */
#define PACE_US 20000

struct server {
    uv_loop_t *loop;                    /* borrowed */
    const struct collector_config *cfg; /* borrowed */
    struct store *store;                /* borrowed; used by ingest */
    struct ingest *ingest;              /* owned */
    struct registry *reg;               /* owned: the agents */
    struct liveness lv;                 /* silence policy */
    struct sessions ss;                 /* the connections */
    struct listener lst;                /* the accept loop */
    struct tc_tls_pacer *pacer;         /* owned, from server_start: TLS
                                           work per loop iteration */

    uv_timer_t tick; /* silence check, agent state writes */
    int ticking;     /* tick initialised */
    int tick_closed;
    /*
     * Acks after a group commit, sent ACK_SLICE per loop iteration: a
     * commit that waited (a slow fsync, a big engine step) may ack
     * thousands of agents, one TLS record and one write(2) each, and in
     * one callback that stalled the loop for hundreds of milliseconds
     * at 10,000 agents (bench/README.md, "issue 11: storm"). A FIFO, so
     * an agent's acks keep their order; each says the agent's durable
     * mark when it is sent.
     */
    struct ack_ent *ackq; /* owned, ackq_head..ackq_len in use */
    size_t ackq_head, ackq_len, ackq_cap;
    uv_idle_t ack_idle; /* runs while the queue is not empty */
    int ack_inited, ack_idling, ack_closed;
    int stopping;
    int drained;
    int done;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    void (*commit_fn)(void *arg); /* server_on_commit */
    void *commit_arg;
    struct server_stats st;
    struct net_warn accept_warn; /* accept failed (EMFILE...) */
    /* The pipeline's last figures, kept when it is freed at stop: the
     * metrics written at shutdown show what the drain committed. */
    struct ingest_stats ingest_final;
};

static void check_done(struct server *srv);

#define ACK_SLICE 256 /* acks sent per loop iteration */

struct ack_ent {
    char *name;     /* the agent; owned */
    uint64_t epoch; /* the spool epoch the commit belonged to */
};

/* ------------------------------------------------------------------ */
/* Listener                                                            */

static void
on_conn(void *arg, int fd)
{
    struct server *srv = arg;

    sessions_start(&srv->ss, fd);
}

/*
 * Out of descriptors (or kernel memory): say so (rate-limited) and close
 * the oldest pending connection to free a descriptor; the listener
 * pauses (listener.h).
 */
static void
on_exhausted(void *arg, int err)
{
    struct server *srv = arg;
    uint64_t missed;

    srv->st.accept_errors++;
    if (net_warn_due(&srv->accept_warn, &missed))
        log_warnx("accept: %s: %" PRIu32 " sessions open, %" PRIu32
                  " not past HELLO; closing the oldest of those to make "
                  "room (%" PRIu64 " more failures since the last warning)",
                  strerror(err), srv->ss.nsessions, srv->ss.npending, missed);
    sessions_evict_pending(&srv->ss, 1);
}

static const struct listener_cbs listener_cbs = {on_conn, on_exhausted};

/*
 * Every session is a descriptor. Take the hard limit (the usual soft
 * one is 1024), and warn when even that is below what the limits admit.
 */
static void
raise_nofile(const struct collector_config *cfg)
{
    uint64_t want = (uint64_t)cfg->max_agents + cfg->max_pending + 64;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        log_warnx("open files limit (RLIMIT_NOFILE) is %" PRIu64
                  ", below limits.max_agents + limits.max_pending + 64 = "
                  "%" PRIu64 ": connections beyond it wait in the listen "
                  "backlog",
                  (uint64_t)rl.rlim_cur, want);
}

/* ------------------------------------------------------------------ */
/* Pipeline callbacks                                                  */

/* Send one queued ack, if its agent is still on that spool epoch. */
static void
ack_send(struct server *srv, const struct ack_ent *q)
{
    struct reg_agent *a = registry_find(srv->reg, q->name);
    struct tc_frame ack;

    /*
     * A commit of an older spool epoch moves the mark (seqs are unique
     * across epochs) but is not the current spool's business.
     */
    if (a == NULL || a->epoch != q->epoch || registry_link(a) == NULL)
        return;
    /* Through the registry, as anything sent to an agent from outside. */
    memset(&ack, 0, sizeof(ack));
    ack.type = TC_F_ACK;
    ack.u.ack.seq = a->durable_hwm;
    registry_send_frame(srv->reg, a->name, &ack, NULL, NULL);
}

/* Send up to max queued acks (SIZE_MAX: all), oldest first. */
static void
ack_drain(struct server *srv, size_t max)
{
    for (size_t k = 0; k < max && srv->ackq_head < srv->ackq_len; k++) {
        struct ack_ent *q = &srv->ackq[srv->ackq_head++];

        ack_send(srv, q);
        free(q->name);
        q->name = NULL;
    }
    if (srv->ackq_head == srv->ackq_len) {
        srv->ackq_head = srv->ackq_len = 0;
        if (srv->ack_idling) {
            uv_idle_stop(&srv->ack_idle);
            srv->ack_idling = 0;
        }
    }
}

static void
ack_idle_cb(uv_idle_t *h)
{
    ack_drain(h->data, ACK_SLICE);
}

static void
ingest_ack_cb(void *arg, const char *name, uint64_t epoch, uint64_t hwm)
{
    struct server *srv = arg;
    struct reg_agent *a = registry_find(srv->reg, name);
    struct ack_ent *q;

    if (a == NULL)
        return;
    if (hwm > a->durable_hwm)
        a->durable_hwm = hwm;
    if (a->epoch != epoch || registry_link(a) == NULL)
        return;
    if (!srv->ack_inited) {
        /* Not started (tests drive ingest alone): send now. */
        struct ack_ent now = {(char *)name, epoch};

        ack_send(srv, &now);
        return;
    }
    if (srv->ackq_len == srv->ackq_cap) {
        /* Room at the front first: the drained part is dead space. */
        if (srv->ackq_head > 0) {
            memmove(srv->ackq, srv->ackq + srv->ackq_head,
                    (srv->ackq_len - srv->ackq_head) * sizeof(*srv->ackq));
            srv->ackq_len -= srv->ackq_head;
            srv->ackq_head = 0;
        }
        if (srv->ackq_len == srv->ackq_cap) {
            srv->ackq_cap = srv->ackq_cap ? srv->ackq_cap * 2 : 1024;
            srv->ackq =
                tc_xreallocarray(srv->ackq, srv->ackq_cap, sizeof(*srv->ackq));
        }
    }
    q = &srv->ackq[srv->ackq_len++];
    q->name = tc_xstrdup(name);
    q->epoch = epoch;
    if (!srv->ack_idling) {
        uv_idle_start(&srv->ack_idle, ack_idle_cb);
        srv->ack_idling = 1;
    }
}

static void
ingest_commit_cb(void *arg)
{
    struct server *srv = arg;

    if (srv->commit_fn)
        srv->commit_fn(srv->commit_arg);
}

void
server_set_tls(struct server *s, struct tc_tls_ctx *tls)
{
    s->ss.tls = tls;
    tc_tls_ctx_set_pacer(tls, s->pacer);
}

void
server_on_commit(struct server *s, void (*fn)(void *arg), void *arg)
{
    s->commit_fn = fn;
    s->commit_arg = arg;
}

static void
ingest_pressure_cb(void *arg, int stop)
{
    struct server *srv = arg;

    if (srv->stopping)
        return;
    sessions_pressure(&srv->ss, stop);
}

static int
load_agent_cb(const struct store_agent *sa, void *arg)
{
    struct reg_agent *a = registry_get(arg, sa->name);

    a->has_epoch = sa->has_epoch;
    a->epoch = sa->epoch;
    a->durable_hwm = a->queued_hwm = sa->hwm;
    a->last_seen = sa->last_seen;
    if (sa->software)
        a->software = tc_xstrdup(sa->software);
    if (sa->address)
        snprintf(a->address, sizeof(a->address), "%s", sa->address);
    a->spool_depth = sa->spool_depth;
    a->spool_bytes = sa->spool_bytes;
    a->heartbeat_ms = sa->heartbeat_ms;
    a->silent_since = sa->silent_since;
    a->collector_seq = sa->collector_seq;
    return 0;
}

static void
tick_cb(uv_timer_t *t)
{
    struct server *srv = t->data;

    if (srv->stopping)
        return;
    liveness_tick(&srv->lv, tc_now_ns());
}

static void
session_freed_cb(void *arg)
{
    check_done(arg);
}

int
server_new(uv_loop_t *loop, const struct collector_config *cfg,
           struct tc_tls_ctx *tls, struct store *store, struct server **out)
{
    struct server *srv = tc_xcalloc(1, sizeof(*srv));
    struct ingest_opts io = {cfg->pipeline_max_bytes, cfg->commit_interval_ms};
    struct ingest_cbs cbs = {ingest_ack_cb, ingest_pressure_cb,
                             ingest_commit_cb};
    int64_t started_at;
    int rc;

    *out = NULL;
    srv->loop = loop;
    srv->cfg = cfg;
    srv->store = store;
    srv->reg = registry_new(0);
    /* No session survives a restart, whatever the last run wrote. */
    if ((rc = store_agents_disconnected(store)) < 0 ||
        (rc = store_load_agents(store, load_agent_cb, srv->reg)) < 0) {
        log_warnx("store: cannot load agents: %s", store_errmsg(store));
        goto fail;
    }
    started_at = tc_now_ns();
    if ((rc = ingest_new(loop, store, &io, &cbs, srv, &srv->ingest)) < 0) {
        log_warnx("ingest: %s", uv_strerror(rc));
        goto fail;
    }
    liveness_init(&srv->lv, srv->reg, srv->ingest, started_at);
    srv->ss.loop = loop;
    srv->ss.cfg = cfg;
    srv->ss.tls = tls;
    srv->ss.reg = srv->reg;
    srv->ss.lv = &srv->lv;
    srv->ss.ingest = srv->ingest;
    srv->ss.limits = tc_wire_default_limits;
    srv->ss.st = &srv->st;
    srv->ss.on_freed = session_freed_cb;
    srv->ss.freed_arg = srv;
    log_debug("%" PRIu32 " agents known", registry_count(srv->reg));
    *out = srv;
    return 0;
fail:
    server_free(srv);
    return rc;
}

int
server_start(struct server *srv, int lfd)
{
    int rc;

    raise_nofile(srv->cfg);
    tc_tls_pacer_new(srv->loop, PACE_US, &srv->pacer);
    if (srv->ss.tls != NULL)
        tc_tls_ctx_set_pacer(srv->ss.tls, srv->pacer);
    if ((rc = listener_start(&srv->lst, srv->loop, lfd, &listener_cbs, srv)) <
        0) {
        log_warnx("listen %s: %s", srv->cfg->listen, uv_strerror(rc));
        return rc;
    }
    uv_timer_init(srv->loop, &srv->tick);
    srv->tick.data = srv;
    srv->ticking = 1;
    uv_timer_start(&srv->tick, tick_cb, TICK_MS, TICK_MS);
    uv_idle_init(srv->loop, &srv->ack_idle);
    srv->ack_idle.data = srv;
    srv->ack_inited = 1;
    return 0;
}

/* Stop completes once drained and every handle has closed. */
static void
check_done(struct server *srv)
{
    if (srv->done || !srv->drained || srv->ss.nalive > 0 ||
        (srv->lst.started && !srv->lst.closed) ||
        (srv->ticking && !srv->tick_closed) ||
        (srv->ack_inited && !srv->ack_closed))
        return;
    srv->done = 1;
    ingest_stats(srv->ingest, &srv->ingest_final);
    /* Every session, and so every conn it paced, is freed. */
    if (srv->ss.tls != NULL)
        tc_tls_ctx_set_pacer(srv->ss.tls, NULL);
    tc_tls_pacer_close(srv->pacer);
    srv->pacer = NULL;
    /* Its timer must close before the loop can end. */
    ingest_free(srv->ingest);
    srv->ingest = NULL;
    if (srv->stop_cb)
        srv->stop_cb(srv->stop_arg);
}

static void
listener_closed_cb(void *arg)
{
    check_done(arg);
}

static void
tick_close_cb(uv_handle_t *h)
{
    struct server *srv = h->data;

    srv->tick_closed = 1;
    check_done(srv);
}

static void
ack_close_cb(uv_handle_t *h)
{
    struct server *srv = h->data;

    srv->ack_closed = 1;
    check_done(srv);
}

static void
drained_cb(void *arg, int status)
{
    struct server *srv = arg;

    if (status < 0)
        log_warnx("shutdown: uncommitted events left unacked (the agents "
                  "will resend them): %s",
                  store_errmsg(srv->store));
    srv->drained = 1;
    /* The last commits' acks go out before the sessions say goodbye. */
    ack_drain(srv, SIZE_MAX);
    if (srv->ack_inited)
        uv_close((uv_handle_t *)&srv->ack_idle, ack_close_cb);
    sessions_close_all(&srv->ss);
    check_done(srv);
}

void
server_stop(struct server *srv, void (*cb)(void *arg), void *arg)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->stop_cb = cb;
    srv->stop_arg = arg;
    listener_stop(&srv->lst, listener_closed_cb);
    if (srv->ticking)
        uv_close((uv_handle_t *)&srv->tick, tick_close_cb);
    /* Last PINGs and disconnects go with the drain's commit. */
    liveness_flush_dirty(&srv->lv);
    sessions_stop_reading(&srv->ss);
    ingest_drain(srv->ingest, drained_cb, srv);
}

void
server_free(struct server *srv)
{
    if (srv == NULL)
        return;
    /* Only reached before start or after a completed stop. */
    for (size_t i = srv->ackq_head; i < srv->ackq_len; i++)
        free(srv->ackq[i].name);
    free(srv->ackq);
    ingest_free(srv->ingest);
    registry_free(srv->reg);
    free(srv);
}

void
server_stats(const struct server *srv, struct server_stats *out)
{
    *out = srv->st;
    out->paced = tc_tls_pacer_deferred(srv->pacer);
    out->sessions = srv->ss.nsessions;
    out->agents = registry_count(srv->reg);
    out->active = srv->ss.nactive;
}

void
server_ingest_stats(const struct server *srv, struct ingest_stats *out)
{
    if (srv->ingest != NULL)
        ingest_stats(srv->ingest, out);
    else
        *out = srv->ingest_final;
}

struct registry *
server_registry(struct server *s)
{
    return s->reg;
}
