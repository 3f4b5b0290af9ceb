/*
 * main: tocsin-agent, the host-side daemon.
 *
 *   tocsin-agent [-d] [-n] [-v] [-c FILE]
 *
 * Loads the config, compiles the rules and the TLS context (so -n
 * catches bad patterns and certificate paths), then runs tail (files
 * into the spool) and sender (spool to the collector) on one libuv loop.
 * SIGTERM/SIGINT stop the tail, say BYE and exit 0: every read pass has
 * already committed, so there is nothing else to save. SIGHUP reload is
 * a later issue.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "checks.h"
#include "config.h"
#include "emit.h"
#include "journal.h"
#include "log.h"
#include "rules.h"
#include "sender.h"
#include "spool.h"
#include "tail.h"
#include "testrules.h"
#include "tls.h"
#include "util.h"

#define AGENT_CONFIG "/etc/tocsin/agent.yaml"
/* How long SIGTERM waits for the BYE and the TLS close. */
#define AGENT_STOP_MS 5000

/* The daemon's parts; one instance, owned by main. */
struct agent {
    uv_loop_t *loop;          /* the default loop */
    struct agent_config *cfg; /* owned */
    struct rules **rules;     /* owned; cfg->nfiles rulesets */
    struct tc_tls_ctx *ctx;   /* owned */
    char name[256];           /* agent name: config or certificate CN */
    struct spool *spool;      /* owned */
    struct tail *tail;        /* owned */
    struct sender *sender;    /* owned */
    struct checks *checks;    /* owned */
    struct emit *emit;        /* owned */
    struct rules **jrules;    /* owned; cfg->njournals rulesets */
    struct journal **journals; /* owned; cfg->njournals inputs */
    uv_signal_t sig[3];       /* SIGTERM, SIGINT, SIGHUP */
    uv_timer_t stop_timer;    /* bounds the shutdown */
    int stopping;
};

static _Noreturn void
usage(void)
{
    fprintf(stderr, "usage: tocsin-agent [-dnv] [-c file]\n");
    exit(1);
}

static void
agent_closed(uv_handle_t *h)
{
    /* Handles are embedded in struct agent: nothing to free. */
}

static void
agent_close_handles(struct agent *a)
{
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&a->sig[i], agent_closed);
    uv_close((uv_handle_t *)&a->stop_timer, agent_closed);
    /* Every journal batch and fold closure has committed: nothing to
     * save, only handles to close (the loop waits for them). */
    for (size_t i = 0; a->journals != NULL && i < a->cfg->njournals; i++)
        journal_stop(a->journals[i], NULL, NULL);
    if (a->emit != NULL)
        emit_stop(a->emit, NULL, NULL);
}

static void
agent_sender_stopped(void *arg)
{
    struct agent *a = arg;

    agent_close_handles(a);
}

static void
agent_tail_stopped(void *arg)
{
    struct agent *a = arg;

    sender_stop(a->sender, agent_sender_stopped, a);
}

static void
agent_checks_stopped(void *arg)
{
    struct agent *a = arg;

    tail_stop(a->tail, agent_tail_stopped, a);
}

static void
agent_stop_timeout(uv_timer_t *h)
{
    struct agent *a = h->data;

    /* The spool is consistent at every moment; only the BYE is lost. */
    log_warnx("shutdown: the collector link did not close within %d s",
              AGENT_STOP_MS / 1000);
    uv_stop(a->loop);
}

static void
agent_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;

    if (signum == SIGHUP) {
        log_warnx("reload: not supported yet; restart to apply config "
                  "changes");
        return;
    }
    if (a->stopping)
        return;
    a->stopping = 1;
    log_info("%s: shutting down", strsignal(signum));
    uv_timer_start(&a->stop_timer, agent_stop_timeout, AGENT_STOP_MS, 0);
    /* Checks first: a plugin killed now makes no event worth sending. */
    checks_stop(a->checks, agent_checks_stopped, a);
}

static void
agent_spooled(void *arg)
{
    struct agent *a = arg;

    sender_kick(a->sender);
}

/* Load and check everything -n checks. 0 or -1 (errors logged). */
static int
agent_load(struct agent *a, const char *path)
{
    struct tc_tls_ctx_opts o;
    char err[512], cn[256];
    int bad = 0;

    if (config_load(path, &a->cfg) < 0)
        return -1;
    a->rules = tc_xcalloc(a->cfg->nfiles + 1, sizeof(*a->rules));
    for (size_t i = 0; i < a->cfg->nfiles; i++) {
        if (rules_new(a->cfg->file, &a->cfg->files[i], &a->rules[i], err,
                      sizeof(err)) < 0) {
            log_warnx("%s", err);
            bad = 1;
        }
    }
    a->jrules = tc_xcalloc(a->cfg->njournals + 1, sizeof(*a->jrules));
    for (size_t i = 0; i < a->cfg->njournals; i++) {
        const struct agent_journal *j = &a->cfg->journals[i];
        if (rules_compile(a->cfg->file, j->rules, j->nrules, &a->jrules[i],
                          err, sizeof(err)) < 0) {
            log_warnx("%s", err);
            bad = 1;
        }
    }
    if (tail_check_config(a->cfg) < 0) /* multiline patterns; logged */
        bad = 1;
    memset(&o, 0, sizeof(o));
    o.ca = a->cfg->tls_ca;
    o.cert = a->cfg->tls_cert;
    o.key = a->cfg->tls_key;
    if (tc_tls_ctx_new(&o, &a->ctx, err, sizeof(err)) < 0) {
        log_warnx("%s: %s", a->cfg->file, err);
        bad = 1;
    }
    if (tc_tls_cert_cn(a->cfg->tls_cert, cn, sizeof(cn), err, sizeof(err)) <
        0) {
        log_warnx("%s: %s", a->cfg->file, err);
        bad = 1;
    } else if (a->cfg->name == NULL) {
        snprintf(a->name, sizeof(a->name), "%s", cn);
    } else {
        snprintf(a->name, sizeof(a->name), "%s", a->cfg->name);
        if (strcmp(a->cfg->name, cn) != 0)
            log_warnx("%s: name '%s' is not the certificate's CN '%s': the "
                      "collector will refuse this identity",
                      a->cfg->file, a->cfg->name, cn);
    }
    return bad ? -1 : 0;
}

static void
agent_free(struct agent *a)
{
    checks_free(a->checks);
    tail_free(a->tail);
    sender_free(a->sender);
    spool_free(a->spool);
    if (a->rules != NULL)
        for (size_t i = 0; i < a->cfg->nfiles; i++)
            rules_free(a->rules[i]);
    free(a->rules);
    for (size_t i = 0; a->cfg != NULL && i < a->cfg->njournals; i++) {
        if (a->journals != NULL)
            journal_free(a->journals[i]);
        if (a->jrules != NULL)
            rules_free(a->jrules[i]);
    }
    free(a->journals);
    free(a->jrules);
    emit_free(a->emit);
    tc_tls_ctx_free(a->ctx);
    config_free(a->cfg);
}

int
main(int argc, char **argv)
{
    static struct agent a;
    const char *path = AGENT_CONFIG;
    const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    int ch, foreground = 0, check = 0, verbose = 0, rc;

    if (argc > 1 && strcmp(argv[1], "test-rules") == 0) {
        log_init("tocsin-agent", 1, 0);
        return testrules_main(argc - 1, argv + 1, AGENT_CONFIG);
    }
    while ((ch = getopt(argc, argv, "c:dnv")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'd':
            foreground = 1;
            break;
        case 'n':
            check = 1;
            break;
        case 'v':
            verbose++;
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    /* A collector that goes away mid-write must not kill the agent. */
    signal(SIGPIPE, SIG_IGN);
    log_init("tocsin-agent", 1, verbose);

    if (agent_load(&a, path) < 0) {
        agent_free(&a);
        return 1;
    }
    if (check) {
        printf("configuration OK\n");
        agent_free(&a);
        return 0;
    }
    if (!foreground) {
        /* Before the loop and the spool exist: neither survives fork. */
        if (daemon(0, 0) < 0)
            fatal("daemon");
        log_init("tocsin-agent", 0, verbose);
    }

    if (spool_open(a.cfg->state_dir, a.cfg->spool_max_bytes, &a.spool) < 0)
        fatalx("cannot open the spool in %s", a.cfg->state_dir);
    a.loop = uv_default_loop();
    a.sender = sender_new(a.loop, a.cfg, a.ctx, a.spool, a.name);
    /* Before the inputs, which hand their lines to it. */
    a.emit = emit_new(a.loop, a.cfg, a.spool, a.name, agent_spooled, &a);
    /* The multiline patterns were checked by agent_load. */
    if (tail_new(a.loop, a.cfg, a.rules, a.spool, a.emit, &a.tail) < 0)
        fatalx("cannot set up tailing");
    a.checks = checks_new(a.loop, a.cfg, a.spool, a.name, agent_spooled, &a);
    for (int i = 0; i < 3; i++) {
        uv_signal_init(a.loop, &a.sig[i]);
        a.sig[i].data = &a;
        uv_signal_start(&a.sig[i], agent_signal, sigs[i]);
    }
    uv_timer_init(a.loop, &a.stop_timer);
    a.stop_timer.data = &a;
    if (sender_start(a.sender) < 0)
        fatalx("cannot start the sender");
    if (tail_start(a.tail) < 0)
        fatalx("cannot start tailing");
    if (checks_start(a.checks) < 0)
        fatalx("cannot start the checks");
    if (emit_start(a.emit) < 0)
        fatalx("cannot load the pending fold and rate state");
    a.journals = tc_xcalloc(a.cfg->njournals + 1, sizeof(*a.journals));
    for (size_t i = 0; i < a.cfg->njournals; i++) {
        a.journals[i] = journal_new(a.loop, &a.cfg->journals[i], a.jrules[i],
                                    a.emit);
        if (journal_start(a.journals[i]) < 0)
            fatalx("cannot start journal input %s", a.cfg->journals[i].name);
    }
    log_info("started: agent %s, %zu files, collector %s, spool %s "
             "(%" PRIu64 " events)",
             a.name, a.cfg->nfiles, a.cfg->collector_address, a.cfg->state_dir,
             spool_depth(a.spool));

    uv_run(a.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(a.loop);
    if (rc == 0) {
        agent_free(&a);
    } else {
        /* Stopped by the shutdown timer with handles still open: the
         * spool is closed all the same, the rest goes with the process. */
        spool_free(a.spool);
    }
    log_info("exiting");
    return 0;
}
