/* proxy/cors.c: what a preflight is, the preflight answer for an allowed
 * and a refused Origin (fields through a fake sink), and the response
 * filter: attached only for an allowed Origin, replacing the backend's
 * Access-Control-* fields, passing 1xx heads, body and end through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "proxy/cors.h"
#include "reconciler/model-t.h"

static struct px_hdr hdrs[PX_HDR_MAX];

/* The fake sink: records the last head's fields and what else came. */
static struct {
    int status, heads, ends, aborts;
    char fields[PX_HDR_MAX][2][128];
    size_t n;
    char body[64];
} seen;

static int s_head(void *owner, const struct px_resp_head *rh)
{
    assert_ptr_equal(owner, &seen);
    seen.status = rh->status;
    seen.heads++;
    seen.n = rh->n;
    for (size_t i = 0; i < rh->n; i++) {
        snprintf(seen.fields[i][0], 128, "%.*s", (int)rh->h[i].name_len, rh->h[i].name);
        snprintf(seen.fields[i][1], 128, "%.*s", (int)rh->h[i].value_len, rh->h[i].value);
    }
    return 0;
}

static int s_data(void *owner, const char *at, size_t len)
{
    (void)owner;
    snprintf(seen.body + strlen(seen.body), sizeof seen.body - strlen(seen.body), "%.*s", (int)len,
             at);
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
    seen.aborts++;
}

static const struct px_sink sink = {.head = s_head, .data = s_data, .end = s_end, .abort = s_abort};

/* The value of field name in the last head; NULL when absent; "2" when
 * there are several. */
static const char *field(const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < seen.n; i++)
        if (!strcasecmp(seen.fields[i][0], name)) {
            if (v)
                return "2";
            v = seen.fields[i][1];
        }
    return v;
}

static const char *origins[] = {"https://a.example", "http://b.example:8080"};
static const char *methods[] = {"GET", "PUT"};
static struct rc_cors co = {.origins = origins,
                            .n_origins = 2,
                            .methods = methods,
                            .n_methods = 2,
                            .methods_j = "GET, PUT",
                            .headers_j = "X-Token",
                            .expose_j = "X-Total",
                            .credentials = true,
                            .has_max_age = true,
                            .max_age = -1};

static struct px_req req(const char *method, size_t n)
{
    return (struct px_req){.method = method, .hdrs = hdrs, .n_hdrs = n};
}

static void set(size_t i, const char *name, const char *value)
{
    hdrs[i] = (struct px_hdr){name, strlen(name), value, strlen(value)};
}

static void what_a_preflight_is(void **state)
{
    (void)state;
    set(0, "Origin", "https://a.example");
    set(1, "Access-Control-Request-Method", "PUT");
    struct px_req r = req("OPTIONS", 2);
    assert_true(px_cors_is_preflight(&r));
    r = req("GET", 2);
    assert_false(px_cors_is_preflight(&r)); /* not OPTIONS */
    r = req("OPTIONS", 1);
    assert_false(px_cors_is_preflight(&r)); /* no request method */
    set(0, "X-Origin", "https://a.example");
    r = req("OPTIONS", 2);
    assert_false(px_cors_is_preflight(&r)); /* no Origin */
}

static void preflight_answers(void **state)
{
    (void)state;
    static const struct {
        const char *origin, *want; /* want: Allow-Origin, NULL: none */
    } t[] = {
        {"https://a.example", "https://a.example"},
        {"HTTP://B.example:8080", "HTTP://B.example:8080"},
        {"http://b.example", NULL}, /* another port */
        {"https://a.example.evil", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        memset(&seen, 0, sizeof seen);
        set(0, "origin", t[i].origin);
        set(1, "access-control-request-method", "PUT");
        struct px_req r = req("OPTIONS", 2);
        assert_int_equal(px_cors_answer_preflight(&r, &co, &sink, &seen), 0);
        assert_int_equal(seen.status, 204);
        assert_int_equal(seen.ends, 1);
        assert_string_equal(field("vary"), "Origin");
        assert_null(field("content-length"));
        if (!t[i].want) {
            assert_int_equal(seen.n, 1); /* Vary only */
            continue;
        }
        assert_string_equal(field("access-control-allow-origin"), t[i].want);
        assert_string_equal(field("access-control-allow-methods"), "GET, PUT");
        assert_string_equal(field("access-control-allow-headers"), "X-Token");
        assert_string_equal(field("access-control-max-age"), "-1");
        assert_string_equal(field("access-control-allow-credentials"), "true");
    }
    /* "*" without credentials answers "*" and no Allow-Credentials. */
    struct rc_cors any = {.origins = (const char *[]){"*"}, .n_origins = 1, .any_origin = true};
    memset(&seen, 0, sizeof seen);
    set(0, "origin", "https://z.example");
    struct px_req r = req("OPTIONS", 2);
    assert_int_equal(px_cors_answer_preflight(&r, &any, &sink, &seen), 0);
    assert_string_equal(field("access-control-allow-origin"), "*");
    assert_null(field("access-control-allow-credentials"));
    assert_null(field("access-control-allow-methods"));
    assert_null(field("access-control-max-age"));
    /* With credentials, "*" echoes the Origin (browsers refuse "*"). */
    any.credentials = true;
    memset(&seen, 0, sizeof seen);
    set(0, "origin", "https://z.example"); /* the answer reused the request's fields */
    assert_int_equal(px_cors_answer_preflight(&r, &any, &sink, &seen), 0);
    assert_string_equal(field("access-control-allow-origin"), "https://z.example");
}

static void the_filter_adds_the_fields(void **state)
{
    (void)state;
    struct px_exchange x = {.owner = &seen, .sink_owner = &seen};
    const struct px_sink *s = &sink;
    /* Not attached: no Origin, an Origin not allowed, no cors. */
    struct px_req r = req("GET", 0);
    px_cors_attach(&x, &r, &co, &s);
    assert_ptr_equal(s, &sink);
    set(0, "Origin", "https://c.example");
    r = req("GET", 1);
    px_cors_attach(&x, &r, &co, &s);
    assert_ptr_equal(s, &sink);
    set(0, "Origin", "https://a.example");
    px_cors_attach(&x, &r, NULL, &s);
    assert_ptr_equal(s, &sink);
    assert_ptr_equal(x.sink_owner, &seen);

    px_cors_attach(&x, &r, &co, &s);
    assert_ptr_not_equal(s, &sink);
    set(0, "origin", "changed"); /* the request's fields may go: the Origin was copied */
    memset(&seen, 0, sizeof seen);
    struct px_hdr bh[] = {{"Content-Type", 12, "text/plain", 10},
                          {"Access-Control-Allow-Origin", 27, "*", 1},
                          {"access-control-expose-headers", 29, "X-Old", 5}};
    struct px_resp_head h100 = {.status = 100, .h = bh, .n = 0};
    assert_int_equal(s->head(x.sink_owner, &h100), 0);
    assert_int_equal(seen.n, 0); /* 1xx passed as it is */
    struct px_resp_head rh = {.status = 200, .h = bh, .n = 3, .has_length = true};
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.status, 200);
    assert_string_equal(field("content-type"), "text/plain");
    assert_string_equal(field("access-control-allow-origin"), "https://a.example");
    assert_string_equal(field("access-control-allow-credentials"), "true");
    assert_string_equal(field("access-control-expose-headers"), "X-Total");
    assert_string_equal(field("vary"), "Origin");
    assert_int_equal(seen.n, 5);
    assert_int_equal(s->data(x.sink_owner, "body", 4), 0);
    assert_int_equal(s->end(x.sink_owner), 0);
    assert_string_equal(seen.body, "body");
    assert_int_equal(seen.ends, 1);
    s->abort(x.sink_owner, 502);
    assert_int_equal(seen.aborts, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(what_a_preflight_is),
        cmocka_unit_test(preflight_answers),
        cmocka_unit_test(the_filter_adds_the_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
