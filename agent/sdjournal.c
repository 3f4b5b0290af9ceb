/*
 * sdjournal: the part of libsystemd's sd-journal API that journal.c
 * uses, with libsystemd loaded by dlopen when a journal is first opened.
 *
 * Why: linking libsystemd maps it and its own dependencies (libgcrypt,
 * libgpg-error, liblzma, libzstd, liblz4, libcap) into every agent and
 * runs their relocations at start, although most agents only follow
 * files. On the idle benchmark (bench/README.md: 100 files, 20 checks,
 * no journal input) that was 0.8 MiB of the agent's 11.4 MiB RSS, of
 * which 0.13 MiB private. Loaded on demand, the cost stays with the
 * agents that read the journal, and an agent on a host without
 * libsystemd still follows files and runs checks.
 *
 * Each function below is defined with its prototype from
 * <systemd/sd-journal.h>, so the compiler checks every signature
 * against the real header, and journal.c is written against the
 * documented API. The library is never unloaded: a reload opens the
 * journals again. All calls come from the loop thread.
 *
 * A function journal.c starts to use must be added here too; until it
 * is, the link fails with an undefined reference, not at run time.
 */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include <systemd/sd-journal.h>

#include "log.h"

/* The ABI that <systemd/sd-journal.h> describes. */
#define SDJ_SONAME "libsystemd.so.0"

static int (*sdj_open)(sd_journal **, int);
static int (*sdj_open_directory)(sd_journal **, const char *, int);
static int (*sdj_open_namespace)(sd_journal **, const char *, int);
static int (*sdj_get_usage)(sd_journal *, uint64_t *);
static void (*sdj_close)(sd_journal *);
static int (*sdj_get_fd)(sd_journal *);
static int (*sdj_process)(sd_journal *);
static int (*sdj_add_match)(sd_journal *, const void *, size_t);
static int (*sdj_seek_head)(sd_journal *);
static int (*sdj_seek_tail)(sd_journal *);
static int (*sdj_seek_cursor)(sd_journal *, const char *);
static int (*sdj_test_cursor)(sd_journal *, const char *);
static int (*sdj_get_cursor)(sd_journal *, char **);
static int (*sdj_next)(sd_journal *);
static int (*sdj_previous)(sd_journal *);
static int (*sdj_get_data)(sd_journal *, const char *, const void **, size_t *);
static int (*sdj_get_realtime_usec)(sd_journal *, uint64_t *);

static const struct {
    const char *name; /* symbol in libsystemd */
    void *slot;       /* the function pointer above it fills */
} sdj_syms[] = {
    {"sd_journal_open", &sdj_open},
    {"sd_journal_open_directory", &sdj_open_directory},
    {"sd_journal_open_namespace", &sdj_open_namespace},
    {"sd_journal_get_usage", &sdj_get_usage},
    {"sd_journal_close", &sdj_close},
    {"sd_journal_get_fd", &sdj_get_fd},
    {"sd_journal_process", &sdj_process},
    {"sd_journal_add_match", &sdj_add_match},
    {"sd_journal_seek_head", &sdj_seek_head},
    {"sd_journal_seek_tail", &sdj_seek_tail},
    {"sd_journal_seek_cursor", &sdj_seek_cursor},
    {"sd_journal_test_cursor", &sdj_test_cursor},
    {"sd_journal_get_cursor", &sdj_get_cursor},
    {"sd_journal_next", &sdj_next},
    {"sd_journal_previous", &sdj_previous},
    {"sd_journal_get_data", &sdj_get_data},
    {"sd_journal_get_realtime_usec", &sdj_get_realtime_usec},
};

static int sdj_loaded; /* 1 once every symbol above is resolved */

/* Load libsystemd and resolve the table. 0, or -ELIBACC (logged). */
static int
sdj_load(void)
{
    void *h, *f;

    if (sdj_loaded)
        return 0;
    if ((h = dlopen(SDJ_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        log_warnx("journal: cannot load %s: %s", SDJ_SONAME, dlerror());
        return -ELIBACC;
    }
    for (size_t i = 0; i < sizeof(sdj_syms) / sizeof(sdj_syms[0]); i++) {
        if ((f = dlsym(h, sdj_syms[i].name)) == NULL) {
            log_warnx("journal: %s has no %s", SDJ_SONAME, sdj_syms[i].name);
            dlclose(h);
            return -ELIBACC;
        }
        /* POSIX: a function pointer has the representation of void *. */
        memcpy(sdj_syms[i].slot, &f, sizeof(f));
    }
    sdj_loaded = 1;
    return 0;
}

int
sd_journal_open(sd_journal **ret, int flags)
{
    int rc = sdj_load();

    return rc < 0 ? rc : sdj_open(ret, flags);
}

int
sd_journal_open_directory(sd_journal **ret, const char *path, int flags)
{
    int rc = sdj_load();

    return rc < 0 ? rc : sdj_open_directory(ret, path, flags);
}

int
sd_journal_open_namespace(sd_journal **ret, const char *name_space, int flags)
{
    int rc = sdj_load();

    return rc < 0 ? rc : sdj_open_namespace(ret, name_space, flags);
}

/*
 * The functions below take a journal, which exists only once an open
 * succeeded; the checks keep the API's answer for a NULL journal
 * (-EINVAL, or nothing for close) instead of calling through NULL.
 */
void
sd_journal_close(sd_journal *j)
{
    if (sdj_loaded)
        sdj_close(j);
}

int
sd_journal_get_fd(sd_journal *j)
{
    return sdj_loaded ? sdj_get_fd(j) : -EINVAL;
}

int
sd_journal_process(sd_journal *j)
{
    return sdj_loaded ? sdj_process(j) : -EINVAL;
}

int
sd_journal_add_match(sd_journal *j, const void *data, size_t size)
{
    return sdj_loaded ? sdj_add_match(j, data, size) : -EINVAL;
}

int
sd_journal_seek_head(sd_journal *j)
{
    return sdj_loaded ? sdj_seek_head(j) : -EINVAL;
}

int
sd_journal_seek_tail(sd_journal *j)
{
    return sdj_loaded ? sdj_seek_tail(j) : -EINVAL;
}

int
sd_journal_seek_cursor(sd_journal *j, const char *cursor)
{
    return sdj_loaded ? sdj_seek_cursor(j, cursor) : -EINVAL;
}

int
sd_journal_test_cursor(sd_journal *j, const char *cursor)
{
    return sdj_loaded ? sdj_test_cursor(j, cursor) : -EINVAL;
}

int
sd_journal_get_cursor(sd_journal *j, char **cursor)
{
    return sdj_loaded ? sdj_get_cursor(j, cursor) : -EINVAL;
}

int
sd_journal_next(sd_journal *j)
{
    return sdj_loaded ? sdj_next(j) : -EINVAL;
}

int
sd_journal_previous(sd_journal *j)
{
    return sdj_loaded ? sdj_previous(j) : -EINVAL;
}

int
sd_journal_get_data(sd_journal *j, const char *field, const void **data,
                    size_t *length)
{
    return sdj_loaded ? sdj_get_data(j, field, data, length) : -EINVAL;
}

int
sd_journal_get_usage(sd_journal *j, uint64_t *bytes)
{
    return sdj_loaded ? sdj_get_usage(j, bytes) : -EINVAL;
}

int
sd_journal_get_realtime_usec(sd_journal *j, uint64_t *ret)
{
    return sdj_loaded ? sdj_get_realtime_usec(j, ret) : -EINVAL;
}
