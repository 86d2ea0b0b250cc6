/* reconciler/selector.c: kubectl-style label selectors, parsed and matched
 * case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reconciler/selector.h"

/* Label sets used by the match table. */
static const char *const L_WEB_PROD[] = {"team", "web", "env", "prod", NULL};
static const char *const L_WEB_DEV[] = {"team", "web", "env", "dev", NULL};
static const char *const L_API[] = {"team", "api", NULL};
static const char *const L_EMPTY_VALUE[] = {"team", "", "tier", "gold", NULL};
static const char *const L_NONE[] = {NULL};
static const char *const L_ODD[] = {"app.kubernetes.io/name", "albd", "ünï", "cödé", NULL};

static const char *list_get(const void *ctx, const char *key)
{
    const char *const *kv = ctx;
    for (size_t i = 0; kv[i] != NULL; i += 2)
        if (strcmp(kv[i], key) == 0)
            return kv[i + 1];
    return NULL;
}

struct match_case {
    const char *sel;
    const char *const *labels;
    bool match;
};

static void test_match_table(void **state)
{
    static const struct match_case cases[] = {
        /* the empty selector matches everything */
        {"", L_WEB_PROD, true},
        {"   ", L_NONE, true},
        /* equality */
        {"team=web", L_WEB_PROD, true},
        {"team==web", L_WEB_PROD, true},
        {"team = web", L_WEB_PROD, true},
        {"team=web", L_API, false},
        {"team=web", L_NONE, false},
        {"team=Web", L_WEB_PROD, false}, /* case-sensitive */
        {"team=", L_EMPTY_VALUE, true},  /* empty value */
        {"team=", L_WEB_PROD, false},
        {"team=", L_NONE, false},
        /* inequality: absent counts as different */
        {"team!=web", L_WEB_PROD, false},
        {"team!=web", L_API, true},
        {"team!=web", L_NONE, true},
        {"team != web", L_API, true},
        /* set membership */
        {"env in (prod,staging)", L_WEB_PROD, true},
        {"env in (staging, qa)", L_WEB_PROD, false},
        {"env in (prod)", L_NONE, false},
        {"env in(dev)", L_WEB_DEV, true},
        {"env notin (prod,staging)", L_WEB_PROD, false},
        {"env notin (prod, staging)", L_WEB_DEV, true},
        {"env notin (prod)", L_NONE, true}, /* absent: not in the set */
        {"env notin(dev)", L_API, true},
        /* existence */
        {"env", L_WEB_PROD, true},
        {"env", L_API, false},
        {"!env", L_API, true},
        {"!env", L_WEB_PROD, false},
        {"! env", L_NONE, true},
        {"tier", L_EMPTY_VALUE, true},
        {"team", L_EMPTY_VALUE, true}, /* present with an empty value */
        /* comma = AND */
        {"team=web,env=prod", L_WEB_PROD, true},
        {"team=web,env=prod", L_WEB_DEV, false},
        {"team=web, env!=prod", L_WEB_DEV, true},
        {"team in (web,api),!env", L_API, true},
        {"team in (web,api),!env", L_WEB_DEV, false},
        {"team, env notin (dev), team!=api", L_WEB_PROD, true},
        {"team=web,team=api", L_WEB_PROD, false},
        /* keys that are operator words */
        {"in", L_NONE, false},
        {"notin", L_NONE, false},
        {"!in", L_NONE, true},
        /* keys and values with '/', '.', UTF-8 */
        {"app.kubernetes.io/name=albd", L_ODD, true},
        {"ünï in (cödé)", L_ODD, true},
        {"ünï=code", L_ODD, false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rc_selector *s = NULL;
        char err[200];
        if (rc_selector_parse(cases[i].sel, &s, err, sizeof err) != 0) {
            print_error("\"%s\": unexpected parse error: %s\n", cases[i].sel, err);
            failures++;
            continue;
        }
        bool got = rc_selector_matches(s, list_get, cases[i].labels);
        if (got != cases[i].match) {
            print_error("\"%s\" (case %zu): match %d, want %d\n", cases[i].sel, i, got,
                        cases[i].match);
            failures++;
        }
        rc_selector_free(s);
    }
    assert_int_equal(failures, 0);
}

struct error_case {
    const char *sel;
    const char *want; /* a substring of the message */
};

static void test_parse_errors(void **state)
{
    static const struct error_case cases[] = {
        {",", "column 1: expected a label key, found \",\""},
        {"team=web,", "expected a requirement after \",\""},
        {"team=web,,env", "column 10: expected a label key"},
        {"=web", "column 1: expected a label key, found \"=\""},
        {"team=web=x", "column 9: expected \",\" or the end after the value of \"team\""},
        {"team===web", "after the value of \"team\""},
        {"team!web", "expected \"!=\" after the key \"team\""},
        {"team web", "column 6: expected \"=\", \"==\", \"!=\", \"in\", \"notin\""},
        {"team in web", "expected a value list \"(a,b)\" after \"in\""},
        {"team in ()", "expected a value in the list after \"in\", found \")\""},
        {"team in (a,)", "expected a value in the list"},
        {"team in (a b)", "expected \",\" or \")\" in the value list"},
        {"team in (a", "expected \",\" or \")\" in the value list, found end of selector"},
        {"team notin", "after \"notin\", found end of selector"},
        {"team in (a) b", "after the value list of \"team\""},
        {"!", "expected a label key after \"!\", found end of selector"},
        {"!team=web", "column 6: expected \",\" or the end of the selector, found \"=\""},
        {"!!team", "expected a label key after \"!\""},
        {"(team)", "expected a label key, found \"(\""},
        {"team)", "found \")\""},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rc_selector *s = (struct rc_selector *)1;
        char err[200];
        int rc = rc_selector_parse(cases[i].sel, &s, err, sizeof err);
        if (rc != -1 || s != NULL || strstr(err, cases[i].want) == NULL) {
            print_error("\"%s\": rc %d, message \"%s\", want \"%s\"\n", cases[i].sel, rc,
                        rc == 0 ? "" : err, cases[i].want);
            failures++;
        }
        if (rc == 0)
            rc_selector_free(s);
    }
    assert_int_equal(failures, 0);

    /* too long */
    char *big = malloc(RC_SELECTOR_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', RC_SELECTOR_MAX + 1);
    big[RC_SELECTOR_MAX + 1] = '\0';
    struct rc_selector *s = NULL;
    char err[200];
    assert_int_equal(rc_selector_parse(big, &s, err, sizeof err), -1);
    assert_null(s);
    assert_non_null(strstr(err, "longer than"));
    big[RC_SELECTOR_MAX] = '\0';
    assert_int_equal(rc_selector_parse(big, &s, err, sizeof err), 0);
    assert_int_equal(rc_selector_size(s), 1);
    rc_selector_free(s);
    free(big);
    /* a tiny error buffer truncates, never overflows */
    char small[8];
    assert_int_equal(rc_selector_parse("a in b", &s, small, sizeof small), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_sizes_and_null(void **state)
{
    struct rc_selector *s = NULL;
    char err[100];
    assert_int_equal(rc_selector_parse(NULL, &s, err, sizeof err), 0);
    assert_int_equal(rc_selector_size(s), 0);
    rc_selector_free(s);
    assert_int_equal(rc_selector_parse("a,b=c,d in (e,f),!g", &s, err, sizeof err), 0);
    assert_int_equal(rc_selector_size(s), 4);
    rc_selector_free(s);
    assert_int_equal(rc_selector_size(NULL), 0);
    rc_selector_free(NULL);
}

static void test_match_json_and_meta(void **state)
{
    struct rc_selector *s = NULL;
    char err[100];
    assert_int_equal(rc_selector_parse("team=web,!legacy", &s, err, sizeof err), 0);
    json_t *l = json_pack("{s:s}", "team", "web");
    assert_true(rc_selector_matches_json(s, l));
    json_object_set_new(l, "legacy", json_string("yes"));
    assert_false(rc_selector_matches_json(s, l));
    json_decref(l);
    l = json_pack("{s:i}", "team", 1); /* a non-string value counts as absent */
    assert_false(rc_selector_matches_json(s, l));
    json_decref(l);
    assert_false(rc_selector_matches_json(s, NULL));

    struct rc_label labels[] = {{"legacy", "no"}, {"team", "web"}};
    struct rc_meta m = {.kind = "Listener", .name = "x", .labels = labels, .n_labels = 2};
    assert_false(rc_selector_matches_meta(s, &m));
    m.labels = &labels[1];
    m.n_labels = 1;
    assert_true(rc_selector_matches_meta(s, &m));
    rc_selector_free(s);
}

static json_t *export_of(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_filter_exports(void **state)
{
    json_t *running = export_of("{\"resources\": {"
                                "\"Listener\": {"
                                "  \"a\": {\"labels\": {\"team\": \"web\"}, \"spec\": {}},"
                                "  \"b\": {\"labels\": {\"team\": \"api\"}, \"spec\": {}},"
                                "  \"c\": {\"labels\": {}, \"spec\": {}}},"
                                "\"ServerGroup\": {"
                                "  \"g\": {\"labels\": {\"team\": \"web\"}, \"spec\": {}}},"
                                "\"Instance\": {}}}");
    json_t *desired = export_of("{\"resources\": {"
                                "\"Listener\": {"
                                "  \"a\": {\"labels\": {\"team\": \"web\"}, \"spec\": {}},"
                                "  \"b\": {\"labels\": {\"team\": \"web\"}, \"spec\": {}},"
                                "  \"c\": {\"labels\": {}, \"spec\": {}},"
                                "  \"d\": {\"labels\": {\"team\": \"web\"}, \"spec\": {}}},"
                                "\"ServerGroup\": {},"
                                "\"Instance\": {}}}");
    struct rc_selector *s = NULL;
    char err[100];
    assert_int_equal(rc_selector_parse("team=web", &s, err, sizeof err), 0);
    assert_true(rc_selector_selects(s, desired, "Listener", "b"));
    assert_false(rc_selector_selects(s, running, "Listener", "b"));
    assert_false(rc_selector_selects(s, running, "Listener", "zz"));
    assert_false(rc_selector_selects(s, NULL, "Listener", "a"));

    assert_int_equal(rc_selector_filter_exports(s, running, desired), 0);
    json_t *rl = json_object_get(json_object_get(running, "resources"), "Listener");
    json_t *dl = json_object_get(json_object_get(desired, "resources"), "Listener");
    /* a: matches on both sides; b: matches in desired only, kept on both;
     * c: matches nowhere; d: new and matching; g: deleted and matching. */
    assert_non_null(json_object_get(rl, "a"));
    assert_non_null(json_object_get(rl, "b"));
    assert_null(json_object_get(rl, "c"));
    assert_non_null(json_object_get(dl, "a"));
    assert_non_null(json_object_get(dl, "b"));
    assert_null(json_object_get(dl, "c"));
    assert_non_null(json_object_get(dl, "d"));
    assert_non_null(json_object_get(
        json_object_get(json_object_get(running, "resources"), "ServerGroup"), "g"));
    /* kind keys stay */
    assert_non_null(json_object_get(json_object_get(desired, "resources"), "Instance"));

    /* one side only (plan from nothing, /config) */
    assert_int_equal(rc_selector_filter_exports(s, NULL, desired), 0);
    assert_int_equal(json_object_size(dl), 3);
    rc_selector_free(s);
    /* the empty selector keeps everything */
    assert_int_equal(rc_selector_parse("", &s, err, sizeof err), 0);
    assert_int_equal(rc_selector_filter_exports(s, running, NULL), 0);
    assert_int_equal(json_object_size(rl), 2);
    rc_selector_free(s);
    json_decref(running);
    json_decref(desired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),    cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_sizes_and_null), cmocka_unit_test(test_match_json_and_meta),
        cmocka_unit_test(test_filter_exports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
