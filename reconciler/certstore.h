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
 * certificate's parsed objects with the running one.
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

/* One parsed certificate. Everything but refs is immutable once the entry
 * is in the store. */
struct rc_cert_parsed {
    unsigned char id[RC_CERTSTORE_ID_LEN];
    enum rc_cert_parse status;
    X509 *leaf;             /* NULL when status is NO_CERT */
    STACK_OF(X509) * chain; /* the certificates after the leaf; NULL when none */
    EVP_PKEY *pkey;         /* NULL without a key or when it did not parse */
    /* Facts for the validator and `albd plan` (cert.c). */
    char *subject, *issuer; /* RFC 2253 */
    char **dns_names;       /* subjectAltName DNS entries lowercased, else the CN */
    size_t n_dns_names;
    time_t not_before, not_after;
    char fingerprint_sha256[65];
    int pub_base_id; /* EVP_PKEY_get_base_id() of the leaf's public key, 0 if none */
    int pub_bits;
    bool is_ca, self_signed;
    /* For a TLS context (proxy/tls_ctx.c): the names SNI can select by
     * (lowercase, normalized, valid wildcard patterns, no duplicates). */
    char **tls_names;
    size_t n_tls_names;
    int curve_nid;  /* the EC key's curve (NID), NID_undef otherwise */
    bool weak_hash; /* signed with MD5 (or older) */
    /* Made by rc_certstore_acquire_facts(): leaf, chain and pkey are NULL
     * (freed once the facts were taken), whatever status says. */
    bool facts_only;
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
 * key) are freed at once, on the thread that parsed it, leaving an entry
 * with facts_only set: a whole batch then holds facts only (about 0.5 KiB
 * a certificate instead of 9) and is parsed in one go on every core. An
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

/* Frees every entry nobody references. Returns how many it freed. */
size_t rc_certstore_sweep(void);

/* Counters for tests and logs: entries in the store, and inputs parsed
 * since the process started. */
struct rc_certstore_stats {
    size_t entries;
    size_t parsed;
};
void rc_certstore_stats(struct rc_certstore_stats *out);

#endif
