/*
 * ctl_incidents: "tocsinctl incidents".
 *
 *   tocsinctl incidents list [--state S] [--priority P] [--host H]
 *                            [--silenced] [--json]
 *   tocsinctl incidents show ID [--json]
 *   tocsinctl incidents ack|resolve|close ID [--user NAME] [--comment TEXT]
 *   tocsinctl incidents note ID TEXT [--user NAME]
 *
 * Listing reads the incident tables read-only. An action is a row
 * appended to the actions table (docs/internals/incidents.md): the
 * collector applies actions in id order as engine inputs, after the
 * batches committed before it looked. tocsinctl then waits up to 5 s
 * for the collector's verdict and reports it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "cli/ctl.h"
#include "cli/ctl_remote.h"
#include "escape.h"
#include "engine/incident.h"
#include "store/incidents_store.h"
#include "json.h"
#include "log.h"
#include "store/store.h"
#include "timefmt.h"
#include "util.h"
#include "table.h"
#include "view.h"
#include "view/incident_view.h"
#include "wire.h"

/* Events of the host scanned for "show", and how many are printed. */
#define SHOW_SCAN VIEW_INCIDENT_EVENTS_SCAN
#define SHOW_EVENTS 10
/* Bytes of each event's message shown in text (JSON has it whole). */
#define SHOW_MESSAGE_MAX 300
/* One event as JSON: a 64 KiB message escapes to at most 6x that. */
#define SHOW_EVENT_JSON_MAX (1u << 20)
#define OUT_MAX (16u << 20)

static void
incidents_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl incidents list [--state S] [--priority P] "
               "[--host H] [--silenced] [--json]\n"
               "       tocsinctl incidents show ID [--json]\n"
               "       tocsinctl incidents ack|resolve|close ID [--user NAME] "
               "[--comment TEXT]\n"
               "       tocsinctl incidents note ID TEXT [--user NAME]\n");
}

/*
 * The silences the store knows, to say which one marked an incident
 * (incident_view.h). Few: every silence ever added, read once.
 */
struct sil_cache {
    struct view_silence *v; /* owned, n entries; strings owned */
    size_t n;
};

static int
sil_cache_cb(const struct incidents_silence_row *r, void *arg)
{
    struct sil_cache *c = arg;
    struct view_silence *v;

    c->v = tc_xreallocarray(c->v, c->n + 1, sizeof(*c->v));
    v = &c->v[c->n++];
    v->id = r->id;
    v->starts_at = r->starts_at;
    v->expired = r->expired_at != 0 && r->expired_at < r->ends_at;
    v->ends_at = v->expired ? r->expired_at : r->ends_at;
    v->matchers = tc_xstrdup(r->matchers);
    v->user = tc_xstrdup(r->user);
    v->comment = tc_xstrdup(r->comment);
    return 0;
}

/* Without the silences (an old store, an error) marks are still shown. */
static void
sil_cache_load(struct sil_cache *c, struct incidents_store *is, int64_t now)
{
    (void)incidents_store_silences(is, 1, now, sil_cache_cb, c);
}

static const struct view_silence *
sil_cache_find(const struct sil_cache *c, int64_t id)
{
    for (size_t i = 0; id != 0 && i < c->n; i++)
        if (c->v[i].id == id)
            return &c->v[i];
    return NULL;
}

static void
sil_cache_free(struct sil_cache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free((char *)c->v[i].matchers);
        free((char *)c->v[i].user);
        free((char *)c->v[i].comment);
    }
    free(c->v);
}

struct list_ctx {
    int json;
    uint64_t n;
    int64_t now;
    struct tc_buf out;
    struct tc_table table; /* text: rows until the end */
    struct sil_cache sils; /* every silence the store knows */
    int64_t *marked;       /* text: distinct silence ids shown; owned */
    size_t nmarked;
};

static int
list_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct list_ctx *c = arg;
    const struct view_silence *sil = sil_cache_find(&c->sils, in->silenced);
    size_t i;

    c->n++;
    if (!c->json) {
        view_incident_row(&c->table, in, sil);
        for (i = 0; i < c->nmarked && c->marked[i] != in->silenced; i++)
            ;
        if (in->silenced != 0 && i == c->nmarked) {
            c->marked =
                tc_xreallocarray(c->marked, c->nmarked + 1, sizeof(*c->marked));
            c->marked[c->nmarked++] = in->silenced;
        }
        return 0;
    }
    tc_buf_reset(&c->out);
    tc_json_raw(&c->out, c->n > 1 ? ",\n" : "\n");
    view_incident_json_marked(&c->out, in, sil, m, c->now);
    fwrite(tc_buf_head(&c->out), 1, tc_buf_size(&c->out), stdout);
    return ferror(stdout) ? -EIO : 0;
}

/* Under the table: what "silenced" means, and by which silences. */
static void
list_silences_text(struct list_ctx *c)
{
    if (c->nmarked == 0)
        return;
    tc_buf_reset(&c->out);
    tc_json_raw(&c->out, "\nsilenced: " VIEW_SILENCED_MEANING "\n");
    for (size_t i = 0; i < c->nmarked; i++) {
        tc_json_raw(&c->out, "  ");
        view_silence_line(&c->out, c->marked[i],
                          sil_cache_find(&c->sils, c->marked[i]), c->now);
        tc_json_raw(&c->out, "\n");
    }
    fwrite(tc_buf_head(&c->out), 1, tc_buf_size(&c->out), stdout);
}

/* A silence seen in a remote incident, kept as sil_cache_load would. */
static void
sil_cache_add(struct sil_cache *c, const struct view_silence *s)
{
    struct view_silence *v;

    if (sil_cache_find(c, s->id) != NULL)
        return;
    c->v = tc_xreallocarray(c->v, c->n + 1, sizeof(*c->v));
    v = &c->v[c->n++];
    *v = *s;
    v->matchers = tc_xstrdup(s->matchers);
    v->user = tc_xstrdup(s->user);
    v->comment = tc_xstrdup(s->comment);
}

/* --url: one incident object, printed as list_cb would the row. */
static int
remote_inc_cb(json_t *item, void *arg)
{
    struct list_ctx *c = arg;
    struct incident in;
    struct problem_mark m;
    struct view_silence sil;
    int has_mark, has_sil, rc;

    if (ctl_remote_incident(item, &in, &m, &has_mark, &sil, &has_sil) < 0)
        return -EINVAL;
    if (has_sil)
        sil_cache_add(&c->sils, &sil);
    /* "[" once the API answered: nothing on stdout when it refused. */
    if (c->json && c->n == 0)
        fputs("[", stdout);
    rc = list_cb(&in, has_mark ? &m : NULL, c);
    free(in.fingerprint);
    return rc < 0 ? -EIO : 0;
}

/*
 * --url: the pages of GET /api/v1/incidents (next_cursor followed),
 * each object turned back into the structs list_cb takes, so that the
 * table and the JSON are the local ones. Returns 0 or -1 (printed).
 */
static int
remote_list(const struct ctl_opts *o, const struct incidents_filter *f,
            struct list_ctx *c)
{
    struct ctl_remote *r = NULL;
    struct tc_buf path;
    char sep = '?';
    int rc = -1, bad = 0;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    tc_buf_init(&path, 4096);
    /* No limit: the API's own page size (api.max_page caps it). */
    bad |= tc_buf_printf(&path, "/api/v1/incidents");
    if (f->state != NULL) {
        bad |= tc_buf_printf(&path, "%cstate=%s", sep, f->state);
        sep = '&';
    }
    if (f->priority != 0) {
        bad |= tc_buf_printf(&path, "%cpriority=P%d", sep, f->priority);
        sep = '&';
    }
    if (f->silenced) {
        bad |= tc_buf_printf(&path, "%csilenced=true", sep);
        sep = '&';
    }
    if (f->host != NULL) {
        char *h = ctl_remote_escape(r, f->host);

        bad |= tc_buf_printf(&path, "%chost=%s", sep, h);
        free(h);
    }
    /* A path cut short would drop a filter: refuse instead. */
    if (bad || tc_buf_append(&path, "", 1) < 0)
        fprintf(stderr, "tocsinctl: incidents list: filters too long\n");
    else
        rc = ctl_remote_pages(r, (const char *)tc_buf_head(&path), "incidents",
                              remote_inc_cb, c);
    if (c->json && c->n)
        fputs("\n]\n", stdout);
    else if (c->json && rc == 0)
        fputs("[]\n", stdout);
    tc_buf_close(&path);
    ctl_remote_close(r);
    return rc;
}

static int
incidents_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"state", required_argument, NULL, 's'},
        {"priority", required_argument, NULL, 'p'},
        {"host", required_argument, NULL, 'H'},
        {"silenced", no_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    struct incidents_filter f = {0};
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct list_ctx c = {.json = o->json, .now = tc_now_ns()};
    enum incident_state st;
    int ch, rc, status = 1;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "js:p:H:S", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            c.json = 1;
            break;
        case 's':
            if (incident_state_parse(optarg, &st) < 0) {
                fprintf(stderr, "tocsinctl: --state: one of open, "
                                "acknowledged, resolved, closed\n");
                return 2;
            }
            f.state = incident_state_name(st);
            break;
        case 'p':
            if (optarg[0] == 'P' || optarg[0] == 'p')
                optarg++;
            if (optarg[0] < '1' || optarg[0] > '5' || optarg[1] != '\0') {
                fprintf(stderr, "tocsinctl: --priority: P1 .. P5\n");
                return 2;
            }
            f.priority = optarg[0] - '0';
            break;
        case 'H':
            f.host = optarg;
            break;
        case 'S':
            f.silenced = 1;
            break;
        default:
            incidents_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        incidents_usage(stderr);
        return 2;
    }
    tc_buf_init(&c.out, OUT_MAX);
    tc_table_init(&c.table, view_incident_cols, view_incident_ncols);
    if (o->url != NULL) {
        /* Same output as below, the rows read from the API. */
        if (remote_list(o, &f, &c) < 0)
            goto out;
    } else {
        if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
            goto out;
        sil_cache_load(&c.sils, is, c.now);
        if (c.json)
            fputs("[", stdout);
        rc = incidents_store_list(is, &f, list_cb, &c);
        if (c.json)
            fputs(c.n ? "\n]\n" : "]\n", stdout);
        if (rc < 0) {
            log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
            goto out;
        }
    }
    if (!c.json) {
        tc_table_print(&c.table, stdout);
        list_silences_text(&c);
    }
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    free(c.marked);
    sil_cache_free(&c.sils);
    tc_table_free(&c.table);
    tc_buf_close(&c.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

struct show_ctx {
    int json;
    int found;
    struct incident copy; /* strings below */
    char fp[1024], host[256];
    struct tc_buf out;
    char *ev[SHOW_EVENTS]; /* ring of rendered events; owned */
    uint64_t nev;          /* matching events seen */
    struct tc_frame frame;
    struct tc_wire_limits lim;
    uint64_t nnotes;
    int64_t now;
    struct sil_cache sils; /* every silence the store knows */
    struct tc_table notes; /* text: the timeline */
};

static const struct tc_table_col note_cols[] = {
    {"TIME", 0, 0}, {"WHAT", 0, 0}, {"WHO", 0, 40}, {"DETAIL", 0, 60}};

static int
show_inc_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct show_ctx *c = arg;

    c->found = 1;
    snprintf(c->fp, sizeof(c->fp), "%s", in->fingerprint);
    snprintf(c->host, sizeof(c->host), "%s", in->host);
    tc_buf_reset(&c->out);
    if (c->json) {
        view_incident_json_marked(
            &c->out, in, sil_cache_find(&c->sils, in->silenced), m, c->now);
    } else
        view_incident_text(&c->out, in, sil_cache_find(&c->sils, in->silenced),
                           c->now);
    return 0;
}

static int
show_note_cb(const struct incident_note *n, void *arg)
{
    struct show_ctx *c = arg;
    char iso[64];

    tc_rfc3339(n->ts, 3, iso, sizeof(iso));
    if (c->json) {
        tc_json_raw(&c->out, c->nnotes ? ",\n  " : "\n  ");
        view_incident_note_json(&c->out, n);
    } else {
        tc_table_cell(&c->notes, iso);
        tc_table_cell(&c->notes, n->what);
        tc_table_cell(&c->notes, n->who);
        tc_table_cell(&c->notes, n->detail);
    }
    c->nnotes++;
    return 0;
}

/* One of the latest events into the ring, rendered for the output. */
static void
show_event(struct show_ctx *c, const struct tc_event *e, const char *origin)
{
    char **slot = &c->ev[c->nev++ % SHOW_EVENTS];
    struct tc_buf b;

    free(*slot);
    tc_buf_init(&b, SHOW_EVENT_JSON_MAX);
    if (c->json) {
        /* The same object as events list --json gives. */
        struct tc_view_event_opts vo = {.origin = origin, .iso_digits = 3};

        if (tc_view_event_json(&b, e, &vo) < 0 || tc_buf_append(&b, "", 1) < 0)
            *slot = tc_xstrdup("null");
        else
            *slot = tc_xstrdup((const char *)tc_buf_head(&b));
    } else {
        /* The same line as events list gives (escaped there). */
        if (tc_view_event_line(&b, e, SHOW_MESSAGE_MAX) < 0 ||
            tc_buf_append(&b, "", 1) < 0)
            *slot = tc_xstrdup("?");
        else
            *slot = tc_xstrdup((const char *)tc_buf_head(&b));
    }
    tc_buf_close(&b);
}

static int
show_batch_cb(const struct store_batch *sb, uint32_t skip, void *arg)
{
    struct show_ctx *c = arg;
    const char *err;
    char key[1024];

    if (tc_event_decode_array(sb->events, sb->events_len, &c->lim, &c->frame,
                              &err) < 0)
        return 0;
    for (uint32_t i = skip; i < c->frame.u.events.n; i++) {
        const struct tc_event *e = &c->frame.u.events.ev[i];

        if (incident_fingerprint(sb->host, e, key, sizeof(key)) == 0 ||
            strcmp(key, c->fp) != 0)
            continue;
        show_event(c, e, store_origin_name(sb->origin));
    }
    return 0;
}

/*
 * --url: the incident's latest SHOW_EVENTS events, newest first, into
 * *out (an array; the caller decrefs): the pages of GET
 * /api/v1/incidents/ID/events, each asked to read only what is left of
 * the SHOW_SCAN window of the host's events (scan=), so that the
 * events are those the local scan finds whatever api.max_page is.
 * 0, or -1 (printed).
 */
static int
remote_show_events(struct ctl_remote *r, int64_t id, json_t **out)
{
    json_t *all = json_array(), *doc = NULL, *evs, *next, *j;
    int64_t left = SHOW_SCAN, scanned;
    char *cursor = NULL, path[256], esc[512];
    long status;
    size_t i;
    int rc = -1;

    while (json_array_size(all) < SHOW_EVENTS && left > 0) {
        snprintf(path, sizeof(path),
                 "/api/v1/incidents/%" PRId64 "/events?scan=%" PRId64 "%s%.64s",
                 id, left, cursor ? "&cursor=" : "", cursor ? cursor : "");
        if (ctl_remote_get(r, path, &doc, &status) < 0)
            goto out;
        evs = json_object_get(doc, "events");
        next = json_object_get(doc, "next_cursor");
        if (!json_is_array(evs) ||
            ctl_remote_i64(doc, "scanned", &scanned) < 0 || scanned < 0 ||
            scanned > left || !(json_is_null(next) || json_is_string(next)) ||
            (json_is_string(next) && strlen(json_string_value(next)) > 64)) {
            fprintf(stderr,
                    "tocsinctl: %s: an events page not as the API writes it\n",
                    ctl_esc(esc, sizeof(esc), ctl_remote_host(r)));
            goto out;
        }
        json_array_foreach(evs, i, j)
        {
            if (json_array_size(all) < SHOW_EVENTS)
                json_array_append(all, j);
        }
        left -= scanned;
        free(cursor);
        cursor = NULL;
        /* A page that read nothing would be asked for again. */
        if (!json_is_string(next) || scanned == 0)
            break;
        cursor = ctl_remote_escape(r, json_string_value(next));
        json_decref(doc);
        doc = NULL;
    }
    *out = all;
    all = NULL;
    rc = 0;
out:
    free(cursor);
    json_decref(doc);
    json_decref(all);
    return rc;
}

/*
 * --url: GET /api/v1/incidents/ID (the incident and its timeline) and
 * its latest events (remote_show_events), into c as the local show
 * fills it. 0; -ENOENT (nothing
 * printed: no such incident); -1 (printed).
 */
static int
remote_show(const struct ctl_opts *o, int64_t id, struct show_ctx *c)
{
    struct ctl_remote *r = NULL;
    struct incident in = {0};
    struct problem_mark m;
    struct view_silence sil;
    json_t *doc = NULL, *evs = NULL, *tl, *j;
    char path[128], esc[512];
    int has_mark, has_sil, rc;
    size_t i;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    snprintf(path, sizeof(path), "/api/v1/incidents/%" PRId64, id);
    if ((rc = ctl_remote_get_one(r, path, &doc)) < 0)
        goto out;
    rc = -1;
    if (remote_show_events(r, id, &evs) < 0)
        goto out;
    tl = json_object_get(doc, "timeline");
    if (ctl_remote_incident(doc, &in, &m, &has_mark, &sil, &has_sil) < 0 ||
        !json_is_array(tl))
        goto bad;
    if (has_sil)
        sil_cache_add(&c->sils, &sil);
    show_inc_cb(&in, has_mark ? &m : NULL, c);
    if (c->json) {
        c->out.len--;
        tc_json_raw(&c->out, ",\"timeline\":[");
    } else {
        tc_json_raw(&c->out, "\ntimeline:\n");
    }
    json_array_foreach(tl, i, j)
    {
        struct incident_note n;

        if (ctl_remote_inote(j, &n) < 0)
            goto bad;
        show_note_cb(&n, c);
    }
    if (!c->json)
        tc_table_render(&c->notes, &c->out);
    /* Newest first from the API; the ring holds them oldest first. */
    for (i = json_array_size(evs); i-- > 0;) {
        struct ctl_remote_event re;

        if (ctl_remote_event(json_array_get(evs, i), &re) < 0) {
            ctl_remote_event_free(&re);
            goto bad;
        }
        show_event(c, &re.ev, re.origin);
        ctl_remote_event_free(&re);
    }
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "tocsinctl: %s: an incident not as the API writes it\n",
            ctl_esc(esc, sizeof(esc), ctl_remote_host(r)));
out:
    free(in.fingerprint);
    json_decref(doc);
    json_decref(evs);
    ctl_remote_close(r);
    return rc;
}

static int
incidents_show(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct store *store = NULL;
    struct incidents_filter f = {0};
    struct show_ctx *c;
    int status = 1;

    c = tc_xcalloc(1, sizeof(*c));
    c->json = o->json;
    c->now = tc_now_ns();
    tc_table_init(&c->notes, note_cols,
                  sizeof(note_cols) / sizeof(note_cols[0]));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            c->json = 1;
        else if (f.id == 0 && ctl_parse_id(argv[i], &f.id) == 0)
            continue;
        else {
            incidents_usage(stderr);
            free(c);
            return 2;
        }
    }
    if (f.id == 0) {
        incidents_usage(stderr);
        free(c);
        return 2;
    }
    tc_buf_init(&c->out, OUT_MAX);
    tc_frame_init(&c->frame);
    c->lim = tc_wire_default_limits;
    c->lim.max_frame = UINT32_MAX;
    if (o->url != NULL) {
        /* The same document, read from the API. */
        int rc = remote_show(o, f.id, c);

        if (rc == -ENOENT)
            fprintf(stderr, "tocsinctl: no incident %" PRId64 "\n", f.id);
        if (rc < 0)
            goto out;
        goto events;
    }
    if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
        goto out;
    sil_cache_load(&c->sils, is, c->now);
    if (incidents_store_list(is, &f, show_inc_cb, c) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (!c->found) {
        fprintf(stderr, "tocsinctl: no incident %" PRId64 "\n", f.id);
        goto out;
    }
    if (c->json) {
        /* Replace the closing brace: timeline and events go inside. */
        c->out.len--;
        tc_json_raw(&c->out, ",\"timeline\":[");
    } else {
        tc_json_raw(&c->out, "\ntimeline:\n");
    }
    if (incidents_store_timeline(is, f.id, show_note_cb, c) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (!c->json)
        tc_table_render(&c->notes, &c->out);
    /* The latest events with the incident's fingerprint. */
    if (store_open(cfg->store_path, STORE_RDONLY, &store) == 0)
        (void)store_events_iter(store, c->host, SHOW_SCAN, show_batch_cb, c);
events:
    tc_json_raw(&c->out, c->json ? "],\"events\":[" : "\nlatest events:\n");
    {
        uint64_t from = c->nev > SHOW_EVENTS ? c->nev - SHOW_EVENTS : 0;

        for (uint64_t i = from; i < c->nev; i++) {
            const char *s = c->ev[i % SHOW_EVENTS];

            if (c->json) {
                if (i > from)
                    tc_json_raw(&c->out, ",");
                tc_json_raw(&c->out, s);
            } else {
                /* Already escaped by tc_view_event_line. */
                tc_json_raw(&c->out, "  ");
                tc_json_raw(&c->out, s);
                tc_json_raw(&c->out, "\n");
            }
        }
    }
    if (c->json)
        tc_json_raw(&c->out, "]}\n");
    fwrite(tc_buf_head(&c->out), 1, tc_buf_size(&c->out), stdout);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    for (int i = 0; i < SHOW_EVENTS; i++)
        free(c->ev[i]);
    tc_table_free(&c->notes);
    sil_cache_free(&c->sils);
    tc_frame_close(&c->frame);
    tc_buf_close(&c->out);
    store_close(store);
    incidents_store_close(is);
    config_free(cfg);
    free(c);
    return status;
}

/*
 * --url: POST /api/v1/incidents/ID/VERB. The API records the action
 * with the token's name as its user and answers 202 before the
 * collector applies it: reported as the local "recorded" line.
 */
static int
remote_action(const struct ctl_opts *o, const struct incident_action *a)
{
    struct ctl_remote *r = NULL;
    json_t *body = NULL, *doc = NULL;
    char path[128], who[256];
    const char *user;
    long status;
    int64_t aid = 0;
    int rc = 1;

    if (ctl_remote_open(o, &r) < 0)
        return 1;
    snprintf(path, sizeof(path), "/api/v1/incidents/%" PRId64 "/%s",
             a->incident_id, incident_verb_name(a->verb));
    if (a->text != NULL &&
        (body = json_pack("{s:s}", "text", a->text)) == NULL) {
        /* jansson takes UTF-8 only; the API would refuse it anyway. */
        fprintf(stderr, "tocsinctl: incidents %s: text is not valid UTF-8\n",
                incident_verb_name(a->verb));
        goto out;
    }
    if (ctl_remote_post(r, path, body, &doc, &status) < 0)
        goto out;
    user = json_string_value(json_object_get(doc, "user"));
    if (json_is_integer(json_object_get(doc, "action")))
        aid = json_integer_value(json_object_get(doc, "action"));
    printf("incident %" PRId64 ": %s by %s recorded (action %" PRId64
           "); the collector applies it at its next step\n",
           a->incident_id, incident_verb_name(a->verb),
           ctl_esc(who, sizeof(who), user ? user : "?"), aid);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    json_decref(body);
    json_decref(doc);
    ctl_remote_close(r);
    return rc;
}

static int
incidents_action(const struct ctl_opts *o, enum incident_verb verb, int argc,
                 char **argv)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},
        {"comment", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct incident_action a = {0};
    int64_t aid = 0;
    int ch, done = 0, result = 0, status = 1, user_given = 0;

    a.user = ctl_default_user();
    a.verb = verb;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "u:m:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            a.user = optarg;
            user_given = 1;
            break;
        case 'm':
            a.text = optarg;
            break;
        default:
            incidents_usage(stderr);
            return 2;
        }
    }
    if (optind >= argc || ctl_parse_id(argv[optind], &a.incident_id) < 0 ||
        (verb == INCIDENT_NOTE ? optind + 2 != argc : optind + 1 != argc)) {
        incidents_usage(stderr);
        return 2;
    }
    if (verb == INCIDENT_NOTE)
        a.text = argv[optind + 1];
    if (o->url != NULL) {
        /* The user is the token's name, set by the collector. */
        if (user_given)
            return ctl_remote_user_refused();
        return remote_action(o, &a);
    }
    a.ts = tc_now_ns();
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    if (incidents_store_action_add(is, &a, &aid) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    done = ctl_wait_action(is, aid, &result);
    if (!done) {
        printf("incident %" PRId64 ": %s recorded (action %" PRId64
               "); the collector applies it when it runs\n",
               a.incident_id, incident_verb_name(verb), aid);
        status = 0;
    } else if (result == 0) {
        char who[256];

        printf("incident %" PRId64 ": %s by %s\n", a.incident_id,
               incident_verb_name(verb), ctl_esc(who, sizeof(who), a.user));
        status = 0;
    } else {
        fprintf(stderr, "tocsinctl: incident %" PRId64 ": %s refused: %s\n",
                a.incident_id, incident_verb_name(verb),
                result == -ENOENT     ? "no such incident, or it is closed"
                : result == -EALREADY ? "not in a state where that applies"
                                      : strerror(-result));
    }
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

int
ctl_incidents(const struct ctl_opts *o, int argc, char **argv)
{
    enum incident_verb verb;

    if (argc < 2) {
        incidents_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return incidents_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return incidents_show(o, argc - 1, argv + 1);
    if (incident_verb_parse(argv[1], &verb) == 0)
        return incidents_action(o, verb, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        incidents_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: incidents: unknown subcommand '%s'\n", argv[1]);
    incidents_usage(stderr);
    return 2;
}
