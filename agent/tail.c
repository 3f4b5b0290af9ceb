/*
 * tail: read passes over the configured files; see tail.h.
 *
 * Memory is fixed after the first passes: one shared read buffer of
 * max_line_bytes + read_max_bytes, one partial-line buffer of
 * max_line_bytes per file, and the event and field arrays of a pass,
 * which grow to the most matches seen in one pass and are then reused.
 * Nothing is allocated per line and no system call is made per line.
 *
 * A line longer than max_line_bytes keeps its first max_line_bytes in
 * the file's partial-line buffer while the rest is read and dropped
 * until its newline turns up; only then is it matched, spooled and the
 * offset moved past it. So an over-long line is handled exactly like any
 * other across restarts: re-read from its start, cut the same way.
 */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Repeated warnings about one file are logged at most this often. */
#define TAIL_WARN_INTERVAL_NS (60 * (int64_t)1000000000)

struct tail_file {
    struct tail *t;                /* owner */
    const struct agent_file *conf; /* borrowed from the config */
    struct rules *rules;           /* borrowed */
    char *dir;                     /* owned: directory that is watched */
    const char *base;              /* the file's name, inside conf->path */
    uv_fs_event_t watch;           /* inotify on dir; closed by tail_stop */
    int watching;                  /* 1 while watch is started */
    int fd;                        /* the open file, -1 while waiting */
    uint64_t dev, ino;             /* identity of fd */
    uint64_t offset;               /* start of the first unspooled line */
    uint64_t head_hash;            /* spool_head_hash of the head ... */
    uint32_t head_len;             /* ... of this many bytes */
    struct spool_file stored;      /* the position last committed */
    char *rem;                     /* owned, max_line bytes: the head of
                                    * the partial line after offset */
    size_t rem_len;                /* bytes in rem */
    uint64_t skip;                 /* bytes of that line past rem, read
                                    * and dropped (over-long line) */
    int pending;                   /* 1: wants a read pass */
    int replaced;                  /* 1: path names another file now;
                                    * read fd to EOF, then switch */
    int open_logged;               /* 1: "cannot open" was logged */
    uint64_t cut;                  /* lines over max_line, cut */
    uint64_t errors_seen;          /* rules_errors() already logged */
    uint64_t cut_seen;             /* cut lines already logged */
    int64_t warned_ns;             /* mono time of the last such log */
};

struct tail {
    uv_loop_t *loop;                /* borrowed */
    const struct agent_config *cfg; /* borrowed */
    struct spool *spool;            /* borrowed */
    struct tc_str host;             /* borrowed: agent name for events */
    void (*on_spooled)(void *arg);  /* may be NULL */
    void *arg;
    struct tail_file *files; /* owned; nfiles entries */
    size_t nfiles;
    uv_idle_t idle;       /* runs passes while any is pending */
    uv_timer_t poll;      /* poll_interval_ms fallback */
    char *buf;            /* owned: max_line + read_max bytes */
    size_t read_max;      /* bytes read per pass, from config */
    size_t max_line;      /* longer lines are cut, bytes */
    struct tc_event *evs; /* owned: a pass's events */
    size_t nevs, evcap;
    struct tc_kv *kvs; /* owned: their fields, in order */
    size_t nkvs, kvcap;
    int64_t pass_ts; /* wall clock of the current pass, ns */
    struct tail_stats stats;
    int started; /* 1 after tail_start initialised the
                  * handles */
    int stopping;
    int closing; /* handles whose close is pending */
    void (*on_stopped)(void *arg);
    void *stop_arg;
};

static void tail_schedule(struct tail_file *f);

/*
 * The file's head: the hash of its first min(size, SPOOL_HEAD_MAX)
 * bytes tells it from another file that got the same inode later, and
 * a head that changed under an open file means it was truncated and
 * written again between two passes (copytruncate), which its size
 * alone does not show. Returns 1 if the head still matches (growing it
 * up to SPOOL_HEAD_MAX), 0 if it changed, or a negative errno.
 */
static int
tail_check_head(struct tail_file *f, uint64_t size)
{
    char head[SPOOL_HEAD_MAX];
    size_t want = size < SPOOL_HEAD_MAX ? (size_t)size : SPOOL_HEAD_MAX;
    ssize_t n;

    if (want == 0)
        return f->head_len == 0;
    do
        n = pread(f->fd, head, want, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n < f->head_len ||
        spool_head_hash(head, f->head_len) != f->head_hash)
        return 0;
    f->head_len = (uint32_t)n;
    f->head_hash = spool_head_hash(head, (size_t)n);
    return 1;
}

static void
tail_close_fd(struct tail_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->rem_len = 0;
    f->skip = 0;
    f->replaced = 0;
}

/*
 * Open the file. Unless fresh, resume at the spooled offset if the
 * stored identity (device, inode, head hash) is this file's; otherwise
 * read it from the start, as every new file is.
 */
static int
tail_open(struct tail_file *f, int fresh)
{
    const char *path = f->conf->path;
    struct spool_file sf;
    struct stat st;
    char head[SPOOL_HEAD_MAX];
    ssize_t n;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        if (!f->open_logged) {
            if (rc == -ENOENT)
                log_info("%s: does not exist yet; waiting for it", path);
            else
                log_warn("%s: cannot open", path);
            f->open_logged = 1;
        }
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        log_warn("%s: fstat", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        if (!f->open_logged)
            log_warnx("%s: not a regular file; waiting", path);
        f->open_logged = 1;
        close(fd);
        return rc;
    }
    f->open_logged = 0;
    f->fd = fd;
    f->dev = (uint64_t)st.st_dev;
    f->ino = (uint64_t)st.st_ino;
    f->offset = 0;
    f->rem_len = 0;
    f->skip = 0;
    f->replaced = 0;
    memset(&f->stored, 0, sizeof(f->stored));
    do
        n = pread(fd, head, sizeof(head), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        rc = -errno;
        log_warn("%s: read", path);
        tail_close_fd(f);
        return rc;
    }
    f->head_len = (uint32_t)n;
    f->head_hash = spool_head_hash(head, (size_t)n);
    if (fresh) {
        log_info("%s: new file; reading from the start", path);
        return 0;
    }
    rc = spool_file_get(f->t->spool, path, &sf);
    if (rc == -ENOENT) {
        log_info("%s: reading from the start", path);
        return 0;
    }
    if (rc < 0) {
        /* Reading from 0 would spool the file a second time. */
        tail_close_fd(f);
        return rc;
    }
    if (sf.dev == f->dev && sf.ino == f->ino && sf.head_len <= (uint32_t)n &&
        spool_head_hash(head, sf.head_len) == sf.head_hash &&
        sf.offset <= (uint64_t)st.st_size) {
        f->offset = sf.offset;
        f->stored = sf;
        log_info("%s: resuming at offset %" PRIu64, path, f->offset);
    } else if (sf.dev == f->dev && sf.ino == f->ino &&
               sf.offset > (uint64_t)st.st_size) {
        log_warnx("%s: truncated while the agent was down (size %" PRIu64
                  " < offset %" PRIu64 "); reading from the start",
                  path, (uint64_t)st.st_size, sf.offset);
    } else {
        log_info("%s: not the file read before (inode or head changed); "
                 "reading from the start",
                 path);
    }
    return 0;
}

/* Append one event for a matched line to the pass's arrays. */
static void
tail_event(struct tail_file *f, const char *line, size_t len,
           const struct rules_hit *hit)
{
    struct tail *t = f->t;
    struct tc_event *ev;

    if (t->nevs == t->evcap) {
        t->evcap = t->evcap ? 2 * t->evcap : 64;
        t->evs = tc_xreallocarray(t->evs, t->evcap, sizeof(*t->evs));
    }
    if (t->nkvs + hit->nfields > t->kvcap) {
        while (t->nkvs + hit->nfields > t->kvcap)
            t->kvcap = t->kvcap ? 2 * t->kvcap : 64;
        t->kvs = tc_xreallocarray(t->kvs, t->kvcap, sizeof(*t->kvs));
    }
    /* Field values point into the read buffer, which outlives the
     * pass's spool_append; the array is linked up before that call. */
    if (hit->nfields > 0) /* memcpy from NULL is undefined even for 0 */
        memcpy(t->kvs + t->nkvs, hit->fields, hit->nfields * sizeof(*t->kvs));
    t->nkvs += hit->nfields;
    ev = &t->evs[t->nevs++];
    memset(ev, 0, sizeof(*ev));
    ev->ts = t->pass_ts;
    ev->host = t->host;
    ev->kind = tc_str_c("log");
    ev->source = tc_str_c(f->conf->path);
    ev->rule = tc_str_c(hit->rule);
    ev->sev = hit->sev;
    ev->state = -1;
    ev->message.ptr = line;
    ev->message.len = (uint32_t)len;
    ev->count = 1;
    ev->nfields = hit->nfields;
}

/* Match one complete line; full is its length in the file (newline
 * excluded), of which the first min(full, max_line) bytes are at p. */
static void
tail_line(struct tail_file *f, const char *p, uint64_t full)
{
    struct tail *t = f->t;
    struct rules_hit hit;
    size_t len = full > t->max_line ? t->max_line : (size_t)full;

    if (full > t->max_line) {
        f->cut++;
        t->stats.cut++;
    }
    t->stats.lines++;
    if (rules_match(f->rules, p, len, &hit) >= 0) {
        tail_event(f, p, len, &hit);
        t->stats.matched++;
    }
}

/*
 * Split buf (the file's partial line followed by what was just read)
 * into lines and match them. When flush is set (the file is let go) a
 * last line without its newline counts as complete. Returns the bytes
 * consumed from f->offset, and leaves the head of the remaining partial
 * line in f->rem (its dropped tail counted in f->skip).
 */
static uint64_t
tail_split(struct tail_file *f, char *buf, size_t len, int flush)
{
    struct tail *t = f->t;
    char *p = buf, *end = buf + len, *scan, *nl;
    uint64_t consumed = 0, skip = f->skip;
    size_t left, keep;

    /* The partial line was already searched for a newline. */
    scan = buf + f->rem_len;
    while (scan < end && (nl = memchr(scan, '\n', (size_t)(end - scan)))) {
        uint64_t full = (uint64_t)(nl - p) + (p == buf ? skip : 0);
        /* Past max_line, the bytes at p are not the line's continuous
         * text any more (the skipped middle is gone), but only the
         * first max_line of them are used. */
        tail_line(f, p, full);
        consumed += full + 1;
        p = scan = nl + 1;
    }
    left = (size_t)(end - p);
    if (p != buf)
        skip = 0;
    if (flush && (left > 0 || skip > 0)) {
        tail_line(f, p, left + skip);
        consumed += left + skip;
        f->rem_len = 0;
        f->skip = 0;
        return consumed;
    }
    keep = left < t->max_line ? left : t->max_line;
    if (p != f->rem && keep > 0)
        memmove(f->rem, p, keep);
    f->rem_len = keep;
    f->skip = skip + (left - keep);
    return consumed;
}

/* Log a summary of lines cut and match errors, at most once a minute. */
static void
tail_warnings(struct tail_file *f)
{
    struct tail *t = f->t;
    uint64_t errors = rules_errors(f->rules);
    int64_t now;

    if (errors == f->errors_seen && f->cut == f->cut_seen)
        return;
    now = tc_mono_ns();
    if (f->warned_ns != 0 && now - f->warned_ns < TAIL_WARN_INTERVAL_NS)
        return;
    if (errors != f->errors_seen)
        log_warnx("%s: %" PRIu64 " lines were not matched against a rule "
                  "because they hit a match limit (last: %s)",
                  f->conf->path, errors - f->errors_seen,
                  rules_last_error(f->rules));
    if (f->cut != f->cut_seen)
        log_warnx("%s: %" PRIu64 " lines over max_line_bytes (%zu) were cut",
                  f->conf->path, f->cut - f->cut_seen, t->max_line);
    f->errors_seen = errors;
    f->cut_seen = f->cut;
    f->warned_ns = now;
}

/*
 * Spool the pass's events with the file's new position, if anything
 * changed. On failure nothing moved on disk, so the in-memory read
 * position goes back to the committed offset too.
 */
static int
tail_commit(struct tail_file *f, uint64_t consumed)
{
    struct tail *t = f->t;
    struct spool_file pos = {.dev = f->dev,
                             .ino = f->ino,
                             .head_hash = f->head_hash,
                             .head_len = f->head_len,
                             .offset = f->offset + consumed};
    size_t k = 0;
    int rc;

    if (t->nevs == 0 && memcmp(&pos, &f->stored, sizeof(pos)) == 0)
        return 0;
    for (size_t i = 0; i < t->nevs; i++) {
        t->evs[i].fields = t->evs[i].nfields ? t->kvs + k : NULL;
        k += t->evs[i].nfields;
    }
    rc = spool_append(t->spool, t->evs, t->nevs, f->conf->path, &pos);
    if (rc < 0) {
        int64_t now = tc_mono_ns();
        if (f->warned_ns == 0 || now - f->warned_ns >= TAIL_WARN_INTERVAL_NS) {
            log_warnx("%s: cannot spool %zu events: %s; retrying",
                      f->conf->path, t->nevs, strerror(-rc));
            f->warned_ns = now;
        }
        f->rem_len = 0;
        f->skip = 0;
        return rc;
    }
    f->offset = pos.offset;
    f->stored = pos;
    t->stats.bytes += consumed;
    if (consumed > 0)
        t->stats.passes++;
    if (t->nevs > 0 && t->on_spooled != NULL)
        t->on_spooled(t->arg);
    return 0;
}

/*
 * The path names another file (rotated by rename, or replaced): spool
 * the old file's last line, even without its newline, since nobody
 * will finish it, and go on with the new file from its start.
 */
static void
tail_switch(struct tail_file *f)
{
    struct tail *t = f->t;
    uint64_t consumed;

    t->nevs = t->nkvs = 0;
    if (f->rem_len > 0 || f->skip > 0) {
        memcpy(t->buf, f->rem, f->rem_len);
        consumed = tail_split(f, t->buf, f->rem_len, 1);
        if (tail_commit(f, consumed) < 0)
            return;
    }
    log_info("%s: replaced by a new file; read the old one to its end (offset "
             "%" PRIu64 ")",
             f->conf->path, f->offset);
    tail_close_fd(f);
    (void)tail_open(f, 1);
}

/*
 * One read pass. Returns 1 if the file probably has more to read right
 * away, 0 if it should wait for a change or the poll timer.
 */
static int
tail_pass(struct tail_file *f)
{
    struct tail *t = f->t;
    struct stat st;
    uint64_t rpos, consumed;
    ssize_t n = 0;
    int head;

    if (f->fd < 0 && tail_open(f, 0) < 0)
        return 0;
    if (fstat(f->fd, &st) < 0) {
        log_warn("%s: fstat", f->conf->path);
        tail_close_fd(f);
        return 0;
    }
    rpos = f->offset + f->rem_len + f->skip;
    head = tail_check_head(f, (uint64_t)st.st_size);
    if (head < 0) {
        errno = -head;
        log_warn("%s: read", f->conf->path);
        tail_close_fd(f);
        return 0;
    }
    if ((uint64_t)st.st_size < rpos || head == 0) {
        /* copytruncate or "> file": what we read is gone. */
        if ((uint64_t)st.st_size < rpos)
            log_warnx("%s: truncated (size %" PRIu64 " < offset %" PRIu64
                      "); reading from the start",
                      f->conf->path, (uint64_t)st.st_size, rpos);
        else
            log_warnx("%s: truncated and rewritten (its first bytes "
                      "changed); reading from the start",
                      f->conf->path);
        f->offset = 0;
        f->rem_len = 0;
        f->skip = 0;
        f->head_len = 0;
        f->head_hash = spool_head_hash("", 0);
        rpos = 0;
        if (tail_check_head(f, (uint64_t)st.st_size) < 0) {
            log_warn("%s: read", f->conf->path);
            tail_close_fd(f);
            return 0;
        }
    }
    if ((uint64_t)st.st_size > rpos) {
        memcpy(t->buf, f->rem, f->rem_len);
        do
            n = pread(f->fd, t->buf + f->rem_len, t->read_max, (off_t)rpos);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            log_warn("%s: read", f->conf->path);
            tail_close_fd(f);
            return 0;
        }
    }
    t->nevs = t->nkvs = 0;
    t->pass_ts = tc_now_ns();
    consumed = n > 0 ? tail_split(f, t->buf, f->rem_len + (size_t)n, 0) : 0;
    if (tail_commit(f, consumed) < 0)
        return 0;
    tail_warnings(f);
    if ((size_t)n == t->read_max)
        return 1;
    /* At the end of what the file holds: is it still the file at path? */
    if (f->replaced) {
        if (n == 0)
            tail_switch(f);
        return 1;
    }
    if (stat(f->conf->path, &st) == 0 &&
        ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino)) {
        f->replaced = 1;
        return 1;
    }
    return 0;
}

static void
tail_idle_cb(uv_idle_t *h)
{
    struct tail *t = h->data;
    int more = 0;

    for (size_t i = 0; i < t->nfiles && !t->stopping; i++) {
        struct tail_file *f = &t->files[i];
        if (!f->pending)
            continue;
        f->pending = tail_pass(f);
        more |= f->pending;
    }
    if (!more)
        uv_idle_stop(&t->idle);
}

static void
tail_schedule(struct tail_file *f)
{
    struct tail *t = f->t;

    if (t->stopping)
        return;
    f->pending = 1;
    uv_idle_start(&t->idle, tail_idle_cb);
}

static void
tail_fs_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct tail_file *f = h->data;

    /* Events for other files in the same directory are not ours. */
    if (status == 0 && name != NULL && strcmp(name, f->base) != 0)
        return;
    tail_schedule(f);
}

/* Watch the file's directory, which also sees the file appear. */
static void
tail_watch(struct tail_file *f)
{
    int rc;

    if (f->watching)
        return;
    rc = uv_fs_event_start(&f->watch, tail_fs_cb, f->dir, 0);
    if (rc == 0)
        f->watching = 1;
    else
        log_debug("%s: cannot watch %s (%s); polling", f->conf->path, f->dir,
                  uv_strerror(rc));
}

static void
tail_poll_cb(uv_timer_t *h)
{
    struct tail *t = h->data;

    for (size_t i = 0; i < t->nfiles; i++) {
        tail_watch(&t->files[i]);
        tail_schedule(&t->files[i]);
    }
}

struct tail *
tail_new(uv_loop_t *loop, const struct agent_config *cfg,
         struct rules *const *rules, struct spool *spool, const char *host,
         void (*on_spooled)(void *arg), void *arg)
{
    struct tail *t = tc_xcalloc(1, sizeof(*t));

    t->loop = loop;
    t->cfg = cfg;
    t->spool = spool;
    t->host = tc_str_c(host);
    t->on_spooled = on_spooled;
    t->arg = arg;
    t->read_max = (size_t)cfg->read_max_bytes;
    t->max_line = cfg->max_line_bytes;
    if (t->max_line > TC_WIRE_MAX_STR)
        t->max_line = TC_WIRE_MAX_STR;
    t->buf = tc_xmalloc(t->max_line + t->read_max);
    t->nfiles = cfg->nfiles;
    t->files = tc_xcalloc(t->nfiles ? t->nfiles : 1, sizeof(*t->files));
    for (size_t i = 0; i < t->nfiles; i++) {
        struct tail_file *f = &t->files[i];
        char *tmp = tc_xstrdup(cfg->files[i].path);

        f->t = t;
        f->conf = &cfg->files[i];
        f->rules = rules[i];
        f->fd = -1;
        f->dir = tc_xstrdup(dirname(tmp));
        free(tmp);
        f->base = strrchr(f->conf->path, '/');
        f->base = f->base ? f->base + 1 : f->conf->path;
        f->rem = tc_xmalloc(t->max_line);
    }
    return t;
}

int
tail_start(struct tail *t)
{
    int rc;

    if ((rc = uv_idle_init(t->loop, &t->idle)) < 0 ||
        (rc = uv_timer_init(t->loop, &t->poll)) < 0)
        fatalx("tail: %s", uv_strerror(rc));
    t->idle.data = t;
    t->poll.data = t;
    for (size_t i = 0; i < t->nfiles; i++) {
        struct tail_file *f = &t->files[i];
        if ((rc = uv_fs_event_init(t->loop, &f->watch)) < 0)
            fatalx("tail: %s", uv_strerror(rc));
        f->watch.data = f;
    }
    t->started = 1;
    for (size_t i = 0; i < t->nfiles; i++) {
        struct tail_file *f = &t->files[i];
        /* Watch before the first read so no change falls in between. */
        tail_watch(f);
        (void)tail_open(f, 0);
        tail_schedule(f);
    }
    uv_timer_start(&t->poll, tail_poll_cb, t->cfg->poll_interval_ms,
                   t->cfg->poll_interval_ms);
    return 0;
}

static void
tail_closed_cb(uv_handle_t *h)
{
    struct tail *t = h->data;

    if (h->type == UV_FS_EVENT)
        t = ((struct tail_file *)h->data)->t;
    if (--t->closing == 0 && t->on_stopped != NULL)
        t->on_stopped(t->stop_arg);
}

void
tail_stop(struct tail *t, void (*on_stopped)(void *arg), void *arg)
{
    if (t->stopping)
        return;
    t->stopping = 1;
    t->on_stopped = on_stopped;
    t->stop_arg = arg;
    for (size_t i = 0; i < t->nfiles; i++)
        tail_close_fd(&t->files[i]);
    if (!t->started) {
        if (on_stopped != NULL)
            on_stopped(arg);
        return;
    }
    t->closing = 2 + (int)t->nfiles;
    uv_close((uv_handle_t *)&t->idle, tail_closed_cb);
    uv_close((uv_handle_t *)&t->poll, tail_closed_cb);
    for (size_t i = 0; i < t->nfiles; i++)
        uv_close((uv_handle_t *)&t->files[i].watch, tail_closed_cb);
}

void
tail_free(struct tail *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nfiles; i++) {
        tail_close_fd(&t->files[i]);
        free(t->files[i].dir);
        free(t->files[i].rem);
    }
    free(t->files);
    free(t->buf);
    free(t->evs);
    free(t->kvs);
    free(t);
}

void
tail_get_stats(const struct tail *t, struct tail_stats *out)
{
    *out = t->stats;
}
