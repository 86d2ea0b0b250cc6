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
#include "common/ip.h"

/* A group as px_snapshot_build makes it: servers 10.0.0.<i+1>:80 with
 * these weights, backends and scheduler state from r. */
struct tgroup {
    struct rc_server_group model;
    struct px_group g;
};

static struct tgroup *group_ids(struct px_registry *r, const char *name, const int *ids,
                                const int *weights, size_t n, enum rc_scheduler sch, bool slow);

static struct tgroup *group_sched(struct px_registry *r, const char *name, const int *weights,
                                  size_t n, enum rc_scheduler sch, bool slow)
{
    return group_ids(r, name, NULL, weights, n, sch, slow);
}

static struct tgroup *group_new(struct px_registry *r, const char *name, const int *weights,
                                size_t n)
{
    return group_sched(r, name, weights, n, RC_SCHED_WRR, false);
}

/* Servers 10.0.x.y:80 numbered ids[i] (NULL: i + 1). */
static struct tgroup *group_ids(struct px_registry *r, const char *name, const int *ids,
                                const int *weights, size_t n, enum rc_scheduler sch, bool slow)
{
    struct tgroup *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->model.meta.name = name;
    t->model.scheduler = sch;
    t->model.fail_open = true;
    t->model.slow_start.enabled = slow;
    t->model.slow_start.duration_s = 100;
    t->g.model = &t->model;
    t->g.n_servers = n;
    t->g.servers = calloc(n, sizeof *t->g.servers);
    assert_non_null(t->g.servers);
    for (size_t i = 0; i < n; i++) {
        char ip[32];
        size_t num = ids ? (size_t)ids[i] : i + 1;
        snprintf(ip, sizeof ip, "10.0.%zu.%zu", num / 256, num % 256);
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
    struct px_server *s = px_lb_pick(&t->g, w, NULL);
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
    px_lb_pick(&t->g, 0, NULL); /* fail open (the default): still a server */
    t->model.fail_open = false;
    assert_null(px_lb_pick(&t->g, 0, NULL));
    group_free(t);

    const int zero[] = {0, 0};
    t = group_new(r, "z", zero, 2);
    assert_null(px_lb_pick(&t->g, 0, NULL));
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
        struct px_server *s = px_lb_pick(&t->g, 0, NULL);
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

/* Wlc: the fewest in-flight requests per unit of weight (the registry's
 * counts, shared by every worker), ties in proportion to weight. */
static void wlc_prefers_the_least_loaded_per_weight(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(2);
    const int w[] = {100, 50, 100};
    struct tgroup *t = group_sched(r, "wlc", w, 3, RC_SCHED_WLC, false);
    struct px_backend *b[3];
    for (int i = 0; i < 3; i++)
        b[i] = t->g.servers[i].backend;
    /* 4/100 vs 1/50 vs 3/100: b (0.02) is the least loaded. */
    atomic_store(&b[0]->inflight, 4);
    atomic_store(&b[1]->inflight, 1);
    atomic_store(&b[2]->inflight, 3);
    assert_int_equal(pick(t, 0), 1);
    assert_int_equal(pick(t, 1), 1);  /* another worker sees the same counts */
    atomic_store(&b[1]->inflight, 2); /* 0.04: c (0.03) now */
    assert_int_equal(pick(t, 0), 2);
    /* A down server is skipped even when idle. */
    atomic_store(&b[2]->health, PX_HEALTH_DOWN);
    atomic_store(&b[2]->inflight, 0);
    assert_int_not_equal(pick(t, 0), 2);
    atomic_store(&b[2]->health, PX_HEALTH_UNKNOWN);
    /* All idle: ties go round by weight, 2:1:2 over 500 picks. */
    int count[3] = {0};
    for (int i = 0; i < 3; i++)
        atomic_store(&b[i]->inflight, 0);
    for (int i = 0; i < 500; i++)
        count[pick(t, 0)]++;
    assert_int_equal(count[0], 200);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 200);
    /* Under load the picks follow the counts: a simulated run where every
     * pick adds one in-flight request and the oldest finishes. */
    memset(count, 0, sizeof count);
    for (int i = 0; i < 3000; i++) {
        int k = pick(t, i % 2);
        count[k]++;
        atomic_fetch_add(&b[k]->inflight, 1);
        if (i % 3 == 2) /* the most loaded finishes one */
            for (int j = 0; j < 3; j++)
                if (atomic_load(&b[j]->inflight) > 0) {
                    atomic_fetch_sub(&b[j]->inflight, 1);
                    break;
                }
    }
    /* a and c twice b's connections */
    assert_true(atomic_load(&b[0]->inflight) >= atomic_load(&b[1]->inflight));
    for (int i = 0; i < 3; i++)
        atomic_store(&b[i]->inflight, 0);
    group_free(t);
    assert_int_equal(px_registry_free(r), 0);
}

static int pick_hash(struct tgroup *t, uint64_t h)
{
    struct px_lb_key k = {.has_hash = true, .hash = h};
    struct px_server *s = px_lb_pick(&t->g, 0, &k);
    assert_non_null(s);
    int hi = -1, lo = -1; /* the server's number (group_ids) */
    assert_int_equal(sscanf(s->key, "10.0.%d.%d:", &hi, &lo), 2);
    return hi * 256 + lo;
}

/* A key spread: splitmix64 of i. */
static uint64_t key_of(uint64_t i)
{
    uint64_t z = i * 0x9e3779b97f4a7c15ull + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sch / Uch: the same key always lands on the same server; shares follow
 * the weights; a down server's keys go elsewhere and nobody else's move. */
static void consistent_hash_is_stable_and_weighted(void **state)
{
    (void)state;
    enum { KEYS = 100000 };
    struct px_registry *r = px_registry_new(1);
    const int w[] = {100, 100, 50, 100};
    struct tgroup *t = group_sched(r, "sch", w, 4, RC_SCHED_SCH, false);
    static int first[KEYS];
    int count[5] = {0};
    for (int i = 0; i < KEYS; i++) {
        first[i] = pick_hash(t, key_of((uint64_t)i));
        assert_true(first[i] >= 1 && first[i] <= 4);
        count[first[i]]++;
        assert_int_equal(pick_hash(t, key_of((uint64_t)i)), first[i]);
    }
    /* Weight shares 2/7, 2/7, 1/7, 2/7 within 20 % (160 ring points per
     * weight 100). */
    print_message("sch shares: %d %d %d %d of %d\n", count[1], count[2], count[3], count[4], KEYS);
    for (int i = 1; i <= 4; i++) {
        double want = KEYS * (i == 3 ? 1.0 : 2.0) / 7.0;
        assert_true(count[i] > want * 0.8 && count[i] < want * 1.2);
    }
    atomic_store(&t->g.servers[1].backend->health, PX_HEALTH_DOWN);
    int moved_other = 0;
    for (int i = 0; i < KEYS; i++) {
        int s = pick_hash(t, key_of((uint64_t)i));
        assert_int_not_equal(s, 2);
        if (first[i] != 2 && s != first[i])
            moved_other++;
    }
    assert_int_equal(moved_other, 0);
    /* All down: fails open to the ring's own choice. */
    for (int i = 0; i < 4; i++)
        atomic_store(&t->g.servers[i].backend->health, PX_HEALTH_DOWN);
    assert_int_equal(pick_hash(t, key_of(7)), first[7]);
    /* No hash (Uch without its parameter): Wrr. */
    assert_non_null(px_lb_pick(&t->g, 0, &(struct px_lb_key){0}));
    group_free(t);
    assert_int_equal(px_registry_free(r), 0);
}

/* Adding an 11th server to 10 moves about 1/11 of the keys, all to the
 * new server; removing one of 10 moves only its own keys (about 1/10). */
static void consistent_hash_moves_about_one_nth(void **state)
{
    (void)state;
    enum { KEYS = 200000 };
    struct px_registry *r = px_registry_new(1);
    int w[11], ids[11];
    for (int i = 0; i < 11; i++) {
        w[i] = 100;
        ids[i] = i + 1;
    }
    struct tgroup *ten = group_ids(r, "g", ids, w, 10, RC_SCHED_UCH, false);
    struct tgroup *eleven = group_ids(r, "g", ids, w, 11, RC_SCHED_UCH, false);
    int without4[9] = {1, 2, 3, 5, 6, 7, 8, 9, 10};
    struct tgroup *nine = group_ids(r, "g", without4, w, 9, RC_SCHED_UCH, false);
    int moved_add = 0, moved_add_elsewhere = 0, moved_rm = 0, moved_rm_other = 0;
    for (int i = 0; i < KEYS; i++) {
        uint64_t k = key_of((uint64_t)i + 12345);
        int a = pick_hash(ten, k), b = pick_hash(eleven, k), c = pick_hash(nine, k);
        if (a != b) {
            moved_add++;
            if (b != 11)
                moved_add_elsewhere++;
        }
        if (a != c) {
            moved_rm++;
            if (a != 4)
                moved_rm_other++;
        }
    }
    double fa = (double)moved_add / KEYS, fr = (double)moved_rm / KEYS;
    print_message("consistent hash: add 1 to 10 moved %.4f of keys (ideal %.4f); "
                  "remove 1 of 10 moved %.4f (ideal %.4f)\n",
                  fa, 1.0 / 11, fr, 1.0 / 10);
    assert_int_equal(moved_add_elsewhere, 0);
    assert_int_equal(moved_rm_other, 0);
    assert_true(fa > 0.06 && fa < 0.12);
    assert_true(fr > 0.07 && fr < 0.13);
    group_free(ten);
    group_free(eleven);
    group_free(nine);
    assert_int_equal(px_registry_free(r), 0);
}

/* The request's key: Sch hashes the client address, Uch the parameter's
 * value (missing: no hash, Wrr). */
static void key_from_request(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    const int w[] = {100, 100};
    struct tgroup *t = group_sched(r, "u", w, 2, RC_SCHED_UCH, false);
    t->model.uch_query_parameter = "user";
    struct px_req q = {0};
    struct px_lb_key k1, k2;
    q.query = "a=1&user=bob&x";
    q.query_len = strlen(q.query);
    px_lb_key_from_req(&k1, &t->g, &q);
    assert_true(k1.has_hash);
    q.query = "user=bob";
    q.query_len = strlen(q.query);
    px_lb_key_from_req(&k2, &t->g, &q);
    assert_true(k2.has_hash);
    assert_true(k1.hash == k2.hash);
    q.query = "username=bob&xuser=bob";
    q.query_len = strlen(q.query);
    px_lb_key_from_req(&k2, &t->g, &q);
    assert_false(k2.has_hash);
    q.query = NULL;
    q.query_len = 0;
    px_lb_key_from_req(&k2, &t->g, &q);
    assert_false(k2.has_hash);

    t->model.scheduler = RC_SCHED_SCH;
    assert_true(cm_ip_parse("192.0.2.7", 9, &q.client_addr));
    px_lb_key_from_req(&k1, &t->g, &q);
    px_lb_key_from_req(&k2, &t->g, &q);
    assert_true(k1.has_hash && k1.hash == k2.hash);
    assert_true(cm_ip_parse("192.0.2.8", 9, &q.client_addr));
    px_lb_key_from_req(&k2, &t->g, &q);
    assert_true(k1.hash != k2.hash);
    group_free(t);
    assert_int_equal(px_registry_free(r), 0);
}

/* Slow start: a server added to a serving group ramps linearly; the first
 * servers of a group do not; a server back from a health failure ramps
 * again. */
static void slow_start_ramps_new_servers(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    const int w[] = {100, 100, 100};
    struct tgroup *two = group_sched(r, "ss", w, 2, RC_SCHED_WRR, true);
    assert_int_equal(atomic_load(&two->g.servers[0].backend->slow_start), 0);
    assert_int_equal(atomic_load(&two->g.servers[1].backend->slow_start), 0);
    struct tgroup *three = group_sched(r, "ss", w, 3, RC_SCHED_WRR, true);
    struct px_backend *c = three->g.servers[2].backend;
    uint64_t t0 = atomic_load(&c->slow_start);
    assert_true(t0 != 0); /* entered slow start */
    assert_int_equal(atomic_load(&three->g.servers[0].backend->slow_start), 0);
    /* A quarter of the way (duration 100 s): a quarter of its weight. */
    uint64_t now = uv_hrtime() / 1000000;
    atomic_store(&c->slow_start, now - 25000);
    int count[3] = {0};
    for (int i = 0; i < 900; i++)
        count[pick(three, 0)]++;
    print_message("slow start at 25 %%: %d %d %d\n", count[0], count[1], count[2]);
    assert_true(count[2] > 80 && count[2] < 125); /* 0.25/2.25 of 900 = 100 */
    assert_int_equal(px_lb_slow_start(&three->g, &three->g.servers[2], now), 250);
    /* At the end of the duration the ramp ends and the clock clears. */
    assert_int_equal(px_lb_slow_start(&three->g, &three->g.servers[2], now + 75000), 1000);
    assert_int_equal(atomic_load(&c->slow_start), 0);
    /* Health failure, then recovery: the ramp starts again. */
    atomic_store(&c->health, PX_HEALTH_DOWN);
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(pick(three, 0), 2);
    atomic_store(&c->health, PX_HEALTH_UP);
    (void)pick(three, 0);
    assert_true(atomic_load(&c->slow_start) != 0);
    assert_true(px_lb_slow_start(&three->g, &three->g.servers[2], uv_hrtime() / 1000000) < 50);

    /* A new group: no server ramps (nobody to carry the traffic). */
    struct tgroup *fresh = group_sched(r, "other", w, 3, RC_SCHED_WRR, true);
    (void)fresh;
    group_free(fresh);
    group_free(two);
    group_free(three);
    assert_int_equal(px_registry_free(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrr_is_smooth_and_exact),
        cmocka_unit_test(state_survives_an_unchanged_reload),
        cmocka_unit_test(unhealthy_servers_are_skipped_unless_all_are),
        cmocka_unit_test(failover_spans_more_than_64_servers),
        cmocka_unit_test(wlc_prefers_the_least_loaded_per_weight),
        cmocka_unit_test(consistent_hash_is_stable_and_weighted),
        cmocka_unit_test(consistent_hash_moves_about_one_nth),
        cmocka_unit_test(key_from_request),
        cmocka_unit_test(slow_start_ramps_new_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
