/*
 * wire: protocol v1, the shared part: severity and frame-type names,
 * the default limits, framing (tc_wire_next) and the memory behind a
 * decoded frame. wire.h is the contract, docs/protocol.md the normative
 * spec, docs/internals/wire.md the design notes.
 *
 * The protocol codec is split by job; wire.h is the one public header
 * (docs/internals/wire.md has the map):
 *   wire.c         names, limits, framing (tc_wire_next), frame memory
 *   wire_scan.c    the bounds pre-scan every decoder runs first
 *   wire_keys.c    the key tables: which keys each map has, their types
 *   wire_ref.c     the reference decoder, on msgpack-c's object tree
 *   wire_direct.c  the direct event decoder (EVENTS and stored batches)
 *   wire_encode.c  the encoders
 * The fuzzer (tests/fuzz/fuzz_wire.c) checks that both decoders agree.
 */
#include "wire.h"
#include "wire_int.h"

#include <errno.h>
#include <limits.h>
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
void
wire_frame_reset(struct tc_frame *f)
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
void
wire_frame_discard(struct tc_frame *f)
{
    free(f->mem);
    f->mem = NULL;
    f->type = 0;
    memset(&f->u, 0, sizeof(f->u));
}

int
wire_fail(const char **errp, int rc, const char *msg)
{
    if (errp)
        *errp = msg;
    return rc;
}
