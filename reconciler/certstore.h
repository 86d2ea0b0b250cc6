/* The process-wide store of parsed certificates (certstore.c).
 *
 * A certificate's PEM (chain, and private key when it has one) is parsed
 * once per process lifetime, not once by the validator and once more by
 * every TLS context that serves it: entries are keyed by the SHA-256 of
 * the PEM inputs (rc_certstore_id()), so byte-identical inputs find the
 * same entry whatever document, model or listener names them, and a
 * changed certificate or key is a new entry. The validator (cert.c) takes
 * its facts from an entry; a TLS context (proxy/tls_ctx.c) holds one
 * reference per certificate it serves and hands the entry's X509 and
 * EVP_PKEY to OpenSSL, so a rebuilt context shares every unchanged
 * certificate's parsed objects with the running one. Those objects are
 * decoded from DER the entry keeps when first asked for
 * (rc_cert_parsed_objects(): a handshake selecting the certificate, or a
 * context's default), so of 10,000 certificates only those clients use
 * cost OpenSSL objects.
 *
 * Lifetime: rc_certstore_acquire() returns references; an entry nobody
 * references stays in the store (the validator builds the model before
 * the snapshot's contexts take their references) until
 * rc_certstore_sweep(), which the agent calls at the end of each
 * reconcile.
 *
 * Threads: the agent thread acquires and sweeps; a context's references
 * are dropped by whichever thread frees the context (a worker may drop
 * the last reference to a snapshot), so the table and the reference
 * counts are under one mutex. An entry's fields never change after it is
 * published, so readers need no lock. Parsing a batch runs on a few
 * short-lived threads of its own (one per core), joined before
 * rc_certstore_acquire() returns; they touch only their own items.
 *
 * Secrets: the key bytes are hashed into the id and decoded; the DER
 * buffers are wiped; nothing here logs or keeps them. */
#ifndef ALBD_RECONCILER_CERTSTORE_H
#define ALBD_RECONCILER_CERTSTORE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RC_CERTSTORE_ID_LEN 32

enum rc_cert_parse {
    RC_CERT_PARSE_OK,
    RC_CERT_PARSE_NO_CERT,      /* no PEM certificate could be parsed */
    RC_CERT_PARSE_BAD_KEY,      /* the key given does not parse (or is encrypted) */
    RC_CERT_PARSE_KEY_MISMATCH, /* the key is not the leaf's */
};

/* The OpenSSL objects of an entry (rc_cert_parsed_objects()): the leaf,
 * the certificates after it (NULL when none) and the private key (NULL
 * when the input had none). Shared by every TLS context and handshake
 * that serves the entry; never changed once published. */
struct rc_cert_objects {
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *pkey;
};

/* One parsed certificate. Everything but refs and objs is immutable once
 * the entry is in the store. The parse checks everything at once (the
 * key decodes and matches the leaf), then keeps the facts and the DER of
 * the leaf, the chain and the key: a certificate no client selected holds
 * no OpenSSL object (~1.5 KiB in all instead of ~9 KiB); the first caller
 * of rc_cert_parsed_objects() decodes them. */
struct rc_cert_parsed {
    unsigned char id[RC_CERTSTORE_ID_LEN];
    enum rc_cert_parse status;
    /* Facts for the validator and `albd plan` (cert.c). */
    char *subject, *issuer; /* RFC 2253 */
    char **dns_names;       /* subjectAltName DNS entries lowercased, else the CN */
    size_t n_dns_names;
    time_t not_before, not_after;
    char fingerprint_sha256[65];
    int pub_base_id; /* EVP_PKEY_get_base_id() of the leaf's public key, 0 if none */
    int pub_bits;
    int key_base_id, key_bits; /* the same for the private key; 0 without one */
    bool is_ca, self_signed;
    /* For a TLS context (proxy/tls_ctx.c): the names SNI can select by
     * (lowercase, normalized, valid wildcard patterns, no duplicates). */
    char **tls_names;
    size_t n_tls_names;
    int curve_nid;  /* the EC key's curve (NID), NID_undef otherwise */
    bool weak_hash; /* signed with MD5 (or older) */
    /* Made by rc_certstore_acquire_facts(): no DER kept, no objects ever. */
    bool facts_only;
    /* What rc_cert_parsed_objects() decodes: set only when status is OK
     * and the entry is not facts_only. der holds the leaf (leaf_der_len
     * bytes) followed by the chain (chain_der_len); key_der (wiped when
     * freed) is the key as the parse decoded it, key_structure/key_type
     * what the decoder is told (static strings; NULL: OpenSSL guesses). */
    unsigned char *der;
    size_t leaf_der_len, chain_der_len;
    unsigned char *key_der;
    size_t key_der_len;
    const char *key_structure, *key_type;
    /* The decoded objects, published once by rc_cert_parsed_objects(). */
    _Atomic(struct rc_cert_objects *) objs;
    /* Store bookkeeping (under the store's mutex). */
    size_t refs;
    struct rc_cert_parsed *next;
};

/* What to look up or parse: the PEM chain (leaf first) and the PEM private
 * key (NULL/0 for none). id, when not NULL, is rc_certstore_id() of them,
 * computed earlier (the model keeps it), and is trusted as such. */
struct rc_certstore_in {
    const char *cert_pem;
    size_t cert_len;
    const char *key_pem;
    size_t key_len;
    const unsigned char *id;
};

/* The id of a certificate's PEM inputs: SHA-256 over both, lengths
 * included (a key given and an empty one differ). */
void rc_certstore_id(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                     unsigned char id[RC_CERTSTORE_ID_LEN]);

/* Fills out[i] with a new reference to the entry of in[i] for every i,
 * parsing the inputs that are not in the store yet (in parallel when
 * there are many). An input that does not parse still gets an entry,
 * whose status says why. Returns 0, or -ENOMEM (then no reference is
 * taken and out is left NULL-filled). Any thread; parsing is bounded by
 * the number of cores. */
int rc_certstore_acquire(const struct rc_certstore_in *in, size_t n, struct rc_cert_parsed **out);

/* rc_certstore_acquire() for a caller that reads only the facts (the
 * validator of a one-shot load: cert.c, rc_load_opts.release_parsed). An
 * input not in the store is parsed and its OpenSSL objects (leaf, chain,
 * key) are freed at once and no DER is kept, on the thread that parsed it, leaving an entry
 * with facts_only set: a whole batch then holds facts only (about 0.5 KiB
 * a certificate instead of 1.5 with the DER) and is parsed in one go on every core. An
 * entry with its objects serves too. rc_certstore_acquire() never returns
 * a facts_only entry (it parses that input again), so no TLS context gets
 * one. Same contract otherwise. */
int rc_certstore_acquire_facts(const struct rc_certstore_in *in, size_t n,
                               struct rc_cert_parsed **out);

/* Parsing ahead: while a cold load (nothing to reuse) reads and checks
 * its manifests on the calling thread, the certificates its documents
 * name are read and parsed into the store on the other cores, so that the
 * load's rc_certstore_acquire() finds them (on 2 cores the load's serial
 * part and the parse overlap). cert_paths[i] and key_paths[i] (NULL: no
 * key) are read as the load reads them (regular files, at most 1 MiB);
 * what cannot be read is left to the load, which reports it. facts: as
 * rc_certstore_acquire_facts(). An entry parsed ahead is like one nobody
 * references: the load takes it, or a sweep frees it. The first
 * rc_certstore_acquire() (either kind) stops the parse ahead: what it
 * finished is in the store, and the acquire parses the rest on every
 * core. Returns NULL when there is nothing to gain (one core, few inputs,
 * one running already, out of memory). Paths are copied. Any thread;
 * one parse ahead at a time per process. */
struct rc_certstore_ahead;
struct rc_certstore_ahead *rc_certstore_ahead_start(const char *const *cert_paths,
                                                    const char *const *key_paths, size_t n,
                                                    bool facts);

/* Stops a parse ahead (when no acquire did) and frees it; a may be NULL. */
void rc_certstore_ahead_end(struct rc_certstore_ahead *a);

/* Takes another reference to e. Any thread. */
struct rc_cert_parsed *rc_cert_parsed_ref(struct rc_cert_parsed *e);

/* Drops a reference (e may be NULL). The entry stays in the store until a
 * sweep finds it unreferenced. Any thread. */
void rc_cert_parsed_unref(struct rc_cert_parsed *e);

/* The entry's leaf, chain and key, decoded from its DER by the first
 * caller and kept until the entry is freed: every later caller gets the
 * same objects (two threads racing on first use both decode, one
 * publishes, the other frees its copy). ~150 us the first time (d2i_X509
 * and the key with a reused decoder), a load afterwards. NULL when the
 * entry has nothing to decode (status not OK, facts_only) or out of
 * memory (then a later call tries again). The objects belong to the
 * entry: take a reference (SSL_use_cert_and_key() does) to keep them past
 * the caller's reference to e. Any thread. */
const struct rc_cert_objects *rc_cert_parsed_objects(struct rc_cert_parsed *e);

/* The objects if rc_cert_parsed_objects() published them already, else
 * NULL; never decodes. Any thread. */
const struct rc_cert_objects *rc_cert_parsed_peek(const struct rc_cert_parsed *e);

/* Frees every entry nobody references. Returns how many it freed. */
size_t rc_certstore_sweep(void);

/* Counters for tests and logs: entries in the store, inputs parsed and
 * objects decoded on first use since the process started. */
struct rc_certstore_stats {
    size_t entries;
    size_t parsed;
    size_t decoded; /* rc_cert_parsed_objects() decodes, published or not */
};
void rc_certstore_stats(struct rc_certstore_stats *out);

#endif
