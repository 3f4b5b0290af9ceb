/*
 * fuzz_config: libFuzzer target for the configuration loaders.
 *
 * The input is a config file's bytes, parsed from memory (no temp file
 * per run) by the YAML loader, walked with the real schema and checked
 * the way -n checks it: built with FUZZ_CONFIG_AGENT, the agent's
 * config_load_mem, then each input's rules compiled and the multiline
 * patterns checked; otherwise the collector's config_load_mem and its
 * incident settings. Errors are expected and logged (run libFuzzer with
 * -close_fd_mask=2 to keep them off the terminal); crashes, leaks,
 * sanitizer reports and timeouts are the bugs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "util.h"

#ifdef FUZZ_CONFIG_AGENT
#include "rules.h"
#include "tail.h"
#else
#include "engine/incident.h"
#include "engine/problem.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_CONFIG_AGENT
static void
fuzz_one(const uint8_t *data, size_t size)
{
    struct agent_config *cfg = NULL;
    char err[512];

    if (config_load_mem("/fuzz/agent.yaml", data, size, &cfg) < 0)
        return;
    for (size_t i = 0; i < cfg->nfiles; i++) {
        struct rules *rs = NULL;

        if (rules_new(cfg->file, &cfg->files[i], &rs, err, sizeof(err)) == 0)
            rules_free(rs);
    }
    for (size_t i = 0; i < cfg->njournals; i++) {
        const struct agent_journal *j = &cfg->journals[i];
        struct rules *rs = NULL;

        if (rules_compile(cfg->file, j->rules, j->nrules, &rs, err,
                          sizeof(err)) == 0)
            rules_free(rs);
    }
    (void)tail_check_config(cfg);
    config_free(cfg);
}
#else
static void
fuzz_one(const uint8_t *data, size_t size)
{
    struct collector_config *cfg = NULL;
    struct incident_config ic;
    struct problem_config pc;

    if (config_load_mem("/fuzz/collector.yaml", data, size, &cfg) < 0)
        return;
    config_incidents(cfg, &ic);
    /* Whatever correlation: accepted, the engine must take. */
    config_correlation(cfg, &pc);
    problem_engine_free(problem_engine_new(&pc));
    config_free(cfg);
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;

    if (!init) {
        log_init("fuzz_config", 1, 0);
        init = 1;
    }
    fuzz_one(data, size);
    return 0;
}
