/*
 * wire_keys: the protocol's maps as tables, one per frame and one for
 * the event: each key's name, type, whether it is required, where it
 * goes in the C struct, and the errors for a bad or missing value. Both
 * decoders read them (wire_ref.c through msgpack-c's objects,
 * wire_direct.c from the bytes). docs/protocol.md is the normative
 * list; a key added here is added there.
 */
#include "wire_int.h"

#include <stddef.h>

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
const struct wkey wire_event_keys[WIRE_NEVENT_KEYS] = {
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
    WK("agent", V_STR, 1, tc_hint, agent),
    WK("problem", V_U64, 0, tc_hint, problem),
    WK("source", V_STR, 1, tc_hint, source),
    WK("title", V_STR, 1, tc_hint, title),
    WK("issued", V_I64, 0, tc_hint, issued),
};

static const struct wkey hint_ack_keys[] = {
    WK("id", V_U64, 1, tc_hint_ack, id),
    WK("refused", V_STR, 0, tc_hint_ack, refused),
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

const struct frame_desc wire_frame_descs[TC_F_BYE + 1] = {
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
_Static_assert(NKEYS(wire_event_keys) <= 32, "key table too large for mask");
