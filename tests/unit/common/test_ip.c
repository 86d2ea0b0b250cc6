/* common/ip.c: address and CIDR parsing, canonical text, containment
 * across families, and the malformed input X-Forwarded-For and manifests
 * bring (ports, brackets, zones, spaces, overlong text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/ip.h"

static bool parse(const char *s, struct cm_ip *a)
{
    return cm_ip_parse(s, strlen(s), a);
}

static void parses_and_formats_both_families(void **state)
{
    (void)state;
    static const struct {
        const char *in, *canon;
        bool v4;
    } ok[] = {
        {"192.0.2.1", "192.0.2.1", true},
        {"0.0.0.0", "0.0.0.0", true},
        {"255.255.255.255", "255.255.255.255", true},
        {"2001:db8::1", "2001:db8::1", false},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", false},
        {"::1", "::1", false},
        {"::", "::", false},
        {"::ffff:192.0.2.1", "192.0.2.1", true}, /* mapped form is IPv4 */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct cm_ip a;
        assert_true(parse(ok[i].in, &a));
        assert_int_equal(cm_ip_is_v4(&a), ok[i].v4);
        char t[CM_IP_TEXT_MAX];
        size_t n = cm_ip_format(&a, t);
        assert_string_equal(t, ok[i].canon);
        assert_int_equal(n, strlen(ok[i].canon));
    }
}

static void refuses_what_is_not_a_bare_address(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "192.0.2.1:80",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
        "fe80::1%eth0",
        " 192.0.2.1",
        "192.0.2.1 ",
        "192.0.2",
        "192.0.2.256",
        "01.2.3.4.5",
        "unknown",
        "2001:db8:::1",
        "1.2.3.4/32",
        "::g",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cm_ip a = {{7}};
        assert_false(parse(bad[i], &a));
        assert_int_equal(a.b[0], 7); /* untouched */
    }
    struct cm_ip a;
    assert_false(cm_ip_parse("1.2.3.4\0x", 9, &a)); /* embedded NUL */
    assert_false(cm_ip_parse(NULL, 0, &a));
    assert_true(cm_ip_parse("1.2.3.4junk", 7, &a)); /* exactly len bytes */
}

static bool in(const char *range, const char *addr)
{
    struct cm_cidr r;
    struct cm_ip a;
    assert_true(cm_cidr_parse(range, strlen(range), &r));
    assert_true(parse(addr, &a));
    return cm_cidr_contains(&r, &a);
}

static void cidr_containment(void **state)
{
    (void)state;
    assert_true(in("10.0.0.0/8", "10.255.1.2"));
    assert_false(in("10.0.0.0/8", "11.0.0.1"));
    assert_true(in("192.168.1.1/24", "192.168.1.200")); /* host bits cleared */
    assert_false(in("192.168.1.0/24", "192.168.2.1"));
    assert_true(in("192.0.2.7", "192.0.2.7")); /* bare address: /32 */
    assert_false(in("192.0.2.7", "192.0.2.8"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_false(in("0.0.0.0/0", "2001:db8::1")); /* IPv4 range, IPv6 address */
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("::/0", "192.0.2.1")); /* documented: ::/0 covers mapped IPv4 */
    assert_true(in("10.0.0.0/31", "10.0.0.1"));
    assert_false(in("10.0.0.0/31", "10.0.0.2"));
    assert_true(in("2001:db8::1/127", "2001:db8::"));
    struct cm_cidr r;
    assert_int_equal(r.bits = 0, 0);
    assert_true(cm_cidr_parse("10.0.0.0/8", 10, &r));
    assert_int_equal(r.bits, 104);
}

static void cidr_refusals(void **state)
{
    (void)state;
    static const char *bad[] = {"10.0.0.0/33",  "2001:db8::/129", "10.0.0.0/", "10.0.0.0/-1",
                                "10.0.0.0/8/8", "10.0.0.0/0008",  "/8",        "10.0.0.0/a",
                                "10.0.0.0 /8",  "host/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cm_cidr r;
        assert_false(cm_cidr_parse(bad[i], strlen(bad[i]), &r));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_and_formats_both_families),
        cmocka_unit_test(refuses_what_is_not_a_bare_address),
        cmocka_unit_test(cidr_containment),
        cmocka_unit_test(cidr_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
