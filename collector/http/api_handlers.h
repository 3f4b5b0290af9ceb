/*
 * api_handlers: the API's reads, run on a threadpool worker against a
 * read-only store connection: the token check, then the resource as a
 * JSON document (jansson) whose objects are those of collector/view,
 * the same as tocsinctl's --json (docs/internals/api.md, "One shape").
 */
#ifndef HTTP_API_HANDLERS_H
#define HTTP_API_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "http/api_req.h"
#include "token.h"

struct json_t;

struct incidents_store;

struct api_call {
    struct api_req req;              /* parsed on the loop */
    int has_token;                   /* 0: anonymous (api.anonymous_read) */
    uint8_t hash[TC_TOKEN_HASH_LEN]; /* SHA-256 of the bearer token */
    int64_t now;                     /* ns, when the request came */
    const char *store_path;          /* the store file (borrowed) */
    char *runbooks_dir;  /* /runbooks: runbooks.dir as the request came
                            (a reload may free the config's; owned) */
    const char *body_in; /* a write's body (owned by the job) */
    size_t body_in_len;  /* bytes; 0 = no body */
    /* out: */
    int status; /* HTTP status */
    char *body; /* JSON, malloc'd */
    size_t len;
    char who[80]; /* the token's name, for the log */
};

/* Fill c's out fields; never fails (a failure is a 500/503 body). */
void api_handle(struct incidents_store *is, struct api_call *c);

/* doc (a reference stolen) as c's body with status. */
void api_set_body(struct api_call *c, int status, struct json_t *doc);

/* {"error": msg, "status": status} into c. */
void api_error(struct api_call *c, int status, const char *msg);

#endif
