/*
 * wire: protocol v1 encoders and the frame decoder (wire.h is the
 * contract, docs/protocol.md the normative spec, docs/internals/wire.md
 * the design notes).
 *
 * Decoding runs in three steps. A bounds pre-scan walks the msgpack
 * headers itself, so that nothing msgpack-c allocates is sized by a
 * count the peer chose beyond our limits; msgpack_unpack then builds the
 * object tree in the frame's zone, with strings referencing the input
 * bytes; finally table-driven mappers check every known key's type and
 * fill the C structs. Event and key/value arrays live in one malloc per
 * decode (f->mem).
 */
#include "wire.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct tc_wire_limits tc_wire_default_limits = {
    .max_frame = TC_WIRE_MAX_FRAME,
    .max_str = TC_WIRE_MAX_STR,
    .max_elems = TC_WIRE_MAX_ELEMS,
    .max_depth = TC_WIRE_MAX_DEPTH,
    .max_batch = TC_WIRE_MAX_BATCH,
};

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

static const char *const sev_names[] = {"ok", "info", "warning", "error",
                                        "critical"};

const char *
tc_severity_name(enum tc_severity s)
{
    if ((unsigned)s >= sizeof(sev_names) / sizeof(sev_names[0]))
        return "invalid";
    return sev_names[s];
}

int
tc_severity_parse(const char *s, enum tc_severity *out)
{
    for (size_t i = 0; i < sizeof(sev_names) / sizeof(sev_names[0]); i++) {
        /* Config files are written by people: accept "Warning" too. */
        if (strcasecmp(s, sev_names[i]) == 0) {
            *out = (enum tc_severity)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *
tc_frame_type_name(int type)
{
    static const char *const names[] = {
        NULL,   "HELLO",    "WELCOME", "EVENTS", "ACK",
        "HINT", "HINT_ACK", "PING",    "PONG",   "BYE",
    };
    if (type < TC_F_HELLO || type > TC_F_BYE)
        return "UNKNOWN";
    return names[type];
}

/* ------------------------------------------------------------------ */
/* Framing                                                             */

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

long
tc_wire_next(const uint8_t *data, size_t len, uint32_t max_frame,
             const uint8_t **body, size_t *body_len)
{
    uint32_t n;

    if (len < TC_WIRE_HDR)
        return 0;
    n = load_be(data, 4);
    /*
     * A zero length can never be a valid body (the smallest is a few
     * bytes), and treating it as "need more" would stall the session.
     * It is malformed, not too large: callers say so differently.
     */
    if (n == 0)
        return -EBADMSG;
    if (n > max_frame)
        return -EMSGSIZE;
#if LONG_MAX < 0x100000004
    /* A 32-bit long cannot return every length the header can carry. */
    if (n > LONG_MAX - TC_WIRE_HDR)
        return -EMSGSIZE;
#endif
    if (len - TC_WIRE_HDR < n)
        return 0;
    *body = data + TC_WIRE_HDR;
    *body_len = n;
    return (long)n + TC_WIRE_HDR;
}

/* ------------------------------------------------------------------ */
/* Frame memory                                                        */

void
tc_frame_init(struct tc_frame *f)
{
    memset(f, 0, sizeof(*f));
    if (!msgpack_zone_init(&f->zone, ZONE_CHUNK))
        abort(); /* allocation failure aborts (STYLE.md) */
    f->inited = 1;
}

void
tc_frame_close(struct tc_frame *f)
{
    if (!f->inited)
        return;
    msgpack_zone_destroy(&f->zone);
    free(f->mem);
    memset(f, 0, sizeof(*f));
}

/*
 * Forget the previous decode but keep the zone's first chunk. A frame
 * that was closed (or zeroed) is initialised again, which is what makes
 * close-then-reuse work.
 */
static void
frame_reset(struct tc_frame *f)
{
    if (!f->inited) {
        tc_frame_init(f);
        return;
    }
    msgpack_zone_clear(&f->zone);
    free(f->mem);
    f->mem = NULL;
    f->type = 0;
    memset(&f->u, 0, sizeof(f->u));
}

/* A failed decode must not leave pointers that look usable. */
static void
frame_discard(struct tc_frame *f)
{
    free(f->mem);
    f->mem = NULL;
    f->type = 0;
    memset(&f->u, 0, sizeof(f->u));
}

static int
fail(const char **errp, int rc, const char *msg)
{
    if (errp)
        *errp = msg;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Pre-scan                                                            */

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
static int
prescan(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
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
            return fail(errp, -EBADMSG, "truncated msgpack");
        if ((rc = tok_head(p[i++], &t)) == -1)
            return fail(errp, -EBADMSG, "reserved msgpack byte 0xc1");
        if (rc < 0)
            return fail(errp, -EBADMSG, "msgpack ext types not allowed");
        n = t.n;
        skip = t.skip;
        lenw = t.lenw;
        kind = t.kind;
        isstr = t.isstr;
        if (lenw) {
            if (len - i < lenw)
                return fail(errp, -EBADMSG, "truncated msgpack");
            n = load_be(p + i, lenw);
            i += lenw;
        }
        if (isstr) {
            if (n > lim->max_str)
                return fail(errp, -EMSGSIZE, "string over max_str");
            skip = (size_t)n;
        }
        if (len - i < skip)
            return fail(errp, -EBADMSG, "truncated msgpack");
        i += skip;

        if (kind != SC_SCALAR) {
            if (depth + 1 > maxd)
                return fail(errp, -EMSGSIZE, "nesting over max_depth");
            if (n > lim->max_elems)
                return fail(errp, -EMSGSIZE, "container over max_elems");
            need += n * (kind == SC_MAP ? sizeof(msgpack_object_kv)
                                        : sizeof(msgpack_object));
            if (kind == SC_MAP && depth == kv_depth)
                kv += n;
            if (kind == SC_MAP)
                n *= 2;
            if (n > len - i)
                return fail(errp, -EBADMSG,
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
static size_t
skip_obj(const uint8_t *p, size_t len)
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
static int
unpack(const uint8_t *p, size_t len, const struct tc_wire_limits *lim,
       struct tc_frame *f, msgpack_object *root, const char **errp)
{
    size_t used = 0, off = 0;
    uint64_t need = 0;
    int rc;

    frame_reset(f);
    if (len > lim->max_frame)
        return fail(errp, -EMSGSIZE, "frame over max_frame");
    if ((rc = prescan(p, len, lim, 0, NULL, &used, &need, errp)) < 0)
        return rc;
    if (used != len)
        return fail(errp, -EBADMSG, "trailing bytes after msgpack object");
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
        return fail(errp, -ENOMEM, "out of memory unpacking msgpack");
    default:
        /* The pre-scan accepted it, so this is a disagreement we log. */
        return fail(errp, -EBADMSG, "msgpack parse error");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mapping msgpack objects to structs                                  */

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

#define WK(nm, ty, rq, st, fld)                                                \
    {                                                                          \
        nm, sizeof(nm) - 1, ty, rq, offsetof(struct st, fld), 0,               \
            "bad value for key \"" nm "\"", "missing key \"" nm "\""           \
    }
#define WKV(nm, st, fld, cnt)                                                  \
    {                                                                          \
        nm, sizeof(nm) - 1, V_KV, 0, offsetof(struct st, fld),                 \
            offsetof(struct st, cnt),                                          \
            "bad value for key \"" nm "\" (want map str->str)",                \
            "missing key \"" nm "\""                                           \
    }

/* Event schema v1; see docs/protocol.md "Event". */
static const struct wkey event_keys[] = {
    {"v", 1, V_SCHEMA, 1, 0, 0, "bad value for key \"v\"", "missing key \"v\""},
    WK("seq", V_SEQ, 1, tc_event, seq),
    WK("ts", V_I64, 1, tc_event, ts),
    WK("ets", V_I64, 0, tc_event, event_ts),
    WK("host", V_STR, 1, tc_event, host),
    WK("kind", V_STR, 1, tc_event, kind),
    WK("src", V_STR, 0, tc_event, source),
    WK("rule", V_STR, 0, tc_event, rule),
    WK("sev", V_SEV, 1, tc_event, sev),
    WK("state", V_STATE, 0, tc_event, state),
    WK("msg", V_STR, 0, tc_event, message),
    WK("fp", V_STR, 0, tc_event, fingerprint),
    WK("count", V_COUNT, 0, tc_event, count),
    WKV("labels", tc_event, labels, nlabels),
    WKV("fields", tc_event, fields, nfields),
};

static const struct wkey hello_keys[] = {
    WK("vmin", V_U32, 1, tc_hello, version_min),
    WK("vmax", V_U32, 1, tc_hello, version_max),
    WK("agent", V_STR, 1, tc_hello, agent),
    WK("epoch", V_U64, 1, tc_hello, epoch),
    WK("sw", V_STR, 0, tc_hello, software),
    /*
     * Bounded: the collector multiplies it into its silence deadline,
     * and 2^62 ms made an agent "silent for 0s" every second.
     */
    {"hb", 2, V_HB, 0, offsetof(struct tc_hello, heartbeat_ms), 0,
     "heartbeat \"hb\" out of range (0, or 1000 to 86400000 ms)",
     "missing key \"hb\""},
};

static const struct wkey welcome_keys[] = {
    WK("v", V_U32, 1, tc_welcome, version),
    WK("collector", V_STR, 1, tc_welcome, collector),
    WK("hwm", V_U64, 1, tc_welcome, hwm),
    WK("known", V_BOOL, 1, tc_welcome, epoch_known),
};

static const struct wkey ack_keys[] = {
    WK("seq", V_U64, 1, tc_ack, seq),
};

static const struct wkey hint_keys[] = {
    WK("id", V_U64, 1, tc_hint, id),
    WK("incident", V_STR, 1, tc_hint, incident),
    WK("text", V_STR, 1, tc_hint, text),
    WK("action", V_STR, 0, tc_hint, action),
    WKV("params", tc_hint, params, nparams),
    WK("sig", V_BIN, 1, tc_hint, sig),
};

static const struct wkey hint_ack_keys[] = {
    WK("id", V_U64, 1, tc_hint_ack, id),
};

static const struct wkey ping_keys[] = {
    WK("ts", V_I64, 1, tc_ping, ts),
    WK("depth", V_U64, 0, tc_ping, spool_depth),
    WK("bytes", V_U64, 0, tc_ping, spool_bytes),
    WK("sw", V_STR, 0, tc_ping, version),
};

static const struct wkey pong_keys[] = {
    WK("ts", V_I64, 1, tc_pong, ts),
};

static const struct wkey bye_keys[] = {
    WK("reason", V_STR, 1, tc_bye, reason),
};

#define NKEYS(t) ((uint32_t)(sizeof(t) / sizeof((t)[0])))

struct frame_desc {
    const struct wkey *keys;
    uint32_t nkeys;
};

/* Indexed by frame type; EVENTS has its own path. */
static const struct frame_desc frame_descs[] = {
    [TC_F_HELLO] = {hello_keys, NKEYS(hello_keys)},
    [TC_F_WELCOME] = {welcome_keys, NKEYS(welcome_keys)},
    [TC_F_ACK] = {ack_keys, NKEYS(ack_keys)},
    [TC_F_HINT] = {hint_keys, NKEYS(hint_keys)},
    [TC_F_HINT_ACK] = {hint_ack_keys, NKEYS(hint_ack_keys)},
    [TC_F_PING] = {ping_keys, NKEYS(ping_keys)},
    [TC_F_PONG] = {pong_keys, NKEYS(pong_keys)},
    [TC_F_BYE] = {bye_keys, NKEYS(bye_keys)},
};

/* decode_map tracks the keys it has seen in a 32-bit mask. */
_Static_assert(NKEYS(event_keys) <= 32, "key table too large for mask");

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

static inline int
find_key(const struct wkey *keys, uint32_t nkeys, const msgpack_object *k,
         uint32_t *hint)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return -2;
    return find_key_str(keys, nkeys, k->via.str.ptr, k->via.str.size, hint);
}

/*
 * Upper bound of key/value entries that decoding map m with keys will
 * need (duplicates are counted and rejected later).
 */
static size_t
count_kv(const msgpack_object *m, const struct wkey *keys, uint32_t nkeys)
{
    uint32_t hint = 0;
    size_t n = 0;

    if (m->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        int k;

        /* Only map values can be label or field maps: look no further
         * for the others. */
        if (kv->val.type != MSGPACK_OBJECT_MAP)
            continue;
        k = find_key(keys, nkeys, &kv->key, &hint);
        if (k >= 0 && keys[k].type == V_KV)
            n += kv->val.via.map.size;
    }
    return n;
}

static inline bool
get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

static inline bool
get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

static bool
get_kv(const msgpack_object *o, struct kvpool *pool, struct tc_kv **out,
       uint32_t *nout)
{
    uint32_t n;

    if (o->type != MSGPACK_OBJECT_MAP)
        return false;
    n = o->via.map.size;
    if (n > pool->left) /* cannot happen: count_kv sized the pool */
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR ||
            kv->val.type != MSGPACK_OBJECT_STR)
            return false;
        pool->next[i].key.ptr = kv->key.via.str.ptr;
        pool->next[i].key.len = kv->key.via.str.size;
        pool->next[i].val.ptr = kv->val.via.str.ptr;
        pool->next[i].val.len = kv->val.via.str.size;
    }
    *out = n ? pool->next : NULL;
    *nout = n;
    pool->next += n;
    pool->left -= n;
    return true;
}

/* Store one value of type w->type at base + w->off. */
static bool
get_value(const struct wkey *w, const msgpack_object *o, char *base,
          struct kvpool *pool)
{
    void *dst = base + w->off;
    uint64_t u;
    int64_t s;

    switch (w->type) {
    case V_U32:
        if (!get_u64(o, &u) || u > UINT32_MAX)
            return false;
        *(uint32_t *)dst = (uint32_t)u;
        return true;
    case V_U64:
        return get_u64(o, (uint64_t *)dst);
    case V_SEQ:
        if (!get_u64(o, &u) || u < 1)
            return false;
        *(uint64_t *)dst = u;
        return true;
    case V_HB:
        if (!get_u64(o, &u) ||
            (u != 0 && (u < TC_WIRE_HB_MIN || u > TC_WIRE_HB_MAX)))
            return false;
        *(uint64_t *)dst = u;
        return true;
    case V_COUNT:
        if (!get_u64(o, &u) || u < 1 || u > UINT32_MAX)
            return false;
        *(uint32_t *)dst = (uint32_t)u;
        return true;
    case V_I64:
        return get_i64(o, (int64_t *)dst);
    case V_SEV:
        if (!get_u64(o, &u) || u > TC_SEV_CRITICAL)
            return false;
        *(enum tc_severity *)dst = (enum tc_severity)u;
        return true;
    case V_STATE:
        if (!get_i64(o, &s) || s < -1 || s > 3)
            return false;
        *(int32_t *)dst = (int32_t)s;
        return true;
    case V_SCHEMA:
        return get_u64(o, &u) && u == 1;
    case V_STR:
        if (o->type != MSGPACK_OBJECT_STR)
            return false;
        ((struct tc_str *)dst)->ptr = o->via.str.ptr;
        ((struct tc_str *)dst)->len = o->via.str.size;
        return true;
    case V_BIN:
        if (o->type != MSGPACK_OBJECT_BIN)
            return false;
        ((struct tc_str *)dst)->ptr = o->via.bin.ptr;
        ((struct tc_str *)dst)->len = o->via.bin.size;
        return true;
    case V_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return false;
        *(int *)dst = o->via.boolean ? 1 : 0;
        return true;
    case V_KV:
        return get_kv(o, pool, (struct tc_kv **)dst,
                      (uint32_t *)(base + w->off2));
    }
    return false;
}

/*
 * Fill base from map m by the key table. Unknown keys are skipped
 * (forward compatibility); a known key twice is an error, because two
 * readers could otherwise disagree on which one counts.
 */
static int
decode_map(const msgpack_object *m, const struct wkey *keys, uint32_t nkeys,
           void *base, struct kvpool *pool, const char **errp)
{
    uint32_t seen = 0, hint = 0;

    if (m->type != MSGPACK_OBJECT_MAP)
        return fail(errp, -EBADMSG, "payload is not a map");
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        int k = find_key(keys, nkeys, &kv->key, &hint);

        if (k == -2)
            return fail(errp, -EBADMSG, "map key is not a string");
        if (k < 0)
            continue;
        if (seen & (1u << k))
            return fail(errp, -EBADMSG, "duplicate map key");
        seen |= 1u << k;
        /* A well-formed but unknown schema is not garbage: say so. */
        if (keys[k].type == V_SCHEMA &&
            kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            kv->val.via.u64 != 1)
            return fail(errp, -EPROTO, "unsupported event schema version");
        if (!get_value(&keys[k], &kv->val, base, pool))
            return fail(errp, -EBADMSG, keys[k].bad);
    }
    for (uint32_t k = 0; k < nkeys; k++)
        if (keys[k].req && !(seen & (1u << k)))
            return fail(errp, -EBADMSG, keys[k].miss);
    return 0;
}

static int
decode_event(const msgpack_object *o, struct tc_event *ev, struct kvpool *pool,
             const char **errp)
{
    memset(ev, 0, sizeof(*ev));
    ev->state = -1;
    ev->count = 1;
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(errp, -EBADMSG, "event is not a map");
    return decode_map(o, event_keys, NKEYS(event_keys), ev, pool, errp);
}

/*
 * Point each event's raw at its map inside the array that starts at
 * [at, end): the pre-scan already accepted these bytes, so walking the
 * headers again cannot fail unless the caller got `at` wrong, in which
 * case the events are simply left without raw bytes.
 */
static void
events_raw(struct tc_event *ev, uint32_t n, const uint8_t *at,
           const uint8_t *end)
{
    size_t i = 0, len = (size_t)(end - at), used;
    uint32_t cnt;

    if (len < 1)
        return;
    if (at[0] >= 0x90 && at[0] <= 0x9f) {
        cnt = at[0] & 0x0f;
        i = 1;
    } else if (at[0] == 0xdc && len >= 3) {
        cnt = load_be(at + 1, 2);
        i = 3;
    } else if (at[0] == 0xdd && len >= 5) {
        cnt = load_be(at + 1, 4);
        i = 5;
    } else {
        return;
    }
    if (cnt != n)
        return;
    for (uint32_t k = 0; k < n; k++) {
        if ((used = skip_obj(at + i, len - i)) == 0) {
            for (uint32_t j = 0; j < k; j++)
                ev[j].raw = NULL, ev[j].raw_len = 0;
            return;
        }
        ev[k].raw = at + i;
        ev[k].raw_len = used;
        i += used;
    }
}

/*
 * Decode an array of event maps into f->u.events: one allocation holds
 * the events and then every label/field entry. [at, end) are the bytes
 * of the array, for the events' raw spans (at NULL: none).
 */
static int
decode_events(const msgpack_object *arr, const struct tc_wire_limits *lim,
              struct tc_frame *f, const uint8_t *at, const uint8_t *end,
              const char **errp)
{
    struct kvpool pool;
    struct tc_event *ev;
    uint64_t prev = 0;
    size_t nkv = 0;
    uint32_t n;
    int rc;

    if (arr->type != MSGPACK_OBJECT_ARRAY)
        return fail(errp, -EBADMSG, "events is not an array");
    n = arr->via.array.size;
    if (n > lim->max_batch)
        return fail(errp, -EMSGSIZE, "batch over max_batch");
    if (n == 0) {
        f->u.events.n = 0;
        f->u.events.ev = NULL;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        nkv += count_kv(&arr->via.array.ptr[i], event_keys, NKEYS(event_keys));
    /* Both counts are bounded by the pre-scanned input size. */
    f->mem = tc_xmalloc(n * sizeof(*ev) + nkv * sizeof(struct tc_kv));
    ev = f->mem;
    pool.next = (struct tc_kv *)(ev + n);
    pool.left = nkv;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = decode_event(&arr->via.array.ptr[i], &ev[i], &pool, errp)) <
            0)
            return rc;
        if (ev[i].seq <= prev)
            return fail(errp, -EBADMSG, "event seq not increasing");
        prev = ev[i].seq;
    }
    if (at != NULL)
        events_raw(ev, n, at, end);
    f->u.events.n = n;
    f->u.events.ev = ev;
    return 0;
}

static int
decode_body(const msgpack_object *root, const struct tc_wire_limits *lim,
            struct tc_frame *f, const uint8_t *body, size_t len,
            const char **errp)
{
    const msgpack_object *pl;
    const struct frame_desc *d;
    struct kvpool pool = {NULL, 0};
    uint64_t type;
    size_t nkv;
    int rc;

    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 2)
        return fail(errp, -EBADMSG, "body is not [type, payload]");
    if (!get_u64(&root->via.array.ptr[0], &type))
        return fail(errp, -EBADMSG, "frame type is not an unsigned int");
    pl = &root->via.array.ptr[1];
    if (type < TC_F_HELLO || type > TC_F_BYE)
        return fail(errp, -EPROTO, "unknown frame type");
    if (pl->type != MSGPACK_OBJECT_MAP)
        return fail(errp, -EBADMSG, "payload is not a map");

    if (type == TC_F_EVENTS) {
        const msgpack_object *evs = NULL;
        const uint8_t *at = NULL;
        for (uint32_t i = 0; i < pl->via.map.size; i++) {
            const msgpack_object_kv *kv = &pl->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                return fail(errp, -EBADMSG, "map key is not a string");
            if (kv->key.via.str.size == 6 &&
                memcmp(kv->key.via.str.ptr, "events", 6) == 0) {
                if (evs != NULL)
                    return fail(errp, -EBADMSG, "duplicate map key");
                evs = &kv->val;
                /*
                 * Strings reference the body, and a map's value follows
                 * its key: the array starts right after "events".
                 */
                at = (const uint8_t *)kv->key.via.str.ptr + 6;
            }
        }
        if (evs == NULL)
            return fail(errp, -EBADMSG, "missing key \"events\"");
        if (at <= body || at >= body + len)
            at = NULL;
        if ((rc = decode_events(evs, lim, f, at, body + len, errp)) < 0)
            return rc;
        f->type = TC_F_EVENTS;
        return 0;
    }

    d = &frame_descs[type];
    nkv = count_kv(pl, d->keys, d->nkeys);
    if (nkv > 0) {
        f->mem = tc_xmalloc(nkv * sizeof(struct tc_kv));
        pool.next = f->mem;
        pool.left = nkv;
    }
    if ((rc = decode_map(pl, d->keys, d->nkeys, &f->u, &pool, errp)) < 0)
        return rc;
    if (type == TC_F_HELLO && (f->u.hello.version_min < 1 ||
                               f->u.hello.version_min > f->u.hello.version_max))
        return fail(errp, -EBADMSG, "bad version range in HELLO");
    f->type = (enum tc_frame_type)type;
    return 0;
}

int
tc_wire_decode_ref(const uint8_t *body, size_t len,
                   const struct tc_wire_limits *lim, struct tc_frame *out,
                   const char **errp)
{
    msgpack_object root;
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    if ((rc = unpack(body, len, lim, out, &root, errp)) == 0)
        rc = decode_body(&root, lim, out, body, len, errp);
    if (rc < 0)
        frame_discard(out);
    return rc;
}

int
tc_event_decode_ref(const uint8_t *p, size_t len,
                    const struct tc_wire_limits *lim, struct tc_frame *f,
                    struct tc_event *out, const char **errp)
{
    msgpack_object root;
    struct kvpool pool = {NULL, 0};
    size_t nkv;
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    memset(out, 0, sizeof(*out));
    if ((rc = unpack(p, len, lim, f, &root, errp)) < 0)
        goto out;
    nkv = count_kv(&root, event_keys, NKEYS(event_keys));
    if (nkv > 0) {
        f->mem = tc_xmalloc(nkv * sizeof(struct tc_kv));
        pool.next = f->mem;
        pool.left = nkv;
    }
    if ((rc = decode_event(&root, out, &pool, errp)) == 0) {
        out->raw = p;
        out->raw_len = len;
    }
out:
    if (rc < 0) {
        frame_discard(f);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int
tc_event_decode_array_ref(const uint8_t *p, size_t len,
                          const struct tc_wire_limits *lim, struct tc_frame *f,
                          const char **errp)
{
    msgpack_object root;
    int rc;

    if (lim == NULL)
        lim = &tc_wire_default_limits;
    /* No raw spans: stored events are read here, not forwarded. */
    if ((rc = unpack(p, len, lim, f, &root, errp)) == 0 &&
        (rc = decode_events(&root, lim, f, NULL, NULL, errp)) == 0)
        f->type = TC_F_EVENTS;
    if (rc < 0)
        frame_discard(f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Events, decoded straight from the bytes                             */

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
    size_t used = skip_obj(c->p + c->i, c->len - c->i);

    if (used == 0)
        return -1;
    c->i += used;
    return 0;
}

static inline bool
dget_u64(const struct dtok *t, uint64_t *v)
{
    if (t->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = t->u;
    return true;
}

static inline bool
dget_i64(const struct dtok *t, int64_t *v)
{
    if (t->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = t->i;
        return true;
    }
    if (t->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        t->u <= (uint64_t)INT64_MAX) {
        *v = (int64_t)t->u;
        return true;
    }
    return false;
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
    uint64_t u;
    int64_t s;

    switch (w->type) {
    case V_U32:
        if (!dget_u64(t, &u) || u > UINT32_MAX)
            return false;
        *(uint32_t *)dst = (uint32_t)u;
        return true;
    case V_U64:
        return dget_u64(t, (uint64_t *)dst);
    case V_SEQ:
        if (!dget_u64(t, &u) || u < 1)
            return false;
        *(uint64_t *)dst = u;
        return true;
    case V_HB:
        if (!dget_u64(t, &u) ||
            (u != 0 && (u < TC_WIRE_HB_MIN || u > TC_WIRE_HB_MAX)))
            return false;
        *(uint64_t *)dst = u;
        return true;
    case V_COUNT:
        if (!dget_u64(t, &u) || u < 1 || u > UINT32_MAX)
            return false;
        *(uint32_t *)dst = (uint32_t)u;
        return true;
    case V_I64:
        return dget_i64(t, (int64_t *)dst);
    case V_SEV:
        if (!dget_u64(t, &u) || u > TC_SEV_CRITICAL)
            return false;
        *(enum tc_severity *)dst = (enum tc_severity)u;
        return true;
    case V_STATE:
        if (!dget_i64(t, &s) || s < -1 || s > 3)
            return false;
        *(int32_t *)dst = (int32_t)s;
        return true;
    case V_SCHEMA:
        return dget_u64(t, &u) && u == 1;
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
    const uint32_t nkeys = NKEYS(event_keys);
    struct dtok m;

    memset(ev, 0, sizeof(*ev));
    ev->state = -1;
    ev->count = 1;
    if (dnext(c, &m) < 0)
        return fail(errp, -EBADMSG, "truncated msgpack");
    if (m.type != MSGPACK_OBJECT_MAP)
        return fail(errp, -EBADMSG, "event is not a map");
    for (uint32_t i = 0; i < m.n; i++) {
        struct dtok k, v;
        int x;

        if (dnext(c, &k) < 0)
            return fail(errp, -EBADMSG, "truncated msgpack");
        if (k.type != MSGPACK_OBJECT_STR)
            return fail(errp, -EBADMSG, "map key is not a string");
        x = find_key_str(event_keys, nkeys, k.p, k.n, &hint);
        if (x < 0) {
            if (dskip(c) < 0)
                return fail(errp, -EBADMSG, "truncated msgpack");
            continue;
        }
        if (seen & (1u << x))
            return fail(errp, -EBADMSG, "duplicate map key");
        seen |= 1u << x;
        if (dnext(c, &v) < 0)
            return fail(errp, -EBADMSG, "truncated msgpack");
        if (event_keys[x].type == V_SCHEMA &&
            v.type == MSGPACK_OBJECT_POSITIVE_INTEGER && v.u != 1)
            return fail(errp, -EPROTO, "unsupported event schema version");
        if (!dget_value(c, &event_keys[x], &v, (char *)ev, pool))
            return fail(errp, -EBADMSG, event_keys[x].bad);
    }
    for (uint32_t x = 0; x < nkeys; x++)
        if (event_keys[x].req && !(seen & (1u << x)))
            return fail(errp, -EBADMSG, event_keys[x].miss);
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
        return fail(errp, -EBADMSG, "truncated msgpack");
    if (a.type != MSGPACK_OBJECT_ARRAY)
        return fail(errp, -EBADMSG, "events is not an array");
    if (a.n > lim->max_batch)
        return fail(errp, -EMSGSIZE, "batch over max_batch");
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
            return fail(errp, -EBADMSG, "event seq not increasing");
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

    frame_reset(f);
    if (len > lim->max_frame)
        return fail(errp, -EMSGSIZE, "frame over max_frame");
    if ((rc = prescan(p, len, lim, kv_depth, nkv, &used, &need, errp)) < 0)
        return rc;
    if (used != len)
        return fail(errp, -EBADMSG, "trailing bytes after msgpack object");
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
        return fail(errp, -EBADMSG, "truncated msgpack");
    if (t.type != MSGPACK_OBJECT_MAP)
        return fail(errp, -EBADMSG, "payload is not a map");
    /* Every key is checked before the events are, as decode_body does. */
    for (uint32_t i = 0; i < t.n; i++) {
        struct dtok k;

        if (dnext(&c, &k) < 0)
            return fail(errp, -EBADMSG, "truncated msgpack");
        if (k.type != MSGPACK_OBJECT_STR)
            return fail(errp, -EBADMSG, "map key is not a string");
        if (k.n == 6 && memcmp(k.p, "events", 6) == 0) {
            if (at != 0)
                return fail(errp, -EBADMSG, "duplicate map key");
            at = c.i;
        }
        /* The value after the last key need not be walked. */
        if (i + 1 < t.n && dskip(&c) < 0)
            return fail(errp, -EBADMSG, "truncated msgpack");
    }
    if (at == 0)
        return fail(errp, -EBADMSG, "missing key \"events\"");
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
        frame_discard(out);
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
        frame_discard(f);
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
        frame_discard(f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Encoders                                                            */

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

    enc_frame(&e, out, TC_F_HINT, 4 + (m->action.len > 0) + (m->nparams > 0));
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
    return enc_end(&e);
}

int
tc_wire_encode_hint_ack(struct tc_buf *out, const struct tc_hint_ack *m)
{
    struct enc e;

    enc_frame(&e, out, TC_F_HINT_ACK, 1);
    KEY(&e, "id");
    msgpack_pack_uint64(&e.pk, m->id);
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
