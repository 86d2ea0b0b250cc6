/* reconciler/rules.c: rules come out sorted by priority with their
 * conditions as the proxy matches them (hosts lowercased, methods as
 * bits), a default redirect or fixed response, the HTTPS-only redirect
 * rule, and a copied listener whose rules point at the new model's
 * groups (the copy outlives the model it was copied from: run under
 * ASan). Invalid rules and their located errors: tests/data/invalid/rules. */
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
#include "reconciler/model.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char dir[256];

static const char GROUPS[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                             "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n---\n"
                             "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                             "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080}\n";

static const char LISTENER[] =
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
    "spec:\n  protocol: HTTP\n  port: 8080\n"
    "  defaultAction: {redirect: {protocol: HTTPS, port: \"443\", code: 301}}\n"
    "  rules:\n"
    "    - {name: late, priority: 50, conditions: {host: [API.Example.com], method: [GET, PUT]},\n"
    "       actions: {forward: {serverGroups: [{name: ga, weight: 80}, {name: gb, weight: 20}]}}}\n"
    "    - {name: early, priority: 5, conditions: {path: [\"/down\"]},\n"
    "       actions: {fixedResponse: {code: 503, contentType: application/json, content: "
    "\"{}\"}}}\n";

static int setup(void **state)
{
    (void)state;
    if (tf_mkdtemp(dir, sizeof dir, "rules") != 0)
        return -1;
    tf_put(dir, "groups.yaml", GROUPS);
    tf_put(dir, "listener.yaml", LISTENER);
    tf_settle();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(dir);
}

static void rules_are_built_in_priority_order(void **state)
{
    (void)state;
    struct tf_result a = tf_load(dir, NULL, NULL, NULL);
    assert_int_equal(a.rc, 0);
    const struct rc_listener *l = &a.m->listeners[0];
    assert_int_equal(l->n_rules, 2);
    assert_string_equal(l->rules[0].name, "early");
    assert_int_equal(l->rules[0].action.kind, RC_ACTION_FIXED);
    assert_int_equal(l->rules[0].action.fixed.code, 503);
    assert_string_equal(l->rules[0].action.fixed.content_type, "application/json");
    assert_string_equal(l->rules[1].name, "late");
    assert_string_equal(l->rules[1].hosts[0], "api.example.com");
    assert_int_equal(l->rules[1].methods, RC_METHOD_GET | RC_METHOD_PUT);
    assert_int_equal(l->rules[1].action.forward.n_groups, 2);
    assert_ptr_equal(l->rules[1].action.forward.groups[1], rc_model_group(a.m, "gb"));
    assert_int_equal(l->rules[1].action.forward.weights[1], 20);
    assert_null(l->default_group);
    assert_non_null(l->default_action);
    assert_int_equal(l->default_action->kind, RC_ACTION_REDIRECT);
    assert_string_equal(l->default_action->redirect.protocol, "https");
    assert_string_equal(l->default_action->redirect.port, "443");
    assert_string_equal(l->default_action->redirect.path, "${path}");
    tf_done(&a);
}

/* A group sorting before the others moves them in the model's array: the
 * copied listener's rules must follow, not keep the old model's. */
static void a_copied_listener_points_at_the_new_groups(void **state)
{
    (void)state;
    struct tf_result a = tf_load(dir, NULL, NULL, NULL);
    assert_int_equal(a.rc, 0);
    char more[1024];
    snprintf(more, sizeof more,
             "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: a0}\n"
             "spec:\n  servers:\n  - {address: 10.0.0.9, port: 8080}\n---\n%s",
             GROUPS);
    tf_put(dir, "groups.yaml", more);
    tf_settle();
    struct tf_result b = tf_load(dir, a.m, NULL, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.resources_copied, 3); /* ga, gb and the listener */
    const struct rc_listener *l = &b.m->listeners[0];
    /* Copied (the same strings), with a rules array of its own. */
    assert_ptr_equal(l->rules[1].name, a.m->listeners[0].rules[1].name);
    assert_ptr_not_equal(l->rules, a.m->listeners[0].rules);
    assert_ptr_not_equal(rc_model_group(b.m, "gb"), rc_model_group(a.m, "gb"));
    tf_done(&a); /* the copy outlives what it was copied from */
    assert_ptr_equal(l->rules[1].action.forward.groups[0], rc_model_group(b.m, "ga"));
    assert_ptr_equal(l->rules[1].action.forward.groups[1], rc_model_group(b.m, "gb"));
    assert_string_equal(l->rules[1].action.forward.groups[1]->meta.name, "gb");
    assert_string_equal(l->rules[0].action.fixed.content, "{}");
    tf_done(&b);
}

static void https_listeners_redirect_only_to_https(void **state)
{
    (void)state;
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    tf_put(dir, "certs.yaml",
           "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
           "spec:\n  source:\n    files: {certificate: site.pem, privateKey: site.key}\n");
    tf_put(dir, "listener.yaml",
           "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\n"
           "spec:\n  protocol: HTTPS\n  port: 8443\n  tls: {certificate: site}\n"
           "  defaultAction: {forward: {serverGroup: ga}}\n"
           "  rules:\n"
           "    - {name: down, priority: 1, conditions: {path: [/x]},\n"
           "       actions: {redirect: {protocol: HTTP, host: b.example.com}}}\n");
    tf_settle();
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct tf_result a = tf_load(dir, NULL, NULL, &errs);
    assert_int_not_equal(a.rc, 0);
    char line[512];
    bool found = false;
    for (size_t i = 0; i < errs.n; i++) {
        rc_err_format(&errs.v[i], line, sizeof line);
        if (strstr(line, "listener.yaml:11:39: error: spec.rules[0].actions.redirect.protocol: "
                         "HTTP: an HTTPS listener redirects only to HTTPS"))
            found = true;
        else
            fprintf(stderr, "%s\n", line);
    }
    assert_true(found);
    rc_errs_cleanup(&errs);
    tf_done(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rules_are_built_in_priority_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_copied_listener_points_at_the_new_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(https_listeners_redirect_only_to_https, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
