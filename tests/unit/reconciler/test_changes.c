/* The watcher's list of changed paths (changes.h): a load told what
 * changed walks the folder only when a name changed, and checks only
 * those files — and still checks every file the
 * watcher could not have seen change (through a symbolic link, with a
 * second hard link, not settled when read). */
#include <limits.h>
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

#include "reconciler/changes.h"
#include "reconciler/filecache.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"
#include "test_files.h"

static void cover_is_exact_or_a_folder_above(void **state)
{
    (void)state;
    const char *v[] = {"a.yaml", "certs", "deep/x/y.pem"};
    struct rc_changes c = {v, 3, false, NULL, 0, false};
    assert_true(rc_changes_cover(&c, "a.yaml"));
    assert_true(rc_changes_cover(&c, "certs/site.pem"));
    assert_true(rc_changes_cover(&c, "certs/sub/site.pem"));
    assert_true(rc_changes_cover(&c, "deep/x/y.pem"));
    assert_false(rc_changes_cover(&c, "a.yaml.tmp"));
    assert_false(rc_changes_cover(&c, "a.yam"));
    assert_false(rc_changes_cover(&c, "cert/site.pem"));
    assert_false(rc_changes_cover(&c, "certs2/site.pem"));
    assert_false(rc_changes_cover(&c, "deep/x/z.pem"));
    assert_false(rc_changes_cover(&c, "deep/y.pem"));
    assert_false(rc_changes_cover(&c, "b.yaml"));
    /* The whole tree, and "unknown". */
    const char *all[] = {"", "a.yaml"};
    struct rc_changes everything = {all, 2, false, NULL, 0, false};
    assert_true(rc_changes_cover(&everything, "b/c.pem"));
    assert_true(rc_changes_cover(NULL, "b/c.pem"));
    struct rc_changes none = {NULL, 0, false, NULL, 0, false};
    assert_false(rc_changes_cover(&none, "b/c.pem"));
}

static void rel_under_the_root(void **state)
{
    (void)state;
    assert_string_equal(rc_rel_under("/m", "/m/a.pem"), "a.pem");
    assert_string_equal(rc_rel_under("/m/", "/m/certs/a.pem"), "certs/a.pem");
    assert_string_equal(rc_rel_under("/m", "/m//a.pem"), "a.pem");
    assert_null(rc_rel_under("/m", "/mx/a.pem"));
    assert_null(rc_rel_under("/m", "/m"));
    assert_null(rc_rel_under("/m", "/m/"));
    assert_null(rc_rel_under("/m", "/other/a.pem"));
}

/* Absolute paths: a file directly in a trusted folder outside the tree,
 * named by no change (by itself or its folder). */
static void vouch_abs_needs_a_trusted_folder_and_no_change(void **state)
{
    (void)state;
    const char *trusted[] = {"/etc/ssl/a", "/srv/certs"};
    const char *v[] = {"/srv/certs/renewed.pem", "a.yaml"};
    struct rc_changes c = {v, 2, false, trusted, 2, false};
    assert_true(rc_changes_vouch_abs(&c, "/srv/certs/site.pem"));
    assert_true(rc_changes_vouch_abs(&c, "/etc/ssl/a/k.key"));
    assert_false(rc_changes_vouch_abs(&c, "/srv/certs/renewed.pem"));  /* reported */
    assert_false(rc_changes_vouch_abs(&c, "/srv/certs/sub/site.pem")); /* not watched */
    assert_false(rc_changes_vouch_abs(&c, "/srv/certs2/site.pem"));
    assert_false(rc_changes_vouch_abs(&c, "/srv/site.pem"));
    assert_false(rc_changes_vouch_abs(&c, "/etc/ssl/k.key"));
    assert_false(rc_changes_vouch_abs(&c, "/srv/certs/"));
    const char *folder[] = {"/srv/certs"};
    struct rc_changes f = {folder, 1, false, trusted, 2, false};
    assert_false(rc_changes_vouch_abs(&f, "/srv/certs/site.pem")); /* its folder reported */
    assert_true(rc_changes_vouch_abs(&f, "/etc/ssl/a/k.key"));
    struct rc_changes untrusted = {NULL, 0, false, NULL, 0, false};
    assert_false(rc_changes_vouch_abs(&untrusted, "/srv/certs/site.pem"));
    assert_false(rc_changes_vouch_abs(NULL, "/srv/certs/site.pem"));
}

/* The folder-remembering forms answer as the plain ones, path after path
 * in any order: same folder in a row, folders alternating, a folder and
 * its subfolder, with changes naming "", folders, files and trusted
 * folders, and with a memo carried from one question to the other. */
static void memo_forms_answer_as_the_plain_ones(void **state)
{
    (void)state;
    const char *paths[] = {"a.yaml",
                           "certs/site.pem",
                           "certs/sub/site.pem",
                           "certs/a.pem",
                           "certs",
                           "deep/x/y.pem",
                           "deep/x/z.pem",
                           "deep/y.pem",
                           "b.yaml",
                           "certs2/site.pem",
                           "x",
                           "/srv/certs/site.pem",
                           "/srv/certs/renewed.pem",
                           "/srv/certs/sub/site.pem",
                           "/srv/certs2/site.pem",
                           "/srv/site.pem",
                           "/etc/ssl/a/k.key",
                           "/etc/ssl/k.key",
                           "/srv/certs/",
                           "/srv/certs/b.pem",
                           "/",
                           "/a",
                           "/etc/ssl/a/k.key",
                           "/srv/certs/site.pem",
                           ""};
    size_t np = sizeof paths / sizeof *paths;
    const char *trusted[] = {"/etc/ssl/a", "/srv/certs"};
    const char *v1[] = {"/srv/certs/renewed.pem", "a.yaml", "certs", "deep/x/y.pem"};
    const char *v2[] = {"/srv/certs"};
    const char *v3[] = {"", "a.yaml"};
    const char *v4[] = {"/etc", "certs/a.pem", "deep"};
    struct rc_changes sets[] = {
        {v1, 4, false, trusted, 2, false},   {v2, 1, false, trusted, 2, false},
        {v3, 2, false, trusted, 2, false},   {v4, 3, false, trusted, 2, false},
        {NULL, 0, false, trusted, 2, false}, {NULL, 0, false, NULL, 0, false},
    };
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        struct rc_cover_memo cm = {.next = 0}, vm = {.next = 0}, shared = {.next = 0};
        /* Forwards, then backwards, then every pair: each order of folders. */
        for (size_t round = 0; round < 3; round++) {
            for (size_t k = 0; k < np * (round == 2 ? np : 1); k++) {
                size_t i = round == 0 ? k : round == 1 ? np - 1 - k % np : (k / np + k % np) % np;
                const char *p = paths[i];
                assert_int_equal(rc_changes_cover_m(&sets[s], p, &cm),
                                 rc_changes_cover(&sets[s], p));
                assert_int_equal(rc_changes_vouch_abs_m(&sets[s], p, &vm),
                                 rc_changes_vouch_abs(&sets[s], p));
                bool both =
                    rc_changes_vouch_abs_m(&sets[s], p, &shared) ==
                        rc_changes_vouch_abs(&sets[s], p) &&
                    rc_changes_cover_m(&sets[s], p, &shared) == rc_changes_cover(&sets[s], p);
                assert_true(both);
            }
        }
        rc_cover_memo_free(&cm);
        rc_cover_memo_free(&vm);
        rc_cover_memo_free(&shared);
    }
    struct rc_cover_memo m = {.next = 0};
    assert_true(rc_changes_cover_m(NULL, "a.yaml", &m));
    assert_false(rc_changes_vouch_abs_m(NULL, "/srv/certs/site.pem", &m));
    rc_cover_memo_free(&m);
    assert_string_equal(rc_rel_under_len("/m", rc_root_len("/m//"), "/m/certs/a.pem"),
                        "certs/a.pem");
    assert_null(rc_rel_under_len("/m", rc_root_len("/m"), "/mx/a.pem"));
}

static char dir[PATH_MAX];

static const char CERTS[] = "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
                            "spec:\n  source:\n    files: {certificate: site.pem, privateKey: "
                            "keys/site.key}\n";

/* Files written so far are settled for the next loads (test_files.h). */
static void settle(void)
{
    tf_settle();
}

static int setup(void **state)
{
    (void)state;
    char made[PATH_MAX];
    if (tf_mkdtemp(made, sizeof(made), "changes") < 0 || realpath(made, dir) == NULL)
        return -1;
    char keys[PATH_MAX + 8];
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    if (mkdir(keys, 0700) != 0)
        return -1;
    tf_put(dir, "certs.yaml", CERTS);
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.key", "keys/site.key");
    settle();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tf_rm_rf(dir);
}

static struct tf_result load(const struct rc_model *prev, const struct rc_changes *changes)
{
    return tf_load(dir, prev, changes, NULL);
}

static const struct rc_changes NOTHING = {NULL, 0, false, NULL, 0, false};

static void replace_key_in_place(void)
{
    /* Same inode, new bytes: the key no longer matches the certificate. */
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-other.key", "keys/site.key");
}

static void unreported_files_are_not_even_stated(void **state)
{
    (void)state;
    struct tf_result a = load(NULL, NULL);
    assert_int_equal(a.rc, 0);
    struct tf_result b = load(a.m, &NOTHING);
    assert_int_equal(b.rc, 0);
    /* site.pem, keys/site.key and certs.yaml: the watcher vouches. */
    assert_int_equal(b.st.files_unstatted, 3);
    assert_int_equal(b.st.files_read, 0);
    assert_int_equal(b.st.manifests_skipped, 1);
    /* Proof that nothing was looked at: a change the watcher did not
     * report is not seen... */
    replace_key_in_place();
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.rc, 0);
    /* ...and one it reports is, by file or by a folder above it. */
    const char *key[] = {"keys/site.key"}, *folder[] = {"keys"};
    struct rc_changes by_file = {key, 1, false, NULL, 0, false},
                      by_folder = {folder, 1, false, NULL, 0, false};
    struct tf_result d = load(c.m, &by_file);
    assert_int_equal(d.rc, 1); /* contained: the key does not match */
    assert_int_equal(d.st.files_read, 1);
    struct tf_result e = load(c.m, &by_folder);
    assert_int_equal(e.rc, 1);
    /* Unknown (SIGHUP): every file is checked. */
    struct tf_result f = load(c.m, NULL);
    assert_int_equal(f.rc, 1);
    assert_int_equal(f.st.files_unstatted, 0);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
    tf_done(&e);
    tf_done(&f);
}

/* Certificate files in a folder outside the tree that the watcher watches
 * alone (agent/watch.h ag_watch_trusted_extra): taken without a stat when
 * no change names them, checked when one does — by file or by folder —
 * and always checked when the folder is not trusted. */
static void files_in_a_trusted_folder_outside_are_not_stated(void **state)
{
    (void)state;
    char made[PATH_MAX], out[PATH_MAX], text[3 * PATH_MAX], keyp[PATH_MAX + 16];
    assert_int_equal(tf_mkdtemp(made, sizeof(made), "changes-out"), 0);
    assert_non_null(realpath(made, out));
    tf_copy_in(out, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    tf_copy_in(out, ALBD_TEST_DATA "/certs/test-only-server.key", "site.key");
    snprintf(text, sizeof(text),
             "apiVersion: albd/v1\nkind: Certificate\nmetadata: {name: site}\n"
             "spec:\n  source:\n    files: {certificate: %s/site.pem, privateKey: %s/site.key}\n",
             out, out);
    tf_put(dir, "certs.yaml", text);
    settle();
    struct tf_result a = load(NULL, NULL);
    assert_int_equal(a.rc, 0);
    const char *trusted[] = {out};
    struct rc_changes quiet = {NULL, 0, false, trusted, 1, false};
    struct tf_result b = load(a.m, &quiet);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.files_unstatted, 3); /* site.pem, site.key, certs.yaml */
    assert_int_equal(b.st.files_read, 0);
    /* A folder not (yet) trusted: its files are stat'ed. */
    struct tf_result u = load(a.m, &NOTHING);
    assert_int_equal(u.rc, 0);
    assert_int_equal(u.st.files_unstatted, 1);
    /* Proof that nothing was looked at: a change nobody reported... */
    tf_copy_in(out, ALBD_TEST_DATA "/certs/test-only-other.key", "site.key");
    struct tf_result c = load(b.m, &quiet);
    assert_int_equal(c.rc, 0);
    /* ...is seen once reported, by file or by folder, or not trusted. */
    snprintf(keyp, sizeof(keyp), "%s/site.key", out);
    const char *by_file[] = {keyp}, *by_folder[] = {out};
    struct rc_changes f = {by_file, 1, false, trusted, 1, false},
                      d = {by_folder, 1, false, trusted, 1, false};
    struct tf_result e = load(c.m, &f);
    assert_int_equal(e.rc, 1); /* contained: the key does not match */
    assert_int_equal(e.st.files_read, 1);
    struct tf_result g = load(c.m, &d);
    assert_int_equal(g.rc, 1);
    struct tf_result h = load(c.m, &NOTHING);
    assert_int_equal(h.rc, 1);
    tf_done(&a);
    tf_done(&b);
    tf_done(&u);
    tf_done(&c);
    tf_done(&e);
    tf_done(&g);
    tf_done(&h);
    assert_int_equal(tf_rm_rf(out), 0);
}

/* Kubernetes Secret layout: the visible file is a link. The watcher
 * reports the "..data" swap, never the visible name: such a file is always
 * checked. */
static void a_file_reached_through_a_link_is_always_checked(void **state)
{
    (void)state;
    char real[PATH_MAX + 32], link[PATH_MAX + 32];
    snprintf(real, sizeof(real), "%s/keys/..data.key", dir);
    snprintf(link, sizeof(link), "%s/keys/site.key", dir);
    assert_int_equal(rename(link, real), 0);
    assert_int_equal(symlink("..data.key", link), 0);
    struct tf_result a = load(NULL, NULL);
    assert_int_equal(a.rc, 0);
    struct tf_result b = load(a.m, &NOTHING);
    assert_int_equal(b.st.files_unstatted, 2); /* site.pem and certs.yaml */
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-other.key", "keys/..data.key");
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.rc, 1);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

/* A write through another hard link raises no event in this folder. */
static void a_file_with_a_second_hard_link_is_always_checked(void **state)
{
    (void)state;
    char other[PATH_MAX + 32], key[PATH_MAX + 32];
    snprintf(other, sizeof(other), "%s/elsewhere.key", dir);
    snprintf(key, sizeof(key), "%s/keys/site.key", dir);
    assert_int_equal(link(key, other), 0);
    struct tf_result a = load(NULL, NULL);
    struct tf_result b = load(a.m, &NOTHING);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.st.files_unstatted, 2);
    replace_key_in_place(); /* same inode: elsewhere.key changes too */
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.rc, 1);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

/* A file read within the settle window may change again unseen in the
 * same timestamp tick; the watcher's list does not make it trusted. */
static void an_unsettled_file_is_checked_again(void **state)
{
    (void)state;
    struct tf_result a = load(NULL, NULL);
    tf_copy_in(dir, ALBD_TEST_DATA "/certs/test-only-server.pem", "site.pem");
    const char *pem[] = {"site.pem"};
    struct rc_changes ch = {pem, 1, false, NULL, 0, false};
    struct tf_result b = load(a.m, &ch); /* reads it, unsettled */
    assert_int_equal(b.st.files_read, 1);
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.st.files_read, 1);
    assert_int_equal(c.st.files_unstatted, 2);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

/* Nothing created, removed or renamed: the folder is not walked again. */
static void the_walk_is_reused_until_a_name_changes(void **state)
{
    (void)state;
    struct tf_result a = load(NULL, NULL);
    struct tf_result b = load(a.m, &NOTHING);
    assert_int_equal(b.rc, 0);
    tf_put(dir, "more.yaml",
           "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
           "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n");
    /* Proof that the list was reused: a file nobody reported is not seen. */
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.m->n_groups, 0);
    const char *more[] = {"more.yaml"};
    struct rc_changes created = {more, 1, true, NULL, 0, false};
    struct tf_result d = load(c.m, &created);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m->n_groups, 1);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
}

/* Only files were created, removed or renamed, each named: the running
 * model's list of manifest files is patched with those names (no walk of
 * the folder). A named folder, or a hidden name, needs the walk. */
static void the_walk_is_patched_from_named_files(void **state)
{
    (void)state;
    struct tf_result a = load(NULL, NULL);
    struct tf_result b = load(a.m, &NOTHING);
    assert_int_equal(b.rc, 0);
    static const char ga[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
                             "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n";
    static const char gb[] = "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: gb}\n"
                             "spec:\n  servers:\n  - {address: 10.0.0.2, port: 8080}\n";
    tf_put(dir, "more.yaml", ga);
    tf_put(dir, "unreported.yaml", gb);
    /* Proof that the list was patched, not walked: the file nobody named
     * is not seen, the named one is (and a named file that is not YAML
     * adds nothing). */
    const char *more[] = {"more.yaml", "notes.txt"};
    struct rc_changes created = {more, 2, true, NULL, 0, true};
    struct tf_result c = load(b.m, &created);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.m->n_groups, 1);
    assert_string_equal(c.m->groups[0].meta.name, "ga");
    /* Removed and named: gone from the list. */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/more.yaml", dir);
    assert_int_equal(unlink(path), 0);
    struct tf_result d = load(c.m, &created);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.m->n_groups, 0);
    /* A named folder: walked, and every file is seen. */
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    const char *sub[] = {"sub"};
    struct rc_changes folder = {sub, 1, true, NULL, 0, true};
    struct tf_result e = load(d.m, &folder);
    assert_int_equal(e.rc, 0);
    assert_int_equal(e.m->n_groups, 1);
    assert_string_equal(e.m->groups[0].meta.name, "gb");
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
    tf_done(&d);
    tf_done(&e);
}

/* A folder entered through a link may gain files with no event in the
 * tree: such a tree is always walked. */
static void a_tree_with_a_linked_folder_is_always_walked(void **state)
{
    (void)state;
    char target[PATH_MAX + 16], link[PATH_MAX + 16];
    snprintf(target, sizeof(target), "%s/..real", dir);
    snprintf(link, sizeof(link), "%s/linked", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink("..real", link), 0);
    struct tf_result a = load(NULL, NULL);
    struct tf_result b = load(a.m, &NOTHING);
    tf_put(dir, "..real/more.yaml",
           "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: ga}\n"
           "spec:\n  servers:\n  - {address: 10.0.0.1, port: 8080}\n");
    struct tf_result c = load(b.m, &NOTHING);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.m->n_groups, 1);
    tf_done(&a);
    tf_done(&b);
    tf_done(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cover_is_exact_or_a_folder_above),
        cmocka_unit_test(rel_under_the_root),
        cmocka_unit_test(vouch_abs_needs_a_trusted_folder_and_no_change),
        cmocka_unit_test(memo_forms_answer_as_the_plain_ones),
        cmocka_unit_test_setup_teardown(files_in_a_trusted_folder_outside_are_not_stated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unreported_files_are_not_even_stated, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_reached_through_a_link_is_always_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_file_with_a_second_hard_link_is_always_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_unsettled_file_is_checked_again, setup, teardown),
        cmocka_unit_test_setup_teardown(the_walk_is_reused_until_a_name_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(the_walk_is_patched_from_named_files, setup, teardown),
        cmocka_unit_test_setup_teardown(a_tree_with_a_linked_folder_is_always_walked, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
