/*
 * incident: the deterministic incident engine (see incident.h and
 * docs/internals/incidents.md).
 *
 * State is a hash table of fingerprints (soft state, and the one
 * incident of the fingerprint that is not closed) and a hash table of
 * the incidents in memory by id. A step costs what it touched, not what
 * the engine holds (bench/README.md "bench/engine"): changed incidents
 * and fingerprints are listed as they change, so that the drain walks
 * only those; each rule indexes its active incidents and counts them
 * per host, for priorities; two heaps order the active log incidents
 * by last event and the resolved ones by resolve time, for the tick.
 * Output order never depends on a hash table or a heap: whatever is
 * handed over is sorted first (incidents by id, fingerprints by key),
 * and the tick and priority walks run in id order, as a walk over every
 * incident in id order would (which is what the engine once did).
 */
#include "engine/incident.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "hash.h"
#include "htab.h"
#include "units.h"
#include "util.h"

/* Distinct hosts with an active incident of one rule that raise its
 * priority one step (the "impact" half of the priority). */
#define IMPACT_HOSTS 3

/*
 * Flap detection (Nagios style): the states of the last
 * INCIDENT_FLAP_RESULTS check results, 2 bits each, newest in the low
 * bits. Each of the 20 changes between neighbours is weighted linearly
 * from 0.8 (oldest) to 1.2 (newest); the percent state change is the
 * weighted sum over 20. Weights are kept in units of 1/95 (76 .. 114 in
 * steps of 2) so that the test is exact integer arithmetic and gives
 * the same answer everywhere: percent > p <=> sum * 100 > p * 1900.
 */
#define FLAP_MASK ((UINT64_C(1) << (2 * INCIDENT_FLAP_RESULTS)) - 1)
#define FLAP_SCALE 1900

struct fpent {
    struct tc_hnode hnode; /* in fps, under tc_hash64 of key */
    char *key;             /* owned; host "\x1f" (fingerprint or rule) */
    size_t klen;           /* strlen(key) */
    uint32_t attempts;     /* consecutive non-OK check results */
    int64_t since;         /* event time of the first of them, ns */
    uint64_t hist;         /* last check states, 2 bits each (FLAP_MASK) */
    int flapping;          /* the check is flapping */
    int fp_dirty;          /* soft state changed since the last drain (and
                              in the engine's dirty_fps) */
    struct inc *cur;       /* the incident not closed, or NULL; borrowed
                              from byid */
};

/* The two tick heaps (see struct inc). */
enum { HEAP_QUIET = 0, HEAP_RESOLVED = 1, NHEAPS = 2 };
#define NOT_QUEUED SIZE_MAX

struct rulent;
struct rhent;

struct inc {
    struct incident v;     /* strings owned */
    struct tc_hnode hnode; /* in byid, under the hash of v.id */
    struct fpent *fe;      /* its fingerprint (NULL once closed) */
    int dirty;             /* changed since the last drain (and in the
                              engine's dirty list) */
    /* While active (open or acknowledged), its place in its rule's
     * index (index_add); all NULL otherwise. */
    struct rulent *re;         /* its rule; borrowed */
    struct rhent *rh;          /* its (rule, host) count; borrowed */
    struct inc *rprev, *rnext; /* in re's list of active incidents */
    /*
     * Tick heaps: HEAP_QUIET holds the active log incidents keyed by
     * last_seen as it was when queued (it only grows, so the key is
     * never later than the truth: the tick refreshes it when it comes
     * due), HEAP_RESOLVED the resolved ones keyed by resolved_at.
     */
    size_t hpos[NHEAPS];  /* index in the heap, or NOT_QUEUED */
    int64_t hkey[NHEAPS]; /* key in the heap, ns */
};

/* A rule with active incidents (freed when it has none). */
struct rulent {
    struct tc_hnode hnode; /* in rules, under tc_hash64_str(name) */
    char *name;            /* owned */
    size_t nhosts;         /* distinct hosts with an active incident of it */
    struct inc *head;      /* its active incidents, in no order */
    size_t nactive;        /* how many */
    int impact;            /* nhosts >= IMPACT_HOSTS at the last reprioritise */
    int settled;           /* every active incident's priority was set
                              from impact at the last reprioritise, and
                              only the one it was told of changed since */
};

/* Active incidents of one rule on one host (freed at 0). */
struct rhent {
    struct tc_hnode hnode; /* in rhosts, under rh_hash(rule, host) */
    struct rulent *re;     /* borrowed */
    char *host;            /* owned */
    size_t count;          /* active incidents of re on host, >= 1 */
};

/* A binary min-heap of incidents on hkey[which]. */
struct iheap {
    struct inc **v; /* owned array; the incidents are borrowed */
    size_t n, cap;
    int which; /* HEAP_QUIET or HEAP_RESOLVED */
};

struct note {
    int64_t id, ts;
    const char *what; /* static */
    char *who;        /* owned */
    char *detail;     /* owned */
};

struct sil {
    int64_t id;
    int64_t start, end; /* ns, engine time */
    char *matchers;     /* owned, checked by incident_engine_silence */
};

struct incident_engine {
    struct incident_config cfg;
    struct sil *sils; /* owned, in id order; kept for good: late events
                         are matched at their own time */
    size_t nsil, capsil;
    struct tc_htab fps;  /* of struct fpent, owned: the fingerprints */
    struct tc_htab byid; /* of struct inc, owned: the incidents in memory;
                            closed ones leave at drain */
    struct inc **dirty;  /* the changed incidents (dirty set), each once,
                            in no order; borrowed */
    size_t ndirty, capdirty;
    struct fpent **dirty_fps; /* the changed fingerprints (fp_dirty), each
                                 once, in no order; borrowed */
    size_t ndirty_fps, capdirty_fps;
    struct tc_htab rules;      /* of struct rulent, owned: rules with active
                                  incidents */
    struct tc_htab rhosts;     /* of struct rhent, owned: (rule, host) counts */
    struct iheap heap[NHEAPS]; /* the tick's (struct inc) */
    struct note *notes;        /* owned, since the last drain */
    size_t nnotes, capnotes;
    int64_t last_id;  /* highest id ever given */
    int64_t last_fed; /* incident the last fed event folded into, 0 */
    enum incident_result last_result; /* the last fed event, if an
                                         action result */
    int64_t last_result_id;           /* the incident it named, 0 */
};

static const char *const state_names[] = {"open", "acknowledged", "resolved",
                                          "closed"};
static const char *const verb_names[] = {"ack", "resolve", "close", "note"};

const char *
incident_state_name(enum incident_state s)
{
    return (unsigned)s < 4 ? state_names[s] : NULL;
}

int
incident_state_parse(const char *s, enum incident_state *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum incident_state)i;
            return 0;
        }
    }
    if (strcmp(s, "acked") == 0) {
        *out = INCIDENT_ACKED;
        return 0;
    }
    return -EINVAL;
}

const char *
incident_verb_name(enum incident_verb v)
{
    return (unsigned)v < 4 ? verb_names[v] : NULL;
}

int
incident_verb_parse(const char *s, enum incident_verb *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, verb_names[i]) == 0) {
            *out = (enum incident_verb)i;
            return 0;
        }
    }
    return -EINVAL;
}

void
incident_engine_set_config(struct incident_engine *e,
                           const struct incident_config *c)
{
    e->cfg = *c;
    if (e->cfg.max_attempts == 0)
        e->cfg.max_attempts = 1;
}

struct incident_engine *
incident_engine_new(const struct incident_config *c)
{
    struct incident_engine *e = tc_xcalloc(1, sizeof(*e));

    incident_engine_set_config(e, c);
    tc_htab_init(&e->fps);
    tc_htab_init(&e->byid);
    tc_htab_init(&e->rules);
    tc_htab_init(&e->rhosts);
    e->heap[HEAP_QUIET].which = HEAP_QUIET;
    e->heap[HEAP_RESOLVED].which = HEAP_RESOLVED;
    return e;
}

static void
inc_free(struct inc *in)
{
    free(in->v.fingerprint);
    free(in->v.host);
    free(in->v.rule);
    free(in->v.kind);
    free(in->v.service);
    free(in);
}

static void
notes_clear(struct incident_engine *e)
{
    for (size_t i = 0; i < e->nnotes; i++) {
        free(e->notes[i].who);
        free(e->notes[i].detail);
    }
    e->nnotes = 0;
}

static struct fpent *
fp_of(struct tc_hnode *n)
{
    return n != NULL ? TC_CONTAINER_OF(n, struct fpent, hnode) : NULL;
}

void
incident_engine_free(struct incident_engine *e)
{
    struct tc_hiter it;
    struct tc_hnode *n;

    if (e == NULL)
        return;
    for (n = tc_htab_iter(&e->fps, &it); n != NULL; n = tc_hiter_next(&it)) {
        struct fpent *f = fp_of(n);

        free(f->key);
        free(f);
    }
    tc_htab_free(&e->fps);
    for (n = tc_htab_iter(&e->byid, &it); n != NULL; n = tc_hiter_next(&it))
        inc_free(TC_CONTAINER_OF(n, struct inc, hnode));
    tc_htab_free(&e->byid);
    for (n = tc_htab_iter(&e->rules, &it); n != NULL; n = tc_hiter_next(&it)) {
        struct rulent *re = TC_CONTAINER_OF(n, struct rulent, hnode);

        free(re->name);
        free(re);
    }
    tc_htab_free(&e->rules);
    for (n = tc_htab_iter(&e->rhosts, &it); n != NULL; n = tc_hiter_next(&it)) {
        struct rhent *rh = TC_CONTAINER_OF(n, struct rhent, hnode);

        free(rh->host);
        free(rh);
    }
    tc_htab_free(&e->rhosts);
    for (int h = 0; h < NHEAPS; h++)
        free(e->heap[h].v);
    free(e->dirty);
    free(e->dirty_fps);
    notes_clear(e);
    for (size_t i = 0; i < e->nsil; i++)
        free(e->sils[i].matchers);
    free(e->sils);
    free(e->notes);
    free(e);
}

/* The fingerprint key[0..len) (h = tc_hash64 of it), or NULL. */
static struct fpent *
fp_find(const struct incident_engine *e, const char *key, size_t len,
        uint64_t h)
{
    struct tc_hnode *n;

    for (n = tc_htab_first(&e->fps, h); n != NULL; n = tc_htab_next(n, h)) {
        struct fpent *f = fp_of(n);

        if (f->klen == len && memcmp(f->key, key, len) == 0)
            return f;
    }
    return NULL;
}

static struct fpent *
fp_get(struct incident_engine *e, const char *key, size_t len)
{
    uint64_t h = tc_hash64(key, len);
    struct fpent *f = fp_find(e, key, len, h);

    if (f != NULL)
        return f;
    f = tc_xcalloc(1, sizeof(*f));
    f->key = tc_xstrndup(key, len);
    f->klen = strlen(f->key);
    tc_htab_insert(&e->fps, &f->hnode, h);
    return f;
}

static void
fp_remove(struct incident_engine *e, struct fpent *f)
{
    tc_htab_remove(&e->fps, &f->hnode);
    free(f->key);
    free(f);
}

static uint64_t
id_hash(int64_t id)
{
    return tc_hash64(&id, sizeof(id));
}

static void
incs_insert(struct incident_engine *e, struct inc *in)
{
    in->hpos[HEAP_QUIET] = in->hpos[HEAP_RESOLVED] = NOT_QUEUED;
    tc_htab_insert(&e->byid, &in->hnode, id_hash(in->v.id));
}

static struct inc *
incs_find(const struct incident_engine *e, int64_t id)
{
    uint64_t h = id_hash(id);
    struct tc_hnode *n;

    for (n = tc_htab_first(&e->byid, h); n != NULL; n = tc_htab_next(n, h)) {
        struct inc *in = TC_CONTAINER_OF(n, struct inc, hnode);

        if (in->v.id == id)
            return in;
    }
    return NULL;
}

/* Put the incident on the drain's list (once). */
static void
mark_dirty(struct incident_engine *e, struct inc *in)
{
    if (in->dirty)
        return;
    in->dirty = 1;
    if (e->ndirty == e->capdirty) {
        e->capdirty = e->capdirty ? e->capdirty * 2 : 64;
        e->dirty = tc_xreallocarray(e->dirty, e->capdirty, sizeof(*e->dirty));
    }
    e->dirty[e->ndirty++] = in;
}

/* Put the fingerprint on the drain's list (once). */
static void
mark_fp_dirty(struct incident_engine *e, struct fpent *f)
{
    if (f->fp_dirty)
        return;
    f->fp_dirty = 1;
    if (e->ndirty_fps == e->capdirty_fps) {
        e->capdirty_fps = e->capdirty_fps ? e->capdirty_fps * 2 : 64;
        e->dirty_fps = tc_xreallocarray(e->dirty_fps, e->capdirty_fps,
                                        sizeof(*e->dirty_fps));
    }
    e->dirty_fps[e->ndirty_fps++] = f;
}

static int
inc_id_cmp(const void *a, const void *b)
{
    const struct inc *x = *(struct inc *const *)a;
    const struct inc *y = *(struct inc *const *)b;

    return x->v.id < y->v.id ? -1 : x->v.id > y->v.id;
}

/* ---- tick heaps -----------------------------------------------------------
 */

static int
heap_less(const struct iheap *h, size_t i, size_t j)
{
    const struct inc *a = h->v[i], *b = h->v[j];

    /* Ties by id: the same shape whatever the insertion order. */
    if (a->hkey[h->which] != b->hkey[h->which])
        return a->hkey[h->which] < b->hkey[h->which];
    return a->v.id < b->v.id;
}

static void
heap_swap(struct iheap *h, size_t i, size_t j)
{
    struct inc *t = h->v[i];

    h->v[i] = h->v[j];
    h->v[j] = t;
    h->v[i]->hpos[h->which] = i;
    h->v[j]->hpos[h->which] = j;
}

static void
heap_up(struct iheap *h, size_t i)
{
    while (i > 0 && heap_less(h, i, (i - 1) / 2)) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
heap_down(struct iheap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;

        if (l < h->n && heap_less(h, l, m))
            m = l;
        if (l + 1 < h->n && heap_less(h, l + 1, m))
            m = l + 1;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void
heap_push(struct iheap *h, struct inc *in, int64_t key)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = tc_xreallocarray(h->v, h->cap, sizeof(*h->v));
    }
    in->hkey[h->which] = key;
    in->hpos[h->which] = h->n;
    h->v[h->n++] = in;
    heap_up(h, h->n - 1);
}

static void
heap_del(struct iheap *h, struct inc *in)
{
    size_t i = in->hpos[h->which];

    in->hpos[h->which] = NOT_QUEUED;
    if (i == --h->n)
        return;
    h->v[i] = h->v[h->n];
    h->v[i]->hpos[h->which] = i;
    heap_down(h, i);
    heap_up(h, i);
}

/* ---- rule index ------------------------------------------------------------
 */

static uint64_t
rh_hash(const char *rule, const char *host)
{
    /* With the rule's NUL: "a"+"bc" and "ab"+"c" differ. */
    return tc_hash64_add(tc_hash64(rule, strlen(rule) + 1), host, strlen(host));
}

static struct rulent *
rule_find(const struct incident_engine *e, const char *rule)
{
    uint64_t h = tc_hash64_str(rule);
    struct tc_hnode *n;

    for (n = tc_htab_first(&e->rules, h); n != NULL; n = tc_htab_next(n, h)) {
        struct rulent *re = TC_CONTAINER_OF(n, struct rulent, hnode);

        if (strcmp(re->name, rule) == 0)
            return re;
    }
    return NULL;
}

/* An incident became active: into its rule's list and host count. */
static void
index_add(struct incident_engine *e, struct inc *in)
{
    struct rulent *re = rule_find(e, in->v.rule);
    uint64_t h;
    struct tc_hnode *n;
    struct rhent *rh = NULL;

    if (re == NULL) {
        re = tc_xcalloc(1, sizeof(*re));
        re->name = tc_xstrdup(in->v.rule);
        tc_htab_insert(&e->rules, &re->hnode, tc_hash64_str(re->name));
    }
    h = rh_hash(in->v.rule, in->v.host);
    for (n = tc_htab_first(&e->rhosts, h); n != NULL; n = tc_htab_next(n, h)) {
        struct rhent *x = TC_CONTAINER_OF(n, struct rhent, hnode);

        if (x->re == re && strcmp(x->host, in->v.host) == 0) {
            rh = x;
            break;
        }
    }
    if (rh == NULL) {
        rh = tc_xcalloc(1, sizeof(*rh));
        rh->re = re;
        rh->host = tc_xstrdup(in->v.host);
        tc_htab_insert(&e->rhosts, &rh->hnode, h);
        re->nhosts++;
    }
    rh->count++;
    in->rprev = NULL;
    in->rnext = re->head;
    if (re->head != NULL)
        re->head->rprev = in;
    re->head = in;
    re->nactive++;
    in->re = re;
    in->rh = rh;
}

/* An incident is no longer active. */
static void
index_del(struct incident_engine *e, struct inc *in)
{
    struct rulent *re = in->re;
    struct rhent *rh = in->rh;

    if (--rh->count == 0) {
        tc_htab_remove(&e->rhosts, &rh->hnode);
        free(rh->host);
        free(rh);
        re->nhosts--;
    }
    if (in->rprev != NULL)
        in->rprev->rnext = in->rnext;
    else
        re->head = in->rnext;
    if (in->rnext != NULL)
        in->rnext->rprev = in->rprev;
    in->rprev = in->rnext = NULL;
    in->re = NULL;
    in->rh = NULL;
    if (--re->nactive == 0) {
        tc_htab_remove(&e->rules, &re->hnode);
        free(re->name);
        free(re);
    }
}

static int active(const struct inc *in);

/*
 * After any change of state: bring the rule index and the tick heaps
 * in line with it (index: active; quiet heap: active log incident;
 * resolved heap: resolved).
 */
static void
sched(struct incident_engine *e, struct inc *in)
{
    int act = active(in);
    int quiet = act && strcmp(in->v.kind, "log") == 0;
    int res = in->v.state == INCIDENT_RESOLVED;

    if (act && in->re == NULL)
        index_add(e, in);
    else if (!act && in->re != NULL)
        index_del(e, in);
    if (quiet && in->hpos[HEAP_QUIET] == NOT_QUEUED)
        heap_push(&e->heap[HEAP_QUIET], in, in->v.last_seen);
    else if (!quiet && in->hpos[HEAP_QUIET] != NOT_QUEUED)
        heap_del(&e->heap[HEAP_QUIET], in);
    if (res && in->hpos[HEAP_RESOLVED] == NOT_QUEUED)
        heap_push(&e->heap[HEAP_RESOLVED], in, in->v.resolved_at);
    else if (!res && in->hpos[HEAP_RESOLVED] != NOT_QUEUED)
        heap_del(&e->heap[HEAP_RESOLVED], in);
}

static void
note_add(struct incident_engine *e, const struct inc *in, int64_t ts,
         const char *what, const char *who, const char *detail)
{
    struct note *n;

    if (e->nnotes == e->capnotes) {
        e->capnotes = e->capnotes ? e->capnotes * 2 : 64;
        e->notes = tc_xreallocarray(e->notes, e->capnotes, sizeof(*e->notes));
    }
    n = &e->notes[e->nnotes++];
    n->id = in->v.id;
    n->ts = ts;
    n->what = what;
    n->who = tc_xstrdup(who);
    n->detail = tc_xstrdup(detail ? detail : "");
}

static int
active(const struct inc *in)
{
    return in->v.state == INCIDENT_OPEN || in->v.state == INCIDENT_ACKED;
}

static int
base_priority(enum tc_severity s)
{
    switch (s) {
    case TC_SEV_CRITICAL:
        return 2;
    case TC_SEV_ERROR:
        return 3;
    case TC_SEV_WARNING:
        return 4;
    default:
        return 5;
    }
}

/* Set the priority of active incident in from its rule's hosts. */
static void
reprioritise_one(struct incident_engine *e, struct inc *in, size_t hosts,
                 int64_t ts)
{
    char detail[96];
    int p = base_priority(in->v.severity);

    if (p > 1 && (in->v.tier1 || hosts >= IMPACT_HOSTS))
        p--;
    if (p == in->v.priority)
        return;
    snprintf(detail, sizeof(detail), "P%d -> P%d (%s, %zu host%s)",
             in->v.priority, p, tc_severity_name(in->v.severity), hosts,
             hosts == 1 ? "" : "s");
    in->v.priority = p;
    mark_dirty(e, in);
    note_add(e, in, ts, "priority", "rule:priority", detail);
}

/*
 * Recompute the priority of every active incident of rule: the
 * severity's base, one step higher for a tier-1 service or when
 * IMPACT_HOSTS hosts suffer from the same rule. changed is the one
 * incident (of rule, or NULL) whose severity, tier or activity changed
 * since the rule's last reprioritise: when the rule's impact is what it
 * was then, every other active incident of it still has the priority
 * it set, so only changed is looked at. Otherwise every active incident
 * of the rule is, in id order (the order of the notes).
 */
static void
reprioritise(struct incident_engine *e, const char *rule, struct inc *changed,
             int64_t ts)
{
    struct rulent *re = rule_find(e, rule);
    struct inc **v, *in;
    size_t n = 0;
    int impact;

    if (re == NULL)
        return; /* no active incident of rule */
    impact = re->nhosts >= IMPACT_HOSTS;
    if (re->settled && re->impact == impact) {
        if (changed != NULL && changed->re == re)
            reprioritise_one(e, changed, re->nhosts, ts);
        return;
    }
    v = tc_xreallocarray(NULL, re->nactive, sizeof(*v));
    for (in = re->head; in != NULL; in = in->rnext)
        v[n++] = in;
    if (n > 1)
        tc_qsort(v, n, sizeof(*v), inc_id_cmp);
    for (size_t i = 0; i < n; i++)
        reprioritise_one(e, v[i], re->nhosts, ts);
    free(v);
    re->impact = impact;
    re->settled = 1;
}

static int
is_tier1(const struct tc_event *ev)
{
    for (uint32_t i = 0; i < ev->nlabels; i++)
        if (ev->labels[i].key.len == 4 &&
            memcmp(ev->labels[i].key.ptr, "tier", 4) == 0 &&
            ev->labels[i].val.len == 1 && ev->labels[i].val.ptr[0] == '1')
            return 1;
    return 0;
}

/* The event's service= label into buf ("" if none). */
static void
service_of(const struct tc_event *ev, char *buf, size_t len)
{
    buf[0] = '\0';
    for (uint32_t i = 0; i < ev->nlabels; i++)
        if (ev->labels[i].key.len == 7 &&
            memcmp(ev->labels[i].key.ptr, "service", 7) == 0) {
            snprintf(buf, len, "%.*s", (int)ev->labels[i].val.len,
                     ev->labels[i].val.ptr ? ev->labels[i].val.ptr : "");
            return;
        }
}

/* An incident opened without a service takes the first one seen. */
static void
adopt_service(struct incident_engine *e, struct inc *in, const char *service)
{
    if (in->v.service[0] == '\0' && service[0] != '\0') {
        free(in->v.service);
        in->v.service = tc_xstrdup(service);
        mark_dirty(e, in);
    }
}

/* Fold an event into an incident's counters; 1 if severity or tier rose. */
static int
fold(struct incident_engine *e, struct inc *in, int64_t t, uint64_t n,
     enum tc_severity sev, int tier1)
{
    int raised = 0;

    in->v.count += n;
    if (in->v.first_seen == 0 || t < in->v.first_seen)
        in->v.first_seen = t;
    if (t > in->v.last_seen)
        in->v.last_seen = t;
    if (sev > in->v.severity) {
        in->v.severity = sev;
        raised = 1;
    }
    if (tier1 && !in->v.tier1) {
        in->v.tier1 = 1;
        raised = 1;
    }
    mark_dirty(e, in);
    return raised;
}

static void
close_inc(struct incident_engine *e, struct inc *in, int64_t ts,
          const char *who, const char *detail)
{
    int was_active = active(in);

    in->v.state = INCIDENT_CLOSED;
    in->v.closed_at = ts;
    mark_dirty(e, in);
    sched(e, in);
    if (in->fe != NULL && in->fe->cur == in) {
        in->fe->cur = NULL;
        /* Let the drain forget the fingerprint if nothing else holds it. */
        mark_fp_dirty(e, in->fe);
    }
    in->fe = NULL;
    note_add(e, in, ts, "closed", who, detail);
    if (was_active)
        reprioritise(e, in->v.rule, NULL, ts);
}

static void
resolve_inc(struct incident_engine *e, struct inc *in, int64_t ts,
            const char *who, const char *detail)
{
    in->v.state = INCIDENT_RESOLVED;
    in->v.resolved_at = ts;
    mark_dirty(e, in);
    sched(e, in);
    note_add(e, in, ts, "resolved", who, detail);
    reprioritise(e, in->v.rule, NULL, ts);
}

struct ev_ctx {
    const char *host;
    const char *rule; /* NUL-terminated copy */
    const char *kind;
    int64_t t;  /* event time */
    uint64_t n; /* event count */
    enum tc_severity sev;
    int tier1;
    char service[128];         /* label service=, "" if none */
    char who[160];             /* "rule:<rule>" */
    const struct tc_event *ev; /* labels, for silences */
};

int
incident_silence_matcher_check(const char *m)
{
    const char *eq;

    if (strncmp(m, "host=", 5) == 0)
        return m[5] && !strchr(m + 5, ' ') ? 0 : -EINVAL;
    if (strncmp(m, "rule=", 5) == 0)
        return m[5] && !strchr(m + 5, ' ') ? 0 : -EINVAL;
    if (strncmp(m, "label:", 6) == 0) {
        eq = strchr(m + 6, '=');
        return eq && eq > m + 6 && !strchr(m, ' ') ? 0 : -EINVAL;
    }
    return -EINVAL;
}

static int
label_is(const struct tc_event *ev, const char *k, size_t kl, const char *v)
{
    for (uint32_t i = 0; ev && i < ev->nlabels; i++) {
        const struct tc_kv *kv = &ev->labels[i];

        if (kv->key.len == kl && memcmp(kv->key.ptr, k, kl) == 0 &&
            kv->val.len == strlen(v) &&
            memcmp(kv->val.ptr, v, kv->val.len) == 0)
            return 1;
    }
    return 0;
}

/* Every matcher of s holds for the event in c. */
static int
sil_match(const struct sil *s, const struct ev_ctx *c)
{
    const char *p = s->matchers;

    while (*p) {
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char m[512];

        snprintf(m, sizeof(m), "%.*s", (int)n, p);
        if (strncmp(m, "host=", 5) == 0) {
            if (strcmp(m + 5, c->host) != 0)
                return 0;
        } else if (strncmp(m, "rule=", 5) == 0) {
            if (strcmp(m + 5, c->rule) != 0)
                return 0;
        } else {
            char *eq = strchr(m + 6, '=');

            if (!label_is(c->ev, m + 6, (size_t)(eq - (m + 6)), eq + 1))
                return 0;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return 1;
}

/* The first silence (lowest id) active at the event's time that
 * matches it, or NULL. */
static const struct sil *
silenced_by(const struct incident_engine *e, const struct ev_ctx *c)
{
    for (size_t i = 0; i < e->nsil; i++) {
        const struct sil *s = &e->sils[i];

        if (c->t >= s->start && c->t < s->end && sil_match(s, c))
            return s;
    }
    return NULL;
}

/* Mark a just (re)opened incident with the silence that covers it. */
static void
mark_silenced(struct incident_engine *e, struct inc *in, const struct ev_ctx *c)
{
    const struct sil *s = silenced_by(e, c);
    char who[64];

    in->v.silenced = s ? s->id : 0;
    if (s == NULL)
        return;
    snprintf(who, sizeof(who), "silence:%" PRId64, s->id);
    note_add(e, in, c->t, "silenced", who, s->matchers);
}

static struct sil *
sil_find(struct incident_engine *e, int64_t id)
{
    for (size_t i = 0; i < e->nsil; i++)
        if (e->sils[i].id == id)
            return &e->sils[i];
    return NULL;
}

int
incident_engine_silence(struct incident_engine *e,
                        const struct incident_silence *src)
{
    struct sil *s;
    char m[512];
    const char *p = src->matchers;
    int n = 0;
    size_t i;

    /* Validate every matcher: sil_match trusts them. */
    while (p && *p) {
        size_t len = strcspn(p, " ");

        if (len >= sizeof(m))
            return -EINVAL;
        snprintf(m, sizeof(m), "%.*s", (int)len, p);
        if (incident_silence_matcher_check(m) < 0)
            return -EINVAL;
        n++;
        p += len;
        p += strspn(p, " ");
    }
    if (n == 0)
        return -EINVAL;
    if ((s = sil_find(e, src->id)) != NULL) {
        free(s->matchers);
    } else {
        if (e->nsil == e->capsil) {
            e->capsil = e->capsil ? e->capsil * 2 : 8;
            e->sils = tc_xreallocarray(e->sils, e->capsil, sizeof(*e->sils));
        }
        /* Keep id order (a load may come in any order). */
        for (i = e->nsil; i > 0 && e->sils[i - 1].id > src->id; i--)
            e->sils[i] = e->sils[i - 1];
        s = &e->sils[i];
        e->nsil++;
    }
    s->id = src->id;
    s->start = src->start;
    s->end = src->end;
    s->matchers = tc_xstrdup(src->matchers);
    return 0;
}

int
incident_engine_silence_expire(struct incident_engine *e, int64_t id,
                               int64_t ts)
{
    struct sil *s = sil_find(e, id);

    if (s == NULL)
        return -ENOENT;
    if (s->end <= ts)
        return -EALREADY;
    s->end = ts;
    return 0;
}

/* A problem event with no active incident: open, reopen, or fold late. */
static void
open_or_reopen(struct incident_engine *e, struct fpent *fe,
               const struct ev_ctx *c, const char *detail)
{
    struct inc *cur = fe->cur;
    struct inc *in;
    char d[160];

    if (cur != NULL && cur->v.state == INCIDENT_RESOLVED) {
        if (c->t < cur->v.resolved_at) {
            /*
             * The event happened before the incident was resolved: a
             * backlog delivered late (link outage, spooled agent). It
             * belongs to the past incident; counting it there keeps
             * the numbers right without a new storm of incidents.
             */
            fold(e, cur, c->t, c->n, cur->v.severity, c->tier1);
            e->last_fed = cur->v.id;
            return;
        }
        if (c->t - cur->v.resolved_at <= e->cfg.reopen_window_ns) {
            snprintf(d, sizeof(d), "recurred %" PRId64 "s after resolve%s%s",
                     (c->t - cur->v.resolved_at) / 1000000000,
                     *detail ? "; " : "", detail);
            cur->v.state = INCIDENT_OPEN;
            cur->v.opened_at = c->t;
            cur->v.acked_at = 0;
            cur->v.resolved_at = 0;
            cur->v.reopened++;
            fold(e, cur, c->t, c->n, c->sev, c->tier1);
            sched(e, cur);
            e->last_fed = cur->v.id;
            adopt_service(e, cur, c->service);
            note_add(e, cur, c->t, "reopened", c->who, d);
            mark_silenced(e, cur, c);
            reprioritise(e, cur->v.rule, cur, c->t);
            return;
        }
        close_inc(e, cur, c->t, "rule:reopen_window",
                  "recurred after reopen_window: new incident");
    }
    in = tc_xcalloc(1, sizeof(*in));
    in->v.id = ++e->last_id;
    in->v.fingerprint = tc_xstrdup(fe->key);
    in->v.host = tc_xstrdup(c->host);
    in->v.rule = tc_xstrdup(c->rule);
    in->v.kind = tc_xstrdup(c->kind);
    in->v.service = tc_xstrdup(c->service);
    in->v.state = INCIDENT_OPEN;
    in->v.severity = c->sev;
    in->v.priority = base_priority(c->sev);
    in->v.opened_at = c->t;
    in->fe = fe;
    incs_insert(e, in);
    fold(e, in, c->t, c->n, c->sev, c->tier1);
    sched(e, in);
    fe->cur = in;
    e->last_fed = in->v.id;
    snprintf(d, sizeof(d), "%s%s%s", tc_severity_name(c->sev),
             *detail ? "; " : "", detail);
    note_add(e, in, c->t, "opened", c->who, d);
    mark_silenced(e, in, c);
    reprioritise(e, in->v.rule, in, c->t);
}

static void
fold_active(struct incident_engine *e, struct inc *in, const struct ev_ctx *c)
{
    e->last_fed = in->v.id;
    adopt_service(e, in, c->service);
    if (fold(e, in, c->t, c->n, c->sev, c->tier1))
        reprioritise(e, in->v.rule, in, c->t);
}

/*
 * What snprintf(buf, len, "%.*s%.*s%.*s", ...) writes, without the
 * format parsing that cost the engine a sixth of its time when done
 * three times for every event: each part ends at its length or at a NUL
 * (NULL is empty), the whole is cut to len - 1 bytes and NUL-terminated.
 * Returns the bytes written. len > 0.
 */
static size_t
join3(char *buf, size_t len, const char *a, size_t alen, const char *b,
      size_t blen, const char *c, size_t clen)
{
    const char *p[3] = {a, b, c};
    size_t n[3] = {alen, blen, clen}, at = 0;

    for (int i = 0; i < 3; i++) {
        size_t k = p[i] != NULL ? strnlen(p[i], n[i]) : 0;

        if (k > len - 1 - at)
            k = len - 1 - at;
        if (k > 0)
            memcpy(buf + at, p[i], k);
        at += k;
    }
    buf[at] = '\0';
    return at;
}

/*
 * The fingerprint key of an event and its incident kind, or 0 when the
 * event cannot make an incident.
 */
static size_t
key_of(const char *host, const struct tc_event *ev, char *key, size_t len,
       const char **kind)
{
    struct tc_str part;

    if (ev->kind.len == 5 && memcmp(ev->kind.ptr, "agent", 5) == 0) {
        if (ev->rule.len != 12 || memcmp(ev->rule.ptr, "agent-silent", 12))
            return 0;
        *kind = "agent";
        part = ev->rule;
    } else if (ev->kind.len == 5 && memcmp(ev->kind.ptr, "check", 5) == 0) {
        *kind = "check";
        part = ev->fingerprint.len ? ev->fingerprint : ev->rule;
    } else if (ev->kind.len == 3 && memcmp(ev->kind.ptr, "log", 3) == 0) {
        *kind = "log";
        part = ev->fingerprint.len ? ev->fingerprint : ev->rule;
    } else {
        return 0;
    }
    if (part.len == 0)
        part = ev->source;
    /* Over-long keys are cut: fingerprints are short by construction. */
    return join3(key, len, host, strlen(host), "\x1f", 1, part.ptr, part.len);
}

size_t
incident_fingerprint(const char *host, const struct tc_event *ev, char *buf,
                     size_t len)
{
    const char *kind;

    return key_of(host, ev, buf, len, &kind);
}

/* Weighted state changes of a history, in units of 1/95 (see FLAP_). */
static uint32_t
flap_sum(uint64_t hist)
{
    uint32_t sum = 0;

    /* Change k is between results k + 1 and k; k = 0 is the newest. */
    for (unsigned k = 0; k < INCIDENT_FLAP_RESULTS - 1; k++)
        if (((hist >> (2 * k)) & 3) != ((hist >> (2 * (k + 1))) & 3))
            sum += 114 - 2 * k;
    return sum;
}

static void
flap_note(struct incident_engine *e, struct inc *in, int64_t t,
          const char *what, const char *who, uint32_t sum, const char *cmp,
          uint32_t limit)
{
    /* Tenths of a percent, in integers: the same text everywhere. */
    uint32_t pm = sum * 1000 / FLAP_SCALE;
    char d[96];

    snprintf(d, sizeof(d),
             "state change %" PRIu32 ".%" PRIu32 "%% %s %" PRIu32 "%%", pm / 10,
             pm % 10, cmp, limit);
    note_add(e, in, t, what, who, d);
}

/* Mark an active incident of a flapping check (once). */
static void
mark_flapping(struct incident_engine *e, struct inc *in, const struct ev_ctx *c,
              uint32_t sum)
{
    if (in->v.flapping)
        return;
    in->v.flapping = 1;
    mark_dirty(e, in);
    flap_note(e, in, c->t, "flapping started", c->who, sum, ">",
              e->cfg.flap_high);
}

/*
 * Add a check result's state to the history and start or stop flapping.
 * Starting marks the active incident, if any (else the next non-OK
 * result opens one); stopping unmarks the fingerprint's incident, and
 * the caller applies the normal rules to the result again.
 */
static void
flap_update(struct incident_engine *e, struct fpent *fe, const struct ev_ctx *c,
            unsigned state)
{
    uint64_t hist = ((fe->hist << 2) | state) & FLAP_MASK;
    uint32_t sum;

    if (hist != fe->hist) {
        fe->hist = hist;
        mark_fp_dirty(e, fe);
    }
    sum = flap_sum(hist);
    if (!fe->flapping && e->cfg.flap_high > 0 &&
        (uint64_t)sum * 100 > (uint64_t)e->cfg.flap_high * FLAP_SCALE) {
        fe->flapping = 1;
        mark_fp_dirty(e, fe);
        if (fe->cur != NULL && active(fe->cur))
            mark_flapping(e, fe->cur, c, sum);
    } else if (fe->flapping &&
               (e->cfg.flap_high == 0 ||
                (uint64_t)sum * 100 < (uint64_t)e->cfg.flap_low * FLAP_SCALE)) {
        fe->flapping = 0;
        mark_fp_dirty(e, fe);
        if (fe->cur != NULL && fe->cur->v.flapping) {
            fe->cur->v.flapping = 0;
            mark_dirty(e, fe->cur);
            flap_note(e, fe->cur, c->t, "flapping stopped", c->who, sum, "<",
                      e->cfg.flap_low);
        }
    }
}

/*
 * Feed a check event (one result of an agent's check): soft/hard
 * states, flapping, auto-resolve.
 */
static void
feed_check_event(struct incident_engine *e, const char *key, size_t kl,
                 struct ev_ctx *c, const struct tc_event *ev)
{
    struct fpent *fe = fp_find(e, key, kl, tc_hash64(key, kl));
    char d[64];
    int ok = ev->state == 0 || (ev->state < 0 && ev->sev == TC_SEV_OK);
    unsigned state = ok ? 0 : ev->state > 0 && ev->state <= 3 ? ev->state : 2;

    if (fe == NULL) {
        /* Nothing remembered is all OK: an OK changes nothing. */
        if (ok)
            return;
        fe = fp_get(e, key, kl);
    }
    flap_update(e, fe, c, state);
    if (ok) {
        if (fe->attempts != 0) {
            fe->attempts = 0;
            mark_fp_dirty(e, fe);
        }
        if (fe->cur == NULL || !active(fe->cur))
            return;
        e->last_fed = fe->cur->v.id;
        /* A flapping check's incident stays open and counts results. */
        if (fe->flapping) {
            if (fold(e, fe->cur, c->t, c->n, TC_SEV_OK, c->tier1))
                reprioritise(e, fe->cur->v.rule, fe->cur, c->t);
        } else {
            resolve_inc(e, fe->cur, c->t, c->who, "check OK");
        }
        return;
    }
    if (fe->attempts++ == 0)
        fe->since = c->t;
    mark_fp_dirty(e, fe);
    if (fe->cur != NULL && active(fe->cur)) {
        fold_active(e, fe->cur, c);
        return;
    }
    /* Soft state: not an incident until it is confirmed, or flaps. */
    if (!fe->flapping && fe->attempts < e->cfg.max_attempts)
        return;
    if (fe->flapping)
        snprintf(d, sizeof(d), "flapping");
    else
        snprintf(d, sizeof(d), "hard after %" PRIu32 " attempts", fe->attempts);
    /* Count every attempt of the confirmed failure. */
    c->n = fe->attempts == e->cfg.max_attempts ? fe->attempts : c->n;
    open_or_reopen(e, fe, c, d);
    /* The failure began with its first soft attempt. */
    if (fe->cur != NULL && fe->cur->v.state == INCIDENT_OPEN &&
        fe->cur->v.count == c->n && fe->since < fe->cur->v.first_seen)
        fe->cur->v.first_seen = fe->since;
    if (fe->flapping && fe->cur != NULL && active(fe->cur))
        mark_flapping(e, fe->cur, c, flap_sum(fe->hist));
}

/* The string s is exactly lit. */
static int
str_is(struct tc_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* The value of the event's field key, or NULL. */
static const struct tc_str *
field_of(const struct tc_event *ev, const char *key)
{
    for (uint32_t i = 0; i < ev->nfields; i++)
        if (str_is(ev->fields[i].key, key))
            return &ev->fields[i].val;
    return NULL;
}

/*
 * A decimal integer, the whole of s (an optional '-' when neg_ok, then
 * 1 to 18 digits: no sign, space or overflow games from a peer): 0 and
 * *out, or -EINVAL.
 */
static int
str_int(const struct tc_str *s, int neg_ok, int64_t *out)
{
    size_t i = 0;
    int64_t v = 0;
    int neg = 0;

    if (s == NULL || s->len == 0 || s->ptr == NULL)
        return -EINVAL;
    if (neg_ok && s->ptr[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (s->len - i == 0 || s->len - i > 18)
        return -EINVAL;
    for (; i < s->len; i++) {
        if (s->ptr[i] < '0' || s->ptr[i] > '9')
            return -EINVAL;
        v = v * 10 + (s->ptr[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* s contains lit. */
static int
str_has(const struct tc_str *s, const char *lit)
{
    size_t n = strlen(lit);

    for (size_t i = 0; s->ptr != NULL && i + n <= s->len; i++)
        if (memcmp(s->ptr + i, lit, n) == 0)
            return 1;
    return 0;
}

/* Output bytes of an action result shown on the timeline: its first
 * non-empty line, escaped and cut to this many bytes. */
#define RESULT_LINE_MAX 200

/*
 * The timeline detail of an action result, every part from the host
 * escaped: "NAME exit 0 in 1.2s (hint 12): first line". A field that
 * is missing or not a number shows as "?": the agent always sends all
 * of them, so "?" means a peer that does not.
 */
void
incident_result_detail(const struct tc_event *ev, char *d, size_t len)
{
    const struct tc_str *f = field_of(ev, "action"), *out;
    char name[128], what[64], dur[32], hint[40] = "", line[RESULT_LINE_MAX];
    int64_t ex = 0, sig = 0, ms = 0, h = 0;
    int has_ex = str_int(field_of(ev, "exit"), 1, &ex) == 0;

    if (f == NULL || f->len == 0)
        f = &ev->source;
    tc_escape(name, sizeof(name), f->ptr ? f->ptr : "", f->ptr ? f->len : 0);
    if (str_int(field_of(ev, "signal"), 0, &sig) == 0 && sig != 0)
        snprintf(what, sizeof(what), "killed by signal %" PRId64, sig);
    else if (has_ex && ex == -1)
        snprintf(what, sizeof(what), "could not start");
    else if (has_ex)
        snprintf(what, sizeof(what), "exit %" PRId64, ex);
    else
        snprintf(what, sizeof(what), "exit ?");
    if (str_has(&ev->message, "(timed out)"))
        snprintf(what + strlen(what), sizeof(what) - strlen(what),
                 " (timed out)");
    if (str_int(field_of(ev, "duration_ms"), 0, &ms) == 0 &&
        ms <= INT64_MAX / 1000000)
        tc_fmt_duration(dur, sizeof(dur), ms * 1000000);
    else
        snprintf(dur, sizeof(dur), "?");
    if (str_int(field_of(ev, "hint"), 0, &h) == 0 && h > 0)
        snprintf(hint, sizeof(hint), " (hint %" PRId64 ")", h);
    line[0] = '\0';
    if ((out = field_of(ev, "output")) != NULL && out->ptr != NULL) {
        const char *p = out->ptr, *end = out->ptr + out->len, *nl;

        /* The first line with something on it. */
        while (p < end && (*p == '\n' || *p == '\r'))
            p++;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        if (nl > p && nl[-1] == '\r')
            nl--;
        tc_escape(line, sizeof(line), p, (size_t)(nl - p));
    }
    snprintf(d, len, "%s %s in %s%s%s%s", name, what, dur, hint,
             line[0] ? ": " : "", line);
}

int
incident_result_id(const struct tc_event *ev, const char *key, int64_t *id)
{
    int64_t v;

    if (str_int(field_of(ev, key), 0, &v) < 0 || v <= 0)
        return -EINVAL;
    *id = v;
    return 0;
}

/*
 * An action result (incident.h): a timeline entry on the incident it
 * names when that incident is the host's own; nothing else changes.
 */
static void
action_result(struct incident_engine *e, const char *host,
              const struct tc_event *ev)
{
    struct inc *in;
    char who[160], d[1024];
    int64_t id;

    if (!str_is(ev->rule, "action_result") ||
        str_int(field_of(ev, "incident"), 0, &id) < 0 || id <= 0) {
        e->last_result = str_is(ev->rule, "action_result")
                             ? INCIDENT_RESULT_UNKNOWN
                             : INCIDENT_RESULT_NONE;
        return;
    }
    e->last_result_id = id;
    if ((in = incs_find(e, id)) == NULL || in->v.state == INCIDENT_CLOSED) {
        e->last_result = INCIDENT_RESULT_UNKNOWN;
        return;
    }
    /* The batch's host is the agent's certificate name: an agent
     * reports on its own host's incidents only. */
    if (strcmp(in->v.host, host) != 0) {
        e->last_result = INCIDENT_RESULT_FOREIGN;
        return;
    }
    join3(who, sizeof(who), "agent:", 6, host, strlen(host), NULL, 0);
    incident_result_detail(ev, d, sizeof(d));
    note_add(e, in, ev->event_ts ? ev->event_ts : ev->ts, "action", who, d);
    e->last_result = INCIDENT_RESULT_NOTED;
}

void
incident_engine_event(struct incident_engine *e, const char *host,
                      const struct tc_event *ev)
{
    struct ev_ctx c;
    struct fpent *fe;
    char key[1024], rule[128];
    size_t kl;

    memset(&c, 0, sizeof(c));
    e->last_fed = 0;
    e->last_result = INCIDENT_RESULT_NONE;
    e->last_result_id = 0;
    if (str_is(ev->kind, "action_result")) {
        action_result(e, host, ev);
        return;
    }
    if ((kl = key_of(host, ev, key, sizeof(key), &c.kind)) == 0)
        return;
    join3(rule, sizeof(rule), ev->rule.ptr, ev->rule.len, NULL, 0, NULL, 0);
    c.host = host;
    c.rule = rule;
    c.t = ev->event_ts ? ev->event_ts : ev->ts;
    c.n = ev->count ? ev->count : 1;
    c.sev = ev->sev;
    c.tier1 = is_tier1(ev);
    service_of(ev, c.service, sizeof(c.service));
    c.ev = ev;
    join3(c.who, sizeof(c.who), "rule:", 5, rule, strlen(rule), NULL, 0);

    if (strcmp(c.kind, "check") == 0) {
        feed_check_event(e, key, kl, &c, ev);
        return;
    }
    if (c.sev == TC_SEV_OK) {
        /* A recovery: only the agent's "back" event means anything. */
        if (strcmp(c.kind, "agent") != 0)
            return;
        fe = fp_find(e, key, kl, tc_hash64(key, kl));
        if (fe != NULL && fe->cur != NULL && active(fe->cur)) {
            e->last_fed = fe->cur->v.id;
            resolve_inc(e, fe->cur, c.t, c.who, "agent back");
        }
        return;
    }
    fe = fp_get(e, key, kl);
    if (fe->cur != NULL && active(fe->cur)) {
        fold_active(e, fe->cur, &c);
        return;
    }
    open_or_reopen(e, fe, &c, "");
}

/* An agent-silent incident is active for host: we cannot hear it. */
static int
host_silent(struct incident_engine *e, const char *host)
{
    char key[512];
    int n = snprintf(key, sizeof(key),
                     "%s\x1f"
                     "agent-silent",
                     host);
    struct fpent *fe;

    if (n < 0 || (size_t)n >= sizeof(key))
        return 0;
    fe = fp_find(e, key, (size_t)n, tc_hash64(key, (size_t)n));
    return fe != NULL && fe->cur != NULL && active(fe->cur);
}

/*
 * The incidents a tick at now may change, in id order, out of the
 * heaps (the caller puts back what it leaves, with sched): active log
 * incidents quiet for resolve_after, resolved ones past reopen_window.
 * A quiet key that comes due but whose incident had events since is
 * moved to its last event. *n is set; the array is the caller's.
 */
static struct inc **
tick_due(struct incident_engine *e, int64_t now, size_t *n)
{
    struct iheap *q = &e->heap[HEAP_QUIET], *r = &e->heap[HEAP_RESOLVED];
    struct inc **v = NULL;
    size_t nv = 0, cap = 0;

    for (;;) {
        struct inc *in = NULL;

        if (q->n > 0 &&
            now - q->v[0]->hkey[HEAP_QUIET] >= e->cfg.resolve_after_ns) {
            in = q->v[0];
            if (now - in->v.last_seen < e->cfg.resolve_after_ns) {
                /* Not quiet after all: due again at its last event. */
                in->hkey[HEAP_QUIET] = in->v.last_seen;
                heap_down(q, 0);
                continue;
            }
            heap_del(q, in);
        } else if (r->n > 0 && now - r->v[0]->hkey[HEAP_RESOLVED] >=
                                   e->cfg.reopen_window_ns) {
            in = r->v[0];
            heap_del(r, in);
        } else {
            break;
        }
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            v = tc_xreallocarray(v, cap, sizeof(*v));
        }
        v[nv++] = in;
    }
    if (nv > 1)
        tc_qsort(v, nv, sizeof(*v), inc_id_cmp);
    *n = nv;
    return v;
}

void
incident_engine_tick(struct incident_engine *e, int64_t now)
{
    char d[96];
    size_t n;
    struct inc **due = tick_due(e, now, &n);

    /*
     * What a walk over every incident in id order would do, over the
     * only ones it could change: resolving or closing one changes no
     * other's state or times (priorities, which the conditions do not
     * read), and an agent-silent incident, which host_silent reads, is
     * never resolved here.
     */
    for (size_t i = 0; i < n; i++) {
        struct inc *in = due[i];

        if (active(in) && strcmp(in->v.kind, "log") == 0 &&
            now - in->v.last_seen >= e->cfg.resolve_after_ns &&
            !host_silent(e, in->v.host)) {
            snprintf(d, sizeof(d), "quiet for %" PRId64 "s",
                     (now - in->v.last_seen) / 1000000000);
            resolve_inc(e, in, now, "rule:resolve_after", d);
        }
        if (in->v.state == INCIDENT_RESOLVED &&
            now - in->v.resolved_at >= e->cfg.reopen_window_ns)
            close_inc(e, in, now, "rule:reopen_window",
                      "no recurrence within reopen_window");
        /* Back in its heap if it stays (a silent host's, say). */
        sched(e, in);
    }
    free(due);
}

int
incident_engine_action(struct incident_engine *e,
                       const struct incident_action *a)
{
    struct inc *in = incs_find(e, a->incident_id);
    char who[160];

    if (in == NULL || in->v.state == INCIDENT_CLOSED)
        return -ENOENT;
    snprintf(who, sizeof(who), "user:%s", a->user ? a->user : "?");
    switch (a->verb) {
    case INCIDENT_ACK:
        if (in->v.state != INCIDENT_OPEN)
            return -EALREADY;
        in->v.state = INCIDENT_ACKED;
        in->v.acked_at = a->ts;
        mark_dirty(e, in);
        note_add(e, in, a->ts, "acknowledged", who, a->text);
        return 0;
    case INCIDENT_RESOLVE:
        if (!active(in))
            return -EALREADY;
        resolve_inc(e, in, a->ts, who, a->text);
        return 0;
    case INCIDENT_CLOSE:
        close_inc(e, in, a->ts, who, a->text);
        return 0;
    case INCIDENT_NOTE:
        note_add(e, in, a->ts, "note", who, a->text);
        return 0;
    }
    return -EINVAL;
}

void
incident_engine_load(struct incident_engine *e, const struct incident *src)
{
    struct inc *in;
    struct fpent *fe;

    if (src->state == INCIDENT_CLOSED)
        return;
    in = tc_xcalloc(1, sizeof(*in));
    in->v = *src;
    in->v.fingerprint = tc_xstrdup(src->fingerprint);
    in->v.host = tc_xstrdup(src->host);
    in->v.rule = tc_xstrdup(src->rule);
    in->v.kind = tc_xstrdup(src->kind);
    in->v.service = tc_xstrdup(src->service ? src->service : "");
    fe = fp_get(e, src->fingerprint, strlen(src->fingerprint));
    /* Only one incident per fingerprint is ever not closed. */
    if (fe->cur == NULL || fe->cur->v.id < in->v.id) {
        if (fe->cur != NULL)
            fe->cur->fe = NULL;
        fe->cur = in;
    }
    in->fe = fe->cur == in ? fe : NULL;
    incs_insert(e, in);
    sched(e, in);
    /* Its priority was set by another engine: the rule's next
     * reprioritise looks at every active incident of it. */
    if (in->re != NULL)
        in->re->settled = 0;
    if (in->v.id > e->last_id)
        e->last_id = in->v.id;
}

void
incident_engine_load_fp(struct incident_engine *e, const struct incident_fp *f)
{
    struct fpent *fe;

    if (f->attempts == 0 && f->history == 0 && !f->flapping)
        return;
    fe = fp_get(e, f->fingerprint, strlen(f->fingerprint));
    fe->attempts = f->attempts;
    fe->since = f->since;
    fe->hist = (uint64_t)f->history & FLAP_MASK;
    fe->flapping = f->flapping != 0;
}

void
incident_engine_set_last_id(struct incident_engine *e, int64_t last_id)
{
    if (last_id > e->last_id)
        e->last_id = last_id;
}

static int
fp_cmp(const void *a, const void *b)
{
    const struct fpent *x = *(struct fpent *const *)a;
    const struct fpent *y = *(struct fpent *const *)b;

    return strcmp(x->key, y->key);
}

int
incident_engine_drain(struct incident_engine *e,
                      const struct incident_sink *sink, void *arg)
{
    struct inc **dirty = e->dirty;
    struct fpent **fps = e->dirty_fps;
    size_t nd = e->ndirty, nf = e->ndirty_fps;
    int rc = 0;

    /* The lists are in the order things changed: id and key order, as
     * documented, come from sorting them. */
    if (nd > 1)
        tc_qsort(dirty, nd, sizeof(*dirty), inc_id_cmp);
    for (size_t i = 0; i < nd && rc == 0; i++)
        if (sink->incident)
            rc = sink->incident(arg, &dirty[i]->v);
    if (rc == 0) {
        if (nf > 1)
            tc_qsort(fps, nf, sizeof(*fps), fp_cmp);
        for (size_t i = 0; i < nf && rc == 0; i++) {
            struct incident_fp fp = {fps[i]->key, fps[i]->attempts,
                                     fps[i]->since, (int64_t)fps[i]->hist,
                                     fps[i]->flapping};

            if (sink->fp)
                rc = sink->fp(arg, &fp);
        }
    }
    for (size_t i = 0; i < e->nnotes && rc == 0; i++) {
        const struct note *n = &e->notes[i];
        struct incident_note out = {n->id, n->ts, n->what, n->who, n->detail};

        if (sink->note)
            rc = sink->note(arg, &out);
    }
    notes_clear(e);
    /* Forget what no longer matters: idle prints, closed incidents
     * (every closed one changed since the last drain: it is listed).
     * After a failed callback, the rest of the changes are lost too. */
    for (size_t i = 0; i < nf; i++) {
        fps[i]->fp_dirty = 0;
        if (fps[i]->attempts == 0 && fps[i]->cur == NULL && fps[i]->hist == 0 &&
            !fps[i]->flapping)
            fp_remove(e, fps[i]);
    }
    e->ndirty_fps = 0;
    for (size_t i = 0; i < nd; i++) {
        struct inc *in = dirty[i];

        in->dirty = 0;
        if (in->v.state == INCIDENT_CLOSED) {
            tc_htab_remove(&e->byid, &in->hnode);
            inc_free(in);
        }
    }
    e->ndirty = 0;
    return rc;
}

int
incident_engine_pending(const struct incident_engine *e)
{
    return e->nnotes > 0 || e->ndirty > 0 || e->ndirty_fps > 0;
}

int64_t
incident_engine_last(const struct incident_engine *e)
{
    return e->last_fed;
}

enum incident_result
incident_engine_last_result(const struct incident_engine *e,
                            int64_t *incident_id)
{
    if (incident_id != NULL)
        *incident_id = e->last_result_id;
    return e->last_result;
}

size_t
incident_engine_size(const struct incident_engine *e)
{
    return tc_htab_count(&e->byid);
}

void
incident_engine_census(
    const struct incident_engine *e,
    uint64_t out[INCIDENT_CENSUS_STATES][INCIDENT_CENSUS_PRIOS])
{
    struct tc_hiter it;
    struct tc_hnode *n;

    memset(out, 0,
           sizeof(uint64_t) * INCIDENT_CENSUS_STATES * INCIDENT_CENSUS_PRIOS);
    for (n = tc_htab_iter(&e->byid, &it); n != NULL; n = tc_hiter_next(&it)) {
        const struct incident *in = &TC_CONTAINER_OF(n, struct inc, hnode)->v;

        /* A closed one waits for the drain that drops it. */
        if ((unsigned)in->state < INCIDENT_CENSUS_STATES && in->priority >= 1 &&
            in->priority <= INCIDENT_CENSUS_PRIOS)
            out[in->state][in->priority - 1]++;
    }
}

const struct incident *
incident_engine_get(const struct incident_engine *e, int64_t id)
{
    const struct inc *in = incs_find(e, id);

    return in ? &in->v : NULL;
}

/* An agent clock ahead of tocsinctl's can put an acknowledgement
 * before the opening it answers; it took no time, not negative time. */
static double
span(int64_t from, int64_t to)
{
    return to > from ? (double)(to - from) : 0.0;
}

void
incident_metrics_init(struct incident_metrics *m, int64_t since)
{
    memset(m, 0, sizeof(*m));
    m->since = since;
}

void
incident_metrics_add(struct incident_metrics *m, const struct incident_note *n)
{
    if (n->incident_id != m->ep_incident) {
        /* Another incident: no episode until its first opening. */
        m->ep_incident = n->incident_id;
        m->ep_counted = 0;
        m->inc_counted = 0;
    }
    if (strcmp(n->what, "opened") == 0 || strcmp(n->what, "reopened") == 0) {
        m->ep_opened = n->ts;
        m->ep_counted = n->ts >= m->since;
        m->ep_acked = m->ep_restored = 0;
        if (!m->ep_counted)
            return;
        m->openings++;
        if (!m->inc_counted) {
            m->inc_counted = 1;
            m->incidents++;
        }
        return;
    }
    if (!m->ep_counted)
        return;
    if (strcmp(n->what, "acknowledged") == 0 && !m->ep_acked) {
        m->ep_acked = 1;
        m->acked++;
        m->tta_ns += span(m->ep_opened, n->ts);
    } else if ((strcmp(n->what, "resolved") == 0 ||
                strcmp(n->what, "closed") == 0) &&
               !m->ep_restored) {
        m->ep_restored = 1;
        m->restored++;
        m->ttr_ns += span(m->ep_opened, n->ts);
    }
}

int64_t
incident_metrics_mtta(const struct incident_metrics *m)
{
    return m->acked ? (int64_t)(m->tta_ns / (double)m->acked) : -1;
}

int64_t
incident_metrics_mttr(const struct incident_metrics *m)
{
    return m->restored ? (int64_t)(m->ttr_ns / (double)m->restored) : -1;
}
