/*
 * emit: rule matches → events, with folding and rate limits; see emit.h.
 *
 * Pending state. Each open fold window and rate period is an entry in a
 * hash table keyed by a string:
 *   "f\x1f" source "\x1f" rule "\x1f" fingerprint   fold window
 *   "r\x1f" source "\x1f" rule                      rate period
 * A fold entry counts the repeats since the first event of the window
 * (which was sent at once) and keeps the last repeat, encoded, as the
 * event to send when the window closes. A rate entry counts the events
 * let through in its period (aux) and the lines suppressed (count), and
 * keeps a template for the summary event.
 *
 * Durability. An entry that holds something that would be lost in a
 * crash (a fold window with at least one repeat; any rate period) is
 * written to the spool's pending table in the same transaction as the
 * events and the input position of the pass that changed it, and
 * deleted in the transaction that spools the event closing it. So after
 * a crash the spool holds, for every line behind the stored position,
 * either its event or its share of a pending count — never both, never
 * neither. A fold window with no repeat yet lives only in memory: losing
 * it costs only that the next repeat is sent at once instead of folded.
 * If a commit fails, the in-memory table is reloaded from the spool,
 * which is then again exactly what the caller's re-read will build on.
 */
#include "emit.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "htab.h"
#include "log.h"
#include "util.h"
#include "view.h"

/* Open windows at most; past it lines are sent unfolded (counted). */
#define EMIT_MAX_PENDING 100000
/* Bytes of a time capture that are parsed at most. */
#define EMIT_TIME_MAX 128
/* Cap on one encoded template event (a line is at most 64 KiB). */
#define EMIT_BODY_MAX (1u << 20)

enum emit_kind {
    EMIT_FOLD = 'f',
    EMIT_RATE = 'r',
};

struct emit_entry {
    struct tc_hnode hnode; /* in emit.tab, under tc_hash64_str(key) */
    char *key;             /* owned, NUL-terminated */
    enum emit_kind kind;
    uint64_t count;     /* fold: repeats pending; rate: lines suppressed */
    uint64_t aux;       /* rate: events let through in the period */
    int64_t first_ts;   /* ns: fold: first repeat; rate: period start */
    int64_t last_ts;    /* ns: last line counted */
    int64_t due_ts;     /* ns: when the window or period closes */
    struct tc_buf body; /* fold: last repeat; rate: summary template */
    int dirty;          /* changed by the open batch: to be written */
    int stored;         /* a row exists in the spool */
};

/* One event of a batch, linked to its storage at commit. */
struct emit_slot {
    struct tc_event ev; /* strings borrowed or linked at commit */
    size_t kv_off;      /* labels then fields, in the batch's kvs */
    size_t str_off;     /* fingerprint (or summary message) in strs */
    uint32_t str_len;
    int has_str;            /* 1: str_off/str_len is the fingerprint */
    int str_is_msg;         /* 1: it is the message instead */
    uint8_t *raw;           /* owned: an encoded event to decode, or NULL */
    size_t raw_len;         /* bytes */
    struct tc_frame *frame; /* owned: decode memory for raw */
    uint32_t count;         /* raw: count to set */
    int64_t ts;             /* raw: ts to set, 0 = keep */
};

struct emit_pass {
    struct emit_slot *slots; /* owned; nslots used */
    size_t nslots, slotcap;
    struct tc_kv *kvs; /* owned; labels and fields of the slots */
    size_t nkvs, kvcap;
    struct tc_buf strs;          /* fingerprints and messages */
    struct emit_entry **touched; /* entries marked dirty */
    size_t ntouched, touchcap;
    char **dels; /* owned copies of keys to delete */
    size_t ndels, delcap;
    struct emit_stats st; /* counted on commit */
};

struct emit {
    uv_loop_t *loop;                /* borrowed; NULL in preview mode */
    const struct agent_config *cfg; /* borrowed */
    struct spool *spool;            /* borrowed; NULL in preview mode */
    const char *host;               /* borrowed: the agent name */
    void (*on_spooled)(void *arg);
    void *arg;
    struct tc_htab tab; /* owned entries (struct emit_entry), by key */
    uv_timer_t timer;   /* closes due windows */
    int timer_on;       /* timer initialised */
    int64_t armed_due;  /* ns: what the timer is set for; 0 = not set */
    void (*stop_cb)(void *arg);
    void *stop_arg;
    struct emit_stats stats;
    struct tc_buf scratch; /* one encoded event */
    struct tc_kv *tmp_kvs; /* labels + fields of one event */
    size_t tmp_cap;
    char fp[RULES_FP_MAX]; /* one rendered fingerprint */
    int full_logged;       /* "too many windows" logged once */
};

static struct emit_entry *
emit_find(struct emit *e, const char *key, uint64_t h)
{
    for (struct tc_hnode *n = tc_htab_first(&e->tab, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct emit_entry *x = TC_CONTAINER_OF(n, struct emit_entry, hnode);

        if (strcmp(x->key, key) == 0)
            return x;
    }
    return NULL;
}

static struct emit_entry *
emit_insert(struct emit *e, const char *key, uint64_t h, enum emit_kind kind)
{
    struct emit_entry *x = tc_xcalloc(1, sizeof(*x));

    x->key = tc_xstrdup(key);
    x->kind = kind;
    tc_buf_init(&x->body, EMIT_BODY_MAX);
    tc_htab_insert(&e->tab, &x->hnode, h);
    return x;
}

static void
emit_entry_free(struct emit_entry *x)
{
    tc_buf_close(&x->body);
    free(x->key);
    free(x);
}

static void
emit_clear(struct emit *e)
{
    struct tc_hiter it;

    for (struct tc_hnode *n = tc_htab_iter(&e->tab, &it); n != NULL;
         n = tc_hiter_next(&it)) {
        tc_htab_remove(&e->tab, n);
        emit_entry_free(TC_CONTAINER_OF(n, struct emit_entry, hnode));
    }
}

static int
emit_load_cb(void *arg, const struct spool_state *ps)
{
    struct emit *e = arg;
    struct emit_entry *x;
    uint64_t h = tc_hash64_str(ps->key);

    if (ps->key[0] != EMIT_FOLD && ps->key[0] != EMIT_RATE) {
        log_warnx("emit: ignoring pending state '%s' of unknown kind", ps->key);
        return 0;
    }
    x = emit_insert(e, ps->key, h, (enum emit_kind)ps->key[0]);
    x->count = ps->count;
    x->aux = ps->aux;
    x->first_ts = ps->first_ts;
    x->last_ts = ps->last_ts;
    x->due_ts = ps->due_ts;
    x->stored = 1;
    if (ps->body != NULL && ps->body_len > 0 &&
        tc_buf_append(&x->body, ps->body, ps->body_len) < 0)
        log_warnx("emit: pending state '%s': body too large", ps->key);
    return 0;
}

/* Replace the in-memory state with what the spool holds. */
static int
emit_load(struct emit *e)
{
    int n;

    emit_clear(e);
    if ((n = spool_state_load(e->spool, emit_load_cb, e)) < 0)
        return n;
    return 0;
}

struct emit *
emit_new(uv_loop_t *loop, const struct agent_config *cfg, struct spool *spool,
         const char *host, void (*on_spooled)(void *arg), void *arg)
{
    struct emit *e = tc_xcalloc(1, sizeof(*e));

    e->loop = loop;
    e->cfg = cfg;
    e->spool = spool;
    e->host = host;
    e->on_spooled = on_spooled;
    e->arg = arg;
    tc_htab_init(&e->tab);
    tc_buf_init(&e->scratch, EMIT_BODY_MAX);
    return e;
}

static void emit_arm(struct emit *e);

static void
emit_timer_cb(uv_timer_t *h)
{
    struct emit *e = h->data;

    e->armed_due = 0;
    if (emit_tick(e, tc_now_ns()) < 0) {
        /* The spool refused (disk full?): try again in a second rather
         * than spinning on windows that are already due. */
        e->armed_due = tc_now_ns() + 1000000000;
        uv_timer_start(&e->timer, emit_timer_cb, 1000, 0);
        return;
    }
    emit_arm(e);
}

/* Earliest due time of the open entries, or 0. */
static int64_t
emit_next_due(const struct emit *e)
{
    struct tc_hiter it;
    int64_t due = 0;

    for (struct tc_hnode *n = tc_htab_iter(&e->tab, &it); n != NULL;
         n = tc_hiter_next(&it)) {
        const struct emit_entry *x =
            TC_CONTAINER_OF(n, struct emit_entry, hnode);

        if (due == 0 || x->due_ts < due)
            due = x->due_ts;
    }
    return due;
}

/* Set the timer for the earliest due entry, unless it is set earlier. */
static void
emit_arm_at(struct emit *e, int64_t due)
{
    int64_t now, ms;

    if (!e->timer_on || e->stop_cb != NULL || due == 0)
        return;
    if (e->armed_due != 0 && e->armed_due <= due)
        return;
    now = tc_now_ns();
    ms = due > now ? (due - now + 999999) / 1000000 : 0;
    e->armed_due = due;
    uv_timer_start(&e->timer, emit_timer_cb, (uint64_t)ms, 0);
}

static void
emit_arm(struct emit *e)
{
    emit_arm_at(e, emit_next_due(e));
}

int
emit_start(struct emit *e)
{
    int rc;

    if ((rc = emit_load(e)) < 0)
        return rc;
    if (tc_htab_count(&e->tab) > 0)
        log_info("emit: %zu fold windows and rate periods pending",
                 tc_htab_count(&e->tab));
    uv_timer_init(e->loop, &e->timer);
    e->timer.data = e;
    e->timer_on = 1;
    /* Windows that closed while the agent was down go out now. */
    (void)emit_tick(e, tc_now_ns());
    emit_arm(e);
    return 0;
}

static void
emit_timer_closed(uv_handle_t *h)
{
    struct emit *e = h->data;

    e->timer_on = 0;
    if (e->stop_cb != NULL)
        e->stop_cb(e->stop_arg);
}

void
emit_stop(struct emit *e, void (*cb)(void *arg), void *arg)
{
    e->stop_cb = cb;
    e->stop_arg = arg;
    if (!e->timer_on) {
        if (cb != NULL)
            cb(arg);
        return;
    }
    uv_close((uv_handle_t *)&e->timer, emit_timer_closed);
}

void
emit_free(struct emit *e)
{
    if (e == NULL)
        return;
    emit_clear(e);
    tc_htab_free(&e->tab);
    tc_buf_close(&e->scratch);
    free(e->tmp_kvs);
    free(e);
}

void
emit_batch_init(struct emit_batch *b)
{
    struct emit_pass *p = tc_xcalloc(1, sizeof(*p));

    /* Fingerprints are at most RULES_FP_MAX each; the cap only stops a
     * runaway pass. */
    tc_buf_init(&p->strs, 256u << 20);
    b->priv = p;
}

static void
emit_pass_reset(struct emit_pass *p)
{
    for (size_t i = 0; i < p->nslots; i++) {
        struct emit_slot *s = &p->slots[i];
        if (s->frame != NULL) {
            tc_frame_close(s->frame);
            free(s->frame);
        }
        free(s->raw);
    }
    for (size_t i = 0; i < p->ndels; i++)
        free(p->dels[i]);
    p->nslots = p->nkvs = p->ntouched = p->ndels = 0;
    tc_buf_reset(&p->strs);
    memset(&p->st, 0, sizeof(p->st));
}

void
emit_batch_close(struct emit_batch *b)
{
    struct emit_pass *p = b->priv;

    if (p == NULL)
        return;
    emit_pass_reset(p);
    free(p->slots);
    free(p->kvs);
    free(p->touched);
    free(p->dels);
    tc_buf_close(&p->strs);
    free(p);
    b->priv = NULL;
}

static struct emit_slot *
emit_slot_new(struct emit_pass *p)
{
    struct emit_slot *s;

    if (p->nslots == p->slotcap) {
        p->slotcap = p->slotcap ? 2 * p->slotcap : 64;
        p->slots = tc_xreallocarray(p->slots, p->slotcap, sizeof(*p->slots));
    }
    s = &p->slots[p->nslots++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void
emit_touch(struct emit_pass *p, struct emit_entry *x)
{
    if (x->dirty)
        return;
    x->dirty = 1;
    if (p->ntouched == p->touchcap) {
        p->touchcap = p->touchcap ? 2 * p->touchcap : 16;
        p->touched =
            tc_xreallocarray(p->touched, p->touchcap, sizeof(*p->touched));
    }
    p->touched[p->ntouched++] = x;
}

static void
emit_del(struct emit_pass *p, struct emit_entry *x)
{
    if (!x->stored)
        return;
    if (p->ndels == p->delcap) {
        p->delcap = p->delcap ? 2 * p->delcap : 16;
        p->dels = tc_xreallocarray(p->dels, p->delcap, sizeof(*p->dels));
    }
    p->dels[p->ndels++] = tc_xstrdup(x->key);
    x->stored = 0;
}

/* "1m", "30s", "2h", "1500ms": a period as an admin wrote it. */
static void
emit_fmt_period(uint64_t ms, char *buf, size_t len)
{
    if (ms % 3600000 == 0)
        snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/*
 * Queue the event that closes entry x into pass p (if it has anything
 * to say) and queue the deletion of its row. now is the closing time.
 * The entry itself is left for the caller to reset or free.
 */
static int
emit_close_entry(struct emit *e, struct emit_pass *p, struct emit_entry *x,
                 int64_t now)
{
    struct emit_slot *s;

    emit_del(p, x);
    if (x->count == 0 || tc_buf_size(&x->body) == 0)
        return 0;
    s = emit_slot_new(p);
    s->raw_len = tc_buf_size(&x->body);
    s->raw = tc_xmalloc(s->raw_len);
    memcpy(s->raw, tc_buf_head(&x->body), s->raw_len);
    s->count = x->count > UINT32_MAX ? UINT32_MAX : (uint32_t)x->count;
    if (x->kind == EMIT_RATE) {
        char per[32], msg[256];
        const char *rule = strrchr(x->key, '\x1f');
        int n;

        emit_fmt_period((uint64_t)(x->due_ts - x->first_ts) / 1000000, per,
                        sizeof(per));
        n = snprintf(msg, sizeof(msg),
                     "rate limit: %" PRIu64
                     " events suppressed in the last %s (rule %s)",
                     x->count, per, rule ? rule + 1 : "?");
        s->str_off = tc_buf_size(&p->strs);
        s->str_len = (uint32_t)n;
        if (tc_buf_append(&p->strs, msg, (size_t)n) < 0)
            return -ENOBUFS;
        s->has_str = s->str_is_msg = 1;
        s->ts = now;
    }
    (void)e;
    return 1;
}

/* Merge labels: agent, then input, then rule; a later key wins. */
static uint32_t
emit_labels(struct emit *e, const struct emit_source *src,
            const struct agent_rule *r, struct tc_kv *out)
{
    const struct tc_conf_kv *lv[3] = {e->cfg ? e->cfg->labels : NULL,
                                      src->labels, r ? r->labels : NULL};
    size_t ln[3] = {e->cfg ? e->cfg->nlabels : 0, src->nlabels,
                    r ? r->nlabels : 0};
    uint32_t n = 0;

    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < ln[l]; i++) {
            struct tc_str k = tc_str_c(lv[l][i].key);
            uint32_t j;

            for (j = 0; j < n; j++)
                if (out[j].key.len == k.len &&
                    memcmp(out[j].key.ptr, k.ptr, k.len) == 0)
                    break;
            out[j].key = k;
            out[j].val = tc_str_c(lv[l][i].val);
            if (j == n)
                n++;
        }
    }
    return n;
}

/*
 * Build the event of one line into *ev, with its labels and fields in
 * e->tmp_kvs and its fingerprint in e->fp. *bad_time is set when the
 * rule has a time capture that did not parse.
 */
static void
emit_build(struct emit *e, const struct emit_source *src,
           const struct rules_hit *hit, const char *line, size_t len,
           int64_t read_ts, struct tc_event *ev, uint32_t *nlabels,
           int *bad_time)
{
    const struct agent_rule *r = hit->conf;
    size_t want = (e->cfg ? e->cfg->nlabels : 0) + src->nlabels +
                  (r ? r->nlabels : 0) + src->nextra + hit->nfields;
    uint32_t nl;
    int fp;

    if (want > e->tmp_cap) {
        e->tmp_cap = want;
        e->tmp_kvs = tc_xreallocarray(e->tmp_kvs, want, sizeof(*e->tmp_kvs));
    }
    memset(ev, 0, sizeof(*ev));
    ev->ts = read_ts;
    ev->host = tc_str_c(e->host);
    ev->kind = tc_str_c(src->kind ? src->kind : "log");
    ev->source = tc_str_c(src->source);
    ev->rule = tc_str_c(hit->rule);
    ev->sev = hit->sev;
    ev->state = -1;
    ev->message.ptr = line;
    ev->message.len = (uint32_t)len;
    ev->count = 1;
    ev->event_ts = src->event_ts;
    nl = emit_labels(e, src, r, e->tmp_kvs);
    if (src->nextra > 0)
        memcpy(e->tmp_kvs + nl, src->extra, src->nextra * sizeof(*src->extra));
    if (hit->nfields > 0)
        memcpy(e->tmp_kvs + nl + src->nextra, hit->fields,
               hit->nfields * sizeof(*hit->fields));
    ev->labels = nl ? e->tmp_kvs : NULL;
    ev->nlabels = nl;
    ev->fields = src->nextra + hit->nfields ? e->tmp_kvs + nl : NULL;
    ev->nfields = src->nextra + hit->nfields;
    *nlabels = nl;
    fp = rules_fingerprint(hit, e->host, src->source, e->fp, sizeof(e->fp));
    if (fp >= 0) {
        ev->fingerprint.ptr = e->fp;
        ev->fingerprint.len = (uint32_t)fp;
    }
    *bad_time = 0;
    if (r != NULL && r->time_field != NULL) {
        size_t tl = strlen(r->time_field);
        int found = 0;

        for (uint32_t i = 0; i < hit->nfields; i++) {
            const struct tc_kv *f = &hit->fields[i];
            if (f->key.len != tl || memcmp(f->key.ptr, r->time_field, tl) != 0)
                continue;
            found = emit_parse_time(f->val.ptr, f->val.len, r->time_format,
                                    read_ts, &ev->event_ts) == 0;
        }
        if (!found) {
            ev->event_ts = src->event_ts;
            *bad_time = 1;
        }
    }
}

/* Append ev to the pass, copying what does not outlive the call. */
static void
emit_queue(struct emit_pass *p, const struct tc_event *ev)
{
    struct emit_slot *s = emit_slot_new(p);
    uint32_t nkv = ev->nlabels + ev->nfields;

    s->ev = *ev;
    if (p->nkvs + nkv > p->kvcap) {
        while (p->nkvs + nkv > p->kvcap)
            p->kvcap = p->kvcap ? 2 * p->kvcap : 64;
        p->kvs = tc_xreallocarray(p->kvs, p->kvcap, sizeof(*p->kvs));
    }
    s->kv_off = p->nkvs;
    if (ev->nlabels > 0)
        memcpy(p->kvs + p->nkvs, ev->labels, ev->nlabels * sizeof(*p->kvs));
    if (ev->nfields > 0)
        memcpy(p->kvs + p->nkvs + ev->nlabels, ev->fields,
               ev->nfields * sizeof(*p->kvs));
    p->nkvs += nkv;
    if (ev->fingerprint.len > 0) {
        s->str_off = tc_buf_size(&p->strs);
        s->str_len = ev->fingerprint.len;
        /* Over the (huge) cap the event goes without fingerprint. */
        s->has_str = tc_buf_append(&p->strs, ev->fingerprint.ptr,
                                   ev->fingerprint.len) == 0;
    }
}

/* Build a key "k\x1fsource\x1frule[\x1ffp]" in buf. */
static const char *
emit_key(char *buf, size_t len, enum emit_kind k, const char *source,
         const char *rule, const struct tc_str *fp)
{
    if (fp != NULL)
        snprintf(buf, len, "%c\x1f%s\x1f%s\x1f%.*s", (char)k, source, rule,
                 (int)fp->len, fp->ptr ? fp->ptr : "");
    else
        snprintf(buf, len, "%c\x1f%s\x1f%s", (char)k, source, rule);
    return buf;
}

/* Encode ev into x->body (seq 1: the spool sets the real one). */
static void
emit_set_body(struct emit_entry *x, const struct tc_event *ev)
{
    struct tc_event t = *ev;

    t.seq = 1;
    tc_buf_reset(&x->body);
    if (tc_event_encode(&x->body, &t) < 0)
        tc_buf_reset(&x->body);
}

/*
 * The rate limit of rule r for an event about to be sent: 1 to send it,
 * 0 if it is suppressed (and counted).
 */
static int
emit_rate(struct emit *e, struct emit_pass *p, const struct agent_rule *r,
          const struct tc_event *ev, int64_t now)
{
    char key[PATH_MAX + 512];
    struct emit_entry *x;
    uint64_t h;

    emit_key(key, sizeof(key), EMIT_RATE, ev->source.ptr, r->name, NULL);
    h = tc_hash64_str(key);
    x = emit_find(e, key, h);
    if (x != NULL && x->due_ts <= now) {
        /* The period ended and the timer has not run yet: close it in
         * this pass, before the event that starts the next one. */
        (void)emit_close_entry(e, p, x, now);
        x->count = x->aux = 0;
        tc_buf_reset(&x->body);
        x->first_ts = now;
        x->due_ts = now + (int64_t)r->rate_per_ms * 1000000;
    }
    if (x == NULL) {
        struct tc_event t = *ev;

        x = emit_insert(e, key, h, EMIT_RATE);
        x->first_ts = now;
        x->due_ts = now + (int64_t)r->rate_per_ms * 1000000;
        /* The summary: this event without what is particular to it. */
        t.message = tc_str_c("");
        t.fields = NULL;
        t.nfields = 0;
        t.fingerprint = tc_str_c("");
        t.event_ts = 0;
        emit_set_body(x, &t);
        emit_arm_at(e, x->due_ts);
    }
    x->last_ts = now;
    emit_touch(p, x);
    if (x->aux < r->rate_max) {
        x->aux++;
        return 1;
    }
    x->count++;
    p->st.suppressed++;
    return 0;
}

void
emit_match(struct emit *e, struct emit_batch *b, const struct emit_source *src,
           const struct rules_hit *hit, const char *line, size_t len,
           int64_t read_ts)
{
    struct emit_pass *p = b->priv;
    const struct agent_rule *r = hit->conf;
    struct emit_entry *x = NULL;
    struct tc_event ev;
    char key[PATH_MAX + RULES_FP_MAX + 256];
    uint32_t nl;
    uint64_t h = 0;
    int bad_time;

    if (r != NULL && r->action == AGENT_ACTION_DROP) {
        p->st.dropped++;
        return;
    }
    emit_build(e, src, hit, line, len, read_ts, &ev, &nl, &bad_time);
    if (bad_time)
        p->st.bad_time++;
    if (r != NULL && r->fold_window_ms > 0) {
        emit_key(key, sizeof(key), EMIT_FOLD, src->source, hit->rule,
                 &ev.fingerprint);
        h = tc_hash64_str(key);
        x = emit_find(e, key, h);
        if (x != NULL && x->due_ts <= read_ts) {
            /* Closed but not yet ticked: its event goes before this
             * line's, and this line opens the next window. */
            (void)emit_close_entry(e, p, x, read_ts);
            x->count = 0;
            x->due_ts = read_ts + (int64_t)r->fold_window_ms * 1000000;
            tc_buf_reset(&x->body);
            emit_touch(p, x); /* clear the stale state at commit */
            emit_arm_at(e, x->due_ts);
        } else if (x != NULL) {
            /* A repeat: counted, and kept as the event to send. */
            if (x->count == 0)
                x->first_ts = read_ts;
            x->count++;
            x->last_ts = read_ts;
            emit_set_body(x, &ev);
            emit_touch(p, x);
            p->st.folded++;
            return;
        }
    }
    if (r != NULL && r->rate_max > 0 && !emit_rate(e, p, r, &ev, read_ts))
        return;
    emit_queue(p, &ev);
    p->st.events++;
    if (r != NULL && r->fold_window_ms > 0 && x == NULL) {
        if (tc_htab_count(&e->tab) >= EMIT_MAX_PENDING) {
            if (!e->full_logged)
                log_warnx("emit: %d fold windows open: new fingerprints "
                          "are sent unfolded",
                          EMIT_MAX_PENDING);
            e->full_logged = 1;
            return;
        }
        /* The window opens with this event, which goes out now; only
         * repeats make it worth a row in the spool. */
        x = emit_insert(e, key, h, EMIT_FOLD);
        x->first_ts = x->last_ts = read_ts;
        x->due_ts = read_ts + (int64_t)r->fold_window_ms * 1000000;
        emit_arm_at(e, x->due_ts);
    }
}

/* Link the pass's slots into events (decoding raw ones). */
static int
emit_link(struct emit_pass *p, struct tc_event **out)
{
    /* Not zeroed: every element is written whole below (a pass's worth
     * of zeroing was a megabyte or three of memset per commit). */
    struct tc_event *evs =
        tc_xreallocarray(NULL, p->nslots ? p->nslots : 1, sizeof(*evs));

    for (size_t i = 0; i < p->nslots; i++) {
        struct emit_slot *s = &p->slots[i];
        const char *str = (const char *)tc_buf_head(&p->strs) + s->str_off;

        if (s->raw != NULL) {
            const char *why = NULL;
            int rc;

            s->frame = tc_xcalloc(1, sizeof(*s->frame));
            tc_frame_init(s->frame);
            rc = tc_event_decode(s->raw, s->raw_len, &tc_wire_default_limits,
                                 s->frame, &evs[i], &why);
            if (rc < 0) {
                log_warnx("emit: a pending event does not decode: %s",
                          why ? why : strerror(-rc));
                free(evs);
                return rc;
            }
            evs[i].count = s->count;
            if (s->ts != 0)
                evs[i].ts = s->ts;
            if (s->has_str && s->str_is_msg) {
                evs[i].message.ptr = str;
                evs[i].message.len = s->str_len;
            }
            continue;
        }
        evs[i] = s->ev;
        evs[i].labels = s->ev.nlabels ? p->kvs + s->kv_off : NULL;
        evs[i].fields =
            s->ev.nfields ? p->kvs + s->kv_off + s->ev.nlabels : NULL;
        if (s->has_str) {
            evs[i].fingerprint.ptr = str;
            evs[i].fingerprint.len = s->str_len;
        } else {
            evs[i].fingerprint = tc_str_c("");
        }
    }
    *out = evs;
    return 0;
}

/* Commit the pass with an optional position; see emit_commit. */
static int
emit_flush(struct emit *e, struct emit_pass *p, const char *path,
           const struct spool_file *pos, const char *cursor_key,
           const char *cursor)
{
    struct spool_state *puts = NULL;
    struct spool_batch sb;
    struct tc_event *evs = NULL;
    size_t nput = 0;
    int rc;

    if ((rc = emit_link(p, &evs)) < 0)
        goto fail;
    puts = tc_xcalloc(p->ntouched ? p->ntouched : 1, sizeof(*puts));
    for (size_t i = 0; i < p->ntouched; i++) {
        struct emit_entry *x = p->touched[i];

        /* A fold window without repeats has nothing to lose. */
        if (x->kind == EMIT_FOLD && x->count == 0)
            continue;
        puts[nput].key = x->key;
        puts[nput].count = x->count;
        puts[nput].aux = x->aux;
        puts[nput].first_ts = x->first_ts;
        puts[nput].last_ts = x->last_ts;
        puts[nput].due_ts = x->due_ts;
        puts[nput].body = tc_buf_head(&x->body);
        puts[nput].body_len = tc_buf_size(&x->body);
        nput++;
    }
    memset(&sb, 0, sizeof(sb));
    sb.evs = evs;
    sb.nevs = p->nslots;
    sb.path = path;
    sb.pos = pos;
    sb.cursor_key = cursor_key;
    sb.cursor = cursor;
    sb.put = puts;
    sb.nput = nput;
    sb.del = (const char *const *)p->dels;
    sb.ndel = p->ndels;
    if ((rc = spool_commit(e->spool, &sb)) < 0)
        goto fail;
    for (size_t i = 0; i < p->ntouched; i++) {
        struct emit_entry *x = p->touched[i];
        x->dirty = 0;
        if (x->kind == EMIT_RATE || x->count > 0)
            x->stored = 1;
    }
    e->stats.events += p->nslots;
    e->stats.dropped += p->st.dropped;
    e->stats.folded += p->st.folded;
    e->stats.suppressed += p->st.suppressed;
    e->stats.bad_time += p->st.bad_time;
    rc = 0;
    if (p->nslots > 0 && e->on_spooled != NULL)
        e->on_spooled(e->arg);
    goto out;
fail:
    /* The caller re-reads from its last committed position; the
     * counts it will rebuild on are the spool's, not ours. */
    for (size_t i = 0; i < p->ntouched; i++)
        p->touched[i]->dirty = 0;
    if (emit_load(e) < 0)
        log_warnx("emit: cannot reload the pending state; fold counts "
                  "may be off until restart");
out:
    free(puts);
    free(evs);
    emit_pass_reset(p);
    return rc;
}

int
emit_commit(struct emit *e, struct emit_batch *b, const char *path,
            const struct spool_file *pos, const char *cursor_key,
            const char *cursor)
{
    return emit_flush(e, b->priv, path, pos, cursor_key, cursor);
}

int
emit_tick(struct emit *e, int64_t now)
{
    struct emit_batch b;
    struct emit_pass *p;
    struct emit_entry **dead = NULL;
    size_t ndead = 0, deadcap = 0;
    struct tc_hiter it;
    int rc, n;

    emit_batch_init(&b);
    p = b.priv;
    for (struct tc_hnode *hn = tc_htab_iter(&e->tab, &it); hn != NULL;
         hn = tc_hiter_next(&it)) {
        struct emit_entry *x = TC_CONTAINER_OF(hn, struct emit_entry, hnode);

        if (x->due_ts > now)
            continue;
        (void)emit_close_entry(e, p, x, now);
        if (ndead == deadcap) {
            deadcap = deadcap ? 2 * deadcap : 16;
            dead = tc_xreallocarray(dead, deadcap, sizeof(*dead));
        }
        dead[ndead++] = x;
    }
    if (ndead == 0) {
        rc = 0;
        goto out;
    }
    n = (int)p->nslots;
    if (p->nslots == 0 && p->ndels == 0) {
        rc = 0; /* only memory-only windows closed */
    } else if ((rc = emit_flush(e, p, NULL, NULL, NULL, NULL)) < 0) {
        /* emit_flush reloaded the table: the entries are gone. */
        log_warnx("emit: cannot close %zu windows: %s; retrying", ndead,
                  strerror(-rc));
        goto out;
    }
    /* Unlink the closed entries. */
    for (size_t i = 0; i < ndead; i++) {
        tc_htab_remove(&e->tab, &dead[i]->hnode);
        emit_entry_free(dead[i]);
    }
    rc = n;
out:
    free(dead);
    emit_batch_close(&b);
    return rc;
}

int
emit_cursor_get(struct emit *e, const char *key, char **out)
{
    return spool_cursor_get(e->spool, key, out);
}

size_t
emit_pending(const struct emit *e)
{
    return tc_htab_count(&e->tab);
}

void
emit_get_stats(const struct emit *e, struct emit_stats *out)
{
    *out = e->stats;
}

/* --- time --------------------------------------------------------- */

static int
emit_digits(const char *p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

int
emit_parse_time(const char *s, size_t len, const char *format, int64_t now,
                int64_t *out)
{
    char buf[EMIT_TIME_MAX];
    struct tm tm;
    const char *p;
    int64_t frac = 0, off = 0, sec;
    int no_year;

    if (len == 0 || len >= sizeof(buf) || format == NULL)
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    /* strptime sets only what the format names: mark the year so that
     * a syslog-style time without one can be given the right year. */
    tm.tm_year = INT_MIN;
    tm.tm_mday = 1;
    if ((p = strptime(buf, format, &tm)) == NULL)
        return -EINVAL;
    no_year = tm.tm_year == INT_MIN;
    if ((*p == '.' || *p == ',') && isdigit((unsigned char)p[1])) {
        int digits = 0;

        for (p++; isdigit((unsigned char)*p); p++)
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
        for (; digits < 9; digits++)
            frac *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh, mm = 0;

        if ((hh = emit_digits(p + 1, 2)) < 0)
            return -EINVAL;
        p += 3;
        if (*p == ':')
            p++;
        if (*p != '\0' && (mm = emit_digits(p, 2)) < 0)
            return -EINVAL;
        if (*p != '\0')
            p += 2;
        if (hh > 23 || mm > 59)
            return -EINVAL;
        off = sign * (hh * 3600 + mm * 60);
    }
    if (*p != '\0')
        return -EINVAL;
    /* %z in the format itself lands in tm_gmtoff. */
    off += tm.tm_gmtoff;
    if (no_year) {
        time_t t = (time_t)(now / 1000000000);
        struct tm nt;

        gmtime_r(&t, &nt);
        tm.tm_year = nt.tm_year;
        sec = (int64_t)timegm(&tm) - off;
        if (sec > now / 1000000000 + 86400) {
            tm.tm_year--;
            sec = (int64_t)timegm(&tm) - off;
        }
    } else {
        sec = (int64_t)timegm(&tm) - off;
    }
    /* event_ts 0 means "none", and the wire has no time before 1970. */
    if (sec <= 0 || sec > INT64_MAX / 1000000000 - 1)
        return -EINVAL;
    *out = sec * 1000000000 + frac;
    return 0;
}

/* --- preview (test-rules) ----------------------------------------- */

int
emit_preview(struct emit *e, const struct emit_source *src,
             const struct rules_hit *hit, const char *line, size_t len,
             int64_t read_ts, struct tc_buf *out)
{
    struct tc_view_event_opts vo = {.iso_digits = 9};
    struct tc_event ev;
    uint32_t nl;

    if (hit->conf != NULL && hit->conf->action == AGENT_ACTION_DROP)
        return 0;
    emit_build(e, src, hit, line, len, read_ts, &ev, &nl, &vo.event_ts_error);
    return tc_view_event_json(out, &ev, &vo) < 0 ? -ENOBUFS : 1;
}
