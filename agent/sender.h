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

#define SENDER_PING_MS 30000           /* PING period */
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

#endif
