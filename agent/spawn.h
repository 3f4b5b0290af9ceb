/*
 * spawn: one child process of the agent, as checks (check_exec.c) and
 * actions (action_run.c) run them.
 *
 * The contract:
 * - argv[0] is run as given (no shell, no PATH search) with uv_spawn, so
 *   libuv reaps it in its SIGCHLD handler and an exec failure is an
 *   error of the call;
 * - in a new session (setsid): the child leads its own process group,
 *   pgid == pid, so every signal here goes to the whole group and what
 *   the child forked dies with it;
 * - stdin is /dev/null; stdout and stderr share one pipe, handed to the
 *   owner's output callback as it is read (the owner decides what it
 *   keeps), so the child never blocks on a full pipe;
 * - with setid, setgid(gid) and setuid(uid) after setgroups(0, NULL)
 *   (libuv does that; no initgroups: the primary group only);
 * - env NULL inherits the agent's environment, cwd NULL its directory;
 * - the run is finished when the child has exited AND the pipe is at
 *   EOF; then done is called once, the handles are closed and closed is
 *   called once: the owner may free the struct spawn from there on;
 * - timeout_ms > 0: at the timeout, SIGTERM to the group (timed_out is
 *   set, logged), SIGKILL grace_ms later (logged); timeout_ms 0: the
 *   owner calls spawn_term when it decides;
 * - eof_wait_ms > 0: a child that exited while something of its group
 *   holds the pipe is given that long, then the group is killed and the
 *   run finishes; 0: it waits for a SIGKILL from spawn_term or
 *   spawn_cancel, which finishes it the same way.
 */
#ifndef AGENT_SPAWN_H
#define AGENT_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define SPAWN_READ_BUF 4096 /* bytes read from the pipe at a time */

struct spawn;

struct spawn_opts {
    char **argv;          /* argv[0] the executable; borrowed for the call */
    char **env;           /* NULL: the agent's; borrowed for the call */
    const char *cwd;      /* NULL: the agent's; borrowed for the call */
    int setid;            /* 1: switch to uid and gid */
    uid_t uid;            /* with setid */
    gid_t gid;            /* with setid */
    uint64_t timeout_ms;  /* 0: none (the owner calls spawn_term) */
    uint64_t grace_ms;    /* with timeout_ms: SIGTERM to SIGKILL */
    uint64_t eof_wait_ms; /* 0: wait for EOF until a SIGKILL */
    const char *what;     /* for the log: "action NAME", "check NAME" */
    /* Output bytes p[0..n), as they are read. */
    void (*output)(struct spawn *s, const char *p, size_t n);
    /* Once: exited and the output ended (exit_status, term_signal). */
    void (*done)(struct spawn *s);
    /* Once, after done or a failed uv_spawn: the handles are closed. */
    void (*closed)(struct spawn *s);
    void *data; /* the owner's; copied to spawn.data */
};

struct spawn {
    void *data;          /* the owner's pointer (opts.data) */
    int pid;             /* the child, and its process group id; 0: none */
    int exited;          /* 1 once the exit callback ran */
    int64_t exit_status; /* valid when exited */
    int term_signal;     /* valid when exited; 0: none */
    int eof;             /* 1 once the pipe is closed or at EOF */
    int timed_out;       /* 1 once SIGTERM went for a timeout or cancel */
    int kill_sent;       /* 1 once SIGKILL went to the group after grace */
    int finished;        /* 1 once done was called */
    int closing;         /* 1 when closed follows (see spawn_start) */
    int64_t start_ns;    /* tc_mono_ns just before uv_spawn */
    int64_t exit_ns;     /* tc_mono_ns at the exit callback */
    struct spawn_opts o; /* callbacks and timings (argv etc. cleared) */
    char what[96];       /* o.what, cut */
    int handles;         /* open handles; closed is called at 0 */
    uv_process_t proc;   /* data = this */
    uv_pipe_t out;       /* read end of stdout+stderr; data = this */
    uv_timer_t timer;    /* timeout, grace, EOF wait; data = this */
    char rbuf[SPAWN_READ_BUF];
};

/*
 * Start o->argv in s (zeroed by the caller or not: it is reset). 0: it
 * runs; output, done, closed follow. A negative errno: it did not
 * start; if s->closing, the failed process handle is being closed and
 * closed follows (done does not), else nothing follows and s may be
 * freed at once (the pipe could not be made).
 */
int spawn_start(uv_loop_t *loop, struct spawn *s, const struct spawn_opts *o);

/* Signal the child's process group (ESRCH is not an error). */
void spawn_kill(struct spawn *s, int sig);

/* SIGTERM to the group now (timed_out), SIGKILL grace_ms later. */
void spawn_term(struct spawn *s, uint64_t grace_ms);

/* SIGKILL to the group at the next loop turn (timed_out); the run
 * finishes as after a timeout. */
void spawn_cancel(struct spawn *s);

#endif
