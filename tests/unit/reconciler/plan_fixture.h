/* A hand-built model shared by the export, diff and plan tests: what the
 * loader would produce for a small edge configuration. All storage lives in
 * struct fixture, so a test can change a field and export again. */
#ifndef ALBD_TESTS_PLAN_FIXTURE_H
#define ALBD_TESTS_PLAN_FIXTURE_H

#include <string.h>

#include <jansson.h>
#include <stdlib.h>

#include "reconciler/model-t.h"

/* Recognisable secret material: no output may ever contain any of it. */
#define FX_KEY_BODY "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwSECRETKEYBYTESxyzzy"
#define FX_KEY_PEM "-----BEGIN PRIVATE KEY-----\n" FX_KEY_BODY "\n-----END PRIVATE KEY-----\n"
#define FX_CERT_BODY "MIIBszCCAVmgAwIBAgIUCERTBODYCERTBODYabc"
#define FX_CERT_PEM "-----BEGIN CERTIFICATE-----\n" FX_CERT_BODY "\n-----END CERTIFICATE-----\n"

struct fixture {
    struct rc_model model;
    struct rc_instance instances[1];
    const char *addresses[2];
    struct rc_certificate certs[3];
    const struct rc_certificate *cert_ptrs[3]; /* the model's array (model-t.h) */
    const char *dns_example[2];
    const char *dns_api[1];
    struct rc_tls_policy policies[2];
    const char *modern_ciphers[3];
    const char *system_ciphers[2];
    struct rc_server_group groups[2];
    struct rc_server web_servers[2];
    struct rc_server api_servers[1];
    struct rc_listener listeners[2];
    struct rc_label https_labels[1];
    const struct rc_certificate *ext_certs[1];
    const struct rc_certificate *ca_certs[1];
};

static inline void fx_meta(struct rc_meta *m, const char *kind, const char *name)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->name = name;
}

static inline void fx_group(struct rc_server_group *g, const char *name, struct rc_server *servers,
                            size_t n)
{
    fx_meta(&g->meta, "ServerGroup", name);
    g->protocol = RC_GROUP_HTTP;
    g->scheduler = RC_SCHED_WRR;
    g->servers = servers;
    g->n_servers = n;
    g->upstream_keepalive = true;
    g->fail_open = true;
    g->health_check = (struct rc_health_check){.enabled = true,
                                               .protocol = 0,
                                               .method = "HEAD",
                                               .path = "/",
                                               .host = NULL,
                                               .port = 0,
                                               .codes = (1u << 2) | (1u << 3),
                                               .interval_s = 2,
                                               .timeout_s = 5,
                                               .healthy_threshold = 3,
                                               .unhealthy_threshold = 3};
}

/* Fills fx with: Instance edge; Certificates api-example-com (Server,
 * files), corp-ca (CA, inline), example-com (Server, files, with key);
 * TLSPolicy modern (custom) + tls_cipher_policy_1_2 (system); ServerGroups
 * api, web; Listeners web-http (HTTP 80) and web-https (HTTPS 443). */
static inline void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    struct rc_model *m = &fx->model;
    m->refs = 1;
    strcpy(m->digest, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");

    struct rc_instance *in = &fx->instances[0];
    fx_meta(&in->meta, "Instance", "edge");
    in->id = NULL; /* defaults to the name */
    in->edition = RC_EDITION_STANDARD;
    fx->addresses[0] = "0.0.0.0";
    fx->addresses[1] = "::";
    in->addresses = fx->addresses;
    in->n_addresses = 2;
    m->instances = fx->instances;
    m->n_instances = 1;

    struct rc_certificate *api = &fx->certs[0], *ca = &fx->certs[1], *ex = &fx->certs[2];
    fx_meta(&api->meta, "Certificate", "api-example-com");
    api->type = RC_CERT_SERVER;
    api->source = RC_CERT_SOURCE_FILES;
    api->cert_path = "/etc/albd/certs/api.pem";
    api->key_path = "/etc/albd/certs/api.key";
    api->cert_pem = FX_CERT_PEM;
    api->cert_pem_len = strlen(FX_CERT_PEM);
    api->key_pem = FX_KEY_PEM;
    api->key_pem_len = strlen(FX_KEY_PEM);
    api->subject = "CN=api.example.com";
    api->issuer = "CN=Test CA";
    fx->dns_api[0] = "api.example.com";
    api->dns_names = fx->dns_api;
    api->n_dns_names = 1;
    api->not_before = 1735689600; /* 2025-01-01T00:00:00Z */
    api->not_after = 1767225600;  /* 2026-01-01T00:00:00Z */
    memset(api->fingerprint_sha256, 'a', 64);
    api->key_type = RC_KEY_EC;
    api->key_bits = 256;

    fx_meta(&ca->meta, "Certificate", "corp-ca");
    ca->type = RC_CERT_CA;
    ca->source = RC_CERT_SOURCE_INLINE;
    ca->cert_pem = FX_CERT_PEM;
    ca->cert_pem_len = strlen(FX_CERT_PEM);
    ca->subject = "CN=Corp CA,O=Corp";
    ca->issuer = "CN=Corp CA,O=Corp";
    ca->not_before = 1735689600;
    ca->not_after = 2051222400; /* 2035-01-01T00:00:00Z */
    memset(ca->fingerprint_sha256, 'c', 64);
    ca->key_type = RC_KEY_RSA;
    ca->key_bits = 4096;
    ca->is_ca = true;

    fx_meta(&ex->meta, "Certificate", "example-com");
    ex->type = RC_CERT_SERVER;
    ex->source = RC_CERT_SOURCE_FILES;
    ex->cert_path = "/etc/albd/certs/example.pem";
    ex->key_path = "/etc/albd/certs/example.key";
    ex->cert_pem = FX_CERT_PEM;
    ex->cert_pem_len = strlen(FX_CERT_PEM);
    ex->key_pem = FX_KEY_PEM;
    ex->key_pem_len = strlen(FX_KEY_PEM);
    ex->subject = "CN=example.com";
    ex->issuer = "CN=Test CA";
    fx->dns_example[0] = "example.com";
    fx->dns_example[1] = "www.example.com";
    ex->dns_names = fx->dns_example;
    ex->n_dns_names = 2;
    ex->not_before = 1735689600;
    ex->not_after = 1767225600;
    memset(ex->fingerprint_sha256, 'e', 64);
    ex->key_type = RC_KEY_RSA;
    ex->key_bits = 2048;
    for (size_t i = 0; i < 3; i++)
        fx->cert_ptrs[i] = &fx->certs[i];
    m->certificates = fx->cert_ptrs;
    m->n_certificates = 3;

    struct rc_tls_policy *modern = &fx->policies[0], *sys = &fx->policies[1];
    fx_meta(&modern->meta, "TLSPolicy", "modern");
    modern->versions = RC_TLS_1_2 | RC_TLS_1_3;
    fx->modern_ciphers[0] = "ECDHE-ECDSA-AES128-GCM-SHA256";
    fx->modern_ciphers[1] = "ECDHE-RSA-AES128-GCM-SHA256";
    fx->modern_ciphers[2] = "TLS_AES_128_GCM_SHA256";
    modern->ciphers = fx->modern_ciphers;
    modern->n_ciphers = 3;
    modern->cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    modern->ciphersuites = "TLS_AES_128_GCM_SHA256";
    fx_meta(&sys->meta, "TLSPolicy", "tls_cipher_policy_1_2");
    sys->system = true;
    sys->versions = RC_TLS_1_0 | RC_TLS_1_1 | RC_TLS_1_2;
    fx->system_ciphers[0] = "AES128-SHA";
    fx->system_ciphers[1] = "AES256-SHA";
    sys->ciphers = fx->system_ciphers;
    sys->n_ciphers = 2;
    m->policies = fx->policies;
    m->n_policies = 2;

    fx->api_servers[0] = (struct rc_server){.address = "10.0.1.1", .port = 9000, .weight = 100};
    fx->web_servers[0] = (struct rc_server){.address = "10.0.0.1", .port = 8080, .weight = 100};
    fx->web_servers[1] = (struct rc_server){.address = "10.0.0.2", .port = 8080, .weight = 50};
    fx_group(&fx->groups[0], "api", fx->api_servers, 1);
    fx_group(&fx->groups[1], "web", fx->web_servers, 2);
    m->groups = fx->groups;
    m->n_groups = 2;

    struct rc_listener *http = &fx->listeners[0], *https = &fx->listeners[1];
    fx_meta(&http->meta, "Listener", "web-http");
    http->instance = in;
    http->protocol = RC_LISTENER_HTTP;
    http->port = 80;
    http->idle_timeout_s = 15;
    http->request_timeout_s = 60;
    http->gzip = http->brotli = true;
    http->xff_mode = RC_XFF_APPEND;
    http->default_group = &fx->groups[1];

    fx_meta(&https->meta, "Listener", "web-https");
    fx->https_labels[0] = (struct rc_label){"team", "web"};
    https->meta.labels = fx->https_labels;
    https->meta.n_labels = 1;
    https->instance = in;
    https->protocol = RC_LISTENER_HTTPS;
    https->port = 443;
    https->http2 = true;
    https->idle_timeout_s = 15;
    https->request_timeout_s = 60;
    https->gzip = https->brotli = true;
    https->xff_mode = RC_XFF_APPEND;
    https->headers.proto = true;
    https->tls.certificate = ex;
    fx->ext_certs[0] = api;
    https->tls.extension_certificates = fx->ext_certs;
    https->tls.n_extension_certificates = 1;
    https->tls.policy = sys;
    fx->ca_certs[0] = ca;
    https->tls.mutual.ca_certificates = fx->ca_certs;
    https->tls.mutual.n_ca_certificates = 1;
    https->client_cert_headers.subject_dn = "X-Forwarded-Clientcert-subjectdn";
    https->default_group = &fx->groups[1];
    m->listeners = fx->listeners;
    m->n_listeners = 2;
}

/* Makes jansson's allocations fail after a budget, to walk every
 * out-of-memory path: fx_oom_arm(n) lets n allocations through, then every
 * further one fails until fx_oom_disarm(). */
static long fx_oom_budget = -1;

static inline void *fx_oom_malloc(size_t size)
{
    if (fx_oom_budget == 0)
        return NULL;
    if (fx_oom_budget > 0)
        fx_oom_budget--;
    return malloc(size);
}

static inline void fx_oom_free(void *p)
{
    free(p);
}

static inline void fx_oom_arm(long n)
{
    fx_oom_budget = n;
    json_set_alloc_funcs(fx_oom_malloc, fx_oom_free);
}

static inline void fx_oom_disarm(void)
{
    fx_oom_budget = -1;
}

#endif
