/*
 * rules: PCRE2 rule sets, one per tailed file; see rules.h.
 *
 * Everything a match needs (match data sized for the rule with the most
 * groups, a match context carrying the limits, a JIT stack, the field
 * array handed out in rules_hit) is allocated once in rules_new, so
 * matching a line allocates nothing. Fingerprint templates are split
 * into parts once, at compile time, which is also where a name that is
 * not a capture of the pattern is reported with the rule's line.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "log.h"
#include "util.h"

/* JIT stack: starts small, may grow to this many bytes. */
#define RULES_JIT_STACK_MIN (32 << 10)
#define RULES_JIT_STACK_MAX (512 << 10)

/* One named group of a rule. */
struct rules_name {
    uint32_t group; /* capture group number */
    char *name;     /* owned, NUL-terminated */
};

/* One piece of a fingerprint template. */
enum rules_part_kind {
    RP_LIT,    /* literal text */
    RP_RULE,   /* {rule} */
    RP_HOST,   /* {host} */
    RP_SOURCE, /* {source} */
    RP_CAP,    /* {capture} */
};

struct rules_part {
    enum rules_part_kind kind;
    const char *lit; /* RP_LIT: borrowed from the template */
    size_t len;      /* RP_LIT: bytes */
    const char *cap; /* RP_CAP: the rules_name string (compared by
                        pointer with the keys of rules_hit.fields) */
};

struct rules_rule {
    const char *name;              /* borrowed from the config */
    const struct agent_rule *conf; /* borrowed */
    struct rules_part *parts;      /* owned; NULL without a template */
    size_t nparts;
    enum tc_severity sev;     /* from the config */
    pcre2_code *code;         /* owned */
    int jit;                  /* 1 if code has a JIT version */
    struct rules_name *names; /* owned; nnames entries */
    uint32_t nnames;
};

struct rules {
    struct rules_rule *rule; /* owned; nrules entries, in order */
    size_t nrules;
    pcre2_match_data *md;      /* owned; sized for every rule */
    pcre2_match_context *mctx; /* owned; carries the limits */
    pcre2_jit_stack *jit;      /* owned; NULL without JIT */
    struct tc_kv *fields;      /* owned; max_names entries */
    uint32_t max_names;        /* most named groups in one rule */
    uint64_t errors;           /* match errors (limits hit) */
    char last_error[128];      /* PCRE2 message of the last one */
};

/* Copy the rule's name table: (group, name) pairs, in table order. */
static void
rules_names(struct rules_rule *r)
{
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;

    pcre2_pattern_info(r->code, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0)
        return;
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMETABLE, &table);
    r->names = tc_xcalloc(count, sizeof(*r->names));
    r->nnames = count;
    for (uint32_t i = 0; i < count; i++) {
        /* Entry: group number, 2 bytes big-endian, then the name. */
        PCRE2_SPTR e = table + (size_t)i * size;
        r->names[i].group = (uint32_t)(e[0] << 8 | e[1]);
        r->names[i].name = tc_xstrdup((const char *)e + 2);
    }
}

/* The rule's capture names, for error messages: "a, b" or "none". */
static void
rules_name_list(const struct rules_rule *r, char *buf, size_t len)
{
    size_t n = 0;

    snprintf(buf, len, "none");
    for (uint32_t i = 0; i < r->nnames && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
                              r->names[i].name);
}

static const char *
rules_find_name(const struct rules_rule *r, const char *name, size_t len)
{
    for (uint32_t i = 0; i < r->nnames; i++)
        if (strlen(r->names[i].name) == len &&
            memcmp(r->names[i].name, name, len) == 0)
            return r->names[i].name;
    return NULL;
}

/* Split the rule's fingerprint template into parts. 0 or -EINVAL (err
 * says why, without file, line or rule: the caller adds them). */
static int
rules_template(const struct agent_rule *ar, struct rules_rule *r, char *err,
               size_t errlen)
{
    const char *p = ar->fingerprint, *q;
    char names[256];
    size_t cap = 0;

    while (*p != '\0') {
        struct rules_part part;

        memset(&part, 0, sizeof(part));
        if (*p != '{') {
            q = strchr(p, '{');
            if (q == NULL)
                q = p + strlen(p);
            part.kind = RP_LIT;
            part.lit = p;
            part.len = (size_t)(q - p);
            p = q;
        } else {
            q = strchr(p + 1, '}');
            if (q == NULL) {
                snprintf(err, errlen, "fingerprint '%s': '{' without '}'",
                         ar->fingerprint);
                return -EINVAL;
            }
            if ((size_t)(q - p - 1) == 4 && memcmp(p + 1, "rule", 4) == 0)
                part.kind = RP_RULE;
            else if ((size_t)(q - p - 1) == 4 && memcmp(p + 1, "host", 4) == 0)
                part.kind = RP_HOST;
            else if ((size_t)(q - p - 1) == 6 &&
                     memcmp(p + 1, "source", 6) == 0)
                part.kind = RP_SOURCE;
            else if ((part.cap = rules_find_name(r, p + 1,
                                                 (size_t)(q - p - 1))) != NULL)
                part.kind = RP_CAP;
            else {
                rules_name_list(r, names, sizeof(names));
                snprintf(err, errlen,
                         "fingerprint '%s': unknown name '%.*s' (use rule, "
                         "host, source or a named capture of the pattern: "
                         "%s)",
                         ar->fingerprint, (int)(q - p - 1), p + 1, names);
                return -EINVAL;
            }
            p = q + 1;
        }
        if (r->nparts == cap) {
            cap = cap ? 2 * cap : 4;
            r->parts = tc_xreallocarray(r->parts, cap, sizeof(*r->parts));
        }
        r->parts[r->nparts++] = part;
    }
    return 0;
}

/*
 * Compile one rule into r: its pattern, the fingerprint template and
 * the time capture. 0, or -EINVAL with the failing key of the rule
 * ("match", "fingerprint", "time.field") in *key and the reason in err
 * (without file, line or rule: rules_compile and rules_check add those
 * their own way). r is left for rule_release either way.
 */
static int
rule_build(const char *cfgfile, const struct agent_rule *ar,
           struct rules_rule *r, int jit, const char **key, char *err,
           size_t errlen)
{
    PCRE2_SIZE erroff = 0;
    int ecode = 0;

    r->name = ar->name;
    r->conf = ar;
    r->sev = ar->severity;
    *key = "match";
    /* NEVER_UTF: a pattern may not switch UTF on with (*UTF), since
     * a UTF match fails on every line that is not valid UTF-8. */
    r->code = pcre2_compile((PCRE2_SPTR)ar->match, PCRE2_ZERO_TERMINATED,
                            PCRE2_NEVER_UTF, &ecode, &erroff, NULL);
    if (r->code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof(msg));
        snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)erroff,
                 (const char *)msg);
        return -EINVAL;
    }
    /* JIT is an optimisation: without it (no JIT on this CPU, or no
     * executable memory allowed) the interpreter does the same. */
    if (jit && pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0)
        r->jit = 1;
    else if (jit)
        log_debug("%s:%d: rule '%s': no JIT, using the interpreter", cfgfile,
                  ar->line, ar->name);
    rules_names(r);
    *key = "fingerprint";
    if (ar->fingerprint != NULL && rules_template(ar, r, err, errlen) < 0)
        return -EINVAL;
    *key = "time.field";
    if (ar->time_field != NULL &&
        rules_find_name(r, ar->time_field, strlen(ar->time_field)) == NULL) {
        char names[256];

        rules_name_list(r, names, sizeof(names));
        snprintf(err, errlen,
                 "time.field '%s' is not a named capture of the pattern "
                 "(captures: %s)",
                 ar->time_field, names);
        return -EINVAL;
    }
    return 0;
}

static void
rule_release(struct rules_rule *r)
{
    for (uint32_t j = 0; j < r->nnames; j++)
        free(r->names[j].name);
    free(r->names);
    free(r->parts);
    pcre2_code_free(r->code);
}

int
rules_check(const struct agent_rule *ar, const char **key, char *err,
            size_t errlen)
{
    struct rules_rule r;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = rule_build(NULL, ar, &r, 0, key, err, errlen);
    rule_release(&r);
    return rc;
}

int
rules_check_pattern(const char *pattern, char *err, size_t errlen)
{
    PCRE2_SIZE erroff = 0;
    PCRE2_UCHAR msg[256];
    pcre2_code *code;
    int ecode = 0;

    /* The options rule_build and tail's multiline compile with. */
    code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         PCRE2_NEVER_UTF, &ecode, &erroff, NULL);
    if (code != NULL) {
        pcre2_code_free(code);
        return 0;
    }
    pcre2_get_error_message(ecode, msg, sizeof(msg));
    snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)erroff,
             (const char *)msg);
    return -EINVAL;
}

int
rules_new(const char *cfgfile, const struct agent_file *f, struct rules **out,
          char *err, size_t errlen)
{
    return rules_compile(cfgfile, f->rules, f->nrules, out, err, errlen);
}

int
rules_compile(const char *cfgfile, const struct agent_rule *rules, size_t n,
              struct rules **out, char *err, size_t errlen)
{
    struct rules *rs = tc_xcalloc(1, sizeof(*rs));
    uint32_t max_groups = 0;
    int use_jit = 0, rc = 0;

    *out = NULL;
    rs->rule = tc_xcalloc(n ? n : 1, sizeof(*rs->rule));
    for (size_t i = 0; i < n; i++) {
        const struct agent_rule *ar = &rules[i];
        struct rules_rule *r = &rs->rule[i];
        const char *key;
        uint32_t groups = 0;
        char msg[512];

        rs->nrules = i + 1;
        if ((rc = rule_build(cfgfile, ar, r, 1, &key, msg, sizeof(msg))) < 0) {
            snprintf(err, errlen, "%s:%d: rule '%s': %s", cfgfile, ar->line,
                     ar->name, msg);
            goto fail;
        }
        if (r->jit)
            use_jit = 1;
        pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > max_groups)
            max_groups = groups;
        if (r->nnames > rs->max_names)
            rs->max_names = r->nnames;
    }
    rs->md = pcre2_match_data_create(max_groups + 1, NULL);
    rs->mctx = pcre2_match_context_create(NULL);
    if (rs->md == NULL || rs->mctx == NULL)
        fatalx("rules: out of memory");
    pcre2_set_match_limit(rs->mctx, RULES_MATCH_LIMIT);
    pcre2_set_depth_limit(rs->mctx, RULES_DEPTH_LIMIT);
    pcre2_set_heap_limit(rs->mctx, RULES_HEAP_LIMIT);
    if (use_jit) {
        rs->jit = pcre2_jit_stack_create(RULES_JIT_STACK_MIN,
                                         RULES_JIT_STACK_MAX, NULL);
        if (rs->jit == NULL)
            fatalx("rules: out of memory");
        pcre2_jit_stack_assign(rs->mctx, NULL, rs->jit);
    }
    rs->fields =
        tc_xcalloc(rs->max_names ? rs->max_names : 1, sizeof(*rs->fields));
    *out = rs;
    return 0;
fail:
    rules_free(rs);
    return rc;
}

void
rules_free(struct rules *rs)
{
    if (rs == NULL)
        return;
    for (size_t i = 0; i < rs->nrules; i++)
        rule_release(&rs->rule[i]);
    free(rs->rule);
    pcre2_match_data_free(rs->md);
    pcre2_match_context_free(rs->mctx);
    pcre2_jit_stack_free(rs->jit);
    free(rs->fields);
    free(rs);
}

int
rules_match(struct rules *rs, const char *line, size_t len,
            struct rules_hit *hit)
{
    for (size_t i = 0; i < rs->nrules; i++) {
        struct rules_rule *r = &rs->rule[i];
        PCRE2_SIZE *ov;
        uint32_t nf = 0;
        int rc;

        /* The JIT fast path skips pcre2_match's option checks, which
         * matter at a million lines a second. */
        if (r->jit)
            rc = pcre2_jit_match(r->code, (PCRE2_SPTR)line, len, 0, 0, rs->md,
                                 rs->mctx);
        else
            rc = pcre2_match(r->code, (PCRE2_SPTR)line, len, 0, 0, rs->md,
                             rs->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            continue;
        if (rc < 0) {
            /* A limit hit (or similar) on this line: counted, and the
             * line goes on to the next rule rather than stalling. */
            rs->errors++;
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)rs->last_error,
                                    sizeof(rs->last_error));
            continue;
        }
        ov = pcre2_get_ovector_pointer(rs->md);
        for (uint32_t j = 0; j < r->nnames; j++) {
            uint32_t g = r->names[j].group;
            /* rc is one more than the highest group that was set. */
            if (g >= (uint32_t)rc || ov[2 * g] == PCRE2_UNSET ||
                ov[2 * g + 1] < ov[2 * g])
                continue;
            rs->fields[nf].key = tc_str_c(r->names[j].name);
            rs->fields[nf].val.ptr = line + ov[2 * g];
            rs->fields[nf].val.len = (uint32_t)(ov[2 * g + 1] - ov[2 * g]);
            nf++;
        }
        hit->rule = r->name;
        hit->sev = r->sev;
        hit->fields = rs->fields;
        hit->nfields = nf;
        hit->conf = r->conf;
        hit->priv = r;
        return (int)i;
    }
    return -1;
}

/* Append n bytes to out[*len..cap-1), cutting at the end. */
static void
rules_put(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    if (*len + n > cap - 1)
        n = cap - 1 - *len;
    if (n > 0)
        memcpy(out + *len, p, n);
    *len += n;
}

int
rules_fingerprint(const struct rules_hit *hit, const char *host,
                  const char *source, char *out, size_t cap)
{
    const struct rules_rule *r = hit->priv;
    size_t len = 0;

    if (r == NULL || r->parts == NULL || cap == 0)
        return -1;
    for (size_t i = 0; i < r->nparts; i++) {
        const struct rules_part *p = &r->parts[i];

        switch (p->kind) {
        case RP_LIT:
            rules_put(out, cap, &len, p->lit, p->len);
            break;
        case RP_RULE:
            rules_put(out, cap, &len, r->name, strlen(r->name));
            break;
        case RP_HOST:
            rules_put(out, cap, &len, host, strlen(host));
            break;
        case RP_SOURCE:
            rules_put(out, cap, &len, source, strlen(source));
            break;
        case RP_CAP:
            for (uint32_t j = 0; j < hit->nfields; j++)
                if (hit->fields[j].key.ptr == p->cap)
                    rules_put(out, cap, &len, hit->fields[j].val.ptr,
                              hit->fields[j].val.len);
            break;
        }
    }
    out[len] = '\0';
    return (int)len;
}

uint64_t
rules_errors(const struct rules *rs)
{
    return rs->errors;
}

const char *
rules_last_error(const struct rules *rs)
{
    return rs->last_error;
}

size_t
rules_count(const struct rules *rs)
{
    return rs->nrules;
}
