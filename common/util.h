/*
 * util: allocation that aborts on failure (Redis style: no half-handled
 * NULLs), clocks, and host:port parsing shared by all programs.
 */
#ifndef TC_UTIL_H
#define TC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

void *tc_xmalloc(size_t n);
void *tc_xcalloc(size_t nmemb, size_t size);
void *tc_xrealloc(void *p, size_t n);
/* Grow an array of nmemb elements of size bytes to at least want elements. */
void *tc_xreallocarray(void *p, size_t nmemb, size_t size);
char *tc_xstrdup(const char *s);
char *tc_xstrndup(const char *s, size_t n);
char *tc_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock in nanoseconds since the Unix epoch. */
int64_t tc_now_ns(void);
/* Monotonic clock in nanoseconds, for intervals. */
int64_t tc_mono_ns(void);

/*
 * Split "host:port" or "[v6]:port" into host (OUT, caller frees) and
 * port (OUT). Returns 0 or -EINVAL.
 */
int tc_hostport_split(const char *s, char **host, uint16_t *port);

/* Create dir and its parents with mode (like mkdir -p). 0 or -errno. */
int tc_mkdirs(const char *path, unsigned mode);

/*
 * qsort that takes an empty array as it is: C leaves qsort(NULL, 0, ...)
 * undefined (and UBSan says so), and an empty list is often NULL.
 */
static inline void
tc_qsort(void *base, size_t n, size_t size,
         int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(base, n, size, cmp);
}

#endif
