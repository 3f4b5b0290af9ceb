/*
 * problem_view: a problem as JSON, as table rows and as a detail block;
 * see problem_view.h.
 */
#include "view/problem_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "timefmt.h"

/* Titles, hosts and evidence come from log data: capped. */
const struct tc_table_col view_problem_cols[] = {
    {"ID", 1, 0},        {"STATE", 0, 0},  {"RULE", 0, 0},
    {"INCIDENTS", 1, 0}, {"HOSTS", 1, 0},  {"ROOT_CAUSE", 0, 32},
    {"OPENED", 0, 0},    {"TITLE", 0, 60},
};
const size_t view_problem_ncols =
    sizeof(view_problem_cols) / sizeof(view_problem_cols[0]);

const struct tc_table_col view_candidate_cols[] = {
    {"RANK", 1, 0},  {"HOST", 0, 32},      {"INCIDENT", 1, 0},
    {"SCORE", 1, 0}, {"EVIDENCE", 0, 100},
};
const size_t view_candidate_ncols =
    sizeof(view_candidate_cols) / sizeof(view_candidate_cols[0]);

const struct tc_table_col view_link_cols[] = {
    {"TIME", 0, 0}, {"INCIDENT", 1, 0}, {"WHAT", 0, 0},
    {"RULE", 0, 0}, {"FIELDS", 0, 80},
};
const size_t view_link_ncols =
    sizeof(view_link_cols) / sizeof(view_link_cols[0]);

static int
jstr(struct tc_buf *b, const char *key, const char *v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_str(b, v ? v : "", v ? strlen(v) : 0);
    return rc;
}

static int
jint(struct tc_buf *b, const char *key, int64_t v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_i64(b, v);
    return rc;
}

/* ns and key_iso, or null when 0 (not yet). */
static int
jtime(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX], k[64];
    int rc = 0;

    if (ns == 0) {
        rc |= tc_json_raw(b, ",");
        rc |= tc_json_key(b, key);
        return rc | tc_json_raw(b, "null");
    }
    rc |= jint(b, key, ns);
    tc_rfc3339(ns, 3, iso, sizeof(iso));
    snprintf(k, sizeof(k), "%s_iso", key);
    return rc | jstr(b, k, iso);
}

int
view_problem_json(struct tc_buf *b, const struct view_problem *v, int open_end)
{
    const struct problem *p = v->p;
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "id");
    rc |= tc_json_i64(b, p->id);
    rc |= jstr(b, "state", problem_state_name(p->state));
    rc |= jstr(b, "title", p->title);
    rc |= jstr(b, "rule", p->rule);
    rc |= jstr(b, "key", p->key);
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "incidents");
    rc |= tc_json_raw(b, "[");
    for (size_t i = 0; i < v->nincidents; i++) {
        if (i)
            rc |= tc_json_raw(b, ",");
        rc |= tc_json_i64(b, v->incidents[i]);
    }
    rc |= tc_json_raw(b, "],");
    rc |= tc_json_key(b, "hosts");
    rc |= tc_json_raw(b, "[");
    for (size_t i = 0; i < v->nhosts; i++) {
        if (i)
            rc |= tc_json_raw(b, ",");
        rc |= tc_json_str(b, v->hosts[i], strlen(v->hosts[i]));
    }
    rc |= tc_json_raw(b, "],");
    rc |= tc_json_key(b, "root_cause");
    if (p->root_host == NULL || p->root_host[0] == '\0')
        rc |= tc_json_raw(b, "null");
    else
        rc |= tc_json_str(b, p->root_host, strlen(p->root_host));
    rc |= jint(b, "root_incident", p->root_incident);
    rc |= jtime(b, "opened_at", p->opened_at);
    rc |= jtime(b, "resolved_at", p->resolved_at);
    rc |= jtime(b, "closed_at", p->closed_at);
    if (!open_end)
        rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

int
view_problem_rca_json(struct tc_buf *b, const struct problem *p)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "known_error");
    if (p->state != PROBLEM_KNOWN_ERROR && p->known_error_at == 0) {
        rc |= tc_json_raw(b, "null");
    } else {
        rc |= tc_json_raw(b, "{");
        rc |= tc_json_key(b, "root_cause");
        rc |= tc_json_str(b, p->root_cause ? p->root_cause : "",
                          p->root_cause ? strlen(p->root_cause) : 0);
        rc |= jstr(b, "workaround", p->workaround);
        rc |= jtime(b, "at", p->known_error_at);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "rca");
    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "whys");
    rc |= tc_json_raw(b, "[");
    for (int i = 0; i < PROBLEM_WHYS; i++) {
        const char *w = p->whys[i] ? p->whys[i] : "";

        if (i)
            rc |= tc_json_raw(b, ",");
        rc |= tc_json_str(b, w, strlen(w));
    }
    rc |= tc_json_raw(b, "],");
    rc |= tc_json_key(b, "factors");
    rc |= tc_json_raw(b, "[");
    for (size_t i = 0; i < p->nfactors; i++) {
        rc |= tc_json_raw(b, i ? ",{" : "{");
        rc |= tc_json_key(b, "category");
        rc |= tc_json_str(b, problem_factor_name(p->factors[i].category),
                          strlen(problem_factor_name(p->factors[i].category)));
        rc |= jstr(b, "text", p->factors[i].text);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, "]}");
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "reviews");
    rc |= tc_json_raw(b, "[");
    for (size_t i = 0; i < p->nreviews; i++) {
        char n[32];

        snprintf(n, sizeof(n), "%s{\"incident\":%" PRId64, i ? "," : "",
                 p->reviews[i].incident_id);
        rc |= tc_json_raw(b, n);
        rc |= jstr(b, "field", p->reviews[i].field);
        rc |= jstr(b, "text", p->reviews[i].text);
        rc |= tc_json_raw(b, "}");
    }
    rc |= tc_json_raw(b, "]");
    return rc ? -ENOBUFS : 0;
}

int
view_problem_candidate_json(struct tc_buf *b, const struct problem_candidate *c)
{
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "rank");
    rc |= tc_json_i64(b, c->rank);
    rc |= jstr(b, "host", c->host);
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "incident");
    if (c->incident_id == 0)
        rc |= tc_json_raw(b, "null");
    else
        rc |= tc_json_i64(b, c->incident_id);
    rc |= jint(b, "score", c->score);
    rc |= jstr(b, "evidence", c->evidence);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

int
view_problem_link_json(struct tc_buf *b, const struct problem_link *l)
{
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "incident");
    rc |= tc_json_i64(b, l->incident_id);
    rc |= jstr(b, "what", l->removed ? "unlinked" : "linked");
    rc |= jstr(b, "rule", l->rule);
    rc |= jstr(b, "fields", l->fields);
    rc |= jtime(b, "ts", l->ts);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

int
view_problem_note_json(struct tc_buf *b, const struct problem_note *n)
{
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "ts");
    rc |= tc_json_i64(b, n->ts);
    rc |= jstr(b, "what", n->what);
    rc |= jstr(b, "who", n->who);
    rc |= jstr(b, "detail", n->detail);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

void
view_problem_row(struct tc_table *t, const struct view_problem *v)
{
    char iso[TC_RFC3339_MAX];

    tc_table_cellf(t, "%" PRId64, v->p->id);
    tc_table_cell(t, problem_state_name(v->p->state));
    tc_table_cell(t, v->p->rule);
    tc_table_cellf(t, "%zu", v->nincidents);
    tc_table_cellf(t, "%zu", v->nhosts);
    tc_table_cell(t, v->p->root_host);
    tc_rfc3339(v->p->opened_at, 0, iso, sizeof(iso));
    tc_table_cell(t, iso);
    tc_table_cell(t, v->p->title);
}

void
view_candidate_row(struct tc_table *t, const struct problem_candidate *c)
{
    tc_table_cellf(t, "%d", c->rank);
    tc_table_cell(t, c->host);
    if (c->incident_id)
        tc_table_cellf(t, "%" PRId64, c->incident_id);
    else
        tc_table_cell(t, NULL);
    tc_table_cellf(t, "%" PRId64, c->score);
    tc_table_cell(t, c->evidence);
}

void
view_link_row(struct tc_table *t, const struct problem_link *l)
{
    char iso[TC_RFC3339_MAX];

    tc_rfc3339(l->ts, 3, iso, sizeof(iso));
    tc_table_cell(t, iso);
    tc_table_cellf(t, "%" PRId64, l->incident_id);
    tc_table_cell(t, l->removed ? "unlinked" : "linked");
    tc_table_cell(t, l->rule);
    tc_table_cell(t, l->fields);
}

/* "key  value\n", value escaped. */
static int
line(struct tc_buf *b, const char *key, const char *v)
{
    int rc = 0;

    rc |= tc_buf_printf(b, "%-14s", key);
    rc |= tc_escape_buf(b, v && v[0] ? v : "-", v && v[0] ? strlen(v) : 1);
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

int
view_problem_text(struct tc_buf *b, const struct view_problem *v)
{
    const struct problem *p = v->p;
    char num[32];
    int rc = 0;

    snprintf(num, sizeof(num), "%" PRId64, p->id);
    rc |= line(b, "problem", num);
    rc |= line(b, "state", problem_state_name(p->state));
    rc |= line(b, "title", p->title);
    rc |= line(b, "rule", p->rule);
    rc |= line(b, "key", p->key);
    rc |= line(b, "root cause", p->root_host);
    rc |= tline(b, "opened", p->opened_at);
    rc |= tline(b, "resolved", p->resolved_at);
    rc |= tline(b, "closed", p->closed_at);
    rc |= tc_buf_printf(b, "%-14s", "incidents");
    for (size_t i = 0; i < v->nincidents; i++)
        rc |= tc_buf_printf(b, "%s%" PRId64, i ? " " : "", v->incidents[i]);
    rc |= tc_buf_printf(b, "%s\n", v->nincidents ? "" : "-");
    rc |= tc_buf_printf(b, "%-14s", "hosts");
    for (size_t i = 0; i < v->nhosts; i++) {
        if (i)
            rc |= tc_buf_printf(b, " ");
        rc |= tc_escape_buf(b, v->hosts[i], strlen(v->hosts[i]));
    }
    rc |= tc_buf_printf(b, "%s\n", v->nhosts ? "" : "-");
    if (p->known_error_at != 0) {
        rc |= line(b, "known error", p->root_cause);
        rc |= line(b, "workaround", p->workaround);
    }
    for (int i = 0; i < PROBLEM_WHYS; i++) {
        char k[16];

        if (p->whys[i] == NULL || p->whys[i][0] == '\0')
            continue;
        snprintf(k, sizeof(k), "why %d", i + 1);
        rc |= line(b, k, p->whys[i]);
    }
    for (size_t i = 0; i < p->nfactors; i++)
        rc |= line(b, problem_factor_name(p->factors[i].category),
                   p->factors[i].text);
    /* "review 12     impact: ...": the field is one of a fixed set. */
    for (size_t i = 0; i < p->nreviews; i++) {
        char k[40];

        snprintf(k, sizeof(k), "review %" PRId64, p->reviews[i].incident_id);
        rc |= tc_buf_printf(b, "%-14s%s: ", k, p->reviews[i].field);
        rc |= tc_escape_buf(b, p->reviews[i].text, strlen(p->reviews[i].text));
        rc |= tc_buf_printf(b, "\n");
    }
    return rc ? -ENOBUFS : 0;
}
