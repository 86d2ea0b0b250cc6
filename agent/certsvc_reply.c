/* Parsing and checking a certificate-service reply (certsvc_reply.h). */
#include "agent/certsvc_reply.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const result_names[AG_CS_N_RESULTS] = {
    "updated",      "unchanged",    "timeout",       "connect",   "tls",
    "connection",   "unauthorized", "forbidden",     "not_found", "server_error",
    "bad_status",   "too_large",    "malformed",     "wrong_id",  "bad_pem",
    "key_mismatch", "expired",      "not_yet_valid", "cache",     "internal"};

const char *ag_certsvc_result_name(enum ag_certsvc_result r)
{
    return (unsigned)r < AG_CS_N_RESULTS ? result_names[r] : "internal";
}

static enum ag_certsvc_result fail(enum ag_certsvc_result r, char *err, size_t errlen,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum ag_certsvc_result fail(enum ag_certsvc_result r, char *err, size_t errlen,
                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

void ag_cert_reply_cleanup(struct ag_cert_reply *r)
{
    if (r->key_pem) {
        OPENSSL_cleanse(r->key_pem, r->key_len);
        free(r->key_pem);
    }
    free(r->version);
    free(r->cert_pem);
    memset(r, 0, sizeof *r);
}

/* The string member key of o, or NULL. */
static json_t *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? v : NULL;
}

static bool version_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"')
            return false;
    return true;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static time_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* Checks that cert/key parse and match and that the leaf is valid at now;
 * fills the validity window into out. */
static enum ag_certsvc_result check_pem(struct ag_cert_reply *out, time_t now, char *err,
                                        size_t errlen)
{
    enum ag_certsvc_result r = AG_CS_UPDATED;
    BIO *b = BIO_new_mem_buf(out->cert_pem, (int)out->cert_len);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    b = BIO_new_mem_buf(out->key_pem, (int)out->key_len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (leaf == NULL)
        r = fail(AG_CS_BAD_PEM, err, errlen, "\"certificate\" holds no PEM certificate");
    else if (key == NULL)
        r = fail(AG_CS_BAD_PEM, err, errlen, "\"privateKey\" holds no unencrypted PEM private key");
    else if (X509_check_private_key(leaf, key) != 1)
        r = fail(AG_CS_KEY_MISMATCH, err, errlen, "the private key does not match the certificate");
    if (r == AG_CS_UPDATED) {
        out->not_before = asn1_time(X509_get0_notBefore(leaf));
        out->not_after = asn1_time(X509_get0_notAfter(leaf));
        char when[32];
        struct tm tm;
        if (out->not_after <= now) {
            gmtime_r(&out->not_after, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            r = fail(AG_CS_EXPIRED, err, errlen, "the certificate expired on %s", when);
        } else if (out->not_before > now) {
            gmtime_r(&out->not_before, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            r = fail(AG_CS_NOT_YET_VALID, err, errlen, "the certificate is not valid before %s",
                     when);
        }
    }
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(key);
    return r;
}

enum ag_certsvc_result ag_cert_reply_parse(const char *body, size_t len, const char *id, time_t now,
                                           struct ag_cert_reply *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > AG_CERTSVC_MAX_REPLY)
        return fail(AG_CS_TOO_LARGE, err, errlen, "the reply is larger than %u bytes",
                    AG_CERTSVC_MAX_REPLY);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(AG_CS_MALFORMED, err, errlen, "the reply is not JSON (line %d, column %d)",
                    jerr.line, jerr.column);
    enum ag_certsvc_result r = AG_CS_UPDATED;
    json_t *jid = str_member(root, "id"), *jver = str_member(root, "version");
    json_t *jcert = str_member(root, "certificate"), *jkey = str_member(root, "privateKey");
    if (!json_is_object(root)) {
        r = fail(AG_CS_MALFORMED, err, errlen, "the reply is not a JSON object");
    } else if (!jid || !jver || !jcert || !jkey || !str_member(root, "notAfter")) {
        r = fail(AG_CS_MALFORMED, err, errlen, "the reply lacks a string \"%s\"",
                 !jid     ? "id"
                 : !jver  ? "version"
                 : !jcert ? "certificate"
                 : !jkey  ? "privateKey"
                          : "notAfter");
    } else if (json_string_length(jid) != strlen(id) ||
               memcmp(json_string_value(jid), id, strlen(id)) != 0) {
        r = fail(AG_CS_WRONG_ID, err, errlen, "the reply is for another certificate ID");
    } else if (!version_ok(json_string_value(jver), json_string_length(jver))) {
        r = fail(AG_CS_MALFORMED, err, errlen,
                 "\"version\" must be 1-128 printable ASCII characters without '\"'");
    } else {
        out->version = strndup(json_string_value(jver), json_string_length(jver));
        out->cert_len = json_string_length(jcert);
        out->cert_pem = malloc(out->cert_len + 1);
        out->key_len = json_string_length(jkey);
        out->key_pem = malloc(out->key_len + 1);
        if (!out->version || !out->cert_pem || !out->key_pem) {
            r = fail(AG_CS_INTERNAL, err, errlen, "out of memory");
        } else {
            memcpy(out->cert_pem, json_string_value(jcert), out->cert_len + 1);
            memcpy(out->key_pem, json_string_value(jkey), out->key_len + 1);
            if (memchr(out->cert_pem, '\0', out->cert_len) ||
                memchr(out->key_pem, '\0', out->key_len))
                r = fail(AG_CS_BAD_PEM, err, errlen, "the PEM text holds a NUL byte");
            else
                r = check_pem(out, now, err, errlen);
        }
    }
    /* jansson's copy of the key goes back to malloc wiped. */
    if (jkey)
        OPENSSL_cleanse((void *)json_string_value(jkey), json_string_length(jkey));
    json_decref(root);
    if (r != AG_CS_UPDATED)
        ag_cert_reply_cleanup(out);
    return r;
}
