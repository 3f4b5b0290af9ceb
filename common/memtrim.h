/*
 * memtrim: give back the code pages a quiet daemon is not using.
 *
 * A process's resident set counts every page of a shared library that is
 * mapped into it, and the kernel maps up to 64 KiB around each page fault
 * in a file mapping (fault-around). Start-up (config parsing, PEM
 * decoding, OpenSSL's provider set-up, SQLite's schema code, PCRE2's
 * compiler) and a burst touch most of the text of every library; an idle
 * daemon then runs a small fraction of it, but the rest stays mapped and
 * counted until the kernel is short of memory.
 *
 * tc_memtrim_code drops this process's mappings of the pages of loaded
 * ELF objects that can never differ from their file: the PT_LOAD
 * segments that are not writable (program text, read-only data, symbol
 * and relocation tables), outside PT_GNU_RELRO, in objects without text
 * relocations. It is madvise(MADV_DONTNEED) on those ranges: the pages
 * stay in the page cache, shared with other processes, and the next use
 * maps them back with a minor fault. Nothing private is lost, since
 * nothing in those ranges was ever written; the segments that hold
 * relocated data, .data and .bss are not touched. It runs under
 * dl_iterate_phdr's lock, so no object is loaded or unloaded meanwhile.
 *
 * What it saves is the pages the process does not use again: RSS drops
 * to the working set. PSS changes little (the pages were shared), and the
 * system saves memory only where the pages were mapped by this process
 * alone (then they are reclaimable at once). A call takes about 2 ms,
 * mostly reading /proc/self/smaps; then one minor fault per 64 KiB of
 * code used again.
 *
 * Breakpoints live in private copies of code pages, which MADV_DONTNEED
 * would drop: a process being traced (TracerPid in /proc/self/status) is
 * left alone, and so is every read-only mapping that /proc/self/smaps shows
 * with anonymous pages (a uprobe set by perf, bpftrace or an eBPF agent
 * watching SSL_write). A uprobe registered in the microseconds between
 * that read and the madvise would be lost for this process.
 */
#ifndef TC_MEMTRIM_H
#define TC_MEMTRIM_H

#include <stddef.h>

/*
 * Drop the mappings described above. Returns the bytes of address space
 * advised (not the bytes that were resident), 0 when traced, or a
 * negative errno if madvise failed on some range (the others are still
 * advised). Thread-safe; call it when a burst of work is over, not on a
 * hot path.
 */
long tc_memtrim_code(void);

#endif
