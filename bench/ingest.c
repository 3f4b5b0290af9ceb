/*
 * ingest: a load generator for the collector. It speaks the real
 * protocol over real TLS as N agents (certificates bench-001... issued
 * by tocsinctl into the PKI dir), streams EVENTS with a window of
 * unacked batches, and reports durable events/s: an event counts only
 * once the collector has acked it, i.e. after its group commit.
 *
 *   tocsin-bench-ingest -a 127.0.0.1:7400 -p PKI -n 8 -e 200000 -b 1000 -w 8
 *
 * With -r RATE the agents together send at most RATE events/s (paced
 * every 5 ms) instead of as fast as acks allow: background load.
 *
 * With -U every event has a rule of its own (bench-u<seq>), so that each
 * one opens an incident of its own through the real engine: how
 * bench/api.sh fills a store with -n x -e incidents.
 *
 * With -L STORE (the collector's SQLite file) it also measures incident
 * latency: one more agent, probe-001, sends every -i ms one critical
 * event with a rule never seen before (probe-<k>), which must open a
 * new incident, and a 1 ms timer reads the incidents table through a
 * read-only connection (what tocsinctl reads) until it is there. The
 * latency of a probe is from just before its EVENTS frame is written
 * to the TLS connection to the poll that first sees its incident row.
 * -P N probes (default 200). Prints p50, p90, p99 and max.
 *
 * With -S STORE it is a storm (issue 11, bench/storm): -n agents named
 * db-7 and app-00001..., -e background events over all of them, spread
 * evenly over -D seconds (default 60) in batches of -b, plus failures
 * (-F DB,LEAK,NOISE, default 300,200,50): db-7 goes down, then DB hosts
 * log errors naming db-7:5432 (captured field peer), a worker leak
 * creeps over LEAK hosts, and NOISE hosts each log a warning of a class
 * of their own. The ground truth: one problem rooted at db-7 with DB + 1
 * incidents, one spread problem of the LEAK incidents, NOISE unlinked.
 * Sessions connect -c at a time (a ramp that is not timed); the storm
 * starts when all are welcomed. Missing certificates are issued into
 * the PKI dir with the same code as tocsinctl pki issue-agent. A thread
 * polls the store read-only every 5 ms for new incidents and new problem
 * links, in one read transaction each, so an incident opened and linked
 * by the same engine step is seen in the same poll: the latency from
 * incident to problem is the time between the polls that first saw each
 * (error at most one poll interval). It also samples the collector's
 * loop-lag file (STORE-stats) about once a second, for the lag during
 * the storm apart from the ramp. At the end it compares the problems
 * with the ground truth.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "pki.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

struct bench_agent {
    struct bench *b;
    struct tc_tls_conn *conn; /* NULL once closed */
    struct tc_tls_ctx *ctx;   /* this agent's certificate; owned */
    char name[32];
    struct tc_buf in; /* received bytes, reassembled into frames */
    struct tc_frame frame;
    uint64_t first;        /* first seq of this run (hwm + 1) */
    uint64_t next;         /* next seq to send */
    uint64_t acked;        /* highest seq acked */
    uint64_t sent_batches; /* unacked batches in flight = see below */
    int welcomed;
    int done;
    int probe; /* the latency probe agent */
    /* -S storm: */
    uint64_t bg_total; /* background events this agent sends */
    uint64_t bg_sent;
    uint32_t fails_left; /* failure events not yet sent */
    int64_t fail_sent;   /* mono ns its failure event was written */
    int connecting;      /* connect started, not welcomed or closed */
};

/* Incident latency probing (-L). */
struct probe {
    sqlite3 *db;
    sqlite3_stmt *poll;
    uint32_t n;        /* probes to send */
    uint32_t interval; /* ms between probes */
    uint32_t sent;
    uint32_t seen;
    int64_t *t_sent; /* mono ns per probe, 0 = not yet sent */
    int64_t *lat;    /* ns per probe, -1 = not yet seen */
    int64_t last_id; /* highest incident id read */
    uv_timer_t send_timer, poll_timer;
};

struct bench {
    uv_loop_t *loop;
    struct tc_tls_ctx *ctx;
    struct sockaddr_storage addr;
    const char *server_name;
    uint32_t nagents;
    uint64_t events;  /* per agent */
    uint32_t batch;   /* events per EVENTS frame */
    uint32_t window;  /* unacked batches per agent */
    uint32_t msg_len; /* bytes of message text per event */
    struct bench_agent *agents;
    uint32_t ndone, nclosed;
    int64_t t0, t1;      /* monotonic ns: first WELCOME, last ACK */
    struct tc_buf out;   /* scratch for encoding */
    char *msg;           /* message text shared by all events */
    struct tc_event *ev; /* batch scratch, batch entries */
    int failed;
    uint64_t rate;       /* -r: events/s over all agents, 0 = no cap */
    uv_timer_t pace;     /* -r: sends what the rate allows, every 5 ms */
    struct probe *probe; /* -L, or NULL */
    int finished;        /* finish() closed everything */
    struct storm *storm; /* -S, or NULL */
    int unique;          /* -U: a rule per event, i.e. an incident each */
    char (*rules)[32];   /* -U: rule names of the batch, batch entries */
};

/* -S: the storm's failures, in time order. */
enum storm_kind { SK_DB_DOWN, SK_DB_ERR, SK_LEAK, SK_NOISE };

struct storm_fail {
    int64_t at; /* ns after the storm's start */
    uint32_t agent;
    uint32_t k; /* noise class number */
    enum storm_kind kind;
};

/* The poller thread's view: when each incident and link was first seen. */
struct storm_poll {
    sqlite3 *db;
    uv_thread_t thread;
    atomic_int stop;
    int64_t *inc_seen;  /* mono ns by incident id, 0 = not seen */
    int64_t *link_seen; /* mono ns of the incident's first link */
    size_t cap;         /* entries of both (incident ids < cap) */
    int64_t last_inc, last_link;
    uint64_t polls;
    int64_t poll_max; /* ns, the longest poll */
    /* The collector's loop-lag file, sampled about once a second. */
    char lag_path[1100];
    struct lag_sample {
        int64_t updated; /* wall ns the collector wrote it */
        uint64_t stalls, recent_max_us;
    } * lag;
    size_t nlag, caplag;
};

struct storm {
    const char *store;
    uint32_t secs;                  /* -D */
    uint32_t n_db, n_leak, n_noise; /* -F */
    uint32_t concurrency;           /* -c: handshakes at once */
    struct storm_fail *fails;
    uint32_t nfails, next_fail;
    uint32_t next_connect, nconnecting, nwelcomed;
    int64_t ramp0;            /* mono ns: first connect */
    int64_t t0;               /* mono ns: all welcomed, the storm starts */
    int64_t t0_wall, t1_wall; /* wall ns: the storm's start, last ack */
    uint64_t sent, acked;     /* events over all agents */
    struct tc_kv peer;        /* the db errors' captured field */
    struct storm_poll poll;   /* the latency poller */
};

static void finish(struct bench *b);
static void storm_welcomed(struct bench_agent *a);
static void storm_check_done(struct bench_agent *a);

static void
send_more(struct bench_agent *a)
{
    struct bench *b = a->b;
    struct tc_event *ev = b->ev;
    uint64_t last = a->first + b->events - 1;

    if (a->probe || b->storm)
        return;
    if (b->rate && b->t0) {
        /* This agent's share of what the rate allows so far. */
        uint64_t allowed = (uint64_t)((double)(tc_mono_ns() - b->t0) / 1e9 *
                                      (double)b->rate / b->nagents);
        if (a->first + allowed < last)
            last = a->first + allowed;
    }
    while (a->next <= last && (a->next - a->acked - 1) / b->batch < b->window) {
        uint32_t n = 0;
        int64_t now = tc_now_ns();

        if (!a->conn)
            return;
        while (n < b->batch && a->next <= last) {
            struct tc_event *e = &ev[n++];
            memset(e, 0, sizeof(*e));
            e->seq = a->next++;
            e->ts = now;
            e->host = tc_str_c(a->name);
            e->kind = tc_str_c("log");
            e->source = tc_str_c("/var/log/bench.log");
            e->sev = TC_SEV_ERROR;
            if (b->unique) {
                snprintf(b->rules[n - 1], sizeof(b->rules[0]),
                         "bench-u%" PRIu64, e->seq);
                e->rule = tc_str_c(b->rules[n - 1]);
            } else
                e->rule = tc_str_c("bench-error");
            e->state = -1;
            e->message = tc_str_c(b->msg);
            e->count = 1;
        }
        tc_buf_reset(&b->out);
        if (tc_wire_encode_events(&b->out, ev, n) < 0)
            fatalx("encode failed");
        if (tc_tls_write(a->conn, tc_buf_head(&b->out), tc_buf_size(&b->out)) <
            0)
            return;
    }
}

static void
on_frame(struct bench_agent *a, struct tc_frame *f)
{
    struct bench *b = a->b;

    switch (f->type) {
    case TC_F_WELCOME:
        a->welcomed = 1;
        a->first = a->next = f->u.welcome.hwm + 1;
        a->acked = f->u.welcome.hwm;
        if (b->storm) {
            storm_welcomed(a);
            break;
        }
        if (a->probe)
            break;
        if (b->t0 == 0)
            b->t0 = tc_mono_ns();
        send_more(a);
        break;
    case TC_F_ACK:
        if (b->storm && f->u.ack.seq > a->acked)
            b->storm->acked += f->u.ack.seq - a->acked;
        if (f->u.ack.seq > a->acked)
            a->acked = f->u.ack.seq;
        if (b->storm) {
            storm_check_done(a);
            break;
        }
        if (a->probe)
            break;
        if (!a->done && a->acked >= a->first + b->events - 1) {
            a->done = 1;
            b->t1 = tc_mono_ns();
            b->ndone++;
            finish(b);
            break;
        }
        send_more(a);
        break;
    case TC_F_BYE:
        log_warnx("%s: BYE: %.*s", a->name, (int)f->u.bye.reason.len,
                  f->u.bye.reason.ptr);
        break;
    default:
        break;
    }
}

static void
on_ready(struct tc_tls_conn *c)
{
    struct bench_agent *a = tc_tls_get_data(c);
    struct tc_hello h = {
        .version_min = 1,
        .version_max = 1,
        .agent = tc_str_c(a->name),
        .epoch = ((uint64_t)rand() << 32) ^ (uint64_t)rand(),
        .software = tc_str_c("tocsin-bench-ingest"),
    };

    /*
     * Storm agents send nothing while the others connect (the ramp may
     * take longer than 3 x 30 s): a long heartbeat keeps the collector
     * from declaring them silent, which would open incidents of its own.
     */
    if (a->b->storm)
        h.heartbeat_ms = 600000;

    tc_buf_reset(&a->b->out);
    tc_wire_encode_hello(&a->b->out, &h);
    tc_tls_write(c, tc_buf_head(&a->b->out), tc_buf_size(&a->b->out));
}

static void
on_data(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    struct bench_agent *a = tc_tls_get_data(c);

    if (tc_buf_append(&a->in, p, n) < 0) {
        tc_tls_close(c, "input overflow");
        return;
    }
    for (;;) {
        const uint8_t *body;
        size_t blen;
        const char *why = NULL;
        long used = tc_wire_next(tc_buf_head(&a->in), tc_buf_size(&a->in),
                                 TC_WIRE_MAX_FRAME, &body, &blen);
        if (used == 0)
            break;
        if (used < 0 || tc_wire_decode(body, blen, &tc_wire_default_limits,
                                       &a->frame, &why) < 0) {
            log_warnx("%s: bad frame from collector: %s", a->name,
                      why ? why : "framing");
            tc_tls_close(c, "bad frame");
            return;
        }
        on_frame(a, &a->frame);
        tc_frame_close(&a->frame);
        if (a->conn == NULL)
            return;
        tc_buf_consume(&a->in, (size_t)used);
    }
}

static void
on_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct bench_agent *a = tc_tls_get_data(c);

    if (!a->done) {
        log_warnx("%s: closed early: %s", a->name, reason);
        a->b->failed = 1;
    }
    if (a->connecting && a->b->storm)
        a->b->storm->nconnecting--;
    a->connecting = 0;
    a->conn = NULL;
    a->b->nclosed++;
    finish(a->b);
}

/* Close everything once the load is done and every probe was seen. */
static void
finish(struct bench *b)
{
    struct probe *p = b->probe;

    if (b->finished ||
        (!b->failed && (b->ndone < b->nagents || (p && p->seen < p->n))))
        return;
    b->finished = 1;
    if (b->rate || b->storm)
        uv_close((uv_handle_t *)&b->pace, NULL);
    if (p) {
        uv_close((uv_handle_t *)&p->send_timer, NULL);
        uv_close((uv_handle_t *)&p->poll_timer, NULL);
    }
    for (uint32_t i = 0; i < b->nagents + (p != NULL); i++) {
        b->agents[i].done = 1;
        if (b->agents[i].conn)
            tc_tls_close(b->agents[i].conn, "done");
    }
}

static void
pace_cb(uv_timer_t *t)
{
    struct bench *b = t->data;

    for (uint32_t i = 0; i < b->nagents; i++)
        if (b->agents[i].welcomed && !b->agents[i].done)
            send_more(&b->agents[i]);
}

static void
probe_send_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct probe *p = b->probe;
    struct bench_agent *a = &b->agents[b->nagents];
    struct tc_event e;
    char rule[32];

    if (!a->welcomed || a->conn == NULL)
        return;
    if (p->sent == p->n) {
        /* Ten seconds after the last probe, give up on the missing. */
        if (tc_mono_ns() - p->t_sent[p->n - 1] > 10000000000LL) {
            log_warnx("%u of %u probes never became incidents", p->n - p->seen,
                      p->n);
            b->failed = 1;
            finish(b);
        }
        return;
    }
    snprintf(rule, sizeof(rule), "probe-%u", p->sent);
    memset(&e, 0, sizeof(e));
    e.seq = a->next++;
    e.ts = tc_now_ns();
    e.host = tc_str_c(a->name);
    e.kind = tc_str_c("log");
    e.source = tc_str_c("/var/log/probe.log");
    e.rule = tc_str_c(rule);
    e.sev = TC_SEV_CRITICAL;
    e.state = -1;
    e.message = tc_str_c("incident latency probe");
    e.count = 1;
    tc_buf_reset(&b->out);
    if (tc_wire_encode_events(&b->out, &e, 1) < 0)
        fatalx("encode failed");
    p->t_sent[p->sent++] = tc_mono_ns();
    tc_tls_write(a->conn, tc_buf_head(&b->out), tc_buf_size(&b->out));
}

static void
probe_poll_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct probe *p = b->probe;
    int rc;

    sqlite3_bind_int64(p->poll, 1, p->last_id);
    while ((rc = sqlite3_step(p->poll)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(p->poll, 0);
        const char *rule = (const char *)sqlite3_column_text(p->poll, 1);
        char *end;
        unsigned long k;

        if (id > p->last_id)
            p->last_id = id;
        if (rule == NULL || strncmp(rule, "probe-", 6) != 0)
            continue;
        k = strtoul(rule + 6, &end, 10);
        if (*end != '\0' || k >= p->sent || p->lat[k] >= 0)
            continue;
        p->lat[k] = tc_mono_ns() - p->t_sent[k];
        p->seen++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_BUSY)
        log_warnx("poll: %s", sqlite3_errmsg(p->db));
    sqlite3_reset(p->poll);
    if (p->seen == p->n)
        finish(b);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void
probe_report(const struct probe *p)
{
    int64_t *v = tc_xcalloc(p->n ? p->n : 1, sizeof(*v));
    uint32_t n = 0;

    for (uint32_t i = 0; i < p->sent; i++)
        if (p->lat[i] >= 0)
            v[n++] = p->lat[i];
    if (n > 0) {
        qsort(v, n, sizeof(*v), cmp_i64);
        printf("incident latency: probes=%u seen=%u p50=%.1fms p90=%.1fms "
               "p99=%.1fms max=%.1fms\n",
               p->sent, n, (double)v[(n - 1) * 50 / 100] / 1e6,
               (double)v[(n - 1) * 90 / 100] / 1e6,
               (double)v[(n - 1) * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
    } else {
        printf("incident latency: probes=%u seen=0\n", p->sent);
    }
    free(v);
}

/*
 * -S: the storm. Forward declarations at the top of the file; the
 * pacing, the failures, the poller and the ground truth are here.
 */
static const struct tc_tls_cbs storm_cbs = {on_ready, on_data, NULL, on_close};

static void
storm_connect_more(struct bench *b)
{
    struct storm *st = b->storm;
    char err[512];

    while (st->nconnecting < st->concurrency && st->next_connect < b->nagents) {
        struct bench_agent *a = &b->agents[st->next_connect++];
        struct tc_tls_conn *conn = NULL;

        if (tc_tls_connect(b->loop, a->ctx, (struct sockaddr *)&b->addr,
                           b->server_name, &storm_cbs, a, &conn) < 0)
            fatalx("%s: connect failed", a->name);
        a->conn = conn;
        a->connecting = 1;
        st->nconnecting++;
        /* The connection holds its own reference (tls.h). */
        tc_tls_ctx_free(a->ctx);
        a->ctx = NULL;
    }
    (void)err;
}

static void
storm_welcomed(struct bench_agent *a)
{
    struct bench *b = a->b;
    struct storm *st = b->storm;

    if (a->connecting) {
        a->connecting = 0;
        st->nconnecting--;
    }
    st->nwelcomed++;
    storm_connect_more(b);
    if (st->nwelcomed == b->nagents) {
        st->t0 = b->t0 = tc_mono_ns();
        st->t0_wall = tc_now_ns();
        printf("ramp: %u sessions welcomed in %.1fs\n", b->nagents,
               (double)(st->t0 - st->ramp0) / 1e9);
        fflush(stdout);
    }
}

static void
storm_check_done(struct bench_agent *a)
{
    struct bench *b = a->b;

    if (a->done || a->bg_sent < a->bg_total || a->fails_left > 0 ||
        a->acked + 1 < a->next)
        return;
    a->done = 1;
    b->t1 = tc_mono_ns();
    if (b->storm)
        b->storm->t1_wall = tc_now_ns();
    b->ndone++;
    finish(b);
}

/* One EVENTS frame of n background events, or of one failure f. */
static void
storm_send(struct bench_agent *a, uint32_t n, const struct storm_fail *f)
{
    struct bench *b = a->b;
    struct storm *st = b->storm;
    struct tc_event *ev = b->ev;
    int64_t now = tc_now_ns();
    char rule[32], msg[160];

    if (a->conn == NULL)
        return;
    for (uint32_t i = 0; i < (f ? 1 : n); i++) {
        struct tc_event *e = &ev[i];

        memset(e, 0, sizeof(*e));
        e->seq = a->next++;
        e->ts = now;
        e->host = tc_str_c(a->name);
        e->kind = tc_str_c("log");
        e->source = tc_str_c("/var/log/app.log");
        e->state = -1;
        e->count = 1;
        if (f == NULL) {
            /* Requests served: stored and fed, but open nothing. */
            e->rule = tc_str_c("access");
            e->sev = TC_SEV_OK;
            e->message = tc_str_c(b->msg);
            continue;
        }
        switch (f->kind) {
        case SK_DB_DOWN:
            e->rule = tc_str_c("db-down");
            e->sev = TC_SEV_CRITICAL;
            e->message = tc_str_c("postgres: could not write to WAL: "
                                  "No space left on device");
            break;
        case SK_DB_ERR:
            e->rule = tc_str_c("db-timeout");
            e->sev = TC_SEV_ERROR;
            e->message = tc_str_c("connect to db-7:5432 timed out");
            e->fields = &st->peer;
            e->nfields = 1;
            break;
        case SK_LEAK:
            e->rule = tc_str_c("worker-leak");
            e->sev = TC_SEV_ERROR;
            e->message = tc_str_c("worker rss 3.9 GiB over its 3 GiB limit");
            break;
        case SK_NOISE:
            snprintf(rule, sizeof(rule), "noise-%u", f->k);
            snprintf(msg, sizeof(msg), "sporadic failure %u", f->k);
            e->rule = tc_str_c(rule);
            e->sev = TC_SEV_WARNING;
            e->message = tc_str_c(msg);
            break;
        }
    }
    tc_buf_reset(&b->out);
    if (tc_wire_encode_events(&b->out, ev, f ? 1 : n) < 0)
        fatalx("encode failed");
    st->sent += f ? 1 : n;
    tc_tls_write(a->conn, tc_buf_head(&b->out), tc_buf_size(&b->out));
}

/* Every 10 ms: the failures now due, then each agent's background. */
static void
storm_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    struct storm *st = b->storm;
    int64_t el;
    double frac;

    if (st->t0 == 0 || b->finished)
        return;
    el = tc_mono_ns() - st->t0;
    frac = (double)el / ((double)st->secs * 1e9);
    if (frac > 1.0)
        frac = 1.0;
    while (st->next_fail < st->nfails && st->fails[st->next_fail].at <= el) {
        const struct storm_fail *f = &st->fails[st->next_fail++];
        struct bench_agent *a = &b->agents[f->agent];

        a->fail_sent = tc_mono_ns();
        storm_send(a, 1, f);
        a->fails_left--;
    }
    for (uint32_t i = 0; i < b->nagents; i++) {
        struct bench_agent *a = &b->agents[i];
        uint64_t allowed = (uint64_t)((double)a->bg_total * frac);
        uint64_t due = allowed - a->bg_sent;

        if (allowed < a->bg_sent)
            continue;
        /* A batch when one is full, and the rest at the end. */
        while (due >= b->batch || (due > 0 && allowed == a->bg_total)) {
            uint32_t n = due < b->batch ? (uint32_t)due : b->batch;

            if (a->next - a->acked - 1 >= (uint64_t)b->window * b->batch)
                break; /* the window is full: wait for acks */
            storm_send(a, n, NULL);
            a->bg_sent += n;
            due -= n;
        }
        storm_check_done(a);
    }
}

/*
 * The poller thread: new incidents and new problem links, in one read
 * transaction, every 5 ms. The engine writes a step (incidents and
 * links together) in one transaction, so one poll sees all of it.
 */
static void
storm_grow(struct storm_poll *p, int64_t id)
{
    size_t cap = p->cap;

    if ((size_t)id < cap)
        return;
    while ((size_t)id >= cap)
        cap *= 2;
    p->inc_seen = tc_xreallocarray(p->inc_seen, cap, sizeof(int64_t));
    p->link_seen = tc_xreallocarray(p->link_seen, cap, sizeof(int64_t));
    memset(p->inc_seen + p->cap, 0, (cap - p->cap) * sizeof(int64_t));
    memset(p->link_seen + p->cap, 0, (cap - p->cap) * sizeof(int64_t));
    p->cap = cap;
}

/* One sample of the collector's stats file (looplag.h), if it is new. */
static void
storm_lag_sample(struct storm_poll *p)
{
    struct lag_sample x = {0};
    char line[128];
    FILE *f = fopen(p->lag_path, "r");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        sscanf(line, "updated %" SCNd64, &x.updated);
        sscanf(line, "loop_lag_stalls %" SCNu64, &x.stalls);
        sscanf(line, "loop_lag_recent_max_us %" SCNu64, &x.recent_max_us);
    }
    fclose(f);
    if (x.updated == 0 ||
        (p->nlag > 0 && p->lag[p->nlag - 1].updated == x.updated))
        return;
    if (p->nlag == p->caplag) {
        p->caplag = p->caplag ? 2 * p->caplag : 256;
        p->lag = tc_xreallocarray(p->lag, p->caplag, sizeof(*p->lag));
    }
    p->lag[p->nlag++] = x;
}

static void
storm_poll_thread(void *arg)
{
    struct storm_poll *p = arg;
    sqlite3_stmt *inc = NULL, *link = NULL;

    if (sqlite3_prepare_v2(p->db, "SELECT id FROM incidents WHERE id > ?1", -1,
                           &inc, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(p->db,
                           "SELECT id, incident_id FROM problem_links"
                           " WHERE id > ?1 AND removed = 0",
                           -1, &link, NULL) != SQLITE_OK)
        fatalx("poll: %s", sqlite3_errmsg(p->db));
    while (!atomic_load(&p->stop)) {
        struct timespec ts = {0, 5000000};
        int64_t t0 = tc_mono_ns(), now;

        if (sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            goto next;
        now = tc_mono_ns();
        sqlite3_bind_int64(inc, 1, p->last_inc);
        while (sqlite3_step(inc) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(inc, 0);
            storm_grow(p, id);
            if (p->inc_seen[id] == 0)
                p->inc_seen[id] = now;
            if (id > p->last_inc)
                p->last_inc = id;
        }
        sqlite3_reset(inc);
        sqlite3_bind_int64(link, 1, p->last_link);
        while (sqlite3_step(link) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(link, 0);
            int64_t iid = sqlite3_column_int64(link, 1);
            if (iid > 0) {
                storm_grow(p, iid);
                if (p->link_seen[iid] == 0)
                    p->link_seen[iid] = now;
            }
            if (id > p->last_link)
                p->last_link = id;
        }
        sqlite3_reset(link);
        sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
        p->polls++;
        if (p->polls % 100 == 0)
            storm_lag_sample(p);
        if (tc_mono_ns() - t0 > p->poll_max)
            p->poll_max = tc_mono_ns() - t0;
    next:
        nanosleep(&ts, NULL);
    }
    sqlite3_finalize(inc);
    sqlite3_finalize(link);
}

/* A deterministic shuffle (xorshift), so every run picks the same hosts. */
static uint64_t
storm_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int
cmp_fail(const void *x, const void *y)
{
    const struct storm_fail *a = x, *b = y;

    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->agent < b->agent ? -1 : a->agent > b->agent;
}

static void
storm_setup(struct bench *b, const char *pki)
{
    struct storm *st = b->storm;
    uint32_t napps = b->nagents - 1, *perm, nf = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL, total = b->events;
    int64_t d = (int64_t)st->secs * 1000000000LL;
    char err[512];

    if (st->n_db + st->n_leak + st->n_noise > napps)
        fatalx("-F %u,%u,%u needs more than %u agents", st->n_db, st->n_leak,
               st->n_noise, b->nagents);
    st->peer.key = tc_str_c("peer");
    st->peer.val = tc_str_c("db-7:5432");
    perm = tc_xcalloc(napps, sizeof(*perm));
    for (uint32_t i = 0; i < napps; i++)
        perm[i] = i + 1;
    for (uint32_t i = napps - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(storm_rand(&rng) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    st->nfails = 1 + st->n_db + st->n_leak + st->n_noise;
    st->fails = tc_xcalloc(st->nfails, sizeof(*st->fails));
    /* db-7 fails at 15% of the storm; its clients over the next 50%. */
    st->fails[nf++] = (struct storm_fail){d * 15 / 100, 0, 0, SK_DB_DOWN};
    for (uint32_t i = 0; i < st->n_db; i++)
        st->fails[nf++] =
            (struct storm_fail){d * 15 / 100 + 1000000 + (d / 2) * i / st->n_db,
                                perm[i], 0, SK_DB_ERR};
    /* The leak creeps from 5% to 90%, one host after another. */
    for (uint32_t i = 0; i < st->n_leak; i++)
        st->fails[nf++] =
            (struct storm_fail){d * 5 / 100 + (d * 85 / 100) * i / st->n_leak,
                                perm[st->n_db + i], 0, SK_LEAK};
    /* Noise: anywhere, each of its own class. */
    for (uint32_t i = 0; i < st->n_noise; i++)
        st->fails[nf++] =
            (struct storm_fail){(int64_t)(storm_rand(&rng) % (uint64_t)d),
                                perm[st->n_db + st->n_leak + i], i, SK_NOISE};
    qsort(st->fails, st->nfails, sizeof(*st->fails), cmp_fail);
    for (uint32_t i = 0; i < st->nfails; i++)
        b->agents[st->fails[i].agent].fails_left++;
    free(perm);

    for (uint32_t i = 0; i < b->nagents; i++) {
        struct bench_agent *a = &b->agents[i];
        struct tc_tls_ctx_opts o = {0};
        char cert[1024], key[1024], ca[1024];

        a->b = b;
        if (i == 0)
            snprintf(a->name, sizeof(a->name), "db-7");
        else
            snprintf(a->name, sizeof(a->name), "app-%05u", i);
        a->bg_total = total / b->nagents + (i < total % b->nagents);
        snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
        snprintf(cert, sizeof(cert), "%s/%s.crt", pki, a->name);
        snprintf(key, sizeof(key), "%s/%s.key", pki, a->name);
        if (access(cert, R_OK) != 0 &&
            tc_pki_issue_agent(pki, a->name, -300, 86400L * 30, err,
                               sizeof(err)) < 0)
            fatalx("%s", err);
        o.ca = ca;
        o.cert = cert;
        o.key = key;
        if (tc_tls_ctx_new(&o, &a->ctx, err, sizeof(err)) < 0)
            fatalx("%s", err);
        tc_buf_init(&a->in, 2 * TC_WIRE_MAX_FRAME);
        tc_frame_init(&a->frame);
    }
}

static int
storm_start(struct bench *b)
{
    struct storm *st = b->storm;
    struct storm_poll *p = &st->poll;

    if (sqlite3_open_v2(st->store, &p->db, SQLITE_OPEN_READONLY, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(p->db, 1000) != SQLITE_OK) {
        log_warnx("%s: %s", st->store, sqlite3_errmsg(p->db));
        return -1;
    }
    snprintf(p->lag_path, sizeof(p->lag_path), "%s-stats", st->store);
    p->cap = 1024;
    p->inc_seen = tc_xcalloc(p->cap, sizeof(int64_t));
    p->link_seen = tc_xcalloc(p->cap, sizeof(int64_t));
    if (uv_thread_create(&p->thread, storm_poll_thread, p) != 0)
        fatalx("cannot start the poller thread");
    uv_timer_init(b->loop, &b->pace);
    b->pace.data = b;
    uv_timer_start(&b->pace, storm_tick, 10, 10);
    /*
     * The loop's time was cached before the certificates were loaded
     * (seconds for thousands): timers started from it (the handshake
     * timeout) would be due at once.
     */
    uv_update_time(b->loop);
    st->ramp0 = tc_mono_ns();
    storm_connect_more(b);
    return 0;
}

/* One SQL count from the store; -1 on error. */
static int64_t
storm_count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        log_warnx("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return v;
}

static void
storm_pct(const char *what, int64_t *v, int64_t n)
{
    if (n == 0) {
        printf("%s: none\n", what);
        return;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    printf("%s: n=%" PRId64 " p50=%.1fms p99=%.1fms max=%.1fms\n", what, n,
           (double)v[(n - 1) * 50 / 100] / 1e6,
           (double)v[(n - 1) * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
}

/*
 * From each failure event written to its TLS session to the poll that
 * first saw its incident, and its problem link: the whole path under
 * the storm (ingest, group commit, engine step), for comparison with
 * the incident -> problem figure, which starts at the incident.
 */
static void
storm_e2e(struct bench *b)
{
    struct storm_poll *p = &b->storm->poll;
    int64_t *open = tc_xcalloc(p->cap, sizeof(int64_t));
    int64_t *link = tc_xcalloc(p->cap, sizeof(int64_t));
    int64_t no = 0, nl = 0;
    sqlite3_stmt *s = NULL;

    if (sqlite3_prepare_v2(p->db, "SELECT id, host FROM incidents", -1, &s,
                           NULL) != SQLITE_OK) {
        log_warnx("incidents: %s", sqlite3_errmsg(p->db));
        goto out;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0);
        const char *host = (const char *)sqlite3_column_text(s, 1);
        unsigned long i = 0;
        struct bench_agent *a;

        if (host == NULL || id <= 0 || (size_t)id >= p->cap)
            continue;
        if (strncmp(host, "app-", 4) == 0)
            i = strtoul(host + 4, NULL, 10);
        else if (strcmp(host, "db-7") != 0)
            continue;
        if (i >= b->nagents || b->agents[i].fail_sent == 0)
            continue;
        a = &b->agents[i];
        if (p->inc_seen[id])
            open[no++] = p->inc_seen[id] - a->fail_sent;
        if (p->link_seen[id])
            link[nl++] = p->link_seen[id] - a->fail_sent;
    }
    storm_pct("failure event -> incident visible", open, no);
    storm_pct("failure event -> problem link visible", link, nl);
out:
    sqlite3_finalize(s);
    free(open);
    free(link);
}

/*
 * After the load: wait until the engine has fed every batch (the
 * incident count stops moving for 2 s, at most 60 s), stop the poller,
 * then print the latency and the problems against the ground truth.
 * Returns 0 when the problems are the expected ones.
 */
static int
storm_report(struct bench *b)
{
    struct storm *st = b->storm;
    struct storm_poll *p = &st->poll;
    int64_t want = 1 + st->n_db + st->n_leak + st->n_noise, n, last = -1;
    int64_t settle0 = tc_mono_ns(), stable = tc_mono_ns();
    int64_t *lat, same = 0, nl = 0;
    int ok;

    for (;;) {
        struct timespec ts = {0, 100000000};

        n = storm_count(p->db, "SELECT count(*) FROM incidents");
        if (n != last) {
            last = n;
            stable = tc_mono_ns();
        }
        if ((n >= want && tc_mono_ns() - stable > 2000000000LL) ||
            tc_mono_ns() - settle0 > 60000000000LL)
            break;
        nanosleep(&ts, NULL);
    }
    /* Two more polls after the last change. */
    {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&p->stop, 1);
    uv_thread_join(&p->thread);
    printf("settled %.1fs after the last ack\n",
           (double)(stable - b->t1) / 1e9);

    lat = tc_xcalloc(p->cap, sizeof(*lat));
    for (size_t id = 1; id < p->cap; id++) {
        if (p->inc_seen[id] == 0 || p->link_seen[id] == 0)
            continue;
        lat[nl] = p->link_seen[id] - p->inc_seen[id];
        if (lat[nl] < 0)
            lat[nl] = 0; /* a link seen before its incident: same step */
        same += lat[nl] == 0;
        nl++;
    }
    if (nl > 0) {
        qsort(lat, (size_t)nl, sizeof(*lat), cmp_i64);
        printf("incident->problem latency: linked=%" PRId64
               " same_step=%" PRId64 " p50=%.1fms p99=%.1fms max=%.1fms"
               " (polls=%" PRIu64 " every 5ms, longest poll %.1fms)\n",
               nl, same, (double)lat[(nl - 1) * 50 / 100] / 1e6,
               (double)lat[(nl - 1) * 99 / 100] / 1e6,
               (double)lat[nl - 1] / 1e6, p->polls, (double)p->poll_max / 1e6);
    } else {
        printf("incident->problem latency: no incident was linked\n");
    }
    free(lat);
    storm_e2e(b);
    {
        /*
         * The collector's loop during the storm alone (its stats since
         * start include the ramp's handshakes): the samples written
         * after the storm started and up to a second after its last ack.
         */
        uint64_t mx = 0, s0 = 0, s1 = 0;
        size_t nsamp = 0;

        for (size_t i = 0; i < p->nlag; i++) {
            const struct lag_sample *x = &p->lag[i];
            if (x->updated <= st->t0_wall)
                s0 = s1 = x->stalls;
            else if (x->updated <= st->t1_wall + 1000000000LL) {
                nsamp++;
                s1 = x->stalls;
                if (x->recent_max_us > mx)
                    mx = x->recent_max_us;
            }
        }
        printf("collector loop lag during the storm: max %.1fms, stalls "
               "over 100 ms %" PRIu64 " (%zu samples of its stats file)\n",
               (double)mx / 1e3, s1 - s0, nsamp);
        free(p->lag);
    }

    /* The ground truth. */
    {
        int64_t inc = storm_count(p->db, "SELECT count(*) FROM incidents");
        int64_t probs = storm_count(p->db, "SELECT count(*) FROM problems");
        int64_t db_prob = storm_count(
            p->db, "SELECT count(*) FROM problems WHERE root_host = 'db-7'");
        int64_t db_in = storm_count(
            p->db, "SELECT count(*) FROM incidents i JOIN problems p"
                   " ON i.problem = p.id WHERE p.root_host = 'db-7'"
                   " AND (i.rule = 'db-timeout' OR i.host = 'db-7')");
        int64_t db_all = storm_count(
            p->db, "SELECT count(*) FROM incidents i JOIN problems p"
                   " ON i.problem = p.id WHERE p.root_host = 'db-7'");
        int64_t leak_prob = storm_count(
            p->db, "SELECT count(DISTINCT i.problem) FROM incidents i"
                   " WHERE i.rule = 'worker-leak' AND i.problem != 0");
        int64_t leak_in = storm_count(
            p->db, "SELECT count(*) FROM incidents i JOIN problems p"
                   " ON i.problem = p.id WHERE p.rule = 'spread'"
                   " AND i.rule = 'worker-leak'");
        int64_t noise_free = storm_count(
            p->db, "SELECT count(*) FROM incidents WHERE rule LIKE 'noise-%'"
                   " AND problem = 0");
        int64_t events =
            storm_count(p->db, "SELECT coalesce(sum(n), 0)"
                               " FROM batches WHERE origin = 'agent'");

        printf("incidents=%" PRId64 " (expected %" PRId64 ")"
               " problems=%" PRId64 " (expected 2)\n",
               inc, want, probs);
        printf("  db-7: problems rooted at db-7=%" PRId64 " (expected 1),"
               " with %" PRId64 " of its %" PRIu32 " incidents (%" PRId64
               " incidents in all)\n",
               db_prob, db_in, st->n_db + 1, db_all);
        printf("  leak: problems=%" PRId64 " (expected 1), spread problem"
               " holds %" PRId64 " of %" PRIu32 " incidents\n",
               leak_prob, leak_in, st->n_leak);
        printf("  noise: unlinked %" PRId64 " of %" PRIu32 "\n", noise_free,
               st->n_noise);
        printf("  events stored (agent batches): %" PRId64 "\n", events);
        ok = inc == want && probs == 2 && db_prob == 1 &&
             db_in == st->n_db + 1 && db_all == db_in && leak_prob == 1 &&
             leak_in == st->n_leak && noise_free == st->n_noise;
        printf("ground truth: %s\n", ok ? "MET" : "NOT MET");
    }
    sqlite3_close(p->db);
    free(p->inc_seen);
    free(p->link_seen);
    free(st->fails);
    return ok ? 0 : -1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: tocsin-bench-ingest -a HOST:PORT -p PKI_DIR "
                    "[-n agents] [-e events/agent] [-b batch] [-w window] "
                    "[-m msg_bytes] [-s server_name] [-r events/s] [-U] "
                    "[-L store.db [-P probes] [-i interval_ms]]\n"
                    "       tocsin-bench-ingest -a HOST:PORT -p PKI_DIR "
                    "-S store.db [-n agents] [-e events] [-b batch] "
                    "[-w window] [-D secs] [-F db,leak,noise] "
                    "[-c connecting]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static const struct tc_tls_cbs cbs = {on_ready, on_data, NULL, on_close};
    struct bench b = {.nagents = 4,
                      .events = 100000,
                      .batch = 1000,
                      .window = 8,
                      .msg_len = 120,
                      .server_name = "localhost"};
    const char *addr = NULL, *pki = NULL, *store = NULL;
    struct probe probe = {.n = 200, .interval = 50};
    struct storm storm = {.secs = 60,
                          .n_db = 300,
                          .n_leak = 200,
                          .n_noise = 50,
                          .concurrency = 100};
    char *host = NULL, err[512];
    uint16_t port;
    int ch;

    while ((ch = getopt(argc, argv, "a:p:n:e:b:w:m:s:r:UL:P:i:S:D:F:c:")) !=
           -1) {
        switch (ch) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            pki = optarg;
            break;
        case 'n':
            b.nagents = (uint32_t)atoi(optarg);
            break;
        case 'e':
            b.events = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            b.batch = (uint32_t)atoi(optarg);
            break;
        case 'w':
            b.window = (uint32_t)atoi(optarg);
            break;
        case 'm':
            b.msg_len = (uint32_t)atoi(optarg);
            break;
        case 's':
            b.server_name = optarg;
            break;
        case 'r':
            b.rate = strtoull(optarg, NULL, 10);
            break;
        case 'U':
            b.unique = 1;
            break;
        case 'L':
            store = optarg;
            break;
        case 'P':
            probe.n = (uint32_t)atoi(optarg);
            break;
        case 'i':
            probe.interval = (uint32_t)atoi(optarg);
            break;
        case 'S':
            storm.store = optarg;
            break;
        case 'D':
            storm.secs = (uint32_t)atoi(optarg);
            break;
        case 'F':
            if (sscanf(optarg, "%u,%u,%u", &storm.n_db, &storm.n_leak,
                       &storm.n_noise) != 3)
                usage();
            break;
        case 'c':
            storm.concurrency = (uint32_t)atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (!addr || !pki || b.nagents == 0 || b.batch == 0 ||
        b.batch > TC_WIRE_MAX_BATCH || b.window == 0 || b.events == 0 ||
        (store && (probe.n == 0 || probe.interval == 0)))
        usage();
    log_init("bench-ingest", 1, 0);
    if (tc_hostport_split(addr, &host, &port) < 0 ||
        uv_ip4_addr(host, port, (struct sockaddr_in *)&b.addr) != 0)
        fatalx("bad address %s (want IPv4:port)", addr);
    b.loop = uv_default_loop();
    tc_buf_init(&b.out, TC_WIRE_MAX_FRAME);
    b.msg = tc_xmalloc(b.msg_len + 1);
    for (uint32_t i = 0; i < b.msg_len; i++)
        b.msg[i] = (char)('a' + i % 26);
    b.msg[b.msg_len] = '\0';
    b.ev = tc_xcalloc(b.batch, sizeof(*b.ev));
    b.rules = tc_xcalloc(b.batch, sizeof(*b.rules));
    if (storm.store) {
        int rc;

        if (store || b.rate || b.nagents < 2 || storm.secs == 0 ||
            storm.concurrency == 0)
            usage();
        b.storm = &storm;
        b.agents = tc_xcalloc(b.nagents, sizeof(*b.agents));
        storm_setup(&b, pki);
        if (storm_start(&b) < 0)
            return 1;
        uv_run(b.loop, UV_RUN_DEFAULT);
        {
            double secs = (double)(b.t1 - storm.t0) / 1e9;
            printf("agents=%u events=%" PRIu64 " (background %" PRIu64
                   " + failures %u) batch=%u window=%u storm=%us "
                   "elapsed=%.3fs acked_events_per_s=%.0f%s\n",
                   b.nagents, storm.acked, b.events, storm.nfails, b.batch,
                   b.window, storm.secs, secs,
                   secs > 0 ? (double)storm.acked / secs : 0.0,
                   b.failed ? " (FAILED: see log)" : "");
        }
        {
            struct rusage ru;

            getrusage(RUSAGE_SELF, &ru);
            printf("generator: peak_rss=%ld kB cpu=%.2fs\n", ru.ru_maxrss,
                   (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
                           1e6);
        }
        rc = storm_report(&b);
        for (uint32_t i = 0; i < b.nagents; i++) {
            tc_buf_close(&b.agents[i].in);
            tc_frame_close(&b.agents[i].frame);
            tc_tls_ctx_free(b.agents[i].ctx);
        }
        uv_loop_close(b.loop);
        free(b.agents);
        free(b.ev);
        free(b.rules);
        free(b.msg);
        free(host);
        tc_buf_close(&b.out);
        return b.failed || rc < 0 ? 1 : 0;
    }
    if (store) {
        if (sqlite3_open_v2(store, &probe.db, SQLITE_OPEN_READONLY, NULL) !=
                SQLITE_OK ||
            sqlite3_busy_timeout(probe.db, 1000) != SQLITE_OK ||
            sqlite3_prepare_v2(probe.db,
                               "SELECT id, rule FROM incidents WHERE id > ?1"
                               " ORDER BY id",
                               -1, &probe.poll, NULL) != SQLITE_OK)
            fatalx("%s: %s", store, sqlite3_errmsg(probe.db));
        probe.t_sent = tc_xcalloc(probe.n, sizeof(*probe.t_sent));
        probe.lat = tc_xmalloc(probe.n * sizeof(*probe.lat));
        for (uint32_t i = 0; i < probe.n; i++)
            probe.lat[i] = -1;
        b.probe = &probe;
    }
    b.agents = tc_xcalloc(b.nagents + 1, sizeof(*b.agents));
    for (uint32_t i = 0; i < b.nagents + (store != NULL); i++) {
        struct bench_agent *a = &b.agents[i];
        struct tc_tls_ctx_opts o = {0};
        char cert[1024], key[1024], ca[1024];

        a->b = &b;
        if (i == b.nagents) {
            a->probe = 1;
            snprintf(a->name, sizeof(a->name), "probe-001");
        } else {
            snprintf(a->name, sizeof(a->name), "bench-%03u", i + 1);
        }
        snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
        snprintf(cert, sizeof(cert), "%s/%s.crt", pki, a->name);
        snprintf(key, sizeof(key), "%s/%s.key", pki, a->name);
        o.ca = ca;
        o.cert = cert;
        o.key = key;
        if (tc_tls_ctx_new(&o, &a->ctx, err, sizeof(err)) < 0)
            fatalx("%s", err);
        tc_buf_init(&a->in, 2 * TC_WIRE_MAX_FRAME);
        tc_frame_init(&a->frame);
        if (tc_tls_connect(b.loop, a->ctx, (struct sockaddr *)&b.addr,
                           b.server_name, &cbs, a, &a->conn) < 0)
            fatalx("connect failed");
    }
    if (b.rate) {
        uv_timer_init(b.loop, &b.pace);
        b.pace.data = &b;
        uv_timer_start(&b.pace, pace_cb, 5, 5);
    }
    if (store) {
        /* Probes start after a second of background load. */
        uv_timer_init(b.loop, &probe.send_timer);
        uv_timer_init(b.loop, &probe.poll_timer);
        probe.send_timer.data = probe.poll_timer.data = &b;
        uv_timer_start(&probe.send_timer, probe_send_cb, 1000, probe.interval);
        uv_timer_start(&probe.poll_timer, probe_poll_cb, 1, 1);
    }
    uv_run(b.loop, UV_RUN_DEFAULT);

    uint64_t total = (uint64_t)b.nagents * b.events;
    double secs = (double)(b.t1 - b.t0) / 1e9;
    printf("agents=%u events=%" PRIu64 " batch=%u window=%u msg=%uB "
           "elapsed=%.3fs durable_events_per_s=%.0f%s\n",
           b.nagents, total, b.batch, b.window, b.msg_len, secs,
           secs > 0 ? (double)total / secs : 0.0,
           b.failed ? " (FAILED: see log)" : "");
    if (store) {
        probe_report(&probe);
        sqlite3_finalize(probe.poll);
        sqlite3_close(probe.db);
        free(probe.t_sent);
        free(probe.lat);
    }
    for (uint32_t i = 0; i < b.nagents + (store != NULL); i++) {
        tc_buf_close(&b.agents[i].in);
        tc_frame_close(&b.agents[i].frame);
        tc_tls_ctx_free(b.agents[i].ctx);
    }
    uv_loop_close(b.loop);
    free(b.agents);
    free(b.ev);
    free(b.rules);
    free(b.msg);
    free(host);
    tc_buf_close(&b.out);
    return b.failed ? 1 : 0;
}
