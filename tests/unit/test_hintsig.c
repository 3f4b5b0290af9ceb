/*
 * test_hintsig: Ed25519 signatures over hints. A signature verifies
 * only for the very hint it was made for: any changed byte of any
 * field, another key, a cut signature or none at all is refused; the
 * order in which params arrive does not matter; and the keys are loaded
 * with the same care as the TLS keys.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "hintsig.h"
#include "pki.h"
#include "testutil.h"
#include "wire.h"

static int
setup(void **state)
{
    (void)state;
    return tu_setup("tocsin-hintsig");
}

/* A key pair made by pki in tu_tmpdir/sub. */
static void
load_pair(const char *sub, struct tc_hintkey **priv, struct tc_hintkey **pub)
{
    char dir[256], path[300], err[512];

    snprintf(dir, sizeof(dir), "%s/%s", tu_tmpdir, sub);
    assert_int_equal(tc_pki_hint_key(dir, err, sizeof(err)), 0);
    assert_int_equal(tc_pki_hint_key(dir, err, sizeof(err)), 1);
    snprintf(path, sizeof(path), "%s/" TC_PKI_HINT_KEY, dir);
    assert_int_equal(tc_hintkey_load_private(path, priv, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/" TC_PKI_HINT_PUB, dir);
    assert_int_equal(tc_hintkey_load_public(path, pub, err, sizeof(err)), 0);
}

/* Field storage the tests may change byte by byte. */
static char f_agent[] = "web-01", f_inc[] = "34", f_src[] = "runbook:ngx",
            f_title[] = "Restart nginx", f_text[] = "1. look\n2. restart",
            f_act[] = "restart_unit", k1[] = "unit", v1[] = "nginx.service",
            k2[] = "mode", v2[] = "soft";
static struct tc_kv params[2];

static void
make_hint(struct tc_hint *h, uint8_t *sig)
{
    memset(h, 0, sizeof(*h));
    params[0].key = tc_str_c(k1);
    params[0].val = tc_str_c(v1);
    params[1].key = tc_str_c(k2);
    params[1].val = tc_str_c(v2);
    h->id = 12;
    h->agent = tc_str_c(f_agent);
    h->incident = tc_str_c(f_inc);
    h->problem = 7;
    h->source = tc_str_c(f_src);
    h->title = tc_str_c(f_title);
    h->text = tc_str_c(f_text);
    h->action = tc_str_c(f_act);
    h->params = params;
    h->nparams = 2;
    h->issued = 1700000000000000000LL;
    h->sig.ptr = (const char *)sig;
    h->sig.len = TC_HINT_SIG_LEN;
}

static void
test_sign_verify(void **state)
{
    struct tc_hintkey *priv, *pub, *opriv, *opub;
    uint8_t sig[TC_HINT_SIG_LEN], osig[TC_HINT_SIG_LEN];
    struct tc_hint h;
    const char *why = NULL;

    (void)state;
    load_pair("a", &priv, &pub);
    load_pair("b", &opriv, &opub);
    make_hint(&h, sig);
    assert_int_equal(tc_hintsig_sign(priv, &h, sig), 0);
    assert_int_equal(tc_hintsig_verify(pub, &h, &why), 0);
    /* The private key verifies too (it holds the public half). */
    assert_int_equal(tc_hintsig_verify(priv, &h, &why), 0);
    /* A public key cannot sign. */
    assert_int_equal(tc_hintsig_sign(pub, &h, osig), -EINVAL);

    /* Another key: its signature fails under ours, ours under its. */
    assert_int_equal(tc_hintsig_verify(opub, &h, &why), -EKEYREJECTED);
    assert_string_equal(why, "bad signature");
    assert_int_equal(tc_hintsig_sign(opriv, &h, osig), 0);
    h.sig.ptr = (const char *)osig;
    assert_int_equal(tc_hintsig_verify(pub, &h, &why), -EKEYREJECTED);
    h.sig.ptr = (const char *)sig;

    /* Cut, empty, flipped signatures. */
    h.sig.len = TC_HINT_SIG_LEN - 1;
    assert_int_equal(tc_hintsig_verify(pub, &h, &why), -EBADMSG);
    assert_string_equal(why, "signature is not 64 bytes");
    h.sig.len = 0;
    assert_int_equal(tc_hintsig_verify(pub, &h, &why), -ENOKEY);
    assert_string_equal(why, "unsigned");
    h.sig.len = TC_HINT_SIG_LEN;
    for (size_t i = 0; i < TC_HINT_SIG_LEN; i++) {
        sig[i] ^= 0x01;
        assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
        sig[i] ^= 0x01;
    }
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), 0);
    tc_hintkey_free(priv);
    tc_hintkey_free(pub);
    tc_hintkey_free(opriv);
    tc_hintkey_free(opub);
}

/* Every byte of every field is covered. */
static void
test_every_byte_counts(void **state)
{
    char *fields[] = {f_agent, f_inc, f_src, f_title, f_text,
                      f_act,   k1,    v1,    k2,      v2};
    struct tc_hintkey *priv, *pub;
    uint8_t sig[TC_HINT_SIG_LEN];
    struct tc_hint h;

    (void)state;
    load_pair("a", &priv, &pub);
    make_hint(&h, sig);
    assert_int_equal(tc_hintsig_sign(priv, &h, sig), 0);
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        for (size_t i = 0; fields[f][i] != '\0'; i++) {
            fields[f][i] ^= 0x20;
            assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
            fields[f][i] ^= 0x20;
        }
    }
    h.id++;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.id--;
    h.problem = 0;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.problem = 7;
    h.issued++;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.issued--;
    /* A field cut short, a param dropped, the action removed. */
    h.title.len--;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.title.len++;
    h.nparams = 1;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.nparams = 2;
    h.action.len = 0;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), -EKEYREJECTED);
    h.action.len = (uint32_t)strlen(f_act);
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), 0);
    tc_hintkey_free(priv);
    tc_hintkey_free(pub);
}

/* Length prefixes: bytes cannot move from one field to the next. */
static void
test_fields_do_not_run_together(void **state)
{
    struct tc_buf a, b;
    struct tc_hint h;
    uint8_t sig[TC_HINT_SIG_LEN];

    (void)state;
    tc_buf_init(&a, TC_HINTSIG_MSG_MAX);
    tc_buf_init(&b, TC_HINTSIG_MSG_MAX);
    make_hint(&h, sig);
    h.agent = tc_str_c("web-0");
    h.incident = tc_str_c("134");
    assert_int_equal(tc_hintsig_message(&h, &a), 0);
    h.agent = tc_str_c("web-01");
    h.incident = tc_str_c("34");
    assert_int_equal(tc_hintsig_message(&h, &b), 0);
    assert_int_equal(tc_buf_size(&a), tc_buf_size(&b));
    assert_true(memcmp(tc_buf_head(&a), tc_buf_head(&b), tc_buf_size(&a)) != 0);
    /* The domain comes first, with its NUL. */
    assert_memory_equal(tc_buf_head(&b), "tocsin-hint-v1\0",
                        TC_HINTSIG_DOMAIN_LEN);
    tc_buf_close(&a);
    tc_buf_close(&b);
}

static void
test_params_order(void **state)
{
    struct tc_hintkey *priv, *pub;
    uint8_t sig[TC_HINT_SIG_LEN], sig2[TC_HINT_SIG_LEN];
    struct tc_kv swapped[2];
    struct tc_hint h;

    (void)state;
    load_pair("a", &priv, &pub);
    make_hint(&h, sig);
    assert_int_equal(tc_hintsig_sign(priv, &h, sig), 0);
    swapped[0] = params[1];
    swapped[1] = params[0];
    h.params = swapped;
    assert_int_equal(tc_hintsig_verify(pub, &h, NULL), 0);
    assert_int_equal(tc_hintsig_sign(priv, &h, sig2), 0);
    assert_memory_equal(sig, sig2, TC_HINT_SIG_LEN);
    /* A key twice cannot be ordered, so it is never signed. */
    swapped[1] = swapped[0];
    assert_int_equal(tc_hintsig_sign(priv, &h, sig2), -EBADMSG);
    tc_hintkey_free(priv);
    tc_hintkey_free(pub);
}

static void
test_key_loading(void **state)
{
    struct tc_hintkey *k = NULL;
    char dir[256], path[300], err[512];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/pki", tu_tmpdir);
    assert_int_equal(tc_pki_init(dir, NULL, 0, err, sizeof(err)), 0);
    /* pki init made the pair, private 0600, public 0644. */
    snprintf(path, sizeof(path), "%s/" TC_PKI_HINT_KEY, dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Readable by group: refused, like a TLS key. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_true(tc_hintkey_load_private(path, &k, err, sizeof(err)) < 0);
    assert_null(k);
    tu_assert_contains(err, "allows group/other access");
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(tc_hintkey_load_private(path, &k, err, sizeof(err)), 0);
    tc_hintkey_free(k);
    k = NULL;
    /* The private key file is not a public key, nor the reverse. */
    assert_int_equal(tc_hintkey_load_public(path, &k, err, sizeof(err)),
                     -EINVAL);
    snprintf(path, sizeof(path), "%s/" TC_PKI_HINT_PUB, dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    /* (refused by its mode already; at 0600, by its content) */
    assert_true(tc_hintkey_load_private(path, &k, err, sizeof(err)) < 0);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(tc_hintkey_load_private(path, &k, err, sizeof(err)),
                     -EINVAL);
    assert_null(k);
    /* A TLS key (ECDSA) is not a hint key. */
    snprintf(path, sizeof(path), "%s/collector.key", dir);
    assert_int_equal(tc_hintkey_load_private(path, &k, err, sizeof(err)),
                     -EINVAL);
    tu_assert_contains(err, "not an Ed25519 key");
    snprintf(path, sizeof(path), "%s/missing.pub", dir);
    assert_true(tc_hintkey_load_public(path, &k, err, sizeof(err)) < 0);
    assert_null(k);
    tc_hintkey_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sign_verify, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_every_byte_counts, setup,
                                        tu_teardown),
        cmocka_unit_test(test_fields_do_not_run_together),
        cmocka_unit_test_setup_teardown(test_params_order, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_key_loading, setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
