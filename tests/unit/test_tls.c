/*
 * test_tls: the TLS module and its CA, end to end on 127.0.0.1.
 *
 * A group setup builds two PKIs with tc_pki_init/tc_pki_issue_agent in
 * a temporary directory: the real one (collector, a good agent, an
 * expired agent and a not-yet-valid one) and a stranger CA with its own
 * agent. Each test runs a real server and client in one uv loop and ends
 * by closing the loop, so a leaked handle or a missing close callback
 * fails the test (and ASan/LSan see leaked memory). Log lines go to a
 * file (stderr is redirected) so refusals can be checked for a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "log.h"
#include "pki.h"
#include "tls.h"

#define MIB (1024 * 1024)
/* A scenario that runs this long is stuck; the guard ends it. */
#define GUARD_MS 20000

static char basedir[64];      /* mkdtemp result, removed at teardown */
static char pki1[128];        /* the CA the server trusts */
static char pki2[128];        /* a stranger CA */
static char logpath[128];     /* stderr of the whole run */
static int saved_stderr = -1; /* the real stderr, restored at teardown */

enum scenario {
    SC_ROUNDTRIP,    /* data both ways, the client closes */
    SC_SERVER_CLOSE, /* the server says bye and closes */
    SC_REFUSE,       /* one side must refuse the handshake */
    SC_BACKPRESSURE, /* the server throttles with read_stop/start */
    SC_EARLY_CLOSE,  /* the client closes before it is even connected */
};

struct harness;

struct side {
    struct harness *h;     /* back pointer */
    struct tc_tls_conn *c; /* NULL once on_close ran */
    int ready;             /* on_ready calls */
    int closes;            /* on_close calls */
    int drains;            /* on_drain calls */
    int status;            /* on_close status */
    char reason[192];      /* on_close reason, copied */
    char peer[256];        /* tc_tls_peer_name at on_ready */
    char addr[64];         /* tc_tls_peer_addr at on_ready */
    uint8_t *rx;           /* received bytes, owned */
    size_t nrx;            /* bytes in rx */
    size_t rxcap;          /* bytes allocated for rx */
};

struct harness {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t guard; /* GUARD_MS safety net */
    uv_timer_t pause; /* backpressure observation window */
    struct tc_tls_ctx *sctx, *cctx;
    const char *server_name;
    enum scenario sc;
    struct side srv, cli;
    uint8_t *up;        /* client -> server payload, owned */
    size_t nup;         /* bytes */
    uint8_t *down;      /* server -> client payload, owned */
    size_t ndown;       /* bytes */
    int finished;       /* listener and timers closed */
    int timed_out;      /* the guard fired */
    size_t cli_pending; /* client's pending bytes after its writes */
    /* Backpressure bookkeeping. */
    size_t rx_at_stop;     /* srv.nrx when reading was stopped */
    int paused;            /* 1 while the server has reading stopped */
    int pauses;            /* completed stop/start cycles */
    int leaks;             /* on_data calls while reading was stopped */
    size_t next_pause;     /* srv.nrx at which to stop next */
    int write_after_close; /* tc_tls_write result after tc_tls_close */
};

static uint8_t *
pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 31u + seed) ^ (i >> 9));
    return p;
}

static void
side_append(struct side *s, const uint8_t *p, size_t n)
{
    if (s->nrx + n > s->rxcap) {
        s->rxcap = (s->nrx + n) * 2;
        s->rx = realloc(s->rx, s->rxcap);
        assert_non_null(s->rx);
    }
    memcpy(s->rx + s->nrx, p, n);
    s->nrx += n;
}

static void
finish(struct harness *h)
{
    if (h->finished)
        return;
    h->finished = 1;
    uv_close((uv_handle_t *)&h->listener, NULL);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_close((uv_handle_t *)&h->pause, NULL);
}

/* Write n bytes in uneven pieces so record boundaries vary. */
static void
write_pieces(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    static const size_t sizes[] = {1, 100, 16384, 65543, 3, 250000};
    size_t off = 0, i = 0;

    while (off < n) {
        size_t k = sizes[i++ % (sizeof(sizes) / sizeof(sizes[0]))];
        if (k > n - off)
            k = n - off;
        assert_int_equal(tc_tls_write(c, p + off, k), 0);
        off += k;
    }
}

static void
pause_cb(uv_timer_t *t)
{
    struct harness *h = t->data;

    if (h->srv.c == NULL)
        return;
    /* Nothing may have arrived while reading was stopped. */
    if (h->srv.nrx != h->rx_at_stop)
        h->leaks++;
    h->paused = 0;
    h->pauses++;
    tc_tls_read_start(h->srv.c);
}

/* Server ready timer for the backpressure scenario. */
static void
srv_ready_pause(struct harness *h)
{
    uv_timer_start(&h->pause, pause_cb, 100, 0);
}

static void
on_ready(struct tc_tls_conn *c)
{
    struct side *s = tc_tls_get_data(c);
    struct harness *h = s->h;

    s->ready++;
    snprintf(s->peer, sizeof(s->peer), "%s", tc_tls_peer_name(c));
    snprintf(s->addr, sizeof(s->addr), "%s", tc_tls_peer_addr(c));
    if (s == &h->cli && h->sc == SC_ROUNDTRIP) {
        /* The first 100 bytes went out before the handshake. What the
         * socket takes at once is not pending (see test_backpressure
         * for what it does not take). */
        write_pieces(c, h->up + 100, h->nup - 100);
    } else if (h->sc == SC_BACKPRESSURE) {
        if (s == &h->srv)
            srv_ready_pause(h);
        /*
         * Once both are ready the server reads nothing more, so what the
         * kernel cannot buffer must wait in the client: the writes are
         * offered to the socket at once, and only the rest is pending.
         */
        if (h->cli.ready && h->srv.ready) {
            write_pieces(h->cli.c, h->up, h->nup);
            h->cli_pending = tc_tls_write_pending(h->cli.c);
        }
    } else if (s == &h->srv && h->sc == SC_SERVER_CLOSE) {
        assert_int_equal(tc_tls_write(c, h->down, h->ndown), 0);
        tc_tls_close(c, "server says bye");
        tc_tls_close(c, "twice"); /* idempotent: first reason wins */
        h->write_after_close = tc_tls_write(c, "x", 1);
    }
}

static void
on_data(struct tc_tls_conn *c, const uint8_t *p, size_t n)
{
    struct side *s = tc_tls_get_data(c);
    struct harness *h = s->h;

    if (s == &h->srv && h->paused)
        h->leaks++;
    side_append(s, p, n);
    switch (h->sc) {
    case SC_ROUNDTRIP:
        if (s == &h->srv && s->nrx == h->nup)
            write_pieces(c, h->down, h->ndown);
        if (s == &h->cli && s->nrx == h->ndown) {
            tc_tls_close(c, "client done");
            h->write_after_close = tc_tls_write(c, "x", 1);
        }
        break;
    case SC_BACKPRESSURE:
        if (s != &h->srv)
            break;
        if (s->nrx == h->nup) {
            tc_tls_close(c, "got everything");
        } else if (s->nrx >= h->next_pause) {
            /* Stop mid-stream; more records are likely buffered. */
            tc_tls_read_stop(c);
            h->paused = 1;
            h->rx_at_stop = s->nrx;
            h->next_pause = s->nrx + 512 * 1024;
            uv_timer_start(&h->pause, pause_cb, 20, 0);
        }
        break;
    default:
        break;
    }
}

static void
on_drain(struct tc_tls_conn *c)
{
    struct side *s = tc_tls_get_data(c);

    assert_int_equal(tc_tls_write_pending(c), 0);
    s->drains++;
}

static void
on_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct side *s = tc_tls_get_data(c);
    struct harness *h = s->h;

    assert_ptr_equal(c, s->c);
    s->closes++;
    s->status = status;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    s->c = NULL;
    if (h->cli.closes > 0 && h->srv.closes > 0)
        finish(h);
    /* Whether the server saw that connection at all is up to the kernel. */
    if (h->sc == SC_EARLY_CLOSE && s == &h->cli && h->srv.c == NULL)
        finish(h);
}

static const struct tc_tls_cbs cbs = {
    .on_ready = on_ready,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_close = on_close,
};

static void
on_connection(uv_stream_t *server, int status)
{
    struct harness *h = server->data;

    assert_int_equal(status, 0);
    assert_null(h->srv.c);
    assert_int_equal(tc_tls_accept(server, h->sctx, &cbs, &h->srv, &h->srv.c),
                     0);
    if (h->sc == SC_BACKPRESSURE) {
        /* Stopped during the handshake: on_ready still comes, data not. */
        tc_tls_read_stop(h->srv.c);
        h->paused = 1;
        h->rx_at_stop = 0;
        h->next_pause = 256 * 1024;
    }
}

static void
guard_cb(uv_timer_t *t)
{
    struct harness *h = t->data;

    h->timed_out = 1;
    if (h->cli.c != NULL)
        tc_tls_close(h->cli.c, "guard");
    if (h->srv.c != NULL)
        tc_tls_close(h->srv.c, "guard");
    if (h->srv.c == NULL && h->cli.c == NULL)
        finish(h);
}

static void
ctx_or_die(struct tc_tls_ctx **out, const char *ca, const char *cert,
           const char *key, int server)
{
    struct tc_tls_ctx_opts o = {
        .ca = ca, .cert = cert, .key = key, .server = server};
    char err[512];
    int rc = tc_tls_ctx_new(&o, out, err, sizeof(err));

    if (rc != 0)
        fail_msg("tc_tls_ctx_new: %d %s", rc, err);
}

static char *
path(const char *dir, const char *file)
{
    static char buf[8][PATH_MAX];
    static int i;
    char *p = buf[i++ % 8];

    snprintf(p, PATH_MAX, "%s/%s", dir, file);
    return p;
}

/*
 * Run one scenario: the server uses pki1's collector identity; the
 * client trusts ca_for_client and presents agent (NULL: no certificate)
 * from agent_dir.
 */
static void
run(struct harness *h, enum scenario sc, const char *agent_dir,
    const char *agent, const char *server_name, size_t nup, size_t ndown)
{
    struct sockaddr_in sin;
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);
    char crt[80], key[80];

    memset(h, 0, sizeof(*h));
    h->sc = sc;
    h->srv.h = h;
    h->cli.h = h;
    h->server_name = server_name;
    h->nup = nup;
    h->ndown = ndown;
    h->up = pattern(nup, 7);
    h->down = pattern(ndown, 99);
    assert_int_equal(uv_loop_init(&h->loop), 0);

    ctx_or_die(&h->sctx, path(pki1, "ca.crt"), path(pki1, "collector.crt"),
               path(pki1, "collector.key"), 1);
    if (agent != NULL) {
        snprintf(crt, sizeof(crt), "%s.crt", agent);
        snprintf(key, sizeof(key), "%s.key", agent);
        ctx_or_die(&h->cctx, path(pki1, "ca.crt"), path(agent_dir, crt),
                   path(agent_dir, key), 0);
    } else {
        ctx_or_die(&h->cctx, path(pki1, "ca.crt"), NULL, NULL, 0);
    }

    assert_int_equal(uv_tcp_init(&h->loop, &h->listener), 0);
    h->listener.data = h;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(
        uv_tcp_bind(&h->listener, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&h->listener, 16, on_connection),
                     0);
    assert_int_equal(
        uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->guard), 0);
    assert_int_equal(uv_timer_init(&h->loop, &h->pause), 0);
    h->guard.data = h;
    h->pause.data = h;
    uv_timer_start(&h->guard, guard_cb, GUARD_MS, 0);

    assert_int_equal(tc_tls_connect(&h->loop, h->cctx,
                                    (const struct sockaddr *)&bound,
                                    server_name, &cbs, &h->cli, &h->cli.c),
                     0);
    if (sc == SC_ROUNDTRIP) {
        /* Queued before the handshake, sent after it. */
        assert_int_equal(tc_tls_write(h->cli.c, h->up, 100), 0);
        assert_int_equal(tc_tls_write_pending(h->cli.c), 100);
    }

    if (sc == SC_EARLY_CLOSE) {
        assert_int_equal(tc_tls_write(h->cli.c, "early", 5), 0);
        tc_tls_close(h->cli.c, "never mind");
        assert_true(tc_tls_write(h->cli.c, "late", 4) < 0);
    }

    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    tc_tls_ctx_free(h->sctx);
    tc_tls_ctx_free(h->cctx);
    assert_false(h->timed_out);
    /* Exactly one on_close per conn, and the conns are gone. */
    if (sc != SC_EARLY_CLOSE)
        assert_int_equal(h->srv.closes, 1);
    assert_int_equal(h->cli.closes, 1);
    assert_null(h->srv.c);
    assert_null(h->cli.c);
}

static void
harness_free(struct harness *h)
{
    free(h->up);
    free(h->down);
    free(h->srv.rx);
    free(h->cli.rx);
}

static off_t
log_mark(void)
{
    struct stat st;

    assert_int_equal(stat(logpath, &st), 0);
    return st.st_size;
}

/* Fail unless the log written since mark contains want. */
static void
log_expect(off_t mark, const char *want)
{
    FILE *f = fopen(logpath, "r");
    char *buf;
    size_t n;

    assert_non_null(f);
    buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    fseeko(f, mark, SEEK_SET);
    n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (strstr(buf, want) == NULL) {
        print_message("log since mark:\n%s", buf);
        free(buf);
        fail_msg("log lacks \"%s\"", want);
    }
    free(buf);
}

static void
test_roundtrip(void **state)
{
    struct harness h;

    (void)state;
    run(&h, SC_ROUNDTRIP, pki1, "agent-1", "localhost", MIB + 1234, MIB);
    assert_int_equal(h.srv.ready, 1);
    assert_int_equal(h.cli.ready, 1);
    /* Each side sees the other's certificate CN. */
    assert_string_equal(h.srv.peer, "agent-1");
    assert_string_equal(h.cli.peer, "collector");
    assert_true(strncmp(h.srv.addr, "127.0.0.1:", 10) == 0);
    assert_true(strncmp(h.cli.addr, "127.0.0.1:", 10) == 0);
    assert_int_equal(h.srv.nrx, h.nup);
    assert_memory_equal(h.srv.rx, h.up, h.nup);
    assert_int_equal(h.cli.nrx, h.ndown);
    assert_memory_equal(h.cli.rx, h.down, h.ndown);
    assert_true(h.write_after_close < 0);
    /* The closer gets its own reason; the peer saw close_notify. */
    assert_int_equal(h.cli.status, 0);
    assert_string_equal(h.cli.reason, "client done");
    assert_int_equal(h.srv.status, 0);
    assert_string_equal(h.srv.reason, "peer closed");
    harness_free(&h);
}

static void
test_ip_server_name(void **state)
{
    struct harness h;

    (void)state;
    /* An IP literal is checked against the IP SANs, not DNS. */
    run(&h, SC_ROUNDTRIP, pki1, "agent-1", "127.0.0.1", 200, 300);
    assert_int_equal(h.cli.ready, 1);
    assert_int_equal(h.srv.nrx, 200);
    assert_int_equal(h.cli.nrx, 300);
    harness_free(&h);
}

static void
test_server_close(void **state)
{
    struct harness h;

    (void)state;
    run(&h, SC_SERVER_CLOSE, pki1, "agent-1", "localhost", 0, 5000);
    assert_int_equal(h.srv.ready, 1);
    assert_int_equal(h.cli.ready, 1);
    /* Queued data is flushed before close_notify. */
    assert_int_equal(h.cli.nrx, 5000);
    assert_memory_equal(h.cli.rx, h.down, 5000);
    assert_int_equal(h.srv.status, 0);
    assert_string_equal(h.srv.reason, "server says bye");
    assert_int_equal(h.cli.status, 0);
    assert_string_equal(h.cli.reason, "peer closed");
    assert_true(h.write_after_close < 0);
    harness_free(&h);
}

/* The server must refuse agent; its log must say why. */
static void
refused_by_server(const char *agent_dir, const char *agent, const char *why)
{
    struct harness h;
    off_t mark = log_mark();
    char want[256];

    run(&h, SC_REFUSE, agent_dir, agent, "localhost", 0, 0);
    assert_int_equal(h.srv.ready, 0);
    assert_true(h.srv.status < 0);
    assert_non_null(strstr(h.srv.reason, why));
    /* TLS 1.3: the client may finish first, but it is refused. */
    assert_true(h.cli.status < 0);
    assert_int_equal(h.srv.nrx + h.cli.nrx, 0);
    snprintf(want, sizeof(want), ": handshake failed: %s", why);
    log_expect(mark, want);
    harness_free(&h);
}

static void
test_refuse_no_cert(void **state)
{
    (void)state;
    refused_by_server(NULL, NULL, "peer did not return a certificate");
}

static void
test_refuse_other_ca(void **state)
{
    (void)state;
    refused_by_server(pki2, "agent-1", "unable to get local issuer");
}

static void
test_refuse_expired(void **state)
{
    (void)state;
    refused_by_server(pki1, "expired", "certificate has expired");
}

static void
test_refuse_not_yet_valid(void **state)
{
    (void)state;
    refused_by_server(pki1, "future", "certificate is not yet valid");
}

/* The client must refuse the server for server_name. */
static void
refused_by_client(const char *server_name, const char *why)
{
    struct harness h;
    off_t mark = log_mark();
    char want[256];

    run(&h, SC_REFUSE, pki1, "agent-1", server_name, 0, 0);
    assert_int_equal(h.cli.ready, 0);
    assert_int_equal(h.srv.ready, 0);
    assert_true(h.cli.status < 0);
    assert_non_null(strstr(h.cli.reason, why));
    assert_true(h.srv.status < 0);
    snprintf(want, sizeof(want), ": handshake failed: %s", why);
    log_expect(mark, want);
    /* The server learns it from the client's alert. */
    log_expect(mark, ": handshake failed: refused by peer (");
    harness_free(&h);
}

static void
test_refuse_wrong_name(void **state)
{
    (void)state;
    refused_by_client("wrong.example", "hostname mismatch");
}

static void
test_refuse_wrong_ip(void **state)
{
    (void)state;
    refused_by_client("127.0.0.2", "IP address mismatch");
}

static void
test_close_while_connecting(void **state)
{
    struct harness h;

    (void)state;
    run(&h, SC_EARLY_CLOSE, pki1, "agent-1", "localhost", 0, 0);
    assert_int_equal(h.cli.ready, 0);
    assert_int_equal(h.cli.status, 0);
    assert_string_equal(h.cli.reason, "never mind");
    /* If the server accepted it, it got no handshake and no data. */
    assert_true(h.srv.closes <= 1);
    assert_int_equal(h.srv.ready, 0);
    assert_int_equal(h.srv.nrx, 0);
    harness_free(&h);
}

static void
test_backpressure(void **state)
{
    struct harness h;

    (void)state;
    /* More than loopback's socket buffers hold (up to 4 MiB to send,
     * and what the receiver had grown to before it stopped reading). */
    run(&h, SC_BACKPRESSURE, pki1, "agent-1", "localhost", 16 * MIB, 0);
    assert_int_equal(h.srv.ready, 1);
    assert_int_equal(h.leaks, 0);
    /* The initial stop plus several mid-stream ones. */
    assert_true(h.pauses >= 4);
    assert_int_equal(h.srv.nrx, h.nup);
    assert_memory_equal(h.srv.rx, h.up, h.nup);
    assert_true(h.cli_pending > 0);
    assert_true(h.cli.drains >= 1);
    assert_int_equal(h.srv.status, 0);
    assert_string_equal(h.srv.reason, "got everything");
    harness_free(&h);
}

/*
 * Probe contexts (https health checks): the system trust store when no
 * CA is given, TLS 1.2 allowed; neither is open to tocsin's own links.
 */
/* Copy src to dst (replacing it) with mode. */
static void
copy_mode(const char *src, const char *dst, mode_t mode)
{
    char buf[8192];
    ssize_t n;
    int in, out;

    assert_true((in = open(src, O_RDONLY)) >= 0);
    (void)unlink(dst);
    assert_true((out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(fchmod(out, mode), 0);
    close(in);
    close(out);
}

/*
 * A private key that group or others may access is refused, with its
 * mode in the message, by the TLS context (daemons, -n) and by the CA
 * (tocsinctl pki issue-agent); 0600 and 0400 are fine.
 */
static void
test_key_mode(void **state)
{
    static const mode_t bad[] = {0640, 0644, 0604, 0620, 0602, 0666};
    struct tc_tls_ctx_opts o = {0};
    struct tc_tls_ctx *ctx = NULL;
    char err[512], ca[PATH_MAX], want[64];
    char cacrt[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
    int rc;

    (void)state;
    /* Own copies: path() recycles its buffers. */
    snprintf(cacrt, sizeof(cacrt), "%s/ca.crt", pki1);
    snprintf(crt, sizeof(crt), "%s/agent-1.crt", pki1);
    snprintf(key, sizeof(key), "%s/agent-1.copy.key", pki1);
    o.ca = cacrt;
    o.cert = crt;
    o.key = key;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        copy_mode(path(pki1, "agent-1.key"), o.key, bad[i]);
        rc = tc_tls_ctx_new(&o, &ctx, err, sizeof(err));
        assert_int_equal(rc, -EPERM);
        assert_null(ctx);
        snprintf(want, sizeof(want), "mode %04o allows group/other access",
                 (unsigned)bad[i]);
        assert_non_null(strstr(err, want));
        assert_non_null(strstr(err, "chmod 600"));
        assert_non_null(strstr(err, o.key));
    }
    copy_mode(path(pki1, "agent-1.key"), o.key, 0400);
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), 0);
    tc_tls_ctx_free(ctx);
    ctx = NULL;
    copy_mode(path(pki1, "agent-1.key"), o.key, 0600);
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), 0);
    tc_tls_ctx_free(ctx);

    /* The CA key, where tocsinctl pki issue-agent loads it. */
    snprintf(ca, sizeof(ca), "%s/ca.key", pki1);
    assert_int_equal(chmod(ca, 0640), 0);
    rc = tc_pki_issue_agent(pki1, "agent-mode", 0, 3600, err, sizeof(err));
    assert_int_equal(chmod(ca, 0600), 0);
    assert_int_equal(rc, -EPERM);
    assert_non_null(strstr(err, "mode 0640 allows group/other access"));
    assert_int_equal(access(path(pki1, "agent-mode.key"), F_OK), -1);
    assert_int_equal(
        tc_pki_issue_agent(pki1, "agent-mode", 0, 3600, err, sizeof(err)), 0);
}

static void
test_ctx_probe(void **state)
{
    struct tc_tls_ctx_opts o = {0};
    struct tc_tls_ctx *ctx = NULL;
    char err[512];

    (void)state;
    o.probe = 1;
    o.min_version = TC_TLS_1_2;
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), 0);
    assert_non_null(ctx);
    tc_tls_ctx_free(ctx);
    o.ca = path(pki1, "ca.crt");
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), 0);
    tc_tls_ctx_free(ctx);

    /* Not for the agent-collector link, nor for a server. */
    o.probe = 0;
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(ctx);
    o.min_version = TC_TLS_1_3;
    o.ca = NULL;
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), -EINVAL);
    o.probe = 1;
    o.server = 1;
    o.ca = path(pki1, "ca.crt");
    o.cert = path(pki1, "collector.crt");
    o.key = path(pki1, "collector.key");
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(ctx);
}

static void
test_ctx_errors(void **state)
{
    struct tc_tls_ctx_opts o = {0};
    struct tc_tls_ctx *ctx = (struct tc_tls_ctx *)&o;
    char err[512], missing[PATH_MAX];
    int rc;

    (void)state;
    snprintf(missing, sizeof(missing), "%s/nope.crt", pki1);
    o.ca = path(pki1, "ca.crt");
    o.cert = missing;
    o.key = path(pki1, "collector.key");
    o.server = 1;
    rc = tc_tls_ctx_new(&o, &ctx, err, sizeof(err));
    assert_int_equal(rc, -ENOENT);
    assert_null(ctx);
    assert_non_null(strstr(err, "tls: cannot load certificate "));
    assert_non_null(strstr(err, missing));

    /* A key that belongs to another certificate. */
    o.cert = path(pki1, "collector.crt");
    o.key = path(pki1, "agent-1.key");
    rc = tc_tls_ctx_new(&o, &ctx, err, sizeof(err));
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, "does not match"));

    /* Not a key at all (private, or its mode would be the error). */
    copy_mode(path(pki1, "ca.crt"), path(pki1, "notakey.pem"), 0600);
    o.key = path(pki1, "notakey.pem");
    rc = tc_tls_ctx_new(&o, &ctx, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "tls: cannot load private key "));

    /* A server cannot go without a certificate. */
    o.cert = NULL;
    o.key = NULL;
    assert_int_equal(tc_tls_ctx_new(&o, &ctx, err, sizeof(err)), -EINVAL);

    o.server = 0;
    o.ca = missing;
    rc = tc_tls_ctx_new(&o, &ctx, err, sizeof(err));
    assert_true(rc < 0);
    assert_non_null(strstr(err, "tls: cannot load CA bundle "));
    tc_tls_ctx_free(NULL);
}

static void
test_cert_cn(void **state)
{
    char cn[65], err[512];

    (void)state;
    assert_int_equal(tc_tls_cert_cn(path(pki1, "agent-1.crt"), cn, sizeof(cn),
                                    err, sizeof(err)),
                     0);
    assert_string_equal(cn, "agent-1");
    assert_int_equal(tc_tls_cert_cn(path(pki1, "collector.crt"), cn, sizeof(cn),
                                    err, sizeof(err)),
                     0);
    assert_string_equal(cn, "collector");
    assert_int_equal(
        tc_tls_cert_cn(path(pki1, "agent-1.crt"), cn, 4, err, sizeof(err)),
        -ENAMETOOLONG);
    assert_true(tc_tls_cert_cn(path(pki1, "missing.crt"), cn, sizeof(cn), err,
                               sizeof(err)) < 0);
    assert_non_null(strstr(err, "missing.crt"));
    assert_true(tc_tls_cert_cn(path(pki1, "agent-1.key"), cn, sizeof(cn), err,
                               sizeof(err)) < 0);
}

static mode_t
mode_of(const char *p)
{
    struct stat st;

    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void
test_pki_files(void **state)
{
    char err[512], dir[PATH_MAX];
    const char *sans[] = {"collector.example.net", "10.1.2.3"};
    struct dirent *de;
    DIR *d;

    (void)state;
    assert_int_equal(mode_of(pki1), 0700);
    assert_int_equal(mode_of(path(pki1, "ca.key")), 0600);
    assert_int_equal(mode_of(path(pki1, "collector.key")), 0600);
    assert_int_equal(mode_of(path(pki1, "agent-1.key")), 0600);
    assert_int_equal(mode_of(path(pki1, "ca.crt")), 0644);
    assert_int_equal(mode_of(path(pki1, "collector.crt")), 0644);
    assert_int_equal(mode_of(path(pki1, "agent-1.crt")), 0644);

    /* Never replace a CA or an agent key. */
    assert_int_equal(tc_pki_init(pki1, NULL, 0, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "ca.key"));
    assert_int_equal(
        tc_pki_issue_agent(pki1, "agent-1", 0, 86400, err, sizeof(err)),
        -EEXIST);
    assert_int_equal(
        tc_pki_issue_agent(pki1, "a/b", 0, 86400, err, sizeof(err)), -EINVAL);
    assert_int_equal(tc_pki_issue_agent(pki1, "", 0, 86400, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(
        tc_pki_issue_agent(pki1, "collector", 0, 86400, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(
        tc_pki_issue_agent(pki1,
                           "a123456789012345678901234567890123"
                           "4567890123456789012345678901234", /* 65 */
                           0, 86400, err, sizeof(err)),
        -EINVAL);
    /* No CA there: a clear error, no files. */
    assert_true(tc_pki_issue_agent(basedir, "x", 0, 86400, err, sizeof(err)) <
                0);
    assert_non_null(strstr(err, "ca.crt"));

    /* A bad SAN fails before anything is created. */
    snprintf(dir, sizeof(dir), "%s/pki3", basedir);
    sans[1] = "bad,name";
    assert_int_equal(tc_pki_init(dir, sans, 2, err, sizeof(err)), -EINVAL);
    assert_int_equal(access(dir, F_OK), -1);

    /* No temporary files are left behind. */
    assert_non_null(d = opendir(pki1));
    while ((de = readdir(d)) != NULL)
        assert_null(strstr(de->d_name, ".tmp"));
    closedir(d);
}

static int
rm_rf(const char *dir)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    char p[PATH_MAX];

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* Pacing: many conns at once, a budget of one pump per iteration      */

#define PACE_CONNS 32
#define PACE_BYTES (96 * 1024)

struct pace;

struct pace_side {
    struct pace *p;        /* back pointer */
    struct tc_tls_conn *c; /* NULL once on_close ran */
    int idx;               /* client index (clients), -1 until known */
    int ready, closes;
    int status;
    uint8_t *rx; /* received, owned (server sides) */
    size_t nrx;
    uint64_t seen_iter; /* last loop iteration it got a callback in */
};

struct pace {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t guard;
    uv_check_t check; /* counts loop iterations */
    struct tc_tls_ctx *sctx, *cctx;
    struct tc_tls_pacer *pacer;
    struct pace_side cli[PACE_CONNS];
    struct pace_side srv[PACE_CONNS];
    int nsrv;                /* accepted */
    int closed;              /* on_close calls, both sides */
    uint64_t iter;           /* loop iterations */
    uint64_t iter_seen;      /* the iteration iter_conns counts */
    int iter_conns;          /* server conns called back in it */
    int max_iter_conns;      /* the most in one iteration */
    int close_odd;           /* the server closes odd clients' conns early */
    uint64_t deferred;       /* tc_tls_pacer_deferred before it closed */
    uint64_t reads;          /* tc_tls_pacer_reads at the last check */
    uint64_t max_iter_reads; /* the most socket reads in one iteration */
    int timed_out;
};

/* A server conn got a callback: count it once per loop iteration. */
static void
pace_seen(struct pace_side *s)
{
    struct pace *p = s->p;

    if (p->iter_seen != p->iter) {
        p->iter_seen = p->iter;
        p->iter_conns = 0;
    }
    if (s->seen_iter != p->iter + 1) {
        s->seen_iter = p->iter + 1;
        p->iter_conns++;
        if (p->iter_conns > p->max_iter_conns)
            p->max_iter_conns = p->iter_conns;
    }
}

static void
pace_check_cb(uv_check_t *h)
{
    struct pace *p = h->data;
    uint64_t r = tc_tls_pacer_reads(p->pacer);

    p->iter++;
    if (r - p->reads > p->max_iter_reads)
        p->max_iter_reads = r - p->reads;
    p->reads = r;
}

static void
pace_finish(struct pace *p)
{
    if (p->closed < 2 * PACE_CONNS)
        return;
    uv_close((uv_handle_t *)&p->listener, NULL);
    uv_close((uv_handle_t *)&p->guard, NULL);
    uv_close((uv_handle_t *)&p->check, NULL);
    p->deferred = tc_tls_pacer_deferred(p->pacer);
    tc_tls_pacer_close(p->pacer);
    p->pacer = NULL;
}

static void
pace_ready(struct tc_tls_conn *c)
{
    struct pace_side *s = tc_tls_get_data(c);

    s->ready++;
    if (s->idx >= 0) {
        uint8_t *buf = pattern(PACE_BYTES, (unsigned)s->idx);

        /* A client: its index first, then its pattern; then bye. */
        assert_int_equal(tc_tls_write(c, buf, PACE_BYTES), 0);
        free(buf);
        tc_tls_close(c, "client done");
        return;
    }
    pace_seen(s);
}

static void
pace_data(struct tc_tls_conn *c, const uint8_t *d, size_t n)
{
    struct pace_side *s = tc_tls_get_data(c);
    struct pace *p = s->p;

    assert_true(s->idx < 0); /* only servers receive */
    pace_seen(s);
    s->rx = realloc(s->rx, s->nrx + n);
    assert_non_null(s->rx);
    memcpy(s->rx + s->nrx, d, n);
    s->nrx += n;
    if (!p->close_odd || s->nrx != n)
        return;
    /* Close every other server conn that has not finished: some of
     * them wait in the pacer's queue right now. */
    for (int i = 0; i < p->nsrv; i++)
        if (p->srv[i].c != NULL && &p->srv[i] != s && i % 2 == 1 &&
            p->srv[i].nrx < PACE_BYTES)
            tc_tls_close(p->srv[i].c, "closed early");
}

static void
pace_close(struct tc_tls_conn *c, int status, const char *reason)
{
    struct pace_side *s = tc_tls_get_data(c);

    s->closes++;
    s->status = status;
    if (status != 0 && !s->p->close_odd)
        print_message("pace: %s conn %d closed: %d %s\n",
                      s->idx < 0 ? "server" : "client", s->idx, status, reason);
    s->c = NULL;
    s->p->closed++;
    pace_finish(s->p);
}

static const struct tc_tls_cbs pace_cbs = {
    .on_ready = pace_ready,
    .on_data = pace_data,
    .on_close = pace_close,
};

static void
pace_connection(uv_stream_t *server, int status)
{
    struct pace *p = server->data;
    struct pace_side *s;

    assert_int_equal(status, 0);
    assert_true(p->nsrv < PACE_CONNS);
    s = &p->srv[p->nsrv++];
    s->p = p;
    s->idx = -1;
    assert_int_equal(tc_tls_accept(server, p->sctx, &pace_cbs, s, &s->c), 0);
}

static void
pace_guard_cb(uv_timer_t *t)
{
    struct pace *p = t->data;

    p->timed_out = 1;
    for (int i = 0; i < PACE_CONNS; i++) {
        if (p->cli[i].c != NULL)
            tc_tls_close(p->cli[i].c, "guard");
        if (p->srv[i].c != NULL)
            tc_tls_close(p->srv[i].c, "guard");
    }
}

static void
pace_run(struct pace *p, int close_odd)
{
    struct sockaddr_in sin;
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);

    memset(p, 0, sizeof(*p));
    p->close_odd = close_odd;
    assert_int_equal(uv_loop_init(&p->loop), 0);
    ctx_or_die(&p->sctx, path(pki1, "ca.crt"), path(pki1, "collector.crt"),
               path(pki1, "collector.key"), 1);
    ctx_or_die(&p->cctx, path(pki1, "ca.crt"), path(pki1, "agent-1.crt"),
               path(pki1, "agent-1.key"), 0);
    /* A budget of 0: one server conn pumped per loop iteration. */
    assert_int_equal(tc_tls_pacer_new(&p->loop, 0, &p->pacer), 0);
    tc_tls_ctx_set_pacer(p->sctx, p->pacer);
    assert_int_equal(uv_tcp_init(&p->loop, &p->listener), 0);
    p->listener.data = p;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
    assert_int_equal(
        uv_tcp_bind(&p->listener, (const struct sockaddr *)&sin, 0), 0);
    assert_int_equal(
        uv_listen((uv_stream_t *)&p->listener, PACE_CONNS, pace_connection), 0);
    assert_int_equal(
        uv_tcp_getsockname(&p->listener, (struct sockaddr *)&bound, &len), 0);
    assert_int_equal(uv_timer_init(&p->loop, &p->guard), 0);
    p->guard.data = p;
    uv_timer_start(&p->guard, pace_guard_cb, GUARD_MS, 0);
    assert_int_equal(uv_check_init(&p->loop, &p->check), 0);
    p->check.data = p;
    uv_check_start(&p->check, pace_check_cb);
    uv_unref((uv_handle_t *)&p->check);
    /* Every client connects at once: the handshakes arrive together. */
    for (int i = 0; i < PACE_CONNS; i++) {
        p->cli[i].p = p;
        p->cli[i].idx = i;
        assert_int_equal(
            tc_tls_connect(&p->loop, p->cctx, (const struct sockaddr *)&bound,
                           "localhost", &pace_cbs, &p->cli[i], &p->cli[i].c),
            0);
    }
    assert_int_equal(uv_run(&p->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&p->loop), 0);
    tc_tls_ctx_free(p->sctx);
    tc_tls_ctx_free(p->cctx);
    assert_false(p->timed_out);
    assert_int_equal(p->nsrv, PACE_CONNS);
}

/* The server side that received client i's pattern, or NULL. */
static struct pace_side *
pace_find(struct pace *p, int i)
{
    uint8_t *want = pattern(PACE_BYTES, (unsigned)i);
    struct pace_side *found = NULL;

    for (int k = 0; k < PACE_CONNS && found == NULL; k++)
        if (p->srv[k].nrx == PACE_BYTES &&
            memcmp(p->srv[k].rx, want, PACE_BYTES) == 0)
            found = &p->srv[k];
    free(want);
    return found;
}

static void
test_pacer_many(void **state)
{
    struct pace *p = calloc(1, sizeof(*p));

    (void)state;
    assert_non_null(p);
    pace_run(p, 0);
    /* Nothing lost: every conn up, every byte in order, closed once. */
    for (int i = 0; i < PACE_CONNS; i++) {
        assert_int_equal(p->cli[i].ready, 1);
        assert_int_equal(p->cli[i].closes, 1);
        assert_int_equal(p->cli[i].status, 0);
        assert_int_equal(p->srv[i].ready, 1);
        assert_int_equal(p->srv[i].closes, 1);
        assert_non_null(pace_find(p, i));
    }
    /* Paced: put off many times, and never two conns in one iteration. */
    assert_true(p->deferred >= PACE_CONNS);
    assert_int_equal(p->max_iter_conns, 1);
    /*
     * Nor two socket reads: once the budget is spent a readable conn
     * waits unread (its turn reads), instead of every readable socket
     * being read and copied in one poll phase.
     */
    assert_true(p->reads > 0);
    assert_int_equal(p->max_iter_reads, 1);
    for (int i = 0; i < PACE_CONNS; i++)
        free(p->srv[i].rx);
    free(p);
}

/* Conns closed while they wait in the queue leave it cleanly. */
static void
test_pacer_close_waiting(void **state)
{
    struct pace *p = calloc(1, sizeof(*p));
    int whole = 0;

    (void)state;
    assert_non_null(p);
    pace_run(p, 1);
    for (int i = 0; i < PACE_CONNS; i++) {
        assert_int_equal(p->cli[i].closes, 1);
        assert_int_equal(p->srv[i].closes, 1);
        if (p->srv[i].nrx == PACE_BYTES)
            whole++;
        free(p->srv[i].rx);
    }
    /* The even ones were never closed early: they got everything. */
    assert_true(whole >= PACE_CONNS / 2);
    assert_true(whole < PACE_CONNS);
    free(p);
}

static int
group_setup(void **state)
{
    const char *sans[] = {"collector.test"};
    char err[512];
    int fd;

    (void)state;
    snprintf(basedir, sizeof(basedir), "/tmp/test_tls.XXXXXX");
    if (mkdtemp(basedir) == NULL)
        return -1;
    snprintf(pki1, sizeof(pki1), "%s/pki1", basedir);
    snprintf(pki2, sizeof(pki2), "%s/pki2", basedir);
    snprintf(logpath, sizeof(logpath), "%s/log", basedir);

    if (tc_pki_init(pki1, sans, 1, err, sizeof(err)) != 0 ||
        tc_pki_issue_agent(pki1, "agent-1", -300, 86400, err, sizeof(err)) !=
            0 ||
        tc_pki_issue_agent(pki1, "expired", -2 * 86400, -86400, err,
                           sizeof(err)) != 0 ||
        tc_pki_issue_agent(pki1, "future", 86400, 2 * 86400, err,
                           sizeof(err)) != 0 ||
        tc_pki_init(pki2, NULL, 0, err, sizeof(err)) != 0 ||
        tc_pki_issue_agent(pki2, "agent-1", -300, 86400, err, sizeof(err)) !=
            0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }

    /* From here on, log lines land in logpath for the tests to read. */
    fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0)
        return -1;
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    log_init("test_tls", 1, 1);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
    }
    /* Keep the PKI and log for a look when asked to. */
    if (getenv("TOCSIN_KEEP_TMP") == NULL)
        rm_rf(basedir);
    else
        printf("kept %s\n", basedir);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pki_files),
        cmocka_unit_test(test_cert_cn),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_key_mode),
        cmocka_unit_test(test_ctx_probe),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_ip_server_name),
        cmocka_unit_test(test_server_close),
        cmocka_unit_test(test_refuse_no_cert),
        cmocka_unit_test(test_refuse_other_ca),
        cmocka_unit_test(test_refuse_expired),
        cmocka_unit_test(test_refuse_not_yet_valid),
        cmocka_unit_test(test_refuse_wrong_name),
        cmocka_unit_test(test_refuse_wrong_ip),
        cmocka_unit_test(test_close_while_connecting),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_pacer_many),
        cmocka_unit_test(test_pacer_close_waiting),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
