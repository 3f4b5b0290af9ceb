/*
 * actions: the allowlist's schema and load-time checks, and the pure
 * request check actions_prepare; see actions.h.
 *
 * Values are checked twice over: first what no parameter of any string
 * type may hold (control characters, shell metacharacters, a leading
 * '-', "..", over-long), then their type. The first catches what a type
 * check written too loosely would let through; the reason names the
 * rule that refused, so a log says "shell metacharacter ';'" and not
 * only "not a hostname".
 */
#include "actions.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.h"
#include "util.h"

#define AD(member) TC_CONF_AT(struct action_def, member)

/* Characters a shell (or a careless script) gives a meaning to. */
static const char shell_meta[] = ";&|`$<>()[]{}*?!~#'\"\\ \t\n=%^,";

static void actions_params_check(struct tc_conf *c,
                                 const struct tc_conf_node *node, void *base);

const struct tc_conf_field actions_fields[] = {
    {.key = "name",
     .type = TC_CONF_T_STRING,
     AD(name),
     .required = 1,
     .min = 1,
     .max = ACTIONS_NAME_MAX,
     .help = "action name, unique; what a hint names"},
    {.key = "exec",
     .type = TC_CONF_T_STRING,
     AD(exec),
     .required = 1,
     .min = 2,
     .max = 4096,
     .help = "absolute path of the executable (no shell, no PATH search)"},
    {.key = "args",
     .type = TC_CONF_T_STRLIST,
     AD(args),
     .count_offset = offsetof(struct action_def, nargs),
     .help = "argv template; {param} is replaced by a parameter's value"},
    {.key = "params",
     .type = TC_CONF_T_MAP,
     .sub = NULL,
     .check = actions_params_check,
     .help = "typed parameters: int, enum, hostname, path"},
    {.key = "timeout",
     .type = TC_CONF_T_DURATION,
     AD(timeout_ms),
     .def = "30s",
     .min = 1,
     .max = ACTIONS_TIMEOUT_MAX_MS,
     .help = "SIGTERM to the process group after this, SIGKILL 5s later"},
    {.key = "user",
     .type = TC_CONF_T_STRING,
     AD(user),
     .min = 1,
     .max = 64,
     .help = "user to run as (default: the agent's own)"},
    {.key = "auto",
     .type = TC_CONF_T_BOOL,
     AD(auto_run),
     .def = "false",
     .help = "run when a signed hint naming it arrives"},
    {0},
};

const char *
actions_ptype_name(enum action_ptype t)
{
    switch (t) {
    case ACTION_P_INT:
        return "int";
    case ACTION_P_ENUM:
        return "enum";
    case ACTION_P_HOSTNAME:
        return "hostname";
    case ACTION_P_PATH:
        return "path";
    }
    return "?";
}

static int
ident_ok(const char *s)
{
    if (s[0] == '\0' || strlen(s) > ACTIONS_NAME_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
          s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

static int
action_name_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '-' || s[0] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* A decimal integer, optional '-', digits only: 0 or -EINVAL/-ERANGE. */
static int
parse_i64(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '-')
        p++;
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -ERANGE;
    *out = v;
    return 0;
}

/*
 * Lexical canonical form of an absolute path into out: "//" and "/./"
 * collapsed, no trailing '/' (but "/"). Refuses "..": a path that climbs
 * is never what an allowlist means, and resolving it lexically would
 * ignore symlinks. 0 or -EINVAL.
 */
static int
path_canon(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = in;

    if (in[0] != '/' || cap < 2)
        return -EINVAL;
    while (*p != '\0') {
        const char *seg;
        size_t n;

        while (*p == '/')
            p++;
        seg = p;
        while (*p != '\0' && *p != '/')
            p++;
        n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return -EINVAL;
        if (o + 1 + n + 1 > cap)
            return -ENAMETOOLONG;
        out[o++] = '/';
        memcpy(out + o, seg, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

/* The map value of pair key in map m, or NULL. */
static const struct tc_conf_pair *
pair_of(const struct tc_conf_node *m, const char *key)
{
    for (size_t i = 0; m != NULL && i < m->npairs; i++)
        if (strcmp(m->pairs[i].key, key) == 0)
            return &m->pairs[i];
    return NULL;
}

static const char *
scalar_of(struct tc_conf *c, const struct tc_conf_pair *p, const char *what)
{
    if (p == NULL)
        return NULL;
    if (p->val->kind != TC_CONF_SCALAR || p->val->null) {
        tc_conf_error(c, p->line, "%s: expected a value", what);
        return NULL;
    }
    return p->val->str;
}

/* One parameter declaration: {type: ..., min/max | values | prefix}. */
static void
param_parse(struct tc_conf *c, const struct action_def *a,
            const struct tc_conf_pair *pp, struct action_param *p)
{
    static const char *const keys[] = {"type",   "min",    "max",
                                       "values", "prefix", NULL};
    const struct tc_conf_node *m = pp->val;
    const struct tc_conf_pair *t, *k;
    char *what = tc_xasprintf("action '%s': params.%s", a->name ? a->name : "?",
                              pp->key);
    const char *s;

    p->name = tc_xstrdup(pp->key);
    p->line = pp->line;
    if (!ident_ok(pp->key))
        tc_conf_error(c, pp->line,
                      "%s: a parameter name is letters, digits and '_', "
                      "not starting with a digit",
                      what);
    if (m->kind != TC_CONF_MAP) {
        tc_conf_error(c, pp->line, "%s: expected a map {type: ...}", what);
        goto out;
    }
    for (size_t i = 0; i < m->npairs; i++) {
        size_t j;

        for (j = 0; keys[j] != NULL; j++)
            if (strcmp(keys[j], m->pairs[i].key) == 0)
                break;
        if (keys[j] == NULL)
            tc_conf_error(c, m->pairs[i].line,
                          "%s: unknown key '%s' (valid: type, min, max, "
                          "values, prefix)",
                          what, m->pairs[i].key);
    }
    if ((t = pair_of(m, "type")) == NULL) {
        tc_conf_error(c, pp->line, "%s: missing required key 'type'", what);
        goto out;
    }
    if ((s = scalar_of(c, t, what)) == NULL)
        goto out;
    if (strcmp(s, "int") == 0) {
        p->type = ACTION_P_INT;
    } else if (strcmp(s, "enum") == 0) {
        p->type = ACTION_P_ENUM;
    } else if (strcmp(s, "hostname") == 0) {
        p->type = ACTION_P_HOSTNAME;
    } else if (strcmp(s, "path") == 0) {
        p->type = ACTION_P_PATH;
    } else {
        tc_conf_error(c, t->line,
                      "%s: unknown type '%s' (valid: int, enum, hostname, "
                      "path)",
                      what, s);
        goto out;
    }
    /* Keys that belong to another type are mistakes, not no-ops. */
    if (p->type != ACTION_P_INT &&
        ((k = pair_of(m, "min")) != NULL || (k = pair_of(m, "max")) != NULL))
        tc_conf_error(c, k->line, "%s: '%s' is only for type int", what,
                      k->key);
    if (p->type != ACTION_P_ENUM && (k = pair_of(m, "values")) != NULL)
        tc_conf_error(c, k->line, "%s: 'values' is only for type enum", what);
    if (p->type != ACTION_P_PATH && (k = pair_of(m, "prefix")) != NULL)
        tc_conf_error(c, k->line, "%s: 'prefix' is only for type path", what);

    switch (p->type) {
    case ACTION_P_INT: {
        const struct tc_conf_pair *lo = pair_of(m, "min"),
                                  *hi = pair_of(m, "max");
        const char *ls = scalar_of(c, lo, what), *hs = scalar_of(c, hi, what);

        if (lo == NULL || hi == NULL) {
            tc_conf_error(c, pp->line, "%s: type int needs min and max", what);
            break;
        }
        if (ls == NULL || hs == NULL)
            break;
        if (parse_i64(ls, &p->min) < 0)
            tc_conf_error(c, lo->line, "%s: min '%s' is not an integer", what,
                          ls);
        else if (parse_i64(hs, &p->max) < 0)
            tc_conf_error(c, hi->line, "%s: max '%s' is not an integer", what,
                          hs);
        else if (p->min > p->max)
            tc_conf_error(c, lo->line, "%s: min %lld is above max %lld", what,
                          (long long)p->min, (long long)p->max);
        break;
    }
    case ACTION_P_ENUM: {
        const struct tc_conf_pair *v = pair_of(m, "values");

        if (v == NULL || v->val->kind != TC_CONF_SEQ || v->val->nitems == 0) {
            tc_conf_error(c, v ? v->line : pp->line,
                          "%s: type enum needs a non-empty list 'values'",
                          what);
            break;
        }
        p->values = tc_xcalloc(v->val->nitems + 1, sizeof(*p->values));
        for (size_t i = 0; i < v->val->nitems; i++) {
            const struct tc_conf_node *it = v->val->items[i];

            if (it->kind != TC_CONF_SCALAR || it->null || it->str[0] == '\0') {
                tc_conf_error(c, it->line,
                              "%s: values[%zu] must be a non-empty string",
                              what, i);
                continue;
            }
            p->values[p->nvalues++] = tc_xstrdup(it->str);
        }
        break;
    }
    case ACTION_P_HOSTNAME:
        break;
    case ACTION_P_PATH: {
        const struct tc_conf_pair *pr = pair_of(m, "prefix");
        const char *ps = scalar_of(c, pr, what);
        char canon[ACTIONS_VALUE_MAX];

        if (pr == NULL) {
            tc_conf_error(c, pp->line, "%s: type path needs 'prefix'", what);
            break;
        }
        if (ps == NULL)
            break;
        if (path_canon(ps, canon, sizeof(canon)) < 0) {
            tc_conf_error(c, pr->line,
                          "%s: prefix '%s' must be an absolute directory "
                          "without '..'",
                          what, ps);
            break;
        }
        p->prefix = tc_xstrdup(canon);
        break;
    }
    }
out:
    free(what);
}

static void
actions_params_check(struct tc_conf *c, const struct tc_conf_node *node,
                     void *base)
{
    struct action_def *a = base;

    if (node->npairs == 0)
        return;
    a->params = tc_xcalloc(node->npairs, sizeof(*a->params));
    a->nparams = node->npairs;
    for (size_t i = 0; i < node->npairs; i++)
        param_parse(c, a, &node->pairs[i], &a->params[i]);
}

void
actions_params_free(struct action_def *a)
{
    for (size_t i = 0; i < a->nparams; i++) {
        struct action_param *p = &a->params[i];

        free(p->name);
        for (size_t j = 0; j < p->nvalues; j++)
            free(p->values[j]);
        free(p->values);
        free(p->prefix);
    }
    free(a->params);
    a->params = NULL;
    a->nparams = 0;
}

static const struct action_param *
param_find(const struct action_def *a, const char *name, size_t n)
{
    for (size_t i = 0; i < a->nparams; i++)
        if (a->params[i].name != NULL && strlen(a->params[i].name) == n &&
            strncmp(a->params[i].name, name, n) == 0)
            return &a->params[i];
    return NULL;
}

/*
 * Walk template t: literal text and {name} placeholders ("{{" and "}}"
 * are literal braces). For each placeholder cb(arg, name, len); returns
 * 0, or -EINVAL with a reason in err for an unclosed or empty one.
 */
static int
template_walk(const char *t, int (*cb)(void *arg, const char *name, size_t n),
              void *arg, char *err, size_t errlen)
{
    for (const char *p = t; *p != '\0'; p++) {
        const char *end;

        if (*p == '}') {
            if (p[1] != '}') {
                snprintf(err, errlen, "a lone '}' (write '}}' for a brace)");
                return -EINVAL;
            }
            p++;
            continue;
        }
        if (*p != '{')
            continue;
        if (p[1] == '{') {
            p++;
            continue;
        }
        if ((end = strchr(p, '}')) == NULL || end == p + 1) {
            snprintf(err, errlen,
                     "'{' opens no {param} (write '{{' for a brace)");
            return -EINVAL;
        }
        if (cb(arg, p + 1, (size_t)(end - p - 1)) < 0) {
            snprintf(err, errlen,
                     "placeholder {%.*s} is not a declared "
                     "parameter",
                     (int)(end - p - 1) > 64 ? 64 : (int)(end - p - 1), p + 1);
            return -EINVAL;
        }
        p = end;
    }
    return 0;
}

struct use_ctx {
    const struct action_def *a;
    char *used; /* per parameter: seen in the template */
};

static int
note_use(void *arg, const char *name, size_t n)
{
    struct use_ctx *u = arg;
    const struct action_param *p = param_find(u->a, name, n);

    if (p == NULL)
        return -EINVAL;
    u->used[p - u->a->params] = 1;
    return 0;
}

static const struct tc_conf_node *
item_key(const struct tc_conf_node *seq, size_t i, const char *key)
{
    if (seq == NULL || seq->kind != TC_CONF_SEQ || i >= seq->nitems ||
        seq->items[i]->kind != TC_CONF_MAP)
        return NULL;
    return tc_conf_find(seq->items[i], key);
}

static int
key_line(const struct tc_conf_node *seq, size_t i, const char *key, int def)
{
    const struct tc_conf_node *n = item_key(seq, i, key);

    return n != NULL ? n->line : def;
}

/* One action's cross-field checks. */
static void
action_check(struct tc_conf *c, const struct tc_conf_node *seq, size_t i,
             struct action_def *a)
{
    const char *nm = a->name != NULL ? a->name : "?";
    struct stat st;
    char err[256];

    if (a->name != NULL && !action_name_ok(a->name))
        tc_conf_error(c, key_line(seq, i, "name", a->line),
                      "actions[%zu]: name '%s': letters, digits, '.', '_' "
                      "and '-', not starting with '-' or '.'",
                      i, a->name);
    if (a->exec != NULL) {
        int line = key_line(seq, i, "exec", a->line);

        if (a->exec[0] != '/')
            tc_conf_error(c, line,
                          "action '%s': exec '%s' must be an absolute path "
                          "(no shell, no PATH search)",
                          nm, a->exec);
        else if (stat(a->exec, &st) < 0)
            tc_conf_error(c, line, "action '%s': exec '%s': %s", nm, a->exec,
                          strerror(errno));
        else if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
            tc_conf_error(c, line,
                          "action '%s': exec '%s' is not an executable "
                          "file",
                          nm, a->exec);
    }
    if (a->user != NULL && getpwnam(a->user) == NULL)
        tc_conf_error(c, key_line(seq, i, "user", a->line),
                      "action '%s': unknown user '%s'", nm, a->user);
    if (a->nargs > 0) {
        struct use_ctx u = {.a = a, .used = tc_xcalloc(a->nparams + 1, 1)};
        int line = key_line(seq, i, "args", a->line);

        for (size_t k = 0; k < a->nargs; k++)
            if (template_walk(a->args[k], note_use, &u, err, sizeof(err)) < 0)
                tc_conf_error(c, line, "action '%s': args[%zu] '%s': %s", nm, k,
                              a->args[k], err);
        for (size_t k = 0; k < a->nparams; k++)
            if (!u.used[k] && a->params[k].name != NULL)
                tc_conf_error(c, a->params[k].line,
                              "action '%s': parameter '%s' is declared but "
                              "not used in args",
                              nm, a->params[k].name);
        free(u.used);
    } else {
        for (size_t k = 0; k < a->nparams; k++)
            tc_conf_error(c, a->params[k].line,
                          "action '%s': parameter '%s' is declared but not "
                          "used in args",
                          nm, a->params[k].name);
    }
}

void
actions_list_check(struct tc_conf *c, const struct tc_conf_node *seq,
                   struct action_list *l)
{
    const char **names = tc_xcalloc(l->n + 1, sizeof(*names));
    size_t *first = tc_xcalloc(l->n + 1, sizeof(*first));

    for (size_t i = 0; i < l->n; i++)
        names[i] = l->v[i].name;
    tc_conf_find_dups(names, l->n, first);
    for (size_t i = 0; i < l->n; i++) {
        if (first[i] != SIZE_MAX)
            tc_conf_error(c, l->v[i].line,
                          "action name '%s' is used twice (first at line "
                          "%d)",
                          l->v[i].name, l->v[first[i]].line);
        action_check(c, seq, i, &l->v[i]);
    }
    free(names);
    free(first);
}

const struct action_def *
actions_find(const struct action_list *l, const char *name)
{
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if (l->v[i].name != NULL && strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* err = printf(fmt, ...) with %s arguments already escaped by caller. */
static int TC_PRINTF(3, 4)
    refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int
hostname_ok(const char *v)
{
    size_t n = strlen(v), lab = 0;

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = v[i];

        if (ch == '.' || ch == '\0') {
            /* A label: 1..63 bytes, no '-' at either end. */
            if (lab == 0 || lab > 63 || v[i - 1] == '-' || v[i - lab] == '-')
                return 0;
            lab = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        lab++;
    }
    return 1;
}

/*
 * One value against its parameter; the text to substitute into *out
 * (malloc'ed: a canonical form where the type has one). 0 or -EINVAL
 * with the reason in err.
 */
static int
value_check(const struct action_param *p, const char *v, char **out, char *err,
            size_t errlen)
{
    char ev[128], num[24];
    size_t n = strlen(v);

    tc_escape(ev, sizeof(ev), v, n > 100 ? 100 : n);
    if (n == 0)
        return refuse(err, errlen, "parameter '%s': empty value", p->name);
    if (n > ACTIONS_VALUE_MAX || (p->type == ACTION_P_HOSTNAME && n > 253))
        return refuse(err, errlen,
                      "parameter '%s': value too long (%zu bytes, at most "
                      "%d)",
                      p->name, n,
                      p->type == ACTION_P_HOSTNAME ? 253 : ACTIONS_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];

        if (ch < 0x20 || ch == 0x7f)
            return refuse(err, errlen,
                          "parameter '%s': control character \\x%02x in "
                          "'%s'",
                          p->name, ch, ev);
    }
    if (p->type == ACTION_P_ENUM) {
        /* Exact match with a value the admin wrote: nothing else to fear
         * once it is one of them. */
        for (size_t i = 0; i < p->nvalues; i++)
            if (strcmp(p->values[i], v) == 0) {
                *out = tc_xstrdup(v);
                return 0;
            }
        return refuse(err, errlen,
                      "parameter '%s': '%s' is not one of the "
                      "allowed values",
                      p->name, ev);
    }
    if (p->type == ACTION_P_INT) {
        int64_t x;

        int rc = parse_i64(v, &x);

        if (rc == -ERANGE)
            return refuse(err, errlen,
                          "parameter '%s': '%s' is out of range [%lld, %lld]",
                          p->name, ev, (long long)p->min, (long long)p->max);
        if (rc < 0)
            return refuse(err, errlen, "parameter '%s': '%s' is not an integer",
                          p->name, ev);
        if (x < p->min || x > p->max)
            return refuse(err, errlen,
                          "parameter '%s': %lld is out of range [%lld, %lld]",
                          p->name, (long long)x, (long long)p->min,
                          (long long)p->max);
        snprintf(num, sizeof(num), "%lld", (long long)x);
        *out = tc_xstrdup(num);
        return 0;
    }
    /* hostname, path: the generic refusals first, each with its name. */
    if (v[0] == '-')
        return refuse(err, errlen,
                      "parameter '%s': leading '-' in '%s' (option "
                      "injection)",
                      p->name, ev);
    for (size_t i = 0; i < n; i++)
        if (strchr(shell_meta, v[i]) != NULL)
            return refuse(err, errlen,
                          "parameter '%s': shell metacharacter '%c' in '%s'",
                          p->name, v[i], ev);
    if (strstr(v, "..") != NULL)
        return refuse(err, errlen, "parameter '%s': '..' in '%s' (traversal)",
                      p->name, ev);
    if (p->type == ACTION_P_HOSTNAME) {
        if (!hostname_ok(v))
            return refuse(err, errlen,
                          "parameter '%s': '%s' is not a host name (RFC "
                          "1123: letters, digits, '-', dots)",
                          p->name, ev);
        *out = tc_xstrdup(v);
        return 0;
    }
    /* path: joined to the prefix when relative, canonical, inside it. */
    {
        char *full, canon[ACTIONS_VALUE_MAX * 2 + 2];
        size_t pl = strlen(p->prefix);
        int rc;

        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)v[i];

            if (ch >= 0x80)
                return refuse(err, errlen,
                              "parameter '%s': non-ASCII byte in '%s'", p->name,
                              ev);
        }
        full =
            v[0] == '/' ? tc_xstrdup(v) : tc_xasprintf("%s/%s", p->prefix, v);
        rc = path_canon(full, canon, sizeof(canon));
        free(full);
        if (rc < 0)
            return refuse(err, errlen, "parameter '%s': '%s' is not a path",
                          p->name, ev);
        if (!(strncmp(canon, p->prefix, pl) == 0 &&
              (canon[pl] == '/' || (pl == 1 && canon[1] != '\0'))))
            return refuse(err, errlen, "parameter '%s': '%s' is not under %s",
                          p->name, ev, p->prefix);
        *out = tc_xstrdup(canon);
        return 0;
    }
}

void
actions_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p != NULL; p++)
        free(*p);
    free(argv);
}

/* Template t with the values in; NULL if over ACTIONS_ARG_MAX. */
static char *
subst(const struct action_def *a, char *const *vals, const char *t)
{
    size_t cap = strlen(t) + 1, o = 0;
    char *out = tc_xmalloc(cap);

    for (const char *p = t; *p != '\0'; p++) {
        const char *add = p;
        size_t n = 1;

        if ((*p == '{' && p[1] == '{') || (*p == '}' && p[1] == '}')) {
            p++;
        } else if (*p == '{') {
            const char *end = strchr(p, '}');
            const struct action_param *pa =
                param_find(a, p + 1, (size_t)(end - p - 1));

            add = vals[pa - a->params];
            n = strlen(add);
            p = end;
        }
        if (o + n + 1 > ACTIONS_ARG_MAX) {
            free(out);
            return NULL;
        }
        if (o + n + 1 > cap) {
            cap = (o + n + 1) * 2;
            out = tc_xrealloc(out, cap);
        }
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = '\0';
    return out;
}

int
actions_prepare(const struct action_list *l, const char *name,
                const struct tc_conf_kv *params, size_t n, char ***argv_out,
                char *err, size_t errlen)
{
    const struct action_def *a = actions_find(l, name);
    char **vals = NULL, **argv = NULL, en[128];
    int rc = -EINVAL;

    *argv_out = NULL;
    tc_escape(en, sizeof(en), name, strnlen(name, 100));
    if (a == NULL) {
        snprintf(err, errlen, "action '%s' is not allowlisted", en);
        return -ENOENT;
    }
    vals = tc_xcalloc(a->nparams + 1, sizeof(*vals));
    for (size_t i = 0; i < n; i++) {
        const struct action_param *p =
            param_find(a, params[i].key, strlen(params[i].key));
        char ek[128];

        tc_escape(ek, sizeof(ek), params[i].key, strnlen(params[i].key, 100));
        if (p == NULL) {
            refuse(err, errlen, "action '%s': unknown parameter '%s'", en, ek);
            goto out;
        }
        if (vals[p - a->params] != NULL) {
            refuse(err, errlen, "action '%s': parameter '%s' given twice", en,
                   ek);
            goto out;
        }
        if (value_check(p, params[i].val ? params[i].val : "",
                        &vals[p - a->params], err, errlen) < 0)
            goto out;
    }
    for (size_t i = 0; i < a->nparams; i++)
        if (vals[i] == NULL) {
            refuse(err, errlen, "action '%s': missing parameter '%s'", en,
                   a->params[i].name);
            goto out;
        }
    argv = tc_xcalloc(a->nargs + 2, sizeof(*argv));
    argv[0] = tc_xstrdup(a->exec);
    for (size_t i = 0; i < a->nargs; i++)
        if ((argv[i + 1] = subst(a, vals, a->args[i])) == NULL) {
            refuse(err, errlen,
                   "action '%s': args[%zu] would be longer than "
                   "%d bytes",
                   en, i, ACTIONS_ARG_MAX);
            goto out;
        }
    *argv_out = argv;
    argv = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < a->nparams; i++)
        free(vals[i]);
    free(vals);
    actions_argv_free(argv);
    return rc;
}
