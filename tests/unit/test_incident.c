/*
 * test_incident: the incident engine as a pure function. Fingerprints,
 * dedup, soft/hard check states, auto-resolve (check OK, agent back,
 * quiet logs), reopen inside and outside the window, late backlogs,
 * priority from severity and impact, human actions, restart from the
 * persisted rows, and determinism (the same inputs give the same
 * output, byte for byte).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "incident.h"
#include "util.h"

#define SEC 1000000000LL
#define MIN (60 * SEC)
#define T0 (1700000000LL * SEC)

static const struct incident_config cfg = {
    .reopen_window_ns = 60 * MIN,
    .resolve_after_ns = 30 * MIN,
    .max_attempts = 3,
};

/* What a drain produced, kept for assertions. */
struct out {
    struct incident inc[64]; /* latest copy per id (index id) */
    char fp[64][64];
    uint32_t attempts[64];
    int nfp;
    char notes[256][128]; /* "id what who" */
    int nnotes;
    char log[16384]; /* everything, in order, for determinism */
    size_t loglen;
};

static void logf_(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logf_(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->log + o->loglen, sizeof(o->log) - o->loglen, fmt, ap);
    va_end(ap);
    if (n > 0 && o->loglen + (size_t)n < sizeof(o->log))
        o->loglen += (size_t)n;
}

static int
on_inc(void *arg, const struct incident *in)
{
    struct out *o = arg;

    assert_true(in->id > 0 && in->id < 64);
    o->inc[in->id] = *in;
    /* Strings are borrowed: keep only what the tests look at. */
    o->inc[in->id].fingerprint = o->inc[in->id].host = NULL;
    o->inc[in->id].rule = o->inc[in->id].kind = NULL;
    logf_(o, "I %lld %s %d P%d n=%llu %lld %lld\n", (long long)in->id,
          incident_state_name(in->state), in->severity, in->priority,
          (unsigned long long)in->count, (long long)in->first_seen,
          (long long)in->last_seen);
    return 0;
}

static int
on_fp(void *arg, const struct incident_fp *fp)
{
    struct out *o = arg;

    if (o->nfp < 64) {
        snprintf(o->fp[o->nfp], sizeof(o->fp[0]), "%s", fp->fingerprint);
        o->attempts[o->nfp++] = fp->attempts;
    }
    logf_(o, "F %s %u\n", fp->fingerprint, fp->attempts);
    return 0;
}

static int
on_note(void *arg, const struct incident_note *n)
{
    struct out *o = arg;

    if (o->nnotes < 256)
        snprintf(o->notes[o->nnotes++], sizeof(o->notes[0]), "%lld %s %s",
                 (long long)n->incident_id, n->what, n->who);
    logf_(o, "N %lld %lld %s %s %s\n", (long long)n->incident_id,
          (long long)n->ts, n->what, n->who, n->detail);
    return 0;
}

static const struct incident_sink sink = {on_inc, on_fp, on_note};

static void
drain(struct incident_engine *e, struct out *o)
{
    assert_int_equal(incident_engine_drain(e, &sink, o), 0);
}

static int
has_note(const struct out *o, const char *s)
{
    for (int i = 0; i < o->nnotes; i++)
        if (strcmp(o->notes[i], s) == 0)
            return 1;
    return 0;
}

static struct tc_event
ev_log(const char *rule, enum tc_severity sev, int64_t t, uint32_t count)
{
    struct tc_event e;

    memset(&e, 0, sizeof(e));
    e.kind = tc_str_c("log");
    e.rule = tc_str_c(rule);
    e.sev = sev;
    e.state = -1;
    e.ts = t;
    e.count = count;
    return e;
}

static struct tc_event
ev_check(const char *name, int state, int64_t t)
{
    struct tc_event e;

    memset(&e, 0, sizeof(e));
    e.kind = tc_str_c("check");
    e.rule = tc_str_c(name);
    e.source = tc_str_c(name);
    e.state = state;
    e.sev = state == 0   ? TC_SEV_OK
            : state == 2 ? TC_SEV_CRITICAL
                         : TC_SEV_WARNING;
    e.ts = t;
    e.count = 1;
    return e;
}

static void
test_log_dedup_one_incident(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));

    (void)state;
    for (int i = 0; i < 10000; i++) {
        struct tc_event ev = ev_log("oom", TC_SEV_ERROR, T0 + i * 1000, 1);
        incident_engine_event(e, "web-01", &ev);
    }
    drain(e, o);
    assert_int_equal(incident_engine_size(e), 1);
    assert_int_equal(o->inc[1].count, 10000);
    assert_int_equal(o->inc[1].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[1].first_seen, T0);
    assert_int_equal(o->inc[1].last_seen, T0 + 9999 * 1000);
    assert_int_equal(o->inc[1].priority, 3);
    assert_int_equal(o->nnotes, 1); /* one "opened", no per-event noise */
    assert_int_equal(o->inc[2].id, 0);

    /* One folded event carrying count 10,000 is the same thing. */
    incident_engine_free(e);
    memset(o, 0, sizeof(*o));
    e = incident_engine_new(&cfg);
    {
        struct tc_event ev = ev_log("oom", TC_SEV_ERROR, T0, 10000);
        incident_engine_event(e, "web-01", &ev);
    }
    drain(e, o);
    assert_int_equal(o->inc[1].count, 10000);
    assert_int_equal(incident_engine_size(e), 1);
    incident_engine_free(e);
    free(o);
}

static void
test_fingerprints(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;

    (void)state;
    /* host + rule: two hosts, two incidents; two rules, two more. */
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    incident_engine_event(e, "web-01", &ev);
    incident_engine_event(e, "web-02", &ev);
    ev = ev_log("disk", TC_SEV_ERROR, T0, 1);
    incident_engine_event(e, "web-01", &ev);
    /* The event's fingerprint overrides the rule part. */
    ev = ev_log("upstream", TC_SEV_ERROR, T0, 1);
    ev.fingerprint = tc_str_c("upstream:502");
    incident_engine_event(e, "web-01", &ev);
    incident_engine_event(e, "web-01", &ev);
    ev.fingerprint = tc_str_c("upstream:504");
    incident_engine_event(e, "web-01", &ev);
    /* Heartbeats and other kinds are not incidents; nor are OK logs. */
    ev = ev_log("x", TC_SEV_ERROR, T0, 1);
    ev.kind = tc_str_c("heartbeat");
    incident_engine_event(e, "web-01", &ev);
    ev = ev_log("fine", TC_SEV_OK, T0, 1);
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(incident_engine_size(e), 5);
    assert_int_equal(o->inc[4].count, 2);
    assert_string_equal(incident_engine_get(e, 4)->fingerprint,
                        "web-01\x1fupstream:502");
    assert_string_equal(incident_engine_get(e, 4)->rule, "upstream");
    assert_string_equal(incident_engine_get(e, 1)->fingerprint,
                        "web-01\x1foom");
    incident_engine_free(e);
    free(o);
}

static void
test_check_soft_hard_and_recovery(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;
    int64_t t = T0;

    (void)state;
    ev = ev_check("port", 0, t);
    incident_engine_event(e, "db-01", &ev);
    /* Two failures, then OK: soft only, never an incident. */
    for (int i = 0; i < 2; i++) {
        ev = ev_check("port", 2, t += SEC);
        incident_engine_event(e, "db-01", &ev);
    }
    ev = ev_check("port", 0, t += SEC);
    incident_engine_event(e, "db-01", &ev);
    drain(e, o);
    assert_int_equal(incident_engine_size(e), 0);
    assert_int_equal(o->nnotes, 0);

    /* Three consecutive: hard, one incident; more failures fold in. */
    for (int i = 0; i < 10; i++) {
        ev = ev_check("port", 2, t += SEC);
        incident_engine_event(e, "db-01", &ev);
        if (i == 1) {
            drain(e, o);
            assert_int_equal(incident_engine_size(e), 0);
            assert_int_equal(o->attempts[o->nfp - 1], 2);
        }
    }
    drain(e, o);
    assert_int_equal(incident_engine_size(e), 1);
    assert_int_equal(o->inc[1].count, 10);
    assert_int_equal(o->inc[1].severity, TC_SEV_CRITICAL);
    assert_int_equal(o->inc[1].priority, 2);
    assert_int_equal(o->inc[1].first_seen, T0 + 4 * SEC);
    assert_true(has_note(o, "1 opened rule:port"));
    assert_int_equal(o->inc[2].id, 0);

    /* Recovery resolves it. */
    ev = ev_check("port", 0, t += SEC);
    incident_engine_event(e, "db-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_RESOLVED);
    assert_int_equal(o->inc[1].resolved_at, t);
    assert_true(has_note(o, "1 resolved rule:port"));

    /* Fails again soon: soft again first, then the same incident
     * reopens (inside reopen_window). */
    for (int i = 0; i < 3; i++) {
        ev = ev_check("port", 1, t += MIN);
        incident_engine_event(e, "db-01", &ev);
        drain(e, o);
        assert_int_equal(o->inc[1].state,
                         i < 2 ? INCIDENT_RESOLVED : INCIDENT_OPEN);
    }
    assert_int_equal(o->inc[1].reopened, 1);
    assert_true(has_note(o, "1 reopened rule:port"));
    assert_int_equal(o->inc[2].id, 0);
    incident_engine_free(e);
    free(o);
}

static void
test_reopen_window(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;

    (void)state;
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    incident_engine_event(e, "web-01", &ev);
    /* Not quiet long enough yet. */
    incident_engine_tick(e, T0 + 29 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_OPEN);
    incident_engine_tick(e, T0 + 30 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_RESOLVED);
    assert_true(has_note(o, "1 resolved rule:resolve_after"));

    /* Recurrence 59 minutes after resolve: the same incident reopens. */
    ev = ev_log("oom", TC_SEV_CRITICAL, T0 + 89 * MIN, 1);
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[1].count, 2);
    assert_int_equal(o->inc[1].severity, TC_SEV_CRITICAL);
    assert_int_equal(o->inc[1].priority, 2);

    /* Resolved again, then recurrence after the window: a new one, and
     * the old one is closed. */
    incident_engine_tick(e, T0 + 120 * MIN);
    ev = ev_log("oom", TC_SEV_ERROR, T0 + 181 * MIN, 1);
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_CLOSED);
    assert_int_equal(o->inc[2].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[2].count, 1);
    assert_int_equal(incident_engine_size(e), 1);

    /* A resolved incident closes by itself once it can no longer
     * reopen. */
    incident_engine_tick(e, T0 + 212 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[2].state, INCIDENT_RESOLVED);
    incident_engine_tick(e, T0 + 272 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[2].state, INCIDENT_CLOSED);
    assert_int_equal(incident_engine_size(e), 0);
    incident_engine_free(e);
    free(o);
}

static void
test_late_backlog(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;

    (void)state;
    for (int i = 0; i < 5; i++) {
        ev = ev_log("oom", TC_SEV_ERROR, T0 + i * MIN, 1);
        incident_engine_event(e, "web-01", &ev);
    }
    /* The link goes down; meanwhile the quiet period passes. */
    incident_engine_tick(e, T0 + 40 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_RESOLVED);
    /* The spooled backlog arrives late, with its own (old) times. */
    for (int i = 5; i < 35; i++) {
        ev = ev_log("oom", TC_SEV_ERROR, T0 + i * MIN, 100);
        incident_engine_event(e, "web-01", &ev);
    }
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_RESOLVED);
    assert_int_equal(o->inc[1].count, 5 + 30 * 100);
    assert_int_equal(o->inc[2].id, 0);
    assert_false(has_note(o, "1 reopened rule:oom"));

    /* While the host is silent, its log incidents are not "quiet". */
    ev = ev_log("disk", TC_SEV_ERROR, T0 + 50 * MIN, 1);
    incident_engine_event(e, "web-01", &ev);
    ev = ev_log("agent-silent", TC_SEV_CRITICAL, T0 + 52 * MIN, 1);
    ev.kind = tc_str_c("agent");
    incident_engine_event(e, "web-01", &ev);
    incident_engine_tick(e, T0 + 100 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[2].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[3].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[3].priority, 2);
    /* The agent is back: the silent incident resolves, and then the
     * quiet log incident can too. */
    ev = ev_log("agent-silent", TC_SEV_OK, T0 + 101 * MIN, 1);
    ev.kind = tc_str_c("agent");
    incident_engine_event(e, "web-01", &ev);
    incident_engine_tick(e, T0 + 102 * MIN);
    drain(e, o);
    assert_int_equal(o->inc[3].state, INCIDENT_RESOLVED);
    assert_int_equal(o->inc[2].state, INCIDENT_RESOLVED);
    incident_engine_free(e);
    free(o);
}

static void
test_priority_impact(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;
    struct tc_kv tier = {tc_str_c("tier"), tc_str_c("1")};

    (void)state;
    ev = ev_log("oom", TC_SEV_WARNING, T0, 1);
    incident_engine_event(e, "a", &ev);
    incident_engine_event(e, "b", &ev);
    drain(e, o);
    assert_int_equal(o->inc[1].priority, 4);
    assert_int_equal(o->inc[2].priority, 4);
    /* A third host with the same rule raises all three. */
    incident_engine_event(e, "c", &ev);
    drain(e, o);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(o->inc[i].priority, 3);
    assert_true(has_note(o, "1 priority rule:priority"));
    /* One resolves (by a human): back to two hosts, back to P4. */
    {
        struct incident_action a = {T0 + SEC, "alice", INCIDENT_RESOLVE, 3,
                                    "fixed"};
        assert_int_equal(incident_engine_action(e, &a), 0);
    }
    drain(e, o);
    assert_int_equal(o->inc[1].priority, 4);
    assert_int_equal(o->inc[3].state, INCIDENT_RESOLVED);
    assert_true(has_note(o, "3 resolved user:alice"));
    /* tier=1 raises one step; critical + tier 1 is P1. */
    ev = ev_log("db", TC_SEV_CRITICAL, T0, 1);
    ev.labels = &tier;
    ev.nlabels = 1;
    incident_engine_event(e, "a", &ev);
    drain(e, o);
    assert_int_equal(o->inc[4].priority, 1);
    incident_engine_free(e);
    free(o);
}

static void
test_actions(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    struct incident_action a = {T0 + SEC, "bob", INCIDENT_ACK, 1, NULL};

    (void)state;
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_action(e, &a), 0);
    assert_int_equal(incident_engine_action(e, &a), -EALREADY);
    a.verb = INCIDENT_NOTE;
    a.text = "looking";
    assert_int_equal(incident_engine_action(e, &a), 0);
    a.incident_id = 7;
    assert_int_equal(incident_engine_action(e, &a), -ENOENT);
    drain(e, o);
    assert_int_equal(o->inc[1].state, INCIDENT_ACKED);
    assert_int_equal(o->inc[1].acked_at, T0 + SEC);
    assert_true(has_note(o, "1 acknowledged user:bob"));
    assert_true(has_note(o, "1 note user:bob"));
    /* Acknowledged incidents still count repeats. */
    incident_engine_event(e, "web-01", &ev);
    a.incident_id = 1;
    a.verb = INCIDENT_CLOSE;
    assert_int_equal(incident_engine_action(e, &a), 0);
    drain(e, o);
    assert_int_equal(o->inc[1].count, 2);
    assert_int_equal(o->inc[1].state, INCIDENT_CLOSED);
    assert_int_equal(incident_engine_size(e), 0);
    /* After a close, a recurrence is a new incident. */
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[2].state, INCIDENT_OPEN);
    incident_engine_free(e);
    free(o);
}

/* One fixed input sequence, fed through a callback at step i. */
static void
feed(struct incident_engine *e, int step)
{
    struct tc_event ev;
    int64_t t = T0 + step * 7 * MIN;
    char host[16];

    snprintf(host, sizeof(host), "h%d", step % 4);
    ev = ev_check("port", step % 5 == 0 ? 0 : 2, t);
    incident_engine_event(e, host, &ev);
    ev = ev_log(step % 3 ? "oom" : "disk",
                step % 2 ? TC_SEV_ERROR : TC_SEV_WARNING, t, 1 + step % 4);
    incident_engine_event(e, host, &ev);
    if (step % 7 == 3) {
        struct incident_action a = {t, "carol", INCIDENT_ACK, step / 3, NULL};
        (void)incident_engine_action(e, &a);
    }
    incident_engine_tick(e, t + MIN);
}

/* Persist what a drain says, as the store would, to restart from it. */
struct rows {
    struct incident inc[64];
    char strs[64][4][64];
    char fp[64][64];
    uint32_t attempts[64];
    int64_t since[64];
    int nfp;
    int64_t last_id;
};

static int
row_inc(void *arg, const struct incident *in)
{
    struct rows *r = arg;

    r->inc[in->id] = *in;
    snprintf(r->strs[in->id][0], 64, "%s", in->fingerprint);
    snprintf(r->strs[in->id][1], 64, "%s", in->host);
    snprintf(r->strs[in->id][2], 64, "%s", in->rule);
    snprintf(r->strs[in->id][3], 64, "%s", in->kind);
    r->inc[in->id].fingerprint = r->strs[in->id][0];
    r->inc[in->id].host = r->strs[in->id][1];
    r->inc[in->id].rule = r->strs[in->id][2];
    r->inc[in->id].kind = r->strs[in->id][3];
    if (in->id > r->last_id)
        r->last_id = in->id;
    return 0;
}

static int
row_fp(void *arg, const struct incident_fp *fp)
{
    struct rows *r = arg;
    int i;

    for (i = 0; i < r->nfp; i++)
        if (strcmp(r->fp[i], fp->fingerprint) == 0)
            break;
    if (i == r->nfp)
        snprintf(r->fp[r->nfp++], 64, "%s", fp->fingerprint);
    r->attempts[i] = fp->attempts;
    r->since[i] = fp->since;
    return 0;
}

struct tee {
    struct out *o;
    struct rows *r;
};

static int
tee_inc(void *arg, const struct incident *in)
{
    struct tee *t = arg;
    return row_inc(t->r, in) || on_inc(t->o, in);
}

static int
tee_fp(void *arg, const struct incident_fp *fp)
{
    struct tee *t = arg;
    return row_fp(t->r, fp) || on_fp(t->o, fp);
}

static int
tee_note(void *arg, const struct incident_note *n)
{
    struct tee *t = arg;
    return on_note(t->o, n);
}

static void
test_determinism_and_restart(void **state)
{
    static const struct incident_sink tsink = {tee_inc, tee_fp, tee_note};
    struct out *a = tc_xcalloc(1, sizeof(*a)), *b = tc_xcalloc(1, sizeof(*b));
    struct out *c = tc_xcalloc(1, sizeof(*c));
    struct rows *r = tc_xcalloc(1, sizeof(*r));
    struct incident_engine *e;
    struct tee tee = {c, r};

    (void)state;
    /* Twice from scratch: identical output. */
    e = incident_engine_new(&cfg);
    for (int i = 0; i < 40; i++) {
        feed(e, i);
        drain(e, a);
    }
    incident_engine_free(e);
    e = incident_engine_new(&cfg);
    for (int i = 0; i < 40; i++) {
        feed(e, i);
        drain(e, b);
    }
    incident_engine_free(e);
    assert_true(a->loglen > 1000);
    assert_int_equal(a->loglen, b->loglen);
    assert_memory_equal(a->log, b->log, a->loglen);

    /*
     * A "crash" after step 19: a new engine loaded from what was
     * persisted continues with exactly the same output.
     */
    e = incident_engine_new(&cfg);
    for (int i = 0; i < 20; i++) {
        feed(e, i);
        assert_int_equal(incident_engine_drain(e, &tsink, &tee), 0);
    }
    incident_engine_free(e);
    e = incident_engine_new(&cfg);
    for (int id = 1; id < 64; id++)
        if (r->inc[id].id != 0)
            incident_engine_load(e, &r->inc[id]);
    for (int i = 0; i < r->nfp; i++) {
        struct incident_fp fp = {r->fp[i], r->attempts[i], r->since[i]};
        incident_engine_load_fp(e, &fp);
    }
    incident_engine_set_last_id(e, r->last_id);
    for (int i = 20; i < 40; i++) {
        feed(e, i);
        assert_int_equal(incident_engine_drain(e, &tsink, &tee), 0);
    }
    incident_engine_free(e);
    assert_int_equal(a->loglen, c->loglen);
    assert_memory_equal(a->log, c->log, a->loglen);
    free(a);
    free(b);
    free(c);
    free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_dedup_one_incident),
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_check_soft_hard_and_recovery),
        cmocka_unit_test(test_reopen_window),
        cmocka_unit_test(test_late_backlog),
        cmocka_unit_test(test_priority_impact),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_determinism_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
