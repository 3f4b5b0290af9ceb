/*
 * pki: a small certificate authority for quick starts and enrollment,
 * the second half of the TLS module (only tls.c and pki.c use OpenSSL).
 *
 * Keys are ECDSA P-256. Private keys are written with mode 0600 (created
 * with O_EXCL so an existing key is never overwritten); the CA key stays
 * in DIR (DIR/ca.key) and is never copied elsewhere.
 */
#ifndef TC_PKI_H
#define TC_PKI_H

#include <stddef.h>

/* The hint-signing key pair (Ed25519) in a pki directory. */
#define TC_PKI_HINT_KEY "hint-signing.key"
#define TC_PKI_HINT_PUB "hint-signing.pub"

/*
 * Create DIR (mode 0700) with ca.crt, ca.key, collector.crt and
 * collector.key, and the hint-signing pair (tc_pki_hint_key). The collector
 * certificate has SANs for localhost, 127.0.0.1, ::1 and every entry of sans
 * (IP literal -> IP SAN, else DNS). Fails with -EEXIST if DIR/ca.key exists.
 * err gets a message.
 */
int tc_pki_init(const char *dir, const char *const *sans, size_t nsans,
                char *err, size_t errlen);

/*
 * Create DIR/hint-signing.pub (0644) and DIR/hint-signing.key (0600), an
 * Ed25519 pair the collector signs hints with (common/hintsig.h), unless
 * the key exists already. 0 created, 1 there already, or a negative
 * errno with a message in err. Never overwrites a file.
 */
int tc_pki_hint_key(const char *dir, char *err, size_t errlen);

/*
 * Issue DIR/NAME.crt and DIR/NAME.key for agent NAME (subject CN=NAME),
 * signed by DIR/ca.key. NAME must be [A-Za-z0-9._-]{1,64}. The
 * certificate is valid from now + not_before_s to now + not_after_s
 * (seconds; tests pass negative values to make expired certificates).
 */
int tc_pki_issue_agent(const char *dir, const char *name, long not_before_s,
                       long not_after_s, char *err, size_t errlen);

#endif
