/* Reconciler cost on a large configuration: N certificates (signed by a
 * test CA made here, one leaf key shared), N server groups and four HTTPS
 * listeners carrying the certificates as extension certificates. Reports
 * the cold load, the reload with the running model after one server weight
 * changed (median and worst of R runs), the same on a small configuration,
 * and the peak RSS.
 *
 *   reconcile_large [-n N] [-r RUNS] [-s] [DIR]     (default 10000, 10, /tmp/albd-bench)
 *
 * Each reload is told, as the agent's watcher would tell it, that only the
 * rewritten file changed (reconciler/changes.h); -s instead leaves that
 * unknown, so that every certificate and manifest file is stat'ed.
 *
 * The generated tree is kept in DIR and reused when it is already there. */
#include <errno.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy/snapshot.h"
#include "proxy/tls_keys.h"
#include "reconciler/load.h"
#include "reconciler/rc.h"

#define N_LISTENERS 4

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "reconcile_large: %s: %s\n", what, strerror(errno));
    exit(1);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (k == NULL)
        die("EC key generation");
    return k;
}

static X509 *make_cert(EVP_PKEY *pub, EVP_PKEY *signer, X509 *issuer, const char *cn, long serial,
                       bool ca)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
    X509_set_pubkey(x, pub);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    char san[300];
    snprintf(san, sizeof(san), "DNS:%s", cn);
    X509_EXTENSION *ext[2] = {
        X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE"),
        ca ? NULL : X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san),
    };
    for (int i = 0; i < 2; i++)
        if (ext[i]) {
            X509_add_ext(x, ext[i], -1);
            X509_EXTENSION_free(ext[i]);
        }
    if (!X509_sign(x, signer, EVP_sha256()))
        die("X509_sign");
    return x;
}

static FILE *open_w(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die(path);
    return f;
}

static void write_groups(const char *dir, int n, int changed, int weight)
{
    FILE *f = open_w(dir, "groups.yaml");
    for (int i = 0; i < n; i++)
        fprintf(f,
                "---\napiVersion: albd/v1\nkind: ServerGroup\nmetadata: {name: g%05d}\n"
                "spec:\n  servers:\n    - {address: 10.%d.%d.%d, port: 8080, weight: %d}\n",
                i, (i >> 16) & 255, (i >> 8) & 255, i & 255, i == changed ? weight : 100);
    fclose(f);
}

static void generate(const char *dir, int n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/certs", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        die(dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
    EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key();
    X509 *ca = make_cert(ca_key, ca_key, NULL, "albd bench CA", 1, true);
    FILE *f = open_w(dir, "certs/leaf.key");
    PEM_write_PrivateKey(f, leaf_key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    FILE *m = open_w(dir, "certs.yaml");
    for (int i = 0; i < n; i++) {
        char cn[64], name[64];
        snprintf(cn, sizeof(cn), "h%05d.bench.test", i);
        snprintf(name, sizeof(name), "certs/c%05d.pem", i);
        X509 *x = make_cert(leaf_key, ca_key, ca, cn, 1000 + i, false);
        f = open_w(dir, name);
        PEM_write_X509(f, x);
        PEM_write_X509(f, ca);
        fclose(f);
        X509_free(x);
        fprintf(m,
                "---\napiVersion: albd/v1\nkind: Certificate\nmetadata: {name: c%05d}\n"
                "spec:\n  source:\n    files: {certificate: %s, privateKey: certs/leaf.key}\n",
                i, name);
    }
    fclose(m);
    write_groups(dir, n, -1, 100);
    FILE *l = open_w(dir, "listeners.yaml");
    for (int k = 0; k < N_LISTENERS; k++) {
        fprintf(l,
                "---\napiVersion: albd/v1\nkind: Listener\nmetadata: {name: l%d}\n"
                "spec:\n  protocol: HTTPS\n  port: %d\n  tls:\n    certificate: c%05d\n"
                "    extensionCertificates:\n",
                k, 8443 + k, k);
        for (int i = k; i < n; i += N_LISTENERS)
            fprintf(l, "      - c%05d\n", i);
        fprintf(l, "  defaultAction: {forward: {serverGroup: g%05d}}\n", k);
    }
    fclose(l);
    f = open_w(dir, ".complete");
    fclose(f);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
}

static struct rc_model *load(const char *dir, const struct rc_model *prev,
                             const struct rc_changes *changes, double *ms, struct rc_status *st)
{
    struct rc_errs errs;
    rc_errs_init(&errs);
    rc_status_cleanup(st);
    struct rc_load_opts o = {.now = time(NULL), .prev = prev, .changes = changes};
    struct rc_model *m = NULL;
    double t0 = now_ms();
    int rc = rc_load_dir_ex(dir, &o, &m, &errs, st);
    *ms = now_ms() - t0;
    if (rc != 0) {
        rc_errs_print(&errs, stderr);
        fprintf(stderr, "reconcile_large: the load of %s failed (%d)\n", dir, rc);
        exit(1);
    }
    rc_errs_cleanup(&errs);
    return m;
}

static void snapshot(struct rc_model *m, const struct px_snapshot *prev, struct px_tls_keys *keys,
                     struct px_snapshot **out, uint64_t gen)
{
    char err[256] = "";
    const char *failed = NULL;
    if (px_snapshot_build(m, prev, NULL, 2, gen, keys, out, err, sizeof(err), &failed) != 0) {
        fprintf(stderr, "reconcile_large: snapshot: %s\n", err);
        exit(1);
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool stat_all; /* -s */

static void measure(const char *label, const char *dir, int n, int runs)
{
    char marker[1024];
    snprintf(marker, sizeof(marker), "%s/.complete", dir);
    if (access(marker, F_OK) != 0) {
        double t0 = now_ms();
        generate(dir, n);
        printf("%s: generated %d certificates in %.0f ms\n", label, n, now_ms() - t0);
    }
    write_groups(dir, n, -1, 100);
    struct rc_status st;
    rc_status_init(&st);
    double cold;
    struct rc_model *m = load(dir, NULL, NULL, &cold, &st);
    printf("%s: cold load %.1f ms (%zu certificates parsed, %zu groups, %zu listeners)\n", label,
           cold, st.certs_parsed, m->n_groups, m->n_listeners);
    /* The snapshot the proxy would publish (proxy/snapshot.c), built from
     * each model with the previous snapshot, as px_runtime_apply does. */
    struct px_tls_keys *keys = px_tls_keys_new();
    if (keys == NULL)
        die("px_tls_keys_new");
    struct px_snapshot *snap = NULL;
    double t0 = now_ms();
    snapshot(m, NULL, keys, &snap, 1);
    printf("%s: cold snapshot %.1f ms\n", label, now_ms() - t0);
    double *t = calloc((size_t)runs, sizeof(*t)), *ts = calloc((size_t)runs, sizeof(*ts));
    size_t parsed = 0;
    /* What the agent's watcher reports after the write (agent/watch.c):
     * the one file. -s: unknown, every file is stat'ed. */
    const char *changed[] = {"groups.yaml"};
    struct rc_changes ch = {changed, 1, false};
    for (int r = 0; r < runs; r++) {
        write_groups(dir, n, n / 2, r % 2 ? 50 : 60);
        struct rc_model *next = load(dir, m, stat_all ? NULL : &ch, &t[r], &st);
        parsed += st.certs_parsed;
        rc_model_unref(m);
        m = next;
        struct px_snapshot *ns = NULL;
        t0 = now_ms();
        snapshot(m, snap, keys, &ns, (uint64_t)r + 2);
        ts[r] = now_ms() - t0;
        t0 = now_ms();
        px_snapshot_unref(snap);
        ts[r] += now_ms() - t0; /* freeing the old one is part of the swap's cost */
        snap = ns;
    }
    px_snapshot_unref(snap);
    px_tls_keys_unref(keys);
    qsort(ts, (size_t)runs, sizeof(*ts), dbl_cmp);
    printf("%s: snapshot build with the running snapshot (and freeing it): median %.1f ms, worst "
           "%.1f ms\n",
           label, ts[runs / 2], ts[runs - 1]);
    free(ts);
    qsort(t, (size_t)runs, sizeof(*t), dbl_cmp);
    printf("%s: reload with the running model, one weight changed: median %.1f ms, worst %.1f ms "
           "over %d runs (%zu certificates parsed, %zu reused; %zu certificate/key files read, %zu "
           "reused by identity per reload, %zu of them without a stat)\n",
           label, t[runs / 2], t[runs - 1], runs, parsed, st.certs_reused, st.files_read,
           st.files_reused, st.files_unstatted);
    free(t);
    rc_status_cleanup(&st);
    rc_model_unref(m);
}

int main(int argc, char **argv)
{
    int n = 10000, runs = 10, opt;
    while ((opt = getopt(argc, argv, "n:r:s")) != -1) {
        if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 's')
            stat_all = true;
        else if (opt == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: reconcile_large [-n N] [-r RUNS] [-s] [DIR]\n");
            return 2;
        }
    }
    if (n < N_LISTENERS || runs < 1) {
        fprintf(stderr, "reconcile_large: -n must be at least %d, -r at least 1\n", N_LISTENERS);
        return 2;
    }
    const char *base = optind < argc ? argv[optind] : "/tmp/albd-bench";
    if (mkdir(base, 0755) != 0 && errno != EEXIST)
        die(base);
    char small[1024], large[1024];
    snprintf(small, sizeof(small), "%s/small", base);
    snprintf(large, sizeof(large), "%s/large-%d", base, n);
    measure("small (10)", small, 10, runs);
    measure("large", large, n, runs);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
