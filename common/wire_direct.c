/*
 * wire_direct: events decoded straight from the bytes that the pre-scan
 * accepted, in one pass, by the rules of the reference mappers
 * (wire_ref.c); tc_wire_decode sends every other frame to the
 * reference decoder.
 */
#include "wire_int.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Events are nearly all the collector decodes, twice each (the EVENTS
 * frame, then the stored batch for the incident engine), and building
 * msgpack-c's object tree for them and walking it cost more than all
 * the rest it does with them (callgrind: 2,000 of 2,600 instructions
 * an event). Once the pre-scan has accepted the bytes (limits,
 * truncation, nesting, nothing trailing), events are read here in one
 * pass instead, by the rules of decode_map and get_value. The
 * msgpack-c path stays as the reference (tc_wire_decode_ref & co.),
 * used for every other frame, and the fuzzer checks that both give the
 * same result, or the same error, for every input.
 */

/* One token, typed as msgpack-c would type it. */
struct dtok {
    msgpack_object_type type;
    uint64_t u;    /* POSITIVE_INTEGER */
    int64_t i;     /* NEGATIVE_INTEGER */
    const char *p; /* STR, BIN: the payload */
    uint32_t n;    /* STR, BIN: bytes; ARRAY, MAP: entries */
};

/* A read position in bytes the pre-scan accepted. */
struct dcur {
    const uint8_t *p;
    size_t len, i;
};

/*
 * Read the token at the cursor: a scalar whole, a str or bin as its
 * payload, an array or map as its header (the entries follow). Only the
 * bounds are checked, so that an unscanned peek is safe too: 0 or -1.
 * Only the fields of the token's type are set.
 */
static inline int
dnext(struct dcur *c, struct dtok *t)
{
    const uint8_t *p = c->p;
    uint64_t v = 0;
    unsigned w = 0;
    uint8_t b;

    if (c->i >= c->len)
        return -1;
    b = p[c->i++];
    /* The usual tokens of an event first: fixstr, fixint, fixmap. */
    if (b >= 0xa0 && b <= 0xbf) {
        v = b & 0x1f;
        goto str;
    }
    if (b <= 0x7f) {
        t->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        t->u = b;
        return 0;
    }
    if (b <= 0x8f) {
        t->type = MSGPACK_OBJECT_MAP;
        t->n = b & 0x0f;
        return 0;
    }
    if (b <= 0x9f) {
        t->type = MSGPACK_OBJECT_ARRAY;
        t->n = b & 0x0f;
        return 0;
    }
    if (b >= 0xe0) {
        t->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        t->i = (int8_t)b;
        return 0;
    }
    switch (b) {
    case 0xc0:
        t->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        t->type = MSGPACK_OBJECT_BOOLEAN;
        t->u = b == 0xc3;
        return 0;
    case 0xc4: /* bin, str 8 */
    case 0xd9:
    case 0xcc: /* uint8, int8 */
    case 0xd0:
        w = 1;
        break;
    case 0xc5:
    case 0xda:
    case 0xcd:
    case 0xd1:
    case 0xdc: /* array 16, map 16 */
    case 0xde:
        w = 2;
        break;
    case 0xc6:
    case 0xdb:
    case 0xce:
    case 0xd2:
    case 0xca: /* float32 */
    case 0xdd:
    case 0xdf:
        w = 4;
        break;
    case 0xcf:
    case 0xd3:
    case 0xcb: /* float64 */
        w = 8;
        break;
    default: /* 0xc1 and the ext types: the pre-scan refuses them */
        return -1;
    }
    if (c->len - c->i < w)
        return -1;
    v = load_be64(p + c->i, w);
    c->i += w;
    switch (b) {
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if (c->len - c->i < v)
            return -1;
        t->type = MSGPACK_OBJECT_BIN;
        t->p = (const char *)p + c->i;
        t->n = (uint32_t)v;
        c->i += (size_t)v;
        return 0;
    case 0xd9:
    case 0xda:
    case 0xdb:
        goto str;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        t->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        t->u = v;
        return 0;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        /* msgpack-c types a signed int by its value, not its format. */
        int64_t x = b == 0xd0   ? (int8_t)v
                    : b == 0xd1 ? (int16_t)v
                    : b == 0xd2 ? (int32_t)v
                                : (int64_t)v;
        if (x < 0) {
            t->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
            t->i = x;
        } else {
            t->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            t->u = (uint64_t)x;
        }
        return 0;
    }
    case 0xca:
        t->type = MSGPACK_OBJECT_FLOAT32;
        return 0;
    case 0xcb:
        t->type = MSGPACK_OBJECT_FLOAT64;
        return 0;
    case 0xdc:
    case 0xdd:
        t->type = MSGPACK_OBJECT_ARRAY;
        t->n = (uint32_t)v;
        return 0;
    default: /* 0xde, 0xdf */
        t->type = MSGPACK_OBJECT_MAP;
        t->n = (uint32_t)v;
        return 0;
    }
str:
    if (c->len - c->i < v)
        return -1;
    t->type = MSGPACK_OBJECT_STR;
    t->p = (const char *)p + c->i;
    t->n = (uint32_t)v;
    c->i += (size_t)v;
    return 0;
}

/* Step over the object at the cursor (pre-scanned bytes). */
static int
dskip(struct dcur *c)
{
    size_t used = wire_skip_obj(c->p + c->i, c->len - c->i);

    if (used == 0)
        return -1;
    c->i += used;
    return 0;
}

/* get_kv for the map whose header t is; its entries are read. */
static bool
dget_kv(struct dcur *c, const struct dtok *t, struct kvpool *pool,
        struct tc_kv **out, uint32_t *nout)
{
    uint32_t n;

    if (t->type != MSGPACK_OBJECT_MAP)
        return false;
    n = t->n;
    if (n > pool->left) /* cannot happen: the pre-scan sized the pool */
        return false;
    for (uint32_t i = 0; i < n; i++) {
        struct dtok k, v;

        if (dnext(c, &k) < 0 || k.type != MSGPACK_OBJECT_STR ||
            dnext(c, &v) < 0 || v.type != MSGPACK_OBJECT_STR)
            return false;
        pool->next[i].key.ptr = k.p;
        pool->next[i].key.len = k.n;
        pool->next[i].val.ptr = v.p;
        pool->next[i].val.len = v.n;
    }
    *out = n ? pool->next : NULL;
    *nout = n;
    pool->next += n;
    pool->left -= n;
    return true;
}

/* get_value for the token t (a map's entries are read). */
static bool
dget_value(struct dcur *c, const struct wkey *w, const struct dtok *t,
           char *base, struct kvpool *pool)
{
    void *dst = base + w->off;

    switch (wire_put_int(w->type, dst, t->type, t->u, t->i)) {
    case 1:
        return true;
    case 0:
        return false;
    default:
        break;
    }
    switch (w->type) {
    case V_STR:
        if (t->type != MSGPACK_OBJECT_STR)
            return false;
        ((struct tc_str *)dst)->ptr = t->p;
        ((struct tc_str *)dst)->len = t->n;
        return true;
    case V_BIN:
        if (t->type != MSGPACK_OBJECT_BIN)
            return false;
        ((struct tc_str *)dst)->ptr = t->p;
        ((struct tc_str *)dst)->len = t->n;
        return true;
    case V_BOOL:
        if (t->type != MSGPACK_OBJECT_BOOLEAN)
            return false;
        *(int *)dst = t->u ? 1 : 0;
        return true;
    case V_KV:
        return dget_kv(c, t, pool, (struct tc_kv **)dst,
                       (uint32_t *)(base + w->off2));
    }
    return false;
}

/* decode_event for the map at the cursor. */
static int
ddecode_event(struct dcur *c, struct tc_event *ev, struct kvpool *pool,
              const char **errp)
{
    uint32_t seen = 0, hint = 0;
    const uint32_t nkeys = WIRE_NEVENT_KEYS;
    struct dtok m;

    memset(ev, 0, sizeof(*ev));
    ev->state = -1;
    ev->count = 1;
    if (dnext(c, &m) < 0)
        return wire_fail(errp, -EBADMSG, "truncated msgpack");
    if (m.type != MSGPACK_OBJECT_MAP)
        return wire_fail(errp, -EBADMSG, "event is not a map");
    for (uint32_t i = 0; i < m.n; i++) {
        struct dtok k, v;
        int x;

        if (dnext(c, &k) < 0)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
        if (k.type != MSGPACK_OBJECT_STR)
            return wire_fail(errp, -EBADMSG, "map key is not a string");
        x = find_key_str(wire_event_keys, nkeys, k.p, k.n, &hint);
        if (x < 0) {
            if (dskip(c) < 0)
                return wire_fail(errp, -EBADMSG, "truncated msgpack");
            continue;
        }
        if (seen & (1u << x))
            return wire_fail(errp, -EBADMSG, "duplicate map key");
        seen |= 1u << x;
        if (dnext(c, &v) < 0)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
        if (wire_event_keys[x].type == V_SCHEMA &&
            v.type == MSGPACK_OBJECT_POSITIVE_INTEGER && v.u != 1)
            return wire_fail(errp, -EPROTO, "unsupported event schema version");
        if (!dget_value(c, &wire_event_keys[x], &v, (char *)ev, pool))
            return wire_fail(errp, -EBADMSG, wire_event_keys[x].bad);
    }
    for (uint32_t x = 0; x < nkeys; x++)
        if (wire_event_keys[x].req && !(seen & (1u << x)))
            return wire_fail(errp, -EBADMSG, wire_event_keys[x].miss);
    return 0;
}

/*
 * decode_events for the array at the cursor; nkv bounds the label and
 * field entries (the pre-scan's count). raw: give each event its bytes.
 */
static int
ddecode_events(struct dcur *c, const struct tc_wire_limits *lim,
               struct tc_frame *f, uint64_t nkv, int raw, const char **errp)
{
    struct kvpool pool;
    struct tc_event *ev;
    struct dtok a;
    uint64_t prev = 0;
    int rc;

    if (dnext(c, &a) < 0)
        return wire_fail(errp, -EBADMSG, "truncated msgpack");
    if (a.type != MSGPACK_OBJECT_ARRAY)
        return wire_fail(errp, -EBADMSG, "events is not an array");
    if (a.n > lim->max_batch)
        return wire_fail(errp, -EMSGSIZE, "batch over max_batch");
    if (a.n == 0) {
        f->u.events.n = 0;
        f->u.events.ev = NULL;
        return 0;
    }
    /* Both counts are bounded by the pre-scanned input size. */
    f->mem = tc_xmalloc(a.n * sizeof(*ev) + nkv * sizeof(struct tc_kv));
    ev = f->mem;
    pool.next = (struct tc_kv *)(ev + a.n);
    pool.left = nkv;
    for (uint32_t i = 0; i < a.n; i++) {
        size_t at = c->i;

        if ((rc = ddecode_event(c, &ev[i], &pool, errp)) < 0)
            return rc;
        if (ev[i].seq <= prev)
            return wire_fail(errp, -EBADMSG, "event seq not increasing");
        prev = ev[i].seq;
        if (raw) {
            ev[i].raw = c->p + at;
            ev[i].raw_len = c->i - at;
        }
    }
    f->u.events.n = a.n;
    f->u.events.ev = ev;
    return 0;
}

/*
 * Reset f and pre-scan all of [p, p+len), as unpack does, counting the
 * entries of the maps at depth kv_depth (where an event's labels and
 * fields are) into *nkv.
 */
static int
dprepare(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
         struct tc_frame *f, uint32_t kv_depth, uint64_t *nkv,
         const char **errp)
{
    size_t used = 0;
    uint64_t need;
    int rc;

    wire_frame_reset(f);
    if (len > lim->max_frame)
        return wire_fail(errp, -EMSGSIZE, "frame over max_frame");
    if ((rc = wire_prescan(p, len, lim, kv_depth, nkv, &used, &need, errp)) < 0)
        return rc;
    if (used != len)
        return wire_fail(errp, -EBADMSG, "trailing bytes after msgpack object");
    return 0;
}

/* Is body an EVENTS frame ([3, {...}])? Only the head is looked at. */
static int
is_events_frame(const uint8_t *body, size_t len)
{
    struct dcur c = {body, len, 0};
    struct dtok t;

    return dnext(&c, &t) == 0 && t.type == MSGPACK_OBJECT_ARRAY && t.n == 2 &&
           dnext(&c, &t) == 0 && t.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
           t.u == TC_F_EVENTS;
}

/* decode_body's EVENTS case, for a body is_events_frame accepted. */
static int
ddecode_events_frame(const uint8_t *body, size_t len,
                     const struct tc_wire_limits *lim, struct tc_frame *f,
                     const char **errp)
{
    struct dcur c = {body, len, 0};
    struct dtok t;
    size_t at = 0;
    uint64_t nkv = 0;
    int rc;

    /* [type, {"events": [event...]}]: event maps sit at depth 3. */
    if ((rc = dprepare(body, len, lim, f, 4, &nkv, errp)) < 0)
        return rc;
    if (dnext(&c, &t) < 0 || dnext(&c, &t) < 0 || dnext(&c, &t) < 0)
        return wire_fail(errp, -EBADMSG, "truncated msgpack");
    if (t.type != MSGPACK_OBJECT_MAP)
        return wire_fail(errp, -EBADMSG, "payload is not a map");
    /* Every key is checked before the events are, as decode_body does. */
    for (uint32_t i = 0; i < t.n; i++) {
        struct dtok k;

        if (dnext(&c, &k) < 0)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
        if (k.type != MSGPACK_OBJECT_STR)
            return wire_fail(errp, -EBADMSG, "map key is not a string");
        if (k.n == 6 && memcmp(k.p, "events", 6) == 0) {
            if (at != 0)
                return wire_fail(errp, -EBADMSG, "duplicate map key");
            at = c.i;
        }
        /* The value after the last key need not be walked. */
        if (i + 1 < t.n && dskip(&c) < 0)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
    }
    if (at == 0)
        return wire_fail(errp, -EBADMSG, "missing key \"events\"");
    c.i = at;
    if ((rc = ddecode_events(&c, lim, f, nkv, 1, errp)) < 0)
        return rc;
    f->type = TC_F_EVENTS;
    return 0;
}

int
tc_wire_decode(const uint8_t *body, size_t len,
               const struct tc_wire_limits *lim, struct tc_frame *out,
               const char **errp)
{
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    if (!is_events_frame(body, len))
        return tc_wire_decode_ref(body, len, lim, out, errp);
    if ((rc = ddecode_events_frame(body, len, lim, out, errp)) < 0)
        wire_frame_discard(out);
    return rc;
}

int
tc_event_decode(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
                struct tc_frame *f, struct tc_event *out, const char **errp)
{
    struct dcur c = {p, len, 0};
    struct kvpool pool = {NULL, 0};
    uint64_t nkv = 0;
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    memset(out, 0, sizeof(*out));
    if ((rc = dprepare(p, len, lim, f, 1, &nkv, errp)) < 0)
        goto out;
    if (nkv > 0) {
        f->mem = tc_xmalloc(nkv * sizeof(struct tc_kv));
        pool.next = f->mem;
        pool.left = nkv;
    }
    if ((rc = ddecode_event(&c, out, &pool, errp)) == 0) {
        out->raw = p;
        out->raw_len = len;
    }
out:
    if (rc < 0) {
        wire_frame_discard(f);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int
tc_event_decode_array(const uint8_t *p, size_t len,
                      const struct tc_wire_limits *lim, struct tc_frame *f,
                      const char **errp)
{
    struct dcur c = {p, len, 0};
    uint64_t nkv = 0;
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    /* No raw spans: stored events are read here, not forwarded. */
    if ((rc = dprepare(p, len, lim, f, 2, &nkv, errp)) == 0 &&
        (rc = ddecode_events(&c, lim, f, nkv, 0, errp)) == 0)
        f->type = TC_F_EVENTS;
    if (rc < 0)
        wire_frame_discard(f);
    return rc;
}
