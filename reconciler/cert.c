/* Certificate documents: reads the PEM (files or inline), parses it with
 * libcrypto and records the facts the proxy and `albd plan` show. The
 * private key is read into the model for the TLS code and is never part of
 * any message. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/hostname.h"
#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/cert.h"
#include "reconciler/certstore.h"
#include "reconciler/field.h"
#include "reconciler/filecache.h"
#include "reconciler/meta.h"
#include "reconciler/rc.h"
#include "reconciler/readall.h"
#include "reconciler/reuse.h"
#include "reconciler/source.h"

#define EXPIRY_WARNING_DAYS 30
#define EXPIRY_WARNING_PREFIX "the certificate expires on"

/* Makes p absolute (malloc'd): relative paths resolve against the
 * manifest's folder. */
static char *resolve_path(struct rc_doc *d, const char *p)
{
    char *out = NULL;
    if (p[0] == '/')
        return strdup(p);
    if (asprintf(&out, "%s/%s", d->dir, p) < 0)
        return NULL;
    return out;
}

/* n as w decimal digits at p. */
static void digits(char *p, long n, int w)
{
    while (w-- > 0) {
        p[w] = (char)('0' + n % 10);
        n /= 10;
    }
}

/* t as "YYYY-MM-DDTHH:MM:SSZ" (UTC), what strftime's "%Y-%m-%dT%H:%M:%SZ"
 * gives: worked out directly for years 1000-9999 (a reload near 10,000
 * certificates' expiry formats one date each; gmtime_r takes the time zone
 * lock every time), by gmtime_r and strftime otherwise. */
static void fmt_time(time_t t, char *buf, size_t size)
{
    /* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
    long long days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);
    if (size < 21 || y < 1000 || y > 9999) {
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
            if (size)
                buf[0] = '\0';
        }
        return;
    }
    memcpy(buf, "0000-00-00T00:00:00Z", 21);
    digits(buf, (long)y, 4);
    digits(buf + 5, (long)m, 2);
    digits(buf + 8, (long)d, 2);
    digits(buf + 11, (long)(secs / 3600), 2);
    digits(buf + 14, (long)(secs / 60 % 60), 2);
    digits(buf + 17, (long)(secs % 60), 2);
}

/* Reads one PEM file of c into *path, *hash, *pem, *len: from the kept
 * version or this load's first pass when there is one (bytes already read
 * rather than files that may have changed since), else the file abs
 * (malloc'd by the caller; NULL when out of memory). Errors are reported
 * at node n, manifest path fpath; with missing non-NULL, a file that does
 * not exist is not reported but sets *missing. Returns 0, -1, or -2 when
 * out of memory. */
static int read_pem(struct rc_load *L, struct rc_doc *d, yaml_node_t *n, const char *fpath,
                    bool key, const char *abs, const char **path, uint64_t *hash, const char **pem,
                    size_t *len, bool *missing)
{
    const struct rc_certificate *from = d->fallback_cert ? d->fallback_cert
                                        : L->pass > 1    ? d->pass1_cert
                                                         : NULL;
    if (from) {
        const char *fp = key ? from->key_path : from->cert_path;
        const char *bytes = key ? from->key_pem : from->cert_pem;
        size_t blen = key ? from->key_pem_len : from->cert_pem_len;
        if (fp == NULL || bytes == NULL) {
            rc_doc_err(L, d, RC_ERROR, n, fpath, "the last good version has no %s",
                       key ? "privateKey" : "certificate");
            return -1;
        }
        *path = rc_arena_strdup(L->arena, fp);
        *hash = key ? from->key_path_hash : from->cert_path_hash;
        *pem = key ? rc_arena_strndup_secret(L->arena, bytes, blen)
                   : rc_arena_strndup(L->arena, bytes, blen);
        *len = blen;
        return *path && *pem ? 0 : -2;
    }
    if (abs == NULL)
        return -2;
    *hash = cm_hash_str(abs);
    if (L->release_parsed)
        rc_filecache_one_shot(L->files);
    /* The path and bytes come back shared by every certificate of this
     * load that names the same file (one key for 10,000 certificates). */
    int rc = rc_filecache_read(L->files, L->arena, abs, *hash, path, pem, len);
    if (rc == -ENOENT && missing) {
        *missing = true;
        return -1;
    }
    if (rc != 0 && rc != -ENOMEM)
        rc_doc_err(L, d, RC_ERROR, n, fpath, "cannot read \"%s\": %s", abs,
                   rc == -EFBIG ? "larger than 1 MiB, the most a certificate or key file may hold"
                                : rc_read_strerror(-rc));
    return rc == 0 ? 0 : rc == -ENOMEM ? -2 : -1;
}

static int file_field(struct rc_load *L, struct rc_doc *d, yaml_node_t *files, const char *field,
                      const char **path, uint64_t *hash, const char **pem, size_t *len)
{
    yaml_node_t *n = rc_at(d, files, field);
    char fpath[64];
    snprintf(fpath, sizeof(fpath), "spec.source.files.%s", field);
    bool key = !strcmp(field, "privateKey");
    bool from = d->fallback_cert || L->pass > 1;
    char *abs = from ? NULL : resolve_path(d, rc_y_str(n));
    if (!from && abs == NULL)
        return -2;
    bool missing = false;
    int rc = read_pem(L, d, n, fpath, key, abs, path, hash, pem, len,
                      key && L->keys_optional ? &missing : NULL);
    if (missing) {
        /* plan in a checkout without keys: the certificate is compared by
         * its public facts; the path is kept, so it compares too. */
        rc_doc_err(L, d, RC_WARNING, n, fpath,
                   "the private key \"%s\" is missing: compared by the certificate's public facts "
                   "only (albd run and validate need it)",
                   abs);
        *path = rc_arena_strdup(L->arena, abs);
        *pem = NULL;
        *len = 0;
        rc = *path ? 0 : -2;
    }
    free(abs);
    return rc;
}

/* A service certificate: its PEM comes from the certificate cache the
 * agent fills (model-t.h RC_CERT_CACHE_*). Not there: c->pending. Returns
 * 0, -1 (reported) or -2 when out of memory. */
static int service_source(struct rc_load *L, struct rc_doc *d, yaml_node_t *svc,
                          struct rc_certificate *c)
{
    const char *sname = rc_field_str(d, svc, "name", "");
    c->service_id = rc_arena_strdup(L->arena, rc_field_str(d, svc, "certificateId", ""));
    if (c->service_id == NULL)
        return -2;
    if (c->type == RC_CERT_CA) {
        rc_doc_err(L, d, RC_ERROR, svc, "spec.source.service",
                   "a certificate service serves Server certificates: a CA certificate needs "
                   "source.files or source.inline");
        return -1;
    }
    if (L->cert_cache_dir == NULL)
        return 0; /* validate: nothing to look at */
    char *cabs = NULL, *kabs = NULL;
    if (asprintf(&cabs, "%s/%s/%s/%s", L->cert_cache_dir, sname, c->service_id,
                 RC_CERT_CACHE_CERT) < 0)
        cabs = NULL;
    if (asprintf(&kabs, "%s/%s/%s/%s", L->cert_cache_dir, sname, c->service_id, RC_CERT_CACHE_KEY) <
        0)
        kabs = NULL;
    const struct rc_certificate *prior = d->fallback_cert ? d->fallback_cert
                                         : L->pass > 1    ? d->pass1_cert
                                                          : NULL;
    bool from = prior != NULL;
    bool missing = prior && prior->cert_pem == NULL;
    int rc = missing ? -1 : -2;
    if (!missing && (from || (cabs && kabs))) {
        rc = read_pem(L, d, svc, "spec.source.service", false, cabs, &c->cert_path,
                      &c->cert_path_hash, &c->cert_pem, &c->cert_pem_len, &missing);
        if (rc == 0)
            rc = read_pem(L, d, svc, "spec.source.service", true, kabs, &c->key_path,
                          &c->key_path_hash, &c->key_pem, &c->key_pem_len, &missing);
    }
    if (missing) {
        /* Never fetched (or the cache was emptied): no PEM, no facts. */
        c->pending = true;
        c->cert_pem = c->key_pem = NULL;
        c->cert_pem_len = c->key_pem_len = 0;
        if (!L->cert_pending_is_error)
            rc_doc_err(L, d, RC_WARNING, svc, "spec.source.service",
                       "certificate \"%s\" of certificate service \"%s\" is not in the cache "
                       "(%s): its subject, names and expiry cannot be shown",
                       c->service_id, sname, L->cert_cache_dir);
        rc = 0;
    }
    free(cabs);
    free(kabs);
    return rc;
}

/* Takes the facts about the leaf of c from its parsed entry e and reports
 * a key that does not parse or match. Returns 0, -1 after a key error (the
 * facts are filled), -3 when no certificate parses (nothing filled), or -2
 * when out of memory. */
static int facts_from(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c,
                      const struct rc_cert_parsed *e, yaml_node_t *files, yaml_node_t *where,
                      const char *wpath)
{
    if (e->status == RC_CERT_PARSE_NO_CERT) {
        rc_doc_err(L, d, RC_ERROR, where, wpath, "no PEM certificate could be parsed");
        return -3;
    }
    c->subject = rc_arena_strdup(L->arena, e->subject);
    c->issuer = rc_arena_strdup(L->arena, e->issuer);
    c->dns_names = rc_arena_alloc(L->arena, (e->n_dns_names + 1) * sizeof(*c->dns_names));
    if (c->subject == NULL || c->issuer == NULL || c->dns_names == NULL)
        return -2;
    for (size_t i = 0; i < e->n_dns_names; i++)
        if ((c->dns_names[c->n_dns_names++] = rc_arena_strdup(L->arena, e->dns_names[i])) == NULL)
            return -2;
    c->not_before = e->not_before;
    c->not_after = e->not_after;
    c->is_ca = e->is_ca;
    c->self_signed = e->self_signed;
    memcpy(c->fingerprint_sha256, e->fingerprint_sha256, sizeof(c->fingerprint_sha256));
    c->key_type = e->pub_base_id == EVP_PKEY_RSA  ? RC_KEY_RSA
                  : e->pub_base_id == EVP_PKEY_EC ? RC_KEY_EC
                                                  : RC_KEY_OTHER;
    c->key_bits = e->pub_bits;
    if (c->key_pem == NULL || e->status == RC_CERT_PARSE_OK)
        return 0;
    bool svc = c->source == RC_CERT_SOURCE_SERVICE;
    yaml_node_t *kn = svc ? files : rc_at(d, files, "privateKey");
    const char *kpath = svc ? "spec.source.service" : "spec.source.files.privateKey";
    if (e->status == RC_CERT_PARSE_BAD_KEY)
        rc_doc_err(L, d, RC_ERROR, kn, kpath,
                   "no unencrypted PEM private key could be parsed (encrypted keys are not "
                   "supported)");
    else
        rc_doc_err(L, d, RC_ERROR, kn, kpath, "the private key does not match the certificate");
    return -1;
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    if (a == NULL || b == NULL)
        return a == b;
    return alen == blen && (a == b || memcmp(a, b, alen) == 0);
}

/* An earlier parse of byte-identical PEM (certificate and key) whose facts
 * c may take instead of parsing again: parsing, the key check and the X509
 * facts are the expensive part of a load, and every candidate here passed
 * them (a model only holds certificates whose key matched; the first pass
 * of this load only hands on certificates without errors). The checks that
 * depend on the time or on the manifest (expiry, type) are run again. */
static const struct rc_certificate *reusable(struct rc_load *L, const struct rc_doc *d,
                                             const struct rc_certificate *c)
{
    const struct rc_certificate *cand[3] = {
        d->fallback_cert,
        L->pass > 1 ? d->pass1_cert : NULL,
        rc_model_certificate(L->prev, d->name),
    };
    for (size_t i = 0; i < 3; i++) {
        const struct rc_certificate *o = cand[i];
        if (o && o->subject && o->issuer && o->cert_pem &&
            same_bytes(o->cert_pem, o->cert_pem_len, c->cert_pem, c->cert_pem_len) &&
            same_bytes(o->key_pem, o->key_pem_len, c->key_pem, c->key_pem_len))
            return o;
    }
    return NULL;
}

static int copy_facts(struct rc_load *L, const struct rc_certificate *o, struct rc_certificate *c)
{
    c->subject = rc_arena_strdup(L->arena, o->subject);
    c->issuer = rc_arena_strdup(L->arena, o->issuer);
    c->dns_names = rc_arena_alloc(L->arena, (o->n_dns_names + 1) * sizeof(*c->dns_names));
    if (c->subject == NULL || c->issuer == NULL || c->dns_names == NULL)
        return -1;
    for (size_t i = 0; i < o->n_dns_names; i++)
        if ((c->dns_names[c->n_dns_names++] = rc_arena_strdup(L->arena, o->dns_names[i])) == NULL)
            return -1;
    c->not_before = o->not_before;
    c->not_after = o->not_after;
    memcpy(c->fingerprint_sha256, o->fingerprint_sha256, sizeof(c->fingerprint_sha256));
    c->key_type = o->key_type;
    c->key_bits = o->key_bits;
    c->is_ca = o->is_ca;
    c->self_signed = o->self_signed;
    return 0;
}

/* The checks that follow the facts: names the proxy could never match,
 * a CA certificate that is none, validity at L->now. rc: what the caller
 * found so far. Returns rc, or -1 after an error. */
static int after_checks(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c,
                        yaml_node_t *where, const char *wpath, int rc)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    /* Names the proxy could never match must not pass silently: the same
     * rule as the proxy matches by (common/hostname.c). */
    for (size_t i = 0; c->type == RC_CERT_SERVER && i < c->n_dns_names; i++)
        if (strchr(c->dns_names[i], '*') && !cm_hostname_wildcard_valid(c->dns_names[i])) {
            rc_doc_err(L, d, RC_ERROR, where, wpath,
                       "the certificate name \"%s\" is not a legal wildcard: one '*', only at the "
                       "start of the leftmost label (\"*.example.com\", \"*test.example.com\"), "
                       "followed by at least one label",
                       c->dns_names[i]);
            rc = -1;
        }

    if (c->type == RC_CERT_CA && !c->is_ca)
        rc_doc_err(L, d, RC_ERROR, rc_at(d, spec, "type"), "spec.type",
                   "the certificate is not a CA certificate (no basicConstraints CA:TRUE)");

    char when[32];
    if (c->not_after < L->now) {
        fmt_time(c->not_after, when, sizeof(when));
        rc_doc_err(L, d, RC_ERROR, where, wpath, "the certificate expired on %s", when);
        rc = -1;
    } else if (c->not_before > L->now) {
        fmt_time(c->not_before, when, sizeof(when));
        rc_doc_err(L, d, RC_ERROR, where, wpath, "the certificate is not valid before %s", when);
        rc = -1;
    } else if (c->not_after - L->now < (time_t)EXPIRY_WARNING_DAYS * 86400) {
        fmt_time(c->not_after, when, sizeof(when));
        rc_doc_err(L, d, RC_WARNING, where, wpath, EXPIRY_WARNING_PREFIX " %s (in %lld days)", when,
                   (long long)((c->not_after - L->now) / 86400));
    }
    return rc;
}

int rc_build_certificate(struct rc_load *L, struct rc_doc *d, struct rc_certificate *c)
{
    yaml_node_t *spec = rc_at(d, rc_doc_root(d), "spec");
    const char *type = rc_y_str(rc_at(d, spec, "type"));
    c->type = type && !strcmp(type, "CA") ? RC_CERT_CA : RC_CERT_SERVER;
    yaml_node_t *files = rc_at(d, spec, "source.files");
    yaml_node_t *inl = rc_at(d, spec, "source.inline");
    yaml_node_t *svc = rc_at(d, spec, "source.service");
    int rc = 0;
    if (files) {
        c->source = RC_CERT_SOURCE_FILES;
        rc = file_field(L, d, files, "certificate", &c->cert_path, &c->cert_path_hash, &c->cert_pem,
                        &c->cert_pem_len);
        if (rc == -2)
            return -2;
        yaml_node_t *keyn = rc_at(d, files, "privateKey");
        if (keyn && c->type == RC_CERT_CA) {
            rc_doc_err(L, d, RC_ERROR, keyn, "spec.source.files.privateKey",
                       "CA certificates take no private key");
            rc = -1;
        } else if (keyn) {
            int krc = file_field(L, d, files, "privateKey", &c->key_path, &c->key_path_hash,
                                 &c->key_pem, &c->key_pem_len);
            if (krc == -2)
                return -2;
            rc = rc ? rc : krc;
        } else if (c->type == RC_CERT_SERVER) {
            rc_doc_err(L, d, RC_ERROR, files, "spec.source.files",
                       "Server certificates need privateKey");
            rc = -1;
        }
    } else if (inl) {
        c->source = RC_CERT_SOURCE_INLINE;
        yaml_node_t *pn = rc_at(d, inl, "certificate");
        const char *pem = rc_y_str(pn);
        if (strstr(pem, "PRIVATE KEY")) {
            rc_doc_err(L, d, RC_ERROR, pn, "spec.source.inline.certificate",
                       "private keys are not allowed inline (use source.files)");
            return -1; /* never copied: the key stays out of the model */
        }
        c->cert_pem = rc_arena_strdup(L->arena, pem);
        c->cert_pem_len = strlen(pem);
        if (c->cert_pem == NULL)
            return -2;
        if (c->type == RC_CERT_SERVER) {
            rc_doc_err(L, d, RC_ERROR, pn, "spec.source.inline",
                       "inline certificates are for CA certificates and chains only: a Server "
                       "certificate needs source.files with its private key");
            rc = -1;
        }
    } else {
        c->source = RC_CERT_SOURCE_SERVICE;
        rc = service_source(L, d, svc, c);
        if (rc == -2)
            return -2;
        if (c->cert_pem == NULL) { /* pending, or validate without a cache */
            if (rc_fill_meta(L, d, &c->meta, c->service_id, strlen(c->service_id), NULL, 0))
                return -2;
            return rc;
        }
    }
    if (rc_fill_meta(L, d, &c->meta, c->cert_pem, c->cert_pem_len, c->key_pem, c->key_pem_len))
        return -2;
    if (c->cert_pem == NULL)
        return -1;

    yaml_node_t *where = files ? rc_at(d, files, "certificate")
                         : inl ? rc_at(d, inl, "certificate")
                               : svc;
    const char *wpath = files ? "spec.source.files.certificate"
                        : inl ? "spec.source.inline.certificate"
                              : "spec.source.service";
    c->where_loc = rc_y_loc(d, where ? where : rc_doc_root(d));
    rc_certstore_id(c->cert_pem, c->cert_pem_len, c->key_pem, c->key_pem_len, c->store_id);
    c->has_store_id = true;
    const struct rc_certificate *same = reusable(L, d, c);
    if (same) {
        if (copy_facts(L, same, c) != 0)
            return -2;
        L->certs_reused++;
        return after_checks(L, d, c, where, wpath, rc);
    }
    /* Parsed with the other certificates of this pass, on every core
     * (rc_finish_certificates()). */
    L->certs_parsed++;
    struct rc_cert_batch *b = L->cert_batch;
    if (b == NULL || b->n == b->cap)
        return -2;
    b->v[b->n++] = (struct rc_cert_todo){
        .d = d, .c = c, .files = files ? files : svc, .where = where, .wpath = wpath, .rc = rc};
    return rc;
}

int rc_finish_certificates(struct rc_load *L)
{
    struct rc_cert_batch *b = L->cert_batch;
    if (b == NULL || b->n == 0)
        return 0;
    /* Scratch for this call: not in the arena, which keeps what resources own. */
    struct rc_certstore_in *in = malloc(b->n * sizeof(*in));
    struct rc_cert_parsed **e = malloc(b->n * sizeof(*e));
    if (in == NULL || e == NULL) {
        free(in);
        free(e);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct rc_certificate *c = b->v[i].c;
        in[i] = (struct rc_certstore_in){.cert_pem = c->cert_pem,
                                         .cert_len = c->cert_pem_len,
                                         .key_pem = c->key_pem,
                                         .key_len = c->key_pem_len,
                                         .id = c->store_id};
    }
    /* A one-shot load (validate) needs the facts only: the parse frees
     * each certificate's OpenSSL objects as it goes (9 KiB each), so the
     * whole batch is parsed at once on every core, and the sweep after it
     * leaves the store as it found it. A serving load keeps the parse for
     * its TLS contexts. */
    int rc = L->release_parsed ? rc_certstore_acquire_facts(in, b->n, e)
                               : rc_certstore_acquire(in, b->n, e);
    free(in);
    if (rc != 0) {
        free(e);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct rc_cert_todo *t = &b->v[i];
        size_t u0 = rc_arena_used(L->arena);
        int frc = rc == 0 ? facts_from(L, t->d, t->c, e[i], t->files, t->where, t->wpath) : 0;
        t->d->built_bytes += rc_arena_used(L->arena) - u0;
        if (frc == -2)
            rc = -1;
        else if (rc == 0 && frc != -3)
            after_checks(L, t->d, t->c, t->where, t->wpath, t->rc);
        rc_cert_parsed_unref(e[i]);
    }
    free(e);
    if (L->release_parsed)
        rc_certstore_sweep();
    b->n = 0;
    return rc;
}

bool rc_cert_is_expiry_warning(const struct rc_err *e)
{
    return e->severity == RC_WARNING && e->kind && strcmp(e->kind, "Certificate") == 0 && e->msg &&
           strncmp(e->msg, EXPIRY_WARNING_PREFIX, sizeof EXPIRY_WARNING_PREFIX - 1) == 0;
}

bool rc_cert_time_quiet(const struct rc_load *L, const struct rc_certificate *c)
{
    return c->not_after >= L->now && c->not_before <= L->now &&
           c->not_after - L->now >= (time_t)EXPIRY_WARNING_DAYS * 86400;
}

/* The warning a copy near expiry reports: what its build would (the same
 * words, at the certificate's source field). */
/* Named by the certificate (its meta is its document's kind and name):
 * the warnings may be written after the load's documents are gone
 * (rc_load_opts.late_expiry). */
static void report_copy_expiry(struct rc_errs *errs, time_t now, const struct rc_certificate *c)
{
    char when[32];
    fmt_time(c->not_after, when, sizeof(when));
    const char *wpath = c->source == RC_CERT_SOURCE_FILES    ? "spec.source.files.certificate"
                        : c->source == RC_CERT_SOURCE_INLINE ? "spec.source.inline.certificate"
                                                             : "spec.source.service";
    rc_errs_add(errs, RC_WARNING, &c->where_loc, c->meta.kind, c->meta.name, wpath,
                EXPIRY_WARNING_PREFIX " %s (in %lld days)", when,
                (long long)((c->not_after - now) / 86400));
}

const struct rc_certificate *rc_reuse_certificate(struct rc_load *L, struct rc_doc *d,
                                                  struct rc_certificate **own)
{
    *own = NULL;
    if (!rc_reuse_from(L, d))
        return NULL;
    const struct rc_certificate *o = d->prev_src->res;
    /* Expired or not valid yet: built, so that the error is reported at
     * its field. Near expiry: copied, and the warning reported again at
     * where it was (10,000 certificates of a short lifetime must not be
     * rebuilt on every change). */
    if (o->not_after < L->now || o->not_before > L->now)
        return NULL;
    if (!rc_cert_time_quiet(L, o) && o->where_loc.line == 0)
        return NULL; /* from before where_loc was kept */
    /* A service certificate is copied only once it is in the cache (a
     * pending one is looked up again) and under the same cache. */
    if (o->source == RC_CERT_SOURCE_SERVICE &&
        (o->pending || o->cert_path == NULL || o->key_path == NULL || L->cert_cache_dir == NULL ||
         strncmp(o->cert_path, L->cert_cache_dir, strlen(L->cert_cache_dir)) != 0))
        return NULL;
    /* Files and the cache: the bytes prev holds must still be what the
     * files hold. */
    if (o->source != RC_CERT_SOURCE_INLINE &&
        (!rc_filecache_unchanged(L->files, o->cert_path, o->cert_path_hash, o->cert_pem,
                                 o->cert_pem_len) ||
         (o->key_path && !rc_filecache_unchanged(L->files, o->key_path, o->key_path_hash,
                                                 o->key_pem, o->key_pem_len))))
        return NULL;
    if (rc_arena_hold(L->m->arena, d->prev_src->origin) != 0) {
        L->oom = true;
        return NULL;
    }
    const struct rc_certificate *c = o;
    int moved = d->src_line - d->prev_src->line;
    if (moved != 0 || o->source == RC_CERT_SOURCE_SERVICE || o->relocated) {
        /* A copy of its own, in this pass's data arena: the document moved
         * in its file (a changed file's unchanged document, load.c) and the
         * copy is where the document is now; or its service is this
         * load's (build.c re-points it), never prev's. The arena is not
         * the source's origin: later loads copy this struct, never share
         * it. */
        struct rc_certificate *w = rc_arena_alloc(L->arena, sizeof(*w));
        if (w == NULL) {
            L->oom = true;
            return NULL;
        }
        *w = *o;
        w->meta.loc.line += moved;
        w->where_loc.line += moved;
        w->service = NULL;
        w->relocated = true;
        *own = w;
        c = w;
    }
    L->certs_reused++;
    if (rc_cert_time_quiet(L, c))
        return c;
    if (L->defer_expiry && L->pass == 1 && L->n_late_expiry == L->cap_late_expiry) {
        size_t cap = L->cap_late_expiry ? 2 * L->cap_late_expiry : 64;
        const struct rc_certificate **v = realloc(L->late_expiry, cap * sizeof(*v));
        if (v != NULL) {
            L->late_expiry = v;
            L->cap_late_expiry = cap;
        }
    }
    if (L->defer_expiry && L->pass == 1 && L->n_late_expiry < L->cap_late_expiry) {
        L->late_expiry[L->n_late_expiry++] = c;
        return c;
    }
    /* (Without room to wait in, it is reported now.) */
    report_copy_expiry(L->errs, L->now, c);
    return c;
}

void rc_late_expiries_report(struct rc_late_expiries *x, struct rc_errs *errs)
{
    rc_errs_reserve(errs, errs->n + x->n);
    for (size_t i = 0; i < x->n; i++)
        report_copy_expiry(errs, x->now, x->v[i]);
    rc_late_expiries_drop(x);
}

void rc_late_expiries_drop(struct rc_late_expiries *x)
{
    free(x->v);
    x->v = NULL;
    x->n = 0;
}

void rc_hand_late_expiry(struct rc_load *L, struct rc_late_expiries *out)
{
    out->v = L->late_expiry;
    out->n = L->n_late_expiry;
    out->now = L->now;
    L->late_expiry = NULL;
    L->n_late_expiry = L->cap_late_expiry = 0;
}

void rc_report_late_expiry(struct rc_load *L, struct rc_errs *errs)
{
    struct rc_late_expiries x;
    rc_hand_late_expiry(L, &x);
    rc_late_expiries_report(&x, errs);
}
