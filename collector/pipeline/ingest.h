/*
 * ingest: the pipeline between agent sessions and the store.
 *
 * Sessions append accepted events; ingest re-encodes them into one blob
 * per batch and queues the batches. A commit takes every queued batch
 * of every session and writes it in one SQLite transaction on the libuv
 * threadpool, so the loop keeps reading and decoding while SQLite
 * fsyncs (group commit). Only one commit is in flight; whatever queues
 * meanwhile goes into the next one. A batch waits at most
 * commit_interval_ms before a commit starts (unless one is in flight).
 *
 * Contract:
 *  - all functions and callbacks run on the loop thread;
 *  - on_ack fires after a COMMIT returned, once per agent whose events
 *    were in it, with the agent's new durable high-water mark and the
 *    spool epoch it belongs to. It must look the session up by name:
 *    the session that sent the events may be gone or replaced;
 *  - on_commit, if set, fires once after each successful COMMIT that
 *    stored at least one batch (after the on_ack calls), so readers of
 *    the batches table (the incident runner) need not poll;
 *  - on_pressure(1) fires when queued plus in-flight bytes go over
 *    max_bytes, on_pressure(0) when they fall below half of it;
 *  - a failed commit is logged, kept, and retried with backoff; nothing
 *    is acked until it succeeds;
 *  - ingest_drain's callback fires once everything queued before the
 *    call is committed (status 0) or could not be (negative errno; the
 *    events stay unacked in the agents' spools and are resent later).
 */
#ifndef COLLECTOR_INGEST_H
#define COLLECTOR_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "metrics.h"
#include "wire.h"

struct ingest;
struct store;
struct store_agent_state;

struct ingest_opts {
    uint64_t max_bytes;          /* queued + in-flight cap, bytes */
    uint64_t commit_interval_ms; /* max wait before a commit starts */
};

struct ingest_cbs {
    void (*on_ack)(void *arg, const char *agent, uint64_t epoch, uint64_t hwm);
    void (*on_pressure)(void *arg, int stop);
    void (*on_commit)(void *arg); /* may be NULL */
};

/* Who sent a batch. Strings are copied. */
struct ingest_src {
    const char *agent;    /* authenticated agent name (cert CN) */
    uint64_t epoch;       /* spool epoch from HELLO */
    const char *software; /* HELLO software, or NULL */
    int64_t now;          /* arrival time, ns since the epoch */
    int collector;        /* 1: events the collector made about the
                             agent: stored with origin "collector", in
                             their own seq space, never acked and never
                             moving the agent's hwm */
};

/*
 * Create the pipeline. The store is used only from the threadpool while
 * a commit runs; the caller must not use it then (see store.h).
 */
int ingest_new(uv_loop_t *loop, struct store *store,
               const struct ingest_opts *o, const struct ingest_cbs *cbs,
               void *arg, struct ingest **out);

/*
 * Free after the drain callback (or with nothing ever appended); the
 * memory goes once the internal timer handle has closed, so the loop
 * must run once more. ingest_free(NULL) is a no-op.
 */
void ingest_free(struct ingest *ig);

/*
 * Queue n events (seq increasing, all newer than anything queued for
 * this agent and epoch: the caller deduplicates). Every event's host is
 * replaced by src->agent. The events' bytes are copied; the caller may
 * reuse them at once. 0 or a negative errno.
 */
int ingest_append(struct ingest *ig, const struct ingest_src *src,
                  const struct tc_event *ev, uint32_t n);

/*
 * Queue an agent's link state for the next commit (strings are copied).
 * It goes into the same transaction as whatever is queued now, so a
 * collector event queued just before it is stored atomically with it.
 * With nothing else queued, a commit starts after commit_interval_ms:
 * the caller decides how often to call (server.c: at most once a
 * second per agent). 0 or a negative errno.
 */
int ingest_agent_state(struct ingest *ig, const struct store_agent_state *st);

/* 1 while over the byte cap (between on_pressure(1) and (0)). */
int ingest_paused(const struct ingest *ig);

/* Commit everything queued, then call cb once. */
void ingest_drain(struct ingest *ig, void (*cb)(void *arg, int status),
                  void *arg);

struct ingest_stats {
    uint64_t queued_events; /* waiting for a commit, not in flight */
    uint64_t queued_bytes;
    uint64_t inflight_events; /* in the commit running now */
    uint64_t inflight_bytes;
    uint64_t commits;         /* successful commits */
    uint64_t commit_failures; /* failed attempts (each retry counts) */
    uint64_t events;          /* events committed */
    uint64_t batches;         /* batches committed */
    uint64_t max_group;       /* most batches in one commit */
    int64_t last_commit_ns;   /* duration of the last commit, ns */
    uint64_t checkpoints;     /* store maintenance passes run (WAL
                                 checkpoints) */
    /* Of events, the collector's own (metrics: stored by origin). */
    uint64_t collector_events;
    /* Successful commits' durations (metrics, loop thread). */
    struct metrics_hist commit_hist;
};

void ingest_stats(const struct ingest *ig, struct ingest_stats *out);

#endif
