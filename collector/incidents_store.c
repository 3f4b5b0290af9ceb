/*
 * incidents_store: SQLite side of the incident engine (see
 * incidents_store.h). The schema is created by store.c's migration to
 * version 3; this file only reads and writes those tables.
 */
#include "incidents_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "wire.h"

#define BUSY_TIMEOUT_MS 5000

struct incidents_store {
    sqlite3 *db; /* owned */
    int rdonly;
    char errmsg[256];      /* message behind the last error */
    struct tc_frame frame; /* batch decode memory, reused */
    int64_t *results;      /* owned: action results of a step */
    int64_t *result_ids;   /* owned: their action ids */
    size_t nresults, capresults;
};

static int
sqlerr(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    default:
        return -EIO;
    }
}

static int
fail(struct incidents_store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return sqlerr(rc) ? sqlerr(rc) : -EIO;
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
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
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

/* Read one incidents row (column order of INC_COLS) into in. */
#define INC_COLS                                                               \
    "id, fingerprint, host, rule, kind, state, severity, priority, count,"     \
    " first_seen, last_seen, opened_at, acked_at, resolved_at, closed_at,"     \
    " reopened, tier1"

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
    if ((rc = prep(s, "SELECT fingerprint, attempts, since FROM incident_fps",
                   &st)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_fp fp = {col_text(st, 0),
                                 (uint32_t)sqlite3_column_int64(st, 1),
                                 sqlite3_column_int64(st, 2)};
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

/* Feed batches and actions after wm; the new marks in *to. */
static int
feed(struct incidents_store *s, struct incident_engine *e,
     const struct incidents_watermark *wm, uint32_t max_batches,
     struct incidents_watermark *to, int *more)
{
    struct tc_wire_limits lim = tc_wire_default_limits;
    sqlite3_stmt *st = NULL;
    uint32_t nb = 0;
    int rc;

    /* Stored blobs may exceed a frame (host rewritten), see ctl_events. */
    lim.max_frame = UINT32_MAX;
    *to = *wm;
    *more = 0;
    s->nresults = 0;
    if ((rc = exec(s, "BEGIN")) < 0)
        return rc;
    if ((rc = prep(s,
                   "SELECT id, host, events FROM batches WHERE id > ?1"
                   " ORDER BY id LIMIT ?2",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, wm->batch_to);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_batches + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *host = col_text(st, 1), *err = "?";
        const struct tc_events *evs;

        if (nb == max_batches) {
            *more = 1;
            break;
        }
        nb++;
        to->batch_to = sqlite3_column_int64(st, 0);
        if (tc_event_decode_array(sqlite3_column_blob(st, 2),
                                  (size_t)sqlite3_column_bytes(st, 2), &lim,
                                  &s->frame, &err) < 0) {
            /* Deterministic either way: a bad blob is skipped by replay
             * too. */
            log_warnx("incidents: batch %lld: cannot decode: %s",
                      (long long)to->batch_to, err);
            continue;
        }
        evs = &s->frame.u.events;
        for (uint32_t i = 0; i < evs->n; i++)
            incident_engine_event(e, host, &evs->ev[i]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = fail(s, rc);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    /*
     * Actions come after the batches of the same step: a human acts on
     * what was committed when the step ran, and the step row records
     * that order for replay.
     */
    if ((rc = prep(s,
                   "SELECT id, ts, user, verb, incident_id, text FROM actions"
                   " WHERE id > ?1 ORDER BY id",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, wm->action_to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_action a;
        enum incident_verb verb;
        int r;

        to->action_to = sqlite3_column_int64(st, 0);
        memset(&a, 0, sizeof(a));
        a.ts = sqlite3_column_int64(st, 1);
        a.user = col_text(st, 2);
        a.incident_id = sqlite3_column_int64(st, 4);
        a.text =
            sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : col_text(st, 5);
        if (incident_verb_parse(col_text(st, 3), &verb) < 0) {
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
    w->n++;
    return step_reset(w->s, st);
}

static int
w_fp(void *arg, const struct incident_fp *fp)
{
    struct writer *w = arg;
    sqlite3_stmt *st = fp->attempts ? w->fp_up : w->fp_del;

    sqlite3_bind_text(st, 1, fp->fingerprint, -1, SQLITE_STATIC);
    if (fp->attempts) {
        sqlite3_bind_int64(st, 2, fp->attempts);
        sqlite3_bind_int64(st, 3, fp->since);
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

int
incidents_store_step(struct incidents_store *s, struct incident_engine *e,
                     struct incidents_watermark *wm, int64_t now,
                     uint32_t max_batches, int *more)
{
    static const struct incident_sink sink = {w_inc, w_fp, w_note};
    struct incidents_watermark to;
    struct writer w = {.s = s};
    sqlite3_stmt *st = NULL;
    int rc;

    if (s->rdonly)
        return -EROFS;
    if ((rc = feed(s, e, wm, max_batches, &to, more)) < 0)
        return rc;
    incident_engine_tick(e, now);
    /* An idle tick that changed nothing leaves no row: replay without
     * it reaches the same state. */
    if (to.batch_to == wm->batch_to && to.action_to == wm->action_to &&
        !incident_engine_pending(e))
        return 0;

    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        return rc;
    if ((rc = prep(s,
                   "INSERT OR REPLACE INTO incidents(" INC_COLS ")"
                   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
                   "?15,?16,?17)",
                   &w.inc)) < 0 ||
        (rc = prep(s,
                   "INSERT OR REPLACE INTO incident_fps(fingerprint,"
                   " attempts, since) VALUES(?1,?2,?3)",
                   &w.fp_up)) < 0 ||
        (rc = prep(s, "DELETE FROM incident_fps WHERE fingerprint = ?1",
                   &w.fp_del)) < 0 ||
        (rc = prep(s,
                   "INSERT INTO timeline(incident_id, ts, what, who, detail)"
                   " VALUES(?1,?2,?3,?4,?5)",
                   &w.note)) < 0)
        goto out;
    if ((rc = incident_engine_drain(e, &sink, &w)) != 0)
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
    sqlite3_finalize(w.inc);
    sqlite3_finalize(w.fp_up);
    sqlite3_finalize(w.fp_del);
    sqlite3_finalize(w.note);
    sqlite3_finalize(st);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc < 0 ? rc : rc != 0 ? -EIO : 0;
}

int
incidents_store_list(struct incidents_store *s,
                     const struct incidents_filter *f,
                     int (*cb)(const struct incident *in, void *arg), void *arg)
{
    sqlite3_stmt *st = NULL;
    struct incident in;
    int rc;

    if ((rc = prep(s,
                   "SELECT " INC_COLS " FROM incidents WHERE"
                   " (?1 IS NULL OR state = ?1) AND (?2 = 0 OR priority = ?2)"
                   " AND (?3 IS NULL OR host = ?3) AND (?4 = 0 OR id = ?4)"
                   " ORDER BY id DESC",
                   &st)) < 0)
        return rc;
    if (f->state)
        sqlite3_bind_text(st, 1, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, f->priority);
    if (f->host)
        sqlite3_bind_text(st, 3, f->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, f->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_incident(st, &in);
        if ((rc = cb(&in, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_timeline(struct incidents_store *s, int64_t id,
                         int (*cb)(const struct incident_note *n, void *arg),
                         void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT ts, what, who, detail FROM timeline"
                   " WHERE incident_id = ?1 ORDER BY id",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct incident_note n = {id, sqlite3_column_int64(st, 0),
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
