/*
 * sender: the agent's one connection to the collector.
 *
 * A state machine on the loop: resolve the collector's address, connect
 * with TLS (client certificate, server name verified), HELLO, and on
 * WELCOME reconcile the spool with the collector's high-water mark, then
 * stream the spool in seq order as EVENTS batches, at most
 * window_batches unacknowledged at a time. An ACK deletes what it covers
 * from the spool and opens the window again. When the link drops, the
 * sender reconnects with exponential backoff and full jitter and resends
 * everything not yet acked; the collector drops what it already has.
 *
 * The sender never deletes an event the collector has not acked, and
 * never sends one that is not durable in the spool (spool_sync), so what
 * the collector holds is always a subset of what the spool can replay.
 */
#ifndef AGENT_SENDER_H
#define AGENT_SENDER_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "spool.h"
#include "tls.h"

/*
 * The PING period is the config's heartbeat (heartbeat_ms); the
 * collector declares the agent silent after three periods without a
 * frame. The collector answers every PING, so the sender in turn drops
 * a link that has been silent for three periods, but never sooner than
 * SENDER_SILENCE_MS, so that a short heartbeat does not make a slow
 * collector look dead.
 */
#define SENDER_PING_MS 30000           /* PING period if heartbeat_ms is 0 */
#define SENDER_SILENCE_MS 90000        /* no frame for this long: reconnect */
#define SENDER_WELCOME_MS 30000        /* connect + handshake + WELCOME */
#define SENDER_BATCH_BYTES (256 << 10) /* body bytes in one EVENTS frame */
#define SENDER_SYNC_MS 20              /* at most one spool_sync this often */

struct sender;

/*
 * cfg, ctx, spool and name (the agent name sent in HELLO) are borrowed
 * and must outlive the sender.
 */
struct sender *sender_new(uv_loop_t *loop, const struct agent_config *cfg,
                          struct tc_tls_ctx *ctx, struct spool *spool,
                          const char *name);
struct hints_store;
struct tc_hintkey;
/*
 * Where received hints go and the key that verifies them; both borrowed,
 * either may be NULL (no store: hints are not acked; no key: every hint
 * is refused). Call before sender_start.
 */
void sender_set_hints(struct sender *s, struct hints_store *store,
                      const struct tc_hintkey *key);
/*
 * cb(arg, id) after a hint was stored for the first time (not on a
 * redelivery): the agent runs its action there if the allowlist says
 * auto. Call before sender_start.
 */
void sender_set_hint_cb(struct sender *s, void (*cb)(void *arg, uint64_t id),
                        void *arg);
/* Start connecting. 0, or -EINVAL for a bad collector address. */
int sender_start(struct sender *s);
/* New events were spooled: send them if the window allows. */
void sender_kick(struct sender *s);
/*
 * Say BYE if connected, close the connection and the loop handles;
 * on_stopped(arg) follows once everything is closed, and only then may
 * sender_free be called.
 */
void sender_stop(struct sender *s, void (*on_stopped)(void *arg), void *arg);
void sender_free(struct sender *s);

/* 1 while a session is established (after WELCOME). */
int sender_connected(const struct sender *s);

enum sender_link {
    SENDER_LINK_STOPPED = 0,    /* not started, or sender_stop called */
    SENDER_LINK_CONNECTING = 1, /* resolving, TLS handshake, HELLO sent */
    SENDER_LINK_CONNECTED = 2,  /* WELCOME received; streaming */
    SENDER_LINK_BACKOFF = 3,    /* link down, waiting to retry */
};

/* "stopped", "connecting", "connected", "backoff". */
const char *sender_link_name(enum sender_link l);

/* A snapshot for `tocsin-agent status`; the caller owns the struct. */
struct sender_status {
    enum sender_link link;
    char address[256];       /* collector address from the config */
    char peer[64];           /* "ip:port" of the current or last link */
    char collector[64];      /* collector name from the last WELCOME */
    int64_t connected_since; /* ns since the epoch of the WELCOME; 0 when
                                not connected */
    char last_error[192];    /* why the last link went down ("" if none) */
    int64_t last_error_at;   /* ns since the epoch; 0 = never */
    uint64_t reconnects;     /* links lost or connects failed, total */
    uint64_t events_sent;    /* events written in EVENTS frames, resends
                                included */
    uint64_t events_acked;   /* events the collector acked */
    int64_t last_ack_at;     /* ns since the epoch of the last ACK; 0 = none */
    uint64_t spool_depth;    /* events spooled, i.e. not yet acked */
    uint64_t spool_bytes;    /* their encoded size, bytes */
    int64_t oldest_unacked_ns; /* age of the oldest spooled event (now
                                  minus its ts), ns; 0 if none or unknown */
};

/*
 * Fill *out (OUT). Reads one event from the spool when it is not empty
 * (for the oldest event's age), so it is meant for a status request,
 * not a hot path. Loop thread only.
 */
void sender_get_status(struct sender *s, struct sender_status *out);

/*
 * Give back the frame buffers a burst made grow (about 160 KiB each),
 * if nothing is in flight and they hold nothing; the agent calls it
 * once a burst is over (agent_trim_cb). NULL: no-op.
 */
void sender_trim(struct sender *s);

#endif
