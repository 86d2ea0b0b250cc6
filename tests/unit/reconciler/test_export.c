/* rc_export_model: the canonical JSON that /config serves and plan reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "diff_count.h"
#include "plan_fixture.h"

/* resources.<kind>.<name>.spec, borrowed */
static json_t *spec_of(json_t *root, const char *kind, const char *name)
{
    json_t *r = json_object_get(json_object_get(json_object_get(root, "resources"), kind), name);
    assert_non_null(r);
    json_t *spec = json_object_get(r, "spec");
    assert_true(json_is_object(spec));
    return spec;
}

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

static void test_shape(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *root = rc_export_model(&fx.model);
    assert_non_null(root);
    assert_string_equal(str_at(root, "apiVersion"), "albd/v1");
    assert_true(json_is_integer(json_object_get(root, "generation")));
    assert_string_equal(str_at(root, "manifestDigest"), fx.model.digest);
    json_t *res = json_object_get(root, "resources");
    assert_int_equal(json_object_size(res), 6);
    assert_int_equal(json_object_size(json_object_get(res, "Instance")), 1);
    assert_non_null(json_object_get(res, "CertificateService"));
    assert_int_equal(json_object_size(json_object_get(res, "Certificate")), 3);
    assert_int_equal(json_object_size(json_object_get(res, "ServerGroup")), 2);
    assert_int_equal(json_object_size(json_object_get(res, "Listener")), 2);
    /* system policies are implied, custom ones are resources */
    json_t *pol = json_object_get(res, "TLSPolicy");
    assert_int_equal(json_object_size(pol), 1);
    assert_null(json_object_get(pol, "tls_cipher_policy_1_2"));
    json_t *modern = spec_of(root, "TLSPolicy", "modern");
    json_t *v = json_object_get(modern, "tlsVersions");
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "TLSv1.2");
    assert_string_equal(json_string_value(json_array_get(v, 1)), "TLSv1.3");
    assert_int_equal(json_array_size(json_object_get(modern, "ciphers")), 3);
    json_decref(root);
}

static void test_empty_model_has_every_kind(void **state)
{
    struct rc_model m;
    memset(&m, 0, sizeof m);
    json_t *root = rc_export_model(&m);
    assert_non_null(root);
    json_t *res = json_object_get(root, "resources");
    const char *kinds[] = {"Instance", "Certificate", "TLSPolicy", "ServerGroup", "Listener"};
    for (size_t i = 0; i < 5; i++)
        assert_true(json_is_object(json_object_get(res, kinds[i])));
    assert_null(json_object_get(root, "manifestDigest"));
    json_decref(root);
}

static void test_instance_defaults(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *root = rc_export_model(&fx.model);
    json_t *spec = spec_of(root, "Instance", "edge");
    assert_string_equal(str_at(spec, "id"), "edge");
    assert_string_equal(str_at(spec, "edition"), "Standard");
    assert_int_equal(json_array_size(json_object_get(spec, "addresses")), 2);
    json_decref(root);

    fx.instances[0].id = "alb-edge-01";
    fx.instances[0].edition = RC_EDITION_BASIC;
    root = rc_export_model(&fx.model);
    spec = spec_of(root, "Instance", "edge");
    assert_string_equal(str_at(spec, "id"), "alb-edge-01");
    assert_string_equal(str_at(spec, "edition"), "Basic");
    json_decref(root);
}

static void test_listener_fields(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *root = rc_export_model(&fx.model);
    json_t *r = json_object_get(json_object_get(json_object_get(root, "resources"), "Listener"),
                                "web-https");
    assert_string_equal(str_at(json_object_get(r, "labels"), "team"), "web");
    json_t *spec = spec_of(root, "Listener", "web-https");
    assert_string_equal(str_at(spec, "instance"), "edge");
    assert_string_equal(str_at(spec, "protocol"), "HTTPS");
    assert_int_equal(json_integer_value(json_object_get(spec, "port")), 443);
    assert_true(json_is_true(json_object_get(spec, "http2")));
    assert_int_equal(json_integer_value(json_object_get(spec, "idleTimeoutSeconds")), 15);
    assert_int_equal(json_integer_value(json_object_get(spec, "requestTimeoutSeconds")), 60);
    assert_true(json_is_true(json_object_get(json_object_get(spec, "compression"), "gzip")));
    assert_string_equal(str_at(json_object_get(spec, "xForwardedFor"), "mode"), "Append");
    json_t *h = json_object_get(spec, "headers");
    assert_true(json_is_true(json_object_get(h, "proto")));
    assert_true(json_is_false(json_object_get(h, "slbId")));
    json_t *cc = json_object_get(h, "clientCert");
    assert_true(json_is_true(json_object_get(json_object_get(cc, "subjectDN"), "enabled")));
    assert_string_equal(str_at(json_object_get(cc, "subjectDN"), "name"),
                        "X-Forwarded-Clientcert-subjectdn");
    assert_true(json_is_false(json_object_get(json_object_get(cc, "issuerDN"), "enabled")));
    json_t *tls = json_object_get(spec, "tls");
    assert_string_equal(str_at(tls, "certificate"), "example-com");
    assert_string_equal(str_at(tls, "policy"), "tls_cipher_policy_1_2");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(tls, "extensionCertificates"), 0)),
        "api-example-com");
    json_t *mutual = json_object_get(tls, "mutualAuthentication");
    assert_true(json_is_false(json_object_get(mutual, "enabled")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(mutual, "caCertificates"), 0)), "corp-ca");
    assert_string_equal(
        str_at(json_object_get(json_object_get(spec, "defaultAction"), "forward"), "serverGroup"),
        "web");

    /* HTTP listeners have no TLS, no http2 and no client-certificate headers */
    spec = spec_of(root, "Listener", "web-http");
    assert_null(json_object_get(spec, "tls"));
    assert_null(json_object_get(spec, "http2"));
    assert_null(json_object_get(json_object_get(spec, "headers"), "clientCert"));
    assert_int_equal(
        json_object_size(json_object_get(
            json_object_get(json_object_get(json_object_get(root, "resources"), "Listener"),
                            "web-http"),
            "labels")),
        0);
    json_decref(root);

    /* no policy in the model means the documented default */
    fx.listeners[1].tls.policy = NULL;
    root = rc_export_model(&fx.model);
    assert_string_equal(
        str_at(json_object_get(spec_of(root, "Listener", "web-https"), "tls"), "policy"),
        "tls_cipher_policy_1_2");
    json_decref(root);
}

static void test_group_fields(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.groups[1].scheduler = RC_SCHED_WLC;
    fx.groups[1].fail_open = false;
    json_t *root = rc_export_model(&fx.model);
    json_t *spec = spec_of(root, "ServerGroup", "web");
    assert_string_equal(str_at(spec, "protocol"), "HTTP");
    assert_string_equal(str_at(spec, "scheduler"), "Wlc");
    assert_string_equal(str_at(spec, "whenAllUnhealthy"), "Reject");
    assert_true(json_is_true(json_object_get(spec, "upstreamKeepalive")));
    json_t *servers = json_object_get(spec, "servers");
    assert_int_equal(json_array_size(servers), 2);
    json_t *s1 = json_array_get(servers, 1);
    assert_string_equal(str_at(s1, "address"), "10.0.0.2");
    assert_int_equal(json_integer_value(json_object_get(s1, "port")), 8080);
    assert_int_equal(json_integer_value(json_object_get(s1, "weight")), 50);
    json_t *hc = json_object_get(spec, "healthCheck");
    assert_string_equal(str_at(hc, "protocol"), "HTTP");
    assert_string_equal(str_at(hc, "method"), "HEAD");
    assert_null(json_object_get(hc, "host"));
    assert_string_equal(str_at(hc, "httpVersion"), "HTTP1.1");
    json_t *codes = json_object_get(hc, "codes");
    assert_int_equal(json_array_size(codes), 2);
    assert_string_equal(json_string_value(json_array_get(codes, 0)), "http_2xx");
    assert_string_equal(json_string_value(json_array_get(codes, 1)), "http_3xx");
    assert_int_equal(json_integer_value(json_object_get(hc, "intervalSeconds")), 2);
    json_decref(root);
}

static void test_certificate_facts(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *root = rc_export_model(&fx.model);
    json_t *spec = spec_of(root, "Certificate", "example-com");
    assert_string_equal(str_at(spec, "type"), "Server");
    assert_string_equal(str_at(spec, "subject"), "CN=example.com");
    assert_string_equal(str_at(spec, "issuer"), "CN=Test CA");
    assert_string_equal(str_at(spec, "notBefore"), "2025-01-01T00:00:00Z");
    assert_string_equal(str_at(spec, "notAfter"), "2026-01-01T00:00:00Z");
    assert_string_equal(str_at(spec, "sha256Fingerprint"), fx.certs[2].fingerprint_sha256);
    assert_string_equal(str_at(spec, "keyType"), "RSA");
    assert_int_equal(json_integer_value(json_object_get(spec, "keyBits")), 2048);
    assert_int_equal(strlen(str_at(spec, "chainSha256")), 64);
    json_t *dns = json_object_get(spec, "dnsNames");
    assert_int_equal(json_array_size(dns), 2);
    json_t *files = json_object_get(json_object_get(spec, "source"), "files");
    assert_string_equal(str_at(files, "certificate"), "/etc/albd/certs/example.pem");
    assert_string_equal(str_at(files, "privateKey"), "/etc/albd/certs/example.key");

    /* inline: shown by fingerprint, never by its PEM */
    spec = spec_of(root, "Certificate", "corp-ca");
    assert_string_equal(str_at(spec, "type"), "CA");
    assert_true(json_is_true(json_object_get(spec, "isCa")));
    json_t *inl = json_object_get(json_object_get(spec, "source"), "inline");
    assert_int_equal(json_object_size(inl), 1);
    assert_string_equal(str_at(inl, "sha256Fingerprint"), fx.certs[1].fingerprint_sha256);
    json_decref(root);
}

/* The chain hash changes when only an intermediate does. */
static void test_chain_change_is_visible(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    static const char other[] = FX_CERT_PEM FX_CERT_PEM;
    fx.certs[2].cert_pem = other;
    fx.certs[2].cert_pem_len = strlen(other);
    json_t *b = rc_export_model(&fx.model);
    assert_string_not_equal(str_at(spec_of(a, "Certificate", "example-com"), "chainSha256"),
                            str_at(spec_of(b, "Certificate", "example-com"), "chainSha256"));
    json_decref(a);
    json_decref(b);
}

static void test_no_secret_in_export(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    char *text = rc_export_model_text(&fx.model);
    assert_non_null(text);
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_null(strstr(text, FX_KEY_BODY));
    assert_null(strstr(text, "BEGIN CERTIFICATE"));
    assert_null(strstr(text, FX_CERT_BODY));
    /* the file path of the key is fine to show */
    assert_non_null(strstr(text, "/etc/albd/certs/example.key"));
    free(text);
}

static void test_text_is_stable_json(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    char *a = rc_export_model_text(&fx.model);
    char *b = rc_export_model_text(&fx.model);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_int_equal(a[strlen(a) - 1], '\n');
    json_error_t err;
    json_t *j = json_loads(a, 0, &err);
    assert_non_null(j);
    json_t *direct = rc_export_model(&fx.model);
    assert_true(json_equal(j, direct));
    json_decref(j);
    json_decref(direct);
    free(a);
    free(b);
}

/* A subject with bytes that are not UTF-8 still exports (as '?'). */
static void test_invalid_utf8_subject(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.certs[2].subject = "CN=caf\xe9";
    json_t *root = rc_export_model(&fx.model);
    assert_non_null(root);
    assert_string_equal(str_at(spec_of(root, "Certificate", "example-com"), "subject"), "CN=caf?");
    json_decref(root);
}

/* Every allocation failure gives NULL, never a partial document (and,
 * under ASan, no leak). */
static void test_out_of_memory(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *want = rc_export_model(&fx.model);
    long n;
    for (n = 0;; n++) {
        fx_oom_arm(n);
        json_t *got = rc_export_model(&fx.model);
        char *text = rc_export_model_text(&fx.model);
        fx_oom_disarm();
        if (got != NULL) {
            assert_true(json_equal(got, want));
            json_decref(got);
            free(text);
            break;
        }
        assert_null(text);
    }
    assert_true(n > 10);
    json_decref(want);
}

static void set_digests(struct fixture *fx)
{
    for (size_t i = 0; i < 3; i++)
        snprintf(fx->certs[i].meta.digest, sizeof fx->certs[i].meta.digest, "%064zu", i);
}

/* rc_export_pair leaves out only the certificates that export the same in
 * both models, and the diff of the pair is the diff of the whole exports. */
static void test_pair_leaves_out_unchanged_certificates(void **state)
{
    (void)state;
    struct fixture fa, fb;
    fixture_init(&fa);
    fixture_init(&fb);
    set_digests(&fa);
    set_digests(&fb);
    fb.certs[2].meta.digest[0] = 'f'; /* example-com renewed */
    static const char renewed[] = FX_CERT_PEM FX_CERT_PEM;
    fb.certs[2].cert_pem = renewed;
    fb.certs[2].cert_pem_len = strlen(renewed);
    static struct rc_label note = {"owner", "web"};
    fb.certs[1].meta.annotations = &note; /* corp-ca: digest same, annotation not */
    fb.certs[1].meta.n_annotations = 1;
    json_t *a, *b;
    assert_int_equal(rc_export_pair(&fa.model, &fb.model, &a, &b), 0);
    json_t *ca = json_object_get(json_object_get(a, "resources"), "Certificate");
    json_t *cb = json_object_get(json_object_get(b, "resources"), "Certificate");
    assert_int_equal(json_object_size(ca), 2);
    assert_int_equal(json_object_size(cb), 2);
    assert_null(json_object_get(ca, "api-example-com"));
    assert_null(json_object_get(cb, "api-example-com"));
    assert_non_null(spec_of(b, "Certificate", "example-com"));
    assert_non_null(spec_of(b, "Certificate", "corp-ca"));
    tf_assert_pair_changes(a, b, &fa.model, &fb.model, 2);

    /* another root: every certificate's paths may read differently */
    fb.model.root = "/elsewhere";
    assert_int_equal(rc_export_pair(&fa.model, &fb.model, &a, &b), 0);
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(b, "resources"), "Certificate")), 3);
    json_decref(a);
    json_decref(b);

    /* no running model: the whole of the new one */
    assert_int_equal(rc_export_pair(NULL, &fb.model, &a, &b), 0);
    assert_null(a);
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(b, "resources"), "Certificate")), 3);
    json_decref(b);
}

/* The same for server groups: one weight changed among unchanged groups
 * exports that group only, and the pair's diff is the whole exports'. */
static void test_pair_leaves_out_unchanged_groups(void **state)
{
    (void)state;
    struct fixture fa, fb, fc;
    fixture_init(&fa);
    fixture_init(&fb);
    fixture_init(&fc);
    for (size_t i = 0; i < 2; i++) {
        snprintf(fa.groups[i].meta.digest, sizeof fa.groups[i].meta.digest, "%064zu", i);
        memcpy(fb.groups[i].meta.digest, fa.groups[i].meta.digest, sizeof fa.groups[i].meta.digest);
        memcpy(fc.groups[i].meta.digest, fa.groups[i].meta.digest, sizeof fa.groups[i].meta.digest);
    }
    fb.web_servers[1].weight = 70; /* web: weight and digest changed */
    fb.groups[1].meta.digest[0] = 'f';
    json_t *a, *b;
    assert_int_equal(rc_export_pair(&fa.model, &fb.model, &a, &b), 0);
    json_t *ga = json_object_get(json_object_get(a, "resources"), "ServerGroup");
    json_t *gb = json_object_get(json_object_get(b, "resources"), "ServerGroup");
    assert_int_equal(json_object_size(ga), 1);
    assert_int_equal(json_object_size(gb), 1);
    assert_null(json_object_get(gb, "api"));
    assert_non_null(spec_of(b, "ServerGroup", "web"));
    tf_assert_pair_changes(a, b, &fa.model, &fb.model, 1);

    /* api: the same digest, a new label: exported, and a change */
    static struct rc_label team = {"team", "api"};
    fc.groups[0].meta.labels = &team;
    fc.groups[0].meta.n_labels = 1;
    assert_int_equal(rc_export_pair(&fa.model, &fc.model, &a, &b), 0);
    assert_non_null(spec_of(b, "ServerGroup", "api"));
    assert_null(
        json_object_get(json_object_get(json_object_get(b, "resources"), "ServerGroup"), "web"));
    assert_int_equal(tf_n_changes(a, b), 1);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_empty_model_has_every_kind),
        cmocka_unit_test(test_instance_defaults),
        cmocka_unit_test(test_listener_fields),
        cmocka_unit_test(test_group_fields),
        cmocka_unit_test(test_certificate_facts),
        cmocka_unit_test(test_chain_change_is_visible),
        cmocka_unit_test(test_no_secret_in_export),
        cmocka_unit_test(test_text_is_stable_json),
        cmocka_unit_test(test_invalid_utf8_subject),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_pair_leaves_out_unchanged_certificates),
        cmocka_unit_test(test_pair_leaves_out_unchanged_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
