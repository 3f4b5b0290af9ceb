/*
 * ctl: tocsinctl subcommands. ctl.c parses global options and
 * dispatches; each subcommand file implements one entry point taking
 * the arguments after its name (argv[0] is the subcommand name) and
 * returning the process exit status (0 ok, 1 failure, 2 usage).
 */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ctl_opts {
    const char *config;     /* -c FILE; default /etc/tocsin/collector.yaml */
    int json;               /* --json given before the subcommand */
    int config_given;       /* -c was given (--url then trusts its tls.ca) */
    const char *url;        /* --url https://HOST:PORT: a remote collector's
                               API (ctl_remote.h); NULL = the local store */
    const char *token_file; /* --token-file: the API token, mode 0600 */
    const char *cacert;     /* --cacert: the CA of the API's certificate */
};

int ctl_pki(const struct ctl_opts *o, int argc, char **argv);
int ctl_events(const struct ctl_opts *o, int argc, char **argv);
int ctl_agents(const struct ctl_opts *o, int argc, char **argv);
int ctl_incidents(const struct ctl_opts *o, int argc, char **argv);
int ctl_problems(const struct ctl_opts *o, int argc, char **argv);
int ctl_silences(const struct ctl_opts *o, int argc, char **argv);
int ctl_replay(const struct ctl_opts *o, int argc, char **argv);
/* replay --config NEW.yaml [--since D]: what the candidate would
 * change. Exit 0 nothing, 1 something, 2 error. */
int ctl_replay_config(const struct ctl_opts *o, const char *newcfg,
                      const char *since, int json);
int ctl_runbooks(const struct ctl_opts *o, int argc, char **argv);
int ctl_hints(const struct ctl_opts *o, int argc, char **argv);
int ctl_explain(const struct ctl_opts *o, int argc, char **argv);
int ctl_stats(const struct ctl_opts *o, int argc, char **argv);
int ctl_metrics(const struct ctl_opts *o, int argc, char **argv);
int ctl_tokens(const struct ctl_opts *o, int argc, char **argv);

/* Who acts: $SUDO_USER, else $USER, else "unknown". */
const char *ctl_default_user(void);

struct collector_config;
struct incidents_store;

/*
 * Load the config and open the incident tables of its store (read-only
 * when rdonly). 0, or -1 with the reason logged. The caller frees both.
 */
int ctl_open_incidents(const struct ctl_opts *o, int rdonly,
                       struct collector_config **cfg,
                       struct incidents_store **is);

/*
 * Wait up to CTL_ACTION_WAIT_MS for the collector's verdict on action
 * aid; 1 and *result when known, 0 if the collector has not applied it
 * yet (it will when it runs).
 */
#define CTL_ACTION_WAIT_MS 5000
int ctl_wait_action(struct incidents_store *is, int64_t aid, int *result);

/*
 * s escaped (escape.h) into buf (len bytes), cut at a whole character;
 * returns buf. Every text output passes the strings it did not write
 * itself (hosts, rules, messages, users, comments, names) through it:
 * they may hold terminal escapes. NULL is shown as "".
 */
const char *ctl_esc(char *buf, size_t len, const char *s);

/* An incident or silence id: a positive decimal. 0 or -EINVAL. */
int ctl_parse_id(const char *s, int64_t *out);

struct tc_buf;
struct tc_table;

/*
 * The end of a listing (ctl_list.c): with json, the n objects in out
 * (each after "\n" or ",\n", as the listings write them) as one JSON
 * array on stdout; else table t. 0, or -1 with a write error logged.
 */
int ctl_list_print(int json, uint64_t n, struct tc_buf *out,
                   const struct tc_table *t);

/*
 * The entry point of a command whose one subcommand is "list" (agents,
 * hints): argv[1] "list" runs list with argv + 1; "help", "--help" and
 * "-h" print usage to stdout; anything else is a usage error. Returns
 * the exit status.
 */
int ctl_list_only(const struct ctl_opts *o, int argc, char **argv,
                  const char *name,
                  int (*list)(const struct ctl_opts *o, int argc, char **argv),
                  void (*usage)(FILE *f));

#endif
