/*
 * test_json: the string writer must always produce valid JSON: escapes,
 * control characters, and strict UTF-8 (invalid bytes become U+FFFD,
 * overlong forms and surrogates are invalid, 4-byte sequences are kept).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"

#define FFFD "\xef\xbf\xbd"

/* Encode n bytes of s and compare with the expected JSON text. */
static void
expect(const char *s, size_t n, const char *want)
{
    struct tc_buf b;

    tc_buf_init(&b, 1 << 16);
    assert_int_equal(tc_json_str(&b, s, n), 0);
    assert_int_equal(tc_buf_size(&b), strlen(want));
    assert_memory_equal(tc_buf_head(&b), want, strlen(want));
    tc_buf_close(&b);
}
#define EXPECT(lit, want) expect(lit, sizeof(lit) - 1, want)

static void
test_escapes(void **state)
{
    EXPECT("", "\"\"");
    EXPECT("plain text 123", "\"plain text 123\"");
    EXPECT("say \"hi\"", "\"say \\\"hi\\\"\"");
    EXPECT("C:\\dir", "\"C:\\\\dir\"");
    EXPECT("a/b", "\"a/b\"");
    /* DEL is legal raw JSON, but --json may be read on a terminal. */
    EXPECT("\x7f", "\"\\u007f\"");
}

static void
test_control(void **state)
{
    EXPECT("l1\nl2\r\t\b\f", "\"l1\\nl2\\r\\t\\b\\f\"");
    EXPECT("\x01\x1f", "\"\\u0001\\u001f\"");
    /* A NUL inside a log line is data, not a terminator. */
    EXPECT("a\0b", "\"a\\u0000b\"");
    EXPECT("\x1b[31mred", "\"\\u001b[31mred\"");
    /* OSC 52 (clipboard write) cannot reach a terminal. */
    EXPECT("\x1b]52;c;SGVsbG8=\x07", "\"\\u001b]52;c;SGVsbG8=\\u0007\"");
    /* C1 controls encoded in UTF-8 (U+009B is CSI) are escaped too; a
     * raw 0x9b is invalid UTF-8 and replaced. */
    EXPECT("\xc2\x9b"
           "2J",
           "\"\\u009b2J\"");
    EXPECT("\xc2\x80\xc2\x9f\xc2\xa0", "\"\\u0080\\u009f\xc2\xa0\"");
    EXPECT("\x9b"
           "2J",
           "\"" FFFD "2J\"");
}

static void
test_valid_utf8(void **state)
{
    EXPECT("caf\xc3\xa9", "\"caf\xc3\xa9\"");           /* U+00E9 */
    EXPECT("\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* U+20AC */
    EXPECT("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         /* U+D7FF */
    EXPECT("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");         /* U+FFFF */
    EXPECT("\xf0\x9f\x94\xa5", "\"\xf0\x9f\x94\xa5\""); /* U+1F525 */
    EXPECT("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    EXPECT("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* U+10000 */
}

static void
test_invalid_utf8(void **state)
{
    /* Stray continuation byte, and a lone lead byte at the end. */
    EXPECT("a\x80z", "\"a" FFFD "z\"");
    EXPECT("end\xc3", "\"end" FFFD "\"");
    /* Truncated 3-byte sequence: each byte is replaced on its own. */
    EXPECT("\xe2\x82x", "\"" FFFD FFFD "x\"");
    /* Overlong forms of '/' and NUL. */
    EXPECT("\xc0\xaf", "\"" FFFD FFFD "\"");
    EXPECT("\xc1\xbf", "\"" FFFD FFFD "\"");
    EXPECT("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"");
    EXPECT("\xf0\x80\x80\xaf", "\"" FFFD FFFD FFFD FFFD "\"");
    /* UTF-16 surrogates encoded as UTF-8 (CESU). */
    EXPECT("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");
    EXPECT("\xed\xbf\xbf", "\"" FFFD FFFD FFFD "\"");
    /* Beyond U+10FFFF, and bytes that never occur. */
    EXPECT("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
    EXPECT("\xf5\xff\xfe", "\"" FFFD FFFD FFFD "\"");
    /* A 4-byte sequence cut short before a quote. */
    EXPECT("\xf0\x9f\x94\"", "\"" FFFD FFFD FFFD "\\\"\"");
}

static void
test_numbers_keys(void **state)
{
    struct tc_buf b;

    tc_buf_init(&b, 1 << 16);
    assert_int_equal(tc_json_raw(&b, "{"), 0);
    assert_int_equal(tc_json_key(&b, "min"), 0);
    assert_int_equal(tc_json_i64(&b, INT64_MIN), 0);
    assert_int_equal(tc_json_raw(&b, ","), 0);
    assert_int_equal(tc_json_key(&b, "max"), 0);
    assert_int_equal(tc_json_u64(&b, UINT64_MAX), 0);
    assert_int_equal(tc_json_raw(&b, "}"), 0);
    assert_int_equal(tc_buf_append(&b, "", 1), 0);
    assert_string_equal((const char *)tc_buf_head(&b),
                        "{\"min\":-9223372036854775808,"
                        "\"max\":18446744073709551615}");
    tc_buf_close(&b);
}

/* Over the cap: -ENOBUFS and nothing half-written left behind. */
static void
test_nobufs(void **state)
{
    struct tc_buf b;

    tc_buf_init(&b, 16);
    assert_int_equal(tc_json_raw(&b, "["), 0);
    assert_int_equal(tc_json_str(&b, "0123456789abcdef", 16), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 1);
    assert_int_equal(tc_json_str(&b, "\n\n\n\n\n\n\n\n", 8), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 1);
    assert_int_equal(tc_json_key(&b, "0123456789abc"), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 1);
    assert_int_equal(tc_json_key(&b, "ab"), 0);
    assert_int_equal(tc_buf_size(&b), 6);
    assert_memory_equal(tc_buf_head(&b), "[\"ab\":", 6);
    tc_buf_close(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_valid_utf8),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_numbers_keys),
        cmocka_unit_test(test_nobufs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
