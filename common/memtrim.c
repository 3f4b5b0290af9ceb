/*
 * memtrim: drop the mappings of never-written ELF segments (see
 * memtrim.h for why and what it costs).
 */
#include "memtrim.h"

#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

/* Read-only mappings with private copies of file pages (RELRO of each
 * object, and any code page holding a breakpoint) that trimming keeps. */
#define TRIM_MAX_KEEP 256

struct trim_walk {
    uintptr_t page;                   /* page size in bytes */
    uintptr_t vdso;                   /* the vDSO's ELF header, 0 if none */
    uintptr_t keep[TRIM_MAX_KEEP][2]; /* [start, end) of such mappings */
    int nkeep;                        /* entries in keep */
    long advised;                     /* bytes advised so far */
    int err;                          /* first madvise error, -errno */
};

/* Whether the object has text relocations: its "read-only" segments
 * were written by the loader and hold private data. */
static int
has_textrel(const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

        if (ph->p_type != PT_DYNAMIC)
            continue;
        for (const ElfW(Dyn) *d =
                 (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
             d->d_tag != DT_NULL; d++) {
            if (d->d_tag == DT_TEXTREL)
                return 1;
            if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL))
                return 1;
        }
    }
    return 0;
}

/* Whether [lo, hi) overlaps the object's PT_GNU_RELRO range. */
static int
in_relro(const struct dl_phdr_info *info, uintptr_t lo, uintptr_t hi)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type == PT_GNU_RELRO && a < hi && lo < a + ph->p_memsz)
            return 1;
    }
    return 0;
}

/* Whether the object is the vDSO, a kernel mapping with no file. */
static int
is_vdso(const struct dl_phdr_info *info, uintptr_t vdso)
{
    for (int i = 0; vdso && i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type == PT_LOAD && a <= vdso && vdso < a + ph->p_memsz)
            return 1;
    }
    return 0;
}

/* Whether [lo, hi) overlaps a mapping that holds private pages. */
static int
kept(const struct trim_walk *w, uintptr_t lo, uintptr_t hi)
{
    for (int i = 0; i < w->nkeep; i++)
        if (w->keep[i][0] < hi && lo < w->keep[i][1])
            return 1;
    return 0;
}

static int
trim_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct trim_walk *w = arg;

    (void)size;
    if (is_vdso(info, w->vdso) || has_textrel(info))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        /* Whole pages inside the segment only: a page shared with a
         * neighbouring segment is left as it is. */
        uintptr_t lo = (a + w->page - 1) & ~(w->page - 1);
        uintptr_t hi = (a + ph->p_filesz) & ~(w->page - 1);

        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || hi <= lo)
            continue;
        if (in_relro(info, lo, hi) || kept(w, lo, hi))
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) < 0) {
            if (!w->err)
                w->err = -errno;
            continue;
        }
        w->advised += (long)(hi - lo);
    }
    return 0;
}

/* Whether a debugger or tracer is attached: its breakpoints are written
 * into code pages at any moment. */
static int
traced(void)
{
    char line[256];
    int pid = 0;
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return 1; /* cannot tell: do nothing */
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "TracerPid: %d", &pid) == 1)
            break;
    fclose(f);
    return pid != 0;
}

/*
 * Note the read-only mappings that hold anonymous pages: a uprobe (perf,
 * bpftrace, an eBPF agent watching SSL_write) is a breakpoint in a
 * private copy of a code page, and MADV_DONTNEED would silently remove
 * it; so would it anything else patched in place. Returns 0, or -1 if
 * smaps cannot be read or lists more such mappings than fit: then
 * nothing is trimmed.
 */
static int
find_private(struct trim_walk *w)
{
    char *line = NULL;
    size_t cap = 0;
    unsigned long lo = 0, hi = 0, a, b, kb;
    char perms[8] = "", p[8];
    int rc = 0;
    FILE *f = fopen("/proc/self/smaps", "re");

    if (f == NULL)
        return -1;
    /* getline: a header line with a long path must not be read in two
     * pieces, the second taken for a header. */
    while (getline(&line, &cap, f) > 0) {
        /* "Anonymous:" starts with a hex digit too: assign only when the
         * whole mapping header matched. */
        if (sscanf(line, "%lx-%lx %7s", &a, &b, p) == 3) {
            lo = a;
            hi = b;
            memcpy(perms, p, sizeof(perms));
            continue;
        }
        if (sscanf(line, "Anonymous: %lu kB", &kb) != 1 || kb == 0 ||
            strchr(perms, 'w') != NULL)
            continue;
        if (w->nkeep == TRIM_MAX_KEEP) {
            rc = -1;
            break;
        }
        w->keep[w->nkeep][0] = lo;
        w->keep[w->nkeep][1] = hi;
        w->nkeep++;
    }
    free(line);
    fclose(f);
    return rc;
}

long
tc_memtrim_code(void)
{
    struct trim_walk w = {0};

    if (traced() || find_private(&w) < 0)
        return 0;
    w.page = (uintptr_t)sysconf(_SC_PAGESIZE);
    w.vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    dl_iterate_phdr(trim_object, &w);
    return w.err ? w.err : w.advised;
}
