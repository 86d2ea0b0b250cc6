/* A copied listener cannot keep a pointer into the previous model
 * (listener.c, rc_listener_refs; reuse.c, rc_copy_check): the listener a
 * reload copies passes the check; a reference field that nobody added to
 * the table (simulated by a struct with one more pointer field, as a
 * forwarding rule's group would be) fails it whether it still points into
 * the previous model or was re-pointed without being listed; once listed,
 * only a pointer into the new model passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/listener.h"
#include "reconciler/reuse.h"
#include "test_files.h"

static char dir[256];

static const char MANIFESTS[] =
    "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
    "spec:\n  source:\n    files: {certificate: site.pem, privateKey: site.key}\n---\n"
    "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
    "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n---\n"
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
    "spec:\n  protocol: HTTPS\n  port: 8443\n"
    "  tls: {certificate: site, extensionCertificates: [site]}\n"
    "  defaultAction: {forward: {serverGroup: ga}}\n";

static int setup(void **state)
{
    (void)state;
    if (tf_mkdtemp(dir, sizeof(dir), "listener") != 0)
        return -1;
    tf_put(dir, "all.yaml", MANIFESTS);
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    tf_settle();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(dir);
}

/* Two loads of the same folder: b copies a's listener. */
static void load_twice(struct tf_result *a, struct tf_result *b)
{
    *a = tf_load(dir, NULL, NULL, NULL);
    assert_int_equal(a->rc, 0);
    *b = tf_load(dir, a->m, NULL, NULL);
    assert_int_equal(b->rc, 0);
    assert_int_equal(b->m->n_listeners, 1);
    /* A copy keeps the very name pointer of what it copies. */
    assert_ptr_equal(b->m->listeners[0].meta.name, a->m->listeners[0].meta.name);
}

static int check(const void *obj, size_t size, const struct rc_ref_field *table, size_t n,
                 const struct tf_result *b, const struct tf_result *a, char *why)
{
    struct rc_copy_ctx x;
    rc_copy_ctx_init(&x, b->m, a->m);
    int rc = rc_copy_check(obj, size, table, n, &x, why, 200);
    rc_copy_ctx_cleanup(&x);
    return rc;
}

static void a_copied_listener_points_into_the_new_model(void **state)
{
    (void)state;
    struct tf_result a, b;
    load_twice(&a, &b);
    char why[200] = "";
    const struct rc_listener *li = &b.m->listeners[0];
    assert_int_equal(check(li, sizeof(*li), rc_listener_refs, rc_listener_n_refs, &b, &a, why), 0);
    /* The same copy with one listed reference left pointing at the
     * previous model's group fails, naming the field. */
    struct rc_listener stale = *li;
    stale.default_group = &a.m->groups[0];
    assert_int_equal(
        check(&stale, sizeof(stale), rc_listener_refs, rc_listener_n_refs, &b, &a, why), -1);
    assert_non_null(strstr(why, "default_group"));
    /* The unchanged certificate is shared, not copied (model-t.h): the
     * very struct is both models'. */
    assert_ptr_equal(b.m->certificates[0], a.m->certificates[0]);
    /* ...and an element of an array of references that is not one of the
     * new model's certificates fails too (a certificate only the previous
     * model had, here a struct of its own). */
    struct rc_certificate gone = *a.m->certificates[0];
    const struct rc_certificate *old_cert = &gone;
    stale = *li;
    stale.tls.extension_certificates = &old_cert;
    assert_int_equal(
        check(&stale, sizeof(stale), rc_listener_refs, rc_listener_n_refs, &b, &a, why), -1);
    assert_non_null(strstr(why, "tls.extension_certificates[0]"));
    tf_done(&a);
    tf_done(&b);
}

/* struct rc_listener with a reference field added at the end, as a rule's
 * target group would be: the field reuse_listener does not know about. */
struct listener_plus {
    struct rc_listener li;
    const struct rc_server_group *rule_group;
};

static void an_unlisted_reference_field_is_caught(void **state)
{
    (void)state;
    struct tf_result a, b;
    load_twice(&a, &b);
    char why[200] = "";
    struct listener_plus p = {.li = b.m->listeners[0], .rule_group = &a.m->groups[0]};
    /* Not re-pointed: still the previous model's group. */
    assert_int_equal(check(&p, sizeof(p), rc_listener_refs, rc_listener_n_refs, &b, &a, why), -1);
    char want[64];
    snprintf(want, sizeof(want), "offset %zu", offsetof(struct listener_plus, rule_group));
    assert_non_null(strstr(why, want));
    /* Re-pointed but not listed: still refused, so the table stays whole. */
    p.rule_group = &b.m->groups[0];
    assert_int_equal(check(&p, sizeof(p), rc_listener_refs, rc_listener_n_refs, &b, &a, why), -1);
    /* Listed: the new model's group passes, the previous one's does not. */
    struct rc_ref_field table[16];
    assert_true(rc_listener_n_refs < 16);
    memcpy(table, rc_listener_refs, rc_listener_n_refs * sizeof(*table));
    table[rc_listener_n_refs] = (struct rc_ref_field){
        "rules[0].group", offsetof(struct listener_plus, rule_group), RC_REF_ONE, RC_REF_GROUP};
    assert_int_equal(check(&p, sizeof(p), table, rc_listener_n_refs + 1, &b, &a, why), 0);
    p.rule_group = &a.m->groups[0];
    assert_int_equal(check(&p, sizeof(p), table, rc_listener_n_refs + 1, &b, &a, why), -1);
    assert_non_null(strstr(why, "rules[0].group"));
    tf_done(&a);
    tf_done(&b);
}

/* The table covers every pointer-sized word of struct rc_listener that
 * holds a reference: a listener that refers to everything it can, built
 * (not copied), passes with its own model as both models. */
static void a_built_listener_passes(void **state)
{
    (void)state;
    struct tf_result a = tf_load(dir, NULL, NULL, NULL);
    assert_int_equal(a.rc, 0);
    char why[200] = "";
    const struct rc_listener *li = &a.m->listeners[0];
    assert_non_null(li->instance);
    assert_non_null(li->tls.policy);
    struct rc_copy_ctx x;
    rc_copy_ctx_init(&x, a.m, NULL);
    assert_int_equal(
        rc_copy_check(li, sizeof(*li), rc_listener_refs, rc_listener_n_refs, &x, why, sizeof(why)),
        0);
    rc_copy_ctx_cleanup(&x);
    tf_done(&a);
}

/* A reference among extensionCertificates that fails is reported at its
 * item: a missing name, and a CA certificate that cannot serve. */
static void extension_certificate_errors_name_their_item(void **state)
{
    (void)state;
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-ca.pem", "ca.pem");
    tf_put(dir, "all.yaml",
           "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
           "spec:\n  source:\n    files: {certificate: site.pem, privateKey: site.key}\n---\n"
           "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: root}\n"
           "spec:\n  type: CA\n  source:\n    files: {certificate: ca.pem}\n---\n"
           "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
           "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n---\n"
           "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
           "spec:\n  protocol: HTTPS\n  port: 8443\n"
           "  tls: {certificate: site, extensionCertificates: [site, gone, root]}\n"
           "  defaultAction: {forward: {serverGroup: ga}}\n");
    tf_settle();
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result r = tf_load(dir, NULL, NULL, &errs);
    assert_int_not_equal(r.rc, 0);
    bool missing = false, ca = false;
    for (size_t i = 0; i < errs.n; i++) {
        const char *p = errs.v[i].path ? errs.v[i].path : "";
        missing = missing || (!strcmp(p, "spec.tls.extensionCertificates[1]") &&
                              strstr(errs.v[i].msg, "no Certificate named \"gone\"") != NULL);
        ca = ca || (!strcmp(p, "spec.tls.extensionCertificates[2]") &&
                    strstr(errs.v[i].msg, "is a CA certificate") != NULL);
    }
    if (!missing || !ca)
        rc_errs_print(&errs, stderr);
    assert_true(missing);
    assert_true(ca);
    rc_errs_cleanup(&errs);
    tf_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_copied_listener_points_into_the_new_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unlisted_reference_field_is_caught, setup, teardown),
        cmocka_unit_test_setup_teardown(a_built_listener_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(extension_certificate_errors_name_their_item, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
