/*
 * test_engine: the incident engine as a pure function, linked with the
 * engine library alone (no SQLite, no libuv). Fingerprints, dedup,
 * soft/hard check states, auto-resolve (check OK, agent back, quiet
 * logs), reopen inside and outside the window, late backlogs, priority
 * from severity and impact, human actions, MTTA/MTTR from the timeline,
 * restart from the persisted rows, determinism (the same inputs give
 * the same output, byte for byte), flapping and silences.
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

#include "engine/incident.h"
#include "engine_fixture.h"
#include "util.h"

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

/* The drain's order, recorded: incident ids, fingerprint keys, notes. */
struct seq {
    int64_t ids[256];
    int nids;
    char fps[64][32];
    int nfps;
    char notes[256][48]; /* "id what" */
    int nnotes;
};

static int
seq_inc(void *arg, const struct incident *in)
{
    struct seq *q = arg;

    assert_true(q->nids < 256);
    q->ids[q->nids++] = in->id;
    return 0;
}

static int
seq_fp(void *arg, const struct incident_fp *fp)
{
    struct seq *q = arg;

    assert_true(q->nfps < 64);
    snprintf(q->fps[q->nfps++], sizeof(q->fps[0]), "%s", fp->fingerprint);
    return 0;
}

static int
seq_note(void *arg, const struct incident_note *n)
{
    struct seq *q = arg;

    assert_true(q->nnotes < 256);
    snprintf(q->notes[q->nnotes++], sizeof(q->notes[0]), "%lld %s",
             (long long)n->incident_id, n->what);
    return 0;
}

static void
seq_drain(struct incident_engine *e, struct seq *q)
{
    static const struct incident_sink s = {seq_inc, seq_fp, seq_note};

    memset(q, 0, sizeof(*q));
    assert_int_equal(incident_engine_drain(e, &s, q), 0);
}

/* q's incidents are exactly want[0..n), in that order. */
static void
seq_ids_are(const struct seq *q, const int64_t *want, int n)
{
    assert_int_equal(q->nids, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(q->ids[i], want[i]);
}

/*
 * The drain hands over every changed incident once, in id order, and
 * nothing else, whatever order the changes came in (the engine lists
 * changes as they happen and sorts them: bench/README.md
 * "bench/engine"); fingerprints in key order; the tick resolves and
 * closes in id order; a priority walk notes in id order even when the
 * rule's incidents became active out of id order.
 */
static void
test_drain_order(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct seq *q = tc_xcalloc(1, sizeof(*q));
    struct tc_event ev;
    char host[16], rule[16];
    static const int64_t touched[] = {2, 5, 7, 17, 30, 40};
    const int64_t touch_order[] = {30, 5, 17, 2, 30};
    int64_t want[64];
    int n = 0;

    (void)state;
    /* 40 incidents, each of a rule and host of its own. */
    for (int i = 1; i <= 40; i++) {
        snprintf(host, sizeof(host), "h%02d", i);
        snprintf(rule, sizeof(rule), "solo%02d", i);
        ev = ev_log(rule, TC_SEV_ERROR, T0, 1);
        incident_engine_event(e, host, &ev);
    }
    seq_drain(e, q);
    assert_int_equal(q->nids, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(q->ids[i], i + 1);
    assert_false(incident_engine_pending(e));

    /* Changes out of id order, one incident twice, a note (no change
     * to the incident), an acknowledgement and a close. */
    for (size_t i = 0; i < sizeof(touch_order) / sizeof(*touch_order); i++) {
        snprintf(host, sizeof(host), "h%02lld", (long long)touch_order[i]);
        snprintf(rule, sizeof(rule), "solo%02lld", (long long)touch_order[i]);
        ev = ev_log(rule, TC_SEV_ERROR, T0 + 10 * MIN, 1);
        incident_engine_event(e, host, &ev);
    }
    {
        struct incident_action a[] = {
            {T0 + 10 * MIN, "alice", INCIDENT_ACK, 40, NULL},
            {T0 + 10 * MIN, "alice", INCIDENT_NOTE, 3, "look"},
            {T0 + 10 * MIN, "alice", INCIDENT_CLOSE, 7, "dup"},
        };
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(incident_engine_action(e, &a[i]), 0);
    }
    assert_true(incident_engine_pending(e));
    seq_drain(e, q);
    seq_ids_are(q, touched, 6);
    assert_int_equal(q->nnotes, 3);
    assert_string_equal(q->notes[0], "40 acknowledged");
    assert_string_equal(q->notes[1], "3 note");
    assert_string_equal(q->notes[2], "7 closed");
    /* The closed one left memory; nothing is left to hand over. */
    assert_null(incident_engine_get(e, 7));
    assert_int_equal(incident_engine_size(e), 39);
    assert_false(incident_engine_pending(e));
    seq_drain(e, q);
    assert_int_equal(q->nids + q->nfps + q->nnotes, 0);

    /* Quiet for resolve_after: every log incident without a later
     * event resolves (40 too: an acknowledgement is no event), in id
     * order; those with one stay. */
    incident_engine_tick(e, T0 + 30 * MIN);
    seq_drain(e, q);
    for (int64_t id = 1; id <= 40; id++) {
        int skip = 0;

        for (size_t i = 0; i < sizeof(touched) / sizeof(*touched); i++)
            skip |= touched[i] == id && id != 40;
        if (!skip)
            want[n++] = id;
    }
    seq_ids_are(q, want, n);
    assert_int_equal(q->nnotes, n);
    for (int i = 0; i < n; i++) {
        char s[48];

        snprintf(s, sizeof(s), "%lld resolved", (long long)want[i]);
        assert_string_equal(q->notes[i], s);
    }
    /* A tick before the touched ones are quiet changes nothing. */
    incident_engine_tick(e, T0 + 39 * MIN);
    assert_false(incident_engine_pending(e));
    /* Then they resolve, in id order, and the first ones close. */
    incident_engine_tick(e, T0 + 90 * MIN);
    seq_drain(e, q);
    {
        static const int64_t w[] = {1,  2,  3,  4,  5,  6,  8,  9,  10, 11,
                                    12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                    22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
                                    32, 33, 34, 35, 36, 37, 38, 39, 40};

        seq_ids_are(q, w, 39);
    }
    assert_string_equal(q->notes[0], "1 closed");
    assert_string_equal(q->notes[1], "2 resolved");
    assert_string_equal(q->notes[2], "3 closed");
    /* The closed ones left; the four with later events stay,
     * resolved. */
    assert_int_equal(incident_engine_size(e), 4);

    /* Fingerprints in key order, whatever order they changed in. */
    ev = ev_check("zeta", 2, T0 + 91 * MIN);
    incident_engine_event(e, "h01", &ev);
    ev = ev_check("alpha", 2, T0 + 91 * MIN);
    incident_engine_event(e, "h01", &ev);
    ev = ev_check("mid", 2, T0 + 91 * MIN);
    incident_engine_event(e, "h01", &ev);
    seq_drain(e, q);
    assert_int_equal(q->nfps, 3);
    assert_string_equal(q->fps[0], "h01\x1f"
                                   "alpha");
    assert_string_equal(q->fps[1], "h01\x1f"
                                   "mid");
    assert_string_equal(q->fps[2], "h01\x1f"
                                   "zeta");

    /* Priority walk: rule imp active on a (id 41) and b (42); 41
     * resolves and reopens (active again after 42), then a third host
     * raises all three, noted in id order. */
    ev = ev_log("imp", TC_SEV_WARNING, T0 + 92 * MIN, 1);
    incident_engine_event(e, "a", &ev);
    incident_engine_event(e, "b", &ev);
    {
        struct incident_action a = {T0 + 92 * MIN, "bob", INCIDENT_RESOLVE, 41,
                                    NULL};

        assert_int_equal(incident_engine_action(e, &a), 0);
    }
    ev = ev_log("imp", TC_SEV_WARNING, T0 + 93 * MIN, 1);
    incident_engine_event(e, "a", &ev);
    seq_drain(e, q);
    ev = ev_log("imp", TC_SEV_WARNING, T0 + 94 * MIN, 1);
    incident_engine_event(e, "c", &ev);
    seq_drain(e, q);
    {
        static const int64_t w[] = {41, 42, 43};

        seq_ids_are(q, w, 3);
    }
    assert_int_equal(q->nnotes, 4);
    assert_string_equal(q->notes[0], "43 opened");
    assert_string_equal(q->notes[1], "41 priority");
    assert_string_equal(q->notes[2], "42 priority");
    assert_string_equal(q->notes[3], "43 priority");
    assert_int_equal(incident_engine_get(e, 41)->priority, 3);
    assert_int_equal(incident_engine_get(e, 43)->priority, 3);
    incident_engine_free(e);
    free(q);
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
        cmocka_unit_test(test_silences),
        cmocka_unit_test(test_drain_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
