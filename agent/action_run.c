/*
 * action_run: the action runner; see action_run.h and
 * docs/internals/agent.md ("actions").
 *
 * The process is spawn.c's (setsid, stdin /dev/null, one pipe for
 * stdout and stderr, the timeout and its SIGKILL grace, setgid and
 * setuid). What uv_spawn does not give is initgroups: an action runs
 * with its user's primary group only, which is the narrower choice.
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
#include "spawn.h"
#include "util.h"

#define ACTION_RUN_EOF_MS 2000

struct run {
    struct action_runner *r; /* owner */
    struct run *next;        /* in r->runs */
    char *name;              /* action name; owned */
    char *incident;          /* owned */
    uint64_t hint;
    action_done_fn done;
    void *arg;
    struct spawn sp; /* the process; sp.data = this */
    int reported;    /* done was called */
    uint64_t duration_ms;
    size_t len;     /* bytes in tail */
    size_t dropped; /* bytes shifted out of tail */
    char tail[ACTION_RUN_TAIL];
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
run_closed(struct spawn *sp)
{
    struct run *x = sp->data;
    struct action_runner *r = x->r;

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
        .exit_status = x->sp.exit_status,
        .signal = x->sp.term_signal,
        .timed_out = x->sp.timed_out,
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
run_done(struct spawn *sp)
{
    struct run *x = sp->data;

    x->duration_ms = (uint64_t)((sp->exit_ns - sp->start_ns) / 1000000);
    run_report(x, 0);
}

/* Keep the last ACTION_RUN_TAIL bytes: what a failure prints last. */
static void
run_keep(struct spawn *sp, const char *p, size_t n)
{
    struct run *x = sp->data;

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

int
action_run_start(struct action_runner *r, const struct action_def *def,
                 char **argv, uint64_t hint, const char *incident,
                 action_done_fn done, void *arg, char *err, size_t errlen)
{
    static char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};
    struct spawn_opts o = {
        .argv = argv,
        .env = env,
        .cwd = "/",
        .timeout_ms = def->timeout_ms,
        .grace_ms = ACTION_RUN_GRACE_MS,
        .eof_wait_ms = ACTION_RUN_EOF_MS,
        .output = run_keep,
        .done = run_done,
        .closed = run_closed,
    };
    char what[96];
    struct run *x;
    int rc;

    for (x = r->runs; x != NULL; x = x->next)
        if (!x->reported && strcmp(x->name, def->name) == 0) {
            snprintf(err, errlen,
                     "action '%s' is already running (pid %d, started "
                     "%llu ms ago)",
                     def->name, x->sp.pid,
                     (unsigned long long)((tc_mono_ns() - x->sp.start_ns) /
                                          1000000));
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
            o.uid = pw->pw_uid;
            o.gid = pw->pw_gid;
            o.setid = 1;
        }
    }

    x = tc_xcalloc(1, sizeof(*x));
    x->r = r;
    x->name = tc_xstrdup(def->name);
    x->incident = tc_xstrdup(incident != NULL ? incident : "");
    x->hint = hint;
    x->done = done;
    x->arg = arg;
    x->next = r->runs;
    r->runs = x;
    r->active++;

    snprintf(what, sizeof(what), "action %s", x->name);
    o.what = what;
    o.data = x;
    rc = spawn_start(r->loop, &x->sp, &o);
    actions_argv_free(argv);
    if (rc < 0 && !x->sp.closing) {
        log_warnx("action %s: pipe: %s", x->name, uv_strerror(rc));
        r->runs = x->next;
        run_report(x, rc);
        free(x->name);
        free(x->incident);
        free(x);
        return 0;
    }
    if (rc < 0) {
        log_warnx("action %s: cannot start: %s", x->name, uv_strerror(rc));
        /* run_closed frees it once the process handle is closed. */
        run_report(x, rc);
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
        if (!x->sp.exited)
            spawn_kill(&x->sp, SIGKILL);
    runner_maybe_free(r);
}
