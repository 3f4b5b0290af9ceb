/*
 * registry: the collector's agents, by name, and the way to reach the
 * connected ones (docs/internals/net.md).
 *
 * Every agent the collector knows (loaded from the store at start-up,
 * or met at HELLO) has one struct reg_agent, owned by the registry and
 * never freed before registry_free: pointers to it stay valid for the
 * life of the collector. A connected agent has a link attached: an ops
 * struct and an opaque pointer, which the session layer provides. The
 * registry knows nothing of TLS, libuv or the store, so it is tested
 * alone (tests/unit/test_registry.c).
 *
 * Sending: registry_send and registry_send_frame hand one whole frame
 * to the agent's link. A frame that carries an id (HINT) is tracked
 * until the agent acknowledges it (HINT_ACK, registry_acked: on_ack) or
 * until its link goes first (registry_detach, a replacing session, or
 * registry_free: on_fail). Exactly one of the two callbacks fires for
 * every tracked send that returned 0, and never from inside
 * registry_send itself.
 *
 * Bounds: the registry holds no frame bytes (the link copies them: the
 * session writes them to TLS, under its own session_memory and "peer
 * not reading" limits); it holds, per agent, at most max_outstanding
 * tracked ids (registry_new), 24 bytes each, and a send beyond that is
 * refused with -ENOBUFS. The number of agents is bounded by the store
 * (agents known) plus limits.max_agents per run (new ones say HELLO).
 *
 * Threads: none; everything runs on the loop thread. Callbacks may call
 * back into the registry (send to another agent, even to the same one:
 * it is detached by then, -ENOTCONN).
 */
#ifndef COLLECTOR_REGISTRY_H
#define COLLECTOR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "htab.h"

struct registry;
struct tc_frame;

/* Tracked sends held per agent unless registry_new is told otherwise. */
#define REGISTRY_MAX_OUTSTANDING 1024

/*
 * A link to a connected agent (a session). The registry calls these on
 * the loop thread, never after registry_detach of that link returned.
 */
struct reg_link_ops {
    /*
     * Queue one whole frame (length prefix included) to the peer; the
     * bytes are copied. 0, or a negative errno (-ENOTCONN if the link
     * is closing, -EMSGSIZE if the frame is too big for the peer).
     */
    int (*send)(void *link, const uint8_t *frame, size_t len);
    /*
     * 1 while the collector itself is not reading this link (memory
     * backpressure): its silence is not the agent's. May be NULL.
     */
    int (*held)(const void *link);
};

/* Outcome of a tracked send; agent is valid during the call only. */
struct reg_ack_cbs {
    /* The agent acknowledged id. */
    void (*on_ack)(void *arg, const char *agent, uint64_t id);
    /*
     * The link went before an ack: err is -ECONNRESET (session closed or
     * replaced) or -ECANCELED (registry_free). The frame may or may not
     * have reached the agent: send it again once it is back.
     */
    void (*on_fail)(void *arg, const char *agent, uint64_t id, int err);
    /*
     * The agent refused id (HINT_ACK with "refused"): it will not store
     * it from this link; reason is printable text. NULL: on_ack fires.
     */
    void (*on_refused)(void *arg, const char *agent, uint64_t id,
                       const char *reason);
};

/* One tracked send (private to registry.c). */
struct reg_out {
    uint64_t id;                   /* frame id (HINT id), non-zero */
    const struct reg_ack_cbs *cbs; /* borrowed; static in practice */
    void *arg;                     /* the caller's */
};

/*
 * One agent. The fields above "link" belong to the modules on top (the
 * session writes the marks and HELLO/PING data, liveness the silence);
 * the registry only keeps them. The rest is the registry's: read it
 * through the functions below.
 */
struct reg_agent {
    char *name;             /* owned; certificate CN; never changes */
    uint64_t epoch;         /* spool epoch of the current spool */
    int has_epoch;          /* 0 for an agent never seen with events */
    uint64_t durable_hwm;   /* highest seq committed to the store */
    uint64_t queued_hwm;    /* highest seq handed to ingest */
    int64_t last_seen;      /* ns since the epoch, last frame */
    uint64_t spool_depth;   /* events queued at the agent (last PING) */
    uint64_t spool_bytes;   /* bytes of those */
    char *software;         /* owned; HELLO/PING software or NULL */
    char address[64];       /* "ip:port" of the last connection */
    uint64_t heartbeat_ms;  /* PING period from HELLO; 0 = not said */
    int64_t silent_since;   /* ns: last heard from before it was declared
                               silent; 0 = not silent. Persisted. */
    uint64_t collector_seq; /* last seq of our own events about it */
    int dirty;              /* link state changed since last written */

    /* Registry-private from here. */
    const struct reg_link_ops *ops; /* NULL while not connected */
    void *link;                     /* the caller's; NULL likewise */
    struct reg_out *out;            /* tracked sends, oldest first */
    uint32_t nout, capout;          /* used, allocated (<= max) */
    struct tc_hnode hnode;          /* in the registry's table */
};

/* Every agent, in no particular order: see registry_first. */
struct reg_iter {
    struct tc_hiter h;
};

/*
 * An empty registry holding at most max_outstanding tracked sends per
 * agent (0: REGISTRY_MAX_OUTSTANDING). Aborts on out of memory, as
 * tc_xmalloc does.
 */
struct registry *registry_new(uint32_t max_outstanding);
/*
 * Fail every tracked send (on_fail, -ECANCELED), then free every agent.
 * NULL: no-op.
 */
void registry_free(struct registry *r);

/* The agent called name (len bytes, no NUL needed), or NULL. */
struct reg_agent *registry_findn(const struct registry *r, const char *name,
                                 size_t len);
struct reg_agent *registry_find(const struct registry *r, const char *name);
/* The agent called name, added (all fields zero) if unknown. */
struct reg_agent *registry_get(struct registry *r, const char *name);
/* Agents known. */
uint32_t registry_count(const struct registry *r);

/*
 * Iteration, in no particular order:
 *     for (a = registry_first(r, &it); a != NULL; a = registry_next(&it))
 * Do not add agents meanwhile (registry_get of a new name).
 */
struct reg_agent *registry_first(const struct registry *r, struct reg_iter *it);
struct reg_agent *registry_next(struct reg_iter *it);

/*
 * Make a reachable through link. A link already attached to a is
 * detached first (its tracked sends fail with -ECONNRESET). Nothing is
 * sent: the caller calls registry_up once the peer may take frames.
 */
void registry_attach(struct registry *r, struct reg_agent *a,
                     const struct reg_link_ops *ops, void *link);
/*
 * If link is a's link: a is no longer reachable, and every tracked send
 * fails (on_fail, -ECONNRESET, oldest first). Returns 1 then, 0 if link
 * was not a's (a replaced session closing late).
 */
int registry_detach(struct registry *r, struct reg_agent *a, void *link);
/* a's link (the caller's pointer), or NULL if it is not connected. */
void *registry_link(const struct reg_agent *a);
/* 1 if a is connected and its link says it is held (reg_link_ops). */
int registry_held(const struct reg_agent *a);

/*
 * Watch agents coming up: fn(arg, name) after registry_up, e.g. to send
 * what waited for the agent to reconnect. One watcher; NULL removes it.
 */
void registry_watch(struct registry *r,
                    void (*fn)(void *arg, const char *agent), void *arg);
/* The link of a is ready for frames (WELCOME sent): tell the watcher. */
void registry_up(struct registry *r, struct reg_agent *a);

/*
 * Send frame (len bytes, exactly one whole frame as the wire encoders
 * make it) to the agent called name. id 0: not tracked (cbs and arg are
 * ignored). Otherwise cbs (non-NULL) learns the outcome. 0, or:
 *   -ENOTCONN  the agent is unknown or not connected;
 *   -EINVAL    len is not one frame, or id != 0 without cbs;
 *   -EEXIST    id is already outstanding for this agent;
 *   -ENOBUFS   max_outstanding tracked sends are outstanding;
 *   or the link's error (nothing is tracked then).
 */
int registry_send(struct registry *r, const char *name, const uint8_t *frame,
                  size_t len, uint64_t id, const struct reg_ack_cbs *cbs,
                  void *arg);
/*
 * The same for a decoded-form frame, encoded here: HINT (tracked under
 * its id, which must not be 0), or ACK, PING, PONG, BYE (not tracked).
 * Other types: -EINVAL. Encoding errors as tc_wire_encode_*.
 */
int registry_send_frame(struct registry *r, const char *name,
                        const struct tc_frame *f, const struct reg_ack_cbs *cbs,
                        void *arg);

/*
 * The agent acknowledged id (HINT_ACK): on_ack fires. 0, or -ENOENT if
 * id is not outstanding for a (never sent, already acked, or failed
 * with a previous link): the caller logs it, nothing else happens.
 */
int registry_acked(struct registry *r, struct reg_agent *a, uint64_t id);
/* The agent refused id: on_refused fires (reason: printable, valid
 * during the call). 0, or -ENOENT as registry_acked. */
int registry_refused(struct registry *r, struct reg_agent *a, uint64_t id,
                     const char *reason);
/* Tracked sends outstanding for a. */
uint32_t registry_outstanding(const struct reg_agent *a);

#endif
