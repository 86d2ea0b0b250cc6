/* reconciler/certservice.c and the cache seam (cert.c): a CertificateService
 * becomes a model resource with absolute paths and defaults; a service
 * certificate is read from CACHE/<service>/<id>/ like certificate files;
 * one not cached is pending, and a listener naming it waits (an error
 * starting with RC_PENDING_PREFIX under run's options, only a warning under
 * plan's) while other listeners build; without a cache folder (validate)
 * nothing is looked up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char dir[64], cache[128];

static const char manifests[] =
    "apiVersion: albd/v1\nkind: CertificateService\nmetadata: {name: cas}\n"
    "spec: {endpoint: \"https://certs.test:9443/\", caFile: ca.pem, tokenFile: /run/token,\n"
    "       timeoutSeconds: 3}\n"
    "---\napiVersion: albd/v1\nkind: Certificate\nmetadata: {name: www}\n"
    "spec: {source: {service: {name: cas, certificateId: www-1}}}\n"
    "---\napiVersion: albd/v1\nkind: Certificate\nmetadata: {name: file}\n"
    "spec: {source: {files: {certificate: s.pem, privateKey: s.key}}}\n"
    "---\napiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g}\n"
    "spec: {servers: [{address: 127.0.0.1, port: 8080}]}\n"
    "---\napiVersion: albd/v1\nkind: Listener\nmetadata: {name: svc}\n"
    "spec: {protocol: HTTPS, port: 8443, tls: {certificate: www},\n"
    "       defaultAction: {forward: {serverGroup: g}}}\n"
    "---\napiVersion: albd/v1\nkind: Listener\nmetadata: {name: plain}\n"
    "spec: {protocol: HTTPS, port: 9443, tls: {certificate: file},\n"
    "       defaultAction: {forward: {serverGroup: g}}}\n";

static int setup(void **state)
{
    assert_int_equal(tf_mkdtemp(dir, sizeof dir, "certsvc"), 0);
    tf_put(dir, "m.yaml", manifests);
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "s.pem");
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.key", "s.key");
    snprintf(cache, sizeof cache, "%s/cache", dir);
    return 0;
}

static int teardown(void **state)
{
    tf_rm_rf(dir);
    return 0;
}

static void fill_cache(void)
{
    char d[256];
    snprintf(d, sizeof d, "%s/cas/www-1", cache);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", d);
    assert_int_equal(system(cmd), 0);
    tf_copy_in(d, ALBD_TEST_DATA "/certs/test-only-server.pem", "cert.pem");
    tf_copy_in(d, ALBD_TEST_DATA "/certs/test-only-server.key", "key.pem");
}

static int load(const char *cache_dir, bool pending_is_error, struct rc_model **m,
                struct rc_errs *errs, struct rc_status *st)
{
    rc_errs_init(errs);
    rc_status_init(st);
    *m = NULL;
    struct rc_load_opts o = {
        .now = time(NULL), .cert_cache_dir = cache_dir, .cert_pending_is_error = pending_is_error};
    return rc_load_dir_ex(dir, &o, m, errs, st);
}

static bool has_err(const struct rc_errs *errs, enum rc_severity sev, const char *name,
                    const char *needle)
{
    for (size_t i = 0; i < errs->n; i++)
        if (errs->v[i].severity == sev && errs->v[i].name && !strcmp(errs->v[i].name, name) &&
            errs->v[i].msg && strstr(errs->v[i].msg, needle))
            return true;
    return false;
}

static void test_service_resource(void **state)
{
    struct rc_model *m;
    struct rc_errs errs;
    struct rc_status st;
    fill_cache();
    assert_int_equal(load(cache, true, &m, &errs, &st), 0);
    assert_int_equal(m->n_cert_services, 1);
    const struct rc_cert_service *s = &m->cert_services[0];
    assert_string_equal(s->endpoint, "https://certs.test:9443"); /* trailing '/' dropped */
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    assert_string_equal(s->ca_file, ca);
    assert_string_equal(s->token_file, "/run/token");
    assert_null(s->client_cert);
    assert_int_equal(s->refresh_s, 300);
    assert_int_equal(s->timeout_s, 3);
    /* the service certificate, read from the cache like files */
    const struct rc_certificate *c = rc_model_certificate(m, "www");
    assert_non_null(c);
    assert_int_equal(c->source, RC_CERT_SOURCE_SERVICE);
    assert_ptr_equal(c->service, s);
    assert_string_equal(c->service_id, "www-1");
    assert_false(c->pending);
    assert_non_null(c->key_pem);
    assert_string_equal(c->subject, "CN=server.test");
    char path[256];
    snprintf(path, sizeof path, "%s/cas/www-1/cert.pem", cache);
    assert_string_equal(c->cert_path, path);
    assert_int_equal(m->n_listeners, 2);

    /* A reload with the cache unchanged copies the certificate (no parse)
     * and points it to the new load's service, never the old one. */
    struct rc_model *m2 = NULL;
    struct rc_errs errs2;
    struct rc_status st2;
    rc_errs_init(&errs2);
    rc_status_init(&st2);
    struct rc_load_opts o = {
        .now = time(NULL), .prev = m, .cert_cache_dir = cache, .cert_pending_is_error = true};
    assert_int_equal(rc_load_dir_ex(dir, &o, &m2, &errs2, &st2), 0);
    const struct rc_certificate *c2 = rc_model_certificate(m2, "www");
    assert_ptr_equal(c2->service, &m2->cert_services[0]);
    assert_string_equal(c2->meta.digest, c->meta.digest);
    assert_int_equal(st2.certs_parsed, 0);
    rc_model_unref(m2);
    rc_errs_cleanup(&errs2);
    rc_status_cleanup(&st2);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    rc_status_cleanup(&st);
}

static void test_not_cached_is_pending(void **state)
{
    struct rc_model *m;
    struct rc_errs errs;
    struct rc_status st;
    /* run: the listener waits, the other one builds */
    assert_int_equal(load(cache, true, &m, &errs, &st), 1);
    const struct rc_certificate *c = rc_model_certificate(m, "www");
    assert_non_null(c);
    assert_true(c->pending);
    assert_null(c->cert_pem);
    assert_null(c->key_pem);
    assert_int_equal(m->n_listeners, 1);
    assert_string_equal(m->listeners[0].meta.name, "plain");
    assert_true(has_err(&errs, RC_ERROR, "svc", RC_PENDING_PREFIX));
    const struct rc_res_status *ls = rc_status_find(&st, "Listener", "svc");
    assert_non_null(ls);
    assert_int_equal(ls->state, RC_RES_ABSENT);
    assert_non_null(strstr(ls->message, RC_PENDING_PREFIX));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    rc_status_cleanup(&st);

    /* plan: a warning that it could not look, no error */
    assert_int_equal(load(cache, false, &m, &errs, &st), 0);
    assert_true(has_err(&errs, RC_WARNING, "www", "not in the cache"));
    assert_int_equal(rc_errs_count_errors(&errs), 0);
    assert_int_equal(m->n_listeners, 2);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    rc_status_cleanup(&st);

    /* validate: no cache folder, nothing looked up */
    assert_int_equal(load(NULL, true, &m, &errs, &st), 0);
    assert_false(rc_model_certificate(m, "www")->pending);
    assert_int_equal(errs.n, 0);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    rc_status_cleanup(&st);
}

static void test_timeout_below_refresh(void **state)
{
    tf_put(dir, "m.yaml",
           "apiVersion: albd/v1\nkind: CertificateService\nmetadata: {name: cas}\n"
           "spec: {endpoint: \"https://certs.test\", caFile: ca.pem, refreshIntervalSeconds: 10,\n"
           "       timeoutSeconds: 10}\n");
    struct rc_model *m;
    struct rc_errs errs;
    struct rc_status st;
    assert_int_equal(load(cache, true, &m, &errs, &st), 1);
    assert_true(has_err(&errs, RC_ERROR, "cas", "must be shorter than refreshIntervalSeconds"));
    assert_int_equal(m->n_cert_services, 0);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    rc_status_cleanup(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_cached_is_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_below_refresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
