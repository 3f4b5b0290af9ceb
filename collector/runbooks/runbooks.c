/*
 * runbooks: load a runbook directory into an immutable set (see
 * runbooks.h and docs/runbooks.md).
 *
 * The directory is an input like a config file, but one that several
 * people edit: each file is judged alone, and one that is refused is
 * logged and skipped while the others load. Files are opened relative
 * to the directory's descriptor with O_NOFOLLOW and O_NONBLOCK and
 * judged on that descriptor: a symbolic link (which could point at
 * /etc/shadow), a FIFO (which would block the loop), a device or a
 * file over RUNBOOK_MAX_BYTES is refused before a byte is read, and the
 * read itself stops one byte past the cap, so a file that grows between
 * fstat and read is still refused.
 */
#include "runbooks/runbooks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "util.h"

struct runbook_set *
runbooks_empty(void)
{
    struct runbook_set *s = tc_xcalloc(1, sizeof(*s));

    atomic_init(&s->refs, 1);
    s->dir = tc_xstrdup("");
    s->hash = TC_HASH64_INIT;
    return s;
}

struct runbook_set *
runbook_set_ref(struct runbook_set *s)
{
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void
runbook_set_unref(struct runbook_set *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        runbook_free(&s->v[i]);
    free(s->v);
    for (size_t i = 0; i < s->nskipped; i++) {
        free(s->skipped[i].file);
        free(s->skipped[i].error);
    }
    free(s->skipped);
    free(s->dir);
    free(s->blob);
    free(s);
}

static int rb_cmp(const void *a, const void *b);
static void skip(struct runbook_set *s, const char *path, const char *why);

/* Append a 4-byte big-endian length and the bytes to s->blob. */
static void
blob_put(struct runbook_set *s, const void *p, size_t len)
{
    uint8_t *b;

    s->blob = tc_xrealloc(s->blob, s->bloblen + 4 + len);
    b = s->blob + s->bloblen;
    b[0] = (uint8_t)(len >> 24);
    b[1] = (uint8_t)(len >> 16);
    b[2] = (uint8_t)(len >> 8);
    b[3] = (uint8_t)len;
    if (len > 0)
        memcpy(b + 4, p, len);
    s->bloblen += 4 + len;
}

/*
 * rb (parsed from path; name is its file name) into s unless its id is
 * taken; with data, also its bytes into s->blob. 0, or -1 (skipped,
 * logged).
 */
static int
set_add(struct runbook_set *s, struct runbook *rb, const char *path,
        const char *name, const char *data, size_t len)
{
    char why[1024];
    size_t j;

    for (j = 0; j < s->n && strcmp(s->v[j].id, rb->id) != 0; j++)
        ;
    if (j < s->n) {
        snprintf(why, sizeof(why), "%s:1: id %s already used by %s", path,
                 rb->id, s->v[j].file);
        log_warnx("runbooks: %s", why);
        skip(s, path, why);
        runbook_free(rb);
        return -1;
    }
    s->v = tc_xreallocarray(s->v, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = *rb;
    blob_put(s, name, strlen(name));
    blob_put(s, data, len);
    return 0;
}

/* Sort s->v (best first) and hash the set. */
static void
set_finish(struct runbook_set *s)
{
    if (s->n > 1) /* s->v is NULL in an empty set */
        tc_qsort(s->v, s->n, sizeof(*s->v), rb_cmp);
    s->hash = TC_HASH64_INIT;
    for (size_t i = 0; i < s->n; i++) {
        uint8_t h[8];

        for (int b = 0; b < 8; b++)
            h[b] = (uint8_t)(s->v[i].hash >> (8 * b));
        s->hash = tc_hash64_add(s->hash, s->v[i].id, strlen(s->v[i].id) + 1);
        s->hash = tc_hash64_add(s->hash, h, sizeof(h));
    }
}

static void
skip(struct runbook_set *s, const char *path, const char *why)
{
    s->skipped =
        tc_xreallocarray(s->skipped, s->nskipped + 1, sizeof(*s->skipped));
    s->skipped[s->nskipped].file = tc_xstrdup(path);
    s->skipped[s->nskipped++].error = tc_xstrdup(why);
}

static const char *
type_name(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    return "not a regular file";
}

/*
 * Read name (in dfd) into *data (owned) and *len, or say why not in
 * why ("PATH: ..."). 0 or -1.
 */
static int
read_file(int dfd, const char *name, const char *path, char **data, size_t *len,
          char *why, size_t whylen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1;

    *data = NULL;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, whylen,
                 "%s: a symbolic link, refused: runbooks are regular files "
                 "in the directory itself",
                 path);
        return -1;
    }
    /* Not even opened: a device's open can have effects of its own. */
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s: %s, refused: runbooks are regular files",
                 path, type_name(st.st_mode));
        return -1;
    }
    /* O_NOFOLLOW: the link check above could be raced; this cannot.
     * O_NONBLOCK: opening a FIFO swapped in meanwhile does not wait. */
    fd = openat(dfd, name,
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", path,
                 errno == ELOOP ? "a symbolic link, refused" : strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s: %s, refused: runbooks are regular files",
                 path, type_name(st.st_mode));
        goto fail;
    }
    /* Anyone could then decide what agents are told to do. */
    if (st.st_mode & S_IWOTH) {
        snprintf(why, whylen, "%s: writable by every user (mode %04o), refused",
                 path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if (st.st_size > (off_t)RUNBOOK_MAX_BYTES) {
        snprintf(why, whylen, "%s: %lld bytes, refused: at most %u", path,
                 (long long)st.st_size, RUNBOOK_MAX_BYTES);
        goto fail;
    }
    buf = tc_xmalloc(RUNBOOK_MAX_BYTES + 1);
    while (n < RUNBOOK_MAX_BYTES + 1) {
        ssize_t r = read(fd, buf + n, RUNBOOK_MAX_BYTES + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "%s: read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > RUNBOOK_MAX_BYTES) {
        snprintf(why, whylen, "%s: grew past %u bytes while read, refused",
                 path, RUNBOOK_MAX_BYTES);
        goto fail;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Priority high first, then id: the first match is the best. */
static int
rb_cmp(const void *a, const void *b)
{
    const struct runbook *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The *.md names in dir (not hidden), sorted. -errno (logged). */
static int
list_dir(int dfd, const char *dir, char ***names, size_t *n)
{
    DIR *d;
    struct dirent *de;
    int fd = dup(dfd);

    *names = NULL;
    *n = 0;
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        log_warnx("runbooks: %s: %s", dir, strerror(e));
        return -e;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (de->d_name[0] == '.' || len <= 3 ||
            strcmp(de->d_name + len - 3, ".md") != 0)
            continue;
        *names = tc_xreallocarray(*names, *n + 1, sizeof(**names));
        (*names)[(*n)++] = tc_xstrdup(de->d_name);
    }
    closedir(d);
    tc_qsort(*names, *n, sizeof(**names), name_cmp);
    return 0;
}

int
runbooks_load(const char *dir, struct runbook_set **out)
{
    struct runbook_set *s = NULL;
    char **names = NULL;
    size_t nnames = 0;
    int dfd, rc;

    *out = NULL;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        log_warnx("runbooks.dir %s: %s", dir,
                  rc == -ENOENT    ? "no such directory"
                  : rc == -ENOTDIR ? "not a directory"
                                   : strerror(-rc));
        return rc;
    }
    if ((rc = list_dir(dfd, dir, &names, &nnames)) < 0)
        goto out;
    s = runbooks_empty();
    free(s->dir);
    s->dir = tc_xstrdup(dir);
    for (size_t i = 0; i < nnames; i++) {
        char *path = tc_xasprintf("%s/%s", dir, names[i]);
        char why[1024], *data = NULL, *id;
        size_t len = 0;
        struct runbook rb;

        if (i >= RUNBOOK_MAX_FILES) {
            snprintf(why, sizeof(why),
                     "%s: more than %d runbook files in the directory, "
                     "refused",
                     path, RUNBOOK_MAX_FILES);
            if (i == RUNBOOK_MAX_FILES)
                log_warnx("runbooks: %s: more than %d *.md files: %zu "
                          "skipped, from %s on",
                          dir, RUNBOOK_MAX_FILES, nnames - i, names[i]);
            skip(s, path, why);
            free(path);
            continue;
        }
        if (read_file(dfd, names[i], path, &data, &len, why, sizeof(why)) < 0) {
            log_warnx("runbooks: %s", why);
            skip(s, path, why);
            free(path);
            continue;
        }
        id = tc_xstrndup(names[i], strlen(names[i]) - 3);
        rc = runbook_parse(path, id, data, len, &rb, why, sizeof(why));
        free(id);
        if (rc < 0) {
            free(data);
            skip(s, path, why);
            free(path);
            continue;
        }
        (void)set_add(s, &rb, path, names[i], data, len);
        free(data);
        free(path);
    }
    set_finish(s);
    log_info("runbooks: %zu loaded from %s, %zu skipped (set %016" PRIx64 ")",
             s->n, dir, s->nskipped, s->hash);
    *out = s;
    s = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    runbook_set_unref(s);
    close(dfd);
    return rc;
}

/* A 4-byte big-endian length and that many bytes at *p; -1 if cut. */
static int
blob_get(const uint8_t **p, const uint8_t *end, const char **out, size_t *len)
{
    size_t n;

    if (end - *p < 4)
        return -1;
    n = (size_t)(*p)[0] << 24 | (size_t)(*p)[1] << 16 | (size_t)(*p)[2] << 8 |
        (size_t)(*p)[3];
    *p += 4;
    if ((size_t)(end - *p) < n)
        return -1;
    *out = (const char *)*p;
    *len = n;
    *p += n;
    return 0;
}

int
runbooks_from_blob(const void *blob, size_t len, struct runbook_set **out)
{
    const uint8_t *p = blob, *end = p;
    struct runbook_set *s = runbooks_empty();

    *out = NULL;
    /* SQLite hands an empty blob over as NULL. */
    if (p != NULL)
        end = p + len;
    while (p < end) {
        const char *name, *data;
        size_t nlen, dlen;
        char why[1024], *path, *id = NULL;
        struct runbook rb;

        if (blob_get(&p, end, &name, &nlen) < 0 ||
            blob_get(&p, end, &data, &dlen) < 0 || nlen == 0 ||
            memchr(name, '\0', nlen) != NULL) {
            runbook_set_unref(s);
            return -EINVAL;
        }
        path = tc_xstrndup(name, nlen);
        if (nlen > 3 && strcmp(path + nlen - 3, ".md") == 0)
            id = tc_xstrndup(path, nlen - 3);
        if (runbook_parse(path, id, data, dlen, &rb, why, sizeof(why)) < 0)
            skip(s, path, why);
        else
            (void)set_add(s, &rb, path, path, data, dlen);
        free(id);
        free(path);
    }
    set_finish(s);
    *out = s;
    return 0;
}
