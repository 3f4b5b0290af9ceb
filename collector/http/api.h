/*
 * api: the HTTP JSON API (docs/api.md, docs/internals/api.md), served
 * by H2O on the collector's own libuv loop, HTTPS only. The loop thread
 * accepts, parses (http/api_req.c) and refuses what it can without the
 * store; reads run on the libuv threadpool through a read-only store
 * connection (http/api_handlers.c), at most API_WORKERS at once, so the
 * group commit and the engine step always find a thread. Disabled
 * unless api.listen is set.
 */
#ifndef HTTP_API_H
#define HTTP_API_H

#include <stddef.h>

#include <uv.h>

struct api;
struct collector_config;

/* Threadpool slots the API uses at most (libuv has 4 by default). */
#define API_WORKERS 2

/*
 * Load the API's TLS identity and bind api.listen (before the store is
 * opened and before the daemon forks, like the agents' listener: a
 * collector that cannot serve what it was asked to leaves no database).
 * cfg must outlive the api. 0, or -1 with the reason logged.
 */
int api_new(const struct collector_config *cfg, struct api **out);
/*
 * Serve on loop (after the daemon has forked). 0 or a negative errno
 * (logged).
 */
int api_start(struct api *a, uv_loop_t *loop);
/*
 * GET /metrics (docs/metrics.md): after the token check on a worker,
 * the loop renders the live figures from src (copied; what it points
 * to must live until api_free). Without this call /metrics is 404.
 */
struct metrics_sources;
void api_set_metrics(struct api *a, const struct metrics_sources *src);
/* -n: the API's TLS files load and api.listen can be bound (in use is
 * only a warning, as for listen). 0 or -1 (logged). */
int api_check(const struct collector_config *cfg);
/*
 * Stop accepting; requests in flight are answered, keep-alive
 * connections are closed by H2O's shutdown or their idle timeout
 * (api.request_timeout), then every handle is closed: the loop ends.
 */
void api_stop(struct api *a);
/* After the loop has ended. */
void api_free(struct api *a);

#endif
