/*
 * test_incident: the incident engine as a pure function. Fingerprints,
 * dedup, soft/hard check states, auto-resolve (check OK, agent back,
 * quiet logs), reopen inside and outside the window, late backlogs,
 * priority from severity and impact, human actions, restart from the
 * persisted rows, and determinism (the same inputs give the same
 * output, byte for byte). Last, replay against a real store: a rebuild
 * from the step log matches the live tables, and tampered rows or a
 * changed config show as differences; and MTTA/MTTR/MTBF on known
 * numbers.
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

#include <sqlite3.h>
#include <unistd.h>

#include "buf.h"
#include "engine/incident.h"
#include "store/incidents_store.h"
#include "store/store.h"
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
    o->inc[in->id].service = NULL;
    logf_(o, "I %lld %s %d P%d n=%llu %lld %lld s=%s\n", (long long)in->id,
          incident_state_name(in->state), in->severity, in->priority,
          (unsigned long long)in->count, (long long)in->first_seen,
          (long long)in->last_seen, in->service);
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

    /* Keys are cut like snprintf would: at a NUL inside a part and at
     * the buffer's end; no fingerprint and no rule fall back to the
     * source. */
    {
        static const char fp_nul[] = {'a', 'b', '\0', 'c'};
        char key[16];

        ev = ev_log("r", TC_SEV_ERROR, T0, 1);
        ev.fingerprint.ptr = fp_nul;
        ev.fingerprint.len = sizeof(fp_nul);
        assert_int_equal(incident_fingerprint("h", &ev, key, sizeof(key)), 4);
        assert_string_equal(key, "h\x1f"
                                 "ab");
        ev.fingerprint = tc_str_c("0123456789abcdefghij");
        assert_int_equal(incident_fingerprint("h", &ev, key, sizeof(key)), 15);
        assert_string_equal(key, "h\x1f"
                                 "0123456789abc");
        assert_int_equal(incident_fingerprint("h", &ev, key, 1), 0);
        assert_string_equal(key, "");
        ev.fingerprint = tc_str_c("");
        ev.rule = tc_str_c("");
        ev.source = tc_str_c("/var/log/x");
        assert_int_equal(incident_fingerprint("h", &ev, key, sizeof(key)), 12);
        assert_string_equal(key, "h\x1f/var/log/x");
        ev.source.ptr = NULL;
        ev.source.len = 0;
        assert_int_equal(incident_fingerprint("h", &ev, key, sizeof(key)), 2);
        assert_string_equal(key, "h\x1f");
    }
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

/* An incident keeps the service= label of its events, first one wins. */
static void
test_service(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct tc_event ev;
    struct tc_kv web = {tc_str_c("service"), tc_str_c("web")};
    struct tc_kv db = {tc_str_c("service"), tc_str_c("db")};

    (void)state;
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    ev.labels = &web;
    ev.nlabels = 1;
    incident_engine_event(e, "a", &ev);
    ev.labels = &db; /* a later, different label does not move it */
    incident_engine_event(e, "a", &ev);
    drain(e, o);
    assert_non_null(strstr(o->log, "I 1 open 3 P3 n=2 "));
    assert_non_null(strstr(o->log, " s=web\n"));
    assert_null(strstr(o->log, " s=db\n"));
    /* Opened without one: the first event that has one names it. */
    o->loglen = 0;
    o->log[0] = '\0';
    ev = ev_log("disk", TC_SEV_ERROR, T0, 1);
    incident_engine_event(e, "a", &ev);
    drain(e, o);
    assert_non_null(strstr(o->log, "I 2 open 3 P3 n=1 "));
    assert_non_null(strstr(o->log, " s=\n"));
    ev.labels = &db;
    ev.nlabels = 1;
    incident_engine_event(e, "a", &ev);
    drain(e, o);
    assert_non_null(strstr(o->log, "n=2 ") && strstr(o->log, " s=db\n"));
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

/* Timeline entries straight into two metrics (since T0, and later). */
struct metrics_pair {
    struct incident_metrics all, late;
};

static int
on_metrics_note(void *arg, const struct incident_note *n)
{
    struct metrics_pair *p = arg;

    incident_metrics_add(&p->all, n);
    incident_metrics_add(&p->late, n);
    return 0;
}

/*
 * MTTA and MTTR from the engine's own timeline across a reopen: ack,
 * resolve, reopen keeps the first acknowledgement (the reopen clears
 * acked_at, and stats read from acked_at showed ACKED 0), and an
 * acknowledgement after the reopen counts as a second one.
 */
static void
test_metrics_reopen(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    const struct incident_sink msink = {NULL, NULL, on_metrics_note};
    struct metrics_pair p;
    struct tc_event ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    struct incident_action a = {T0 + 60 * SEC, "bob", INCIDENT_ACK, 1, NULL};
    const struct incident *in;

    (void)state;
    incident_metrics_init(&p.all, T0);
    incident_metrics_init(&p.late, T0 + 500 * SEC);
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_action(e, &a), 0);
    a.ts = T0 + 100 * SEC;
    a.verb = INCIDENT_NOTE;
    a.text = "looking";
    assert_int_equal(incident_engine_action(e, &a), 0);
    a.ts = T0 + 300 * SEC;
    a.verb = INCIDENT_RESOLVE;
    a.text = NULL;
    assert_int_equal(incident_engine_action(e, &a), 0);
    /* Recurrence 5 minutes after the resolve: the incident reopens. */
    ev.ts = T0 + 600 * SEC;
    incident_engine_event(e, "web-01", &ev);
    in = incident_engine_get(e, 1);
    assert_non_null(in);
    assert_int_equal(in->reopened, 1);
    assert_int_equal(in->acked_at, 0);
    assert_int_equal(incident_engine_drain(e, &msink, &p), 0);

    /* The first episode keeps its acknowledgement and its resolve. */
    assert_int_equal(p.all.incidents, 1);
    assert_int_equal(p.all.openings, 2);
    assert_int_equal(p.all.acked, 1);
    assert_int_equal(incident_metrics_mtta(&p.all), 60 * SEC);
    assert_int_equal(p.all.restored, 1);
    assert_int_equal(incident_metrics_mttr(&p.all), 300 * SEC);
    /* Since +500 s: only the reopening, not acknowledged yet. */
    assert_int_equal(p.late.incidents, 1);
    assert_int_equal(p.late.openings, 1);
    assert_int_equal(p.late.acked, 0);
    assert_int_equal(incident_metrics_mtta(&p.late), -1);
    assert_int_equal(incident_metrics_mttr(&p.late), -1);

    /* Acknowledged again 2 minutes after the reopen, resolved at +900. */
    a.ts = T0 + 720 * SEC;
    a.user = "carol";
    a.verb = INCIDENT_ACK;
    assert_int_equal(incident_engine_action(e, &a), 0);
    a.ts = T0 + 900 * SEC;
    a.verb = INCIDENT_RESOLVE;
    assert_int_equal(incident_engine_action(e, &a), 0);
    /* A close after the resolve does not count as a second one. */
    a.ts = T0 + 950 * SEC;
    a.verb = INCIDENT_CLOSE;
    assert_int_equal(incident_engine_action(e, &a), 0);
    assert_int_equal(incident_engine_drain(e, &msink, &p), 0);
    assert_int_equal(p.all.openings, 2);
    assert_int_equal(p.all.acked, 2);
    assert_int_equal(incident_metrics_mtta(&p.all), 90 * SEC); /* 60, 120 */
    assert_int_equal(p.all.restored, 2);
    assert_int_equal(incident_metrics_mttr(&p.all), 300 * SEC); /* 300, 300 */
    assert_int_equal(p.late.openings, 1);
    assert_int_equal(p.late.acked, 1);
    assert_int_equal(incident_metrics_mtta(&p.late), 120 * SEC);
    assert_int_equal(incident_metrics_mttr(&p.late), 300 * SEC);

    /* A close without a resolve ends an episode too; an acknowledgement
     * before its opening (a clock ahead) took no time. */
    {
        struct incident_metrics m;
        const struct incident_note tl[] = {
            {2, T0, "opened", "rule:x", ""},
            {2, T0 - SEC, "acknowledged", "user:bob", ""},
            {2, T0 + 40 * SEC, "closed", "user:bob", ""},
        };

        incident_metrics_init(&m, 0);
        for (size_t i = 0; i < sizeof(tl) / sizeof(tl[0]); i++)
            incident_metrics_add(&m, &tl[i]);
        assert_int_equal(m.acked, 1);
        assert_int_equal(incident_metrics_mtta(&m), 0);
        assert_int_equal(m.restored, 1);
        assert_int_equal(incident_metrics_mttr(&m), 40 * SEC);
    }
    incident_engine_free(e);
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
    char strs[64][5][64];
    char fp[64][64];
    uint32_t attempts[64];
    int64_t since[64];
    int64_t history[64];
    int flapping[64];
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
    snprintf(r->strs[in->id][4], 64, "%s", in->service);
    r->inc[in->id].fingerprint = r->strs[in->id][0];
    r->inc[in->id].host = r->strs[in->id][1];
    r->inc[in->id].rule = r->strs[in->id][2];
    r->inc[in->id].kind = r->strs[in->id][3];
    r->inc[in->id].service = r->strs[in->id][4];
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
    r->history[i] = fp->history;
    r->flapping[i] = fp->flapping;
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
        struct incident_fp fp = {r->fp[i], r->attempts[i], r->since[i],
                                 r->history[i], r->flapping[i]};
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

/* Flap detection on: the documented defaults. */
static const struct incident_config fcfg = {
    .reopen_window_ns = 60 * MIN,
    .resolve_after_ns = 30 * MIN,
    .max_attempts = 3,
    .flap_high = 50,
    .flap_low = 25,
};

/* Result i of a flapping check: CRITICAL, OK, CRITICAL, ... 40 times,
 * then OK for good. */
static void
flap_feed(struct incident_engine *e, int i)
{
    struct tc_event ev =
        ev_check("port", i < 40 && i % 2 == 0 ? 2 : 0, T0 + i * 10 * SEC);

    incident_engine_event(e, "db-01", &ev);
    incident_engine_tick(e, T0 + i * 10 * SEC + SEC);
}

static int
count_notes(const struct out *o, const char *s)
{
    int n = 0;

    for (int i = 0; i < o->nnotes; i++)
        n += strcmp(o->notes[i], s) == 0;
    return n;
}

static void
test_flapping(void **state)
{
    static const struct incident_sink tsink = {tee_inc, tee_fp, tee_note};
    struct out *a = tc_xcalloc(1, sizeof(*a)), *c = tc_xcalloc(1, sizeof(*c));
    struct rows *r = tc_xcalloc(1, sizeof(*r));
    struct incident_engine *e;
    struct tee tee = {c, r};
    int flapped_at = -1;

    (void)state;
    /*
     * Alternating OK/CRITICAL never reaches max_attempts, so without
     * flap detection it would give no incident at all (and with
     * max_attempts 1, a resolve and a reopen per change). With it:
     * one incident, opened when the check starts flapping, kept open
     * through every change, resolved once after it settles.
     */
    e = incident_engine_new(&fcfg);
    for (int i = 0; i < 80; i++) {
        flap_feed(e, i);
        drain(e, a);
        if (flapped_at < 0 && a->inc[1].id == 1)
            flapped_at = i;
        if (i >= flapped_at && flapped_at >= 0 && i < 40)
            assert_int_equal(a->inc[1].state, INCIDENT_OPEN);
    }
    /* 9 changes weigh 8.16 / 20 = 50.2% > 50% (8 weigh 45.5%). */
    assert_int_equal(flapped_at, 8);
    assert_int_equal(a->inc[2].id, 0);
    assert_int_equal(incident_engine_size(e), 1);
    assert_int_equal(count_notes(a, "1 opened rule:port"), 1);
    assert_int_equal(count_notes(a, "1 flapping started rule:port"), 1);
    assert_int_equal(count_notes(a, "1 flapping stopped rule:port"), 1);
    assert_int_equal(count_notes(a, "1 resolved rule:port"), 1);
    assert_int_equal(count_notes(a, "1 reopened rule:port"), 0);
    assert_int_equal(a->nnotes, 4);
    assert_int_equal(a->inc[1].state, INCIDENT_RESOLVED);
    assert_int_equal(a->inc[1].flapping, 0);
    assert_int_equal(a->inc[1].reopened, 0);
    /* Every result from the opening one until it settled counted. */
    assert_true(a->inc[1].count >= 32);
    /* Stopped flapping (and so resolved) only below 25%: the 15th OK
     * after the last change leaves 21.1%. */
    assert_int_equal(a->inc[1].resolved_at, T0 + 54 * 10 * SEC);
    incident_engine_free(e);

    /* Determinism across restarts: before flapping starts (history
     * only), while it flaps, and while it settles. */
    e = incident_engine_new(&fcfg);
    for (int i = 0; i < 80; i++) {
        if (i == 5 || i == 20 || i == 45) {
            incident_engine_free(e);
            e = incident_engine_new(&fcfg);
            for (int id = 1; id < 64; id++)
                if (r->inc[id].id != 0 && r->inc[id].state != INCIDENT_CLOSED)
                    incident_engine_load(e, &r->inc[id]);
            for (int k = 0; k < r->nfp; k++) {
                struct incident_fp fp = {r->fp[k], r->attempts[k], r->since[k],
                                         r->history[k], r->flapping[k]};
                incident_engine_load_fp(e, &fp);
            }
            incident_engine_set_last_id(e, r->last_id);
        }
        flap_feed(e, i);
        assert_int_equal(incident_engine_drain(e, &tsink, &tee), 0);
    }
    incident_engine_free(e);
    assert_int_equal(a->loglen, c->loglen);
    assert_memory_equal(a->log, c->log, a->loglen);
    /* Settled: 21 OK results, nothing left to remember (the store
     * deletes the row). */
    assert_true(r->nfp == 1 && r->history[0] == 0 && r->flapping[0] == 0);
    free(a);
    free(c);
    free(r);
}

static struct tc_event
ev_label(const char *rule, int64_t t, struct tc_kv *kv, const char *env)
{
    struct tc_event e = ev_log(rule, TC_SEV_ERROR, t, 1);

    kv->key = tc_str_c("env");
    kv->val = tc_str_c(env);
    e.labels = kv;
    e.nlabels = 1;
    return e;
}

static void
test_silences(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct incident_silence sil = {1, T0, T0 + 60 * MIN,
                                   "host=web-01 label:env=prod"};
    struct tc_kv kv;
    struct tc_event ev;

    (void)state;
    assert_int_equal(incident_silence_matcher_check("host=web-01"), 0);
    assert_int_equal(incident_silence_matcher_check("rule=disk"), 0);
    assert_int_equal(incident_silence_matcher_check("label:env=prod"), 0);
    assert_int_equal(incident_silence_matcher_check("label:=prod"), -EINVAL);
    assert_int_equal(incident_silence_matcher_check("host="), -EINVAL);
    assert_int_equal(incident_silence_matcher_check("env=prod"), -EINVAL);
    sil.matchers = "host=web-01 bogus";
    assert_int_equal(incident_engine_silence(e, &sil), -EINVAL);
    sil.matchers = "";
    assert_int_equal(incident_engine_silence(e, &sil), -EINVAL);
    sil.matchers = "host=web-01 label:env=prod";
    assert_int_equal(incident_engine_silence(e, &sil), 0);

    /* Matching host and label, inside the window: recorded, marked. */
    ev = ev_label("a", T0 + SEC, &kv, "prod");
    incident_engine_event(e, "web-01", &ev);
    incident_engine_event(e, "web-01", &ev);
    /* Another label value, another host, before the start: not. */
    ev = ev_label("b", T0 + SEC, &kv, "dev");
    incident_engine_event(e, "web-01", &ev);
    ev = ev_label("c", T0 + SEC, &kv, "prod");
    incident_engine_event(e, "web-02", &ev);
    ev = ev_label("d", T0 - SEC, &kv, "prod");
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[1].silenced, 1);
    assert_int_equal(o->inc[1].state, INCIDENT_OPEN);
    assert_int_equal(o->inc[1].count, 2);
    assert_true(has_note(o, "1 silenced silence:1"));
    assert_int_equal(o->inc[2].silenced, 0);
    assert_int_equal(o->inc[3].silenced, 0);
    assert_int_equal(o->inc[4].silenced, 0);
    assert_false(has_note(o, "2 silenced silence:1"));

    /* Expired early: later incidents are not silenced; a late event
     * from inside the window still is (engine time is event time). */
    assert_int_equal(incident_engine_silence_expire(e, 1, T0 + 10 * SEC), 0);
    assert_int_equal(incident_engine_silence_expire(e, 1, T0 + 20 * SEC),
                     -EALREADY);
    assert_int_equal(incident_engine_silence_expire(e, 9, T0), -ENOENT);
    ev = ev_label("e", T0 + 20 * SEC, &kv, "prod");
    incident_engine_event(e, "web-01", &ev);
    ev = ev_label("f", T0 + 5 * SEC, &kv, "prod");
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->inc[5].silenced, 0);
    assert_int_equal(o->inc[6].silenced, 1);
    incident_engine_free(e);
    free(o);
}

/* Replay against a real store file (incidents_store_replay). */
struct replay_fix {
    char dir[64];
    char path[128];
    struct store *st;
    struct incidents_store *is;
    struct incident_engine *e;
    struct incidents_watermark wm;
    uint64_t seq;
};

static void
commit_event(struct replay_fix *f, const struct tc_event *in)
{
    static const uint8_t one = 0x91; /* msgpack: array of 1 */
    struct store_batch b = {0};
    struct store_txn t = {0};
    struct tc_event ev = *in, *e = &ev;
    struct tc_buf blob;

    /* What an agent sends: every string set, seq from 1. */
    ev.seq = f->seq + 1;
    ev.host = tc_str_c("web-01");
    if (ev.source.ptr == NULL)
        ev.source = tc_str_c("/var/log/app.log");
    ev.message = tc_str_c("msg");
    ev.fingerprint = tc_str_c("");
    tc_buf_init(&blob, 1u << 20);
    assert_int_equal(tc_buf_append(&blob, &one, 1), 0);
    assert_int_equal(tc_event_encode(&blob, e), 0);
    b.host = "web-01";
    b.seq_first = b.seq_last = ++f->seq;
    b.n = 1;
    b.ts_min = b.ts_max = ev.ts;
    b.events = (const uint8_t *)tc_buf_head(&blob);
    b.events_len = tc_buf_size(&blob);
    t.batches = &b;
    t.nbatches = 1;
    assert_int_equal(store_commit(f->st, &t), 0);
    tc_buf_close(&blob);
}

/* Run steps of at most 2 batches until none remain, at engine time now. */
static void
run_steps(struct replay_fix *f, int64_t now)
{
    int more;

    do {
        assert_int_equal(
            incidents_store_step(f->is, f->e, &f->wm, now, 2, &more), 0);
    } while (more);
}

static void
act(struct replay_fix *f, enum incident_verb verb, int64_t id, int64_t t)
{
    struct incident_action a = {t, "bob", verb, id, NULL};
    int64_t aid;

    assert_int_equal(incidents_store_action_add(f->is, &a, &aid), 0);
}

struct diffs {
    int n;
    char line[16][256]; /* "table id column live replay" */
};

static int
on_diff(const struct incidents_diff *d, void *arg)
{
    struct diffs *ds = arg;

    if (ds->n < 16)
        snprintf(ds->line[ds->n], sizeof(ds->line[0]), "%s %lld %s %s %s",
                 d->table, (long long)d->incident_id,
                 d->column ? d->column : "-", d->live ? d->live : "-",
                 d->replay ? d->replay : "-");
    ds->n++;
    return 0;
}

static int
has_diff(const struct diffs *ds, const char *prefix)
{
    for (int i = 0; i < ds->n && i < 16; i++)
        if (strncmp(ds->line[i], prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static void
test_replay_store(void **state)
{
    struct replay_fix f = {0};
    struct incidents_replay_stats rs;
    struct incident_config other = cfg;
    struct diffs ds = {0};
    struct tc_event ev;
    sqlite3 *db;
    char *cmd;

    (void)state;
    snprintf(f.dir, sizeof(f.dir), "/tmp/test_incident.XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    snprintf(f.path, sizeof(f.path), "%s/collector.db", f.dir);
    assert_int_equal(store_open(f.path, 0, &f.st), 0);
    assert_int_equal(incidents_store_open(f.path, 0, &f.is), 0);
    assert_int_equal(incidents_store_load(f.is, &cfg, &f.e, &f.wm), 0);

    /* Nothing recorded yet: nothing to compare, identical. */
    assert_int_equal(incidents_store_replay(f.is, &cfg, on_diff, &ds, &rs), 0);
    assert_int_equal(rs.steps + rs.incidents + rs.diffs, 0);

    /* A silence of web-01, three log events over two steps, an ack, a
     * refused ack, two soft check failures, and a tick that resolves
     * the quiet log incident. */
    {
        struct incident_silence sil = {0, T0, T0 + 120 * MIN, "host=web-01"};
        int64_t sid, aid;

        assert_int_equal(incidents_store_silence_add(f.is, &sil, T0, "bob",
                                                     "maintenance", &sid, &aid),
                         0);
        assert_int_equal(sid, 1);
        /* Actions come after the batches of a step: apply it first. */
        run_steps(&f, T0);
    }
    for (int i = 0; i < 3; i++) {
        ev = ev_log("oom", TC_SEV_ERROR, T0 + i * SEC, 1);
        commit_event(&f, &ev);
    }
    run_steps(&f, T0 + 10 * SEC);
    act(&f, INCIDENT_ACK, 1, T0 + 20 * SEC);
    act(&f, INCIDENT_ACK, 1, T0 + 21 * SEC);
    for (int i = 0; i < 2; i++) {
        ev = ev_check("disk", 2, T0 + (30 + i) * SEC);
        commit_event(&f, &ev);
    }
    run_steps(&f, T0 + 40 * SEC);
    run_steps(&f, T0 + 40 * MIN);
    assert_non_null(incident_engine_get(f.e, 1));
    assert_int_equal(incident_engine_get(f.e, 1)->state, INCIDENT_RESOLVED);

    assert_int_equal(incidents_store_replay(f.is, &cfg, on_diff, &ds, &rs), 0);
    assert_int_equal(ds.n, 0);
    assert_int_equal(rs.diffs, 0);
    /* The silence, 2 + 1 batches, the actions, then the tick. */
    assert_int_equal(rs.steps, 5);
    assert_int_equal(rs.batches, 5);
    assert_int_equal(rs.actions, 3);
    assert_int_equal(rs.incidents, 1);
    /* opened, silenced, acknowledged, resolved */
    assert_int_equal(rs.notes, 4);
    assert_int_equal(incident_engine_get(f.e, 1)->silenced, 1);

    /* An engine loaded from the tables (restart) has the silence. */
    {
        struct incident_engine *e2;
        struct incidents_watermark wm2;
        struct out *o = tc_xcalloc(1, sizeof(*o));

        assert_int_equal(incidents_store_load(f.is, &cfg, &e2, &wm2), 0);
        ev = ev_log("later", TC_SEV_ERROR, T0 + 41 * MIN, 1);
        incident_engine_event(e2, "web-01", &ev);
        drain(e2, o);
        assert_int_equal(o->inc[2].silenced, 1);
        incident_engine_free(e2);
        free(o);
    }
    assert_int_equal(rs.fps, 1); /* disk: 2 of 3 attempts */

    /* A changed config is a difference: with max_attempts 2, the check
     * would have opened an incident. */
    other.max_attempts = 2;
    assert_int_equal(incidents_store_replay(f.is, &other, on_diff, &ds, &rs),
                     0);
    assert_true(rs.diffs > 0);
    assert_true(has_diff(&ds, "incidents 2 - - "));
    assert_int_equal(rs.diffs, 3); /* the row, "opened", "silenced" */
    assert_true(has_diff(&ds, "incidents 2 - - web-01\x1f"
                              "disk"));
    assert_true(has_diff(&ds, "timeline 2 - - "));

    /* Tampered live rows are differences naming the incident. */
    memset(&ds, 0, sizeof(ds));
    assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE incidents SET count = 99;"
                                  "DELETE FROM timeline WHERE id ="
                                  " (SELECT max(id) FROM timeline);"
                                  "UPDATE actions SET result = 0;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(incidents_store_replay(f.is, &cfg, on_diff, &ds, &rs), 0);
    assert_int_equal(rs.diffs, 3);
    assert_true(has_diff(&ds, "incidents 1 count 99 3"));
    assert_true(has_diff(&ds, "timeline 1 - - "));
    assert_true(has_diff(&ds, "actions 1 result 0 -114"));

    incident_engine_free(f.e);
    incidents_store_close(f.is);
    store_close(f.st);
    cmd = tc_xasprintf("rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/*
 * Replay of a flapping check: the history lives in incident_fps, so a
 * collector restarted in the middle (engine loaded from the tables) and
 * a replay from the step log agree with the live rows; replay with flap
 * detection off shows what it changed.
 */
static void
test_replay_flapping(void **state)
{
    struct replay_fix f = {0};
    struct incidents_replay_stats rs;
    struct incident_config off = fcfg;
    struct diffs ds = {0};
    struct tc_event ev;
    char *cmd;

    (void)state;
    snprintf(f.dir, sizeof(f.dir), "/tmp/test_incident.XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    snprintf(f.path, sizeof(f.path), "%s/collector.db", f.dir);
    assert_int_equal(store_open(f.path, 0, &f.st), 0);
    assert_int_equal(incidents_store_open(f.path, 0, &f.is), 0);
    assert_int_equal(incidents_store_load(f.is, &fcfg, &f.e, &f.wm), 0);
    for (int i = 0; i < 80; i++) {
        ev = ev_check("port", i < 40 && i % 2 == 0 ? 2 : 0, T0 + i * 10 * SEC);
        commit_event(&f, &ev);
        if (i % 3 == 2)
            run_steps(&f, T0 + i * 10 * SEC + SEC);
        if (i == 6 || i == 25 || i == 50) {
            /* A restart: the engine comes back from the tables. */
            incident_engine_free(f.e);
            assert_int_equal(incidents_store_load(f.is, &fcfg, &f.e, &f.wm), 0);
        }
    }
    run_steps(&f, T0 + 80 * 10 * SEC);
    assert_non_null(incident_engine_get(f.e, 1));
    assert_int_equal(incident_engine_get(f.e, 1)->state, INCIDENT_RESOLVED);
    assert_int_equal(incident_engine_get(f.e, 1)->flapping, 0);
    assert_null(incident_engine_get(f.e, 2));

    assert_int_equal(incidents_store_replay(f.is, &fcfg, on_diff, &ds, &rs), 0);
    assert_int_equal(ds.n, 0);
    assert_int_equal(rs.diffs, 0);
    assert_int_equal(rs.incidents, 1);
    /* opened, flapping started, flapping stopped, resolved */
    assert_int_equal(rs.notes, 4);

    /* Flap detection off: the alternating check never opens one. */
    off.flap_high = off.flap_low = 0;
    assert_int_equal(incidents_store_replay(f.is, &off, on_diff, &ds, &rs), 0);
    assert_true(rs.diffs > 0);
    assert_int_equal(rs.diffs, 5); /* the row and its 4 entries */
    assert_true(has_diff(&ds, "incidents 1 - web-01\x1f"
                              "port web-01 port check resolved critical"));
    assert_true(has_diff(&ds, "timeline 1 - "));

    incident_engine_free(f.e);
    incidents_store_close(f.is);
    store_close(f.st);
    cmd = tc_xasprintf("rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

struct stats_seen {
    int n;
    struct incidents_stats_row r[4];
    char key[4][32];
};

static int
on_stats(const struct incidents_stats_row *r, void *arg)
{
    struct stats_seen *ss = arg;

    assert_true(ss->n < 4);
    ss->r[ss->n] = *r;
    snprintf(ss->key[ss->n], sizeof(ss->key[0]), "%s", r->key);
    ss->r[ss->n].key = ss->key[ss->n];
    ss->n++;
    return 0;
}

/* MTTA, MTTR and MTBF on rows with known numbers. */
static void
test_stats(void **state)
{
    char dir[64], path[128], *cmd;
    struct store *st;
    struct incidents_store *is;
    struct stats_seen ss = {0};
    sqlite3 *db;
    char *sql;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_incident.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/collector.db", dir);
    assert_int_equal(store_open(path, 0, &st), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    /*
     * a/disk: opened T0, acked +60 s, resolved +600 s; opened again at
     * +3600 s, acked +180 s, closed +1200 s. b/oom: opened +100 s,
     * acked +130 s, resolved +400 s, reopened +7300 s and open since,
     * never acknowledged again: the reopen cleared its acked_at and
     * resolved_at, as the engine does, and only its timeline keeps them.
     */
    sql = tc_xasprintf(
        "INSERT INTO incidents(id, fingerprint, host, rule, kind, state,"
        " severity, priority, count, first_seen, last_seen, opened_at,"
        " acked_at, resolved_at, closed_at, reopened) VALUES"
        " (1, 'a/disk', 'a', 'disk', 'check', 'resolved', 'critical', 2, 1,"
        "  0, 0, %lld, %lld, %lld, 0, 0),"
        " (2, 'a/disk', 'a', 'disk', 'check', 'closed', 'critical', 2, 1,"
        "  0, 0, %lld, %lld, 0, %lld, 0),"
        " (3, 'b/oom', 'b', 'oom', 'log', 'open', 'error', 3, 1,"
        "  0, 0, %lld, 0, 0, 0, 1);"
        "INSERT INTO timeline(incident_id, ts, what, who) VALUES"
        " (1, %lld, 'opened', 'rule:disk'), (3, %lld, 'opened', 'rule:oom'),"
        " (1, %lld, 'acknowledged', 'user:bob'),"
        " (3, %lld, 'acknowledged', 'user:bob'),"
        " (3, %lld, 'note', 'user:bob'),"
        " (3, %lld, 'resolved', 'user:bob'),"
        " (1, %lld, 'resolved', 'rule:disk'),"
        " (2, %lld, 'opened', 'rule:disk'),"
        " (2, %lld, 'acknowledged', 'user:bob'),"
        " (2, %lld, 'closed', 'user:bob'),"
        " (3, %lld, 'reopened', 'rule:oom');",
        T0, T0 + 60 * SEC, T0 + 600 * SEC, T0 + 3600 * SEC, T0 + 3780 * SEC,
        T0 + 4800 * SEC, T0 + 7300 * SEC, T0, T0 + 100 * SEC, T0 + 60 * SEC,
        T0 + 130 * SEC, T0 + 200 * SEC, T0 + 400 * SEC, T0 + 600 * SEC,
        T0 + 3600 * SEC, T0 + 3780 * SEC, T0 + 4800 * SEC, T0 + 7300 * SEC);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    sqlite3_close(db);
    assert_int_equal(incidents_store_open(path, 1, &is), 0);

    /* All of it: b/oom's two openings both count, with its first ack. */
    assert_int_equal(incidents_store_stats(is, T0, NULL, on_stats, &ss), 0);
    assert_int_equal(ss.n, 1);
    assert_string_equal(ss.key[0], "all");
    assert_int_equal(ss.r[0].n, 3);
    assert_int_equal(ss.r[0].openings, 4);
    assert_int_equal(ss.r[0].acked, 3);
    assert_int_equal(ss.r[0].mtta_ns, 90 * SEC); /* (60 + 180 + 30) / 3 */
    assert_int_equal(ss.r[0].restored, 3);
    assert_int_equal(ss.r[0].mttr_ns, 700 * SEC); /* (600 + 1200 + 300) / 3 */
    assert_int_equal(ss.r[0].gaps, 2);
    assert_int_equal(ss.r[0].mtbf_ns, 5400 * SEC); /* (3600 + 7200) / 2 */

    /* By host. */
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(incidents_store_stats(is, T0, "host", on_stats, &ss), 0);
    assert_int_equal(ss.n, 2);
    assert_string_equal(ss.key[0], "a");
    assert_int_equal(ss.r[0].n, 2);
    assert_int_equal(ss.r[0].openings, 2);
    assert_int_equal(ss.r[0].mtbf_ns, 3600 * SEC);
    assert_string_equal(ss.key[1], "b");
    assert_int_equal(ss.r[1].n, 1);
    assert_int_equal(ss.r[1].openings, 2);
    assert_int_equal(ss.r[1].acked, 1);
    assert_int_equal(ss.r[1].mtta_ns, 30 * SEC);
    assert_int_equal(ss.r[1].restored, 1);
    assert_int_equal(ss.r[1].mttr_ns, 300 * SEC);
    assert_int_equal(ss.r[1].mtbf_ns, 7200 * SEC);

    /* By priority, from +50 s: the first a/disk incident is out. */
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(
        incidents_store_stats(is, T0 + 50 * SEC, "priority", on_stats, &ss), 0);
    assert_int_equal(ss.n, 2);
    assert_string_equal(ss.key[0], "P2");
    assert_int_equal(ss.r[0].n, 1);
    assert_int_equal(ss.r[0].mtta_ns, 180 * SEC);
    assert_int_equal(ss.r[0].mttr_ns, 1200 * SEC);
    assert_int_equal(ss.r[0].gaps, 0);
    assert_int_equal(ss.r[0].mtbf_ns, -1);
    assert_string_equal(ss.key[1], "P3");
    assert_int_equal(ss.r[1].acked, 1);
    assert_int_equal(ss.r[1].mtbf_ns, 7200 * SEC);

    /* From +5000 s: only b/oom's reopening, not acknowledged. */
    memset(&ss, 0, sizeof(ss));
    assert_int_equal(
        incidents_store_stats(is, T0 + 5000 * SEC, "rule", on_stats, &ss), 0);
    assert_int_equal(ss.n, 1);
    assert_string_equal(ss.key[0], "oom");
    assert_int_equal(ss.r[0].openings, 1);
    assert_int_equal(ss.r[0].acked, 0);
    assert_int_equal(ss.r[0].mtta_ns, -1);

    incidents_store_close(is);
    store_close(st);
    cmd = tc_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* Listing state for test_list_pages. */
struct page_seen {
    sqlite3 *db;     /* a writer beside the listing */
    int64_t last;    /* id of the previous incident (newest first) */
    int n;           /* incidents called back */
    int busy;        /* a callback ran inside a read transaction */
    int64_t next_id; /* id of the incident the writer adds next */
};

/* Would a TRUNCATE checkpoint find a reader? Then one is open. */
static int
reader_open(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int busy;

    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    busy = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return busy;
}

static int
on_page_inc(const struct incident *in, void *arg)
{
    struct page_seen *p = arg;
    char *sql;

    assert_true(p->last == 0 || in->id < p->last);
    assert_string_equal(in->host, "h");
    p->last = in->id;
    p->n++;
    p->busy += reader_open(p->db);
    /* Opened during the listing: higher ids, never listed. */
    sql = tc_xasprintf("INSERT INTO incidents(id, fingerprint, host, rule,"
                       " kind, state, severity, priority, count, first_seen,"
                       " last_seen, opened_at) VALUES(%lld, 'h/new', 'h',"
                       " 'new', 'log', 'open', 'error', 3, 1, 0, 0, 0)",
                       (long long)p->next_id++);
    assert_int_equal(sqlite3_exec(p->db, sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    return 0;
}

static int
on_page_note(const struct incident_note *n, void *arg)
{
    struct page_seen *p = arg;

    assert_int_equal(n->ts, p->n);
    p->n++;
    p->busy += reader_open(p->db);
    return 0;
}

/*
 * incidents_store_list and _timeline page through long tables (256
 * rows a page) and never call back inside a read transaction (issue 9:
 * "tocsinctl incidents list | less" kept the WAL from being
 * checkpointed); each row comes once, in order.
 */
static void
test_list_pages(void **state)
{
    char dir[64], path[128], *cmd;
    struct store *st;
    struct incidents_store *is;
    struct incidents_filter f = {0};
    struct page_seen p = {0};
    sqlite3 *db;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_incident.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/collector.db", dir);
    assert_int_equal(store_open(path, 0, &st), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
            " FROM n WHERE i < 600)"
            " INSERT INTO incidents(id, fingerprint, host, rule, kind,"
            " state, severity, priority, count, first_seen, last_seen,"
            " opened_at) SELECT i, 'h/r' || i, 'h', 'r', 'log', 'open',"
            " 'error', 3, 1, 0, 0, 0 FROM n;"
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1"
            " FROM n WHERE i < 599)"
            " INSERT INTO timeline(incident_id, ts, what, who)"
            " SELECT 7, i, 'note', 'user:x' FROM n;",
            NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(incidents_store_open(path, 1, &is), 0);
    p.db = db;
    p.next_id = 10000;
    f.host = "h";
    assert_int_equal(incidents_store_list(is, &f, on_page_inc, &p), 0);
    assert_int_equal(p.n, 600);
    assert_int_equal(p.last, 1);
    assert_int_equal(p.busy, 0);

    memset(&p, 0, sizeof(p));
    p.db = db;
    assert_int_equal(incidents_store_timeline(is, 7, on_page_note, &p), 0);
    assert_int_equal(p.n, 600);
    assert_int_equal(p.busy, 0);

    incidents_store_close(is);
    sqlite3_close(db);
    store_close(st);
    cmd = tc_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
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
        cmocka_unit_test(test_service),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_metrics_reopen),
        cmocka_unit_test(test_determinism_and_restart),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_replay_flapping),
        cmocka_unit_test(test_silences),
        cmocka_unit_test(test_replay_store),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_list_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
