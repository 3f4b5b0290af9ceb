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
#include "escape.h"
#include "json.h"
#include "log.h"
#include "store/store.h"
#include "timefmt.h"
#include "util.h"

/* Text columns, in order. */
enum {
    COL_NAME,
    COL_CONN,
    COL_SEEN,
    COL_SW,
    COL_DEPTH,
    COL_BYTES,
    COL_HWM,
    COL_HB,
    COL_SILENT,
    NCOLS
};

static const char *const col_head[NCOLS] = {
    "NAME",        "CONNECTED", "LAST_SEEN", "SOFTWARE", "SPOOL",
    "SPOOL_BYTES", "HWM",       "HEARTBEAT", "SILENT"};

/* Numbers are right-aligned, text left-aligned. */
static const int col_right[NCOLS] = {0, 0, 0, 0, 1, 1, 1, 1, 0};

struct agents_state {
    int json;             /* 1: JSON array output */
    uint64_t n;           /* agents seen */
    struct tc_buf out;    /* JSON output, or nothing in text mode */
    char *(*rows)[NCOLS]; /* text mode: owned cells, n rows */
    size_t cap;           /* rows allocated */
};

static void
agents_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl agents list [--json]\n");
}

static void
json_time(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[64], k[64];

    tc_json_raw(b, ",");
    tc_json_key(b, key);
    tc_json_i64(b, ns);
    snprintf(k, sizeof(k), "%s_iso", key);
    tc_json_raw(b, ",");
    tc_json_key(b, k);
    if (ns > 0) {
        tc_rfc3339(ns, 3, iso, sizeof(iso));
        tc_json_str(b, iso, strlen(iso));
    } else {
        tc_json_raw(b, "null");
    }
}

static void
json_opt_str(struct tc_buf *b, const char *key, const char *v)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    if (v != NULL)
        tc_json_str(b, v, strlen(v));
    else
        tc_json_raw(b, "null");
}

static void
json_u64(struct tc_buf *b, const char *key, uint64_t v)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    tc_json_u64(b, v);
}

static void
json_bool(struct tc_buf *b, const char *key, int v)
{
    tc_json_raw(b, ",");
    tc_json_key(b, key);
    tc_json_raw(b, v ? "true" : "false");
}

static void
agent_json(struct tc_buf *b, const struct store_agent *a)
{
    tc_json_raw(b, "{");
    tc_json_key(b, "name");
    tc_json_str(b, a->name, strlen(a->name));
    json_bool(b, "connected", a->connected);
    json_opt_str(b, "address", a->address);
    json_time(b, "last_seen", a->last_seen);
    json_time(b, "first_seen", a->first_seen);
    json_opt_str(b, "software", a->software);
    json_u64(b, "spool_depth", a->spool_depth);
    json_u64(b, "spool_bytes", a->spool_bytes);
    json_u64(b, "hwm", a->hwm);
    json_u64(b, "heartbeat_ms", a->heartbeat_ms);
    json_bool(b, "silent", a->silent_since != 0);
    if (a->silent_since != 0)
        json_time(b, "silent_since", a->silent_since);
    tc_json_raw(b, "}");
}

/* Control bytes would break the table: show them as '?'. */
static char *
cell(const char *s)
{
    /* Names and versions come from agents' HELLOs: escape them. */
    return tc_escape_dup(s != NULL && *s ? s : "-");
}

static char *
cell_u64(uint64_t v)
{
    return tc_xasprintf("%" PRIu64, v);
}

static int
agent_cb(const struct store_agent *a, void *arg)
{
    struct agents_state *st = arg;
    char iso[64];
    char **r;

    if (st->json) {
        tc_json_raw(&st->out, st->n ? ",\n" : "\n");
        agent_json(&st->out, a);
        st->n++;
        return 0;
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->rows = tc_xreallocarray(st->rows, st->cap, sizeof(*st->rows));
    }
    r = st->rows[st->n++];
    r[COL_NAME] = cell(a->name);
    r[COL_CONN] = cell(a->connected ? "yes" : "no");
    if (a->last_seen > 0)
        tc_rfc3339(a->last_seen, 3, iso, sizeof(iso));
    r[COL_SEEN] = cell(a->last_seen > 0 ? iso : NULL);
    r[COL_SW] = cell(a->software);
    r[COL_DEPTH] = cell_u64(a->spool_depth);
    r[COL_BYTES] = cell_u64(a->spool_bytes);
    r[COL_HWM] = cell_u64(a->hwm);
    r[COL_HB] = a->heartbeat_ms ? tc_xasprintf("%" PRIu64 "ms", a->heartbeat_ms)
                                : cell(NULL);
    r[COL_SILENT] = cell(a->silent_since != 0 ? "yes" : "no");
    return 0;
}

static void
print_table(const struct agents_state *st)
{
    size_t w[NCOLS];

    for (int c = 0; c < NCOLS; c++) {
        w[c] = strlen(col_head[c]);
        for (uint64_t i = 0; i < st->n; i++)
            if (strlen(st->rows[i][c]) > w[c])
                w[c] = strlen(st->rows[i][c]);
    }
    for (int64_t i = -1; i < (int64_t)st->n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            const char *v = i < 0 ? col_head[c] : st->rows[i][c];
            int last = c == NCOLS - 1;

            if (col_right[c])
                printf("%*s", (int)w[c], v);
            else if (last)
                printf("%s", v);
            else
                printf("%-*s", (int)w[c], v);
            printf(last ? "\n" : "  ");
        }
    }
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
    if (st.json) {
        tc_json_raw(&st.out, st.n ? "\n]\n" : "]\n");
        fputs("[", stdout);
        fwrite(tc_buf_head(&st.out), 1, tc_buf_size(&st.out), stdout);
    } else {
        print_table(&st);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_warnx("write error on stdout");
        goto out;
    }
    status = 0;
out:
    for (uint64_t i = 0; st.rows != NULL && i < st.n; i++)
        for (int c = 0; c < NCOLS; c++)
            free(st.rows[i][c]);
    free(st.rows);
    tc_buf_close(&st.out);
    store_close(store);
    config_free(cfg);
    return status;
}

int
ctl_agents(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        agents_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return agents_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        agents_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: agents: unknown subcommand '%s'\n", argv[1]);
    agents_usage(stderr);
    return 2;
}
