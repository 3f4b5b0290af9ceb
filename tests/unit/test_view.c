/*
 * test_view: an event as one line of text (tc_view_event_line), shared
 * by tocsinctl events list and incidents show: fields in order, folded
 * count, escaping, and a message cut at a whole character.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "view.h"

static char *
line(const struct tc_event *e, size_t max)
{
    struct tc_buf b;
    char *s;

    tc_buf_init(&b, 1u << 20);
    assert_int_equal(tc_view_event_line(&b, e, max), 0);
    s = strndup((const char *)tc_buf_head(&b), tc_buf_size(&b));
    tc_buf_close(&b);
    return s;
}

static struct tc_event
event(const char *msg)
{
    struct tc_event e;

    memset(&e, 0, sizeof(e));
    e.seq = 7;
    e.ts = 1796438132786067529LL; /* 2026-12-05T02:35:32.786Z */
    e.host = tc_str_c("web-01");
    e.rule = tc_str_c("app-error");
    e.sev = TC_SEV_ERROR;
    e.state = -1;
    e.message = tc_str_c(msg);
    e.count = 1;
    return e;
}

static void
test_fields(void **state)
{
    struct tc_event e = event("ERROR disk full");
    char *s;

    (void)state;
    s = line(&e, 0);
    assert_string_equal(
        s, "2026-12-05T02:35:32.786Z web-01 7 error app-error ERROR disk full");
    free(s);
    e.count = 12;
    e.rule = tc_str_c("");
    s = line(&e, 0);
    assert_string_equal(
        s,
        "2026-12-05T02:35:32.786Z web-01 7 error - count=12 ERROR disk full");
    free(s);
}

static void
test_escaped_and_cut(void **state)
{
    struct tc_event e = event("a\x1b]52;c;x\x07\nFORGED");
    char *s;

    (void)state;
    e.host = tc_str_c("h\rx");
    s = line(&e, 0);
    assert_string_equal(s, "2026-12-05T02:35:32.786Z h\\rx 7 error app-error "
                           "a\\x1b]52;c;x\\x07\\nFORGED");
    free(s);
    /* "h\xc3\xa9llo": a cut at 2 would split the e-acute; it backs off. */
    e = event("h\xc3\xa9llo");
    s = line(&e, 2);
    assert_string_equal(s,
                        "2026-12-05T02:35:32.786Z web-01 7 error app-error h");
    free(s);
    s = line(&e, 3);
    assert_string_equal(
        s, "2026-12-05T02:35:32.786Z web-01 7 error app-error h\xc3\xa9");
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_escaped_and_cut),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
