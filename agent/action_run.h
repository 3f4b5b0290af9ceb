/*
 * action_run: runs an allowlisted action's argv (from actions_prepare)
 * on the agent's loop, and reports how it ended.
 *
 * A run is uv_spawn without a shell: the fixed executable, the argv as
 * built, in its own session and process group (setsid), stdin from
 * /dev/null, stdout and stderr into one pipe of which the last
 * ACTION_RUN_TAIL bytes are kept, a clean environment (PATH and LANG
 * only), cwd "/", and the configured user (setgid, setuid; the
 * supplementary groups are dropped). At the timeout the group gets
 * SIGTERM, and SIGKILL ACTION_RUN_GRACE_MS later.
 *
 * One run at a time per action name: a second request while one runs
 * is refused with -EBUSY ("already running"). The runner copies what it
 * needs from the action_def, so a reload may free the config while an
 * action runs.
 */
#ifndef AGENT_ACTION_RUN_H
#define AGENT_ACTION_RUN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "actions.h"

#define ACTION_RUN_TAIL 4096     /* output bytes kept: the last ones */
#define ACTION_RUN_GRACE_MS 5000 /* SIGTERM to SIGKILL */

struct action_runner;

/* How a run ended; every pointer is valid during the callback only. */
struct action_result {
    const char *action;   /* action name */
    uint64_t hint;        /* hint id that asked for it; 0: an operator */
    const char *incident; /* the hint's incident, or "" */
    int64_t exit_status;  /* exit code when signal is 0 */
    int signal;           /* terminating signal, 0: exited */
    int timed_out;        /* 1: stopped at its timeout */
    int spawn_error;      /* negative errno if it could not start, else 0 */
    uint64_t duration_ms; /* spawn to exit */
    const char *output;   /* the last output bytes (not NUL-terminated) */
    size_t output_len;
    size_t output_dropped; /* bytes before the tail, not kept */
};

typedef void (*action_done_fn)(void *arg, const struct action_result *r);

int action_runner_new(uv_loop_t *loop, struct action_runner **out);

/*
 * Start def with argv (taken over: freed by the runner, also on error).
 * done(arg, result) is called once, on the loop, when the process has
 * exited and its output is read, or at once if it cannot be spawned.
 * Returns 0, -EBUSY when def's previous run still runs, or -EPERM when
 * def->user is another user and the agent is not root; then err holds
 * the reason and done is not called.
 */
int action_run_start(struct action_runner *r, const struct action_def *def,
                     char **argv, uint64_t hint, const char *incident,
                     action_done_fn done, void *arg, char *err, size_t errlen);

/* Runs in progress. */
size_t action_runner_active(const struct action_runner *r);

/*
 * Shutdown: SIGKILL every run's group (their done callbacks still come,
 * with the signal) and free the runner once all have ended; cb(arg)
 * then. action_runner_stop(NULL, ...) calls cb at once.
 */
void action_runner_stop(struct action_runner *r, void (*cb)(void *arg),
                        void *arg);

#endif
