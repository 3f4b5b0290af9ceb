/*
 * replay: run every file of a corpus directory through the fuzz target
 * without libFuzzer, so the unit suite replays the corpus and every
 * crasher ever found, under whatever sanitizers the build has.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read a whole regular file; NULL on error. *lenp gets its size. */
static uint8_t *
slurp(const char *path, size_t *lenp)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *p = NULL;
    struct stat st;

    if (fp == NULL)
        return NULL;
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode))
        goto out;
    /* +1 so that an empty file still gets a distinct pointer. */
    if ((p = malloc((size_t)st.st_size + 1)) == NULL)
        goto out;
    if (fread(p, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
        free(p);
        p = NULL;
        goto out;
    }
    *lenp = (size_t)st.st_size;
out:
    fclose(fp);
    return p;
}

int
main(int argc, char **argv)
{
    struct dirent *de;
    DIR *d;
    unsigned long ran = 0;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s corpus-dir\n", argv[0]);
        return 2;
    }
    if ((d = opendir(argv[1])) == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        uint8_t *p;
        size_t len = 0;

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
        if ((p = slurp(path, &len)) == NULL) {
            fprintf(stderr, "%s: cannot read\n", path);
            rc = 1;
            continue;
        }
        LLVMFuzzerTestOneInput(p, len);
        free(p);
        ran++;
    }
    closedir(d);
    printf("replayed %lu inputs from %s\n", ran, argv[1]);
    if (ran == 0) {
        fprintf(stderr, "%s: empty corpus\n", argv[1]);
        return 1;
    }
    return rc;
}
