/* proxy/router.c: every matcher table-driven (glob and case rules, path
 * normalisation, host keys, query, header, cookie, method, source IP),
 * first match by priority, and the index against the linear matcher on
 * random rule sets and random requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proxy/router.h"
#include "proxy/snapshot-t.h"

static void glob_cases(void **state)
{
    (void)state;
    static const struct {
        const char *p, *s;
        bool icase, want;
    } t[] = {
        {"api.example.com", "api.example.com", true, true},
        {"api.example.com", "API.Example.COM", true, true},
        {"*.example.com", "a.b.example.com", true, true}, /* '*' crosses '.' */
        {"*.example.com", "example.com", true, false},
        {"?.example.com", "ab.example.com", true, false},
        {"?.example.com", "a.example.com", true, true},
        {"api.*", "api.x", true, true},
        {"/v1/*", "/v1/a/b", false, true}, /* multi-level */
        {"/v1/*", "/v1", false, false},
        {"/v1/*", "/V1/a", false, false}, /* paths are case-sensitive */
        {"/a*c", "/abbbc", false, true},
        {"/a*c", "/abbbd", false, false},
        {"*", "", false, true},
        {"?", "", false, false},
        {"a**b", "ab", false, true},
        {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (px_glob(t[i].p, strlen(t[i].p), t[i].s, strlen(t[i].s), t[i].icase) != t[i].want)
            fail_msg("glob %s vs %s: want %d", t[i].p, t[i].s, t[i].want);
}

static void normalise_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: refused (400) */
    } t[] = {
        {"/", "/"},
        {"", "/"},
        {"/a/b", "/a/b"},
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/pub/../admin/x", "/admin/x"},
        {"/../../admin", "/admin"}, /* ".." stops at the root */
        {"//admin//x", "/admin/x"},
        {"/a/b/", "/a/b/"},
        {"/a/b/.", "/a/b/"},
        {"/a/b/..", "/a/"},
        {"/%61dmin/x", "/admin/x"},  /* unreserved: decoded */
        {"/%2e%2E/admin", "/admin"}, /* decoded dots are dot segments */
        {"/a%2e/b", "/a./b"},        /* not a whole segment: data */
        {"/a%20b", "/a%20b"},        /* reserved and others: kept */
        {"/a%3fb", "/a%3Fb"},        /* hex case normalised */
        {"/admin%2Fx", NULL},        /* encoded '/' */
        {"/admin%2fx", NULL},
        {"/a%5cb", NULL}, /* encoded '\' */
        {"/a%00b", NULL}, /* encoded NUL */
        {"/a%4", NULL},   /* truncated */
        {"/a%zz", NULL},  /* not hex */
        {"/a/..%2f", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64];
        size_t n = 0;
        int rc = px_router_normalise(t[i].in, strlen(t[i].in), out, &n);
        if (!t[i].out) {
            if (rc == 0)
                fail_msg("%s: want refused, got %.*s", t[i].in, (int)n, out);
            continue;
        }
        if (rc != 0 || n != strlen(t[i].out) || memcmp(out, t[i].out, n) != 0)
            fail_msg("%s: want %s, got rc %d %.*s", t[i].in, t[i].out, rc, (int)n, out);
    }
}

static void host_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } t[] = {
        {"API.Example.com", "api.example.com"},
        {"api.example.com:8080", "api.example.com"},
        {"api.example.com.", "api.example.com"},
        {"[::1]:443", "[::1]"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64];
        size_t n = px_router_host(t[i].in, strlen(t[i].in), out, sizeof out);
        assert_int_equal(n, strlen(t[i].out));
        assert_memory_equal(out, t[i].out, n);
    }
    char small[4];
    assert_int_equal(px_router_host("abcdef", 6, small, sizeof small), 0);
    assert_int_equal(px_router_method("GET"), RC_METHOD_GET);
    assert_int_equal(px_router_method("DELETE"), RC_METHOD_DELETE);
    assert_int_equal(px_router_method("TRACE"), 0);
    assert_int_equal(px_router_method("get"), 0); /* methods are case-sensitive */
}

/* --- one request against one rule ----------------------------------------- */

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static struct px_match_req mk(const char *host, const char *path, const char *query)
{
    static struct cm_ip ip;
    cm_ip_parse("10.1.2.3", 8, &ip);
    return (struct px_match_req){.host = host,
                                 .host_len = strlen(host),
                                 .path = path,
                                 .path_len = strlen(path),
                                 .query = query,
                                 .query_len = query ? strlen(query) : 0,
                                 .method = RC_METHOD_GET,
                                 .client = &ip};
}

static void condition_cases(void **state)
{
    (void)state;
    const char *hv[] = {"canary", "b*t?"};
    struct rc_rule hdr = {.header_name = "X-Env", .header_values = hv, .n_header_values = 2};
    struct px_hdr h1[] = {H("x-env", " canary ")};
    struct px_hdr h2[] = {H("X-ENV", "Canary")}; /* values are case-sensitive */
    struct px_hdr h3[] = {H("Accept", "*/*"), H("X-Env", "prod"), H("X-Env", "beta")};
    struct px_match_req q = mk("a.com", "/", NULL);
    q.hdrs = h1, q.n_hdrs = 1;
    assert_true(px_rule_matches(&hdr, NULL, &q));
    q.hdrs = h2;
    assert_false(px_rule_matches(&hdr, NULL, &q));
    q.hdrs = h3, q.n_hdrs = 3;
    assert_true(px_rule_matches(&hdr, NULL, &q)); /* any field of the name */
    q.n_hdrs = 0;
    assert_false(px_rule_matches(&hdr, NULL, &q));

    struct rc_kv qk[] = {{"ver", "2"}, {"beta", "y*"}};
    struct rc_rule qr = {.query = qk, .n_query = 2};
    static const struct {
        const char *query;
        bool want;
    } qt[] = {{"ver=2", true},   {"a=1&VER=2", true}, {"ver=3", false}, {"beta=YES", true},
              {"v%65r=2", true}, /* decoded */
              {"ver=2x", false}, {"ver", false},      {NULL, false},    {"x=1&beta=yes&z", true}};
    for (size_t i = 0; i < sizeof qt / sizeof qt[0]; i++) {
        q = mk("a.com", "/", qt[i].query);
        if (px_rule_matches(&qr, NULL, &q) != qt[i].want)
            fail_msg("query %s: want %d", qt[i].query ? qt[i].query : "(none)", qt[i].want);
    }

    struct rc_kv ck[] = {{"beta", "1"}};
    struct rc_rule cr = {.cookies = ck, .n_cookies = 1};
    struct px_hdr c1[] = {H("Cookie", "a=b; beta=1; c=d")};
    struct px_hdr c2[] = {H("cookie", "a=b"), H("cookie", "BETA=1")}; /* HTTP/2 splits */
    struct px_hdr c3[] = {H("Cookie", "beta=12")};
    struct px_hdr c4[] = {H("X-Cookie", "beta=1")};
    q = mk("a.com", "/", NULL);
    q.hdrs = c1, q.n_hdrs = 1;
    assert_true(px_rule_matches(&cr, NULL, &q));
    q.hdrs = c2, q.n_hdrs = 2;
    assert_true(px_rule_matches(&cr, NULL, &q));
    q.hdrs = c3, q.n_hdrs = 1;
    assert_false(px_rule_matches(&cr, NULL, &q));
    q.hdrs = c4;
    assert_false(px_rule_matches(&cr, NULL, &q));

    struct rc_rule mr = {.methods = RC_METHOD_POST | RC_METHOD_PUT};
    q = mk("a.com", "/", NULL);
    assert_false(px_rule_matches(&mr, NULL, &q));
    q.method = RC_METHOD_PUT;
    assert_true(px_rule_matches(&mr, NULL, &q));
    q.method = 0; /* another method */
    assert_false(px_rule_matches(&mr, NULL, &q));

    const char *ips[] = {"10.0.0.0/8", "2001:db8::/32"};
    struct rc_rule ir = {.source_ips = ips, .n_source_ips = 2};
    static const struct {
        const char *ip;
        bool want;
    } it[] = {{"10.1.2.3", true},
              {"11.0.0.1", false},
              {"2001:db8::1", true},
              {"2001:db9::1", false},
              {"::ffff:10.0.0.1", true}};
    for (size_t i = 0; i < sizeof it / sizeof it[0]; i++) {
        struct cm_ip a;
        assert_true(cm_ip_parse(it[i].ip, strlen(it[i].ip), &a));
        q = mk("a.com", "/", NULL);
        q.client = &a;
        if (px_rule_matches(&ir, NULL, &q) != it[i].want)
            fail_msg("sourceIp %s: want %d", it[i].ip, it[i].want);
    }

    /* Types AND together, values within a type OR. */
    const char *hs[] = {"a.com", "*.b.com"};
    const char *ps[] = {"/x", "/y/*"};
    struct rc_rule both = {.hosts = hs, .n_hosts = 2, .paths = ps, .n_paths = 2};
    q = mk("c.b.com", "/y/z", NULL);
    assert_true(px_rule_matches(&both, NULL, &q));
    q = mk("a.com", "/z", NULL);
    assert_false(px_rule_matches(&both, NULL, &q));
    q = mk("", "/x", NULL); /* no Host: a host condition never matches */
    assert_false(px_rule_matches(&both, NULL, &q));
}

/* --- the index ------------------------------------------------------------- */

static void first_match_by_priority_not_specificity(void **state)
{
    (void)state;
    const char *broad[] = {"/*"};
    const char *narrow[] = {"/api/v1/users"};
    const char *host[] = {"api.example.com"};
    struct rc_rule rules[] = {
        {.name = "broad", .priority = 1, .paths = broad, .n_paths = 1},
        {.name = "narrow", .priority = 2, .paths = narrow, .n_paths = 1},
        {.name = "host", .priority = 3, .hosts = host, .n_hosts = 1},
    };
    struct rc_listener l = {.meta = {.name = "l"}, .rules = rules, .n_rules = 3};
    struct px_router *rt = px_router_new(&l);
    assert_non_null(rt);
    struct px_match_req q = mk("api.example.com", "/api/v1/users", NULL);
    assert_int_equal(px_router_match(rt, &l, &q), 0); /* the broad one: smaller priority */
    rules[0].paths = narrow;                          /* (same index, now narrower) */
    px_router_unref(rt);
    const char *other[] = {"/other"};
    rules[0].paths = other;
    rt = px_router_new(&l);
    assert_int_equal(px_router_match(rt, &l, &q), 1);
    q = mk("api.example.com", "/", NULL);
    assert_int_equal(px_router_match(rt, &l, &q), 2);
    q = mk("www.example.com", "/", NULL);
    assert_int_equal(px_router_match(rt, &l, &q), -1);
    px_router_unref(rt);
}

static unsigned long long seed = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (unsigned)(seed % n);
}

static const char *const host_pool[] = {"a.com",    "b.a.com", "*.a.com", "c.com",  "?.a.com",
                                        "a.*",      "*.com",   "x.c.com", "b*.com", "*",
                                        "ab.a.com", "a?c.com", "abc.com", "*c.com", "x.*.com"};
static const char *const path_pool[] = {"/",   "/a",   "/a/*", "/a/b",   "/b*", "/*",   "/a?",
                                        "/ab", "/b/c", "/*/c", "/a/*/c", "/c",  "/b/*", "/a/b/c"};
static const char *const req_hosts[] = {"a.com",   "b.a.com",  "c.com", "x.c.com",
                                        "abc.com", "ab.a.com", "a.org", "bb.com",
                                        "",        "x.y.com",  "zc.com"};
static const char *const req_paths[] = {"/",    "/a", "/a/b",   "/a/b/c", "/ab",  "/b",
                                        "/b/c", "/c", "/a/x/c", "/bz",    "/x/c", "/ax"};

static void index_agrees_with_linear_matcher(void **state)
{
    (void)state;
    enum { RULES = 400, ROUNDS = 30, REQUESTS = 400 };
    static struct rc_rule rules[RULES];
    static const char *hv[RULES][3], *pv[RULES][3], *ipv[RULES][1];
    static const char *const ip_pool[] = {"10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24",
                                          "2001:db8::/32"};
    static const char *const ip_req[] = {"10.1.2.3", "10.2.0.1", "192.0.2.9", "2001:db8::5",
                                         "8.8.8.8"};
    for (int round = 0; round < ROUNDS; round++) {
        size_t n = 1 + rnd(RULES);
        for (size_t i = 0; i < n; i++) {
            struct rc_rule *r = &rules[i];
            *r = (struct rc_rule){.name = "r", .priority = (int)i + 1};
            r->n_hosts = rnd(4) == 0 ? 0 : rnd(3);
            for (size_t k = 0; k < r->n_hosts; k++)
                hv[i][k] = host_pool[rnd(sizeof host_pool / sizeof host_pool[0])];
            r->hosts = hv[i];
            r->n_paths = rnd(3);
            for (size_t k = 0; k < r->n_paths; k++)
                pv[i][k] = path_pool[rnd(sizeof path_pool / sizeof path_pool[0])];
            r->paths = pv[i];
            if (rnd(5) == 0)
                r->methods = 1u << rnd(7);
            if (rnd(6) == 0) {
                ipv[i][0] = ip_pool[rnd(4)];
                r->source_ips = ipv[i];
                r->n_source_ips = 1;
            }
        }
        struct rc_listener l = {.meta = {.name = "l"}, .rules = rules, .n_rules = n};
        struct px_router *rt = px_router_new(&l);
        assert_non_null(rt);
        for (int k = 0; k < REQUESTS; k++) {
            struct cm_ip ip;
            const char *ips = ip_req[rnd(5)];
            assert_true(cm_ip_parse(ips, strlen(ips), &ip));
            struct px_match_req q =
                mk(req_hosts[rnd(sizeof req_hosts / sizeof req_hosts[0])],
                   req_paths[rnd(sizeof req_paths / sizeof req_paths[0])], NULL);
            q.method = 1u << rnd(8); /* bit 7: another method */
            q.client = &ip;
            long want = px_router_match_linear(&l, &q), got = px_router_match(rt, &l, &q);
            if (want != got)
                fail_msg("round %d, %zu rules, %s %s: index %ld, linear %ld", round, n, q.host,
                         q.path, got, want);
        }
        assert_true(px_router_bytes(rt) > 0);
        px_router_unref(rt);
    }
}

/* An unchanged listener (the reconciler's copy: same digest, the very same
 * rule strings) keeps its router across snapshots; a rebuilt or changed
 * one gets a new one. */
static void an_unchanged_listener_keeps_its_router(void **state)
{
    (void)state;
    const char *p[] = {"/a"};
    struct rc_rule rules[] = {{.name = "r", .priority = 1, .paths = p, .n_paths = 1}};
    struct rc_listener l = {.meta = {.name = "web", .digest = "d1"}, .rules = rules, .n_rules = 1};
    struct px_router *rt = px_router_new(&l);
    struct px_listener pl = {.model = &l, .router = rt};
    struct px_snapshot prev = {.listeners = &pl, .n_listeners = 1};
    /* The copy: a rules array of its own (groups re-pointed), same strings. */
    struct rc_rule copy_rules[1];
    memcpy(copy_rules, rules, sizeof rules);
    struct rc_listener copy = l;
    copy.rules = copy_rules;
    assert_ptr_equal(px_router_reuse(&copy, &prev), rt);
    px_router_unref(rt); /* the reference reuse took */
    /* Built again from the same text: other strings, so not reused. */
    char name[] = "r";
    struct rc_rule rebuilt_rules[1] = {rules[0]};
    rebuilt_rules[0].name = name;
    struct rc_listener rebuilt = copy;
    rebuilt.rules = rebuilt_rules;
    assert_null(px_router_reuse(&rebuilt, &prev));
    struct rc_listener changed = copy;
    strcpy(changed.meta.digest, "d2");
    assert_null(px_router_reuse(&changed, &prev));
    struct rc_listener other = copy;
    other.meta.name = "api";
    assert_null(px_router_reuse(&other, &prev));
    assert_null(px_router_reuse(&copy, NULL));
    px_router_unref(rt);
}

static uint32_t now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

static void traffic_limits(void **state)
{
    (void)state;
    const char *p[] = {"/*"};
    struct rc_rule rules[] = {
        {.name = "total", .priority = 1, .paths = p, .n_paths = 1, .limit_qps = 3},
        {.name = "per-ip", .priority = 2, .limit_qps = 100, .limit_per_ip_qps = 2},
        {.name = "none", .priority = 3},
    };
    struct rc_listener l = {.meta = {.name = "l"}, .rules = rules, .n_rules = 3};
    struct px_router *rt = px_router_new(&l);
    assert_non_null(rt);
    struct cm_ip a, b;
    assert_true(cm_ip_parse("192.0.2.1", 9, &a));
    assert_true(cm_ip_parse("2001:db8::1", 11, &b));
    for (int attempt = 0; attempt < 5; attempt++) {
        uint32_t s0 = now_sec();
        int total = 0, ip_a = 0, ip_b = 0;
        for (int i = 0; i < 10; i++) {
            total += px_router_admit(rt, 0, &a);
            ip_a += px_router_admit(rt, 1, &a);
        }
        ip_b += px_router_admit(rt, 1, &b);
        if (now_sec() != s0)
            continue; /* crossed a window: try again */
        /* Within one window: exactly the limits (a fresh router's first
         * window, or counts left from an earlier attempt: never more). */
        assert_true(total <= 3 && (attempt > 0 || total == 3));
        assert_true(ip_a <= 2 && (attempt > 0 || ip_a == 2));
        assert_int_equal(ip_b, 1); /* another address has its own budget */
        for (int i = 0; i < 5; i++)
            assert_true(px_router_admit(rt, 2, &a)); /* no limit */
        px_router_unref(rt);
        return;
    }
    fail_msg("every attempt crossed a one-second window");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(glob_cases),
        cmocka_unit_test(normalise_cases),
        cmocka_unit_test(host_cases),
        cmocka_unit_test(condition_cases),
        cmocka_unit_test(first_match_by_priority_not_specificity),
        cmocka_unit_test(index_agrees_with_linear_matcher),
        cmocka_unit_test(traffic_limits),
        cmocka_unit_test(an_unchanged_listener_keeps_its_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
