/*
 * incident_view: an incident as JSON, as a table row and as a detail
 * block; see incident_view.h.
 */
#include "view/incident_view.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "timefmt.h"
#include "wire.h"

/* Hosts and rules come from agents and rule files: capped. */
const struct tc_table_col view_incident_cols[] = {
    {"ID", 1, 0},       {"PRI", 0, 0},       {"STATE", 0, 0},
    {"SEVERITY", 0, 0}, {"HOST", 0, 32},     {"RULE", 0, 40},
    {"COUNT", 1, 0},    {"LAST_SEEN", 0, 0}, {"NOTE", 0, 60},
};
const size_t view_incident_ncols =
    sizeof(view_incident_cols) / sizeof(view_incident_cols[0]);

const char *
view_silence_state(const struct view_silence *s, int64_t now)
{
    if (s->ends_at <= now)
        return "ended";
    return s->starts_at > now ? "pending" : "active";
}

static int
jstr(struct tc_buf *b, const char *key, const char *v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_str(b, v, strlen(v));
    return rc;
}

static int
jint(struct tc_buf *b, const char *key, int64_t v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_i64(b, v);
    return rc;
}

static int
jbool(struct tc_buf *b, const char *key, int v)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, key);
    rc |= tc_json_raw(b, v ? "true" : "false");
    return rc;
}

/* ns, and key_iso unless 0 (never happened). */
static int
jtime(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX], k[64];
    int rc = jint(b, key, ns);

    if (ns == 0)
        return rc;
    tc_rfc3339(ns, 3, iso, sizeof(iso));
    snprintf(k, sizeof(k), "%s_iso", key);
    return rc | jstr(b, k, iso);
}

static int
silence_json(struct tc_buf *b, const struct incident *in,
             const struct view_silence *sil, int64_t now)
{
    int rc = 0;

    rc |= tc_json_raw(b, ",");
    rc |= tc_json_key(b, "silence");
    if (in->silenced == 0)
        return rc | tc_json_raw(b, "null");
    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "id");
    rc |= tc_json_i64(b, in->silenced);
    /* false: the store no longer has the silence, only the mark. */
    rc |= jbool(b, "known", sil != NULL);
    if (sil != NULL) {
        rc |= jstr(b, "state", view_silence_state(sil, now));
        rc |= jstr(b, "matchers", sil->matchers);
        rc |= jtime(b, "starts_at", sil->starts_at);
        rc |= jtime(b, "ends_at", sil->ends_at);
        rc |= jbool(b, "expired", sil->expired);
        rc |= jstr(b, "user", sil->user);
        rc |= jstr(b, "comment", sil->comment);
    }
    rc |= jstr(b, "meaning", VIEW_SILENCED_MEANING);
    rc |= tc_json_raw(b, "}");
    return rc;
}

int
view_incident_json(struct tc_buf *b, const struct incident *in,
                   const struct view_silence *sil, int64_t now)
{
    return view_incident_json_marked(b, in, sil, NULL, now);
}

int
view_incident_json_marked(struct tc_buf *b, const struct incident *in,
                          const struct view_silence *sil,
                          const struct problem_mark *m, int64_t now)
{
    const char *fp = strchr(in->fingerprint, '\x1f');
    int rc = 0;

    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "id");
    rc |= tc_json_i64(b, in->id);
    rc |= jstr(b, "state", incident_state_name(in->state));
    rc |= jint(b, "priority", in->priority);
    rc |= jstr(b, "severity", tc_severity_name(in->severity));
    rc |= jstr(b, "host", in->host);
    rc |= jstr(b, "kind", in->kind);
    rc |= jstr(b, "rule", in->rule);
    rc |= jstr(b, "service", in->service ? in->service : "");
    /* Without the host prefix: what the rule (or event) said. */
    rc |= jstr(b, "fingerprint", fp ? fp + 1 : in->fingerprint);
    rc |= jint(b, "count", (int64_t)in->count);
    rc |= jtime(b, "first_seen", in->first_seen);
    rc |= jtime(b, "last_seen", in->last_seen);
    rc |= jtime(b, "opened_at", in->opened_at);
    rc |= jtime(b, "acked_at", in->acked_at);
    rc |= jtime(b, "resolved_at", in->resolved_at);
    rc |= jtime(b, "closed_at", in->closed_at);
    rc |= jint(b, "reopened", in->reopened);
    rc |= jbool(b, "tier1", in->tier1);
    /* The silence that matched when it (re)opened; 0 = none. */
    rc |= jint(b, "silenced", in->silenced);
    rc |= silence_json(b, in, sil, now);
    rc |= jbool(b, "flapping", in->flapping);
    if (m != NULL) {
        /* Its problem (problems list), and whether it is a symptom of
         * an open one: notifications are then not sent for it. */
        rc |= tc_json_raw(b, ",");
        rc |= tc_json_key(b, "problem");
        rc |= m->problem_id ? tc_json_i64(b, m->problem_id)
                            : tc_json_raw(b, "null");
        rc |= jbool(b, "inhibited", m->inhibited);
    }
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}

void
view_incident_row(struct tc_table *t, const struct incident *in,
                  const struct view_silence *sil)
{
    char iso[TC_RFC3339_MAX], until[TC_RFC3339_MAX], note[128];
    size_t n = 0;

    tc_table_cellf(t, "%" PRId64, in->id);
    tc_table_cellf(t, "P%d", in->priority);
    tc_table_cell(t, incident_state_name(in->state));
    tc_table_cell(t, tc_severity_name(in->severity));
    tc_table_cell(t, in->host);
    tc_table_cell(t, in->rule);
    tc_table_cellf(t, "%" PRIu64, in->count);
    tc_rfc3339(in->last_seen, 3, iso, sizeof(iso));
    tc_table_cell(t, iso);
    note[0] = '\0';
    if (in->silenced != 0 && sil != NULL) {
        tc_rfc3339(sil->ends_at, 0, until, sizeof(until));
        n += (size_t)snprintf(note, sizeof(note),
                              "silenced by #%" PRId64 " until %s", in->silenced,
                              until);
    } else if (in->silenced != 0) {
        n += (size_t)snprintf(note, sizeof(note), "silenced by #%" PRId64,
                              in->silenced);
    }
    if (in->flapping && n < sizeof(note))
        snprintf(note + n, sizeof(note) - n, "%sflapping", n ? ", " : "");
    tc_table_cell(t, note);
}

static int
esc(struct tc_buf *b, const char *s)
{
    return tc_escape_buf(b, s, strlen(s));
}

int
view_silence_line(struct tc_buf *b, int64_t id, const struct view_silence *sil,
                  int64_t now)
{
    char s[TC_RFC3339_MAX], e[TC_RFC3339_MAX];
    const char *st;
    int rc = 0;

    rc |= tc_buf_printf(b, "silence %" PRId64 ": ", id);
    if (sil == NULL)
        return rc | esc(b, "no longer in the store");
    st = view_silence_state(sil, now);
    tc_rfc3339(sil->starts_at, 0, s, sizeof(s));
    tc_rfc3339(sil->ends_at, 0, e, sizeof(e));
    rc |= esc(b, sil->matchers);
    if (strcmp(st, "pending") == 0)
        rc |= tc_buf_printf(b, ", from %s until %s", s, e);
    else if (strcmp(st, "active") == 0)
        rc |= tc_buf_printf(b, ", active until %s", e);
    else
        rc |=
            tc_buf_printf(b, ", %s %s", sil->expired ? "expired" : "ended", e);
    rc |= tc_buf_printf(b, ", by ");
    rc |= esc(b, sil->user);
    if (sil->comment[0] != '\0') {
        rc |= tc_buf_printf(b, " (");
        rc |= esc(b, sil->comment);
        rc |= tc_buf_printf(b, ")");
    }
    return rc;
}

/* "  key          value\n"; value ours (not escaped). */
static int
kv(struct tc_buf *b, const char *key, const char *value)
{
    return tc_buf_printf(b, "  %-13s %s\n", key, value);
}

/* The same, value escaped. */
static int
kv_esc(struct tc_buf *b, const char *key, const char *value)
{
    int rc = tc_buf_printf(b, "  %-13s ", key);

    rc |= esc(b, value[0] ? value : "-");
    return rc | tc_buf_printf(b, "\n");
}

static int
kv_time(struct tc_buf *b, const char *key, int64_t ns)
{
    char iso[TC_RFC3339_MAX] = "-";

    if (ns != 0)
        tc_rfc3339(ns, 3, iso, sizeof(iso));
    return kv(b, key, iso);
}

int
view_incident_text(struct tc_buf *b, const struct incident *in,
                   const struct view_silence *sil, int64_t now)
{
    const char *fp = strchr(in->fingerprint, '\x1f');
    char v[64];
    int rc = 0;

    rc |= tc_buf_printf(b, "incident %" PRId64 ": P%d %s %s\n", in->id,
                        in->priority, incident_state_name(in->state),
                        tc_severity_name(in->severity));
    rc |= kv_esc(b, "host", in->host);
    rc |= kv_esc(b, "rule", in->rule);
    rc |= kv_esc(b, "kind", in->kind);
    rc |= kv_esc(b, "service", in->service ? in->service : "");
    rc |= kv_esc(b, "fingerprint", fp ? fp + 1 : in->fingerprint);
    snprintf(v, sizeof(v), "%" PRIu64, in->count);
    rc |= kv(b, "count", v);
    rc |= kv_time(b, "first_seen", in->first_seen);
    rc |= kv_time(b, "last_seen", in->last_seen);
    rc |= kv_time(b, "opened_at", in->opened_at);
    rc |= kv_time(b, "acked_at", in->acked_at);
    rc |= kv_time(b, "resolved_at", in->resolved_at);
    rc |= kv_time(b, "closed_at", in->closed_at);
    snprintf(v, sizeof(v), "%" PRIu32, in->reopened);
    rc |= kv(b, "reopened", v);
    if (in->flapping)
        rc |= kv(b, "flapping",
                 "yes: check results fold in, state changes "
                 "do not resolve or reopen");
    if (in->silenced == 0) {
        rc |= kv(b, "silenced", "no");
    } else {
        rc |= tc_buf_printf(b, "  %-13s yes: %s\n  %-13s ", "silenced",
                            VIEW_SILENCED_MEANING, "");
        rc |= view_silence_line(b, in->silenced, sil, now);
        rc |= tc_buf_printf(b, "\n");
    }
    return rc ? -ENOBUFS : 0;
}

int
view_incident_note_json(struct tc_buf *b, const struct incident_note *n)
{
    char iso[TC_RFC3339_MAX];
    int rc = 0;

    tc_rfc3339(n->ts, 3, iso, sizeof(iso));
    rc |= tc_json_raw(b, "{");
    rc |= tc_json_key(b, "ts_iso");
    rc |= tc_json_str(b, iso, strlen(iso));
    rc |= jint(b, "ts", n->ts);
    rc |= jstr(b, "what", n->what);
    rc |= jstr(b, "who", n->who);
    rc |= jstr(b, "detail", n->detail);
    rc |= tc_json_raw(b, "}");
    return rc ? -ENOBUFS : 0;
}
