/*
 * incidents_store: SQLite side of the incident engine (see
 * incidents_store.h, docs/internals/store.md): its schema (versions 3
 * to 6, applied by store.c's migrator), open, load, and the engine step
 * (persistence). The queries are in incidents_query.c, replay in
 * incidents_replay.c; incidents_int.h is what the three share.
 * Batches are read through the event log's cursor (store_log_read),
 * never from the batches table.
 */
#include "store/incidents_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "engine/problem.h"
#include "escape.h"
#include "log.h"
#include "store/incidents_int.h"
#include "store/store.h"
#include "store/store_int.h"
#include "util.h"
#include "wire.h"

int
incidents_store_open(const char *path, int rdonly, struct incidents_store **out)
{
    struct incidents_store *s = tc_xcalloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    int rc, v;

    *out = NULL;
    s->rdonly = rdonly;
    tc_frame_init(&s->frame);
    if (access(path, F_OK) < 0) {
        rc = -errno;
        log_warnx("store %s: %s", path, strerror(errno));
        goto fail;
    }
    rc = sqlite3_open_v2(
        path, &s->db,
        (rdonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
            SQLITE_OPEN_NOMUTEX,
        NULL);
    if (rc != SQLITE_OK) {
        rc = s->db ? fail(s, rc) : -ENOMEM;
        log_warnx("store %s: cannot open: %s", path, s->errmsg);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    if ((rc = prep(s, "PRAGMA user_version", &st)) < 0)
        goto fail_msg;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        rc = fail(s, rc);
        goto fail_msg;
    }
    v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (v != STORE_SCHEMA_VERSION) {
        log_warnx("store %s: schema version %d, expected %d%s", path, v,
                  STORE_SCHEMA_VERSION,
                  v < STORE_SCHEMA_VERSION ? " (start the collector once to "
                                             "migrate it)"
                                           : "");
        rc = -EPROTO;
        goto fail;
    }
    /* Same durability as the pipeline's connection (store.c). */
    if (!rdonly && (rc = exec(s, "PRAGMA synchronous = FULL")) < 0)
        goto fail_msg;
    s->path = tc_xstrdup(path);
    *out = s;
    return 0;
fail_msg:
    log_warnx("store %s: %s", path, s->errmsg);
fail:
    sqlite3_finalize(st);
    incidents_store_close(s);
    return rc;
}

void
incidents_store_close(struct incidents_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    store_close(s->log);
    free(s->path);
    tc_frame_close(&s->frame);
    free(s->results);
    free(s->result_ids);
    problems_feed_reset(s);
    problems_agent_hosts_reset(s);
    free(s->pacts);
    free(s->hosts);
    free(s->ahosts);
    hints_store_free(s);
    free(s);
}

const char *
incidents_store_errmsg(const struct incidents_store *s)
{
    return s->errmsg;
}

uint64_t
incidents_store_foreign_results(const struct incidents_store *s)
{
    return s->foreign_results;
}

/*
 * Version 3. Incidents (docs/internals/incidents.md): the incident engine's
 * persisted state, its timeline, the human actions tocsinctl records for it,
 * and the engine's steps, whose last row is the watermark of what the incident
 * tables reflect.
 */
static const char schema_v3[] =
    "CREATE TABLE incidents("
    " id INTEGER PRIMARY KEY,"
    " fingerprint TEXT NOT NULL,"
    " host TEXT NOT NULL,"
    " rule TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " severity TEXT NOT NULL,"
    " priority INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " opened_at INTEGER NOT NULL,"
    " acked_at INTEGER NOT NULL DEFAULT 0,"
    " resolved_at INTEGER NOT NULL DEFAULT 0,"
    " closed_at INTEGER NOT NULL DEFAULT 0,"
    " reopened INTEGER NOT NULL DEFAULT 0,"
    " tier1 INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX incidents_state ON incidents(state, id);"
    "CREATE TABLE timeline("
    " id INTEGER PRIMARY KEY,"
    " incident_id INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " what TEXT NOT NULL,"
    " who TEXT NOT NULL,"
    " detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX timeline_incident ON timeline(incident_id, id);"
    "CREATE TABLE incident_fps("
    " fingerprint TEXT PRIMARY KEY,"
    " attempts INTEGER NOT NULL,"
    " since INTEGER NOT NULL);"
    "CREATE TABLE actions("
    " id INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " user TEXT NOT NULL,"
    " verb TEXT NOT NULL,"
    " incident_id INTEGER NOT NULL,"
    " text TEXT,"
    " result INTEGER);"
    "CREATE TABLE engine_steps("
    " step INTEGER PRIMARY KEY,"
    " batch_to INTEGER NOT NULL,"
    " action_to INTEGER NOT NULL,"
    " tick INTEGER NOT NULL);";

/*
 * Version 4: silences (maintenance windows). A silence is added and
 * expired by rows of the actions table (verbs "silence" and "expire",
 * incident_id = the silence id), so it is an engine input in the same
 * total order as every other action; action_id and expire_action say
 * which, so that a restart loads exactly the silences the incident
 * tables reflect. An incident remembers the silence that matched.
 */
static const char schema_v4[] =
    "ALTER TABLE incidents ADD COLUMN silenced INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE silences("
    " id INTEGER PRIMARY KEY,"
    " created INTEGER NOT NULL,"
    " starts_at INTEGER NOT NULL,"
    " ends_at INTEGER NOT NULL,"
    " user TEXT NOT NULL,"
    " comment TEXT NOT NULL DEFAULT '',"
    " matchers TEXT NOT NULL,"
    " action_id INTEGER NOT NULL DEFAULT 0,"
    " expired_at INTEGER NOT NULL DEFAULT 0,"
    " expire_action INTEGER NOT NULL DEFAULT 0);";

/*
 * Version 5: flap detection. A check fingerprint's soft state keeps its
 * recent results (2 bits each) and whether it flaps, so that a restart
 * and replay decide flapping exactly as the live engine did; an
 * incident is marked while its check flaps.
 */
static const char schema_v5[] =
    "ALTER TABLE incidents ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE incident_fps ADD COLUMN history INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE incident_fps ADD COLUMN flapping INTEGER NOT NULL"
    " DEFAULT 0;";

/*
 * Version 6: an incident keeps the service= label of its events, for
 * "tocsinctl stats --by service" and the incident listings.
 */
static const char schema_v6[] =
    "ALTER TABLE incidents ADD COLUMN service TEXT NOT NULL DEFAULT '';";

/*
 * Version 12: the active incidents by priority. The dashboard's header
 * counts the open and acknowledged incidents per priority and its list
 * shows them P1 first: on incidents_state(state, id) both read every
 * incident of the state (207 ms to count 100,000 open ones, 59 ms to
 * find their P1s); on this index each is a range of its own entries
 * (10 ms, 0.3 ms; bench/README.md "API"). id DESC: the list's order
 * within a priority, newest first, read without a sort.
 */
static const char schema_v12[] = "CREATE INDEX incidents_state_prio ON"
                                 " incidents(state, priority, id DESC);";

/* The engine state's schema steps, applied by store.c's migrator in
 * version order after the event log's 1 and 2 (store_int.h); version 7
 * (problems) and 8 (reviews) are in problems_store.c, 9 (hints) and
 * 10 (the opening events' fields for hints) in hints_store.c, 11 (API
 * tokens) in tokens_store.c, 12 (incidents by priority) here. */
const struct store_migration incidents_migrations[] = {
    {3, schema_v3},       {4, schema_v4},          {5, schema_v5},
    {6, schema_v6},       {7, problems_schema_v7}, {8, problems_schema_v8},
    {9, hints_schema_v9}, {10, hints_schema_v10},  {11, tokens_schema_v11},
    {12, schema_v12},
};
const size_t incidents_nmigrations =
    sizeof(incidents_migrations) / sizeof(incidents_migrations[0]);

/* Read one incidents row (column order of INC_COLS) into in. */
void
incidents_row_incident(sqlite3_stmt *st, struct incident *in)
{
    enum incident_state state = INCIDENT_OPEN;
    enum tc_severity sev = TC_SEV_INFO;

    memset(in, 0, sizeof(*in));
    in->id = sqlite3_column_int64(st, 0);
    in->fingerprint = (char *)col_text(st, 1);
    in->host = (char *)col_text(st, 2);
    in->rule = (char *)col_text(st, 3);
    in->kind = (char *)col_text(st, 4);
    (void)incident_state_parse(col_text(st, 5), &state);
    in->state = state;
    (void)tc_severity_parse(col_text(st, 6), &sev);
    in->severity = sev;
    in->priority = sqlite3_column_int(st, 7);
    in->count = (uint64_t)sqlite3_column_int64(st, 8);
    in->first_seen = sqlite3_column_int64(st, 9);
    in->last_seen = sqlite3_column_int64(st, 10);
    in->opened_at = sqlite3_column_int64(st, 11);
    in->acked_at = sqlite3_column_int64(st, 12);
    in->resolved_at = sqlite3_column_int64(st, 13);
    in->closed_at = sqlite3_column_int64(st, 14);
    in->reopened = (uint32_t)sqlite3_column_int64(st, 15);
    in->tier1 = sqlite3_column_int(st, 16) != 0;
    in->silenced = sqlite3_column_int64(st, 17);
    in->flapping = sqlite3_column_int(st, 18) != 0;
    in->service = (char *)col_text(st, 19);
}

int
incidents_store_load(struct incidents_store *s,
                     const struct incident_config *cfg,
                     const struct problem_config *pcfg,
                     struct incident_engine **out, struct problem_engine **pout,
                     struct incidents_watermark *wm)
{
    struct incident_engine *e = incident_engine_new(cfg);
    struct problem_engine *pe = problem_engine_new(pcfg);
    sqlite3_stmt *st = NULL;
    struct incident in;
    int rc;

    *out = NULL;
    *pout = NULL;
    memset(wm, 0, sizeof(*wm));
    /* One read transaction: rows and watermark of the same step. */
    if ((rc = exec(s, "BEGIN")) < 0)
        goto out;
    if ((rc = prep(s,
                   "SELECT " INC_COLS " FROM incidents WHERE state != 'closed'"
                   " ORDER BY id",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        incidents_row_incident(st, &in);
        incident_engine_load(e, &in);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "SELECT fingerprint, attempts, since, history, flapping"
                   " FROM incident_fps",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_fp fp = {
            col_text(st, 0), (uint32_t)sqlite3_column_int64(st, 1),
            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
            sqlite3_column_int(st, 4) != 0};
        incident_engine_load_fp(e, &fp);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    sqlite3_finalize(st);
    if ((rc = prep(s, "SELECT coalesce(max(id), 0) FROM incidents", &st)) < 0)
        goto out;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW)
        goto step_fail;
    incident_engine_set_last_id(e, sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "SELECT step, batch_to, action_to FROM engine_steps"
                   " ORDER BY step DESC LIMIT 1",
                   &st)) < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        wm->step = sqlite3_column_int64(st, 0);
        wm->batch_to = sqlite3_column_int64(st, 1);
        wm->action_to = sqlite3_column_int64(st, 2);
    } else if (rc != SQLITE_DONE) {
        goto step_fail;
    }
    sqlite3_finalize(st);
    /*
     * The silences the tables reflect: added, and expired, by actions
     * the engine has applied (tocsinctl writes the row before the
     * collector sees the action).
     */
    if ((rc = prep(s,
                   "SELECT id, starts_at, CASE WHEN expire_action != 0 AND"
                   " expire_action <= ?1 AND expired_at < ends_at THEN"
                   " expired_at ELSE ends_at END, matchers FROM silences"
                   " WHERE action_id != 0 AND action_id <= ?1 ORDER BY id",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, wm->action_to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_silence sil = {
            sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
            sqlite3_column_int64(st, 2), col_text(st, 3)};
        (void)incident_engine_silence(e, &sil);
    }
    if (rc != SQLITE_DONE)
        goto step_fail;
    if ((rc = problems_load(s, pe)) < 0)
        goto out;
    /* The runbook set those actions put in force (an input). */
    if ((rc = hints_runbooks_restore(s, wm->action_to)) < 0)
        goto out;
    rc = 0;
    *out = e;
    e = NULL;
    *pout = pe;
    pe = NULL;
    goto out;
step_fail:
    rc = fail(s, rc);
out:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    incident_engine_free(e);
    problem_engine_free(pe);
    return rc;
}

/* A "silence" action: the silence row it refers to, into the engine. */
static int
feed_silence(struct incidents_store *s, struct incident_engine *e, int64_t id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT starts_at, ends_at, matchers FROM silences"
                   " WHERE id = ?1",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct incident_silence sil = {id, sqlite3_column_int64(st, 0),
                                       sqlite3_column_int64(st, 1),
                                       col_text(st, 2)};
        rc = incident_engine_silence(e, &sil);
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* What feed_batch needs. */
struct feed_ctx {
    struct incidents_store *s;
    struct incident_engine *e;
    struct problem_engine *pe;
    struct tc_wire_limits lim;
    uint64_t n; /* batches visited */
};

/* A batch's host, once per feed, for problem_hosts. */
static void
host_seen(struct incidents_store *s, const char *host)
{
    for (size_t i = s->nhosts; i-- > 0;)
        if (strcmp(s->hosts[i], host) == 0)
            return;
    if (s->nhosts == s->caphosts) {
        s->caphosts = s->caphosts ? s->caphosts * 2 : 16;
        s->hosts = tc_xreallocarray(s->hosts, s->caphosts, sizeof(*s->hosts));
    }
    s->hosts[s->nhosts++] = tc_xstrdup(host);
}

/* A "problem-<verb>" action, kept for after the incident drain. */
static int
defer_paction(struct incidents_store *s, sqlite3_stmt *st, const char *verb,
              size_t slot)
{
    struct pending_paction *p;
    enum problem_verb v;

    if (problem_verb_parse(verb, &v) < 0)
        return -EINVAL;
    if (s->npacts == s->cappacts) {
        s->cappacts = s->cappacts ? s->cappacts * 2 : 8;
        s->pacts = tc_xreallocarray(s->pacts, s->cappacts, sizeof(*s->pacts));
    }
    p = &s->pacts[s->npacts++];
    memset(p, 0, sizeof(*p));
    p->user = tc_xstrdup(col_text(st, 2));
    p->text = sqlite3_column_type(st, 5) == SQLITE_NULL
                  ? NULL
                  : tc_xstrdup(col_text(st, 5));
    p->key = sqlite3_column_type(st, 7) == SQLITE_NULL
                 ? NULL
                 : tc_xstrdup(col_text(st, 7));
    p->text2 = sqlite3_column_type(st, 8) == SQLITE_NULL
                   ? NULL
                   : tc_xstrdup(col_text(st, 8));
    p->a.ts = sqlite3_column_int64(st, 1);
    p->a.user = p->user;
    p->a.verb = v;
    p->a.problem_id = sqlite3_column_int64(st, 6);
    p->a.incident_id = sqlite3_column_int64(st, 4);
    p->a.key = p->key;
    p->a.text = p->text;
    p->a.text2 = p->text2;
    p->slot = slot;
    return 0;
}

/*
 * After each event: an action result that named another host's
 * incident was refused by the engine (no timeline entry); count it and
 * say so. Logged in replay too, which feeds the same events.
 */
static void
result_refused(struct incidents_store *s, const struct incident_engine *e,
               const char *host)
{
    const struct incident *in;
    char h[128], o[128];
    int64_t id;

    if (incident_engine_last_result(e, &id) != INCIDENT_RESULT_FOREIGN)
        return;
    s->foreign_results++;
    if (s->foreign_results > 10 && s->foreign_results % 1000 != 0)
        return;
    in = incident_engine_get(e, id);
    tc_escape(h, sizeof(h), host, strlen(host));
    tc_escape(o, sizeof(o), in != NULL ? in->host : "?",
              in != NULL ? strlen(in->host) : 1);
    log_warnx("incidents: agent %s sent an action result for incident %lld"
              " of host %s: refused, stored as an event only (%llu so far)",
              h, (long long)id, o, (unsigned long long)s->foreign_results);
}

/*
 * The same for a result naming only a problem (a hint to a host with
 * no incident in it): one for a problem of other hosts is refused by
 * the problem engine; counted with the others and said.
 */
static void
problem_result(struct incidents_store *s, struct problem_engine *pe,
               const char *host, const struct tc_event *ev)
{
    char h[128];
    int64_t id;

    if (problem_engine_action_result(pe, host, ev, &id) !=
        PROBLEM_RESULT_FOREIGN)
        return;
    s->foreign_results++;
    if (s->foreign_results > 10 && s->foreign_results % 1000 != 0)
        return;
    tc_escape(h, sizeof(h), host, strlen(host));
    log_warnx("incidents: agent %s sent an action result for problem %lld,"
              " which has no incident on that host: refused, stored as an"
              " event only (%llu so far)",
              h, (long long)id, (unsigned long long)s->foreign_results);
}

/* One batch of the event log into the engines. */
static int
feed_batch(const struct store_batch *b, void *arg)
{
    struct feed_ctx *fc = arg;
    const struct tc_events *evs;
    const char *err = "?";

    fc->n++;
    if (tc_event_decode_array(b->events, b->events_len, &fc->lim, &fc->s->frame,
                              &err) < 0) {
        /* Deterministic either way: a bad blob is skipped by replay
         * too. */
        log_warnx("incidents: batch %lld: cannot decode: %s", (long long)b->id,
                  err);
        return 0;
    }
    host_seen(fc->s, b->host);
    problem_engine_host(fc->pe, b->host);
    evs = &fc->s->frame.u.events;
    for (uint32_t i = 0; i < evs->n; i++) {
        incident_engine_event(fc->e, b->host, &evs->ev[i]);
        result_refused(fc->s, fc->e, b->host);
        problem_result(fc->s, fc->pe, b->host, &evs->ev[i]);
        hints_feed_event(fc->s, fc->e, &evs->ev[i]);
        problem_engine_evidence(fc->pe, incident_engine_last(fc->e), b->host,
                                &evs->ev[i]);
    }
    return 0;
}

/*
 * Feed batches (through the event log's cursor) and actions after wm,
 * up to the marks in upto (INT64_MAX: all there are); the new marks in
 * *to. The actions are read in their own read transaction unless the
 * caller holds one (replay: one snapshot); a range of the log below a
 * recorded watermark never changes, so its batches need none.
 */
int
incidents_feed(struct incidents_store *s, struct incident_engine *e,
               struct problem_engine *pe, const struct incidents_watermark *wm,
               const struct incidents_watermark *upto, uint32_t max_batches,
               struct incidents_watermark *to, int *more)
{
    struct feed_ctx fc = {s, e, pe, tc_wire_default_limits, 0};
    sqlite3_stmt *st = NULL;
    int own = sqlite3_get_autocommit(s->db);
    int rc;

    /* Stored blobs may exceed a frame (host rewritten), see ctl_events. */
    fc.lim.max_frame = UINT32_MAX;
    *to = *wm;
    *more = 0;
    s->nresults = 0;
    problems_feed_reset(s);
    hints_feed_reset(s);
    /* The engine's input: the event log, read by cursor (store_open
     * logs why it cannot open). */
    if (s->log == NULL &&
        (rc = store_open(s->path, STORE_RDONLY, &s->log)) < 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "cannot open the event log");
        return rc;
    }
    rc = store_log_read(s->log, wm->batch_to, upto->batch_to, max_batches,
                        feed_batch, &fc, &to->batch_to, more);
    s->fed_batches += fc.n;
    if (rc < 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", store_errmsg(s->log));
        return rc;
    }
    if (own && (rc = exec(s, "BEGIN")) < 0)
        return rc;
    /*
     * Actions come after the batches of the same step: a human acts on
     * what was committed when the step ran, and the step row records
     * that order for replay.
     */
    if ((rc = prep(s,
                   "SELECT id, ts, user, verb, incident_id, text, problem_id,"
                   " key, text2 FROM actions"
                   " WHERE id > ?1 AND id <= ?2 ORDER BY id",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, wm->action_to);
    sqlite3_bind_int64(st, 2, upto->action_to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_action a;
        enum incident_verb verb;
        const char *v = col_text(st, 3);
        int r;

        to->action_to = sqlite3_column_int64(st, 0);
        memset(&a, 0, sizeof(a));
        a.ts = sqlite3_column_int64(st, 1);
        a.user = col_text(st, 2);
        a.incident_id = sqlite3_column_int64(st, 4);
        a.text =
            sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : col_text(st, 5);
        if (strncmp(v, "problem-", 8) == 0) {
            /* Applied after the incident drain; its slot is filled
             * then (problems_step_changes). */
            r = defer_paction(s, st, v + 8, s->nresults);
        } else if (strcmp(v, "silence") == 0) {
            r = feed_silence(s, e, a.incident_id);
        } else if (strcmp(v, "expire") == 0) {
            r = incident_engine_silence_expire(e, a.incident_id, a.ts);
        } else if (strcmp(v, "runbooks") == 0) {
            /* The runbook set from here on (hints_store.c). */
            r = hints_runbooks_apply(s, a.incident_id);
        } else if (incident_verb_parse(v, &verb) < 0) {
            r = -EINVAL;
        } else {
            a.verb = verb;
            r = incident_engine_action(e, &a);
        }
        if (s->nresults == s->capresults) {
            s->capresults = s->capresults ? s->capresults * 2 : 16;
            s->results = tc_xreallocarray(s->results, s->capresults,
                                          sizeof(*s->results));
            s->result_ids = tc_xreallocarray(s->result_ids, s->capresults,
                                             sizeof(*s->result_ids));
        }
        s->result_ids[s->nresults] = to->action_to;
        s->results[s->nresults++] = r;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    if (own)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* Prepared statements of one write transaction. */
struct writer {
    struct incidents_store *s;
    struct problem_engine *pe; /* each written incident goes to it */
    sqlite3_stmt *inc, *fp_up, *fp_del, *note;
    int n; /* rows written */
};

static int
w_inc(void *arg, const struct incident *in)
{
    struct writer *w = arg;
    sqlite3_stmt *st = w->inc;

    sqlite3_bind_int64(st, 1, in->id);
    sqlite3_bind_text(st, 2, in->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, in->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, in->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, incident_state_name(in->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, tc_severity_name(in->severity), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, in->priority);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)in->count);
    sqlite3_bind_int64(st, 10, in->first_seen);
    sqlite3_bind_int64(st, 11, in->last_seen);
    sqlite3_bind_int64(st, 12, in->opened_at);
    sqlite3_bind_int64(st, 13, in->acked_at);
    sqlite3_bind_int64(st, 14, in->resolved_at);
    sqlite3_bind_int64(st, 15, in->closed_at);
    sqlite3_bind_int64(st, 16, in->reopened);
    sqlite3_bind_int(st, 17, in->tier1);
    sqlite3_bind_int64(st, 18, in->silenced);
    sqlite3_bind_int(st, 19, in->flapping);
    sqlite3_bind_text(st, 20, in->service ? in->service : "", -1,
                      SQLITE_STATIC);
    w->n++;
    /* The incident drain feeds the problem engine (problems.md). */
    problem_engine_incident(w->pe, in);
    return step_reset(w->s, st);
}

static int
w_fp(void *arg, const struct incident_fp *fp)
{
    struct writer *w = arg;
    int keep = fp->attempts || fp->history || fp->flapping;
    sqlite3_stmt *st = keep ? w->fp_up : w->fp_del;

    sqlite3_bind_text(st, 1, fp->fingerprint, -1, SQLITE_STATIC);
    if (keep) {
        sqlite3_bind_int64(st, 2, fp->attempts);
        sqlite3_bind_int64(st, 3, fp->since);
        sqlite3_bind_int64(st, 4, fp->history);
        sqlite3_bind_int(st, 5, fp->flapping);
    }
    w->n++;
    return step_reset(w->s, st);
}

static int
w_note(void *arg, const struct incident_note *n)
{
    struct writer *w = arg;
    sqlite3_stmt *st = w->note;

    sqlite3_bind_int64(st, 1, n->incident_id);
    sqlite3_bind_int64(st, 2, n->ts);
    sqlite3_bind_text(st, 3, n->what, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, n->who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, n->detail, -1, SQLITE_STATIC);
    w->n++;
    if (strcmp(n->what, "opened") == 0)
        hints_note_opened(w->s, n->incident_id);
    return step_reset(w->s, st);
}

/*
 * Drain the engine's changes into the incident tables of s, inside the
 * caller's write transaction: the live step, and replay's scratch copy
 * (which must write exactly what the live step wrote).
 */
int
incidents_write_changes(struct incidents_store *s, struct incident_engine *e,
                        struct problem_engine *pe)
{
    static const struct incident_sink sink = {w_inc, w_fp, w_note};
    struct writer w = {.s = s, .pe = pe};
    int rc;

    hints_drain_reset(s);
    /* An upsert, not a replace: the problem mark columns are the
     * problem engine's (pw_mark) and stay. */
    if ((rc = prep(s,
                   "INSERT INTO incidents(" INC_COLS ")"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
                   "?15,?16,?17,?18,?19,?20) ON CONFLICT(id) DO UPDATE SET"
                   " fingerprint = excluded.fingerprint, host = excluded.host,"
                   " rule = excluded.rule, kind = excluded.kind,"
                   " state = excluded.state, severity = excluded.severity,"
                   " priority = excluded.priority, count = excluded.count,"
                   " first_seen = excluded.first_seen,"
                   " last_seen = excluded.last_seen,"
                   " opened_at = excluded.opened_at,"
                   " acked_at = excluded.acked_at,"
                   " resolved_at = excluded.resolved_at,"
                   " closed_at = excluded.closed_at,"
                   " reopened = excluded.reopened, tier1 = excluded.tier1,"
                   " silenced = excluded.silenced,"
                   " flapping = excluded.flapping,"
                   " service = excluded.service",
                   &w.inc)) < 0 ||
        (rc = prep(s,
                   "INSERT OR REPLACE INTO incident_fps(fingerprint,"
                   " attempts, since, history, flapping)"
                   " VALUES(?1,?2,?3,?4,?5)",
                   &w.fp_up)) < 0 ||
        (rc = prep(s, "DELETE FROM incident_fps WHERE fingerprint = ?1",
                   &w.fp_del)) < 0 ||
        (rc = prep(s,
                   "INSERT INTO timeline(incident_id, ts, what, who, detail)"
                   " VALUES(?1,?2,?3,?4,?5)",
                   &w.note)) < 0)
        goto out;
    rc = incident_engine_drain(e, &sink, &w);
out:
    sqlite3_finalize(w.inc);
    sqlite3_finalize(w.fp_up);
    sqlite3_finalize(w.fp_del);
    sqlite3_finalize(w.note);
    return rc;
}

int
incidents_store_open_engine(struct store *log, struct incidents_store **out)
{
    struct incidents_store *s;
    int rc;

    if ((rc = incidents_store_open(store_path(log), 0, &s)) < 0)
        return rc;
    s->writer = store_writer(log);
    /* Its reader of the log now, so that a collector that cannot read
     * its log fails at start-up, not in the first step. */
    if ((rc = store_open(s->path, STORE_RDONLY, &s->log)) < 0) {
        incidents_store_close(s);
        return rc;
    }
    /* The log's maintenance runs the checkpoints (store.h). */
    sqlite3_wal_autocheckpoint(s->db, 0);
    /* Either writer may be the one that starts the WAL again after a
     * complete checkpoint: both truncate it then (store_int.h). */
    if ((rc = exec(s, "PRAGMA journal_size_limit = " STORE_WAL_KEEP_SQL)) < 0 ||
        (rc = exec(s, "PRAGMA synchronous = NORMAL")) < 0) {
        log_warnx("store %s: %s", store_path(log), s->errmsg);
        incidents_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int
incidents_store_step(struct incidents_store *s, struct incident_engine *e,
                     struct problem_engine *pe, struct incidents_watermark *wm,
                     int64_t now, uint32_t max_batches, int *more)
{
    static const struct incidents_watermark all = {0, INT64_MAX, INT64_MAX};
    struct incidents_watermark to;
    sqlite3_stmt *st = NULL;
    int ptick = 1;
    int rc;

    if (s->rdonly)
        return -EROFS;
    s->nhnew = 0;
    if ((rc = incidents_feed(s, e, pe, wm, &all, max_batches, &to, more)) < 0)
        return rc;
    incident_engine_tick(e, now);
    /*
     * An idle tick that changed nothing leaves no row: replay without
     * it reaches the same state. With no incident change and no input,
     * the problem tick comes next in the step's order anyway, so it is
     * run here to see whether it changed anything.
     */
    if (to.batch_to == wm->batch_to && to.action_to == wm->action_to &&
        !incident_engine_pending(e)) {
        problem_engine_tick(pe, now);
        if (!problem_engine_pending(pe))
            return 0;
        ptick = 0;
    }

    if (s->writer)
        pthread_mutex_lock(s->writer);
    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        goto out;
    if ((rc = incidents_write_changes(s, e, pe)) != 0 ||
        (rc = problems_step_changes(s, s, pe, now, ptick)) != 0)
        goto out;
    if ((rc = prep(s, "UPDATE actions SET result = ?2 WHERE id = ?1", &st)) < 0)
        goto out;
    for (size_t i = 0; i < s->nresults; i++) {
        sqlite3_bind_int64(st, 1, s->result_ids[i]);
        sqlite3_bind_int64(st, 2, s->results[i]);
        if ((rc = step_reset(s, st)) < 0)
            goto out;
    }
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "INSERT INTO engine_steps(batch_to, action_to, tick)"
                   " VALUES(?1,?2,?3)",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, to.batch_to);
    sqlite3_bind_int64(st, 2, to.action_to);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    if ((rc = exec(s, "COMMIT")) < 0)
        goto out;
    to.step = sqlite3_last_insert_rowid(s->db);
    *wm = to;
out:
    sqlite3_finalize(st);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (s->writer)
        pthread_mutex_unlock(s->writer);
    return rc < 0 ? rc : rc != 0 ? -EIO : 0;
}
