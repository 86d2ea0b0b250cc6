/* proxy/sticky.c: Insert cookie values (hex, not the address, stable in
 * one process, another secret in another), the Server table (remembers,
 * updates, bounded: evicts rather than grows), Cookie parsing, and the
 * request's sticky server through a group's scheduler state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/lb.h"
#include "proxy/sticky.h"

static void insert_values_hide_the_address(void **state)
{
    (void)state;
    struct px_sticky *a = px_sticky_new(), *b = px_sticky_new();
    assert_non_null(a);
    assert_non_null(b);
    char v1[PX_STICKY_VALUE_LEN + 1], v2[PX_STICKY_VALUE_LEN + 1], v3[PX_STICKY_VALUE_LEN + 1];
    px_sticky_value(a, "10.0.0.1:80", v1);
    px_sticky_value(a, "10.0.0.1:80", v2);
    assert_int_equal(strlen(v1), PX_STICKY_VALUE_LEN);
    assert_string_equal(v1, v2); /* stable */
    assert_null(strstr(v1, "10.0.0.1"));
    assert_int_equal(strspn(v1, "0123456789abcdef"), PX_STICKY_VALUE_LEN);
    px_sticky_value(a, "10.0.0.2:80", v2);
    assert_string_not_equal(v1, v2);
    px_sticky_value(b, "10.0.0.1:80", v3); /* another process: another secret */
    assert_string_not_equal(v1, v3);
    px_sticky_free(a);
    px_sticky_free(b);
}

static void server_table_remembers_and_is_bounded(void **state)
{
    (void)state;
    struct px_sticky *s = px_sticky_new();
    uint32_t id = 0;
    assert_false(px_sticky_recall(s, "g", "abc", 3, &id));
    px_sticky_remember(s, "g", "abc", 3, 7);
    assert_true(px_sticky_recall(s, "g", "abc", 3, &id));
    assert_int_equal(id, 7);
    assert_false(px_sticky_recall(s, "other", "abc", 3, &id)); /* per group */
    px_sticky_remember(s, "g", "abc", 3, 9);                   /* the backend re-set it */
    assert_true(px_sticky_recall(s, "g", "abc", 3, &id));
    assert_int_equal(id, 9);
    /* Four times the capacity: memory stays fixed, the newest are kept
     * (most of them), the oldest mostly evicted. */
    enum { N = PX_STICKY_TABLE_ENTRIES * 4 };
    char v[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(v, sizeof v, "session-%d", i);
        px_sticky_remember(s, "g", v, (size_t)n, (uint32_t)i);
    }
    int recent = 0, old = 0;
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(v, sizeof v, "session-%d", N - 1 - i);
        if (px_sticky_recall(s, "g", v, (size_t)n, &id) && id == (uint32_t)(N - 1 - i))
            recent++;
        n = snprintf(v, sizeof v, "session-%d", i);
        if (px_sticky_recall(s, "g", v, (size_t)n, &id))
            old++;
    }
    print_message("table: %d of the newest 1000 kept, %d of the oldest 1000\n", recent, old);
    assert_true(recent > 600);
    assert_true(old < 100);
    px_sticky_free(s);
}

static void cookie_fields_are_parsed(void **state)
{
    (void)state;
    struct px_hdr h[] = {
        {"Host", 4, "x", 1},
        {"Cookie", 6, "a=1; SERVERID=abc ;b=2", 22},
        {"cookie", 6, "JSESSIONID=\"q\"; e=", 18},
    };
    const char *v;
    size_t n;
    assert_true(px_sticky_cookie(h, 3, "SERVERID", &v, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(v, "abc", 3);
    assert_true(px_sticky_cookie(h, 3, "JSESSIONID", &v, &n));
    assert_int_equal(n, 1);
    assert_memory_equal(v, "q", 1);
    assert_false(px_sticky_cookie(h, 3, "e", &v, &n)); /* empty */
    assert_false(px_sticky_cookie(h, 3, "SERVER", &v, &n));
    assert_false(px_sticky_cookie(h, 3, "x", &v, &n));
}

/* A group with Insert stickiness: the cookie of each server finds it; an
 * unknown value finds nothing; px_lb_pick honours a usable sticky server
 * and ignores a down one. */
static void request_cookie_names_a_server(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    struct rc_server_group m = {.meta.name = "web", .fail_open = true};
    m.sticky.enabled = true;
    m.sticky.cookie_timeout_s = 1000;
    struct px_server sv[3] = {0};
    struct px_group g = {.model = &m, .servers = sv, .n_servers = 3};
    for (int i = 0; i < 3; i++) {
        char ip[16];
        snprintf(ip, sizeof ip, "10.1.0.%d", i + 1);
        struct px_backend_id id;
        assert_int_equal(px_backend_id_init(&id, ip, 80), 0);
        sv[i].backend = px_backend_get(r, &id);
        sv[i].key = sv[i].backend->id.key;
        sv[i].weight = 100;
    }
    g.lb = px_lb_state_get(r, &g);
    assert_non_null(g.lb);
    for (int i = 0; i < 3; i++) {
        const char *c = px_lb_cookie_of(&g, &sv[i]);
        assert_non_null(c);
        assert_ptr_equal(px_lb_by_cookie(&g, c, strlen(c)), &sv[i]);
        char field[64];
        int n = snprintf(field, sizeof field, "x=y; SERVERID=%s", c);
        struct px_hdr h = {"Cookie", 6, field, (size_t)n};
        struct px_req q = {.hdrs = &h, .n_hdrs = 1};
        struct px_lb_key k;
        px_lb_key_from_req(&k, &g, &q);
        assert_ptr_equal(k.sticky, &sv[i]);
        for (int j = 0; j < 5; j++)
            assert_ptr_equal(px_lb_pick(&g, 0, &k), &sv[i]);
        atomic_store(&sv[i].backend->health, PX_HEALTH_DOWN);
        assert_ptr_not_equal(px_lb_pick(&g, 0, &k), &sv[i]); /* falls back */
        atomic_store(&sv[i].backend->health, PX_HEALTH_UNKNOWN);
    }
    assert_null(px_lb_by_cookie(&g, "000000000000000000000000", 24));
    px_lb_state_unref(g.lb);
    for (int i = 0; i < 3; i++)
        px_backend_unref(sv[i].backend);
    assert_int_equal(px_registry_free(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_values_hide_the_address),
        cmocka_unit_test(server_table_remembers_and_is_bounded),
        cmocka_unit_test(cookie_fields_are_parsed),
        cmocka_unit_test(request_cookie_names_a_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
