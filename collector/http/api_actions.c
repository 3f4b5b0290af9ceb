/*
 * api_actions: the API's writes on a worker thread (api_actions.h,
 * docs/internals/api.md "Writes"): an incident or problem action
 * recorded exactly as tocsinctl records it, on a writable connection
 * of its own, with the token's name as the user; answered 202 with the
 * action's id, the engine applying it at its next step.
 */
#include "http/api_actions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/incident.h"
#include "engine/problem.h"
#include "log.h"
#include "store/incidents_store.h"
#include "util.h"

/* A body's members, each optional unless the verb needs it. */
struct body {
    const char *text;  /* note, comment, cause, RCA or review text */
    const char *text2; /* known-error: the workaround */
    const char *key;   /* rca: why1..why5 or a category; review: field */
    int64_t incident;  /* link, unlink, review: the incident */
    json_t *doc;       /* owns the strings above */
};

/* Members of the JSON body, and the one string of a text member. */
static int
body_parse(const struct api_call *c, struct body *b, char *err, size_t errlen)
{
    static const char *const known[] = {"text", "workaround", "key", "incident",
                                        NULL};
    json_error_t je;
    const char *k;
    json_t *v;

    memset(b, 0, sizeof(*b));
    if (c->body_in == NULL || c->body_in_len == 0)
        return 0;
    /* JSON_REJECT_DUPLICATES: one meaning per body; NUL is refused by
     * jansson unless asked (a C string cannot carry it anyway). */
    b->doc =
        json_loadb(c->body_in, c->body_in_len, JSON_REJECT_DUPLICATES, &je);
    if (b->doc == NULL) {
        snprintf(err, errlen, "body: invalid JSON: %s", je.text);
        return -EINVAL;
    }
    if (!json_is_object(b->doc)) {
        snprintf(err, errlen, "body: a JSON object is expected");
        return -EINVAL;
    }
    json_object_foreach(b->doc, k, v)
    {
        size_t i;

        for (i = 0; known[i] != NULL && strcmp(k, known[i]) != 0; i++)
            ;
        if (known[i] == NULL) {
            snprintf(err, errlen,
                     "body: unknown member (text, workaround, key, incident)");
            return -EINVAL;
        }
        if (strcmp(k, "incident") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                snprintf(err, errlen, "body: incident: a positive id");
                return -EINVAL;
            }
            b->incident = json_integer_value(v);
            continue;
        }
        if (!json_is_string(v) || json_string_length(v) > API_ACTION_TEXT_MAX) {
            snprintf(err, errlen, "body: %s: a string of at most %d bytes", k,
                     API_ACTION_TEXT_MAX);
            return -EINVAL;
        }
        if (strcmp(k, "text") == 0)
            b->text = json_string_value(v);
        else if (strcmp(k, "workaround") == 0)
            b->text2 = json_string_value(v);
        else
            b->key = json_string_value(v);
    }
    return 0;
}

/* Which members the verb takes; the refusal for one it lacks or
 * should not have. */
static int
incident_fill(const struct api_call *c, const struct body *b,
              struct incident_action *a, char *err, size_t errlen)
{
    if (incident_verb_parse(c->req.verb, &a->verb) < 0) {
        snprintf(err, errlen, "no such action");
        return -EINVAL;
    }
    if (b->key != NULL || b->text2 != NULL || b->incident != 0) {
        snprintf(err, errlen, "body: only text for an incident action");
        return -EINVAL;
    }
    if (a->verb == INCIDENT_NOTE && (b->text == NULL || b->text[0] == '\0')) {
        snprintf(err, errlen, "body: a note needs a non-empty text");
        return -EINVAL;
    }
    a->incident_id = c->req.id;
    a->text = b->text;
    return 0;
}

static int
problem_fill(const struct api_call *c, const struct body *b,
             struct problem_action *a, char *err, size_t errlen)
{
    int need_text = 0, need_key = 0, need_inc = 0, workaround = 0;

    if (problem_verb_parse(c->req.verb, &a->verb) < 0) {
        snprintf(err, errlen, "no such action");
        return -EINVAL;
    }
    switch (a->verb) {
    case PROBLEM_V_INVESTIGATE:
    case PROBLEM_V_RESOLVE:
    case PROBLEM_V_CLOSE:
        break;
    case PROBLEM_V_KNOWN_ERROR:
        need_text = workaround = 1;
        break;
    case PROBLEM_V_LINK:
    case PROBLEM_V_UNLINK:
        need_inc = 1;
        break;
    case PROBLEM_V_NOTE:
        need_text = 1;
        break;
    case PROBLEM_V_RCA:
        need_key = 1;
        break;
    case PROBLEM_V_REVIEW:
        need_text = need_key = need_inc = 1;
        break;
    }
    if ((b->text != NULL && !need_text && a->verb != PROBLEM_V_RCA) ||
        (b->text2 != NULL && !workaround) || (b->key != NULL && !need_key) ||
        (b->incident != 0 && !need_inc)) {
        snprintf(err, errlen, "body: a member this action does not take");
        return -EINVAL;
    }
    if ((need_text && (b->text == NULL || b->text[0] == '\0')) ||
        (need_key && b->key == NULL) || (need_inc && b->incident == 0) ||
        (a->verb == PROBLEM_V_RCA && b->text == NULL)) {
        snprintf(err, errlen, "body: %s needs %s", c->req.verb,
                 a->verb == PROBLEM_V_KNOWN_ERROR ? "text (the cause)"
                 : a->verb == PROBLEM_V_NOTE      ? "a non-empty text"
                 : a->verb == PROBLEM_V_RCA       ? "key and text"
                 : a->verb == PROBLEM_V_REVIEW    ? "incident, key and text"
                                                  : "incident");
        return -EINVAL;
    }
    if (a->verb == PROBLEM_V_REVIEW && !problem_review_field_ok(b->key)) {
        snprintf(err, errlen,
                 "body: key: summary, impact, detection, response, recovery, "
                 "lessons or action");
        return -EINVAL;
    }
    a->problem_id = c->req.id;
    a->incident_id = b->incident;
    a->key = b->key;
    a->text = b->text;
    a->text2 = workaround ? (b->text2 ? b->text2 : "") : NULL;
    return 0;
}

static int
count_inc(const struct incident *in, const struct problem_mark *m, void *arg)
{
    (void)in;
    (void)m;
    ++*(int *)arg;
    return 0;
}

static int
count_prob(const struct problems_row *r, void *arg)
{
    (void)r;
    ++*(int *)arg;
    return 0;
}

/* 1 if the incident or problem exists, 0 if not, or a negative errno:
 * an action on nothing is a 404 now rather than a refusal nobody sees. */
static int
target_exists(struct incidents_store *w, const struct api_call *c)
{
    int n = 0, rc;

    if (c->req.route == API_R_PROBLEM_ACTION) {
        struct problems_filter f = {.id = c->req.id};

        rc = incidents_store_problems(w, &f, count_prob, &n);
    } else {
        struct incidents_filter f = {.id = c->req.id};

        rc = incidents_store_list(w, &f, count_inc, &n);
    }
    return rc < 0 ? rc : n > 0;
}

void
api_action(struct api_call *c)
{
    struct incidents_store *w = NULL;
    struct body b;
    char err[256];
    int64_t aid = 0;
    int rc, problem = c->req.route == API_R_PROBLEM_ACTION;
    struct incident_action ia = {0};
    struct problem_action pa = {0};
    json_t *doc;

    if (body_parse(c, &b, err, sizeof(err)) < 0 ||
        (problem ? problem_fill(c, &b, &pa, err, sizeof(err))
                 : incident_fill(c, &b, &ia, err, sizeof(err))) < 0) {
        api_error(c, 400, err);
        goto out;
    }
    /* A connection of its own: the read pool is read-only, and a write
     * is rare (a human's click) next to the reads. */
    if (incidents_store_open(c->store_path, 0, &w) < 0) {
        api_error(c, 503, "store not writable, try again");
        goto out;
    }
    if ((rc = target_exists(w, c)) <= 0) {
        if (rc == 0)
            snprintf(err, sizeof(err), "no %s %lld",
                     problem ? "problem" : "incident", (long long)c->req.id);
        api_error(c, rc == 0 ? 404 : 503,
                  rc == 0 ? err : "store busy, try again");
        goto out;
    }
    ia.user = pa.user = c->who;
    ia.ts = pa.ts = c->now;
    rc = problem ? incidents_store_problem_action_add(w, &pa, &aid)
                 : incidents_store_action_add(w, &ia, &aid);
    if (rc < 0) {
        log_warnx("api: %s: %s", c->store_path, incidents_store_errmsg(w));
        api_error(c, 503, "cannot record the action, try again");
        goto out;
    }
    doc = json_pack("{s:I, s:I, s:s, s:s, s:s}", "action", (json_int_t)aid,
                    problem ? "problem" : "incident", (json_int_t)c->req.id,
                    "verb", c->req.verb, "user", c->who, "state", "recorded");
    api_set_body(c, 202, doc);
out:
    incidents_store_close(w);
    json_decref(b.doc);
}
