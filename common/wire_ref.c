/*
 * wire_ref: the reference decoder. msgpack_unpack builds the object tree
 * in the frame's zone (strings referencing the input bytes), then
 * table-driven mappers (wire_keys.c) check every known key's type and
 * fill the C structs. Event and key/value arrays live in one malloc per
 * decode (f->mem). Every frame but EVENTS is decoded here; EVENTS and
 * stored events go through wire_direct.c, which the fuzzer checks
 * against this one.
 */
#include "wire_int.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

    switch (wire_put_int(w->type, dst, o->type, o->via.u64, o->via.i64)) {
    case 1:
        return true;
    case 0:
        return false;
    default:
        break;
    }
    switch (w->type) {
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
        return wire_fail(errp, -EBADMSG, "payload is not a map");
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        int k = find_key(keys, nkeys, &kv->key, &hint);

        if (k == -2)
            return wire_fail(errp, -EBADMSG, "map key is not a string");
        if (k < 0)
            continue;
        if (seen & (1u << k))
            return wire_fail(errp, -EBADMSG, "duplicate map key");
        seen |= 1u << k;
        /* A well-formed but unknown schema is not garbage: say so. */
        if (keys[k].type == V_SCHEMA &&
            kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            kv->val.via.u64 != 1)
            return wire_fail(errp, -EPROTO, "unsupported event schema version");
        if (!get_value(&keys[k], &kv->val, base, pool))
            return wire_fail(errp, -EBADMSG, keys[k].bad);
    }
    for (uint32_t k = 0; k < nkeys; k++)
        if (keys[k].req && !(seen & (1u << k)))
            return wire_fail(errp, -EBADMSG, keys[k].miss);
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
        return wire_fail(errp, -EBADMSG, "event is not a map");
    return decode_map(o, wire_event_keys, WIRE_NEVENT_KEYS, ev, pool, errp);
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
        if ((used = wire_skip_obj(at + i, len - i)) == 0) {
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
        return wire_fail(errp, -EBADMSG, "events is not an array");
    n = arr->via.array.size;
    if (n > lim->max_batch)
        return wire_fail(errp, -EMSGSIZE, "batch over max_batch");
    if (n == 0) {
        f->u.events.n = 0;
        f->u.events.ev = NULL;
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        nkv +=
            count_kv(&arr->via.array.ptr[i], wire_event_keys, WIRE_NEVENT_KEYS);
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
            return wire_fail(errp, -EBADMSG, "event seq not increasing");
        prev = ev[i].seq;
    }
    if (at != NULL)
        events_raw(ev, n, at, end);
    f->u.events.n = n;
    f->u.events.ev = ev;
    return 0;
}

static int
str_same(struct tc_str a, struct tc_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/*
 * A hint's own limits (wire.h TC_HINT_MAX_*). They are far below the
 * frame's, and hold whatever limits the receiver configured, because the
 * agent stores every hint it accepts and shows it to a person.
 */
int
tc_wire_hint_check(const struct tc_hint *h, const char **errp)
{
    if (h->agent.len > TC_HINT_MAX_NAME || h->incident.len > TC_HINT_MAX_NAME ||
        h->source.len > TC_HINT_MAX_NAME || h->action.len > TC_HINT_MAX_NAME)
        return wire_fail(errp, -EMSGSIZE, "hint name over 255 bytes");
    if (h->title.len > TC_HINT_MAX_TITLE)
        return wire_fail(errp, -EMSGSIZE, "hint title over 512 bytes");
    if (h->text.len > TC_HINT_MAX_TEXT)
        return wire_fail(errp, -EMSGSIZE, "hint text over 64 KiB");
    if (h->sig.len > TC_HINT_SIG_LEN)
        return wire_fail(errp, -EMSGSIZE, "hint sig over 64 bytes");
    if (h->nparams > TC_HINT_MAX_PARAMS)
        return wire_fail(errp, -EMSGSIZE, "hint params over 32 entries");
    for (uint32_t i = 0; i < h->nparams; i++) {
        if (h->params[i].key.len > TC_HINT_MAX_PARAM_KEY ||
            h->params[i].val.len > TC_HINT_MAX_PARAM_VAL)
            return wire_fail(errp, -EMSGSIZE, "hint param over its limit");
        /* At most 32 entries: quadratic is fine. */
        for (uint32_t j = 0; j < i; j++)
            if (str_same(h->params[i].key, h->params[j].key))
                return wire_fail(errp, -EBADMSG, "duplicate hint param key");
    }
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
        return wire_fail(errp, -EBADMSG, "body is not [type, payload]");
    if (!get_u64(&root->via.array.ptr[0], &type))
        return wire_fail(errp, -EBADMSG, "frame type is not an unsigned int");
    pl = &root->via.array.ptr[1];
    if (type < TC_F_HELLO || type > TC_F_BYE)
        return wire_fail(errp, -EPROTO, "unknown frame type");
    if (pl->type != MSGPACK_OBJECT_MAP)
        return wire_fail(errp, -EBADMSG, "payload is not a map");

    if (type == TC_F_EVENTS) {
        const msgpack_object *evs = NULL;
        const uint8_t *at = NULL;
        for (uint32_t i = 0; i < pl->via.map.size; i++) {
            const msgpack_object_kv *kv = &pl->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                return wire_fail(errp, -EBADMSG, "map key is not a string");
            if (kv->key.via.str.size == 6 &&
                memcmp(kv->key.via.str.ptr, "events", 6) == 0) {
                if (evs != NULL)
                    return wire_fail(errp, -EBADMSG, "duplicate map key");
                evs = &kv->val;
                /*
                 * Strings reference the body, and a map's value follows
                 * its key: the array starts right after "events".
                 */
                at = (const uint8_t *)kv->key.via.str.ptr + 6;
            }
        }
        if (evs == NULL)
            return wire_fail(errp, -EBADMSG, "missing key \"events\"");
        if (at <= body || at >= body + len)
            at = NULL;
        if ((rc = decode_events(evs, lim, f, at, body + len, errp)) < 0)
            return rc;
        f->type = TC_F_EVENTS;
        return 0;
    }

    d = &wire_frame_descs[type];
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
        return wire_fail(errp, -EBADMSG, "bad version range in HELLO");
    if (type == TC_F_HINT && (rc = tc_wire_hint_check(&f->u.hint, errp)) < 0)
        return rc;
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
    if ((rc = wire_unpack(body, len, lim, out, &root, errp)) == 0)
        rc = decode_body(&root, lim, out, body, len, errp);
    if (rc < 0)
        wire_frame_discard(out);
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
    if ((rc = wire_unpack(p, len, lim, f, &root, errp)) < 0)
        goto out;
    nkv = count_kv(&root, wire_event_keys, WIRE_NEVENT_KEYS);
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
        wire_frame_discard(f);
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
    if ((rc = wire_unpack(p, len, lim, f, &root, errp)) == 0 &&
        (rc = decode_events(&root, lim, f, NULL, NULL, errp)) == 0)
        f->type = TC_F_EVENTS;
    if (rc < 0)
        wire_frame_discard(f);
    return rc;
}
