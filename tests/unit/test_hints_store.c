/*
 * test_hints_store: the agent's hint table. A hint is stored once; the
 * same content again is recognised (so the sender re-acks it), other
 * content under a stored id is refused; reads give back every field
 * with params sorted; states move only to the six names; a read-only
 * handle (the CLI) sees the rows and cannot write, and reads an agent
 * that never ran as no hints.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hints_store.h"
#include "testutil.h"
#include "wire.h"

static int
setup(void **state)
{
    (void)state;
    return tu_setup("tocsin-hints");
}

static struct tc_kv params[2];

static void
make_hint(struct tc_hint *h, uint64_t id)
{
    static const uint8_t sig[TC_HINT_SIG_LEN] = {1, 2, 3};

    memset(h, 0, sizeof(*h));
    params[0].key = tc_str_c("unit");
    params[0].val = tc_str_c("nginx.service");
    params[1].key = tc_str_c("mode");
    params[1].val = tc_str_c("soft");
    h->id = id;
    h->agent = tc_str_c("web-01");
    h->incident = tc_str_c("34");
    h->problem = 7;
    h->source = tc_str_c("runbook:nginx");
    h->title = tc_str_c("Restart nginx");
    h->text = tc_str_c("1. look\n2. restart");
    h->action = tc_str_c("restart_unit");
    h->params = params;
    h->nparams = 2;
    h->issued = 1700000000000000000LL;
    h->sig.ptr = (const char *)sig;
    h->sig.len = sizeof(sig);
}

static int
count_cb(void *arg, const struct agent_hint *h)
{
    (void)h;
    (*(int *)arg)++;
    return 0;
}

static int
count(struct hints_store *s)
{
    int n = 0;

    assert_int_equal(hints_store_list(s, count_cb, &n), 0);
    return n;
}

static void
test_put_get(void **state)
{
    struct hints_store *s, *ro;
    struct agent_hint a;
    struct tc_hint h;

    (void)state;
    /* An agent that never ran: no database, no hints, no error. */
    assert_int_equal(hints_store_open(tu_tmpdir, 1, &ro), 0);
    assert_int_equal(count(ro), 0);
    assert_int_equal(hints_store_get(ro, 12, &a), -ENOENT);
    hints_store_free(ro);

    assert_int_equal(hints_store_open(tu_tmpdir, 0, &s), 0);
    make_hint(&h, 12);
    assert_int_equal(hints_store_put(s, &h, 1000), 0);
    /* Redelivered as it was: recognised, not stored twice; the
     * signature may differ (re-signed), the content decides. */
    h.sig.len = 0;
    assert_int_equal(hints_store_put(s, &h, 2000), 1);
    /* Params in another order are the same content. */
    struct tc_kv swapped[2] = {params[1], params[0]};
    h.params = swapped;
    assert_int_equal(hints_store_put(s, &h, 2000), 1);
    /* Same id, other content: a replayed id. */
    h.title = tc_str_c("Run something else");
    assert_int_equal(hints_store_put(s, &h, 3000), -EEXIST);
    make_hint(&h, 12);
    h.params[0].val = tc_str_c("sshd.service");
    assert_int_equal(hints_store_put(s, &h, 3000), -EEXIST);
    assert_int_equal(count(s), 1);

    assert_int_equal(hints_store_get(s, 12, &a), 0);
    assert_true(a.id == 12);
    assert_string_equal(a.agent, "web-01");
    assert_string_equal(a.incident, "34");
    assert_true(a.problem == 7);
    assert_string_equal(a.source, "runbook:nginx");
    assert_string_equal(a.title, "Restart nginx");
    assert_string_equal(a.text, "1. look\n2. restart");
    assert_string_equal(a.action, "restart_unit");
    assert_int_equal(a.nparams, 2);
    assert_string_equal(a.params[0].key, "mode"); /* sorted by key */
    assert_string_equal(a.params[0].val, "soft");
    assert_string_equal(a.params[1].key, "unit");
    assert_string_equal(a.params[1].val, "nginx.service");
    assert_true(a.issued == 1700000000000000000LL);
    assert_string_equal(a.state, "new");
    assert_true(a.stored_at == 1000);
    hints_store_hint_clear(&a);
    hints_store_hint_clear(&a); /* zeroed: fine */
    assert_int_equal(hints_store_get(s, 13, &a), -ENOENT);

    /* Ids use all 64 bits. */
    make_hint(&h, UINT64_MAX);
    h.nparams = 0;
    h.action = tc_str_c("");
    assert_int_equal(hints_store_put(s, &h, 4000), 0);
    assert_int_equal(hints_store_get(s, UINT64_MAX, &a), 0);
    assert_true(a.id == UINT64_MAX);
    assert_int_equal(a.nparams, 0);
    assert_null(a.params);
    assert_string_equal(a.action, "");
    hints_store_hint_clear(&a);

    /* A hint over the limits is not stored. */
    make_hint(&h, 14);
    h.title.len = TC_HINT_MAX_TITLE + 1;
    h.title.ptr = calloc(1, h.title.len);
    assert_int_equal(hints_store_put(s, &h, 5000), -EMSGSIZE);
    free((void *)h.title.ptr);

    /* The CLI's read-only handle, beside the writer. */
    assert_int_equal(hints_store_open(tu_tmpdir, 1, &ro), 0);
    assert_int_equal(count(ro), 2);
    make_hint(&h, 15);
    assert_int_equal(hints_store_put(ro, &h, 6000), -EROFS);
    assert_int_equal(hints_store_set_state(ro, 12, "done"), -EROFS);
    hints_store_free(ro);
    hints_store_free(s);

    /* Durable across a reopen. */
    assert_int_equal(hints_store_open(tu_tmpdir, 0, &s), 0);
    assert_int_equal(count(s), 2);
    make_hint(&h, 12);
    assert_int_equal(hints_store_put(s, &h, 7000), 1);
    hints_store_free(s);
    hints_store_free(NULL);
}

static void
test_states(void **state)
{
    static const char *const ok[] = {"new",  "shown",  "running",
                                     "done", "failed", "refused"};
    struct hints_store *s;
    struct agent_hint a;
    struct tc_hint h;

    (void)state;
    assert_int_equal(hints_store_open(tu_tmpdir, 0, &s), 0);
    make_hint(&h, 1);
    assert_int_equal(hints_store_put(s, &h, 1000), 0);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(hints_store_set_state(s, 1, ok[i]), 0);
        assert_int_equal(hints_store_get(s, 1, &a), 0);
        assert_string_equal(a.state, ok[i]);
        assert_true(a.updated_at > 1000);
        hints_store_hint_clear(&a);
    }
    assert_int_equal(hints_store_set_state(s, 1, "pwned"), -EINVAL);
    assert_int_equal(hints_store_set_state(s, 1, ""), -EINVAL);
    assert_int_equal(hints_store_set_state(s, 2, "done"), -ENOENT);
    assert_int_equal(hints_store_state_valid("running"), 1);
    assert_int_equal(hints_store_state_valid("Running"), 0);
    hints_store_free(s);
}

/* A full store refuses a new hint (the sender does not ack it) and
 * still recognises a redelivery of a stored one. */
static void
test_full(void **state)
{
    struct hints_store *s;
    struct tc_hint h;

    (void)state;
    assert_int_equal(hints_store_open(tu_tmpdir, 0, &s), 0);
    hints_store_set_max(s, 2);
    make_hint(&h, 1);
    assert_int_equal(hints_store_put(s, &h, 1), 0);
    make_hint(&h, 2);
    assert_int_equal(hints_store_put(s, &h, 2), 0);
    make_hint(&h, 3);
    assert_int_equal(hints_store_put(s, &h, 3), -ENOSPC);
    make_hint(&h, 2);
    assert_int_equal(hints_store_put(s, &h, 4), 1);
    assert_int_equal(count(s), 2);
    hints_store_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
