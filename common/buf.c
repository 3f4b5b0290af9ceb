/*
 * buf: capped growing byte buffer; see buf.h.
 */
#include "buf.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
tc_buf_init(struct tc_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void
tc_buf_close(struct tc_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int
tc_buf_reserve(struct tc_buf *b, size_t extra)
{
    size_t used = b->len - b->off, want, ncap;

    if (extra > b->max || used > b->max - extra)
        return -ENOBUFS;
    if (b->len + extra <= b->cap)
        return 0;
    /* Compact before growing: consumed bytes are dead space. */
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, used);
        b->len = used;
        b->off = 0;
        if (used + extra <= b->cap)
            return 0;
    }
    want = used + extra;
    ncap = b->cap ? b->cap : 4096;
    while (ncap < want)
        ncap *= 2;
    /*
     * Never more than max: want <= max here, and doubling past it would
     * allocate (and let a caller count) up to twice the cap.
     */
    if (ncap > b->max)
        ncap = b->max;
    b->data = tc_xrealloc(b->data, ncap);
    b->cap = ncap;
    return 0;
}

int
tc_buf_append(struct tc_buf *b, const void *p, size_t n)
{
    int rc = tc_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int
tc_buf_printf(struct tc_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    /* One more for vsnprintf's NUL, which is not kept. */
    if ((rc = tc_buf_reserve(b, (size_t)n + 1)) < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
tc_buf_consume(struct tc_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void
tc_buf_reset(struct tc_buf *b)
{
    b->off = b->len = 0;
}
