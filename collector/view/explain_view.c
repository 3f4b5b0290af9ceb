/*
 * explain_view: "tocsinctl explain" as text and JSON; see
 * explain_view.h.
 */
#include "view/explain_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "timefmt.h"

static int
esc(struct tc_buf *b, const char *s)
{
    return tc_escape_buf(b, s && s[0] ? s : "-", s && s[0] ? strlen(s) : 1);
}

/* "key           value\n", value escaped. */
static int
line(struct tc_buf *b, const char *key, const char *v)
{
    int rc = 0;

    rc |= tc_buf_printf(b, "%-14s", key);
    rc |= esc(b, v);
    rc |= tc_buf_printf(b, "\n");
    return rc;
}

static int
tline(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX];

    if (ns == 0)
        return line(b, key, "-");
    tc_rfc3339(ns, 3, iso, sizeof(iso));
    return line(b, key, iso);
}

static int
jkey(struct tc_buf *b, int first, const char *key)
{
    int rc = 0;

    if (!first)
        rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    return rc;
}

static int
jstr(struct tc_buf *b, const char *key, const char *v)
{
    int rc = jkey(b, 0, key);

    if (v == NULL)
        return rc | tc_json_raw(b, "null");
    return rc | tc_json_str(b, v, strlen(v));
}

static int
jint(struct tc_buf *b, const char *key, int64_t v)
{
    return jkey(b, 0, key) | tc_json_i64(b, v);
}

/* An id, or null when 0. */
static int
jid(struct tc_buf *b, const char *key, int64_t v)
{
    int rc = jkey(b, 0, key);

    return rc | (v ? tc_json_i64(b, v) : tc_json_raw(b, "null"));
}

static int
jbool(struct tc_buf *b, const char *key, int v)
{
    return jkey(b, 0, key) | tc_json_raw(b, v ? "true" : "false");
}

/* key (ns or null) and key_iso (when set). */
static int
jtime(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX], k[64];
    int rc = jkey(b, 0, key);

    if (ns == 0)
        return rc | tc_json_raw(b, "null");
    rc |= tc_json_i64(b, ns);
    tc_rfc3339(ns, 3, iso, sizeof(iso));
    snprintf(k, sizeof(k), "%s_iso", key);
    return rc | jstr(b, k, iso);
}

/* The role of a linked incident in one word. */
static const char *
role_word(const struct problem_explain *x)
{
    if (x->mark.problem_id == 0)
        return NULL;
    if (x->root)
        return "root_cause";
    return x->mark.inhibited ? "symptom" : "member";
}

/* ---- incident ----------------------------------------------------------- */

int
view_explain_incident_text(struct tc_buf *b,
                           const struct view_explain_incident *v)
{
    const struct incident *in = v->in;
    const struct problem_explain *x = v->x;
    char num[64];
    int rc = 0;

    snprintf(num, sizeof(num), "%" PRId64, in->id);
    rc |= line(b, "incident", num);
    rc |= line(b, "host", in->host);
    rc |=
        line(b, "class", problem_class(in->fingerprint ? in->fingerprint : ""));
    rc |= line(b, "state", incident_state_name(in->state));
    snprintf(num, sizeof(num), "P%d", in->priority);
    rc |= line(b, "priority", num);
    rc |= tline(b, "opened", in->opened_at);
    if (x->mark.problem_id != 0) {
        snprintf(num, sizeof(num), "%" PRId64, x->mark.problem_id);
        rc |= line(b, "problem", num);
        if (v->link != NULL) {
            rc |= line(b, "linked by", v->link->rule);
            rc |= line(b, "fields", v->link->fields);
            rc |= tline(b, "linked at", v->link->ts);
        }
        rc |= line(b, "role", x->role);
        rc |= line(b, "ranking", x->top);
        return rc ? -ENOBUFS : 0;
    }
    rc |= line(b, "problem",
               x->mark.manual ? "none (a user unlinked it)" : "none");
    rc |= tc_buf_printf(b, "why not, rule by rule (seen of needed):\n");
    for (int r = 0; r < PROBLEM_NRULES; r++) {
        const struct problem_verdict *pv = &x->v[r];

        rc |= tc_buf_printf(b, "  %-10s", pv->rule);
        if (pv->enabled)
            rc |= tc_buf_printf(b, "%s %" PRIu32 "/%" PRIu32 "  ",
                                pv->matches ? "matches" : "no", pv->seen,
                                pv->need);
        else
            rc |= tc_buf_printf(b, "off  ");
        rc |= esc(b, pv->why);
        rc |= tc_buf_printf(b, "\n");
    }
    if (x->nearest >= 0) {
        const struct problem_verdict *pv = &x->v[x->nearest];

        rc |= tc_buf_printf(
            b, "%-14s%s (%" PRIu32 " of %" PRIu32 "%s)\n", "nearest", pv->rule,
            pv->seen, pv->need,
            pv->matches ? ": it matches under this configuration" : "");
    } else {
        rc |= line(b, "nearest", "none (every rule is off)");
    }
    return rc ? -ENOBUFS : 0;
}

static int
verdicts_json(struct tc_buf *b, const struct problem_explain *x)
{
    int rc = jkey(b, 0, "rules") | tc_json_raw(b, "[");

    for (int r = 0; r < PROBLEM_NRULES; r++) {
        const struct problem_verdict *pv = &x->v[r];

        rc |= tc_json_raw(b, r ? ",{" : "{");
        rc |= jkey(b, 1, "rule") | tc_json_str(b, pv->rule, strlen(pv->rule));
        rc |= jbool(b, "enabled", pv->enabled);
        rc |= jbool(b, "matches", pv->matches);
        rc |= jint(b, "seen", pv->seen);
        rc |= jint(b, "need", pv->need);
        rc |= jstr(b, "why", pv->why);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, "]");
    return rc;
}

int
view_explain_incident_json(struct tc_buf *b,
                           const struct view_explain_incident *v)
{
    const struct incident *in = v->in;
    const struct problem_explain *x = v->x;
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= jkey(b, 1, "incident") | tc_json_i64(b, in->id);
    rc |= jstr(b, "host", in->host);
    rc |=
        jstr(b, "class", problem_class(in->fingerprint ? in->fingerprint : ""));
    rc |= jstr(b, "state", incident_state_name(in->state));
    rc |= jint(b, "priority", in->priority);
    rc |= jtime(b, "opened_at", in->opened_at);
    rc |= jid(b, "problem", x->mark.problem_id);
    rc |= jbool(b, "inhibited", x->mark.inhibited);
    rc |= jbool(b, "manual", x->mark.manual);
    rc |= jbool(b, "engine_holds", x->known);
    rc |= jkey(b, 0, "link");
    if (x->mark.problem_id != 0 && v->link != NULL) {
        rc |= tc_json_raw(b, "{");
        rc |= jkey(b, 1, "rule") |
              tc_json_str(b, v->link->rule, strlen(v->link->rule));
        rc |= jstr(b, "fields", v->link->fields);
        rc |= jtime(b, "ts", v->link->ts);
        rc |= tc_json_raw(b, "}");
    } else {
        rc |= tc_json_raw(b, "null");
    }
    rc |= jstr(b, "role", role_word(x));
    rc |= jstr(b, "role_why", x->mark.problem_id ? x->role : NULL);
    rc |= jstr(b, "top_candidate",
               x->mark.problem_id && x->top[0] ? x->top : NULL);
    if (x->mark.problem_id == 0) {
        rc |= verdicts_json(b, x);
        rc |=
            jstr(b, "nearest", x->nearest >= 0 ? x->v[x->nearest].rule : NULL);
    } else {
        rc |= jkey(b, 0, "rules") | tc_json_raw(b, "[]");
        rc |= jstr(b, "nearest", NULL);
    }
    rc |= tc_json_raw(b, "}\n");
    return rc ? -ENOBUFS : 0;
}

/* ---- problem ------------------------------------------------------------ */

/* The links that opened p: made by its own rule at its opening time. */
static int
opening_link(const struct problem *p, const struct problem_link *l)
{
    return !l->removed && l->ts == p->opened_at &&
           strcmp(l->rule, p->rule) == 0;
}

int
view_explain_problem_text(struct tc_buf *b,
                          const struct view_explain_problem *v)
{
    const struct problem *p = v->p;
    const struct problem_explain_problem *xp = v->xp;
    char num[64], iso[TC_RFC3339_MAX];
    int rc = 0, n = 0;

    snprintf(num, sizeof(num), "%" PRId64, p->id);
    rc |= line(b, "problem", num);
    rc |= line(b, "state", problem_state_name(p->state));
    rc |= line(b, "title", p->title);
    rc |= line(b, "opened by", p->rule);
    rc |= line(b, "key", p->key);
    rc |= tline(b, "opened", p->opened_at);
    rc |= tc_buf_printf(b, "%-14s", "opened with");
    for (size_t i = 0; i < v->nlinks; i++)
        if (opening_link(p, &v->links[i]))
            rc |= tc_buf_printf(b, "%sincident %" PRId64, n++ ? ", " : "",
                                v->links[i].incident_id);
    rc |= tc_buf_printf(b, "%s\n", n ? "" : "-");
    rc |= tc_buf_printf(b, "%-14s", "why");
    if (xp != NULL) {
        rc |= esc(b, xp->state_why);
        if (xp->resolves_at != 0) {
            tc_rfc3339(xp->resolves_at, 3, iso, sizeof(iso));
            rc |= tc_buf_printf(b, ", at %s", iso);
        }
    } else {
        rc |= tc_buf_printf(b, "closed");
        if (p->closed_at) {
            tc_rfc3339(p->closed_at, 3, iso, sizeof(iso));
            rc |= tc_buf_printf(b, " at %s", iso);
        }
        rc |= tc_buf_printf(b, "; the engine no longer holds it (ranking as "
                               "stored)");
    }
    rc |= tc_buf_printf(b, "\n\nlinks:\n");
    for (size_t i = 0; i < v->nlinks; i++) {
        const struct problem_link *l = &v->links[i];

        tc_rfc3339(l->ts, 3, iso, sizeof(iso));
        rc |= tc_buf_printf(b, "  %s  incident %" PRId64 "  %s  ", iso,
                            l->incident_id, l->removed ? "unlinked" : "linked");
        rc |= esc(b, l->rule);
        rc |= tc_buf_printf(b, "  ");
        rc |= esc(b, l->fields);
        rc |= tc_buf_printf(b, "\n");
    }
    if (v->nlinks == 0)
        rc |= tc_buf_printf(b, "  -\n");
    rc |= tc_buf_printf(b, "\nranking (score = the sum of its terms):\n");
    if (xp != NULL) {
        for (size_t i = 0; i < xp->ncands; i++) {
            const struct problem_explain_cand *c = &xp->cands[i];

            rc |= tc_buf_printf(b, "  %zu. ", i + 1);
            rc |= esc(b, c->host);
            if (c->incident_id)
                rc |=
                    tc_buf_printf(b, " (incident %" PRId64 ")", c->incident_id);
            rc |= tc_buf_printf(b, "  score %" PRId64 "\n", c->score);
            for (size_t t = 0; t < c->nterms; t++) {
                if (c->terms[t].points > 0)
                    rc |= tc_buf_printf(b, "       +%-4" PRId64 "",
                                        c->terms[t].points);
                else
                    rc |= tc_buf_printf(b, "        %-4s", "");
                rc |= esc(b, c->terms[t].what);
                rc |= tc_buf_printf(b, "\n");
            }
        }
    } else {
        for (size_t i = 0; i < v->ncands; i++) {
            rc |= tc_buf_printf(b, "  %zu. ", i + 1);
            rc |= esc(b, v->cands[i].host);
            rc |= tc_buf_printf(b, "  score %" PRId64 "  ", v->cands[i].score);
            rc |= esc(b, v->cands[i].evidence);
            rc |= tc_buf_printf(b, "\n");
        }
    }
    if (xp != NULL && v->nmembers > 0) {
        rc |= tc_buf_printf(b, "\nincidents:\n");
        for (size_t i = 0; i < v->nmembers; i++) {
            rc |= tc_buf_printf(b, "  incident %" PRId64 "  ",
                                v->members[i].incident_id);
            rc |= esc(b, v->members[i].role);
            rc |= tc_buf_printf(b, "\n");
        }
    }
    return rc ? -ENOBUFS : 0;
}

int
view_explain_problem_json(struct tc_buf *b,
                          const struct view_explain_problem *v)
{
    const struct problem *p = v->p;
    const struct problem_explain_problem *xp = v->xp;
    int rc = 0, n = 0;

    rc |= tc_json_raw(b, "{");
    rc |= jkey(b, 1, "problem") | tc_json_i64(b, p->id);
    rc |= jstr(b, "state", problem_state_name(p->state));
    rc |= jstr(b, "title", p->title);
    rc |= jstr(b, "rule", p->rule);
    rc |= jstr(b, "key", p->key);
    rc |= jtime(b, "opened_at", p->opened_at);
    rc |= jkey(b, 0, "opened_with") | tc_json_raw(b, "[");
    for (size_t i = 0; i < v->nlinks; i++)
        if (opening_link(p, &v->links[i])) {
            rc |= tc_json_raw(b, n++ ? "," : "");
            rc |= tc_json_i64(b, v->links[i].incident_id);
        }
    rc |= tc_json_raw(b, "]");
    rc |= jstr(b, "state_why", xp ? xp->state_why : "closed");
    rc |= jtime(b, "resolves_at", xp ? xp->resolves_at : 0);
    rc |= jbool(b, "engine_holds", xp != NULL);
    rc |= jkey(b, 0, "links") | tc_json_raw(b, "[");
    for (size_t i = 0; i < v->nlinks; i++) {
        const struct problem_link *l = &v->links[i];

        rc |= tc_json_raw(b, i ? ",{" : "{");
        rc |= jkey(b, 1, "incident") | tc_json_i64(b, l->incident_id);
        rc |= jstr(b, "what", l->removed ? "unlinked" : "linked");
        rc |= jstr(b, "rule", l->rule);
        rc |= jstr(b, "fields", l->fields);
        rc |= jtime(b, "ts", l->ts);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, "]");
    rc |= jkey(b, 0, "candidates") | tc_json_raw(b, "[");
    if (xp != NULL) {
        for (size_t i = 0; i < xp->ncands; i++) {
            const struct problem_explain_cand *c = &xp->cands[i];

            rc |= tc_json_raw(b, i ? ",{" : "{");
            rc |= jkey(b, 1, "rank") | tc_json_i64(b, (int64_t)i + 1);
            rc |= jstr(b, "host", c->host);
            rc |= jid(b, "incident", c->incident_id);
            rc |= jint(b, "score", c->score);
            rc |= jkey(b, 0, "terms") | tc_json_raw(b, "[");
            for (size_t t = 0; t < c->nterms; t++) {
                rc |= tc_json_raw(b, t ? ",{" : "{");
                rc |=
                    jkey(b, 1, "what") |
                    tc_json_str(b, c->terms[t].what, strlen(c->terms[t].what));
                rc |= jint(b, "points", c->terms[t].points);
                rc |= tc_json_raw(b, "}");
            }
            rc |= tc_json_raw(b, "]}");
        }
    } else {
        for (size_t i = 0; i < v->ncands; i++) {
            const struct problem_candidate *c = &v->cands[i];

            rc |= tc_json_raw(b, i ? ",{" : "{");
            rc |= jkey(b, 1, "rank") | tc_json_i64(b, c->rank);
            rc |= jstr(b, "host", c->host);
            rc |= jid(b, "incident", c->incident_id);
            rc |= jint(b, "score", c->score);
            rc |= jstr(b, "evidence", c->evidence);
            rc |= tc_json_raw(b, "}");
        }
    }
    rc |= tc_json_raw(b, "]");
    rc |= jkey(b, 0, "incidents") | tc_json_raw(b, "[");
    for (size_t i = 0; xp != NULL && i < v->nmembers; i++) {
        const struct problem_explain *x = &v->members[i];

        rc |= tc_json_raw(b, i ? ",{" : "{");
        rc |= jkey(b, 1, "incident") | tc_json_i64(b, x->incident_id);
        rc |= jstr(b, "role", role_word(x));
        rc |= jbool(b, "inhibited", x->mark.inhibited);
        rc |= jstr(b, "why", x->role);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, "]}\n");
    return rc ? -ENOBUFS : 0;
}
