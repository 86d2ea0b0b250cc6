/* proxy/group_sticky.c: the group a request's albd-group-<rule> cookie
 * names (only a group of the rule with a weight above 0; otherwise none,
 * and the response must set the cookie), and the filter adding the
 * Set-Cookie to a forwarded response head (not to a 1xx). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/group_sticky.h"
#include "proxy/snapshot-t.h"
#include "reconciler/model-t.h"

static struct rc_server_group mgroups[3];
static struct px_group groups[3];
static struct rc_listener l_model;
static struct px_listener lis = {.model = &l_model, .groups = groups, .model_groups = mgroups};
static struct px_hdr hdrs[4];
static struct rc_rule ru;

static int setup(void **state)
{
    (void)state;
    const char *names[] = {"ga", "gb", "gc"};
    for (int i = 0; i < 3; i++) {
        mgroups[i].meta.name = names[i];
        groups[i].model = &mgroups[i];
    }
    ru.name = "web";
    ru.action.kind = RC_ACTION_FORWARD;
    ru.action.forward.n_groups = 3;
    for (int i = 0; i < 3; i++) {
        ru.action.forward.groups[i] = &mgroups[i];
        ru.action.forward.weights[i] = i == 2 ? 0 : 50; /* gc: weight 0 */
    }
    ru.action.forward.sticky = true;
    ru.action.forward.sticky_timeout_s = 120;
    return 0;
}

static struct px_group *pick(const char *cookie, bool *set)
{
    hdrs[0] = (struct px_hdr){"Cookie", 6, cookie, strlen(cookie)};
    struct px_req r = {.lis = &lis, .method = "GET", .hdrs = hdrs, .n_hdrs = 1};
    return px_group_sticky_pick(&r, &ru, set);
}

static void the_cookie_names_the_group(void **state)
{
    (void)state;
    bool set = false;
    assert_ptr_equal(pick("a=1; albd-group-web=gb; b=2", &set), &groups[1]);
    assert_false(set);
    assert_ptr_equal(pick("albd-group-web=ga", &set), &groups[0]);
    assert_false(set);
    static const char *const none[] = {
        "albd-group-web=gc",   /* weight 0 */
        "albd-group-web=gx",   /* not a group of the rule */
        "albd-group-web=g",    /* a prefix */
        "albd-group-other=ga", /* another rule's */
        "x=albd-group-web=ga", "",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        set = false;
        assert_null(pick(none[i], &set));
        assert_true(set);
    }
}

static struct {
    int status;
    size_t n;
    char last[256];
} seen;

static int s_head(void *owner, const struct px_resp_head *rh)
{
    (void)owner;
    seen.status = rh->status;
    seen.n = rh->n;
    if (rh->n)
        snprintf(seen.last, sizeof seen.last, "%.*s: %.*s", (int)rh->h[rh->n - 1].name_len,
                 rh->h[rh->n - 1].name, (int)rh->h[rh->n - 1].value_len, rh->h[rh->n - 1].value);
    return 0;
}

static int s_data(void *o, const char *at, size_t len)
{
    (void)o;
    (void)at;
    (void)len;
    return 0;
}

static int s_end(void *o)
{
    (void)o;
    return 0;
}

static void s_abort(void *o, int st)
{
    (void)o;
    (void)st;
}

static const struct px_sink sink = {.head = s_head, .data = s_data, .end = s_end, .abort = s_abort};

static void the_filter_sets_the_cookie(void **state)
{
    (void)state;
    struct px_exchange x = {.owner = &seen, .sink_owner = &seen};
    const struct px_sink *s = &sink;
    px_group_sticky_attach(&x, &ru, &groups[1], &s);
    assert_ptr_not_equal(s, &sink);
    struct px_hdr bh[] = {{"Content-Type", 12, "text/plain", 10}};
    struct px_resp_head h100 = {.status = 100, .h = bh, .n = 0};
    assert_int_equal(s->head(x.sink_owner, &h100), 0);
    assert_int_equal(seen.n, 0);
    struct px_resp_head rh = {.status = 200, .h = bh, .n = 1};
    assert_int_equal(s->head(x.sink_owner, &rh), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.last, "set-cookie: albd-group-web=gb; Max-Age=120; Path=/; HttpOnly");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_cookie_names_the_group),
        cmocka_unit_test(the_filter_sets_the_cookie),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
