/*
 * test_spool: the agent's spool in a fresh mkdtemp state_dir per test:
 * events and offsets committed together and found again after reopen,
 * seq assignment across reopen, ack, renumber, the byte bound with its
 * drop counter and spool-full report, read order and batch limits, and
 * the lock against a second agent. Since schema 3 events are stored in
 * chunks (one row per commit): reads that start inside a chunk, acks
 * that end inside one (and survive a restart), commits split into
 * several chunks, damaged chunks, and the migration from one row per
 * event. The tests that look at the tables use SQLite directly.
 */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "seq.h"
#include "spool.h"
#include "util.h"
#include "wire.h"

static char tmpdir[64];         /* this test's scratch directory */
static char statedir[PATH_MAX]; /* tmpdir/state, created by the spool */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tocsin-spool-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(statedir, sizeof(statedir), "%s/state/sub", tmpdir);
    return 0;
}

static int
teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A log event whose message is msg. */
static struct tc_event
mkev(const char *msg)
{
    struct tc_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.ts = 1700000000000000000;
    ev.host = tc_str_c("web1");
    ev.kind = tc_str_c("log");
    ev.source = tc_str_c("/var/log/app.log");
    ev.rule = tc_str_c("error");
    ev.sev = TC_SEV_ERROR;
    ev.state = -1;
    ev.message = tc_str_c(msg);
    ev.count = 1;
    return ev;
}

static struct spool_file
mkpos(uint64_t offset)
{
    struct spool_file p = {.dev = 42,
                           .ino = 4242,
                           .head_hash = 0xfeedULL,
                           .head_len = 17,
                           .offset = offset};
    return p;
}

/* What read_from delivered: seqs and messages (decoded from bodies). */
struct got {
    size_t n;
    uint64_t seq[64];
    char msg[64][128];
    char kind[64][16];
    char rule[64][32];
    char host[64][16];
    enum tc_severity sev[64];
    size_t bytes;
};

static int
collect(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct got *g = arg;
    struct tc_frame f;
    struct tc_event ev;
    const char *err = NULL;

    tc_frame_init(&f);
    assert_int_equal(
        tc_event_decode(body, len, &tc_wire_default_limits, &f, &ev, &err), 0);
    /* The seq in the body is the seq of the row. */
    assert_int_equal(ev.seq, seq);
    assert_true(g->n < 64);
    g->seq[g->n] = seq;
    snprintf(g->msg[g->n], sizeof(g->msg[0]), "%.*s", (int)ev.message.len,
             ev.message.ptr);
    snprintf(g->kind[g->n], sizeof(g->kind[0]), "%.*s", (int)ev.kind.len,
             ev.kind.ptr);
    snprintf(g->rule[g->n], sizeof(g->rule[0]), "%.*s", (int)ev.rule.len,
             ev.rule.ptr);
    snprintf(g->host[g->n], sizeof(g->host[0]), "%.*s", (int)ev.host.len,
             ev.host.ptr);
    g->sev[g->n] = ev.sev;
    g->n++;
    g->bytes += len;
    tc_frame_close(&f);
    return 0;
}

static int
read_all(struct spool *s, uint64_t from, struct got *g)
{
    memset(g, 0, sizeof(*g));
    return spool_read_from(s, from, 64, SIZE_MAX, collect, g);
}

static void
test_append_with_offset(void **state)
{
    struct tc_event ev[3] = {mkev("one"), mkev("two"), mkev("three")};
    struct spool_file pos = mkpos(300), got;
    struct spool *s;
    struct got g;
    struct stat st;
    uint64_t epoch;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(stat(statedir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    epoch = spool_epoch(s);
    assert_true(epoch != 0);
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), -ENOENT);
    assert_int_equal(spool_append(s, ev, 3, "/var/log/app.log", &pos), 0);
    assert_int_equal(spool_depth(s), 3);
    spool_free(s);

    /* After reopen both halves of the transaction are there. */
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_epoch(s), epoch);
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), 0);
    assert_int_equal(got.offset, 300);
    assert_int_equal(got.dev, 42);
    assert_int_equal(got.ino, 4242);
    assert_int_equal(got.head_hash, 0xfeed);
    assert_int_equal(got.head_len, 17);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(read_all(s, 1, &g), 3);
    assert_int_equal(g.seq[0], 1);
    assert_int_equal(g.seq[2], 3);
    assert_string_equal(g.msg[0], "one");
    assert_string_equal(g.msg[2], "three");
    assert_int_equal(spool_bytes(s), g.bytes);

    /* An offset on its own (a pass without matching lines). */
    pos.offset = 900;
    assert_int_equal(spool_append(s, NULL, 0, "/var/log/app.log", &pos), 0);
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), 0);
    assert_int_equal(got.offset, 900);
    pos.offset = 1000;
    assert_int_equal(spool_file_put(s, "/var/log/app.log", &pos), 0);
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), 0);
    assert_int_equal(got.offset, 1000);
    assert_int_equal(spool_depth(s), 3);
    spool_free(s);
}

/* Several file rows in one transaction (tail stores a path row together
 * with the rows of the files it moves past): all there after a reopen. */
static void
test_files_put(void **state)
{
    const char *keys[] = {"file:1:10", "file:1:11", "path:/var/log/app.log"};
    struct spool_file rows[3] = {mkpos(0), mkpos(700), mkpos(123456789)};
    struct spool_file got;
    struct spool *s;

    rows[1].ino = 11;
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_files_put(s, keys, rows, 0), 0);
    assert_int_equal(spool_file_get(s, keys[0], &got), -ENOENT);
    assert_int_equal(spool_files_put(s, keys, rows, 3), 0);
    spool_free(s);
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(spool_file_get(s, keys[i], &got), 0);
        assert_int_equal(got.offset, rows[i].offset);
        assert_int_equal(got.ino, rows[i].ino);
        assert_int_equal(got.head_hash, rows[i].head_hash);
    }
    assert_int_equal(spool_depth(s), 0);
    spool_free(s);
}

static void
test_seq_across_reopen(void **state)
{
    struct tc_event ev[2] = {mkev("a"), mkev("b")};
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_next_seq(s), 1);
    assert_int_equal(spool_first_seq(s), 1);
    assert_int_equal(spool_append(s, ev, 2, NULL, NULL), 0);
    assert_int_equal(spool_ack(s, 2), 0);
    assert_int_equal(spool_depth(s), 0);
    assert_int_equal(spool_bytes(s), 0);
    spool_free(s);

    /* Seqs never restart, even when the spool was empty. */
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_next_seq(s), 3);
    assert_int_equal(spool_first_seq(s), 3);
    assert_int_equal(spool_append(s, ev, 2, NULL, NULL), 0);
    assert_int_equal(read_all(s, 0, &g), 2);
    assert_int_equal(g.seq[0], 3);
    assert_int_equal(g.seq[1], 4);
    spool_free(s);
}

static void
test_ack(void **state)
{
    struct tc_event ev[5] = {mkev("1"), mkev("2"), mkev("3"), mkev("4"),
                             mkev("5")};
    struct spool *s;
    struct got g;
    uint64_t bytes;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_append(s, ev, 5, NULL, NULL), 0);
    bytes = spool_bytes(s);
    assert_int_equal(spool_ack(s, 2), 0);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(spool_first_seq(s), 3);
    assert_int_equal(read_all(s, 0, &g), 3);
    assert_int_equal(g.seq[0], 3);
    assert_int_equal(spool_bytes(s), g.bytes);
    assert_true(spool_bytes(s) < bytes);
    /* A stale or repeated ack changes nothing. */
    assert_int_equal(spool_ack(s, 1), 0);
    assert_int_equal(spool_depth(s), 3);
    spool_free(s);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(spool_first_seq(s), 3);
    assert_int_equal(spool_bytes(s), g.bytes);
    assert_int_equal(spool_ack(s, 5), 0);
    assert_int_equal(spool_depth(s), 0);
    assert_int_equal(spool_first_seq(s), 6);
    spool_free(s);
}

static void
test_renumber(void **state)
{
    struct tc_event ev[4] = {mkev("w"), mkev("x"), mkev("y"), mkev("z")};
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_append(s, ev, 4, NULL, NULL), 0);
    assert_int_equal(spool_ack(s, 1), 0);
    /* seqs 2..4 spooled; the collector holds up to 100 of an old epoch. */
    assert_int_equal(spool_sync(s), 0);
    assert_true(spool_is_synced(s, 5));
    assert_int_equal(spool_renumber(s, 100), 0);
    assert_false(spool_is_synced(s, 102));
    assert_int_equal(spool_first_seq(s), 101);
    assert_int_equal(spool_next_seq(s), 104);
    assert_int_equal(read_all(s, 0, &g), 3);
    assert_int_equal(g.seq[0], 101);
    assert_int_equal(g.seq[2], 103);
    assert_string_equal(g.msg[0], "x");
    assert_string_equal(g.msg[2], "z");
    /* Nothing to shift when the spool is already above hwm. */
    assert_int_equal(spool_renumber(s, 50), 0);
    assert_int_equal(spool_first_seq(s), 101);
    spool_free(s);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_first_seq(s), 101);
    assert_int_equal(spool_next_seq(s), 104);
    assert_int_equal(spool_ack(s, 103), 0);
    /* Empty spool: only next_seq moves. */
    assert_int_equal(spool_renumber(s, 500), 0);
    assert_int_equal(spool_next_seq(s), 501);
    assert_int_equal(spool_first_seq(s), 501);
    assert_int_equal(spool_append(s, ev, 1, NULL, NULL), 0);
    assert_int_equal(read_all(s, 0, &g), 1);
    assert_int_equal(g.seq[0], 501);
    spool_free(s);
}

/*
 * A collector's mark at the top of the seq range (2^64-1 from a stolen
 * key wrapped next_seq to 0 and wedged the spool): refused, the spool
 * untouched and still usable; just below the top it still works.
 */
static void
test_renumber_top(void **state)
{
    struct tc_event ev[3] = {mkev("x"), mkev("y"), mkev("z")};
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_append(s, ev, 3, NULL, NULL), 0);
    assert_int_equal(spool_renumber(s, UINT64_MAX), -ERANGE);
    assert_int_equal(spool_renumber(s, UINT64_MAX - 1), -ERANGE);
    assert_int_equal(spool_renumber(s, TC_SEQ_MAX), -ERANGE);
    /* Three events and the next seq need hwm + 4 <= TC_SEQ_MAX. */
    assert_int_equal(spool_renumber(s, TC_SEQ_MAX - 3), -ERANGE);
    assert_int_equal(spool_first_seq(s), 1);
    assert_int_equal(spool_next_seq(s), 4);
    assert_int_equal(spool_append(s, ev, 1, NULL, NULL), 0);
    assert_int_equal(read_all(s, 0, &g), 4);
    assert_int_equal(g.seq[0], 1);
    assert_int_equal(g.seq[3], 4);

    assert_int_equal(spool_renumber(s, TC_SEQ_MAX - 5), 0);
    assert_int_equal(spool_first_seq(s), TC_SEQ_MAX - 4);
    assert_int_equal(spool_next_seq(s), TC_SEQ_MAX);
    /* No seq left: a new event is dropped, never numbered 0. */
    assert_int_equal(spool_append(s, ev, 1, NULL, NULL), 0);
    assert_int_equal(spool_next_seq(s), TC_SEQ_MAX);
    spool_free(s);

    /* The marks survive a reopen (no sign trouble in SQLite). */
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_first_seq(s), TC_SEQ_MAX - 4);
    assert_int_equal(spool_next_seq(s), TC_SEQ_MAX);
    assert_int_equal(read_all(s, 0, &g), 4);
    assert_int_equal(g.seq[0], TC_SEQ_MAX - 4);
    assert_int_equal(g.seq[3], TC_SEQ_MAX - 1);
    assert_string_equal(g.msg[0], "x");
    spool_free(s);
}

static void
test_bound_and_drops(void **state)
{
    char msg[500];
    struct tc_event ev[8];
    struct spool_file pos = mkpos(8000), got;
    struct spool *s;
    struct got g;
    uint64_t max = 2000;

    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (int i = 0; i < 8; i++)
        ev[i] = mkev(msg);
    assert_int_equal(spool_open(statedir, max, &s), 0);
    /* Each event is about 580 bytes: three fit under 2000, five drop. */
    assert_int_equal(spool_append(s, ev, 8, "/var/log/app.log", &pos), 0);
    assert_int_equal(spool_depth(s), 3);
    assert_true(spool_bytes(s) <= max);
    assert_int_equal(spool_drops(s), 5);
    assert_int_equal(spool_next_seq(s), 4);
    /* The offset advanced past the dropped lines all the same. */
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), 0);
    assert_int_equal(got.offset, 8000);
    spool_free(s);

    assert_int_equal(spool_open(statedir, max, &s), 0);
    assert_int_equal(spool_drops(s), 5);
    /* The link is back: the report goes in even though the spool is
     * full, and the counter is reset with it. */
    assert_int_equal(spool_report_drops(s, "web1"), 0);
    assert_int_equal(spool_drops(s), 0);
    assert_int_equal(spool_depth(s), 4);
    assert_int_equal(read_all(s, 4, &g), 1);
    assert_int_equal(g.seq[0], 4);
    assert_string_equal(g.msg[0], "dropped 5 events: spool full "
                                  "(max_bytes 2000)");
    /* Nothing to report twice. */
    assert_int_equal(spool_report_drops(s, "web1"), 0);
    assert_int_equal(spool_depth(s), 4);
    spool_free(s);

    assert_int_equal(spool_open(statedir, max, &s), 0);
    assert_int_equal(spool_drops(s), 0);
    assert_int_equal(spool_next_seq(s), 5);
    spool_free(s);
}

static void
test_report_fields(void **state)
{
    struct tc_event ev = mkev("big enough to overflow a tiny spool");
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1, &s), 0);
    assert_int_equal(spool_append(s, &ev, 1, NULL, NULL), 0);
    assert_int_equal(spool_drops(s), 1);
    assert_int_equal(spool_report_drops(s, "web1"), 0);
    assert_int_equal(read_all(s, 0, &g), 1);
    assert_int_equal(g.seq[0], 1);
    assert_string_equal(g.msg[0], "dropped 1 events: spool full "
                                  "(max_bytes 1)");
    assert_string_equal(g.kind[0], "agent");
    assert_string_equal(g.rule[0], "spool-full");
    assert_string_equal(g.host[0], "web1");
    assert_int_equal(g.sev[0], TC_SEV_WARNING);
    spool_free(s);
}

static int
stop_after_two(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    int *n = arg;
    if (++*n == 2)
        return -ECANCELED;
    return 0;
}

static void
test_read_from(void **state)
{
    struct tc_event ev[10];
    char msgs[10][8];
    struct spool *s;
    struct got g;
    size_t one;
    int n = 0;

    for (int i = 0; i < 10; i++) {
        snprintf(msgs[i], sizeof(msgs[i]), "m%d", i);
        ev[i] = mkev(msgs[i]);
    }
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    /* Several transactions, one per read pass. */
    assert_int_equal(spool_append(s, ev, 4, NULL, NULL), 0);
    assert_int_equal(spool_append(s, ev + 4, 6, NULL, NULL), 0);
    assert_int_equal(read_all(s, 0, &g), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(g.seq[i], (uint64_t)i + 1);
        assert_string_equal(g.msg[i], msgs[i]);
    }
    one = g.bytes / 10 + 1;
    /* From the middle, limited by count. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 5, 3, SIZE_MAX, collect, &g), 3);
    assert_int_equal(g.seq[0], 5);
    assert_int_equal(g.seq[2], 7);
    /* Limited by bytes, but never to nothing. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 1, 64, 2 * one, collect, &g), 2);
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 1, 64, 1, collect, &g), 1);
    /* Past the end. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 11, 64, SIZE_MAX, collect, &g), 0);
    /* The callback can stop the read. */
    assert_int_equal(spool_read_from(s, 1, 64, SIZE_MAX, stop_after_two, &n),
                     -ECANCELED);
    assert_int_equal(n, 2);
    spool_free(s);
}

static void
test_locked(void **state)
{
    struct spool *s, *s2 = (struct spool *)1;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    /* A second agent on the same state_dir is refused. */
    assert_int_equal(spool_open(statedir, 1 << 20, &s2), -EBUSY);
    assert_null(s2);
    spool_free(s);
    spool_free(NULL);
}

static void
test_many(void **state)
{
    enum { N = 50000, CHUNK = 1000 };
    struct tc_event ev[CHUNK];
    struct spool_file pos = mkpos(0);
    struct spool *s;

    for (int i = 0; i < CHUNK; i++)
        ev[i] = mkev("a line of a typical length, say 80 bytes or so, "
                     "with an ERROR in it");
    assert_int_equal(spool_open(statedir, 256 << 20, &s), 0);
    for (int i = 0; i < N / CHUNK; i++) {
        pos.offset += 80 * CHUNK;
        assert_int_equal(spool_append(s, ev, CHUNK, "/f", &pos), 0);
    }
    assert_int_equal(spool_depth(s), N);
    assert_int_equal(spool_next_seq(s), N + 1);
    assert_int_equal(spool_sync(s), 0);
    assert_true(spool_is_synced(s, N + 1));
    assert_int_equal(spool_ack(s, N / 2), 0);
    assert_int_equal(spool_depth(s), N / 2);
    spool_free(s);
}

static void
test_head_hash(void **state)
{
    /*
     * Pinned values, computed once from the implementation (64-bit
     * FNV-1a; the first three are FNV's published test vectors). They
     * must never change: every agent's spool stores the hash of each
     * tracked file's head, and a different hash after an upgrade would
     * make every file look new (rotated) and re-send it from offset 0.
     * A new hash needs a spool migration, not a new expected value.
     */
    static const struct {
        const char *p;
        size_t n;
        uint64_t h;
    } pinned[] = {
        {"", 0, UINT64_C(0xcbf29ce484222325)},
        {"a", 1, UINT64_C(0xaf63dc4c8601ec8c)},
        {"foobar", 6, UINT64_C(0x85944171f73967e8)},
        {"2026-01-01T00:00:00Z web-01 nginx: start\n", 41,
         UINT64_C(0xbe3728c3ae8270cd)},
        /* High bytes and a NUL: bytes are unsigned, the length rules. */
        {"\xff\x00\x80\n", 4, UINT64_C(0x67ae0e64905ac0fc)},
    };
    unsigned char head[SPOOL_HEAD_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++)
        assert_int_equal(spool_head_hash(pinned[i].p, pinned[i].n),
                         pinned[i].h);
    /* A whole head of SPOOL_HEAD_MAX bytes: 0, 1, ..., 255, 0, ... */
    for (size_t i = 0; i < sizeof(head); i++)
        head[i] = (unsigned char)i;
    assert_int_equal(spool_head_hash(head, sizeof(head)),
                     UINT64_C(0x1e5698f9d66e6f25));
    /* Only the first n bytes count. */
    assert_int_equal(spool_head_hash("abc", 3), spool_head_hash("abcd", 3));
}

/* Pending state rows seen by spool_state_load. */
struct states {
    int n;
    char key[8][32];
    uint64_t count[8], aux[8];
    int64_t due[8];
    char body[8][16];
};

static int
state_cb(void *arg, const struct spool_state *st)
{
    struct states *s = arg;

    assert_true(s->n < 8);
    snprintf(s->key[s->n], sizeof(s->key[0]), "%s", st->key);
    s->count[s->n] = st->count;
    s->aux[s->n] = st->aux;
    s->due[s->n] = st->due_ts;
    snprintf(s->body[s->n], sizeof(s->body[0]), "%.*s", (int)st->body_len,
             st->body ? (const char *)st->body : "");
    s->n++;
    return 0;
}

/* spool_commit: events, position, cursor and state in one transaction. */
static void
test_commit_batch(void **state)
{
    struct spool *s;
    struct spool_batch b;
    struct spool_state put[2] = {
        {"f:a", 3, 0, 10, 20, 200, (const uint8_t *)"AAA", 3},
        {"r:b", 7, 5, 10, 20, 100, NULL, 0},
    };
    const char *del[1] = {"f:a"};
    struct tc_event ev;
    struct states st;
    char *cur = NULL;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    memset(&ev, 0, sizeof(ev));
    ev.ts = 1;
    ev.host = tc_str_c("h");
    ev.kind = tc_str_c("log");
    ev.state = -1;
    ev.count = 1;
    memset(&b, 0, sizeof(b));
    b.evs = &ev;
    b.nevs = 1;
    b.cursor_key = "journal:sys";
    b.cursor = "s=1;i=9";
    b.put = put;
    b.nput = 2;
    assert_int_equal(spool_commit(s, &b), 0);
    assert_int_equal(spool_depth(s), 1);
    spool_free(s);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_cursor_get(s, "journal:sys", &cur), 0);
    assert_string_equal(cur, "s=1;i=9");
    free(cur);
    assert_int_equal(spool_cursor_get(s, "journal:other", &cur), -ENOENT);
    memset(&st, 0, sizeof(st));
    /* Earliest due first. */
    assert_int_equal(spool_state_load(s, state_cb, &st), 2);
    assert_string_equal(st.key[0], "r:b");
    assert_int_equal(st.count[0], 7);
    assert_int_equal(st.aux[0], 5);
    assert_string_equal(st.body[0], "");
    assert_string_equal(st.key[1], "f:a");
    assert_int_equal(st.due[1], 200);
    assert_string_equal(st.body[1], "AAA");

    /* Delete and re-put the same key in one batch: the put remains. */
    memset(&b, 0, sizeof(b));
    put[0].count = 1;
    b.put = put;
    b.nput = 1;
    b.del = del;
    b.ndel = 1;
    assert_int_equal(spool_commit(s, &b), 0);
    memset(&st, 0, sizeof(st));
    assert_int_equal(spool_state_load(s, state_cb, &st), 2);
    assert_int_equal(st.count[1], 1);
    b.nput = 0;
    assert_int_equal(spool_commit(s, &b), 0);
    memset(&st, 0, sizeof(st));
    assert_int_equal(spool_state_load(s, state_cb, &st), 1);
    /* spool_append still works as the thin wrapper it is. */
    assert_int_equal(spool_append(s, &ev, 1, NULL, NULL), 0);
    assert_int_equal(spool_depth(s), 2);
    spool_free(s);
}

/* A version 1 spool (before cursors and pending) is migrated. */
static void
test_migrate_v1(void **state)
{
    struct spool *s;
    struct states st;
    char cmd[PATH_MAX + 512];

    assert_int_equal(tc_mkdirs(statedir, 0700), 0);
    snprintf(cmd, sizeof(cmd),
             "sqlite3 %s/spool.db \"CREATE TABLE meta(key TEXT PRIMARY KEY, "
             "value); CREATE TABLE events(seq INTEGER PRIMARY KEY, bytes "
             "INTEGER NOT NULL, body BLOB NOT NULL); CREATE TABLE files(path "
             "TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, head_hash INTEGER, "
             "head_len INTEGER, offset INTEGER); INSERT INTO meta "
             "VALUES('epoch', 77); INSERT INTO meta VALUES('next_seq', 5); "
             "INSERT INTO meta VALUES('drops_full', 0); PRAGMA user_version "
             "= 1;\"",
             statedir);
    if (system(cmd) != 0)
        skip(); /* no sqlite3(1) */
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_epoch(s), 77);
    assert_int_equal(spool_next_seq(s), 5);
    memset(&st, 0, sizeof(st));
    assert_int_equal(spool_state_load(s, state_cb, &st), 0);
    spool_free(s);
}

/* Run SQL on the spool's database from outside (the spool is closed). */
static void
db_exec(const char *sql)
{
    char path[PATH_MAX + 16];
    sqlite3 *db;

    snprintf(path, sizeof(path), "%s/spool.db", statedir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* One integer from the spool's database, read from outside. */
static int64_t
db_int(const char *sql)
{
    char path[PATH_MAX + 16];
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;

    snprintf(path, sizeof(path), "%s/spool.db", statedir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Events m<first>..m<first+n-1> appended as one commit (one chunk). */
static void
append_msgs(struct spool *s, int first, int n, char msgs[][16])
{
    struct tc_event ev[64];

    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        snprintf(msgs[first + i], sizeof(msgs[0]), "m%d", first + i);
        ev[i] = mkev(msgs[first + i]);
    }
    assert_int_equal(spool_append(s, ev, (size_t)n, NULL, NULL), 0);
}

/* Reads that start anywhere inside a chunk, with and without a copy of
 * the chunk at hand, and batches that cross chunk boundaries. */
static void
test_read_mid_chunk(void **state)
{
    char msgs[15][16];
    struct spool *s;
    struct got g;
    size_t one;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    append_msgs(s, 0, 4, msgs);  /* seqs 1..4 */
    append_msgs(s, 4, 6, msgs);  /* 5..10 */
    append_msgs(s, 10, 5, msgs); /* 11..15 */
    spool_free(s);
    /* One row per commit, on pages sized for chunks. */
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), 3);
    assert_int_equal(db_int("PRAGMA page_size"), 16384);
    assert_int_equal(db_int("SELECT n FROM chunks WHERE seq_first = 5"), 6);
    assert_int_equal(db_int("SELECT seq_last FROM chunks WHERE seq_first = 11"),
                     15);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    /* Backwards, so that every read starts away from the last one. */
    for (int from = 15; from >= 1; from--) {
        assert_int_equal(read_all(s, (uint64_t)from, &g), 16 - from);
        for (size_t i = 0; i < g.n; i++) {
            assert_int_equal(g.seq[i], (uint64_t)from + i);
            assert_string_equal(g.msg[i], msgs[from - 1 + i]);
        }
    }
    assert_int_equal(spool_bytes(s), g.bytes);
    one = g.bytes / 15 + 1;
    /* Count limit across a chunk boundary. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 3, 3, SIZE_MAX, collect, &g), 3);
    assert_int_equal(g.seq[0], 3);
    assert_int_equal(g.seq[2], 5);
    assert_string_equal(g.msg[2], "m4");
    /* Byte limit across one. */
    memset(&g, 0, sizeof(g));
    assert_int_equal(spool_read_from(s, 10, 64, 2 * one, collect, &g), 2);
    assert_int_equal(g.seq[1], 11);
    /* In batches of 4, as the sender reads. */
    for (uint64_t from = 1, n; from <= 15; from += n) {
        memset(&g, 0, sizeof(g));
        n = (uint64_t)spool_read_from(s, from, 4, SIZE_MAX, collect, &g);
        assert_int_equal(n, from + 4 <= 16 ? 4 : 16 - from);
        assert_int_equal(g.seq[0], from);
        assert_string_equal(g.msg[n - 1], msgs[from + n - 2]);
    }
    /* Below the first unacked seq: from it. */
    assert_int_equal(spool_ack(s, 6), 0);
    assert_int_equal(read_all(s, 1, &g), 9);
    assert_int_equal(g.seq[0], 7);
    assert_string_equal(g.msg[0], "m6");
    assert_int_equal(read_all(s, 6, &g), 9);
    assert_int_equal(g.seq[0], 7);
    assert_int_equal(read_all(s, 8, &g), 8);
    assert_int_equal(g.seq[0], 8);
    spool_free(s);
}

/* An ack that ends inside a chunk is kept across a restart: nothing
 * acked is delivered again, and depth and bytes stay exact. */
static void
test_partial_ack_restart(void **state)
{
    char msgs[20][16];
    struct spool *s;
    struct got g;
    uint64_t bytes;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    append_msgs(s, 0, 10, msgs); /* seqs 1..10 */
    append_msgs(s, 10, 5, msgs); /* 11..15 */
    assert_int_equal(spool_ack(s, 4), 0);
    assert_int_equal(spool_depth(s), 11);
    assert_int_equal(spool_first_seq(s), 5);
    assert_int_equal(read_all(s, 0, &g), 11);
    assert_int_equal(g.seq[0], 5);
    assert_int_equal(spool_bytes(s), g.bytes);
    bytes = g.bytes;
    spool_free(s);
    /* The chunk is still there; meta.acked says how much of it is dead. */
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), 2);
    assert_int_equal(db_int("SELECT value FROM meta WHERE key = 'acked'"), 4);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_depth(s), 11);
    assert_int_equal(spool_first_seq(s), 5);
    assert_int_equal(spool_next_seq(s), 16);
    assert_int_equal(spool_bytes(s), bytes);
    assert_int_equal(read_all(s, 0, &g), 11);
    assert_int_equal(g.seq[0], 5);
    assert_string_equal(g.msg[0], "m4");
    assert_int_equal(g.seq[10], 15);
    /* A stale ack, then one that ends inside the second chunk. */
    assert_int_equal(spool_ack(s, 3), 0);
    assert_int_equal(spool_depth(s), 11);
    assert_int_equal(spool_ack(s, 12), 0);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(read_all(s, 0, &g), 3);
    assert_int_equal(spool_bytes(s), g.bytes);
    bytes = g.bytes;
    spool_free(s);
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), 1);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_first_seq(s), 13);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(spool_bytes(s), bytes);
    assert_int_equal(read_all(s, 0, &g), 3);
    assert_int_equal(g.seq[0], 13);
    assert_string_equal(g.msg[0], "m12");
    /* Renumbering leaves the acked head behind. */
    assert_int_equal(spool_renumber(s, 100), 0);
    assert_int_equal(spool_first_seq(s), 101);
    assert_int_equal(spool_next_seq(s), 104);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(read_all(s, 0, &g), 3);
    assert_int_equal(g.seq[0], 101);
    assert_string_equal(g.msg[0], "m12");
    assert_string_equal(g.msg[2], "m14");
    assert_int_equal(spool_bytes(s), g.bytes);
    bytes = g.bytes;
    spool_free(s);
    assert_int_equal(db_int("SELECT seq_first FROM chunks"), 101);
    assert_int_equal(db_int("SELECT n FROM chunks"), 3);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_first_seq(s), 101);
    assert_int_equal(spool_depth(s), 3);
    assert_int_equal(spool_bytes(s), bytes);
    assert_int_equal(spool_ack(s, 103), 0);
    assert_int_equal(spool_depth(s), 0);
    assert_int_equal(spool_bytes(s), 0);
    assert_int_equal(spool_first_seq(s), 104);
    spool_free(s);
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), 0);
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_first_seq(s), 104);
    assert_int_equal(spool_depth(s), 0);
    spool_free(s);
}

/* What a read delivered, checked as it comes: dense seqs from want. */
struct walk {
    uint64_t want;  /* the seq the next event must have */
    uint64_t bytes; /* body bytes seen */
    int decode;     /* 1: decode every body; else one per 1000 */
    char last[64];  /* message of the last decoded event */
};

static int
walk_cb(void *arg, uint64_t seq, const uint8_t *body, size_t len)
{
    struct walk *w = arg;

    assert_int_equal(seq, w->want);
    assert_true(len > 0);
    if (w->decode || seq % 1000 == 1) {
        struct tc_frame f;
        struct tc_event ev;

        tc_frame_init(&f);
        assert_int_equal(
            tc_event_decode(body, len, &tc_wire_default_limits, &f, &ev, NULL),
            0);
        assert_int_equal(ev.seq, seq);
        snprintf(w->last, sizeof(w->last), "%.*s", (int)ev.message.len,
                 ev.message.ptr);
        tc_frame_close(&f);
    }
    w->want++;
    w->bytes += len;
    return 0;
}

/* A commit bigger than a chunk is split into several rows. */
static void
test_big_commit(void **state)
{
    enum { N = 3000 };
    static struct tc_event ev[N];
    static char msgs[N][620];
    struct spool *s;
    struct walk w;
    uint64_t bytes;
    int n;

    for (int i = 0; i < N; i++) {
        memset(msgs[i], 'x', sizeof(msgs[i]) - 1);
        snprintf(msgs[i], 16, "big%d ", i);
        msgs[i][strlen(msgs[i])] = ' ';
        msgs[i][sizeof(msgs[i]) - 1] = '\0';
        ev[i] = mkev(msgs[i]);
    }
    assert_int_equal(spool_open(statedir, 64 << 20, &s), 0);
    assert_int_equal(spool_append(s, ev, N, NULL, NULL), 0);
    assert_int_equal(spool_depth(s), N);
    memset(&w, 0, sizeof(w));
    w.want = 1;
    w.decode = 1;
    for (uint64_t from = 1; from <= N; from += (uint64_t)n)
        assert_true((n = spool_read_from(s, from, 700, SIZE_MAX, walk_cb, &w)) >
                    0);
    assert_int_equal(w.want, N + 1);
    assert_true(strncmp(w.last, "big2999 ", 8) == 0);
    assert_int_equal(spool_bytes(s), w.bytes);
    bytes = w.bytes;
    spool_free(s);
    /* About 1.9 MB of bodies: more than one chunk, dense and ordered. */
    assert_true(db_int("SELECT count(*) FROM chunks") >= 2);
    assert_int_equal(db_int("SELECT sum(n) FROM chunks"), N);
    assert_int_equal(db_int("SELECT sum(bytes) FROM chunks"), bytes);
    assert_int_equal(db_int("SELECT max(seq_last) - min(seq_first) + 1 "
                            "FROM chunks"),
                     N);

    /* An ack inside the second chunk, then a restart. */
    assert_int_equal(spool_open(statedir, 64 << 20, &s), 0);
    n = (int)db_int("SELECT min(seq_last) FROM chunks") + 10;
    assert_int_equal(spool_ack(s, (uint64_t)n), 0);
    memset(&w, 0, sizeof(w));
    w.want = (uint64_t)n + 1;
    assert_int_equal(spool_read_from(s, 0, N, SIZE_MAX, walk_cb, &w), N - n);
    assert_int_equal(spool_bytes(s), w.bytes);
    bytes = w.bytes;
    spool_free(s);
    assert_int_equal(spool_open(statedir, 64 << 20, &s), 0);
    assert_int_equal(spool_depth(s), N - n);
    assert_int_equal(spool_bytes(s), bytes);
    spool_free(s);
}

/* A damaged chunk is reported, not delivered cut at the wrong places;
 * a missing one makes the spool refuse to open. */
static void
test_corrupt_chunk(void **state)
{
    char msgs[8][16];
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    append_msgs(s, 0, 3, msgs); /* seqs 1..3 */
    append_msgs(s, 3, 3, msgs); /* 4..6 */
    append_msgs(s, 6, 2, msgs); /* 7..8 */
    spool_free(s);
    db_exec("UPDATE chunks SET offs = substr(offs, 1, 8) "
            "WHERE seq_first = 4");
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(read_all(s, 1, &g), -EPROTO);
    assert_int_equal(read_all(s, 7, &g), 2);
    spool_free(s);
    /* A body cut short, or not a blob at all (the body is read apart
     * from its row). */
    db_exec("UPDATE chunks SET offs = (SELECT offs FROM chunks "
            "WHERE seq_first = 1), body = substr(body, 1, 10) "
            "WHERE seq_first = 4");
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(read_all(s, 4, &g), -EPROTO);
    spool_free(s);
    db_exec("UPDATE chunks SET body = 42 WHERE seq_first = 4");
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(read_all(s, 4, &g), -EPROTO);
    assert_int_equal(read_all(s, 1, &g), -EPROTO);
    assert_int_equal(read_all(s, 7, &g), 2);
    spool_free(s);
    db_exec("DELETE FROM chunks WHERE seq_first = 4");
    assert_int_equal(spool_open(statedir, 1 << 20, &s), -EPROTO);
}

/* A version 2 spool (one row per event) is migrated into chunks with
 * everything it held. */
static void
test_migrate_v2(void **state)
{
    char path[PATH_MAX + 16], msg[8], news[1][16];
    struct spool_file got;
    struct spool *s;
    struct states st;
    struct got g;
    struct tc_buf b;
    sqlite3 *db;
    sqlite3_stmt *ins;
    uint64_t bytes = 0;
    char *cur = NULL;

    assert_int_equal(tc_mkdirs(statedir, 0700), 0);
    snprintf(path, sizeof(path), "%s/spool.db", statedir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "PRAGMA journal_mode = WAL;"
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
            "CREATE TABLE events(seq INTEGER PRIMARY KEY,"
            " bytes INTEGER NOT NULL, body BLOB NOT NULL);"
            "CREATE TABLE files(path TEXT PRIMARY KEY, dev INTEGER,"
            " ino INTEGER, head_hash INTEGER, head_len INTEGER,"
            " offset INTEGER);"
            "CREATE TABLE cursors(key TEXT PRIMARY KEY, cursor TEXT NOT NULL);"
            "CREATE TABLE pending(key TEXT PRIMARY KEY,"
            " count INTEGER NOT NULL, aux INTEGER NOT NULL,"
            " first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,"
            " due_ts INTEGER NOT NULL, body BLOB);"
            "INSERT INTO meta VALUES('epoch', 77);"
            "INSERT INTO meta VALUES('next_seq', 8);"
            "INSERT INTO meta VALUES('drops_full', 2);"
            "INSERT INTO files VALUES('/var/log/app.log', 42, 4242, 65261,"
            " 17, 700);"
            "INSERT INTO cursors VALUES('journal:sys', 's=1;i=9');"
            "INSERT INTO pending VALUES('f:a', 3, 0, 10, 20, 200, x'414141');"
            "PRAGMA user_version = 2;",
            NULL, NULL, NULL),
        SQLITE_OK);
    /* Seqs 1 and 2 were acked and deleted; 3..7 wait for the collector. */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO events(seq, bytes, body) "
                                        "VALUES(?1, ?2, ?3)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    tc_buf_init(&b, 1 << 20);
    for (int seq = 3; seq <= 7; seq++) {
        struct tc_event ev;

        snprintf(msg, sizeof(msg), "old%d", seq);
        ev = mkev(msg);
        ev.seq = (uint64_t)seq;
        tc_buf_reset(&b);
        assert_int_equal(tc_event_encode(&b, &ev), 0);
        sqlite3_bind_int64(ins, 1, seq);
        sqlite3_bind_int64(ins, 2, (int64_t)tc_buf_size(&b));
        sqlite3_bind_blob(ins, 3, tc_buf_head(&b), (int)tc_buf_size(&b),
                          SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        bytes += tc_buf_size(&b);
    }
    tc_buf_close(&b);
    sqlite3_finalize(ins);
    sqlite3_close(db);

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_epoch(s), 77);
    assert_int_equal(spool_next_seq(s), 8);
    assert_int_equal(spool_first_seq(s), 3);
    assert_int_equal(spool_depth(s), 5);
    assert_int_equal(spool_bytes(s), bytes);
    assert_int_equal(spool_drops(s), 2);
    assert_int_equal(read_all(s, 0, &g), 5);
    assert_int_equal(g.seq[0], 3);
    assert_string_equal(g.msg[0], "old3");
    assert_int_equal(g.seq[4], 7);
    assert_string_equal(g.msg[4], "old7");
    assert_int_equal(g.bytes, bytes);
    assert_int_equal(spool_file_get(s, "/var/log/app.log", &got), 0);
    assert_int_equal(got.offset, 700);
    assert_int_equal(spool_cursor_get(s, "journal:sys", &cur), 0);
    assert_string_equal(cur, "s=1;i=9");
    free(cur);
    memset(&st, 0, sizeof(st));
    assert_int_equal(spool_state_load(s, state_cb, &st), 1);
    assert_string_equal(st.body[0], "AAA");
    /* New events follow on, in a chunk of their own. */
    append_msgs(s, 0, 1, news);
    assert_int_equal(read_all(s, 7, &g), 2);
    assert_int_equal(g.seq[1], 8);
    spool_free(s);
    assert_int_equal(db_int("PRAGMA user_version"), 3);
    assert_int_equal(db_int("SELECT count(*) FROM sqlite_master "
                            "WHERE name = 'events'"),
                     0);
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), 2);
    assert_int_equal(db_int("SELECT n FROM chunks WHERE seq_first = 3"), 5);

    /* Opening again migrates nothing more. */
    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_depth(s), 6);
    spool_free(s);
}

/* A million events in chunks of 1000: counts, reads in sender-sized
 * batches, acks inside chunks, a restart. Performance is bench/'s. */
static void
test_million(void **state)
{
    enum { N = 1000000, CHUNK = 1000 };
    static struct tc_event ev[CHUNK];
    struct spool_file pos = mkpos(0);
    struct spool *s;
    struct walk w;
    uint64_t bytes;
    int n;

    for (int i = 0; i < CHUNK; i++)
        ev[i] = mkev("2026-11-26T10:00:00.000000Z app[311]: INFO GET "
                     "/api/v1/items/1 200 12ms");
    assert_int_equal(spool_open(statedir, 1ULL << 30, &s), 0);
    for (int i = 0; i < N / CHUNK; i++) {
        pos.offset += 80 * CHUNK;
        assert_int_equal(spool_append(s, ev, CHUNK, "/f", &pos), 0);
    }
    assert_int_equal(spool_depth(s), N);
    assert_int_equal(spool_next_seq(s), N + 1);
    memset(&w, 0, sizeof(w));
    w.want = 1;
    for (uint64_t from = 1; from <= N; from += (uint64_t)n)
        assert_true(
            (n = spool_read_from(s, from, 1000, 256 << 10, walk_cb, &w)) > 0);
    assert_int_equal(w.want, N + 1);
    assert_int_equal(spool_bytes(s), w.bytes);
    /* Acks as a sender would send them: every 1000, off the chunks. */
    for (uint64_t upto = 500; upto < N / 2; upto += 1000)
        assert_int_equal(spool_ack(s, upto), 0);
    assert_int_equal(spool_first_seq(s), N / 2 - 500 + 1);
    assert_int_equal(spool_depth(s), N / 2 + 500);
    bytes = spool_bytes(s);
    spool_free(s);
    assert_int_equal(db_int("SELECT count(*) FROM chunks"), N / CHUNK / 2 + 1);

    assert_int_equal(spool_open(statedir, 1ULL << 30, &s), 0);
    assert_int_equal(spool_depth(s), N / 2 + 500);
    assert_int_equal(spool_bytes(s), bytes);
    memset(&w, 0, sizeof(w));
    w.want = N / 2 - 500 + 1;
    for (uint64_t from = 0; w.want <= N; from = w.want)
        assert_true(spool_read_from(s, from, 1000, 256 << 10, walk_cb, &w) > 0);
    assert_int_equal(w.bytes, bytes);
    assert_int_equal(spool_ack(s, N), 0);
    assert_int_equal(spool_depth(s), 0);
    assert_int_equal(spool_bytes(s), 0);
    spool_free(s);
}

/* Bytes of the spool's WAL file (0 if there is none). */
static off_t
wal_size(void)
{
    char path[PATH_MAX + 16];
    struct stat st;

    snprintf(path, sizeof(path), "%s/spool.db-wal", statedir);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/*
 * Checkpoints leave the loop (spool.h): one is due once the WAL holds
 * 16 MiB, runs on the second connection beside the spool's own, and is
 * not due again until the WAL grew; when nobody runs them the spool's
 * own connection keeps the WAL near 64 MiB. Events stay readable
 * throughout, and after a restart.
 */
static void
test_checkpoint(void **state)
{
    enum { N = 40, MSG = 60000 };
    static char msg[MSG + 1];
    struct spool_ckpt_req r;
    struct tc_event ev[N];
    struct spool *s;
    struct walk w;
    uint64_t n = 0;
    int rounds = 0;

    memset(msg, 'c', MSG);
    for (int i = 0; i < N; i++)
        ev[i] = mkev(msg);
    assert_int_equal(spool_open(statedir, 1ULL << 30, &s), 0);
    assert_int_equal(spool_checkpoint_begin(s, &r), 0);
    /* 2.4 MB a commit: due after about 7 of them. */
    while (!spool_checkpoint_begin(s, &r)) {
        assert_int_equal(spool_append(s, ev, N, NULL, NULL), 0);
        n += N;
        assert_true(++rounds < 20);
    }
    assert_true(rounds >= 6);
    assert_true(wal_size() >= 16 << 20);
    /* Begun: no second one until it ends. */
    {
        struct spool_ckpt_req r2;
        assert_int_equal(spool_checkpoint_begin(s, &r2), 0);
    }
    spool_checkpoint_run(&r);
    assert_int_equal(r.rc, 0);
    assert_true(r.frames > 0);
    assert_int_equal(r.copied, r.frames);
    spool_checkpoint_end(s, &r);
    /* Everything is copied: not due until the WAL grows. */
    assert_int_equal(spool_checkpoint_begin(s, &r), 0);
    assert_int_equal(spool_append(s, ev, N, NULL, NULL), 0);
    n += N;
    /* The commit restarted the WAL from its beginning: nothing due. */
    assert_int_equal(spool_checkpoint_begin(s, &r), 0);

    /* Nobody checkpoints: the WAL stays near 64 MiB all the same. */
    for (int i = 0; i < 60; i++) {
        assert_int_equal(spool_append(s, ev, N, NULL, NULL), 0);
        n += N;
        assert_true(wal_size() < (64 << 20) + (8 << 20));
    }
    /* Idle: the checkpoint connection goes, and comes back when due. */
    assert_int_equal(spool_trim(s), 0);
    assert_int_equal(spool_trim(s), 1);
    while (!spool_checkpoint_begin(s, &r)) {
        assert_int_equal(spool_append(s, ev, N, NULL, NULL), 0);
        n += N;
        assert_true(++rounds < 100);
    }
    spool_checkpoint_run(&r);
    assert_int_equal(r.rc, 0);
    spool_checkpoint_end(s, &r);
    assert_int_equal(spool_depth(s), n);
    memset(&w, 0, sizeof(w));
    w.want = 1;
    while (w.want <= n)
        assert_true(spool_read_from(s, w.want, 100, SIZE_MAX, walk_cb, &w) > 0);
    assert_int_equal(spool_bytes(s), w.bytes);
    spool_free(s);
    assert_int_equal(wal_size(), 0);
    assert_int_equal(spool_open(statedir, 1ULL << 30, &s), 0);
    assert_int_equal(spool_depth(s), n);
    assert_int_equal(spool_bytes(s), w.bytes);
    spool_free(s);
}

/*
 * The chunk a commit just wrote is read from memory (a sender that keeps
 * up does not read it back from SQLite); older chunks come from SQLite.
 * A row damaged behind the spool's back shows which was used.
 */
static void
test_read_just_written(void **state)
{
    char msgs[8][16];
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    append_msgs(s, 0, 3, msgs); /* seqs 1..3 */
    db_exec("UPDATE chunks SET body = 42 WHERE seq_first = 1");
    assert_int_equal(read_all(s, 1, &g), 3);
    assert_string_equal(g.msg[2], "m2");
    append_msgs(s, 3, 2, msgs); /* 4..5, now the one in memory */
    assert_int_equal(read_all(s, 4, &g), 2);
    assert_string_equal(g.msg[1], "m4");
    assert_int_equal(read_all(s, 1, &g), -EPROTO);
    spool_free(s);
}

/* spool_trim gives buffers back only after a quiet interval, and the
 * spool works as before afterwards. */
static void
test_trim(void **state)
{
    struct tc_event ev[3] = {mkev("a"), mkev("b"), mkev("c")};
    struct spool *s;
    struct got g;

    assert_int_equal(spool_open(statedir, 1 << 20, &s), 0);
    assert_int_equal(spool_trim(s), 1); /* nothing happened yet */
    assert_int_equal(spool_append(s, ev, 2, NULL, NULL), 0);
    assert_int_equal(spool_trim(s), 0); /* busy since the last call */
    assert_int_equal(read_all(s, 1, &g), 2);
    assert_int_equal(spool_trim(s), 0);
    assert_int_equal(spool_trim(s), 1);
    assert_int_equal(read_all(s, 2, &g), 1);
    assert_string_equal(g.msg[0], "b");
    assert_int_equal(spool_ack(s, 1), 0);
    assert_int_equal(spool_trim(s), 0);
    assert_int_equal(spool_trim(s), 1);
    assert_int_equal(spool_append(s, ev + 2, 1, NULL, NULL), 0);
    assert_int_equal(read_all(s, 0, &g), 2);
    assert_string_equal(g.msg[0], "b");
    assert_string_equal(g.msg[1], "c");
    spool_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_with_offset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_files_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_across_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renumber, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renumber_top, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test(test_head_hash),
        cmocka_unit_test_setup_teardown(test_commit_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_mid_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_ack_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_big_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_just_written, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
