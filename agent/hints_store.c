/*
 * hints_store: the agent's received hints in its state database; see
 * hints_store.h.
 *
 * Table (created by the first read-write open, in spool.db):
 *   hints(id INTEGER PRIMARY KEY, agent, incident, problem, source,
 *         title, body, action, issued, sig BLOB, signed BLOB,
 *         state, stored_at, updated_at)
 * id is the hint's uint64 id stored as its int64 bit pattern. signed
 * holds the exact bytes the signature covers (tc_hintsig_message): a
 * redelivery is "the same hint" when those bytes are equal, whatever
 * the signature (Ed25519 is deterministic, but a collector may re-sign
 * with a new key). The action's parameters are read back from signed,
 * which lists them sorted by key, so they are kept in one place only.
 *
 * The table lives in the spool's database, as the brief for hints asks,
 * but behind its own connection: hint writes are rare and small, and a
 * connection of its own keeps them out of the spool's prepared
 * statements and transactions. The spool's worker checkpoints the WAL
 * for both. The columns are created with IF NOT EXISTS; a later change
 * to them brings a version of its own.
 */
#include "hints_store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "hintsig.h"
#include "log.h"
#include "spool.h"
#include "util.h"

struct hints_store {
    sqlite3 *db;      /* owned */
    char *path;       /* state_dir/spool.db; owned */
    int readonly;     /* 1: the CLI's handle */
    int present;      /* the hints table exists (read-only handles) */
    int64_t max_rows; /* rows kept at most; HINTS_STORE_MAX */
};

static const char *const hints_states[] = {"new",  "shown",  "running",
                                           "done", "failed", "refused"};

int
hints_store_state_valid(const char *state)
{
    for (size_t i = 0; i < sizeof(hints_states) / sizeof(hints_states[0]); i++)
        if (strcmp(state, hints_states[i]) == 0)
            return 1;
    return 0;
}

static int
hints_fail(struct hints_store *s, const char *what, int rc)
{
    log_warnx("hints %s: %s: %s", s->path, what,
              s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    return spool_errno(rc);
}

static int
hints_exec(struct hints_store *s, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        log_warnx("hints %s: %s", s->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return spool_errno(rc);
    }
    return 0;
}

static void
hints_rollback(struct hints_store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int
hints_store_open(const char *state_dir, int readonly, struct hints_store **out)
{
    struct hints_store *s = tc_xcalloc(1, sizeof(*s));
    sqlite3_stmt *st = NULL;
    int rc;

    *out = NULL;
    s->readonly = readonly;
    s->max_rows = HINTS_STORE_MAX;
    s->path = tc_xasprintf("%s/spool.db", state_dir);
    if (readonly && access(s->path, F_OK) < 0) {
        /* No agent has run here yet: no hints either. */
        *out = s;
        return 0;
    }
    rc = sqlite3_open_v2(s->path, &s->db,
                         readonly ? SQLITE_OPEN_READONLY
                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         NULL);
    if (rc != SQLITE_OK) {
        rc = hints_fail(s, "open", rc);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* The spool's settings for the same file; the spool's worker
     * checkpoints (spool.h), so this connection never does. */
    if ((rc = hints_exec(s, readonly ? "PRAGMA busy_timeout = 1000;"
                                     : "PRAGMA busy_timeout = 1000;"
                                       "PRAGMA journal_mode = WAL;"
                                       "PRAGMA synchronous = NORMAL;"
                                       "PRAGMA wal_autocheckpoint = 0;")) < 0)
        goto fail;
    if (!readonly) {
        rc = hints_exec(
            s, "CREATE TABLE IF NOT EXISTS hints(id INTEGER PRIMARY KEY,"
               " agent TEXT NOT NULL, incident TEXT NOT NULL,"
               " problem INTEGER NOT NULL, source TEXT NOT NULL,"
               " title TEXT NOT NULL, body TEXT NOT NULL,"
               " action TEXT NOT NULL, issued INTEGER NOT NULL,"
               " sig BLOB NOT NULL, signed BLOB NOT NULL,"
               " state TEXT NOT NULL, stored_at INTEGER NOT NULL,"
               " updated_at INTEGER NOT NULL)");
        if (rc < 0)
            goto fail;
        s->present = 1;
    } else {
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT 1 FROM sqlite_master WHERE "
                                "type = 'table' AND name = 'hints'",
                                -1, &st, NULL);
        if (rc != SQLITE_OK) {
            rc = hints_fail(s, "read the schema", rc);
            goto fail;
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            rc = hints_fail(s, "read the schema", rc);
            goto fail;
        }
        s->present = rc == SQLITE_ROW;
        sqlite3_finalize(st);
        st = NULL;
    }
    *out = s;
    return 0;
fail:
    sqlite3_finalize(st);
    hints_store_free(s);
    return rc < 0 ? rc : -EIO;
}

void
hints_store_set_max(struct hints_store *s, uint32_t max_rows)
{
    s->max_rows = max_rows;
}

void
hints_store_free(struct hints_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

void
hints_store_hint_clear(struct agent_hint *h)
{
    free(h->agent);
    free(h->incident);
    free(h->source);
    free(h->title);
    free(h->text);
    free(h->action);
    for (uint32_t i = 0; i < h->nparams; i++) {
        free(h->params[i].key);
        free(h->params[i].val);
    }
    free(h->params);
    memset(h, 0, sizeof(*h));
}

static void
bind_str(sqlite3_stmt *st, int i, struct tc_str v)
{
    sqlite3_bind_text(st, i, v.len ? v.ptr : "", (int)v.len, SQLITE_STATIC);
}

/* Compare stored signed bytes of id with msg: 1 same, 0 other, <0. */
static int
hints_same(struct hints_store *s, uint64_t id, const uint8_t *msg, size_t len,
           int *found)
{
    sqlite3_stmt *st = NULL;
    int rc, same = 0;

    *found = 0;
    rc = sqlite3_prepare_v2(s->db, "SELECT signed FROM hints WHERE id = ?", -1,
                            &st, NULL);
    if (rc != SQLITE_OK)
        return hints_fail(s, "look up a hint", rc);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *found = 1;
        same = n == len && (n == 0 || memcmp(p, msg, n) == 0);
        rc = SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        rc = hints_fail(s, "look up a hint", rc);
    else
        rc = same;
    sqlite3_finalize(st);
    return rc;
}

static int
hints_count(struct hints_store *s, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM hints", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hints_fail(s, "count hints", rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = hints_fail(s, "count hints", rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int
hints_store_put(struct hints_store *s, const struct tc_hint *h, int64_t now_ns)
{
    sqlite3_stmt *st = NULL;
    struct tc_buf msg;
    int64_t n = 0;
    int rc, found;

    if (s->readonly || s->db == NULL)
        return -EROFS;
    tc_buf_init(&msg, TC_HINTSIG_MSG_MAX);
    if ((rc = tc_hintsig_message(h, &msg)) < 0)
        goto out;
    if ((rc = hints_exec(s, "BEGIN IMMEDIATE")) < 0)
        goto out;
    rc = hints_same(s, h->id, tc_buf_head(&msg), tc_buf_size(&msg), &found);
    if (rc < 0)
        goto out;
    if (found) {
        rc = rc == 1 ? 1 : -EEXIST;
        goto out;
    }
    if ((rc = hints_count(s, &n)) < 0)
        goto out;
    if (n >= s->max_rows) {
        rc = -ENOSPC;
        goto out;
    }
    rc = sqlite3_prepare_v2(
        s->db,
        "INSERT INTO hints(id, agent, incident, problem, source, title, body,"
        " action, issued, sig, signed, state, stored_at, updated_at)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?)",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = hints_fail(s, "store a hint", rc);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)h->id);
    bind_str(st, 2, h->agent);
    bind_str(st, 3, h->incident);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)h->problem);
    bind_str(st, 5, h->source);
    bind_str(st, 6, h->title);
    bind_str(st, 7, h->text);
    bind_str(st, 8, h->action);
    sqlite3_bind_int64(st, 9, h->issued);
    sqlite3_bind_blob(st, 10, h->sig.len ? h->sig.ptr : "", (int)h->sig.len,
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, tc_buf_head(&msg), (int)tc_buf_size(&msg),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, now_ns);
    sqlite3_bind_int64(st, 13, now_ns);
    if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
        rc = hints_fail(s, "store a hint", rc);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* The ack follows this commit: the hint is durable when acked. */
    if ((rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        rc = hints_fail(s, "commit a hint", rc);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    if (s->db != NULL)
        hints_rollback(s);
    tc_buf_close(&msg);
    return rc;
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/*
 * Read one length-prefixed string of the signed bytes at *at; NULL if
 * it runs past n.
 */
static const uint8_t *
signed_str(const uint8_t *p, size_t n, size_t *at, uint32_t *len)
{
    const uint8_t *v;

    if (n - *at < 4)
        return NULL;
    *len = get_u32(p + *at);
    *at += 4;
    if (n - *at < *len)
        return NULL;
    v = p + *at;
    *at += *len;
    return v;
}

/*
 * The params from the signed bytes (hintsig.h; docs/protocol.md): skip
 * the domain, id, agent, incident, problem, source, title, text and
 * action, then read the count and the sorted pairs. -EPROTO if damaged.
 */
static int
signed_params(const uint8_t *p, size_t n, struct agent_hint *h)
{
    size_t at = TC_HINTSIG_DOMAIN_LEN + 8;
    uint32_t len, cnt;
    const uint8_t *v;

    if (p == NULL || n < at)
        return -EPROTO;
    /* agent, incident */
    for (int i = 0; i < 2; i++)
        if (signed_str(p, n, &at, &len) == NULL)
            return -EPROTO;
    /* problem */
    if (n - at < 8)
        return -EPROTO;
    at += 8;
    /* source, title, text, action */
    for (int i = 0; i < 4; i++)
        if (signed_str(p, n, &at, &len) == NULL)
            return -EPROTO;
    if (n - at < 4)
        return -EPROTO;
    cnt = get_u32(p + at);
    at += 4;
    if (cnt > TC_HINT_MAX_PARAMS)
        return -EPROTO;
    h->params = cnt ? tc_xcalloc(cnt, sizeof(*h->params)) : NULL;
    for (uint32_t i = 0; i < cnt; i++) {
        if ((v = signed_str(p, n, &at, &len)) == NULL)
            return -EPROTO;
        h->params[i].key = tc_xstrndup((const char *)v, len);
        h->nparams = i + 1;
        if ((v = signed_str(p, n, &at, &len)) == NULL)
            return -EPROTO;
        h->params[i].val = tc_xstrndup((const char *)v, len);
    }
    return 0;
}

static char *
col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *p = sqlite3_column_text(st, i);

    return tc_xstrndup(p ? (const char *)p : "",
                       (size_t)sqlite3_column_bytes(st, i));
}

#define HINTS_COLS                                                             \
    "id, agent, incident, problem, source, title, body, action, issued,"       \
    " state, stored_at, updated_at, signed"

static int
hints_row(sqlite3_stmt *st, struct agent_hint *h)
{
    const unsigned char *state;

    memset(h, 0, sizeof(*h));
    h->id = (uint64_t)sqlite3_column_int64(st, 0);
    h->agent = col_str(st, 1);
    h->incident = col_str(st, 2);
    h->problem = (uint64_t)sqlite3_column_int64(st, 3);
    h->source = col_str(st, 4);
    h->title = col_str(st, 5);
    h->text = col_str(st, 6);
    h->action = col_str(st, 7);
    h->issued = sqlite3_column_int64(st, 8);
    state = sqlite3_column_text(st, 9);
    snprintf(h->state, sizeof(h->state), "%s",
             state ? (const char *)state : "");
    h->stored_at = sqlite3_column_int64(st, 10);
    h->updated_at = sqlite3_column_int64(st, 11);
    return signed_params(sqlite3_column_blob(st, 12),
                         (size_t)sqlite3_column_bytes(st, 12), h);
}

int
hints_store_get(struct hints_store *s, uint64_t id, struct agent_hint *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (s->db == NULL || !s->present)
        return -ENOENT;
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT " HINTS_COLS " FROM hints"
                            " WHERE id = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hints_fail(s, "read a hint", rc);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if ((rc = hints_row(st, out)) < 0) {
            log_warnx("hints %s: hint %" PRIu64 " is damaged", s->path, id);
            hints_store_hint_clear(out);
        }
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = hints_fail(s, "read a hint", rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int
hints_store_set_state(struct hints_store *s, uint64_t id, const char *state)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!hints_store_state_valid(state))
        return -EINVAL;
    if (s->readonly || s->db == NULL)
        return -EROFS;
    rc = sqlite3_prepare_v2(s->db,
                            "UPDATE hints SET state = ?, updated_at = ?"
                            " WHERE id = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hints_fail(s, "update a hint", rc);
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, tc_now_ns());
    sqlite3_bind_int64(st, 3, (sqlite3_int64)id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        rc = hints_fail(s, "update a hint", rc);
    else
        rc = sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
    sqlite3_finalize(st);
    return rc;
}

int
hints_store_list(struct hints_store *s,
                 int (*cb)(void *arg, const struct agent_hint *h), void *arg)
{
    sqlite3_stmt *st = NULL;
    struct agent_hint h;
    int rc;

    if (s->db == NULL || !s->present)
        return 0;
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT " HINTS_COLS " FROM hints"
                            " ORDER BY stored_at, id",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return hints_fail(s, "list hints", rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = hints_row(st, &h)) < 0) {
            log_warnx("hints %s: hint %" PRIu64 " is damaged", s->path, h.id);
            hints_store_hint_clear(&h);
            goto out;
        }
        rc = cb(arg, &h);
        hints_store_hint_clear(&h);
        if (rc < 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : hints_fail(s, "list hints", rc);
out:
    sqlite3_finalize(st);
    return rc;
}
