/*
 * main: tocsin-collector. Parses the command line, loads the
 * configuration and the TLS identity, binds the listener, then opens
 * the store, runs the server on a libuv loop and turns signals into a
 * graceful shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "pipeline/hint_sender.h"
#include "pipeline/incident_runner.h"
#include "daemon.h"
#include "hintsig.h"
#include "http/api.h"
#include "net/listener.h"
#include "log.h"
#include "looplag.h"
#include "metrics.h"
#include "perms.h"
#include "runbooks/runbooks.h"
#include "net/server.h"
#include "store/store.h"
#include "tls.h"
#include "util.h"

static const char *default_config = "/etc/tocsin/collector.yaml";

struct app {
    uv_loop_t *loop;      /* borrowed: the default loop */
    struct server *srv;   /* owned */
    uv_signal_t sig_term; /* SIGTERM, SIGINT: graceful stop */
    uv_signal_t sig_int;
    uv_signal_t sig_hup; /* SIGHUP: reload */
    int stopping;
    struct incident_runner *inc;  /* owned */
    struct hint_sender *hs;       /* owned */
    struct collector_config *cfg; /* borrowed from main */
    struct tc_tls_ctx **tls;      /* main's context; swapped on reload */
    struct looplag *lag;          /* owned; the event-loop lag probe */
    struct metrics_textfile *mt;  /* owned; STORE_PATH-metrics.prom */
    struct api *api;              /* main's; NULL without api.listen */
};

/*
 * -h: the usage on stdout, exit 0. A usage error: the same on stderr,
 * exit TC_EXIT_USAGE (2); a bad configuration exits 1.
 */
static _Noreturn void
usage(FILE *f, int code)
{
    fprintf(f, "usage: tocsin-collector [-dnv] [-c file]\n"
               "       tocsin-collector -h | --help | -V | --version\n");
    if (f == stdout)
        tc_daemon_usage_options(f, default_config);
    exit(code);
}

static void
stopped_cb(void *arg)
{
    struct app *app = arg;

    incident_runner_stop(app->inc);
    /* Before the probe it reads goes. */
    metrics_textfile_stop(app->mt);
    app->mt = NULL;
    looplag_stop(app->lag);
    app->lag = NULL;
    hint_sender_stop(app->hs);
    api_stop(app->api);
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
}

static int load_tls(const struct collector_config *cfg,
                    struct tc_tls_ctx **out);
static int check_hint_key(const struct collector_config *cfg);
static int load_hint_key(const struct collector_config *cfg,
                         struct tc_hintkey **out);

/*
 * The runbooks of cfg (docs/runbooks.md): an empty set without a
 * runbooks: block. A directory that cannot be read fails (logged with
 * the file's name); broken runbook files only skip themselves.
 */
static int
load_runbooks(const struct collector_config *cfg, struct runbook_set **out)
{
    if (cfg->runbooks_dir == NULL) {
        *out = runbooks_empty();
        return 0;
    }
    if (runbooks_load(cfg->runbooks_dir, out) < 0) {
        log_warnx("%s: runbooks.dir: cannot read %s", cfg->file,
                  cfg->runbooks_dir);
        return -1;
    }
    return 0;
}

/*
 * SIGHUP: read the file again; a file that does not load, or whose TLS
 * files do not, is refused and the running configuration stays. What
 * can change live is applied (config_reload); open sessions keep their
 * TLS context until they close.
 */
static void
reload(struct app *app)
{
    struct collector_config *next = NULL;
    struct tc_tls_ctx *tls = NULL;
    struct runbook_set *rbs = NULL;
    struct tc_hintkey *hkey = NULL;
    int restart;

    log_info("reload: reading %s", app->cfg->file);
    /* A key that does not load refuses the reload: the old key signs on. */
    if (config_load(app->cfg->file, &next) < 0 || load_tls(next, &tls) < 0 ||
        load_hint_key(next, &hkey) < 0 || load_runbooks(next, &rbs) < 0) {
        log_warnx("reload: %s refused; the running configuration stays",
                  app->cfg->file);
        tc_tls_ctx_free(tls);
        tc_hintkey_free(hkey);
        config_free(next);
        return;
    }
    restart = config_reload(app->cfg, next);
    config_free(next);
    server_set_tls(app->srv, tls);
    tc_tls_ctx_free(*app->tls);
    *app->tls = tls;
    incident_runner_set_config(app->inc, app->cfg);
    incident_runner_set_runbooks(app->inc, rbs);
    hint_sender_set_key(app->hs, hkey);
    log_info("reload: applied (TLS identity for new sessions, limits, "
             "incidents, correlation, runbooks, hint-signing key)%s",
             restart ? "; some changes wait for a restart, see above" : "");
}

static void
signal_cb(uv_signal_t *h, int signum)
{
    struct app *app = h->data;

    if (signum == SIGHUP) {
        if (!app->stopping)
            reload(app);
        return;
    }
    if (app->stopping) {
        log_info("%s again: still draining", strsignal(signum));
        return;
    }
    app->stopping = 1;
    log_info("%s: shutting down", strsignal(signum));
    server_stop(app->srv, stopped_cb, app);
}

static int
load_tls(const struct collector_config *cfg, struct tc_tls_ctx **out)
{
    struct tc_tls_ctx_opts o = {
        .ca = cfg->tls_ca,
        .cert = cfg->tls_cert,
        .key = cfg->tls_key,
        .server = 1,
    };
    char err[256] = "";
    int rc;

    if ((rc = tc_tls_ctx_new(&o, out, err, sizeof(err))) < 0)
        log_warnx("%s: tls: %s", cfg->file, err);
    return rc;
}

/*
 * The hint-signing key of cfg loads (owner-only mode, an Ed25519 key):
 * 0 and *out (NULL when cfg names none), or -1 with the reason logged
 * with the file's path. Start-up and -n check it so that a bad key
 * shows at once; a reload keeps it for the hint sender.
 */
static int
load_hint_key(const struct collector_config *cfg, struct tc_hintkey **out)
{
    struct tc_hintkey *k = NULL;
    char err[512];

    *out = NULL;
    if (cfg->hints_signing_key == NULL)
        return 0;
    if (tc_hintkey_load_private(cfg->hints_signing_key, &k, err, sizeof(err)) <
        0) {
        if (cfg->hints_signing_key_line > 0)
            log_warnx("%s:%d: hints.signing_key: %s", cfg->file,
                      cfg->hints_signing_key_line, err);
        else
            log_warnx("%s: hints.signing_key (default, beside tls.key): %s",
                      cfg->file, err);
        return -1;
    }
    *out = k;
    return 0;
}

static int
check_hint_key(const struct collector_config *cfg)
{
    struct tc_hintkey *k;

    if (load_hint_key(cfg, &k) < 0)
        return -1;
    tc_hintkey_free(k);
    return 0;
}

/*
 * -n beyond the file: what start-up will need from the system, checked
 * without changing anything on disk (no directory or database is
 * created, no mode tightened): the store's folder can be created or
 * used, an existing store file is ours to write, and listen can be
 * bound. A port already in use is only a warning, since the collector
 * this file belongs to may be the one running on it (checking a new
 * file before a reload); start-up refuses it. 0 or -1 (logged).
 */
static int
check_system(const struct collector_config *cfg)
{
    const char *slash = strrchr(cfg->store_path, '/');
    char err[512];
    int bad = 0, rc;

    if (slash != NULL && slash != cfg->store_path) {
        char *dir =
            tc_xstrndup(cfg->store_path, (size_t)(slash - cfg->store_path));

        if (tc_perms_dir_check(dir, err, sizeof(err)) < 0) {
            log_warnx("%s: store.path: %s", cfg->file, err);
            bad = 1;
        }
        free(dir);
    }
    if (!bad && tc_perms_file_check(cfg->store_path, err, sizeof(err)) < 0) {
        log_warnx("%s: store.path: %s", cfg->file, err);
        bad = 1;
    }
    if ((rc = listener_check(cfg->listen, err, sizeof(err))) == -EADDRINUSE) {
        log_warnx("%s: %s (by a running collector?): the collector cannot "
                  "start while it is taken",
                  cfg->file, err);
    } else if (rc < 0) {
        log_warnx("%s: %s", cfg->file, err);
        bad = 1;
    }
    return bad ? -1 : 0;
}

int
main(int argc, char **argv)
{
    struct tc_daemon_opts opt = {.config = default_config};
    struct collector_config *cfg = NULL;
    struct tc_tls_ctx *tls = NULL;
    struct store *store = NULL;
    struct runbook_set *rbs = NULL;
    struct api *api = NULL;
    struct app app;
    int status = 1, lfd = -1, tls_bad, rbs_bad, rc;
    char err[512];
    int64_t start_ns = tc_now_ns();

    /* The store and its -wal and -shm: ours alone (perms.h). */
    tc_perms_umask();
    if (tc_daemon_getopt(argc, argv, &opt) < 0)
        usage(stderr, TC_EXIT_USAGE);
    if (opt.help)
        usage(stdout, 0);
    if (opt.version) {
        printf("tocsin-collector %s\n", TOCSIN_VERSION);
        return 0;
    }

    /* Until we know where logs go, errors belong on the terminal. */
    log_init("tocsin-collector", opt.check ? LOG_TO_CLI : LOG_TO_STDERR,
             opt.verbose);
    if (config_load(opt.config, &cfg) < 0)
        return 1;
    tls_bad = load_tls(cfg, &tls) < 0;
    if (check_hint_key(cfg) < 0)
        tls_bad = 1;
    rbs_bad = load_runbooks(cfg, &rbs) < 0;
    if (opt.check) {
        /* The system too when the TLS files failed: every error at once. */
        if (check_system(cfg) < 0 || api_check(cfg) < 0 || tls_bad || rbs_bad)
            goto out;
        /* Start-up would skip them; a check is asked to find them. */
        if (rbs->nskipped > 0) {
            log_warnx("%s: runbooks: %zu of %zu files skipped (see above)",
                      cfg->file, rbs->nskipped, rbs->nskipped + rbs->n);
            goto out;
        }
        printf("configuration OK\n");
        status = 0;
        goto out;
    }
    if (tls_bad || rbs_bad)
        goto out;
    /*
     * The port first, while errors still reach the terminal, and before
     * the store: a collector that cannot listen leaves no new database.
     */
    if ((lfd = listener_open(cfg->listen, err, sizeof(err))) < 0) {
        log_warnx("%s", err);
        goto out;
    }
    /* The API's port and TLS identity too, for the same reason. */
    if (cfg->api_listen != NULL && api_new(cfg, &api) < 0)
        goto out;

    /* A peer that goes away mid-write must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    if (!opt.foreground)
        tc_daemonize();
    log_init("tocsin-collector", opt.foreground, opt.verbose);

    /*
     * SQLite connections must not cross fork(), so the store opens
     * only now, in the process that will use it.
     */
    if (store_open(cfg->store_path,
                   cfg->store_sync == CONFIG_SYNC_NORMAL ? STORE_SYNC_NORMAL
                                                         : 0,
                   &store) < 0)
        goto out;

    memset(&app, 0, sizeof(app));
    app.loop = uv_default_loop();
    app.cfg = cfg;
    app.tls = &tls;
    if (server_new(app.loop, cfg, tls, store, &app.srv) < 0)
        goto out;
    /* After store_open: it has migrated the incident tables. */
    if (incident_runner_new(app.loop, cfg, store, &app.inc) < 0) {
        server_free(app.srv);
        goto out;
    }
    incident_runner_set_runbooks(app.inc, rbs);
    rbs = NULL;
    server_on_commit(app.srv, incident_runner_kick, app.inc);
    if (hint_sender_new(app.loop, server_registry(app.srv), store,
                        cfg->hints_signing_key, &app.hs) < 0) {
        incident_runner_stop(app.inc);
        uv_run(app.loop, UV_RUN_DEFAULT);
        incident_runner_free(app.inc);
        server_free(app.srv);
        goto out;
    }
    incident_runner_on_hints(app.inc, hint_sender_kick, app.hs);
    uv_signal_init(app.loop, &app.sig_term);
    uv_signal_init(app.loop, &app.sig_int);
    uv_signal_init(app.loop, &app.sig_hup);
    app.sig_term.data = app.sig_int.data = app.sig_hup.data = &app;
    uv_signal_start(&app.sig_term, signal_cb, SIGTERM);
    uv_signal_start(&app.sig_int, signal_cb, SIGINT);
    uv_signal_start(&app.sig_hup, signal_cb, SIGHUP);

    rc = server_start(app.srv, lfd);
    lfd = -1; /* the server's now, whatever happened */
    if (rc < 0) {
        /* Close what exists so the loop can end cleanly. */
        app.stopping = 1;
        server_stop(app.srv, stopped_cb, &app);
        uv_run(app.loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    incident_runner_start(app.inc);
    if (api != NULL) {
        app.api = api;
        if (api_start(api, app.loop) < 0) {
            app.stopping = 1;
            server_stop(app.srv, stopped_cb, &app);
            uv_run(app.loop, UV_RUN_DEFAULT);
            goto out_loop;
        }
    }
    {
        char path[4096];

        /* Without its stats file the probe still logs stalls. */
        looplag_start(
            app.loop,
            looplag_stats_path(path, sizeof(path), cfg->store_path) == 0 ? path
                                                                         : NULL,
            &app.lag);
        if (metrics_textfile_path(path, sizeof(path), cfg->store_path) == 0) {
            struct metrics_sources ms = {
                .srv = app.srv,
                .inc = app.inc,
                .hs = app.hs,
                .lag = app.lag,
                .start_ns = start_ns,
            };

            app.mt = metrics_textfile_start(app.loop, &ms, path);
            api_set_metrics(api, &ms);
        }
    }
    log_info("tocsin-collector %s: listening on %s, store %s (sync %s), "
             "name %s",
             TOCSIN_VERSION, cfg->listen, cfg->store_path,
             cfg->store_sync == CONFIG_SYNC_NORMAL ? "normal" : "full",
             cfg->name);
    uv_run(app.loop, UV_RUN_DEFAULT);
    log_info("stopped");
    status = 0;
out_loop:
    /* Before the registry it watches goes with the server. */
    hint_sender_free(app.hs);
    server_free(app.srv);
    incident_runner_free(app.inc);
    if (uv_loop_close(app.loop) != 0)
        log_warnx("loop closed with handles still open");
out:
    api_free(api);
    if (lfd >= 0)
        close(lfd);
    store_close(store);
    tc_tls_ctx_free(tls);
    runbook_set_unref(rbs);
    config_free(cfg);
    return status;
}
