/* Certificates of a load (cert.c): a one-shot load
 * (rc_load_opts.release_parsed, as `albd validate` does it) keeps only the
 * facts of its certificates and leaves none in the store of parsed
 * certificates, every certificate still with its facts; a load for a
 * process that serves leaves them in the store for its TLS contexts. Both
 * are cold loads, so their certificates are parsed ahead too
 * (certstore.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "reconciler/certstore.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "test_files.h"

/* Enough for a parse ahead (load.c AHEAD_MIN) and the parse threads. */
#define N_CERTS 300

static char dir[256];

static int setup(void **state)
{
    (void)state;
    if (tf_mkdtemp(dir, sizeof dir, "cert") != 0)
        return -1;
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    size_t cap = N_CERTS * 200;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    for (int i = 0; i < N_CERTS; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "%sapiVersion: albd/v1\nkind: Certificate\nmetadata: {name: c%d}\n"
                                "spec:\n  source:\n    files: {certificate: site.pem, "
                                "privateKey: site.key}\n",
                                i ? "---\n" : "", i);
    tf_put(dir, "certs.yaml", text);
    free(text);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rc_certstore_sweep();
    return tf_rm_rf(dir);
}

static size_t store_entries(void)
{
    struct rc_certstore_stats st;
    rc_certstore_stats(&st);
    return st.entries;
}

static void load_checked(bool release)
{
    struct rc_load_opts o = {.now = time(NULL), .strict = true, .release_parsed = release};
    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    int rc = rc_load_dir_ex(dir, &o, &m, &errs, NULL);
    if (rc != 0)
        rc_errs_print(&errs, stderr);
    assert_int_equal(rc, 0);
    assert_non_null(m);
    assert_int_equal(m->n_certificates, N_CERTS);
    for (size_t i = 0; i < m->n_certificates; i++) {
        assert_int_equal(strlen(m->certificates[i]->fingerprint_sha256), 64);
        assert_true(m->certificates[i]->not_after > 0);
    }
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
}

static void a_one_shot_load_leaves_nothing_parsed(void **state)
{
    (void)state;
    rc_certstore_sweep();
    load_checked(true);
    assert_int_equal(store_entries(), 0);
}

static void a_serving_load_keeps_the_parse_for_tls(void **state)
{
    (void)state;
    rc_certstore_sweep();
    load_checked(false);
    assert_int_equal(store_entries(), 1); /* 300 certificates, one PEM */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_one_shot_load_leaves_nothing_parsed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_serving_load_keeps_the_parse_for_tls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
