/*
 * problem: the deterministic problem engine (see problem.h,
 * docs/internals/problems.md and docs/correlation.md).
 *
 * State is three arrays kept sorted by key: the incidents it knows
 * (by id, with their references and marks), the problems in memory (by
 * id) and the known hosts (by lower-case name), plus the trend
 * openings per class (by class). Every walk that produces output goes
 * over these arrays in order, so the output never depends on how the
 * state was built (live, or loaded after a restart).
 *
 * Rankings and inhibition marks are a function of a problem's members
 * and their evidence; they are recomputed for the problems touched
 * since the last drain, when the drain (or problem_engine_pending)
 * settles the engine.
 *
 * So that a step costs what it touches, not what the engine holds,
 * the questions the rules ask go through indices rather than a walk of
 * every incident: a problem's members, the incidents of a host, of a
 * class and those naming a host (each a list in id order, so the first
 * match is the one a walk in id order would find), and the incidents
 * touched since the last drain (their marks, what may be forgotten).
 * Each is kept where an incident is added, changed or removed
 * ("indices" below).
 */
#include "engine/problem.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "htab.h"
#include "util.h"

#define NS_PER_S INT64_C(1000000000)

/* Score parts (docs/correlation.md, "Ranking"). */
#define SCORE_ONSET 30        /* earliest onset among the problem's incidents */
#define SCORE_NAMED 25        /* per other host whose events name it */
#define SCORE_NAMED_MAX 4     /* hosts counted for SCORE_NAMED */
#define SCORE_UPSTREAM 20     /* a topology dependency of another host */
#define SCORE_UP_HOST 5       /* per dependent host */
#define SCORE_UP_MAX 4        /* hosts counted for SCORE_UP_HOST */
#define SCORE_AFFECTED_MAX 10 /* +1 per host it explains, up to this */
#define CHAIN_HOSTS 64        /* hosts a reference chain walk visits */

#define EVIDENCE_MAX 512 /* bytes of a candidate's evidence text */
#define LIST_HOSTS 5     /* hosts named in an evidence text */

struct pref {
    char *host;  /* the named host, as known; owned */
    char *field; /* owned */
    char *value; /* owned */
    int64_t ts;
};

struct prob;

/* Incidents in id order: an index (borrows the incidents). */
struct plist {
    struct pinc **v;
    size_t n, cap;
};

struct pinc {
    int64_t id;
    int known;     /* an incident change (or load) was seen */
    char *host;    /* owned; NULL until known */
    char *cls;     /* fingerprint class; owned */
    char *service; /* owned, "" = none */
    enum incident_state state;
    enum tc_severity sev;
    int priority;
    int64_t opened_at, first_seen, resolved_at, closed_at;
    struct problem_mark mark; /* current mark */
    struct problem_mark sent; /* as last handed over (or loaded) */
    struct pref *refs;        /* owned, in the order seen */
    size_t nrefs;
    struct prob *in; /* the problem whose members list holds it: the one
                        mark.problem_id names while it is in memory */
    int indexed;     /* in the host and class indices (known) */
    int touched;     /* in e->touched since the last drain */
    int dead;        /* the drain forgets it */
};

struct term {
    char *what; /* owned; without its "(+N)" */
    int64_t points;
};

struct cand {
    char *host; /* owned */
    int64_t incident_id;
    int64_t score;
    int64_t onset;                        /* ns; INT64_MAX = none */
    char *evidence;                       /* owned: the terms in words */
    struct term terms[PROBLEM_MAX_TERMS]; /* what explain breaks down */
    size_t nterms;
};

struct prob {
    struct problem v; /* strings owned */
    int dirty;        /* changed since the last drain */
    int rank_dirty;   /* members or evidence changed: re-rank */
    int cands_dirty;  /* ranking changed since the last drain */
    struct cand *cands;
    size_t ncands;
    struct plist mem; /* members: known, mark.problem_id == v.id */
};

/* The problems of one rule and key (open_keyed's question), id order. */
struct qkey {
    struct tc_hnode hn;
    const char *rule, *key; /* borrowed from the first problem */
    struct prob **v;        /* borrowed */
    size_t n, cap;
};

/* One key of a keyed index: the incidents of a host or class. */
struct pkey {
    struct tc_hnode hn;
    char *key; /* owned: a host (compared without case) or a class */
    struct plist l;
};

struct link_out {
    struct problem_link v;
    char *rule, *fields; /* owned */
};

struct ref_out {
    int64_t incident_id;
    size_t idx; /* into that incident's refs (they only grow) */
};

struct open_out {
    char *cls; /* owned */
    int64_t incident_id, ts;
};

struct note_out {
    int64_t id, ts;
    const char *what;   /* static */
    char *who, *detail; /* owned */
};

struct trend {
    char *cls;   /* owned */
    int64_t *ts; /* sorted ascending */
    size_t n, cap;
};

struct problem_engine {
    struct problem_config cfg; /* deep copy: strings and arrays owned */
    struct pinc **incs;        /* sorted by id */
    size_t ninc, capinc;
    struct prob **probs; /* sorted by id */
    size_t nprob, capprob;
    char **hosts; /* known hosts, lower case, sorted */
    size_t nhost, caphost;
    struct trend *trends; /* sorted by cls */
    size_t ntrend, captrend;
    int64_t trend_min; /* no trend opening is older (a bound; INT64_MAX:
                          none), so that a tick with none to drop does
                          not walk every class */
    struct link_out *links;
    size_t nlinks, caplinks;
    struct ref_out *refs;
    size_t nrefs, caprefs;
    struct open_out *opens;
    size_t nopens, capopens;
    struct note_out *notes;
    size_t nnotes, capnotes;
    int64_t last_id;
    int loaded; /* rows were loaded and not yet settled */
    /* Indices (struct pkey; see the file's opening): known incidents
     * by host and by class, and every incident by each host its
     * references name. */
    struct tc_htab by_host, by_cls, by_named;
    struct tc_htab by_key; /* struct qkey: problems by rule and key */
    struct pinc **touched; /* created, changed or re-marked since the
                              last drain; borrowed */
    size_t ntouched, captouched;
};

/* Grow an array to hold one more element. */
#define GROW(arr, n, cap)                                                      \
    do {                                                                       \
        if ((n) == (cap)) {                                                    \
            (cap) = (cap) ? (cap)*2 : 16;                                      \
            (arr) = tc_xreallocarray((arr), (cap), sizeof(*(arr)));            \
        }                                                                      \
    } while (0)

static const char *const state_names[] = {"open", "investigating",
                                          "known_error", "resolved", "closed"};
static const char *const verb_names[] = {
    "investigate", "known-error", "resolve", "close", "link",
    "unlink",      "note",        "rca",     "review"};
static const char *const factor_names[] = {"people", "process", "technology",
                                           "environment", "supplier"};
/* Post-incident review fields; "action" (the last) appends. */
static const char *const review_fields[] = {"summary",  "impact",   "detection",
                                            "response", "recovery", "lessons",
                                            "action"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
name_parse(const char *const *names, size_t n, const char *s, int *out)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    return -EINVAL;
}

const char *
problem_state_name(enum problem_state s)
{
    return (unsigned)s < NELEM(state_names) ? state_names[s] : NULL;
}

int
problem_state_parse(const char *s, enum problem_state *out)
{
    int v, rc = name_parse(state_names, NELEM(state_names), s, &v);

    if (rc == 0)
        *out = (enum problem_state)v;
    return rc;
}

const char *
problem_verb_name(enum problem_verb v)
{
    return (unsigned)v < NELEM(verb_names) ? verb_names[v] : NULL;
}

int
problem_verb_parse(const char *s, enum problem_verb *out)
{
    int v, rc = name_parse(verb_names, NELEM(verb_names), s, &v);

    if (rc == 0)
        *out = (enum problem_verb)v;
    return rc;
}

int
problem_review_field_ok(const char *field)
{
    int v;

    return field != NULL &&
           name_parse(review_fields, NELEM(review_fields), field, &v) == 0;
}

const char *
problem_factor_name(enum problem_factor_cat c)
{
    return (unsigned)c < NELEM(factor_names) ? factor_names[c] : NULL;
}

int
problem_factor_parse(const char *s, enum problem_factor_cat *out)
{
    int v, rc = name_parse(factor_names, NELEM(factor_names), s, &v);

    if (rc == 0)
        *out = (enum problem_factor_cat)v;
    return rc;
}

void
problem_config_default(struct problem_config *c)
{
    memset(c, 0, sizeof(*c));
    c->resolve_after_ns = 3600 * NS_PER_S;
    c->spread = 1;
    c->spread_min_hosts = 3;
    c->spread_window_ns = 600 * NS_PER_S;
    c->reference = 1;
    c->reference_window_ns = 600 * NS_PER_S;
    c->topology_window_ns = 600 * NS_PER_S;
    c->trend = 1;
    c->trend_count = 5;
    c->trend_period_ns = 7 * 86400 * NS_PER_S;
    c->major = 1;
    c->major_priority = 2;
}

static void
config_release(struct problem_config *c)
{
    for (size_t i = 0; i < c->nreference_fields; i++)
        free(c->reference_fields[i]);
    free((void *)c->reference_fields);
    for (size_t i = 0; i < c->ndeps; i++) {
        free(c->deps[i].from);
        free(c->deps[i].to);
    }
    free((void *)c->deps);
    memset(c, 0, sizeof(*c));
}

void
problem_engine_set_config(struct problem_engine *e,
                          const struct problem_config *c)
{
    char **fields = NULL;
    struct problem_dep *deps = NULL;

    if (c->nreference_fields > 0) {
        fields = tc_xcalloc(c->nreference_fields, sizeof(*fields));
        for (size_t i = 0; i < c->nreference_fields; i++)
            fields[i] = tc_xstrdup(c->reference_fields[i]);
    }
    if (c->ndeps > 0) {
        deps = tc_xcalloc(c->ndeps, sizeof(*deps));
        for (size_t i = 0; i < c->ndeps; i++) {
            deps[i].from = tc_xstrdup(c->deps[i].from);
            deps[i].to = tc_xstrdup(c->deps[i].to);
            deps[i].line = c->deps[i].line;
        }
    }
    config_release(&e->cfg);
    e->cfg = *c;
    e->cfg.reference_fields = fields;
    e->cfg.deps = deps;
    if (e->cfg.spread_min_hosts < 2)
        e->cfg.spread_min_hosts = 2;
    if (e->cfg.trend_count < 2)
        e->cfg.trend_count = 2;
    if (e->cfg.trend_count > PROBLEM_MAX_TREND)
        e->cfg.trend_count = PROBLEM_MAX_TREND;
    /* Rankings depend on the topology: recompute them all. */
    for (size_t i = 0; i < e->nprob; i++)
        e->probs[i]->rank_dirty = 1;
}

struct problem_engine *
problem_engine_new(const struct problem_config *c)
{
    struct problem_engine *e = tc_xcalloc(1, sizeof(*e));

    e->trend_min = INT64_MAX;
    problem_engine_set_config(e, c);
    return e;
}

static void
pinc_free(struct pinc *pi)
{
    for (size_t i = 0; i < pi->nrefs; i++) {
        free(pi->refs[i].host);
        free(pi->refs[i].field);
        free(pi->refs[i].value);
    }
    free(pi->refs);
    free(pi->host);
    free(pi->cls);
    free(pi->service);
    free(pi);
}

static void
cand_release(struct cand *c)
{
    free(c->host);
    free(c->evidence);
    for (size_t i = 0; i < c->nterms; i++)
        free(c->terms[i].what);
    c->nterms = 0;
}

static void
cands_free(struct prob *p)
{
    for (size_t i = 0; i < p->ncands; i++)
        cand_release(&p->cands[i]);
    free(p->cands);
    p->cands = NULL;
    p->ncands = 0;
}

static void
problem_strings_free(struct problem *v)
{
    free(v->rule);
    free(v->key);
    free(v->title);
    free(v->root_host);
    free(v->root_cause);
    free(v->workaround);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        free(v->whys[i]);
    for (size_t i = 0; i < v->nfactors; i++)
        free(v->factors[i].text);
    free(v->factors);
    for (size_t i = 0; i < v->nreviews; i++) {
        free(v->reviews[i].field);
        free(v->reviews[i].text);
    }
    free(v->reviews);
}

static void
prob_free(struct prob *p)
{
    problem_strings_free(&p->v);
    cands_free(p);
    free(p->mem.v);
    free(p);
}

static void
outputs_clear(struct problem_engine *e)
{
    for (size_t i = 0; i < e->nlinks; i++) {
        free(e->links[i].rule);
        free(e->links[i].fields);
    }
    e->nlinks = 0;
    e->nrefs = 0;
    for (size_t i = 0; i < e->nopens; i++)
        free(e->opens[i].cls);
    e->nopens = 0;
    for (size_t i = 0; i < e->nnotes; i++) {
        free(e->notes[i].who);
        free(e->notes[i].detail);
    }
    e->nnotes = 0;
}

static void idx_free(struct tc_htab *t);

void
problem_engine_free(struct problem_engine *e)
{
    if (e == NULL)
        return;
    outputs_clear(e);
    for (size_t i = 0; i < e->ninc; i++)
        pinc_free(e->incs[i]);
    for (size_t i = 0; i < e->nprob; i++)
        prob_free(e->probs[i]);
    for (size_t i = 0; i < e->nhost; i++)
        free(e->hosts[i]);
    for (size_t i = 0; i < e->ntrend; i++) {
        free(e->trends[i].cls);
        free(e->trends[i].ts);
    }
    config_release(&e->cfg);
    idx_free(&e->by_host);
    idx_free(&e->by_cls);
    idx_free(&e->by_named);
    {
        struct tc_hiter it;

        for (struct tc_hnode *n = tc_htab_iter(&e->by_key, &it); n != NULL;
             n = tc_hiter_next(&it)) {
            struct qkey *k = TC_CONTAINER_OF(n, struct qkey, hn);

            tc_htab_remove(&e->by_key, n);
            free(k->v);
            free(k);
        }
        tc_htab_free(&e->by_key);
    }
    free(e->touched);
    free(e->incs);
    free(e->probs);
    free(e->hosts);
    free(e->trends);
    free(e->links);
    free(e->refs);
    free(e->opens);
    free(e->notes);
    free(e);
}

/* ---- lookups ---------------------------------------------------------- */

static size_t
inc_pos(const struct problem_engine *e, int64_t id)
{
    size_t lo = 0, hi = e->ninc;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->incs[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct pinc *
inc_find(const struct problem_engine *e, int64_t id)
{
    size_t i = inc_pos(e, id);

    return i < e->ninc && e->incs[i]->id == id ? e->incs[i] : NULL;
}

static void touch(struct problem_engine *e, struct pinc *pi);

static struct pinc *
inc_get(struct problem_engine *e, int64_t id)
{
    size_t i = inc_pos(e, id);
    struct pinc *pi;

    if (i < e->ninc && e->incs[i]->id == id)
        return e->incs[i];
    GROW(e->incs, e->ninc, e->capinc);
    memmove(&e->incs[i + 1], &e->incs[i], (e->ninc - i) * sizeof(*e->incs));
    pi = tc_xcalloc(1, sizeof(*pi));
    pi->id = id;
    pi->mark.incident_id = pi->sent.incident_id = id;
    e->incs[i] = pi;
    e->ninc++;
    touch(e, pi); /* the drain forgets it if nothing makes it known */
    return pi;
}

static size_t
prob_pos(const struct problem_engine *e, int64_t id)
{
    size_t lo = 0, hi = e->nprob;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->probs[mid]->v.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct prob *
prob_find(const struct problem_engine *e, int64_t id)
{
    size_t i = prob_pos(e, id);

    return i < e->nprob && e->probs[i]->v.id == id ? e->probs[i] : NULL;
}

static void qkey_add(struct problem_engine *e, struct prob *p);

static void
prob_insert(struct problem_engine *e, struct prob *p)
{
    size_t i = prob_pos(e, p->v.id);

    GROW(e->probs, e->nprob, e->capprob);
    memmove(&e->probs[i + 1], &e->probs[i], (e->nprob - i) * sizeof(*e->probs));
    e->probs[i] = p;
    e->nprob++;
    qkey_add(e, p);
    if (p->v.id > e->last_id)
        e->last_id = p->v.id;
}

static uint64_t
qkey_hash(const char *rule, const char *key)
{
    return tc_hash64_add(tc_hash64_add(tc_hash64_str(rule), "\x1f", 1), key,
                         strlen(key));
}

static struct qkey *
qkey_find(const struct tc_htab *t, const char *rule, const char *key,
          uint64_t h)
{
    for (struct tc_hnode *n = tc_htab_first(t, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct qkey *k = TC_CONTAINER_OF(n, struct qkey, hn);

        if (strcmp(k->rule, rule) == 0 && strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

/* p (new or loaded) joins its rule and key's list, in id order. */
static void
qkey_add(struct problem_engine *e, struct prob *p)
{
    uint64_t h = qkey_hash(p->v.rule, p->v.key);
    struct qkey *k = qkey_find(&e->by_key, p->v.rule, p->v.key, h);
    size_t i;

    if (k == NULL) {
        k = tc_xcalloc(1, sizeof(*k));
        tc_htab_insert(&e->by_key, &k->hn, h);
    }
    GROW(k->v, k->n, k->cap);
    for (i = k->n; i > 0 && k->v[i - 1]->v.id > p->v.id; i--)
        k->v[i] = k->v[i - 1];
    k->v[i] = p;
    k->n++;
    /* The strings of the list's first problem name the key. */
    k->rule = k->v[0]->v.rule;
    k->key = k->v[0]->v.key;
}

/* p leaves memory: out of its list (a list left empty goes). */
static void
qkey_del(struct problem_engine *e, const struct prob *p)
{
    struct qkey *k = qkey_find(&e->by_key, p->v.rule, p->v.key,
                               qkey_hash(p->v.rule, p->v.key));
    size_t i;

    if (k == NULL)
        return;
    for (i = 0; i < k->n && k->v[i] != p; i++)
        ;
    if (i == k->n)
        return;
    memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(*k->v));
    if (--k->n == 0) {
        tc_htab_remove(&e->by_key, &k->hn);
        free(k->v);
        free(k);
        return;
    }
    k->rule = k->v[0]->v.rule;
    k->key = k->v[0]->v.key;
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Host names compare without ASCII case. */
static int
host_eq(const char *a, const char *b)
{
    for (; *a && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
        ;
    return *a == '\0' && *b == '\0';
}

/* strcmp of s[0..len) (lower-cased) with a lower-case NUL-terminated t. */
static int
lcmp(const char *s, size_t len, const char *t)
{
    for (size_t i = 0; i < len; i++) {
        int a = lower((unsigned char)s[i]), b = (unsigned char)t[i];

        if (b == 0)
            return 1;
        if (a != b)
            return a - b;
    }
    return t[len] == '\0' ? 0 : -1;
}

/* Index of host s[0..len) in hosts, or where it would go (*found). */
static size_t
host_pos(const struct problem_engine *e, const char *s, size_t len, int *found)
{
    size_t lo = 0, hi = e->nhost;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = lcmp(s, len, e->hosts[mid]);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void
problem_engine_host(struct problem_engine *e, const char *host)
{
    size_t len = strlen(host), i;
    int found;
    char *h;

    if (len == 0 || len > PROBLEM_MAX_NAME)
        return;
    i = host_pos(e, host, len, &found);
    if (found)
        return;
    h = tc_xstrndup(host, len);
    for (size_t k = 0; k < len; k++)
        h[k] = (char)lower((unsigned char)h[k]);
    GROW(e->hosts, e->nhost, e->caphost);
    memmove(&e->hosts[i + 1], &e->hosts[i], (e->nhost - i) * sizeof(*e->hosts));
    e->hosts[i] = h;
    e->nhost++;
}

static const char *
known(const struct problem_engine *e, const char *s, size_t len,
      const char *self)
{
    int found;
    size_t i;

    if (len == 0 || len > PROBLEM_MAX_NAME)
        return NULL;
    i = host_pos(e, s, len, &found);
    if (!found)
        return NULL;
    if (self != NULL && lcmp(self, strlen(self), e->hosts[i]) == 0)
        return NULL;
    return e->hosts[i];
}

const char *
problem_engine_named_host(const struct problem_engine *e, const char *value,
                          size_t len, const char *self)
{
    const char *h, *colon, *dot;
    size_t i;

    /* The whole value: "cache-01" (or an agent named with dots). */
    if ((h = known(e, value, len, self)) != NULL)
        return h;
    /* "cache-01:6379": a port of 1 to 5 digits. */
    colon = memchr(value, ':', len);
    if (colon != NULL) {
        size_t plen = len - (size_t)(colon - value) - 1;

        for (i = 0; i < plen && colon[1 + i] >= '0' && colon[1 + i] <= '9'; i++)
            ;
        if (plen >= 1 && plen <= 5 && i == plen)
            return known(e, value, (size_t)(colon - value), self);
        return NULL;
    }
    /* "cache-01.example.net": the first label. */
    dot = memchr(value, '.', len);
    if (dot != NULL && dot > value)
        return known(e, value, (size_t)(dot - value), self);
    return NULL;
}

const char *
problem_class(const char *fingerprint)
{
    const char *s = strchr(fingerprint, '\x1f');

    return s ? s + 1 : fingerprint;
}

/* ---- indices ------------------------------------------------------------ */

/* Where id is, or would go, in l. */
static size_t
plist_pos(const struct plist *l, int64_t id)
{
    size_t lo = 0, hi = l->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (l->v[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Add pi to l once, in id order (new ids are the highest: an append). */
static void
plist_add(struct plist *l, struct pinc *pi)
{
    size_t i =
        l->n > 0 && l->v[l->n - 1]->id < pi->id ? l->n : plist_pos(l, pi->id);

    if (i < l->n && l->v[i] == pi)
        return;
    GROW(l->v, l->n, l->cap);
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof(*l->v));
    l->v[i] = pi;
    l->n++;
}

/* Take pi out of l (if there); the rest keep their order. */
static void
plist_del(struct plist *l, const struct pinc *pi)
{
    size_t i = plist_pos(l, pi->id);

    if (i == l->n || l->v[i] != pi)
        return;
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    l->n--;
}

/* A key's hash: hosts (ci) without ASCII case, as host_eq compares. */
static uint64_t
key_hash(const char *k, int ci)
{
    uint64_t h = TC_HASH64_INIT;

    if (!ci)
        return tc_hash64_str(k);
    for (; *k; k++) {
        unsigned char c = (unsigned char)lower((unsigned char)*k);

        h = tc_hash64_add(h, &c, 1);
    }
    return h;
}

static struct pkey *
pkey_find(const struct tc_htab *t, const char *key, int ci, uint64_t h)
{
    for (struct tc_hnode *n = tc_htab_first(t, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct pkey *k = TC_CONTAINER_OF(n, struct pkey, hn);

        if (ci ? host_eq(k->key, key) : strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

/* The incidents under key in t, in id order (empty if none). The list
 * stays valid while no incident is added to or removed from t. */
static const struct plist *
idx_list(const struct tc_htab *t, const char *key, int ci)
{
    static const struct plist none;
    const struct pkey *k =
        key != NULL ? pkey_find(t, key, ci, key_hash(key, ci)) : NULL;

    return k != NULL ? &k->l : &none;
}

static void
idx_add(struct tc_htab *t, const char *key, int ci, struct pinc *pi)
{
    uint64_t h = key_hash(key, ci);
    struct pkey *k = pkey_find(t, key, ci, h);

    if (k == NULL) {
        k = tc_xcalloc(1, sizeof(*k));
        k->key = tc_xstrdup(key);
        tc_htab_insert(t, &k->hn, h);
    }
    plist_add(&k->l, pi);
}

/* Take pi out of key's list; a key with no incident left goes. */
static void
idx_del(struct tc_htab *t, const char *key, int ci, const struct pinc *pi)
{
    struct pkey *k = pkey_find(t, key, ci, key_hash(key, ci));

    if (k == NULL)
        return;
    plist_del(&k->l, pi);
    if (k->l.n == 0) {
        tc_htab_remove(t, &k->hn);
        free(k->l.v);
        free(k->key);
        free(k);
    }
}

static void
idx_free(struct tc_htab *t)
{
    struct tc_hiter it;

    for (struct tc_hnode *n = tc_htab_iter(t, &it); n != NULL;
         n = tc_hiter_next(&it)) {
        struct pkey *k = TC_CONTAINER_OF(n, struct pkey, hn);

        tc_htab_remove(t, n);
        free(k->l.v);
        free(k->key);
        free(k);
    }
    tc_htab_free(t);
}

/* pi is known: the host and class indices hold it (once). */
static void
idx_known(struct problem_engine *e, struct pinc *pi)
{
    if (pi->indexed || !pi->known)
        return;
    idx_add(&e->by_host, pi->host, 1, pi);
    idx_add(&e->by_cls, pi->cls, 0, pi);
    pi->indexed = 1;
}

/* pi's place in a members list follows its mark: the list of the
 * problem mark.problem_id names, while that problem is in memory. Call
 * after every change of the mark's problem. */
static void
member_sync(struct problem_engine *e, struct pinc *pi)
{
    struct prob *p = pi->known && pi->mark.problem_id != 0
                         ? prob_find(e, pi->mark.problem_id)
                         : NULL;

    if (p == pi->in)
        return;
    if (pi->in != NULL)
        plist_del(&pi->in->mem, pi);
    if (p != NULL)
        plist_add(&p->mem, pi);
    pi->in = p;
}

/* pi was created, changed or re-marked: the drain looks at its mark and
 * whether anything still holds it. */
static void
touch(struct problem_engine *e, struct pinc *pi)
{
    if (pi->touched)
        return;
    pi->touched = 1;
    GROW(e->touched, e->ntouched, e->captouched);
    e->touched[e->ntouched++] = pi;
}

/* pi leaves every index (the drain forgets it). */
static void
idx_forget(struct problem_engine *e, struct pinc *pi)
{
    if (pi->indexed) {
        idx_del(&e->by_host, pi->host, 1, pi);
        idx_del(&e->by_cls, pi->cls, 0, pi);
        pi->indexed = 0;
    }
    for (size_t i = 0; i < pi->nrefs; i++)
        idx_del(&e->by_named, pi->refs[i].host, 1, pi);
    if (pi->in != NULL)
        plist_del(&pi->in->mem, pi);
    pi->in = NULL;
}

static int side_match(const char *side, const char *host, const char *service);

/* Some dependency has pi on its side to (1) or from (0): else none
 * relates pi that way, and a walk for one would find nothing. */
static int
dep_side(const struct problem_engine *e, const struct pinc *pi, int to)
{
    for (size_t i = 0; i < e->cfg.ndeps; i++)
        if (side_match(to ? e->cfg.deps[i].to : e->cfg.deps[i].from, pi->host,
                       pi->service))
            return 1;
    return 0;
}

/* ---- outputs ---------------------------------------------------------- */

static void
note_add(struct problem_engine *e, int64_t pid, int64_t ts, const char *what,
         const char *who, const char *detail)
{
    struct note_out *n;

    GROW(e->notes, e->nnotes, e->capnotes);
    n = &e->notes[e->nnotes++];
    n->id = pid;
    n->ts = ts;
    n->what = what;
    n->who = tc_xstrdup(who);
    n->detail = tc_xstrdup(detail ? detail : "");
}

static int
active_state(enum incident_state s)
{
    return s == INCIDENT_OPEN || s == INCIDENT_ACKED;
}

static int
prob_open(const struct prob *p)
{
    return p->v.state < PROBLEM_RESOLVED;
}

/* Recompute quiet_since from the members; a problem with none keeps it. */
static void
quiet_update(struct problem_engine *e, struct prob *p)
{
    int64_t q = 0;
    int n = 0;

    (void)e;
    for (size_t i = 0; i < p->mem.n; i++) {
        const struct pinc *pi = p->mem.v[i];
        int64_t end;

        if (!pi->known || pi->mark.problem_id != p->v.id)
            continue;
        n++;
        if (active_state(pi->state)) {
            q = -1;
            break;
        }
        end = pi->resolved_at ? pi->resolved_at : pi->closed_at;
        if (end > q)
            q = end;
    }
    if (n == 0)
        return;
    if (q < 0)
        q = 0;
    if (q != p->v.quiet_since) {
        p->v.quiet_since = q;
        p->dirty = 1;
    }
}

static void
link_inc(struct problem_engine *e, struct pinc *pi, struct prob *p,
         const char *rule, const char *fields, int64_t ts, const char *who)
{
    struct link_out *l;
    char d[PROBLEM_MAX_NAME * 2 + 64];

    pi->mark.problem_id = p->v.id;
    member_sync(e, pi);
    touch(e, pi);
    GROW(e->links, e->nlinks, e->caplinks);
    l = &e->links[e->nlinks++];
    l->rule = tc_xstrdup(rule);
    l->fields = tc_xstrdup(fields ? fields : "");
    l->v = (struct problem_link){pi->id, p->v.id, ts, 0, l->rule, l->fields};
    snprintf(d, sizeof(d), "incident %" PRId64 " on %s: %s%s%s", pi->id,
             pi->host ? pi->host : "?", rule, *l->fields ? " " : "", l->fields);
    note_add(e, p->v.id, ts, "linked", who, d);
    p->rank_dirty = 1;
    /* A member active again reopens a resolved problem. */
    if (p->v.state == PROBLEM_RESOLVED && active_state(pi->state)) {
        p->v.state = PROBLEM_OPEN;
        p->v.resolved_at = 0;
        note_add(e, p->v.id, ts, "reopened", who, d);
    }
    quiet_update(e, p);
    p->dirty = 1;
}

/* pi leaves p; rule says why ("user", or "merge" when p merges into
 * another problem). */
static void
unlink_inc(struct problem_engine *e, struct pinc *pi, struct prob *p,
           int64_t ts, const char *who, const char *rule)
{
    struct link_out *l;
    char d[64];

    pi->mark.problem_id = 0;
    pi->mark.inhibited = 0;
    member_sync(e, pi);
    touch(e, pi);
    GROW(e->links, e->nlinks, e->caplinks);
    l = &e->links[e->nlinks++];
    l->rule = tc_xstrdup(rule);
    l->fields = tc_xstrdup("");
    l->v = (struct problem_link){pi->id, p->v.id, ts, 1, l->rule, l->fields};
    snprintf(d, sizeof(d), "incident %" PRId64, pi->id);
    note_add(e, p->v.id, ts, "unlinked", who, d);
    p->rank_dirty = 1;
    p->v.quiet_since = ts;
    quiet_update(e, p);
    p->dirty = 1;
}

static struct prob *
prob_new(struct problem_engine *e, const char *rule, const char *key,
         const char *title, int64_t ts)
{
    struct prob *p = tc_xcalloc(1, sizeof(*p));
    char who[64];

    p->v.id = e->last_id + 1;
    p->v.state = PROBLEM_OPEN;
    p->v.rule = tc_xstrdup(rule);
    p->v.key = tc_xstrdup(key);
    p->v.title = tc_xstrdup(title);
    p->v.opened_at = ts;
    p->v.root_host = tc_xstrdup("");
    p->v.root_cause = tc_xstrdup("");
    p->v.workaround = tc_xstrdup("");
    for (int i = 0; i < PROBLEM_WHYS; i++)
        p->v.whys[i] = tc_xstrdup("");
    p->dirty = p->rank_dirty = 1;
    prob_insert(e, p);
    snprintf(who, sizeof(who), "rule:%s", rule);
    note_add(e, p->v.id, ts, "opened", who, title);
    return p;
}

/* ---- matching ----------------------------------------------------------- */

static int64_t
absdiff(int64_t a, int64_t b)
{
    return a > b ? a - b : b - a;
}

/* A candidate for rule linking: known, not closed, no problem, and not
 * set apart by a user. */
static int
free_inc(const struct pinc *pi)
{
    return pi->known && pi->state != INCIDENT_CLOSED &&
           pi->mark.problem_id == 0 && !pi->mark.manual;
}

/* One side of a dependency matches host (and service, "" = none). */
static int
side_match(const char *side, const char *host, const char *service)
{
    if (strncmp(side, "service:", 8) == 0)
        return service != NULL && *service && strcmp(side + 8, service) == 0;
    return fnmatch(side, host, 0) == 0;
}

/* pi names host h in one of its references; that reference or NULL. */
static const struct pref *
names(const struct pinc *pi, const char *h)
{
    for (size_t i = 0; i < pi->nrefs; i++)
        if (host_eq(pi->refs[i].host, h))
            return &pi->refs[i];
    return NULL;
}

/* pi's host as the engine knows it (lower case), or NULL. */
static const char *
known_host_of(const struct problem_engine *e, const struct pinc *pi)
{
    return pi->host ? known(e, pi->host, strlen(pi->host), NULL) : NULL;
}

/* Some dependency makes a (dependent) depend on d. */
static const struct problem_dep *
depends(const struct problem_engine *e, const struct pinc *a,
        const struct pinc *d)
{
    for (size_t i = 0; i < e->cfg.ndeps; i++) {
        const struct problem_dep *dp = &e->cfg.deps[i];

        if (side_match(dp->from, a->host, a->service) &&
            side_match(dp->to, d->host, d->service))
            return dp;
    }
    return NULL;
}

static void
fields_ref(char *buf, size_t len, const struct pref *r, const char *named)
{
    snprintf(buf, len, "%s=%s names %s", r->field, r->value, named);
}

/* The open problem of rule keyed key, or NULL. */
static struct prob *
open_keyed(const struct problem_engine *e, const char *rule, const char *key)
{
    const struct qkey *k =
        qkey_find(&e->by_key, rule, key, qkey_hash(rule, key));

    for (size_t i = 0; k != NULL && i < k->n; i++)
        if (prob_open(k->v[i]))
            return k->v[i];
    return NULL;
}

/* What the reference rule finds for pi's reference ref, in the order it
 * looks (reference_forward acts on the first found; explain reports). */
struct ref_hit {
    struct pinc *d;          /* the named host's incident within window */
    struct prob *p;          /* d's open problem: pi joins it */
    struct prob *kp;         /* else an open reference problem keyed R */
    struct pinc *o;          /* else another free incident naming R */
    const struct pref *oref; /* o's reference to R */
    size_t oi;               /* o's index in the incidents naming R */
};

static void
ref_find(const struct problem_engine *e, const struct pinc *pi,
         const struct pref *ref, struct ref_hit *h)
{
    int64_t w = e->cfg.reference_window_ns;
    const struct plist *on = idx_list(&e->by_host, ref->host, 1);
    const struct plist *naming;

    memset(h, 0, sizeof(*h));
    /* The named host's own incident, preferring one with a problem. */
    for (size_t i = 0; i < on->n; i++) {
        struct pinc *o = on->v[i];

        if (!o->known || o->state == INCIDENT_CLOSED ||
            !host_eq(o->host, ref->host) ||
            absdiff(o->opened_at, pi->opened_at) > w)
            continue;
        if (o->mark.problem_id != 0) {
            struct prob *op = prob_find(e, o->mark.problem_id);

            if (op != NULL && prob_open(op)) {
                h->d = o;
                h->p = op;
                return;
            }
            continue;
        }
        if (h->d == NULL && !o->mark.manual)
            h->d = o;
    }
    if (h->d != NULL)
        return;
    /* No incident on the named host: an open problem keyed on it, or
     * another incident naming it. */
    if ((h->kp = open_keyed(e, "reference", ref->host)) != NULL)
        return;
    naming = idx_list(&e->by_named, ref->host, 1);
    for (size_t i = 0; i < naming->n; i++) {
        struct pinc *o = naming->v[i];
        const struct pref *oref;

        if (o == pi || !free_inc(o) || host_eq(o->host, pi->host) ||
            absdiff(o->opened_at, pi->opened_at) > w ||
            (oref = names(o, ref->host)) == NULL)
            continue;
        h->o = o;
        h->oref = oref;
        h->oi = i;
        return;
    }
}

/*
 * Reference, forward: pi names host R. An incident on R within window
 * in an open problem: join it. An unlinked one: a new problem with it.
 * None: another unlinked incident naming R (or an open reference
 * problem keyed R) makes the group.
 */
static void
reference_forward(struct problem_engine *e, struct pinc *pi)
{
    char f[PROBLEM_MAX_NAME * 3 + 32], t[PROBLEM_MAX_NAME + 64];
    int64_t w = e->cfg.reference_window_ns;

    for (size_t r = 0; r < pi->nrefs && pi->mark.problem_id == 0; r++) {
        const struct pref *ref = &pi->refs[r];
        struct ref_hit h;
        struct pinc *d;
        struct prob *p;

        fields_ref(f, sizeof(f), ref, ref->host);
        ref_find(e, pi, ref, &h);
        d = h.d;
        p = h.p;
        if (p != NULL) {
            link_inc(e, pi, p, "reference", f, pi->opened_at, "rule:reference");
            return;
        }
        if (d != NULL) {
            char df[PROBLEM_MAX_NAME + 32];

            snprintf(t, sizeof(t), "incidents naming %s", ref->host);
            p = prob_new(e, "reference", ref->host, t, pi->opened_at);
            snprintf(df, sizeof(df), "host=%s named by %s", d->host, pi->host);
            link_inc(e, d, p, "reference", df, pi->opened_at, "rule:reference");
            link_inc(e, pi, p, "reference", f, pi->opened_at, "rule:reference");
            return;
        }
        if (h.kp != NULL) {
            link_inc(e, pi, h.kp, "reference", f, pi->opened_at,
                     "rule:reference");
            return;
        }
        if (h.o != NULL) {
            struct pinc *o = h.o;
            const struct pref *oref = h.oref;
            size_t i = h.oi;
            char of[PROBLEM_MAX_NAME * 3 + 32];

            snprintf(t, sizeof(t), "incidents naming %s", ref->host);
            p = prob_new(e, "reference", ref->host, t, pi->opened_at);
            fields_ref(of, sizeof(of), oref, ref->host);
            link_inc(e, o, p, "reference", of, pi->opened_at, "rule:reference");
            link_inc(e, pi, p, "reference", f, pi->opened_at, "rule:reference");
            const struct plist *naming = idx_list(&e->by_named, ref->host, 1);

            /* The rest of the unlinked incidents naming it join too. */
            for (size_t k = i + 1; k < naming->n; k++) {
                struct pinc *q = naming->v[k];

                if (q == pi || !free_inc(q) ||
                    absdiff(q->opened_at, pi->opened_at) > w ||
                    (oref = names(q, ref->host)) == NULL)
                    continue;
                fields_ref(of, sizeof(of), oref, ref->host);
                link_inc(e, q, p, "reference", of, pi->opened_at,
                         "rule:reference");
            }
            return;
        }
    }
}

/*
 * The first incident d pi depends on within the topology window that
 * it can join (d's open problem in *p) or group with (*p NULL), and the
 * dependency; NULL if none.
 */
static struct pinc *
topo_find(const struct problem_engine *e, const struct pinc *pi,
          struct prob **p, const struct problem_dep **dpo)
{
    int64_t w = e->cfg.topology_window_ns;

    *p = NULL;
    *dpo = NULL;
    if (!dep_side(e, pi, 0))
        return NULL;
    for (size_t i = 0; i < e->ninc; i++) {
        struct pinc *d = e->incs[i];
        const struct problem_dep *dp;

        if (d == pi || !d->known || d->state == INCIDENT_CLOSED ||
            host_eq(d->host, pi->host) ||
            absdiff(d->opened_at, pi->opened_at) > w ||
            (dp = depends(e, pi, d)) == NULL)
            continue;
        if (d->mark.problem_id != 0) {
            struct prob *dpb = prob_find(e, d->mark.problem_id);

            if (dpb == NULL || !prob_open(dpb))
                continue;
            *p = dpb;
        } else if (d->mark.manual) {
            continue;
        }
        *dpo = dp;
        return d;
    }
    return NULL;
}

/* Topology, forward: pi depends on an incident d within window. */
static void
topology_forward(struct problem_engine *e, struct pinc *pi)
{
    char f[PROBLEM_MAX_NAME * 2 + 32], t[PROBLEM_MAX_NAME + 64];
    struct pinc *d;
    const struct problem_dep *dp;
    struct prob *p;

    if (e->cfg.ndeps == 0)
        return;
    if ((d = topo_find(e, pi, &p, &dp)) != NULL) {
        snprintf(f, sizeof(f), "depends_on %s -> %s", dp->from, dp->to);
        if (p == NULL) {
            char df[PROBLEM_MAX_NAME + 32];

            snprintf(t, sizeof(t), "incidents depending on %s", d->host);
            p = prob_new(e, "topology", d->host, t, pi->opened_at);
            snprintf(df, sizeof(df), "dependency of %s", pi->host);
            link_inc(e, d, p, "topology", df, pi->opened_at, "rule:topology");
        }
        link_inc(e, pi, p, "topology", f, pi->opened_at, "rule:topology");
        return;
    }
}

/*
 * o relates to pi the reverse way within the rule's window: it names
 * pi's host me (rule 0, reference; *r) or depends on it (rule 1,
 * topology; *dp). o is not closed and on another host.
 */
static int
rev_rel(const struct problem_engine *e, const struct pinc *pi,
        const struct pinc *o, int rule, const char *me, const struct pref **r,
        const struct problem_dep **dp)
{
    int64_t w =
        rule == 0 ? e->cfg.reference_window_ns : e->cfg.topology_window_ns;

    if (o == pi || !o->known || o->state == INCIDENT_CLOSED ||
        host_eq(o->host, pi->host) || absdiff(o->opened_at, pi->opened_at) > w)
        return 0;
    if (rule == 0)
        return (*r = names(o, me)) != NULL;
    return (*dp = depends(e, o, pi)) != NULL;
}

/* The reverse way is on for rule 0 (reference) or 1 (topology). */
static int
rev_on(const struct problem_engine *e, int rule, const char *me)
{
    return rule == 0 ? e->cfg.reference && me != NULL : e->cfg.ndeps > 0;
}

static void set_state(struct problem_engine *e, struct prob *p,
                      enum problem_state s, int64_t ts, const char *who,
                      const char *what, const char *detail);

/*
 * b is "incidents naming X" (reference, keyed on X, made while X had no
 * incident) and X's own incident is now in a: the same cause, found
 * from both ends (a cascade whose middle reported late). b's incidents
 * move to a, except those a user placed; b, left empty, closes as
 * merged.
 */
static void
merge_into(struct problem_engine *e, struct prob *b, struct prob *a,
           const struct pinc *x, int64_t ts)
{
    char f[PROBLEM_MAX_NAME + 96], d[PROBLEM_MAX_NAME + 96];
    int left = 0;
    struct pinc **mem;
    size_t nmem;

    snprintf(f, sizeof(f),
             "merged from problem %" PRId64 ": incident %" PRId64
             " on %s is here",
             b->v.id, x->id, x->host);
    /* A copy: the moves below change b's members. */
    mem = tc_xcalloc(b->mem.n ? b->mem.n : 1, sizeof(*mem));
    nmem = b->mem.n;
    memcpy(mem, b->mem.v, nmem * sizeof(*mem));
    for (size_t i = 0; i < nmem; i++) {
        struct pinc *q = mem[i];

        if (!q->known || q->mark.problem_id != b->v.id)
            continue;
        if (q->mark.manual) {
            left = 1;
            continue;
        }
        unlink_inc(e, q, b, ts, "rule:reference", "merge");
        link_inc(e, q, a, "reference", f, ts, "rule:reference");
    }
    free(mem);
    snprintf(d, sizeof(d), "problem %" PRId64 " (%s) merged in", b->v.id,
             b->v.title);
    note_add(e, a->v.id, ts, "merged", "rule:reference", d);
    snprintf(d, sizeof(d),
             "into problem %" PRId64 ": the incident of %s (%" PRId64
             ") is there",
             a->v.id, x->host, x->id);
    if (!left)
        set_state(e, b, PROBLEM_CLOSED, ts, "rule:reference", "merged", d);
    else
        note_add(e, b->v.id, ts, "merged", "rule:reference", d);
}

/*
 * Reverse: incidents that name pi's host, or depend on it, and are
 * waiting unlinked within window. If pi has an open problem they join
 * it; if not and one of them has one, pi joins that; else pi and they
 * form a new problem with pi as the dependency.
 */
static void
reverse(struct problem_engine *e, struct pinc *pi)
{
    const char *me = known_host_of(e, pi);
    struct prob *p = NULL;
    char f[PROBLEM_MAX_NAME * 3 + 32], t[PROBLEM_MAX_NAME + 64];

    if (pi->mark.problem_id != 0) {
        p = prob_find(e, pi->mark.problem_id);
        if (p == NULL || !prob_open(p))
            return;
    }
    for (int rule = 0; rule < 2; rule++) {
        const char *rn = rule == 0 ? "reference" : "topology";
        char who[32];
        struct pinc **cand; /* who may relate: those naming me, or all */
        size_t ncand;

        if (!rev_on(e, rule, me))
            continue;
        if (rule == 0) {
            const struct plist *l = idx_list(&e->by_named, me, 1);

            cand = l->v;
            ncand = l->n;
        } else if (!dep_side(e, pi, 1)) {
            continue;
        } else {
            cand = e->incs;
            ncand = e->ninc;
        }
        snprintf(who, sizeof(who), "rule:%s", rn);
        /* pi joins a waiting dependent's open problem. */
        if (p == NULL && !pi->mark.manual) {
            for (size_t i = 0; i < ncand && p == NULL; i++) {
                struct pinc *o = cand[i];
                const struct pref *r = NULL;
                const struct problem_dep *dp = NULL;
                struct prob *op;

                if (o->mark.problem_id == 0 ||
                    !rev_rel(e, pi, o, rule, me, &r, &dp))
                    continue;
                op = prob_find(e, o->mark.problem_id);
                if (op == NULL || !prob_open(op))
                    continue;
                if (r != NULL)
                    snprintf(f, sizeof(f), "host=%s named by %s %s=%s",
                             pi->host, o->host, r->field, r->value);
                else
                    snprintf(f, sizeof(f), "dependency of %s (%s -> %s)",
                             o->host, dp->from, dp->to);
                p = op;
                link_inc(e, pi, p, rn, f, pi->opened_at, who);
            }
        }
        /* Waiting unlinked dependents join pi's problem (or a new one). */
        for (size_t i = 0; i < ncand; i++) {
            struct pinc *o = cand[i];
            const struct pref *r = NULL;
            const struct problem_dep *dp = NULL;

            if (!free_inc(o) || !rev_rel(e, pi, o, rule, me, &r, &dp))
                continue;
            if (p == NULL) {
                char df[PROBLEM_MAX_NAME + 32];

                if (pi->mark.manual)
                    return;
                snprintf(t, sizeof(t), "incidents %s %s",
                         rule == 0 ? "naming" : "depending on", pi->host);
                p = prob_new(e, rn, rule == 0 ? me : pi->host, t,
                             pi->opened_at);
                snprintf(df, sizeof(df), "%s %s",
                         rule == 0 ? "host named by" : "dependency of",
                         o->host);
                link_inc(e, pi, p, rn, df, pi->opened_at, who);
            }
            if (r != NULL)
                fields_ref(f, sizeof(f), r, me);
            else
                snprintf(f, sizeof(f), "depends_on %s -> %s", dp->from, dp->to);
            link_inc(e, o, p, rn, f, o->opened_at, who);
        }
    }
    /* Those that named pi's host before it had an incident made their
     * own problem; pi is in p, so they belong here. */
    if (p != NULL && rev_on(e, 0, me)) {
        struct prob *kp = open_keyed(e, "reference", me);

        if (kp != NULL && kp != p)
            merge_into(e, kp, p, pi, pi->opened_at);
    }
}

/* qsort order of host names without ASCII case. */
static int
host_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;

    for (; *a && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
        ;
    return lower((unsigned char)*a) - lower((unsigned char)*b);
}

/*
 * Distinct hosts among the free incidents of pi's class within the
 * spread window of pi's opening (pi among them when free): sorted, so
 * that a fleet-wide storm costs n log n, not n^2. With hvo, the
 * distinct hosts, sorted (borrowed; the caller frees the array).
 */
static uint32_t
spread_hosts(const struct problem_engine *e, const struct pinc *pi,
             const char ***hvo)
{
    int64_t w = e->cfg.spread_window_ns;
    const char **hv = NULL;
    size_t nh = 0, nd = 0;
    const struct plist *l = idx_list(&e->by_cls, pi->cls, 0);

    for (size_t i = 0; i < l->n; i++) {
        const struct pinc *o = l->v[i];

        if (!free_inc(o) || strcmp(o->cls, pi->cls) != 0 ||
            absdiff(o->opened_at, pi->opened_at) > w)
            continue;
        hv = tc_xreallocarray(hv, nh + 1, sizeof(*hv));
        hv[nh++] = o->host;
    }
    if (nh > 1)
        tc_qsort(hv, nh, sizeof(*hv), host_cmp);
    for (size_t i = 0; i < nh; i++)
        if (i == 0 || host_cmp(&hv[nd - 1], &hv[i]) != 0)
            hv[nd++] = hv[i];
    if (hvo != NULL)
        *hvo = hv;
    else
        free(hv);
    return (uint32_t)nd;
}

/* Spread: an open problem of the class, or min_hosts hosts within window. */
static void
spread(struct problem_engine *e, struct pinc *pi)
{
    int64_t w = e->cfg.spread_window_ns;
    char f[PROBLEM_MAX_NAME + 32], t[PROBLEM_MAX_NAME + 64];
    uint32_t hosts = 0;
    struct prob *p;
    const struct plist *l;

    snprintf(f, sizeof(f), "class=%s", pi->cls);
    if ((p = open_keyed(e, "spread", pi->cls)) != NULL) {
        link_inc(e, pi, p, "spread", f, pi->opened_at, "rule:spread");
        return;
    }
    hosts = spread_hosts(e, pi, NULL);
    if (hosts < e->cfg.spread_min_hosts)
        return;
    snprintf(t, sizeof(t), "%s on %" PRIu32 " hosts", pi->cls, hosts);
    p = prob_new(e, "spread", pi->cls, t, pi->opened_at);
    l = idx_list(&e->by_cls, pi->cls, 0);
    for (size_t i = 0; i < l->n; i++) {
        struct pinc *o = l->v[i];

        if (free_inc(o) && strcmp(o->cls, pi->cls) == 0 &&
            absdiff(o->opened_at, pi->opened_at) <= w)
            link_inc(e, o, p, "spread", f, pi->opened_at, "rule:spread");
    }
}

static struct trend *
trend_get(struct problem_engine *e, const char *cls)
{
    size_t lo = 0, hi = e->ntrend;
    struct trend *t;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->trends[mid].cls, cls);

        if (c == 0)
            return &e->trends[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    GROW(e->trends, e->ntrend, e->captrend);
    memmove(&e->trends[lo + 1], &e->trends[lo],
            (e->ntrend - lo) * sizeof(*e->trends));
    t = &e->trends[lo];
    memset(t, 0, sizeof(*t));
    t->cls = tc_xstrdup(cls);
    e->ntrend++;
    return t;
}

static void
trend_add(struct trend *t, int64_t ts)
{
    size_t i = t->n;

    if (t->n == PROBLEM_MAX_TREND) {
        /* Only the newest openings can still count. */
        memmove(&t->ts[0], &t->ts[1], (t->n - 1) * sizeof(*t->ts));
        t->n--;
        i = t->n;
    }
    GROW(t->ts, t->n, t->cap);
    while (i > 0 && t->ts[i - 1] > ts) {
        t->ts[i] = t->ts[i - 1];
        i--;
    }
    t->ts[i] = ts;
    t->n++;
}

/* Openings of t within the period ending at ts. */
static uint32_t
trend_count(const struct problem_engine *e, const struct trend *t, int64_t ts)
{
    uint32_t n = 0;

    for (size_t i = 0; i < t->n; i++)
        if (t->ts[i] <= ts && ts - t->ts[i] <= e->cfg.trend_period_ns)
            n++;
    return n;
}

/*
 * Trend: pi (re)opened and no cross-host rule took it: count the
 * opening; count openings of the class within period: a proactive
 * problem with the class's free incidents in memory.
 */
static void
trend(struct problem_engine *e, struct pinc *pi)
{
    struct trend *tr = trend_get(e, pi->cls);
    struct open_out *o;
    uint32_t n;
    char f[PROBLEM_MAX_NAME + 64], t[PROBLEM_MAX_NAME + 64];
    struct prob *p;
    const struct plist *l;

    trend_add(tr, pi->opened_at);
    if (pi->opened_at < e->trend_min)
        e->trend_min = pi->opened_at;
    GROW(e->opens, e->nopens, e->capopens);
    o = &e->opens[e->nopens++];
    o->cls = tc_xstrdup(pi->cls);
    o->incident_id = pi->id;
    o->ts = pi->opened_at;
    if ((p = open_keyed(e, "trend", pi->cls)) != NULL) {
        snprintf(f, sizeof(f), "class=%s", pi->cls);
        link_inc(e, pi, p, "trend", f, pi->opened_at, "rule:trend");
        return;
    }
    n = trend_count(e, tr, pi->opened_at);
    if (n < e->cfg.trend_count)
        return;
    snprintf(t, sizeof(t), "%s recurring: %" PRIu32 " openings in %" PRId64 "d",
             pi->cls, n, e->cfg.trend_period_ns / (86400 * NS_PER_S));
    p = prob_new(e, "trend", pi->cls, t, pi->opened_at);
    snprintf(f, sizeof(f), "class=%s openings=%" PRIu32, pi->cls, n);
    l = idx_list(&e->by_cls, pi->cls, 0);
    for (size_t i = 0; i < l->n; i++) {
        struct pinc *q = l->v[i];

        if (free_inc(q) && strcmp(q->cls, pi->cls) == 0 &&
            pi->opened_at - q->opened_at <= e->cfg.trend_period_ns)
            link_inc(e, q, p, "trend", f, pi->opened_at, "rule:trend");
    }
}

/* Every rule, for an incident that (re)opened or gained evidence. */
static void
relate(struct problem_engine *e, struct pinc *pi, int opening)
{
    if (pi->mark.manual || pi->state == INCIDENT_CLOSED)
        return;
    if (pi->mark.problem_id == 0 && e->cfg.reference)
        reference_forward(e, pi);
    if (pi->mark.problem_id == 0)
        topology_forward(e, pi);
    reverse(e, pi);
    if (pi->mark.problem_id == 0 && e->cfg.spread && opening)
        spread(e, pi);
    if (pi->mark.problem_id == 0 && e->cfg.trend && opening)
        trend(e, pi);
}

/* ---- inputs ------------------------------------------------------------- */

static void settle(struct problem_engine *e);

/* Anything loaded: rank silently before the first live input. */
static void
settle_load(struct problem_engine *e)
{
    if (!e->loaded)
        return;
    e->loaded = 0;
    /* The indices of what was loaded (problems may come after their
     * incidents), and the drain looks at each incident once. */
    for (size_t i = 0; i < e->ninc; i++) {
        idx_known(e, e->incs[i]);
        member_sync(e, e->incs[i]);
        touch(e, e->incs[i]);
    }
    settle(e);
    for (size_t i = 0; i < e->nprob; i++) {
        e->probs[i]->dirty = 0;
        e->probs[i]->cands_dirty = 0;
    }
    for (size_t i = 0; i < e->ninc; i++)
        e->incs[i]->sent = e->incs[i]->mark;
}

static int
field_wanted(const struct problem_engine *e, const struct tc_str *k)
{
    if (e->cfg.nreference_fields == 0)
        return 1;
    for (size_t i = 0; i < e->cfg.nreference_fields; i++)
        if (strlen(e->cfg.reference_fields[i]) == k->len &&
            memcmp(e->cfg.reference_fields[i], k->ptr, k->len) == 0)
            return 1;
    return 0;
}

static void
ref_add(struct problem_engine *e, struct pinc *pi, const char *host,
        const char *field, size_t flen, const char *value, size_t vlen,
        int64_t ts, int out)
{
    struct pref *r;

    for (size_t i = 0; i < pi->nrefs; i++)
        if (strcmp(pi->refs[i].host, host) == 0 &&
            strlen(pi->refs[i].field) == flen &&
            memcmp(pi->refs[i].field, field, flen) == 0)
            return;
    if (pi->nrefs >= PROBLEM_MAX_REFS)
        return;
    pi->refs = tc_xreallocarray(pi->refs, pi->nrefs + 1, sizeof(*pi->refs));
    r = &pi->refs[pi->nrefs];
    r->host = tc_xstrdup(host);
    r->field = tc_xstrndup(field, flen);
    r->value = tc_xstrndup(value, vlen);
    r->ts = ts;
    idx_add(&e->by_named, r->host, 1, pi);
    if (out) {
        GROW(e->refs, e->nrefs, e->caprefs);
        e->refs[e->nrefs++] = (struct ref_out){pi->id, pi->nrefs};
    }
    pi->nrefs++;
}

void
problem_engine_evidence(struct problem_engine *e, int64_t incident_id,
                        const char *host, const struct tc_event *ev)
{
    struct pinc *pi;
    size_t before;
    int64_t t = ev->event_ts ? ev->event_ts : ev->ts;

    settle_load(e);
    problem_engine_host(e, host);
    if (incident_id <= 0 || !e->cfg.reference)
        return;
    pi = NULL;
    for (uint32_t i = 0; i < ev->nfields; i++) {
        const struct tc_kv *kv = &ev->fields[i];
        const char *named;

        if (kv->val.ptr == NULL || kv->val.len == 0 || kv->key.ptr == NULL ||
            kv->key.len > PROBLEM_MAX_NAME || !field_wanted(e, &kv->key))
            continue;
        named = problem_engine_named_host(e, kv->val.ptr, kv->val.len, host);
        if (named == NULL)
            continue;
        if (pi == NULL) {
            pi = inc_get(e, incident_id);
        }
        before = pi->nrefs;
        /* A peer's value: keep at most a name's worth of it. */
        ref_add(e, pi, named, kv->key.ptr, kv->key.len, kv->val.ptr,
                kv->val.len < PROBLEM_MAX_NAME ? kv->val.len : PROBLEM_MAX_NAME,
                t, 1);
        if (pi->nrefs == before || !pi->known)
            continue;
        /* New evidence for an incident already seen. */
        if (pi->mark.problem_id != 0) {
            struct prob *p = prob_find(e, pi->mark.problem_id);

            if (p != NULL)
                p->rank_dirty = 1;
        } else if (active_state(pi->state)) {
            relate(e, pi, 0);
        }
    }
}

/* host is one of p's hosts: an incident of p is on it, or it is p's
 * top candidate's host. */
static int
prob_has_host(const struct problem_engine *e, const struct prob *p,
              const char *host)
{
    (void)e;
    if (p->v.root_host != NULL && host_eq(p->v.root_host, host))
        return 1;
    for (size_t i = 0; i < p->mem.n; i++) {
        const struct pinc *pi = p->mem.v[i];

        if (pi->mark.problem_id == p->v.id && pi->host != NULL &&
            host_eq(pi->host, host))
            return 1;
    }
    return 0;
}

enum problem_result
problem_engine_action_result(struct problem_engine *e, const char *host,
                             const struct tc_event *ev, int64_t *problem_id)
{
    static const char kind[] = "action_result";
    const struct tc_str *inc = NULL;
    struct prob *p;
    char who[PROBLEM_MAX_NAME + 16], d[1024];
    int64_t pid;

    *problem_id = 0;
    if (ev->kind.len != sizeof(kind) - 1 ||
        memcmp(ev->kind.ptr, kind, sizeof(kind) - 1) != 0)
        return PROBLEM_RESULT_NONE;
    for (uint32_t i = 0; i < ev->nfields; i++)
        if (ev->fields[i].key.len == 8 &&
            memcmp(ev->fields[i].key.ptr, "incident", 8) == 0)
            inc = &ev->fields[i].val;
    /* A result naming an incident is the incident engine's. */
    if ((inc != NULL && inc->len != 0) ||
        incident_result_id(ev, "problem", &pid) < 0)
        return PROBLEM_RESULT_NONE;
    *problem_id = pid;
    settle_load(e);
    if ((p = prob_find(e, pid)) == NULL)
        return PROBLEM_RESULT_UNKNOWN;
    if (!prob_has_host(e, p, host))
        return PROBLEM_RESULT_FOREIGN;
    snprintf(who, sizeof(who), "agent:%.*s", PROBLEM_MAX_NAME, host);
    incident_result_detail(ev, d, sizeof(d));
    note_add(e, pid, ev->event_ts ? ev->event_ts : ev->ts, "action", who, d);
    return PROBLEM_RESULT_NOTED;
}

/* pi is major: its end without a problem opens one. */
static int
major_due(const struct problem_engine *e, const struct pinc *pi)
{
    return e->cfg.major && pi->priority <= e->cfg.major_priority;
}

static void
open_major(struct problem_engine *e, struct pinc *pi, int64_t ts)
{
    char t[PROBLEM_MAX_NAME * 2 + 64], f[64];
    struct prob *p;

    snprintf(t, sizeof(t), "major incident %" PRId64 ": %s on %s (P%d)", pi->id,
             pi->cls, pi->host, pi->priority);
    p = prob_new(e, "major", pi->cls, t, ts);
    snprintf(f, sizeof(f), "priority=P%d", pi->priority);
    link_inc(e, pi, p, "major", f, ts, "rule:major");
}

void
problem_engine_incident(struct problem_engine *e, const struct incident *in)
{
    struct pinc *pi;
    int was_known, was_active, opening, again, ended;
    struct prob *p;

    settle_load(e);
    pi = inc_get(e, in->id);
    was_known = pi->known;
    was_active = was_known && active_state(pi->state);
    /*
     * An incident changes many times within one step but is handed
     * over once, at its latest state: one that opened (or reopened)
     * and resolved within the step arrives resolved. Its opening is
     * still an opening, and its end still an end.
     */
    opening = !was_known || in->opened_at != pi->opened_at ||
              (active_state(in->state) && !was_active);
    again = active_state(in->state) && (!was_active || opening);
    ended = !active_state(in->state) && (was_active || opening);
    if (!was_known) {
        pi->host = tc_xstrdup(in->host);
        pi->cls = tc_xstrdup(problem_class(in->fingerprint));
        pi->service = tc_xstrdup(in->service ? in->service : "");
        pi->known = 1;
        problem_engine_host(e, in->host);
        idx_known(e, pi);
    } else if (pi->service[0] == '\0' && in->service && in->service[0]) {
        free(pi->service);
        pi->service = tc_xstrdup(in->service);
    }
    pi->state = in->state;
    pi->sev = in->severity;
    pi->priority = in->priority;
    pi->opened_at = in->opened_at;
    pi->first_seen = in->first_seen;
    pi->resolved_at = in->resolved_at;
    pi->closed_at = in->closed_at;
    touch(e, pi);

    p = pi->mark.problem_id ? prob_find(e, pi->mark.problem_id) : NULL;
    if (p != NULL) {
        if (again && p->v.state == PROBLEM_RESOLVED) {
            char d[64];

            snprintf(d, sizeof(d), "incident %" PRId64 " active again", pi->id);
            p->v.state = PROBLEM_OPEN;
            p->v.resolved_at = 0;
            p->dirty = 1;
            note_add(e, p->v.id, in->opened_at, "reopened", "rule:incident", d);
        }
        /* Onset, severity and state feed the ranking and the marks. */
        p->rank_dirty = 1;
        quiet_update(e, p);
        if (opening && prob_open(p))
            reverse(e, pi);
        return;
    }
    if (opening)
        relate(e, pi, 1);
    /* A major incident that ends with no problem: the review starts. */
    if (ended && pi->mark.problem_id == 0 && !pi->mark.manual &&
        major_due(e, pi)) {
        int64_t ts = in->resolved_at ? in->resolved_at : in->closed_at;

        open_major(e, pi, ts);
    }
}

/* ---- ranking ------------------------------------------------------------ */

struct hostacc {
    const char *host;       /* a member's host or a named host (borrowed) */
    const struct pinc *inc; /* its earliest member incident, or NULL */
    int64_t incident_id, onset, first_ref;
    enum tc_severity sev;
    uint32_t named, upstream, affected;
    char named_list[160];
    char up_list[160];
};

/* Where acc's hosts are: an open-addressed table of index + 1 (0 =
 * empty), at most half full, so that finding a host is not a walk of
 * every host of a large problem. */
struct accix {
    size_t *slot;
    size_t cap; /* a power of two */
};

static size_t *
accix_slot(const struct accix *x, const struct hostacc *a, const char *host)
{
    size_t i = (size_t)key_hash(host, 1) & (x->cap - 1);

    while (x->slot[i] != 0 && !host_eq(a[x->slot[i] - 1].host, host))
        i = (i + 1) & (x->cap - 1);
    return &x->slot[i];
}

static struct hostacc *
acc_get(struct hostacc **a, size_t *n, struct accix *x, const char *host)
{
    size_t *sl;

    if ((*n + 1) * 2 > x->cap) {
        struct accix y = {NULL, x->cap ? x->cap * 2 : 64};

        y.slot = tc_xcalloc(y.cap, sizeof(*y.slot));
        for (size_t i = 0; i < *n; i++)
            *accix_slot(&y, *a, (*a)[i].host) = i + 1;
        free(x->slot);
        *x = y;
    }
    sl = accix_slot(x, *a, host);
    if (*sl != 0)
        return &(*a)[*sl - 1];
    *sl = *n + 1;
    *a = tc_xreallocarray(*a, *n + 1, sizeof(**a));
    memset(&(*a)[*n], 0, sizeof(**a));
    (*a)[*n].host = host;
    (*a)[*n].onset = INT64_MAX;
    (*a)[*n].first_ref = INT64_MAX;
    return &(*a)[(*n)++];
}

static void
list_add(char *buf, size_t len, uint32_t n, const char *item)
{
    size_t at = strlen(buf);

    if (n > LIST_HOSTS)
        return;
    if (n == LIST_HOSTS) {
        snprintf(buf + at, len - at, ", ...");
        return;
    }
    snprintf(buf + at, len - at, "%s%s", at ? ", " : "", item);
}

static int
severity_points(enum tc_severity s)
{
    return s == TC_SEV_CRITICAL  ? 10
           : s == TC_SEV_ERROR   ? 6
           : s == TC_SEV_WARNING ? 3
                                 : 0;
}

static int
cand_cmp(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    int c;

    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->onset != b->onset)
        return a->onset < b->onset ? -1 : 1;
    if ((c = strcmp(a->host, b->host)) != 0)
        return c;
    return a->incident_id < b->incident_id ? -1
                                           : a->incident_id > b->incident_id;
}

/* A member pi of the problem explains (named or depends on) host h. */
static void
explain_acc(const struct problem_engine *e, struct hostacc *acc, size_t nacc,
            const struct pinc *m)
{
    /* m explains a host only by naming it or depending on it: with no
     * reference and no rule from its side, it explains none. */
    int from = dep_side(e, m, 0);

    if (m->nrefs == 0 && !from)
        return;
    for (size_t k = 0; k < nacc; k++) {
        struct hostacc *h = &acc[k];
        const struct pref *r;
        int explained = 0;
        char item[PROBLEM_MAX_NAME * 2 + 8];

        if (host_eq(m->host, h->host))
            continue;
        if ((r = names(m, h->host)) != NULL) {
            snprintf(item, sizeof(item), "%s %s", m->host, r->field);
            list_add(h->named_list, sizeof(h->named_list), h->named, item);
            h->named++;
            explained = 1;
        }
        if (from && h->inc != NULL) {
            if (depends(e, m, h->inc) != NULL) {
                list_add(h->up_list, sizeof(h->up_list), h->upstream, m->host);
                h->upstream++;
                explained = 1;
            }
        }
        h->affected += (uint32_t)explained;
    }
}

/*
 * Reference chains (a cascade: the apps name queue-01, whose events name
 * db-01): hosts that name acc[t] only through others. Breadth first
 * over the members' references, backwards from t; mi[i] is mem[i]'s
 * host's index in acc. Returns how many hosts are two or more hops
 * away; via lists the hosts one hop away that others name in turn.
 */
static uint32_t
behind(const struct pinc *const *mem, const size_t *mi, size_t nmem,
       const struct hostacc *acc, size_t nacc, size_t t, char *via, size_t vlen)
{
    size_t *q = tc_xcalloc(nacc, sizeof(*q));
    uint8_t *depth = tc_xcalloc(nacc, 1); /* 0 = not reached */
    size_t head = 0, tail = 0;
    uint32_t far = 0, nvia = 0;

    via[0] = '\0';
    depth[t] = 1;
    q[tail++] = t;
    while (head < tail) {
        size_t x = q[head++];
        int named_in_turn = 0;

        for (size_t i = 0; i < nmem; i++) {
            size_t y = mi[i];

            if (y == x || names(mem[i], acc[x].host) == NULL)
                continue;
            if (depth[y] == 0 || depth[y] > depth[x])
                named_in_turn = 1;
            if (depth[y] != 0)
                continue;
            depth[y] = depth[x] < UINT8_MAX ? (uint8_t)(depth[x] + 1) : 255;
            if (depth[y] > 2)
                far++;
            q[tail++] = y;
        }
        if (depth[x] == 2 && named_in_turn)
            list_add(via, vlen, nvia++, acc[x].host);
    }
    free(q);
    free(depth);
    return far;
}

/*
 * Does a chain of references lead from member m to host root through
 * p's members (m names x, an incident of p on x names ... root)? The
 * first hop into via. At most CHAIN_HOSTS hosts are visited.
 */
static int
leads_to(const struct problem_engine *e, const struct prob *p,
         const struct pinc *m, const char *root, char *via, size_t vlen)
{
    const char *host[CHAIN_HOSTS];
    size_t first[CHAIN_HOSTS], n = 0, done = 0;
    int found = 0;

    for (size_t i = 0; i < m->nrefs && n < CHAIN_HOSTS; i++) {
        size_t k;

        for (k = 0; k < n && !host_eq(host[k], m->refs[i].host); k++)
            ;
        if (k < n || host_eq(m->refs[i].host, m->host))
            continue;
        first[n] = n;
        host[n++] = m->refs[i].host;
    }
    if (n == 0)
        return 0;
    while (done < n && !found) {
        size_t x = done++;
        /* p's members on host[x], in id order: the incidents of that
         * host (an index) that are p's. */
        const struct plist *on = idx_list(&e->by_host, host[x], 1);

        for (size_t i = 0; i < on->n && !found; i++) {
            const struct pinc *mi = on->v[i];

            if (!mi->known || mi->mark.problem_id != p->v.id)
                continue;
            for (size_t r = 0; r < mi->nrefs; r++) {
                const char *y = mi->refs[r].host;
                size_t k;

                if (host_eq(y, root)) {
                    snprintf(via, vlen, "%s", host[first[x]]);
                    found = 1;
                    break;
                }
                for (k = 0; k < n && !host_eq(host[k], y); k++)
                    ;
                if (k < n || n == CHAIN_HOSTS || host_eq(y, m->host))
                    continue;
                first[n] = first[x];
                host[n++] = y;
            }
        }
    }
    return found;
}

/*
 * Is member m of p a symptom of its root (the top candidate's host, and
 * root its incident, or NULL)? Why in words into why (len > 0). The
 * relation, not the rule that linked m, decides (see rank).
 */
static int
symptom(const struct problem_engine *e, const struct prob *p,
        const struct pinc *root, const struct pinc *m, char *why, size_t len)
{
    const struct pref *r;
    const struct problem_dep *dp;
    char via[PROBLEM_MAX_NAME + 1];
    int by_class =
        strcmp(p->v.rule, "spread") == 0 || strcmp(p->v.rule, "trend") == 0;

    if (m->mark.manual) {
        if (len)
            snprintf(why, len, "a user linked it");
        return 1;
    }
    if (p->v.root_host[0] && (r = names(m, p->v.root_host)) != NULL) {
        if (len)
            snprintf(why, len, "its events name the root %s (%s=%s)",
                     p->v.root_host, r->field, r->value);
        return 1;
    }
    if (p->v.root_host[0] &&
        leads_to(e, p, m, p->v.root_host, via, sizeof(via))) {
        if (len)
            snprintf(why, len,
                     "its events name %s, whose problem's events lead on "
                     "to the root %s",
                     via, p->v.root_host);
        return 1;
    }
    if (root != NULL && by_class && strcmp(m->cls, root->cls) == 0) {
        if (len)
            snprintf(why, len,
                     "same class `%s` as the root's incident %" PRId64
                     " in a %s problem",
                     m->cls, root->id, p->v.rule);
        return 1;
    }
    if (root != NULL && (dp = depends(e, m, root)) != NULL) {
        if (len)
            snprintf(why, len,
                     "it depends on the root %s (depends_on %s -> %s)",
                     root->host, dp->from, dp->to);
        return 1;
    }
    if (len)
        snprintf(why, len, "nothing relates it to the root %s",
                 p->v.root_host[0] ? p->v.root_host : "(none)");
    return 0;
}

/*
 * Rank the candidates of p (docs/correlation.md, "Ranking"): every host
 * of its incidents and every host their events named.
 */
static void
rank(struct problem_engine *e, struct prob *p)
{
    const struct pinc **mem = NULL, **rmem;
    size_t nmem = 0, nacc = 0, ncand, *mi = NULL, *rmi, nrmem = 0;
    struct hostacc *acc = NULL;
    struct accix ix = {NULL, 0};
    struct cand *c = NULL;
    int64_t earliest = INT64_MAX;
    int same;

    mem = tc_xcalloc(p->mem.n ? p->mem.n : 1, sizeof(*mem));
    for (size_t i = 0; i < p->mem.n; i++)
        if (p->mem.v[i]->known && p->mem.v[i]->mark.problem_id == p->v.id)
            mem[nmem++] = p->mem.v[i];
    for (size_t i = 0; i < nmem; i++) {
        struct hostacc *h = acc_get(&acc, &nacc, &ix, mem[i]->host);

        if (mem[i]->first_seen < h->onset ||
            (mem[i]->first_seen == h->onset && mem[i]->id < h->incident_id)) {
            h->onset = mem[i]->first_seen;
            h->incident_id = mem[i]->id;
            h->inc = mem[i];
        }
        if (mem[i]->sev > h->sev)
            h->sev = mem[i]->sev;
        if (mem[i]->first_seen < earliest)
            earliest = mem[i]->first_seen;
    }
    for (size_t i = 0; i < nmem; i++)
        for (size_t r = 0; r < mem[i]->nrefs; r++) {
            struct hostacc *h = acc_get(&acc, &nacc, &ix, mem[i]->refs[r].host);

            if (mem[i]->refs[r].ts < h->first_ref)
                h->first_ref = mem[i]->refs[r].ts;
        }
    for (size_t i = 0; i < nmem; i++)
        explain_acc(e, acc, nacc, mem[i]);
    mi = tc_xcalloc(nmem ? nmem : 1, sizeof(*mi));
    for (size_t i = 0; i < nmem; i++)
        mi[i] = *accix_slot(&ix, acc, mem[i]->host) - 1;
    free(ix.slot);
    /* Only members with references name anyone: behind() walks those. */
    rmem = tc_xcalloc(nmem ? nmem : 1, sizeof(*rmem));
    rmi = tc_xcalloc(nmem ? nmem : 1, sizeof(*rmi));
    for (size_t i = 0; i < nmem; i++)
        if (mem[i]->nrefs > 0) {
            rmem[nrmem] = mem[i];
            rmi[nrmem++] = mi[i];
        }

    c = tc_xcalloc(nacc ? nacc : 1, sizeof(*c));
    for (size_t i = 0; i < nacc; i++) {
        struct hostacc *h = &acc[i];
        struct cand *ci = &c[i];
        char what[EVIDENCE_MAX], ev[EVIDENCE_MAX], via[160];
        size_t at = 0;
        int64_t s = 0;
        uint32_t k, far = 0;

        /* Each term once in words (explain shows them apart), then the
         * evidence line: "what (+points)" joined by "; ". */
#define TERM(pts, ...)                                                         \
    do {                                                                       \
        snprintf(what, sizeof(what), __VA_ARGS__);                             \
        ci->terms[ci->nterms].what = tc_xstrdup(what);                         \
        ci->terms[ci->nterms++].points = (pts);                                \
        s += (pts);                                                            \
    } while (0)
        if (h->incident_id != 0 && h->onset == earliest)
            TERM(SCORE_ONSET, "earliest onset");
        if (h->named > 0) {
            k = h->named < SCORE_NAMED_MAX ? h->named : SCORE_NAMED_MAX;
            TERM((int64_t)k * SCORE_NAMED,
                 "named by %" PRIu32 " other %s events: %s", h->named,
                 h->named == 1 ? "host's" : "hosts'", h->named_list);
            /* Behind those, hosts that name them: the same weight per
             * host, within the same cap, so that the end of a chain
             * outranks its middle. */
            far = behind(rmem, rmi, nrmem, acc, nacc, i, via, sizeof(via));
            if (far > 0) {
                uint32_t all = h->named + far < SCORE_NAMED_MAX
                                   ? h->named + far
                                   : SCORE_NAMED_MAX;

                TERM((int64_t)(all - k) * SCORE_NAMED,
                     "behind them %" PRIu32 " more host%s name those: via %s",
                     far, far == 1 ? "" : "s", via);
            }
        }
        if (h->upstream > 0) {
            k = h->upstream < SCORE_UP_MAX ? h->upstream : SCORE_UP_MAX;
            TERM(SCORE_UPSTREAM + (int64_t)k * SCORE_UP_HOST,
                 "upstream in topology of %" PRIu32 " host%s: %s", h->upstream,
                 h->upstream == 1 ? "" : "s", h->up_list);
        }
        if (severity_points(h->sev) > 0)
            TERM(severity_points(h->sev), "severity %s",
                 tc_severity_name(h->sev));
        if (h->affected + far > 0) {
            uint32_t aff = h->affected + far;

            k = aff < SCORE_AFFECTED_MAX ? aff : SCORE_AFFECTED_MAX;
            TERM((int64_t)k, "%" PRIu32 " host%s affected", aff,
                 aff == 1 ? "" : "s");
        }
        if (h->incident_id == 0)
            TERM(0, "no incident of its own");
#undef TERM
        ev[0] = '\0';
        for (size_t t = 0; t < ci->nterms && at < sizeof(ev); t++) {
            if (ci->terms[t].points > 0)
                at += (size_t)snprintf(ev + at, sizeof(ev) - at,
                                       "%s%s (+%" PRId64 ")", at ? "; " : "",
                                       ci->terms[t].what, ci->terms[t].points);
            else
                at += (size_t)snprintf(ev + at, sizeof(ev) - at, "%s%s",
                                       at ? "; " : "", ci->terms[t].what);
        }
        c[i].host = tc_xstrdup(h->host);
        c[i].incident_id = h->incident_id;
        c[i].score = s;
        c[i].onset = h->incident_id ? h->onset : INT64_MAX;
        c[i].evidence = tc_xstrdup(ev);
    }
    if (nacc > 1)
        tc_qsort(c, nacc, sizeof(*c), cand_cmp);
    ncand = nacc < PROBLEM_MAX_CANDIDATES ? nacc : PROBLEM_MAX_CANDIDATES;
    for (size_t i = ncand; i < nacc; i++)
        cand_release(&c[i]);
    same = ncand == p->ncands;
    for (size_t i = 0; same && i < ncand; i++)
        same = strcmp(c[i].host, p->cands[i].host) == 0 &&
               c[i].incident_id == p->cands[i].incident_id &&
               c[i].score == p->cands[i].score &&
               strcmp(c[i].evidence, p->cands[i].evidence) == 0;
    if (same) {
        for (size_t i = 0; i < ncand; i++)
            cand_release(&c[i]);
        free(c);
    } else {
        cands_free(p);
        p->cands = c;
        p->ncands = ncand;
        p->cands_dirty = 1;
    }
    {
        int64_t ri = p->ncands ? p->cands[0].incident_id : 0;
        const char *rh = p->ncands ? p->cands[0].host : "";

        if (ri != p->v.root_incident || strcmp(rh, p->v.root_host) != 0) {
            p->v.root_incident = ri;
            free(p->v.root_host);
            p->v.root_host = tc_xstrdup(rh);
            p->dirty = 1;
        }
    }
    /*
     * Inhibition: while the problem is open, its symptoms are inhibited,
     * the root cause's incident is not. A symptom is a member the root
     * explains: it named the root's host, depends on it in topology, is
     * of the same class in a spread or trend problem (where the class
     * is the relation), or a user linked it. Without that relation an
     * agent could get another host's incident silenced just by naming
     * that host in its own events (docs/security.md). When the top
     * candidate has no incident of its own (a silent dependency), the
     * earliest member stays uninhibited so that someone still hears of
     * it.
     */
    {
        int64_t keep = p->v.root_incident;
        const struct pinc *root = NULL;

        if (keep == 0) {
            const struct pinc *first = NULL;

            for (size_t i = 0; i < nmem; i++)
                if (first == NULL || mem[i]->first_seen < first->first_seen)
                    first = mem[i];
            keep = first ? first->id : 0;
        }
        for (size_t i = 0; i < nmem; i++)
            if (mem[i]->id == p->v.root_incident)
                root = mem[i];
        for (size_t i = 0; i < nmem; i++) {
            struct pinc *m = (struct pinc *)mem[i];
            int inh = prob_open(p) && m->id != keep &&
                      symptom(e, p, root, m, NULL, 0);

            if (inh != m->mark.inhibited) {
                m->mark.inhibited = inh;
                touch(e, m);
            }
        }
    }
    free(mem);
    free(mi);
    free(rmem);
    free(rmi);
    free(acc);
}

static void
settle(struct problem_engine *e)
{
    for (size_t i = 0; i < e->nprob; i++) {
        struct prob *p = e->probs[i];

        if (p->rank_dirty) {
            p->rank_dirty = 0;
            rank(e, p);
        }
    }
}

/* ---- actions and ticks -------------------------------------------------- */

static int
set_text(char **dst, const char *text)
{
    char *n = tc_xstrdup(text ? text : "");

    free(*dst);
    *dst = n;
    return 0;
}

static void
set_state(struct problem_engine *e, struct prob *p, enum problem_state s,
          int64_t ts, const char *who, const char *what, const char *detail)
{
    p->v.state = s;
    switch (s) {
    case PROBLEM_INVESTIGATING:
        p->v.investigating_at = ts;
        break;
    case PROBLEM_KNOWN_ERROR:
        p->v.known_error_at = ts;
        break;
    case PROBLEM_RESOLVED:
        p->v.resolved_at = ts;
        break;
    case PROBLEM_CLOSED:
        p->v.closed_at = ts;
        break;
    default:
        break;
    }
    p->dirty = 1;
    /* Inhibition follows the state: re-rank sets the marks. */
    p->rank_dirty = 1;
    note_add(e, p->v.id, ts, what, who, detail);
}

static int
any_active(const struct problem_engine *e, const struct prob *p)
{
    (void)e;
    for (size_t i = 0; i < p->mem.n; i++)
        if (p->mem.v[i]->known && p->mem.v[i]->mark.problem_id == p->v.id &&
            active_state(p->mem.v[i]->state))
            return 1;
    return 0;
}

/* One review entry: replaces the incident's entry of that field, or
 * appends (always for "action"). */
static int
review_set(struct problem_engine *e, struct prob *p,
           const struct problem_action *a, const char *who)
{
    char d[PROBLEM_MAX_TEXT + 64];
    size_t i = p->v.nreviews;

    if (strcmp(a->key, "action") != 0)
        for (i = 0; i < p->v.nreviews; i++)
            if (p->v.reviews[i].incident_id == a->incident_id &&
                strcmp(p->v.reviews[i].field, a->key) == 0)
                break;
    if (i == p->v.nreviews) {
        if (p->v.nreviews >= PROBLEM_MAX_REVIEW)
            return -E2BIG;
        p->v.reviews = tc_xreallocarray(p->v.reviews, p->v.nreviews + 1,
                                        sizeof(*p->v.reviews));
        p->v.reviews[i].incident_id = a->incident_id;
        p->v.reviews[i].field = tc_xstrdup(a->key);
        p->v.reviews[i].text = NULL;
        p->v.nreviews++;
    }
    set_text(&p->v.reviews[i].text, a->text);
    snprintf(d, sizeof(d), "incident %" PRId64 " %s: %s", a->incident_id,
             a->key, a->text);
    p->dirty = 1;
    note_add(e, p->v.id, a->ts, "review", who, d);
    return 0;
}

int
problem_engine_action(struct problem_engine *e, const struct problem_action *a)
{
    struct prob *p;
    struct pinc *pi;
    char who[PROBLEM_MAX_NAME + 8], d[PROBLEM_MAX_TEXT + 64];
    enum problem_factor_cat cat;

    settle_load(e);
    p = prob_find(e, a->problem_id);
    if (p == NULL || p->v.state == PROBLEM_CLOSED)
        return -ENOENT;
    if ((a->text && strlen(a->text) > PROBLEM_MAX_TEXT) ||
        (a->text2 && strlen(a->text2) > PROBLEM_MAX_TEXT))
        return -E2BIG;
    snprintf(who, sizeof(who), "user:%s", a->user ? a->user : "?");
    switch (a->verb) {
    case PROBLEM_V_INVESTIGATE:
        if (p->v.state != PROBLEM_OPEN)
            return -EALREADY;
        set_state(e, p, PROBLEM_INVESTIGATING, a->ts, who, "investigating",
                  a->text);
        return 0;
    case PROBLEM_V_KNOWN_ERROR:
        if (a->text == NULL || a->text[0] == '\0')
            return -EINVAL;
        if (!prob_open(p))
            return -EALREADY;
        set_text(&p->v.root_cause, a->text);
        set_text(&p->v.workaround, a->text2);
        snprintf(d, sizeof(d), "root cause: %s; workaround: %s", a->text,
                 a->text2 && *a->text2 ? a->text2 : "(none)");
        set_state(e, p, PROBLEM_KNOWN_ERROR, a->ts, who, "known_error", d);
        return 0;
    case PROBLEM_V_RESOLVE:
        if (!prob_open(p))
            return -EALREADY;
        set_state(e, p, PROBLEM_RESOLVED, a->ts, who, "resolved", a->text);
        return 0;
    case PROBLEM_V_CLOSE:
        if (any_active(e, p))
            return -EBUSY;
        set_state(e, p, PROBLEM_CLOSED, a->ts, who, "closed", a->text);
        return 0;
    case PROBLEM_V_LINK:
        pi = inc_find(e, a->incident_id);
        if (pi == NULL || !pi->known || pi->state == INCIDENT_CLOSED)
            return -ENOENT;
        if (pi->mark.problem_id == p->v.id)
            return -EALREADY;
        if (pi->mark.problem_id != 0)
            return -EBUSY;
        pi->mark.manual = 1;
        link_inc(e, pi, p, "user", a->text, a->ts, who);
        return 0;
    case PROBLEM_V_UNLINK:
        pi = inc_find(e, a->incident_id);
        if (pi == NULL || !pi->known || pi->mark.problem_id != p->v.id)
            return -ENOENT;
        pi->mark.manual = 1;
        unlink_inc(e, pi, p, a->ts, who, "user");
        return 0;
    case PROBLEM_V_NOTE:
        if (a->text == NULL || a->text[0] == '\0')
            return -EINVAL;
        note_add(e, p->v.id, a->ts, "note", who, a->text);
        return 0;
    case PROBLEM_V_RCA:
        if (a->key == NULL)
            return -EINVAL;
        if (strncmp(a->key, "why", 3) == 0 && a->key[3] >= '1' &&
            a->key[3] <= '0' + PROBLEM_WHYS && a->key[4] == '\0') {
            set_text(&p->v.whys[a->key[3] - '1'], a->text);
        } else if (problem_factor_parse(a->key, &cat) == 0) {
            if (a->text == NULL || a->text[0] == '\0')
                return -EINVAL;
            if (p->v.nfactors >= PROBLEM_MAX_FACTORS)
                return -E2BIG;
            p->v.factors = tc_xreallocarray(p->v.factors, p->v.nfactors + 1,
                                            sizeof(*p->v.factors));
            p->v.factors[p->v.nfactors].category = cat;
            p->v.factors[p->v.nfactors++].text = tc_xstrdup(a->text);
        } else {
            return -EINVAL;
        }
        snprintf(d, sizeof(d), "%s: %s", a->key, a->text ? a->text : "");
        p->dirty = 1;
        note_add(e, p->v.id, a->ts, "rca", who, d);
        return 0;
    case PROBLEM_V_REVIEW:
        pi = inc_find(e, a->incident_id);
        if (pi == NULL || !pi->known || pi->mark.problem_id != p->v.id)
            return -ENOENT;
        if (!problem_review_field_ok(a->key) || a->text == NULL ||
            a->text[0] == '\0')
            return -EINVAL;
        return review_set(e, p, a, who);
    }
    return -EINVAL;
}

void
problem_engine_tick(struct problem_engine *e, int64_t now)
{
    char d[96];

    settle_load(e);
    for (size_t i = 0; i < e->nprob; i++) {
        struct prob *p = e->probs[i];

        if (prob_open(p) && p->v.quiet_since != 0 &&
            now - p->v.quiet_since >= e->cfg.resolve_after_ns &&
            !any_active(e, p)) {
            snprintf(d, sizeof(d), "all incidents resolved for %" PRId64 "s",
                     (now - p->v.quiet_since) / NS_PER_S);
            set_state(e, p, PROBLEM_RESOLVED, now, "rule:resolve_after",
                      "resolved", d);
        }
        if (p->v.state == PROBLEM_RESOLVED) {
            int open = 0;

            for (size_t k = 0; k < p->mem.n && !open; k++)
                open = p->mem.v[k]->known &&
                       p->mem.v[k]->mark.problem_id == p->v.id &&
                       p->mem.v[k]->state != INCIDENT_CLOSED;
            if (!open)
                set_state(e, p, PROBLEM_CLOSED, now, "rule:incidents_closed",
                          "closed", "every incident closed");
        }
    }
    /* Openings too old to count go (none is, unless the oldest is). */
    if (e->trend_min != INT64_MAX &&
        now - e->trend_min > e->cfg.trend_period_ns) {
        int64_t min = INT64_MAX;

        for (size_t i = 0; i < e->ntrend; i++) {
            struct trend *t = &e->trends[i];
            size_t k = 0;

            while (k < t->n && now - t->ts[k] > e->cfg.trend_period_ns)
                k++;
            if (k > 0) {
                memmove(&t->ts[0], &t->ts[k], (t->n - k) * sizeof(*t->ts));
                t->n -= k;
            }
            if (t->n > 0 && t->ts[0] < min)
                min = t->ts[0];
        }
        e->trend_min = min;
    }
}

int64_t
problem_engine_trend_horizon(const struct problem_engine *e, int64_t now)
{
    /* The tick keeps an opening while now - ts <= period. */
    return now - e->cfg.trend_period_ns;
}

/* ---- load --------------------------------------------------------------- */

static char *
dup0(const char *s)
{
    return tc_xstrdup(s ? s : "");
}

void
problem_engine_load(struct problem_engine *e, const struct problem *src)
{
    struct prob *p;

    if (src->state == PROBLEM_CLOSED || prob_find(e, src->id) != NULL)
        return;
    p = tc_xcalloc(1, sizeof(*p));
    p->v = *src;
    p->v.rule = dup0(src->rule);
    p->v.key = dup0(src->key);
    p->v.title = dup0(src->title);
    p->v.root_host = dup0(src->root_host);
    p->v.root_cause = dup0(src->root_cause);
    p->v.workaround = dup0(src->workaround);
    for (int i = 0; i < PROBLEM_WHYS; i++)
        p->v.whys[i] = dup0(src->whys[i]);
    p->v.factors = NULL;
    p->v.nfactors = 0;
    if (src->nfactors > 0) {
        p->v.factors = tc_xcalloc(src->nfactors, sizeof(*p->v.factors));
        for (size_t i = 0; i < src->nfactors; i++) {
            p->v.factors[i].category = src->factors[i].category;
            p->v.factors[i].text = dup0(src->factors[i].text);
        }
        p->v.nfactors = src->nfactors;
    }
    p->v.reviews = NULL;
    p->v.nreviews = 0;
    if (src->nreviews > 0) {
        p->v.reviews = tc_xcalloc(src->nreviews, sizeof(*p->v.reviews));
        for (size_t i = 0; i < src->nreviews; i++) {
            p->v.reviews[i].incident_id = src->reviews[i].incident_id;
            p->v.reviews[i].field = dup0(src->reviews[i].field);
            p->v.reviews[i].text = dup0(src->reviews[i].text);
        }
        p->v.nreviews = src->nreviews;
    }
    p->rank_dirty = 1;
    prob_insert(e, p);
    e->loaded = 1;
}

void
problem_engine_load_incident(struct problem_engine *e,
                             const struct incident *in,
                             const struct problem_mark *m)
{
    struct pinc *pi = inc_get(e, in->id);

    if (!pi->known) {
        pi->host = tc_xstrdup(in->host);
        pi->cls = tc_xstrdup(problem_class(in->fingerprint));
        pi->service = dup0(in->service);
        pi->known = 1;
        problem_engine_host(e, in->host);
    }
    pi->state = in->state;
    pi->sev = in->severity;
    pi->priority = in->priority;
    pi->opened_at = in->opened_at;
    pi->first_seen = in->first_seen;
    pi->resolved_at = in->resolved_at;
    pi->closed_at = in->closed_at;
    if (m != NULL) {
        pi->mark = *m;
        pi->mark.incident_id = in->id;
    }
    pi->sent = pi->mark;
    e->loaded = 1;
}

void
problem_engine_load_ref(struct problem_engine *e, const struct problem_ref *r)
{
    struct pinc *pi = inc_get(e, r->incident_id);

    ref_add(e, pi, r->host, r->field, strlen(r->field), r->value,
            strlen(r->value), r->ts, 0);
    e->loaded = 1;
}

void
problem_engine_load_opening(struct problem_engine *e,
                            const struct problem_opening *o)
{
    trend_add(trend_get(e, o->cls), o->ts);
    if (o->ts < e->trend_min)
        e->trend_min = o->ts;
}

void
problem_engine_set_last_id(struct problem_engine *e, int64_t last_id)
{
    if (last_id > e->last_id)
        e->last_id = last_id;
}

/* ---- drain -------------------------------------------------------------- */

static int
mark_eq(const struct problem_mark *a, const struct problem_mark *b)
{
    return a->problem_id == b->problem_id && a->inhibited == b->inhibited &&
           a->manual == b->manual;
}

static int
pinc_id_cmp(const void *x, const void *y)
{
    const struct pinc *a = *(const struct pinc *const *)x,
                      *b = *(const struct pinc *const *)y;

    return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Forget the touched incidents nothing holds any more (not known, or
 * closed and not in a problem in memory): only an incident touched
 * since the last drain, or a member of a problem the drain just let
 * go, can have stopped being held. One pass over the rest, from the
 * first that goes, and only when one goes.
 */
static void
forget_unheld(struct problem_engine *e)
{
    size_t ndead = 0, from = e->ninc, j;

    for (size_t k = 0; k < e->ntouched; k++) {
        struct pinc *pi = e->touched[k];
        int held = pi->known && pi->state != INCIDENT_CLOSED;

        pi->touched = 0;
        if (!held && pi->known && pi->mark.problem_id != 0 &&
            prob_find(e, pi->mark.problem_id) != NULL)
            held = 1;
        if (held)
            continue;
        pi->dead = 1;
        idx_forget(e, pi);
        ndead++;
        j = inc_pos(e, pi->id);
        if (j < from)
            from = j;
    }
    e->ntouched = 0;
    if (ndead == 0)
        return;
    j = from;
    for (size_t i = from; i < e->ninc; i++) {
        struct pinc *pi = e->incs[i];

        if (pi->dead) {
            pinc_free(pi);
            continue;
        }
        e->incs[j++] = pi;
    }
    e->ninc = j;
}

int
problem_engine_drain(struct problem_engine *e, const struct problem_sink *sink,
                     void *arg)
{
    int rc = 0;
    size_t j;

    settle_load(e);
    settle(e);
    for (size_t i = 0; i < e->nprob && rc == 0; i++) {
        struct prob *p = e->probs[i];

        if (p->dirty && sink->problem)
            rc = sink->problem(arg, &p->v);
        p->dirty = 0;
    }
    for (size_t i = 0; i < e->nlinks && rc == 0; i++)
        if (sink->link)
            rc = sink->link(arg, &e->links[i].v);
    for (size_t i = 0; i < e->nprob && rc == 0; i++) {
        struct prob *p = e->probs[i];
        struct problem_candidate out[PROBLEM_MAX_CANDIDATES];

        if (!p->cands_dirty)
            continue;
        p->cands_dirty = 0;
        for (size_t k = 0; k < p->ncands; k++)
            out[k] = (struct problem_candidate){
                p->v.id,           (int)k + 1,
                p->cands[k].host,  p->cands[k].incident_id,
                p->cands[k].score, p->cands[k].evidence};
        if (sink->candidates)
            rc = sink->candidates(arg, p->v.id, out, p->ncands);
    }
    /* Only a touched incident's mark can have changed. */
    if (e->ntouched > 1)
        tc_qsort(e->touched, e->ntouched, sizeof(*e->touched), pinc_id_cmp);
    for (size_t i = 0; i < e->ntouched && rc == 0; i++) {
        struct pinc *pi = e->touched[i];

        if (!pi->known || mark_eq(&pi->mark, &pi->sent))
            continue;
        pi->sent = pi->mark;
        if (sink->mark)
            rc = sink->mark(arg, &pi->mark);
    }
    for (size_t i = 0; i < e->nrefs && rc == 0; i++) {
        const struct pinc *pi = inc_find(e, e->refs[i].incident_id);
        const struct pref *r;

        if (pi == NULL || e->refs[i].idx >= pi->nrefs)
            continue;
        r = &pi->refs[e->refs[i].idx];
        if (sink->ref)
            rc = sink->ref(arg, &(struct problem_ref){pi->id, r->host, r->field,
                                                      r->value, r->ts});
    }
    for (size_t i = 0; i < e->nopens && rc == 0; i++)
        if (sink->opening)
            rc =
                sink->opening(arg, &(struct problem_opening){
                                       e->opens[i].cls, e->opens[i].incident_id,
                                       e->opens[i].ts});
    for (size_t i = 0; i < e->nnotes && rc == 0; i++) {
        const struct note_out *n = &e->notes[i];

        if (sink->note)
            rc = sink->note(arg, &(struct problem_note){n->id, n->ts, n->what,
                                                        n->who, n->detail});
    }
    outputs_clear(e);
    /* Forget closed problems, and incidents nothing holds any more. */
    j = 0;
    for (size_t i = 0; i < e->nprob; i++) {
        struct prob *p = e->probs[i];

        if (p->v.state == PROBLEM_CLOSED) {
            /* Its members keep their mark but are in no list now. */
            for (size_t k = 0; k < p->mem.n; k++) {
                p->mem.v[k]->in = NULL;
                touch(e, p->mem.v[k]);
            }
            qkey_del(e, p);
            prob_free(p);
            continue;
        }
        e->probs[j++] = p;
    }
    e->nprob = j;
    forget_unheld(e);
    return rc;
}

int
problem_engine_pending(struct problem_engine *e)
{
    settle_load(e);
    settle(e);
    if (e->nlinks || e->nrefs || e->nopens || e->nnotes)
        return 1;
    for (size_t i = 0; i < e->nprob; i++)
        if (e->probs[i]->dirty || e->probs[i]->cands_dirty)
            return 1;
    for (size_t i = 0; i < e->ntouched; i++)
        if (e->touched[i]->known &&
            !mark_eq(&e->touched[i]->mark, &e->touched[i]->sent))
            return 1;
    return 0;
}

size_t
problem_engine_size(const struct problem_engine *e)
{
    return e->nprob;
}

void
problem_engine_census(const struct problem_engine *e,
                      uint64_t out[PROBLEM_CENSUS_STATES])
{
    memset(out, 0, sizeof(uint64_t) * PROBLEM_CENSUS_STATES);
    for (size_t i = 0; i < e->nprob; i++)
        if ((unsigned)e->probs[i]->v.state < PROBLEM_CENSUS_STATES)
            out[e->probs[i]->v.state]++;
}

const struct problem *
problem_engine_get(const struct problem_engine *e, int64_t id)
{
    const struct prob *p = prob_find(e, id);

    return p ? &p->v : NULL;
}

struct problem_mark
problem_engine_mark(const struct problem_engine *e, int64_t incident_id)
{
    const struct pinc *pi = inc_find(e, incident_id);
    struct problem_mark m = {incident_id, 0, 0, 0};

    return pi ? pi->mark : m;
}

/* ---- explain ------------------------------------------------------------ */

/* A duration in words: "10m", "7d", "90s". */
static void
dur(char *buf, size_t len, int64_t ns)
{
    int64_t s = ns / NS_PER_S;

    if (s >= 86400 && s % 86400 == 0)
        snprintf(buf, len, "%" PRId64 "d", s / 86400);
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(buf, len, "%" PRId64 "h", s / 3600);
    else if (s >= 60 && s % 60 == 0)
        snprintf(buf, len, "%" PRId64 "m", s / 60);
    else
        snprintf(buf, len, "%" PRId64 "s", s);
}

/* printf appended to a verdict text (cut when full). */
static void __attribute__((format(printf, 2, 3)))
why_add(char *why, const char *fmt, ...)
{
    size_t at = strlen(why);
    va_list ap;

    if (at >= PROBLEM_EXPLAIN_TEXT - 1)
        return;
    va_start(ap, fmt);
    vsnprintf(why + at, PROBLEM_EXPLAIN_TEXT - at, fmt, ap);
    va_end(ap);
}

static void
verdict_spread(const struct problem_engine *e, const struct pinc *pi,
               struct problem_verdict *v)
{
    const char **hv = NULL;
    const struct prob *p;
    char w[32];
    uint32_t n;

    v->need = e->cfg.spread_min_hosts;
    if ((p = open_keyed(e, "spread", pi->cls)) != NULL) {
        v->matches = 1;
        v->seen = v->need;
        why_add(v->why,
                "class `%s` has open spread problem %" PRId64 ": it joins it",
                pi->cls, p->v.id);
        return;
    }
    n = spread_hosts(e, pi, &hv);
    dur(w, sizeof(w), e->cfg.spread_window_ns);
    v->seen = n;
    v->matches = n >= v->need;
    why_add(v->why, "class `%s` was seen on %" PRIu32 " host%s within %s (",
            pi->cls, n, n == 1 ? "" : "s", w);
    for (uint32_t i = 0; i < n && i < LIST_HOSTS; i++)
        why_add(v->why, "%s%s", i ? ", " : "", hv[i]);
    why_add(v->why, "%s); min_hosts is %" PRIu32, n > LIST_HOSTS ? ", ..." : "",
            v->need);
    free(hv);
}

static void
verdict_reference(const struct problem_engine *e, const struct pinc *pi,
                  struct problem_verdict *v)
{
    const char *me = known_host_of(e, pi);
    const struct plist *naming;
    char w[32];

    v->need = 2;
    dur(w, sizeof(w), e->cfg.reference_window_ns);
    /* Forward: a field of pi names another host. */
    for (size_t r = 0; r < pi->nrefs; r++) {
        const struct pref *ref = &pi->refs[r];
        struct ref_hit h;

        ref_find(e, pi, ref, &h);
        if (h.p != NULL || h.d != NULL || h.kp != NULL || h.o != NULL) {
            v->matches = 1;
            v->seen = 2;
            why_add(v->why, "field `%s=%s` names `%s`, and ", ref->field,
                    ref->value, ref->host);
            if (h.p != NULL)
                why_add(v->why,
                        "its incident %" PRId64 " is in open problem %" PRId64,
                        h.d->id, h.p->v.id);
            else if (h.d != NULL)
                why_add(v->why, "it has incident %" PRId64 " within %s",
                        h.d->id, w);
            else if (h.kp != NULL)
                why_add(v->why,
                        "open reference problem %" PRId64 " is about it",
                        h.kp->v.id);
            else
                why_add(v->why,
                        "incident %" PRId64 " on %s names it too within %s",
                        h.o->id, h.o->host, w);
            return;
        }
    }
    /* Reverse: another incident names pi's host. */
    naming = rev_on(e, 0, me) ? idx_list(&e->by_named, me, 1) : NULL;
    if (naming != NULL)
        for (size_t i = 0; i < naming->n; i++) {
            const struct pinc *o = naming->v[i];
            const struct pref *r = NULL;
            const struct problem_dep *dp = NULL;
            const struct prob *op;

            if (!rev_rel(e, pi, o, 0, me, &r, &dp))
                continue;
            op = o->mark.problem_id ? prob_find(e, o->mark.problem_id) : NULL;
            if (!(op != NULL && prob_open(op)) && !free_inc(o))
                continue;
            v->matches = 1;
            v->seen = 2;
            why_add(v->why,
                    "incident %" PRId64
                    " on %s names this host (%s=%s) within %s",
                    o->id, o->host, r->field, r->value, w);
            return;
        }
    if (pi->nrefs == 0) {
        v->seen = 0;
        why_add(v->why, "no captured field names a known host");
        if (e->cfg.nreference_fields > 0) {
            why_add(v->why, " (only fields ");
            for (size_t i = 0; i < e->cfg.nreference_fields && i < 8; i++)
                why_add(v->why, "%s`%s`", i ? ", " : "",
                        e->cfg.reference_fields[i]);
            why_add(v->why, "%s are looked at)",
                    e->cfg.nreference_fields > 8 ? ", ..." : "");
        }
    } else {
        v->seen = 1;
        for (size_t r = 0; r < pi->nrefs && r < 3; r++)
            why_add(v->why, "%sfield `%s=%s` names `%s`", r ? "; " : "",
                    pi->refs[r].field, pi->refs[r].value, pi->refs[r].host);
        if (pi->nrefs > 3)
            why_add(v->why, "; ...");
        why_add(v->why,
                ", but %s no incident within %s of this one's opening, "
                "no open problem is about %s and no other incident names %s",
                pi->nrefs == 1 ? "it had" : "they had", w,
                pi->nrefs == 1 ? "it" : "them", pi->nrefs == 1 ? "it" : "them");
    }
    why_add(v->why, "; no other incident within %s names %s", w, pi->host);
}

static void
verdict_topology(const struct problem_engine *e, const struct pinc *pi,
                 struct problem_verdict *v)
{
    const struct problem_dep *dp, *from = NULL, *to = NULL;
    struct prob *p;
    struct pinc *d;
    char w[32];

    v->need = 2;
    if (e->cfg.ndeps == 0) {
        why_add(v->why, "no depends_on rules are configured");
        return;
    }
    dur(w, sizeof(w), e->cfg.topology_window_ns);
    if ((d = topo_find(e, pi, &p, &dp)) != NULL) {
        v->matches = 1;
        v->seen = 2;
        why_add(v->why,
                "it depends on incident %" PRId64
                " on %s (depends_on %s -> %s)",
                d->id, d->host, dp->from, dp->to);
        if (p != NULL)
            why_add(v->why, ", in open problem %" PRId64, p->v.id);
        return;
    }
    /* Incidents that depend on pi: none unless a rule has pi as "to". */
    for (size_t i = 0; dep_side(e, pi, 1) && i < e->ninc; i++) {
        const struct pinc *o = e->incs[i];
        const struct pref *r = NULL;
        const struct prob *op;

        dp = NULL;
        if (!rev_rel(e, pi, o, 1, NULL, &r, &dp))
            continue;
        op = o->mark.problem_id ? prob_find(e, o->mark.problem_id) : NULL;
        if (!(op != NULL && prob_open(op)) && !free_inc(o))
            continue;
        v->matches = 1;
        v->seen = 2;
        why_add(v->why,
                "incident %" PRId64
                " on %s depends on it (depends_on %s -> %s)",
                o->id, o->host, dp->from, dp->to);
        return;
    }
    for (size_t i = 0; i < e->cfg.ndeps; i++) {
        dp = &e->cfg.deps[i];
        if (from == NULL && side_match(dp->from, pi->host, pi->service))
            from = dp;
        if (to == NULL && side_match(dp->to, pi->host, pi->service))
            to = dp;
    }
    if (from == NULL && to == NULL) {
        why_add(v->why, "no depends_on rule covers host %s", pi->host);
        if (pi->service && pi->service[0])
            why_add(v->why, " or service %s", pi->service);
        return;
    }
    v->seen = 1;
    if (from != NULL)
        why_add(v->why,
                "it depends on `%s` (depends_on %s -> %s), but no "
                "incident there opened within %s of it",
                from->to, from->from, from->to, w);
    if (to != NULL)
        why_add(v->why,
                "%s`%s` depends on it (depends_on %s -> %s), but no "
                "incident there opened within %s of it",
                from != NULL ? "; " : "", to->from, to->from, to->to, w);
}

static void
verdict_trend(const struct problem_engine *e, const struct pinc *pi,
              struct problem_verdict *v)
{
    const struct prob *p;
    uint32_t n = 0;
    char w[32];
    size_t lo = 0, hi = e->ntrend;

    v->need = e->cfg.trend_count;
    if ((p = open_keyed(e, "trend", pi->cls)) != NULL) {
        v->matches = 1;
        v->seen = v->need;
        why_add(v->why,
                "class `%s` has open trend problem %" PRId64 ": it joins it",
                pi->cls, p->v.id);
        return;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(e->trends[mid].cls, pi->cls);

        if (c == 0) {
            n = trend_count(e, &e->trends[mid], pi->opened_at);
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    dur(w, sizeof(w), e->cfg.trend_period_ns);
    v->seen = n;
    v->matches = n >= v->need;
    why_add(v->why,
            "%" PRIu32
            " incident%s of class `%s` opened in %s; count is %" PRIu32,
            n, n == 1 ? "" : "s", pi->cls, w, v->need);
}

static void
verdict_major(const struct problem_engine *e, const struct pinc *pi,
              struct problem_verdict *v)
{
    int mp = e->cfg.major_priority;

    v->need = 2;
    if (!major_due(e, pi)) {
        /* Not major at all: no nearer than a rule that saw nothing. */
        v->seen = 0;
        why_add(v->why, "priority P%d; only P1%s%.0d open a problem on resolve",
                pi->priority, mp > 1 ? "-P" : "", mp > 1 ? mp : 0);
        return;
    }
    if (active_state(pi->state)) {
        v->seen = 1;
        why_add(v->why,
                "priority P%d: a problem opens if it resolves without one",
                pi->priority);
        return;
    }
    v->matches = 1;
    v->seen = 2;
    why_add(v->why, "priority P%d and it ended without a problem",
            pi->priority);
}

int
problem_engine_explain_incident(struct problem_engine *e,
                                const struct incident *in,
                                struct problem_explain *out)
{
    static const char *const rules[PROBLEM_NRULES] = {
        "spread", "reference", "topology", "trend", "major"};
    struct pinc tmp;
    const struct pinc *pi;
    const struct prob *p;

    if (in == NULL)
        return -EINVAL;
    /* Rankings as of the last drain (a load settles silently): no
     * re-rank here, which could change what the next drain hands over. */
    settle_load(e);
    memset(out, 0, sizeof(*out));
    out->incident_id = in->id;
    out->nearest = -1;
    pi = inc_find(e, in->id);
    if (pi != NULL && pi->known) {
        out->known = 1;
    } else {
        /* Not held (closed, no problem): the stored row, no evidence. */
        memset(&tmp, 0, sizeof(tmp));
        tmp.id = in->id;
        tmp.known = 1;
        tmp.host = in->host ? in->host : (char *)"";
        tmp.cls = (char *)problem_class(in->fingerprint ? in->fingerprint : "");
        tmp.service = in->service ? in->service : (char *)"";
        tmp.state = in->state;
        tmp.sev = in->severity;
        tmp.priority = in->priority;
        tmp.opened_at = in->opened_at;
        tmp.first_seen = in->first_seen;
        tmp.resolved_at = in->resolved_at;
        tmp.closed_at = in->closed_at;
        tmp.mark.incident_id = in->id;
        pi = &tmp;
    }
    out->mark = pi->mark;
    if (pi->mark.problem_id != 0) {
        const struct pinc *root = NULL;
        char why[PROBLEM_EXPLAIN_TEXT / 2];

        p = prob_find(e, pi->mark.problem_id);
        if (p == NULL) {
            snprintf(out->role, sizeof(out->role),
                     "its problem %" PRId64 " is closed", pi->mark.problem_id);
            return 0;
        }
        root = p->v.root_incident ? inc_find(e, p->v.root_incident) : NULL;
        if (p->v.root_incident == pi->id) {
            out->root = 1;
            snprintf(out->role, sizeof(out->role),
                     "root cause: its host %s ranks first, and this is its "
                     "earliest incident in the problem",
                     p->v.root_host);
        } else if (pi->mark.inhibited) {
            symptom(e, p, root, pi, why, sizeof(why));
            snprintf(out->role, sizeof(out->role),
                     "inhibited symptom of the root %s (incident %" PRId64
                     "): %s",
                     p->v.root_host, p->v.root_incident, why);
        } else if (!prob_open(p)) {
            snprintf(out->role, sizeof(out->role),
                     "not inhibited: the problem is %s",
                     problem_state_name(p->v.state));
        } else if (p->v.root_incident == 0) {
            snprintf(out->role, sizeof(out->role),
                     "not inhibited: the top candidate %s has no incident of "
                     "its own, so the earliest member stays audible (or: %s)",
                     p->v.root_host[0] ? p->v.root_host : "(none)",
                     (symptom(e, p, NULL, pi, why, sizeof(why)), why));
        } else {
            symptom(e, p, root, pi, why, sizeof(why));
            snprintf(out->role, sizeof(out->role), "not inhibited: %s", why);
        }
        /* Which candidate ranks first, and on what evidence. */
        if (p->ncands > 0)
            why_add(out->top,
                    "%s ranks first of %zu candidate%s with score %" PRId64
                    " (%s)",
                    p->cands[0].host, p->ncands, p->ncands == 1 ? "" : "s",
                    p->cands[0].score, p->cands[0].evidence);
        return 0;
    }
    for (int r = 0; r < PROBLEM_NRULES; r++) {
        struct problem_verdict *v = &out->v[r];

        v->rule = rules[r];
        v->need = 1;
        v->enabled = r == PROBLEM_R_SPREAD      ? e->cfg.spread
                     : r == PROBLEM_R_REFERENCE ? e->cfg.reference
                     : r == PROBLEM_R_TOPOLOGY  ? 1
                     : r == PROBLEM_R_TREND     ? e->cfg.trend
                                                : e->cfg.major;
        if (!v->enabled) {
            why_add(v->why, "the rule is off");
            v->seen = 0;
            continue;
        }
        if (pi->mark.manual)
            why_add(v->why, "a user unlinked it, so rules leave it alone; ");
        else if (pi->state == INCIDENT_CLOSED)
            why_add(v->why, "it is closed, and rules link only incidents "
                            "not closed; ");
        switch (r) {
        case PROBLEM_R_SPREAD:
            verdict_spread(e, pi, v);
            break;
        case PROBLEM_R_REFERENCE:
            verdict_reference(e, pi, v);
            break;
        case PROBLEM_R_TOPOLOGY:
            verdict_topology(e, pi, v);
            break;
        case PROBLEM_R_TREND:
            verdict_trend(e, pi, v);
            break;
        default:
            verdict_major(e, pi, v);
            break;
        }
        if (v->need == 0)
            v->need = 1;
        if (pi->mark.manual || pi->state == INCIDENT_CLOSED)
            v->matches = 0;
    }
    /* The nearest: the highest seen/need (a match first), earlier rule on
     * a tie. */
    for (int r = 0; r < PROBLEM_NRULES; r++) {
        const struct problem_verdict *v = &out->v[r], *b;

        if (!v->enabled)
            continue;
        if (out->nearest < 0) {
            out->nearest = r;
            continue;
        }
        b = &out->v[out->nearest];
        if ((v->matches && !b->matches) ||
            (v->matches == b->matches &&
             (uint64_t)v->seen * b->need > (uint64_t)b->seen * v->need))
            out->nearest = r;
    }
    return 0;
}

int
problem_engine_explain_problem(struct problem_engine *e, int64_t id,
                               int64_t now, struct problem_explain_problem *out)
{
    const struct prob *p;
    char w[32];
    size_t members = 0, active = 0, notclosed = 0;

    /* Rankings as of the last drain (a load settles silently): no
     * re-rank here, which could change what the next drain hands over. */
    settle_load(e);
    memset(out, 0, sizeof(*out));
    out->id = id;
    if ((p = prob_find(e, id)) == NULL)
        return -ENOENT;
    for (size_t i = 0; i < p->mem.n; i++) {
        const struct pinc *pi = p->mem.v[i];

        if (!pi->known || pi->mark.problem_id != id)
            continue;
        members++;
        active += active_state(pi->state) != 0;
        notclosed += pi->state != INCIDENT_CLOSED;
    }
    out->active = active > 0;
    dur(w, sizeof(w), e->cfg.resolve_after_ns);
    if (prob_open(p)) {
        if (active > 0) {
            snprintf(out->state_why, sizeof(out->state_why),
                     "%s: %zu of its %zu incidents still active (open or "
                     "acknowledged); it resolves automatically %s after the "
                     "last one resolves",
                     problem_state_name(p->v.state), active, members, w);
        } else if (p->v.quiet_since != 0) {
            out->resolves_at = p->v.quiet_since + e->cfg.resolve_after_ns;
            snprintf(out->state_why, sizeof(out->state_why),
                     "%s: all %zu incidents resolved; it resolves "
                     "automatically %s after its last incident resolved%s",
                     problem_state_name(p->v.state), members, w,
                     now >= out->resolves_at ? " (due: at the collector's "
                                               "next step)"
                                             : "");
        } else {
            snprintf(out->state_why, sizeof(out->state_why),
                     "%s: no incident of it is active; it resolves when a "
                     "user resolves it",
                     problem_state_name(p->v.state));
        }
    } else {
        snprintf(out->state_why, sizeof(out->state_why),
                 "resolved: it closes when every incident of it is closed "
                 "(%zu not closed yet)",
                 notclosed);
    }
    for (size_t i = 0; i < p->ncands; i++) {
        struct problem_explain_cand *c = &out->cands[i];

        c->host = p->cands[i].host;
        c->incident_id = p->cands[i].incident_id;
        c->score = p->cands[i].score;
        c->nterms = p->cands[i].nterms;
        for (size_t t = 0; t < c->nterms; t++)
            c->terms[t] = (struct problem_term){p->cands[i].terms[t].what,
                                                p->cands[i].terms[t].points};
    }
    out->ncands = p->ncands;
    return 0;
}

/* The host-like part of a captured value that names no known host:
 * "name" of "name:port" or the first label of a dotted name; 0 if the
 * value has neither form. */
static size_t
host_part(const char *value, size_t len)
{
    const char *colon = memchr(value, ':', len), *dot;

    if (colon != NULL) {
        size_t plen = len - (size_t)(colon - value) - 1, i;

        for (i = 0; i < plen && colon[1 + i] >= '0' && colon[1 + i] <= '9'; i++)
            ;
        return plen >= 1 && plen <= 5 && i == plen ? (size_t)(colon - value)
                                                   : 0;
    }
    dot = memchr(value, '.', len);
    return dot != NULL ? (size_t)(dot - value) : 0;
}

void
problem_engine_explain_event(const struct problem_engine *e,
                             struct problem_explain *x, const char *host,
                             const struct tc_event *ev)
{
    struct problem_verdict *v = &x->v[PROBLEM_R_REFERENCE];

    if (x->mark.problem_id != 0 || !v->enabled || v->seen > 0 || v->matches)
        return;
    for (uint32_t i = 0; i < ev->nfields && x->nfield_notes < 3; i++) {
        const struct tc_kv *kv = &ev->fields[i];
        char phrase[PROBLEM_MAX_NAME * 2 + 64];
        size_t hl;
        int k = (int)(kv->key.len < 64 ? kv->key.len : 64);
        int vl = (int)(kv->val.len < 64 ? kv->val.len : 64);

        if (kv->val.ptr == NULL || kv->key.ptr == NULL || kv->val.len == 0 ||
            kv->key.len > PROBLEM_MAX_NAME ||
            problem_engine_named_host(e, kv->val.ptr, kv->val.len, NULL) !=
                NULL ||
            (hl = host_part(kv->val.ptr, kv->val.len)) == 0 ||
            hl > PROBLEM_MAX_NAME)
            continue;
        snprintf(phrase, sizeof(phrase), "field `%.*s=%.*s` names `%.*s`", k,
                 kv->key.ptr, vl, kv->val.ptr, (int)(hl < 64 ? hl : 64),
                 kv->val.ptr);
        if (strstr(v->why, phrase) != NULL)
            continue;
        x->nfield_notes++;
        why_add(v->why, "; %s, which is not a known host", phrase);
    }
    /* Known hosts a rule would have followed but did not. */
    for (uint32_t i = 0; i < ev->nfields && x->nfield_notes < 3; i++) {
        const struct tc_kv *kv = &ev->fields[i];
        const char *named;
        char phrase[PROBLEM_MAX_NAME * 2 + 64];
        int k = (int)(kv->key.len < 64 ? kv->key.len : 64);
        int vl = (int)(kv->val.len < 64 ? kv->val.len : 64);

        if (kv->val.ptr == NULL || kv->key.ptr == NULL || kv->val.len == 0 ||
            kv->key.len > PROBLEM_MAX_NAME ||
            (named = problem_engine_named_host(e, kv->val.ptr, kv->val.len,
                                               NULL)) == NULL)
            continue;
        snprintf(phrase, sizeof(phrase), "field `%.*s=%.*s` names `%s`", k,
                 kv->key.ptr, vl, kv->val.ptr, named);
        if (strstr(v->why, phrase) != NULL)
            continue;
        if (host_eq(named, host)) {
            x->nfield_notes++;
            why_add(v->why, "; %s, its own host, which never counts", phrase);
        } else if (!field_wanted(e, &kv->key)) {
            x->nfield_notes++;
            why_add(v->why, "; %s, but only reference.fields are looked at",
                    phrase);
        } else {
            x->nfield_notes++;
            why_add(v->why,
                    "; %s, a known host now but not when this event "
                    "came in",
                    phrase);
        }
    }
}
