/*
 * runbooks_parse: one runbook file's bytes into a struct runbook (see
 * runbooks.h, docs/runbooks.md "Format").
 *
 * The front matter is handed to common/conf's YAML loader, so a runbook
 * gets the refusals every config file gets (anchors and aliases, so no
 * alias bomb; duplicate keys; nesting deeper than TC_CONF_MAX_DEPTH;
 * more than one document). The bytes given to it run from the opening
 * "---" (a YAML document start) up to the closing "---" line, which is
 * left out: line numbers in its messages are the file's own. The keys
 * are walked here, not with a conf schema, because match conditions are
 * lists or single values of globs, and every complaint must end up as
 * the file's one recorded reason as well as in the log.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hash.h"
#include "log.h"
#include "runbooks/runbooks.h"
#include "util.h"
#include "wire.h"

/* Complaints kept per file; the rest are counted. */
#define PARSE_MAX_MSGS 16
#define PARSE_MSG_MAX 512

struct pctx {
    const char *path;
    char msgs[PARSE_MAX_MSGS][PARSE_MSG_MAX]; /* "PATH:LINE: why" */
    size_t nmsgs;
    size_t nlost; /* complaints beyond PARSE_MAX_MSGS */
};

static void
keep(struct pctx *p, const char *msg)
{
    if (p->nmsgs == PARSE_MAX_MSGS) {
        p->nlost++;
        return;
    }
    snprintf(p->msgs[p->nmsgs++], PARSE_MSG_MAX, "%s", msg);
}

/* common/conf's complaints, diverted while it parses (log.h). */
static void
divert_cb(void *arg, const char *msg)
{
    keep(arg, msg);
}

static void perr(struct pctx *p, int line, const char *fmt, ...)
    TC_PRINTF(3, 4);

static void
perr(struct pctx *p, int line, const char *fmt, ...)
{
    char msg[PARSE_MSG_MAX - 64], full[PARSE_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "%s:%d: %s", p->path, line, msg);
    keep(p, full);
}

static int
is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* A one-line value: no C0 control or DEL. Index of the first, or -1. */
static long
first_ctl(const char *s)
{
    for (const char *q = s; *q; q++)
        if (is_ctl((unsigned char)*q))
            return q - s;
    return -1;
}

/* [A-Za-z0-9_.-]{1,max}. */
static int
name_ok(const char *s, size_t max, int dot_dash)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (const char *q = s; *q; q++) {
        char c = *q;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' ||
              (dot_dash && (c == '.' || c == '-'))))
            return 0;
    }
    return 1;
}

/* A scalar's text, or NULL (reported) if the node is not a non-null
 * scalar. */
static const char *
scalar(struct pctx *p, const struct tc_conf_node *n, const char *key)
{
    if (n->kind != TC_CONF_SCALAR) {
        perr(p, n->line, "%s: expected a single value", key);
        return NULL;
    }
    if (n->null) {
        perr(p, n->line, "%s: no value", key);
        return NULL;
    }
    return n->str;
}

/* One string of a list or map: length and control characters. */
static int
str_ok(struct pctx *p, int line, const char *key, const char *s, size_t max)
{
    size_t n = strlen(s);
    long c;

    if (n == 0) {
        perr(p, line, "%s: empty value", key);
        return 0;
    }
    if (n > max) {
        perr(p, line, "%s: %zu bytes, at most %zu", key, n, max);
        return 0;
    }
    if ((c = first_ctl(s)) >= 0) {
        perr(p, line, "%s: control character 0x%02x at byte %ld", key,
             (unsigned)(unsigned char)s[c], c);
        return 0;
    }
    return 1;
}

/*
 * A list of strings: one value, or a sequence of values. *out (owned,
 * NULL-terminated) and *n. 0 or -1 (reported).
 */
static int
strlist(struct pctx *p, const struct tc_conf_node *n, const char *key,
        size_t max, char ***out, size_t *nout)
{
    const struct tc_conf_node *const *items;
    const struct tc_conf_node *one[1] = {n};
    size_t count;
    int bad = 0;

    if (n->kind == TC_CONF_MAP) {
        perr(p, n->line, "%s: expected a value or a list of values", key);
        return -1;
    }
    if (n->kind == TC_CONF_SEQ) {
        items = (const struct tc_conf_node *const *)n->items;
        count = n->nitems;
    } else {
        items = one;
        count = 1;
    }
    if (count == 0) {
        perr(p, n->line,
             "%s: an empty list matches nothing; leave the key "
             "out to match any",
             key);
        return -1;
    }
    if (count > RUNBOOK_MAX_LIST) {
        perr(p, n->line, "%s: %zu entries, at most %d", key, count,
             RUNBOOK_MAX_LIST);
        return -1;
    }
    *out = tc_xcalloc(count + 1, sizeof(**out));
    *nout = 0;
    for (size_t i = 0; i < count; i++) {
        const char *s = scalar(p, items[i], key);

        if (s == NULL || !str_ok(p, items[i]->line, key, s, max)) {
            bad = 1;
            continue;
        }
        (*out)[(*nout)++] = tc_xstrdup(s);
    }
    return bad ? -1 : 0;
}

static void
strlist_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int
kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct runbook_kv *)a)->key,
                  ((const struct runbook_kv *)b)->key);
}

static const char *const problem_rules[] = {
    "spread", "reference", "topology", "trend", "major", "none", NULL,
};

static void
parse_match(struct pctx *p, const struct tc_conf_pair *mp,
            struct runbook_cond *m)
{
    const struct tc_conf_node *n = mp->val;
    unsigned nconds = 0;

    if (n->kind != TC_CONF_MAP) {
        perr(p, n->line, "match: expected a map of conditions");
        return;
    }
    for (size_t i = 0; i < n->npairs; i++) {
        const struct tc_conf_pair *kv = &n->pairs[i];
        const char *k = kv->key;

        nconds++;
        if (strcmp(k, "class") == 0) {
            (void)strlist(p, kv->val, "match.class", RUNBOOK_MAX_GLOB,
                          &m->classes, &m->nclasses);
        } else if (strcmp(k, "hosts") == 0) {
            (void)strlist(p, kv->val, "match.hosts", RUNBOOK_MAX_GLOB,
                          &m->hosts, &m->nhosts);
        } else if (strcmp(k, "severity") == 0) {
            char **v = NULL;
            size_t nv = 0;

            if (strlist(p, kv->val, "match.severity", 16, &v, &nv) == 0) {
                for (size_t j = 0; j < nv; j++) {
                    enum tc_severity sev;

                    if (tc_severity_parse(v[j], &sev) < 0)
                        perr(p, kv->val->line,
                             "match.severity: '%s' is not one of ok, info, "
                             "warning, error, critical",
                             v[j]);
                    else
                        m->severities |= 1u << sev;
                }
            }
            strlist_free(v, nv);
        } else if (strcmp(k, "problem_rule") == 0) {
            if (strlist(p, kv->val, "match.problem_rule", 16, &m->rules,
                        &m->nrules) < 0)
                continue;
            for (size_t j = 0; j < m->nrules; j++) {
                size_t r;

                for (r = 0; problem_rules[r] &&
                            strcmp(problem_rules[r], m->rules[j]) != 0;
                     r++)
                    ;
                if (problem_rules[r] == NULL)
                    perr(p, kv->val->line,
                         "match.problem_rule: '%s' is not one of spread, "
                         "reference, topology, trend, major, none",
                         m->rules[j]);
            }
        } else if (strcmp(k, "labels") == 0) {
            const struct tc_conf_node *ln = kv->val;

            if (ln->kind != TC_CONF_MAP || ln->npairs == 0) {
                perr(p, ln->line,
                     "match.labels: expected a map of label "
                     "name to glob, e.g. {service: web}");
                continue;
            }
            if (ln->npairs > RUNBOOK_MAX_LIST) {
                perr(p, ln->line, "match.labels: %zu entries, at most %d",
                     ln->npairs, RUNBOOK_MAX_LIST);
                continue;
            }
            m->labels = tc_xcalloc(ln->npairs, sizeof(*m->labels));
            for (size_t j = 0; j < ln->npairs; j++) {
                const struct tc_conf_pair *lp = &ln->pairs[j];
                const char *v = scalar(p, lp->val, "match.labels");

                if (!str_ok(p, lp->line, "match.labels (name)", lp->key,
                            RUNBOOK_MAX_ID) ||
                    v == NULL ||
                    !str_ok(p, lp->val->line, "match.labels", v,
                            RUNBOOK_MAX_GLOB))
                    continue;
                m->labels[m->nlabels].key = tc_xstrdup(lp->key);
                m->labels[m->nlabels++].val = tc_xstrdup(v);
            }
        } else {
            perr(p, kv->line,
                 "match: unknown condition '%s' (class, labels, severity, "
                 "problem_rule, hosts)",
                 k);
        }
    }
    /* A runbook that matched everything would be sent for every incident:
     * a mistake far more often than an intent. */
    if (nconds == 0)
        perr(p, mp->line,
             "match: no condition; an empty match matches "
             "nothing, so the runbook would never apply");
}

static void
parse_action(struct pctx *p, const struct tc_conf_node *n, struct runbook *rb)
{
    const char *name = NULL;
    const struct tc_conf_node *params = NULL;
    int name_line = n->line;

    if (n->kind != TC_CONF_MAP) {
        perr(p, n->line, "action: expected {name: NAME, params: {...}}");
        return;
    }
    for (size_t i = 0; i < n->npairs; i++) {
        const struct tc_conf_pair *kv = &n->pairs[i];

        if (strcmp(kv->key, "name") == 0) {
            name = scalar(p, kv->val, "action.name");
            name_line = kv->line;
        } else if (strcmp(kv->key, "params") == 0) {
            params = kv->val;
        } else {
            perr(p, kv->line, "action: unknown key '%s' (name, params)",
                 kv->key);
        }
    }
    if (name == NULL) {
        perr(p, n->line, "action: name is required");
        return;
    }
    if (!name_ok(name, RUNBOOK_MAX_ID, 1)) {
        perr(p, name_line, "action.name: expected 1 to %d of A-Z a-z 0-9 _ . -",
             RUNBOOK_MAX_ID);
        return;
    }
    rb->action = tc_xstrdup(name);
    if (params == NULL)
        return;
    if (params->kind != TC_CONF_MAP) {
        perr(p, params->line,
             "action.params: expected a map of name to "
             "value");
        return;
    }
    if (params->npairs > RUNBOOK_MAX_PARAMS) {
        perr(p, params->line, "action.params: %zu entries, at most %d",
             params->npairs, RUNBOOK_MAX_PARAMS);
        return;
    }
    rb->params = tc_xcalloc(params->npairs + 1, sizeof(*rb->params));
    for (size_t i = 0; i < params->npairs; i++) {
        const struct tc_conf_pair *kv = &params->pairs[i];
        const char *v = scalar(p, kv->val, "action.params");
        char why[256];

        if (!name_ok(kv->key, RUNBOOK_MAX_ID, 0)) {
            perr(p, kv->line,
                 "action.params: name '%s': expected 1 to %d of A-Z a-z "
                 "0-9 _",
                 kv->key, RUNBOOK_MAX_ID);
            continue;
        }
        if (v == NULL)
            continue;
        if (strlen(v) > RUNBOOK_MAX_PARAM || first_ctl(v) >= 0) {
            perr(p, kv->val->line,
                 "action.params.%s: longer than %d bytes or holds a control "
                 "character",
                 kv->key, RUNBOOK_MAX_PARAM);
            continue;
        }
        if (runbook_template_check(v, why, sizeof(why)) < 0) {
            perr(p, kv->val->line, "action.params.%s: %s", kv->key, why);
            continue;
        }
        rb->params[rb->nparams].key = tc_xstrdup(kv->key);
        rb->params[rb->nparams++].val = tc_xstrdup(v);
    }
    tc_qsort(rb->params, rb->nparams, sizeof(*rb->params), kv_cmp);
}

static void
parse_priority(struct pctx *p, const struct tc_conf_node *n, int64_t *out)
{
    const char *s = scalar(p, n, "priority");
    char *end;
    long long v;

    if (s == NULL)
        return;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < -RUNBOOK_MAX_PRIORITY ||
        v > RUNBOOK_MAX_PRIORITY) {
        perr(p, n->line, "priority: '%s' is not an integer from %d to %d", s,
             -RUNBOOK_MAX_PRIORITY, RUNBOOK_MAX_PRIORITY);
        return;
    }
    *out = v;
}

static void
walk(struct pctx *p, const struct tc_conf_node *root, struct runbook *rb)
{
    int have_match = 0;

    for (size_t i = 0; i < root->npairs; i++) {
        const struct tc_conf_pair *kv = &root->pairs[i];
        const char *k = kv->key, *s;

        if (strcmp(k, "id") == 0) {
            if ((s = scalar(p, kv->val, "id")) == NULL)
                continue;
            if (!name_ok(s, RUNBOOK_MAX_ID, 1)) {
                perr(p, kv->line, "id: expected 1 to %d of A-Z a-z 0-9 _ . -",
                     RUNBOOK_MAX_ID);
                continue;
            }
            free(rb->id);
            rb->id = tc_xstrdup(s);
        } else if (strcmp(k, "title") == 0) {
            if ((s = scalar(p, kv->val, "title")) == NULL ||
                !str_ok(p, kv->line, "title", s, RUNBOOK_MAX_TITLE))
                continue;
            rb->title = tc_xstrdup(s);
        } else if (strcmp(k, "match") == 0) {
            have_match = 1;
            parse_match(p, kv, &rb->match);
        } else if (strcmp(k, "priority") == 0) {
            parse_priority(p, kv->val, &rb->priority);
        } else if (strcmp(k, "links") == 0) {
            (void)strlist(p, kv->val, "links", RUNBOOK_MAX_GLOB, &rb->links,
                          &rb->nlinks);
        } else if (strcmp(k, "action") == 0) {
            parse_action(p, kv->val, rb);
        } else {
            perr(p, kv->line,
                 "unknown key '%s' (id, title, match, priority, links, "
                 "action)",
                 k);
        }
    }
    if (rb->title == NULL && p->nmsgs == 0)
        perr(p, root->line, "title is required");
    if (!have_match)
        perr(p, root->line,
             "match is required (a runbook with no match "
             "conditions would never apply)");
    if (rb->id == NULL && p->nmsgs == 0)
        perr(p, root->line,
             "the file name is not a valid id: give one with 'id:' "
             "(1 to %d of A-Z a-z 0-9 _ . -)",
             RUNBOOK_MAX_ID);
}

/* The line (1-based) of byte off. */
static int
line_of(const char *data, size_t off)
{
    int line = 1;

    for (size_t i = 0; i < off; i++)
        if (data[i] == '\n')
            line++;
    return line;
}

/* Is data[off..end of line) exactly "---" (a trailing CR or blanks
 * allowed)? *next: the offset after the line's newline, or len. */
static int
fence_at(const char *data, size_t len, size_t off, size_t *next)
{
    const char *nl = memchr(data + off, '\n', len - off);
    size_t end = nl ? (size_t)(nl - data) : len, e = end;

    *next = nl ? end + 1 : len;
    while (e > off &&
           (data[e - 1] == '\r' || data[e - 1] == ' ' || data[e - 1] == '\t'))
        e--;
    return e - off == 3 && memcmp(data + off, "---", 3) == 0;
}

int
runbook_parse(const char *path, const char *default_id, const char *data,
              size_t len, struct runbook *rb, char *err, size_t errlen)
{
    struct pctx *p = tc_xcalloc(1, sizeof(*p));
    struct tc_conf *conf = NULL;
    const char *nul;
    size_t off, next, body = 0, fm_end = 0;
    int found = 0, rc = 0;

    memset(rb, 0, sizeof(*rb));
    p->path = path;
    if (default_id != NULL && name_ok(default_id, RUNBOOK_MAX_ID, 1))
        rb->id = tc_xstrdup(default_id);
    if (len > RUNBOOK_MAX_BYTES) {
        perr(p, 1, "%zu bytes, at most %u", len, RUNBOOK_MAX_BYTES);
        goto out;
    }
    if ((nul = memchr(data, '\0', len)) != NULL) {
        perr(p, line_of(data, (size_t)(nul - data)),
             "a NUL byte: a runbook is text");
        goto out;
    }
    if (len == 0 || !fence_at(data, len, 0, &next)) {
        perr(p, 1,
             "no front matter: the file must start with a '---' line, "
             "then YAML, then a '---' line, then the Markdown body");
        goto out;
    }
    for (off = next; off < len; off = next) {
        if (fence_at(data, len, off, &next)) {
            fm_end = off;
            body = next;
            found = 1;
            break;
        }
    }
    if (!found) {
        perr(p, 1,
             "front matter opened here is never closed with a '---' "
             "line");
        goto out;
    }
    /* From the opening "---" (a YAML document start) to the closing line,
     * which is left out: it would start a second document. */
    log_divert(divert_cb, p);
    rc = tc_conf_load_mem(path, data, fm_end, &conf);
    log_divert(NULL, NULL);
    if (rc < 0) {
        if (p->nmsgs == 0)
            perr(p, 1, "front matter: %s", strerror(-rc));
        goto out;
    }
    walk(p, conf->root, rb);
    if (p->nmsgs == 0) {
        rb->file = tc_xstrdup(path);
        rb->body = tc_xstrndup(data + body, len - body);
        rb->hash = tc_hash64(data, len);
    }
out:
    tc_conf_free(conf);
    for (size_t i = 0; i < p->nmsgs; i++)
        log_warnx("runbooks: %s", p->msgs[i]);
    if (p->nlost > 0)
        log_warnx("runbooks: %s: %zu more problems", path, p->nlost);
    if (p->nmsgs > 0) {
        snprintf(err, errlen, "%s", p->msgs[0]);
        runbook_free(rb);
        rc = -EINVAL;
    } else {
        rc = 0;
    }
    free(p);
    return rc;
}

static void
kv_free(struct runbook_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

void
runbook_free(struct runbook *rb)
{
    if (rb == NULL)
        return;
    free(rb->id);
    free(rb->file);
    free(rb->title);
    free(rb->body);
    strlist_free(rb->match.classes, rb->match.nclasses);
    kv_free(rb->match.labels, rb->match.nlabels);
    strlist_free(rb->match.rules, rb->match.nrules);
    strlist_free(rb->match.hosts, rb->match.nhosts);
    strlist_free(rb->links, rb->nlinks);
    free(rb->action);
    kv_free(rb->params, rb->nparams);
    memset(rb, 0, sizeof(*rb));
}
