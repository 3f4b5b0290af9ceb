/*
 * ctl_runbooks: "tocsinctl runbooks" (docs/runbooks.md).
 *
 *   tocsinctl runbooks list [--json]
 *   tocsinctl runbooks test INCIDENT_ID [--json]
 *
 * Both load the directory named by runbooks.dir in the configuration
 * given with -c, with the collector's own loader (runbooks.h): the same
 * refusals, logged the same way. "test" reads the incident, its problem
 * and its latest event from the store read-only and runs the collector's
 * matcher on them: which runbook applies and why, the nearest that does
 * not and why not, and the action parameters dispatch would fill in.
 * Every string from a runbook file or an event is escaped in text
 * (common/table, ctl_esc) and JSON-escaped in JSON.
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
#include "json.h"
#include "log.h"
#include "runbooks/runbooks.h"
#include "store/incidents_store.h"
#include "store/store.h"
#include "table.h"
#include "util.h"
#include "view/runbook_view.h"
#include "wire.h"

#define OUT_MAX (16u << 20)
/* Events of the host scanned for the incident's latest event. */
#define TEST_SCAN 5000
/* A filled parameter: a template of RUNBOOK_MAX_PARAM bytes whose
 * placeholders name values of up to 64 KiB. */
#define EXPAND_MAX (256u << 10)

static void
runbooks_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl runbooks list [--json]\n"
               "       tocsinctl runbooks test INCIDENT_ID [--json]\n");
}

/* The config, then its runbook directory. 0 or -1 (logged). */
static int
load_set(const struct ctl_opts *o, struct collector_config **cfg,
         struct runbook_set **set)
{
    *set = NULL;
    if (config_load(o->config, cfg) < 0)
        return -1;
    if ((*cfg)->runbooks_dir == NULL) {
        log_warnx("%s: no runbooks configured (runbooks: {dir: PATH})",
                  (*cfg)->file);
        return -1;
    }
    if (runbooks_load((*cfg)->runbooks_dir, set) < 0) {
        log_warnx("%s: runbooks.dir: cannot read %s", (*cfg)->file,
                  (*cfg)->runbooks_dir);
        return -1;
    }
    return 0;
}

/* Under a table: each skipped file and why, escaped. */
static void
text_skipped(struct tc_buf *b, const struct runbook_set *set)
{
    char esc[2048];

    if (set->nskipped == 0)
        return;
    tc_json_raw(b, "\nskipped (not loaded):\n");
    for (size_t i = 0; i < set->nskipped; i++) {
        tc_json_raw(b, "  ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), set->skipped[i].error));
        tc_json_raw(b, "\n");
    }
}

static int
flush_out(struct tc_buf *b)
{
    fwrite(tc_buf_head(b), 1, tc_buf_size(b), stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

static const struct tc_table_col list_cols[] = {
    {"ID", 0, 40},     {"PRIORITY", 1, 0}, {"TITLE", 0, 40},
    {"ACTION", 0, 30}, {"MATCH", 0, 70},   {"FILE", 0, 0},
};

static int
runbooks_list(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct runbook_set *set = NULL;
    struct tc_table t;
    struct tc_buf b;
    int json = o->json, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        runbooks_usage(stderr);
        return 2;
    }
    tc_buf_init(&b, OUT_MAX);
    tc_table_init(&t, list_cols, sizeof(list_cols) / sizeof(list_cols[0]));
    if (load_set(o, &cfg, &set) < 0)
        goto out;
    if (json) {
        view_runbook_set_json(&b, set);
        tc_json_raw(&b, "\n");
    } else {
        for (size_t i = 0; i < set->n; i++) {
            const struct runbook *rb = &set->v[i];
            char summary[1024];

            runbook_match_summary(rb, summary, sizeof(summary));
            tc_table_cell(&t, rb->id);
            tc_table_cellf(&t, "%" PRId64, rb->priority);
            tc_table_cell(&t, rb->title);
            tc_table_cell(&t, rb->action);
            tc_table_cell(&t, summary);
            tc_table_cell(&t, rb->file);
        }
        tc_table_render(&t, &b);
        text_skipped(&b, set);
    }
    status = flush_out(&b);
out:
    tc_table_free(&t);
    tc_buf_close(&b);
    runbook_set_unref(set);
    config_free(cfg);
    return status;
}

/* What "test" learns of the incident; owned copies. */
struct test_ctx {
    int found;
    int64_t id;
    char *fingerprint, *host, *cls;
    int severity;
    char *problem_rule; /* NULL: in no problem */
    int64_t problem_id;
    struct runbook_kv *labels, *fields; /* of the latest matching event */
    size_t nlabels, nfields;
    int have_event;
    struct tc_frame frame;
    struct tc_wire_limits lim;
};

static int
test_inc_cb(const struct incident *in, const struct problem_mark *m, void *arg)
{
    struct test_ctx *c = arg;

    c->found = 1;
    c->problem_id = m->problem_id;
    c->fingerprint = tc_xstrdup(in->fingerprint);
    c->host = tc_xstrdup(in->host);
    c->cls = tc_xstrdup(problem_class(in->fingerprint));
    c->severity = (int)in->severity;
    return 0;
}

static int
test_problem_cb(const struct problems_row *r, void *arg)
{
    struct test_ctx *c = arg;

    free(c->problem_rule);
    c->problem_rule = tc_xstrdup(r->p->rule);
    return 0;
}

static void
kvs_free(struct runbook_kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

static struct runbook_kv *
kvs_copy(const struct tc_kv *src, uint32_t n)
{
    struct runbook_kv *v = tc_xcalloc(n + 1, sizeof(*v));

    for (uint32_t i = 0; i < n; i++) {
        v[i].key = tc_xstrndup(src[i].key.ptr, src[i].key.len);
        v[i].val = tc_xstrndup(src[i].val.ptr, src[i].val.len);
    }
    return v;
}

/* Keep the labels and fields of the latest event of the incident. */
static int
test_batch_cb(const struct store_batch *sb, uint32_t skip, void *arg)
{
    struct test_ctx *c = arg;
    const char *err;
    char key[1024];

    if (tc_event_decode_array(sb->events, sb->events_len, &c->lim, &c->frame,
                              &err) < 0)
        return 0;
    for (uint32_t i = skip; i < c->frame.u.events.n; i++) {
        const struct tc_event *e = &c->frame.u.events.ev[i];

        if (incident_fingerprint(sb->host, e, key, sizeof(key)) == 0 ||
            strcmp(key, c->fingerprint) != 0)
            continue;
        kvs_free(c->labels, c->nlabels);
        kvs_free(c->fields, c->nfields);
        c->labels = kvs_copy(e->labels, e->nlabels);
        c->nlabels = e->nlabels;
        c->fields = kvs_copy(e->fields, e->nfields);
        c->nfields = e->nfields;
        c->have_event = 1;
    }
    return 0;
}

static void
text_kvs(struct tc_buf *b, const struct runbook_kv *v, size_t n)
{
    char esc[1024];

    if (n == 0)
        tc_json_raw(b, " (none)");
    for (size_t i = 0; i < n; i++) {
        tc_json_raw(b, " ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v[i].key));
        tc_json_raw(b, "=");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v[i].val));
    }
}

/* The action's parameters as dispatch would fill them, or why not. */
static void
params_out(struct tc_buf *b, const struct runbook *rb,
           const struct runbook_subject *s, int json)
{
    char *val = tc_xmalloc(EXPAND_MAX), why[256];
    char esc[2048];

    for (size_t i = 0; i < rb->nparams; i++) {
        int rc = runbook_expand(rb->params[i].val, s, val, EXPAND_MAX, why,
                                sizeof(why));

        if (rc == -ENOBUFS)
            snprintf(why, sizeof(why), "longer than %u bytes", EXPAND_MAX);
        if (json) {
            if (i)
                tc_json_raw(b, ",");
            tc_json_key(b, rb->params[i].key);
            tc_json_raw(b, "{");
            view_jkey_str(b, "template", rb->params[i].val, 1);
            view_jkey_str(b, "value", rc == 0 ? val : NULL, 0);
            view_jkey_str(b, "error", rc == 0 ? NULL : why, 0);
            tc_json_raw(b, "}");
            continue;
        }
        tc_json_raw(b, "    ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), rb->params[i].key));
        tc_json_raw(b, " = ");
        if (rc == 0) {
            tc_json_raw(b, ctl_esc(esc, sizeof(esc), val));
        } else {
            tc_json_raw(b, "(not sent: ");
            tc_json_raw(b, ctl_esc(esc, sizeof(esc), why));
            tc_json_raw(b, ")");
        }
        tc_json_raw(b, "\n");
    }
    free(val);
}

static const struct tc_table_col test_cols[] = {
    {"RUNBOOK", 0, 40}, {"PRIORITY", 1, 0}, {"RESULT", 0, 0},
    {"HELD", 1, 0},     {"WHY", 0, 100},
};

static void
test_text(struct tc_buf *b, const struct test_ctx *c,
          const struct runbook_set *set, const struct runbook_subject *s,
          const struct runbook_verdict *v)
{
    struct tc_table t;
    char esc[1024], line[256];

    snprintf(line, sizeof(line), "incident %" PRId64 ": host ", c->id);
    tc_json_raw(b, line);
    tc_json_raw(b, ctl_esc(esc, sizeof(esc), c->host));
    tc_json_raw(b, ", class ");
    tc_json_raw(b, ctl_esc(esc, sizeof(esc), c->cls));
    tc_json_raw(b, ", severity ");
    tc_json_raw(b, tc_severity_name((enum tc_severity)c->severity));
    if (c->problem_rule != NULL) {
        snprintf(line, sizeof(line), ", problem %" PRId64 " (", c->problem_id);
        tc_json_raw(b, line);
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), c->problem_rule));
        tc_json_raw(b, ")\n");
    } else {
        tc_json_raw(b, ", in no problem\n");
    }
    if (c->have_event) {
        tc_json_raw(b, "latest event: labels");
        text_kvs(b, c->labels, c->nlabels);
        tc_json_raw(b, "; fields");
        text_kvs(b, c->fields, c->nfields);
        tc_json_raw(b, "\n");
    } else {
        tc_json_raw(b, "latest event: not found (labels and fields unknown)\n");
    }
    tc_json_raw(b, "\n");
    if (v->best != NULL) {
        tc_json_raw(b, "matches: ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->best->id));
        tc_json_raw(b, " \"");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->best->title));
        snprintf(line, sizeof(line), "\" (priority %" PRId64 ")\n",
                 v->best->priority);
        tc_json_raw(b, line);
        for (size_t i = 0; i < v->nchecks; i++)
            if (v->checks[i].rb == v->best) {
                tc_json_raw(b, "  why: ");
                tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->checks[i].why));
                tc_json_raw(b, "\n");
            }
        if (v->best->action != NULL) {
            tc_json_raw(b, "  action: ");
            tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->best->action));
            tc_json_raw(b, "\n");
            params_out(b, v->best, s, 0);
        }
    } else {
        tc_json_raw(b, "matches: none\n");
    }
    if (v->nearest != NULL) {
        tc_json_raw(b, "nearest not matching: ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->nearest->id));
        tc_json_raw(b, ": ");
        tc_json_raw(b, ctl_esc(esc, sizeof(esc), v->nearest_why));
        tc_json_raw(b, "\n");
    }
    tc_json_raw(b, "\n");
    tc_table_init(&t, test_cols, sizeof(test_cols) / sizeof(test_cols[0]));
    for (size_t i = 0; i < v->nchecks; i++) {
        const struct runbook_check *k = &v->checks[i];

        tc_table_cell(&t, k->rb->id);
        tc_table_cellf(&t, "%" PRId64, k->rb->priority);
        tc_table_cell(&t, k->rb == v->best ? "match"
                          : k->matched     ? "match (lower)"
                                           : "no");
        tc_table_cellf(&t, "%u/%u", k->npass, k->nconds);
        tc_table_cell(&t, k->why);
    }
    tc_table_render(&t, b);
    tc_table_free(&t);
    text_skipped(b, set);
}

static void
test_json(struct tc_buf *b, const struct test_ctx *c,
          const struct runbook_set *set, const struct runbook_subject *s,
          const struct runbook_verdict *v)
{
    tc_json_raw(b, "{");
    tc_json_key(b, "incident");
    tc_json_i64(b, c->id);
    view_jkey_str(b, "host", c->host, 0);
    view_jkey_str(b, "class", c->cls, 0);
    view_jkey_str(b, "severity",
                  tc_severity_name((enum tc_severity)c->severity), 0);
    tc_json_raw(b, ",");
    tc_json_key(b, "problem");
    tc_json_i64(b, c->problem_id);
    view_jkey_str(b, "problem_rule", c->problem_rule, 0);
    tc_json_raw(b, ",");
    tc_json_key(b, "event_found");
    tc_json_raw(b, c->have_event ? "true" : "false");
    view_jkvs(b, "labels", c->labels, c->nlabels);
    view_jkvs(b, "fields", c->fields, c->nfields);
    view_jhash(b, "set_hash", set->hash);
    tc_json_raw(b, ",");
    tc_json_key(b, "match");
    if (v->best == NULL) {
        tc_json_raw(b, "null");
    } else {
        tc_json_raw(b, "{");
        view_jkey_str(b, "id", v->best->id, 1);
        view_jkey_str(b, "title", v->best->title, 0);
        view_jkey_str(b, "file", v->best->file, 0);
        view_jhash(b, "hash", v->best->hash);
        view_jkey_str(b, "action", v->best->action, 0);
        tc_json_raw(b, ",");
        tc_json_key(b, "params");
        tc_json_raw(b, "{");
        params_out(b, v->best, s, 1);
        tc_json_raw(b, "}}");
    }
    tc_json_raw(b, ",");
    tc_json_key(b, "nearest");
    if (v->nearest == NULL) {
        tc_json_raw(b, "null");
    } else {
        tc_json_raw(b, "{");
        view_jkey_str(b, "id", v->nearest->id, 1);
        view_jkey_str(b, "why", v->nearest_why, 0);
        tc_json_raw(b, "}");
    }
    tc_json_raw(b, ",");
    tc_json_key(b, "runbooks");
    tc_json_raw(b, "[");
    for (size_t i = 0; i < v->nchecks; i++) {
        const struct runbook_check *k = &v->checks[i];

        tc_json_raw(b, i ? ",\n  {" : "\n  {");
        view_jkey_str(b, "id", k->rb->id, 1);
        tc_json_raw(b, ",");
        tc_json_key(b, "priority");
        tc_json_i64(b, k->rb->priority);
        tc_json_raw(b, ",");
        tc_json_key(b, "matched");
        tc_json_raw(b, k->matched ? "true" : "false");
        tc_json_raw(b, ",");
        tc_json_key(b, "conditions");
        tc_json_u64(b, k->nconds);
        tc_json_raw(b, ",");
        tc_json_key(b, "held");
        tc_json_u64(b, k->npass);
        view_jkey_str(b, "why", k->why, 0);
        tc_json_raw(b, "}");
    }
    tc_json_raw(b, "]");
    view_runbook_skipped_json(b, set);
    tc_json_raw(b, "}\n");
}

static int
runbooks_test(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct runbook_set *set = NULL;
    struct incidents_store *is = NULL;
    struct store *store = NULL;
    struct incidents_filter f = {0};
    struct test_ctx c = {0};
    struct runbook_subject s = {0};
    struct runbook_verdict v = {0};
    struct tc_buf b;
    int json = o->json, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (f.id == 0 && ctl_parse_id(argv[i], &f.id) == 0)
            continue;
        else {
            runbooks_usage(stderr);
            return 2;
        }
    }
    if (f.id == 0) {
        runbooks_usage(stderr);
        return 2;
    }
    c.id = f.id;
    tc_buf_init(&b, OUT_MAX);
    tc_frame_init(&c.frame);
    c.lim = tc_wire_default_limits;
    c.lim.max_frame = UINT32_MAX;
    if (load_set(o, &cfg, &set) < 0)
        goto out;
    if (incidents_store_open(cfg->store_path, 1, &is) < 0)
        goto out;
    if (incidents_store_list(is, &f, test_inc_cb, &c) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (!c.found) {
        fprintf(stderr, "tocsinctl: no incident %" PRId64 "\n", f.id);
        goto out;
    }
    if (c.problem_id != 0) {
        struct problems_filter pf = {.id = c.problem_id};

        if (incidents_store_problems(is, &pf, test_problem_cb, &c) < 0) {
            log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
            goto out;
        }
    }
    /* Labels and fields live on events, not on the incident. */
    if (store_open(cfg->store_path, STORE_RDONLY, &store) == 0)
        (void)store_events_iter(store, c.host, TEST_SCAN, test_batch_cb, &c);
    s.cls = c.cls;
    s.host = c.host;
    s.severity = c.severity;
    s.problem_rule = c.problem_rule;
    s.labels = c.labels;
    s.nlabels = c.nlabels;
    s.fields = c.fields;
    s.nfields = c.nfields;
    v.cap = set->n;
    v.checks = tc_xcalloc(set->n + 1, sizeof(*v.checks));
    runbook_match(set, &s, &v);
    if (json)
        test_json(&b, &c, set, &s, &v);
    else
        test_text(&b, &c, set, &s, &v);
    status = flush_out(&b);
out:
    free(v.checks);
    tc_buf_close(&b);
    tc_frame_close(&c.frame);
    free(c.fingerprint);
    free(c.host);
    free(c.cls);
    free(c.problem_rule);
    kvs_free(c.labels, c.nlabels);
    kvs_free(c.fields, c.nfields);
    store_close(store);
    incidents_store_close(is);
    runbook_set_unref(set);
    config_free(cfg);
    return status;
}

int
ctl_runbooks(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        runbooks_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return runbooks_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return runbooks_test(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        runbooks_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: runbooks: unknown subcommand '%s'\n", argv[1]);
    runbooks_usage(stderr);
    return 2;
}
