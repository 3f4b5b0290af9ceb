/*
 * metrics: histograms, the text exposition renderer and the textfile
 * (metrics.h). No libuv, no store: the HTTP API and tocsinctl use it
 * as it is; metrics_collect.c fills a snapshot in the daemon.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "looplag.h"
#include "util.h"

/* The bounds in µs, and as the le label writes them (seconds). */
static const uint64_t bounds_us[METRICS_NBOUNDS] = {
    100,    500,    1000,   2500,    5000,    10000,   25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bounds_le[METRICS_NBOUNDS] = {
    "0.0001", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",
};

void
metrics_hist_observe(struct metrics_hist *h, uint64_t ns)
{
    size_t i = 0;

    /* "le": a value equal to a bound belongs to that bound's bucket. */
    while (i < METRICS_NBOUNDS && ns > bounds_us[i] * 1000)
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_ns += ns;
}

void
metrics_hist_add(struct metrics_hist *to, const struct metrics_hist *from)
{
    for (size_t i = 0; i <= METRICS_NBOUNDS; i++)
        to->bucket[i] += from->bucket[i];
    to->count += from->count;
    to->sum_ns += from->sum_ns;
}

void
metrics_hist_from_looplag(struct metrics_hist *out,
                          const struct looplag_hist *lag)
{
    size_t b = 0;

    memset(out, 0, sizeof(*out));
    /*
     * Each probe bucket [lo, top) lies inside one of ours, since every
     * bound of ours is a top of the probe's (a lag exactly at a bound
     * counts one bucket up: its resolution is 1 ms anyway).
     */
    for (size_t i = 0; i < LOOPLAG_NBUCKETS; i++) {
        uint64_t top = looplag_bucket_top(i);

        while (b < METRICS_NBOUNDS && top > bounds_us[b])
            b++;
        out->bucket[b] += lag->bucket[i];
    }
    out->count = lag->n;
    out->sum_ns = lag->sum_us * 1000;
}

int
metrics_escape_label(struct tc_buf *out, const char *v)
{
    size_t mark = out->len;

    for (; *v != '\0'; v++) {
        const char *esc = *v == '\\'   ? "\\\\"
                          : *v == '"'  ? "\\\""
                          : *v == '\n' ? "\\n"
                                       : NULL;
        int rc = esc ? tc_buf_append(out, esc, 2) : tc_buf_append(out, v, 1);

        if (rc < 0) {
            out->len = mark;
            return rc;
        }
    }
    return 0;
}

/* The renderer stops at the first error; every step checks r->rc. */
struct rend {
    struct tc_buf *out;
    int rc;
};

static void
put(struct rend *r, const char *s)
{
    if (r->rc == 0)
        r->rc = tc_buf_append(r->out, s, strlen(s));
}

static void
family(struct rend *r, const char *name, const char *type, const char *help)
{
    /* Our own words: the format asks \ and newline escaped in HELP. */
    if (r->rc == 0)
        r->rc = tc_buf_printf(r->out, "# HELP %s %s\n# TYPE %s %s\n", name,
                              help, name, type);
}

/*
 * One sample: name{k1="v1",k2="v2"} value. nl labels from k and v (v
 * escaped); extra is a pre-formatted label (le="...") or NULL.
 */
static void
sample(struct rend *r, const char *name, size_t nl, const char *const *k,
       const char *const *v, const char *extra, uint64_t value)
{
    put(r, name);
    if (nl > 0 || extra != NULL) {
        put(r, "{");
        for (size_t i = 0; i < nl; i++) {
            if (i > 0)
                put(r, ",");
            put(r, k[i]);
            put(r, "=\"");
            if (r->rc == 0)
                r->rc = metrics_escape_label(r->out, v[i]);
            put(r, "\"");
        }
        if (extra != NULL) {
            if (nl > 0)
                put(r, ",");
            put(r, extra);
        }
        put(r, "}");
    }
    if (r->rc == 0)
        r->rc = tc_buf_printf(r->out, " %" PRIu64 "\n", value);
}

static void
scalar(struct rend *r, const char *name, const char *type, const char *help,
       uint64_t value)
{
    family(r, name, type, help);
    sample(r, name, 0, NULL, NULL, NULL, value);
}

/* ns as decimal seconds, exact: 1.000000500 */
static void
seconds(struct rend *r, const char *name, int64_t ns)
{
    const char *sign = ns < 0 ? "-" : "";
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;

    if (r->rc == 0)
        r->rc = tc_buf_printf(r->out, "%s %s%" PRIu64 ".%09" PRIu64 "\n", name,
                              sign, a / 1000000000u, a % 1000000000u);
}

static void
histogram(struct rend *r, const char *name, const char *help,
          const struct metrics_hist *h)
{
    char n[128], le[32];
    uint64_t cum = 0;

    family(r, name, "histogram", help);
    snprintf(n, sizeof(n), "%s_bucket", name);
    for (size_t i = 0; i <= METRICS_NBOUNDS; i++) {
        cum += h->bucket[i];
        snprintf(le, sizeof(le), "le=\"%s\"",
                 i < METRICS_NBOUNDS ? bounds_le[i] : "+Inf");
        sample(r, n, 0, NULL, NULL, le, cum);
    }
    snprintf(n, sizeof(n), "%s_sum", name);
    seconds(r, n, (int64_t)h->sum_ns);
    snprintf(n, sizeof(n), "%s_count", name);
    sample(r, n, 0, NULL, NULL, NULL, h->count);
}

static const char *const origin_names[METRICS_ORIGIN_N] = {"agent",
                                                           "collector"};
static const char *const incident_states[METRICS_INCIDENT_STATES] = {
    "open", "acknowledged", "resolved"};
static const char *const prio_names[METRICS_PRIORITIES] = {"P1", "P2", "P3",
                                                           "P4", "P5"};
static const char *const problem_states[METRICS_PROBLEM_STATES] = {
    "open", "investigating", "known_error", "resolved"};

int
metrics_render(const struct metrics *m, struct tc_buf *out)
{
    struct rend r = {.out = out, .rc = 0};
    static const char *const k_origin[] = {"origin"};
    static const char *const k_sp[] = {"state", "priority"};
    static const char *const k_state[] = {"state"};
    static const char *const k_reason[] = {"reason"};

    family(&r, "tocsin_collector_start_time_seconds", "gauge",
           "When the collector started, seconds since the Unix epoch.");
    seconds(&r, "tocsin_collector_start_time_seconds", m->start_ns);

    scalar(&r, "tocsin_events_received_total", "counter",
           "Events received from agents in EVENTS frames (stored or "
           "deduplicated).",
           m->events_received);
    family(&r, "tocsin_events_stored_total", "counter",
           "Events committed to the store, by origin (agent, or the "
           "collector's own events about agents).");
    for (size_t i = 0; i < METRICS_ORIGIN_N; i++)
        sample(&r, "tocsin_events_stored_total", 1, k_origin, &origin_names[i],
               NULL, m->events_stored[i]);
    scalar(&r, "tocsin_events_deduplicated_total", "counter",
           "Events dropped as already received (a replay after a "
           "reconnect).",
           m->events_deduplicated);

    scalar(&r, "tocsin_agents_connected", "gauge",
           "Agents with a session past HELLO.", m->agents_connected);
    scalar(&r, "tocsin_agents_known", "gauge",
           "Agents the collector knows (connected or not).", m->agents_known);
    scalar(&r, "tocsin_connections", "gauge",
           "Agent connections open, before or after HELLO.", m->connections);

    scalar(&r, "tocsin_pipeline_queue_events", "gauge",
           "Events accepted and not yet committed (queued or in the "
           "commit running).",
           m->queue_events);
    scalar(&r, "tocsin_pipeline_queue_bytes", "gauge",
           "Bytes of those events (limits.pipeline_max_bytes bounds it).",
           m->queue_bytes);
    scalar(&r, "tocsin_store_commits_total", "counter",
           "Group commits of the event log.", m->commits);
    scalar(&r, "tocsin_store_commit_failures_total", "counter",
           "Group commit attempts that failed (each is retried).",
           m->commit_failures);
    histogram(&r, "tocsin_store_commit_duration_seconds",
              "Duration of a group commit (one SQLite transaction, fsync "
              "included).",
              &m->commit);
    histogram(&r, "tocsin_engine_step_duration_seconds",
              "Duration of one engine step (read batches, decide, write the "
              "incident and problem tables).",
              &m->step);
    histogram(&r, "tocsin_event_loop_lag_seconds",
              "How late the event loop ran a 50 ms timer.", &m->looplag);

    if (m->census) {
        family(&r, "tocsin_incidents", "gauge",
               "Incidents not closed, by state and priority.");
        for (size_t s = 0; s < METRICS_INCIDENT_STATES; s++)
            for (size_t p = 0; p < METRICS_PRIORITIES; p++) {
                const char *v[] = {incident_states[s], prio_names[p]};

                sample(&r, "tocsin_incidents", 2, k_sp, v, NULL,
                       m->incidents[s][p]);
            }
        family(&r, "tocsin_problems", "gauge",
               "Problems not closed, by state.");
        for (size_t s = 0; s < METRICS_PROBLEM_STATES; s++)
            sample(&r, "tocsin_problems", 1, k_state, &problem_states[s], NULL,
                   m->problems[s]);
        scalar(&r, "tocsin_hints_pending", "gauge",
               "Hints decided and not yet acknowledged by their agent.",
               m->hints_pending);
    }
    scalar(&r, "tocsin_hints_decided_total", "counter",
           "Hints the engine decided (one per agent).", m->hints_decided);
    scalar(&r, "tocsin_hints_sent_total", "counter",
           "HINT frames sent to agents, resends after a reconnect included.",
           m->hints_sent);
    scalar(&r, "tocsin_hints_acked_total", "counter",
           "HINT_ACKs received from agents.", m->hints_acked);

    family(&r, "tocsin_tls_handshake_failures_total", "counter",
           "Agent TLS handshakes that failed, by class of reason.");
    for (int f = TC_TLS_FAIL_NONE + 1; f < TC_TLS_FAIL_N; f++) {
        const char *v = tc_tls_fail_name((enum tc_tls_fail)f);

        sample(&r, "tocsin_tls_handshake_failures_total", 1, k_reason, &v, NULL,
               m->tls_failures[f]);
    }
    scalar(&r, "tocsin_protocol_errors_total", "counter",
           "Agent sessions closed for bad input.", m->protocol_errors);
    scalar(&r, "tocsin_session_timeouts_total", "counter",
           "Agent sessions closed by the handshake (HELLO) or idle timeout.",
           m->session_timeouts);
    return r.rc;
}

int
metrics_textfile_path(char *buf, size_t len, const char *store_path)
{
    int n = snprintf(buf, len, "%s-metrics.prom", store_path);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
metrics_textfile_write(const char *path, const void *text, size_t len)
{
    char tmp[4096];
    int fd, rc = 0;
    ssize_t w;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    w = write(fd, text, len);
    if (w < 0 || (size_t)w != len)
        rc = w < 0 ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    /* No fsync: live figures, worthless after a crash (as the stats). */
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int
metrics_textfile_read(const char *path, struct tc_buf *out, int64_t *age_ns,
                      const char **why)
{
    static const char head[] = "# HELP tocsin_";
    char buf[8192];
    struct stat sb;
    size_t total = 0;
    int fd, rc = 0;

    *why = NULL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        *why = "not a regular file";
        rc = -EBADMSG;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > METRICS_RENDER_MAX) {
            *why = "larger than 64 KiB";
            rc = -EBADMSG;
            goto out;
        }
        for (ssize_t i = 0; i < n; i++) {
            /* Ours is ASCII: anything else is not our file. */
            if (buf[i] != '\n' && (buf[i] < 0x20 || buf[i] > 0x7e)) {
                *why = "a byte that is not printable ASCII";
                rc = -EBADMSG;
                goto out;
            }
        }
        if ((rc = tc_buf_append(out, buf, (size_t)n)) < 0)
            goto out;
    }
    if (tc_buf_size(out) < sizeof(head) - 1 ||
        memcmp(tc_buf_head(out), head, sizeof(head) - 1) != 0 ||
        tc_buf_head(out)[tc_buf_size(out) - 1] != '\n') {
        *why = "not a tocsin metrics file";
        rc = -EBADMSG;
        goto out;
    }
    *age_ns = tc_now_ns() -
              ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
out:
    close(fd);
    return rc;
}
