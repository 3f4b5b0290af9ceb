/*
 * status: unix-socket status server and client; see status.h.
 *
 * Each client is served in one go: read the request line (at most 64
 * bytes, within a few seconds), render, write, close. The listener never
 * blocks the loop and a client that stalls costs one small struct until
 * its timer fires.
 */
#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A command line carries an action's %-encoded parameters. */
#define STATUS_REQ_MAX 8192
#define STATUS_CLIENT_MS 5000
/* A command's answer may wait for an action: its longest timeout,
 * SIGKILL grace, and some slack. */
#define STATUS_COMMAND_MS ((3600 + 60) * 1000)

struct status_client {
    struct status *s;           /* owner */
    struct status_client *next; /* in s->clients */
    uv_pipe_t pipe;             /* closed by client_close */
    uv_timer_t timer;           /* bounds the client's life */
    uv_write_t wreq;
    struct tc_buf out;        /* the rendered document */
    char req[STATUS_REQ_MAX]; /* request line so far */
    size_t reqlen;
    uint64_t id; /* for status_reply; unique per listener */
    int waiting; /* a command's answer is awaited */
    int closing;
    int handles; /* open handles, freed at 0 */
};

struct status {
    uv_loop_t *loop;
    uv_pipe_t listener;
    char *path; /* owned */
    status_render_fn render;
    void *arg;
    status_command_fn command; /* NULL: only json and text */
    void *command_arg;
    uint64_t next_id;
    struct status_client *clients;
    int handles; /* listener + clients' handles open */
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static void
status_maybe_done(struct status *s)
{
    if (s->handles == 0 && s->stop_cb != NULL) {
        void (*cb)(void *) = s->stop_cb;
        void *arg = s->stop_arg;

        free(s->path);
        free(s);
        cb(arg);
    }
}

static void
client_handle_closed(uv_handle_t *h)
{
    struct status_client *c = h->data;
    struct status *s = c->s;

    s->handles--;
    if (--c->handles == 0) {
        struct status_client **pp = &s->clients;

        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
        tc_buf_close(&c->out);
        free(c);
    }
    status_maybe_done(s);
}

static void
client_close(struct status_client *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->pipe, client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, client_handle_closed);
}

static void
client_written(uv_write_t *req, int status)
{
    client_close(req->data);
}

static void
client_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void
client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct status_client *c = h->data;

    buf->base = c->req + c->reqlen;
    buf->len = sizeof(c->req) - c->reqlen;
}

static void
client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct status_client *c = st->data;
    char *nl;
    uv_buf_t b;
    int json;

    if (n < 0) {
        client_close(c);
        return;
    }
    c->reqlen += (size_t)n;
    nl = memchr(c->req, '\n', c->reqlen);
    if (nl == NULL) {
        if (c->reqlen == sizeof(c->req))
            client_close(c); /* no request fits in that */
        return;
    }
    *nl = '\0';
    uv_read_stop(st);
    if (strcmp(c->req, "json") == 0) {
        json = 1;
    } else if (strcmp(c->req, "text") == 0) {
        json = 0;
    } else if (c->s->command != NULL) {
        /* The handler answers through status_reply, now or later. */
        c->waiting = 1;
        uv_timer_start(&c->timer, client_timeout, STATUS_COMMAND_MS, 0);
        c->s->command(c->s->command_arg, c->s, c->id, c->req);
        return;
    } else {
        static const char bad[] = "error: unknown request\n";
        tc_buf_append(&c->out, bad, sizeof(bad) - 1);
        json = -1;
    }
    if (json >= 0)
        c->s->render(c->s->arg, &c->out, json);
    b = uv_buf_init((char *)tc_buf_head(&c->out),
                    (unsigned)tc_buf_size(&c->out));
    c->wreq.data = c;
    if (uv_write(&c->wreq, st, &b, 1, client_written) < 0)
        client_close(c);
}

static void
status_accept(uv_stream_t *server, int status)
{
    struct status *s = server->data;
    struct status_client *c;

    if (status < 0) {
        log_warnx("status: accept: %s", uv_strerror(status));
        return;
    }
    c = tc_xcalloc(1, sizeof(*c));
    c->s = s;
    c->id = ++s->next_id;
    tc_buf_init(&c->out, STATUS_MAX);
    uv_pipe_init(s->loop, &c->pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->handles = 2;
    s->handles += 2;
    c->next = s->clients;
    s->clients = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, client_timeout, STATUS_CLIENT_MS, 0);
    uv_read_start((uv_stream_t *)&c->pipe, client_alloc, client_read);
}

/* A socket file nobody answers on is left over from a crash. */
static int
socket_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, used;

    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 0;
    used = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return used;
}

static void
listener_closed(uv_handle_t *h)
{
    struct status *s = h->data;

    s->handles--;
    status_maybe_done(s);
}

static void
listener_failed(uv_handle_t *h)
{
    struct status *s = h->data;

    free(s->path);
    free(s);
}

int
status_start(uv_loop_t *loop, const char *path, status_render_fn render,
             void *arg, struct status **out)
{
    struct status *s;
    mode_t old;
    int rc;

    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        log_warnx("status: socket path %s is too long", path);
        return -ENAMETOOLONG;
    }
    if (socket_in_use(path)) {
        log_warnx("status: %s: another agent is answering on it", path);
        return -EADDRINUSE;
    }
    unlink(path);
    s = tc_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->path = tc_xstrdup(path);
    s->render = render;
    s->arg = arg;
    uv_pipe_init(loop, &s->listener, 0);
    s->listener.data = s;
    s->handles = 1;
    /* The socket is created by bind: the umask makes it 0600. */
    old = umask(0177);
    rc = uv_pipe_bind(&s->listener, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 16, status_accept);
    if (rc < 0) {
        log_warnx("status: cannot listen on %s: %s", path, uv_strerror(rc));
        /* The handle's memory is released in its close callback. */
        uv_close((uv_handle_t *)&s->listener, listener_failed);
        *out = NULL;
        return rc;
    }
    *out = s;
    return 0;
}

void
status_set_command(struct status *s, status_command_fn fn, void *arg)
{
    if (s == NULL)
        return;
    s->command = fn;
    s->command_arg = arg;
}

void
status_reply(struct status *s, uint64_t id, const char *text, size_t n)
{
    struct status_client *c;
    uv_buf_t b;

    if (s == NULL)
        return;
    for (c = s->clients; c != NULL; c = c->next)
        if (c->id == id)
            break;
    /* Gone (timed out, or the agent is stopping): nobody to tell. */
    if (c == NULL || c->closing || !c->waiting)
        return;
    c->waiting = 0;
    tc_buf_append(&c->out, text, n);
    b = uv_buf_init((char *)tc_buf_head(&c->out),
                    (unsigned)tc_buf_size(&c->out));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, client_written) < 0)
        client_close(c);
}

int
status_command(const char *path, const char *line, FILE *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[65536];
    ssize_t n;
    int fd;

    if (strlen(line) + 1 > STATUS_REQ_MAX || strchr(line, '\n') != NULL) {
        fprintf(stderr, "tocsin-agent: request too long\n");
        return -E2BIG;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "tocsin-agent: status socket path too long: %s\n",
                path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fprintf(stderr,
                "tocsin-agent: cannot reach the agent at %s: %s "
                "(is it running? the socket is for its user and root)\n",
                path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
        int e = errno;
        fprintf(stderr, "tocsin-agent: %s: %s\n", path, strerror(e));
        close(fd);
        return -e;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, out);
    close(fd);
    return n < 0 ? -errno : 0;
}

void
status_stop(struct status *s, void (*cb)(void *arg), void *arg)
{
    if (s == NULL) {
        cb(arg);
        return;
    }
    s->stop_cb = cb;
    s->stop_arg = arg;
    unlink(s->path);
    for (struct status_client *c = s->clients; c != NULL; c = c->next)
        client_close(c);
    uv_close((uv_handle_t *)&s->listener, listener_closed);
}

int
status_query(const char *path, int json, FILE *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *req = json ? "json\n" : "text\n";
    char buf[65536];
    ssize_t n;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "tocsin-agent: status socket path too long: %s\n",
                path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fprintf(stderr,
                "tocsin-agent: cannot reach the agent at %s: %s "
                "(is it running?)\n",
                path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (write(fd, req, strlen(req)) < 0) {
        int e = errno;
        fprintf(stderr, "tocsin-agent: %s: %s\n", path, strerror(e));
        close(fd);
        return -e;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, out);
    close(fd);
    return n < 0 ? -errno : 0;
}
