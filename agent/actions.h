/*
 * actions: the agent's allowlist of remediation actions (`actions:` in
 * agent.yaml) and the pure check that turns a request (an action name
 * and string parameters, from a hint or an operator) into the argv that
 * would run.
 *
 * The safety model (docs/runbooks.md "On the agent: actions"): the
 * collector can only name an action and give values for its declared,
 * typed parameters. The executable and the shape of its argv are fixed
 * here, by whoever writes the local config; each value becomes (part of)
 * one argv element, never split, never seen by a shell. Anything not
 * allowlisted, any parameter missing, extra or failing its type, and any
 * value with a shell metacharacter, a control character, a "../" or a
 * leading '-' (option injection) is refused with a reason.
 *
 * Nothing in this file does I/O at request time: actions_prepare is a
 * pure function of the allowlist and the request (unit-tested alone).
 * The runner is in action_run.c.
 */
#ifndef AGENT_ACTIONS_H
#define AGENT_ACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* Longest action or parameter name, bytes. */
#define ACTIONS_NAME_MAX 64
/* Longest parameter value accepted, bytes (a hostname is <= 253). */
#define ACTIONS_VALUE_MAX 1024
/* Longest argv element after substitution, bytes. */
#define ACTIONS_ARG_MAX 4096
/* Longest timeout: an action that runs longer is a job, not a fix. */
#define ACTIONS_TIMEOUT_MAX_MS (3600 * 1000)

enum action_ptype {
    ACTION_P_INT = 0,      /* decimal integer within [min, max] */
    ACTION_P_ENUM = 1,     /* exactly one of values */
    ACTION_P_HOSTNAME = 2, /* RFC 1123 host name */
    ACTION_P_PATH = 3,     /* a path that stays under prefix */
};

struct action_param {
    char *name;             /* [A-Za-z_][A-Za-z0-9_]*; owned */
    enum action_ptype type; /* required */
    int64_t min, max;       /* int: bounds, inclusive */
    char **values;          /* enum: nvalues allowed values; owned */
    size_t nvalues;
    char *prefix; /* path: absolute directory, canonical, no trailing
                     '/' (except "/" itself); owned */
    int line;     /* line of the parameter in the config file */
};

struct action_def {
    char *name;  /* unique; [A-Za-z0-9._-], what a hint names; owned */
    char *exec;  /* absolute path of the executable; owned */
    char **args; /* argv[1..] templates with {param}; owned, NULL-ended */
    size_t nargs;
    struct action_param *params; /* declared parameters; owned */
    size_t nparams;
    uint64_t timeout_ms; /* SIGTERM to the group after this; 1..1h */
    char *user;          /* run as this user; NULL: the agent's own */
    int auto_run;        /* 1: run when a hint naming it arrives */
    int line;            /* line of the action in the config file */
};

/* The allowlist: config order. */
struct action_list {
    struct action_def *v; /* n entries; owned by the agent_config */
    size_t n;
};

/*
 * Schema rows of one `actions:` entry and the checks that span fields
 * (for config.c): actions_params_check parses the free-form `params`
 * map into the action_def it is called with; actions_list_check (the
 * SEQ check) checks names, exec, user and the template against the
 * params. Errors are "FILE:LINE: message" through tc_conf_error.
 */
extern const struct tc_conf_field actions_fields[];
struct action_list;
void actions_list_check(struct tc_conf *c, const struct tc_conf_node *seq,
                        struct action_list *l);
/* Free what actions_params_check allocated (the rest is the schema's). */
void actions_params_free(struct action_def *a);

/* The action named name, or NULL. */
const struct action_def *actions_find(const struct action_list *l,
                                      const char *name);

/*
 * Check a request against the allowlist and build the argv that would
 * run: (*argv_out)[0] is the executable, then one element per template
 * argument, NULL-terminated; free it with actions_argv_free. params
 * holds n key/value pairs (C strings). Returns 0, or a negative errno
 * (-ENOENT: not allowlisted; -EINVAL: a parameter refused) with a one
 * line reason in err (names and values escaped for a terminal).
 */
int actions_prepare(const struct action_list *l, const char *name,
                    const struct tc_conf_kv *params, size_t n, char ***argv_out,
                    char *err, size_t errlen);
void actions_argv_free(char **argv);

/* "int", "enum", "hostname", "path". */
const char *actions_ptype_name(enum action_ptype t);

#endif
