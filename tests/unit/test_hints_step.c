/*
 * test_hints_step: hints decided in the engine step
 * (collector/store/hints_store.c, engine/dispatch.c; docs/runbooks.md
 * "Dispatch"): the runbook set is a recorded input; hints are written
 * in the step's transaction with their timeline notes; a store reloaded
 * between steps (a restart) decides exactly the hints of one that never
 * stopped, and none twice; replay rebuilds them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "runbooks/runbooks.h"
#include "store/incidents_store.h"
#include "store/store.h"
#include "store_fixture.h"
#include "testutil.h"
#include "util.h"

/* Runbook files of set NAME ("a" or "b") under the scratch directory. */
static const char rb_up[] = "---\n"
                            "id: up\n"
                            "title: Upstream down\n"
                            "match: {class: [upstream-down]}\n"
                            "action:\n"
                            "  name: restart-app\n"
                            "  params: {target: \"{field.upstream}\"}\n"
                            "---\n"
                            "Restart the app.\n";
static const char rb_ref[] =
    "---\n"
    "id: ref\n"
    "title: A dependency is down\n"
    "match: {class: [upstream-down], problem_rule: [reference]}\n"
    "priority: 5\n"
    "---\n"
    "Look at the named host.\n";
static const char rb_tls[] = "---\n"
                             "id: tls\n"
                             "title: Certificate expired\n"
                             "match: {class: [tls-expired]}\n"
                             "---\n"
                             "Renew it.\n";

/* Set "c": only this, an action filled from each host's own name. */
static const char rb_here[] =
    "---\n"
    "id: here\n"
    "title: Restart here\n"
    "match: {class: [upstream-down], problem_rule: [reference]}\n"
    "action:\n"
    "  name: restart\n"
    "  params: {target: \"{host}\"}\n"
    "---\n"
    "Restart the service here.\n";

/* Set "d": only this, an action filled from each host's own field. */
static const char rb_via[] =
    "---\n"
    "id: via\n"
    "title: Restart the upstream\n"
    "match: {class: [upstream-down], problem_rule: [reference]}\n"
    "action:\n"
    "  name: restart\n"
    "  params: {via: \"{field.upstream}\", on: \"{host}\"}\n"
    "---\n"
    "Restart it.\n";

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(fp = fopen(path, "w"));
    fputs(text, fp);
    fclose(fp);
}

/* Load set name ("a": up and ref; "b": also tls; "c": here alone; "d":
 * via alone) and record it. */
static int
record(struct fix *f, const char *name, int64_t now)
{
    char dir[200];
    struct runbook_set *set;
    int recorded = -1;

    snprintf(dir, sizeof(dir), "%s/rb-%s", tu_tmpdir, name);
    if (strcmp(name, "c") == 0 || strcmp(name, "d") == 0) {
        if (mkdir(dir, 0700) == 0)
            write_file(dir, "here.md", name[0] == 'c' ? rb_here : rb_via);
    } else if (mkdir(dir, 0700) == 0) {
        write_file(dir, "up.md", rb_up);
        write_file(dir, "ref.md", rb_ref);
        if (strcmp(name, "b") == 0)
            write_file(dir, "tls.md", rb_tls);
    }
    tu_capture_begin();
    assert_int_equal(runbooks_load(dir, &set), 0);
    free(tu_capture_end());
    assert_int_equal(
        incidents_store_runbooks_record(f->is, set, now, &recorded), 0);
    runbook_set_unref(set);
    return recorded;
}

/* The shared scenario (store_fixture.c), with runbook set "a" first. */
static void
scenario(struct fix *f, int reload_every)
{
    record(f, "a", T0);
    fix_scenario(f, reload_every);
}

/* The engine state's tables and the hint tables, as text. */
static char *
dump(const char *path)
{
    static const char *const hq[] = {
        "SELECT * FROM hints ORDER BY id",
        "SELECT id, hash, files FROM runbook_sets ORDER BY id",
    };

    return fix_dump(path, hq, sizeof(hq) / sizeof(hq[0]));
}

/*
 * The hints of the scenario: the runbook "up" to each web server whose
 * upstream-down incident opened (its field filled in), "ref" to every
 * host of the reference problem, the known error's workaround to the
 * same hosts; a restart after every step decides exactly the same
 * (byte-identical tables, no hint twice); replay is identical, and a
 * tampered hint is a difference.
 */
static void
test_hints_load_then_continue(void **state)
{
    struct fix a = {0}, b = {0};
    struct incidents_replay_stats rs;
    char *da, *db_;
    int nd = 0;

    (void)state;
    fix_open(&a, "continuous");
    scenario(&a, 0);
    fix_open(&b, "reload1");
    scenario(&b, 1);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM runbook_sets"), 1);
    /* Incident opened: web-01's hint carries its captured field. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'runbook:up' AND agent ="
                                     " 'web-01' AND action = 'restart-app'"
                                     " AND params ="
                                     " '{\"target\":\"cache-01:6379\"}'"),
                     1);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'runbook:up'"),
                     3);
    /* The reference problem: ref to its four hosts, once each. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'runbook:ref' AND"
                                     " problem_id = 1"),
                     4);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'runbook:ref' AND"
                                     " agent = 'cache-01'"),
                     1);
    /* The known error: its workaround to the same four. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'known-error:1' AND text ="
                                     " 'restart it'"),
                     4);
    /* Nothing matched tls-expired: no hint for it. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints h JOIN"
                                     " incidents i ON i.id = h.incident_id"
                                     " WHERE i.rule = 'tls-expired'"),
                     0);
    /* Each problem hint names its own host's incident (cache-01 has
     * one here), and its note is on that incident's timeline. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM hints h JOIN"
                                     " incidents i ON i.id = h.incident_id"
                                     " WHERE h.problem_id != 0 AND"
                                     " i.host = h.agent"),
                     8);
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM timeline t JOIN"
                                     " incidents i ON i.id = t.incident_id"
                                     " WHERE t.what = 'hint' AND t.detail"
                                     " NOT LIKE '% for ' || i.host || ':%'"),
                     0);
    /* Every hint is on its incident's timeline. */
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM timeline WHERE"
                                     " what = 'hint'"),
                     sql_int(a.path, "SELECT count(*) FROM hints"));
    assert_int_equal(sql_int(a.path, "SELECT count(*) FROM timeline WHERE"
                                     " detail = 'hint 1 for web-01: Upstream"
                                     " down'"),
                     1);
    da = dump(a.path);
    db_ = dump(b.path);
    assert_string_equal(da, db_);
    free(da);
    free(db_);
    assert_int_equal(
        incidents_store_replay(b.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(rs.hints, 11);
    sql_exec(b.path, "UPDATE hints SET agent = 'web-09' WHERE id = 2");
    assert_int_equal(
        incidents_store_replay(b.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_true(nd > 0);
    fix_close(&a);
    fix_close(&b);
}

/*
 * The set is an input at its place in the order: recording the same set
 * again writes nothing; a changed set applies from the step after it,
 * so an incident opened before it got no tls hint and one opened after
 * it does; a restart restores the set in force; replay agrees.
 */
static void
test_hints_set_is_input(void **state)
{
    struct fix f = {0};
    struct incidents_replay_stats rs;
    int nd = 0;

    (void)state;
    fix_open(&f, "input");
    assert_int_equal(record(&f, "a", T0), 1);
    assert_int_equal(record(&f, "a", T0), 0);
    commit(&f, 0, "tls-expired", TC_SEV_WARNING, NULL, T0);
    run(&f, T0 + SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints"), 0);
    assert_int_equal(record(&f, "b", T0 + 2 * SEC), 1);
    run(&f, T0 + 2 * SEC);
    /* A restart: the set the tables reflect is restored from them. */
    fix_close(&f);
    fix_open(&f, "input");
    commit(&f, 1, "tls-expired", TC_SEV_WARNING, NULL, T0 + 3 * SEC);
    run(&f, T0 + 3 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " source = 'runbook:tls' AND agent ="
                                     " 'web-02'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints"), 1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM actions WHERE"
                                     " verb = 'runbooks' AND result = 0"),
                     2);
    reload(&f);
    commit(&f, 2, "tls-expired", TC_SEV_WARNING, NULL, T0 + 4 * SEC);
    run(&f, T0 + 4 * SEC);
    /* The third host makes a spread problem: tls (no rule condition)
     * to its three hosts, and to web-03 for its own incident. */
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " problem_id = 0"),
                     2);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " problem_id = 1"),
                     3);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(rs.hints, 5);
    /* The runbooks block removed: the empty set is recorded (an empty
     * blob) and from then on nothing matches. */
    {
        struct runbook_set *none = runbooks_empty();
        int recorded = 0;

        assert_int_equal(incidents_store_runbooks_record(
                             f.is, none, T0 + 5 * SEC, &recorded),
                         0);
        assert_int_equal(recorded, 1);
        runbook_set_unref(none);
    }
    commit(&f, 3, "tls-expired", TC_SEV_WARNING, NULL, T0 + 6 * SEC);
    run(&f, T0 + 6 * SEC);
    fix_close(&f);
    fix_open(&f, "input");
    commit(&f, 4, "tls-expired", TC_SEV_WARNING, NULL, T0 + 7 * SEC);
    run(&f, T0 + 7 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " agent IN ('cache-01', 'db-01')"),
                     0);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    fix_close(&f);
}

/*
 * Hints are written in the step's transaction: a failure injected into
 * the hints insert leaves no incident, no hint and no watermark; once
 * it is gone the same inputs land together, each hint once.
 */
static void
test_hints_step_atomic(void **state)
{
    struct fix f = {0};
    int more;

    (void)state;
    fix_open(&f, "atomic");
    record(&f, "a", T0);
    run(&f, T0);
    commit(&f, 0, "upstream-down", TC_SEV_ERROR, "db-01", T0 + SEC);
    sql_exec(f.path, "CREATE TRIGGER fault BEFORE INSERT ON hints"
                     " BEGIN SELECT RAISE(ABORT, 'injected'); END");
    assert_true(incidents_store_step(f.is, f.e, f.pe, &f.wm, T0 + 2 * SEC, 16,
                                     &more) < 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM incidents"), 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints"), 0);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM engine_steps"), 1);
    sql_exec(f.path, "DROP TRIGGER fault");
    reload(&f);
    run(&f, T0 + 2 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM incidents"), 1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " params = '{\"target\":\"db-01\"}'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM engine_steps"), 2);
    fix_close(&f);
}

/* What a hints listing gave: ids and errors, in order. */
struct listed {
    int n;
    int64_t id[32];
    char error[32][96];
};

static int
list_cb(const struct hint_row *r, void *arg)
{
    struct listed *l = arg;

    assert_true(l->n < 32);
    l->id[l->n] = r->id;
    snprintf(l->error[l->n], sizeof(l->error[0]), "%s", r->error);
    l->n++;
    return 0;
}

static int
list_state(struct fix *f, const char *state, struct listed *l)
{
    struct hints_filter hf = {.agent = "web-01", .state = state};

    memset(l, 0, sizeof(*l));
    assert_int_equal(incidents_store_hints(f->is, &hf, list_cb, l), 0);
    return l->n;
}

static void
mark(struct fix *f, int64_t id, int acked, int refused, const char *error,
     int64_t ts)
{
    struct hint_mark m = {.hint_id = id,
                          .agent = "web-01",
                          .ts = ts,
                          .acked = acked,
                          .refused = refused,
                          .error = error};

    assert_int_equal(incidents_store_hints_mark(f->is, &m, 1), 0);
}

/*
 * Delivery marks (hint_delivery, written by the hint sender): a hint
 * the agent refused is in state "refused" with the agent's reason, not
 * "sent"; it is still loaded to go again on the agent's next link; a
 * send after it makes it "sent" again; an ack wins over a late
 * refusal.
 */
static void
test_hints_refused(void **state)
{
    struct fix f = {0};
    struct listed l;
    int64_t h1, h2;

    (void)state;
    fix_open(&f, "refused");
    scenario(&f, 0);
    h1 = sql_int(f.path, "SELECT min(id) FROM hints WHERE agent = 'web-01'");
    h2 = sql_int(f.path, "SELECT max(id) FROM hints WHERE agent = 'web-01'");
    assert_true(h1 < h2);
    assert_int_equal(list_state(&f, "refused", &l), 0);
    mark(&f, h1, 0, 0, NULL, T0);
    mark(&f, h2, 0, 0, NULL, T0);
    assert_int_equal(list_state(&f, "sent", &l), 2);
    mark(&f, h1, 0, 1, HINT_REFUSED_PREFIX "bad signature", T0 + SEC);
    assert_int_equal(list_state(&f, "refused", &l), 1);
    assert_int_equal(l.id[0], h1);
    assert_string_equal(l.error[0], HINT_REFUSED_PREFIX "bad signature");
    assert_int_equal(list_state(&f, "sent", &l), 1);
    assert_int_equal(l.id[0], h2);
    assert_int_equal(list_state(&f, "acked", &l), 0);
    /* Kept its send: sent_at and attempts stay. */
    assert_int_equal(sql_int(f.path, "SELECT sent_at = 1700000000000000000"
                                     " AND attempts = 1 FROM hint_delivery"
                                     " WHERE hint_id = (SELECT min(id) FROM"
                                     " hints WHERE agent = 'web-01')"),
                     1);
    /* Not acked: loaded again for the agent's next link. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        incidents_store_hints_pending(f.is, "web-01", 0, 100, list_cb, &l), 0);
    assert_true(l.n >= 2 && l.id[0] == h1);
    /* Sent again: "sent", the reason gone. */
    mark(&f, h1, 0, 0, NULL, T0 + 2 * SEC);
    assert_int_equal(list_state(&f, "refused", &l), 0);
    assert_int_equal(list_state(&f, "sent", &l), 2);
    assert_string_equal(l.error[0], "");
    /* Acked, then a refusal for it: still acked. */
    mark(&f, h2, 1, 0, NULL, T0 + 3 * SEC);
    mark(&f, h2, 0, 1, HINT_REFUSED_PREFIX "late", T0 + 4 * SEC);
    assert_int_equal(list_state(&f, "acked", &l), 1);
    assert_int_equal(l.id[0], h2);
    assert_string_equal(l.error[0], "");
    fix_close(&f);
}

/* One action_result event from hosts[h] naming incident inc ("" =
 * none) and problem prob (NULL = no such field). */
static void
commit_result(struct fix *f, int h, const char *inc, const char *prob,
              int64_t ts)
{
    static const uint8_t one = 0x91;
    struct store_batch b = {0};
    struct store_txn t = {0};
    struct tc_kv kv[6];
    struct tc_event ev;
    struct tc_buf blob;
    uint32_t n = 0;

    kv[n].key = tc_str_c("action");
    kv[n++].val = tc_str_c("restart");
    kv[n].key = tc_str_c("hint");
    kv[n++].val = tc_str_c("1");
    kv[n].key = tc_str_c("incident");
    kv[n++].val = tc_str_c(inc);
    if (prob != NULL) {
        kv[n].key = tc_str_c("problem");
        kv[n++].val = tc_str_c(prob);
    }
    kv[n].key = tc_str_c("exit");
    kv[n++].val = tc_str_c("0");
    kv[n].key = tc_str_c("output");
    kv[n++].val = tc_str_c("restarted");
    memset(&ev, 0, sizeof(ev));
    ev.kind = tc_str_c("action_result");
    ev.rule = tc_str_c("action_result");
    ev.source = tc_str_c("restart");
    ev.sev = TC_SEV_INFO;
    ev.state = -1;
    ev.ts = ts;
    ev.count = 1;
    ev.seq = ++f->seq[h];
    ev.host = tc_str_c(hosts[h]);
    ev.message = tc_str_c("action restart: exit 0");
    ev.fingerprint = tc_str_c("");
    ev.fields = kv;
    ev.nfields = n;
    tc_buf_init(&blob, 1u << 20);
    assert_int_equal(tc_buf_append(&blob, &one, 1), 0);
    assert_int_equal(tc_event_encode(&blob, &ev), 0);
    b.host = hosts[h];
    b.seq_first = b.seq_last = f->seq[h];
    b.n = 1;
    b.ts_min = b.ts_max = ts;
    b.events = (const uint8_t *)tc_buf_head(&blob);
    b.events_len = tc_buf_size(&blob);
    t.batches = &b;
    t.nbatches = 1;
    assert_int_equal(store_commit(f->log, &t), 0);
    tc_buf_close(&blob);
}

/*
 * Issue 12 item 6: two web servers name cache-01, which reports
 * nothing itself. Each web server's hint names its own incident (not
 * the one whose link triggered the dispatch) with its own parameter,
 * noted on its own timeline; cache-01's names only the problem, noted
 * on the problem's timeline, and cache-01's action result lands there.
 * A result for that problem from a host not in it is refused. A
 * restarted store and replay agree.
 */
static void
test_hints_own_incident(void **state)
{
    struct fix f = {0}, g = {0};
    struct incidents_replay_stats rs;
    int64_t t = T0;
    char *da, *dg;
    int nd = 0;

    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        struct fix *x = pass == 0 ? &f : &g;

        fix_open(x, pass == 0 ? "own" : "own-reload");
        record(x, "c", t);
        /* cache-01 is a known host, with no incident. */
        commit(x, 3, "hello", TC_SEV_OK, NULL, t);
        run(x, t + SEC);
        if (pass)
            reload(x);
        commit(x, 0, "upstream-down", TC_SEV_ERROR, "cache-01:6379",
               t + 2 * SEC);
        run(x, t + 2 * SEC);
        if (pass)
            reload(x);
        commit(x, 1, "upstream-down", TC_SEV_ERROR, "cache-01", t + 3 * SEC);
        run(x, t + 3 * SEC);
        if (pass)
            reload(x);
        commit_result(x, 3, "", "1", t + 4 * SEC);
        commit_result(x, 1, "2", NULL, t + 5 * SEC);
        commit_result(x, 4, "", "1", t + 6 * SEC); /* db-01: not in it */
        run(x, t + 6 * SEC);
    }
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problems"), 1);
    assert_int_equal(sql_int(f.path,
                             "SELECT count(*) FROM problems WHERE root_host ="
                             " 'cache-01' AND rule = 'reference'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints"), 3);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " agent = 'cache-01' AND incident_id = 0"
                                     " AND problem_id = 1 AND params ="
                                     " '{\"target\":\"cache-01\"}'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints h JOIN"
                                     " incidents i ON i.id = h.incident_id"
                                     " WHERE i.host = h.agent AND h.params ="
                                     " '{\"target\":\"' || h.agent || '\"}'"),
                     2);
    /* Notes: the web servers' on their incidents, cache-01's on the
     * problem. */
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM timeline t JOIN"
                                     " incidents i ON i.id = t.incident_id"
                                     " WHERE t.what = 'hint' AND t.detail"
                                     " LIKE '% for ' || i.host || ':%'"),
                     2);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_timeline"
                                     " WHERE problem_id = 1 AND what = 'hint'"
                                     " AND detail LIKE '% for cache-01: "
                                     "Restart here'"),
                     1);
    /* The results: cache-01's on the problem, web-02's on its
     * incident, db-01's nowhere. */
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_timeline"
                                     " WHERE problem_id = 1 AND what ="
                                     " 'action' AND who = 'agent:cache-01'"
                                     " AND detail LIKE 'restart exit 0 in %"
                                     "(hint 1): restarted'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problem_timeline"
                                     " WHERE what = 'action'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM timeline WHERE"
                                     " incident_id = 2 AND what = 'action'"
                                     " AND who = 'agent:web-02'"),
                     1);
    assert_int_equal((int64_t)incidents_store_foreign_results(f.is), 1);
    da = dump(f.path);
    dg = dump(g.path);
    assert_string_equal(da, dg);
    free(da);
    free(dg);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(rs.hints, 3);
    fix_close(&f);
    fix_close(&g);
}

/*
 * A problem's hint is filled from each host's own incident: web-01's
 * opened two steps (and a restart) before the reference problem that
 * web-02's opening made, and still fills {field.upstream} with its own
 * value, kept by the step that opened it (hint_subjects). cache-01 has
 * no incident, so no field: its hint has no action, and says why.
 * Replay agrees.
 */
static void
test_hints_fields_kept(void **state)
{
    struct fix f = {0};
    struct incidents_replay_stats rs;
    int64_t t = T0;
    int nd = 0;

    (void)state;
    fix_open(&f, "kept");
    record(&f, "d", t);
    commit(&f, 3, "hello", TC_SEV_OK, NULL, t);
    run(&f, t + SEC);
    commit(&f, 0, "upstream-down", TC_SEV_ERROR, "cache-01:6379", t + 2 * SEC);
    run(&f, t + 2 * SEC);
    reload(&f);
    run(&f, t + 3 * SEC);
    commit(&f, 1, "upstream-down", TC_SEV_ERROR, "cache-01", t + 4 * SEC);
    run(&f, t + 4 * SEC);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM problems"), 1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints"), 3);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " agent = 'web-01' AND action ="
                                     " 'restart' AND params = '{\"on\":"
                                     "\"web-01\",\"via\":\"cache-01:6379\"}'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " agent = 'web-02' AND params = '{\"on\":"
                                     "\"web-02\",\"via\":\"cache-01\"}'"),
                     1);
    assert_int_equal(sql_int(f.path, "SELECT count(*) FROM hints WHERE"
                                     " agent = 'cache-01' AND action IS NULL"
                                     " AND note LIKE '%no action restart:"
                                     " parameter via%'"),
                     1);
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, &pcfg, count_diff, &nd, &rs), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(rs.hints, 3);
    fix_close(&f);
}

static int
setup(void **state)
{
    (void)state;
    problem_config_default(&pcfg);
    return tu_setup("test_hints_step");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hints_load_then_continue, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_hints_set_is_input, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_hints_step_atomic, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_hints_refused, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_hints_own_incident, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_hints_fields_kept, setup,
                                        tu_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
