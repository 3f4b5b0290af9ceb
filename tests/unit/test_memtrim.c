/*
 * test_memtrim: dropping the mappings of never-written code pages gives
 * back resident memory, leaves the process working (code, read-only
 * data and the relocated GOT all as before), and keeps a code page that
 * holds a private copy, as a uprobe or a breakpoint makes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "memtrim.h"

/* A field of /proc/self/status, in kB; -1 if absent. */
static long
status_kb(const char *field)
{
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "re");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Anonymous kB of the mapping that contains addr, from smaps. */
static long
anon_kb_at(uintptr_t addr)
{
    char line[512];
    unsigned long a, b;
    int in = 0;
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps", "re");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char perms[8];

        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
            in = a <= addr && addr < b;
            continue;
        }
        if (in && sscanf(line, "Anonymous: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* Work that runs through libcrypto and libssl: a TLS context (which
 * fetches every cipher and digest) and a SHA-256 checked against its
 * known value. */
static void
use_openssl(void)
{
    static const unsigned char abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384"),
                     1);
    SSL_CTX_free(ctx);
    assert_int_equal(EVP_Digest("abc", 3, md, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    assert_memory_equal(md, abc, 32);
}

static void
test_trim_gives_back_and_code_runs(void **state)
{
    long before, after, advised;

    (void)state;
    use_openssl();
    before = status_kb("RssFile");
    advised = tc_memtrim_code();
    after = status_kb("RssFile");
    /* libcrypto's text alone is 2.5 MiB on Debian 12. */
    assert_true(advised > 1024 * 1024);
    assert_true(before > 0 && after >= 0);
    assert_true(after < before);
    /* Everything runs again from the page cache, GOT intact. */
    use_openssl();
    assert_true(tc_memtrim_code() > 0);
    use_openssl();
}

/* Its own page of code, so that writing to it touches nothing else. */
__attribute__((noinline, aligned(16384))) static int
marked(int x)
{
    return x * 3 + 1;
}

static void
test_private_code_page_kept(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t p = (uintptr_t)&marked & ~((uintptr_t)page - 1);
    volatile unsigned char *b = (volatile unsigned char *)p;

    (void)state;
    /* What a uprobe does: a private copy of the code page (here with
     * the same bytes, so the function still runs). */
    assert_int_equal(
        mprotect((void *)p, (size_t)page, PROT_READ | PROT_WRITE | PROT_EXEC),
        0);
    b[0] = b[0];
    assert_int_equal(mprotect((void *)p, (size_t)page, PROT_READ | PROT_EXEC),
                     0);
    assert_true(anon_kb_at(p) > 0);
    assert_true(tc_memtrim_code() > 0);
    assert_true(anon_kb_at(p) > 0);
    assert_int_equal(marked(2), 7);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_gives_back_and_code_runs),
        cmocka_unit_test(test_private_code_page_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
