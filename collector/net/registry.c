/*
 * registry: the agents table (common/htab.h, keyed by name) and the
 * sends tracked until the agent acks them (see registry.h and
 * docs/internals/net.md). No I/O: the link ops do that.
 */
#include "net/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hash.h"
#include "util.h"
#include "wire.h"

/* Frames encoded by registry_send_frame: a HINT is a few KiB. */
#define ENC_MAX (1024u * 1024)

struct registry {
    struct tc_htab agents; /* struct reg_agent by name; owns the agents */
    uint32_t max_out;      /* tracked sends per agent */
    struct tc_buf enc;     /* registry_send_frame scratch; capped */
    void (*up_fn)(void *arg, const char *agent); /* registry_watch */
    void *up_arg;
};

struct registry *
registry_new(uint32_t max_outstanding)
{
    struct registry *r = tc_xcalloc(1, sizeof(*r));

    tc_htab_init(&r->agents);
    r->max_out = max_outstanding ? max_outstanding : REGISTRY_MAX_OUTSTANDING;
    tc_buf_init(&r->enc, ENC_MAX);
    return r;
}

/*
 * Take a's tracked sends away and fail them, oldest first. They are
 * taken before the first callback, so a callback that sends to a again
 * (once it is back) starts a fresh list.
 */
static void
fail_all(struct reg_agent *a, int err)
{
    struct reg_out *out = a->out;
    uint32_t n = a->nout;

    a->out = NULL;
    a->nout = a->capout = 0;
    for (uint32_t i = 0; i < n; i++)
        out[i].cbs->on_fail(out[i].arg, a->name, out[i].id, err);
    free(out);
}

void
registry_free(struct registry *r)
{
    struct tc_hiter it;
    struct tc_hnode *n;

    if (r == NULL)
        return;
    for (n = tc_htab_iter(&r->agents, &it); n != NULL; n = tc_hiter_next(&it))
        fail_all(TC_CONTAINER_OF(n, struct reg_agent, hnode), -ECANCELED);
    for (n = tc_htab_iter(&r->agents, &it); n != NULL; n = tc_hiter_next(&it)) {
        struct reg_agent *a = TC_CONTAINER_OF(n, struct reg_agent, hnode);

        tc_htab_remove(&r->agents, n);
        free(a->name);
        free(a->software);
        free(a->out);
        free(a);
    }
    tc_htab_free(&r->agents);
    tc_buf_close(&r->enc);
    free(r);
}

struct reg_agent *
registry_findn(const struct registry *r, const char *name, size_t len)
{
    uint64_t h = tc_hash64(name, len);

    for (struct tc_hnode *n = tc_htab_first(&r->agents, h); n != NULL;
         n = tc_htab_next(n, h)) {
        struct reg_agent *a = TC_CONTAINER_OF(n, struct reg_agent, hnode);

        if (strncmp(a->name, name, len) == 0 && a->name[len] == '\0')
            return a;
    }
    return NULL;
}

struct reg_agent *
registry_find(const struct registry *r, const char *name)
{
    return registry_findn(r, name, strlen(name));
}

struct reg_agent *
registry_get(struct registry *r, const char *name)
{
    size_t len = strlen(name);
    struct reg_agent *a = registry_findn(r, name, len);

    if (a != NULL)
        return a;
    a = tc_xcalloc(1, sizeof(*a));
    a->name = tc_xstrdup(name);
    tc_htab_insert(&r->agents, &a->hnode, tc_hash64(name, len));
    return a;
}

uint32_t
registry_count(const struct registry *r)
{
    return (uint32_t)tc_htab_count(&r->agents);
}

struct reg_agent *
registry_first(const struct registry *r, struct reg_iter *it)
{
    struct tc_hnode *n = tc_htab_iter(&r->agents, &it->h);

    return n ? TC_CONTAINER_OF(n, struct reg_agent, hnode) : NULL;
}

struct reg_agent *
registry_next(struct reg_iter *it)
{
    struct tc_hnode *n = tc_hiter_next(&it->h);

    return n ? TC_CONTAINER_OF(n, struct reg_agent, hnode) : NULL;
}

void
registry_attach(struct registry *r, struct reg_agent *a,
                const struct reg_link_ops *ops, void *link)
{
    if (a->link != NULL)
        registry_detach(r, a, a->link);
    a->ops = ops;
    a->link = link;
}

int
registry_detach(struct registry *r, struct reg_agent *a, void *link)
{
    (void)r;
    if (link == NULL || a->link != link)
        return 0;
    a->ops = NULL;
    a->link = NULL;
    fail_all(a, -ECONNRESET);
    return 1;
}

void *
registry_link(const struct reg_agent *a)
{
    return a->link;
}

int
registry_held(const struct reg_agent *a)
{
    return a->link != NULL && a->ops->held != NULL && a->ops->held(a->link);
}

void
registry_watch(struct registry *r, void (*fn)(void *arg, const char *agent),
               void *arg)
{
    r->up_fn = fn;
    r->up_arg = arg;
}

void
registry_up(struct registry *r, struct reg_agent *a)
{
    if (r->up_fn != NULL && a->link != NULL)
        r->up_fn(r->up_arg, a->name);
}

static int
out_find(const struct reg_agent *a, uint64_t id)
{
    for (uint32_t i = 0; i < a->nout; i++)
        if (a->out[i].id == id)
            return (int)i;
    return -1;
}

int
registry_send(struct registry *r, const char *name, const uint8_t *frame,
              size_t len, uint64_t id, const struct reg_ack_cbs *cbs, void *arg)
{
    struct reg_agent *a = registry_find(r, name);
    const uint8_t *body;
    size_t blen;
    int rc;

    /* One whole frame, nothing after it: the peer reads a stream. */
    if (len < TC_WIRE_HDR || len - TC_WIRE_HDR > UINT32_MAX ||
        tc_wire_next(frame, len, (uint32_t)(len - TC_WIRE_HDR), &body, &blen) !=
            (long)len)
        return -EINVAL;
    if (id != 0 && (cbs == NULL || cbs->on_ack == NULL || cbs->on_fail == NULL))
        return -EINVAL;
    if (a == NULL || a->link == NULL)
        return -ENOTCONN;
    if (id != 0) {
        if (out_find(a, id) >= 0)
            return -EEXIST;
        if (a->nout >= r->max_out)
            return -ENOBUFS;
    }
    if ((rc = a->ops->send(a->link, frame, len)) < 0)
        return rc;
    if (id == 0)
        return 0;
    if (a->nout == a->capout) {
        uint32_t cap = a->capout ? a->capout * 2 : 8;

        if (cap > r->max_out)
            cap = r->max_out;
        a->out = tc_xreallocarray(a->out, cap, sizeof(*a->out));
        a->capout = cap;
    }
    a->out[a->nout].id = id;
    a->out[a->nout].cbs = cbs;
    a->out[a->nout].arg = arg;
    a->nout++;
    return 0;
}

int
registry_send_frame(struct registry *r, const char *name,
                    const struct tc_frame *f, const struct reg_ack_cbs *cbs,
                    void *arg)
{
    uint64_t id = 0;
    int rc;

    tc_buf_reset(&r->enc);
    switch (f->type) {
    case TC_F_HINT:
        if ((id = f->u.hint.id) == 0)
            return -EINVAL;
        rc = tc_wire_encode_hint(&r->enc, &f->u.hint);
        break;
    case TC_F_ACK:
        rc = tc_wire_encode_ack(&r->enc, &f->u.ack);
        break;
    case TC_F_PING:
        rc = tc_wire_encode_ping(&r->enc, &f->u.ping);
        break;
    case TC_F_PONG:
        rc = tc_wire_encode_pong(&r->enc, &f->u.pong);
        break;
    case TC_F_BYE:
        rc = tc_wire_encode_bye(&r->enc, &f->u.bye);
        break;
    default:
        return -EINVAL;
    }
    if (rc == 0)
        rc = registry_send(r, name, tc_buf_head(&r->enc), tc_buf_size(&r->enc),
                           id, cbs, arg);
    tc_buf_reset(&r->enc);
    return rc;
}

/* Take id out of a's tracked sends into *o. 0, or -ENOENT. */
static int
out_take(struct reg_agent *a, uint64_t id, struct reg_out *o)
{
    int i;

    if (id == 0 || (i = out_find(a, id)) < 0)
        return -ENOENT;
    *o = a->out[i];
    memmove(a->out + i, a->out + i + 1,
            (a->nout - (uint32_t)i - 1) * sizeof(*a->out));
    a->nout--;
    return 0;
}

int
registry_acked(struct registry *r, struct reg_agent *a, uint64_t id)
{
    struct reg_out o;

    (void)r;
    if (out_take(a, id, &o) < 0)
        return -ENOENT;
    o.cbs->on_ack(o.arg, a->name, o.id);
    return 0;
}

int
registry_refused(struct registry *r, struct reg_agent *a, uint64_t id,
                 const char *reason)
{
    struct reg_out o;

    (void)r;
    if (out_take(a, id, &o) < 0)
        return -ENOENT;
    if (o.cbs->on_refused != NULL)
        o.cbs->on_refused(o.arg, a->name, o.id, reason);
    else
        o.cbs->on_ack(o.arg, a->name, o.id);
    return 0;
}

uint32_t
registry_outstanding(const struct reg_agent *a)
{
    return a->nout;
}
