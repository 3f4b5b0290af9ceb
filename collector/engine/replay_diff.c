/*
 * replay_diff: the classification behind tocsinctl replay --config
 * (replay_diff.h): pair the incidents of the two sides, group them by
 * problem on each side, and classify every problem by where its
 * incidents went. Pure: no I/O, no clock; every output list is sorted.
 */
#include "engine/replay_diff.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One incident, paired: l and/or c (NULL: not on that side). */
struct row {
    const struct rdiff_incident *l, *c;
};

/* One problem of one side, with the rows of its incidents. */
struct pnode {
    int64_t id;
    const struct rdiff_problem *p; /* NULL: named by an incident only */
    size_t *mem;                   /* row indices (owned) */
    size_t nmem, capmem;
    int64_t *other; /* the other side's problems sharing incidents,
                       ascending (owned) */
    size_t *ocount; /* incidents shared with each (owned) */
    size_t nother;
    int64_t counterpart; /* most shared, ties lowest id; 0: none */
};

struct pset {
    struct pnode *n; /* ascending id (owned) */
    size_t len;
};

static const char *
str(const char *s)
{
    return s ? s : "";
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static int
cmp_inc(const void *a, const void *b)
{
    const struct rdiff_incident *x = *(const struct rdiff_incident *const *)a;
    const struct rdiff_incident *y = *(const struct rdiff_incident *const *)b;
    int c = strcmp(str(x->fingerprint), str(y->fingerprint));

    if (c)
        return c;
    if (x->opened_at != y->opened_at)
        return x->opened_at < y->opened_at ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
cmp_node(const void *a, const void *b)
{
    return cmp_i64(&((const struct pnode *)a)->id,
                   &((const struct pnode *)b)->id);
}

static struct pnode *
pset_find(const struct pset *s, int64_t id)
{
    struct pnode key = {.id = id};

    if (s->len == 0)
        return NULL;
    return bsearch(&key, s->n, s->len, sizeof(*s->n), cmp_node);
}

/* The problems given plus those only incidents name, ascending. */
static void
pset_build(struct pset *s, const struct rdiff_problem *p, size_t np,
           const struct row *rows, size_t nrows, int live)
{
    size_t cap = np + nrows, len = 0;

    s->n = tc_xcalloc(cap ? cap : 1, sizeof(*s->n));
    for (size_t i = 0; i < np; i++) {
        s->n[len].id = p[i].id;
        s->n[len++].p = &p[i];
    }
    for (size_t i = 0; i < nrows; i++) {
        const struct rdiff_incident *in = live ? rows[i].l : rows[i].c;

        if (in && in->problem)
            s->n[len++].id = in->problem;
    }
    tc_qsort(s->n, len, sizeof(*s->n), cmp_node);
    /* Keep one node per id, the one with its problem if given. */
    s->len = 0;
    for (size_t i = 0; i < len; i++) {
        if (s->len && s->n[s->len - 1].id == s->n[i].id) {
            if (!s->n[s->len - 1].p)
                s->n[s->len - 1].p = s->n[i].p;
            continue;
        }
        s->n[s->len++] = s->n[i];
    }
    for (size_t i = 0; i < nrows; i++) {
        const struct rdiff_incident *in = live ? rows[i].l : rows[i].c;
        struct pnode *n = in && in->problem ? pset_find(s, in->problem) : NULL;

        if (!n)
            continue;
        if (n->nmem == n->capmem) {
            n->capmem = n->capmem ? n->capmem * 2 : 8;
            n->mem = tc_xreallocarray(n->mem, n->capmem, sizeof(*n->mem));
        }
        n->mem[n->nmem++] = i;
    }
}

static void
pset_free(struct pset *s)
{
    for (size_t i = 0; i < s->len; i++) {
        free(s->n[i].mem);
        free(s->n[i].other);
        free(s->n[i].ocount);
    }
    free(s->n);
}

/* A (this side, other side) problem pair of one incident. */
struct pair {
    int64_t a, b;
};

static int
cmp_pair(const void *x, const void *y)
{
    const struct pair *p = x, *q = y;

    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

/* Fill other/ocount/counterpart of s from pairs sorted by (a, b). */
static void
pset_link(struct pset *s, const struct pair *pr, size_t npr)
{
    for (size_t i = 0; i < npr;) {
        struct pnode *n = pset_find(s, pr[i].a);
        size_t j = i, best = 0;

        while (j < npr && pr[j].a == pr[i].a)
            j++;
        n->other = tc_xcalloc(j - i, sizeof(*n->other));
        n->ocount = tc_xcalloc(j - i, sizeof(*n->ocount));
        for (size_t k = i; k < j; k++) {
            if (n->nother && n->other[n->nother - 1] == pr[k].b) {
                n->ocount[n->nother - 1]++;
                continue;
            }
            n->other[n->nother] = pr[k].b;
            n->ocount[n->nother++] = 1;
        }
        /* Ascending ids: strictly more wins, so ties keep the lowest. */
        for (size_t k = 1; k < n->nother; k++)
            if (n->ocount[k] > n->ocount[best])
                best = k;
        n->counterpart = n->other[best];
        i = j;
    }
}

static size_t
shared(const struct pnode *n, int64_t other)
{
    for (size_t k = 0; k < n->nother; k++)
        if (n->other[k] == other)
            return n->ocount[k];
    return 0;
}

/* The row whose incident on one side has that id (rows by_id sorted). */
struct rowid {
    int64_t id;
    size_t row;
};

static int
cmp_rowid(const void *a, const void *b)
{
    return cmp_i64(&((const struct rowid *)a)->id,
                   &((const struct rowid *)b)->id);
}

static long
row_of(const struct rowid *ix, size_t n, int64_t id)
{
    struct rowid key = {.id = id}, *f;

    if (id == 0 || n == 0)
        return -1;
    f = bsearch(&key, ix, n, sizeof(*ix), cmp_rowid);
    return f ? (long)f->row : -1;
}

struct ctx {
    const struct rdiff_input *in;
    struct row *rows;
    size_t nrows;
    struct pset live, cand;
    struct rowid *lix, *cix;
    size_t nlix, ncix;
    struct rdiff *out;
    size_t capp, capi;
};

static int64_t
opened(const struct pnode *n)
{
    /* A problem only an incident names: always reported. */
    return n->p ? n->p->opened_at : INT64_MAX;
}

static const char *
root_host(const struct pnode *n)
{
    return n->p ? str(n->p->root_host) : "";
}

static int
root_differs(const struct ctx *x, const struct pnode *l, const struct pnode *c)
{
    long rl = row_of(x->lix, x->nlix, l->p ? l->p->root_incident : 0);
    long rc = row_of(x->cix, x->ncix, c->p ? c->p->root_incident : 0);

    return strcmp(root_host(l), root_host(c)) != 0 || rl != rc;
}

/* Append the incidents of rows (live ids, or candidate ids for rows
 * only the candidate has) to it. */
static void
add_row(struct rdiff_pitem *it, const struct row *r)
{
    if (r->l) {
        it->inc = tc_xreallocarray(it->inc, it->ninc + 1, sizeof(*it->inc));
        it->inc[it->ninc++] = r->l->id;
    } else {
        it->cinc = tc_xreallocarray(it->cinc, it->ncinc + 1, sizeof(*it->cinc));
        it->cinc[it->ncinc++] = r->c->id;
    }
}

static void
add_ids(int64_t **ids, size_t *n, const int64_t *src, size_t nsrc)
{
    *ids = tc_xreallocarray(*ids, *n + nsrc + 1, sizeof(**ids));
    memcpy(*ids + *n, src, nsrc * sizeof(*src));
    *n += nsrc;
}

/*
 * Add a problem item naming live node l and/or candidate node c (or,
 * with lo/co, their other side's list), if any problem named opened at
 * or after since. Incidents: the members of mem_of.
 */
static void
add_pitem(struct ctx *x, enum rdiff_pkind kind, const struct pnode *l,
          const struct pnode *c, int others_of_l, int others_of_c)
{
    struct rdiff_pitem it = {.kind = kind, .live_root = "", .cand_root = ""};
    int64_t newest = INT64_MIN;
    struct pset *ps;

    if (l) {
        add_ids(&it.live, &it.nlive, &l->id, 1);
        it.live_root = root_host(l);
        newest = opened(l);
        if (others_of_l)
            add_ids(&it.cand, &it.ncand, l->other, l->nother);
    }
    if (c) {
        add_ids(&it.cand, &it.ncand, &c->id, 1);
        it.cand_root = root_host(c);
        if (opened(c) > newest)
            newest = opened(c);
        if (others_of_c)
            add_ids(&it.live, &it.nlive, c->other, c->nother);
    }
    /* The other side's problems named count for --since too. */
    ps = &x->cand;
    for (size_t k = 0; others_of_l && k < it.ncand; k++) {
        const struct pnode *n = pset_find(ps, it.cand[k]);
        if (n && opened(n) > newest)
            newest = opened(n);
    }
    ps = &x->live;
    for (size_t k = 0; others_of_c && k < it.nlive; k++) {
        const struct pnode *n = pset_find(ps, it.live[k]);
        if (n && opened(n) > newest)
            newest = opened(n);
    }
    if (newest < x->in->since) {
        free(it.live);
        free(it.cand);
        return;
    }
    if (kind == RDIFF_CHANGED) {
        /* The incidents that joined or left. */
        for (size_t k = 0; k < l->nmem; k++) {
            const struct row *r = &x->rows[l->mem[k]];
            if (!r->c || r->c->problem != c->id)
                add_row(&it, r);
        }
        for (size_t k = 0; k < c->nmem; k++) {
            const struct row *r = &x->rows[c->mem[k]];
            if (!r->l || r->l->problem != l->id)
                add_row(&it, r);
        }
    } else if (kind != RDIFF_ROOT) {
        /* Opened and merged: the candidate's; the rest: the live one's. */
        const struct pnode *m =
            c && (kind == RDIFF_OPENED || kind == RDIFF_MERGED) ? c : l;
        for (size_t k = 0; m && k < m->nmem; k++)
            add_row(&it, &x->rows[m->mem[k]]);
    }
    if (it.ninc)
        tc_qsort(it.inc, it.ninc, sizeof(*it.inc), cmp_i64);
    if (it.ncinc)
        tc_qsort(it.cinc, it.ncinc, sizeof(*it.cinc), cmp_i64);
    if (it.nlive)
        tc_qsort(it.live, it.nlive, sizeof(*it.live), cmp_i64);
    if (it.ncand)
        tc_qsort(it.cand, it.ncand, sizeof(*it.cand), cmp_i64);
    if (x->out->np == x->capp) {
        x->capp = x->capp ? x->capp * 2 : 16;
        x->out->p = tc_xreallocarray(x->out->p, x->capp, sizeof(*x->out->p));
    }
    x->out->p[x->out->np++] = it;
}

static void
add_iitem(struct ctx *x, enum rdiff_ikind kind, const struct row *r)
{
    struct rdiff_iitem it = {.kind = kind};
    const struct rdiff_incident *any = r->l ? r->l : r->c;

    if (any->opened_at < x->in->since)
        return;
    if (r->l) {
        it.live_id = r->l->id;
        it.live_problem = r->l->problem;
        it.live_inhibited = r->l->inhibited != 0;
    }
    if (r->c) {
        it.cand_id = r->c->id;
        it.cand_problem = r->c->problem;
        it.cand_inhibited = r->c->inhibited != 0;
    }
    if (x->out->ni == x->capi) {
        x->capi = x->capi ? x->capi * 2 : 16;
        x->out->i = tc_xreallocarray(x->out->i, x->capi, sizeof(*x->out->i));
    }
    x->out->i[x->out->ni++] = it;
}

static int
cmp_pitem(const void *a, const void *b)
{
    const struct rdiff_pitem *p = a, *q = b;
    int64_t pl = p->nlive ? p->live[0] : 0, ql = q->nlive ? q->live[0] : 0;
    int64_t pc = p->ncand ? p->cand[0] : 0, qc = q->ncand ? q->cand[0] : 0;

    if (p->kind != q->kind)
        return p->kind < q->kind ? -1 : 1;
    if (pl != ql)
        return pl < ql ? -1 : 1;
    return pc < qc ? -1 : pc > qc;
}

static int
cmp_iitem(const void *a, const void *b)
{
    const struct rdiff_iitem *p = a, *q = b;

    if (p->kind != q->kind)
        return p->kind < q->kind ? -1 : 1;
    if (p->live_id != q->live_id)
        return p->live_id < q->live_id ? -1 : 1;
    return p->cand_id < q->cand_id ? -1 : p->cand_id > q->cand_id;
}

/* Pair the two sides' incidents by (fingerprint, opened_at), in id
 * order within equal keys. */
static void
pair_incidents(struct ctx *x)
{
    const struct rdiff_input *in = x->in;
    const struct rdiff_incident **l, **c;
    size_t i = 0, j = 0;

    l = tc_xcalloc(in->nlive_inc + 1, sizeof(*l));
    c = tc_xcalloc(in->ncand_inc + 1, sizeof(*c));
    for (size_t k = 0; k < in->nlive_inc; k++)
        l[k] = &in->live_inc[k];
    for (size_t k = 0; k < in->ncand_inc; k++)
        c[k] = &in->cand_inc[k];
    tc_qsort(l, in->nlive_inc, sizeof(*l), cmp_inc);
    tc_qsort(c, in->ncand_inc, sizeof(*c), cmp_inc);
    x->rows = tc_xcalloc(in->nlive_inc + in->ncand_inc + 1, sizeof(*x->rows));
    while (i < in->nlive_inc || j < in->ncand_inc) {
        struct row *r = &x->rows[x->nrows++];
        int d;

        if (i == in->nlive_inc) {
            d = 1;
        } else if (j == in->ncand_inc) {
            d = -1;
        } else {
            d = strcmp(str(l[i]->fingerprint), str(c[j]->fingerprint));
            if (!d && l[i]->opened_at != c[j]->opened_at)
                d = l[i]->opened_at < c[j]->opened_at ? -1 : 1;
        }
        if (d <= 0)
            r->l = l[i++];
        if (d >= 0)
            r->c = c[j++];
    }
    free(l);
    free(c);
}

static struct rowid *
index_rows(const struct row *rows, size_t nrows, int live, size_t *n)
{
    struct rowid *ix = tc_xcalloc(nrows + 1, sizeof(*ix));

    *n = 0;
    for (size_t i = 0; i < nrows; i++) {
        const struct rdiff_incident *in = live ? rows[i].l : rows[i].c;
        if (in)
            ix[(*n)++] = (struct rowid){in->id, i};
    }
    tc_qsort(ix, *n, sizeof(*ix), cmp_rowid);
    return ix;
}

void
rdiff_compute(const struct rdiff_input *in, struct rdiff *out)
{
    struct ctx x = {.in = in, .out = out};
    struct pair *pr;
    size_t npr = 0;

    memset(out, 0, sizeof(*out));
    pair_incidents(&x);
    pset_build(&x.live, in->live, in->nlive, x.rows, x.nrows, 1);
    pset_build(&x.cand, in->cand, in->ncand, x.rows, x.nrows, 0);
    x.lix = index_rows(x.rows, x.nrows, 1, &x.nlix);
    x.cix = index_rows(x.rows, x.nrows, 0, &x.ncix);

    /* Where each live problem's incidents went, and the other way. */
    pr = tc_xcalloc(x.nrows + 1, sizeof(*pr));
    for (size_t i = 0; i < x.nrows; i++)
        if (x.rows[i].l && x.rows[i].c && x.rows[i].l->problem &&
            x.rows[i].c->problem)
            pr[npr++] =
                (struct pair){x.rows[i].l->problem, x.rows[i].c->problem};
    tc_qsort(pr, npr, sizeof(*pr), cmp_pair);
    pset_link(&x.live, pr, npr);
    for (size_t i = 0; i < npr; i++)
        pr[i] = (struct pair){pr[i].b, pr[i].a};
    tc_qsort(pr, npr, sizeof(*pr), cmp_pair);
    pset_link(&x.cand, pr, npr);
    free(pr);

    for (size_t i = 0; i < x.live.len; i++) {
        const struct pnode *l = &x.live.n[i];
        const struct pnode *c =
            l->counterpart ? pset_find(&x.cand, l->counterpart) : NULL;
        int mutual = c && c->counterpart == l->id;

        if (l->nother == 0) {
            add_pitem(&x, RDIFF_REMOVED, l, NULL, 0, 0);
            continue;
        }
        if (l->nother >= 2)
            add_pitem(&x, RDIFF_SPLIT, l, NULL, 1, 0);
        if (l->nother == 1 && c->nother == 1) {
            size_t n = shared(l, c->id);
            int same = n == l->nmem && n == c->nmem;
            int root = root_differs(&x, l, c);

            if (!same)
                add_pitem(&x, RDIFF_CHANGED, l, c, 0, 0);
            if (root)
                add_pitem(&x, RDIFF_ROOT, l, c, 0, 0);
            if (same && !root)
                add_pitem(&x, RDIFF_UNCHANGED, l, c, 0, 0);
        } else if (mutual && root_differs(&x, l, c)) {
            add_pitem(&x, RDIFF_ROOT, l, c, 0, 0);
        }
    }
    for (size_t i = 0; i < x.cand.len; i++) {
        const struct pnode *c = &x.cand.n[i];

        if (c->nother == 0)
            add_pitem(&x, RDIFF_OPENED, NULL, c, 0, 0);
        else if (c->nother >= 2)
            add_pitem(&x, RDIFF_MERGED, NULL, c, 0, 1);
    }

    for (size_t i = 0; i < x.nrows; i++) {
        const struct row *r = &x.rows[i];

        if (!r->c) {
            add_iitem(&x, RDIFF_ONLY_LIVE, r);
            continue;
        }
        if (!r->l) {
            add_iitem(&x, RDIFF_ONLY_CAND, r);
            continue;
        }
        if (r->l->problem && !r->c->problem) {
            add_iitem(&x, RDIFF_UNLINKED, r);
        } else if (!r->l->problem && r->c->problem) {
            add_iitem(&x, RDIFF_LINKED, r);
        } else if (r->l->problem) {
            const struct pnode *l = pset_find(&x.live, r->l->problem);
            const struct pnode *c = pset_find(&x.cand, r->c->problem);

            if (l->counterpart != c->id || c->counterpart != l->id)
                add_iitem(&x, RDIFF_MOVED, r);
        }
        if ((r->l->inhibited != 0) != (r->c->inhibited != 0))
            add_iitem(&x, RDIFF_INHIBITED, r);
    }

    if (out->np)
        tc_qsort(out->p, out->np, sizeof(*out->p), cmp_pitem);
    if (out->ni)
        tc_qsort(out->i, out->ni, sizeof(*out->i), cmp_iitem);
    for (size_t i = 0; i < out->np; i++) {
        out->pcount[out->p[i].kind]++;
        if (out->p[i].kind != RDIFF_UNCHANGED)
            out->changes++;
    }
    for (size_t i = 0; i < out->ni; i++)
        out->icount[out->i[i].kind]++;
    out->changes += out->ni;

    pset_free(&x.live);
    pset_free(&x.cand);
    free(x.lix);
    free(x.cix);
    free(x.rows);
}

void
rdiff_free(struct rdiff *d)
{
    for (size_t i = 0; i < d->np; i++) {
        free(d->p[i].live);
        free(d->p[i].cand);
        free(d->p[i].inc);
        free(d->p[i].cinc);
    }
    free(d->p);
    free(d->i);
    memset(d, 0, sizeof(*d));
}

const char *
rdiff_pkind_name(enum rdiff_pkind k)
{
    static const char *const names[RDIFF_NPKIND] = {
        "opened",  "removed",    "merged",   "split",
        "changed", "root_cause", "unchanged"};

    return (unsigned)k < RDIFF_NPKIND ? names[k] : "?";
}

const char *
rdiff_ikind_name(enum rdiff_ikind k)
{
    static const char *const names[RDIFF_NIKIND] = {
        "moved",     "unlinked",  "linked",
        "inhibited", "only_live", "only_candidate"};

    return (unsigned)k < RDIFF_NIKIND ? names[k] : "?";
}
