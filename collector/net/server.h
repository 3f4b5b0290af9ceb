/*
 * server: the collector's network side, wired together: the accept
 * loop (net/listener.h), the agent sessions (net/session.h:
 * HELLO/WELCOME, EVENTS, ACK, PING/PONG, HINT_ACK, BYE, budgets), the
 * agents registry (net/registry.h: name -> epoch, marks, last seen,
 * link; loaded from the store at start-up, so the loop never reads
 * SQLite), the liveness policy (net/liveness.h) and the ingest
 * pipeline, which acks events to the agent after they are durable.
 * docs/internals/net.md draws the parts.
 *
 * Contract: everything runs on the loop thread. server_stop stops
 * listening, stops reading, drains the ingest pipeline (acking what it
 * commits), says BYE to every session and closes it; cb fires once all
 * of that is done and the server holds no open handle, after which
 * server_free releases the memory.
 */
#ifndef COLLECTOR_SERVER_H
#define COLLECTOR_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "tls.h"

struct server;
struct collector_config;
struct store;
struct tc_tls_ctx;

/*
 * Load the agents table from the store and set up the pipeline. cfg,
 * tls and store are borrowed and must outlive the server.
 */
int server_new(uv_loop_t *loop, const struct collector_config *cfg,
               struct tc_tls_ctx *tls, struct store *store,
               struct server **out);
/*
 * Serve on lfd, the socket bound to cfg->listen and listening
 * (listener_open, called before the store opens). The server owns lfd
 * from here, also on failure; logs and returns a negative errno.
 */
int server_start(struct server *s, int lfd);
/* Graceful shutdown; see above. Idempotent. */
void server_stop(struct server *s, void (*cb)(void *arg), void *arg);
/*
 * Call fn(arg) on the loop thread after every store commit that wrote
 * events (ingest's on_commit): the incident runner steps at once
 * instead of waiting for its poll. Set before server_start.
 */
void server_on_commit(struct server *s, void (*fn)(void *arg), void *arg);
/*
 * Reload: connections accepted from now on use tls (borrowed, like the
 * one given to server_new); open ones keep theirs (tls.h counts
 * references, so the caller may free the old context at once).
 */
void server_set_tls(struct server *s, struct tc_tls_ctx *tls);
/* After server_stop's callback (or if never started). NULL: no-op. */
void server_free(struct server *s);
/* The agents registry (hint delivery sends through it). */
struct registry;
struct registry *server_registry(struct server *s);

struct server_stats {
    uint64_t accepted;        /* connections accepted */
    uint64_t rejected;        /* HELLO over max_agents */
    uint64_t evicted;         /* oldest pending closed (max_pending,
                                 or accept out of descriptors) */
    uint64_t accept_errors;   /* accept failed (EMFILE, ENFILE...) */
    uint64_t mem_waits;       /* sessions paused: session_memory full */
    uint64_t refused;         /* HELLO refused (identity, version) */
    uint64_t protocol_errors; /* sessions closed for bad input */
    uint64_t timeouts;        /* handshake or idle timeouts */
    uint64_t replaced;        /* sessions replaced by a newer one */
    uint64_t frames;          /* frames decoded */
    uint64_t events;          /* events accepted into the pipeline */
    uint64_t duplicates;      /* events dropped as already queued */
    uint64_t paced;           /* TLS pumps put off to a later loop
                                 iteration (tc_tls_pacer) */
    uint32_t sessions;        /* connections open now */
    uint32_t agents;          /* agents known */
    uint32_t active;          /* sessions past HELLO (agents connected) */
    /* TLS handshakes failed, by class (tls.h; [TC_TLS_FAIL_NONE] 0) */
    uint64_t tls_failures[TC_TLS_FAIL_N];
};

void server_stats(const struct server *s, struct server_stats *out);
/* The pipeline's figures (ingest.h), for the metrics. */
struct ingest_stats;
void server_ingest_stats(const struct server *s, struct ingest_stats *out);

#endif
