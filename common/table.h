/*
 * table: the one text-table renderer. Every table tocsinctl prints goes
 * through it, so all of them read alike: a header line, columns two
 * spaces apart, numbers right-aligned and text left-aligned, widths
 * from the content (rows are buffered, then rendered in a second pass),
 * no trailing spaces.
 *
 * Cells are escaped (escape.h: they hold hosts, rules, messages from
 * peers) and cut to their column's maximum width with a visible mark
 * ("…"), so one long message cannot push every other column off the
 * screen. The terminal's width is never asked: the maxima are fixed per
 * column, and output piped to a file is the same as on a terminal.
 * Width is counted in characters (one column each; wide CJK characters
 * are not measured as two).
 */
#ifndef TC_TABLE_H
#define TC_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "log.h" /* TC_PRINTF */

/* What marks a cut cell: one character, one column. */
#define TC_TABLE_CUT "\xe2\x80\xa6" /* U+2026 "…" */

struct tc_table_col {
    const char *head; /* header, our own text (not escaped) */
    int right;        /* 1: right-aligned (numbers), 0: left (text) */
    size_t max;       /* characters at most, cut mark included; 0: no cap */
};

struct tc_table {
    const struct tc_table_col *cols; /* ncols; not owned, outlives t */
    size_t ncols;
    char **cells;    /* owned; row-major, escaped and cut */
    size_t ncells;   /* cells added so far */
    size_t capcells; /* cells allocated */
};

void tc_table_init(struct tc_table *t, const struct tc_table_col *cols,
                   size_t ncols);
void tc_table_free(struct tc_table *t);

/*
 * The next cell, left to right, row after row: s escaped and cut to
 * its column's max. NULL and "" are shown as "-" (an empty cell would
 * shift the columns a reader counts by eye).
 */
void tc_table_cell(struct tc_table *t, const char *s);
void tc_table_cellf(struct tc_table *t, const char *fmt, ...) TC_PRINTF(2, 3);

/* Complete rows added. */
size_t tc_table_rows(const struct tc_table *t);

/* Append header and rows to out. 0, or -ENOBUFS (out at its cap). */
int tc_table_render(const struct tc_table *t, struct tc_buf *out);
/* Render to f. 0, or -EIO on a write error. */
int tc_table_print(const struct tc_table *t, FILE *f);

#endif
