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

struct ctl_opts {
    const char *config; /* -c FILE; default /etc/tocsin/collector.yaml */
    int json;           /* --json given before the subcommand */
};

int ctl_pki(const struct ctl_opts *o, int argc, char **argv);
int ctl_events(const struct ctl_opts *o, int argc, char **argv);
int ctl_agents(const struct ctl_opts *o, int argc, char **argv);
int ctl_incidents(const struct ctl_opts *o, int argc, char **argv);
int ctl_silences(const struct ctl_opts *o, int argc, char **argv);
int ctl_replay(const struct ctl_opts *o, int argc, char **argv);
int ctl_stats(const struct ctl_opts *o, int argc, char **argv);

/* Who acts: $SUDO_USER, else $USER, else "unknown". */
const char *ctl_default_user(void);

/* RFC 3339 UTC with milliseconds ("2026-11-26T10:00:00.123Z"). */
void ctl_fmt_time(int64_t ns, char *buf, size_t len);

#endif
