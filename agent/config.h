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

#include "wire.h"

struct agent_rule {
    char *name;                /* unique within its file; required */
    char *match;               /* PCRE2 pattern; required */
    enum tc_severity severity; /* default TC_SEV_ERROR */
    int line;                  /* line of the rule in the config file */
};

struct agent_file {
    char *path;               /* absolute path (no globs yet) */
    struct agent_rule *rules; /* nrules entries, in config order */
    size_t nrules;
    int line;
};

struct agent_config {
    char *file;                        /* absolute path of the config file */
    char *name;                        /* agent name; default: TLS cert CN */
    char *collector_address;           /* "host:port"; required */
    char *collector_server_name;       /* name to verify; default: host part */
    char *tls_ca, *tls_cert, *tls_key; /* required */
    char *state_dir;           /* required; spool and offsets live here */
    uint64_t spool_max_bytes;  /* default 256 MiB; min 1 MiB */
    uint32_t batch_max_events; /* per EVENTS frame; default 1000 */
    uint32_t window_batches;   /* unacked batches in flight; default 8 */
    uint64_t backoff_min_ms;   /* reconnect backoff floor; default 200 */
    uint64_t backoff_max_ms;   /* ceiling; default 30000 */
    uint64_t poll_interval_ms; /* file poll fallback; default 250 */
    uint64_t read_max_bytes;   /* per file per read pass; default 1 MiB */
    uint32_t max_line_bytes;   /* longer lines are cut; default 64 KiB */
    struct agent_file *files;
    size_t nfiles;
};

int config_load(const char *path, struct agent_config **out);
void config_free(struct agent_config *c);

#endif
