/*
 * incidents_store: SQLite side of the incident engine (see
 * incidents_store.h, docs/internals/store.md): its schema (versions 3
 * to 6, applied by store.c's migrator), load, and the engine step.
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

#include "log.h"
#include "store/sqlerr.h"
#include "store/store.h"
#include "store/store_int.h"
#include "util.h"
#include "wire.h"

struct incidents_store {
    sqlite3 *db; /* owned */
    int rdonly;
    char errmsg[256];      /* message behind the last error */
    struct tc_frame frame; /* batch decode memory, reused */
    int64_t *results;      /* owned: action results of a step */
    int64_t *result_ids;   /* owned: their action ids */
    size_t nresults, capresults;
    uint64_t fed_batches;    /* batches feed visited (replay's count) */
    pthread_mutex_t *writer; /* borrowed, or NULL (tocsinctl) */
    struct store *log;       /* owned: read-only event log reader, or NULL
                                (replay's scratch) */
};

static int
fail(struct incidents_store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_sqlfail(rc);
}

static int
exec(struct incidents_store *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static int
prep(struct incidents_store *s, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : fail(s, rc);
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? t : "";
}

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
    /* The engine's input: the event log, read by cursor (logs why). */
    if ((rc = store_open(path, STORE_RDONLY, &s->log)) < 0)
        goto fail;
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
    tc_frame_close(&s->frame);
    free(s->results);
    free(s->result_ids);
    free(s);
}

const char *
incidents_store_errmsg(const struct incidents_store *s)
{
    return s->errmsg;
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

/* The engine state's schema steps, applied by store.c's migrator in
 * version order after the event log's 1 and 2 (store_int.h). */
const struct store_migration incidents_migrations[] = {
    {3, schema_v3},
    {4, schema_v4},
    {5, schema_v5},
    {6, schema_v6},
};
const size_t incidents_nmigrations =
    sizeof(incidents_migrations) / sizeof(incidents_migrations[0]);

/* Read one incidents row (column order of INC_COLS) into in. */
#define INC_COLS                                                               \
    "id, fingerprint, host, rule, kind, state, severity, priority, count,"     \
    " first_seen, last_seen, opened_at, acked_at, resolved_at, closed_at,"     \
    " reopened, tier1, silenced, flapping, service"

static void
row_incident(sqlite3_stmt *st, struct incident *in)
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
                     struct incident_engine **out,
                     struct incidents_watermark *wm)
{
    struct incident_engine *e = incident_engine_new(cfg);
    sqlite3_stmt *st = NULL;
    struct incident in;
    int rc;

    *out = NULL;
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
        row_incident(st, &in);
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
    rc = 0;
    *out = e;
    e = NULL;
    goto out;
step_fail:
    rc = fail(s, rc);
out:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    incident_engine_free(e);
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
    struct tc_wire_limits lim;
    uint64_t n; /* batches visited */
};

/* One batch of the event log into the engine. */
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
    evs = &fc->s->frame.u.events;
    for (uint32_t i = 0; i < evs->n; i++)
        incident_engine_event(fc->e, b->host, &evs->ev[i]);
    return 0;
}

/*
 * Feed batches (through the event log's cursor) and actions after wm,
 * up to the marks in upto (INT64_MAX: all there are); the new marks in
 * *to. The actions are read in their own read transaction unless the
 * caller holds one (replay: one snapshot); a range of the log below a
 * recorded watermark never changes, so its batches need none.
 */
static int
feed(struct incidents_store *s, struct incident_engine *e,
     const struct incidents_watermark *wm,
     const struct incidents_watermark *upto, uint32_t max_batches,
     struct incidents_watermark *to, int *more)
{
    struct feed_ctx fc = {s, e, tc_wire_default_limits, 0};
    sqlite3_stmt *st = NULL;
    int own = sqlite3_get_autocommit(s->db);
    int rc;

    /* Stored blobs may exceed a frame (host rewritten), see ctl_events. */
    fc.lim.max_frame = UINT32_MAX;
    *to = *wm;
    *more = 0;
    s->nresults = 0;
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
                   "SELECT id, ts, user, verb, incident_id, text FROM actions"
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
        if (strcmp(v, "silence") == 0) {
            r = feed_silence(s, e, a.incident_id);
        } else if (strcmp(v, "expire") == 0) {
            r = incident_engine_silence_expire(e, a.incident_id, a.ts);
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
    sqlite3_stmt *inc, *fp_up, *fp_del, *note;
    int n; /* rows written */
};

static int
step_reset(struct incidents_store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, rc);
}

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
    return step_reset(w->s, st);
}

/*
 * Drain the engine's changes into the incident tables of s, inside the
 * caller's write transaction: the live step, and replay's scratch copy
 * (which must write exactly what the live step wrote).
 */
static int
write_changes(struct incidents_store *s, struct incident_engine *e)
{
    static const struct incident_sink sink = {w_inc, w_fp, w_note};
    struct writer w = {.s = s};
    int rc;

    if ((rc = prep(s,
                   "INSERT OR REPLACE INTO incidents(" INC_COLS ")"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
                   "?15,?16,?17,?18,?19,?20)",
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
                     struct incidents_watermark *wm, int64_t now,
                     uint32_t max_batches, int *more)
{
    static const struct incidents_watermark all = {0, INT64_MAX, INT64_MAX};
    struct incidents_watermark to;
    sqlite3_stmt *st = NULL;
    int rc;

    if (s->rdonly)
        return -EROFS;
    if ((rc = feed(s, e, wm, &all, max_batches, &to, more)) < 0)
        return rc;
    incident_engine_tick(e, now);
    /* An idle tick that changed nothing leaves no row: replay without
     * it reaches the same state. */
    if (to.batch_to == wm->batch_to && to.action_to == wm->action_to &&
        !incident_engine_pending(e))
        return 0;

    if (s->writer)
        pthread_mutex_lock(s->writer);
    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        goto out;
    if ((rc = write_changes(s, e)) != 0)
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
                     int (*cb)(const struct incident *in, void *arg), void *arg)
{
    struct incident *rows = tc_xcalloc(LIST_CHUNK, sizeof(*rows));
    sqlite3_stmt *st = NULL;
    int64_t before = INT64_MAX;
    size_t n = 0;
    int rc;

    if ((rc = prep(s,
                   "SELECT " INC_COLS " FROM incidents WHERE"
                   " (?1 IS NULL OR state = ?1) AND (?2 = 0 OR priority = ?2)"
                   " AND (?3 IS NULL OR host = ?3) AND (?4 = 0 OR id = ?4)"
                   " AND (?5 = 0 OR silenced != 0) AND id < ?6"
                   " ORDER BY id DESC LIMIT ?7",
                   &st)) < 0)
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
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct incident *in = &rows[n++];

            row_incident(st, in);
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
            rc = cb(&rows[i], arg);
        if (rc != 0 || n < LIST_CHUNK)
            goto out;
        before = rows[n - 1].id;
        for (size_t i = 0; i < n; i++)
            incident_free_strs(&rows[i]);
        n = 0;
    }
out:
    for (size_t i = 0; i < n; i++)
        incident_free_strs(&rows[i]);
    free(rows);
    sqlite3_finalize(st);
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

/*
 * Replay (tocsinctl replay). The scratch store is an in-memory SQLite
 * database with the live file's own CREATE statements for the incident
 * tables, written through write_changes like the live step, so that the
 * comparison is of rows, not of two code paths.
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
                   " name IN ('incidents', 'timeline', 'incident_fps')",
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

int
incidents_store_replay(struct incidents_store *s,
                       const struct incident_config *cfg,
                       int (*cb)(const struct incidents_diff *d, void *arg),
                       void *arg, struct incidents_replay_stats *stats)
{
    struct replay r = {s, NULL, cb, arg, stats};
    struct incident_engine *e = incident_engine_new(cfg);
    struct incidents_watermark wm = {0}, upto, to;
    sqlite3_stmt *steps = NULL, *ares = NULL;
    int rc, more;

    memset(stats, 0, sizeof(*stats));
    s->fed_batches = 0;
    if ((rc = scratch_open(s, &r.scratch)) < 0)
        goto out;
    /*
     * One read transaction: the step log, the inputs and the live rows
     * are of one snapshot while the collector goes on stepping.
     */
    if ((rc = exec(s, "BEGIN")) < 0 || (rc = exec(r.scratch, "BEGIN")) < 0)
        goto out;
    if ((rc = prep(s,
                   "SELECT step, batch_to, action_to, tick FROM engine_steps"
                   " ORDER BY step",
                   &steps)) < 0 ||
        (rc = prep(s, "SELECT incident_id, result FROM actions WHERE id = ?1",
                   &ares)) < 0)
        goto out;
    while ((rc = sqlite3_step(steps)) == SQLITE_ROW) {
        upto.step = sqlite3_column_int64(steps, 0);
        upto.batch_to = sqlite3_column_int64(steps, 1);
        upto.action_to = sqlite3_column_int64(steps, 2);
        if ((rc = feed(s, e, &wm, &upto, UINT32_MAX, &to, &more)) < 0 ||
            (rc = diff_results(&r, ares)) != 0)
            goto out;
        incident_engine_tick(e, sqlite3_column_int64(steps, 3));
        if ((rc = write_changes(r.scratch, e)) != 0) {
            snprintf(s->errmsg, sizeof(s->errmsg), "scratch: %.200s",
                     r.scratch->errmsg);
            goto out;
        }
        stats->steps++;
        wm = upto;
    }
    if (rc != SQLITE_DONE) {
        rc = fail(s, rc);
        goto out;
    }
    /* The steps' ranges of the log follow each other from 0. */
    stats->batches = s->fed_batches;
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
                         1, 0, &stats->fps)) != 0)
        goto out;
out:
    sqlite3_finalize(steps);
    sqlite3_finalize(ares);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    incidents_store_close(r.scratch);
    incident_engine_free(e);
    return rc < 0 ? rc : rc != 0 ? -EIO : 0;
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
