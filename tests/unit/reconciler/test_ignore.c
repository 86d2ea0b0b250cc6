/* .albdignore: gitignore patterns (comments, blank lines, trailing spaces,
 * escapes, negation, anchoring, folders only, "**") matched against paths
 * relative to the manifest folder, table-driven; and reading the file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/ignore.h"
#include "reconciler/readall.h"

struct ignore_case {
    const char *rules; /* the ignore file */
    const char *rel;   /* a path relative to the manifest folder */
    bool is_dir;
    bool ignored; /* rc_ignore_path's answer */
};

#define F false /* a file */
#define D true  /* a folder */

static const struct ignore_case cases[] = {
    /* Nothing to ignore. */
    {"", "a.yaml", F, false},
    {"# a.yaml\n\n   \n", "a.yaml", F, false},
    /* A name without '/' matches at any depth. */
    {"a.yaml\n", "a.yaml", F, true},
    {"a.yaml\n", "x/y/a.yaml", F, true},
    {"a.yaml\n", "b.yaml", F, false},
    {"a.yaml\n", "xa.yaml", F, false},
    /* Globs stay within one segment; '*' also matches a leading dot. */
    {"*.yaml\n", "deep/er/k.yaml", F, true},
    {"*.yaml\n", "k.yml", F, false},
    {"draft-?.yaml\n", "draft-1.yaml", F, true},
    {"draft-?.yaml\n", "draft-12.yaml", F, false},
    {"draft-[0-9].yaml\n", "draft-7.yaml", F, true},
    {"draft-[0-9].yaml\n", "draft-x.yaml", F, false},
    {"*\n", ".hidden", F, true},
    {"a*b\n", "a/b", F, false},
    {"a*b\n", "axxb", F, true},
    /* A leading '/' or a '/' in the middle anchors to the folder. */
    {"/a.yaml\n", "a.yaml", F, true},
    {"/a.yaml\n", "sub/a.yaml", F, false},
    {"sub/a.yaml\n", "sub/a.yaml", F, true},
    {"sub/a.yaml\n", "x/sub/a.yaml", F, false},
    {"sub/*.yaml\n", "sub/a.yaml", F, true},
    {"sub/*.yaml\n", "sub/deeper/a.yaml", F, false},
    /* A trailing '/' matches folders only, and what is below them. */
    {"drafts/\n", "drafts", D, true},
    {"drafts/\n", "drafts", F, false},
    {"drafts/\n", "drafts/a.yaml", F, true},
    {"drafts/\n", "x/drafts/a.yaml", F, true},
    {"/drafts/\n", "x/drafts/a.yaml", F, false},
    /* A folder ignored by name ignores what it holds. */
    {"kustomize\n", "kustomize/base/k.yaml", F, true},
    /* "**": first, in every folder; last, everything inside (not the
     * folder itself); in the middle, zero or more folders. */
    {"**/k.yaml\n", "k.yaml", F, true},
    {"**/k.yaml\n", "a/b/k.yaml", F, true},
    {"**/base/k.yaml\n", "x/base/k.yaml", F, true},
    {"**/base/k.yaml\n", "base/k.yaml", F, true},
    {"gen/**\n", "gen/a.yaml", F, true},
    {"gen/**\n", "gen/x/y/a.yaml", F, true},
    {"gen/**\n", "gen", D, false},
    {"gen/**\n", "other/gen/a.yaml", F, false},
    {"a/**/b.yaml\n", "a/b.yaml", F, true},
    {"a/**/b.yaml\n", "a/x/b.yaml", F, true},
    {"a/**/b.yaml\n", "a/x/y/z/b.yaml", F, true},
    {"a/**/b.yaml\n", "a/x/y/z/c.yaml", F, false},
    {"a/**/**/b.yaml\n", "a/b.yaml", F, true},
    {"**/**/**/**/**/**/**/**/z\n", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/y", F, false},
    /* "**" inside a segment is a "*". */
    {"a**.yaml\n", "abc.yaml", F, true},
    {"a**.yaml\n", "a/c.yaml", F, false},
    /* Negation: the last matching line decides. */
    {"*.yaml\n!keep.yaml\n", "keep.yaml", F, false},
    {"*.yaml\n!keep.yaml\n", "drop.yaml", F, true},
    {"!keep.yaml\n*.yaml\n", "keep.yaml", F, true},
    {"*.yaml\n!/keep.yaml\n", "sub/keep.yaml", F, true},
    {"gen/**\n!gen/keep.yaml\n", "gen/keep.yaml", F, false},
    /* ...but nothing below an ignored folder comes back. */
    {"drafts/\n!drafts/keep.yaml\n", "drafts/keep.yaml", F, true},
    {"drafts\n!keep.yaml\n", "drafts/keep.yaml", F, true},
    /* Escapes: a literal leading '#' or '!', a kept trailing space. */
    {"\\#odd.yaml\n", "#odd.yaml", F, true},
    {"\\!bang.yaml\n", "!bang.yaml", F, true},
    {"\\!bang.yaml\n", "bang.yaml", F, false},
    {"#odd.yaml\n", "#odd.yaml", F, false},
    {"a.yaml   \n", "a.yaml", F, true},
    {"a.yaml\\ \n", "a.yaml ", F, true},
    {"a.yaml\\ \n", "a.yaml", F, false},
    /* CRLF files; "a//b" is "a/b"; a line of slashes is nothing. */
    {"a.yaml\r\nb.yaml\r\n", "b.yaml", F, true},
    {"sub//a.yaml\n", "sub/a.yaml", F, true},
    {"/\n//\n", "a.yaml", F, false},
    /* No final newline. */
    {"x.yaml", "x.yaml", F, true},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct ignore_case *c = &cases[i];
        struct rc_ignore *ig = rc_ignore_parse(c->rules, strlen(c->rules));
        assert_non_null(ig);
        bool got = rc_ignore_path(ig, c->rel, c->is_dir);
        if (got != c->ignored)
            fail_msg("case %zu: rules \"%s\" path \"%s\" (%s): expected %s, got %s", i, c->rules,
                     c->rel, c->is_dir ? "folder" : "file", c->ignored ? "ignored" : "kept",
                     got ? "ignored" : "kept");
        rc_ignore_free(ig);
    }
}

/* rc_ignore_match looks at the path's own name only; rc_ignore_path also
 * at the folders above it. */
static void test_match_is_by_own_name(void **state)
{
    (void)state;
    const char *rules = "drafts/\n";
    struct rc_ignore *ig = rc_ignore_parse(rules, strlen(rules));
    assert_non_null(ig);
    assert_int_equal(rc_ignore_count(ig), 1);
    assert_false(rc_ignore_match(ig, "drafts/a.yaml", false));
    assert_true(rc_ignore_path(ig, "drafts/a.yaml", false));
    assert_true(rc_ignore_match(ig, "drafts", true));
    rc_ignore_free(ig);
    /* NULL ignores nothing. */
    assert_false(rc_ignore_match(NULL, "a.yaml", false));
    assert_false(rc_ignore_path(NULL, "a/b.yaml", false));
    assert_int_equal(rc_ignore_count(NULL), 0);
    rc_ignore_free(NULL);
}

/* Comments, blank lines and lines with no pattern are not counted; a
 * pattern deeper than RC_IGNORE_MAX_SEGMENTS is left out. */
static void test_count_and_limits(void **state)
{
    (void)state;
    char deep[RC_IGNORE_MAX_SEGMENTS * 2 + 16];
    size_t n = 0;
    for (int i = 0; i < RC_IGNORE_MAX_SEGMENTS + 1; i++) {
        deep[n++] = 'a';
        deep[n++] = '/';
    }
    deep[n++] = 'b';
    deep[n] = '\0';
    char text[512];
    snprintf(text, sizeof(text), "# c\n\n!\n/\n%s\nok.yaml\n", deep);
    struct rc_ignore *ig = rc_ignore_parse(text, strlen(text));
    assert_non_null(ig);
    assert_int_equal(rc_ignore_count(ig), 1);
    assert_true(rc_ignore_path(ig, "ok.yaml", false));
    rc_ignore_free(ig);
    /* Text need not be NUL-terminated: only len bytes are read. */
    ig = rc_ignore_parse("a.yamlXXXX", 6);
    assert_non_null(ig);
    assert_true(rc_ignore_path(ig, "a.yaml", false));
    assert_false(rc_ignore_path(ig, "a.yamlXXXX", false));
    rc_ignore_free(ig);
}

static void test_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/albd-test-ignore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct rc_ignore *ig = (struct rc_ignore *)1;
    /* No file: no matcher, no error. */
    assert_int_equal(rc_ignore_load(dir, &ig), 0);
    assert_null(ig);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, RC_IGNORE_FILE);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("drafts/\n*.bak.yaml\n", f);
    fclose(f);
    assert_int_equal(rc_ignore_load(dir, &ig), 0);
    assert_non_null(ig);
    assert_int_equal(rc_ignore_count(ig), 2);
    assert_true(rc_ignore_path(ig, "x.bak.yaml", false));
    rc_ignore_free(ig);
    /* A folder named .albdignore is not an ignore file: an error. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(rc_ignore_load(dir, &ig), -RC_ENOTREG);
    assert_null(ig);
    assert_int_equal(rmdir(path), 0);
    /* Past RC_IGNORE_MAX_BYTES: refused. */
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < RC_IGNORE_MAX_BYTES / 8 + 1; i++)
        fputs("#xxxxxx\n", f);
    fclose(f);
    assert_int_equal(rc_ignore_load(dir, &ig), -EFBIG);
    assert_null(ig);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_match_is_by_own_name),
        cmocka_unit_test(test_count_and_limits),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
