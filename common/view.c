/*
 * view: events rendered for readers; see view.h.
 */
#include "view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "timefmt.h"

static int
kv_str(struct tc_buf *b, const char *key, struct tc_str s)
{
    int rc = tc_json_raw(b, ",");

    rc |= tc_json_key(b, key);
    rc |= tc_json_str(b, s.ptr ? s.ptr : "", s.len);
    return rc;
}

static int
kv_time(struct tc_buf *b, const char *key, int64_t ns, int digits)
{
    char iso[TC_RFC3339_MAX], k[32];
    int rc = tc_json_raw(b, ",");

    rc |= tc_json_key(b, key);
    rc |= tc_json_i64(b, ns);
    tc_rfc3339(ns, digits, iso, sizeof(iso));
    strcpy(k, key);
    strcat(k, "_iso");
    return rc | kv_str(b, k, tc_str_c(iso));
}

static int
kv_map(struct tc_buf *b, const char *key, const struct tc_kv *kv, uint32_t n)
{
    int rc = tc_json_raw(b, ",");

    rc |= tc_json_key(b, key);
    rc |= tc_json_raw(b, "{");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            rc |= tc_json_raw(b, ",");
        rc |= tc_json_str(b, kv[i].key.ptr, kv[i].key.len);
        rc |= tc_json_raw(b, ":");
        rc |= tc_json_str(b, kv[i].val.ptr, kv[i].val.len);
    }
    return rc | tc_json_raw(b, "}");
}

int
tc_view_event_json(struct tc_buf *b, const struct tc_event *e,
                   const struct tc_view_event_opts *o)
{
    const char *sev = tc_severity_name(e->sev);
    int rc = tc_json_raw(b, "{");

    rc |= tc_json_key(b, "host");
    rc |= tc_json_str(b, e->host.ptr ? e->host.ptr : "", e->host.len);
    if (o->origin != NULL) {
        rc |= tc_json_raw(b, ",");
        rc |= tc_json_key(b, "seq");
        rc |= tc_json_u64(b, e->seq);
        /* Collector events about an agent have their own seq space. */
        rc |= kv_str(b, "origin", tc_str_c(o->origin));
        rc |= kv_time(b, "ts", e->ts, o->iso_digits);
    } else {
        rc |= tc_json_raw(b, ",");
        rc |= tc_json_key(b, "ts");
        rc |= tc_json_i64(b, e->ts);
    }
    /* The time the event itself carries (a rule's time capture, or
     * journald's), beside ts, the time the agent read it. */
    if (e->event_ts != 0)
        rc |= kv_time(b, "event_ts", e->event_ts, o->iso_digits);
    else if (o->event_ts_error)
        rc |= tc_json_raw(b, ",\"event_ts_error\":true");
    rc |= kv_str(b, "kind", e->kind);
    rc |= kv_str(b, "source", e->source);
    rc |= kv_str(b, "rule", e->rule);
    rc |= kv_str(b, "severity", tc_str_c(sev ? sev : "unknown"));
    if (e->state >= 0) {
        rc |= tc_json_raw(b, ",");
        rc |= tc_json_key(b, "state");
        rc |= tc_json_i64(b, e->state);
    }
    rc |= kv_str(b, "message", e->message);
    if (e->fingerprint.len > 0)
        rc |= kv_str(b, "fingerprint", e->fingerprint);
    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "count");
    rc |= tc_json_u64(b, e->count);
    rc |= kv_map(b, "labels", e->labels, e->nlabels);
    rc |= kv_map(b, "fields", e->fields, e->nfields);
    rc |= tc_json_raw(b, "}");
    return rc < 0 ? -ENOBUFS : 0;
}

/* An untrusted string for a text line: escaped, "-" when empty. */
static int
text_str(struct tc_buf *b, struct tc_str s, size_t max)
{
    size_t n = max != 0 && s.len > max ? max : s.len;

    if (s.len == 0)
        return tc_buf_append(b, "-", 1);
    /* Back off to a character boundary: no half sequence is escaped. */
    while (n < s.len && n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80)
        n--;
    return tc_escape_buf(b, s.ptr, n);
}

int
tc_view_event_line(struct tc_buf *b, const struct tc_event *e,
                   size_t max_message)
{
    const char *sev = tc_severity_name(e->sev);
    char head[TC_RFC3339_MAX + 64];
    int n, rc;

    tc_rfc3339(e->ts, 3, head, sizeof(head));
    rc = tc_buf_append(b, head, strlen(head));
    rc |= tc_buf_append(b, " ", 1);
    rc |= text_str(b, e->host, 0);
    n = snprintf(head, sizeof(head), " %" PRIu64 " %s ", e->seq,
                 sev ? sev : "unknown");
    rc |= tc_buf_append(b, head, (size_t)n);
    rc |= text_str(b, e->rule, 0);
    if (e->count > 1) {
        n = snprintf(head, sizeof(head), " count=%" PRIu32, e->count);
        rc |= tc_buf_append(b, head, (size_t)n);
    }
    rc |= tc_buf_append(b, " ", 1);
    rc |= text_str(b, e->message, max_message);
    return rc < 0 ? -ENOBUFS : 0;
}
