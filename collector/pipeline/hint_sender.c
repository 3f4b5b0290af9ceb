/*
 * hint_sender: the loop-side delivery of decided hints (see
 * hint_sender.h and docs/internals/hints.md, "Collector side").
 */
#include "pipeline/hint_sender.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "hintsig.h"
#include "htab.h"
#include "log.h"
#include "net/registry.h"
#include "pipeline/hint_params.h"
#include "store/incidents_store.h"
#include "util.h"
#include "wire.h"

/* New hints loaded per job. */
#define NEW_BATCH 512

/* One loaded hint; strings owned. */
struct lrow {
    int64_t id, incident_id, problem_id, issued;
    char *agent, *source, *title, *text, *action, *params;
};

/*
 * Per agent: what this link was sent. Found by name in a hash table:
 * a scan of every agent at each HELLO was O(n^2) over a fleet's
 * connect and a tenth of the loop thread at 10,000 agents
 * (bench/README.md, "issue 11: storm").
 */
struct hs_agent {
    struct tc_hnode node;   /* in hint_sender.agents */
    struct hs_agent *wnext; /* in the want queue while want */
    int64_t cursor;         /* highest hint id sent on the current link */
    int want;               /* its unacked hints are to be loaded (queued) */
    int more;               /* a load or send stopped at the window: load
                               again on the next ack */
    char name[];            /* NUL-terminated */
};

enum job_kind { J_NONE, J_NEW, J_AGENT, J_MARKS };

struct hint_sender {
    uv_loop_t *loop;            /* borrowed */
    struct registry *reg;       /* borrowed */
    struct incidents_store *is; /* owned; the worker's while working */
    struct tc_hintkey *key;     /* owned; NULL: hints are not sent */
    int64_t new_cursor;         /* highest hint id the new-hint path saw */
    int new_pending;            /* a step wrote hints since */
    struct tc_htab agents;      /* struct hs_agent by name; owned */
    struct hs_agent *want_head; /* agents whose hints are to be loaded, */
    struct hs_agent *want_tail; /* in the order they asked */
    struct hint_mark *marks;    /* owned: waiting to be written */
    char **mark_agents;         /* owned: "agent\0error" of each mark */
    size_t nmarks, capmarks;
    /* The job in flight (worker fills rows, rc). */
    uv_work_t work;
    int working;
    int stopped;
    enum job_kind kind;
    char *job_agent; /* J_AGENT: owned */
    int64_t job_after;
    size_t job_max;
    struct lrow *rows; /* owned: loaded */
    size_t nrows, caprows;
    struct hint_mark *job_marks; /* J_MARKS: owned, taken from marks */
    char **job_mark_agents;
    size_t njob_marks;
    int job_rc;
    unsigned failures;
    struct hint_sender_stats st; /* for the metrics */
};

static void schedule(struct hint_sender *s);

static struct hs_agent *
hs_get(struct hint_sender *s, const char *name)
{
    uint64_t h = tc_hash64_str(name);
    struct hs_agent *a;
    size_t len;

    for (struct tc_hnode *n = tc_htab_first(&s->agents, h); n != NULL;
         n = tc_htab_next(n, h)) {
        a = TC_CONTAINER_OF(n, struct hs_agent, node);
        if (strcmp(a->name, name) == 0)
            return a;
    }
    len = strlen(name);
    a = tc_xcalloc(1, sizeof(*a) + len + 1);
    memcpy(a->name, name, len);
    tc_htab_insert(&s->agents, &a->node, h);
    return a;
}

/* a's unacked hints are to be loaded: queued once, first asked first. */
static void
hs_want(struct hint_sender *s, struct hs_agent *a)
{
    if (a->want)
        return;
    a->want = 1;
    a->wnext = NULL;
    if (s->want_tail != NULL)
        s->want_tail->wnext = a;
    else
        s->want_head = a;
    s->want_tail = a;
}

/* A delivery mark to write; agent and error are copied. */
static void
mark_add(struct hint_sender *s, int64_t id, const char *agent, int acked,
         int refused, const char *error)
{
    size_t na = strlen(agent) + 1, ne = error != NULL ? strlen(error) + 1 : 0;
    char *p;

    if (s->nmarks == s->capmarks) {
        s->capmarks = s->capmarks ? s->capmarks * 2 : 64;
        s->marks = tc_xreallocarray(s->marks, s->capmarks, sizeof(*s->marks));
        s->mark_agents = tc_xreallocarray(s->mark_agents, s->capmarks,
                                          sizeof(*s->mark_agents));
    }
    /* One allocation for both: a retried job copies them again. */
    p = tc_xmalloc(na + ne);
    memcpy(p, agent, na);
    if (error != NULL)
        memcpy(p + na, error, ne);
    s->mark_agents[s->nmarks] = p;
    s->marks[s->nmarks].hint_id = id;
    s->marks[s->nmarks].agent = p;
    s->marks[s->nmarks].ts = tc_now_ns();
    s->marks[s->nmarks].acked = acked;
    s->marks[s->nmarks].refused = refused;
    s->marks[s->nmarks].error = error != NULL ? p + na : NULL;
    s->nmarks++;
}

/* ---- sending (loop thread) --------------------------------------------- */

static void on_ack(void *arg, const char *agent, uint64_t id);
static void on_fail(void *arg, const char *agent, uint64_t id, int err);
static void on_refused(void *arg, const char *agent, uint64_t id,
                       const char *reason);
static const struct reg_ack_cbs ack_cbs = {on_ack, on_fail, on_refused};

/*
 * Sign row and send it to its agent if that agent is connected, has
 * room in its window and was not sent it on this link. 1 sent, 0 not.
 */
static int
send_row(struct hint_sender *s, const struct lrow *r)
{
    struct hs_agent *a = hs_get(s, r->agent);
    struct reg_agent *ra = registry_find(s->reg, r->agent);
    uint8_t sig[TC_HINT_SIG_LEN];
    struct tc_frame f;
    struct tc_hint *h = &f.u.hint;
    struct hint_params hp;
    char inc[24];
    const char *err = NULL, *why = NULL;
    int rc;

    if (ra == NULL || registry_link(ra) == NULL || r->id <= a->cursor)
        return 0;
    if (registry_outstanding(ra) >= HINT_WINDOW) {
        a->more = 1;
        return 0;
    }
    memset(&f, 0, sizeof(f));
    f.type = TC_F_HINT;
    h->id = (uint64_t)r->id;
    snprintf(inc, sizeof(inc), "%" PRId64, r->incident_id);
    h->incident = r->incident_id ? tc_str_c(inc) : tc_str_c("");
    h->text = tc_str_c(r->text);
    h->action = tc_str_c(r->action ? r->action : "");
    h->agent = tc_str_c(r->agent);
    h->problem = (uint64_t)r->problem_id;
    h->source = tc_str_c(r->source);
    h->title = tc_str_c(r->title);
    h->issued = r->issued;
    rc = hint_params_parse(r->params, r->params != NULL ? strlen(r->params) : 0,
                           &hp, &why);
    h->params = hp.kv;
    h->nparams = hp.n;
    if (rc < 0) {
        err = "bad params";
        log_warnx("hint %" PRId64 " for %s: params: %s", r->id, r->agent, why);
    } else if ((rc = tc_hintsig_sign(s->key, h, sig)) < 0) {
        err = "cannot sign (over the hint limits?)";
    } else {
        h->sig.ptr = (const char *)sig;
        h->sig.len = TC_HINT_SIG_LEN;
        rc = registry_send_frame(s->reg, r->agent, &f, &ack_cbs, s);
        if (rc == -EEXIST)
            rc = 0; /* in flight already */
        else if (rc < 0)
            err = "cannot send";
        else
            s->st.sent++;
    }
    hint_params_free(&hp);
    if (rc == -ENOBUFS || rc == -ENOTCONN) {
        a->more = 1;
        return 0;
    }
    /* Sent, or never sendable: either way this link moves past it. */
    a->cursor = r->id;
    if (err != NULL)
        log_warnx("hint %" PRId64 " for %s: %s: %s", r->id, r->agent, err,
                  strerror(-rc));
    else
        log_debug("hint %" PRId64 " sent to %s", r->id, r->agent);
    mark_add(s, r->id, r->agent, 0, 0, err);
    return err == NULL;
}

static void
on_ack(void *arg, const char *agent, uint64_t id)
{
    struct hint_sender *s = arg;
    struct hs_agent *a = hs_get(s, agent);

    mark_add(s, (int64_t)id, agent, 1, 0, NULL);
    s->st.acked++;
    log_info("hint %" PRIu64 " acknowledged by %s", id, agent);
    if (a->more) {
        a->more = 0;
        hs_want(s, a);
    }
    schedule(s);
}

/*
 * The agent refused the hint (its key, its name, its store: the reason
 * says). Its slot in the window is free, like after an ack; recorded as
 * refused with the reason. It goes again only on the agent's next link
 * (its configuration may have been fixed by then), like a hint not
 * acked.
 */
static void
on_refused(void *arg, const char *agent, uint64_t id, const char *reason)
{
    struct hint_sender *s = arg;
    struct hs_agent *a = hs_get(s, agent);
    char *err = tc_xasprintf(HINT_REFUSED_PREFIX "%s", reason);

    mark_add(s, (int64_t)id, agent, 0, 1, err);
    free(err);
    log_warnx("hint %" PRIu64 " refused by %s: %s", id, agent, reason);
    if (a->more) {
        a->more = 0;
        hs_want(s, a);
    }
    schedule(s);
}

static void
on_fail(void *arg, const char *agent, uint64_t id, int err)
{
    /* Sent again when the agent is back (registry_up). */
    (void)arg;
    log_debug("hint %" PRIu64 " for %s: not acked (%s); again on reconnect", id,
              agent, strerror(-err));
}

static void
agent_up(void *arg, const char *agent)
{
    struct hint_sender *s = arg;
    struct hs_agent *a;

    if (s->key == NULL)
        return; /* nothing is sent: nothing to remember per agent */
    a = hs_get(s, agent);
    /* A new link: everything not acked goes again, in id order. */
    a->cursor = 0;
    a->more = 0;
    hs_want(s, a);
    schedule(s);
}

/* ---- store jobs (threadpool) ------------------------------------------- */

static int
row_cb(const struct hint_row *r, void *arg)
{
    struct hint_sender *s = arg;
    struct lrow *l;

    if (s->nrows == s->caprows) {
        s->caprows = s->caprows ? s->caprows * 2 : 64;
        s->rows = tc_xreallocarray(s->rows, s->caprows, sizeof(*s->rows));
    }
    l = &s->rows[s->nrows++];
    l->id = r->id;
    l->incident_id = r->incident_id;
    l->problem_id = r->problem_id;
    l->issued = r->issued;
    l->agent = tc_xstrdup(r->agent);
    l->source = tc_xstrdup(r->source);
    l->title = tc_xstrdup(r->title);
    l->text = tc_xstrdup(r->text);
    l->action = r->action ? tc_xstrdup(r->action) : NULL;
    l->params = tc_xstrdup(r->params);
    return 0;
}

static void
rows_clear(struct hint_sender *s)
{
    for (size_t i = 0; i < s->nrows; i++) {
        struct lrow *l = &s->rows[i];

        free(l->agent);
        free(l->source);
        free(l->title);
        free(l->text);
        free(l->action);
        free(l->params);
    }
    s->nrows = 0;
}

static void
work_cb(uv_work_t *w)
{
    struct hint_sender *s = w->data;

    switch (s->kind) {
    case J_NEW:
    case J_AGENT:
        s->job_rc = incidents_store_hints_pending(
            s->is, s->kind == J_AGENT ? s->job_agent : NULL, s->job_after,
            s->job_max, row_cb, s);
        break;
    case J_MARKS:
        s->job_rc =
            incidents_store_hints_mark(s->is, s->job_marks, s->njob_marks);
        break;
    case J_NONE:
        break;
    }
}

static void
after_work_cb(uv_work_t *w, int status)
{
    struct hint_sender *s = w->data;

    (void)status;
    s->working = 0;
    if (s->job_rc < 0) {
        if (s->failures++ == 0)
            log_warnx("hints: store: %s (will retry)",
                      incidents_store_errmsg(s->is));
        /* Retried by the next kick, ack or HELLO. */
        if (s->kind == J_NEW)
            s->new_pending = 1;
        else if (s->kind == J_AGENT)
            hs_want(s, hs_get(s, s->job_agent));
        else if (s->kind == J_MARKS) {
            /* Put them back in front. */
            for (size_t i = 0; i < s->njob_marks; i++)
                mark_add(s, s->job_marks[i].hint_id, s->job_mark_agents[i],
                         s->job_marks[i].acked, s->job_marks[i].refused,
                         s->job_marks[i].error);
        }
    } else {
        s->failures = 0;
        if (s->kind == J_NEW) {
            for (size_t i = 0; i < s->nrows; i++) {
                struct hs_agent *a = hs_get(s, s->rows[i].agent);

                if (s->rows[i].id > s->new_cursor)
                    s->new_cursor = s->rows[i].id;
                /* A load of its own is coming: it keeps id order. */
                if (!a->want)
                    send_row(s, &s->rows[i]);
            }
            if (s->nrows == s->job_max)
                s->new_pending = 1;
        } else if (s->kind == J_AGENT) {
            for (size_t i = 0; i < s->nrows; i++)
                send_row(s, &s->rows[i]);
            if (s->nrows == s->job_max)
                hs_get(s, s->job_agent)->more = 1;
        }
    }
    rows_clear(s);
    if (s->kind == J_MARKS) {
        for (size_t i = 0; i < s->njob_marks; i++)
            free(s->job_mark_agents[i]);
        free(s->job_marks);
        free(s->job_mark_agents);
        s->job_marks = NULL;
        s->job_mark_agents = NULL;
        s->njob_marks = 0;
    }
    free(s->job_agent);
    s->job_agent = NULL;
    s->kind = J_NONE;
    if (s->job_rc >= 0)
        schedule(s);
}

/* Start the next job, if any and none is in flight. Loop thread. */
static void
schedule(struct hint_sender *s)
{
    if (s->working || s->stopped)
        return;
    if (s->nmarks > 0) {
        s->kind = J_MARKS;
        s->job_marks = s->marks;
        s->job_mark_agents = s->mark_agents;
        s->njob_marks = s->nmarks;
        s->marks = NULL;
        s->mark_agents = NULL;
        s->nmarks = s->capmarks = 0;
    } else if (s->new_pending) {
        s->new_pending = 0;
        s->kind = J_NEW;
        s->job_after = s->new_cursor;
        s->job_max = NEW_BATCH;
    } else {
        struct hs_agent *a = s->want_head;
        struct reg_agent *ra;

        if (a == NULL)
            return;
        s->want_head = a->wnext;
        if (s->want_head == NULL)
            s->want_tail = NULL;
        a->wnext = NULL;
        a->want = 0;
        ra = registry_find(s->reg, a->name);
        if (ra == NULL || registry_link(ra) == NULL ||
            registry_outstanding(ra) >= HINT_WINDOW) {
            a->more = ra != NULL && registry_link(ra) != NULL;
            schedule(s);
            return;
        }
        s->kind = J_AGENT;
        s->job_agent = tc_xstrdup(a->name);
        s->job_after = a->cursor;
        s->job_max = HINT_WINDOW - registry_outstanding(ra);
    }
    s->work.data = s;
    if (uv_queue_work(s->loop, &s->work, work_cb, after_work_cb) == 0)
        s->working = 1;
}

void
hint_sender_kick(void *sender)
{
    struct hint_sender *s = sender;

    if (s == NULL || s->key == NULL)
        return;
    s->new_pending = 1;
    schedule(s);
}

int
hint_sender_new(uv_loop_t *loop, struct registry *reg, struct store *log,
                const char *key_path, struct hint_sender **out)
{
    struct hint_sender *s = tc_xcalloc(1, sizeof(*s));
    char err[512];
    int rc;

    *out = NULL;
    s->loop = loop;
    s->reg = reg;
    if (key_path == NULL) {
        log_warnx("hints: no hints.signing_key: hints are decided and "
                  "stored, not sent to agents");
    } else if (tc_hintkey_load_private(key_path, &s->key, err, sizeof(err)) <
               0) {
        /* Checked at start already; a file gone meanwhile. */
        log_warnx("hints: %s: hints are decided and stored, not sent", err);
        s->key = NULL;
    }
    if ((rc = incidents_store_open_engine(log, &s->is)) < 0)
        goto fail;
    /* Hints decided before: their agents get them at HELLO. */
    if ((rc = incidents_store_hints_max(s->is, &s->new_cursor)) < 0) {
        log_warnx("hints: %s", incidents_store_errmsg(s->is));
        goto fail;
    }
    registry_watch(reg, agent_up, s);
    *out = s;
    return 0;
fail:
    incidents_store_close(s->is);
    tc_hintkey_free(s->key);
    free(s);
    return rc;
}

void
hint_sender_set_key(struct hint_sender *s, struct tc_hintkey *key)
{
    int was_none = s->key == NULL;

    tc_hintkey_free(s->key);
    s->key = key;
    if (key == NULL) {
        if (!was_none)
            log_warnx("hints: no hints.signing_key any more: hints are "
                      "decided and stored, not sent to agents");
        return;
    }
    if (!was_none)
        return;
    /* Nothing was sent without a key, and agent_up kept no state: every
     * connected agent starts from its first hint not acked, as on a new
     * link. */
    {
        struct reg_iter it;

        for (struct reg_agent *r = registry_first(s->reg, &it); r != NULL;
             r = registry_next(&it)) {
            struct hs_agent *a;

            if (registry_link(r) == NULL)
                continue;
            a = hs_get(s, r->name);
            a->cursor = 0;
            a->more = 0;
            hs_want(s, a);
        }
    }
    schedule(s);
}

void
hint_sender_stats(const struct hint_sender *s, struct hint_sender_stats *out)
{
    *out = s->st;
}

void
hint_sender_stop(struct hint_sender *s)
{
    if (s != NULL)
        s->stopped = 1;
}

void
hint_sender_free(struct hint_sender *s)
{
    if (s == NULL)
        return;
    if (s->working)
        fatalx("hint_sender_free while working");
    registry_watch(s->reg, NULL, NULL);
    /* The loop is over: the last marks synchronously (else the next
     * start sends those hints again, which the agents recognise). */
    if (s->nmarks > 0 &&
        incidents_store_hints_mark(s->is, s->marks, s->nmarks) < 0)
        log_warnx("hints: delivery marks not written: %s",
                  incidents_store_errmsg(s->is));
    for (size_t i = 0; i < s->nmarks; i++)
        free(s->mark_agents[i]);
    free(s->marks);
    free(s->mark_agents);
    rows_clear(s);
    free(s->rows);
    {
        struct tc_hiter it;
        struct tc_hnode *n = tc_htab_iter(&s->agents, &it);

        while (n != NULL) {
            struct hs_agent *a = TC_CONTAINER_OF(n, struct hs_agent, node);

            n = tc_hiter_next(&it);
            tc_htab_remove(&s->agents, &a->node);
            free(a);
        }
        tc_htab_free(&s->agents);
    }
    incidents_store_close(s->is);
    tc_hintkey_free(s->key);
    free(s);
}
