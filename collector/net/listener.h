/*
 * listener: the collector's listening socket, opened before anything
 * else is created (the store), the bind test of -n, and the accept loop
 * that hands each new connection to the sessions.
 *
 * The socket is bound and listening when listener_open returns, so a
 * port that is taken or an address that is not local stops start-up
 * before the store exists: a failed start leaves no new database.
 * The server adopts the descriptor (server_start).
 */
#ifndef COLLECTOR_LISTENER_H
#define COLLECTOR_LISTENER_H

#include <stddef.h>

#include <uv.h>

/*
 * Resolve addr ("host:port", "[v6]:port"; a name is resolved once,
 * synchronously), bind with SO_REUSEADDR (a restart need not wait out
 * TIME_WAIT) and listen. Returns the non-blocking, close-on-exec
 * descriptor, or a negative errno with a message in err such as
 *   "listen 127.0.0.1:7400: address already in use"
 */
int listener_open(const char *addr, char *err, size_t errlen);

/*
 * For -n: bind a socket to addr as listener_open would, and close it.
 * 0, or a negative errno with a message in err. -EADDRINUSE is the
 * caller's to judge: the collector this configuration belongs to may be
 * the one holding the port.
 */
int listener_check(const char *addr, char *err, size_t errlen);

struct listener_cbs {
    /* A new connection: non-blocking, close-on-exec, the callee's. */
    void (*on_conn)(void *arg, int fd);
    /*
     * accept failed for want of descriptors (or kernel memory), or in a
     * way we do not know (err, positive errno): the callee says so and
     * frees what it can. The listener then pauses for 100 ms: pausing
     * is what keeps the loop from spinning on a socket that stays
     * readable, and meanwhile connections wait in the kernel's backlog
     * instead of being dropped. (libuv's own listener would accept and
     * close them silently: that is why we accept here.)
     */
    void (*on_exhausted)(void *arg, int err);
};

/* Embedded in its owner; fields private to listener.c. */
struct listener {
    int fd;           /* listening socket; -1 when none */
    uv_poll_t poll;   /* readable fd: connections to accept */
    uv_timer_t retry; /* resumes poll after on_exhausted */
    int started;      /* poll and retry initialised */
    int closed;       /* both closed and fd closed */
    int handles;      /* of poll and retry, not closed yet */
    int stopping;     /* listener_stop was called */
    struct listener_cbs cbs;
    void *arg;                    /* for cbs and closed_cb */
    void (*closed_cb)(void *arg); /* listener_stop's */
};

/*
 * Accept connections on fd (from listener_open) on loop, at most 64 per
 * wakeup so that sessions get a turn. The listener owns fd from here,
 * also on failure. 0 or a negative errno (libuv's).
 */
int listener_start(struct listener *l, uv_loop_t *loop, int fd,
                   const struct listener_cbs *cbs, void *arg);
/*
 * Stop accepting and close; cb(arg) once the handles and the socket are
 * closed. Not started (or already stopping): cb is not called.
 */
void listener_stop(struct listener *l, void (*cb)(void *arg));

#endif
