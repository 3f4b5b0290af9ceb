/*
 * hint_sender: delivers the hints the engine step decided to the agents
 * (docs/internals/hints.md, "Collector side"; docs/runbooks.md,
 * "Dispatch").
 *
 * Delivery is not engine state: the hints table says what was decided,
 * hint_delivery (written here, off the loop) what was sent and acked.
 * After a step wrote hints (hint_sender_kick) the new ones are loaded
 * and sent to the agents that are connected; when an agent comes up
 * (HELLO, registry_watch) its hints not yet acked are loaded and sent
 * in id order, at most HINT_WINDOW in flight per agent; each HINT_ACK
 * marks its hint acked and lets the next one go. Every hint is signed
 * at send time with the collector's hint-signing key; Ed25519 is
 * deterministic, so a resend is the same bytes and the agent sees a
 * redelivery. Without a key hints are decided and stored, not sent
 * (said once in the log). A reload hands over a new key
 * (hint_sender_set_key): the sends after it are signed with it.
 *
 * Store work runs on the libuv threadpool on a connection of the
 * sender's own, one job at a time; everything else on the loop thread.
 */
#ifndef COLLECTOR_HINT_SENDER_H
#define COLLECTOR_HINT_SENDER_H

#include <uv.h>

struct hint_sender;
struct registry;
struct store;

/* Hints in flight (sent, not acked) per agent. */
#define HINT_WINDOW 64

/*
 * key_path: the hint-signing key (NULL: none, hints are not sent).
 * log: the event log store (must outlive the sender). Loop thread, at
 * start-up: reads the highest hint id so far. Logs and returns a
 * negative errno.
 */
int hint_sender_new(uv_loop_t *loop, struct registry *reg, struct store *log,
                    const char *key_path, struct hint_sender **out);
/*
 * A reload's key (taken over; NULL: none, hints are no longer sent).
 * Loop thread. Hints already in flight keep the signature they went
 * with; a key where there was none sends what the connected agents
 * have not acked.
 */
struct tc_hintkey;
void hint_sender_set_key(struct hint_sender *s, struct tc_hintkey *key);
/* A step wrote hints: load and send the new ones. Cheap; any thread?
 * No: the loop thread (the runner's after-work callback). */
void hint_sender_kick(void *sender);
/* For the metrics (loop thread). */
struct hint_sender_stats {
    uint64_t sent;  /* HINT frames sent (a resend counts again) */
    uint64_t acked; /* HINT_ACKs for hints in flight */
};
void hint_sender_stats(const struct hint_sender *s,
                       struct hint_sender_stats *out);
/* No new jobs; a job in flight completes (the loop runs until it has). */
void hint_sender_stop(struct hint_sender *s);
/* After the loop has ended. NULL: no-op. */
void hint_sender_free(struct hint_sender *s);

#endif
