/*
 * report: the status document; see report.h.
 *
 * JSON and text are produced from one pass over the same values: each
 * section emits key/value pairs through the small writer below, which
 * either appends `"key":value` or an aligned "key: value" line. Text
 * values and titles are escaped (escape.h): a file name holding a
 * newline or an ESC must not forge a line or drive the terminal.
 */
#include "report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "json.h"
#include "timefmt.h"
#include "units.h"
#include "util.h"

struct rw {
    struct tc_buf *out;
    int json;
    int first;  /* no comma yet in the current JSON object */
    int indent; /* text: spaces before keys */
};

static void
rw_raw(struct rw *w, const char *s)
{
    tc_buf_append(w->out, s, strlen(s));
}

static void rw_printf(struct rw *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rw_printf(struct rw *w, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        tc_buf_append(w->out, tmp,
                      (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Text: indentation, then v escaped, then extra (a literal suffix). */
static void
rw_text(struct rw *w, int indent, const char *v, const char *extra)
{
    rw_printf(w, "%*s", indent, "");
    tc_escape_buf(w->out, v, strlen(v));
    rw_raw(w, extra);
}

static void
rw_key(struct rw *w, const char *key)
{
    if (w->json) {
        if (!w->first)
            rw_raw(w, ",");
        w->first = 0;
        tc_json_key(w->out, key);
    } else {
        rw_printf(w, "%*s%-22s ", w->indent, "", key);
    }
}

static void
rw_str(struct rw *w, const char *key, const char *v)
{
    rw_key(w, key);
    if (w->json)
        tc_json_str(w->out, v, strlen(v));
    else
        rw_text(w, 0, v, "\n");
}

static void
rw_u64(struct rw *w, const char *key, uint64_t v)
{
    rw_key(w, key);
    rw_printf(w, w->json ? "%" PRIu64 : "%" PRIu64 "\n", v);
}

static void
rw_i64(struct rw *w, const char *key, int64_t v)
{
    rw_key(w, key);
    rw_printf(w, w->json ? "%" PRId64 : "%" PRId64 "\n", v);
}

/*
 * A byte count: raw under key in JSON (the unit is in the key's name or
 * its section's), "1.5 KiB" under text_key for a person.
 */
static void
rw_bytes(struct rw *w, const char *key, const char *text_key, uint64_t v)
{
    char u[TC_UNITS_MAX];

    if (w->json) {
        rw_u64(w, key, v);
        return;
    }
    rw_key(w, text_key);
    rw_printf(w, "%s\n", tc_fmt_bytes(u, sizeof(u), v));
}

/* A duration: raw under key in JSON, "3m12s" under text_key. */
static void
rw_dur(struct rw *w, const char *key, const char *text_key, uint64_t raw,
       int64_t ns)
{
    char u[TC_UNITS_MAX];

    if (w->json) {
        rw_u64(w, key, raw);
        return;
    }
    rw_key(w, text_key);
    rw_printf(w, "%s\n", tc_fmt_duration(u, sizeof(u), ns));
}

static void
rw_bool(struct rw *w, const char *key, int v)
{
    rw_key(w, key);
    rw_printf(w, w->json ? "%s" : "%s\n", v ? "true" : "false");
}

/* A wall-clock time: ns in JSON, plus an _iso key; ISO text otherwise. */
static void
rw_time(struct rw *w, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX] = "never", k[64];

    if (ns > 0)
        tc_rfc3339(ns, 0, iso, sizeof(iso));
    if (w->json) {
        rw_i64(w, key, ns);
        snprintf(k, sizeof(k), "%s_iso", key);
        if (ns > 0)
            rw_str(w, k, iso);
    } else {
        rw_str(w, key, iso);
    }
}

/* Open a nested object (JSON) or a titled block (text). */
static void
rw_open(struct rw *w, const char *key, const char *title)
{
    if (w->json) {
        if (key != NULL)
            rw_key(w, key);
        rw_raw(w, "{");
        w->first = 1;
    } else {
        rw_text(w, w->indent, title, "\n");
        w->indent += 2;
    }
}

static void
rw_close(struct rw *w)
{
    if (w->json) {
        rw_raw(w, "}");
        w->first = 0;
    } else {
        w->indent -= 2;
    }
}

static void
rw_array_open(struct rw *w, const char *key, const char *title)
{
    if (w->json) {
        rw_key(w, key);
        rw_raw(w, "[");
        w->first = 1;
    } else {
        rw_text(w, w->indent, title, "\n");
        w->indent += 2;
    }
}

static void
rw_array_close(struct rw *w)
{
    if (w->json) {
        rw_raw(w, "]");
        w->first = 0;
    } else {
        w->indent -= 2;
    }
}

/* An element of an array: a JSON object, or a text block. */
static void
rw_elem_open(struct rw *w, int idx, const char *title)
{
    if (w->json) {
        if (idx > 0)
            rw_raw(w, ",");
        rw_raw(w, "{");
        w->first = 1;
    } else {
        rw_text(w, w->indent, "", "- ");
        rw_text(w, 0, title, "\n");
        w->indent += 4;
    }
}

static void
rw_elem_close(struct rw *w)
{
    if (w->json) {
        rw_raw(w, "}");
        w->first = 0;
    } else {
        w->indent -= 4;
    }
}

static const char *
state_name(int state)
{
    static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    return state >= 0 && state <= 3 ? names[state] : "PENDING";
}

struct files_ctx {
    struct rw *w;
    int n;
};

static void
file_cb(void *arg, const struct tail_file_info *fi)
{
    struct files_ctx *fc = arg;
    struct rw *w = fc->w;

    rw_elem_open(w, fc->n++, fi->name);
    rw_str(w, "path", fi->name);
    if (strcmp(fi->source, fi->name) != 0)
        rw_str(w, "source", fi->source);
    rw_bytes(w, "offset", "offset", fi->offset);
    rw_bytes(w, "size", "size", fi->size);
    rw_bytes(w, "behind_bytes", "behind",
             fi->size > fi->offset ? fi->size - fi->offset : 0);
    rw_bool(w, "rotated", fi->rotated);
    rw_elem_close(w);
}

static void
input_cb(void *arg, const struct tail_input_info *ii)
{
    struct files_ctx *fc = arg;
    struct rw *w = fc->w;

    rw_elem_open(w, fc->n++, ii->path);
    rw_str(w, "path", ii->path);
    rw_u64(w, "matched_files", ii->matched);
    /* Said once in the log too; here for as long as it lasts. */
    rw_bool(w, "no_match", ii->no_match);
    rw_elem_close(w);
}

void
report_render(const struct report_src *r, struct tc_buf *out, int json)
{
    struct rw w = {.out = out, .json = json, .first = 1};
    int64_t now = tc_now_ns();

    rw_open(&w, NULL, "tocsin-agent status");
    rw_str(&w, "agent", r->name);
    rw_str(&w, "version", TOCSIN_VERSION);
    rw_time(&w, "started", r->started_ns);
    rw_dur(&w, "uptime_s", "uptime",
           (uint64_t)((now - r->started_ns) / 1000000000), now - r->started_ns);
    rw_str(&w, "config", r->cfg->file);
    rw_time(&w, "reloaded", r->reloaded_ns);
    rw_u64(&w, "reloads_refused", r->reloads_failed);

    if (r->sender != NULL) {
        struct sender_status ss;

        sender_get_status(r->sender, &ss);
        rw_open(&w, "link", "link:");
        rw_str(&w, "state", sender_link_name(ss.link));
        rw_str(&w, "collector", ss.address);
        if (ss.collector[0])
            rw_str(&w, "collector_name", ss.collector);
        if (ss.connected_since)
            rw_time(&w, "connected_since", ss.connected_since);
        if (ss.last_error[0]) {
            rw_str(&w, "last_error", ss.last_error);
            rw_time(&w, "last_error_at", ss.last_error_at);
        }
        rw_u64(&w, "reconnects", ss.reconnects);
        rw_u64(&w, "events_sent", ss.events_sent);
        rw_u64(&w, "events_acked", ss.events_acked);
        rw_time(&w, "last_ack", ss.last_ack_at);
        rw_close(&w);
        rw_open(&w, "spool", "spool:");
        rw_u64(&w, "depth", ss.spool_depth);
        rw_bytes(&w, "bytes", "size", ss.spool_bytes);
        rw_bytes(&w, "max_bytes", "max_size", r->cfg->spool_max_bytes);
        rw_dur(&w, "oldest_unacked_age_ms", "oldest_unacked_age",
               (uint64_t)(ss.oldest_unacked_ns / 1000000),
               ss.oldest_unacked_ns);
        rw_close(&w);
    }

    if (r->tail != NULL) {
        struct files_ctx ic = {.w = &w};

        rw_array_open(&w, "inputs", "inputs (files[]):");
        tail_inputs(r->tail, input_cb, &ic);
        rw_array_close(&w);
    }

    if (r->tail != NULL) {
        struct files_ctx fc = {.w = &w};

        rw_array_open(&w, "files", "files:");
        tail_files(r->tail, file_cb, &fc);
        rw_array_close(&w);
    }

    if (r->checks != NULL) {
        size_t n = checks_count(r->checks);

        rw_array_open(&w, "checks", "checks:");
        for (size_t i = 0; i < n; i++) {
            struct check_status cs;

            if (checks_get(r->checks, i, &cs) < 0)
                continue;
            rw_elem_open(&w, (int)i, cs.name);
            rw_str(&w, "name", cs.name);
            rw_str(&w, "type", cs.type);
            rw_str(&w, "state", state_name(cs.state));
            rw_str(&w, "message", cs.message);
            rw_time(&w, "last_run", cs.last_run_ns);
            rw_dur(&w, "duration_us", "duration", cs.duration_us,
                   (int64_t)cs.duration_us * 1000);
            rw_dur(&w, "interval_ms", "interval", cs.interval_ms,
                   (int64_t)cs.interval_ms * 1000000);
            rw_u64(&w, "runs", cs.runs);
            rw_u64(&w, "timeouts", cs.timeouts);
            rw_u64(&w, "skipped", cs.skipped);
            rw_bool(&w, "running", cs.running);
            rw_elem_close(&w);
        }
        rw_array_close(&w);
    }

    if (r->journals != NULL && r->cfg->njournals > 0) {
        rw_array_open(&w, "journald", "journald:");
        for (size_t i = 0; i < r->cfg->njournals; i++) {
            struct journal_stats js;

            journal_get_stats(r->journals[i], &js);
            rw_elem_open(&w, (int)i, r->cfg->journals[i].name);
            rw_str(&w, "name", r->cfg->journals[i].name);
            rw_bool(&w, "open", js.open);
            rw_bool(&w, "waiting_for_files", js.waiting);
            rw_u64(&w, "entries", js.entries);
            rw_u64(&w, "matched", js.matched);
            rw_elem_close(&w);
        }
        rw_array_close(&w);
    }

    /* Everything not sent, by reason: nothing disappears silently. */
    rw_open(&w, "drops", "drops and suppressions:");
    if (r->spool != NULL)
        rw_u64(&w, "spool_full_unreported", spool_drops(r->spool));
    if (r->emit != NULL) {
        struct emit_stats es;

        emit_get_stats(r->emit, &es);
        rw_u64(&w, "rule_action_drop", es.dropped);
        rw_u64(&w, "folded_repeats", es.folded);
        rw_u64(&w, "rate_limited", es.suppressed);
        rw_u64(&w, "bad_time_capture", es.bad_time);
    }
    if (r->tail != NULL) {
        struct tail_stats ts;

        tail_get_stats(r->tail, &ts);
        rw_u64(&w, "lines_cut", ts.cut);
        rw_u64(&w, "partial_lines_flushed", ts.flushed);
        rw_u64(&w, "truncations_seen", ts.truncated);
    }
    rw_close(&w);
    if (r->tail != NULL) {
        struct tail_stats ts;

        tail_get_stats(r->tail, &ts);
        rw_open(&w, "tail", "tail totals:");
        rw_u64(&w, "lines", ts.lines);
        rw_u64(&w, "matched", ts.matched);
        rw_bytes(&w, "bytes", "bytes", ts.bytes);
        rw_u64(&w, "open_files", ts.open);
        rw_u64(&w, "rotated_files_finished", ts.let_go);
        rw_u64(&w, "files_refused", ts.refused);
        rw_str(&w, "poll", ts.slow_poll ? "slow" : "fast");
        rw_close(&w);
    }
    rw_close(&w);
    rw_raw(&w, "\n");
}
