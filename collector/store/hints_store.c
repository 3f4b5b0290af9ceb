/*
 * hints_store: the hints an engine step decides, and the runbook set
 * they are decided with, in the engine state (docs/runbooks.md,
 * "Dispatch"; docs/internals/hints.md, "Collector side").
 *
 * The runbook set is an engine input: the collector records its files
 * (runbook_sets) and an action "runbooks" naming that row, so that the
 * step takes it up in action order and replay, and a restart, parse the
 * very same files again. The step captures what dispatch needs while
 * it feeds and drains (the event that opened an incident, links made,
 * known errors), then, after the problem drain, asks the pure
 * dispatcher (engine/dispatch.c) and writes its hints in the step's
 * transaction: the UNIQUE key refuses one already decided.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dispatch.h"
#include "log.h"
#include "runbooks/runbooks.h"
#include "store/incidents_int.h"
#include "util.h"

/*
 * Version 9: hints. runbook_sets holds each recorded runbook set (hash:
 * the set's hash in hex; blob: its files, runbooks.h), applied by the
 * action "runbooks" whose incident_id is the row's id. hints: every
 * hint decided, id increasing (the wire's hint id); key is the dedupe
 * key (source | problem or incident | agent); issued is the step's
 * engine time. hint_delivery is the network side's, not engine state:
 * replay neither writes nor compares it.
 */
const char hints_schema_v9[] = "CREATE TABLE runbook_sets("
                               " id INTEGER PRIMARY KEY,"
                               " hash TEXT NOT NULL,"
                               " files INTEGER NOT NULL,"
                               " blob BLOB NOT NULL);"
                               "CREATE TABLE hints("
                               " id INTEGER PRIMARY KEY,"
                               " key TEXT NOT NULL UNIQUE,"
                               " agent TEXT NOT NULL,"
                               " incident_id INTEGER NOT NULL,"
                               " problem_id INTEGER NOT NULL,"
                               " source TEXT NOT NULL,"
                               " title TEXT NOT NULL,"
                               " text TEXT NOT NULL,"
                               " action TEXT,"
                               " params TEXT NOT NULL,"
                               " note TEXT NOT NULL DEFAULT '',"
                               " issued INTEGER NOT NULL);"
                               "CREATE INDEX hints_agent ON hints(agent, id);"
                               "CREATE TABLE hint_delivery("
                               " hint_id INTEGER PRIMARY KEY,"
                               " agent TEXT NOT NULL,"
                               " sent_at INTEGER NOT NULL DEFAULT 0,"
                               " acked_at INTEGER NOT NULL DEFAULT 0,"
                               " attempts INTEGER NOT NULL DEFAULT 0,"
                               " last_error TEXT NOT NULL DEFAULT '');";

/*
 * Version 10: the labels and fields of the event that opened each
 * incident (blobs: per pair a 4-byte big-endian length and the key,
 * the same for the value), written by the step that opened it. A
 * problem's hint to a host is filled from that host's own incident,
 * which usually opened in an earlier step than the link that triggers
 * the dispatch (the first host to name a dependency waits for a
 * second): without this its {field.X} could not be filled. Engine
 * state, so a restart and replay fill the same parameters.
 */
const char hints_schema_v10[] = "CREATE TABLE hint_subjects("
                                " incident_id INTEGER PRIMARY KEY,"
                                " labels BLOB NOT NULL,"
                                " fields BLOB NOT NULL);";

static void
kvs_free(struct runbook_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

static struct runbook_kv *
kvs_copy(const struct tc_kv *src, uint32_t n)
{
    struct runbook_kv *v;

    if (n == 0)
        return NULL;
    v = tc_xcalloc(n, sizeof(*v));
    for (uint32_t i = 0; i < n; i++) {
        v[i].key =
            tc_xstrndup(src[i].key.ptr ? src[i].key.ptr : "", src[i].key.len);
        v[i].val =
            tc_xstrndup(src[i].val.ptr ? src[i].val.ptr : "", src[i].val.len);
    }
    return v;
}

void
hints_feed_reset(struct incidents_store *s)
{
    for (size_t i = 0; i < s->nhevs; i++) {
        kvs_free(s->hevs[i].labels, s->hevs[i].nlabels);
        kvs_free(s->hevs[i].fields, s->hevs[i].nfields);
    }
    s->nhevs = 0;
}

void
hints_drain_reset(struct incidents_store *s)
{
    s->nhopened = 0;
    s->nhlinks = 0;
}

void
hints_store_free(struct incidents_store *s)
{
    hints_feed_reset(s);
    free(s->hevs);
    free(s->hopened);
    free(s->hlinks);
    free(s->hnew);
    runbook_set_unref(s->runbooks);
}

static const struct hint_ev *
hev_find(const struct incidents_store *s, int64_t incident)
{
    for (size_t i = 0; i < s->nhevs; i++)
        if (s->hevs[i].incident_id == incident)
            return &s->hevs[i];
    return NULL;
}

void
hints_feed_event(struct incidents_store *s, const struct incident_engine *e,
                 const struct tc_event *ev)
{
    int64_t id = incident_engine_last(e);
    const struct incident *in;
    struct hint_ev *h;

    if (id == 0 || (in = incident_engine_get(e, id)) == NULL)
        return;
    /* Its first event: the one that opened it (a reopen keeps its
     * count, and dispatch does not act on reopens). */
    if (in->count != ev->count || hev_find(s, id) != NULL)
        return;
    if (s->nhevs == s->caphevs) {
        s->caphevs = s->caphevs ? s->caphevs * 2 : 16;
        s->hevs = tc_xreallocarray(s->hevs, s->caphevs, sizeof(*s->hevs));
    }
    h = &s->hevs[s->nhevs++];
    h->incident_id = id;
    h->labels = kvs_copy(ev->labels, ev->nlabels);
    h->nlabels = ev->nlabels;
    h->fields = kvs_copy(ev->fields, ev->nfields);
    h->nfields = ev->nfields;
}

void
hints_note_opened(struct incidents_store *s, int64_t incident)
{
    if (s->nhopened == s->caphopened) {
        s->caphopened = s->caphopened ? s->caphopened * 2 : 16;
        s->hopened =
            tc_xreallocarray(s->hopened, s->caphopened, sizeof(*s->hopened));
    }
    s->hopened[s->nhopened++] = incident;
}

void
hints_note_link(struct incidents_store *s, int64_t incident, int64_t problem)
{
    if (s->nhlinks == s->caphlinks) {
        s->caphlinks = s->caphlinks ? s->caphlinks * 2 : 16;
        s->hlinks =
            tc_xreallocarray(s->hlinks, s->caphlinks, sizeof(*s->hlinks));
    }
    s->hlinks[s->nhlinks].incident_id = incident;
    s->hlinks[s->nhlinks++].problem_id = problem;
}

/* ---- the runbook set, an input ------------------------------------------ */

/* The set of runbook_sets row id into s->runbooks. */
int
hints_runbooks_apply(struct incidents_store *s, int64_t id)
{
    struct runbook_set *set = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s, "SELECT blob FROM runbook_sets WHERE id = ?1", &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = runbooks_from_blob(sqlite3_column_blob(st, 0),
                                (size_t)sqlite3_column_bytes(st, 0), &set);
        if (rc == 0) {
            runbook_set_unref(s->runbooks);
            s->runbooks = set;
        }
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The set in force after action action_to (load; inside its read). */
int
hints_runbooks_restore(struct incidents_store *s, int64_t action_to)
{
    sqlite3_stmt *st = NULL;
    int rc;

    runbook_set_unref(s->runbooks);
    s->runbooks = NULL;
    if ((rc = prep(s,
                   "SELECT incident_id FROM actions WHERE verb = 'runbooks'"
                   " AND id <= ?1 AND result = 0 ORDER BY id DESC LIMIT 1",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, action_to);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);

        sqlite3_finalize(st);
        return hints_runbooks_apply(s, id);
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_runbooks_record(struct incidents_store *s,
                                const struct runbook_set *set, int64_t now,
                                int *recorded)
{
    char hash[17];
    sqlite3_stmt *st = NULL;
    int rc;

    *recorded = 0;
    if (s->rdonly)
        return -EROFS;
    snprintf(hash, sizeof(hash), "%016" PRIx64, set->hash);
    if (s->writer)
        pthread_mutex_lock(s->writer);
    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        goto out;
    if ((rc = prep(s, "SELECT hash FROM runbook_sets ORDER BY id DESC LIMIT 1",
                   &st)) < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW    ? strcmp(col_text(st, 0), hash) == 0
        : rc == SQLITE_DONE ? set->n == 0
                            : 0) {
        /* The set in force already (none recorded: the empty one). */
        rc = 0;
        goto out;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = fail(s, rc);
        goto out;
    }
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "INSERT INTO runbook_sets(hash, files, blob)"
                   " VALUES(?1, ?2, ?3)",
                   &st)) < 0)
        goto out;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)set->n);
    sqlite3_bind_blob(st, 3, set->blob ? (const void *)set->blob : "",
                      (int)set->bloblen, SQLITE_STATIC);
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    sqlite3_finalize(st);
    if ((rc = prep(s,
                   "INSERT INTO actions(ts, user, verb, incident_id)"
                   " VALUES(?1, 'collector', 'runbooks', ?2)",
                   &st)) < 0)
        goto out;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, sqlite3_last_insert_rowid(s->db));
    if ((rc = step_reset(s, st)) < 0)
        goto out;
    rc = exec(s, "COMMIT");
    if (rc == 0)
        *recorded = 1;
out:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (s->writer)
        pthread_mutex_unlock(s->writer);
    return rc;
}

/* ---- the step's half ---------------------------------------------------- */

/* What the subject of one incident holds: strings owned. */
struct subj {
    struct dispatch_subject ds;
    char *host, *cls;
    struct runbook_kv *labels, *fields; /* read back from hint_subjects */
    size_t nlabels, nfields;
};

/* kvs as a hint_subjects blob into b. */
static void
kvs_blob(struct tc_buf *b, const struct runbook_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p[2] = {v[i].key, v[i].val};

        for (int j = 0; j < 2; j++) {
            size_t len = strlen(p[j]);
            uint8_t be[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                             (uint8_t)(len >> 8), (uint8_t)len};

            tc_buf_append(b, be, 4);
            tc_buf_append(b, p[j], len);
        }
    }
}

/* A hint_subjects blob back into *out (owned); a malformed one (which
 * only a hand-edited store holds) is none. The count. */
static size_t
kvs_unblob(const uint8_t *p, size_t len, struct runbook_kv **out)
{
    struct runbook_kv *v = NULL;
    size_t n = 0, cap = 0, off = 0;

    *out = NULL;
    while (off < len) {
        char *kv[2] = {NULL, NULL};

        for (int j = 0; j < 2; j++) {
            size_t l;

            if (len - off < 4)
                goto bad;
            l = (size_t)p[off] << 24 | (size_t)p[off + 1] << 16 |
                (size_t)p[off + 2] << 8 | p[off + 3];
            off += 4;
            if (l > len - off || memchr(p + off, '\0', l) != NULL) {
                if (j == 1)
                    free(kv[0]);
                goto bad;
            }
            kv[j] = tc_xstrndup((const char *)p + off, l);
            off += l;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = tc_xreallocarray(v, cap, sizeof(*v));
        }
        v[n].key = kv[0];
        v[n++].val = kv[1];
    }
    *out = v;
    return n;
bad:
    kvs_free(v, n);
    return 0;
}

/* The opening events captured in feed this step into w's
 * hint_subjects. */
static int
subjects_write(struct incidents_store *w, struct incidents_store *feed)
{
    sqlite3_stmt *st = NULL;
    struct tc_buf lb, fb;
    int rc = 0;

    if (feed->nhevs == 0)
        return 0;
    if ((rc = prep(w,
                   "INSERT OR IGNORE INTO hint_subjects(incident_id, labels,"
                   " fields) VALUES(?1, ?2, ?3)",
                   &st)) < 0)
        return rc;
    /* Bounded by the event's own limits (the decoder's). */
    tc_buf_init(&lb, UINT32_MAX);
    tc_buf_init(&fb, UINT32_MAX);
    for (size_t i = 0; i < feed->nhevs && rc == 0; i++) {
        const struct hint_ev *h = &feed->hevs[i];

        tc_buf_reset(&lb);
        tc_buf_reset(&fb);
        kvs_blob(&lb, h->labels, h->nlabels);
        kvs_blob(&fb, h->fields, h->nfields);
        sqlite3_bind_int64(st, 1, h->incident_id);
        sqlite3_bind_blob(st, 2, lb.data ? tc_buf_head(&lb) : (const void *)"",
                          (int)tc_buf_size(&lb), SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, fb.data ? tc_buf_head(&fb) : (const void *)"",
                          (int)tc_buf_size(&fb), SQLITE_STATIC);
        rc = step_reset(w, st);
    }
    tc_buf_close(&lb);
    tc_buf_close(&fb);
    sqlite3_finalize(st);
    return rc;
}

/* The labels and fields of incident id's opening event from w's
 * hint_subjects into out (none if it has no row). 0 or < 0. */
static int
subject_fields(struct incidents_store *w, int64_t id, struct subj *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(w,
                   "SELECT labels, fields FROM hint_subjects WHERE"
                   " incident_id = ?1",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->nlabels =
            kvs_unblob(sqlite3_column_blob(st, 0),
                       (size_t)sqlite3_column_bytes(st, 0), &out->labels);
        out->nfields =
            kvs_unblob(sqlite3_column_blob(st, 1),
                       (size_t)sqlite3_column_bytes(st, 1), &out->fields);
        out->ds.rs.labels = out->labels;
        out->ds.rs.nlabels = out->nlabels;
        out->ds.rs.fields = out->fields;
        out->ds.rs.nfields = out->nfields;
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? 0 : fail(w, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Incident id's subject from w's tables and feed's captured event. 1:
 * found, 0: no such incident, < 0: error. */
static int
subject_load(struct incidents_store *w, struct incidents_store *feed,
             int64_t id, struct subj *out)
{
    sqlite3_stmt *st = NULL;
    const struct hint_ev *ev;
    enum tc_severity sev = TC_SEV_ERROR;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = prep(w,
                   "SELECT host, fingerprint, severity FROM incidents"
                   " WHERE id = ?1",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE ? 0 : fail(w, rc);
        sqlite3_finalize(st);
        return rc;
    }
    out->host = tc_xstrdup(col_text(st, 0));
    out->cls = tc_xstrdup(problem_class(col_text(st, 1)));
    (void)tc_severity_parse(col_text(st, 2), &sev);
    sqlite3_finalize(st);
    out->ds.incident_id = id;
    out->ds.rs.cls = out->cls;
    out->ds.rs.host = out->host;
    out->ds.rs.severity = (int)sev;
    /* Labels and fields: of the event that opened it, at hand when
     * that was in this step, else as that step kept them. */
    if ((ev = hev_find(feed, id)) != NULL) {
        out->ds.rs.labels = ev->labels;
        out->ds.rs.nlabels = ev->nlabels;
        out->ds.rs.fields = ev->fields;
        out->ds.rs.nfields = ev->nfields;
    } else if ((rc = subject_fields(w, id, out)) < 0) {
        return rc;
    }
    return 1;
}

static void
subj_free(struct subj *s)
{
    free(s->host);
    free(s->cls);
    kvs_free(s->labels, s->nlabels);
    kvs_free(s->fields, s->nfields);
}

/* One host of a problem and its lowest incident there (0: none). */
struct phost {
    char *host; /* owned */
    int64_t incident_id;
};

static int
phost_cmp(const void *a, const void *b)
{
    const struct phost *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    /* A host's incident before the bare root-host entry. */
    if (c != 0)
        return c;
    return (y->incident_id != 0) - (x->incident_id != 0);
}

/* Problem pid from w into p, its hosts (owned, sorted, unique, each
 * with its lowest incident in pid, 0 for the root host when it has
 * none) in *hosts; *first: its lowest incident. 1 found, 0 not, < 0
 * error. */
static int
problem_load(struct incidents_store *w, int64_t pid, struct dispatch_problem *p,
             char **strs, struct phost **hosts, int64_t *first)
{
    sqlite3_stmt *st = NULL;
    struct phost *v = NULL;
    size_t n = 0, cap = 0;
    int rc;

    memset(p, 0, sizeof(*p));
    *hosts = NULL;
    *first = 0;
    if ((rc = prep(w,
                   "SELECT rule, title, state, workaround, root_host,"
                   " root_incident FROM problems WHERE id = ?1",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, pid);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_DONE ? 0 : fail(w, rc);
        sqlite3_finalize(st);
        return rc;
    }
    p->id = pid;
    strs[0] = tc_xstrdup(col_text(st, 0));
    strs[1] = tc_xstrdup(col_text(st, 1));
    strs[2] = tc_xstrdup(col_text(st, 3));
    p->rule = strs[0];
    p->title = strs[1];
    p->known_error = strcmp(col_text(st, 2), "known_error") == 0;
    p->workaround = strs[2];
    if (col_text(st, 4)[0] != '\0') {
        v = tc_xreallocarray(v, ++cap, sizeof(*v));
        v[n].host = tc_xstrdup(col_text(st, 4));
        v[n++].incident_id = 0;
    }
    *first = sqlite3_column_int64(st, 5);
    sqlite3_finalize(st);
    if ((rc = prep(w,
                   "SELECT host, min(id) FROM incidents WHERE problem = ?1"
                   " GROUP BY host",
                   &st)) < 0)
        goto fail;
    sqlite3_bind_int64(st, 1, pid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 1);

        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = tc_xreallocarray(v, cap, sizeof(*v));
        }
        v[n].host = tc_xstrdup(col_text(st, 0));
        v[n++].incident_id = id;
        if (*first == 0 || id < *first)
            *first = id;
    }
    if (rc != SQLITE_DONE) {
        rc = fail(w, rc);
        goto fail;
    }
    sqlite3_finalize(st);
    if (n > 1)
        tc_qsort(v, n, sizeof(*v), phost_cmp);
    /* Unique (the root host is usually an incident's host too: the
     * entry with the incident sorts first and stays). */
    for (size_t i = 1, j = 1; i <= n; i++) {
        if (i == n) {
            n = j;
            break;
        }
        if (strcmp(v[i].host, v[j - 1].host) == 0)
            free(v[i].host);
        else
            v[j++] = v[i];
    }
    *hosts = v;
    p->nhosts = n;
    return 1;
fail:
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++)
        free(v[i].host);
    free(v);
    return rc;
}

/* Write out's hints into w: each new one with its timeline note. */
static int
hints_write(struct incidents_store *w, const struct dispatch_hints *out,
            int64_t now)
{
    sqlite3_stmt *ins = NULL, *note = NULL, *pnote = NULL;
    int rc;

    if (out->n == 0)
        return 0;
    if ((rc = prep(w,
                   "INSERT OR IGNORE INTO hints(key, agent, incident_id,"
                   " problem_id, source, title, text, action, params, note,"
                   " issued) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                   &ins)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO timeline(incident_id, ts, what, who, detail)"
                   " VALUES(?1, ?2, 'hint', ?3, ?4)",
                   &note)) < 0 ||
        (rc = prep(w,
                   "INSERT INTO problem_timeline(problem_id, ts, what, who,"
                   " detail) VALUES(?1, ?2, 'hint', ?3, ?4)",
                   &pnote)) < 0)
        goto out;
    for (size_t i = 0; i < out->n; i++) {
        const struct dispatch_hint *h = &out->v[i];
        sqlite3_stmt *st;
        int64_t id;
        char *detail;

        sqlite3_bind_text(ins, 1, h->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, h->agent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, h->incident_id);
        sqlite3_bind_int64(ins, 4, h->problem_id);
        sqlite3_bind_text(ins, 5, h->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, h->title, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, h->text, -1, SQLITE_STATIC);
        if (h->action)
            sqlite3_bind_text(ins, 8, h->action, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 8);
        sqlite3_bind_text(ins, 9, h->params, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 10, h->note, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 11, now);
        if ((rc = step_reset(w, ins)) < 0)
            goto out;
        if (sqlite3_changes(w->db) == 0)
            continue; /* decided before: the key is taken */
        id = sqlite3_last_insert_rowid(w->db);
        if (w->nhnew == w->caphnew) {
            w->caphnew = w->caphnew ? w->caphnew * 2 : 16;
            w->hnew = tc_xreallocarray(w->hnew, w->caphnew, sizeof(*w->hnew));
        }
        w->hnew[w->nhnew++] = id;
        if (h->incident_id == 0 && h->problem_id == 0)
            continue;
        detail = tc_xasprintf("hint %" PRId64 " for %s: %s%s%s", id, h->agent,
                              h->title, h->note[0] ? " (" : "",
                              h->note[0] ? h->note : "");
        if (h->note[0]) {
            char *d2 = tc_xasprintf("%s)", detail);

            free(detail);
            detail = d2;
        }
        /* On its incident's timeline; a hint to a host with no incident
         * in the problem, on the problem's. */
        st = h->incident_id != 0 ? note : pnote;
        sqlite3_bind_int64(
            st, 1, h->incident_id != 0 ? h->incident_id : h->problem_id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, h->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, detail, -1, SQLITE_TRANSIENT);
        free(detail);
        if ((rc = step_reset(w, st)) < 0)
            goto out;
    }
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(note);
    sqlite3_finalize(pnote);
    return rc;
}

/*
 * dispatch_problem for trigger s and problem p with the subjects of
 * its hosts: each host's own lowest incident in p (the trigger itself
 * for the trigger's host, whose event is at hand), none for a root
 * host with no incident there. 0 or < 0.
 */
static int
problem_dispatch(struct incidents_store *w, struct incidents_store *feed,
                 const struct runbook_set *set, const struct subj *s,
                 struct dispatch_problem *p, const struct phost *hosts,
                 struct dispatch_hints *out)
{
    const char **names = tc_xcalloc(p->nhosts + 1, sizeof(*names));
    const struct dispatch_subject **subs =
        tc_xcalloc(p->nhosts + 1, sizeof(*subs));
    struct subj *own = tc_xcalloc(p->nhosts + 1, sizeof(*own));
    int rc = 0;

    for (size_t i = 0; i < p->nhosts; i++) {
        names[i] = hosts[i].host;
        if (strcmp(hosts[i].host, s->host) == 0) {
            subs[i] = &s->ds;
        } else if (hosts[i].incident_id != 0) {
            if ((rc = subject_load(w, feed, hosts[i].incident_id, &own[i])) < 0)
                goto out;
            if (rc > 0)
                subs[i] = &own[i].ds;
        }
    }
    rc = 0;
    p->hosts = names;
    p->subjects = subs;
    dispatch_problem(set, &s->ds, p, out);
out:
    for (size_t i = 0; i < p->nhosts; i++)
        subj_free(&own[i]);
    free(own);
    free(subs);
    free(names);
    p->hosts = NULL;
    p->subjects = NULL;
    return rc;
}

int
hints_step(struct incidents_store *w, struct incidents_store *feed, int64_t now)
{
    const struct runbook_set *set = feed->runbooks;
    struct dispatch_hints out = {0};
    int rc = 0;

    w->nhnew = 0;
    if ((rc = subjects_write(w, feed)) < 0)
        goto out;
    for (size_t i = 0; i < w->nhopened && set != NULL; i++) {
        struct subj s;

        if ((rc = subject_load(w, feed, w->hopened[i], &s)) < 0)
            goto out;
        if (rc > 0)
            dispatch_incident_opened(set, &s.ds, &out);
        subj_free(&s);
    }
    for (size_t i = 0; i < w->nhlinks; i++) {
        struct dispatch_problem p;
        char *strs[3] = {NULL, NULL, NULL};
        struct phost *hosts = NULL;
        int64_t first, inc = w->hlinks[i].incident_id;
        struct subj s;

        rc = problem_load(w, w->hlinks[i].problem_id, &p, strs, &hosts, &first);
        if (rc > 0 && inc == 0)
            inc = first;
        if (rc > 0 && inc != 0 && (rc = subject_load(w, feed, inc, &s)) > 0) {
            rc = problem_dispatch(w, feed, set, &s, &p, hosts, &out);
            subj_free(&s);
        }
        for (size_t j = 0; j < p.nhosts; j++)
            free(hosts[j].host);
        free(hosts);
        for (int j = 0; j < 3; j++)
            free(strs[j]);
        if (rc < 0)
            goto out;
    }
    rc = hints_write(w, &out, now);
out:
    dispatch_hints_free(&out);
    hints_drain_reset(w);
    return rc < 0 ? rc : 0;
}

/* ---- delivery and queries (not engine state) ---------------------------- */

size_t
incidents_store_step_hints(const struct incidents_store *s)
{
    return s->nhnew;
}

/* The columns of struct hint_row, in its order. */
#define HINT_COLS                                                              \
    "h.id, h.agent, h.incident_id, h.problem_id, h.source, h.title, h.text,"   \
    " h.action, h.params, h.note, h.issued, coalesce(d.sent_at, 0),"           \
    " coalesce(d.acked_at, 0), coalesce(d.attempts, 0),"                       \
    " coalesce(d.last_error, '')"

/* SQL: the hint (h, d as in HINT_COLS) was refused by its agent. */
#define HINT_REFUSED_SQL                                                       \
    "coalesce(d.acked_at, 0) = 0 AND instr(coalesce(d.last_error, ''), "       \
    "'" HINT_REFUSED_PREFIX "') = 1"

static void
hint_row(sqlite3_stmt *st, struct hint_row *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->agent = col_text(st, 1);
    r->incident_id = sqlite3_column_int64(st, 2);
    r->problem_id = sqlite3_column_int64(st, 3);
    r->source = col_text(st, 4);
    r->title = col_text(st, 5);
    r->text = col_text(st, 6);
    r->action =
        sqlite3_column_type(st, 7) == SQLITE_NULL ? NULL : col_text(st, 7);
    r->params = col_text(st, 8);
    r->note = col_text(st, 9);
    r->issued = sqlite3_column_int64(st, 10);
    r->sent_at = sqlite3_column_int64(st, 11);
    r->acked_at = sqlite3_column_int64(st, 12);
    r->attempts = sqlite3_column_int64(st, 13);
    r->error = col_text(st, 14);
}

static int
hints_query(struct incidents_store *s, const char *sql, const char *agent,
            int64_t after, int64_t max,
            int (*cb)(const struct hint_row *r, void *arg), void *arg)
{
    sqlite3_stmt *st = NULL;
    int own = sqlite3_get_autocommit(s->db);
    int rc, stop = 0;

    if ((rc = prep(s, sql, &st)) < 0)
        return rc;
    if (agent)
        sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, max);
    (void)own;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct hint_row r;

        hint_row(st, &r);
        /* A callback's stop is its own value, not a SQLite code. */
        if ((stop = cb(&r, arg)) != 0)
            break;
    }
    rc = stop != 0 ? stop : rc == SQLITE_DONE ? 0 : fail(s, rc);
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_hints_pending(struct incidents_store *s, const char *agent,
                              int64_t after, size_t max,
                              int (*cb)(const struct hint_row *r, void *arg),
                              void *arg)
{
    return hints_query(s,
                       "SELECT " HINT_COLS " FROM hints h LEFT JOIN"
                       " hint_delivery d ON d.hint_id = h.id"
                       " WHERE (?1 IS NULL OR h.agent = ?1) AND h.id > ?2"
                       " AND coalesce(d.acked_at, 0) = 0"
                       " ORDER BY h.id LIMIT ?3",
                       agent, after, (int64_t)max, cb, arg);
}

int
incidents_store_hints_max(struct incidents_store *s, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *id = 0;
    if ((rc = prep(s, "SELECT coalesce(max(id), 0) FROM hints", &st)) < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_hints_unacked(struct incidents_store *s, uint64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *n = 0;
    if ((rc = prep(s,
                   "SELECT count(*) FROM hints h LEFT JOIN hint_delivery d"
                   " ON d.hint_id = h.id WHERE coalesce(d.acked_at, 0) = 0",
                   &st)) < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_hints_mark(struct incidents_store *s, const struct hint_mark *m,
                           size_t n)
{
    sqlite3_stmt *sent = NULL, *ack = NULL, *refused = NULL;
    int rc;

    if (n == 0)
        return 0;
    if (s->writer)
        pthread_mutex_lock(s->writer);
    if ((rc = exec(s, "BEGIN IMMEDIATE")) < 0)
        goto out;
    if ((rc = prep(s,
                   "INSERT INTO hint_delivery(hint_id, agent, sent_at,"
                   " attempts, last_error) VALUES(?1, ?2, ?3, 1, ?4)"
                   " ON CONFLICT(hint_id) DO UPDATE SET sent_at = ?3,"
                   " attempts = attempts + 1, last_error = ?4",
                   &sent)) < 0 ||
        (rc = prep(s,
                   "INSERT INTO hint_delivery(hint_id, agent, acked_at)"
                   " VALUES(?1, ?2, ?3) ON CONFLICT(hint_id) DO UPDATE SET"
                   " acked_at = ?3, last_error = ''",
                   &ack)) < 0 ||
        /* ?3 (ts) is bound but not used: the row keeps its sent_at. */
        (rc = prep(s,
                   "INSERT INTO hint_delivery(hint_id, agent, last_error)"
                   " VALUES(?1, ?2, ?4) ON CONFLICT(hint_id) DO UPDATE SET"
                   " last_error = ?4 WHERE acked_at = 0",
                   &refused)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = m[i].acked ? ack : m[i].refused ? refused : sent;

        sqlite3_bind_int64(st, 1, m[i].hint_id);
        sqlite3_bind_text(st, 2, m[i].agent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, m[i].ts);
        if (!m[i].acked)
            sqlite3_bind_text(st, 4, m[i].error ? m[i].error : "", -1,
                              SQLITE_STATIC);
        if ((rc = step_reset(s, st)) < 0)
            goto out;
    }
    rc = exec(s, "COMMIT");
out:
    sqlite3_finalize(sent);
    sqlite3_finalize(ack);
    sqlite3_finalize(refused);
    if (rc < 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (s->writer)
        pthread_mutex_unlock(s->writer);
    return rc;
}

int
incidents_store_hints(struct incidents_store *s, const struct hints_filter *f,
                      int (*cb)(const struct hint_row *r, void *arg), void *arg)
{
    const char *state = f->state ? f->state : "";
    char sql[1024];

    /* state: pending = never acked and never sent; sent = sent, not
     * acked, not refused; acked; refused = the agent refused it (and it
     * was not sent again since). */
    snprintf(
        sql, sizeof(sql),
        "SELECT " HINT_COLS " FROM hints h LEFT JOIN hint_delivery d"
        " ON d.hint_id = h.id WHERE (?1 IS NULL OR h.agent = ?1)"
        " AND h.id %s ?2 %s ORDER BY h.id %s LIMIT ?3",
        f->newest ? "<" : ">",
        strcmp(state, "pending") == 0   ? "AND coalesce(d.acked_at, 0) = 0 AND"
                                          " coalesce(d.sent_at, 0) = 0"
        : strcmp(state, "sent") == 0    ? "AND coalesce(d.acked_at, 0) = 0 AND"
                                          " coalesce(d.sent_at, 0) != 0 AND"
                                          " NOT (" HINT_REFUSED_SQL ")"
        : strcmp(state, "acked") == 0   ? "AND coalesce(d.acked_at, 0) != 0"
        : strcmp(state, "refused") == 0 ? "AND " HINT_REFUSED_SQL
                                        : "",
        f->newest ? "DESC" : "");
    return hints_query(s, sql, f->agent,
                       f->newest && f->after <= 0 ? INT64_MAX : f->after,
                       INT64_MAX, cb, arg);
}
