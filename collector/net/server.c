/*
 * server: listener, agent sessions and the in-memory agents table (see
 * server.h and docs/internals/collector.md).
 *
 * Delivery rests on two marks per agent. queued_hwm is the highest seq
 * handed to the ingest pipeline; an event at or below it is a replay
 * (the agent resends everything after the durable mark when it
 * reconnects) and is dropped. durable_hwm is the highest seq committed;
 * it is what WELCOME reports and what ACK carries, and it only moves in
 * the ingest commit callback. Both marks belong to the agent, not to a
 * session, so a replacing connection dedups against what its
 * predecessor already queued.
 */
#include "net/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hash.h"
#include "pipeline/ingest.h"
#include "log.h"
#include "seq.h"
#include "store/store.h"
#include "timefmt.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

/* Outgoing frames are small (WELCOME, ACK, PONG, BYE). */
#define TX_MAX (64u * 1024)
/*
 * An agent that does not read its acks would make us queue forever;
 * this much unsent ciphertext means it is stuck.
 */
#define TX_PENDING_MAX (4u << 20)
/* Reassembly buffer capacity kept between frames, bytes. */
#define RX_KEEP (256u * 1024)
/*
 * Largest frame accepted before HELLO, bytes. HELLO is a few hundred;
 * anything bigger from a peer that has not identified itself would let
 * every connection make us buffer up to max_frame (8 MiB).
 */
#define PRE_HELLO_MAX_FRAME (64u * 1024)
/* Rate-limited warnings: at most one per this period, ns. */
#define WARN_EVERY_NS (10 * INT64_C(1000000000))
/* After accept ran out of descriptors, accept again after this, ms. */
#define ACCEPT_RETRY_MS 100
/* Connections accepted per listener wakeup, so sessions get a turn. */
#define ACCEPT_BATCH 64
/* Period of the silence check and of writing agents' link state, ms. */
#define TICK_MS 1000
/* Heartbeat assumed for an agent that did not say (older agents), ms. */
#define DEFAULT_HEARTBEAT_MS 30000
/* Heartbeats missed before an agent is declared silent. */
#define SILENT_AFTER 3

enum sess_state {
    SESS_TLS,    /* TLS handshake running */
    SESS_HELLO,  /* TLS up, waiting for HELLO */
    SESS_ACTIVE, /* WELCOME sent; events flow */
    SESS_CLOSING /* tc_tls_close called; waiting for on_close */
};

struct agent {
    char *name;              /* owned; certificate CN */
    struct agent *hnext;     /* hash chain */
    uint64_t epoch;          /* spool epoch of the current spool */
    int has_epoch;           /* 0 for an agent never seen with events */
    uint64_t durable_hwm;    /* highest seq committed to the store */
    uint64_t queued_hwm;     /* highest seq handed to ingest */
    int64_t last_seen;       /* ns since the epoch, last frame */
    uint64_t spool_depth;    /* events queued at the agent (last PING) */
    uint64_t spool_bytes;    /* bytes of those */
    char *software;          /* owned; HELLO/PING software or NULL */
    char address[64];        /* "ip:port" of the last connection */
    uint64_t heartbeat_ms;   /* PING period from HELLO; 0 = not said */
    int64_t silent_since;    /* ns: last heard from before it was declared
                                silent; 0 = not silent. Persisted. */
    uint64_t collector_seq;  /* last seq of our own events about it */
    int dirty;               /* link state changed since last written */
    struct session *session; /* connected session, or NULL; borrowed */
};

struct session {
    struct server *srv;          /* borrowed */
    struct tc_tls_conn *conn;    /* owned by tls; NULL after on_close */
    struct agent *agent;         /* set by HELLO; borrowed from srv */
    struct session *prev, *next; /* srv->sessions list */
    enum sess_state state;
    struct tc_buf rx;      /* one partial frame; max = that frame */
    struct tc_buf tx;      /* encode scratch; capped at TX_MAX */
    struct tc_frame frame; /* reused for every decode */
    uv_timer_t timer;      /* handshake deadline, then idle check */
    int64_t last_rx;       /* monotonic ns of the last frame */
    char label[320];       /* "name (ip:port)" for log lines */
    uint64_t frames;       /* frames decoded */
    uint64_t events;       /* events accepted */
    uint64_t dups;         /* events dropped as replays */
    /* Budgets (max_pending, session_memory); see on_data. */
    struct session *pprev, *pnext; /* srv pending queue, oldest first */
    int pending;                   /* 1 while in the pending queue */
    struct session *wprev, *wnext; /* srv memory wait queue */
    int waiting;                   /* 1 while in it (reading stopped) */
    size_t mem_rx; /* bytes charged to session_memory for rx (its cap) */
    size_t mem_tx; /* bytes charged for tx and TLS output not sent */
};

/* A warning any peer can trigger, logged at most once per WARN_EVERY_NS. */
struct warn {
    int64_t last;    /* mono ns it was last logged; 0 = never */
    uint64_t missed; /* occurrences held back since then */
};

struct server {
    uv_loop_t *loop;                    /* borrowed */
    const struct collector_config *cfg; /* borrowed */
    struct tc_tls_ctx *tls;             /* borrowed */
    struct store *store;                /* borrowed; used by ingest */
    struct ingest *ingest;              /* owned */
    struct tc_wire_limits limits;
    uv_os_sock_t lfd;        /* listening socket; -1 when none */
    uv_poll_t lpoll;         /* readable lfd: connections to accept */
    uv_timer_t accept_retry; /* resumes lpoll after EMFILE */
    int listening;           /* lpoll and accept_retry initialised */
    int listener_closed;     /* both closed (2 close callbacks) */
    int lhandles;            /* of those, not closed yet */

    struct session *sessions; /* open sessions, owned */
    uint32_t nsessions;       /* in the list */
    uint32_t nalive;          /* allocated, until freed */
    struct agent **buckets;   /* agents hash; owned */
    size_t nbuckets;          /* power of two */
    uint32_t nagents;
    uv_timer_t tick; /* silence check, agent state writes */
    int ticking;     /* tick initialised */
    int tick_closed;
    int64_t started_at; /* ns since the epoch: grace for silence */
    int64_t resumed_at; /* ns: last tick under backpressure */
    int stopping;
    int drained;
    int done;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    void (*commit_fn)(void *arg); /* server_on_commit */
    void *commit_arg;
    struct server_stats st;

    /* Budgets; see "Session budgets" in docs/internals/collector.md. */
    struct session *pend_head, *pend_tail; /* not past HELLO; borrowed */
    uint32_t npending;                     /* in that queue */
    uint32_t nactive;                      /* sessions past HELLO, open */
    struct session *wait_head, *wait_tail; /* waiting for memory */
    uint64_t mem_used;                     /* bytes charged by sessions */
    int waking;                            /* inside mem_wake */
    struct warn mem_warn;                  /* session_memory full */
    struct warn accept_warn;               /* accept failed (EMFILE...) */
    struct warn evict_warn;                /* oldest pending closed */
    struct warn ident_warn;                /* sessions_per_agent reached */
    struct warn full_warn;                 /* max_agents reached */
};

static void session_close(struct session *s, const char *reason);
static void session_bye(struct session *s, const char *reason);
static void check_done(struct server *srv);
static void mem_wake(struct server *srv);

/*
 * A warning that a peer can trigger at will: returns 1 when it may be
 * logged now (*missed says how many were held back since the last
 * one), 0 when it is only counted.
 */
static int
warn_due(struct warn *w, uint64_t *missed)
{
    int64_t now = tc_mono_ns();

    if (w->last != 0 && now - w->last < WARN_EVERY_NS) {
        w->missed++;
        return 0;
    }
    *missed = w->missed;
    w->missed = 0;
    w->last = now;
    return 1;
}

/* Peer values (a heartbeat in ms) times a constant, saturating. */
static int64_t
mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;

    if (__builtin_mul_overflow(a, b, &r) || r > (uint64_t)INT64_MAX)
        return INT64_MAX;
    return (int64_t)r;
}

/* ------------------------------------------------------------------ */
/* Agents table                                                        */

static struct agent *
agent_find(struct server *srv, const char *name, size_t len)
{
    struct agent *a = srv->buckets[tc_hash64(name, len) & (srv->nbuckets - 1)];

    for (; a != NULL; a = a->hnext)
        if (strncmp(a->name, name, len) == 0 && a->name[len] == '\0')
            return a;
    return NULL;
}

static void
agents_grow(struct server *srv)
{
    size_t nb = srv->nbuckets * 2;
    struct agent **b = tc_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < srv->nbuckets; i++) {
        struct agent *a = srv->buckets[i], *next;
        for (; a != NULL; a = next) {
            size_t h = tc_hash64(a->name, strlen(a->name)) & (nb - 1);
            next = a->hnext;
            a->hnext = b[h];
            b[h] = a;
        }
    }
    free(srv->buckets);
    srv->buckets = b;
    srv->nbuckets = nb;
}

static struct agent *
agent_get(struct server *srv, const char *name)
{
    size_t len = strlen(name), h;
    struct agent *a = agent_find(srv, name, len);

    if (a != NULL)
        return a;
    if (srv->nagents >= srv->nbuckets)
        agents_grow(srv);
    a = tc_xcalloc(1, sizeof(*a));
    a->name = tc_xstrdup(name);
    h = tc_hash64(name, len) & (srv->nbuckets - 1);
    a->hnext = srv->buckets[h];
    srv->buckets[h] = a;
    srv->nagents++;
    return a;
}

static int
load_agent_cb(const struct store_agent *sa, void *arg)
{
    struct agent *a = agent_get(arg, sa->name);

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

/* ------------------------------------------------------------------ */
/* Agent link state and silence                                        */

/* Queue the agent's link state for the next commit. */
static int
agent_flush(struct server *srv, struct agent *a)
{
    struct store_agent_state st;
    int rc;

    memset(&st, 0, sizeof(st));
    st.name = a->name;
    st.connected = a->session != NULL;
    st.last_seen = a->last_seen;
    st.software = a->software;
    st.address = a->address[0] ? a->address : NULL;
    st.spool_depth = a->spool_depth;
    st.spool_bytes = a->spool_bytes;
    st.heartbeat_ms = a->heartbeat_ms;
    st.silent_since = a->silent_since;
    st.collector_seq = a->collector_seq;
    if ((rc = ingest_agent_state(srv->ingest, &st)) == 0)
        a->dirty = 0;
    return rc;
}

/* "95s", "3m12s", "2h05m", "4d03h": how long, for a person. */
static void
fmt_dur(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns > 0 ? ns / 1000000000 : 0;

    if (s < 120)
        snprintf(buf, len, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400,
                 s / 3600 % 24);
}

static void
fmt_hb(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/*
 * Store an event of kind "agent", rule "agent-silent", about a, made by
 * the collector. It takes the next seq of the collector's own seq space
 * for a, and a's state (silent_since, collector_seq) is queued right
 * behind it, so both land in the same transaction: after a crash either
 * both are stored or neither, and a restart neither repeats nor loses
 * the event.
 */
static int
agent_event(struct server *srv, struct agent *a, enum tc_severity sev,
            const char *msg, int64_t now)
{
    struct ingest_src src;
    struct tc_event ev;
    int rc;

    memset(&ev, 0, sizeof(ev));
    ev.seq = a->collector_seq + 1;
    ev.ts = now;
    ev.host = tc_str_c(a->name);
    ev.kind = tc_str_c("agent");
    ev.source = tc_str_c("collector");
    ev.rule = tc_str_c("agent-silent");
    ev.sev = sev;
    ev.state = -1;
    ev.message = tc_str_c(msg);
    ev.count = 1;
    memset(&src, 0, sizeof(src));
    src.agent = a->name;
    src.now = now;
    src.collector = 1;
    if ((rc = ingest_append(srv->ingest, &src, &ev, 1)) < 0) {
        log_warnx("agent %s: cannot store \"%s\": %s", a->name, msg,
                  strerror(-rc));
        return rc;
    }
    a->collector_seq++;
    /* Cannot fail now: it fails only while draining, as append would. */
    agent_flush(srv, a);
    return 0;
}

/* A frame from a: it is alive. If it was declared silent, say it is back. */
static void
agent_heard(struct server *srv, struct agent *a, int64_t now)
{
    char msg[512], dur[32];
    int64_t since = a->silent_since;

    a->last_seen = now;
    if (since == 0)
        return;
    fmt_dur(now - since, dur, sizeof(dur));
    snprintf(msg, sizeof(msg), "agent %s is back after %s", a->name, dur);
    a->silent_since = 0;
    if (agent_event(srv, a, TC_SEV_OK, msg, now) < 0) {
        a->silent_since = since; /* shutting down: the next run says it */
        return;
    }
    log_info("%s", msg);
}

static void
agent_check_silent(struct server *srv, struct agent *a, int64_t now)
{
    uint64_t hb = a->heartbeat_ms ? a->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    /* hb came from the peer (or a store written before it was bounded). */
    int64_t limit = mul_sat(hb, (uint64_t)SILENT_AFTER * 1000000);
    int64_t ref = a->last_seen, since;
    char msg[512], dur[32], hbs[32], iso[TC_RFC3339_MAX];

    if (a->silent_since != 0)
        return; /* said once; "back" comes with its next frame */
    /* Waiting for session memory: we are the ones not reading it. */
    if (a->session != NULL && a->session->waiting)
        return;
    /*
     * Not before SILENT_AFTER periods of this collector run, whatever
     * the stored last_seen: while we were down nobody could hear it.
     * Nor while backpressure kept us from reading its session.
     */
    if (ref < srv->started_at)
        ref = srv->started_at;
    if (a->session != NULL && ref < srv->resumed_at)
        ref = srv->resumed_at;
    if (now - ref < limit)
        return;
    since = a->last_seen > 0 ? a->last_seen : srv->started_at;
    fmt_dur(now - since, dur, sizeof(dur));
    fmt_hb(hb, hbs, sizeof(hbs));
    tc_rfc3339(since, 0, iso, sizeof(iso));
    snprintf(msg, sizeof(msg),
             "agent %s silent for %s (heartbeat %s, last "
             "seen %s)",
             a->name, dur, hbs, iso);
    a->silent_since = since;
    if (agent_event(srv, a, TC_SEV_CRITICAL, msg, now) < 0) {
        a->silent_since = 0;
        return;
    }
    log_warnx("%s", msg);
}

/*
 * Once a second: declare silent agents, and write the link state of
 * agents whose state changed (connect, disconnect, PING). Writing at
 * most once a second keeps heartbeats of many agents from costing one
 * commit each; the rows ride along with the next group commit.
 */
static void
tick_cb(uv_timer_t *t)
{
    struct server *srv = t->data;
    int64_t now = tc_now_ns();

    if (srv->stopping)
        return;
    if (ingest_paused(srv->ingest))
        srv->resumed_at = now;
    for (size_t i = 0; i < srv->nbuckets; i++) {
        for (struct agent *a = srv->buckets[i]; a != NULL; a = a->hnext) {
            agent_check_silent(srv, a, now);
            if (a->dirty)
                agent_flush(srv, a);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Session budgets: pending connections and memory                     */

static void
pending_add(struct session *s)
{
    struct server *srv = s->srv;

    s->pprev = srv->pend_tail;
    s->pnext = NULL;
    if (srv->pend_tail)
        srv->pend_tail->pnext = s;
    else
        srv->pend_head = s;
    srv->pend_tail = s;
    s->pending = 1;
    srv->npending++;
}

static void
pending_remove(struct session *s)
{
    struct server *srv = s->srv;

    if (!s->pending)
        return;
    if (s->pprev)
        s->pprev->pnext = s->pnext;
    else
        srv->pend_head = s->pnext;
    if (s->pnext)
        s->pnext->pprev = s->pprev;
    else
        srv->pend_tail = s->pprev;
    s->pprev = s->pnext = NULL;
    s->pending = 0;
    srv->npending--;
}

static void
wait_add(struct session *s)
{
    struct server *srv = s->srv;

    s->wprev = srv->wait_tail;
    s->wnext = NULL;
    if (srv->wait_tail)
        srv->wait_tail->wnext = s;
    else
        srv->wait_head = s;
    srv->wait_tail = s;
    s->waiting = 1;
}

static void
wait_remove(struct session *s)
{
    struct server *srv = s->srv;

    if (!s->waiting)
        return;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        srv->wait_head = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    else
        srv->wait_tail = s->wprev;
    s->wprev = s->wnext = NULL;
    s->waiting = 0;
}

/* Set s's charge (*field: mem_rx or mem_tx) to bytes; a release wakes. */
static void
mem_set(struct session *s, size_t *field, size_t bytes)
{
    struct server *srv = s->srv;
    size_t old = *field;

    srv->mem_used = srv->mem_used - old + bytes;
    *field = bytes;
    if (bytes < old && srv->wait_head != NULL)
        mem_wake(srv);
}

/* 1 if extra more bytes stay within limits.session_memory. */
static int
mem_fits(const struct server *srv, size_t extra)
{
    uint64_t cap = srv->cfg->session_memory;

    return srv->mem_used <= cap && extra <= cap - srv->mem_used;
}

/* Read from s again, unless something else still holds it back. */
static void
session_resume(struct session *s)
{
    struct server *srv = s->srv;

    if (s->conn == NULL || s->state == SESS_CLOSING || srv->stopping ||
        s->waiting)
        return;
    if (s->state == SESS_ACTIVE && ingest_paused(srv->ingest))
        return;
    tc_tls_read_start(s->conn);
}

/* Give back an empty rx buffer: an idle session holds no budget. */
static void
rx_release(struct session *s)
{
    tc_buf_close(&s->rx);
    tc_buf_init(&s->rx, TC_WIRE_HDR);
    mem_set(s, &s->mem_rx, 0);
}

/*
 * Sessions keep up to RX_KEEP of buffer between frames, which saves a
 * realloc per frame while memory is plenty; when it is not, take those
 * back before anyone waits.
 */
static void
mem_reclaim(struct server *srv)
{
    for (struct session *s = srv->sessions; s != NULL; s = s->next)
        if (s->rx.cap > 0 && tc_buf_size(&s->rx) == 0)
            rx_release(s);
}

/*
 * Make room in s->rx for the whole frame being received, total bytes
 * with its header, from limits.session_memory: reserving the whole
 * frame at once (not as it trickles in) is what lets every session that
 * got memory finish its frame, so the budget cannot deadlock; a holder
 * that stalls is closed by the idle or handshake timeout. 0, or
 * -ENOBUFS if the budget cannot take it now. A frame that fits goes
 * ahead of bigger ones waiting: an honest agent's small batch must not
 * queue behind a hostile 8 MiB one.
 */
static int
rx_reserve(struct session *s, size_t total)
{
    struct server *srv = s->srv;
    size_t extra;

    s->rx.max = total;
    if (s->rx.cap >= total)
        return 0;
    extra = total - s->rx.cap;
    if (!mem_fits(srv, extra)) {
        mem_reclaim(srv);
        if (!mem_fits(srv, extra))
            return -ENOBUFS;
    }
    /* Cannot fail: total is within max, which caps the capacity too. */
    tc_buf_reserve(&s->rx, total - tc_buf_size(&s->rx));
    mem_set(s, &s->mem_rx, s->rx.cap);
    return 0;
}

/*
 * The budget is full: stop reading s until its frame fits (mem_wake).
 * Backpressure, not loss: TCP holds the rest of the frame at the peer.
 */
static void
session_wait(struct session *s, size_t total)
{
    struct server *srv = s->srv;
    uint64_t missed;

    wait_add(s);
    tc_tls_read_stop(s->conn);
    srv->st.mem_waits++;
    if (warn_due(&srv->mem_warn, &missed))
        log_warnx("session memory full (%" PRIu64 " of %" PRIu64
                  " bytes): agent %s waits to receive a frame of %zu "
                  "bytes (%" PRIu64 " more waits since the last warning)",
                  srv->mem_used, srv->cfg->session_memory, s->label, total,
                  missed);
}

/* Memory came back: resume waiting sessions that fit, oldest first. */
static void
mem_wake(struct server *srv)
{
    struct session *s, *next;

    if (srv->waking)
        return;
    srv->waking = 1;
    for (s = srv->wait_head; s != NULL; s = next) {
        size_t total = s->rx.max;

        next = s->wnext;
        if (total > s->rx.cap && !mem_fits(srv, total - s->rx.cap))
            continue;
        if (total > s->rx.cap) {
            tc_buf_reserve(&s->rx, total - tc_buf_size(&s->rx));
            mem_set(s, &s->mem_rx, s->rx.cap);
        }
        wait_remove(s);
        session_resume(s);
    }
    srv->waking = 0;
}

/*
 * Close the oldest connection that has not said HELLO, to make room for
 * a new one (max_pending) or a descriptor (accept out of them). quiet:
 * the caller logs.
 */
static void
pending_evict(struct server *srv, int quiet)
{
    struct session *old = srv->pend_head;
    uint64_t missed;

    if (old == NULL)
        return;
    srv->st.evicted++;
    if (!quiet && warn_due(&srv->evict_warn, &missed))
        log_warnx("connection %s closed: %" PRIu32
                  " connections have not said HELLO (limits.max_pending), "
                  "the oldest makes room (%" PRIu64
                  " more since the last warning)",
                  old->label[0] ? old->label : "?", srv->npending, missed);
    pending_remove(old);
    if (old->state == SESS_HELLO)
        session_bye(old, "too many connections waiting for HELLO");
    else
        session_close(old, "too many connections waiting for HELLO");
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

/* Copy a peer-supplied string for a log line, defanging control bytes. */
static const char *
safe(char *dst, size_t dlen, const char *p, size_t n)
{
    size_t j = 0;

    for (size_t i = 0; i < n && j + 1 < dlen; i++) {
        unsigned char c = (unsigned char)p[i];
        dst[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[j] = '\0';
    return dst;
}

/* Send the frame just encoded into s->tx. */
static int
session_flush(struct session *s)
{
    size_t pending;
    int rc;

    if (s->conn == NULL || s->state == SESS_CLOSING) {
        tc_buf_reset(&s->tx);
        return -EPIPE;
    }
    rc = tc_tls_write(s->conn, tc_buf_head(&s->tx), tc_buf_size(&s->tx));
    tc_buf_reset(&s->tx);
    if (rc < 0)
        return rc;
    pending = tc_tls_write_pending(s->conn);
    /* Counted until on_drain; between flushes the count errs high. */
    mem_set(s, &s->mem_tx, s->tx.cap + pending);
    /*
     * Output is not refused (acks must flow), but a peer that leaves it
     * unread while the budget is full is closed rather than grown.
     */
    if (pending > TX_PENDING_MAX ||
        (pending > TX_MAX && s->srv->mem_used > s->srv->cfg->session_memory)) {
        log_warnx("agent %s: not reading (%zu bytes unsent): closing", s->label,
                  pending);
        s->srv->st.protocol_errors++;
        session_close(s, "peer not reading");
        return -ENOBUFS;
    }
    return 0;
}

static void
send_bye(struct session *s, const char *reason)
{
    struct tc_bye m = {tc_str_c(reason)};

    if (tc_wire_encode_bye(&s->tx, &m) == 0)
        session_flush(s);
}

static void
send_ack(struct session *s, uint64_t seq)
{
    struct tc_ack m = {seq};

    if (tc_wire_encode_ack(&s->tx, &m) == 0)
        session_flush(s);
}

/* Close with a BYE carrying reason (logged by the caller). */
static void
session_bye(struct session *s, const char *reason)
{
    if (s->state == SESS_CLOSING)
        return;
    send_bye(s, reason);
    session_close(s, reason);
}

/*
 * Bad input from the peer: log it with who and why, tell the peer,
 * count it, close. Never more than that: the daemon carries on.
 */
static void session_fail(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
session_fail(struct session *s, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    log_warnx("agent %s: %s", s->label, reason);
    s->srv->st.protocol_errors++;
    session_bye(s, reason);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */

static void
handle_hello(struct session *s)
{
    struct server *srv = s->srv;
    const struct tc_hello *h = &s->frame.u.hello;
    const char *cn = tc_tls_peer_name(s->conn);
    char claim[128], sw[128];
    struct tc_welcome w;
    struct agent *a;
    int rc;

    if (h->agent.len != strlen(cn) || cn[0] == '\0' ||
        memcmp(h->agent.ptr, cn, h->agent.len) != 0) {
        log_warnx("agent %s: refused: HELLO claims '%s' but certificate "
                  "CN is '%s'",
                  s->label,
                  safe(claim, sizeof(claim), h->agent.ptr, h->agent.len), cn);
        srv->st.refused++;
        session_bye(s, "HELLO agent name does not match the certificate");
        return;
    }
    if (h->version_min > TC_WIRE_VERSION || h->version_max < TC_WIRE_VERSION) {
        log_warnx("agent %s: refused: no common protocol version (agent "
                  "%" PRIu32 "-%" PRIu32 ", collector %d)",
                  s->label, h->version_min, h->version_max, TC_WIRE_VERSION);
        srv->st.refused++;
        session_bye(s, "no common protocol version");
        return;
    }

    /*
     * max_agents counts agents that said HELLO; a replacing session
     * does not add one.
     */
    a = agent_find(srv, cn, strlen(cn));
    if ((a == NULL || a->session == NULL) &&
        srv->nactive >= srv->cfg->max_agents) {
        uint64_t missed;

        if (warn_due(&srv->full_warn, &missed))
            log_warnx("agent %s: refused: %" PRIu32
                      " agents connected (limits.max_agents) (%" PRIu64
                      " more since the last warning)",
                      s->label, srv->nactive, missed);
        srv->st.rejected++;
        session_bye(s, "collector full (max_agents)");
        return;
    }
    a = agent_get(srv, cn);
    if (a->session != NULL && a->session != s) {
        struct session *old = a->session;

        log_info("agent %s: replaced by a new connection from %s", old->label,
                 tc_tls_peer_addr(s->conn));
        srv->st.replaced++;
        a->session = NULL;
        session_bye(old, "replaced by a new connection");
    }

    /*
     * Seqs are unique per agent across spool epochs: a new spool
     * renumbers its unsent events to start after the hwm it is told
     * (docs/protocol.md, session step 3), so the marks carry over. For
     * a new epoch the hwm told is the queued one, so that its events
     * cannot collide with old-epoch events still in the pipeline; the
     * new spool deletes nothing on it, it only numbers after it.
     */
    memset(&w, 0, sizeof(w));
    w.version = TC_WIRE_VERSION;
    w.collector = tc_str_c(srv->cfg->name);
    w.epoch_known = a->has_epoch && a->epoch == h->epoch;
    w.hwm = w.epoch_known ? a->durable_hwm : a->queued_hwm;
    if (!w.epoch_known) {
        if (a->has_epoch)
            log_info("agent %s: new spool epoch %016" PRIx64 " (was %016" PRIx64
                     "), numbering after seq %" PRIu64,
                     s->label, h->epoch, a->epoch, w.hwm);
        a->epoch = h->epoch;
        a->has_epoch = 1;
    }
    free(a->software);
    a->software =
        h->software.len ? tc_xstrndup(h->software.ptr, h->software.len) : NULL;
    a->heartbeat_ms = h->heartbeat_ms;
    snprintf(a->address, sizeof(a->address), "%s", tc_tls_peer_addr(s->conn));
    a->session = s;
    a->dirty = 1;
    s->agent = a;
    srv->nactive++;
    pending_remove(s);
    agent_heard(srv, a, tc_now_ns());
    s->state = SESS_ACTIVE;
    if ((rc = tc_wire_encode_welcome(&s->tx, &w)) < 0 ||
        (rc = session_flush(s)) < 0)
        return;
    log_info("agent %s: connected (%s, epoch %016" PRIx64
             "%s, resuming after seq %" PRIu64 ")",
             s->label, safe(sw, sizeof(sw), h->software.ptr, h->software.len),
             h->epoch, w.epoch_known ? "" : " new", w.hwm);
    /* Under backpressure a new session may say hello, not send events. */
    if (ingest_paused(srv->ingest))
        tc_tls_read_stop(s->conn);
}

/*
 * Refuse a batch whose new events would move the agent's mark too far
 * or past the top of the seq range (common/seq.h): from a stolen key,
 * seq 2^64-1 would otherwise leave the real agent's next fresh spool
 * nowhere to number. The session is closed with a BYE and nothing of
 * the batch is stored. 0 if the batch may go on.
 */
static int
events_in_bounds(struct session *s, const struct tc_events *e)
{
    char why[160];

    if (tc_seq_check(s->agent->queued_hwm, e->ev[e->n - 1].seq, why,
                     sizeof(why)) == 0)
        return 0;
    session_fail(s, "EVENTS refused, nothing stored: %s", why);
    return -ERANGE;
}

static void
handle_events(struct session *s)
{
    struct server *srv = s->srv;
    struct agent *a = s->agent;
    const struct tc_events *e = &s->frame.u.events;
    struct ingest_src src;
    uint32_t i = 0;
    int rc;

    if (e->n == 0)
        return;
    /* The decoder guarantees increasing seqs: replays are a prefix. */
    while (i < e->n && e->ev[i].seq <= a->queued_hwm)
        i++;
    s->dups += i;
    srv->st.duplicates += i;
    if (i == e->n) {
        /*
         * Nothing new. If it is all durable already, say so now: no
         * commit will come to ack it.
         */
        if (e->ev[e->n - 1].seq <= a->durable_hwm)
            send_ack(s, a->durable_hwm);
        return;
    }
    if (events_in_bounds(s, e) < 0)
        return;
    memset(&src, 0, sizeof(src));
    src.agent = a->name;
    src.epoch = a->epoch;
    src.software = a->software;
    src.now = a->last_seen;
    if ((rc = ingest_append(srv->ingest, &src, e->ev + i, e->n - i)) < 0) {
        /* Only while shutting down: unacked, so the agent resends. */
        log_debug("agent %s: events not queued: %s", s->label, strerror(-rc));
        return;
    }
    a->queued_hwm = e->ev[e->n - 1].seq;
    s->events += e->n - i;
    srv->st.events += e->n - i;
}

static void
handle_ping(struct session *s)
{
    const struct tc_ping *p = &s->frame.u.ping;
    struct tc_pong m = {p->ts};

    struct agent *a = s->agent;

    a->spool_depth = p->spool_depth;
    a->spool_bytes = p->spool_bytes;
    /* An agent upgraded in place says so here before it reconnects. */
    if (p->version.len > 0 &&
        (a->software == NULL || strlen(a->software) != p->version.len ||
         memcmp(a->software, p->version.ptr, p->version.len) != 0)) {
        free(a->software);
        a->software = tc_xstrndup(p->version.ptr, p->version.len);
    }
    a->dirty = 1;
    if (tc_wire_encode_pong(&s->tx, &m) == 0)
        session_flush(s);
}

static void
handle_frame(struct session *s, const uint8_t *body, size_t len)
{
    const char *err = "unknown error";
    char why[128];
    int rc;

    rc = tc_wire_decode(body, len, &s->srv->limits, &s->frame, &err);
    if (rc < 0) {
        session_fail(s, "malformed frame: %s", err);
        return;
    }
    s->frames++;
    s->srv->st.frames++;
    s->last_rx = tc_mono_ns();
    if (s->state == SESS_HELLO) {
        if (s->frame.type != TC_F_HELLO) {
            session_fail(s, "expected HELLO, got %s",
                         tc_frame_type_name(s->frame.type));
            return;
        }
        handle_hello(s);
        return;
    }
    if (s->agent != NULL)
        agent_heard(s->srv, s->agent, tc_now_ns());
    switch (s->frame.type) {
    case TC_F_EVENTS:
        handle_events(s);
        break;
    case TC_F_PING:
        handle_ping(s);
        break;
    case TC_F_HINT_ACK:
        /* Hints are not sent yet; a later issue delivers and tracks them. */
        break;
    case TC_F_BYE:
        log_info("agent %s: said goodbye: %s", s->label,
                 safe(why, sizeof(why), s->frame.u.bye.reason.ptr,
                      s->frame.u.bye.reason.len));
        session_close(s, "agent said goodbye");
        break;
    default:
        session_fail(s, "unexpected %s frame",
                     tc_frame_type_name(s->frame.type));
        break;
    }
}

/* The length a frame header (4 bytes at p) announces. */
static uint32_t
frame_len(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Largest frame s may send now: small until it has said who it is. */
static uint32_t
frame_max(const struct session *s)
{
    return s->state == SESS_ACTIVE ? s->srv->limits.max_frame
                                   : PRE_HELLO_MAX_FRAME;
}

/* tc_wire_next refused the header at hdr (r): say why, close. */
static void
frame_refused(struct session *s, long r, const uint8_t *hdr)
{
    if (r == -EBADMSG)
        session_fail(s, "frame length 0 (no frame is empty)");
    else if (s->state != SESS_ACTIVE)
        session_fail(s,
                     "frame of %" PRIu32 " bytes before HELLO (limit %u "
                     "bytes)",
                     frame_len(hdr), PRE_HELLO_MAX_FRAME);
    else
        session_fail(s, "frame length %" PRIu32 " over %" PRIu32 " bytes",
                     frame_len(hdr), s->srv->limits.max_frame);
}

/*
 * Handle every whole frame in p[0..n). Returns the bytes consumed, or
 * -1 if the session is closing and the rest must be ignored.
 */
static long
process(struct session *s, const uint8_t *p, size_t n)
{
    const uint8_t *body;
    size_t off = 0, blen;
    long r;

    while (s->state != SESS_CLOSING) {
        r = tc_wire_next(p + off, n - off, frame_max(s), &body, &blen);
        if (r == 0)
            return (long)off;
        if (r < 0) {
            frame_refused(s, r, p + off);
            break;
        }
        handle_frame(s, body, blen);
        off += (size_t)r;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* TLS callbacks                                                       */

static void
on_ready(struct tc_tls_conn *c)
{
    struct session *s = tc_tls_get_data(c);
    struct server *srv = s->srv;
    const char *cn = tc_tls_peer_name(c);
    uint32_t n = 0;
    uint64_t missed;

    s->state = SESS_HELLO;
    snprintf(s->label, sizeof(s->label), "%s (%s)", cn, tc_tls_peer_addr(c));
    if (srv->stopping) {
        session_bye(s, "collector shutting down");
        return;
    }
    /*
     * One certificate, a few sessions: a reconnecting agent replaces
     * its stale session (handle_hello), but a stolen key must not open
     * thousands. A walk, not a table: it is cheap beside the handshake
     * that just ended.
     */
    for (struct session *o = srv->sessions; o != NULL; o = o->next)
        if (o != s && o->conn != NULL &&
            (o->state == SESS_HELLO || o->state == SESS_ACTIVE) &&
            strcmp(tc_tls_peer_name(o->conn), cn) == 0)
            n++;
    if (n >= srv->cfg->sessions_per_agent) {
        if (warn_due(&srv->ident_warn, &missed))
            log_warnx("agent %s: refused: %" PRIu32
                      " sessions with this certificate are open "
                      "(limits.sessions_per_agent) (%" PRIu64
                      " more since the last warning)",
                      s->label, n, missed);
        srv->st.refused++;
        session_bye(s, "too many sessions with this certificate");
    }
}

static void
on_drain(struct tc_tls_conn *c)
{
    struct session *s = tc_tls_get_data(c);

    mem_set(s, &s->mem_tx, s->tx.cap);
}

/*
 * Decrypted bytes. Whole frames are decoded in place; only a partial
 * frame is copied into s->rx, and only after its length prefix passed
 * frame_max, with the whole frame reserved from session_memory (or the
 * session waits for it, reading stopped). rx never holds more than
 * that one frame.
 */
static void
on_data(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    struct session *s = tc_tls_get_data(c);
    struct server *srv = s->srv;
    const uint8_t *body;
    size_t size, total, take, blen;
    long r;

    if (s->state == SESS_CLOSING || srv->stopping)
        return;
    while (n > 0) {
        if (tc_buf_size(&s->rx) == 0) {
            if ((r = process(s, p, n)) < 0)
                return;
            p += r;
            n -= (size_t)r;
            if (n == 0)
                break;
        }
        size = tc_buf_size(&s->rx);
        if (size < TC_WIRE_HDR) {
            /* The length first: no body byte is kept before it passed. */
            take = TC_WIRE_HDR - size < n ? TC_WIRE_HDR - size : n;
            s->rx.max = TC_WIRE_HDR;
            tc_buf_append(&s->rx, p, take);
            mem_set(s, &s->mem_rx, s->rx.cap);
            p += take;
            n -= take;
            if (tc_buf_size(&s->rx) < TC_WIRE_HDR)
                break;
            r = tc_wire_next(tc_buf_head(&s->rx), TC_WIRE_HDR, frame_max(s),
                             &body, &blen);
            if (r < 0) {
                frame_refused(s, r, tc_buf_head(&s->rx));
                return;
            }
            total = TC_WIRE_HDR + (size_t)frame_len(tc_buf_head(&s->rx));
            if (rx_reserve(s, total) < 0)
                session_wait(s, total);
        }
        /*
         * Up to the end of this frame. While waiting for memory, what
         * TLS already handed over is kept all the same: at most one
         * read (64 KiB) beyond the budget per session.
         */
        total = s->rx.max;
        size = tc_buf_size(&s->rx);
        take = total - size < n ? total - size : n;
        tc_buf_append(&s->rx, p, take);
        mem_set(s, &s->mem_rx, s->rx.cap);
        p += take;
        n -= take;
        if (tc_buf_size(&s->rx) < total)
            break;
        if ((r = process(s, tc_buf_head(&s->rx), total)) < 0)
            return;
        tc_buf_reset(&s->rx);
        if (s->waiting) {
            /* It came whole from what was already read. */
            wait_remove(s);
            session_resume(s);
        }
        /*
         * Keep a small buffer for the next frame, unless it is big or
         * others wait for memory: idle agents must not pin megabytes.
         */
        if (s->rx.cap > RX_KEEP || srv->wait_head != NULL)
            rx_release(s);
    }
}

static void
session_free_cb(uv_handle_t *h)
{
    struct session *s = h->data;
    struct server *srv = s->srv;

    tc_buf_close(&s->rx);
    tc_buf_close(&s->tx);
    tc_frame_close(&s->frame);
    free(s);
    srv->nalive--;
    if (srv->stopping)
        check_done(srv);
}

static void
on_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct session *s = tc_tls_get_data(c);
    struct server *srv = s->srv;

    pending_remove(s);
    wait_remove(s);
    if (s->agent != NULL) {
        srv->nactive--;
        log_info("agent %s: disconnected: %s (%" PRIu64 " events, %" PRIu64
                 " duplicates)",
                 s->label, reason, s->events, s->dups);
        if (s->agent->session == s) {
            s->agent->session = NULL;
            s->agent->dirty = 1;
        }
    } else {
        log_debug("connection %s closed before HELLO: %s",
                  s->label[0] ? s->label : "?", reason);
    }
    s->conn = NULL;
    s->state = SESS_CLOSING;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    /* Its buffers go with it: others may be waiting for them. */
    mem_set(s, &s->mem_tx, 0);
    mem_set(s, &s->mem_rx, 0);
    uv_close((uv_handle_t *)&s->timer, session_free_cb);
}

static const struct tc_tls_cbs session_cbs = {
    .on_ready = on_ready,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_close = on_close,
};

static void
session_close(struct session *s, const char *reason)
{
    /* No longer a candidate for eviction, nor counted as pending. */
    pending_remove(s);
    if (s->state == SESS_CLOSING || s->conn == NULL)
        return;
    s->state = SESS_CLOSING;
    uv_timer_stop(&s->timer);
    tc_tls_close(s->conn, reason);
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */

static void
session_timer_cb(uv_timer_t *t)
{
    struct session *s = t->data;
    const struct collector_config *cfg = s->srv->cfg;
    int64_t idle_ns, left;

    if (s->state == SESS_CLOSING)
        return;
    if (s->state != SESS_ACTIVE) {
        log_warnx("agent %s: no HELLO within %" PRIu64 " ms: closing",
                  s->label[0] ? s->label : "?", cfg->handshake_timeout_ms);
        s->srv->st.timeouts++;
        if (s->state == SESS_HELLO)
            session_bye(s, "handshake timeout");
        else
            session_close(s, "handshake timeout");
        return;
    }
    /*
     * Under backpressure (the pipeline's, or session_memory's for this
     * session) we are the ones not reading: silence is not the agent's
     * fault.
     */
    if (ingest_paused(s->srv->ingest) || s->waiting) {
        s->last_rx = tc_mono_ns();
        uv_timer_start(&s->timer, session_timer_cb, cfg->idle_timeout_ms, 0);
        return;
    }
    idle_ns = tc_mono_ns() - s->last_rx;
    left = (int64_t)cfg->idle_timeout_ms - idle_ns / 1000000;
    if (left > 0) {
        uv_timer_start(&s->timer, session_timer_cb, (uint64_t)left, 0);
        return;
    }
    log_warnx("agent %s: idle for %" PRId64 " s: closing", s->label,
              idle_ns / 1000000000);
    s->srv->st.timeouts++;
    session_bye(s, "idle timeout");
}

/* ------------------------------------------------------------------ */
/* Listener                                                            */

/*
 * A new connection: a pending session until it says HELLO. When
 * max_pending are pending, the oldest is closed to make room, so that
 * idle sockets from anyone who can reach the port cannot lock agents
 * out; max_agents is checked at HELLO.
 */
static void
session_start(struct server *srv, uv_os_sock_t fd)
{
    struct session *s;
    int rc;

    if (srv->npending >= srv->cfg->max_pending)
        pending_evict(srv, 0);
    s = tc_xcalloc(1, sizeof(*s));
    s->srv = srv;
    tc_buf_init(&s->rx, TC_WIRE_HDR);
    tc_buf_init(&s->tx, TX_MAX);
    tc_frame_init(&s->frame);
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    srv->nalive++;
    if ((rc = tc_tls_accept_fd(srv->loop, fd, srv->tls, &session_cbs, s,
                               &s->conn)) < 0) {
        log_warnx("accept: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&s->timer, session_free_cb);
        return;
    }
    snprintf(s->label, sizeof(s->label), "? (%s)", tc_tls_peer_addr(s->conn));
    s->state = SESS_TLS;
    s->last_rx = tc_mono_ns();
    s->next = srv->sessions;
    if (s->next)
        s->next->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    pending_add(s);
    srv->st.accepted++;
    uv_timer_start(&s->timer, session_timer_cb, srv->cfg->handshake_timeout_ms,
                   0);
    /* Under backpressure it may still say HELLO; see handle_hello. */
}

static void listener_cb(uv_poll_t *h, int status, int events);

static void
accept_retry_cb(uv_timer_t *t)
{
    struct server *srv = t->data;

    if (!srv->stopping)
        uv_poll_start(&srv->lpoll, UV_READABLE, listener_cb);
}

/*
 * accept failed with err for want of descriptors (or kernel memory), or
 * in a way we do not know: say so (rate-limited), close the oldest
 * pending connection to free a descriptor, and pause the listener for
 * ACCEPT_RETRY_MS. Pausing is what keeps the loop from spinning on a
 * listener that stays readable; meanwhile new connections wait in the
 * kernel's backlog instead of being dropped. (libuv's own listener
 * would accept and close them silently: that is why we accept here.)
 */
static void
accept_failed(struct server *srv, int err)
{
    uint64_t missed;

    srv->st.accept_errors++;
    if (warn_due(&srv->accept_warn, &missed))
        log_warnx("accept: %s: %" PRIu32 " sessions open, %" PRIu32
                  " not past HELLO; closing the oldest of those to make "
                  "room (%" PRIu64 " more failures since the last warning)",
                  strerror(err), srv->nsessions, srv->npending, missed);
    pending_evict(srv, 1);
    uv_poll_stop(&srv->lpoll);
    uv_timer_start(&srv->accept_retry, accept_retry_cb, ACCEPT_RETRY_MS, 0);
}

static void
listener_cb(uv_poll_t *h, int status, int events)
{
    struct server *srv = h->data;
    int fd;

    (void)events;
    if (status < 0) {
        accept_failed(srv, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !srv->stopping; i++) {
        fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            session_start(srv, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        /* The connection died in the queue: the next one may be fine. */
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
            errno == ENETDOWN || errno == EHOSTUNREACH || errno == ENETUNREACH)
            continue;
        accept_failed(srv, errno);
        return;
    }
}

/* Watch fd, bound and listening (listener.h); connections go to
 * listener_cb. The socket is ours from here, whatever happens. */
static int
listener_adopt(struct server *srv, int fd)
{
    int rc;

    if ((rc = uv_poll_init_socket(srv->loop, &srv->lpoll, fd)) < 0) {
        close(fd);
        return rc;
    }
    srv->lfd = fd;
    srv->lpoll.data = srv;
    uv_timer_init(srv->loop, &srv->accept_retry);
    srv->accept_retry.data = srv;
    srv->listening = 1;
    srv->lhandles = 2;
    return uv_poll_start(&srv->lpoll, UV_READABLE, listener_cb);
}

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

static void
ingest_ack_cb(void *arg, const char *name, uint64_t epoch, uint64_t hwm)
{
    struct server *srv = arg;
    struct agent *a = agent_find(srv, name, strlen(name));

    if (a == NULL)
        return;
    if (hwm > a->durable_hwm)
        a->durable_hwm = hwm;
    /*
     * A commit of an older spool epoch moves the mark (seqs are unique
     * across epochs) but is not the current spool's business.
     */
    if (a->epoch == epoch && a->session != NULL &&
        a->session->state == SESS_ACTIVE)
        send_ack(a->session, a->durable_hwm);
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
    s->tls = tls;
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
    for (struct session *s = srv->sessions; s != NULL; s = s->next) {
        if (s->conn == NULL || s->state == SESS_CLOSING)
            continue;
        /* Sessions still saying hello keep going (on_connection). */
        if (stop && s->state == SESS_ACTIVE)
            tc_tls_read_stop(s->conn);
        else if (!stop && !s->waiting)
            tc_tls_read_start(s->conn); /* waiting: mem_wake resumes it */
    }
}

int
server_new(uv_loop_t *loop, const struct collector_config *cfg,
           struct tc_tls_ctx *tls, struct store *store, struct server **out)
{
    struct server *srv = tc_xcalloc(1, sizeof(*srv));
    struct ingest_opts io = {cfg->pipeline_max_bytes, cfg->commit_interval_ms};
    struct ingest_cbs cbs = {ingest_ack_cb, ingest_pressure_cb,
                             ingest_commit_cb};
    int rc;

    *out = NULL;
    srv->loop = loop;
    srv->cfg = cfg;
    srv->tls = tls;
    srv->store = store;
    srv->limits = tc_wire_default_limits;
    srv->lfd = -1;
    srv->nbuckets = 64;
    srv->buckets = tc_xcalloc(srv->nbuckets, sizeof(*srv->buckets));
    /* No session survives a restart, whatever the last run wrote. */
    if ((rc = store_agents_disconnected(store)) < 0 ||
        (rc = store_load_agents(store, load_agent_cb, srv)) < 0) {
        log_warnx("store: cannot load agents: %s", store_errmsg(store));
        goto fail;
    }
    srv->started_at = tc_now_ns();
    if ((rc = ingest_new(loop, store, &io, &cbs, srv, &srv->ingest)) < 0) {
        log_warnx("ingest: %s", uv_strerror(rc));
        goto fail;
    }
    log_debug("%" PRIu32 " agents known", srv->nagents);
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
    if ((rc = listener_adopt(srv, lfd)) < 0) {
        log_warnx("listen %s: %s", srv->cfg->listen, uv_strerror(rc));
        return rc;
    }
    uv_timer_init(srv->loop, &srv->tick);
    srv->tick.data = srv;
    srv->ticking = 1;
    uv_timer_start(&srv->tick, tick_cb, TICK_MS, TICK_MS);
    return 0;
}

/* Stop completes once drained and every handle has closed. */
static void
check_done(struct server *srv)
{
    if (srv->done || !srv->drained || srv->nalive > 0 ||
        (srv->listening && !srv->listener_closed) ||
        (srv->ticking && !srv->tick_closed))
        return;
    srv->done = 1;
    /* Its timer must close before the loop can end. */
    ingest_free(srv->ingest);
    srv->ingest = NULL;
    if (srv->stop_cb)
        srv->stop_cb(srv->stop_arg);
}

static void
listener_close_cb(uv_handle_t *h)
{
    struct server *srv = h->data;

    if (--srv->lhandles > 0)
        return;
    /* Only now: the poll handle must be closed before its socket. */
    close(srv->lfd);
    srv->lfd = -1;
    srv->listener_closed = 1;
    check_done(srv);
}

static void
tick_close_cb(uv_handle_t *h)
{
    struct server *srv = h->data;

    srv->tick_closed = 1;
    check_done(srv);
}

static void
drained_cb(void *arg, int status)
{
    struct server *srv = arg;
    struct session *s, *next;

    if (status < 0)
        log_warnx("shutdown: uncommitted events left unacked (the agents "
                  "will resend them): %s",
                  store_errmsg(srv->store));
    srv->drained = 1;
    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state == SESS_HELLO || s->state == SESS_ACTIVE)
            session_bye(s, "collector shutting down");
        else
            session_close(s, "collector shutting down");
    }
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
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->lpoll, listener_close_cb);
        uv_close((uv_handle_t *)&srv->accept_retry, listener_close_cb);
    }
    if (srv->ticking)
        uv_close((uv_handle_t *)&srv->tick, tick_close_cb);
    /* Last PINGs and disconnects go with the drain's commit. */
    for (size_t i = 0; i < srv->nbuckets; i++)
        for (struct agent *a = srv->buckets[i]; a != NULL; a = a->hnext)
            if (a->dirty)
                agent_flush(srv, a);
    /* Nothing new may enter the pipeline while it drains. */
    for (struct session *s = srv->sessions; s != NULL; s = s->next)
        if (s->conn != NULL && s->state != SESS_CLOSING)
            tc_tls_read_stop(s->conn);
    ingest_drain(srv->ingest, drained_cb, srv);
}

void
server_free(struct server *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; i < srv->nbuckets; i++) {
        struct agent *a = srv->buckets[i], *next;
        for (; a != NULL; a = next) {
            next = a->hnext;
            free(a->name);
            free(a->software);
            free(a);
        }
    }
    free(srv->buckets);
    /* Only reached before start or after a completed stop. */
    ingest_free(srv->ingest);
    free(srv);
}

void
server_stats(const struct server *srv, struct server_stats *out)
{
    *out = srv->st;
    out->sessions = srv->nsessions;
    out->agents = srv->nagents;
}
