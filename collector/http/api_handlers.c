/*
 * api_handlers: the API's reads on a worker thread (api_handlers.h).
 *
 * Each object comes from collector/view, rendered into a tc_buf exactly
 * as tocsinctl renders it, then parsed by jansson into the response
 * document: one shape for both, and a view that ever wrote broken JSON
 * fails here (500) instead of reaching a client.
 */
#include "http/api_handlers.h"
#include "http/api_actions.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "store/incidents_store.h"
#include "store/tokens_store.h"
#include "util.h"
#include "view.h"
#include "wire.h"
#include "store/store.h"
#include "view/agent_view.h"
#include "view/hint_view.h"
#include "view/incident_view.h"
#include "view/problem_view.h"
#include "view/silence_view.h"
#include "view/stats_view.h"
#include "view/runbook_view.h"
#include "runbooks/runbooks.h"
#include "looplag.h"

/* One rendered object (an incident with its silence, a problem with its
 * lists): bounded like tocsinctl's output. */
#define OBJ_MAX (4u << 20)
/* A whole document: a page of max_page objects stays far below. */
#define DOC_MAX (64u << 20)

/*
 * jansson writes DEL and the C1 controls (U+0080-U+009F) as raw bytes;
 * tc_json_str escapes them (a terminal showing the output may act on
 * C1), and the API must too: its strings are agents' bytes. Outside
 * strings a dump holds only ASCII structure, and 0xC2 is always a lead
 * byte, so each DEL byte and each C2 80..9F pair is such a character
 * inside a string: written \u00XX instead. s is freed if replaced.
 */
static char *
escape_controls(char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len, n = 0, o = 0;
    unsigned char *p = (unsigned char *)s;
    char *out;

    if (s == NULL)
        return NULL;
    len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (p[i] == 0x7f ||
            (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
            n++;
    if (n == 0)
        return s;
    out = tc_xmalloc(len + 5 * n + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned cp = p[i];

        if (cp == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            cp = p[++i];
        else if (cp != 0x7f) {
            out[o++] = (char)cp;
            continue;
        }
        memcpy(out + o, "\\u00", 4);
        out[o + 4] = hex[cp >> 4];
        out[o + 5] = hex[cp & 0xf];
        o += 6;
    }
    out[o] = '\0';
    free(s);
    return out;
}

static void
set_body(struct api_call *c, int status, json_t *doc)
{
    c->status = status;
    c->body = escape_controls(json_dumps(doc, JSON_COMPACT));
    c->len = c->body ? strlen(c->body) : 0;
    json_decref(doc);
    if (c->body == NULL) {
        c->status = 500;
        c->body = tc_xstrdup("{\"error\":\"out of memory\",\"status\":500}");
        c->len = strlen(c->body);
    }
}

void
api_set_body(struct api_call *c, int status, json_t *doc)
{
    set_body(c, status, doc);
}

void
api_error(struct api_call *c, int status, const char *msg)
{
    json_t *doc = json_pack("{s:s, s:i}", "error", msg, "status", status);

    free(c->body);
    c->body = NULL;
    set_body(c, status, doc);
}

/*
 * The tc_buf's JSON as a jansson value, or NULL (logged: a view bug).
 * jansson's integers are signed 64-bit; a view writes some uint64
 * figures an agent reports (spool_bytes, count), which a hostile agent
 * can push above 2^63 - 1: such a value is kept as a real instead of
 * failing the whole page. Agents' strings (an event's message, labels)
 * may hold NUL, which tc_json_str writes as \u0000 and jansson refuses
 * unless told: allowed, or one hostile line would fail every page it
 * is on.
 */
static json_t *
parse_obj(const struct tc_buf *b)
{
    json_error_t e;
    json_t *v = json_loadb((const char *)tc_buf_head(b), tc_buf_size(b),
                           JSON_ALLOW_NUL, &e);

    if (v == NULL)
        v = json_loadb((const char *)tc_buf_head(b), tc_buf_size(b),
                       JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (v == NULL)
        log_warnx("api: a view wrote invalid JSON: %s (offset %d)", e.text,
                  e.position);
    return v;
}

/* The silences, to say which one marked an incident (as tocsinctl). */
struct sils {
    struct view_silence *v; /* owned; strings owned */
    size_t n;
};

static int
sil_cb(const struct incidents_silence_row *r, void *arg)
{
    struct sils *s = arg;
    struct view_silence *v;

    s->v = tc_xreallocarray(s->v, s->n + 1, sizeof(*s->v));
    v = &s->v[s->n++];
    v->id = r->id;
    v->starts_at = r->starts_at;
    v->expired = r->expired_at != 0 && r->expired_at < r->ends_at;
    v->ends_at = v->expired ? r->expired_at : r->ends_at;
    v->matchers = tc_xstrdup(r->matchers);
    v->user = tc_xstrdup(r->user);
    v->comment = tc_xstrdup(r->comment);
    return 0;
}

static const struct view_silence *
sil_find(const struct sils *s, int64_t id)
{
    for (size_t i = 0; id != 0 && i < s->n; i++)
        if (s->v[i].id == id)
            return &s->v[i];
    return NULL;
}

static void
sils_free(struct sils *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->v[i].matchers);
        free((char *)s->v[i].user);
        free((char *)s->v[i].comment);
    }
    free(s->v);
}

/* A page being filled: limit rows, then one more tells there is more. */
struct page {
    const struct api_req *req;
    int64_t now;
    struct sils sils;
    json_t *items;
    size_t n;
    int64_t last;  /* id of the last row in the page */
    int last_prio; /* its priority (order=priority's cursor) */
    int more;
    int bad; /* a view's JSON did not parse */
    struct tc_buf b;
};

static int
inc_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct page *p = arg;
    json_t *o;

    if (p->n == p->req->limit) {
        p->more = 1;
        return 1;
    }
    tc_buf_reset(&p->b);
    if (view_incident_json_marked(&p->b, in, sil_find(&p->sils, in->silenced),
                                  m, p->now) < 0 ||
        (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    p->n++;
    p->last = in->id;
    p->last_prio = in->priority;
    return 0;
}

static int
prob_cb(const struct problems_row *r, void *arg)
{
    struct page *p = arg;
    struct view_problem v = {r->p, r->incidents, r->nincidents, r->hosts,
                             r->nhosts};
    json_t *o;

    if (p->n == p->req->limit) {
        p->more = 1;
        return 1;
    }
    tc_buf_reset(&p->b);
    if (view_problem_json(&p->b, &v, 0) < 0 || (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    p->n++;
    p->last = r->p->id;
    return 0;
}

/* {"KEY": [...], "next_cursor": "..." | null}; NULL when refused (the
 * error is set). */
static json_t *
page_doc(struct api_call *c, struct page *p, const char *key, int rc)
{
    char cur[API_CURSOR_MAX + 1];
    json_t *doc;

    if (rc < 0 || p->bad) {
        json_decref(p->items);
        api_error(c, rc == -EBUSY ? 503 : 500,
                  rc == -EBUSY ? "store busy, try again" : "store error");
        return NULL;
    }
    doc = json_object();
    json_object_set_new(doc, key, p->items);
    if (p->more &&
        (p->req->by_priority
             ? api_cursor_encode_prio(p->last_prio, p->last, cur, sizeof(cur))
             : api_cursor_encode(p->last, cur, sizeof(cur))) == 0)
        json_object_set_new(doc, "next_cursor", json_string(cur));
    else
        json_object_set_new(doc, "next_cursor", json_null());
    return doc;
}

static void
page_done(struct api_call *c, struct page *p, const char *key, int rc)
{
    json_t *doc = page_doc(c, p, key, rc);

    if (doc != NULL)
        set_body(c, 200, doc);
}

static void
incidents_list(struct incidents_store *is, struct api_call *c)
{
    const struct api_req *r = &c->req;
    struct incidents_filter f = {
        .state = r->state[0] ? r->state : NULL,
        .priority = r->priority,
        .host = r->host[0] ? r->host : NULL,
        .silenced = r->silenced,
        .before = r->before,
        .by_priority = r->by_priority,
        .from_priority = r->cursor_prio,
    };
    struct page p = {.req = r, .now = c->now, .items = json_array()};
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    (void)incidents_store_silences(is, 1, c->now, sil_cb, &p.sils);
    rc = incidents_store_list(is, &f, inc_cb, &p);
    page_done(c, &p, "incidents", rc);
    sils_free(&p.sils);
    tc_buf_close(&p.b);
}

static void
problems_list(struct incidents_store *is, struct api_call *c)
{
    const struct api_req *r = &c->req;
    struct problems_filter f = {
        .state = r->state[0] ? r->state : NULL,
        .before = r->before,
    };
    struct page p = {.req = r, .now = c->now, .items = json_array()};
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    rc = incidents_store_problems(is, &f, prob_cb, &p);
    page_done(c, &p, "problems", rc);
    tc_buf_close(&p.b);
}

/* One document built in b as tocsinctl's show --json builds it. */
struct show {
    struct tc_buf b;
    struct sils sils;
    int64_t now;
    int found;
    size_t n;
};

static int
show_inc_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct show *s = arg;

    s->found = 1;
    return view_incident_json_marked(
        &s->b, in, sil_find(&s->sils, in->silenced), m, s->now);
}

static int
show_note_cb(const struct incident_note *n, void *arg)
{
    struct show *s = arg;

    tc_json_raw(&s->b, s->n++ ? "," : "");
    return view_incident_note_json(&s->b, n);
}

static void
show_done(struct api_call *c, struct show *s, int rc, const char *what)
{
    json_t *doc;
    char msg[64];

    if (rc == 0 && !s->found) {
        snprintf(msg, sizeof(msg), "no %s %" PRId64, what, c->req.id);
        api_error(c, 404, msg);
        return;
    }
    if (rc < 0 || (doc = parse_obj(&s->b)) == NULL) {
        api_error(c, rc == -EBUSY ? 503 : 500,
                  rc == -EBUSY ? "store busy, try again" : "store error");
        return;
    }
    set_body(c, 200, doc);
}

/*
 * The incident and its timeline (the keys of tocsinctl incidents show
 * --json but its latest events, which the events endpoint will give).
 */
static void
incident_show(struct incidents_store *is, struct api_call *c)
{
    struct incidents_filter f = {.id = c->req.id};
    struct show s = {.now = c->now};
    int rc;

    tc_buf_init(&s.b, DOC_MAX);
    (void)incidents_store_silences(is, 1, c->now, sil_cb, &s.sils);
    rc = incidents_store_list(is, &f, show_inc_cb, &s);
    if (rc == 0 && s.found) {
        s.b.len--; /* the closing brace: the timeline goes inside */
        tc_json_raw(&s.b, ",\"timeline\":[");
        rc = incidents_store_timeline(is, c->req.id, show_note_cb, &s);
        tc_json_raw(&s.b, "]}");
    }
    show_done(c, &s, rc, "incident");
    sils_free(&s.sils);
    tc_buf_close(&s.b);
}

static int
pshow_cb(const struct problems_row *r, void *arg)
{
    struct show *s = arg;
    struct view_problem v = {r->p, r->incidents, r->nincidents, r->hosts,
                             r->nhosts};

    s->found = 1;
    if (view_problem_json(&s->b, &v, 1) < 0)
        return -ENOBUFS;
    return view_problem_rca_json(&s->b, r->p);
}

static int
cand_cb(const struct problem_candidate *cand, void *arg)
{
    struct show *s = arg;

    tc_json_raw(&s->b, s->n++ ? "," : "");
    return view_problem_candidate_json(&s->b, cand);
}

static int
link_cb(const struct problem_link *l, void *arg)
{
    struct show *s = arg;

    tc_json_raw(&s->b, s->n++ ? "," : "");
    return view_problem_link_json(&s->b, l);
}

static int
pnote_cb(const struct problem_note *n, void *arg)
{
    struct show *s = arg;

    tc_json_raw(&s->b, s->n++ ? "," : "");
    return view_problem_note_json(&s->b, n);
}

/* The keys of tocsinctl problems show --json: the problem, its RCA,
 * candidates, links and timeline. */
static void
problem_show(struct incidents_store *is, struct api_call *c)
{
    struct problems_filter f = {.id = c->req.id};
    struct show s = {.now = c->now};
    int64_t id = c->req.id;
    int rc;

    tc_buf_init(&s.b, DOC_MAX);
    rc = incidents_store_problems(is, &f, pshow_cb, &s);
    if (rc == 0 && s.found) {
        tc_json_raw(&s.b, ",\"candidates\":[");
        s.n = 0;
        rc = incidents_store_problem_candidates(is, id, cand_cb, &s);
        tc_json_raw(&s.b, "],\"links\":[");
        s.n = 0;
        if (rc == 0)
            rc = incidents_store_problem_links(is, id, link_cb, &s);
        tc_json_raw(&s.b, "],\"timeline\":[");
        s.n = 0;
        if (rc == 0)
            rc = incidents_store_problem_timeline(is, id, pnote_cb, &s);
        tc_json_raw(&s.b, "]}");
    }
    show_done(c, &s, rc, "problem");
    tc_buf_close(&s.b);
}

static int
agent_cb(const struct store_agent *ag, void *arg)
{
    struct page *p = arg;
    json_t *o;

    tc_buf_reset(&p->b);
    if (view_agent_json(&p->b, ag) < 0 || (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    return 0;
}

/*
 * The agents table (tocsinctl agents list --json), whole: it has at
 * most limits.max_agents rows plus those gone, read through the event
 * log's read-only interface, opened for the request.
 */
static void
agents_list(const char *path, struct api_call *c)
{
    struct page p = {.req = &c->req, .now = c->now, .items = json_array()};
    struct store *st = NULL;
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    if ((rc = store_open(path, STORE_RDONLY, &st)) == 0)
        rc = store_load_agents(st, agent_cb, &p);
    store_close(st);
    page_done(c, &p, "agents", rc < 0 ? rc : 0);
    tc_buf_close(&p.b);
}

static int
silence_cb(const struct incidents_silence_row *r, void *arg)
{
    struct page *p = arg;
    json_t *o;

    tc_buf_reset(&p->b);
    if (view_silence_row_json(&p->b, r, p->now) < 0 ||
        (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    return 0;
}

static int
hint_cb(const struct hint_row *h, void *arg)
{
    struct page *p = arg;
    json_t *o;

    if (p->n == p->req->limit) {
        p->more = 1;
        return 1;
    }
    tc_buf_reset(&p->b);
    if (view_hint_json(&p->b, h) < 0 || (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    p->n++;
    p->last = h->id;
    return 0;
}

/* tocsinctl hints list --json, oldest first: the cursor is the last id
 * seen, and the next page the hints above it; order=newest: newest
 * first, the next page the hints below it. */
static void
hints_list(struct incidents_store *is, struct api_call *c)
{
    const struct api_req *r = &c->req;
    struct hints_filter f = {
        .agent = r->agent[0] ? r->agent : NULL,
        .state = r->state[0] ? r->state : NULL,
        .after = r->before,
        .newest = r->newest,
    };
    struct page p = {.req = r, .now = c->now, .items = json_array()};
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    rc = incidents_store_hints(is, &f, hint_cb, &p);
    page_done(c, &p, "hints", rc);
    tc_buf_close(&p.b);
}

/* tocsinctl silences list [--all] --json: not ended ones, or all. */
static void
silences_list(struct incidents_store *is, struct api_call *c)
{
    struct page p = {.req = &c->req, .now = c->now, .items = json_array()};
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    rc = incidents_store_silences(is, c->req.all, c->now, silence_cb, &p);
    page_done(c, &p, "silences", rc < 0 ? rc : 0);
    tc_buf_close(&p.b);
}

/* A page of events, newest first (events_list, incident_events). */
struct evpage {
    struct page p;
    int64_t batch;             /* the cursor's batch; 0 = first page */
    uint32_t idx;              /* in it, the events below this index */
    struct tc_frame frame;     /* decode memory, reused per batch */
    struct tc_wire_limits lim; /* as tocsinctl events list's */
    const char *fp; /* an incident's fingerprint: its events only; NULL */
    uint64_t scan;  /* with fp: events to read at most */
    uint64_t seen;  /* events read so far */
};

static int
ev_batch_cb(const struct store_batch *sb, void *arg)
{
    struct evpage *e = arg;
    struct page *p = &e->p;
    const struct tc_events *evs;
    const char *err = "unknown error";
    uint32_t i;

    if (sb->id > INT64_MAX >> API_EVENT_IDX_BITS) {
        p->bad = 1; /* no cursor could name its events */
        return 1;
    }
    if (tc_event_decode_array(sb->events, sb->events_len, &e->lim, &e->frame,
                              &err) < 0) {
        /* As tocsinctl: said, and the listing goes on without it. */
        log_warnx("api: batch %" PRId64 ": cannot decode: %s", sb->id, err);
        return 0;
    }
    evs = &e->frame.u.events;
    i = evs->n;
    if (sb->id == e->batch && e->idx < i)
        i = e->idx;
    while (i-- > 0) {
        struct tc_view_event_opts vo = {.origin = store_origin_name(sb->origin),
                                        .iso_digits = 3};
        char key[1024];
        json_t *o;

        /*
         * An incident's events: at most scan of the host's events read
         * (tocsinctl incidents show looks that far back), so the page
         * may hold fewer than limit; the cursor (last) goes on from the
         * last event read, listed or not.
         */
        if (e->fp != NULL) {
            if (e->seen == e->scan) {
                p->more = 1;
                return 1;
            }
            if (incident_fingerprint(sb->host, &evs->ev[i], key, sizeof(key)) ==
                    0 ||
                strcmp(key, e->fp) != 0) {
                e->seen++;
                p->last = api_event_pos(sb->id, i);
                continue;
            }
        }
        if (p->n == p->req->limit) {
            p->more = 1;
            return 1;
        }
        e->seen++;
        tc_buf_reset(&p->b);
        if (tc_view_event_json(&p->b, &evs->ev[i], &vo) < 0 ||
            (o = parse_obj(&p->b)) == NULL) {
            p->bad = 1;
            return 1;
        }
        json_array_append_new(p->items, o);
        p->n++;
        p->last = api_event_pos(sb->id, i);
    }
    return 0;
}

/*
 * tocsinctl events list --json's objects, newest first (tocsinctl
 * prints its window oldest first). The cursor is the place of the last
 * event shown (api_event_pos): the next page is the events before it in
 * its batch, then the older batches. Batches are only ever appended, so
 * chained pages list each event once, whatever arrives meanwhile.
 */
static void
events_list(const char *path, struct api_call *c)
{
    struct evpage e = {
        .p = {.req = &c->req, .now = c->now, .items = json_array()},
        .batch = c->req.before >> API_EVENT_IDX_BITS,
        .idx = (uint32_t)(c->req.before &
                          ((INT64_C(1) << API_EVENT_IDX_BITS) - 1)),
        .lim = tc_wire_default_limits,
    };
    struct store *st = NULL;
    int rc;

    /* Stored blobs carry the authenticated host (ctl_events.c). */
    e.lim.max_frame = UINT32_MAX;
    tc_frame_init(&e.frame);
    tc_buf_init(&e.p.b, OBJ_MAX);
    if ((rc = store_open(path, STORE_RDONLY, &st)) == 0)
        rc = store_events_back(st, c->req.host[0] ? c->req.host : NULL, e.batch,
                               ev_batch_cb, &e);
    store_close(st);
    page_done(c, &e.p, "events", rc < 0 ? rc : 0);
    tc_frame_close(&e.frame);
    tc_buf_close(&e.p.b);
}

#if API_SCAN_MAX != VIEW_INCIDENT_EVENTS_SCAN
#error "the API's incident events must look as far back as incidents show"
#endif

/* The incident whose events are listed (incident_events). */
struct inc_key {
    int found;
    char host[256];
    char fp[1024];
};

static int
inc_key_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct inc_key *k = arg;

    (void)m;
    k->found = 1;
    snprintf(k->host, sizeof(k->host), "%s", in->host);
    snprintf(k->fp, sizeof(k->fp), "%s", in->fingerprint);
    return 0;
}

/*
 * tocsinctl incidents show's latest events, paged: the events of the
 * incident's host whose fingerprint is the incident's, newest first,
 * as events_list pages them (the cursor is the place of the last event
 * read). 404 when there is no such incident.
 */
static void
incident_events(struct incidents_store *is, const char *path,
                struct api_call *c)
{
    struct incidents_filter f = {.id = c->req.id};
    struct inc_key k = {0};
    struct evpage e = {
        .p = {.req = &c->req, .now = c->now, .items = json_array()},
        .batch = c->req.before >> API_EVENT_IDX_BITS,
        .idx = (uint32_t)(c->req.before &
                          ((INT64_C(1) << API_EVENT_IDX_BITS) - 1)),
        .lim = tc_wire_default_limits,
        .fp = k.fp,
        .scan = c->req.scan ? c->req.scan : API_SCAN_MAX,
    };
    struct store *st = NULL;
    json_t *doc;
    char msg[64];
    int rc;

    e.lim.max_frame = UINT32_MAX;
    tc_frame_init(&e.frame);
    tc_buf_init(&e.p.b, OBJ_MAX);
    rc = incidents_store_list(is, &f, inc_key_cb, &k);
    if (rc == 0 && !k.found) {
        json_decref(e.p.items);
        snprintf(msg, sizeof(msg), "no incident %" PRId64, c->req.id);
        api_error(c, 404, msg);
        goto out;
    }
    if (rc == 0 && (rc = store_open(path, STORE_RDONLY, &st)) == 0)
        rc = store_events_back(st, k.host, e.batch, ev_batch_cb, &e);
    store_close(st);
    if ((doc = page_doc(c, &e.p, "events", rc < 0 ? rc : 0)) != NULL) {
        /* How far this page read: a client keeping to a window of the
         * host's events (tocsinctl --url incidents show) asks the next
         * page for the rest of it (scan=). */
        json_object_set_new(doc, "scanned", json_integer((json_int_t)e.seen));
        set_body(c, 200, doc);
    }
out:
    tc_frame_close(&e.frame);
    tc_buf_close(&e.p.b);
}

static int
stats_cb(const struct incidents_stats_row *r, void *arg)
{
    struct page *p = arg;
    json_t *o;

    tc_buf_reset(&p->b);
    if (view_stats_row_json(&p->b, r) < 0 || (o = parse_obj(&p->b)) == NULL) {
        p->bad = 1;
        return 1;
    }
    json_array_append_new(p->items, o);
    return 0;
}

/*
 * tocsinctl stats [--since D] [--by K] --json: the groups of the
 * incidents (re)opened since, then the running collector's figures from
 * its stats file (null when it cannot be read, as tocsinctl).
 */
static void
stats_show(struct incidents_store *is, struct api_call *c)
{
    const struct api_req *r = &c->req;
    struct page p = {.req = r, .now = c->now, .items = json_array()};
    uint64_t since_ms = r->since_ms ? r->since_ms : 7 * 86400000ULL;
    int64_t since = c->now - (int64_t)since_ms * 1000000;
    struct looplag_stats ls;
    const char *why = NULL;
    char path[4096];
    json_t *doc, *coll = NULL;
    int rc;

    tc_buf_init(&p.b, OBJ_MAX);
    rc =
        incidents_store_stats(is, since, r->by[0] ? r->by : NULL, stats_cb, &p);
    if (rc < 0 || p.bad) {
        page_done(c, &p, "groups", rc);
        goto out;
    }
    tc_buf_reset(&p.b);
    /* A file of the collector's, read on this worker (never the loop). */
    if (looplag_stats_path(path, sizeof(path), c->store_path) == 0 &&
        looplag_stats_read(path, &ls, &why) == 0) {
        view_stats_collector_json(&p.b, &ls,
                                  c->now - ls.updated_ns > VIEW_STATS_STALE_NS);
        coll = parse_obj(&p.b);
    } else {
        coll = json_null();
    }
    if (coll == NULL) {
        json_decref(p.items);
        api_error(c, 500, "store error");
        goto out;
    }
    doc = json_pack("{s:I, s:s, s:o, s:o}", "since", (json_int_t)since, "by",
                    r->by[0] ? r->by : "all", "groups", p.items, "collector",
                    coll);
    if (doc == NULL) {
        api_error(c, 500, "out of memory");
        goto out;
    }
    set_body(c, 200, doc);
out:
    tc_buf_close(&p.b);
}

static int
agent_count_cb(const struct store_agent *ag, void *arg)
{
    uint64_t *n = arg;

    n[0]++;
    n[1] += ag->connected != 0;
    return 0;
}

/* {"P1": n, ..., "P5": n, "total": n} of one state. */
static json_t *
by_prio(const uint64_t n[6])
{
    json_t *o = json_object();
    uint64_t total = 0;
    char k[3] = "P0";

    for (int p = 1; p <= 5; p++) {
        k[1] = (char)('0' + p);
        json_object_set_new(o, k, json_integer((json_int_t)n[p]));
        total += n[p];
    }
    json_object_set_new(o, "total", json_integer((json_int_t)total));
    return o;
}

/*
 * The dashboard's header in one request: counts on the store's indexes
 * (incidents_store_summary) and the agents table's rows counted (at
 * most limits.max_agents plus those gone), instead of every open
 * incident read to count them (bench/README.md "API").
 */
static void
summary_show(struct incidents_store *is, struct api_call *c)
{
    struct incidents_summary sum;
    uint64_t agents[2] = {0, 0}; /* total, connected */
    struct store *st = NULL;
    json_t *doc;
    int rc;

    if ((rc = incidents_store_summary(is, &sum)) == 0 &&
        (rc = store_open(c->store_path, STORE_RDONLY, &st)) == 0)
        rc = store_load_agents(st, agent_count_cb, agents);
    store_close(st);
    if (rc < 0) {
        api_error(c, rc == -EBUSY ? 503 : 500,
                  rc == -EBUSY ? "store busy, try again" : "store error");
        return;
    }
    doc = json_pack("{s:{s:o, s:o}, s:{s:I, s:I, s:I}, s:{s:I, s:I}}",
                    "incidents", "open", by_prio(sum.open), "acknowledged",
                    by_prio(sum.acked), "problems", "open",
                    (json_int_t)sum.problems[0], "investigating",
                    (json_int_t)sum.problems[1], "known_error",
                    (json_int_t)sum.problems[2], "agents", "connected",
                    (json_int_t)agents[1], "total", (json_int_t)agents[0]);
    if (doc == NULL) {
        api_error(c, 500, "out of memory");
        return;
    }
    set_body(c, 200, doc);
}

/*
 * tocsinctl runbooks list --json: the directory runbooks.dir names,
 * loaded on this worker with the collector's loader, as tocsinctl
 * loads it (the files as they are now; the set the engine dispatches
 * with is the one of the last start or reload, its hash in the
 * timeline). 404 when no runbooks are configured.
 */
static void
runbooks_list(struct api_call *c)
{
    struct runbook_set *set = NULL;
    struct tc_buf b;
    json_t *doc;

    if (c->runbooks_dir == NULL) {
        api_error(c, 404, "no runbooks configured (runbooks: {dir: PATH})");
        return;
    }
    if (runbooks_load(c->runbooks_dir, &set) < 0) {
        api_error(c, 500, "runbooks.dir cannot be read (see the log)");
        return;
    }
    tc_buf_init(&b, DOC_MAX);
    if (view_runbook_set_json(&b, set) < 0 || (doc = parse_obj(&b)) == NULL)
        api_error(c, 500, "runbooks too large to list");
    else
        set_body(c, 200, doc);
    tc_buf_close(&b);
    runbook_set_unref(set);
}

void
api_handle(struct incidents_store *is, struct api_call *c)
{
    enum token_role role = TOKEN_ROLE_VIEWER;
    int rc;

    snprintf(c->who, sizeof(c->who), "anonymous");
    if (c->has_token) {
        rc = incidents_store_token_find(is, c->hash, c->who, sizeof(c->who),
                                        &role);
        if (rc < 0) {
            api_error(c, 503, "store busy, try again");
            return;
        }
        if (rc == 0) {
            snprintf(c->who, sizeof(c->who), "?");
            api_error(c, 401, "invalid or revoked token");
            return;
        }
    }
    if (c->req.write) {
        if (!c->has_token || role < TOKEN_ROLE_OPERATOR) {
            api_error(c, 403, "this needs the operator role");
            return;
        }
        api_action(c);
        return;
    }
    switch (c->req.route) {
    case API_R_INCIDENTS:
        incidents_list(is, c);
        break;
    case API_R_INCIDENT:
        incident_show(is, c);
        break;
    case API_R_PROBLEMS:
        problems_list(is, c);
        break;
    case API_R_PROBLEM:
        problem_show(is, c);
        break;
    case API_R_AGENTS:
        agents_list(c->store_path, c);
        break;
    case API_R_SILENCES:
        silences_list(is, c);
        break;
    case API_R_HINTS:
        hints_list(is, c);
        break;
    case API_R_EVENTS:
        events_list(c->store_path, c);
        break;
    case API_R_STATS:
        stats_show(is, c);
        break;
    case API_R_RUNBOOKS:
        runbooks_list(c);
        break;
    case API_R_INCIDENT_EVENTS:
        incident_events(is, c->store_path, c);
        break;
    case API_R_SUMMARY:
        summary_show(is, c);
        break;
    case API_R_METRICS:
        /* Authorised: the loop renders it (api.c after_cb). */
        c->status = 200;
        break;
    default:
        api_error(c, 404, "no such resource");
        break;
    }
}
