/*
 * ctl_explain: "tocsinctl explain" (docs/correlation.md, "Asking why:
 * explain").
 *
 *   tocsinctl explain incident ID [--json]
 *   tocsinctl explain problem ID [--json]
 *
 * Why an incident is, or is not, in a problem, and why a problem is
 * ranked and stands as it does. tocsinctl loads the engines from the
 * store as the collector does at start (incidents_store_load), under
 * the configuration given with -c (so a changed correlation: block can
 * be tried before a reload), and asks the problem engine, whose
 * explain uses the predicates its step uses. The store is opened
 * read-only: explain writes nothing.
 *
 * Exit status: 0 explained, 1 no such incident or problem (or an
 * error), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "config.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "log.h"
#include "store/incidents_store.h"
#include "store/store.h"
#include "util.h"
#include "view/explain_view.h"
#include "wire.h"

#define OUT_MAX (16u << 20)

static void
explain_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl explain incident ID [--json]\n"
               "       tocsinctl explain problem ID [--json]\n");
}

/* Links of a problem, copied out of the store's callback. */
struct links {
    struct problem_link *v;
    size_t n;
};

static int
link_cb(const struct problem_link *l, void *arg)
{
    struct links *ls = arg;

    ls->v = tc_xreallocarray(ls->v, ls->n + 1, sizeof(*ls->v));
    ls->v[ls->n] = *l;
    ls->v[ls->n].rule = tc_xstrdup(l->rule ? l->rule : "");
    ls->v[ls->n].fields = tc_xstrdup(l->fields ? l->fields : "");
    ls->n++;
    return 0;
}

static void
links_free(struct links *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free((char *)ls->v[i].rule);
        free((char *)ls->v[i].fields);
    }
    free(ls->v);
}

/* The stored candidates, copied. */
struct cands {
    struct problem_candidate *v;
    size_t n;
};

static int
cand_cb(const struct problem_candidate *c, void *arg)
{
    struct cands *cs = arg;

    cs->v = tc_xreallocarray(cs->v, cs->n + 1, sizeof(*cs->v));
    cs->v[cs->n] = *c;
    cs->v[cs->n].host = tc_xstrdup(c->host ? c->host : "");
    cs->v[cs->n].evidence = tc_xstrdup(c->evidence ? c->evidence : "");
    cs->n++;
    return 0;
}

static void
cands_free(struct cands *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free((char *)cs->v[i].host);
        free((char *)cs->v[i].evidence);
    }
    free(cs->v);
}

struct xctx {
    int json;
    int found;
    struct problem_engine *pe;
    struct incidents_store *is;
    struct tc_buf out;
    int64_t now;
    struct incident in; /* explain incident: the row, strings owned */
    /* Its events (the last EVENT_SCAN of its host), for the fields. */
    struct problem_explain x;
    struct tc_frame frame;
    struct tc_wire_limits lim;
};

#define EVENT_SCAN 5000

static int
incident_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct xctx *c = arg;

    (void)m; /* the engine's own mark is the one explained */
    c->found = 1;
    c->in = *in;
    c->in.fingerprint = tc_xstrdup(in->fingerprint ? in->fingerprint : "");
    c->in.host = tc_xstrdup(in->host ? in->host : "");
    c->in.rule = tc_xstrdup(in->rule ? in->rule : "");
    c->in.kind = tc_xstrdup(in->kind ? in->kind : "");
    c->in.service = tc_xstrdup(in->service ? in->service : "");
    return 0;
}

/* An event batch of the incident's host: its events of the incident's
 * fingerprint tell which fields looked like host names. */
static int
event_batch_cb(const struct store_batch *sb, uint32_t skip, void *arg)
{
    struct xctx *c = arg;
    const char *err;
    char key[1024];

    if (tc_event_decode_array(sb->events, sb->events_len, &c->lim, &c->frame,
                              &err) < 0)
        return 0;
    for (uint32_t i = skip; i < c->frame.u.events.n; i++) {
        const struct tc_event *e = &c->frame.u.events.ev[i];

        if (incident_fingerprint(sb->host, e, key, sizeof(key)) == 0 ||
            strcmp(key, c->in.fingerprint) != 0)
            continue;
        problem_engine_explain_event(c->pe, &c->x, sb->host, e);
    }
    return 0;
}

static int
explain_incident(struct xctx *c, const char *store_path)
{
    struct links ls = {0};
    const struct problem_link *link = NULL;
    struct view_explain_incident v;
    struct store *store = NULL;
    int rc;

    if ((rc = problem_engine_explain_incident(c->pe, &c->in, &c->x)) < 0)
        return rc;
    /* Nothing named a known host: which fields looked like one. */
    if (c->x.mark.problem_id == 0 && c->x.v[PROBLEM_R_REFERENCE].seen == 0 &&
        store_open(store_path, STORE_RDONLY, &store) == 0) {
        tc_frame_init(&c->frame);
        c->lim = tc_wire_default_limits;
        c->lim.max_frame = UINT32_MAX;
        (void)store_events_iter(store, c->in.host, EVENT_SCAN, event_batch_cb,
                                c);
        tc_frame_close(&c->frame);
        store_close(store);
    }
    /* Its link: the last one made to its problem and not undone. */
    if (c->x.mark.problem_id != 0 &&
        (rc = incidents_store_problem_links(c->is, c->x.mark.problem_id,
                                            link_cb, &ls)) < 0)
        goto out;
    for (size_t i = 0; i < ls.n; i++)
        if (ls.v[i].incident_id == c->in.id)
            link = ls.v[i].removed ? NULL : &ls.v[i];
    v = (struct view_explain_incident){&c->in, &c->x, link};
    rc = c->json ? view_explain_incident_json(&c->out, &v)
                 : view_explain_incident_text(&c->out, &v);
out:
    links_free(&ls);
    return rc;
}

/* Filled by problem_cb from the rows read before it. */
struct pctx {
    struct xctx *c;
    struct links ls;
    struct cands cs;
};

static int
problem_cb(const struct problems_row *r, void *arg)
{
    struct pctx *pc = arg;
    struct xctx *c = pc->c;
    struct problem_explain_problem xp;
    struct problem_explain *members = NULL;
    struct view_explain_problem v = {r->p,     pc->ls.v, pc->ls.n, pc->cs.v,
                                     pc->cs.n, NULL,     NULL,     0};
    int rc;

    c->found = 1;
    if (problem_engine_explain_problem(c->pe, r->p->id, c->now, &xp) == 0) {
        v.xp = &xp;
        members =
            tc_xcalloc(r->nincidents ? r->nincidents : 1, sizeof(*members));
        for (size_t i = 0; i < r->nincidents; i++) {
            struct incident in = {.id = r->incidents[i]};

            /* Members of a problem in memory are in memory too. */
            if (problem_engine_explain_incident(c->pe, &in, &members[i]) == 0)
                v.nmembers++;
        }
        v.members = members;
    }
    rc = c->json ? view_explain_problem_json(&c->out, &v)
                 : view_explain_problem_text(&c->out, &v);
    free(members);
    return rc;
}

int
ctl_explain(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incident_engine *ie = NULL;
    struct incidents_watermark wm;
    struct incident_config ic;
    struct problem_config pcfg;
    struct xctx c = {.json = o->json};
    struct pctx pc = {.c = &c};
    const char *what = NULL, *ids = NULL;
    int64_t id = 0;
    int rc = 0, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            explain_usage(stdout);
            return 0;
        } else if (what == NULL && argv[i][0] != '-') {
            what = argv[i];
        } else if (ids == NULL && argv[i][0] != '-') {
            ids = argv[i];
        } else {
            explain_usage(stderr);
            return 2;
        }
    }
    if (what == NULL || ids == NULL ||
        (strcmp(what, "incident") != 0 && strcmp(what, "problem") != 0) ||
        ctl_parse_id(ids, &id) < 0) {
        explain_usage(stderr);
        return 2;
    }
    tc_buf_init(&c.out, OUT_MAX);
    c.now = tc_now_ns();
    if (ctl_open_incidents(o, 1, &cfg, &c.is) < 0)
        goto out;
    /* The rules in force in the file given: what the collector runs
     * after its next start or reload. */
    config_incidents(cfg, &ic);
    config_correlation(cfg, &pcfg);
    if ((rc = incidents_store_load(c.is, &ic, &pcfg, &ie, &c.pe, &wm)) < 0)
        goto fail;
    if (strcmp(what, "incident") == 0) {
        struct incidents_filter f = {.id = id};

        if ((rc = incidents_store_list(c.is, &f, incident_cb, &c)) < 0 ||
            (c.found && (rc = explain_incident(&c, cfg->store_path)) < 0))
            goto fail;
    } else {
        struct problems_filter f = {.id = id};

        if ((rc = incidents_store_problem_links(c.is, id, link_cb, &pc.ls)) <
                0 ||
            (rc = incidents_store_problem_candidates(c.is, id, cand_cb,
                                                     &pc.cs)) < 0 ||
            (rc = incidents_store_problems(c.is, &f, problem_cb, &pc)) < 0)
            goto fail;
    }
    if (!c.found) {
        fprintf(stderr, "tocsinctl: no %s %" PRId64 "\n", what, id);
        goto out;
    }
    fwrite(tc_buf_head(&c.out), 1, tc_buf_size(&c.out), stdout);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    goto out;
fail:
    log_warnx("%s: explain: %s", cfg->store_path,
              rc == -ENOBUFS ? "output too large"
                             : incidents_store_errmsg(c.is));
out:
    links_free(&pc.ls);
    cands_free(&pc.cs);
    tc_buf_close(&c.out);
    free(c.in.fingerprint);
    free(c.in.host);
    free(c.in.rule);
    free(c.in.kind);
    free(c.in.service);
    problem_engine_free(c.pe);
    incident_engine_free(ie);
    incidents_store_close(c.is);
    config_free(cfg);
    return status;
}
