/*
 * metrics: the collector's Prometheus metrics (docs/metrics.md lists
 * them; docs/internals/metrics.md says where each number comes from).
 *
 * A fixed registry: struct metrics is one snapshot of every metric,
 * plain integers, filled on the loop thread by metrics_collect from the
 * counters the modules keep anyway (server_stats, ingest_stats, the
 * runner's, the hint sender's, the loop-lag probe's histogram), and
 * rendered by metrics_render in the text exposition format 0.0.4. The
 * labels come only from small fixed enums (origin, state, priority,
 * TLS failure class), never from what a peer sent, so the number of
 * series is bounded whatever the agents do (docs/security.md).
 *
 * Until the HTTP API serves GET /metrics, the collector writes the
 * rendering to STORE_PATH-metrics.prom once a second (temp file and
 * rename, 0600 like the stats file) and tocsinctl metrics prints it.
 */
#ifndef TOCSIN_COLLECTOR_METRICS_H
#define TOCSIN_COLLECTOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "tls.h"

struct looplag_hist;

/*
 * Histogram buckets, upper bounds in seconds: 0.1 ms to 10 s, plus
 * +Inf. Every bound is also a bucket edge of the loop-lag histogram
 * (looplag.h), so that one is exported exactly, not kept twice.
 */
#define METRICS_NBOUNDS 15

/* Observations in ns; buckets not cumulative (the renderer sums). */
struct metrics_hist {
    uint64_t bucket[METRICS_NBOUNDS + 1]; /* the last one is +Inf */
    uint64_t count;
    uint64_t sum_ns;
};

void metrics_hist_observe(struct metrics_hist *h, uint64_t ns);
/* to += from (a worker's local histogram merged on the loop thread). */
void metrics_hist_add(struct metrics_hist *to, const struct metrics_hist *from);
/* The loop-lag probe's histogram (µs buckets) in these buckets. */
void metrics_hist_from_looplag(struct metrics_hist *out,
                               const struct looplag_hist *lag);

enum metrics_origin {
    METRICS_ORIGIN_AGENT = 0,     /* events agents sent */
    METRICS_ORIGIN_COLLECTOR = 1, /* the collector's own (agent silent) */
};
#define METRICS_ORIGIN_N 2
/* open, acknowledged, resolved (closed incidents are not in memory) */
#define METRICS_INCIDENT_STATES 3
#define METRICS_PRIORITIES 5
/* open, investigating, known_error, resolved */
#define METRICS_PROBLEM_STATES 4

/* One snapshot; counters since the collector started. */
struct metrics {
    int64_t start_ns;             /* process start, ns since the epoch */
    uint64_t events_received;     /* in EVENTS frames: queued + dups */
    uint64_t events_deduplicated; /* already queued or stored: dropped */
    uint64_t events_stored[METRICS_ORIGIN_N]; /* committed */
    uint64_t agents_connected;                /* sessions past HELLO */
    uint64_t agents_known;                    /* in the registry */
    uint64_t connections;                     /* TCP connections open */
    uint64_t queue_events; /* pipeline: queued + in the commit */
    uint64_t queue_bytes;
    uint64_t commits;            /* successful group commits */
    uint64_t commit_failures;    /* failed attempts */
    struct metrics_hist commit;  /* group commit durations */
    struct metrics_hist step;    /* engine step durations */
    struct metrics_hist looplag; /* event-loop lag */
    /*
     * The census (incidents, problems, hints pending) is taken by the
     * engine runner about once a second, off the loop; 0 until the
     * first one, and then those families are left out.
     */
    int census;
    uint64_t incidents[METRICS_INCIDENT_STATES][METRICS_PRIORITIES];
    uint64_t problems[METRICS_PROBLEM_STATES];
    uint64_t hints_pending; /* decided, not acked by their agent */
    uint64_t hints_decided; /* by the engine steps of this run */
    uint64_t hints_sent;    /* HINT frames sent, resends included */
    uint64_t hints_acked;   /* HINT_ACKs received */
    uint64_t tls_failures[TC_TLS_FAIL_N]; /* by class; [NONE] unused */
    uint64_t protocol_errors;             /* sessions closed for bad input */
    uint64_t session_timeouts; /* handshake (HELLO) or idle timeouts */
};

/*
 * Append m in the Prometheus text format 0.0.4 to out. 0, or -ENOBUFS
 * when out's cap is reached (out then holds a partial rendering: the
 * caller discards it). METRICS_RENDER_MAX is always enough.
 */
#define METRICS_RENDER_MAX (64u * 1024)
int metrics_render(const struct metrics *m, struct tc_buf *out);
/* A label value escaped per the format (\\, \", \n). 0 or -ENOBUFS. */
int metrics_escape_label(struct tc_buf *out, const char *v);

/* "STORE_PATH-metrics.prom" into buf; -ENAMETOOLONG when too long. */
int metrics_textfile_path(char *buf, size_t len, const char *store_path);
/* Atomically (temp file + rename, mode 0600) write text to path. */
int metrics_textfile_write(const char *path, const void *text, size_t len);
/*
 * Read a textfile for tocsinctl: at most METRICS_RENDER_MAX bytes, a
 * regular file (no symlink followed), printable ASCII lines only,
 * starting with "# HELP tocsin_". 0 with out filled and *age_ns its
 * age (from its mtime); -ENOENT; -EBADMSG with *why set; other -errno.
 */
int metrics_textfile_read(const char *path, struct tc_buf *out, int64_t *age_ns,
                          const char **why);

/* ---- the live collector (metrics_collect.c, in tocsin-collector) ---- */

struct server;
struct incident_runner;
struct hint_sender;
struct looplag;

struct metrics_sources {
    struct server *srv;          /* borrowed, all of them */
    struct incident_runner *inc; /* may be NULL */
    struct hint_sender *hs;      /* may be NULL */
    struct looplag *lag;         /* may be NULL */
    int64_t start_ns;
};

/* Fill m from the sources. Loop thread; cheap (no I/O, no lock). */
void metrics_collect(struct metrics *m, const struct metrics_sources *src);

/*
 * Keep path (the textfile) current: rewritten every second by an
 * unref'd timer, and once more at metrics_textfile_stop (which frees
 * the writer when its timer has closed). src is copied.
 */
struct metrics_textfile;
struct metrics_textfile *
metrics_textfile_start(uv_loop_t *loop, const struct metrics_sources *src,
                       const char *path);
void metrics_textfile_stop(struct metrics_textfile *t);

#endif
