/* proxy/lb.c: smooth weighted round robin (evenly spread turns, exact
 * shares, one independent rotation per worker), its state kept across a
 * reload that leaves the group alone and reset when the weights or members
 * change, weight 0 and unhealthy servers skipped (failing open when all are
 * down), and failover across a group of any size (more than 64 servers),
 * each server offered once. */
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

/* A group as px_snapshot_build makes it: servers 10.0.0.<i+1>:80 with
 * these weights, backends and scheduler state from r. */
struct tgroup {
    struct rc_server_group model;
    struct px_group g;
};

static struct tgroup *group_new(struct px_registry *r, const char *name, const int *weights,
                                size_t n)
{
    struct tgroup *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->model.meta.name = name;
    t->model.scheduler = RC_SCHED_WRR;
    t->model.fail_open = true;
    t->g.model = &t->model;
    t->g.n_servers = n;
    t->g.servers = calloc(n, sizeof *t->g.servers);
    assert_non_null(t->g.servers);
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.0.%zu.%zu", (i + 1) / 256, (i + 1) % 256);
        struct px_backend_id id;
        assert_int_equal(px_backend_id_init(&id, ip, 80), 0);
        t->g.servers[i].backend = px_backend_get(r, &id);
        t->g.servers[i].key = t->g.servers[i].backend->id.key;
        t->g.servers[i].weight = weights[i];
    }
    t->g.lb = px_lb_state_get(r, &t->g);
    assert_non_null(t->g.lb);
    return t;
}

static void group_free(struct tgroup *t)
{
    for (size_t i = 0; i < t->g.n_servers; i++)
        px_backend_unref(t->g.servers[i].backend);
    px_lb_state_unref(t->g.lb);
    free(t->g.servers);
    free(t);
}

/* The index of the next pick on worker w. */
static int pick(struct tgroup *t, int w)
{
    struct px_server *s = px_lb_pick(&t->g, w);
    assert_non_null(s);
    return (int)(s - t->g.servers);
}

static void picks(struct tgroup *t, int w, int n, char *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (char)('a' + pick(t, w));
    out[n] = '\0';
}

static void wrr_is_smooth_and_exact(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(2);
    const int w[] = {5, 1, 1};
    struct tgroup *t = group_new(r, "g", w, 3);
    char seq[64];
    picks(t, 0, 7, seq);
    assert_string_equal(seq, "aabacaa"); /* a's turns spread, not "aaaaabc" */
    picks(t, 0, 7, seq);
    assert_string_equal(seq, "aabacaa");

    /* Exact shares over many picks, weights 3:2:1:0. */
    const int w2[] = {3, 2, 1, 0};
    struct tgroup *t2 = group_new(r, "g2", w2, 4);
    int count[4] = {0};
    for (int i = 0; i < 600; i++)
        count[pick(t2, 1)]++;
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 200);
    assert_int_equal(count[2], 100);
    assert_int_equal(count[3], 0); /* weight 0: no new requests */

    /* Each worker has its own rotation: worker 1 starts afresh. */
    picks(t, 1, 3, seq);
    assert_string_equal(seq, "aab");
    group_free(t);
    group_free(t2);
    assert_int_equal(px_registry_free(r), 0);
}

static void state_survives_an_unchanged_reload(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    const int w[] = {5, 1, 1};
    struct tgroup *old = group_new(r, "g", w, 3);
    char seq[8];
    picks(old, 0, 3, seq);
    assert_string_equal(seq, "aab");

    /* The reload builds the same group again: same state, the rotation
     * goes on where it was ("aab" then "aca"), not back to "aab". */
    struct tgroup *same = group_new(r, "g", w, 3);
    assert_ptr_equal(same->g.lb, old->g.lb);
    group_free(old); /* the old snapshot goes */
    picks(same, 0, 4, seq);
    assert_string_equal(seq, "acaa");

    /* Changed weights: a new state, the rotation starts afresh. */
    const int w2[] = {5, 1, 2};
    struct tgroup *reweighted = group_new(r, "g", w2, 3);
    assert_ptr_not_equal(reweighted->g.lb, same->g.lb);
    picks(reweighted, 0, 3, seq);
    assert_string_equal(seq, "aca");

    /* Another member set, or another group with the same servers: new. */
    const int w3[] = {5, 1, 1, 1};
    struct tgroup *grown = group_new(r, "g", w3, 4);
    struct tgroup *other = group_new(r, "h", w, 3);
    assert_ptr_not_equal(grown->g.lb, same->g.lb);
    assert_ptr_not_equal(other->g.lb, same->g.lb);
    group_free(grown);
    group_free(other);
    group_free(reweighted);
    group_free(same);
    assert_int_equal(px_registry_free(r), 0); /* every state freed */
}

static void unhealthy_servers_are_skipped_unless_all_are(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    const int w[] = {1, 1, 1};
    struct tgroup *t = group_new(r, "g", w, 3);
    atomic_store(&t->g.servers[1].backend->health, PX_HEALTH_DOWN);
    for (int i = 0; i < 10; i++)
        assert_int_not_equal(pick(t, 0), 1);
    for (int i = 0; i < 3; i++)
        atomic_store(&t->g.servers[i].backend->health, PX_HEALTH_DOWN);
    px_lb_pick(&t->g, 0); /* fail open (the default): still a server */
    t->model.fail_open = false;
    assert_null(px_lb_pick(&t->g, 0));
    group_free(t);

    const int zero[] = {0, 0};
    t = group_new(r, "z", zero, 2);
    assert_null(px_lb_pick(&t->g, 0));
    group_free(t);
    assert_int_equal(px_registry_free(r), 0);
}

/* 100 servers: the first pick, then failover offers the 99 others once
 * each, then nothing. A 64-bit "tried" mask could not. */
static void failover_spans_more_than_64_servers(void **state)
{
    (void)state;
    enum { N = 100 };
    struct px_registry *r = px_registry_new(1);
    int w[N];
    for (int i = 0; i < N; i++)
        w[i] = 1;
    w[70] = 0; /* never offered */
    struct tgroup *t = group_new(r, "big", w, N);
    bool seen[N] = {false};
    for (int round = 0; round < 5; round++) { /* from various first picks */
        memset(seen, 0, sizeof seen);
        struct px_server *s = px_lb_pick(&t->g, 0);
        assert_non_null(s);
        size_t first = (size_t)(s - t->g.servers), cursor = 0;
        int offered = 0;
        for (; s; s = px_lb_next(&t->g, first, &cursor)) {
            size_t i = (size_t)(s - t->g.servers);
            assert_false(seen[i]); /* at most once per request */
            seen[i] = true;
            offered++;
        }
        assert_int_equal(offered, N - 1);
        assert_false(seen[70]);
        assert_true(seen[99] && seen[0] && seen[64] && seen[65]);
    }
    group_free(t);
    assert_int_equal(px_registry_free(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrr_is_smooth_and_exact),
        cmocka_unit_test(state_survives_an_unchanged_reload),
        cmocka_unit_test(unhealthy_servers_are_skipped_unless_all_are),
        cmocka_unit_test(failover_spans_more_than_64_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
