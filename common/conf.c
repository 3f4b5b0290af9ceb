/*
 * conf: YAML file -> tree with line numbers -> struct, through a schema
 * table; see conf.h.
 *
 * The tree is built from libyaml's event parser rather than its document
 * API so that anchors and aliases are refused as they are met: nothing
 * is ever expanded, so a "billion laughs" file costs no more memory than
 * its own size. Recursion depth is bounded by TC_CONF_MAX_DEPTH, and
 * the file's size by TC_CONF_MAX_BYTES, which bounds the node count (a
 * node takes at least two bytes of input) and so the tree's memory.
 * Every step is linear in the input: duplicate keys are found through a
 * hash index per map, and arrays grow geometrically.
 */
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "hash.h"
#include "htab.h"
#include "log.h"
#include "util.h"

/* Values echoed in messages are cut here so a huge scalar stays readable. */
#define SHOW_MAX 64

struct loader {
    struct tc_conf *c;    /* borrowed */
    yaml_parser_t parser; /* initialised by tc_conf_load */
    int anchors;          /* anchors and aliases seen (1st is reported) */
};

void
tc_conf_error(struct tc_conf *c, int line, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warnx("%s:%d: %s", c->file, line, msg);
    c->nerrors++;
}

static void
node_free(struct tc_conf_node *n)
{
    if (n == NULL)
        return;
    free(n->str);
    for (size_t i = 0; i < n->npairs; i++) {
        free(n->pairs[i].key);
        node_free(n->pairs[i].val);
    }
    free(n->pairs);
    for (size_t i = 0; i < n->nitems; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n);
}

void
tc_conf_free(struct tc_conf *c)
{
    if (c == NULL)
        return;
    node_free(c->root);
    free(c->file);
    free(c->path);
    free(c->dir);
    free(c);
}

static struct tc_conf_node *
node_new(enum tc_conf_kind kind, int line)
{
    struct tc_conf_node *n = tc_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = line;
    return n;
}

static int
mark_line(yaml_mark_t m)
{
    return m.line >= INT_MAX ? INT_MAX : (int)m.line + 1;
}

/* Report the parser's own problem text with its mark; stop the load. */
static void
syntax_error(struct loader *ld)
{
    yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "unknown error";

    if (p->context != NULL)
        tc_conf_error(ld->c, mark_line(p->problem_mark),
                      "syntax error: %s (%s at line %d)", problem, p->context,
                      mark_line(p->context_mark));
    else
        tc_conf_error(ld->c, mark_line(p->problem_mark), "syntax error: %s",
                      problem);
}

static int
next_event(struct loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev)) {
        syntax_error(ld);
        return -EINVAL;
    }
    return 0;
}

/*
 * Anchors and aliases are refused once, at the first one: an alias bomb
 * would otherwise log one line per alias.
 */
static void
refuse_anchor(struct loader *ld, const char *what, char sigil,
              const yaml_char_t *name, yaml_mark_t m)
{
    if (name == NULL || ld->anchors++ > 0)
        return;
    tc_conf_error(ld->c, mark_line(m),
                  "%s '%c%s': anchors and aliases are not supported", what,
                  sigil, (const char *)name);
}

static int parse_node(struct loader *ld, yaml_event_t *ev, int depth,
                      struct tc_conf_node **out);

static int
parse_scalar(struct loader *ld, yaml_event_t *ev, struct tc_conf_node **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    struct tc_conf_node *n =
        node_new(TC_CONF_SCALAR, mark_line(ev->start_mark));

    refuse_anchor(ld, "anchor", '&', ev->data.scalar.anchor, ev->start_mark);
    /* A NUL inside a value would silently truncate it everywhere later. */
    if (memchr(v, '\0', len) != NULL)
        tc_conf_error(ld->c, n->line, "value contains a NUL character");
    n->str = tc_xstrndup(v, len);
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
         strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0))
        n->null = 1;
    *out = n;
    return 0;
}

static int
parse_seq(struct loader *ld, yaml_event_t *start, int depth,
          struct tc_conf_node **out)
{
    struct tc_conf_node *n =
        node_new(TC_CONF_SEQ, mark_line(start->start_mark));
    size_t cap = 0; /* items allocated */
    yaml_event_t ev;
    int rc;

    refuse_anchor(ld, "anchor", '&', start->data.sequence_start.anchor,
                  start->start_mark);
    for (;;) {
        struct tc_conf_node *item;

        if ((rc = next_event(ld, &ev)) < 0)
            goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        rc = parse_node(ld, &ev, depth + 1, &item);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto fail;
        if (n->nitems == cap) {
            cap = cap ? cap * 2 : 4;
            n->items = tc_xreallocarray(n->items, cap, sizeof(*n->items));
        }
        n->items[n->nitems++] = item;
    }
    *out = n;
    return 0;
fail:
    node_free(n);
    return rc;
}

/*
 * Duplicate-key detection for one map being built: a hash table
 * (htab.h) of the map's pair indices. Maps of fewer than KEYSET_MIN
 * keys, nearly all of them, are scanned instead.
 */
#define KEYSET_MIN 16

struct keyent {
    struct tc_hnode hnode; /* in keyset.tab, under tc_hash64 of the key */
    size_t idx;            /* in map->pairs */
};

struct keyset {
    struct tc_htab tab; /* of ent[0..nent) */
    struct keyent *ent; /* owned; NULL while the map is small */
    size_t nent, cap;   /* entries used, allocated */
};

/* Index the pairs not indexed yet, once the map is big enough. */
static void
keyset_add(struct keyset *ks, const struct tc_conf_node *map)
{
    if (map->npairs < KEYSET_MIN)
        return;
    if (ks->cap < map->npairs) {
        /* The entries move: rebuild the table over the new array. */
        while (ks->cap < map->npairs)
            ks->cap = ks->cap ? ks->cap * 2 : KEYSET_MIN * 2;
        ks->ent = tc_xreallocarray(ks->ent, ks->cap, sizeof(*ks->ent));
        tc_htab_free(&ks->tab);
        for (size_t i = 0; i < ks->nent; i++)
            tc_htab_insert(&ks->tab, &ks->ent[i].hnode, ks->ent[i].hnode.hash);
    }
    for (; ks->nent < map->npairs; ks->nent++) {
        const char *k = map->pairs[ks->nent].key;

        ks->ent[ks->nent].idx = ks->nent;
        tc_htab_insert(&ks->tab, &ks->ent[ks->nent].hnode,
                       tc_hash64(k, strlen(k)));
    }
}

static void
keyset_free(struct keyset *ks)
{
    tc_htab_free(&ks->tab);
    free(ks->ent);
}

/* The pair of map whose key is key, or NULL. */
static const struct tc_conf_pair *
keyset_find(const struct keyset *ks, const struct tc_conf_node *map,
            const char *key)
{
    uint64_t h;

    if (ks->ent == NULL) {
        for (size_t i = 0; i < map->npairs; i++)
            if (strcmp(map->pairs[i].key, key) == 0)
                return &map->pairs[i];
        return NULL;
    }
    h = tc_hash64(key, strlen(key));
    for (struct tc_hnode *n = tc_htab_first(&ks->tab, h); n != NULL;
         n = tc_htab_next(n, h)) {
        const struct keyent *e = TC_CONTAINER_OF(n, struct keyent, hnode);

        if (strcmp(map->pairs[e->idx].key, key) == 0)
            return &map->pairs[e->idx];
    }
    return NULL;
}

static int
parse_map(struct loader *ld, yaml_event_t *start, int depth,
          struct tc_conf_node **out)
{
    struct tc_conf_node *n =
        node_new(TC_CONF_MAP, mark_line(start->start_mark));
    struct tc_conf_node *key = NULL, *val = NULL;
    struct keyset ks = {0}; /* an empty htab is all zeros */
    size_t cap = 0;         /* pairs allocated */
    yaml_event_t ev;
    int rc, keyline;

    refuse_anchor(ld, "anchor", '&', start->data.mapping_start.anchor,
                  start->start_mark);
    for (;;) {
        int dup = 0;

        if ((rc = next_event(ld, &ev)) < 0)
            goto fail;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        keyline = mark_line(ev.start_mark);
        rc = parse_node(ld, &ev, depth + 1, &key);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto fail;
        if ((rc = next_event(ld, &ev)) < 0)
            goto fail;
        rc = parse_node(ld, &ev, depth + 1, &val);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto fail;

        if (key->kind != TC_CONF_SCALAR) {
            tc_conf_error(ld->c, keyline, "map keys must be plain strings");
            dup = 1;
        } else {
            /*
             * A duplicate is an error because YAML leaves its meaning
             * open and "last one wins" hides typos.
             */
            const struct tc_conf_pair *first = keyset_find(&ks, n, key->str);

            if (first != NULL) {
                tc_conf_error(ld->c, keyline,
                              "duplicate key '%.*s' (first at line %d)",
                              SHOW_MAX, key->str, first->line);
                dup = 1;
            }
        }
        if (dup) {
            node_free(key);
            node_free(val);
        } else {
            if (n->npairs == cap) {
                cap = cap ? cap * 2 : 4;
                n->pairs = tc_xreallocarray(n->pairs, cap, sizeof(*n->pairs));
            }
            n->pairs[n->npairs].key = key->str;
            n->pairs[n->npairs].line = keyline;
            n->pairs[n->npairs].val = val;
            n->npairs++;
            key->str = NULL;
            node_free(key);
            keyset_add(&ks, n);
        }
        key = val = NULL;
    }
    keyset_free(&ks);
    *out = n;
    return 0;
fail:
    keyset_free(&ks);
    node_free(key);
    node_free(val);
    node_free(n);
    return rc;
}

/* Build the node that starts with ev (owned by the caller). */
static int
parse_node(struct loader *ld, yaml_event_t *ev, int depth,
           struct tc_conf_node **out)
{
    *out = NULL;
    if (depth > TC_CONF_MAX_DEPTH) {
        tc_conf_error(ld->c, mark_line(ev->start_mark),
                      "nesting deeper than %d levels", TC_CONF_MAX_DEPTH);
        return -EINVAL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return parse_scalar(ld, ev, out);
    case YAML_SEQUENCE_START_EVENT:
        return parse_seq(ld, ev, depth, out);
    case YAML_MAPPING_START_EVENT:
        return parse_map(ld, ev, depth, out);
    case YAML_ALIAS_EVENT:
        /* Refused, not expanded: see the comment at the top. */
        refuse_anchor(ld, "alias", '*', ev->data.alias.anchor, ev->start_mark);
        *out = node_new(TC_CONF_SCALAR, mark_line(ev->start_mark));
        (*out)->str = tc_xstrdup("");
        (*out)->null = 1;
        return 0;
    default:
        tc_conf_error(ld->c, mark_line(ev->start_mark),
                      "unexpected YAML event %d", (int)ev->type);
        return -EINVAL;
    }
}

/*
 * The stream: exactly one document whose root is a map. Returns the
 * root (or NULL for an empty stream) in *out.
 */
static int
parse_stream(struct loader *ld, struct tc_conf_node **out)
{
    struct tc_conf_node *root = NULL;
    yaml_event_t ev;
    int rc, docs = 0;

    *out = NULL;
    for (;;) {
        if ((rc = next_event(ld, &ev)) < 0)
            goto fail;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            *out = root;
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                tc_conf_error(ld->c, mark_line(ev.start_mark),
                              "more than one YAML document in the file");
                yaml_event_delete(&ev);
                rc = -EINVAL;
                goto fail;
            }
            break;
        default:
            rc = parse_node(ld, &ev, 1, &root);
            if (rc < 0) {
                yaml_event_delete(&ev);
                goto fail;
            }
            break;
        }
        yaml_event_delete(&ev);
    }
fail:
    node_free(root);
    return rc;
}

static char *
dir_of(const char *abs)
{
    const char *slash = strrchr(abs, '/');

    if (slash == abs)
        return tc_xstrdup("/");
    return tc_xstrndup(abs, (size_t)(slash - abs));
}

static char *
absolute(const char *path)
{
    char cwd[PATH_MAX];

    if (path[0] == '/')
        return tc_xstrdup(path);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    if (strcmp(cwd, "/") == 0)
        return tc_xasprintf("/%s", path);
    return tc_xasprintf("%s/%s", cwd, path);
}

/*
 * Parse len bytes at data into c; on success c->root is set. The parser
 * reads from memory: the file was read whole, within the size cap.
 */
static int
load_buf(struct tc_conf *c, const void *data, size_t len)
{
    struct loader ld = {0};
    struct tc_conf_node *root = NULL;
    int rc;

    if (len > TC_CONF_MAX_BYTES) {
        log_warnx("%s: the file is %zu bytes, over the limit of %d bytes "
                  "for a configuration file",
                  c->file, len, TC_CONF_MAX_BYTES);
        return -EFBIG;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        log_warnx("%s: cannot initialise the YAML parser", c->file);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&ld.parser, data != NULL ? data : "", len);
    ld.c = c;

    rc = parse_stream(&ld, &root);
    if (rc == 0 && root == NULL) {
        tc_conf_error(c, 1, "the file is empty");
        rc = -EINVAL;
    } else if (rc == 0 && root->kind == TC_CONF_SCALAR && root->null) {
        tc_conf_error(c, root->line, "the file holds no settings");
        rc = -EINVAL;
    } else if (rc == 0 && root->kind != TC_CONF_MAP) {
        tc_conf_error(c, root->line, "the top level must be a map of keys");
        rc = -EINVAL;
    }
    if (rc == 0 && c->nerrors > 0)
        rc = -EINVAL;
    if (rc == 0) {
        c->root = root;
        root = NULL;
    }
    node_free(root);
    yaml_parser_delete(&ld.parser);
    return rc;
}

/*
 * Read the whole file at fd into *data (OUT, caller frees), *len bytes,
 * refusing more than TC_CONF_MAX_BYTES: a pipe or /dev/zero has no
 * size to check beforehand.
 */
static int
read_capped(const char *path, int fd, char **data, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = NULL;
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size > TC_CONF_MAX_BYTES) {
        log_warnx("%s: the file is %lld bytes, over the limit of %d bytes "
                  "for a configuration file",
                  path, (long long)st.st_size, TC_CONF_MAX_BYTES);
        return -EFBIG;
    }
    buf = tc_xmalloc(cap);
    for (;;) {
        ssize_t got;

        if (n == cap) {
            if (cap > TC_CONF_MAX_BYTES) {
                log_warnx("%s: the file is over the limit of %d bytes for "
                          "a configuration file",
                          path, TC_CONF_MAX_BYTES);
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            buf = tc_xrealloc(buf, cap);
        }
        got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;

            log_warn("%s", path);
            free(buf);
            return -e;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > TC_CONF_MAX_BYTES) {
        log_warnx("%s: the file is over the limit of %d bytes for a "
                  "configuration file",
                  path, TC_CONF_MAX_BYTES);
        free(buf);
        return -EFBIG;
    }
    *data = buf;
    *len = n;
    return 0;
}

int
tc_conf_load(const char *path, struct tc_conf **out)
{
    struct tc_conf *c = tc_xcalloc(1, sizeof(*c));
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    int rc, fd = -1;

    *out = NULL;
    c->file = tc_xstrdup(path);
    if ((c->path = absolute(path)) == NULL) {
        rc = -errno;
        log_warn("%s: cannot resolve the working directory", path);
        goto out;
    }
    c->dir = dir_of(c->path);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        log_warn("%s", path);
        goto out;
    }
    /* open accepts a directory; reading it would fail obscurely. */
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        log_warnx("%s: is a directory", path);
        goto out;
    }
    if ((rc = read_capped(path, fd, &data, &len)) < 0)
        goto out;
    if ((rc = load_buf(c, data, len)) < 0)
        goto out;
    *out = c;
    c = NULL;
out:
    free(data);
    if (fd >= 0)
        close(fd);
    tc_conf_free(c);
    return rc;
}

int
tc_conf_load_mem(const char *name, const void *data, size_t len,
                 struct tc_conf **out)
{
    struct tc_conf *c = tc_xcalloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    c->file = tc_xstrdup(name);
    if ((c->path = absolute(name)) == NULL) {
        rc = -errno;
        log_warn("%s: cannot resolve the working directory", name);
        goto out;
    }
    c->dir = dir_of(c->path);
    if ((rc = load_buf(c, data, len)) < 0)
        goto out;
    *out = c;
    c = NULL;
out:
    tc_conf_free(c);
    return rc;
}

const struct tc_conf_node *
tc_conf_find(const struct tc_conf_node *map, const char *dotted)
{
    const char *s = dotted;

    while (map != NULL) {
        const char *dot = strchr(s, '.');
        size_t len = dot ? (size_t)(dot - s) : strlen(s);
        const struct tc_conf_node *next = NULL;

        if (map->kind != TC_CONF_MAP)
            return NULL;
        for (size_t i = 0; i < map->npairs; i++) {
            if (strlen(map->pairs[i].key) == len &&
                memcmp(map->pairs[i].key, s, len) == 0) {
                next = map->pairs[i].val;
                break;
            }
        }
        if (dot == NULL)
            return next;
        map = next;
        s = dot + 1;
    }
    return NULL;
}

void
tc_conf_find_dups(const char *const *names, size_t n, size_t *first)
{
    /* First occurrences, by name: ent[i] is names[i]'s. */
    struct keyent *ent = tc_xcalloc(n ? n : 1, sizeof(*ent));
    struct tc_htab tab;

    tc_htab_init(&tab);
    for (size_t i = 0; i < n; i++) {
        struct tc_hnode *x;
        uint64_t h;

        first[i] = SIZE_MAX;
        if (names[i] == NULL)
            continue;
        h = tc_hash64(names[i], strlen(names[i]));
        for (x = tc_htab_first(&tab, h); x != NULL; x = tc_htab_next(x, h))
            if (strcmp(names[TC_CONTAINER_OF(x, struct keyent, hnode)->idx],
                       names[i]) == 0)
                break;
        if (x != NULL) {
            first[i] = TC_CONTAINER_OF(x, struct keyent, hnode)->idx;
        } else {
            ent[i].idx = i;
            tc_htab_insert(&tab, &ent[i].hnode, h);
        }
    }
    tc_htab_free(&tab);
    free(ent);
}

char *
tc_conf_path(const struct tc_conf *c, const char *p)
{
    if (p[0] == '/')
        return tc_xstrdup(p);
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    if (strcmp(c->dir, "/") == 0)
        return tc_xasprintf("/%s", p);
    return tc_xasprintf("%s/%s", c->dir, p);
}

/* Leading decimal digits into *v; the rest of the string in *rest. */
static int
parse_digits(const char *s, uint64_t *v, const char **rest)
{
    uint64_t n = 0;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -EINVAL;
        n = n * 10 + d;
    }
    *v = n;
    *rest = s;
    return 0;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static int
parse_with_units(const char *s, const struct unit *units, int unit_required,
                 uint64_t *out)
{
    const char *rest;
    uint64_t n;

    if (parse_digits(s, &n, &rest) < 0)
        return -EINVAL;
    /* One optional space between number and unit: "64 MiB". */
    if (*rest == ' ' && rest[1] != '\0')
        rest++;
    if (*rest == '\0') {
        if (unit_required && n != 0)
            return -EINVAL;
        *out = n;
        return 0;
    }
    for (const struct unit *u = units; u->name != NULL; u++) {
        if (strcmp(rest, u->name) == 0) {
            if (n > UINT64_MAX / u->mult)
                return -EINVAL;
            *out = n * u->mult;
            return 0;
        }
    }
    return -EINVAL;
}

int
tc_conf_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"B", 1},
        {"KB", 1000ULL},
        {"kB", 1000ULL},
        {"MB", 1000ULL * 1000},
        {"GB", 1000ULL * 1000 * 1000},
        {"TB", 1000ULL * 1000 * 1000 * 1000},
        {"KiB", 1ULL << 10},
        {"MiB", 1ULL << 20},
        {"GiB", 1ULL << 30},
        {"TiB", 1ULL << 40},
        {NULL, 0},
    };
    return parse_with_units(s, units, 0, bytes);
}

int
tc_conf_parse_duration(const char *s, uint64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1},
        {"s", 1000ULL},
        {"m", 60ULL * 1000},
        {"h", 3600ULL * 1000},
        {"d", 86400ULL * 1000},
        {NULL, 0},
    };
    return parse_with_units(s, units, 1, ms);
}

static int
parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};

    for (int i = 0; yes[i] != NULL; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- schema walk ---- */

struct walk {
    struct tc_conf *c; /* borrowed */
};

static char *
key_path(const char *prefix, const char *key)
{
    if (prefix == NULL || prefix[0] == '\0')
        return tc_xstrdup(key);
    return tc_xasprintf("%s.%s", prefix, key);
}

static char *
valid_keys(const struct tc_conf_field *schema)
{
    size_t len = 1;
    char *s;

    for (const struct tc_conf_field *f = schema; f->key != NULL; f++)
        len += strlen(f->key) + 2;
    s = tc_xmalloc(len);
    s[0] = '\0';
    for (const struct tc_conf_field *f = schema; f->key != NULL; f++) {
        if (f != schema)
            strcat(s, ", ");
        strcat(s, f->key);
    }
    return s;
}

static char *
enum_names(const struct tc_conf_enum *e)
{
    size_t len = 1;
    char *s;

    for (const struct tc_conf_enum *p = e; p->name != NULL; p++)
        len += strlen(p->name) + 2;
    s = tc_xmalloc(len);
    s[0] = '\0';
    for (const struct tc_conf_enum *p = e; p->name != NULL; p++) {
        if (p != e)
            strcat(s, ", ");
        strcat(s, p->name);
    }
    return s;
}

static const char *
kind_name(enum tc_conf_kind k)
{
    switch (k) {
    case TC_CONF_SCALAR:
        return "a single value";
    case TC_CONF_MAP:
        return "a map";
    case TC_CONF_SEQ:
        return "a list";
    }
    return "?";
}

static void
store_uint(void *dst, size_t size, uint64_t v)
{
    if (size == sizeof(uint32_t)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(dst, &v32, sizeof(v32));
    } else if (size == sizeof(uint64_t)) {
        memcpy(dst, &v, sizeof(v));
    } else {
        fatalx("conf: numeric field of %zu bytes", size);
    }
}

static void
store_str(void *dst, char *s)
{
    char *old;

    memcpy(&old, dst, sizeof(old));
    free(old);
    memcpy(dst, &s, sizeof(s));
}

/*
 * Convert text into the field at dst. line is 0 for a default from the
 * schema, which must be valid: a bad default is a programming error.
 */
static void
set_scalar(struct walk *w, const struct tc_conf_field *f, const char *path,
           const char *text, int line, void *dst)
{
    uint64_t v = 0, max;
    const char *what = NULL;
    char *names = NULL;
    int rc = 0;

    switch (f->type) {
    case TC_CONF_T_STRING: {
        /* For strings, min and max bound the length in bytes. */
        size_t len = strlen(text);

        if (len < f->min || (f->max != 0 && len > f->max)) {
            if (line == 0)
                fatalx("conf: bad default '%s' for %s", text, path);
            if (len == 0)
                tc_conf_error(w->c, line, "%s: must not be empty", path);
            else
                tc_conf_error(w->c, line,
                              "%s: '%.*s' must be %" PRIu64 " to %" PRIu64
                              " bytes long",
                              path, SHOW_MAX, text, f->min,
                              f->max ? f->max : (uint64_t)SIZE_MAX);
            return;
        }
        store_str(dst, tc_xstrdup(text));
        return;
    }
    case TC_CONF_T_PATH:
        if (text[0] == '\0') {
            rc = -EINVAL;
            what = "a file path";
            break;
        }
        store_str(dst, tc_conf_path(w->c, text));
        return;
    case TC_CONF_T_HOSTPORT: {
        char *host;
        uint16_t port;

        if ((rc = tc_hostport_split(text, &host, &port)) < 0) {
            what = "host:port (e.g. 127.0.0.1:7400 or [::1]:7400)";
            break;
        }
        free(host);
        store_str(dst, tc_xstrdup(text));
        return;
    }
    case TC_CONF_T_SIZE:
        rc = tc_conf_parse_size(text, &v);
        what = "a size (e.g. 64MiB)";
        break;
    case TC_CONF_T_DURATION:
        rc = tc_conf_parse_duration(text, &v);
        what = "a duration (e.g. 250ms, 5s, 2m, 1h, 7d)";
        break;
    case TC_CONF_T_UINT: {
        const char *rest;
        rc = parse_digits(text, &v, &rest);
        if (rc == 0 && *rest != '\0')
            rc = -EINVAL;
        what = "a non-negative integer";
        break;
    }
    case TC_CONF_T_BOOL: {
        int b = 0;
        if (f->size != sizeof(int))
            fatalx("conf: %s: bool field is not an int", path);
        if ((rc = parse_bool(text, &b)) == 0)
            memcpy(dst, &b, sizeof(b));
        what = "a boolean (true or false)";
        break;
    }
    case TC_CONF_T_ENUM:
        if (f->size != sizeof(int))
            fatalx("conf: %s: enum field is not int-sized", path);
        rc = -EINVAL;
        for (const struct tc_conf_enum *e = f->enums; e->name != NULL; e++) {
            if (strcmp(text, e->name) == 0) {
                memcpy(dst, &e->value, sizeof(e->value));
                rc = 0;
                break;
            }
        }
        if (rc < 0) {
            names = enum_names(f->enums);
            what = names;
        }
        break;
    case TC_CONF_T_CUSTOM:
        rc = f->parse(text, dst);
        what = f->expect;
        break;
    default:
        fatalx("conf: %s: not a scalar type", path);
    }
    if (rc < 0) {
        if (line == 0)
            fatalx("conf: bad default '%s' for %s", text, path);
        if (f->type == TC_CONF_T_ENUM)
            tc_conf_error(w->c, line, "%s: '%.*s' is not one of %s", path,
                          SHOW_MAX, text, what);
        else
            tc_conf_error(w->c, line, "%s: '%.*s' is not %s", path, SHOW_MAX,
                          text, what);
        free(names);
        return;
    }
    free(names);

    if (f->type != TC_CONF_T_SIZE && f->type != TC_CONF_T_DURATION &&
        f->type != TC_CONF_T_UINT)
        return;
    max = f->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
    if (f->max != 0 && f->max < max)
        max = f->max;
    if (v < f->min || v > max) {
        if (line == 0)
            fatalx("conf: default '%s' for %s out of bounds", text, path);
        if (f->type == TC_CONF_T_DURATION)
            tc_conf_error(w->c, line,
                          "%s: '%.*s' is out of range (%" PRIu64
                          "ms to %" PRIu64 "ms)",
                          path, SHOW_MAX, text, f->min, max);
        else if (f->type == TC_CONF_T_SIZE)
            tc_conf_error(w->c, line,
                          "%s: '%.*s' is out of range (%" PRIu64 " to %" PRIu64
                          " bytes)",
                          path, SHOW_MAX, text, f->min, max);
        else
            tc_conf_error(w->c, line,
                          "%s: '%.*s' is out of range (%" PRIu64 " to %" PRIu64
                          ")",
                          path, SHOW_MAX, text, f->min, max);
        return;
    }
    store_uint(dst, f->size, v);
}

static void walk_map(struct walk *w, const struct tc_conf_field *schema,
                     const struct tc_conf_node *map, int line,
                     const char *prefix, void *base);

static void
walk_seq(struct walk *w, const struct tc_conf_field *f,
         const struct tc_conf_node *seq, const char *path, void *base)
{
    char *arr;
    size_t n = seq ? seq->nitems : 0;

    if (n == 0)
        return;
    arr = tc_xcalloc(n, f->elem_size);
    memcpy((char *)base + f->offset, &arr, sizeof(arr));
    memcpy((char *)base + f->count_offset, &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        const struct tc_conf_node *item = seq->items[i];
        char *elem = arr + i * f->elem_size;
        char *ipath = tc_xasprintf("%s[%zu]", path, i);

        if (f->has_line)
            memcpy(elem + f->line_offset, &item->line, sizeof(int));
        if (item->kind != TC_CONF_MAP)
            tc_conf_error(w->c, item->line, "%s: expected a map, got %s", ipath,
                          kind_name(item->kind));
        else
            walk_map(w, f->sub, item, item->line, ipath, elem);
        free(ipath);
    }
}

static void
walk_strlist(struct walk *w, const struct tc_conf_field *f,
             const struct tc_conf_node *node, const char *path, void *base)
{
    const struct tc_conf_node *const *items = &node;
    size_t n = 1;
    char **arr;

    if (node->kind == TC_CONF_SEQ) {
        items = (const struct tc_conf_node *const *)node->items;
        n = node->nitems;
    }
    if (n == 0)
        return;
    /* One more, left NULL: the list can be handed over as an argv. */
    arr = tc_xcalloc(n + 1, sizeof(*arr));
    memcpy((char *)base + f->offset, &arr, sizeof(arr));
    memcpy((char *)base + f->count_offset, &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind != TC_CONF_SCALAR || items[i]->null) {
            tc_conf_error(w->c, items[i]->line,
                          "%s[%zu]: expected a string, got %s", path, i,
                          items[i]->null ? "nothing"
                                         : kind_name(items[i]->kind));
            arr[i] = tc_xstrdup("");
            continue;
        }
        arr[i] = tc_xstrdup(items[i]->str);
    }
}

static void
walk_strmap(struct walk *w, const struct tc_conf_field *f,
            const struct tc_conf_node *node, const char *path, void *base)
{
    struct tc_conf_kv *arr;
    size_t n = node->npairs;

    if (n == 0)
        return;
    arr = tc_xcalloc(n, sizeof(*arr));
    memcpy((char *)base + f->offset, &arr, sizeof(arr));
    memcpy((char *)base + f->count_offset, &n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        const struct tc_conf_node *v = node->pairs[i].val;

        arr[i].key = tc_xstrdup(node->pairs[i].key);
        if (v->kind != TC_CONF_SCALAR) {
            tc_conf_error(w->c, node->pairs[i].line,
                          "%s.%s: expected a string, got %s", path,
                          node->pairs[i].key, kind_name(v->kind));
            arr[i].val = tc_xstrdup("");
            continue;
        }
        arr[i].val = tc_xstrdup(v->null ? "" : v->str);
    }
}

/*
 * Apply one field; node NULL means absent. line: the key's line, or the
 * enclosing map's when the key is absent (for "missing" errors). Kind
 * mismatches name the key's line: a block list starts a line below it.
 */
static void
walk_field(struct walk *w, const struct tc_conf_field *f,
           const struct tc_conf_node *node, int line, const char *prefix,
           void *base)
{
    char *path = key_path(prefix, f->key);
    void *dst = (char *)base + f->offset;

    /* An empty value ("key:" or "key: null") counts as absent. */
    if (node != NULL && node->kind == TC_CONF_SCALAR && node->null)
        node = NULL;
    if (node == NULL && f->required) {
        tc_conf_error(w->c, line, "missing required key '%s'", path);
        goto out;
    }

    switch (f->type) {
    case TC_CONF_T_MAP:
        if (node != NULL && node->kind != TC_CONF_MAP) {
            tc_conf_error(w->c, line, "%s: expected a map, got %s", path,
                          kind_name(node->kind));
            goto out;
        }
        if (node == NULL && f->optional)
            goto out;
        /* No schema: a free-form map, read by its check callback. */
        if (f->sub != NULL)
            walk_map(w, f->sub, node, line, path, dst);
        break;
    case TC_CONF_T_SEQ:
        if (node != NULL && node->kind != TC_CONF_SEQ) {
            tc_conf_error(w->c, line, "%s: expected a list, got %s", path,
                          kind_name(node->kind));
            goto out;
        }
        walk_seq(w, f, node, path, base);
        break;
    case TC_CONF_T_STRLIST:
        if (node != NULL && node->kind == TC_CONF_MAP) {
            tc_conf_error(w->c, line, "%s: expected a list, got %s", path,
                          kind_name(node->kind));
            goto out;
        }
        if (node != NULL)
            walk_strlist(w, f, node, path, base);
        break;
    case TC_CONF_T_STRMAP:
        if (node != NULL && node->kind != TC_CONF_MAP) {
            tc_conf_error(w->c, line, "%s: expected a map, got %s", path,
                          kind_name(node->kind));
            goto out;
        }
        if (node != NULL)
            walk_strmap(w, f, node, path, base);
        break;
    default:
        if (node == NULL) {
            if (f->def != NULL)
                set_scalar(w, f, path, f->def, 0, dst);
            goto out;
        }
        if (node->kind != TC_CONF_SCALAR) {
            tc_conf_error(w->c, line, "%s: expected %s, got %s", path,
                          kind_name(TC_CONF_SCALAR), kind_name(node->kind));
            goto out;
        }
        set_scalar(w, f, path, node->str, node->line, dst);
        goto out;
    }
    if (f->check != NULL && node != NULL)
        f->check(w->c, node, base);
out:
    free(path);
}

static void
walk_map(struct walk *w, const struct tc_conf_field *schema,
         const struct tc_conf_node *map, int line, const char *prefix,
         void *base)
{
    /* Unknown keys first, in file order, so messages follow the file. */
    for (size_t i = 0; map != NULL && i < map->npairs; i++) {
        const struct tc_conf_field *f;

        for (f = schema; f->key != NULL; f++)
            if (strcmp(f->key, map->pairs[i].key) == 0)
                break;
        if (f->key == NULL) {
            char *valid = valid_keys(schema);
            tc_conf_error(w->c, map->pairs[i].line,
                          "unknown key '%.*s' in %s (valid: %s)", SHOW_MAX,
                          map->pairs[i].key, prefix[0] ? prefix : "top level",
                          valid);
            free(valid);
        }
    }
    for (const struct tc_conf_field *f = schema; f->key != NULL; f++) {
        const struct tc_conf_node *val = NULL;
        int vline = line;

        for (size_t i = 0; map != NULL && i < map->npairs; i++) {
            if (strcmp(f->key, map->pairs[i].key) == 0) {
                val = map->pairs[i].val;
                vline = map->pairs[i].line;
                break;
            }
        }
        walk_field(w, f, val, vline, prefix, base);
    }
}

int
tc_conf_apply(struct tc_conf *c, const struct tc_conf_field *schema, void *base)
{
    struct walk w = {.c = c};
    int line = c->root->npairs > 0 ? c->root->pairs[0].line : c->root->line;

    walk_map(&w, schema, c->root, line, "", base);
    return c->nerrors > 0 ? -EINVAL : 0;
}

void
tc_conf_release(const struct tc_conf_field *schema, void *base)
{
    for (const struct tc_conf_field *f = schema; f->key != NULL; f++) {
        char *p = (char *)base + f->offset;

        switch (f->type) {
        case TC_CONF_T_STRING:
        case TC_CONF_T_PATH:
        case TC_CONF_T_HOSTPORT:
            store_str(p, NULL);
            break;
        case TC_CONF_T_MAP:
            if (f->sub != NULL)
                tc_conf_release(f->sub, p);
            break;
        case TC_CONF_T_SEQ: {
            char *arr;
            size_t n;

            memcpy(&arr, p, sizeof(arr));
            memcpy(&n, (char *)base + f->count_offset, sizeof(n));
            for (size_t i = 0; i < n; i++)
                tc_conf_release(f->sub, arr + i * f->elem_size);
            free(arr);
            arr = NULL;
            n = 0;
            memcpy(p, &arr, sizeof(arr));
            memcpy((char *)base + f->count_offset, &n, sizeof(n));
            break;
        }
        case TC_CONF_T_STRLIST:
        case TC_CONF_T_STRMAP: {
            char *arr;
            size_t n;

            memcpy(&arr, p, sizeof(arr));
            memcpy(&n, (char *)base + f->count_offset, sizeof(n));
            for (size_t i = 0; arr != NULL && i < n; i++) {
                if (f->type == TC_CONF_T_STRLIST) {
                    free(((char **)(void *)arr)[i]);
                } else {
                    struct tc_conf_kv *kv = (struct tc_conf_kv *)(void *)arr;
                    free(kv[i].key);
                    free(kv[i].val);
                }
            }
            free(arr);
            arr = NULL;
            n = 0;
            memcpy(p, &arr, sizeof(arr));
            memcpy((char *)base + f->count_offset, &n, sizeof(n));
            break;
        }
        default:
            break;
        }
    }
}
