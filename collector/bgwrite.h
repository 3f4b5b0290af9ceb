/*
 * bgwrite: a small file kept current from the event loop, written by a
 * threadpool worker. The collector rewrites two files once a second
 * beside its store (the loop stats, looplag.h; the metrics textfile,
 * metrics.h), each an open, write, close and rename. On the loop those
 * blocked it for up to 170 ms behind the store's fsyncs in the
 * 10,000-agent storm (bench/README.md, "issue 11: storm"). The caller
 * renders the content on the loop (cheap, it owns the figures) and hands
 * over a copy; one write is in flight at a time, and a newer content
 * replaces one still waiting (these files are snapshots: only the
 * latest matters), so writes never pile up and never go back in time.
 *
 * Loop thread only, apart from fn, which runs on a worker and must be
 * safe there (it gets the path and the copy; nothing else).
 */
#ifndef TOCSIN_COLLECTOR_BGWRITE_H
#define TOCSIN_COLLECTOR_BGWRITE_H

#include <stddef.h>

#include <uv.h>

/* Write len bytes of data to path: 0 or a negative errno. */
typedef int (*bgwrite_fn)(const char *path, const void *data, size_t len);

struct bgwrite;

/*
 * A writer of path (copied) through fn; what names the file in the one
 * warning logged if a write fails ("loop stats").
 */
struct bgwrite *bgwrite_new(uv_loop_t *loop, const char *path, const char *what,
                            bgwrite_fn fn);
/*
 * Write a copy of data: now if no write is in flight, else when it is
 * done (replacing any content still waiting).
 */
void bgwrite_submit(struct bgwrite *w, const void *data, size_t len);
/*
 * Submit data as the last content (NULL: none) and free w once what is
 * left is written (the pending work keeps the loop alive until then).
 * NULL w: no-op.
 */
void bgwrite_close(struct bgwrite *w, const void *data, size_t len);
/* Writes done (whatever their result), for tests. */
unsigned long bgwrite_count(const struct bgwrite *w);

#endif
