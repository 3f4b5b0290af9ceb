/*
 * ctl: tocsinctl, the admin CLI. Parses the global options and hands
 * the rest of the command line to one subcommand (see ctl.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "escape.h"
#include "cli/ctl.h"
#include "store/incidents_store.h"
#include "log.h"
#include "perms.h"

static const char *default_config = "/etc/tocsin/collector.yaml";

/* -h: the whole text on stdout; a usage error: its first line and a
 * pointer to -h on stderr (exit 2), as the daemons do. */
static void
usage(FILE *f)
{
    if (f != stdout) {
        fprintf(f, "usage: tocsinctl [-c FILE] [--json] [-v] COMMAND ...\n"
                   "       tocsinctl --url https://HOST:PORT --token-file F "
                   "[--cacert CA] incidents|problems|silences|stats ...\n"
                   "       tocsinctl -h | --help | -V | --version\n"
                   "run 'tocsinctl --help' for the commands\n");
        return;
    }
    fprintf(f,
            "usage: tocsinctl [-c FILE] [--json] [-v] COMMAND ...\n"
            "       tocsinctl --url https://HOST:PORT --token-file F "
            "[--cacert CA] incidents|problems|silences|stats ...\n"
            "\n"
            "commands:\n"
            "  pki init DIR [--san NAME]...      create a CA and the "
            "collector certificate\n"
            "  pki issue-agent DIR NAME [--days N]\n"
            "                                    issue an agent "
            "certificate\n"
            "  events list [--host H] [--limit N] [--json]\n"
            "                                    print stored events\n"
            "  agents list [--json]              agents, link state, "
            "silence\n"
            "  incidents list [--state S] [--priority P] [--host H] "
            "[--silenced] [--json]\n"
            "  incidents show ID [--json]        incident, timeline, events\n"
            "  incidents ack|resolve|close ID [--user U] [--comment TEXT]\n"
            "  incidents note ID TEXT [--user U]\n"
            "  problems list [--state S] [--json]\n"
            "  problems show ID [--json]         candidates, links, RCA, "
            "timeline\n"
            "  problems investigate|known-error|resolve|close|link|unlink|"
            "note|rca|review ID ...\n"
            "  runbooks list [--json]            runbooks loaded from "
            "runbooks.dir, skipped files\n"
            "  runbooks test INCIDENT_ID [--json]\n"
            "                                    which runbook matches and "
            "why\n"
            "  hints list [--agent A] [--state S] [--json]\n"
            "                                    hints, delivery (S: pending,\n"
            "                                    sent, acked, refused)\n"
            "  silences add --match M... --duration D|--until TS [--start TS]\n"
            "      --comment TEXT [--user U]     M: host=H, rule=R, label:K=V\n"
            "  silences list [--all] [--json]    silences not ended (or all)\n"
            "  silences expire ID [--user U]\n"
            "  tokens create NAME --role viewer|operator|admin\n"
            "                                    an HTTP API token, shown "
            "once\n"
            "  tokens list [--all] [--json]      tokens (never their "
            "secret)\n"
            "  tokens revoke NAME\n"
            "  stats [--since 7d] [--by priority|host|rule] [--json]\n"
            "                                    MTTA, MTTR, MTBF\n"
            "  metrics                           the running collector's "
            "Prometheus\n"
            "                                    metrics (text format "
            "0.0.4)\n"
            "  replay [--json]                   rebuild the incidents from "
            "the events, diff\n"
            "  replay --config NEW.yaml [--since 7d] [--json]\n"
            "                                    what NEW.yaml's incidents "
            "and correlation\n"
            "                                    would change (exit 0 none, "
            "1 some, 2 error)\n"
            "  explain incident ID [--json]      why it is (not) in a "
            "problem: its link\n"
            "                                    and role, or each rule's "
            "verdict\n"
            "  explain problem ID [--json]       opening, links, score "
            "terms, state\n"
            "\n"
            "options:\n"
            "  -c FILE   collector configuration (default %s)\n"
            "  --url https://HOST:PORT\n"
            "            a remote collector's HTTP API instead of the local "
            "store,\n"
            "            same output: every incidents, problems, silences "
            "and stats\n"
            "            command (--user refused: the token's name is the "
            "user)\n"
            "  --token-file F\n"
            "            its API token (tokens create), a file of yours, "
            "mode 0600\n"
            "  --cacert CA\n"
            "            the CA of its certificate (default: tls.ca of -c, "
            "else the\n"
            "            system CAs)\n"
            "  --json    machine-readable output\n"
            "  -v        verbose\n"
            "  -V        print the version\n"
            "  -h        this help\n"
            "\n"
            "exit status: 0 ok, 1 error, 2 usage error\n",
            default_config);
}

/* RFC 3339 UTC with milliseconds, from ns since the epoch. */
const char *
ctl_esc(char *buf, size_t len, const char *s)
{
    tc_escape(buf, len, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
    return buf;
}

const char *
ctl_default_user(void)
{
    const char *u = getenv("SUDO_USER");

    if (u == NULL || *u == '\0')
        u = getenv("USER");
    return u && *u ? u : "unknown";
}

struct ctl_cmd {
    const char *name;
    int (*run)(const struct ctl_opts *, int, char **);
};

static const struct ctl_cmd cmds[] = {
    {"pki", ctl_pki},
    {"events", ctl_events},
    {"agents", ctl_agents},
    {"incidents", ctl_incidents},
    {"problems", ctl_problems},
    {"silences", ctl_silences},
    {"stats", ctl_stats},
    /* The running collector's Prometheus metrics (its textfile). */
    {"metrics", ctl_metrics},
    /* The incidents rebuilt from the stored inputs, diffed. */
    {"replay", ctl_replay},
    {"runbooks", ctl_runbooks},
    {"hints", ctl_hints},
    {"tokens", ctl_tokens},
    /* Why an incident is (not) in a problem; why a problem stands so. */
    {"explain", ctl_explain},
};

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"url", required_argument, NULL, 'U'},
        {"token-file", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'A'},
        {NULL, 0, NULL, 0},
    };
    struct ctl_opts o = {.config = default_config, .json = 0};
    int ch, verbose = 0;

    /* PKI keys, and SQLite files we may create: ours alone (perms.h). */
    tc_perms_umask();
    /* "+": stop at the first non-option, which is the subcommand. */
    while ((ch = getopt_long(argc, argv, "+c:hjvV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config = optarg;
            o.config_given = 1;
            break;
        case 'U':
            o.url = optarg;
            break;
        case 'T':
            o.token_file = optarg;
            break;
        case 'A':
            o.cacert = optarg;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'v':
            verbose++;
            break;
        case 'V':
            printf("tocsinctl %s\n", TOCSIN_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    log_init("tocsinctl", LOG_TO_CLI, verbose);
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    if (o.url == NULL && (o.token_file != NULL || o.cacert != NULL)) {
        fprintf(stderr, "tocsinctl: --token-file and --cacert go with --url\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[0], cmds[i].name) == 0) {
            /* Over the API: incidents (ctl_incidents.c), problems
             * (ctl_problems.c), silences (ctl_silences.c) and stats
             * (ctl_stats.c); each refuses what it lacks. */
            if (o.url != NULL && strcmp(argv[0], "incidents") != 0 &&
                strcmp(argv[0], "problems") != 0 &&
                strcmp(argv[0], "silences") != 0 &&
                strcmp(argv[0], "stats") != 0) {
                fprintf(stderr, "tocsinctl: %s: not available with --url yet\n",
                        cmds[i].name);
                return 2;
            }
            optind = 0; /* subcommands parse their own options */
            return cmds[i].run(&o, argc, argv);
        }
    }
    fprintf(stderr, "tocsinctl: unknown command '%s'\n", argv[0]);
    usage(stderr);
    return 2;
}

int
ctl_open_incidents(const struct ctl_opts *o, int rdonly,
                   struct collector_config **cfg, struct incidents_store **is)
{
    if (config_load(o->config, cfg) < 0)
        return -1;
    if (incidents_store_open((*cfg)->store_path, rdonly, is) < 0)
        return -1;
    return 0;
}

int
ctl_wait_action(struct incidents_store *is, int64_t aid, int *result)
{
    int done = 0;

    for (int waited = 0; waited < CTL_ACTION_WAIT_MS; waited += 50) {
        struct timespec ts = {0, 50 * 1000000};

        if (incidents_store_action_result(is, aid, &done, result) < 0 || done)
            break;
        nanosleep(&ts, NULL);
    }
    return done;
}

int
ctl_parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v <= 0)
        return -EINVAL;
    *out = v;
    return 0;
}
