/* proxy/clientip.c: the client IP retrieved from X-Forwarded-For under
 * every rule of the listener's clientSourceIps (leftmost for 0.0.0.0/0,
 * right-to-left walk over the trusted list), IPv6, several fields, and
 * malformed or oversized values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/clientip.h"

#define MAXH 4

struct trust {
    struct cm_cidr v[8];
    size_t n;
    bool leftmost;
};

/* "a;b;c" → ranges; 0.0.0.0/0 sets leftmost like the reconciler does. */
static struct trust trust_of(const char *list)
{
    struct trust t = {.n = 0};
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        assert_true(cm_cidr_parse(p, len, &t.v[t.n]));
        if (len == 9 && !memcmp(p, "0.0.0.0/0", 9))
            t.leftmost = true;
        t.n++;
        p += len + (e ? 1 : 0);
    }
    return t;
}

/* Runs the rule over the given fields ("|" separates header fields;
 * a field "Other: v" is a different header). Returns the text or "peer". */
static const char *run(const char *trusted, const char *fields, char *out)
{
    struct trust t = trust_of(trusted);
    struct px_hdr h[MAXH];
    size_t n = 0;
    const char *p = fields;
    while (p && n < MAXH) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len >= 7 && !strncmp(p, "Other: ", 7))
            h[n++] = (struct px_hdr){"Via", 3, p + 7, len - 7};
        else
            h[n++] = (struct px_hdr){"X-Forwarded-For", 15, p, len};
        p = bar ? bar + 1 : NULL;
    }
    struct cm_ip a;
    if (!px_clientip_from_xff(h, n, t.v, t.n, t.leftmost, &a))
        return "peer";
    cm_ip_format(&a, out);
    return out;
}

static void every_rule(void **state)
{
    (void)state;
    static const struct {
        const char *trusted, *fields, *want;
    } cases[] = {
        /* 0.0.0.0/0: the leftmost address, whatever the rest is. */
        {"0.0.0.0/0", "203.0.113.9, 10.0.0.1, 10.0.0.2", "203.0.113.9"},
        {"0.0.0.0/0", "2001:db8::9, 10.0.0.1", "2001:db8::9"},
        {"0.0.0.0/0", "203.0.113.9, garbage", "203.0.113.9"},
        {"0.0.0.0/0", "garbage, 203.0.113.9", "peer"},
        {"0.0.0.0/0;10.0.0.0/8", "198.51.100.1, 10.0.0.1", "198.51.100.1"},
        {"0.0.0.0/0", " , ,198.51.100.1", "198.51.100.1"},       /* empty elements ignored */
        {"0.0.0.0/0", "|198.51.100.7, 1.1.1.1", "198.51.100.7"}, /* an empty first field */
        /* The walk: first from the right not in the list. */
        {"10.0.0.0/8", "203.0.113.9, 10.0.0.1, 10.0.0.2", "203.0.113.9"},
        {"10.0.0.2", "203.0.113.9, 10.0.0.1, 10.0.0.2", "10.0.0.1"},
        {"10.0.0.1;10.0.0.2", "203.0.113.9, 10.0.0.1, 10.0.0.2", "203.0.113.9"},
        {"192.0.2.7", "203.0.113.9, 198.51.100.1", "198.51.100.1"},
        {"10.0.0.0/8", "10.0.0.3, 10.0.0.1", "10.0.0.3"}, /* all trusted: the leftmost */
        /* IPv6 ranges and addresses. */
        {"2001:db8::/32", "2001:db8:1::1, 2001:db8::5", "2001:db8:1::1"}, /* all trusted */
        {"2001:db8::/32", "2001:db8::5", "2001:db8::5"},                  /* all trusted, single */
        {"2001:db8::/32", "2400:cb00::1, 2001:db8::5", "2400:cb00::1"},
        {"2001:db8::/32;10.0.0.0/8", "192.0.2.200, 2001:db8::5, 10.1.2.3", "192.0.2.200"},
        {"::/0", "192.0.2.200, 2001:db8::5", "192.0.2.200"}, /* ::/0 trusts IPv4 too */
        {"10.0.0.0/8", "::ffff:10.0.0.1, 203.0.113.1", "203.0.113.1"},
        {"10.0.0.0/8", "203.0.113.1, ::ffff:10.0.0.1", "203.0.113.1"}, /* mapped = v4 */
        /* Several fields are one list, in order. */
        {"10.0.0.0/8", "203.0.113.9|10.0.0.1|10.0.0.2", "203.0.113.9"},
        {"10.0.0.0/8", "203.0.113.9, 10.0.0.9|Other: 1.2.3.4|10.0.0.2", "203.0.113.9"},
        {"10.0.0.0/8", "203.0.113.9|198.51.100.4, 10.0.0.2", "198.51.100.4"},
        /* No X-Forwarded-For, or only empty ones: the peer. */
        {"10.0.0.0/8", "Other: 1.2.3.4", "peer"},
        {"10.0.0.0/8", "", "peer"},
        {"10.0.0.0/8", " , , ", "peer"},
        {"0.0.0.0/0", ",", "peer"},
        /* Ports and brackets: the address alone. */
        {"10.0.0.0/8", "203.0.113.9:5555, 10.0.0.1:80", "203.0.113.9"},
        {"10.0.0.0/8", "[2001:db8::1]:443, 10.0.0.1", "2001:db8::1"},
        {"10.0.0.0/8", "[2001:db8::1]", "2001:db8::1"},
        {"0.0.0.0/0", "[2001:db8::1]:443", "2001:db8::1"},
        /* Malformed: the walk stops, the peer is used. */
        {"10.0.0.0/8", "203.0.113.9, unknown, 10.0.0.1", "peer"},
        {"10.0.0.0/8", "203.0.113.9, 10.0.0.1, garbage", "peer"},
        {"10.0.0.0/8", "203.0.113.9:0", "peer"},     /* port 0 */
        {"10.0.0.0/8", "203.0.113.9:65536", "peer"}, /* port too large */
        {"10.0.0.0/8", "203.0.113.9:", "peer"},      /* empty port */
        {"10.0.0.0/8", "[10.0.0.1]", "peer"},        /* brackets hold IPv6 */
        {"10.0.0.0/8", "[2001:db8::1", "peer"},      /* unclosed */
        {"10.0.0.0/8", "[2001:db8::1]80", "peer"},   /* no colon */
        {"10.0.0.0/8", "2001:db8::1:80:90:1:2:3:4", "peer"},
        {"10.0.0.0/8", "fe80::1%eth0", "peer"},         /* zone */
        {"10.0.0.0/8", "\"203.0.113.9\"", "peer"},      /* quoted */
        {"10.0.0.0/8", "203.0.113.9 10.0.0.1", "peer"}, /* no comma */
        {"10.0.0.0/8", "203.0.113.256", "peer"},
        {"10.0.0.0/8", "_hidden, 10.0.0.1", "peer"},         /* RFC 7239 obfuscated */
        {"10.0.0.0/8", "1.2.3.4\t, \t10.0.0.1 ", "1.2.3.4"}, /* OWS trimmed */
        /* A walk past what is not trusted never looks further left. */
        {"10.0.0.0/8", "garbage, 203.0.113.9, 10.0.0.1", "203.0.113.9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[CM_IP_TEXT_MAX];
        const char *got = run(cases[i].trusted, cases[i].fields, buf);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: trusted %s, XFF \"%s\": got %s, want %s", i, cases[i].trusted,
                     cases[i].fields, got, cases[i].want);
    }
}

/* 1,000 entries: the leftmost rule takes the first, the walk finds an
 * untrusted one at the right end, and an all-trusted chain longer than
 * PX_XFF_MAX_HOPS gives the peer. */
static void oversized_lists(void **state)
{
    (void)state;
    size_t cap = 1000 * 16;
    char *v = malloc(cap);
    assert_non_null(v);
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(v + len, cap - len, "%s10.0.%d.%d", i ? "," : "", i / 250,
                                i % 250 + 1);
    struct px_hdr h = {"x-forwarded-for", 15, v, len};
    struct trust t = trust_of("10.0.0.0/8");
    struct cm_ip a;
    assert_false(px_clientip_from_xff(&h, 1, t.v, t.n, false, &a));
    struct trust any = trust_of("0.0.0.0/0");
    assert_true(px_clientip_from_xff(&h, 1, any.v, any.n, true, &a));
    char txt[CM_IP_TEXT_MAX];
    cm_ip_format(&a, txt);
    assert_string_equal(txt, "10.0.0.1");
    struct trust other = trust_of("192.168.0.0/16");
    assert_true(px_clientip_from_xff(&h, 1, other.v, other.n, false, &a));
    cm_ip_format(&a, txt);
    assert_string_equal(txt, "10.0.3.250"); /* the rightmost */
    /* PX_XFF_MAX_HOPS trusted then one untrusted: still found. */
    len = 0;
    len += (size_t)snprintf(v + len, cap - len, "198.51.100.1");
    for (int i = 0; i < PX_XFF_MAX_HOPS - 1; i++)
        len += (size_t)snprintf(v + len, cap - len, ",10.0.0.%d", i + 1);
    h.value_len = len;
    assert_true(px_clientip_from_xff(&h, 1, t.v, t.n, false, &a));
    cm_ip_format(&a, txt);
    assert_string_equal(txt, "198.51.100.1");
    free(v);
}

static void element_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want; /* want NULL: refused */
    } c[] = {
        {"192.0.2.1", "192.0.2.1"},
        {"192.0.2.1:8080", "192.0.2.1"},
        {"2001:db8::1", "2001:db8::1"},
        {"[2001:db8::1]", "2001:db8::1"},
        {"[::1]:1", "::1"},
        {"::1", "::1"},
        {"[::1]:", NULL},
        {"[::1]:123456", NULL},
        {"192.0.2.1:80:80", NULL},
        {"[::ffff:1.2.3.4]", NULL},
        {"", NULL},
        {"localhost", NULL},
        {"192.0.2.1/32", NULL},
        {"[]", NULL},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct cm_ip a;
        bool ok = px_clientip_element(c[i].in, strlen(c[i].in), &a);
        if (!c[i].want) {
            if (ok)
                fail_msg("element \"%s\" accepted", c[i].in);
            continue;
        }
        if (!ok)
            fail_msg("element \"%s\" refused", c[i].in);
        char t[CM_IP_TEXT_MAX];
        cm_ip_format(&a, t);
        assert_string_equal(t, c[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_rule),
        cmocka_unit_test(oversized_lists),
        cmocka_unit_test(element_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
