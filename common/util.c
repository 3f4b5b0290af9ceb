/*
 * util: aborting allocators, clocks, host:port parsing, mkdir -p.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Noreturn void
oom(size_t n)
{
    fprintf(stderr, "tocsin: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
tc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
tc_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *
tc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

void *
tc_xreallocarray(void *p, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size)
        oom(SIZE_MAX);
    return tc_xrealloc(p, nmemb * size);
}

char *
tc_xstrdup(const char *s)
{
    return tc_xstrndup(s, strlen(s));
}

char *
tc_xstrndup(const char *s, size_t n)
{
    char *p = tc_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
tc_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}

int64_t
tc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
tc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
tc_hostport_split(const char *s, char **host, uint16_t *port)
{
    const char *colon, *h = s;
    size_t hlen;
    char *end;
    unsigned long p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return -EINVAL; /* bare IPv6 needs brackets */
    }
    if (hlen == 0 || colon[1] == '\0')
        return -EINVAL;
    for (const char *d = colon + 1; *d; d++)
        if (*d < '0' || *d > '9')
            return -EINVAL; /* strtoul would accept " 80" and "+80" */
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (errno || *end != '\0' || p == 0 || p > 65535)
        return -EINVAL;
    *host = tc_xstrndup(h, hlen);
    *port = (uint16_t)p;
    return 0;
}

int
tc_mkdirs(const char *path, unsigned mode)
{
    struct stat st;
    char *p;
    int rc = 0;

    if (path[0] == '\0')
        return -ENOENT;
    p = tc_xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    /* EEXIST above also covers a file in the way: check what is there. */
    if (rc == 0 && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)))
        rc = errno == ENOENT ? -ENOENT : -EEXIST;
    free(p);
    return rc;
}
