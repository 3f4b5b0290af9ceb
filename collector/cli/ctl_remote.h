/*
 * ctl_remote: tocsinctl --url, the client of a remote collector's HTTP
 * API (docs/api.md). libcurl over TLS (the server's certificate checked
 * against --cacert, the collector's tls.ca, or the system CAs), a
 * bearer token read from a private file, the API's JSON errors printed
 * as "tocsinctl: HOST: STATUS MESSAGE". The objects the API returns
 * are turned back into the structs the local path lists, so that both
 * print through the same view code.
 */
#ifndef CTL_REMOTE_H
#define CTL_REMOTE_H

#include <jansson.h>
#include <stdint.h>

#include "cli/ctl.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "view/incident_view.h"

struct ctl_remote;

/*
 * Check --url, read the token file (refused unless a regular file of
 * ours, mode 0600 or stricter) and set up the client. 0, or -1 with
 * the reason printed (never the token). Free with ctl_remote_close.
 */
int ctl_remote_open(const struct ctl_opts *o, struct ctl_remote **out);
void ctl_remote_close(struct ctl_remote *r);

/*
 * GET path (from "/api/v1/..."; the query already escaped) or POST it
 * with body (a JSON object, or NULL for none). On 2xx 0 and *doc (the
 * parsed answer; the caller decrefs). Else -1 with the API's error (or
 * the transport's) printed; *status the HTTP status (0 if none).
 */
int ctl_remote_get(struct ctl_remote *r, const char *path, json_t **doc,
                   long *status);
int ctl_remote_post(struct ctl_remote *r, const char *path, json_t *body,
                    json_t **doc, long *status);

/* s escaped for a query string (curl_easy_escape); free with free(). */
char *ctl_remote_escape(struct ctl_remote *r, const char *s);

/* The host named in --url, for messages. */
const char *ctl_remote_host(const struct ctl_remote *r);

/*
 * One incident object of the API (view_incident_json_marked's keys)
 * back as the structs the view takes: *in (strings borrowed from o,
 * except in->fingerprint, owned: free it), *m and *has_mark (the
 * "problem" key is there), *sil and *has_sil (its silence is known).
 * 0, or -EINVAL when a key is missing or of the wrong type.
 */
int ctl_remote_incident(json_t *o, struct incident *in, struct problem_mark *m,
                        int *has_mark, struct view_silence *sil, int *has_sil);

/*
 * GET path (its query, if any, escaped) and each page after it through
 * next_cursor; cb gets each element of the array under key (borrowed
 * during the call). A cb return of -EINVAL is a malformed object
 * (printed here), another negative value stops (cb printed why).
 * 0, or -1.
 */
int ctl_remote_pages(struct ctl_remote *r, const char *path, const char *key,
                     int (*cb)(json_t *item, void *arg), void *arg);

/* A problem list object (view_problem_json's keys) as the structs
 * view_problem takes: strings borrowed from the object, the arrays
 * owned (ctl_remote_problem_free). */
struct ctl_remote_problem {
    struct problem p;
    int64_t *incidents; /* owned */
    size_t nincidents;
    const char **hosts; /* owned array; strings borrowed */
    size_t nhosts;
};
int ctl_remote_problem(json_t *o, struct ctl_remote_problem *rp);
void ctl_remote_problem_free(struct ctl_remote_problem *rp);

#endif
