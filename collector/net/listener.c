/*
 * listener: bind the collector's listening socket, and accept on it;
 * see listener.h.
 */
#include "net/listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "util.h"

/* After accept ran out of descriptors, accept again after this, ms. */
#define ACCEPT_RETRY_MS 100
/* Connections accepted per listener wakeup, so sessions get a turn. */
#define ACCEPT_BATCH 64

/* The address of listen into ss/len. 0 or a negative errno (err set). */
static int
listener_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                 char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char *host = NULL, pstr[8];
    uint16_t port;
    int rc;

    if (tc_hostport_split(addr, &host, &port) < 0) {
        snprintf(err, errlen, "listen %s: not host:port", addr);
        return -EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(pstr, sizeof(pstr), "%u", (unsigned)port);
    rc = getaddrinfo(host, pstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", addr,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        rc = -EADDRNOTAVAIL;
        goto out;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
out:
    free(host);
    return rc;
}

/* A socket bound to listen; listening too if backlog > 0. */
static int
listener_bind(const char *addr, int backlog, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd, rc;

    memset(&ss, 0, sizeof(ss));
    if ((rc = listener_resolve(addr, &ss, &len, err, errlen)) < 0)
        return rc;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&ss, len) < 0 ||
        (backlog > 0 && listen(fd, backlog) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

int
listener_open(const char *addr, char *err, size_t errlen)
{
    return listener_bind(addr, 511, err, errlen);
}

int
listener_check(const char *addr, char *err, size_t errlen)
{
    int fd = listener_bind(addr, 0, err, errlen);

    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}

static void listener_cb(uv_poll_t *h, int status, int events);

static void
accept_retry_cb(uv_timer_t *t)
{
    struct listener *l = t->data;

    if (!l->stopping)
        uv_poll_start(&l->poll, UV_READABLE, listener_cb);
}

/* See on_exhausted in listener.h. */
static void
accept_failed(struct listener *l, int err)
{
    l->cbs.on_exhausted(l->arg, err);
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->retry, accept_retry_cb, ACCEPT_RETRY_MS, 0);
}

static void
listener_cb(uv_poll_t *h, int status, int events)
{
    struct listener *l = h->data;
    int fd;

    (void)events;
    if (status < 0) {
        accept_failed(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !l->stopping; i++) {
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            l->cbs.on_conn(l->arg, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        /* The connection died in the queue: the next one may be fine. */
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO ||
            errno == ENETDOWN || errno == EHOSTUNREACH || errno == ENETUNREACH)
            continue;
        accept_failed(l, errno);
        return;
    }
}

int
listener_start(struct listener *l, uv_loop_t *loop, int fd,
               const struct listener_cbs *cbs, void *arg)
{
    int rc;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->cbs = *cbs;
    l->arg = arg;
    if ((rc = uv_poll_init_socket(loop, &l->poll, fd)) < 0) {
        close(fd);
        return rc;
    }
    l->fd = fd;
    l->poll.data = l;
    uv_timer_init(loop, &l->retry);
    l->retry.data = l;
    l->started = 1;
    l->handles = 2;
    return uv_poll_start(&l->poll, UV_READABLE, listener_cb);
}

static void
listener_close_cb(uv_handle_t *h)
{
    struct listener *l = h->data;

    if (--l->handles > 0)
        return;
    /* Only now: the poll handle must be closed before its socket. */
    close(l->fd);
    l->fd = -1;
    l->closed = 1;
    if (l->closed_cb != NULL)
        l->closed_cb(l->arg);
}

void
listener_stop(struct listener *l, void (*cb)(void *arg))
{
    if (!l->started || l->stopping)
        return;
    l->stopping = 1;
    l->closed_cb = cb;
    uv_close((uv_handle_t *)&l->poll, listener_close_cb);
    uv_close((uv_handle_t *)&l->retry, listener_close_cb);
}
