/*
 * actions_cmd: the actions CLI and the agent's side of `actions run`;
 * see actions_cmd.h.
 */
#include "actions_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "daemon.h"
#include "escape.h"
#include "json.h"
#include "log.h"
#include "table.h"
#include "util.h"
#include "wire.h"

#define RUN_VERB "action-run"
#define HINT_VERB "hint-run"
/* Parameters in one request, at most. */
#define ACTIONS_CMD_MAX_PARAMS 32

/* --- %-encoding of request tokens ------------------------------------ */

static int
plain(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '/' ||
           ch == '-';
}

static void
pct_encode(struct tc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

        if (plain(*p))
            tc_buf_append(b, p, 1);
        else
            tc_buf_append(b, e, 3);
    }
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode s[0..n) into a fresh string; NULL if malformed or with a NUL. */
static char *
pct_decode(const char *s, size_t n)
{
    char *out = tc_xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] != '%') {
            if (!plain((unsigned char)s[i]))
                goto bad;
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
            (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0))
            goto bad;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* --- agent side ------------------------------------------------------- */

struct cmd_run {
    struct actions_agent *aa;
    void (*reply)(void *rarg, const char *text);
    void *rarg;
};

/* How a run ended, for people: "exit 0", "killed by signal 9 ...". */
static void
result_line(const struct action_result *r, char *out, size_t len)
{
    if (r->spawn_error != 0)
        snprintf(out, len, "could not start: %s", strerror(-r->spawn_error));
    else if (r->signal != 0)
        snprintf(out, len, "killed by signal %d%s after %" PRIu64 " ms",
                 r->signal, r->timed_out ? " (timed out)" : "", r->duration_ms);
    else
        snprintf(out, len, "exit %" PRId64 "%s after %" PRIu64 " ms",
                 r->exit_status, r->timed_out ? " (timed out)" : "",
                 r->duration_ms);
}

/* What an interrupted run's result says in place of its output. */
#define INTERRUPTED_TEXT                                                       \
    "interrupted: the agent stopped while the action ran; its outcome is "     \
    "unknown and it is not run again"

/*
 * Spool the action_result event of r (problem: the hint's problem, 0 =
 * none; it is sent only then, so that a result of a hint naming only a
 * problem lands on that problem's timeline). interrupted: r ran when
 * the agent stopped, so that exit, signal and duration are unknown and
 * left out.
 */
static void
spool_result(struct actions_agent *aa, const struct action_result *r,
             uint64_t problem, int interrupted, const char *line)
{
    char hint[24], prob[24], ex[24], sig[8], dur[24], msg[512];
    struct tc_kv fields[9];
    struct tc_event ev;
    uint32_t nf = 0;
    int ok = !interrupted && r->spawn_error == 0 && r->signal == 0 &&
             r->exit_status == 0;

    snprintf(hint, sizeof(hint), "%" PRIu64, r->hint);
    snprintf(prob, sizeof(prob), "%" PRIu64, problem);
    snprintf(ex, sizeof(ex), "%" PRId64, r->spawn_error ? -1 : r->exit_status);
    snprintf(sig, sizeof(sig), "%d", r->signal);
    snprintf(dur, sizeof(dur), "%" PRIu64, r->duration_ms);
    snprintf(msg, sizeof(msg), "action %s: %s", r->action, line);
#define F(k, v)                                                                \
    do {                                                                       \
        fields[nf].key = tc_str_c(k);                                          \
        fields[nf].val = (v);                                                  \
        nf++;                                                                  \
    } while (0)
    F("action", tc_str_c(r->action));
    F("hint", tc_str_c(hint));
    F("incident", tc_str_c(r->incident));
    if (problem != 0)
        F("problem", tc_str_c(prob));
    if (interrupted) {
        F("output", tc_str_c(INTERRUPTED_TEXT));
    } else {
        F("exit", tc_str_c(ex));
        F("signal", tc_str_c(sig));
        F("duration_ms", tc_str_c(dur));
        F("output", ((struct tc_str){r->output, (uint32_t)r->output_len}));
    }
#undef F
    memset(&ev, 0, sizeof(ev));
    ev.ts = tc_now_ns();
    ev.host = tc_str_c(aa->host);
    ev.kind = tc_str_c("action_result");
    ev.source = tc_str_c(r->action);
    ev.rule = tc_str_c("action_result");
    ev.sev = ok ? TC_SEV_INFO : TC_SEV_WARNING;
    ev.state = -1;
    ev.message = tc_str_c(msg);
    ev.count = 1;
    ev.fields = fields;
    ev.nfields = nf;
    if (spool_append(aa->spool, &ev, 1, NULL, NULL) < 0)
        log_warnx("action %s: its result could not be spooled", r->action);
    else if (aa->spooled != NULL)
        aa->spooled(aa->arg);
}

/* The problem of stored hint id (0: none, or no such hint). */
static uint64_t
hint_problem(struct actions_agent *aa, uint64_t id)
{
    struct agent_hint h;
    uint64_t p = 0;

    memset(&h, 0, sizeof(h));
    if (id != 0 && aa->hints != NULL && hints_store_get(aa->hints, id, &h) == 0)
        p = h.problem;
    hints_store_hint_clear(&h);
    return p;
}

static void
cmd_done(void *arg, const struct action_result *r)
{
    struct cmd_run *c = arg;
    struct tc_buf b;
    char line[256];

    result_line(r, line, sizeof(line));
    if (r->hint != 0 && c->aa->hints != NULL &&
        hints_store_set_state(c->aa->hints, r->hint,
                              r->spawn_error == 0 && r->signal == 0 &&
                                      r->exit_status == 0
                                  ? "done"
                                  : "failed") < 0)
        log_warnx("hint %" PRIu64 ": cannot record its state", r->hint);
    if (r->spawn_error == 0 && r->signal == 0 && r->exit_status == 0)
        log_info("action %s (hint %" PRIu64 "): %s", r->action, r->hint, line);
    else
        log_warnx("action %s (hint %" PRIu64 "): %s", r->action, r->hint, line);
    spool_result(c->aa, r, hint_problem(c->aa, r->hint), 0, line);
    if (c->reply != NULL) {
        tc_buf_init(&b, 64 << 10);
        tc_buf_append(&b, line, strlen(line));
        tc_buf_append(&b, "\n", 1);
        if (r->output_len > 0) {
            const char *p = r->output, *end = r->output + r->output_len;

            if (r->output_dropped > 0) {
                char d[64];
                int n = snprintf(d, sizeof(d), "output (last %zu bytes):\n",
                                 r->output_len);
                tc_buf_append(&b, d, (size_t)n);
            } else {
                tc_buf_append(&b, "output:\n", 8);
            }
            /* Line by line, each escaped: a tail may hold anything. */
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = (size_t)((nl ? nl : end) - p);

                tc_buf_append(&b, "  ", 2);
                tc_escape_buf(&b, p, n);
                tc_buf_append(&b, "\n", 1);
                p += n + (nl ? 1 : 0);
            }
        }
        tc_buf_append(&b, "", 1);
        c->reply(c->rarg, (const char *)tc_buf_head(&b));
        tc_buf_close(&b);
    }
    free(c);
}

int
actions_cmd_start(struct actions_agent *aa, const char *name,
                  const struct tc_conf_kv *params, size_t n, uint64_t hint,
                  const char *incident,
                  void (*reply)(void *rarg, const char *text), void *rarg,
                  char *err, size_t errlen)
{
    const struct action_list *l = &(*aa->cfg)->actions;
    struct cmd_run *c;
    char **argv = NULL;
    int rc;

    if ((rc = actions_prepare(l, name, params, n, &argv, err, errlen)) < 0)
        goto refused;
    c = tc_xcalloc(1, sizeof(*c));
    c->aa = aa;
    c->reply = reply;
    c->rarg = rarg;
    if ((rc = action_run_start(aa->runner, actions_find(l, name), argv, hint,
                               incident, cmd_done, c, err, errlen)) < 0) {
        free(c);
        goto refused;
    }
    return 0;
refused:
    /* err is escaped already: names and values come from outside. */
    log_warnx("action refused (hint %" PRIu64 "): %s", hint, err);
    return rc;
}

int
actions_cmd_hint_run(struct actions_agent *aa, uint64_t id, int operator,
                     void (*reply)(void *rarg, const char *text), void *rarg,
                     char *err, size_t errlen)
{
    struct agent_hint h;
    struct tc_conf_kv *kv = NULL;
    const struct action_def *def;
    char en[128];
    int rc;

    memset(&h, 0, sizeof(h));
    if (aa->hints == NULL) {
        snprintf(err, errlen, "no hint store");
        return -ENOENT;
    }
    if ((rc = hints_store_get(aa->hints, id, &h)) < 0) {
        snprintf(err, errlen, "hint %" PRIu64 ": %s", id,
                 rc == -ENOENT ? "no such hint" : strerror(-rc));
        return rc;
    }
    if (h.action[0] == '\0') {
        snprintf(err, errlen, "hint %" PRIu64 " names no action", id);
        rc = operator? -EINVAL : 1;
        goto out;
    }
    def = actions_find(&(*aa->cfg)->actions, h.action);
    if (!operator&& def != NULL && !def->auto_run) {
        /* Shown, for a person to run: the allowlist says so. */
        rc = 1;
        goto out;
    }
    if (strcmp(h.state, "running") == 0) {
        tc_escape(en, sizeof(en), h.action, strlen(h.action));
        snprintf(err, errlen,
                 "hint %" PRIu64 ": its action '%s' is already "
                 "running",
                 id, en);
        log_warnx("action refused (hint %" PRIu64 "): %s", id, err);
        rc = -EBUSY;
        goto out;
    }
    kv = tc_xcalloc(h.nparams + 1, sizeof(*kv));
    for (uint32_t i = 0; i < h.nparams; i++) {
        kv[i].key = h.params[i].key;
        kv[i].val = h.params[i].val;
    }
    /*
     * "running" is committed before the process starts: after a crash
     * the hint is not run a second time (actions_cmd_resume). Only a
     * refusal below takes it back.
     */
    if ((rc = hints_store_set_state(aa->hints, id, "running")) < 0) {
        snprintf(err, errlen, "hint %" PRIu64 ": cannot record its state: %s",
                 id, strerror(-rc));
        goto out;
    }
    rc = actions_cmd_start(aa, h.action, kv, h.nparams, id, h.incident, reply,
                           rarg, err, errlen);
    if (rc < 0 && hints_store_set_state(aa->hints, id, "refused") < 0)
        log_warnx("hint %" PRIu64 ": cannot record its state", id);
out:
    free(kv);
    hints_store_hint_clear(&h);
    return rc;
}

void
actions_cmd_hint_stored(void *arg, uint64_t id)
{
    char err[512];

    /* Refusals are logged (and the state set) inside. */
    (void)actions_cmd_hint_run(arg, id, 0, NULL, NULL, err, sizeof(err));
}

struct resume_ctx {
    uint64_t *run, *failed; /* hint ids */
    size_t nrun, nfailed, cap;
};

static int
resume_note(void *arg, const struct agent_hint *h)
{
    struct resume_ctx *r = arg;

    if (r->nrun == r->cap || r->nfailed == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->run = tc_xreallocarray(r->run, r->cap, sizeof(*r->run));
        r->failed = tc_xreallocarray(r->failed, r->cap, sizeof(*r->failed));
    }
    if (h->action[0] == '\0')
        return 0;
    if (strcmp(h->state, "running") == 0)
        r->failed[r->nfailed++] = h->id;
    else if (strcmp(h->state, "new") == 0)
        r->run[r->nrun++] = h->id;
    return 0;
}

/*
 * Hint id's action was running when the agent stopped (a crash, a
 * SIGKILL): its process may have finished its work, so it is not run
 * again, but without a result the collector's timeline would never say
 * that it ran. An action_result saying so is spooled, once: after the
 * state became "failed", which a later start does not look at again.
 */
static void
interrupted_result(struct actions_agent *aa, uint64_t id)
{
    struct action_result r;
    struct agent_hint h;

    memset(&h, 0, sizeof(h));
    if (hints_store_get(aa->hints, id, &h) < 0)
        return;
    memset(&r, 0, sizeof(r));
    r.action = h.action;
    r.hint = id;
    r.incident = h.incident;
    spool_result(aa, &r, h.problem, 1, "interrupted (the agent stopped)");
    hints_store_hint_clear(&h);
}

void
actions_cmd_resume(struct actions_agent *aa)
{
    struct resume_ctx r;
    char err[512];

    memset(&r, 0, sizeof(r));
    if (aa->hints == NULL || hints_store_list(aa->hints, resume_note, &r) < 0)
        goto out;
    for (size_t i = 0; i < r.nfailed; i++) {
        log_warnx("hint %" PRIu64 ": its action was running when the agent "
                  "stopped; marked failed, not run again",
                  r.failed[i]);
        if (hints_store_set_state(aa->hints, r.failed[i], "failed") == 0)
            interrupted_result(aa, r.failed[i]);
    }
    for (size_t i = 0; i < r.nrun; i++)
        (void)actions_cmd_hint_run(aa, r.run[i], 0, NULL, NULL, err,
                                   sizeof(err));
out:
    free(r.run);
    free(r.failed);
}

struct sock_reply {
    struct status *s;
    uint64_t id;
};

static void
sock_reply(void *arg, const char *text)
{
    struct sock_reply *r = arg;

    status_reply(r->s, r->id, text, strlen(text));
    free(r);
}

void
actions_cmd_handle(void *arg, struct status *s, uint64_t id, const char *line)
{
    struct actions_agent *aa = arg;
    struct tc_conf_kv kv[ACTIONS_CMD_MAX_PARAMS];
    struct sock_reply *sr;
    char *name = NULL, err[512], *text;
    const char *p = line;
    size_t n = 0;
    int rc;

    memset(kv, 0, sizeof(kv));
    if (strncmp(p, HINT_VERB " ", sizeof(HINT_VERB)) == 0) {
        char *end;
        unsigned long long hid;

        p += sizeof(HINT_VERB);
        errno = 0;
        hid = strtoull(p, &end, 10);
        if (*p < '0' || *p > '9' || *end != '\0' || errno != 0 || hid == 0) {
            snprintf(err, sizeof(err), "malformed hint id");
            goto refused;
        }
        sr = tc_xcalloc(1, sizeof(*sr));
        sr->s = s;
        sr->id = id;
        if (actions_cmd_hint_run(aa, hid, 1, sock_reply, sr, err, sizeof(err)) <
            0) {
            free(sr);
            goto answer;
        }
        goto out;
    }
    if (strncmp(p, RUN_VERB " ", sizeof(RUN_VERB)) != 0) {
        snprintf(err, sizeof(err), "unknown request");
        goto refused;
    }
    p += sizeof(RUN_VERB);
    for (int tok = 0; *p != '\0'; tok++) {
        const char *end = strchr(p, ' '), *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (tok == 0) {
            name = pct_decode(p, len);
        } else if (n == ACTIONS_CMD_MAX_PARAMS) {
            snprintf(err, sizeof(err), "more than %d parameters",
                     ACTIONS_CMD_MAX_PARAMS);
            goto refused;
        } else if ((eq = memchr(p, '=', len)) == NULL ||
                   (kv[n].key = pct_decode(p, (size_t)(eq - p))) == NULL ||
                   (kv[n].val = pct_decode(eq + 1, len - (size_t)(eq - p) -
                                                       1)) == NULL) {
            n++;
            snprintf(err, sizeof(err), "malformed request");
            goto refused;
        } else {
            n++;
        }
        if (tok == 0 && name == NULL) {
            snprintf(err, sizeof(err), "malformed request");
            goto refused;
        }
        p += len + (end ? 1 : 0);
    }
    if (name == NULL) {
        snprintf(err, sizeof(err), "malformed request");
        goto refused;
    }
    sr = tc_xcalloc(1, sizeof(*sr));
    sr->s = s;
    sr->id = id;
    if ((rc = actions_cmd_start(aa, name, kv, n, 0, "", sock_reply, sr, err,
                                sizeof(err))) < 0) {
        free(sr);
        goto answer;
    }
    goto out;
refused:
    log_warnx("status: action request refused: %s", err);
answer:
    text = tc_xasprintf("refused: %s\n", err);
    status_reply(s, id, text, strlen(text));
    free(text);
out:
    free(name);
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
}

/* --- the CLI ---------------------------------------------------------- */

static _Noreturn void
actions_usage(FILE *f, int code)
{
    fprintf(f, "usage: tocsin-agent actions list [--json] [-c file]\n"
               "       tocsin-agent actions test NAME [key=value ...] "
               "[-c file]\n"
               "       tocsin-agent actions run NAME [key=value ...] "
               "[-c file]\n");
    exit(code);
}

static void
params_text(const struct action_def *a, struct tc_buf *b)
{
    for (size_t i = 0; i < a->nparams; i++) {
        const struct action_param *p = &a->params[i];
        char t[96];
        int n;

        if (i > 0)
            tc_buf_append(b, " ", 1);
        n = snprintf(t, sizeof(t), "%s:%s", p->name,
                     actions_ptype_name(p->type));
        tc_buf_append(b, t, (size_t)n);
        if (p->type == ACTION_P_INT) {
            n = snprintf(t, sizeof(t), "[%lld,%lld]", (long long)p->min,
                         (long long)p->max);
            tc_buf_append(b, t, (size_t)n);
        } else if (p->type == ACTION_P_PATH) {
            tc_buf_append(b, "(", 1);
            tc_buf_append(b, p->prefix, strlen(p->prefix));
            tc_buf_append(b, ")", 1);
        } else if (p->type == ACTION_P_ENUM) {
            tc_buf_append(b, "(", 1);
            for (size_t j = 0; j < p->nvalues; j++) {
                if (j > 0)
                    tc_buf_append(b, "|", 1);
                tc_buf_append(b, p->values[j], strlen(p->values[j]));
            }
            tc_buf_append(b, ")", 1);
        }
    }
    tc_buf_append(b, "", 1);
}

static int
list_json(const struct action_list *l)
{
    struct tc_buf b;

    tc_buf_init(&b, 16 << 20);
    tc_json_raw(&b, "[");
    for (size_t i = 0; i < l->n; i++) {
        const struct action_def *a = &l->v[i];

        tc_json_raw(&b, i ? ",{" : "{");
        tc_json_key(&b, "name");
        tc_json_str(&b, a->name, strlen(a->name));
        tc_json_raw(&b, ",");
        tc_json_key(&b, "exec");
        tc_json_str(&b, a->exec, strlen(a->exec));
        tc_json_raw(&b, ",");
        tc_json_key(&b, "args");
        tc_json_raw(&b, "[");
        for (size_t k = 0; k < a->nargs; k++) {
            if (k > 0)
                tc_json_raw(&b, ",");
            tc_json_str(&b, a->args[k], strlen(a->args[k]));
        }
        tc_json_raw(&b, "],");
        tc_json_key(&b, "params");
        tc_json_raw(&b, "{");
        for (size_t k = 0; k < a->nparams; k++) {
            const struct action_param *p = &a->params[k];
            const char *t = actions_ptype_name(p->type);

            if (k > 0)
                tc_json_raw(&b, ",");
            tc_json_key(&b, p->name);
            tc_json_raw(&b, "{");
            tc_json_key(&b, "type");
            tc_json_str(&b, t, strlen(t));
            if (p->type == ACTION_P_INT) {
                tc_json_raw(&b, ",");
                tc_json_key(&b, "min");
                tc_json_i64(&b, p->min);
                tc_json_raw(&b, ",");
                tc_json_key(&b, "max");
                tc_json_i64(&b, p->max);
            } else if (p->type == ACTION_P_ENUM) {
                tc_json_raw(&b, ",");
                tc_json_key(&b, "values");
                tc_json_raw(&b, "[");
                for (size_t j = 0; j < p->nvalues; j++) {
                    if (j > 0)
                        tc_json_raw(&b, ",");
                    tc_json_str(&b, p->values[j], strlen(p->values[j]));
                }
                tc_json_raw(&b, "]");
            } else if (p->type == ACTION_P_PATH) {
                tc_json_raw(&b, ",");
                tc_json_key(&b, "prefix");
                tc_json_str(&b, p->prefix, strlen(p->prefix));
            }
            tc_json_raw(&b, "}");
        }
        tc_json_raw(&b, "},");
        tc_json_key(&b, "timeout_ms");
        tc_json_u64(&b, a->timeout_ms);
        tc_json_raw(&b, ",");
        tc_json_key(&b, "user");
        if (a->user != NULL)
            tc_json_str(&b, a->user, strlen(a->user));
        else
            tc_json_raw(&b, "null");
        tc_json_raw(&b, ",");
        tc_json_key(&b, "auto");
        tc_json_raw(&b, a->auto_run ? "true" : "false");
        tc_json_raw(&b, "}");
    }
    tc_json_raw(&b, "]\n");
    fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
    tc_buf_close(&b);
    return 0;
}

static int
list_text(const struct action_list *l)
{
    static const struct tc_table_col cols[] = {
        {"NAME", 0, 32},   {"EXEC", 0, 40}, {"PARAMS", 0, 60},
        {"TIMEOUT", 1, 0}, {"USER", 0, 16}, {"AUTO", 0, 0},
    };
    struct tc_table t;
    struct tc_buf b;
    int rc;

    tc_table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    tc_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < l->n; i++) {
        const struct action_def *a = &l->v[i];

        tc_buf_reset(&b);
        params_text(a, &b);
        tc_table_cell(&t, a->name);
        tc_table_cell(&t, a->exec);
        tc_table_cell(&t, (const char *)tc_buf_head(&b));
        tc_table_cellf(&t, "%llus", (unsigned long long)(a->timeout_ms / 1000));
        tc_table_cell(&t, a->user);
        tc_table_cell(&t, a->auto_run ? "yes" : "no");
    }
    rc = tc_table_print(&t, stdout);
    tc_table_free(&t);
    tc_buf_close(&b);
    return rc < 0 ? 1 : 0;
}

/* Send line to the agent, print its answer; exit code (0: exit 0). */
static int
ask_agent(const char *sock, const char *line)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc;

    rc = f != NULL ? status_command(sock, line, f) : -ENOMEM;
    if (f != NULL)
        fclose(f);
    if (rc == 0 && text != NULL) {
        int refused = strncmp(text, "refused: ", 9) == 0;

        fputs(text, refused ? stderr : stdout);
        /* Success is the action's exit 0, nothing else. */
        rc = strncmp(text, "exit 0 ", 7) == 0 ? 0 : 1;
    } else {
        rc = 1;
    }
    free(text);
    return rc;
}

int
actions_hint_main(int argc, char **argv, const char *default_config)
{
    const char *path = default_config, *idarg = NULL;
    struct agent_config *cfg = NULL;
    char line[64], *end;
    unsigned long long id;
    int rc;

    /* argv: hints run ID [-c FILE] */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (idarg == NULL && argv[i][0] != '-')
            idarg = argv[i];
        else {
            fprintf(stderr, "usage: tocsin-agent hints run ID [-c file]\n");
            return TC_EXIT_USAGE;
        }
    }
    errno = 0;
    if (idarg == NULL || (id = strtoull(idarg, &end, 10)) == 0 ||
        *end != '\0' || errno != 0 || idarg[0] < '0' || idarg[0] > '9') {
        fprintf(stderr, "usage: tocsin-agent hints run ID [-c file] (ID: a "
                        "hint id)\n");
        return TC_EXIT_USAGE;
    }
    if (config_load(path, &cfg) < 0)
        return 1;
    snprintf(line, sizeof(line), HINT_VERB " %llu", id);
    rc = ask_agent(cfg->status_socket, line);
    config_free(cfg);
    return rc;
}

/* key=value arguments into kv (pointers into argv). */
static int
parse_kv(char **args, int n, struct tc_conf_kv *kv)
{
    for (int i = 0; i < n; i++) {
        char *eq = strchr(args[i], '=');

        if (eq == NULL || eq == args[i]) {
            char *e = tc_escape_dup(args[i]);
            fprintf(stderr, "tocsin-agent: '%s' is not key=value\n", e);
            free(e);
            return -EINVAL;
        }
        *eq = '\0';
        kv[i].key = args[i];
        kv[i].val = eq + 1;
    }
    return 0;
}

int
actions_main(int argc, char **argv, const char *default_config)
{
    const char *path = default_config, *verb, *name = NULL;
    char *rest[ACTIONS_CMD_MAX_PARAMS];
    struct tc_conf_kv kv[ACTIONS_CMD_MAX_PARAMS];
    struct agent_config *cfg = NULL;
    int json = 0, nrest = 0, rc = 1;

    if (argc < 2)
        actions_usage(stderr, TC_EXIT_USAGE);
    verb = argv[1];
    if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0)
        actions_usage(stdout, 0);
    if (strcmp(verb, "list") != 0 && strcmp(verb, "test") != 0 &&
        strcmp(verb, "run") != 0)
        actions_usage(stderr, TC_EXIT_USAGE);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0 && strcmp(verb, "list") == 0)
            json = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            actions_usage(stdout, 0);
        else if (strcmp(verb, "list") != 0 && name == NULL)
            name = argv[i];
        else if (strcmp(verb, "list") != 0 && nrest < ACTIONS_CMD_MAX_PARAMS)
            rest[nrest++] = argv[i];
        else
            actions_usage(stderr, TC_EXIT_USAGE);
    }
    if (strcmp(verb, "list") != 0 && name == NULL)
        actions_usage(stderr, TC_EXIT_USAGE);
    if (parse_kv(rest, nrest, kv) < 0)
        return TC_EXIT_USAGE;
    if (config_load(path, &cfg) < 0)
        return 1;
    if (strcmp(verb, "list") == 0) {
        rc = json ? list_json(&cfg->actions) : list_text(&cfg->actions);
    } else if (strcmp(verb, "test") == 0) {
        char **av = NULL, err[512];

        if (actions_prepare(&cfg->actions, name, kv, (size_t)nrest, &av, err,
                            sizeof(err)) < 0) {
            fprintf(stderr, "tocsin-agent: refused: %s\n", err);
            rc = 1;
        } else {
            /* One element per line, escaped: exactly what execve gets. */
            printf("would run (no shell, one argument per line):\n");
            for (char **p = av; *p != NULL; p++) {
                char *e = tc_escape_dup(*p);
                printf("  %s\n", e);
                free(e);
            }
            actions_argv_free(av);
            rc = 0;
        }
    } else {
        struct tc_buf req;

        tc_buf_init(&req, 1 << 20);
        tc_buf_append(&req, RUN_VERB " ", sizeof(RUN_VERB));
        pct_encode(&req, name);
        for (int i = 0; i < nrest; i++) {
            tc_buf_append(&req, " ", 1);
            pct_encode(&req, kv[i].key);
            tc_buf_append(&req, "=", 1);
            pct_encode(&req, kv[i].val);
        }
        tc_buf_append(&req, "", 1);
        rc = ask_agent(cfg->status_socket, (const char *)tc_buf_head(&req));
        tc_buf_close(&req);
    }
    config_free(cfg);
    return rc;
}
