/*
 * config: the agent's configuration (docs/configuration.md).
 *
 * config_load parses YAML into a fresh struct agent_config; on error it
 * logs "FILE:LINE: message" for each problem with log_warnx and returns
 * a negative errno, leaving nothing allocated. Relative paths in the
 * file are resolved against the config file's directory, so every path
 * below is absolute (or as given if already absolute). Nothing here
 * compiles regexes or opens files: that is for rules.c and tail.c,
 * which report their own errors with the same FILE:LINE (kept in the
 * *_line fields).
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "actions.h"
#include "conf.h"
#include "wire.h"

/* Labels are string pairs (conf.h's struct tc_conf_kv, both owned). */

enum agent_action {
    AGENT_ACTION_SEND = 0, /* a matching line becomes an event */
    AGENT_ACTION_DROP = 1, /* a matching line is consumed silently */
};

enum agent_start_at {
    AGENT_START_BEGINNING = 0, /* read a file first seen from byte 0 */
    AGENT_START_END = 1,       /* only what is written after first sight */
};

struct agent_rule {
    char *name;                /* unique within its input; required */
    char *match;               /* PCRE2 pattern; required */
    enum tc_severity severity; /* default TC_SEV_ERROR */
    char *fingerprint;         /* template, e.g. "{rule}:{code}"; NULL:
                                  the collector's default (host + rule) */
    struct tc_conf_kv *labels; /* added to the event's labels */
    size_t nlabels;
    enum agent_action action; /* default send */
    char *time_field;         /* capture holding the event's own time */
    char *time_format;        /* strptime format for it; default ISO 8601
                                 "%Y-%m-%dT%H:%M:%S" (fraction and zone
                                 suffix accepted) */
    uint64_t fold_window_ms;  /* identical fingerprints folded; 0 = off */
    uint32_t rate_max;        /* events per rate_per_ms; 0 = no limit */
    uint64_t rate_per_ms;     /* rate limit period; default 1m */
    int line;                 /* line of the rule in the config file */
};

struct agent_multiline {
    char *start;        /* PCRE2: a line matching it starts a record;
                           NULL = every line is a record */
    uint32_t max_lines; /* lines joined at most; default 500 */
};

struct agent_file {
    char *path;     /* absolute path or glob pattern */
    char **exclude; /* fnmatch patterns on the full path */
    size_t nexclude;
    char **follow_symlinks; /* absolute directories a symlink may lead
                               into; none: matches of a pattern are
                               never read through a symlink */
    size_t nfollow_symlinks;
    enum agent_start_at start_at; /* default beginning */
    struct agent_multiline multiline;
    struct tc_conf_kv *labels; /* added to every event of this input */
    size_t nlabels;
    struct agent_rule *rules; /* nrules entries, in config order */
    size_t nrules;
    int line;
};

/* A journald input: the system journal filtered by unit and priority. */
struct agent_journal {
    char *name;      /* source name in events and cursor key; unique;
                        default "journal" */
    char *namespace; /* journal namespace (systemd-journald@NAMESPACE);
                        NULL: the default namespace */
    char **units;    /* _SYSTEMD_UNIT values; none = all */
    size_t nunits;
    uint32_t priority;            /* include 0 (emerg) .. priority; default 7 */
    enum agent_start_at start_at; /* without a stored cursor; default end */
    struct tc_conf_kv *labels;
    size_t nlabels;
    struct agent_rule *rules; /* matched against MESSAGE; none = ship
                                 every entry at its syslog severity */
    size_t nrules;
    int line;
};

enum agent_check_type {
    AGENT_CHECK_EXEC = 0,     /* Nagios-compatible plugin, argv, no shell */
    AGENT_CHECK_TCP = 1,      /* connect to address */
    AGENT_CHECK_HTTP = 2,     /* GET url; status and body match */
    AGENT_CHECK_DISK = 3,     /* free space of the filesystem at path */
    AGENT_CHECK_PROCESS = 4,  /* a process named process is running */
    AGENT_CHECK_FILE_AGE = 5, /* mtime of path is recent */
};

struct agent_check {
    char *name;                 /* unique; the event's rule and source */
    enum agent_check_type type; /* required */
    uint64_t interval_ms;       /* 0: check_defaults.interval */
    uint64_t timeout_ms;        /* 0: check_defaults.timeout */
    uint64_t resend_ms;         /* 0: check_defaults.resend */
    char **command;             /* exec: argv[0] absolute path, args */
    size_t ncommand;
    char *address;              /* tcp: host:port */
    char *url;                  /* http: http:// or https:// URL */
    uint32_t expect_status;     /* http: default 200 */
    char *expect_body;          /* http: substring the body must contain */
    char *ca;                   /* http: CA file for https; default: system */
    char *path;                 /* disk: mount point; file_age: file */
    uint32_t warning_free_pct;  /* disk: WARNING below; default 15 */
    uint32_t critical_free_pct; /* disk: CRITICAL below; default 5 */
    uint64_t warning_age_ms;    /* file_age: WARNING older; default 5m */
    uint64_t critical_age_ms;   /* file_age: CRITICAL older; default 15m */
    char *process;              /* process: name as in /proc/PID/comm */
    uint32_t min_count;         /* process: fewer is CRITICAL; default 1 */
    struct tc_conf_kv *labels;
    size_t nlabels;
    int line;
};

struct agent_config {
    char *file;                /* absolute path of the config file */
    char *name;                /* agent name; default: TLS cert CN */
    struct tc_conf_kv *labels; /* added to every event of this agent */
    size_t nlabels;
    char *collector_address;           /* "host:port"; required */
    char *collector_server_name;       /* name to verify; default: host part */
    char *tls_ca, *tls_cert, *tls_key; /* required */
    char *state_dir;           /* required; spool and offsets live here */
    char *status_socket;       /* default STATE_DIR/agent.sock */
    char *hints_public_key;    /* hints.public_key: Ed25519 PEM that
                                  verifies hints; NULL: hints refused */
    int hints_public_key_line; /* its line in the file, for errors */
    uint64_t heartbeat_ms;     /* PING interval; default 30s */
    uint64_t spool_max_bytes;  /* default 256 MiB; min 1 MiB */
    uint32_t batch_max_events; /* per EVENTS frame; default 1000 */
    uint32_t window_batches;   /* unacked batches in flight; default 64 */
    uint64_t backoff_min_ms;   /* reconnect backoff floor; default 200 */
    uint64_t backoff_max_ms;   /* ceiling; default 30000 */
    uint64_t poll_interval_ms; /* file poll fallback; default 250 */
    int inotify;               /* 1: watch directories; default 1 */
    uint64_t read_max_bytes;   /* per file per read pass; default 1 MiB */
    uint32_t max_line_bytes;   /* longer lines are cut; default 64 KiB */
    uint64_t flush_timeout_ms; /* a partial last line (or multiline
                                  record) is sent after this; 5s */
    struct agent_file *files;
    size_t nfiles;
    struct agent_journal *journals;
    size_t njournals;
    uint64_t check_interval_ms;    /* check_defaults.interval; 60s */
    uint64_t check_timeout_ms;     /* check_defaults.timeout; 10s */
    uint64_t check_resend_ms;      /* check_defaults.resend; 15m */
    uint32_t check_max_concurrent; /* check_defaults.max_concurrent; 4 */
    struct agent_check *checks;
    size_t nchecks;
    struct action_list actions; /* the allowlist (actions.h) */
};

int config_load(const char *path, struct agent_config **out);
/* The same from len bytes of YAML at data, named name (fuzzing, tests). */
int config_load_mem(const char *name, const void *data, size_t len,
                    struct agent_config **out);
void config_free(struct agent_config *c);

#endif
