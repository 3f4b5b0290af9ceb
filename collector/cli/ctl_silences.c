/*
 * ctl_silences: "tocsinctl silences".
 *
 *   tocsinctl silences add --match M [--match M]... --duration D|--until TS
 *                          [--start TS] --comment TEXT [--user NAME]
 *   tocsinctl silences list [--all] [--json]
 *   tocsinctl silences expire ID [--user NAME]
 *
 * A matcher is host=H, rule=R or label:K=V; a silence matches an event
 * when all of its matchers do. TS is RFC 3339 UTC
 * ("2026-11-26T10:00:00Z") or "now"; D a duration (90m, 2h, 1d).
 *
 * Like incident actions, adding and expiring are rows written to the
 * store (a silences row and an action), applied by the collector in
 * action order (docs/internals/incidents.md, "Silences"); tocsinctl
 * waits up to 5 s for the verdict.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "config.h"
#include "cli/ctl.h"
#include "cli/ctl_remote.h"
#include "engine/incident.h"
#include "store/incidents_store.h"
#include "json.h"
#include "view/silence_view.h"
#include "log.h"
#include "table.h"
#include "timefmt.h"
#include "util.h"

#define MATCHERS_MAX 512 /* bytes of the joined matchers */

static void
silences_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl silences add --match M [--match M]... "
               "--duration D|--until TS\n"
               "           [--start TS] --comment TEXT [--user NAME]\n"
               "       tocsinctl silences list [--all] [--json]\n"
               "       tocsinctl silences expire ID [--user NAME]\n"
               "M: host=H, rule=R or label:K=V; TS: RFC 3339 UTC or now\n");
}

/* RFC 3339 UTC (seconds optional, "Z" optional) or "now", to ns. */
static int
parse_ts(const char *s, int64_t now, int64_t *out)
{
    static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%SZ",
                                       "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ",
                                       "%Y-%m-%dT%H:%M"};
    struct tm tm;

    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, fmts[i], &tm);
        if (end != NULL && *end == '\0') {
            *out = (int64_t)timegm(&tm) * 1000000000;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * --url: POST /api/v1/silences (add: sil and comment) or
 * /api/v1/silences/ID/expire; the user is the token's name. Reported
 * as recorded, since the API answers before the collector applies it;
 * no such silence and already ended as locally. Exit status.
 */
static int
remote_silence(const struct ctl_opts *o, const struct incident_silence *sil,
               const char *comment, int64_t id, int start_given)
{
    struct ctl_remote *r = NULL;
    json_t *body = NULL, *doc = NULL;
    char path[96], who[256], esc_m[MATCHERS_MAX * 4], iso1[64], iso2[64];
    const char *user;
    int64_t aid = 0, v;
    long status = 0;
    int rc = 1;

    if (ctl_remote_open(o, &r) < 0)
        return 1;
    if (sil != NULL) {
        snprintf(path, sizeof(path), "/api/v1/silences");
        body = json_pack("{s:s, s:I, s:s}", "matchers", sil->matchers,
                         "ends_at", (json_int_t)sil->end, "comment", comment);
        if (body == NULL) {
            /* jansson takes UTF-8 only; the API would refuse it anyway. */
            fprintf(stderr, "tocsinctl: silences add: text is not valid "
                            "UTF-8\n");
            goto out;
        }
        if (start_given)
            json_object_set_new(body, "starts_at", json_integer(sil->start));
    } else {
        snprintf(path, sizeof(path), "/api/v1/silences/%" PRId64 "/expire", id);
    }
    if (ctl_remote_post_one(r, path, body, &doc, &status) < 0) {
        if (status == 404 || status == 409)
            fprintf(stderr, "tocsinctl: silence %" PRId64 ": %s\n", id,
                    status == 404 ? "no such silence" : "already ended");
        goto out;
    }
    user = json_string_value(json_object_get(doc, "user"));
    (void)ctl_remote_i64(doc, "action", &aid);
    ctl_esc(who, sizeof(who), user ? user : "?");
    if (sil == NULL) {
        printf("silence %" PRId64 ": expire by %s recorded (action %" PRId64
               "); the collector applies it at its next step\n",
               id, who, aid);
    } else {
        (void)ctl_remote_i64(doc, "silence", &id);
        tc_rfc3339(ctl_remote_i64(doc, "starts_at", &v) == 0 ? v : sil->start,
                   3, iso1, sizeof(iso1));
        tc_rfc3339(ctl_remote_i64(doc, "ends_at", &v) == 0 ? v : sil->end, 3,
                   iso2, sizeof(iso2));
        printf("silence %" PRId64 ": add by %s recorded (%s .. %s, %s; action "
               "%" PRId64 "); the collector applies it at its next step\n",
               id, who, iso1, iso2,
               ctl_esc(esc_m, sizeof(esc_m), sil->matchers), aid);
    }
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    json_decref(body);
    json_decref(doc);
    ctl_remote_close(r);
    return rc;
}

static int
silences_add(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"match", required_argument, NULL, 'm'},
        {"duration", required_argument, NULL, 'd'},
        {"until", required_argument, NULL, 'U'},
        {"start", required_argument, NULL, 's'},
        {"comment", required_argument, NULL, 'c'},
        {"user", required_argument, NULL, 'u'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct incident_silence sil = {0};
    const char *user = ctl_default_user(), *comment = NULL;
    const char *until = NULL, *start = NULL;
    char matchers[MATCHERS_MAX] = "", iso1[64], iso2[64];
    char esc_m[MATCHERS_MAX * 4], esc_u[256];
    uint64_t dur_ms = 0;
    int64_t now = tc_now_ns(), id = 0, aid = 0;
    size_t mlen = 0;
    int ch, result = 0, status = 1, rc, user_given = 0;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:d:U:s:c:u:", longopts, NULL)) !=
           -1) {
        switch (ch) {
        case 'm':
            if (incident_silence_matcher_check(optarg) < 0) {
                fprintf(stderr,
                        "tocsinctl: --match %s: host=H, rule=R or "
                        "label:K=V (no spaces)\n",
                        optarg);
                return 2;
            }
            if (mlen + strlen(optarg) + 2 > sizeof(matchers)) {
                fprintf(stderr, "tocsinctl: too many matchers\n");
                return 2;
            }
            mlen += (size_t)snprintf(matchers + mlen, sizeof(matchers) - mlen,
                                     "%s%s", mlen ? " " : "", optarg);
            break;
        case 'd':
            if (tc_conf_parse_duration(optarg, &dur_ms) < 0 || dur_ms == 0) {
                fprintf(stderr, "tocsinctl: --duration: e.g. 90m, 2h, 1d\n");
                return 2;
            }
            break;
        case 'U':
            until = optarg;
            break;
        case 's':
            start = optarg;
            break;
        case 'c':
            comment = optarg;
            break;
        case 'u':
            user = optarg;
            user_given = 1;
            break;
        default:
            silences_usage(stderr);
            return 2;
        }
    }
    if (optind != argc || mlen == 0 || (dur_ms == 0) == (until == NULL) ||
        comment == NULL) {
        fprintf(stderr, "tocsinctl: silences add needs at least one --match, "
                        "--duration or --until, and --comment\n");
        silences_usage(stderr);
        return 2;
    }
    sil.start = now;
    if ((start && parse_ts(start, now, &sil.start) < 0) ||
        (until && parse_ts(until, now, &sil.end) < 0)) {
        fprintf(stderr, "tocsinctl: times are RFC 3339 UTC "
                        "(2026-11-26T10:00:00Z) or now\n");
        return 2;
    }
    if (!until)
        sil.end = sil.start + (int64_t)dur_ms * 1000000;
    if (sil.end <= sil.start || sil.end <= now) {
        fprintf(stderr, "tocsinctl: the silence would end before it starts "
                        "or in the past\n");
        return 2;
    }
    sil.matchers = matchers;
    if (o->url != NULL) {
        if (user_given)
            return ctl_remote_user_refused();
        return remote_silence(o, &sil, comment, 0, start != NULL);
    }
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    if ((rc = incidents_store_silence_add(is, &sil, now, user, comment, &id,
                                          &aid)) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    tc_rfc3339(sil.start, 3, iso1, sizeof(iso1));
    tc_rfc3339(sil.end, 3, iso2, sizeof(iso2));
    if (!ctl_wait_action(is, aid, &result)) {
        printf("silence %" PRId64 " recorded (%s .. %s, %s); the collector "
               "applies it when it runs\n",
               id, iso1, iso2, ctl_esc(esc_m, sizeof(esc_m), matchers));
    } else if (result != 0) {
        fprintf(stderr, "tocsinctl: silence %" PRId64 " refused: %s\n", id,
                strerror(-result));
        goto out;
    } else {
        printf("silence %" PRId64 ": %s .. %s, %s, by %s\n", id, iso1, iso2,
               ctl_esc(esc_m, sizeof(esc_m), matchers),
               ctl_esc(esc_u, sizeof(esc_u), user));
    }
    status = 0;
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

struct list_ctx {
    int json;
    int64_t now;
    uint64_t n;
    struct tc_table table; /* text: the rows */
};

static const struct tc_table_col silence_cols[] = {
    {"ID", 1, 0},    {"STATE", 0, 0},     {"STARTS", 0, 0},   {"ENDS", 0, 0},
    {"USER", 0, 24}, {"MATCHERS", 0, 60}, {"COMMENT", 0, 60},
};

static int
list_cb(const struct incidents_silence_row *r, void *arg)
{
    struct list_ctx *c = arg;
    int64_t end = r->expired_at && r->expired_at < r->ends_at ? r->expired_at
                                                              : r->ends_at;
    const char *state = end <= c->now           ? "ended"
                        : r->starts_at > c->now ? "pending"
                                                : "active";
    char s[64], e[64];

    tc_rfc3339(r->starts_at, 3, s, sizeof(s));
    tc_rfc3339(end, 3, e, sizeof(e));
    if (c->json) {
        struct tc_buf b;

        tc_buf_init(&b, 1u << 20);
        tc_json_raw(&b, c->n ? ",\n" : "\n");
        view_silence_row_json(&b, r, c->now);
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
    } else {
        tc_table_cellf(&c->table, "%" PRId64, r->id);
        tc_table_cell(&c->table, state);
        tc_table_cell(&c->table, s);
        tc_table_cell(&c->table, e);
        tc_table_cell(&c->table, r->user);
        tc_table_cell(&c->table, r->matchers);
        tc_table_cell(&c->table, r->comment);
    }
    c->n++;
    return ferror(stdout) ? -EIO : 0;
}

/*
 * --url: one silence of GET /api/v1/silences back as the row list_cb
 * prints: ends_at is when it ended, and expired_at is set to it when
 * it was expired by hand (list_cb then shows the same end and state).
 */
static int
remote_sil_cb(json_t *o, void *arg)
{
    struct list_ctx *c = arg;
    struct incidents_silence_row r = {0};
    json_t *id = json_object_get(o, "id"),
           *st = json_object_get(o, "starts_at"),
           *en = json_object_get(o, "ends_at"),
           *ex = json_object_get(o, "expired");

    r.user = json_string_value(json_object_get(o, "user"));
    r.comment = json_string_value(json_object_get(o, "comment"));
    r.matchers = json_string_value(json_object_get(o, "matchers"));
    if (!json_is_integer(id) || !json_is_integer(st) || !json_is_integer(en) ||
        !json_is_boolean(ex) || r.user == NULL || r.comment == NULL ||
        r.matchers == NULL)
        return -EINVAL;
    r.id = json_integer_value(id);
    r.starts_at = json_integer_value(st);
    r.ends_at = json_integer_value(en);
    r.expired_at = json_is_true(ex) ? r.ends_at : 0;
    if (c->json && c->n == 0)
        fputs("[", stdout);
    return list_cb(&r, c) < 0 ? -EIO : 0;
}

/* --url: the silences from the API into c. 0 or -1 (printed). */
static int
remote_sil_list(const struct ctl_opts *o, int all, struct list_ctx *c)
{
    struct ctl_remote *r = NULL;
    int rc;

    if (ctl_remote_open(o, &r) < 0)
        return -1;
    rc = ctl_remote_pages(
        r, all ? "/api/v1/silences?all=true" : "/api/v1/silences", "silences",
        remote_sil_cb, c);
    ctl_remote_close(r);
    return rc;
}

static int
silences_list(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct list_ctx c = {.json = o->json, .now = tc_now_ns()};
    int all = 0, rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--all") == 0) {
            all = 1;
        } else {
            silences_usage(stderr);
            return 2;
        }
    }
    tc_table_init(&c.table, silence_cols,
                  sizeof(silence_cols) / sizeof(silence_cols[0]));
    if (o->url != NULL) {
        /* Same output as below, the rows read from the API ("[" once
         * it answered: nothing on stdout when it refused). */
        if (remote_sil_list(o, all, &c) < 0) {
            if (c.json && c.n)
                fputs("\n]\n", stdout);
            goto out;
        }
        if (c.json)
            fputs(c.n ? "\n]\n" : "[]\n", stdout);
        goto print;
    }
    if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
        goto out;
    if (c.json)
        fputs("[", stdout);
    rc = incidents_store_silences(is, all, c.now, list_cb, &c);
    if (c.json)
        fputs(c.n ? "\n]\n" : "]\n", stdout);
    if (rc < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
print:
    if (!c.json)
        tc_table_print(&c.table, stdout);
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    tc_table_free(&c.table);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

static int
silences_expire(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    const char *user = ctl_default_user();
    int64_t id = 0, aid = 0;
    int result = 0, rc, status = 1, user_given = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            user = argv[++i];
            user_given = 1;
        } else if (id == 0 && ctl_parse_id(argv[i], &id) == 0) {
            continue;
        } else {
            silences_usage(stderr);
            return 2;
        }
    }
    if (id == 0) {
        silences_usage(stderr);
        return 2;
    }
    if (o->url != NULL) {
        if (user_given)
            return ctl_remote_user_refused();
        return remote_silence(o, NULL, NULL, id, 0);
    }
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    rc = incidents_store_silence_expire(is, id, tc_now_ns(), user, &aid);
    if (rc == -ENOENT || rc == -EALREADY) {
        fprintf(stderr, "tocsinctl: silence %" PRId64 ": %s\n", id,
                rc == -ENOENT ? "no such silence" : "already ended");
        goto out;
    }
    if (rc < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (ctl_wait_action(is, aid, &result) && result != 0 &&
        result != -EALREADY) {
        fprintf(stderr, "tocsinctl: silence %" PRId64 ": expire refused: %s\n",
                id, strerror(-result));
        goto out;
    }
    {
        char who[256];

        printf("silence %" PRId64 ": expired by %s\n", id,
               ctl_esc(who, sizeof(who), user));
    }
    status = 0;
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

int
ctl_silences(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        silences_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "add") == 0)
        return silences_add(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return silences_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "expire") == 0)
        return silences_expire(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        silences_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tocsinctl: silences: unknown subcommand '%s'\n", argv[1]);
    silences_usage(stderr);
    return 2;
}
