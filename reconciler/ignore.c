/* .albdignore: gitignore patterns over paths relative to the manifest
 * folder (ignore.h). A pattern is kept as its '/'-separated segments; each
 * segment is matched with fnmatch(3) and a "**" segment by the table in
 * match_segments, so the cost of a match is bounded by segments x segments
 * whatever the pattern. */
#include "reconciler/ignore.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reconciler/readall.h"

struct pattern {
    char **seg; /* segments; "**" stands alone */
    size_t n_seg;
    bool negate;   /* "!pattern" */
    bool dir_only; /* "pattern/" */
};

struct rc_ignore {
    struct pattern *v;
    size_t n, cap;
};

static void pattern_free(struct pattern *p)
{
    for (size_t i = 0; i < p->n_seg; i++)
        free(p->seg[i]);
    free(p->seg);
}

void rc_ignore_free(struct rc_ignore *ig)
{
    if (ig == NULL)
        return;
    for (size_t i = 0; i < ig->n; i++)
        pattern_free(&ig->v[i]);
    free(ig->v);
    free(ig);
}

size_t rc_ignore_count(const struct rc_ignore *ig)
{
    return ig ? ig->n : 0;
}

/* Drops trailing spaces that are not escaped ("a\ " keeps its space, and
 * its backslash, which fnmatch reads as an escape) and a trailing CR. */
static size_t trim_end(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    while (n > 0 && s[n - 1] == ' ' && !(n > 1 && s[n - 2] == '\\'))
        n--;
    return n;
}

/* Adds one segment [s, s+n) to p. 0, or -1 when out of memory. */
static int seg_add(struct pattern *p, const char *s, size_t n)
{
    char *copy = strndup(s, n);
    if (copy == NULL)
        return -1;
    p->seg[p->n_seg++] = copy;
    return 0;
}

/* Parses one line (without its newline) into p. Returns 1 with p filled,
 * 0 when the line holds no pattern, or -1 when out of memory. */
static int parse_line(const char *s, size_t n, struct pattern *p)
{
    memset(p, 0, sizeof(*p));
    n = trim_end(s, n);
    if (n == 0 || s[0] == '#')
        return 0;
    if (s[0] == '!') {
        p->negate = true;
        s++;
        n--;
    }
    if (n > 0 && s[n - 1] == '/') {
        p->dir_only = true;
        while (n > 0 && s[n - 1] == '/')
            n--;
    }
    /* A '/' left at the start or in the middle anchors the pattern to the
     * manifest folder; without one it matches a name at any depth, as if
     * it began with a "**" segment. */
    bool anchored = memchr(s, '/', n) != NULL;
    while (n > 0 && s[0] == '/') {
        s++;
        n--;
    }
    if (n == 0)
        return 0;
    size_t segs = 1 + !anchored;
    for (size_t i = 0; i < n; i++)
        segs += s[i] == '/';
    if (segs > RC_IGNORE_MAX_SEGMENTS)
        return 0;
    p->seg = calloc(segs, sizeof(*p->seg));
    if (p->seg == NULL)
        return -1;
    if (!anchored && seg_add(p, "**", 2) != 0)
        goto oom;
    const char *e = s + n;
    while (s < e) {
        const char *slash = memchr(s, '/', (size_t)(e - s));
        const char *end = slash ? slash : e;
        if (end > s && seg_add(p, s, (size_t)(end - s)) != 0) /* "a//b" is "a/b" */
            goto oom;
        s = end + (slash != NULL);
    }
    return 1;
oom:
    pattern_free(p);
    return -1;
}

struct rc_ignore *rc_ignore_parse(const char *text, size_t len)
{
    struct rc_ignore *ig = calloc(1, sizeof(*ig));
    if (ig == NULL)
        return NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        struct pattern pat;
        int r = parse_line(p, (size_t)(le - p), &pat);
        if (r < 0)
            goto oom;
        if (r > 0) {
            if (ig->n == ig->cap) {
                size_t cap = ig->cap ? ig->cap * 2 : 16;
                struct pattern *v = realloc(ig->v, cap * sizeof(*v));
                if (v == NULL) {
                    pattern_free(&pat);
                    goto oom;
                }
                ig->v = v;
                ig->cap = cap;
            }
            ig->v[ig->n++] = pat;
        }
        p = le + (nl != NULL);
    }
    return ig;
oom:
    rc_ignore_free(ig);
    return NULL;
}

int rc_ignore_load(const char *dir, struct rc_ignore **out)
{
    *out = NULL;
    char path[4096];
    size_t dl = strlen(dir);
    if (snprintf(path, sizeof(path), "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
                 RC_IGNORE_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    struct stat st;
    int fd = rc_open_regular(path, &st);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    char *text = NULL;
    size_t len = 0;
    int rc = rc_read_all(fd, (size_t)st.st_size, RC_IGNORE_MAX_BYTES, false, &text, &len);
    close(fd);
    if (rc != 0)
        return rc;
    *out = rc_ignore_parse(text, len);
    free(text);
    return *out ? 0 : -ENOMEM;
}

/* Whether the pattern's segments match the path's, "**" included: ok[i][j]
 * says whether segments i.. of the pattern match segments j.. of the
 * path, filled from the end (a table, so that several "**" cost no more
 * than one). A last "**" needs at least one segment: "a/" + "**" is what
 * is inside a, not a itself. */
static bool match_segments(const struct pattern *p, char *const *path, size_t n)
{
    size_t np = p->n_seg;
    if (np == 0 || np > RC_IGNORE_MAX_SEGMENTS || n > RC_IGNORE_MAX_SEGMENTS)
        return false;
    bool ok[RC_IGNORE_MAX_SEGMENTS + 1][RC_IGNORE_MAX_SEGMENTS + 1];
    for (size_t j = 0; j <= n; j++)
        ok[np][j] = j == n;
    for (size_t i = np; i-- > 0;) {
        bool star = strcmp(p->seg[i], "**") == 0;
        ok[i][n] = star && i + 1 < np && ok[i + 1][n];
        for (size_t j = n; j-- > 0;) {
            if (star)
                /* zero segments (not for a last "**"), or one more */
                ok[i][j] = (i + 1 < np && ok[i + 1][j]) || ok[i][j + 1] || (i + 1 == np);
            else
                ok[i][j] = ok[i + 1][j + 1] && fnmatch(p->seg[i], path[j], 0) == 0;
        }
    }
    return ok[0][0];
}

bool rc_ignore_match(const struct rc_ignore *ig, const char *rel, bool is_dir)
{
    if (ig == NULL || ig->n == 0 || rel == NULL || *rel == '\0')
        return false;
    char buf[4096];
    size_t len = strlen(rel);
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, rel, len + 1);
    char *seg[RC_IGNORE_MAX_SEGMENTS];
    size_t n = 0;
    for (char *s = buf, *save = NULL; (s = strtok_r(s, "/", &save)) != NULL; s = NULL) {
        if (n == RC_IGNORE_MAX_SEGMENTS)
            return false;
        seg[n++] = s;
    }
    if (n == 0)
        return false;
    for (size_t i = ig->n; i-- > 0;) {
        const struct pattern *p = &ig->v[i];
        if (p->dir_only && !is_dir)
            continue;
        if (match_segments(p, seg, n))
            return !p->negate;
    }
    return false;
}

bool rc_ignore_path(const struct rc_ignore *ig, const char *rel, bool is_dir)
{
    if (ig == NULL || ig->n == 0 || rel == NULL)
        return false;
    char buf[4096];
    size_t len = strlen(rel);
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, rel, len + 1);
    for (char *slash = strchr(buf, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        bool hit = slash > buf && rc_ignore_match(ig, buf, true);
        *slash = '/';
        if (hit)
            return true;
    }
    return rc_ignore_match(ig, buf, is_dir);
}
