/* agent/certdirs.c: the certificate folders outside the manifest folder,
 * kept across reconciles. Each change must show in the folder list (a
 * certificate moved to another folder, a link re-pointed, a certificate
 * removed), while an unchanged certificate is not looked at again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/certdirs.h"
#include "reconciler/filecache.h"
#include "reconciler/model.h"

enum { N = 3 };

struct fixture {
    char tmp[64];
    char path[N][2][256]; /* certificate and key paths */
    struct rc_certificate certs[N];
    const struct rc_certificate *cert_ptrs[N]; /* the model's array (model-t.h) */
    struct rc_model m;
};

static void mk(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static void set_cert(struct fixture *fx, size_t i, const char *dir, const char *digest)
{
    char tmp[sizeof fx->tmp];
    memcpy(tmp, fx->tmp, sizeof tmp);
    snprintf(fx->path[i][0], sizeof fx->path[i][0], "%s/%s/h%zu.crt", tmp, dir, i);
    snprintf(fx->path[i][1], sizeof fx->path[i][1], "%s/%s/h%zu.key", tmp, dir, i);
    static const char *const names[N] = {"h0", "h1", "h2"};
    struct rc_certificate *c = &fx->certs[i];
    c->meta.name = names[i];
    c->source = RC_CERT_SOURCE_FILES;
    c->cert_path = fx->path[i][0];
    c->key_path = fx->path[i][1];
    snprintf(c->meta.digest, sizeof c->meta.digest, "%s", digest);
}

/* Whether the list is exactly the folders named (relative to tmp). */
static void assert_list(struct ag_certdirs *cd, const struct fixture *fx, const char *const *want,
                        size_t n_want)
{
    size_t n;
    const char *const *v = ag_certdirs_list(cd, &n);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", fx->tmp, want[i]);
        assert_string_equal(v[i], p);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/albd-certdirs-XXXXXX");
    assert_non_null(mkdtemp(fx->tmp));
    const char *dirs[] = {"a", "b", "m", "archive", "live"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", fx->tmp, dirs[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    for (size_t i = 0; i < N; i++)
        fx->cert_ptrs[i] = &fx->certs[i];
    fx->m.certificates = fx->cert_ptrs;
    fx->m.n_certificates = N;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->tmp);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void test_changes_follow(void **state)
{
    struct fixture *fx = *state;
    char root[256];
    snprintf(root, sizeof root, "%s/m", fx->tmp);
    set_cert(fx, 0, "a", "d0");
    set_cert(fx, 1, "a", "d1");
    set_cert(fx, 2, "m", "d2"); /* inside the manifest folder: no folder */
    struct ag_certdirs *cd = ag_certdirs_new();
    assert_non_null(cd);

    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_int_equal(ag_certdirs_looked(cd), 6);
    assert_list(cd, fx, (const char *const[]){"a"}, 1);

    /* Nothing changed: nothing looked at, no new list. */
    assert_false(ag_certdirs_update(cd, &fx->m, root));
    assert_int_equal(ag_certdirs_looked(cd), 0);
    assert_list(cd, fx, (const char *const[]){"a"}, 1);

    /* One certificate moves to another folder (new paths): only its two
     * files are looked at, and b joins. */
    set_cert(fx, 1, "b", "d1");
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_int_equal(ag_certdirs_looked(cd), 2);
    assert_list(cd, fx, (const char *const[]){"a", "b"}, 2);

    /* The last certificate in a leaves it: a goes. */
    set_cert(fx, 0, "b", "d0");
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_list(cd, fx, (const char *const[]){"b"}, 1);

    /* A certificate removed from the model: its folder goes. */
    fx->m.n_certificates = 1;                           /* only h0, in b */
    assert_false(ag_certdirs_update(cd, &fx->m, root)); /* b still has h0 */
    fx->m.n_certificates = 0;
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_list(cd, fx, NULL, 0);
    fx->m.n_certificates = N;

    ag_certdirs_free(cd);
}

/* certbot's layout: live/h0.crt -> archive/h0-1.crt. A renewal re-points
 * the link (the certificate's digest changes): the new target's folder is
 * looked up again, not kept from before. */
static void test_link_repointed(void **state)
{
    struct fixture *fx = *state;
    char root[256], target[256], link[256], other[256];
    snprintf(root, sizeof root, "%s/m", fx->tmp);
    set_cert(fx, 0, "live", "v1");
    set_cert(fx, 1, "m", "d1");
    set_cert(fx, 2, "m", "d2");
    snprintf(target, sizeof target, "%s/archive/h0-1.crt", fx->tmp);
    mk(target);
    assert_int_equal(symlink(target, fx->path[0][0]), 0);
    struct ag_certdirs *cd = ag_certdirs_new();
    assert_non_null(cd);
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_list(cd, fx, (const char *const[]){"archive", "live"}, 2);

    /* Re-pointed into another folder, the certificate renewed. */
    snprintf(other, sizeof other, "%s/a/h0-2.crt", fx->tmp);
    mk(other);
    snprintf(link, sizeof link, "%s/live/h0.tmp", fx->tmp);
    assert_int_equal(symlink(other, link), 0);
    assert_int_equal(rename(link, fx->path[0][0]), 0);
    snprintf(fx->certs[0].meta.digest, sizeof fx->certs[0].meta.digest, "v2");
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_list(cd, fx, (const char *const[]){"a", "live"}, 2);

    /* A new root: every file is looked at again under its meaning. */
    snprintf(root, sizeof root, "%s/live", fx->tmp);
    assert_true(ag_certdirs_update(cd, &fx->m, root));
    assert_int_equal(ag_certdirs_looked(cd), 6);
    assert_list(cd, fx, (const char *const[]){"a", "m"}, 2);
    ag_certdirs_free(cd);
}

/* A folder whose watch began after its files were read is vouched for only
 * when each file a load may trust is still what was read. */
static void test_check_fresh(void **state)
{
    struct fixture *fx = *state;
    char p[4][256];
    const char *names[4] = {"a/x.crt", "a/x.key", "b/y.crt", "b/y.key"};
    struct rc_kept_file kf[4];
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", fx->tmp, names[i]);
        mk(p[i]);
        struct stat st;
        assert_int_equal(stat(p[i], &st), 0);
        kf[i] = (struct rc_kept_file){.path = p[i], .settled = true, .watchable = true};
        rc_fid_from_stat(&kf[i].id, &st);
    }
    const struct rc_kept_file *kfp[4] = {&kf[0], &kf[1], &kf[2], &kf[3]};
    struct rc_kept_files kept = {.v = kfp, .n = 4};
    char da[256], db[256], dc[256];
    snprintf(da, sizeof da, "%s/a", fx->tmp);
    snprintf(db, sizeof db, "%s/b", fx->tmp);
    snprintf(dc, sizeof dc, "%s/m", fx->tmp);
    char *dirs[3] = {da, db, dc};
    bool ok[3] = {false, false, false};
    ag_certdirs_check_fresh(&kept, dirs, ok, 3);
    assert_true(ok[0] && ok[1] && ok[2]);

    /* Rewritten (longer) since it was read: b is not vouched for, a is. */
    FILE *f = fopen(p[3], "a");
    assert_non_null(f);
    fputs("more\n", f);
    fclose(f);
    ag_certdirs_check_fresh(&kept, dirs, ok, 3);
    assert_true(ok[0]);
    assert_false(ok[1]);
    assert_true(ok[2]);

    /* Removed: a is not vouched for either. */
    assert_int_equal(unlink(p[0]), 0);
    ag_certdirs_check_fresh(&kept, dirs, ok, 3);
    assert_false(ok[0]);

    /* A file no load trusts without a stat does not count. */
    kf[0].watchable = false;
    kf[3].settled = false;
    ag_certdirs_check_fresh(&kept, dirs, ok, 3);
    assert_true(ok[0] && ok[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changes_follow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_repointed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_fresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
