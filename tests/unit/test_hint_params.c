/*
 * test_hint_params: the stored params JSON back into HINT pairs
 * (collector/pipeline/hint_params.c), as the hint sender reads it from
 * the store: what dispatch writes comes back as it was; everything a
 * HINT cannot carry (nesting, numbers, bad UTF-8, NUL, lone surrogates,
 * a key twice, over the limits, bytes after the object) is refused with
 * a reason and nothing left allocated; huge input is refused fast.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"
#include "pipeline/hint_params.h"
#include "util.h"

/* Parse a C string; the return code, p filled. */
static int
parse(const char *json, struct hint_params *p, const char **why)
{
    *why = NULL;
    return hint_params_parse(json, strlen(json), p, why);
}

static void
assert_pair(const struct hint_params *p, uint32_t i, const char *k,
            const char *v)
{
    assert_true(i < p->n);
    assert_int_equal(p->kv[i].key.len, strlen(k));
    assert_memory_equal(p->kv[i].key.ptr, k, strlen(k));
    assert_int_equal(p->kv[i].val.len, strlen(v));
    assert_memory_equal(p->kv[i].val.ptr, v, strlen(v));
}

static void
test_valid(void **state)
{
    struct hint_params p;
    const char *why;

    (void)state;
    assert_int_equal(
        parse("{\"target\":\"cache-01\",\"mode\":\"soft\"}", &p, &why), 0);
    assert_int_equal(p.n, 2);
    assert_pair(&p, 0, "target", "cache-01");
    assert_pair(&p, 1, "mode", "soft");
    hint_params_free(&p);
    assert_int_equal(p.n, 0);
    assert_null(p.kv);

    /* JSON white space between tokens; an empty value. */
    assert_int_equal(
        parse(" {\n\t\"a\" : \"\" ,\r\n \"b\":\"x y\" } \n", &p, &why), 0);
    assert_int_equal(p.n, 2);
    assert_pair(&p, 0, "a", "");
    assert_pair(&p, 1, "b", "x y");
    hint_params_free(&p);

    /* Raw UTF-8 (2, 3 and 4 bytes) is kept as it is. */
    assert_int_equal(parse("{\"w\":\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac "
                           "\xf0\x9f\x94\xa5\"}",
                           &p, &why),
                     0);
    assert_pair(&p, 0, "w", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\xa5");
    hint_params_free(&p);
}

static void
test_empty(void **state)
{
    struct hint_params p;
    const char *why;

    (void)state;
    assert_int_equal(parse("{}", &p, &why), 0);
    assert_int_equal(p.n, 0);
    assert_null(p.kv);
    hint_params_free(&p);
    assert_int_equal(parse(" { } ", &p, &why), 0);
    assert_int_equal(p.n, 0);
    hint_params_free(&p);
    /* Not an object at all. */
    assert_int_equal(parse("", &p, &why), -EINVAL);
    assert_string_equal(why, "not a JSON object");
    assert_int_equal(hint_params_parse(NULL, 0, &p, &why), -EINVAL);
    assert_string_equal(why, "no params");
}

static void
test_escapes(void **state)
{
    struct hint_params p;
    const char *why;

    (void)state;
    assert_int_equal(
        parse("{\"e\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}", &p, &why), 0);
    assert_pair(&p, 0, "e", "q\"b\\s/n\nr\rt\tb\bf\f");
    hint_params_free(&p);
    /* \u: ASCII, 2 and 3 bytes, a surrogate pair (U+1F525), a C1. */
    assert_int_equal(
        parse("{\"\\u006b\":\"\\u00e9\\u20AC\\ud83d\\udd25\\u009b\"}", &p,
              &why),
        0);
    assert_pair(&p, 0, "k", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\xa5\xc2\x9b");
    hint_params_free(&p);
}

/* Each input is refused with err and the reason. */
static void
test_invalid(void **state)
{
    static const struct {
        const char *in;
        int err;
        const char *why;
    } rows[] = {
        {"[]", -EINVAL, "not a JSON object"},
        {"{\"a\":{\"b\":\"c\"}}", -EINVAL, "a key or value is not a string"},
        {"{\"a\":[\"b\"]}", -EINVAL, "a key or value is not a string"},
        {"{\"a\":1}", -EINVAL, "a key or value is not a string"},
        {"{\"a\":null}", -EINVAL, "a key or value is not a string"},
        {"{\"a\":true}", -EINVAL, "a key or value is not a string"},
        {"{a:\"b\"}", -EINVAL, "a key or value is not a string"},
        {"{\"a\" \"b\"}", -EINVAL, "':' expected after a key"},
        {"{\"a\":\"b\" \"c\":\"d\"}", -EINVAL,
         "',' or '}' expected after a value"},
        {"{\"a\":\"b\",}", -EINVAL, "a key or value is not a string"},
        {"{,}", -EINVAL, "a key or value is not a string"},
        {"{\"a\":\"b\"", -EINVAL, "',' or '}' expected after a value"},
        {"{\"a\":\"b", -EINVAL, "unterminated string"},
        {"{\"a\":\"b\\", -EINVAL, "unterminated string"},
        {"{\"a\":\"b\"}x", -EINVAL, "bytes after the object"},
        {"{\"a\":\"b\"}{}", -EINVAL, "bytes after the object"},
        {"{\"\":\"b\"}", -EINVAL, "an empty key"},
        {"{\"a\":\"b\",\"a\":\"c\"}", -EINVAL, "a key given twice"},
        {"{\"a\":\"\\x41\"}", -EINVAL, "bad escape in a string"},
        {"{\"a\":\"\\u12\"}", -EINVAL, "bad \\u escape"},
        {"{\"a\":\"\\u12", -EINVAL, "bad \\u escape"},
        {"{\"a\":\"\\u12g4\"}", -EINVAL, "bad \\u escape"},
        {"{\"a\":\"\\u0000\"}", -EINVAL, "NUL in a string"},
        {"{\"a\":\"\\ud83d\"}", -EINVAL, "lone surrogate in a \\u escape"},
        {"{\"a\":\"\\ud83dx\"}", -EINVAL, "lone surrogate in a \\u escape"},
        {"{\"a\":\"\\ud83d\\u0041\"}", -EINVAL,
         "lone surrogate in a \\u escape"},
        {"{\"a\":\"\\udd25\"}", -EINVAL, "lone surrogate in a \\u escape"},
        {"{\"a\":\"tab\there\"}", -EINVAL, "control byte in a string"},
        {"{\"a\":\"nl\nhere\"}", -EINVAL, "control byte in a string"},
        {"{\"a\":\"esc\x1b[2J\"}", -EINVAL, "control byte in a string"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hint_params p;
        const char *why;

        print_message("%s\n", rows[i].in);
        assert_int_equal(parse(rows[i].in, &p, &why), rows[i].err);
        assert_non_null(why);
        assert_string_equal(why, rows[i].why);
        assert_int_equal(p.n, 0);
        assert_null(p.kv);
        assert_null(p.strs);
    }
}

/* Bytes that are not strictly valid UTF-8, and a NUL inside the input. */
static void
test_bad_utf8(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } rows[] = {
        {"\x80", 1},             /* a lone continuation byte */
        {"\xc3", 1},             /* cut short */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xe0\x80\xaf", 3},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3},     /* an encoded surrogate (CESU) */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xff", 1},
        {"a\0b", 3}, /* NUL as a raw byte */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char in[64];
        size_t n = 0;
        struct hint_params p;
        const char *why = NULL;
        int key;

        /* In a value, then in a key. */
        for (key = 0; key < 2; key++) {
            n = 0;
            memcpy(in + n, key ? "{\"" : "{\"k\":\"", key ? 2 : 6);
            n += key ? 2 : 6;
            memcpy(in + n, rows[i].bytes, rows[i].len);
            n += rows[i].len;
            memcpy(in + n, key ? "\":\"v\"}" : "\"}", key ? 6 : 2);
            n += key ? 6 : 2;
            assert_int_equal(hint_params_parse(in, n, &p, &why), -EINVAL);
            assert_true(strcmp(why, "invalid UTF-8 in a string") == 0 ||
                        strcmp(why, "control byte in a string") == 0);
            assert_int_equal(p.n, 0);
        }
    }
    /* len is obeyed: a valid object followed by bytes not given. */
    {
        struct hint_params p;
        const char *why;

        assert_int_equal(hint_params_parse("{\"a\":\"b\"}GARBAGE", 9, &p, &why),
                         0);
        assert_int_equal(p.n, 1);
        hint_params_free(&p);
        /* Cut inside the object: refused, nothing read past len. */
        assert_int_equal(hint_params_parse("{\"a\":\"b\"}", 7, &p, &why),
                         -EINVAL);
    }
}

/* The limits of wire.h: at the limit accepted, past it refused. */
static void
test_limits(void **state)
{
    struct tc_buf b;
    struct hint_params p;
    const char *why;
    char key[TC_HINT_MAX_PARAM_KEY + 2], val[TC_HINT_MAX_PARAM_VAL + 2];

    (void)state;
    memset(key, 'k', sizeof(key));
    memset(val, 'v', sizeof(val));
    for (int over = 0; over < 2; over++) {
        char *s;

        /* The longest key and value, then one byte more. */
        s = tc_xasprintf("{\"%.*s\":\"%.*s\"}",
                         (int)TC_HINT_MAX_PARAM_KEY + over, key,
                         (int)TC_HINT_MAX_PARAM_VAL, val);
        assert_int_equal(parse(s, &p, &why), over ? -EMSGSIZE : 0);
        if (over)
            assert_string_equal(why, "a key is too long");
        hint_params_free(&p);
        free(s);
        s = tc_xasprintf("{\"k\":\"%.*s\"}", (int)TC_HINT_MAX_PARAM_VAL + over,
                         val);
        assert_int_equal(parse(s, &p, &why), over ? -EMSGSIZE : 0);
        if (over)
            assert_string_equal(why, "a value is too long");
        hint_params_free(&p);
        free(s);
        /* A value at the limit written as escapes (6 bytes each). */
        tc_buf_init(&b, 1u << 20);
        tc_json_raw(&b, "{\"k\":\"");
        for (unsigned i = 0; i < TC_HINT_MAX_PARAM_VAL / 2 + over; i++)
            tc_json_raw(&b, "\\u00e9");
        tc_json_raw(&b, "\"}");
        tc_buf_append(&b, "", 1);
        assert_int_equal(parse((const char *)tc_buf_head(&b), &p, &why),
                         over ? -EMSGSIZE : 0);
        hint_params_free(&p);
        tc_buf_close(&b);
        /* TC_HINT_MAX_PARAMS entries, then one more. */
        tc_buf_init(&b, 1u << 20);
        tc_json_raw(&b, "{");
        for (unsigned i = 0; i < TC_HINT_MAX_PARAMS + (unsigned)over; i++) {
            char k[16];

            snprintf(k, sizeof(k), "p%u", i);
            if (i > 0)
                tc_json_raw(&b, ",");
            tc_json_key(&b, k);
            tc_json_str(&b, "x", 1);
        }
        tc_json_raw(&b, "}");
        tc_buf_append(&b, "", 1);
        assert_int_equal(parse((const char *)tc_buf_head(&b), &p, &why),
                         over ? -EMSGSIZE : 0);
        if (over)
            assert_string_equal(why, "too many params");
        else
            assert_int_equal(p.n, TC_HINT_MAX_PARAMS);
        hint_params_free(&p);
        tc_buf_close(&b);
    }
}

/*
 * Huge input: a 64 MiB value, and 64 MiB of white space after a valid
 * object. The first is refused at its limit without reading on; the
 * second is read once (the old parser took strlen of the rest of the
 * text for every string: quadratic in the number of params).
 */
static void
test_huge(void **state)
{
    size_t n = 64u << 20;
    char *s = tc_xmalloc(n + 1);
    struct hint_params p;
    const char *why;
    struct timespec t0, t1;

    (void)state;
    memset(s, 'v', n);
    memcpy(s, "{\"k\":\"", 6);
    s[n] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(hint_params_parse(s, n, &p, &why), -EMSGSIZE);
    assert_string_equal(why, "a value is too long");
    memset(s, ' ', n);
    memcpy(s, "{\"k\":\"v\"}", 9);
    assert_int_equal(hint_params_parse(s, n, &p, &why), 0);
    assert_int_equal(p.n, 1);
    hint_params_free(&p);
    /* Many short pairs: refused at TC_HINT_MAX_PARAMS, not read on. */
    {
        size_t off = 1;

        s[0] = '{';
        while (off + 16 < n) {
            off += (size_t)snprintf(s + off, 17, "\"k%07zu\":\"v\",",
                                    off % 10000000);
        }
        s[off - 1] = '}';
        s[off] = '\0';
        assert_int_equal(hint_params_parse(s, off, &p, &why), -EMSGSIZE);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Linear: well under a second even under the sanitizers. */
    assert_true((t1.tv_sec - t0.tv_sec) < 5);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),    cmocka_unit_test(test_empty),
        cmocka_unit_test(test_escapes),  cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_bad_utf8), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
