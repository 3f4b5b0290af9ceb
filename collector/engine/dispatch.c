/*
 * dispatch: the hints an engine step decides (dispatch.h). Pure: no
 * I/O, no clock, no log; the same inputs give the same hints in the
 * same order, which replay compares.
 */
#include "engine/dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "util.h"
#include "wire.h"

/* A copy of s cut to at most max bytes, not inside a UTF-8 sequence. */
static char *
cut_utf8(const char *s, size_t max, int *cut)
{
    size_t n = strlen(s);

    *cut = 0;
    if (n <= max)
        return tc_xstrdup(s);
    n = max;
    /* Back off continuation bytes (10xxxxxx) and the lead they follow. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    *cut = 1;
    return tc_xstrndup(s, n);
}

/* b's bytes as a new C string (b may never have been appended to). */
static char *
buf_str(const struct tc_buf *b)
{
    if (b->data == NULL)
        return tc_xstrdup("");
    return tc_xstrndup((const char *)tc_buf_head(b), tc_buf_size(b));
}

/* Is a hint with this key already in out? */
static int
have_key(const struct dispatch_hints *out, const char *key)
{
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->v[i].key, key) == 0)
            return 1;
    return 0;
}

/*
 * The action and params of rb filled from s into h; a parameter that
 * cannot be filled (a field the event did not carry) drops the action
 * and says why in note.
 */
static void
fill_action(const struct runbook *rb, const struct runbook_subject *s,
            struct dispatch_hint *h, struct tc_buf *note)
{
    char val[RUNBOOK_MAX_PARAM + 1], err[256];
    struct tc_buf b;

    h->action = NULL;
    h->params = tc_xstrdup("{}");
    if (rb->action == NULL)
        return;
    /* Room for every parameter at its longest, JSON-escaped. */
    tc_buf_init(&b, 8 * RUNBOOK_MAX_PARAMS * (RUNBOOK_MAX_PARAM + 80));
    tc_json_raw(&b, "{");
    for (size_t i = 0; i < rb->nparams; i++) {
        int rc = runbook_expand(rb->params[i].val, s, val, sizeof(val), err,
                                sizeof(err));

        if (rc == 0 && strlen(val) > TC_HINT_MAX_PARAM_VAL) {
            snprintf(err, sizeof(err), "longer than %u bytes",
                     TC_HINT_MAX_PARAM_VAL);
            rc = -ENOBUFS;
        }
        if (rc < 0) {
            char *t = tc_xasprintf("no action %s: parameter %s: %s", rb->action,
                                   rb->params[i].key, err);

            tc_buf_append(note, t, strlen(t));
            free(t);
            tc_buf_close(&b);
            return;
        }
        if (i > 0)
            tc_json_raw(&b, ",");
        tc_json_key(&b, rb->params[i].key);
        tc_json_str(&b, val, strlen(val));
    }
    tc_json_raw(&b, "}");
    free(h->params);
    h->params = buf_str(&b);
    h->action = tc_xstrdup(rb->action);
    tc_buf_close(&b);
}

/*
 * Add one hint: source to agent about s (and problem pid, 0 = none);
 * title, text; rb: the runbook whose action it carries, or NULL.
 */
static void
add(struct dispatch_hints *out, const char *source, int64_t pid,
    const char *agent, const struct dispatch_subject *s, const char *title,
    const char *text, const struct runbook *rb)
{
    struct dispatch_hint *h;
    struct tc_buf note;
    char *key;
    int cut;

    if (pid != 0)
        key = tc_xasprintf("%s|problem:%" PRId64 "|%s", source, pid, agent);
    else
        key = tc_xasprintf("%s|incident:%" PRId64 "|%s", source, s->incident_id,
                           agent);
    if (have_key(out, key)) {
        free(key);
        return;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 8;
        out->v = tc_xreallocarray(out->v, out->cap, sizeof(*out->v));
    }
    h = &out->v[out->n++];
    memset(h, 0, sizeof(*h));
    tc_buf_init(&note, 4096);
    h->key = key;
    h->agent = tc_xstrdup(agent);
    h->incident_id = s->incident_id;
    h->problem_id = pid;
    h->source = tc_xstrdup(source);
    h->title = cut_utf8(title, TC_HINT_MAX_TITLE, &cut);
    h->text = cut_utf8(text, TC_HINT_MAX_TEXT, &cut);
    if (cut) {
        char *t = tc_xasprintf("text cut to %u bytes; ", TC_HINT_MAX_TEXT);

        tc_buf_append(&note, t, strlen(t));
        free(t);
    }
    if (rb != NULL)
        fill_action(rb, &s->rs, h, &note);
    else
        h->params = tc_xstrdup("{}");
    h->note = buf_str(&note);
    tc_buf_close(&note);
}

/* The best runbook of set for s, or NULL. */
static const struct runbook *
best(const struct runbook_set *set, const struct runbook_subject *s)
{
    struct runbook_verdict v;

    if (set == NULL || set->n == 0)
        return NULL;
    memset(&v, 0, sizeof(v));
    runbook_match(set, s, &v);
    return v.best;
}

void
dispatch_incident_opened(const struct runbook_set *set,
                         const struct dispatch_subject *s,
                         struct dispatch_hints *out)
{
    const struct runbook *rb = best(set, &s->rs);
    char *source;

    if (rb == NULL || s->rs.host == NULL || s->rs.host[0] == '\0')
        return;
    source = tc_xasprintf("runbook:%s", rb->id);
    add(out, source, 0, s->rs.host, s, rb->title, rb->body, rb);
    free(source);
}

/*
 * The subject of p's host i: that host's own incident in p when it has
 * one (what its hint names, what its templates are filled from), else
 * the host alone: class and severity of the trigger s, no labels or
 * fields, incident 0 (its hint names only the problem). Both are
 * matched as members of p.
 */
static struct dispatch_subject
member_subject(const struct dispatch_subject *s,
               const struct dispatch_problem *p, size_t i)
{
    struct dispatch_subject m;

    if (p->subjects != NULL && p->subjects[i] != NULL) {
        m = *p->subjects[i];
    } else {
        memset(&m, 0, sizeof(m));
        m.rs.cls = s->rs.cls;
        m.rs.severity = s->rs.severity;
        m.rs.host = p->hosts[i];
    }
    m.rs.problem_rule = p->rule;
    return m;
}

void
dispatch_problem(const struct runbook_set *set,
                 const struct dispatch_subject *s,
                 const struct dispatch_problem *p, struct dispatch_hints *out)
{
    struct dispatch_subject ps = *s;
    const struct runbook *rb;
    char *source;

    /* Matched as a member of p: conditions on its rule hold. The
     * runbook is the trigger's; each host's hint is about its own
     * incident (member_subject), never another host's, so that its
     * action's result lands on that incident. */
    ps.rs.problem_rule = p->rule;
    rb = best(set, &ps.rs);
    if (rb != NULL) {
        source = tc_xasprintf("runbook:%s", rb->id);
        for (size_t i = 0; i < p->nhosts; i++) {
            struct dispatch_subject m = member_subject(s, p, i);

            add(out, source, p->id, p->hosts[i], &m, rb->title, rb->body, rb);
        }
        free(source);
    }
    if (p->known_error && p->workaround != NULL && p->workaround[0] != '\0') {
        char *title = tc_xasprintf("Known error: %s", p->title);

        source = tc_xasprintf("known-error:%" PRId64, p->id);
        for (size_t i = 0; i < p->nhosts; i++) {
            struct dispatch_subject m = member_subject(s, p, i);

            add(out, source, p->id, p->hosts[i], &m, title, p->workaround,
                NULL);
        }
        free(source);
        free(title);
    }
}

void
dispatch_hints_free(struct dispatch_hints *h)
{
    for (size_t i = 0; i < h->n; i++) {
        struct dispatch_hint *x = &h->v[i];

        free(x->key);
        free(x->agent);
        free(x->source);
        free(x->title);
        free(x->text);
        free(x->action);
        free(x->params);
        free(x->note);
    }
    free(h->v);
    memset(h, 0, sizeof(*h));
}
