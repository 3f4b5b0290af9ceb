/*
 * ctl_tokens: "tocsinctl tokens", the HTTP API's bearer tokens
 * (docs/api.md, "Auth").
 *
 *   tocsinctl tokens create NAME --role viewer|operator|admin [--user U]
 *   tocsinctl tokens list [--all] [--json]
 *   tocsinctl tokens revoke NAME
 *
 * create prints the token once, on stdout alone (so that it can be
 * piped into a file), and stores only its SHA-256: nobody can show it
 * again, a lost token is revoked and a new one created. Tokens are
 * checked by the collector at each request, so a revoke takes effect
 * at the next request, without a reload.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctl.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "store/incidents_store.h"
#include "store/tokens_store.h"
#include "table.h"
#include "timefmt.h"
#include "token.h"
#include "util.h"

static void
tokens_usage(FILE *f)
{
    fprintf(f, "usage: tocsinctl tokens create NAME --role "
               "viewer|operator|admin [--user U] [--json]\n"
               "       tocsinctl tokens list [--all] [--json]\n"
               "       tocsinctl tokens revoke NAME\n");
}

static int
tokens_create(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'},
        {"user", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    enum token_role role = 0;
    const char *user = ctl_default_user(), *name;
    char tok[TC_TOKEN_LEN + 1];
    uint8_t hash[TC_TOKEN_HASH_LEN];
    int ch, json = o->json, status = 1, rc;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "r:u:j", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            if (token_role_parse(optarg, &role) < 0) {
                fprintf(stderr, "tocsinctl: tokens: --role: viewer, "
                                "operator or admin\n");
                return 2;
            }
            break;
        case 'u':
            user = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            tokens_usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || role == 0) {
        if (role == 0)
            fprintf(stderr, "tocsinctl: tokens create: --role is required\n");
        tokens_usage(stderr);
        return 2;
    }
    name = argv[optind];
    if (token_name_check(name) < 0) {
        fprintf(stderr,
                "tocsinctl: tokens: a name is 1 to %d of A-Z a-z 0-9 . _ -\n",
                TOKEN_NAME_MAX);
        return 2;
    }
    if (tc_token_new(tok, sizeof(tok)) < 0 ||
        tc_token_hash(tok, strlen(tok), hash) < 0) {
        log_warnx("tokens: cannot make a token (random generator failed)");
        return 1;
    }
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    if ((rc = incidents_store_token_add(is, name, role, hash, tc_now_ns(),
                                        user)) < 0) {
        log_warnx("tokens create: %s", incidents_store_errmsg(is));
        goto out;
    }
    if (json) {
        struct tc_buf b;

        tc_buf_init(&b, 4096);
        tc_json_raw(&b, "{");
        tc_json_key(&b, "name");
        tc_json_str(&b, name, strlen(name));
        tc_json_raw(&b, ",");
        tc_json_key(&b, "role");
        tc_json_raw(&b, "\"");
        tc_json_raw(&b, token_role_name(role));
        tc_json_raw(&b, "\",");
        tc_json_key(&b, "token");
        tc_json_str(&b, tok, strlen(tok));
        tc_json_raw(&b, "}\n");
        fwrite(tc_buf_head(&b), 1, tc_buf_size(&b), stdout);
        tc_buf_close(&b);
    } else {
        printf("%s\n", tok);
        fprintf(stderr,
                "tocsinctl: token '%s' (%s) created; it is shown only this "
                "once: keep it now (revoke with tocsinctl tokens revoke %s)\n",
                name, token_role_name(role), name);
    }
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    explicit_bzero(tok, sizeof(tok));
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

static const struct tc_table_col cols[] = {
    {"NAME", 0, 64}, {"ROLE", 0, 0},  {"CREATED", 0, 0},
    {"BY", 0, 32},   {"STATE", 0, 0}, {"REVOKED", 0, 0},
};

struct list_state {
    int json;
    size_t n;
    struct tc_buf out;
    struct tc_table table;
};

static int
list_cb(const struct token_row *r, void *arg)
{
    struct list_state *st = arg;
    char created[TC_RFC3339_MAX], revoked[TC_RFC3339_MAX];

    tc_rfc3339(r->created, 0, created, sizeof(created));
    revoked[0] = '\0';
    if (r->revoked_at)
        tc_rfc3339(r->revoked_at, 0, revoked, sizeof(revoked));
    if (st->json) {
        tc_json_raw(&st->out, st->n ? ",\n{" : "\n{");
        tc_json_key(&st->out, "name");
        tc_json_str(&st->out, r->name, strlen(r->name));
        tc_json_raw(&st->out, ",");
        tc_json_key(&st->out, "role");
        tc_json_str(&st->out, token_role_name(r->role),
                    strlen(token_role_name(r->role)));
        tc_json_raw(&st->out, ",");
        tc_json_key(&st->out, "created");
        tc_json_i64(&st->out, r->created);
        tc_json_raw(&st->out, ",");
        tc_json_key(&st->out, "created_iso");
        tc_json_str(&st->out, created, strlen(created));
        tc_json_raw(&st->out, ",");
        tc_json_key(&st->out, "user");
        tc_json_str(&st->out, r->user, strlen(r->user));
        tc_json_raw(&st->out, ",");
        tc_json_key(&st->out, "revoked_at");
        tc_json_i64(&st->out, r->revoked_at);
        tc_json_raw(&st->out, "}");
    } else {
        tc_table_cell(&st->table, r->name);
        tc_table_cell(&st->table, token_role_name(r->role));
        tc_table_cell(&st->table, created);
        tc_table_cell(&st->table, r->user);
        tc_table_cell(&st->table, r->revoked_at ? "revoked" : "live");
        tc_table_cell(&st->table, revoked[0] ? revoked : NULL);
    }
    st->n++;
    return 0;
}

static int
tokens_list(const struct ctl_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    struct list_state st;
    int ch, all = 0, status = 1;

    memset(&st, 0, sizeof(st));
    st.json = o->json;
    tc_buf_init(&st.out, SIZE_MAX / 2);
    tc_table_init(&st.table, cols, sizeof(cols) / sizeof(cols[0]));
    optind = 0;
    while ((ch = getopt_long(argc, argv, "aj", longopts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            all = 1;
            break;
        case 'j':
            st.json = 1;
            break;
        default:
            tokens_usage(stderr);
            status = 2;
            goto out;
        }
    }
    if (optind != argc) {
        tokens_usage(stderr);
        status = 2;
        goto out;
    }
    if (ctl_open_incidents(o, 1, &cfg, &is) < 0)
        goto out;
    if (incidents_store_tokens(is, all, list_cb, &st) < 0) {
        log_warnx("%s: %s", cfg->store_path, incidents_store_errmsg(is));
        goto out;
    }
    if (st.json) {
        tc_json_raw(&st.out, st.n ? "\n]\n" : "]\n");
        fputs("[", stdout);
        fwrite(tc_buf_head(&st.out), 1, tc_buf_size(&st.out), stdout);
    } else {
        tc_table_print(&st.table, stdout);
    }
    status = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
out:
    tc_table_free(&st.table);
    tc_buf_close(&st.out);
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

static int
tokens_revoke(const struct ctl_opts *o, int argc, char **argv)
{
    struct collector_config *cfg = NULL;
    struct incidents_store *is = NULL;
    int status = 1;

    if (argc != 2) {
        tokens_usage(stderr);
        return 2;
    }
    if (ctl_open_incidents(o, 0, &cfg, &is) < 0)
        goto out;
    if (incidents_store_token_revoke(is, argv[1], tc_now_ns()) < 0) {
        log_warnx("tokens revoke: %s", incidents_store_errmsg(is));
        goto out;
    }
    printf("token '%s' revoked\n", argv[1]);
    status = 0;
out:
    incidents_store_close(is);
    config_free(cfg);
    return status;
}

int
ctl_tokens(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        tokens_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "create") == 0)
        return tokens_create(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return tokens_list(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return tokens_revoke(o, argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        tokens_usage(stdout);
        return 0;
    }
    tokens_usage(stderr);
    return 2;
}
