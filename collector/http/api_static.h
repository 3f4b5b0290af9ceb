/*
 * api_static: the dashboard's static files (docs/dashboard.md), read
 * once when the API starts from a fixed list of names in
 * api.dashboard_dir (and api.chart_js), kept in memory and answered on
 * the loop: no file read, no path from the request ever reaches the
 * file system, so no traversal.
 */
#ifndef HTTP_API_STATIC_H
#define HTTP_API_STATIC_H

#include <stddef.h>

/* One file: more is refused at load (the whole Chart.js is ~200 KiB). */
#define API_STATIC_FILE_MAX (4u << 20)

struct api_static_file {
    const char *url;   /* "/app.js"; static */
    const char *name;  /* file name in the dashboard dir; static */
    const char *ctype; /* Content-Type; static */
    char *data;        /* owned; NULL if it could not be read */
    size_t len;
};

struct api_static {
    struct api_static_file *files; /* owned */
    size_t n;
};

/*
 * Read the files of dir and chart_js; one that is missing or unreadable
 * is logged and answered 404 (the API works without the dashboard).
 * Returns the number of files read.
 */
size_t api_static_load(struct api_static *s, const char *dir,
                       const char *chart_js);
void api_static_free(struct api_static *s);

/* The file for a request path (without its query string; "/" is the
 * page), or NULL. */
const struct api_static_file *api_static_find(const struct api_static *s,
                                              const char *path, size_t len);

/* The security headers every static answer carries. */
#define API_STATIC_CSP                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; "                \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "              \
    "form-action 'none'; frame-ancestors 'none'"

#endif
