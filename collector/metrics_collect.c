/*
 * metrics_collect: the running collector's metrics snapshot, taken
 * from the figures each module keeps for itself (metrics.h), and the
 * textfile writer that keeps STORE_PATH-metrics.prom current. Loop
 * thread only: every source is read through its own _stats getter,
 * which copies integers the loop owns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgwrite.h"
#include "log.h"
#include "looplag.h"
#include "metrics.h"
#include "net/server.h"
#include "pipeline/hint_sender.h"
#include "pipeline/incident_runner.h"
#include "pipeline/ingest.h"
#include "util.h"

/* The textfile is rewritten this often, ms. */
#define TEXTFILE_EVERY_MS 1000

void
metrics_collect(struct metrics *m, const struct metrics_sources *src)
{
    struct server_stats ss;
    struct ingest_stats is;

    memset(m, 0, sizeof(*m));
    m->start_ns = src->start_ns;
    server_stats(src->srv, &ss);
    server_ingest_stats(src->srv, &is);
    m->events_received = ss.events + ss.duplicates;
    m->events_deduplicated = ss.duplicates;
    m->events_stored[METRICS_ORIGIN_AGENT] = is.events - is.collector_events;
    m->events_stored[METRICS_ORIGIN_COLLECTOR] = is.collector_events;
    m->agents_connected = ss.active;
    m->agents_known = ss.agents;
    m->connections = ss.sessions;
    m->queue_events = is.queued_events + is.inflight_events;
    m->queue_bytes = is.queued_bytes + is.inflight_bytes;
    m->commits = is.commits;
    m->commit_failures = is.commit_failures;
    m->commit = is.commit_hist;
    memcpy(m->tls_failures, ss.tls_failures, sizeof(m->tls_failures));
    m->protocol_errors = ss.protocol_errors;
    m->session_timeouts = ss.timeouts;
    if (src->inc != NULL) {
        struct incident_runner_stats rs;

        incident_runner_stats(src->inc, &rs);
        m->step = rs.step;
        m->census = rs.census;
        memcpy(m->incidents, rs.incidents, sizeof(m->incidents));
        memcpy(m->problems, rs.problems, sizeof(m->problems));
        m->hints_pending = rs.hints_unacked;
        m->hints_decided = rs.hints_decided;
    }
    if (src->hs != NULL) {
        struct hint_sender_stats hs;

        hint_sender_stats(src->hs, &hs);
        m->hints_sent = hs.sent;
        m->hints_acked = hs.acked;
    }
    if (src->lag != NULL)
        metrics_hist_from_looplag(&m->looplag, looplag_hist(src->lag));
}

struct metrics_textfile {
    uv_timer_t timer;
    struct metrics_sources src; /* borrowed pointers, copied struct */
    /*
     * The file's writer, owned: rendered here, written by a worker (a
     * rename beside the store can wait behind its fsyncs; bgwrite.h).
     */
    struct bgwrite *out;
};

/* Render the figures now; last: the final write, which frees out. */
static void
textfile_write(struct metrics_textfile *t, int last)
{
    struct metrics m;
    struct tc_buf b;
    int rc;

    metrics_collect(&m, &t->src);
    tc_buf_init(&b, METRICS_RENDER_MAX);
    rc = metrics_render(&m, &b);
    if (rc < 0)
        log_warnx("metrics: cannot render: %s", strerror(-rc));
    if (last) {
        bgwrite_close(t->out, rc == 0 ? tc_buf_head(&b) : NULL,
                      tc_buf_size(&b));
        t->out = NULL; /* it frees itself */
    } else if (rc == 0) {
        bgwrite_submit(t->out, tc_buf_head(&b), tc_buf_size(&b));
    }
    tc_buf_close(&b);
}

static void
textfile_cb(uv_timer_t *h)
{
    textfile_write(h->data, 0);
}

struct metrics_textfile *
metrics_textfile_start(uv_loop_t *loop, const struct metrics_sources *src,
                       const char *path)
{
    struct metrics_textfile *t = tc_xcalloc(1, sizeof(*t));

    t->src = *src;
    t->out = bgwrite_new(loop, path, "metrics", metrics_textfile_write);
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    /* Unref'd: it must not keep a stopping collector's loop running. */
    uv_unref((uv_handle_t *)&t->timer);
    uv_timer_start(&t->timer, textfile_cb, TEXTFILE_EVERY_MS,
                   TEXTFILE_EVERY_MS);
    textfile_write(t, 0);
    return t;
}

static void
textfile_closed(uv_handle_t *h)
{
    struct metrics_textfile *t = h->data;

    free(t);
}

void
metrics_textfile_stop(struct metrics_textfile *t)
{
    if (t == NULL)
        return;
    /* The final figures: what the drain committed. */
    textfile_write(t, 1);
    uv_close((uv_handle_t *)&t->timer, textfile_closed);
}
