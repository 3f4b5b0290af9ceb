/*
 * checks: the agent's health checks (docs/internals/checks.md).
 *
 * Each configured check runs every interval, the first time after a
 * splay derived from the host and check names, so that a fleet does not
 * run a check in lockstep. At most check_max_concurrent run at once;
 * the others wait in a FIFO queue. A check never overlaps itself: a run
 * that falls due while the previous one is still queued or running is
 * skipped (and counted).
 *
 * Every result becomes a candidate event of kind "check". It is spooled
 * when the state changed, when it is the first result since the agent
 * started, or when the last event of this check is older than its
 * resend interval; otherwise it only updates the status kept here.
 *
 * Single-threaded: every call on the loop thread.
 */
#ifndef AGENT_CHECKS_H
#define AGENT_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "spool.h"

struct checks;

/*
 * One check as the status command shows it. Strings are borrowed from
 * the checks (or the config) and valid until control returns to the
 * loop.
 */
struct check_status {
    const char *name;     /* check name */
    const char *type;     /* "exec", "tcp", "http", "disk", ... */
    int state;            /* 0..3 of the last result, -1 before the first */
    const char *message;  /* last result's message; "" before the first */
    int64_t last_run_ns;  /* wall clock when the last run ended; 0: never */
    uint64_t duration_us; /* how long the last run took */
    int64_t last_sent_ns; /* wall clock of the last event spooled; 0: none */
    uint64_t interval_ms; /* configured period */
    uint64_t runs;        /* runs finished since start */
    uint64_t timeouts;    /* runs stopped by the timeout */
    uint64_t skipped;     /* runs skipped: previous one still queued */
    uint64_t events;      /* events spooled */
    int running;          /* 1 while a run is in progress */
    int queued;           /* 1 while waiting for a free slot */
};

/*
 * cfg, spool and host are borrowed and outlive the checks. on_spooled
 * (may be NULL) runs after each event spooled. https checks load their
 * TLS context here; a bad CA file is logged and the check reports
 * UNKNOWN on every run.
 */
struct checks *checks_new(uv_loop_t *loop, const struct agent_config *cfg,
                          struct spool *spool, const char *host,
                          void (*on_spooled)(void *arg), void *arg);
/* Arm every check's timer. 0 or a negative errno. */
int checks_start(struct checks *c);
/*
 * Stop scheduling, kill running plugins (SIGKILL to their process
 * group; they are still reaped), close every handle; cb(arg) when all
 * are closed. Results that arrive meanwhile are not sent.
 */
void checks_stop(struct checks *c, void (*cb)(void *arg), void *arg);
/* checks_free(NULL) is a no-op. Call after checks_stop's cb, or if
 * checks_start was never called. */
void checks_free(struct checks *c);

size_t checks_count(const struct checks *c);
/* Fill out for check i (config order). 0, or -ENOENT if i is too big. */
int checks_get(const struct checks *c, size_t i, struct check_status *out);

/*
 * Delay of a check's first run: FNV-1a of host and name, modulo the
 * interval. The same host and check always get the same splay.
 */
uint64_t checks_splay_ms(const char *host, const char *name,
                         uint64_t interval_ms);

#endif
