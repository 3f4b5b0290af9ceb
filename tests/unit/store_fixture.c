/*
 * store_fixture: helpers shared by the store-backed engine tests
 * (store_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "buf.h"
#include "store_fixture.h"
#include "testutil.h"
#include "util.h"

const struct incident_config cfg = {
    .reopen_window_ns = 60 * MIN,
    .resolve_after_ns = 5 * MIN,
    .max_attempts = 3,
};

struct problem_config pcfg;

const char *const hosts[5] = {"web-01", "web-02", "web-03", "cache-01",
                              "db-01"};

void
fix_open(struct fix *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/%s.db", tu_tmpdir, name);
    assert_int_equal(store_open(f->path, 0, &f->log), 0);
    assert_int_equal(incidents_store_open_engine(f->log, &f->is), 0);
    assert_int_equal(
        incidents_store_load(f->is, &cfg, &pcfg, &f->e, &f->pe, &f->wm), 0);
}

void
fix_close(struct fix *f)
{
    incident_engine_free(f->e);
    problem_engine_free(f->pe);
    incidents_store_close(f->is);
    store_close(f->log);
    f->e = NULL;
    f->pe = NULL;
    f->is = NULL;
    f->log = NULL;
}

void
reload(struct fix *f)
{
    incident_engine_free(f->e);
    problem_engine_free(f->pe);
    assert_int_equal(
        incidents_store_load(f->is, &cfg, &pcfg, &f->e, &f->pe, &f->wm), 0);
}

void
commit(struct fix *f, int h, const char *rule, enum tc_severity sev,
       const char *upstream, int64_t ts)
{
    static const uint8_t one = 0x91; /* msgpack: array of 1 */
    struct store_batch b = {0};
    struct store_txn t = {0};
    struct tc_kv kv;
    struct tc_event ev;
    struct tc_buf blob;

    memset(&ev, 0, sizeof(ev));
    ev.kind = tc_str_c("log");
    ev.rule = tc_str_c(rule);
    ev.sev = sev;
    ev.state = -1;
    ev.ts = ts;
    ev.count = 1;
    ev.seq = ++f->seq[h];
    ev.host = tc_str_c(hosts[h]);
    ev.source = tc_str_c("/var/log/app.log");
    ev.message = tc_str_c("msg");
    ev.fingerprint = tc_str_c("");
    if (upstream) {
        kv.key = tc_str_c("upstream");
        kv.val = tc_str_c(upstream);
        ev.fields = &kv;
        ev.nfields = 1;
    }
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

void
run(struct fix *f, int64_t now)
{
    int more;

    do {
        assert_int_equal(
            incidents_store_step(f->is, f->e, f->pe, &f->wm, now, 3, &more), 0);
    } while (more);
}

void
pact(struct fix *f, enum problem_verb v, int64_t pid, const char *key,
     const char *text, int64_t ts)
{
    struct problem_action a = {.ts = ts,
                               .user = "alice",
                               .verb = v,
                               .problem_id = pid,
                               .key = key,
                               .text = text,
                               .text2 = "restart it"};
    int64_t id;

    assert_int_equal(incidents_store_problem_action_add(f->is, &a, &id), 0);
}

int64_t
sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void
sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

int
count_diff(const struct incidents_diff *d, void *arg)
{
    (void)d;
    (*(int *)arg)++;
    return 0;
}

/* Problems resolve and incidents close in the quiet time at the end. */
void
fix_scenario(struct fix *f, int reload_every)
{
    int64_t t = T0;
    int step = 0;

#define STEP(now)                                                              \
    do {                                                                       \
        run(f, (now));                                                         \
        if (reload_every && ++step % reload_every == 0)                        \
            reload(f);                                                         \
    } while (0)

    commit(f, 3, "cache-oom", TC_SEV_CRITICAL, NULL, t);
    STEP(t + SEC);
    commit(f, 0, "upstream-down", TC_SEV_ERROR, "cache-01:6379", t + 2 * SEC);
    STEP(t + 2 * SEC);
    commit(f, 1, "upstream-down", TC_SEV_ERROR, "cache-01", t + 3 * SEC);
    commit(f, 2, "upstream-down", TC_SEV_ERROR, "cache-01.example.net",
           t + 4 * SEC);
    STEP(t + 5 * SEC);
    commit(f, 4, "slow-query", TC_SEV_WARNING, NULL, t + 6 * SEC);
    STEP(t + 6 * SEC);
    for (int h = 0; h < 3; h++) {
        commit(f, h, "tls-expired", TC_SEV_WARNING, NULL, t + (10 + h) * SEC);
        STEP(t + (10 + h) * SEC);
    }
    pact(f, PROBLEM_V_INVESTIGATE, 1, NULL, NULL, t + 20 * SEC);
    pact(f, PROBLEM_V_NOTE, 1, NULL, "looking at the cache", t + 21 * SEC);
    pact(f, PROBLEM_V_RCA, 1, "why1", "the cache ran out of memory",
         t + 22 * SEC);
    pact(f, PROBLEM_V_RCA, 1, "technology", "no memory limit", t + 23 * SEC);
    {
        /* A review of the cache's incident (1), on problem 1. */
        struct problem_action a = {.ts = t + 23 * SEC,
                                   .user = "alice",
                                   .verb = PROBLEM_V_REVIEW,
                                   .problem_id = 1,
                                   .incident_id = 1,
                                   .key = "lessons",
                                   .text = "set maxmemory everywhere"};
        int64_t id;

        assert_int_equal(incidents_store_problem_action_add(f->is, &a, &id), 0);
    }
    pact(f, PROBLEM_V_KNOWN_ERROR, 1, NULL, "maxmemory unset", t + 24 * SEC);
    pact(f, PROBLEM_V_CLOSE, 2, NULL, NULL, t + 25 * SEC); /* -EBUSY */
    STEP(t + 25 * SEC);
    /* Quiet: log incidents resolve, then problems, then time passes. */
    for (int i = 1; i <= 12; i++)
        STEP(t + i * 5 * MIN);
    /* A recurrence on one web server after the quiet. */
    commit(f, 0, "upstream-down", TC_SEV_ERROR, "cache-01", t + 61 * MIN);
    STEP(t + 61 * MIN);
    STEP(t + 70 * MIN);
#undef STEP
}

/* One query's rows as text: columns joined by '|', then "--". */
static void
dump_query(struct tc_buf *b, sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);

            tc_buf_append(b, v ? v : "NULL", strlen(v ? v : "NULL"));
            tc_buf_append(b, "|", 1);
        }
        tc_buf_append(b, "\n", 1);
    }
    sqlite3_finalize(st);
    tc_buf_append(b, "--\n", 3);
}

char *
fix_dump(const char *path, const char *const *extra, size_t nextra)
{
    static const char *const q[] = {
        "SELECT * FROM incidents ORDER BY id",
        "SELECT * FROM timeline ORDER BY id",
        "SELECT * FROM problems ORDER BY id",
        "SELECT * FROM problem_factors ORDER BY problem_id, n",
        "SELECT * FROM problem_reviews ORDER BY problem_id, n",
        "SELECT * FROM problem_links ORDER BY id",
        "SELECT * FROM problem_candidates ORDER BY problem_id, rank",
        "SELECT * FROM problem_timeline ORDER BY id",
        "SELECT * FROM problem_refs ORDER BY id",
        "SELECT * FROM problem_openings ORDER BY id",
        "SELECT id, result FROM actions ORDER BY id",
    };
    struct tc_buf b;
    sqlite3 *db;
    char *out;

    tc_buf_init(&b, 1u << 24);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        dump_query(&b, db, q[i]);
    for (size_t i = 0; i < nextra; i++)
        dump_query(&b, db, extra[i]);
    sqlite3_close(db);
    tc_buf_append(&b, "", 1);
    out = tc_xstrdup((const char *)tc_buf_head(&b));
    tc_buf_close(&b);
    return out;
}
