/* The validated manifest model: what the manifests ask for, with every
 * reference resolved to a pointer and every default filled in.
 *
 * A model is immutable once rc_load_dir() returns it and is shared by
 * reference count (rc_model_ref/unref, thread-safe): the proxy's snapshot
 * keeps the model it was built from and points into it, so all strings and
 * arrays here live as long as the model. Everything is allocated in the
 * model's own arena and freed at once by the last unref.
 *
 * Field names follow MANIFESTS.md (camelCase there, snake_case here). */
#ifndef ALBD_RECONCILER_MODEL_T_H
#define ALBD_RECONCILER_MODEL_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "reconciler/err-t.h"

struct rc_arena;

struct rc_label {
    const char *key;
    const char *value;
};

/* What every resource has: metadata and where it was written. */
struct rc_meta {
    const char *kind;  /* "Listener", ... (static string) */
    const char *name;  /* metadata.name */
    struct rc_loc loc; /* the document's start (its "kind:" mapping) */
    struct rc_label *labels;
    size_t n_labels;
    /* SHA-256 (hex) of the resource's canonical content: equal digests mean
     * an unchanged resource (used to reuse SSL_CTX, parsed certs, ...). For
     * certificates it covers the PEM bytes too. */
    char digest[65];
};

enum rc_edition { RC_EDITION_BASIC, RC_EDITION_STANDARD, RC_EDITION_WAF };

struct rc_instance {
    struct rc_meta meta;
    const char *id; /* sent as SLB-ID; defaults to meta.name */
    enum rc_edition edition;
    const char **addresses; /* bind addresses, default {"0.0.0.0", "::"} */
    size_t n_addresses;
    /* Ceiling of its listeners' idle and request timeouts (the reference's
     * quota): RC_MAX_TIMEOUT_DEFAULT_S..RC_MAX_TIMEOUT_LIMIT_S. */
    int max_timeout_s;
};

#define RC_MAX_TIMEOUT_DEFAULT_S 600
#define RC_MAX_TIMEOUT_LIMIT_S 3600

enum rc_cert_type { RC_CERT_SERVER, RC_CERT_CA };
enum rc_cert_source { RC_CERT_SOURCE_FILES, RC_CERT_SOURCE_INLINE, RC_CERT_SOURCE_SERVICE };
enum rc_key_type { RC_KEY_NONE, RC_KEY_RSA, RC_KEY_EC, RC_KEY_OTHER };

/* A CertificateService: where service certificates are fetched from
 * (schemas/api/certsvc.md). Paths are absolute; the token file's content
 * is never read by the reconciler. */
struct rc_cert_service {
    struct rc_meta meta;
    const char *endpoint;    /* "https://host:port[/base]", no trailing '/' */
    const char *ca_file;     /* PEM CA bundle the service's certificate must chain to */
    const char *token_file;  /* bearer token file, NULL when none */
    const char *client_cert; /* mutual TLS to the service, NULL when none */
    const char *client_key;
    int refresh_s; /* refreshIntervalSeconds, 10-86400, default 300 */
    int timeout_s; /* timeoutSeconds, 1-300, default 10 */
};

/* Folder of the certificate cache below rc_load_opts.cert_cache_dir, and
 * the three files of one service certificate in it:
 * CACHE/<service>/<id>/{cert.pem,key.pem,version}. */
#define RC_CERT_CACHE_CERT "cert.pem"
#define RC_CERT_CACHE_KEY "key.pem"
#define RC_CERT_CACHE_VERSION "version"
/* The start of the status message of a Listener that waits for a service
 * certificate never fetched and not cached (agent/admin.c shows it as
 * Pending). */
#define RC_PENDING_PREFIX "pending: "

struct rc_certificate {
    struct rc_meta meta;
    enum rc_cert_type type;
    enum rc_cert_source source;
    /* files: absolute paths of the PEM chain and the key; service: of the
     * cache's files (NULL without a cache folder); else NULL. */
    const char *cert_path;
    const char *key_path;
    /* service: the CertificateService and the certificate's ID there. */
    const struct rc_cert_service *service;
    const char *service_id;
    /* service: not in the cache yet (never fetched), so no PEM and no
     * facts; a listener that names it is not built. */
    bool pending;
    /* cm_hash_str() of the paths (0 when NULL), computed once when the
     * certificate is built: a reload checks 10,000 files without hashing
     * their paths again (reconciler/filecache.c). */
    uint64_t cert_path_hash, key_path_hash;
    /* The PEM text, leaf first then the chain (NUL-terminated). */
    const char *cert_pem;
    size_t cert_pem_len;
    /* SECRET: the private key PEM (NUL-terminated), NULL for CA certificates.
     * Never log, print, export or hash into anything that is printed. */
    const char *key_pem;
    size_t key_pem_len;
    /* Facts about the leaf certificate, safe to show. */
    const char *subject;    /* RFC 2253 one-line DN */
    const char *issuer;     /* RFC 2253 one-line DN */
    const char **dns_names; /* subjectAltName DNS entries (CN if none), lowercased */
    size_t n_dns_names;
    time_t not_before, not_after;
    char fingerprint_sha256[65]; /* hex, lowercase, of the leaf's DER */
    enum rc_key_type key_type;
    int key_bits;
    bool is_ca;       /* basicConstraints CA:TRUE */
    bool self_signed; /* issuer == subject and self-signature verifies */
};

/* TLS versions as a bit set. */
enum {
    RC_TLS_1_0 = 1u << 0,
    RC_TLS_1_1 = 1u << 1,
    RC_TLS_1_2 = 1u << 2,
    RC_TLS_1_3 = 1u << 3,
};

struct rc_tls_policy {
    struct rc_meta meta; /* for system policies: kind "TLSPolicy", loc.file NULL */
    bool system;         /* one of the built-in tls_cipher_policy_* */
    unsigned versions;   /* RC_TLS_* bits */
    /* OpenSSL cipher strings, ready for SSL_CTX_set_cipher_list() and
     * SSL_CTX_set_ciphersuites(); "" when the policy has none of that kind. */
    const char *cipher_list;  /* TLS 1.0-1.2, ':'-joined OpenSSL names */
    const char *ciphersuites; /* TLS 1.3, ':'-joined */
    /* The names as the manifest (or system table) gave them, in order. */
    const char **ciphers;
    size_t n_ciphers;
};

enum rc_group_protocol { RC_GROUP_HTTP, RC_GROUP_HTTPS };
enum rc_scheduler { RC_SCHED_WRR, RC_SCHED_WLC, RC_SCHED_SCH, RC_SCHED_UCH };

struct rc_server {
    const char *address; /* IP literal or host name */
    int port;            /* 1-65535 */
    int weight;          /* 0-100; 0 = no new requests */
    struct rc_loc loc;
};

struct rc_health_check {
    bool enabled;
    int protocol; /* 0 HTTP, 1 HTTPS, 2 TCP */
    const char *method, *path, *host;
    int port;       /* 0 = server's port */
    unsigned codes; /* bit 2 = http_2xx, bit 3 = http_3xx, ... */
    int interval_s, timeout_s, healthy_threshold, unhealthy_threshold;
};

struct rc_server_group {
    struct rc_meta meta;
    enum rc_group_protocol protocol;
    enum rc_scheduler scheduler;
    struct rc_server *servers;
    size_t n_servers;
    bool upstream_keepalive;             /* default true */
    struct rc_health_check health_check; /* parsed; acted on by the health-check issue */
    bool fail_open;                      /* whenAllUnhealthy: FailOpen (default) */
};

enum rc_listener_protocol { RC_LISTENER_HTTP, RC_LISTENER_HTTPS, RC_LISTENER_QUIC };
enum rc_xff_mode { RC_XFF_APPEND, RC_XFF_REMOVE, RC_XFF_PRESERVE };

struct rc_listener {
    struct rc_meta meta;
    const struct rc_instance *instance;
    enum rc_listener_protocol protocol;
    int port;
    bool http2;                /* HTTPS only, default true */
    int idle_timeout_s;        /* 1-instance->max_timeout_s, default 15 */
    int request_timeout_s;     /* 1-instance->max_timeout_s, default 60 */
    bool gzip, brotli;         /* compression, default true */
    enum rc_xff_mode xff_mode; /* default Append */
    struct {
        bool slb_id, proto, port, host, client_src_port; /* each default false */
    } headers;
    struct {
        const struct rc_certificate *certificate; /* default server certificate */
        const struct rc_certificate **extension_certificates;
        size_t n_extension_certificates;
        const struct rc_tls_policy *policy; /* default tls_cipher_policy_1_2 */
        bool strict_sni; /* 421 when Host is not covered by the SNI certificate */
        struct {
            bool enabled;                                  /* Standard and WAF editions only */
            const struct rc_certificate **ca_certificates; /* type CA */
            size_t n_ca_certificates;
        } mutual;
    } tls; /* HTTPS only; zeroed for HTTP */
    /* headers.clientCert: X-Forwarded-Clientcert-* (HTTPS). name is the
     * header name sent (default the reference's name); NULL when disabled. */
    struct {
        const char *subject_dn, *issuer_dn, *fingerprint, *client_verify;
    } client_cert_headers;
    const struct rc_server_group *default_group; /* defaultAction.forward.serverGroup */
    /* spec.limits: HTTP/1.1 request limits and slow-client defences. */
    struct {
        uint64_t max_request_body_bytes; /* 0 = unlimited (default) -> 413 */
        int header_timeout_s;            /* 1-600, default 10: head deadline -> 408 */
        uint32_t min_body_rate;          /* bytes/s over 5 s windows, default 256; 0 = off */
    } limits;
};

/* The whole desired configuration. Arrays are sorted by meta.name. */
struct rc_model {
    struct rc_arena *arena;
    int refs; /* atomic; use rc_model_ref/unref */
    struct rc_instance *instances;
    size_t n_instances;
    struct rc_certificate *certificates;
    size_t n_certificates;
    struct rc_cert_service *cert_services;
    size_t n_cert_services;
    /* Custom policies from manifests followed by every system policy. */
    struct rc_tls_policy *policies;
    size_t n_policies;
    struct rc_server_group *groups;
    size_t n_groups;
    struct rc_listener *listeners;
    size_t n_listeners;
    char digest[65]; /* SHA-256 over the manifest files' bytes, in path order */
};

#endif
