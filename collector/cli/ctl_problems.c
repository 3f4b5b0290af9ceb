/*
 * ctl_problems: "tocsinctl problems" (docs/internals/problems.md).
 *
 *   tocsinctl problems list [--state S] [--json]
 *   tocsinctl problems show ID [--json]
 *   tocsinctl problems investigate|resolve|close ID [--user U]
 *   tocsinctl problems known-error ID CAUSE [WORKAROUND] [--user U]
 *   tocsinctl problems link|unlink ID INCIDENT [--user U]
 *   tocsinctl problems note ID TEXT [--user U]
 *   tocsinctl problems rca ID why1..why5|CATEGORY TEXT [--user U]
 *   tocsinctl problems review ID INCIDENT FIELD TEXT [--user U]
 *
 * Listings read the tables read-only and buffer their output (the
 * store's callbacks run inside a read transaction). An action is a row
 * of the actions table (verb "problem-<verb>") that the collector
 * applies in its step after the incident changes, like the incident
 * actions; tocsinctl waits for its verdict.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/ctl_remote.h"
#include "config.h"
#include "engine/problem.h"
#include "json.h"
#include "log.h"
#include "store/incidents_store.h"
#include "table.h"
#include "timefmt.h"
#include "util.h"
#include "view/problem_view.h"

#define OUT_MAX (16u << 20)

static void
problems_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl problems list [--state S] [--json]\n"
               "       tocsinctl problems show ID [--json]\n"
               "       tocsinctl problems investigate|resolve|close ID "
               "[--user U]\n"
               "       tocsinctl problems known-error ID CAUSE [WORKAROUND] "
               "[--user U]\n"
               "       tocsinctl problems link|unlink ID INCIDENT [--user U]\n"
               "       tocsinctl problems note ID TEXT [--user U]\n"
               "       tocsinctl problems rca ID why1..why5|people|process|"
               "technology|environment|supplier TEXT [--user U]\n"
               "       tocsinctl problems review ID INCIDENT summary|impact|"
               "detection|response|recovery|lessons|action TEXT [--user U]\n");
}

struct plist_ctx {
    int json;
    uint64_t n;
    struct tc_buf out;
    struct tc_table table;
};

static int
plist_cb(const struct problems_row *r, void *arg)
{
    struct plist_ctx *c = arg;
    struct view_problem v = {r->p, r->incidents, r->nincidents, r->hosts,
                             r->nhosts};

    c->n++;
    if (!c->json) {
        view_problem_row(&c->table, &v);
        return 0;
    }
    tc_json_raw(&c->out, c->n > 1 ? ",\n" : "\n");
    return view_problem_json(&c->out, &v, 0);
}

/* --url: one problem of GET /api/v1/problems, printed as plist_cb. */
static int
remote_plist_cb(json_t *item, void *arg)
{
    struct ctl_remote_problem rp;
    struct problems_row row;
    int rc;

    if (ctl_remote_problem(item, &rp) < 0)
        return -EINVAL;
    row = (struct problems_row){&rp.p, rp.incidents, rp.nincidents,
                                (const char *const *)rp.hosts, rp.nhosts};
    rc = plist_cb(&row, arg);
    ctl_remote_problem_free(&rp);
    return rc < 0 ? -ENOBUFS : 0;
}

/* --url: the pages of GET /api/v1/problems into c. 0 or -1 (printed). */
static int
remote_plist(const struct ctl_opts *o, const struct problems_filter *f,
             struct plist_ctx *c)
{
    struct ctl_remote *r = NULL;
    char path[128];
    int rc;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    snprintf(path, sizeof(path), "/api/v1/problems%s%s",
             f->state ? "?state=" : "", f->state ? f->state : "");
    rc = ctl_remote_pages(r, path, "problems", remote_plist_cb, c);
    ctl_remote_close(r);
    return rc;
}

static int
problems_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"state", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct problems_filter f = {0};
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct plist_ctx c = {.json = o->json};
    enum problem_state st;
    int ch, rc, status = 1;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "js:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            c.json = 1;
            break;
        case 's':
            if (problem_state_parse(optarg, &st) < 0) {
                fprintf(stderr, "tocsinctl: --state: one of open, "
                                "investigating, known_error, resolved, "
                                "closed\n");
                return 2;
            }
            f.state = problem_state_name(st);
            break;
        default:
            problems_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        problems_usage(stderr);
        return 2;
    }
    tc_buf_init(&c.out, OUT_MAX);
    tc_table_init(&c.table, view_problem_cols, view_problem_ncols);
    if (o->url != NULL) {
        /* Same output as below, the rows read from the API. */
        if (remote_plist(o, &f, &c) < 0)
            goto out;
    } else {
        if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
            goto out;
        rc = incidents_store_problems(is, &f, plist_cb, &c);
        if (rc < 0) {
            log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
            goto out;
        }
    }
    if (c.json) {
        fputs("[", stdout);
        if (tc_buf_size(&c.out))
            fwrite(tc_buf_head(&c.out), 1, tc_buf_size(&c.out), stdout);
        fputs(c.n ? "\n]\n" : "]\n", stdout);
    } else {
        tc_table_print(&c.table, stdout);
    }
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    tc_table_free(&c.table);
    tc_buf_close(&c.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

struct pshow_ctx {
    int json;
    int found;
    size_t n; /* items of the current JSON array */
    struct tc_buf out;
    struct tc_table table;
};

static int
show_cb(const struct problems_row *r, void *arg)
{
    struct pshow_ctx *c = arg;
    struct view_problem v = {r->p, r->incidents, r->nincidents, r->hosts,
                             r->nhosts};

    c->found = 1;
    if (!c->json)
        return view_problem_text(&c->out, &v);
    if (view_problem_json(&c->out, &v, 1) < 0)
        return -ENOBUFS;
    return view_problem_rca_json(&c->out, r->p);
}

static int
cand_cb(const struct problem_candidate *cand, void *arg)
{
    struct pshow_ctx *c = arg;

    if (!c->json) {
        view_candidate_row(&c->table, cand);
        return 0;
    }
    tc_json_raw(&c->out, c->n++ ? "," : "");
    return view_problem_candidate_json(&c->out, cand);
}

static int
link_cb(const struct problem_link *l, void *arg)
{
    struct pshow_ctx *c = arg;

    if (!c->json) {
        view_link_row(&c->table, l);
        return 0;
    }
    tc_json_raw(&c->out, c->n++ ? "," : "");
    return view_problem_link_json(&c->out, l);
}

static const struct tc_table_col note_cols[] = {
    {"TIME", 0, 0}, {"WHAT", 0, 0}, {"WHO", 0, 40}, {"DETAIL", 0, 80}};

static int
note_cb(const struct problem_note *n, void *arg)
{
    struct pshow_ctx *c = arg;

    if (!c->json) {
        char iso[TC_RFC3339_MAX];

        tc_rfc3339(n->ts, 3, iso, sizeof(iso));
        tc_table_cell(&c->table, iso);
        tc_table_cell(&c->table, n->what);
        tc_table_cell(&c->table, n->who);
        tc_table_cell(&c->table, n->detail);
        return 0;
    }
    tc_json_raw(&c->out, c->n++ ? "," : "");
    return view_problem_note_json(&c->out, n);
}

/* One section of show: a JSON array under key, or a titled table. */
static int
section(struct pshow_ctx *c, const char *key, const char *title,
        const struct tc_table_col *cols, size_t ncols)
{
    if (c->json) {
        c->n = 0;
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, key);
        return tc_json_raw(&c->out, "[");
    }
    tc_table_init(&c->table, cols, ncols);
    tc_json_raw(&c->out, "\n");
    tc_json_raw(&c->out, title);
    return tc_json_raw(&c->out, ":\n");
}

static int
section_end(struct pshow_ctx *c)
{
    int rc;

    if (c->json)
        return tc_json_raw(&c->out, "]");
    rc = tc_table_render(&c->table, &c->out);
    tc_table_free(&c->table);
    return rc;
}

/*
 * --url: GET /api/v1/problems/ID, its members turned back into the
 * structs the callbacks above take, in the same order, so that c->out
 * holds what the local show builds. 0; -ENOENT (nothing printed: no
 * such problem); -1 (printed).
 */
static int
remote_pshow(const struct ctl_opts *o, int64_t id, struct pshow_ctx *c)
{
    struct ctl_remote *r = NULL;
    struct ctl_remote_problem rp = {0};
    struct problems_row row;
    json_t *doc = NULL, *cands, *links, *tl, *j;
    char path[64], esc[512];
    size_t i;
    int rc;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    snprintf(path, sizeof(path), "/api/v1/problems/%" PRId64, id);
    if ((rc = ctl_remote_get_one(r, path, &doc)) < 0)
        goto out;
    rc = -1;
    cands = json_object_get(doc, "candidates");
    links = json_object_get(doc, "links");
    tl = json_object_get(doc, "timeline");
    if (ctl_remote_problem(doc, &rp) < 0 ||
        ctl_remote_problem_rca(doc, &rp) < 0 || !json_is_array(cands) ||
        !json_is_array(links) || !json_is_array(tl))
        goto bad;
    row = (struct problems_row){&rp.p, rp.incidents, rp.nincidents,
                                (const char *const *)rp.hosts, rp.nhosts};
    if (show_cb(&row, c) < 0)
        goto big;
    section(c, "candidates", "root-cause candidates", view_candidate_cols,
            view_candidate_ncols);
    json_array_foreach(cands, i, j)
    {
        struct problem_candidate pc;

        if (ctl_remote_candidate(j, &pc) < 0)
            goto bad;
        if (cand_cb(&pc, c) < 0)
            goto big;
    }
    section_end(c);
    section(c, "links", "links", view_link_cols, view_link_ncols);
    json_array_foreach(links, i, j)
    {
        struct problem_link l;

        if (ctl_remote_link(j, &l) < 0)
            goto bad;
        if (link_cb(&l, c) < 0)
            goto big;
    }
    section_end(c);
    section(c, "timeline", "timeline", note_cols,
            sizeof(note_cols) / sizeof(note_cols[0]));
    json_array_foreach(tl, i, j)
    {
        struct problem_note n;

        if (ctl_remote_pnote(j, &n) < 0)
            goto bad;
        if (note_cb(&n, c) < 0)
            goto big;
    }
    section_end(c);
    rc = 0;
    goto out;
big:
    fprintf(stderr, "tocsinctl: problems show: output too large\n");
    goto out;
bad:
    fprintf(stderr, "tocsinctl: %s: a problem not as the API writes it\n",
            ctl_esc(esc, sizeof(esc), ctl_remote_host(r)));
out:
    tc_table_free(&c->table); /* a section cut short */
    ctl_remote_problem_free(&rp);
    json_decref(doc);
    ctl_remote_close(r);
    return rc;
}

static int
problems_show(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct pshow_ctx c = {.json = o->json};
    struct problems_filter f = {0};
    const char *ids = NULL;
    int rc = 0, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            c.json = 1;
        else if (ids == NULL && argv[i][0] != '-')
            ids = argv[i];
        else {
            problems_usage(stderr);
            return 2;
        }
    }
    if (ids == NULL || ctl_parse_id(ids, &f.id) < 0) {
        problems_usage(stderr);
        return 2;
    }
    tc_buf_init(&c.out, OUT_MAX);
    if (o->url != NULL) {
        /* The same document, read from the API. */
        rc = remote_pshow(o, f.id, &c);
        if (rc == -ENOENT)
            fprintf(stderr, "tocsinctl: no problem %" PRId64 "\n", f.id);
        if (rc < 0)
            goto out;
        goto print;
    }
    if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
        goto out;
    if ((rc = incidents_store_problems(is, &f, show_cb, &c)) < 0)
        goto fail;
    if (!c.found) {
        fprintf(stderr, "tocsinctl: no problem %" PRId64 "\n", f.id);
        goto out;
    }
    section(&c, "candidates", "root-cause candidates", view_candidate_cols,
            view_candidate_ncols);
    if ((rc = incidents_store_problem_candidates(is, f.id, cand_cb, &c)) < 0)
        goto fail;
    section_end(&c);
    section(&c, "links", "links", view_link_cols, view_link_ncols);
    if ((rc = incidents_store_problem_links(is, f.id, link_cb, &c)) < 0)
        goto fail;
    section_end(&c);
    section(&c, "timeline", "timeline", note_cols,
            sizeof(note_cols) / sizeof(note_cols[0]));
    if ((rc = incidents_store_problem_timeline(is, f.id, note_cb, &c)) < 0)
        goto fail;
    section_end(&c);
print:
    if (c.json)
        tc_json_raw(&c.out, "}\n");
    fwrite(tc_buf_head(&c.out), 1, tc_buf_size(&c.out), stdout);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    goto out;
fail:
    log_warnx("%s: %s", cfg->store_path,
              rc == -ENOBUFS ? "output too large" : incidents_store_errmsg(is));
out:
    tc_buf_close(&c.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

static const char *
refusal(int result)
{
    switch (result) {
    case -ENOENT:
        return "no such problem or incident, or it is closed";
    case -EALREADY:
        return "not in a state where that applies";
    case -EBUSY:
        return "an incident of it is active, or the incident has another "
               "problem";
    case -EINVAL:
        return "missing text or unknown key";
    case -E2BIG:
        return "text too long, or too many factors or review entries";
    default:
        return strerror(-result);
    }
}

/*
 * --url: POST /api/v1/problems/ID/VERB with the members docs/api.md
 * lists for it. The API records it under the token's name and answers
 * before the engine applies it: reported as recorded.
 */
static int
remote_paction(const struct ctl_opts *o, const struct problem_action *a)
{
    struct ctl_remote *r = NULL;
    json_t *body = NULL, *doc = NULL;
    char path[128], who[256];
    const char *user;
    long status;
    int64_t aid = 0;
    int rc = 1;

    switch (a->verb) {
    case PROBLEM_V_INVESTIGATE:
    case PROBLEM_V_RESOLVE:
    case PROBLEM_V_CLOSE:
        break;
    case PROBLEM_V_KNOWN_ERROR:
        body = json_pack("{s:s, s:s}", "text", a->text, "workaround", a->text2);
        break;
    case PROBLEM_V_LINK:
    case PROBLEM_V_UNLINK:
        body = json_pack("{s:I}", "incident", (json_int_t)a->incident_id);
        break;
    case PROBLEM_V_NOTE:
        body = json_pack("{s:s}", "text", a->text);
        break;
    case PROBLEM_V_RCA:
        body = json_pack("{s:s, s:s}", "key", a->key, "text", a->text);
        break;
    case PROBLEM_V_REVIEW:
        body =
            json_pack("{s:I, s:s, s:s}", "incident", (json_int_t)a->incident_id,
                      "key", a->key, "text", a->text);
        break;
    }
    if (body == NULL && a->verb != PROBLEM_V_INVESTIGATE &&
        a->verb != PROBLEM_V_RESOLVE && a->verb != PROBLEM_V_CLOSE) {
        /* jansson takes UTF-8 only; the API would refuse it anyway. */
        fprintf(stderr, "tocsinctl: problems %s: text is not valid UTF-8\n",
                problem_verb_name(a->verb));
        goto out;
    }
    if (ctl_remote_open(o, &r) < 0)
        goto out;
    snprintf(path, sizeof(path), "/api/v1/problems/%" PRId64 "/%s",
             a->problem_id, problem_verb_name(a->verb));
    if (ctl_remote_post(r, path, body, &doc, &status) < 0)
        goto out;
    user = json_string_value(json_object_get(doc, "user"));
    if (json_is_integer(json_object_get(doc, "action")))
        aid = json_integer_value(json_object_get(doc, "action"));
    printf("problem %" PRId64 ": %s by %s recorded (action %" PRId64
           "); the collector applies it at its next step\n",
           a->problem_id, problem_verb_name(a->verb),
           ctl_esc(who, sizeof(who), user ? user : "?"), aid);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    json_decref(body);
    json_decref(doc);
    ctl_remote_close(r);
    return rc;
}

static int
problems_action(const struct ctl_opts *o, enum problem_verb verb, int argc,
                char **argv)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct problem_action a = {0};
    int64_t aid = 0;
    int ch, nargs, done, result = 0, status = 1, user_given = 0;
    char **args;

    a.user = ctl_default_user();
    a.verb = verb;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "u:", longopts, NULL)) != -1) {
        if (ch != 'u') {
            problems_usage(stderr);
            return 2;
        }
        a.user = optarg;
        user_given = 1;
    }
    args = argv + optind;
    nargs = argc - optind;
    if (nargs < 1 || ctl_parse_id(args[0], &a.problem_id) < 0)
        goto usage;
    switch (verb) {
    case PROBLEM_V_INVESTIGATE:
    case PROBLEM_V_RESOLVE:
    case PROBLEM_V_CLOSE:
        if (nargs != 1)
            goto usage;
        break;
    case PROBLEM_V_KNOWN_ERROR:
        if (nargs != 2 && nargs != 3)
            goto usage;
        a.text = args[1];
        a.text2 = nargs == 3 ? args[2] : "";
        break;
    case PROBLEM_V_LINK:
    case PROBLEM_V_UNLINK:
        if (nargs != 2 || ctl_parse_id(args[1], &a.incident_id) < 0)
            goto usage;
        break;
    case PROBLEM_V_NOTE:
        if (nargs != 2)
            goto usage;
        a.text = args[1];
        break;
    case PROBLEM_V_RCA:
        if (nargs != 3)
            goto usage;
        a.key = args[1];
        a.text = args[2];
        break;
    case PROBLEM_V_REVIEW:
        if (nargs != 4 || ctl_parse_id(args[1], &a.incident_id) < 0)
            goto usage;
        if (!problem_review_field_ok(args[2])) {
            fprintf(stderr, "tocsinctl: unknown review field (summary, "
                            "impact, detection, response, recovery, "
                            "lessons, action)\n");
            return 2;
        }
        a.key = args[2];
        a.text = args[3];
        break;
    }
    if (o->url != NULL) {
        /* The user is the token's name, set by the collector. */
        if (user_given)
            return ctl_remote_user_refused();
        return remote_paction(o, &a);
    }
    a.ts = tc_now_ns();
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    if (incidents_store_problem_action_add(is, &a, &aid) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    done = ctl_wait_action(is, aid, &result);
    if (!done) {
        printf("problem %" PRId64 ": %s recorded (action %" PRId64
               "); the collector applies it when it runs\n",
               a.problem_id, problem_verb_name(verb), aid);
        status = 0;
    } else if (result == 0) {
        char who[256];

        printf("problem %" PRId64 ": %s by %s\n", a.problem_id,
               problem_verb_name(verb), ctl_esc(who, sizeof(who), a.user));
        status = 0;
    } else {
        fprintf(stderr, "tocsinctl: problem %" PRId64 ": %s refused: %s\n",
                a.problem_id, problem_verb_name(verb), refusal(result));
    }
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
usage:
    problems_usage(stderr);
    return 2;
}

int
ctl_problems(const struct ctl_opts *o, int argc, char **argv)
{
    enum problem_verb verb;

    if (argc < 2) {
        problems_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return problems_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return problems_show(o, argc - 1, argv + 1);
    if (problem_verb_parse(argv[1], &verb) == 0)
        return problems_action(o, verb, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        problems_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: problems: unknown subcommand\n");
    problems_usage(stderr);
    return 2;
}
