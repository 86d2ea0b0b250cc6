/* proxy/drain.c: px_drain_mark marks exactly the backends the new
 * snapshot no longer sends to (removed, weight 0, whole group gone), with
 * the deadline of the group's connectionDrain (or none), keeps an earlier
 * deadline, and clears the mark of a server that serves again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proxy/backend.h"
#include "proxy/drain.h"

struct tsnap {
    struct px_snapshot s;
    struct px_group g[2];
    struct px_server sv[2][4];
};

/* Group k named names[k] with servers (backend index, weight). */
static void set_group(struct tsnap *t, size_t k, const struct rc_server_group *m,
                      struct px_backend **b, const int *idx, const int *w, size_t n)
{
    t->g[k] = (struct px_group){.model = m, .servers = t->sv[k], .n_servers = n};
    for (size_t i = 0; i < n; i++)
        t->sv[k][i] =
            (struct px_server){.backend = b[idx[i]], .key = b[idx[i]]->id.key, .weight = w[i]};
    t->s.groups = t->g;
    t->s.n_groups = k + 1 > t->s.n_groups ? k + 1 : t->s.n_groups;
}

static void marks_what_no_group_serves(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    struct px_backend *b[4];
    for (int i = 0; i < 4; i++) {
        char ip[16];
        snprintf(ip, sizeof ip, "10.2.0.%d", i + 1);
        struct px_backend_id id;
        assert_int_equal(px_backend_id_init(&id, ip, 80), 0);
        b[i] = px_backend_get(r, &id);
    }
    struct rc_server_group web = {.meta.name = "web"}, api = {.meta.name = "api"};
    struct rc_server_group web2 = web;
    web2.drain.enabled = true;
    web2.drain.timeout_s = 10;

    struct tsnap before = {0}, now = {0};
    set_group(&before, 0, &web, b, (int[]){0, 1, 2}, (int[]){100, 100, 100}, 3);
    set_group(&before, 1, &api, b, (int[]){3}, (int[]){100}, 1);
    /* now: web (drain 10 s) keeps 0, sets 1 to weight 0, drops 2; api is gone. */
    set_group(&now, 0, &web2, b, (int[]){0, 1}, (int[]){100, 0}, 2);
    px_drain_mark(&now.s, NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&b[i]->drain_at), 0); /* nothing before: no mark */
    uint64_t t0 = uv_hrtime() / 1000000;
    px_drain_mark(&now.s, &before.s);
    assert_int_equal(atomic_load(&b[0]->drain_at), 0);
    uint64_t d1 = atomic_load(&b[1]->drain_at), d2 = atomic_load(&b[2]->drain_at);
    assert_true(d1 >= t0 + 10000 && d1 < t0 + 12000); /* the new group's 10 s */
    assert_true(d2 >= t0 + 10000 && d2 < t0 + 12000);
    assert_true(atomic_load(&b[3]->drain_at) == PX_DRAIN_NO_DEADLINE); /* api: no drain */

    /* Another reload that still leaves 1 out keeps its first deadline. */
    atomic_store(&b[1]->drain_at, 5);
    px_drain_mark(&now.s, &before.s);
    assert_int_equal(atomic_load(&b[1]->drain_at), 5);

    /* 1 serves again: its mark is cleared. */
    struct tsnap again = {0};
    set_group(&again, 0, &web, b, (int[]){0, 1}, (int[]){100, 100}, 2);
    px_drain_mark(&again.s, &now.s);
    assert_int_equal(atomic_load(&b[1]->drain_at), 0);
    assert_int_not_equal(atomic_load(&b[2]->drain_at), 0);

    for (int i = 0; i < 4; i++)
        px_backend_unref(b[i]);
    assert_int_equal(px_registry_free(r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(marks_what_no_group_serves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
