/*
 * sender: connection state machine and EVENTS window; see sender.h.
 *
 *   IDLE -> RESOLVING -> CONNECTING -> HELLO -> STREAMING
 *     ^                                             |
 *     +------------- BACKOFF <-- (link down) <------+
 *
 * Every path out of a connected state goes through on_close of the TLS
 * conn, which is the one place that schedules the reconnect; everything
 * else only asks the conn to close. Timers: retry (the backoff delay,
 * and the deadline for reaching STREAMING), ping (PING period and the
 * silence check), flush (sending events that wait for a rate-limited
 * spool_sync).
 */
#include "sender.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"
#include "escape.h"
#include "hints_store.h"
#include "hintsig.h"
#include "log.h"
#include "seq.h"
#include "util.h"
#include "wire.h"

/*
 * Stop queueing batches while this much is not yet on the socket: the
 * kernel's socket buffer does the queueing, our memory stays small.
 */
#define SENDER_MAX_PENDING (512u << 10)

enum sender_state {
    SS_IDLE,       /* not started, or waiting for the backoff timer */
    SS_RESOLVING,  /* uv_getaddrinfo in flight */
    SS_CONNECTING, /* TCP connect and TLS handshake */
    SS_HELLO,      /* HELLO sent, waiting for WELCOME */
    SS_STREAMING,  /* sending EVENTS, receiving ACKs */
};

struct sender {
    uv_loop_t *loop;                  /* borrowed */
    const struct agent_config *cfg;   /* borrowed */
    struct tc_tls_ctx *ctx;           /* borrowed */
    struct spool *spool;              /* borrowed */
    const char *name;                 /* borrowed: agent name for HELLO */
    struct hints_store *hints;        /* borrowed; NULL: hints not acked */
    const struct tc_hintkey *hintkey; /* borrowed; NULL: hints refused */
    int nokey_logged;                 /* "no public key" said once */
    char *host;                       /* owned: collector host to resolve */
    char port[8];                     /* collector port, decimal */
    enum sender_state state;
    uv_getaddrinfo_t gai; /* in flight while gai_active */
    int gai_active;
    unsigned attempt;               /* connects since the last WELCOME */
    struct tc_tls_conn *conn;       /* the link, NULL when down; freed by
                                     * tls after on_close */
    int conn_closing;               /* tc_tls_close was called */
    char peer[64];                  /* "ip:port" of the link, for logs */
    char collector[64];             /* collector name from WELCOME */
    uv_timer_t retry;               /* backoff / session deadline */
    uv_timer_t ping;                /* PING period, silence check */
    uv_timer_t flush;               /* deferred send after a sync */
    uint64_t backoff_ms;            /* current backoff ceiling, ms */
    uint64_t rng;                   /* xorshift state for jitter */
    int64_t last_rx_ns;             /* mono time of the last frame */
    int64_t last_sync_ns;           /* mono time of the last spool_sync */
    uv_work_t sync_work;            /* the spool fsync on the threadpool */
    struct spool_sync_req sync_req; /* its request; owned by the worker
                                     * while sync_active */
    int sync_active;                /* sync_work queued, not yet done */
    int sync_rc;                    /* spool_sync_run's result */
    uv_work_t ckpt_work;            /* a spool checkpoint on the pool */
    struct spool_ckpt_req ckpt_req; /* its request; the worker's while
                                     * ckpt_active */
    int ckpt_active;                /* ckpt_work queued, not yet done */
    struct tc_buf rx;               /* received bytes, capped at a frame */
    struct tc_buf tx;               /* one encoded frame before write */
    struct tc_frame frame;          /* last decoded frame */
    uint64_t next_send;             /* first seq not sent on this link */
    uint64_t acked;                 /* highest seq the collector acked */
    uint64_t *inflight;             /* owned ring: last seq of each unacked
                                     * batch, window_batches entries */
    uint32_t nflight, flight_head;  /* count and index of the oldest */
    struct tc_wire_events_out ev;   /* the EVENTS frame being built in tx */
    uint64_t ping_ms;        /* PING period: the config's heartbeat, ms */
    uint64_t silence_ms;     /* no frame for this long: the link is dead */
    int64_t connected_since; /* wall ns of the WELCOME; 0 when down */
    char last_error[192];    /* why the last link went down */
    int64_t last_error_at;   /* wall ns; 0 = never */
    uint64_t reconnects;     /* links that went down */
    uint64_t events_sent;    /* events written in EVENTS frames */
    uint64_t events_acked;   /* events covered by ACKs */
    int64_t last_ack_at;     /* wall ns of the last ACK that moved */
    int seq_stuck;           /* 1 while the collector's mark leaves our spool no
                              * seqs (common/seq.h): logged once, retried slowly */
    int started;             /* sender_start set up the timers */
    int stopping;            /* sender_stop was called */
    int closing;             /* timers whose close is pending */
    void (*on_stopped)(void *arg);
    void *stop_arg;
    /* A hint was stored for the first time; or NULL. */
    void (*hint_stored)(void *arg, uint64_t id);
    void *hint_arg;
};

static void sender_connect(struct sender *s);
static void sender_fill(struct sender *s);

static uint64_t
sender_rand(struct sender *s)
{
    /* xorshift64: jitter needs spread, not secrecy. */
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* Ask the link to close; on_close does the rest. */
static void sender_drop(struct sender *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
sender_drop(struct sender *s, const char *fmt, ...)
{
    char reason[192];
    va_list ap;

    if (s->conn == NULL || s->conn_closing)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    s->conn_closing = 1;
    tc_tls_close(s->conn, reason);
}

static void
sender_check_stopped(struct sender *s)
{
    if (s->stopping && s->closing == 0 && s->conn == NULL && !s->gai_active &&
        !s->sync_active && !s->ckpt_active && s->on_stopped != NULL) {
        void (*cb)(void *) = s->on_stopped;
        s->on_stopped = NULL;
        cb(s->stop_arg);
    }
}

static void
sender_retry_cb(uv_timer_t *h)
{
    struct sender *s = h->data;

    if (s->state == SS_IDLE) {
        sender_connect(s);
        return;
    }
    /* Still not streaming at the deadline: a stuck handshake or a
     * collector that never answers HELLO. */
    if (s->state == SS_CONNECTING || s->state == SS_HELLO)
        sender_drop(s, "no WELCOME within %d s", SENDER_WELCOME_MS / 1000);
}

/* The link is down (or never came up): wait, then try again. */
static void
sender_backoff(struct sender *s, const char *reason)
{
    uint64_t delay;

    s->state = SS_IDLE;
    s->connected_since = 0;
    snprintf(s->last_error, sizeof(s->last_error), "%s", reason);
    s->last_error_at = tc_now_ns();
    s->reconnects++;
    uv_timer_stop(&s->ping);
    uv_timer_stop(&s->flush);
    if (s->stopping)
        return;
    /* Full jitter: anywhere in [0, ceiling], so that many agents cut
     * off together do not come back together. */
    delay = sender_rand(s) % (s->backoff_ms + 1);
    if (s->seq_stuck) {
        /* Nothing changes soon: jitter, but no quick retries, and the
         * reason was logged once already. */
        delay = s->backoff_ms / 2 + delay / 2;
        log_debug("link down: %s; retrying in %.1fs", reason,
                  (double)delay / 1000.0);
    } else
        log_warnx("link down: %s; retrying in %.1fs", reason,
                  (double)delay / 1000.0);
    s->backoff_ms *= 2;
    if (s->backoff_ms > s->cfg->backoff_max_ms)
        s->backoff_ms = s->cfg->backoff_max_ms;
    uv_timer_start(&s->retry, sender_retry_cb, delay, 0);
}

static void
sender_write_frame(struct sender *s)
{
    if (tc_tls_write(s->conn, tc_buf_head(&s->tx), tc_buf_size(&s->tx)) < 0)
        sender_drop(s, "write failed");
    tc_buf_reset(&s->tx);
}

/* spool_read_from callback: the event goes into the frame as it is. */
static int
sender_collect(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct sender *s = arg;

    (void)seq;
    return tc_wire_events_add(&s->ev, body, len);
}

static void
sender_flush_cb(uv_timer_t *h)
{
    sender_fill(h->data);
}

static void
sender_ckpt_work(uv_work_t *w)
{
    struct sender *s = w->data;

    spool_checkpoint_run(&s->ckpt_req);
}

static void
sender_ckpt_done(uv_work_t *w, int status)
{
    struct sender *s = w->data;

    (void)status; /* cannot be cancelled: nobody calls uv_cancel on it */
    s->ckpt_active = 0;
    spool_checkpoint_end(s->spool, &s->ckpt_req);
    sender_check_stopped(s);
}

/*
 * Copy the spool's WAL into its database on the threadpool when it is
 * due (spool.h, "Checkpoints"). Called after whatever grows the WAL:
 * new events (sender_kick, connected or not) and acks.
 */
static void
sender_checkpoint(struct sender *s)
{
    if (s->ckpt_active || s->stopping ||
        !spool_checkpoint_begin(s->spool, &s->ckpt_req))
        return;
    s->ckpt_work.data = s;
    if (uv_queue_work(s->loop, &s->ckpt_work, sender_ckpt_work,
                      sender_ckpt_done) == 0) {
        s->ckpt_active = 1;
        return;
    }
    /* Cannot happen with a valid loop; the spool's own limit holds. */
    s->ckpt_req.rc = -EAGAIN;
    spool_checkpoint_end(s->spool, &s->ckpt_req);
}

static void
sender_sync_work(uv_work_t *w)
{
    struct sender *s = w->data;

    s->sync_rc = spool_sync_run(&s->sync_req);
}

static void
sender_sync_done(uv_work_t *w, int status)
{
    struct sender *s = w->data;

    s->sync_active = 0;
    spool_sync_end(s->spool, &s->sync_req, status < 0 ? status : s->sync_rc);
    if (s->stopping) {
        sender_check_stopped(s);
        return;
    }
    if (status < 0 || s->sync_rc < 0) {
        /* Not durable, not sent; try again later. */
        uv_timer_start(&s->flush, sender_flush_cb, 1000, 0);
        return;
    }
    sender_fill(s);
}

/*
 * Make sure what is about to be sent is durable, at most once every
 * SENDER_SYNC_MS. Returns the seq below which events may be sent now.
 * The fsync runs on the threadpool: on the loop it blocked tailing and
 * sending for 5-100 ms at a time in ship-all mode (about a second per
 * million lines, measured with strace -T), while what was synced
 * before could have been on its way.
 */
static uint64_t
sender_sendable(struct sender *s)
{
    uint64_t next = spool_next_seq(s->spool);
    int64_t now, wait;
    int rc;

    if (spool_synced_seq(s->spool) >= next || s->sync_active)
        return spool_synced_seq(s->spool); /* sync_done calls fill */
    now = tc_mono_ns();
    wait = s->last_sync_ns + (int64_t)SENDER_SYNC_MS * 1000000 - now;
    if (wait > 0) {
        if (!uv_is_active((uv_handle_t *)&s->flush))
            uv_timer_start(&s->flush, sender_flush_cb,
                           (uint64_t)(wait / 1000000) + 1, 0);
        return spool_synced_seq(s->spool);
    }
    s->last_sync_ns = now;
    if (spool_sync_begin(s->spool, &s->sync_req) == 0)
        return spool_synced_seq(s->spool);
    s->sync_work.data = s;
    rc = uv_queue_work(s->loop, &s->sync_work, sender_sync_work,
                       sender_sync_done);
    if (rc == 0) {
        s->sync_active = 1;
        return spool_synced_seq(s->spool);
    }
    /* Cannot happen with a valid loop; sync here instead. */
    if (spool_sync(s->spool) < 0)
        uv_timer_start(&s->flush, sender_flush_cb, 1000, 0);
    return spool_synced_seq(s->spool);
}

/* Send batches while the window and the socket allow. */
static void
sender_fill(struct sender *s)
{
    uint32_t window = s->cfg->window_batches;

    while (s->state == SS_STREAMING && !s->conn_closing &&
           s->nflight < window &&
           tc_tls_write_pending(s->conn) < SENDER_MAX_PENDING) {
        uint64_t limit, last;
        uint32_t max_n = s->cfg->batch_max_events;
        int n, rc;

        if (s->next_send < spool_first_seq(s->spool))
            s->next_send = spool_first_seq(s->spool);
        if (s->next_send >= spool_next_seq(s->spool))
            return;
        limit = sender_sendable(s);
        if (s->next_send >= limit)
            return;
        if (limit - s->next_send < max_n)
            max_n = (uint32_t)(limit - s->next_send);
        /* The events go from the spool's chunk into the frame. */
        if ((rc = tc_wire_events_begin(&s->tx, &s->ev)) < 0) {
            sender_drop(s, "cannot encode EVENTS: %s", strerror(-rc));
            return;
        }
        n = spool_read_from(s->spool, s->next_send, max_n, SENDER_BATCH_BYTES,
                            sender_collect, s);
        if (n <= 0) {
            tc_wire_events_abort(&s->ev);
            sender_drop(s, "cannot read the spool: %s",
                        n < 0 ? strerror(-n) : "events missing");
            return;
        }
        rc = tc_wire_events_end(&s->ev);
        if (rc < 0) {
            sender_drop(s, "cannot encode EVENTS: %s", strerror(-rc));
            return;
        }
        sender_write_frame(s);
        last = s->next_send + (uint64_t)n - 1;
        s->inflight[(s->flight_head + s->nflight) % window] = last;
        s->nflight++;
        s->next_send = last + 1;
        s->events_sent += (uint64_t)n;
    }
}

static void
sender_ping_cb(uv_timer_t *h)
{
    struct sender *s = h->data;
    struct tc_ping m;
    int64_t silent = (tc_mono_ns() - s->last_rx_ns) / 1000000;

    if (s->state != SS_STREAMING || s->conn_closing)
        return;
    if ((uint64_t)silent >= s->silence_ms) {
        sender_drop(s, "collector silent for %" PRId64 " s", silent / 1000);
        return;
    }
    memset(&m, 0, sizeof(m));
    m.ts = tc_now_ns();
    m.spool_depth = spool_depth(s->spool);
    m.spool_bytes = spool_bytes(s->spool);
    m.version = tc_str_c("tocsin-agent " TOCSIN_VERSION);
    if (tc_wire_encode_ping(&s->tx, &m) == 0)
        sender_write_frame(s);
}

/*
 * The collector's mark for us (a new spool epoch) is so near the top of
 * the seq range that our spooled events cannot be numbered after it
 * (common/seq.h): sending them would wrap. Say so once, keep the events
 * spooled, and only ask again at the slowest backoff, quietly, until an
 * admin has dealt with the agent's record at the collector.
 */
static void
sender_seq_stuck(struct sender *s, uint64_t hwm)
{
    if (!s->seq_stuck)
        log_warnx("collector %s: its mark for this agent is seq %" PRIu64
                  ", too near the highest seq %" PRIu64
                  " to number the %" PRIu64
                  " spooled events after it; not sending (events stay "
                  "spooled); asking again every %.1f s at most",
                  s->peer, hwm, TC_SEQ_MAX, spool_depth(s->spool),
                  (double)s->cfg->backoff_max_ms / 1000.0);
    s->seq_stuck = 1;
    s->backoff_ms = s->cfg->backoff_max_ms;
    sender_drop(s, "the collector's seq mark %" PRIu64 " leaves no room", hwm);
}

static void
sender_welcome(struct sender *s, const struct tc_welcome *w)
{
    int known = w->epoch_known, rc;

    if (s->state != SS_HELLO) {
        sender_drop(s, "unexpected WELCOME");
        return;
    }
    /*
     * With a known epoch, hwm is ours: everything up to it is durable at
     * the collector. Otherwise it belongs to an earlier spool under our
     * name, and our seqs must be moved above it or they would be taken
     * for its duplicates. Either way next_seq ends up above hwm.
     *
     * The collector adopts our epoch at HELLO, before we renumber: after
     * a session that ended before renumbering (a mark with no room after
     * it, say), it calls the earlier spool's mark ours. A mark at or
     * above any seq we ever numbered cannot be ours; acking up to it
     * would delete every spooled event unsent. Renumber instead.
     */
    if (known && w->hwm >= spool_next_seq(s->spool)) {
        if (!s->seq_stuck)
            log_warnx("collector %s: holds seq %" PRIu64 " of this spool, "
                      "which never numbered past %" PRIu64 ": taking it for "
                      "an earlier spool's mark",
                      s->peer, w->hwm, spool_next_seq(s->spool) - 1);
        known = 0;
    }
    if (known && (rc = spool_ack(s->spool, w->hwm)) < 0) {
        sender_drop(s, "spool: %s", strerror(-rc));
        return;
    }
    if ((rc = spool_renumber(s->spool, w->hwm)) == -ERANGE) {
        sender_seq_stuck(s, w->hwm);
        return;
    }
    if (rc < 0 || (rc = spool_report_drops(s->spool, s->name)) < 0) {
        sender_drop(s, "spool: %s", strerror(-rc));
        return;
    }
    snprintf(s->collector, sizeof(s->collector), "%.*s", (int)w->collector.len,
             w->collector.ptr);
    if (s->seq_stuck)
        log_info("collector %s: the seq mark has room again; sending", s->peer);
    s->seq_stuck = 0;
    s->state = SS_STREAMING;
    s->attempt = 0;
    s->backoff_ms = s->cfg->backoff_min_ms;
    s->next_send = spool_first_seq(s->spool);
    s->acked = s->next_send - 1;
    s->nflight = s->flight_head = 0;
    uv_timer_stop(&s->retry);
    s->connected_since = tc_now_ns();
    /*
     * The first PING goes out at once: it tells the collector our spool
     * depth and version without waiting a whole heartbeat period.
     */
    uv_timer_start(&s->ping, sender_ping_cb, 0, s->ping_ms);
    log_info("connected to %s (collector %s), resuming after seq %" PRIu64
             "%s; %" PRIu64 " events spooled",
             s->peer, s->collector, s->next_send - 1,
             known ? "" : " (new spool epoch)", spool_depth(s->spool));
    sender_fill(s);
}

static void
sender_ack(struct sender *s, uint64_t seq)
{
    uint32_t window = s->cfg->window_batches;
    int rc;

    if (s->state != SS_STREAMING) {
        sender_drop(s, "ACK before WELCOME");
        return;
    }
    if (seq <= s->acked)
        return; /* stale, or repeated for a replay */
    if (seq >= spool_next_seq(s->spool)) {
        sender_drop(s, "ACK for seq %" PRIu64 ", which was never sent", seq);
        return;
    }
    /* An ACK may cover more than this link sent: the previous link's
     * events, committed after this link's WELCOME. */
    if ((rc = spool_ack(s->spool, seq)) < 0) {
        sender_drop(s, "spool: %s", strerror(-rc));
        return;
    }
    sender_checkpoint(s);
    s->events_acked += seq - s->acked;
    s->last_ack_at = tc_now_ns();
    s->acked = seq;
    if (s->next_send <= seq)
        s->next_send = seq + 1;
    while (s->nflight > 0 && s->inflight[s->flight_head] <= seq) {
        s->flight_head = (s->flight_head + 1) % window;
        s->nflight--;
    }
    sender_fill(s);
}

void
sender_set_hints(struct sender *s, struct hints_store *store,
                 const struct tc_hintkey *key)
{
    s->hints = store;
    s->hintkey = key;
}

void
sender_set_hint_cb(struct sender *s, void (*cb)(void *arg, uint64_t id),
                   void *arg)
{
    s->hint_stored = cb;
    s->hint_arg = arg;
}

static int
sender_has_nul(struct tc_str v)
{
    return v.len > 0 && memchr(v.ptr, '\0', v.len) != NULL;
}

/* Why h cannot be stored as C strings, or NULL. */
static const char *
sender_hint_nul(const struct tc_hint *h)
{
    if (sender_has_nul(h->agent) || sender_has_nul(h->incident) ||
        sender_has_nul(h->source) || sender_has_nul(h->title) ||
        sender_has_nul(h->text) || sender_has_nul(h->action))
        return "a NUL byte in a field";
    for (uint32_t i = 0; i < h->nparams; i++)
        if (sender_has_nul(h->params[i].key) ||
            sender_has_nul(h->params[i].val))
            return "a NUL byte in a parameter";
    return NULL;
}

/*
 * HINT_ACK for id: refused NULL, the hint is stored; else it was
 * refused, and why (the collector records the reason and stops waiting
 * for it). Closes the session if it cannot be encoded.
 */
static void
sender_hint_ack(struct sender *s, uint64_t id, const char *refused)
{
    struct tc_hint_ack ack = {.id = id};
    int rc;

    if (refused != NULL)
        ack.refused = tc_str_c(refused);
    if ((rc = tc_wire_encode_hint_ack(&s->tx, &ack)) < 0) {
        sender_drop(s, "cannot encode HINT_ACK: %s", strerror(-rc));
        return;
    }
    sender_write_frame(s);
}

/*
 * A HINT (docs/protocol.md): verify, store, then ack. Refused hints are
 * logged with the reason and answered with a refusal (HINT_ACK with
 * "refused"), so the collector does not hold them in flight; the
 * session stays up, since a hint that fails here is well-formed (over
 * the limits it would not have decoded) and the events keep flowing. A
 * hint that cannot be stored is not acked at all: the collector sends
 * it again after a reconnect.
 */
static void
sender_hint(struct sender *s, const struct tc_hint *h)
{
    char title[TC_HINT_MAX_TITLE * TC_ESCAPE_MAX + 1];
    char inc[TC_HINT_MAX_NAME * TC_ESCAPE_MAX + 1];
    char who[TC_HINT_MAX_NAME * TC_ESCAPE_MAX + 1];
    const char *why = NULL;
    int rc;

    if (s->state != SS_STREAMING) {
        sender_drop(s, "HINT before WELCOME");
        return;
    }
    if (s->hintkey == NULL) {
        if (!s->nokey_logged)
            log_warnx("collector %s: hint %" PRIu64 " refused: no "
                      "hints.public_key in %s, so no hint can be verified "
                      "(said once)",
                      s->peer, h->id, s->cfg->file);
        else
            log_debug("collector %s: hint %" PRIu64 " refused: no "
                      "hints.public_key",
                      s->peer, h->id);
        s->nokey_logged = 1;
        sender_hint_ack(s, h->id, "no hints.public_key");
        return;
    }
    if ((rc = tc_hintsig_verify(s->hintkey, h, &why)) < 0) {
        log_warnx("collector %s: hint %" PRIu64 " refused: %s", s->peer, h->id,
                  why);
        sender_hint_ack(s, h->id, why);
        return;
    }
    if (h->agent.len != strlen(s->name) ||
        memcmp(h->agent.ptr, s->name, h->agent.len) != 0) {
        tc_escape(who, sizeof(who), h->agent.ptr, h->agent.len);
        log_warnx("collector %s: hint %" PRIu64 " refused: addressed to "
                  "agent \"%s\", not to this agent (%s)",
                  s->peer, h->id, who, s->name);
        sender_hint_ack(s, h->id, "addressed to another agent");
        return;
    }
    if ((why = sender_hint_nul(h)) != NULL) {
        log_warnx("collector %s: hint %" PRIu64 " refused: %s", s->peer, h->id,
                  why);
        sender_hint_ack(s, h->id, why);
        return;
    }
    if (s->hints == NULL) {
        log_warnx("collector %s: hint %" PRIu64 " not stored (no hint "
                  "store); not acked",
                  s->peer, h->id);
        return;
    }
    rc = hints_store_put(s->hints, h, tc_now_ns());
    if (rc == -EEXIST) {
        log_warnx("collector %s: hint %" PRIu64 " refused: replayed hint "
                  "id (stored already with other content)",
                  s->peer, h->id);
        sender_hint_ack(s, h->id,
                        "replayed hint id (stored already with other "
                        "content)");
        return;
    }
    if (rc < 0) {
        log_warnx("collector %s: hint %" PRIu64 " not stored: %s; not "
                  "acked (the collector sends it again)",
                  s->peer, h->id,
                  rc == -ENOSPC ? "hint store or disk full" : strerror(-rc));
        return;
    }
    tc_escape(inc, sizeof(inc), h->incident.ptr, h->incident.len);
    if (rc == 1) {
        log_debug("collector %s: hint %" PRIu64 " for incident %s "
                  "redelivered; acked again",
                  s->peer, h->id, inc);
    } else {
        tc_escape(title, sizeof(title), h->title.ptr, h->title.len);
        log_info("hint %" PRIu64 " for incident %s: %s", h->id, inc, title);
        /* Stored now, never on a redelivery: an auto action runs once. */
        if (s->hint_stored != NULL)
            s->hint_stored(s->hint_arg, h->id);
    }
    sender_hint_ack(s, h->id, NULL);
}

static void
sender_frame(struct sender *s, const uint8_t *body, size_t len)
{
    const char *err = "malformed";
    char why[128];
    int rc;

    rc = tc_wire_decode(body, len, &tc_wire_default_limits, &s->frame, &err);
    if (rc < 0) {
        log_warnx("collector %s: bad frame: %s", s->peer, err);
        sender_drop(s, "bad frame from the collector: %s", err);
        return;
    }
    s->last_rx_ns = tc_mono_ns();
    switch (s->frame.type) {
    case TC_F_WELCOME:
        sender_welcome(s, &s->frame.u.welcome);
        break;
    case TC_F_ACK:
        sender_ack(s, s->frame.u.ack.seq);
        break;
    case TC_F_PONG:
        log_debug("collector %s: PONG, round trip %.1f ms", s->peer,
                  (double)(tc_now_ns() - s->frame.u.pong.ts) / 1e6);
        break;
    case TC_F_BYE:
        snprintf(why, sizeof(why), "%.*s", (int)s->frame.u.bye.reason.len,
                 s->frame.u.bye.reason.ptr);
        log_warnx("collector %s said goodbye: %s", s->peer, why);
        sender_drop(s, "collector said goodbye: %s", why);
        break;
    case TC_F_HINT:
        sender_hint(s, &s->frame.u.hint);
        break;
    default:
        log_warnx("collector %s: unexpected %s frame", s->peer,
                  tc_frame_type_name(s->frame.type));
        sender_drop(s, "unexpected %s frame",
                    tc_frame_type_name(s->frame.type));
        break;
    }
}

static void
sender_on_data(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    struct sender *s = tc_tls_get_data(c);

    if (s->conn_closing)
        return;
    if (tc_buf_append(&s->rx, p, n) < 0) {
        sender_drop(s, "frame from the collector too large");
        return;
    }
    while (!s->conn_closing) {
        const uint8_t *body;
        size_t blen;
        long used = tc_wire_next(tc_buf_head(&s->rx), tc_buf_size(&s->rx),
                                 TC_WIRE_MAX_FRAME, &body, &blen);
        if (used == 0)
            break;
        if (used < 0) {
            sender_drop(s, used == -EBADMSG
                               ? "frame of length 0 from the collector"
                               : "frame from the collector too large");
            break;
        }
        sender_frame(s, body, blen);
        tc_buf_consume(&s->rx, (size_t)used);
    }
}

static void
sender_on_ready(struct tc_tls_conn *c)
{
    struct sender *s = tc_tls_get_data(c);
    struct tc_hello h;

    snprintf(s->peer, sizeof(s->peer), "%s", tc_tls_peer_addr(c));
    memset(&h, 0, sizeof(h));
    h.version_min = TC_WIRE_VERSION;
    h.version_max = TC_WIRE_VERSION;
    h.agent = tc_str_c(s->name);
    h.epoch = spool_epoch(s->spool);
    h.software = tc_str_c("tocsin-agent " TOCSIN_VERSION);
    h.heartbeat_ms = s->ping_ms;
    if (tc_wire_encode_hello(&s->tx, &h) < 0) {
        sender_drop(s, "cannot encode HELLO");
        return;
    }
    sender_write_frame(s);
    s->last_rx_ns = tc_mono_ns();
    s->state = SS_HELLO;
}

static void
sender_on_drain(struct tc_tls_conn *c)
{
    sender_fill(tc_tls_get_data(c));
}

static void
sender_on_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct sender *s = tc_tls_get_data(c);
    char why[256];

    snprintf(why, sizeof(why), "%s", reason && *reason ? reason : "closed");
    s->conn = NULL;
    s->conn_closing = 0;
    tc_buf_reset(&s->rx);
    tc_buf_reset(&s->tx);
    uv_timer_stop(&s->retry);
    if (s->stopping) {
        s->state = SS_IDLE;
        log_info("disconnected from the collector: %s", why);
        sender_check_stopped(s);
        return;
    }
    sender_backoff(s, why);
}

static const struct tc_tls_cbs sender_cbs = {
    .on_ready = sender_on_ready,
    .on_data = sender_on_data,
    .on_drain = sender_on_drain,
    .on_close = sender_on_close,
};

static void
sender_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sender *s = req->data;
    struct addrinfo *ai;
    char why[192];
    size_t n = 0;
    int rc;

    s->gai_active = 0;
    if (s->stopping) {
        uv_freeaddrinfo(res);
        sender_check_stopped(s);
        return;
    }
    if (status < 0) {
        snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host,
                 uv_strerror(status));
        sender_backoff(s, why);
        return;
    }
    /* Each attempt takes the next address, so one that refuses does not
     * hide the others. */
    for (ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    ai = res;
    for (size_t i = 0; n > 0 && i < s->attempt % n; i++)
        ai = ai->ai_next;
    s->attempt++;
    s->state = SS_CONNECTING;
    s->conn_closing = 0;
    rc =
        tc_tls_connect(s->loop, s->ctx, ai->ai_addr,
                       s->cfg->collector_server_name, &sender_cbs, s, &s->conn);
    uv_freeaddrinfo(res);
    if (rc < 0) {
        s->conn = NULL;
        snprintf(why, sizeof(why), "cannot connect to %s: %s",
                 s->cfg->collector_address, uv_strerror(rc));
        sender_backoff(s, why);
        return;
    }
    uv_timer_start(&s->retry, sender_retry_cb, SENDER_WELCOME_MS, 0);
}

static void
sender_connect(struct sender *s)
{
    struct addrinfo hints;
    char why[192];
    int rc;

    if (s->stopping)
        return;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->state = SS_RESOLVING;
    s->gai.data = s;
    rc = uv_getaddrinfo(s->loop, &s->gai, sender_gai_cb, s->host, s->port,
                        &hints);
    if (rc < 0) {
        snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host,
                 uv_strerror(rc));
        sender_backoff(s, why);
        return;
    }
    s->gai_active = 1;
}

struct sender *
sender_new(uv_loop_t *loop, const struct agent_config *cfg,
           struct tc_tls_ctx *ctx, struct spool *spool, const char *name)
{
    struct sender *s = tc_xcalloc(1, sizeof(*s));

    s->loop = loop;
    s->cfg = cfg;
    s->ctx = ctx;
    s->spool = spool;
    s->name = name;
    s->backoff_ms = cfg->backoff_min_ms;
    s->ping_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : SENDER_PING_MS;
    s->silence_ms = 3 * s->ping_ms;
    if (s->silence_ms < SENDER_SILENCE_MS)
        s->silence_ms = SENDER_SILENCE_MS;
    if (getrandom(&s->rng, sizeof(s->rng), 0) != (ssize_t)sizeof(s->rng) ||
        s->rng == 0)
        s->rng = (uint64_t)tc_mono_ns() | 1;
    tc_buf_init(&s->rx, TC_WIRE_MAX_FRAME + TC_WIRE_HDR);
    tc_buf_init(&s->tx, TC_WIRE_MAX_FRAME + TC_WIRE_HDR);
    tc_frame_init(&s->frame);
    s->inflight = tc_xcalloc(cfg->window_batches, sizeof(*s->inflight));
    return s;
}

int
sender_start(struct sender *s)
{
    uint16_t port;

    if (tc_hostport_split(s->cfg->collector_address, &s->host, &port) < 0) {
        log_warnx("bad collector address '%s'", s->cfg->collector_address);
        return -EINVAL;
    }
    snprintf(s->port, sizeof(s->port), "%u", (unsigned)port);
    uv_timer_init(s->loop, &s->retry);
    uv_timer_init(s->loop, &s->ping);
    uv_timer_init(s->loop, &s->flush);
    s->retry.data = s->ping.data = s->flush.data = s;
    s->started = 1;
    sender_connect(s);
    return 0;
}

void
sender_kick(struct sender *s)
{
    sender_checkpoint(s);
    sender_fill(s);
}

int
sender_connected(const struct sender *s)
{
    return s->state == SS_STREAMING && !s->conn_closing;
}

const char *
sender_link_name(enum sender_link l)
{
    switch (l) {
    case SENDER_LINK_CONNECTING:
        return "connecting";
    case SENDER_LINK_CONNECTED:
        return "connected";
    case SENDER_LINK_BACKOFF:
        return "backoff";
    default:
        return "stopped";
    }
}

/* spool_read_from callback: the ts of the one event asked for. */
static int
sender_first_ts(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    int64_t *ts = arg;
    struct tc_frame f;
    struct tc_event ev;

    tc_frame_init(&f);
    if (tc_event_decode(body, len, NULL, &f, &ev, NULL) == 0)
        *ts = ev.ts;
    tc_frame_close(&f);
    return 0;
}

void
sender_get_status(struct sender *s, struct sender_status *out)
{
    int64_t ts = 0;

    memset(out, 0, sizeof(*out));
    if (!s->started || s->stopping)
        out->link = SENDER_LINK_STOPPED;
    else if (s->state == SS_STREAMING && !s->conn_closing)
        out->link = SENDER_LINK_CONNECTED;
    else if (s->state == SS_IDLE)
        out->link = SENDER_LINK_BACKOFF;
    else
        out->link = SENDER_LINK_CONNECTING;
    snprintf(out->address, sizeof(out->address), "%s",
             s->cfg->collector_address ? s->cfg->collector_address : "");
    snprintf(out->peer, sizeof(out->peer), "%s", s->peer);
    snprintf(out->collector, sizeof(out->collector), "%s", s->collector);
    out->connected_since =
        out->link == SENDER_LINK_CONNECTED ? s->connected_since : 0;
    snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
    out->last_error_at = s->last_error_at;
    out->reconnects = s->reconnects;
    out->events_sent = s->events_sent;
    out->events_acked = s->events_acked;
    out->last_ack_at = s->last_ack_at;
    out->spool_depth = spool_depth(s->spool);
    out->spool_bytes = spool_bytes(s->spool);
    /*
     * Spooled means not acked: the first spooled event is the oldest
     * one the collector does not have. One row read, no scan.
     */
    if (out->spool_depth > 0 &&
        spool_read_from(s->spool, spool_first_seq(s->spool), 1, SIZE_MAX,
                        sender_first_ts, &ts) == 1 &&
        ts > 0) {
        int64_t age = tc_now_ns() - ts;
        out->oldest_unacked_ns = age > 0 ? age : 0;
    }
}

static void
sender_timer_closed(uv_handle_t *h)
{
    struct sender *s = h->data;

    s->closing--;
    sender_check_stopped(s);
}

void
sender_stop(struct sender *s, void (*on_stopped)(void *arg), void *arg)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    s->on_stopped = on_stopped;
    s->stop_arg = arg;
    if (s->started) {
        s->closing = 3;
        uv_close((uv_handle_t *)&s->retry, sender_timer_closed);
        uv_close((uv_handle_t *)&s->ping, sender_timer_closed);
        uv_close((uv_handle_t *)&s->flush, sender_timer_closed);
    }
    if (s->gai_active)
        uv_cancel((uv_req_t *)&s->gai); /* its callback still runs */
    if (s->conn != NULL && !s->conn_closing) {
        if (s->state == SS_STREAMING || s->state == SS_HELLO) {
            struct tc_bye b = {tc_str_c("agent shutting down")};
            if (tc_wire_encode_bye(&s->tx, &b) == 0)
                sender_write_frame(s);
        }
        sender_drop(s, "agent shutting down");
    }
    sender_check_stopped(s);
}

void
sender_free(struct sender *s)
{
    if (s == NULL)
        return;
    free(s->host);
    tc_buf_close(&s->rx);
    tc_buf_close(&s->tx);
    tc_frame_close(&s->frame);
    free(s->inflight);
    free(s);
}

void
sender_trim(struct sender *s)
{
    if (s == NULL || s->nflight > 0)
        return;
    if (tc_buf_size(&s->tx) == 0) {
        tc_buf_close(&s->tx);
        tc_buf_init(&s->tx, TC_WIRE_MAX_FRAME + TC_WIRE_HDR);
    }
    if (tc_buf_size(&s->rx) == 0) {
        tc_buf_close(&s->rx);
        tc_buf_init(&s->rx, TC_WIRE_MAX_FRAME + TC_WIRE_HDR);
    }
}
