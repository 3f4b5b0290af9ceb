/*
 * perms: private files and directories, private keys; see perms.h.
 */
#include "perms.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Permission bits only, for messages: 0644, 0755, 1777. */
#define MODE_BITS(m) ((unsigned)((m)&07777))

void
tc_perms_umask(void)
{
    (void)umask(077);
}

/*
 * Judge a state directory from its stat: 0 fine, 1 private enough to
 * tighten to 0700, or -EPERM (err says why) if it is another user's or
 * shared. Shared by tc_perms_dir and tc_perms_dir_check so that -n says
 * what start-up would.
 */
static int
dir_judge(const char *path, const struct stat *st, char *err, size_t errlen)
{
    /*
     * Whoever owns the directory can replace the files in it (a spool
     * by a symlink to /etc/shadow, say): it must be ours.
     */
    if (st->st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s: owned by uid %u (mode %04o), not by this process's "
                 "uid %u; give it to that user (chown) or use another "
                 "directory",
                 path, (unsigned)st->st_uid, MODE_BITS(st->st_mode),
                 (unsigned)geteuid());
        return -EPERM;
    }
    if ((st->st_mode & 077) == 0)
        return 0;
    /* /tmp and its kind belong to everyone, whoever owns them. */
    if (st->st_mode & (S_ISVTX | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s: mode %04o: a shared directory; use a directory of "
                 "its own",
                 path, MODE_BITS(st->st_mode));
        return -EPERM;
    }
    return 1;
}

int
tc_perms_dir(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc = 0;

    if ((rc = tc_mkdirs(path, 0700)) < 0) {
        snprintf(err, errlen, "%s: cannot create it: %s", path, strerror(-rc));
        return rc;
    }
    /* A symlinked state directory is a common setup: follow it, then
     * judge what was opened. */
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = dir_judge(path, &st, err, errlen)) <= 0)
        goto out;
    rc = 0;
    if (fchmod(fd, 0700) < 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "%s: mode %04o allows group/other access and "
                 "cannot be tightened: %s",
                 path, MODE_BITS(st.st_mode), strerror(errno));
        goto out;
    }
    log_info("%s: mode %04o allowed group/other access; tightened to 0700",
             path, MODE_BITS(st.st_mode));
out:
    close(fd);
    return rc;
}

int
tc_perms_dir_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *anc;
    int rc;

    if (path[0] == '\0') {
        snprintf(err, errlen, "empty path");
        return -ENOENT;
    }
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: not a directory", path);
            return -ENOTDIR;
        }
        if ((rc = dir_judge(path, &st, err, errlen)) < 0)
            return rc;
        if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return rc;
        }
        return 0;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    /* Missing: tc_mkdirs would create it from its nearest ancestor. */
    anc = tc_xstrdup(path);
    for (;;) {
        char *slash = strrchr(anc, '/');

        while (slash != NULL && slash != anc && slash[1] == '\0') {
            *slash = '\0'; /* trailing slashes */
            slash = strrchr(anc, '/');
        }
        if (slash == NULL)
            snprintf(anc, strlen(anc) + 1, ".");
        else if (slash == anc)
            anc[1] = '\0'; /* "/" */
        else
            *slash = '\0';
        if (stat(anc, &st) == 0)
            break;
        if ((errno != ENOENT && errno != ENOTDIR) || strcmp(anc, ".") == 0 ||
            strcmp(anc, "/") == 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: cannot create it: %s: %s", path, anc,
                     strerror(errno));
            goto out;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: cannot create it: %s is not a directory",
                 path, anc);
        rc = -ENOTDIR;
    } else if (faccessat(AT_FDCWD, anc, W_OK | X_OK, AT_EACCESS) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot create it in %s: %s", path, anc,
                 strerror(errno));
    } else {
        rc = 0;
    }
out:
    free(anc);
    return rc;
}

int
tc_perms_file_check(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    return 0;
}

int
tc_perms_tighten(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc = 0;

    /* O_NONBLOCK: whatever sits there, opening it must not hang. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) == 0)
        goto out;
    if (fchmod(fd, st.st_mode & 0700) < 0) {
        rc = -errno;
        snprintf(err, errlen,
                 "%s: mode %04o allows group/other access and "
                 "cannot be tightened: %s",
                 path, MODE_BITS(st.st_mode), strerror(errno));
        goto out;
    }
    log_info("%s: mode %04o allowed group/other access; tightened to %04o",
             path, MODE_BITS(st.st_mode), MODE_BITS(st.st_mode & 0700));
out:
    close(fd);
    return rc;
}

int
tc_perms_tighten_db(const char *path, char *err, size_t errlen)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    int rc = 0;

    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && rc == 0; i++) {
        char *p = tc_xasprintf("%s%s", path, sfx[i]);

        rc = tc_perms_tighten(p, err, errlen);
        free(p);
    }
    return rc;
}

int
tc_perms_key_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        rc = -EINVAL;
        goto fail;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s: mode %04o allows group/other access; chmod 600 it", path,
                 MODE_BITS(st.st_mode));
        rc = -EPERM;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}
