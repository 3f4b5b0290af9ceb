/*
 * ctl: tocsinctl subcommands. ctl.c parses global options and
 * dispatches; each subcommand file implements one entry point taking
 * the arguments after its name (argv[0] is the subcommand name) and
 * returning the process exit status (0 ok, 1 failure, 2 usage).
 */
#ifndef CTL_H
#define CTL_H

struct ctl_opts {
    const char *config; /* -c FILE; default /etc/tocsin/collector.yaml */
    int json;           /* --json given before the subcommand */
};

int ctl_pki(const struct ctl_opts *o, int argc, char **argv);
int ctl_events(const struct ctl_opts *o, int argc, char **argv);

#endif
