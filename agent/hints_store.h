/*
 * hints_store: the remediation hints this agent received, in a table of
 * its state database (state_dir/spool.db, beside the spool's tables).
 *
 * The sender stores a hint after verifying it and acks it only once the
 * row is committed (hints_store_put); `tocsin-agent hints` lists and
 * shows them through a read-only handle while the agent runs (WAL); the
 * action runner (agent/actions.c) reads a hint and moves its state.
 * A hint id is stored at most once: a redelivery of the same content is
 * recognised, other content under a stored id is refused.
 *
 * Single-threaded: one handle per thread, calls on its thread only.
 */
#ifndef AGENT_HINTS_STORE_H
#define AGENT_HINTS_STORE_H

#include <stdint.h>

#include "wire.h"

/* Rows kept: a full store refuses new hints (-ENOSPC, no ack). */
#define HINTS_STORE_MAX 100000
/* Longest state name, NUL included. */
#define HINTS_STATE_MAX 16

struct hints_store;

struct agent_hint_param {
    char *key; /* owned, NUL-terminated */
    char *val; /* owned, NUL-terminated */
};

/*
 * One stored hint: the contract's fields (docs/protocol.md "HINT"), its
 * state and when it was stored. Strings are owned, NUL-terminated (the
 * agent refuses hints with a NUL byte inside a field) and never NULL.
 * Filled by hints_store_get, released by hints_store_hint_clear.
 */
struct agent_hint {
    uint64_t id;
    char *agent;      /* addressee: this agent's name */
    char *incident;   /* incident id */
    uint64_t problem; /* problem id, 0 = none */
    char *source;     /* "runbook:<id>" or "known-error:<problem>" */
    char *title;      /* one line */
    char *text;       /* Markdown body */
    char *action;     /* action name, "" = none */
    struct agent_hint_param *params; /* nparams entries, sorted by key */
    uint32_t nparams;
    int64_t issued;              /* collector wall clock when decided, ns; 0 */
    char state[HINTS_STATE_MAX]; /* "new", "shown", "running", "done",
                                    "failed", "refused" */
    int64_t stored_at;           /* agent wall clock when stored, ns */
    int64_t updated_at; /* agent wall clock of the last state change, ns */
};

/* Release what h owns and zero it; a zeroed h is fine. */
void hints_store_hint_clear(struct agent_hint *h);

/* 1 if state is one of the six state names, else 0. */
int hints_store_state_valid(const char *state);

/*
 * Open the hint table in state_dir/spool.db. Read-write (the agent)
 * creates the table if it is missing; the caller has made state_dir
 * private already (spool_open). Read-only (the CLI) never writes: a
 * missing database or table reads as no hints. 0 or a negative errno
 * (logged).
 */
int hints_store_open(const char *state_dir, int readonly,
                     struct hints_store **out);
/* Rows kept at most (default HINTS_STORE_MAX); for tests. */
void hints_store_set_max(struct hints_store *s, uint32_t max_rows);
/* hints_store_free(NULL) is a no-op. */
void hints_store_free(struct hints_store *s);

/*
 * Store a verified hint with state "new", in one transaction.
 *   0        stored now
 *   1        a hint with this id and the very same content (signed
 *            bytes) is stored already: ack it again, store nothing
 *   -EEXIST  this id is stored with other content (a replayed id)
 *   -ENOSPC  HINTS_STORE_MAX rows, or the disk is full
 *   other negative errno: nothing stored
 */
int hints_store_put(struct hints_store *s, const struct tc_hint *h,
                    int64_t now_ns);

/* Fill *out with hint id. 0, -ENOENT, or a negative errno. */
int hints_store_get(struct hints_store *s, uint64_t id, struct agent_hint *out);

/*
 * Set hint id's state (one of the six names) and its updated_at. 0,
 * -ENOENT (no such hint), -EINVAL (not a state name) or a negative errno.
 */
int hints_store_set_state(struct hints_store *s, uint64_t id,
                          const char *state);

/*
 * Call cb for every stored hint, oldest first (stored_at, then id). h
 * is valid during the call only. A negative return from cb stops the
 * walk and is returned; otherwise 0 or a negative errno.
 */
int hints_store_list(struct hints_store *s,
                     int (*cb)(void *arg, const struct agent_hint *h),
                     void *arg);

#endif
