/*
 * rules: the compiled match rules of one tailed file.
 *
 * Each rule is a PCRE2 pattern compiled without UTF (log lines are
 * arbitrary bytes, and a UTF check would reject them) and JIT-compiled
 * when the platform allows. Rules are tried in config order; the first
 * that matches names the event, and its named capture groups become the
 * event's fields. Matching runs under match/depth/heap limits, so a
 * hostile line against a backtracking pattern costs a bounded amount of
 * work: the rule then counts as not matching and the error is counted.
 */
#ifndef AGENT_RULES_H
#define AGENT_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wire.h"

/* Work bounds for one match (pcre2_set_match_limit etc.). */
#define RULES_MATCH_LIMIT 1000000u /* backtracking steps */
#define RULES_DEPTH_LIMIT 10000u   /* nested backtracking frames */
#define RULES_HEAP_LIMIT 4096u     /* KiB for the interpreter's frames */

struct rules;

/* Longest fingerprint rules_fingerprint renders, bytes with the NUL. */
#define RULES_FP_MAX 1024

struct rules_rule;

/* The rule that matched; valid until the next rules_match or free. */
struct rules_hit {
    const char *rule;           /* the rule's name; owned by the ruleset */
    enum tc_severity sev;       /* the rule's severity */
    const struct tc_kv *fields; /* named captures that took part in the
                                 * match: keys are owned by the ruleset,
                                 * values point into the matched line */
    uint32_t nfields;
    const struct agent_rule *conf; /* the rule's config (action, labels,
                                      time, fold, rate); borrowed from
                                      the config the ruleset was built
                                      from. NULL in hand-made hits */
    const struct rules_rule *priv; /* the compiled rule; for
                                      rules_fingerprint. May be NULL */
};

/*
 * Compile the rules of f. cfgfile names the config file in errors. On
 * error returns -EINVAL and writes e.g. "agent.yaml:12: rule
 * 'app-error': bad regex at offset 5: missing closing parenthesis"
 * into err. An empty rule list matches nothing.
 */
int rules_new(const char *cfgfile, const struct agent_file *f,
              struct rules **out, char *err, size_t errlen);
/*
 * The same for any list of rules (a journald input's). Besides the
 * pattern, checks that the fingerprint template names only {rule},
 * {host}, {source} and the pattern's named captures, and that time.field
 * is a named capture. rules and their strings must outlive the ruleset.
 */
int rules_compile(const char *cfgfile, const struct agent_rule *rules, size_t n,
                  struct rules **out, char *err, size_t errlen);

/*
 * For config_load, which reports every error of the file in one pass:
 * compile one rule (pattern, fingerprint template, time.field) and
 * throw it away. 0, or -EINVAL with the rule's failing key ("match",
 * "fingerprint" or "time.field") in *key and the reason in err, e.g.
 * "bad regex at offset 5: missing closing parenthesis".
 */
int rules_check(const struct agent_rule *ar, const char **key, char *err,
                size_t errlen);
/* The same for a bare pattern (files[].multiline.start). */
int rules_check_pattern(const char *pattern, char *err, size_t errlen);
void rules_free(struct rules *rs);

/*
 * Match one line (len bytes, no newline; need not be NUL-terminated).
 * Returns the index of the first matching rule and fills *hit, or -1.
 * A match error (a limit hit) is counted and the rule is skipped.
 */
int rules_match(struct rules *rs, const char *line, size_t len,
                struct rules_hit *hit);

/*
 * Render hit's fingerprint template into out (cap bytes, NUL
 * included; cut at cap - 1). A capture that did not take part in the
 * match renders as "". Returns the length, or -1 if the rule has no
 * template (the collector then uses its default, host + rule).
 */
int rules_fingerprint(const struct rules_hit *hit, const char *host,
                      const char *source, char *out, size_t cap);

/* Match errors so far, and the last one as a PCRE2 message ("" if none). */
uint64_t rules_errors(const struct rules *rs);
const char *rules_last_error(const struct rules *rs);

size_t rules_count(const struct rules *rs);

#endif
