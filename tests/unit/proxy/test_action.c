/* proxy/action.c: redirect Locations (every variable, default ports, an
 * empty query), the answers written through a fake sink (head fields,
 * body, HEAD, 204), and weighted group choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/action.h"
#include "proxy/snapshot-t.h"

static struct rc_server_group mgroups[3];
static struct px_group groups[3];
static struct rc_listener l_model;
static struct px_listener lis = {.model = &l_model,
                                 .scheme = "http",
                                 .port_str = "8080",
                                 .groups = groups,
                                 .model_groups = mgroups};
static struct px_hdr hdrs[PX_HDR_MAX];

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static struct px_req req(const char *authority, const char *target)
{
    const char *q = strchr(target, '?');
    return (struct px_req){.lis = &lis,
                           .method = "GET",
                           .authority = authority,
                           .authority_len = strlen(authority),
                           .target = target,
                           .target_len = strlen(target),
                           .path = target,
                           .path_len = strlen(target),
                           .query = q ? q + 1 : NULL,
                           .query_len = q ? strlen(q + 1) : 0,
                           .hdrs = hdrs};
}

static struct rc_action redir(const char *proto, const char *host, const char *port,
                              const char *path, const char *query)
{
    struct rc_action a = {.kind = RC_ACTION_REDIRECT};
    a.redirect.code = 301;
    a.redirect.protocol = proto;
    a.redirect.host = host;
    a.redirect.port = port;
    a.redirect.path = path;
    a.redirect.query = query;
    return a;
}

static void location_cases(void **state)
{
    (void)state;
    static const struct {
        const char *proto, *host, *port, *path, *query, *authority, *target, *want;
    } t[] = {
        /* The everyday case: HTTP to HTTPS, everything else kept. */
        {"https", "${host}", "443", "${path}", "${query}", "Example.com:8080", "/a/b?x=1",
         "https://example.com/a/b?x=1"},
        {"${protocol}", "${host}", "${port}", "/new", "${query}", "a.com", "/old",
         "http://a.com:8080/new"}, /* no query: no '?' */
        {"https", "www.${host}", "8443", "/p${path}", "v=${protocol}-${port}&${query}", "a.com",
         "/x?y", "https://www.a.com:8443/p/x?v=http-8080&y"},
        {"http", "b.com", "80", "/${host}${path}", "k=1", "a.com", "/", "http://b.com/a.com/?k=1"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct rc_action a = redir(t[i].proto, t[i].host, t[i].port, t[i].path, t[i].query);
        struct px_req r = req(t[i].authority, t[i].target);
        char out[256];
        long n = px_action_location(&r, &a, out, sizeof out);
        if (n < 0 || strcmp(out, t[i].want) != 0)
            fail_msg("case %zu: want %s, got %s", i, t[i].want, n < 0 ? "(none)" : out);
    }
    struct rc_action a = redir("https", "${host}", "443", "${path}", "${query}");
    struct px_req r = req("a.com", "/a-long-path");
    char small[16];
    assert_int_equal(px_action_location(&r, &a, small, sizeof small), -1);
}

/* --- a sink that records ----------------------------------------------- */

static int status, heads, ends;
static char fields[512], body[2048];
static size_t body_len;

static int s_head(void *o, const struct px_resp_head *rh)
{
    assert_ptr_equal(o, &lis);
    heads++;
    status = rh->status;
    fields[0] = '\0';
    for (size_t i = 0; i < rh->n; i++)
        snprintf(fields + strlen(fields), sizeof fields - strlen(fields), "%.*s: %.*s\n",
                 (int)rh->h[i].name_len, rh->h[i].name, (int)rh->h[i].value_len, rh->h[i].value);
    return 0;
}

static int s_data(void *o, const char *at, size_t len)
{
    (void)o;
    memcpy(body + body_len, at, len);
    body_len += len;
    return 0;
}

static int s_end(void *o)
{
    (void)o;
    ends++;
    return 0;
}

static const struct px_sink sink = {.head = s_head, .data = s_data, .end = s_end};

static void answers_through_the_sink(void **state)
{
    (void)state;
    struct rc_action f = {.kind = RC_ACTION_FIXED};
    f.fixed.code = 503;
    f.fixed.content_type = "application/json";
    f.fixed.content = "{\"down\":true}";
    f.fixed.content_len = strlen(f.fixed.content);
    struct px_action a = {.kind = PX_ACTION_ANSWER, .answer = &f};
    struct px_req r = req("a.com", "/");
    heads = ends = 0;
    body_len = 0;
    assert_int_equal(px_action_answer(&r, &a, &sink, &lis), 0);
    assert_int_equal(status, 503);
    assert_string_equal(fields, "content-type: application/json\ncontent-length: 13\n");
    assert_int_equal(body_len, 13);
    assert_memory_equal(body, "{\"down\":true}", 13);
    assert_int_equal(ends, 1);

    r = req("a.com", "/");
    r.is_head = true; /* the head alone */
    body_len = 0;
    assert_int_equal(px_action_answer(&r, &a, &sink, &lis), 0);
    assert_int_equal(body_len, 0);
    assert_int_equal(ends, 2);

    f.fixed.code = 204; /* no content, no Content-Length */
    r = req("a.com", "/");
    assert_int_equal(px_action_answer(&r, &a, &sink, &lis), 0);
    assert_string_equal(fields, "content-type: application/json\n");
    assert_int_equal(body_len, 0);

    struct rc_action rd = redir("https", "${host}", "443", "${path}", "${query}");
    rd.redirect.code = 308;
    a.answer = &rd;
    r = req("a.com", "/x?y=1");
    assert_int_equal(px_action_answer(&r, &a, &sink, &lis), 0);
    assert_int_equal(status, 308);
    assert_string_equal(fields, "location: https://a.com/x?y=1\ncontent-length: 0\n");
    assert_int_equal(body_len, 0);
}

static void weighted_choice(void **state)
{
    (void)state;
    struct rc_action a = {.kind = RC_ACTION_FORWARD};
    a.forward.groups[0] = &mgroups[0];
    a.forward.groups[1] = &mgroups[1];
    a.forward.groups[2] = &mgroups[2];
    a.forward.weights[0] = 80;
    a.forward.weights[1] = 20;
    a.forward.weights[2] = 0;
    a.forward.n_groups = 3;
    int count[3] = {0};
    for (int i = 0; i < 10000; i++) {
        struct px_group *g = px_action_pick_group(&lis, &a);
        assert_non_null(g);
        count[g - groups]++;
    }
    assert_int_equal(count[2], 0); /* weight 0: never */
    assert_true(count[0] > 7600 && count[0] < 8400);
    a.forward.weights[0] = a.forward.weights[1] = 0;
    assert_null(px_action_pick_group(&lis, &a)); /* all 0: 503 */
    a.forward.n_groups = 1;                      /* one group: its weight does not matter */
    assert_ptr_equal(px_action_pick_group(&lis, &a), &groups[0]);
}

static void request_extras(void **state)
{
    (void)state;
    struct rc_instance inst = {.id = "alb-1"};
    l_model.instance = &inst;
    struct px_client cl = {.ip = "192.0.2.7", .port = "40000"};
    struct rc_header_op ops[] = {
        {.name = "X-Route", .type = RC_HDR_USER, .value = "r1"},
        {.name = "X-Ua", .type = RC_HDR_REFERENCE, .value = "user-agent"},
        {.name = "X-Missing", .type = RC_HDR_REFERENCE, .value = "x-none"},
        {.name = "X-Slb", .type = RC_HDR_SYSTEM, .system = RC_SYS_SLB_ID},
        {.name = "X-Port", .type = RC_HDR_SYSTEM, .system = RC_SYS_CLIENT_SRC_PORT},
        {.name = "X-Proto", .type = RC_HDR_SYSTEM, .system = RC_SYS_PROTOCOL},
        {.name = "X-Lport", .type = RC_HDR_SYSTEM, .system = RC_SYS_SLB_PORT},
        {.name = "X-Ip", .type = RC_HDR_SYSTEM, .system = RC_SYS_CLIENT_SRC_IP},
    };
    const char *rm[] = {"x-debug"};
    struct rc_rule ru = {.insert_headers = ops,
                         .n_insert_headers = 8,
                         .remove_headers = rm,
                         .n_remove_headers = 1,
                         .rewrite_path = "/v2${path}",
                         .rewrite_host = "in.${host}"};
    struct px_req r = req("a.com:8080", "/x?k=v");
    r.client = &cl;
    snprintf(r.client_ip, sizeof r.client_ip, "%s", "192.0.2.7");
    hdrs[0] = (struct px_hdr)H("Host", "a.com:8080");
    hdrs[1] = (struct px_hdr)H("User-Agent", "ua/1");
    hdrs[2] = (struct px_hdr)H("X-Debug", "1");
    hdrs[3] = (struct px_hdr)H("x-route", "forged");
    r.n_hdrs = 4;
    char *scratch = NULL;
    assert_int_equal(px_action_request_extras(&r, &ru, &scratch), 0);
    assert_non_null(scratch);
    char all[512] = "";
    for (size_t i = 0; i < r.n_hdrs; i++)
        snprintf(all + strlen(all), sizeof all - strlen(all), "%.*s: %.*s\n",
                 (int)r.hdrs[i].name_len, r.hdrs[i].name, (int)r.hdrs[i].value_len,
                 r.hdrs[i].value);
    assert_string_equal(all, "Host: in.a.com\nUser-Agent: ua/1\nX-Route: r1\nX-Ua: ua/1\n"
                             "X-Slb: alb-1\nX-Port: 40000\nX-Proto: http\nX-Lport: 8080\n"
                             "X-Ip: 192.0.2.7\n");
    /* The path is rewritten, the query kept; the authority follows Host. */
    assert_int_equal(r.path_len, strlen("/v2/x?k=v"));
    assert_memory_equal(r.path, "/v2/x?k=v", r.path_len);
    assert_int_equal(r.query_len, 3);
    assert_memory_equal(r.query, "k=v", 3);
    assert_memory_equal(r.authority, "in.a.com", r.authority_len);
    free(scratch);

    struct rc_rule q = {.rewrite_query = "a=${query}"};
    r = req("a.com", "/p");
    r.n_hdrs = 0;
    assert_int_equal(px_action_request_extras(&r, &q, &scratch), 0);
    assert_memory_equal(r.path, "/p?a=", r.path_len);
    free(scratch);
    l_model.instance = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(location_cases),
        cmocka_unit_test(answers_through_the_sink),
        cmocka_unit_test(weighted_choice),
        cmocka_unit_test(request_extras),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
