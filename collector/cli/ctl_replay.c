/*
 * ctl_replay: "tocsinctl replay [--json]".
 *
 * Rebuilds the incidents from the stored events, the recorded actions
 * and the recorded ticks into a scratch in-memory store, following the
 * engine_steps log, and reports every difference from the live incident
 * tables (docs/internals/incidents.md, "Replay"). There must be none:
 * incident state is a function of those inputs and the config. Run with
 * a changed config, it shows what that change would have done.
 *
 * Exit status: 0 identical, 1 different (or an error), 2 usage.
 *
 * With --config NEW.yaml it replays with that file's engine sections
 * instead and reports what would change (ctl_replay_config.c).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "cli/ctl.h"
#include "engine/incident.h"
#include "store/incidents_store.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define OUT_MAX (16u << 20)

/*
 * The differences are printed only once the replay is over: it reads
 * in one snapshot (it must compare the live tables with the inputs of
 * the same step), and writing to a stalled pipe inside it would keep
 * the collector's WAL from being checkpointed meanwhile (issue 9).
 */
struct replay_ctx {
    int json;
    struct tc_buf out; /* differences, printed at the end */
};

/* printf into c->out (text differences). */
static void __attribute__((format(printf, 2, 3)))
outf(struct replay_ctx *c, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        tc_buf_append(&c->out, line,
                      (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Fingerprints separate host and key with 0x1f: show a space. */
static void
printable(const char *s, char *buf, size_t len)
{
    size_t i = 0;

    for (; s && s[i] && i + 1 < len; i++)
        buf[i] = (s[i] == '\x1f') ? ' ' : s[i];
    buf[i] = '\0';
}

static int
diff_cb(const struct incidents_diff *d, void *arg)
{
    struct replay_ctx *c = arg;
    char key[256], l[1024], r[1024], el[sizeof(l) * 4], er[sizeof(r) * 4];
    char ek[sizeof(key) * 4];

    printable(d->key, key, sizeof(key));
    printable(d->live, l, sizeof(l));
    printable(d->replay, r, sizeof(r));
    if (c->json) {
        tc_json_raw(&c->out, tc_buf_size(&c->out) ? ",\n  {" : "\n  {");
        tc_json_key(&c->out, "table");
        tc_json_str(&c->out, d->table, strlen(d->table));
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, "incident");
        tc_json_i64(&c->out, d->incident_id);
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, "key");
        tc_json_str(&c->out, key, strlen(key));
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, "column");
        if (d->column)
            tc_json_str(&c->out, d->column, strlen(d->column));
        else
            tc_json_raw(&c->out, "null");
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, "live");
        if (d->live)
            tc_json_str(&c->out, l, strlen(l));
        else
            tc_json_raw(&c->out, "null");
        tc_json_raw(&c->out, ",");
        tc_json_key(&c->out, "replay");
        if (d->replay)
            tc_json_str(&c->out, r, strlen(r));
        else
            tc_json_raw(&c->out, "null");
        tc_json_raw(&c->out, "}");
        return 0;
    }
    /* Text: keys and values hold hosts, rules and messages. */
    ctl_esc(ek, sizeof(ek), key);
    if (strcmp(d->table, "incidents") == 0)
        outf(c, "incident %s: ", ek);
    else if (strcmp(d->table, "timeline") == 0)
        outf(c, "incident %" PRId64 ": timeline entry %s: ", d->incident_id,
             strchr(ek, ' ') ? strchr(ek, ' ') + 1 : ek);
    else if (strcmp(d->table, "actions") == 0)
        outf(c, "incident %" PRId64 ": action %s: ", d->incident_id, ek);
    else if (strcmp(d->table, "incident_fps") == 0)
        outf(c, "soft state %s: ", ek);
    else if (strcmp(d->table, "problems") == 0)
        outf(c, "problem %s: ", ek);
    else
        outf(c, "%s %s: ", d->table, ek);
    if (d->column)
        outf(c, "%s: live %s, replay %s\n", d->column,
             ctl_esc(el, sizeof(el), l), ctl_esc(er, sizeof(er), r));
    else if (d->live)
        outf(c, "only in live: %s\n", ctl_esc(el, sizeof(el), l));
    else
        outf(c, "only in replay: %s\n", ctl_esc(er, sizeof(er), r));
    return 0;
}

static void
replay_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl replay [--json]\n"
               "       tocsinctl replay --config NEW.yaml [--since D] "
               "[--json]\n");
}

int
ctl_replay(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct incidents_replay_stats st;
    struct incident_config ic;
    struct problem_config pc;
    struct replay_ctx c = {.json = o->json};
    const char *newcfg = NULL, *since = NULL;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            newcfg = argv[++i];
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            since = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            replay_usage(stdout);
            return 0;
        } else {
            replay_usage(stderr);
            return 2;
        }
    }
    if (since && !newcfg) {
        fprintf(stderr, "tocsinctl: replay: --since goes with --config\n");
        replay_usage(stderr);
        return 2;
    }
    if (newcfg)
        return ctl_replay_config(o, newcfg, since, c.json);
    tc_buf_init(&c.out, OUT_MAX);
    if (config_load(o->config, &cfg) < 0)
        goto out;
    /* The same thresholds as the collector's engine. */
    config_incidents(cfg, &ic);
    config_correlation(cfg, &pc);
    if (incidents_store_open(cfg->store_path, 1, &is) < 0)
        goto out;
    rc = incidents_store_replay(is, &ic, &pc, diff_cb, &c, &st);
    if (rc < 0) {
        log_warnx("%s: replay: %s", cfg->store_path,
                  incidents_store_errmsg(is));
        goto out;
    }
    if (c.json) {
        printf("{\"identical\":%s,\"steps\":%" PRIu64 ",\"batches\":%" PRIu64
               ",\"actions\":%" PRIu64 ",\"incidents\":%" PRIu64
               ",\"timeline\":%" PRIu64 ",\"soft_states\":%" PRIu64
               ",\"problems\":%" PRIu64 ",\"problem_rows\":%" PRIu64
               ",\"hints\":%" PRIu64 ",\"differences\":[",
               st.diffs ? "false" : "true", st.steps, st.batches, st.actions,
               st.incidents, st.notes, st.fps, st.problems, st.prows, st.hints);
        if (tc_buf_size(&c.out))
            fwrite(tc_buf_head(&c.out), 1, tc_buf_size(&c.out), stdout);
        printf("%s]}\n", st.diffs ? "\n" : "");
    } else {
        if (tc_buf_size(&c.out))
            fwrite(tc_buf_head(&c.out), 1, tc_buf_size(&c.out), stdout);
        printf("replayed %" PRIu64 " steps (%" PRIu64 " batches, %" PRIu64
               " actions); compared %" PRIu64 " incidents, %" PRIu64
               " timeline entries, %" PRIu64 " soft states, %" PRIu64
               " problems, %" PRIu64 " problem rows, %" PRIu64 " hints: ",
               st.steps, st.batches, st.actions, st.incidents, st.notes, st.fps,
               st.problems, st.prows, st.hints);
        if (st.diffs)
            printf("%" PRIu64 " difference%s\n", st.diffs,
                   st.diffs == 1 ? "" : "s");
        else
            printf("identical\n");
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        goto out;
    status = st.diffs ? 1 : 0;
out:
    tc_buf_close(&c.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}
