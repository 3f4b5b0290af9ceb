/*
 * tls: TLS 1.3 over libuv TCP streams; see tls.h for the contract and
 * docs/internals/tls.md for the design.
 *
 * OpenSSL never touches the socket. Ciphertext read by libuv is written
 * into a memory BIO (rbio) and OpenSSL is "pumped" (SSL_do_handshake,
 * then SSL_read until it wants more input); whatever OpenSSL puts into
 * the other memory BIO (wbio) is copied into a heap write request and
 * handed to uv_write. Nothing here blocks, and user callbacks only run
 * from libuv callbacks, never from inside a tc_tls_* call, so callers
 * need not fear re-entry.
 *
 * A conn owns two libuv handles (the TCP socket and a timer). Its memory
 * is released only when both close callbacks have run, right after
 * on_close; so on_close is always asynchronous and exactly once.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "log.h"
#include "perms.h"
#include "util.h"

/* Socket read buffer per conn; also reused for decrypted plaintext. */
#define TLS_RBUF_SIZE (64 * 1024)
/* TCP connect plus handshake must finish within this, or the conn dies. */
#define TLS_HANDSHAKE_TIMEOUT_MS 10000
/* tc_tls_close gives the peer this long to take our queued bytes. */
#define TLS_CLOSE_TIMEOUT_MS 30000
/* Cap on plaintext queued by tc_tls_write before the handshake is done. */
#define TLS_EARLY_MAX (64 * 1024 * 1024)
/* TCP keepalive idle time, in seconds. */
#define TLS_KEEPALIVE_S 60
/* Plaintext given to SSL_write at once; see tc_tls_write. */
#define TLS_WRITE_CHUNK (64 * 1024)

struct tc_tls_ctx {
    SSL_CTX *ssl;               /* owned */
    int server;                 /* 1: accept side */
    int probe;                  /* 1: health-check client (opts.probe) */
    unsigned refs;              /* the owner's, plus one per conn not freed */
    struct tc_tls_pacer *pacer; /* borrowed, or NULL; given to new conns */
};

/*
 * Work per loop iteration for the conns of a loop (tc_tls_pacer_new in
 * tls.h). The budget runs from an iteration's first pump to the end of
 * its poll phase (the check handle); a conn pumped after it is spent
 * waits in the queue, reading stopped, and the idle handle (which also
 * keeps the next poll from blocking) pumps the queue first thing in the
 * next iteration, oldest first, at least one conn per iteration.
 */
struct tc_tls_pacer {
    uv_check_t check; /* ends the iteration's budget */
    uv_idle_t idle;   /* pumps the queue; active while it is not empty */
    uint64_t budget;  /* ns of pumping per loop iteration */
    uint64_t started; /* monotonic ns of this iteration's first pump,
                         0 before it */
    struct tc_tls_conn *head, *tail; /* the queue, oldest first */
    uint64_t deferred; /* pumps put off to a later iteration, ever */
    uint64_t reads;    /* socket reads of its conns (not closing), ever */
    int idling;        /* idle handle started */
    int open_handles;  /* handles whose close callback is pending */
};

static void
ctx_unref(struct tc_tls_ctx *ctx)
{
    if (--ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

enum tls_state {
    TLS_HANDSHAKE, /* connecting or handshaking; no on_ready yet */
    TLS_OPEN,      /* on_ready delivered; data flows */
    TLS_CLOSING,   /* flushing queued ciphertext before shutdown */
    TLS_CLOSED,    /* uv_close called; waiting for the close callbacks */
};

struct tc_tls_conn {
    uv_tcp_t tcp;           /* the socket; handle.data = this conn */
    uv_timer_t timer;       /* deadline (handshake, close) or read kick */
    uv_connect_t connect;   /* client connect request */
    uv_shutdown_t shutdown; /* FIN after the last write */
    struct tc_tls_ctx *ctx; /* a reference: kept until the conn is freed */
    SSL *ssl;               /* owned; owns rbio and wbio */
    BIO *rbio;              /* ciphertext from the socket into OpenSSL */
    BIO *wbio;              /* ciphertext from OpenSSL to the socket */
    struct tc_tls_cbs cbs;  /* copy of the caller's callbacks */
    void *data;             /* caller's pointer, not owned */
    struct tc_buf early;    /* plaintext written before on_ready, bytes */
    size_t inflight;        /* ciphertext bytes in uv_write requests */
    enum tls_state state;
    int connected;       /* 1 once the TCP connection is up */
    int want_read;       /* 0 after tc_tls_read_stop */
    int reading;         /* 1 while uv_read_start is in effect */
    int peer_eof;        /* 1 once the peer half-closed */
    int ssl_failed;      /* 1 after a fatal OpenSSL error: no shutdown */
    int shutting_down;   /* 1 once uv_shutdown was requested */
    int notify;          /* 1 once returned to the caller: on_close due */
    int open_handles;    /* handles whose close callback is pending */
    int have_result;     /* 1 once status/reason are decided */
    int status;          /* on_close status: 0 or negative errno */
    char reason[192];    /* on_close reason, NUL-terminated */
    char peer_addr[64];  /* "ip:port" or "[ip6]:port" */
    char peer_name[256]; /* verified peer CN, "" before on_ready */
    struct tc_tls_pacer *pacer; /* the ctx's when made; borrowed, or NULL */
    struct tc_tls_conn *pnext;  /* the pacer's queue: next, */
    struct tc_tls_conn *pprev;  /* previous (NULL: the head) */
    int paced;                  /* 1 while in that queue: not reading */
    /*
     * 1 when it was put in the queue before its socket was read (the
     * budget was spent when libuv asked for a buffer): its turn reads
     * the socket itself, then pumps.
     */
    int pread;
    /*
     * TLS_RBUF_SIZE bytes, owned, or NULL until the first read: an idle
     * connection (anyone can open thousands) costs no read buffer.
     */
    uint8_t *rbuf;
    /* Why the handshake failed (the metrics' class); NONE if it did not. */
    enum tc_tls_fail fail;
};

static uint8_t *
tls_rbuf(struct tc_tls_conn *c)
{
    if (c->rbuf == NULL)
        c->rbuf = tc_xmalloc(TLS_RBUF_SIZE);
    return c->rbuf;
}

/* A write request and the ciphertext it carries; freed in its callback. */
struct tls_wreq {
    uv_write_t req;       /* req.data = the conn */
    size_t len;           /* bytes in data */
    unsigned char data[]; /* len bytes of ciphertext */
};

static void tls_pump(struct tc_tls_conn *c);
static void tls_pump_now(struct tc_tls_conn *c);
static void pacer_remove(struct tc_tls_conn *c);
static void pacer_idle_cb(uv_idle_t *h);
static void pacer_defer(struct tc_tls_conn *c);
static void tls_drain_and_close(struct tc_tls_conn *c);
static void tls_timer_cb(uv_timer_t *t);

/*
 * The first (oldest) error on the OpenSSL queue is the root cause; the
 * later ones are the layers that passed it up. Returns a static string.
 */
static const char *
tls_ossl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *s;

    if (e == 0)
        return "unknown error";
    if (ERR_SYSTEM_ERROR(e))
        return strerror(ERR_GET_REASON(e));
    s = ERR_reason_error_string(e);
    return s != NULL ? s : "unknown error";
}

/* A negative errno for the first queued OpenSSL error. */
static int
tls_ossl_errno(int fallback)
{
    unsigned long e = ERR_peek_error();

    if (e != 0 && ERR_SYSTEM_ERROR(e) && ERR_GET_REASON(e) > 0)
        return -ERR_GET_REASON(e);
    return fallback;
}

static void tls_set_result(struct tc_tls_conn *c, int status, const char *fmt,
                           ...) TC_PRINTF(3, 4);

/* The first cause of a close wins; later ones are consequences. */
static void
tls_set_result(struct tc_tls_conn *c, int status, const char *fmt, ...)
{
    va_list ap;

    if (c->have_result)
        return;
    c->have_result = 1;
    c->status = status;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
}

static void tls_log_failure(const struct tc_tls_conn *c, const char *fmt, ...)
    TC_PRINTF(2, 3);

/*
 * A failed connection is worth a warning on the agent-collector link;
 * for a health check it is the check's result, and the check reports
 * it, so the log line is only for debugging.
 */
static void
tls_log_failure(const struct tc_tls_conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (c->ctx->probe)
        log_debug("%s", line);
    else
        log_warnx("%s", line);
}

static void
tls_handle_close_cb(uv_handle_t *h)
{
    struct tc_tls_conn *c = h->data;

    if (--c->open_handles > 0)
        return;
    if (c->notify)
        c->cbs.on_close(c, c->status, c->reason);
    SSL_free(c->ssl);
    tc_buf_close(&c->early);
    ctx_unref(c->ctx);
    free(c->rbuf);
    free(c);
}

/* Take c out of its pacer's queue, if it waits there. */
static void
pacer_remove(struct tc_tls_conn *c)
{
    struct tc_tls_pacer *p = c->pacer;

    if (!c->paced)
        return;
    c->paced = 0;
    if (c->pprev != NULL)
        c->pprev->pnext = c->pnext;
    else
        p->head = c->pnext;
    if (c->pnext != NULL)
        c->pnext->pprev = c->pprev;
    else
        p->tail = c->pprev;
    c->pnext = c->pprev = NULL;
}

/* Close the handles now; pending writes are cancelled by libuv. */
static void
tls_close_now(struct tc_tls_conn *c)
{
    if (c->state == TLS_CLOSED)
        return;
    c->state = TLS_CLOSED;
    c->reading = 0;
    pacer_remove(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, tls_handle_close_cb);
    uv_close((uv_handle_t *)&c->timer, tls_handle_close_cb);
}

static int pacer_spent(struct tc_tls_conn *c);

static void
tls_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tc_tls_conn *c = h->data;

    (void)suggested;
    /*
     * The budget is spent: do not even read. A read and its copy into
     * rbio are most of a pump's cost once thousands of sockets are
     * readable at once: reading them all and queueing the bytes took
     * 250 ms of loop CPU in one poll phase of the 10,000-agent storm
     * (bench/README.md, "issue 11: storm"). No buffer makes libuv call
     * tls_read_cb with UV_ENOBUFS, which queues the conn; its turn reads.
     * Closing conns only discard what they read: not paced.
     */
    if (c->pacer != NULL && !c->paced &&
        (c->state == TLS_HANDSHAKE || c->state == TLS_OPEN) && pacer_spent(c)) {
        c->pread = 1;
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)tls_rbuf(c);
    buf->len = TLS_RBUF_SIZE;
}

static void tls_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/*
 * Bring uv_read_start/stop in line with the state. The handshake is
 * always read (it is small and bounded by a deadline) so that a
 * read_stop issued early does not stall on_ready; after it, the caller's
 * read_stop holds; while closing we read and discard so that unread
 * bytes do not turn our FIN into a RST that could destroy what the peer
 * has not read yet.
 */
static int
tls_want_read(const struct tc_tls_conn *c)
{
    switch (c->state) {
    case TLS_HANDSHAKE:
        return c->connected;
    case TLS_OPEN:
        return c->want_read;
    case TLS_CLOSING:
        return c->connected && !c->peer_eof;
    case TLS_CLOSED:
        break;
    }
    return 0;
}

static void
tls_update_reading(struct tc_tls_conn *c)
{
    int want = tls_want_read(c);
    int r;

    if (c->state == TLS_CLOSED)
        return;
    if (c->paced)
        want = 0; /* its bytes wait in rbio until the pacer pumps it */
    if (want && !c->reading) {
        r = uv_read_start((uv_stream_t *)&c->tcp, tls_alloc_cb, tls_read_cb);
        if (r < 0) {
            tls_set_result(c, r, "read failed: %s", uv_strerror(r));
            tls_close_now(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void
tls_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct tc_tls_conn *c = req->data;

    (void)status; /* the socket is closed either way */
    tls_close_now(c);
}

/* All ciphertext is out: send FIN, then close. */
static void
tls_begin_shutdown(struct tc_tls_conn *c)
{
    int r;

    if (c->shutting_down || c->state == TLS_CLOSED)
        return;
    c->shutting_down = 1;
    if (!c->connected) {
        tls_close_now(c);
        return;
    }
    c->shutdown.data = c;
    r = uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, tls_shutdown_cb);
    if (r < 0)
        tls_close_now(c);
}

static void
tls_write_cb(uv_write_t *req, int status)
{
    struct tls_wreq *w = (struct tls_wreq *)req;
    struct tc_tls_conn *c = req->data;

    c->inflight -= w->len;
    free(w);
    if (c->state == TLS_CLOSED)
        return;
    if (status < 0) {
        tls_set_result(c, status, "write failed: %s", uv_strerror(status));
        log_debug("tls %s: write failed: %s", c->peer_addr,
                  uv_strerror(status));
        tls_close_now(c);
        return;
    }
    if (c->inflight > 0)
        return;
    if (c->state == TLS_CLOSING)
        tls_begin_shutdown(c);
    else if (c->state == TLS_OPEN && c->cbs.on_drain != NULL)
        c->cbs.on_drain(c);
}

/* A write to the socket failed: w was not queued. Close; r back. */
static int
tls_write_failed(struct tc_tls_conn *c, struct tls_wreq *w, int r)
{
    free(w);
    tls_set_result(c, r, "write failed: %s", uv_strerror(r));
    tls_close_now(c);
    return r;
}

/*
 * Move everything OpenSSL produced to the socket. When nothing is queued
 * the bytes are offered to the socket at once (uv_try_write), and what
 * it takes needs no request; the rest goes into one write request, which
 * owns its bytes until tls_write_cb. So inflight, and with it
 * tc_tls_write_pending, counts what the socket has not taken: a request
 * that uv_write had written whole stayed counted until its callback ran
 * in the next loop iteration, and a sender bounded by that sent no more
 * than its bound per iteration however fast the socket was (in
 * ship-all mode, 512 KiB per 1 MiB read pass). 0, or a negative UV error
 * after which the conn is closed.
 */
static int
tls_flush(struct tc_tls_conn *c)
{
    size_t pending, done;
    struct tls_wreq *w;
    uv_buf_t b;
    int n, r;

    if (c->state == TLS_CLOSED || !c->connected)
        return 0;
    while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
        if (pending > INT_MAX)
            pending = INT_MAX;
        w = tc_xmalloc(offsetof(struct tls_wreq, data) + pending);
        n = BIO_read(c->wbio, w->data, (int)pending);
        if (n <= 0) {
            /* A memory BIO with bytes pending cannot fail to read. */
            free(w);
            break;
        }
        done = 0;
        if (c->inflight == 0) {
            b = uv_buf_init((char *)w->data, (unsigned int)n);
            r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
            if (r == n) {
                free(w);
                continue;
            }
            if (r >= 0)
                done = (size_t)r;
            else if (r != UV_EAGAIN)
                return tls_write_failed(c, w, r);
        }
        w->len = (size_t)n - done;
        w->req.data = c;
        b = uv_buf_init((char *)w->data + done, (unsigned int)w->len);
        r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tls_write_cb);
        if (r < 0)
            return tls_write_failed(c, w, r);
        c->inflight += w->len;
    }
    return 0;
}

/*
 * Stop accepting new plaintext, queue close_notify if the session is
 * healthy, flush what is queued (including an alert after a failure),
 * then shut down. The status/reason must already be set.
 */
static void
tls_drain_and_close(struct tc_tls_conn *c)
{
    int established = c->state == TLS_OPEN;

    if (c->state == TLS_CLOSING || c->state == TLS_CLOSED)
        return;
    c->state = TLS_CLOSING;
    if (established && !c->ssl_failed) {
        ERR_clear_error();
        /* Queues close_notify; we do not wait for the peer's reply. */
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    /* A peer that stops reading must not keep us around forever. */
    uv_timer_start(&c->timer, tls_timer_cb, TLS_CLOSE_TIMEOUT_MS, 0);
    tls_update_reading(c);
    if (tls_flush(c) < 0)
        return;
    if (c->inflight == 0)
        tls_begin_shutdown(c);
}

/* Build the one line explaining why the handshake failed. */
static void
tls_handshake_reason(struct tc_tls_conn *c, int ssl_err, char *buf, size_t len)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();

    if (v != X509_V_OK) {
        snprintf(buf, len, "%s", X509_verify_cert_error_string(v));
    } else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET) {
        /* The peer rejected us: its alert says why. */
        snprintf(buf, len, "refused by peer (%s)", tls_ossl_reason());
    } else if (e != 0) {
        snprintf(buf, len, "%s", tls_ossl_reason());
    } else if (ssl_err == SSL_ERROR_SYSCALL) {
        snprintf(buf, len, "unexpected end of stream");
    } else {
        snprintf(buf, len, "error %d", ssl_err);
    }
}

/*
 * The class of a failed handshake, from the same facts as its reason
 * (call before the error queue is cleared).
 */
static enum tc_tls_fail
tls_handshake_class(struct tc_tls_conn *c, int ssl_err)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();

    switch (v) {
    case X509_V_OK:
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
        return TC_TLS_FAIL_EXPIRED;
    default:
        return TC_TLS_FAIL_BAD_CERT;
    }
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        return TC_TLS_FAIL_NO_CERT;
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL)
        return TC_TLS_FAIL_PROTOCOL;
    if (ssl_err == SSL_ERROR_SYSCALL && e == 0)
        return TC_TLS_FAIL_EOF;
    return TC_TLS_FAIL_OTHER;
}

static void
tls_handshake_failed(struct tc_tls_conn *c, int ssl_err)
{
    char why[160];

    if (c->fail == TC_TLS_FAIL_NONE)
        c->fail = tls_handshake_class(c, ssl_err);
    tls_handshake_reason(c, ssl_err, why, sizeof(why));
    ERR_clear_error();
    tls_log_failure(c, "tls %s: handshake failed: %s", c->peer_addr, why);
    tls_set_result(c, UV_EPROTO, "handshake failed: %s", why);
    c->ssl_failed = 1;
    /* Still flush: OpenSSL queued an alert that tells the peer why. */
    tls_drain_and_close(c);
}

/* A fatal OpenSSL error after the handshake (bad record, peer alert). */
static void
tls_session_failed(struct tc_tls_conn *c, int ssl_err)
{
    unsigned long e = ERR_peek_error();
    char why[160];

    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
        snprintf(why, sizeof(why), "refused by peer (%s)", tls_ossl_reason());
    else if (e != 0)
        snprintf(why, sizeof(why), "%s", tls_ossl_reason());
    else
        snprintf(why, sizeof(why), "TLS error %d", ssl_err);
    ERR_clear_error();
    tls_log_failure(c, "tls %s: connection failed: %s", c->peer_addr, why);
    tls_set_result(c, UV_EPROTO, "%s", why);
    c->ssl_failed = 1;
    tls_drain_and_close(c);
}

/* Record the verified peer's CN; -1 if there is none we can trust. */
static int
tls_load_peer_name(struct tc_tls_conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    int n;

    if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return -1;
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                  c->peer_name, (int)sizeof(c->peer_name));
    /*
     * A probe verified the host name against the SANs already, and the
     * CN is only an identity for tocsin's own peers.
     */
    if (c->ctx->probe && n <= 0) {
        c->peer_name[0] = '\0';
        return 0;
    }
    /* An embedded NUL would let one name pass for another. */
    if (n <= 0 || (size_t)n != strlen(c->peer_name)) {
        c->peer_name[0] = '\0';
        return -1;
    }
    return 0;
}

/* Returns 1 when the session is open and data may be read. */
static int
tls_handshake(struct tc_tls_conn *c)
{
    size_t w;
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            tls_flush(c);
            return 0;
        }
        tls_handshake_failed(c, e);
        return 0;
    }
    if (tls_load_peer_name(c) < 0) {
        tls_log_failure(c,
                        "tls %s: handshake failed: peer certificate has no "
                        "usable common name",
                        c->peer_addr);
        c->fail = TC_TLS_FAIL_BAD_CERT;
        tls_set_result(c, UV_EPROTO,
                       "handshake failed: peer certificate "
                       "has no usable common name");
        tls_drain_and_close(c);
        return 0;
    }
    c->state = TLS_OPEN;
    uv_timer_stop(&c->timer);
    log_debug("tls %s: handshake done, peer %s, %s", c->peer_addr, c->peer_name,
              SSL_get_cipher_name(c->ssl));
    if (tc_buf_size(&c->early) > 0) {
        ERR_clear_error();
        if (SSL_write_ex(c->ssl, tc_buf_head(&c->early), tc_buf_size(&c->early),
                         &w) != 1) {
            tls_session_failed(c, SSL_get_error(c->ssl, 0));
            return 0;
        }
        tc_buf_reset(&c->early);
    }
    if (tls_flush(c) < 0)
        return 0;
    c->cbs.on_ready(c);
    return c->state == TLS_OPEN;
}

/* Hand decrypted records to on_data until OpenSSL needs more input. */
static void
tls_read_plain(struct tc_tls_conn *c)
{
    size_t n;
    int e;

    while (c->state == TLS_OPEN && c->want_read) {
        ERR_clear_error();
        /*
         * rbuf doubles as the plaintext buffer: its ciphertext was
         * already copied into rbio by tls_read_cb.
         */
        if (SSL_read_ex(c->ssl, tls_rbuf(c), TLS_RBUF_SIZE, &n) == 1) {
            c->cbs.on_data(c, c->rbuf, n);
            continue;
        }
        e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            log_debug("tls %s: peer sent close_notify", c->peer_addr);
            tls_set_result(c, 0, "peer closed");
            tls_drain_and_close(c);
            break;
        }
        tls_session_failed(c, e);
        break;
    }
}

/* 1 when c's pacer has no budget left in this loop iteration. */
static int
pacer_spent(struct tc_tls_conn *c)
{
    struct tc_tls_pacer *p = c->pacer;
    uint64_t now;

    if (p == NULL)
        return 0;
    now = (uint64_t)tc_mono_ns();
    if (p->started == 0) {
        p->started = now;
        return 0;
    }
    return now - p->started >= p->budget;
}

/* Put c's pump off to a later iteration: it stops reading meanwhile. */
static void
pacer_defer(struct tc_tls_conn *c)
{
    struct tc_tls_pacer *p = c->pacer;

    c->paced = 1;
    c->pnext = NULL;
    c->pprev = p->tail;
    if (p->tail != NULL)
        p->tail->pnext = c;
    else
        p->head = c;
    p->tail = c;
    p->deferred++;
    if (!p->idling) {
        uv_idle_start(&p->idle, pacer_idle_cb);
        p->idling = 1;
    }
    tls_update_reading(c);
}

static void
tls_pump(struct tc_tls_conn *c)
{
    if (c->paced)
        return; /* its turn comes in the pacer's queue */
    if (pacer_spent(c)) {
        pacer_defer(c);
        return;
    }
    tls_pump_now(c);
}

static void tls_take(struct tc_tls_conn *c, ssize_t nread, const uv_buf_t *buf,
                     int now);

/*
 * A queued conn's turn. One put off unread reads its socket here, as
 * libuv would have (at most one buffer, EOF and errors alike), unless
 * its caller stopped reading meanwhile; then it is pumped.
 */
static void
pacer_turn(struct tc_tls_conn *c)
{
    uv_os_fd_t fd;
    uv_buf_t b;
    ssize_t n;

    if (!c->pread) {
        tls_pump_now(c);
        return;
    }
    c->pread = 0;
    if (!tls_want_read(c) || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0) {
        tls_pump_now(c);
        return;
    }
    b = uv_buf_init((char *)tls_rbuf(c), TLS_RBUF_SIZE);
    do
        n = read(fd, b.base, b.len);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        n = UV_EOF;
    else if (n < 0)
        n = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    if (n == 0) {
        /* Nothing after all: pumped, it reads again (tls_update_reading). */
        tls_pump_now(c);
        return;
    }
    tls_take(c, n, &b, 1);
}

/*
 * Idle phase, before the poll: the queue goes first in the iteration's
 * budget, oldest first, and at least one conn goes whatever is spent,
 * so the queue always moves.
 */
static void
pacer_idle_cb(uv_idle_t *h)
{
    struct tc_tls_pacer *p = h->data;
    int first = 1;

    while (p->head != NULL) {
        struct tc_tls_conn *c = p->head;

        if (!first && pacer_spent(c))
            break;
        if (first && p->started == 0)
            p->started = (uint64_t)tc_mono_ns();
        first = 0;
        pacer_remove(c);
        pacer_turn(c);
    }
    if (p->head == NULL && p->idling) {
        uv_idle_stop(&p->idle);
        p->idling = 0;
    }
}

/* After the poll phase: the next iteration has a budget of its own. */
static void
pacer_check_cb(uv_check_t *h)
{
    struct tc_tls_pacer *p = h->data;

    p->started = 0;
}

int
tc_tls_pacer_new(uv_loop_t *loop, uint64_t budget_us, struct tc_tls_pacer **out)
{
    struct tc_tls_pacer *p = tc_xcalloc(1, sizeof(*p));

    p->budget = budget_us * 1000;
    uv_check_init(loop, &p->check);
    uv_idle_init(loop, &p->idle);
    p->check.data = p->idle.data = p;
    p->open_handles = 2;
    uv_check_start(&p->check, pacer_check_cb);
    /* Always active: it must not keep the loop alive. The idle handle
     * runs only while conns wait, and then they need it. */
    uv_unref((uv_handle_t *)&p->check);
    *out = p;
    return 0;
}

void
tc_tls_ctx_set_pacer(struct tc_tls_ctx *ctx, struct tc_tls_pacer *p)
{
    ctx->pacer = p;
}

uint64_t
tc_tls_pacer_deferred(const struct tc_tls_pacer *p)
{
    return p != NULL ? p->deferred : 0;
}

uint64_t
tc_tls_pacer_reads(const struct tc_tls_pacer *p)
{
    return p != NULL ? p->reads : 0;
}

static void
pacer_closed_cb(uv_handle_t *h)
{
    struct tc_tls_pacer *p = h->data;

    if (--p->open_handles == 0)
        free(p);
}

void
tc_tls_pacer_close(struct tc_tls_pacer *p)
{
    if (p == NULL)
        return;
    /* Its conns are gone (tls.h): nothing can be left in the queue. */
    p->head = p->tail = NULL;
    uv_close((uv_handle_t *)&p->check, pacer_closed_cb);
    uv_close((uv_handle_t *)&p->idle, pacer_closed_cb);
}

static void
tls_pump_now(struct tc_tls_conn *c)
{
    if (c->state == TLS_HANDSHAKE && !tls_handshake(c))
        goto out;
    tls_read_plain(c);
    /* SSL_read may have produced bytes to send (e.g. a key update). */
    tls_flush(c);
out:
    tls_update_reading(c);
}

static void
tls_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tc_tls_conn *c = s->data;

    if (nread == 0 || c->state == TLS_CLOSED)
        return;
    if (nread == UV_ENOBUFS && c->pread) {
        /* tls_alloc_cb gave no buffer: queued unread (stops reading). */
        pacer_defer(c);
        return;
    }
    tls_take(c, nread, buf, 0);
}

/*
 * What a read brought (nread bytes in buf, or UV_EOF, or an error):
 * into rbio and pumped, now (a pacer's turn) or when the pacer allows.
 */
static void
tls_take(struct tc_tls_conn *c, ssize_t nread, const uv_buf_t *buf, int now)
{
    if (nread < 0) {
        if (nread == UV_EOF) {
            c->peer_eof = 1;
            if (c->state == TLS_HANDSHAKE) {
                c->fail = TC_TLS_FAIL_EOF;
                tls_log_failure(c,
                                "tls %s: handshake failed: peer closed the "
                                "connection",
                                c->peer_addr);
                tls_set_result(c, UV_EOF,
                               "handshake failed: peer closed "
                               "the connection");
            } else {
                tls_set_result(c, UV_EOF, "peer closed");
            }
            /* The peer may still read: our close_notify can go out. */
            tls_drain_and_close(c);
            tls_update_reading(c);
            return;
        }
        if (c->state == TLS_HANDSHAKE) {
            c->fail = TC_TLS_FAIL_OTHER;
            tls_log_failure(c, "tls %s: handshake failed: %s", c->peer_addr,
                            uv_strerror((int)nread));
        } else {
            log_debug("tls %s: read: %s", c->peer_addr,
                      uv_strerror((int)nread));
        }
        tls_set_result(c, (int)nread, "read failed: %s",
                       uv_strerror((int)nread));
        tls_close_now(c);
        return;
    }
    if (c->state == TLS_CLOSING)
        return; /* discarded: the caller closed the conn */
    if (c->pacer != NULL)
        c->pacer->reads++;
    if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
        tls_set_result(c, UV_ENOMEM, "out of memory");
        tls_close_now(c);
        return;
    }
    if (now)
        tls_pump_now(c);
    else
        tls_pump(c);
}

static void
tls_timer_cb(uv_timer_t *t)
{
    struct tc_tls_conn *c = t->data;

    switch (c->state) {
    case TLS_HANDSHAKE:
        c->fail = TC_TLS_FAIL_TIMEOUT;
        tls_log_failure(c, "tls %s: handshake failed: timed out after %d s",
                        c->peer_addr, TLS_HANDSHAKE_TIMEOUT_MS / 1000);
        tls_set_result(c, UV_ETIMEDOUT, "handshake timed out");
        tls_close_now(c);
        break;
    case TLS_OPEN:
        /* Kicked by tc_tls_read_start: deliver what was buffered. */
        tls_pump(c);
        break;
    case TLS_CLOSING:
        log_debug("tls %s: peer did not take our last bytes in %d s",
                  c->peer_addr, TLS_CLOSE_TIMEOUT_MS / 1000);
        tls_close_now(c);
        break;
    case TLS_CLOSED:
        break;
    }
}

static void
tls_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    } else {
        snprintf(out, len, "?");
    }
}

/*
 * Allocate a conn with its SSL and both handles initialised. NULL only
 * if OpenSSL cannot allocate (the handles are not initialised then).
 */
static struct tc_tls_conn *
tls_conn_new(uv_loop_t *loop, struct tc_tls_ctx *ctx,
             const struct tc_tls_cbs *cbs, void *data)
{
    struct tc_tls_conn *c = tc_xcalloc(1, sizeof(*c));

    c->ssl = SSL_new(ctx->ssl);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both now */
    c->ctx = ctx;
    ctx->refs++;
    c->pacer = ctx->pacer;
    c->cbs = *cbs;
    c->data = data;
    c->want_read = 1;
    c->state = TLS_HANDSHAKE;
    tc_buf_init(&c->early, TLS_EARLY_MAX);
    snprintf(c->peer_addr, sizeof(c->peer_addr), "?");
    /* Neither init can fail for a valid loop (no socket is created). */
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    return c;
}

/* Undo tls_conn_new before the conn was handed out: no on_close. */
static void
tls_conn_discard(struct tc_tls_conn *c)
{
    c->notify = 0;
    tls_close_now(c);
}

/* The accept side once c->tcp holds the connected socket. */
static int
tls_accept_start(struct tc_tls_conn *c, struct tc_tls_conn **out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int r;

    c->connected = 1;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        tls_format_addr((struct sockaddr *)&ss, c->peer_addr,
                        sizeof(c->peer_addr));
    /* Frames are small and latency matters more than packet count. */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, TLS_KEEPALIVE_S);
    SSL_set_accept_state(c->ssl);
    r = uv_read_start((uv_stream_t *)&c->tcp, tls_alloc_cb, tls_read_cb);
    if (r < 0) {
        tls_conn_discard(c);
        return r;
    }
    c->reading = 1;
    uv_timer_start(&c->timer, tls_timer_cb, TLS_HANDSHAKE_TIMEOUT_MS, 0);
    c->notify = 1;
    *out = c;
    return 0;
}

int
tc_tls_accept(uv_stream_t *server, struct tc_tls_ctx *ctx,
              const struct tc_tls_cbs *cbs, void *data,
              struct tc_tls_conn **out)
{
    struct tc_tls_conn *c;
    int r;

    *out = NULL;
    if (!ctx->server)
        return -EINVAL;
    if ((c = tls_conn_new(server->loop, ctx, cbs, data)) == NULL)
        return -ENOMEM;
    if ((r = uv_accept(server, (uv_stream_t *)&c->tcp)) < 0) {
        tls_conn_discard(c);
        return r;
    }
    return tls_accept_start(c, out);
}

int
tc_tls_accept_fd(uv_loop_t *loop, uv_os_sock_t fd, struct tc_tls_ctx *ctx,
                 const struct tc_tls_cbs *cbs, void *data,
                 struct tc_tls_conn **out)
{
    struct tc_tls_conn *c;
    int r;

    *out = NULL;
    if (!ctx->server) {
        close(fd);
        return -EINVAL;
    }
    if ((c = tls_conn_new(loop, ctx, cbs, data)) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    if ((r = uv_tcp_open(&c->tcp, fd)) < 0) {
        close(fd); /* not the handle's yet */
        tls_conn_discard(c);
        return r;
    }
    return tls_accept_start(c, out);
}

static void
tls_connect_cb(uv_connect_t *req, int status)
{
    struct tc_tls_conn *c = req->data;

    if (status == UV_ECANCELED || c->state == TLS_CLOSED)
        return;
    if (status < 0) {
        log_debug("tls %s: connect: %s", c->peer_addr, uv_strerror(status));
        tls_set_result(c, status, "connect failed: %s", uv_strerror(status));
        tls_close_now(c);
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, TLS_KEEPALIVE_S);
    if (c->state == TLS_CLOSING) {
        /* Closed while connecting: nothing was sent, just hang up. */
        tls_begin_shutdown(c);
        return;
    }
    tls_pump(c); /* sends the ClientHello */
}

static int
tls_is_ip_literal(const char *s)
{
    unsigned char b[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int
tc_tls_connect(uv_loop_t *loop, struct tc_tls_ctx *ctx,
               const struct sockaddr *addr, const char *server_name,
               const struct tc_tls_cbs *cbs, void *data,
               struct tc_tls_conn **out)
{
    struct tc_tls_conn *c;
    int r;

    *out = NULL;
    if (ctx->server || server_name == NULL || server_name[0] == '\0')
        return -EINVAL;
    if ((c = tls_conn_new(loop, ctx, cbs, data)) == NULL)
        return -ENOMEM;
    tls_format_addr(addr, c->peer_addr, sizeof(c->peer_addr));
    SSL_set_connect_state(c->ssl);
    ERR_clear_error();
    if (tls_is_ip_literal(server_name)) {
        /* RFC 6066 forbids literal addresses in SNI: verify the IP SAN. */
        r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), server_name);
    } else {
        r = SSL_set_tlsext_host_name(c->ssl, server_name) == 1 &&
            SSL_set1_host(c->ssl, server_name) == 1;
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (r != 1) {
        ERR_clear_error();
        tls_conn_discard(c);
        return -EINVAL;
    }
    c->connect.data = c;
    r = uv_tcp_connect(&c->connect, &c->tcp, addr, tls_connect_cb);
    if (r < 0) {
        tls_conn_discard(c);
        return r;
    }
    uv_timer_start(&c->timer, tls_timer_cb, TLS_HANDSHAKE_TIMEOUT_MS, 0);
    c->notify = 1;
    *out = c;
    return 0;
}

int
tc_tls_write(struct tc_tls_conn *c, const void *p, size_t n)
{
    size_t w;

    if (c->state != TLS_HANDSHAKE && c->state != TLS_OPEN)
        return -EPIPE;
    if (n == 0)
        return 0;
    if (c->state == TLS_HANDSHAKE)
        return tc_buf_append(&c->early, p, n);
    /*
     * The wbio is an unbounded memory BIO, so a TLS 1.3 write either
     * takes everything or fails for good: there is no partial write
     * to resume here. Partial socket writes are libuv's business.
     *
     * Its buffer grows to the largest write and never shrinks, so a
     * whole EVENTS frame at once would keep the ciphertext of the
     * largest batch ever sent resident for the life of the connection
     * (170 KiB after a burst). Pieces of TLS_WRITE_CHUNK, each moved
     * out by tls_flush before the next, bound it to one piece, at the
     * price of one write request per piece instead of one per frame.
     */
    while (n > 0) {
        size_t k = n < TLS_WRITE_CHUNK ? n : TLS_WRITE_CHUNK;
        int rc;

        ERR_clear_error();
        if (SSL_write_ex(c->ssl, p, k, &w) != 1) {
            tls_session_failed(c, SSL_get_error(c->ssl, 0));
            return -EPROTO;
        }
        if ((rc = tls_flush(c)) < 0)
            return rc;
        p = (const uint8_t *)p + k;
        n -= k;
    }
    return 0;
}

size_t
tc_tls_write_pending(const struct tc_tls_conn *c)
{
    return c->inflight + BIO_ctrl_pending(c->wbio) + tc_buf_size(&c->early);
}

void
tc_tls_read_stop(struct tc_tls_conn *c)
{
    c->want_read = 0;
    tls_update_reading(c);
}

void
tc_tls_read_start(struct tc_tls_conn *c)
{
    if (c->want_read)
        return;
    c->want_read = 1;
    tls_update_reading(c);
    /*
     * Records already in rbio (or decrypted inside OpenSSL) would wait
     * for the next socket read that may never come; deliver them from
     * the loop rather than from inside this call.
     */
    if (c->state == TLS_OPEN &&
        (SSL_has_pending(c->ssl) || BIO_ctrl_pending(c->rbio) > 0))
        uv_timer_start(&c->timer, tls_timer_cb, 0, 0);
}

void
tc_tls_close(struct tc_tls_conn *c, const char *reason)
{
    if (c->state == TLS_CLOSING || c->state == TLS_CLOSED)
        return;
    tls_set_result(c, 0, "%s", reason != NULL ? reason : "closed");
    tls_drain_and_close(c);
}

const char *
tc_tls_peer_name(const struct tc_tls_conn *c)
{
    return c->peer_name;
}

const char *
tc_tls_peer_addr(const struct tc_tls_conn *c)
{
    return c->peer_addr;
}

void *
tc_tls_get_data(const struct tc_tls_conn *c)
{
    return c->data;
}

static const char *const fail_names[TC_TLS_FAIL_N] = {
    "none",     "no_cert", "bad_cert", "expired",
    "protocol", "timeout", "eof",      "other",
};

const char *
tc_tls_fail_name(enum tc_tls_fail f)
{
    return (unsigned)f < TC_TLS_FAIL_N ? fail_names[f] : NULL;
}

enum tc_tls_fail
tc_tls_handshake_failure(const struct tc_tls_conn *c)
{
    return c->fail;
}

void
tc_tls_set_data(struct tc_tls_conn *c, void *data)
{
    c->data = data;
}

static int
tls_is_key_mismatch(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_X509 &&
           ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

/*
 * Load the private key at path into ssl. The file is opened and its
 * mode checked once (tc_perms_key_open), and the key read from that
 * descriptor: a key that group or others may read is refused.
 */
static int
tls_use_key(SSL_CTX *ssl, const char *path, char *err, size_t errlen)
{
    char why[512];
    EVP_PKEY *key = NULL;
    BIO *in = NULL;
    int fd, rc = 0;

    if ((fd = tc_perms_key_open(path, why, sizeof(why))) < 0) {
        snprintf(err, errlen, "tls: private key %s", why);
        return fd;
    }
    if ((in = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
        close(fd);
        snprintf(err, errlen, "tls: cannot load private key %s: %s", path,
                 tls_ossl_reason());
        return -ENOMEM;
    }
    if ((key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)) == NULL) {
        snprintf(err, errlen, "tls: cannot load private key %s: %s", path,
                 tls_ossl_reason());
        rc = tls_ossl_errno(-EINVAL);
        goto out;
    }
    /* OpenSSL checks the pair here already, or in the caller's next
     * call; a mismatch is reported there, with both names. */
    if (SSL_CTX_use_PrivateKey(ssl, key) != 1 &&
        !tls_is_key_mismatch(ERR_peek_error())) {
        snprintf(err, errlen, "tls: cannot load private key %s: %s", path,
                 tls_ossl_reason());
        rc = tls_ossl_errno(-EINVAL);
        goto out;
    }
out:
    EVP_PKEY_free(key);
    BIO_free(in);
    return rc;
}

int
tc_tls_ctx_new(const struct tc_tls_ctx_opts *o, struct tc_tls_ctx **out,
               char *err, size_t errlen)
{
    STACK_OF(X509_NAME) * names;
    SSL_CTX *ssl = NULL;
    X509 *cert;
    int rc = 0;

    *out = NULL;
    if ((o->ca == NULL && !o->probe) || (o->cert == NULL) != (o->key == NULL) ||
        (o->server && o->cert == NULL)) {
        snprintf(err, errlen,
                 "tls: a CA bundle is required, and a "
                 "certificate with its key%s",
                 o->server ? "" : " (or neither)");
        return -EINVAL;
    }
    if ((o->probe && o->server) ||
        (o->min_version != TC_TLS_1_3 && !o->probe)) {
        /* tocsin's own links stay TLS 1.3 whatever a caller asks. */
        snprintf(err, errlen,
                 "tls: TLS 1.2 and the system trust store are "
                 "for health-check clients only");
        return -EINVAL;
    }
    ERR_clear_error();
    ssl = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (ssl == NULL) {
        snprintf(err, errlen, "tls: cannot create context: %s",
                 tls_ossl_reason());
        rc = -ENOMEM;
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ssl, o->min_version == TC_TLS_1_2
                                               ? TLS1_2_VERSION
                                               : TLS1_3_VERSION) != 1) {
        snprintf(err, errlen, "tls: cannot set the minimum TLS version: %s",
                 tls_ossl_reason());
        rc = -EINVAL;
        goto out;
    }
    if (o->cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ssl, o->cert) != 1) {
            snprintf(err, errlen, "tls: cannot load certificate %s: %s",
                     o->cert, tls_ossl_reason());
            rc = tls_ossl_errno(-EINVAL);
            goto out;
        }
        if ((rc = tls_use_key(ssl, o->key, err, errlen)) < 0)
            goto out;
        if (ERR_peek_error() != 0 || SSL_CTX_check_private_key(ssl) != 1) {
            snprintf(err, errlen,
                     "tls: private key %s does not match certificate %s",
                     o->key, o->cert);
            rc = -EINVAL;
            goto out;
        }
        cert = SSL_CTX_get0_certificate(ssl);
        if (cert != NULL && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
            log_warnx("tls: certificate %s has expired; peers will refuse "
                      "it",
                      o->cert);
    }
    if (o->ca == NULL) {
        /* Only a probe gets here: the distribution's trust store. */
        if (SSL_CTX_set_default_verify_paths(ssl) != 1) {
            snprintf(err, errlen,
                     "tls: cannot load the system trust store: "
                     "%s",
                     tls_ossl_reason());
            rc = -EINVAL;
            goto out;
        }
    } else if (SSL_CTX_load_verify_locations(ssl, o->ca, NULL) != 1) {
        snprintf(err, errlen, "tls: cannot load CA bundle %s: %s", o->ca,
                 tls_ossl_reason());
        rc = tls_ossl_errno(-EINVAL);
        goto out;
    }
    if (o->server) {
        SSL_CTX_set_verify(
            ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* Tell clients which CA we accept (CertificateRequest). */
        if ((names = SSL_load_client_CA_file(o->ca)) != NULL)
            SSL_CTX_set_client_CA_list(ssl, names);
        /* Sessions are long-lived and never resumed: no tickets. */
        SSL_CTX_set_num_tickets(ssl, 0);
    } else {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    }
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
    /* Idle agents are the common case: free record buffers between use. */
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);

    *out = tc_xcalloc(1, sizeof(**out));
    (*out)->ssl = ssl;
    (*out)->server = o->server != 0;
    (*out)->probe = o->probe != 0;
    (*out)->refs = 1;
    ssl = NULL;
out:
    ERR_clear_error();
    SSL_CTX_free(ssl);
    return rc;
}

void
tc_tls_ctx_free(struct tc_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx_unref(ctx);
}

int
tc_tls_cert_cn(const char *path, char *out, size_t outlen, char *err,
               size_t errlen)
{
    X509 *x = NULL;
    BIO *in;
    int n, rc = 0;

    ERR_clear_error();
    if ((in = BIO_new_file(path, "r")) == NULL) {
        snprintf(err, errlen, "tls: cannot read certificate %s: %s", path,
                 tls_ossl_reason());
        rc = tls_ossl_errno(-EIO);
        goto out;
    }
    if ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL) {
        snprintf(err, errlen, "tls: cannot load certificate %s: %s", path,
                 tls_ossl_reason());
        rc = -EINVAL;
        goto out;
    }
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  NULL, 0);
    if (n <= 0) {
        snprintf(err, errlen, "tls: certificate %s has no common name", path);
        rc = -EINVAL;
        goto out;
    }
    if ((size_t)n >= outlen) {
        snprintf(err, errlen, "tls: common name of %s is too long", path);
        rc = -ENAMETOOLONG;
        goto out;
    }
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
                                  (int)outlen);
    if (n <= 0 || (size_t)n != strlen(out)) {
        snprintf(err, errlen, "tls: common name of %s is not text", path);
        out[0] = '\0';
        rc = -EINVAL;
        goto out;
    }
out:
    ERR_clear_error();
    X509_free(x);
    BIO_free(in);
    return rc;
}

/*
 * The HTTP API's server context (tls.h): TLS 1.3, the certificate and
 * the key loaded as tc_tls_ctx_new loads them (the key's mode checked),
 * no client certificate asked for (clients prove themselves with a
 * bearer token), no session tickets.
 */
void *
tc_tls_https_ctx_new(const char *cert, const char *key, char *err,
                     size_t errlen)
{
    SSL_CTX *ssl;
    int rc;

    ERR_clear_error();
    if ((ssl = SSL_CTX_new(TLS_server_method())) == NULL) {
        snprintf(err, errlen, "tls: cannot create context: %s",
                 tls_ossl_reason());
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ssl, TLS1_3_VERSION) != 1) {
        snprintf(err, errlen, "tls: cannot set the minimum TLS version: %s",
                 tls_ossl_reason());
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        snprintf(err, errlen, "tls: cannot load certificate %s: %s", cert,
                 tls_ossl_reason());
        goto fail;
    }
    if ((rc = tls_use_key(ssl, key, err, errlen)) < 0)
        goto fail;
    if (ERR_peek_error() != 0 || SSL_CTX_check_private_key(ssl) != 1) {
        snprintf(err, errlen,
                 "tls: private key %s does not match certificate %s", key,
                 cert);
        goto fail;
    }
    SSL_CTX_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_num_tickets(ssl, 0);
    SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    ERR_clear_error();
    return ssl;
fail:
    ERR_clear_error();
    SSL_CTX_free(ssl);
    return NULL;
}

void
tc_tls_https_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}
