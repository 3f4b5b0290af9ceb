/*
 * check_net: the tcp and http built-in checks; see check.h.
 *
 * Both resolve the host with uv_getaddrinfo (on libuv's thread pool, so
 * a slow resolver never blocks the loop) and connect to the first
 * address. tcp is done once connected. http sends one GET (HTTP/1.1,
 * Host, Connection: close) over plain TCP or, for https://, over a
 * tc_tls_conn with the check's probe context, and reads the answer up to
 * the end of the stream, its Content-Length, or NET_RESP_MAX bytes.
 *
 * Every open resource (the resolver request, the TCP handle, the TLS
 * conn) counts in pending; the first outcome (connected, answer, error,
 * timeout) sets the result, everything is closed, and done runs when
 * pending drops to zero.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "util.h"

#define NET_BODY_MAX (64u << 10)                  /* body bytes kept */
#define NET_RESP_MAX (NET_BODY_MAX + (16u << 10)) /* plus the head */

struct net_run {
    struct check_run *run;   /* borrowed */
    uv_getaddrinfo_t gai;    /* resolver request; data = this */
    uv_tcp_t tcp;            /* plain TCP (tcp, http); data = this */
    uv_connect_t conn;       /* its connect request */
    uv_write_t wreq;         /* the GET over plain TCP */
    struct tc_tls_conn *tls; /* https; owned until its on_close */
    int pending;             /* open resources, see the file comment */
    int tcp_open;            /* 1: tcp initialised and not closed */
    int decided;             /* 1: res is final */
    int http;                /* 1: an http check */
    int https;               /* 1: over TLS */
    char host[256];          /* host name or address literal */
    char port[8];            /* decimal */
    char hostport[280];      /* Host header value */
    char path[1024];         /* request target */
    char addr[300];          /* "ip:port" (or host:port before), for messages */
    char *req;               /* the GET request; owned */
    size_t reqlen;           /* bytes in req */
    char *resp;              /* the answer so far; owned, NET_RESP_MAX */
    size_t resp_len;         /* bytes in resp */
};

static void net_close_all(struct net_run *x);

static void net_result(struct net_run *x, int state, const char *fmt, ...)
    TC_PRINTF(3, 4);

/* The first outcome wins; what follows is its consequence. */
static void
net_result(struct net_run *x, int state, const char *fmt, ...)
{
    char msg[CHECK_MSG_MAX];
    va_list ap;

    if (x->decided)
        return;
    x->decided = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    checks_result_set(x->run->res, state, "%s", msg);
}

static void
net_release(struct net_run *x)
{
    struct check_run *r = x->run;

    if (--x->pending > 0)
        return;
    r->priv = NULL;
    free(x->req);
    free(x->resp);
    free(x);
    r->done(r);
}

static void
net_tcp_closed(uv_handle_t *h)
{
    net_release(h->data);
}

static void
net_close_all(struct net_run *x)
{
    if (x->tcp_open) {
        x->tcp_open = 0;
        uv_close((uv_handle_t *)&x->tcp, net_tcp_closed);
    }
    if (x->tls != NULL)
        tc_tls_close(x->tls, "check done");
    /* A resolver request in flight is cancelled by the caller. */
}

/*
 * Split an http(s) URL into x's host, port, Host header and path.
 * 0 or -EINVAL.
 */
static int
net_parse_url(struct net_run *x, const char *url)
{
    const char *p, *hs, *he, *ps, *slash;
    size_t n;

    if (strncmp(url, "https://", 8) == 0) {
        x->https = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return -EINVAL;
    }
    slash = p + strcspn(p, "/?#");
    if (*p == '[') {
        /* An IPv6 literal: [::1]:8080 */
        hs = p + 1;
        if ((he = memchr(hs, ']', (size_t)(slash - hs))) == NULL)
            return -EINVAL;
        ps = he + 1 < slash && he[1] == ':' ? he + 2 : NULL;
    } else {
        hs = p;
        he = memchr(hs, ':', (size_t)(slash - hs));
        ps = he != NULL ? he + 1 : NULL;
        if (he == NULL)
            he = slash;
    }
    n = (size_t)(he - hs);
    if (n == 0 || n >= sizeof(x->host) || memchr(hs, '@', n) != NULL)
        return -EINVAL;
    memcpy(x->host, hs, n);
    x->host[n] = '\0';
    if (ps != NULL) {
        n = (size_t)(slash - ps);
        if (n == 0 || n >= sizeof(x->port) || strspn(ps, "0123456789") < n)
            return -EINVAL;
        memcpy(x->port, ps, n);
        x->port[n] = '\0';
    } else {
        snprintf(x->port, sizeof(x->port), "%s", x->https ? "443" : "80");
    }
    snprintf(x->hostport, sizeof(x->hostport), "%.*s", (int)(slash - p), p);
    n = strcspn(slash, "#");
    if (n == 0)
        snprintf(x->path, sizeof(x->path), "/");
    else if (*slash == '?')
        snprintf(x->path, sizeof(x->path), "/%.*s", (int)n, slash);
    else if (n < sizeof(x->path))
        snprintf(x->path, sizeof(x->path), "%.*s", (int)n, slash);
    else
        return -EINVAL;
    return 0;
}

/* Decode a chunked body in place; returns its new length. */
static size_t
net_dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;

    while (in < n) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *eol = memchr(b + in, '\n', n - in);

        if (eol == NULL || end == b + in)
            break;
        in = (size_t)(eol - b) + 1;
        if (sz == 0)
            break;
        if (sz > n - in)
            sz = n - in; /* cut by the cap: keep what we have */
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz;
        if (in < n && b[in] == '\r')
            in++;
        if (in < n && b[in] == '\n')
            in++;
    }
    return out;
}

/* Find header name's value in head[0..n); NULL if absent. */
static const char *
net_header(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + n, *eol;

    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' &&
            strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;

            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            while (*vlen > 0 && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
                (*vlen)--;
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* The answer is complete (or cut): judge it. */
static void
net_http_judge(struct net_run *x)
{
    const struct agent_check *c = x->run->cfg;
    struct check_result *res = x->run->res;
    double ms = checks_run_elapsed_ms(x->run);
    const char *hend, *te, *body;
    size_t head_len, body_len, tel;
    unsigned status;
    int n = 0;

    if (x->resp_len < 12 ||
        sscanf(x->resp, "HTTP/%*u.%*u %3u%n", &status, &n) != 1 || n == 0) {
        net_result(x, CHECK_CRITICAL, "invalid HTTP response from %s", x->addr);
        return;
    }
    hend = memmem(x->resp, x->resp_len, "\r\n\r\n", 4);
    head_len = hend != NULL ? (size_t)(hend - x->resp) + 4 : x->resp_len;
    body = x->resp + head_len;
    body_len = x->resp_len - head_len;
    te = net_header(x->resp, head_len, "Transfer-Encoding", &tel);
    if (te != NULL && tel == 7 && strncasecmp(te, "chunked", 7) == 0)
        body_len = net_dechunk(x->resp + head_len, body_len);
    if (body_len > NET_BODY_MAX)
        body_len = NET_BODY_MAX;
    checks_result_field(res, "latency_ms", "%.1f", ms);
    checks_result_field(res, "http_status", "%u", status);
    checks_result_field(res, "body_bytes", "%zu", body_len);
    if (status != c->expect_status)
        net_result(x, CHECK_CRITICAL, "HTTP %u (expected %u) in %.1f ms",
                   status, c->expect_status, ms);
    else if (c->expect_body != NULL && memmem(body, body_len, c->expect_body,
                                              strlen(c->expect_body)) == NULL)
        net_result(x, CHECK_CRITICAL,
                   "HTTP %u in %.1f ms, but the body does not contain '%s'",
                   status, ms, c->expect_body);
    else
        net_result(x, CHECK_OK, "HTTP %u in %.1f ms", status, ms);
}

/* Bytes of the answer arrived. 1 once it is complete. */
static int
net_http_data(struct net_run *x, const char *p, size_t n)
{
    const char *hend, *cl;
    size_t room = NET_RESP_MAX - x->resp_len, cll;

    if (n > room)
        n = room;
    if (n > 0) {
        memcpy(x->resp + x->resp_len, p, n);
        x->resp_len += n;
    }
    if (x->resp_len >= NET_RESP_MAX)
        return 1;
    /* With a Content-Length we need not wait for the server to close. */
    hend = memmem(x->resp, x->resp_len, "\r\n\r\n", 4);
    if (hend == NULL)
        return 0;
    cl = net_header(x->resp, (size_t)(hend - x->resp), "Content-Length", &cll);
    if (cl == NULL)
        return 0;
    return x->resp_len - (size_t)(hend + 4 - x->resp) >= strtoull(cl, NULL, 10);
}

static void
net_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct net_run *x = h->data;

    (void)suggested;
    buf->base = x->resp + x->resp_len;
    buf->len = NET_RESP_MAX - x->resp_len;
}

static void
net_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct net_run *x = s->data;

    if (x->decided || nread == 0)
        return;
    if (nread > 0) {
        x->resp_len += (size_t)nread;
        /* Reuse the check for completeness with no new bytes. */
        if (!net_http_data(x, NULL, 0))
            return;
    } else if (nread != UV_EOF && x->resp_len == 0) {
        net_result(x, CHECK_CRITICAL, "read from %s: %s", x->addr,
                   strerror(-(int)nread));
        net_close_all(x);
        return;
    }
    net_http_judge(x);
    net_close_all(x);
}

static void
net_write_cb(uv_write_t *req, int status)
{
    struct net_run *x = req->data;

    if (status < 0 && status != UV_ECANCELED && !x->decided) {
        net_result(x, CHECK_CRITICAL, "write to %s: %s", x->addr,
                   strerror(-status));
        net_close_all(x);
    }
}

static void
net_connect_cb(uv_connect_t *req, int status)
{
    struct net_run *x = req->data;
    struct check_result *res = x->run->res;
    uv_buf_t b;
    int r;

    if (x->decided || status == UV_ECANCELED)
        return;
    if (status < 0) {
        net_result(x, CHECK_CRITICAL, "connect to %s: %s", x->addr,
                   strerror(-status));
        net_close_all(x);
        return;
    }
    if (!x->http) {
        double ms = checks_run_elapsed_ms(x->run);

        checks_result_field(res, "latency_ms", "%.1f", ms);
        net_result(x, CHECK_OK, "connected to %s in %.1f ms", x->addr, ms);
        net_close_all(x);
        return;
    }
    b = uv_buf_init(x->req, (unsigned)x->reqlen);
    x->wreq.data = x;
    if ((r = uv_write(&x->wreq, (uv_stream_t *)&x->tcp, &b, 1, net_write_cb)) <
            0 ||
        (r = uv_read_start((uv_stream_t *)&x->tcp, net_alloc_cb, net_read_cb)) <
            0) {
        net_result(x, CHECK_CRITICAL, "send to %s: %s", x->addr, strerror(-r));
        net_close_all(x);
    }
}

static void
net_tls_ready(struct tc_tls_conn *c)
{
    struct net_run *x = tc_tls_get_data(c);

    if (tc_tls_write(c, x->req, x->reqlen) < 0)
        tc_tls_close(c, "write failed");
}

static void
net_tls_data(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    struct net_run *x = tc_tls_get_data(c);

    if (x->decided)
        return;
    if (net_http_data(x, (const char *)p, n)) {
        net_http_judge(x);
        tc_tls_close(c, "check done");
    }
}

static void
net_tls_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct net_run *x = tc_tls_get_data(c);

    x->tls = NULL;
    if (!x->decided) {
        /* Servers often skip close_notify: an answer is an answer. */
        if (x->resp_len > 0)
            net_http_judge(x);
        else
            net_result(x, CHECK_CRITICAL, "https %s: %s", x->addr,
                       status < 0 ? reason : "closed without an answer");
    }
    net_release(x);
}

static const struct tc_tls_cbs net_tls_cbs = {
    .on_ready = net_tls_ready,
    .on_data = net_tls_data,
    .on_close = net_tls_close,
};

static void
net_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    } else {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in *)sa)->sin_port));
    }
}

static void
net_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct net_run *x = req->data;
    int r;

    if (x->decided) {
        /* Timed out or cancelled while resolving. */
        uv_freeaddrinfo(ai);
        net_release(x);
        return;
    }
    if (status < 0 || ai == NULL) {
        net_result(x, CHECK_CRITICAL, "cannot resolve %s: %s", x->host,
                   status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(ai);
        net_release(x);
        return;
    }
    net_format_addr(ai->ai_addr, x->addr, sizeof(x->addr));
    if (x->https) {
        x->pending++;
        r = tc_tls_connect(x->run->loop, x->run->tls, ai->ai_addr, x->host,
                           &net_tls_cbs, x, &x->tls);
        if (r < 0) {
            x->pending--;
            net_result(x, CHECK_UNKNOWN, "https %s: cannot connect: %s",
                       x->addr, strerror(-r));
        }
    } else {
        uv_tcp_init(x->run->loop, &x->tcp);
        x->tcp.data = x;
        x->tcp_open = 1;
        x->pending++;
        x->conn.data = x;
        r = uv_tcp_connect(&x->conn, &x->tcp, ai->ai_addr, net_connect_cb);
        if (r < 0) {
            net_result(x, CHECK_CRITICAL, "connect to %s: %s", x->addr,
                       strerror(-r));
            net_close_all(x);
        }
    }
    uv_freeaddrinfo(ai);
    net_release(x); /* the resolver request */
}

int
check_net_start(struct check_run *r)
{
    const struct agent_check *c = r->cfg;
    struct addrinfo hints;
    struct net_run *x;
    char *host = NULL;
    uint16_t port;
    int rc;

    x = tc_xcalloc(1, sizeof(*x));
    x->run = r;
    if (c->type == AGENT_CHECK_TCP) {
        if (tc_hostport_split(c->address, &host, &port) < 0) {
            checks_result_set(r->res, CHECK_UNKNOWN, "bad address '%s'",
                              c->address);
            free(x);
            return 1;
        }
        snprintf(x->host, sizeof(x->host), "%s", host);
        snprintf(x->port, sizeof(x->port), "%u", (unsigned)port);
        free(host);
    } else {
        x->http = 1;
        if (net_parse_url(x, c->url) < 0) {
            checks_result_set(r->res, CHECK_UNKNOWN, "bad url '%s'", c->url);
            free(x);
            return 1;
        }
        if (x->https && r->tls == NULL) {
            checks_result_set(r->res, CHECK_UNKNOWN, "%s",
                              r->tls_err != NULL ? r->tls_err
                                                 : "tls: no context");
            free(x);
            return 1;
        }
        x->req = tc_xasprintf("GET %s HTTP/1.1\r\n"
                              "Host: %s\r\n"
                              "User-Agent: tocsin-agent/" TOCSIN_VERSION "\r\n"
                              "Accept: */*\r\n"
                              "Connection: close\r\n\r\n",
                              x->path, x->hostport);
        x->reqlen = strlen(x->req);
        x->resp = tc_xmalloc(NET_RESP_MAX);
    }
    snprintf(x->addr, sizeof(x->addr), "%s:%s", x->host, x->port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    x->gai.data = x;
    x->pending = 1;
    rc = uv_getaddrinfo(r->loop, &x->gai, net_resolved, x->host, x->port,
                        &hints);
    if (rc < 0) {
        checks_result_set(r->res, CHECK_CRITICAL, "cannot resolve %s: %s",
                          x->host, uv_strerror(rc));
        free(x->req);
        free(x->resp);
        free(x);
        return 1;
    }
    r->priv = x;
    return 0;
}

void
check_net_timeout(struct check_run *r)
{
    struct net_run *x = r->priv;
    char t[32];

    if (x == NULL)
        return;
    r->res->timed_out = 1;
    net_result(x, CHECK_CRITICAL, "timed out after %s (%s)",
               checks_fmt_ms(r->cfg->timeout_ms, t, sizeof(t)), x->addr);
    /* A request not yet picked up by a thread is cancelled outright. */
    uv_cancel((uv_req_t *)&x->gai);
    net_close_all(x);
}

void
check_net_cancel(struct check_run *r)
{
    check_net_timeout(r);
}
