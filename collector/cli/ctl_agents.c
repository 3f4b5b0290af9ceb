/*
 * ctl_agents: "tocsinctl agents", a read-only view of the agents table.
 *
 *   tocsinctl [-c FILE] [--json] agents list [--json]
 *
 * One row per agent the collector has ever accepted: whether it is
 * connected, when it was last heard from, its software version, the
 * backlog in its spool (from its last PING), the highest seq stored,
 * its heartbeat period and whether the collector has declared it
 * silent. The collector writes this state at most once a second, so
 * last_seen may lag by that much. If the collector itself was killed,
 * "connected" is what it last wrote until it starts again.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cli/ctl.h"
#include "json.h"
#include "log.h"
#include "store/store.h"
#include "table.h"
#include "view/agent_view.h"

struct agents_state {
    int json;              /* 1: JSON array output */
    uint64_t n;            /* agents seen */
    struct tc_buf out;     /* JSON output, or nothing in text mode */
    struct tc_table table; /* text mode: the rows */
};

static void
agents_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl agents list [--json]\n");
}

static int
agent_cb(const struct store_agent *a, void *arg)
{
    struct agents_state *st = arg;

    if (st->json) {
        tc_json_raw(&st->out, st->n ? ",\n" : "\n");
        view_agent_json(&st->out, a);
    } else {
        view_agent_row(&st->table, a);
    }
    st->n++;
    return 0;
}

static int
agents_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct store *store = NULL;
    struct agents_state st;
    int ch, rc, status = 1;

    memset(&st, 0, sizeof(st));
    st.json = o->json;
    tc_buf_init(&st.out, SIZE_MAX / 2);
    tc_table_init(&st.table, view_agent_cols, view_agent_ncols);
    optind = 0; /* glibc: 0 restarts the scan with fresh state */
    while ((ch = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            st.json = 1;
            break;
        case 'h':
            agents_usage(stdout);
            status = 0;
            goto out;
        default:
            agents_usage(stderr);
            status = 2;
            goto out;
        }
    }
    if (optind != argc) {
        agents_usage(stderr);
        status = 2;
        goto out;
    }
    if (config_load(o->config, &cfg) < 0)
        goto out;
    if (store_open(cfg->store_path, STORE_RDONLY, &store) < 0)
        goto out;
    if ((rc = store_load_agents(store, agent_cb, &st)) < 0) {
        log_warnx("%s: %s", cfg->store_path, store_errmsg(store));
        goto out;
    }
    if (ctl_list_print(st.json, st.n, &st.out, &st.table) < 0)
        goto out;
    status = 0;
out:
    tc_table_free(&st.table);
    tc_buf_close(&st.out);
    store_close(store);
    config_free(cfg);
    return status;
}

int
ctl_agents(const struct ctl_opts *o, int argc, char **argv)
{
    return ctl_list_only(o, argc, argv, "agents", agents_list, agents_usage);
}
