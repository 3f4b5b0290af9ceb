/*
 * htab: intrusive chained hash table (htab.h).
 */
#include "htab.h"

#include <stdlib.h>

#include "util.h"

#define HTAB_MIN_BUCKETS 16

void
tc_htab_init(struct tc_htab *t)
{
    t->b = NULL;
    t->nb = 0;
    t->n = 0;
}

void
tc_htab_free(struct tc_htab *t)
{
    free(t->b);
    tc_htab_init(t);
}

static void
htab_grow(struct tc_htab *t)
{
    size_t nb = t->nb == 0 ? HTAB_MIN_BUCKETS : t->nb * 2;
    struct tc_hnode **b = tc_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < t->nb; i++) {
        struct tc_hnode *n = t->b[i], *next;

        for (; n != NULL; n = next) {
            size_t j = (size_t)n->hash & (nb - 1);

            next = n->next;
            n->next = b[j];
            b[j] = n;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

void
tc_htab_insert(struct tc_htab *t, struct tc_hnode *n, uint64_t h)
{
    size_t i;

    if (t->n >= t->nb)
        htab_grow(t);
    i = (size_t)h & (t->nb - 1);
    n->hash = h;
    n->next = t->b[i];
    t->b[i] = n;
    t->n++;
}

void
tc_htab_remove(struct tc_htab *t, struct tc_hnode *n)
{
    struct tc_hnode **pp;

    if (t->nb == 0)
        return;
    for (pp = &t->b[(size_t)n->hash & (t->nb - 1)]; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            n->next = NULL;
            t->n--;
            return;
        }
    }
}

struct tc_hnode *
tc_htab_first(const struct tc_htab *t, uint64_t h)
{
    struct tc_hnode *n;

    if (t->nb == 0)
        return NULL;
    for (n = t->b[(size_t)h & (t->nb - 1)]; n != NULL; n = n->next)
        if (n->hash == h)
            return n;
    return NULL;
}

struct tc_hnode *
tc_htab_next(const struct tc_hnode *n, uint64_t h)
{
    for (n = n->next; n != NULL; n = n->next)
        if (n->hash == h)
            return (struct tc_hnode *)n;
    return NULL;
}

struct tc_hnode *
tc_hiter_next(struct tc_hiter *it)
{
    struct tc_hnode *n = it->next;

    if (n != NULL) {
        it->next = n->next;
        return n;
    }
    while (it->i < it->t->nb) {
        n = it->t->b[it->i++];
        if (n != NULL) {
            it->next = n->next;
            return n;
        }
    }
    return NULL;
}

struct tc_hnode *
tc_htab_iter(const struct tc_htab *t, struct tc_hiter *it)
{
    it->t = t;
    it->i = 0;
    it->next = NULL;
    return tc_hiter_next(it);
}
