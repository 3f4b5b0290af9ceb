/*
 * log: stderr (foreground) or syslog (daemon) logging; see log.h. Every
 * message is escaped (escape.h) after formatting: its arguments carry
 * file names, peer strings and rule captures, and none of them may
 * forge a log line or drive the terminal that shows it.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "timefmt.h"

static const char *log_progname = "tocsin"; /* static string, not owned */
static int log_foreground = 1;              /* LOG_TO_SYSLOG, _STDERR or _CLI */
static int log_verbose;                     /* > 0 enables debug */
/* log_divert: per thread, so a loader never catches another's lines. */
static _Thread_local log_divert_fn log_divert_cb;
static _Thread_local void *log_divert_arg;

void
log_init(const char *progname, int foreground, int verbose)
{
    log_progname = progname;
    log_foreground = foreground;
    log_verbose = verbose;
    if (!foreground)
        openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setverbose(int verbose)
{
    log_verbose = verbose;
}

int
log_getverbose(void)
{
    return log_verbose;
}

void
log_divert(log_divert_fn fn, void *arg)
{
    log_divert_cb = fn;
    log_divert_arg = arg;
}

static void vlog(int pri, const char *fmt, va_list ap, int with_errno)
    __attribute__((format(printf, 2, 0)));

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
    char raw[2048];
    /* Each raw byte escapes to at most 4 (\xHH). */
    char msg[sizeof(raw) * 4];
    int saved = errno;
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);

    if (n < 0)
        return;
    if (with_errno && (size_t)n < sizeof(raw))
        snprintf(raw + n, sizeof(raw) - (size_t)n, ": %s", strerror(saved));
    if (pri == LOG_WARNING && log_divert_cb != NULL) {
        log_divert_cb(log_divert_arg, raw);
        errno = saved;
        return;
    }
    tc_escape(msg, sizeof(msg), raw, strlen(raw));
    if (log_foreground == LOG_TO_CLI) {
        /* A command's error, as a CLI says it: "tocsinctl: ...". */
        fprintf(stderr, "%s: %s\n", log_progname, msg);
    } else if (log_foreground) {
        struct timespec ts;
        char when[TC_RFC3339_MAX];

        clock_gettime(CLOCK_REALTIME, &ts);
        tc_rfc3339((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, 3, when,
                   sizeof(when));
        fprintf(stderr, "%s %s[%d]: %s\n", when, log_progname, (int)getpid(),
                msg);
    } else {
        syslog(pri, "%s", msg);
    }
    errno = saved;
}

void
log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_WARNING, fmt, ap, 1);
    va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_WARNING, fmt, ap, 0);
    va_end(ap);
}

void
log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_INFO, fmt, ap, 0);
    va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
    va_list ap;

    if (log_verbose <= 0)
        return;
    va_start(ap, fmt);
    vlog(LOG_DEBUG, fmt, ap, 0);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_CRIT, fmt, ap, 1);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_CRIT, fmt, ap, 0);
    va_end(ap);
    exit(1);
}
