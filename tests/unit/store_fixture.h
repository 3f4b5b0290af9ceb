/*
 * store_fixture: what test_problems_store and test_hints_step share:
 * both engines over a SQLite store in the scratch directory, event
 * batches committed from a few hosts, the step run to the end, restarts
 * and problem actions. It links the store library (store_dep).
 *
 * Include after <cmocka.h> and its prerequisites.
 */
#ifndef TOCSIN_STORE_FIXTURE_H
#define TOCSIN_STORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/incident.h"
#include "engine/problem.h"
#include "store/incidents_store.h"
#include "store/store.h"

#define SEC 1000000000LL
#define MIN (60 * SEC)
#define T0 (1700000000LL * SEC)

/* reopen 60 min, resolve after 5 min, 3 attempts. */
extern const struct incident_config cfg;
/* The problem engine's configuration; the test sets it (defaults). */
extern struct problem_config pcfg;

/* The hosts events come from, by index (5 of them). */
extern const char *const hosts[5];

/* A store and both engines loaded from it. */
struct fix {
    char path[160]; /* the database, under tu_tmpdir */
    struct store *log;
    struct incidents_store *is;
    struct incident_engine *e;
    struct problem_engine *pe;
    struct incidents_watermark wm;
    uint64_t seq[8]; /* last seq sent, per host index */
};

/* Open (create) tu_tmpdir/NAME.db and load both engines from it. */
void fix_open(struct fix *f, const char *name);
/* Free the engines and close the store. */
void fix_close(struct fix *f);
/* A restart: both engines again from the tables. */
void reload(struct fix *f);
/* One batch of one log event from hosts[h] at ts (ns); upstream: a
 * captured field (NULL: none). */
void commit(struct fix *f, int h, const char *rule, enum tc_severity sev,
            const char *upstream, int64_t ts);
/* Step at now (ns), 3 inputs a step, until nothing is left. */
void run(struct fix *f, int64_t now);
/* Problem action v by alice on problem pid at ts (ns). */
void pact(struct fix *f, enum problem_verb v, int64_t pid, const char *key,
          const char *text, int64_t ts);
/* One integer from the file at path, through a connection of the
 * test's own (the first column of the first row of sql). */
int64_t sql_int(const char *path, const char *sql);
/* Run sql on the file at path, through a connection of the test's own. */
void sql_exec(const char *path, const char *sql);
/* A replay diff callback that counts the differences (arg: int). */
int count_diff(const struct incidents_diff *d, void *arg);

/*
 * The shared scenario: a cache fails and three web servers name it
 * (reference), a class spreads over three hosts, an unrelated failure,
 * problem actions, quiet time; the engines are reloaded after every
 * reload_every-th step (0: never).
 */
void fix_scenario(struct fix *f, int reload_every);
/* The engine state's tables as text, then the rows of each of the
 * nextra queries extra (may be NULL when nextra is 0); free() it. */
char *fix_dump(const char *path, const char *const *extra, size_t nextra);

#endif
