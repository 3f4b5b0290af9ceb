/*
 * tokens_store: API tokens, schema 11 (tokens_store.h).
 */
#include "store/tokens_store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/incidents_int.h"
#include "store/incidents_store.h"

/*
 * Version 10: api_tokens. hash is the SHA-256 of the token (32 bytes);
 * the token itself is shown once by tocsinctl and never stored. A
 * revoked row stays (revoked_at) so the list says who had access; a
 * name is unique among live tokens only, so it can be issued again.
 */
const char tokens_schema_v11[] =
    "CREATE TABLE api_tokens("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " hash BLOB NOT NULL,"
    " created INTEGER NOT NULL,"
    " user TEXT NOT NULL DEFAULT '',"
    " revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX api_tokens_live ON api_tokens(name)"
    " WHERE revoked_at = 0;";

static const char *const role_names[] = {
    [TOKEN_ROLE_VIEWER] = "viewer",
    [TOKEN_ROLE_OPERATOR] = "operator",
    [TOKEN_ROLE_ADMIN] = "admin",
};

const char *
token_role_name(enum token_role r)
{
    return r >= TOKEN_ROLE_VIEWER && r <= TOKEN_ROLE_ADMIN ? role_names[r]
                                                           : "?";
}

int
token_role_parse(const char *s, enum token_role *out)
{
    for (int r = TOKEN_ROLE_VIEWER; r <= TOKEN_ROLE_ADMIN; r++)
        if (strcmp(s, role_names[r]) == 0) {
            *out = (enum token_role)r;
            return 0;
        }
    return -EINVAL;
}

int
token_name_check(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > TOKEN_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return -EINVAL;
    }
    return 0;
}

int
incidents_store_token_add(struct incidents_store *s, const char *name,
                          enum token_role role,
                          const uint8_t hash[TC_TOKEN_HASH_LEN], int64_t now,
                          const char *user)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "INSERT INTO api_tokens(name, role, hash, created, user)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
                   &st)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, token_role_name(role), -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, TC_TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, user ? user : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "a live token is already named '%s'", name);
        rc = -EEXIST;
    } else {
        rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_token_revoke(struct incidents_store *s, const char *name,
                             int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "UPDATE api_tokens SET revoked_at = ?2"
                   " WHERE name = ?1 AND revoked_at = 0",
                   &st)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now > 0 ? now : 1);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        rc = fail(s, rc);
    else if (sqlite3_changes(s->db) == 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "no live token named '%s'",
                 name);
        rc = -ENOENT;
    } else
        rc = 0;
    sqlite3_finalize(st);
    return rc;
}

/* Few rows (people and scripts): read in one statement, no paging. */
int
incidents_store_tokens(struct incidents_store *s, int all,
                       int (*cb)(const struct token_row *r, void *arg),
                       void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prep(s,
                   "SELECT id, name, role, created, user, revoked_at"
                   " FROM api_tokens WHERE ?1 OR revoked_at = 0 ORDER BY id",
                   &st)) < 0)
        return rc;
    sqlite3_bind_int(st, 1, all);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct token_row r = {
            .id = sqlite3_column_int64(st, 0),
            .name = col_text(st, 1),
            .role = TOKEN_ROLE_VIEWER,
            .created = sqlite3_column_int64(st, 3),
            .user = col_text(st, 4),
            .revoked_at = sqlite3_column_int64(st, 5),
        };

        (void)token_role_parse(col_text(st, 2), &r.role);
        if ((rc = cb(&r, arg)) != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int
incidents_store_token_find(struct incidents_store *s,
                           const uint8_t hash[TC_TOKEN_HASH_LEN], char *name,
                           size_t namelen, enum token_role *role)
{
    sqlite3_stmt *st = NULL;
    int rc, found = 0;

    if ((rc = prep(s,
                   "SELECT name, role, hash FROM api_tokens"
                   " WHERE revoked_at = 0",
                   &st)) < 0)
        return rc;
    /* No early exit: every live hash is compared. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 2);

        if (sqlite3_column_bytes(st, 2) != TC_TOKEN_HASH_LEN || h == NULL)
            continue;
        if (tc_token_equal(h, hash, TC_TOKEN_HASH_LEN) && !found) {
            enum token_role r = TOKEN_ROLE_VIEWER;

            found = 1;
            snprintf(name, namelen, "%s", col_text(st, 0));
            /* An unknown role (a newer collector's) is the lowest. */
            (void)token_role_parse(col_text(st, 1), &r);
            *role = r;
        }
    }
    rc = rc == SQLITE_DONE ? found : fail(s, rc);
    sqlite3_finalize(st);
    return rc;
}
