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

/* Bytes of a silence's joined matchers, as tocsinctl silences add. */
#define SILENCE_MATCHERS_MAX 512

/*
 * POST /api/v1/silences: {"matchers": "host=H rule=R label:K=V" (one
 * space between, each as --match takes it), "starts_at": ns (optional:
 * now), "ends_at": ns, "comment": text}, nothing else. 0, or -EINVAL
 * with the refusal in err. Strings borrowed from *doc (the caller's).
 */
static int
silence_body(const struct api_call *c, struct incident_silence *sil,
             const char **comment, json_t **doc, char *err, size_t errlen)
{
    json_error_t je;
    const char *k, *m;
    json_t *v;
    char one[SILENCE_MATCHERS_MAX];

    memset(sil, 0, sizeof(*sil));
    *comment = NULL;
    sil->start = c->now;
    *doc = c->body_in ? json_loadb(c->body_in, c->body_in_len,
                                   JSON_REJECT_DUPLICATES, &je)
                      : NULL;
    if (*doc == NULL || !json_is_object(*doc)) {
        snprintf(err, errlen,
                 "body: a JSON object with matchers, ends_at "
                 "and comment is expected");
        return -EINVAL;
    }
    json_object_foreach(*doc, k, v)
    {
        if (strcmp(k, "matchers") == 0 && json_is_string(v) &&
            json_string_length(v) < SILENCE_MATCHERS_MAX) {
            sil->matchers = json_string_value(v);
        } else if (strcmp(k, "comment") == 0 && json_is_string(v) &&
                   json_string_length(v) <= API_ACTION_TEXT_MAX) {
            *comment = json_string_value(v);
        } else if (strcmp(k, "starts_at") == 0 && json_is_integer(v) &&
                   json_integer_value(v) > 0) {
            sil->start = json_integer_value(v);
        } else if (strcmp(k, "ends_at") == 0 && json_is_integer(v) &&
                   json_integer_value(v) > 0) {
            sil->end = json_integer_value(v);
        } else {
            snprintf(err, errlen,
                     "body: matchers (a string under %d bytes), starts_at, "
                     "ends_at (ns), comment (at most %d bytes); nothing else",
                     SILENCE_MATCHERS_MAX, API_ACTION_TEXT_MAX);
            return -EINVAL;
        }
    }
    if (sil->matchers == NULL || sil->end == 0 || *comment == NULL) {
        snprintf(err, errlen, "body: matchers, ends_at and comment needed");
        return -EINVAL;
    }
    /* Each matcher as tocsinctl checks --match; one space between. */
    m = sil->matchers;
    do {
        size_t n = strcspn(m, " ");

        memcpy(one, m, n);
        one[n] = '\0';
        if (incident_silence_matcher_check(one) < 0) {
            snprintf(err, errlen,
                     "body: matchers: host=H, rule=R or "
                     "label:K=V, one space between");
            return -EINVAL;
        }
        m += n;
    } while (*m++ == ' ');
    if (sil->end <= sil->start || sil->end <= c->now) {
        snprintf(err, errlen,
                 "the silence would end before it starts or in "
                 "the past");
        return -EINVAL;
    }
    return 0;
}

/*
 * tocsinctl silences add and expire: the same rows (a silence and an
 * action, or the expiry's action) with the token's name as the user.
 */
static void
silence_action(struct api_call *c)
{
    struct incidents_store *w = NULL;
    struct incident_silence sil;
    const char *comment = NULL;
    json_t *body = NULL, *doc;
    char err[256];
    int64_t id = c->req.id, aid = 0;
    int rc, add = c->req.route == API_R_SILENCE_ADD;

    if (add && silence_body(c, &sil, &comment, &body, err, sizeof(err)) < 0) {
        api_error(c, 400, err);
        goto out;
    }
    if (!add && c->body_in != NULL && c->body_in_len > 0) {
        api_error(c, 400, "body: expire takes none");
        goto out;
    }
    if (incidents_store_open(c->store_path, 0, &w) < 0) {
        api_error(c, 503, "store not writable, try again");
        goto out;
    }
    rc = add ? incidents_store_silence_add(w, &sil, c->now, c->who, comment,
                                           &id, &aid)
             : incidents_store_silence_expire(w, id, c->now, c->who, &aid);
    if (rc == -ENOENT || rc == -EALREADY) {
        snprintf(err, sizeof(err), "silence %lld: %s", (long long)id,
                 rc == -ENOENT ? "no such silence" : "already ended");
        api_error(c, rc == -ENOENT ? 404 : 409, err);
        goto out;
    }
    if (rc < 0) {
        log_warnx("api: %s: %s", c->store_path, incidents_store_errmsg(w));
        api_error(c, 503, "cannot record the action, try again");
        goto out;
    }
    doc = json_pack("{s:I, s:I, s:s, s:s, s:s}", "action", (json_int_t)aid,
                    "silence", (json_int_t)id, "verb", c->req.verb, "user",
                    c->who, "state", "recorded");
    if (add) {
        json_object_set_new(doc, "starts_at", json_integer(sil.start));
        json_object_set_new(doc, "ends_at", json_integer(sil.end));
    }
    api_set_body(c, 202, doc);
out:
    incidents_store_close(w);
    json_decref(body);
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

    if (c->req.route == API_R_SILENCE_ADD ||
        c->req.route == API_R_SILENCE_EXPIRE) {
        silence_action(c);
        return;
    }
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
