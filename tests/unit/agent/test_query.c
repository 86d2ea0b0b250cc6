/* agent/query.c: query string parameters, percent-decoded, case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/query.h"

struct get_case {
    const char *query;
    int rc;
    const char *value; /* rc 1: the value; rc -1: a substring of the error */
};

static void test_get_table(void **state)
{
    static const struct get_case cases[] = {
        {NULL, 0, NULL},
        {"", 0, NULL},
        {"x=1", 0, NULL},
        {"l=team=web", 1, "team=web"},
        {"l=team%3Dweb", 1, "team=web"},
        {"l=team%3dweb", 1, "team=web"},
        {"l=team+in+(web%2Capi)", 1, "team in (web,api)"},
        {"l=env%20notin%20(dev)", 1, "env notin (dev)"},
        {"l=%21env", 1, "!env"},
        {"l=a%2Bb", 1, "a+b"},
        {"x=1&l=team%3Dweb&y", 1, "team=web"},
        {"l=team%3Dweb&l=env", 1, "team=web,env"}, /* several: joined, ANDed */
        {"l", 1, ""},
        {"l=", 1, ""},
        {"%6C=team", 1, "team"}, /* the name is decoded too */
        {"ll=team&al=x", 0, NULL},
        {"l=caf%C3%A9", 1, "caf\xc3\xa9"},
        {"&&l=a&&", 1, "a"},
        {"l=%", -1, "malformed percent-escape \"%\""},
        {"l=%4", -1, "malformed percent-escape \"%4\""},
        {"l=%zz", -1, "malformed percent-escape \"%zz\""},
        {"l=a%00b", -1, "NUL"},
        {"x=%g1&l=a", 1, "a"}, /* other parameters' values are not read */
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = (char *)1, err[128] = "";
        int rc = ag_query_get(cases[i].query, "l", ',', &out, err, sizeof err);
        bool ok = rc == cases[i].rc;
        if (ok && rc == 1)
            ok = out != NULL && strcmp(out, cases[i].value) == 0;
        else if (ok)
            ok = out == NULL && (rc == 0 || strstr(err, cases[i].value) != NULL);
        if (!ok) {
            print_error("query \"%s\": rc %d, out \"%s\", err \"%s\"\n",
                        cases[i].query ? cases[i].query : "(null)", rc, rc == 1 && out ? out : "",
                        err);
            failures++;
        }
        if (rc == 1)
            free(out);
    }
    assert_int_equal(failures, 0);
}

static void test_too_long(void **state)
{
    size_t n = AG_QUERY_VALUE_MAX + 10;
    char *q = malloc(n + 1);
    assert_non_null(q);
    memcpy(q, "l=", 2);
    memset(q + 2, 'a', n - 2);
    q[n] = '\0';
    char *out = NULL, err[128];
    assert_int_equal(ag_query_get(q, "l", ',', &out, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "longer than"));
    q[2 + AG_QUERY_VALUE_MAX] = '\0'; /* exactly the maximum */
    assert_int_equal(ag_query_get(q, "l", ',', &out, err, sizeof err), 1);
    assert_int_equal(strlen(out), AG_QUERY_VALUE_MAX);
    free(out);
    /* escapes count decoded: 3 bytes of text for one byte of value */
    free(q);
    n = 2 + 3 * AG_QUERY_VALUE_MAX;
    q = malloc(n + 1);
    assert_non_null(q);
    memcpy(q, "l=", 2);
    for (size_t i = 0; i < AG_QUERY_VALUE_MAX; i++)
        memcpy(q + 2 + 3 * i, "%41", 3);
    q[n] = '\0';
    assert_int_equal(ag_query_get(q, "l", ',', &out, err, sizeof err), 1);
    assert_int_equal(strlen(out), AG_QUERY_VALUE_MAX);
    free(out);
    free(q);
    /* joined values over the limit */
    char *big = malloc(AG_QUERY_VALUE_MAX + 16);
    assert_non_null(big);
    snprintf(big, AG_QUERY_VALUE_MAX + 16, "l=%0*d&l=x", AG_QUERY_VALUE_MAX, 0);
    assert_int_equal(ag_query_get(big, "l", ',', &out, err, sizeof err), -1);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_table),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
