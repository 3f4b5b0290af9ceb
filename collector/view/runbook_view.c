/*
 * runbook_view: a runbook set as JSON (runbook_view.h); moved out of
 * tocsinctl runbooks list for the HTTP API. Its three small key helpers
 * also serve tocsinctl runbooks test's JSON.
 */
#include "view/runbook_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "wire.h"

void
view_jkey_str(struct tc_buf *b, const char *key, const char *v, int first)
{
    if (!first)
        tc_json_raw(b, ",");
    tc_json_key(b, key);
    if (v == NULL)
        tc_json_raw(b, "null");
    else
        tc_json_str(b, v, strlen(v));
}

void
view_jkvs(struct tc_buf *b, const char *key, const struct runbook_kv *v,
          size_t n)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    tc_json_raw(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            tc_json_raw(b, ",");
        tc_json_key(b, v[i].key);
        tc_json_str(b, v[i].val, strlen(v[i].val));
    }
    tc_json_raw(b, "}");
}

void
view_jhash(struct tc_buf *b, const char *key, uint64_t h)
{
    char hex[17];

    snprintf(hex, sizeof(hex), "%016" PRIx64, h);
    view_jkey_str(b, key, hex, 0);
}

static void
jstrs(struct tc_buf *b, const char *key, char *const *v, size_t n)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    tc_json_raw(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            tc_json_raw(b, ",");
        tc_json_str(b, v[i], strlen(v[i]));
    }
    tc_json_raw(b, "]");
}

int
view_runbook_json(struct tc_buf *b, const struct runbook *rb)
{
    const struct runbook_cond *m = &rb->match;
    char summary[1024];
    char *sev[TC_SEV_CRITICAL + 1];
    size_t nsev = 0;

    for (int s = TC_SEV_OK; s <= TC_SEV_CRITICAL; s++)
        if (m->severities & (1u << s))
            sev[nsev++] = (char *)tc_severity_name((enum tc_severity)s);
    runbook_match_summary(rb, summary, sizeof(summary));
    tc_json_raw(b, "{");
    view_jkey_str(b, "id", rb->id, 1);
    view_jkey_str(b, "title", rb->title, 0);
    view_jkey_str(b, "file", rb->file, 0);
    tc_json_raw(b, ",");
    tc_json_key(b, "priority");
    tc_json_i64(b, rb->priority);
    tc_json_raw(b, ",");
    tc_json_key(b, "match");
    tc_json_raw(b, "{");
    tc_json_key(b, "class");
    tc_json_raw(b, "[");
    for (size_t i = 0; i < m->nclasses; i++) {
        if (i)
            tc_json_raw(b, ",");
        tc_json_str(b, m->classes[i], strlen(m->classes[i]));
    }
    tc_json_raw(b, "]");
    view_jkvs(b, "labels", m->labels, m->nlabels);
    jstrs(b, "severity", sev, nsev);
    jstrs(b, "problem_rule", m->rules, m->nrules);
    jstrs(b, "hosts", m->hosts, m->nhosts);
    tc_json_raw(b, "}");
    view_jkey_str(b, "summary", summary, 0);
    view_jkey_str(b, "action", rb->action, 0);
    view_jkvs(b, "params", rb->params, rb->nparams);
    jstrs(b, "links", rb->links, rb->nlinks);
    view_jhash(b, "hash", rb->hash);
    return tc_json_raw(b, "}");
}

int
view_runbook_skipped_json(struct tc_buf *b, const struct runbook_set *set)
{
    tc_json_raw(b, ",");
    tc_json_key(b, "skipped");
    tc_json_raw(b, "[");
    for (size_t i = 0; i < set->nskipped; i++) {
        tc_json_raw(b, i ? ",\n  {" : "\n  {");
        view_jkey_str(b, "file", set->skipped[i].file, 1);
        view_jkey_str(b, "error", set->skipped[i].error, 0);
        tc_json_raw(b, "}");
    }
    return tc_json_raw(b, "]");
}

int
view_runbook_set_json(struct tc_buf *b, const struct runbook_set *set)
{
    tc_json_raw(b, "{");
    view_jkey_str(b, "dir", set->dir, 1);
    view_jhash(b, "hash", set->hash);
    tc_json_raw(b, ",");
    tc_json_key(b, "runbooks");
    tc_json_raw(b, "[");
    for (size_t i = 0; i < set->n; i++) {
        tc_json_raw(b, i ? ",\n  " : "\n  ");
        view_runbook_json(b, &set->v[i]);
    }
    tc_json_raw(b, "]");
    view_runbook_skipped_json(b, set);
    return tc_json_raw(b, "}");
}
