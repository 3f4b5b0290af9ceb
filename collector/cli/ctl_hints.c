/*
 * ctl_hints: "tocsinctl hints list", a read-only view of the hints the
 * engine decided and of their delivery (docs/runbooks.md, "Dispatch").
 *
 *   tocsinctl [-c FILE] [--json] hints list [--agent A]
 *             [--state pending|sent|acked|refused] [--json]
 *
 * pending: never sent (its agent was not connected, or no signing key);
 * sent: sent, not acked yet (it goes again when the agent reconnects);
 * acked: the agent stored it; refused: the agent refused it, ERROR says
 * why (it goes again when the agent reconnects). ERROR also holds why a
 * send failed. Text output escapes what came from runbooks and agents.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "config.h"
#include "json.h"
#include "view/hint_view.h"
#include "log.h"
#include "store/incidents_store.h"
#include "table.h"
#include "timefmt.h"

static const struct tc_table_col cols[] = {
    {"ID", 1, 0},      {"AGENT", 0, 32}, {"INCIDENT", 1, 0}, {"PROBLEM", 1, 0},
    {"SOURCE", 0, 40}, {"TITLE", 0, 48}, {"ACTION", 0, 32},  {"STATE", 0, 0},
    {"SENT", 0, 0},    {"ACKED", 0, 0},  {"ATTEMPTS", 1, 0}, {"ERROR", 0, 64},
};

struct hints_state {
    int json;
    uint64_t n;
    struct tc_buf out;
    struct tc_table table;
};

static void
hints_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl hints list [--agent A] "
               "[--state pending|sent|acked|refused] [--json]\n");
}

static int
hint_cb(const struct hint_row *r, void *arg)
{
    struct hints_state *st = arg;
    char ts[2][40];

    if (st->json) {
        tc_json_raw(&st->out, st->n ? ",\n" : "\n");
        view_hint_json(&st->out, r);
    } else {
        ts[0][0] = ts[1][0] = '\0';
        if (r->sent_at)
            tc_rfc3339(r->sent_at, 0, ts[0], sizeof(ts[0]));
        if (r->acked_at)
            tc_rfc3339(r->acked_at, 0, ts[1], sizeof(ts[1]));
        tc_table_cellf(&st->table, "%" PRId64, r->id);
        tc_table_cell(&st->table, r->agent);
        if (r->incident_id)
            tc_table_cellf(&st->table, "%" PRId64, r->incident_id);
        else
            tc_table_cell(&st->table, NULL);
        if (r->problem_id)
            tc_table_cellf(&st->table, "%" PRId64, r->problem_id);
        else
            tc_table_cell(&st->table, NULL);
        tc_table_cell(&st->table, r->source);
        tc_table_cell(&st->table, r->title);
        tc_table_cell(&st->table, r->action);
        tc_table_cell(&st->table, view_hint_state(r));
        tc_table_cell(&st->table, ts[0]);
        tc_table_cell(&st->table, ts[1]);
        tc_table_cellf(&st->table, "%" PRId64, r->attempts);
        tc_table_cell(&st->table, r->error);
    }
    st->n++;
    return 0;
}

static int
hints_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"agent", required_argument, NULL, 'a'},
        {"state", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct hints_filter f = {0};
    struct hints_state st;
    int ch, rc, status = 1;

    memset(&st, 0, sizeof(st));
    st.json = o->json;
    tc_buf_init(&st.out, SIZE_MAX / 2);
    tc_table_init(&st.table, cols, sizeof(cols) / sizeof(cols[0]));
    optind = 0;
    while ((ch = getopt_long(argc, argv, "ja:s:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            st.json = 1;
            break;
        case 'a':
            f.agent = optarg;
            break;
        case 's':
            if (strcmp(optarg, "pending") != 0 && strcmp(optarg, "sent") != 0 &&
                strcmp(optarg, "acked") != 0 &&
                strcmp(optarg, "refused") != 0) {
                fprintf(stderr, "tocsinctl: hints: --state: pending, sent, "
                                "acked or refused\n");
                status = 2;
                goto out;
            }
            f.state = optarg;
            break;
        case 'h':
            hints_usage(stdout);
            status = 0;
            goto out;
        default:
            hints_usage(stderr);
            status = 2;
            goto out;
        }
    }
    if (optind != argc) {
        hints_usage(stderr);
        status = 2;
        goto out;
    }
    if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
        goto out;
    if ((rc = incidents_store_hints(is, &f, hint_cb, &st)) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (ctl_list_print(st.json, st.n, &st.out, &st.table) < 0)
        goto out;
    status = 0;
out:
    tc_table_free(&st.table);
    tc_buf_close(&st.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

int
ctl_hints(const struct ctl_opts *o, int argc, char **argv)
{
    return ctl_list_only(o, argc, argv, "hints", hints_list, hints_usage);
}
