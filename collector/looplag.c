/*
 * looplag: the event-loop lag probe (looplag.h) and its stats file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bgwrite.h"
#include "looplag.h"
#include "log.h"
#include "util.h"

#define STATS_MAGIC "tocsin-collector-stats 1"
#define STATS_MAX 4096
/* The file is rewritten at most this often (a rename on the loop). */
#define STATS_EVERY_NS 1000000000LL

struct looplag {
    uv_loop_t *loop; /* borrowed */
    uv_timer_t timer;
    struct looplag_hist hist;
    uint64_t due_ns;      /* monotonic ns the timer is due next */
    int64_t cpu_ns;       /* the loop thread's CPU time at the last fire */
    int64_t started_ns;   /* wall clock */
    int64_t written_mono; /* monotonic ns of the last file write */
    int64_t warned_mono;  /* monotonic ns of the last warning, 0 = none */
    uint64_t quiet;       /* stalls over 100 ms not logged since */
    uint64_t quiet_max;   /* the longest of them, µs */
    uint64_t recent_max;  /* the longest lag since the last write, µs */
    /* The stats file's writer (off the loop), owned; NULL = none. */
    struct bgwrite *out;
};

/* Bucket index and its upper bound (µs) for a lag. */
static size_t
bucket_of(uint64_t us)
{
    if (us < 10000)
        return (size_t)(us / 100);
    if (us < 100000)
        return 100 + (size_t)((us - 10000) / 1000);
    if (us < 1000000)
        return 190 + (size_t)((us - 100000) / 10000);
    if (us < 10000000)
        return 280 + (size_t)((us - 1000000) / 100000);
    return LOOPLAG_NBUCKETS - 1;
}

static uint64_t
bucket_top(size_t i)
{
    if (i < 100)
        return (uint64_t)(i + 1) * 100;
    if (i < 190)
        return 10000 + (uint64_t)(i - 99) * 1000;
    if (i < 280)
        return 100000 + (uint64_t)(i - 189) * 10000;
    if (i < 370)
        return 1000000 + (uint64_t)(i - 279) * 100000;
    return UINT64_MAX;
}

uint64_t
looplag_bucket_top(size_t i)
{
    return bucket_top(i);
}

void
looplag_hist_add(struct looplag_hist *h, uint64_t lag_us)
{
    h->n++;
    h->sum_us += lag_us;
    h->bucket[bucket_of(lag_us)]++;
    if (lag_us > h->max_us)
        h->max_us = lag_us;
    if (lag_us > LOOPLAG_WARN_US)
        h->stalls++;
}

uint64_t
looplag_hist_quantile(const struct looplag_hist *h, double q)
{
    uint64_t want, seen = 0;

    if (h->n == 0)
        return 0;
    /* The smallest bucket holding at least ceil(q * n) samples. */
    want = (uint64_t)(q * (double)h->n);
    if ((double)want < q * (double)h->n)
        want++;
    if (want == 0)
        want = 1;
    for (size_t i = 0; i < LOOPLAG_NBUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= want) {
            uint64_t top = bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}

void
looplag_get(const struct looplag *l, struct looplag_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->pid = (int64_t)getpid();
    out->started_ns = l->started_ns;
    out->updated_ns = tc_now_ns();
    out->interval_ms = LOOPLAG_INTERVAL_MS;
    out->samples = l->hist.n;
    out->max_us = l->hist.max_us;
    out->p50_us = looplag_hist_quantile(&l->hist, 0.50);
    out->p99_us = looplag_hist_quantile(&l->hist, 0.99);
    out->stalls = l->hist.stalls;
    out->recent_max_us = l->recent_max;
}

const struct looplag_hist *
looplag_hist(const struct looplag *l)
{
    return &l->hist;
}

int
looplag_stats_path(char *buf, size_t len, const char *store_path)
{
    int n = snprintf(buf, len, "%s-stats", store_path);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
looplag_stats_write(const char *path, const struct looplag_stats *st)
{
    char tmp[4096], text[STATS_MAX];
    int fd = -1, n, rc = 0;
    ssize_t w;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    n = snprintf(text, sizeof(text),
                 STATS_MAGIC "\n"
                             "pid %" PRId64 "\n"
                             "started %" PRId64 "\n"
                             "updated %" PRId64 "\n"
                             "loop_lag_interval_ms %" PRIu64 "\n"
                             "loop_lag_samples %" PRIu64 "\n"
                             "loop_lag_max_us %" PRIu64 "\n"
                             "loop_lag_p50_us %" PRIu64 "\n"
                             "loop_lag_p99_us %" PRIu64 "\n"
                             "loop_lag_stalls %" PRIu64 "\n"
                             "loop_lag_recent_max_us %" PRIu64 "\n",
                 st->pid, st->started_ns, st->updated_ns, st->interval_ms,
                 st->samples, st->max_us, st->p50_us, st->p99_us, st->stalls,
                 st->recent_max_us);
    if (n < 0 || n >= (int)sizeof(text))
        return -EOVERFLOW;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    w = write(fd, text, (size_t)n);
    if (w != n)
        rc = w < 0 ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    /* No fsync: the figures are live state, worthless after a crash. */
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* A decimal number from 0 to INT64_MAX (fits both int64 and uint64). */
static int
parse_num(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9' || v > ((uint64_t)INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (i == 0)
        return -1;
    *out = v;
    return 0;
}

int
looplag_stats_read(const char *path, struct looplag_stats *out,
                   const char **why)
{
    static const char *const keys[] = {
        "pid",
        "started",
        "updated",
        "loop_lag_interval_ms",
        "loop_lag_samples",
        "loop_lag_max_us",
        "loop_lag_p50_us",
        "loop_lag_p99_us",
        "loop_lag_stalls",
        "loop_lag_recent_max_us",
    };
    enum { NKEYS = sizeof(keys) / sizeof(keys[0]) };
    uint64_t val[NKEYS] = {0};
    unsigned have = 0;
    char text[STATS_MAX + 2], *line, *next;
    struct stat sb;
    size_t len = 0;
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
    /* One byte more than allowed tells a file that is too large. */
    while (len < sizeof(text) - 1) {
        ssize_t r = read(fd, text + len, sizeof(text) - 1 - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > STATS_MAX) {
        *why = "larger than 4 KiB";
        rc = -EBADMSG;
        goto out;
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        *why = "NUL byte";
        rc = -EBADMSG;
        goto out;
    }
    line = text;
    next = strchr(line, '\n');
    if (next == NULL || (size_t)(next - line) != strlen(STATS_MAGIC) ||
        strncmp(line, STATS_MAGIC, strlen(STATS_MAGIC)) != 0) {
        *why = "no '" STATS_MAGIC "' line";
        rc = -EBADMSG;
        goto out;
    }
    for (line = next + 1; *line != '\0'; line = next + 1) {
        char *sp;
        uint64_t v;

        next = strchr(line, '\n');
        if (next == NULL) {
            *why = "unterminated line";
            rc = -EBADMSG;
            goto out;
        }
        *next = '\0';
        sp = strchr(line, ' ');
        if (sp == NULL || parse_num(sp + 1, &v) < 0) {
            *why = "a line is not 'key number'";
            rc = -EBADMSG;
            goto out;
        }
        *sp = '\0';
        /* Unknown keys are a newer collector's: skipped. */
        for (unsigned k = 0; k < NKEYS; k++) {
            if (strcmp(line, keys[k]) == 0) {
                if (have & (1u << k)) {
                    *why = "a key appears twice";
                    rc = -EBADMSG;
                    goto out;
                }
                have |= 1u << k;
                val[k] = v;
            }
        }
    }
    if (have != (1u << NKEYS) - 1) {
        *why = "a key is missing";
        rc = -EBADMSG;
        goto out;
    }
    memset(out, 0, sizeof(*out));
    out->pid = (int64_t)val[0];
    out->started_ns = (int64_t)val[1];
    out->updated_ns = (int64_t)val[2];
    out->interval_ms = val[3];
    out->samples = val[4];
    out->max_us = val[5];
    out->p50_us = val[6];
    out->p99_us = val[7];
    out->stalls = val[8];
    out->recent_max_us = val[9];
out:
    close(fd);
    return rc;
}

/* bgwrite_fn: on a worker, the figures taken on the loop. */
static int
stats_fn(const char *path, const void *data, size_t len)
{
    (void)len;
    return looplag_stats_write(path, data);
}

/*
 * The figures now, written by a worker: a rename beside the store can
 * wait behind the store's fsyncs, and must not stall what it measures.
 */
static void
write_stats(struct looplag *l, int last)
{
    struct looplag_stats st;

    if (l->out == NULL)
        return;
    looplag_get(l, &st);
    l->recent_max = 0;
    if (last) {
        bgwrite_close(l->out, &st, sizeof(st));
        l->out = NULL;
    } else {
        bgwrite_submit(l->out, &st, sizeof(st));
    }
}

/* CPU time of the calling (loop) thread, ns; 0 if unknown. */
static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
probe_cb(uv_timer_t *t)
{
    struct looplag *l = t->data;
    uint64_t now = uv_hrtime();
    uint64_t lag = now > l->due_ns ? (now - l->due_ns) / 1000 : 0;
    int64_t mono = tc_mono_ns(), cpu = thread_cpu_ns();
    /*
     * The loop thread's CPU time over the interval tells a long
     * callback (CPU close to the lag) from a blocking call or a machine
     * too busy to run us (CPU far below it).
     */
    int64_t used_ms = (cpu - l->cpu_ns) / 1000000;

    /*
     * libuv re-arms a repeating timer from the loop time of this
     * iteration (ms), so that is when the next one is due; measured
     * against it, a lag is the time the loop spent elsewhere.
     */
    l->due_ns = (uv_now(l->loop) + LOOPLAG_INTERVAL_MS) * 1000000ULL;
    l->cpu_ns = cpu;
    looplag_hist_add(&l->hist, lag);
    if (lag > l->recent_max)
        l->recent_max = lag;
    if (lag > LOOPLAG_WARN_US) {
        if (l->warned_mono == 0 ||
            mono - l->warned_mono >= LOOPLAG_WARN_EVERY_NS) {
            if (l->quiet > 0)
                log_warnx("event loop stalled %" PRIu64 " ms (timer due "
                          "every %d ms; the loop thread ran %" PRId64
                          " ms of CPU since the last one); %" PRIu64
                          " more stalls over 100 ms since the last "
                          "warning, the longest %" PRIu64 " ms",
                          lag / 1000, LOOPLAG_INTERVAL_MS, used_ms, l->quiet,
                          l->quiet_max / 1000);
            else
                log_warnx("event loop stalled %" PRIu64 " ms (timer due "
                          "every %d ms; the loop thread ran %" PRId64
                          " ms of CPU since the last one)",
                          lag / 1000, LOOPLAG_INTERVAL_MS, used_ms);
            l->warned_mono = mono;
            l->quiet = l->quiet_max = 0;
        } else {
            l->quiet++;
            if (lag > l->quiet_max)
                l->quiet_max = lag;
        }
    }
    if (mono - l->written_mono >= STATS_EVERY_NS) {
        l->written_mono = mono;
        write_stats(l, 0);
    }
}

int
looplag_start(uv_loop_t *loop, const char *stats_path, struct looplag **out)
{
    struct looplag *l = tc_xcalloc(1, sizeof(*l));

    l->loop = loop;
    l->started_ns = tc_now_ns();
    l->written_mono = tc_mono_ns();
    if (stats_path != NULL)
        l->out = bgwrite_new(loop, stats_path, "loop stats", stats_fn);
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    /* Unref'd: the probe alone must not keep a stopping loop running. */
    uv_unref((uv_handle_t *)&l->timer);
    uv_update_time(loop);
    l->due_ns = (uv_now(loop) + LOOPLAG_INTERVAL_MS) * 1000000ULL;
    l->cpu_ns = thread_cpu_ns();
    uv_timer_start(&l->timer, probe_cb, LOOPLAG_INTERVAL_MS,
                   LOOPLAG_INTERVAL_MS);
    write_stats(l, 0);
    *out = l;
    return 0;
}

static void
close_cb(uv_handle_t *h)
{
    struct looplag *l = h->data;

    free(l);
}

void
looplag_stop(struct looplag *l)
{
    if (l == NULL)
        return;
    /* The writer frees itself once this last write is done. */
    write_stats(l, 1);
    uv_close((uv_handle_t *)&l->timer, close_cb);
}
