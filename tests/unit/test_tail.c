/*
 * test_tail: a real tail on a real uv loop over files in a fresh
 * mkdtemp directory, with a real spool and emit: globs and exclude,
 * start_at end, rename rotation read to the end, copytruncate (the copy
 * is finished), delete and recreate, two rotations between two reads,
 * rotation while stopped, a kill right after a start's scan (before any
 * pass) followed by a rotation, inode reuse (same inode, other head), the
 * partial line flushed after flush_timeout, multiline records and
 * max_lines, an exact resume after a restart, and which files are not
 * read: symlinks out of bounds, FIFOs, /proc. Every check reads the
 * events back from the spool and compares their exact messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit.h"
#include "rules.h"
#include "spool.h"
#include "tail.h"
#include "util.h"
#include "wire.h"

#define MAXEV 256

struct fx {
    char dir[64];
    char state[PATH_MAX];
    char pattern[PATH_MAX];
    char *exclude[1];
    uv_loop_t loop;
    struct agent_config cfg;
    struct agent_file file;
    struct agent_rule rule;
    struct rules *rs;
    struct spool *spool;
    struct emit *e;
    struct tail *t;
    /* what the spool holds, read by fx_events */
    size_t n;
    char msg[MAXEV][256];
    char src[MAXEV][PATH_MAX];
};

static struct fx *F;

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
setup(void **state)
{
    struct fx *f = tc_xcalloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_tail.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    snprintf(f->pattern, sizeof(f->pattern), "%s/app.log", f->dir);
    f->cfg.file = "agent.yaml";
    f->cfg.poll_interval_ms = 20;
    f->cfg.inotify = 1;
    f->cfg.read_max_bytes = 4096;
    f->cfg.max_line_bytes = 256;
    f->cfg.flush_timeout_ms = 150;
    f->cfg.files = &f->file;
    f->cfg.nfiles = 1;
    f->file.path = f->pattern;
    f->file.rules = &f->rule;
    f->file.nrules = 1;
    f->file.line = 7;
    f->rule.name = "all";
    f->rule.match = ".";
    f->rule.severity = TC_SEV_ERROR;
    f->rule.line = 9;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    F = f;
    *state = f;
    return 0;
}

static void
fx_start(struct fx *f)
{
    char err[256];

    assert_int_equal(
        rules_new("agent.yaml", &f->file, &f->rs, err, sizeof(err)), 0);
    assert_int_equal(spool_open(f->state, 64 << 20, &f->spool), 0);
    f->e = emit_new(&f->loop, &f->cfg, f->spool, "web-01", NULL, NULL);
    assert_int_equal(emit_start(f->e), 0);
    assert_int_equal(tail_new(&f->loop, &f->cfg, &f->rs, f->spool, f->e, &f->t),
                     0);
    assert_int_equal(tail_start(f->t), 0);
}

static void
fx_stop(struct fx *f)
{
    if (f->t == NULL)
        return;
    tail_stop(f->t, NULL, NULL);
    emit_stop(f->e, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    tail_free(f->t);
    emit_free(f->e);
    spool_free(f->spool);
    rules_free(f->rs);
    f->t = NULL;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    fx_stop(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int
collect(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct fx *f = arg;
    struct tc_frame fr;
    struct tc_event ev;
    const char *err = NULL;

    tc_frame_init(&fr);
    assert_int_equal(
        tc_event_decode(body, len, &tc_wire_default_limits, &fr, &ev, &err), 0);
    assert_true(f->n < MAXEV);
    snprintf(f->msg[f->n], sizeof(f->msg[0]), "%.*s", (int)ev.message.len,
             ev.message.ptr);
    snprintf(f->src[f->n], sizeof(f->src[0]), "%.*s", (int)ev.source.len,
             ev.source.ptr);
    f->n++;
    tc_frame_close(&fr);
    return 0;
}

static size_t
fx_events(struct fx *f)
{
    f->n = 0;
    assert_true(spool_read_from(f->spool, 1, MAXEV, SIZE_MAX, collect, f) >= 0);
    return f->n;
}

static void
msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Run the loop for ms milliseconds. */
static void
fx_run(struct fx *f, int ms)
{
    int64_t end = tc_mono_ns() + (int64_t)ms * 1000000;

    while (tc_mono_ns() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        msleep(2);
    }
}

/* Run until the spool holds n events (or 5 s), then a little longer so
 * that a duplicate would show. */
static void
fx_wait(struct fx *f, size_t n)
{
    int64_t end = tc_mono_ns() + 5 * (int64_t)1000000000;

    while (fx_events(f) < n && tc_mono_ns() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        msleep(2);
    }
    fx_run(f, 100);
    fx_events(f);
}

static void
put(const char *mode, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", F->dir, name);
    assert_non_null(fp = fopen(path, mode));
    fputs(text, fp);
    fclose(fp);
}

static void
mv(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];

    snprintf(a, sizeof(a), "%s/%s", F->dir, from);
    snprintf(b, sizeof(b), "%s/%s", F->dir, to);
    assert_int_equal(rename(a, b), 0);
}

/* The spool holds exactly these messages, in this order. */
static void
expect(struct fx *f, const char *const *want, size_t n)
{
    fx_wait(f, n);
    for (size_t i = 0; i < f->n && i < n; i++)
        if (strcmp(f->msg[i], want[i]) != 0)
            fail_msg("event %zu is '%s', expected '%s'", i, f->msg[i], want[i]);
    assert_int_equal(f->n, n);
}

#define EXPECT(f, ...)                                                         \
    do {                                                                       \
        static const char *const w_[] = {__VA_ARGS__};                         \
        expect(f, w_, sizeof(w_) / sizeof(w_[0]));                             \
    } while (0)

static void
test_glob_exclude(void **state)
{
    struct fx *f = *state;
    char want[PATH_MAX];

    snprintf(f->pattern, sizeof(f->pattern), "%s/*.log", f->dir);
    f->exclude[0] = "*/skip*";
    f->file.exclude = f->exclude;
    f->file.nexclude = 1;
    put("w", "a.log", "a1\n");
    put("w", "skip.log", "s1\n");
    put("w", "a.txt", "t1\n");
    fx_start(f);
    EXPECT(f, "a1");
    put("a", "b.log", "b1\n"); /* created while running */
    put("a", "skip.log", "s2\n");
    EXPECT(f, "a1", "b1");
    snprintf(want, sizeof(want), "%s/b.log", f->dir);
    assert_string_equal(f->src[1], want);
}

static void
test_start_at_end(void **state)
{
    struct fx *f = *state;

    snprintf(f->pattern, sizeof(f->pattern), "%s/*.log", f->dir);
    f->file.start_at = AGENT_START_END;
    put("w", "app.log", "old1\nold2\nhal");
    fx_start(f);
    fx_run(f, 100);
    assert_int_equal(fx_events(f), 0);
    put("a", "app.log", "f\nnew1\n");
    /* New while running: read from its start despite start_at end. */
    put("w", "late.log", "late1\n");
    fx_wait(f, 3);
    assert_int_equal(f->n, 3);
    /* The line being written at start is read whole. */
    assert_true(strcmp(f->msg[0], "half") == 0 ||
                strcmp(f->msg[1], "half") == 0 ||
                strcmp(f->msg[2], "half") == 0);
    fx_stop(f);
    /* start_at only concerns files without a stored position. */
    put("a", "app.log", "new2\n");
    fx_start(f);
    fx_wait(f, 4);
    assert_int_equal(f->n, 4);
    assert_string_equal(f->msg[3], "new2");
}

static void
test_rename_rotation(void **state)
{
    struct fx *f = *state;
    struct tail_stats st;

    put("w", "app.log", "1\n2\n");
    fx_start(f);
    EXPECT(f, "1", "2");
    /* Unread lines in the file renamed away, more after the new file
     * appeared, and a last line without its newline. */
    put("a", "app.log", "3\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "5\n");
    put("a", "app.log.1", "4\nlast");
    /* The partial last line of the rotated file is sent when it is let
     * go; the new file is not held back for it. */
    EXPECT(f, "1", "2", "3", "4", "5", "last");
    fx_run(f, 400);
    tail_get_stats(f->t, &st);
    assert_int_equal(st.let_go, 1);
    assert_int_equal(st.open, 1);
    put("a", "app.log", "6\n");
    EXPECT(f, "1", "2", "3", "4", "5", "last", "6");
}

static void
test_copytruncate(void **state)
{
    struct fx *f = *state;
    char a[PATH_MAX];

    put("w", "app.log", "1\n2\n");
    fx_start(f);
    EXPECT(f, "1", "2");
    /* logrotate copytruncate: 3 is written, copied, then truncated away
     * before the agent read it: it is read from the copy. */
    put("a", "app.log", "3\n");
    put("w", "app.log.1", "1\n2\n3\n");
    snprintf(a, sizeof(a), "%s/app.log", f->dir);
    assert_int_equal(truncate(a, 0), 0);
    put("a", "app.log", "4\n");
    EXPECT(f, "1", "2", "3", "4");
    put("a", "app.log", "5\n");
    EXPECT(f, "1", "2", "3", "4", "5");
}

static void
test_delete_recreate(void **state)
{
    struct fx *f = *state;
    char a[PATH_MAX];

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    put("a", "app.log", "2\n");
    snprintf(a, sizeof(a), "%s/app.log", f->dir);
    assert_int_equal(unlink(a), 0);
    put("w", "app.log", "3\n");
    EXPECT(f, "1", "2", "3");
}

static void
test_two_rotations_between_reads(void **state)
{
    struct fx *f = *state;

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    /* No loop iteration in between: the agent never sees B at app.log. */
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "3\n");
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "4\n");
    EXPECT(f, "1", "2", "3", "4");
}

static void
test_rotation_while_stopped(void **state)
{
    struct fx *f = *state;

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    fx_stop(f);
    /* Two rotations while stopped. */
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "3\n");
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "4\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4");
    fx_stop(f);
    /* And once more, with nothing new in the rotated file. */
    mv("app.log", "app.log.0");
    put("w", "app.log", "5\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4", "5");
}

/*
 * A start killed right after its first scan: tail_start tracks the
 * files and notes what is at each path, then the agent dies before any
 * read pass (none has run: the loop never ran).
 */
static void
fx_kill_after_scan(struct fx *f)
{
    fx_start(f);
    fx_stop(f);
}

/* The "first seen" time stored for app.log (wall clock, ns); the
 * agent is stopped. */
static int64_t
stored_since(struct fx *f)
{
    struct spool *sp;
    struct spool_file row;
    char key[PATH_MAX + 8];

    snprintf(key, sizeof(key), "path:%s", f->pattern);
    assert_int_equal(spool_open(f->state, 64 << 20, &sp), 0);
    assert_int_equal(spool_file_get(sp, key, &row), 0);
    spool_free(sp);
    return (int64_t)row.offset;
}

/*
 * Set name's mtime to ns: a file's times are what the restart rules
 * compare, and setting them makes a test independent of the clock's
 * and the file system's granularity (no sleeps).
 */
static void
set_mtime(const char *name, int64_t ns)
{
    char path[PATH_MAX];
    struct timespec ts[2];

    snprintf(path, sizeof(path), "%s/%s", F->dir, name);
    ts[0].tv_sec = (time_t)(ns / 1000000000);
    ts[0].tv_nsec = (long)(ns % 1000000000);
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/*
 * A file tracked as new at the path, killed before its first pass
 * committed, then rotated away while stopped (the e2e kill test lost
 * whole generations this way): the path row had moved past its mtime
 * while it had no "file:" row, so the next start took it for a file
 * read before. Its row (offset 0) must be stored with the path row.
 */
static void
test_killed_before_first_pass(void **state)
{
    struct fx *f = *state;
    int64_t since;

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    fx_stop(f);
    since = stored_since(f);
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "3\n");
    /* A and then B were written after A was first seen, and well
     * before the start below looks at them. */
    set_mtime("app.log.1", since + 500000);
    set_mtime("app.log", since + 1000000);
    fx_kill_after_scan(f); /* B (3) tracked at app.log, never read */
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "4\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4");
}

/*
 * Same with generations found unread at a start and the copy of a
 * truncated file: every file a start tracked keeps its place through
 * a kill before any of them was read, and one more rotation.
 */
static void
test_killed_before_any_pass(void **state)
{
    struct fx *f = *state;
    int64_t since;

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    fx_stop(f);
    since = stored_since(f);
    /* Two rotations while stopped: A (1, 2) -> .2, B (3) -> .1. */
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "3\n");
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "4\n");
    set_mtime("app.log.2", since + 500000);
    set_mtime("app.log.1", since + 1000000);
    set_mtime("app.log", since + 2000000);
    fx_kill_after_scan(f);
    fx_kill_after_scan(f); /* twice: the second start sees rows only */
    mv("app.log.2", "app.log.3");
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "5\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4", "5");
}

/*
 * copytruncate while stopped, then a start killed right after its scan
 * (it found the copy and would have finished it from the stored
 * offset), then a rename rotation: the copy and the truncated file
 * both keep their place.
 */
static void
test_killed_after_copytruncate(void **state)
{
    struct fx *f = *state;
    char a[PATH_MAX];
    int64_t since;

    snprintf(a, sizeof(a), "%s/app.log", f->dir);
    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    fx_stop(f);
    since = stored_since(f);
    put("a", "app.log", "2\n3\n");
    put("w", "app.log.1", "1\n2\n3\n"); /* logrotate's copy */
    assert_int_equal(truncate(a, 0), 0);
    put("a", "app.log", "4\n");
    set_mtime("app.log.1", since + 500000);
    set_mtime("app.log", since + 1000000);
    fx_kill_after_scan(f);
    mv("app.log.1", "app.log.2");
    mv("app.log", "app.log.1");
    put("w", "app.log", "5\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4", "5");
}

static void
test_inode_reuse(void **state)
{
    struct fx *f = *state;
    char a[PATH_MAX];
    struct stat st1, st2;
    FILE *fp;

    snprintf(a, sizeof(a), "%s/app.log", f->dir);
    put("w", "app.log", "one\ntwo\n");
    fx_start(f);
    EXPECT(f, "one", "two");
    fx_stop(f);
    /* Same inode, other content, longer than the stored offset: only the
     * head hash tells it is not the file read before. */
    assert_int_equal(stat(a, &st1), 0);
    assert_non_null(fp = fopen(a, "r+"));
    fputs("ONE\nTWO\nTHREE\n", fp);
    fclose(fp);
    assert_int_equal(stat(a, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    fx_start(f);
    EXPECT(f, "one", "two", "ONE", "TWO", "THREE");
}

static void
test_partial_flush(void **state)
{
    struct fx *f = *state;
    struct tail_stats st;

    f->cfg.flush_timeout_ms = 1000;
    put("w", "app.log", "1\npart");
    fx_start(f);
    EXPECT(f, "1");
    fx_run(f, 100); /* less than flush_timeout: still waiting */
    assert_int_equal(fx_events(f), 1);
    EXPECT(f, "1", "part");
    tail_get_stats(f->t, &st);
    assert_int_equal(st.flushed, 1);
    /* The rest comes later: a line of its own. */
    put("a", "app.log", "ial\n");
    EXPECT(f, "1", "part", "ial");
}

/* n lines of 100 bytes, then the line last. */
static void
burst(const char *mode, const char *last, int n)
{
    char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/app.log", F->dir);
    assert_non_null(fp = fopen(path, mode));
    for (int i = 0; i < n; i++)
        fprintf(fp, "%099d\n", i);
    fprintf(fp, "%s\n", last);
    fclose(fp);
}

/*
 * After a burst, the pages of the read buffer past the first 64 KiB are
 * given back once the file has been quiet for max(poll_interval,
 * flush_timeout), and the next burst reads correctly into the buffer.
 */
static void
test_idle_buffer_trimmed(void **state)
{
    struct fx *f = *state;
    struct tail_stats st;

    f->cfg.read_max_bytes = 256 << 10;
    f->rule.match = "^E";
    burst("w", "E1", 2000); /* 200 kB: one pass */
    fx_start(f);
    EXPECT(f, "E1");
    fx_run(f, 400); /* > flush_timeout: quiet */
    tail_get_stats(f->t, &st);
    assert_true(st.trimmed >= 100 << 10);
    assert_true(st.trimmed <= 200 << 10);
    burst("a", "E2", 2000);
    EXPECT(f, "E1", "E2");
    tail_get_stats(f->t, &st);
    assert_int_equal(st.lines, 4002);
    assert_int_equal(st.bytes, 2 * (2000 * 100 + 3));
}

/*
 * With every directory watched, the poll slows down after 40 quiet
 * intervals (here 0.8 s) and comes back with the next inotify event;
 * lines are read at once either way.
 */
static void
test_poll_slows_when_quiet(void **state)
{
    struct fx *f = *state;
    struct tail_stats st;

    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    tail_get_stats(f->t, &st);
    assert_int_equal(st.slow_poll, 0);
    fx_run(f, 1500);
    tail_get_stats(f->t, &st);
    assert_int_equal(st.slow_poll, 1);
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1"); /* rotation while slow */
    put("w", "app.log", "3\n");
    EXPECT(f, "1", "2", "3");
    tail_get_stats(f->t, &st);
    assert_int_equal(st.slow_poll, 0);
}

/*
 * tail.inotify: false (or no inotify): polling alone finds new lines,
 * a rotation and a new file, and the poll never slows down.
 */
static void
test_poll_only(void **state)
{
    struct fx *f = *state;
    struct tail_stats st;

    f->cfg.inotify = 0;
    put("w", "app.log", "1\n");
    fx_start(f);
    EXPECT(f, "1");
    put("a", "app.log", "2\n");
    mv("app.log", "app.log.1");
    put("w", "app.log", "3\n");
    EXPECT(f, "1", "2", "3");
    fx_run(f, 1500);
    tail_get_stats(f->t, &st);
    assert_int_equal(st.slow_poll, 0);
    put("a", "app.log", "4\n");
    EXPECT(f, "1", "2", "3", "4");
}

static void
test_multiline(void **state)
{
    struct fx *f = *state;

    f->file.multiline.start = "^\\d{4}-";
    f->file.multiline.max_lines = 4;
    put("w", "app.log",
        "2026-01-01 ERROR boom\n"
        "java.lang.IllegalStateException: x\n"
        "\tat a.B.c(B.java:1)\n"
        "2026-01-01 INFO ok\n"
        "2026-01-01 ERROR long\n"
        "l1\nl2\nl3\nl4\n");
    fx_start(f);
    EXPECT(f,
           "2026-01-01 ERROR boom\njava.lang.IllegalStateException: x\n"
           "\tat a.B.c(B.java:1)",
           "2026-01-01 INFO ok", "2026-01-01 ERROR long\nl1\nl2\nl3", "l4");
    fx_stop(f);
    /* An open record is re-read from its start after a restart. */
    put("a", "app.log", "2026-01-02 ERROR again\nx1\n");
    fx_start(f);
    fx_stop(f); /* stopped before flush_timeout closed it */
    put("a", "app.log", "x2\n2026-01-02 INFO next\n");
    fx_start(f);
    fx_wait(f, 6);
    assert_int_equal(f->n, 6);
    assert_string_equal(f->msg[4], "2026-01-02 ERROR again\nx1\nx2");
    assert_string_equal(f->msg[5], "2026-01-02 INFO next");
}

static void
test_bad_multiline(void **state)
{
    struct fx *f = *state;
    struct tail *t;
    struct rules *none[1] = {NULL};

    f->file.multiline.start = "([";
    f->file.multiline.max_lines = 4;
    assert_int_equal(tail_check_config(&f->cfg), -EINVAL);
    assert_int_equal(tail_new(&f->loop, &f->cfg, none, NULL, NULL, &t),
                     -EINVAL);
}

static void
test_restart_resumes_exactly(void **state)
{
    struct fx *f = *state;

    put("w", "app.log", "1\n2\n3");
    fx_start(f);
    EXPECT(f, "1", "2");
    fx_stop(f);
    put("a", "app.log", "\n4\n");
    fx_start(f);
    EXPECT(f, "1", "2", "3", "4");
    fx_stop(f);
    fx_start(f);
    fx_run(f, 100);
    assert_int_equal(fx_events(f), 4);
}

static void
link_to(const char *target, const char *name)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", F->dir, name);
    assert_int_equal(symlink(target, path), 0);
}

static void
mkd(const char *name)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", F->dir, name);
    assert_int_equal(mkdir(path, 0700), 0);
}

static uint64_t
refused(struct fx *f)
{
    struct tail_stats st;

    tail_get_stats(f->t, &st);
    return st.refused;
}

/*
 * A symlink matched by a pattern is not followed without
 * follow_symlinks, to a file outside (the /etc/shadow attack) or to
 * another file: it is refused once, not at every poll; a rotated
 * sibling that is a symlink is refused too.
 */
static void
test_symlink_not_followed(void **state)
{
    struct fx *f = *state;

    mkd("logs");
    put("w", "secret", "root:hash\n");
    snprintf(f->pattern, sizeof(f->pattern), "%s/logs/*.log", f->dir);
    put("w", "logs/app.log", "a1\n");
    link_to("../secret", "logs/evil.log");
    link_to("../secret", "logs/app.log.1"); /* as if rotated */
    fx_start(f);
    EXPECT(f, "a1");
    fx_run(f, 200); /* ten polls */
    assert_int_equal(refused(f), 1);
    /* A rotation makes the siblings be searched: still refused. */
    mv("logs/app.log", "logs/app.log.2");
    put("w", "logs/app.log", "a2\n");
    EXPECT(f, "a1", "a2");
    assert_int_equal(fx_events(f), 2);
}

/*
 * A directory symlink below the pattern's fixed part is not followed
 * either, while symlinks in the fixed part (the admin's own layout)
 * are.
 */
static void
test_symlink_dir_not_followed(void **state)
{
    struct fx *f = *state;

    mkd("apps");
    mkd("apps/a");
    mkd("private");
    link_to("apps", "view");
    link_to("../private", "apps/b");
    put("w", "apps/a/app.log", "a1\n");
    put("w", "private/app.log", "p1\n");
    snprintf(f->pattern, sizeof(f->pattern), "%s/view/*/app.log", f->dir);
    fx_start(f);
    EXPECT(f, "a1");
    fx_run(f, 200);
    assert_int_equal(refused(f), 1);
    assert_int_equal(fx_events(f), 1);
}

/*
 * The Kubernetes layout: containers/NAME.log are symlinks into
 * pods/...; with follow_symlinks: [pods] they are read, while a
 * symlink in the same directory to a file outside pods is not. A
 * symlink swapped later to point outside is not followed either.
 */
static void
test_symlink_roots(void **state)
{
    struct fx *f = *state;
    char pods[PATH_MAX], *roots[1] = {pods};

    mkd("pods");
    mkd("pods/web_1");
    mkd("containers");
    put("w", "secret", "root:hash\n");
    put("w", "pods/web_1/0.log", "w1\n");
    link_to("../pods/web_1/0.log", "containers/web.log");
    link_to("../secret", "containers/evil.log");
    snprintf(pods, sizeof(pods), "%s/pods", f->dir);
    snprintf(f->pattern, sizeof(f->pattern), "%s/containers/*.log", f->dir);
    f->file.follow_symlinks = roots;
    f->file.nfollow_symlinks = 1;
    fx_start(f);
    EXPECT(f, "w1");
    assert_int_equal(refused(f), 1);
    put("a", "pods/web_1/0.log", "w2\n");
    EXPECT(f, "w1", "w2");
    /* Swapped to point outside: the new target is refused. */
    mv("containers/web.log", "containers/old");
    link_to("../secret", "containers/web.log");
    fx_run(f, 300);
    assert_int_equal(refused(f), 2);
    put("a", "secret", "more\n");
    fx_run(f, 200);
    assert_int_equal(fx_events(f), 2);
}

/* A path named literally is the admin's: its symlink is followed. */
static void
test_symlink_literal(void **state)
{
    struct fx *f = *state;

    put("w", "real.log", "r1\n");
    link_to("real.log", "app.log"); /* f->pattern is DIR/app.log */
    fx_start(f);
    EXPECT(f, "r1");
    assert_int_equal(refused(f), 0);
}

/* A FIFO is refused (said once) and does not block the other files;
 * /proc is refused even when named. */
static void
test_not_regular(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX];

    snprintf(f->pattern, sizeof(f->pattern), "%s/*.log", f->dir);
    snprintf(path, sizeof(path), "%s/pipe.log", f->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    mkd("dir.log"); /* a directory: skipped without a word */
    put("w", "a.log", "a1\n");
    fx_start(f);
    EXPECT(f, "a1");
    fx_run(f, 200);
    assert_int_equal(refused(f), 1);
    fx_stop(f);
    snprintf(f->pattern, sizeof(f->pattern), "/proc/self/status");
    fx_start(f);
    fx_run(f, 100);
    assert_int_equal(refused(f), 1);
    assert_int_equal(fx_events(f), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_glob_exclude, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copytruncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_rotations_between_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rotation_while_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inode_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_first_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_killed_before_any_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_killed_after_copytruncate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_buffer_trimmed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_poll_slows_when_quiet, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_poll_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_multiline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_dir_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_exactly, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
