/*
 * hintsig: Ed25519 signatures over remediation hints.
 *
 * The collector signs every hint with its hint-signing key (made by
 * `tocsinctl pki init`); the agent verifies with the public key named in
 * its config and refuses what does not verify. The signature covers the
 * exact bytes tc_hintsig_message builds (docs/protocol.md "HINT
 * signature"): a domain string, then every field of the hint but sig,
 * length-prefixed, in a fixed order, params sorted by key. So no field
 * can be moved into another, a hint cannot be replayed to another agent,
 * and a signature over anything else tocsin might one day sign cannot
 * pass for a hint's.
 *
 * Like tls.c and pki.c, this file uses OpenSSL (EVP, EVP_PKEY_ED25519).
 */
#ifndef TC_HINTSIG_H
#define TC_HINTSIG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

/* The domain string, including its terminating NUL (15 bytes). */
#define TC_HINTSIG_DOMAIN "tocsin-hint-v1"
#define TC_HINTSIG_DOMAIN_LEN 15
/* Upper bound of tc_hintsig_message for a hint within the limits. */
#define TC_HINTSIG_MSG_MAX (256u << 10)

struct tc_hintkey;

/*
 * Load an Ed25519 private key (PEM, PKCS#8) for signing. The file is
 * refused when group or others may access it (tc_perms_key_open), or when
 * it holds another kind of key. 0 or a negative errno, err names the path.
 */
int tc_hintkey_load_private(const char *path, struct tc_hintkey **out,
                            char *err, size_t errlen);
/* Load an Ed25519 public key (PEM, SubjectPublicKeyInfo) for verifying. */
int tc_hintkey_load_public(const char *path, struct tc_hintkey **out, char *err,
                           size_t errlen);
/* tc_hintkey_free(NULL) is a no-op. */
void tc_hintkey_free(struct tc_hintkey *k);

/*
 * Append the signed bytes of h (all fields but sig) to out. 0, or
 * -EMSGSIZE / -EBADMSG when h breaks the hint limits
 * (tc_wire_hint_check: nothing is signed that a receiver would refuse),
 * or -ENOBUFS from out's cap; out is unchanged on error.
 */
int tc_hintsig_message(const struct tc_hint *h, struct tc_buf *out);

/*
 * Sign h with a private key: sig gets TC_HINT_SIG_LEN bytes. 0 or a
 * negative errno (-EINVAL: the key is public only).
 */
int tc_hintsig_sign(const struct tc_hintkey *k, const struct tc_hint *h,
                    uint8_t sig[TC_HINT_SIG_LEN]);

/*
 * Verify h->sig over h with k. 0 when it verifies; otherwise a negative
 * errno and *why (static text) says why, for the log line:
 *   -ENOKEY        "unsigned" (no sig)
 *   -EBADMSG       "signature is not 64 bytes", or the hint's limits
 *   -EKEYREJECTED  "bad signature" (another key, or altered content)
 */
int tc_hintsig_verify(const struct tc_hintkey *k, const struct tc_hint *h,
                      const char **why);

#endif
