/* TLS server contexts (see tls_ctx.h).
 *
 * Certificate selection happens in the ClientHello callback, before OpenSSL
 * chooses a cipher: it reads the SNI extension itself, looks the name up in
 * an index built once per context (a hash of exact names and a hash of
 * wildcard patterns keyed by the part after their first label), works out
 * from the ClientHello which key types the client can verify (signature
 * algorithms for TLS 1.3; shared cipher suites, signature algorithms and
 * groups for TLS 1.0-1.2) and installs on the SSL the one certificate the
 * reference's order puts first (px_sni_cand_better(): exact name >
 * wildcard, then ECDSA > RSA, ...). Installing one certificate, not one of
 * each kind, keeps OpenSSL from preferring an ECDSA wildcard over an exact
 * RSA name. When no covering certificate is usable by the client, the best
 * of each kind is installed and OpenSSL refuses the handshake. The callback
 * also runs on resumed handshakes, so px_tls_host_allowed() always has a
 * selection. */
#include "proxy/tls_ctx.h"

#include <errno.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/ptrset.h"
#include "common/log.h"
#include "common/hostname.h"
#include "proxy/sni.h"
#include "reconciler/certstore.h"

/* One certificate a context serves. The parsed objects and names belong
 * to the store's entry (reconciler/certstore.h), of which the context
 * holds one reference: contexts built from the same PEM share them. The
 * leaf, chain and key are decoded when a handshake first selects the
 * certificate (cert_objects()); the defaults when the context is built. */
struct cert_entry {
    struct rc_cert_parsed *parsed; /* one reference */
    bool rsa;
    bool weak_hash;       /* signed with MD5 (or older) */
    enum px_sni_key kind; /* what the client must support to verify it */
    int bits;
    time_t not_after;
    char *const *names; /* parsed->tls_names: lowercase DNS names and valid wildcard patterns */
    size_t n_names;
};

/* The certificates registered under one name (exact) or one pattern
 * (wildcard): all of them, since which one a client can use depends on
 * its ClientHello. */
struct slot {
    const char *pattern; /* the certificate name (a cert_entry's, which outlives the slot) */
    const char *key;     /* hash key: pattern itself, or what follows its '*' label */
    uint64_t hash;
    const struct cert_entry **certs; /* &one, or an owned array when more than one */
    size_t n_certs;
    const struct cert_entry *one; /* the usual case: one certificate per name */
    struct slot *next;            /* bucket chain */
};

/* A hash table whose slots all come from one array sized for the names
 * to index (a name is at most one slot): 10,000 names cost three
 * allocations, not 20,000. */
struct table {
    struct slot **b;
    size_t mask;
    struct slot *pool;
    size_t n_pool, cap_pool;
};

/* Everything a context owns beyond OpenSSL's own state; hangs off the
 * SSL_CTX as ex_data and is freed with it. */
struct tls_index {
    struct cert_entry *certs;
    size_t n_certs;
    struct table exact, wild;
    const struct cert_entry *def_ec, *def_rsa; /* no SNI, or an unknown name */
    struct px_tls_keys *keys;                  /* one reference, may be NULL */
    bool h2;
};

/* What the ClientHello callback chose for one SSL (its ex_data). */
struct choice {
    const struct cert_entry *ec, *rsa;
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ctx_ex_idx = -1, ssl_ex_idx = -1;

/* ---- the index ---------------------------------------------------------- */

/* A table for at most n names. */
static int table_init(struct table *t, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    t->b = calloc(cap, sizeof *t->b);
    t->pool = malloc((n ? n : 1) * sizeof *t->pool);
    if (t->b == NULL || t->pool == NULL) {
        free(t->b);
        free(t->pool);
        t->b = NULL;
        t->pool = NULL;
        return -ENOMEM;
    }
    t->mask = cap - 1;
    t->n_pool = 0;
    t->cap_pool = n ? n : 1;
    return 0;
}

static void table_cleanup(struct table *t)
{
    for (size_t i = 0; i < t->n_pool; i++)
        if (t->pool[i].certs != &t->pool[i].one)
            free(t->pool[i].certs);
    free(t->pool);
    free(t->b);
    t->pool = NULL;
    t->b = NULL;
    t->n_pool = 0;
}

static bool better(const struct cert_entry *a, const struct cert_entry *b)
{
    if (b == NULL)
        return true;
    if (a->bits != b->bits)
        return a->bits > b->bits;
    return a->not_after > b->not_after;
}

static struct slot *slot_find_h(const struct table *t, uint64_t h, const char *key,
                                const char *pattern)
{
    for (struct slot *s = t->b[h & t->mask]; s != NULL; s = s->next)
        if (s->hash == h && strcmp(s->key, key) == 0 && strcmp(s->pattern, pattern) == 0)
            return s;
    return NULL;
}

static struct slot *slot_find(const struct table *t, const char *key, const char *pattern)
{
    return slot_find_h(t, cm_hash_str(key), key, pattern);
}

static const char *wild_key(const char *pattern)
{
    return strchr(pattern, '.') + 1; /* valid patterns always have a dot */
}

static int index_add(struct tls_index *ix, struct cert_entry *e, const char *name)
{
    bool wild = name[0] == '*';
    struct table *t = wild ? &ix->wild : &ix->exact;
    const char *key = wild ? wild_key(name) : name;
    uint64_t h = cm_hash_str(key);
    struct slot *s = slot_find_h(t, h, key, name);
    if (s == NULL) {
        if (t->n_pool == t->cap_pool)
            return -ENOMEM; /* more names than the table was sized for: a bug */
        s = &t->pool[t->n_pool++];
        *s = (struct slot){.pattern = name, .key = key, .hash = h, .next = t->b[h & t->mask]};
        t->b[h & t->mask] = s;
        s->one = e;
        s->certs = &s->one;
        s->n_certs = 1;
        return 0;
    }
    for (size_t i = 0; i < s->n_certs; i++)
        if (s->certs[i] == e)
            return 0;
    const struct cert_entry **v =
        malloc((s->n_certs + 1) * sizeof *v); /* the rare name several certificates share */
    if (v == NULL)
        return -ENOMEM;
    memcpy(v, s->certs, s->n_certs * sizeof *v);
    if (s->certs != &s->one)
        free(s->certs);
    s->certs = v;
    v[s->n_certs++] = e;
    return 0;
}

/* ---- the choice --------------------------------------------------------- */

/* The running result of a choice: the best candidate in the reference's
 * order, and the best of each kind for when none is usable. */
struct pick {
    const struct px_sni_hello *hello;
    const struct cert_entry *best, *kind_best[2]; /* [0] non-RSA, [1] RSA */
    struct px_sni_cand best_c, kind_c[2];
};

static void consider(struct pick *p, const struct cert_entry *e, bool exact)
{
    if (e == NULL)
        return;
    struct px_sni_cand c = {.exact = exact,
                            .rsa = e->rsa,
                            .usable = px_sni_key_usable(p->hello, e->kind),
                            .weak_hash = e->weak_hash,
                            .bits = e->bits,
                            .not_after = (int64_t)e->not_after};
    if (px_sni_cand_better(&c, p->best ? &p->best_c : NULL)) {
        p->best = e;
        p->best_c = c;
    }
    int k = e->rsa ? 1 : 0;
    if (px_sni_cand_better(&c, p->kind_best[k] ? &p->kind_c[k] : NULL)) {
        p->kind_best[k] = e;
        p->kind_c[k] = c;
    }
}

static void consider_slot(struct pick *p, const struct slot *s, bool exact)
{
    for (size_t i = 0; s != NULL && i < s->n_certs; i++)
        consider(p, s->certs[i], exact);
}

/* Considers the wildcard patterns covering host (normalized). */
static void index_choose_wild(const struct tls_index *ix, const char *host, struct pick *p)
{
    const char *dot = strchr(host, '.');
    if (dot == NULL)
        return;
    const char *key = dot + 1;
    uint64_t h = cm_hash_str(key);
    for (const struct slot *s = ix->wild.b[h & ix->wild.mask]; s != NULL; s = s->next)
        if (s->hash == h && strcmp(s->key, key) == 0 && cm_hostname_match(s->pattern, host))
            consider_slot(p, s, false);
}

/* The certificate(s) for host (normalized, or NULL without usable SNI)
 * and a client described by hello: every certificate covering the name
 * (exact or wildcard) ranked by px_sni_cand_better(); no covering
 * certificate at all gives the default ones. One usable winner is chosen
 * alone; without one, the best of each kind go in (the handshake fails). */
static void index_choose(const struct tls_index *ix, const char *host,
                         const struct px_sni_hello *hello, struct choice *c)
{
    struct pick p = {.hello = hello};
    if (host != NULL) {
        consider_slot(&p, slot_find(&ix->exact, host, host), true);
        index_choose_wild(ix, host, &p);
    }
    if (p.best == NULL) {
        consider(&p, ix->def_ec, true);
        consider(&p, ix->def_rsa, true);
    }
    c->ec = c->rsa = NULL;
    if (p.best != NULL && p.best_c.usable) {
        *(p.best->rsa ? &c->rsa : &c->ec) = p.best;
        return;
    }
    c->ec = p.kind_best[0];
    c->rsa = p.kind_best[1];
}

/* ---- certificates ------------------------------------------------------- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0; /* encrypted keys are refused rather than prompting */
}

static void openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown error");
    ERR_clear_error();
}

/* e's leaf, chain and key, decoded on the first call for its entry (by
 * any context or thread) and shared from then on; NULL when that decode
 * runs out of memory, said once per process (the handshake is refused). */
static const struct rc_cert_objects *cert_objects(const struct cert_entry *e)
{
    static atomic_bool said;
    const struct rc_cert_objects *o = rc_cert_parsed_objects(e->parsed);
    if (o == NULL && !atomic_exchange(&said, true))
        px_log_error("TLS: cannot decode certificate %s for a handshake (out of memory); "
                     "handshakes selecting it fail until memory is available",
                     e->parsed->subject ? e->parsed->subject : "(unnamed)");
    return o;
}

/* e's leaf if it was decoded, else NULL (no handshake could hold it). */
static const X509 *cert_leaf(const struct cert_entry *e)
{
    const struct rc_cert_objects *o = e != NULL ? rc_cert_parsed_peek(e->parsed) : NULL;
    return o != NULL ? o->leaf : NULL;
}

static void cert_cleanup(struct cert_entry *e)
{
    rc_cert_parsed_unref(e->parsed);
    e->parsed = NULL;
}

/* What a client must support to verify p, whose key's base id is base. */
static enum px_sni_key key_kind(const struct rc_cert_parsed *p, int base)
{
    switch (base) {
    case EVP_PKEY_RSA:
        return PX_SNI_KEY_RSA;
    case EVP_PKEY_RSA_PSS:
        return PX_SNI_KEY_RSA_PSS;
    case EVP_PKEY_ED25519:
        return PX_SNI_KEY_ED25519;
    case EVP_PKEY_ED448:
        return PX_SNI_KEY_ED448;
    case EVP_PKEY_EC:
        return p->curve_nid == NID_X9_62_prime256v1 ? PX_SNI_KEY_P256
               : p->curve_nid == NID_secp384r1      ? PX_SNI_KEY_P384
               : p->curve_nid == NID_secp521r1      ? PX_SNI_KEY_P521
                                                    : PX_SNI_KEY_OTHER;
    default:
        return PX_SNI_KEY_OTHER;
    }
}

/* Fills e from certificate c and its parsed entry p (taking over the
 * caller's reference). 0, or -1 with err. */
static int cert_load(struct cert_entry *e, const struct rc_certificate *c, struct rc_cert_parsed *p,
                     char *err, size_t errlen)
{
    const char *name = c->meta.name ? c->meta.name : "(unnamed)";
    e->parsed = p;
    if (c->cert_pem == NULL || c->key_pem == NULL) {
        snprintf(err, errlen, "certificate %s: no %s", name,
                 c->cert_pem == NULL ? "certificate" : "private key");
        return -1;
    }
    switch (p->status) {
    case RC_CERT_PARSE_OK:
        break;
    case RC_CERT_PARSE_NO_CERT:
        snprintf(err, errlen, "certificate %s: cannot read the certificate: no PEM certificate",
                 name);
        return -1;
    case RC_CERT_PARSE_BAD_KEY:
        snprintf(err, errlen,
                 "certificate %s: cannot read the private key (encrypted or malformed)", name);
        return -1;
    case RC_CERT_PARSE_KEY_MISMATCH:
        snprintf(err, errlen, "certificate %s: the private key does not match the certificate",
                 name);
        return -1;
    }
    /* The store noted the private key's type and size (an RSA-PSS key
     * may sit behind an rsaEncryption certificate). */
    int base = p->key_base_id;
    e->rsa = base == EVP_PKEY_RSA || base == EVP_PKEY_RSA_PSS;
    e->kind = key_kind(p, base);
    e->weak_hash = p->weak_hash;
    e->bits = p->key_bits;
    e->not_after = p->not_after;
    e->names = p->tls_names;
    e->n_names = p->n_tls_names;
    return 0;
}

static void index_free(struct tls_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->n_certs; i++)
        cert_cleanup(&ix->certs[i]);
    free(ix->certs);
    table_cleanup(&ix->exact);
    table_cleanup(&ix->wild);
    px_tls_keys_unref(ix->keys);
    free(ix);
}

/* Loads the listener's certificates and indexes their names. */
static int index_build(struct tls_index *ix, const struct rc_listener *l, char *err, size_t errlen)
{
    struct cm_ptrset seen = {0};
    size_t n = 1 + l->tls.n_extension_certificates;
    const struct rc_certificate **uniq = malloc(n * sizeof *uniq);
    struct rc_certstore_in *in = calloc(n, sizeof *in);
    struct rc_cert_parsed **parsed = calloc(n, sizeof *parsed);
    ix->certs = calloc(n, sizeof *ix->certs);
    size_t n_uniq = 0;
    if (uniq == NULL || in == NULL || parsed == NULL || ix->certs == NULL ||
        cm_ptrset_init(&seen, n) != 0) {
        free(uniq);
        free(in);
        free(parsed);
        cm_ptrset_cleanup(&seen);
        goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        const struct rc_certificate *c =
            i == 0 ? l->tls.certificate : l->tls.extension_certificates[i - 1];
        /* Listed twice (the default again as an extension): one certificate. */
        if (c == NULL || !cm_ptrset_add(&seen, c))
            continue;
        uniq[n_uniq] = c;
        in[n_uniq] = (struct rc_certstore_in){.cert_pem = c->cert_pem,
                                              .cert_len = c->cert_pem_len,
                                              .key_pem = c->key_pem,
                                              .key_len = c->key_pem_len,
                                              .id = c->has_store_id ? c->store_id : NULL};
        n_uniq++;
    }
    cm_ptrset_cleanup(&seen);
    /* Parsed once per process: certificates the validator or an earlier
     * context parsed are only looked up (reconciler/certstore.h). */
    int arc = rc_certstore_acquire(in, n_uniq, parsed);
    free(in);
    if (arc != 0) {
        free(uniq);
        free(parsed);
        goto nomem;
    }
    size_t n_exact = 0, n_wild = 0;
    int rc = 0;
    for (size_t i = 0; i < n_uniq; i++) {
        /* The entries are scattered in memory: ask for the next ones'
         * early, so that their cache misses overlap. */
        if (i + 8 < n_uniq)
            __builtin_prefetch(parsed[i + 8]);
        if (i + 4 < n_uniq && parsed[i + 4] != NULL)
            __builtin_prefetch(parsed[i + 4]->tls_names);
        if (i + 2 < n_uniq && parsed[i + 2] != NULL && parsed[i + 2]->n_tls_names > 0)
            __builtin_prefetch(parsed[i + 2]->tls_names[0]);
        if (rc != 0) {
            rc_cert_parsed_unref(parsed[i]);
            continue;
        }
        /* ix->certs[i] owns the reference from here, even on failure. */
        struct cert_entry *e = &ix->certs[ix->n_certs++];
        rc = cert_load(e, uniq[i], parsed[i], err, errlen);
        for (size_t j = 0; rc == 0 && j < e->n_names; j++)
            *(e->names[j][0] == '*' ? &n_wild : &n_exact) += 1;
    }
    free(uniq);
    free(parsed);
    if (rc != 0)
        return -1;
    if (table_init(&ix->exact, n_exact) != 0 || table_init(&ix->wild, n_wild) != 0)
        goto nomem;
    for (size_t i = 0; i < ix->n_certs; i++)
        for (size_t j = 0; j < ix->certs[i].n_names; j++)
            if (index_add(ix, &ix->certs[i], ix->certs[i].names[j]) != 0)
                goto nomem;

    /* Without SNI: the default certificate, with a certificate of the other
     * kind registered under one of its names, if any. */
    const struct cert_entry *def = &ix->certs[0];
    const struct cert_entry *other = NULL;
    for (size_t j = 0; j < def->n_names && other == NULL; j++) {
        const char *nm = def->names[j];
        const struct slot *s =
            nm[0] == '*' ? slot_find(&ix->wild, wild_key(nm), nm) : slot_find(&ix->exact, nm, nm);
        for (size_t k = 0; s != NULL && k < s->n_certs; k++)
            if (s->certs[k]->rsa != def->rsa && better(s->certs[k], other))
                other = s->certs[k];
    }
    ix->def_ec = def->rsa ? other : def;
    ix->def_rsa = def->rsa ? def : other;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* ---- callbacks ---------------------------------------------------------- */

static void ctx_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    index_free(ptr);
}

static void ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void ex_init(void)
{
    ctx_ex_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_ex_free);
    ssl_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_ex_free);
}

/* The first host_name of a server_name extension, normalized into host;
 * NULL when absent or unusable. */
static const char *sni_read(SSL *ssl, char *host, size_t hostsz)
{
    const unsigned char *p;
    size_t len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 2)
        return NULL;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len)
        return NULL;
    p += 2;
    while (list >= 3) {
        size_t nlen = ((size_t)p[1] << 8) | p[2];
        if (nlen + 3 > list)
            return NULL;
        if (p[0] == TLSEXT_NAMETYPE_host_name)
            return cm_hostname_normalize((const char *)p + 3, nlen, host, hostsz) >= 0 ? host
                                                                                       : NULL;
        p += 3 + nlen;
        list -= 3 + nlen;
    }
    return NULL;
}

/* The body of a list extension with a 2-byte length prefix, or NULL. */
static const unsigned char *ext_list(SSL *ssl, unsigned type, size_t *len)
{
    const unsigned char *p;
    size_t n;
    if (SSL_client_hello_get0_ext(ssl, type, &p, &n) != 1 || n < 2 ||
        (((size_t)p[0] << 8) | p[1]) != n - 2)
        return NULL;
    *len = n - 2;
    return p + 2;
}

/* Whether TLS 1.3 will be negotiated: the client offers it and so does the
 * listener's policy. */
static bool hello_tls13(SSL *ssl)
{
    long max = SSL_get_max_proto_version(ssl);
    if ((max != 0 && max < TLS1_3_VERSION) || (SSL_get_options(ssl) & SSL_OP_NO_TLSv1_3))
        return false;
    const unsigned char *p;
    size_t n;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &n) != 1 || n < 1 ||
        (size_t)p[0] + 1 != n)
        return false;
    for (size_t i = 1; i + 1 < n; i += 2)
        if (p[i] == 0x03 && p[i + 1] == 0x04)
            return true;
    return false;
}

/* TLS 1.0-1.2: which authentications the cipher suites both sides enable
 * offer. */
static void hello_suites(SSL *ssl, struct px_sni_hello *h)
{
    const unsigned char *raw;
    size_t len = SSL_client_hello_get0_ciphers(ssl, &raw);
    STACK_OF(SSL_CIPHER) *offered = NULL, *scsvs = NULL;
    STACK_OF(SSL_CIPHER) *ours = SSL_get_ciphers(ssl);
    if (len == 0 || ours == NULL ||
        !SSL_bytes_to_cipher_list(ssl, raw, len, SSL_client_hello_isv2(ssl), &offered, &scsvs)) {
        ERR_clear_error();
        return;
    }
    for (int i = 0; i < sk_SSL_CIPHER_num(offered); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(offered, i);
        int auth = SSL_CIPHER_get_auth_nid(c);
        if ((auth != NID_auth_rsa || h->suite_rsa) && (auth != NID_auth_ecdsa || h->suite_ecdsa))
            continue;
        for (int j = 0; j < sk_SSL_CIPHER_num(ours); j++) {
            if (SSL_CIPHER_get_id(sk_SSL_CIPHER_value(ours, j)) == SSL_CIPHER_get_id(c)) {
                *(auth == NID_auth_rsa ? &h->suite_rsa : &h->suite_ecdsa) = true;
                break;
            }
        }
    }
    sk_SSL_CIPHER_free(offered);
    sk_SSL_CIPHER_free(scsvs);
}

static void hello_read(SSL *ssl, struct px_sni_hello *h)
{
    memset(h, 0, sizeof *h);
    h->tls13 = hello_tls13(ssl);
    h->sigalgs = ext_list(ssl, TLSEXT_TYPE_signature_algorithms, &h->sigalgs_len);
    h->groups = ext_list(ssl, TLSEXT_TYPE_supported_groups, &h->groups_len);
    if (!h->tls13)
        hello_suites(ssl, h);
}

/* Whether the SSL's certificate slot holding e's leaf has e's key and
 * chain (the same objects). */
static bool slot_is(SSL *ssl, const struct cert_entry *e)
{
    STACK_OF(X509) *chain = NULL;
    const struct rc_cert_objects *o = rc_cert_parsed_peek(e->parsed);
    if (o == NULL || SSL_get_privatekey(ssl) != o->pkey || SSL_get0_chain_certs(ssl, &chain) != 1)
        return false;
    int n = chain != NULL ? sk_X509_num(chain) : 0;
    if (n != (o->chain != NULL ? sk_X509_num(o->chain) : 0))
        return false;
    for (int i = 0; i < n; i++)
        if (sk_X509_value(chain, i) != sk_X509_value(o->chain, i))
            return false;
    return true;
}

/* Whether ssl already holds exactly the certificates of c: on the first
 * ClientHello an SSL holds its context's (the listener's defaults), which
 * is the choice for every client of a one-certificate listener and for
 * names no other certificate covers. Installing them again would redo
 * OpenSSL's key and security checks on every handshake. Moves the SSL's
 * current certificate, which OpenSSL sets again when it picks the
 * signature algorithm. */
static bool ssl_holds(SSL *ssl, const struct choice *c)
{
    int want = (c->ec != NULL) + (c->rsa != NULL), seen = 0;
    if (want == 0 || SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST) != 1)
        return false;
    do {
        const X509 *x = SSL_get_certificate(ssl);
        const struct cert_entry *e = x != NULL && x == cert_leaf(c->ec)    ? c->ec
                                     : x != NULL && x == cert_leaf(c->rsa) ? c->rsa
                                                                           : NULL;
        if (e == NULL || !slot_is(ssl, e))
            return false;
        seen++;
    } while (SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT) == 1);
    return seen == want;
}

/* Per-handshake settings that need no state: without client certificate
 * verification the context's certificate store is empty, so OpenSSL's
 * automatic chain building (an X509_verify_cert per handshake for a
 * certificate given without intermediates) can only ever find the leaf:
 * skip it. With mTLS the store holds the client CAs and building stays. */
static void hello_tune(SSL *ssl)
{
    if (!(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
        SSL_set_mode(ssl, SSL_MODE_NO_AUTO_CHAIN);
}

static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
    const struct tls_index *ix = arg;
    char buf[CM_HOSTNAME_MAX + 1];
    struct px_sni_hello hello;
    hello_read(ssl, &hello);
    struct choice c;
    index_choose(ix, sni_read(ssl, buf, sizeof buf), &hello, &c);

    struct choice *kept = SSL_get_ex_data(ssl, ssl_ex_idx);
    bool first = kept == NULL;
    if (kept == NULL) {
        kept = malloc(sizeof *kept);
        if (kept == NULL || !SSL_set_ex_data(ssl, ssl_ex_idx, kept)) {
            free(kept);
            goto fail;
        }
    }
    *kept = c;
    if (first) {
        hello_tune(ssl);
        if (ssl_holds(ssl, &c))
            return SSL_CLIENT_HELLO_SUCCESS;
    }
    /* Decoded on the first handshake that selects them. */
    const struct rc_cert_objects *oec = c.ec != NULL ? cert_objects(c.ec) : NULL;
    const struct rc_cert_objects *orsa = c.rsa != NULL ? cert_objects(c.rsa) : NULL;
    if ((c.ec != NULL && oec == NULL) || (c.rsa != NULL && orsa == NULL))
        goto fail;
    SSL_certs_clear(ssl);
    if (oec != NULL && SSL_use_cert_and_key(ssl, oec->leaf, oec->pkey, oec->chain, 1) != 1)
        goto fail;
    if (orsa != NULL && SSL_use_cert_and_key(ssl, orsa->leaf, orsa->pkey, orsa->chain, 1) != 1)
        goto fail;
    return SSL_CLIENT_HELLO_SUCCESS;
fail:
    *al = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct tls_index *ix = arg;
    bool h2 = false, h11 = false;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (n == 0 || i + 1 + n > inlen)
            return SSL_TLSEXT_ERR_NOACK;
        if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0)
            h2 = true;
        else if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0)
            h11 = true;
        i += 1 + n;
    }
    if (h2 && ix->h2) {
        *out = (const unsigned char *)"h2";
        *outlen = 2;
        return SSL_TLSEXT_ERR_OK;
    }
    if (h11) {
        *out = (const unsigned char *)"http/1.1";
        *outlen = 8;
        return SSL_TLSEXT_ERR_OK;
    }
    /* Nothing we speak: go on without ALPN; the connection is HTTP/1.1. */
    return SSL_TLSEXT_ERR_NOACK;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_index *ix = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_idx);
    if (ix == NULL || ix->keys == NULL)
        return -1;
    int rc = px_tls_keys_ticket_cb(ix->keys, key_name, iv, cctx, hctx, enc);
    /* TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's client,
     * browsers): a resumption must bring a new one, or every other
     * connection of such a client is a full handshake. OpenSSL sends one
     * only when the callback asks to renew. */
    if (!enc && rc == 1 && SSL_version(ssl) == TLS1_3_VERSION)
        rc = 2;
    return rc;
}

/* ---- context setup ------------------------------------------------------ */

static int apply_policy(SSL_CTX *ctx, const struct rc_tls_policy *p, char *err, size_t errlen)
{
    static const int version[4] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    static const uint64_t no_version[4] = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2,
                                           SSL_OP_NO_TLSv1_3};
    const char *name = p->meta.name ? p->meta.name : "(unnamed)";
    unsigned v = p->versions & 0xfu;
    if (v == 0) {
        snprintf(err, errlen, "TLS policy %s: no TLS version", name);
        return -1;
    }
    int lo = 0, hi = 3;
    while (!(v & (1u << lo)))
        lo++;
    while (!(v & (1u << hi)))
        hi--;
    if (SSL_CTX_set_min_proto_version(ctx, version[lo]) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, version[hi]) != 1) {
        snprintf(err, errlen, "TLS policy %s: versions not supported by OpenSSL", name);
        return -1;
    }
    for (int i = lo + 1; i < hi; i++)
        if (!(v & (1u << i)))
            SSL_CTX_set_options(ctx, no_version[i]);
    /* OpenSSL 3 offers TLS 1.0 and 1.1 (MD5/SHA-1 handshake signatures)
     * only at security level 0. The level is per context, so it lowers TLS
     * 1.2 on this listener too: SHA-1 handshake signatures when the client
     * offers nothing better, and short keys or SHA-1/MD5 signatures in
     * certificates, client certificates under mTLS included, are no longer
     * refused (README says so; the cipher suites stay the policy's). */
    if (v & (RC_TLS_1_0 | RC_TLS_1_1))
        SSL_CTX_set_security_level(ctx, 0);

    if (v & (RC_TLS_1_0 | RC_TLS_1_1 | RC_TLS_1_2)) {
        if (p->cipher_list == NULL || p->cipher_list[0] == '\0' ||
            SSL_CTX_set_cipher_list(ctx, p->cipher_list) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "TLS policy %s: no cipher usable with TLS 1.0-1.2", name);
            return -1;
        }
    }
    const char *suites = (v & RC_TLS_1_3) ? p->ciphersuites : "";
    if ((v & RC_TLS_1_3) && (suites == NULL || suites[0] == '\0')) {
        snprintf(err, errlen, "TLS policy %s: TLS 1.3 without a TLS 1.3 cipher suite", name);
        return -1;
    }
    if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "TLS policy %s: unusable TLS 1.3 cipher suites", name);
        return -1;
    }
    return 0;
}

static int apply_mutual(SSL_CTX *ctx, const struct rc_listener *l, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    size_t added = 0;
    if (names == NULL)
        goto nomem;
    for (size_t i = 0; i < l->tls.mutual.n_ca_certificates; i++) {
        const struct rc_certificate *c = l->tls.mutual.ca_certificates[i];
        if (c == NULL || c->cert_pem == NULL)
            continue;
        BIO *b = BIO_new_mem_buf(c->cert_pem, (int)c->cert_pem_len);
        if (b == NULL)
            goto nomem;
        X509 *x;
        while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
            X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));
            if (X509_STORE_add_cert(store, x) != 1 || nm == NULL || !sk_X509_NAME_push(names, nm)) {
                X509_NAME_free(nm);
                X509_free(x);
                BIO_free(b);
                goto nomem;
            }
            X509_free(x);
            added++;
        }
        BIO_free(b);
        ERR_clear_error();
    }
    if (added == 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        snprintf(err, errlen, "mutual authentication: no readable CA certificate");
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    /* A CA certificate that is itself an intermediate is a trust anchor. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
nomem:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    ERR_clear_error();
    snprintf(err, errlen, "mutual authentication: out of memory");
    return -1;
}

/* Sessions resume only within the same listener and trust anchors. */
static int set_sid_ctx(SSL_CTX *ctx, const struct rc_listener *l)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    const char *name = l->meta.name ? l->meta.name : "";
    int ok = h != NULL && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(h, "albd-listener", 14) == 1 &&
             EVP_DigestUpdate(h, name, strlen(name) + 1) == 1;
    if (ok && l->tls.mutual.enabled) {
        for (size_t i = 0; ok && i < l->tls.mutual.n_ca_certificates; i++) {
            const struct rc_certificate *c = l->tls.mutual.ca_certificates[i];
            if (c != NULL && c->cert_pem != NULL)
                ok = EVP_DigestUpdate(h, c->cert_pem, c->cert_pem_len) == 1;
        }
    }
    ok = ok && EVP_DigestFinal_ex(h, md, &mdlen) == 1 &&
         SSL_CTX_set_session_id_context(
             ctx, md, mdlen < SSL_MAX_SID_CTX_LENGTH ? mdlen : SSL_MAX_SID_CTX_LENGTH) == 1;
    EVP_MD_CTX_free(h);
    return ok ? 0 : -1;
}

SSL_CTX *px_tls_ctx_new(const struct rc_listener *l, struct px_tls_keys *keys, bool h2_supported,
                        char *err, size_t errlen)
{
    char msg[384] = "";
    const char *lname = l != NULL && l->meta.name ? l->meta.name : "(unnamed)";
    if (pthread_once(&ex_once, ex_init) != 0 || ctx_ex_idx < 0 || ssl_ex_idx < 0) {
        snprintf(err, errlen, "listener %s: OpenSSL ex_data unavailable", lname);
        return NULL;
    }
    if (l == NULL || l->tls.certificate == NULL || l->tls.policy == NULL) {
        snprintf(err, errlen, "listener %s: HTTPS needs a certificate and a TLS policy", lname);
        return NULL;
    }
    struct tls_index *ix = calloc(1, sizeof *ix);
    SSL_CTX *ctx = NULL;
    if (ix == NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    if (index_build(ix, l, msg, sizeof msg) != 0)
        goto fail;
    ix->keys = px_tls_keys_ref(keys);
    ix->h2 = h2_supported && l->http2;

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || !SSL_CTX_set_ex_data(ctx, ctx_ex_idx, ix)) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    struct tls_index *owned = ix;
    ix = NULL; /* freed with ctx from now on */

    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    if (apply_policy(ctx, l->tls.policy, msg, sizeof msg) != 0)
        goto fail;
    if (SSL_CTX_set1_groups_list(ctx, PX_TLS_GROUPS) != 1) {
        snprintf(msg, sizeof msg, "ECDH groups %s not supported", PX_TLS_GROUPS);
        goto fail;
    }
    /* The default certificates also go on the context, so that a
     * certificate OpenSSL refuses (key too small for the security level)
     * fails here rather than on the first handshake. */
    const struct cert_entry *defs[2] = {owned->def_ec, owned->def_rsa};
    for (int i = 0; i < 2; i++) {
        const struct rc_cert_objects *o = defs[i] != NULL ? cert_objects(defs[i]) : NULL;
        if (defs[i] != NULL && o == NULL) {
            snprintf(msg, sizeof msg, "out of memory");
            goto fail;
        }
        if (o != NULL && SSL_CTX_use_cert_and_key(ctx, o->leaf, o->pkey, o->chain, 1) != 1) {
            char why[160];
            openssl_reason(why, sizeof why);
            snprintf(msg, sizeof msg, "default certificate refused by OpenSSL: %s", why);
            goto fail;
        }
    }
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, owned);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, owned);

    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* TLS 1.3 tickets after a full handshake (tls_keys.h: one by default,
     * OpenSSL's two cost ~13 us per handshake for little use). */
    SSL_CTX_set_num_tickets(ctx, keys != NULL ? px_tls_keys_tickets(keys) : PX_TLS_TICKETS_DEFAULT);
    SSL_CTX_set_timeout(ctx, PX_TLS_TICKET_LIFETIME_S);
    if (keys != NULL && SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
        snprintf(msg, sizeof msg, "cannot install the session ticket key callback");
        goto fail;
    }
    if (set_sid_ctx(ctx, l) != 0) {
        snprintf(msg, sizeof msg, "cannot set the session id context");
        goto fail;
    }
    if (l->tls.mutual.enabled && apply_mutual(ctx, l, msg, sizeof msg) != 0)
        goto fail;
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    index_free(ix);
    SSL_CTX_free(ctx);
    snprintf(err, errlen, "listener %s: %s", lname, msg);
    return NULL;
}

/* ---- per-connection queries --------------------------------------------- */

static bool entry_covers(const struct cert_entry *e, const char *host, size_t len)
{
    for (size_t i = 0; e != NULL && i < e->n_names; i++)
        if (cm_hostname_match_n(e->names[i], host, len))
            return true;
    return false;
}

bool px_tls_host_allowed(SSL *ssl, const char *host, size_t len)
{
    if (ssl == NULL || host == NULL || len == 0 || ssl_ex_idx < 0 || host[0] == '[')
        return false;
    const struct choice *c = SSL_get_ex_data(ssl, ssl_ex_idx);
    if (c == NULL)
        return false;
    const char *colon = memchr(host, ':', len);
    if (colon != NULL) {
        for (const char *p = colon + 1; p < host + len; p++)
            if (*p < '0' || *p > '9')
                return false;
        len = (size_t)(colon - host);
    }
    /* The certificate actually served, when OpenSSL says which. */
    const X509 *served = SSL_get_certificate(ssl);
    if (served != NULL && served == cert_leaf(c->ec))
        return entry_covers(c->ec, host, len);
    if (served != NULL && served == cert_leaf(c->rsa))
        return entry_covers(c->rsa, host, len);
    return entry_covers(c->ec, host, len) || entry_covers(c->rsa, host, len);
}

/* Prints name as RFC 2253 into buf; 0 or -ENOSPC (truncated) / -ENOMEM. */
static int dn_print(const X509_NAME *name, char *buf, size_t size)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return -ENOMEM;
    int rc = 0;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) < 0) {
        rc = -ENOMEM;
    } else {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        size_t len = n > 0 ? (size_t)n : 0;
        if (len >= size) {
            len = size - 1;
            rc = -ENOSPC;
        }
        memcpy(buf, data, len);
        buf[len] = '\0';
    }
    BIO_free(b);
    return rc;
}

int px_tls_client_cert_info(SSL *ssl, struct px_client_cert *out)
{
    memset(out, 0, sizeof *out);
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL) {
        snprintf(out->verify, sizeof out->verify, "NONE");
        return 0;
    }
    out->present = true;
    int rc = dn_print(X509_get_subject_name(x), out->subject_dn, sizeof out->subject_dn);
    int rc2 = dn_print(X509_get_issuer_name(x), out->issuer_dn, sizeof out->issuer_dn);
    if (rc == 0)
        rc = rc2;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    for (unsigned int i = 0; i < mdlen && 2 * i + 2 < sizeof out->fingerprint; i++)
        snprintf(out->fingerprint + 2 * i, 3, "%02x", md[i]);
    long vr = SSL_get_verify_result(ssl);
    if (vr == X509_V_OK)
        snprintf(out->verify, sizeof out->verify, "SUCCESS");
    else
        snprintf(out->verify, sizeof out->verify, "FAILED:%s", X509_verify_cert_error_string(vr));
    return rc;
}
