/*
 * ctl_events: "tocsinctl events", a read-only view of stored events.
 *
 *   tocsinctl [-c FILE] [--json] events list [--json] [--host H]
 *             [--limit N]
 *
 * Events print in arrival order (batch, then seq). --limit N keeps the
 * N most recent (default 100, 0 = all), still printed oldest first. The
 * store is walked batch by batch and the window is found by a count
 * pass over (id, n) only, so memory stays bounded whatever --limit is.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "cli/ctl.h"
#include "escape.h"
#include "json.h"
#include "log.h"
#include "store/store.h"
#include "timefmt.h"
#include "util.h"
#include "view.h"
#include "wire.h"

#define EVENTS_DEFAULT_LIMIT 100
/* One event's JSON: a 64 KiB message escapes to at most 6x that. */
#define EVENT_OUT_MAX (64u << 20)

struct list_state {
    int json;                  /* 1: JSON array output */
    uint64_t printed;          /* events printed so far */
    uint64_t bad;              /* batches that failed to decode */
    struct tc_frame frame;     /* decode memory, reused per batch */
    struct tc_wire_limits lim; /* decode limits for stored blobs */
    struct tc_buf out;         /* one event's output */
};

static void
events_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl events list [--json] [--host H] "
               "[--limit N]\n");
}

static int
batch_cb(const struct store_batch *sb, uint32_t skip, void *arg)
{
    struct list_state *ls = arg;
    const struct tc_events *evs;
    const char *err = "unknown error";
    int rc;

    rc = tc_event_decode_array(sb->events, sb->events_len, &ls->lim, &ls->frame,
                               &err);
    if (rc < 0) {
        log_warnx("batch %" PRId64 " (%s, seq %" PRIu64 "-%" PRIu64
                  "): cannot decode: %s",
                  sb->id, sb->host, sb->seq_first, sb->seq_last, err);
        ls->bad++;
        return 0;
    }
    evs = &ls->frame.u.events;
    for (uint32_t i = skip; i < evs->n; i++) {
        tc_buf_reset(&ls->out);
        if (ls->json)
            tc_json_raw(&ls->out, ls->printed ? ",\n" : "\n");
        if (ls->json) {
            struct tc_view_event_opts vo = {
                .origin = store_origin_name(sb->origin), .iso_digits = 3};

            tc_view_event_json(&ls->out, &evs->ev[i], &vo);
        } else
            tc_view_event_line(&ls->out, &evs->ev[i], 0);
        if (!ls->json)
            tc_buf_append(&ls->out, "\n", 1);
        fwrite(tc_buf_head(&ls->out), 1, tc_buf_size(&ls->out), stdout);
        ls->printed++;
    }
    if (ferror(stdout))
        return -EIO;
    return 0;
}

static int
parse_limit(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

static int
events_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"host", required_argument, NULL, 'H'},
        {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct store *store = NULL;
    struct list_state ls;
    const char *host = NULL;
    uint64_t limit = EVENTS_DEFAULT_LIMIT;
    int ch, rc, status = 1;

    memset(&ls, 0, sizeof(ls));
    ls.json = o->json;
    optind = 0; /* glibc: 0 restarts the scan with fresh state */
    while ((ch = getopt_long(argc, argv, "jH:l:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            ls.json = 1;
            break;
        case 'H':
            host = optarg;
            break;
        case 'l':
            if (parse_limit(optarg, &limit) < 0) {
                fprintf(stderr, "tocsinctl: --limit: not a number: %s\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            events_usage(stdout);
            return 0;
        default:
            events_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        events_usage(stderr);
        return 2;
    }

    if (config_load(o->config, &cfg) < 0)
        return 1;
    if (store_open(cfg->store_path, STORE_RDONLY, &store) < 0)
        goto out;

    /*
     * Stored blobs carry the authenticated host in place of whatever
     * the agent wrote, so one may be a little larger than the frame it
     * came in; the frame limit does not apply to them.
     */
    ls.lim = tc_wire_default_limits;
    ls.lim.max_frame = UINT32_MAX;
    tc_frame_init(&ls.frame);
    tc_buf_init(&ls.out, EVENT_OUT_MAX);
    if (ls.json)
        fputs("[", stdout);
    rc = store_events_iter(store, host, limit, batch_cb, &ls);
    if (ls.json)
        fputs(ls.printed ? "\n]\n" : "]\n", stdout);
    if (rc < 0) {
        log_warnx("%s: %s", cfg->store_path,
                  rc == -EIO && ferror(stdout) ? "write error on stdout"
                                               : store_errmsg(store));
        goto out;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_warnx("write error on stdout");
        goto out;
    }
    status = ls.bad ? 1 : 0;
out:
    tc_frame_close(&ls.frame);
    tc_buf_close(&ls.out);
    store_close(store);
    config_free(cfg);
    return status;
}

int
ctl_events(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        events_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0)
        return events_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        events_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: events: unknown subcommand '%s'\n", argv[1]);
    events_usage(stderr);
    return 2;
}
