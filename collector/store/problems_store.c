/*
 * problems_store: SQLite side of the problem engine (docs/internals/
 * problems.md, "Outputs" and "Load"; store.md): schema versions 7 and
 * 8, the load at start-up, and the problem half of the engine step, written
 * in the incident step's transaction. Every value is a bound parameter:
 * titles, fields and values come from log lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/problem.h"
#include "store/incidents_int.h"
#include "util.h"

/*
 * Version 7: problems (issue 11). The problem engine's persisted state:
 * problems with their known error and RCA (5 Whys in columns, factors
 * in their own table), links both ways (the incident's problem and
 * inhibited mark are columns of incidents; problem_links is the record
 * of every link made or undone, with its rule and matched fields, for
 * explain), the ranked candidates, the timeline, the references and
 * trend openings the engine needs at load, and the known hosts: every
 * batch's host (agent 0: replay learns it from the same batch), and
 * every agent name the agents table had at a load (agent 1, with the
 * first step written after that load: replay feeds it before that
 * step's batches), so that a restart and replay know the same hosts as
 * the live engine did at the same point. Problem actions share the
 * actions table (verb "problem-<verb>").
 */
const char problems_schema_v7[] =
    "CREATE TABLE problems("
    " id INTEGER PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " rule TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " title TEXT NOT NULL,"
    " opened_at INTEGER NOT NULL,"
    " investigating_at INTEGER NOT NULL DEFAULT 0,"
    " known_error_at INTEGER NOT NULL DEFAULT 0,"
    " resolved_at INTEGER NOT NULL DEFAULT 0,"
    " closed_at INTEGER NOT NULL DEFAULT 0,"
    " quiet_since INTEGER NOT NULL DEFAULT 0,"
    " root_incident INTEGER NOT NULL DEFAULT 0,"
    " root_host TEXT NOT NULL DEFAULT '',"
    " root_cause TEXT NOT NULL DEFAULT '',"
    " workaround TEXT NOT NULL DEFAULT '',"
    " why1 TEXT NOT NULL DEFAULT '',"
    " why2 TEXT NOT NULL DEFAULT '',"
    " why3 TEXT NOT NULL DEFAULT '',"
    " why4 TEXT NOT NULL DEFAULT '',"
    " why5 TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX problems_state ON problems(state, id);"
    "CREATE TABLE problem_factors("
    " problem_id INTEGER NOT NULL,"
    " n INTEGER NOT NULL,"
    " category TEXT NOT NULL,"
    " text TEXT NOT NULL,"
    " PRIMARY KEY(problem_id, n));"
    "CREATE TABLE problem_links("
    " id INTEGER PRIMARY KEY,"
    " incident_id INTEGER NOT NULL,"
    " problem_id INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " removed INTEGER NOT NULL,"
    " rule TEXT NOT NULL,"
    " fields TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX problem_links_problem ON problem_links(problem_id, id);"
    "CREATE INDEX problem_links_incident ON problem_links(incident_id, id);"
    "CREATE TABLE problem_candidates("
    " problem_id INTEGER NOT NULL,"
    " rank INTEGER NOT NULL,"
    " host TEXT NOT NULL,"
    " incident_id INTEGER NOT NULL,"
    " score INTEGER NOT NULL,"
    " evidence TEXT NOT NULL,"
    " PRIMARY KEY(problem_id, rank));"
    "CREATE TABLE problem_timeline("
    " id INTEGER PRIMARY KEY,"
    " problem_id INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " what TEXT NOT NULL,"
    " who TEXT NOT NULL,"
    " detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX problem_timeline_problem ON problem_timeline(problem_id,"
    " id);"
    "CREATE TABLE problem_refs("
    " id INTEGER PRIMARY KEY,"
    " incident_id INTEGER NOT NULL,"
    " host TEXT NOT NULL,"
    " field TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " ts INTEGER NOT NULL);"
    "CREATE INDEX problem_refs_incident ON problem_refs(incident_id, id);"
    "CREATE TABLE problem_openings("
    " id INTEGER PRIMARY KEY,"
    " cls TEXT NOT NULL,"
    " incident_id INTEGER NOT NULL,"
    " ts INTEGER NOT NULL);"
    "CREATE TABLE problem_hosts(host TEXT PRIMARY KEY,"
    " step INTEGER NOT NULL DEFAULT 0,"
    " agent INTEGER NOT NULL DEFAULT 0);"
    "ALTER TABLE incidents ADD COLUMN problem INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE incidents ADD COLUMN inhibited INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE incidents ADD COLUMN problem_manual INTEGER NOT NULL"
    " DEFAULT 0;"
    "ALTER TABLE actions ADD COLUMN problem_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE actions ADD COLUMN key TEXT;"
    "ALTER TABLE actions ADD COLUMN text2 TEXT;"
    /* Stores from before: their hosts, as a replay from the start
     * would learn them. */
    "INSERT OR IGNORE INTO problem_hosts(host) SELECT DISTINCT host FROM"
    " batches;";

/*
 * Version 8: post-incident reviews, recorded on the problem the
 * reviewed incident handed over to (struct problem_review); in the
 * order first recorded, like the factors. Indexes to prune trend
 * openings.
 */
const char problems_schema_v8[] =
    "CREATE TABLE problem_reviews("
    " problem_id INTEGER NOT NULL,"
    " n INTEGER NOT NULL,"
    " incident_id INTEGER NOT NULL,"
    " field TEXT NOT NULL,"
    " text TEXT NOT NULL,"
    " PRIMARY KEY(problem_id, n));"
    /* Pruning trend openings (problems_step_changes) reads by time and
     * by class. */
    "CREATE INDEX problem_openings_ts ON problem_openings(ts);"
    "CREATE INDEX problem_openings_cls ON problem_openings(cls, ts);";

void
problems_feed_reset(struct incidents_store *s)
{
    for (size_t i = 0; i < s->npacts; i++) {
        free(s->pacts[i].user);
        free(s->pacts[i].key);
        free(s->pacts[i].text);
        free(s->pacts[i].text2);
    }
    s->npacts = 0;
    for (size_t i = 0; i < s->nhosts; i++)
        free(s->hosts[i]);
    s->nhosts = 0;
}

static void
push_host(char ***v, size_t *n, size_t *cap, const char *host)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = tc_xreallocarray(*v, *cap, sizeof(**v));
    }
    (*v)[(*n)++] = tc_xstrdup(host);
}

void
problems_agent_hosts_reset(struct incidents_store *s)
{
    for (size_t i = 0; i < s->nahosts; i++)
        free(s->ahosts[i]);
    s->nahosts = 0;
}

/* ---- load --------------------------------------------------------------- */

/* The problems columns, in row_problem's order. */
#define PROB_COLS                                                              \
    "id, state, rule, key, title, opened_at, investigating_at,"                \
    " known_error_at, resolved_at, closed_at, quiet_since, root_incident,"     \
    " root_host, root_cause, workaround, why1, why2, why3, why4, why5"

static void
row_problem(sqlite3_stmt *st, struct problem *p)
{
    enum problem_state state = PROBLEM_OPEN;

    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(st, 0);
    (void)problem_state_parse(col_text(st, 1), &state);
    p->state = state;
    p->rule = (char *)col_text(st, 2);
    p->key = (char *)col_text(st, 3);
    p->title = (char *)col_text(st, 4);
    p->opened_at = sqlite3_column_int64(st, 5);
    p->investigating_at = sqlite3_column_int64(st, 6);
    p->known_error_at = sqlite3_column_int64(st, 7);
    p->resolved_at = sqlite3_column_int64(st, 8);
    p->closed_at = sqlite3_column_int64(st, 9);
    p->quiet_since = sqlite3_column_int64(st, 10);
    p->root_incident = sqlite3_column_int64(st, 11);
    p->root_host = (char *)col_text(st, 12);
    p->root_cause = (char *)col_text(st, 13);
    p->workaround = (char *)col_text(st, 14);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        p->whys[i] = (char *)col_text(st, 15 + i);
}

/* The statements that read a problem's lists: factors and reviews. */
struct plists {
    sqlite3_stmt *fst, *rst;
};

static int
plists_prep(struct incidents_store *s, struct plists *x)
{
    int rc;

    if ((rc = prep(s,
                   "SELECT category, text FROM problem_factors"
                   " WHERE problem_id = ?1 ORDER BY n",
                   &x->fst)) < 0)
        return rc;
    return prep(s,
                "SELECT incident_id, field, text FROM problem_reviews"
                " WHERE problem_id = ?1 ORDER BY n",
                &x->rst);
}

static void
plists_finalize(struct plists *x)
{
    sqlite3_finalize(x->fst);
    sqlite3_finalize(x->rst);
    x->fst = x->rst = NULL;
}

/* Free what load_lists put into p. */
static void
lists_free(struct problem *p)
{
    for (size_t i = 0; i < p->nfactors; i++)
        free(p->factors[i].text);
    free(p->factors);
    for (size_t i = 0; i < p->nreviews; i++) {
        free(p->reviews[i].field);
        free(p->reviews[i].text);
    }
    free(p->reviews);
    p->factors = NULL;
    p->nfactors = 0;
    p->reviews = NULL;
    p->nreviews = 0;
}

/* The factors and review entries of p (by p->id), into arrays that
 * lists_free frees. */
static int
load_lists(struct incidents_store *s, struct plists *x, struct problem *p)
{
    size_t cap = 0;
    int rc;

    p->factors = NULL;
    p->nfactors = 0;
    p->reviews = NULL;
    p->nreviews = 0;
    sqlite3_bind_int64(x->fst, 1, p->id);
    while ((rc = sqlite3_step(x->fst)) == SQLITE_ROW) {
        enum problem_factor_cat c = PROBLEM_F_TECHNOLOGY;

        if (p->nfactors == cap) {
            cap = cap ? cap * 2 : 4;
            p->factors = tc_xreallocarray(p->factors, cap, sizeof(*p->factors));
        }
        (void)problem_factor_parse(col_text(x->fst, 0), &c);
        p->factors[p->nfactors].category = c;
        p->factors[p->nfactors++].text = tc_xstrdup(col_text(x->fst, 1));
    }
    sqlite3_reset(x->fst);
    if (rc != SQLITE_DONE)
        return fail(s, rc);
    cap = 0;
    sqlite3_bind_int64(x->rst, 1, p->id);
    while ((rc = sqlite3_step(x->rst)) == SQLITE_ROW) {
        struct problem_review *r;

        if (p->nreviews == cap) {
            cap = cap ? cap * 2 : 4;
            p->reviews = tc_xreallocarray(p->reviews, cap, sizeof(*p->reviews));
        }
        r = &p->reviews[p->nreviews++];
        r->incident_id = sqlite3_column_int64(x->rst, 0);
        r->field = tc_xstrdup(col_text(x->rst, 1));
        r->text = tc_xstrdup(col_text(x->rst, 2));
    }
    sqlite3_reset(x->rst);
    return rc == SQLITE_DONE ? 0 : fail(s, rc);
}

/* What the engine holds: problems not closed, and the incidents not
 * closed or of such a problem. */
#define LOADED_INCIDENTS                                                       \
    "SELECT id FROM incidents WHERE state != 'closed' OR problem IN"           \
    " (SELECT id FROM problems WHERE state != 'closed')"

int
problems_load(struct incidents_store *s, struct problem_engine *pe)
{
    sqlite3_stmt *st = NULL;
    struct plists x = {0};
    int rc;

    if ((rc = prep(s, "SELECT host FROM problem_hosts ORDER BY host", &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        problem_engine_host(pe, col_text(st, 0));
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    /*
     * The agents the engine has not met in a batch yet: known from now
     * on, recorded with the next step written (problems_step_changes)
     * so that replay knows them from the same point.
     */
    problems_agent_hosts_reset(s);
    if ((rc = prep(s,
                   "SELECT name FROM agents WHERE name NOT IN (SELECT host"
                   " FROM problem_hosts) ORDER BY name",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        problem_engine_host(pe, col_text(st, 0));
        push_host(&s->ahosts, &s->nahosts, &s->capahosts, col_text(st, 0));
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = plists_prep(s, &x)) < 0 ||
        (rc = prep(s,
                   "SELECT " PROB_COLS " FROM problems WHERE state != 'closed'"
                   " ORDER BY id",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem p;

        row_problem(st, &p);
        if ((rc = load_lists(s, &x, &p)) < 0)
            goto out;
        problem_engine_load(pe, &p);
        lists_free(&p);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "SELECT " INC_COLS ", problem, inhibited, problem_manual"
                   " FROM incidents WHERE id IN (" LOADED_INCIDENTS ")"
                   " ORDER BY id",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident in;
        struct problem_mark m;

        incidents_row_incident(st, &in);
        m.incident_id = in.id;
        m.problem_id = sqlite3_column_int64(st, INC_NCOLS);
        m.inhibited = sqlite3_column_int(st, INC_NCOLS + 1);
        m.manual = sqlite3_column_int(st, INC_NCOLS + 2);
        problem_engine_load_incident(pe, &in, &m);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "SELECT incident_id, host, field, value, ts FROM"
                   " problem_refs WHERE incident_id IN (" LOADED_INCIDENTS
                   ") ORDER BY id",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem_ref r = {sqlite3_column_int64(st, 0), col_text(st, 1),
                                col_text(st, 2), col_text(st, 3),
                                sqlite3_column_int64(st, 4)};
        problem_engine_load_ref(pe, &r);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    /* The engine drops the openings past its period at its next tick
     * (and the step writer then drops them from the table). */
    if ((rc = prep(s,
                   "SELECT cls, incident_id, ts FROM problem_openings"
                   " ORDER BY id",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem_opening o = {col_text(st, 0),
                                    sqlite3_column_int64(st, 1),
                                    sqlite3_column_int64(st, 2)};
        problem_engine_load_opening(pe, &o);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = prep(s, "SELECT coalesce(max(id), 0) FROM problems", &st)) < 0)
        goto out;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW)
        goto step_fail;
    problem_engine_set_last_id(pe, sqlite3_column_int64(st, 0));
    rc = 0;
    goto out;
step_fail:
    rc = fail(s, rc);
out:
    sqlite3_finalize(st);
    plists_finalize(&x);
    return rc;
}

/* ---- write -------------------------------------------------------------- */

/* Prepared statements of the problem half of one write transaction. */
struct pwriter {
    struct incidents_store *s;
    sqlite3_stmt *prob, *fdel, *fins, *rdel, *rins, *link, *cdel, *cins, *mark,
        *ref, *open, *ocap, *note;
};

static int
pw_problem(void *arg, const struct problem *p)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->prob;
    int rc;

    sqlite3_bind_int64(st, 1, p->id);
    sqlite3_bind_text(st, 2, problem_state_name(p->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->rule ? p->rule : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->key ? p->key : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->title ? p->title : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, p->opened_at);
    sqlite3_bind_int64(st, 7, p->investigating_at);
    sqlite3_bind_int64(st, 8, p->known_error_at);
    sqlite3_bind_int64(st, 9, p->resolved_at);
    sqlite3_bind_int64(st, 10, p->closed_at);
    sqlite3_bind_int64(st, 11, p->quiet_since);
    sqlite3_bind_int64(st, 12, p->root_incident);
    sqlite3_bind_text(st, 13, p->root_host ? p->root_host : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 14, p->root_cause ? p->root_cause : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 15, p->workaround ? p->workaround : "", -1,
                      SQLITE_STATIC);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        sqlite3_bind_text(st, 16 + i, p->whys[i] ? p->whys[i] : "", -1,
                          SQLITE_STATIC);
    if ((rc = step_reset(w->s, st)) < 0)
        return rc;
    /* A known error's workaround is a hint source (hints_store.c). */
    if (p->state == PROBLEM_KNOWN_ERROR)
        hints_note_link(w->s, 0, p->id);
    /* The factors only grow, but the whole list is the row's. */
    sqlite3_bind_int64(w->fdel, 1, p->id);
    if ((rc = step_reset(w->s, w->fdel)) < 0)
        return rc;
    for (size_t i = 0; i < p->nfactors; i++) {
        sqlite3_bind_int64(w->fins, 1, p->id);
        sqlite3_bind_int64(w->fins, 2, (int64_t)i);
        sqlite3_bind_text(w->fins, 3,
                          problem_factor_name(p->factors[i].category), -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(w->fins, 4,
                          p->factors[i].text ? p->factors[i].text : "", -1,
                          SQLITE_STATIC);
        if ((rc = step_reset(w->s, w->fins)) < 0)
            return rc;
    }
    sqlite3_bind_int64(w->rdel, 1, p->id);
    if ((rc = step_reset(w->s, w->rdel)) < 0)
        return rc;
    for (size_t i = 0; i < p->nreviews; i++) {
        sqlite3_bind_int64(w->rins, 1, p->id);
        sqlite3_bind_int64(w->rins, 2, (int64_t)i);
        sqlite3_bind_int64(w->rins, 3, p->reviews[i].incident_id);
        sqlite3_bind_text(w->rins, 4, p->reviews[i].field, -1, SQLITE_STATIC);
        sqlite3_bind_text(w->rins, 5, p->reviews[i].text, -1, SQLITE_STATIC);
        if ((rc = step_reset(w->s, w->rins)) < 0)
            return rc;
    }
    return 0;
}

static int
pw_link(void *arg, const struct problem_link *l)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->link;

    sqlite3_bind_int64(st, 1, l->incident_id);
    sqlite3_bind_int64(st, 2, l->problem_id);
    sqlite3_bind_int64(st, 3, l->ts);
    sqlite3_bind_int(st, 4, l->removed);
    sqlite3_bind_text(st, 5, l->rule ? l->rule : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, l->fields ? l->fields : "", -1, SQLITE_STATIC);
    if (!l->removed)
        hints_note_link(w->s, l->incident_id, l->problem_id);
    return step_reset(w->s, st);
}

static int
pw_candidates(void *arg, int64_t problem_id, const struct problem_candidate *c,
              size_t n)
{
    struct pwriter *w = arg;
    int rc;

    sqlite3_bind_int64(w->cdel, 1, problem_id);
    if ((rc = step_reset(w->s, w->cdel)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = w->cins;

        sqlite3_bind_int64(st, 1, problem_id);
        sqlite3_bind_int(st, 2, c[i].rank);
        sqlite3_bind_text(st, 3, c[i].host ? c[i].host : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, c[i].incident_id);
        sqlite3_bind_int64(st, 5, c[i].score);
        sqlite3_bind_text(st, 6, c[i].evidence ? c[i].evidence : "", -1,
                          SQLITE_STATIC);
        if ((rc = step_reset(w->s, st)) < 0)
            return rc;
    }
    return 0;
}

static int
pw_mark(void *arg, const struct problem_mark *m)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->mark;

    sqlite3_bind_int64(st, 1, m->incident_id);
    sqlite3_bind_int64(st, 2, m->problem_id);
    sqlite3_bind_int(st, 3, m->inhibited);
    sqlite3_bind_int(st, 4, m->manual);
    return step_reset(w->s, st);
}

static int
pw_ref(void *arg, const struct problem_ref *r)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->ref;

    sqlite3_bind_int64(st, 1, r->incident_id);
    sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->field, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->ts);
    return step_reset(w->s, st);
}

static int
pw_opening(void *arg, const struct problem_opening *o)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->open;
    int rc;

    sqlite3_bind_text(st, 1, o->cls, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->incident_id);
    sqlite3_bind_int64(st, 3, o->ts);
    if ((rc = step_reset(w->s, st)) < 0)
        return rc;
    /* The engine keeps the newest PROBLEM_MAX_TREND of a class. */
    sqlite3_bind_text(w->ocap, 1, o->cls, -1, SQLITE_STATIC);
    sqlite3_bind_int(w->ocap, 2, PROBLEM_MAX_TREND - 1);
    return step_reset(w->s, w->ocap);
}

static int
pw_note(void *arg, const struct problem_note *n)
{
    struct pwriter *w = arg;
    sqlite3_stmt *st = w->note;

    sqlite3_bind_int64(st, 1, n->problem_id);
    sqlite3_bind_int64(st, 2, n->ts);
    sqlite3_bind_text(st, 3, n->what, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, n->who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, n->detail ? n->detail : "", -1, SQLITE_STATIC);
    return step_reset(w->s, st);
}

int
problems_step_changes(struct incidents_store *w, struct incidents_store *feed,
                      struct problem_engine *pe, int64_t now, int tick)
{
    static const struct problem_sink sink = {pw_problem, pw_link, pw_candidates,
                                             pw_mark,    pw_ref,  pw_opening,
                                             pw_note};
    struct pwriter pw = {.s = w};
    sqlite3_stmt *host = NULL;
    int rc;

    for (size_t i = 0; i < feed->npacts; i++)
        feed->results[feed->pacts[i].slot] =
            problem_engine_action(pe, &feed->pacts[i].a);
    if (tick)
        problem_engine_tick(pe, now);
    if ((rc = prep(w, "INSERT OR IGNORE INTO problem_hosts(host) VALUES(?1)",
                   &host)) < 0)
        goto out;
    for (size_t i = 0; i < feed->nhosts; i++) {
        sqlite3_bind_text(host, 1, feed->hosts[i], -1, SQLITE_STATIC);
        if ((rc = step_reset(w, host)) < 0)
            goto out;
    }
    if (feed->nahosts > 0 && w == feed) { /* live: not replay's copy */
        /* The step this transaction writes: engine_steps' next row. */
        sqlite3_finalize(host);
        host = NULL;
        if ((rc = prep(w,
                       "INSERT OR IGNORE INTO problem_hosts(host, step, agent)"
                       " VALUES(?1, (SELECT coalesce(max(step), 0) + 1 FROM"
                       " engine_steps), 1)",
                       &host)) < 0)
            goto out;
        for (size_t i = 0; i < feed->nahosts; i++) {
            sqlite3_bind_text(host, 1, feed->ahosts[i], -1, SQLITE_STATIC);
            if ((rc = step_reset(w, host)) < 0)
                goto out;
        }
        /* A failed step reloads, which finds them again. */
        problems_agent_hosts_reset(feed);
    }
    if ((rc = prep(w,
                   "INSERT OR REPLACE INTO problems(" PROB_COLS ") VALUES(?1,"
                   "?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,"
                   "?18,?19,?20)",
                   &pw.prob)) < 0 ||
        (rc = prep(w, "DELETE FROM problem_factors WHERE problem_id = ?1",
                   &pw.fdel)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_factors(problem_id, n, category,"
                   " text) VALUES(?1,?2,?3,?4)",
                   &pw.fins)) < 0 ||
        (rc = prep(w, "DELETE FROM problem_reviews WHERE problem_id = ?1",
                   &pw.rdel)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_reviews(problem_id, n, incident_id,"
                   " field, text) VALUES(?1,?2,?3,?4,?5)",
                   &pw.rins)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_links(incident_id, problem_id, ts,"
                   " removed, rule, fields) VALUES(?1,?2,?3,?4,?5,?6)",
                   &pw.link)) < 0 ||
        (rc = prep(w, "DELETE FROM problem_candidates WHERE problem_id = ?1",
                   &pw.cdel)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_candidates(problem_id, rank, host,"
                   " incident_id, score, evidence) VALUES(?1,?2,?3,?4,?5,?6)",
                   &pw.cins)) < 0 ||
        (rc = prep(w,
                   "UPDATE incidents SET problem = ?2, inhibited = ?3,"
                   " problem_manual = ?4 WHERE id = ?1",
                   &pw.mark)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_refs(incident_id, host, field, value,"
                   " ts) VALUES(?1,?2,?3,?4,?5)",
                   &pw.ref)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_openings(cls, incident_id, ts)"
                   " VALUES(?1,?2,?3)",
                   &pw.open)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_timeline(problem_id, ts, what, who,"
                   " detail) VALUES(?1,?2,?3,?4,?5)",
                   &pw.note)) < 0 ||
        (rc = prep(w,
                   "DELETE FROM problem_openings WHERE cls = ?1 AND ts <"
                   " (SELECT ts FROM problem_openings WHERE cls = ?1"
                   " ORDER BY ts DESC LIMIT 1 OFFSET ?2)",
                   &pw.ocap)) < 0)
        goto out;
    if ((rc = problem_engine_drain(pe, &sink, &pw)) != 0)
        goto out;
    /* Both drains are in: the hints they trigger, in this transaction
     * (live and replay alike). */
    if ((rc = hints_step(w, feed, now)) != 0 || !tick)
        goto out;
    /*
     * What the tick dropped from memory: a restart would not load it
     * back either way, so the table stays as small as the engine's
     * window instead of growing with every opening ever.
     */
    sqlite3_finalize(host);
    host = NULL;
    if ((rc = prep(w, "DELETE FROM problem_openings WHERE ts < ?1", &host)) < 0)
        goto out;
    sqlite3_bind_int64(host, 1, problem_engine_trend_horizon(pe, now));
    rc = step_reset(w, host);
out:
    sqlite3_finalize(host);
    sqlite3_finalize(pw.prob);
    sqlite3_finalize(pw.fdel);
    sqlite3_finalize(pw.fins);
    sqlite3_finalize(pw.rdel);
    sqlite3_finalize(pw.rins);
    sqlite3_finalize(pw.link);
    sqlite3_finalize(pw.cdel);
    sqlite3_finalize(pw.cins);
    sqlite3_finalize(pw.mark);
    sqlite3_finalize(pw.ref);
    sqlite3_finalize(pw.open);
    sqlite3_finalize(pw.ocap);
    sqlite3_finalize(pw.note);
    return rc;
}

/* ---- queries (tocsinctl) ------------------------------------------------ */

int
incidents_store_problems(struct incidents_store *s,
                         const struct problems_filter *f,
                         int (*cb)(const struct problems_row *r, void *arg),
                         void *arg)
{
    sqlite3_stmt *st = NULL, *ist = NULL;
    struct plists x = {0};
    int64_t *ids = NULL;
    char **hosts = NULL;
    size_t nids = 0, capids = 0, nhosts = 0, caphosts = 0;
    struct problem p = {0};
    int rc;

    if ((rc = prep(s,
                   "SELECT " PROB_COLS " FROM problems WHERE"
                   " (?1 IS NULL OR state = ?1) AND (?2 = 0 OR id = ?2)"
                   " AND (?3 = 0 OR id < ?3)"
                   " ORDER BY id DESC",
                   &st)) < 0 ||
        (rc = plists_prep(s, &x)) < 0 ||
        (rc = prep(s,
                   "SELECT id, host FROM incidents WHERE problem = ?1"
                   " ORDER BY id",
                   &ist)) < 0)
        goto out;
    if (f->state)
        sqlite3_bind_text(st, 1, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->id);
    sqlite3_bind_int64(st, 3, f->before);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problems_row r;

        row_problem(st, &p);
        if ((rc = load_lists(s, &x, &p)) < 0)
            goto out;
        nids = 0;
        sqlite3_bind_int64(ist, 1, p.id);
        while ((rc = sqlite3_step(ist)) == SQLITE_ROW) {
            const char *h = col_text(ist, 1);
            size_t i;

            if (nids == capids) {
                capids = capids ? capids * 2 : 16;
                ids = tc_xreallocarray(ids, capids, sizeof(*ids));
            }
            ids[nids++] = sqlite3_column_int64(ist, 0);
            /* Sorted insert of a distinct host. */
            for (i = 0; i < nhosts && strcmp(hosts[i], h) < 0; i++)
                ;
            if (i < nhosts && strcmp(hosts[i], h) == 0)
                continue;
            if (nhosts == caphosts) {
                caphosts = caphosts ? caphosts * 2 : 8;
                hosts = tc_xreallocarray(hosts, caphosts, sizeof(*hosts));
            }
            memmove(&hosts[i + 1], &hosts[i], (nhosts - i) * sizeof(*hosts));
            hosts[i] = tc_xstrdup(h);
            nhosts++;
        }
        sqlite3_reset(ist);
        if (rc != SQLITE_DONE) {
            rc = fail(s, rc);
            goto out;
        }
        r.p = &p;
        r.incidents = ids;
        r.nincidents = nids;
        r.hosts = (const char *const *)hosts;
        r.nhosts = nhosts;
        rc = cb(&r, arg);
        for (size_t i = 0; i < nhosts; i++)
            free(hosts[i]);
        nhosts = 0;
        lists_free(&p);
        if (rc != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    lists_free(&p);
    for (size_t i = 0; i < nhosts; i++)
        free(hosts[i]);
    free(hosts);
    free(ids);
    sqlite3_finalize(st);
    plists_finalize(&x);
    sqlite3_finalize(ist);
    return rc;
}

int
incidents_store_problem_candidates(struct incidents_store *s, int64_t id,
                                   int (*cb)(const struct problem_candidate *c,
                                             void *arg),
                                   void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT rank, host, incident_id, score, evidence FROM"
                   " problem_candidates WHERE problem_id = ?1 ORDER BY rank",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem_candidate c = {
            id,
            sqlite3_column_int(st, 0),
            col_text(st, 1),
            sqlite3_column_int64(st, 2),
            sqlite3_column_int64(st, 3),
            col_text(st, 4),
        };
        if ((rc = cb(&c, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_problem_links(struct incidents_store *s, int64_t id,
                              int (*cb)(const struct problem_link *l,
                                        void *arg),
                              void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT incident_id, ts, removed, rule, fields FROM"
                   " problem_links WHERE problem_id = ?1 ORDER BY id",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem_link l = {
            sqlite3_column_int64(st, 0),
            id,
            sqlite3_column_int64(st, 1),
            sqlite3_column_int(st, 2),
            col_text(st, 3),
            col_text(st, 4),
        };
        if ((rc = cb(&l, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_problem_timeline(struct incidents_store *s, int64_t id,
                                 int (*cb)(const struct problem_note *n,
                                           void *arg),
                                 void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT ts, what, who, detail FROM problem_timeline"
                   " WHERE problem_id = ?1 ORDER BY id",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct problem_note n = {id, sqlite3_column_int64(st, 0),
                                 col_text(st, 1), col_text(st, 2),
                                 col_text(st, 3)};
        if ((rc = cb(&n, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_problem_action_add(struct incidents_store *s,
                                   const struct problem_action *a, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    char verb[32];
    int rc;

    snprintf(verb, sizeof(verb), "problem-%s", problem_verb_name(a->verb));
    if ((rc = prep(s,
                   "INSERT INTO actions(ts, user, verb, incident_id, text,"
                   " problem_id, key, text2) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, a->ts);
    sqlite3_bind_text(st, 2, a->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, verb, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, a->incident_id);
    if (a->text)
        sqlite3_bind_text(st, 5, a->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, a->problem_id);
    if (a->key)
        sqlite3_bind_text(st, 7, a->key, -1, SQLITE_STATIC);
    if (a->text2)
        sqlite3_bind_text(st, 8, a->text2, -1, SQLITE_STATIC);
    rc = step_reset(s, st);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->db);
    sqlite3_finalize(st);
    return rc;
}
