/*
 * tls: TLS 1.3 over libuv streams, OpenSSL memory BIOs in between.
 *
 * The only module that touches OpenSSL (with pki.c, its certificate
 * authority half). Both sides require TLS 1.3 and verify the peer
 * against the configured CA; the server requires a client certificate;
 * the client verifies the server name (DNS SAN, or IP SAN when the name
 * is an address literal). Health checks of third-party https servers
 * use a "probe" client context instead (system trust store, TLS 1.2
 * allowed, no client certificate; see tc_tls_ctx_opts.probe). A failed
 * handshake is logged with the peer address and the OpenSSL reason, e.g.
 *   "tls 127.0.0.1:51234: handshake failed: certificate has expired".
 *
 * Contract (libuv style):
 *  - every callback runs on the loop thread;
 *  - on_ready fires once, after the handshake and verification;
 *  - on_data delivers decrypted bytes; the buffer is only valid during
 *    the call;
 *  - on_close fires exactly once for every conn that was returned by
 *    tc_tls_accept/tc_tls_connect, whatever the reason (handshake
 *    failure, peer EOF, error, tc_tls_close); status is 0 for a clean
 *    close or a negative errno / UV error; reason is a short static or
 *    conn-owned string valid during the call. The conn's memory is freed
 *    right after on_close returns: do not touch it afterwards.
 *  - tc_tls_write copies the bytes; it never blocks. Bytes not yet
 *    handed to the kernel are counted by tc_tls_write_pending, and
 *    on_drain (optional) fires when that count drops to zero, so callers
 *    can bound memory.
 */
#ifndef TC_TLS_H
#define TC_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct tc_tls_ctx;
struct tc_tls_conn;

/* Lowest protocol version a context accepts. */
enum tc_tls_min_version {
    TC_TLS_1_3 = 0, /* the default, and all tocsin peers speak it */
    TC_TLS_1_2 = 1, /* probe clients only: third-party servers */
};

struct tc_tls_ctx_opts {
    const char *ca;   /* PEM CA bundle path used to verify the peer;
                         probe: NULL means the system trust store */
    const char *cert; /* PEM certificate (chain) path; NULL with key NULL:
                         a client without a certificate (servers refuse) */
    const char *key;  /* PEM private key path */
    int server;       /* 1: accept side (requires client certs) */
    /*
     * 1: a client for health checks of other people's servers (https
     * checks). The server name is still verified (and sent as SNI), but
     * the peer certificate need not carry a CN (many public ones have
     * only SANs; tc_tls_peer_name is "" then), and failures are logged
     * at debug level only: the check reports them in its result.
     */
    int probe;
    enum tc_tls_min_version min_version; /* TLS 1.2 needs probe */
};

/*
 * Load certificates and keys. On failure returns a negative errno and
 * writes a message naming the file and the reason into err.
 */
int tc_tls_ctx_new(const struct tc_tls_ctx_opts *o, struct tc_tls_ctx **out,
                   char *err, size_t errlen);
/*
 * Drop the caller's reference. Connections made from the context keep
 * it alive until they are freed, so a daemon may swap in a new context
 * (reload) while old connections finish with the old one.
 */
void tc_tls_ctx_free(struct tc_tls_ctx *ctx);

struct tc_tls_cbs {
    void (*on_ready)(struct tc_tls_conn *c);
    void (*on_data)(struct tc_tls_conn *c, const uint8_t *p, size_t n);
    void (*on_drain)(struct tc_tls_conn *c); /* may be NULL */
    void (*on_close)(struct tc_tls_conn *c, int status, const char *reason);
};

/*
 * Accept one pending connection on a listening uv stream (call from the
 * connection callback). The handshake starts at once. 0 or negative.
 */
int tc_tls_accept(uv_stream_t *server, struct tc_tls_ctx *ctx,
                  const struct tc_tls_cbs *cbs, void *data,
                  struct tc_tls_conn **out);

/*
 * The same for a socket the caller accepted itself (a listener that
 * must see accept's errors, such as EMFILE, which libuv's own listener
 * handles silently). The conn takes fd, whatever the result: on
 * failure it is closed.
 */
int tc_tls_accept_fd(uv_loop_t *loop, uv_os_sock_t fd, struct tc_tls_ctx *ctx,
                     const struct tc_tls_cbs *cbs, void *data,
                     struct tc_tls_conn **out);

/*
 * Connect to addr and handshake, verifying server_name. Failures after
 * this returns 0 are reported through on_close.
 */
int tc_tls_connect(uv_loop_t *loop, struct tc_tls_ctx *ctx,
                   const struct sockaddr *addr, const char *server_name,
                   const struct tc_tls_cbs *cbs, void *data,
                   struct tc_tls_conn **out);

/*
 * Queue plaintext for sending. 0, or negative if the conn is closing
 * (-EPIPE). Bytes written before on_ready are held (up to 64 MiB, else
 * -ENOBUFS) and sent after the handshake.
 */
int tc_tls_write(struct tc_tls_conn *c, const void *p, size_t n);
/*
 * Bytes queued but not yet written by the kernel: ciphertext, plus
 * plaintext held until the handshake completes.
 */
size_t tc_tls_write_pending(const struct tc_tls_conn *c);

/*
 * Backpressure: stop/resume reading from the socket. read_stop stops
 * on_data at once, even inside on_data; the handshake itself is still
 * read, so on_ready comes. Records already buffered when read_start is
 * called are delivered from the loop, not from inside the call.
 */
void tc_tls_read_stop(struct tc_tls_conn *c);
void tc_tls_read_start(struct tc_tls_conn *c);

/*
 * Pacing, for a server with thousands of conns on one loop. Handshakes
 * (certificate verification, key exchange) and the caller's on_data run
 * on the loop thread, and one loop iteration runs every conn that has
 * input: at 10,000 agents, a wave of handshakes or every session
 * resuming at once kept the loop's timers and acks waiting for hundreds
 * of milliseconds. A pacer bounds that: once its conns have been pumped
 * (handshake steps, decryption, on_data) for budget_us in one loop
 * iteration, a conn with new input stops reading and waits (its bytes
 * left in the socket, or kept if it had read them), until the next
 * iteration, where the waiting conns go first,
 * oldest first (at least one per iteration). Nothing is dropped or
 * reordered within a conn; a conn closed while waiting simply leaves.
 * Set on a context (a server's), it applies to the conns made from it
 * afterwards; close it once all of them are freed. Conns of a context
 * without a pacer (the agent's) are pumped at once, as before.
 */
struct tc_tls_pacer;

int tc_tls_pacer_new(uv_loop_t *loop, uint64_t budget_us,
                     struct tc_tls_pacer **out);
void tc_tls_ctx_set_pacer(struct tc_tls_ctx *ctx, struct tc_tls_pacer *p);
/* Pumps put off to a later loop iteration since the pacer was made. */
uint64_t tc_tls_pacer_deferred(const struct tc_tls_pacer *p);
/* Socket reads with data by its conns (closing ones aside), ever. */
uint64_t tc_tls_pacer_reads(const struct tc_tls_pacer *p);
/* Close its handles; it is freed in their close callbacks. NULL: no-op. */
void tc_tls_pacer_close(struct tc_tls_pacer *p);

/*
 * Close: flush queued writes, send close_notify, close the socket.
 * on_close follows (asynchronously) with status 0 and this reason.
 * Idempotent.
 */
void tc_tls_close(struct tc_tls_conn *c, const char *reason);

/* Subject CN of the verified peer certificate ("" before on_ready). */
const char *tc_tls_peer_name(const struct tc_tls_conn *c);
/* "ip:port" of the peer, for log lines. */
const char *tc_tls_peer_addr(const struct tc_tls_conn *c);

/*
 * Read the subject CN of the PEM certificate at path into out (the
 * agent's default name). 0, or negative with a message in err.
 */
int tc_tls_cert_cn(const char *path, char *out, size_t outlen, char *err,
                   size_t errlen);

/*
 * The HTTP API's server context (docs/internals/api.md): an OpenSSL
 * SSL_CTX (returned as void *, for the HTTP library, so that nothing
 * else includes OpenSSL) serving cert and key over TLS 1.3, without
 * client certificates. NULL with a message in err.
 */
void *tc_tls_https_ctx_new(const char *cert, const char *key, char *err,
                           size_t errlen);
void tc_tls_https_ctx_free(void *ctx);

void *tc_tls_get_data(const struct tc_tls_conn *c);

/*
 * Why a handshake failed, in a few fixed classes: a bounded label for
 * the collector's metrics (tocsin_tls_handshake_failures_total), never
 * OpenSSL's own text. TC_TLS_FAIL_NONE while the handshake has not
 * failed (it succeeded, runs, or the conn was closed by its owner).
 */
enum tc_tls_fail {
    TC_TLS_FAIL_NONE = 0,
    TC_TLS_FAIL_NO_CERT,  /* the peer sent no certificate */
    TC_TLS_FAIL_BAD_CERT, /* it did not verify (unknown CA, signature,
                             purpose), or has no usable common name */
    TC_TLS_FAIL_EXPIRED,  /* expired or not yet valid */
    TC_TLS_FAIL_PROTOCOL, /* TLS itself: version, cipher, a bad record,
                             an alert from the peer */
    TC_TLS_FAIL_TIMEOUT,  /* not done in time */
    TC_TLS_FAIL_EOF,      /* the peer closed the connection */
    TC_TLS_FAIL_OTHER,    /* a socket error, memory */
};
#define TC_TLS_FAIL_N 8
/* "none", "no_cert", "bad_cert", "expired", "protocol", "timeout",
 * "eof", "other"; NULL out of range. */
const char *tc_tls_fail_name(enum tc_tls_fail f);
/* The class of c's handshake failure (valid in on_close). */
enum tc_tls_fail tc_tls_handshake_failure(const struct tc_tls_conn *c);
void tc_tls_set_data(struct tc_tls_conn *c, void *data);

#endif
