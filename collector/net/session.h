/*
 * session: one agent connection (TLS) and the protocol state machine of
 * docs/protocol.md (HELLO/WELCOME, EVENTS, ACK, PING/PONG, HINT_ACK,
 * BYE), with the budgets every session shares (limits.max_pending,
 * max_agents, sessions_per_agent, session_memory). A session that said
 * HELLO is its agent's link in the registry (reg_link_ops), through
 * which anything else reaches the agent.
 *
 * Delivery rests on two marks per agent (struct reg_agent). queued_hwm
 * is the highest seq handed to the ingest pipeline; an event at or
 * below it is a replay (the agent resends everything after the durable
 * mark when it reconnects) and is dropped. durable_hwm is the highest
 * seq committed; it is what WELCOME reports and what ACK carries, and
 * it only moves in the ingest commit callback (server.c). Both marks
 * belong to the agent, not to a session, so a replacing connection
 * dedups against what its predecessor already queued.
 *
 * Contract: loop thread only. The server fills the borrowed fields of
 * struct sessions, then calls sessions_start for each accepted socket.
 * A session's memory is released in its timer's close callback, after
 * which on_freed(arg) is called if sessions_stop_reading was called.
 */
#ifndef COLLECTOR_SESSION_H
#define COLLECTOR_SESSION_H

#include <stdint.h>

#include <uv.h>

#include "htab.h"
#include "net/server.h"
#include "wire.h"

struct collector_config;
struct ingest;
struct liveness;
struct registry;
struct session;
struct tc_tls_ctx;

/* A warning any peer can trigger, logged at most once per 10 s. */
struct net_warn {
    int64_t last;    /* mono ns it was last logged; 0 = never */
    uint64_t missed; /* occurrences held back since then */
};

/*
 * 1 when the warning may be logged now (*missed says how many were
 * held back since the last one), 0 when it is only counted.
 */
int net_warn_due(struct net_warn *w, uint64_t *missed);

struct sessions {
    /* Set by the server before the first session; all borrowed. */
    uv_loop_t *loop;
    const struct collector_config *cfg;
    struct tc_tls_ctx *tls; /* for new sessions (server_set_tls) */
    struct registry *reg;
    struct liveness *lv;
    struct ingest *ingest;
    struct tc_wire_limits limits;
    struct server_stats *st;     /* counters, the server's */
    void (*on_freed)(void *arg); /* see above */
    void *freed_arg;

    /* Private to session.c from here; the server reads nsessions,
       nalive and npending for its stats, logs and shutdown. */
    int stopping;         /* sessions_stop_reading was called */
    struct session *list; /* open sessions, owned */
    uint32_t nsessions;   /* in the list */
    uint32_t nalive;      /* allocated, until freed */
    /* Budgets; see "Session budgets" in docs/internals/collector.md. */
    struct session *pend_head, *pend_tail; /* not past HELLO; borrowed */
    uint32_t npending;                     /* in that queue */
    uint32_t nactive;                      /* sessions past HELLO, open */
    struct session *wait_head, *wait_tail; /* waiting for memory */
    uint64_t mem_used;                     /* bytes charged by sessions */
    int waking;                            /* inside mem_wake */
    struct net_warn mem_warn;              /* session_memory full */
    struct net_warn evict_warn;            /* oldest pending closed */
    struct net_warn ident_warn;            /* sessions_per_agent reached */
    struct net_warn full_warn;             /* max_agents reached */
    struct net_warn hint_warn;             /* HINT_ACK for an unknown id */
    /* Sessions past TLS and not closing, per certificate name (struct
     * certcount in session.c): limits.sessions_per_agent without a
     * walk over every session at each handshake. */
    struct tc_htab certs;
};

/*
 * A new connection on fd (accepted, non-blocking): a pending session
 * until it says HELLO. When max_pending are pending, the oldest is
 * closed to make room. The session owns fd from here.
 */
void sessions_start(struct sessions *ss, uv_os_sock_t fd);
/*
 * Close the oldest connection that has not said HELLO (to make room
 * for a descriptor). quiet: the caller logs.
 */
void sessions_evict_pending(struct sessions *ss, int quiet);
/* The pipeline is full (stop 1) or has room again (0): ingest's on_pressure. */
void sessions_pressure(struct sessions *ss, int stop);
/* Shutdown, first step: read nothing more from anyone. */
void sessions_stop_reading(struct sessions *ss);
/* Shutdown, last step: BYE to every session and close it. */
void sessions_close_all(struct sessions *ss);

#endif
