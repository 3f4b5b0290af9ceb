/*
 * bgwrite: a file rewritten off the loop, latest content first
 * (bgwrite.h).
 */
#include "bgwrite.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct bgwrite {
    uv_loop_t *loop; /* borrowed */
    uv_work_t work;  /* in flight while busy */
    char *path;      /* owned */
    const char *what;
    bgwrite_fn fn;
    void *cur;        /* the content the worker writes, owned */
    size_t cur_len;   /* bytes */
    void *next;       /* the content waiting for it, owned, or NULL */
    size_t next_len;  /* bytes */
    int busy;         /* work queued and not yet completed */
    int closing;      /* free once nothing is left to write */
    int failed;       /* a failure was logged */
    int rc;           /* the worker's result */
    unsigned long nw; /* writes done */
};

static void start(struct bgwrite *w);

static void
bw_free(struct bgwrite *w)
{
    free(w->cur);
    free(w->next);
    free(w->path);
    free(w);
}

static void
done(struct bgwrite *w, int rc)
{
    w->nw++;
    if (rc < 0 && !w->failed)
        log_warnx("%s: cannot write the %s: %s (logged once)", w->path, w->what,
                  strerror(-rc));
    w->failed |= rc < 0;
    free(w->cur);
    w->cur = NULL;
}

static void
work_cb(uv_work_t *req)
{
    struct bgwrite *w = req->data;

    w->rc = w->fn(w->path, w->cur, w->cur_len);
}

static void
after_cb(uv_work_t *req, int status)
{
    struct bgwrite *w = req->data;

    w->busy = 0;
    done(w, status < 0 ? status : w->rc);
    if (w->next != NULL)
        start(w);
    else if (w->closing)
        bw_free(w);
}

/* Hand the waiting content to a worker (or, failing that, write it). */
static void
start(struct bgwrite *w)
{
    w->cur = w->next;
    w->cur_len = w->next_len;
    w->next = NULL;
    w->work.data = w;
    if (uv_queue_work(w->loop, &w->work, work_cb, after_cb) == 0) {
        w->busy = 1;
        return;
    }
    /* Only with a loop torn down: nothing left to block. */
    done(w, w->fn(w->path, w->cur, w->cur_len));
    if (w->closing)
        bw_free(w);
}

struct bgwrite *
bgwrite_new(uv_loop_t *loop, const char *path, const char *what, bgwrite_fn fn)
{
    struct bgwrite *w = tc_xcalloc(1, sizeof(*w));

    w->loop = loop;
    w->path = tc_xstrdup(path);
    w->what = what;
    w->fn = fn;
    return w;
}

void
bgwrite_submit(struct bgwrite *w, const void *data, size_t len)
{
    free(w->next);
    /* One byte more: malloc(0) may return NULL, and NULL means none. */
    w->next = tc_xmalloc(len + 1);
    memcpy(w->next, data, len);
    w->next_len = len;
    if (!w->busy)
        start(w);
}

void
bgwrite_close(struct bgwrite *w, const void *data, size_t len)
{
    if (w == NULL)
        return;
    w->closing = 1;
    if (data != NULL)
        bgwrite_submit(w, data, len);
    else if (!w->busy)
        bw_free(w);
}

unsigned long
bgwrite_count(const struct bgwrite *w)
{
    return w->nw;
}
