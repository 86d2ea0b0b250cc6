/* The certificate folders outside the manifest folder, kept incrementally
 * (see certdirs.h). Two chained hash tables: certificates by name, each
 * pointing at up to four interned folders (its two files' and their link
 * targets'); folders by path, with the number of references to them. One
 * small entry per certificate, no path copied: 10,000 certificates cost
 * about 1 MiB. */
#include "agent/certdirs.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hash.h"
#include "reconciler/changes.h"
#include "reconciler/filecache.h"
#include "reconciler/model.h"

struct cd_dir {
    char *path;
    uint64_t h;
    size_t refs; /* certificates' references to it */
    struct cd_dir *next;
};

struct cd_cert {
    char *name;
    uint64_t h;
    uint64_t stamp; /* of its digest and paths when looked at (cert_stamp) */
    /* The folders of its certificate and key files when outside root, and
     * of their link targets out there; NULL for none. */
    struct cd_dir *dir[4];
    unsigned gen; /* the update that last saw it */
    struct cd_cert *next;
};

struct ag_certdirs {
    struct cd_cert **certs;
    size_t n_cb, n_certs;
    struct cd_dir **dirs;
    size_t n_db, n_dirs;
    char *root;
    unsigned gen;
    bool changed; /* a folder came or went during this update */
    bool known;   /* list reflects the tables */
    char **list;  /* sorted: the folders' paths (borrowed from the table) */
    size_t n_list;
    size_t looked;
};

struct ag_certdirs *ag_certdirs_new(void)
{
    return calloc(1, sizeof(struct ag_certdirs));
}

/* Doubles a chained table of power-of-two size when it is full. */
#define CD_GROW(T, tab, nb, n)                                                                     \
    do {                                                                                           \
        if ((n) + 1 > (nb)) {                                                                      \
            size_t nn = (nb) ? (nb)*2 : 64;                                                        \
            T **nt = calloc(nn, sizeof *nt);                                                       \
            if (nt) {                                                                              \
                for (size_t i_ = 0; i_ < (nb); i_++)                                               \
                    for (T *e_ = (tab)[i_], *x_; e_; e_ = x_) {                                    \
                        x_ = e_->next;                                                             \
                        e_->next = nt[e_->h & (nn - 1)];                                           \
                        nt[e_->h & (nn - 1)] = e_;                                                 \
                    }                                                                              \
                free(tab);                                                                         \
                (tab) = nt;                                                                        \
                (nb) = nn;                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The folder path (of n bytes), interned with one more reference; NULL
 * when out of memory. */
static struct cd_dir *dir_ref(struct ag_certdirs *cd, const char *path, size_t n)
{
    uint64_t h = cm_hash(path, n);
    if (cd->n_db)
        for (struct cd_dir *d = cd->dirs[h & (cd->n_db - 1)]; d; d = d->next)
            if (d->h == h && strncmp(d->path, path, n) == 0 && d->path[n] == '\0') {
                d->refs++;
                return d;
            }
    CD_GROW(struct cd_dir, cd->dirs, cd->n_db, cd->n_dirs);
    if (cd->n_db == 0)
        return NULL;
    struct cd_dir *d = calloc(1, sizeof *d);
    if (d == NULL || (d->path = strndup(path, n)) == NULL) {
        free(d);
        return NULL;
    }
    d->h = h;
    d->refs = 1;
    d->next = cd->dirs[h & (cd->n_db - 1)];
    cd->dirs[h & (cd->n_db - 1)] = d;
    cd->n_dirs++;
    cd->changed = true;
    return d;
}

static void dir_unref(struct ag_certdirs *cd, struct cd_dir *d)
{
    if (d == NULL || --d->refs > 0)
        return;
    for (struct cd_dir **pp = &cd->dirs[d->h & (cd->n_db - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    cd->n_dirs--;
    cd->changed = true;
    free(d->path);
    free(d);
}

/* The folder of path when path is outside root; NULL when inside, or
 * when path has no folder part. */
static struct cd_dir *dir_of(struct ag_certdirs *cd, const char *path, bool *oom)
{
    if (cd->root && rc_rel_under(cd->root, path))
        return NULL;
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return NULL;
    struct cd_dir *d = dir_ref(cd, path, (size_t)(slash - path));
    if (d == NULL)
        *oom = true;
    return d;
}

/* Looks at c's files: their folders, and their link targets' folders. */
static void look(struct ag_certdirs *cd, struct cd_cert *e, const struct rc_certificate *c,
                 bool *oom)
{
    for (int i = 0; i < 4; i++) {
        dir_unref(cd, e->dir[i]);
        e->dir[i] = NULL;
    }
    const char *paths[2] = {c->cert_path, c->key_path};
    for (int k = 0; k < 2; k++) {
        if (paths[k] == NULL)
            continue;
        cd->looked++;
        e->dir[2 * k] = dir_of(cd, paths[k], oom);
        struct stat st;
        char real[PATH_MAX];
        if (lstat(paths[k], &st) == 0 && S_ISLNK(st.st_mode) && realpath(paths[k], real))
            e->dir[2 * k + 1] = dir_of(cd, real, oom);
    }
}

static void cert_drop(struct ag_certdirs *cd, struct cd_cert *e)
{
    for (int i = 0; i < 4; i++)
        dir_unref(cd, e->dir[i]);
    free(e->name);
    free(e);
    cd->n_certs--;
}

static uint64_t path_hash(const char *p, uint64_t known)
{
    return p == NULL ? 0 : known ? known : cm_hash_str(p);
}

/* What decides whether c is looked at again: its digest (a renewal, a
 * link re-pointed to new bytes, a new spec) and its paths. */
static uint64_t cert_stamp(const struct rc_certificate *c)
{
    uint64_t h = cm_hash_str(c->meta.digest);
    h = cm_hash_mix(h ^ path_hash(c->cert_path, c->cert_path_hash));
    return cm_hash_mix(h ^ (path_hash(c->key_path, c->key_path_hash) * 0x9e3779b97f4a7c15ull));
}

/* Sees certificate c in this update. */
static void see(struct ag_certdirs *cd, const struct rc_certificate *c, bool *oom)
{
    uint64_t h = cm_hash_str(c->meta.name), stamp = cert_stamp(c);
    struct cd_cert *e = NULL;
    if (cd->n_cb)
        for (e = cd->certs[h & (cd->n_cb - 1)]; e; e = e->next)
            if (e->h == h && strcmp(e->name, c->meta.name) == 0)
                break;
    if (e) {
        if (e->gen != cd->gen && e->stamp != stamp) {
            e->stamp = stamp;
            look(cd, e, c, oom);
        }
        e->gen = cd->gen;
        return;
    }
    CD_GROW(struct cd_cert, cd->certs, cd->n_cb, cd->n_certs);
    if (cd->n_cb == 0 || (e = calloc(1, sizeof *e)) == NULL ||
        (e->name = strdup(c->meta.name)) == NULL) {
        free(e);
        *oom = true;
        return;
    }
    e->h = h;
    e->stamp = stamp;
    e->gen = cd->gen;
    e->next = cd->certs[h & (cd->n_cb - 1)];
    cd->certs[h & (cd->n_cb - 1)] = e;
    cd->n_certs++;
    look(cd, e, c, oom);
}

/* Drops the certificates this update did not see (all when every is
 * set). */
static void sweep(struct ag_certdirs *cd, bool every)
{
    for (size_t i = 0; i < cd->n_cb; i++)
        for (struct cd_cert **pp = &cd->certs[i]; *pp;) {
            struct cd_cert *e = *pp;
            if (every || e->gen != cd->gen) {
                *pp = e->next;
                cert_drop(cd, e);
            } else {
                pp = &e->next;
            }
        }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool same_root(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Forgets everything: the next update looks at every file again. */
static void forget(struct ag_certdirs *cd)
{
    sweep(cd, true);
    free(cd->list);
    cd->list = NULL;
    cd->n_list = 0;
    cd->known = false;
}

bool ag_certdirs_update(struct ag_certdirs *cd, const struct rc_model *m, const char *root)
{
    cd->looked = 0;
    cd->changed = !cd->known;
    if (!same_root(cd->root, root)) {
        sweep(cd, true); /* inside and outside change meaning: look again */
        free(cd->root);
        cd->root = root ? strdup(root) : NULL;
        cd->changed = true;
        if (root && !cd->root) {
            forget(cd);
            return false;
        }
    }
    cd->gen++;
    bool oom = false;
    for (size_t i = 0; m && i < m->n_certificates; i++) {
        const struct rc_certificate *c = m->certificates[i];
        if (c->source == RC_CERT_SOURCE_FILES && c->meta.name)
            see(cd, c, &oom);
    }
    sweep(cd, false);
    if (oom) {
        forget(cd); /* a file without its folder: start over next time */
        return false;
    }
    if (!cd->changed)
        return false;
    free(cd->list);
    cd->list = NULL;
    cd->n_list = 0;
    if (cd->n_dirs && (cd->list = malloc(cd->n_dirs * sizeof *cd->list)) == NULL) {
        forget(cd);
        return false;
    }
    for (size_t i = 0; i < cd->n_db; i++)
        for (struct cd_dir *d = cd->dirs[i]; d; d = d->next)
            cd->list[cd->n_list++] = d->path;
    if (cd->n_list > 1)
        qsort(cd->list, cd->n_list, sizeof *cd->list, str_cmp);
    cd->known = true;
    return true;
}

const char *const *ag_certdirs_list(const struct ag_certdirs *cd, size_t *n)
{
    *n = cd->n_list;
    return (const char *const *)cd->list;
}

size_t ag_certdirs_looked(const struct ag_certdirs *cd)
{
    return cd->looked;
}

void ag_certdirs_free(struct ag_certdirs *cd)
{
    if (cd == NULL)
        return;
    forget(cd);
    free(cd->certs);
    free(cd->dirs);
    free(cd->root);
    free(cd);
}

void ag_certdirs_check_fresh(const struct rc_kept_files *kept, char *const *dirs, bool *ok,
                             size_t n)
{
    for (size_t i = 0; i < n; i++)
        ok[i] = true;
    for (size_t i = 0; kept && i < kept->n; i++) {
        const struct rc_kept_file *k = kept->v[i];
        const char *slash = strrchr(k->path, '/');
        if (!k->settled || !k->watchable || slash == NULL)
            continue; /* never taken without a stat anyway */
        size_t dl = (size_t)(slash - k->path), lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strncmp(dirs[mid], k->path, dl);
            if (c == 0 && dirs[mid][dl] == '\0') {
                struct stat st;
                struct rc_fid id;
                if (ok[mid]) {
                    if (stat(k->path, &st) != 0) {
                        ok[mid] = false;
                    } else {
                        rc_fid_from_stat(&id, &st);
                        ok[mid] = rc_fid_equal(&id, &k->id);
                    }
                }
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid; /* c > 0, or dirs[mid] longer: it sorts after */
        }
    }
}
