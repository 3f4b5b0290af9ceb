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
#include "rules.h"
#include "util.h"

#define AC(member) TC_CONF_AT(struct agent_config, member)

/* systemd's limit: the name must fit a file name after "MACHINE_ID.". */
#define JOURNAL_NAMESPACE_MAX (255 - 32 - 1)

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

/* Rule names identify a rule in events and incidents, per input. */
static void
check_unique_rules(struct tc_conf *c, const struct agent_rule *rules, size_t n)
{
    const char **names = tc_xcalloc(n, sizeof(*names));
    size_t *first = tc_xcalloc(n, sizeof(*first));

    for (size_t i = 0; i < n; i++)
        names[i] = rules[i].name;
    tc_conf_find_dups(names, n, first);
    for (size_t i = 0; i < n; i++)
        if (first[i] != SIZE_MAX)
            tc_conf_error(c, rules[i].line,
                          "rule name '%s' is used twice in this input "
                          "(first at line %d)",
                          rules[i].name, rules[first[i]].line);
    free(names);
    free(first);
}

static void
check_rule_names(struct tc_conf *c, const struct tc_conf_node *seq, void *base)
{
    const struct agent_file *f = base;
    check_unique_rules(c, f->rules, f->nrules);
}

static void
check_journal_rule_names(struct tc_conf *c, const struct tc_conf_node *seq,
                         void *base)
{
    const struct agent_journal *j = base;
    check_unique_rules(c, j->rules, j->nrules);
}

static const struct tc_conf_enum priority_enums[] = {
    {"emerg", 0},  {"alert", 1}, {"crit", 2},  {"err", 3}, {"warning", 4},
    {"notice", 5}, {"info", 6},  {"debug", 7}, {NULL, 0},
};

static const struct tc_conf_enum check_type_enums[] = {
    {"exec", AGENT_CHECK_EXEC},
    {"tcp", AGENT_CHECK_TCP},
    {"http", AGENT_CHECK_HTTP},
    {"disk", AGENT_CHECK_DISK},
    {"process", AGENT_CHECK_PROCESS},
    {"file_age", AGENT_CHECK_FILE_AGE},
    {NULL, 0},
};

#define CK(member) TC_CONF_AT(struct agent_check, member)

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

static const struct tc_conf_field hints_fields[] = {
    {.key = "public_key",
     .type = TC_CONF_T_PATH,
     AC(hints_public_key),
     .help = "the collector's hint-signing public key (PEM); without it "
             "every hint is refused"},
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
    /*
     * Enough to cover an ack's round trip (the collector's commit and
     * fsync, and the commit before it, 30-50 ms on the bench machine
     * while the agent reads ahead) at a million events a second: with 8
     * the link sat idle waiting for acks, and with 32 ship-all still
     * ran 15% slower than with 64. The collector's memory for what is
     * in flight is bounded by its pipeline cap, not by this.
     */
    {.key = "window_batches",
     .type = TC_CONF_T_UINT,
     AC(window_batches),
     .def = "64",
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
    {.key = "inotify",
     .type = TC_CONF_T_BOOL,
     AC(inotify),
     .def = "true",
     .help = "watch directories with inotify; false: poll only (network "
             "file systems)"},
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
    {.key = "flush_timeout",
     .type = TC_CONF_T_DURATION,
     AC(flush_timeout_ms),
     .def = "5s",
     .min = 10,
     .max = 3600 * 1000,
     .help = "a partial last line or open multiline record is sent "
             "after this"},
    {0},
};

static const struct tc_conf_enum action_enums[] = {
    {"send", AGENT_ACTION_SEND},
    {"drop", AGENT_ACTION_DROP},
    {NULL, 0},
};

static const struct tc_conf_enum start_enums[] = {
    {"beginning", AGENT_START_BEGINNING},
    {"end", AGENT_START_END},
    {NULL, 0},
};

/* The map fields below are applied to the rule itself (offset 0). */
static const struct tc_conf_field rule_time_fields[] = {
    {.key = "field",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_rule, time_field),
     .required = 1,
     .min = 1,
     .help = "named capture holding the time"},
    {.key = "format",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_rule, time_format),
     .min = 1,
     .help = "strptime format; default ISO 8601"},
    {0},
};

static const struct tc_conf_field rule_rate_fields[] = {
    {.key = "max",
     .type = TC_CONF_T_UINT,
     TC_CONF_AT(struct agent_rule, rate_max),
     .required = 1,
     .min = 1,
     .help = "events allowed per period"},
    {.key = "per",
     .type = TC_CONF_T_DURATION,
     TC_CONF_AT(struct agent_rule, rate_per_ms),
     .def = "1m",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "the period"},
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
    {.key = "fingerprint",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_rule, fingerprint),
     .min = 1,
     .max = 512,
     .help = "template naming what is 'the same problem', e.g. "
             "{rule}:{code}"},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     TC_CONF_AT(struct agent_rule, labels),
     .count_offset = offsetof(struct agent_rule, nlabels),
     .help = "labels added to the events"},
    {.key = "action",
     .type = TC_CONF_T_ENUM,
     TC_CONF_AT(struct agent_rule, action),
     .enums = action_enums,
     .def = "send",
     .help = "send an event, or drop the line"},
    {.key = "time",
     .type = TC_CONF_T_MAP,
     .optional = 1,
     .sub = rule_time_fields,
     .help = "take the event time from a capture"},
    {.key = "fold_window",
     .type = TC_CONF_T_DURATION,
     TC_CONF_AT(struct agent_rule, fold_window_ms),
     .def = "0",
     .max = 3600 * 1000,
     .help = "identical fingerprints within this window are sent once "
             "with a count"},
    {.key = "rate_limit",
     .type = TC_CONF_T_MAP,
     .optional = 1,
     .sub = rule_rate_fields,
     .help = "at most max events per period, then a summary"},
    {0},
};

static const struct tc_conf_field multiline_fields[] = {
    {.key = "start",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_multiline, start),
     .required = 1,
     .min = 1,
     .help = "PCRE2: a line matching it starts a new record"},
    {.key = "max_lines",
     .type = TC_CONF_T_UINT,
     TC_CONF_AT(struct agent_multiline, max_lines),
     .def = "500",
     .min = 1,
     .max = 100000,
     .help = "lines joined into one record at most"},
    {0},
};

static const struct tc_conf_field file_fields[] = {
    {.key = "path",
     .type = TC_CONF_T_PATH,
     TC_CONF_AT(struct agent_file, path),
     .required = 1,
     .help = "log file or glob pattern to tail"},
    {.key = "exclude",
     .type = TC_CONF_T_STRLIST,
     TC_CONF_AT(struct agent_file, exclude),
     .count_offset = offsetof(struct agent_file, nexclude),
     .help = "glob patterns of paths not to tail"},
    {.key = "follow_symlinks",
     .type = TC_CONF_T_STRLIST,
     TC_CONF_AT(struct agent_file, follow_symlinks),
     .count_offset = offsetof(struct agent_file, nfollow_symlinks),
     .help = "directories a symlink may lead into (e.g. /var/log/pods)"},
    {.key = "start_at",
     .type = TC_CONF_T_ENUM,
     TC_CONF_AT(struct agent_file, start_at),
     .enums = start_enums,
     .def = "beginning",
     .help = "where to start in a file seen for the first time"},
    {.key = "multiline",
     .type = TC_CONF_T_MAP,
     .optional = 1,
     TC_CONF_AT(struct agent_file, multiline),
     .sub = multiline_fields,
     .help = "join continuation lines into one record"},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     TC_CONF_AT(struct agent_file, labels),
     .count_offset = offsetof(struct agent_file, nlabels),
     .help = "labels added to every event of this file"},
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

static const struct tc_conf_field journal_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_journal, name),
     .def = "journal",
     .min = 1,
     .max = 128,
     .help = "source name of the events"},
    {.key = "namespace",
     .type = TC_CONF_T_STRING,
     TC_CONF_AT(struct agent_journal, namespace),
     .min = 1,
     .max = JOURNAL_NAMESPACE_MAX,
     .help = "journal namespace to read (default: the default one)"},
    {.key = "units",
     .type = TC_CONF_T_STRLIST,
     TC_CONF_AT(struct agent_journal, units),
     .count_offset = offsetof(struct agent_journal, nunits),
     .help = "systemd units to follow (default: all)"},
    {.key = "priority",
     .type = TC_CONF_T_ENUM,
     TC_CONF_AT(struct agent_journal, priority),
     .enums = priority_enums,
     .def = "debug",
     .help = "least important priority included"},
    {.key = "start_at",
     .type = TC_CONF_T_ENUM,
     TC_CONF_AT(struct agent_journal, start_at),
     .enums = start_enums,
     .def = "end",
     .help = "where to start without a stored cursor"},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     TC_CONF_AT(struct agent_journal, labels),
     .count_offset = offsetof(struct agent_journal, nlabels),
     .help = "labels added to every event of this input"},
    {.key = "rules",
     .type = TC_CONF_T_SEQ,
     TC_CONF_AT(struct agent_journal, rules),
     .sub = rule_fields,
     .elem_size = sizeof(struct agent_rule),
     .count_offset = offsetof(struct agent_journal, nrules),
     .line_offset = offsetof(struct agent_rule, line),
     .has_line = 1,
     .check = check_journal_rule_names,
     .help = "rules applied to MESSAGE"},
    {0},
};

static const struct tc_conf_field check_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     CK(name),
     .required = 1,
     .min = 1,
     .max = 128,
     .help = "check name, unique"},
    {.key = "type",
     .type = TC_CONF_T_ENUM,
     CK(type),
     .enums = check_type_enums,
     .required = 1,
     .help = "exec, tcp, http, disk, process or file_age"},
    {.key = "interval",
     .type = TC_CONF_T_DURATION,
     CK(interval_ms),
     .min = 1000,
     .max = 86400 * 1000,
     .help = "time between runs"},
    {.key = "timeout",
     .type = TC_CONF_T_DURATION,
     CK(timeout_ms),
     .min = 100,
     .max = 3600 * 1000,
     .help = "a run is stopped after this"},
    {.key = "resend",
     .type = TC_CONF_T_DURATION,
     CK(resend_ms),
     .min = 1000,
     .max = 7 * 86400 * 1000ull,
     .help = "current state re-sent this often"},
    {.key = "command",
     .type = TC_CONF_T_STRLIST,
     CK(command),
     .count_offset = offsetof(struct agent_check, ncommand),
     .help = "exec: the plugin and its arguments (no shell)"},
    {.key = "address",
     .type = TC_CONF_T_HOSTPORT,
     CK(address),
     .help = "tcp: host:port"},
    {.key = "url",
     .type = TC_CONF_T_STRING,
     CK(url),
     .min = 8,
     .help = "http: the URL to GET"},
    {.key = "expect_status",
     .type = TC_CONF_T_UINT,
     CK(expect_status),
     .def = "200",
     .min = 100,
     .max = 599,
     .help = "http: status wanted"},
    {.key = "expect_body",
     .type = TC_CONF_T_STRING,
     CK(expect_body),
     .min = 1,
     .help = "http: text the body must contain"},
    {.key = "ca",
     .type = TC_CONF_T_PATH,
     CK(ca),
     .help = "http: CA file for https (default: system store)"},
    {.key = "path",
     .type = TC_CONF_T_PATH,
     CK(path),
     .help = "disk: mount point; file_age: file"},
    {.key = "warning_free_pct",
     .type = TC_CONF_T_UINT,
     CK(warning_free_pct),
     .def = "15",
     .max = 100,
     .help = "disk: WARNING below this % free"},
    {.key = "critical_free_pct",
     .type = TC_CONF_T_UINT,
     CK(critical_free_pct),
     .def = "5",
     .max = 100,
     .help = "disk: CRITICAL below this % free"},
    {.key = "warning_age",
     .type = TC_CONF_T_DURATION,
     CK(warning_age_ms),
     .def = "5m",
     .help = "file_age: WARNING when older"},
    {.key = "critical_age",
     .type = TC_CONF_T_DURATION,
     CK(critical_age_ms),
     .def = "15m",
     .help = "file_age: CRITICAL when older"},
    {.key = "process",
     .type = TC_CONF_T_STRING,
     CK(process),
     .min = 1,
     .max = 15,
     .help = "process: name as in /proc/PID/comm"},
    {.key = "min_count",
     .type = TC_CONF_T_UINT,
     CK(min_count),
     .def = "1",
     .min = 1,
     .help = "process: fewer is CRITICAL"},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     CK(labels),
     .count_offset = offsetof(struct agent_check, nlabels),
     .help = "labels added to this check's events"},
    {0},
};

static const struct tc_conf_field check_default_fields[] = {
    {.key = "interval",
     .type = TC_CONF_T_DURATION,
     AC(check_interval_ms),
     .def = "60s",
     .min = 1000,
     .max = 86400 * 1000,
     .help = "time between runs"},
    {.key = "timeout",
     .type = TC_CONF_T_DURATION,
     AC(check_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 3600 * 1000,
     .help = "a run is stopped after this"},
    {.key = "resend",
     .type = TC_CONF_T_DURATION,
     AC(check_resend_ms),
     .def = "15m",
     .min = 1000,
     .max = 7 * 86400 * 1000ull,
     .help = "current state re-sent this often"},
    {.key = "max_concurrent",
     .type = TC_CONF_T_UINT,
     AC(check_max_concurrent),
     .def = "4",
     .min = 1,
     .max = 256,
     .help = "checks running at once"},
    {0},
};

static void
check_actions(struct tc_conf *c, const struct tc_conf_node *seq, void *base)
{
    struct agent_config *ac = base;

    actions_list_check(c, seq, &ac->actions);
}

static const struct tc_conf_field agent_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     AC(name),
     .min = 1,
     .max = 255,
     .help = "agent name (default: the TLS certificate's CN)"},
    {.key = "labels",
     .type = TC_CONF_T_STRMAP,
     AC(labels),
     .count_offset = offsetof(struct agent_config, nlabels),
     .help = "labels added to every event (service=web, env=prod)"},
    {.key = "heartbeat",
     .type = TC_CONF_T_DURATION,
     AC(heartbeat_ms),
     .def = "30s",
     .min = 1000,
     .max = 3600 * 1000,
     .help = "PING interval; the collector flags 3 missed"},
    {.key = "status_socket",
     .type = TC_CONF_T_PATH,
     AC(status_socket),
     .help = "unix socket for tocsin-agent status"},
    {.key = "collector", .type = TC_CONF_T_MAP, .sub = collector_fields},
    {.key = "tls", .type = TC_CONF_T_MAP, .sub = tls_fields},
    {.key = "state_dir",
     .type = TC_CONF_T_PATH,
     AC(state_dir),
     .required = 1,
     .help = "spool and offsets"},
    {.key = "spool", .type = TC_CONF_T_MAP, .sub = spool_fields},
    {.key = "sender", .type = TC_CONF_T_MAP, .sub = sender_fields},
    {.key = "hints", .type = TC_CONF_T_MAP, .sub = hints_fields},
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
    {.key = "journald",
     .type = TC_CONF_T_SEQ,
     AC(journals),
     .sub = journal_fields,
     .elem_size = sizeof(struct agent_journal),
     .count_offset = offsetof(struct agent_config, njournals),
     .line_offset = offsetof(struct agent_journal, line),
     .has_line = 1,
     .help = "systemd journal inputs"},
    {.key = "check_defaults",
     .type = TC_CONF_T_MAP,
     .sub = check_default_fields},
    {.key = "checks",
     .type = TC_CONF_T_SEQ,
     AC(checks),
     .sub = check_fields,
     .elem_size = sizeof(struct agent_check),
     .count_offset = offsetof(struct agent_config, nchecks),
     .line_offset = offsetof(struct agent_check, line),
     .has_line = 1,
     .help = "health checks"},
    {.key = "actions",
     .type = TC_CONF_T_SEQ,
     AC(actions.v),
     .sub = actions_fields,
     .elem_size = sizeof(struct action_def),
     .count_offset = offsetof(struct agent_config, actions.n),
     .line_offset = offsetof(struct action_def, line),
     .has_line = 1,
     .check = check_actions,
     .help = "the allowlist of remediation actions hints may name"},
    {0},
};

/* What each check type needs; the rest of its keys must be absent. */
static void
check_checks(struct tc_conf *conf, struct agent_config *c)
{
    const char **names = tc_xcalloc(c->nchecks, sizeof(*names));
    size_t *first = tc_xcalloc(c->nchecks, sizeof(*first));

    for (size_t i = 0; i < c->nchecks; i++)
        names[i] = c->checks[i].name;
    tc_conf_find_dups(names, c->nchecks, first);
    for (size_t i = 0; i < c->nchecks; i++) {
        struct agent_check *k = &c->checks[i];
        const char *need = NULL;

        if (first[i] != SIZE_MAX)
            tc_conf_error(conf, k->line,
                          "check name '%s' is used twice (first at "
                          "line %d)",
                          k->name, c->checks[first[i]].line);
        switch (k->type) {
        case AGENT_CHECK_EXEC:
            if (k->ncommand == 0)
                need = "command";
            else if (k->command[0][0] != '/')
                tc_conf_error(conf, k->line,
                              "check '%s': command '%s' must be an "
                              "absolute path (no shell, no PATH search)",
                              k->name, k->command[0]);
            break;
        case AGENT_CHECK_TCP:
            if (k->address == NULL)
                need = "address";
            break;
        case AGENT_CHECK_HTTP:
            if (k->url == NULL)
                need = "url";
            else if (strncmp(k->url, "http://", 7) != 0 &&
                     strncmp(k->url, "https://", 8) != 0)
                tc_conf_error(conf, k->line,
                              "check '%s': url '%s' must start with "
                              "http:// or https://",
                              k->name, k->url);
            break;
        case AGENT_CHECK_DISK:
            if (k->path == NULL)
                need = "path";
            else if (k->critical_free_pct > k->warning_free_pct)
                tc_conf_error(conf, k->line,
                              "check '%s': critical_free_pct is above "
                              "warning_free_pct",
                              k->name);
            break;
        case AGENT_CHECK_FILE_AGE:
            if (k->path == NULL)
                need = "path";
            else if (k->critical_age_ms < k->warning_age_ms)
                tc_conf_error(conf, k->line,
                              "check '%s': critical_age is below "
                              "warning_age",
                              k->name);
            break;
        case AGENT_CHECK_PROCESS:
            if (k->process == NULL)
                need = "process";
            break;
        }
        if (need != NULL)
            tc_conf_error(conf, k->line, "check '%s': type needs the key '%s'",
                          k->name ? k->name : "?", need);
        if (k->interval_ms == 0)
            k->interval_ms = c->check_interval_ms;
        if (k->timeout_ms == 0)
            k->timeout_ms = c->check_timeout_ms;
        if (k->resend_ms == 0)
            k->resend_ms = c->check_resend_ms;
        if (k->timeout_ms >= k->interval_ms)
            tc_conf_error(conf, k->line,
                          "check '%s': timeout (%llums) must be shorter "
                          "than interval (%llums)",
                          k->name ? k->name : "?",
                          (unsigned long long)k->timeout_ms,
                          (unsigned long long)k->interval_ms);
    }
    free(names);
    free(first);
}

/* A rule's time capture must exist: PCRE2 tells, at compile time. */
static void
default_rule_fields(struct agent_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].time_field != NULL && r[i].time_format == NULL)
            r[i].time_format = tc_xstrdup("%Y-%m-%dT%H:%M:%S");
        if (r[i].rate_max > 0 && r[i].rate_per_ms == 0)
            r[i].rate_per_ms = 60000;
    }
}

/*
 * A journal namespace as systemd accepts it (log_namespace_name_valid):
 * a unit instance name without backslash, not "." or "..". Checked here
 * so that a typo is a configuration error, not an input that waits
 * forever for a journal that no journald can write.
 */
static int
journal_namespace_valid(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789:-_.@";

    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    return s[strspn(s, ok)] == '\0';
}

/*
 * journald inputs: names are unique (each names its stored cursor, and
 * two inputs sharing one would resume from each other's position), and
 * namespaces are valid.
 */
static void
check_journals(struct tc_conf *conf, struct agent_config *c)
{
    const struct tc_conf_node *seq = tc_conf_find(conf->root, "journald");
    const char **names = tc_xcalloc(c->njournals, sizeof(*names));
    size_t *first = tc_xcalloc(c->njournals, sizeof(*first));

    for (size_t i = 0; i < c->njournals; i++)
        names[i] = c->journals[i].name;
    tc_conf_find_dups(names, c->njournals, first);
    for (size_t i = 0; i < c->njournals; i++) {
        const struct agent_journal *j = &c->journals[i];

        if (first[i] != SIZE_MAX)
            tc_conf_error(conf, j->line,
                          "journald[%zu]: name '%s' is used twice "
                          "(first at line %d); each input keeps its "
                          "cursor under its name",
                          i, j->name, c->journals[first[i]].line);
        if (j->namespace != NULL && !journal_namespace_valid(j->namespace)) {
            const struct tc_conf_node *n = NULL;

            if (seq != NULL && seq->kind == TC_CONF_SEQ && i < seq->nitems)
                n = tc_conf_find(seq->items[i], "namespace");
            tc_conf_error(conf, n ? n->line : j->line,
                          "journald[%zu].namespace: '%s' is not a journal "
                          "namespace (letters, digits, ':', '-', '_', '.', "
                          "'@')",
                          i, j->namespace);
        }
    }
    free(names);
    free(first);
}

/*
 * follow_symlinks roots are compared with the real path of an opened
 * file, so they must be absolute: a relative one would depend on the
 * agent's working directory.
 */
static void
check_follow_symlinks(struct tc_conf *conf, struct agent_config *c)
{
    for (size_t i = 0; i < c->nfiles; i++) {
        const struct agent_file *f = &c->files[i];

        for (size_t k = 0; k < f->nfollow_symlinks; k++)
            if (f->follow_symlinks[k][0] != '/')
                tc_conf_error(conf, f->line,
                              "files[%zu].follow_symlinks: '%s' must be "
                              "an absolute directory",
                              i, f->follow_symlinks[k]);
    }
}

/* Item i of the sequence at key in map, or NULL. */
static const struct tc_conf_node *
seq_item(const struct tc_conf_node *map, const char *key, size_t i)
{
    const struct tc_conf_node *n =
        map != NULL && map->kind == TC_CONF_MAP ? tc_conf_find(map, key) : NULL;

    return n != NULL && n->kind == TC_CONF_SEQ && i < n->nitems ? n->items[i]
                                                                : NULL;
}

/* Every rule of one input list (at node, dotted prefix what[i]). */
static void
check_rule_list(struct tc_conf *conf, const char *what, size_t i,
                const struct tc_conf_node *node, const struct agent_rule *rules,
                size_t n)
{
    for (size_t j = 0; j < n; j++) {
        const struct agent_rule *ar = &rules[j];
        const struct tc_conf_node *rn = seq_item(node, "rules", j), *kn;
        const char *key;
        char err[512];

        if (ar->match == NULL) /* missing: the walk said so */
            continue;
        if (rules_check(ar, &key, err, sizeof(err)) == 0)
            continue;
        kn = rn != NULL && rn->kind == TC_CONF_MAP ? tc_conf_find(rn, key)
                                                   : NULL;
        tc_conf_error(conf, kn != NULL ? kn->line : ar->line,
                      "%s[%zu].rules[%zu].%s: rule '%s': %s", what, i, j, key,
                      ar->name != NULL ? ar->name : "?", err);
    }
}

/*
 * Every pattern of the file compiled once, so that -n and a reload name
 * each bad one with its key (files[0].rules[2].match), not only the
 * first; the rulesets are built again from the valid file.
 */
static void
check_patterns(struct tc_conf *conf, struct agent_config *c)
{
    char err[512];

    for (size_t i = 0; c->files != NULL && i < c->nfiles; i++) {
        const struct agent_file *f = &c->files[i];
        const struct tc_conf_node *fn = seq_item(conf->root, "files", i), *kn;

        check_rule_list(conf, "files", i, fn, f->rules, f->nrules);
        if (f->multiline.start == NULL ||
            rules_check_pattern(f->multiline.start, err, sizeof(err)) == 0)
            continue;
        kn = fn != NULL && fn->kind == TC_CONF_MAP
                 ? tc_conf_find(fn, "multiline.start")
                 : NULL;
        tc_conf_error(conf, kn != NULL ? kn->line : f->line,
                      "files[%zu].multiline.start: %s", i, err);
    }
    for (size_t i = 0; c->journals != NULL && i < c->njournals; i++)
        check_rule_list(conf, "journald", i,
                        seq_item(conf->root, "journald", i),
                        c->journals[i].rules, c->journals[i].nrules);
}

/* Checks that involve more than one field. */
static void
check_config(struct tc_conf *conf, struct agent_config *c)
{
    check_checks(conf, c);
    check_journals(conf, c);
    check_follow_symlinks(conf, c);
    for (size_t i = 0; i < c->nfiles; i++)
        default_rule_fields(c->files[i].rules, c->files[i].nrules);
    for (size_t i = 0; i < c->njournals; i++)
        default_rule_fields(c->journals[i].rules, c->journals[i].nrules);
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

/* The parsed file into a fresh config; frees conf. */
static int
config_from(struct tc_conf *conf, struct agent_config **out)
{
    struct agent_config *c = NULL;
    int rc;

    c = tc_xcalloc(1, sizeof(*c));
    c->file = tc_xstrdup(conf->path);
    /* Patterns are checked even when the walk failed: one pass reports
     * every error it can. */
    rc = tc_conf_apply(conf, agent_fields, c);
    check_patterns(conf, c);
    if (rc < 0)
        goto out;
    check_config(conf, c);
    if (conf->nerrors > 0) {
        rc = -EINVAL;
        goto out;
    }
    if (c->status_socket == NULL)
        c->status_socket = tc_xasprintf("%s/agent.sock", c->state_dir);
    if (c->hints_public_key != NULL) {
        const struct tc_conf_node *n =
            tc_conf_find(conf->root, "hints.public_key");
        c->hints_public_key_line = n != NULL ? n->line : 0;
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

int
config_load(const char *path, struct agent_config **out)
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
                struct agent_config **out)
{
    struct tc_conf *conf = NULL;
    int rc;

    *out = NULL;
    if ((rc = tc_conf_load_mem(name, data, len, &conf)) < 0)
        return rc;
    return config_from(conf, out);
}

void
config_free(struct agent_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->actions.n; i++)
        actions_params_free(&c->actions.v[i]);
    tc_conf_release(agent_fields, c);
    free(c->file);
    free(c);
}
