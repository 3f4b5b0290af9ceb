/*
 * ctl_metrics: "tocsinctl metrics". Prints the running collector's
 * Prometheus metrics, the textfile it rewrites every second beside the
 * store (STORE_PATH-metrics.prom, metrics.h), as they are: the text
 * exposition format 0.0.4, for a node_exporter textfile directory or a
 * look by hand. The file is input from disk: metrics_textfile_read
 * refuses anything but our own printable ASCII, so nothing else can
 * reach the terminal. Exit 1 without a file; a file older than 5 s is
 * printed with a warning (the collector stopped, or its loop is stuck).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

/* Older than this, the file's writer is taken to be gone. */
#define METRICS_STALE_NS 5000000000LL

int
ctl_metrics(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct tc_buf b;
    const char *why = NULL;
    char path[4096], esc[8192];
    int64_t age = 0;
    int rc, status = 1;

    if (argc != 1) {
        fprintf(stderr, "usage: tocsinctl metrics\n");
        return 2;
    }
    tc_buf_init(&b, METRICS_RENDER_MAX);
    if (config_load(o->config, &cfg) < 0)
        goto out;
    if (metrics_textfile_path(path, sizeof(path), cfg->store_path) < 0) {
        log_warnx("%s: store.path too long", cfg->file);
        goto out;
    }
    rc = metrics_textfile_read(path, &b, &age, &why);
    if (rc < 0) {
        log_warnx("%s: %s", ctl_esc(esc, sizeof(esc), path),
                  rc == -ENOENT
                      ? "no metrics: the collector is not running, or is "
                        "older than this tocsinctl"
                  : rc == -EBADMSG ? why
                                   : strerror(-rc));
        goto out;
    }
    if (age > METRICS_STALE_NS)
        log_warnx("%s: not updated for %" PRId64 " s: collector stopped?",
                  ctl_esc(esc, sizeof(esc), path), age / 1000000000);
    fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    tc_buf_close(&b);
    config_free(cfg);
    return status;
}
