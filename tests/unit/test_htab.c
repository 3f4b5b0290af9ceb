/*
 * test_htab: the one hash table. Entries are found after the table grows,
 * entries that share a hash are told apart by the caller's comparison,
 * removal unlinks exactly one entry, and iteration visits each entry once,
 * even when it removes as it goes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"
#include "htab.h"

struct item {
    char key[16];
    int seen;
    struct tc_hnode hn;
};

#define N 1000

static struct item *
find(const struct tc_htab *t, const char *key, uint64_t h)
{
    for (struct tc_hnode *n = tc_htab_first(t, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct item *it = TC_CONTAINER_OF(n, struct item, hn);

        if (strcmp(it->key, key) == 0)
            return it;
    }
    return NULL;
}

static void
test_grow_find_remove(void **state)
{
    static struct item items[N];
    struct tc_htab t;

    (void)state;
    tc_htab_init(&t);
    assert_null(tc_htab_first(&t, 1));
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        tc_htab_insert(&t, &items[i].hn, tc_hash64_str(items[i].key));
    }
    assert_int_equal(tc_htab_count(&t), N);
    assert_true(t.nb >= N);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(find(&t, items[i].key, tc_hash64_str(items[i].key)),
                         &items[i]);
    assert_null(find(&t, "absent", tc_hash64_str("absent")));
    for (int i = 0; i < N; i += 2)
        tc_htab_remove(&t, &items[i].hn);
    assert_int_equal(tc_htab_count(&t), N / 2);
    for (int i = 0; i < N; i++) {
        struct item *it = find(&t, items[i].key, tc_hash64_str(items[i].key));

        if (i % 2 == 0)
            assert_null(it);
        else
            assert_ptr_equal(it, &items[i]);
    }
    tc_htab_free(&t);
    assert_int_equal(tc_htab_count(&t), 0);
    assert_null(tc_htab_first(&t, 1));
}

/* Every key under one hash: the caller's comparison tells them apart. */
static void
test_collisions(void **state)
{
    static struct item items[64];
    struct tc_htab t;
    int chain = 0;

    (void)state;
    tc_htab_init(&t);
    for (int i = 0; i < 64; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "c%d", i);
        tc_htab_insert(&t, &items[i].hn, 42);
    }
    /* a different hash in the same bucket is skipped by first/next */
    struct item other = {.key = "other"};
    uint64_t oh = 42 + 1024; /* same bucket while the table is smaller */
    tc_htab_insert(&t, &other.hn, oh);
    for (struct tc_hnode *n = tc_htab_first(&t, 42); n != NULL;
         n = tc_htab_next(n, 42))
        chain++;
    assert_int_equal(chain, 64);
    assert_ptr_equal(find(&t, "c63", 42), &items[63]);
    assert_null(find(&t, "other", 42));
    assert_ptr_equal(find(&t, "other", oh), &other);
    tc_htab_remove(&t, &items[10].hn);
    assert_null(find(&t, "c10", 42));
    assert_ptr_equal(find(&t, "c11", 42), &items[11]);
    tc_htab_free(&t);
}

static void
test_iterate_and_remove(void **state)
{
    static struct item items[N];
    struct tc_htab t;
    struct tc_hiter it;
    int visited = 0;

    (void)state;
    tc_htab_init(&t);
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "i%d", i);
        items[i].seen = 0;
        tc_htab_insert(&t, &items[i].hn, tc_hash64_str(items[i].key));
    }
    for (struct tc_hnode *n = tc_htab_iter(&t, &it); n != NULL;
         n = tc_hiter_next(&it)) {
        TC_CONTAINER_OF(n, struct item, hn)->seen++;
        tc_htab_remove(&t, n);
        visited++;
    }
    assert_int_equal(visited, N);
    assert_int_equal(tc_htab_count(&t), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(items[i].seen, 1);
    tc_htab_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_find_remove),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_iterate_and_remove),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
