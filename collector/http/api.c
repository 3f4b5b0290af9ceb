/*
 * api: the HTTP API server (api.h, docs/internals/api.md): H2O on the
 * collector's loop, connections through net/listener, reads queued to
 * the threadpool at most API_WORKERS at a time.
 */
#include "http/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <h2o.h>

#include "config.h"
#include "http/api_actions.h"
#include "http/api_handlers.h"
#include "http/api_req.h"
#include "http/api_static.h"
#include "log.h"
#include "metrics.h"
#include "net/listener.h"
#include "store/incidents_store.h"
#include "tls.h"
#include "util.h"

/* Request bodies: H2O refuses more; the actions take at most
 * API_ACTION_BODY_MAX, reads none. */
#define API_BODY_MAX (64 * 1024)
/* Bytes of a bearer token we look at; longer ones are refused. */
#define API_TOKEN_MAX 256

struct api_job {
    uv_work_t work;
    struct api *api;
    h2o_req_t *req;         /* NULL once the client has gone */
    struct api_job **guard; /* in req's pool; cleared when we answer */
    struct api_call call;   /* in and out of the worker */
    struct api_job *next;   /* waiting list */
};

struct api_handler {
    h2o_handler_t super; /* first: H2O allocates and calls it */
    struct api *api;
};

/* A connection's libuv handle, with the way back to its api. */
struct api_conn {
    uv_tcp_t tcp; /* first: H2O's close callback gets it */
    struct api *api;
};

struct api {
    uv_loop_t *loop;
    const struct collector_config *cfg; /* borrowed */
    void *ssl;                          /* SSL_CTX, owned */
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    int ctx_up;              /* ctx initialised, not disposed */
    int cfg_up;              /* config initialised */
    struct api_static files; /* the dashboard, read at api_new */
    struct listener lst;
    int lfd;          /* until api_start hands it to lst */
    size_t nconns;    /* connections open */
    uint64_t refused; /* connections closed at accept (max_connections) */
    uint32_t queued;  /* requests waiting or running */
    unsigned running; /* jobs on the threadpool */
    struct api_job *qhead, *qtail;
    /* Read-only store connections, one per worker at most; a worker
     * takes one under the mutex and gives it back. */
    pthread_mutex_t pool_mu;
    struct incidents_store *pool[API_WORKERS];
    size_t npool;
    struct metrics_sources msrc; /* api_set_metrics; has_metrics */
    int has_metrics;
    uv_timer_t drain; /* api_stop: waits for connections and jobs */
    int stopping;
    int drain_up;
};

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

static void
send_body(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers,
                       H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"tocsin\""));
    if (status == 503)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, H2O_STRLIT("1"));
    h2o_send_inline(req, body, len);
}

/* A refusal decided on the loop: the same JSON as the workers'. */
static int
send_error(h2o_req_t *req, int status, const char *msg)
{
    struct api_call c;

    memset(&c, 0, sizeof(c));
    api_error(&c, status, msg);
    send_body(req, status, c.body, c.len);
    free(c.body);
    return 0;
}

/*
 * GET /metrics, its token checked: the live figures, rendered here on
 * the loop (metrics_collect reads what the loop owns; about 8 KiB).
 */
static void
send_metrics(struct api *a, h2o_req_t *req)
{
    struct metrics m;
    struct tc_buf b;

    if (!a->has_metrics || a->stopping) {
        send_error(req, a->stopping ? 503 : 404,
                   a->stopping ? "collector shutting down"
                               : "no metrics in this process");
        return;
    }
    metrics_collect(&m, &a->msrc);
    tc_buf_init(&b, METRICS_RENDER_MAX);
    if (metrics_render(&m, &b) < 0) {
        tc_buf_close(&b);
        send_error(req, 500, "metrics not rendered");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    /* h2o_send_inline copies the body into the request's pool. */
    h2o_send_inline(req, (const char *)tc_buf_head(&b), tc_buf_size(&b));
    tc_buf_close(&b);
}

void
api_set_metrics(struct api *a, const struct metrics_sources *src)
{
    if (a == NULL)
        return;
    a->msrc = *src;
    a->has_metrics = 1;
}

static void
guard_dispose(void *p)
{
    struct api_job *j = *(struct api_job **)p;

    if (j != NULL)
        j->req = NULL;
}

static struct incidents_store *
pool_get(struct api *a)
{
    struct incidents_store *is = NULL;

    pthread_mutex_lock(&a->pool_mu);
    if (a->npool > 0)
        is = a->pool[--a->npool];
    pthread_mutex_unlock(&a->pool_mu);
    if (is == NULL && incidents_store_open(a->cfg->store_path, 1, &is) < 0)
        return NULL;
    return is;
}

static void
pool_put(struct api *a, struct incidents_store *is)
{
    pthread_mutex_lock(&a->pool_mu);
    if (a->npool < API_WORKERS) {
        a->pool[a->npool++] = is;
        is = NULL;
    }
    pthread_mutex_unlock(&a->pool_mu);
    incidents_store_close(is);
}

/* On a threadpool thread: nothing here touches H2O or the loop. */
static void
work_cb(uv_work_t *w)
{
    struct api_job *j = w->data;
    struct incidents_store *is = pool_get(j->api);

    if (is == NULL) {
        api_error(&j->call, 503, "store not readable, try again");
        return;
    }
    api_handle(is, &j->call);
    pool_put(j->api, is);
}

static void start_jobs(struct api *a);

static void
after_cb(uv_work_t *w, int status)
{
    struct api_job *j = w->data;
    struct api *a = j->api;

    a->running--;
    a->queued--;
    if (status == UV_ECANCELED)
        api_error(&j->call, 503, "collector shutting down");
    if (j->req != NULL) {
        *j->guard = NULL;
        if (j->call.req.route == API_R_METRICS && j->call.status == 200)
            send_metrics(a, j->req);
        else
            send_body(j->req, j->call.status, j->call.body, j->call.len);
    }
    free(j->call.body);
    free((char *)j->call.body_in);
    free(j->call.runbooks_dir);
    free(j);
    start_jobs(a);
}

static void
start_jobs(struct api *a)
{
    while (a->running < API_WORKERS && a->qhead != NULL) {
        struct api_job *j = a->qhead;

        a->qhead = j->next;
        if (a->qhead == NULL)
            a->qtail = NULL;
        j->work.data = j;
        a->running++;
        if (uv_queue_work(a->loop, &j->work, work_cb, after_cb) < 0) {
            /* Cannot happen with a valid loop; answer rather than hang. */
            a->running--;
            a->queued--;
            if (j->req != NULL) {
                *j->guard = NULL;
                send_error(j->req, 503, "cannot queue the request");
            }
            free((char *)j->call.body_in);
            free(j->call.runbooks_dir);
            free(j);
        }
    }
}

/* "Bearer TOKEN": 1 with the token's hash, 0 without the header,
 * -1 for anything else. */
static int
bearer(h2o_req_t *req, uint8_t hash[TC_TOKEN_HASH_LEN])
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const char *v;
    size_t n;

    if (i < 0)
        return 0;
    /* A second Authorization header is ambiguous: refuse it. */
    if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i) >= 0)
        return -1;
    v = req->headers.entries[i].value.base;
    n = req->headers.entries[i].value.len;
    if (n < 8 || strncasecmp(v, "Bearer ", 7) != 0)
        return -1;
    v += 7;
    n -= 7;
    while (n > 0 && v[0] == ' ') {
        v++;
        n--;
    }
    if (n == 0 || n > API_TOKEN_MAX)
        return -1;
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)v[k] <= 0x20 || (unsigned char)v[k] >= 0x7f)
            return -1;
    return tc_token_hash(v, n, hash) == 0 ? 1 : -1;
}

/*
 * A dashboard file (docs/dashboard.md): from memory, on the loop, no
 * token (the files are public code; the data behind them needs one).
 * 1 if answered, 0 if the request is not for one of them.
 */
static int
serve_static(struct api *a, h2o_req_t *req)
{
    /* Lower case: HTTP/2 wants it. */
    static const char *const sec[][2] = {
        {"content-security-policy", API_STATIC_CSP},
        {"x-content-type-options", "nosniff"},
        {"x-frame-options", "DENY"},
        {"referrer-policy", "no-referrer"},
    };
    const struct api_static_file *f;
    const char *p = req->input.path.base;
    size_t n = req->input.path.len;
    const char *q = memchr(p, '?', n);

    if (!h2o_memis(req->input.method.base, req->input.method.len,
                   H2O_STRLIT("GET")))
        return 0;
    if (q != NULL)
        n = (size_t)(q - p);
    if ((f = api_static_find(&a->files, p, n)) == NULL)
        return 0;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   f->ctype, strlen(f->ctype));
    for (size_t i = 0; i < sizeof(sec) / sizeof(sec[0]); i++)
        h2o_add_header_by_str(&req->pool, &req->res.headers, sec[i][0],
                              strlen(sec[i][0]), 0, NULL, sec[i][1],
                              strlen(sec[i][1]));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_send_inline(req, f->data, f->len);
    return 1;
}

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct api *a = ((struct api_handler *)self)->api;
    struct api_job *j;
    char err[256];
    int status, tok;

    if (a->stopping)
        return send_error(req, 503, "collector shutting down");
    if (serve_static(a, req))
        return 0;
    j = tc_xcalloc(1, sizeof(*j));
    status =
        api_req_parse(req->input.method.base, req->input.method.len,
                      req->input.path.base, req->input.path.len,
                      a->cfg->api_max_page, &j->call.req, err, sizeof(err));
    if (status != 0) {
        free(j);
        return send_error(req, status, err);
    }
    if ((tok = bearer(req, j->call.hash)) < 0) {
        free(j);
        return send_error(req, 401,
                          "Authorization must be 'Bearer TOKEN' (one header)");
    }
    j->call.has_token = tok;
    if (!tok && (j->call.req.write || !a->cfg->api_anonymous_read)) {
        free(j);
        return send_error(req, 401, "a bearer token is required");
    }
    /* A body only where an action reads one; copied, since the worker
     * may outlive the request (the client gone). */
    if (req->entity.base != NULL && req->entity.len > 0) {
        if (!j->call.req.write) {
            free(j);
            return send_error(req, 400, "this request takes no body");
        }
        if (req->entity.len > API_ACTION_BODY_MAX) {
            free(j);
            return send_error(req, 413, "body too large (16 KiB at most)");
        }
    }
    if (a->queued >= a->cfg->api_max_queue) {
        free(j);
        return send_error(req, 503, "too many requests in flight, try again");
    }
    j->api = a;
    j->req = req;
    j->call.now = tc_now_ns();
    j->call.store_path = a->cfg->store_path;
    if (j->call.req.route == API_R_RUNBOOKS && a->cfg->runbooks_dir != NULL)
        j->call.runbooks_dir = tc_xstrdup(a->cfg->runbooks_dir);
    if (j->call.req.write && req->entity.base != NULL && req->entity.len > 0) {
        char *b = tc_xmalloc(req->entity.len);

        memcpy(b, req->entity.base, req->entity.len);
        j->call.body_in = b;
        j->call.body_in_len = req->entity.len;
    }
    j->guard =
        h2o_mem_alloc_shared(&req->pool, sizeof(*j->guard), guard_dispose);
    *j->guard = j;
    a->queued++;
    if (a->qtail)
        a->qtail->next = j;
    else
        a->qhead = j;
    a->qtail = j;
    start_jobs(a);
    return 0;
}

static void
conn_closed(uv_handle_t *h)
{
    struct api_conn *c = (struct api_conn *)h;

    c->api->nconns--;
    free(c);
}

static void
on_conn(void *arg, int fd)
{
    struct api *a = arg;
    struct api_conn *c;
    h2o_socket_t *sock;

    if (a->stopping || a->nconns >= a->cfg->api_max_connections) {
        /* Counted, logged now and then: a flood must not fill the log. */
        if (a->refused++ % 1000 == 0)
            log_warnx("api: %u connections open (api.max_connections): "
                      "closing new ones (%llu so far)",
                      a->cfg->api_max_connections,
                      (unsigned long long)a->refused);
        close(fd);
        return;
    }
    c = tc_xcalloc(1, sizeof(*c));
    c->api = a;
    if (uv_tcp_init(a->loop, &c->tcp) < 0) {
        free(c);
        close(fd);
        return;
    }
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        close(fd);
        a->nconns++;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    a->nconns++;
    sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
    h2o_accept(&a->accept_ctx, sock);
}

static void
on_exhausted(void *arg, int err)
{
    log_warnx("api: accept: %s (connections wait in the backlog)",
              strerror(err));
}

int
api_check(const struct collector_config *cfg)
{
    char err[512];
    void *ssl;
    int rc, bad = 0;

    if (cfg->api_listen == NULL)
        return 0;
    if ((ssl = tc_tls_https_ctx_new(cfg->api_tls_cert, cfg->api_tls_key, err,
                                    sizeof(err))) == NULL) {
        log_warnx("%s:%d: api: %s", cfg->file, cfg->api_line, err);
        bad = 1;
    }
    tc_tls_https_ctx_free(ssl);
    if ((rc = listener_check(cfg->api_listen, err, sizeof(err))) ==
        -EADDRINUSE) {
        log_warnx("%s:%d: api: %s (by a running collector?): the collector "
                  "cannot start while it is taken",
                  cfg->file, cfg->api_line, err);
    } else if (rc < 0) {
        log_warnx("%s:%d: api: %s", cfg->file, cfg->api_line, err);
        bad = 1;
    }
    return bad ? -1 : 0;
}

int
api_new(const struct collector_config *cfg, struct api **out)
{
    struct api *a;
    char err[512];

    *out = NULL;
    a = tc_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->lfd = -1;
    a->lst.fd = -1;
    pthread_mutex_init(&a->pool_mu, NULL);
    if ((a->ssl = tc_tls_https_ctx_new(cfg->api_tls_cert, cfg->api_tls_key, err,
                                       sizeof(err))) == NULL) {
        log_warnx("%s:%d: api: %s", cfg->file, cfg->api_line, err);
        goto fail;
    }
    h2o_ssl_register_alpn_protocols(a->ssl, h2o_http2_alpn_protocols);
    if ((a->lfd = listener_open(cfg->api_listen, err, sizeof(err))) < 0) {
        log_warnx("%s:%d: api: %s", cfg->file, cfg->api_line, err);
        goto fail;
    }
    /* At start-up, off the loop: serving them never reads a file. */
    if (cfg->api_dashboard_dir != NULL && cfg->api_chart_js != NULL &&
        api_static_load(&a->files, cfg->api_dashboard_dir, cfg->api_chart_js) >
            0)
        log_info("api: dashboard from %s", cfg->api_dashboard_dir);
    *out = a;
    return 0;
fail:
    if (a->lfd >= 0)
        close(a->lfd);
    tc_tls_https_ctx_free(a->ssl);
    pthread_mutex_destroy(&a->pool_mu);
    free(a);
    return -1;
}

int
api_start(struct api *a, uv_loop_t *loop)
{
    static const struct listener_cbs cbs = {on_conn, on_exhausted};
    const struct collector_config *cfg = a->cfg;
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct api_handler *h;
    int fd = a->lfd, rc;

    a->loop = loop;
    a->cfg_up = 1;
    h2o_config_init(&a->config);
    a->config.server_name = h2o_iovec_init(H2O_STRLIT("tocsin"));
    a->config.max_request_entity_size = API_BODY_MAX;
    a->config.http1.req_timeout = cfg->api_request_timeout_ms;
    a->config.http2.idle_timeout = cfg->api_request_timeout_ms;
    host = h2o_config_register_host(
        &a->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    h = (struct api_handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->api = a;
    h2o_context_init(&a->ctx, loop, &a->config);
    a->ctx_up = 1;
    a->accept_ctx.ctx = &a->ctx;
    a->accept_ctx.hosts = a->config.hosts;
    a->accept_ctx.ssl_ctx = a->ssl;
    a->lfd = -1;
    if ((rc = listener_start(&a->lst, a->loop, fd, &cbs, a)) < 0) {
        log_warnx("api: cannot accept on %s: %s", a->cfg->api_listen,
                  uv_strerror(rc));
        return rc;
    }
    log_info("api: listening on https://%s%s", a->cfg->api_listen,
             a->cfg->api_anonymous_read ? " (anonymous reads allowed)" : "");
    return 0;
}

static void
drain_closed(uv_handle_t *h)
{
    (void)h;
}

/* Every 100 ms while stopping: once nothing is left, close it all. */
static void
drain_tick(uv_timer_t *t)
{
    struct api *a = t->data;

    /*
     * H2O's shutdown request links a GOAWAY timer (HTTP/2) that runs
     * once more a second later; disposing the context before it has
     * run trips H2O's assertion that no timeout is pending.
     */
    if (a->nconns > 0 || a->queued > 0 ||
        h2o_timeout_is_linked(&a->ctx.http2._graceful_shutdown_timeout))
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, drain_closed);
    if (a->ctx_up) {
        h2o_context_dispose(&a->ctx);
        a->ctx_up = 0;
    }
}

void
api_stop(struct api *a)
{
    if (a == NULL || a->stopping)
        return;
    a->stopping = 1;
    if (a->lst.started)
        listener_stop(&a->lst, NULL);
    if (a->ctx_up)
        h2o_context_request_shutdown(&a->ctx);
    uv_timer_init(a->loop, &a->drain);
    a->drain.data = a;
    a->drain_up = 1;
    uv_timer_start(&a->drain, drain_tick, 0, 100);
}

void
api_free(struct api *a)
{
    if (a == NULL)
        return;
    if (a->lfd >= 0)
        close(a->lfd);
    if (a->ctx_up)
        h2o_context_dispose(&a->ctx);
    if (a->cfg_up)
        h2o_config_dispose(&a->config);
    for (size_t i = 0; i < a->npool; i++)
        incidents_store_close(a->pool[i]);
    pthread_mutex_destroy(&a->pool_mu);
    tc_tls_https_ctx_free(a->ssl);
    api_static_free(&a->files);
    free(a);
}
