/* The JSON Schema validator over libyaml nodes, and the embedded schemas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <regex.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"
#include "reconciler/schema.h"

/* Loads the YAML text into y (libyaml's own loader). */
static void load_doc(yaml_document_t *y, const char *yaml)
{
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
    assert_true(yaml_parser_load(&p, y));
    yaml_parser_delete(&p);
}

/* Validates yaml against the schema text; returns the errors, formatted and
 * joined by newlines, in buf. */
static size_t check(const char *schema_text, const char *yaml, char *buf, size_t size)
{
    json_error_t jerr;
    json_t *schema = json_loads(schema_text, 0, &jerr);
    assert_non_null(schema);
    yaml_document_t y;
    struct rc_doc doc = {.file = "t.yaml", .y = &y};
    load_doc(doc.y, yaml);
    struct rc_errs errs;
    rc_errs_init(&errs);
    size_t n = rc_schema_validate(schema, schema, &doc, yaml_document_get_root_node(doc.y), "",
                                  NULL, NULL, &errs);
    assert_int_equal(n, errs.n);
    rc_errs_sort(&errs);
    buf[0] = '\0';
    for (size_t i = 0; i < errs.n; i++) {
        char line[512];
        rc_err_format(&errs.v[i], line, sizeof(line));
        strncat(buf, line, size - strlen(buf) - 2);
        strcat(buf, "\n");
    }
    rc_errs_cleanup(&errs);
    yaml_document_delete(doc.y);
    json_decref(schema);
    return n;
}

/* A document whose nodes are shared (libyaml's loader turns aliases into
 * them; rc_y_load refuses aliases) stops validation with an error instead
 * of a walk without end. */
static void test_shared_nodes_stop_validation(void **state)
{
    alarm(30);
    char buf[4096];
    /* Any value; arrays and objects are walked all the way down. */
    const char *schema = "{\"$defs\": {\"any\": {\"items\": {\"$ref\": \"#/$defs/any\"}, "
                         "\"additionalProperties\": {\"$ref\": \"#/$defs/any\"}}}, "
                         "\"$ref\": \"#/$defs/any\"}";
    size_t n = check(schema,
                     "a: &a [[x], [y]]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                     "i: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
                     buf, sizeof(buf));
    assert_true(n >= 1);
    if (strstr(buf, "validation stopped: the document's nodes are shared") == NULL)
        fail_msg("%s", buf);
    alarm(0);
}

static void test_embedded_schemas_parse(void **state)
{
    for (size_t i = 0; rc_kinds[i]; i++) {
        const json_t *s = rc_schema_get(rc_kinds[i]);
        assert_non_null(s);
        assert_false(json_is_true(json_object_get(s, "additionalProperties")));
    }
    assert_non_null(rc_schema_get("Document"));
    assert_null(rc_schema_get("Nope"));
    size_t n = 0;
    while (rc_schema_texts[n].name)
        n++;
    assert_int_equal(n, 7);
}

/* Whether the embedded schemas' name pattern (matched by hand, not by
 * regexec) refuses s: validates s as a quoted YAML string against
 * Document's $defs/name and looks for the pattern's message. */
static bool name_pattern_refuses(const char *s)
{
    const json_t *root = rc_schema_get("Document");
    const json_t *name = json_object_get(json_object_get(root, "$defs"), "name");
    assert_non_null(name);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "\"%s\"", s);
    yaml_document_t y;
    struct rc_doc doc = {.file = "t.yaml", .y = &y};
    load_doc(doc.y, yaml);
    struct rc_errs errs;
    rc_errs_init(&errs);
    rc_schema_validate(root, name, &doc, yaml_document_get_root_node(doc.y), "", NULL, NULL, &errs);
    bool refused = false;
    for (size_t i = 0; i < errs.n; i++)
        refused = refused || strstr(errs.v[i].msg, "does not match the pattern") != NULL;
    rc_errs_cleanup(&errs);
    yaml_document_delete(doc.y);
    return refused;
}

/* Resource names are checked by hand against the DNS-label pattern (the
 * one pattern a big listener applies thousands of times): the same
 * verdicts as regexec with that pattern, on every edge. */
static void test_name_pattern_as_regexec(void **state)
{
    (void)state;
    const json_t *name =
        json_object_get(json_object_get(rc_schema_get("Document"), "$defs"), "name");
    const char *pat = json_string_value(json_object_get(name, "pattern"));
    assert_non_null(pat);
    regex_t re;
    assert_int_equal(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
    const char *names[] = {"a",      "z",   "0",  "9",  "ab",  "a-b", "a--b",    "a0-9z",
                           "h10001", "-",   "a-", "-a", "--",  "A",   "aB",      "a_b",
                           "a.b",    "a b", " a", "a ", "a/b", "a:b", "\\u00e9", "\\t",
                           "a\\nb",  "`",   "{",  "@",  "[",   "a[",  "z{"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        /* The YAML escapes give the string regexec sees. */
        yaml_document_t y;
        char yaml[64];
        snprintf(yaml, sizeof yaml, "\"%s\"", names[i]);
        load_doc(&y, yaml);
        const char *str = (const char *)yaml_document_get_root_node(&y)->data.scalar.value;
        bool want = regexec(&re, str, 0, NULL, 0) != 0;
        if (name_pattern_refuses(names[i]) != want)
            fail_msg("name \"%s\": hand check %s, regexec %s", names[i],
                     want ? "accepts" : "refuses", want ? "refuses" : "accepts");
        yaml_document_delete(&y);
    }
    regfree(&re);
}

/* uniqueItems over a long list (a hash table from 64 items on) names
 * each repeat's first occurrence, for strings and for other values. */
static void test_unique_items_in_long_lists(void **state)
{
    (void)state;
    const char *schema = "{\"type\":\"object\",\"properties\":{"
                         "\"s\":{\"type\":\"array\",\"uniqueItems\":true},"
                         "\"o\":{\"type\":\"array\",\"uniqueItems\":true}}}";
    char yaml[8192];
    size_t len = (size_t)snprintf(yaml, sizeof yaml, "s: [");
    for (int i = 0; i < 100; i++) {
        int v = i == 70 || i == 99 ? 3 : i == 50 ? 49 : i;
        len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%sn%d", i ? ", " : "", v);
    }
    len += (size_t)snprintf(yaml + len, sizeof yaml - len, "]\no: [");
    for (int i = 0; i < 80; i++) {
        int v = i == 65 ? 2 : i;
        len += (size_t)snprintf(yaml + len, sizeof yaml - len, "%s{k: %d}", i ? ", " : "", v);
    }
    snprintf(yaml + len, sizeof yaml - len, "]\n");
    char out[4096];
    assert_int_equal(check(schema, yaml, out, sizeof(out)), 4);
    assert_non_null(strstr(out, "error: s[50]: duplicates item [49]\n"));
    assert_non_null(strstr(out, "error: s[70]: duplicates item [3]\n"));
    assert_non_null(strstr(out, "error: s[99]: duplicates item [3]\n"));
    assert_non_null(strstr(out, "error: o[65]: duplicates item [2]\n"));
}

static void test_scalar_types(void **state)
{
    const char *schema = "{\"type\":\"object\",\"properties\":{"
                         "\"i\":{\"type\":\"integer\"},\"n\":{\"type\":\"number\"},"
                         "\"b\":{\"type\":\"boolean\"},\"s\":{\"type\":\"string\"},"
                         "\"z\":{\"type\":\"null\"}}}";
    char out[2048];
    assert_int_equal(
        check(schema, "{i: 0o17, n: -1.5e3, b: false, s: 'true', z: ~}", out, sizeof(out)), 0);
    assert_int_equal(check(schema, "{i: 1.5, n: .inf, b: yes, s: 12, z: null}", out, sizeof(out)),
                     3);
    assert_string_equal(out, "t.yaml:1:5: error: i: expected integer, got number 1.5\n"
                             "t.yaml:1:22: error: b: expected boolean, got string \"yes\"\n"
                             "t.yaml:1:30: error: s: expected string, got integer 12\n");
}

static void test_keywords(void **state)
{
    const char *schema =
        "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"kind\"],"
        "\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5,\"pattern\":\"^[a-z]+$\"},"
        "\"kind\":{\"enum\":[\"A\",\"B\"]},"
        "\"v\":{\"const\":\"x\"},"
        "\"list\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true,"
        "          \"items\":{\"$ref\":\"#/$defs/port\"}},"
        "\"one\":{\"type\":\"object\",\"minProperties\":1,\"maxProperties\":1},"
        "\"alt\":{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"pattern\":\"^p\"}]},"
        "\"map\":{\"type\":\"object\",\"propertyNames\":{\"maxLength\":2},"
        "         \"additionalProperties\":{\"type\":\"integer\"}}},"
        "\"$defs\":{\"port\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":65535}}}";
    char out[4096];
    const char *good = "name: abc\nkind: A\nv: x\nlist: [1, 2]\none: {a: 1}\nalt: pq\n"
                       "map: {ab: 1}\n";
    assert_int_equal(check(schema, good, out, sizeof(out)), 0);
    const char *bad = "name: Abcdef\n"
                      "kind: C\n"
                      "v: y\n"
                      "list: [0, 70000, 0, 5]\n"
                      "one: {a: 1, b: 2}\n"
                      "alt: q\n"
                      "map: {abc: x}\n"
                      "nmae: 1\n"
                      "name: again\n";
    check(schema, bad, out, sizeof(out));
    assert_string_equal(out,
                        "t.yaml:1:7: error: name: \"Abcdef\" does not match the pattern ^[a-z]+$\n"
                        "t.yaml:1:7: error: name: is longer than 5 characters (6)\n"
                        "t.yaml:2:7: error: kind: \"C\" is not one of A, B\n"
                        "t.yaml:3:4: error: v: \"y\" must be x\n"
                        "t.yaml:4:7: error: list: has 4 items, at most 3 allowed\n"
                        "t.yaml:4:8: error: list[0]: 0 is below the minimum 1\n"
                        "t.yaml:4:11: error: list[1]: 70000 is above the maximum 65535\n"
                        "t.yaml:4:18: error: list[2]: 0 is below the minimum 1\n"
                        "t.yaml:4:18: error: list[2]: duplicates item [0]\n"
                        "t.yaml:5:6: error: one: has 2 fields, at most 1 allowed\n"
                        "t.yaml:6:6: error: alt: expected integer, got string \"q\"\n"
                        "t.yaml:7:7: error: map.abc: is longer than 2 characters (3)\n"
                        "t.yaml:7:12: error: map.abc: expected integer, got string \"x\"\n"
                        "t.yaml:8:1: error: nmae: unknown field (did you mean \"name\"?)\n"
                        "t.yaml:9:1: error: name: duplicate field\n");
    /* A missing required field is reported at the mapping; oneOf matching
     * both alternatives is an error. */
    const char *both = "{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"x\":"
                       "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}}}";
    assert_int_equal(check(both, "x: 3\n", out, sizeof(out)), 2);
    assert_string_equal(out, "t.yaml:1:1: error: missing required field \"a\"\n"
                             "t.yaml:1:4: error: x: matches more than one of the allowed forms\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_nodes_stop_validation),
        cmocka_unit_test(test_embedded_schemas_parse),
        cmocka_unit_test(test_name_pattern_as_regexec),
        cmocka_unit_test(test_unique_items_in_long_lists),
        cmocka_unit_test(test_scalar_types),
        cmocka_unit_test(test_keywords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
