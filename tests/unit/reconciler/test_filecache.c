/* Certificate and key files are read once per change (filecache.c): an
 * unchanged file is not read again, a rewritten or replaced one is, a key
 * shared by several certificates is read once per load, and a model whose
 * certificates came from its predecessor's bytes outlives it. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/filecache.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char dir[256];

static char *read_all(const char *path, size_t *len)
{
    return tf_read_all(path, len);
}

static void path_of(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void put(const char *name, const char *text)
{
    tf_put(dir, name, text);
}

static void copy_in(const char *from, const char *name)
{
    tf_copy_in(dir, from, name);
}

/* Files written so far are settled for the next loads (test_files.h). */
static void settle(void)
{
    tf_settle();
}

static const char CERTS[] = "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
                            "spec:\n  source:\n    files: {certificate: site.pem, privateKey: "
                            "site.key}\n---\napiVersion: albd/v1\nkind: Certificate\n"
                            "metadata: {name: site2}\nspec:\n  source:\n    files: "
                            "{certificate: site.pem, privateKey: site.key}\n---\n"
                            "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: corp-ca}\n"
                            "spec:\n  type: CA\n  source:\n    files: {certificate: ca.pem}\n";

static int setup(void **state)
{
    (void)state;
    if (tf_mkdtemp(dir, sizeof(dir), "filecache") < 0)
        return -1;
    put("certs.yaml", CERTS);
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    copy_in(ALBD_TEST_DATA "/certs/test-only-ca.pem", "ca.pem");
    settle();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(dir);
}

static struct tf_result load(const struct rc_model *prev)
{
    return tf_load(dir, prev, NULL, NULL);
}

static void assert_same_pem(const struct rc_model *m, const char *name, const char *file)
{
    const struct rc_certificate *c = rc_model_certificate(m, name);
    assert_non_null(c);
    size_t len;
    char *want = read_all(file, &len);
    assert_int_equal(c->cert_pem_len, len);
    assert_memory_equal(c->cert_pem, want, len);
    free(want);
}

static void unchanged_files_are_not_read_again(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.rc, 0);
    /* site.pem, site.key (shared by two certificates: read once), ca.pem */
    assert_int_equal(a.st.files_read, 3);
    assert_int_equal(a.st.files_reused, 0);
    struct tf_result b = load(a.m);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.files_read, 0);
    assert_int_equal(b.st.files_reused, 3);
    assert_int_equal(b.m->n_certificates, 3);
    assert_same_pem(b.m, "site", ALBD_TEST_DATA "/certs/test-only-server.pem");
    assert_same_pem(b.m, "corp-ca", ALBD_TEST_DATA "/certs/test-only-ca.pem");
    assert_string_equal(b.m->digest, a.m->digest);
    tf_done(&a);
    tf_done(&b);
}

static void a_rewritten_file_is_read_again_until_it_settles(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.rc, 0);
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem"); /* same bytes, new ctime */
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.files_read, 1);
    assert_int_equal(b.st.files_reused, 2);
    /* Read within the settle window: a second write in the same timestamp
     * tick would be invisible, so the next load reads it again. */
    struct tf_result c = load(b.m);
    assert_int_equal(c.st.files_read, 1);
    settle();
    struct tf_result d = load(c.m);
    assert_int_equal(d.st.files_read, 1); /* read once more, now settled */
    struct tf_result e = load(d.m);
    assert_int_equal(e.st.files_read, 0);
    assert_int_equal(e.st.files_reused, 3);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
    tf_done(&e);
}

/* An editor's save by rename: same size, mtime copied over, new inode. */
static void a_file_replaced_by_rename_with_the_same_size_and_mtime_is_read(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.rc, 0);
    char site[512], tmp[512];
    path_of("site.key", site, sizeof(site));
    path_of("site.key.new", tmp, sizeof(tmp));
    struct stat before, after;
    assert_int_equal(stat(site, &before), 0);
    copy_in(ALBD_TEST_DATA "/certs/test-only-server.key", "site.key.new");
    struct timespec times[2] = {before.st_atim, before.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, tmp, times, 0), 0);
    assert_int_equal(rename(tmp, site), 0);
    assert_int_equal(stat(site, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    assert_true(after.st_ino != before.st_ino);
    struct tf_result b = load(a.m);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.files_read, 1);
    assert_int_equal(b.st.files_reused, 2);
    tf_done(&a);
    tf_done(&b);
}

/* A changed key is seen: reusing stale bytes would hide the mismatch. */
static void a_changed_key_file_is_seen(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.rc, 0);
    copy_in(ALBD_TEST_DATA "/certs/test-only-other.key", "site.key");
    struct tf_result b = load(a.m);
    assert_int_equal(b.rc, 1); /* contained: both certificates keep their last good version */
    assert_int_equal(b.st.files_read, 1);
    const struct rc_res_status *s = rc_status_find(&b.st, "Certificate", "site");
    assert_non_null(s);
    assert_int_equal(s->state, RC_RES_KEPT);
    assert_non_null(strstr(s->message, "does not match"));
    tf_done(&a);
    tf_done(&b);
}

/* A model built from its predecessor's bytes owns what it holds: the
 * predecessor may go first (ASan sees any use after free). */
static void a_model_outlives_the_one_it_reused_from(void **state)
{
    (void)state;
    struct tf_result a = load(NULL);
    assert_int_equal(a.rc, 0);
    struct tf_result b = load(a.m);
    assert_int_equal(b.st.files_reused, 3);
    tf_done(&a);
    const struct rc_certificate *c = rc_model_certificate(b.m, "site");
    assert_non_null(c);
    assert_int_equal(strlen(c->key_pem), c->key_pem_len);
    assert_int_equal(strlen(c->cert_pem), c->cert_pem_len);
    struct tf_result d = load(b.m); /* reuses what b kept */
    assert_int_equal(d.st.files_reused, 3);
    tf_done(&b);
    c = rc_model_certificate(d.m, "site2");
    assert_non_null(c);
    assert_int_equal(strlen(c->key_pem), c->key_pem_len);
    assert_same_pem(d.m, "site2", ALBD_TEST_DATA "/certs/test-only-server.pem");
    tf_done(&d);
}

static void the_settle_rule(void **state)
{
    (void)state;
    struct timespec start = {1000, 500000000};
    struct rc_fid id = {.mtim = {1000, 0}, .ctim = {1000, 0}};
    assert_true(rc_fid_settled(&id, &start));
    id.ctim = (struct timespec){1000, 450000000}; /* 50 ms before the load */
    assert_false(rc_fid_settled(&id, &start));
    id.ctim = id.mtim;
    id.mtim = (struct timespec){1001, 0}; /* in the future */
    assert_false(rc_fid_settled(&id, &start));
    struct rc_fid x = {.dev = 1, .ino = 2, .size = 3, .mtim = {4, 5}, .ctim = {6, 7}}, y = x;
    assert_true(rc_fid_equal(&x, &y));
    y.ctim.tv_nsec = 8;
    assert_false(rc_fid_equal(&x, &y));
    y = x;
    y.ino = 9;
    assert_false(rc_fid_equal(&x, &y));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(unchanged_files_are_not_read_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_rewritten_file_is_read_again_until_it_settles, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_file_replaced_by_rename_with_the_same_size_and_mtime_is_read, setup, teardown),
        cmocka_unit_test_setup_teardown(a_changed_key_file_is_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(a_model_outlives_the_one_it_reused_from, setup, teardown),
        cmocka_unit_test(the_settle_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
