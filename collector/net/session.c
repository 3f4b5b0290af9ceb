/*
 * session: agent connections, the protocol state machine and the
 * budgets they share (see session.h, docs/internals/collector.md and
 * docs/internals/net.md).
 */
#include "net/session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "escape.h"
#include "hash.h"
#include "log.h"
#include "net/liveness.h"
#include "net/registry.h"
#include "pipeline/ingest.h"
#include "seq.h"
#include "tls.h"
#include "util.h"

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

enum sess_state {
    SESS_TLS,    /* TLS handshake running */
    SESS_HELLO,  /* TLS up, waiting for HELLO */
    SESS_ACTIVE, /* WELCOME sent; events flow */
    SESS_CLOSING /* tc_tls_close called; waiting for on_close */
};

struct session {
    struct sessions *ss;         /* borrowed */
    struct tc_tls_conn *conn;    /* owned by tls; NULL after on_close */
    struct reg_agent *agent;     /* set by HELLO; borrowed from reg */
    struct session *prev, *next; /* ss->list */
    struct certcount *cc;        /* counted under its certificate, or NULL */
    enum sess_state state;
    int tls_counted;       /* its handshake failure is counted already */
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
    struct session *pprev, *pnext; /* ss pending queue, oldest first */
    int pending;                   /* 1 while in the pending queue */
    struct session *wprev, *wnext; /* ss memory wait queue */
    int waiting;                   /* 1 while in it (reading stopped) */
    size_t mem_rx; /* bytes charged to session_memory for rx (its cap) */
    size_t mem_tx; /* bytes charged for tx and TLS output not sent */
};

static void session_close(struct session *s, const char *reason);
static void session_bye(struct session *s, const char *reason);
static void mem_wake(struct sessions *ss);

/*
 * A warning that a peer can trigger at will: returns 1 when it may be
 * logged now (*missed says how many were held back since the last
 * one), 0 when it is only counted.
 */
int
net_warn_due(struct net_warn *w, uint64_t *missed)
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

/* ------------------------------------------------------------------ */
/* Session budgets: pending connections and memory                     */

static void
pending_add(struct session *s)
{
    struct sessions *ss = s->ss;

    s->pprev = ss->pend_tail;
    s->pnext = NULL;
    if (ss->pend_tail)
        ss->pend_tail->pnext = s;
    else
        ss->pend_head = s;
    ss->pend_tail = s;
    s->pending = 1;
    ss->npending++;
}

static void
pending_remove(struct session *s)
{
    struct sessions *ss = s->ss;

    if (!s->pending)
        return;
    if (s->pprev)
        s->pprev->pnext = s->pnext;
    else
        ss->pend_head = s->pnext;
    if (s->pnext)
        s->pnext->pprev = s->pprev;
    else
        ss->pend_tail = s->pprev;
    s->pprev = s->pnext = NULL;
    s->pending = 0;
    ss->npending--;
}

static void
wait_add(struct session *s)
{
    struct sessions *ss = s->ss;

    s->wprev = ss->wait_tail;
    s->wnext = NULL;
    if (ss->wait_tail)
        ss->wait_tail->wnext = s;
    else
        ss->wait_head = s;
    ss->wait_tail = s;
    s->waiting = 1;
}

static void
wait_remove(struct session *s)
{
    struct sessions *ss = s->ss;

    if (!s->waiting)
        return;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        ss->wait_head = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    else
        ss->wait_tail = s->wprev;
    s->wprev = s->wnext = NULL;
    s->waiting = 0;
}

/* Set s's charge (*field: mem_rx or mem_tx) to bytes; a release wakes. */
static void
mem_set(struct session *s, size_t *field, size_t bytes)
{
    struct sessions *ss = s->ss;
    size_t old = *field;

    ss->mem_used = ss->mem_used - old + bytes;
    *field = bytes;
    if (bytes < old && ss->wait_head != NULL)
        mem_wake(ss);
}

/* 1 if extra more bytes stay within limits.session_memory. */
static int
mem_fits(const struct sessions *ss, size_t extra)
{
    uint64_t cap = ss->cfg->session_memory;

    return ss->mem_used <= cap && extra <= cap - ss->mem_used;
}

/* Read from s again, unless something else still holds it back. */
static void
session_resume(struct session *s)
{
    struct sessions *ss = s->ss;

    if (s->conn == NULL || s->state == SESS_CLOSING || ss->stopping ||
        s->waiting)
        return;
    if (s->state == SESS_ACTIVE && ingest_paused(ss->ingest))
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
mem_reclaim(struct sessions *ss)
{
    for (struct session *s = ss->list; s != NULL; s = s->next)
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
    struct sessions *ss = s->ss;
    size_t extra;

    s->rx.max = total;
    if (s->rx.cap >= total)
        return 0;
    extra = total - s->rx.cap;
    if (!mem_fits(ss, extra)) {
        mem_reclaim(ss);
        if (!mem_fits(ss, extra))
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
    struct sessions *ss = s->ss;
    uint64_t missed;

    wait_add(s);
    tc_tls_read_stop(s->conn);
    ss->st->mem_waits++;
    if (net_warn_due(&ss->mem_warn, &missed))
        log_warnx("session memory full (%" PRIu64 " of %" PRIu64
                  " bytes): agent %s waits to receive a frame of %zu "
                  "bytes (%" PRIu64 " more waits since the last warning)",
                  ss->mem_used, ss->cfg->session_memory, s->label, total,
                  missed);
}

/* Memory came back: resume waiting sessions that fit, oldest first. */
static void
mem_wake(struct sessions *ss)
{
    struct session *s, *next;

    if (ss->waking)
        return;
    ss->waking = 1;
    for (s = ss->wait_head; s != NULL; s = next) {
        size_t total = s->rx.max;

        next = s->wnext;
        if (total > s->rx.cap && !mem_fits(ss, total - s->rx.cap))
            continue;
        if (total > s->rx.cap) {
            tc_buf_reserve(&s->rx, total - tc_buf_size(&s->rx));
            mem_set(s, &s->mem_rx, s->rx.cap);
        }
        wait_remove(s);
        session_resume(s);
    }
    ss->waking = 0;
}

/*
 * Close the oldest connection that has not said HELLO, to make room for
 * a new one (max_pending) or a descriptor (accept out of them). quiet:
 * the caller logs.
 */
static void
pending_evict(struct sessions *ss, int quiet)
{
    struct session *old = ss->pend_head;
    uint64_t missed;

    if (old == NULL)
        return;
    ss->st->evicted++;
    if (!quiet && net_warn_due(&ss->evict_warn, &missed))
        log_warnx("connection %s closed: %" PRIu32
                  " connections have not said HELLO (limits.max_pending), "
                  "the oldest makes room (%" PRIu64
                  " more since the last warning)",
                  old->label[0] ? old->label : "?", ss->npending, missed);
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

/* Send n bytes of whole frames at p (copied). */
static int
session_write(struct session *s, const uint8_t *p, size_t n)
{
    size_t pending;
    int rc;

    if (s->conn == NULL || s->state == SESS_CLOSING)
        return -EPIPE;
    if ((rc = tc_tls_write(s->conn, p, n)) < 0)
        return rc;
    pending = tc_tls_write_pending(s->conn);
    /* Counted until on_drain; between flushes the count errs high. */
    mem_set(s, &s->mem_tx, s->tx.cap + pending);
    /*
     * Output is not refused (acks must flow), but a peer that leaves it
     * unread while the budget is full is closed rather than grown.
     */
    if (pending > TX_PENDING_MAX ||
        (pending > TX_MAX && s->ss->mem_used > s->ss->cfg->session_memory)) {
        log_warnx("agent %s: not reading (%zu bytes unsent): closing", s->label,
                  pending);
        s->ss->st->protocol_errors++;
        session_close(s, "peer not reading");
        return -ENOBUFS;
    }
    return 0;
}

/* Send the frame just encoded into s->tx. */
static int
session_flush(struct session *s)
{
    int rc = session_write(s, tc_buf_head(&s->tx), tc_buf_size(&s->tx));

    tc_buf_reset(&s->tx);
    return rc;
}

/*
 * The registry's way to the agent (reg_link_ops): a frame from outside
 * the session (an ACK after a commit, a HINT), once WELCOME is sent.
 * Its size is checked against what the agent accepts (its decoder has
 * the same default limits), so a frame the agent would refuse, closing
 * the session, is refused here instead.
 */
static int
link_send(void *link, const uint8_t *frame, size_t len)
{
    struct session *s = link;

    if (s->state != SESS_ACTIVE || s->conn == NULL)
        return -ENOTCONN;
    if (len - TC_WIRE_HDR > tc_wire_default_limits.max_frame)
        return -EMSGSIZE;
    return session_write(s, frame, len);
}

static int
link_held(const void *link)
{
    const struct session *s = link;

    return s->waiting;
}

static const struct reg_link_ops link_ops = {
    .send = link_send,
    .held = link_held,
};

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
    s->ss->st->protocol_errors++;
    session_bye(s, reason);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */

static void
handle_hello(struct session *s)
{
    struct sessions *ss = s->ss;
    const struct tc_hello *h = &s->frame.u.hello;
    const char *cn = tc_tls_peer_name(s->conn);
    char claim[128], sw[128];
    struct tc_welcome w;
    struct reg_agent *a;
    int rc;

    if (h->agent.len != strlen(cn) || cn[0] == '\0' ||
        memcmp(h->agent.ptr, cn, h->agent.len) != 0) {
        log_warnx("agent %s: refused: HELLO claims '%s' but certificate "
                  "CN is '%s'",
                  s->label,
                  safe(claim, sizeof(claim), h->agent.ptr, h->agent.len), cn);
        ss->st->refused++;
        session_bye(s, "HELLO agent name does not match the certificate");
        return;
    }
    if (h->version_min > TC_WIRE_VERSION || h->version_max < TC_WIRE_VERSION) {
        log_warnx("agent %s: refused: no common protocol version (agent "
                  "%" PRIu32 "-%" PRIu32 ", collector %d)",
                  s->label, h->version_min, h->version_max, TC_WIRE_VERSION);
        ss->st->refused++;
        session_bye(s, "no common protocol version");
        return;
    }

    /*
     * max_agents counts agents that said HELLO; a replacing session
     * does not add one.
     */
    a = registry_find(ss->reg, cn);
    if ((a == NULL || registry_link(a) == NULL) &&
        ss->nactive >= ss->cfg->max_agents) {
        uint64_t missed;

        if (net_warn_due(&ss->full_warn, &missed))
            log_warnx("agent %s: refused: %" PRIu32
                      " agents connected (limits.max_agents) (%" PRIu64
                      " more since the last warning)",
                      s->label, ss->nactive, missed);
        ss->st->rejected++;
        session_bye(s, "collector full (max_agents)");
        return;
    }
    a = registry_get(ss->reg, cn);
    if (registry_link(a) != NULL && registry_link(a) != s) {
        struct session *old = registry_link(a);

        log_info("agent %s: replaced by a new connection from %s", old->label,
                 tc_tls_peer_addr(s->conn));
        ss->st->replaced++;
        registry_detach(ss->reg, a, old);
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
    w.collector = tc_str_c(ss->cfg->name);
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
    registry_attach(ss->reg, a, &link_ops, s);
    a->dirty = 1;
    s->agent = a;
    ss->nactive++;
    pending_remove(s);
    liveness_heard(ss->lv, a, tc_now_ns());
    s->state = SESS_ACTIVE;
    if ((rc = tc_wire_encode_welcome(&s->tx, &w)) < 0 ||
        (rc = session_flush(s)) < 0)
        return;
    log_info("agent %s: connected (%s, epoch %016" PRIx64
             "%s, resuming after seq %" PRIu64 ")",
             s->label, safe(sw, sizeof(sw), h->software.ptr, h->software.len),
             h->epoch, w.epoch_known ? "" : " new", w.hwm);
    /* Only now may others send to it: WELCOME comes first. */
    registry_up(ss->reg, a);
    /* Under backpressure a new session may say hello, not send events. */
    if (ingest_paused(ss->ingest))
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
    struct sessions *ss = s->ss;
    struct reg_agent *a = s->agent;
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
    ss->st->duplicates += i;
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
    if ((rc = ingest_append(ss->ingest, &src, e->ev + i, e->n - i)) < 0) {
        /* Only while shutting down: unacked, so the agent resends. */
        log_debug("agent %s: events not queued: %s", s->label, strerror(-rc));
        return;
    }
    a->queued_hwm = e->ev[e->n - 1].seq;
    s->events += e->n - i;
    ss->st->events += e->n - i;
}

static void
handle_ping(struct session *s)
{
    const struct tc_ping *p = &s->frame.u.ping;
    struct tc_pong m = {p->ts};

    struct reg_agent *a = s->agent;

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

/*
 * The agent stored a hint, or refused it ("refused": the reason, kept
 * escaped and cut at HINT_REFUSED_MAX bytes of escaped text: it is the
 * peer's text and goes to the store and to tocsinctl). An id we are not
 * waiting for (never sent, acked already, or sent through a session
 * since replaced) is logged, rate-limited, and ignored: a duplicate ack
 * is what an agent that reconnected in between may well send, and it
 * harms nothing.
 */
#define HINT_REFUSED_MAX 256
static void
handle_hint_ack(struct session *s)
{
    struct sessions *ss = s->ss;
    const struct tc_hint_ack *m = &s->frame.u.hint_ack;
    uint64_t id = m->id, missed;
    char why[HINT_REFUSED_MAX + 1];

    if (registry_link(s->agent) == s) {
        if (m->refused.len == 0 && registry_acked(ss->reg, s->agent, id) == 0)
            return;
        if (m->refused.len > 0) {
            tc_escape(why, sizeof(why), m->refused.ptr, m->refused.len);
            if (registry_refused(ss->reg, s->agent, id, why) == 0)
                return;
        }
    }
    if (net_warn_due(&ss->hint_warn, &missed))
        log_warnx("agent %s: HINT_ACK for hint %" PRIu64
                  " that is not outstanding: ignored (%" PRIu64
                  " more since the last warning)",
                  s->label, id, missed);
}

static void
handle_frame(struct session *s, const uint8_t *body, size_t len)
{
    const char *err = "unknown error";
    char why[128];
    int rc;

    rc = tc_wire_decode(body, len, &s->ss->limits, &s->frame, &err);
    if (rc < 0) {
        session_fail(s, "malformed frame: %s", err);
        return;
    }
    s->frames++;
    s->ss->st->frames++;
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
        liveness_heard(s->ss->lv, s->agent, tc_now_ns());
    switch (s->frame.type) {
    case TC_F_EVENTS:
        handle_events(s);
        break;
    case TC_F_PING:
        handle_ping(s);
        break;
    case TC_F_HINT_ACK:
        handle_hint_ack(s);
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
    return s->state == SESS_ACTIVE ? s->ss->limits.max_frame
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
                     frame_len(hdr), s->ss->limits.max_frame);
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

/* Open sessions of one certificate name (ss->certs). */
struct certcount {
    struct tc_hnode node;
    uint32_t n;
    char cn[];
};

static struct certcount *
cc_find(const struct sessions *ss, const char *cn, uint64_t h)
{
    for (struct tc_hnode *n = tc_htab_first(&ss->certs, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct certcount *cc = TC_CONTAINER_OF(n, struct certcount, node);

        if (strcmp(cc->cn, cn) == 0)
            return cc;
    }
    return NULL;
}

/* s, past TLS as cn, counts for it until cc_leave. */
static void
cc_enter(struct session *s, const char *cn)
{
    struct sessions *ss = s->ss;
    uint64_t h = tc_hash64_str(cn);
    struct certcount *cc = cc_find(ss, cn, h);

    if (cc == NULL) {
        size_t len = strlen(cn);

        cc = tc_xcalloc(1, sizeof(*cc) + len + 1);
        memcpy(cc->cn, cn, len);
        tc_htab_insert(&ss->certs, &cc->node, h);
    }
    cc->n++;
    s->cc = cc;
}

static void
cc_leave(struct session *s)
{
    struct sessions *ss = s->ss;
    struct certcount *cc = s->cc;

    if (cc == NULL)
        return;
    s->cc = NULL;
    if (--cc->n > 0)
        return;
    tc_htab_remove(&ss->certs, &cc->node);
    free(cc);
    if (ss->certs.n == 0)
        tc_htab_free(&ss->certs); /* nothing held once all are gone */
}

static void
on_ready(struct tc_tls_conn *c)
{
    struct session *s = tc_tls_get_data(c);
    struct sessions *ss = s->ss;
    const char *cn = tc_tls_peer_name(c);
    uint32_t n = 0;
    uint64_t missed;

    s->state = SESS_HELLO;
    snprintf(s->label, sizeof(s->label), "%s (%s)", cn, tc_tls_peer_addr(c));
    if (ss->stopping) {
        session_bye(s, "collector shutting down");
        return;
    }
    /*
     * One certificate, a few sessions: a reconnecting agent replaces
     * its stale session (handle_hello), but a stolen key must not open
     * thousands. A count per name: a walk over every session at each
     * handshake was O(n^2) over a fleet's reconnect (bench/README.md,
     * "issue 11: storm").
     */
    {
        const struct certcount *cc = cc_find(ss, cn, tc_hash64_str(cn));

        n = cc != NULL ? cc->n : 0;
    }
    if (n >= ss->cfg->sessions_per_agent) {
        if (net_warn_due(&ss->ident_warn, &missed))
            log_warnx("agent %s: refused: %" PRIu32
                      " sessions with this certificate are open "
                      "(limits.sessions_per_agent) (%" PRIu64
                      " more since the last warning)",
                      s->label, n, missed);
        ss->st->refused++;
        session_bye(s, "too many sessions with this certificate");
        return;
    }
    cc_enter(s, cn);
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
    struct sessions *ss = s->ss;
    const uint8_t *body;
    size_t size, total, take, blen;
    long r;

    if (s->state == SESS_CLOSING || ss->stopping)
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
        if (s->rx.cap > RX_KEEP || ss->wait_head != NULL)
            rx_release(s);
    }
}

static void
session_free_cb(uv_handle_t *h)
{
    struct session *s = h->data;
    struct sessions *ss = s->ss;

    tc_buf_close(&s->rx);
    tc_buf_close(&s->tx);
    tc_frame_close(&s->frame);
    free(s);
    ss->nalive--;
    if (ss->stopping && ss->on_freed != NULL)
        ss->on_freed(ss->freed_arg);
}

static void
on_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct session *s = tc_tls_get_data(c);
    struct sessions *ss = s->ss;

    pending_remove(s);
    wait_remove(s);
    if (s->state == SESS_TLS && !s->tls_counted) {
        /* NONE when we closed it ourselves (evicted, shutting down). */
        enum tc_tls_fail f = tc_tls_handshake_failure(c);

        if (f != TC_TLS_FAIL_NONE)
            ss->st->tls_failures[f]++;
    }
    if (s->agent != NULL) {
        ss->nactive--;
        log_info("agent %s: disconnected: %s (%" PRIu64 " events, %" PRIu64
                 " duplicates)",
                 s->label, reason, s->events, s->dups);
        if (registry_detach(ss->reg, s->agent, s))
            s->agent->dirty = 1;
    } else {
        log_debug("connection %s closed before HELLO: %s",
                  s->label[0] ? s->label : "?", reason);
    }
    s->conn = NULL;
    s->state = SESS_CLOSING;
    cc_leave(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        ss->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ss->nsessions--;
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
    cc_leave(s);
    uv_timer_stop(&s->timer);
    tc_tls_close(s->conn, reason);
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */

static void
session_timer_cb(uv_timer_t *t)
{
    struct session *s = t->data;
    const struct collector_config *cfg = s->ss->cfg;
    int64_t idle_ns, left;

    if (s->state == SESS_CLOSING)
        return;
    if (s->state != SESS_ACTIVE) {
        log_warnx("agent %s: no HELLO within %" PRIu64 " ms: closing",
                  s->label[0] ? s->label : "?", cfg->handshake_timeout_ms);
        s->ss->st->timeouts++;
        if (s->state == SESS_TLS) {
            /* Still in TLS: a handshake failure too (metrics.h). */
            s->ss->st->tls_failures[TC_TLS_FAIL_TIMEOUT]++;
            s->tls_counted = 1;
        }
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
    if (ingest_paused(s->ss->ingest) || s->waiting) {
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
    s->ss->st->timeouts++;
    session_bye(s, "idle timeout");
}

/*
 * A new connection: a pending session until it says HELLO. When
 * max_pending are pending, the oldest is closed to make room, so that
 * idle sockets from anyone who can reach the port cannot lock agents
 * out; max_agents is checked at HELLO.
 */
void
sessions_start(struct sessions *ss, uv_os_sock_t fd)
{
    struct session *s;
    int rc;

    if (ss->npending >= ss->cfg->max_pending)
        pending_evict(ss, 0);
    s = tc_xcalloc(1, sizeof(*s));
    s->ss = ss;
    tc_buf_init(&s->rx, TC_WIRE_HDR);
    tc_buf_init(&s->tx, TX_MAX);
    tc_frame_init(&s->frame);
    uv_timer_init(ss->loop, &s->timer);
    s->timer.data = s;
    ss->nalive++;
    if ((rc = tc_tls_accept_fd(ss->loop, fd, ss->tls, &session_cbs, s,
                               &s->conn)) < 0) {
        log_warnx("accept: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&s->timer, session_free_cb);
        return;
    }
    snprintf(s->label, sizeof(s->label), "? (%s)", tc_tls_peer_addr(s->conn));
    s->state = SESS_TLS;
    s->last_rx = tc_mono_ns();
    s->next = ss->list;
    if (s->next)
        s->next->prev = s;
    ss->list = s;
    ss->nsessions++;
    pending_add(s);
    ss->st->accepted++;
    uv_timer_start(&s->timer, session_timer_cb, ss->cfg->handshake_timeout_ms,
                   0);
    /* Under backpressure it may still say HELLO; see handle_hello. */
}

void
sessions_evict_pending(struct sessions *ss, int quiet)
{
    pending_evict(ss, quiet);
}

void
sessions_pressure(struct sessions *ss, int stop)
{
    if (ss->stopping)
        return;
    for (struct session *s = ss->list; s != NULL; s = s->next) {
        if (s->conn == NULL || s->state == SESS_CLOSING)
            continue;
        /* Sessions still saying hello keep going (on_connection). */
        if (stop && s->state == SESS_ACTIVE)
            tc_tls_read_stop(s->conn);
        else if (!stop && !s->waiting)
            tc_tls_read_start(s->conn); /* waiting: mem_wake resumes it */
    }
}

void
sessions_stop_reading(struct sessions *ss)
{
    ss->stopping = 1;
    /* Nothing new may enter the pipeline while it drains. */
    for (struct session *s = ss->list; s != NULL; s = s->next)
        if (s->conn != NULL && s->state != SESS_CLOSING)
            tc_tls_read_stop(s->conn);
}

void
sessions_close_all(struct sessions *ss)
{
    struct session *s, *next;

    for (s = ss->list; s != NULL; s = next) {
        next = s->next;
        if (s->state == SESS_HELLO || s->state == SESS_ACTIVE)
            session_bye(s, "collector shutting down");
        else
            session_close(s, "collector shutting down");
    }
}
