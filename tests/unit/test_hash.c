/*
 * test_hash: the one string hash. Its values are pinned to the published
 * FNV-1a 64 test vectors: the agent stores them (spool head hashes that
 * identify tracked files across upgrades) and schedules by them (check
 * splay), so a change of constant or byte order must fail here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"

static void
test_vectors(void **state)
{
    (void)state;
    assert_true(tc_hash64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(tc_hash64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(tc_hash64("foobar", 6) == 0x85944171f73967e8ULL);
    assert_true(TC_HASH64_INIT == 0xcbf29ce484222325ULL);
}

static void
test_forms_agree(void **state)
{
    const char *s = "web-01\xff"
                    "disk-root";
    uint64_t whole = tc_hash64(s, strlen(s));
    uint64_t h = tc_hash64_add(TC_HASH64_INIT, "web-01", 6);

    (void)state;
    h = tc_hash64_add(h, "\xff", 1);
    h = tc_hash64_add(h, "disk-root", 9);
    assert_true(h == whole);
    assert_true(tc_hash64_str(s) == whole);
    assert_true(tc_hash64_str("") == TC_HASH64_INIT);
    /* Bytes above 0x7f hash as unsigned, whatever char's sign. */
    assert_true(tc_hash64_str("\xe9") == tc_hash64("\xe9", 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_forms_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
