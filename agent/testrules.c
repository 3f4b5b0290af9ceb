/*
 * testrules: "tocsin-agent test-rules", for admins tuning rules against
 * real logs.
 *
 *   tocsin-agent test-rules [-c FILE] [--input N] LOGFILE
 *
 * Reads LOGFILE line by line and applies the rules of the first file
 * input whose path (glob) matches LOGFILE, or of files[N] with --input
 * N, or of the first input if none matches. Prints one line per input
 * line: its number, the rule that matched ("-" for none), and the event
 * the agent would send as one JSON object ("drop" for action: drop).
 * Then a summary. Fold windows and rate limits depend on time and are
 * not applied (each line is shown as the event it starts as), nor is
 * multiline joining. Nothing touches the spool or the network. Rule
 * names and errors are escaped (escape.h), the events are JSON: the log
 * under test may hold terminal escapes.
 */
#include "testrules.h"

#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "daemon.h"
#include "emit.h"
#include "escape.h"
#include "log.h"
#include "rules.h"
#include "tls.h"
#include "util.h"

/* s escaped into buf (at most 256 bytes) for a text line. */
static const char *
esc(char buf[256], const char *s)
{
    tc_escape(buf, 256, s, strlen(s));
    return buf;
}

/* -h: on stdout; a usage error: on stderr, exit TC_EXIT_USAGE. */
static void
testrules_usage(FILE *f)
{
    fprintf(f, "usage: tocsin-agent test-rules [-c file] [--input N] "
               "logfile\n");
}

/* Which files[] entry applies to path; -1 when the config has none. */
static long
testrules_pick(const struct agent_config *cfg, const char *path)
{
    char abs[PATH_MAX];

    if (cfg->nfiles == 0)
        return -1;
    if (realpath(path, abs) == NULL)
        snprintf(abs, sizeof(abs), "%s", path);
    for (size_t i = 0; i < cfg->nfiles; i++)
        if (fnmatch(cfg->files[i].path, abs, FNM_PATHNAME) == 0 ||
            fnmatch(cfg->files[i].path, path, FNM_PATHNAME) == 0)
            return (long)i;
    return 0;
}

int
testrules_main(int argc, char **argv, const char *default_config)
{
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf = default_config, *logpath;
    struct agent_config *cfg = NULL;
    struct rules *rs = NULL;
    struct emit *e = NULL;
    struct emit_source src;
    struct tc_buf out;
    uint64_t lines = 0, matched = 0, dropped = 0, *per = NULL;
    char err[512], host[256], eb[256], *line = NULL, *abspath = NULL;
    size_t cap = 0;
    ssize_t got;
    long input = -1;
    FILE *f = NULL;
    int ch, status = 1;

    tc_buf_init(&out, 64u << 20);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conf = optarg;
            break;
        case 'i': {
            char *end;
            errno = 0;
            input = strtol(optarg, &end, 10);
            if (errno || *end != '\0' || input < 0) {
                fprintf(stderr,
                        "test-rules: --input: '%s' is not an index "
                        "(0 is the first file input)\n",
                        optarg);
                status = TC_EXIT_USAGE;
                goto out;
            }
            break;
        }
        case 'h':
            testrules_usage(stdout);
            status = 0;
            goto out;
        default:
            testrules_usage(stderr);
            status = TC_EXIT_USAGE;
            goto out;
        }
    }
    if (optind + 1 != argc) {
        testrules_usage(stderr);
        status = TC_EXIT_USAGE;
        goto out;
    }
    logpath = argv[optind];
    if (config_load(conf, &cfg) < 0)
        goto out;
    if (input >= (long)cfg->nfiles) {
        fprintf(stderr, "test-rules: --input %ld: %s has %zu file inputs\n",
                input, cfg->file, cfg->nfiles);
        goto out;
    }
    if (input < 0 && (input = testrules_pick(cfg, logpath)) < 0) {
        fprintf(stderr, "test-rules: %s has no file inputs\n", cfg->file);
        goto out;
    }
    if (rules_new(cfg->file, &cfg->files[input], &rs, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if ((f = fopen(logpath, "r")) == NULL) {
        fprintf(stderr, "test-rules: %s: %s\n", logpath, strerror(errno));
        goto out;
    }
    /* The host the agent would put in its events: its configured name,
     * else the CN of its certificate. */
    if (cfg->name != NULL)
        snprintf(host, sizeof(host), "%s", cfg->name);
    else if (tc_tls_cert_cn(cfg->tls_cert, host, sizeof(host), err,
                            sizeof(err)) < 0)
        snprintf(host, sizeof(host), "-");
    fprintf(stderr,
            "test-rules: %s with the rules of files[%ld] (%s), %zu "
            "rules\n",
            logpath, input, cfg->files[input].path, rules_count(rs));
    e = emit_new(NULL, cfg, NULL, host, NULL, NULL);
    per = tc_xcalloc(rules_count(rs) + 1, sizeof(*per));
    memset(&src, 0, sizeof(src));
    src.kind = "log";
    /* As the tail would: the events' source is the file's own path. */
    abspath = realpath(logpath, NULL);
    src.source = abspath != NULL ? abspath : logpath;
    src.labels = cfg->files[input].labels;
    src.nlabels = cfg->files[input].nlabels;
    while ((got = getline(&line, &cap, f)) > 0) {
        struct rules_hit hit;
        size_t len = (size_t)got;
        int idx, rc;

        if (line[len - 1] == '\n')
            len--;
        if (len > cfg->max_line_bytes)
            len = cfg->max_line_bytes;
        lines++;
        tc_buf_reset(&out);
        idx = rules_match(rs, line, len, &hit);
        if (idx < 0) {
            printf("%" PRIu64 " -\n", lines);
            continue;
        }
        matched++;
        per[idx]++;
        rc = emit_preview(e, &src, &hit, line, len, tc_now_ns(), &out);
        if (rc == 0) {
            dropped++;
            printf("%" PRIu64 " %s drop\n", lines, esc(eb, hit.rule));
            continue;
        }
        printf("%" PRIu64 " %s %.*s\n", lines, esc(eb, hit.rule),
               (int)tc_buf_size(&out), (const char *)tc_buf_head(&out));
    }
    if (ferror(f)) {
        fprintf(stderr, "test-rules: %s: read error\n", logpath);
        goto out;
    }
    printf("# %" PRIu64 " lines, %" PRIu64 " matched, %" PRIu64
           " dropped, %" PRIu64 " events\n",
           lines, matched, dropped, matched - dropped);
    for (size_t i = 0; i < cfg->files[input].nrules; i++) {
        const struct agent_rule *r = &cfg->files[input].rules[i];
        printf("# rule %s: %" PRIu64 "%s\n", esc(eb, r->name), per[i],
               r->action == AGENT_ACTION_DROP ? " (drop)" : "");
    }
    if (rules_errors(rs) > 0)
        printf("# match errors (limits hit): %" PRIu64 ", last: %s\n",
               rules_errors(rs), esc(eb, rules_last_error(rs)));
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    if (f != NULL)
        fclose(f);
    free(line);
    free(per);
    free(abspath);
    emit_free(e);
    rules_free(rs);
    config_free(cfg);
    tc_buf_close(&out);
    return status;
}
