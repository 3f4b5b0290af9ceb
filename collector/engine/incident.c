/*
 * incident: the deterministic incident engine (see incident.h and
 * docs/internals/incidents.md).
 *
 * State is a hash table of fingerprints (soft state, and the one
 * incident of the fingerprint that is not closed) and an array of the
 * incidents in memory, kept sorted by id. Every walk that can produce
 * output goes over that array, never over the hash table, so the output
 * order does not depend on how the table was filled (live, or loaded
 * from the store after a restart).
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
    int fp_dirty;          /* soft state changed since the last drain */
    struct inc *cur;       /* the incident not closed, or NULL; borrowed
                              from incs */
};

struct inc {
    struct incident v; /* strings owned */
    struct fpent *fe;  /* its fingerprint (NULL once closed) */
    int dirty;         /* changed since the last drain */
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
    struct tc_htab fps; /* of struct fpent, owned: the fingerprints */
    struct inc **incs;  /* owned, sorted by id; closed ones leave at drain */
    size_t ninc, capinc;
    struct note *notes; /* owned, since the last drain */
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
    for (size_t i = 0; i < e->ninc; i++)
        inc_free(e->incs[i]);
    notes_clear(e);
    for (size_t i = 0; i < e->nsil; i++)
        free(e->sils[i].matchers);
    free(e->sils);
    free(e->notes);
    free(e->incs);
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

/* Insert keeping the array sorted by id (ids only grow live; a load may
 * come in any order). */
static void
incs_insert(struct incident_engine *e, struct inc *in)
{
    size_t i = e->ninc;

    if (e->ninc == e->capinc) {
        e->capinc = e->capinc ? e->capinc * 2 : 64;
        e->incs = tc_xreallocarray(e->incs, e->capinc, sizeof(*e->incs));
    }
    while (i > 0 && e->incs[i - 1]->v.id > in->v.id) {
        e->incs[i] = e->incs[i - 1];
        i--;
    }
    e->incs[i] = in;
    e->ninc++;
}

static struct inc *
incs_find(const struct incident_engine *e, int64_t id)
{
    size_t lo = 0, hi = e->ninc;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->incs[mid]->v.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->ninc && e->incs[lo]->v.id == id ? e->incs[lo] : NULL;
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

/* Distinct hosts with an active incident of rule. */
static size_t
rule_hosts(const struct incident_engine *e, const char *rule)
{
    size_t n = 0;

    for (size_t i = 0; i < e->ninc; i++) {
        const struct inc *in = e->incs[i];
        int seen = 0;

        if (!active(in) || strcmp(in->v.rule, rule) != 0)
            continue;
        /* Quadratic in the hosts of one rule; small in practice. */
        for (size_t j = 0; j < i && !seen; j++) {
            const struct inc *o = e->incs[j];

            seen = active(o) && strcmp(o->v.rule, rule) == 0 &&
                   strcmp(o->v.host, in->v.host) == 0;
        }
        if (!seen)
            n++;
    }
    return n;
}

/*
 * Recompute the priority of every active incident of rule: the
 * severity's base, one step higher for a tier-1 service or when
 * IMPACT_HOSTS hosts suffer from the same rule.
 */
static void
reprioritise(struct incident_engine *e, const char *rule, int64_t ts)
{
    size_t hosts = rule_hosts(e, rule);
    char detail[96];

    for (size_t i = 0; i < e->ninc; i++) {
        struct inc *in = e->incs[i];
        int p;

        if (!active(in) || strcmp(in->v.rule, rule) != 0)
            continue;
        p = base_priority(in->v.severity);
        if (p > 1 && (in->v.tier1 || hosts >= IMPACT_HOSTS))
            p--;
        if (p == in->v.priority)
            continue;
        snprintf(detail, sizeof(detail), "P%d -> P%d (%s, %zu host%s)",
                 in->v.priority, p, tc_severity_name(in->v.severity), hosts,
                 hosts == 1 ? "" : "s");
        in->v.priority = p;
        in->dirty = 1;
        note_add(e, in, ts, "priority", "rule:priority", detail);
    }
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
adopt_service(struct inc *in, const char *service)
{
    if (in->v.service[0] == '\0' && service[0] != '\0') {
        free(in->v.service);
        in->v.service = tc_xstrdup(service);
        in->dirty = 1;
    }
}

/* Fold an event into an incident's counters; 1 if severity or tier rose. */
static int
fold(struct inc *in, int64_t t, uint64_t n, enum tc_severity sev, int tier1)
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
    in->dirty = 1;
    return raised;
}

static void
close_inc(struct incident_engine *e, struct inc *in, int64_t ts,
          const char *who, const char *detail)
{
    int was_active = active(in);

    in->v.state = INCIDENT_CLOSED;
    in->v.closed_at = ts;
    in->dirty = 1;
    if (in->fe != NULL && in->fe->cur == in) {
        in->fe->cur = NULL;
        /* Let the drain forget the fingerprint if nothing else holds it. */
        in->fe->fp_dirty = 1;
    }
    in->fe = NULL;
    note_add(e, in, ts, "closed", who, detail);
    if (was_active)
        reprioritise(e, in->v.rule, ts);
}

static void
resolve_inc(struct incident_engine *e, struct inc *in, int64_t ts,
            const char *who, const char *detail)
{
    in->v.state = INCIDENT_RESOLVED;
    in->v.resolved_at = ts;
    in->dirty = 1;
    note_add(e, in, ts, "resolved", who, detail);
    reprioritise(e, in->v.rule, ts);
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
            fold(cur, c->t, c->n, cur->v.severity, c->tier1);
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
            fold(cur, c->t, c->n, c->sev, c->tier1);
            e->last_fed = cur->v.id;
            adopt_service(cur, c->service);
            note_add(e, cur, c->t, "reopened", c->who, d);
            mark_silenced(e, cur, c);
            reprioritise(e, cur->v.rule, c->t);
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
    fold(in, c->t, c->n, c->sev, c->tier1);
    fe->cur = in;
    e->last_fed = in->v.id;
    incs_insert(e, in);
    snprintf(d, sizeof(d), "%s%s%s", tc_severity_name(c->sev),
             *detail ? "; " : "", detail);
    note_add(e, in, c->t, "opened", c->who, d);
    mark_silenced(e, in, c);
    reprioritise(e, in->v.rule, c->t);
}

static void
fold_active(struct incident_engine *e, struct inc *in, const struct ev_ctx *c)
{
    e->last_fed = in->v.id;
    adopt_service(in, c->service);
    if (fold(in, c->t, c->n, c->sev, c->tier1))
        reprioritise(e, in->v.rule, c->t);
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
    in->dirty = 1;
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
        fe->fp_dirty = 1;
    }
    sum = flap_sum(hist);
    if (!fe->flapping && e->cfg.flap_high > 0 &&
        (uint64_t)sum * 100 > (uint64_t)e->cfg.flap_high * FLAP_SCALE) {
        fe->flapping = 1;
        fe->fp_dirty = 1;
        if (fe->cur != NULL && active(fe->cur))
            mark_flapping(e, fe->cur, c, sum);
    } else if (fe->flapping &&
               (e->cfg.flap_high == 0 ||
                (uint64_t)sum * 100 < (uint64_t)e->cfg.flap_low * FLAP_SCALE)) {
        fe->flapping = 0;
        fe->fp_dirty = 1;
        if (fe->cur != NULL && fe->cur->v.flapping) {
            fe->cur->v.flapping = 0;
            fe->cur->dirty = 1;
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
            fe->fp_dirty = 1;
        }
        if (fe->cur == NULL || !active(fe->cur))
            return;
        e->last_fed = fe->cur->v.id;
        /* A flapping check's incident stays open and counts results. */
        if (fe->flapping) {
            if (fold(fe->cur, c->t, c->n, TC_SEV_OK, c->tier1))
                reprioritise(e, fe->cur->v.rule, c->t);
        } else {
            resolve_inc(e, fe->cur, c->t, c->who, "check OK");
        }
        return;
    }
    if (fe->attempts++ == 0)
        fe->since = c->t;
    fe->fp_dirty = 1;
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

void
incident_engine_tick(struct incident_engine *e, int64_t now)
{
    char d[96];

    /* Index walk: close_inc and resolve_inc do not change the array. */
    for (size_t i = 0; i < e->ninc; i++) {
        struct inc *in = e->incs[i];

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
    }
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
        in->dirty = 1;
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
    struct fpent **dirty = NULL;
    size_t nd = 0, j = 0;
    int rc = 0;
    struct tc_hiter it;
    struct tc_hnode *hn;

    for (size_t i = 0; i < e->ninc && rc == 0; i++) {
        struct inc *in = e->incs[i];

        if (in->dirty && sink->incident)
            rc = sink->incident(arg, &in->v);
        in->dirty = 0;
    }
    if (rc == 0 && tc_htab_count(&e->fps) > 0) {
        dirty = tc_xreallocarray(NULL, tc_htab_count(&e->fps), sizeof(*dirty));
        /* Table order is arbitrary: the sort below makes it key order. */
        for (hn = tc_htab_iter(&e->fps, &it); hn != NULL;
             hn = tc_hiter_next(&it))
            if (fp_of(hn)->fp_dirty)
                dirty[nd++] = fp_of(hn);
        if (nd > 1)
            tc_qsort(dirty, nd, sizeof(*dirty), fp_cmp);
        for (size_t i = 0; i < nd && rc == 0; i++) {
            struct incident_fp fp = {dirty[i]->key, dirty[i]->attempts,
                                     dirty[i]->since, (int64_t)dirty[i]->hist,
                                     dirty[i]->flapping};

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
    /* Forget what no longer matters: closed incidents, idle prints. */
    for (size_t i = 0; i < nd; i++) {
        dirty[i]->fp_dirty = 0;
        if (dirty[i]->attempts == 0 && dirty[i]->cur == NULL &&
            dirty[i]->hist == 0 && !dirty[i]->flapping)
            fp_remove(e, dirty[i]);
    }
    free(dirty);
    for (size_t i = 0; i < e->ninc; i++) {
        struct inc *in = e->incs[i];

        if (in->v.state == INCIDENT_CLOSED) {
            inc_free(in);
            continue;
        }
        e->incs[j++] = in;
    }
    e->ninc = j;
    return rc;
}

int
incident_engine_pending(const struct incident_engine *e)
{
    struct tc_hiter it;
    struct tc_hnode *n;

    if (e->nnotes > 0)
        return 1;
    for (size_t i = 0; i < e->ninc; i++)
        if (e->incs[i]->dirty)
            return 1;
    for (n = tc_htab_iter(&e->fps, &it); n != NULL; n = tc_hiter_next(&it))
        if (fp_of(n)->fp_dirty)
            return 1;
    return 0;
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
    return e->ninc;
}

void
incident_engine_census(
    const struct incident_engine *e,
    uint64_t out[INCIDENT_CENSUS_STATES][INCIDENT_CENSUS_PRIOS])
{
    memset(out, 0,
           sizeof(uint64_t) * INCIDENT_CENSUS_STATES * INCIDENT_CENSUS_PRIOS);
    for (size_t i = 0; i < e->ninc; i++) {
        const struct incident *in = &e->incs[i]->v;

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
