/*
 * check_local: the disk, file_age and process built-in checks; see
 * check.h.
 *
 * disk and file_age call statfs/stat on libuv's thread pool, because
 * both can hang for minutes on a dead network mount and the loop must
 * not. A request a thread already runs cannot be cancelled: at the
 * deadline the run reports its timeout at once and leaves the request
 * behind (run->busy), and the check does not run again until the
 * request returns, so a dead mount ties up one pool thread, not all.
 *
 * process reads /proc/PID/comm of every process, on the loop: procfs
 * answers from memory.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "units.h"
#include "util.h"

struct local_req {
    uv_fs_t req;           /* data = this */
    struct check_run *run; /* NULL once left behind by a timeout */
    int *busy;             /* the check's busy flag; borrowed */
};

static void
local_disk_result(struct check_run *r, const uv_statfs_t *st)
{
    const struct agent_check *c = r->cfg;
    /*
     * Like df: the size ordinary users see is used + available; the
     * blocks reserved for root count as neither.
     */
    uint64_t used = (uint64_t)(st->f_blocks - st->f_bfree);
    uint64_t avail = (uint64_t)st->f_bavail;
    uint64_t size = (used + avail) * (uint64_t)st->f_bsize;
    uint64_t free_b = avail * (uint64_t)st->f_bsize;
    double pct =
        used + avail > 0 ? 100.0 * (double)avail / (double)(used + avail) : 0.0;
    char fb[TC_UNITS_MAX], sb[TC_UNITS_MAX];
    int state = CHECK_OK;

    if (pct < (double)c->critical_free_pct)
        state = CHECK_CRITICAL;
    else if (pct < (double)c->warning_free_pct)
        state = CHECK_WARNING;
    tc_fmt_bytes(fb, sizeof(fb), free_b);
    tc_fmt_bytes(sb, sizeof(sb), size);
    checks_result_set(r->res, state, "%.1f%% free (%s of %s) on %s", pct, fb,
                      sb, c->path);
    checks_result_field(r->res, "perf.free_pct", "%.2f%%", pct);
    checks_result_field(r->res, "perf.free_pct.warn", "%" PRIu32,
                        c->warning_free_pct);
    checks_result_field(r->res, "perf.free_pct.crit", "%" PRIu32,
                        c->critical_free_pct);
    checks_result_field(r->res, "perf.free", "%" PRIu64 "B", free_b);
    checks_result_field(r->res, "perf.size", "%" PRIu64 "B", size);
}

static void
local_age_result(struct check_run *r, const uv_stat_t *st)
{
    const struct agent_check *c = r->cfg;
    int64_t mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 +
                       (int64_t)st->st_mtim.tv_nsec / 1000000;
    int64_t now_ms = tc_now_ns() / 1000000;
    /* A clock step can put mtime in the future: that is fresh, not old. */
    uint64_t age = now_ms > mtime_ms ? (uint64_t)(now_ms - mtime_ms) : 0;
    char a[TC_UNITS_MAX];
    int state = CHECK_OK;

    if (age > c->critical_age_ms)
        state = CHECK_CRITICAL;
    else if (age > c->warning_age_ms)
        state = CHECK_WARNING;
    /* Capped: ages far past any threshold read the same. */
    tc_fmt_duration(a, sizeof(a),
                    age < (uint64_t)INT64_MAX / 1000000 ? (int64_t)age * 1000000
                                                        : INT64_MAX);
    checks_result_set(r->res, state, "%s was modified %s ago", c->path, a);
    checks_result_field(r->res, "perf.age", "%.3fs", (double)age / 1000.0);
}

static void
local_fs_cb(uv_fs_t *req)
{
    struct local_req *lr = req->data;
    struct check_run *r = lr->run;
    char t[32];

    if (r == NULL) {
        /* Left behind by a timeout; the check may run again now. */
        *lr->busy = 0;
        goto out;
    }
    r->priv = NULL;
    if (req->result == UV_ECANCELED) {
        checks_result_set(r->res, CHECK_UNKNOWN, "timed out after %s",
                          checks_fmt_ms(r->cfg->timeout_ms, t, sizeof(t)));
    } else if (req->result < 0) {
        /* A missing file is the failure file_age exists to catch. */
        checks_result_set(r->res, CHECK_CRITICAL, "%s: %s", r->cfg->path,
                          strerror(-(int)req->result));
    } else if (req->fs_type == UV_FS_STATFS) {
        local_disk_result(r, req->ptr);
    } else {
        local_age_result(r, &req->statbuf);
    }
out:
    uv_fs_req_cleanup(req);
    free(lr);
    if (r != NULL)
        r->done(r);
}

/* /proc/PID/comm of every process equal to name. -errno if unreadable. */
static int
local_count_procs(const char *name, uint32_t *count)
{
    char path[300], comm[64];
    struct dirent *de;
    DIR *d;
    ssize_t n;
    int fd;

    *count = 0;
    if ((d = opendir("/proc")) == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
        /* Gone since readdir, or not ours to read: not a match. */
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = read(fd, comm, sizeof(comm) - 1);
        close(fd);
        if (n <= 0)
            continue;
        if (comm[n - 1] == '\n')
            n--;
        comm[n] = '\0';
        if (strcmp(comm, name) == 0)
            (*count)++;
    }
    closedir(d);
    return 0;
}

static int
local_process(struct check_run *r)
{
    const struct agent_check *c = r->cfg;
    uint32_t n;
    int rc;

    if ((rc = local_count_procs(c->process, &n)) < 0) {
        checks_result_set(r->res, CHECK_UNKNOWN, "/proc: %s", strerror(-rc));
        return 1;
    }
    checks_result_field(r->res, "perf.count", "%" PRIu32, n);
    if (n == 0)
        checks_result_set(r->res, CHECK_CRITICAL, "no process named '%s'",
                          c->process);
    else if (n < c->min_count)
        checks_result_set(r->res, CHECK_CRITICAL,
                          "%" PRIu32 " process%s named '%s', expected at "
                          "least %" PRIu32,
                          n, n == 1 ? "" : "es", c->process, c->min_count);
    else
        checks_result_set(r->res, CHECK_OK, "%" PRIu32 " process%s named '%s'",
                          n, n == 1 ? "" : "es", c->process);
    return 1;
}

int
check_local_start(struct check_run *r)
{
    struct local_req *lr;
    int rc;

    if (r->cfg->type == AGENT_CHECK_PROCESS)
        return local_process(r);
    lr = tc_xcalloc(1, sizeof(*lr));
    lr->run = r;
    lr->busy = r->busy;
    lr->req.data = lr;
    if (r->cfg->type == AGENT_CHECK_DISK)
        rc = uv_fs_statfs(r->loop, &lr->req, r->cfg->path, local_fs_cb);
    else
        rc = uv_fs_stat(r->loop, &lr->req, r->cfg->path, local_fs_cb);
    if (rc < 0) {
        checks_result_set(r->res, CHECK_UNKNOWN, "%s: %s", r->cfg->path,
                          strerror(-rc));
        uv_fs_req_cleanup(&lr->req);
        free(lr);
        return 1;
    }
    r->priv = lr;
    return 0;
}

void
check_local_timeout(struct check_run *r)
{
    struct local_req *lr = r->priv;
    char t[32];

    if (lr == NULL)
        return;
    r->res->timed_out = 1;
    /* Not started yet: local_fs_cb reports the timeout. */
    if (uv_cancel((uv_req_t *)&lr->req) == 0)
        return;
    lr->run = NULL;
    *lr->busy = 1;
    r->priv = NULL;
    checks_result_set(
        r->res, CHECK_UNKNOWN, "timed out after %s (is %s on a dead mount?)",
        checks_fmt_ms(r->cfg->timeout_ms, t, sizeof(t)), r->cfg->path);
    r->done(r);
}

void
check_local_cancel(struct check_run *r)
{
    check_local_timeout(r);
}
