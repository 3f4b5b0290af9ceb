/*
 * fuzz_lines: libFuzzer target for the agent's line path, from raw log
 * bytes to the event the agent would send: multiline records, the rules
 * (PCRE2 under limits, named captures), fingerprint templates, labels
 * and time captures (emit_build through emit_preview, and
 * emit_parse_time with every format below). A log writer controls all
 * of these bytes, and the file's name too.
 *
 * The config is fixed (made once, below): rules with captures, a drop
 * rule, fingerprints naming captures that may not take part, time
 * captures in ISO 8601, syslog, Apache and epoch formats, and a
 * multiline start pattern. The input is: one flags byte, then lines
 * split on '\n'. Flag bit 0 makes the first line the file's name (the
 * events' source, rendered by {source}); bit 1 joins lines into
 * multiline records; bits 2-3 pick the "now" the time parser completes
 * a year from. No file, spool or network I/O: emit runs in its preview
 * mode (as for test-rules).
 *
 * Records are joined here as tail joins them (a start line opens one,
 * other lines are added with '\n' until max_lines, every line cut at
 * max_line_bytes); tail's own record buffers are covered by
 * tests/unit/test_tail.c.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "buf.h"
#include "config.h"
#include "emit.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_LINE 512 /* max_line_bytes, small to reach the cuts */
#define FZ_MAX_LINES 8  /* multiline.max_lines */
#define FZ_SOURCE_MAX 256

static struct tc_conf_kv fz_agent_labels[] = {{"env", "prod"}};
static struct tc_conf_kv fz_file_labels[] = {{"svc", "web"}, {"env", "dev"}};
static struct tc_conf_kv fz_rule_labels[] = {{"svc", "api"}};

static struct agent_rule fz_rules[] = {
    {.name = "noise", .match = "DEBUG", .action = AGENT_ACTION_DROP},
    {.name = "http",
     .match = "^(?<ts>\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\S*) "
              "(?<level>[A-Z]+) .*?code=(?<code>\\d+)(?: (?<rest>.*))?",
     .severity = TC_SEV_ERROR,
     .fingerprint = "{rule}:{code}:{level}@{host}/{source}",
     .labels = fz_rule_labels,
     .nlabels = 1,
     .time_field = "ts",
     .time_format = "%Y-%m-%dT%H:%M:%S"},
    {.name = "syslog",
     .match = "^(?<ts>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d) "
              "(?<h>\\S+) (?<prog>[^:\\[ ]+)(?:\\[(?<pid>\\d+)\\])?: "
              "(?<msg>.*)",
     .severity = TC_SEV_WARNING,
     .fingerprint = "{prog}[{pid}]",
     .time_field = "ts",
     .time_format = "%b %d %H:%M:%S"},
    {.name = "apache",
     .match = "\\[(?<ts>[^\\]]{1,40})\\] \"(?<method>[A-Z]+) (?<path>\\S*)",
     .severity = TC_SEV_INFO,
     .fingerprint = "{method} {path}",
     .time_field = "ts",
     .time_format = "%d/%b/%Y:%H:%M:%S %z"},
    {.name = "epoch",
     .match = "^(?<t>\\d{1,20})(?:[.,]\\d+)? (?<word>\\w+)",
     .severity = TC_SEV_CRITICAL,
     .time_field = "t",
     .time_format = "%s"},
    {.name = "stack",
     .match = "(?s)(?<exc>\\w+(?:Exception|Error))\\b.*?\\n\\s+at "
              "(?<frame>[\\w.$]+)",
     .severity = TC_SEV_ERROR,
     .fingerprint = "{rule}:{exc}:{frame}"},
    {.name = "any",
     .match = "(?<first>\\w+)?(?:.*(?<last>\\d+))?$",
     .severity = TC_SEV_INFO,
     .fingerprint = "{first}-{last}-{rule}"},
};

static const char *const fz_formats[] = {
    "%Y-%m-%dT%H:%M:%S", "%b %d %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z", "%s",
    "%Y-%m-%d %H:%M:%S",
};

/* Wall clocks the time parser completes a year from (ns). */
static const int64_t fz_now[] = {
    1767225600LL * 1000000000,     /* 2026-01-01T00:00:00Z */
    1767225599LL * 1000000000 + 1, /* the second before */
    1785542400LL * 1000000000,     /* mid 2026 */
    1000000000,                    /* 1970 */
};

static struct agent_file fz_file;
static struct agent_config fz_cfg;
static struct rules *fz_rs;
static struct emit *fz_emit;
static pcre2_code *fz_ml;
static pcre2_match_data *fz_ml_md;
static struct tc_buf fz_out;

static void
fz_fail(const char *what)
{
    fprintf(stderr, "fuzz_lines: %s\n", what);
    abort();
}

static void
fz_init(void)
{
    char err[512];
    int e;
    PCRE2_SIZE off;

    fz_file.path = "/var/log/app/*.log";
    fz_file.rules = fz_rules;
    fz_file.nrules = sizeof(fz_rules) / sizeof(fz_rules[0]);
    fz_file.labels = fz_file_labels;
    fz_file.nlabels = 2;
    fz_file.multiline.start = "^(?:\\d{4}-|[A-Z][a-z]{2} |\\[)";
    fz_file.multiline.max_lines = FZ_MAX_LINES;
    fz_cfg.file = "fuzz.yaml";
    fz_cfg.labels = fz_agent_labels;
    fz_cfg.nlabels = 1;
    fz_cfg.files = &fz_file;
    fz_cfg.nfiles = 1;
    fz_cfg.max_line_bytes = FZ_MAX_LINE;
    for (size_t i = 0; i < fz_file.nrules; i++)
        fz_rules[i].line = (int)i + 1;
    if (rules_new(fz_cfg.file, &fz_file, &fz_rs, err, sizeof(err)) < 0)
        fz_fail(err);
    fz_ml =
        pcre2_compile((PCRE2_SPTR)fz_file.multiline.start,
                      PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF, &e, &off, NULL);
    if (fz_ml == NULL)
        fz_fail("multiline start does not compile");
    (void)pcre2_jit_compile(fz_ml, PCRE2_JIT_COMPLETE);
    fz_ml_md = pcre2_match_data_create(1, NULL);
    fz_emit = emit_new(NULL, &fz_cfg, NULL, "web-01", NULL, NULL);
    tc_buf_init(&fz_out, 1u << 20);
}

/* One line or record, as tail hands it to the rules and emit. */
static void
fz_event(const char *source, const char *p, size_t len, int64_t now)
{
    struct emit_source src;
    struct rules_hit hit;
    char fp[RULES_FP_MAX];
    int idx, rc, n;

    idx = rules_match(fz_rs, p, len, &hit);
    if (idx < 0)
        return;
    if ((size_t)idx >= fz_file.nrules || hit.conf != &fz_rules[idx] ||
        strcmp(hit.rule, fz_rules[idx].name) != 0)
        fz_fail("the hit names another rule");
    for (uint32_t i = 0; i < hit.nfields; i++) {
        const struct tc_kv *f = &hit.fields[i];
        /* Captures point into the line. */
        if (f->val.len > 0 && (f->val.ptr < p || f->val.ptr > p + len ||
                               f->val.len > (size_t)(p + len - f->val.ptr)))
            fz_fail("a capture points outside the line");
    }
    /* A capture may hold NUL bytes: the length counts, not strlen. */
    n = rules_fingerprint(&hit, "web-01", source, fp, sizeof(fp));
    if (n >= (int)sizeof(fp) || (n >= 0 && fp[n] != '\0'))
        fz_fail("fingerprint length");
    memset(&src, 0, sizeof(src));
    src.kind = "log";
    src.source = source;
    src.labels = fz_file.labels;
    src.nlabels = fz_file.nlabels;
    tc_buf_reset(&fz_out);
    rc = emit_preview(fz_emit, &src, &hit, p, len, now, &fz_out);
    if (rc < 0)
        fz_fail("emit_preview: out of room");
    if (rc == 0 && fz_rules[idx].action != AGENT_ACTION_DROP)
        fz_fail("a line dropped by a rule without action drop");
    if (rc == 1) {
        const char *o = (const char *)tc_buf_head(&fz_out);
        size_t ol = tc_buf_size(&fz_out);
        if (ol < 2 || o[0] != '{' || o[ol - 1] != '}')
            fz_fail("preview is not one JSON object");
    }
}

/* Every time format against a line (the parser takes any bytes). */
static void
fz_times(const char *p, size_t len, int64_t now)
{
    int64_t t;

    for (size_t i = 0; i < sizeof(fz_formats) / sizeof(fz_formats[0]); i++)
        if (emit_parse_time(p, len, fz_formats[i], now, &t) == 0 && t <= 0)
            fz_fail("a parsed time is not after the epoch");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char rec[FZ_MAX_LINE * FZ_MAX_LINES + FZ_MAX_LINES];
    char source[FZ_SOURCE_MAX + 32];
    const char *p, *end;
    size_t rec_len = 0, rec_lines = 0;
    int64_t now;
    int flags, rec_open = 0;

    if (fz_rs == NULL)
        fz_init();
    if (size == 0)
        return 0;
    flags = data[0];
    now = fz_now[(flags >> 2) & 3];
    p = (const char *)data + 1;
    end = (const char *)data + size;
    snprintf(source, sizeof(source), "/var/log/app/app.log");
    if (flags & 1) {
        /* The file's name: any bytes but NUL and '/'. */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        size_t o = strlen("/var/log/app/");

        if (n > FZ_SOURCE_MAX)
            n = FZ_SOURCE_MAX;
        for (size_t i = 0; i < n; i++)
            source[o++] = p[i] == '\0' || p[i] == '/' ? '_' : p[i];
        source[o] = '\0';
        p = nl ? nl + 1 : end;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t full = (size_t)((nl ? nl : end) - p);
        size_t len = full > FZ_MAX_LINE ? FZ_MAX_LINE : full;

        fz_times(p, len, now);
        if (!(flags & 2)) {
            fz_event(source, p, len, now);
        } else {
            int start = pcre2_match(fz_ml, (PCRE2_SPTR)p, len, 0, 0, fz_ml_md,
                                    NULL) >= 0;
            if (start && rec_open) {
                fz_event(source, rec, rec_len, now);
                rec_open = 0;
            }
            if (!rec_open) {
                rec_open = 1;
                rec_len = 0;
                rec_lines = 0;
            }
            if (rec_lines > 0)
                rec[rec_len++] = '\n';
            memcpy(rec + rec_len, p, len);
            rec_len += len;
            if (++rec_lines >= FZ_MAX_LINES) {
                fz_event(source, rec, rec_len, now);
                rec_open = 0;
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (rec_open)
        fz_event(source, rec, rec_len, now);
    return 0;
}
