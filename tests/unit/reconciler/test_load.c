/* Valid manifests: values and defaults land in the model; the examples load;
 * the Kubernetes ConfigMap layout loads each file once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/err.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char tmpdir[256];

static void write_file(const char *dir, const char *name, const char *text)
{
    tf_put(dir, name, text);
}

static void unlink_in(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static int setup(void **state)
{
    return tf_mkdtemp(tmpdir, sizeof(tmpdir), "load");
}

static int teardown(void **state)
{
    return tf_rm_rf(tmpdir);
}

static struct rc_model *load_ok(const char *dir, time_t now, struct rc_errs *errs)
{
    struct rc_model *m = NULL;
    rc_errs_init(errs);
    int rc = rc_load_dir(dir, now, &m, errs);
    if (rc != 0)
        rc_errs_print(errs, stderr);
    assert_int_equal(rc, 0);
    assert_non_null(m);
    return m;
}

static const char full_yaml[] =
    "apiVersion: albd/v1\n"
    "kind: Instance\n"
    "metadata: {name: edge, labels: {zone: b, team: web}}\n"
    "spec: {edition: WAF, addresses: [\"127.0.0.1\", \"::1\"]}\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: Certificate\n"
    "metadata: {name: server}\n"
    "spec:\n"
    "  source:\n"
    "    files: {certificate: certs/s.pem, privateKey: certs/s.key}\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: Certificate\n"
    "metadata: {name: corp-ca}\n"
    "spec: {type: CA, source: {files: {certificate: certs/ca.pem}}}\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: TLSPolicy\n"
    "metadata: {name: modern}\n"
    "spec:\n"
    "  tlsVersions: [TLSv1.2, TLSv1.3]\n"
    "  ciphers: [ECDHE-RSA-AES128-GCM-SHA256, TLS_AES_128_GCM_SHA256, AES128-SHA]\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: ServerGroup\n"
    "metadata: {name: web}\n"
    "spec:\n"
    "  servers:\n"
    "    - {address: 10.0.0.1, port: 80}\n"
    "    - {address: \"::1\", port: 8080, weight: 0}\n"
    "  healthCheck: {path: /health, codes: [http_2xx], intervalSeconds: 10, httpVersion: HTTP1.0}\n"
    "  whenAllUnhealthy: Reject\n"
    "  upstreamKeepalive: false\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: Listener\n"
    "metadata: {name: web-https}\n"
    "spec:\n"
    "  instance: edge\n"
    "  protocol: HTTPS\n"
    "  port: 443\n"
    "  http2: false\n"
    "  idleTimeoutSeconds: 30\n"
    "  limits: {maxRequestBodyBytes: 8589934592, headerTimeoutSeconds: 3,"
    " minBodyRateBytesPerSecond: 0}\n"
    "  compression: {gzip: false}\n"
    "  xForwardedFor: {mode: Remove}\n"
    "  headers:\n"
    "    slbId: true\n"
    "    clientCert:\n"
    "      subjectDN: {enabled: true, name: x-client-dn}\n"
    "      clientVerify: {enabled: true}\n"
    "      issuerDN: {enabled: false}\n"
    "  tls:\n"
    "    certificate: server\n"
    "    policy: modern\n"
    "    strictSni: true\n"
    "    mutualAuthentication: {enabled: true, caCertificates: [corp-ca]}\n"
    "  defaultAction: {forward: {serverGroup: web}}\n"
    "---\n"
    "apiVersion: albd/v1\n"
    "kind: Listener\n"
    "metadata: {name: web-http}\n"
    "spec:\n"
    "  instance: edge\n"
    "  protocol: HTTP\n"
    "  port: 80\n"
    "  defaultAction: {forward: {serverGroup: web}}\n";

static void put_certs(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/certs", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/certs/s.pem", dir);
    copy_file(ALBD_TEST_DATA "/certs/test-only-server.pem", path);
    snprintf(path, sizeof(path), "%s/certs/s.key", dir);
    copy_file(ALBD_TEST_DATA "/certs/test-only-server.key", path);
    snprintf(path, sizeof(path), "%s/certs/ca.pem", dir);
    copy_file(ALBD_TEST_DATA "/certs/test-only-ca.pem", path);
}

/* References among many resources of a kind (rc_kind_find's hash index,
 * from 64 documents on) find the named one, whatever the order written,
 * and still report a name that is not there. */
static void test_references_among_many(void **state)
{
    (void)state;
    size_t cap = 100 * 96 + 512, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 99; i >= 0; i--)
        len += (size_t)snprintf(text + len, cap - len,
                                "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g%d}\n"
                                "spec: {}\n---\n",
                                i);
    snprintf(text + len, cap - len,
             "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: l}\n"
             "spec: {protocol: HTTP, port: 80, defaultAction: {forward: {serverGroup: g77}}}\n");
    write_file(tmpdir, "many.yaml", text);
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_groups, 100);
    assert_int_equal(m->n_listeners, 1);
    assert_non_null(m->listeners[0].default_group);
    assert_string_equal(m->listeners[0].default_group->meta.name, "g77");
    assert_ptr_equal(m->listeners[0].default_group, rc_model_group(m, "g77"));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);

    write_file(tmpdir, "more.yaml",
               "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: l2}\n"
               "spec: {protocol: HTTP, port: 81, defaultAction: {forward: {serverGroup: g100}}}\n");
    m = NULL;
    rc_errs_init(&errs);
    assert_int_not_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), 0);
    bool named = false;
    for (size_t i = 0; i < errs.n; i++)
        named = named || strstr(errs.v[i].msg, "no ServerGroup named \"g100\"") != NULL;
    assert_true(named);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    free(text);
}

static void test_full_model(void **state)
{
    write_file(tmpdir, "all.yaml", full_yaml);
    put_certs(tmpdir);
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(errs.n, 0);

    assert_int_equal(m->n_instances, 1);
    const struct rc_instance *in = &m->instances[0];
    assert_string_equal(in->meta.name, "edge");
    assert_string_equal(in->id, "edge"); /* default: metadata.name */
    assert_int_equal(in->edition, RC_EDITION_WAF);
    assert_int_equal(in->n_addresses, 2);
    assert_string_equal(in->addresses[1], "::1");
    assert_int_equal(in->meta.n_labels, 2);
    assert_string_equal(in->meta.labels[0].key, "team"); /* sorted */
    assert_int_equal(in->meta.loc.line, 1);

    assert_int_equal(m->n_certificates, 2);
    assert_string_equal(m->certificates[0]->meta.name, "corp-ca"); /* sorted by name */
    const struct rc_certificate *c = rc_model_certificate(m, "server");
    assert_non_null(c);
    assert_int_equal(c->type, RC_CERT_SERVER);
    assert_int_equal(c->source, RC_CERT_SOURCE_FILES);
    assert_true(c->cert_path[0] == '/');
    assert_non_null(c->key_pem);
    assert_non_null(strstr(c->key_pem, "PRIVATE KEY"));
    assert_string_equal(c->subject, "CN=server.test");
    assert_int_equal(c->n_dns_names, 2);
    assert_string_equal(c->dns_names[1], "*.server.test"); /* lowercased */
    assert_int_equal(c->key_type, RC_KEY_RSA);
    assert_int_equal(c->key_bits, 2048);
    assert_false(c->is_ca);
    assert_int_equal(strlen(c->fingerprint_sha256), 64);
    assert_true(c->not_after > time(NULL));
    const struct rc_certificate *ca = rc_model_certificate(m, "corp-ca");
    assert_true(ca->is_ca);
    assert_null(ca->key_pem);
    assert_int_equal(ca->key_type, RC_KEY_EC);
    assert_string_equal(ca->dns_names[0], "test only ca"); /* CN when no SAN */

    const struct rc_tls_policy *p = rc_model_policy(m, "modern");
    assert_non_null(p);
    assert_false(p->system);
    assert_int_equal(p->versions, RC_TLS_1_2 | RC_TLS_1_3);
    assert_string_equal(p->cipher_list, "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA");
    assert_string_equal(p->ciphersuites, "TLS_AES_128_GCM_SHA256");
    assert_string_equal(m->policies[0].meta.name, "modern"); /* custom first, then system */
    assert_int_equal(m->n_policies, 7);
    const struct rc_tls_policy *p10 = rc_model_policy(m, "tls_cipher_policy_1_0");
    assert_true(p10->system);
    assert_non_null(strstr(p10->cipher_list, "DES-CBC3-SHA"));
    assert_non_null(strstr(p10->cipher_list, "@SECLEVEL=0"));
    const struct rc_tls_policy *p13 = rc_model_policy(m, "tls_cipher_policy_1_2_strict_with_1_3");
    assert_int_equal(p13->versions, RC_TLS_1_2 | RC_TLS_1_3);
    assert_null(strstr(p13->cipher_list, "AES128-GCM-SHA256:AES256"));
    assert_non_null(strstr(p13->ciphersuites, "TLS_AES_128_CCM_8_SHA256"));

    const struct rc_server_group *g = rc_model_group(m, "web");
    assert_non_null(g);
    assert_int_equal(g->n_servers, 2);
    assert_int_equal(g->servers[0].weight, 100); /* default */
    assert_int_equal(g->servers[1].weight, 0);
    assert_int_equal(g->servers[1].loc.line, 31);
    assert_false(g->fail_open);
    assert_false(g->upstream_keepalive);
    assert_true(g->health_check.enabled);
    assert_string_equal(g->health_check.path, "/health");
    assert_string_equal(g->health_check.method, "HEAD");
    assert_int_equal(g->health_check.codes, 1u << 2);
    assert_int_equal(g->health_check.interval_s, 10);
    assert_int_equal(g->health_check.timeout_s, 5);
    assert_int_equal(g->health_check.http_version, 10);

    assert_int_equal(m->n_listeners, 2);
    const struct rc_listener *h = &m->listeners[0], *s = &m->listeners[1];
    assert_string_equal(h->meta.name, "web-http");
    assert_int_equal(h->protocol, RC_LISTENER_HTTP);
    assert_false(h->http2);
    assert_int_equal(h->idle_timeout_s, 15);
    assert_int_equal(h->request_timeout_s, 60);
    assert_int_equal(h->limits.max_request_body_bytes, 0); /* unlimited */
    assert_int_equal(h->limits.header_timeout_s, 10);
    assert_int_equal(h->limits.min_body_rate, 256);
    assert_true(h->gzip && h->brotli);
    assert_int_equal(h->xff_mode, RC_XFF_APPEND);
    assert_null(h->tls.certificate);
    assert_ptr_equal(h->instance, in);
    assert_ptr_equal(h->default_group, g);

    assert_int_equal(s->protocol, RC_LISTENER_HTTPS);
    assert_int_equal(s->port, 443);
    assert_false(s->http2);
    assert_int_equal(s->idle_timeout_s, 30);
    assert_int_equal(s->limits.max_request_body_bytes, 8589934592ull); /* beyond int */
    assert_int_equal(s->limits.header_timeout_s, 3);
    assert_int_equal(s->limits.min_body_rate, 0);
    assert_false(s->gzip);
    assert_true(s->brotli);
    assert_int_equal(s->xff_mode, RC_XFF_REMOVE);
    assert_true(s->headers.slb_id);
    assert_false(s->headers.proto);
    assert_ptr_equal(s->tls.certificate, c);
    assert_ptr_equal(s->tls.policy, p);
    assert_true(s->tls.strict_sni);
    assert_true(s->tls.mutual.enabled);
    assert_int_equal(s->tls.mutual.n_ca_certificates, 1);
    assert_ptr_equal(s->tls.mutual.ca_certificates[0], ca);
    assert_string_equal(s->client_cert_headers.subject_dn, "x-client-dn");
    assert_string_equal(s->client_cert_headers.client_verify,
                        "X-Forwarded-Clientcert-clientverify");
    assert_null(s->client_cert_headers.issuer_dn);
    assert_null(s->client_cert_headers.fingerprint);

    assert_int_equal(strlen(m->digest), 64);
    char digest[65], ldigest[65];
    memcpy(digest, m->digest, 65);
    memcpy(ldigest, s->meta.digest, 65);
    rc_model_unref(rc_model_ref(m)); /* ref + unref keeps it alive */
    rc_model_unref(m);
    rc_errs_cleanup(&errs);

    /* Same files: same digests. A reformatted manifest: same resource digest. */
    m = load_ok(tmpdir, time(NULL), &errs);
    assert_string_equal(m->digest, digest);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

static void test_defaults_and_implicit_instance(void **state)
{
    write_file(tmpdir, "l.yml",
               "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g}\nspec: {}\n---\n"
               "---\n# empty documents are skipped\n---\n"
               "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: l}\n"
               "spec: {protocol: HTTP, port: 0x50, defaultAction: {forward: {serverGroup: g}}}\n");
    write_file(tmpdir, "notes.txt", "not a manifest: ignored\n");
    write_file(tmpdir, ".hidden.yaml", "this: [is not read\n");
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_instances, 1);
    assert_string_equal(m->instances[0].meta.name, "default");
    assert_int_equal(m->instances[0].n_addresses, 2);
    assert_string_equal(m->instances[0].addresses[0], "0.0.0.0");
    assert_string_equal(m->instances[0].addresses[1], "::");
    assert_int_equal(m->n_listeners, 1);
    assert_int_equal(m->listeners[0].port, 80); /* YAML 1.2 hex integer */
    assert_ptr_equal(m->listeners[0].instance, &m->instances[0]);
    assert_int_equal(m->n_groups, 1);
    assert_int_equal(m->groups[0].n_servers, 0);
    assert_true(m->groups[0].health_check.enabled);
    assert_int_equal(m->groups[0].health_check.codes, (1u << 2) | (1u << 3));
    assert_int_equal(m->groups[0].health_check.http_version, 11); /* the default */
    assert_true(m->groups[0].fail_open);
    assert_true(m->groups[0].upstream_keepalive);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

static void test_configmap_layout(void **state)
{
    char path[512], data[512];
    snprintf(data, sizeof(data), "%s/..2026_01_01_00_00_00.123", tmpdir);
    assert_int_equal(mkdir(data, 0700), 0);
    write_file(data, "group.yaml",
               "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 81}]}\n");
    snprintf(path, sizeof(path), "%s/..data", tmpdir);
    assert_int_equal(symlink("..2026_01_01_00_00_00.123", path), 0);
    snprintf(path, sizeof(path), "%s/group.yaml", tmpdir);
    assert_int_equal(symlink("..data/group.yaml", path), 0);
    /* a directory symlink loop must not hang or duplicate */
    snprintf(path, sizeof(path), "%s/loop", tmpdir);
    assert_int_equal(symlink(".", path), 0);
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_groups, 1); /* once, not twice (no duplicate-name error either) */
    assert_int_equal(m->groups[0].servers[0].port, 81);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

static void test_examples(void **state)
{
    const char *ex = ALBD_TEST_DATA "/../../manifests/examples";
    const char *files[] = {"instance.yaml", "tls.yaml", "backends.yaml", "listeners.yaml"};
    char from[512], to[512];
    for (size_t i = 0; i < 4; i++) {
        snprintf(from, sizeof(from), "%s/%s", ex, files[i]);
        snprintf(to, sizeof(to), "%s/%s", tmpdir, files[i]);
        copy_file(from, to);
    }
    snprintf(to, sizeof(to), "%s/certs", tmpdir);
    mkdir(to, 0700);
    snprintf(to, sizeof(to), "%s/certs/demo.pem", tmpdir);
    copy_file(ALBD_TEST_DATA "/certs/test-only-server.pem", to);
    snprintf(to, sizeof(to), "%s/certs/demo.key", tmpdir);
    copy_file(ALBD_TEST_DATA "/certs/test-only-server.key", to);
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_listeners, 2);
    const struct rc_listener *https = &m->listeners[1];
    assert_string_equal(https->meta.name, "demo-https");
    assert_int_equal(https->port, 8443);
    assert_true(https->headers.proto);
    assert_string_equal(https->tls.policy->meta.name, "tls_cipher_policy_1_2");
    assert_string_equal(https->default_group->meta.name, "demo-backends");
    assert_int_equal(https->default_group->servers[1].weight, 50);
    assert_string_equal(m->instances[0].addresses[0], "0.0.0.0");
    assert_non_null(rc_model_policy(m, "modern"));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

static void test_expiring_soon_is_a_warning(void **state)
{
    write_file(tmpdir, "c.yaml",
               "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: s}\n"
               "spec: {source: {files: {certificate: certs/s.pem, privateKey: certs/s.key}}}\n");
    put_certs(tmpdir);
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    time_t not_after = m->certificates[0]->not_after;
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    m = load_ok(tmpdir, not_after - 10 * 86400, &errs);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].severity, RC_WARNING);
    assert_non_null(strstr(errs.v[0].msg, "(in 10 days)"));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

/* A *.yaml link, or a linked folder, pointing outside the manifest folder
 * is not read: a located error that names the link, never what the target
 * holds; the ConfigMap layout (links inside the folder) still loads. */
static void test_links_out_of_the_folder_are_not_read(void **state)
{
    char outside[256], path[512], target[512];
    assert_int_equal(tf_mkdtemp(outside, sizeof(outside), "outside"), 0);
    /* A secret that happens to parse as YAML (a string), and a folder of
     * manifests elsewhere. */
    write_file(outside, "secret.txt", "hunter2-very-secret-password-line\n");
    snprintf(path, sizeof(path), "%s/elsewhere", outside);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(path, "g.yaml",
               "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: far}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 82}]}\n");
    snprintf(target, sizeof(target), "%s/secret.txt", outside);
    snprintf(path, sizeof(path), "%s/leak.yaml", tmpdir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(target, sizeof(target), "%s/elsewhere", outside);
    snprintf(path, sizeof(path), "%s/far", tmpdir);
    assert_int_equal(symlink(target, path), 0);
    /* Inside: the ConfigMap layout. */
    snprintf(path, sizeof(path), "%s/..2026_01_01", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(path, "group.yaml",
               "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 81}]}\n");
    snprintf(path, sizeof(path), "%s/..data", tmpdir);
    assert_int_equal(symlink("..2026_01_01", path), 0);
    snprintf(path, sizeof(path), "%s/group.yaml", tmpdir);
    assert_int_equal(symlink("..data/group.yaml", path), 0);

    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    assert_int_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), -1);
    rc_errs_print(&errs, stderr);
    assert_int_equal(rc_errs_count_errors(&errs), 2);
    bool saw_file = false, saw_dir = false;
    for (size_t i = 0; i < errs.n; i++) {
        char line[1024];
        rc_err_format(&errs.v[i], line, sizeof(line));
        assert_null(strstr(line, "hunter2"));
        assert_null(strstr(line, outside)); /* the target is not named either */
        if (strstr(line, "/leak.yaml: error: a link to a file outside the manifest folder"))
            saw_file = true;
        if (strstr(line, "/far: error: a link to a folder outside the manifest folder"))
            saw_dir = true;
    }
    assert_true(saw_file);
    assert_true(saw_dir);
    rc_errs_cleanup(&errs);

    /* Without them, the ConfigMap file loads. */
    snprintf(path, sizeof(path), "%s/leak.yaml", tmpdir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/far", tmpdir);
    assert_int_equal(unlink(path), 0);
    m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_groups, 1);
    assert_int_equal(m->groups[0].servers[0].port, 81);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    assert_int_equal(tf_rm_rf(outside), 0);
}

/* A file inside the folder that only looks like YAML (a text file) is not
 * quoted in the error. */
static void test_a_text_file_is_not_quoted(void **state)
{
    write_file(tmpdir, "notes.yaml", "root:x:0:0:root:/root:/bin/bash\nsecret stuff here\n");
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    assert_int_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), -1);
    assert_int_equal(errs.n, 1);
    char line[1024];
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_null(strstr(line, "root:x"));
    assert_null(strstr(line, "secret"));
    assert_non_null(strstr(line, "notes.yaml:1:1: error: not a manifest: the document is a single "
                                 "value"));
    rc_errs_cleanup(&errs);
}

/* Documents of other APIs sharing the folder (a Kubernetes object, a
 * kustomization.yaml with or without apiVersion) are skipped with a
 * located note; --refuse-foreign (refuse_foreign) makes each an error. A
 * document with a kind (albd's or not) but without apiVersion, and one of
 * "albd/v2", stay albd's: errors. */
static const char group_doc[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web}\n"
                                "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n";

static void test_foreign_documents_are_skipped_with_a_note(void **state)
{
    char app[512];
    snprintf(app, sizeof(app),
             "%s---\napiVersion: apps/v1\nkind: Deployment\n"
             "metadata: {name: web}\nspec: {replicas: 2}\n",
             group_doc);
    write_file(tmpdir, "app.yaml", app);
    write_file(tmpdir, "kustomization.yaml", "resources: [app.yaml]\ncommonAnnotations: {a: b}\n");
    write_file(tmpdir, "k2.yaml",
               "apiVersion: kustomize.config.k8s.io/v1beta1\n"
               "kind: Kustomization\nresources: [app.yaml]\n");
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_groups, 1);
    rc_model_unref(m);
    assert_int_equal(errs.n, 3);
    assert_int_equal(rc_errs_count_errors(&errs), 0);
    char line[1024];
    const char *want[] = {
        "app.yaml:6:13: note: not an albd document (apiVersion \"apps/v1\", kind \"Deployment\"): "
        "skipped",
        "k2.yaml:1:13: note: not an albd document (apiVersion "
        "\"kustomize.config.k8s.io/v1beta1\", kind \"Kustomization\"): skipped",
        "kustomization.yaml:1:1: note: not an albd document (no apiVersion, no kind): skipped",
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(errs.v[i].severity, RC_NOTE);
        rc_err_format(&errs.v[i], line, sizeof(line));
        if (strstr(line, want[i]) == NULL || strncmp(line, tmpdir, strlen(tmpdir)) != 0)
            fail_msg("note %zu: want \"%s\", got \"%s\"", i, want[i], line);
    }
    rc_errs_cleanup(&errs);

    /* Refused: an error each, nothing loaded. */
    rc_errs_init(&errs);
    struct rc_load_opts o = {.now = time(NULL), .strict = true, .refuse_foreign = true};
    assert_int_equal(rc_load_dir_ex(tmpdir, &o, &m, &errs, NULL), -1);
    assert_null(m);
    assert_int_equal(rc_errs_count_errors(&errs), 3);
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_non_null(strstr(line, "app.yaml:6:13: error: not an albd document (apiVersion "
                                 "\"apps/v1\", kind \"Deployment\"): refused (--refuse-foreign)"));
    rc_errs_cleanup(&errs);

    /* As `albd run` loads (containment, the running model as prev): the
     * note comes back on every reload, also when no file changed. */
    struct tf_result r1 = tf_load(tmpdir, NULL, NULL, NULL);
    assert_int_equal(r1.rc, 0);
    rc_errs_init(&errs);
    struct tf_result r2 = tf_load(tmpdir, r1.m, NULL, &errs);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r2.m->n_groups, 1);
    assert_int_equal(errs.n, 3);
    assert_int_equal(errs.v[0].severity, RC_NOTE);
    rc_errs_cleanup(&errs);
    tf_done(&r2);
    tf_done(&r1);

    /* Still albd's: an albd kind without apiVersion, and albd/v2. */
    unlink_in(tmpdir, "app.yaml");
    unlink_in(tmpdir, "kustomization.yaml");
    unlink_in(tmpdir, "k2.yaml");
    write_file(tmpdir, "a.yaml",
               "kind: ServerGroup\nmetadata: {name: a}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n---\n"
               "apiVersion: albd/v2\nkind: ServerGroup\nmetadata: {name: b}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n---\n"
               "kind: Bogus\n");
    rc_errs_init(&errs);
    assert_int_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), -1);
    assert_int_equal(rc_errs_count_errors(&errs), 5);
    assert_int_equal(errs.n, 5); /* no note: none of them is skipped */
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_non_null(strstr(line, "a.yaml:1:1: error: missing required field \"apiVersion\""));
    rc_err_format(&errs.v[1], line, sizeof(line));
    assert_non_null(strstr(line, "a.yaml:5:13: error: apiVersion:"));
    rc_err_format(&errs.v[4], line, sizeof(line));
    assert_non_null(strstr(line, "a.yaml:10:7: error: kind: \"Bogus\" is not one of"));
    rc_errs_cleanup(&errs);
}

/* .albdignore: ignored files and folders are not read at all (a syntax
 * error in them is no error), negation re-includes a file, and a change
 * of the ignore file alone makes the next load walk the folder again. */
static void test_albdignore(void **state)
{
    char path[512];
    write_file(tmpdir, "a.yaml", group_doc);
    snprintf(path, sizeof(path), "%s/drafts", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file(tmpdir, "drafts/bad.yaml", "bad: [\n");
    write_file(tmpdir, "sub/x.yaml", "bad: [\n");
    write_file(tmpdir, "sub/keep.yaml",
               "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: keep}\n"
               "spec: {servers: [{address: 127.0.0.1, port: 8082}]}\n");
    write_file(tmpdir, "x.bak.yaml", "bad: [\n");

    /* Without an ignore file, the broken files are errors. */
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    assert_int_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), -1);
    assert_int_equal(rc_errs_count_errors(&errs), 3);
    rc_errs_cleanup(&errs);

    write_file(tmpdir, ".albdignore",
               "# drafts and backups\ndrafts/\n*.bak.yaml\n/sub/*.yaml\n!/sub/keep.yaml\n");
    m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(errs.n, 0);
    assert_int_equal(m->n_groups, 2);
    assert_non_null(rc_model_group(m, "keep"));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);

    /* The running model, then the ignore file changes and nothing else:
     * with the watcher's list of changes naming only .albdignore (not a
     * tree change), the load still walks again. */
    tf_settle();
    struct tf_result r1 = tf_load(tmpdir, NULL, NULL, NULL);
    assert_int_equal(r1.rc, 0);
    assert_int_equal(r1.m->n_groups, 2);
    write_file(tmpdir, ".albdignore", "drafts/\n*.bak.yaml\n/sub/\n");
    const char *rel[] = {".albdignore"};
    struct rc_changes ch = {rel, 1, false, NULL, 0, false};
    struct tf_result r2 = tf_load(tmpdir, r1.m, &ch, NULL);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r2.m->n_groups, 1);
    assert_null(rc_model_group(r2.m, "keep"));
    tf_done(&r2);
    tf_done(&r1);

    /* An ignore file that cannot be read fails the load: reading every
     * file instead could apply what it keeps out. */
    unlink_in(tmpdir, ".albdignore");
    snprintf(path, sizeof(path), "%s/.albdignore", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    rc_errs_init(&errs);
    assert_int_equal(rc_load_dir(tmpdir, time(NULL), &m, &errs), -1);
    assert_int_equal(rc_errs_count_errors(&errs), 1);
    char line[1024];
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_non_null(strstr(line, "/.albdignore: error: cannot read the ignore file: "));
    rc_errs_cleanup(&errs);
    struct tf_result r3 = tf_load(tmpdir, NULL, NULL, NULL);
    assert_int_equal(r3.rc, -1);
    assert_null(r3.m);
    tf_done(&r3);
}

static void test_missing_dir(void **state)
{
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    assert_int_equal(rc_load_dir("/nonexistent/albd", time(NULL), &m, &errs), -1);
    assert_null(m);
    assert_int_equal(rc_errs_count_errors(&errs), 1);
    assert_non_null(strstr(errs.v[0].msg, "No such file"));
    rc_errs_cleanup(&errs);
}

/* Relative certificate paths resolve next to each manifest, folder by
 * folder, also when many manifests share a folder (load.c resolves each
 * folder once) and the next folder's name extends the last one's. */
static void test_relative_paths_per_folder(void **state)
{
    (void)state;
    static const char *const subs[] = {"a", "a/x", "ab", "b"};
    char d[512], path[600];
    for (size_t i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s/%s", tmpdir, subs[i]);
        assert_int_equal(mkdir(d, 0700), 0);
        snprintf(path, sizeof path, "%s/c%zu.pem", d, i);
        copy_file(ALBD_TEST_DATA "/certs/test-only-server.pem", path);
        snprintf(path, sizeof path, "%s/c%zu.key", d, i);
        copy_file(ALBD_TEST_DATA "/certs/test-only-server.key", path);
        for (int k = 0; k < 3; k++) {
            char name[32], text[512];
            snprintf(name, sizeof name, "m%d.yaml", k);
            snprintf(text, sizeof text,
                     "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: c%zu-%d}\n"
                     "spec:\n  source:\n    files: {certificate: c%zu.pem, privateKey: "
                     "c%zu.key}\n",
                     i, k, i, i);
            write_file(d, name, text);
        }
    }
    struct rc_errs errs;
    struct rc_model *m = load_ok(tmpdir, time(NULL), &errs);
    assert_int_equal(m->n_certificates, 12);
    for (size_t i = 0; i < m->n_certificates; i++)
        assert_int_equal(strlen(m->certificates[i]->fingerprint_sha256), 64);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_paths_per_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_and_implicit_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configmap_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_out_of_the_folder_are_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_text_file_is_not_quoted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiring_soon_is_a_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_documents_are_skipped_with_a_note, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_albdignore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_references_among_many, setup, teardown),
        cmocka_unit_test(test_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
