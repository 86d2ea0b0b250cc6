/* proxy/backend.c: the backend registry. An identity maps to one entry; a
 * snapshot built from a reloaded model that keeps a server gets the very
 * same entry (pointer, counts, health, pools) and one that drops it frees
 * it once the old snapshot goes; upstream connections keep the entry's
 * connection and in-flight counts and hold it alive while pooled; the
 * registry refuses to die while anything references it (ASan proves that
 * nothing leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/snapshot.h"
#include "proxy/tls_keys.h"
#include "proxy/upstream.h"
#include "reconciler/rc.h"

static void identity_is_address_and_port(void **state)
{
    (void)state;
    struct px_backend_id a, b, c, v6;
    assert_int_equal(px_backend_id_init(&a, "127.0.0.1", 8080), 0);
    assert_string_equal(a.key, "127.0.0.1:8080");
    assert_int_equal(a.addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.addr)->sin_port), 8080);
    assert_int_equal(px_backend_id_init(&v6, "::1", 443), 0);
    assert_string_equal(v6.key, "[::1]:443");
    assert_int_equal(v6.addrlen, sizeof(struct sockaddr_in6));
    assert_int_equal(px_backend_id_init(&c, "backend.example", 80), -EINVAL);
    assert_int_equal(px_backend_id_init(&c, "127.0.0.1", 70000), -EINVAL);

    struct px_registry *r = px_registry_new(2);
    assert_non_null(r);
    px_backend_id_init(&b, "127.0.0.1", 8080);
    px_backend_id_init(&c, "127.0.0.1", 8081);
    struct px_backend *ea = px_backend_get(r, &a);
    struct px_backend *eb = px_backend_get(r, &b);
    struct px_backend *ec = px_backend_get(r, &c);
    assert_non_null(ea);
    assert_ptr_equal(ea, eb); /* same identity, same entry */
    assert_ptr_not_equal(ea, ec);
    assert_int_equal(atomic_load(&ea->refs), 2);
    assert_int_equal(px_registry_backend_count(r), 2);
    assert_int_equal(px_registry_free(r), -EBUSY); /* still referenced */
    px_backend_unref(ea);
    px_backend_unref(eb);
    px_backend_unref(ec);
    assert_int_equal(px_registry_backend_count(r), 0);
    assert_int_equal(px_registry_free(r), 0);
}

/* An entry that died is not revived: the next get makes a fresh one. */
static void dead_entry_is_replaced(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    struct px_backend_id id;
    px_backend_id_init(&id, "10.0.0.1", 80);
    struct px_backend *e = px_backend_get(r, &id);
    atomic_store(&e->inflight, 7);
    px_backend_unref(e);
    e = px_backend_get(r, &id);
    assert_int_equal(atomic_load(&e->inflight), 0);
    assert_int_equal(atomic_load(&e->health), PX_HEALTH_UNKNOWN);
    assert_true(px_backend_usable(e));
    atomic_store(&e->health, PX_HEALTH_DOWN);
    assert_false(px_backend_usable(e));
    px_backend_unref(e);
    assert_int_equal(px_registry_free(r), 0);
}

/* --- snapshots built from manifests ------------------------------------ */

static const char MANIFEST[] =
    "apiVersion: albd/v1\nkind: Instance\nmetadata: {name: t}\nspec:\n"
    "  addresses: [\"127.0.0.1\"]\n---\n"
    "apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g}\nspec:\n  servers:\n%s---\n"
    "apiVersion: albd/v1\nkind: Listener\nmetadata: {name: web}\nspec:\n  instance: t\n"
    "  protocol: HTTP\n  port: 18080\n  defaultAction: {forward: {serverGroup: g}}\n";

/* A model whose group has these server lines. */
static struct rc_model *load_model(const char *servers)
{
    char dir[] = "/tmp/albd-test-backend-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], text[2048];
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    snprintf(text, sizeof text, MANIFEST, servers);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct rc_model *m = NULL;
    struct rc_errs errs = {0};
    int rc = rc_load_dir(dir, 1893456000, &m, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.v[i].msg);
    rc_errs_cleanup(&errs);
    unlink(path);
    rmdir(dir);
    assert_int_equal(rc, 0);
    return m;
}

static struct px_snapshot *build(struct px_registry *r, const char *servers,
                                 const struct px_snapshot *prev)
{
    struct rc_model *m = load_model(servers);
    struct px_tls_keys *keys = px_tls_keys_new();
    assert_non_null(keys);
    struct px_snapshot *s = NULL;
    char err[256];
    const char *failed = NULL;
    assert_int_equal(px_snapshot_build(m, prev, NULL, r, 1, keys, &s, err, sizeof err, &failed), 0);
    px_tls_keys_unref(keys);
    rc_model_unref(m);
    return s;
}

static struct px_backend *backend_of(const struct px_snapshot *s, size_t i)
{
    assert_int_equal(s->n_groups, 1);
    assert_true(i < s->groups[0].n_servers);
    return s->groups[0].servers[i].backend;
}

static void reload_keeps_entries_of_unchanged_servers(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(2);
    struct px_snapshot *s1 = build(r,
                                   "  - {address: 127.0.0.1, port: 9001}\n"
                                   "  - {address: 127.0.0.1, port: 9002}\n",
                                   NULL);
    struct px_backend *a = backend_of(s1, 0), *b = backend_of(s1, 1);
    assert_string_equal(a->id.key, "127.0.0.1:9001");
    assert_string_equal(s1->groups[0].servers[0].key, "127.0.0.1:9001");
    assert_int_equal(px_registry_backend_count(r), 2);
    /* State a running proxy would have accumulated. */
    atomic_store(&a->inflight, 3);
    atomic_store(&a->connections, 5);
    atomic_store(&a->health, PX_HEALTH_UP);
    atomic_store(&a->slow_start, 1234);

    /* The reload keeps 9001 (now second, with another weight), drops 9002
     * and adds 9003. */
    struct px_snapshot *s2 = build(r,
                                   "  - {address: 127.0.0.1, port: 9003}\n"
                                   "  - {address: 127.0.0.1, port: 9001, weight: 50}\n",
                                   s1);
    assert_ptr_equal(backend_of(s2, 1), a); /* same identity, same entry */
    assert_int_equal(atomic_load(&a->inflight), 3);
    assert_int_equal(atomic_load(&a->connections), 5);
    assert_int_equal(atomic_load(&a->health), PX_HEALTH_UP);
    assert_int_equal(atomic_load(&a->slow_start), 1234);
    assert_ptr_not_equal(backend_of(s2, 0), b);
    assert_int_equal(px_registry_backend_count(r), 3); /* 9002 lives while s1 does */

    px_snapshot_unref(s1); /* 9002 is no longer referenced: freed */
    assert_int_equal(px_registry_backend_count(r), 2);
    assert_ptr_equal(backend_of(s2, 1), a);
    assert_int_equal(atomic_load(&a->refs), 1);

    assert_int_equal(px_registry_free(r), -EBUSY);
    px_snapshot_unref(s2);
    assert_int_equal(px_registry_backend_count(r), 0);
    assert_int_equal(px_registry_free(r), 0);
}

/* An unchanged group is taken from the previous snapshot: the same
 * registry entries and scheduler state, a servers array of its own that
 * points into the new model, and it outlives the snapshot it came from.
 * A changed one (a weight) is built, with a new scheduler state. */
static void unchanged_group_is_taken_from_the_previous_snapshot(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    static const char two[] = "  - {address: 127.0.0.1, port: 9001}\n"
                              "  - {address: 127.0.0.1, port: 9002, weight: 30}\n";
    struct px_snapshot *s1 = build(r, two, NULL);
    struct px_snapshot *s2 = build(r, two, s1);
    assert_int_equal(s1->groups_reused, 0);
    assert_int_equal(s2->groups_reused, 1);
    const struct px_group *g1 = &s1->groups[0], *g2 = &s2->groups[0];
    assert_ptr_not_equal(g2->servers, g1->servers);
    assert_ptr_equal(g2->lb, g1->lb);
    assert_int_equal(g2->n_servers, 2);
    assert_int_equal(g2->total_weight, g1->total_weight);
    for (size_t j = 0; j < 2; j++) {
        assert_ptr_equal(g2->servers[j].backend, g1->servers[j].backend);
        assert_ptr_equal(g2->servers[j].model, &s2->model->groups[0].servers[j]);
        assert_int_equal(g2->servers[j].obs_slot, g1->servers[j].obs_slot);
    }
    assert_int_equal(atomic_load(&g1->servers[0].backend->refs), 2);
    px_snapshot_unref(s1); /* s2's references keep the entries and the state */
    assert_int_equal(px_registry_backend_count(r), 2);
    assert_string_equal(g2->servers[1].key, "127.0.0.1:9002");
    assert_int_equal(g2->servers[1].weight, 30);
    struct px_snapshot *s3 = build(r,
                                   "  - {address: 127.0.0.1, port: 9001}\n"
                                   "  - {address: 127.0.0.1, port: 9002, weight: 40}\n",
                                   s2);
    assert_int_equal(s3->groups_reused, 0);
    assert_ptr_not_equal(s3->groups[0].lb, g2->lb);
    assert_ptr_equal(s3->groups[0].servers[0].backend, g2->servers[0].backend);
    assert_int_equal(s3->groups[0].servers[1].weight, 40);
    px_snapshot_unref(s2);
    px_snapshot_unref(s3);
    assert_int_equal(px_registry_backend_count(r), 0);
    assert_int_equal(px_registry_free(r), 0);
}

/* A group naming the same server twice shares one entry. */
static void duplicate_servers_share_an_entry(void **state)
{
    (void)state;
    struct px_registry *r = px_registry_new(1);
    struct px_snapshot *s = build(r,
                                  "  - {address: 127.0.0.1, port: 9001}\n"
                                  "  - {address: 127.0.0.1, port: 9002}\n",
                                  NULL);
    struct px_snapshot *s2 = build(r,
                                   "  - {address: 127.0.0.1, port: 9002}\n"
                                   "  - {address: 127.0.0.1, port: 9001}\n",
                                   s);
    assert_ptr_equal(backend_of(s, 0), backend_of(s2, 1));
    assert_ptr_equal(backend_of(s, 1), backend_of(s2, 0));
    assert_int_equal(px_registry_backend_count(r), 2);
    px_snapshot_unref(s2);
    px_snapshot_unref(s);
    assert_int_equal(px_registry_free(r), 0);
}

/* --- counts kept by upstream connections -------------------------------- */

static int connects, connect_status;

static void on_connect(void *owner, struct px_upstream *u, int status)
{
    (void)owner;
    (void)u;
    connects++;
    connect_status = status;
}

static void on_read(void *owner, struct px_upstream *u, const char *data, ssize_t n)
{
    (void)owner;
    (void)u;
    (void)data;
    (void)n;
}

static const struct px_upstream_cbs cbs = {.on_connect = on_connect, .on_read = on_read};

static void upstream_connections_keep_counts(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);

    static struct px_worker w; /* id 0 */
    assert_int_equal(uv_loop_init(&w.loop), 0);
    struct px_registry *r = px_registry_new(1);
    w.registry = r;
    struct px_backend_id id;
    px_backend_id_init(&id, "127.0.0.1", ntohs(sa.sin_port));
    struct px_server srv = {.backend = px_backend_get(r, &id), .weight = 1};
    srv.key = srv.backend->id.key;
    struct px_backend *b = srv.backend;

    struct px_upstream *u = NULL;
    bool reused = true;
    assert_int_equal(px_upstream_acquire(&w, &srv, true, &cbs, NULL, &u, &reused), 0);
    assert_false(reused);
    assert_int_equal(atomic_load(&b->connections), 1);
    assert_int_equal(atomic_load(&b->inflight), 1); /* connecting serves a request */
    while (connects == 0)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(connect_status, 0);
    assert_int_equal(atomic_load(&b->inflight), 1);

    px_upstream_release(u, true); /* pooled: open, not in flight */
    assert_int_equal(atomic_load(&b->connections), 1);
    assert_int_equal(atomic_load(&b->inflight), 0);
    assert_int_equal(b->pools[0].n_idle, 1);

    /* The snapshot's reference goes (a reload dropped the server): the
     * pooled connection still holds the entry. */
    px_backend_unref(srv.backend);
    assert_int_equal(px_registry_backend_count(r), 1);
    assert_int_equal(px_upstream_acquire(&w, &srv, true, &cbs, NULL, &u, &reused), 0);
    assert_true(reused);
    assert_int_equal(atomic_load(&b->inflight), 1);
    px_upstream_release(u, true);

    px_upstream_close_idle(&w); /* worker stop */
    uv_run(&w.loop, UV_RUN_DEFAULT);
    assert_int_equal(px_registry_backend_count(r), 0); /* freed with its last connection */
    assert_int_equal(px_registry_free(r), 0);
    assert_int_equal(uv_loop_close(&w.loop), 0);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_is_address_and_port),
        cmocka_unit_test(dead_entry_is_replaced),
        cmocka_unit_test(reload_keeps_entries_of_unchanged_servers),
        cmocka_unit_test(unchanged_group_is_taken_from_the_previous_snapshot),
        cmocka_unit_test(duplicate_servers_share_an_entry),
        cmocka_unit_test(upstream_connections_keep_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
