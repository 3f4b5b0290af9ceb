/*
 * test_replay_diff: the classification behind tocsinctl replay --config
 * (collector/engine/replay_diff.c) as a pure function: unchanged,
 * removed, opened, merged, split, changed, root cause changed, the
 * incident moves, identity by fingerprint and opened_at when ids shift,
 * --since, and order independence. Linked with engine_dep and cmocka.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/replay_diff.h"

/* An incident: id, fingerprint, opened_at, problem, inhibited. */
#define INC(i, fp, t, p, inh)                                                  \
    {                                                                          \
        (i), (fp), (t), (p), (inh)                                             \
    }
/* A problem: id, opened_at, root incident, root host. */
#define PROB(i, t, ri, rh)                                                     \
    {                                                                          \
        (i), (t), (ri), (rh)                                                   \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
run(struct rdiff *d, const struct rdiff_incident *li, size_t nli,
    const struct rdiff_incident *ci, size_t nci, const struct rdiff_problem *lp,
    size_t nlp, const struct rdiff_problem *cp, size_t ncp, int64_t since)
{
    struct rdiff_input in = {.live_inc = li,
                             .nlive_inc = nli,
                             .cand_inc = ci,
                             .ncand_inc = nci,
                             .live = lp,
                             .nlive = nlp,
                             .cand = cp,
                             .ncand = ncp,
                             .since = since};

    rdiff_compute(&in, d);
}

/* The report as one string, to compare whole outputs. */
static void
render(const struct rdiff *d, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
#define PUT(...)                                                               \
    do {                                                                       \
        int n_ = snprintf(buf + off, len - off, __VA_ARGS__);                  \
        assert_true(n_ >= 0 && (size_t)n_ < len - off);                        \
        off += (size_t)n_;                                                     \
    } while (0)
    for (size_t i = 0; i < d->np; i++) {
        const struct rdiff_pitem *p = &d->p[i];

        PUT("%s L", rdiff_pkind_name(p->kind));
        for (size_t k = 0; k < p->nlive; k++)
            PUT("%s%lld", k ? "," : "", (long long)p->live[k]);
        PUT(" C");
        for (size_t k = 0; k < p->ncand; k++)
            PUT("%s%lld", k ? "," : "", (long long)p->cand[k]);
        PUT(" I");
        for (size_t k = 0; k < p->ninc; k++)
            PUT("%s%lld", k ? "," : "", (long long)p->inc[k]);
        for (size_t k = 0; k < p->ncinc; k++)
            PUT(",c%lld", (long long)p->cinc[k]);
        if (p->kind == RDIFF_ROOT)
            PUT(" %s->%s", p->live_root, p->cand_root);
        PUT(";");
    }
    for (size_t i = 0; i < d->ni; i++) {
        const struct rdiff_iitem *x = &d->i[i];

        PUT("%s %lld/%lld %lld->%lld;", rdiff_ikind_name(x->kind),
            (long long)x->live_id, (long long)x->cand_id,
            (long long)x->live_problem, (long long)x->cand_problem);
    }
#undef PUT
}

static void
expect(const struct rdiff *d, const char *want)
{
    char got[4096];

    render(d, got, sizeof(got));
    assert_string_equal(got, want);
}

static const struct rdiff_incident three[] = {
    INC(1, "h1\x1fx", 10, 1, 0), INC(2, "h2\x1fx", 11, 1, 1),
    INC(3, "h3\x1fx", 12, 1, 1), INC(4, "h4\x1fy", 13, 0, 0)};
static const struct rdiff_problem p1[] = {PROB(1, 12, 1, "h1")};

static void
test_unchanged(void **state)
{
    struct rdiff d;

    (void)state;
    run(&d, three, N(three), three, N(three), p1, 1, p1, 1, INT64_MIN);
    expect(&d, "unchanged L1 C1 I1,2,3;");
    assert_int_equal(d.changes, 0);
    assert_int_equal(d.pcount[RDIFF_UNCHANGED], 1);
    rdiff_free(&d);
}

static void
test_removed(void **state)
{
    static const struct rdiff_incident none[] = {
        INC(1, "h1\x1fx", 10, 0, 0), INC(2, "h2\x1fx", 11, 0, 0),
        INC(3, "h3\x1fx", 12, 0, 0), INC(4, "h4\x1fy", 13, 0, 0)};
    struct rdiff d;

    (void)state;
    run(&d, three, N(three), none, N(none), p1, 1, NULL, 0, INT64_MIN);
    expect(&d, "removed L1 C I1,2,3;"
               "unlinked 1/1 1->0;unlinked 2/2 1->0;unlinked 3/3 1->0;"
               "inhibited 2/2 1->0;inhibited 3/3 1->0;");
    assert_int_equal(d.pcount[RDIFF_REMOVED], 1);
    assert_int_equal(d.icount[RDIFF_UNLINKED], 3);
    assert_int_equal(d.changes, 6);
    rdiff_free(&d);

    /* The other way round: opened, linked. */
    run(&d, none, N(none), three, N(three), NULL, 0, p1, 1, INT64_MIN);
    expect(&d, "opened L C1 I1,2,3;"
               "linked 1/1 0->1;linked 2/2 0->1;linked 3/3 0->1;"
               "inhibited 2/2 0->1;inhibited 3/3 0->1;");
    rdiff_free(&d);
}

/* Two live problems' incidents in one candidate problem. Its
 * counterpart is the lower id (a tie, 2 each), so the other's
 * incidents are the ones that moved. */
static void
test_merged(void **state)
{
    static const struct rdiff_incident live[] = {
        INC(1, "a\x1fx", 1, 1, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 3, 2, 0), INC(4, "b\x1fy", 4, 2, 0)};
    static const struct rdiff_incident cand[] = {
        INC(1, "a\x1fx", 1, 1, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 3, 1, 0), INC(4, "b\x1fy", 4, 1, 0)};
    static const struct rdiff_problem lp[] = {PROB(1, 1, 1, "a"),
                                              PROB(2, 3, 3, "a")};
    static const struct rdiff_problem cp[] = {PROB(1, 1, 1, "a")};
    struct rdiff d;

    (void)state;
    run(&d, live, N(live), cand, N(cand), lp, N(lp), cp, N(cp), INT64_MIN);
    expect(&d, "merged L1,2 C1 I1,2,3,4;moved 3/3 2->1;moved 4/4 2->1;");
    assert_int_equal(d.pcount[RDIFF_MERGED], 1);
    assert_int_equal(d.pcount[RDIFF_UNCHANGED], 0);
    rdiff_free(&d);

    /* Split is the mirror image. */
    run(&d, cand, N(cand), live, N(live), cp, N(cp), lp, N(lp), INT64_MIN);
    expect(&d, "split L1 C1,2 I1,2,3,4;moved 3/3 1->2;moved 4/4 1->2;");
    assert_int_equal(d.pcount[RDIFF_SPLIT], 1);
    rdiff_free(&d);
}

/* One to one, one incident left: changed (not unchanged), the incident
 * unlinked; a different root host: root cause changed. */
static void
test_changed_and_root(void **state)
{
    static const struct rdiff_incident cand[] = {
        INC(1, "h1\x1fx", 10, 1, 0), INC(2, "h2\x1fx", 11, 1, 1),
        INC(3, "h3\x1fx", 12, 0, 1), INC(4, "h4\x1fy", 13, 0, 0)};
    static const struct rdiff_problem rp[] = {PROB(1, 12, 4, "h4")};
    struct rdiff d;

    (void)state;
    run(&d, three, N(three), cand, N(cand), p1, 1, p1, 1, INT64_MIN);
    expect(&d, "changed L1 C1 I3;unlinked 3/3 1->0;");
    rdiff_free(&d);

    run(&d, three, N(three), three, N(three), p1, 1, rp, 1, INT64_MIN);
    expect(&d, "root_cause L1 C1 I h1->h4;");
    assert_int_equal(d.changes, 1);
    rdiff_free(&d);
}

/*
 * A candidate that opens one more incident first numbers every later
 * one differently: incidents still pair by fingerprint and opened_at,
 * so the problem is unchanged and only the new incident is reported,
 * by its candidate id. The root incident is compared the same way.
 */
static void
test_identity_not_id(void **state)
{
    static const struct rdiff_incident cand[] = {
        INC(1, "h9\x1fz", 5, 0, 0), INC(2, "h1\x1fx", 10, 1, 0),
        INC(3, "h2\x1fx", 11, 1, 1), INC(4, "h3\x1fx", 12, 1, 1),
        INC(5, "h4\x1fy", 13, 0, 0)};
    static const struct rdiff_problem cp[] = {PROB(1, 12, 2, "h1")};
    static const struct rdiff_problem bad[] = {PROB(1, 12, 1, "h1")};
    struct rdiff d;

    (void)state;
    run(&d, three, N(three), cand, N(cand), p1, 1, cp, 1, INT64_MIN);
    expect(&d, "unchanged L1 C1 I1,2,3;only_candidate 0/1 0->0;");
    rdiff_free(&d);
    /* Candidate root incident 1 is another incident than live's 1. */
    run(&d, three, N(three), cand, N(cand), p1, 1, bad, 1, INT64_MIN);
    expect(&d, "root_cause L1 C1 I h1->h1;only_candidate 0/1 0->0;");
    rdiff_free(&d);
}

/* --since: only what opened at or after it is reported (and counted). */
static void
test_since(void **state)
{
    static const struct rdiff_incident live[] = {
        INC(1, "a\x1fx", 1, 1, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 100, 2, 0), INC(4, "b\x1fy", 101, 2, 0)};
    static const struct rdiff_incident cand[] = {
        INC(1, "a\x1fx", 1, 0, 0), INC(2, "b\x1fx", 2, 0, 0),
        INC(3, "a\x1fy", 100, 0, 0), INC(4, "b\x1fy", 101, 0, 0)};
    static const struct rdiff_problem lp[] = {PROB(1, 2, 1, "a"),
                                              PROB(2, 101, 3, "a")};
    struct rdiff d;

    (void)state;
    run(&d, live, N(live), cand, N(cand), lp, N(lp), NULL, 0, 50);
    expect(&d, "removed L2 C I3,4;unlinked 3/3 2->0;unlinked 4/4 2->0;");
    assert_int_equal(d.pcount[RDIFF_REMOVED], 1);
    assert_int_equal(d.changes, 3);
    rdiff_free(&d);
    run(&d, live, N(live), cand, N(cand), lp, N(lp), NULL, 0, 1000);
    expect(&d, "");
    assert_int_equal(d.changes, 0);
    rdiff_free(&d);
}

/* The same states in another order give the same report. */
static void
test_order(void **state)
{
    static const struct rdiff_incident live[] = {
        INC(4, "b\x1fy", 4, 2, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 3, 2, 0), INC(1, "a\x1fx", 1, 1, 0),
        INC(5, "c\x1fz", 5, 0, 0)};
    static const struct rdiff_incident sorted[] = {
        INC(1, "a\x1fx", 1, 1, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 3, 2, 0), INC(4, "b\x1fy", 4, 2, 0),
        INC(5, "c\x1fz", 5, 0, 0)};
    static const struct rdiff_incident cand[] = {
        INC(1, "a\x1fx", 1, 3, 0), INC(2, "b\x1fx", 2, 1, 0),
        INC(3, "a\x1fy", 3, 1, 0), INC(4, "b\x1fy", 4, 2, 0),
        INC(5, "c\x1fz", 5, 2, 0)};
    static const struct rdiff_problem lp[] = {PROB(2, 3, 3, "a"),
                                              PROB(1, 1, 1, "a")};
    static const struct rdiff_problem lps[] = {PROB(1, 1, 1, "a"),
                                               PROB(2, 3, 3, "a")};
    static const struct rdiff_problem cp[] = {
        PROB(1, 2, 2, "b"), PROB(2, 4, 4, "b"), PROB(3, 1, 1, "a")};
    struct rdiff a, b;
    char ra[4096], rb[4096];

    (void)state;
    run(&a, live, N(live), cand, N(cand), lp, N(lp), cp, N(cp), INT64_MIN);
    run(&b, sorted, N(sorted), cand, N(cand), lps, N(lps), cp, N(cp),
        INT64_MIN);
    render(&a, ra, sizeof(ra));
    render(&b, rb, sizeof(rb));
    assert_string_equal(ra, rb);
    /* Each live problem splits in two; candidate 1 takes from both. */
    assert_int_equal(a.pcount[RDIFF_SPLIT], 2);
    assert_int_equal(a.pcount[RDIFF_MERGED], 1);
    /* Counterparts: live 1 and 2 both go to candidate 1 (ties, lowest
     * id), which goes back to live 1: only that pair is mutual. */
    assert_string_equal(ra, "merged L1,2 C1 I2,3;split L1 C1,3 I1,2;"
                            "split L2 C1,2 I3,4;root_cause L1 C1 I a->b;"
                            "moved 1/1 1->3;moved 3/3 2->1;moved 4/4 2->2;"
                            "linked 5/5 0->2;");
    rdiff_free(&a);
    rdiff_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged),
        cmocka_unit_test(test_removed),
        cmocka_unit_test(test_merged),
        cmocka_unit_test(test_changed_and_root),
        cmocka_unit_test(test_identity_not_id),
        cmocka_unit_test(test_since),
        cmocka_unit_test(test_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
