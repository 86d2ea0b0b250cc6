/* The load-scoped table of certificate/key files: each path is stat'ed and
 * read at most once per load, and not read at all when the previous model
 * holds its bytes under the same settled identity (filecache.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "reconciler/arena.h"
#include "reconciler/filecache.h"
#include "reconciler/model-t.h"
#include "reconciler/readall.h"

#define MAX_PEM_SIZE (1u << 20)

/* A file this load opened (or failed to): the files prev holds and this
 * load found unchanged need no entry, only their mark in prev_used. */
struct entry {
    char *path;    /* malloc'd; NULL: free slot */
    uint64_t hash; /* of path */
    int err;       /* -errno of the stat or read; 0 when bytes are valid */
    struct rc_fid id;
    bool settled;
    bool watchable;
    char *bytes; /* NUL-terminated, malloc'd */
    size_t len;
    bool kept; /* rc_filecache_keep has kept it */
    struct copy *copy;
};

/* A file's path and bytes copied into the arena rc_filecache_read was
 * last given, shared by every certificate that names the file. */
struct copy {
    unsigned gen; /* == rc_filecache.gen: valid */
    const char *path, *bytes;
};

struct rc_filecache {
    const struct rc_kept_files *prev;
    /* Per entry of prev: this load found it unchanged (its bytes are the
     * file's), and rc_filecache_keep has kept it. */
    bool *prev_used;
    bool *prev_kept;
    struct copy *prev_copy; /* per entry of prev, allocated on first use */
    struct rc_arena *arena; /* what the copies are in */
    unsigned gen;
    struct timespec start;
    const char *root;                 /* real path of the manifest folder, or NULL */
    size_t root_n;                    /* rc_root_len(root) */
    const struct rc_changes *changes; /* NULL: every file is stat'ed */
    /* What changes says of the folder of the last file looked up (a
     * folder of certificates is looked up file after file). */
    struct rc_cover_memo memo_rel, memo_abs;
    struct entry *tab; /* open addressing, cap a power of two */
    size_t cap, n;
    size_t n_read, n_reused;
    size_t n_unstatted; /* reused without a stat (changes.h) */
    /* rc_filecache_one_shot(): no later load will ask whether a file is
     * watchable, so that is not worked out (a realpath and two statx per
     * file: 0.2 s of `albd validate` at 10,000 certificates). */
    bool one_shot;
    /* The folder of the latest stat_path: certificates usually sit
     * together, and a stat relative to an open folder skips walking the
     * same leading path components again for each of thousands of files. */
    char *dir;
    size_t dir_len;
    int dir_fd; /* -1: none */
};

void rc_fid_from_stat(struct rc_fid *id, const struct stat *st)
{
    memset(id, 0, sizeof(*id));
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtim = st->st_mtim;
    id->ctim = st->st_ctim;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

bool rc_fid_equal(const struct rc_fid *a, const struct rc_fid *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           ts_eq(&a->mtim, &b->mtim) && ts_eq(&a->ctim, &b->ctim);
}

static long long ns_of(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

bool rc_fid_settled(const struct rc_fid *id, const struct timespec *start)
{
    long long limit = ns_of(start) - RC_FID_SETTLE_NS;
    return ns_of(&id->mtim) < limit && ns_of(&id->ctim) < limit;
}

struct rc_filecache *rc_filecache_new(const struct rc_kept_files *prev,
                                      const struct timespec *start, const char *root,
                                      const struct rc_changes *changes)
{
    struct rc_filecache *fc = calloc(1, sizeof(*fc));
    if (fc == NULL)
        return NULL;
    fc->prev = prev;
    fc->start = *start;
    fc->root = root;
    fc->root_n = root ? rc_root_len(root) : 0;
    fc->changes = root ? changes : NULL;
    fc->gen = 1; /* copies start at 0: not valid */
    fc->dir_fd = -1;
    if (prev && prev->n) {
        fc->prev_used = calloc(prev->n, sizeof(*fc->prev_used));
        fc->prev_kept = calloc(prev->n, sizeof(*fc->prev_kept));
        if (fc->prev_used == NULL || fc->prev_kept == NULL) {
            rc_filecache_free(fc);
            return NULL;
        }
    }
    return fc;
}

void rc_filecache_one_shot(struct rc_filecache *fc)
{
    fc->one_shot = true;
}

static void entry_cleanup(struct entry *e)
{
    if (e->bytes) {
        OPENSSL_cleanse(e->bytes, e->len); /* may be a private key */
        free(e->bytes);
    }
    free(e->path);
    free(e->copy);
}

void rc_filecache_free(struct rc_filecache *fc)
{
    if (fc == NULL)
        return;
    for (size_t i = 0; i < fc->cap; i++)
        if (fc->tab[i].path)
            entry_cleanup(&fc->tab[i]);
    free(fc->tab);
    free(fc->prev_used);
    free(fc->prev_kept);
    free(fc->prev_copy);
    if (fc->dir_fd >= 0)
        close(fc->dir_fd);
    free(fc->dir);
    rc_cover_memo_free(&fc->memo_rel);
    rc_cover_memo_free(&fc->memo_abs);
    free(fc);
}

/* stat(path) for an absolute path, relative to the cached folder fd when
 * path is in that folder. The folder fd lives for one load only, like the
 * rest of the cache: a folder replaced during a load is seen by the next. */
static int stat_path(struct rc_filecache *fc, const char *path, struct stat *st)
{
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' || slash == NULL || slash == path || slash[1] == '\0')
        return stat(path, st);
    size_t dl = (size_t)(slash - path);
    if (fc->dir == NULL || fc->dir_len != dl || memcmp(fc->dir, path, dl) != 0) {
        char *dir = strndup(path, dl);
        int fd = dir ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
        if (fd < 0) {
            free(dir);
            return stat(path, st);
        }
        if (fc->dir_fd >= 0)
            close(fc->dir_fd);
        free(fc->dir);
        fc->dir = dir;
        fc->dir_len = dl;
        fc->dir_fd = fd;
    }
    return fstatat(fc->dir_fd, slash + 1, st, 0);
}

static struct entry *slot(struct entry *tab, size_t cap, const char *path, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (tab[i].path &&
           (tab[i].hash != h || (tab[i].path != path && strcmp(tab[i].path, path) != 0)))
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static int grow(struct rc_filecache *fc)
{
    size_t cap = fc->cap ? fc->cap * 2 : 64;
    struct entry *tab = calloc(cap, sizeof(*tab));
    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < fc->cap; i++)
        if (fc->tab[i].path)
            *slot(tab, cap, fc->tab[i].path, fc->tab[i].hash) = fc->tab[i];
    free(fc->tab);
    fc->tab = tab;
    fc->cap = cap;
    return 0;
}

#define NONE SIZE_MAX

/* The position in prev of its entry for path (hash h), or NONE. */
static size_t prev_find(const struct rc_kept_files *k, const char *path, uint64_t h)
{
    if (k == NULL || k->index == NULL)
        return NONE; /* no files (rc_filecache_keep indexes every non-empty set) */
    for (size_t i = (size_t)h & (k->index_cap - 1); k->index[i]; i = (i + 1) & (k->index_cap - 1)) {
        const struct rc_kept_file *f = k->v[k->index[i] - 1];
        if (f->hash == h && (f->path == path || !strcmp(f->path, path)))
            return k->index[i] - 1;
    }
    return NONE;
}

/* Whether the file at path still is what prev recorded as k: without a
 * stat when the watcher would have named it and did not (changes.h). */
static bool still_same(struct rc_filecache *fc, const struct rc_kept_file *k, const char *path)
{
    if (!k->settled)
        return false;
    if (k->watchable && fc->changes) {
        const char *rel = rc_rel_under_len(fc->root, fc->root_n, path);
        if (rel ? !rc_changes_cover_m(fc->changes, rel, &fc->memo_rel)
                : rc_changes_vouch_abs_m(fc->changes, path, &fc->memo_abs)) {
            fc->n_unstatted++;
            return true;
        }
    }
    struct stat st;
    struct rc_fid id;
    if (stat_path(fc, path, &st) != 0)
        return false;
    rc_fid_from_stat(&id, &st);
    return rc_fid_equal(&id, &k->id);
}

/* Reads path into a malloc'd buffer, its identity taken before the first
 * byte is read: a write that lands during the read then changes the
 * identity the next load sees. */
static int read_whole(struct rc_filecache *fc, struct entry *e, const char *path)
{
    struct stat st;
    int fd = rc_open_regular(path, &st); /* never a FIFO or a device */
    if (fd < 0)
        return fd;
    rc_fid_from_stat(&e->id, &st);
    size_t hint = st.st_size > 0 ? (size_t)st.st_size : 0;
    char *buf;
    size_t n;
    int rc = rc_read_all(fd, hint, MAX_PEM_SIZE, true, &buf, &n);
    close(fd);
    if (rc != 0)
        return rc;
    e->bytes = buf;
    e->len = n;
    /* Changed while read (not what fstat saw): never trust this identity. */
    e->settled = (off_t)n == st.st_size && rc_fid_settled(&e->id, &fc->start);
    /* Outside the tree too: a file in a folder the watcher watches alone
     * (rc_changes_vouch_abs), which needs the same plain, single-link,
     * link-free, not-mounted file. */
    const char *rel = fc->root ? rc_rel_under(fc->root, path) : NULL;
    e->watchable =
        !fc->one_shot && e->settled && fc->root && rc_watchable(path, &st, rel ? rel : path, path);
    return 0;
}

/* prev's entry i for path (found already; NONE: none) if this load finds
 * that file unchanged (checked once per load), or NULL. */
static const struct rc_kept_file *prev_checked(struct rc_filecache *fc, const char *path, size_t i)
{
    if (i == NONE)
        return NULL;
    const struct rc_kept_file *k = fc->prev->v[i];
    if (!fc->prev_used[i]) {
        if (!still_same(fc, k, path))
            return NULL;
        fc->prev_used[i] = true;
        fc->n_reused++;
    }
    return k;
}

/* The position in prev of its entry for path if this load finds that file
 * unchanged, or NONE. */
static size_t prev_unchanged(struct rc_filecache *fc, const char *path, uint64_t h)
{
    size_t i = prev_find(fc->prev, path, h);
    return prev_checked(fc, path, i) ? i : NONE;
}

/* The copy of path's bytes in arena a (c caches it for this arena). */
static int copy_into(struct rc_filecache *fc, struct rc_arena *a, struct copy *c, const char *path,
                     const char *bytes, size_t n, const char **apath, const char **out)
{
    if (fc->arena != a) { /* a caller that did not say: never share across arenas */
        fc->arena = a;
        fc->gen++;
    }
    if (c->gen != fc->gen) {
        /* A key file's copy is wiped with the model that holds it. */
        bool key = memmem(bytes, n, "PRIVATE KEY", 11) != NULL;
        const char *p = rc_arena_strdup(a, path);
        const char *b = key ? rc_arena_strndup_secret(a, bytes, n) : rc_arena_strndup(a, bytes, n);
        if (p == NULL || b == NULL)
            return -ENOMEM;
        *c = (struct copy){fc->gen, p, b};
    }
    *apath = c->path;
    *out = c->bytes;
    return 0;
}

void rc_filecache_new_arena(struct rc_filecache *fc)
{
    fc->arena = NULL;
    fc->gen++;
}

int rc_filecache_read(struct rc_filecache *fc, struct rc_arena *a, const char *path, uint64_t h,
                      const char **apath, const char **out, size_t *len)
{
    if ((fc->n + 1) * 2 > fc->cap && grow(fc) != 0)
        return -ENOMEM;
    struct entry *e = slot(fc->tab, fc->cap, path, h);
    if (e->path == NULL) {
        size_t i = prev_unchanged(fc, path, h);
        if (i != NONE) {
            const struct rc_kept_file *k = fc->prev->v[i];
            if (fc->prev_copy == NULL &&
                (fc->prev_copy = calloc(fc->prev->n, sizeof(*fc->prev_copy))) == NULL)
                return -ENOMEM;
            *len = k->len;
            return copy_into(fc, a, &fc->prev_copy[i], path, k->bytes, k->len, apath, out);
        }
        struct entry ne = {.hash = h, .path = strdup(path), .copy = calloc(1, sizeof(*ne.copy))};
        if (ne.path == NULL || ne.copy == NULL) {
            free(ne.path);
            free(ne.copy);
            return -ENOMEM;
        }
        ne.err = read_whole(fc, &ne, path);
        if (ne.err == -ENOMEM) {
            free(ne.path);
            free(ne.copy);
            return -ENOMEM;
        }
        *e = ne;
        fc->n++;
        if (ne.err == 0)
            fc->n_read++;
    }
    if (e->err != 0)
        return e->err;
    *len = e->len;
    return copy_into(fc, a, e->copy, path, e->bytes, e->len, apath, out);
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && a && b && (a == b || memcmp(a, b, alen) == 0);
}

bool rc_filecache_unchanged(struct rc_filecache *fc, const char *path, uint64_t h,
                            const char *bytes, size_t len)
{
    if (path == NULL || bytes == NULL)
        return false;
    if (fc->n) {
        const struct entry *e = slot(fc->tab, fc->cap, path, h);
        if (e->path != NULL)
            return e->err == 0 && same(e->bytes, e->len, bytes, len);
    }
    size_t i = prev_find(fc->prev, path, h);
    return i != NONE && same(fc->prev->v[i]->bytes, fc->prev->v[i]->len, bytes, len) &&
           prev_checked(fc, path, i) != NULL;
}

size_t rc_filecache_n_read(const struct rc_filecache *fc)
{
    return fc ? fc->n_read : 0;
}

size_t rc_filecache_n_reused(const struct rc_filecache *fc)
{
    return fc ? fc->n_reused : 0;
}

size_t rc_filecache_n_unstatted(const struct rc_filecache *fc)
{
    return fc ? fc->n_unstatted : 0;
}

/* Whether bytes is the copy c made in data, the arena of this load's last
 * pass (a record made now lives there too: home). */
static bool copied_into(const struct rc_filecache *fc, const struct copy *c,
                        const struct rc_arena *data, const char *bytes)
{
    return c && fc->arena == data && c->gen == fc->gen && c->bytes == bytes;
}

/* A new record in data. Returns 0 or -1 (out of memory). */
static int keep_new(struct rc_kept_files *out, struct rc_arena *data, struct rc_kept_file k)
{
    struct rc_kept_file *r = rc_arena_alloc(data, sizeof(*r));
    if (r == NULL)
        return -1;
    *r = k;
    out->v[out->n++] = r;
    return 0;
}

static int keep_one(const struct rc_filecache *fc, struct rc_kept_files *out, struct rc_arena *data,
                    const char *path, uint64_t h, const char *bytes, size_t len)
{
    if (path == NULL || bytes == NULL)
        return 0;
    struct entry *e = fc->n ? slot(fc->tab, fc->cap, path, h) : NULL;
    if (e != NULL && e->path != NULL) {
        if (e->err != 0 || e->kept || !same(e->bytes, e->len, bytes, len))
            return 0; /* m holds other bytes (a kept version), or kept already */
        e->kept = true;
        return keep_new(out, data,
                        (struct rc_kept_file){.path = path,
                                              .hash = h,
                                              .id = e->id,
                                              .settled = e->settled,
                                              .home = copied_into(fc, e->copy, data, bytes),
                                              .watchable = e->watchable,
                                              .bytes = bytes,
                                              .len = len});
    }
    size_t i = prev_find(fc->prev, path, h);
    if (i == NONE)
        return 0;
    const struct rc_kept_file *k = fc->prev->v[i];
    if (!fc->prev_used[i] || fc->prev_kept[i] || !same(k->bytes, k->len, bytes, len))
        return 0; /* not checked by this load, kept already, or other bytes */
    fc->prev_kept[i] = true;
    if (k->home && k->path == path && k->bytes == bytes) {
        out->v[out->n++] = k; /* the same file, bytes and identity */
        return 0;
    }
    const struct copy *c = fc->prev_copy ? &fc->prev_copy[i] : NULL;
    return keep_new(out, data,
                    (struct rc_kept_file){.path = path,
                                          .hash = h,
                                          .id = k->id,
                                          .settled = k->settled,
                                          .home = copied_into(fc, c, data, bytes),
                                          .watchable = k->watchable,
                                          .bytes = bytes,
                                          .len = len});
}

int rc_filecache_keep(const struct rc_filecache *fc, const struct rc_model *m,
                      struct rc_arena *data, struct rc_kept_files *out)
{
    out->n = 0;
    for (size_t i = 0; i < fc->cap; i++)
        fc->tab[i].kept = false;
    if (fc->prev_kept)
        memset(fc->prev_kept, 0, fc->prev->n * sizeof(*fc->prev_kept));
    out->v = rc_arena_alloc(m->arena, (2 * m->n_certificates + 1) * sizeof(*out->v));
    if (out->v == NULL)
        return -1;
    for (size_t i = 0; i < m->n_certificates; i++) {
        const struct rc_certificate *c = m->certificates[i];
        if (c->source != RC_CERT_SOURCE_FILES)
            continue;
        if (keep_one(fc, out, data, c->cert_path, c->cert_path_hash, c->cert_pem,
                     c->cert_pem_len) != 0 ||
            keep_one(fc, out, data, c->key_path, c->key_path_hash, c->key_pem, c->key_pem_len) != 0)
            return -1;
    }
    out->index = NULL;
    out->index_cap = 0;
    size_t cap = 16;
    while (cap < 2 * (out->n + 1))
        cap *= 2;
    if (out->n > 0) {
        if (out->n >= UINT_MAX / 4 ||
            (out->index = rc_arena_alloc(m->arena, cap * sizeof(*out->index))) == NULL)
            return -1;
        memset(out->index, 0, cap * sizeof(*out->index));
        out->index_cap = cap;
        for (size_t i = 0; i < out->n; i++) {
            size_t j = (size_t)out->v[i]->hash & (cap - 1);
            while (out->index[j])
                j = (j + 1) & (cap - 1);
            out->index[j] = (unsigned)i + 1;
        }
    }
    return 0;
}
