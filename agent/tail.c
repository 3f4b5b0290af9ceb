/*
 * tail: read passes over the configured files; see tail.h.
 *
 * The files being read form one list (struct tail_file), each entry an
 * open descriptor with its identity and read state. Inputs (files[]
 * entries) find files: on every poll tick and after an inotify rename
 * event, each input's pattern is expanded, and a file at a matching
 * path that is not yet tracked (by device and inode) is opened. A file
 * that is no longer at any matching path (renamed away, deleted) stays
 * open and keeps being read; it is let go once it is at its end and has
 * not grown for max(poll_interval, flush_timeout).
 *
 * Files of one source (the path they were found at) are read in age
 * order: a newer file waits while an older one (renamed away but still
 * holding unread lines) is not at its end, so lines leave in file order.
 *
 * Memory: one shared read buffer of max_line_bytes + read_max_bytes,
 * a per-file partial-line buffer and multiline record buffer that grow
 * to the longest seen (at most max_line_bytes each), the event and field
 * arrays of a pass, which grow to the most matches seen in one pass, and
 * an arena for the records closed in a pass (only with multiline).
 * Nothing is allocated and no system call is made per line.
 *
 * The read buffer and the arena hold nothing between passes, but every
 * page a pass wrote stays resident: after one burst the agent keeps
 * 1 MiB (read_max_bytes) it needs again only at the next burst. Once no
 * pass has used more than TAIL_BUF_KEEP bytes of them for quiet_ns, the
 * pages past that are given back to the kernel (tail_trim). Passes over
 * a trickle of lines stay within the kept pages and cost nothing more.
 *
 * A line longer than max_line_bytes keeps its first max_line_bytes while
 * the rest is read and dropped until its newline turns up; only then is
 * it matched and the offset moved past it, so it is cut the same way if
 * re-read after a restart.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <pcre2.h>

#include "emit.h"
#include "log.h"
#include "util.h"

/* Repeated warnings about one input are logged at most this often. */
#define TAIL_WARN_INTERVAL_NS (60 * (int64_t)1000000000)
/* start_at: end starts after the last newline within this many bytes. */
#define TAIL_END_SCAN 65536
/* Rotated siblings considered per scan of one directory. */
#define TAIL_SIBLINGS_MAX 64
#define TAIL_MS (int64_t)1000000
/*
 * File times come from the kernel's coarse clock, up to one tick (10 ms
 * at HZ=100) behind clock_gettime: a write just after a path was looked
 * at can get an mtime just before. "First seen" times are taken this
 * much earlier, so such a file still counts as newer.
 */
#define TAIL_MTIME_SLACK_NS (20 * TAIL_MS)
/* Bytes of the read buffer and the arena kept resident when idle. */
#define TAIL_BUF_KEEP (64 * 1024)
/*
 * The poll is a safety net for what inotify does not report (a watch
 * that could not be added, a directory with glob characters, a network
 * file system, a lost event). While every input's directory is watched
 * and nothing was seen for TAIL_QUIET_POLLS intervals, it runs
 * TAIL_SLOW_FACTOR times less often, but at least every
 * TAIL_SLOW_MAX_MS (never less often than poll_interval): at the default
 * 250 ms, every 2 s after 10 quiet seconds. An inotify event, or a poll
 * that finds data, brings it back at once. On an idle host the poll's
 * path lookups and stats were most of the agent's CPU.
 */
#define TAIL_QUIET_POLLS 40
#define TAIL_SLOW_FACTOR 8
#define TAIL_SLOW_MAX_MS 2000

/* One files[] entry of the config. */
struct tail_input {
    struct tail *t;                /* owner */
    const struct agent_file *conf; /* borrowed from the config */
    struct rules *rules;           /* borrowed */
    int literal;                   /* 1: path has no glob characters */
    char *prefix;                  /* owned: path's leading directories
                                      that have no glob character ("" for
                                      "/"); what the admin wrote out */
    int watch_dir;                 /* 1: path's directory has none */
    pcre2_code *ml;                /* owned: multiline start; or NULL */
    pcre2_match_data *ml_md;       /* owned, with ml */
    int ml_jit;                    /* 1 if ml has a JIT version */
    struct tail_path *paths;       /* owned: paths matched lately */
    uint64_t errors_seen;          /* rules_errors() already logged */
    uint64_t cut, cut_seen;        /* lines cut; already logged */
    int64_t warned_ns;             /* mono time of the last such log */
    uint32_t nmatched;             /* regular files read at matching
                                      paths in the last scan */
    int no_match;                  /* 1: matched nothing and has nothing
                                      left to read; warned (tail_scan) */
};

/* A path an input matched, and the identity last seen there. */
struct tail_path {
    struct tail_path *next;
    char *path;            /* owned */
    struct spool_file row; /* "path:<path>": dev, ino, head of the file
                              last seen here; offset = wall clock (ns)
                              when that content was first seen here */
    int have;              /* row is set */
    int seen;              /* matched by the current scan */
    int refused;           /* 1: what is here was refused and logged */
    uint64_t refused_dev;  /* ... identity of it (stat of the path), */
    uint64_t refused_ino;  /* skipped silently until it changes */
};

/* A directory watched with inotify. */
struct tail_watch {
    struct tail_watch *next;
    struct tail *t;
    char *dir;       /* owned */
    uv_fs_event_t h; /* closed by tail_stop */
    int started;     /* 1 while h is started */
};

struct tail_file {
    struct tail_file *next;   /* t->files */
    struct tail_input *in;    /* borrowed: the input that found it */
    struct tail_watch *watch; /* borrowed: watch of name's directory */
    char *source;             /* owned: path first found at (events) */
    struct emit_source src;   /* events' source: source, the labels */
    char *name;               /* owned: path last found at */
    const char *base;         /* basename, inside name */
    char key[64];             /* spool key "file:<dev>:<ino>" */
    uint64_t seq;             /* age: older content has a lower seq */
    int fd;                   /* owned */
    uint64_t dev, ino;        /* identity of fd ... */
    uint64_t head_hash;       /* ... with spool_head_hash of the head */
    uint32_t head_len;        /* ... of this many bytes */
    uint64_t offset;          /* committed: line_off, or rec_off while
                                 a record is open */
    int rowed;                /* 1: its "file:" row is stored (a pass
                                 committed, or a path note stored it) */
    uint64_t line_off;        /* end of the last complete line */
    struct spool_file stored; /* the position last committed */
    char *rem;                /* owned: head of the partial line at
                                 line_off, at most max_line bytes */
    size_t rem_len, rem_cap;  /* bytes in rem; allocated */
    uint64_t skip;            /* bytes of that line past rem, dropped */
    char *rec;                /* owned: the open multiline record */
    size_t rec_len, rec_cap;  /* bytes in rec; allocated */
    uint32_t rec_lines;       /* lines in the open record */
    int rec_open;             /* 1: a record is open, from rec_off */
    int rec_cut;              /* 1: the open record was cut */
    uint64_t rec_off;         /* file offset of the record's start */
    int64_t line_ns;          /* mono: last line joined the record */
    uint64_t size;            /* st_size at the last pass */
    int64_t grew_ns;          /* mono: when size last changed */
    int live;                 /* 1: at a matching path in the last scan */
    int eof;                  /* 1: the last pass read to the end */
    int pending;              /* 1: wants a read pass */
    int gated;                /* 1: waited for an older file */
};

struct tail {
    uv_loop_t *loop;                /* borrowed */
    const struct agent_config *cfg; /* borrowed */
    struct spool *spool;            /* borrowed: stored positions */
    struct emit *emit;              /* borrowed: lines -> events */
    struct emit_batch batch;        /* the current pass's events */
    size_t nmatch;                  /* lines handed to emit this pass */
    struct tail_input *inputs;      /* owned; ninputs entries */
    size_t ninputs;
    struct tail_file *files;     /* owned list */
    struct tail_watch *watches;  /* owned list */
    uint64_t seq;                /* last tail_file.seq given */
    uv_idle_t idle;              /* runs passes while any is pending */
    uv_timer_t poll;             /* poll_interval_ms: rescan, passes */
    char *buf;                   /* owned: max_line + read_max bytes */
    size_t read_max;             /* bytes read per pass, from config */
    size_t max_line;             /* longer lines are cut, bytes */
    char *arena;                 /* owned: records closed in a pass */
    size_t arena_len, arena_cap; /* bytes used; allocated */
    size_t buf_dirty;            /* bytes of buf written since tail_trim */
    size_t arena_dirty;          /* same for arena */
    int64_t big_ns;   /* mono: last pass that used more than TAIL_BUF_KEEP
                         bytes of buf or arena */
    size_t page;      /* system page size, bytes */
    int64_t pass_ts;  /* wall clock of the current pass, ns */
    int64_t now;      /* mono clock of the current pass, ns */
    int64_t flush_ns; /* flush_timeout */
    int64_t quiet_ns; /* a rotated file is let go after this quiet */
    struct tail_stats stats;
    int64_t seen_ns;  /* mono: last inotify event or pass with data */
    int rescan;       /* 1: an inotify event asked for a rescan */
    int watch_warned; /* 1: "cannot watch" was logged */
    int started;      /* 1 after tail_start initialised the handles */
    int stopping;
    int closing; /* handles whose close is pending */
    void (*on_stopped)(void *arg);
    void *stop_arg;
};

static void tail_schedule(struct tail_file *f);
static void tail_pace(struct tail *t, int seen);
static void tail_idle_cb(uv_idle_t *h);
static void tail_used(struct tail *t, size_t *dirty, size_t n);

/* ---- identity -------------------------------------------------------- */

static ssize_t
tail_pread(int fd, void *p, size_t n, uint64_t off)
{
    ssize_t r;

    do
        r = pread(fd, p, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

/* 1 if the head (n bytes read at 0) starts with the stored one. */
static int
tail_head_matches(const char *head, size_t n, const struct spool_file *sf)
{
    return sf->head_len <= n &&
           spool_head_hash(head, sf->head_len) == sf->head_hash;
}

/*
 * The head of an open file: the hash of its first min(size,
 * SPOOL_HEAD_MAX) bytes tells it from another file that got the same
 * inode later, and a head that changed under an open file means it was
 * truncated and written again between two passes, which its size alone
 * does not show. Returns 1 if the head still matches (growing it up to
 * SPOOL_HEAD_MAX), 0 if it changed, or a negative errno.
 */
static int
tail_check_head(struct tail_file *f, uint64_t size)
{
    char head[SPOOL_HEAD_MAX];
    size_t want = size < SPOOL_HEAD_MAX ? (size_t)size : SPOOL_HEAD_MAX;
    ssize_t n;

    if (want == 0)
        return f->head_len == 0;
    if ((n = tail_pread(f->fd, head, want, 0)) < 0)
        return (int)n;
    if ((size_t)n < f->head_len ||
        spool_head_hash(head, f->head_len) != f->head_hash)
        return 0;
    f->head_len = (uint32_t)n;
    f->head_hash = spool_head_hash(head, (size_t)n);
    return 1;
}

static void
tail_key(char *key, size_t len, uint64_t dev, uint64_t ino)
{
    snprintf(key, len, "file:%" PRIu64 ":%" PRIu64, dev, ino);
}

static struct tail_file *
tail_find(struct tail *t, uint64_t dev, uint64_t ino)
{
    for (struct tail_file *f = t->files; f != NULL; f = f->next)
        if (f->dev == dev && f->ino == ino)
            return f;
    return NULL;
}

/* ---- watches --------------------------------------------------------- */

static void tail_fs_cb(uv_fs_event_t *h, const char *name, int events,
                       int status);

/* The watch of dir, started if possible (inotify); NULL when stopping. */
static struct tail_watch *
tail_watch_dir(struct tail *t, const char *dir)
{
    struct tail_watch *w;
    int rc;

    for (w = t->watches; w != NULL; w = w->next)
        if (strcmp(w->dir, dir) == 0)
            break;
    if (w == NULL) {
        if (!t->started || t->stopping)
            return NULL;
        w = tc_xcalloc(1, sizeof(*w));
        w->t = t;
        w->dir = tc_xstrdup(dir);
        if ((rc = uv_fs_event_init(t->loop, &w->h)) < 0)
            fatalx("tail: %s", uv_strerror(rc));
        w->h.data = w;
        w->next = t->watches;
        t->watches = w;
    }
    if (!w->started && !t->stopping && t->cfg->inotify) {
        rc = uv_fs_event_start(&w->h, tail_fs_cb, w->dir, 0);
        if (rc == 0) {
            w->started = 1;
        } else if (!t->watch_warned) {
            /* Polling still finds every change, only later. */
            log_warnx("cannot watch %s (%s); polling every %" PRIu64 " ms",
                      w->dir, uv_strerror(rc), t->cfg->poll_interval_ms);
            t->watch_warned = 1;
        }
    }
    return w;
}

static struct tail_watch *
tail_watch_path(struct tail *t, const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - path);

    if (slash == NULL)
        return tail_watch_dir(t, ".");
    if (n == 0)
        n = 1; /* "/" */
    if (n >= sizeof(dir))
        return NULL;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return tail_watch_dir(t, dir);
}

/* ---- multiline ------------------------------------------------------- */

static int
tail_ml_compile(const struct agent_config *cfg, const struct agent_file *af,
                pcre2_code **out, int *jit)
{
    int err;
    PCRE2_SIZE erroff;
    char msg[256];
    pcre2_code *code;

    code = pcre2_compile((PCRE2_SPTR)af->multiline.start, PCRE2_ZERO_TERMINATED,
                         PCRE2_NEVER_UTF, &err, &erroff, NULL);
    if (code == NULL) {
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof(msg));
        log_warnx("%s:%d: multiline start '%s': bad regex at offset %zu: %s",
                  cfg->file, af->line, af->multiline.start, (size_t)erroff,
                  msg);
        return -EINVAL;
    }
    *jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    *out = code;
    return 0;
}

int
tail_check_config(const struct agent_config *cfg)
{
    int bad = 0, jit;
    pcre2_code *code;

    for (size_t i = 0; i < cfg->nfiles; i++) {
        if (cfg->files[i].multiline.start == NULL)
            continue;
        if (tail_ml_compile(cfg, &cfg->files[i], &code, &jit) < 0)
            bad = 1;
        else
            pcre2_code_free(code);
    }
    return bad ? -EINVAL : 0;
}

/* 1 if the line starts a record. A match error counts as "no". */
static int
tail_ml_start(struct tail_input *in, const char *p, size_t len)
{
    int rc;

    if (in->ml_jit)
        rc = pcre2_jit_match(in->ml, (PCRE2_SPTR)p, len, 0, 0, in->ml_md, NULL);
    else
        rc = pcre2_match(in->ml, (PCRE2_SPTR)p, len, 0, 0, in->ml_md, NULL);
    return rc >= 0;
}

/* ---- lines and records ----------------------------------------------- */

static void
tail_match(struct tail_file *f, const char *p, size_t len)
{
    struct tail *t = f->in->t;
    struct rules_hit hit;

    if (rules_match(f->in->rules, p, len, &hit) >= 0) {
        /* p stays valid until the commit: it is in the read buffer,
         * the partial-line buffer or the record arena. */
        emit_match(t->emit, &t->batch, &f->src, &hit, p, len, t->pass_ts);
        t->nmatch++;
        t->stats.matched++;
    }
}

/*
 * Close the open record: copy it to the pass's arena (the record buffer
 * is reused by the next record of the same pass) and match it. The
 * arena holds read_max + 2 * max_line bytes, which bounds what the
 * records closed in one pass can hold: the carried record, the partial
 * line and the bytes read.
 */
static void
tail_record_close(struct tail_file *f)
{
    struct tail *t = f->in->t;
    size_t len = f->rec_len;
    char *p;

    if (len > t->arena_cap - t->arena_len) {
        len = t->arena_cap - t->arena_len; /* cannot happen; see above */
        f->rec_cut = 1;
    }
    p = t->arena + t->arena_len;
    memcpy(p, f->rec, len);
    t->arena_len += len;
    tail_used(t, &t->arena_dirty, t->arena_len);
    if (f->rec_cut) {
        f->in->cut++;
        t->stats.cut++;
    }
    t->stats.records++;
    f->rec_open = 0;
    f->rec_len = 0;
    f->rec_lines = 0;
    f->rec_cut = 0;
    tail_match(f, p, len);
}

static void
tail_record_add(struct tail_file *f, const char *p, size_t len, uint64_t lstart)
{
    struct tail *t = f->in->t;
    struct tail_input *in = f->in;
    size_t need, room;

    if (tail_ml_start(in, p, len) && f->rec_open)
        tail_record_close(f);
    if (!f->rec_open) {
        f->rec_open = 1;
        f->rec_off = lstart;
        f->rec_len = 0;
        f->rec_lines = 0;
        f->rec_cut = 0;
    }
    need = (f->rec_lines > 0 ? 1 : 0) + len;
    if (f->rec_len + need > f->rec_cap && f->rec_cap < t->max_line) {
        size_t cap = f->rec_cap ? f->rec_cap : 256;
        while (cap < f->rec_len + need && cap < t->max_line)
            cap *= 2;
        if (cap > t->max_line)
            cap = t->max_line;
        f->rec = tc_xrealloc(f->rec, cap);
        f->rec_cap = cap;
    }
    room = f->rec_cap - f->rec_len;
    if (f->rec_lines > 0 && room > 0) {
        f->rec[f->rec_len++] = '\n';
        room--;
    }
    if (len > room) {
        len = room;
        f->rec_cut = 1;
    }
    if (len > 0)
        memcpy(f->rec + f->rec_len, p, len);
    f->rec_len += len;
    f->rec_lines++;
    f->line_ns = t->now;
    if (f->rec_lines >= in->conf->multiline.max_lines)
        tail_record_close(f);
}

/* One complete line starting at file offset lstart; full is its length
 * in the file (newline excluded), of which the first min(full,
 * max_line) bytes are at p. */
static void
tail_line(struct tail_file *f, const char *p, uint64_t full, uint64_t lstart)
{
    struct tail *t = f->in->t;
    size_t len = full > t->max_line ? t->max_line : (size_t)full;

    t->stats.lines++;
    if (f->in->ml != NULL) {
        if (full > t->max_line)
            f->rec_cut = 1; /* counted when the record closes */
        tail_record_add(f, p, len, lstart);
        return;
    }
    if (full > t->max_line) {
        f->in->cut++;
        t->stats.cut++;
    }
    tail_match(f, p, len);
}

/*
 * Split buf (the file's partial line followed by what was just read)
 * into lines and match them. Returns the bytes consumed from line_off,
 * and leaves the head of the remaining partial line in f->rem (its
 * dropped tail counted in f->skip).
 */
static uint64_t
tail_split(struct tail_file *f, char *buf, size_t len)
{
    struct tail *t = f->in->t;
    char *p = buf, *end = buf + len, *scan, *nl;
    uint64_t consumed = 0, skip = f->skip;
    size_t left, keep;

    /* The partial line was already searched for a newline. */
    scan = buf + f->rem_len;
    while (scan < end && (nl = memchr(scan, '\n', (size_t)(end - scan)))) {
        uint64_t full = (uint64_t)(nl - p) + (p == buf ? skip : 0);
        /* Past max_line the bytes at p are not the line's continuous
         * text any more (the skipped middle is gone), but only the
         * first max_line of them are used. */
        tail_line(f, p, full, f->line_off + consumed);
        consumed += full + 1;
        p = scan = nl + 1;
    }
    left = (size_t)(end - p);
    if (p != buf)
        skip = 0;
    keep = left < t->max_line ? left : t->max_line;
    if (keep > f->rem_cap) {
        size_t cap = f->rem_cap ? f->rem_cap : 256;
        while (cap < keep)
            cap *= 2;
        if (cap > t->max_line)
            cap = t->max_line;
        f->rem = tc_xrealloc(f->rem, cap);
        f->rem_cap = cap;
    }
    if (keep > 0)
        memmove(f->rem, p, keep);
    f->rem_len = keep;
    f->skip = skip + (left - keep);
    return consumed;
}

/* Log a summary of lines cut and match errors, at most once a minute. */
static void
tail_warnings(struct tail_input *in)
{
    struct tail *t = in->t;
    uint64_t errors = rules_errors(in->rules);
    int64_t now;

    if (errors == in->errors_seen && in->cut == in->cut_seen)
        return;
    now = tc_mono_ns();
    if (in->warned_ns != 0 && now - in->warned_ns < TAIL_WARN_INTERVAL_NS)
        return;
    if (errors != in->errors_seen)
        log_warnx("%s: %" PRIu64 " lines were not matched against a rule "
                  "because they hit a match limit (last: %s)",
                  in->conf->path, errors - in->errors_seen,
                  rules_last_error(in->rules));
    if (in->cut != in->cut_seen)
        log_warnx("%s: %" PRIu64 " lines over max_line_bytes (%zu) were cut",
                  in->conf->path, in->cut - in->cut_seen, t->max_line);
    in->errors_seen = errors;
    in->cut_seen = in->cut;
    in->warned_ns = now;
}

/* Forget everything read after the committed position. */
static void
tail_rewind(struct tail_file *f)
{
    f->line_off = f->offset;
    f->rem_len = 0;
    f->skip = 0;
    f->rec_open = 0;
    f->rec_len = 0;
    f->rec_lines = 0;
    f->rec_cut = 0;
}

/*
 * Spool the pass's events with the file's new position (the start of
 * the open record, or else line_off + consumed), if anything changed.
 * On failure nothing moved on disk, so the in-memory read position goes
 * back to the committed offset too.
 */
static int
tail_commit(struct tail_file *f, uint64_t consumed)
{
    struct tail *t = f->in->t;
    uint64_t line_off = f->line_off + consumed;
    struct spool_file pos;
    int rc;

    memset(&pos, 0, sizeof(pos));
    pos.dev = f->dev;
    pos.ino = f->ino;
    pos.head_hash = f->head_hash;
    pos.head_len = f->head_len;
    pos.offset = f->rec_open ? f->rec_off : line_off;
    if (t->nmatch == 0 && pos.offset == f->stored.offset &&
        pos.head_hash == f->stored.head_hash &&
        pos.head_len == f->stored.head_len && pos.dev == f->stored.dev &&
        pos.ino == f->stored.ino) {
        f->line_off = line_off;
        return 0;
    }
    rc = emit_commit(t->emit, &t->batch, f->key, &pos, NULL, NULL);
    t->nmatch = 0;
    if (rc < 0) {
        int64_t now = tc_mono_ns();
        if (f->in->warned_ns == 0 ||
            now - f->in->warned_ns >= TAIL_WARN_INTERVAL_NS) {
            log_warnx("%s: cannot spool: %s; retrying", f->name, strerror(-rc));
            f->in->warned_ns = now;
        }
        tail_rewind(f);
        return rc;
    }
    f->line_off = line_off;
    f->offset = pos.offset;
    f->stored = pos;
    f->rowed = 1;
    t->stats.bytes += consumed;
    if (consumed > 0) {
        t->stats.passes++;
        t->seen_ns = t->now;
    }
    return 0;
}

/* 1 if an older file of the same source still has lines to read. */
static int
tail_gated(struct tail_file *f)
{
    for (struct tail_file *g = f->in->t->files; g != NULL; g = g->next)
        if (g != f && g->in == f->in && g->seq < f->seq && !g->eof &&
            strcmp(g->source, f->source) == 0)
            return 1;
    return 0;
}

/* f reached its end or went away: let newer files of its source go on. */
static void
tail_ungate(struct tail_file *f)
{
    for (struct tail_file *g = f->in->t->files; g != NULL; g = g->next)
        if (g->gated && g->in == f->in) {
            g->gated = 0;
            tail_schedule(g);
        }
}

static void tail_track_siblings(struct tail_input *in, const char *path,
                                const char *source, int64_t since_ns,
                                const struct spool_file *copy_of,
                                uint64_t skip_dev, uint64_t skip_ino);
static void tail_path_note(struct tail_input *in, const char *path,
                           const struct tail_file *f, int force,
                           int64_t seen_ns);

/*
 * The file is shorter than what was read, or its head changed: it was
 * truncated (copytruncate, "> file"), maybe written again. Its lines
 * not yet read went with it, unless copytruncate left them in a copy:
 * a rotated sibling with the head we read and at least the committed
 * size is read from the committed offset before this file starts again
 * at 0 (as newer content, it gets a new seq and waits for the copy).
 */
static void
tail_truncated(struct tail_file *f, uint64_t size, uint64_t rpos)
{
    struct tail *t = f->in->t;
    struct spool_file old;

    if (size < rpos)
        log_warnx("%s: truncated (size %" PRIu64 " < offset %" PRIu64
                  "); reading from the start",
                  f->name, size, rpos);
    else
        log_warnx("%s: truncated and rewritten (its first bytes changed); "
                  "reading from the start",
                  f->name);
    t->stats.truncated++;
    memset(&old, 0, sizeof(old));
    old.head_hash = f->head_hash;
    old.head_len = f->head_len;
    old.offset = f->offset;
    f->offset = 0;
    tail_rewind(f);
    f->head_len = 0;
    f->head_hash = spool_head_hash("", 0);
    if (f->live && !t->stopping) {
        tail_track_siblings(f->in, f->name, f->source, INT64_MAX, &old, f->dev,
                            f->ino);
        tail_path_note(f->in, f->name, f, 1, tc_now_ns() - TAIL_MTIME_SLACK_NS);
    }
    f->seq = ++t->seq; /* after the copy's */
}

/*
 * One read pass. final: the file is being let go, so a partial last
 * line and an open record are sent now, nobody will finish them.
 * Returns 1 if the file probably has more to read right away, 0 if it
 * should wait for a change or the poll timer.
 */
static int
tail_pass(struct tail_file *f, int final)
{
    struct tail *t = f->in->t;
    struct stat st;
    uint64_t rpos, size, consumed = 0;
    ssize_t n = 0;
    int head, quiet;

    t->now = tc_mono_ns();
    if (!final && tail_gated(f)) {
        f->gated = 1;
        return 0;
    }
    if (fstat(f->fd, &st) < 0) {
        log_warn("%s: fstat", f->name);
        return 0;
    }
    size = (uint64_t)st.st_size;
    rpos = f->line_off + f->rem_len + f->skip;
    head = tail_check_head(f, size);
    if (head < 0) {
        errno = -head;
        log_warn("%s: read", f->name);
        return 0;
    }
    if (size < rpos || head == 0) {
        tail_truncated(f, size, rpos);
        rpos = 0;
        if (tail_check_head(f, size) < 0) {
            log_warn("%s: read", f->name);
            return 0;
        }
        if (tail_gated(f)) { /* the copy first */
            f->gated = 1;
            f->eof = 0;
            return 0;
        }
    }
    if (size != f->size) {
        f->size = size;
        f->grew_ns = t->now;
    }
    t->nmatch = 0;
    t->arena_len = 0;
    t->pass_ts = tc_now_ns();
    if (size > rpos) {
        if (f->rem_len > 0)
            memcpy(t->buf, f->rem, f->rem_len);
        n = tail_pread(f->fd, t->buf + f->rem_len, t->read_max, rpos);
        if (n < 0) {
            errno = (int)-n;
            log_warn("%s: read", f->name);
            return 0;
        }
        tail_used(t, &t->buf_dirty, f->rem_len + (size_t)n);
        if (n > 0)
            consumed = tail_split(f, t->buf, f->rem_len + (size_t)n);
    }
    f->eof = rpos + (uint64_t)n >= size;
    quiet = t->now - f->grew_ns >= t->flush_ns;
    if ((final || (f->eof && quiet)) && (f->rem_len > 0 || f->skip > 0)) {
        /* A partial last line that stopped growing is a line. When the
         * rest of it comes later, that is a line of its own. */
        uint64_t full = f->rem_len + f->skip;
        tail_line(f, f->rem, full, f->line_off + consumed);
        consumed += full;
        f->rem_len = 0;
        f->skip = 0;
        if (!final)
            t->stats.flushed++;
    }
    if (f->rec_open &&
        (final || (f->eof && f->rem_len == 0 && f->skip == 0 &&
                   (quiet || t->now - f->line_ns >= t->flush_ns))))
        tail_record_close(f);
    if (tail_commit(f, consumed) < 0)
        return 0;
    tail_warnings(f->in);
    if ((size_t)n == t->read_max)
        return 1;
    if (f->eof)
        tail_ungate(f);
    return 0;
}

/* ---- finding files --------------------------------------------------- */

static void
tail_schedule(struct tail_file *f)
{
    struct tail *t = f->in->t;

    if (t->stopping || !t->started)
        return;
    f->pending = 1;
    uv_idle_start(&t->idle, tail_idle_cb);
}

/* The stored position of a key, -ENOENT, or another negative errno. */
static int
tail_row(struct tail *t, const char *key, struct spool_file *out)
{
    return spool_file_get(t->spool, key, out);
}

/*
 * Which files tail reads. Running as root, the agent could otherwise be
 * made to ship any file by whoever can write a tailed directory: a
 * symlink "logs/x.log -> /etc/shadow" matched by a pattern of logs/, a FIFO
 * that blocks the open, a device whose open has side effects, or a
 * /proc or /sys file. So a path is first opened with O_PATH, which
 * opens nothing (no device, no FIFO, no read permission needed), and
 * everything is checked on that descriptor: a regular file, not on a
 * pseudo file system, and at the place the input allows (below). Only
 * then is the same file opened for reading, through /proc/self/fd,
 * which cannot name another file: there is no window between the check
 * and the open. See docs/internals/agent.md "Which files are read".
 *
 * Where the file may be: a literal path was named by the admin and is
 * opened wherever its symlinks lead. A file found by a pattern, and a
 * rotated sibling found in a directory, must be exactly what its name
 * says below the pattern's fixed directories (in->prefix): its real
 * path is the real path of the prefix followed by the rest of the name,
 * so no symlink took the open anywhere else. With follow_symlinks, a
 * file whose real path is under one of those directories is read too
 * (Kubernetes: /var/log/containers/NAME.log -> /var/log/pods/...), and
 * then a literal path must lead there as well.
 */

/* Pseudo file systems whose "files" are kernel state, not logs. */
static const char *
tail_pseudo_fs(int fd)
{
    struct statfs sf;

    if (fstatfs(fd, &sf) < 0)
        return NULL;
    switch ((unsigned long)sf.f_type) {
    case PROC_SUPER_MAGIC:
        return "/proc";
    case SYSFS_MAGIC:
        return "/sys";
    case DEBUGFS_MAGIC:
        return "debugfs";
    case TRACEFS_MAGIC:
        return "tracefs";
    case SECURITYFS_MAGIC:
        return "securityfs";
    case EFIVARFS_MAGIC:
        return "efivarfs";
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
        return "cgroupfs";
    case BPF_FS_MAGIC:
        return "bpffs";
    }
    return NULL;
}

static const char *
tail_type_name(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISLNK(m))
        return "a symlink";
    return "not a regular file";
}

/*
 * The real path of the file open at fd (st: its fstat), in out
 * (PATH_MAX bytes). Without /proc, the name is resolved and must still
 * name the file at fd.
 */
static int
tail_fd_path(int fd, const char *path, const struct stat *st, char *out)
{
    char proc[64];
    struct stat rs;
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, out, PATH_MAX);
    if (n > 0 && n < PATH_MAX) {
        out[n] = '\0';
        return 0;
    }
    if (realpath(path, out) == NULL)
        return -errno;
    if (stat(out, &rs) < 0)
        return -errno;
    if (rs.st_dev != st->st_dev || rs.st_ino != st->st_ino)
        return -ESTALE;
    return 0;
}

/* 1 if real (a real path) is dir or below it; dir is resolved now, as
 * the admin may have written it through a symlink. */
static int
tail_under(const char *dir, const char *real)
{
    char rd[PATH_MAX];
    size_t n;

    if (realpath(dir, rd) == NULL)
        return 0;
    n = strlen(rd);
    if (n == 1 && rd[0] == '/')
        return 1;
    return strncmp(real, rd, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/*
 * Whether the file at fd, found at path, is where the input allows (see
 * above); named: path is the input's literal path. 1 or 0, with *why
 * set for 0 (why holds PATH_MAX + 128 bytes).
 */
static int
tail_allowed(const struct tail_input *in, const char *path, int named, int fd,
             const struct stat *st, char *why, size_t len)
{
    const struct agent_file *af = in->conf;
    char real[PATH_MAX], base[PATH_MAX];
    size_t pl = strlen(in->prefix);
    int rc;

    if (named && af->nfollow_symlinks == 0)
        return 1;
    if ((rc = tail_fd_path(fd, path, st, real)) < 0) {
        snprintf(why, len, "cannot tell where it leads (%s)", strerror(-rc));
        return 0;
    }
    /* The name as the admin's directories resolve: no symlink below. */
    if (strncmp(path, in->prefix, pl) == 0 && path[pl] == '/') {
        if (pl == 0)
            base[0] = '\0';
        else if (realpath(in->prefix, base) == NULL)
            strcpy(base, "\x01"); /* matches no real path */
        else if (strcmp(base, "/") == 0)
            base[0] = '\0';
        if (strlen(base) + strlen(path + pl) < sizeof(base)) {
            strcat(base, path + pl);
            if (strcmp(base, real) == 0)
                return 1;
        }
    }
    for (size_t i = 0; i < af->nfollow_symlinks; i++)
        if (tail_under(af->follow_symlinks[i], real))
            return 1;
    if (af->nfollow_symlinks == 0)
        snprintf(why, len,
                 "leads to %s through a symlink, not followed (see "
                 "follow_symlinks)",
                 real);
    else
        snprintf(why, len, "leads to %s, outside follow_symlinks", real);
    return 0;
}

/*
 * Open path for reading after the checks above: 0 and *fd, *st; -EPERM
 * when refused, with the reason in why (PATH_MAX + 128 bytes); or
 * another negative errno (-ENOENT: gone meanwhile).
 */
static int
tail_open(const struct tail_input *in, const char *path, int named, int *fd,
          struct stat *st, char *why, size_t len)
{
    int pfd, follow, rc;
    const char *fs;
    char proc[64];
    struct stat rs;

    *fd = -1;
    follow = named || in->conf->nfollow_symlinks > 0;
    pfd = open(path, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (pfd < 0)
        return -errno;
    if (fstat(pfd, st) < 0) {
        rc = -errno;
        goto out;
    }
    rc = -EPERM;
    if (S_ISLNK(st->st_mode)) {
        char to[PATH_MAX];
        ssize_t n = readlink(path, to, sizeof(to) - 1); /* for the log */

        to[n > 0 ? n : 0] = '\0';
        snprintf(why, len,
                 "a symlink to %s, not followed (see follow_symlinks)", to);
        goto out;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, len, "%s, not read", tail_type_name(st->st_mode));
        goto out;
    }
    if ((fs = tail_pseudo_fs(pfd)) != NULL) {
        snprintf(why, len, "a file on %s, not read", fs);
        goto out;
    }
    if (!tail_allowed(in, path, named, pfd, st, why, len))
        goto out;
    /* The file just checked, and no other. O_NONBLOCK does not matter
     * for a regular file; it is there so that nothing can block. */
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    *fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (*fd < 0 && errno == ENOENT) /* no /proc: by name, compared */
        *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                             (follow ? 0 : O_NOFOLLOW));
    if (*fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(*fd, &rs) < 0 || rs.st_dev != st->st_dev ||
        rs.st_ino != st->st_ino || !S_ISREG(rs.st_mode)) {
        rc = -ENOENT; /* replaced meanwhile; the next scan sees it */
        close(*fd);
        *fd = -1;
        goto out;
    }
    *st = rs;
    rc = 0;
out:
    close(pfd);
    return rc;
}

/* Up to SPOOL_HEAD_MAX bytes at 0; the count (0 on error). */
static size_t
tail_head(int fd, char *head)
{
    ssize_t n = tail_pread(fd, head, SPOOL_HEAD_MAX, 0);

    return n < 0 ? 0 : (size_t)n;
}

/* start_at: end starts after the last complete line, so a line being
 * written at start is read whole when its newline comes. */
static uint64_t
tail_end_offset(int fd, uint64_t size)
{
    static char tmp[TAIL_END_SCAN];
    uint64_t from = size > sizeof(tmp) ? size - sizeof(tmp) : 0;
    ssize_t n = tail_pread(fd, tmp, (size_t)(size - from), from);
    char *nl;

    if (n <= 0)
        return size;
    nl = memrchr(tmp, '\n', (size_t)n);
    return nl == NULL ? size : from + (uint64_t)(nl - tmp) + 1;
}

/* Start reading an open file (fd is taken over) at offset. */
static struct tail_file *
tail_track(struct tail_input *in, const char *path, const char *source, int fd,
           const struct stat *st, uint64_t offset, const char *why)
{
    struct tail *t = in->t;
    struct tail_file *f = tc_xcalloc(1, sizeof(*f)), **pp;
    char head[SPOOL_HEAD_MAX];
    size_t n = tail_head(fd, head);
    const char *slash;

    f->in = in;
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    tail_key(f->key, sizeof(f->key), f->dev, f->ino);
    f->name = tc_xstrdup(path);
    slash = strrchr(f->name, '/');
    f->base = slash ? slash + 1 : f->name;
    f->source = tc_xstrdup(source);
    f->src.kind = "log";
    f->src.source = f->source;
    f->src.labels = in->conf->labels;
    f->src.nlabels = in->conf->nlabels;
    f->head_len = (uint32_t)n;
    f->head_hash = spool_head_hash(head, n);
    f->offset = f->line_off = offset;
    f->size = (uint64_t)st->st_size;
    f->grew_ns = tc_mono_ns();
    f->seq = ++t->seq;
    f->watch = tail_watch_path(t, path);
    for (pp = &t->files; *pp != NULL; pp = &(*pp)->next)
        ;
    *pp = f;
    t->stats.open++;
    if (strcmp(path, source) == 0)
        log_info("%s: %s (offset %" PRIu64 ")", path, why, offset);
    else
        log_info("%s: %s (%s, offset %" PRIu64 ")", source, why, path, offset);
    tail_schedule(f);
    return f;
}

static void
tail_file_free(struct tail_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->name);
    free(f->source);
    free(f->rem);
    free(f->rec);
    free(f);
}

static void
tail_path_key(char *key, size_t len, const char *path)
{
    snprintf(key, len, "path:%s", path);
}

/* The record of path, loaded from the spool when first needed. */
static struct tail_path *
tail_path_get(struct tail_input *in, const char *path)
{
    struct tail_path *tp;
    char key[PATH_MAX + 8];

    for (tp = in->paths; tp != NULL; tp = tp->next)
        if (strcmp(tp->path, path) == 0)
            return tp;
    tp = tc_xcalloc(1, sizeof(*tp));
    tp->path = tc_xstrdup(path);
    tail_path_key(key, sizeof(key), path);
    tp->have = tail_row(in->t, key, &tp->row) == 0;
    tp->next = in->paths;
    in->paths = tp;
    return tp;
}

/*
 * Remember that f is the file at path, first seen there at seen_ns
 * (wall clock, taken before the path was looked at), or, with force,
 * with content newer than seen_ns (truncated). A later start reads the
 * rotated siblings changed after that time that have no "file:" row:
 * generations it never saw.
 *
 * So the time must not move past a file that was tracked but has no
 * row yet (a new file at the path, a generation found unread, a copy):
 * a kill before its first pass commits would leave it neither finished
 * nor unseen, skipped for good. Every tracked file of the input without
 * a row gets one (its current offset) in the same transaction as the
 * path row. If that fails nothing is stored and the note is retried by
 * the next scan (the path row in memory is left as it was).
 */
static void
tail_path_note(struct tail_input *in, const char *path,
               const struct tail_file *f, int force, int64_t seen_ns)
{
    struct tail *t = in->t;
    struct tail_path *tp = tail_path_get(in, path);
    char key[PATH_MAX + 8];
    const char **keys;
    struct spool_file *rows;
    struct tail_file **rowed;
    size_t n = 0, nf = 0, cap = 1;

    if (tp->have && !force && tp->row.dev == f->dev && tp->row.ino == f->ino)
        return;
    for (struct tail_file *g = t->files; g != NULL; g = g->next)
        if (g->in == in && !g->rowed)
            cap++;
    keys = tc_xcalloc(cap, sizeof(*keys));
    rows = tc_xcalloc(cap, sizeof(*rows));
    rowed = tc_xcalloc(cap, sizeof(*rowed));
    for (struct tail_file *g = t->files; g != NULL; g = g->next) {
        if (g->in != in || g->rowed)
            continue;
        keys[n] = g->key;
        rows[n].dev = g->dev;
        rows[n].ino = g->ino;
        rows[n].head_hash = g->head_hash;
        rows[n].head_len = g->head_len;
        rows[n].offset = g->offset;
        rowed[nf++] = g;
        n++;
    }
    tail_path_key(key, sizeof(key), path);
    keys[n] = key;
    rows[n].dev = f->dev;
    rows[n].ino = f->ino;
    rows[n].head_hash = f->head_hash;
    rows[n].head_len = f->head_len;
    rows[n].offset = (uint64_t)(seen_ns > 0 ? seen_ns : 0);
    n++;
    if (spool_files_put(t->spool, keys, rows, n) < 0) {
        log_warnx("%s: cannot store its identity", path);
        goto out;
    }
    for (size_t i = 0; i < nf; i++) {
        rowed[i]->rowed = 1;
        rowed[i]->stored = rows[i];
    }
    tp->row = rows[n - 1];
    tp->have = 1;
out:
    free(keys);
    free(rows);
    free(rowed);
}

static int
tail_excluded(const struct tail_input *in, const char *path)
{
    for (size_t i = 0; i < in->conf->nexclude; i++)
        if (fnmatch(in->conf->exclude[i], path, 0) == 0)
            return 1;
    return 0;
}

/* 1 if the input's pattern takes path itself. */
static int
tail_input_matches(const struct tail_input *in, const char *path)
{
    if (in->literal)
        return strcmp(in->conf->path, path) == 0;
    return fnmatch(in->conf->path, path, FNM_PATHNAME) == 0 &&
           !tail_excluded(in, path);
}

/* A name logrotate and friends give base when rotating it: base.1,
 * base-20240101, base_old ...; compressed ones cannot be tailed. */
static int
tail_rotated_name(const char *base, const char *name)
{
    static const char *const packed[] = {".gz",  ".bz2", ".xz",  ".zst",
                                         ".lz4", ".Z",   ".zip", ".lzma"};
    size_t bl = strlen(base), nl = strlen(name);

    if (nl <= bl + 1 || strncmp(name, base, bl) != 0 ||
        strchr(".-_", name[bl]) == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(packed) / sizeof(packed[0]); i++) {
        size_t pl = strlen(packed[i]);
        if (nl > pl && strcmp(name + nl - pl, packed[i]) == 0)
            return 0;
    }
    return 1;
}

struct tail_cand {
    char *path; /* owned */
    int fd;     /* owned */
    struct stat st;
    uint64_t offset;
    const char *why;
};

static int
tail_cand_cmp(const void *a, const void *b)
{
    const struct stat *x = &((const struct tail_cand *)a)->st;
    const struct stat *y = &((const struct tail_cand *)b)->st;

    if (x->st_mtim.tv_sec != y->st_mtim.tv_sec)
        return x->st_mtim.tv_sec < y->st_mtim.tv_sec ? -1 : 1;
    if (x->st_mtim.tv_nsec != y->st_mtim.tv_nsec)
        return x->st_mtim.tv_nsec < y->st_mtim.tv_nsec ? -1 : 1;
    return 0;
}

/*
 * Find the rotated siblings of path (same directory, rotated names, not
 * taken by the pattern itself, not tracked) that hold lines not yet
 * read, and track them, oldest first, with path as their source:
 *
 * - a file with a stored position (same identity and head) that is
 *   longer than it: finished from there (it was renamed while being
 *   read, and the agent stopped before its end);
 * - else, with copy_of, a file whose head is the stored head and which
 *   is at least as long as copy_of->offset: copytruncate's copy of what
 *   was being read, finished from that offset;
 * - else a file changed after since_ns (the wall time the last known
 *   content at path was first seen): a generation rotated away before
 *   it was ever seen, read from the start.
 */
static void
tail_track_siblings(struct tail_input *in, const char *path, const char *source,
                    int64_t since_ns, const struct spool_file *copy_of,
                    uint64_t skip_dev, uint64_t skip_ino)
{
    struct tail *t = in->t;
    struct tail_cand *c = NULL;
    size_t nc = 0;
    char dir[PATH_MAX], full[PATH_MAX], head[SPOOL_HEAD_MAX], key[64];
    char why[PATH_MAX + 128];
    const char *slash = strrchr(path, '/'), *base;
    struct dirent *de;
    struct spool_file row;
    DIR *d;

    if (slash == NULL || (size_t)(slash - path) >= sizeof(dir))
        return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    base = slash + 1;
    if ((d = opendir(dir[0] ? dir : "/")) == NULL)
        return;
    c = tc_xcalloc(TAIL_SIBLINGS_MAX, sizeof(*c));
    while (nc < TAIL_SIBLINGS_MAX && (de = readdir(d)) != NULL) {
        struct tail_cand *k = &c[nc];
        int64_t mtime;
        size_t n;
        int fd, rc;

        if (!tail_rotated_name(base, de->d_name))
            continue;
        if (snprintf(full, sizeof(full), "%s/%s", dir, de->d_name) >=
            (int)sizeof(full))
            continue;
        if (tail_input_matches(in, full))
            continue;
        if ((rc = tail_open(in, full, 0, &fd, &k->st, why, sizeof(why))) < 0) {
            if (rc == -EPERM)
                log_warnx("%s: %s", full, why);
            continue;
        }
        if (((uint64_t)k->st.st_dev == skip_dev &&
             (uint64_t)k->st.st_ino == skip_ino) ||
            tail_find(t, (uint64_t)k->st.st_dev, (uint64_t)k->st.st_ino)) {
            close(fd);
            continue;
        }
        n = tail_head(fd, head);
        mtime =
            (int64_t)k->st.st_mtim.tv_sec * 1000000000 + k->st.st_mtim.tv_nsec;
        tail_key(key, sizeof(key), (uint64_t)k->st.st_dev,
                 (uint64_t)k->st.st_ino);
        rc = tail_row(t, key, &row);
        if (rc == 0 && tail_head_matches(head, n, &row)) {
            if (row.offset >= (uint64_t)k->st.st_size) {
                close(fd); /* read to its end before */
                continue;
            }
            k->offset = row.offset;
            k->why = "rotated, finishing it";
        } else if (rc < 0 && rc != -ENOENT) {
            close(fd); /* the spool will answer on a later scan */
            continue;
        } else if (copy_of != NULL && copy_of->head_len > 0 &&
                   tail_head_matches(head, n, copy_of) &&
                   (uint64_t)k->st.st_size >= copy_of->offset) {
            k->offset = copy_of->offset;
            k->why = "copy of the truncated file, finishing it";
        } else if (mtime > since_ns) {
            k->offset = 0;
            k->why = "rotated before it was read, reading it";
        } else {
            close(fd);
            continue;
        }
        k->fd = fd;
        k->path = tc_xstrdup(full);
        nc++;
    }
    closedir(d);
    if (nc > 1) /* c may be NULL when nothing was found */
        tc_qsort(c, nc, sizeof(*c), tail_cand_cmp);
    for (size_t i = 0; i < nc; i++) {
        /* Its row (if it has none) is stored with the caller's path
         * note, before the "first seen" time moves past it. */
        (void)tail_track(in, c[i].path, source, c[i].fd, &c[i].st, c[i].offset,
                         c[i].why);
        free(c[i].path);
    }
    free(c);
}

/* A position stored by an agent before file identities (key = path). */
static int
tail_legacy(struct tail_input *in, const char *path, const struct stat *st,
            const char *head, size_t n, uint64_t *off)
{
    struct spool_file row;

    if (tail_row(in->t, path, &row) < 0 || row.dev != (uint64_t)st->st_dev ||
        row.ino != (uint64_t)st->st_ino || !tail_head_matches(head, n, &row) ||
        row.offset > (uint64_t)st->st_size)
        return 0;
    *off = row.offset;
    return 1;
}

/*
 * What is at path (st: its stat, following symlinks) is not read, for
 * the reason why: said once, then skipped silently while the same file
 * is there (every scan would say it again otherwise).
 */
static void
tail_refuse(struct tail_input *in, struct tail_path *tp, const char *path,
            const struct stat *st, const char *why)
{

    if (tp->refused && tp->refused_dev == (uint64_t)st->st_dev &&
        tp->refused_ino == (uint64_t)st->st_ino)
        return;
    tp->refused = 1;
    tp->refused_dev = (uint64_t)st->st_dev;
    tp->refused_ino = (uint64_t)st->st_ino;
    in->t->stats.refused++;
    log_warnx("%s: %s", path, why);
}

/* One path the input matched (or, literal, names). */
static void
tail_scan_path(struct tail_input *in, const char *p, int initial)
{
    struct tail *t = in->t;
    struct tail_path *tp = tail_path_get(in, p);
    struct tail_file *f;
    struct spool_file row, *copy_of = NULL;
    struct stat st, ident;
    char head[SPOOL_HEAD_MAX], key[64], why[PATH_MAX + 128];
    const char *how;
    uint64_t off, size;
    size_t n;
    int fd, rc, succ, gone;
    /* Before the stat: whatever is at p now got there after this. */
    int64_t seen_ns = tc_now_ns() - TAIL_MTIME_SLACK_NS;

    tp->seen = 1;
    gone = stat(p, &st) < 0;
    if (gone || !S_ISREG(st.st_mode)) {
        /* A pattern may match directories; anything else that is not a
         * regular file (FIFO, socket, device) is refused, and said. */
        if (!gone && !S_ISDIR(st.st_mode)) {
            snprintf(why, sizeof(why), "%s, not read",
                     tail_type_name(st.st_mode));
            tail_refuse(in, tp, p, &st, why);
        }
        /* Gone while the agent was stopped: its last file may still
         * be around under a rotated name. */
        if (initial && tp->have)
            tail_track_siblings(in, p, p, (int64_t)tp->row.offset, NULL, 0, 0);
        return;
    }
    if (tp->refused && tp->refused_dev == (uint64_t)st.st_dev &&
        tp->refused_ino == (uint64_t)st.st_ino)
        return; /* refused and said so; skipped until it changes */
    if ((f = tail_find(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))) {
        f->live = 1;
        in->nmatched++;
        if (strcmp(f->name, p) != 0) {
            const char *slash;
            free(f->name);
            f->name = tc_xstrdup(p);
            slash = strrchr(f->name, '/');
            f->base = slash ? slash + 1 : f->name;
            f->watch = tail_watch_path(t, p);
        }
        tail_path_note(in, p, f, 0, seen_ns);
        return;
    }
    ident = st;
    rc = tail_open(in, p, in->literal, &fd, &st, why, sizeof(why));
    if (rc == -EPERM) {
        tail_refuse(in, tp, p, &ident, why);
        return;
    }
    if (rc < 0) {
        if (rc != -ENOENT)
            log_warnx("%s: cannot open: %s", p, strerror(-rc));
        return;
    }
    tp->refused = 0;
    if (tail_find(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) {
        close(fd); /* replaced between stat and open: next scan */
        return;
    }
    n = tail_head(fd, head);
    size = (uint64_t)st.st_size;
    succ = tp->have && (tp->row.dev != (uint64_t)st.st_dev ||
                        tp->row.ino != (uint64_t)st.st_ino);
    tail_key(key, sizeof(key), (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    rc = tail_row(t, key, &row);
    if (rc == 0 && tail_head_matches(head, n, &row) && row.offset <= size) {
        off = row.offset;
        how = "resuming";
    } else if (rc == 0) {
        /* Same inode, other content: truncated (and maybe written
         * again) while not read, or the inode was reused. */
        off = 0;
        how = "not the content read before (truncated, or inode reused); "
              "reading from the start";
        copy_of = &row;
    } else if (rc != -ENOENT) {
        close(fd);
        return;
    } else if (!tp->have && tail_legacy(in, p, &st, head, n, &off)) {
        how = "resuming";
    } else if (!tp->have && initial && in->conf->start_at == AGENT_START_END) {
        off = tail_end_offset(fd, size);
        how = "start_at end: reading what is written from now on";
    } else {
        off = 0;
        how = succ ? "new file at this path; reading from the start"
                   : "new file; reading from the start";
    }
    if ((initial && tp->have) || succ || copy_of != NULL)
        tail_track_siblings(in, p, p,
                            tp->have ? (int64_t)tp->row.offset : INT64_MAX,
                            copy_of, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    f = tail_track(in, p, p, fd, &st, off, how);
    f->live = 1;
    in->nmatched++;
    tail_path_note(in, p, f, copy_of != NULL, seen_ns);
}

static void
tail_scan_input(struct tail_input *in, int initial)
{
    struct tail_path **pp, *tp;
    glob_t g;

    for (tp = in->paths; tp != NULL; tp = tp->next)
        tp->seen = 0;
    in->nmatched = 0;
    /* Watch before reading so that no change falls in between. */
    if (in->watch_dir)
        (void)tail_watch_path(in->t, in->conf->path);
    if (in->literal) {
        tail_scan_path(in, in->conf->path, initial);
    } else {
        memset(&g, 0, sizeof(g));
        if (glob(in->conf->path, GLOB_NOSORT, NULL, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; i++)
                if (!tail_excluded(in, g.gl_pathv[i]))
                    tail_scan_path(in, g.gl_pathv[i], initial);
        globfree(&g);
    }
    /* Paths no longer matched are reloaded from the spool if they
     * come back. */
    for (pp = &in->paths; (tp = *pp) != NULL;) {
        if (tp->seen) {
            pp = &tp->next;
            continue;
        }
        *pp = tp->next;
        free(tp->path);
        free(tp);
    }
}

/*
 * A file no longer at any matching path is let go once it is at its end
 * and has not grown for quiet_ns: a writer may still hold it, so its end
 * is not known before. Its last partial line and open record are sent.
 * Returns 1 if it was let go (the caller unlinks and frees it).
 */
static int
tail_let_go(struct tail_file *f)
{
    struct tail *t = f->in->t;
    struct stat st;

    if (!f->eof || f->pending || t->now - f->grew_ns < t->quiet_ns)
        return 0;
    if (fstat(f->fd, &st) < 0)
        return 0;
    if ((uint64_t)st.st_size != f->line_off + f->rem_len + f->skip) {
        f->eof = 0;
        tail_schedule(f);
        return 0;
    }
    (void)tail_pass(f, 1);
    if (f->rec_open || f->rem_len > 0 || f->skip > 0 ||
        f->offset != (uint64_t)st.st_size)
        return 0; /* the commit failed; retried on the next tick */
    log_info("%s: rotated away and read to its end (%" PRIu64
             " bytes); letting it go",
             f->source, f->offset);
    t->stats.let_go++;
    t->stats.open--;
    return 1;
}

/*
 * An input that matches no file is most often a typo or a service not
 * installed yet: say so once, and again only after it has matched
 * something and lost it. Not while a file it found is still open (a
 * rotation between rename and create, read to its end first): the
 * input is not idle then, and every rotation would warn.
 */
static void
tail_note_matches(struct tail *t)
{
    for (size_t i = 0; i < t->ninputs; i++) {
        struct tail_input *in = &t->inputs[i];
        const struct tail_file *f;

        if (in->nmatched > 0) {
            if (in->no_match)
                log_info("files[%zu] %s: matches %" PRIu32 " file%s again", i,
                         in->conf->path, in->nmatched,
                         in->nmatched == 1 ? "" : "s");
            in->no_match = 0;
            continue;
        }
        for (f = t->files; f != NULL && f->in != in; f = f->next)
            ;
        if (f != NULL || in->no_match)
            continue;
        in->no_match = 1;
        log_warnx("files[%zu] %s: matches no file; nothing is read from it "
                  "until one appears",
                  i, in->conf->path);
    }
}

static void
tail_scan(struct tail *t, int initial)
{
    struct tail_file **pp, *f;

    t->now = tc_mono_ns();
    for (f = t->files; f != NULL; f = f->next)
        f->live = 0;
    for (size_t i = 0; i < t->ninputs && !t->stopping; i++)
        tail_scan_input(&t->inputs[i], initial);
    t->now = tc_mono_ns();
    for (pp = &t->files; (f = *pp) != NULL;) {
        if (f->live || t->stopping || !tail_let_go(f)) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        tail_ungate(f);
        tail_file_free(f);
    }
    if (!t->stopping)
        tail_note_matches(t);
}

/* ---- the loop -------------------------------------------------------- */

static void
tail_idle_cb(uv_idle_t *h)
{
    struct tail *t = h->data;
    int more = 0;

    if (t->rescan) {
        t->rescan = 0;
        tail_scan(t, 0);
    }
    for (struct tail_file *f = t->files; f != NULL && !t->stopping;
         f = f->next) {
        if (!f->pending)
            continue;
        f->pending = tail_pass(f, 0);
    }
    /* A pass may have scheduled files already passed (ungating). */
    for (struct tail_file *f = t->files; f != NULL; f = f->next)
        more |= f->pending;
    if (!more || t->stopping)
        uv_idle_stop(&t->idle);
}

static void
tail_fs_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    struct tail_watch *w = h->data;
    struct tail *t = w->t;
    int hit = 0;

    if (t->stopping)
        return;
    tail_pace(t, 1);
    if (status < 0 || name == NULL || (events & UV_RENAME)) {
        /* Created, deleted or renamed: the matches may have changed. */
        t->rescan = 1;
        uv_idle_start(&t->idle, tail_idle_cb);
    }
    for (struct tail_file *f = t->files; f != NULL; f = f->next) {
        if (f->watch == w && name != NULL && strcmp(f->base, name) == 0) {
            tail_schedule(f);
            hit = 1;
        }
    }
    /* A rotated file is written under a name we do not know. */
    if (!hit)
        for (struct tail_file *f = t->files; f != NULL; f = f->next)
            if (f->watch == w && !f->live)
                tail_schedule(f);
}

/* A pass wrote the first n bytes of a buffer (buf or arena). */
static void
tail_used(struct tail *t, size_t *dirty, size_t n)
{
    if (n > *dirty)
        *dirty = n;
    if (n > TAIL_BUF_KEEP)
        t->big_ns = t->now;
}

/*
 * Give back the pages of p past TAIL_BUF_KEEP that passes wrote (the
 * first dirty bytes). Their content is dead between passes, and
 * MADV_DONTNEED on private anonymous memory leaves zero pages to be
 * faulted in by the next large pass. free() would not do: after glibc
 * unmaps one large block it serves blocks of that size from the heap,
 * which it seldom returns. Only whole pages inside the block are
 * passed, so whatever the allocator keeps around it is untouched.
 */
static void
tail_trim_buf(struct tail *t, char *p, size_t *dirty)
{
    uintptr_t lo, hi;

    if (p == NULL || *dirty <= TAIL_BUF_KEEP)
        return;
    lo = ((uintptr_t)p + TAIL_BUF_KEEP + t->page - 1) &
         ~(uintptr_t)(t->page - 1);
    hi = ((uintptr_t)p + *dirty) & ~(uintptr_t)(t->page - 1);
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
        t->stats.trimmed += hi - lo;
    *dirty = TAIL_BUF_KEEP;
}

/* After quiet_ns without a large pass: see "Memory" at the top. */
static void
tail_trim(struct tail *t)
{
    if (t->buf_dirty <= TAIL_BUF_KEEP && t->arena_dirty <= TAIL_BUF_KEEP)
        return;
    if (tc_mono_ns() - t->big_ns < t->quiet_ns)
        return;
    tail_trim_buf(t, t->buf, &t->buf_dirty);
    tail_trim_buf(t, t->arena, &t->arena_dirty);
}

static void
tail_poll_cb(uv_timer_t *h)
{
    struct tail *t = h->data;

    tail_scan(t, 0);
    for (struct tail_file *f = t->files; f != NULL; f = f->next)
        tail_schedule(f);
    tail_trim(t);
    tail_pace(t, 0);
}

/* Whether inotify covers every input: each input's directory (and the
 * directory of each open file) has a started watch. */
static int
tail_all_watched(const struct tail *t)
{
    for (size_t i = 0; i < t->ninputs; i++)
        if (!t->inputs[i].watch_dir)
            return 0;
    for (const struct tail_watch *w = t->watches; w != NULL; w = w->next)
        if (!w->started)
            return 0;
    for (const struct tail_file *f = t->files; f != NULL; f = f->next)
        if (f->watch == NULL || !f->watch->started)
            return 0;
    return 1;
}

/* Set the poll's interval (see TAIL_SLOW_FACTOR); seen: an inotify
 * event just came. */
static void
tail_pace(struct tail *t, int seen)
{
    uint64_t fast = t->cfg->poll_interval_ms, ms = fast;
    int64_t now = tc_mono_ns();
    int slow;

    if (seen)
        t->seen_ns = now;
    slow = !seen &&
           now - t->seen_ns >= (int64_t)fast * TAIL_QUIET_POLLS * TAIL_MS &&
           tail_all_watched(t);
    if (slow == (int)t->stats.slow_poll)
        return;
    t->stats.slow_poll = (uint32_t)slow;
    if (slow) {
        ms = fast * TAIL_SLOW_FACTOR;
        if (ms > TAIL_SLOW_MAX_MS)
            ms = fast > TAIL_SLOW_MAX_MS ? fast : TAIL_SLOW_MAX_MS;
    }
    uv_timer_start(&t->poll, tail_poll_cb, ms, ms);
}

/* ---- life cycle ------------------------------------------------------ */

/* The directories of path before its first component with a glob
 * character (all of them for a literal path), without the last slash. */
static char *
tail_prefix(const char *path)
{
    size_t g = strcspn(path, "*?[");
    size_t n = 0;

    for (size_t i = 0; i < g && path[i] != '\0'; i++)
        if (path[i] == '/')
            n = i;
    return tc_xstrndup(path, n);
}

int
tail_new(uv_loop_t *loop, const struct agent_config *cfg,
         struct rules *const *rules, struct spool *spool, struct emit *emit,
         struct tail **out)
{
    struct tail *t = tc_xcalloc(1, sizeof(*t));
    int bad = 0, ml = 0;

    t->loop = loop;
    t->cfg = cfg;
    t->spool = spool;
    t->emit = emit;
    emit_batch_init(&t->batch);
    t->read_max = (size_t)cfg->read_max_bytes;
    t->max_line = cfg->max_line_bytes;
    if (t->max_line > TC_WIRE_MAX_STR)
        t->max_line = TC_WIRE_MAX_STR;
    t->flush_ns = (int64_t)cfg->flush_timeout_ms * TAIL_MS;
    t->quiet_ns = (int64_t)cfg->poll_interval_ms * TAIL_MS;
    if (t->quiet_ns < t->flush_ns)
        t->quiet_ns = t->flush_ns;
    t->buf = tc_xmalloc(t->max_line + t->read_max);
    t->page = (size_t)sysconf(_SC_PAGESIZE);
    t->ninputs = cfg->nfiles;
    t->inputs = tc_xcalloc(t->ninputs ? t->ninputs : 1, sizeof(*t->inputs));
    for (size_t i = 0; i < t->ninputs; i++) {
        struct tail_input *in = &t->inputs[i];
        const char *slash;

        in->t = t;
        in->conf = &cfg->files[i];
        in->rules = rules[i];
        in->literal = strpbrk(in->conf->path, "*?[") == NULL;
        in->prefix = tail_prefix(in->conf->path);
        slash = strrchr(in->conf->path, '/');
        in->watch_dir = slash != NULL && strcspn(in->conf->path, "*?[") >
                                             (size_t)(slash - in->conf->path);
        if (in->conf->multiline.start == NULL)
            continue;
        if (tail_ml_compile(cfg, in->conf, &in->ml, &in->ml_jit) < 0) {
            bad = 1;
            continue;
        }
        in->ml_md = pcre2_match_data_create(1, NULL);
        ml = 1;
    }
    if (ml) {
        t->arena_cap = t->read_max + 2 * t->max_line;
        t->arena = tc_xmalloc(t->arena_cap);
    }
    if (bad) {
        tail_free(t);
        return -EINVAL;
    }
    *out = t;
    return 0;
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
    t->started = 1;
    t->seen_ns = tc_mono_ns();
    tail_scan(t, 1);
    uv_timer_start(&t->poll, tail_poll_cb, t->cfg->poll_interval_ms,
                   t->cfg->poll_interval_ms);
    return 0;
}

static void
tail_closed_cb(uv_handle_t *h)
{
    struct tail *t = h->data;

    if (h->type == UV_FS_EVENT)
        t = ((struct tail_watch *)h->data)->t;
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
    if (!t->started) {
        if (on_stopped != NULL)
            on_stopped(arg);
        return;
    }
    t->closing = 2;
    for (struct tail_watch *w = t->watches; w != NULL; w = w->next)
        t->closing++;
    uv_close((uv_handle_t *)&t->idle, tail_closed_cb);
    uv_close((uv_handle_t *)&t->poll, tail_closed_cb);
    for (struct tail_watch *w = t->watches; w != NULL; w = w->next)
        uv_close((uv_handle_t *)&w->h, tail_closed_cb);
}

void
tail_free(struct tail *t)
{
    if (t == NULL)
        return;
    while (t->files != NULL) {
        struct tail_file *f = t->files;
        t->files = f->next;
        tail_file_free(f);
    }
    while (t->watches != NULL) {
        struct tail_watch *w = t->watches;
        t->watches = w->next;
        free(w->dir);
        free(w);
    }
    for (size_t i = 0; i < t->ninputs; i++) {
        struct tail_input *in = &t->inputs[i];
        while (in->paths != NULL) {
            struct tail_path *tp = in->paths;
            in->paths = tp->next;
            free(tp->path);
            free(tp);
        }
        pcre2_match_data_free(in->ml_md);
        pcre2_code_free(in->ml);
        free(in->prefix);
    }
    free(t->inputs);
    free(t->buf);
    free(t->arena);
    emit_batch_close(&t->batch);
    free(t);
}

void
tail_get_stats(const struct tail *t, struct tail_stats *out)
{
    *out = t->stats;
}

void
tail_inputs(const struct tail *t,
            void (*cb)(void *arg, const struct tail_input_info *ii), void *arg)
{
    struct tail_input_info ii;

    for (size_t i = 0; i < t->ninputs; i++) {
        ii.index = i;
        ii.path = t->inputs[i].conf->path;
        ii.matched = t->inputs[i].nmatched;
        ii.no_match = t->inputs[i].no_match;
        cb(arg, &ii);
    }
}

void
tail_files(const struct tail *t,
           void (*cb)(void *arg, const struct tail_file_info *fi), void *arg)
{
    struct tail_file_info fi;

    for (const struct tail_file *f = t->files; f != NULL; f = f->next) {
        fi.source = f->source;
        fi.name = f->name;
        fi.offset = f->offset;
        fi.size = f->size;
        fi.rotated = !f->live;
        cb(arg, &fi);
    }
}
