/*
 * test_dispatch: the pure hint dispatcher (collector/engine/dispatch.c):
 * each trigger (incident opened, problem joined, known error), the
 * dedupe key, templates filled or the action dropped with a note, and
 * a problem's fan-out to every host. Runbooks are parsed with the real
 * parser (runbooks_dep), so what is tested is what the step decides.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/dispatch.h"
#include "runbooks/runbooks.h"
#include "testutil.h"
#include "util.h"
#include "wire.h"

static const char rb_cache[] =
    "---\n"
    "id: cache-down\n"
    "title: Cache unreachable\n"
    "match:\n"
    "  class: [upstream-timeout]\n"
    "priority: 10\n"
    "action:\n"
    "  name: restart-cache\n"
    "  params: {unit: \"memcached.service\", target: \"{field.upstream}\","
    " on: \"{host}\"}\n"
    "---\n"
    "1. Check the cache.\n";

static const char rb_spread[] = "---\n"
                                "id: fleet\n"
                                "title: Fleet-wide failure\n"
                                "match:\n"
                                "  class: [upstream-timeout]\n"
                                "  problem_rule: [spread]\n"
                                "priority: 20\n"
                                "---\n"
                                "Look at the shared dependency.\n";

static const char rb_host[] = "---\n"
                              "id: restart-here\n"
                              "title: Restart here\n"
                              "match:\n"
                              "  class: [upstream-timeout]\n"
                              "action:\n"
                              "  name: restart\n"
                              "  params: {target: \"{host}\"}\n"
                              "---\n"
                              "Restart.\n";

static struct runbook_set *
set_of(const char *const *texts, size_t n)
{
    struct runbook_set *set = runbooks_empty();
    char err[512];

    set->v = tc_xcalloc(n, sizeof(*set->v));
    for (size_t i = 0; i < n; i++) {
        tu_capture_begin();
        assert_int_equal(runbook_parse("t.md", "t", texts[i], strlen(texts[i]),
                                       &set->v[set->n], err, sizeof(err)),
                         0);
        free(tu_capture_end());
        set->n++;
    }
    /* Load order: priority high first. */
    if (n == 2 && set->v[0].priority < set->v[1].priority) {
        struct runbook t = set->v[0];
        set->v[0] = set->v[1];
        set->v[1] = t;
    }
    return set;
}

static const struct runbook_kv fields[] = {{"upstream", "cache-01:11211"}};

static struct dispatch_subject
subject(int with_fields)
{
    struct dispatch_subject s = {0};

    s.incident_id = 7;
    s.rs.cls = "upstream-timeout";
    s.rs.host = "web-01";
    s.rs.severity = TC_SEV_ERROR;
    if (with_fields) {
        s.rs.fields = fields;
        s.rs.nfields = 1;
    }
    return s;
}

static void
test_incident_opened(void **state)
{
    const char *const texts[] = {rb_cache};
    struct runbook_set *set = set_of(texts, 1);
    struct dispatch_subject s = subject(1);
    struct dispatch_hints out = {0};

    (void)state;
    dispatch_incident_opened(set, &s, &out);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0].key, "runbook:cache-down|incident:7|web-01");
    assert_string_equal(out.v[0].agent, "web-01");
    assert_string_equal(out.v[0].source, "runbook:cache-down");
    assert_string_equal(out.v[0].title, "Cache unreachable");
    assert_string_equal(out.v[0].text, "1. Check the cache.\n");
    assert_int_equal(out.v[0].incident_id, 7);
    assert_int_equal(out.v[0].problem_id, 0);
    assert_non_null(out.v[0].action);
    assert_string_equal(out.v[0].action, "restart-cache");
    /* Sorted by key, every template filled. */
    assert_string_equal(out.v[0].params,
                        "{\"on\":\"web-01\",\"target\":\"cache-01:11211\","
                        "\"unit\":\"memcached.service\"}");
    assert_string_equal(out.v[0].note, "");
    /* The same trigger again: one hint, not two (dedupe by key). */
    dispatch_incident_opened(set, &s, &out);
    assert_int_equal(out.n, 1);
    dispatch_hints_free(&out);
    runbook_set_unref(set);
}

static void
test_no_match_no_hint(void **state)
{
    const char *const texts[] = {rb_cache};
    struct runbook_set *set = set_of(texts, 1);
    struct dispatch_subject s = subject(1);
    struct dispatch_hints out = {0};

    (void)state;
    s.rs.cls = "disk-full";
    dispatch_incident_opened(set, &s, &out);
    assert_int_equal(out.n, 0);
    /* No set (none recorded yet): nothing either. */
    s.rs.cls = "upstream-timeout";
    dispatch_incident_opened(NULL, &s, &out);
    assert_int_equal(out.n, 0);
    dispatch_hints_free(&out);
    runbook_set_unref(set);
}

static void
test_missing_field_drops_action(void **state)
{
    const char *const texts[] = {rb_cache};
    struct runbook_set *set = set_of(texts, 1);
    struct dispatch_subject s = subject(0);
    struct dispatch_hints out = {0};

    (void)state;
    dispatch_incident_opened(set, &s, &out);
    assert_int_equal(out.n, 1);
    /* Still a hint (the text helps), but no action half-filled. */
    assert_null(out.v[0].action);
    assert_string_equal(out.v[0].params, "{}");
    assert_non_null(strstr(out.v[0].note, "no action restart-cache"));
    assert_non_null(strstr(out.v[0].note, "target"));
    dispatch_hints_free(&out);
    runbook_set_unref(set);
}

static void
test_problem_fan_out(void **state)
{
    const char *const texts[] = {rb_cache, rb_spread};
    struct runbook_set *set = set_of(texts, 2);
    struct dispatch_subject s = subject(1), w2 = subject(0);
    const char *const hosts[] = {"cache-01", "web-01", "web-02"};
    const struct dispatch_subject *const subs[] = {NULL, &s, &w2};
    const int64_t own[] = {0, 7, 9};
    struct dispatch_problem p = {.id = 3,
                                 .rule = "spread",
                                 .title = "upstream-timeout on 2 hosts",
                                 .workaround = "",
                                 .hosts = hosts,
                                 .nhosts = 3,
                                 .subjects = subs};
    struct dispatch_hints out = {0};

    (void)state;
    w2.incident_id = 9;
    w2.rs.host = "web-02";
    dispatch_problem(set, &s, &p, &out);
    /* The problem rule makes the fleet runbook the best; one per host,
     * each about that host's own incident (none for cache-01). */
    assert_int_equal(out.n, 3);
    for (size_t i = 0; i < 3; i++) {
        char key[128];

        snprintf(key, sizeof(key), "runbook:fleet|problem:3|%s", hosts[i]);
        assert_string_equal(out.v[i].key, key);
        assert_string_equal(out.v[i].agent, hosts[i]);
        assert_int_equal(out.v[i].problem_id, 3);
        assert_int_equal(out.v[i].incident_id, own[i]);
        assert_null(out.v[i].action);
    }
    /* Another member joining: the same keys, nothing new. */
    s.incident_id = 8;
    dispatch_problem(set, &s, &p, &out);
    assert_int_equal(out.n, 3);
    dispatch_hints_free(&out);
    runbook_set_unref(set);
}

/*
 * Issue 12 item 6: a problem's hint to each host names that host's own
 * incident and fills its parameters from it, not from the incident
 * that triggered the dispatch (whose host's agent would refuse the
 * result as another host's); a host with no incident in the problem
 * gets a hint naming the problem only, filled from its name alone.
 */
static void
test_problem_own_incident(void **state)
{
    const char *const texts[] = {rb_cache};
    struct runbook_set *set = set_of(texts, 1);
    struct dispatch_subject s = subject(1), w2 = subject(0);
    static const struct runbook_kv f2[] = {{"upstream", "cache-01:6379"}};
    const char *const hosts[] = {"cache-01", "web-01", "web-02"};
    const struct dispatch_subject *const subs[] = {NULL, &s, &w2};
    struct dispatch_problem p = {.id = 3,
                                 .rule = "reference",
                                 .title = "incidents naming cache-01",
                                 .workaround = "",
                                 .hosts = hosts,
                                 .nhosts = 3,
                                 .subjects = subs};
    struct dispatch_hints out = {0};

    (void)state;
    w2.incident_id = 9;
    w2.rs.host = "web-02";
    w2.rs.fields = f2;
    w2.rs.nfields = 1;
    /* web-02 joined: the trigger is its incident, for every host. */
    dispatch_problem(set, &w2, &p, &out);
    assert_int_equal(out.n, 3);
    /* cache-01: no incident; {field.upstream} cannot be filled. */
    assert_string_equal(out.v[0].agent, "cache-01");
    assert_int_equal(out.v[0].incident_id, 0);
    assert_int_equal(out.v[0].problem_id, 3);
    assert_null(out.v[0].action);
    assert_non_null(strstr(out.v[0].note, "target"));
    /* web-01: its own incident 7 and its own fields. */
    assert_string_equal(out.v[1].agent, "web-01");
    assert_int_equal(out.v[1].incident_id, 7);
    assert_non_null(out.v[1].action);
    assert_string_equal(out.v[1].params,
                        "{\"on\":\"web-01\",\"target\":\"cache-01:11211\","
                        "\"unit\":\"memcached.service\"}");
    /* web-02: incident 9, its fields. */
    assert_string_equal(out.v[2].agent, "web-02");
    assert_int_equal(out.v[2].incident_id, 9);
    assert_string_equal(out.v[2].params,
                        "{\"on\":\"web-02\",\"target\":\"cache-01:6379\","
                        "\"unit\":\"memcached.service\"}");
    dispatch_hints_free(&out);
    /* A runbook with only {host}: the host with no incident gets the
     * action too, filled with its own name. */
    runbook_set_unref(set);
    set = set_of((const char *const[]){rb_host}, 1);
    dispatch_problem(set, &w2, &p, &out);
    assert_int_equal(out.n, 3);
    assert_int_equal(out.v[0].incident_id, 0);
    assert_non_null(out.v[0].action);
    assert_string_equal(out.v[0].params, "{\"target\":\"cache-01\"}");
    assert_string_equal(out.v[1].params, "{\"target\":\"web-01\"}");
    dispatch_hints_free(&out);
    runbook_set_unref(set);
}

static void
test_known_error(void **state)
{
    const char *const hosts[] = {"db-01", "web-01"};
    struct dispatch_subject s = subject(0);
    struct dispatch_problem p = {.id = 4,
                                 .rule = "reference",
                                 .title = "db-01 disk full",
                                 .known_error = 1,
                                 .workaround = "Rotate /var/log/db.",
                                 .hosts = hosts,
                                 .nhosts = 2};
    struct dispatch_hints out = {0};

    (void)state;
    /* Without any runbook: the workaround alone. */
    dispatch_problem(NULL, &s, &p, &out);
    assert_int_equal(out.n, 2);
    assert_string_equal(out.v[0].key, "known-error:4|problem:4|db-01");
    assert_string_equal(out.v[0].source, "known-error:4");
    assert_string_equal(out.v[0].title, "Known error: db-01 disk full");
    assert_string_equal(out.v[0].text, "Rotate /var/log/db.");
    assert_null(out.v[0].action);
    assert_string_equal(out.v[1].agent, "web-01");
    dispatch_hints_free(&out);
    /* Not (yet) a known error: nothing. */
    p.known_error = 0;
    dispatch_problem(NULL, &s, &p, &out);
    assert_int_equal(out.n, 0);
    /* A known error with an empty workaround: nothing to send. */
    p.known_error = 1;
    p.workaround = "";
    dispatch_problem(NULL, &s, &p, &out);
    assert_int_equal(out.n, 0);
    dispatch_hints_free(&out);
}

static void
test_text_cut(void **state)
{
    const char *const hosts[] = {"web-01"};
    struct dispatch_subject s = subject(0);
    char *big = tc_xmalloc(TC_HINT_MAX_TEXT + 100);
    struct dispatch_problem p = {.id = 5,
                                 .rule = "trend",
                                 .title = "t",
                                 .known_error = 1,
                                 .workaround = big,
                                 .hosts = hosts,
                                 .nhosts = 1};
    struct dispatch_hints out = {0};

    (void)state;
    /* "é" (2 bytes) across the limit: cut before it, not inside. */
    memset(big, 'a', TC_HINT_MAX_TEXT + 99);
    big[TC_HINT_MAX_TEXT + 99] = '\0';
    big[TC_HINT_MAX_TEXT - 1] = (char)0xC3;
    big[TC_HINT_MAX_TEXT] = (char)0xA9;
    dispatch_problem(NULL, &s, &p, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(strlen(out.v[0].text), TC_HINT_MAX_TEXT - 1);
    assert_non_null(strstr(out.v[0].note, "text cut"));
    dispatch_hints_free(&out);
    free(big);
}

/*
 * The recorded form of a set (the engine's input): parsed again it is
 * the same set (same hash, same order); a cut or malformed record is
 * refused, not half-read.
 */
static void
test_blob_round_trip(void **state)
{
    struct runbook_set *set = NULL, *back = NULL;
    const char *const texts[] = {rb_cache, rb_spread};
    const char *const names[] = {"cache.md", "fleet.md"};
    uint8_t *blob = NULL;
    size_t len = 0;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        size_t nl = strlen(names[i]), dl = strlen(texts[i]);

        blob = tc_xrealloc(blob, len + 8 + nl + dl);
        blob[len] = 0;
        blob[len + 1] = 0;
        blob[len + 2] = (uint8_t)(nl >> 8);
        blob[len + 3] = (uint8_t)nl;
        memcpy(blob + len + 4, names[i], nl);
        len += 4 + nl;
        blob[len] = 0;
        blob[len + 1] = 0;
        blob[len + 2] = (uint8_t)(dl >> 8);
        blob[len + 3] = (uint8_t)dl;
        memcpy(blob + len + 4, texts[i], dl);
        len += 4 + dl;
    }
    tu_capture_begin();
    assert_int_equal(runbooks_from_blob(blob, len, &set), 0);
    free(tu_capture_end());
    assert_int_equal(set->n, 2);
    assert_string_equal(set->v[0].id, "fleet"); /* priority 20 first */
    assert_int_equal(set->bloblen, len);
    assert_memory_equal(set->blob, blob, len);
    tu_capture_begin();
    assert_int_equal(runbooks_from_blob(set->blob, set->bloblen, &back), 0);
    free(tu_capture_end());
    assert_true(back->hash == set->hash);
    runbook_set_unref(back);
    /* Cut anywhere inside an entry: refused. */
    for (size_t cut = 1; cut < len; cut += 7) {
        back = NULL;
        tu_capture_begin();
        int rc = runbooks_from_blob(blob, len - cut, &back);
        free(tu_capture_end());
        if (rc == 0) {
            /* Only at an entry boundary (the first file alone). */
            assert_int_equal(back->n, 1);
            runbook_set_unref(back);
        } else {
            assert_int_equal(rc, -EINVAL);
            assert_null(back);
        }
    }
    /* A name with a NUL in it: refused. */
    blob[4] = '\0';
    assert_int_equal(runbooks_from_blob(blob, len, &back), -EINVAL);
    runbook_set_unref(set);
    free(blob);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incident_opened),
        cmocka_unit_test(test_no_match_no_hint),
        cmocka_unit_test(test_missing_field_drops_action),
        cmocka_unit_test(test_problem_fan_out),
        cmocka_unit_test(test_problem_own_incident),
        cmocka_unit_test(test_known_error),
        cmocka_unit_test(test_text_cut),
        cmocka_unit_test(test_blob_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
