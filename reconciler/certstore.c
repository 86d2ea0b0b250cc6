/* The store of parsed certificates (see certstore.h).
 *
 * Parsing cost, OpenSSL 3.0 (measured on this project's bench machine, one
 * ECDSA P-256 certificate and its PKCS#8 key): PEM_read_bio_PrivateKey()
 * takes ~360 us because every call builds a decoder context that tries
 * every decoder of every provider; decoding the same DER with a decoder
 * context told the structure and key type, built once per thread and
 * reused, takes ~22 us. d2i_X509() builds such a context for the
 * certificate's public key inside, every time, and no API lets us pass one
 * in; so a certificate is parsed in a library context that has no
 * algorithms (struct dec_cache: its structure parses as d2i_X509() parses
 * it, the key's decode finds no decoder and is skipped, as OpenSSL skips
 * a key it cannot decode), and parse_one() decodes the key through a
 * context kept for it. That took ~60 us of CPU off each certificate:
 * `albd validate` of ../shared/bench/bigconfig.sh's 10,000 certificates,
 * albd alone, old and new binaries alternating, 1.19-1.26 s -> 0.90-0.94
 * s on 2 cores, CPU 2.1-2.3 s -> 1.5-1.6 s. A batch is spread over every
 * core.
 *
 * What an entry keeps: the parse checks everything (the leaf decodes, the
 * key decodes and matches it) and takes the facts, then frees the OpenSSL
 * objects and keeps the DER of the leaf, the chain and the key. The
 * objects (~7.5 KiB for an ECDSA P-256 certificate and key: the X509 with
 * its decoded public key, EC group and extension cache, the EVP_PKEY with
 * another EC group) are made again on first use (rc_cert_parsed_objects():
 * d2i_X509() ~100 us, the key ~22 us with a decoder context from a pool
 * kept for it) and published with a compare-and-swap.
 *
 * Threads parsing a batch together each use a library context of their
 * own: d2i_X509()'s decoder context takes hundreds of read locks of its
 * library context (its name map and method stores), and on the shared
 * default one two threads spent most of their time handing those locks'
 * cache lines back and forth. 10,000 certificates on two threads took
 * 690-1180 ms that way and 480 ms with one context per thread (one
 * thread: 950-995 ms either way). Nothing made in such a context outlives
 * the parse: the objects served are made again in the default one. */
#include "reconciler/certstore.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/conf.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hostname.h"
#include "common/prefetch.h"
#include "reconciler/readall.h"

/* At most this many threads parse one batch (the agent's own included). */
#define MAX_PARSE_THREADS 16
/* Fewer inputs than this are parsed on the calling thread. */
#define PARALLEL_MIN 16

/* ---- the table ---------------------------------------------------------- */

static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rc_cert_parsed **buckets; /* under store_mu */
static size_t n_buckets, n_entries, n_parsed;
static atomic_size_t n_decoded;

static uint64_t id_hash(const unsigned char *id)
{
    uint64_t h;
    memcpy(&h, id, sizeof h); /* a SHA-256 prefix is already uniform */
    return h;
}

/* Under store_mu. An entry that holds only facts (facts_only) is found
 * only by a caller that wants no more (facts). */
static struct rc_cert_parsed *table_find(const unsigned char *id, bool facts)
{
    if (n_buckets == 0)
        return NULL;
    for (struct rc_cert_parsed *e = buckets[id_hash(id) & (n_buckets - 1)]; e; e = e->next)
        if (memcmp(e->id, id, RC_CERTSTORE_ID_LEN) == 0 && (facts || !e->facts_only))
            return e;
    return NULL;
}

/* Under store_mu. Grows the table to keep chains short; 0 or -ENOMEM. */
static int table_reserve(size_t more)
{
    size_t want = n_buckets ? n_buckets : 64;
    while (want < 2 * (n_entries + more))
        want <<= 1;
    if (want == n_buckets)
        return 0;
    struct rc_cert_parsed **nb = calloc(want, sizeof *nb);
    if (nb == NULL)
        return n_buckets ? 0 : -ENOMEM; /* longer chains, still correct */
    for (size_t i = 0; i < n_buckets; i++) {
        struct rc_cert_parsed *e = buckets[i];
        while (e) {
            struct rc_cert_parsed *next = e->next;
            size_t at = id_hash(e->id) & (want - 1);
            e->next = nb[at];
            nb[at] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = nb;
    n_buckets = want;
    return 0;
}

/* Under store_mu, after table_reserve(). */
static void table_insert(struct rc_cert_parsed *e)
{
    size_t at = id_hash(e->id) & (n_buckets - 1);
    e->next = buckets[at];
    buckets[at] = e;
    n_entries++;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void objects_free(struct rc_cert_objects *o)
{
    if (o == NULL)
        return;
    X509_free(o->leaf);
    sk_X509_pop_free(o->chain, X509_free);
    EVP_PKEY_free(o->pkey);
    free(o);
}

static void entry_free(struct rc_cert_parsed *e)
{
    if (e == NULL)
        return;
    objects_free(atomic_load_explicit(&e->objs, memory_order_acquire));
    free(e->der);
    OPENSSL_clear_free(e->key_der, e->key_der_len);
    free(e->subject);
    free(e->issuer);
    strv_free(e->dns_names, e->n_dns_names);
    strv_free(e->tls_names, e->n_tls_names);
    free(e);
}

/* ---- the id ------------------------------------------------------------- */

void rc_certstore_id(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                     unsigned char id[RC_CERTSTORE_ID_LEN])
{
    uint64_t lens[3] = {cert_len, key_pem ? 1 : 0, key_len};
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(h, "albd-certstore", 14) == 1 &&
              EVP_DigestUpdate(h, lens, sizeof lens) == 1 &&
              EVP_DigestUpdate(h, cert_pem ? cert_pem : "", cert_len) == 1 &&
              EVP_DigestUpdate(h, key_pem ? key_pem : "", key_len) == 1 &&
              EVP_DigestFinal_ex(h, id, &n) == 1 && n == RC_CERTSTORE_ID_LEN;
    EVP_MD_CTX_free(h);
    if (!ok) {
        /* No digest (out of memory): an id that matches nothing stored,
         * so the input is parsed rather than mistaken for another. */
        ERR_clear_error();
        memset(id, 0, RC_CERTSTORE_ID_LEN);
        id[0] = 0xff;
        memcpy(id + 8, &cert_pem, sizeof cert_pem);
    }
}

/* ---- decoding a private key --------------------------------------------- */

/* Decoder contexts told the input structure and key type, each reused for
 * every key of its kind one thread decodes (built once: ~70 us each). */
struct dec_slot {
    const char *structure, *type;
    int selection;
    OSSL_DECODER_CTX *ctx;
    EVP_PKEY *out; /* where ctx puts the key it decodes */
};

struct dec_cache {
    struct dec_slot s[12]; /* private (PKCS#8 of 5 types, 2 traditional) and public (5) */
    size_t n;
    /* The library context everything decoded through this cache is made
     * in: NULL, the default one, or this thread's own (dec_cache_own()). */
    OSSL_LIB_CTX *lib;
    /* Certificates are parsed in a library context with no algorithms
     * (only the "null" provider), made on first use: d2i_X509() then
     * cannot decode the public key with a decoder context of its own
     * (built for every certificate: most of its cost), which parse_one()
     * decodes through this cache instead. NULL when it could not be made
     * (then lib parses them, as d2i_X509() does). */
    OSSL_LIB_CTX *bare;
    OSSL_PROVIDER *null_prov;
    bool bare_tried;
    EVP_MD *sha256; /* fetched from lib on first use */
};

/* Gives c a library context of its own, for a thread that parses
 * alongside others; c keeps the default one when that fails. Only for
 * objects that die with the parse. It reads the configuration the default
 * context read at start (openssl.cnf, or $OPENSSL_CONF), so that it has
 * the same providers (a FIPS-only host refuses the same keys here as when
 * serving); without one, OpenSSL activates the default provider. */
static void dec_cache_own(struct dec_cache *c)
{
    c->lib = OSSL_LIB_CTX_new();
    char *conf = c->lib ? CONF_get1_default_config_file() : NULL;
    if (conf != NULL && access(conf, R_OK) == 0 && OSSL_LIB_CTX_load_config(c->lib, conf) != 1) {
        OSSL_LIB_CTX_free(c->lib);
        c->lib = NULL;
    }
    OPENSSL_free(conf);
    ERR_clear_error();
}

static void dec_cache_cleanup(struct dec_cache *c)
{
    for (size_t i = 0; i < c->n; i++) {
        OSSL_DECODER_CTX_free(c->s[i].ctx);
        EVP_PKEY_free(c->s[i].out);
    }
    c->n = 0;
    EVP_MD_free(c->sha256);
    c->sha256 = NULL;
    if (c->null_prov != NULL)
        OSSL_PROVIDER_unload(c->null_prov);
    OSSL_LIB_CTX_free(c->bare);
    c->null_prov = NULL;
    c->bare = NULL;
    c->bare_tried = false;
    OSSL_LIB_CTX_free(c->lib);
    c->lib = NULL;
}

/* The library context certificates are parsed in (see struct dec_cache). */
static OSSL_LIB_CTX *dec_cert_lib(struct dec_cache *c)
{
    if (!c->bare_tried) {
        c->bare_tried = true;
        c->bare = OSSL_LIB_CTX_new();
        c->null_prov = c->bare ? OSSL_PROVIDER_load(c->bare, "null") : NULL;
        if (c->null_prov == NULL) {
            OSSL_LIB_CTX_free(c->bare);
            c->bare = NULL;
        }
        ERR_clear_error();
    }
    return c->bare ? c->bare : c->lib;
}

static struct dec_slot *dec_get(struct dec_cache *c, const char *structure, const char *type,
                                int selection)
{
    struct dec_slot *s = NULL;
    for (size_t i = 0; i < c->n && s == NULL; i++)
        if (c->s[i].structure == structure && c->s[i].type == type &&
            c->s[i].selection == selection)
            s = &c->s[i];
    if (s == NULL) {
        if (c->n == sizeof c->s / sizeof c->s[0])
            return NULL;
        s = &c->s[c->n++];
        *s = (struct dec_slot){.structure = structure, .type = type, .selection = selection};
    }
    if (s->ctx == NULL)
        s->ctx =
            OSSL_DECODER_CTX_new_for_pkey(&s->out, "DER", structure, type, selection, c->lib, NULL);
    return s->ctx ? s : NULL;
}

/* The decoder's name for a key algorithm's OID; NULL when it is not one
 * the fast path knows. */
static const char *key_type_of(int nid)
{
    switch (nid) {
    case NID_X9_62_id_ecPublicKey:
        return "EC";
    case NID_rsaEncryption:
        return "RSA";
    case NID_rsassaPss:
        return "RSA-PSS";
    case NID_ED25519:
        return "ED25519";
    case NID_ED448:
        return "ED448";
    default:
        return NULL;
    }
}

/* The key type of a PKCS#8 PrivateKeyInfo, for the decoder; NULL when it
 * is not one this fast path knows. */
static const char *pkcs8_type(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
    const ASN1_OBJECT *obj = NULL;
    int nid = NID_undef;
    if (p8 != NULL && PKCS8_pkey_get0(&obj, NULL, NULL, NULL, p8) == 1)
        nid = OBJ_obj2nid(obj);
    PKCS8_PRIV_KEY_INFO_free(p8); /* wipes its copy of the key */
    return key_type_of(nid);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return 0; /* encrypted keys are refused rather than prompted for */
}

/* The key in der decoded by s, NULL when it does not decode (then s
 * starts its next key from a fresh context). */
static EVP_PKEY *slot_decode(struct dec_slot *s, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    size_t left = len;
    EVP_PKEY *key = NULL;
    s->out = NULL;
    if (OSSL_DECODER_from_data(s->ctx, &p, &left) == 1 && s->out != NULL) {
        key = s->out;
    } else {
        EVP_PKEY_free(s->out);
        OSSL_DECODER_CTX_free(s->ctx);
        s->ctx = NULL;
    }
    s->out = NULL;
    return key;
}

/* The DER a key was decoded from, and what to tell the decoder to decode
 * it again (rc_cert_parsed_objects()). der is OPENSSL_malloc()ed. */
struct key_der {
    unsigned char *der;
    size_t len;
    const char *structure, *type;
};

/* The first private key in pem: by the fast path when its PEM label (and
 * for PKCS#8, its algorithm) names a structure and key type, else by
 * OpenSSL's generic reader (which refuses encrypted keys). NULL when none
 * parses. */
static EVP_PKEY *decode_key(struct dec_cache *c, const char *pem, size_t len, struct key_der *kd)
{
    EVP_PKEY *key = NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    for (bool more = b != NULL; more;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long dlen = 0;
        if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1)
            break;
        const char *structure = NULL, *type = NULL;
        more = strcmp(name, "EC PARAMETERS") == 0; /* `openssl ecparam -genkey` puts it first */
        if (header[0] != '\0') {
            /* encrypted legacy PEM: the generic reader refuses it */
        } else if (strcmp(name, "PRIVATE KEY") == 0) {
            structure = "PrivateKeyInfo";
            type = pkcs8_type(der, dlen);
        } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "EC";
        } else if (strcmp(name, "RSA PRIVATE KEY") == 0) {
            structure = "type-specific";
            type = "RSA";
        }
        struct dec_slot *s =
            structure && type ? dec_get(c, structure, type, EVP_PKEY_KEYPAIR) : NULL;
        if (s != NULL && (key = slot_decode(s, der, (size_t)dlen)) != NULL) {
            more = false;
            if (kd != NULL) {
                *kd = (struct key_der){
                    .der = der, .len = (size_t)dlen, .structure = structure, .type = type};
                der = NULL; /* the caller's now */
            }
        }
        if (der != NULL)
            OPENSSL_clear_free(der, (size_t)dlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
    }
    BIO_free(b);
    ERR_clear_error();
    if (key != NULL)
        return key;
    b = BIO_new_mem_buf(pem, (int)len);
    key = b ? PEM_read_bio_PrivateKey_ex(b, NULL, no_passphrase, NULL, c->lib, NULL) : NULL;
    BIO_free(b);
    if (key != NULL && kd != NULL) {
        /* A form the fast path does not know: kept as PKCS#8. */
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
        unsigned char *der = NULL;
        int dlen = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
        PKCS8_PRIV_KEY_INFO_free(p8);
        if (dlen > 0)
            *kd = (struct key_der){.der = der,
                                   .len = (size_t)dlen,
                                   .structure = "PrivateKeyInfo",
                                   .type = pkcs8_type(der, dlen)};
    }
    ERR_clear_error();
    return key;
}

/* The key in der, as decode_key() described it; NULL when it does not
 * decode (out of memory: it decoded at load). */
static EVP_PKEY *decode_key_der(struct dec_cache *c, const unsigned char *der, size_t len,
                                const char *structure, const char *type)
{
    struct dec_slot *s = structure && type ? dec_get(c, structure, type, EVP_PKEY_KEYPAIR) : NULL;
    EVP_PKEY *key = s ? slot_decode(s, der, len) : NULL;
    if (key == NULL) {
        const unsigned char *p = der;
        key = d2i_AutoPrivateKey(NULL, &p, (long)len);
    }
    ERR_clear_error();
    return key;
}

/* ---- parsing one certificate -------------------------------------------- */

static char *dn_string(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return NULL;
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *s = strndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
    BIO_free(b);
    return s;
}

static int strv_push(char ***v, size_t *n, char *s)
{
    if (s == NULL)
        return -ENOMEM;
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (nv == NULL) {
        free(s);
        return -ENOMEM;
    }
    *v = nv;
    nv[(*n)++] = s;
    return 0;
}

/* The first n bytes of s lowercased, as a string: up to a NUL inside
 * them (a certificate's name may hold one; strndup() stops there, so the
 * copy can be shorter than n). */
static char *lower_dup(const unsigned char *s, size_t n)
{
    char *p = strndup((const char *)s, n);
    for (size_t i = 0; p && p[i] != '\0'; i++)
        p[i] = (char)tolower((unsigned char)p[i]);
    return p;
}

/* A name SNI can select by, normalized; duplicates and names that can
 * never match (an invalid wildcard, a bad host name) are left out. */
static int tls_name_add(struct rc_cert_parsed *e, const unsigned char *data, size_t len)
{
    char buf[CM_HOSTNAME_MAX + 1];
    if (len == 0 || len > CM_HOSTNAME_MAX || memchr(data, '\0', len) != NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((data[i] >= 'A' && data[i] <= 'Z') ? data[i] - 'A' + 'a' : data[i]);
    buf[len] = '\0';
    if (buf[0] == '*') {
        if (!cm_hostname_wildcard_valid(buf))
            return 0; /* the validator reports it; such a name selects nothing */
    } else if (cm_hostname_normalize(buf, len, buf, sizeof buf) < 0) {
        return 0;
    }
    for (size_t i = 0; i < e->n_tls_names; i++)
        if (strcmp(e->tls_names[i], buf) == 0)
            return 0;
    return strv_push(&e->tls_names, &e->n_tls_names, strdup(buf));
}

/* subjectAltName DNS entries, or the subject CN when there are none: both
 * as the validator shows them and as SNI selects by them. */
static int read_names(struct rc_cert_parsed *e, X509 *leaf)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
        size_t n = (size_t)ASN1_STRING_length(g->d.dNSName);
        rc = strv_push(&e->dns_names, &e->n_dns_names, lower_dup(s, n));
        if (rc == 0)
            rc = tls_name_add(e, s, n);
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    if (rc != 0 || e->n_dns_names > 0)
        return rc;
    const X509_NAME *subj = X509_get_subject_name(leaf);
    int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (at < 0)
        return 0;
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
    rc = strv_push(&e->dns_names, &e->n_dns_names,
                   lower_dup(ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn)));
    /* SNI compares with the CN as UTF-8 (a BMPString CN converted). */
    unsigned char *utf8 = NULL;
    int len = rc == 0 ? ASN1_STRING_to_UTF8(&utf8, cn) : 0;
    if (len > 0)
        rc = tls_name_add(e, utf8, (size_t)len);
    OPENSSL_free(utf8);
    ERR_clear_error();
    return rc;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

static bool weak_signature(const X509 *leaf)
{
    int md = NID_undef, pk = NID_undef;
    if (!OBJ_find_sigid_algs(X509_get_signature_nid(leaf), &md, &pk))
        return false;
    return md == NID_md5 || md == NID_md4 || md == NID_md2 || md == NID_md5_sha1;
}

static int curve_of(const EVP_PKEY *k)
{
    char g[80];
    size_t glen = 0;
    if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(k, g, sizeof g, &glen) != 1) {
        ERR_clear_error();
        return NID_undef;
    }
    int nid = OBJ_sn2nid(g);
    return nid != NID_undef ? nid : EC_curve_nist2nid(g);
}

/* The next certificate in b, made in library context lib (NULL: the
 * default one): what PEM_read_bio_X509() reads (the same PEM labels, other
 * blocks skipped), decoded with d2i_X509()'s template. NULL at the end or
 * on an error. */
static X509 *read_x509(BIO *b, OSSL_LIB_CTX *lib)
{
    unsigned char *der = NULL;
    long dlen = 0;
    if (PEM_bytes_read_bio(&der, &dlen, NULL, PEM_STRING_X509, b, no_passphrase, NULL) != 1)
        return NULL;
    const unsigned char *p = der;
    X509 *x = (X509 *)ASN1_item_d2i_ex(NULL, &p, dlen, ASN1_ITEM_rptr(X509), lib, NULL);
    OPENSSL_free(der);
    return x;
}

/* The leaf and the rest of the chain, made in lib; 0, -1 without a leaf,
 * -ENOMEM. */
static int parse_chain(struct rc_cert_objects *o, const char *pem, size_t len, OSSL_LIB_CTX *lib)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL)
        return -ENOMEM;
    o->leaf = read_x509(b, lib);
    int rc = o->leaf ? 0 : -1;
    X509 *x;
    while (rc == 0 && (x = read_x509(b, lib)) != NULL) {
        if ((o->chain == NULL && (o->chain = sk_X509_new_null()) == NULL) ||
            !sk_X509_push(o->chain, x)) {
            X509_free(x);
            rc = -ENOMEM;
        }
    }
    BIO_free(b);
    ERR_clear_error(); /* the loop ends on "no start line" */
    return rc;
}

/* The public key of x, decoded in c's library context: through a decoder
 * context kept in c when the key type is one the fast path knows, else by
 * a context of its own (what d2i_X509() does for every certificate). NULL
 * when it does not decode. */
static EVP_PKEY *cert_pubkey(struct dec_cache *c, X509 *x)
{
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
    ASN1_OBJECT *alg = NULL;
    unsigned char *der = NULL;
    int len = xpk != NULL && X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, xpk) == 1
                  ? i2d_X509_PUBKEY(xpk, &der)
                  : -1;
    EVP_PKEY *k = NULL;
    if (len > 0) {
        const char *type = key_type_of(OBJ_obj2nid(alg));
        struct dec_slot *s =
            type ? dec_get(c, "SubjectPublicKeyInfo", type, EVP_PKEY_PUBLIC_KEY) : NULL;
        k = s ? slot_decode(s, der, (size_t)len) : NULL;
        if (k == NULL) {
            const unsigned char *p = der;
            k = d2i_PUBKEY_ex(NULL, &p, len, c->lib, NULL);
        }
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return k;
}

/* Whether x is self-signed as OpenSSL 3.0 flags it (EXFLAG_SS, which
 * X509_get_extension_flags() cannot set without the public key in x):
 * self-issued (flags has EXFLAG_SI), its authority key identifier, if
 * any, names its own key, and its signature algorithm is one of pub's
 * type. The signature itself is not verified, by OpenSSL either. */
static bool self_signed(X509 *x, uint32_t flags, const EVP_PKEY *pub)
{
    if ((flags & EXFLAG_SI) == 0 || pub == NULL)
        return false;
    AUTHORITY_KEYID *akid = X509_get_ext_d2i(x, NID_authority_key_identifier, NULL, NULL);
    bool ok = X509_check_akid(x, akid) == X509_V_OK;
    AUTHORITY_KEYID_free(akid);
    const ASN1_OBJECT *alg = NULL;
    X509_ALGOR_get0(&alg, NULL, NULL, X509_get0_tbs_sigalg(x));
    int pk = NID_undef;
    ok = ok && OBJ_find_sigid_algs(OBJ_obj2nid(alg), NULL, &pk) == 1;
    ok = ok &&
         (EVP_PKEY_is_a(pub, OBJ_nid2sn(pk)) || (EVP_PKEY_is_a(pub, "RSA") && pk == NID_rsassaPss));
    ERR_clear_error();
    return ok;
}

/* The SHA-256 of x's DER as lowercase hex in out (65 bytes); "" when it
 * cannot be computed. */
static void fingerprint(struct dec_cache *c, X509 *x, char *out)
{
    out[0] = '\0';
    if (c->sha256 == NULL)
        c->sha256 = EVP_MD_fetch(c->lib, "SHA256", NULL);
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int len = i2d_X509(x, &der);
    if (len > 0 && c->sha256 != NULL &&
        EVP_Digest(der, (size_t)len, md, &mdlen, c->sha256, NULL) == 1)
        for (unsigned i = 0; i < mdlen && i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    OPENSSL_free(der);
    ERR_clear_error();
}

/* Keeps the DER of o's leaf and chain in e; 0 or -ENOMEM. */
static int keep_der(struct rc_cert_parsed *e, const struct rc_cert_objects *o)
{
    int n = o->chain ? sk_X509_num(o->chain) : 0;
    int leaf_len = i2d_X509(o->leaf, NULL);
    size_t total = leaf_len > 0 ? (size_t)leaf_len : 0;
    for (int i = 0; i < n; i++) {
        int l = i2d_X509(sk_X509_value(o->chain, i), NULL);
        if (l <= 0)
            return -ENOMEM;
        total += (size_t)l;
    }
    if (leaf_len <= 0 || (e->der = malloc(total)) == NULL)
        return -ENOMEM;
    unsigned char *p = e->der;
    i2d_X509(o->leaf, &p);
    e->leaf_der_len = (size_t)leaf_len;
    for (int i = 0; i < n; i++)
        i2d_X509(sk_X509_value(o->chain, i), &p);
    e->chain_der_len = total - e->leaf_der_len;
    return 0;
}

/* Parses in into a new entry (not in the table, refs 0); NULL when out of
 * memory. Runs on any thread: it touches only its own objects and c. With
 * facts, only the facts are kept; otherwise the DER too (status OK). */
static struct rc_cert_parsed *parse_one(const struct rc_certstore_in *in, const unsigned char *id,
                                        struct dec_cache *c, bool facts)
{
    struct rc_cert_parsed *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    struct rc_cert_objects o = {NULL, NULL, NULL};
    struct key_der kd = {NULL, 0, NULL, NULL};
    EVP_PKEY *pub = NULL; /* the leaf's */
    memcpy(e->id, id, RC_CERTSTORE_ID_LEN);
    e->curve_nid = NID_undef;
    e->facts_only = facts;
    atomic_init(&e->objs, NULL);
    int rc = in->cert_pem ? parse_chain(&o, in->cert_pem, in->cert_len, dec_cert_lib(c)) : -1;
    if (rc == -1) {
        e->status = RC_CERT_PARSE_NO_CERT;
        goto out;
    }
    if (rc != 0)
        goto nomem;
    e->subject = dn_string(X509_get_subject_name(o.leaf));
    e->issuer = dn_string(X509_get_issuer_name(o.leaf));
    if (e->subject == NULL || e->issuer == NULL || read_names(e, o.leaf) != 0)
        goto nomem;
    e->not_before = asn1_to_time(X509_get0_notBefore(o.leaf));
    e->not_after = asn1_to_time(X509_get0_notAfter(o.leaf));
    pub = cert_pubkey(c, o.leaf);
    uint32_t flags = X509_get_extension_flags(o.leaf);
    e->is_ca = (flags & EXFLAG_CA) != 0;
    e->self_signed = self_signed(o.leaf, flags, pub);
    fingerprint(c, o.leaf, e->fingerprint_sha256);
    e->pub_base_id = pub ? EVP_PKEY_get_base_id(pub) : 0;
    e->pub_bits = pub ? EVP_PKEY_get_bits(pub) : 0;
    e->weak_hash = weak_signature(o.leaf);
    if (in->key_pem != NULL) {
        o.pkey = decode_key(c, in->key_pem, in->key_len, facts ? NULL : &kd);
        if (o.pkey == NULL) {
            e->status = RC_CERT_PARSE_BAD_KEY;
        } else if (pub == NULL || EVP_PKEY_eq(pub, o.pkey) != 1) {
            e->status = RC_CERT_PARSE_KEY_MISMATCH;
            EVP_PKEY_free(o.pkey);
            o.pkey = NULL;
        }
    }
    e->curve_nid = curve_of(o.pkey ? o.pkey : pub);
    e->key_base_id = o.pkey ? EVP_PKEY_get_base_id(o.pkey) : 0;
    e->key_bits = o.pkey ? EVP_PKEY_get_bits(o.pkey) : 0;
    if (!facts && e->status == RC_CERT_PARSE_OK) {
        if (keep_der(e, &o) != 0 || (o.pkey != NULL && kd.der == NULL))
            goto nomem;
        e->key_der = kd.der;
        e->key_der_len = kd.len;
        e->key_structure = kd.structure;
        e->key_type = kd.type;
        kd.der = NULL;
    }
out:
    /* Made again from the DER on first use (rc_cert_parsed_objects()). */
    X509_free(o.leaf);
    sk_X509_pop_free(o.chain, X509_free);
    EVP_PKEY_free(o.pkey);
    EVP_PKEY_free(pub);
    OPENSSL_clear_free(kd.der, kd.len);
    ERR_clear_error();
    return e;
nomem:
    X509_free(o.leaf);
    sk_X509_pop_free(o.chain, X509_free);
    EVP_PKEY_free(o.pkey);
    EVP_PKEY_free(pub);
    OPENSSL_clear_free(kd.der, kd.len);
    ERR_clear_error();
    entry_free(e);
    return NULL;
}

/* ---- objects on first use ----------------------------------------------- */

/* Decoder caches for rc_cert_parsed_objects(), lent to one decoding
 * thread at a time: as many as threads ever decoded at once, kept for
 * the process's life (a handful of small contexts). */
struct dec_lend {
    struct dec_cache c;
    struct dec_lend *next;
};
static pthread_mutex_t lend_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dec_lend *lend_free; /* under lend_mu */

static struct dec_lend *lend_take(void)
{
    pthread_mutex_lock(&lend_mu);
    struct dec_lend *l = lend_free;
    if (l != NULL)
        lend_free = l->next;
    pthread_mutex_unlock(&lend_mu);
    return l != NULL ? l : calloc(1, sizeof *l);
}

static void lend_give(struct dec_lend *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&lend_mu);
    l->next = lend_free;
    lend_free = l;
    pthread_mutex_unlock(&lend_mu);
}

/* e's objects decoded from its DER; NULL when out of memory. */
static struct rc_cert_objects *objects_decode(const struct rc_cert_parsed *e)
{
    struct rc_cert_objects *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    const unsigned char *p = e->der;
    o->leaf = d2i_X509(NULL, &p, (long)e->leaf_der_len);
    bool ok = o->leaf != NULL;
    const unsigned char *end = e->der + e->leaf_der_len + e->chain_der_len;
    while (ok && p < end) {
        X509 *x = d2i_X509(NULL, &p, (long)(end - p));
        if (x == NULL || (o->chain == NULL && (o->chain = sk_X509_new_null()) == NULL) ||
            !sk_X509_push(o->chain, x)) {
            X509_free(x);
            ok = false;
        }
    }
    if (ok && e->key_der != NULL) {
        struct dec_lend *l = lend_take();
        o->pkey =
            l ? decode_key_der(&l->c, e->key_der, e->key_der_len, e->key_structure, e->key_type)
              : NULL;
        lend_give(l);
        ok = o->pkey != NULL;
    }
    ERR_clear_error();
    if (!ok) {
        objects_free(o);
        return NULL;
    }
    return o;
}

const struct rc_cert_objects *rc_cert_parsed_objects(struct rc_cert_parsed *e)
{
    struct rc_cert_objects *o = atomic_load_explicit(&e->objs, memory_order_acquire);
    if (o != NULL || e->der == NULL)
        return o;
    o = objects_decode(e);
    if (o == NULL)
        return NULL;
    atomic_fetch_add_explicit(&n_decoded, 1, memory_order_relaxed);
    struct rc_cert_objects *had = NULL;
    if (!atomic_compare_exchange_strong_explicit(&e->objs, &had, o, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        objects_free(o); /* another thread published first: use its */
        o = had;
    }
    return o;
}

const struct rc_cert_objects *rc_cert_parsed_peek(const struct rc_cert_parsed *e)
{
    return atomic_load_explicit(&((struct rc_cert_parsed *)e)->objs, memory_order_acquire);
}

/* ---- parsing a batch ---------------------------------------------------- */

struct job {
    const struct rc_certstore_in *in;
    const unsigned char *id;
    struct rc_cert_parsed *out;
};

struct batch {
    struct job *jobs;
    size_t n;
    atomic_size_t next;
    bool facts;   /* keep only the facts of each entry */
    bool own_lib; /* several threads: each its own library context */
};

static void *parse_worker(void *arg)
{
    struct batch *b = arg;
    struct dec_cache c = {.n = 0};
    if (b->own_lib)
        dec_cache_own(&c);
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed);
        if (i >= b->n)
            break;
        b->jobs[i].out = parse_one(b->jobs[i].in, b->jobs[i].id, &c, b->facts);
    }
    dec_cache_cleanup(&c);
    return NULL;
}

/* Parses every job, on up to one thread per core (the caller's included). */
static void parse_jobs(struct job *jobs, size_t n, bool facts)
{
    struct batch b = {.jobs = jobs, .n = n, .facts = facts};
    atomic_init(&b.next, 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = n < PARALLEL_MIN || cores <= 1 ? 1 : (size_t)cores;
    if (want > MAX_PARSE_THREADS)
        want = MAX_PARSE_THREADS;
    if (want > (n + PARALLEL_MIN - 1) / PARALLEL_MIN)
        want = (n + PARALLEL_MIN - 1) / PARALLEL_MIN;
    b.own_lib = want > 1;
    pthread_t tid[MAX_PARSE_THREADS];
    size_t started = 0;
    for (size_t i = 1; i < want; i++) {
        if (pthread_create(&tid[started], NULL, parse_worker, &b) != 0)
            break; /* fewer threads: the rest is parsed here */
        started++;
    }
    parse_worker(&b);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
}

static void ahead_stop(void);

static int acquire(const struct rc_certstore_in *in, size_t n, struct rc_cert_parsed **out,
                   bool facts)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return 0;
    /* What the parse ahead finished is in the table; the rest is parsed
     * here, on every core. */
    ahead_stop();
    unsigned char *ids = malloc(n * RC_CERTSTORE_ID_LEN);
    struct job *jobs = malloc(n * sizeof *jobs);
    size_t *job_of = malloc(n * sizeof *job_of);
    if (ids == NULL || jobs == NULL || job_of == NULL) {
        free(ids);
        free(jobs);
        free(job_of);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (in[i].id)
            memcpy(ids + i * RC_CERTSTORE_ID_LEN, in[i].id, RC_CERTSTORE_ID_LEN);
        else
            rc_certstore_id(in[i].cert_pem, in[i].cert_len, in[i].key_pem, in[i].key_len,
                            ids + i * RC_CERTSTORE_ID_LEN);
    }
    size_t n_jobs = 0;
    pthread_mutex_lock(&store_mu);
    for (size_t i = 0; i < n; i++) {
        struct rc_cert_parsed *e = table_find(ids + i * RC_CERTSTORE_ID_LEN, facts);
        if (e != NULL) {
            e->refs++;
            out[i] = e;
        } else {
            job_of[n_jobs] = i;
            jobs[n_jobs++] = (struct job){.in = &in[i], .id = ids + i * RC_CERTSTORE_ID_LEN};
        }
    }
    pthread_mutex_unlock(&store_mu);

    int rc = 0;
    if (n_jobs > 0) {
        parse_jobs(jobs, n_jobs, facts);
        pthread_mutex_lock(&store_mu);
        for (size_t j = 0; j < n_jobs; j++)
            if (jobs[j].out == NULL)
                rc = -ENOMEM;
        if (rc == 0)
            rc = table_reserve(n_jobs);
        for (size_t j = 0; j < n_jobs; j++) {
            struct rc_cert_parsed *e = jobs[j].out;
            if (e == NULL)
                continue;
            n_parsed++;
            if (rc != 0) {
                entry_free(e);
                continue;
            }
            /* The same input twice in one batch: the first one stays. */
            struct rc_cert_parsed *had = table_find(e->id, facts);
            if (had != NULL) {
                entry_free(e);
                e = had;
            } else {
                table_insert(e);
            }
            e->refs++;
            out[job_of[j]] = e;
        }
        pthread_mutex_unlock(&store_mu);
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            rc_cert_parsed_unref(out[i]);
            out[i] = NULL;
        }
    }
    free(ids);
    free(jobs);
    free(job_of);
    return rc;
}

int rc_certstore_acquire(const struct rc_certstore_in *in, size_t n, struct rc_cert_parsed **out)
{
    return acquire(in, n, out, false);
}

int rc_certstore_acquire_facts(const struct rc_certstore_in *in, size_t n,
                               struct rc_cert_parsed **out)
{
    return acquire(in, n, out, true);
}

struct rc_cert_parsed *rc_cert_parsed_ref(struct rc_cert_parsed *e)
{
    if (e != NULL) {
        pthread_mutex_lock(&store_mu);
        e->refs++;
        pthread_mutex_unlock(&store_mu);
    }
    return e;
}

void rc_cert_parsed_unref(struct rc_cert_parsed *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&store_mu);
    e->refs--;
    pthread_mutex_unlock(&store_mu);
}

size_t rc_certstore_sweep(void)
{
    size_t freed = 0;
    pthread_mutex_lock(&store_mu);
    for (size_t i = 0; i < n_buckets; i++) {
        struct rc_cert_parsed **pp = &buckets[i];
        while (*pp != NULL) {
            struct rc_cert_parsed *e = *pp;
            if (e->refs == 0) {
                *pp = e->next;
                entry_free(e);
                n_entries--;
                freed++;
            } else {
                pp = &e->next;
            }
        }
    }
    if (n_entries == 0) {
        free(buckets);
        buckets = NULL;
        n_buckets = 0;
    }
    pthread_mutex_unlock(&store_mu);
    return freed;
}

void rc_certstore_stats(struct rc_certstore_stats *out)
{
    pthread_mutex_lock(&store_mu);
    out->entries = n_entries;
    out->parsed = n_parsed;
    out->decoded = atomic_load_explicit(&n_decoded, memory_order_relaxed);
    pthread_mutex_unlock(&store_mu);
}

/* ---- parsing ahead ------------------------------------------------------ */

/* Larger than any certificate or key file a load reads (filecache.c). */
#define AHEAD_MAX_FILE (1u << 20)

struct ahead_item {
    char *cert_path, *key_path; /* key_path may be NULL */
};

struct rc_certstore_ahead {
    struct ahead_item *items;
    size_t n;
    atomic_size_t next;
    atomic_bool stop;
    bool facts;
    pthread_t tid[MAX_PARSE_THREADS];
    size_t n_threads;
    bool joined;
    struct cm_prefetch *prefetch; /* reads the files ahead of the parsers */
};

/* The parse ahead running, if any: rc_certstore_acquire() stops it. Under
 * ahead_mu (an acquire from another thread than the one that started it
 * must not join it twice); its workers never take ahead_mu. */
static pthread_mutex_t ahead_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rc_certstore_ahead *ahead_running;

/* The bytes of path, NULL when it cannot be read (the load reports that). */
static char *ahead_read(const char *path, bool secret, size_t *len)
{
    struct stat st;
    int fd = rc_open_regular(path, &st);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    int rc =
        rc_read_all(fd, st.st_size > 0 ? (size_t)st.st_size : 0, AHEAD_MAX_FILE, secret, &buf, len);
    close(fd);
    return rc == 0 ? buf : NULL;
}

static void ahead_one(const struct ahead_item *it, bool facts, struct dec_cache *c)
{
    size_t clen = 0, klen = 0;
    char *cert = ahead_read(it->cert_path, false, &clen);
    char *key = cert && it->key_path ? ahead_read(it->key_path, true, &klen) : NULL;
    if (cert == NULL || (it->key_path && key == NULL))
        goto out;
    struct rc_certstore_in in = {
        .cert_pem = cert, .cert_len = clen, .key_pem = key, .key_len = klen};
    unsigned char id[RC_CERTSTORE_ID_LEN];
    rc_certstore_id(cert, clen, key, klen, id);
    pthread_mutex_lock(&store_mu);
    bool have = table_find(id, facts) != NULL;
    pthread_mutex_unlock(&store_mu);
    struct rc_cert_parsed *e = have ? NULL : parse_one(&in, id, c, facts);
    if (e == NULL)
        goto out;
    pthread_mutex_lock(&store_mu);
    n_parsed++;
    if (table_find(id, facts) != NULL || table_reserve(1) != 0) {
        entry_free(e);
    } else {
        table_insert(e); /* refs 0: rc_certstore_acquire() takes it, or a sweep frees it */
    }
    pthread_mutex_unlock(&store_mu);
out:
    if (key != NULL) {
        OPENSSL_cleanse(key, klen);
        free(key);
    }
    free(cert);
}

static void *ahead_worker(void *arg)
{
    struct rc_certstore_ahead *a = arg;
    struct dec_cache c = {.n = 0};
    dec_cache_own(&c); /* the agent thread validates and builds meanwhile */
    while (!atomic_load_explicit(&a->stop, memory_order_relaxed)) {
        size_t i = atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed);
        if (i >= a->n)
            break;
        ahead_one(&a->items[i], a->facts, &c);
    }
    dec_cache_cleanup(&c);
    return NULL;
}

static void ahead_free_items(struct rc_certstore_ahead *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->items[i].cert_path);
        free(a->items[i].key_path);
    }
    free(a->items);
}

/* The files of the items, certificate then key, read ahead of the parsers
 * (common/prefetch.h): on a cold page cache the parsers would otherwise
 * wait for one small read at a time. */
static struct cm_prefetch *ahead_prefetch(const char *const *cert_paths,
                                          const char *const *key_paths, size_t n)
{
    const char **v = calloc(2 * n, sizeof *v);
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[2 * i] = cert_paths[i];
        v[2 * i + 1] = key_paths[i];
    }
    struct cm_prefetch *p = cm_prefetch_start(v, 2 * n);
    free(v);
    return p;
}

struct rc_certstore_ahead *rc_certstore_ahead_start(const char *const *cert_paths,
                                                    const char *const *key_paths, size_t n,
                                                    bool facts)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t want = cores > 1 ? (size_t)cores - 1 : 0; /* the caller's core is busy loading */
    if (want > MAX_PARSE_THREADS)
        want = MAX_PARSE_THREADS;
    if (want > n / PARALLEL_MIN)
        want = n / PARALLEL_MIN;
    pthread_mutex_lock(&ahead_mu);
    bool busy = ahead_running != NULL;
    pthread_mutex_unlock(&ahead_mu);
    if (want == 0 || busy)
        return NULL;
    struct rc_certstore_ahead *a = calloc(1, sizeof *a);
    if (a == NULL || (a->items = calloc(n, sizeof *a->items)) == NULL) {
        free(a);
        return NULL;
    }
    a->facts = facts;
    atomic_init(&a->next, 0);
    atomic_init(&a->stop, false);
    for (size_t i = 0; i < n; i++, a->n++) {
        a->items[i].cert_path = strdup(cert_paths[i]);
        a->items[i].key_path = key_paths[i] ? strdup(key_paths[i]) : NULL;
        if (a->items[i].cert_path == NULL || (key_paths[i] && a->items[i].key_path == NULL)) {
            a->n++;
            ahead_free_items(a);
            free(a);
            return NULL;
        }
    }
    a->prefetch = ahead_prefetch(cert_paths, key_paths, n);
    for (size_t i = 0; i < want; i++) {
        if (pthread_create(&a->tid[a->n_threads], NULL, ahead_worker, a) != 0)
            break;
        a->n_threads++;
    }
    if (a->n_threads == 0) {
        cm_prefetch_end(a->prefetch);
        ahead_free_items(a);
        free(a);
        return NULL;
    }
    pthread_mutex_lock(&ahead_mu);
    ahead_running = a;
    pthread_mutex_unlock(&ahead_mu);
    return a;
}

/* Stops a and waits for the items in flight; idempotent. Under ahead_mu. */
static void ahead_join(struct rc_certstore_ahead *a)
{
    if (a->joined)
        return;
    atomic_store(&a->stop, true);
    for (size_t i = 0; i < a->n_threads; i++)
        pthread_join(a->tid[i], NULL);
    cm_prefetch_end(a->prefetch);
    a->prefetch = NULL;
    a->joined = true;
    if (ahead_running == a)
        ahead_running = NULL;
}

static void ahead_stop(void)
{
    pthread_mutex_lock(&ahead_mu);
    if (ahead_running != NULL)
        ahead_join(ahead_running);
    pthread_mutex_unlock(&ahead_mu);
}

void rc_certstore_ahead_end(struct rc_certstore_ahead *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&ahead_mu);
    ahead_join(a);
    pthread_mutex_unlock(&ahead_mu);
    ahead_free_items(a);
    free(a);
}
