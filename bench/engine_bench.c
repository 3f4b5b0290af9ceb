/*
 * engine_bench: the cost of one engine step against the incidents the
 * engine holds, with the engine library alone (no store, no I/O but
 * stdout), so that a step's walks show up without SQLite around them.
 *
 *   tocsin-bench-engine -n 100000 -k 1000 -H 100 -R 100 -m 1000 -t 10
 *
 * Opening phase: -n events, each opening an incident of its own (host
 * h<i % H>, rule r<(i / H) % R>, fingerprint f<i / H>), -k per step.
 * Steady phase: -m steps of -t events each, every one folding into an
 * incident already open (a repeat of a random one of them). A step is
 * what collector/store/incidents_store.c runs: per batch (one per
 * host here) problem_engine_host, per event incident_engine_event then
 * problem_engine_evidence with incident_engine_last, then the actions,
 * incident_engine_tick, incident_engine_pending, the incident drain
 * (whose incident callback hands each incident to
 * problem_engine_incident, as w_inc does), problem_engine_tick and the
 * problem drain. Each step is -s ms of engine time after the last.
 *
 * With -c (churn) the steady traffic also raises severities, sends
 * check results (soft states, flapping, OK), agent-silent and back,
 * and acts (ack, resolve, close, note) on random incidents: with -s
 * large enough for ticks to resolve and close, a differential input
 * that takes every path of the engine. -x prints a hash (FNV-1a) of
 * every incident sink call and, apart, of every problem sink call, in
 * order: two builds of the engine given the same options must print
 * the same hashes. -P leaves the problem engine out. The events come
 * from a fixed xorshift seed (-S): the same options, the same input.
 *
 * Printed: per tenth of the opening phase, the held incidents and the
 * mean step time split into the incident engine's part and the problem
 * engine's; then the steady phase's mean, p50, p99 and max per step.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/incident.h"
#include "engine/problem.h"
#include "hash.h"
#include "util.h"
#include "wire.h"

#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)

struct opts {
    uint32_t n;      /* incidents to open */
    uint32_t k;      /* openings per step */
    uint32_t hosts;  /* H */
    uint32_t rules;  /* R */
    uint32_t m;      /* steady steps */
    uint32_t t;      /* events per steady step */
    int64_t step_ns; /* engine time between steps */
    int churn;       /* -c */
    int hash;        /* -x */
    int problems;    /* 0 with -P */
    uint64_t seed;   /* -S */
};

struct bench {
    struct opts o;
    struct incident_engine *e;
    struct problem_engine *pe; /* NULL with -P */
    uint64_t rng;
    int64_t now;     /* engine time of the current step */
    uint64_t ih, ph; /* hashes of the incident and problem sink calls */
    uint64_t pns;    /* ns spent in the problem engine this step */
    uint64_t ninc;   /* incident sink calls, all steps */
    uint64_t nnote;  /* incident timeline entries, all steps */
    uint64_t nprob;  /* problem sink calls, all steps */
};

static uint64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
rnd(struct bench *b)
{
    uint64_t x = b->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return b->rng = x;
}

static uint32_t
rnd_below(struct bench *b, uint32_t n)
{
    return n ? (uint32_t)(rnd(b) % n) : 0;
}

/* ---- hashing of sink calls ---------------------------------------------- */

static uint64_t
h_i64(uint64_t h, int64_t v)
{
    return tc_hash64_add(h, &v, sizeof(v));
}

static uint64_t
h_str(uint64_t h, const char *s)
{
    /* With its NUL, so that "ab","c" and "a","bc" differ. */
    return s ? tc_hash64_add(h, s, strlen(s) + 1) : tc_hash64_add(h, "\xff", 1);
}

static int
on_incident(void *arg, const struct incident *in)
{
    struct bench *b = arg;
    uint64_t t0;

    b->ninc++;
    if (b->o.hash) {
        uint64_t h = h_i64(b->ih, 'I');

        h = h_i64(h, in->id);
        h = h_str(h, in->fingerprint);
        h = h_str(h, in->host);
        h = h_str(h, in->rule);
        h = h_str(h, in->kind);
        h = h_str(h, in->service);
        h = h_i64(h, in->state);
        h = h_i64(h, in->severity);
        h = h_i64(h, in->priority);
        h = h_i64(h, (int64_t)in->count);
        h = h_i64(h, in->first_seen);
        h = h_i64(h, in->last_seen);
        h = h_i64(h, in->opened_at);
        h = h_i64(h, in->acked_at);
        h = h_i64(h, in->resolved_at);
        h = h_i64(h, in->closed_at);
        h = h_i64(h, in->reopened);
        h = h_i64(h, in->tier1);
        h = h_i64(h, in->silenced);
        b->ih = h_i64(h, in->flapping);
    }
    if (b->pe != NULL) {
        /* What w_inc does after writing the row. */
        t0 = mono_ns();
        problem_engine_incident(b->pe, in);
        b->pns += mono_ns() - t0;
    }
    return 0;
}

static int
on_fp(void *arg, const struct incident_fp *fp)
{
    struct bench *b = arg;

    if (b->o.hash) {
        uint64_t h = h_i64(b->ih, 'F');

        h = h_str(h, fp->fingerprint);
        h = h_i64(h, fp->attempts);
        h = h_i64(h, fp->since);
        h = h_i64(h, fp->history);
        b->ih = h_i64(h, fp->flapping);
    }
    return 0;
}

static int
on_note(void *arg, const struct incident_note *n)
{
    struct bench *b = arg;

    b->nnote++;
    if (b->o.hash) {
        uint64_t h = h_i64(b->ih, 'N');

        h = h_i64(h, n->incident_id);
        h = h_i64(h, n->ts);
        h = h_str(h, n->what);
        h = h_str(h, n->who);
        b->ih = h_str(h, n->detail);
    }
    return 0;
}

static int
pn_problem(void *arg, const struct problem *p)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'P');

    b->nprob++;
    h = h_i64(h, p->id);
    h = h_i64(h, p->state);
    h = h_str(h, p->rule);
    h = h_str(h, p->key);
    h = h_str(h, p->title);
    h = h_i64(h, p->opened_at);
    h = h_i64(h, p->investigating_at);
    h = h_i64(h, p->known_error_at);
    h = h_i64(h, p->resolved_at);
    h = h_i64(h, p->closed_at);
    h = h_i64(h, p->quiet_since);
    h = h_i64(h, p->root_incident);
    b->ph = h_str(h, p->root_host);
    return 0;
}

static int
pn_link(void *arg, const struct problem_link *l)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'L');

    b->nprob++;
    h = h_i64(h, l->incident_id);
    h = h_i64(h, l->problem_id);
    h = h_i64(h, l->ts);
    h = h_i64(h, l->removed);
    h = h_str(h, l->rule);
    b->ph = h_str(h, l->fields);
    return 0;
}

static int
pn_candidates(void *arg, int64_t problem_id, const struct problem_candidate *c,
              size_t n)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'C');

    b->nprob++;
    h = h_i64(h, problem_id);
    h = h_i64(h, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        h = h_i64(h, c[i].rank);
        h = h_str(h, c[i].host);
        h = h_i64(h, c[i].incident_id);
        h = h_i64(h, c[i].score);
        h = h_str(h, c[i].evidence);
    }
    b->ph = h;
    return 0;
}

static int
pn_mark(void *arg, const struct problem_mark *m)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'M');

    b->nprob++;
    h = h_i64(h, m->incident_id);
    h = h_i64(h, m->problem_id);
    h = h_i64(h, m->inhibited);
    b->ph = h_i64(h, m->manual);
    return 0;
}

static int
pn_ref(void *arg, const struct problem_ref *r)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'R');

    b->nprob++;
    h = h_i64(h, r->incident_id);
    h = h_str(h, r->host);
    h = h_str(h, r->field);
    h = h_str(h, r->value);
    b->ph = h_i64(h, r->ts);
    return 0;
}

static int
pn_opening(void *arg, const struct problem_opening *o)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'O');

    b->nprob++;
    h = h_str(h, o->cls);
    h = h_i64(h, o->incident_id);
    b->ph = h_i64(h, o->ts);
    return 0;
}

static int
pn_note(void *arg, const struct problem_note *n)
{
    struct bench *b = arg;
    uint64_t h = h_i64(b->ph, 'N');

    b->nprob++;
    h = h_i64(h, n->problem_id);
    h = h_i64(h, n->ts);
    h = h_str(h, n->what);
    h = h_str(h, n->who);
    b->ph = h_str(h, n->detail);
    return 0;
}

/* ---- input ----------------------------------------------------------------
 */

/* One event with the strings it points into. */
struct evbuf {
    struct tc_event ev;
    struct tc_kv labels[2];
    struct tc_kv fields[1];
    char host[32], kind[16], rule[32], fp[32], svc[16], peer[40];
};

static struct tc_str
s_of(const char *s)
{
    return (struct tc_str){s, strlen(s)};
}

static void
ev_init(struct evbuf *x, int64_t t, const char *kind, enum tc_severity sev)
{
    memset(&x->ev, 0, sizeof(x->ev));
    snprintf(x->kind, sizeof(x->kind), "%s", kind);
    x->ev.ts = t;
    x->ev.event_ts = t;
    x->ev.kind = s_of(x->kind);
    x->ev.sev = sev;
    x->ev.state = -1;
    x->ev.count = 1;
    x->ev.message = s_of("bench");
    x->ev.source = s_of("/var/log/bench.log");
}

/* The log event of opening i (host, rule, fingerprint, labels). */
static void
ev_opening(const struct bench *b, struct evbuf *x, uint32_t i, int64_t t,
           enum tc_severity sev)
{
    uint32_t h = i % b->o.hosts, c = i / b->o.hosts, r = c % b->o.rules;

    ev_init(x, t, "log", sev);
    snprintf(x->host, sizeof(x->host), "h%05" PRIu32, h);
    snprintf(x->rule, sizeof(x->rule), "r%04" PRIu32, r);
    snprintf(x->fp, sizeof(x->fp), "f%" PRIu32, c);
    snprintf(x->svc, sizeof(x->svc), "svc%" PRIu32, r % 10);
    x->ev.host = s_of(x->host);
    x->ev.rule = s_of(x->rule);
    x->ev.fingerprint = s_of(x->fp);
    x->labels[0] = (struct tc_kv){s_of("service"), s_of(x->svc)};
    x->labels[1] = (struct tc_kv){s_of("tier"), s_of("1")};
    x->ev.labels = x->labels;
    /* One rule in 50 is tier 1: priority raises on the way. */
    x->ev.nlabels = r % 50 == 7 ? 2 : 1;
    if (i % 100 == 3) {
        /* A captured field naming another host: the reference rule. */
        snprintf(x->peer, sizeof(x->peer), "h%05" PRIu32 ":5432",
                 (h + 1) % b->o.hosts);
        x->fields[0] = (struct tc_kv){s_of("peer"), s_of(x->peer)};
        x->ev.fields = x->fields;
        x->ev.nfields = 1;
    }
}

static void
feed(struct bench *b, struct evbuf *x)
{
    uint64_t t0;

    incident_engine_event(b->e, x->host, &x->ev);
    if (b->pe != NULL) {
        t0 = mono_ns();
        problem_engine_host(b->pe, x->host);
        problem_engine_evidence(b->pe, incident_engine_last(b->e), x->host,
                                &x->ev);
        b->pns += mono_ns() - t0;
    }
}

/* The end of a step: tick, pending, drains. */
static void
step_end(struct bench *b)
{
    static const struct incident_sink isink = {on_incident, on_fp, on_note};
    static const struct problem_sink psink = {
        pn_problem, pn_link,    pn_candidates, pn_mark,
        pn_ref,     pn_opening, pn_note};
    uint64_t t0;
    int rc;

    incident_engine_tick(b->e, b->now);
    /* The store asks on every step that had no input; asked on all
     * here, for its cost. */
    (void)incident_engine_pending(b->e);
    if ((rc = incident_engine_drain(b->e, &isink, b)) != 0) {
        fprintf(stderr, "incident drain: %d\n", rc);
        exit(1);
    }
    if (b->pe == NULL)
        return;
    t0 = mono_ns();
    problem_engine_tick(b->pe, b->now);
    (void)problem_engine_pending(b->pe);
    rc = problem_engine_drain(b->pe, &psink, b);
    b->pns += mono_ns() - t0;
    if (rc != 0) {
        fprintf(stderr, "problem drain: %d\n", rc);
        exit(1);
    }
}

/* One steady-phase event (and, with churn, maybe an action). */
static void
steady_event(struct bench *b, struct evbuf *x, uint32_t opened, int64_t t)
{
    uint32_t what = b->o.churn ? rnd_below(b, 100) : 0;
    uint32_t i = rnd_below(b, opened);
    enum tc_severity sev = TC_SEV_ERROR;

    if (what >= 90) {
        /* A check result: 60% OK, else WARNING or CRITICAL. */
        uint32_t st = rnd_below(b, 10);

        ev_init(x, t, "check", TC_SEV_OK);
        snprintf(x->host, sizeof(x->host), "h%05" PRIu32,
                 rnd_below(b, b->o.hosts));
        snprintf(x->rule, sizeof(x->rule), "chk%" PRIu32, rnd_below(b, 8));
        x->ev.host = s_of(x->host);
        x->ev.rule = s_of(x->rule);
        x->ev.source = s_of(x->rule);
        x->ev.state = st < 6 ? 0 : st < 8 ? 1 : 2;
        x->ev.sev = x->ev.state == 0   ? TC_SEV_OK
                    : x->ev.state == 1 ? TC_SEV_WARNING
                                       : TC_SEV_CRITICAL;
        feed(b, x);
        return;
    }
    if (what >= 87) {
        /* The agent falls silent, or is back. */
        ev_init(x, t, "agent", what == 87 ? TC_SEV_OK : TC_SEV_ERROR);
        snprintf(x->host, sizeof(x->host), "h%05" PRIu32,
                 rnd_below(b, b->o.hosts));
        snprintf(x->rule, sizeof(x->rule), "agent-silent");
        x->ev.host = s_of(x->host);
        x->ev.rule = s_of(x->rule);
        feed(b, x);
        return;
    }
    if (what >= 80) {
        /* A human acts on some incident (it may be closed: refused). */
        struct incident_action a = {
            .ts = t,
            .user = "bench",
            .verb = (enum incident_verb)rnd_below(b, 4),
            .incident_id = 1 + (int64_t)rnd_below(b, opened + opened / 10),
            .text = "bench"};

        (void)incident_engine_action(b->e, &a);
        return;
    }
    if (what >= 75)
        sev = TC_SEV_CRITICAL;
    else if (what >= 70)
        sev = TC_SEV_WARNING;
    ev_opening(b, x, i, t, sev);
    feed(b, x);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: tocsin-bench-engine [-n N] [-k K] [-H hosts] [-R rules]"
            " [-m steps] [-t events] [-s step_ms] [-S seed] [-c] [-x] [-P]\n");
    exit(2);
}

static uint32_t
num(const char *s)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v > UINT32_MAX)
        usage();
    return (uint32_t)v;
}

int
main(int argc, char **argv)
{
    struct incident_config icfg = {60 * 60 * SEC, 30 * 60 * SEC, 3, 50, 25};
    struct problem_config pcfg;
    struct bench b;
    struct evbuf x;
    uint64_t *steady, open_start, part_start, part_pns = 0, total;
    uint32_t steps, tenth;
    int c;

    memset(&b, 0, sizeof(b));
    b.o = (struct opts){100000,
                        1000,
                        100,
                        100,
                        1000,
                        10,
                        100 * 1000000LL,
                        0,
                        0,
                        1,
                        0x9e3779b97f4a7c15ULL};
    while ((c = getopt(argc, argv, "n:k:H:R:m:t:s:S:cxP")) != -1) {
        switch (c) {
        case 'n':
            b.o.n = num(optarg);
            break;
        case 'k':
            b.o.k = num(optarg);
            break;
        case 'H':
            b.o.hosts = num(optarg);
            break;
        case 'R':
            b.o.rules = num(optarg);
            break;
        case 'm':
            b.o.m = num(optarg);
            break;
        case 't':
            b.o.t = num(optarg);
            break;
        case 's':
            b.o.step_ns = (int64_t)num(optarg) * 1000000;
            break;
        case 'S':
            b.o.seed = num(optarg) | 1;
            break;
        case 'c':
            b.o.churn = 1;
            break;
        case 'x':
            b.o.hash = 1;
            break;
        case 'P':
            b.o.problems = 0;
            break;
        default:
            usage();
        }
    }
    if (optind != argc || b.o.k == 0 || b.o.hosts == 0 || b.o.rules == 0 ||
        b.o.n == 0)
        usage();
    b.rng = b.o.seed;
    b.ih = b.ph = TC_HASH64_INIT;
    b.e = incident_engine_new(&icfg);
    problem_config_default(&pcfg);
    if (b.o.problems)
        b.pe = problem_engine_new(&pcfg);
    b.now = T0;

    steps = (b.o.n + b.o.k - 1) / b.o.k;
    tenth = steps >= 10 ? steps / 10 : 1;
    printf("engine bench: open %" PRIu32 " incidents, %" PRIu32
           " per step (%" PRIu32 " steps), %" PRIu32 " hosts, %" PRIu32
           " rules, problems %s\n",
           b.o.n, b.o.k, steps, b.o.hosts, b.o.rules,
           b.o.problems ? "on" : "off");
    printf("%10s %8s %12s %12s %12s\n", "held", "steps", "ms/step",
           "incident ms", "problem ms");
    open_start = part_start = mono_ns();
    for (uint32_t s = 0; s < steps; s++) {
        uint32_t from = s * b.o.k, to = from + b.o.k;

        if (to > b.o.n)
            to = b.o.n;
        b.now += b.o.step_ns;
        for (uint32_t i = from; i < to; i++) {
            ev_opening(&b, &x, i, b.now + i - from,
                       i % 7 == 0 ? TC_SEV_CRITICAL : TC_SEV_ERROR);
            feed(&b, &x);
        }
        step_end(&b);
        part_pns += b.pns;
        b.pns = 0;
        if ((s + 1) % tenth == 0 || s + 1 == steps) {
            uint64_t now = mono_ns();
            uint32_t n = (s + 1) % tenth ? (s + 1) % tenth : tenth;
            double ms = (double)(now - part_start) / 1e6 / n;
            double pms = (double)part_pns / 1e6 / n;

            printf("%10zu %8" PRIu32 " %12.3f %12.3f %12.3f\n",
                   incident_engine_size(b.e), s + 1, ms, ms - pms, pms);
            fflush(stdout);
            part_start = now;
            part_pns = 0;
        }
    }
    total = mono_ns() - open_start;
    printf("open phase: %.3f s for %" PRIu32 " steps, %zu held\n",
           (double)total / 1e9, steps, incident_engine_size(b.e));

    if (b.o.m > 0) {
        uint64_t sum = 0, psum = 0;
        uint32_t opened = b.o.n;

        steady = tc_xreallocarray(NULL, b.o.m, sizeof(*steady));
        for (uint32_t s = 0; s < b.o.m; s++) {
            uint64_t t0 = mono_ns();

            b.now += b.o.step_ns;
            for (uint32_t i = 0; i < b.o.t; i++)
                steady_event(&b, &x, opened, b.now + i);
            step_end(&b);
            steady[s] = mono_ns() - t0;
            sum += steady[s];
            psum += b.pns;
            b.pns = 0;
        }
        tc_qsort(steady, b.o.m, sizeof(*steady), cmp_u64);
        printf("steady phase: %" PRIu32 " steps of %" PRIu32
               " events%s, %zu held at the end\n",
               b.o.m, b.o.t, b.o.churn ? " (churn)" : "",
               incident_engine_size(b.e));
        printf("  us/step: mean %.1f (incident %.1f, problem %.1f)"
               " p50 %.1f p99 %.1f max %.1f\n",
               (double)sum / 1e3 / b.o.m, (double)(sum - psum) / 1e3 / b.o.m,
               (double)psum / 1e3 / b.o.m, (double)steady[b.o.m / 2] / 1e3,
               (double)steady[(size_t)b.o.m * 99 / 100] / 1e3,
               (double)steady[b.o.m - 1] / 1e3);
        free(steady);
    }
    printf("output: %" PRIu64 " incident rows, %" PRIu64
           " incident notes, %" PRIu64 " problem sink calls\n",
           b.ninc, b.nnote, b.nprob);
    if (b.o.hash)
        printf("hash: incident %016" PRIx64 " problem %016" PRIx64 "\n", b.ih,
               b.o.problems ? b.ph : 0);
    problem_engine_free(b.pe);
    incident_engine_free(b.e);
    return 0;
}
