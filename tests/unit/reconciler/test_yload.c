/* rc_y_load and the limits of a manifest file, through whole loads
 * (rc_load_dir): generated aliases, nesting, long scalars and wide
 * collections of growing size are each refused or accepted as intended,
 * with a located error, and the CPU time a load takes grows in proportion
 * to the file (a generous factor, compared between sizes so it cannot
 * flake; a quadratic walk or an alias expansion is far past it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reconciler/doc.h"
#include "reconciler/err.h"
#include "reconciler/rc.h"
#include "test_files.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    /* A load that never ends (an alias expanded without end) fails the
     * test instead of hanging it. */
    alarm(100);
    return tf_mkdtemp(dir, sizeof(dir), "yload");
}

static int teardown(void **state)
{
    (void)state;
    alarm(0);
    return tf_rm_rf(dir);
}

/* A growable text. */
struct text {
    char *p;
    size_t n, cap;
};

static void add(struct text *t, const char *s, size_t n)
{
    if (t->n + n + 1 > t->cap) {
        t->cap = (t->n + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
}

static void adds(struct text *t, const char *s)
{
    add(t, s, strlen(s));
}

static void addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct text *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    add(t, buf, (size_t)n);
}

static const char HEAD[] = "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: main}\n";

/* What one strict load of a folder holding just m.yaml = text said. */
struct outcome {
    int rc;
    double cpu_ms;
    size_t n_errs;
    char first[1024]; /* the first error, formatted */
    int line, col;
};

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct outcome load_text(const struct text *t)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/m.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(t->p, 1, t->n, f), t->n);
    fclose(f);
    struct outcome o = {0};
    struct rc_errs errs;
    rc_errs_init(&errs);
    struct rc_model *m = NULL;
    double t0 = cpu_ms();
    o.rc = rc_load_dir(dir, time(NULL), &m, &errs);
    o.cpu_ms = cpu_ms() - t0;
    o.n_errs = errs.n;
    if (errs.n) {
        rc_err_format(&errs.v[0], o.first, sizeof(o.first));
        o.line = errs.v[0].line;
        o.col = errs.v[0].col;
    }
    rc_model_unref(m);
    rc_errs_cleanup(&errs);
    return o;
}

/* ---- generators: a file of about n bytes ---- */

/* Comment lines up to n bytes, then a self-referencing alias. */
static void gen_self_alias(struct text *t, size_t n)
{
    while (t->n < n)
        adds(t, "# padding padding padding padding padding padding padding padding\n");
    adds(t, HEAD);
    adds(t, "spec: {edition: Standard, addresses: &a [*a, *a]}\n");
}

/* "Billion laughs": each level ten aliases of the one before, as many
 * levels as fit in n bytes. */
static void gen_laughs(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n  edition: Standard\n  l0: &l0 [\"lol\"]\n");
    for (int k = 1; t->n < n; k++) {
        addf(t, "  l%d: &l%d [", k, k);
        for (int i = 0; i < 10; i++)
            addf(t, "%s*l%d", i ? ", " : "", k - 1);
        adds(t, "]\n");
    }
}

/* An alias with no anchor in the file. */
static void gen_alias_only(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n  addresses:\n");
    while (t->n < n)
        adds(t, "  - *x\n");
}

/* Flow collections opened n times over. */
static void gen_flow_deep(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec: {edition: Standard, addresses: ");
    while (t->n < n)
        adds(t, "[{a: [[{b: ");
}

/* Block sequences nested on one line ("- - - x"). */
static void gen_block_deep(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n  addresses:\n  ");
    while (t->n < n)
        adds(t, "- ");
    adds(t, "x\n");
}

/* One label value of n bytes: refused by the schema (at most 128
 * characters), never quoted. */
static void gen_long_scalar(struct text *t, size_t n)
{
    adds(t, "apiVersion: albd/v1\nkind: Instance\nmetadata:\n  name: main\n  labels:\n    a: \"");
    while (t->n < n)
        adds(t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    adds(t, "\"\n");
}

/* A list of distinct addresses (uniqueItems): valid. */
static void gen_wide_list(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n  addresses:\n");
    for (unsigned i = 0; t->n < n; i++)
        addf(t, "  - 10.%u.%u.%u\n", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/* The same address over and over: one error each, at most 100 kept. */
static void gen_wide_dups(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n  addresses: [");
    while (t->n < n)
        adds(t, "10.0.0.1, ");
    adds(t, "10.0.0.1]\n");
}

/* A mapping of distinct unknown keys (duplicate-key and unknown-field
 * checks). */
static void gen_many_keys(struct text *t, size_t n)
{
    adds(t, HEAD);
    adds(t, "spec:\n");
    for (unsigned i = 0; t->n < n; i++)
        addf(t, "  k%u: 1\n", i);
}

/* Many documents, each a valid Instance-like resource (the splitter and
 * the per-document work). */
static void gen_many_docs(struct text *t, size_t n)
{
    for (unsigned i = 0; t->n < n; i++)
        addf(t,
             "---\napiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g%u}\n"
             "spec:\n  servers:\n    - {address: 10.0.%u.%u, port: 8080}\n",
             i, (i >> 8) & 255, i & 255);
}

typedef void (*gen_fn)(struct text *t, size_t n);

static struct outcome run_gen(gen_fn g, size_t n)
{
    struct text t = {0};
    g(&t, n);
    struct outcome o = load_text(&t);
    free(t.p);
    return o;
}

/* The load of a file 32 times larger costs at most 4 * 32 times the CPU
 * (a floor of 5 ms for the small one, whose time is mostly noise): linear
 * or n log n passes, n * n does not. */
static void assert_linear(gen_fn g, const char *what)
{
    size_t small = 64 << 10, big = 2 << 20;
    struct outcome a = run_gen(g, small), b = run_gen(g, big);
    double base = a.cpu_ms > 5 ? a.cpu_ms : 5;
    double limit = 4.0 * (double)(big / small) * base;
    print_message("%s: %zu KiB %.1f ms, %zu KiB %.1f ms CPU (limit %.0f ms)\n", what, small >> 10,
                  a.cpu_ms, big >> 10, b.cpu_ms, limit);
    if (b.cpu_ms > limit)
        fail_msg("%s: %zu bytes took %.1f ms, %zu bytes %.1f ms (limit %.1f ms)", what, small,
                 a.cpu_ms, big, b.cpu_ms, limit);
}

static void assert_refused(struct outcome o, const char *msg, int line)
{
    assert_int_not_equal(o.rc, 0);
    if (strstr(o.first, msg) == NULL)
        fail_msg("expected \"%s\", got \"%s\"", msg, o.first);
    if (line)
        assert_int_equal(o.line, line);
    assert_true(o.col > 0);
}

/* ---- the cases ---- */

static void aliases_are_refused_where_they_are(void **state)
{
    (void)state;
    for (size_t n = 1 << 10; n <= (1 << 20); n *= 8) {
        struct text t = {0};
        gen_self_alias(&t, n);
        int line = 0;
        for (size_t i = 0; i < t.n; i++)
            line += t.p[i] == '\n';
        free(t.p);
        struct outcome o = run_gen(gen_self_alias, n);
        assert_refused(o, "anchors (&name) are not supported", line);
        assert_int_equal(o.col, 38);
        assert_refused(run_gen(gen_laughs, n), "anchors (&name) are not supported", 6);
        assert_refused(run_gen(gen_alias_only, n), "aliases (*name) are not supported", 6);
    }
    assert_linear(gen_self_alias, "self alias");
    assert_linear(gen_laughs, "billion laughs");
}

static void nesting_past_64_is_refused(void **state)
{
    (void)state;
    for (size_t n = 1 << 10; n <= (4 << 20); n *= 16) {
        assert_refused(run_gen(gen_flow_deep, n), "nested deeper than 64 levels", 4);
        assert_refused(run_gen(gen_block_deep, n), "nested deeper than 64 levels", 6);
    }
    assert_linear(gen_flow_deep, "flow nesting");
    assert_linear(gen_block_deep, "block nesting");
}

/* 64 levels are loaded (the document is then not a manifest); 65 are not. */
static void sixty_four_levels_are_the_limit(void **state)
{
    (void)state;
    struct text t = {0};
    for (int i = 0; i < 64; i++)
        adds(&t, "[");
    for (int i = 0; i < 64; i++)
        adds(&t, "]");
    adds(&t, "\n");
    struct outcome o = load_text(&t);
    assert_refused(o, "not a manifest: the document is an array", 1);
    t.n = 0;
    for (int i = 0; i < 65; i++)
        adds(&t, "[");
    for (int i = 0; i < 65; i++)
        adds(&t, "]");
    adds(&t, "\n");
    o = load_text(&t);
    assert_refused(o, "nested deeper than 64 levels", 1);
    assert_int_equal(o.col, 65);
    free(t.p);
}

static void long_scalars_are_linear_and_never_quoted(void **state)
{
    (void)state;
    struct outcome o = run_gen(gen_long_scalar, 1 << 20);
    assert_refused(o, "is longer than 128 characters", 6);
    assert_null(strstr(o.first, "xxxxxxxxxx"));
    assert_linear(gen_long_scalar, "long scalar");
}

static void wide_collections_are_linear(void **state)
{
    (void)state;
    struct outcome o = run_gen(gen_wide_list, 1 << 20);
    assert_int_equal(o.rc, 0);
    assert_linear(gen_wide_list, "distinct list (uniqueItems)");

    o = run_gen(gen_wide_dups, 1 << 20);
    assert_refused(o, "duplicates item [0]", 5);
    assert_true(o.n_errs <= 101); /* 100 kept, and one saying there are more */
    assert_linear(gen_wide_dups, "repeated list (uniqueItems)");

    o = run_gen(gen_many_keys, 1 << 20);
    assert_refused(o, "unknown field", 5);
    assert_true(o.n_errs <= 101);
    assert_linear(gen_many_keys, "many keys");

    o = run_gen(gen_many_docs, 1 << 20);
    assert_int_equal(o.rc, 0);
    assert_linear(gen_many_docs, "many documents");
}

/* More than RC_Y_MAX_NODES nodes in one file: refused where the budget
 * runs out, before libyaml's nodes (about 160 bytes each) fill memory. */
static void the_node_budget_holds(void **state)
{
    (void)state;
    struct text t = {0};
    adds(&t, HEAD);
    adds(&t, "spec:\n  addresses: [");
    for (int i = 0; i < 1100000; i++)
        adds(&t, "1,");
    adds(&t, "1]\n");
    struct outcome o = load_text(&t);
    assert_refused(o, "more than 1000000 YAML nodes in one file", 5);
    free(t.p);
}

/* The size limit: 8 MiB, named in the error. */
static void a_file_past_8_mib_is_refused(void **state)
{
    (void)state;
    struct text t = {0};
    adds(&t, HEAD);
    while (t.n <= (8u << 20))
        adds(&t, "# ................................................................\n");
    struct outcome o = load_text(&t);
    assert_int_not_equal(o.rc, 0);
    assert_non_null(strstr(o.first, "larger than 8 MiB"));
    free(t.p);
}

/* rc_y_load refuses what yaml_parser_load would share, where it is. */
static void rc_y_load_refuses_anchors_and_aliases(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int line, col;
        const char *problem;
    } cases[] = {
        {"a: 1\nb: &x [*x]\n", 2, 4, "anchors (&name) are not supported in manifests"},
        {"a: [1, *x]\n", 1, 8, "aliases (*name) are not supported in manifests"},
        {"a: {b: [[{c: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 1,
         73, "nested deeper than 64 levels"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        yaml_parser_t p;
        assert_true(yaml_parser_initialize(&p));
        yaml_parser_set_input_string(&p, (const unsigned char *)cases[i].text,
                                     strlen(cases[i].text));
        yaml_document_t y;
        struct rc_y_diag e;
        size_t budget = RC_Y_MAX_NODES;
        assert_int_equal(rc_y_load(&p, &y, &budget, &e), 0);
        assert_true(e.refused);
        assert_string_equal(e.problem, cases[i].problem);
        assert_int_equal((int)e.mark.line + 1, cases[i].line);
        assert_int_equal((int)e.mark.column + 1, cases[i].col);
        yaml_parser_delete(&p);
    }
    /* The node budget is shared by the documents of a file. */
    const char *two = "[a, b, c]\n---\n[d, e, f]\n";
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)two, strlen(two));
    yaml_document_t y;
    struct rc_y_diag e;
    size_t budget = 6;
    assert_int_equal(rc_y_load(&p, &y, &budget, &e), 1);
    assert_int_equal(budget, 2);
    assert_int_equal(yaml_document_get_root_node(&y)->end_mark.index, 9);
    yaml_document_delete(&y);
    assert_int_equal(rc_y_load(&p, &y, &budget, &e), 0);
    assert_string_equal(e.problem, "more than 1000000 YAML nodes in one file");
    assert_int_equal((int)e.mark.line + 1, 3);
    assert_int_equal((int)e.mark.column + 1, 5);
    yaml_parser_delete(&p);
}

/* The pre-scan counts flow nesting before libyaml sees the bytes, and is
 * not fooled by brackets in comments, quoted scalars, block scalars or the
 * middle of plain scalars. */
static void the_prescan_counts_only_flow_nesting(void **state)
{
    (void)state;
    char many[200];
    memset(many, '[', 100);
    many[100] = '\0';
    char text[4096];
    const char *fine[] = {
        "a: \"%s\"\n",       "b: '%s'\n",           "# %s\nc: 1\n",     "d: |\n  %s\n  %s\ne: 1\n",
        "f: x %s\n",         "g: [\"%s\", '%s']\n", "h: >-\n\n   %s\n", "i: {k: \"%s\"}\n",
        "- a: 'it''s %s'\n",
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(*fine); i++) {
        snprintf(text, sizeof(text), fine[i], many, many);
        struct rc_y_diag e;
        if (rc_y_prescan(text, strlen(text), &e) != 0)
            fail_msg("refused: %s", text);
    }
    /* Every manifest in the tree passes. */
    const char *files[] = {ALBD_TEST_DATA "/../../manifests/examples/listeners.yaml",
                           ALBD_TEST_DATA "/../../manifests/examples/tls.yaml",
                           ALBD_TEST_DATA "/../../manifests/examples/backends.yaml",
                           ALBD_TEST_DATA "/../../manifests/examples/instance.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        size_t len;
        char *t = tf_read_all(files[i], &len);
        struct rc_y_diag e;
        assert_int_equal(rc_y_prescan(t, len, &e), 0);
        free(t);
    }
    const struct {
        const char *text;
        int line, col;
    } deep[] = {
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 1, 65},
        {"# [[[\na: 1\nb: {c: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 3,
         71},
        {"x: |\n  [[[\ny:\n  - [{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{[{"
         "[{[{[{[{[{[",
         4, 69},
    };
    for (size_t i = 0; i < sizeof(deep) / sizeof(*deep); i++) {
        struct rc_y_diag e;
        if (rc_y_prescan(deep[i].text, strlen(deep[i].text), &e) != 1)
            fail_msg("not refused: %s", deep[i].text);
        assert_string_equal(e.problem, "nested deeper than 64 levels");
        assert_int_equal((int)e.mark.line + 1, deep[i].line);
        assert_int_equal((int)e.mark.column + 1, deep[i].col);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rc_y_load_refuses_anchors_and_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(the_prescan_counts_only_flow_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(aliases_are_refused_where_they_are, setup, teardown),
        cmocka_unit_test_setup_teardown(nesting_past_64_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(sixty_four_levels_are_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(long_scalars_are_linear_and_never_quoted, setup, teardown),
        cmocka_unit_test_setup_teardown(wide_collections_are_linear, setup, teardown),
        cmocka_unit_test_setup_teardown(the_node_budget_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_past_8_mib_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
