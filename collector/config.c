/*
 * config: the collector's configuration file, described as schema
 * tables for common/conf; see config.h and docs/configuration.md.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "engine/incident.h"
#include "engine/problem.h"
#include "log.h"
#include "util.h"

#define CC(member) TC_CONF_AT(struct collector_config, member)

static const struct tc_conf_enum sync_names[] = {
    {"full", CONFIG_SYNC_FULL},
    {"normal", CONFIG_SYNC_NORMAL},
    {NULL, 0},
};

static const struct tc_conf_field tls_fields[] = {
    {.key = "ca",
     .type = TC_CONF_T_PATH,
     CC(tls_ca),
     .required = 1,
     .help = "CA certificate that signs agent certificates (PEM)"},
    {.key = "cert",
     .type = TC_CONF_T_PATH,
     CC(tls_cert),
     .required = 1,
     .help = "the collector's certificate (PEM)"},
    {.key = "key",
     .type = TC_CONF_T_PATH,
     CC(tls_key),
     .required = 1,
     .help = "the collector's private key (PEM)"},
    {0},
};

static const struct tc_conf_field hints_fields[] = {
    {.key = "signing_key",
     .type = TC_CONF_T_PATH,
     CC(hints_signing_key),
     .help = "Ed25519 key that signs hints (PEM; default: "
             "hint-signing.key beside tls.key, as pki init makes it)"},
    {0},
};

static const struct tc_conf_field store_fields[] = {
    {.key = "path",
     .type = TC_CONF_T_PATH,
     CC(store_path),
     .required = 1,
     .help = "SQLite database file"},
    {.key = "sync",
     .type = TC_CONF_T_ENUM,
     CC(store_sync),
     .def = "full",
     .enums = sync_names,
     .help = "full: fsync each group commit"},
    {0},
};

static const struct tc_conf_field limits_fields[] = {
    {.key = "pipeline_max_bytes",
     .type = TC_CONF_T_SIZE,
     CC(pipeline_max_bytes),
     .def = "64MiB",
     .min = 1 << 20,
     .help = "decoded events not yet committed, bytes"},
    {.key = "max_agents",
     .type = TC_CONF_T_UINT,
     CC(max_agents),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .help = "agents connected at once (sessions past HELLO)"},
    /*
     * Connections that have not said HELLO yet cost a socket and a TLS
     * state each, and anyone who can reach the port can open them: they
     * get their own budget, and the oldest is closed to admit a new one.
     */
    {.key = "max_pending",
     .type = TC_CONF_T_UINT,
     CC(max_pending),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .help = "connections not past HELLO; the oldest is closed when full"},
    /* 2 at least: a reconnecting agent replaces its stale session. */
    {.key = "sessions_per_agent",
     .type = TC_CONF_T_UINT,
     CC(sessions_per_agent),
     .def = "4",
     .min = 2,
     .max = 1000,
     .help = "open sessions with one certificate (CN), HELLO or not"},
    /* At least two maximum frames, so that one big batch always fits. */
    {.key = "session_memory",
     .type = TC_CONF_T_SIZE,
     CC(session_memory),
     .def = "256MiB",
     .min = 32 << 20,
     .help = "receive and send buffers of all sessions, bytes"},
    {.key = "handshake_timeout",
     .type = TC_CONF_T_DURATION,
     CC(handshake_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600 * 1000,
     .help = "TLS handshake and HELLO must finish within this"},
    {.key = "idle_timeout",
     .type = TC_CONF_T_DURATION,
     CC(idle_timeout_ms),
     .def = "120s",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "a session with no frame at all for this long is closed"},
    {0},
};

static const struct tc_conf_field incidents_fields[] = {
    {.key = "reopen_window",
     .type = TC_CONF_T_DURATION,
     CC(inc_reopen_window_ms),
     .def = "1h",
     .min = 0,
     .max = 30ull * 86400 * 1000,
     .help = "a recurrence this soon after resolve reopens the incident"},
    {.key = "resolve_after",
     .type = TC_CONF_T_DURATION,
     CC(inc_resolve_after_ms),
     .def = "30m",
     .min = 1000,
     .max = 30ull * 86400 * 1000,
     .help = "a log incident quiet this long (event time) resolves"},
    {.key = "max_attempts",
     .type = TC_CONF_T_UINT,
     CC(inc_max_attempts),
     .def = "3",
     .min = 1,
     .max = 100,
     .help = "consecutive non-OK check results before an incident opens"},
    {.key = "flap_high",
     .type = TC_CONF_T_UINT,
     CC(inc_flap_high),
     .def = "50",
     .min = 0,
     .max = 100,
     .help = "percent state change (last 21 check results) that starts"
             " flapping; 0 disables flap detection"},
    {.key = "flap_low",
     .type = TC_CONF_T_UINT,
     CC(inc_flap_low),
     .def = "25",
     .min = 0,
     .max = 100,
     .help = "percent state change below which a check stops flapping"},
    {0},
};

/*
 * correlation: (docs/correlation.md). With no section every default
 * applies: spread, reference, trend and major on, topology empty.
 */
static const struct tc_conf_field spread_fields[] = {
    {.key = "enabled",
     .type = TC_CONF_T_BOOL,
     CC(corr_spread),
     .def = "true",
     .help = "one fingerprint class on min_hosts hosts makes a problem"},
    {.key = "min_hosts",
     .type = TC_CONF_T_UINT,
     CC(corr_spread_min_hosts),
     .def = "3",
     .min = 2,
     .max = 100000,
     .help = "distinct hosts whose incidents of one class open within "
             "window"},
    {.key = "window",
     .type = TC_CONF_T_DURATION,
     CC(corr_spread_window_ms),
     .def = "10m",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "the openings lie within this of one another"},
    {0},
};

static const struct tc_conf_field reference_fields[] = {
    {.key = "enabled",
     .type = TC_CONF_T_BOOL,
     CC(corr_reference),
     .def = "true",
     .help = "a captured field naming another known host links incidents"},
    {.key = "window",
     .type = TC_CONF_T_DURATION,
     CC(corr_reference_window_ms),
     .def = "10m",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "incidents on the named host within this join"},
    {.key = "fields",
     .type = TC_CONF_T_STRLIST,
     CC(corr_reference_fields),
     .count_offset = offsetof(struct collector_config, corr_nreference_fields),
     .help = "captured field names to search; none: every field"},
    {0},
};

static const struct tc_conf_field dep_fields[] = {
    {.key = "from",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct problem_dep, from),
     .required = 1,
     .min = 1,
     .max = PROBLEM_MAX_NAME,
     .help = "the dependent: a host glob or service:NAME"},
    {.key = "to",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct problem_dep, to),
     .required = 1,
     .min = 1,
     .max = PROBLEM_MAX_NAME,
     .help = "what it depends on: a host glob or service:NAME"},
    {0},
};

static const struct tc_conf_field topology_fields[] = {
    {.key = "window",
     .type = TC_CONF_T_DURATION,
     CC(corr_topology_window_ms),
     .def = "10m",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "dependents' incidents within this of the dependency's"},
    {.key = "depends_on",
     .type = TC_CONF_T_SEQ,
     CC(corr_deps),
     .sub = dep_fields,
     .elem_size = sizeof(struct problem_dep),
     .count_offset = offsetof(struct collector_config, corr_ndeps),
     .line_offset = offsetof(struct problem_dep, line),
     .has_line = 1,
     .help = "dependencies: {from: GLOB|service:NAME, to: ...}"},
    {0},
};

static const struct tc_conf_field trend_fields[] = {
    {.key = "enabled",
     .type = TC_CONF_T_BOOL,
     CC(corr_trend),
     .def = "true",
     .help = "a class recurring count times in period makes a problem"},
    {.key = "count",
     .type = TC_CONF_T_UINT,
     CC(corr_trend_count),
     .def = "5",
     .min = 2,
     .max = PROBLEM_MAX_TREND,
     .help = "openings of one class"},
    {.key = "period",
     .type = TC_CONF_T_DURATION,
     CC(corr_trend_period_ms),
     .def = "7d",
     .min = 60 * 1000,
     .max = 365ull * 86400 * 1000,
     .help = "within this"},
    {0},
};

static const struct tc_conf_field major_fields[] = {
    {.key = "enabled",
     .type = TC_CONF_T_BOOL,
     CC(corr_major),
     .def = "true",
     .help = "a major incident resolving with no problem gets one"},
    {.key = "max_priority",
     .type = TC_CONF_T_UINT,
     CC(corr_major_priority),
     .def = "2",
     .min = 1,
     .max = 5,
     .help = "P1 up to this priority count as major"},
    {0},
};

static const struct tc_conf_field correlation_fields[] = {
    {.key = "resolve_after",
     .type = TC_CONF_T_DURATION,
     CC(corr_resolve_after_ms),
     .def = "1h",
     .min = 1000,
     .max = 30ull * 86400 * 1000,
     .help = "a problem whose incidents stay resolved this long resolves"},
    {.key = "spread", .type = TC_CONF_T_MAP, .sub = spread_fields},
    {.key = "reference", .type = TC_CONF_T_MAP, .sub = reference_fields},
    {.key = "topology", .type = TC_CONF_T_MAP, .sub = topology_fields},
    {.key = "trend", .type = TC_CONF_T_MAP, .sub = trend_fields},
    {.key = "major", .type = TC_CONF_T_MAP, .sub = major_fields},
    {0},
};

/* runbooks: (docs/runbooks.md); without it there are no runbooks. */
static const struct tc_conf_field runbooks_fields[] = {
    {.key = "dir",
     .type = TC_CONF_T_PATH,
     CC(runbooks_dir),
     .required = 1,
     .help = "directory of runbook files (*.md, YAML front matter)"},
    {0},
};

/* api: (docs/api.md); without api.listen there is no HTTP API. */
static const struct tc_conf_field api_tls_fields[] = {
    {.key = "cert",
     .type = TC_CONF_T_PATH,
     CC(api_tls_cert),
     .help = "certificate the API serves (PEM; default: tls.cert)"},
    {.key = "key",
     .type = TC_CONF_T_PATH,
     CC(api_tls_key),
     .help = "its private key (PEM; default: tls.key)"},
    {0},
};

static const struct tc_conf_field api_fields[] = {
    {.key = "listen",
     .type = TC_CONF_T_HOSTPORT,
     CC(api_listen),
     .help = "address of the HTTPS API (default: no API)"},
    {.key = "tls", .type = TC_CONF_T_MAP, .sub = api_tls_fields},
    {.key = "anonymous_read",
     .type = TC_CONF_T_BOOL,
     CC(api_anonymous_read),
     .def = "false",
     .help = "answer GET requests without a token"},
    {.key = "max_connections",
     .type = TC_CONF_T_UINT,
     CC(api_max_connections),
     .def = "256",
     .min = 1,
     .max = 100000,
     .help = "HTTP connections open at once; more are closed at accept"},
    /* Each waits for one of the API's two threadpool slots (api.md). */
    {.key = "max_queue",
     .type = TC_CONF_T_UINT,
     CC(api_max_queue),
     .def = "64",
     .min = 1,
     .max = 10000,
     .help = "requests waiting for the store at once; more get 503"},
    {.key = "max_page",
     .type = TC_CONF_T_UINT,
     CC(api_max_page),
     .def = "500",
     .min = 1,
     .max = 10000,
     .help = "rows one page may ask for (limit=)"},
    {.key = "request_timeout",
     .type = TC_CONF_T_DURATION,
     CC(api_request_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600 * 1000,
     .help = "a request, and an idle connection, must finish within this"},
    /* Read once at start-up (docs/dashboard.md): never a file read on
     * the loop. */
    {.key = "dashboard_dir",
     .type = TC_CONF_T_PATH,
     CC(api_dashboard_dir),
     .def = TOCSIN_DATADIR "/tocsin/dashboard",
     .help = "the dashboard's static files (index.html, app.js, style.css)"},
    {.key = "chart_js",
     .type = TC_CONF_T_PATH,
     CC(api_chart_js),
     .def = "/usr/share/javascript/chart.js/chart.min.js",
     .help = "Chart.js (Debian's libjs-chart.js), served as /static/chart.js"},
    {0},
};

static const struct tc_conf_field collector_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     CC(name),
     .min = 1,
     .max = 255,
     .help = "collector name (default: the host name)"},
    {.key = "listen",
     .type = TC_CONF_T_HOSTPORT,
     CC(listen),
     .def = "127.0.0.1:7400",
     .help = "address for agent connections"},
    {.key = "tls", .type = TC_CONF_T_MAP, .sub = tls_fields},
    {.key = "hints", .type = TC_CONF_T_MAP, .sub = hints_fields},
    {.key = "store", .type = TC_CONF_T_MAP, .sub = store_fields},
    {.key = "limits", .type = TC_CONF_T_MAP, .sub = limits_fields},
    /* Longer than a second would make acks, and so agents, stall. */
    {.key = "commit_interval",
     .type = TC_CONF_T_DURATION,
     CC(commit_interval_ms),
     .def = "5ms",
     .min = 0,
     .max = 1000,
     .help = "longest wait to group events into one commit"},
    {.key = "incidents", .type = TC_CONF_T_MAP, .sub = incidents_fields},
    {.key = "correlation", .type = TC_CONF_T_MAP, .sub = correlation_fields},
    {.key = "runbooks",
     .type = TC_CONF_T_MAP,
     .sub = runbooks_fields,
     .optional = 1},
    {.key = "api", .type = TC_CONF_T_MAP, .sub = api_fields},
    {0},
};

/* The line of a dotted key, else of the correlation: block, else 0. */
static int
corr_line(const struct tc_conf *conf, const char *dotted)
{
    const struct tc_conf_node *n = tc_conf_find(conf->root, dotted);

    if (n == NULL)
        n = tc_conf_find(conf->root, "correlation");
    return n ? n->line : 0;
}

/* One side of a dependency: a glob or "service:NAME" (a name, no glob). */
static int
dep_side_ok(const char *s)
{
    if (strncmp(s, "service:", 8) == 0)
        return s[8] != '\0' && strpbrk(s + 8, "*?[ ") == NULL;
    return strchr(s, ' ') == NULL;
}

/*
 * What the schema cannot say about correlation:: bounded counts and
 * lengths (the engine walks these lists for every incident), and
 * well-formed dependencies.
 */
static void
check_correlation(struct tc_conf *conf, const struct collector_config *c)
{
    int line = corr_line(conf, "correlation.reference.fields");

    if (c->corr_nreference_fields > PROBLEM_MAX_FIELDS)
        tc_conf_error(conf, line,
                      "correlation.reference.fields: %zu entries, at most %d",
                      c->corr_nreference_fields, PROBLEM_MAX_FIELDS);
    for (size_t i = 0; i < c->corr_nreference_fields; i++) {
        size_t len = strlen(c->corr_reference_fields[i]);

        if (len == 0 || len > PROBLEM_MAX_NAME)
            tc_conf_error(conf, line,
                          "correlation.reference.fields[%zu]: length %zu, "
                          "expected 1 to %d bytes",
                          i, len, PROBLEM_MAX_NAME);
    }
    line = corr_line(conf, "correlation.topology.depends_on");
    if (c->corr_ndeps > PROBLEM_MAX_DEPS)
        tc_conf_error(conf, line,
                      "correlation.topology.depends_on: %zu entries, at "
                      "most %d",
                      c->corr_ndeps, PROBLEM_MAX_DEPS);
    for (size_t i = 0; i < c->corr_ndeps; i++) {
        const struct problem_dep *d = &c->corr_deps[i];

        if (d->from == NULL || d->to == NULL)
            continue; /* reported as missing */
        if (!dep_side_ok(d->from))
            tc_conf_error(conf, d->line,
                          "correlation.topology.depends_on[%zu].from: '%s' "
                          "is neither a host glob nor service:NAME",
                          i, d->from);
        if (!dep_side_ok(d->to))
            tc_conf_error(conf, d->line,
                          "correlation.topology.depends_on[%zu].to: '%s' "
                          "is neither a host glob nor service:NAME",
                          i, d->to);
        if (strcmp(d->from, d->to) == 0)
            tc_conf_error(conf, d->line,
                          "correlation.topology.depends_on[%zu]: '%s' "
                          "depends on itself",
                          i, d->from);
    }
}

/*
 * hints.signing_key: its line when given; else the pki layout's key,
 * hint-signing.key in tls.key's directory, when that file exists (pki
 * init makes it there). Without either, no hint can be signed; that is
 * an error only once hints are sent.
 */
static void
hints_key_default(struct tc_conf *conf, struct collector_config *c)
{
    const struct tc_conf_node *n;
    const char *slash;

    if (c->hints_signing_key != NULL) {
        n = tc_conf_find(conf->root, "hints.signing_key");
        c->hints_signing_key_line = n != NULL ? n->line : 0;
        return;
    }
    if (c->tls_key == NULL || (slash = strrchr(c->tls_key, '/')) == NULL)
        return;
    char *def = tc_xasprintf("%.*s/hint-signing.key", (int)(slash - c->tls_key),
                             c->tls_key);
    if (access(def, F_OK) == 0)
        c->hints_signing_key = def;
    else
        free(def);
}

/*
 * api.tls: the collector's own identity unless both are given; one
 * without the other would pair a certificate with a key it does not
 * belong to.
 */
static void
api_tls_default(struct tc_conf *conf, struct collector_config *c)
{
    const struct tc_conf_node *n = tc_conf_find(conf->root, "api.tls");

    if (n == NULL)
        n = tc_conf_find(conf->root, "api");
    c->api_line = n ? n->line : 0;

    if ((c->api_tls_cert == NULL) != (c->api_tls_key == NULL)) {
        tc_conf_error(conf, n ? n->line : 0,
                      "api.tls: give both cert and key, or neither (the "
                      "collector's tls.cert and tls.key)");
        return;
    }
    if (c->api_tls_cert == NULL && c->tls_cert != NULL && c->tls_key != NULL) {
        c->api_tls_cert = tc_xstrdup(c->tls_cert);
        c->api_tls_key = tc_xstrdup(c->tls_key);
    }
}

/* The parsed file into a fresh config; frees conf. */
static int
config_from(struct tc_conf *conf, struct collector_config **out)
{
    struct collector_config *c = NULL;
    int rc;

    c = tc_xcalloc(1, sizeof(*c));
    c->file = tc_xstrdup(conf->path);
    if ((rc = tc_conf_apply(conf, collector_fields, c)) < 0)
        goto out;
    check_correlation(conf, c);
    api_tls_default(conf, c);
    if (conf->nerrors > 0) {
        rc = -EINVAL;
        goto out;
    }
    /* Hysteresis: a low above high would start and stop on one result. */
    if (c->inc_flap_low > c->inc_flap_high) {
        log_warnx("%s: incidents.flap_low (%" PRIu32
                  ") is above incidents.flap_high (%" PRIu32 ")",
                  conf->file, c->inc_flap_low, c->inc_flap_high);
        rc = -EINVAL;
        goto out;
    }
    hints_key_default(conf, c);
    if (c->name == NULL) {
        char host[HOST_NAME_MAX + 1];

        if (gethostname(host, sizeof(host)) < 0) {
            rc = -errno;
            log_warn("%s: gethostname (set 'name' instead)", conf->file);
            goto out;
        }
        host[sizeof(host) - 1] = '\0';
        c->name = tc_xstrdup(host);
    }
    *out = c;
    c = NULL;
out:
    config_free(c);
    tc_conf_free(conf);
    return rc;
}

int
config_load(const char *path, struct collector_config **out)
{
    struct tc_conf *conf = NULL;
    int rc;

    *out = NULL;
    if ((rc = tc_conf_load(path, &conf)) < 0)
        return rc;
    return config_from(conf, out);
}

int
config_load_mem(const char *name, const void *data, size_t len,
                struct collector_config **out)
{
    struct tc_conf *conf = NULL;
    int rc;

    *out = NULL;
    if ((rc = tc_conf_load_mem(name, data, len, &conf)) < 0)
        return rc;
    return config_from(conf, out);
}

void
config_free(struct collector_config *c)
{
    if (c == NULL)
        return;
    tc_conf_release(collector_fields, c);
    free(c->file);
    free(c);
}

void
config_incidents(const struct collector_config *c, struct incident_config *out)
{
    memset(out, 0, sizeof(*out));
    out->reopen_window_ns = (int64_t)c->inc_reopen_window_ms * 1000000;
    out->resolve_after_ns = (int64_t)c->inc_resolve_after_ms * 1000000;
    out->max_attempts = c->inc_max_attempts;
    out->flap_high = c->inc_flap_high;
    out->flap_low = c->inc_flap_low;
}

void
config_correlation(const struct collector_config *c, struct problem_config *out)
{
    problem_config_default(out);
    out->resolve_after_ns = (int64_t)c->corr_resolve_after_ms * 1000000;
    out->spread = c->corr_spread;
    out->spread_min_hosts = c->corr_spread_min_hosts;
    out->spread_window_ns = (int64_t)c->corr_spread_window_ms * 1000000;
    out->reference = c->corr_reference;
    out->reference_window_ns = (int64_t)c->corr_reference_window_ms * 1000000;
    out->reference_fields = c->corr_reference_fields;
    out->nreference_fields = c->corr_nreference_fields;
    out->deps = c->corr_deps;
    out->ndeps = c->corr_ndeps;
    out->topology_window_ns = (int64_t)c->corr_topology_window_ms * 1000000;
    out->trend = c->corr_trend;
    out->trend_count = c->corr_trend_count;
    out->trend_period_ns = (int64_t)c->corr_trend_period_ms * 1000000;
    out->major = c->corr_major;
    out->major_priority = (int)c->corr_major_priority;
}

/* Copy the correlation: block (its lists are deep copies). */
static void
reload_correlation(struct collector_config *cur,
                   const struct collector_config *next)
{
    char **fields = NULL;
    struct problem_dep *deps = NULL;

    if (next->corr_nreference_fields > 0) {
        fields = tc_xcalloc(next->corr_nreference_fields + 1, sizeof(*fields));
        for (size_t i = 0; i < next->corr_nreference_fields; i++)
            fields[i] = tc_xstrdup(next->corr_reference_fields[i]);
    }
    if (next->corr_ndeps > 0) {
        deps = tc_xcalloc(next->corr_ndeps, sizeof(*deps));
        for (size_t i = 0; i < next->corr_ndeps; i++) {
            deps[i].from = tc_xstrdup(next->corr_deps[i].from);
            deps[i].to = tc_xstrdup(next->corr_deps[i].to);
            deps[i].line = next->corr_deps[i].line;
        }
    }
    for (size_t i = 0; i < cur->corr_nreference_fields; i++)
        free(cur->corr_reference_fields[i]);
    free(cur->corr_reference_fields);
    for (size_t i = 0; i < cur->corr_ndeps; i++) {
        free(cur->corr_deps[i].from);
        free(cur->corr_deps[i].to);
    }
    free(cur->corr_deps);
    cur->corr_resolve_after_ms = next->corr_resolve_after_ms;
    cur->corr_spread = next->corr_spread;
    cur->corr_spread_min_hosts = next->corr_spread_min_hosts;
    cur->corr_spread_window_ms = next->corr_spread_window_ms;
    cur->corr_reference = next->corr_reference;
    cur->corr_reference_window_ms = next->corr_reference_window_ms;
    cur->corr_reference_fields = fields;
    cur->corr_nreference_fields = next->corr_nreference_fields;
    cur->corr_topology_window_ms = next->corr_topology_window_ms;
    cur->corr_deps = deps;
    cur->corr_ndeps = next->corr_ndeps;
    cur->corr_trend = next->corr_trend;
    cur->corr_trend_count = next->corr_trend_count;
    cur->corr_trend_period_ms = next->corr_trend_period_ms;
    cur->corr_major = next->corr_major;
    cur->corr_major_priority = next->corr_major_priority;
}

/* Warn about a restart-only string key that changed; 1 if it did. */
static int
restart_str(const char *file, const char *key, const char *cur,
            const char *next)
{
    if (strcmp(cur, next) == 0)
        return 0;
    log_warnx("%s: reload: %s changed (%s -> %s): takes effect at the next "
              "restart",
              file, key, cur, next);
    return 1;
}

/* NULL-safe: an absent api: section leaves its paths unset. */
static int
str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static int
restart_u64(const char *file, const char *key, uint64_t cur, uint64_t next)
{
    if (cur == next)
        return 0;
    log_warnx("%s: reload: %s changed (%" PRIu64 " -> %" PRIu64
              "): takes effect at the next restart",
              file, key, cur, next);
    return 1;
}

static void
swap_str(char **cur, const char *next)
{
    char *n = tc_xstrdup(next);

    free(*cur);
    *cur = n;
}

int
config_reload(struct collector_config *cur, const struct collector_config *next)
{
    int n = 0;

    n += restart_str(cur->file, "name", cur->name, next->name);
    n += restart_str(cur->file, "listen", cur->listen, next->listen);
    n +=
        restart_str(cur->file, "store.path", cur->store_path, next->store_path);
    n +=
        restart_u64(cur->file, "store.sync", cur->store_sync, next->store_sync);
    n += restart_u64(cur->file, "limits.pipeline_max_bytes",
                     cur->pipeline_max_bytes, next->pipeline_max_bytes);
    if ((cur->api_listen == NULL) != (next->api_listen == NULL) ||
        (cur->api_listen != NULL &&
         strcmp(cur->api_listen, next->api_listen) != 0) ||
        cur->api_anonymous_read != next->api_anonymous_read ||
        cur->api_max_connections != next->api_max_connections ||
        cur->api_max_queue != next->api_max_queue ||
        cur->api_max_page != next->api_max_page ||
        cur->api_request_timeout_ms != next->api_request_timeout_ms ||
        str_differs(cur->api_dashboard_dir, next->api_dashboard_dir) ||
        str_differs(cur->api_chart_js, next->api_chart_js)) {
        log_warnx("%s: reload: api changed: takes effect at the next restart",
                  cur->file);
        n++;
    }
    n += restart_u64(cur->file, "commit_interval (ms)", cur->commit_interval_ms,
                     next->commit_interval_ms);
    swap_str(&cur->tls_ca, next->tls_ca);
    swap_str(&cur->tls_cert, next->tls_cert);
    swap_str(&cur->tls_key, next->tls_key);
    free(cur->hints_signing_key);
    cur->hints_signing_key = next->hints_signing_key != NULL
                                 ? tc_xstrdup(next->hints_signing_key)
                                 : NULL;
    cur->hints_signing_key_line = next->hints_signing_key_line;
    cur->max_agents = next->max_agents;
    cur->max_pending = next->max_pending;
    cur->sessions_per_agent = next->sessions_per_agent;
    cur->session_memory = next->session_memory;
    cur->handshake_timeout_ms = next->handshake_timeout_ms;
    cur->idle_timeout_ms = next->idle_timeout_ms;
    cur->inc_reopen_window_ms = next->inc_reopen_window_ms;
    cur->inc_resolve_after_ms = next->inc_resolve_after_ms;
    cur->inc_max_attempts = next->inc_max_attempts;
    cur->inc_flap_high = next->inc_flap_high;
    cur->inc_flap_low = next->inc_flap_low;
    reload_correlation(cur, next);
    free(cur->runbooks_dir);
    cur->runbooks_dir =
        next->runbooks_dir ? tc_xstrdup(next->runbooks_dir) : NULL;
    return n;
}
