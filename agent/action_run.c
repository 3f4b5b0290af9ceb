/*
 * action_run: the action runner; see action_run.h and
 * docs/internals/agent.md ("actions").
 *
 * uv_spawn and not fork+execve: libuv already reaps children in its
 * SIGCHLD handler, and a second fork path beside it would race it for
 * the exit status. uv_spawn gives setsid (UV_PROCESS_DETACHED), setgid
 * and setuid (after setgroups(0, NULL)), the stdio wiring, a given
 * environment and cwd, and reports an exec failure as an error of the
 * call. What it does not give is initgroups: an action runs with its
 * user's primary group only, which is the narrower choice.
 *
 * A run is finished when the process has exited AND the pipe is at EOF;
 * a process that left a child holding the pipe is given
 * ACTION_RUN_EOF_MS after its exit (its group is killed then).
 */
#include "action_run.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define ACTION_RUN_EOF_MS 2000

struct run {
    struct action_runner *r; /* owner */
    struct run *next;        /* in r->runs */
    char *name;              /* action name; owned */
    char *incident;          /* owned */
    uint64_t hint;
    uint64_t timeout_ms;
    action_done_fn done;
    void *arg;
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer; /* the timeout, then the SIGKILL grace */
    int pid;          /* the process, and its group id */
    int kill_sent;    /* SIGKILL went to the group */
    int exited, eof, timed_out, reported;
    int64_t exit_status;
    int term_signal;
    int handles;      /* open handles; freed at 0 */
    int64_t start_ns; /* tc_mono_ns at spawn */
    uint64_t duration_ms;
    size_t len;     /* bytes in tail */
    size_t dropped; /* bytes shifted out of tail */
    char tail[ACTION_RUN_TAIL];
    char rbuf[ACTION_RUN_TAIL]; /* read buffer */
};

struct action_runner {
    uv_loop_t *loop;
    struct run *runs; /* in progress */
    size_t active;
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

int
action_runner_new(uv_loop_t *loop, struct action_runner **out)
{
    struct action_runner *r = tc_xcalloc(1, sizeof(*r));

    r->loop = loop;
    *out = r;
    return 0;
}

size_t
action_runner_active(const struct action_runner *r)
{
    return r != NULL ? r->active : 0;
}

static void
runner_maybe_free(struct action_runner *r)
{
    if (r->stop_cb != NULL && r->runs == NULL) {
        void (*cb)(void *) = r->stop_cb;
        void *arg = r->stop_arg;

        free(r);
        cb(arg);
    }
}

static void
run_closed(uv_handle_t *h)
{
    struct run *x = h->data;
    struct action_runner *r = x->r;

    if (--x->handles > 0)
        return;
    for (struct run **pp = &r->runs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    free(x->name);
    free(x->incident);
    free(x);
    runner_maybe_free(r);
}

static void
run_report(struct run *x, int spawn_error)
{
    struct action_result res = {
        .action = x->name,
        .hint = x->hint,
        .incident = x->incident,
        .exit_status = x->exit_status,
        .signal = x->term_signal,
        .timed_out = x->timed_out,
        .spawn_error = spawn_error,
        .duration_ms = x->duration_ms,
        .output = x->tail,
        .output_len = x->len,
        .output_dropped = x->dropped,
    };

    x->reported = 1;
    x->r->active--;
    x->done(x->arg, &res);
}

static void
run_finish(struct run *x)
{
    if (x->reported)
        return;
    uv_timer_stop(&x->timer);
    if (!uv_is_closing((uv_handle_t *)&x->out))
        uv_close((uv_handle_t *)&x->out, run_closed);
    uv_close((uv_handle_t *)&x->timer, run_closed);
    run_report(x, 0);
}

static void
run_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct run *x = h->data;

    (void)suggested;
    buf->base = x->rbuf;
    buf->len = sizeof(x->rbuf);
}

/* Keep the last ACTION_RUN_TAIL bytes: what a failure prints last. */
static void
run_keep(struct run *x, const char *p, size_t n)
{
    if (n >= sizeof(x->tail)) {
        x->dropped += x->len + n - sizeof(x->tail);
        memcpy(x->tail, p + n - sizeof(x->tail), sizeof(x->tail));
        x->len = sizeof(x->tail);
        return;
    }
    if (x->len + n > sizeof(x->tail)) {
        size_t shift = x->len + n - sizeof(x->tail);

        memmove(x->tail, x->tail + shift, x->len - shift);
        x->len -= shift;
        x->dropped += shift;
    }
    memcpy(x->tail + x->len, p, n);
    x->len += n;
}

static void
run_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *x = s->data;

    if (n > 0) {
        run_keep(x, buf->base, (size_t)n);
        return;
    }
    if (n == 0)
        return;
    uv_read_stop(s);
    x->eof = 1;
    if (x->exited)
        run_finish(x);
}

static void
run_kill(struct run *x, int sig)
{
    if (x->pid > 0 && kill(-x->pid, sig) < 0 && errno != ESRCH)
        log_warn("action %s: kill -%d -%d", x->name, sig, x->pid);
}

static void
run_timer(uv_timer_t *t)
{
    struct run *x = t->data;

    if (x->exited) {
        /* Exited, but something of its group holds the pipe open. */
        run_kill(x, SIGKILL);
        uv_read_stop((uv_stream_t *)&x->out);
        x->eof = 1;
        run_finish(x);
        return;
    }
    if (!x->timed_out) {
        x->timed_out = 1;
        log_warnx("action %s: timed out after %llu ms: SIGTERM to its "
                  "process group",
                  x->name, (unsigned long long)x->timeout_ms);
        run_kill(x, SIGTERM);
        uv_timer_start(&x->timer, run_timer, ACTION_RUN_GRACE_MS, 0);
        return;
    }
    x->kill_sent = 1;
    log_warnx("action %s: still running %d ms after SIGTERM: SIGKILL", x->name,
              ACTION_RUN_GRACE_MS);
    run_kill(x, SIGKILL);
}

static void
run_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct run *x = p->data;

    x->exited = 1;
    x->exit_status = status;
    x->term_signal = term_signal;
    x->duration_ms = (uint64_t)((tc_mono_ns() - x->start_ns) / 1000000);
    uv_close((uv_handle_t *)&x->proc, run_closed);
    if (x->eof) {
        run_finish(x);
        return;
    }
    uv_timer_stop(&x->timer);
    uv_timer_start(&x->timer, run_timer, ACTION_RUN_EOF_MS, 0);
}

int
action_run_start(struct action_runner *r, const struct action_def *def,
                 char **argv, uint64_t hint, const char *incident,
                 action_done_fn done, void *arg, char *err, size_t errlen)
{
    static char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};
    uv_process_options_t o;
    uv_stdio_container_t stdio[3];
    uv_file fds[2];
    struct run *x;
    uid_t uid = 0;
    gid_t gid = 0;
    int setid = 0, rc;

    for (x = r->runs; x != NULL; x = x->next)
        if (!x->reported && strcmp(x->name, def->name) == 0) {
            snprintf(
                err, errlen,
                "action '%s' is already running (pid %d, started "
                "%llu ms ago)",
                def->name, x->pid,
                (unsigned long long)((tc_mono_ns() - x->start_ns) / 1000000));
            actions_argv_free(argv);
            return -EBUSY;
        }
    if (def->user != NULL) {
        struct passwd *pw = getpwnam(def->user);

        if (pw == NULL) {
            snprintf(err, errlen, "action '%s': unknown user '%s'", def->name,
                     def->user);
            actions_argv_free(argv);
            return -EPERM;
        }
        if (pw->pw_uid != geteuid() || pw->pw_gid != getegid()) {
            if (geteuid() != 0) {
                snprintf(err, errlen,
                         "action '%s': runs as user '%s' but the agent is "
                         "not root (uid %u): cannot switch",
                         def->name, def->user, (unsigned)geteuid());
                actions_argv_free(argv);
                return -EPERM;
            }
            uid = pw->pw_uid;
            gid = pw->pw_gid;
            setid = 1;
        }
    }

    x = tc_xcalloc(1, sizeof(*x));
    x->r = r;
    x->name = tc_xstrdup(def->name);
    x->incident = tc_xstrdup(incident != NULL ? incident : "");
    x->hint = hint;
    x->timeout_ms = def->timeout_ms;
    x->done = done;
    x->arg = arg;
    x->next = r->runs;
    r->runs = x;
    r->active++;

    if ((rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0)) < 0) {
        log_warnx("action %s: pipe: %s", x->name, uv_strerror(rc));
        r->runs = x->next;
        run_report(x, rc);
        free(x->name);
        free(x->incident);
        free(x);
        actions_argv_free(argv);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE; /* /dev/null */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.cwd = "/";
    o.exit_cb = run_exit;
    o.stdio = stdio;
    o.stdio_count = 3;
    /* setsid(): its own session and process group, pgid == pid. */
    o.flags = UV_PROCESS_DETACHED;
    if (setid) {
        o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = uid;
        o.gid = gid;
    }
    x->proc.data = x;
    x->start_ns = tc_mono_ns();
    rc = uv_spawn(r->loop, &x->proc, &o);
    close(fds[1]);
    actions_argv_free(argv);
    if (rc < 0) {
        close(fds[0]);
        log_warnx("action %s: cannot start: %s", x->name, uv_strerror(rc));
        /* uv_spawn leaves the handle initialised even when it fails. */
        x->handles = 1;
        uv_close((uv_handle_t *)&x->proc, run_closed);
        run_report(x, rc);
        return 0;
    }
    x->pid = x->proc.pid;
    x->handles = 3;
    uv_pipe_init(r->loop, &x->out, 0);
    x->out.data = x;
    uv_timer_init(r->loop, &x->timer);
    x->timer.data = x;
    uv_timer_start(&x->timer, run_timer, x->timeout_ms, 0);
    if ((rc = uv_pipe_open(&x->out, fds[0])) < 0)
        close(fds[0]);
    else
        rc = uv_read_start((uv_stream_t *)&x->out, run_alloc, run_read);
    if (rc < 0) {
        log_warnx("action %s: cannot read its output: %s", x->name,
                  uv_strerror(rc));
        x->eof = 1;
    }
    return 0;
}

void
action_runner_stop(struct action_runner *r, void (*cb)(void *arg), void *arg)
{
    if (r == NULL) {
        cb(arg);
        return;
    }
    r->stop_cb = cb;
    r->stop_arg = arg;
    for (struct run *x = r->runs; x != NULL; x = x->next)
        if (!x->exited)
            run_kill(x, SIGKILL);
    runner_maybe_free(r);
}
