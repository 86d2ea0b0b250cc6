/* proxy/dns.c and its use by px_snapshot_build: a server given by host
 * name becomes one server per address (same port and weight), sorted and
 * without duplicates; a name without addresses contributes no server while
 * the group's other servers stay; a name and an IP literal for the same
 * address are one server; the state /status reports; names a model no
 * longer uses are forgotten; HTTPS groups key their backends apart from
 * plain ones. Also a real lookup of "localhost" on a uv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/dns.h"
#include "proxy/snapshot.h"
#include "reconciler/model.h"
#include "reconciler/rc.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    return ss;
}

static void state_sorted_and_deduplicated(void **state)
{
    (void)state;
    struct px_dns *d = px_dns_new(NULL, NULL, NULL);
    assert_non_null(d);
    struct sockaddr_storage a[4] = {v4("10.0.0.2"), v6("::1"), v4("10.0.0.1"), v4("10.0.0.2")};
    assert_int_equal(px_dns_set(d, "api.internal", a, 4), 0);
    const struct sockaddr_storage *got;
    assert_int_equal(px_dns_addrs(d, "api.internal", &got), 3);
    struct px_dns_state st;
    px_dns_state(d, "api.internal", &st);
    assert_true(st.known);
    assert_true(st.resolved);
    assert_int_equal(st.n_addrs, 3);
    assert_string_equal(st.addrs[0], "10.0.0.1");
    assert_string_equal(st.addrs[1], "10.0.0.2");
    assert_string_equal(st.addrs[2], "::1");
    assert_string_equal(st.error, "");
    assert_true(st.last_ok > 0);

    assert_int_equal(px_dns_set(d, "gone.invalid", NULL, 0), 0);
    px_dns_state(d, "gone.invalid", &st);
    assert_true(st.known);
    assert_false(st.resolved);
    assert_int_not_equal(st.error[0], '\0');
    assert_int_equal(px_dns_addrs(d, "gone.invalid", &got), 0);

    px_dns_state(d, "unknown.example", &st);
    assert_false(st.known);
    assert_int_equal(px_dns_addrs(NULL, "x", &got), 0);
    px_dns_free(d);
}

/* Writes a manifest folder and loads it. */
static struct rc_model *load(const char *yaml, char *dir)
{
    strcpy(dir, "/tmp/albd-test-dns-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    struct rc_model *m = NULL;
    struct rc_errs errs;
    rc_errs_init(&errs);
    int rc = rc_load_dir(dir, time(NULL), &m, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.v[i].msg);
    assert_int_equal(rc, 0);
    rc_errs_cleanup(&errs);
    unlink(path);
    rmdir(dir);
    return m;
}

static const char *MANIFEST = "apiVersion: albd/v1\n"
                              "kind: ServerGroup\n"
                              "metadata: {name: web}\n"
                              "spec:\n"
                              "  servers:\n"
                              "    - {address: api.internal, port: 8080, weight: 30}\n"
                              "    - {address: 10.0.0.1, port: 8080, weight: 50}\n"
                              "    - {address: down.invalid, port: 8080}\n"
                              "---\n"
                              "apiVersion: albd/v1\n"
                              "kind: ServerGroup\n"
                              "metadata: {name: tls}\n"
                              "spec:\n"
                              "  protocol: HTTPS\n"
                              "  servers:\n"
                              "    - {address: 10.0.0.1, port: 8080}\n";

static struct px_group *group(struct px_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (strcmp(s->groups[i].model->meta.name, name) == 0)
            return &s->groups[i];
    fail_msg("no group %s", name);
    return NULL;
}

static void snapshot_expands_names(void **state)
{
    (void)state;
    char dir[64];
    struct rc_model *m = load(MANIFEST, dir);
    struct px_registry *reg = px_registry_new(2);
    assert_non_null(reg);
    struct px_dns *d = px_dns_new(NULL, NULL, NULL);
    assert_non_null(d);
    reg->dns = d;
    px_dns_want(d, m); /* without a loop: known names, no lookups */
    struct sockaddr_storage a[2] = {v4("10.0.0.2"), v4("10.0.0.1")};
    assert_int_equal(px_dns_set(d, "api.internal", a, 2), 0);

    struct px_snapshot *s = NULL;
    char err[256] = "";
    const char *failed = NULL;
    assert_int_equal(px_snapshot_build(m, NULL, NULL, reg, 1, NULL, &s, err, sizeof err, &failed),
                     0);
    struct px_group *g = group(s, "web");
    /* api.internal -> 10.0.0.1 and 10.0.0.2 (weight 30 each); the literal
     * 10.0.0.1 is the same server as api.internal's 10.0.0.1 and is
     * dropped; down.invalid has no address yet. */
    assert_int_equal(g->n_servers, 2);
    assert_string_equal(g->servers[0].key, "10.0.0.1:8080");
    assert_string_equal(g->servers[1].key, "10.0.0.2:8080");
    assert_int_equal(g->servers[0].weight, 30);
    assert_int_equal(g->servers[1].weight, 30);
    assert_true(g->servers[0].by_name);
    assert_string_equal(g->servers[0].model->address, "api.internal");
    assert_null(g->servers[0].tls_ctx);

    /* The HTTPS group's 10.0.0.1:8080 is another backend entry. */
    struct px_group *t = group(s, "tls");
    assert_int_equal(t->n_servers, 1);
    assert_non_null(t->tls_ctx);
    assert_ptr_equal(t->servers[0].tls_ctx, t->tls_ctx);
    assert_string_equal(t->servers[0].tls_name, "10.0.0.1");
    assert_string_equal(t->servers[0].key, "10.0.0.1:8080");
    assert_ptr_not_equal(t->servers[0].backend, g->servers[0].backend);
    assert_int_equal(strlen(t->servers[0].backend->id.tls), 16);

    /* A new resolution: a new snapshot, entries of kept addresses kept. */
    struct px_backend *kept = g->servers[0].backend;
    struct sockaddr_storage b[1] = {v4("10.0.0.1")};
    assert_int_equal(px_dns_set(d, "api.internal", b, 1), 0);
    struct px_snapshot *s2 = NULL;
    assert_int_equal(px_snapshot_build(m, s, NULL, reg, 2, NULL, &s2, err, sizeof err, &failed), 0);
    assert_int_equal(group(s2, "web")->n_servers, 1); /* 10.0.0.1 once: by name and literal */
    assert_ptr_equal(group(s2, "web")->servers[0].backend, kept);
    assert_ptr_equal(group(s2, "tls")->tls_ctx, t->tls_ctx); /* reused: same TLS inputs */
    px_snapshot_unref(s);
    px_snapshot_unref(s2);

    /* Names the model does not use are forgotten. */
    struct rc_model *m2 = load("apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web}\n"
                               "spec:\n  servers:\n    - {address: 10.0.0.9, port: 80}\n",
                               dir);
    px_dns_prune(d, m2);
    struct px_dns_state st;
    px_dns_state(d, "api.internal", &st);
    assert_false(st.known);
    rc_model_unref(m2);
    rc_model_unref(m);
    assert_int_equal(px_registry_free(reg), 0);
    px_dns_free(d);
}

static int changes;
static void on_changed(void *arg)
{
    (void)arg;
    changes++;
}

/* A real lookup on a loop: localhost resolves (127.0.0.1 at least), the
 * change is announced once; closing leaves nothing behind. */
static void resolves_localhost_on_a_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char dir[64];
    struct rc_model *m = load("apiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: web}\n"
                              "spec:\n  servers:\n    - {address: localhost, port: 80}\n",
                              dir);
    struct px_dns *d = px_dns_new(&loop, on_changed, NULL);
    changes = 0;
    px_dns_want(d, m);
    for (int i = 0; i < 500 && changes == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(changes, 1);
    struct px_dns_state st;
    px_dns_state(d, "localhost", &st);
    assert_true(st.resolved);
    bool has_v4 = false;
    for (size_t i = 0; i < st.n_addrs; i++)
        has_v4 |= strcmp(st.addrs[i], "127.0.0.1") == 0;
    assert_true(has_v4);
    px_dns_close(d);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns: no timer or lookup left */
    px_dns_free(d);
    assert_int_equal(uv_loop_close(&loop), 0);
    rc_model_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_sorted_and_deduplicated),
        cmocka_unit_test(snapshot_expands_names),
        cmocka_unit_test(resolves_localhost_on_a_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
