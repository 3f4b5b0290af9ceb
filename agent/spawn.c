/*
 * spawn: one child process of the agent; the contract is in spawn.h.
 *
 * uv_spawn and not fork+execve: libuv already reaps children in its
 * SIGCHLD handler, and a second fork path beside it would race it for
 * the exit status. uv_spawn gives setsid (UV_PROCESS_DETACHED), setgid
 * and setuid (after setgroups(0, NULL)), the stdio wiring, a given
 * environment and cwd, and reports an exec failure as an error of the
 * call.
 *
 * One timer serves the timeout, the SIGKILL grace and the wait for EOF
 * after the exit: they never overlap (the exit replaces a pending
 * timeout or grace with the EOF wait, when there is one).
 */
#include "spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static void
spawn_closed(uv_handle_t *h)
{
    struct spawn *s = h->data;

    if (--s->handles > 0)
        return;
    s->o.closed(s);
}

static void
spawn_finish(struct spawn *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    uv_timer_stop(&s->timer);
    s->o.done(s);
    if (!uv_is_closing((uv_handle_t *)&s->out))
        uv_close((uv_handle_t *)&s->out, spawn_closed);
    uv_close((uv_handle_t *)&s->timer, spawn_closed);
    /* proc was closed in its exit callback. */
}

static void
spawn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct spawn *s = h->data;

    (void)suggested;
    buf->base = s->rbuf;
    buf->len = sizeof(s->rbuf);
}

static void
spawn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct spawn *s = st->data;

    if (n > 0) {
        s->o.output(s, buf->base, (size_t)n);
        return;
    }
    if (n == 0)
        return;
    /* EOF, or an error that ends the output all the same. */
    uv_read_stop(st);
    s->eof = 1;
    if (s->exited)
        spawn_finish(s);
}

void
spawn_kill(struct spawn *s, int sig)
{
    if (s->pid > 0 && kill(-s->pid, sig) < 0 && errno != ESRCH)
        log_warn("%s: kill -%d -%d", s->what, sig, s->pid);
}

static void
spawn_timer(uv_timer_t *t)
{
    struct spawn *s = t->data;

    if (s->exited) {
        /*
         * Exited, but something of its group holds the pipe open: after
         * SIGKILL nothing in its group can; stop waiting for EOF.
         */
        spawn_kill(s, SIGKILL);
        uv_read_stop((uv_stream_t *)&s->out);
        s->eof = 1;
        spawn_finish(s);
        return;
    }
    if (s->o.timeout_ms > 0 && !s->timed_out) {
        s->timed_out = 1;
        log_warnx("%s: timed out after %llu ms: SIGTERM to its process group",
                  s->what, (unsigned long long)s->o.timeout_ms);
        spawn_kill(s, SIGTERM);
        uv_timer_start(&s->timer, spawn_timer, s->o.grace_ms, 0);
        return;
    }
    s->kill_sent = 1;
    if (s->o.timeout_ms > 0)
        log_warnx("%s: still running %llu ms after SIGTERM: SIGKILL", s->what,
                  (unsigned long long)s->o.grace_ms);
    spawn_kill(s, SIGKILL);
}

static void
spawn_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct spawn *s = p->data;

    s->exited = 1;
    s->exit_status = status;
    s->term_signal = term_signal;
    s->exit_ns = tc_mono_ns();
    uv_close((uv_handle_t *)&s->proc, spawn_closed);
    if (s->eof) {
        spawn_finish(s);
        return;
    }
    if (s->o.eof_wait_ms > 0) {
        uv_timer_stop(&s->timer);
        uv_timer_start(&s->timer, spawn_timer, s->o.eof_wait_ms, 0);
    }
}

int
spawn_start(uv_loop_t *loop, struct spawn *s, const struct spawn_opts *o)
{
    uv_process_options_t po;
    uv_stdio_container_t stdio[3];
    uv_file fds[2];
    int rc;

    memset(s, 0, sizeof(*s));
    s->o = *o;
    s->o.argv = NULL;
    s->o.env = NULL;
    s->o.cwd = NULL;
    s->o.what = NULL;
    s->data = o->data;
    snprintf(s->what, sizeof(s->what), "%s", o->what);
    /* Our end non-blocking for the loop; the child's end blocking. */
    if ((rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0)) < 0)
        return rc;
    memset(&po, 0, sizeof(po));
    memset(stdio, 0, sizeof(stdio));
    stdio[0].flags = UV_IGNORE; /* /dev/null */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    po.file = o->argv[0];
    po.args = o->argv;
    po.env = o->env;
    po.cwd = o->cwd;
    po.exit_cb = spawn_exit;
    po.stdio = stdio;
    po.stdio_count = 3;
    /* setsid(): its own session and process group, pgid == pid. */
    po.flags = UV_PROCESS_DETACHED;
    if (o->setid) {
        po.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        po.uid = o->uid;
        po.gid = o->gid;
    }
    s->proc.data = s;
    s->start_ns = tc_mono_ns();
    rc = uv_spawn(loop, &s->proc, &po);
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        /* uv_spawn leaves the handle initialised even when it fails. */
        s->handles = 1;
        s->closing = 1;
        uv_close((uv_handle_t *)&s->proc, spawn_closed);
        return rc;
    }
    s->pid = s->proc.pid;
    s->handles = 3;
    uv_pipe_init(loop, &s->out, 0);
    s->out.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    if (o->timeout_ms > 0)
        uv_timer_start(&s->timer, spawn_timer, o->timeout_ms, 0);
    if ((rc = uv_pipe_open(&s->out, fds[0])) < 0)
        close(fds[0]); /* not the handle's yet */
    else
        rc = uv_read_start((uv_stream_t *)&s->out, spawn_alloc, spawn_read);
    if (rc < 0) {
        /* The exit status alone still makes a result. */
        log_warnx("%s: cannot read its output: %s", s->what, uv_strerror(rc));
        s->eof = 1;
    }
    return 0;
}

void
spawn_term(struct spawn *s, uint64_t grace_ms)
{
    if (s->pid <= 0 || s->finished)
        return;
    s->timed_out = 1;
    spawn_kill(s, SIGTERM);
    uv_timer_start(&s->timer, spawn_timer, grace_ms, 0);
}

void
spawn_cancel(struct spawn *s)
{
    if (s->pid <= 0 || s->finished)
        return;
    s->timed_out = 1;
    uv_timer_start(&s->timer, spawn_timer, 0, 0);
}
