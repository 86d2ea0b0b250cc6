/* rc_load_dir: walks the manifest directory, parses every YAML document with
 * its source positions, validates each against its schema and hands the
 * documents to the model builder. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reconciler/arena.h"
#include "reconciler/build.h"
#include "reconciler/rc.h"
#include "reconciler/schema.h"

#define MAX_FILE_SIZE (16u << 20)

struct file_list {
    char **v;
    size_t n, cap;
};

struct dir_id {
    dev_t dev;
    ino_t ino;
};

struct walk {
    struct file_list files;
    struct dir_id *seen; /* directories entered: symlinked loops end here */
    size_t n_seen, cap_seen;
    struct rc_errs *errs;
    bool oom;
};

static bool has_yaml_ext(const char *name)
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

static void walk_dir(struct walk *w, const char *dir, int depth)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        file_error(w->errs, dir, "cannot read the manifest directory", errno);
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
        file_error(w->errs, dir, "cannot read the manifest directory", errno);
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
        char *path = join(dir, e->d_name);
        if (path == NULL) {
            w->oom = true;
            break;
        }
        struct stat est;
        if (stat(path, &est) != 0) {
            if (has_yaml_ext(e->d_name))
                file_error(w->errs, path, "cannot read", errno);
            free(path);
            continue;
        }
        if (S_ISDIR(est.st_mode)) {
            walk_dir(w, path, depth + 1);
            free(path);
        } else if (S_ISREG(est.st_mode) && has_yaml_ext(e->d_name)) {
            if (w->files.n == w->files.cap) {
                size_t cap = w->files.cap ? w->files.cap * 2 : 16;
                char **p = realloc(w->files.v, cap * sizeof(*p));
                if (p == NULL) {
                    free(path);
                    w->oom = true;
                    break;
                }
                w->files.v = p;
                w->files.cap = cap;
            }
            w->files.v[w->files.n++] = path;
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

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                rc = -EFBIG;
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    if (buf == NULL)
        rc = -ENOMEM;
    fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The absolute folder of a manifest file as walked (not its link target:
 * relative paths in a ConfigMap file resolve next to the visible link). */
static char *abs_dir_of(struct rc_arena *a, const char *file)
{
    const char *slash = strrchr(file, '/');
    char dir[PATH_MAX];
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        return rc_arena_strdup(a, dir);
    return rc_arena_strdup(a, real);
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

/* Parses every document of one file into L->docs. */
static int parse_file(struct rc_load *L, const char *file, const char *text, size_t len,
                      size_t *cap)
{
    const char *afile = rc_arena_strdup(L->arena, file);
    const char *adir = abs_dir_of(L->arena, file);
    if (afile == NULL || adir == NULL)
        return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    for (;;) {
        yaml_document_t y;
        if (!yaml_parser_load(&parser, &y)) {
            struct rc_loc loc = {afile, (int)parser.problem_mark.line + 1,
                                 (int)parser.problem_mark.column + 1};
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = -1;
            } else {
                rc_errs_add(L->errs, RC_ERROR, &loc, NULL, NULL, NULL, "YAML syntax error: %s%s%s",
                            parser.problem ? parser.problem : "invalid YAML",
                            parser.context ? " " : "", parser.context ? parser.context : "");
            }
            break;
        }
        if (yaml_document_get_root_node(&y) == NULL) { /* end of the stream */
            yaml_document_delete(&y);
            break;
        }
        if (is_empty_doc(&y)) {
            yaml_document_delete(&y);
            continue;
        }
        if (L->n_docs == *cap) {
            size_t ncap = *cap ? *cap * 2 : 16;
            struct rc_doc *p = realloc(L->docs, ncap * sizeof(*p));
            if (p == NULL) {
                yaml_document_delete(&y);
                rc = -1;
                break;
            }
            L->docs = p;
            *cap = ncap;
        }
        struct rc_doc *d = &L->docs[L->n_docs++];
        memset(d, 0, sizeof(*d));
        d->file = afile;
        d->dir = adir;
        d->y = y;
    }
    yaml_parser_delete(&parser);
    return rc;
}

static void digest_file(EVP_MD_CTX *md, const char *rel, const char *text, size_t len)
{
    uint64_t n = len;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)(n >> (8 * (7 - i)));
    EVP_DigestUpdate(md, rel, strlen(rel) + 1);
    EVP_DigestUpdate(md, lenbuf, sizeof(lenbuf));
    EVP_DigestUpdate(md, text, len);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void oom(struct rc_errs *errs)
{
    rc_errs_add(errs, RC_ERROR, NULL, NULL, NULL, NULL, "out of memory while loading manifests");
}

int rc_load_dir(const char *dir, time_t now, struct rc_model **out, struct rc_errs *errs)
{
    *out = NULL;
    size_t errors_before = rc_errs_count_errors(errs);
    struct rc_arena *arena = rc_arena_new();
    struct rc_model *m = arena ? rc_arena_alloc(arena, sizeof(*m)) : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (m == NULL || md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        rc_arena_free(arena);
        oom(errs);
        return -1;
    }
    m->arena = arena;
    m->refs = 1;
    struct rc_load L = {.m = m, .arena = arena, .errs = errs, .now = now};
    size_t cap = 0;
    bool failed = false;

    struct walk w = {.errs = errs};
    walk_dir(&w, dir, 0);
    failed = w.oom;
    if (w.files.n > 1)
        qsort(w.files.v, w.files.n, sizeof(*w.files.v), path_cmp);
    size_t dlen = strlen(dir);
    char **texts = calloc(w.files.n ? w.files.n : 1, sizeof(*texts));
    failed = failed || texts == NULL;
    for (size_t i = 0; i < w.files.n && !failed; i++) {
        const char *file = w.files.v[i];
        size_t len = 0;
        int rc = read_file(file, &texts[i], &len);
        if (rc != 0) {
            file_error(errs, file, "cannot read", -rc);
            continue;
        }
        const char *rel = file + dlen;
        while (*rel == '/')
            rel++;
        digest_file(md, rel, texts[i], len);
        if (parse_file(&L, file, texts[i], len, &cap) != 0)
            failed = true;
    }
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sumlen = 0;
    EVP_DigestFinal_ex(md, sum, &sumlen);
    EVP_MD_CTX_free(md);
    hex(sum, sumlen, m->digest);

    for (size_t i = 0; i < L.n_docs && !failed; i++)
        rc_schema_validate_doc(&L.docs[i], errs);

    if (!failed) {
        L.scratch = SSL_CTX_new(TLS_method());
        if (L.scratch)
            SSL_CTX_set_security_level(L.scratch, 0);
        failed = L.scratch == NULL || rc_build_model(&L) != 0;
    }
    if (failed)
        oom(errs);

    SSL_CTX_free(L.scratch);
    for (size_t i = 0; i < L.n_docs; i++)
        yaml_document_delete(&L.docs[i].y);
    free(L.docs);
    for (size_t i = 0; i < w.files.n; i++) {
        free(w.files.v[i]);
        if (texts)
            free(texts[i]);
    }
    free(texts);
    free(w.files.v);
    free(w.seen);

    rc_errs_sort(errs);
    if (rc_errs_count_errors(errs) > errors_before) {
        rc_model_unref(m);
        return -1;
    }
    *out = m;
    return 0;
}
