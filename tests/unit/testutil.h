/*
 * testutil: helpers shared by the unit tests: a fresh mkdtemp scratch
 * directory per test, writing files into it, capturing stderr (where
 * log_warnx writes in foreground mode) and substring assertions.
 *
 * Include after <cmocka.h> and its prerequisites.
 */
#ifndef TOCSIN_TESTUTIL_H
#define TOCSIN_TESTUTIL_H

extern char tu_tmpdir[64]; /* this test's scratch directory */

/* Create /tmp/PREFIX-XXXXXX as tu_tmpdir; 0, or -1 on failure. */
int tu_setup(const char *prefix);

/* Remove tu_tmpdir and everything under it (a cmocka teardown). */
int tu_teardown(void **state);

/* Write text to tu_tmpdir/rel; returns the full path (static buffer). */
const char *tu_write_file(const char *rel, const char *text);

/* Redirect stderr to tu_tmpdir/stderr.txt. */
void tu_capture_begin(void);

/* Stop capturing; returns what was written (caller frees). */
char *tu_capture_end(void);

/* Fail unless needle occurs in hay. */
void tu_assert_contains(const char *hay, const char *needle);

#endif
