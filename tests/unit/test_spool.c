/*
 * test_spool: the agent's spool in a fresh mkdtemp state_dir per test:
 * events and offsets committed together and found again after reopen,
 * seq assignment across reopen, ack, renumber, the byte bound with its
 * drop counter and spool-full report, read order and batch limits, and
 * the lock against a second agent.
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
    assert_true(spool_head_hash("abc", 3) != spool_head_hash("abd", 3));
    assert_true(spool_head_hash("abc", 3) == spool_head_hash("abcd", 3));
    assert_true(spool_head_hash("", 0) != 0);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_with_offset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_seq_across_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renumber, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_and_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
        cmocka_unit_test(test_head_hash),
        cmocka_unit_test_setup_teardown(test_commit_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
