/*
 * daemon: what both daemons share before their loop starts — the
 * command line of an OpenBSD-style daemon and detaching from the
 * terminal.
 *
 *   PROG [-d] [-n] [-v] [-c FILE]
 *   PROG -h|--help
 *   PROG -V|--version
 *
 * -c names the config file, -d keeps the daemon in the foreground with
 * logs on stderr, -n checks the configuration and exits, -v (repeatable)
 * enables debug logs. -h and -V are answered by the caller (usage or
 * version on stdout, exit 0); a usage error exits 2 (TC_EXIT_USAGE), so
 * that scripts can tell it from a bad configuration (exit 1).
 */
#ifndef TC_DAEMON_H
#define TC_DAEMON_H

#include <stdio.h>

/* Exit status of the daemons and tocsinctl for a bad command line. */
#define TC_EXIT_USAGE 2

struct tc_daemon_opts {
    const char *config; /* -c FILE; the caller's default if absent */
    int foreground;     /* -d */
    int check;          /* -n */
    int verbose;        /* -v count */
    int help;           /* -h, --help: print usage, exit 0 */
    int version;        /* -V, --version: print version, exit 0 */
};

/* Parse argv into o (config preset to the default). 0, or -1 on a
 * usage error (nothing printed: the caller prints its usage). */
int tc_daemon_getopt(int argc, char **argv, struct tc_daemon_opts *o);

/*
 * The option lines every daemon's -h shows (after its own "usage:"
 * lines), with default_config as -c's default, and the exit statuses.
 */
void tc_daemon_usage_options(FILE *f, const char *default_config);

/*
 * Detach: fork (the parent exits so the shell gets its prompt back), new
 * session, stdio on /dev/null, "/" as working directory so no mount is
 * held. Call before opening SQLite or starting the loop: neither
 * survives fork. fatal() on failure (start-up only).
 */
void tc_daemonize(void);

#endif
