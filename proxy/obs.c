/* Labelled metrics (see obs.h). */
#include "proxy/obs.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

static const int limits[PX_OBS_KINDS] = {PX_OBS_LISTENERS, PX_OBS_GROUPS, PX_OBS_SERVERS};
static pthread_mutex_t names_mu = PTHREAD_MUTEX_INITIALIZER;
static char **names[PX_OBS_KINDS]; /* names[k][slot], heap */
static int n_names[PX_OBS_KINDS];
/* names[k] by hash: open addressing over index_cap(k) slots, each 1 + a
 * slot of names[k] (0: empty); heap, under names_mu. A snapshot of 10,000
 * servers finds each one's slot without comparing it with 1,024 names. */
static int *name_index[PX_OBS_KINDS];
static struct px_obs_worker **blocks;
static int n_blocks;

int px_obs_init(int n_workers)
{
    blocks = calloc((size_t)n_workers, sizeof *blocks);
    if (!blocks)
        return -ENOMEM;
    for (int i = 0; i < n_workers; i++)
        if (!(blocks[i] = calloc(1, sizeof **blocks))) {
            n_blocks = i;
            px_obs_cleanup();
            return -ENOMEM;
        }
    n_blocks = n_workers;
    return 0;
}

void px_obs_cleanup(void)
{
    for (int i = 0; i < n_blocks; i++)
        free(blocks[i]);
    free(blocks);
    blocks = NULL;
    n_blocks = 0;
    pthread_mutex_lock(&names_mu);
    for (int k = 0; k < PX_OBS_KINDS; k++) {
        for (int i = 0; i < n_names[k]; i++)
            free(names[k][i]);
        free(names[k]);
        names[k] = NULL;
        n_names[k] = 0;
        free(name_index[k]);
        name_index[k] = NULL;
    }
    pthread_mutex_unlock(&names_mu);
}

/* A power of two at least twice the kind's limit: probes stay short. */
static size_t index_cap(enum px_obs_kind kind)
{
    size_t cap = 1;
    while (cap < 2 * (size_t)limits[kind])
        cap <<= 1;
    return cap;
}

int px_obs_slot(enum px_obs_kind kind, const char *name)
{
    int other = limits[kind] - 1;
    size_t cap = index_cap(kind);
    size_t h = (size_t)cm_hash_str(name) & (cap - 1);
    pthread_mutex_lock(&names_mu);
    int slot = other;
    if (!names[kind] && !(names[kind] = calloc((size_t)limits[kind], sizeof(char *))))
        goto out;
    if (!name_index[kind] && !(name_index[kind] = calloc(cap, sizeof(int))))
        goto out;
    for (int *ix = name_index[kind]; ix[h]; h = (h + 1) & (cap - 1))
        if (strcmp(names[kind][ix[h] - 1], name) == 0) {
            slot = ix[h] - 1;
            goto out;
        }
    if (n_names[kind] < other) {
        char *copy = strdup(name);
        if (!copy)
            goto out;
        slot = n_names[kind]++;
        names[kind][slot] = copy;
        name_index[kind][h] = slot + 1;
    }
out:
    pthread_mutex_unlock(&names_mu);
    return slot;
}

const char *px_obs_name(enum px_obs_kind kind, int slot)
{
    if (slot == limits[kind] - 1)
        return "_other";
    pthread_mutex_lock(&names_mu);
    const char *n = slot >= 0 && slot < n_names[kind] ? names[kind][slot] : NULL;
    pthread_mutex_unlock(&names_mu);
    return n; /* names are never freed before px_obs_cleanup */
}

int px_obs_used(enum px_obs_kind kind)
{
    pthread_mutex_lock(&names_mu);
    int n = n_names[kind];
    pthread_mutex_unlock(&names_mu);
    return n;
}

struct px_obs_worker *px_obs_worker(int wid)
{
    return wid >= 0 && wid < n_blocks ? blocks[wid] : NULL;
}

int px_obs_n_workers(void)
{
    return n_blocks;
}

void px_obs_observe(struct px_obs_hist *h, uint64_t ns)
{
    static const double bounds[PX_OBS_BUCKETS] = PX_OBS_BUCKET_BOUNDS;
    double s = (double)ns / 1e9;
    for (int i = 0; i < PX_OBS_BUCKETS; i++)
        if (s <= bounds[i]) {
            px_obs_add(&h->bucket[i], 1);
            break;
        }
    px_obs_add(&h->count, 1);
    px_obs_add(&h->sum_ns, ns);
}

static const char *const reason_names[PX_OBS_REASONS] = {
    "timeout", "no_healthy_server", "upstream_error",  "client_timeout",
    "limit",   "internal_error",    "refused_request", "client_closed"};

int px_obs_reason_index(const char *reason)
{
    if (!reason)
        return PX_OBS_REASONS;
    for (int i = 0; i < PX_OBS_REASONS; i++)
        if (strcmp(reason, reason_names[i]) == 0)
            return i;
    return PX_OBS_REASONS;
}

const char *px_obs_reason_name(int r)
{
    return r >= 0 && r < PX_OBS_REASONS ? reason_names[r] : "unknown";
}

const char *px_obs_tls_version_name(int v)
{
    static const char *const n[PX_OBS_TLS_VERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    return v >= 0 && v < PX_OBS_TLS_VERSIONS ? n[v] : "unknown";
}

const char *px_obs_tls_fail_name(int f)
{
    static const char *const n[PX_OBS_TLS_FAILS] = {"protocol_version",
                                                    "no_shared_cipher",
                                                    "http_request",
                                                    "client_certificate",
                                                    "alert",
                                                    "eof",
                                                    "timeout",
                                                    "other"};
    return f >= 0 && f < PX_OBS_TLS_FAILS ? n[f] : "other";
}

const char *px_obs_connect_fail_name(int f)
{
    static const char *const n[PX_OBS_CONNECT_FAILS] = {"refused", "timeout", "other"};
    return f >= 0 && f < PX_OBS_CONNECT_FAILS ? n[f] : "other";
}

void px_obs_conn(int wid, int ls, int delta)
{
    struct px_obs_worker *b = px_obs_worker(wid);
    if (!b || ls < 0 || ls >= PX_OBS_LISTENERS)
        return;
    px_obs_add(&b->lis[ls].conns_active, (uint64_t)(int64_t)delta);
}

void px_obs_tls_ok(int wid, int ls, int ssl_version)
{
    struct px_obs_worker *b = px_obs_worker(wid);
    if (!b || ls < 0 || ls >= PX_OBS_LISTENERS)
        return;
    int v = ssl_version == TLS1_3_VERSION   ? PX_OBS_TLS13
            : ssl_version == TLS1_2_VERSION ? PX_OBS_TLS12
            : ssl_version == TLS1_1_VERSION ? PX_OBS_TLS11
                                            : PX_OBS_TLS10;
    px_obs_add(&b->lis[ls].tls_ok[v], 1);
}

void px_obs_tls_fail(int wid, int ls, int fail, int ssl_version)
{
    struct px_obs_worker *b = px_obs_worker(wid);
    if (!b || ls < 0 || ls >= PX_OBS_LISTENERS || fail < 0 || fail >= PX_OBS_TLS_FAILS)
        return;
    int v = ssl_version == TLS1_3_VERSION   ? PX_OBS_TLS13
            : ssl_version == TLS1_2_VERSION ? PX_OBS_TLS12
            : ssl_version == TLS1_1_VERSION ? PX_OBS_TLS11
            : ssl_version == TLS1_VERSION   ? PX_OBS_TLS10
                                            : PX_OBS_TLS_VERSIONS;
    px_obs_add(&b->lis[ls].tls_fail[fail][v], 1);
}
