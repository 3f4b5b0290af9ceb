/*
 * report: renders the agent's status (tocsin-agent status) from the
 * running modules, as JSON or as text for a terminal. Runs on the loop
 * thread, reading each module's state through its getters.
 */
#ifndef AGENT_REPORT_H
#define AGENT_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "checks.h"
#include "config.h"
#include "emit.h"
#include "journal.h"
#include "sender.h"
#include "spool.h"
#include "tail.h"

/* What the report reads; all borrowed. Any module may be NULL. */
struct report_src {
    const char *name; /* agent name */
    const struct agent_config *cfg;
    struct spool *spool;
    struct sender *sender;
    struct tail *tail;
    struct checks *checks;
    struct emit *emit;
    struct journal *const *journals; /* cfg->njournals entries */
    int64_t started_ns;              /* wall clock at start */
    int64_t reloaded_ns;             /* last successful reload; 0 = none */
    uint64_t reloads_failed;         /* reloads refused (bad config) */
};

void report_render(const struct report_src *r, struct tc_buf *out, int json);

#endif
