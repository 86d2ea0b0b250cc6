/* Plan rendering (text and JSON), plus the data-driven cases in
 * tests/data/plan/<case>/: running.json (absent = plan against nothing),
 * desired.json, and the expected plan.txt and plan.json. Run with
 * ALBD_PLAN_REGEN=1 to rewrite the expected files after a deliberate
 * format change (then read the diff before committing it): the output is
 * still compared with the file as it was, and a file that had to be
 * rewritten fails the run, so the variable can never make a changed plan
 * pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/diff.h"
#include "reconciler/export.h"
#include "reconciler/plan.h"
#include "plan_fixture.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(f);
    fclose(m);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *json_plan_text(const struct rc_diff *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    assert_int_equal(rc_plan_write_json(d, m), 0);
    fclose(m);
    return buf;
}

/* Diff of two models' exports; running may be NULL. */
static void diff_models(const struct rc_model *running, const struct rc_model *desired,
                        struct rc_diff *d)
{
    json_t *a = running != NULL ? rc_export_model(running) : NULL;
    json_t *b = rc_export_model(desired);
    assert_non_null(b);
    rc_diff_init(d);
    assert_int_equal(rc_diff_compute(a, b, d), 0);
    json_decref(a);
    json_decref(b);
}

static void test_no_changes(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    struct rc_diff d;
    diff_models(&fx.model, &fx.model, &d);
    char *text = rc_plan_text(&d);
    assert_string_equal(text, "No changes. The running configuration matches the manifests.\n");
    free(text);
    json_t *j = rc_plan_json(&d);
    assert_string_equal(json_string_value(json_object_get(j, "format_version")), "1");
    assert_int_equal(json_array_size(json_object_get(j, "changes")), 0);
    json_t *s = json_object_get(j, "summary");
    assert_int_equal(json_integer_value(json_object_get(s, "add")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "change")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "destroy")), 0);
    json_decref(j);
    rc_diff_cleanup(&d);
}

/* The layout of the brief, line by line. */
static void test_text_layout(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    fx.listeners[1].idle_timeout_s = 30;
    fx.listeners[1].meta.n_labels = 0;
    fx.model.n_certificates = 2; /* example-com goes away... */
    fx.listeners[1].tls.certificate = &fx.certs[0];
    json_t *b = rc_export_model(&fx.model);
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(a, b, &d), 0);
    char *text = rc_plan_text(&d);
    assert_string_equal(text,
                        "  - Certificate/example-com\n"
                        "  ~ Listener/web-https\n"
                        "      labels.team: \"web\" \u2192 (none)\n"
                        "      spec.idleTimeoutSeconds: 15 \u2192 30\n"
                        "      spec.tls.certificate: \"example-com\" \u2192 \"api-example-com\"\n"
                        "\n"
                        "Plan: 0 to add, 1 to change, 1 to destroy.\n");
    free(text);
    rc_diff_cleanup(&d);
    json_decref(a);
    json_decref(b);
}

static void test_create_drops_spec_prefix(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    struct rc_model only = {0};
    only.groups = &fx.groups[0];
    only.n_groups = 1;
    struct rc_diff d;
    diff_models(NULL, &only, &d);
    char *text = rc_plan_text(&d);
    assert_non_null(text);
    assert_true(
        strncmp(text, "  + ServerGroup/api\n      ", strlen("  + ServerGroup/api\n      ")) == 0);
    assert_non_null(strstr(text, "\n      healthCheck.codes: [\"http_2xx\", \"http_3xx\"]\n"));
    assert_non_null(strstr(text, "\n      slowStart.enabled: false\n"));
    assert_null(strstr(text, "labels"));
    assert_non_null(strstr(text, "\n      protocol: \"HTTP\"\n"));
    assert_non_null(strstr(text, "\n      servers[10.0.1.1:9000].weight: 100\n"));
    assert_null(strstr(text, "spec."));
    assert_non_null(strstr(text, "\nPlan: 1 to add, 0 to change, 0 to destroy.\n"));
    free(text);
    rc_diff_cleanup(&d);
}

static void test_json_form(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    fx.listeners[0].port = 8080;
    fx.model.n_listeners = 1; /* web-https goes */
    fx.model.n_instances = 0; /* and the listener keeps a pointer: name only */
    json_t *b = rc_export_model(&fx.model);
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(a, b, &d), 0);
    json_t *j = rc_plan_json(&d);
    assert_non_null(j);
    json_t *changes = json_object_get(j, "changes");
    assert_int_equal(json_array_size(changes), 3);
    json_t *c0 = json_array_get(changes, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "action")), "delete");
    assert_string_equal(json_string_value(json_object_get(c0, "kind")), "Instance");
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "edge");
    json_t *c1 = json_array_get(changes, 1);
    assert_string_equal(json_string_value(json_object_get(c1, "action")), "update");
    json_t *f = json_array_get(json_object_get(c1, "fields"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "path")), "spec.port");
    assert_int_equal(json_integer_value(json_object_get(f, "old")), 80);
    assert_int_equal(json_integer_value(json_object_get(f, "new")), 8080);
    json_t *c2 = json_array_get(changes, 2);
    assert_string_equal(json_string_value(json_object_get(c2, "action")), "delete");
    f = json_array_get(json_object_get(c2, "fields"), 0);
    assert_true(json_is_null(json_object_get(f, "new")));
    json_t *s = json_object_get(j, "summary");
    assert_int_equal(json_integer_value(json_object_get(s, "add")), 0);
    assert_int_equal(json_integer_value(json_object_get(s, "change")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "destroy")), 2);
    json_decref(j);
    rc_diff_cleanup(&d);
    json_decref(a);
    json_decref(b);
}

static void test_write_matches_string(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    struct rc_diff d;
    diff_models(NULL, &fx.model, &d);
    char *text = rc_plan_text(&d);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_int_equal(rc_plan_write_text(&d, m), 0);
    fclose(m);
    assert_string_equal(buf, text);
    free(buf);
    char *js = json_plan_text(&d);
    json_t *parsed = json_loads(js, 0, NULL);
    json_t *direct = rc_plan_json(&d);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, direct));
    assert_int_equal(js[strlen(js) - 1], '\n');
    json_decref(parsed);
    json_decref(direct);
    free(js);
    free(text);
    rc_diff_cleanup(&d);
}

static void assert_no_secret(const char *text)
{
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_null(strstr(text, FX_KEY_BODY));
    assert_null(strstr(text, "BEGIN CERTIFICATE"));
    assert_null(strstr(text, FX_CERT_BODY));
}

/* Whatever the plan says about certificates, no key byte is in it: not on
 * create, not on update (a new key with a new certificate), not on delete. */
static void test_no_private_key_in_plan(void **state)
{
    struct fixture fx, fx2;
    fixture_init(&fx);
    fixture_init(&fx2);
    static const char other_key[] = "-----BEGIN EC PRIVATE KEY-----\nOTHERKEYBYTES\n"
                                    "-----END EC PRIVATE KEY-----\n";
    fx2.certs[2].key_pem = other_key;
    fx2.certs[2].key_pem_len = strlen(other_key);
    memset(fx2.certs[2].fingerprint_sha256, '9', 64);
    fx2.certs[2].source = RC_CERT_SOURCE_INLINE;
    fx2.model.n_certificates = 1;
    fx2.certs[0] = fx2.certs[2];
    fx2.listeners[1].tls.certificate = &fx2.certs[0];
    fx2.listeners[1].tls.n_extension_certificates = 0;
    fx2.listeners[1].tls.mutual.n_ca_certificates = 0;
    const struct rc_model *pairs[][2] = {
        {NULL, &fx.model}, {&fx.model, &fx2.model}, {&fx2.model, &fx.model}};
    for (size_t i = 0; i < 3; i++) {
        struct rc_diff d;
        diff_models(pairs[i][0], pairs[i][1], &d);
        assert_true(rc_diff_has_changes(&d));
        char *text = rc_plan_text(&d);
        char *js = json_plan_text(&d);
        assert_no_secret(text);
        assert_no_secret(js);
        assert_null(strstr(text, "OTHERKEYBYTES"));
        assert_null(strstr(js, "OTHERKEYBYTES"));
        /* certificates are still described, by their facts */
        assert_non_null(strstr(text, "Certificate/"));
        free(text);
        free(js);
        rc_diff_cleanup(&d);
    }
}

/* Same input, same bytes: twice, and whatever order the model lists things. */
static void test_deterministic(void **state)
{
    struct fixture fx1, fx2;
    fixture_init(&fx1);
    fixture_init(&fx2);
    struct rc_server tmp = fx2.web_servers[0];
    fx2.web_servers[0] = fx2.web_servers[1];
    fx2.web_servers[1] = tmp;
    struct rc_certificate c0 = fx2.certs[0];
    fx2.certs[0] = fx2.certs[2];
    fx2.certs[2] = c0;
    fx2.listeners[1].tls.certificate = &fx2.certs[0];
    fx2.ext_certs[0] = &fx2.certs[2];
    struct rc_diff d1, d2, d3;
    diff_models(NULL, &fx1.model, &d1);
    diff_models(NULL, &fx1.model, &d2);
    diff_models(NULL, &fx2.model, &d3);
    char *t1 = rc_plan_text(&d1), *t2 = rc_plan_text(&d2), *t3 = rc_plan_text(&d3);
    assert_string_equal(t1, t2);
    assert_string_equal(t1, t3);
    char *j1 = json_plan_text(&d1), *j3 = json_plan_text(&d3);
    assert_string_equal(j1, j3);
    free(t1);
    free(t2);
    free(t3);
    free(j1);
    free(j3);
    rc_diff_cleanup(&d1);
    rc_diff_cleanup(&d2);
    rc_diff_cleanup(&d3);
}

/* Allocation failures while diffing and rendering come back as errors with
 * nothing half-built left behind (ASan checks the leaks). */
static void test_out_of_memory(void **state)
{
    struct fixture fx;
    fixture_init(&fx);
    json_t *a = rc_export_model(&fx.model);
    fx.listeners[1].tls.n_extension_certificates = 0; /* a set change needs allocations */
    fx.web_servers[1].weight = 1;
    json_t *b = rc_export_model(&fx.model);
    int failures = 0;
    for (long n = 0;; n++) {
        struct rc_diff d;
        rc_diff_init(&d);
        fx_oom_arm(n);
        int rc = rc_diff_compute(a, b, &d);
        json_t *pj = rc == 0 ? rc_plan_json(&d) : NULL;
        fx_oom_disarm();
        if (rc != 0) {
            assert_string_equal(d.error, "out of memory");
            assert_int_equal(d.n_changes, 0);
            failures++;
        } else if (pj == NULL) {
            failures++;
        }
        rc_diff_cleanup(&d);
        if (pj != NULL) {
            assert_int_equal(json_array_size(json_object_get(pj, "changes")), 2);
            json_decref(pj);
            break;
        }
    }
    assert_true(failures > 2);
    json_decref(a);
    json_decref(b);
}

static json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    return j;
}

/* Compares got with the expected file at path. With regen, a missing or
 * different file is rewritten and the test still fails: the comparison is
 * always with the file as it was before this run. */
static void check_golden(const char *path, const char *got, bool regen)
{
    char *want = read_text(path);
    bool missing = want == NULL;
    bool same = !missing && strcmp(want, got) == 0;
    free(want);
    if (same)
        return;
    if (regen) {
        write_text(path, got);
        fail_msg("%s: rewritten (ALBD_PLAN_REGEN); review the diff, then run again without it",
                 path);
    }
    if (missing)
        fail_msg("%s: missing (run with ALBD_PLAN_REGEN=1)", path);
    fail_msg("%s differs; got:\n%s", path, got);
}

static void run_case(const char *dir, bool regen)
{
    char path[2048]; /* room for the case directory (< 1024) and a file name */
    snprintf(path, sizeof path, "%s/running.json", dir);
    FILE *probe = fopen(path, "r");
    json_t *running = NULL;
    if (probe != NULL) {
        fclose(probe);
        running = load_json(path);
    }
    snprintf(path, sizeof path, "%s/desired.json", dir);
    json_t *desired = load_json(path);
    struct rc_diff d;
    rc_diff_init(&d);
    assert_int_equal(rc_diff_compute(running, desired, &d), 0);
    char *text = rc_plan_text(&d);
    char *js = json_plan_text(&d);
    assert_non_null(text);
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    check_golden(path, text, regen);
    snprintf(path, sizeof path, "%s/plan.json", dir);
    check_golden(path, js, regen);
    free(text);
    free(js);
    rc_diff_cleanup(&d);
    json_decref(running);
    json_decref(desired);
}

static void test_data_cases(void **state)
{
    const char *root = ALBD_TEST_DATA "/plan";
    bool regen = getenv("ALBD_PLAN_REGEN") != NULL;
    DIR *dir = opendir(root);
    assert_non_null(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
        run_case(sub, regen);
        n++;
    }
    closedir(dir);
    assert_true(n >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_changes),
        cmocka_unit_test(test_text_layout),
        cmocka_unit_test(test_create_drops_spec_prefix),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_write_matches_string),
        cmocka_unit_test(test_no_private_key_in_plan),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
