/*
 * test_incident: the incident engine over a real store (the engine
 * alone is test_engine). Replay: a rebuild from the step log matches
 * the live tables, and tampered rows or a changed config show as
 * differences; MTTA/MTTR/MTBF on known numbers; paged listings.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h, whose fail() macro would rename the store's fail(). */
#include "store/incidents_int.h"
#include <cmocka.h>

#include <sqlite3.h>
#include <unistd.h>

#include "buf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "engine_fixture.h"
#include "store/incidents_store.h"
#include "store/store.h"
#include "util.h"

/* The default correlation rules (problem engine beside the incidents). */
static const struct problem_config *
pdef(void)
{
    static struct problem_config c;
    static int init;

    if (!init) {
        problem_config_default(&c);
        init = 1;
    }
    return &c;
}

/* Replay against a real store file (incidents_store_replay). */
struct replay_fix {
    char dir[64];
    char path[128];
    struct store *st;
    struct incidents_store *is;
    struct incident_engine *e;
    struct problem_engine *pe;
    struct incidents_watermark wm;
    uint64_t seq;
};

static void
commit_event_as(struct replay_fix *f, const char *host,
                const struct tc_event *in)
{
    static const uint8_t one = 0x91; /* msgpack: array of 1 */
    struct store_batch b = {0};
    struct store_txn t = {0};
    struct tc_event ev = *in, *e = &ev;
    struct tc_buf blob;

    /* What an agent sends: every string set, seq from 1. */
    ev.seq = f->seq + 1;
    ev.host = tc_str_c(host);
    if (ev.source.ptr == NULL)
        ev.source = tc_str_c("/var/log/app.log");
    ev.message = tc_str_c("msg");
    ev.fingerprint = tc_str_c("");
    tc_buf_init(&blob, 1u << 20);
    assert_int_equal(tc_buf_append(&blob, &one, 1), 0);
    assert_int_equal(tc_event_encode(&blob, e), 0);
    b.host = host;
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

static void
commit_event(struct replay_fix *f, const struct tc_event *in)
{
    commit_event_as(f, "web-01", in);
}

/* Run steps of at most 2 batches until none remain, at engine time now. */
static void
run_steps(struct replay_fix *f, int64_t now)
{
    int more;

    do {
        assert_int_equal(
            incidents_store_step(f->is, f->e, f->pe, &f->wm, now, 2, &more), 0);
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
    assert_int_equal(
        incidents_store_load(f.is, &cfg, pdef(), &f.e, &f.pe, &f.wm), 0);

    /* Nothing recorded yet: nothing to compare, identical. */
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, pdef(), on_diff, &ds, &rs), 0);
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

    assert_int_equal(
        incidents_store_replay(f.is, &cfg, pdef(), on_diff, &ds, &rs), 0);
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
        struct problem_engine *pe2;
        struct incidents_watermark wm2;
        struct out *o = tc_xcalloc(1, sizeof(*o));

        assert_int_equal(
            incidents_store_load(f.is, &cfg, pdef(), &e2, &pe2, &wm2), 0);
        ev = ev_log("later", TC_SEV_ERROR, T0 + 41 * MIN, 1);
        incident_engine_event(e2, "web-01", &ev);
        drain(e2, o);
        assert_int_equal(o->inc[2].silenced, 1);
        incident_engine_free(e2);
        problem_engine_free(pe2);
        free(o);
    }
    assert_int_equal(rs.fps, 1); /* disk: 2 of 3 attempts */

    /* A changed config is a difference: with max_attempts 2, the check
     * would have opened an incident. */
    other.max_attempts = 2;
    assert_int_equal(
        incidents_store_replay(f.is, &other, pdef(), on_diff, &ds, &rs), 0);
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
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, pdef(), on_diff, &ds, &rs), 0);
    assert_int_equal(rs.diffs, 3);
    assert_true(has_diff(&ds, "incidents 1 count 99 3"));
    assert_true(has_diff(&ds, "timeline 1 - - "));
    assert_true(has_diff(&ds, "actions 1 result 0 -114"));

    incident_engine_free(f.e);

    problem_engine_free(f.pe);
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
    assert_int_equal(
        incidents_store_load(f.is, &fcfg, pdef(), &f.e, &f.pe, &f.wm), 0);
    for (int i = 0; i < 80; i++) {
        ev = ev_check("port", i < 40 && i % 2 == 0 ? 2 : 0, T0 + i * 10 * SEC);
        commit_event(&f, &ev);
        if (i % 3 == 2)
            run_steps(&f, T0 + i * 10 * SEC + SEC);
        if (i == 6 || i == 25 || i == 50) {
            /* A restart: the engine comes back from the tables. */
            incident_engine_free(f.e);
            problem_engine_free(f.pe);
            assert_int_equal(
                incidents_store_load(f.is, &fcfg, pdef(), &f.e, &f.pe, &f.wm),
                0);
        }
    }
    run_steps(&f, T0 + 80 * 10 * SEC);
    assert_non_null(incident_engine_get(f.e, 1));
    assert_int_equal(incident_engine_get(f.e, 1)->state, INCIDENT_RESOLVED);
    assert_int_equal(incident_engine_get(f.e, 1)->flapping, 0);
    assert_null(incident_engine_get(f.e, 2));

    assert_int_equal(
        incidents_store_replay(f.is, &fcfg, pdef(), on_diff, &ds, &rs), 0);
    assert_int_equal(ds.n, 0);
    assert_int_equal(rs.diffs, 0);
    assert_int_equal(rs.incidents, 1);
    /* opened, flapping started, flapping stopped, resolved */
    assert_int_equal(rs.notes, 4);

    /* Flap detection off: the alternating check never opens one. */
    off.flap_high = off.flap_low = 0;
    assert_int_equal(
        incidents_store_replay(f.is, &off, pdef(), on_diff, &ds, &rs), 0);
    assert_true(rs.diffs > 0);
    /* The row and its 4 entries; and the major problem the P2 incident
     * opened when it resolved: its row, link, candidate, 2 timeline
     * entries and the incident's mark. */
    assert_int_equal(rs.diffs, 11);
    assert_true(has_diff(&ds, "problems 0 - open major port"));
    assert_true(has_diff(&ds, "incident_marks 1 - 1 0 0"));
    assert_true(has_diff(&ds, "incidents 1 - web-01\x1f"
                              "port web-01 port check resolved critical"));
    assert_true(has_diff(&ds, "timeline 1 - "));

    incident_engine_free(f.e);

    problem_engine_free(f.pe);
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
on_page_inc(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct page_seen *p = arg;
    char *sql;

    assert_true(p->last == 0 || in->id < p->last);
    assert_string_equal(in->host, "h");
    /* The mark comes with the row. */
    assert_int_equal(m->incident_id, in->id);
    assert_int_equal(m->problem_id, in->id == 7 ? 3 : 0);
    assert_int_equal(m->inhibited, in->id == 7);
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

/* sqlite3_progress_handler: counts the VM steps of a statement. */
static int
count_op(void *arg)
{
    ++*(unsigned long *)arg;
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
            "UPDATE incidents SET problem = 3, inhibited = 1 WHERE id = 7;"
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

    /* A state no incident is in: found through the index incidents_state,
     * not by stepping through the 600 open ones (the dashboard asks for
     * the acknowledged incidents on every refresh). SQLite calls the
     * progress handler at least once per row a scan steps over. */
    {
        struct incidents_filter fa = {.state = "acknowledged"};
        unsigned long ops = 0;

        memset(&p, 0, sizeof(p));
        p.db = db;
        sqlite3_progress_handler(is->db, 1, count_op, &ops);
        assert_int_equal(incidents_store_list(is, &fa, on_page_inc, &p), 0);
        sqlite3_progress_handler(is->db, 0, NULL, NULL);
        assert_int_equal(p.n, 0);
        assert_true(ops < 100);
    }

    incidents_store_close(is);
    sqlite3_close(db);
    store_close(st);
    cmd = tc_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* The detail line of the last "action" entry in o's log, or "". */
static const char *
action_detail(const struct out *o, char *buf, size_t len)
{
    const char *p = o->log, *hit = NULL;

    while ((p = strstr(p, " action agent:")) != NULL)
        hit = p++;
    buf[0] = '\0';
    if (hit != NULL) {
        const char *sp = strchr(hit + 14, ' '), *nl;

        if (sp != NULL && (nl = strchr(sp, '\n')) != NULL)
            snprintf(buf, len, "%.*s", (int)(nl - sp - 1), sp + 1);
    }
    return buf;
}

/*
 * Action results (issue 12 item 4): a result naming an incident of its
 * own host is one timeline entry on it and changes nothing else; one
 * naming another host's incident is refused; an unknown, closed or
 * malformed incident, or none, is an event only; no result ever opens,
 * reopens or folds into an incident.
 */
static void
test_action_result_engine(void **state)
{
    struct incident_engine *e = incident_engine_new(&cfg);
    struct out *o = tc_xcalloc(1, sizeof(*o));
    struct incident before;
    struct tc_event ev;
    struct tc_kv f[8];
    char d[512];
    int64_t id;

    (void)state;
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_last_result(e, &id), INCIDENT_RESULT_NONE);
    incident_engine_event(e, "web-02", &ev);
    drain(e, o);
    memset(o, 0, sizeof(*o));
    before = *incident_engine_get(e, 1);

    /* Its own host's incident: one entry, nothing else. */
    ev = ev_result(f, "1", "0",
                   "\n\x1b]52;c;Y2FuYXJ5\x07restarted nginx\r\nsecond line\n",
                   T0 + 10 * SEC);
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_last_result(e, &id),
                     INCIDENT_RESULT_NOTED);
    assert_int_equal(id, 1);
    assert_int_equal(incident_engine_last(e), 0);
    drain(e, o);
    assert_int_equal(o->nnotes, 1);
    assert_true(has_note(o, "1 action agent:web-01"));
    assert_null(strstr(o->log, "I 1 ")); /* the incident did not change */
    assert_string_equal(action_detail(o, d, sizeof(d)),
                        "restart-nginx exit 0 in 1.2s (hint 12): "
                        "\\x1b]52;c;Y2FuYXJ5\\x07restarted nginx");
    assert_int_equal(incident_engine_get(e, 1)->count, before.count);
    assert_int_equal(incident_engine_get(e, 1)->last_seen, before.last_seen);
    assert_int_equal(incident_engine_get(e, 1)->state, INCIDENT_OPEN);
    assert_int_equal(incident_engine_get(e, 1)->severity, TC_SEV_ERROR);

    /* Another host's incident: refused, on no timeline. */
    memset(o, 0, sizeof(*o));
    ev = ev_result(f, "2", "1", "CANARY-foreign", T0 + 11 * SEC);
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_last_result(e, &id),
                     INCIDENT_RESULT_FOREIGN);
    assert_int_equal(id, 2);
    assert_int_equal(incident_engine_pending(e), 0);
    drain(e, o);
    assert_int_equal(o->nnotes, 0);
    assert_int_equal(o->loglen, 0);

    /* Unknown, malformed or missing: an event only, nothing opens. */
    {
        static const char *const bad[] = {
            "99", "0",  "-1", "1 ",  " 1",
            "+1", "1x", "",   "0x1", "9999999999999999999999"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            ev = ev_result(f, bad[i], "3", "CANARY-unknown", T0 + 12 * SEC);
            ev.sev = TC_SEV_CRITICAL;
            incident_engine_event(e, "web-01", &ev);
            assert_int_equal(incident_engine_last_result(e, NULL),
                             INCIDENT_RESULT_UNKNOWN);
        }
        ev = ev_result(f, NULL, "3", "x", T0 + 12 * SEC);
        incident_engine_event(e, "web-01", &ev);
        assert_int_equal(incident_engine_last_result(e, &id),
                         INCIDENT_RESULT_UNKNOWN);
        assert_int_equal(id, 0);
        /* Kind action_result under another rule: ignored, as before. */
        ev = ev_result(f, "1", "0", "x", T0 + 12 * SEC);
        ev.rule = tc_str_c("oom");
        incident_engine_event(e, "web-01", &ev);
        assert_int_equal(incident_engine_last_result(e, NULL),
                         INCIDENT_RESULT_NONE);
    }
    assert_int_equal(incident_engine_pending(e), 0);
    assert_int_equal(incident_engine_size(e), 2);

    /* A resolved incident gets the entry and stays resolved; a failed
     * run with a signal and no output says so. */
    incident_engine_tick(e, T0 + 31 * MIN);
    assert_int_equal(incident_engine_get(e, 1)->state, INCIDENT_RESOLVED);
    drain(e, o);
    memset(o, 0, sizeof(*o));
    ev = ev_result(f, "1", "-1", "", T0 + 32 * MIN);
    f[4].val = tc_str_c("15");
    ev.message = tc_str_c("action restart-nginx: killed by signal 15 (timed "
                          "out) after 1234 ms");
    incident_engine_event(e, "web-01", &ev);
    drain(e, o);
    assert_int_equal(o->nnotes, 1);
    assert_string_equal(action_detail(o, d, sizeof(d)),
                        "restart-nginx killed by signal 15 (timed out) in "
                        "1.2s (hint 12)");
    assert_int_equal(incident_engine_get(e, 1)->state, INCIDENT_RESOLVED);
    assert_int_equal(incident_engine_get(e, 1)->reopened, 0);
    assert_int_equal(incident_engine_get(e, 1)->count, before.count);

    /* A closed incident is unknown. */
    incident_engine_tick(e, T0 + 200 * MIN);
    drain(e, o);
    memset(o, 0, sizeof(*o));
    ev = ev_result(f, "1", "0", "late", T0 + 201 * MIN);
    incident_engine_event(e, "web-01", &ev);
    assert_int_equal(incident_engine_last_result(e, NULL),
                     INCIDENT_RESULT_UNKNOWN);
    drain(e, o);
    assert_int_equal(o->loglen, 0);

    incident_engine_free(e);
    free(o);
}

struct tl_seen {
    int n, actions;
    char detail[256];
};

static int
on_tl(const struct incident_note *n, void *arg)
{
    struct tl_seen *t = arg;

    t->n++;
    if (strcmp(n->what, "action") == 0) {
        t->actions++;
        snprintf(t->detail, sizeof(t->detail), "%s %s", n->who, n->detail);
    }
    assert_null(strstr(n->detail, "CANARY"));
    return 0;
}

/*
 * Action results through the store: the entry is written in the step,
 * a foreign one is counted and written nowhere, a restart in between
 * changes nothing, and replay rebuilds the same timeline.
 */
static void
test_action_result_store(void **state)
{
    struct replay_fix f = {0};
    struct incidents_replay_stats rs;
    struct diffs ds = {0};
    struct tl_seen t1 = {0}, t2 = {0};
    struct tc_event ev;
    struct tc_kv kv[8];
    char *cmd;

    (void)state;
    snprintf(f.dir, sizeof(f.dir), "/tmp/test_incident.XXXXXX");
    assert_non_null(mkdtemp(f.dir));
    snprintf(f.path, sizeof(f.path), "%s/collector.db", f.dir);
    assert_int_equal(store_open(f.path, 0, &f.st), 0);
    assert_int_equal(incidents_store_open(f.path, 0, &f.is), 0);
    assert_int_equal(
        incidents_store_load(f.is, &cfg, pdef(), &f.e, &f.pe, &f.wm), 0);
    ev = ev_log("oom", TC_SEV_ERROR, T0, 1);
    commit_event_as(&f, "web-01", &ev);
    commit_event_as(&f, "web-02", &ev);
    run_steps(&f, T0 + SEC);
    assert_non_null(incident_engine_get(f.e, 2));
    assert_string_equal(incident_engine_get(f.e, 2)->host, "web-02");

    ev = ev_result(kv, "1", "0", "ok\n", T0 + 2 * SEC);
    commit_event_as(&f, "web-01", &ev);
    ev = ev_result(kv, "2", "0", "CANARY", T0 + 3 * SEC);
    commit_event_as(&f, "web-01", &ev);
    run_steps(&f, T0 + 4 * SEC);
    assert_int_equal(incidents_store_foreign_results(f.is), 1);

    /* A restart, then another result on incident 1. */
    incident_engine_free(f.e);
    problem_engine_free(f.pe);
    assert_int_equal(
        incidents_store_load(f.is, &cfg, pdef(), &f.e, &f.pe, &f.wm), 0);
    ev = ev_result(kv, "1", "2", "failed again", T0 + 5 * SEC);
    commit_event_as(&f, "web-01", &ev);
    run_steps(&f, T0 + 6 * SEC);

    assert_int_equal(incidents_store_timeline(f.is, 1, on_tl, &t1), 0);
    assert_int_equal(t1.actions, 2);
    assert_string_equal(t1.detail, "agent:web-01 restart-nginx exit 2 in 1.2s "
                                   "(hint 12): failed again");
    assert_int_equal(incidents_store_timeline(f.is, 2, on_tl, &t2), 0);
    assert_int_equal(t2.actions, 0);
    assert_int_equal(t2.n, 1); /* opened */
    assert_int_equal(incident_engine_get(f.e, 1)->count, 1);
    assert_int_equal(incident_engine_size(f.e), 2);

    assert_int_equal(
        incidents_store_replay(f.is, &cfg, pdef(), on_diff, &ds, &rs), 0);
    assert_int_equal(ds.n, 0);
    assert_int_equal(rs.incidents, 2);
    assert_int_equal(rs.notes, 4); /* 2 opened, 2 action */
    /* Replay fed the foreign result again and refused it again. */
    assert_int_equal(incidents_store_foreign_results(f.is), 2);

    /* A dropped action entry is a difference. */
    {
        sqlite3 *db;

        assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "DELETE FROM timeline WHERE what ="
                                      " 'action' AND detail LIKE '%again';",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(
        incidents_store_replay(f.is, &cfg, pdef(), on_diff, &ds, &rs), 0);
    assert_int_equal(rs.diffs, 1);
    assert_true(has_diff(&ds, "timeline 1 "));

    incident_engine_free(f.e);
    problem_engine_free(f.pe);
    incidents_store_close(f.is);
    store_close(f.st);
    cmd = tc_xasprintf("rm -rf '%s'", f.dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_flapping),
        cmocka_unit_test(test_replay_store),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_list_pages),
        cmocka_unit_test(test_action_result_engine),
        cmocka_unit_test(test_action_result_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
