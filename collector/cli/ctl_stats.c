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
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "cli/ctl.h"
#include "store/incidents_store.h"
#include "json.h"
#include "log.h"
#include "util.h"

static void
stats_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl stats [--since D] "
               "[--by priority|service|host|rule] [--json]\n");
}

/* "1d2h", "3m4s", "12s", "-" when there is no mean. */
static void
fmt_dur(int64_t ns, char *buf, size_t len)
{
    int64_t s = ns / 1000000000;
    int n = 0;

    if (ns < 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (s >= 86400)
        n = snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", s / 86400,
                     s % 86400 / 3600);
    else if (s >= 3600)
        n = snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", s / 3600,
                     s % 3600 / 60);
    else if (s >= 60)
        n = snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
        n = snprintf(buf, len, "%" PRId64 ".%03" PRId64 "s", s,
                     ns % 1000000000 / 1000000);
    (void)n;
}

struct stats_ctx {
    int json;
    uint64_t n;
};

static void
jmean(struct tc_buf *b, const char *key, int64_t ns)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    if (ns < 0)
        tc_json_raw(b, "null");
    else
        tc_json_i64(b, ns / 1000000);
}

static int
stats_cb(const struct incidents_stats_row *r, void *arg)
{
    struct stats_ctx *c = arg;

    if (c->json) {
        struct tc_buf b;

        tc_buf_init(&b, 1u << 16);
        tc_json_raw(&b, c->n ? ",\n  {" : "\n  {");
        tc_json_key(&b, "key");
        tc_json_str(&b, r->key, strlen(r->key));
        tc_json_raw(&b, ",");
        tc_json_key(&b, "incidents");
        tc_json_u64(&b, r->n);
        tc_json_raw(&b, ",");
        tc_json_key(&b, "openings");
        tc_json_u64(&b, r->openings);
        tc_json_raw(&b, ",");
        tc_json_key(&b, "acknowledged");
        tc_json_u64(&b, r->acked);
        jmean(&b, "mtta_ms", r->mtta_ns);
        tc_json_raw(&b, ",");
        tc_json_key(&b, "resolved");
        tc_json_u64(&b, r->restored);
        jmean(&b, "mttr_ms", r->mttr_ns);
        tc_json_raw(&b, ",");
        tc_json_key(&b, "gaps");
        tc_json_u64(&b, r->gaps);
        jmean(&b, "mtbf_ms", r->mtbf_ns);
        tc_json_raw(&b, "}");
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
    } else {
        char a[32], m[32], f[32], k[1024];

        fmt_dur(r->mtta_ns, a, sizeof(a));
        fmt_dur(r->mttr_ns, m, sizeof(m));
        fmt_dur(r->mtbf_ns, f, sizeof(f));
        printf("%-24s %9" PRIu64 " %8" PRIu64 " %6" PRIu64 " %10s %8" PRIu64
               " %10s %10s\n",
               ctl_esc(k, sizeof(k), r->key), r->n, r->openings, r->acked, a,
               r->restored, m, f);
    }
    c->n++;
    return ferror(stdout) ? -1 : 0;
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
    if (config_load(o->config, &cfg) < 0)
        goto out;
    if (incidents_store_open(cfg->store_path, 1, &is) < 0)
        goto out;
    if (c.json) {
        printf("{\"since\":%" PRId64 ",\"by\":\"%s\",\"groups\":[", since,
               by ? by : "all");
    } else {
        printf("%-24s %9s %8s %6s %10s %8s %10s %10s\n", by ? by : "",
               "INCIDENTS", "OPENINGS", "ACKED", "MTTA", "RESOLVED", "MTTR",
               "MTBF");
    }
    rc = incidents_store_stats(is, since, by, stats_cb, &c);
    if (c.json)
        printf("%s]}\n", c.n ? "\n" : "");
    if (rc < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
}
