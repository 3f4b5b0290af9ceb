/*
 * check_exec: runs a Nagios-compatible plugin; see check.h.
 *
 * The plugin is spawned by spawn.c from its argv (no shell, no PATH
 * search) in a new session, so it leads its own process group and a
 * timeout can signal everything it started: SIGTERM to the group, then
 * SIGKILL after CHECK_EXEC_GRACE_MS. stdin is /dev/null; stdout and
 * stderr share one pipe, as a terminal would show them; the first
 * CHECK_EXEC_OUTPUT_MAX bytes are kept and the rest is read and
 * discarded, so a chatty plugin never blocks on a full pipe.
 *
 * The run is done when the process has exited (libuv reaps it in its
 * SIGCHLD handler, so there is never a zombie) AND the pipe is at EOF
 * (or the deadline passed), and all its handles are closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "spawn.h"
#include "util.h"

#define CHECK_EXEC_OUTPUT_MAX (8u << 10) /* bytes of output kept */
#define CHECK_EXEC_GRACE_MS 2000         /* SIGTERM to SIGKILL */

struct exec_run {
    struct check_run *run; /* the run this serves; borrowed */
    struct spawn sp;       /* the plugin; sp.data = this */
    size_t len;            /* bytes in buf */
    size_t discarded;      /* output bytes over the cap */
    char buf[CHECK_EXEC_OUTPUT_MAX];
};

static const char *
exec_basename(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* Strip blanks on both ends of s[0..*n); returns the new start. */
static const char *
exec_trim(const char *s, size_t *n)
{
    while (*n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r')) {
        s++;
        (*n)--;
    }
    while (*n > 0 &&
           (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r'))
        (*n)--;
    return s;
}

/* Copy s[0..n) as a C string into out[0..cap), cutting if needed. */
static void
exec_copy(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/*
 * One perfdata item: 'label'=value[UOM];[warn];[crit];[min];[max].
 * *pp points at its start; on return past it. 0, or -1 if it does
 * not parse (then *pp is past the next blank, so parsing goes on).
 */
static int
exec_perf_item(const char **pp, const char *end, struct check_result *res)
{
    const char *p = *pp, *v, *semi, *q;
    char label[CHECK_KEY_MAX - 16], key[CHECK_KEY_MAX];
    size_t ln = 0, vn;
    int part;

    if (*p == '\'') {
        /* A quoted label may hold blanks and '=', and '' is a quote. */
        for (p++; p < end; p++) {
            if (*p == '\'') {
                if (p + 1 < end && p[1] == '\'') {
                    p++;
                } else {
                    break;
                }
            }
            if (ln < sizeof(label) - 1)
                label[ln++] = *p;
        }
        if (p >= end)
            goto bad;
        p++; /* the closing quote */
    } else {
        for (; p < end && *p != '=' && *p != ' ' && *p != '\t' && *p != '\n';
             p++)
            if (ln < sizeof(label) - 1)
                label[ln++] = *p;
    }
    label[ln] = '\0';
    if (ln == 0 || p >= end || *p != '=')
        goto bad;
    p++;
    for (v = p; p < end && *p != ' ' && *p != '\t' && *p != '\n'; p++)
        ;
    *pp = p;
    /* v..p is value[UOM];warn;crit;min;max */
    semi = memchr(v, ';', (size_t)(p - v));
    vn = (size_t)((semi != NULL ? semi : p) - v);
    if (vn == 0 || !((v[0] >= '0' && v[0] <= '9') || v[0] == '-' ||
                     v[0] == '.' || v[0] == 'U'))
        return -1;
    snprintf(key, sizeof(key), "perf.%s", label);
    checks_result_field(res, key, "%.*s", (int)vn, v);
    for (part = 1; semi != NULL && part <= 2; part++) {
        q = semi + 1;
        semi = memchr(q, ';', (size_t)(p - q));
        vn = (size_t)((semi != NULL ? semi : p) - q);
        if (vn == 0)
            continue;
        snprintf(key, sizeof(key), "perf.%s.%s", label,
                 part == 1 ? "warn" : "crit");
        checks_result_field(res, key, "%.*s", (int)vn, q);
    }
    return 0;
bad:
    while (p < end && *p != ' ' && *p != '\t' && *p != '\n')
        p++;
    *pp = p;
    return -1;
}

/* Parse blank-separated perfdata items in s[0..n). */
static int
exec_perfdata(const char *s, size_t n, struct check_result *res)
{
    const char *p = s, *end = s + n;
    int bad = 0;

    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
            p++;
        if (p >= end)
            break;
        if (exec_perf_item(&p, end, res) < 0)
            bad++;
    }
    return bad;
}

int
check_exec_parse(const char *out, size_t n, struct check_result *res)
{
    const char *nl = memchr(out, '\n', n), *bar, *msg, *rest;
    size_t line = nl != NULL ? (size_t)(nl - out) : n, mn, rn;
    int bad = 0;

    bar = memchr(out, '|', line);
    mn = (size_t)((bar != NULL ? bar : out + line) - out);
    msg = exec_trim(out, &mn);
    exec_copy(res->message, sizeof(res->message), msg, mn);
    if (bar != NULL)
        bad += exec_perfdata(bar + 1, line - (size_t)(bar + 1 - out), res);
    if (nl == NULL)
        return bad;
    /* Long output: a '|' on a later line starts perfdata to the end. */
    rest = nl + 1;
    rn = n - (size_t)(rest - out);
    if ((bar = memchr(rest, '|', rn)) != NULL)
        bad += exec_perfdata(bar + 1, rn - (size_t)(bar + 1 - rest), res);
    return bad;
}

static void
exec_closed(struct spawn *sp)
{
    struct exec_run *x = sp->data;
    struct check_run *r = x->run;

    r->priv = NULL;
    free(x);
    r->done(r);
}

/* Work out the result; spawn closes everything, then done follows. */
static void
exec_finish(struct spawn *sp)
{
    struct exec_run *x = sp->data;
    struct check_run *r = x->run;
    struct check_result *res = r->res;
    const char *name = exec_basename(r->cfg->command[0]);
    char t[32];

    if (!res->timed_out) {
        if (check_exec_parse(x->buf, x->len, res) > 0)
            log_debug("check %s: some perfdata did not parse", r->cfg->name);
        if (res->message[0] == '\0')
            snprintf(res->message, sizeof(res->message),
                     "(no output returned from plugin)");
        if (sp->term_signal != 0) {
            checks_result_set(res, CHECK_UNKNOWN, "%s: killed by signal %d",
                              name, sp->term_signal);
        } else if (sp->exit_status >= 0 && sp->exit_status <= 3) {
            res->state = (int)sp->exit_status;
        } else {
            char msg[CHECK_MSG_MAX];

            snprintf(msg, sizeof(msg), "%s", res->message);
            checks_result_set(res, CHECK_UNKNOWN, "%s: exit status %lld: %s",
                              name, (long long)sp->exit_status, msg);
        }
    } else {
        checks_result_set(res, CHECK_UNKNOWN, "timed out after %s",
                          checks_fmt_ms(r->cfg->timeout_ms, t, sizeof(t)));
    }
    if (x->discarded > 0)
        checks_result_field(res, "output_discarded_bytes", "%zu", x->discarded);
}

/* Keep the first CHECK_EXEC_OUTPUT_MAX bytes; count the rest. */
static void
exec_output(struct spawn *sp, const char *p, size_t n)
{
    struct exec_run *x = sp->data;
    size_t keep = sizeof(x->buf) - x->len;

    if (keep > n)
        keep = n;
    memcpy(x->buf + x->len, p, keep);
    x->len += keep;
    x->discarded += n - keep;
}

int
check_exec_start(struct check_run *r)
{
    struct exec_run *x = tc_xcalloc(1, sizeof(*x));
    struct spawn_opts o = {
        .argv = r->cfg->command,
        .output = exec_output,
        .done = exec_finish,
        .closed = exec_closed,
        .data = x,
    };
    char what[96];
    int rc;

    x->run = r;
    snprintf(what, sizeof(what), "check %s", r->cfg->name);
    o.what = what;
    if ((rc = spawn_start(r->loop, &x->sp, &o)) < 0 && !x->sp.closing) {
        checks_result_set(r->res, CHECK_UNKNOWN, "%s: pipe: %s",
                          exec_basename(r->cfg->command[0]), strerror(-rc));
        free(x);
        return 1;
    }
    if (rc < 0)
        checks_result_set(r->res, CHECK_UNKNOWN, "%s: %s",
                          exec_basename(r->cfg->command[0]), strerror(-rc));
    /* After a failed uv_spawn, exec_closed follows: done from there. */
    r->priv = x;
    return 0;
}

void
check_exec_timeout(struct check_run *r)
{
    struct exec_run *x = r->priv;

    if (x == NULL || x->sp.pid <= 0)
        return;
    r->res->timed_out = 1;
    spawn_term(&x->sp, CHECK_EXEC_GRACE_MS);
}

void
check_exec_cancel(struct check_run *r)
{
    struct exec_run *x = r->priv;

    if (x == NULL || x->sp.pid <= 0)
        return;
    /* The agent is going away: no grace, but still reaped. */
    r->res->timed_out = 1;
    spawn_cancel(&x->sp);
}
