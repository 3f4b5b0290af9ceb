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
#include "looplag.h"
#include "store/incidents_store.h"
#include "view/incident_view.h"
#include "wire.h"

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

/*
 * GET one resource (/api/v1/incidents/ID ...): 0 and *doc as
 * ctl_remote_get; -ENOENT on a 404, nothing printed (the caller says
 * "no incident ID" as the local tocsinctl does); else -1 (printed).
 */
int ctl_remote_get_one(struct ctl_remote *r, const char *path, json_t **doc);
/* POST as ctl_remote_post, but a 404 or 409 is not printed: -1 with
 * *status for the caller to say it as the local tocsinctl does. */
int ctl_remote_post_one(struct ctl_remote *r, const char *path, json_t *body,
                        json_t **doc, long *status);

/* An action's --user with --url, refused (the API records the token's
 * name as the user): said, and the usage exit status 2. */
int ctl_remote_user_refused(void);

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
 * owned (ctl_remote_problem_free; p.factors and p.reviews too, when
 * ctl_remote_problem_rca filled them). */
struct ctl_remote_problem {
    struct problem p;
    int64_t *incidents; /* owned */
    size_t nincidents;
    const char **hosts; /* owned array; strings borrowed */
    size_t nhosts;
};
int ctl_remote_problem(json_t *o, struct ctl_remote_problem *rp);
void ctl_remote_problem_free(struct ctl_remote_problem *rp);

/*
 * Member readers: 0, or -EINVAL when key is missing or of another type.
 * i64 takes a real too (the API writes every number of an object that
 * holds a count above 2^63 - 1 as a real); time takes null as 0.
 */
int ctl_remote_i64(json_t *o, const char *key, int64_t *v);
int ctl_remote_str(json_t *o, const char *key, const char **v);
int ctl_remote_bool(json_t *o, const char *key, int *v);
int ctl_remote_time(json_t *o, const char *key, int64_t *v);

/*
 * ctl_remote_obj.c: the objects of the show documents and of stats as
 * the structs their views take, strings borrowed from o. Each returns
 * 0, or -EINVAL when a member is missing or of the wrong type.
 *
 * inote: an incident's timeline entry (view_incident_note_json);
 * pnote, candidate, link: a problem's (view_problem_*_json);
 * problem_rca: show's known_error, rca and reviews into rp->p (arrays
 * owned by rp, freed by ctl_remote_problem_free whatever the result);
 * stats_row: a group (view_stats_row_json; means back in ns, to the
 * ms the API gives); looplag: the collector's figures
 * (view_stats_collector_json) and whether they are stale.
 */
int ctl_remote_inote(json_t *o, struct incident_note *n);
int ctl_remote_pnote(json_t *o, struct problem_note *n);
int ctl_remote_candidate(json_t *o, struct problem_candidate *c);
int ctl_remote_link(json_t *o, struct problem_link *l);
int ctl_remote_problem_rca(json_t *o, struct ctl_remote_problem *rp);
int ctl_remote_stats_row(json_t *o, struct incidents_stats_row *r);
int ctl_remote_looplag(json_t *o, struct looplag_stats *st, int *stale);

/* A stored event (tc_view_event_json's keys, with origin): strings
 * borrowed, their lengths kept (they may hold NUL); labels and fields
 * owned: ctl_remote_event_free, whatever the result. */
struct ctl_remote_event {
    struct tc_event ev;
    const char *origin; /* "agent", "collector"; borrowed */
};
int ctl_remote_event(json_t *o, struct ctl_remote_event *re);
void ctl_remote_event_free(struct ctl_remote_event *re);

#endif
