/*
 * runbooks_match: which runbook applies to an incident, and why the
 * others do not (runbooks.h, docs/runbooks.md "Matching"); templates.
 * Pure: no I/O, no clock, no log, no allocation; it will run inside
 * the engine step, and replay must decide the same.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "runbooks/runbooks.h"
#include "wire.h"

/* Subject values quoted in a "why" are cut to this many bytes. */
#define WHY_VALUE 96

/* "[a, b, c]" of v into out (cap), cut with "..." when full. */
static void
list_text(char *out, size_t cap, char *const *v, size_t n)
{
    size_t len = 0;

    len += (size_t)snprintf(out, cap, "[");
    for (size_t i = 0; i < n && len < cap; i++)
        len +=
            (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", v[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "]");
    else if (cap > 4)
        memcpy(out + cap - 5, "...]", 5);
}

static int
any_glob(char *const *globs, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], s, 0) == 0)
            return 1;
    return 0;
}

static const char *
kv_find(const struct runbook_kv *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return v[i].val;
    return NULL;
}

static void
severity_text(char *out, size_t cap, unsigned bits)
{
    size_t len = 0;

    len += (size_t)snprintf(out, cap, "[");
    for (int s = TC_SEV_OK; s <= TC_SEV_CRITICAL && len < cap; s++)
        if (bits & (1u << s))
            len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                    len > 1 ? ", " : "",
                                    tc_severity_name((enum tc_severity)s));
    if (len < cap)
        snprintf(out + len, cap - len, "]");
}

/*
 * Check every condition of rb against s: c->nconds, c->npass, and in
 * c->why the first that failed (or "matched"). Conditions are checked
 * in a fixed order: class, host, severity, labels, problem rule.
 */
static void
check_one(const struct runbook *rb, const struct runbook_subject *s,
          struct runbook_check *c)
{
    const struct runbook_cond *m = &rb->match;
    const char *cls = s->cls ? s->cls : "";
    const char *host = s->host ? s->host : "";
    const char *rule =
        s->problem_rule && *s->problem_rule ? s->problem_rule : "none";
    char list[RUNBOOK_WHY_MAX / 2];
    int failed = 0;

    c->rb = rb;
    c->nconds = c->npass = 0;
    c->why[0] = '\0';
#define FAIL(...)                                                              \
    do {                                                                       \
        if (!failed)                                                           \
            snprintf(c->why, sizeof(c->why), __VA_ARGS__);                     \
        failed = 1;                                                            \
    } while (0)
    if (m->nclasses > 0) {
        c->nconds++;
        if (any_glob(m->classes, m->nclasses, cls))
            c->npass++;
        else {
            list_text(list, sizeof(list), m->classes, m->nclasses);
            FAIL("class %.*s not in %s", WHY_VALUE, cls, list);
        }
    }
    if (m->nhosts > 0) {
        c->nconds++;
        if (any_glob(m->hosts, m->nhosts, host))
            c->npass++;
        else {
            list_text(list, sizeof(list), m->hosts, m->nhosts);
            FAIL("host %.*s not in %s", WHY_VALUE, host, list);
        }
    }
    if (m->severities != 0) {
        c->nconds++;
        if (s->severity >= TC_SEV_OK && s->severity <= TC_SEV_CRITICAL &&
            (m->severities & (1u << s->severity)))
            c->npass++;
        else {
            severity_text(list, sizeof(list), m->severities);
            FAIL("severity %s not in %s",
                 tc_severity_name((enum tc_severity)s->severity), list);
        }
    }
    for (size_t i = 0; i < m->nlabels; i++) {
        const char *v = kv_find(s->labels, s->nlabels, m->labels[i].key);

        c->nconds++;
        if (v != NULL && fnmatch(m->labels[i].val, v, 0) == 0)
            c->npass++;
        else if (v == NULL)
            FAIL("label %s absent (wanted %s)", m->labels[i].key,
                 m->labels[i].val);
        else
            FAIL("label %s=%.*s does not match %s", m->labels[i].key, WHY_VALUE,
                 v, m->labels[i].val);
    }
    if (m->nrules > 0) {
        size_t i;

        c->nconds++;
        for (i = 0; i < m->nrules && strcmp(m->rules[i], rule) != 0; i++)
            ;
        if (i < m->nrules)
            c->npass++;
        else {
            list_text(list, sizeof(list), m->rules, m->nrules);
            FAIL("problem rule %s not in %s", rule, list);
        }
    }
#undef FAIL
    /* Loading refuses a runbook without conditions; never match one. */
    c->matched = c->nconds > 0 && c->npass == c->nconds;
    if (c->matched && c->nconds == 1)
        snprintf(c->why, sizeof(c->why), "its one condition holds");
    else if (c->matched)
        snprintf(c->why, sizeof(c->why), "all %u conditions hold", c->nconds);
    else if (c->nconds == 0)
        snprintf(c->why, sizeof(c->why), "no conditions");
}

size_t
runbook_match(const struct runbook_set *set, const struct runbook_subject *s,
              struct runbook_verdict *out)
{
    struct runbook_check tmp, near = {0};
    size_t nmatch = 0;

    out->best = out->nearest = NULL;
    out->nchecks = 0;
    out->nearest_why[0] = '\0';
    if (set == NULL)
        return 0;
    /* set->v is sorted by priority, then id: the first match is best. */
    for (size_t i = 0; i < set->n; i++) {
        int keep = out->checks != NULL && i < out->cap;
        struct runbook_check *c = keep ? &out->checks[i] : &tmp;

        check_one(&set->v[i], s, c);
        if (keep)
            out->nchecks = i + 1;
        if (c->matched) {
            if (nmatch++ == 0)
                out->best = c->rb;
            continue;
        }
        /* Nearest: the highest share of its conditions held; earlier
         * (higher priority) wins a tie. */
        if (out->nearest == NULL || (uint64_t)c->npass * near.nconds >
                                        (uint64_t)near.npass * c->nconds) {
            near = *c;
            out->nearest = c->rb;
        }
    }
    if (out->nearest != NULL)
        snprintf(out->nearest_why, sizeof(out->nearest_why), "%s", near.why);
    return nmatch;
}

/* A placeholder's name at t (after "{"), up to "}": its length, or 0. */
static size_t
placeholder(const char *t, const char **kind, const char **name,
            size_t *namelen)
{
    const char *close = strchr(t, '}');
    size_t n;

    if (close == NULL)
        return 0;
    n = (size_t)(close - t);
    *name = NULL;
    *namelen = 0;
    if (n == 4 && memcmp(t, "host", 4) == 0) {
        *kind = "host";
        return n;
    }
    if (n > 6 && memcmp(t, "field.", 6) == 0) {
        *kind = "field";
        *name = t + 6;
        *namelen = n - 6;
    } else if (n > 6 && memcmp(t, "label.", 6) == 0) {
        *kind = "label";
        *name = t + 6;
        *namelen = n - 6;
    } else {
        return 0;
    }
    if (*namelen > RUNBOOK_MAX_ID)
        return 0;
    for (size_t i = 0; i < *namelen; i++) {
        char c = (*name)[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return n;
}

/*
 * Walk template t; with s, write the expansion to out (cap bytes).
 * Without s (check only), out may be NULL.
 */
static int
template_walk(const char *t, const struct runbook_subject *s, char *out,
              size_t cap, char *err, size_t errlen)
{
    size_t len = 0;

#define PUT(p, n)                                                              \
    do {                                                                       \
        if (out != NULL) {                                                     \
            if (len + (n) >= cap)                                              \
                return -ENOBUFS;                                               \
            memcpy(out + len, (p), (n));                                       \
        }                                                                      \
        len += (n);                                                            \
    } while (0)
    for (const char *q = t; *q;) {
        const char *kind, *name, *v = NULL;
        size_t namelen, n;

        if ((q[0] == '{' && q[1] == '{') || (q[0] == '}' && q[1] == '}')) {
            PUT(q, 1);
            q += 2;
            continue;
        }
        if (*q == '}') {
            snprintf(err, errlen,
                     "template: a lone '}' at byte %zu (write '}}' for a "
                     "literal brace)",
                     (size_t)(q - t));
            return -EINVAL;
        }
        if (*q != '{') {
            PUT(q, 1);
            q++;
            continue;
        }
        if ((n = placeholder(q + 1, &kind, &name, &namelen)) == 0) {
            snprintf(err, errlen,
                     "template: bad placeholder at byte %zu: expected "
                     "{host}, {field.NAME} or {label.NAME} (write '{{' for "
                     "a literal brace)",
                     (size_t)(q - t));
            return -EINVAL;
        }
        if (s != NULL) {
            char key[RUNBOOK_MAX_ID + 1];

            memcpy(key, name ? name : "", namelen);
            key[namelen] = '\0';
            if (strcmp(kind, "host") == 0)
                v = s->host;
            else if (strcmp(kind, "field") == 0)
                v = kv_find(s->fields, s->nfields, key);
            else
                v = kv_find(s->labels, s->nlabels, key);
            if (v == NULL) {
                snprintf(err, errlen, "the incident's event has no %s %s", kind,
                         namelen ? key : "");
                return -ENOENT;
            }
            PUT(v, strlen(v));
        }
        q += n + 2;
    }
#undef PUT
    if (out != NULL)
        out[len] = '\0';
    return 0;
}

int
runbook_template_check(const char *t, char *err, size_t errlen)
{
    return template_walk(t, NULL, NULL, 0, err, errlen);
}

int
runbook_expand(const char *t, const struct runbook_subject *s, char *out,
               size_t cap, char *err, size_t errlen)
{
    static const struct runbook_subject none = {0};

    if (cap == 0)
        return -ENOBUFS;
    return template_walk(t, s ? s : &none, out, cap, err, errlen);
}

void
runbook_match_summary(const struct runbook *rb, char *out, size_t cap)
{
    const struct runbook_cond *m = &rb->match;
    char list[RUNBOOK_WHY_MAX];
    size_t len = 0;

    out[0] = '\0';
#define ADD(...)                                                               \
    do {                                                                       \
        if (len < cap)                                                         \
            len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);        \
    } while (0)
    if (m->nclasses) {
        list_text(list, sizeof(list), m->classes, m->nclasses);
        ADD("%sclass %s", len ? "; " : "", list);
    }
    if (m->nhosts) {
        list_text(list, sizeof(list), m->hosts, m->nhosts);
        ADD("%shosts %s", len ? "; " : "", list);
    }
    if (m->severities) {
        severity_text(list, sizeof(list), m->severities);
        ADD("%sseverity %s", len ? "; " : "", list);
    }
    for (size_t i = 0; i < m->nlabels; i++)
        ADD("%slabel %s=%s", len ? "; " : "", m->labels[i].key,
            m->labels[i].val);
    if (m->nrules) {
        list_text(list, sizeof(list), m->rules, m->nrules);
        ADD("%sproblem_rule %s", len ? "; " : "", list);
    }
#undef ADD
}
