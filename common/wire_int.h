/*
 * wire_int: what the parts of the protocol codec share (wire.c,
 * wire_scan.c, wire_keys.c, wire_ref.c, wire_direct.c, wire_encode.c).
 * Private to common/wire*.c: nothing else includes it.
 */
#ifndef TC_WIRE_INT_H
#define TC_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "wire.h"

/*
 * msgpack-c's unpacker has a fixed container stack of this many levels
 * and fails with a misleading NOMEM beyond it, so a caller's max_depth
 * is clamped here; the pre-scan's own stack has the same size.
 */
#define SCAN_STACK 32

/*
 * msgpack_zone_clear keeps only the zone's first chunk, so a decode that
 * outgrows it mallocs and frees chunks every time, and the page faults
 * of that churn cost more than the decoding itself. The first chunk
 * therefore starts small (a session that only sees PINGs stays small)
 * and is regrown to what the largest recent frame needed, up to
 * ZONE_CHUNK_MAX (about a 4000-event batch); beyond that the churn is
 * amortised over a big batch anyway.
 */
#define ZONE_CHUNK (32u << 10)
#define ZONE_CHUNK_MAX (4u << 20)

/* Big-endian unsigned of n bytes (n <= 4). */
static inline uint32_t
load_be(const uint8_t *p, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The same for up to 8 bytes (64-bit ints). */
static inline uint64_t
load_be64(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* *errp = msg (when errp is not NULL); returns rc. */
int wire_fail(const char **errp, int rc, const char *msg);

/*
 * Forget the previous decode but keep the zone's first chunk (a closed
 * or zeroed frame is initialised again).
 */
void wire_frame_reset(struct tc_frame *f);
/* A failed decode must not leave pointers that look usable. */
void wire_frame_discard(struct tc_frame *f);

/*
 * The bounds pre-scan (wire_scan.c). wire_prescan walks exactly one
 * msgpack object at p without allocating and checks lim; *used is its
 * size. kv_depth/kv_entries count the entries of the maps met at that
 * depth (the label and field maps of events), zone_need the bytes
 * msgpack_unpack will take. wire_skip_obj: the size of the object at p
 * (0 if it is not whole), for bytes wire_prescan accepted already.
 * wire_unpack: reset f, pre-scan, and unpack into f->zone; trailing
 * bytes are an error.
 */
int wire_prescan(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
                 uint32_t kv_depth, uint64_t *kv_entries, size_t *used,
                 uint64_t *zone_need, const char **errp);
size_t wire_skip_obj(const uint8_t *p, size_t len);
int wire_unpack(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
                struct tc_frame *f, msgpack_object *root, const char **errp);

/* The key tables (wire_keys.c). */
enum vtype {
    V_U32,    /* uint32_t */
    V_U64,    /* uint64_t */
    V_I64,    /* int64_t, positive or negative */
    V_STR,    /* struct tc_str from a msgpack str */
    V_BIN,    /* struct tc_str from a msgpack bin */
    V_BOOL,   /* int 0/1 */
    V_KV,     /* struct tc_kv * at off, uint32_t count at off2 */
    V_SEQ,    /* uint64_t >= 1 */
    V_SEV,    /* enum tc_severity, 0..4 */
    V_STATE,  /* int32_t, -1..3 */
    V_COUNT,  /* uint32_t >= 1 */
    V_SCHEMA, /* must be 1; not stored */
    V_HB,     /* uint64_t ms: 0 or TC_WIRE_HB_MIN..TC_WIRE_HB_MAX */
};

struct wkey {
    const char *name;
    uint8_t len;     /* strlen(name) */
    uint8_t type;    /* enum vtype */
    uint8_t req;     /* required key */
    uint16_t off;    /* offset of the destination in the struct */
    uint16_t off2;   /* V_KV: offset of the count */
    const char *bad; /* error for a value of the wrong type or range */
    const char *miss;
};

/*
 * Store an integer value of key type vtype at dst after its type's
 * range check (the one place both decoders take it from). mtype is the
 * msgpack type of the value (POSITIVE_INTEGER: u holds it,
 * NEGATIVE_INTEGER: i holds it). 1: stored (V_SCHEMA: checked), 0: the
 * wrong type or out of range, -1: vtype is not an integer type.
 */
static inline int
wire_put_int(uint8_t vtype, void *dst, msgpack_object_type mtype, uint64_t u,
             int64_t i)
{
    int pos = mtype == MSGPACK_OBJECT_POSITIVE_INTEGER;
    int neg = mtype == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    int s_ok = neg || (pos && u <= (uint64_t)INT64_MAX);
    int64_t s = neg ? i : (int64_t)(pos && s_ok ? u : 0);

    switch (vtype) {
    case V_U32:
        if (!pos || u > UINT32_MAX)
            return 0;
        *(uint32_t *)dst = (uint32_t)u;
        return 1;
    case V_U64:
        if (!pos)
            return 0;
        *(uint64_t *)dst = u;
        return 1;
    case V_SEQ:
        if (!pos || u < 1)
            return 0;
        *(uint64_t *)dst = u;
        return 1;
    case V_HB:
        if (!pos || (u != 0 && (u < TC_WIRE_HB_MIN || u > TC_WIRE_HB_MAX)))
            return 0;
        *(uint64_t *)dst = u;
        return 1;
    case V_COUNT:
        if (!pos || u < 1 || u > UINT32_MAX)
            return 0;
        *(uint32_t *)dst = (uint32_t)u;
        return 1;
    case V_I64:
        if (!s_ok)
            return 0;
        *(int64_t *)dst = s;
        return 1;
    case V_SEV:
        if (!pos || u > TC_SEV_CRITICAL)
            return 0;
        *(enum tc_severity *)dst = (enum tc_severity)u;
        return 1;
    case V_STATE:
        if (!s_ok || s < -1 || s > 3)
            return 0;
        *(int32_t *)dst = (int32_t)s;
        return 1;
    case V_SCHEMA:
        return pos && u == 1;
    default:
        return -1;
    }
}

#define NKEYS(t) ((uint32_t)(sizeof(t) / sizeof((t)[0])))

/* Event schema v1; see docs/protocol.md "Event". */
#define WIRE_NEVENT_KEYS 15
extern const struct wkey wire_event_keys[WIRE_NEVENT_KEYS];

struct frame_desc {
    const struct wkey *keys;
    uint32_t nkeys;
};

/* Indexed by frame type; EVENTS has its own path. */
extern const struct frame_desc wire_frame_descs[TC_F_BYE + 1];

/* Key/value entries handed out from the decode's single allocation. */
struct kvpool {
    struct tc_kv *next;
    size_t left;
};

/*
 * The index of key k in keys, -1 if unknown, -2 if k is not a string.
 * Our encoders write keys in the tables' order, so the search starts
 * after the key found last (*hint, 0 for a new map) and wraps: a known
 * key is then found at the first or second try instead of after half
 * the table (this was a tenth of the collector's decoding).
 */
static inline int
find_key_str(const struct wkey *keys, uint32_t nkeys, const char *name,
             uint32_t len, uint32_t *hint)
{
    uint32_t i = *hint < nkeys ? *hint : 0;

    for (uint32_t tries = 0; tries < nkeys; tries++) {
        if (keys[i].len == len) {
            /* Keys are a few bytes: a call to memcmp costs more. */
            uint32_t j = 0;

            while (j < len && keys[i].name[j] == name[j])
                j++;
            if (j == len) {
                *hint = i + 1;
                return (int)i;
            }
        }
        if (++i == nkeys)
            i = 0;
    }
    return -1;
}

#endif
