/*
 * test_table: the text-table renderer. Columns are as wide as their
 * content, numbers right and text left, cells escaped and cut with a
 * mark, and no line ends in a space.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table.h"

static char *
render(const struct tc_table *t)
{
    struct tc_buf b;
    char *s;

    tc_buf_init(&b, 1u << 20);
    assert_int_equal(tc_table_render(t, &b), 0);
    s = strndup((const char *)tc_buf_head(&b), tc_buf_size(&b));
    tc_buf_close(&b);
    return s;
}

static void
test_aligned(void **state)
{
    static const struct tc_table_col cols[] = {
        {"ID", 1, 0}, {"HOST", 0, 0}, {"COUNT", 1, 0}, {"NOTE", 0, 0}};
    struct tc_table t;
    char *s;

    (void)state;
    tc_table_init(&t, cols, 4);
    tc_table_cellf(&t, "%d", 7);
    tc_table_cell(&t, "web-01");
    tc_table_cellf(&t, "%d", 123456);
    tc_table_cell(&t, "long note here");
    tc_table_cellf(&t, "%d", 12);
    tc_table_cell(&t, "db");
    tc_table_cellf(&t, "%d", 3);
    tc_table_cell(&t, NULL);
    assert_int_equal(tc_table_rows(&t), 2);
    s = render(&t);
    assert_string_equal(s, "ID  HOST     COUNT  NOTE\n"
                           " 7  web-01  123456  long note here\n"
                           "12  db           3  -\n");
    free(s);
    tc_table_free(&t);
}

static void
test_header_only_and_no_trailing_spaces(void **state)
{
    static const struct tc_table_col cols[] = {{"NAME", 0, 0}, {"STATE", 0, 0}};
    struct tc_table t;
    char *s;

    (void)state;
    tc_table_init(&t, cols, 2);
    s = render(&t);
    assert_string_equal(s, "NAME  STATE\n");
    free(s);
    /* A long first column and a short last: the last is not padded. */
    tc_table_cell(&t, "a-very-long-name");
    tc_table_cell(&t, "ok");
    s = render(&t);
    assert_string_equal(s, "NAME              STATE\n"
                           "a-very-long-name  ok\n");
    assert_null(strstr(s, " \n"));
    free(s);
    tc_table_free(&t);
}

static void
test_cut_and_escaped(void **state)
{
    static const struct tc_table_col cols[] = {{"MSG", 0, 8}, {"N", 1, 0}};
    struct tc_table t;
    char *s;

    (void)state;
    tc_table_init(&t, cols, 2);
    tc_table_cell(&t, "12345678"); /* exactly the max: kept */
    tc_table_cell(&t, "1");
    tc_table_cell(&t, "123456789"); /* one over: 7 kept and the mark */
    tc_table_cell(&t, "2");
    tc_table_cell(&t, "\x1b]52;c;x\x07"); /* OSC 52: escaped, then cut */
    tc_table_cell(&t, "3");
    tc_table_cell(&t, "h\xc3\xa9llo w\xc3\xb6rld"); /* cut by character */
    tc_table_cell(&t, "4");
    s = render(&t);
    assert_string_equal(s, "MSG       N\n"
                           "12345678  1\n"
                           "1234567\xe2\x80\xa6  2\n"
                           "\\x1b]52\xe2\x80\xa6  3\n"
                           "h\xc3\xa9llo w\xe2\x80\xa6  4\n");
    assert_null(strchr(s, '\x1b'));
    free(s);
    tc_table_free(&t);
}

static void
test_buffer_cap(void **state)
{
    static const struct tc_table_col cols[] = {{"X", 0, 0}};
    struct tc_table t;
    struct tc_buf b;

    (void)state;
    tc_table_init(&t, cols, 1);
    tc_table_cell(&t, "0123456789");
    tc_buf_init(&b, 8);
    assert_int_equal(tc_table_render(&t, &b), -ENOBUFS);
    tc_buf_close(&b);
    tc_table_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aligned),
        cmocka_unit_test(test_header_only_and_no_trailing_spaces),
        cmocka_unit_test(test_cut_and_escaped),
        cmocka_unit_test(test_buffer_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
