/* Resource envelopes (meta.c): labels, metadata.annotations and
 * metadata.namespace land in the model sorted and in /config's export;
 * neither annotations nor namespace are in the resource digest; the
 * schema bounds them; a namespace does not separate names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/err.h"
#include "reconciler/export.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    return tf_mkdtemp(tmpdir, sizeof(tmpdir), "meta");
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(tmpdir);
}

static const char group_yaml[] =
    "apiVersion: albd/v1\n"
    "kind: ServerGroup\n"
    "metadata:\n"
    "  name: web\n"
    "  namespace: shop\n"
    "  labels: {team: web}\n"
    "  annotations:\n"
    "    kustomize.config.k8s.io/id: \"kind: ServerGroup\"\n"
    "    argocd.argoproj.io/tracking-id: \"shop:albd/ServerGroup:shop/web\"\n"
    "    a_note: \"\"\n"
    "spec:\n"
    "  servers: [{address: 127.0.0.1, port: 8081}]\n";

static struct rc_model *load(const char *text, struct rc_errs *errs)
{
    tf_put(tmpdir, "m.yaml", text);
    struct rc_model *m = NULL;
    rc_errs_init(errs);
    rc_load_dir(tmpdir, time(NULL), &m, errs);
    return m;
}

static void test_annotations_and_namespace_in_model(void **state)
{
    (void)state;
    struct rc_errs errs;
    struct rc_model *m = load(group_yaml, &errs);
    if (m == NULL)
        rc_errs_print(&errs, stderr);
    assert_non_null(m);
    assert_int_equal(errs.n, 0);
    const struct rc_server_group *g = rc_model_group(m, "web");
    assert_non_null(g);
    assert_string_equal(g->meta.ns, "shop");
    assert_int_equal(g->meta.n_labels, 1);
    assert_int_equal(g->meta.n_annotations, 3);
    /* Sorted by key. */
    assert_string_equal(g->meta.annotations[0].key, "a_note");
    assert_string_equal(g->meta.annotations[0].value, "");
    assert_string_equal(g->meta.annotations[1].key, "argocd.argoproj.io/tracking-id");
    assert_string_equal(g->meta.annotations[1].value, "shop:albd/ServerGroup:shop/web");
    assert_string_equal(g->meta.annotations[2].key, "kustomize.config.k8s.io/id");

    /* /config shows them beside the labels. */
    json_t *ex = rc_export_model(m);
    assert_non_null(ex);
    json_t *res =
        json_object_get(json_object_get(json_object_get(ex, "resources"), "ServerGroup"), "web");
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "namespace")), "shop");
    json_t *ann = json_object_get(res, "annotations");
    assert_int_equal(json_object_size(ann), 3);
    assert_string_equal(json_string_value(json_object_get(ann, "argocd.argoproj.io/tracking-id")),
                        "shop:albd/ServerGroup:shop/web");
    /* A resource without them has neither key (an older /config compares
     * equal), and still has its labels. */
    json_t *inst =
        json_object_get(json_object_get(json_object_get(ex, "resources"), "Instance"), "default");
    assert_non_null(inst);
    assert_null(json_object_get(inst, "annotations"));
    assert_null(json_object_get(inst, "namespace"));
    assert_non_null(json_object_get(inst, "labels"));
    json_decref(ex);

    char digest[65];
    memcpy(digest, g->meta.digest, sizeof(digest));
    rc_model_unref(m);
    rc_errs_cleanup(&errs);

    /* Other annotations and another namespace: the same resource for the
     * proxy (equal digest), another for /config. */
    char *changed = strdup(group_yaml);
    assert_non_null(changed);
    char *p = strstr(changed, "namespace: shop");
    memcpy(p, "namespace: prod", 15);
    p = strstr(changed, "a_note: \"\"");
    memcpy(p, "b_note: \"\"", 10);
    m = load(changed, &errs);
    free(changed);
    assert_non_null(m);
    g = rc_model_group(m, "web");
    assert_string_equal(g->meta.ns, "prod");
    assert_string_equal(g->meta.annotations[0].key, "argocd.argoproj.io/tracking-id");
    assert_string_equal(g->meta.annotations[2].key, "kustomize.config.k8s.io/id");
    assert_string_equal(g->meta.annotations[1].key, "b_note");
    assert_string_equal(g->meta.digest, digest);
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

/* What the schema refuses, each at its node. */
static void test_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *metadata;
        const char *want; /* in the one error */
    } bad[] = {
        {"{name: web, annotations: {a: 1}}", "metadata.annotations.a: expected string"},
        {"{name: web, annotations: [a]}", "metadata.annotations: expected object"},
        {"{name: web, annotations: {\"-bad\": x}}", "metadata.annotations"},
        {"{name: web, annotations: {\"UPPER.example/x\": x}}", "metadata.annotations"},
        {"{name: web, namespace: Shop}", "metadata.namespace"},
        {"{name: web, namespace: \"\"}", "metadata.namespace"},
        {"{name: web, namespace: 7}", "metadata.namespace: expected string"},
        {"{name: web, uid: x}", "metadata.uid: unknown field"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: %s\n"
                 "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n",
                 bad[i].metadata);
        struct rc_errs errs;
        struct rc_model *m = load(text, &errs);
        assert_null(m);
        assert_true(errs.n >= 1);
        char line[512];
        rc_err_format(&errs.v[0], line, sizeof(line));
        if (strstr(line, bad[i].want) == NULL || strncmp(line, tmpdir, strlen(tmpdir)) != 0 ||
            strstr(line, ":3:") == NULL)
            fail_msg("case %zu: want \"%s\" located on line 3, got \"%s\"", i, bad[i].want, line);
        rc_errs_cleanup(&errs);
    }
    /* At most 64 annotations. */
    char text[8192];
    int n = snprintf(text, sizeof(text),
                     "apiVersion: albd/v1\nkind: ServerGroup\nmetadata:\n  name: web\n"
                     "  annotations:\n");
    for (int i = 0; i < 65; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "    k%d: v\n", i);
    snprintf(text + n, sizeof(text) - (size_t)n,
             "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n");
    struct rc_errs errs;
    struct rc_model *m = load(text, &errs);
    assert_null(m);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].msg, "64"));
    rc_errs_cleanup(&errs);
}

/* A namespace does not separate names: the same kind and name in two
 * namespaces is a duplicate, located, and says why. */
static void test_namespace_does_not_separate_names(void **state)
{
    (void)state;
    static const char two[] =
        "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web, namespace: a}\n"
        "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n"
        "---\n"
        "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web, namespace: b}\n"
        "spec: {servers: [{address: 127.0.0.1, port: 8082}]}\n";
    struct rc_errs errs;
    struct rc_model *m = load(two, &errs);
    assert_null(m);
    assert_int_equal(rc_errs_count_errors(&errs), 1);
    char line[1024];
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_non_null(strstr(line, "m.yaml:8:18: error: metadata.name: duplicate ServerGroup name "
                                 "\"web\" (first defined at "));
    assert_non_null(strstr(line, "m.yaml:1:1); a namespace does not separate names"));
    rc_errs_cleanup(&errs);

    /* The same namespace: the message as before. */
    char *same = strdup(two);
    assert_non_null(same);
    char *p = strstr(same, "namespace: b");
    p[11] = 'a';
    m = load(same, &errs);
    free(same);
    assert_null(m);
    rc_err_format(&errs.v[0], line, sizeof(line));
    assert_non_null(strstr(line, "duplicate ServerGroup name \"web\""));
    assert_null(strstr(line, "namespace"));
    rc_errs_cleanup(&errs);

    /* References name no namespace: they resolve in the whole folder. */
    static const char ref[] =
        "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web, namespace: a}\n"
        "spec: {servers: [{address: 127.0.0.1, port: 8081}]}\n"
        "---\n"
        "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: l, namespace: b}\n"
        "spec: {protocol: HTTP, port: 8080, defaultAction: {forward: {serverGroup: web}}}\n";
    m = load(ref, &errs);
    if (m == NULL)
        rc_errs_print(&errs, stderr);
    assert_non_null(m);
    assert_int_equal(m->n_listeners, 1);
    assert_string_equal(m->listeners[0].default_group->meta.name, "web");
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_annotations_and_namespace_in_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespace_does_not_separate_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
