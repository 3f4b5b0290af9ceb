/*
 * engine_fixture: helpers shared by the engine's tests (engine_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "engine_fixture.h"

const struct incident_config cfg = {
    .reopen_window_ns = 60 * MIN,
    .resolve_after_ns = 30 * MIN,
    .max_attempts = 3,
};

static void logf_(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logf_(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(o->log + o->loglen, sizeof(o->log) - o->loglen, fmt, ap);
    va_end(ap);
    if (n > 0 && o->loglen + (size_t)n < sizeof(o->log))
        o->loglen += (size_t)n;
}

int
on_inc(void *arg, const struct incident *in)
{
    struct out *o = arg;

    assert_true(in->id > 0 && in->id < 64);
    o->inc[in->id] = *in;
    /* Strings are borrowed: keep only what the tests look at. */
    o->inc[in->id].fingerprint = o->inc[in->id].host = NULL;
    o->inc[in->id].rule = o->inc[in->id].kind = NULL;
    o->inc[in->id].service = NULL;
    logf_(o, "I %lld %s %d P%d n=%llu %lld %lld s=%s\n", (long long)in->id,
          incident_state_name(in->state), in->severity, in->priority,
          (unsigned long long)in->count, (long long)in->first_seen,
          (long long)in->last_seen, in->service);
    return 0;
}

int
on_fp(void *arg, const struct incident_fp *fp)
{
    struct out *o = arg;

    if (o->nfp < 64) {
        snprintf(o->fp[o->nfp], sizeof(o->fp[0]), "%s", fp->fingerprint);
        o->attempts[o->nfp++] = fp->attempts;
    }
    logf_(o, "F %s %u\n", fp->fingerprint, fp->attempts);
    return 0;
}

int
on_note(void *arg, const struct incident_note *n)
{
    struct out *o = arg;

    if (o->nnotes < 256)
        snprintf(o->notes[o->nnotes++], sizeof(o->notes[0]), "%lld %s %s",
                 (long long)n->incident_id, n->what, n->who);
    logf_(o, "N %lld %lld %s %s %s\n", (long long)n->incident_id,
          (long long)n->ts, n->what, n->who, n->detail);
    return 0;
}

static const struct incident_sink sink = {on_inc, on_fp, on_note};

void
drain(struct incident_engine *e, struct out *o)
{
    assert_int_equal(incident_engine_drain(e, &sink, o), 0);
}

int
has_note(const struct out *o, const char *s)
{
    for (int i = 0; i < o->nnotes; i++)
        if (strcmp(o->notes[i], s) == 0)
            return 1;
    return 0;
}

struct tc_event
ev_log(const char *rule, enum tc_severity sev, int64_t t, uint32_t count)
{
    struct tc_event e;

    memset(&e, 0, sizeof(e));
    e.kind = tc_str_c("log");
    e.rule = tc_str_c(rule);
    e.sev = sev;
    e.state = -1;
    e.ts = t;
    e.count = count;
    return e;
}

struct tc_event
ev_check(const char *name, int state, int64_t t)
{
    struct tc_event e;

    memset(&e, 0, sizeof(e));
    e.kind = tc_str_c("check");
    e.rule = tc_str_c(name);
    e.source = tc_str_c(name);
    e.state = state;
    e.sev = state == 0   ? TC_SEV_OK
            : state == 2 ? TC_SEV_CRITICAL
                         : TC_SEV_WARNING;
    e.ts = t;
    e.count = 1;
    return e;
}

/* Flap detection on: the documented defaults. */
const struct incident_config fcfg = {
    .reopen_window_ns = 60 * MIN,
    .resolve_after_ns = 30 * MIN,
    .max_attempts = 3,
    .flap_high = 50,
    .flap_low = 25,
};

struct tc_event
ev_result(struct tc_kv f[8], const char *incident, const char *exit,
          const char *output, int64_t t)
{
    struct tc_event e;
    uint32_t n = 0;

    memset(&e, 0, sizeof(e));
    f[n++] = (struct tc_kv){tc_str_c("action"), tc_str_c("restart-nginx")};
    f[n++] = (struct tc_kv){tc_str_c("hint"), tc_str_c("12")};
    if (incident != NULL)
        f[n++] = (struct tc_kv){tc_str_c("incident"), tc_str_c(incident)};
    f[n++] = (struct tc_kv){tc_str_c("exit"), tc_str_c(exit)};
    f[n++] = (struct tc_kv){tc_str_c("signal"), tc_str_c("0")};
    f[n++] = (struct tc_kv){tc_str_c("duration_ms"), tc_str_c("1234")};
    f[n++] = (struct tc_kv){tc_str_c("output"), tc_str_c(output)};
    e.kind = tc_str_c("action_result");
    e.rule = tc_str_c("action_result");
    e.source = tc_str_c("restart-nginx");
    e.sev = strcmp(exit, "0") == 0 ? TC_SEV_INFO : TC_SEV_WARNING;
    e.state = -1;
    e.ts = t;
    e.count = 1;
    e.fields = f;
    e.nfields = n;
    return e;
}
