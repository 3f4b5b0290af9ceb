/*
 * api_static: the dashboard's files in memory (api_static.h).
 */
#include "http/api_static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* The whole dashboard: a request path is looked up here, never
 * joined to a directory. NULL name: api.chart_js itself. */
static const struct api_static_file files[] = {
    {"/", "index.html", "text/html; charset=utf-8", NULL, 0},
    {"/index.html", "index.html", "text/html; charset=utf-8", NULL, 0},
    {"/app.js", "app.js", "text/javascript; charset=utf-8", NULL, 0},
    {"/style.css", "style.css", "text/css; charset=utf-8", NULL, 0},
    {"/static/chart.js", NULL, "text/javascript; charset=utf-8", NULL, 0},
};

/* A regular file of at most API_STATIC_FILE_MAX bytes, whole. */
static int
read_whole(const char *path, char **out, size_t *outlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *out = NULL;
    /* O_NONBLOCK: a FIFO put in place of a file must not hang start-up. */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > API_STATIC_FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    buf = tc_xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break; /* shrank meanwhile: serve what there was */
        got += (size_t)n;
    }
    *out = buf;
    *outlen = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

size_t
api_static_load(struct api_static *s, const char *dir, const char *chart_js)
{
    size_t nread = 0;
    struct stat st;

    s->files = NULL;
    s->n = 0;
    /* No dashboard installed: one line, not one per file. */
    errno = 0;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        const char *why = errno == 0 ? "not a directory" : strerror(errno);

        log_warnx("api: dashboard: %s: %s (no dashboard; the API works "
                  "without it)",
                  dir, why);
        return 0;
    }
    s->n = sizeof(files) / sizeof(files[0]);
    s->files = tc_xcalloc(s->n, sizeof(*s->files));
    for (size_t i = 0; i < s->n; i++) {
        struct api_static_file *f = &s->files[i];
        char path[4096];
        int rc;

        *f = files[i];
        if (f->name != NULL)
            snprintf(path, sizeof(path), "%s/%s", dir, f->name);
        else
            snprintf(path, sizeof(path), "%s", chart_js);
        /* The page is listed twice ("/" and "/index.html"): one copy. */
        if (i > 0 && f->name != NULL && s->files[0].data != NULL &&
            strcmp(f->name, s->files[0].name) == 0) {
            f->data = tc_xmalloc(s->files[0].len + 1);
            memcpy(f->data, s->files[0].data, s->files[0].len);
            f->len = s->files[0].len;
            continue;
        }
        if ((rc = read_whole(path, &f->data, &f->len)) < 0) {
            log_warnx("api: dashboard: %s: %s (answered 404)", path,
                      rc == -EINVAL  ? "not a regular file"
                      : rc == -EFBIG ? "larger than 4 MiB"
                                     : strerror(-rc));
            continue;
        }
        nread++;
    }
    return nread;
}

void
api_static_free(struct api_static *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].data);
    free(s->files);
    s->files = NULL;
    s->n = 0;
}

const struct api_static_file *
api_static_find(const struct api_static *s, const char *path, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->files[i].url) == len &&
            memcmp(s->files[i].url, path, len) == 0)
            return s->files[i].data != NULL ? &s->files[i] : NULL;
    return NULL;
}
