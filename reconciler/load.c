/* rc_load_dir: walks the manifest directory, parses every YAML document with
 * its source positions, validates each against its schema and hands the
 * documents to the model builder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/prefetch.h"
#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/certstore.h"
#include "reconciler/ignore.h"
#include "reconciler/loadset.h"
#include "reconciler/model-t.h"
#include "reconciler/rc.h"
#include "reconciler/readall.h"
#include "reconciler/schema.h"
#include "reconciler/source.h"

/* A file of 10,000 Certificate and 10,000 ServerGroup documents with long
 * paths, all in one, is about 4 MiB (bench/reconcile_large.c writes them
 * as two files of 1.5 and 1.3 MB): twice that is room enough, and keeps
 * what a stray file can cost bounded (README "Limits"). */
#define MAX_FILE_SIZE (8u << 20)

struct file_list {
    char **v;
    /* Whether v[i] is malloc'd here; false: borrowed from the running
     * model's walk (rc_kept_mfile.path), which outlives the load. */
    bool *own;
    size_t n, cap;
};

struct dir_id {
    dev_t dev;
    ino_t ino;
};

struct walk {
    struct file_list files;
    struct file_list bad_dirs; /* below the top: could not be read */
    struct dir_id *seen;       /* directories entered: symlinked loops end here */
    size_t n_seen, cap_seen;
    struct rc_errs *errs;
    bool oom;
    bool top_failed;
    bool via_link;              /* entered a folder through a symbolic link */
    char root[PATH_MAX];        /* realpath of the manifest folder; "" when unknown */
    const struct rc_ignore *ig; /* .albdignore, or NULL */
    size_t top_len;             /* strlen of the folder as given: paths begin with it */
};

/* Whether the real path real is root or below it. */
static bool inside(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (n == 0)
        return false;
    if (root[n - 1] == '/') /* "/" */
        return real[0] == '/';
    return strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

bool rc_is_manifest_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    char *p = NULL;
    if (asprintf(&p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0)
        return NULL;
    return p;
}

static void file_error(struct rc_errs *errs, const char *path, const char *what, int err)
{
    struct rc_loc loc = {path, 0, 0};
    rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL, "%s: %s", what, strerror(err));
}

static void list_put(struct walk *w, struct file_list *l, char *path, bool own)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->v, cap * sizeof(*p));
        if (p != NULL)
            l->v = p;
        bool *o = p ? realloc(l->own, cap * sizeof(*o)) : NULL;
        if (o == NULL) {
            if (own)
                free(path);
            w->oom = true;
            return;
        }
        l->own = o;
        l->cap = cap;
    }
    l->own[l->n] = own;
    l->v[l->n++] = path;
}

static void list_add(struct walk *w, struct file_list *l, char *path)
{
    list_put(w, l, path, true);
}

/* A path of the running model's walk, not copied (10,000 manifests: 0.6
 * MiB less at a reload's peak). */
static void list_borrow(struct walk *w, struct file_list *l, const char *path)
{
    list_put(w, l, (char *)path, false);
}

static void list_free(struct file_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->own[i])
            free(l->v[i]);
    free(l->v);
    free(l->own);
    *l = (struct file_list){0};
}

static void bad_dir(struct walk *w, const char *dir, int depth, int err)
{
    file_error(w->errs, dir, "cannot read the manifest directory", err);
    if (depth == 0) {
        w->top_failed = true;
        return;
    }
    char *p = strdup(dir);
    if (p == NULL)
        w->oom = true;
    else
        list_add(w, &w->bad_dirs, p);
}

static void walk_dir(struct walk *w, const char *dir, int depth)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        bad_dir(w, dir, depth, errno);
        return;
    }
    for (size_t i = 0; i < w->n_seen; i++)
        if (w->seen[i].dev == st.st_dev && w->seen[i].ino == st.st_ino)
            return; /* already walked: a symlink loop or a second link */
    if (depth > 32)
        return;
    if (w->n_seen == w->cap_seen) {
        size_t cap = w->cap_seen ? w->cap_seen * 2 : 16;
        struct dir_id *p = realloc(w->seen, cap * sizeof(*p));
        if (p == NULL) {
            w->oom = true;
            return;
        }
        w->seen = p;
        w->cap_seen = cap;
    }
    w->seen[w->n_seen++] = (struct dir_id){st.st_dev, st.st_ino};

    DIR *d = opendir(dir);
    if (d == NULL) {
        bad_dir(w, dir, depth, errno);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* Hidden entries are skipped. In the Kubernetes ConfigMap layout the
         * real files live in hidden "..2026_..." folders behind a hidden
         * "..data" link, and the visible names are links into "..data": so
         * reading the visible links reads every file exactly once. */
        if (e->d_name[0] == '.')
            continue;
        /* A regular file that is not YAML needs no stat: a folder of
         * thousands of certificates costs one readdir, not a stat each. */
        if (e->d_type == DT_REG && !rc_is_manifest_name(e->d_name))
            continue;
        char *path = join(dir, e->d_name);
        if (path == NULL) {
            w->oom = true;
            break;
        }
        /* A regular YAML file needs no stat either: readdir's type is
         * what stat would say (DT_REG is never a link), and one removed or
         * replaced meanwhile raises a watch event, so the load runs again
         * (or its read reports it). A folder of 10,000 manifests costs one
         * readdir, not 10,000 stats. */
        struct stat est = {.st_mode = S_IFREG};
        bool stat_ok = e->d_type == DT_REG || stat(path, &est) == 0;
        int stat_errno = errno;
        /* .albdignore: an ignored folder is never entered, so matching the
         * entry's own name is enough. */
        const char *rel = path + w->top_len;
        while (*rel == '/')
            rel++;
        if (rc_ignore_match(w->ig, rel, stat_ok && S_ISDIR(est.st_mode))) {
            free(path);
            continue;
        }
        if (!stat_ok) {
            if (rc_is_manifest_name(e->d_name))
                file_error(w->errs, path, "cannot read", stat_errno);
            free(path);
            continue;
        }
        if (S_ISDIR(est.st_mode)) {
            /* Files can appear in a linked folder with no event in the
             * tree: the next load must walk again (changes.h). */
            if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
                w->via_link = true;
                /* Manifests are read from inside the folder only: a link
                 * out of it would read whatever albd can read. */
                char real[PATH_MAX];
                if (realpath(path, real) == NULL || !inside(w->root, real)) {
                    struct rc_loc loc = {path, 0, 0};
                    rc_errs_add(w->errs, RC_ERROR, &loc, NULL, NULL, NULL,
                                "a link to a folder outside the manifest folder: not read");
                    char *p = strdup(path);
                    if (p == NULL)
                        w->oom = true;
                    else
                        list_add(w, &w->bad_dirs, p);
                    free(path);
                    continue;
                }
            }
            walk_dir(w, path, depth + 1);
            free(path);
        } else if (S_ISREG(est.st_mode) && rc_is_manifest_name(e->d_name)) {
            list_add(w, &w->files, path);
            if (w->oom)
                break;
        } else {
            free(path);
        }
    }
    closedir(d);
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the walk would say of rel, a path the watcher named below the
 * folder dir: 1 a manifest file it lists, 0 none (gone, not YAML, not a
 * regular file, ignored), -1 not known without walking (a hidden or deep
 * path, a link, a folder, an error). Mirrors walk_dir's rules. */
static int walk_would_list(const struct walk *w, const char *dir, const char *rel)
{
    if (rel[0] == '/' || rel[0] == '\0')
        return -1;
    int depth = 0;
    for (const char *p = rel; *p; p++) {
        if ((p == rel || p[-1] == '/') && *p == '.')
            return -1; /* hidden entries are skipped by the walk, links behind them */
        if (*p == '/') {
            depth++;
            char prefix[PATH_MAX];
            if ((size_t)(p - rel) >= sizeof prefix)
                return -1;
            memcpy(prefix, rel, (size_t)(p - rel));
            prefix[p - rel] = '\0';
            if (w->ig && rc_ignore_match(w->ig, prefix, true))
                return 0; /* in an ignored folder: never entered */
        }
    }
    if (depth > 30)
        return -1;
    char *path = join(dir, rel);
    if (path == NULL)
        return -1;
    struct stat st;
    int rc = lstat(path, &st);
    int err = errno;
    free(path);
    if (rc != 0)
        return err == ENOENT || err == ENOTDIR ? 0 : -1;
    if (!S_ISREG(st.st_mode))
        return S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode) ? -1 : 0;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    return rc_is_manifest_name(base) && !(w->ig && rc_ignore_match(w->ig, rel, false)) ? 1 : 0;
}

/* The running model's walk, patched with the files the watcher named as
 * created, removed or renamed (no folder among them: changes.h
 * files_only): each named path is looked at alone, the rest of the list
 * is taken as it was — a folder of 10,000 manifests is neither read nor
 * sorted again. false when a named path needs the walk (w->files is then
 * empty); the order is the walk's (path_cmp). */
static bool patch_walk(struct walk *w, const char *dir, const struct rc_sources *prev,
                       const struct rc_changes *c)
{
    size_t dlen = strlen(dir);
    /* The named paths that the walk lists now, sorted (c->rel is). */
    char **add = calloc(c->n ? c->n : 1, sizeof *add);
    size_t n_add = 0;
    if (add == NULL)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < c->n; i++) {
        if (i && strcmp(c->rel[i], c->rel[i - 1]) == 0)
            continue;
        if (c->rel[i][0] == '/')
            continue; /* a certificate folder outside the tree */
        int r = walk_would_list(w, dir, c->rel[i]);
        if (r < 0)
            ok = false;
        else if (r > 0 && (add[n_add] = join(dir, c->rel[i])) != NULL)
            n_add++;
        else if (r > 0)
            ok = false;
    }
    /* Merge: prev's list without the named paths, and add. */
    size_t a = 0;
    for (size_t i = 0; ok && !w->oom && i <= prev->n_mfiles; i++) {
        const char *p = i < prev->n_mfiles ? prev->mfiles[i]->path : NULL;
        int cmp = -1;
        while (a < n_add && (p == NULL || (cmp = strcmp(add[a], p)) <= 0)) {
            list_add(w, &w->files, add[a]);
            add[a++] = NULL;
            if (cmp == 0)
                break; /* p itself, listed */
        }
        if (p == NULL || cmp == 0)
            continue;
        const char *rel = p + dlen;
        while (*rel == '/')
            rel++;
        bool named = false;
        for (size_t lo = 0, hi = c->n; lo < hi && !named;) {
            size_t mid = lo + (hi - lo) / 2;
            int r = strcmp(c->rel[mid], rel);
            named = r == 0;
            if (r < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (named)
            continue; /* listed by add when it is still there */
        list_borrow(w, &w->files, p);
    }
    for (size_t i = 0; i < n_add; i++)
        free(add[i]);
    free(add);
    if (!ok || w->oom) {
        list_free(&w->files);
        return false;
    }
    return true;
}

/* Whether the open file fd is inside root (the real path of the manifest
 * folder): asked of the open file, so that a link changed between the
 * walk and the open cannot point the read elsewhere. Without /proc, the
 * path is resolved instead. */
static bool fd_inside(int fd, const char *path, const char *root)
{
    if (root == NULL)
        return true; /* no folder to be inside of: nothing was walked */
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n > 0 && real[0] == '/') {
        real[n] = '\0';
        return inside(root, real);
    }
    return realpath(path, real) != NULL && inside(root, real);
}

/* Reads path, a manifest file that must be a regular file inside root
 * (else -EXDEV or RC_ENOTREG); *id is the identity of what was opened,
 * taken before reading (a write during the read moves ctime, so the next
 * load reads it again). */
static int read_file(const char *path, const char *root, char **out, size_t *len, struct rc_fid *id,
                     struct stat *st_out)
{
    struct stat st;
    int fd = rc_open_regular(path, &st);
    if (fd < 0)
        return fd;
    if (!fd_inside(fd, path, root)) {
        close(fd);
        return -EXDEV;
    }
    rc_fid_from_stat(id, &st);
    *st_out = st;
    int rc = rc_read_all(fd, (size_t)st.st_size, MAX_FILE_SIZE, false, out, len);
    close(fd);
    return rc;
}

/* The running model's record of path (prev's files are sorted by path), or
 * NULL. *next: where the next file asked for probably is (the files are
 * asked for in the same order): one comparison per file of a folder of
 * 10,000 rather than a search each. */
static const struct rc_kept_mfile *prev_mfile(const struct rc_sources *p, const char *path,
                                              size_t *next)
{
    if (p && *next < p->n_mfiles && strcmp(p->mfiles[*next]->path, path) == 0)
        return p->mfiles[(*next)++];
    size_t lo = 0, hi = p ? p->n_mfiles : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->mfiles[mid]->path, path);
        if (c == 0) {
            *next = mid + 1;
            return p->mfiles[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The last folder abs_dir_of() resolved in one load: the files are walked
 * sorted, so 10,000 manifests in one folder cost one realpath(), not
 * 10,000 (each a readlink per path component). */
struct dir_memo {
    char dir[PATH_MAX];
    const char *abs; /* in the load's arena; NULL: nothing resolved yet */
};

/* The absolute folder of a manifest file as walked (not its link target:
 * relative paths in a ConfigMap file resolve next to the visible link).
 * memo: the load's last answer, reused for the same folder. */
static const char *abs_dir_of(struct rc_arena *a, const char *file, struct dir_memo *memo)
{
    const char *slash = strrchr(file, '/');
    /* The common case, the folder of the file before: no copy. */
    size_t dl = slash ? (size_t)(slash - file) : 0;
    if (memo->abs != NULL && slash != NULL && slash != file && dl < sizeof memo->dir &&
        memo->dir[dl] == '\0' && strncmp(memo->dir, file, dl) == 0)
        return memo->abs;
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    if (memo->abs != NULL && strcmp(memo->dir, dir) == 0)
        return memo->abs;
    char real[PATH_MAX];
    const char *abs = rc_arena_strdup(a, realpath(dir, real) != NULL ? real : dir);
    if (abs != NULL) {
        memcpy(memo->dir, dir, sizeof memo->dir);
        memo->abs = abs;
    }
    return abs;
}

static bool is_empty_doc(yaml_document_t *y)
{
    yaml_node_t *root = yaml_document_get_root_node(y);
    if (root == NULL)
        return true;
    struct rc_yval v;
    rc_y_classify(root, &v);
    return v.type == RC_Y_NULL;
}

struct docs {
    struct rc_arena *tmp;
    struct rc_doc **v;
    size_t n, cap;
    struct rc_errs *errs;
};

/* Parses every document of one file into D. Returns 0, 1 when the file is
 * not valid YAML (the error is in D->errs), or -1 when out of memory. */
static int parse_file(struct docs *D, size_t index, const char *afile, const char *adir,
                      const char *text, size_t len)
{
    struct rc_y_diag deep;
    if (rc_y_prescan(text, len, &deep) != 0) {
        struct rc_loc loc = {afile, (int)deep.mark.line + 1, (int)deep.mark.column + 1};
        rc_errs_add(D->errs, RC_ERROR, &loc, NULL, NULL, NULL, "%s", deep.problem);
        return 1;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    size_t budget = RC_Y_MAX_NODES;
    for (;;) {
        yaml_document_t y;
        struct rc_y_diag e;
        int r = rc_y_load(&parser, &y, &budget, &e);
        if (r != 1) {
            struct rc_loc loc = {afile, (int)e.mark.line + 1, (int)e.mark.column + 1};
            if (r < 0) {
                rc = -1;
            } else {
                /* libyaml's problem and context are fixed texts: a file
                 * that is not YAML is never quoted. */
                rc_errs_add(
                    D->errs, RC_ERROR, &loc, NULL, NULL, NULL, "%s%s%s%s",
                    e.refused ? "" : "YAML syntax error: ", e.problem ? e.problem : "invalid YAML",
                    e.context ? " " : "", e.context ? e.context : "");
                rc = 1;
            }
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&y);
        if (root == NULL) { /* end of the stream */
            yaml_document_delete(&y);
            break;
        }
        if (is_empty_doc(&y)) {
            yaml_document_delete(&y);
            continue;
        }
        struct rc_doc *d = rc_arena_alloc(D->tmp, sizeof(*d));
        if (D->n == D->cap) {
            size_t ncap = D->cap ? D->cap * 2 : 16;
            struct rc_doc **p = realloc(D->v, ncap * sizeof(*p));
            if (p != NULL) {
                D->v = p;
                D->cap = ncap;
            }
        }
        if (d == NULL || D->n == D->cap) {
            yaml_document_delete(&y);
            rc = -1;
            break;
        }
        if (rc_doc_take_tree(d, &y) != 0) {
            rc = -1;
            break;
        }
        D->v[D->n++] = d;
        d->file = d->file_src = afile;
        d->dir = adir;
        d->file_index = index;
        size_t start = root->start_mark.index, end = root->end_mark.index;
        if (start <= end && end <= len) {
            d->src_text = text + start;
            d->src_len = end - start;
            d->src_line = (int)root->start_mark.line + 1;
            d->src_col = (int)root->start_mark.column + 1;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

static struct rc_doc *push_doc(struct docs *D)
{
    struct rc_doc *d = rc_arena_alloc(D->tmp, sizeof(*d));
    if (d == NULL)
        return NULL;
    memset(d, 0, sizeof(*d));
    if (D->n == D->cap) {
        size_t ncap = D->cap ? D->cap * 2 : 16;
        struct rc_doc **p = realloc(D->v, ncap * sizeof(*p));
        if (p == NULL)
            return NULL;
        D->v = p;
        D->cap = ncap;
    }
    D->v[D->n++] = d;
    return d;
}

/* Whether the build may need the nodes of a document taken from the
 * running model even when its resource is copied: anything but a
 * certificate from files or a server group without spec.tls
 * (rc_reuse_certificate in cert.c, rc_reuse_group in group.c) is built
 * again, so parse it now. */
static bool needs_nodes(const struct rc_source *s)
{
    if (s->res == NULL)
        return true;
    if (!strcmp(s->kind, "Certificate"))
        return ((const struct rc_certificate *)s->res)->source == RC_CERT_SOURCE_SERVICE;
    if (!strcmp(s->kind, "ServerGroup"))
        return memmem(s->text, s->len, "tls", 3) != NULL;
    /* Copied when what they use is unchanged (instance.c, listener.c),
     * parsed otherwise. */
    return strcmp(s->kind, "Listener") != 0 && strcmp(s->kind, "Instance") != 0;
}

/* Takes the documents of an unchanged manifest file from the running
 * model's record pm instead of reading it. Returns 0, 1 when a document
 * does not parse on its own (read the file instead), or -1 when out of
 * memory. */
static int take_prev_file(struct docs *D, size_t index, const char *afile, const char *adir,
                          const struct rc_kept_mfile *pm, size_t *parsed)
{
    size_t n0 = D->n;
    for (size_t k = 0; k < pm->n_docs; k++) {
        const struct rc_source *s = pm->docs[k];
        struct rc_doc *d = push_doc(D);
        if (d == NULL)
            return -1;
        d->file = d->file_src = afile;
        d->dir = adir;
        d->kind = s->kind;
        d->name = s->name;
        d->schema_ok = true;
        d->src_text = s->text;
        d->src_len = s->len;
        d->src_line = s->line;
        d->src_col = s->col;
        d->file_index = index;
        d->prev_src = s;
        d->lazy = true;
        if (needs_nodes(s)) {
            int r = rc_doc_parse(d);
            if (r != 0) {
                for (size_t j = n0; j < D->n; j++)
                    if (!D->v[j]->lazy)
                        rc_doc_free_tree(D->v[j]);
                D->n = n0;
                return r;
            }
            ++*parsed;
        }
    }
    return 0;
}

/* ---- changed files: parse only the documents that changed ----
 *
 * A changed manifest file whose running-model record is clean (every
 * document a resource as written) is split into documents at the byte
 * level; a document whose content equals the source of one of that file's
 * documents in the running model (matched by content, not position, so an
 * inserted document does not make the later ones "changed") is taken from
 * the running model with its NEW place in the file, and only the others
 * are YAML-parsed, each from its own text (rc_doc_parse keeps file lines and
 * columns). Anything the splitter is not sure of (directives, anchors or
 * aliases, content after "...", a marker line with content, CR, a document
 * that does not parse on its own) makes it parse the whole file instead. */

struct chunk {
    size_t start, end; /* content: first to last non-blank byte */
    int line, col;     /* where start is (1-based) */
};

struct chunks {
    struct chunk *v;
    size_t n, cap;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether [p, e) after a marker holds only blanks and an optional comment. */
static bool rest_is_comment(const char *p, const char *e)
{
    while (p < e && is_blank(*p))
        p++;
    return p == e || *p == '#';
}

/* Whether the content line [p, e) may hold an anchor or an alias. */
static bool has_anchor(const char *p, const char *e)
{
    for (const char *q = p; q < e; q++) {
        if (*q != '&' && *q != '*')
            continue;
        char before = q == p ? ' ' : q[-1];
        char after = q + 1 < e ? q[1] : ' ';
        if ((is_blank(before) || before == '[' || before == '{' || before == ',' || before == ':' ||
             before == '-') &&
            !is_blank(after) && after != ',' && after != ']' && after != '}')
            return true;
    }
    return false;
}

static int chunk_close(struct chunks *C, struct chunk *cur)
{
    if (cur->start == SIZE_MAX)
        return 0;
    if (C->n == C->cap) {
        size_t cap = C->cap ? C->cap * 2 : 64;
        struct chunk *p = realloc(C->v, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        C->v = p;
        C->cap = cap;
    }
    C->v[C->n++] = *cur;
    cur->start = SIZE_MAX;
    return 0;
}

/* Splits text into its documents' contents. Returns 0, 1 to parse the
 * whole file instead, or -1 when out of memory. */
static int split_docs(const char *text, size_t len, struct chunks *C)
{
    struct chunk cur = {.start = SIZE_MAX};
    bool ended = false; /* after "...": only comments until "---" */
    int line = 1;
    for (size_t ls = 0; ls < len; line++) {
        const char *nl = memchr(text + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - text) : len;
        const char *p = text + ls, *e = text + le;
        if (memchr(p, '\r', le - ls) != NULL || *p == '%')
            return 1;
        bool marker = le - ls >= 3 && (!memcmp(p, "---", 3) || !memcmp(p, "...", 3)) &&
                      (le - ls == 3 || is_blank(p[3]));
        if (marker) {
            if (!rest_is_comment(p + 3, e))
                return 1;
            if (chunk_close(C, &cur) != 0)
                return -1;
            ended = *p == '.';
        } else {
            const char *q = p;
            while (q < e && is_blank(*q))
                q++;
            if (q < e && (*q != '#' || cur.start != SIZE_MAX)) {
                if (*q != '#' && (ended || has_anchor(q, e)))
                    return 1;
                if (cur.start == SIZE_MAX) {
                    if (*q == '\t' || *q == '#')
                        return 1;
                    cur.start = (size_t)(q - text);
                    cur.line = line;
                    cur.col = (int)(q - p) + 1;
                }
                while (e > q && is_blank(e[-1]))
                    e--;
                cur.end = (size_t)(e - text);
            }
        }
        ls = le + 1;
    }
    return chunk_close(C, &cur) != 0 ? -1 : 0;
}

/* The length of a source's text without its trailing white space (the
 * split contents end at their last non-blank byte). */
static size_t trimmed_len(const char *t, size_t n)
{
    while (n > 0 && (is_blank(t[n - 1]) || t[n - 1] == '\n'))
        n--;
    return n;
}

struct src_table {
    const struct rc_source **slot; /* NULL: empty */
    uint64_t *hash;
    bool *used;
    size_t mask;
};

static int table_init(struct src_table *T, const struct rc_kept_mfile *pm)
{
    size_t cap = 16;
    while (cap < 2 * pm->n_docs + 2)
        cap *= 2;
    T->slot = calloc(cap, sizeof(*T->slot));
    T->hash = calloc(cap, sizeof(*T->hash));
    T->used = calloc(cap, sizeof(*T->used));
    T->mask = cap - 1;
    if (T->slot == NULL || T->hash == NULL || T->used == NULL)
        return -1;
    for (size_t k = 0; k < pm->n_docs; k++) {
        const struct rc_source *s = pm->docs[k];
        uint64_t h = cm_hash(s->text, trimmed_len(s->text, s->len));
        size_t i = (size_t)h & T->mask;
        while (T->slot[i] != NULL)
            i = (i + 1) & T->mask;
        T->slot[i] = s;
        T->hash[i] = h;
    }
    return 0;
}

static void table_free(struct src_table *T)
{
    free(T->slot);
    free(T->hash);
    free(T->used);
}

/* The unused source of the running model with exactly this content and
 * column, or NULL. */
static const struct rc_source *table_take(struct src_table *T, const char *p, size_t n, int col)
{
    uint64_t h = cm_hash(p, n);
    for (size_t i = (size_t)h & T->mask; T->slot[i] != NULL; i = (i + 1) & T->mask) {
        const struct rc_source *s = T->slot[i];
        if (T->hash[i] == h && !T->used[i] && s->col == col && trimmed_len(s->text, s->len) == n &&
            !memcmp(s->text, p, n)) {
            T->used[i] = true;
            return s;
        }
    }
    return NULL;
}

static void drop_docs(struct docs *D, size_t n0)
{
    for (size_t j = n0; j < D->n; j++)
        if (!D->v[j]->lazy)
            rc_doc_free_tree(D->v[j]);
    D->n = n0;
}

/* Takes the documents of a changed file (text) from its running-model
 * record pm where their contents are unchanged and parses the others.
 * Returns 0, 1 to parse the whole file instead (nothing added), or -1 when
 * out of memory. */
static int take_changed_file(struct docs *D, size_t index, const char *afile, const char *adir,
                             const struct rc_kept_mfile *pm, const char *text, size_t len,
                             size_t *parsed)
{
    struct chunks C = {0};
    struct src_table T = {0};
    int rc = split_docs(text, len, &C);
    if (rc == 0 && table_init(&T, pm) != 0)
        rc = -1;
    size_t n0 = D->n, n_parsed = 0;
    for (size_t k = 0; rc == 0 && k < C.n; k++) {
        const struct chunk *c = &C.v[k];
        struct rc_doc *d = push_doc(D);
        if (d == NULL) {
            rc = -1;
            break;
        }
        d->file = d->file_src = afile;
        d->dir = adir;
        d->file_index = index;
        d->src_line = c->line;
        d->src_col = c->col;
        const struct rc_source *s = table_take(&T, text + c->start, c->end - c->start, c->col);
        if (s != NULL) {
            d->kind = s->kind;
            d->name = s->name;
            d->schema_ok = true;
            d->src_text = s->text;
            d->src_len = s->len;
            d->prev_src = s;
            d->lazy = true;
            if (!needs_nodes(s))
                continue;
        } else {
            d->src_text = text + c->start;
            d->src_len = c->end - c->start;
        }
        int r = rc_doc_parse(d);
        if (r != 0) {
            d->lazy = true; /* nothing to free */
            rc = r;
            break;
        }
        n_parsed++;
        if (s == NULL && is_empty_doc(d->y)) {
            rc_doc_free_tree(d);
            D->n--;
        }
    }
    if (rc != 0)
        drop_docs(D, n0);
    else
        *parsed += n_parsed;
    table_free(&T);
    free(C.v);
    return rc;
}

/* Whether d is byte for byte the source of a resource of the running
 * model: then it passed the schema already (the outcome depends on the
 * text alone), and validating it again would make a reload cost grow with
 * the configuration instead of the change. Sets kind, name and schema_ok
 * as rc_schema_validate_doc() would. */
static bool same_as_prev(struct rc_doc *d, const struct rc_sources *prev)
{
    if (prev == NULL || d->src_text == NULL)
        return false;
    yaml_node_t *root = rc_doc_root(d);
    const char *kind = rc_y_str(rc_y_get(d->y, root, "kind"));
    yaml_node_t *name = rc_y_get(d->y, rc_y_get(d->y, root, "metadata"), "name");
    if (kind == NULL || name == NULL || strcmp(rc_y_type_name(name), "string") != 0)
        return false;
    /* In the same file: a document moved to another one is built again
     * (its locations, and the folder its relative paths start from, are
     * the new file's). */
    const struct rc_source *s = rc_sources_find(prev, kind, rc_y_str(name));
    if (s == NULL || s->len != d->src_len || s->col != d->src_col ||
        memcmp(s->text, d->src_text, d->src_len) != 0 || strcmp(s->file, d->file_src) != 0)
        return false;
    d->kind = s->kind; /* the static kind string */
    d->prev_src = s;
    d->name = rc_y_str(name);
    d->schema_ok = true;
    return true;
}

/* The model digest covers each file's relative path, size and SHA-256
 * (kept per file in the model, so an unchanged file is not read for it). */
static void digest_file(EVP_MD_CTX *md, const char *rel, size_t len, const unsigned char sum[32])
{
    uint64_t n = len;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(n >> (8 * (7 - i)));
    size_t rl = strlen(rel) + 1;
    unsigned char one[512];
    if (rl + 8 + 32 <= sizeof one) {
        /* The same bytes in one update (10,000 files: 30,000 updates). */
        memcpy(one, rel, rl);
        memcpy(one + rl, lenbuf, 8);
        memcpy(one + rl + 8, sum, 32);
        EVP_DigestUpdate(md, one, rl + 8 + 32);
        return;
    }
    EVP_DigestUpdate(md, rel, rl);
    EVP_DigestUpdate(md, lenbuf, sizeof(lenbuf));
    EVP_DigestUpdate(md, sum, 32);
}

/* Reads dir/.albdignore into *ig. An ignore file that exists but cannot
 * be read fails the load as an unreadable folder does (w->top_failed):
 * reading every file instead could apply what it was meant to keep out.
 * Returns true when out of memory. */
static bool load_ignore(const char *dir, struct rc_ignore **ig, struct walk *w)
{
    int r = rc_ignore_load(dir, ig);
    if (r == 0 || r == -ENOENT || r == -ENOTDIR)
        return false; /* a folder that is missing is reported by the walk */
    if (r == -ENOMEM)
        return true;
    DIR *d = opendir(dir);
    if (d == NULL)
        return false; /* the folder itself cannot be read: the walk says so */
    closedir(d);
    char *path = join(dir, RC_IGNORE_FILE);
    if (path == NULL)
        return true;
    struct rc_loc loc = {path, 0, 0};
    rc_errs_add(w->errs, RC_ERROR, &loc, NULL, NULL, NULL,
                "cannot read the ignore file: %s; nothing is loaded", rc_read_strerror(-r));
    free(path);
    w->top_failed = true;
    return false;
}

/* A string as a message may quote it: at most 60 bytes, and never what
 * looks like key material. */
static void quote(char *buf, size_t size, const char *s)
{
    if (strstr(s, "-----BEGIN") || strstr(s, "PRIVATE KEY"))
        snprintf(buf, size, "a PEM block");
    else
        snprintf(buf, size, "\"%.60s%s\"", s, strlen(s) > 60 ? "..." : "");
}

/* Whether d is another API's document sharing the folder (a
 * kustomization.yaml, a Kubernetes object): an object whose apiVersion is
 * a string that does not start with "albd/", or that has neither an
 * apiVersion nor a kind. Such a document gets a note (skipped) or, when
 * refuse, an error at its apiVersion. A document with a kind but without
 * apiVersion looks like a manifest missing a field, so it is albd's (and
 * an error); so is "albd/v2" (not a version albd knows). errs may be
 * NULL. */
static bool foreign(struct rc_doc *d, bool refuse, struct rc_errs *errs)
{
    yaml_node_t *root = rc_doc_root(d);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        return false; /* not a manifest at all: the schema says so */
    yaml_node_t *api = rc_y_get(d->y, root, "apiVersion");
    yaml_node_t *kind = rc_y_get(d->y, root, "kind");
    const char *api_s = api ? rc_y_str(api) : NULL;
    const char *kind_s = kind ? rc_y_str(kind) : NULL;
    if (api != NULL) {
        struct rc_yval v;
        rc_y_classify(api, &v);
        if (v.type != RC_Y_STR || !strncmp(api_s, "albd/", 5))
            return false;
    } else if (kind != NULL) {
        return false;
    }
    if (errs == NULL)
        return true;
    char qa[80] = "no apiVersion", qk[80] = "no kind";
    if (api_s) {
        memcpy(qa, "apiVersion ", 11);
        quote(qa + 11, sizeof(qa) - 11, api_s);
    }
    if (kind_s) {
        memcpy(qk, "kind ", 5);
        quote(qk + 5, sizeof(qk) - 5, kind_s);
    }
    struct rc_loc loc = rc_y_loc(d, api ? api : root);
    if (refuse)
        rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL,
                    "not an albd document (%s, %s): refused (--refuse-foreign)", qa, qk);
    else
        rc_errs_add(errs, RC_NOTE, &loc, NULL, NULL, NULL, "not an albd document (%s, %s): skipped",
                    qa, qk);
    return true;
}

/* Fewer certificates than this are parsed by the load alone. */
#define AHEAD_MIN 32

/* p resolved as cert.c does (relative to the manifest's folder dir),
 * malloc'd; NULL when out of memory. */
static char *abs_path(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/')
        return strdup(p);
    return asprintf(&out, "%s/%s", dir, p) < 0 ? NULL : out;
}

/* The certificate and key files of D's Certificate documents that take
 * them from files, as cert.c resolves them (relative to the manifest's
 * folder), handed to a parse ahead (certstore.h) so that the load finds
 * them parsed. Only the paths are read here: a document the schema will
 * refuse is at worst parsed for nothing. NULL when there is nothing to
 * start. */
static struct rc_certstore_ahead *parse_ahead(const struct docs *D, bool facts)
{
    char **cert = calloc(D->n + 1, sizeof *cert), **key = calloc(D->n + 1, sizeof *key);
    size_t n = 0;
    for (size_t i = 0; cert && key && i < D->n; i++) {
        struct rc_doc *d = D->v[i];
        if (d->lazy)
            continue;
        yaml_node_t *root = rc_doc_root(d);
        const char *api = rc_y_str(rc_y_get(d->y, root, "apiVersion"));
        const char *kind = rc_y_str(rc_y_get(d->y, root, "kind"));
        /* albd's only: another API's Certificate (cert-manager's) names no
         * file albd reads. */
        if (api == NULL || strncmp(api, "albd/", 5) != 0 || kind == NULL ||
            strcmp(kind, "Certificate") != 0)
            continue;
        yaml_node_t *spec = rc_y_get(d->y, root, "spec");
        yaml_node_t *files = rc_y_get(d->y, rc_y_get(d->y, spec, "source"), "files");
        const char *c = rc_y_str(rc_y_get(d->y, files, "certificate"));
        const char *k = rc_y_str(rc_y_get(d->y, files, "privateKey"));
        if (c == NULL || c[0] == '\0' || (k && k[0] == '\0'))
            continue;
        cert[n] = abs_path(d->dir, c);
        key[n] = k ? abs_path(d->dir, k) : NULL;
        if (cert[n] == NULL || (k && key[n] == NULL)) {
            free(cert[n]);
            free(key[n]);
            cert[n] = key[n] = NULL;
            break; /* out of memory: the load parses the rest */
        }
        n++;
    }
    struct rc_certstore_ahead *a = NULL;
    if (n >= AHEAD_MIN)
        a = rc_certstore_ahead_start((const char *const *)cert, (const char *const *)key, n, facts);
    for (size_t i = 0; cert && key && i < n; i++) {
        free(cert[i]);
        free(key[i]);
    }
    free(cert);
    free(key);
    return a;
}

static void oom(struct rc_errs *errs)
{
    rc_errs_add(errs, RC_ERROR, NULL, NULL, NULL, NULL, "out of memory while loading manifests");
}

int rc_load_dir_ex(const char *dir, const struct rc_load_opts *o, struct rc_model **out,
                   struct rc_errs *errs, struct rc_status *st)
{
    *out = NULL;
    struct rc_loadset S = {.errs_before = errs->n, .tmp = rc_arena_new()};
    struct docs D = {.tmp = S.tmp, .errs = errs};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct walk w = {.errs = errs, .top_len = strlen(dir)};
    if (realpath(dir, w.root) == NULL)
        w.root[0] = '\0';
    char **texts = NULL;
    bool failed = S.tmp == NULL || md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    int rc = -1;
    struct rc_ignore *ig = NULL;
    if (!failed)
        failed = load_ignore(dir, &ig, &w);
    w.ig = ig;

    const struct rc_sources *prev_src = rc_model_sources(o->prev);
    if (!failed && !w.top_failed && o->changes && !o->changes->tree && prev_src &&
        prev_src->walk_reusable && !rc_changes_cover(o->changes, RC_IGNORE_FILE)) {
        /* Nothing was created, removed or renamed since prev's walk: the
         * same files, in the same (sorted) order. */
        for (size_t i = 0; !w.oom && i < prev_src->n_mfiles; i++)
            list_borrow(&w, &w.files, prev_src->mfiles[i]->path);
        failed = w.oom;
        S.walk_reused = true;
    } else if (!failed && !w.top_failed && o->changes && o->changes->files_only && prev_src &&
               prev_src->walk_reusable && !rc_changes_cover(o->changes, RC_IGNORE_FILE) &&
               patch_walk(&w, dir, prev_src, o->changes)) {
        /* Only files were created, removed or renamed: prev's walk with
         * those paths looked at again. */
        S.walk_reused = true;
    } else if (!failed && !w.top_failed) {
        w.oom = false;
        size_t errs_before = errs->n;
        walk_dir(&w, dir, 0);
        failed = w.oom;
        S.walk_reusable =
            !w.top_failed && !w.via_link && w.bad_dirs.n == 0 && errs->n == errs_before;
        if (w.files.n > 1) /* (a walk owns every path: own[] is all true) */
            qsort(w.files.v, w.files.n, sizeof(*w.files.v), path_cmp);
    }
    if (!failed) {
        texts = calloc(w.files.n ? w.files.n : 1, sizeof(*texts));
        S.files = rc_arena_alloc(S.tmp, (w.files.n + 1) * sizeof(*S.files));
        S.bad_dirs = rc_arena_alloc(S.tmp, (w.bad_dirs.n + 1) * sizeof(*S.bad_dirs));
        failed = texts == NULL || S.files == NULL || S.bad_dirs == NULL;
    }
    for (size_t i = 0; !failed && i < w.bad_dirs.n; i++)
        failed = (S.bad_dirs[S.n_bad_dirs++] = rc_arena_strdup(S.tmp, w.bad_dirs.v[i])) == NULL;
    size_t dlen = strlen(dir);
    if (!failed && w.root[0])
        failed = (S.root = rc_arena_strdup(S.tmp, w.root)) == NULL;
    const struct rc_changes *changes = S.root ? o->changes : NULL;
    size_t n_unstatted = 0;
    struct timespec start;
    if (o->realtime)
        o->realtime(&start);
    else
        clock_gettime(CLOCK_REALTIME, &start);
    size_t n_read = 0, n_skipped = 0, n_parsed = 0;
    /* A cold load (a start, validate) reads every file: ask the kernel for
     * them all at once (common/prefetch.h); a few dozen files are not
     * worth a thread. Reloads read only what changed. */
    struct cm_prefetch *pf = !failed && prev_src == NULL && w.files.n > 64
                                 ? cm_prefetch_start((const char *const *)w.files.v, w.files.n)
                                 : NULL;
    struct dir_memo dir_memo = {.abs = NULL};
    struct rc_cover_memo cover_memo = {.next = 0};
    size_t next_mfile = 0;
    for (size_t i = 0; i < w.files.n && !failed; i++) {
        const char *file = w.files.v[i];
        struct rc_mfile *f = &S.files[S.n_files++];
        const char *afile = f->path = file; /* w.files outlives the load set */
        const char *adir = abs_dir_of(S.tmp, file, &dir_memo);
        if (afile == NULL || adir == NULL) {
            failed = true;
            break;
        }
        const char *rel = file + dlen;
        while (*rel == '/')
            rel++;
        size_t n0 = D.n;
        const struct rc_kept_mfile *pm = prev_mfile(prev_src, file, &next_mfile);
        struct stat sb;
        struct rc_fid id;
        bool reusable = pm && pm->clean && pm->settled, unstatted = false;
        if (reusable) {
            unstatted = pm->watchable && changes && !rc_changes_cover_m(changes, rel, &cover_memo);
            if (unstatted)
                id = pm->id; /* no event names it: the watcher vouches */
            else if (stat(file, &sb) == 0)
                rc_fid_from_stat(&id, &sb);
            else
                reusable = false;
        }
        if (reusable) {
            if (rc_fid_equal(&id, &pm->id)) {
                int r = take_prev_file(&D, i, afile, adir, pm, &n_parsed);
                if (r < 0) {
                    failed = true;
                    break;
                }
                if (r == 0) {
                    f->settled = true;
                    f->watchable = pm->watchable;
                    n_unstatted += unstatted;
                    f->prev_mfile = pm; /* its id, len and digest are the file's */
                    f->n_docs = D.n - n0;
                    digest_file(md, rel, pm->len, pm->digest);
                    n_skipped++;
                    continue;
                }
            }
        }
        size_t len = 0;
        struct rc_mfile_read *fr = rc_arena_alloc(S.tmp, sizeof(*fr));
        if (fr == NULL) {
            failed = true;
            break;
        }
        f->read = fr;
        int r = read_file(file, S.root, &texts[i], &len, &fr->id, &sb);
        if (r == -EXDEV) {
            /* The target is never named or quoted: it is not ours to show. */
            struct rc_loc loc = {file, 0, 0};
            rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL,
                        "a link to a file outside the manifest folder: not read");
            f->damaged = true;
            continue;
        }
        if (r == -EFBIG) {
            struct rc_loc loc = {file, 0, 0};
            rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL,
                        "larger than %u MiB, the most a manifest file may hold",
                        MAX_FILE_SIZE >> 20);
            f->damaged = true;
            continue;
        }
        if (r != 0) {
            struct rc_loc loc = {file, 0, 0};
            rc_errs_add(errs, RC_ERROR, &loc, NULL, NULL, NULL, "cannot read: %s",
                        rc_read_strerror(-r));
            f->damaged = true;
            continue;
        }
        n_read++;
        f->settled = rc_fid_settled(&fr->id, &start) && (off_t)len == sb.st_size;
        /* One-shot (validate): no later load asks (filecache.h). */
        if (f->settled && S.root && !o->release_parsed) {
            char want[PATH_MAX];
            if (snprintf(want, sizeof(want), "%s/%s", S.root, rel) < (int)sizeof(want))
                f->watchable = rc_watchable(file, &sb, rel, want);
        }
        fr->len = len;
        unsigned int dl = 0;
        if (!EVP_Digest(texts[i], len, fr->digest, &dl, EVP_sha256(), NULL)) {
            failed = true;
            break;
        }
        digest_file(md, rel, len, fr->digest);
        r = 1;
        if (pm && pm->clean) {
            r = take_changed_file(&D, i, afile, adir, pm, texts[i], len, &n_parsed);
            if (r < 0) {
                failed = true;
                break;
            }
        }
        if (r == 0) {
            f->n_docs = D.n - n0;
            continue;
        }
        r = parse_file(&D, i, afile, adir, texts[i], len);
        if (r < 0)
            failed = true;
        f->damaged = r == 1;
        f->n_docs = D.n - n0;
        n_parsed += D.n - n0;
    }
    rc_cover_memo_free(&cover_memo);
    cm_prefetch_end(pf);
    if (md != NULL) {
        unsigned char sum[EVP_MAX_MD_SIZE];
        unsigned int sumlen = 0;
        EVP_DigestFinal_ex(md, sum, &sumlen);
        EVP_MD_CTX_free(md);
        cm_hex(sum, sumlen, S.digest);
    }
    S.docs = D.v;
    S.n_docs = D.n;
    /* A cold load (nothing to reuse: a start, validate) parses its
     * certificates on the other cores while this thread checks and builds
     * (certstore.h). */
    struct rc_certstore_ahead *ahead =
        !failed && !w.top_failed && prev_src == NULL ? parse_ahead(&D, o->release_parsed) : NULL;

    size_t n_albd = 0;
    for (size_t i = 0; i < S.n_docs && !failed; i++) {
        struct rc_doc *d = S.docs[i];
        if (d->prev_src == NULL && !same_as_prev(d, prev_src)) {
            if (!foreign(d, o->refuse_foreign, errs)) {
                rc_schema_validate_doc(d, errs);
            } else if (!o->refuse_foreign) {
                /* Another API's document: no part of the load. */
                rc_doc_free_tree(d);
                S.files[d->file_index].n_docs--;
                continue;
            } /* else refused: a document without a kind, as before */
        }
        if (d->kind == NULL || d->name == NULL)
            S.files[d->file_index].unidentified = true;
        S.docs[n_albd++] = d;
    }
    if (!failed)
        S.n_docs = n_albd;

    /* The real path: documents' folders are real paths (abs_dir_of), so
     * `-m manifests` and `-m /abs/manifests` export the same. */
    S.model_root = w.root[0] ? w.root : dir;
    if (failed)
        oom(errs);
    else if (!w.top_failed)
        rc = rc_contain_build(&S, o, out, errs, st);
    rc_certstore_ahead_end(ahead);
    if (st) {
        st->manifests_read = n_read;
        st->manifests_skipped = n_skipped;
        st->docs_parsed = n_parsed;
        st->files_unstatted += n_unstatted;
    }

    for (size_t i = 0; i < S.n_docs; i++)
        if (!S.docs[i]->lazy)
            rc_doc_free_tree(S.docs[i]);
    free(D.v);
    for (size_t i = 0; texts && i < w.files.n; i++)
        free(texts[i]);
    list_free(&w.files);
    list_free(&w.bad_dirs);
    free(texts);
    free(w.seen);
    rc_ignore_free(ig);
    rc_arena_free(S.tmp);

    rc_errs_sort(errs);
    if (rc < 0) {
        rc_model_unref(*out);
        *out = NULL;
    }
    return rc;
}

int rc_load_dir(const char *dir, time_t now, struct rc_model **out, struct rc_errs *errs)
{
    struct rc_load_opts o = {.now = now, .strict = true};
    return rc_load_dir_ex(dir, &o, out, errs, NULL) == 0 ? 0 : -1;
}
