/*
 * check_exec: runs a Nagios-compatible plugin; see check.h.
 *
 * The plugin is spawned from its argv (no shell, no PATH search) in a
 * new session, so it leads its own process group and a timeout can
 * signal everything it started: SIGTERM to the group, then SIGKILL
 * after CHECK_EXEC_GRACE_MS. stdin is /dev/null; stdout and stderr
 * share one pipe, as a terminal would show them; the first
 * CHECK_EXEC_OUTPUT_MAX bytes are kept and the rest is read and
 * discarded, so a chatty plugin never blocks on a full pipe.
 *
 * The run is done when the process has exited (libuv reaps it in its
 * SIGCHLD handler, so there is never a zombie) AND the pipe is at EOF
 * (or the deadline passed), and all three handles are closed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "util.h"

#define CHECK_EXEC_OUTPUT_MAX (8u << 10) /* bytes of output kept */
#define CHECK_EXEC_GRACE_MS 2000         /* SIGTERM to SIGKILL */

struct exec_run {
    struct check_run *run; /* the run this serves; borrowed */
    uv_process_t proc;     /* the plugin; data = this */
    uv_pipe_t out;         /* read end of stdout+stderr; data = this */
    uv_timer_t kill_timer; /* SIGKILL after the grace period */
    int pid;               /* the plugin, and its process group id */
    int exited;            /* 1 once the exit callback ran */
    int64_t exit_status;   /* valid when exited */
    int term_signal;       /* valid when exited; 0: none */
    int eof;               /* 1 once the pipe is closed or at EOF */
    int open_handles;      /* handles not yet closed */
    size_t len;            /* bytes in buf */
    size_t discarded;      /* output bytes over the cap */
    char buf[CHECK_EXEC_OUTPUT_MAX];
};

static void exec_finish(struct exec_run *x);

static const char *
exec_basename(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* Strip blanks on both ends of s[0..*n); returns the new start. */
static const char *
exec_trim(const char *s, size_t *n)
{
    while (*n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r')) {
        s++;
        (*n)--;
    }
    while (*n > 0 &&
           (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r'))
        (*n)--;
    return s;
}

/* Copy s[0..n) as a C string into out[0..cap), cutting if needed. */
static void
exec_copy(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/*
 * One perfdata item: 'label'=value[UOM];[warn];[crit];[min];[max].
 * *pp points at its start; on return past it. 0, or -1 if it does
 * not parse (then *pp is past the next blank, so parsing goes on).
 */
static int
exec_perf_item(const char **pp, const char *end, struct check_result *res)
{
    const char *p = *pp, *v, *semi, *q;
    char label[CHECK_KEY_MAX - 16], key[CHECK_KEY_MAX];
    size_t ln = 0, vn;
    int part;

    if (*p == '\'') {
        /* A quoted label may hold blanks and '=', and '' is a quote. */
        for (p++; p < end; p++) {
            if (*p == '\'') {
                if (p + 1 < end && p[1] == '\'') {
                    p++;
                } else {
                    break;
                }
            }
            if (ln < sizeof(label) - 1)
                label[ln++] = *p;
        }
        if (p >= end)
            goto bad;
        p++; /* the closing quote */
    } else {
        for (; p < end && *p != '=' && *p != ' ' && *p != '\t' && *p != '\n';
             p++)
            if (ln < sizeof(label) - 1)
                label[ln++] = *p;
    }
    label[ln] = '\0';
    if (ln == 0 || p >= end || *p != '=')
        goto bad;
    p++;
    for (v = p; p < end && *p != ' ' && *p != '\t' && *p != '\n'; p++)
        ;
    *pp = p;
    /* v..p is value[UOM];warn;crit;min;max */
    semi = memchr(v, ';', (size_t)(p - v));
    vn = (size_t)((semi != NULL ? semi : p) - v);
    if (vn == 0 || !((v[0] >= '0' && v[0] <= '9') || v[0] == '-' ||
                     v[0] == '.' || v[0] == 'U'))
        return -1;
    snprintf(key, sizeof(key), "perf.%s", label);
    checks_result_field(res, key, "%.*s", (int)vn, v);
    for (part = 1; semi != NULL && part <= 2; part++) {
        q = semi + 1;
        semi = memchr(q, ';', (size_t)(p - q));
        vn = (size_t)((semi != NULL ? semi : p) - q);
        if (vn == 0)
            continue;
        snprintf(key, sizeof(key), "perf.%s.%s", label,
                 part == 1 ? "warn" : "crit");
        checks_result_field(res, key, "%.*s", (int)vn, q);
    }
    return 0;
bad:
    while (p < end && *p != ' ' && *p != '\t' && *p != '\n')
        p++;
    *pp = p;
    return -1;
}

/* Parse blank-separated perfdata items in s[0..n). */
static int
exec_perfdata(const char *s, size_t n, struct check_result *res)
{
    const char *p = s, *end = s + n;
    int bad = 0;

    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p >= end)
            break;
        if (exec_perf_item(&p, end, res) < 0)
            bad++;
    }
    return bad;
}

int
check_exec_parse(const char *out, size_t n, struct check_result *res)
{
    const char *nl = memchr(out, '\n', n), *bar, *msg, *rest;
    size_t line = nl != NULL ? (size_t)(nl - out) : n, mn, rn;
    int bad = 0;

    bar = memchr(out, '|', line);
    mn = (size_t)((bar != NULL ? bar : out + line) - out);
    msg = exec_trim(out, &mn);
    exec_copy(res->message, sizeof(res->message), msg, mn);
    if (bar != NULL)
        bad += exec_perfdata(bar + 1, line - (size_t)(bar + 1 - out), res);
    if (nl == NULL)
        return bad;
    /* Long output: a '|' on a later line starts perfdata to the end. */
    rest = nl + 1;
    rn = n - (size_t)(rest - out);
    if ((bar = memchr(rest, '|', rn)) != NULL)
        bad += exec_perfdata(bar + 1, rn - (size_t)(bar + 1 - rest), res);
    return bad;
}

static void
exec_handle_closed(uv_handle_t *h)
{
    struct exec_run *x = h->data;
    struct check_run *r = x->run;

    if (--x->open_handles > 0)
        return;
    r->priv = NULL;
    free(x);
    r->done(r);
}

/* Work out the result, then close everything; done follows. */
static void
exec_finish(struct exec_run *x)
{
    struct check_run *r = x->run;
    struct check_result *res = r->res;
    const char *name = exec_basename(r->cfg->command[0]);
    char t[32];

    if (!res->timed_out) {
        if (check_exec_parse(x->buf, x->len, res) > 0)
            log_debug("check %s: some perfdata did not parse", r->cfg->name);
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof(res->message),
                     "(no output returned from plugin)");
        if (x->term_signal != 0) {
            checks_result_set(res, CHECK_UNKNOWN, "%s: killed by signal %d",
                              name, x->term_signal);
        } else if (x->exit_status >= 0 && x->exit_status <= 3) {
            res->state = (int)x->exit_status;
        } else {
            char msg[CHECK_MSG_MAX];

            snprintf(msg, sizeof(msg), "%s", res->message);
            checks_result_set(res, CHECK_UNKNOWN, "%s: exit status %lld: %s",
                              name, (long long)x->exit_status, msg);
        }
    } else {
        checks_result_set(res, CHECK_UNKNOWN, "timed out after %s",
                          checks_fmt_ms(r->cfg->timeout_ms, t, sizeof(t)));
    }
    if (x->discarded > 0)
        checks_result_field(res, "output_discarded_bytes", "%zu", x->discarded);
    uv_timer_stop(&x->kill_timer);
    if (!uv_is_closing((uv_handle_t *)&x->out))
        uv_close((uv_handle_t *)&x->out, exec_handle_closed);
    uv_close((uv_handle_t *)&x->kill_timer, exec_handle_closed);
    /* proc was closed in its exit callback. */
}

static void
exec_maybe_finish(struct exec_run *x)
{
    if (x->exited && x->eof)
        exec_finish(x);
}

static void
exec_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char sink[4096];
    struct exec_run *x = h->data;

    (void)suggested;
    if (x->len < sizeof(x->buf)) {
        buf->base = x->buf + x->len;
        buf->len = sizeof(x->buf) - x->len;
    } else {
        /* Over the cap: read into a sink so the plugin never blocks. */
        buf->base = sink;
        buf->len = sizeof(sink);
    }
}

static void
exec_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct exec_run *x = s->data;

    if (nread > 0) {
        if (buf->base == x->buf + x->len)
            x->len += (size_t)nread;
        else
            x->discarded += (size_t)nread;
        return;
    }
    if (nread == 0)
        return;
    /* EOF, or an error that ends the output all the same. */
    uv_read_stop(s);
    x->eof = 1;
    exec_maybe_finish(x);
}

static void
exec_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct exec_run *x = p->data;

    x->exited = 1;
    x->exit_status = status;
    x->term_signal = term_signal;
    uv_close((uv_handle_t *)&x->proc, exec_handle_closed);
    exec_maybe_finish(x);
}

static void
exec_kill_cb(uv_timer_t *t)
{
    struct exec_run *x = t->data;

    /* The whole group: whatever the plugin forked dies with it. */
    if (kill(-x->pid, SIGKILL) < 0 && errno != ESRCH)
        log_warn("check %s: kill -KILL -%d", x->run->cfg->name, x->pid);
    if (x->exited && !x->eof) {
        /*
         * The plugin is gone but something holds the pipe open: after
         * SIGKILL nothing in its group can; stop waiting for EOF.
         */
        uv_read_stop((uv_stream_t *)&x->out);
        x->eof = 1;
        exec_finish(x);
    }
}

int
check_exec_start(struct check_run *r)
{
    struct exec_run *x = tc_xcalloc(1, sizeof(*x));
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    uv_file fds[2];
    int rc;

    x->run = r;
    /* Our end non-blocking for the loop; the plugin's end blocking. */
    if ((rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0)) < 0) {
        checks_result_set(r->res, CHECK_UNKNOWN, "%s: pipe: %s",
                          exec_basename(r->cfg->command[0]), strerror(-rc));
        free(x);
        return 1;
    }
    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE; /* /dev/null */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    o.file = r->cfg->command[0];
    o.args = r->cfg->command;
    o.exit_cb = exec_exit_cb;
    o.stdio = stdio;
    o.stdio_count = 3;
    /* setsid(): its own session and process group, pgid == pid. */
    o.flags = UV_PROCESS_DETACHED;
    x->proc.data = x;
    rc = uv_spawn(r->loop, &x->proc, &o);
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        checks_result_set(r->res, CHECK_UNKNOWN, "%s: %s",
                          exec_basename(r->cfg->command[0]), strerror(-rc));
        /* uv_spawn leaves the handle initialised even when it fails. */
        x->open_handles = 1;
        r->priv = x;
        uv_close((uv_handle_t *)&x->proc, exec_handle_closed);
        return 0;
    }
    x->pid = x->proc.pid;
    x->open_handles = 3;
    uv_pipe_init(r->loop, &x->out, 0);
    x->out.data = x;
    uv_timer_init(r->loop, &x->kill_timer);
    x->kill_timer.data = x;
    if ((rc = uv_pipe_open(&x->out, fds[0])) < 0)
        close(fds[0]); /* not the handle's yet */
    else
        rc = uv_read_start((uv_stream_t *)&x->out, exec_alloc_cb, exec_read_cb);
    if (rc < 0) {
        /* The exit status alone still makes a result. */
        log_warnx("check %s: cannot read the plugin's output: %s", r->cfg->name,
                  uv_strerror(rc));
        x->eof = 1;
    }
    r->priv = x;
    return 0;
}

void
check_exec_timeout(struct check_run *r)
{
    struct exec_run *x = r->priv;

    if (x == NULL || x->pid <= 0)
        return;
    r->res->timed_out = 1;
    if (kill(-x->pid, SIGTERM) < 0 && errno != ESRCH)
        log_warn("check %s: kill -TERM -%d", r->cfg->name, x->pid);
    uv_timer_start(&x->kill_timer, exec_kill_cb, CHECK_EXEC_GRACE_MS, 0);
}

void
check_exec_cancel(struct check_run *r)
{
    struct exec_run *x = r->priv;

    if (x == NULL || x->pid <= 0)
        return;
    /* The agent is going away: no grace, but still reaped. */
    r->res->timed_out = 1;
    uv_timer_start(&x->kill_timer, exec_kill_cb, 0, 0);
}
