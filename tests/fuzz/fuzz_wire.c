/*
 * fuzz_wire: libFuzzer target for the wire decoder.
 *
 * The input is treated three ways: as a byte stream of length-prefixed
 * frames (tc_wire_next + tc_wire_decode), as one bare frame body, and as
 * a stored batch blob (tc_event_decode_array), each with the default and
 * with tight limits. Whatever decodes is encoded again and decoded once
 * more; the two decodes must agree field by field, or we abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct tc_wire_limits tight = {
    .max_frame = 512,
    .max_str = 16,
    .max_elems = 8,
    .max_depth = 5,
    .max_batch = 4,
};

static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_wire: round trip mismatch: %s\n", what);
        abort();
    }
}

static int
str_same(struct tc_str a, struct tc_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int
kv_same(const struct tc_kv *a, uint32_t na, const struct tc_kv *b, uint32_t nb)
{
    if (na != nb)
        return 0;
    for (uint32_t i = 0; i < na; i++)
        if (!str_same(a[i].key, b[i].key) || !str_same(a[i].val, b[i].val))
            return 0;
    return 1;
}

static int
event_same(const struct tc_event *a, const struct tc_event *b)
{
    return a->seq == b->seq && a->ts == b->ts && a->event_ts == b->event_ts &&
           str_same(a->host, b->host) && str_same(a->kind, b->kind) &&
           str_same(a->source, b->source) && str_same(a->rule, b->rule) &&
           a->sev == b->sev && a->state == b->state &&
           str_same(a->message, b->message) &&
           str_same(a->fingerprint, b->fingerprint) && a->count == b->count &&
           kv_same(a->labels, a->nlabels, b->labels, b->nlabels) &&
           kv_same(a->fields, a->nfields, b->fields, b->nfields);
}

static int
events_same(const struct tc_events *a, const struct tc_events *b)
{
    if (a->n != b->n)
        return 0;
    for (uint32_t i = 0; i < a->n; i++)
        if (!event_same(&a->ev[i], &b->ev[i]))
            return 0;
    return 1;
}

static int
frame_same(const struct tc_frame *a, const struct tc_frame *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case TC_F_HELLO:
        return a->u.hello.version_min == b->u.hello.version_min &&
               a->u.hello.version_max == b->u.hello.version_max &&
               str_same(a->u.hello.agent, b->u.hello.agent) &&
               a->u.hello.epoch == b->u.hello.epoch &&
               str_same(a->u.hello.software, b->u.hello.software);
    case TC_F_WELCOME:
        return a->u.welcome.version == b->u.welcome.version &&
               str_same(a->u.welcome.collector, b->u.welcome.collector) &&
               a->u.welcome.hwm == b->u.welcome.hwm &&
               a->u.welcome.epoch_known == b->u.welcome.epoch_known;
    case TC_F_EVENTS:
        return events_same(&a->u.events, &b->u.events);
    case TC_F_ACK:
        return a->u.ack.seq == b->u.ack.seq;
    case TC_F_HINT:
        return a->u.hint.id == b->u.hint.id &&
               str_same(a->u.hint.incident, b->u.hint.incident) &&
               str_same(a->u.hint.text, b->u.hint.text) &&
               str_same(a->u.hint.action, b->u.hint.action) &&
               kv_same(a->u.hint.params, a->u.hint.nparams, b->u.hint.params,
                       b->u.hint.nparams) &&
               str_same(a->u.hint.sig, b->u.hint.sig) &&
               str_same(a->u.hint.agent, b->u.hint.agent) &&
               a->u.hint.problem == b->u.hint.problem &&
               str_same(a->u.hint.source, b->u.hint.source) &&
               str_same(a->u.hint.title, b->u.hint.title) &&
               a->u.hint.issued == b->u.hint.issued;
    case TC_F_HINT_ACK:
        return a->u.hint_ack.id == b->u.hint_ack.id;
    case TC_F_PING:
        return a->u.ping.ts == b->u.ping.ts &&
               a->u.ping.spool_depth == b->u.ping.spool_depth &&
               a->u.ping.spool_bytes == b->u.ping.spool_bytes &&
               str_same(a->u.ping.version, b->u.ping.version);
    case TC_F_PONG:
        return a->u.pong.ts == b->u.pong.ts;
    case TC_F_BYE:
        return str_same(a->u.bye.reason, b->u.bye.reason);
    }
    return 0;
}

static int
encode(struct tc_buf *b, const struct tc_frame *f)
{
    switch (f->type) {
    case TC_F_HELLO:
        return tc_wire_encode_hello(b, &f->u.hello);
    case TC_F_WELCOME:
        return tc_wire_encode_welcome(b, &f->u.welcome);
    case TC_F_EVENTS:
        return tc_wire_encode_events(b, f->u.events.ev, f->u.events.n);
    case TC_F_ACK:
        return tc_wire_encode_ack(b, &f->u.ack);
    case TC_F_HINT:
        return tc_wire_encode_hint(b, &f->u.hint);
    case TC_F_HINT_ACK:
        return tc_wire_encode_hint_ack(b, &f->u.hint_ack);
    case TC_F_PING:
        return tc_wire_encode_ping(b, &f->u.ping);
    case TC_F_PONG:
        return tc_wire_encode_pong(b, &f->u.pong);
    case TC_F_BYE:
        return tc_wire_encode_bye(b, &f->u.bye);
    }
    return -1;
}

/* Encode f, decode the result, compare. */
static void
roundtrip(const struct tc_frame *f)
{
    struct tc_buf b;
    struct tc_frame g;
    const uint8_t *body;
    size_t blen;
    const char *err;
    long n;

    tc_buf_init(&b, 64u << 20);
    tc_frame_init(&g);
    check(encode(&b, f) == 0, "encode failed");
    n = tc_wire_next(tc_buf_head(&b), tc_buf_size(&b), TC_WIRE_MAX_FRAME, &body,
                     &blen);
    check(n == (long)tc_buf_size(&b), "encoded frame length");
    check(tc_wire_decode(body, blen, NULL, &g, &err) == 0, "re-decode");
    check(frame_same(f, &g), "decoded fields differ");
    tc_frame_close(&g);
    tc_buf_close(&b);
}

/*
 * An EVENTS frame's events know their own bytes (the collector stores
 * them as they are): inside the body, back to back, and each one decodes
 * on its own to the same event.
 */
/* Encoding with a cache of the shared middle gives the same bytes. */
static void
cached_same(const struct tc_events *evs)
{
    struct tc_event_cache c;
    struct tc_buf a, b;

    memset(&c, 0, sizeof(c));
    tc_buf_init(&a, 64u << 20);
    tc_buf_init(&b, 64u << 20);
    for (uint32_t i = 0; i < evs->n; i++) {
        tc_buf_reset(&a);
        tc_buf_reset(&b);
        check(tc_event_encode(&a, &evs->ev[i]) ==
                  tc_event_encode_cached(&b, &evs->ev[i], &c),
              "cached encode: another result");
        check(tc_buf_size(&a) == tc_buf_size(&b) &&
                  memcmp(tc_buf_head(&a), tc_buf_head(&b), tc_buf_size(&a)) ==
                      0,
              "cached encode: other bytes");
    }
    tc_buf_close(&a);
    tc_buf_close(&b);
}

static void
raw_spans(const struct tc_frame *f, const uint8_t *p, size_t n)
{
    const struct tc_events *evs = &f->u.events;

    for (uint32_t i = 0; i < evs->n; i++) {
        const struct tc_event *e = &evs->ev[i];
        struct tc_frame g;
        struct tc_event one;

        check(e->raw != NULL, "event without raw bytes");
        check(e->raw >= p && e->raw_len <= (size_t)(p + n - e->raw),
              "raw bytes outside the body");
        if (i > 0)
            check(e->raw == evs->ev[i - 1].raw + evs->ev[i - 1].raw_len,
                  "raw bytes not back to back");
        tc_frame_init(&g);
        check(tc_event_decode(e->raw, e->raw_len, NULL, &g, &one, NULL) == 0,
              "raw bytes do not decode");
        check(one.seq == e->seq && one.ts == e->ts &&
                  one.message.len == e->message.len,
              "raw bytes decode to another event");
        tc_frame_close(&g);
    }
}

/*
 * Events are decoded straight from the bytes; msgpack-c's object tree
 * is the reference (wire.h): same result, same error, same events and
 * the same raw bytes, for every input.
 */
static void
same_as_ref(int rc, const char *err, const struct tc_events *evs, int rrc,
            const char *rerr, const struct tc_events *revs)
{
    check(rc == rrc, "direct and reference decoders: another result");
    if (rc < 0) {
        check(err != NULL && rerr != NULL && strcmp(err, rerr) == 0,
              "direct and reference decoders: another error");
        return;
    }
    check(events_same(evs, revs), "direct and reference decoders: events");
    for (uint32_t i = 0; i < evs->n; i++)
        check(evs->ev[i].raw == revs->ev[i].raw &&
                  evs->ev[i].raw_len == revs->ev[i].raw_len,
              "direct and reference decoders: raw bytes");
}

static void
one_body(const uint8_t *p, size_t n, const struct tc_wire_limits *lim)
{
    struct tc_frame f, g;
    const char *err = NULL, *rerr = NULL;
    int rc, rrc;

    tc_frame_init(&f);
    tc_frame_init(&g);
    rc = tc_wire_decode(p, n, lim, &f, &err);
    rrc = tc_wire_decode_ref(p, n, lim, &g, &rerr);
    if (rc == 0 && rrc == 0 && f.type == TC_F_EVENTS)
        check(g.type == TC_F_EVENTS, "direct and reference decoders: type");
    if (rc < 0 || rrc < 0 || f.type == TC_F_EVENTS)
        same_as_ref(rc, err, &f.u.events, rrc, rerr, &g.u.events);
    else
        check(frame_same(&f, &g), "direct and reference decoders: frame");
    if (rc == 0 && f.type == TC_F_EVENTS) {
        raw_spans(&f, p, n);
        cached_same(&f.u.events);
    }
    if (rc == 0)
        roundtrip(&f);
    else
        check(err != NULL, "error without a reason");
    tc_frame_close(&f);
    tc_frame_close(&g);
}

/* A stored batch blob and a single stored event, both ways. */
static void
one_stored(const uint8_t *data, size_t size, const struct tc_wire_limits *lim)
{
    struct tc_frame f, g;
    struct tc_event ev, rev;
    const char *err = NULL, *rerr = NULL;
    int rc, rrc;

    tc_frame_init(&f);
    tc_frame_init(&g);
    rc = tc_event_decode_array(data, size, lim, &f, &err);
    rrc = tc_event_decode_array_ref(data, size, lim, &g, &rerr);
    same_as_ref(rc, err, &f.u.events, rrc, rerr, &g.u.events);
    if (rc == 0)
        roundtrip(&f);
    err = rerr = NULL;
    rc = tc_event_decode(data, size, lim, &f, &ev, &err);
    rrc = tc_event_decode_ref(data, size, lim, &g, &rev, &rerr);
    {
        struct tc_events one = {1, &ev}, rone = {1, &rev};
        same_as_ref(rc, err, &one, rrc, rerr, &rone);
    }
    if (rc == 0) {
        struct tc_frame r = {.type = TC_F_EVENTS};
        r.u.events.n = 1;
        r.u.events.ev = &ev;
        roundtrip(&r);
    }
    tc_frame_close(&f);
    tc_frame_close(&g);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *body;
    size_t blen, off = 0;
    long n;

    /* A stream of frames, as read from a TLS session. */
    while ((n = tc_wire_next(data + off, size - off, TC_WIRE_MAX_FRAME, &body,
                             &blen)) > 0) {
        one_body(body, blen, NULL);
        one_body(body, blen, &tight);
        off += (size_t)n;
    }

    /* The whole input as one body. */
    one_body(data, size, NULL);
    one_body(data, size, &tight);

    one_stored(data, size, &tc_wire_default_limits);
    one_stored(data, size, &tight);
    return 0;
}
