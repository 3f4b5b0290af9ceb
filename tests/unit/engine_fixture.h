/*
 * engine_fixture: what test_engine (the engine alone) and test_incident
 * (the engine over the SQLite store) share: the configurations, a sink
 * that records a drain for assertions, and event makers. It uses only
 * the engine library, so test_engine links nothing else.
 *
 * Include after <cmocka.h> and its prerequisites.
 */
#ifndef TOCSIN_ENGINE_FIXTURE_H
#define TOCSIN_ENGINE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/incident.h"

#define SEC 1000000000LL
#define MIN (60 * SEC)
#define T0 (1700000000LL * SEC)

/* reopen 60 min, resolve after 30 min, 3 attempts, no flap detection. */
extern const struct incident_config cfg;
/* The same with flap detection on: the documented defaults. */
extern const struct incident_config fcfg;

/* What a drain produced, kept for assertions. */
struct out {
    struct incident inc[64]; /* latest copy per id (index id) */
    char fp[64][64];
    uint32_t attempts[64];
    int nfp;
    char notes[256][128]; /* "id what who" */
    int nnotes;
    char log[16384]; /* everything, in order, for determinism */
    size_t loglen;
};

/* The sink callbacks that fill a struct out (arg). */
int on_inc(void *arg, const struct incident *in);
int on_fp(void *arg, const struct incident_fp *fp);
int on_note(void *arg, const struct incident_note *n);
/* Drain e into o; fails the test on an error. */
void drain(struct incident_engine *e, struct out *o);
/* 1 if o holds the note "id what who". */
int has_note(const struct out *o, const char *s);

/* A log event of rule at t (ns), folded count times. */
struct tc_event ev_log(const char *rule, enum tc_severity sev, int64_t t,
                       uint32_t count);
/* A check result (Nagios state) of check name at t (ns). */
struct tc_event ev_check(const char *name, int state, int64_t t);
/*
 * An action result as agent/actions_cmd.c sends it, at t (ns): action
 * restart-nginx, hint 12, signal 0, duration 1234 ms, the given
 * incident field (NULL: none), exit and output; fields in f (8 slots,
 * which must outlive the event).
 */
struct tc_event ev_result(struct tc_kv f[8], const char *incident,
                          const char *exit, const char *output, int64_t t);

#endif
