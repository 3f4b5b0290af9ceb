/*
 * liveness: heartbeats, silence, and the agents' link state written
 * through ingest (see liveness.h and docs/internals/net.md).
 */
#include "net/liveness.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "net/registry.h"
#include "pipeline/ingest.h"
#include "store/store.h"
#include "timefmt.h"
#include "units.h"
#include "wire.h"

/* Heartbeat assumed for an agent that did not say (older agents), ms. */
#define DEFAULT_HEARTBEAT_MS 30000
/* Heartbeats missed before an agent is declared silent. */
#define SILENT_AFTER 3

/* Peer values (a heartbeat in ms) times a constant, saturating. */
static int64_t
mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;

    if (__builtin_mul_overflow(a, b, &r) || r > (uint64_t)INT64_MAX)
        return INT64_MAX;
    return (int64_t)r;
}

/* Queue the agent's link state for the next commit. */
static int
agent_flush(struct liveness *lv, struct reg_agent *a)
{
    struct store_agent_state st;
    int rc;

    memset(&st, 0, sizeof(st));
    st.name = a->name;
    st.connected = registry_link(a) != NULL;
    st.last_seen = a->last_seen;
    st.software = a->software;
    st.address = a->address[0] ? a->address : NULL;
    st.spool_depth = a->spool_depth;
    st.spool_bytes = a->spool_bytes;
    st.heartbeat_ms = a->heartbeat_ms;
    st.silent_since = a->silent_since;
    st.collector_seq = a->collector_seq;
    if ((rc = ingest_agent_state(lv->ingest, &st)) == 0)
        a->dirty = 0;
    return rc;
}

static void
fmt_hb(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/*
 * Store an event of kind "agent", rule "agent-silent", about a, made by
 * the collector. It takes the next seq of the collector's own seq space
 * for a, and a's state (silent_since, collector_seq) is queued right
 * behind it, so both land in the same transaction: after a crash either
 * both are stored or neither, and a restart neither repeats nor loses
 * the event.
 */
static int
agent_event(struct liveness *lv, struct reg_agent *a, enum tc_severity sev,
            const char *msg, int64_t now)
{
    struct ingest_src src;
    struct tc_event ev;
    int rc;

    memset(&ev, 0, sizeof(ev));
    ev.seq = a->collector_seq + 1;
    ev.ts = now;
    ev.host = tc_str_c(a->name);
    ev.kind = tc_str_c("agent");
    ev.source = tc_str_c("collector");
    ev.rule = tc_str_c("agent-silent");
    ev.sev = sev;
    ev.state = -1;
    ev.message = tc_str_c(msg);
    ev.count = 1;
    memset(&src, 0, sizeof(src));
    src.agent = a->name;
    src.now = now;
    src.collector = 1;
    if ((rc = ingest_append(lv->ingest, &src, &ev, 1)) < 0) {
        log_warnx("agent %s: cannot store \"%s\": %s", a->name, msg,
                  strerror(-rc));
        return rc;
    }
    a->collector_seq++;
    /* Cannot fail now: it fails only while draining, as append would. */
    agent_flush(lv, a);
    return 0;
}

/* A frame from a: it is alive. If it was declared silent, say it is back. */
void
liveness_heard(struct liveness *lv, struct reg_agent *a, int64_t now)
{
    char msg[512], dur[32];
    int64_t since = a->silent_since;

    a->last_seen = now;
    if (since == 0)
        return;
    tc_fmt_duration(dur, sizeof(dur), now - since);
    snprintf(msg, sizeof(msg), "agent %s is back after %s", a->name, dur);
    a->silent_since = 0;
    if (agent_event(lv, a, TC_SEV_OK, msg, now) < 0) {
        a->silent_since = since; /* shutting down: the next run says it */
        return;
    }
    log_info("%s", msg);
}

static void
agent_check_silent(struct liveness *lv, struct reg_agent *a, int64_t now)
{
    uint64_t hb = a->heartbeat_ms ? a->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    /* hb came from the peer (or a store written before it was bounded). */
    int64_t limit = mul_sat(hb, (uint64_t)SILENT_AFTER * 1000000);
    int64_t ref = a->last_seen, since;
    char msg[512], dur[32], hbs[32], iso[TC_RFC3339_MAX];

    if (a->silent_since != 0)
        return; /* said once; "back" comes with its next frame */
    /* Waiting for session memory: we are the ones not reading it. */
    if (registry_held(a))
        return;
    /*
     * Not before SILENT_AFTER periods of this collector run, whatever
     * the stored last_seen: while we were down nobody could hear it.
     * Nor while backpressure kept us from reading its session.
     */
    if (ref < lv->started_at)
        ref = lv->started_at;
    if (registry_link(a) != NULL && ref < lv->resumed_at)
        ref = lv->resumed_at;
    if (now - ref < limit)
        return;
    since = a->last_seen > 0 ? a->last_seen : lv->started_at;
    tc_fmt_duration(dur, sizeof(dur), now - since);
    fmt_hb(hb, hbs, sizeof(hbs));
    tc_rfc3339(since, 0, iso, sizeof(iso));
    snprintf(msg, sizeof(msg),
             "agent %s silent for %s (heartbeat %s, last "
             "seen %s)",
             a->name, dur, hbs, iso);
    a->silent_since = since;
    if (agent_event(lv, a, TC_SEV_CRITICAL, msg, now) < 0) {
        a->silent_since = 0;
        return;
    }
    log_warnx("%s", msg);
}

void
liveness_init(struct liveness *lv, struct registry *reg, struct ingest *ingest,
              int64_t started_at)
{
    memset(lv, 0, sizeof(*lv));
    lv->reg = reg;
    lv->ingest = ingest;
    lv->started_at = started_at;
}

/*
 * Writing at most once a second keeps heartbeats of many agents from
 * costing one commit each; the rows ride along with the next group
 * commit.
 */
void
liveness_tick(struct liveness *lv, int64_t now)
{
    struct reg_iter it;

    if (ingest_paused(lv->ingest))
        lv->resumed_at = now;
    for (struct reg_agent *a = registry_first(lv->reg, &it); a != NULL;
         a = registry_next(&it)) {
        agent_check_silent(lv, a, now);
        if (a->dirty)
            agent_flush(lv, a);
    }
}

void
liveness_flush_dirty(struct liveness *lv)
{
    struct reg_iter it;

    for (struct reg_agent *a = registry_first(lv->reg, &it); a != NULL;
         a = registry_next(&it))
        if (a->dirty)
            agent_flush(lv, a);
}
