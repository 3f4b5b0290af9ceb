/*
 * test_buf: the hard cap is enforced on unconsumed bytes, a refused
 * append leaves the buffer untouched, and consumed space is reclaimed by
 * compaction before the buffer grows.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_cap(void **state)
{
    struct tc_buf b;
    uint8_t big[200];

    memset(big, 'a', sizeof(big));
    tc_buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(tc_buf_append(&b, big, 60), 0);
    assert_int_equal(tc_buf_append(&b, big, 40), 0);
    assert_int_equal(tc_buf_size(&b), 100);
    /* Full: even one byte is refused, and nothing changes. */
    assert_int_equal(tc_buf_append(&b, "x", 1), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 100);
    assert_int_equal(tc_buf_reserve(&b, 1), -ENOBUFS);
    /* An append larger than the whole cap, on an empty buffer. */
    tc_buf_reset(&b);
    assert_int_equal(tc_buf_append(&b, big, sizeof(big)), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 0);
    /* A huge reserve must not overflow the size arithmetic. */
    assert_int_equal(tc_buf_reserve(&b, SIZE_MAX), -ENOBUFS);
    assert_int_equal(tc_buf_append(&b, big, 0), 0);
    tc_buf_close(&b);
    assert_null(b.data);
    tc_buf_close(&b); /* closing twice is harmless */
}

static void
test_consume_compact(void **state)
{
    struct tc_buf b;
    uint8_t data[64];
    uint8_t *before;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)i;
    tc_buf_init(&b, 64);
    assert_int_equal(tc_buf_append(&b, data, 64), 0);
    tc_buf_consume(&b, 10);
    assert_int_equal(tc_buf_size(&b), 54);
    assert_int_equal(tc_buf_head(&b)[0], 10);
    /* The cap counts unconsumed bytes: 10 more fit again. */
    assert_int_equal(tc_buf_append(&b, data, 10), 0);
    assert_int_equal(tc_buf_size(&b), 64);
    assert_int_equal(tc_buf_head(&b)[0], 10);
    assert_int_equal(tc_buf_head(&b)[54], 0);
    assert_int_equal(tc_buf_append(&b, data, 1), -ENOBUFS);

    /* Compaction happens in place when the allocation suffices. */
    tc_buf_reset(&b);
    tc_buf_close(&b);
    tc_buf_init(&b, 1 << 20);
    assert_int_equal(tc_buf_append(&b, data, 64), 0);
    before = b.data;
    while (b.len + 64 <= b.cap)
        assert_int_equal(tc_buf_append(&b, data, 64), 0);
    tc_buf_consume(&b, b.len - 3);
    assert_int_equal(tc_buf_append(&b, data, 64), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.off, 0);
    assert_int_equal(tc_buf_size(&b), 67);
    assert_int_equal(tc_buf_head(&b)[3], 0);
    assert_int_equal(tc_buf_head(&b)[66], 63);

    /* Consuming everything rewinds to the start. */
    tc_buf_consume(&b, tc_buf_size(&b));
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    tc_buf_close(&b);
}

static void
test_grow(void **state)
{
    struct tc_buf b;
    uint8_t chunk[1000];

    memset(chunk, 'z', sizeof(chunk));
    tc_buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++)
        assert_int_equal(tc_buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(tc_buf_size(&b), 100000);
    assert_true(b.cap >= 100000);
    assert_int_equal(tc_buf_head(&b)[99999], 'z');
    tc_buf_close(&b);
}

/* printf-style appends: whole at any length, nothing on overflow. */
static void
test_printf(void **state)
{
    struct tc_buf b;
    char big[3000];

    (void)state;
    tc_buf_init(&b, 2048);
    assert_int_equal(tc_buf_printf(&b, "%s=%d;", "a", 42), 0);
    assert_int_equal(tc_buf_size(&b), 5);
    assert_memory_equal(tc_buf_head(&b), "a=42;", 5);
    memset(big, 'x', 1000);
    big[1000] = '\0';
    assert_int_equal(tc_buf_printf(&b, "%s", big), 0);
    assert_int_equal(tc_buf_size(&b), 1005);
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(tc_buf_printf(&b, "%s", big), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 1005);
    tc_buf_close(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_consume_compact),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
