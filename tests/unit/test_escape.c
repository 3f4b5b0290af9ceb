/*
 * test_escape: the one escaping function behind every human-readable
 * output and log line: a table of hostile and harmless inputs and what
 * each must become, then truncation at a whole escape or character.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"
#include "log.h"
#include "testutil.h"

static int
setup(void **state)
{
    (void)state;
    return tu_setup("tocsin-escape");
}

struct row {
    const char *in;
    size_t len; /* input bytes (may hold NUL) */
    const char *want;
};
#define ROW(lit, want)                                                         \
    {                                                                          \
        lit, sizeof(lit) - 1, want                                             \
    }

static const struct row rows[] = {
    ROW("", ""),
    ROW("plain text 123 ~!@#$%^&*()", "plain text 123 ~!@#$%^&*()"),
    /* Backslashes are kept: the escapes are for safety, not reversible. */
    ROW("C:\\dir \\d+", "C:\\dir \\d+"),
    ROW("l1\nl2\r\tx", "l1\\nl2\\r\\tx"),
    ROW("a\0b", "a\\x00b"),
    ROW("\x01\x1f\x7f", "\\x01\\x1f\\x7f"),
    /* OSC 52: write the clipboard. */
    ROW("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),
    /* CSI: clear the screen, move the cursor home. */
    ROW("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
    /* A forged log line hidden behind a carriage return. */
    ROW("ok\r2026-01-01 fake", "ok\\r2026-01-01 fake"),
    /* C1 controls as raw bytes (invalid UTF-8): 8-bit CSI, OSC, NEL. */
    ROW("\x9b"
        "2J",
        "\\x9b2J"),
    ROW("\x9d"
        "52;c;x\x9c",
        "\\x9d52;c;x\\x9c"),
    ROW("\x85", "\\x85"),
    /* C1 controls encoded in UTF-8 (U+0080..U+009F). */
    ROW("\xc2\x9b"
        "2J",
        "\\u009b2J"),
    ROW("\xc2\x80\xc2\x85\xc2\x9f", "\\u0080\\u0085\\u009f"),
    /* U+00A0 (first printable after C1) is kept. */
    ROW("\xc2\xa0", "\xc2\xa0"),
    /* Valid multibyte UTF-8 is kept. */
    ROW("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5 \xe6\x97\xa5\xe6\x9c\xac",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5 \xe6\x97\xa5\xe6\x9c\xac"),
    ROW("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"),
    /* Line separators and bidi overrides (Trojan Source) are shown. */
    ROW("a\xe2\x80\xa8"
        "b\xe2\x80\xa9",
        "a\\u2028b\\u2029"),
    ROW("\xe2\x80\xae"
        "cod.exe",
        "\\u202ecod.exe"),
    ROW("\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069"),
    /* U+2027 and U+202F are ordinary. */
    ROW("\xe2\x80\xa7\xe2\x80\xaf", "\xe2\x80\xa7\xe2\x80\xaf"),
    /* Invalid UTF-8: each offending byte shown as \xHH. */
    ROW("a\x80z", "a\\x80z"),
    ROW("end\xc3", "end\\xc3"),
    ROW("\xe2\x82x", "\\xe2\\x82x"),
    ROW("\xc0\xaf", "\\xc0\\xaf"),                   /* overlong '/' */
    ROW("\xe0\x80\xaf", "\\xe0\\x80\\xaf"),          /* overlong '/' */
    ROW("\xed\xa0\x80", "\\xed\\xa0\\x80"),          /* a surrogate */
    ROW("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"), /* past U+10FFFF */
    ROW("\xff\xfe", "\\xff\\xfe"),
    /* An ESC hidden as an overlong two-byte form. */
    ROW("\xc0\x9b", "\\xc0\\x9b"),
};

static void
test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct tc_buf b;
        char fixed[256];
        size_t n;

        tc_buf_init(&b, 1 << 16);
        assert_int_equal(tc_escape_buf(&b, r->in, r->len), 0);
        assert_int_equal(tc_buf_size(&b), strlen(r->want));
        assert_memory_equal(tc_buf_head(&b), r->want, strlen(r->want));
        tc_buf_close(&b);

        n = tc_escape(fixed, sizeof(fixed), r->in, r->len);
        assert_int_equal(n, strlen(r->want));
        assert_string_equal(fixed, r->want);

        if (memchr(r->in, '\0', r->len) == NULL) {
            char *d = tc_escape_dup(r->in);
            assert_string_equal(d, r->want);
            free(d);
        }
    }
}

/* Every byte value alone: nothing below 0x20, DEL or 0x80-0xff passes. */
static void
test_every_byte(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++) {
        char in = (char)c, out[16];
        size_t n = tc_escape(out, sizeof(out), &in, 1);

        if (c >= 0x20 && c < 0x7f) {
            assert_int_equal(n, 1);
            assert_int_equal((unsigned char)out[0], c);
            continue;
        }
        assert_true(n >= 2);
        assert_int_equal(out[0], '\\');
        for (size_t i = 0; i < n; i++)
            assert_true(out[i] >= 0x20 && out[i] < 0x7f);
    }
}

/* A fixed buffer is cut at a whole escape or character, NUL-terminated. */
static void
test_truncation(void **state)
{
    char out[8];
    size_t n;

    (void)state;
    n = tc_escape(out, sizeof(out), "abcdefghijk", 11);
    assert_int_equal(n, 7);
    assert_string_equal(out, "abcdefg");
    n = tc_escape(out, sizeof(out), "abcde\x1b", 6);
    assert_int_equal(n, 5); /* "\x1b" does not fit after "abcde" */
    assert_string_equal(out, "abcde");
    n = tc_escape(out, sizeof(out), "abcde\xe2\x82\xac", 8);
    assert_int_equal(n, 5); /* the euro sign is not split */
    assert_string_equal(out, "abcde");
    n = tc_escape(out, 1, "abc", 3);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
    n = tc_escape(out, sizeof(out), "\xc2\x9b\xc2\x9b", 4);
    assert_int_equal(n, 6);
    assert_string_equal(out, "\\u009b");
}

/* Over the buffer's cap: -ENOBUFS and nothing half-written. */
static void
test_cap(void **state)
{
    struct tc_buf b;

    (void)state;
    tc_buf_init(&b, 8);
    assert_int_equal(tc_escape_buf(&b, "ab", 2), 0);
    assert_int_equal(tc_escape_buf(&b, "\x1b\x1b", 2), -ENOBUFS);
    assert_int_equal(tc_buf_size(&b), 2);
    tc_buf_close(&b);
}

/*
 * Every log line is escaped after formatting: an argument with a
 * newline, CR, ESC or C1 cannot forge a line or drive a terminal; the
 * logger's own newline is the only one.
 */
static void
test_log_escaped(void **state)
{
    char *out;
    size_t lines = 0;

    (void)state;
    log_init("test_escape", 1, 0);
    tu_capture_begin();
    log_warnx("peer said BYE: %s", "bye\n2026-01-01T00:00:00.000Z "
                                   "tocsin-collector[1]: FORGED\r\x1b]52;"
                                   "c;SGVsbG8=\x07\xc2\x9b\x9b");
    errno = ENOENT;
    log_warn("file %s", "a\x1b[2Jb");
    out = tu_capture_end();
    for (const char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;

        lines += c == '\n';
        assert_true(c == '\n' || (c >= 0x20 && c != 0x7f && c < 0x80));
    }
    assert_int_equal(lines, 2);
    tu_assert_contains(out, "peer said BYE: bye\\n2026-01-01T00:00:00.000Z "
                            "tocsin-collector[1]: FORGED\\r\\x1b]52;c;"
                            "SGVsbG8=\\x07\\u009b\\x9b\n");
    tu_assert_contains(out, "file a\\x1b[2Jb: No such file or directory\n");
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_cap),
        cmocka_unit_test_setup_teardown(test_log_escaped, setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
