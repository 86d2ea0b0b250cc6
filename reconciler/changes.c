/* The watcher's list of changed paths, as the loader consults it
 * (changes.h). */
#include "reconciler/changes.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Deeper files are not watched (agent/watch.c stops at 32 levels). */
#define MAX_WATCHED_DEPTH 30

static bool has(const struct rc_changes *c, const char *p, size_t n)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = c->rel[mid];
        int r = strncmp(s, p, n);
        if (r == 0 && s[n] == '\0')
            return true;
        if (r == 0) /* s is longer: it sorts after p */
            r = 1;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool rc_changes_cover(const struct rc_changes *c, const char *rel)
{
    if (c == NULL)
        return true;
    size_t n = strlen(rel);
    if (has(c, rel, n) || has(c, "", 0))
        return true;
    for (size_t i = n; i > 0; i--)
        if (rel[i - 1] == '/' && has(c, rel, i - 1))
            return true;
    return false;
}

size_t rc_root_len(const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    return n;
}

const char *rc_rel_under_len(const char *root, size_t n, const char *path)
{
    if (strncmp(path, root, n) != 0 || path[n] != '/')
        return NULL;
    path += n;
    while (*path == '/')
        path++;
    return *path ? path : NULL;
}

const char *rc_rel_under(const char *root, const char *path)
{
    return rc_rel_under_len(root, rc_root_len(root), path);
}

/* Whether the folder path[0..dl) is one of c's trusted folders. */
static bool trusted_dir(const struct rc_changes *c, const char *path, size_t dl)
{
    size_t lo = 0, hi = c->n_trusted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = c->trusted[mid];
        int r = strncmp(s, path, dl);
        if (r == 0 && s[dl] == '\0')
            return true;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid; /* r > 0, or s longer than the folder: after it */
    }
    return false;
}

/* The folder of a file path that vouching can consider: its length, or -1
 * (not absolute, no folder, or no file name). */
static long vouch_dir_len(const struct rc_changes *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (c == NULL || c->n_trusted == 0 || path[0] != '/' || slash == NULL || slash == path ||
        slash[1] == '\0')
        return -1;
    return (long)(slash - path);
}

bool rc_changes_vouch_abs(const struct rc_changes *c, const char *path)
{
    long dl = vouch_dir_len(c, path);
    return dl >= 0 && trusted_dir(c, path, (size_t)dl) && !rc_changes_cover(c, path);
}

/* m's entry for the folder p[0..dl) of the next path, working out
 * whether c covers it when m holds neither of its last two folders; NULL
 * when out of memory. */
static struct rc_cover_folder *memo_dir(const struct rc_changes *c, const char *p, size_t dl,
                                        struct rc_cover_memo *m)
{
    for (int i = 0; i < 2; i++)
        if (m->f[i].used && m->f[i].len == dl && memcmp(m->f[i].dir, p, dl) == 0)
            return &m->f[i];
    struct rc_cover_folder *f = &m->f[m->next];
    m->next ^= 1;
    if (f->cap < dl + 1) {
        char *d = realloc(f->dir, dl + 1);
        if (d == NULL) {
            f->used = false;
            return NULL;
        }
        f->dir = d;
        f->cap = dl + 1;
    }
    memcpy(f->dir, p, dl);
    f->dir[dl] = '\0';
    f->len = dl;
    f->used = true;
    f->has_trusted = false;
    /* rc_changes_cover's folder part: "" and each prefix that ends before a
     * '/' of p[0..dl] (the file name after dl holds none). */
    f->covered = has(c, "", 0);
    for (size_t j = 0; !f->covered && j <= dl; j++)
        f->covered = p[j] == '/' && has(c, p, j);
    return f;
}

bool rc_changes_cover_m(const struct rc_changes *c, const char *rel, struct rc_cover_memo *m)
{
    if (c == NULL)
        return true;
    const char *slash = strrchr(rel, '/');
    const struct rc_cover_folder *f = memo_dir(c, rel, slash ? (size_t)(slash - rel) : 0, m);
    if (f == NULL)
        return rc_changes_cover(c, rel);
    return f->covered || has(c, rel, strlen(rel));
}

bool rc_changes_vouch_abs_m(const struct rc_changes *c, const char *path, struct rc_cover_memo *m)
{
    long dl = vouch_dir_len(c, path);
    if (dl < 0)
        return false;
    struct rc_cover_folder *f = memo_dir(c, path, (size_t)dl, m);
    if (f == NULL)
        return rc_changes_vouch_abs(c, path);
    if (!f->has_trusted) {
        f->trusted = trusted_dir(c, path, (size_t)dl);
        f->has_trusted = true;
    }
    return f->trusted && !f->covered && !has(c, path, strlen(path));
}

void rc_cover_memo_free(struct rc_cover_memo *m)
{
    for (int i = 0; i < 2; i++) {
        free(m->f[i].dir);
        m->f[i] = (struct rc_cover_folder){.dir = NULL};
    }
}

bool rc_watchable(const char *path, const struct stat *st, const char *rel,
                  const char *real_expected)
{
    if (!S_ISREG(st->st_mode) || st->st_nlink != 1 || rel == NULL || real_expected == NULL)
        return false;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        depth += *p == '/';
    if (depth > MAX_WATCHED_DEPTH)
        return false;
    char real[PATH_MAX];
    if (realpath(path, real) == NULL || strcmp(real, real_expected) != 0)
        return false;
    /* A file that is itself a mount point (a Docker or Kubernetes file
     * bind mount) is written through its source's folder: no event here. */
    char dir[PATH_MAX];
    const char *slash = strrchr(real, '/');
    if (slash == NULL || slash == real)
        return false;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - real), real);
    struct statx f, d;
    return statx(AT_FDCWD, real, 0, STATX_MNT_ID, &f) == 0 &&
           statx(AT_FDCWD, dir, 0, STATX_MNT_ID, &d) == 0 && (f.stx_mask & STATX_MNT_ID) &&
           (d.stx_mask & STATX_MNT_ID) && f.stx_mnt_id == d.stx_mnt_id;
}
