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
 * With -L STORE (the collector's SQLite file) it also measures incident
 * latency: one more agent, probe-001, sends every -i ms one critical
 * event with a rule never seen before (probe-<k>), which must open a
 * new incident, and a 1 ms timer reads the incidents table through a
 * read-only connection (what tocsinctl reads) until it is there. The
 * latency of a probe is from just before its EVENTS frame is written
 * to the TLS connection to the poll that first sees its incident row.
 * -P N probes (default 200). Prints p50, p90, p99 and max.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
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
};

static void finish(struct bench *b);

static void
send_more(struct bench_agent *a)
{
    struct bench *b = a->b;
    struct tc_event *ev = b->ev;
    uint64_t last = a->first + b->events - 1;

    if (a->probe)
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
            e->rule = tc_str_c("bench-error");
            e->sev = TC_SEV_ERROR;
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
        if (a->probe)
            break;
        if (b->t0 == 0)
            b->t0 = tc_mono_ns();
        send_more(a);
        break;
    case TC_F_ACK:
        if (f->u.ack.seq > a->acked)
            a->acked = f->u.ack.seq;
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
    if (b->rate)
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

static void
usage(void)
{
    fprintf(stderr, "usage: tocsin-bench-ingest -a HOST:PORT -p PKI_DIR "
                    "[-n agents] [-e events/agent] [-b batch] [-w window] "
                    "[-m msg_bytes] [-s server_name] [-r events/s] "
                    "[-L store.db [-P probes] [-i interval_ms]]\n");
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
    char *host = NULL, err[512];
    uint16_t port;
    int ch;

    while ((ch = getopt(argc, argv, "a:p:n:e:b:w:m:s:r:L:P:i:")) != -1) {
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
        case 'L':
            store = optarg;
            break;
        case 'P':
            probe.n = (uint32_t)atoi(optarg);
            break;
        case 'i':
            probe.interval = (uint32_t)atoi(optarg);
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
    free(b.msg);
    free(host);
    tc_buf_close(&b.out);
    return b.failed ? 1 : 0;
}
