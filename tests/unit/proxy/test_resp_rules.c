/* proxy/resp_rules.c: response conditions (status codes and ranges, a
 * response header with wildcards, both), and the filter through a fake
 * sink: first candidate rule that matches wins, a fixed response replaces
 * head and body (HEAD: no body), header edits, 1xx and unmatched heads
 * pass unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "proxy/resp_rules.h"
#include "reconciler/model-t.h"

static struct {
    int status, heads, ends;
    char fields[32][2][64];
    size_t n;
    char body[64];
} seen;

static int s_head(void *owner, const struct px_resp_head *rh)
{
    (void)owner;
    seen.status = rh->status;
    seen.heads++;
    seen.n = rh->n;
    for (size_t i = 0; i < rh->n && i < 32; i++) {
        snprintf(seen.fields[i][0], 64, "%.*s", (int)rh->h[i].name_len, rh->h[i].name);
        snprintf(seen.fields[i][1], 64, "%.*s", (int)rh->h[i].value_len, rh->h[i].value);
    }
    return 0;
}

static int s_data(void *owner, const char *at, size_t len)
{
    (void)owner;
    size_t l = strlen(seen.body);
    snprintf(seen.body + l, sizeof seen.body - l, "%.*s", (int)len, at);
    return 0;
}

static int s_end(void *owner)
{
    (void)owner;
    seen.ends++;
    return 0;
}

static void s_abort(void *owner, int status)
{
    (void)owner;
    (void)status;
}

static const struct px_sink sink = {.head = s_head, .data = s_data, .end = s_end, .abort = s_abort};

static const char *field(const char *name)
{
    for (size_t i = 0; i < seen.n; i++)
        if (!strcasecmp(seen.fields[i][0], name))
            return seen.fields[i][1];
    return NULL;
}

static int ranges[2][2] = {{200, 200}, {500, 599}};
static const char *ctypes[] = {"application/js*", "text/?tml"};

static void conditions(void **state)
{
    (void)state;
    struct rc_rule ru = {.statuses = ranges, .n_statuses = 2};
    struct px_hdr h[] = {{"Content-Type", 12, "application/json", 16}, {"Server", 6, "x", 1}};
    assert_true(px_resp_rule_matches(&ru, 200, h, 2));
    assert_true(px_resp_rule_matches(&ru, 500, h, 2));
    assert_true(px_resp_rule_matches(&ru, 599, h, 2));
    assert_false(px_resp_rule_matches(&ru, 201, h, 2));
    assert_false(px_resp_rule_matches(&ru, 404, h, 2));
    ru.resp_header_name = "content-type";
    ru.resp_header_values = ctypes;
    ru.n_resp_header_values = 2;
    assert_true(px_resp_rule_matches(&ru, 200, h, 2));
    assert_false(px_resp_rule_matches(&ru, 200, h + 1, 1)); /* no such field */
    h[0].value = "text/html";
    h[0].value_len = 9;
    assert_true(px_resp_rule_matches(&ru, 503, h, 2));
    h[0].value = "TEXT/HTML"; /* values compare case-sensitively */
    assert_false(px_resp_rule_matches(&ru, 503, h, 2));
    ru.n_statuses = 0; /* no status condition: any status */
    h[0].value = "text/xtml";
    assert_true(px_resp_rule_matches(&ru, 302, h, 2));
}

static void the_filter(void **state)
{
    (void)state;
    static const char *rm[] = {"server"};
    static struct rc_header_op ins[] = {{.name = "X-Served", .value = "albd"}};
    static struct rc_rule rules[3];
    rules[0] = (struct rc_rule){.statuses = ranges + 1, .n_statuses = 1};
    rules[0].action.kind = RC_ACTION_FIXED;
    rules[0].action.fixed.code = 503;
    rules[0].action.fixed.content_type = "text/plain";
    rules[0].action.fixed.content = "sorry";
    rules[0].action.fixed.content_len = 5;
    rules[1] = (struct rc_rule){.statuses = ranges,
                                .n_statuses = 2,
                                .remove_headers = rm,
                                .n_remove_headers = 1,
                                .insert_headers = ins,
                                .n_insert_headers = 1};
    rules[2] = rules[0]; /* never reached: rules[1] matches first */
    struct rc_listener l = {.resp_rules = rules, .n_resp_rules = 3};
    struct px_hdr bh[] = {{"Content-Type", 12, "text/plain", 10},
                          {"Server", 6, "py", 2},
                          {"x-served", 8, "backend", 7}};

    /* Candidates 1 and 2 only: a 500 matches rule 1 (edit), not 0. */
    struct px_exchange x = {.owner = &seen, .sink_owner = &seen};
    const struct px_sink *s = &sink;
    px_resp_rules_attach(&x, &l, 0, false, &s);
    assert_ptr_equal(s, &sink); /* no candidate: no filter */
    px_resp_rules_attach(&x, &l, 6, false, &s);
    assert_ptr_not_equal(s, &sink);
    memset(&seen, 0, sizeof seen);
    struct px_resp_head rh = {.status = 500, .h = bh, .n = 3};
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.status, 500);
    assert_null(field("server"));
    assert_string_equal(field("x-served"), "albd");
    assert_int_equal(seen.n, 2);
    assert_int_equal(s->data(x.sink_owner, "abc", 3), 0);
    assert_string_equal(seen.body, "abc");

    /* Candidate 0: the 500 is replaced, the backend's body dropped. */
    x = (struct px_exchange){.owner = &seen, .sink_owner = &seen};
    s = &sink;
    px_resp_rules_attach(&x, &l, 1, false, &s);
    memset(&seen, 0, sizeof seen);
    struct px_resp_head h100 = {.status = 100, .h = bh, .n = 0};
    assert_int_equal(s->head(x.sink_owner, &h100), 0); /* 1xx passes */
    assert_int_equal(seen.status, 100);
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.status, 503);
    assert_string_equal(field("content-type"), "text/plain");
    assert_string_equal(field("content-length"), "5");
    assert_int_equal(s->data(x.sink_owner, "backend body", 12), 0);
    assert_int_equal(s->end(x.sink_owner), 0);
    assert_string_equal(seen.body, "sorry");
    assert_int_equal(seen.ends, 1);
    /* A 200 does not match rule 0: unchanged. */
    memset(&seen, 0, sizeof seen);
    rh.status = 200;
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.status, 200);
    assert_int_equal(seen.n, 3);
    assert_int_equal(s->data(x.sink_owner, "b", 1), 0);
    assert_string_equal(seen.body, "b");

    /* HEAD: the fixed response has no body. */
    x = (struct px_exchange){.owner = &seen, .sink_owner = &seen};
    s = &sink;
    px_resp_rules_attach(&x, &l, 1, true, &s);
    memset(&seen, 0, sizeof seen);
    rh.status = 502;
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.status, 503);
    assert_string_equal(seen.body, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conditions),
        cmocka_unit_test(the_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
