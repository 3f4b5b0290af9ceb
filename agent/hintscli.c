/*
 * hintscli: "tocsin-agent hints", read-only views of the hint store.
 *
 *   tocsin-agent hints [--json] [-c FILE]         every stored hint
 *   tocsin-agent hints show ID [--json] [-c FILE] one hint, for a person
 *
 * It opens the state database read-only (hints_store_open), which works
 * beside a running agent thanks to WAL, and reads only state_dir from
 * the config, so that it answers while the file has errors elsewhere.
 * Everything it prints came from the collector: text output is escaped
 * (escape.h, table.h), JSON goes through the JSON writer.
 */
#include "hintscli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "daemon.h"
#include "escape.h"
#include "hints_store.h"
#include "json.h"
#include "log.h"
#include "table.h"
#include "timefmt.h"
#include "util.h"

#define HINTSCLI_OUT_MAX (64u << 20) /* bytes of one listing */

static void
hintscli_usage(FILE *f)
{
    fprintf(f, "usage: tocsin-agent hints [--json] [-c file]\n"
               "       tocsin-agent hints show ID [--json] [-c file]\n");
}

/* state_dir from the file at path (only that key is read), or NULL. */
static char *
hintscli_state_dir(const char *path)
{
    const struct tc_conf_node *n;
    struct tc_conf *c;
    char *dir = NULL;

    if (tc_conf_load(path, &c) < 0)
        return NULL;
    if ((n = tc_conf_find(c->root, "state_dir")) != NULL &&
        n->kind == TC_CONF_SCALAR && !n->null)
        dir = tc_conf_path(c, n->str);
    else
        log_warnx("%s: state_dir is not set", path);
    tc_conf_free(c);
    return dir;
}

static void
hintscli_time(int64_t ns, char *buf, size_t len)
{
    if (ns == 0)
        snprintf(buf, len, "-");
    else
        tc_rfc3339(ns, 0, buf, len);
}

/* One hint as a JSON object. */
static void
hintscli_json(struct tc_buf *o, const struct agent_hint *h)
{
    char t[64];

    tc_json_raw(o, "{");
    tc_json_key(o, "id");
    tc_json_u64(o, h->id);
#define JSTR(k, v)                                                             \
    do {                                                                       \
        tc_json_raw(o, ",");                                                   \
        tc_json_key(o, k);                                                     \
        tc_json_str(o, v, strlen(v));                                          \
    } while (0)
    JSTR("incident", h->incident);
    tc_json_raw(o, ",");
    tc_json_key(o, "problem");
    tc_json_u64(o, h->problem);
    JSTR("source", h->source);
    JSTR("title", h->title);
    JSTR("text", h->text);
    JSTR("action", h->action);
    tc_json_raw(o, ",");
    tc_json_key(o, "params");
    tc_json_raw(o, "{");
    for (uint32_t i = 0; i < h->nparams; i++) {
        if (i > 0)
            tc_json_raw(o, ",");
        tc_json_str(o, h->params[i].key, strlen(h->params[i].key));
        tc_json_raw(o, ":");
        tc_json_str(o, h->params[i].val, strlen(h->params[i].val));
    }
    tc_json_raw(o, "}");
    JSTR("state", h->state);
    JSTR("agent", h->agent);
    tc_json_raw(o, ",");
    tc_json_key(o, "issued");
    tc_json_i64(o, h->issued);
    tc_json_raw(o, ",");
    tc_json_key(o, "received_ns");
    tc_json_i64(o, h->stored_at);
    hintscli_time(h->stored_at, t, sizeof(t));
    JSTR("received", t);
    tc_json_raw(o, ",");
    tc_json_key(o, "updated_ns");
    tc_json_i64(o, h->updated_at);
#undef JSTR
    tc_json_raw(o, "}");
}

struct hintscli_list {
    struct tc_buf *out;   /* JSON output; borrowed */
    struct tc_table *tab; /* text output; borrowed */
    size_t n;             /* hints listed */
};

static int
hintscli_list_cb(void *arg, const struct agent_hint *h)
{
    struct hintscli_list *l = arg;
    char t[64];

    if (l->out != NULL) {
        tc_json_raw(l->out, l->n > 0 ? ",\n" : "\n");
        hintscli_json(l->out, h);
    } else {
        hintscli_time(h->stored_at, t, sizeof(t));
        tc_table_cellf(l->tab, "%" PRIu64, h->id);
        tc_table_cell(l->tab, h->incident);
        if (h->problem != 0)
            tc_table_cellf(l->tab, "%" PRIu64, h->problem);
        else
            tc_table_cell(l->tab, NULL);
        tc_table_cell(l->tab, h->state);
        tc_table_cell(l->tab, h->action);
        tc_table_cell(l->tab, h->source);
        tc_table_cell(l->tab, t);
        tc_table_cell(l->tab, h->title);
    }
    l->n++;
    return 0;
}

static int
hintscli_list(struct hints_store *st, int json)
{
    static const struct tc_table_col cols[] = {
        {"ID", 1, 0},       {"INCIDENT", 0, 24}, {"PROBLEM", 1, 0},
        {"STATE", 0, 0},    {"ACTION", 0, 24},   {"SOURCE", 0, 32},
        {"RECEIVED", 0, 0}, {"TITLE", 0, 60},
    };
    struct hintscli_list l = {NULL, NULL, 0};
    struct tc_table tab;
    struct tc_buf out;
    int rc;

    tc_buf_init(&out, HINTSCLI_OUT_MAX);
    tc_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]));
    if (json) {
        l.out = &out;
        tc_json_raw(&out, "[");
    } else {
        l.tab = &tab;
    }
    if ((rc = hints_store_list(st, hintscli_list_cb, &l)) < 0)
        goto out;
    if (json) {
        tc_json_raw(&out, l.n > 0 ? "\n]\n" : "]\n");
        if (fwrite(tc_buf_head(&out), 1, tc_buf_size(&out), stdout) !=
            tc_buf_size(&out))
            rc = -EIO;
    } else if (l.n == 0) {
        printf("no hints\n");
    } else {
        rc = tc_table_print(&tab, stdout);
    }
out:
    tc_table_free(&tab);
    tc_buf_close(&out);
    return rc;
}

/* Print s escaped, line by line, each line indented by ind. */
static void
hintscli_lines(const char *ind, const char *s)
{
    while (*s != '\0') {
        const char *nl = strchr(s, '\n');
        size_t n = nl != NULL ? (size_t)(nl - s) : strlen(s);
        size_t cap = n * TC_ESCAPE_MAX + 1;
        char *e = tc_xmalloc(cap);

        tc_escape(e, cap, s, n);
        printf("%s%s\n", ind, e);
        free(e);
        s += n;
        if (*s == '\n')
            s++;
    }
}

static int
hintscli_show(struct hints_store *st, uint64_t id, int json)
{
    struct agent_hint h;
    char t[64];
    int rc;

    if ((rc = hints_store_get(st, id, &h)) < 0) {
        if (rc == -ENOENT)
            log_warnx("no hint %" PRIu64, id);
        return rc;
    }
    if (json) {
        struct tc_buf out;
        tc_buf_init(&out, HINTSCLI_OUT_MAX);
        hintscli_json(&out, &h);
        tc_json_raw(&out, "\n");
        fwrite(tc_buf_head(&out), 1, tc_buf_size(&out), stdout);
        tc_buf_close(&out);
        hints_store_hint_clear(&h);
        return 0;
    }
    char *title = tc_escape_dup(h.title), *inc = tc_escape_dup(h.incident);
    char *src = tc_escape_dup(h.source), *act = tc_escape_dup(h.action);
    printf("hint %" PRIu64 ": %s\n", h.id, title);
    printf("incident: %s\n", inc);
    if (h.problem != 0)
        printf("problem:  %" PRIu64 "\n", h.problem);
    else
        printf("problem:  -\n");
    printf("source:   %s\n", src);
    printf("state:    %s\n", h.state);
    hintscli_time(h.stored_at, t, sizeof(t));
    printf("received: %s\n", t);
    if (h.action[0] == '\0') {
        printf("action:   none\n");
    } else {
        printf("action:   %s\n", act);
        for (uint32_t i = 0; i < h.nparams; i++) {
            char *k = tc_escape_dup(h.params[i].key);
            char *v = tc_escape_dup(h.params[i].val);
            printf("          %s=%s\n", k, v);
            free(k);
            free(v);
        }
        printf("          (run it with: tocsin-agent hints run %" PRIu64
               ", if this agent's actions allow it)\n",
               h.id);
    }
    printf("\n");
    hintscli_lines("  ", h.text);
    free(title);
    free(inc);
    free(src);
    free(act);
    hints_store_hint_clear(&h);
    return 0;
}

int
hintscli_main(int argc, char **argv, const char *default_config)
{
    const char *path = default_config, *idarg = NULL;
    struct hints_store *st = NULL;
    int json = 0, show = 0, rc;
    unsigned long long id = 0;
    char *dir, *end;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            hintscli_usage(stdout);
            return 0;
        } else if (!show && idarg == NULL && strcmp(argv[i], "show") == 0) {
            show = 1;
        } else if (show && idarg == NULL && argv[i][0] != '-') {
            idarg = argv[i];
        } else {
            hintscli_usage(stderr);
            return TC_EXIT_USAGE;
        }
    }
    if (show) {
        errno = 0;
        if (idarg == NULL ||
            (id = strtoull(idarg, &end, 10),
             errno != 0 || end == idarg || *end != '\0' || idarg[0] == '-')) {
            hintscli_usage(stderr);
            return TC_EXIT_USAGE;
        }
    }
    if ((dir = hintscli_state_dir(path)) == NULL)
        return 1;
    rc = hints_store_open(dir, 1, &st);
    free(dir);
    if (rc < 0)
        return 1;
    rc = show ? hintscli_show(st, (uint64_t)id, json) : hintscli_list(st, json);
    hints_store_free(st);
    return rc < 0 ? 1 : 0;
}
