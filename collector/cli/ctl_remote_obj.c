/*
 * ctl_remote_obj: the API's objects for "show" and "stats" (incident
 * and problem timelines, candidates, links, the RCA, events, stats
 * groups, the collector's figures) turned back into the structs the
 * views print, so that tocsinctl --url prints what the local tocsinctl
 * prints, byte for byte; see ctl_remote.h. Every member is checked:
 * a peer's object of the wrong shape is -EINVAL, never a crash.
 */
#include "cli/ctl_remote.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
ctl_remote_inote(json_t *o, struct incident_note *n)
{
    int rc = 0;

    memset(n, 0, sizeof(*n));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= ctl_remote_i64(o, "ts", &n->ts);
    rc |= ctl_remote_str(o, "what", &n->what);
    rc |= ctl_remote_str(o, "who", &n->who);
    rc |= ctl_remote_str(o, "detail", &n->detail);
    return rc ? -EINVAL : 0;
}

/* The same members as an incident's entry (view_problem_note_json). */
int
ctl_remote_pnote(json_t *o, struct problem_note *n)
{
    struct incident_note in;

    memset(n, 0, sizeof(*n));
    if (ctl_remote_inote(o, &in) < 0)
        return -EINVAL;
    n->ts = in.ts;
    n->what = in.what;
    n->who = in.who;
    n->detail = in.detail;
    return 0;
}

int
ctl_remote_candidate(json_t *o, struct problem_candidate *c)
{
    int64_t rank = 0;
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= ctl_remote_i64(o, "rank", &rank);
    rc |= ctl_remote_str(o, "host", &c->host);
    /* null: a host named by events, with no incident of its own. */
    rc |= ctl_remote_time(o, "incident", &c->incident_id);
    rc |= ctl_remote_i64(o, "score", &c->score);
    rc |= ctl_remote_str(o, "evidence", &c->evidence);
    if (rc != 0 || rank < 0 || rank > 1000000)
        return -EINVAL;
    c->rank = (int)rank;
    return 0;
}

int
ctl_remote_link(json_t *o, struct problem_link *l)
{
    const char *what;
    int rc = 0;

    memset(l, 0, sizeof(*l));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= ctl_remote_i64(o, "incident", &l->incident_id);
    rc |= ctl_remote_str(o, "what", &what);
    rc |= ctl_remote_str(o, "rule", &l->rule);
    rc |= ctl_remote_str(o, "fields", &l->fields);
    rc |= ctl_remote_time(o, "ts", &l->ts);
    if (rc != 0 || (strcmp(what, "linked") && strcmp(what, "unlinked")))
        return -EINVAL;
    l->removed = what[0] == 'u';
    return 0;
}

/* known_error: null, or {root_cause, workaround, at (null: 0)}. */
static int
known_error(json_t *o, struct problem *p)
{
    json_t *ke = json_object_get(o, "known_error");
    int rc = 0;

    if (json_is_null(ke))
        return 0;
    if (!json_is_object(ke))
        return -EINVAL;
    rc |= ctl_remote_str(ke, "root_cause", (const char **)&p->root_cause);
    rc |= ctl_remote_str(ke, "workaround", (const char **)&p->workaround);
    rc |= ctl_remote_time(ke, "at", &p->known_error_at);
    return rc ? -EINVAL : 0;
}

int
ctl_remote_problem_rca(json_t *o, struct ctl_remote_problem *rp)
{
    struct problem *p = &rp->p;
    json_t *rca = json_object_get(o, "rca"), *whys, *factors, *reviews, *j;
    size_t i;

    if (known_error(o, p) < 0 || !json_is_object(rca))
        return -EINVAL;
    whys = json_object_get(rca, "whys");
    factors = json_object_get(rca, "factors");
    reviews = json_object_get(o, "reviews");
    if (!json_is_array(whys) || json_array_size(whys) != PROBLEM_WHYS ||
        !json_is_array(factors) || !json_is_array(reviews))
        return -EINVAL;
    json_array_foreach(whys, i, j)
    {
        if (!json_is_string(j))
            return -EINVAL;
        p->whys[i] = (char *)json_string_value(j);
    }
    p->factors = tc_xcalloc(json_array_size(factors) + 1, sizeof(*p->factors));
    json_array_foreach(factors, i, j)
    {
        struct problem_factor *f = &p->factors[p->nfactors];
        const char *cat;

        if (ctl_remote_str(j, "category", &cat) < 0 ||
            problem_factor_parse(cat, &f->category) < 0 ||
            ctl_remote_str(j, "text", (const char **)&f->text) < 0)
            return -EINVAL;
        p->nfactors++;
    }
    p->reviews = tc_xcalloc(json_array_size(reviews) + 1, sizeof(*p->reviews));
    json_array_foreach(reviews, i, j)
    {
        struct problem_review *r = &p->reviews[p->nreviews];

        if (ctl_remote_i64(j, "incident", &r->incident_id) < 0 ||
            ctl_remote_str(j, "field", (const char **)&r->field) < 0 ||
            ctl_remote_str(j, "text", (const char **)&r->text) < 0)
            return -EINVAL;
        p->nreviews++;
    }
    return 0;
}

/* A count the view writes with tc_json_u64 (a real above 2^63 - 1). */
static int
get_u64(json_t *o, const char *key, uint64_t *v)
{
    json_t *j = json_object_get(o, key);

    if (json_is_integer(j) && json_integer_value(j) >= 0)
        *v = (uint64_t)json_integer_value(j);
    else if (json_is_real(j) && json_real_value(j) >= 0 &&
             json_real_value(j) < 1.8e19)
        *v = (uint64_t)json_real_value(j);
    else
        return -EINVAL;
    return 0;
}

/* A mean in ms, null when there was nothing to average (-1 then). */
static int
get_mean(json_t *o, const char *key, int64_t *ns)
{
    int64_t ms;

    if (json_is_null(json_object_get(o, key))) {
        *ns = -1;
        return 0;
    }
    if (ctl_remote_i64(o, key, &ms) < 0 || ms < 0 || ms > INT64_MAX / 1000000)
        return -EINVAL;
    *ns = ms * 1000000;
    return 0;
}

int
ctl_remote_stats_row(json_t *o, struct incidents_stats_row *r)
{
    int rc = 0;

    memset(r, 0, sizeof(*r));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= ctl_remote_str(o, "key", &r->key);
    rc |= get_u64(o, "incidents", &r->n);
    rc |= get_u64(o, "openings", &r->openings);
    rc |= get_u64(o, "acknowledged", &r->acked);
    rc |= get_mean(o, "mtta_ms", &r->mtta_ns);
    rc |= get_u64(o, "resolved", &r->restored);
    rc |= get_mean(o, "mttr_ms", &r->mttr_ns);
    rc |= get_u64(o, "gaps", &r->gaps);
    rc |= get_mean(o, "mtbf_ms", &r->mtbf_ns);
    return rc ? -EINVAL : 0;
}

/* "12.3" ms, as stats_view's ms_json writes it, back to 12300 us. */
static int
get_ms_us(json_t *o, const char *key, uint64_t *us)
{
    json_t *j = json_object_get(o, key);
    double v;

    if (!json_is_number(j))
        return -EINVAL;
    v = json_number_value(j);
    if (!(v >= 0 && v < 1.8e16))
        return -EINVAL;
    /* One decimal: round to the 100 us the text shows. */
    *us = (uint64_t)(v * 10.0 + 0.5) * 100;
    return 0;
}

int
ctl_remote_looplag(json_t *o, struct looplag_stats *st, int *stale)
{
    int rc = 0;

    memset(st, 0, sizeof(*st));
    *stale = 0;
    if (!json_is_object(o))
        return -EINVAL;
    rc |= ctl_remote_i64(o, "pid", &st->pid);
    rc |= ctl_remote_i64(o, "started", &st->started_ns);
    rc |= ctl_remote_i64(o, "updated", &st->updated_ns);
    rc |= ctl_remote_bool(o, "stale", stale);
    rc |= get_u64(o, "loop_lag_interval_ms", &st->interval_ms);
    rc |= get_u64(o, "loop_lag_samples", &st->samples);
    rc |= get_ms_us(o, "loop_lag_max_ms", &st->max_us);
    rc |= get_ms_us(o, "loop_lag_p50_ms", &st->p50_us);
    rc |= get_ms_us(o, "loop_lag_p99_ms", &st->p99_us);
    rc |= get_u64(o, "loop_lag_stalls", &st->stalls);
    rc |= get_ms_us(o, "loop_lag_recent_max_ms", &st->recent_max_us);
    return rc ? -EINVAL : 0;
}

/* A string member with its length (it may hold NUL); absent: "". */
static int
get_tstr(json_t *o, const char *key, int optional, struct tc_str *s)
{
    json_t *j = json_object_get(o, key);

    if (j == NULL && optional) {
        *s = (struct tc_str){"", 0};
        return 0;
    }
    if (!json_is_string(j) || json_string_length(j) > UINT32_MAX)
        return -EINVAL;
    *s = (struct tc_str){json_string_value(j), (uint32_t)json_string_length(j)};
    return 0;
}

/* labels or fields: an object of strings, in the order written. */
static int
get_map(json_t *o, const char *key, struct tc_kv **kv, uint32_t *n)
{
    json_t *m = json_object_get(o, key), *v;
    const char *k;

    *kv = NULL;
    *n = 0;
    if (!json_is_object(m) || json_object_size(m) > UINT32_MAX)
        return -EINVAL;
    *kv = tc_xcalloc(json_object_size(m) + 1, sizeof(**kv));
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v))
            return -EINVAL;
        (*kv)[*n].key = tc_str_c(k);
        (*kv)[*n].val = (struct tc_str){json_string_value(v),
                                        (uint32_t)json_string_length(v)};
        (*n)++;
    }
    return 0;
}

int
ctl_remote_event(json_t *o, struct ctl_remote_event *re)
{
    struct tc_event *e = &re->ev;
    const char *sev;
    uint64_t count = 0;
    int64_t state = -1;
    int rc = 0;

    memset(re, 0, sizeof(*re));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= get_tstr(o, "host", 0, &e->host);
    rc |= get_u64(o, "seq", &e->seq);
    rc |= ctl_remote_str(o, "origin", &re->origin);
    rc |= ctl_remote_i64(o, "ts", &e->ts);
    if (json_object_get(o, "event_ts") != NULL)
        rc |= ctl_remote_i64(o, "event_ts", &e->event_ts);
    rc |= get_tstr(o, "kind", 0, &e->kind);
    rc |= get_tstr(o, "source", 0, &e->source);
    rc |= get_tstr(o, "rule", 0, &e->rule);
    rc |= ctl_remote_str(o, "severity", &sev);
    if (json_object_get(o, "state") != NULL)
        rc |= ctl_remote_i64(o, "state", &state);
    rc |= get_tstr(o, "message", 0, &e->message);
    rc |= get_tstr(o, "fingerprint", 1, &e->fingerprint);
    rc |= get_u64(o, "count", &count);
    if (rc != 0 || tc_severity_parse(sev, &e->sev) < 0 || state < -1 ||
        state > 3 || count > UINT32_MAX)
        return -EINVAL;
    e->state = (int32_t)state;
    e->count = (uint32_t)count;
    if (get_map(o, "labels", &e->labels, &e->nlabels) < 0 ||
        get_map(o, "fields", &e->fields, &e->nfields) < 0)
        return -EINVAL;
    return 0;
}

void
ctl_remote_event_free(struct ctl_remote_event *re)
{
    free(re->ev.labels);
    free(re->ev.fields);
    re->ev.labels = re->ev.fields = NULL;
}
