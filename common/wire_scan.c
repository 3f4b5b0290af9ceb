/*
 * wire_scan: the bounds pre-scan. Every decode walks the msgpack headers
 * here first, so that nothing msgpack-c allocates is sized by a count
 * the peer chose beyond our limits, and so that the direct decoder may
 * read bytes without checking them again.
 */
#include "wire_int.h"

#include <errno.h>
#include <stdlib.h>

enum { SC_SCALAR, SC_ARRAY, SC_MAP };

/* One msgpack token's header, as told by its first byte. */
struct tok {
    int kind;      /* SC_SCALAR, SC_ARRAY or SC_MAP */
    int isstr;     /* str or bin: n is the payload length */
    unsigned lenw; /* width of the length/count field that follows */
    size_t skip;   /* payload bytes of a fixed-size scalar */
    uint64_t n;    /* entries or length, when lenw is 0 */
};

/*
 * Classify the token that starts with byte b. 0, or -1 for the
 * reserved byte 0xc1, -2 for the ext types (which we do not accept).
 */
static inline int
tok_head(uint8_t b, struct tok *t)
{
    t->kind = SC_SCALAR;
    t->isstr = 0;
    t->lenw = 0;
    t->skip = 0;
    t->n = 0;
    if (b <= 0x7f || b >= 0xe0) {
        /* positive or negative fixint */
    } else if (b <= 0x8f) {
        t->kind = SC_MAP;
        t->n = b & 0x0f;
    } else if (b <= 0x9f) {
        t->kind = SC_ARRAY;
        t->n = b & 0x0f;
    } else if (b <= 0xbf) {
        t->isstr = 1;
        t->n = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0: /* nil */
        case 0xc2: /* false */
        case 0xc3: /* true */
            break;
        case 0xc4: /* bin 8/16/32 */
        case 0xd9: /* str 8/16/32 */
            t->isstr = 1;
            t->lenw = 1;
            break;
        case 0xc5:
        case 0xda:
            t->isstr = 1;
            t->lenw = 2;
            break;
        case 0xc6:
        case 0xdb:
            t->isstr = 1;
            t->lenw = 4;
            break;
        case 0xcc: /* uint8 */
        case 0xd0: /* int8 */
            t->skip = 1;
            break;
        case 0xcd:
        case 0xd1:
            t->skip = 2;
            break;
        case 0xca: /* float32 */
        case 0xce:
        case 0xd2:
            t->skip = 4;
            break;
        case 0xcb: /* float64 */
        case 0xcf:
        case 0xd3:
            t->skip = 8;
            break;
        case 0xdc:
            t->kind = SC_ARRAY;
            t->lenw = 2;
            break;
        case 0xdd:
            t->kind = SC_ARRAY;
            t->lenw = 4;
            break;
        case 0xde:
            t->kind = SC_MAP;
            t->lenw = 2;
            break;
        case 0xdf:
            t->kind = SC_MAP;
            t->lenw = 4;
            break;
        case 0xc1:
            return -1;
        default: /* 0xc7-0xc9, 0xd4-0xd8 */
            return -2;
        }
    }
    return 0;
}

/*
 * Walk exactly one msgpack object at p without allocating. On success
 * *used is the number of bytes it occupies. Counts are checked against
 * the bytes that remain (every element takes at least one byte), so
 * msgpack-c's up-front array allocations are bounded by the input size.
 */
int
wire_prescan(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
             uint32_t kv_depth, uint64_t *kv_entries, size_t *used,
             uint64_t *zone_need, const char **errp)
{
    uint64_t kv = 0;   /* entries of the maps met at depth kv_depth */
    uint64_t need = 0; /* bytes msgpack_unpack will take from the zone */
    uint64_t owed[SCAN_STACK]; /* elements still due, per open container */
    uint32_t maxd = lim->max_depth < SCAN_STACK ? lim->max_depth : SCAN_STACK;
    uint32_t depth = 0;
    size_t i = 0;

    for (;;) {
        struct tok t;
        uint64_t n;    /* container entries or str/bin length */
        size_t skip;   /* payload bytes after the header */
        unsigned lenw; /* width of a length/count field, bytes */
        int kind, isstr, rc;

        if (i >= len)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
        if ((rc = tok_head(p[i++], &t)) == -1)
            return wire_fail(errp, -EBADMSG, "reserved msgpack byte 0xc1");
        if (rc < 0)
            return wire_fail(errp, -EBADMSG, "msgpack ext types not allowed");
        n = t.n;
        skip = t.skip;
        lenw = t.lenw;
        kind = t.kind;
        isstr = t.isstr;
        if (lenw) {
            if (len - i < lenw)
                return wire_fail(errp, -EBADMSG, "truncated msgpack");
            n = load_be(p + i, lenw);
            i += lenw;
        }
        if (isstr) {
            if (n > lim->max_str)
                return wire_fail(errp, -EMSGSIZE, "string over max_str");
            skip = (size_t)n;
        }
        if (len - i < skip)
            return wire_fail(errp, -EBADMSG, "truncated msgpack");
        i += skip;

        if (kind != SC_SCALAR) {
            if (depth + 1 > maxd)
                return wire_fail(errp, -EMSGSIZE, "nesting over max_depth");
            if (n > lim->max_elems)
                return wire_fail(errp, -EMSGSIZE, "container over max_elems");
            need += n * (kind == SC_MAP ? sizeof(msgpack_object_kv)
                                        : sizeof(msgpack_object));
            if (kind == SC_MAP && depth == kv_depth)
                kv += n;
            if (kind == SC_MAP)
                n *= 2;
            if (n > len - i)
                return wire_fail(errp, -EBADMSG,
                                 "container count exceeds remaining bytes");
            if (n > 0) {
                owed[depth++] = n;
                continue;
            }
        }
        /* One element is complete: close every container it finishes. */
        while (depth > 0 && --owed[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    *used = i;
    *zone_need = need;
    if (kv_entries != NULL)
        *kv_entries = kv;
    return 0;
}

/*
 * The size of the one msgpack object at p, in bytes prescan accepted
 * already: only headers are read and only the bounds are checked, so a
 * wrong p gives 0, never a read past len. A third of what prescan costs
 * (no limits, no depth stack), which matters because every event of a
 * received batch is walked once more to find its own bytes.
 */
size_t
wire_skip_obj(const uint8_t *p, size_t len)
{
    uint64_t pending = 1; /* objects still to walk */
    size_t i = 0;

    while (pending > 0) {
        struct tok t;

        if (i >= len || tok_head(p[i++], &t) < 0)
            return 0;
        pending--;
        if (t.lenw) {
            if (len - i < t.lenw)
                return 0;
            t.n = load_be(p + i, t.lenw);
            i += t.lenw;
        }
        if (t.isstr)
            t.skip = (size_t)t.n;
        if (len - i < t.skip)
            return 0;
        i += t.skip;
        if (t.kind == SC_MAP)
            pending += 2 * t.n;
        else if (t.kind == SC_ARRAY)
            pending += t.n;
        if (pending > len - i)
            return 0; /* every element takes a byte at least */
    }
    return i;
}

/*
 * Reset f, pre-scan [p, p+len) and unpack it into f->zone. Trailing
 * bytes after the single top-level object are an error.
 */
int
wire_unpack(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
            struct tc_frame *f, msgpack_object *root, const char **errp)
{
    size_t used = 0, off = 0;
    uint64_t need = 0;
    int rc;

    wire_frame_reset(f);
    if (len > lim->max_frame)
        return wire_fail(errp, -EMSGSIZE, "frame over max_frame");
    if ((rc = wire_prescan(p, len, lim, 0, NULL, &used, &need, errp)) < 0)
        return rc;
    if (used != len)
        return wire_fail(errp, -EBADMSG, "trailing bytes after msgpack object");
    /* Slack for the zone's pointer alignment. */
    need += 64;
    if (need > f->zone.chunk_size && need <= ZONE_CHUNK_MAX) {
        size_t sz = f->zone.chunk_size;
        while (sz < need)
            sz *= 2;
        msgpack_zone_destroy(&f->zone);
        if (!msgpack_zone_init(&f->zone, sz))
            abort();
    }
    switch (msgpack_unpack((const char *)p, len, &off, &f->zone, root)) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return wire_fail(errp, -ENOMEM, "out of memory unpacking msgpack");
    default:
        /* The pre-scan accepted it, so this is a disagreement we log. */
        return wire_fail(errp, -EBADMSG, "msgpack parse error");
    }
    return 0;
}
