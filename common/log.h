/*
 * log: the one logging API of every tocsin program.
 *
 * Modelled on the OpenBSD daemons: log_warn appends strerror(errno),
 * log_warnx does not; fatal/fatalx log and exit(1). In the foreground
 * (-d) lines go to stderr with a UTC timestamp; otherwise to syslog;
 * commands print "progname: message" (LOG_TO_CLI).
 * fatal is only for start-up errors and broken invariants, never for
 * what a peer or a file sent. Each message is escaped after formatting
 * (escape.h: control characters, C1, invalid UTF-8), so an argument
 * holding a newline or an ESC cannot forge a line or drive a terminal;
 * the one newline is the one the logger adds.
 */
#ifndef TC_LOG_H
#define TC_LOG_H

#include <stdarg.h>

#define TC_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Where lines go (log_init's foreground). */
#define LOG_TO_SYSLOG 0 /* a daemon detached from its terminal */
#define LOG_TO_STDERR 1 /* a daemon in the foreground: timestamp, pid */
#define LOG_TO_CLI                                                             \
    2 /* a command (tocsinctl, -n, status, test-rules):                        \
         "progname: message", as a CLI says it */

/* Set the program name and destination. verbose > 0 enables log_debug. */
void log_init(const char *progname, int foreground, int verbose);
void log_setverbose(int verbose);
int log_getverbose(void);

void log_warn(const char *fmt, ...) TC_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) TC_PRINTF(1, 2);
void log_info(const char *fmt, ...) TC_PRINTF(1, 2);
void log_debug(const char *fmt, ...) TC_PRINTF(1, 2);
/*
 * Divert this thread's warnings (log_warn, log_warnx) to fn, with the
 * formatted text before escaping, instead of the log; NULL restores.
 * For a loader that reports another module's complaints about a file
 * in its own words (runbooks: a broken file is logged once, with the
 * first reason kept for "tocsinctl runbooks list").
 */
typedef void (*log_divert_fn)(void *arg, const char *msg);
void log_divert(log_divert_fn fn, void *arg);

_Noreturn void fatal(const char *fmt, ...) TC_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) TC_PRINTF(1, 2);

#endif
