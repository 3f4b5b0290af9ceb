/*
 * ctl_stats: "tocsinctl stats [--since D]
 * [--by priority|service|host|rule] [--json]". The service of an
 * incident is the service= label of its events ("(none)" without one).
 *
 * Response metrics of the incidents (re)opened in the last D (default
 * 7d), from their timelines (incidents_store_stats): MTTA (mean time to
 * acknowledge) and MTTR (mean time to resolve) over each opening and
 * reopening, and MTBF (mean time between openings of the same
 * fingerprint). ACKED and RESOLVED count openings. Read-only.
 *
 * Then the running collector's own figures, from the stats file it
 * keeps beside the store (looplag.h): its event-loop lag since start
 * (max, p50, p99, stalls over 100 ms). A missing, unreadable or bad
 * file is said in words (text) or null (JSON); the listing still
 * succeeds, since the incident figures do not depend on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "cli/ctl_remote.h"
#include "config.h"
#include "cli/ctl.h"
#include "store/incidents_store.h"
#include "json.h"
#include "looplag.h"
#include "table.h"
#include "units.h"
#include "log.h"
#include "util.h"
#include "view/stats_view.h"

static void
stats_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl stats [--since D] "
               "[--by priority|service|host|rule] [--json]\n");
}

struct stats_ctx {
    int json;
    uint64_t n;
    struct tc_table table; /* text: the rows */
};

/* Column 0 is named after --by (set in ctl_stats). */
static struct tc_table_col stats_cols[] = {
    {"GROUP", 0, 40}, {"INCIDENTS", 1, 0}, {"OPENINGS", 1, 0}, {"ACKED", 1, 0},
    {"MTTA", 1, 0},   {"RESOLVED", 1, 0},  {"MTTR", 1, 0},     {"MTBF", 1, 0},
};

static int
stats_cb(const struct incidents_stats_row *r, void *arg)
{
    struct stats_ctx *c = arg;

    if (c->json) {
        struct tc_buf b;

        tc_buf_init(&b, 1u << 16);
        tc_json_raw(&b, c->n ? ",\n  " : "\n  ");
        view_stats_row_json(&b, r);
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
    } else {
        char u[TC_UNITS_MAX];

        tc_table_cell(&c->table, r->key);
        tc_table_cellf(&c->table, "%" PRIu64, r->n);
        tc_table_cellf(&c->table, "%" PRIu64, r->openings);
        tc_table_cellf(&c->table, "%" PRIu64, r->acked);
        tc_table_cell(&c->table, tc_fmt_duration(u, sizeof(u), r->mtta_ns));
        tc_table_cellf(&c->table, "%" PRIu64, r->restored);
        tc_table_cell(&c->table, tc_fmt_duration(u, sizeof(u), r->mttr_ns));
        tc_table_cell(&c->table, tc_fmt_duration(u, sizeof(u), r->mtbf_ns));
    }
    c->n++;
    return ferror(stdout) ? -1 : 0;
}

/*
 * The collector's live figures: ,"collector":{...} or null; or a line.
 * st NULL: none, and none_why says why in the text.
 */
static void
figures_print(const struct looplag_stats *st, int stale, int json,
              const char *none_why)
{
    if (json) {
        struct tc_buf b;

        tc_buf_init(&b, 1u << 12);
        tc_json_raw(&b, ",\"collector\":");
        view_stats_collector_json(&b, st, stale);
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
        return;
    }
    if (st == NULL) {
        printf("\ncollector: no live figures (%s)\n", none_why);
        return;
    }
    printf("\ncollector (pid %" PRId64 "%s): event loop lag since start: "
           "max %" PRIu64 ".%01" PRIu64 " ms, p50 %" PRIu64 ".%01" PRIu64
           " ms, p99 %" PRIu64 ".%01" PRIu64 " ms over %" PRIu64
           " samples (every %" PRIu64 " ms); stalls over 100 ms: %" PRIu64 "\n",
           st->pid, stale ? ", not updated for 5 s: stopped?" : "",
           st->max_us / 1000, st->max_us % 1000 / 100, st->p50_us / 1000,
           st->p50_us % 1000 / 100, st->p99_us / 1000, st->p99_us % 1000 / 100,
           st->samples, st->interval_ms, st->stalls);
}

/* The running collector's figures, from its stats file. */
static void
collector_figures(const char *store_path, int json)
{
    struct looplag_stats st;
    const char *why = NULL;
    char path[4096], esc[8192], none[8400];
    int rc = looplag_stats_path(path, sizeof(path), store_path);
    int stale;

    if (rc == 0)
        rc = looplag_stats_read(path, &st, &why);
    stale = rc == 0 && tc_now_ns() - st.updated_ns > VIEW_STATS_STALE_NS;
    if (rc < 0)
        snprintf(none, sizeof(none), "%s: %s", ctl_esc(esc, sizeof(esc), path),
                 rc == -ENOENT    ? "not running, or older than this tocsinctl"
                 : rc == -EBADMSG ? why
                                  : strerror(-rc));
    figures_print(rc < 0 ? NULL : &st, stale, json, none);
}

/*
 * --url: GET /api/v1/stats with the same --since and --by, printed as
 * below from the API's groups and figures (the same views); since is
 * the API's (its clock). 0, or -1 (printed).
 */
static int
remote_stats(const struct ctl_opts *o, const char *since_arg, const char *by,
             struct stats_ctx *c)
{
    struct ctl_remote *r = NULL;
    json_t *doc = NULL, *groups, *g, *coll;
    struct looplag_stats st;
    char path[512], hesc[512], none[600];
    int64_t since;
    long status;
    size_t i;
    int stale = 0, rc = -1;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    if (since_arg != NULL) {
        char *e = ctl_remote_escape(r, since_arg);

        snprintf(path, sizeof(path), "/api/v1/stats?since=%.200s%s%s", e,
                 by ? "&by=" : "", by ? by : "");
        free(e);
    } else {
        snprintf(path, sizeof(path), "/api/v1/stats%s%s", by ? "?by=" : "",
                 by ? by : "");
    }
    if (ctl_remote_get(r, path, &doc, &status) < 0)
        goto out;
    groups = json_object_get(doc, "groups");
    coll = json_object_get(doc, "collector");
    if (ctl_remote_i64(doc, "since", &since) < 0 || !json_is_array(groups) ||
        (!json_is_null(coll) && ctl_remote_looplag(coll, &st, &stale) < 0))
        goto bad;
    /* Each group checked before anything is printed. */
    json_array_foreach(groups, i, g)
    {
        struct incidents_stats_row row;

        if (ctl_remote_stats_row(g, &row) < 0)
            goto bad;
    }
    if (c->json)
        printf("{\"since\":%" PRId64 ",\"by\":\"%s\",\"groups\":[", since,
               by ? by : "all");
    json_array_foreach(groups, i, g)
    {
        struct incidents_stats_row row;

        (void)ctl_remote_stats_row(g, &row);
        if (stats_cb(&row, c) < 0)
            goto out;
    }
    if (c->json)
        printf("%s]", c->n ? "\n" : "");
    else
        tc_table_print(&c->table, stdout);
    snprintf(none, sizeof(none), "%s does not give them",
             ctl_esc(hesc, sizeof(hesc), ctl_remote_host(r)));
    figures_print(json_is_null(coll) ? NULL : &st, stale, c->json, none);
    if (c->json)
        printf("}\n");
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "tocsinctl: %s: stats not as the API writes them\n",
            ctl_esc(hesc, sizeof(hesc), ctl_remote_host(r)));
out:
    json_decref(doc);
    ctl_remote_close(r);
    return rc;
}

int
ctl_stats(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct stats_ctx c = {.json = o->json};
    const char *by = NULL, *since_arg = NULL;
    uint64_t since_ms = 7 * 86400000ULL;
    int64_t since;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            since_arg = argv[++i];
            if (tc_conf_parse_duration(since_arg, &since_ms) < 0) {
                fprintf(stderr, "tocsinctl: --since: e.g. 24h, 7d\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc) {
            by = argv[++i];
            if (strcmp(by, "priority") && strcmp(by, "service") &&
                strcmp(by, "host") && strcmp(by, "rule")) {
                fprintf(stderr,
                        "tocsinctl: --by: priority, service, host or rule\n");
                return 2;
            }
        } else {
            stats_usage(stderr);
            return 2;
        }
    }
    since = tc_now_ns() - (int64_t)since_ms * 1000000;
    stats_cols[0].head = by == NULL                    ? "GROUP"
                         : strcmp(by, "priority") == 0 ? "PRIORITY"
                         : strcmp(by, "service") == 0  ? "SERVICE"
                         : strcmp(by, "host") == 0     ? "HOST"
                                                       : "RULE";
    tc_table_init(&c.table, stats_cols,
                  sizeof(stats_cols) / sizeof(stats_cols[0]));
    if (o->url != NULL) {
        /* Same output as below, the groups read from the API. */
        if (remote_stats(o, since_arg, by, &c) == 0)
            status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
        goto out;
    }
    if (config_load(o->config, &cfg) < 0)
        goto out;
    if (incidents_store_open(cfg->store_path, 1, &is) < 0)
        goto out;
    if (c.json) {
        printf("{\"since\":%" PRId64 ",\"by\":\"%s\",\"groups\":[", since,
               by ? by : "all");
    }
    rc = incidents_store_stats(is, since, by, stats_cb, &c);
    if (c.json)
        printf("%s]", c.n ? "\n" : "");
    if (rc < 0) {
        if (c.json)
            printf("}\n");
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (!c.json)
        tc_table_print(&c.table, stdout);
    collector_figures(cfg->store_path, c.json);
    if (c.json)
        printf("}\n");
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    tc_table_free(&c.table);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}
