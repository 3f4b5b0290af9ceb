/*
 * htab: the hash table of tocsin, intrusive and chained. An entry embeds
 * a struct tc_hnode and is found again with TC_CONTAINER_OF; the table
 * owns only its bucket array, never the entries, so an entry can sit in
 * other lists too and is freed by its owner. The caller computes the
 * hash (tc_hash64 of the key, usually) and compares keys itself:
 *
 *     for (n = tc_htab_first(&t, h); n != NULL; n = tc_htab_next(n, h)) {
 *         struct agent *a = TC_CONTAINER_OF(n, struct agent, hnode);
 *         if (strcmp(a->name, name) == 0)
 *             return a;
 *     }
 *
 * The table grows (doubling) once it holds as many entries as buckets,
 * and never shrinks. Not thread-safe. Hashes are unkeyed: a peer that
 * chooses keys can make one chain long (costs time, never memory), so
 * keep keys from untrusted peers short-lived or bounded in number.
 */
#ifndef TC_HTAB_H
#define TC_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define TC_CONTAINER_OF(ptr, type, member)                                     \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct tc_hnode {
    struct tc_hnode *next; /* chain; owned by the table */
    uint64_t hash;         /* as inserted */
};

struct tc_htab {
    struct tc_hnode **b; /* buckets; NULL until the first insert */
    size_t nb;           /* bucket count, a power of two (0 before) */
    size_t n;            /* entries */
};

/* Iteration that survives removing the entry just returned. */
struct tc_hiter {
    const struct tc_htab *t;
    size_t i;              /* next bucket to enter */
    struct tc_hnode *next; /* next node to return */
};

/* An empty table; nothing is allocated until the first insert. */
void tc_htab_init(struct tc_htab *t);
/* Free the buckets (not the entries); the table is empty again. */
void tc_htab_free(struct tc_htab *t);

/* Add n under hash h. Duplicates are the caller's business. */
void tc_htab_insert(struct tc_htab *t, struct tc_hnode *n, uint64_t h);
/* Take n (which must be in t) out of t. */
void tc_htab_remove(struct tc_htab *t, struct tc_hnode *n);

/* The first entry with hash h, or NULL. */
struct tc_hnode *tc_htab_first(const struct tc_htab *t, uint64_t h);
/* The entry after n in its chain with hash h, or NULL. */
struct tc_hnode *tc_htab_next(const struct tc_hnode *n, uint64_t h);

static inline size_t
tc_htab_count(const struct tc_htab *t)
{
    return t->n;
}

/*
 * Every entry, in no particular order:
 *     struct tc_hiter it;
 *     for (n = tc_htab_iter(&t, &it); n != NULL; n = tc_hiter_next(&it))
 * Removing the entry just returned is allowed; inserting is not.
 */
struct tc_hnode *tc_htab_iter(const struct tc_htab *t, struct tc_hiter *it);
struct tc_hnode *tc_hiter_next(struct tc_hiter *it);

#endif
