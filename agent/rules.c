/*
 * rules: PCRE2 rule sets, one per tailed file; see rules.h.
 *
 * Everything a match needs (match data sized for the rule with the most
 * groups, a match context carrying the limits, a JIT stack, the field
 * array handed out in rules_hit) is allocated once in rules_new, so
 * matching a line allocates nothing.
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

struct rules_rule {
    const char *name;         /* borrowed from the config */
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

int
rules_new(const char *cfgfile, const struct agent_file *f, struct rules **out,
          char *err, size_t errlen)
{
    struct rules *rs = tc_xcalloc(1, sizeof(*rs));
    uint32_t max_groups = 0;
    int use_jit = 0, rc = 0;

    *out = NULL;
    rs->rule = tc_xcalloc(f->nrules ? f->nrules : 1, sizeof(*rs->rule));
    for (size_t i = 0; i < f->nrules; i++) {
        const struct agent_rule *ar = &f->rules[i];
        struct rules_rule *r = &rs->rule[i];
        PCRE2_SIZE erroff = 0;
        uint32_t groups = 0;
        int ecode = 0;

        r->name = ar->name;
        r->sev = ar->severity;
        /* NEVER_UTF: a pattern may not switch UTF on with (*UTF), since
         * a UTF match fails on every line that is not valid UTF-8. */
        r->code = pcre2_compile((PCRE2_SPTR)ar->match, PCRE2_ZERO_TERMINATED,
                                PCRE2_NEVER_UTF, &ecode, &erroff, NULL);
        rs->nrules = i + 1;
        if (r->code == NULL) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            snprintf(err, errlen,
                     "%s:%d: rule '%s': bad regex at offset %zu: %s", cfgfile,
                     ar->line, ar->name, (size_t)erroff, (const char *)msg);
            rc = -EINVAL;
            goto fail;
        }
        /* JIT is an optimisation: without it (no JIT on this CPU, or no
         * executable memory allowed) the interpreter does the same. */
        if (pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0)
            use_jit = r->jit = 1;
        else
            log_debug("%s:%d: rule '%s': no JIT, using the interpreter",
                      cfgfile, ar->line, ar->name);
        pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > max_groups)
            max_groups = groups;
        rules_names(r);
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
    for (size_t i = 0; i < rs->nrules; i++) {
        struct rules_rule *r = &rs->rule[i];
        for (uint32_t j = 0; j < r->nnames; j++)
            free(r->names[j].name);
        free(r->names);
        pcre2_code_free(r->code);
    }
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
        return (int)i;
    }
    return -1;
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
