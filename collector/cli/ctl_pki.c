/*
 * ctl_pki: "tocsinctl pki", the front end of common/pki.c.
 *
 *   tocsinctl pki init DIR [--san NAME]...
 *   tocsinctl pki issue-agent DIR NAME [--days N]
 *
 * Prints every file it wrote, so the operator knows what to copy where;
 * errors go to stderr (exit 1), usage errors exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "pki.h"
#include "util.h"

#define PKI_DEFAULT_DAYS 825
#define PKI_MAX_DAYS 36500
/* Agent certificates start this early so clock skew does not bite. */
#define PKI_AGENT_BACKDATE_S 300

static void
pki_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl pki init DIR [--san NAME]...\n"
               "       tocsinctl pki issue-agent DIR NAME [--days N]\n");
}

static int
pki_cmd_init(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"san", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **sans = NULL;
    size_t nsans = 0;
    char err[512], edir[4096], eerr[2048];
    const char *dir;
    int ch, rc, status = 1;

    optind = 0; /* glibc: 0 restarts the scan with fresh state */
    while ((ch = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            sans = tc_xreallocarray(sans, nsans + 1, sizeof(*sans));
            sans[nsans++] = optarg;
            break;
        case 'h':
            pki_usage(stdout);
            status = 0;
            goto out;
        default:
            pki_usage(stderr);
            status = 2;
            goto out;
        }
    }
    if (argc - optind != 1) {
        pki_usage(stderr);
        status = 2;
        goto out;
    }
    dir = argv[optind];
    rc = tc_pki_init(dir, sans, nsans, err, sizeof(err));
    ctl_esc(edir, sizeof(edir), dir);
    if (rc == -EEXIST) {
        /*
         * A CA made before hints had no hint-signing key: init run
         * again adds it, and keeps the CA as it is.
         */
        char herr[512];
        int hrc = tc_pki_hint_key(dir, herr, sizeof(herr));
        if (hrc == 0) {
            printf("kept the CA in %s\n"
                   "wrote %s/" TC_PKI_HINT_PUB "\n"
                   "wrote %s/" TC_PKI_HINT_KEY
                   " (keep it here; it signs hints)\n",
                   edir, edir, edir);
            status = 0;
            goto out;
        }
        if (hrc < 0)
            fprintf(stderr, "tocsinctl: %s\n",
                    ctl_esc(eerr, sizeof(eerr), herr));
    }
    if (rc < 0) {
        fprintf(stderr, "tocsinctl: %s\n", ctl_esc(eerr, sizeof(eerr), err));
        goto out;
    }
    printf("wrote %s/ca.crt\n"
           "wrote %s/ca.key (keep it here; it signs agent certificates)\n"
           "wrote %s/collector.crt\n"
           "wrote %s/collector.key\n"
           "wrote %s/" TC_PKI_HINT_PUB "\n"
           "wrote %s/" TC_PKI_HINT_KEY " (keep it here; it signs hints)\n",
           edir, edir, edir, edir, edir, edir);
    status = 0;
out:
    free(sans);
    return status;
}

static int
pki_cmd_issue(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"days", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long days = PKI_DEFAULT_DAYS;
    const char *dir, *name;
    char err[512], edir[4096], ename[1024], eerr[2048], *end;
    int ch, rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            errno = 0;
            days = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end != '\0' || days < 1 ||
                days > PKI_MAX_DAYS) {
                fprintf(stderr,
                        "tocsinctl: pki issue-agent: --days must be a "
                        "number from 1 to %d\n",
                        PKI_MAX_DAYS);
                return 2;
            }
            break;
        case 'h':
            pki_usage(stdout);
            return 0;
        default:
            pki_usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        pki_usage(stderr);
        return 2;
    }
    dir = argv[optind];
    name = argv[optind + 1];
    rc = tc_pki_issue_agent(dir, name, -PKI_AGENT_BACKDATE_S, days * 86400L,
                            err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tocsinctl: %s\n", ctl_esc(eerr, sizeof(eerr), err));
        return 1;
    }
    ctl_esc(edir, sizeof(edir), dir);
    ctl_esc(ename, sizeof(ename), name);
    printf("wrote %s/%s.crt\n"
           "wrote %s/%s.key\n"
           "valid for %ld days; install %s/%s.crt, %s/%s.key and "
           "%s/ca.crt on the agent\n",
           edir, ename, edir, ename, days, edir, ename, edir, ename, edir);
    return 0;
}

int
ctl_pki(const struct ctl_opts *o, int argc, char **argv)
{
    (void)o; /* neither the config nor --json matter to the PKI */
    if (argc < 2) {
        pki_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "init") == 0)
        return pki_cmd_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "issue-agent") == 0)
        return pki_cmd_issue(argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        pki_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: pki: unknown command \"%s\"\n", argv[1]);
    pki_usage(stderr);
    return 2;
}
