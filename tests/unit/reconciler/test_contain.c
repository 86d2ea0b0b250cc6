/* Per-resource containment (rc_load_dir_ex): an invalid resource keeps its
 * last good version or stays absent, dependents follow, everything else
 * applies; --strict stays all or nothing; certificate facts are reused. */
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

#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "test_files.h"

#define NOW time(NULL) /* the test certificates are valid from their creation to 2036 */

static char dir[256];

static char *read_all(const char *path, size_t *len)
{
    return tf_read_all(path, len);
}

static void put(const char *name, const char *text)
{
    tf_put(dir, name, text);
}

static void copy_in(const char *from, const char *name)
{
    tf_copy_in(dir, from, name);
}

static int setup(void **state)
{
    if (tf_mkdtemp(dir, sizeof(dir), "contain") < 0)
        return -1;
    static const char *const base[] = {"instance.yaml", "certs.yaml", "groups.yaml",
                                       "listeners.yaml"};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        char from[512];
        snprintf(from, sizeof(from), "%s/contain/base/%s", ALBD_TEST_DATA, base[i]);
        copy_in(from, base[i]);
    }
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    copy_in(ALBD_TEST_DATA "/certs/test-only-ca.pem", "ca.pem");
    return 0;
}

static int teardown(void **state)
{
    return tf_rm_rf(dir);
}

struct result {
    int rc;
    struct rc_model *m;
    struct rc_errs errs;
    struct rc_status st;
};

static void load(struct result *r, const struct rc_model *prev, bool strict,
                 const struct rc_invalid *inv, size_t n_inv)
{
    rc_errs_init(&r->errs);
    rc_status_init(&r->st);
    r->m = NULL;
    struct rc_load_opts o = {
        .now = NOW, .prev = prev, .strict = strict, .invalid = inv, .n_invalid = n_inv};
    r->rc = rc_load_dir_ex(dir, &o, &r->m, &r->errs, &r->st);
}

static void done(struct result *r)
{
    rc_model_unref(r->m);
    rc_errs_cleanup(&r->errs);
    rc_status_cleanup(&r->st);
}

/* The first good configuration. */
static struct rc_model *base_model(void)
{
    struct result r;
    load(&r, NULL, false, NULL, 0);
    if (r.rc != 0)
        rc_errs_print(&r.errs, stderr);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.errs.n, 0);
    for (size_t i = 0; i < r.st.n; i++)
        assert_int_equal(r.st.v[i].state, RC_RES_READY);
    struct rc_model *m = rc_model_ref(r.m);
    done(&r);
    return m;
}

static const struct rc_listener *listener(const struct rc_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_listeners; i++)
        if (!strcmp(m->listeners[i].meta.name, name))
            return &m->listeners[i];
    return NULL;
}

static void expect_state(const struct result *r, const char *kind, const char *name,
                         enum rc_res_state state, const char *msg_part, const char *file_part,
                         int line)
{
    const struct rc_res_status *s = rc_status_find(&r->st, kind, name);
    if (s == NULL)
        fail_msg("no status for %s/%s", kind, name);
    if (s->state != state)
        fail_msg("%s/%s is %s, expected %s (%s)", kind, name, rc_res_state_name(s->state),
                 rc_res_state_name(state), s->message ? s->message : "");
    if (state == RC_RES_READY) {
        assert_null(s->message);
        return;
    }
    assert_non_null(s->message);
    if (msg_part && strstr(s->message, msg_part) == NULL)
        fail_msg("%s/%s: \"%s\" does not mention \"%s\"", kind, name, s->message, msg_part);
    if (file_part) {
        assert_non_null(s->file);
        assert_non_null(strstr(s->file, file_part));
    }
    if (line)
        assert_int_equal(s->line, line);
}

static bool errs_mention(const struct rc_errs *e, const char *part)
{
    char buf[2048];
    for (size_t i = 0; i < e->n; i++) {
        rc_err_format(&e->v[i], buf, sizeof(buf));
        if (strstr(buf, part))
            return true;
    }
    return false;
}

static const char groups_changed_ga_bad[] = "apiVersion: albd/v1\n"
                                            "kind: ServerGroup\n"
                                            "metadata: {name: ga}\n"
                                            "spec:\n"
                                            "  servers:\n"
                                            "    - {address: 127.0.0.1, port: 9101}\n"
                                            "  schedulr: Wrr\n"
                                            "---\n"
                                            "apiVersion: albd/v1\n"
                                            "kind: ServerGroup\n"
                                            "metadata: {name: gb}\n"
                                            "spec:\n"
                                            "  servers:\n"
                                            "    - {address: 127.0.0.1, port: 9102}\n";

/* A schema error in one group: that group keeps its last good version, the
 * other group in the same file applies, and the status says which is which. */
static void test_schema_error_keeps_last_good(void **state)
{
    struct rc_model *m0 = base_model();
    put("groups.yaml", groups_changed_ga_bad);
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_non_null(r.m);
    assert_true(errs_mention(&r.errs, "schedulr"));
    assert_int_equal(rc_model_group(r.m, "ga")->servers[0].port, 9001); /* kept */
    assert_int_equal(rc_model_group(r.m, "gb")->servers[0].port, 9102); /* applied */
    /* The listener that uses the kept group points at it in the new model. */
    assert_ptr_equal(listener(r.m, "web")->default_group, rc_model_group(r.m, "ga"));
    expect_state(&r, "ServerGroup", "ga", RC_RES_KEPT, "schedulr", "groups.yaml", 7);
    expect_state(&r, "ServerGroup", "gb", RC_RES_READY, NULL, NULL, 0);
    /* The status lists every resource once: 1 instance, 2 certificates,
     * 2 groups, 2 listeners. */
    assert_int_equal(r.st.n, 7);
    for (size_t i = 0; i < r.st.n; i++)
        if (strcmp(r.st.v[i].name, "ga") != 0)
            assert_int_equal(r.st.v[i].state, RC_RES_READY);
    assert_string_not_equal(r.m->digest, m0->digest);

    /* Loading again over the contained model keeps the same last good
     * version (it carries the source on) and gives the same digest. */
    struct result r2;
    load(&r2, r.m, false, NULL, 0);
    assert_int_equal(r2.rc, 1);
    assert_int_equal(rc_model_group(r2.m, "ga")->servers[0].port, 9001);
    assert_string_equal(r2.m->digest, r.m->digest);
    done(&r2);

    /* Fixed: everything is Ready again. */
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9101}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9102}\n");
    struct result r3;
    load(&r3, r.m, false, NULL, 0);
    assert_int_equal(r3.rc, 0);
    assert_int_equal(rc_model_group(r3.m, "ga")->servers[0].port, 9101);
    expect_state(&r3, "ServerGroup", "ga", RC_RES_READY, NULL, NULL, 0);
    done(&r3);
    done(&r);
    rc_model_unref(m0);
}

/* A reference to a group that does not exist: the listener keeps its last
 * good version; a change to the other listener applies. */
static void test_bad_reference(void **state)
{
    struct rc_model *m0 = base_model();
    put("listeners.yaml", "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
                          "spec:\n  instance: edge\n  protocol: HTTPS\n  port: 8443\n"
                          "  idleTimeoutSeconds: 30\n  tls: {certificate: site}\n"
                          "  defaultAction: {forward: {serverGroup: ga}}\n---\n"
                          "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
                          "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8081\n"
                          "  defaultAction: {forward: {serverGroup: nope}}\n");
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    expect_state(&r, "Listener", "api", RC_RES_KEPT, "no ServerGroup named \"nope\"",
                 "listeners.yaml", 19);
    expect_state(&r, "Listener", "web", RC_RES_READY, NULL, NULL, 0);
    assert_int_equal(listener(r.m, "api")->port, 8080);
    assert_string_equal(listener(r.m, "api")->default_group->meta.name, "gb");
    assert_int_equal(listener(r.m, "web")->idle_timeout_s, 30);
    done(&r);
    rc_model_unref(m0);
}

/* A certificate file that no longer parses: the certificate keeps its last
 * good version, with the previous PEM bytes, and its listener still uses it. */
static void test_broken_certificate_file(void **state)
{
    struct rc_model *m0 = base_model();
    const struct rc_certificate *c0 = rc_model_certificate(m0, "site");
    put("site.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    expect_state(&r, "Certificate", "site", RC_RES_KEPT, "no PEM certificate", "certs.yaml", 0);
    const struct rc_certificate *c = rc_model_certificate(r.m, "site");
    assert_non_null(c);
    assert_int_equal(c->cert_pem_len, c0->cert_pem_len);
    assert_memory_equal(c->cert_pem, c0->cert_pem, c0->cert_pem_len);
    assert_string_equal(c->fingerprint_sha256, c0->fingerprint_sha256);
    assert_ptr_equal(listener(r.m, "web")->tls.certificate, c);
    expect_state(&r, "Listener", "web", RC_RES_READY, NULL, NULL, 0);
    /* The kept version's facts came from the running model, not a parse. */
    assert_int_equal(r.st.certs_parsed, 1); /* only the broken new bytes */
    done(&r);
    rc_model_unref(m0);
}

/* A YAML syntax error in a file with several resources: every resource the
 * running model had from that file keeps its version, even those parsed
 * before the error; a new one there stays absent; other files apply. */
static void test_yaml_syntax_error(void **state)
{
    struct rc_model *m0 = base_model();
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9201}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gc}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9203}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers: [{address: 127.0.0.1, port: 9202}\n");
    put("instance.yaml", "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: edge}\n"
                         "spec:\n  id: edge-2\n  addresses: [\"127.0.0.1\"]\n");
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_true(errs_mention(&r.errs, "YAML syntax error"));
    assert_int_equal(rc_model_group(r.m, "ga")->servers[0].port, 9001);
    assert_int_equal(rc_model_group(r.m, "gb")->servers[0].port, 9002);
    assert_null(rc_model_group(r.m, "gc"));
    expect_state(&r, "ServerGroup", "ga", RC_RES_KEPT, "YAML syntax error", "groups.yaml", 0);
    expect_state(&r, "ServerGroup", "gb", RC_RES_KEPT, "YAML syntax error", "groups.yaml", 0);
    expect_state(&r, "ServerGroup", "gc", RC_RES_ABSENT, "YAML syntax error", "groups.yaml", 0);
    expect_state(&r, "Instance", "edge", RC_RES_READY, NULL, NULL, 0);
    assert_string_equal(r.m->instances[0].id, "edge-2");
    done(&r);
    rc_model_unref(m0);
}

/* The agent reports a listener whose port will not bind: it keeps its last
 * good version (the old port); a new listener that cannot bind stays absent;
 * absent = true drops a kept version too. */
static void test_forced_invalid_listener(void **state)
{
    struct rc_model *m0 = base_model();
    put("listeners.yaml", "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
                          "spec:\n  instance: edge\n  protocol: HTTPS\n  port: 8443\n"
                          "  tls: {certificate: site}\n"
                          "  defaultAction: {forward: {serverGroup: ga}}\n---\n"
                          "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
                          "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8081\n"
                          "  defaultAction: {forward: {serverGroup: gb}}\n---\n"
                          "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: extra}\n"
                          "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8082\n"
                          "  defaultAction: {forward: {serverGroup: gb}}\n");
    struct rc_invalid inv[] = {
        {"Listener", "api", "cannot listen on 127.0.0.1:8081: Address already in use", false},
        {"Listener", "extra", "cannot listen on 127.0.0.1:8082: Address already in use", false},
    };
    struct result r;
    load(&r, m0, false, inv, 2);
    assert_int_equal(r.rc, 1);
    assert_int_equal(listener(r.m, "api")->port, 8080);
    assert_null(listener(r.m, "extra"));
    expect_state(&r, "Listener", "api", RC_RES_KEPT, "8081: Address already in use",
                 "listeners.yaml", 11);
    expect_state(&r, "Listener", "extra", RC_RES_ABSENT, "cannot listen", "listeners.yaml", 20);
    expect_state(&r, "Listener", "web", RC_RES_READY, NULL, NULL, 0);

    /* Once the port is free the same files give a different digest, so the
     * agent does not skip applying. */
    struct result r2;
    load(&r2, r.m, false, NULL, 0);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(listener(r2.m, "api")->port, 8081);
    assert_string_not_equal(r2.m->digest, r.m->digest);
    done(&r2);

    inv[0].absent = true;
    struct result r3;
    load(&r3, m0, false, inv, 1);
    assert_null(listener(r3.m, "api"));
    expect_state(&r3, "Listener", "api", RC_RES_ABSENT, "Address already in use", NULL, 0);
    done(&r3);
    done(&r);
    rc_model_unref(m0);
}

static const char web_on_site2[] = "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
                                   "spec:\n  instance: edge\n  protocol: HTTPS\n  port: 8443\n"
                                   "  tls: {certificate: site2}\n"
                                   "  defaultAction: {forward: {serverGroup: ga}}\n---\n"
                                   "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
                                   "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8080\n"
                                   "  defaultAction: {forward: {serverGroup: gb}}\n";

static const char site2_bad_key[] = "---\napiVersion: albd/v1\nkind: Certificate\n"
                                    "metadata: {name: site2}\nspec:\n  source:\n"
                                    "    files: {certificate: site.pem, privateKey: other.key}\n";

/* A listener whose new certificate is invalid (and never was good) keeps its
 * old version and the old certificate. */
static void test_dependents_fall_back(void **state)
{
    struct rc_model *m0 = base_model();
    copy_in(ALBD_TEST_DATA "/certs/test-only-other.key", "other.key");
    char *certs = read_all(ALBD_TEST_DATA "/contain/base/certs.yaml", NULL);
    char *text = NULL;
    assert_true(asprintf(&text, "%s%s", certs, site2_bad_key) > 0);
    put("certs.yaml", text);
    put("listeners.yaml", web_on_site2);
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_null(rc_model_certificate(r.m, "site2"));
    expect_state(&r, "Certificate", "site2", RC_RES_ABSENT, "does not match", "certs.yaml", 0);
    expect_state(&r, "Listener", "web", RC_RES_KEPT, "site2", "listeners.yaml", 8);
    assert_string_equal(listener(r.m, "web")->tls.certificate->meta.name, "site");
    assert_ptr_equal(listener(r.m, "web")->tls.certificate, rc_model_certificate(r.m, "site"));
    /* The dependency failure is reported with the certificate's own error. */
    assert_true(errs_mention(&r.errs, "does not match"));
    assert_true(errs_mention(&r.errs, "Certificate \"site2\" is invalid"));
    done(&r);

    /* The same, while the old certificate is deleted from the manifests: the
     * kept listener still needs it, so it is kept too. */
    char *only2 = NULL;
    assert_true(asprintf(&only2,
                         "apiVersion: albd/v1\nkind: Certificate\n"
                         "metadata: {name: corp-ca}\nspec:\n  type: CA\n"
                         "  source:\n    files: {certificate: ca.pem}\n%s",
                         site2_bad_key) > 0);
    put("certs.yaml", only2);
    struct result r2;
    load(&r2, m0, false, NULL, 0);
    assert_int_equal(r2.rc, 1);
    assert_non_null(rc_model_certificate(r2.m, "site"));
    assert_ptr_equal(listener(r2.m, "web")->tls.certificate, rc_model_certificate(r2.m, "site"));
    expect_state(&r2, "Certificate", "site", RC_RES_KEPT, "Listener/web uses it", NULL, 0);
    expect_state(&r2, "Listener", "web", RC_RES_KEPT, "site2", NULL, 0);
    done(&r2);
    free(only2);
    free(text);
    free(certs);
    rc_model_unref(m0);
}

/* Without a running model an invalid resource is absent, and so is what
 * depends on it; the rest of the configuration loads. */
static void test_absent_if_never_good(void **state)
{
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 70000}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9002}\n");
    struct result r;
    load(&r, NULL, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_non_null(r.m);
    assert_null(rc_model_group(r.m, "ga"));
    assert_null(listener(r.m, "web"));
    assert_non_null(listener(r.m, "api"));
    expect_state(&r, "ServerGroup", "ga", RC_RES_ABSENT, "70000", "groups.yaml", 6);
    expect_state(&r, "Listener", "web", RC_RES_ABSENT, "ServerGroup \"ga\" is invalid",
                 "listeners.yaml", 9);
    expect_state(&r, "Listener", "api", RC_RES_READY, NULL, NULL, 0);
    assert_int_equal(r.m->n_listeners, 1);
    done(&r);
}

/* An invalid Instance with nothing to fall back to: its listeners are absent
 * (no implicit "default" instance on all addresses takes its place). */
static void test_invalid_instance_is_not_replaced(void **state)
{
    put("instance.yaml", "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: edge}\n"
                         "spec:\n  addresses: [\"not-an-ip\"]\n");
    put("listeners.yaml", "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
                          "spec:\n  protocol: HTTP\n  port: 8080\n"
                          "  defaultAction: {forward: {serverGroup: gb}}\n");
    struct result r;
    load(&r, NULL, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.m->n_instances, 0);
    assert_int_equal(r.m->n_listeners, 0);
    expect_state(&r, "Instance", "edge", RC_RES_ABSENT, "not-an-ip", "instance.yaml", 5);
    expect_state(&r, "Listener", "api", RC_RES_ABSENT, "Instance", "listeners.yaml", 0);
    done(&r);
}

/* --strict: one error and nothing applies; the status tells the invalid
 * resource from the valid changes that wait, and from unchanged ones. */
static void test_strict_all_or_nothing(void **state)
{
    struct rc_model *m0 = base_model();
    put("groups.yaml", groups_changed_ga_bad);
    struct result r;
    load(&r, m0, true, NULL, 0);
    assert_int_equal(r.rc, -1);
    assert_null(r.m);
    assert_true(errs_mention(&r.errs, "schedulr"));
    expect_state(&r, "ServerGroup", "ga", RC_RES_KEPT, "schedulr", "groups.yaml", 7);
    expect_state(&r, "ServerGroup", "gb", RC_RES_BLOCKED, "--strict", NULL, 0);
    expect_state(&r, "Listener", "web", RC_RES_READY, NULL, NULL, 0);
    done(&r);

    /* A forced invalid resource fails a strict load too. */
    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9001}\n---\n"
                       "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9002}\n");
    struct rc_invalid inv = {"Listener", "api", "cannot listen", false};
    load(&r, m0, true, &inv, 1);
    assert_int_equal(r.rc, -1);
    assert_null(r.m);
    done(&r);

    /* rc_load_dir is the strict form. */
    put("groups.yaml", groups_changed_ga_bad);
    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    assert_int_equal(rc_load_dir(dir, NOW, &m, &errs), -1);
    assert_null(m);
    assert_int_equal(rc_errs_count_errors(&errs), 1);
    rc_errs_cleanup(&errs);
    rc_model_unref(m0);
}

/* A reload with the running model parses no unchanged certificate again;
 * changed bytes are parsed. */
static void test_reload_reuses_certificate_facts(void **state)
{
    struct result r;
    load(&r, NULL, false, NULL, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.st.certs_parsed, 2);
    assert_int_equal(r.st.certs_reused, 0);

    put("groups.yaml", "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9001, weight: 50}\n"
                       "---\napiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                       "spec:\n  servers:\n    - {address: 127.0.0.1, port: 9002}\n");
    struct result r2;
    load(&r2, r.m, false, NULL, 0);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r2.st.certs_parsed, 0);
    assert_int_equal(r2.st.certs_reused, 2);
    assert_int_equal(rc_model_group(r2.m, "ga")->servers[0].weight, 50);
    const struct rc_certificate *a = rc_model_certificate(r.m, "site");
    const struct rc_certificate *b = rc_model_certificate(r2.m, "site");
    assert_string_equal(a->subject, b->subject);
    assert_string_equal(a->fingerprint_sha256, b->fingerprint_sha256);
    assert_int_equal(a->n_dns_names, b->n_dns_names);
    assert_string_equal(a->dns_names[1], b->dns_names[1]);
    assert_int_equal(a->not_after, b->not_after);
    assert_string_equal(a->meta.digest, b->meta.digest);

    /* Different bytes (a trailing comment line) are parsed again. */
    size_t len = 0;
    char *pem = read_all(ALBD_TEST_DATA "/certs/test-only-server.pem", &len);
    char *more = NULL;
    assert_true(asprintf(&more, "%s\n", pem) > 0);
    put("site.pem", more);
    struct result r3;
    load(&r3, r2.m, false, NULL, 0);
    assert_int_equal(r3.rc, 0);
    assert_int_equal(r3.st.certs_parsed, 1);
    assert_int_equal(r3.st.certs_reused, 1);
    assert_string_not_equal(rc_model_certificate(r3.m, "site")->meta.digest, b->meta.digest);
    done(&r3);
    free(more);
    free(pem);
    done(&r2);
    done(&r);
}

/* The api listener with two rules: "one" forwards to ga, "two" to gb and
 * gc (a rule with one invalid group of several is left out whole). */
static const char api_two_rules[] =
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
    "spec:\n  instance: edge\n  protocol: HTTPS\n  port: 8443\n"
    "  tls: {certificate: site}\n  defaultAction: {forward: {serverGroup: ga}}\n---\n"
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
    "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8081\n"
    "  defaultAction: {forward: {serverGroup: gb}}\n"
    "  rules:\n"
    "    - {name: one, priority: 10, conditions: {path: [/one]},\n"
    "       actions: {forward: {serverGroups: [{name: ga}]}}}\n"
    "    - {name: two, priority: 20, conditions: {path: [/two]},\n"
    "       actions: {forward: {serverGroups: [{name: gb, weight: 50}, {name: gc, weight: "
    "50}]}}}\n";

static const char group_gc[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gc}\n"
                               "spec:\n  servers:\n    - {address: 127.0.0.1, port: %d}\n";

static const struct rc_err *rule_warning(const struct rc_errs *e)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].msg && strstr(e->v[i].msg, "RuleContained"))
            return &e->v[i];
    return NULL;
}

static const char api_mirror_rule[] =
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
    "spec:\n  instance: edge\n  protocol: HTTPS\n  port: 8443\n"
    "  tls: {certificate: site}\n  defaultAction: {forward: {serverGroup: ga}}\n---\n"
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: api}\n"
    "spec:\n  instance: edge\n  protocol: HTTP\n  port: 8081\n"
    "  defaultAction: {forward: {serverGroup: gb}}\n"
    "  rules:\n"
    "    - {name: one, priority: 10, conditions: {path: [/one]},\n"
    "       actions: {forward: {serverGroups: [{name: ga}]}}}\n"
    "    - {name: two, priority: 20, conditions: {path: [/two]},\n"
    "       actions: {forward: {serverGroups: [{name: gb}]}, trafficMirror: {serverGroups: "
    "[{name: gc}]}}}\n";

/* A rule whose mirror group is invalid and has no version is contained the
 * same way: the listener serves its other rule, the rule is reported. */
static void test_rule_with_invalid_mirror_group_is_contained(void **state)
{
    struct rc_model *m0 = base_model();
    char gc[256];
    snprintf(gc, sizeof gc, group_gc, 70000);
    put("listeners.yaml", api_mirror_rule);
    put("gc.yaml", gc);
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_non_null(r.m);
    expect_state(&r, "Listener", "api", RC_RES_READY, NULL, NULL, 0);
    const struct rc_listener *li = listener(r.m, "api");
    assert_int_equal(li->n_rules, 1);
    assert_string_equal(li->rules[0].name, "one");
    const struct rc_err *w = rule_warning(&r.errs);
    assert_non_null(w);
    assert_non_null(strstr(w->msg, "rule two (priority 20) refers to ServerGroup gc"));
    /* Fixed: the rule is back with its mirror. */
    snprintf(gc, sizeof gc, group_gc, 9003);
    put("gc.yaml", gc);
    struct result r2;
    load(&r2, r.m, false, NULL, 0);
    assert_int_equal(r2.rc, 0);
    li = listener(r2.m, "api");
    assert_int_equal(li->n_rules, 2);
    assert_ptr_equal(li->rules[1].mirror_group, rc_model_group(r2.m, "gc"));
    done(&r2);
    done(&r);
    rc_model_unref(m0);
    (void)state;
}

/* A rule whose group is invalid and has no version is contained: the
 * listener applies its new version with the other rule, and the rule is
 * reported at its location. Fixing the group brings the rule back; a group
 * that does not exist at all still fails the listener. */
static void test_rule_with_invalid_group_is_contained(void **state)
{
    struct rc_model *m0 = base_model();
    char gc[256];
    snprintf(gc, sizeof gc, group_gc, 70000);
    put("listeners.yaml", api_two_rules);
    put("gc.yaml", gc);
    struct result r;
    load(&r, m0, false, NULL, 0);
    assert_int_equal(r.rc, 1);
    assert_non_null(r.m);
    expect_state(&r, "ServerGroup", "gc", RC_RES_ABSENT, "70000", "gc.yaml", 6);
    expect_state(&r, "Listener", "api", RC_RES_READY, NULL, NULL, 0);
    const struct rc_listener *li = listener(r.m, "api");
    assert_int_equal(li->port, 8081); /* the new version */
    assert_int_equal(li->n_rules, 1);
    assert_string_equal(li->rules[0].name, "one");
    assert_ptr_equal(li->rules[0].action.forward.groups[0], rc_model_group(r.m, "ga"));
    const struct rc_err *w = rule_warning(&r.errs);
    assert_non_null(w);
    assert_int_equal(w->severity, RC_WARNING);
    assert_string_equal(w->kind, "Listener");
    assert_string_equal(w->name, "api");
    assert_string_equal(w->path, "spec.rules[1]");
    assert_non_null(strstr(w->file, "listeners.yaml"));
    assert_int_equal(w->line, 22);
    assert_int_equal(w->col, 7);
    assert_non_null(strstr(w->msg, "rule two (priority 20) refers to ServerGroup gc"));
    assert_non_null(strstr(w->msg, "70000"));

    /* Loading again: the same outcome (the contained listener is rebuilt,
     * not copied). */
    struct result r2;
    load(&r2, r.m, false, NULL, 0);
    assert_int_equal(r2.rc, 1);
    assert_int_equal(listener(r2.m, "api")->n_rules, 1);
    assert_non_null(rule_warning(&r2.errs));
    done(&r2);

    /* The group fixed: the rule is back, nothing is reported. */
    snprintf(gc, sizeof gc, group_gc, 9003);
    put("gc.yaml", gc);
    struct result r3;
    load(&r3, r.m, false, NULL, 0);
    assert_int_equal(r3.rc, 0);
    assert_int_equal(r3.errs.n, 0);
    li = listener(r3.m, "api");
    assert_int_equal(li->n_rules, 2);
    assert_string_equal(li->rules[1].name, "two");
    assert_int_equal(li->rules[1].action.forward.n_groups, 2);
    assert_int_equal(li->rules[1].action.forward.groups[1]->servers[0].port, 9003);

    /* No group gc at all: an error of the listener (as before), which keeps
     * its last good version, the one with both rules (and gc with it). */
    char gcpath[512];
    snprintf(gcpath, sizeof gcpath, "%s/gc.yaml", dir);
    assert_int_equal(unlink(gcpath), 0);
    struct result r4;
    load(&r4, r3.m, false, NULL, 0);
    assert_int_equal(r4.rc, 1);
    expect_state(&r4, "Listener", "api", RC_RES_KEPT, "no ServerGroup named \"gc\"",
                 "listeners.yaml", 23);
    assert_int_equal(listener(r4.m, "api")->n_rules, 2);
    assert_null(rule_warning(&r4.errs));
    done(&r4);
    done(&r3);
    done(&r);
    rc_model_unref(m0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_error_keeps_last_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_certificate_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forced_invalid_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependents_fall_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_if_never_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_instance_is_not_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_reuses_certificate_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_with_invalid_group_is_contained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_with_invalid_mirror_group_is_contained, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
