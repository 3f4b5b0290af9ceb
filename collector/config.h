/*
 * config: the collector's configuration (docs/configuration.md).
 *
 * config_load parses YAML into a fresh struct collector_config; on error
 * it logs "FILE:LINE: message" with log_warnx and returns a negative
 * errno, leaving nothing allocated. Relative paths resolve against the
 * config file's directory. tocsinctl reads the same file to find the
 * store.
 */
#ifndef COLLECTOR_CONFIG_H
#define COLLECTOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum config_sync {
    CONFIG_SYNC_FULL = 0,   /* fsync every group commit (default) */
    CONFIG_SYNC_NORMAL = 1, /* WAL without fsync per commit */
};

struct collector_config {
    char *file;   /* absolute path of the config file */
    char *name;   /* collector name; default: gethostname() */
    char *listen; /* "host:port"; default 127.0.0.1:7400 */
    char *tls_ca, *tls_cert, *tls_key; /* required */
    char *hints_signing_key;    /* hints.signing_key (Ed25519 PEM); default
                                   hint-signing.key beside tls.key when it
                                   exists; NULL: none */
    int hints_signing_key_line; /* its line; 0 = the default */
    char *store_path;           /* SQLite file; required */
    enum config_sync store_sync;
    uint64_t pipeline_max_bytes;   /* decoded-but-uncommitted cap;
                                      default 64 MiB */
    uint64_t commit_interval_ms;   /* max wait to group a commit;
                                      default 5 */
    uint32_t max_agents;           /* agents with a session past HELLO;
                                      default 10000 */
    uint32_t max_pending;          /* connections before HELLO (TLS or
                                      HELLO not done); default 1024 */
    uint32_t sessions_per_agent;   /* open sessions with one certificate
                                      CN, HELLO or not; default 4 */
    uint64_t session_memory;       /* bytes of all sessions' receive and
                                      send buffers; default 256 MiB */
    uint64_t handshake_timeout_ms; /* default 10000 */
    uint64_t idle_timeout_ms;      /* no frame at all; default 120000 */
    /* incidents: (docs/internals/incidents.md) */
    uint64_t inc_reopen_window_ms; /* recurrence reopens within; 1h */
    uint64_t inc_resolve_after_ms; /* quiet log incident resolves; 30m */
    uint32_t inc_max_attempts;     /* non-OK check results before an
                                      incident opens; default 3 */
    uint32_t inc_flap_high;        /* percent state change that starts
                                      flapping; default 50, 0 = off */
    uint32_t inc_flap_low;         /* percent that stops it; default 25,
                                      at most flap_high */
    /* correlation: (docs/correlation.md); every window in ms */
    uint64_t corr_resolve_after_ms;    /* problem quiet this long resolves;
                                          default 1h */
    int corr_spread;                   /* spread rule on; default true */
    uint32_t corr_spread_min_hosts;    /* default 3 */
    uint64_t corr_spread_window_ms;    /* default 10m */
    int corr_reference;                /* reference rule on; default true */
    uint64_t corr_reference_window_ms; /* default 10m */
    char **corr_reference_fields;      /* captured fields to search (owned);
                                          none: every field */
    size_t corr_nreference_fields;
    uint64_t corr_topology_window_ms; /* default 10m */
    struct problem_dep *corr_deps;    /* topology depends_on (owned) */
    size_t corr_ndeps;
    int corr_trend;                /* trend rule on; default true */
    uint32_t corr_trend_count;     /* openings; default 5 */
    uint64_t corr_trend_period_ms; /* default 7d */
    int corr_major;                /* major rule on; default true */
    uint32_t corr_major_priority;  /* P1..this are major; default 2 */
    char *runbooks_dir; /* runbooks: {dir: PATH}; NULL = no runbooks */
    /* api: the HTTP API (docs/api.md, docs/internals/api.md) */
    char *api_listen;                 /* "host:port"; NULL = no API */
    char *api_tls_cert, *api_tls_key; /* PEM; default tls.cert, tls.key */
    int api_anonymous_read;           /* 1: GETs without a token; default 0 */
    uint32_t api_max_connections;     /* open HTTP connections; default 256 */
    uint32_t api_max_queue;           /* requests waiting for or in a
                                         worker; beyond: 503; default 64 */
    uint32_t api_max_page;            /* rows a page may ask for
                                         (limit=); default 500 */
    uint64_t api_request_timeout_ms;  /* a request, and an idle keep-alive
                                         connection, within; default 10 s */
    char *api_dashboard_dir; /* the dashboard's files (docs/dashboard.md) */
    char *api_chart_js;      /* Chart.js, served as /static/chart.js */
    int api_line; /* line of api.tls when given, else of api:; 0 = none */
};

struct incident_config;
struct problem_config;
struct problem_dep;

int config_load(const char *path, struct collector_config **out);
/* The same from len bytes of YAML at data, named name (fuzzing, tests). */
int config_load_mem(const char *name, const void *data, size_t len,
                    struct collector_config **out);
void config_free(struct collector_config *c);

/* The incident engine's thresholds from the incidents: block. */
void config_incidents(const struct collector_config *c,
                      struct incident_config *out);

/*
 * The problem engine's rules from the correlation: block. out borrows
 * c's strings and arrays: keep c until the engine has copied them
 * (problem_engine_new or _set_config).
 */
void config_correlation(const struct collector_config *c,
                        struct problem_config *out);

/*
 * Reload (SIGHUP): copy into cur what a running collector can change
 * from next, an already validated configuration: the TLS file paths
 * (the caller loads and swaps the context), max_agents, max_pending,
 * sessions_per_agent, session_memory, the handshake
 * and idle timeouts, the incidents: and the correlation: blocks, and
 * runbooks.dir (the caller loads the directory). For each key
 * that needs a restart (name, listen, store, limits.pipeline_max_bytes,
 * commit_interval) and differs, log a warning naming it; cur keeps its
 * value. Returns how many such keys differ.
 */
int config_reload(struct collector_config *cur,
                  const struct collector_config *next);

#endif
