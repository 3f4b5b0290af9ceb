/*
 * looplag: how late the collector's event loop runs its timers. A
 * stall (a long callback, a blocking call on the loop) delays every
 * session, ack and engine kick behind it, so the collector measures
 * it all the time, not only in a benchmark: a uv_timer every 50 ms
 * notes how much later than due it fired, into a histogram kept since
 * start (its maximum, p50, p99), and logs a warning (at most one per
 * 10 s) when one stall exceeds 100 ms.
 *
 * The figures leave the process through a small stats file beside the
 * store (STORE_PATH-stats, 0600, rewritten once a second with a rename),
 * which tocsinctl stats reads; the Prometheus metrics export the
 * histogram itself (looplag_hist, metrics.h).
 * docs/internals/collector.md, "Loop lag".
 */
#ifndef TOCSIN_COLLECTOR_LOOPLAG_H
#define TOCSIN_COLLECTOR_LOOPLAG_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define LOOPLAG_INTERVAL_MS 50
/* A stall above this is logged (and counted in stalls). */
#define LOOPLAG_WARN_US 100000
/* At most one warning per this many ns; the others are counted. */
#define LOOPLAG_WARN_EVERY_NS 10000000000LL

/*
 * Buckets in microseconds: 100 µs steps below 10 ms, 1 ms steps to
 * 100 ms, 10 ms steps to 1 s, 100 ms steps to 10 s, then one bucket for
 * everything longer. A quantile is the upper bound of its bucket, so it
 * is never below the truth and at most one step above it.
 */
#define LOOPLAG_NBUCKETS (100 + 90 + 90 + 90 + 1)

struct looplag_hist {
    uint64_t n;      /* samples */
    uint64_t max_us; /* the longest lag seen, exact */
    uint64_t stalls; /* samples above LOOPLAG_WARN_US */
    uint64_t sum_us; /* all lags added up (the metrics' _sum) */
    uint64_t bucket[LOOPLAG_NBUCKETS];
};

void looplag_hist_add(struct looplag_hist *h, uint64_t lag_us);
/* Upper bound (µs, exclusive) of bucket i; UINT64_MAX for the last. */
uint64_t looplag_bucket_top(size_t i);
/*
 * The q-quantile (0 < q <= 1) in µs: the upper bound of the bucket that
 * holds it, capped at max_us (so p100 is the exact maximum). 0 with no
 * samples.
 */
uint64_t looplag_hist_quantile(const struct looplag_hist *h, double q);

/* What tocsinctl and /metrics show; times in µs, ns since the epoch. */
struct looplag_stats {
    int64_t pid;
    int64_t started_ns; /* wall clock at looplag_start */
    int64_t updated_ns; /* wall clock when these figures were taken */
    uint64_t interval_ms;
    uint64_t samples;
    uint64_t max_us;
    uint64_t p50_us;
    uint64_t p99_us;
    uint64_t stalls; /* lags above 100 ms */
    /*
     * The longest lag since the file was last written (about the last
     * second): a gauge that a reader sampling the file turns into the
     * maximum over a period of its choice (bench/storm: the storm
     * without its ramp).
     */
    uint64_t recent_max_us;
};

struct looplag;

/*
 * Start the probe on loop. stats_path: the stats file to keep current
 * (NULL: none). 0 or a negative errno.
 */
int looplag_start(uv_loop_t *loop, const char *stats_path,
                  struct looplag **out);
void looplag_get(const struct looplag *l, struct looplag_stats *out);
/* The histogram since start (for /metrics); valid while l is. */
const struct looplag_hist *looplag_hist(const struct looplag *l);
/* Write the file a last time and close the timer; frees l. NULL: no-op. */
void looplag_stop(struct looplag *l);

/* "STORE_PATH-stats" into buf; -ENAMETOOLONG when it does not fit. */
int looplag_stats_path(char *buf, size_t len, const char *store_path);
/* Atomically (temp file + rename) write st to path. 0 or -errno. */
int looplag_stats_write(const char *path, const struct looplag_stats *st);
/*
 * Read a stats file: 0, -ENOENT when there is none, -EBADMSG when it is
 * not one (why: a static reason), other -errno on read errors. The file
 * is input from disk: it must be at most 4 KiB, start with the format
 * line, and every known key must hold a decimal number in range.
 */
int looplag_stats_read(const char *path, struct looplag_stats *out,
                       const char **why);

#endif
