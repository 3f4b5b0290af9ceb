/*
 * liveness: the heartbeat and silence policy of docs/protocol.md §6
 * step 5, on top of the registry, and the writing of agents' link state.
 *
 * Any frame from an agent is a sign of life (liveness_heard). An agent
 * heard from for none of 3 heartbeats (its HELLO hb, 30 s if it did not
 * say), counted from no earlier than this collector run's start and the
 * last backpressure, is declared silent: one event of kind "agent", rule
 * "agent-silent", severity critical, made by the collector in its own
 * seq space for that agent, and one with severity ok when it is heard
 * again. The event and the agent's state land in one transaction
 * (ingest_agent_state right behind ingest_append).
 *
 * Contract: loop thread only; no handles of its own (the server's 1 s
 * timer calls liveness_tick). reg and ingest are borrowed.
 */
#ifndef COLLECTOR_LIVENESS_H
#define COLLECTOR_LIVENESS_H

#include <stdint.h>

struct ingest;
struct registry;
struct reg_agent;

struct liveness {
    struct registry *reg;  /* borrowed */
    struct ingest *ingest; /* borrowed */
    int64_t started_at;    /* ns since the epoch: grace for silence */
    int64_t resumed_at;    /* ns: last tick under backpressure */
};

void liveness_init(struct liveness *lv, struct registry *reg,
                   struct ingest *ingest, int64_t started_at);
/* A frame from a at now (ns since the epoch): it is alive, maybe back. */
void liveness_heard(struct liveness *lv, struct reg_agent *a, int64_t now);
/*
 * Once a second: declare silent agents, and queue the link state of
 * agents whose state changed (dirty).
 */
void liveness_tick(struct liveness *lv, int64_t now);
/* Queue the link state of every dirty agent (at shutdown). */
void liveness_flush_dirty(struct liveness *lv);

#endif
