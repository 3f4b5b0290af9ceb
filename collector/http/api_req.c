/*
 * api_req: route, path id and query string of an API request
 * (api_req.h). Every byte is checked here; nothing is decoded twice.
 */
#include "http/api_req.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "b64.h"

static int refuse(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
refuse(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* A positive decimal without sign or leading zero, up to INT64_MAX. */
static int
parse_id(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 0 || n > 19 || s[0] == '0')
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int
api_cursor_encode(int64_t last, char *out, size_t outlen)
{
    char raw[24];
    int n = snprintf(raw, sizeof(raw), "i%lld", (long long)last);

    if (n < 0 || (size_t)n >= sizeof(raw) || outlen < API_CURSOR_MAX + 1)
        return -ENOBUFS;
    return tc_b64url_encode(raw, (size_t)n, out, outlen) < 0 ? -ENOBUFS : 0;
}

int
api_cursor_decode(const char *s, size_t n, int64_t *last)
{
    uint8_t raw[24];
    int len;

    if (n == 0 || n > API_CURSOR_MAX)
        return -EINVAL;
    if ((len = tc_b64url_decode(s, n, raw, sizeof(raw))) < 2 || raw[0] != 'i')
        return -EINVAL;
    return parse_id((const char *)raw + 1, (size_t)len - 1, last);
}

int
api_cursor_encode_prio(int prio, int64_t last, char *out, size_t outlen)
{
    char raw[24];
    int n;

    if (prio < 1 || prio > 5)
        return -EINVAL;
    n = snprintf(raw, sizeof(raw), "p%di%lld", prio, (long long)last);
    if (n < 0 || (size_t)n >= sizeof(raw) || outlen < API_CURSOR_MAX + 1)
        return -ENOBUFS;
    return tc_b64url_encode(raw, (size_t)n, out, outlen) < 0 ? -ENOBUFS : 0;
}

int
api_cursor_decode_any(const char *s, size_t n, int *prio, int64_t *last)
{
    uint8_t raw[24];
    int len;

    if (n == 0 || n > API_CURSOR_MAX)
        return -EINVAL;
    if ((len = tc_b64url_decode(s, n, raw, sizeof(raw))) < 2)
        return -EINVAL;
    if (raw[0] == 'i') {
        *prio = 0;
        return parse_id((const char *)raw + 1, (size_t)len - 1, last);
    }
    if (raw[0] != 'p' || len < 4 || raw[1] < '1' || raw[1] > '5' ||
        raw[2] != 'i')
        return -EINVAL;
    *prio = raw[1] - '0';
    return parse_id((const char *)raw + 3, (size_t)len - 3, last);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decode s[0..n) into out (API_VALUE_MAX + 1 bytes), '+' as a
 * space. Refuses a broken escape, a NUL, control characters and a
 * value longer than API_VALUE_MAX. Returns the length or -EINVAL.
 */
static int
pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (i + 2 >= n)
                return -EINVAL;
            if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return -EINVAL;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
        if (o == API_VALUE_MAX)
            return -EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

/*
 * A duration as tocsinctl stats --since takes it (conf.h's syntax: a
 * positive integer and a unit ms, s, m, h or d), in ms, at most ten
 * years. Here rather than tc_conf_parse_duration: this file links
 * common's core only (libyaml stays out of the fuzz target).
 */
static int
parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *u;
        uint64_t ms;
    } units[] = {{"ms", 1},
                 {"s", 1000},
                 {"m", 60000},
                 {"h", 3600000},
                 {"d", 86400000ULL}};
    uint64_t v = 0;
    size_t i = 0;

    while (s[i] >= '0' && s[i] <= '9' && i < 8)
        v = v * 10 + (uint64_t)(s[i++] - '0');
    if (i == 0 || v == 0 || (s[i] >= '0' && s[i] <= '9'))
        return -EINVAL;
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
        if (strcmp(s + i, units[k].u) == 0) {
            *ms = v * units[k].ms;
            return *ms <= 10 * 366 * 86400000ULL ? 0 : -EINVAL;
        }
    return -EINVAL;
}

/* Which query parameters each route takes. */
#define P_LIMIT 0x1
#define P_CURSOR 0x2
#define P_STATE 0x4
#define P_PRIORITY 0x8
#define P_HOST 0x10
#define P_ALL 0x20
#define P_AGENT 0x40
#define P_SINCE 0x80
#define P_BY 0x100
#define P_SCAN 0x200
#define P_SILENCED 0x400
#define P_ORDER 0x800

static const struct {
    const char *name;
    unsigned bit;
} params[] = {
    {"limit", P_LIMIT},       {"cursor", P_CURSOR}, {"state", P_STATE},
    {"priority", P_PRIORITY}, {"host", P_HOST},     {"all", P_ALL},
    {"agent", P_AGENT},       {"since", P_SINCE},   {"by", P_BY},
    {"silenced", P_SILENCED}, {"scan", P_SCAN},     {"order", P_ORDER},
};

static const char *const incident_states[] = {"open", "acknowledged",
                                              "resolved", "closed", NULL};
static const char *const hint_states[] = {"pending", "sent", "acked", "refused",
                                          NULL};
static const char *const stats_by[] = {"priority", "service", "host", "rule",
                                       NULL};
static const char *const problem_states[] = {
    "open", "investigating", "known_error", "resolved", "closed", NULL};

/* The operator actions (tocsinctl incidents VERB, problems VERB). */
static const char *const incident_verbs[] = {"ack", "resolve", "close", "note",
                                             NULL};
static const char *const problem_verbs[] = {
    "investigate", "known-error", "resolve", "close",  "link",
    "unlink",      "note",        "rca",     "review", NULL};

static int
one_of(const char *v, const char *const *set)
{
    for (size_t i = 0; set[i] != NULL; i++)
        if (strcmp(v, set[i]) == 0)
            return 1;
    return 0;
}

static int
parse_query(const char *q, size_t n, unsigned allowed, uint32_t max_page,
            struct api_req *r, char *err, size_t errlen)
{
    unsigned seen = 0;
    size_t i = 0, count = 0;
    char val[API_VALUE_MAX + 1];

    while (i < n) {
        size_t end = i, eq;
        unsigned bit = 0;
        size_t k;

        while (end < n && q[end] != '&')
            end++;
        if (end == i) { /* "a=1&&b=2", a trailing '&' */
            i = end + 1;
            continue;
        }
        if (++count > API_QUERY_PARAMS)
            return refuse(err, errlen, 400, "more than %d query parameters",
                          API_QUERY_PARAMS);
        for (eq = i; eq < end && q[eq] != '='; eq++)
            ;
        for (k = 0; k < sizeof(params) / sizeof(params[0]); k++)
            if (strlen(params[k].name) == eq - i &&
                memcmp(params[k].name, q + i, eq - i) == 0) {
                bit = params[k].bit;
                break;
            }
        if (bit == 0 || !(allowed & bit)) {
            char name[40];
            int nl = pct_decode(q + i, eq - i < 32 ? eq - i : 32, name);

            return refuse(err, errlen, 400, "unknown query parameter '%s' here",
                          nl >= 0 ? name : "?");
        }
        if (seen & bit)
            return refuse(err, errlen, 400, "query parameter '%s' repeated",
                          params[k].name);
        seen |= bit;
        if (eq == end || pct_decode(q + eq + 1, end - eq - 1, val) <= 0)
            return refuse(err, errlen, 400,
                          "query parameter '%s': an empty or malformed value",
                          params[k].name);
        switch (bit) {
        case P_LIMIT: {
            int64_t v;

            if (parse_id(val, strlen(val), &v) < 0 || v > max_page)
                return refuse(err, errlen, 400, "limit: a number from 1 to %u",
                              max_page);
            r->limit = (uint32_t)v;
            break;
        }
        case P_CURSOR:
            if (api_cursor_decode_any(val, strlen(val), &r->cursor_prio,
                                      &r->before) < 0 ||
                (r->cursor_prio != 0 && r->route != API_R_INCIDENTS))
                return refuse(err, errlen, 400,
                              "cursor: not a cursor this API gave");
            break;
        case P_ORDER:
            if (r->route == API_R_HINTS) {
                if (strcmp(val, "newest") != 0 && strcmp(val, "oldest") != 0)
                    return refuse(err, errlen, 400, "order: newest or oldest");
                r->newest = val[0] == 'n';
                break;
            }
            if (strcmp(val, "priority") != 0 && strcmp(val, "id") != 0)
                return refuse(err, errlen, 400, "order: priority or id");
            r->by_priority = val[0] == 'p';
            break;
        case P_STATE:
            if (!one_of(val, r->route == API_R_INCIDENTS ? incident_states
                             : r->route == API_R_HINTS   ? hint_states
                                                         : problem_states))
                return refuse(err, errlen, 400, "state: unknown state");
            snprintf(r->state, sizeof(r->state), "%.31s", val);
            break;
        case P_PRIORITY: {
            const char *p = val;

            if (p[0] == 'P' || p[0] == 'p')
                p++;
            if (p[0] < '1' || p[0] > '5' || p[1] != '\0')
                return refuse(err, errlen, 400, "priority: P1 to P5");
            r->priority = p[0] - '0';
            break;
        }
        case P_HOST:
            snprintf(r->host, sizeof(r->host), "%s", val);
            break;
        case P_AGENT:
            snprintf(r->agent, sizeof(r->agent), "%s", val);
            break;
        case P_SINCE:
            /* As tocsinctl stats --since: 24h, 7d; at most ten years. */
            if (parse_duration(val, &r->since_ms) < 0)
                return refuse(err, errlen, 400,
                              "since: a duration such as 24h or 7d");
            break;
        case P_BY:
            if (!one_of(val, stats_by))
                return refuse(err, errlen, 400,
                              "by: priority, service, host or rule");
            snprintf(r->by, sizeof(r->by), "%.15s", val);
            break;
        case P_SCAN: {
            int64_t v;

            if (parse_id(val, strlen(val), &v) < 0 || v > API_SCAN_MAX)
                return refuse(err, errlen, 400, "scan: a number from 1 to %d",
                              API_SCAN_MAX);
            r->scan = (uint32_t)v;
            break;
        }
        case P_ALL:
            if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
                return refuse(err, errlen, 400, "all: true or false");
            r->all = val[0] == 't';
            break;
        case P_SILENCED:
            if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
                return refuse(err, errlen, 400, "silenced: true or false");
            r->silenced = val[0] == 't';
            break;
        }
        i = end + 1;
    }
    /*
     * order=priority reads incidents_state_prio, one state's range; and
     * a cursor continues the order it came from (the other's key would
     * skip or repeat rows).
     */
    if (r->by_priority && r->state[0] == '\0')
        return refuse(err, errlen, 400, "order=priority needs state=");
    if ((seen & P_CURSOR) && (r->cursor_prio != 0) != r->by_priority)
        return refuse(err, errlen, 400,
                      "cursor: from a listing in another order");
    return 0;
}

int
api_req_parse(const char *method, size_t mlen, const char *path, size_t plen,
              uint32_t max_page, struct api_req *r, char *err, size_t errlen)
{
    static const char prefix[] = "/api/v1/";
    const char *q = memchr(path, '?', plen);
    size_t pl = q ? (size_t)(q - path) : plen, ql = q ? plen - pl - 1 : 0;
    const char *seg[4];
    size_t segl[4], nseg = 0, i;
    int get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    int post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    unsigned allowed = 0;

    memset(r, 0, sizeof(*r));
    r->limit = API_PAGE_DEFAULT < max_page ? API_PAGE_DEFAULT : max_page;
    if (plen > API_PATH_MAX)
        return refuse(err, errlen, 414, "request target over %d bytes",
                      API_PATH_MAX);
    /* Prometheus's path, outside /api/v1: no parameter to parse. */
    if (pl == 8 && memcmp(path, "/metrics", 8) == 0) {
        if (!get)
            return refuse(err, errlen, 405, "/metrics takes GET only");
        if (q != NULL)
            return refuse(err, errlen, 400, "/metrics takes no parameters");
        r->route = API_R_METRICS;
        return 0;
    }
    if (pl < sizeof(prefix) - 1 ||
        memcmp(path, prefix, sizeof(prefix) - 1) != 0)
        return refuse(err, errlen, 404, "no such resource");
    /* Split the rest on '/': at most 3 segments, none empty. */
    for (i = sizeof(prefix) - 1; i <= pl;) {
        size_t end = i;

        while (end < pl && path[end] != '/')
            end++;
        if (nseg == 3 || end == i)
            return refuse(err, errlen, 404, "no such resource");
        seg[nseg] = path + i;
        segl[nseg++] = end - i;
        i = end + 1;
    }
    if (segl[0] == 9 && memcmp(seg[0], "incidents", 9) == 0)
        r->route = API_R_INCIDENTS;
    else if (segl[0] == 8 && memcmp(seg[0], "problems", 8) == 0)
        r->route = API_R_PROBLEMS;
    else if (segl[0] == 6 && memcmp(seg[0], "agents", 6) == 0 && nseg == 1)
        r->route = API_R_AGENTS;
    else if (segl[0] == 8 && memcmp(seg[0], "silences", 8) == 0 &&
             (nseg == 1 || nseg == 3))
        r->route = API_R_SILENCES;
    else if (segl[0] == 5 && memcmp(seg[0], "hints", 5) == 0 && nseg == 1)
        r->route = API_R_HINTS;
    else if (segl[0] == 6 && memcmp(seg[0], "events", 6) == 0 && nseg == 1)
        r->route = API_R_EVENTS;
    else if (segl[0] == 5 && memcmp(seg[0], "stats", 5) == 0 && nseg == 1)
        r->route = API_R_STATS;
    else if (segl[0] == 8 && memcmp(seg[0], "runbooks", 8) == 0 && nseg == 1)
        r->route = API_R_RUNBOOKS;
    else if (segl[0] == 7 && memcmp(seg[0], "summary", 7) == 0 && nseg == 1)
        r->route = API_R_SUMMARY;
    else
        return refuse(err, errlen, 404, "no such resource");
    if (nseg >= 2 && parse_id(seg[1], segl[1], &r->id) < 0)
        return refuse(err, errlen, 400, "%s/ID: ID must be a positive integer",
                      r->route == API_R_INCIDENTS  ? "incidents"
                      : r->route == API_R_SILENCES ? "silences"
                                                   : "problems");
    if (r->route == API_R_AGENTS || r->route == API_R_RUNBOOKS ||
        r->route == API_R_SUMMARY) {
        allowed = 0; /* one document: at most limits.max_agents rows */
    } else if (r->route == API_R_SILENCES && nseg == 3) {
        /* tocsinctl silences expire ID: the one action on a silence. */
        if (segl[2] != 6 || memcmp(seg[2], "expire", 6) != 0)
            return refuse(err, errlen, 404, "no such action");
        r->route = API_R_SILENCE_EXPIRE;
        snprintf(r->verb, sizeof(r->verb), "expire");
        r->write = 1;
    } else if (r->route == API_R_SILENCES && post) {
        /* tocsinctl silences add: the silence in the body. */
        r->route = API_R_SILENCE_ADD;
        snprintf(r->verb, sizeof(r->verb), "add");
        r->write = 1;
    } else if (r->route == API_R_SILENCES) {
        allowed = P_ALL; /* one document: silences are made by people */
    } else if (r->route == API_R_EVENTS) {
        allowed = P_LIMIT | P_CURSOR | P_HOST; /* as tocsinctl events list */
    } else if (r->route == API_R_STATS) {
        allowed = P_SINCE | P_BY; /* as tocsinctl stats */
    } else if (r->route == API_R_HINTS) {
        allowed = P_LIMIT | P_CURSOR | P_STATE | P_AGENT | P_ORDER;
    } else if (nseg == 1) {
        allowed = P_LIMIT | P_CURSOR | P_STATE;
        if (r->route == API_R_INCIDENTS)
            allowed |= P_PRIORITY | P_HOST | P_SILENCED | P_ORDER;
    } else if (nseg == 2) {
        r->route = r->route == API_R_INCIDENTS ? API_R_INCIDENT : API_R_PROBLEM;
    } else if (r->route == API_R_INCIDENTS && segl[2] == 6 &&
               memcmp(seg[2], "events", 6) == 0) {
        /* The events that fed the incident, paged as /events. */
        r->route = API_R_INCIDENT_EVENTS;
        allowed = P_LIMIT | P_CURSOR | P_SCAN;
    } else {
        r->route = r->route == API_R_INCIDENTS ? API_R_INCIDENT_ACTION
                                               : API_R_PROBLEM_ACTION;
        if (segl[2] >= sizeof(r->verb))
            return refuse(err, errlen, 404, "no such action");
        for (i = 0; i < segl[2]; i++)
            if (!((seg[2][i] >= 'a' && seg[2][i] <= 'z') || seg[2][i] == '-'))
                return refuse(err, errlen, 404, "no such action");
        memcpy(r->verb, seg[2], segl[2]);
        r->verb[segl[2]] = '\0';
        if (!one_of(r->verb, r->route == API_R_INCIDENT_ACTION ? incident_verbs
                                                               : problem_verbs))
            return refuse(err, errlen, 404, "no such action");
        r->write = 1;
    }
    if (r->write ? !post : !get)
        return refuse(err, errlen, 405, "method not allowed here (%s)",
                      r->write ? "POST" : "GET");
    return parse_query(q ? q + 1 : "", ql, allowed, max_page, r, err, errlen);
}
