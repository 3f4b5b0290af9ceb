/*
 * wire_encode: the protocol's encoders (frames and single events),
 * written with msgpack-c's packer into a tc_buf, keys in the order of
 * the tables in wire_keys.c (the decoders look for them in that order
 * first).
 */
#include "wire_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Packing state. Errors are sticky: once an append fails every later
 * write is refused, so a small write after a failed big one cannot
 * produce a frame with a hole in it.
 */
struct enc {
    msgpack_packer pk;
    struct tc_buf *b;
    size_t start; /* tc_buf_size(b) before we began; survives compaction */
    int framed;   /* a length prefix was reserved at start */
    int err;      /* first error, negative errno */
};

static int
enc_write(void *data, const char *p, size_t n)
{
    struct enc *e = data;
    struct tc_buf *b = e->b;
    int rc;

    if (e->err)
        return -1;
    /* An empty str or bin body may come with a NULL pointer (memcpy's
     * arguments must not be NULL, even for 0 bytes). */
    if (n == 0)
        return 0;
    /*
     * The packer calls this for every token (a key, a 1-byte int), some
     * 20 times an event; the call into tc_buf_append for each was about
     * a tenth of the agent's CPU in ship-all mode. Room and cap checked
     * here, the slow path (grow, compact, refuse) stays in buf.c.
     */
    if (b->data != NULL && n <= b->cap - b->len &&
        b->len - b->off + n <= b->max) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
    }
    if ((rc = tc_buf_append(b, p, n)) < 0) {
        e->err = rc;
        return -1;
    }
    return 0;
}

static void
enc_begin(struct enc *e, struct tc_buf *b)
{
    e->b = b;
    e->start = tc_buf_size(b);
    e->framed = 0;
    e->err = 0;
    msgpack_packer_init(&e->pk, e, enc_write);
}

/* Begin a frame: length placeholder, [type, {nkeys...}]. */
static void
enc_frame(struct enc *e, struct tc_buf *b, enum tc_frame_type type,
          uint32_t nkeys)
{
    static const uint8_t zero[TC_WIRE_HDR];

    enc_begin(e, b);
    e->framed = 1;
    enc_write(e, (const char *)zero, sizeof(zero));
    msgpack_pack_array(&e->pk, 2);
    msgpack_pack_unsigned_int(&e->pk, (unsigned)type);
    msgpack_pack_map(&e->pk, nkeys);
}

/*
 * Finish: patch the length prefix, or roll out back to where it was.
 * Offsets are taken relative to b->off because tc_buf_reserve may have
 * compacted the buffer in between.
 */
static int
enc_end(struct enc *e)
{
    struct tc_buf *b = e->b;
    size_t body;
    uint8_t *h;

    if (e->err)
        goto fail;
    if (e->framed) {
        body = tc_buf_size(b) - e->start - TC_WIRE_HDR;
        /* The peer would refuse it and we would resend it forever. */
        if (body > TC_WIRE_MAX_FRAME) {
            e->err = -EMSGSIZE;
            goto fail;
        }
        h = b->data + b->off + e->start;
        h[0] = (uint8_t)(body >> 24);
        h[1] = (uint8_t)(body >> 16);
        h[2] = (uint8_t)(body >> 8);
        h[3] = (uint8_t)body;
    }
    return 0;
fail:
    b->len = b->off + e->start;
    return e->err;
}

static void
pack_key(struct enc *e, const char *k, size_t n)
{
    msgpack_pack_str(&e->pk, n);
    msgpack_pack_str_body(&e->pk, k, n);
}
#define KEY(e, lit) pack_key(e, lit, sizeof(lit) - 1)

static void
pack_str(struct enc *e, struct tc_str s)
{
    msgpack_pack_str(&e->pk, s.len);
    msgpack_pack_str_body(&e->pk, s.ptr, s.len);
}

static void
pack_kv(struct enc *e, const struct tc_kv *kv, uint32_t n)
{
    msgpack_pack_map(&e->pk, n);
    for (uint32_t i = 0; i < n; i++) {
        pack_str(e, kv[i].key);
        pack_str(e, kv[i].val);
    }
}

/* The cache's copies of the strings its block was made from. */
static int
cache_hit(const struct tc_event_cache *c, const struct tc_event *ev)
{
    const uint8_t *p = c->buf;

    if (!c->valid || c->sev != (int)ev->sev || c->hlen != ev->host.len ||
        c->klen != ev->kind.len || c->slen != ev->source.len ||
        c->rlen != ev->rule.len)
        return 0;
    if (c->hlen > 0 && memcmp(p, ev->host.ptr, c->hlen) != 0)
        return 0;
    p += c->hlen;
    if (c->klen > 0 && memcmp(p, ev->kind.ptr, c->klen) != 0)
        return 0;
    p += c->klen;
    if (c->slen > 0 && memcmp(p, ev->source.ptr, c->slen) != 0)
        return 0;
    p += c->slen;
    return c->rlen == 0 || memcmp(p, ev->rule.ptr, c->rlen) == 0;
}

/*
 * host, kind, src, rule and sev: the middle of an event's map, the
 * same for every line a rule matches in one file. With a cache, its
 * bytes are copied from the last event when they are the same (one
 * write instead of about fifteen packer calls), or packed and kept.
 */
static void
pack_middle(struct enc *e, const struct tc_event *ev, struct tc_event_cache *c)
{
    size_t before = tc_buf_size(e->b), strs, len;

    if (c != NULL && cache_hit(c, ev)) {
        strs = (size_t)c->hlen + c->klen + c->slen + c->rlen;
        enc_write(e, (const char *)c->buf + strs, c->block_len);
        return;
    }
    KEY(e, "host");
    pack_str(e, ev->host);
    KEY(e, "kind");
    pack_str(e, ev->kind);
    if (ev->source.len > 0) {
        KEY(e, "src");
        pack_str(e, ev->source);
    }
    if (ev->rule.len > 0) {
        KEY(e, "rule");
        pack_str(e, ev->rule);
    }
    KEY(e, "sev");
    msgpack_pack_unsigned_int(&e->pk, (unsigned)ev->sev);
    if (c == NULL)
        return;
    c->valid = 0;
    strs = (size_t)ev->host.len + ev->kind.len + ev->source.len + ev->rule.len;
    len = tc_buf_size(e->b) - before;
    if (e->err || strs + len > sizeof(c->buf))
        return;
    if (ev->host.len > 0)
        memcpy(c->buf, ev->host.ptr, ev->host.len);
    if (ev->kind.len > 0)
        memcpy(c->buf + ev->host.len, ev->kind.ptr, ev->kind.len);
    if (ev->source.len > 0)
        memcpy(c->buf + ev->host.len + ev->kind.len, ev->source.ptr,
               ev->source.len);
    if (ev->rule.len > 0)
        memcpy(c->buf + ev->host.len + ev->kind.len + ev->source.len,
               ev->rule.ptr, ev->rule.len);
    memcpy(c->buf + strs, tc_buf_head(e->b) + before, len);
    c->hlen = ev->host.len;
    c->klen = ev->kind.len;
    c->slen = ev->source.len;
    c->rlen = ev->rule.len;
    c->sev = (int)ev->sev;
    c->block_len = (uint32_t)len;
    c->valid = 1;
}

/* Optional keys are left out when empty or at their default. */
static void
pack_event(struct enc *e, const struct tc_event *ev, struct tc_event_cache *c)
{
    uint32_t n = 6; /* v, seq, ts, host, kind, sev */

    n += ev->event_ts != 0;
    n += ev->source.len > 0;
    n += ev->rule.len > 0;
    n += ev->state != -1;
    n += ev->message.len > 0;
    n += ev->fingerprint.len > 0;
    n += ev->count > 1;
    n += ev->nlabels > 0;
    n += ev->nfields > 0;

    msgpack_pack_map(&e->pk, n);
    KEY(e, "v");
    msgpack_pack_uint8(&e->pk, 1);
    KEY(e, "seq");
    msgpack_pack_uint64(&e->pk, ev->seq);
    KEY(e, "ts");
    msgpack_pack_int64(&e->pk, ev->ts);
    if (ev->event_ts != 0) {
        KEY(e, "ets");
        msgpack_pack_int64(&e->pk, ev->event_ts);
    }
    pack_middle(e, ev, c);
    if (ev->state != -1) {
        KEY(e, "state");
        msgpack_pack_int32(&e->pk, ev->state);
    }
    if (ev->message.len > 0) {
        KEY(e, "msg");
        pack_str(e, ev->message);
    }
    if (ev->fingerprint.len > 0) {
        KEY(e, "fp");
        pack_str(e, ev->fingerprint);
    }
    if (ev->count > 1) {
        KEY(e, "count");
        msgpack_pack_uint32(&e->pk, ev->count);
    }
    if (ev->nlabels > 0) {
        KEY(e, "labels");
        pack_kv(e, ev->labels, ev->nlabels);
    }
    if (ev->nfields > 0) {
        KEY(e, "fields");
        pack_kv(e, ev->fields, ev->nfields);
    }
}

int
tc_event_encode(struct tc_buf *out, const struct tc_event *ev)
{
    struct enc e;

    enc_begin(&e, out);
    pack_event(&e, ev, NULL);
    return enc_end(&e);
}

int
tc_event_encode_cached(struct tc_buf *out, const struct tc_event *ev,
                       struct tc_event_cache *c)
{
    struct enc e;
    int rc;

    enc_begin(&e, out);
    pack_event(&e, ev, c);
    if ((rc = enc_end(&e)) < 0)
        c->valid = 0;
    return rc;
}

int
tc_wire_encode_hello(struct tc_buf *out, const struct tc_hello *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_HELLO,
              4 + (m->software.len > 0) + (m->heartbeat_ms != 0));
    KEY(&e, "vmin");
    msgpack_pack_uint32(&e.pk, m->version_min);
    KEY(&e, "vmax");
    msgpack_pack_uint32(&e.pk, m->version_max);
    KEY(&e, "agent");
    pack_str(&e, m->agent);
    KEY(&e, "epoch");
    msgpack_pack_uint64(&e.pk, m->epoch);
    if (m->software.len > 0) {
        KEY(&e, "sw");
        pack_str(&e, m->software);
    }
    if (m->heartbeat_ms != 0) {
        KEY(&e, "hb");
        msgpack_pack_uint64(&e.pk, m->heartbeat_ms);
    }
    return enc_end(&e);
}

int
tc_wire_encode_welcome(struct tc_buf *out, const struct tc_welcome *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_WELCOME, 4);
    KEY(&e, "v");
    msgpack_pack_uint32(&e.pk, m->version);
    KEY(&e, "collector");
    pack_str(&e, m->collector);
    KEY(&e, "hwm");
    msgpack_pack_uint64(&e.pk, m->hwm);
    KEY(&e, "known");
    if (m->epoch_known)
        msgpack_pack_true(&e.pk);
    else
        msgpack_pack_false(&e.pk);
    return enc_end(&e);
}

int
tc_wire_encode_events(struct tc_buf *out, const struct tc_event *ev, uint32_t n)
{
    struct enc e;

    /* The peer's default limit; a bigger batch would be refused. */
    if (n > TC_WIRE_MAX_BATCH)
        return -EMSGSIZE;
    enc_frame(&e, out, TC_F_EVENTS, 1);
    KEY(&e, "events");
    msgpack_pack_array(&e.pk, n);
    for (uint32_t i = 0; i < n && !e.err; i++)
        pack_event(&e, &ev[i], NULL);
    return enc_end(&e);
}

int
tc_wire_encode_events_raw(struct tc_buf *out, const uint8_t *const *enc,
                          const size_t *enc_len, uint32_t n)
{
    struct enc e;

    if (n > TC_WIRE_MAX_BATCH)
        return -EMSGSIZE;
    enc_frame(&e, out, TC_F_EVENTS, 1);
    KEY(&e, "events");
    msgpack_pack_array(&e.pk, n);
    for (uint32_t i = 0; i < n && !e.err; i++)
        enc_write(&e, (const char *)enc[i], enc_len[i]);
    return enc_end(&e);
}

/* Bytes of an EVENTS body before its first event (begin writes them). */
#define TC_EVENTS_HEAD (1 + 1 + 1 + 7 + 3)
_Static_assert(TC_F_EVENTS < 0x80, "the frame type is a positive fixint");

int
tc_wire_events_begin(struct tc_buf *out, struct tc_wire_events_out *w)
{
    static const uint8_t count16[3] = {0xdc, 0, 0};
    struct enc e;

    w->b = out;
    w->start = tc_buf_size(out);
    w->n = 0;
    w->err = 0;
    enc_frame(&e, out, TC_F_EVENTS, 1);
    KEY(&e, "events");
    /* array16: the count is patched in by _end. */
    enc_write(&e, (const char *)count16, sizeof(count16));
    if (e.err) {
        w->err = e.err;
        out->len = out->off + w->start;
    }
    return w->err;
}

int
tc_wire_events_add(struct tc_wire_events_out *w, const uint8_t *ev, size_t len)
{
    int rc;

    if (w->err)
        return w->err;
    if (w->n == TC_WIRE_MAX_BATCH)
        rc = -EMSGSIZE;
    else if ((rc = tc_buf_append(w->b, ev, len)) == 0)
        w->n++;
    if (rc < 0) {
        w->err = rc;
        w->b->len = w->b->off + w->start;
    }
    return rc;
}

int
tc_wire_events_end(struct tc_wire_events_out *w)
{
    struct tc_buf *b = w->b;
    size_t body;
    uint8_t *h;

    if (w->err)
        return w->err;
    body = tc_buf_size(b) - w->start - TC_WIRE_HDR;
    /* The peer would refuse it and we would resend it forever. */
    if (body > TC_WIRE_MAX_FRAME) {
        w->err = -EMSGSIZE;
        b->len = b->off + w->start;
        return w->err;
    }
    h = b->data + b->off + w->start;
    h[0] = (uint8_t)(body >> 24);
    h[1] = (uint8_t)(body >> 16);
    h[2] = (uint8_t)(body >> 8);
    h[3] = (uint8_t)body;
    /* [len][0x92 type {0x81 "events": 0xdc count ...}]: the count's
     * two bytes end the header. */
    h += TC_WIRE_HDR + TC_EVENTS_HEAD - 2;
    h[0] = (uint8_t)(w->n >> 8);
    h[1] = (uint8_t)w->n;
    return 0;
}

void
tc_wire_events_abort(struct tc_wire_events_out *w)
{
    if (!w->err)
        w->b->len = w->b->off + w->start;
    w->err = -ECANCELED;
}

int
tc_wire_encode_ack(struct tc_buf *out, const struct tc_ack *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_ACK, 1);
    KEY(&e, "seq");
    msgpack_pack_uint64(&e.pk, m->seq);
    return enc_end(&e);
}

int
tc_wire_encode_hint(struct tc_buf *out, const struct tc_hint *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_HINT,
              7 + (m->action.len > 0) + (m->nparams > 0) + (m->problem != 0) +
                  (m->issued != 0));
    KEY(&e, "id");
    msgpack_pack_uint64(&e.pk, m->id);
    KEY(&e, "incident");
    pack_str(&e, m->incident);
    KEY(&e, "text");
    pack_str(&e, m->text);
    if (m->action.len > 0) {
        KEY(&e, "action");
        pack_str(&e, m->action);
    }
    if (m->nparams > 0) {
        KEY(&e, "params");
        pack_kv(&e, m->params, m->nparams);
    }
    KEY(&e, "sig");
    msgpack_pack_bin(&e.pk, m->sig.len);
    msgpack_pack_bin_body(&e.pk, m->sig.ptr, m->sig.len);
    KEY(&e, "agent");
    pack_str(&e, m->agent);
    if (m->problem != 0) {
        KEY(&e, "problem");
        msgpack_pack_uint64(&e.pk, m->problem);
    }
    KEY(&e, "source");
    pack_str(&e, m->source);
    KEY(&e, "title");
    pack_str(&e, m->title);
    if (m->issued != 0) {
        KEY(&e, "issued");
        msgpack_pack_int64(&e.pk, m->issued);
    }
    return enc_end(&e);
}

int
tc_wire_encode_hint_ack(struct tc_buf *out, const struct tc_hint_ack *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_HINT_ACK, m->refused.len > 0 ? 2 : 1);
    KEY(&e, "id");
    msgpack_pack_uint64(&e.pk, m->id);
    if (m->refused.len > 0) {
        KEY(&e, "refused");
        pack_str(&e, m->refused);
    }
    return enc_end(&e);
}

int
tc_wire_encode_ping(struct tc_buf *out, const struct tc_ping *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_PING,
              1 + (m->spool_depth != 0) + (m->spool_bytes != 0) +
                  (m->version.len > 0));
    KEY(&e, "ts");
    msgpack_pack_int64(&e.pk, m->ts);
    if (m->spool_depth != 0) {
        KEY(&e, "depth");
        msgpack_pack_uint64(&e.pk, m->spool_depth);
    }
    if (m->spool_bytes != 0) {
        KEY(&e, "bytes");
        msgpack_pack_uint64(&e.pk, m->spool_bytes);
    }
    if (m->version.len > 0) {
        KEY(&e, "sw");
        pack_str(&e, m->version);
    }
    return enc_end(&e);
}

int
tc_wire_encode_pong(struct tc_buf *out, const struct tc_pong *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_PONG, 1);
    KEY(&e, "ts");
    msgpack_pack_int64(&e.pk, m->ts);
    return enc_end(&e);
}

int
tc_wire_encode_bye(struct tc_buf *out, const struct tc_bye *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_BYE, 1);
    KEY(&e, "reason");
    pack_str(&e, m->reason);
    return enc_end(&e);
}
