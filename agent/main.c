/*
 * main: tocsin-agent, the host-side daemon.
 *
 *   tocsin-agent [-d] [-n] [-v] [-c FILE]
 *   tocsin-agent status [--json] [-c FILE]
 *   tocsin-agent hints [show ID] [--json] [-c FILE]
 *   tocsin-agent test-rules [-c FILE] [--input N] LOGFILE
 *   tocsin-agent actions list|test|run ... (actions_cmd.c)
 *
 * Loads the config, compiles the rules and the TLS context (so -n
 * catches bad patterns and certificate paths), opens the spool, then
 * runs the parts on one libuv loop: sender (spool to collector), emit
 * (rule matches to spooled events), tail, checks and journald inputs,
 * and the status socket.
 *
 * SIGTERM/SIGINT stop the parts in order (inputs first, the sender
 * last so it can say BYE) and exit 0: every read pass has already
 * committed, so there is nothing else to save.
 *
 * SIGHUP parses the file again beside the running configuration and
 * swaps only if all of it is valid (OpenBSD style); a broken file is
 * refused with its errors and the old configuration keeps running. To
 * apply a valid one the parts are stopped and built again from it.
 * Nothing is lost: positions, events and fold state are in the spool,
 * and an input restarted from the spool resumes where it stopped. The
 * link to the collector is re-established; unacked events are sent
 * again and the collector drops the duplicates. state_dir cannot change
 * without a restart (it is the spool); spool.max_bytes and
 * status_socket changes are applied at the next restart.
 */
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "action_run.h"
#include "actions_cmd.h"
#include "checks.h"
#include "conf.h"
#include "config.h"
#include "daemon.h"
#include "emit.h"
#include "journal.h"
#include "log.h"
#include "memtrim.h"
#include "perms.h"
#include "report.h"
#include "rules.h"
#include "hints_store.h"
#include "hintscli.h"
#include "hintsig.h"
#include "sender.h"
#include "spool.h"
#include "status.h"
#include "tail.h"
#include "testrules.h"
#include "tls.h"
#include "util.h"

#define AGENT_CONFIG "/etc/tocsin/agent.yaml"
/* How long SIGTERM waits for the BYE and the TLS close. */
#define AGENT_STOP_MS 5000
/* How often agent_trim_cb looks for the end of a burst. */
#define AGENT_TRIM_MS 5000
/*
 * Memory comes and goes with read passes: a pass's events (emit), their
 * encoding (spool), SQLite's copy of a chunk row as it is written and
 * again as it is read back, each up to a MiB or two. With glibc's
 * defaults such blocks are mmap'ed, or trimmed off the top of the heap,
 * when freed, and faulted in again page by page by the next pass: with
 * 256 KiB passes (what a sender that keeps up sees) those page faults
 * doubled the agent's CPU. So blocks up to AGENT_MMAP_MIN come from the
 * heap, the heap keeps up to AGENT_TRIM_KEEP free at its top, and
 * agent_trim_cb gives the memory back once a burst is over.
 */
#define AGENT_MMAP_MIN (8 << 20)
#define AGENT_TRIM_KEEP (32 << 20)

/* What one configuration file yields, loaded and checked as a unit. */
struct agent_conf {
    struct agent_config *cfg;   /* owned */
    struct rules **rules;       /* owned; cfg->nfiles rulesets */
    struct rules **jrules;      /* owned; cfg->njournals rulesets */
    struct tc_tls_ctx *ctx;     /* owned */
    char name[256];             /* agent name: config or certificate CN */
    struct tc_hintkey *hintkey; /* owned: hints.public_key; NULL: none */
};

/* The daemon's parts; one instance, owned by main. */
struct agent {
    uv_loop_t *loop;           /* the default loop */
    const char *path;          /* config file as given; borrowed argv */
    struct agent_conf conf;    /* the running configuration */
    struct agent_conf next;    /* a reload's new configuration */
    struct spool *spool;       /* owned; outlives reloads */
    struct hints_store *hints; /* owned; outlives reloads */
    struct sender *sender;     /* owned; the parts below are rebuilt */
    struct emit *emit;         /* on every reload */
    struct tail *tail;
    struct checks *checks;
    struct journal **journals;        /* cfg->njournals inputs */
    struct status *status;            /* owned; outlives reloads */
    struct action_runner *runner;     /* owned; outlives reloads */
    struct actions_agent actions;     /* status "action-run" requests */
    uv_signal_t sig[3];               /* SIGTERM, SIGINT, SIGHUP */
    uv_timer_t stop_timer;            /* bounds the shutdown */
    uv_timer_t trim_timer;            /* agent_trim_cb, AGENT_TRIM_MS */
    uint64_t trim_seq;                /* spool_next_seq at the last tick */
    int trim_due;                     /* events spooled since the trim */
    int stopping;                     /* SIGTERM seen */
    int reloading;                    /* parts are stopping for a reload */
    int reload_again;                 /* SIGHUP arrived during a reload */
    size_t stop_step;                 /* progress of parts_stop */
    void (*stopped)(struct agent *a); /* after parts_stop */
    int64_t started_ns;               /* wall clock at start */
    int64_t reloaded_ns;              /* last applied reload; 0 = none */
    uint64_t reloads_refused;         /* SIGHUPs with a broken file */
};

/*
 * -h: the usage on stdout, exit 0. A usage error: the same on stderr,
 * exit TC_EXIT_USAGE (2); a bad configuration exits 1.
 */
static _Noreturn void
usage(FILE *f, int code)
{
    fprintf(f, "usage: tocsin-agent [-dnv] [-c file]\n"
               "       tocsin-agent status | hints [show ID | run ID] "
               "[--json] [-c file]\n"
               "       tocsin-agent actions list|test|run ... [-c file]\n"
               "       tocsin-agent test-rules [-c file] [--input N] "
               "logfile\n"
               "       tocsin-agent -h | --help | -V | --version\n");
    if (f == stdout)
        tc_daemon_usage_options(f, AGENT_CONFIG);
    exit(code);
}

/* Load and check everything -n checks. 0 or -1 (errors logged). */
static int
conf_load(struct agent_conf *c, const char *path)
{
    struct tc_tls_ctx_opts o;
    char err[512], cn[256];
    int bad = 0;

    memset(c, 0, sizeof(*c));
    if (config_load(path, &c->cfg) < 0)
        return -1;
    c->rules = tc_xcalloc(c->cfg->nfiles + 1, sizeof(*c->rules));
    for (size_t i = 0; i < c->cfg->nfiles; i++) {
        if (rules_new(c->cfg->file, &c->cfg->files[i], &c->rules[i], err,
                      sizeof(err)) < 0) {
            log_warnx("%s", err);
            bad = 1;
        }
    }
    c->jrules = tc_xcalloc(c->cfg->njournals + 1, sizeof(*c->jrules));
    for (size_t i = 0; i < c->cfg->njournals; i++) {
        const struct agent_journal *j = &c->cfg->journals[i];
        if (rules_compile(c->cfg->file, j->rules, j->nrules, &c->jrules[i], err,
                          sizeof(err)) < 0) {
            log_warnx("%s", err);
            bad = 1;
        }
    }
    if (tail_check_config(c->cfg) < 0) /* multiline patterns; logged */
        bad = 1;
    memset(&o, 0, sizeof(o));
    o.ca = c->cfg->tls_ca;
    o.cert = c->cfg->tls_cert;
    o.key = c->cfg->tls_key;
    if (tc_tls_ctx_new(&o, &c->ctx, err, sizeof(err)) < 0) {
        log_warnx("%s: %s", c->cfg->file, err);
        bad = 1;
    }
    if (c->cfg->hints_public_key != NULL &&
        tc_hintkey_load_public(c->cfg->hints_public_key, &c->hintkey, err,
                               sizeof(err)) < 0) {
        log_warnx("%s:%d: hints.public_key: %s", c->cfg->file,
                  c->cfg->hints_public_key_line, err);
        bad = 1;
    }
    if (tc_tls_cert_cn(c->cfg->tls_cert, cn, sizeof(cn), err, sizeof(err)) <
        0) {
        log_warnx("%s: %s", c->cfg->file, err);
        bad = 1;
    } else if (c->cfg->name == NULL) {
        snprintf(c->name, sizeof(c->name), "%s", cn);
    } else {
        snprintf(c->name, sizeof(c->name), "%s", c->cfg->name);
        if (strcmp(c->cfg->name, cn) != 0)
            log_warnx("%s: name '%s' is not the certificate's CN '%s': the "
                      "collector will refuse this identity",
                      c->cfg->file, c->cfg->name, cn);
    }
    return bad ? -1 : 0;
}

/*
 * -n beyond the file: state_dir (the spool) can be created or used,
 * and an existing spool is ours to write; checked without changing
 * anything on disk (nothing is created or tightened). 0 or -1 (logged).
 */
static int
conf_check_system(const struct agent_config *cfg)
{
    char err[512], *db;
    int rc;

    if (tc_perms_dir_check(cfg->state_dir, err, sizeof(err)) < 0) {
        log_warnx("%s: state_dir: %s", cfg->file, err);
        return -1;
    }
    db = tc_xasprintf("%s/spool.db", cfg->state_dir);
    if ((rc = tc_perms_file_check(db, err, sizeof(err))) < 0)
        log_warnx("%s: state_dir: %s", cfg->file, err);
    free(db);
    return rc < 0 ? -1 : 0;
}

static void
conf_free(struct agent_conf *c)
{
    for (size_t i = 0; c->cfg != NULL && i < c->cfg->nfiles; i++)
        rules_free(c->rules[i]);
    for (size_t i = 0; c->cfg != NULL && i < c->cfg->njournals; i++)
        rules_free(c->jrules[i]);
    free(c->rules);
    free(c->jrules);
    tc_tls_ctx_free(c->ctx);
    tc_hintkey_free(c->hintkey);
    config_free(c->cfg);
    memset(c, 0, sizeof(*c));
}

static void
agent_spooled(void *arg)
{
    struct agent *a = arg;

    if (a->sender != NULL)
        sender_kick(a->sender);
}

static void
agent_render(void *arg, struct tc_buf *out, int json)
{
    struct agent *a = arg;
    struct report_src r = {
        .name = a->conf.name,
        .cfg = a->conf.cfg,
        .spool = a->spool,
        .sender = a->sender,
        .tail = a->tail,
        .checks = a->checks,
        .emit = a->emit,
        .journals = a->journals,
        .started_ns = a->started_ns,
        .reloaded_ns = a->reloaded_ns,
        .reloads_failed = a->reloads_refused,
    };

    report_render(&r, out, json);
}

/* Build and start the parts from a->conf. Failures here are fatal: the
 * configuration was fully checked before. */
static void
parts_start(struct agent *a)
{
    const struct agent_config *cfg = a->conf.cfg;

    a->sender = sender_new(a->loop, cfg, a->conf.ctx, a->spool, a->conf.name);
    sender_set_hints(a->sender, a->hints, a->conf.hintkey);
    sender_set_hint_cb(a->sender, actions_cmd_hint_stored, &a->actions);
    /* Before the inputs, which hand their lines to it. */
    a->emit = emit_new(a->loop, cfg, a->spool, a->conf.name, agent_spooled, a);
    if (tail_new(a->loop, cfg, a->conf.rules, a->spool, a->emit, &a->tail) < 0)
        fatalx("cannot set up tailing");
    a->checks =
        checks_new(a->loop, cfg, a->spool, a->conf.name, agent_spooled, a);
    if (sender_start(a->sender) < 0)
        fatalx("cannot start the sender");
    if (emit_start(a->emit) < 0)
        fatalx("cannot load the pending fold and rate state");
    if (tail_start(a->tail) < 0)
        fatalx("cannot start tailing");
    if (checks_start(a->checks) < 0)
        fatalx("cannot start the checks");
    a->journals = tc_xcalloc(cfg->njournals + 1, sizeof(*a->journals));
    for (size_t i = 0; i < cfg->njournals; i++) {
        a->journals[i] =
            journal_new(a->loop, &cfg->journals[i], a->conf.jrules[i], a->emit);
        if (journal_start(a->journals[i]) < 0)
            fatalx("cannot start journal input %s", cfg->journals[i].name);
    }
}

static void
parts_free(struct agent *a)
{
    checks_free(a->checks);
    tail_free(a->tail);
    for (size_t i = 0; a->journals != NULL && i < a->conf.cfg->njournals; i++)
        journal_free(a->journals[i]);
    free(a->journals);
    emit_free(a->emit);
    sender_free(a->sender);
    a->checks = NULL;
    a->tail = NULL;
    a->journals = NULL;
    a->emit = NULL;
    a->sender = NULL;
}

/*
 * Stop the parts one after the other, each from the previous one's
 * callback: checks (a plugin killed now makes no event worth sending),
 * journals, tail, emit, and the sender last so that it can say BYE.
 * Then a->stopped(a).
 */
static void
parts_stop_next(void *arg)
{
    struct agent *a = arg;
    size_t nj = a->conf.cfg->njournals;
    size_t step = a->stop_step++;

    if (step == 0) {
        checks_stop(a->checks, parts_stop_next, a);
    } else if (step <= nj) {
        journal_stop(a->journals[step - 1], parts_stop_next, a);
    } else if (step == nj + 1) {
        tail_stop(a->tail, parts_stop_next, a);
    } else if (step == nj + 2) {
        emit_stop(a->emit, parts_stop_next, a);
    } else if (step == nj + 3) {
        sender_stop(a->sender, parts_stop_next, a);
    } else {
        a->stopped(a);
    }
}

static void
parts_stop(struct agent *a, void (*stopped)(struct agent *a))
{
    a->stop_step = 0;
    a->stopped = stopped;
    parts_stop_next(a);
}

/*
 * Give memory back once a burst is over: spooling, sending and acking a
 * burst grows the spool's pass buffers and the heap (kept on purpose
 * while busy, see AGENT_TRIM_KEEP). A tick that sees no new event after
 * one that did lets the spool free its burst buffers (spool_trim) and
 * calls malloc_trim, which releases the free pages inside the heap too;
 * under steady load neither runs. It costs a walk over the free chunks,
 * at most once per burst.
 */
static void
agent_trim_cb(uv_timer_t *h)
{
    struct agent *a = h->data;
    uint64_t seq = spool_next_seq(a->spool);
    int idle = spool_trim(a->spool);
    long code;

    if (seq != a->trim_seq || !idle) {
        a->trim_seq = seq;
        a->trim_due = 1;
        return;
    }
    if (!a->trim_due)
        return;
    a->trim_due = 0;
    sender_trim(a->sender);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    code = tc_memtrim_code();
    if (code < 0)
        log_debug("memtrim: %s", strerror((int)-code));
}

static void
agent_closed(uv_handle_t *h)
{
    /* Handles are embedded in struct agent: nothing to free. */
}

static void
agent_status_stopped(void *arg)
{
    struct agent *a = arg;

    a->status = NULL;
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&a->sig[i], agent_closed);
    uv_close((uv_handle_t *)&a->stop_timer, agent_closed);
    uv_close((uv_handle_t *)&a->trim_timer, agent_closed);
}

static void
agent_runner_stopped(void *arg)
{
    struct agent *a = arg;

    a->runner = NULL;
    status_stop(a->status, agent_status_stopped, a);
}

/* Actions still running are killed (their results are spooled, and
 * their callers answered) before the status socket closes. */
static void
agent_parts_stopped(struct agent *a)
{
    action_runner_stop(a->runner, agent_runner_stopped, a);
}

/* An action's result was spooled. Not while the parts stop or are
 * rebuilt: the sender reads the spool when it starts again. */
static void
agent_action_spooled(void *arg)
{
    struct agent *a = arg;

    if (!a->stopping && !a->reloading && a->sender != NULL)
        sender_kick(a->sender);
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

static void reload_begin(struct agent *a);

/* The old parts are down: swap the configuration and start again. */
static void
reload_stopped(struct agent *a)
{
    parts_free(a);
    conf_free(&a->conf);
    a->conf = a->next;
    memset(&a->next, 0, sizeof(a->next));
    a->reloading = 0;
    if (a->stopping) {
        /* SIGTERM came while we were stopping: do not start again. */
        agent_parts_stopped(a);
        return;
    }
    parts_start(a);
    a->reloaded_ns = tc_now_ns();
    a->trim_due = 1; /* the old configuration's memory is free now */
    log_info("reload: configuration applied: %zu files, %zu checks, "
             "%zu journal inputs",
             a->conf.cfg->nfiles, a->conf.cfg->nchecks, a->conf.cfg->njournals);
    if (a->reload_again) {
        a->reload_again = 0;
        reload_begin(a);
    }
}

static void
reload_begin(struct agent *a)
{
    const struct agent_config *old = a->conf.cfg, *cfg;

    log_info("reload: reading %s", a->path);
    if (conf_load(&a->next, a->path) < 0) {
        conf_free(&a->next);
        a->reloads_refused++;
        log_warnx("reload: %s has errors (above); keeping the running "
                  "configuration",
                  a->path);
        return;
    }
    cfg = a->next.cfg;
    if (strcmp(cfg->state_dir, old->state_dir) != 0) {
        log_warnx("reload: state_dir changed (%s -> %s): that needs a "
                  "restart; keeping the running configuration",
                  old->state_dir, cfg->state_dir);
        conf_free(&a->next);
        a->reloads_refused++;
        return;
    }
    if (cfg->spool_max_bytes != old->spool_max_bytes)
        log_warnx("reload: spool.max_bytes changes at the next restart");
    if (strcmp(cfg->status_socket, old->status_socket) != 0)
        log_warnx("reload: status_socket changes at the next restart");
    a->reloading = 1;
    parts_stop(a, reload_stopped);
}

static void
agent_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;

    if (a->stopping)
        return;
    if (signum == SIGHUP) {
        if (a->reloading)
            a->reload_again = 1;
        else
            reload_begin(a);
        return;
    }
    a->stopping = 1;
    log_info("%s: shutting down", strsignal(signum));
    uv_timer_start(&a->stop_timer, agent_stop_timeout, AGENT_STOP_MS, 0);
    if (!a->reloading) /* else reload_stopped finishes the shutdown */
        parts_stop(a, agent_parts_stopped);
}

/*
 * The status socket named by the file at path. Only the two keys that
 * locate it are read, so that status still answers while the file has
 * errors elsewhere (for instance right after a refused reload).
 */
static char *
status_socket_path(const char *path)
{
    const struct tc_conf_node *n;
    struct tc_conf *c;
    char *sock = NULL;

    if (tc_conf_load(path, &c) < 0)
        return NULL;
    if ((n = tc_conf_find(c->root, "status_socket")) != NULL &&
        n->kind == TC_CONF_SCALAR && !n->null) {
        sock = tc_conf_path(c, n->str);
    } else if ((n = tc_conf_find(c->root, "state_dir")) != NULL &&
               n->kind == TC_CONF_SCALAR && !n->null) {
        char *dir = tc_conf_path(c, n->str);
        sock = tc_xasprintf("%s/agent.sock", dir);
        free(dir);
    } else {
        log_warnx("%s: neither status_socket nor state_dir is set", path);
    }
    tc_conf_free(c);
    return sock;
}

/* tocsin-agent status [--json] [-c FILE] */
static int
status_main(int argc, char **argv)
{
    const char *path = AGENT_CONFIG;
    char *sock;
    int json = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            usage(stdout, 0);
        else
            usage(stderr, TC_EXIT_USAGE);
    }
    if ((sock = status_socket_path(path)) == NULL)
        return 1;
    rc = status_query(sock, json, stdout);
    free(sock);
    return rc < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    static struct agent a;
    const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    struct tc_daemon_opts opt = {.config = AGENT_CONFIG};
    int rc;

    /* Spool, its -wal and -shm, lock: ours alone (perms.h). */
    tc_perms_umask();
    if (argc > 1 && strcmp(argv[1], "test-rules") == 0) {
        log_init("tocsin-agent", LOG_TO_CLI, 0);
        return testrules_main(argc - 1, argv + 1, AGENT_CONFIG);
    }
    if (argc > 1 && strcmp(argv[1], "actions") == 0) {
        log_init("tocsin-agent", LOG_TO_CLI, 0);
        return actions_main(argc - 1, argv + 1, AGENT_CONFIG);
    }
    if (argc > 2 && strcmp(argv[1], "hints") == 0 &&
        strcmp(argv[2], "run") == 0) {
        log_init("tocsin-agent", LOG_TO_CLI, 0);
        return actions_hint_main(argc - 1, argv + 1, AGENT_CONFIG);
    }
    if (argc > 1 && strcmp(argv[1], "hints") == 0) {
        log_init("tocsin-agent", LOG_TO_CLI, 0);
        return hintscli_main(argc - 1, argv + 1, AGENT_CONFIG);
    }
    if (argc > 1 && strcmp(argv[1], "status") == 0) {
        log_init("tocsin-agent", LOG_TO_CLI, 0);
        return status_main(argc - 1, argv + 1);
    }
    if (tc_daemon_getopt(argc, argv, &opt) < 0)
        usage(stderr, TC_EXIT_USAGE);
    if (opt.help)
        usage(stdout, 0);
    if (opt.version) {
        printf("tocsin-agent %s\n", TOCSIN_VERSION);
        return 0;
    }
    a.path = opt.config;
#ifdef __GLIBC__
    (void)mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_MIN);
    (void)mallopt(M_TRIM_THRESHOLD, AGENT_TRIM_KEEP);
#endif
    /* A collector that goes away mid-write must not kill the agent. */
    signal(SIGPIPE, SIG_IGN);
    log_init("tocsin-agent", opt.check ? LOG_TO_CLI : LOG_TO_STDERR,
             opt.verbose);

    rc = conf_load(&a.conf, a.path);
    if (opt.check) {
        /* The system too when only the rules or TLS files failed (the
         * file itself loaded): every error at once. */
        if (a.conf.cfg != NULL && conf_check_system(a.conf.cfg) < 0)
            rc = -1;
        if (rc == 0)
            printf("configuration OK\n");
        conf_free(&a.conf);
        return rc < 0 ? 1 : 0;
    }
    if (rc < 0) {
        conf_free(&a.conf);
        return 1;
    }
    if (!opt.foreground) {
        /* Before the loop and the spool exist: neither survives fork. */
        tc_daemonize();
        log_init("tocsin-agent", 0, opt.verbose);
    }

    if (spool_open(a.conf.cfg->state_dir, a.conf.cfg->spool_max_bytes,
                   &a.spool) < 0)
        fatalx("cannot open the spool in %s", a.conf.cfg->state_dir);
    /* Hints are not acked without it; the agent does its job without. */
    if (hints_store_open(a.conf.cfg->state_dir, 0, &a.hints) < 0)
        log_warnx("hints: cannot open the hint store; hints will not be "
                  "acked");
    a.loop = uv_default_loop();
    a.started_ns = tc_now_ns();
    for (int i = 0; i < 3; i++) {
        uv_signal_init(a.loop, &a.sig[i]);
        a.sig[i].data = &a;
        uv_signal_start(&a.sig[i], agent_signal, sigs[i]);
    }
    uv_timer_init(a.loop, &a.stop_timer);
    a.stop_timer.data = &a;
    uv_timer_init(a.loop, &a.trim_timer);
    a.trim_timer.data = &a;
    a.trim_seq = spool_next_seq(a.spool);
    a.trim_due = 1; /* start-up's memory and code, once it is quiet */
    uv_timer_start(&a.trim_timer, agent_trim_cb, AGENT_TRIM_MS, AGENT_TRIM_MS);
    /* Housekeeping only: it must not keep the loop alive. */
    uv_unref((uv_handle_t *)&a.trim_timer);
    parts_start(&a);
    /* Without the socket the agent still does its job: warn, go on. */
    if (status_start(a.loop, a.conf.cfg->status_socket, agent_render, &a,
                     &a.status) < 0)
        log_warnx("status: tocsin-agent status will not answer");
    action_runner_new(a.loop, &a.runner);
    a.actions.cfg = &a.conf.cfg;
    a.actions.host = a.conf.name;
    a.actions.runner = a.runner;
    a.actions.spool = a.spool;
    a.actions.hints = a.hints;
    a.actions.spooled = agent_action_spooled;
    a.actions.arg = &a;
    status_set_command(a.status, actions_cmd_handle, &a.actions);
    actions_cmd_resume(&a.actions);
    log_info("started: agent %s, %zu files, %zu checks, collector %s, "
             "spool %s (%" PRIu64 " events)",
             a.conf.name, a.conf.cfg->nfiles, a.conf.cfg->nchecks,
             a.conf.cfg->collector_address, a.conf.cfg->state_dir,
             spool_depth(a.spool));

    uv_run(a.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(a.loop);
    if (rc == 0) {
        parts_free(&a);
        hints_store_free(a.hints);
        spool_free(a.spool);
        conf_free(&a.conf);
    } else {
        /* Stopped by the shutdown timer with handles still open: the
         * spool is closed all the same, the rest goes with the process. */
        spool_free(a.spool);
    }
    log_info("exiting");
    return 0;
}
