/* Choosing the certificate a TLS handshake serves among those that cover
 * the requested name: what the client can verify and the reference's
 * order. Which names a certificate covers is common/hostname.h. Pure
 * functions: no allocation, no locale, safe from any thread. */
#ifndef ALBD_PROXY_SNI_H
#define ALBD_PROXY_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- choosing among the certificates that cover a name -------------- */

/* A certificate's key as TLS sees it: what it can sign, and with which
 * signature schemes. */
enum px_sni_key {
    PX_SNI_KEY_RSA,     /* rsaEncryption */
    PX_SNI_KEY_RSA_PSS, /* id-RSASSA-PSS */
    PX_SNI_KEY_P256,    /* ECDSA on secp256r1 */
    PX_SNI_KEY_P384,    /* ECDSA on secp384r1 */
    PX_SNI_KEY_P521,    /* ECDSA on secp521r1 */
    PX_SNI_KEY_ED25519,
    PX_SNI_KEY_ED448,
    PX_SNI_KEY_OTHER, /* anything else (another curve): usable by no client */
};

/* What a ClientHello tells about the certificates the client can verify,
 * taken from its extensions and cipher list by the caller (the TLS layer). */
struct px_sni_hello {
    /* TLS 1.3 will be negotiated: the client lists 0x0304 in
     * supported_versions and the listener's policy allows TLS 1.3. */
    bool tls13;
    /* The signature_algorithms list (pairs of bytes, after its 2-byte
     * length), or NULL when the client sent no such extension. */
    const unsigned char *sigalgs;
    size_t sigalgs_len;
    /* The supported_groups list (pairs of bytes, after its 2-byte length),
     * or NULL when absent. */
    const unsigned char *groups;
    size_t groups_len;
    /* TLS 1.0-1.2 only: a cipher suite the client offers and the listener
     * enables authenticates with RSA / with ECDSA (EdDSA rides on those). */
    bool suite_rsa, suite_ecdsa;
};

/* True when the client of h can verify a certificate with key type key:
 * TLS 1.3: a signature scheme for that key (and, for ECDSA, its curve:
 * ecdsa_secp256r1_sha256 for P-256...) is in signature_algorithms.
 * TLS 1.0-1.2: a shared suite authenticates with that key's algorithm,
 * signature_algorithms (when present) names that algorithm with any hash,
 * and for ECDSA, supported_groups (when present) lists the key's curve.
 * Pure. */
bool px_sni_key_usable(const struct px_sni_hello *h, enum px_sni_key key);

/* One certificate covering the requested name, as the choice sees it. */
struct px_sni_cand {
    bool exact;     /* registered under the name itself, not by a wildcard */
    bool rsa;       /* RSA key; false: ECDSA (or another non-RSA key) */
    bool usable;    /* the client can verify it (px_sni_key_usable()) */
    bool weak_hash; /* signed with MD5 */
    int bits;       /* key size */
    int64_t not_after;
};

/* The reference's order (alb-api.md 2.4) for certificates that cover one
 * name: a usable certificate before an unusable one; then an exact name
 * before a wildcard; then ECDSA before RSA; then SHA before MD5; then the
 * longer key; then the later expiry. So a client that can verify both
 * kinds gets the exact RSA certificate rather than an ECDSA wildcard, and
 * an RSA-only client gets the best RSA match (exact, else wildcard) even
 * when ECDSA certificates rank higher. True when a ranks strictly before
 * b; b NULL: true. Pure. */
bool px_sni_cand_better(const struct px_sni_cand *a, const struct px_sni_cand *b);

/* The index of the first best usable candidate of c[0..n), or -1 when none
 * is usable (the caller then lets the handshake fail rather than serve a
 * certificate for another name). Pure. */
int px_sni_choose(const struct px_sni_cand *c, size_t n);

#endif
