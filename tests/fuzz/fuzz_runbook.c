/*
 * fuzz_runbook: libFuzzer target for the runbook front-matter parser
 * (collector/runbooks/runbooks_parse.c).
 *
 * The input is one runbook file's bytes, parsed from memory as the
 * loader parses a file it has read; a runbook that loads is then matched
 * against a fixed incident and its action's parameters are expanded, as
 * dispatch will do. Errors are expected and logged (run libFuzzer with
 * -close_fd_mask=2); crashes, leaks, sanitizer reports and timeouts are
 * the bugs.
 *   build-fuzz/tests/fuzz/fuzz_runbook -close_fd_mask=2 \
 *     NEWDIR tests/fuzz/corpus/runbooks
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "runbooks/runbooks.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    static const struct runbook_kv labels[] = {{"service", "web"}};
    static const struct runbook_kv fields[] = {{"upstream_host", "c-01"}};
    const struct runbook_subject s = {
        .cls = "upstream-timeout",
        .host = "web-01",
        .severity = 3,
        .problem_rule = "reference",
        .labels = labels,
        .nlabels = 1,
        .fields = fields,
        .nfields = 1,
    };
    struct runbook_set *set;
    struct runbook_check check;
    struct runbook_verdict v = {.checks = &check, .cap = 1};
    char err[512], out[4096], summary[1024];

    if (!init) {
        log_init("fuzz_runbook", 1, 0);
        init = 1;
    }
    set = runbooks_empty();
    set->v = tc_xcalloc(1, sizeof(*set->v));
    if (runbook_parse("/fuzz/rb.md", "rb", (const char *)data, size, &set->v[0],
                      err, sizeof(err)) == 0) {
        set->n = 1;
        (void)runbook_match(set, &s, &v);
        runbook_match_summary(&set->v[0], summary, sizeof(summary));
        for (size_t i = 0; i < set->v[0].nparams; i++)
            (void)runbook_expand(set->v[0].params[i].val, &s, out, sizeof(out),
                                 err, sizeof(err));
    }
    runbook_set_unref(set);
    return 0;
}
