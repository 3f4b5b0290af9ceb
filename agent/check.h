/*
 * check: the contract between the scheduler (checks.c) and the runners
 * that carry out one run of one check (check_exec.c, check_net.c,
 * check_local.c). Only these files include it; the rest of the agent
 * uses checks.h.
 *
 * A run is embedded in its check and reused. The scheduler fills loop,
 * cfg, tls and done, clears res, and calls the runner's start:
 *  - start returns 1 when the run finished inside the call (res is
 *    filled, done is NOT called), or 0 when it went asynchronous: then
 *    done(r) is called exactly once, from a loop callback, after res is
 *    filled and every handle the runner opened is closed (except a
 *    detached file-system request, see busy).
 *  - timeout(r): the deadline passed. The runner wraps up (a plugin
 *    gets SIGTERM, then SIGKILL) and reports through done as usual,
 *    with res.timed_out set.
 *  - cancel(r): the agent is stopping. Like timeout, but at once and
 *    without grace periods; res is ignored.
 *  timeout and cancel run from loop callbacks and may call done before
 *  they return (a file-system request left behind, see busy).
 * Runners never call back into the scheduler except through done.
 */
#ifndef AGENT_CHECK_H
#define AGENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "log.h"
#include "tls.h"

/* Nagios plugin states. */
enum check_state {
    CHECK_OK = 0,
    CHECK_WARNING = 1,
    CHECK_CRITICAL = 2,
    CHECK_UNKNOWN = 3,
};

#define CHECK_MSG_MAX 1024  /* bytes of a result message, NUL included */
#define CHECK_FIELDS_MAX 32 /* fields per result; more are dropped */
#define CHECK_KEY_MAX 80    /* bytes of a field key, NUL included */
#define CHECK_VAL_MAX 48    /* bytes of a field value, NUL included */

struct check_field {
    char key[CHECK_KEY_MAX]; /* e.g. "perf.time", NUL-terminated */
    char val[CHECK_VAL_MAX]; /* e.g. "0.002s", NUL-terminated */
};

/*
 * What one run found. Fixed size, so a run allocates nothing for it;
 * the scheduler keeps one per run that can be in flight
 * (check_max_concurrent), not one per check.
 */
struct check_result {
    int state;                   /* enum check_state */
    char message[CHECK_MSG_MAX]; /* one line, NUL-terminated */
    struct check_field fields[CHECK_FIELDS_MAX];
    size_t nfields;
    int timed_out; /* 1 if the deadline stopped the run */
};

struct check_run {
    uv_loop_t *loop;               /* borrowed */
    const struct agent_check *cfg; /* borrowed; outlives the run */
    struct tc_tls_ctx *tls;        /* https: borrowed; NULL otherwise */
    const char *tls_err;           /* https: why tls is NULL, or NULL */
    struct check_result *res;      /* OUT: filled by the runner; the
                                      scheduler's, from start to done */
    int64_t start_ns;              /* monotonic, when start was called */
    int *busy;  /* set to 1 by a runner that leaves a file-system
                   request behind after done (it cannot be cancelled
                   once a thread runs it); cleared when it returns,
                   and the check does not run again until then */
    void *priv; /* runner state, owned by the runner */
    void (*done)(struct check_run *r);
    void *data; /* the scheduler's pointer */
};

/* Set state and message (printf-style, cut at CHECK_MSG_MAX). */
void checks_result_set(struct check_result *res, int state, const char *fmt,
                       ...) TC_PRINTF(3, 4);
/* Add a field; dropped silently when CHECK_FIELDS_MAX are present. */
void checks_result_field(struct check_result *res, const char *key,
                         const char *fmt, ...) TC_PRINTF(3, 4);
/* Milliseconds since r->start_ns, for latency messages. */
double checks_run_elapsed_ms(const struct check_run *r);
/* "10s" or "1500ms" for a timeout message; returns buf. */
const char *checks_fmt_ms(uint64_t ms, char *buf, size_t len);

int check_exec_start(struct check_run *r);
void check_exec_timeout(struct check_run *r);
void check_exec_cancel(struct check_run *r);
/*
 * Parse plugin output (out[0..n), need not be NUL-terminated) into
 * res: the first line before '|' is the message; perfdata after '|' on
 * the first line, and everything after the first '|' on a later line
 * (Nagios long output), becomes fields "perf.LABEL" = "VALUE[UOM]",
 * plus "perf.LABEL.warn" and "perf.LABEL.crit" when given. Returns
 * the number of perfdata items that did not parse.
 */
int check_exec_parse(const char *out, size_t n, struct check_result *res);

int check_net_start(struct check_run *r);
void check_net_timeout(struct check_run *r);
void check_net_cancel(struct check_run *r);

int check_local_start(struct check_run *r);
void check_local_timeout(struct check_run *r);
void check_local_cancel(struct check_run *r);

#endif
