/*
 * daemon: shared daemon command line and detaching; see daemon.h.
 */
#include "daemon.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

int
tc_daemon_getopt(int argc, char **argv, struct tc_daemon_opts *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "c:dhnvV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case 'd':
            o->foreground = 1;
            break;
        case 'n':
            o->check = 1;
            break;
        case 'v':
            o->verbose++;
            break;
        case 'h':
            o->help = 1;
            break;
        case 'V':
            o->version = 1;
            break;
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

void
tc_daemonize(void)
{
    pid_t pid;
    int fd;

    if ((pid = fork()) < 0)
        fatal("fork");
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        fatal("setsid");
    if (chdir("/") < 0)
        fatal("chdir /");
    if ((fd = open("/dev/null", O_RDWR)) < 0)
        fatal("/dev/null");
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
}

void
tc_daemon_usage_options(FILE *f, const char *default_config)
{
    fprintf(f,
            "\n"
            "  -c file  configuration (default %s)\n"
            "  -d       stay in the foreground, log to stderr\n"
            "  -n       check the configuration and exit\n"
            "  -v       more verbose logs (repeatable)\n"
            "\n"
            "exit status: 0 ok, 1 error (configuration, start-up), "
            "2 usage error\n",
            default_config);
}
