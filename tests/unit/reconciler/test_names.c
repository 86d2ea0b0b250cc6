/* reconciler/names.c: the wildcard rule validation applies is the one the
 * proxy matches by — one table checked against both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/sni.h"
#include "reconciler/names.h"

struct wcase {
    const char *pattern;
    bool valid;
};

static const struct wcase cases[] = {
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
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct wcase *c = &cases[i];
        bool rc = rc_wildcard_valid(c->pattern);
        bool px = px_sni_wildcard_valid(c->pattern);
        if (rc != c->valid || px != c->valid)
            print_error("\"%s\": rc_wildcard_valid %d, px_sni_wildcard_valid %d, want %d\n",
                        c->pattern ? c->pattern : "(null)", rc, px, c->valid);
        assert_int_equal(rc, c->valid);
        assert_int_equal(px, c->valid);
    }
}

static void test_length_limit(void **state)
{
    (void)state;
    char name[RC_NAME_MAX + 2];
    /* "*." then labels of 'a' up to exactly RC_NAME_MAX characters. */
    memset(name, 'a', sizeof name);
    name[0] = '*';
    name[1] = '.';
    for (size_t i = 60; i < RC_NAME_MAX; i += 61)
        name[i] = '.';
    name[RC_NAME_MAX] = '\0';
    assert_true(rc_wildcard_valid(name));
    name[RC_NAME_MAX] = 'a';
    name[RC_NAME_MAX + 1] = '\0';
    assert_false(rc_wildcard_valid(name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcard_table),
        cmocka_unit_test(test_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
