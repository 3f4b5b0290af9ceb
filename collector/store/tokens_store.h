/*
 * tokens_store: the HTTP API's bearer tokens in the store (schema 11;
 * docs/api.md "Auth", docs/internals/api.md "Tokens"). Only the SHA-256
 * of a token is kept. Not engine state: replay neither writes nor
 * compares the table. tocsinctl tokens writes it; the API reads it on a
 * threadpool worker through its read-only connection.
 */
#ifndef COLLECTOR_TOKENS_STORE_H
#define COLLECTOR_TOKENS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "token.h"

struct incidents_store;

/* What a token may do; each role includes the ones below it. */
enum token_role {
    TOKEN_ROLE_VIEWER = 1,   /* reads */
    TOKEN_ROLE_OPERATOR = 2, /* incident, problem and silence actions */
    TOKEN_ROLE_ADMIN = 3,    /* everything, tokens included */
};

/* "viewer", "operator", "admin". */
const char *token_role_name(enum token_role r);
/* 0, or -EINVAL for anything else. */
int token_role_parse(const char *s, enum token_role *out);

/* One row; strings valid during the callback. */
struct token_row {
    int64_t id;
    const char *name;
    enum token_role role;
    int64_t created;    /* ns */
    const char *user;   /* who created it */
    int64_t revoked_at; /* ns; 0 = live */
};

/* Longest token name, bytes (printable ASCII letters, digits, "._-"). */
#define TOKEN_NAME_MAX 64
/* 0 if name is 1..TOKEN_NAME_MAX of [A-Za-z0-9._-], else -EINVAL. */
int token_name_check(const char *name);

/* Store a token (its hash) under name: -EEXIST when a live token has
 * that name. */
int incidents_store_token_add(struct incidents_store *s, const char *name,
                              enum token_role role,
                              const uint8_t hash[TC_TOKEN_HASH_LEN],
                              int64_t now, const char *user);
/* Revoke the live token name: -ENOENT when there is none. */
int incidents_store_token_revoke(struct incidents_store *s, const char *name,
                                 int64_t now);
/* Tokens in id order; all = 0: live ones only. */
int incidents_store_tokens(struct incidents_store *s, int all,
                           int (*cb)(const struct token_row *r, void *arg),
                           void *arg);
/*
 * The live token whose hash is hash: 1 with its name (copied into
 * name, namelen bytes) and role, 0 when none. Every live hash is
 * compared, in constant time each, so the time taken does not say how
 * much of a guess was right.
 */
int incidents_store_token_find(struct incidents_store *s,
                               const uint8_t hash[TC_TOKEN_HASH_LEN],
                               char *name, size_t namelen,
                               enum token_role *role);

#endif
