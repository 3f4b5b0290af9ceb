/*
 * pki: a small certificate authority (ECDSA P-256, SHA-256) for quick
 * starts and agent enrollment; see pki.h and docs/internals/pki.md.
 *
 * Files are never overwritten. Each one is first written to a fresh
 * temporary name in DIR (created with O_EXCL, mode 0600), synced, and
 * then hard-linked to its final name: link(2) fails with EEXIST instead
 * of replacing, which gives "never overwrite a key" without a window.
 * The CA key is linked last, so a DIR/ca.key that exists always belongs
 * to a complete CA even if an earlier init was interrupted.
 */
#include "pki.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "perms.h"
#include "util.h"

#define PKI_CA_CN "tocsin CA"
/* The collector's subject CN; agents see it as tc_tls_peer_name. */
#define PKI_COLLECTOR_CN "collector"
#define PKI_CA_DAYS 3650
#define PKI_COLLECTOR_DAYS 825
/* Certificates start this much in the past to absorb clock skew. */
#define PKI_BACKDATE_S 300
#define PKI_NAME_MAX 64

enum pki_kind {
    PKI_CA,     /* self-signed issuer */
    PKI_SERVER, /* the collector: serverAuth + SANs */
    PKI_CLIENT, /* an agent: clientAuth */
};

/* One output file on its way from a temporary name to its final one. */
struct pki_file {
    char *path; /* final path, owned */
    char *tmp;  /* temporary path while it exists, owned; else NULL */
    int linked; /* 1 once path was created by us */
};

static int pki_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
pki_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return rc;
}

/* The root cause at the front of the OpenSSL error queue. */
static const char *
pki_ossl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *s;

    if (e == 0)
        return "unknown error";
    if (ERR_SYSTEM_ERROR(e))
        return strerror(ERR_GET_REASON(e));
    s = ERR_reason_error_string(e);
    return s != NULL ? s : "unknown error";
}

static int
pki_valid_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > PKI_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
            return 0;
    }
    return 1;
}

/* A DNS name (optionally "*." first): letters, digits, '-' and dots. */
static int
pki_valid_dns(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n == 0 || n > 253)
        return 0;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(ch) || ch == '-') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static EVP_PKEY *
pki_keygen(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A random positive 128-bit serial (RFC 5280 allows up to 20 octets). */
static int
pki_set_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(b, sizeof(b)) != 1)
        return 0;
    if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
        return 0;
    if (BN_is_zero(bn))
        BN_one(bn);
    ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int
pki_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Append name as an IP SAN if it is an address literal, else as DNS. */
static int
pki_san_push(GENERAL_NAMES *gens, const char *name, char *err, size_t errlen)
{
    ASN1_OCTET_STRING *ip;
    ASN1_IA5STRING *dns;
    GENERAL_NAME *gn;

    if ((gn = GENERAL_NAME_new()) == NULL)
        return pki_fail(err, errlen, -ENOMEM, "pki: out of memory");
    if ((ip = a2i_IPADDRESS(name)) != NULL) {
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
        ERR_clear_error();
        if (!pki_valid_dns(name)) {
            GENERAL_NAME_free(gn);
            return pki_fail(err, errlen, -EINVAL,
                            "pki: invalid SAN \"%s\": not an IP address "
                            "or DNS name",
                            name);
        }
        dns = ASN1_IA5STRING_new();
        if (dns == NULL || !ASN1_STRING_set(dns, name, (int)strlen(name))) {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(gn);
            return pki_fail(err, errlen, -ENOMEM, "pki: out of memory");
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    }
    /* "localhost" given again on the command line is not an error. */
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        if (GENERAL_NAME_cmp(gn, sk_GENERAL_NAME_value(gens, i)) == 0) {
            GENERAL_NAME_free(gn);
            return 0;
        }
    }
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return pki_fail(err, errlen, -ENOMEM, "pki: out of memory");
    }
    return 0;
}

static int
pki_add_sans(X509 *x, const char *const *sans, size_t nsans, char *err,
             size_t errlen)
{
    static const char *const defaults[] = {"localhost", "127.0.0.1", "::1"};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = 0;

    if (gens == NULL)
        return pki_fail(err, errlen, -ENOMEM, "pki: out of memory");
    for (size_t i = 0; i < 3 && rc == 0; i++)
        rc = pki_san_push(gens, defaults[i], err, errlen);
    for (size_t i = 0; i < nsans && rc == 0; i++)
        rc = pki_san_push(gens, sans[i], err, errlen);
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                                     X509V3_ADD_DEFAULT) != 1)
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot add SANs: %s",
                      pki_ossl_reason());
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Set a validity bound to now + off_s, in days and seconds (no overflow). */
static int
pki_set_time(ASN1_TIME *t, long off_s)
{
    return X509_time_adj_ex(t, (int)(off_s / 86400), off_s % 86400, NULL) !=
           NULL;
}

/*
 * Build and sign a certificate for key. issuer/ikey are the CA (both
 * NULL for the self-signed CA itself). Returns NULL with err set.
 */
static X509 *
pki_make_cert(enum pki_kind kind, EVP_PKEY *key, const char *cn, X509 *issuer,
              EVP_PKEY *ikey, long nb_s, long na_s, const char *const *sans,
              size_t nsans, char *err, size_t errlen)
{
    X509 *x = X509_new();
    X509_NAME *subj;
    int ok;

    if (x == NULL)
        goto fail;
    if (issuer == NULL) {
        issuer = x;
        ikey = key;
    }
    subj = X509_get_subject_name(x);
    ok = X509_set_version(x, X509_VERSION_3) && pki_set_serial(x) &&
         X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_issuer_name(x, X509_get_subject_name(issuer)) &&
         pki_set_time(X509_getm_notBefore(x), nb_s) &&
         pki_set_time(X509_getm_notAfter(x), na_s) && X509_set_pubkey(x, key);
    if (!ok)
        goto fail;
    /* The SKI must exist before the AKID, which a self-signed CA copies. */
    ok = pki_add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
         pki_add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (!ok)
        goto fail;
    switch (kind) {
    case PKI_CA:
        ok =
            pki_add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
            pki_add_ext(x, issuer, NID_key_usage,
                        "critical,keyCertSign,cRLSign");
        break;
    case PKI_SERVER:
    case PKI_CLIENT:
        ok = pki_add_ext(x, issuer, NID_basic_constraints,
                         "critical,CA:FALSE") &&
             pki_add_ext(x, issuer, NID_key_usage,
                         "critical,digitalSignature") &&
             pki_add_ext(x, issuer, NID_ext_key_usage,
                         kind == PKI_SERVER ? "serverAuth" : "clientAuth");
        break;
    }
    if (!ok)
        goto fail;
    if (kind == PKI_SERVER && pki_add_sans(x, sans, nsans, err, errlen) < 0) {
        X509_free(x);
        return NULL;
    }
    if (X509_sign(x, ikey, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    pki_fail(err, errlen, 0, "pki: cannot build certificate for %s: %s", cn,
             pki_ossl_reason());
    X509_free(x);
    return NULL;
}

/*
 * Write PEM bytes to a fresh temporary file in dir with the final mode.
 * mkstemp opens with O_RDWR|O_CREAT|O_EXCL and mode 0600, so a key is
 * never readable by others, not even for a moment.
 */
static int
pki_write_tmp(struct pki_file *f, const char *dir, const char *base, BIO *pem,
              mode_t mode, char *err, size_t errlen)
{
    char *data;
    long len;
    ssize_t n;
    int fd, rc = 0;

    f->path = tc_xasprintf("%s/%s", dir, base);
    f->tmp = tc_xasprintf("%s/.%s.tmp-XXXXXX", dir, base);
    if ((fd = mkstemp(f->tmp)) < 0) {
        rc = -errno;
        free(f->tmp);
        f->tmp = NULL;
        return pki_fail(err, errlen, rc, "pki: cannot create a file in %s: %s",
                        dir, strerror(-rc));
    }
    if (mode != 0600 && fchmod(fd, mode) < 0) {
        rc = -errno;
        goto out;
    }
    len = BIO_get_mem_data(pem, &data);
    while (len > 0) {
        if ((n = write(fd, data, (size_t)len)) < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        data += n;
        len -= n;
    }
    if (fsync(fd) < 0)
        rc = -errno;
out:
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        pki_fail(err, errlen, rc, "pki: cannot write %s: %s", f->path,
                 strerror(-rc));
    return rc;
}

/* Give a written temporary file its final name, refusing to replace. */
static int
pki_commit(struct pki_file *f, char *err, size_t errlen)
{
    int rc;

    if (link(f->tmp, f->path) < 0) {
        rc = -errno;
        if (rc == -EEXIST)
            return pki_fail(err, errlen, rc,
                            "pki: %s already exists; not overwriting it",
                            f->path);
        return pki_fail(err, errlen, rc, "pki: cannot create %s: %s", f->path,
                        strerror(-rc));
    }
    f->linked = 1;
    return 0;
}

/* Remove temporaries; on failure also the final names we created. */
static void
pki_files_close(struct pki_file *f, size_t n, int failed)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].tmp != NULL)
            unlink(f[i].tmp);
        if (failed && f[i].linked)
            unlink(f[i].path);
        free(f[i].tmp);
        free(f[i].path);
    }
}

/* Make the new directory entries durable too. */
static void
pki_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int
pki_pem_cert(BIO **out, X509 *x)
{
    *out = BIO_new(BIO_s_mem());
    return *out != NULL && PEM_write_bio_X509(*out, x) == 1;
}

static int
pki_pem_key(BIO **out, EVP_PKEY *k)
{
    *out = BIO_new(BIO_s_mem());
    return *out != NULL &&
           PEM_write_bio_PrivateKey(*out, k, NULL, NULL, 0, NULL, NULL) == 1;
}

/*
 * Write the PEM blobs as dir/names[i] (key files 0600, the rest 0644),
 * committing them in order: the last one is the marker of completeness.
 */
static int
pki_write_all(const char *dir, const char *const *names, BIO **pems,
              const int *secret, size_t n, char *err, size_t errlen)
{
    struct pki_file f[4];
    int rc = 0;

    memset(f, 0, sizeof(f));
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pki_write_tmp(&f[i], dir, names[i], pems[i],
                           secret[i] ? 0600 : 0644, err, errlen);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = pki_commit(&f[i], err, errlen);
    pki_files_close(f, n, rc < 0);
    if (rc == 0)
        pki_sync_dir(dir);
    return rc;
}

/* Create dir 0700 if missing; an existing one must be a directory. */
static int
pki_prepare_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return pki_fail(err, errlen, -ENOTDIR, "pki: %s is not a directory",
                            dir);
        return 0;
    }
    if (errno != ENOENT)
        return pki_fail(err, errlen, -errno, "pki: %s: %s", dir,
                        strerror(errno));
    if ((rc = tc_mkdirs(dir, 0700)) < 0)
        return pki_fail(err, errlen, rc, "pki: cannot create %s: %s", dir,
                        strerror(-rc));
    /* The umask may have taken bits we rely on; none it could add. */
    if (chmod(dir, 0700) < 0)
        return pki_fail(err, errlen, -errno, "pki: cannot chmod %s: %s", dir,
                        strerror(errno));
    return 0;
}

static int
pki_exists(const char *dir, const char *base)
{
    char *p = tc_xasprintf("%s/%s", dir, base);
    struct stat st;
    int r = lstat(p, &st) == 0;

    free(p);
    return r;
}

int
tc_pki_init(const char *dir, const char *const *sans, size_t nsans, char *err,
            size_t errlen)
{
    static const char *const names[4] = {"ca.crt", "collector.crt",
                                         "collector.key", "ca.key"};
    static const int secret[4] = {0, 0, 1, 1};
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    BIO *pems[4] = {NULL, NULL, NULL, NULL};
    int rc;

    if (pki_exists(dir, "ca.key"))
        return pki_fail(err, errlen, -EEXIST,
                        "pki: %s/ca.key already exists; refusing to replace "
                        "the CA",
                        dir);
    ERR_clear_error();
    if ((cakey = pki_keygen()) == NULL || (key = pki_keygen()) == NULL) {
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot generate a key: %s",
                      pki_ossl_reason());
        goto out;
    }
    ca = pki_make_cert(PKI_CA, cakey, PKI_CA_CN, NULL, NULL, -PKI_BACKDATE_S,
                       PKI_CA_DAYS * 86400L, NULL, 0, err, errlen);
    if (ca == NULL) {
        rc = -EINVAL;
        goto out;
    }
    cert = pki_make_cert(PKI_SERVER, key, PKI_COLLECTOR_CN, ca, cakey,
                         -PKI_BACKDATE_S, PKI_COLLECTOR_DAYS * 86400L, sans,
                         nsans, err, errlen);
    if (cert == NULL) {
        rc = -EINVAL;
        goto out;
    }
    if (!pki_pem_cert(&pems[0], ca) || !pki_pem_cert(&pems[1], cert) ||
        !pki_pem_key(&pems[2], key) || !pki_pem_key(&pems[3], cakey)) {
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot encode PEM: %s",
                      pki_ossl_reason());
        goto out;
    }
    /* Only now, so that a bad SAN leaves no empty directory behind. */
    if ((rc = pki_prepare_dir(dir, err, errlen)) < 0)
        goto out;
    rc = pki_write_all(dir, names, pems, secret, 4, err, errlen);
    if (rc == 0 && (rc = tc_pki_hint_key(dir, err, errlen)) > 0)
        rc = 0;
out:
    for (size_t i = 0; i < 4; i++)
        BIO_free(pems[i]);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

int
tc_pki_hint_key(const char *dir, char *err, size_t errlen)
{
    static const char *const names[2] = {TC_PKI_HINT_PUB, TC_PKI_HINT_KEY};
    static const int secret[2] = {0, 1};
    BIO *pems[2] = {NULL, NULL};
    EVP_PKEY *key = NULL;
    int rc;

    if (pki_exists(dir, TC_PKI_HINT_KEY))
        return 1;
    ERR_clear_error();
    if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL) {
        rc = pki_fail(err, errlen, -ENOMEM,
                      "pki: cannot generate the hint signing key: %s",
                      pki_ossl_reason());
        goto out;
    }
    pems[0] = BIO_new(BIO_s_mem());
    if (pems[0] == NULL || PEM_write_bio_PUBKEY(pems[0], key) != 1 ||
        !pki_pem_key(&pems[1], key)) {
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot encode PEM: %s",
                      pki_ossl_reason());
        goto out;
    }
    if ((rc = pki_prepare_dir(dir, err, errlen)) < 0)
        goto out;
    /* The public key first: the private key marks a complete pair. */
    rc = pki_write_all(dir, names, pems, secret, 2, err, errlen);
out:
    BIO_free(pems[0]);
    BIO_free(pems[1]);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

/* Load DIR/ca.crt and DIR/ca.key and check that they belong together. */
static int
pki_load_ca(const char *dir, X509 **ca, EVP_PKEY **cakey, char *err,
            size_t errlen)
{
    char *crt = tc_xasprintf("%s/ca.crt", dir);
    char *key = tc_xasprintf("%s/ca.key", dir);
    char why[512];
    BIO *in = NULL;
    int fd, rc = 0;

    *ca = NULL;
    *cakey = NULL;
    ERR_clear_error();
    if ((in = BIO_new_file(crt, "r")) == NULL ||
        (*ca = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL) {
        rc = pki_fail(err, errlen, -ENOENT, "pki: cannot load %s: %s", crt,
                      pki_ossl_reason());
        goto out;
    }
    BIO_free(in);
    in = NULL;
    /* The CA key signs every identity: refused if others may read it. */
    if ((fd = tc_perms_key_open(key, why, sizeof(why))) < 0) {
        rc = pki_fail(err, errlen, fd, "pki: CA key %s", why);
        goto out;
    }
    if ((in = BIO_new_fd(fd, BIO_CLOSE)) == NULL)
        close(fd);
    if (in == NULL ||
        (*cakey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)) == NULL) {
        rc = pki_fail(err, errlen, -ENOENT, "pki: cannot load %s: %s", key,
                      pki_ossl_reason());
        goto out;
    }
    if (X509_check_private_key(*ca, *cakey) != 1) {
        rc = pki_fail(err, errlen, -EINVAL, "pki: %s does not match %s", key,
                      crt);
        goto out;
    }
out:
    BIO_free(in);
    if (rc < 0) {
        X509_free(*ca);
        EVP_PKEY_free(*cakey);
        *ca = NULL;
        *cakey = NULL;
    }
    free(crt);
    free(key);
    return rc;
}

int
tc_pki_issue_agent(const char *dir, const char *name, long not_before_s,
                   long not_after_s, char *err, size_t errlen)
{
    const char *names[2];
    static const int secret[2] = {0, 1};
    char *crtname = NULL, *keyname = NULL;
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    BIO *pems[2] = {NULL, NULL};
    int rc;

    if (!pki_valid_name(name) || name[0] == '.')
        return pki_fail(err, errlen, -EINVAL,
                        "pki: invalid agent name \"%s\": use 1 to 64 of "
                        "A-Z a-z 0-9 . _ - (not starting with .)",
                        name);
    if (strcmp(name, "ca") == 0 || strcmp(name, "collector") == 0)
        return pki_fail(err, errlen, -EINVAL,
                        "pki: agent name \"%s\" is reserved", name);
    if (not_after_s <= not_before_s)
        return pki_fail(err, errlen, -EINVAL,
                        "pki: certificate would expire before it starts");
    crtname = tc_xasprintf("%s.crt", name);
    keyname = tc_xasprintf("%s.key", name);
    if (pki_exists(dir, keyname) || pki_exists(dir, crtname)) {
        rc = pki_fail(err, errlen, -EEXIST,
                      "pki: %s/%s already exists; not overwriting it", dir,
                      pki_exists(dir, keyname) ? keyname : crtname);
        goto out;
    }
    if ((rc = pki_load_ca(dir, &ca, &cakey, err, errlen)) < 0)
        goto out;
    if ((key = pki_keygen()) == NULL) {
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot generate a key: %s",
                      pki_ossl_reason());
        goto out;
    }
    cert = pki_make_cert(PKI_CLIENT, key, name, ca, cakey, not_before_s,
                         not_after_s, NULL, 0, err, errlen);
    if (cert == NULL) {
        rc = -EINVAL;
        goto out;
    }
    if (!pki_pem_cert(&pems[0], cert) || !pki_pem_key(&pems[1], key)) {
        rc = pki_fail(err, errlen, -ENOMEM, "pki: cannot encode PEM: %s",
                      pki_ossl_reason());
        goto out;
    }
    /* The key is committed last: its presence means the pair is whole. */
    names[0] = crtname;
    names[1] = keyname;
    rc = pki_write_all(dir, names, pems, secret, 2, err, errlen);
out:
    BIO_free(pems[0]);
    BIO_free(pems[1]);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    free(crtname);
    free(keyname);
    ERR_clear_error();
    return rc;
}
