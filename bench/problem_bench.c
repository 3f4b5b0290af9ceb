/*
 * tocsin-bench-problem: the problem engine alone (collector/engine/
 * problem.c), fed a deterministic synthetic stream, timed, and every
 * drained output hashed, so that two builds of the engine (before and
 * after a change) can be compared for speed and for identical output
 * (bench/README.md, "problem engine").
 *
 *   tocsin-bench-problem [HELD [FILL_STEPS [STEADY_STEPS [SEED]]]]
 *
 * Fill: HELD incidents open in FILL_STEPS steps (default 100,000 in
 * 100). Steady: STEADY_STEPS steps (default 200) that each touch 10
 * incidents (openings, resolutions, closes, evidence, a user action
 * now and then). The mix: 2,000 hosts in four tiers (web, app, queue,
 * db; two topology rules on a few hosts), most incidents of a class of their
 * own (as bench/api.sh seeds them), 1 in 64 of one of 8 shared classes
 * (spread, trend), 1 in 16 with evidence whose captured field names
 * another host (reference, ranking). Shared-class incidents resolve
 * and close again, so that spread problems come and go.
 *
 * Prints the fill time, the steady step's mean time (CPU time of the
 * process, so that other load on the machine does not count),
 * incidents and problems held, and an FNV-1a hash of every sink call
 * in order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/incident.h"
#include "engine/problem.h"

#define NS INT64_C(1000000000)
#define NHOSTS 2000
#define NSHARED 8

struct binc {
    int64_t id;
    int host;
    int shared; /* -1: a class of its own */
    enum incident_state state;
    int prio;
    int64_t opened_at, first_seen, resolved_at, closed_at;
};

static uint64_t rng_state;
static struct binc *incs;
static size_t ninc, capinc;
static int64_t next_id = 1;
static uint64_t hash = UINT64_C(14695981039346656037);
static uint64_t ncalls;

static uint64_t
rnd(void)
{
    /* splitmix64: the same stream on every platform. */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void
h_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        hash ^= b[i];
        hash *= UINT64_C(1099511628211);
    }
}

static void
h_i64(int64_t v)
{
    h_bytes(&v, sizeof(v));
}

static void
h_str(const char *s)
{
    if (s == NULL) {
        h_i64(-1);
        return;
    }
    h_i64((int64_t)strlen(s));
    h_bytes(s, strlen(s));
}

static int
s_problem(void *arg, const struct problem *p)
{
    (void)arg;
    ncalls++;
    h_i64(1);
    h_i64(p->id);
    h_i64(p->state);
    h_str(p->rule);
    h_str(p->key);
    h_str(p->title);
    h_i64(p->opened_at);
    h_i64(p->investigating_at);
    h_i64(p->known_error_at);
    h_i64(p->resolved_at);
    h_i64(p->closed_at);
    h_i64(p->quiet_since);
    h_i64(p->root_incident);
    h_str(p->root_host);
    h_str(p->root_cause);
    h_str(p->workaround);
    return 0;
}

static int
s_link(void *arg, const struct problem_link *l)
{
    (void)arg;
    ncalls++;
    h_i64(2);
    h_i64(l->incident_id);
    h_i64(l->problem_id);
    h_i64(l->ts);
    h_i64(l->removed);
    h_str(l->rule);
    h_str(l->fields);
    return 0;
}

static int
s_cands(void *arg, int64_t pid, const struct problem_candidate *c, size_t n)
{
    (void)arg;
    ncalls++;
    h_i64(3);
    h_i64(pid);
    h_i64((int64_t)n);
    for (size_t i = 0; i < n; i++) {
        h_i64(c[i].rank);
        h_str(c[i].host);
        h_i64(c[i].incident_id);
        h_i64(c[i].score);
        h_str(c[i].evidence);
    }
    return 0;
}

static int
s_mark(void *arg, const struct problem_mark *m)
{
    (void)arg;
    ncalls++;
    h_i64(4);
    h_i64(m->incident_id);
    h_i64(m->problem_id);
    h_i64(m->inhibited);
    h_i64(m->manual);
    return 0;
}

static int
s_ref(void *arg, const struct problem_ref *r)
{
    (void)arg;
    ncalls++;
    h_i64(5);
    h_i64(r->incident_id);
    h_str(r->host);
    h_str(r->field);
    h_str(r->value);
    h_i64(r->ts);
    return 0;
}

static int
s_opening(void *arg, const struct problem_opening *o)
{
    (void)arg;
    ncalls++;
    h_i64(6);
    h_str(o->cls);
    h_i64(o->incident_id);
    h_i64(o->ts);
    return 0;
}

static int
s_note(void *arg, const struct problem_note *n)
{
    (void)arg;
    ncalls++;
    h_i64(7);
    h_i64(n->problem_id);
    h_i64(n->ts);
    h_str(n->what);
    h_str(n->who);
    h_str(n->detail);
    return 0;
}

static const struct problem_sink sink = {s_problem, s_link,    s_cands, s_mark,
                                         s_ref,     s_opening, s_note};

static const char *const tiers[] = {"web", "app", "queue", "db"};

static void
host_name(char *buf, size_t len, int h)
{
    snprintf(buf, len, "%s-%04d", tiers[h % 4], h);
}

/* Feed one incident's state to the engine as the incident drain does. */
static void
feed(struct problem_engine *e, const struct binc *b)
{
    char host[32], fp[96], rule[48];
    struct incident in;

    host_name(host, sizeof(host), b->host);
    if (b->shared >= 0)
        snprintf(rule, sizeof(rule), "shared-%d", b->shared);
    else
        snprintf(rule, sizeof(rule), "bench-c%" PRId64, b->id);
    snprintf(fp, sizeof(fp), "%s\x1f%s", host, rule);
    memset(&in, 0, sizeof(in));
    in.id = b->id;
    in.fingerprint = fp;
    in.host = host;
    in.rule = rule;
    in.kind = "log";
    in.service = "";
    in.state = b->state;
    in.severity = (enum tc_severity)(b->id % 5);
    in.priority = b->prio;
    in.count = 1;
    in.first_seen = b->first_seen;
    in.last_seen = b->first_seen;
    in.opened_at = b->opened_at;
    in.resolved_at = b->resolved_at;
    in.closed_at = b->closed_at;
    problem_engine_incident(e, &in);
}

/* An event of b whose captured field names another host. */
static void
evidence(struct problem_engine *e, const struct binc *b, int64_t now)
{
    char host[32], named[64];
    struct tc_kv kv;
    struct tc_event ev;
    int other = (int)(rnd() % NHOSTS);

    if (other == b->host)
        other = (other + 1) % NHOSTS;
    /* Mostly downwards (web names app, app names queue ...). */
    if (rnd() % 4 != 0)
        other = (other / 4) * 4 + (b->host % 4 + 1) % 4;
    host_name(host, sizeof(host), b->host);
    host_name(named, sizeof(named), other);
    if (rnd() % 2)
        strcat(named, ":5432");
    memset(&ev, 0, sizeof(ev));
    kv.key = (struct tc_str){"upstream", 8};
    kv.val = (struct tc_str){named, (uint32_t)strlen(named)};
    ev.ts = now;
    ev.kind = (struct tc_str){"log", 3};
    ev.host = (struct tc_str){host, (uint32_t)strlen(host)};
    ev.fields = &kv;
    ev.nfields = 1;
    problem_engine_evidence(e, b->id, host, &ev);
}

static struct binc *
open_one(struct problem_engine *e, int64_t now)
{
    struct binc *b;

    if (ninc == capinc) {
        capinc = capinc ? capinc * 2 : 1024;
        incs = realloc(incs, capinc * sizeof(*incs));
        if (incs == NULL)
            abort();
    }
    b = &incs[ninc++];
    memset(b, 0, sizeof(*b));
    b->id = next_id++;
    b->host = (int)(rnd() % NHOSTS);
    b->shared = rnd() % 64 == 0 ? (int)(rnd() % NSHARED) : -1;
    b->state = INCIDENT_OPEN;
    b->prio = rnd() % 50 == 0 ? 2 : 3 + (int)(rnd() % 3);
    b->opened_at = b->first_seen = now;
    if (rnd() % 16 == 0)
        evidence(e, b, now);
    return b;
}

static void
resolve(struct binc *b, int64_t now)
{
    if (b->state == INCIDENT_OPEN || b->state == INCIDENT_ACKED) {
        b->state = INCIDENT_RESOLVED;
        b->resolved_at = now;
    } else if (b->state == INCIDENT_RESOLVED) {
        b->state = INCIDENT_CLOSED;
        b->closed_at = now;
    }
}

static double
secs(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) +
           (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* One step's end: tick and drain, as the engine step does. */
static void
step_end(struct problem_engine *e, int64_t now)
{
    problem_engine_tick(e, now);
    if (problem_engine_drain(e, &sink, NULL) != 0)
        abort();
}

/* A user action on a random problem, now and then. */
static void
action(struct problem_engine *e, int64_t now, uint64_t r)
{
    struct problem_action a;
    const struct binc *b = &incs[r % ninc];
    struct problem_mark m = problem_engine_mark(e, b->id);

    memset(&a, 0, sizeof(a));
    a.ts = now;
    a.user = "bench";
    if (m.problem_id != 0 && r % 3 == 0) {
        a.verb = PROBLEM_V_UNLINK;
        a.problem_id = m.problem_id;
        a.incident_id = b->id;
    } else if (m.problem_id != 0) {
        a.verb = PROBLEM_V_INVESTIGATE;
        a.problem_id = m.problem_id;
    } else {
        const struct binc *o = &incs[(r >> 20) % ninc];
        struct problem_mark om = problem_engine_mark(e, o->id);

        if (om.problem_id == 0)
            return;
        a.verb = PROBLEM_V_LINK;
        a.problem_id = om.problem_id;
        a.incident_id = b->id;
        a.text = "bench link";
    }
    (void)problem_engine_action(e, &a);
}

int
main(int argc, char **argv)
{
    size_t held = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t fill = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    size_t steady = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    struct problem_config c;
    struct problem_dep deps[2] = {{"web-000*", "app-0001", 0},
                                  {"app-00*", "db-0003", 0}};
    struct problem_engine *e;
    struct timespec t0, t1, t2;
    int64_t now = INT64_C(1700000000) * NS;
    size_t per;

    rng_state = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
    if (fill == 0)
        fill = 1;
    per = (held + fill - 1) / fill;
    problem_config_default(&c);
    c.resolve_after_ns = 120 * NS;
    c.deps = deps;
    c.ndeps = 2;
    e = problem_engine_new(&c);
    for (int h = 0; h < NHOSTS; h++) {
        char name[32];

        host_name(name, sizeof(name), h);
        problem_engine_host(e, name);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (size_t s = 0; s < fill; s++) {
        size_t first = ninc;

        now += 5 * NS;
        for (size_t k = 0; k < per && ninc < held; k++)
            open_one(e, now);
        for (size_t i = first; i < ninc; i++)
            feed(e, &incs[i]);
        step_end(e, now);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    for (size_t s = 0; s < steady; s++) {
        struct binc *touched[10];
        size_t nt = 0;

        now += 5 * NS;
        for (int k = 0; k < 4; k++)
            touched[nt++] = open_one(e, now);
        for (int k = 0; k < 6; k++) {
            struct binc *b = &incs[rnd() % ninc];
            int dup = 0;

            /* Closed ones are gone from the incident engine too. */
            for (int t = 0; t < 8 && b->state == INCIDENT_CLOSED; t++)
                b = &incs[rnd() % ninc];
            for (size_t i = 0; i < nt; i++)
                dup |= touched[i] == b;
            if (b->state == INCIDENT_CLOSED || dup)
                continue;

            /* Shared classes churn; the rest stay open (held). */
            if (b->shared >= 0 || k >= 4)
                resolve(b, now);
            else if (b->state == INCIDENT_OPEN && rnd() % 2)
                evidence(e, b, now);
            else if (b->state == INCIDENT_RESOLVED) {
                b->state = INCIDENT_OPEN; /* reopened */
                b->opened_at = now;
                b->resolved_at = 0;
            }
            touched[nt++] = b;
        }
        for (size_t i = 0; i < nt; i++)
            feed(e, touched[i]);
        if (s % 10 == 0)
            action(e, now, rnd());
        step_end(e, now);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t2);
    printf("held %zu fill %zu steps %.3f s; steady %zu steps %.3f ms/step; "
           "problems %zu; sink calls %" PRIu64 " hash %016" PRIx64 "\n",
           ninc, fill, secs(&t0, &t1), steady,
           steady ? secs(&t1, &t2) * 1e3 / (double)steady : 0.0,
           problem_engine_size(e), ncalls, hash);
    problem_engine_free(e);
    free(incs);
    return 0;
}
