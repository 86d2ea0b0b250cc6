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

const char *rc_rel_under(const char *root, const char *path)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    if (strncmp(path, root, n) != 0 || path[n] != '/')
        return NULL;
    path += n;
    while (*path == '/')
        path++;
    return *path ? path : NULL;
}

bool rc_changes_vouch_abs(const struct rc_changes *c, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (c == NULL || c->n_trusted == 0 || path[0] != '/' || slash == NULL || slash == path ||
        slash[1] == '\0')
        return false;
    size_t dl = (size_t)(slash - path), lo = 0, hi = c->n_trusted;
    bool found = false;
    while (lo < hi && !found) {
        size_t mid = lo + (hi - lo) / 2;
        const char *s = c->trusted[mid];
        int r = strncmp(s, path, dl);
        if (r == 0 && s[dl] == '\0')
            found = true;
        else if (r < 0)
            lo = mid + 1;
        else
            hi = mid; /* r > 0, or s longer than the folder: after it */
    }
    return found && !rc_changes_cover(c, path);
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
