/*
 * hintsig: Ed25519 signing and verification of hints; see hintsig.h and
 * docs/protocol.md "HINT signature" for the signed bytes.
 */
#include "hintsig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "perms.h"
#include "util.h"

struct tc_hintkey {
    EVP_PKEY *pkey; /* owned; Ed25519 */
    int priv;       /* 1 if it holds the private half */
};

static const char *
hintsig_ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    return r != NULL ? r : "not a PEM key";
}

static int
hintkey_load(const char *path, int priv, struct tc_hintkey **out, char *err,
             size_t errlen)
{
    const char *what = priv ? "private" : "public";
    EVP_PKEY *pkey = NULL;
    char why[512];
    BIO *in = NULL;
    int fd, rc = 0;

    *out = NULL;
    ERR_clear_error();
    if (priv) {
        /* The key that signs what agents may run: owner-only, as TLS keys. */
        if ((fd = tc_perms_key_open(path, why, sizeof(why))) < 0) {
            snprintf(err, errlen, "hint signing key %s", why);
            return fd;
        }
        if ((in = BIO_new_fd(fd, BIO_CLOSE)) == NULL)
            close(fd);
    } else {
        in = BIO_new_file(path, "r");
        if (in == NULL) {
            rc = errno ? -errno : -ENOENT;
            snprintf(err, errlen, "hint public key %s: %s", path,
                     strerror(-rc));
            ERR_clear_error();
            return rc;
        }
    }
    if (in == NULL) {
        snprintf(err, errlen, "hint %s key %s: out of memory", what, path);
        return -ENOMEM;
    }
    pkey = priv ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)
                : PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    if (pkey == NULL) {
        snprintf(err, errlen, "hint %s key %s: cannot load it: %s", what, path,
                 hintsig_ossl_reason());
        rc = -EINVAL;
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "hint %s key %s: not an Ed25519 key", what, path);
        rc = -EINVAL;
        goto out;
    }
    *out = tc_xcalloc(1, sizeof(**out));
    (*out)->pkey = pkey;
    (*out)->priv = priv;
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(in);
    ERR_clear_error();
    return rc;
}

int
tc_hintkey_load_private(const char *path, struct tc_hintkey **out, char *err,
                        size_t errlen)
{
    return hintkey_load(path, 1, out, err, errlen);
}

int
tc_hintkey_load_public(const char *path, struct tc_hintkey **out, char *err,
                       size_t errlen)
{
    return hintkey_load(path, 0, out, err, errlen);
}

void
tc_hintkey_free(struct tc_hintkey *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

static int
put_u32(struct tc_buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};

    return tc_buf_append(b, p, sizeof(p));
}

static int
put_u64(struct tc_buf *b, uint64_t v)
{
    uint8_t p[8];

    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return tc_buf_append(b, p, sizeof(p));
}

static int
put_str(struct tc_buf *b, struct tc_str s)
{
    int rc;

    if ((rc = put_u32(b, s.len)) < 0)
        return rc;
    return s.len > 0 ? tc_buf_append(b, s.ptr, s.len) : 0;
}

/* Bytewise order; a proper prefix sorts first. */
static int
str_cmp(struct tc_str a, struct tc_str b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;

    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

int
tc_hintsig_message(const struct tc_hint *h, struct tc_buf *out)
{
    uint32_t order[TC_HINT_MAX_PARAMS];
    size_t start = tc_buf_size(out);
    const char *why;
    int rc;

    if ((rc = tc_wire_hint_check(h, &why)) < 0)
        return rc;
    /* Insertion sort: at most 32 entries, keys known to be distinct. */
    for (uint32_t i = 0; i < h->nparams; i++) {
        uint32_t j = i;
        while (j > 0 &&
               str_cmp(h->params[order[j - 1]].key, h->params[i].key) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    if ((rc = tc_buf_append(out, TC_HINTSIG_DOMAIN, TC_HINTSIG_DOMAIN_LEN)) <
            0 ||
        (rc = put_u64(out, h->id)) < 0 || (rc = put_str(out, h->agent)) < 0 ||
        (rc = put_str(out, h->incident)) < 0 ||
        (rc = put_u64(out, h->problem)) < 0 ||
        (rc = put_str(out, h->source)) < 0 ||
        (rc = put_str(out, h->title)) < 0 || (rc = put_str(out, h->text)) < 0 ||
        (rc = put_str(out, h->action)) < 0 ||
        (rc = put_u32(out, h->nparams)) < 0)
        goto out;
    for (uint32_t i = 0; i < h->nparams; i++)
        if ((rc = put_str(out, h->params[order[i]].key)) < 0 ||
            (rc = put_str(out, h->params[order[i]].val)) < 0)
            goto out;
    rc = put_u64(out, (uint64_t)h->issued);
out:
    if (rc < 0) {
        /* Roll back; sizes, not pointers: an append may compact. */
        size_t now = tc_buf_size(out);
        if (now > start)
            out->len -= now - start;
    }
    return rc;
}

int
tc_hintsig_sign(const struct tc_hintkey *k, const struct tc_hint *h,
                uint8_t sig[TC_HINT_SIG_LEN])
{
    EVP_MD_CTX *md = NULL;
    struct tc_buf msg;
    size_t siglen = TC_HINT_SIG_LEN;
    int rc;

    if (!k->priv)
        return -EINVAL;
    tc_buf_init(&msg, TC_HINTSIG_MSG_MAX);
    if ((rc = tc_hintsig_message(h, &msg)) < 0)
        goto out;
    if ((md = EVP_MD_CTX_new()) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* Ed25519 hashes internally: no digest, one-shot only. */
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, sig, &siglen, tc_buf_head(&msg),
                       tc_buf_size(&msg)) != 1 ||
        siglen != TC_HINT_SIG_LEN)
        rc = -EIO;
out:
    EVP_MD_CTX_free(md);
    tc_buf_close(&msg);
    ERR_clear_error();
    return rc;
}

int
tc_hintsig_verify(const struct tc_hintkey *k, const struct tc_hint *h,
                  const char **why)
{
    EVP_MD_CTX *md = NULL;
    struct tc_buf msg;
    const char *dummy;
    int rc;

    if (why == NULL)
        why = &dummy;
    if (h->sig.len == 0) {
        *why = "unsigned";
        return -ENOKEY;
    }
    if (h->sig.len != TC_HINT_SIG_LEN) {
        *why = "signature is not 64 bytes";
        return -EBADMSG;
    }
    tc_buf_init(&msg, TC_HINTSIG_MSG_MAX);
    if ((rc = tc_hintsig_message(h, &msg)) < 0) {
        *why = "hint over its limits";
        goto out;
    }
    if ((md = EVP_MD_CTX_new()) == NULL) {
        *why = "out of memory";
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) != 1 ||
        EVP_DigestVerify(md, (const unsigned char *)h->sig.ptr, h->sig.len,
                         tc_buf_head(&msg), tc_buf_size(&msg)) != 1) {
        *why = "bad signature";
        rc = -EKEYREJECTED;
    }
out:
    EVP_MD_CTX_free(md);
    tc_buf_close(&msg);
    ERR_clear_error();
    return rc;
}
