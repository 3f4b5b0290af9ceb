/*
 * ctl_remote: tocsinctl --url, a client of the collector's HTTP API;
 * see ctl_remote.h. The token is read from a file and only ever goes
 * into the Authorization header: never into a URL, a message or a log.
 */
#include "cli/ctl_remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "perms.h"
#include "util.h"

/* A token is tct_ and 43 base64url characters; room for longer ones. */
#define TOKEN_MAX 512
/* The largest answer read: a page of 500 incidents is far below. */
#define ANSWER_MAX (64u << 20)
#define CONNECT_TIMEOUT_S 10L
#define TIMEOUT_S 60L

struct ctl_remote {
    CURL *curl;
    char *base;              /* "https://host:port", no trailing slash; owned */
    char *host;              /* for messages; owned */
    char *cacert;            /* NULL: the system CAs; owned */
    struct curl_slist *hdrs; /* Authorization (holds the token); owned */
    struct curl_slist *post_hdrs; /* the same and Content-Type; owned */
    char *body;                   /* the answer being read; owned */
    size_t len;
    int toobig;
    int quiet; /* a 404 or 409 is the caller's to say (*_one) */
};

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
    struct ctl_remote *r = arg;
    size_t add = size * n;

    if (r->len + add > ANSWER_MAX) {
        r->toobig = 1;
        return 0;
    }
    r->body = tc_xrealloc(r->body, r->len + add + 1);
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/*
 * The token from path: a regular file of ours that group and others
 * may not read (as ssh keys), one line of printable ASCII (it goes
 * into a header: no CR, LF or space). 0, or -1 with the path named.
 */
static int
read_token(const char *path, char *tok, size_t len)
{
    char err[512];
    struct stat st;
    ssize_t n;
    int fd, rc = -1;

    if ((fd = tc_perms_key_open(path, err, sizeof(err))) < 0) {
        fprintf(stderr, "tocsinctl: --token-file %s\n", err);
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
        fprintf(stderr,
                "tocsinctl: --token-file %s: not owned by this user; "
                "refusing it\n",
                path);
        goto out;
    }
    n = read(fd, tok, len - 1);
    if (n < 0) {
        fprintf(stderr, "tocsinctl: --token-file %s: %s\n", path,
                strerror(errno));
        goto out;
    }
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
        tok[--n] = '\0';
    if (n == 0 || (size_t)n >= len - 2) {
        fprintf(stderr, "tocsinctl: --token-file %s: %s\n", path,
                n == 0 ? "empty" : "too long for a token");
        goto out;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (tok[i] < 0x21 || tok[i] > 0x7e) {
            fprintf(stderr,
                    "tocsinctl: --token-file %s: not a token (one line of "
                    "printable characters)\n",
                    path);
            goto out;
        }
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

/* base and host from --url: https://HOST[:PORT][/], nothing else. */
static int
parse_url(struct ctl_remote *r, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL,
         *query = NULL, *frag = NULL;
    int rc = -1;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto bad;
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    (void)curl_url_get(u, CURLUPART_USER, &user, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    (void)curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if (strcmp(scheme, "https") != 0) {
        fprintf(stderr, "tocsinctl: --url: https only (the token must not "
                        "travel in clear)\n");
        goto out;
    }
    if (user != NULL || query != NULL || frag != NULL ||
        (path != NULL && strcmp(path, "/") != 0 && path[0] != '\0'))
        goto bad;
    r->host = tc_xstrdup(host);
    r->base = tc_xmalloc(strlen(host) + 32);
    sprintf(r->base, "https://%s%s%s", host, port ? ":" : "", port ? port : "");
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "tocsinctl: --url: https://HOST[:PORT] expected\n");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(user);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

int
ctl_remote_open(const struct ctl_opts *o, struct ctl_remote **out)
{
    struct ctl_remote *r = tc_xcalloc(1, sizeof(*r));
    char tok[TOKEN_MAX], hdr[TOKEN_MAX + 32];

    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tocsinctl: libcurl does not start\n");
        free(r);
        return -1;
    }
    if (parse_url(r, o->url) < 0)
        goto fail;
    if (o->token_file == NULL) {
        fprintf(stderr, "tocsinctl: --url needs --token-file FILE\n");
        goto fail;
    }
    if (o->cacert != NULL) {
        r->cacert = tc_xstrdup(o->cacert);
    } else if (o->config_given) {
        /* The collector's own CA: the one its certificate chains to. */
        struct collector_config *cfg = NULL;

        if (config_load(o->config, &cfg) < 0)
            goto fail;
        r->cacert = tc_xstrdup(cfg->tls_ca);
        config_free(cfg);
    }
    if (read_token(o->token_file, tok, sizeof(tok)) < 0)
        goto fail;
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
    explicit_bzero(tok, sizeof(tok));
    r->hdrs = curl_slist_append(NULL, hdr);
    r->post_hdrs = curl_slist_append(NULL, hdr);
    explicit_bzero(hdr, sizeof(hdr));
    if (r->post_hdrs != NULL)
        r->post_hdrs =
            curl_slist_append(r->post_hdrs, "Content-Type: application/json");
    if (r->hdrs == NULL || r->post_hdrs == NULL ||
        (r->curl = curl_easy_init()) == NULL) {
        fprintf(stderr, "tocsinctl: out of memory\n");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    ctl_remote_close(r);
    return -1;
}

void
ctl_remote_close(struct ctl_remote *r)
{
    if (r == NULL)
        return;
    if (r->curl != NULL)
        curl_easy_cleanup(r->curl);
    /* The header holds the token: wipe it before it is freed. */
    for (struct curl_slist *h = r->hdrs; h != NULL; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    for (struct curl_slist *h = r->post_hdrs; h != NULL; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(r->hdrs);
    curl_slist_free_all(r->post_hdrs);
    free(r->base);
    free(r->host);
    free(r->cacert);
    free(r->body);
    free(r);
    curl_global_cleanup();
}

const char *
ctl_remote_host(const struct ctl_remote *r)
{
    return r->host;
}

char *
ctl_remote_escape(struct ctl_remote *r, const char *s)
{
    char *e = curl_easy_escape(r->curl, s, 0);
    char *copy = tc_xstrdup(e ? e : "");

    curl_free(e);
    return copy;
}

/* "tocsinctl: HOST: 403 this needs the operator role", the API's text
 * escaped (it comes from the peer). */
static void
print_api_error(const struct ctl_remote *r, long status)
{
    json_t *doc = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(doc, "error"));
    char h[512], esc[1024];

    fprintf(stderr, "tocsinctl: %s: %ld %s\n", ctl_esc(h, sizeof(h), r->host),
            status, msg ? ctl_esc(esc, sizeof(esc), msg) : "(no JSON error)");
    json_decref(doc);
}

static int
request(struct ctl_remote *r, const char *path, const char *post, json_t **doc,
        long *status)
{
    char errbuf[CURL_ERROR_SIZE] = "", esc[512];
    char *url = tc_xmalloc(strlen(r->base) + strlen(path) + 1);
    json_error_t je;
    CURLcode cc;
    CURL *c = r->curl;

    *doc = NULL;
    *status = 0;
    strcpy(url, r->base);
    strcat(url, path);
    free(r->body);
    r->body = NULL;
    r->len = 0;
    r->toobig = 0;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (r->cacert != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->cacert);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, post ? r->post_hdrs : r->hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tocsinctl/" TOCSIN_VERSION);
    if (post != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
    }
    cc = curl_easy_perform(c);
    free(url);
    if (cc != CURLE_OK) {
        fprintf(stderr, "tocsinctl: %s: %s\n",
                ctl_esc(esc, sizeof(esc), r->host),
                r->toobig   ? "answer too large"
                : errbuf[0] ? errbuf
                            : curl_easy_strerror(cc));
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (*status < 200 || *status > 299) {
        if ((*status != 404 && *status != 409) || !r->quiet)
            print_api_error(r, *status);
        return -1;
    }
    /* Counts above 2^63 - 1 come as reals (as the API writes them);
     * an event's strings may hold NUL (\u0000), kept with its length. */
    *doc = json_loadb(r->body ? r->body : "", r->len, JSON_ALLOW_NUL, &je);
    if (*doc == NULL)
        *doc = json_loadb(r->body ? r->body : "", r->len,
                          JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    if (*doc == NULL || !json_is_object(*doc)) {
        fprintf(stderr, "tocsinctl: %s: %ld answer is not a JSON object\n",
                ctl_esc(esc, sizeof(esc), r->host), *status);
        json_decref(*doc);
        *doc = NULL;
        return -1;
    }
    return 0;
}

int
ctl_remote_get(struct ctl_remote *r, const char *path, json_t **doc,
               long *status)
{
    return request(r, path, NULL, doc, status);
}

int
ctl_remote_get_one(struct ctl_remote *r, const char *path, json_t **doc)
{
    long status;
    int rc;

    r->quiet = 1;
    rc = request(r, path, NULL, doc, &status);
    r->quiet = 0;
    return rc < 0 && status == 404 ? -ENOENT : rc;
}

int
ctl_remote_post_one(struct ctl_remote *r, const char *path, json_t *body,
                    json_t **doc, long *status)
{
    int rc;

    r->quiet = 1;
    rc = ctl_remote_post(r, path, body, doc, status);
    r->quiet = 0;
    return rc;
}

int
ctl_remote_post(struct ctl_remote *r, const char *path, json_t *body,
                json_t **doc, long *status)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : tc_xstrdup("");
    int rc;

    if (s == NULL) {
        fprintf(stderr, "tocsinctl: out of memory\n");
        return -1;
    }
    rc = request(r, path, s, doc, status);
    free(s);
    return rc;
}

/*
 * Integer members. When an object holds a count above 2^63 - 1 the API
 * writes all its numbers as reals (api_handlers.c parse_obj): taken as
 * the nearest integer then, rather than refusing the page.
 */
static int
get_i64(json_t *o, const char *key, int64_t *v)
{
    json_t *j = json_object_get(o, key);

    if (json_is_integer(j))
        *v = (int64_t)json_integer_value(j);
    else if (json_is_real(j) && json_real_value(j) > -9.2e18 &&
             json_real_value(j) < 9.2e18)
        *v = (int64_t)json_real_value(j);
    else
        return -EINVAL;
    return 0;
}

static int
get_str(json_t *o, const char *key, const char **v)
{
    *v = json_string_value(json_object_get(o, key));
    return *v ? 0 : -EINVAL;
}

static int
get_bool(json_t *o, const char *key, int *v)
{
    json_t *j = json_object_get(o, key);

    if (!json_is_boolean(j))
        return -EINVAL;
    *v = json_is_true(j);
    return 0;
}

int
ctl_remote_incident(json_t *o, struct incident *in, struct problem_mark *m,
                    int *has_mark, struct view_silence *sil, int *has_sil)
{
    const char *state, *sev, *fp;
    json_t *j, *s;
    int64_t v = 0;
    int rc = 0;

    memset(in, 0, sizeof(*in));
    memset(m, 0, sizeof(*m));
    memset(sil, 0, sizeof(*sil));
    *has_mark = *has_sil = 0;
    if (!json_is_object(o))
        return -EINVAL;
    rc |= get_i64(o, "id", &in->id);
    rc |= get_str(o, "state", &state);
    rc |= get_str(o, "severity", &sev);
    rc |= get_str(o, "host", (const char **)&in->host);
    rc |= get_str(o, "kind", (const char **)&in->kind);
    rc |= get_str(o, "rule", (const char **)&in->rule);
    rc |= get_str(o, "service", (const char **)&in->service);
    rc |= get_str(o, "fingerprint", &fp);
    if (rc != 0 || incident_state_parse(state, &in->state) < 0 ||
        tc_severity_parse(sev, &in->severity) < 0)
        return -EINVAL;
    rc |= get_i64(o, "priority", &v);
    in->priority = (int)v;
    j = json_object_get(o, "count");
    if (json_is_integer(j))
        in->count = (uint64_t)json_integer_value(j);
    else if (json_is_real(j) && json_real_value(j) >= 0 &&
             json_real_value(j) < 1.8e19)
        in->count = (uint64_t)json_real_value(j);
    else
        rc = -EINVAL;
    rc |= get_i64(o, "first_seen", &in->first_seen);
    rc |= get_i64(o, "last_seen", &in->last_seen);
    rc |= get_i64(o, "opened_at", &in->opened_at);
    rc |= get_i64(o, "acked_at", &in->acked_at);
    rc |= get_i64(o, "resolved_at", &in->resolved_at);
    rc |= get_i64(o, "closed_at", &in->closed_at);
    rc |= get_i64(o, "reopened", &v);
    in->reopened = (uint32_t)v;
    rc |= get_bool(o, "tier1", &in->tier1);
    rc |= get_i64(o, "silenced", &in->silenced);
    rc |= get_bool(o, "flapping", &in->flapping);
    s = json_object_get(o, "silence");
    if (rc == 0 && json_is_object(s)) {
        int known = 0;

        rc |= get_bool(s, "known", &known);
        if (known) {
            sil->id = in->silenced;
            rc |= get_i64(s, "starts_at", &sil->starts_at);
            rc |= get_i64(s, "ends_at", &sil->ends_at);
            rc |= get_bool(s, "expired", &sil->expired);
            rc |= get_str(s, "matchers", &sil->matchers);
            rc |= get_str(s, "user", &sil->user);
            rc |= get_str(s, "comment", &sil->comment);
            *has_sil = rc == 0;
        }
    }
    j = json_object_get(o, "problem");
    if (rc == 0 && j != NULL) {
        m->incident_id = in->id;
        if (!json_is_null(j))
            rc |= get_i64(o, "problem", &m->problem_id);
        rc |= get_bool(o, "inhibited", &m->inhibited);
        *has_mark = 1;
    }
    if (rc != 0)
        return -EINVAL;
    /* The view prints what follows the host's "\x1f": put one back. */
    in->fingerprint = tc_xmalloc(strlen(fp) + 2);
    in->fingerprint[0] = '\x1f';
    strcpy(in->fingerprint + 1, fp);
    return 0;
}

int
ctl_remote_pages(struct ctl_remote *r, const char *path, const char *key,
                 int (*cb)(json_t *item, void *arg), void *arg)
{
    char *cursor = NULL, *url, esc[256];
    json_t *doc = NULL;
    long status;
    int rc = -1;

    for (;;) {
        json_t *items, *item, *next;
        size_t i, len = strlen(path) + (cursor ? strlen(cursor) : 0) + 16;

        url = tc_xmalloc(len);
        if (cursor != NULL)
            snprintf(url, len, "%s%ccursor=%s", path,
                     strchr(path, '?') ? '&' : '?', cursor);
        else
            snprintf(url, len, "%s", path);
        rc = ctl_remote_get(r, url, &doc, &status);
        free(url);
        if (rc < 0)
            goto out;
        rc = -1;
        items = json_object_get(doc, key);
        next = json_object_get(doc, "next_cursor");
        if (!json_is_array(items) ||
            (next && !json_is_null(next) && !json_is_string(next)))
            goto bad;
        json_array_foreach(items, i, item)
        {
            int crc = cb(item, arg);

            if (crc == -EINVAL)
                goto bad;
            if (crc < 0)
                goto out;
        }
        free(cursor);
        cursor = NULL;
        if (!json_is_string(next))
            break;
        /* The API's opaque cursor, escaped all the same. */
        cursor = ctl_remote_escape(r, json_string_value(next));
        json_decref(doc);
        doc = NULL;
    }
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "tocsinctl: %s: a %s page not as the API writes it\n",
            ctl_esc(esc, sizeof(esc), r->host), key);
out:
    free(cursor);
    json_decref(doc);
    return rc;
}

/* A time that is null until it happens: 0 then. */
static int
get_time(json_t *o, const char *key, int64_t *v)
{
    if (json_is_null(json_object_get(o, key))) {
        *v = 0;
        return 0;
    }
    return get_i64(o, key, v);
}

int
ctl_remote_problem(json_t *o, struct ctl_remote_problem *rp)
{
    struct problem *p = &rp->p;
    const char *state;
    json_t *inc, *hosts, *j, *root;
    size_t i;
    int rc = 0;

    memset(rp, 0, sizeof(*rp));
    if (!json_is_object(o))
        return -EINVAL;
    rc |= get_i64(o, "id", &p->id);
    rc |= get_str(o, "state", &state);
    rc |= get_str(o, "title", (const char **)&p->title);
    rc |= get_str(o, "rule", (const char **)&p->rule);
    rc |= get_str(o, "key", (const char **)&p->key);
    rc |= get_i64(o, "root_incident", &p->root_incident);
    rc |= get_time(o, "opened_at", &p->opened_at);
    rc |= get_time(o, "resolved_at", &p->resolved_at);
    rc |= get_time(o, "closed_at", &p->closed_at);
    root = json_object_get(o, "root_cause");
    inc = json_object_get(o, "incidents");
    hosts = json_object_get(o, "hosts");
    if (rc != 0 || problem_state_parse(state, &p->state) < 0 ||
        !json_is_array(inc) || !json_is_array(hosts) ||
        !(json_is_null(root) || json_is_string(root)))
        return -EINVAL;
    p->root_host =
        (char *)(json_is_string(root) ? json_string_value(root) : "");
    rp->incidents = tc_xcalloc(json_array_size(inc) + 1, sizeof(int64_t));
    rp->hosts = tc_xcalloc(json_array_size(hosts) + 1, sizeof(char *));
    json_array_foreach(inc, i, j)
    {
        if (!json_is_integer(j))
            goto bad;
        rp->incidents[rp->nincidents++] = json_integer_value(j);
    }
    json_array_foreach(hosts, i, j)
    {
        if (!json_is_string(j))
            goto bad;
        rp->hosts[rp->nhosts++] = json_string_value(j);
    }
    return 0;
bad:
    ctl_remote_problem_free(rp);
    return -EINVAL;
}

void
ctl_remote_problem_free(struct ctl_remote_problem *rp)
{
    free(rp->incidents);
    free(rp->hosts);
    free(rp->p.factors);
    free(rp->p.reviews);
    rp->incidents = NULL;
    rp->hosts = NULL;
    rp->p.factors = NULL;
    rp->p.reviews = NULL;
}

/* The member readers above, for ctl_remote_obj.c. */
int
ctl_remote_i64(json_t *o, const char *key, int64_t *v)
{
    return get_i64(o, key, v);
}

int
ctl_remote_str(json_t *o, const char *key, const char **v)
{
    return get_str(o, key, v);
}

int
ctl_remote_bool(json_t *o, const char *key, int *v)
{
    return get_bool(o, key, v);
}

int
ctl_remote_time(json_t *o, const char *key, int64_t *v)
{
    return get_time(o, key, v);
}

int
ctl_remote_user_refused(void)
{
    fprintf(stderr, "tocsinctl: --user: not with --url (the token's name is "
                    "the user)\n");
    return 2;
}
