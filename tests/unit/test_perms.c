/*
 * Unit tests for common/perms.c: the private state directory, the
 * tightening of files left readable, and the private key check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perms.h"

static char base[64];

static const char *
p(const char *rel)
{
    static char buf[4][PATH_MAX];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", base, rel);
    return buf[i];
}

static unsigned
mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void
touch(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_umask(void **state)
{
    int fd;

    (void)state;
    tc_perms_umask();
    assert_true((fd = open(p("v"), O_WRONLY | O_CREAT, 0666)) >= 0);
    close(fd);
    assert_int_equal(mode_of(p("v")), 0600);
    assert_int_equal(mkdir(p("vd"), 0777), 0);
    assert_int_equal(mode_of(p("vd")), 0700);
}

/* The key check: the mode of the opened file, in the message. */
static void
test_key_open(void **state)
{
    static const mode_t bad[] = {0640, 0644, 0604, 0660, 0610, 0601, 0777};
    static const mode_t good[] = {0600, 0400, 0700};
    char err[256], want[64];
    int fd;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        touch(p("k.key"), bad[i]);
        err[0] = '\0';
        assert_int_equal(tc_perms_key_open(p("k.key"), err, sizeof(err)),
                         -EPERM);
        snprintf(want, sizeof(want),
                 "mode %04o allows group/other access; chmod 600 it",
                 (unsigned)bad[i]);
        assert_non_null(strstr(err, want));
        assert_non_null(strstr(err, "k.key"));
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        touch(p("k.key"), good[i]);
        fd = tc_perms_key_open(p("k.key"), err, sizeof(err));
        assert_true(fd >= 0);
        close(fd);
    }
    assert_int_equal(tc_perms_key_open(p("missing.key"), err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "missing.key"));
    /* A directory is no key, whatever its mode. */
    assert_int_equal(mkdir(p("dir.key"), 0700), 0);
    assert_int_equal(tc_perms_key_open(p("dir.key"), err, sizeof(err)),
                     -EINVAL);
    /* Judged on what was opened: through a symlink, the target's mode. */
    touch(p("target.key"), 0644);
    assert_int_equal(symlink(p("target.key"), p("link.key")), 0);
    assert_int_equal(tc_perms_key_open(p("link.key"), err, sizeof(err)),
                     -EPERM);
    assert_non_null(strstr(err, "mode 0644"));
}

static void
test_dir(void **state)
{
    char err[256];

    (void)state;
    /* Created 0700, parents included. */
    assert_int_equal(tc_perms_dir(p("a/b/state"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("a/b/state")), 0700);
    /* Pre-created wide (systemd's StateDirectory= makes 0755): tightened. */
    assert_int_equal(mkdir(p("wide"), 0700), 0);
    assert_int_equal(chmod(p("wide"), 0755), 0);
    assert_int_equal(tc_perms_dir(p("wide"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("wide")), 0700);
    assert_int_equal(chmod(p("wide"), 0750), 0);
    assert_int_equal(tc_perms_dir(p("wide"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("wide")), 0700);
    /* Shared (like /tmp): never ours to tighten. */
    assert_int_equal(mkdir(p("shared"), 0700), 0);
    assert_int_equal(chmod(p("shared"), 01777), 0);
    assert_int_equal(tc_perms_dir(p("shared"), err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "mode 1777"));
    assert_int_equal(mode_of(p("shared")), 01777);
    /* A file in the way. */
    touch(p("file"), 0600);
    assert_true(tc_perms_dir(p("file"), err, sizeof(err)) < 0);
    /* Owned by someone else: refused, left alone (needs root to set up). */
    if (geteuid() == 0) {
        assert_int_equal(mkdir(p("theirs"), 0700), 0);
        assert_int_equal(chmod(p("theirs"), 0755), 0);
        assert_int_equal(chown(p("theirs"), 65534, 65534), 0);
        assert_int_equal(tc_perms_dir(p("theirs"), err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "owned by uid 65534"));
        assert_non_null(strstr(err, "mode 0755"));
        assert_int_equal(mode_of(p("theirs")), 0755);
    }
}

/* -n's checks: the same verdicts as tc_perms_dir, nothing changed. */
static void
test_dir_check(void **state)
{
    struct stat st;
    char err[256];

    (void)state;
    /* Missing, creatable: fine, and still missing. */
    assert_int_equal(tc_perms_dir_check(p("c/d/state"), err, sizeof(err)), 0);
    assert_int_equal(stat(p("c"), &st), -1);
    /* Wide: fine (start-up tightens it), but not tightened by a check. */
    assert_int_equal(mkdir(p("cwide"), 0700), 0);
    assert_int_equal(chmod(p("cwide"), 0755), 0);
    assert_int_equal(tc_perms_dir_check(p("cwide"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("cwide")), 0755);
    /* Shared: refused as tc_perms_dir refuses it. */
    assert_int_equal(mkdir(p("cshared"), 0700), 0);
    assert_int_equal(chmod(p("cshared"), 01777), 0);
    assert_int_equal(tc_perms_dir_check(p("cshared"), err, sizeof(err)),
                     -EPERM);
    assert_non_null(strstr(err, "mode 1777"));
    /* A file in the way, as the directory or as an ancestor. */
    touch(p("cfile"), 0600);
    assert_int_equal(tc_perms_dir_check(p("cfile"), err, sizeof(err)),
                     -ENOTDIR);
    assert_non_null(strstr(err, "not a directory"));
    assert_int_equal(tc_perms_dir_check(p("cfile/x/y"), err, sizeof(err)),
                     -ENOTDIR);
    assert_non_null(strstr(err, "cfile is not a directory"));
    /* Not writable (root writes anywhere: only as a user). */
    if (geteuid() != 0) {
        assert_int_equal(mkdir(p("cro"), 0500), 0);
        assert_true(tc_perms_dir_check(p("cro/state"), err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "cannot create it"));
        assert_true(tc_perms_dir_check(p("cro"), err, sizeof(err)) < 0);
    }
    /* Database files: missing is fine, a directory is not. */
    assert_int_equal(tc_perms_file_check(p("nodb"), err, sizeof(err)), 0);
    assert_int_equal(tc_perms_file_check(p("cwide"), err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(tc_perms_file_check(p("cfile"), err, sizeof(err)), 0);
}

static void
test_tighten(void **state)
{
    char err[256];

    (void)state;
    touch(p("db"), 0644);
    touch(p("db-wal"), 0664);
    touch(p("db-shm"), 0600);
    assert_int_equal(tc_perms_tighten_db(p("db"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("db")), 0600);
    assert_int_equal(mode_of(p("db-wal")), 0600);
    assert_int_equal(mode_of(p("db-shm")), 0600);
    /* Missing files are fine; owner bits are kept as they were. */
    touch(p("ro"), 0444);
    assert_int_equal(tc_perms_tighten(p("ro"), err, sizeof(err)), 0);
    assert_int_equal(mode_of(p("ro")), 0400);
    assert_int_equal(tc_perms_tighten(p("none"), err, sizeof(err)), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_umask),   cmocka_unit_test(test_key_open),
        cmocka_unit_test(test_dir),     cmocka_unit_test(test_dir_check),
        cmocka_unit_test(test_tighten),
    };
    char cmd[128];
    int rc;

    snprintf(base, sizeof(base), "/tmp/tocsin-perms-XXXXXX");
    if (mkdtemp(base) == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
