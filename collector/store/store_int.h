/*
 * store_int: what the modules of collector/store/ share and nothing
 * above them sees: the per-module schema migrations, the writer lock
 * of the event log, and the WAL settings every writing connection
 * repeats (docs/internals/store.md).
 */
#ifndef COLLECTOR_STORE_INT_H
#define COLLECTOR_STORE_INT_H

#include <pthread.h>
#include <stddef.h>

#include "store/store.h"

/*
 * One schema step of one module: the SQL that takes the file from
 * version - 1 to version. Each module keeps its steps in version order;
 * store.c's migrator applies every step above the file's version, in
 * version order, whichever module owns it.
 */
struct store_migration {
    int version;     /* the PRAGMA user_version this step reaches */
    const char *sql; /* static */
};

/* The engine state's steps (versions 3 to 6), incidents_store.c. */
extern const struct store_migration incidents_migrations[];
extern const size_t incidents_nmigrations;

/*
 * The collector's writers take this mutex around each write
 * transaction: store_commit does, and so does the engine connection
 * opened from the same store (incidents_store_open_engine). SQLite's
 * busy handler sleeps with backoff (up to 100 ms a try) while another
 * connection writes, so under a steady stream of commits one writer
 * could starve the other for seconds; a mutex hands the lock over at
 * once. Other processes (tocsinctl) still meet SQLite's lock and busy
 * timeout.
 */
pthread_mutex_t *store_writer(struct store *s);

/* The path store_open was given (borrowed, lives as long as s). */
const char *store_path(const struct store *s);

/* Time SQLite waits on a lock held by another process (tocsinctl). */
#define STORE_BUSY_TIMEOUT_MS 5000

/*
 * The WAL is cut back to this size (PRAGMA journal_size_limit, set on
 * every connection of the collector that writes) once a checkpoint has
 * copied all of it and the next commit starts it again: without it the
 * file keeps the largest size a pinned reader ever made it grow to.
 * Twice the checkpoint threshold (store.c), so that a WAL that never
 * went past its usual cycle is never cut: a commit that overwrites an
 * allocated WAL file costs less than one that extends it (no metadata
 * to sync).
 */
#define STORE_WAL_KEEP_SQL "33554432"

#endif
