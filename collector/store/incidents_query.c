/*
 * incidents_query: the engine state's queries for tocsinctl and the
 * coming API (incidents_store.h): incidents, timelines, actions and
 * their results, silences, response statistics.
 */
#include "store/incidents_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/incidents_int.h"
#include "util.h"

/*
 * The listings below (tocsinctl) never call back inside a read
 * transaction: the callback may write to a pipe nobody reads
 * (tocsinctl incidents list | less), and an open read transaction keeps
 * every checkpoint from completing, so the collector's WAL would grow
 * without bound (issue 9). They copy rows out of a statement that ends
 * (and with it the read transaction: these run in autocommit) before
 * the first callback. Long tables are read in pages of LIST_CHUNK rows
 * keyed on id, each its own snapshot; short ones (silences, stats
 * groups) in one.
 */
#define LIST_CHUNK 256

static void
incident_free_strs(struct incident *in)
{
    free(in->fingerprint);
    free(in->host);
    free(in->rule);
    free(in->kind);
    free(in->service);
}

/*
 * Incidents page by page, newest first: each page is the LIST_CHUNK
 * matching incidents with the next lower ids, read in one snapshot. An
 * incident is listed once, as it was when its page was read; one
 * opened during the listing has a higher id than the first page's, so
 * it is not listed (as in a single snapshot); one whose state changed
 * between pages shows the state of its page, which a filter on state
 * may then include or not.
 */
int
incidents_store_list(struct incidents_store *s,
                     const struct incidents_filter *f,
                     int (*cb)(const struct incident *in,
                               const struct problem_mark *m, void *arg),
                     void *arg)
{
    struct incident *rows = tc_xcalloc(LIST_CHUNK, sizeof(*rows));
    struct problem_mark *marks = tc_xcalloc(LIST_CHUNK, sizeof(*marks));
    sqlite3_stmt *st = NULL;
    int64_t before = f->before > 0 ? f->before : INT64_MAX;
    int by_prio = f->state != NULL && f->by_priority && f->priority == 0;
    int from_prio = f->before > 0 ? f->from_priority : 0;
    const char *sql;
    size_t n = 0;
    int rc;

    /*
     * With a state, "state = ?1" alone: SQLite plans a statement before
     * its parameters are bound, so "(?1 IS NULL OR state = ?1)" cannot
     * use the index incidents_state(state, id) and walks the ids down
     * from the cursor through every incident of another state: a full
     * scan of 100,000 rows for a state nobody is in (the dashboard asks
     * for the acknowledged ones on every refresh, bench/README.md "API").
     */
    /*
     * By priority: on incidents_state_prio(state, priority, id DESC),
     * read in the order shown, so a page reads its own rows and no
     * more, whatever the other priorities hold. A state and a priority
     * together: that index's range, not the state's incidents walked
     * down to find the priority (59 ms for the P1s among 100,000 open
     * incidents, against 0.3 ms: bench/README.md "API").
     */
    if (by_prio)
        sql = "SELECT " INC_COLS ", problem, inhibited, problem_manual"
              " FROM incidents WHERE state = ?1 AND ?2 = 0"
              " AND priority >= ?8 AND (priority > ?8 OR id < ?6)"
              " AND (?3 IS NULL OR host = ?3) AND (?4 = 0 OR id = ?4)"
              " AND (?5 = 0 OR silenced != 0)"
              " ORDER BY priority, id DESC LIMIT ?7";
    else if (f->state != NULL && f->priority != 0)
        sql = "SELECT " INC_COLS ", problem, inhibited, problem_manual"
              " FROM incidents WHERE state = ?1 AND priority = ?2"
              " AND (?3 IS NULL OR host = ?3) AND (?4 = 0 OR id = ?4)"
              " AND (?5 = 0 OR silenced != 0) AND id < ?6"
              " ORDER BY id DESC LIMIT ?7";
    else
        sql = f->state
                  ? "SELECT " INC_COLS ", problem, inhibited, problem_manual"
                    " FROM incidents WHERE"
                    " state = ?1 AND (?2 = 0 OR priority = ?2)"
                    " AND (?3 IS NULL OR host = ?3)"
                    " AND (?4 = 0 OR id = ?4)"
                    " AND (?5 = 0 OR silenced != 0) AND id < ?6"
                    " ORDER BY id DESC LIMIT ?7"
                  : "SELECT " INC_COLS ", problem, inhibited, problem_manual"
                    " FROM incidents WHERE"
                    " (?1 IS NULL OR state = ?1)"
                    " AND (?2 = 0 OR priority = ?2)"
                    " AND (?3 IS NULL OR host = ?3)"
                    " AND (?4 = 0 OR id = ?4)"
                    " AND (?5 = 0 OR silenced != 0) AND id < ?6"
                    " ORDER BY id DESC LIMIT ?7";
    if ((rc = prep(s, sql, &st)) < 0)
        goto out;
    if (f->state)
        sqlite3_bind_text(st, 1, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, f->priority);
    if (f->host)
        sqlite3_bind_text(st, 3, f->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->id);
    sqlite3_bind_int(st, 5, f->silenced);
    sqlite3_bind_int(st, 7, LIST_CHUNK);
    for (;;) {
        sqlite3_bind_int64(st, 6, before);
        if (by_prio)
            sqlite3_bind_int(st, 8, from_prio);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct problem_mark *m = &marks[n];
            struct incident *in = &rows[n++];

            incidents_row_incident(st, in);
            m->incident_id = in->id;
            m->problem_id = sqlite3_column_int64(st, INC_NCOLS);
            m->inhibited = sqlite3_column_int(st, INC_NCOLS + 1);
            m->manual = sqlite3_column_int(st, INC_NCOLS + 2);
            in->fingerprint = tc_xstrdup(in->fingerprint);
            in->host = tc_xstrdup(in->host);
            in->rule = tc_xstrdup(in->rule);
            in->kind = tc_xstrdup(in->kind);
            in->service = tc_xstrdup(in->service);
        }
        /* Ends the statement's read transaction. */
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            rc = fail(s, rc);
            goto out;
        }
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = cb(&rows[i], &marks[i], arg);
        if (rc != 0 || n < LIST_CHUNK)
            goto out;
        before = rows[n - 1].id;
        if (by_prio)
            from_prio = rows[n - 1].priority;
        for (size_t i = 0; i < n; i++)
            incident_free_strs(&rows[i]);
        n = 0;
    }
out:
    for (size_t i = 0; i < n; i++)
        incident_free_strs(&rows[i]);
    free(rows);
    free(marks);
    sqlite3_finalize(st);
    return rc;
}

/*
 * incidents_store.h: one COUNT per (state, priority) and per problem
 * state, each an index range that SQLite counts without reading a row
 * (a GROUP BY over the same rows sorts them: 35 ms for 100,000 open
 * incidents against 10 ms for the five counts, bench/README.md "API").
 * One read transaction, so the figures are of one moment.
 */
int
incidents_store_summary(struct incidents_store *s,
                        struct incidents_summary *out)
{
    static const char *const inc_states[] = {"open", "acknowledged"};
    static const char *const prob_states[] = {"open", "investigating",
                                              "known_error"};
    sqlite3_stmt *inc = NULL, *prob = NULL;
    int rc, begun = 0;

    memset(out, 0, sizeof(*out));
    if ((rc = prep(s,
                   "SELECT count(*) FROM incidents"
                   " WHERE state = ?1 AND priority = ?2",
                   &inc)) < 0 ||
        (rc = prep(s, "SELECT count(*) FROM problems WHERE state = ?1",
                   &prob)) < 0)
        goto out;
    if ((rc = exec(s, "BEGIN")) < 0)
        goto out;
    begun = 1;
    for (size_t k = 0; k < 2; k++)
        for (int p = 1; p <= 5; p++) {
            sqlite3_bind_text(inc, 1, inc_states[k], -1, SQLITE_STATIC);
            sqlite3_bind_int(inc, 2, p);
            if ((rc = sqlite3_step(inc)) != SQLITE_ROW) {
                rc = fail(s, rc);
                goto out;
            }
            (k == 0 ? out->open : out->acked)[p] =
                (uint64_t)sqlite3_column_int64(inc, 0);
            sqlite3_reset(inc);
        }
    for (size_t k = 0; k < 3; k++) {
        sqlite3_bind_text(prob, 1, prob_states[k], -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(prob)) != SQLITE_ROW) {
            rc = fail(s, rc);
            goto out;
        }
        out->problems[k] = (uint64_t)sqlite3_column_int64(prob, 0);
        sqlite3_reset(prob);
    }
    rc = 0;
out:
    sqlite3_finalize(inc);
    sqlite3_finalize(prob);
    /* A read: nothing to keep, and the snapshot must not outlive us. */
    if (begun)
        (void)exec(s, "COMMIT");
    return rc;
}

/* A timeline entry copied out of its statement. */
struct note_copy {
    int64_t id; /* timeline row id, for the next page */
    int64_t ts;
    char *what, *who, *detail; /* owned */
};

/* In pages of LIST_CHUNK entries by row id (entries are only added). */
int
incidents_store_timeline(struct incidents_store *s, int64_t id,
                         int (*cb)(const struct incident_note *n, void *arg),
                         void *arg)
{
    struct note_copy *rows = tc_xcalloc(LIST_CHUNK, sizeof(*rows));
    sqlite3_stmt *st = NULL;
    int64_t after = 0;
    size_t n = 0;
    int rc;

    if ((rc = prep(s,
                   "SELECT id, ts, what, who, detail FROM timeline"
                   " WHERE incident_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 3, LIST_CHUNK);
    for (;;) {
        sqlite3_bind_int64(st, 2, after);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct note_copy *c = &rows[n++];

            c->id = sqlite3_column_int64(st, 0);
            c->ts = sqlite3_column_int64(st, 1);
            c->what = tc_xstrdup(col_text(st, 2));
            c->who = tc_xstrdup(col_text(st, 3));
            c->detail = tc_xstrdup(col_text(st, 4));
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            rc = fail(s, rc);
            goto out;
        }
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct incident_note note = {id, rows[i].ts, rows[i].what,
                                         rows[i].who, rows[i].detail};
            rc = cb(&note, arg);
        }
        if (rc != 0 || n < LIST_CHUNK)
            goto out;
        after = rows[n - 1].id;
        for (size_t i = 0; i < n; i++) {
            free(rows[i].what);
            free(rows[i].who);
            free(rows[i].detail);
        }
        n = 0;
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(rows[i].what);
        free(rows[i].who);
        free(rows[i].detail);
    }
    free(rows);
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_action_add(struct incidents_store *s,
                           const struct incident_action *a, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "INSERT INTO actions(ts, user, verb, incident_id, text)"
                   " VALUES(?1,?2,?3,?4,?5)",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, a->ts);
    sqlite3_bind_text(st, 2, a->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, incident_verb_name(a->verb), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, a->incident_id);
    if (a->text)
        sqlite3_bind_text(st, 5, a->text, -1, SQLITE_STATIC);
    rc = step_reset(s, st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_action_result(struct incidents_store *s, int64_t id, int *done,
                              int *result)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *done = 0;
    *result = 0;
    if ((rc = prep(s, "SELECT result FROM actions WHERE id = ?1", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *done = sqlite3_column_type(st, 0) != SQLITE_NULL;
        *result = sqlite3_column_int(st, 0);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Append an action row (verb, target id) inside the caller's txn. */
static int
action_insert(struct incidents_store *s, int64_t ts, const char *user,
              const char *verb, int64_t target, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "INSERT INTO actions(ts, user, verb, incident_id)"
                   " VALUES(?1,?2,?3,?4)",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, ts);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, verb, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, target);
    rc = step_reset(s, st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_silence_add(struct incidents_store *s,
                            const struct incident_silence *sil, int64_t now,
                            const char *user, const char *comment, int64_t *id,
                            int64_t *action_id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        return rc;
    if ((rc = prep(s,
                   "INSERT INTO silences(created, starts_at, ends_at, user,"
                   " comment, matchers) VALUES(?1,?2,?3,?4,?5,?6)",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, sil->start);
    sqlite3_bind_int64(st, 3, sil->end);
    sqlite3_bind_text(st, 4, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, comment ? comment : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, sil->matchers, -1, SQLITE_STATIC);
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    *id = sqlite3_last_insert_rowid(s->db);
    if ((rc = action_insert(s, now, user, "silence", *id, action_id)) < 0)
        goto out;
    if ((rc = prep(s, "UPDATE silences SET action_id = ?2 WHERE id = ?1",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, *id);
    sqlite3_bind_int64(st, 2, *action_id);
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    rc = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rc < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
incidents_store_silence_expire(struct incidents_store *s, int64_t id,
                               int64_t now, const char *user,
                               int64_t *action_id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        return rc;
    if ((rc = prep(s,
                   "SELECT expire_action != 0 OR ends_at <= ?2 FROM silences"
                   " WHERE id = ?1",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE ? -ENOENT : fail(s, rc);
        goto out;
    }
    if (sqlite3_column_int(st, 0)) {
        rc = -EALREADY;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = action_insert(s, now, user, "expire", id, action_id)) < 0)
        goto out;
    if ((rc = prep(s,
                   "UPDATE silences SET expired_at = ?2, expire_action = ?3"
                   " WHERE id = ?1",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, *action_id);
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    rc = exec(s, "COMMIT");
out:
    sqlite3_finalize(st);
    if (rc < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Silences are few (people add them): one snapshot, copied whole. */
int
incidents_store_silences(struct incidents_store *s, int all, int64_t now,
                         int (*cb)(const struct incidents_silence_row *r,
                                   void *arg),
                         void *arg)
{
    struct incidents_silence_row *rows = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT id, created, starts_at, ends_at, expired_at, user,"
                   " comment, matchers FROM silences WHERE ?1 OR"
                   " (ends_at > ?2 AND (expired_at = 0 OR expired_at > ?2))"
                   " ORDER BY id DESC",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int(st, 1, all);
    sqlite3_bind_int64(st, 2, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = tc_xreallocarray(rows, cap, sizeof(*rows));
        }
        rows[n++] = (struct incidents_silence_row){
            sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
            sqlite3_column_int64(st, 4), tc_xstrdup(col_text(st, 5)),
            tc_xstrdup(col_text(st, 6)), tc_xstrdup(col_text(st, 7))};
    }
    sqlite3_finalize(st);
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(&rows[i], arg);
    for (size_t i = 0; i < n; i++) {
        free((char *)rows[i].user);
        free((char *)rows[i].comment);
        free((char *)rows[i].matchers);
    }
    free(rows);
    return rc;
}

/* The group key of an incident row i for incidents_store_stats. */
#define STATS_KEY(i)                                                           \
    "CASE ?2 WHEN 'priority' THEN 'P' || " i ".priority WHEN 'host' THEN " i   \
    ".host WHEN 'rule' THEN " i ".rule WHEN 'service' THEN CASE " i            \
    ".service WHEN '' THEN '(none)' ELSE " i ".service END ELSE 'all' END"

/* The means of a group's episodes into its row. */
static void
stats_row_set(struct incidents_stats_row *r, const struct incident_metrics *m)
{
    r->n = m->incidents;
    r->openings = m->openings;
    r->acked = m->acked;
    r->mtta_ns = incident_metrics_mtta(m);
    r->restored = m->restored;
    r->mttr_ns = incident_metrics_mttr(m);
}

int
incidents_store_stats(struct incidents_store *s, int64_t since, const char *by,
                      int (*cb)(const struct incidents_stats_row *r, void *arg),
                      void *arg)
{
    struct incidents_stats_row *rows = NULL;
    struct incident_metrics m;
    size_t n = 0, cap = 0, j = 0;
    sqlite3_stmt *st = NULL;
    int rc;

    /* One read transaction: episodes and gaps of the same snapshot. */
    if ((rc = exec(s, "BEGIN")) < 0)
        return rc;
    /*
     * MTTA and MTTR from the timeline, never from acked_at and
     * resolved_at, which a reopen clears: every entry that counts, of
     * the incidents with an opening since, grouped, each incident's in
     * timeline order (incident_metrics_add).
     */
    if ((rc = prep(s,
                   "SELECT " STATS_KEY(
                       "i") " AS k, t.incident_id, t.ts, t.what FROM timeline"
                            " t JOIN incidents i ON i.id = t.incident_id"
                            " WHERE t.what IN ('opened', 'reopened',"
                            " 'acknowledged', 'resolved', 'closed') AND"
                            " t.incident_id IN (SELECT incident_id FROM"
                            " timeline WHERE what IN ('opened', 'reopened')"
                            " AND ts >= ?1) ORDER BY k, t.incident_id, t.id",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, since);
    if (by)
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
    /* Rows are copied whole and called back once the transaction ended. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = col_text(st, 0);
        struct incident_note note = {sqlite3_column_int64(st, 1),
                                     sqlite3_column_int64(st, 2),
                                     col_text(st, 3), "", ""};

        if (n == 0 || strcmp(rows[n - 1].key, k) != 0) {
            if (n > 0)
                stats_row_set(&rows[n - 1], &m);
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                rows = tc_xreallocarray(rows, cap, sizeof(*rows));
            }
            memset(&rows[n], 0, sizeof(rows[n]));
            rows[n].key = tc_xstrdup(k);
            rows[n].mtbf_ns = -1;
            n++;
            incident_metrics_init(&m, since);
        }
        incident_metrics_add(&m, &note);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    if (n > 0)
        stats_row_set(&rows[n - 1], &m);
    sqlite3_finalize(st);
    /* MTBF: gaps between consecutive openings of one fingerprint. */
    if ((rc = prep(s,
                   "WITH o AS (SELECT " STATS_KEY(
                       "i") " AS k, i.fingerprint AS fp, t.ts AS ts FROM"
                            " timeline t JOIN incidents i ON i.id ="
                            " t.incident_id WHERE t.what IN ('opened',"
                            " 'reopened') AND t.ts >= ?1),"
                            " d AS (SELECT k, ts - lag(ts) OVER (PARTITION BY"
                            " fp ORDER BY ts) AS gap FROM o)"
                            " SELECT k, count(gap), avg(gap) FROM d GROUP BY k"
                            " ORDER BY k",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, since);
    if (by)
        sqlite3_bind_text(st, 2, by, -1, SQLITE_STATIC);
    /* Both in key order (BINARY is strcmp's): merge. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = col_text(st, 0);

        while (j < n && strcmp(rows[j].key, k) < 0)
            j++;
        if (j == n || strcmp(rows[j].key, k) != 0)
            continue;
        rows[j].gaps = (uint64_t)sqlite3_column_int64(st, 1);
        rows[j].mtbf_ns = sqlite3_column_type(st, 2) == SQLITE_NULL
                              ? -1
                              : (int64_t)sqlite3_column_double(st, 2);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    rc = 0;
    goto out;
step_fail:
    rc = fail(s, rc);
out:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(&rows[i], arg);
    for (size_t i = 0; i < n; i++)
        free((char *)rows[i].key);
    free(rows);
    return rc;
}
