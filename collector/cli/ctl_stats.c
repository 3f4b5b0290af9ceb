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
#include <string.h>

#include "conf.h"
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

/* The collector's live figures: ,"collector":{...} or null; or a line. */
static void
collector_figures(const char *store_path, int json)
{
    struct looplag_stats st;
    const char *why = NULL;
    char path[4096], esc[8192];
    int rc = looplag_stats_path(path, sizeof(path), store_path);
    int stale;

    if (rc == 0)
        rc = looplag_stats_read(path, &st, &why);
    stale = rc == 0 && tc_now_ns() - st.updated_ns > VIEW_STATS_STALE_NS;
    if (json) {
        struct tc_buf b;

        tc_buf_init(&b, 1u << 12);
        tc_json_raw(&b, ",\"collector\":");
        view_stats_collector_json(&b, rc < 0 ? NULL : &st, stale);
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
        return;
    }
    if (rc < 0) {
        printf("\ncollector: no live figures (%s: %s)\n",
               ctl_esc(esc, sizeof(esc), path),
               rc == -ENOENT    ? "not running, or older than this tocsinctl"
               : rc == -EBADMSG ? why
                                : strerror(-rc));
        return;
    }
    printf("\ncollector (pid %" PRId64 "%s): event loop lag since start: "
           "max %" PRIu64 ".%01" PRIu64 " ms, p50 %" PRIu64 ".%01" PRIu64
           " ms, p99 %" PRIu64 ".%01" PRIu64 " ms over %" PRIu64
           " samples (every %" PRIu64 " ms); stalls over 100 ms: %" PRIu64 "\n",
           st.pid, stale ? ", not updated for 5 s: stopped?" : "",
           st.max_us / 1000, st.max_us % 1000 / 100, st.p50_us / 1000,
           st.p50_us % 1000 / 100, st.p99_us / 1000, st.p99_us % 1000 / 100,
           st.samples, st.interval_ms, st.stalls);
}

int
ctl_stats(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct stats_ctx c = {.json = o->json};
    const char *by = NULL;
    uint64_t since_ms = 7 * 86400000ULL;
    int64_t since;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            if (tc_conf_parse_duration(argv[++i], &since_ms) < 0) {
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
