/*
 * test_api_req: what an API request asks for (collector/http/api_req.c)
 * and the base64url under its cursors (common/b64.c): routes, ids,
 * query parameters and their limits, each refusal with its status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"
#include "http/api_req.h"

static int
parse(const char *method, const char *path, struct api_req *r)
{
    char err[256];

    return api_req_parse(method, strlen(method), path, strlen(path), 500, r,
                         err, sizeof(err));
}

static void
test_b64(void **state)
{
    static const char *const vec[][2] = {
        {"", ""},        {"f", "Zg"},        {"fo", "Zm8"},
        {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"\xfb\xff", "-_8"},
    };
    char out[32];
    uint8_t dec[32];

    (void)state;
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        size_t n = strlen(vec[i][0]);

        assert_int_equal(tc_b64url_encode(vec[i][0], n, out, sizeof(out)),
                         strlen(vec[i][1]));
        assert_string_equal(out, vec[i][1]);
        assert_int_equal(tc_b64url_decode(out, strlen(out), dec, sizeof(dec)),
                         n);
        assert_memory_equal(dec, vec[i][0], n);
    }
    /* Padding, other alphabets, a lone char, stray bits: refused. */
    assert_true(tc_b64url_decode("Zg==", 4, dec, sizeof(dec)) < 0);
    assert_true(tc_b64url_decode("+/8", 3, dec, sizeof(dec)) < 0);
    assert_true(tc_b64url_decode("Z", 1, dec, sizeof(dec)) < 0);
    assert_true(tc_b64url_decode("Zh", 2, dec, sizeof(dec)) < 0);
    assert_true(tc_b64url_decode("Zm9v", 4, dec, 2) < 0);
    assert_true(tc_b64url_encode("foo", 3, out, 4) < 0);
}

static void
test_cursor(void **state)
{
    char c[API_CURSOR_MAX + 1];
    int64_t id;

    (void)state;
    assert_int_equal(api_cursor_encode(123, c, sizeof(c)), 0);
    assert_string_equal(c, "aTEyMw"); /* "i123" */
    assert_int_equal(api_cursor_decode(c, strlen(c), &id), 0);
    assert_int_equal(id, 123);
    assert_int_equal(api_cursor_encode(INT64_MAX, c, sizeof(c)), 0);
    assert_int_equal(api_cursor_decode(c, strlen(c), &id), 0);
    assert_true(id == INT64_MAX);
    assert_true(api_cursor_decode("aTA", 3, &id) < 0);  /* "i0" */
    assert_true(api_cursor_decode("eDE", 3, &id) < 0);  /* "x1" */
    assert_true(api_cursor_decode("aQ", 2, &id) < 0);   /* "i" */
    assert_true(api_cursor_decode("aTAx", 4, &id) < 0); /* "i01" */
    assert_true(api_cursor_decode("", 0, &id) < 0);
}

/* order=priority's cursor, the summary route and their refusals. */
static void
test_order_summary(void **state)
{
    char c[API_CURSOR_MAX + 1], path[128];
    struct api_req r;
    int64_t id;
    int prio;

    (void)state;
    assert_int_equal(api_cursor_encode_prio(3, 4, c, sizeof(c)), 0);
    assert_string_equal(c, "cDNpNA"); /* "p3i4" */
    assert_int_equal(api_cursor_decode_any(c, strlen(c), &prio, &id), 0);
    assert_int_equal(prio, 3);
    assert_int_equal(id, 4);
    assert_int_equal(api_cursor_decode_any("aTEyMw", 6, &prio, &id), 0);
    assert_int_equal(prio, 0);
    assert_int_equal(id, 123);
    assert_true(api_cursor_encode_prio(6, 4, c, sizeof(c)) < 0);
    assert_true(api_cursor_decode_any("cDZpNA", 6, &prio, &id) < 0); /* p6 */
    assert_true(api_cursor_decode_any("cDNpMA", 6, &prio, &id) < 0); /* i0 */
    assert_true(api_cursor_decode_any("cDM", 3, &prio, &id) < 0);    /* p3 */
    assert_true(api_cursor_decode("cDNpNA", 6, &id) < 0); /* not an "i" */

    assert_int_equal(
        parse("GET", "/api/v1/incidents?state=open&order=priority", &r), 0);
    assert_int_equal(r.route, API_R_INCIDENTS);
    assert_true(r.by_priority);
    snprintf(path, sizeof(path),
             "/api/v1/incidents?state=open&order=priority&cursor=%s", c);
    assert_int_equal(parse("GET", path, &r), 0);
    assert_int_equal(r.cursor_prio, 3);
    assert_int_equal(r.before, 4);
    /* A cursor keeps the order it came from; priority needs a state. */
    snprintf(path, sizeof(path), "/api/v1/incidents?state=open&cursor=%s", c);
    assert_int_equal(parse("GET", path, &r), 400);
    assert_int_equal(
        parse("GET",
              "/api/v1/incidents?state=open&order=priority&cursor=aTEyMw", &r),
        400);
    assert_int_equal(parse("GET", "/api/v1/incidents?order=priority", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?state=open&order=x", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/problems?order=priority", &r), 400);
    snprintf(path, sizeof(path), "/api/v1/hints?cursor=%s", c);
    assert_int_equal(parse("GET", path, &r), 400);
    assert_int_equal(parse("GET", "/api/v1/hints?order=newest", &r), 0);
    assert_true(r.newest);
    assert_int_equal(parse("GET", "/api/v1/hints?order=priority", &r), 400);

    assert_int_equal(parse("GET", "/api/v1/summary", &r), 0);
    assert_int_equal(r.route, API_R_SUMMARY);
    assert_int_equal(parse("GET", "/api/v1/summary?limit=1", &r), 400);
    assert_int_equal(parse("POST", "/api/v1/summary", &r), 405);
    assert_int_equal(parse("GET", "/api/v1/summary/1", &r), 404);
}

static void
test_routes(void **state)
{
    struct api_req r;

    (void)state;
    assert_int_equal(parse("GET", "/api/v1/incidents", &r), 0);
    assert_int_equal(r.route, API_R_INCIDENTS);
    assert_int_equal(r.limit, API_PAGE_DEFAULT);
    assert_int_equal(r.write, 0);
    assert_int_equal(parse("GET", "/api/v1/incidents/42", &r), 0);
    assert_int_equal(r.route, API_R_INCIDENT);
    assert_int_equal(r.id, 42);
    assert_int_equal(parse("GET", "/api/v1/problems/9223372036854775807", &r),
                     0);
    assert_true(r.id == INT64_MAX);
    assert_int_equal(parse("POST", "/api/v1/problems/3/known-error", &r), 0);
    assert_int_equal(r.route, API_R_PROBLEM_ACTION);
    assert_string_equal(r.verb, "known-error");
    assert_int_equal(r.write, 1);
    assert_true(api_route_writes(r.route));

    assert_int_equal(parse("GET", "/api/v1/agents", &r), 0);
    assert_int_equal(r.route, API_R_AGENTS);
    assert_int_equal(parse("GET", "/api/v1/agents?limit=5", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/agents/web-01", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/silences?all=true", &r), 0);
    assert_int_equal(r.route, API_R_SILENCES);
    assert_int_equal(r.all, 1);
    assert_int_equal(parse("GET", "/api/v1/silences?all=yes", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/silences?limit=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?all=true", &r), 400);
    assert_int_equal(
        parse("GET", "/api/v1/hints?agent=web-02&state=acked&limit=2", &r), 0);
    assert_int_equal(r.route, API_R_HINTS);
    assert_string_equal(r.agent, "web-02");
    assert_string_equal(r.state, "acked");
    assert_int_equal(parse("GET", "/api/v1/hints?state=open", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/hints/1", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/hints?state=refused", &r), 0);
    assert_int_equal(parse("GET", "/metrics", &r), 0);
    assert_int_equal(r.route, API_R_METRICS);
    assert_int_equal(r.write, 0);
    assert_int_equal(parse("POST", "/metrics", &r), 405);
    assert_int_equal(parse("GET", "/metrics?name=x", &r), 400);
    assert_int_equal(parse("GET", "/metrics?", &r), 400);
    assert_int_equal(parse("GET", "/metrics/", &r), 404);
    assert_int_equal(parse("GET", "/metricsx", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/metrics", &r), 404);

    assert_int_equal(parse("GET", "/api/v1/problems/9223372036854775808", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/incidents/0", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents/..", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents/", &r), 404);
    assert_int_equal(parse("GET", "/api/v1//incidents", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/../v1/incidents", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/incidents/1/ack/x", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/incidents/1/rm", &r), 404);
    assert_int_equal(parse("GET", "/api/v1/incidents/1/ack", &r), 405);
    assert_int_equal(parse("POST", "/api/v1/incidents", &r), 405);
    assert_int_equal(parse("HEAD", "/api/v1/incidents", &r), 405);
}

static void
test_query(void **state)
{
    struct api_req r;
    char big[API_PATH_MAX + 16];

    (void)state;
    assert_int_equal(
        parse("GET",
              "/api/v1/incidents?state=open&priority=p2&host=web%2D01+a"
              "&limit=500&cursor=aTEyMw&",
              &r),
        0);
    assert_string_equal(r.state, "open");
    assert_int_equal(r.priority, 2);
    assert_string_equal(r.host, "web-01 a");
    assert_int_equal(r.limit, 500);
    assert_int_equal(r.before, 123);
    assert_int_equal(parse("GET", "/api/v1/problems?state=known_error", &r), 0);
    assert_string_equal(r.state, "known_error");

    assert_int_equal(parse("GET", "/api/v1/incidents?limit=501", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?limit=0", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?limit=", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?limit", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?limit=1&limit=2", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/incidents?x=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?host=%0a", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?host=%00", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?host=%4", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?host=%", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/problems?priority=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/problems?state=acknowledged", &r),
                     400);
    /* A show takes no parameter at all. */
    assert_int_equal(parse("GET", "/api/v1/incidents/1?limit=1", &r), 400);
    memset(big, 0, sizeof(big));
    strcpy(big, "/api/v1/incidents?host=");
    memset(big + strlen(big), 'a', API_VALUE_MAX + 1);
    assert_int_equal(parse("GET", big, &r), 400);
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "/api/v1/incidents?", 18);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse("GET", big, &r), 414);
}

/* GET /api/v1/events (newest first, paged), /stats and /runbooks. */
static void
test_events_stats(void **state)
{
    struct api_req r;
    char c[API_CURSOR_MAX + 1], path[128];

    (void)state;
    assert_int_equal(parse("GET", "/api/v1/events", &r), 0);
    assert_int_equal(r.route, API_R_EVENTS);
    assert_int_equal(r.write, 0);
    assert_int_equal(r.before, 0);
    assert_int_equal(parse("GET", "/api/v1/events?host=web-01&limit=7", &r), 0);
    assert_string_equal(r.host, "web-01");
    assert_int_equal(r.limit, 7);
    /* The cursor carries (batch, index) in one position. */
    assert_int_equal(api_cursor_encode(api_event_pos(5, 0), c, sizeof(c)), 0);
    snprintf(path, sizeof(path), "/api/v1/events?cursor=%s", c);
    assert_int_equal(parse("GET", path, &r), 0);
    assert_true(r.before >> API_EVENT_IDX_BITS == 5);
    assert_true((r.before & ((1 << API_EVENT_IDX_BITS) - 1)) == 0);
    assert_true(api_event_pos(5, 9999) < api_event_pos(6, 0));
    assert_int_equal(parse("GET", "/api/v1/events?cursor=x", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/events?state=open", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/events?agent=web-01", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/events?host=a%01b", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/events?limit=501", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/events/1", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/events", &r), 405);

    assert_int_equal(parse("GET", "/api/v1/stats", &r), 0);
    assert_int_equal(r.route, API_R_STATS);
    assert_int_equal(r.since_ms, 0);
    assert_string_equal(r.by, "");
    assert_int_equal(parse("GET", "/api/v1/stats?since=24h&by=host", &r), 0);
    assert_int_equal(r.since_ms, 86400000);
    assert_string_equal(r.by, "host");
    assert_int_equal(parse("GET", "/api/v1/stats?by=service", &r), 0);
    assert_int_equal(parse("GET", "/api/v1/stats?by=all", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/stats?since=0", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/stats?since=7", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/stats?since=99999d", &r), 400);
    assert_int_equal(
        parse("GET", "/api/v1/stats?since=99999999999999999999d", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/stats?limit=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?since=1d", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/incidents?by=host", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/stats/1", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/stats", &r), 405);

    assert_int_equal(parse("GET", "/api/v1/runbooks", &r), 0);
    assert_int_equal(r.route, API_R_RUNBOOKS);
    assert_int_equal(r.write, 0);
    assert_int_equal(parse("GET", "/api/v1/runbooks?limit=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/runbooks/tls", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/runbooks", &r), 405);
}

/* tocsinctl --url's own routes: an incident's events, silence writes,
 * the silenced filter. */
static void
test_ctl_url_routes(void **state)
{
    struct api_req r;

    (void)state;
    assert_int_equal(
        parse("GET", "/api/v1/incidents/7/events?limit=10&scan=5000", &r), 0);
    assert_int_equal(r.route, API_R_INCIDENT_EVENTS);
    assert_int_equal(r.id, 7);
    assert_int_equal(r.scan, 5000);
    assert_int_equal(r.write, 0);
    assert_int_equal(parse("GET", "/api/v1/incidents/7/events", &r), 0);
    assert_int_equal(r.scan, 0);
    assert_int_equal(parse("GET", "/api/v1/incidents/7/events?scan=5001", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/incidents/7/events?scan=0", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/incidents/7/events?host=a", &r),
                     400);
    assert_int_equal(parse("GET", "/api/v1/incidents?scan=5", &r), 400);
    assert_int_equal(parse("POST", "/api/v1/incidents/7/events", &r), 405);
    assert_int_equal(parse("GET", "/api/v1/problems/7/events", &r), 404);

    assert_int_equal(parse("POST", "/api/v1/silences", &r), 0);
    assert_int_equal(r.route, API_R_SILENCE_ADD);
    assert_int_equal(r.write, 1);
    assert_true(api_route_writes(r.route));
    assert_int_equal(parse("POST", "/api/v1/silences?all=true", &r), 400);
    assert_int_equal(parse("POST", "/api/v1/silences/3/expire", &r), 0);
    assert_int_equal(r.route, API_R_SILENCE_EXPIRE);
    assert_int_equal(r.id, 3);
    assert_string_equal(r.verb, "expire");
    assert_true(api_route_writes(r.route));
    assert_int_equal(parse("GET", "/api/v1/silences/3/expire", &r), 405);
    assert_int_equal(parse("POST", "/api/v1/silences/3/delete", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/silences/3", &r), 404);
    assert_int_equal(parse("POST", "/api/v1/silences/0/expire", &r), 400);
    assert_int_equal(parse("PUT", "/api/v1/silences", &r), 405);

    assert_int_equal(parse("GET", "/api/v1/incidents?silenced=true", &r), 0);
    assert_int_equal(r.silenced, 1);
    assert_int_equal(parse("GET", "/api/v1/incidents?silenced=1", &r), 400);
    assert_int_equal(parse("GET", "/api/v1/problems?silenced=true", &r), 400);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_order_summary),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_events_stats),
        cmocka_unit_test(test_ctl_url_routes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
