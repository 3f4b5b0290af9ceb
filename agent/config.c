/*
 * config: the agent's configuration file, described as schema tables
 * for common/conf (key, type, field, default, bounds, help); see
 * config.h and docs/configuration.md. Only checks that span fields live
 * in code here.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#define AC(member) TC_CONF_AT(struct agent_config, member)

static int
parse_severity(const char *s, void *dst)
{
    enum tc_severity sev;
    int rc;

    if ((rc = tc_severity_parse(s, &sev)) < 0)
        return rc;
    memcpy(dst, &sev, sizeof(sev));
    return 0;
}

/* Rule names identify a rule in events and incidents, per file. */
static void
check_rule_names(struct tc_conf *c, const struct tc_conf_node *seq, void *base)
{
    const struct agent_file *f = base;

    for (size_t i = 0; i < f->nrules; i++) {
        for (size_t j = 0; j < i; j++) {
            if (f->rules[i].name == NULL || f->rules[j].name == NULL ||
                strcmp(f->rules[i].name, f->rules[j].name) != 0)
                continue;
            tc_conf_error(c, f->rules[i].line,
                          "rule name '%s' is used twice in this file "
                          "(first at line %d)",
                          f->rules[i].name, f->rules[j].line);
            break;
        }
    }
}

static const struct tc_conf_field collector_fields[] = {
    {.key = "address",
     .type = TC_CONF_T_HOSTPORT,
     AC(collector_address),
     .required = 1,
     .help = "collector host:port"},
    {.key = "server_name",
     .type = TC_CONF_T_STRING,
     AC(collector_server_name),
     .min = 1,
     .help = "name to verify in the collector's certificate"},
    {0},
};

static const struct tc_conf_field tls_fields[] = {
    {.key = "ca",
     .type = TC_CONF_T_PATH,
     AC(tls_ca),
     .required = 1,
     .help = "CA certificate that signed the collector (PEM)"},
    {.key = "cert",
     .type = TC_CONF_T_PATH,
     AC(tls_cert),
     .required = 1,
     .help = "this agent's certificate (PEM)"},
    {.key = "key",
     .type = TC_CONF_T_PATH,
     AC(tls_key),
     .required = 1,
     .help = "this agent's private key (PEM)"},
    {0},
};

static const struct tc_conf_field spool_fields[] = {
    {.key = "max_bytes",
     .type = TC_CONF_T_SIZE,
     AC(spool_max_bytes),
     .def = "256MiB",
     .min = 1 << 20,
     .help = "spool size cap"},
    {0},
};

static const struct tc_conf_field sender_fields[] = {
    /* The collector refuses EVENTS frames over the wire's batch limit. */
    {.key = "batch_max_events",
     .type = TC_CONF_T_UINT,
     AC(batch_max_events),
     .def = "1000",
     .min = 1,
     .max = TC_WIRE_MAX_BATCH,
     .help = "events per EVENTS frame"},
    {.key = "window_batches",
     .type = TC_CONF_T_UINT,
     AC(window_batches),
     .def = "8",
     .min = 1,
     .max = 1024,
     .help = "unacknowledged batches in flight"},
    {.key = "backoff_min",
     .type = TC_CONF_T_DURATION,
     AC(backoff_min_ms),
     .def = "200ms",
     .min = 10,
     .max = 3600 * 1000,
     .help = "first reconnect delay"},
    {.key = "backoff_max",
     .type = TC_CONF_T_DURATION,
     AC(backoff_max_ms),
     .def = "30s",
     .min = 10,
     .max = 86400 * 1000,
     .help = "longest reconnect delay"},
    {0},
};

static const struct tc_conf_field tail_fields[] = {
    {.key = "poll_interval",
     .type = TC_CONF_T_DURATION,
     AC(poll_interval_ms),
     .def = "250ms",
     .min = 10,
     .max = 3600 * 1000,
     .help = "file poll interval when change events are unavailable"},
    {.key = "read_max_bytes",
     .type = TC_CONF_T_SIZE,
     AC(read_max_bytes),
     .def = "1MiB",
     .min = 4096,
     .max = 1 << 30,
     .help = "bytes read from one file per pass"},
    /* A line travels as one wire string, so it cannot exceed that limit. */
    {.key = "max_line_bytes",
     .type = TC_CONF_T_SIZE,
     AC(max_line_bytes),
     .def = "64KiB",
     .min = 256,
     .max = TC_WIRE_MAX_STR,
     .help = "longer lines are cut"},
    {0},
};

static const struct tc_conf_field rule_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_rule, name),
     .required = 1,
     .min = 1,
     .max = 128,
     .help = "rule name, unique within its file"},
    {.key = "match",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_rule, match),
     .required = 1,
     .min = 1,
     .help = "PCRE2 pattern"},
    {.key = "severity",
     .type = TC_CONF_T_CUSTOM,
     TC_CONF_AT(struct agent_rule, severity),
     .def = "error",
     .parse = parse_severity,
     .expect = "a severity (ok, info, warning, error, critical)",
     .help = "severity of the events"},
    {0},
};

static const struct tc_conf_field file_fields[] = {
    {.key = "path",
     .type = TC_CONF_T_PATH,
     TC_CONF_AT(struct agent_file, path),
     .required = 1,
     .help = "log file to tail"},
    {.key = "rules",
     .type = TC_CONF_T_SEQ,
     TC_CONF_AT(struct agent_file, rules),
     .sub = rule_fields,
     .elem_size = sizeof(struct agent_rule),
     .count_offset = offsetof(struct agent_file, nrules),
     .line_offset = offsetof(struct agent_rule, line),
     .has_line = 1,
     .check = check_rule_names,
     .help = "rules applied to each line"},
    {0},
};

static const struct tc_conf_field agent_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     AC(name),
     .min = 1,
     .max = 255,
     .help = "agent name (default: the TLS certificate's CN)"},
    {.key = "collector", .type = TC_CONF_T_MAP, .sub = collector_fields},
    {.key = "tls", .type = TC_CONF_T_MAP, .sub = tls_fields},
    {.key = "state_dir",
     .type = TC_CONF_T_PATH,
     AC(state_dir),
     .required = 1,
     .help = "spool and offsets"},
    {.key = "spool", .type = TC_CONF_T_MAP, .sub = spool_fields},
    {.key = "sender", .type = TC_CONF_T_MAP, .sub = sender_fields},
    {.key = "tail", .type = TC_CONF_T_MAP, .sub = tail_fields},
    {.key = "files",
     .type = TC_CONF_T_SEQ,
     AC(files),
     .sub = file_fields,
     .elem_size = sizeof(struct agent_file),
     .count_offset = offsetof(struct agent_config, nfiles),
     .line_offset = offsetof(struct agent_file, line),
     .has_line = 1,
     .help = "log files and their rules"},
    {0},
};

/* Checks that involve more than one field. */
static void
check_config(struct tc_conf *conf, struct agent_config *c)
{
    if (c->backoff_min_ms > c->backoff_max_ms) {
        const struct tc_conf_node *n =
            tc_conf_find(conf->root, "sender.backoff_min");
        tc_conf_error(conf, n ? n->line : 1,
                      "sender.backoff_min (%llums) is above "
                      "sender.backoff_max (%llums)",
                      (unsigned long long)c->backoff_min_ms,
                      (unsigned long long)c->backoff_max_ms);
    }
}

int
config_load(const char *path, struct agent_config **out)
{
    struct tc_conf *conf = NULL;
    struct agent_config *c = NULL;
    int rc;

    *out = NULL;
    if ((rc = tc_conf_load(path, &conf)) < 0)
        return rc;
    c = tc_xcalloc(1, sizeof(*c));
    c->file = tc_xstrdup(conf->path);
    if ((rc = tc_conf_apply(conf, agent_fields, c)) < 0)
        goto out;
    check_config(conf, c);
    if (conf->nerrors > 0) {
        rc = -EINVAL;
        goto out;
    }
    /* Verify the collector under the name we dial unless told otherwise. */
    if (c->collector_server_name == NULL) {
        uint16_t port;
        if ((rc = tc_hostport_split(c->collector_address,
                                    &c->collector_server_name, &port)) < 0)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    config_free(c);
    tc_conf_free(conf);
    return rc;
}

void
config_free(struct agent_config *c)
{
    if (c == NULL)
        return;
    tc_conf_release(agent_fields, c);
    free(c->file);
    free(c);
}
