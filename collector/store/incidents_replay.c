/*
 * incidents_replay: tocsinctl replay (incidents_store.h): rebuild the
 * incident tables from the recorded steps in a scratch store and diff
 * them with the live ones.
 */
#include "store/incidents_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runbooks/runbooks.h"
#include "store/incidents_int.h"
#include "util.h"

/*
 * Replay (tocsinctl replay). The scratch store is an in-memory SQLite
 * database with the live file's own CREATE statements for the incident
 * tables, written through incidents_write_changes like the live step, so that
 * the comparison is of rows, not of two code paths.
 */
struct replay {
    struct incidents_store *live;
    struct incidents_store *scratch;
    int (*cb)(const struct incidents_diff *d, void *arg);
    void *arg;
    struct incidents_replay_stats *st;
};

static int
scratch_open(struct incidents_store *live, struct incidents_store **out)
{
    struct incidents_store *s = tc_xcalloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    int rc;

    *out = NULL;
    tc_frame_init(&s->frame);
    if (sqlite3_open(":memory:", &s->db) != SQLITE_OK) {
        incidents_store_close(s);
        return -ENOMEM;
    }
    if ((rc = prep(live,
                   "SELECT sql FROM sqlite_master WHERE type = 'table' AND"
                   " name IN ('incidents', 'timeline', 'incident_fps',"
                   " 'problems', 'problem_factors', 'problem_reviews',"
                   " 'problem_links',"
                   " 'problem_candidates', 'problem_timeline',"
                   " 'problem_refs', 'problem_openings', 'problem_hosts',"
                   " 'hints', 'hint_subjects')",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = exec(s, col_text(st, 0))) < 0) {
            snprintf(live->errmsg, sizeof(live->errmsg), "scratch: %.200s",
                     s->errmsg);
            goto out;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : fail(live, rc);
out:
    sqlite3_finalize(st);
    if (rc < 0)
        incidents_store_close(s);
    else
        *out = s;
    return rc;
}

/* Render columns [from, to) of a row (to < 0: all), space-separated. */
static const char *
row_text(sqlite3_stmt *st, int from, int to, char *buf, size_t len)
{
    size_t off = 0;

    if (to < 0)
        to = sqlite3_column_count(st);
    buf[0] = '\0';
    for (int i = from; i < to && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i > from ? " " : "",
                         col_text(st, i));
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return buf;
}

/* Order of two rows by their first nkey columns (integers or text). */
static int
key_cmp(sqlite3_stmt *a, sqlite3_stmt *b, int nkey)
{
    for (int i = 0; i < nkey; i++) {
        int c;

        if (sqlite3_column_type(a, i) == SQLITE_INTEGER &&
            sqlite3_column_type(b, i) == SQLITE_INTEGER) {
            int64_t x = sqlite3_column_int64(a, i);
            int64_t y = sqlite3_column_int64(b, i);
            c = x < y ? -1 : x > y;
        } else {
            c = strcmp(col_text(a, i), col_text(b, i));
        }
        if (c)
            return c;
    }
    return 0;
}

/*
 * Walk the same query on the live and the scratch store, both ordered
 * by their first nkey columns, and report every row only one side has
 * and every column that differs. Column 0 is the incident id when
 * by_incident, which the report names.
 */
static int
diff_table(struct replay *r, const char *table, const char *sql, int nkey,
           int by_incident, uint64_t *compared)
{
    sqlite3_stmt *l = NULL, *x = NULL;
    int rl, rx, rc;
    char key[256], a[1024], b[1024];

    if ((rc = prep(r->live, sql, &l)) < 0)
        goto out;
    if ((rc = prep(r->scratch, sql, &x)) < 0) {
        snprintf(r->live->errmsg, sizeof(r->live->errmsg), "scratch: %.200s",
                 r->scratch->errmsg);
        goto out;
    }
    rl = sqlite3_step(l);
    rx = sqlite3_step(x);
    while (rl == SQLITE_ROW || rx == SQLITE_ROW) {
        struct incidents_diff d = {.table = table};
        int c = rl != SQLITE_ROW   ? 1
                : rx != SQLITE_ROW ? -1
                                   : key_cmp(l, x, nkey);
        sqlite3_stmt *one = c <= 0 ? l : x;

        d.incident_id = by_incident ? sqlite3_column_int64(one, 0) : 0;
        d.key = row_text(one, 0, nkey, key, sizeof(key));
        (*compared)++;
        if (c < 0) {
            d.live = row_text(l, nkey, -1, a, sizeof(a));
            r->st->diffs++;
            if ((rc = r->cb(&d, r->arg)) != 0)
                goto out;
            rl = sqlite3_step(l);
            continue;
        }
        if (c > 0) {
            d.replay = row_text(x, nkey, -1, b, sizeof(b));
            r->st->diffs++;
            if ((rc = r->cb(&d, r->arg)) != 0)
                goto out;
            rx = sqlite3_step(x);
            continue;
        }
        for (int i = nkey; i < sqlite3_column_count(l); i++) {
            if (sqlite3_column_type(l, i) == sqlite3_column_type(x, i) &&
                strcmp(col_text(l, i), col_text(x, i)) == 0)
                continue;
            d.column = sqlite3_column_name(l, i);
            snprintf(a, sizeof(a), "%s", col_text(l, i));
            snprintf(b, sizeof(b), "%s", col_text(x, i));
            d.live = a;
            d.replay = b;
            r->st->diffs++;
            if ((rc = r->cb(&d, r->arg)) != 0)
                goto out;
        }
        rl = sqlite3_step(l);
        rx = sqlite3_step(x);
    }
    if (rl != SQLITE_DONE)
        rc = fail(r->live, rl);
    else if (rx != SQLITE_DONE)
        rc = fail(r->scratch, rx);
    else
        rc = 0;
out:
    sqlite3_finalize(l);
    sqlite3_finalize(x);
    return rc;
}

/* The results replay gave the actions of the last feed, against the
 * recorded ones. */
static int
diff_results(struct replay *r, sqlite3_stmt *ares)
{
    struct incidents_store *s = r->live;
    char key[32], a[32], b[32];
    int rc;

    for (size_t i = 0; i < s->nresults; i++) {
        struct incidents_diff d = {.table = "actions", .column = "result"};

        sqlite3_bind_int64(ares, 1, s->result_ids[i]);
        rc = sqlite3_step(ares);
        if (rc != SQLITE_ROW) {
            sqlite3_reset(ares);
            return fail(s, rc);
        }
        snprintf(a, sizeof(a), "%s", col_text(ares, 1));
        d.incident_id = sqlite3_column_int64(ares, 0);
        sqlite3_reset(ares);
        snprintf(b, sizeof(b), "%lld", (long long)s->results[i]);
        r->st->actions++;
        if (strcmp(a, b) == 0)
            continue;
        snprintf(key, sizeof(key), "%lld", (long long)s->result_ids[i]);
        d.key = key;
        d.live = a;
        d.replay = b;
        r->st->diffs++;
        if ((rc = r->cb(&d, r->arg)) != 0)
            return rc;
    }
    return 0;
}

/*
 * Run both engines over the recorded steps into a fresh scratch store
 * (r->scratch), with the given configuration, inside one read
 * transaction of the live store that the caller ends. With r->cb, the
 * results of the recorded actions are compared as they come.
 */
static int
replay_run(struct replay *r, const struct incident_config *cfg,
           const struct problem_config *pcfg)
{
    struct incidents_store *s = r->live;
    struct incidents_replay_stats *stats = r->st;
    struct incident_engine *e = incident_engine_new(cfg);
    struct problem_engine *pe = problem_engine_new(pcfg);
    struct incidents_watermark wm = {0}, upto, to;
    sqlite3_stmt *steps = NULL, *ares = NULL, *agents = NULL;
    int rc, more, arc = SQLITE_DONE;

    memset(stats, 0, sizeof(*stats));
    s->fed_batches = 0;
    /* The runbook set is an input: none until the first recorded one. */
    runbook_set_unref(s->runbooks);
    s->runbooks = NULL;
    if ((rc = scratch_open(s, &r->scratch)) < 0)
        goto out;
    /*
     * One read transaction: the step log, the inputs and the live rows
     * are of one snapshot while the collector goes on stepping.
     */
    if ((rc = exec(s, "BEGIN")) < 0 || (rc = exec(r->scratch, "BEGIN")) < 0)
        goto out;
    if ((rc = prep(s,
                   "SELECT step, batch_to, action_to, tick FROM engine_steps"
                   " ORDER BY step",
                   &steps)) < 0 ||
        (rc = prep(s, "SELECT incident_id, result FROM actions WHERE id = ?1",
                   &ares)) < 0 ||
        (rc = prep(s,
                   "SELECT host, step FROM problem_hosts WHERE agent = 1"
                   " ORDER BY step, host",
                   &agents)) < 0)
        goto out;
    arc = sqlite3_step(agents);
    while ((rc = sqlite3_step(steps)) == SQLITE_ROW) {
        upto.step = sqlite3_column_int64(steps, 0);
        upto.batch_to = sqlite3_column_int64(steps, 1);
        upto.action_to = sqlite3_column_int64(steps, 2);
        int64_t tick = sqlite3_column_int64(steps, 3);

        /* Agent names a load fed before this step (problems_store.c). */
        while (arc == SQLITE_ROW &&
               sqlite3_column_int64(agents, 1) <= upto.step) {
            problem_engine_host(pe, col_text(agents, 0));
            arc = sqlite3_step(agents);
        }
        if (arc != SQLITE_ROW && arc != SQLITE_DONE) {
            rc = fail(s, arc);
            goto out;
        }

        if ((rc = incidents_feed(s, e, pe, &wm, &upto, UINT32_MAX, &to,
                                 &more)) < 0)
            goto out;
        incident_engine_tick(e, tick);
        if ((rc = incidents_write_changes(r->scratch, e, pe)) != 0 ||
            (rc = problems_step_changes(r->scratch, s, pe, tick, 1)) != 0) {
            snprintf(s->errmsg, sizeof(s->errmsg), "scratch: %.200s",
                     r->scratch->errmsg);
            goto out;
        }
        /* After the problem actions, whose results come last. */
        if (r->cb && (rc = diff_results(r, ares)) != 0)
            goto out;
        stats->steps++;
        stats->last_tick = tick;
        wm = upto;
    }
    if (rc != SQLITE_DONE) {
        rc = fail(s, rc);
        goto out;
    }
    /* The steps' ranges of the log follow each other from 0. */
    stats->batches = s->fed_batches;
    rc = 0;
out:
    sqlite3_finalize(steps);
    sqlite3_finalize(ares);
    sqlite3_finalize(agents);
    incident_engine_free(e);
    problem_engine_free(pe);
    return rc;
}

int
incidents_store_replay(struct incidents_store *s,
                       const struct incident_config *cfg,
                       const struct problem_config *pcfg,
                       int (*cb)(const struct incidents_diff *d, void *arg),
                       void *arg, struct incidents_replay_stats *stats)
{
    struct replay r = {s, NULL, cb, arg, stats};
    int rc;

    if ((rc = replay_run(&r, cfg, pcfg)) != 0)
        goto out;
    if ((rc = diff_table(&r, "incidents",
                         "SELECT " INC_COLS " FROM incidents ORDER BY id", 1, 1,
                         &stats->incidents)) != 0 ||
        (rc = diff_table(&r, "timeline",
                         "SELECT incident_id, row_number() OVER (PARTITION BY"
                         " incident_id ORDER BY id) AS n, ts, what, who,"
                         " detail FROM timeline ORDER BY incident_id, n",
                         2, 1, &stats->notes)) != 0 ||
        (rc = diff_table(&r, "incident_fps",
                         "SELECT fingerprint, attempts, since, history,"
                         " flapping FROM incident_fps ORDER BY fingerprint",
                         1, 0, &stats->fps)) != 0 ||
        (rc = diff_table(&r, "problems", "SELECT * FROM problems ORDER BY id",
                         1, 0, &stats->problems)) != 0 ||
        (rc = diff_table(&r, "problem_factors",
                         "SELECT problem_id, n, category, text FROM"
                         " problem_factors ORDER BY problem_id, n",
                         2, 0, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "problem_reviews",
                         "SELECT problem_id, n, incident_id, field, text FROM"
                         " problem_reviews ORDER BY problem_id, n",
                         2, 0, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "problem_links",
                         "SELECT incident_id, row_number() OVER (PARTITION BY"
                         " incident_id ORDER BY id) AS n, problem_id, ts,"
                         " removed, rule, fields FROM problem_links"
                         " ORDER BY incident_id, n",
                         2, 1, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "problem_candidates",
                         "SELECT problem_id, rank, host, incident_id, score,"
                         " evidence FROM problem_candidates"
                         " ORDER BY problem_id, rank",
                         2, 0, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "problem_timeline",
                         "SELECT problem_id, row_number() OVER (PARTITION BY"
                         " problem_id ORDER BY id) AS n, ts, what, who,"
                         " detail FROM problem_timeline"
                         " ORDER BY problem_id, n",
                         2, 0, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "incident_marks",
                         "SELECT id, problem, inhibited, problem_manual FROM"
                         " incidents WHERE problem != 0 OR inhibited != 0 OR"
                         " problem_manual != 0 ORDER BY id",
                         1, 1, &stats->prows)) != 0 ||
        (rc = diff_table(&r, "hints",
                         "SELECT id, key, agent, incident_id, problem_id,"
                         " source, title, text, action, params, note, issued"
                         " FROM hints ORDER BY id",
                         1, 0, &stats->hints)) != 0)
        goto out;
out:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    incidents_store_close(r.scratch);
    return rc < 0 ? rc : rc != 0 ? -EIO : 0;
}

/* Hand every incident and problem of one side to the sink. */
static int
states_side(struct incidents_store *db, int candidate,
            const struct replay_sink *sink)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(db,
                   "SELECT id, fingerprint, opened_at, problem, inhibited"
                   " FROM incidents ORDER BY id",
                   &st)) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct replay_incident in = {
            .id = sqlite3_column_int64(st, 0),
            .fingerprint = col_text(st, 1),
            .opened_at = sqlite3_column_int64(st, 2),
            .problem = sqlite3_column_int64(st, 3),
            .inhibited = sqlite3_column_int(st, 4) != 0,
        };
        if ((rc = sink->incident(candidate, &in, sink->arg)) != 0)
            goto out;
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = prep(db,
                   "SELECT id, opened_at, root_incident, root_host, state,"
                   " rule, title FROM problems ORDER BY id",
                   &st)) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct replay_problem p = {
            .id = sqlite3_column_int64(st, 0),
            .opened_at = sqlite3_column_int64(st, 1),
            .root_incident = sqlite3_column_int64(st, 2),
            .root_host = col_text(st, 3),
            .state = col_text(st, 4),
            .rule = col_text(st, 5),
            .title = col_text(st, 6),
        };
        if ((rc = sink->problem(candidate, &p, sink->arg)) != 0)
            goto out;
    }
    if (rc == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
fail:
    rc = fail(db, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_replay_states(struct incidents_store *s,
                              const struct incident_config *cfg,
                              const struct problem_config *pcfg,
                              const struct replay_sink *sink,
                              struct incidents_replay_stats *stats)
{
    struct replay r = {s, NULL, NULL, NULL, stats};
    int rc;

    if ((rc = replay_run(&r, cfg, pcfg)) != 0)
        goto out;
    /* The live side inside the same read transaction as the inputs. */
    if ((rc = states_side(s, 0, sink)) != 0)
        goto out;
    if ((rc = states_side(r.scratch, 1, sink)) != 0) {
        if (rc < 0)
            snprintf(s->errmsg, sizeof(s->errmsg), "scratch: %.200s",
                     r.scratch->errmsg);
        goto out;
    }
out:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    incidents_store_close(r.scratch);
    return rc < 0 ? rc : rc != 0 ? -EIO : 0;
}
