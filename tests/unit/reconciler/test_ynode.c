/* The YAML node helpers: the canonical walk stops on a document whose
 * nodes are shared (what yaml_parser_load makes of aliases) instead of
 * expanding it without end; rc_y_load never makes such a document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/doc.h"

static int setup(void **state)
{
    (void)state;
    alarm(30); /* a walk that never ends fails the test */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

/* Loads text with libyaml's own loader (aliases become shared nodes). */
static void load_raw(const char *text, yaml_document_t *y)
{
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    assert_true(yaml_parser_load(&p, y));
    yaml_parser_delete(&p);
}

static void canonical_text_of_a_tree(void **state)
{
    (void)state;
    yaml_document_t y;
    load_raw("{b: [1, \"x\\ny\", null], a: {d: 2.5, c: true}}", &y);
    size_t len = 0;
    char *c = rc_y_canonical(&y, yaml_document_get_root_node(&y), &len);
    assert_non_null(c);
    assert_string_equal(c, "{\"a\":{\"c\":true,\"d\":2.5},\"b\":[1,\"x\\u000ay\",null]}");
    assert_int_equal(len, strlen(c));
    free(c);
    yaml_document_delete(&y);
}

static void shared_nodes_stop_the_walk(void **state)
{
    (void)state;
    const char *bombs[] = {
        "addresses: &a [*a, *a]",
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
        "j: [*i, *i, *i, *i, *i, *i, *i, *i, *i, *i]\n",
    };
    for (size_t i = 0; i < sizeof(bombs) / sizeof(*bombs); i++) {
        yaml_document_t y;
        load_raw(bombs[i], &y);
        assert_null(rc_y_canonical(&y, yaml_document_get_root_node(&y), NULL));
        yaml_document_delete(&y);
    }
}

/* Plain scalars get the YAML 1.2 core schema's types; a string is any
 * other plain scalar (most start with a letter that no null, boolean or
 * number starts with), and a quoted scalar is always a string. */
static void scalar_types_of_the_core_schema(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum rc_ytype want;
    } cases[] = {
        {"~", RC_Y_NULL},     {"null", RC_Y_NULL},    {"Null", RC_Y_NULL},   {"NULL", RC_Y_NULL},
        {"nul", RC_Y_STR},    {"nULL", RC_Y_STR},     {"true", RC_Y_BOOL},   {"True", RC_Y_BOOL},
        {"TRUE", RC_Y_BOOL},  {"tRUE", RC_Y_STR},     {"false", RC_Y_BOOL},  {"False", RC_Y_BOOL},
        {"FALSE", RC_Y_BOOL}, {"no", RC_Y_STR},       {"yes", RC_Y_STR},     {"0", RC_Y_INT},
        {"-1", RC_Y_INT},     {"+12", RC_Y_INT},      {"0o17", RC_Y_INT},    {"0x1F", RC_Y_INT},
        {"0x", RC_Y_STR},     {"1.5", RC_Y_FLOAT},    {".5", RC_Y_FLOAT},    {"-.5", RC_Y_FLOAT},
        {"1e3", RC_Y_FLOAT},  {".inf", RC_Y_FLOAT},   {"-.Inf", RC_Y_FLOAT}, {".nan", RC_Y_FLOAT},
        {"+.nan", RC_Y_STR},  {"h123", RC_Y_STR},     {"a", RC_Y_STR},       {"n", RC_Y_STR},
        {"N", RC_Y_STR},      {"t", RC_Y_STR},        {"f", RC_Y_STR},       {"-x", RC_Y_STR},
        {".", RC_Y_STR},      {"~x", RC_Y_STR},       {"x~", RC_Y_STR},      {"1a", RC_Y_STR},
        {"web-1", RC_Y_STR},  {"\"null\"", RC_Y_STR}, {"'12'", RC_Y_STR},    {"\"\"", RC_Y_STR},
        {"k: v", RC_Y_MAP},   {"[1]", RC_Y_SEQ},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        yaml_document_t y;
        load_raw(cases[i].text, &y);
        struct rc_yval v;
        rc_y_classify(yaml_document_get_root_node(&y), &v);
        if (v.type != cases[i].want)
            fail_msg("%s: type %d, want %d", cases[i].text, (int)v.type, (int)cases[i].want);
        yaml_document_delete(&y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(canonical_text_of_a_tree, setup, teardown),
        cmocka_unit_test(scalar_types_of_the_core_schema),
        cmocka_unit_test_setup_teardown(shared_nodes_stop_the_walk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
