/*
 * test_registry: the agents registry alone, with a fake link in place of
 * a TLS session. Agents are found by name (also after the table grows),
 * a link attaches and detaches, a send to an absent agent is -ENOTCONN,
 * a tracked send ends in exactly one callback (on_ack for its HINT_ACK,
 * on_fail when the link goes first or the registry is freed), and the
 * number of tracked sends per agent is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>

#include "buf.h"
#include "net/registry.h"
#include "wire.h"

/* A link that records what it was asked to send. */
struct fake {
    int nsent;          /* frames sent */
    uint8_t last[4096]; /* the last one */
    size_t lastlen;
    int fail; /* returned by send when non-zero */
    int held;
};

static int
fake_send(void *link, const uint8_t *frame, size_t len)
{
    struct fake *f = link;

    if (f->fail)
        return f->fail;
    assert_true(len <= sizeof(f->last));
    memcpy(f->last, frame, len);
    f->lastlen = len;
    f->nsent++;
    return 0;
}

static int
fake_held(const void *link)
{
    return ((const struct fake *)link)->held;
}

static const struct reg_link_ops fake_ops = {fake_send, fake_held};

/* What the callbacks saw, in order. */
#define MAXREC 64
static struct {
    int n;
    char agent[MAXREC][32];
    uint64_t id[MAXREC];
    int err[MAXREC]; /* 0 for an ack */
} rec;
static struct registry *resend_to; /* on_fail sends again through it */

static void
on_ack(void *arg, const char *agent, uint64_t id)
{
    assert_ptr_equal(arg, &rec);
    assert_true(rec.n < MAXREC);
    snprintf(rec.agent[rec.n], sizeof(rec.agent[0]), "%s", agent);
    rec.id[rec.n] = id;
    rec.err[rec.n++] = 0;
}

static void on_fail(void *arg, const char *agent, uint64_t id, int err);
/* A refusal is recorded with err 1 and its reason in rec.why. */
static char refused_why[64];
static void
on_refused(void *arg, const char *agent, uint64_t id, const char *reason)
{
    on_ack(arg, agent, id);
    rec.err[rec.n - 1] = 1;
    snprintf(refused_why, sizeof(refused_why), "%s", reason);
}
static const struct reg_ack_cbs cbs = {on_ack, on_fail, on_refused};
/* A caller that does not tell refusals apart: they come as acks. */
static const struct reg_ack_cbs cbs_noref = {on_ack, on_fail, NULL};

static void
on_fail(void *arg, const char *agent, uint64_t id, int err)
{
    static const uint8_t ping[] = {0, 0, 0, 1, 0xc0};

    assert_ptr_equal(arg, &rec);
    assert_true(rec.n < MAXREC);
    snprintf(rec.agent[rec.n], sizeof(rec.agent[0]), "%s", agent);
    rec.id[rec.n] = id;
    rec.err[rec.n++] = err;
    /* As a hint dispatcher would: the agent is gone, so this is kept. */
    if (resend_to != NULL)
        assert_int_equal(
            registry_send(resend_to, agent, ping, sizeof(ping), id, &cbs, &rec),
            -ENOTCONN);
}

static int
reset(void **state)
{
    (void)state;
    memset(&rec, 0, sizeof(rec));
    resend_to = NULL;
    return 0;
}

/* A HINT frame with this id, sent through registry_send_frame. */
static int
send_hint(struct registry *r, const char *name, uint64_t id)
{
    struct tc_frame f;

    memset(&f, 0, sizeof(f));
    f.type = TC_F_HINT;
    f.u.hint.id = id;
    f.u.hint.incident = tc_str_c("INC-1");
    f.u.hint.text = tc_str_c("restart the thing");
    f.u.hint.sig = tc_str_c("sig");
    return registry_send_frame(r, name, &f, &cbs, &rec);
}

static void
test_find_and_grow(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a, *b;
    struct reg_iter it;
    char name[32];
    int seen = 0;

    (void)state;
    assert_null(registry_find(r, "web1"));
    a = registry_get(r, "web1");
    assert_non_null(a);
    assert_string_equal(a->name, "web1");
    assert_ptr_equal(registry_get(r, "web1"), a);
    /* Past many doublings of the table, the first entry is still found. */
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "host-%04d", i);
        b = registry_get(r, name);
        b->durable_hwm = (uint64_t)i;
    }
    assert_int_equal(registry_count(r), 1001);
    assert_ptr_equal(registry_find(r, "web1"), a);
    b = registry_find(r, "host-0777");
    assert_non_null(b);
    assert_int_equal(b->durable_hwm, 777);
    /* By length: a prefix of a name is not that name. */
    assert_ptr_equal(registry_findn(r, "web1xyz", 4), a);
    assert_null(registry_findn(r, "web", 3));
    assert_null(registry_find(r, "web12"));
    for (b = registry_first(r, &it); b != NULL; b = registry_next(&it))
        seen++;
    assert_int_equal(seen, 1001);
    registry_free(r);
}

static void
test_attach_detach(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct fake l1, l2;

    (void)state;
    memset(&l1, 0, sizeof(l1));
    memset(&l2, 0, sizeof(l2));
    assert_null(registry_link(a));
    assert_int_equal(registry_held(a), 0);
    registry_attach(r, a, &fake_ops, &l1);
    assert_ptr_equal(registry_link(a), &l1);
    l1.held = 1;
    assert_int_equal(registry_held(a), 1);
    /* A replaced link closing late does not take the new one away. */
    registry_attach(r, a, &fake_ops, &l2);
    assert_ptr_equal(registry_link(a), &l2);
    assert_int_equal(registry_detach(r, a, &l1), 0);
    assert_ptr_equal(registry_link(a), &l2);
    assert_int_equal(registry_detach(r, a, &l2), 1);
    assert_null(registry_link(a));
    assert_int_equal(registry_held(a), 0);
    assert_int_equal(registry_detach(r, a, &l2), 0);
    registry_free(r);
}

static void
test_send_absent(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct fake l;
    struct tc_buf b;
    struct tc_ack ack = {41};

    (void)state;
    memset(&l, 0, sizeof(l));
    tc_buf_init(&b, 1024);
    assert_int_equal(tc_wire_encode_ack(&b, &ack), 0);
    /* Unknown, and known but not connected: both -ENOTCONN. */
    assert_int_equal(registry_send(r, "nobody", tc_buf_head(&b),
                                   tc_buf_size(&b), 0, NULL, NULL),
                     -ENOTCONN);
    assert_int_equal(registry_send(r, "web1", tc_buf_head(&b), tc_buf_size(&b),
                                   0, NULL, NULL),
                     -ENOTCONN);
    assert_int_equal(send_hint(r, "web1", 7), -ENOTCONN);
    assert_int_equal(registry_outstanding(a), 0);
    registry_attach(r, a, &fake_ops, &l);
    assert_int_equal(registry_send(r, "web1", tc_buf_head(&b), tc_buf_size(&b),
                                   0, NULL, NULL),
                     0);
    assert_int_equal(l.nsent, 1);
    assert_int_equal(l.lastlen, tc_buf_size(&b));
    assert_memory_equal(l.last, tc_buf_head(&b), l.lastlen);
    /* Not one whole frame: short, or with bytes after it. */
    assert_int_equal(registry_send(r, "web1", tc_buf_head(&b),
                                   tc_buf_size(&b) - 1, 0, NULL, NULL),
                     -EINVAL);
    tc_buf_append(&b, "x", 1);
    assert_int_equal(registry_send(r, "web1", tc_buf_head(&b), tc_buf_size(&b),
                                   0, NULL, NULL),
                     -EINVAL);
    assert_int_equal(
        registry_send(r, "web1", tc_buf_head(&b), 2, 0, NULL, NULL), -EINVAL);
    /* A tracked send needs its callbacks. */
    assert_int_equal(registry_send(r, "web1", tc_buf_head(&b),
                                   tc_buf_size(&b) - 1, 9, NULL, NULL),
                     -EINVAL);
    assert_int_equal(l.nsent, 1);
    /* The link's refusal is the caller's; nothing is tracked. */
    l.fail = -EMSGSIZE;
    assert_int_equal(send_hint(r, "web1", 8), -EMSGSIZE);
    assert_int_equal(registry_outstanding(a), 0);
    assert_int_equal(rec.n, 0);
    tc_buf_close(&b);
    registry_free(r);
    assert_int_equal(rec.n, 0);
}

static void
test_send_frame_types(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct tc_wire_limits lim = tc_wire_default_limits;
    struct fake l;
    struct tc_frame f, d;
    const uint8_t *body;
    const char *err = NULL;
    size_t blen;

    (void)state;
    memset(&l, 0, sizeof(l));
    registry_attach(r, a, &fake_ops, &l);
    memset(&f, 0, sizeof(f));
    f.type = TC_F_HELLO;
    assert_int_equal(registry_send_frame(r, "web1", &f, &cbs, &rec), -EINVAL);
    f.type = TC_F_HINT_ACK;
    assert_int_equal(registry_send_frame(r, "web1", &f, &cbs, &rec), -EINVAL);
    /* A HINT is tracked by its id, so it needs one. */
    assert_int_equal(send_hint(r, "web1", 0), -EINVAL);
    assert_int_equal(l.nsent, 0);
    f.type = TC_F_PONG;
    f.u.pong.ts = 12345;
    assert_int_equal(registry_send_frame(r, "web1", &f, NULL, NULL), 0);
    assert_int_equal(registry_outstanding(a), 0);
    /* What reached the link is the HINT, whole. */
    assert_int_equal(send_hint(r, "web1", 99), 0);
    assert_int_equal(registry_outstanding(a), 1);
    assert_int_equal(l.nsent, 2);
    assert_int_equal(
        tc_wire_next(l.last, l.lastlen, lim.max_frame, &body, &blen),
        (long)l.lastlen);
    tc_frame_init(&d);
    assert_int_equal(tc_wire_decode(body, blen, &lim, &d, &err), 0);
    assert_int_equal(d.type, TC_F_HINT);
    assert_int_equal(d.u.hint.id, 99);
    tc_frame_close(&d);
    registry_free(r);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.err[0], -ECANCELED);
}

static void
test_ack(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct reg_agent *b = registry_get(r, "db1");
    struct fake la, lb;

    (void)state;
    memset(&la, 0, sizeof(la));
    memset(&lb, 0, sizeof(lb));
    registry_attach(r, a, &fake_ops, &la);
    registry_attach(r, b, &fake_ops, &lb);
    assert_int_equal(send_hint(r, "web1", 42), 0);
    assert_int_equal(send_hint(r, "web1", 43), 0);
    assert_int_equal(send_hint(r, "db1", 42), 0); /* ids are per agent */
    assert_int_equal(send_hint(r, "web1", 42), -EEXIST);
    assert_int_equal(registry_outstanding(a), 2);
    assert_int_equal(rec.n, 0);
    /* Acks in any order; each fires once, with the agent's name. */
    assert_int_equal(registry_acked(r, a, 43), 0);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.agent[0], "web1");
    assert_int_equal(rec.id[0], 43);
    assert_int_equal(rec.err[0], 0);
    assert_int_equal(registry_acked(r, a, 43), -ENOENT);
    assert_int_equal(registry_acked(r, a, 7), -ENOENT);
    assert_int_equal(registry_acked(r, a, 0), -ENOENT);
    assert_int_equal(rec.n, 1);
    assert_int_equal(registry_acked(r, b, 42), 0);
    assert_string_equal(rec.agent[1], "db1");
    assert_int_equal(registry_outstanding(a), 1);
    assert_int_equal(registry_outstanding(b), 0);
    assert_int_equal(registry_acked(r, a, 42), 0);
    assert_int_equal(rec.id[2], 42);
    assert_int_equal(registry_outstanding(a), 0);
    assert_int_equal(rec.n, 3);
    /* A refusal frees the slot like an ack, once, with its reason. */
    assert_int_equal(send_hint(r, "web1", 44), 0);
    assert_int_equal(registry_outstanding(a), 1);
    assert_int_equal(registry_refused(r, a, 44, "bad signature"), 0);
    assert_int_equal(registry_outstanding(a), 0);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.id[3], 44);
    assert_int_equal(rec.err[3], 1);
    assert_string_equal(refused_why, "bad signature");
    assert_int_equal(registry_refused(r, a, 44, "again"), -ENOENT);
    assert_int_equal(registry_acked(r, a, 44), -ENOENT);
    assert_int_equal(rec.n, 4);
    /* Without on_refused, on_ack fires. */
    {
        struct tc_frame f;

        memset(&f, 0, sizeof(f));
        f.type = TC_F_HINT;
        f.u.hint.id = 45;
        f.u.hint.incident = tc_str_c("INC-1");
        f.u.hint.text = tc_str_c("restart the thing");
        f.u.hint.sig = tc_str_c("sig");
        assert_int_equal(registry_send_frame(r, "web1", &f, &cbs_noref, &rec),
                         0);
    }
    assert_int_equal(registry_refused(r, a, 45, "no key"), 0);
    assert_int_equal(rec.n, 5);
    assert_int_equal(rec.err[4], 0);
    assert_int_equal(registry_outstanding(a), 0);
    registry_free(r);
    assert_int_equal(rec.n, 5);
}

static void
test_close_fails_outstanding(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct fake l1, l2;

    (void)state;
    memset(&l1, 0, sizeof(l1));
    memset(&l2, 0, sizeof(l2));
    resend_to = r;
    registry_attach(r, a, &fake_ops, &l1);
    for (uint64_t id = 1; id <= 3; id++)
        assert_int_equal(send_hint(r, "web1", id), 0);
    /* A replaced session: its sends fail, oldest first. */
    registry_attach(r, a, &fake_ops, &l2);
    assert_int_equal(rec.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(rec.agent[i], "web1");
        assert_int_equal(rec.id[i], (uint64_t)i + 1);
        assert_int_equal(rec.err[i], -ECONNRESET);
    }
    assert_int_equal(registry_outstanding(a), 0);
    /* The agent acks the old session's hint on the new one: unknown. */
    assert_int_equal(registry_acked(r, a, 2), -ENOENT);
    assert_int_equal(rec.n, 3);
    /* The session closes: what it carried fails, once. */
    assert_int_equal(send_hint(r, "web1", 4), 0);
    assert_int_equal(registry_detach(r, a, &l2), 1);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.id[3], 4);
    assert_int_equal(rec.err[3], -ECONNRESET);
    assert_int_equal(registry_detach(r, a, &l2), 0);
    assert_int_equal(rec.n, 4);
    assert_int_equal(send_hint(r, "web1", 5), -ENOTCONN);
    registry_free(r);
    assert_int_equal(rec.n, 4);
}

static void
test_bound(void **state)
{
    struct registry *r = registry_new(4);
    struct reg_agent *a = registry_get(r, "web1");
    struct reg_agent *b = registry_get(r, "db1");
    struct fake la, lb;
    struct tc_frame f;

    (void)state;
    memset(&la, 0, sizeof(la));
    memset(&lb, 0, sizeof(lb));
    registry_attach(r, a, &fake_ops, &la);
    registry_attach(r, b, &fake_ops, &lb);
    for (uint64_t id = 1; id <= 4; id++)
        assert_int_equal(send_hint(r, "web1", id), 0);
    assert_int_equal(send_hint(r, "web1", 5), -ENOBUFS);
    assert_int_equal(la.nsent, 4); /* refused before the link saw it */
    assert_int_equal(registry_outstanding(a), 4);
    /* The bound is per agent, and untracked frames pass. */
    assert_int_equal(send_hint(r, "db1", 1), 0);
    memset(&f, 0, sizeof(f));
    f.type = TC_F_ACK;
    f.u.ack.seq = 10;
    assert_int_equal(registry_send_frame(r, "web1", &f, NULL, NULL), 0);
    assert_int_equal(la.nsent, 5);
    /* An ack makes room. */
    assert_int_equal(registry_acked(r, a, 2), 0);
    assert_int_equal(send_hint(r, "web1", 5), 0);
    assert_int_equal(registry_outstanding(a), 4);
    registry_free(r);
    /* 1 ack, then 4 + 1 failed by free. */
    assert_int_equal(rec.n, 6);
    for (int i = 1; i < 6; i++)
        assert_int_equal(rec.err[i], -ECANCELED);
}

static int nup;
static char upname[32];

static void
up_cb(void *arg, const char *agent)
{
    assert_ptr_equal(arg, &nup);
    nup++;
    snprintf(upname, sizeof(upname), "%s", agent);
}

static void
test_watch_up(void **state)
{
    struct registry *r = registry_new(0);
    struct reg_agent *a = registry_get(r, "web1");
    struct fake l;

    (void)state;
    memset(&l, 0, sizeof(l));
    nup = 0;
    registry_watch(r, up_cb, &nup);
    registry_up(r, a); /* not connected: nothing to say */
    assert_int_equal(nup, 0);
    registry_attach(r, a, &fake_ops, &l);
    assert_int_equal(nup, 0); /* attach alone says nothing */
    registry_up(r, a);
    assert_int_equal(nup, 1);
    assert_string_equal(upname, "web1");
    registry_watch(r, NULL, NULL);
    registry_up(r, a);
    assert_int_equal(nup, 1);
    registry_free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_find_and_grow, reset),
        cmocka_unit_test_setup(test_attach_detach, reset),
        cmocka_unit_test_setup(test_send_absent, reset),
        cmocka_unit_test_setup(test_send_frame_types, reset),
        cmocka_unit_test_setup(test_ack, reset),
        cmocka_unit_test_setup(test_close_fails_outstanding, reset),
        cmocka_unit_test_setup(test_bound, reset),
        cmocka_unit_test_setup(test_watch_up, reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
