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

#include "common/ip.h"
#include "reconciler/err-t.h"

struct rc_arena;

struct rc_label {
    const char *key;
    const char *value;
};

/* What every resource has: metadata and where it was written. */
struct rc_meta {
    const char *kind;        /* "Listener", ... (static string) */
    const char *name;        /* metadata.name */
    struct rc_loc loc;       /* the document's start (its "kind:" mapping) */
    struct rc_label *labels; /* sorted by key */
    size_t n_labels;
    /* metadata.annotations (sorted by key) and metadata.namespace (NULL
     * when absent): kept for /config and plan only. Neither is in digest
     * (they change nothing albd does), and the namespace does not scope
     * names: names are unique per kind in the whole folder. */
    struct rc_label *annotations;
    size_t n_annotations;
    const char *ns;
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
/* The start of the warning that a forwarding rule was left out of its
 * Listener because a group it forwards to is invalid (contain.c; /status
 * gives that problem the reason RuleContained). */
#define RC_RULE_CONTAINED_PREFIX "RuleContained: "

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
    /* rc_certstore_id() of cert_pem and key_pem (reconciler/certstore.h),
     * computed once when the certificate is built and copied with it: a
     * TLS context finds the parsed certificate by it without hashing the
     * PEM again. Not secret, but never shown either. has_store_id: set. */
    unsigned char store_id[32];
    bool has_store_id;
    /* Where its validity warnings point (the certificate's source field),
     * so that a copy near expiry reports them again without its document
     * being parsed. */
    struct rc_loc where_loc;
    /* A copy made by one load (the document moved in its file, or a
     * service certificate pointed at the load's own service) in that
     * load's data arena, which its source's origin does not cover: later
     * loads copy it again rather than share it (cert.c). */
    bool relocated;
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
    const char *method, *path;
    const char *host; /* NULL: the server's address */
    int http_version; /* 10 (HTTP1.0) or 11 (HTTP1.1, the default) */
    int port;         /* 0 = server's port */
    unsigned codes;   /* bit 2 = http_2xx, bit 3 = http_3xx, ... */
    int interval_s, timeout_s, healthy_threshold, unhealthy_threshold;
};

struct rc_server_group {
    struct rc_meta meta;
    enum rc_group_protocol protocol;
    enum rc_scheduler scheduler;
    struct rc_server *servers;
    size_t n_servers;
    bool upstream_keepalive;             /* default true */
    struct rc_health_check health_check; /* probed by proxy/health.c */
    bool fail_open;                      /* whenAllUnhealthy: FailOpen (default) */
    /* spec.tls (HTTPS groups: end-to-end TLS, proxy/upstream_tls.c). The
     * servers' certificates are verified against ca_certificates (none:
     * the system's trust store); server_name is the SNI and the name
     * checked (NULL: each server's host name, or its IP for an IP literal). */
    struct {
        const struct rc_certificate **ca_certificates;
        size_t n_ca_certificates;
        const char *server_name;
        const struct rc_certificate *client_certificate; /* NULL: none */
    } tls;
    const char *uch_query_parameter; /* Uch: the query parameter hashed (else NULL) */
    /* stickySession: Insert (albd's SERVERID cookie, cookie_timeout_s
     * 1-86400) or Server (the backend's cookie named cookie). */
    struct {
        bool enabled;
        bool server; /* type Server (else Insert) */
        int cookie_timeout_s;
        const char *cookie; /* Server: the backend's cookie name (else NULL) */
    } sticky;
    struct {
        bool enabled;   /* Wrr only */
        int duration_s; /* 30-900 */
    } slow_start;
    struct {
        bool enabled;
        int timeout_s; /* 0-900; 0 = cut at once */
    } drain;
};

/* Forwarding rules (Listener spec.rules, reconciler/rules.c): what the
 * proxy's router (proxy/router.c) compiles into an index per listener and
 * its actions (proxy/action.c) carry out. */

/* Method condition bits, in the reference's order. */
enum {
    RC_METHOD_HEAD = 1u << 0,
    RC_METHOD_GET = 1u << 1,
    RC_METHOD_POST = 1u << 2,
    RC_METHOD_OPTIONS = 1u << 3,
    RC_METHOD_PUT = 1u << 4,
    RC_METHOD_PATCH = 1u << 5,
    RC_METHOD_DELETE = 1u << 6,
};

enum rc_action_kind { RC_ACTION_FORWARD, RC_ACTION_REDIRECT, RC_ACTION_FIXED };

#define RC_RULE_MAX_GROUPS 5
#define RC_RESP_RULES_MAX 64 /* response rules per listener */

struct rc_kv {
    const char *key, *value;
};

/* One final action (the reference's FinalType). */
struct rc_action {
    enum rc_action_kind kind;
    struct {
        /* Pointers into the model's groups: re-pointed by rc_rules_reuse
         * when an unchanged listener is copied (rules.c). */
        const struct rc_server_group *groups[RC_RULE_MAX_GROUPS];
        int weights[RC_RULE_MAX_GROUPS]; /* 0-100 */
        size_t n_groups;
        /* stickySession: a client keeps its group through the cookie
         * albd-group-<rule name> (the group's name), Max-Age
         * sticky_timeout_s. */
        bool sticky;
        int sticky_timeout_s;
    } forward;
    struct {
        int code;             /* 301 302 303 307 308 */
        const char *protocol; /* "${protocol}", "http" or "https" */
        const char *host;     /* template: may hold ${host} */
        const char *port;     /* "${port}" or a number */
        const char *path;     /* template: ${host} ${path} ${port} ${protocol} */
        const char *query;    /* template: the same and ${query} */
    } redirect;
    struct {
        int code;                 /* 2xx 4xx 5xx */
        const char *content_type; /* one of the reference's five */
        const char *content;      /* <= 1024 bytes of ASCII, may be "" */
        size_t content_len;
    } fixed;
};

enum rc_header_value { RC_HDR_USER, RC_HDR_REFERENCE, RC_HDR_SYSTEM };
enum rc_system_value {
    RC_SYS_CLIENT_SRC_PORT,
    RC_SYS_CLIENT_SRC_IP,
    RC_SYS_PROTOCOL,
    RC_SYS_SLB_ID,
    RC_SYS_SLB_PORT,
};

/* One insertHeaders entry: the request header name set, and its value. */
struct rc_header_op {
    const char *name;
    enum rc_header_value type;
    const char *value;           /* UserDefined text, or the ReferenceHeader's name */
    enum rc_system_value system; /* SystemDefined */
};

/* A rule's cors action (the reference's Cors): albd answers a preflight
 * itself and adds the Access-Control-* fields to forwarded responses
 * whose request's Origin is allowed. The lists are kept joined with ", "
 * as they go on the wire (NULL: none given). */
struct rc_cors {
    const char **origins; /* "*" or scheme://host[:port], compared case-insensitively */
    size_t n_origins;
    const char **methods, **headers, **expose; /* as given */
    size_t n_methods, n_headers, n_expose;
    const char *methods_j, *headers_j, *expose_j; /* joined with ", "; NULL: none */
    bool any_origin;                              /* "*" is among the origins */
    bool credentials; /* allowCredentials (default true, the console's) */
    bool has_max_age;
    int max_age; /* -1..172800 seconds */
};

/* One forwarding rule. Condition types AND together, the values within a
 * type OR; a type with no values matches everything. */
struct rc_rule {
    const char *name; /* unique per listener (default "rule-<priority>") */
    int priority;     /* 1-10000, unique per listener */
    struct rc_loc loc;
    const char **hosts; /* lowercased; exact or with * and ? */
    size_t n_hosts;
    const char **paths; /* exact or with * and ?, case-sensitive */
    size_t n_paths;
    unsigned methods;        /* RC_METHOD_* bits; 0: any */
    const char *header_name; /* NULL: no Header condition */
    const char **header_values;
    size_t n_header_values;
    struct rc_kv *query; /* key and value wildcards, case-insensitive */
    size_t n_query;
    struct rc_kv *cookies; /* key and value wildcards, case-insensitive */
    size_t n_cookies;
    const char **source_ips; /* "ADDR" or "ADDR/N" (cm_cidr_parse accepts each) */
    size_t n_source_ips;
    struct rc_action action;
    /* Extras of a forward (the reference's Ext actions), applied to what
     * the backend receives: rewrite templates (NULL: unchanged), then the
     * headers removed, then those inserted. */
    const char *rewrite_host, *rewrite_path, *rewrite_query;
    const char **remove_headers;
    size_t n_remove_headers;
    struct rc_header_op *insert_headers;
    size_t n_insert_headers;
    /* trafficLimit: requests per second for the rule and per client IP
     * (0: no limit); over either, albd answers limit_status (503) with
     * ALB-QPS-Limited: Limited. */
    int limit_qps, limit_per_ip_qps, limit_status;
    const struct rc_cors *cors; /* NULL: no cors action */
    /* trafficMirror: copies of the rule's bodiless requests go to this
     * group, their responses discarded (proxy/mirror.c); NULL: none.
     * Re-pointed by rc_rules_reuse like the forward's groups. */
    const struct rc_server_group *mirror_group;
    /* A response rule (direction: Response; kept in the listener's
     * resp_rules): its response conditions — status ranges (pairs lo, hi)
     * and a response header — and its actions: action.kind
     * RC_ACTION_FIXED replaces the response, else (kind RC_ACTION_FORWARD,
     * no groups) remove_headers then insert_headers (UserDefined only)
     * edit it. */
    bool response;
    int (*statuses)[2];
    size_t n_statuses;
    const char *resp_header_name;
    const char **resp_header_values;
    size_t n_resp_header_values;
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
    /* xForwardedFor.clientSourceIps: retrieve the client IP from
     * X-Forwarded-For (Standard and WAF editions only; proxy/clientip.c).
     * trusted[i] was parsed from trusted_text[i]; leftmost: the list holds
     * 0.0.0.0/0 (take the leftmost address). Arena memory. */
    struct {
        bool enabled, leftmost;
        const struct cm_cidr *trusted;
        const char **trusted_text;
        size_t n_trusted;
    } client_ips;
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
    /* defaultAction.redirect or .fixedResponse (arena; no group pointers);
     * NULL when the default action forwards to default_group. */
    const struct rc_action *default_action;
    /* spec.rules, sorted by priority (arena; their forward groups are
     * re-pointed by rc_rules_reuse on a copied listener). */
    const struct rc_rule *rules;
    size_t n_rules;
    /* The response rules, by priority (at most RC_RESP_RULES_MAX). */
    const struct rc_rule *resp_rules;
    size_t n_resp_rules;
    /* spec.limits: HTTP/1.1 request limits and slow-client defences. */
    struct {
        uint64_t max_request_body_bytes; /* 0 = unlimited (default) -> 413 */
        int header_timeout_s;            /* 1-600, default 10: head deadline -> 408 */
        uint32_t min_body_rate;          /* bytes/s over 5 s windows, default 256; 0 = off */
    } limits;
    /* spec.accessLog: one JSON line per request (proxy/alog.c). */
    struct {
        bool enabled;     /* default false */
        const char *path; /* "-" (stdout, the default) or an absolute file path; arena */
        double sample2xx; /* 0-1, default 1: share of 1xx-3xx lines kept */
    } access_log;
    /* spec.requestId: X-Request-Id (proxy/reqid.c). */
    struct {
        bool enabled;      /* default true: generate one when the request has none */
        bool trust_client; /* default false: a client's value is replaced */
        bool echo;         /* default false: send it back in the response */
    } request_id;
};

/* The whole desired configuration. Arrays are sorted by meta.name. */
struct rc_model {
    struct rc_arena *arena;
    int refs; /* atomic; use rc_model_ref/unref */
    struct rc_instance *instances;
    size_t n_instances;
    /* One pointer per certificate, sorted by name. Unlike the other kinds'
     * structs, a certificate's struct is not in this model's arena: a built
     * one lives in its load's data arena with its strings, and a later
     * model whose certificate is unchanged shares that very struct (it
     * holds the arena anyway, for the strings) instead of copying 400
     * bytes of it; 10,000 unchanged certificates cost a change 80 KB of
     * pointers, not 4 MiB of copies. Immutable once the load returns. */
    const struct rc_certificate **certificates;
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
    /* The folder of the load (-m), as a real path: file paths under it are shown
     * relative to it (rc_export), so that the same repository checked out
     * elsewhere plans "No changes". NULL for a model not loaded from one. */
    const char *root;
};

#endif
