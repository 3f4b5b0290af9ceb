/*
 * ingest: a load generator for the collector. It speaks the real
 * protocol over real TLS as N agents (certificates bench-001... issued
 * by tocsinctl into the PKI dir), streams EVENTS with a window of
 * unacked batches, and reports durable events/s: an event counts only
 * once the collector has acked it, i.e. after its group commit.
 *
 *   tocsin-bench-ingest -a 127.0.0.1:7400 -p PKI -n 8 -e 200000 -b 1000 -w 8
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

static void
send_more(struct bench_agent *a)
{
    struct bench *b = a->b;
    struct tc_event *ev = b->ev;
    uint64_t last = a->first + b->events - 1;

    while (a->next <= last && (a->next - a->acked - 1) / b->batch < b->window) {
        uint32_t n = 0;
        int64_t now = tc_now_ns();

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
        if (b->t0 == 0)
            b->t0 = tc_mono_ns();
        send_more(a);
        break;
    case TC_F_ACK:
        if (f->u.ack.seq > a->acked)
            a->acked = f->u.ack.seq;
        if (!a->done && a->acked >= a->first + b->events - 1) {
            a->done = 1;
            b->t1 = tc_mono_ns();
            if (++b->ndone == b->nagents)
                for (uint32_t i = 0; i < b->nagents; i++)
                    if (b->agents[i].conn)
                        tc_tls_close(b->agents[i].conn, "done");
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
}

static void
usage(void)
{
    fprintf(stderr, "usage: tocsin-bench-ingest -a HOST:PORT -p PKI_DIR "
                    "[-n agents] [-e events/agent] [-b batch] [-w window] "
                    "[-m msg_bytes] [-s server_name]\n");
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
    const char *addr = NULL, *pki = NULL;
    char *host = NULL, err[512];
    uint16_t port;
    int ch;

    while ((ch = getopt(argc, argv, "a:p:n:e:b:w:m:s:")) != -1) {
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
        default:
            usage();
        }
    }
    if (!addr || !pki || b.nagents == 0 || b.batch == 0 ||
        b.batch > TC_WIRE_MAX_BATCH || b.window == 0 || b.events == 0)
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
    b.agents = tc_xcalloc(b.nagents, sizeof(*b.agents));
    for (uint32_t i = 0; i < b.nagents; i++) {
        struct bench_agent *a = &b.agents[i];
        struct tc_tls_ctx_opts o = {0};
        char cert[1024], key[1024], ca[1024];

        a->b = &b;
        snprintf(a->name, sizeof(a->name), "bench-%03u", i + 1);
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
    uv_run(b.loop, UV_RUN_DEFAULT);

    uint64_t total = (uint64_t)b.nagents * b.events;
    double secs = (double)(b.t1 - b.t0) / 1e9;
    printf("agents=%u events=%" PRIu64 " batch=%u window=%u msg=%uB "
           "elapsed=%.3fs durable_events_per_s=%.0f%s\n",
           b.nagents, total, b.batch, b.window, b.msg_len, secs,
           secs > 0 ? (double)total / secs : 0.0,
           b.failed ? " (FAILED: see log)" : "");
    for (uint32_t i = 0; i < b.nagents; i++) {
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
