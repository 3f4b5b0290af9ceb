/*
 * wire: protocol v1 frames and events (docs/protocol.md is normative).
 *
 * A frame on the TLS stream is a 4-byte big-endian body length followed
 * by that many bytes of msgpack. The body is a msgpack array of exactly
 * two elements: [type (positive int), payload (map with string keys)].
 * Unknown map keys are ignored (forward compatibility within v1); known
 * keys with the wrong type, missing required keys, trailing bytes after
 * the body, and anything over the limits are errors.
 *
 * Encoders append one complete frame (length prefix included) to a
 * tc_buf. The decoder is a pure function over bytes: it never reads
 * outside [body, body+len), allocates only inside the tc_frame it fills,
 * and enforces struct tc_wire_limits before msgpack-c allocates anything
 * (so a 5-byte array header cannot claim four billion elements).
 *
 * Decoded strings (struct tc_str) point into the body bytes and live as
 * long as those bytes do; they are NOT NUL-terminated.
 */
#ifndef TC_WIRE_H
#define TC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "buf.h"

#define TC_WIRE_VERSION 1
#define TC_WIRE_HDR 4                /* length prefix, bytes */
#define TC_WIRE_MAX_FRAME (8u << 20) /* default body limit, bytes */
#define TC_WIRE_MAX_STR (64u << 10)  /* default string limit, bytes */
#define TC_WIRE_MAX_ELEMS 65536u     /* default array/map entries */
#define TC_WIRE_MAX_DEPTH 8          /* default nesting depth */
#define TC_WIRE_MAX_BATCH 10000u     /* default events per EVENTS */
/* HELLO's heartbeat ("hb"), ms, when said: 1 s to 1 day. */
#define TC_WIRE_HB_MIN 1000u
#define TC_WIRE_HB_MAX (86400u * 1000)

enum tc_frame_type {
    TC_F_HELLO = 1,
    TC_F_WELCOME = 2,
    TC_F_EVENTS = 3,
    TC_F_ACK = 4,
    TC_F_HINT = 5,
    TC_F_HINT_ACK = 6,
    TC_F_PING = 7,
    TC_F_PONG = 8,
    TC_F_BYE = 9,
};

struct tc_wire_limits {
    uint32_t max_frame; /* body bytes */
    uint32_t max_str;   /* bytes in one str/bin */
    uint32_t max_elems; /* entries in one array or map */
    uint32_t max_depth; /* nesting depth of arrays/maps, body = 1 */
    uint32_t max_batch; /* events in one EVENTS frame */
};
/* The defaults above. */
extern const struct tc_wire_limits tc_wire_default_limits;

struct tc_str {
    const char *ptr; /* not NUL-terminated; borrowed */
    uint32_t len;
};

enum tc_severity {
    TC_SEV_OK = 0,
    TC_SEV_INFO = 1,
    TC_SEV_WARNING = 2,
    TC_SEV_ERROR = 3,
    TC_SEV_CRITICAL = 4,
};
const char *tc_severity_name(enum tc_severity s);
/* Parse "ok".."critical"; 0 or -EINVAL. */
int tc_severity_parse(const char *s, enum tc_severity *out);

struct tc_kv {
    struct tc_str key;
    struct tc_str val; /* values are strings on the wire in v1 */
};

/*
 * One event (DESIGN.md "Events"). Required on the wire: v (schema
 * version, must be 1), seq, ts, host, kind, sev. The rest are optional; absent
 * strings have len 0, absent state is -1, absent count is 1.
 */
struct tc_event {
    uint64_t seq;         /* per-agent sequence, >= 1 */
    int64_t ts;           /* observed (read) time, ns since epoch */
    int64_t event_ts;     /* time from the event itself, ns; 0 = none */
    struct tc_str host;   /* agent name */
    struct tc_str kind;   /* log, check, heartbeat, agent, ... */
    struct tc_str source; /* file path or check name */
    struct tc_str rule;   /* rule or check name */
    enum tc_severity sev;
    int32_t state;         /* Nagios state 0..3, or -1 */
    struct tc_str message; /* the log line or check output */
    struct tc_str fingerprint;
    uint32_t count;       /* folded repeats, >= 1 */
    struct tc_kv *labels; /* nlabels entries; owned by the frame */
    uint32_t nlabels;
    struct tc_kv *fields; /* named captures, perfdata ... */
    uint32_t nfields;
    /*
     * Set by tc_wire_decode (EVENTS) and tc_event_decode only: the
     * event's own map in the decoded bytes (borrowed like the
     * strings), so that a receiver can store it without encoding it
     * again. NULL for events built in memory and for those of
     * tc_event_decode_array, whose callers read events and do not pass
     * them on; encoders ignore it.
     */
    const uint8_t *raw;
    size_t raw_len;
};

struct tc_hello {
    uint32_t version_min, version_max; /* versions the agent speaks */
    struct tc_str agent;               /* must equal the cert CN */
    uint64_t epoch;                    /* random id of the agent's spool */
    struct tc_str software;            /* "tocsin-agent 0.1.0" */
    uint64_t heartbeat_ms;             /* PING period, ms; 0 = not said */
};

struct tc_welcome {
    uint32_t version;        /* chosen version */
    struct tc_str collector; /* collector name */
    uint64_t hwm;            /* highest seq durably stored for agent */
    int epoch_known;         /* 1 if hwm belongs to the HELLO's epoch */
};

struct tc_events {
    uint32_t n;          /* number of events */
    struct tc_event *ev; /* n entries, seq strictly increasing */
};

struct tc_ack {
    uint64_t seq; /* every event with seq <= this is durable */
};

/*
 * A remediation hint (docs/protocol.md "HINT"; what is signed:
 * common/hintsig.h). Beyond the general limits the decoder holds a hint
 * to the TC_HINT_MAX_* below (-EMSGSIZE) and refuses a params key given
 * twice (-EBADMSG): the signature covers params sorted by key, which
 * would not be one order with a key twice.
 */
struct tc_hint {
    uint64_t id;            /* unique per collector, increasing */
    struct tc_str incident; /* incident id it belongs to */
    struct tc_str text;     /* Markdown body: steps, links */
    struct tc_str action;   /* action name, may be empty */
    struct tc_kv *params;   /* action parameters; owned by the frame */
    uint32_t nparams;
    struct tc_str sig;    /* Ed25519 signature bytes (bin); 0 = unsigned */
    struct tc_str agent;  /* addressee: agent name (certificate CN) */
    uint64_t problem;     /* problem id, 0 = none */
    struct tc_str source; /* "runbook:<id>" or "known-error:<problem>" */
    struct tc_str title;  /* one line */
    int64_t issued;       /* collector wall clock when decided, ns; 0 */
};

/* Per-hint limits, bytes (params: entries). */
#define TC_HINT_MAX_NAME 255u       /* agent, incident, source, action */
#define TC_HINT_MAX_TITLE 512u      /* title */
#define TC_HINT_MAX_TEXT 65536u     /* text */
#define TC_HINT_MAX_PARAMS 32u      /* entries in params */
#define TC_HINT_MAX_PARAM_KEY 64u   /* one params key */
#define TC_HINT_MAX_PARAM_VAL 1024u /* one params value */
#define TC_HINT_SIG_LEN 64u         /* an Ed25519 signature */

/*
 * Does h keep the hint limits above (the decoder's check, for a sender
 * to run before it signs)? 0, -EMSGSIZE or -EBADMSG, with errp set.
 */
int tc_wire_hint_check(const struct tc_hint *h, const char **errp);

struct tc_hint_ack {
    uint64_t id;
    /* Empty: stored. Else the agent refused the hint (not stored), and
     * why; the collector stops waiting for it (docs/protocol.md). */
    struct tc_str refused;
};

struct tc_ping {
    int64_t ts;           /* sender's wall clock, ns */
    uint64_t spool_depth; /* events waiting in the agent's spool */
    uint64_t spool_bytes;
    struct tc_str version;
};

struct tc_pong {
    int64_t ts; /* echoed from PING */
};

struct tc_bye {
    struct tc_str reason;
};

struct tc_frame {
    enum tc_frame_type type;
    union {
        struct tc_hello hello;
        struct tc_welcome welcome;
        struct tc_events events;
        struct tc_ack ack;
        struct tc_hint hint;
        struct tc_hint_ack hint_ack;
        struct tc_ping ping;
        struct tc_pong pong;
        struct tc_bye bye;
    } u;
    /* private: memory backing the decoded frame */
    msgpack_zone zone;
    void *mem; /* arrays of events/kvs, freed by tc_frame_close */
    int inited;
};

void tc_frame_init(struct tc_frame *f);
/* Release what the last decode allocated; the frame can be reused. */
void tc_frame_close(struct tc_frame *f);

/*
 * Find the next frame in a byte stream. Returns the number of bytes the
 * frame occupies (header + body) and sets *body and *body_len, 0 if more
 * bytes are needed, -EMSGSIZE if the announced length is over max_frame,
 * or -EBADMSG if it is zero (no body can be empty).
 */
long tc_wire_next(const uint8_t *data, size_t len, uint32_t max_frame,
                  const uint8_t **body, size_t *body_len);

/*
 * Decode one frame body. Returns 0 or a negative errno (-EBADMSG for
 * malformed input, -EMSGSIZE for limits, -EPROTO for an unknown type);
 * when errp is given it gets a static string naming what was wrong.
 */
int tc_wire_decode(const uint8_t *body, size_t len,
                   const struct tc_wire_limits *lim, struct tc_frame *out,
                   const char **errp);

const char *tc_frame_type_name(int type);

/*
 * Encoders: append one whole frame to out. 0, -ENOBUFS (out's cap) or
 * -EMSGSIZE (body over TC_WIRE_MAX_FRAME, or more than TC_WIRE_MAX_BATCH
 * events: the peer's default limits). On error out is left as it was.
 * Optional keys are omitted when empty or at their default.
 */
int tc_wire_encode_hello(struct tc_buf *out, const struct tc_hello *m);
int tc_wire_encode_welcome(struct tc_buf *out, const struct tc_welcome *m);
int tc_wire_encode_events(struct tc_buf *out, const struct tc_event *ev,
                          uint32_t n);
/*
 * EVENTS from events that are already msgpack-encoded (as the agent's
 * spool stores them): enc[i] is one event map of enc_len[i] bytes.
 */
int tc_wire_encode_events_raw(struct tc_buf *out, const uint8_t *const *enc,
                              const size_t *enc_len, uint32_t n);
/*
 * The same frame built one encoded event at a time, straight into out
 * (the agent appends them from its spool without a copy in between):
 * tc_wire_events_begin, tc_wire_events_add for each event, then
 * tc_wire_events_end, which fills in the count and the length, or
 * tc_wire_events_abort. Each returns 0 or the first error (-ENOBUFS,
 * -EMSGSIZE), after which out is as it was before begin and the rest
 * are no-ops. The count is an array16 whatever its value, which every
 * msgpack reader takes; those two bytes are all that differs from
 * tc_wire_encode_events_raw.
 */
struct tc_wire_events_out {
    struct tc_buf *b; /* borrowed: the frame's buffer */
    size_t start;     /* tc_buf_size(b) at begin */
    uint32_t n;       /* events added */
    int err;          /* first error, negative errno */
};
int tc_wire_events_begin(struct tc_buf *out, struct tc_wire_events_out *w);
int tc_wire_events_add(struct tc_wire_events_out *w, const uint8_t *ev,
                       size_t len);
int tc_wire_events_end(struct tc_wire_events_out *w);
void tc_wire_events_abort(struct tc_wire_events_out *w);
int tc_wire_encode_ack(struct tc_buf *out, const struct tc_ack *m);
int tc_wire_encode_hint(struct tc_buf *out, const struct tc_hint *m);
int tc_wire_encode_hint_ack(struct tc_buf *out, const struct tc_hint_ack *m);
int tc_wire_encode_ping(struct tc_buf *out, const struct tc_ping *m);
int tc_wire_encode_pong(struct tc_buf *out, const struct tc_pong *m);
int tc_wire_encode_bye(struct tc_buf *out, const struct tc_bye *m);

/* Encode one event as a msgpack map (no frame) appended to out. */
int tc_event_encode(struct tc_buf *out, const struct tc_event *ev);
/*
 * The same bytes, for runs of events that share host, kind, source,
 * rule and severity (the lines one rule matches in one file): c keeps
 * those keys and values encoded from the last call, with copies of the
 * strings they were made from, and each event that matches them copies
 * them in one piece instead of packing them again. Zero c before its
 * first use; it points into nothing, so the events' strings may change
 * or go between calls.
 */
struct tc_event_cache {
    int valid;           /* buf holds a block */
    int sev;             /* the block's severity */
    uint32_t hlen, klen; /* bytes of host and kind in buf */
    uint32_t slen, rlen; /* bytes of source and rule in buf */
    uint32_t block_len;  /* encoded bytes after the strings */
    uint8_t buf[512];    /* host, kind, source, rule, block */
};
int tc_event_encode_cached(struct tc_buf *out, const struct tc_event *ev,
                           struct tc_event_cache *c);
/*
 * Decode one event map (as stored by the agent's spool or in the
 * collector's batch blobs). Arrays for labels/fields are allocated in f;
 * like every decode into f, it releases what the previous one held.
 * Used by tocsinctl to print stored events.
 */
int tc_event_decode(const uint8_t *p, size_t len,
                    const struct tc_wire_limits *lim, struct tc_frame *f,
                    struct tc_event *out, const char **errp);
/*
 * Decode a msgpack array of event maps (the collector stores one such
 * blob per batch). On success f->u.events holds them.
 */
int tc_event_decode_array(const uint8_t *p, size_t len,
                          const struct tc_wire_limits *lim, struct tc_frame *f,
                          const char **errp);

/*
 * The same decoders through msgpack-c's object tree, the reference
 * that the direct event decoding above is held to: tests and the
 * fuzzer check that both agree on every input. tc_wire_decode uses it
 * for every frame but EVENTS.
 */
int tc_wire_decode_ref(const uint8_t *body, size_t len,
                       const struct tc_wire_limits *lim, struct tc_frame *out,
                       const char **errp);
int tc_event_decode_ref(const uint8_t *p, size_t len,
                        const struct tc_wire_limits *lim, struct tc_frame *f,
                        struct tc_event *out, const char **errp);
int tc_event_decode_array_ref(const uint8_t *p, size_t len,
                              const struct tc_wire_limits *lim,
                              struct tc_frame *f, const char **errp);

/* Helpers for building events from C strings. */
static inline struct tc_str
tc_str_c(const char *s)
{
    struct tc_str r = {s, 0};
    if (s)
        while (s[r.len])
            r.len++;
    return r;
}

#endif
