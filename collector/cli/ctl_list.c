/*
 * ctl_list: what the read-only listings (agents list, hints list) share:
 * how a listing ends on stdout, and the entry point of a command whose
 * one subcommand is "list".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli/ctl.h"
#include "json.h"
#include "log.h"
#include "table.h"

int
ctl_list_print(int json, uint64_t n, struct tc_buf *out,
               const struct tc_table *t)
{
    if (json) {
        tc_json_raw(out, n ? "\n]\n" : "]\n");
        fputs("[", stdout);
        fwrite(tc_buf_head(out), 1, tc_buf_size(out), stdout);
    } else {
        tc_table_print(t, stdout);
    }
    /* A full disk or a closed pipe must not pass for a listing. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_warnx("write error on stdout");
        return -1;
    }
    return 0;
}

int
ctl_list_only(const struct ctl_opts *o, int argc, char **argv, const char *name,
              int (*list)(const struct ctl_opts *o, int argc, char **argv),
              void (*usage)(FILE *f))
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: %s: unknown subcommand '%s'\n", name, argv[1]);
    usage(stderr);
    return 2;
}
