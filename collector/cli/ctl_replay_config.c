/*
 * ctl_replay_config: "tocsinctl replay --config NEW.yaml [--since D]
 * [--json]" (docs/correlation.md, "Trying a change first").
 *
 * Runs the stored inputs through the candidate configuration's engine
 * sections (incidents, correlation) into a scratch in-memory store and
 * prints what would change against the live state: problems opened,
 * removed, merged, split, changed, unchanged, root causes changed, and
 * incidents moved (engine/replay_diff.h classifies). The live store is
 * opened read-only; the scratch store is gone when the replay returns.
 *
 * Exit status: 0 nothing would change, 1 something would, 2 an error
 * (a candidate config with errors, the store, a write error) or usage.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cli/ctl.h"
#include "conf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "engine/replay_diff.h"
#include "store/incidents_store.h"
#include "json.h"
#include "log.h"
#include "table.h"
#include "timefmt.h"
#include "util.h"

/*
 * The report is built in memory once the replay (and its read
 * transaction) is over, then written. It is proportional to the state
 * already held in memory, so it has no cap of its own: a capped buffer
 * would cut the report short without a word.
 */
#define OUT_MAX SIZE_MAX

/* Both sides as read, owned copies of the strings. */
struct side {
    struct rdiff_incident *inc;
    size_t ninc, capinc;
    struct rdiff_problem *prob; /* ascending id (the query's order) */
    char **title;               /* parallel to prob */
    size_t nprob, capprob;
};

struct states {
    struct side s[2]; /* 0 live, 1 candidate */
};

static int
incident_cb(int candidate, const struct replay_incident *in, void *arg)
{
    struct side *sd = &((struct states *)arg)->s[candidate ? 1 : 0];

    if (sd->ninc == sd->capinc) {
        sd->capinc = sd->capinc ? sd->capinc * 2 : 64;
        sd->inc = tc_xreallocarray(sd->inc, sd->capinc, sizeof(*sd->inc));
    }
    sd->inc[sd->ninc++] = (struct rdiff_incident){
        .id = in->id,
        .fingerprint = tc_xstrdup(in->fingerprint ? in->fingerprint : ""),
        .opened_at = in->opened_at,
        .problem = in->problem,
        .inhibited = in->inhibited,
    };
    return 0;
}

static int
problem_cb(int candidate, const struct replay_problem *p, void *arg)
{
    struct side *sd = &((struct states *)arg)->s[candidate ? 1 : 0];

    if (sd->nprob == sd->capprob) {
        sd->capprob = sd->capprob ? sd->capprob * 2 : 16;
        sd->prob = tc_xreallocarray(sd->prob, sd->capprob, sizeof(*sd->prob));
        sd->title =
            tc_xreallocarray(sd->title, sd->capprob, sizeof(*sd->title));
    }
    sd->prob[sd->nprob] = (struct rdiff_problem){
        .id = p->id,
        .opened_at = p->opened_at,
        .root_incident = p->root_incident,
        .root_host = tc_xstrdup(p->root_host ? p->root_host : ""),
    };
    sd->title[sd->nprob++] = tc_xstrdup(p->title ? p->title : "");
    return 0;
}

static void
states_free(struct states *st)
{
    for (int k = 0; k < 2; k++) {
        struct side *sd = &st->s[k];

        for (size_t i = 0; i < sd->ninc; i++)
            free((char *)sd->inc[i].fingerprint);
        for (size_t i = 0; i < sd->nprob; i++) {
            free((char *)sd->prob[i].root_host);
            free(sd->title[i]);
        }
        free(sd->inc);
        free(sd->prob);
        free(sd->title);
    }
}

/* The title of problem id on one side, or NULL. */
static const char *
title_of(const struct side *sd, int64_t id)
{
    size_t lo = 0, hi = sd->nprob;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (sd->prob[mid].id == id)
            return sd->title[mid];
        if (sd->prob[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* "1,2,c7": ids, then candidate-only ids marked c, into out. */
static void
ids_text(struct tc_buf *b, const int64_t *ids, size_t n, const int64_t *cids,
         size_t nc)
{
    char num[32];

    tc_buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        int len =
            snprintf(num, sizeof(num), "%s%" PRId64, i ? "," : "", ids[i]);
        tc_buf_append(b, num, (size_t)len);
    }
    for (size_t i = 0; i < nc; i++) {
        int len = snprintf(num, sizeof(num), "%sc%" PRId64, i || n ? "," : "",
                           cids[i]);
        tc_buf_append(b, num, (size_t)len);
    }
    tc_buf_append(b, "", 1);
}

static void
json_ids(struct tc_buf *o, const int64_t *ids, size_t n)
{
    tc_json_raw(o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            tc_json_raw(o, ",");
        tc_json_i64(o, ids[i]);
    }
    tc_json_raw(o, "]");
}

static void
json_id_or_null(struct tc_buf *o, int64_t id)
{
    if (id)
        tc_json_i64(o, id);
    else
        tc_json_raw(o, "null");
}

static void
json_str_or_null(struct tc_buf *o, const char *s)
{
    if (s && *s)
        tc_json_str(o, s, strlen(s));
    else
        tc_json_raw(o, "null");
}

static const char *const pkind_text[RDIFF_NPKIND] = {
    "opened",   "removed", "merged", "split", "changed", "root cause changed",
    "unchanged"};
static const char *const ikind_text[RDIFF_NIKIND] = {
    "moved",     "unlinked",      "linked", "inhibited changed",
    "only live", "only candidate"};

static const struct tc_table_col pcols[] = {
    {"CHANGE", 0, 0},     {"LIVE", 0, 30},       {"CANDIDATE", 0, 30},
    {"INCIDENTS", 0, 60}, {"ROOT CAUSE", 0, 60}, {"TITLE", 0, 60}};
static const struct tc_table_col icols[] = {
    {"INCIDENT", 1, 0},     {"CANDIDATE", 1, 0},         {"CHANGE", 0, 0},
    {"LIVE PROBLEM", 1, 0}, {"CANDIDATE PROBLEM", 1, 0}, {"INHIBITED", 0, 0}};

/* Text report into out. */
static int
render_text(const struct rdiff *d, const struct states *st, struct tc_buf *out)
{
    struct tc_table pt, it;
    struct tc_buf ids;
    char line[512];
    int rc = 0, n;

    tc_buf_init(&ids, OUT_MAX);
    tc_table_init(&pt, pcols, sizeof(pcols) / sizeof(pcols[0]));
    tc_table_init(&it, icols, sizeof(icols) / sizeof(icols[0]));
    for (size_t i = 0; i < d->np; i++) {
        const struct rdiff_pitem *p = &d->p[i];
        const char *title = NULL;
        int cand_side = p->kind == RDIFF_OPENED || p->kind == RDIFF_MERGED;

        if (cand_side && p->ncand)
            title = title_of(&st->s[1], p->cand[0]);
        else if (p->nlive)
            title = title_of(&st->s[0], p->live[0]);
        tc_table_cell(&pt, pkind_text[p->kind]);
        ids_text(&ids, p->live, p->nlive, NULL, 0);
        tc_table_cell(&pt, (const char *)tc_buf_head(&ids));
        ids_text(&ids, p->cand, p->ncand, NULL, 0);
        tc_table_cell(&pt, (const char *)tc_buf_head(&ids));
        ids_text(&ids, p->inc, p->ninc, p->cinc, p->ncinc);
        tc_table_cell(&pt, (const char *)tc_buf_head(&ids));
        if (p->kind == RDIFF_ROOT)
            tc_table_cellf(&pt, "%s -> %s", *p->live_root ? p->live_root : "-",
                           *p->cand_root ? p->cand_root : "-");
        else
            tc_table_cell(&pt, cand_side ? p->cand_root : p->live_root);
        tc_table_cell(&pt, title);
    }
    for (size_t i = 0; i < d->ni; i++) {
        const struct rdiff_iitem *x = &d->i[i];

        if (x->live_id)
            tc_table_cellf(&it, "%" PRId64, x->live_id);
        else
            tc_table_cell(&it, NULL);
        if (x->cand_id)
            tc_table_cellf(&it, "%" PRId64, x->cand_id);
        else
            tc_table_cell(&it, NULL);
        tc_table_cell(&it, ikind_text[x->kind]);
        if (x->live_problem)
            tc_table_cellf(&it, "%" PRId64, x->live_problem);
        else
            tc_table_cell(&it, NULL);
        if (x->cand_problem)
            tc_table_cellf(&it, "%" PRId64, x->cand_problem);
        else
            tc_table_cell(&it, NULL);
        tc_table_cellf(&it, "%s -> %s",
                       !x->live_id         ? "-"
                       : x->live_inhibited ? "yes"
                                           : "no",
                       !x->cand_id         ? "-"
                       : x->cand_inhibited ? "yes"
                                           : "no");
    }
    if (tc_table_rows(&pt) && (rc = tc_table_render(&pt, out)) < 0)
        goto out;
    if (tc_table_rows(&pt) && tc_table_rows(&it))
        tc_buf_append(out, "\n", 1);
    if (tc_table_rows(&it) && (rc = tc_table_render(&it, out)) < 0)
        goto out;
    if (d->np || d->ni)
        tc_buf_append(out, "\n", 1);
    tc_buf_append(out, "problems:", 9);
    for (int k = 0; k < RDIFF_NPKIND; k++) {
        n = snprintf(line, sizeof(line), "%s %zu %s", k ? "," : "",
                     d->pcount[k], pkind_text[k]);
        tc_buf_append(out, line, (size_t)n);
    }
    tc_buf_append(out, "\nincidents:", 11);
    for (int k = 0; k < RDIFF_NIKIND; k++) {
        n = snprintf(line, sizeof(line), "%s %zu %s", k ? "," : "",
                     d->icount[k], ikind_text[k]);
        tc_buf_append(out, line, (size_t)n);
    }
    if (d->changes)
        n = snprintf(line, sizeof(line), "\n%zu change%s\n", d->changes,
                     d->changes == 1 ? "" : "s");
    else
        n = snprintf(line, sizeof(line), "\nno change\n");
    tc_buf_append(out, line, (size_t)n);
out:
    tc_table_free(&pt);
    tc_table_free(&it);
    tc_buf_close(&ids);
    return rc;
}

/* JSON report into out. */
static void
render_json(const struct rdiff *d, const struct states *st, struct tc_buf *o)
{
    tc_json_raw(o, ",\"changed\":");
    tc_json_raw(o, d->changes ? "true" : "false");
    tc_json_raw(o, ",\"changes\":");
    tc_json_u64(o, d->changes);
    tc_json_raw(o, ",\"counts\":{\"problems\":{");
    for (int k = 0; k < RDIFF_NPKIND; k++) {
        tc_json_raw(o, k ? "," : "");
        tc_json_key(o, rdiff_pkind_name(k));
        tc_json_u64(o, d->pcount[k]);
    }
    tc_json_raw(o, "},\"incidents\":{");
    for (int k = 0; k < RDIFF_NIKIND; k++) {
        tc_json_raw(o, k ? "," : "");
        tc_json_key(o, rdiff_ikind_name(k));
        tc_json_u64(o, d->icount[k]);
    }
    tc_json_raw(o, "}},\"problems\":[");
    for (size_t i = 0; i < d->np; i++) {
        const struct rdiff_pitem *p = &d->p[i];
        int cand_side = p->kind == RDIFF_OPENED || p->kind == RDIFF_MERGED;
        const char *title = cand_side && p->ncand
                                ? title_of(&st->s[1], p->cand[0])
                            : p->nlive ? title_of(&st->s[0], p->live[0])
                                       : NULL;

        tc_json_raw(o, i ? ",\n  {" : "\n  {");
        tc_json_key(o, "change");
        tc_json_str(o, rdiff_pkind_name(p->kind),
                    strlen(rdiff_pkind_name(p->kind)));
        tc_json_raw(o, ",\"live\":");
        json_ids(o, p->live, p->nlive);
        tc_json_raw(o, ",\"candidate\":");
        json_ids(o, p->cand, p->ncand);
        tc_json_raw(o, ",\"incidents\":");
        json_ids(o, p->inc, p->ninc);
        tc_json_raw(o, ",\"candidate_incidents\":");
        json_ids(o, p->cinc, p->ncinc);
        tc_json_raw(o, ",\"live_root\":");
        json_str_or_null(o, p->nlive ? p->live_root : NULL);
        tc_json_raw(o, ",\"candidate_root\":");
        json_str_or_null(o, p->ncand ? p->cand_root : NULL);
        tc_json_raw(o, ",\"title\":");
        json_str_or_null(o, title);
        tc_json_raw(o, "}");
    }
    tc_json_raw(o, d->np ? "\n],\"incidents\":[" : "],\"incidents\":[");
    for (size_t i = 0; i < d->ni; i++) {
        const struct rdiff_iitem *x = &d->i[i];

        tc_json_raw(o, i ? ",\n  {" : "\n  {");
        tc_json_key(o, "change");
        tc_json_str(o, rdiff_ikind_name(x->kind),
                    strlen(rdiff_ikind_name(x->kind)));
        tc_json_raw(o, ",\"incident\":");
        json_id_or_null(o, x->live_id);
        tc_json_raw(o, ",\"candidate_incident\":");
        json_id_or_null(o, x->cand_id);
        tc_json_raw(o, ",\"live_problem\":");
        json_id_or_null(o, x->live_problem);
        tc_json_raw(o, ",\"candidate_problem\":");
        json_id_or_null(o, x->cand_problem);
        tc_json_raw(o, ",\"live_inhibited\":");
        tc_json_raw(o, !x->live_id         ? "null"
                       : x->live_inhibited ? "true"
                                           : "false");
        tc_json_raw(o, ",\"candidate_inhibited\":");
        tc_json_raw(o, !x->cand_id         ? "null"
                       : x->cand_inhibited ? "true"
                                           : "false");
        tc_json_raw(o, "}");
    }
    tc_json_raw(o, d->ni ? "\n]}\n" : "]}\n");
}

int
ctl_replay_config(const struct ctl_opts *o, const char *newcfg,
                  const char *since_arg, int json)
{
    struct collector_config *cfg = NULL, *ncfg = NULL;
    struct incidents_store *is = NULL;
    struct incidents_replay_stats rs;
    struct incident_config ic;
    struct problem_config pc;
    struct states st = {0};
    struct replay_sink sink = {incident_cb, problem_cb, &st};
    struct rdiff d = {0};
    struct rdiff_input in;
    struct tc_buf out;
    uint64_t since_ms = 0;
    int64_t since = INT64_MIN;
    char iso[TC_RFC3339_MAX], esc[4096];
    int status = 2;

    tc_buf_init(&out, OUT_MAX);
    if (since_arg && tc_conf_parse_duration(since_arg, &since_ms) < 0) {
        fprintf(stderr, "tocsinctl: replay: --since: e.g. 24h, 7d\n");
        goto out;
    }
    /*
     * The candidate first: a file with errors is refused with the
     * loader's FILE:LINE message before the store is even opened.
     */
    if (config_load(newcfg, &ncfg) < 0) {
        log_warnx("%s: candidate configuration refused; nothing replayed",
                  newcfg);
        goto out;
    }
    if (config_load(o->config, &cfg) < 0)
        goto out;
    /* Only the engine's sections come from the candidate. */
    config_incidents(ncfg, &ic);
    config_correlation(ncfg, &pc);
    if (incidents_store_open(cfg->store_path, 1, &is) < 0)
        goto out;
    if (incidents_store_replay_states(is, &ic, &pc, &sink, &rs) < 0) {
        log_warnx("%s: replay: %s", cfg->store_path,
                  incidents_store_errmsg(is));
        goto out;
    }
    /* --since counts back from the last step, not from now: the same
     * store gives the same report whenever it is asked. */
    if (since_arg) {
        int64_t span = since_ms > (uint64_t)INT64_MAX / 1000000
                           ? INT64_MAX
                           : (int64_t)(since_ms * 1000000);

        /* last_tick >= 0, so this cannot underflow. */
        since = rs.last_tick - span;
    }
    in = (struct rdiff_input){
        .live_inc = st.s[0].inc,
        .nlive_inc = st.s[0].ninc,
        .cand_inc = st.s[1].inc,
        .ncand_inc = st.s[1].ninc,
        .live = st.s[0].prob,
        .nlive = st.s[0].nprob,
        .cand = st.s[1].prob,
        .ncand = st.s[1].nprob,
        .since = since,
    };
    rdiff_compute(&in, &d);
    if (json) {
        tc_json_raw(&out, "{\"config\":");
        tc_json_str(&out, newcfg, strlen(newcfg));
        tc_json_raw(&out, ",\"since\":");
        if (since_arg)
            tc_json_i64(&out, since);
        else
            tc_json_raw(&out, "null");
        tc_json_raw(&out, ",\"steps\":");
        tc_json_u64(&out, rs.steps);
        tc_json_raw(&out, ",\"batches\":");
        tc_json_u64(&out, rs.batches);
        tc_json_raw(&out, ",\"last_tick\":");
        tc_json_i64(&out, rs.last_tick);
        tc_json_raw(&out, ",\"live\":{\"problems\":");
        tc_json_u64(&out, st.s[0].nprob);
        tc_json_raw(&out, ",\"incidents\":");
        tc_json_u64(&out, st.s[0].ninc);
        tc_json_raw(&out, "},\"candidate\":{\"problems\":");
        tc_json_u64(&out, st.s[1].nprob);
        tc_json_raw(&out, ",\"incidents\":");
        tc_json_u64(&out, st.s[1].ninc);
        tc_json_raw(&out, "}");
        render_json(&d, &st, &out);
    } else {
        char line[1024];
        int n =
            snprintf(line, sizeof(line),
                     "replayed %" PRIu64 " steps (%" PRIu64
                     " batches) with %s: live %zu problems, %zu"
                     " incidents; candidate %zu problems, %zu"
                     " incidents\n",
                     rs.steps, rs.batches, ctl_esc(esc, sizeof(esc), newcfg),
                     st.s[0].nprob, st.s[0].ninc, st.s[1].nprob, st.s[1].ninc);
        tc_buf_append(&out, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        if (since_arg) {
            tc_rfc3339(since, 0, iso, sizeof(iso));
            n = snprintf(line, sizeof(line),
                         "reporting what opened since %s (%s before the last"
                         " step)\n",
                         iso, ctl_esc(esc, sizeof(esc), since_arg));
            tc_buf_append(&out, line,
                          (size_t)n < sizeof(line) ? (size_t)n
                                                   : sizeof(line) - 1);
        }
        tc_buf_append(&out, "\n", 1);
        if (render_text(&d, &st, &out) < 0)
            goto out;
    }
    if (tc_buf_size(&out))
        fwrite(tc_buf_head(&out), 1, tc_buf_size(&out), stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        goto out;
    status = d.changes ? 1 : 0;
out:
    rdiff_free(&d);
    states_free(&st);
    tc_buf_close(&out);
    incidents_store_close(is);
    config_free(cfg);
    config_free(ncfg);
    return status;
}
