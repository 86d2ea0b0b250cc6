/* common/hostname.c: the reference's wildcard certificate rules, case by
 * case — the one copy that validation (reconciler/cert.c) applies and the
 * proxy (tls_ctx.c) matches by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/hostname.h"

struct wcase {
    const char *pattern;
    bool valid;
};

static const struct wcase table_cases[] = {
    /* the reference's examples */
    {"*.example.com", true},
    {"*test.example.com", true},
    {"test*.example.com", false},
    /* one '*', leftmost label only, at its start */
    {"*.*.example.com", false},
    {"a.*.example.com", false},
    {"**.example.com", false},
    {"*a*.example.com", false},
    {"te*st.example.com", false},
    {"example.*", false},
    /* '*' followed by letters, digits, hyphens only */
    {"*-api.example.com", true},
    {"*09.example.com", true},
    {"*_x.example.com", false},
    {"*.x_y.example.com", true}, /* only the wildcard label is restricted */
    /* shape */
    {"*", false},
    {"*.", false},
    {"*..example.com", false},
    {"*.example..com", false},
    {"*.example.com.", false},
    {"*.com", true},
    {"*.EXAMPLE.COM", true},
    /* not wildcards at all */
    {"www.example.com", false},
    {"", false},
    {NULL, false},
};

static void test_wildcard_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table_cases / sizeof table_cases[0]; i++) {
        const struct wcase *c = &table_cases[i];
        bool got = cm_hostname_wildcard_valid(c->pattern);
        if (got != c->valid)
            print_error("\"%s\": cm_hostname_wildcard_valid %d, want %d\n",
                        c->pattern ? c->pattern : "(null)", got, c->valid);
        assert_int_equal(got, c->valid);
    }
}

static void test_length_limit(void **state)
{
    (void)state;
    char name[CM_HOSTNAME_MAX + 2];
    /* "*." then labels of 'a' up to exactly CM_HOSTNAME_MAX characters. */
    memset(name, 'a', sizeof name);
    name[0] = '*';
    name[1] = '.';
    for (size_t i = 60; i < CM_HOSTNAME_MAX; i += 61)
        name[i] = '.';
    name[CM_HOSTNAME_MAX] = '\0';
    assert_true(cm_hostname_wildcard_valid(name));
    name[CM_HOSTNAME_MAX] = 'a';
    name[CM_HOSTNAME_MAX + 1] = '\0';
    assert_false(cm_hostname_wildcard_valid(name));
}

struct valid_case {
    const char *pattern;
    bool valid;
};

static void test_wildcard_valid(void **state)
{
    static const struct valid_case cases[] = {
        /* the reference's examples */
        {"*.example.com", true},
        {"*test.example.com", true},
        {"test*.example.com", false},
        /* one '*', leftmost label only */
        {"*.*.com", false},
        {"a.*.com", false},
        {"**.example.com", false},
        {"*a*.example.com", false},
        {"t*st.example.com", false},
        {"example.*", false},
        /* shape */
        {"*", false},
        {"*.", false},
        {"*..com", false},
        {"*.example..com", false},
        {"*.example.com.", false},
        {"*.com", true},
        {"*-api.example.com", true},
        {"*.EXAMPLE.com", true},
        {"*_x.example.com", false},
        /* not wildcards */
        {"www.example.com", false},
        {"", false},
        {NULL, false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = cm_hostname_wildcard_valid(cases[i].pattern);
        if (got != cases[i].valid) {
            print_error("cm_hostname_wildcard_valid(\"%s\") = %d, want %d\n",
                        cases[i].pattern ? cases[i].pattern : "(null)", got, cases[i].valid);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct match_case {
    const char *pattern;
    const char *host;
    bool match;
};

static void test_match(void **state)
{
    static const struct match_case cases[] = {
        /* the reference's examples */
        {"*.example.com", "test.example.com", true},
        {"*.example.com", "test.test.example.com", false},
        {"*.example.com", "xn--fsqu00a.example.com", true},
        {"*test.example.com", "xn--fsqu00atest.example.com", false},
        {"*.example.com", "test_test.example.com", false},
        /* '*' needs at least one character, of [0-9A-Za-z-] */
        {"*.example.com", "example.com", false},
        {"*.example.com", ".example.com", false},
        {"*test.example.com", "test.example.com", false},
        {"*test.example.com", "footest.example.com", true},
        {"*test.example.com", "a-1test.example.com", true},
        {"*test.example.com", "testfoo.example.com", false},
        {"*test.example.com", "foo_test.example.com", false},
        {"*.example.com", "a.example.com", true},
        {"*.example.com", "9.example.com", true},
        {"*.example.com", "-.example.com", true},
        {"*.example.com", "a b.example.com", false},
        {"*.example.com", "a*.example.com", false},
        /* IDNA labels and a '*' that is the whole label */
        {"*.example.com", "XN--FSQU00A.example.com", true},
        {"*test.example.com", "XN--abctest.example.com", false},
        {"*n--a.example.com", "xn--a.example.com", false},
        {"*x.example.com", "xn--ax.example.com", false},
        /* case-insensitive, trailing dot */
        {"*.Example.COM", "TEST.example.com", true},
        {"*TEST.example.com", "footest.EXAMPLE.com", true},
        {"*.example.com", "test.example.com.", true},
        {"www.example.com", "WWW.EXAMPLE.COM", true},
        {"www.example.com", "www.example.com.", true},
        /* exact names compare whole */
        {"www.example.com", "www.example.co", false},
        {"www.example.com", "www.example.com.au", false},
        {"www.example.com", "xwww.example.com", false},
        {"www.example.com", "", false},
        /* suffix must be equal, not merely a suffix */
        {"*.example.com", "a.badexample.com", false},
        {"*.example.com", "a.example.org", false},
        {"*.example.com", "a.example.com.evil.net", false},
        /* invalid patterns match nothing */
        {"test*.example.com", "test1.example.com", false},
        {"*.*.com", "a.b.com", false},
        {"a.*.com", "a.b.com", false},
        {"*", "localhost", false},
        /* a wildcard is not an exact name */
        {"*.example.com", "*.example.com", false},
        {"*.com", "example.com", true},
        {"*.com", "a.example.com", false},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = cm_hostname_match(cases[i].pattern, cases[i].host);
        if (got != cases[i].match) {
            print_error("cm_hostname_match(\"%s\", \"%s\") = %d, want %d\n", cases[i].pattern,
                        cases[i].host, got, cases[i].match);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* host_len bounds the comparison: bytes past it are not part of the host. */
static void test_match_n_uses_length(void **state)
{
    const char *buf = "test.example.com:8443";
    assert_true(cm_hostname_match_n("*.example.com", buf, 16));
    assert_false(cm_hostname_match_n("*.example.com", buf, 15));
    assert_true(cm_hostname_match_n("test.example.com", buf, 16));
    assert_false(cm_hostname_match_n("test.example.com", buf, strlen(buf)));
}

static void test_too_long(void **state)
{
    char host[300];
    memset(host, 'a', sizeof host);
    memcpy(host + 254 - 12, ".example.com", 12);
    host[254] = '\0'; /* 254 characters: one too many */
    assert_false(cm_hostname_match("*.example.com", host));
    char out[300];
    assert_int_equal(cm_hostname_normalize(host, strlen(host), out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize(host + 1, strlen(host + 1), out, sizeof out), 253);
}

static void test_normalize(void **state)
{
    char out[64];
    assert_int_equal(cm_hostname_normalize("WWW.Example.COM.", 16, out, sizeof out), 15);
    assert_string_equal(out, "www.example.com");
    assert_int_equal(cm_hostname_normalize("under_score.test", 16, out, sizeof out), 16);
    assert_int_equal(cm_hostname_normalize("a..b", 4, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize(".a", 2, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize("", 0, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize("*.a.b", 5, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize("a b", 3, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize("a\0b", 3, out, sizeof out), -1);
    assert_int_equal(cm_hostname_normalize("abcdef", 6, out, 6), -1); /* no room for the NUL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcard_table),      cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_wildcard_valid),      cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_n_uses_length), cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
