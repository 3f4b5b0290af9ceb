/*
 * Unit tests for common/seq.c: the bound on a batch's seqs at the
 * collector and the room a fresh spool needs after the collector's mark.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "seq.h"

static void
test_check(void **state)
{
    char why[160];

    (void)state;
    /* A fresh agent, a normal batch, a replay. */
    assert_int_equal(tc_seq_check(0, 1, why, sizeof(why)), 0);
    assert_int_equal(tc_seq_check(0, 10000, why, sizeof(why)), 0);
    assert_int_equal(tc_seq_check(500, 3, why, sizeof(why)), 0);
    assert_int_equal(tc_seq_check(500, 500, why, sizeof(why)), 0);
    /* The jump bound, to the seq. */
    assert_int_equal(tc_seq_check(0, TC_SEQ_JUMP_MAX, why, sizeof(why)), 0);
    assert_int_equal(tc_seq_check(0, TC_SEQ_JUMP_MAX + 1, why, sizeof(why)),
                     -ERANGE);
    assert_non_null(strstr(why, "jumps"));
    assert_int_equal(
        tc_seq_check(1000, 1000 + TC_SEQ_JUMP_MAX, why, sizeof(why)), 0);
    assert_int_equal(
        tc_seq_check(1000, 1001 + TC_SEQ_JUMP_MAX, why, sizeof(why)), -ERANGE);
    /* The top of the range: 2^64-1 wedged agents; 2^63 is out too. */
    assert_int_equal(tc_seq_check(0, UINT64_MAX, why, sizeof(why)), -ERANGE);
    assert_non_null(strstr(why, "18446744073709551615"));
    assert_int_equal(
        tc_seq_check(TC_SEQ_MAX - 10, UINT64_MAX, why, sizeof(why)), -ERANGE);
    assert_non_null(strstr(why, "highest seq"));
    assert_int_equal(
        tc_seq_check(TC_SEQ_MAX - 10, TC_SEQ_MAX + 1, why, sizeof(why)),
        -ERANGE);
    assert_int_equal(
        tc_seq_check(TC_SEQ_MAX - 10, TC_SEQ_MAX, why, sizeof(why)), 0);
    assert_int_equal(TC_SEQ_MAX, INT64_MAX);
}

static void
test_after(void **state)
{
    uint64_t first = 0;

    (void)state;
    assert_int_equal(tc_seq_after(0, 0, &first), 0);
    assert_int_equal(first, 1);
    assert_int_equal(tc_seq_after(100, 3, &first), 0);
    assert_int_equal(first, 101);
    /* Room for n seqs and the next one, no more. */
    assert_int_equal(tc_seq_after(TC_SEQ_MAX - 4, 3, &first), 0);
    assert_int_equal(first, TC_SEQ_MAX - 3);
    first = 7;
    assert_int_equal(tc_seq_after(TC_SEQ_MAX - 3, 3, &first), -ERANGE);
    assert_int_equal(first, 7);
    assert_int_equal(tc_seq_after(TC_SEQ_MAX - 1, 0, &first), 0);
    first = 7;
    assert_int_equal(tc_seq_after(TC_SEQ_MAX, 0, &first), -ERANGE);
    /* The marks that wrapped next_seq to 0. */
    assert_int_equal(tc_seq_after(UINT64_MAX, 0, &first), -ERANGE);
    assert_int_equal(tc_seq_after(UINT64_MAX, 5, &first), -ERANGE);
    assert_int_equal(tc_seq_after(UINT64_MAX - 5, 5, &first), -ERANGE);
    assert_int_equal(tc_seq_after(0, UINT64_MAX, &first), -ERANGE);
    assert_int_equal(first, 7);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_after),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
