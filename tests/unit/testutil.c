/*
 * testutil: helpers shared by the unit tests (see testutil.h).
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include "util.h"

char tu_tmpdir[64];           /* this test's scratch directory */
static int saved_stderr = -1; /* the real stderr while capturing */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int
tu_setup(const char *prefix)
{
    snprintf(tu_tmpdir, sizeof(tu_tmpdir), "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(tu_tmpdir) == NULL ? -1 : 0;
}

int
tu_teardown(void **state)
{
    return nftw(tu_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
tu_write_file(const char *rel, const char *text)
{
    static char path[PATH_MAX];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tu_tmpdir, rel);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
    return path;
}

void
tu_capture_begin(void)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s/stderr.txt", tu_tmpdir);
    fflush(stderr);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fd, 2) >= 0);
    close(fd);
}

char *
tu_capture_end(void)
{
    char path[PATH_MAX];
    char *buf = tc_xcalloc(1, 65536);
    FILE *fp;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    snprintf(path, sizeof(path), "%s/stderr.txt", tu_tmpdir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    (void)fread(buf, 1, 65535, fp);
    fclose(fp);
    fputs(buf, stderr); /* so a failing run shows what was logged */
    return buf;
}

/* Out of line: inlined, gcc 12 misreads hay as possibly NULL. */
__attribute__((noinline)) void
tu_assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        return;
    print_error("expected \"%s\" in:\n%s\n", needle, hay);
    fail();
}
