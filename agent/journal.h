/*
 * journal: a journald input. Reads the local system journal through
 * sd-journal (libsystemd), filtered by unit and priority, and hands each
 * entry to emit: with rules, MESSAGE is matched like a log line; without
 * rules every entry is an event at the severity of its PRIORITY.
 *
 * Entries are read in batches; each batch ends in one emit_commit that
 * carries the journal cursor of its last entry (key "journal:NAME"), so
 * the cursor moves in the same transaction as the events. On start the
 * journal is positioned just after the stored cursor, or at its tail or
 * head (start_at) when there is none.
 *
 * A journal that cannot be opened (no journald, as in most containers)
 * is logged as a warning; the input then stays idle and the rest of the
 * agent runs.
 */
#ifndef AGENT_JOURNAL_H
#define AGENT_JOURNAL_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "emit.h"
#include "rules.h"

struct journal;

/*
 * Prepare the input jc. rules (NULL or empty: ship every entry), jc and
 * e are borrowed and outlive the journal.
 */
struct journal *journal_new(uv_loop_t *loop, const struct agent_journal *jc,
                            struct rules *rules, struct emit *e);
/*
 * Open the journal, seek, and start reading. Returns 0 also when the
 * journal cannot be opened (logged; the input stays idle), and a
 * negative errno only for a spool error reading the cursor.
 */
int journal_start(struct journal *j);
/* Close the loop handles; cb(arg) when they are closed. */
void journal_stop(struct journal *j, void (*cb)(void *arg), void *arg);
void journal_free(struct journal *j);

/* The event severity of a syslog PRIORITY (0 emerg .. 7 debug). */
enum tc_severity journal_severity(int priority);

/* Counters for status and tests. */
struct journal_stats {
    uint64_t entries; /* entries read */
    uint64_t matched; /* entries that matched a rule (or all, without) */
    uint64_t batches; /* committed batches */
    int open;         /* 1 if the journal is open */
    int waiting;      /* 1 while it has no files yet (see journal.c) */
};
void journal_get_stats(const struct journal *j, struct journal_stats *out);

#endif
