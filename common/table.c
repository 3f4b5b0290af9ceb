/*
 * table: the text-table renderer; see table.h. Cells are stored
 * already escaped and cut, so widths are measured once, on what will
 * be printed.
 */
#include "table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "util.h"

void
tc_table_init(struct tc_table *t, const struct tc_table_col *cols, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->ncols = ncols;
}

void
tc_table_free(struct tc_table *t)
{
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->ncells = t->capcells = 0;
}

/* Characters in s: escaped text is valid UTF-8, so count lead bytes. */
static size_t
width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

/* Cut s in place to max characters, the last one being the cut mark. */
static char *
cut(char *s, size_t max)
{
    size_t w = 0, i;
    char *r;

    if (max == 0 || width(s) <= max)
        return s;
    /* Keep max - 1 characters: i ends at the start of character max. */
    for (i = 0; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (w == max - 1)
                break;
            w++;
        }
    }
    r = tc_xasprintf("%.*s%s", (int)i, s, TC_TABLE_CUT);
    free(s);
    return r;
}

void
tc_table_cell(struct tc_table *t, const char *s)
{
    const struct tc_table_col *c = &t->cols[t->ncells % t->ncols];

    if (t->ncells == t->capcells) {
        t->capcells = t->capcells ? t->capcells * 2 : 16 * t->ncols;
        t->cells = tc_xreallocarray(t->cells, t->capcells, sizeof(*t->cells));
    }
    t->cells[t->ncells++] =
        cut(tc_escape_dup(s != NULL && *s ? s : "-"), c->max);
}

void
tc_table_cellf(struct tc_table *t, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    tc_table_cell(t, tmp);
}

size_t
tc_table_rows(const struct tc_table *t)
{
    return t->ncells / t->ncols;
}

static int
pad(struct tc_buf *out, size_t n)
{
    static const char sp[] = "                                ";

    while (n > 0) {
        size_t k = n < sizeof(sp) - 1 ? n : sizeof(sp) - 1;

        if (tc_buf_append(out, sp, k) < 0)
            return -ENOBUFS;
        n -= k;
    }
    return 0;
}

int
tc_table_render(const struct tc_table *t, struct tc_buf *out)
{
    size_t rows = tc_table_rows(t), *w;
    int rc = 0;

    w = tc_xcalloc(t->ncols, sizeof(*w));
    /* Pass one: each column as wide as its widest cell or header. */
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = width(t->cols[c].head);
        for (size_t r = 0; r < rows; r++) {
            size_t cw = width(t->cells[r * t->ncols + c]);

            if (cw > w[c])
                w[c] = cw;
        }
    }
    /* Pass two: the header (row -1), then the rows. */
    for (size_t r = 0; r <= rows && rc == 0; r++) {
        size_t start = tc_buf_size(out);

        for (size_t c = 0; c < t->ncols && rc == 0; c++) {
            const char *v =
                r == 0 ? t->cols[c].head : t->cells[(r - 1) * t->ncols + c];
            size_t gap = w[c] - width(v);

            if (c > 0)
                rc = pad(out, 2);
            if (rc == 0 && t->cols[c].right)
                rc = pad(out, gap);
            if (rc == 0)
                rc = tc_buf_append(out, v, strlen(v));
            if (rc == 0 && !t->cols[c].right)
                rc = pad(out, gap);
        }
        if (rc < 0)
            break;
        /* No trailing spaces, whichever columns were short. */
        while (tc_buf_size(out) > start &&
               tc_buf_head(out)[tc_buf_size(out) - 1] == ' ')
            out->len--;
        rc = tc_buf_append(out, "\n", 1);
    }
    free(w);
    return rc < 0 ? -ENOBUFS : 0;
}

int
tc_table_print(const struct tc_table *t, FILE *f)
{
    struct tc_buf b;
    int rc;

    tc_buf_init(&b, SIZE_MAX / 2);
    rc = tc_table_render(t, &b);
    if (rc == 0 &&
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), f) != tc_buf_size(&b))
        rc = -EIO;
    tc_buf_close(&b);
    return rc;
}
