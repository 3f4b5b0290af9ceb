/*
 * api_req: what an HTTP API request asks for, from its method and its
 * raw path (with the query string), before anything is read: the
 * route, the id in the path, the filters and the page (limit, cursor).
 * Pure (no I/O, no allocation, no clock), so that it is fuzzed
 * (tests/fuzz/fuzz_api_req.c) and unit-tested on its own; everything
 * that reaches the store has passed through here.
 *
 * Refusals carry the HTTP status and a message for the JSON error
 * (docs/api.md, "Errors"): 400 malformed (bad id, unknown or repeated
 * parameter, bad limit or cursor), 404 no such resource, 405 method not
 * allowed on that resource.
 */
#ifndef HTTP_API_REQ_H
#define HTTP_API_REQ_H

#include <stddef.h>
#include <stdint.h>

enum api_route {
    API_R_NONE = 0,
    API_R_INCIDENTS,       /* GET /api/v1/incidents */
    API_R_INCIDENT,        /* GET /api/v1/incidents/ID */
    API_R_INCIDENT_ACTION, /* POST /api/v1/incidents/ID/VERB */
    API_R_PROBLEMS,        /* GET /api/v1/problems */
    API_R_PROBLEM,         /* GET /api/v1/problems/ID */
    API_R_PROBLEM_ACTION,  /* POST /api/v1/problems/ID/VERB */
    API_R_AGENTS,          /* GET /api/v1/agents (not paged) */
    API_R_SILENCES,        /* GET /api/v1/silences (not paged) */
    API_R_HINTS,           /* GET /api/v1/hints (oldest first) */
    API_R_METRICS,         /* GET /metrics (Prometheus text, no params) */
    API_R_EVENTS,          /* GET /api/v1/events (newest first) */
    API_R_STATS,           /* GET /api/v1/stats (not paged) */
    API_R_RUNBOOKS,        /* GET /api/v1/runbooks (no params) */
    API_R_INCIDENT_EVENTS, /* GET /api/v1/incidents/ID/events (newest
                              first) */
    API_R_SILENCE_ADD,     /* POST /api/v1/silences */
    API_R_SILENCE_EXPIRE,  /* POST /api/v1/silences/ID/expire */
    API_R_SUMMARY,         /* GET /api/v1/summary (no params) */
};

/* Limits on what is parsed at all (docs/internals/api.md). */
#define API_PATH_MAX 2048  /* path and query string, bytes */
#define API_QUERY_PARAMS 8 /* parameters in a query string */
#define API_VALUE_MAX 255  /* one decoded value, bytes */
#define API_CURSOR_MAX 32  /* an encoded cursor, characters */
#define API_PAGE_DEFAULT 50

struct api_req {
    enum api_route route;
    int write;      /* 1: a write (an operator action), 0: a read */
    int64_t id;     /* the ID of /incidents/ID, /problems/ID; 0 = none */
    char verb[16];  /* the VERB of an action route */
    uint32_t limit; /* rows in a page: API_PAGE_DEFAULT unless limit= */
    int64_t before; /* from the cursor: ids below this; 0 = first page */
    char state[32]; /* state=, checked against the resource's states */
    int priority;   /* priority=P1..P5 (incidents); 0 = any */
    char host[API_VALUE_MAX + 1];  /* host= (incidents); "" = any */
    int all;                       /* all=true (silences): ended ones too */
    char agent[API_VALUE_MAX + 1]; /* agent= (hints); "" = any */
    uint64_t since_ms; /* since= (stats): a duration; 0 = the default */
    char by[16];       /* by= (stats): priority|service|host|rule; "" */
    int silenced;      /* silenced=true (incidents): marked ones only */
    uint32_t scan;     /* scan= (incident events): host events to read
                          at most; API_SCAN_MAX unless given */
    int by_priority;   /* order=priority (incidents, with state=) */
    int newest;        /* order=newest (hints; oldest first without) */
    int cursor_prio;   /* by_priority's cursor: the last row's priority */
};

/* An incident's events: host events one request reads at most (the
 * window of tocsinctl incidents show, VIEW_INCIDENT_EVENTS_SCAN). */
#define API_SCAN_MAX 5000

/*
 * An event's place in the store, as the events listing's cursor
 * carries it: the batch's log position and the event's index in it.
 * Batches hold at most TC_WIRE_MAX_BATCH events (10,000 by default, a
 * 32 MiB frame at most in any case), far below 2^24.
 */
#define API_EVENT_IDX_BITS 24
static inline int64_t
api_event_pos(int64_t batch, uint32_t idx)
{
    return batch << API_EVENT_IDX_BITS | (int64_t)idx;
}

/*
 * Parse method (mlen bytes) and the raw request target path (plen
 * bytes, "/api/v1/...?..."); max_page bounds limit=. Returns 0 with
 * *out filled, or the HTTP status of the refusal (400, 404, 405) with
 * its reason in err.
 */
int api_req_parse(const char *method, size_t mlen, const char *path,
                  size_t plen, uint32_t max_page, struct api_req *out,
                  char *err, size_t errlen);

/*
 * The cursor of the page after one whose last row had id last:
 * base64url of "i<id>" (opaque to clients: docs/api.md), NUL-terminated
 * in out (API_CURSOR_MAX + 1 bytes). 0 or -ENOBUFS.
 */
int api_cursor_encode(int64_t last, char *out, size_t outlen);
/* The id a cursor carries; 0 or -EINVAL. */
int api_cursor_decode(const char *s, size_t n, int64_t *last);
/*
 * order=priority's cursor: the last row's priority (1..5) and id,
 * base64url of "p<priority>i<id>". Encode as api_cursor_encode; decode
 * takes either kind, *prio 0 for an "i<id>" one. 0 or -EINVAL/-ENOBUFS.
 */
int api_cursor_encode_prio(int prio, int64_t last, char *out, size_t outlen);
int api_cursor_decode_any(const char *s, size_t n, int *prio, int64_t *last);

/* Whether the route needs at least operator rights. */
static inline int
api_route_writes(enum api_route r)
{
    return r == API_R_INCIDENT_ACTION || r == API_R_PROBLEM_ACTION ||
           r == API_R_SILENCE_ADD || r == API_R_SILENCE_EXPIRE;
}

#endif
