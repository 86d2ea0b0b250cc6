/* rc_diff_compute: resource by resource, field by field, deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "plan_fixture.h"

/* An exported document whose "resources" is the given JSON text. */
static json_t *doc(const char *resources)
{
    json_error_t err;
    json_t *res = json_loads(resources, 0, &err);
    if (res == NULL)
        fail_msg("bad test JSON at %d:%d: %s", err.line, err.column, err.text);
    json_t *d =
        json_pack("{s:s, s:i, s:o}", "apiVersion", "albd/v1", "generation", 1, "resources", res);
    assert_non_null(d);
    return d;
}

/* Diffs two resource texts (running may be NULL) into d; asserts success. */
static void diff_texts(const char *running, const char *desired, struct rc_diff *d)
{
    json_t *a = running != NULL ? doc(running) : NULL;
    json_t *b = doc(desired);
    rc_diff_init(d);
    assert_int_equal(rc_diff_compute(a, b, d), 0);
    assert_string_equal(d->error, "");
    json_decref(a);
    json_decref(b);
}

static char *dump(const json_t *v)
{
    if (v == NULL)
        return strdup("(none)");
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
}

static void assert_field(const struct rc_diff_field *f, const char *path, const char *old,
                         const char *new_)
{
    assert_string_equal(f->path, path);
    char *o = dump(f->old), *n = dump(f->new);
    assert_string_equal(o, old);
    assert_string_equal(n, new_);
    free(o);
    free(n);
}

#define LISTENER(spec) "{\"Listener\": {\"web\": {\"labels\": {}, \"spec\": " spec "}}}"

static void test_against_nothing_everything_is_created(void **state)
{
    struct rc_diff d;
    diff_texts(NULL,
               "{\"Listener\": {\"b\": {\"labels\": {}, \"spec\": {\"port\": 80}},"
               "               \"a\": {\"labels\": {}, \"spec\": {\"port\": 81}}},"
               " \"Instance\": {\"edge\": {\"labels\": {}, \"spec\": {\"id\": \"x\"}}}}",
               &d);
    assert_true(rc_diff_has_changes(&d));
    assert_int_equal(d.n_changes, 3);
    assert_int_equal(d.n_create, 3);
    assert_int_equal(d.n_update + d.n_delete, 0);
    /* kind order first, then names sorted */
    assert_string_equal(d.changes[0].kind, "Instance");
    assert_string_equal(d.changes[1].name, "a");
    assert_string_equal(d.changes[2].name, "b");
    assert_int_equal(d.changes[1].action, RC_DIFF_CREATE);
    assert_int_equal(d.changes[1].n_fields, 2);
    assert_field(&d.changes[1].fields[0], "labels", "(none)", "{}");
    assert_field(&d.changes[1].fields[1], "spec.port", "(none)", "81");
    rc_diff_cleanup(&d);
    assert_int_equal(d.n_changes, 0);
    rc_diff_cleanup(&d); /* idempotent */
}

static void test_identical_is_no_change(void **state)
{
    struct rc_diff d;
    const char *r = LISTENER("{\"port\": 80, \"tls\": {\"certificate\": \"a\"}}");
    diff_texts(r, r, &d);
    assert_false(rc_diff_has_changes(&d));
    assert_int_equal(d.n_create + d.n_update + d.n_delete, 0);
    rc_diff_cleanup(&d);
}

static void test_scalar_and_nested_changes(void **state)
{
    struct rc_diff d;
    diff_texts(LISTENER("{\"idleTimeoutSeconds\": 15, \"port\": 443,"
                        " \"tls\": {\"certificate\": \"old\", \"strictSni\": false,"
                        "           \"mutualAuthentication\": {\"enabled\": false}}}"),
               LISTENER("{\"idleTimeoutSeconds\": 30, \"port\": 443,"
                        " \"tls\": {\"certificate\": \"new\", \"strictSni\": false,"
                        "           \"mutualAuthentication\": {\"enabled\": true}}}"),
               &d);
    assert_int_equal(d.n_changes, 1);
    assert_int_equal(d.n_update, 1);
    const struct rc_diff_change *c = &d.changes[0];
    assert_int_equal(c->action, RC_DIFF_UPDATE);
    assert_string_equal(c->kind, "Listener");
    assert_string_equal(c->name, "web");
    assert_int_equal(c->n_fields, 3);
    assert_field(&c->fields[0], "spec.idleTimeoutSeconds", "15", "30");
    assert_field(&c->fields[1], "spec.tls.certificate", "\"old\"", "\"new\"");
    assert_field(&c->fields[2], "spec.tls.mutualAuthentication.enabled", "false", "true");
    rc_diff_cleanup(&d);
}

static void test_field_added_and_removed(void **state)
{
    struct rc_diff d;
    diff_texts(LISTENER("{\"port\": 80, \"http2\": true}"),
               LISTENER("{\"port\": 80, \"tls\": {\"certificate\": \"c\"}}"), &d);
    const struct rc_diff_change *c = &d.changes[0];
    assert_int_equal(c->n_fields, 2);
    assert_field(&c->fields[0], "spec.http2", "true", "(none)");
    assert_field(&c->fields[1], "spec.tls", "(none)", "{\"certificate\":\"c\"}");
    rc_diff_cleanup(&d);
}

static void test_type_change(void **state)
{
    struct rc_diff d;
    diff_texts(LISTENER("{\"port\": 80}"), LISTENER("{\"port\": \"80\"}"), &d);
    assert_int_equal(d.n_changes, 1);
    assert_field(&d.changes[0].fields[0], "spec.port", "80", "\"80\"");
    rc_diff_cleanup(&d);
}

#define GROUP(servers)                                                                             \
    "{\"ServerGroup\": {\"web\": {\"labels\": {}, \"spec\": {\"servers\": " servers "}}}}"

static void test_servers_by_identity(void **state)
{
    struct rc_diff d;
    /* reordering is not a change */
    diff_texts(GROUP("[{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 100},"
                     " {\"address\": \"10.0.0.2\", \"port\": 80, \"weight\": 50}]"),
               GROUP("[{\"address\": \"10.0.0.2\", \"port\": 80, \"weight\": 50},"
                     " {\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 100}]"),
               &d);
    assert_false(rc_diff_has_changes(&d));
    rc_diff_cleanup(&d);

    /* a weight change is named by the server, one added and one removed */
    diff_texts(GROUP("[{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 100},"
                     " {\"address\": \"10.0.0.2\", \"port\": 80, \"weight\": 50},"
                     " {\"address\": \"::1\", \"port\": 80, \"weight\": 1}]"),
               GROUP("[{\"address\": \"10.0.0.3\", \"port\": 80, \"weight\": 100},"
                     " {\"address\": \"::1\", \"port\": 80, \"weight\": 1},"
                     " {\"address\": \"10.0.0.2\", \"port\": 80, \"weight\": 0}]"),
               &d);
    assert_int_equal(d.n_changes, 1);
    const struct rc_diff_change *c = &d.changes[0];
    assert_int_equal(c->n_fields, 3);
    assert_field(&c->fields[0], "spec.servers[10.0.0.1:80]",
                 "{\"address\":\"10.0.0.1\",\"port\":80,\"weight\":100}", "(none)");
    assert_field(&c->fields[1], "spec.servers[10.0.0.2:80].weight", "50", "0");
    assert_field(&c->fields[2], "spec.servers[10.0.0.3:80]", "(none)",
                 "{\"address\":\"10.0.0.3\",\"port\":80,\"weight\":100}");
    rc_diff_cleanup(&d);

    /* same address, other port: another server */
    diff_texts(GROUP("[{\"address\": \"::1\", \"port\": 80}]"),
               GROUP("[{\"address\": \"::1\", \"port\": 81}]"), &d);
    assert_int_equal(d.changes[0].n_fields, 2);
    assert_string_equal(d.changes[0].fields[0].path, "spec.servers[[::1]:80]");
    assert_string_equal(d.changes[0].fields[1].path, "spec.servers[[::1]:81]");
    rc_diff_cleanup(&d);
}

/* Duplicate identities cannot be matched: fall back to positions. */
static void test_duplicate_identity_falls_back_to_index(void **state)
{
    struct rc_diff d;
    diff_texts(GROUP("[{\"address\": \"a\", \"port\": 1, \"weight\": 1},"
                     " {\"address\": \"a\", \"port\": 1, \"weight\": 2}]"),
               GROUP("[{\"address\": \"a\", \"port\": 1, \"weight\": 2},"
                     " {\"address\": \"a\", \"port\": 1, \"weight\": 1}]"),
               &d);
    assert_int_equal(d.changes[0].n_fields, 2);
    assert_field(&d.changes[0].fields[0], "spec.servers[0].weight", "1", "2");
    assert_field(&d.changes[0].fields[1], "spec.servers[1].weight", "2", "1");
    rc_diff_cleanup(&d);
}

static void test_rules_by_name(void **state)
{
    struct rc_diff d;
    diff_texts(LISTENER("{\"rules\": [{\"name\": \"api\", \"priority\": 10},"
                        "            {\"name\": \"web\", \"priority\": 20}]}"),
               LISTENER("{\"rules\": [{\"name\": \"web\", \"priority\": 20},"
                        "            {\"name\": \"api\", \"priority\": 10}]}"),
               &d);
    assert_false(rc_diff_has_changes(&d));
    rc_diff_cleanup(&d);
    diff_texts(LISTENER("{\"rules\": [{\"name\": \"api\", \"priority\": 10,"
                        "  \"conditions\": {\"host\": [\"a.example\", \"b.example\"]}}]}"),
               LISTENER("{\"rules\": [{\"name\": \"api\", \"priority\": 11,"
                        "  \"conditions\": {\"host\": [\"b.example\", \"a.example\"]}}]}"),
               &d);
    assert_int_equal(d.changes[0].n_fields, 1);
    assert_field(&d.changes[0].fields[0], "spec.rules[api].priority", "10", "11");
    rc_diff_cleanup(&d);
}

static void test_sets_ignore_order(void **state)
{
    struct rc_diff d;
    diff_texts(LISTENER("{\"tls\": {\"extensionCertificates\": [\"a\", \"b\"],"
                        " \"mutualAuthentication\": {\"caCertificates\": [\"x\", \"y\"]}}}"),
               LISTENER("{\"tls\": {\"extensionCertificates\": [\"b\", \"a\"],"
                        " \"mutualAuthentication\": {\"caCertificates\": [\"y\", \"x\"]}}}"),
               &d);
    assert_false(rc_diff_has_changes(&d));
    rc_diff_cleanup(&d);

    /* a real set change shows both sets, sorted */
    diff_texts(LISTENER("{\"tls\": {\"extensionCertificates\": [\"c\", \"a\"]}}"),
               LISTENER("{\"tls\": {\"extensionCertificates\": [\"b\", \"a\"]}}"), &d);
    assert_int_equal(d.changes[0].n_fields, 1);
    assert_field(&d.changes[0].fields[0], "spec.tls.extensionCertificates", "[\"a\",\"c\"]",
                 "[\"a\",\"b\"]");
    rc_diff_cleanup(&d);
}

/* Ordered arrays (cipher preference) compare by position. */
static void test_ordered_array_by_index(void **state)
{
    struct rc_diff d;
    diff_texts(
        "{\"TLSPolicy\": {\"p\": {\"labels\": {}, \"spec\": {\"ciphers\": [\"A\", \"B\"]}}}}",
        "{\"TLSPolicy\": {\"p\": {\"labels\": {}, \"spec\": {\"ciphers\": [\"B\", \"A\", "
        "\"C\"]}}}}",
        &d);
    const struct rc_diff_change *c = &d.changes[0];
    assert_int_equal(c->n_fields, 3);
    assert_field(&c->fields[0], "spec.ciphers[0]", "\"A\"", "\"B\"");
    assert_field(&c->fields[1], "spec.ciphers[1]", "\"B\"", "\"A\"");
    assert_field(&c->fields[2], "spec.ciphers[2]", "(none)", "\"C\"");
    rc_diff_cleanup(&d);
}

static void test_label_change(void **state)
{
    struct rc_diff d;
    diff_texts("{\"Listener\": {\"web\": {\"labels\": {\"team\": \"web\", \"tier\": \"1\"},"
               " \"spec\": {\"port\": 80}}}}",
               "{\"Listener\": {\"web\": {\"labels\": {\"team\": \"edge\", \"env\": \"prod\"},"
               " \"spec\": {\"port\": 80}}}}",
               &d);
    const struct rc_diff_change *c = &d.changes[0];
    assert_int_equal(c->action, RC_DIFF_UPDATE);
    assert_int_equal(c->n_fields, 3);
    assert_field(&c->fields[0], "labels.env", "(none)", "\"prod\"");
    assert_field(&c->fields[1], "labels.team", "\"web\"", "\"edge\"");
    assert_field(&c->fields[2], "labels.tier", "\"1\"", "(none)");
    rc_diff_cleanup(&d);
}

static void test_delete_and_rename(void **state)
{
    struct rc_diff d;
    diff_texts(
        "{\"Certificate\": {\"legacy\": {\"labels\": {}, \"spec\": {\"type\": \"Server\"}}},"
        " \"ServerGroup\": {\"old-name\": {\"labels\": {}, \"spec\": {\"protocol\": \"HTTP\"}}}}",
        "{\"ServerGroup\": {\"new-name\": {\"labels\": {}, \"spec\": {\"protocol\": \"HTTP\"}}}}",
        &d);
    assert_int_equal(d.n_changes, 3);
    assert_int_equal(d.n_delete, 2);
    assert_int_equal(d.n_create, 1);
    assert_int_equal(d.changes[0].action, RC_DIFF_DELETE);
    assert_string_equal(d.changes[0].kind, "Certificate");
    assert_string_equal(d.changes[0].name, "legacy");
    /* names sorted within a kind: new-name < old-name */
    assert_int_equal(d.changes[1].action, RC_DIFF_CREATE);
    assert_string_equal(d.changes[1].name, "new-name");
    assert_int_equal(d.changes[2].action, RC_DIFF_DELETE);
    assert_string_equal(d.changes[2].name, "old-name");
    /* a deleted resource keeps what it had, on the old side */
    assert_field(&d.changes[2].fields[1], "spec.protocol", "\"HTTP\"", "(none)");
    rc_diff_cleanup(&d);
}

static void test_unknown_kind_after_known(void **state)
{
    struct rc_diff d;
    diff_texts(NULL,
               "{\"Zeta\": {\"z\": {\"spec\": {}}}, \"Alpha\": {\"a\": {\"spec\": {}}},"
               " \"Listener\": {\"l\": {\"spec\": {}}}}",
               &d);
    assert_int_equal(d.n_changes, 3);
    assert_string_equal(d.changes[0].kind, "Listener");
    assert_string_equal(d.changes[1].kind, "Alpha");
    assert_string_equal(d.changes[2].kind, "Zeta");
    assert_field(&d.changes[0].fields[0], "spec", "(none)", "{}");
    rc_diff_cleanup(&d);
}

static void test_rejects_what_is_not_an_export(void **state)
{
    struct rc_diff d;
    rc_diff_init(&d);
    json_t *good = doc("{}");
    json_t *arr = json_array();
    assert_int_equal(rc_diff_compute(arr, good, &d), -1);
    assert_non_null(strstr(d.error, "running"));
    json_t *wrong = json_pack("{s:s, s:{}}", "apiVersion", "v2", "resources");
    assert_int_equal(rc_diff_compute(NULL, wrong, &d), -1);
    assert_non_null(strstr(d.error, "apiVersion"));
    json_t *nores = json_pack("{s:s}", "apiVersion", "albd/v1");
    assert_int_equal(rc_diff_compute(good, nores, &d), -1);
    assert_non_null(strstr(d.error, "resources"));
    json_t *badkind = doc("{\"Listener\": []}");
    assert_int_equal(rc_diff_compute(NULL, badkind, &d), -1);
    json_t *badres = doc("{\"Listener\": {\"x\": 1}}");
    assert_int_equal(rc_diff_compute(NULL, badres, &d), -1);
    assert_non_null(strstr(d.error, "Listener/x"));
    assert_int_equal(d.n_changes, 0);
    /* and a later good call clears the error */
    assert_int_equal(rc_diff_compute(NULL, good, &d), 0);
    assert_string_equal(d.error, "");
    json_decref(good);
    json_decref(arr);
    json_decref(wrong);
    json_decref(nores);
    json_decref(badkind);
    json_decref(badres);
    rc_diff_cleanup(&d);
}

/* Export, dump, load, diff against the same export: nothing to do. The
 * generation and digest are not resources and do not count. */
static void test_round_trip(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    char *text = json_dumps(a, JSON_SORT_KEYS);
    json_t *b = json_loads(text, 0, NULL);
    assert_non_null(b);
    json_object_set_new(b, "generation", json_integer(42));
    json_object_set_new(b, "manifestDigest", json_string("ff"));
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(b, a, &d), 0);
    assert_false(rc_diff_has_changes(&d));
    rc_diff_cleanup(&d);
    free(text);
    json_decref(a);
    json_decref(b);
}

/* Two models with the same content in a different order diff as equal. */
static void test_input_order_does_not_matter(void **state)
{
    struct fixture fx1, fx2;
    fixture_init(&fx1);
    fixture_init(&fx2);
    struct rc_server tmp = fx2.web_servers[0];
    fx2.web_servers[0] = fx2.web_servers[1];
    fx2.web_servers[1] = tmp;
    /* swap the listeners (and their cross pointers stay valid) */
    struct rc_listener l0 = fx2.listeners[0];
    fx2.listeners[0] = fx2.listeners[1];
    fx2.listeners[1] = l0;
    const char *a0 = fx2.addresses[0];
    fx2.addresses[0] = fx2.addresses[1];
    fx2.addresses[1] = a0;
    json_t *a = rc_export_model(&fx1.model), *b = rc_export_model(&fx2.model);
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(a, b, &d), 0);
    assert_false(rc_diff_has_changes(&d));
    rc_diff_cleanup(&d);
    json_decref(a);
    json_decref(b);
}

static void test_model_changes(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    fx.listeners[1].idle_timeout_s = 30;
    fx.listeners[1].tls.certificate = &fx.certs[0];
    memset(fx.certs[2].fingerprint_sha256, 'f', 64);
    fx.certs[2].not_after = 1798761600; /* 2027-01-01 */
    fx.model.n_groups = 1;              /* drop "web" ... */
    fx.listeners[0].default_group = &fx.groups[0];
    fx.listeners[1].default_group = &fx.groups[0];
    json_t *b = rc_export_model(&fx.model);
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(a, b, &d), 0);
    assert_int_equal(d.n_update, 3);
    assert_int_equal(d.n_delete, 1);
    assert_int_equal(d.n_create, 0);
    assert_string_equal(d.changes[0].kind, "Certificate");
    assert_int_equal(d.changes[0].n_fields, 2);
    assert_field(&d.changes[0].fields[0], "spec.notAfter", "\"2026-01-01T00:00:00Z\"",
                 "\"2027-01-01T00:00:00Z\"");
    assert_string_equal(d.changes[0].fields[1].path, "spec.sha256Fingerprint");
    assert_int_equal(d.changes[1].action, RC_DIFF_DELETE);
    assert_string_equal(d.changes[1].name, "web");
    assert_string_equal(d.changes[2].name, "web-http");
    assert_int_equal(d.changes[2].n_fields, 1);
    assert_string_equal(d.changes[3].name, "web-https");
    assert_int_equal(d.changes[3].n_fields, 3);
    assert_field(&d.changes[3].fields[0], "spec.defaultAction.forward.serverGroup", "\"web\"",
                 "\"api\"");
    assert_field(&d.changes[3].fields[1], "spec.idleTimeoutSeconds", "15", "30");
    assert_field(&d.changes[3].fields[2], "spec.tls.certificate", "\"example-com\"",
                 "\"api-example-com\"");
    rc_diff_cleanup(&d);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_nothing_everything_is_created),
        cmocka_unit_test(test_identical_is_no_change),
        cmocka_unit_test(test_scalar_and_nested_changes),
        cmocka_unit_test(test_field_added_and_removed),
        cmocka_unit_test(test_type_change),
        cmocka_unit_test(test_servers_by_identity),
        cmocka_unit_test(test_duplicate_identity_falls_back_to_index),
        cmocka_unit_test(test_rules_by_name),
        cmocka_unit_test(test_sets_ignore_order),
        cmocka_unit_test(test_ordered_array_by_index),
        cmocka_unit_test(test_label_change),
        cmocka_unit_test(test_delete_and_rename),
        cmocka_unit_test(test_unknown_kind_after_known),
        cmocka_unit_test(test_rejects_what_is_not_an_export),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_input_order_does_not_matter),
        cmocka_unit_test(test_model_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
