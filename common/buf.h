/*
 * buf: a growing byte buffer with a hard cap set at init (curl style).
 * Reads consume from the front; appends grow the back. Allocation
 * failure aborts; exceeding the cap is an error the caller handles.
 */
#ifndef TC_BUF_H
#define TC_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tc_buf {
    uint8_t *data; /* owned; NULL until first append */
    size_t off;    /* bytes consumed from the front of data */
    size_t len;    /* bytes in use, counted from data (includes off) */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard cap on len - off, in bytes */
};

void tc_buf_init(struct tc_buf *b, size_t max);
void tc_buf_close(struct tc_buf *b);
/* Unconsumed bytes and their count. */
static inline const uint8_t *
tc_buf_head(const struct tc_buf *b)
{
    return b->data + b->off;
}
static inline size_t
tc_buf_size(const struct tc_buf *b)
{
    return b->len - b->off;
}
/* Make room for extra more bytes; 0 or -ENOBUFS when over the cap. */
int tc_buf_reserve(struct tc_buf *b, size_t extra);
/* Append; 0 or -ENOBUFS (nothing appended). */
int tc_buf_append(struct tc_buf *b, const void *p, size_t n);
/*
 * Append printf-style text, whole (any length); 0, or -ENOBUFS with
 * nothing appended. For our own words and numbers: text from a peer or
 * a file goes through tc_escape_buf instead.
 */
int tc_buf_printf(struct tc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop n bytes from the front (n <= size). */
void tc_buf_consume(struct tc_buf *b, size_t n);
void tc_buf_reset(struct tc_buf *b);

#endif
